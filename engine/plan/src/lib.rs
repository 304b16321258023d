//! weir-plan (being written by the plan engineer).
mod error;
pub use error::{Error, Result};
