//! The file sink (Spark's `FileStreamSink`): each batch writes one part file
//! `part-00000-<uuid>-c000.<ext>` straight into the output directory, then commits it by adding
//! `_spark_metadata/<batchId>` (SinkFileStatus lines; `<batchId>.compact` every 10 batches),
//! exactly as spark-formats.md §3–§6 describe, so Spark and weir readers see only committed
//! files. A batch id already in the log is skipped.

use std::fs::{self, File};
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::time::UNIX_EPOCH;

use arrow::datatypes::SchemaRef;
use arrow::record_batch::RecordBatch;
use parquet::arrow::ArrowWriter;
use parquet::basic::Compression;
use parquet::file::properties::WriterProperties;
use serde::{Deserialize, Serialize};

use crate::checkpoint::{CompactibleLog, DEFAULT_COMPACT_INTERVAL, PendingWrites, file_uri};
use crate::error::{Error, Result};
use crate::sink::format::{Json, iso_timestamp, json_rows, json_value, show_value};
use crate::sink::{Sink, SinkOutputMode};
use crate::source::{FileFormat, SourceOptions};

/// One line of `_spark_metadata/<b>` (Spark's SinkFileStatus, fields in Spark's order).
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct SinkFileStatus {
    /// `file://` + the percent-encoded absolute path.
    pub path: String,
    /// The file length in bytes.
    pub size: u64,
    /// Always false.
    pub is_dir: bool,
    /// The file's mtime in ms.
    pub modification_time: i64,
    /// 1 (the local file system's value).
    pub block_replication: u32,
    /// 33554432 (the local file system's value).
    pub block_size: u64,
    /// Always `add`.
    pub action: String,
}

/// The files committed in a file sink's output directory `dir`, read from its
/// `_spark_metadata` log as Spark's `MetadataLogFileIndex` does (newest compaction plus the
/// batches after it). Entries with size 0 or `isDir` are left out, as Spark does. Returns an
/// empty list when the directory has no log.
pub fn committed_files(dir: &Path) -> Result<Vec<SinkFileStatus>> {
    let meta_dir = dir.join("_spark_metadata");
    if !meta_dir.is_dir() {
        return Ok(Vec::new());
    }
    let log = CompactibleLog::open(&meta_dir, DEFAULT_COMPACT_INTERVAL, None, false)?;
    let mut files = Vec::new();
    for line in log.all_entries()? {
        let status: SinkFileStatus = serde_json::from_str(&line).map_err(|e| {
            Error::checkpoint(
                &meta_dir,
                format!("a _spark_metadata entry is not a SinkFileStatus ({e}): {line}"),
            )
        })?;
        if status.size > 0 && !status.is_dir {
            files.push(status);
        }
    }
    Ok(files)
}

/// Writes batches as parquet, csv or json files with a `_spark_metadata` log.
pub(crate) struct FileSink {
    format: FileFormat,
    dir: PathBuf,
    log: CompactibleLog,
    /// The query's pending writes: part files are made from its ready temp files.
    pending: PendingWrites,
    /// The newest batch in the log once known (`Some(None)`: empty), so a batch need not
    /// list `_spark_metadata`. This sink is the log's only writer (another writer is caught
    /// when its entry already exists).
    latest_batch: Option<Option<u64>>,
    fsync: bool,
    csv_header: bool,
    csv_sep: char,
}

impl FileSink {
    pub(crate) fn new(
        format: FileFormat,
        opts: &SourceOptions,
        fsync: bool,
        pending: PendingWrites,
    ) -> Result<FileSink> {
        if format == FileFormat::Text {
            return Err(Error::Unsupported(
                "the text file sink is not supported; use csv, json or parquet".into(),
            ));
        }
        if opts.get("partitionBy").is_some() {
            return Err(Error::Unsupported(
                "partitionBy is not supported by weir's file sink".into(),
            ));
        }
        let raw = opts
            .get("path")
            .ok_or_else(|| Error::option("path", "'path' is not specified for the file sink"))?;
        let raw = raw.strip_prefix("file://").unwrap_or(raw);
        let raw = raw.strip_prefix("file:").unwrap_or(raw);
        let dir = std::path::absolute(raw).map_err(|e| Error::io(raw, e))?;
        let meta_dir = dir.join("_spark_metadata");
        fs::create_dir_all(&meta_dir).map_err(|e| Error::io(&meta_dir, e))?;
        PendingWrites::remove_stale_pool_files(&dir);
        PendingWrites::remove_stale_pool_files(&meta_dir);
        let csv_sep = match opts.get("sep").or(opts.get("delimiter")) {
            None => ',',
            Some(s) if s.chars().count() == 1 => s.chars().next().unwrap_or(','),
            Some(s) => {
                return Err(Error::option(
                    "sep",
                    format!("'{s}' must be a single character"),
                ));
            }
        };
        Ok(FileSink {
            format,
            log: CompactibleLog::open(&meta_dir, DEFAULT_COMPACT_INTERVAL, None, fsync)?
                .with_pending_writes(pending.clone()),
            pending,
            latest_batch: None,
            dir,
            fsync,
            csv_header: opts.bool("header", false)?,
            csv_sep,
        })
    }

    fn error(&self, message: impl Into<String>) -> Error {
        Error::Sink {
            sink: self.description(),
            message: message.into(),
        }
    }

    fn extension(&self) -> &'static str {
        match self.format {
            FileFormat::Parquet => ".snappy.parquet",
            FileFormat::Csv => ".csv",
            FileFormat::Json | FileFormat::Text => ".json",
        }
    }

    /// Writes one complete data file (not yet fsynced: its log entry's write syncs it) and
    /// returns its status entry, the open file and its path.
    fn write_part(
        &self,
        schema: &SchemaRef,
        batches: &[RecordBatch],
    ) -> Result<(SinkFileStatus, File, PathBuf)> {
        let name = format!(
            "part-00000-{}-c000{}",
            uuid::Uuid::new_v4(),
            self.extension()
        );
        let path = self.dir.join(&name);
        let file = self.pending.create_file(&path)?;
        let file = match self.format {
            FileFormat::Parquet => {
                let props = WriterProperties::builder()
                    .set_compression(Compression::SNAPPY)
                    .build();
                let mut writer = ArrowWriter::try_new(file, schema.clone(), Some(props))?;
                for batch in batches {
                    writer.write(batch)?;
                }
                writer.into_inner()?
            }
            FileFormat::Json | FileFormat::Text => {
                let mut out = BufWriter::new(file);
                for batch in batches {
                    for row in json_rows(batch) {
                        let line = Json::Object(row).to_text();
                        out.write_all(line.as_bytes())
                            .and_then(|()| out.write_all(b"\n"))
                            .map_err(|e| Error::io(&path, e))?;
                    }
                }
                self.finish(out, &path)?
            }
            FileFormat::Csv => {
                let mut out = BufWriter::new(file);
                if self.csv_header {
                    let names: Vec<String> = schema
                        .fields()
                        .iter()
                        .map(|f| self.csv_field(f.name()))
                        .collect();
                    writeln!(out, "{}", names.join(&self.csv_sep.to_string()))
                        .map_err(|e| Error::io(&path, e))?;
                }
                for batch in batches {
                    for row in 0..batch.num_rows() {
                        let cells: Vec<String> = batch
                            .columns()
                            .iter()
                            .map(|c| {
                                if c.is_null(row) {
                                    String::new()
                                } else if let arrow::datatypes::DataType::Timestamp(_, _) =
                                    c.data_type()
                                {
                                    json_timestamp_text(c, row)
                                } else {
                                    self.csv_field(&show_value(c, row))
                                }
                            })
                            .collect();
                        writeln!(out, "{}", cells.join(&self.csv_sep.to_string()))
                            .map_err(|e| Error::io(&path, e))?;
                    }
                }
                self.finish(out, &path)?
            }
        };
        let meta = fs::metadata(&path).map_err(|e| Error::io(&path, e))?;
        let modification_time = meta
            .modified()
            .ok()
            .and_then(|t| t.duration_since(UNIX_EPOCH).ok())
            .map(|d| d.as_millis() as i64)
            .unwrap_or(0);
        let status = SinkFileStatus {
            path: file_uri(&path),
            size: meta.len(),
            is_dir: false,
            modification_time,
            block_replication: 1,
            block_size: 33_554_432,
            action: "add".into(),
        };
        Ok((status, file, path))
    }

    fn finish(&self, out: BufWriter<File>, path: &Path) -> Result<File> {
        out.into_inner()
            .map_err(|e| Error::io(path, e.into_error()))
    }

    /// Quotes a CSV field when needed; quotes inside are escaped with a backslash, as Spark's
    /// writer does (so, as in Spark, a value ending in a backslash does not round-trip).
    fn csv_field(&self, value: &str) -> String {
        let needs_quotes = value.contains(self.csv_sep)
            || value.contains('"')
            || value.contains('\n')
            || value.contains('\r')
            || value.is_empty();
        if needs_quotes {
            format!("\"{}\"", value.replace('"', "\\\""))
        } else {
            value.to_string()
        }
    }
}

fn json_timestamp_text(array: &arrow::array::ArrayRef, row: usize) -> String {
    match json_value(array, row) {
        Some(Json::Scalar(serde_json::Value::String(s))) => s,
        _ => iso_timestamp(0),
    }
}

impl Sink for FileSink {
    fn last_committed_batch(&self) -> Result<Option<u64>> {
        self.log.latest_batch_id()
    }

    /// The part files are invisible until the `_spark_metadata` entry names them, and that
    /// entry is a checked create through the query's pending writes.
    fn commits_through_pending_writes(&self) -> bool {
        self.log.has_pending_writes()
    }

    fn description(&self) -> String {
        format!("FileSink[file:{}]", self.dir.display())
    }

    fn add_batch(
        &mut self,
        batch_id: u64,
        schema: &SchemaRef,
        batches: &[RecordBatch],
        mode: SinkOutputMode,
    ) -> Result<()> {
        if mode != SinkOutputMode::Append {
            let mode_name = match mode {
                SinkOutputMode::Update => "Update",
                _ => "Complete",
            };
            return Err(self.error(format!(
                "Data source {} does not support {mode_name} output mode",
                self.format.name()
            )));
        }
        let latest = match self.latest_batch {
            Some(known) => known,
            None => self.log.latest_batch_id()?,
        };
        if let Some(latest) = latest {
            if batch_id <= latest {
                return Ok(());
            }
            if batch_id > latest + 1 {
                return Err(self.error(format!(
                    "batch {batch_id} follows batch {latest} in _spark_metadata; the log must \
                     stay contiguous (was the output directory reused by another query?)"
                )));
            }
        }
        let rows: usize = batches.iter().map(RecordBatch::num_rows).sum();
        let mut entries = Vec::new();
        let mut written = Vec::new();
        // Like Spark's task 0, an empty batch still writes a schema-only Parquet file.
        if rows > 0 || self.format == FileFormat::Parquet {
            let (status, file, path) = self.write_part(schema, batches)?;
            entries
                .push(serde_json::to_string(&status).map_err(|e| Error::Internal(e.to_string()))?);
            written.push((file, path));
        }
        // The data files and the directory naming them become durable in the same fsync round
        // as the log entry's temp files, before the entry is named.
        let dir = if written.is_empty() || !self.fsync {
            None
        } else {
            Some(File::open(&self.dir).map_err(|e| Error::io(&self.dir, e))?)
        };
        let mut also: Vec<(&File, &Path)> = written.iter().map(|(f, p)| (f, p.as_path())).collect();
        if let Some(d) = &dir {
            also.push((d, self.dir.as_path()));
        }
        if !self.log.add_with(batch_id, &entries, &also)? {
            return Err(self.error(format!(
                "_spark_metadata/{batch_id} appeared while this batch was being written: another \
                 query writes to the same output directory"
            )));
        }
        self.latest_batch = Some(Some(batch_id));
        Ok(())
    }
}
