//! The crate's error type. Owns [`JitError`] and the [`Result`] alias; nothing else.

use crate::spec::ExprId;

/// Result alias for weir-jit.
pub type Result<T, E = JitError> = std::result::Result<T, E>;

/// Errors from building, checking, compiling or running a kernel.
#[derive(Debug, thiserror::Error)]
pub enum JitError {
    /// The spec is not well typed; names the offending expression.
    #[error("ill-typed kernel spec at expression #{expr} ({expr_text}): {message}")]
    Type {
        /// The offending expression.
        expr: ExprId,
        /// A short rendering of the expression.
        expr_text: String,
        /// What is wrong and what to do.
        message: String,
    },
    /// The spec is structurally invalid (stage order, column index, duplicate names, ...).
    #[error("invalid kernel spec: {0}")]
    InvalidSpec(String),
    /// The input batch does not match the spec's input schema.
    #[error("input batch does not match the kernel's input schema: {0}")]
    SchemaMismatch(String),
    /// A row raised a runtime error (ANSI overflow, division by zero, invalid cast...).
    #[error("error evaluating row {row}: {message}")]
    Runtime {
        /// Row index in the input batch.
        row: usize,
        /// What went wrong.
        message: String,
    },
    /// Cranelift failed to compile a kernel (a bug in weir-jit; the interpreter still works).
    #[error("kernel compilation failed: {0}")]
    Compile(String),
    /// The operation does not apply to this kind of kernel or state.
    #[error("unsupported: {0}")]
    Unsupported(String),
    /// Aggregation state is inconsistent with the kernel (e.g. restoring a checkpoint of another query).
    #[error("invalid aggregation state: {0}")]
    State(String),
    /// An Arrow error while building arrays.
    #[error(transparent)]
    Arrow(#[from] arrow::error::ArrowError),
}
