//! Versioned, durable state store for one (stateful operator, shard), after Spark's
//! HDFS-backed state store: one delta file per committed version, a snapshot every
//! `snapshot_interval` versions written off the hot path, loading = newest snapshot at or below
//! the version plus the deltas after it, and purging of files older than the retained versions.
//!
//! Owns the files under `<checkpoint>/state/<op>/<shard>/` and nothing else. The in-memory state
//! (for aggregation, weir-jit's group state) belongs to the operator: it hands this store
//! Arrow record batches (keys first, then values) and gets one back on load. This module must not
//! touch other checkpoint files, and it keeps no copy of the state in memory.
//!
//! # Files
//! Every data file is a plain Arrow IPC *file* (readable by `arrow::ipc::reader::FileReader`,
//! no weir code needed). Its footer metadata `weir.state.crc32c` checksums the whole file (see
//! `files.rs`); its schema metadata says `weir.state.format` (`"1"`), `weir.state.kind`
//! (`delta` | `snapshot`), `weir.state.version` and `weir.state.key_columns`.
//! - `<v>.delta`: the state schema's columns (value columns made nullable) plus a last column
//!   `__weir_removed: Boolean`, in one record batch (none when nothing changed): first the
//!   upserts (full rows, flag false), then the removals (keys, null values, flag true). Rows are
//!   applied in file order, so a key both upserted and removed in one commit ends up removed; of
//!   several upserts of one key the last wins.
//! - `<v>.snapshot`: exactly the state schema; the full state as of version `v`.
//!
//! Version `v` is the state after batch `v - 1` (Spark's numbering): batch 0 commits `1.delta`.
//! Loaded state comes back sorted by key (arrow-row order), so it does not depend on how the
//! history was split into snapshot and deltas.

mod files;
mod fingerprint;
mod merge;

use std::collections::HashMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use arrow::array::{Array, ArrayRef, BooleanArray, new_null_array};
use arrow::compute::concat_batches;
use arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use arrow::record_batch::{RecordBatch, RecordBatchOptions};

use crate::error::{Error, Result};
use files::{DiskUsage, FileKind, RECOVERY_HINT};
pub use fingerprint::{StateColumn, StateSchemaFingerprint};
use merge::KeyedMerge;

/// Name of the flag column that marks removal rows in a delta file.
pub const REMOVED_COLUMN: &str = "__weir_removed";

const META_FORMAT: &str = "weir.state.format";
const META_KIND: &str = "weir.state.kind";
const META_VERSION: &str = "weir.state.version";
const META_KEY_COLUMNS: &str = "weir.state.key_columns";
const FORMAT_VERSION: &str = "1";

/// Tuning of a [`StateStore`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StateStoreOptions {
    /// A snapshot is written for every version that is a multiple of this (Spark's
    /// `minDeltasForSnapshot`, default 10). Must be at least 1.
    pub snapshot_interval: u64,
    /// Purging keeps every file needed to load any of the newest this-many versions (Spark's
    /// `minBatchesToRetain`, default 100). Must be at least 1.
    pub min_versions_to_retain: u64,
    /// Whether writes are fsynced (file and directory). Turn off only in tests.
    pub fsync: bool,
}

impl Default for StateStoreOptions {
    fn default() -> Self {
        StateStoreOptions {
            snapshot_interval: 10,
            min_versions_to_retain: 100,
            fsync: true,
        }
    }
}

/// What one [`StateStore::commit`] wrote.
#[derive(Debug, Clone, PartialEq)]
pub struct CommitStats {
    /// The version committed.
    pub version: u64,
    /// Rows written as upserts.
    pub upserted_rows: usize,
    /// Keys written as removals.
    pub removed_rows: usize,
    /// Size of the delta file in bytes.
    pub bytes_written: u64,
    /// Wall time of the commit (validate, encode, write, fsync, rename).
    pub commit_time: Duration,
}

/// Metrics of a [`StateStore`] for progress reporting. Row counts and memory belong to the
/// operator, which holds the state.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct StateStoreMetrics {
    /// Wall time of the last commit in whole milliseconds (Spark's `commitTimeMs`).
    pub commit_time_ms: u64,
    /// Total bytes of the store's files.
    pub bytes_on_disk: u64,
    /// Number of the store's files (deltas and snapshots).
    pub files_on_disk: u64,
    /// The version last loaded or committed, if any.
    pub last_version: Option<u64>,
    /// The newest snapshot on disk, if any.
    pub last_snapshot_version: Option<u64>,
}

/// The rows of one record batch of a state file, in state column order.
#[derive(Debug)]
struct FileRows {
    columns: Vec<ArrayRef>,
    num_rows: usize,
    /// The removal flags of a delta; `None` for a snapshot.
    removed: Option<BooleanArray>,
}

/// A snapshot being written by the background thread.
#[derive(Debug)]
struct SnapshotTask {
    version: u64,
    handle: JoinHandle<Result<()>>,
}

/// The versioned state of one (operator, shard); see the module documentation.
///
/// Protocol: [`open`](Self::open), [`load`](Self::load)`(v)` (a store whose directory has no
/// files is already at version 0, so a fresh start may skip it), then per batch
/// [`commit`](Self::commit)`(v + 1, ..)` and [`maybe_snapshot`](Self::maybe_snapshot)`(v + 1,
/// ..)`, and [`purge`](Self::purge) now and then. Dropping the store waits for a snapshot in
/// progress.
#[derive(Debug)]
pub struct StateStore {
    dir: PathBuf,
    schema: SchemaRef,
    key_columns: usize,
    options: StateStoreOptions,
    fingerprint: StateSchemaFingerprint,
    /// The state fields with nullable values, plus [`REMOVED_COLUMN`] (no metadata).
    delta_fields: Vec<Field>,
    current_version: Option<u64>,
    last_commit_time: Duration,
    usage: Arc<DiskUsage>,
    snapshot_task: Option<SnapshotTask>,
}

impl StateStore {
    /// Opens the directory `<state_root>/<op>/<shard>/` (creating it) for a state whose rows have
    /// `schema`: the first `key_columns` columns are the key (any type arrow-row encodes, zero
    /// for a global aggregate), the rest the values. Leftover temp files of interrupted writes are
    /// removed.
    pub fn open(
        state_root: &Path,
        op: usize,
        shard: usize,
        schema: SchemaRef,
        key_columns: usize,
        opts: StateStoreOptions,
    ) -> Result<StateStore> {
        if opts.snapshot_interval == 0 {
            return Err(Error::option(
                "snapshot_interval",
                "must be at least 1 (a snapshot every N versions)",
            ));
        }
        if opts.min_versions_to_retain == 0 {
            return Err(Error::option(
                "min_versions_to_retain",
                "must be at least 1 (the newest version must stay loadable)",
            ));
        }
        let fingerprint = StateSchemaFingerprint::of(&schema, key_columns)?;
        if let Some(field) = schema.fields().iter().find(|f| f.name() == REMOVED_COLUMN) {
            return Err(Error::Unsupported(format!(
                "a state column may not be named '{}': the name is reserved by weir's state files",
                field.name()
            )));
        }
        // Validates that every key type can be encoded, before any file is written.
        merge::KeyEncoder::new(&schema, key_columns)?;
        let dir = state_root.join(op.to_string()).join(shard.to_string());
        fs::create_dir_all(&dir).map_err(|e| Error::io(&dir, e))?;
        let usage = Arc::new(DiskUsage::scan(&dir)?);
        // A store without files holds version 0 (the empty state); otherwise `load` says which.
        let current_version = (usage.totals().1 == 0).then_some(0);
        let delta_fields = schema
            .fields()
            .iter()
            .enumerate()
            .map(|(i, f)| {
                let field = f.as_ref().clone();
                if i < key_columns {
                    field
                } else {
                    field.with_nullable(true)
                }
            })
            .chain([Field::new(REMOVED_COLUMN, DataType::Boolean, false)])
            .collect();
        Ok(StateStore {
            dir,
            schema,
            key_columns,
            options: opts,
            fingerprint,
            delta_fields,
            current_version,
            last_commit_time: Duration::ZERO,
            usage,
            snapshot_task: None,
        })
    }

    /// The store's directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The fingerprint of the state schema this store was opened with.
    pub fn fingerprint(&self) -> &StateSchemaFingerprint {
        &self.fingerprint
    }

    /// Loads the state as of `version` (= committed batch id + 1; 0 = empty): the newest snapshot
    /// at or below `version`, then every delta after it, in order. Returns the full state as one
    /// batch of the store's schema with unique keys, sorted by key.
    ///
    /// Fails with [`Error::State`] naming the file when a needed file is missing, truncated or
    /// damaged, or was written for a different state schema (a changed query). Afterwards the
    /// store is at `version`: the next commit must be `version + 1`.
    pub fn load(&mut self, version: u64) -> Result<RecordBatch> {
        let mut merge = KeyedMerge::new(self.schema.clone(), self.key_columns)?;
        if version > 0 {
            let on_disk = files::list_data_files(&self.dir)?;
            let base = on_disk
                .range(..=(version, FileKind::Snapshot))
                .rev()
                .find(|((_, kind), _)| *kind == FileKind::Snapshot)
                .map(|((v, _), path)| (*v, path.clone()));
            let first_delta = base.as_ref().map_or(1, |(v, _)| v + 1);
            // The whole chain must be there before anything is read.
            let deltas = (first_delta..=version)
                .map(
                    |delta_version| match on_disk.get(&(delta_version, FileKind::Delta)) {
                        Some(path) => Ok((delta_version, path)),
                        None => {
                            let from = match &base {
                                Some((v, _)) => format!("from snapshot {v}"),
                                None => "from the beginning (no snapshot is at or below it)".into(),
                            };
                            Err(Error::state(
                                self.dir
                                    .join(files::data_file_name(delta_version, FileKind::Delta)),
                                format!(
                                    "is missing; it is needed to load state version {version} \
                                 {from}; {RECOVERY_HINT}"
                                ),
                            ))
                        }
                    },
                )
                .collect::<Result<Vec<_>>>()?;
            if let Some((snapshot_version, path)) = &base {
                for part in self.read_state_file(path, *snapshot_version, FileKind::Snapshot)? {
                    merge.apply(part.columns, part.num_rows, None)?;
                }
            }
            for (delta_version, path) in deltas {
                for part in self.read_state_file(path, delta_version, FileKind::Delta)? {
                    merge.apply(part.columns, part.num_rows, part.removed.as_ref())?;
                }
            }
        }
        let state = merge.finish()?;
        self.current_version = Some(version);
        Ok(state)
    }

    /// Commits `version` = the previous version plus `upserts` (full rows of the state schema
    /// whose keys are new or changed) and `removals` (the key columns only, of keys to drop).
    /// Writes `<version>.delta` (checksummed) atomically, replacing a file left by an
    /// earlier, uncommitted attempt at the same batch.
    ///
    /// A batch without rows means "no change" whatever its columns (e.g.
    /// `RecordBatch::new_empty(Arc::new(Schema::empty()))`); an empty delta is still written,
    /// since every version needs its file.
    ///
    /// The store must be at `version - 1` (after [`load`](Self::load), the previous commit, or
    /// opening an empty directory); anything else, or rows of the wrong columns, is a bug in the
    /// caller ([`Error::Internal`]).
    pub fn commit(
        &mut self,
        version: u64,
        upserts: &RecordBatch,
        removals: &RecordBatch,
    ) -> Result<CommitStats> {
        let started = Instant::now();
        match self.current_version {
            Some(current) if version >= 1 && current == version - 1 => {}
            current => {
                return Err(Error::Internal(format!(
                    "state store {}: commit of version {version} but the store is at {}; \
                     load version {} first",
                    self.dir.display(),
                    current.map_or("no version (nothing loaded)".to_string(), |v| v.to_string()),
                    version.saturating_sub(1)
                )));
            }
        }
        if upserts.num_rows() > 0 {
            self.check_upserts(upserts)?;
        }
        if removals.num_rows() > 0 {
            self.check_removals(removals)?;
        }
        let schema = self.file_schema(FileKind::Delta, version);
        let mut batches = Vec::with_capacity(2);
        if upserts.num_rows() > 0 {
            let mut columns = upserts.columns().to_vec();
            columns.push(Arc::new(BooleanArray::from(vec![
                false;
                upserts.num_rows()
            ])));
            batches.push(RecordBatch::try_new(schema.clone(), columns)?);
        }
        if removals.num_rows() > 0 {
            let rows = removals.num_rows();
            let mut columns = removals.columns().to_vec();
            columns.extend(
                self.schema.fields()[self.key_columns..]
                    .iter()
                    .map(|f| new_null_array(f.data_type(), rows)),
            );
            columns.push(Arc::new(BooleanArray::from(vec![true; rows])));
            let options = RecordBatchOptions::new().with_row_count(Some(rows));
            batches.push(RecordBatch::try_new_with_options(
                schema.clone(),
                columns,
                &options,
            )?);
        }
        // One record batch per file: the IPC file format cannot replace a dictionary between
        // batches, so dictionary-encoded columns need upserts and removals in one batch.
        if batches.len() > 1 {
            batches = vec![concat_batches(&schema, &batches)?];
        }
        let bytes = files::encode_ipc(&schema, &batches)?;
        files::write_tracked(
            &self.dir,
            &files::data_file_name(version, FileKind::Delta),
            &bytes,
            self.options.fsync,
            &self.usage,
        )?;
        self.current_version = Some(version);
        self.last_commit_time = started.elapsed();
        Ok(CommitStats {
            version,
            upserted_rows: upserts.num_rows(),
            removed_rows: removals.num_rows(),
            bytes_written: bytes.len() as u64,
            commit_time: self.last_commit_time,
        })
    }

    /// When `version` is a positive multiple of `snapshot_interval`, writes `<version>.snapshot`
    /// from `full_state` (the whole state at `version`, as the caller holds it) on a background
    /// thread owned by the store; returns at once. A previous snapshot still running is waited
    /// for first, and its failure is returned. A snapshot already on disk for that version (from
    /// an earlier attempt at the same batch) that verifies is kept.
    ///
    /// `version` must be the store's current version (just committed or loaded).
    pub fn maybe_snapshot(&mut self, version: u64, full_state: &RecordBatch) -> Result<()> {
        if version == 0 || !version.is_multiple_of(self.options.snapshot_interval) {
            return Ok(());
        }
        if self.current_version != Some(version) {
            return Err(Error::Internal(format!(
                "state store {}: snapshot of version {version} requested but the store is at {:?}",
                self.dir.display(),
                self.current_version
            )));
        }
        let schema = self.file_schema(FileKind::Snapshot, version);
        let options = RecordBatchOptions::new().with_row_count(Some(full_state.num_rows()));
        let state = RecordBatch::try_new_with_options(
            schema.clone(),
            full_state.columns().to_vec(),
            &options,
        )
        .map_err(|e| {
            Error::Internal(format!(
                "snapshot of state store {} does not match the state schema: {e}",
                self.dir.display()
            ))
        })?;
        self.wait_for_snapshot()?;
        let dir = self.dir.clone();
        let fsync = self.options.fsync;
        let usage = Arc::clone(&self.usage);
        let handle = std::thread::Builder::new()
            .name(format!("weir-state-snapshot-{version}"))
            .spawn(move || write_snapshot(&dir, version, &schema, &state, fsync, &usage))
            .map_err(|e| Error::io(&self.dir, e))?;
        self.snapshot_task = Some(SnapshotTask { version, handle });
        Ok(())
    }

    /// Waits for a background snapshot in progress, if any, and returns its failure. A failed
    /// snapshot loses nothing (the deltas stay until a later snapshot covers them); the next
    /// [`maybe_snapshot`](Self::maybe_snapshot) at an interval writes another.
    pub fn wait_for_snapshot(&mut self) -> Result<()> {
        let Some(task) = self.snapshot_task.take() else {
            return Ok(());
        };
        match task.handle.join() {
            Ok(result) => result,
            Err(_) => Err(Error::Internal(format!(
                "the thread writing snapshot {} of state store {} panicked",
                task.version,
                self.dir.display()
            ))),
        }
    }

    /// Deletes files no longer needed to load any of the newest `min_versions_to_retain`
    /// versions (counted back from the current version, or from the newest file when nothing
    /// was loaded): every delta at or below, and every snapshot below, the newest snapshot that
    /// can serve as the base for the oldest retained version. Only a snapshot that ends with a
    /// complete Arrow footer serves as a base. Does not wait for a background snapshot.
    pub fn purge(&mut self) -> Result<()> {
        let on_disk = files::list_data_files(&self.dir)?;
        let Some(newest) = self
            .current_version
            .or_else(|| on_disk.keys().map(|(v, _)| *v).max())
        else {
            return Ok(());
        };
        let oldest_retained = newest.saturating_sub(self.options.min_versions_to_retain - 1);
        let base = on_disk
            .iter()
            .filter(|((v, kind), path)| {
                *kind == FileKind::Snapshot
                    && *v <= oldest_retained
                    && files::ends_with_footer(path)
            })
            .map(|((v, _), _)| *v)
            .max();
        let Some(base) = base else {
            return Ok(());
        };
        for ((version, kind), path) in &on_disk {
            let obsolete = match kind {
                FileKind::Delta => *version <= base,
                FileKind::Snapshot => *version < base,
            };
            if obsolete {
                files::remove_tracked(path, &self.usage)?;
            }
        }
        Ok(())
    }

    /// Current metrics.
    pub fn metrics(&self) -> StateStoreMetrics {
        let (bytes_on_disk, files_on_disk) = self.usage.totals();
        StateStoreMetrics {
            commit_time_ms: u64::try_from(self.last_commit_time.as_millis()).unwrap_or(u64::MAX),
            bytes_on_disk,
            files_on_disk,
            last_version: self.current_version,
            last_snapshot_version: self.usage.newest_snapshot(),
        }
    }

    /// The schema (with weir's metadata) of a `kind` file at `version`.
    fn file_schema(&self, kind: FileKind, version: u64) -> SchemaRef {
        let metadata = HashMap::from([
            (META_FORMAT.to_string(), FORMAT_VERSION.to_string()),
            (META_KIND.to_string(), kind.extension().to_string()),
            (META_VERSION.to_string(), version.to_string()),
            (META_KEY_COLUMNS.to_string(), self.key_columns.to_string()),
        ]);
        let fields: Vec<Field> = match kind {
            FileKind::Delta => self.delta_fields.clone(),
            FileKind::Snapshot => self
                .schema
                .fields()
                .iter()
                .map(|f| f.as_ref().clone())
                .collect(),
        };
        Arc::new(Schema::new_with_metadata(fields, metadata))
    }

    /// Fails unless `upserts` fits the state schema (column types, nulls only where allowed).
    fn check_upserts(&self, upserts: &RecordBatch) -> Result<()> {
        let options = RecordBatchOptions::new().with_row_count(Some(upserts.num_rows()));
        RecordBatch::try_new_with_options(self.schema.clone(), upserts.columns().to_vec(), &options)
            .map(drop)
            .map_err(|e| {
                Error::Internal(format!(
                    "state store {}: upserts do not match the state schema {}: {e}",
                    self.dir.display(),
                    self.fingerprint
                ))
            })
    }

    /// Fails unless `removals` has exactly the key columns' types.
    fn check_removals(&self, removals: &RecordBatch) -> Result<()> {
        let expected: Vec<&DataType> = self.schema.fields()[..self.key_columns]
            .iter()
            .map(|f| f.data_type())
            .collect();
        let actual: Vec<&DataType> = removals.columns().iter().map(|c| c.data_type()).collect();
        if expected != actual {
            return Err(Error::Internal(format!(
                "state store {}: removals must hold exactly the key columns {:?}, got {:?}",
                self.dir.display(),
                expected,
                actual
            )));
        }
        Ok(())
    }

    /// Reads and verifies one data file: checksum, weir metadata (kind, version), and that its
    /// columns are this store's.
    fn read_state_file(&self, path: &Path, version: u64, kind: FileKind) -> Result<Vec<FileRows>> {
        let bytes = files::read_checked(path)?;
        let (file_schema, batches) = files::decode_ipc(path, bytes)?;
        let metadata = file_schema.metadata();
        let meta = |key: &str| metadata.get(key).map(String::as_str);
        if meta(META_FORMAT) != Some(FORMAT_VERSION) {
            return Err(Error::state(
                path,
                format!(
                    "is not a weir state file of format {FORMAT_VERSION} (schema metadata \
                     {META_FORMAT} is {:?}); {RECOVERY_HINT}",
                    meta(META_FORMAT)
                ),
            ));
        }
        let expected_version = version.to_string();
        if meta(META_KIND) != Some(kind.extension())
            || meta(META_VERSION) != Some(&expected_version)
        {
            return Err(Error::state(
                path,
                format!(
                    "holds {} version {} but its name says {} version {version} (was it copied \
                     or renamed?); {RECOVERY_HINT}",
                    meta(META_KIND).unwrap_or("?"),
                    meta(META_VERSION).unwrap_or("?"),
                    kind.extension()
                ),
            ));
        }
        let file_key_columns = meta(META_KEY_COLUMNS)
            .and_then(|k| k.parse::<usize>().ok())
            .ok_or_else(|| {
                Error::state(
                    path,
                    format!("has no valid {META_KEY_COLUMNS} metadata; {RECOVERY_HINT}"),
                )
            })?;
        let mut state_fields: Vec<Field> = file_schema
            .fields()
            .iter()
            .map(|f| f.as_ref().clone())
            .collect();
        if kind == FileKind::Delta {
            match state_fields.pop() {
                Some(flag)
                    if flag.name() == REMOVED_COLUMN && *flag.data_type() == DataType::Boolean => {}
                _ => {
                    return Err(Error::state(
                        path,
                        format!(
                            "is a delta without its last column {REMOVED_COLUMN}: Boolean; \
                             {RECOVERY_HINT}"
                        ),
                    ));
                }
            }
        }
        let file_fingerprint =
            StateSchemaFingerprint::of(&Schema::new(state_fields.clone()), file_key_columns)
                .map_err(|_| {
                    Error::state(
                        path,
                        format!(
                            "declares {file_key_columns} key columns but has only {} columns; \
                         {RECOVERY_HINT}",
                            state_fields.len()
                        ),
                    )
                })?;
        if let Some(change) = file_fingerprint.describe_change(&self.fingerprint) {
            return Err(Error::state(
                path,
                format!(
                    "was written for a different state schema than this query's: {change}. The \
                     stateful part of the query changed (grouping keys, aggregates, window or \
                     deduplication columns), which an existing checkpoint cannot follow: run the \
                     original query, or delete the checkpoint to start over"
                ),
            ));
        }
        if let Some((field, expected)) = state_fields
            .iter()
            .zip(self.schema.fields())
            .find(|(field, expected)| field.data_type() != expected.data_type())
        {
            return Err(Error::state(
                path,
                format!(
                    "column '{}' has type {} but this query's state has {}; run the original \
                     query, or delete the checkpoint to start over",
                    field.name(),
                    field.data_type(),
                    expected.data_type()
                ),
            ));
        }
        Ok(batches
            .into_iter()
            .map(|batch| {
                let num_rows = batch.num_rows();
                let mut columns = batch.columns().to_vec();
                let removed = (kind == FileKind::Delta).then(|| {
                    columns
                        .pop()
                        .and_then(|flag| flag.as_any().downcast_ref::<BooleanArray>().cloned())
                });
                FileRows {
                    columns,
                    num_rows,
                    removed: removed.flatten(),
                }
            })
            .collect())
    }
}

impl Drop for StateStore {
    fn drop(&mut self) {
        // A snapshot in progress is finished, never abandoned. Its failure cannot be returned
        // from drop; call `wait_for_snapshot` first to see it. Nothing is lost either way: the
        // deltas it would have covered are still on disk.
        let _ = self.wait_for_snapshot();
    }
}

/// Body of the background snapshot thread.
fn write_snapshot(
    dir: &Path,
    version: u64,
    schema: &Schema,
    state: &RecordBatch,
    fsync: bool,
    usage: &DiskUsage,
) -> Result<()> {
    let name = files::data_file_name(version, FileKind::Snapshot);
    let path = dir.join(&name);
    if path.exists() && files::read_checked(&path).is_ok() {
        return Ok(());
    }
    let bytes = files::encode_ipc(schema, std::slice::from_ref(state))?;
    files::write_tracked(dir, &name, &bytes, fsync, usage)
}
