//! weir-plan: the logical plan, expressions, analyzer, optimizer and SQL front end of weir.
//!
//! Owns everything between query text (SQL, the Rust builder, `query!`) and a resolved, checked,
//! optimised [`LogicalPlan`]. It depends only on `arrow-schema`, `sqlparser` and `serde` so the
//! proc macros can use it at compile time: it must not depend on Arrow arrays, the runtime or the JIT.

pub mod analyzer;
pub mod builder;
pub mod error;
pub mod expr;
pub mod functions;
pub mod optimizer;
pub mod plan;
pub mod sql;

pub use analyzer::{check_streaming, default_output_mode};
pub use builder::{GroupedBuilder, LogicalPlanBuilder};
pub use error::{Error, Result, Rule, SourceSpan, Span};
pub use expr::{
    AggregateFunction, BinaryOperator, Column, Expr, ScalarValue, SessionGap, SortExpr,
};
pub use optimizer::{explain_logical, optimize};
pub use plan::{LogicalPlan, OutputMode};
pub use sql::{Catalog, parse_sql, sql_to_plan};
