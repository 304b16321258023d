//! Streaming sources: the [`Source`] trait (shaped like Spark's `MicroBatchStream`), the factory
//! [`create_source`], and the built-in sources: files (csv, json lines, parquet, text), `rate`,
//! `rate-micro-batch` and the in-process [`MemoryStream`].
//!
//! A source only produces Arrow record batches for offset ranges and keeps its private
//! bookkeeping under `<checkpoint>/sources/<i>/`. It must not touch the query's offsets or
//! commits logs (the scheduler writes those through `checkpoint`) and must not evaluate plans.

mod csv_fast;
mod file;
mod memory;
mod options;
mod rate;
mod readers;

use std::collections::BTreeMap;
use std::path::PathBuf;

use arrow::datatypes::SchemaRef;
use arrow::record_batch::RecordBatch;

use crate::error::{Error, Result};

pub use file::FileSource;
pub use memory::MemoryStream;
pub use options::SourceOptions;
pub use rate::{RateMicroBatchSource, RateSource, rate_schema};
pub use readers::{FileFormat, ParseMode};

/// A source's position, serialised exactly as Spark writes it in `offsets/N`
/// (e.g. `{"logOffset":3}`, `{"offset":5,"timestamp":1000}`, `4`).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Offset(pub String);

impl Offset {
    /// The offset's JSON text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Display for Offset {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// How much a source may admit into one micro-batch (Spark's `ReadLimit`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ReadLimit {
    /// Everything available.
    All,
    /// At most this many new files (file source).
    MaxFiles(usize),
    /// At most this many bytes; at least one file is always taken so a query cannot stall.
    MaxBytes(u64),
    /// At most this many rows.
    MaxRows(u64),
}

/// A replayable streaming source.
///
/// Protocol (driven by the scheduler): `latest_offset(start, limit)` proposes the end of the
/// next batch; the scheduler writes it to `offsets/N`, calls `read(start, end)`, runs the batch,
/// writes `commits/N`, then calls `commit(end)`. After a crash it calls `read` again with the
/// recorded offsets, which must return the same rows.
pub trait Source: Send {
    /// Shown in progress JSON as `sources[].description`, e.g. `FileStreamSource[file:/x]`.
    fn description(&self) -> String;
    /// The schema of the rows [`Source::read`] returns (before any projection push-down).
    fn schema(&self) -> SchemaRef;
    /// The limit implied by the source's options (`maxFilesPerTrigger`, ...).
    fn default_read_limit(&self) -> ReadLimit;
    /// The end offset of the next batch: at most `limit` beyond `start`; `None` when there is no
    /// data at all yet. Returns `start` itself when there is nothing new. May discover new input
    /// (list files).
    fn latest_offset(&mut self, start: Option<&Offset>, limit: ReadLimit)
    -> Result<Option<Offset>>;
    /// The offset of everything available now, ignoring limits (availableNow: the stop point).
    /// Afterwards `latest_offset` walks up to it in rate-limited steps; the scheduler stops
    /// asking once a batch ends at this offset.
    fn available_now_offset(&mut self) -> Result<Option<Offset>>;
    /// The rows in `(start, end]`; deterministic: the same range always gives the same rows.
    fn read(&mut self, start: Option<&Offset>, end: &Offset) -> Result<Vec<RecordBatch>>;
    /// Everything up to `end` is committed and may be forgotten.
    fn commit(&mut self, end: &Offset) -> Result<()>;
    /// Whether [`Source::read`]`(start, end)` can still be served on recovery. A source whose
    /// own log entry for a batch joins the fsync round of `offsets/N` (the file source) may
    /// find after a power loss that `offsets/N` survived and its entry did not; the batch was
    /// then never committed anywhere and is planned again. Default: true.
    fn can_replay(&self, _start: Option<&Offset>, _end: &Offset) -> bool {
        true
    }
    /// Releases resources; called once when the query stops.
    fn stop(&mut self) {}
    /// Projection push-down, called once before the first batch with the column indices (into
    /// [`Source::schema`]) the query needs. Every built-in source honours it: [`Source::read`]
    /// then returns only those columns, in the given order (Parquet decodes only them). Indices
    /// out of range clear the projection (full rows). Other sources may ignore it (the default)
    /// and return full rows.
    fn push_projection(&mut self, _columns: &[usize]) {}
    /// Predicate push-down, called once before the first batch: every row the query keeps
    /// satisfies all `bounds`, so a source may skip data that cannot (Parquet row groups by their
    /// statistics). Advisory: the query still filters, so ignoring it is correct. Default: ignored.
    fn push_filters(&mut self, _bounds: &[ColumnBound]) {}
    /// Called once when the query starts: a source that can tell when new data may have
    /// arrived calls `wake` then, so an idle query looks at once instead of after its polling
    /// delay. Advisory: a missed or spurious call only costs latency. Default: never called
    /// (the query polls).
    fn on_new_data(&mut self, _wake: NewDataCallback) {}
}

/// What a source calls when new data may have arrived (see [`Source::on_new_data`]).
pub type NewDataCallback = std::sync::Arc<dyn Fn() + Send + Sync>;

/// A pushed-down predicate `column op value` on an integer or timestamp (µs) column.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ColumnBound {
    /// Column name in the source's schema.
    pub column: String,
    /// The comparison.
    pub op: BoundOp,
    /// The literal (microseconds for timestamps).
    pub value: i64,
}

/// The comparison of a [`ColumnBound`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BoundOp {
    /// `=`
    Eq,
    /// `<`
    Lt,
    /// `<=`
    LtEq,
    /// `>`
    Gt,
    /// `>=`
    GtEq,
}

impl ColumnBound {
    /// Whether some value in `[min, max]` can satisfy the bound.
    pub fn may_match(&self, min: i64, max: i64) -> bool {
        match self.op {
            BoundOp::Eq => min <= self.value && self.value <= max,
            BoundOp::Lt => min < self.value,
            BoundOp::LtEq => min <= self.value,
            BoundOp::Gt => max > self.value,
            BoundOp::GtEq => max >= self.value,
        }
    }
}

impl std::fmt::Debug for dyn Source {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.description())
    }
}

/// What a source gets from the engine when it is created.
#[derive(Clone, Debug, Default)]
pub struct SourceContext {
    /// `<checkpoint>/sources/<i>`: the source's private metadata directory.
    pub checkpoint_dir: PathBuf,
    /// Whether metadata writes are fsynced (see [`crate::checkpoint::CheckpointOptions`]).
    pub fsync: bool,
    /// The query's pending directory fsyncs, which the source's log writes join (see
    /// [`crate::checkpoint::PendingWrites`]; a default, unshared one outside a query).
    pub pending_writes: crate::checkpoint::PendingWrites,
}

/// Creates a source for `format`: `csv`, `json`, `parquet`, `text` (file sources; `schema` is
/// required except for `text`), `rate` or `rate-micro-batch`. Option names are Spark's,
/// matched case-insensitively. A [`MemoryStream`] is made with [`MemoryStream::new`] instead.
pub fn create_source(
    format: &str,
    options: &BTreeMap<String, String>,
    schema: Option<SchemaRef>,
    ctx: SourceContext,
) -> Result<Box<dyn Source>> {
    let opts = SourceOptions::new(options);
    match format.to_ascii_lowercase().as_str() {
        "rate" => Ok(Box::new(RateSource::new(&opts, ctx)?)),
        "rate-micro-batch" => Ok(Box::new(RateMicroBatchSource::new(&opts)?)),
        other => match FileFormat::from_name(other) {
            Some(file_format) => Ok(Box::new(FileSource::new(file_format, &opts, schema, ctx)?)),
            None => Err(Error::Unsupported(format!(
                "unknown streaming source format '{format}': use csv, json, parquet, text, rate or \
                 rate-micro-batch (memory streams are created with MemoryStream::new)"
            ))),
        },
    }
}

/// Applies a pushed-down projection to batches (no-op without one).
pub(crate) fn project_batches(
    batches: Vec<RecordBatch>,
    projection: Option<&[usize]>,
) -> Result<Vec<RecordBatch>> {
    match projection {
        None => Ok(batches),
        Some(cols) => batches
            .iter()
            .map(|b| b.project(cols).map_err(Error::from))
            .collect(),
    }
}

/// A projection is kept only when every index is a column of `schema`.
pub(crate) fn valid_projection(schema: &SchemaRef, columns: &[usize]) -> Option<Vec<usize>> {
    columns
        .iter()
        .all(|&c| c < schema.fields().len())
        .then(|| columns.to_vec())
}
