//! weir-engine: the micro-batch streaming engine.
//!
//! Owns everything that runs a query: the DataFrame and session API, incremental planning
//! (logical plan → pipelines of weir-jit kernels separated by stateful operators), the
//! scheduler and query lifecycle, state stores, checkpoints, sources and sinks.
//!
//! It must not parse SQL or analyse plans (that is `weir-plan`) and must not emit machine
//! code (that is `weir-jit`).

pub mod checkpoint;
pub mod error;
pub mod record;
pub mod sink;
pub mod source;
pub mod state;

pub use error::{Error, Result};
