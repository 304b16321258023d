//! weir-jit: the kernel IR ([`KernelSpec`]), its reference [`Interpreter`], and the Cranelift
//! lowering of whole pipelines (filter → project, or filter → grouped aggregation) into one
//! fused native loop over Arrow arrays ([`JitEngine`], [`CompiledKernel`]).
//!
//! Module map: `spec` (IR, builder, type checker), `interp` + `value` (oracle and fallback),
//! `agg` (group state), `plan` (fallback rule), `abi` (`#[repr(C)]` kernel ABI), `emit` (the only
//! Cranelift user), `kernel` (engine, cache, execution, runtime helper), `datetime`, `hash`.
//! See the weir-jit section of the repository's ARCHITECTURE.md.

mod abi;
mod agg;
mod datetime;
mod emit;
mod error;
mod hash;
mod interp;
mod kernel;
mod plan;
mod spec;
mod value;

pub use agg::{GroupState, StringKeyCounter};
pub use arrow::datatypes::DataType;
pub use error::{JitError, Result};
pub use interp::Interpreter;
pub use kernel::{CompileReport, CompiledKernel, JitEngine, JitOptions, KernelMode};
pub use spec::{
    AggExpr, AggFunc, BinaryOp, Expr, ExprId, InputColumn, KernelSpec, KernelSpecBuilder,
    PipelineKind, Scalar, ScalarFunc, Stage, UnaryOp,
};

use arrow::array::RecordBatch;

impl GroupState {
    /// Rebuilds a state (and its fixed-seed hash index) from [`GroupState::to_record_batch`]
    /// output, for the given compiled kernel.
    pub fn from_record_batch(kernel: &CompiledKernel, batch: &RecordBatch) -> Result<GroupState> {
        kernel.restore_group_state(batch)
    }

    /// Same as [`GroupState::from_record_batch`] for a spec (no compilation needed).
    pub fn from_record_batch_for_spec(
        spec: &KernelSpec,
        batch: &RecordBatch,
    ) -> Result<GroupState> {
        let layout = std::sync::Arc::new(agg::AggLayout::new(spec)?);
        agg::GroupState::from_batch(layout, batch)
    }
}
