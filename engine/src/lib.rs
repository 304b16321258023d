//! weir-engine: the micro-batch streaming engine.
//!
//! Owns everything that runs a query: the DataFrame and session API, incremental planning
//! (logical plan → pipelines of weir-jit kernels separated by stateful operators), the
//! scheduler and query lifecycle, state stores, checkpoints, sources and sinks.
//!
//! It must not parse SQL or analyse plans (that is `weir-plan`) and must not emit machine
//! code (that is `weir-jit`).

pub mod alloc;
pub mod checkpoint;
pub mod dataframe;
pub mod error;
pub mod exec;
pub mod query;
pub mod record;
pub mod session;
pub mod sink;
pub mod source;
pub mod state;
pub mod testing;
pub mod typed;

pub use dataframe::{DataFrame, DataStreamReader, DataStreamWriter, GroupedData};
pub use error::{Error, Result};
pub use query::listener::StreamingQueryListener;
pub use query::progress::{StreamingQueryProgress, StreamingQueryStatus};
pub use query::trigger::{ManualClock, Trigger};
pub use query::{StreamingQuery, WatermarkPolicy};
pub use session::{Session, SessionConfig};
