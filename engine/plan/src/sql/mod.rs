//! The SQL front end: weir's dialect and statements (`parser`), the catalog of declared objects
//! (`catalog`) and the translation of queries into plans (`planner`).
//!
//! Everything SQL-specific lives here; plans produced from SQL are identical to those built with
//! [`crate::builder::LogicalPlanBuilder`] for the same query.

pub mod catalog;
pub mod parser;
pub mod planner;

pub use catalog::{Catalog, SinkDefinition, StatementResult, ViewDefinition, sql_to_plan};
pub use parser::{
    ColumnDefinition, CreateSink, CreateSource, CreateView, ObjectKind, Statement,
    WatermarkDefinition, WeirDialect, parse_sql, parse_statement,
};

use crate::error::Result;
use crate::expr::Expr;

/// Parse one Spark SQL expression, optionally followed by an alias (`price * 2 AS doubled`), as
/// `selectExpr` takes it. Names are not resolved.
pub fn parse_sql_expr(sql: &str) -> Result<Expr> {
    let (expr, alias) = parser::parse_sql_expr_ast(sql)?;
    let expr = planner::sql_to_expr(&expr)?;
    Ok(match alias {
        Some(alias) => expr.alias(alias),
        None => expr,
    })
}
