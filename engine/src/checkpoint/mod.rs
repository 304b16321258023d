//! Checkpoints in Spark's layout (spark-formats.md §1–§2): `metadata`, `offsets/N`,
//! `commits/N` and `sources/<i>/`, plus weir's crc32c sidecars, the exclusive run lock and
//! atomic writes.
//!
//! This module owns the checkpoint directory's files except `state/` (the state stores) and
//! the content of the sources' private logs (the sources write those with the helpers here:
//! [`CompactibleLog`], [`atomic_write`]). It does not decide what a batch is: the scheduler
//! calls [`Checkpoint::write_offsets`] before running batch N and
//! [`Checkpoint::write_commit`] after the sink committed it.
//!
//! Integrity: every file weir writes here is written atomically (temp file, fsync, rename or
//! hard link, directory fsync) and gets a `<name>.crc` sidecar with its crc32c, size and the
//! query id. [`Checkpoint::open`] verifies all of them and names the damaged file. Files that
//! Spark wrote have no sidecar and are accepted as they are, unless the checkpoint was created
//! by weir (its `metadata` sidecar says so), in which case a missing sidecar is damage.

mod files;
mod lock;
mod metadata_log;

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};

use serde_json::{Map, Value};

pub use files::{
    PendingWrites, atomic_create, atomic_write, checksum_path, file_uri, path_from_uri,
};
pub(crate) use files::{create_checked, read_checked, remove_checked};

/// fsyncs a directory so entries created in it are durable (no-op when `fsync` is false).
pub fn sync_dir(dir: &Path) -> Result<()> {
    files::sync_dir(dir, true)
}
pub use metadata_log::{CompactibleLog, DEFAULT_COMPACT_INTERVAL, parse_log_text};

use crate::error::{Error, Result};
use crate::source::Offset;
use lock::DirLock;

/// How many batches of offsets and commits [`Checkpoint::purge`] keeps by default
/// (`spark.sql.streaming.minBatchesToRetain`).
pub const DEFAULT_MIN_BATCHES_TO_RETAIN: u64 = 100;

/// Checkpoint settings.
#[derive(Clone, Copy, Debug)]
pub struct CheckpointOptions {
    /// fsync every file and its directory after writing (default `true`).
    ///
    /// With `false`, a process crash (kill -9, panic) is still safe because every write is an
    /// atomic rename, but a power loss or kernel crash may lose the last few batches' files
    /// or leave them empty; the next start then reports them as damaged (checksum) or re-runs
    /// the batches, and a non-idempotent sink may see output again. Spark's local file system
    /// never syncs, so this is what Spark gives on local disks.
    pub fsync: bool,
}

impl Default for CheckpointOptions {
    fn default() -> Self {
        CheckpointOptions { fsync: true }
    }
}

/// One `offsets/N` file (Spark's OffsetSeq): the batch's metadata and each source's end
/// offset.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct OffsetSeq {
    /// The event-time watermark batch N runs with (ms; 0 until one exists).
    pub batch_watermark_ms: i64,
    /// The batch's processing time (ms), reused on replay.
    pub batch_timestamp_ms: i64,
    /// Pinned settings (string → string).
    pub conf: BTreeMap<String, String>,
    /// One end offset per source, in source order (`None` is written as `-`).
    pub offsets: Vec<Option<Offset>>,
}

/// One `commits/N` file (Spark's CommitMetadata).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct CommitMetadata {
    /// The watermark of batch N+1 (ms).
    pub next_batch_watermark_ms: i64,
}

/// What to tell a user whose checkpoint file is damaged.
const RECOVER_HINT: &str = "the checkpoint is damaged: restore this file from a backup, or, if \
     reprocessing is acceptable, start the query with a new checkpoint location";

/// An open checkpoint directory, locked for this run.
#[derive(Debug)]
pub struct Checkpoint {
    dir: PathBuf,
    query_id: String,
    extra: Option<Value>,
    fsync: bool,
    created_by_weir: bool,
    /// Directory fsyncs left pending by this query's writes (see [`PendingWrites`]).
    pending: PendingWrites,
    _lock: DirLock,
}

impl Checkpoint {
    /// Opens or creates the checkpoint directory `dir`.
    ///
    /// Takes an exclusive lock (`flock` on `<dir>/.lock`; released when the `Checkpoint` is
    /// dropped or the process dies), so a second open of the same directory while a query runs
    /// fails. Creates `metadata` (`{"id":"<uuid>"}`) for a new checkpoint, otherwise reads it,
    /// and verifies every `offsets/` and `commits/` file: checksum, size, syntax, that the ids
    /// have no gap, and that every file belongs to the query named in `metadata`.
    pub fn open(dir: &Path, opts: CheckpointOptions) -> Result<Checkpoint> {
        fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
        let lock = DirLock::acquire(dir)?;
        let metadata_path = dir.join("metadata");
        let (query_id, extra, created_by_weir) = match read_checked(
            &metadata_path,
            false,
            RECOVER_HINT,
        )? {
            Some(file) => {
                let (id, extra) = parse_metadata(&metadata_path, &file.bytes)?;
                (id, extra, file.all_files_checksummed)
            }
            None => {
                let has_batches = !list_batch_ids(&dir.join("offsets"))?.is_empty()
                    || !list_batch_ids(&dir.join("commits"))?.is_empty();
                if has_batches {
                    return Err(Error::checkpoint(
                        &metadata_path,
                        "the file is missing but offsets/commits exist, so the query id is lost; \
                         restore 'metadata' from a backup or use a new checkpoint location",
                    ));
                }
                let id = uuid::Uuid::new_v4().to_string();
                let bytes = metadata_bytes(&id, None);
                files::replace_checked(&metadata_path, &bytes, Some(&id), true, opts.fsync)?;
                (id, None, true)
            }
        };
        let checkpoint = Checkpoint {
            dir: dir.to_path_buf(),
            query_id,
            extra,
            fsync: opts.fsync,
            created_by_weir,
            pending: PendingWrites::for_query(),
            _lock: lock,
        };
        for dir in [checkpoint.offsets_dir(), checkpoint.commits_dir()] {
            remove_stale_temp_files(&dir)?;
        }
        checkpoint.validate()?;
        Ok(checkpoint)
    }

    /// The stable query id from `metadata` (the progress JSON's `id`).
    pub fn query_id(&self) -> &str {
        &self.query_id
    }

    /// The checkpoint directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Whether writes are fsynced.
    pub fn fsync(&self) -> bool {
        self.fsync
    }

    /// `<checkpoint>/sources/<i>`: source `i`'s private directory.
    pub fn source_dir(&self, i: usize) -> PathBuf {
        self.dir.join("sources").join(i.to_string())
    }

    /// `<checkpoint>/state`: the state stores' directory.
    pub fn state_dir(&self) -> PathBuf {
        self.dir.join("state")
    }

    fn offsets_dir(&self) -> PathBuf {
        self.dir.join("offsets")
    }

    fn commits_dir(&self) -> PathBuf {
        self.dir.join("commits")
    }

    /// The JSON value stored next to `"id"` in `metadata` under the key `"weir"` (pinned
    /// settings, a fingerprint of the query's stateful part, ...), if any was written.
    pub fn extra_metadata(&self) -> Option<&Value> {
        self.extra.as_ref()
    }

    /// Stores `extra` in `metadata` under the key `"weir"` (Spark ignores unknown keys), keeping
    /// the query id. The file is replaced atomically.
    pub fn write_extra_metadata(&mut self, extra: Value) -> Result<()> {
        let bytes = metadata_bytes(&self.query_id, Some(&extra));
        files::replace_checked(
            &self.dir.join("metadata"),
            &bytes,
            Some(&self.query_id),
            self.created_by_weir,
            self.fsync,
        )?;
        self.extra = Some(extra);
        Ok(())
    }

    /// Writes `offsets/<batch_id>` (the write-ahead log entry of the batch), before the batch
    /// runs. Writing the same content again is a no-op; different content for an existing
    /// batch id is an error (another run is writing this checkpoint).
    pub fn write_offsets(&self, batch_id: u64, seq: &OffsetSeq) -> Result<()> {
        let path = self.offsets_dir().join(batch_id.to_string());
        let bytes = serialize_offsets(seq)?;
        self.create_or_same(&path, &bytes)
    }

    /// [`Self::write_offsets`] staged in the query's pending writes: the temp files are
    /// written now, and the next checked create of the query (the file sink's log entry for
    /// this batch) syncs them in its own fsync round and makes `offsets/N` durable before it
    /// names its own file. Only for sinks that commit that way (see
    /// `Sink::commits_through_pending_writes`); everything else needs the offsets durable
    /// before the batch runs. An existing `offsets/N` must have the same content.
    pub fn stage_offsets(&self, batch_id: u64, seq: &OffsetSeq) -> Result<()> {
        let path = self.offsets_dir().join(batch_id.to_string());
        let bytes = serialize_offsets(seq)?;
        if files::stage_checked(
            &path,
            &bytes,
            Some(&self.query_id),
            self.fsync,
            &self.pending,
        )? {
            return Ok(());
        }
        self.same_content(&path, &bytes)
    }

    /// Reads `offsets/<batch_id>`; `Ok(None)` when it does not exist.
    pub fn offsets(&self, batch_id: u64) -> Result<Option<OffsetSeq>> {
        let path = self.offsets_dir().join(batch_id.to_string());
        match self.read_owned(&path)? {
            Some(bytes) => parse_offsets(&path, &bytes).map(Some),
            None => Ok(None),
        }
    }

    /// The newest `offsets/N` and its content.
    pub fn latest_offsets(&self) -> Result<Option<(u64, OffsetSeq)>> {
        let Some(&batch_id) = list_batch_ids(&self.offsets_dir())?.last() else {
            return Ok(None);
        };
        let seq = self.offsets(batch_id)?.ok_or_else(|| {
            Error::checkpoint(
                self.offsets_dir().join(batch_id.to_string()),
                "the file disappeared while the checkpoint was open; is another process writing it?",
            )
        })?;
        Ok(Some((batch_id, seq)))
    }

    /// Writes `commits/<batch_id>` after the sink committed the batch. Same rules as
    /// [`Checkpoint::write_offsets`].
    pub fn write_commit(&self, batch_id: u64, c: &CommitMetadata) -> Result<()> {
        let path = self.commits_dir().join(batch_id.to_string());
        let bytes = format!(
            "v1\n{{\"nextBatchWatermarkMs\":{}}}",
            c.next_batch_watermark_ms
        );
        self.create_or_same(&path, bytes.as_bytes())
    }

    /// Reads `commits/<batch_id>`; `Ok(None)` when it does not exist.
    pub fn commit(&self, batch_id: u64) -> Result<Option<CommitMetadata>> {
        let path = self.commits_dir().join(batch_id.to_string());
        match self.read_owned(&path)? {
            Some(bytes) => parse_commit(&path, &bytes).map(Some),
            None => Ok(None),
        }
    }

    /// The newest `commits/N` and its content.
    pub fn latest_commit(&self) -> Result<Option<(u64, CommitMetadata)>> {
        let Some(&batch_id) = list_batch_ids(&self.commits_dir())?.last() else {
            return Ok(None);
        };
        let c = self.commit(batch_id)?.ok_or_else(|| {
            Error::checkpoint(
                self.commits_dir().join(batch_id.to_string()),
                "the file disappeared while the checkpoint was open; is another process writing it?",
            )
        })?;
        Ok(Some((batch_id, c)))
    }

    /// Deletes offsets and commits of all but the newest `keep_last` batches (Spark's
    /// `minBatchesToRetain`, default [`DEFAULT_MIN_BATCHES_TO_RETAIN`]).
    pub fn purge(&self, keep_last: u64) -> Result<()> {
        let Some(&latest) = list_batch_ids(&self.offsets_dir())?.last() else {
            return Ok(());
        };
        let keep_last = keep_last.max(1);
        let Some(first_kept) = (latest + 1).checked_sub(keep_last) else {
            return Ok(());
        };
        for dir in [self.offsets_dir(), self.commits_dir()] {
            for id in list_batch_ids(&dir)? {
                if id < first_kept {
                    self.pending.recycle(&dir.join(id.to_string()))?;
                }
            }
            // The removals need not be durable at once: the next write's round syncs the
            // directory (a crash before that only leaves old batches to purge again).
            if dir.exists() && self.fsync {
                self.pending.defer(dir);
            }
        }
        Ok(())
    }

    /// Removes `offsets/<batch_id>` of a batch that was never committed, so it is planned
    /// again (the recovery rule of `query`: its source log entry was lost). Refuses a
    /// committed batch.
    pub fn discard_uncommitted_offsets(&self, batch_id: u64) -> Result<()> {
        let path = self.offsets_dir().join(batch_id.to_string());
        if self.commits_dir().join(batch_id.to_string()).exists() {
            return Err(Error::checkpoint(
                path,
                "batch is committed; its offsets cannot be discarded",
            ));
        }
        remove_checked(&path)?;
        files::sync_dir(&self.offsets_dir(), self.fsync)
    }

    /// The query's pending directory fsyncs, shared with its sources' and sink's logs so
    /// that every write syncs the directories of the writes before it (see
    /// [`PendingWrites`]). `offsets/N` and `commits/N` leave their directory pending too.
    pub fn pending_writes(&self) -> PendingWrites {
        self.pending.clone()
    }

    fn create_or_same(&self, path: &Path, bytes: &[u8]) -> Result<()> {
        if files::create_checked_with(
            path,
            bytes,
            Some(&self.query_id),
            self.fsync,
            &[],
            Some(&self.pending),
        )? {
            return Ok(());
        }
        self.same_content(path, bytes)
    }

    /// Accepts an existing file only if it holds `bytes`.
    fn same_content(&self, path: &Path, bytes: &[u8]) -> Result<()> {
        let existing = self.read_owned(path)?.unwrap_or_default();
        if existing == bytes {
            return Ok(());
        }
        Err(Error::checkpoint(
            path,
            "the file already exists with other content: another run of this query wrote it \
             (only one run per checkpoint may be active)",
        ))
    }

    /// Reads a file of this checkpoint, verifies it and that it belongs to this query.
    fn read_owned(&self, path: &Path) -> Result<Option<Vec<u8>>> {
        let Some(file) = read_checked(path, self.created_by_weir, RECOVER_HINT)? else {
            return Ok(None);
        };
        if let Some(owner) = &file.owner
            && owner != &self.query_id
        {
            return Err(Error::checkpoint(
                self.dir.join("metadata"),
                format!(
                    "it names query {} but {} was written by query {owner}: 'metadata' belongs \
                         to another query (was it copied from another checkpoint?); restore the \
                         original 'metadata' or use a new checkpoint location",
                    self.query_id,
                    path.display()
                ),
            ));
        }
        Ok(Some(file.bytes))
    }

    /// Verifies all offsets and commits files and their sequence.
    fn validate(&self) -> Result<()> {
        let offsets = list_batch_ids(&self.offsets_dir())?;
        let commits = list_batch_ids(&self.commits_dir())?;
        for (dir, ids) in [
            (self.offsets_dir(), &offsets),
            (self.commits_dir(), &commits),
        ] {
            for pair in ids.windows(2) {
                if pair[1] != pair[0] + 1 {
                    return Err(Error::checkpoint(
                        dir.join((pair[0] + 1).to_string()),
                        format!(
                            "the file is missing: batches {} and {} exist but not the ones between; {RECOVER_HINT}",
                            pair[0], pair[1]
                        ),
                    ));
                }
            }
        }
        for &id in &offsets {
            self.offsets(id)?;
        }
        for &id in &commits {
            self.commit(id)?;
        }
        if let (Some(&last_commit), last_offsets) = (commits.last(), offsets.last().copied())
            && last_offsets.is_none_or(|o| o < last_commit)
        {
            return Err(Error::checkpoint(
                self.commits_dir().join(last_commit.to_string()),
                format!(
                    "batch {last_commit} is committed but offsets/{last_commit} does not exist; {RECOVER_HINT}"
                ),
            ));
        }
        if let Some(&last_offsets) = offsets.last() {
            let uncommitted = match commits.last() {
                Some(&last_commit) => last_offsets - last_commit,
                None => last_offsets + 1,
            };
            if uncommitted > 1 {
                return Err(Error::checkpoint(
                    self.offsets_dir().join(last_offsets.to_string()),
                    format!(
                        "offsets exist up to batch {last_offsets} but {} batches are uncommitted; \
                         weir writes offsets for one batch at a time, so files were added or \
                         commits removed by hand; {RECOVER_HINT}",
                        uncommitted
                    ),
                ));
            }
        }
        Ok(())
    }
}

/// Deletes `.<name>.<uuid>.tmp` files that a crash mid-write left behind (never visible as
/// batch files; removed only under the checkpoint lock).
fn remove_stale_temp_files(dir: &Path) -> Result<()> {
    let entries = match fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(Error::io(dir, e)),
    };
    for entry in entries {
        let entry = entry.map_err(|e| Error::io(dir, e))?;
        let name = entry.file_name();
        let name = name.to_string_lossy();
        if name.starts_with('.') && name.ends_with(".tmp") {
            let path = entry.path();
            fs::remove_file(&path).map_err(|e| Error::io(&path, e))?;
        }
    }
    Ok(())
}

/// The numeric file names in `dir`, sorted (other names such as `.0.crc`, `0.crc` are ignored).
fn list_batch_ids(dir: &Path) -> Result<Vec<u64>> {
    let entries = match fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(Error::io(dir, e)),
    };
    let mut ids = Vec::new();
    for entry in entries {
        let entry = entry.map_err(|e| Error::io(dir, e))?;
        let name = entry.file_name();
        let name = name.to_string_lossy();
        if !name.is_empty()
            && name.bytes().all(|b| b.is_ascii_digit())
            && let Ok(id) = name.parse::<u64>()
        {
            ids.push(id);
        }
    }
    ids.sort_unstable();
    Ok(ids)
}

fn metadata_bytes(id: &str, extra: Option<&Value>) -> Vec<u8> {
    let mut map = Map::new();
    map.insert("id".to_string(), Value::String(id.to_string()));
    if let Some(extra) = extra {
        map.insert("weir".to_string(), extra.clone());
    }
    Value::Object(map).to_string().into_bytes()
}

fn parse_metadata(path: &Path, bytes: &[u8]) -> Result<(String, Option<Value>)> {
    let value: Value = serde_json::from_slice(bytes).map_err(|e| {
        Error::checkpoint(
            path,
            format!("the file is not valid JSON ({e}); {RECOVER_HINT}"),
        )
    })?;
    let id = value
        .get("id")
        .and_then(Value::as_str)
        .ok_or_else(|| {
            Error::checkpoint(
                path,
                format!("the file has no string \"id\"; {RECOVER_HINT}"),
            )
        })?
        .to_string();
    Ok((id, value.get("weir").cloned()))
}

fn serialize_offsets(seq: &OffsetSeq) -> Result<Vec<u8>> {
    let conf = serde_json::to_string(&seq.conf)
        .map_err(|e| Error::Internal(format!("offsets conf json: {e}")))?;
    let mut text = format!(
        "v1\n{{\"batchWatermarkMs\":{},\"batchTimestampMs\":{},\"conf\":{conf}}}",
        seq.batch_watermark_ms, seq.batch_timestamp_ms
    );
    for offset in &seq.offsets {
        text.push('\n');
        match offset {
            Some(o) => {
                if o.0.contains('\n') || o.0.trim().is_empty() || o.0 == "-" {
                    return Err(Error::Internal(format!(
                        "offset {:?} cannot be written on one line",
                        o.0
                    )));
                }
                text.push_str(&o.0);
            }
            None => text.push('-'),
        }
    }
    Ok(text.into_bytes())
}

fn parse_offsets(path: &Path, bytes: &[u8]) -> Result<OffsetSeq> {
    let lines = parse_log_text(path, bytes)
        .map_err(|e| Error::checkpoint(path, format!("{e}; {RECOVER_HINT}")))?;
    let text = std::str::from_utf8(bytes).unwrap_or_default();
    // parse_log_text drops blank lines; an empty metadata line is an error (Spark crashes on it).
    if text.split('\n').nth(1).is_some_and(|l| l.trim().is_empty()) {
        return Err(Error::checkpoint(
            path,
            format!("line 2 (the batch metadata) is empty; {RECOVER_HINT}"),
        ));
    }
    let Some((meta, offsets)) = lines.split_first() else {
        return Err(Error::checkpoint(
            path,
            format!("the batch metadata line is missing; {RECOVER_HINT}"),
        ));
    };
    let meta: Value = serde_json::from_str(meta).map_err(|e| {
        Error::checkpoint(
            path,
            format!("line 2 is not valid JSON ({e}); {RECOVER_HINT}"),
        )
    })?;
    let int = |key: &str| -> Result<i64> {
        match meta.get(key) {
            None | Some(Value::Null) => Ok(0),
            Some(v) => v.as_i64().ok_or_else(|| {
                Error::checkpoint(
                    path,
                    format!("\"{key}\" must be an integer; {RECOVER_HINT}"),
                )
            }),
        }
    };
    let mut conf = BTreeMap::new();
    if let Some(map) = meta.get("conf").and_then(Value::as_object) {
        for (k, v) in map {
            let v = match v {
                Value::String(s) => s.clone(),
                other => other.to_string(),
            };
            conf.insert(k.clone(), v);
        }
    }
    Ok(OffsetSeq {
        batch_watermark_ms: int("batchWatermarkMs")?,
        batch_timestamp_ms: int("batchTimestampMs")?,
        conf,
        offsets: offsets
            .iter()
            .map(|l| {
                let l = l.trim();
                (l != "-").then(|| Offset(l.to_string()))
            })
            .collect(),
    })
}

fn parse_commit(path: &Path, bytes: &[u8]) -> Result<CommitMetadata> {
    let lines = parse_log_text(path, bytes)
        .map_err(|e| Error::checkpoint(path, format!("{e}; {RECOVER_HINT}")))?;
    let Some(line) = lines.first() else {
        return Ok(CommitMetadata::default());
    };
    let value: Value = serde_json::from_str(line).map_err(|e| {
        Error::checkpoint(
            path,
            format!("line 2 is not valid JSON ({e}); {RECOVER_HINT}"),
        )
    })?;
    let next_batch_watermark_ms = match value.get("nextBatchWatermarkMs") {
        None | Some(Value::Null) => 0,
        Some(v) => v.as_i64().ok_or_else(|| {
            Error::checkpoint(
                path,
                format!("\"nextBatchWatermarkMs\" must be an integer; {RECOVER_HINT}"),
            )
        })?,
    };
    Ok(CommitMetadata {
        next_batch_watermark_ms,
    })
}

#[cfg(test)]
mod tests;
