//! The engine's one error type. Every variant says what was wrong and where; the Display
//! text is what a user sees, so it also says what to do when that is not obvious.
//!
//! This module owns only the error type and its conversions.

use std::path::PathBuf;

/// Result alias used across weir-engine.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Everything that can go wrong while planning, running or recovering a streaming query.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// An I/O operation on a named path failed.
    #[error("I/O error on {path}: {source}")]
    Io {
        /// The file or directory involved.
        path: PathBuf,
        /// The underlying error.
        source: std::io::Error,
    },
    /// A reader or writer option has a bad value, or a required option is missing.
    #[error("invalid option '{name}': {message}")]
    InvalidOption {
        /// The option name as the user wrote it.
        name: String,
        /// What is wrong and what would be accepted.
        message: String,
    },
    /// A source failed to list or read its input.
    #[error("source {source_name}: {message}")]
    Source {
        /// The source's description (format and path).
        source_name: String,
        /// What went wrong.
        message: String,
    },
    /// A malformed input record in FAILFAST mode (or a record that cannot be read at all).
    #[error("malformed record in {location}: {message}")]
    MalformedRecord {
        /// File and line (or row) of the record.
        location: String,
        /// What is wrong with it.
        message: String,
    },
    /// A sink failed to write or commit a batch.
    #[error("sink {sink}: {message}")]
    Sink {
        /// The sink's description.
        sink: String,
        /// What went wrong.
        message: String,
    },
    /// A checkpoint file is missing, damaged, of another query, or otherwise unusable.
    #[error("checkpoint {path}: {message}")]
    Checkpoint {
        /// The offending file or directory.
        path: PathBuf,
        /// What is wrong and how to recover.
        message: String,
    },
    /// A state store file is missing or damaged, or state does not match the query.
    #[error("state store {path}: {message}")]
    State {
        /// The offending file or directory.
        path: PathBuf,
        /// What is wrong and how to recover.
        message: String,
    },
    /// The query is invalid for streaming (analysis error from weir-plan).
    #[error(transparent)]
    Plan(#[from] weir_plan::Error),
    /// Kernel compilation or execution failed.
    #[error(transparent)]
    Jit(#[from] weir_jit::JitError),
    /// Evaluating a query stage failed on a row (a bad cast in ANSI mode, an overflow, ...).
    #[error("evaluating [{stage}]: {source}")]
    Evaluation {
        /// The stage, as explain prints it.
        stage: String,
        /// The kernel's error (names the row and the problem).
        source: weir_jit::JitError,
    },
    /// Rows did not convert to or from a `Record` type.
    #[error(transparent)]
    Record(#[from] crate::record::RecordError),
    /// An Arrow operation failed.
    #[error("arrow: {0}")]
    Arrow(#[from] arrow::error::ArrowError),
    /// A Parquet operation failed.
    #[error("parquet: {0}")]
    Parquet(#[from] parquet::errors::ParquetError),
    /// An operation was used in a way the engine does not support (names the operation).
    #[error("{0}")]
    Unsupported(String),
    /// The query failed while running; carries the original error text.
    #[error("query {name} terminated with exception: {message}")]
    QueryFailed {
        /// The query name or id.
        name: String,
        /// The original failure.
        message: String,
    },
    /// A bug in weir: an invariant did not hold. Please report it.
    #[error("internal error (this is a bug in weir): {0}")]
    Internal(String),
}

impl Error {
    /// Wraps an I/O error with the path it concerns.
    pub fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Error::Io {
            path: path.into(),
            source,
        }
    }

    /// A checkpoint error for `path`.
    pub fn checkpoint(path: impl Into<PathBuf>, message: impl Into<String>) -> Self {
        Error::Checkpoint {
            path: path.into(),
            message: message.into(),
        }
    }

    /// A state store error for `path`.
    pub fn state(path: impl Into<PathBuf>, message: impl Into<String>) -> Self {
        Error::State {
            path: path.into(),
            message: message.into(),
        }
    }

    /// An invalid-option error.
    pub fn option(name: impl Into<String>, message: impl Into<String>) -> Self {
        Error::InvalidOption {
            name: name.into(),
            message: message.into(),
        }
    }
}
