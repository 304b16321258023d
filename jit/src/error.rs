//! The crate's error type.
/// Result alias for weir-jit.
pub type Result<T, E = JitError> = std::result::Result<T, E>;
/// Errors from building, checking, compiling or running a kernel.
#[derive(Debug, thiserror::Error)]
pub enum JitError {
    /// Placeholder until the real variants land.
    #[error("{0}")]
    Other(String),
}
