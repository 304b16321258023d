//! The crate's error type.
/// Result alias for weir-plan.
pub type Result<T, E = Error> = std::result::Result<T, E>;
/// Errors from parsing, planning and analysing a query.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Placeholder until the real variants land.
    #[error("{0}")]
    Other(String),
}
