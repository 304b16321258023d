//! weir-jit (being written by the jit engineer).
mod error;
pub use error::{JitError, Result};
