//! Streaming sinks: the [`Sink`] trait, the factory [`create_sink`] and the built-in sinks:
//! console, memory (tables readable with [`memory_table`]), noop, the file sinks for parquet,
//! csv and json with Spark's `_spark_metadata` log, and [`foreach_batch_sink`].
//!
//! A sink only writes the rows it is given for a batch id. It must not touch the checkpoint:
//! the scheduler owns offsets and commits and calls [`Sink::add_batch`] between the two.

mod console;
mod file;
mod format;
mod memory;

use std::collections::BTreeMap;
use std::io::Write;

use arrow::datatypes::SchemaRef;
use arrow::record_batch::RecordBatch;

use crate::error::{Error, Result};
use crate::source::{FileFormat, SourceOptions};

pub use file::{SinkFileStatus, committed_files};
pub use memory::{MemoryTable, drop_memory_table, memory_table};

/// The output mode a batch is written in (the scheduler maps weir-plan's mode onto this).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SinkOutputMode {
    /// Only new rows.
    Append,
    /// Only rows that changed in this batch.
    Update,
    /// The whole result table, every batch.
    Complete,
}

/// A micro-batch sink.
pub trait Sink: Send {
    /// Shown in progress JSON as `sink.description`.
    fn description(&self) -> String;
    /// Writes one micro-batch. Idempotent per `batch_id`: a batch id already committed is
    /// skipped (returns `Ok`). The file sink knows this from its `_spark_metadata` log, so it
    /// also holds across restarts; the other sinks remember it within the process only
    /// (console, memory and foreach_batch therefore see a replayed batch again after a
    /// restart, as in Spark).
    fn add_batch(
        &mut self,
        batch_id: u64,
        schema: &SchemaRef,
        batches: &[RecordBatch],
        mode: SinkOutputMode,
    ) -> Result<()>;
    /// The newest batch id this sink has durably committed by its own log, for sinks that
    /// keep one (the file sink's `_spark_metadata`); `None` otherwise.
    fn last_committed_batch(&self) -> Result<Option<u64>> {
        Ok(None)
    }
    /// Whether [`Sink::add_batch`] does nothing visible before a checked create through the
    /// query's pending writes (`checkpoint::PendingWrites`), which makes the batch's staged
    /// `offsets/N` durable before naming its own file. Then the query stages `offsets/N`
    /// instead of syncing it before the batch runs, saving an fsync round per batch. Sinks
    /// with side effects of their own (console, memory, foreach_batch) keep the default
    /// `false`: the offsets are durable before they run.
    fn commits_through_pending_writes(&self) -> bool {
        false
    }
}

impl std::fmt::Debug for dyn Sink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.description())
    }
}

/// What a sink gets from the engine when it is created.
#[derive(Clone, Debug, Default)]
pub struct SinkContext {
    /// The query name (the memory sink's table name).
    pub query_name: Option<String>,
    /// Whether file sink data files are fsynced before they are committed (their log entries
    /// are always written atomically).
    pub fsync: bool,
    /// The query's pending directory fsyncs, which the file sink's log writes join (see
    /// [`crate::checkpoint::PendingWrites`]; a default, unshared one outside a query).
    pub pending_writes: crate::checkpoint::PendingWrites,
}

/// The user function of a `foreach_batch` sink: the batch's rows and its batch id.
pub type ForeachBatchFn = Box<
    dyn FnMut(
            &[RecordBatch],
            u64,
        ) -> std::result::Result<(), Box<dyn std::error::Error + Send + Sync>>
        + Send,
>;

/// Creates a sink for `format`: `console` (to stdout), `memory`, `noop`, `parquet`, `csv` or
/// `json`. Option names are Spark's, matched case-insensitively.
pub fn create_sink(
    format: &str,
    options: &BTreeMap<String, String>,
    ctx: SinkContext,
) -> Result<Box<dyn Sink>> {
    let opts = SourceOptions::new(options);
    match format.to_ascii_lowercase().as_str() {
        "console" => console_sink(options, Box::new(std::io::stdout())),
        "memory" => Ok(Box::new(memory::MemorySink::new(ctx.query_name)?)),
        "noop" => Ok(Box::new(NoopSink)),
        name => match FileFormat::from_name(name) {
            Some(file_format) => Ok(Box::new(file::FileSink::new(
                file_format,
                &opts,
                ctx.fsync,
                ctx.pending_writes,
            )?)),
            None => Err(Error::Unsupported(format!(
                "unknown streaming sink format '{format}': use console, memory, noop, parquet, \
                 csv, json, or foreach_batch"
            ))),
        },
    }
}

/// A console sink writing to `out` (tests capture it). Options: `numRows` (20), `truncate`
/// (true, false or a width), `outputFormat` (`table`, or `json` = one object per row with a
/// `batchId` field).
pub fn console_sink(
    options: &BTreeMap<String, String>,
    out: Box<dyn Write + Send>,
) -> Result<Box<dyn Sink>> {
    Ok(Box::new(console::ConsoleSink::new(
        &SourceOptions::new(options),
        out,
    )?))
}

/// A sink calling `f` with each batch's rows and its batch id (Spark's `foreachBatch`). An
/// error returned by `f` fails the batch with [`Error::Sink`].
pub fn foreach_batch_sink(f: ForeachBatchFn) -> Box<dyn Sink> {
    Box::new(ForeachBatchSink {
        f,
        last_batch: None,
    })
}

struct ForeachBatchSink {
    f: ForeachBatchFn,
    last_batch: Option<u64>,
}

impl Sink for ForeachBatchSink {
    fn description(&self) -> String {
        "ForeachBatchSink".to_string()
    }

    fn add_batch(
        &mut self,
        batch_id: u64,
        _schema: &SchemaRef,
        batches: &[RecordBatch],
        _mode: SinkOutputMode,
    ) -> Result<()> {
        if self.last_batch.is_some_and(|last| batch_id <= last) {
            return Ok(());
        }
        (self.f)(batches, batch_id).map_err(|e| Error::Sink {
            sink: self.description(),
            message: format!("the foreachBatch function failed on batch {batch_id}: {e}"),
        })?;
        self.last_batch = Some(batch_id);
        Ok(())
    }
}

/// Discards everything (Spark's `noop` format).
struct NoopSink;

impl Sink for NoopSink {
    fn description(&self) -> String {
        "NoopTable".to_string()
    }

    fn add_batch(
        &mut self,
        _batch_id: u64,
        _schema: &SchemaRef,
        _batches: &[RecordBatch],
        _mode: SinkOutputMode,
    ) -> Result<()> {
        Ok(())
    }
}
