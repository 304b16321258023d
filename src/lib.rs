//! # weir
//!
//! A stream processing engine with the semantics of Apache Spark Structured Streaming, whose
//! query pipelines run as fused native kernels compiled with Cranelift over Apache Arrow arrays.
//!
//! This crate is the public facade: it re-exports the engine, the plan layer, the JIT and the
//! macros under one name, and defines the DataFrame functions (`col`, `window`, `count`, ...).
//! Generated code from `weir-macros` names only `::weir::…` paths, so a user crate depends on
//! `weir` alone. Besides the `weir` command (in `main.rs` and `cli/`) it holds no logic.
//!
//! ```no_run
//! use weir::prelude::*;
//!
//! # fn main() -> weir::Result<()> {
//! let session = Session::new()?;
//! let rates = session.read_stream().format("rate-micro-batch").option("rowsPerBatch", 10).load()?;
//! let query = rates
//!     .filter((col("value") % lit(2i64)).eq(lit(0i64)))?
//!     .write_stream()
//!     .format("console")
//!     .trigger(Trigger::AvailableNow)
//!     .start()?;
//! query.await_termination()?;
//! # Ok(())
//! # }
//! ```

pub use arrow;
pub use weir_engine as engine;
pub use weir_jit as jit;
pub use weir_plan as plan;

pub use weir_engine::record::{self, Record};
pub use weir_engine::testing;
pub use weir_engine::typed;
pub use weir_engine::{
    DataFrame, Error, Result, Session, SessionConfig, StreamingQuery, StreamingQueryListener,
    StreamingQueryProgress, Trigger,
};
pub use weir_macros::{Record, query};

pub mod functions;

/// Everything a query needs: `use weir::prelude::*;`.
pub mod prelude {
    pub use crate::functions::*;
    pub use weir_engine::{DataFrame, Session, SessionConfig, StreamingQuery, Trigger};
    pub use weir_plan::expr::Expr;
}
