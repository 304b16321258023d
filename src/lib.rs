//! # weir
//!
//! A stream processing engine with the semantics of Apache Spark Structured Streaming, whose
//! query pipelines run as fused native kernels compiled with Cranelift over Apache Arrow arrays.
//!
//! This crate is the public facade: it re-exports the engine, the plan layer, the JIT and the
//! macros under one name. Generated code from `weir-macros` names only `::weir::…` paths, so a
//! user crate depends on `weir` alone. It holds no logic of its own beyond the `weir` command.

pub use arrow;
pub use weir_engine as engine;
pub use weir_jit as jit;
pub use weir_plan as plan;

pub use weir_engine::record::{self, Record};
pub use weir_macros::Record;
