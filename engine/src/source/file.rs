//! The file source (Spark's `FileStreamSource`): lists a directory or glob, admits new files
//! in modification-time order (then name) up to the read limit, records each admitted group in
//! the seen-files log `sources/<i>/<b>` (FileStreamSourceLog format, compacted every 10
//! batches) and offsets as `{"logOffset":b}`. A file that is in the log is never read again.
//! A directory written by a file sink (it has `_spark_metadata/`) is listed through that log,
//! so only committed files are read, as in Spark.

use std::collections::{BTreeMap, HashMap};
use std::fs;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, UNIX_EPOCH};

use arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use arrow::record_batch::RecordBatch;
use serde::{Deserialize, Serialize};

use crate::checkpoint::{CompactibleLog, DEFAULT_COMPACT_INTERVAL, file_uri, path_from_uri};
use crate::error::{Error, Result};
use crate::sink::committed_files;
use crate::source::options::SourceOptions;
use crate::source::readers::{FileFormat, ParseMode, ReaderOptions, TimestampFormat, read_file};
use crate::source::{Offset, ReadLimit, Source, SourceContext, valid_projection};

/// Spark's default `maxFileAge`: 7 days.
const DEFAULT_MAX_FILE_AGE_MS: i64 = 7 * 24 * 3600 * 1000;

/// One line of the seen-files log:
/// `{"path":"file:///in/f1.json","timestamp":<mtime ms>,"batchId":0}`.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
struct FileEntry {
    path: String,
    timestamp: i64,
    batch_id: u64,
}

/// A file found by listing.
#[derive(Debug, Clone)]
struct ListedFile {
    uri: String,
    mtime_ms: i64,
    size: u64,
}

/// Streams new files of a directory or glob as csv, json lines, parquet or text.
pub struct FileSource {
    format: FileFormat,
    qualified_path: String,
    path: PathBuf,
    is_glob: bool,
    schema: SchemaRef,
    reader: ReaderOptions,
    max_files: Option<usize>,
    max_bytes: Option<u64>,
    latest_first: bool,
    file_name_only: bool,
    max_file_age_ms: i64,
    log: CompactibleLog,
    /// Log batch id → the files it admitted.
    log_batches: BTreeMap<u64, Vec<FileEntry>>,
    /// Seen-file key (URI, or file name with `fileNameOnly`) → modification time.
    seen: HashMap<String, i64>,
    latest_timestamp: i64,
    last_purge_timestamp: i64,
    projection: Option<Vec<usize>>,
    /// Pushed-down predicates (Parquet skips row groups that cannot match them).
    bounds: Vec<super::ColumnBound>,
    /// Set by `available_now_offset`: every file then known is in the log, and no new file is
    /// admitted afterwards (Spark's availableNow never reads past its starting snapshot).
    frozen: bool,
    /// Watches the input directory (inotify on Linux) to wake the idle query when a file
    /// arrives; `None` when watching is not possible (the query then polls).
    watcher: Option<notify::RecommendedWatcher>,
    /// For a plain directory being watched: the paths the watcher reported since the last
    /// look, so a batch stats those instead of listing the whole directory.
    watched_names: Option<Arc<Mutex<WatchedNames>>>,
    /// When the directory was last listed in full.
    last_full_listing: Option<Instant>,
    /// New files found but not admitted yet (beyond `maxFilesPerTrigger`), in admission order.
    unadmitted: Vec<ListedFile>,
}

/// Paths reported by a directory watcher, taken by the next [`FileSource::new_files`].
#[derive(Debug, Default)]
struct WatchedNames {
    paths: Vec<PathBuf>,
    /// Events were lost (the kernel queue overflowed, the watcher failed) or too many piled
    /// up: the next look lists the directory in full.
    rescan: bool,
}

/// Reported paths kept at most; beyond, the next look lists the directory instead.
const MAX_WATCHED_NAMES: usize = 100_000;

/// Even with a watcher, the directory is listed in full this often (a safety net for events
/// a file system does not report, e.g. writes by another host on a network file system).
const FULL_LISTING_INTERVAL: Duration = Duration::from_secs(60);

impl std::fmt::Debug for FileSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FileSource")
            .field("format", &self.format)
            .field("path", &self.path)
            .finish_non_exhaustive()
    }
}

impl FileSource {
    /// Creates the source and restores its seen-files log from `ctx.checkpoint_dir`.
    pub fn new(
        format: FileFormat,
        opts: &SourceOptions,
        schema: Option<SchemaRef>,
        ctx: SourceContext,
    ) -> Result<FileSource> {
        let raw_path = opts.get("path").ok_or_else(|| {
            Error::option(
                "path",
                "the file source needs a 'path' (a directory or a glob)",
            )
        })?;
        let raw_path = raw_path.strip_prefix("file://").unwrap_or(raw_path);
        let raw_path = raw_path.strip_prefix("file:").unwrap_or(raw_path);
        let path = std::path::absolute(raw_path).map_err(|e| Error::io(raw_path, e))?;
        let is_glob = raw_path.contains(['*', '?', '[', '{']);
        let qualified_path = format!("file:{}", path.display());
        if !is_glob && !path.exists() {
            return Err(Error::Source {
                source_name: format!("FileStreamSource[{qualified_path}]"),
                message: format!(
                    "[PATH_NOT_FOUND] Path does not exist: {qualified_path}. Create the directory \
                     (new files are picked up as they appear) or fix the 'path' option"
                ),
            });
        }
        let schema = resolve_schema(format, schema)?;
        let mode = match opts.get("mode") {
            None => ParseMode::Permissive,
            Some(m) => ParseMode::from_name(m).ok_or_else(|| {
                Error::option(
                    "mode",
                    format!("'{m}' is not a parse mode; use PERMISSIVE, DROPMALFORMED or FAILFAST"),
                )
            })?,
        };
        let single_char = |name: &str, default: char| -> Result<char> {
            match opts.get(name) {
                None => Ok(default),
                Some("\\t") => Ok('\t'),
                Some(v) => {
                    let mut chars = v.chars();
                    match (chars.next(), chars.next()) {
                        (Some(c), None) => Ok(c),
                        _ => Err(Error::option(
                            name,
                            format!("'{v}' must be a single character"),
                        )),
                    }
                }
            }
        };
        let sep = match opts.get("sep") {
            Some(_) => single_char("sep", ',')?,
            None => single_char("delimiter", ',')?,
        };
        let reader = ReaderOptions {
            header: opts.bool("header", false)?,
            sep,
            quote: single_char("quote", '"')?,
            escape: single_char("escape", '\\')?,
            timestamp_format: opts
                .get("timestampFormat")
                .map(TimestampFormat::parse)
                .transpose()?,
            mode,
            corrupt_column: opts
                .get("columnNameOfCorruptRecord")
                .unwrap_or("_corrupt_record")
                .to_string(),
        };
        let max_files = opts
            .int("maxFilesPerTrigger", 1)?
            .map(|n| usize::try_from(n).unwrap_or(usize::MAX));
        let max_bytes = opts.int("maxBytesPerTrigger", 1)?.map(|n| n as u64);
        if max_files.is_some() && max_bytes.is_some() {
            return Err(Error::option(
                "maxBytesPerTrigger",
                "options 'maxFilesPerTrigger' and 'maxBytesPerTrigger' can't be both set at the same time",
            ));
        }
        let latest_first = opts.bool("latestFirst", false)?;
        let mut max_file_age_ms = opts
            .duration_ms("maxFileAge")?
            .unwrap_or(DEFAULT_MAX_FILE_AGE_MS);
        if latest_first && (max_files.is_some() || max_bytes.is_some()) {
            max_file_age_ms = i64::MAX;
        }
        let log = CompactibleLog::open(
            &ctx.checkpoint_dir,
            DEFAULT_COMPACT_INTERVAL,
            None,
            ctx.fsync,
        )?
        .with_pending_writes(ctx.pending_writes.clone());
        crate::checkpoint::PendingWrites::remove_stale_pool_files(&ctx.checkpoint_dir);
        let mut source = FileSource {
            format,
            qualified_path,
            path,
            is_glob,
            schema,
            reader,
            max_files,
            max_bytes,
            latest_first,
            file_name_only: opts.bool("fileNameOnly", false)?,
            max_file_age_ms,
            log,
            log_batches: BTreeMap::new(),
            seen: HashMap::new(),
            latest_timestamp: 0,
            last_purge_timestamp: i64::MIN,
            projection: None,
            bounds: Vec::new(),
            frozen: false,
            watcher: None,
            watched_names: None,
            last_full_listing: None,
            unadmitted: Vec::new(),
        };
        source.restore()?;
        Ok(source)
    }

    fn name(&self) -> String {
        format!("FileStreamSource[{}]", self.qualified_path)
    }

    fn source_error(&self, message: impl Into<String>) -> Error {
        Error::Source {
            source_name: self.name(),
            message: message.into(),
        }
    }

    /// Rebuilds the log index and the seen-files map from the seen-files log.
    fn restore(&mut self) -> Result<()> {
        for line in self.log.all_entries()? {
            let entry: FileEntry = serde_json::from_str(&line).map_err(|e| {
                Error::checkpoint(
                    self.log.dir(),
                    format!("a seen-files log entry is not valid ({e}): {line}"),
                )
            })?;
            self.remember(&entry);
            self.log_batches
                .entry(entry.batch_id)
                .or_default()
                .push(entry);
        }
        if let Some(latest) = self.log.latest_batch_id()? {
            self.log_batches.entry(latest).or_default();
        }
        self.purge_seen();
        Ok(())
    }

    fn seen_key(&self, uri: &str) -> String {
        if self.file_name_only {
            uri.rsplit('/').next().unwrap_or(uri).to_string()
        } else {
            uri.to_string()
        }
    }

    fn remember(&mut self, entry: &FileEntry) {
        let key = self.seen_key(&entry.path);
        self.seen.insert(key, entry.timestamp);
        self.latest_timestamp = self.latest_timestamp.max(entry.timestamp);
    }

    fn purge_seen(&mut self) {
        self.last_purge_timestamp = self.latest_timestamp.saturating_sub(self.max_file_age_ms);
        let cutoff = self.last_purge_timestamp;
        self.seen.retain(|_, ts| *ts >= cutoff);
    }

    /// Whether the file with this URI was admitted before (and not yet purged by age).
    fn is_seen(&self, uri: &str) -> bool {
        self.seen.contains_key(&self.seen_key(uri))
    }

    fn is_new(&self, file: &ListedFile) -> bool {
        file.mtime_ms >= self.last_purge_timestamp
            && !self.seen.contains_key(&self.seen_key(&file.uri))
    }

    fn log_head(&self) -> Option<u64> {
        self.log_batches.keys().next_back().copied()
    }

    /// Lists every input file (recursively under directories; hidden `.x` and `_x` names and
    /// `._COPYING_` files are skipped).
    fn list_files(&self) -> Result<Vec<ListedFile>> {
        let mut out = Vec::new();
        if self.is_glob {
            let pattern = self.path.to_string_lossy().into_owned();
            let paths = glob::glob(&pattern).map_err(|e| {
                Error::option("path", format!("'{pattern}' is not a valid glob: {e}"))
            })?;
            for entry in paths {
                let p = entry.map_err(|e| self.source_error(format!("cannot list: {e}")))?;
                let hidden = p
                    .file_name()
                    .is_some_and(|n| is_hidden(&n.to_string_lossy()));
                if !hidden {
                    collect_files(&p, &mut out, &|uri| self.is_seen(uri))?;
                }
            }
        } else if self.path.join("_spark_metadata").is_dir() {
            // The output of a file sink: only its committed files (Spark does the same).
            for status in committed_files(&self.path)? {
                let path = path_from_uri(&status.path).ok_or_else(|| {
                    self.source_error(format!(
                        "'{}' in {}/_spark_metadata is not a file URI",
                        status.path,
                        self.path.display()
                    ))
                })?;
                out.push(ListedFile {
                    uri: file_uri(&path),
                    mtime_ms: status.modification_time,
                    size: status.size,
                });
            }
        } else {
            if !self.path.exists() {
                return Err(self.source_error(format!(
                    "[PATH_NOT_FOUND] Path does not exist: {}. The input directory was removed \
                     while the query ran; recreate it",
                    self.qualified_path
                )));
            }
            collect_files(&self.path, &mut out, &|uri| self.is_seen(uri))?;
        }
        Ok(out)
    }

    /// The paths the watcher reported since the last look, when they can stand in for a full
    /// listing (a plain directory, watched without loss, listed in full recently).
    fn take_watched_paths(&mut self) -> Option<Vec<PathBuf>> {
        let watched = self.watched_names.as_ref()?;
        let mut names = watched.lock().unwrap_or_else(|p| p.into_inner());
        let recent = self
            .last_full_listing
            .is_some_and(|t| t.elapsed() < FULL_LISTING_INTERVAL);
        let paths = std::mem::take(&mut names.paths);
        if !recent || std::mem::take(&mut names.rescan) {
            // Taken before listing: a file arriving meanwhile is reported again next time.
            return None;
        }
        Some(paths)
    }

    /// The new files in admission order: from the watcher's reports when it has them (one
    /// `stat` per reported path), else from a full listing.
    fn new_files(&mut self) -> Result<Vec<ListedFile>> {
        let listed = match self.take_watched_paths() {
            Some(paths) => {
                // Files found before but not admitted yet are looked at again: they may have
                // grown, changed or gone since.
                let mut found = Vec::new();
                for earlier in std::mem::take(&mut self.unadmitted) {
                    if let Some(path) = path_from_uri(&earlier.uri) {
                        collect_files(&path, &mut found, &|uri| self.is_seen(uri))?;
                    }
                }
                for path in paths {
                    // Below the directory, with no hidden name on the way (as a listing).
                    let listed = path.strip_prefix(&self.path).is_ok_and(|rel| {
                        rel.components().next().is_some()
                            && rel
                                .components()
                                .all(|c| !is_hidden(&c.as_os_str().to_string_lossy()))
                    });
                    if listed {
                        collect_files(&path, &mut found, &|uri| self.is_seen(uri))?;
                    }
                }
                found
            }
            None => {
                self.last_full_listing = Some(Instant::now());
                self.list_files()?
            }
        };
        let mut known = std::collections::HashSet::new();
        let mut files: Vec<ListedFile> = listed
            .into_iter()
            .filter(|f| self.is_new(f) && known.insert(f.uri.clone()))
            .collect();
        files.sort_by(|a, b| a.mtime_ms.cmp(&b.mtime_ms).then_with(|| a.uri.cmp(&b.uri)));
        if self.latest_first {
            files.reverse();
        }
        Ok(files)
    }

    /// Takes the first files allowed by `limit` (at least one).
    fn take_by_limit(files: &[ListedFile], limit: ReadLimit) -> usize {
        match limit {
            ReadLimit::MaxFiles(n) => files.len().min(n.max(1)),
            ReadLimit::MaxBytes(max) => {
                let mut total = 0u64;
                let mut count = 0;
                for f in files {
                    if count > 0 && total.saturating_add(f.size) > max {
                        break;
                    }
                    total = total.saturating_add(f.size);
                    count += 1;
                }
                count
            }
            ReadLimit::All | ReadLimit::MaxRows(_) => files.len(),
        }
    }

    /// Writes log batch `batch_id` with `files` and marks them seen. `staged`: the entry joins
    /// the query's next fsync round (the one of `offsets/N`) instead of taking its own.
    fn admit(&mut self, batch_id: u64, files: &[ListedFile], staged: bool) -> Result<()> {
        let entries: Vec<FileEntry> = files
            .iter()
            .map(|f| FileEntry {
                path: f.uri.clone(),
                timestamp: f.mtime_ms,
                batch_id,
            })
            .collect();
        let lines = entries
            .iter()
            .map(|e| serde_json::to_string(e).map_err(|err| Error::Internal(err.to_string())))
            .collect::<Result<Vec<_>>>()?;
        let written = if staged {
            self.log.add_staged(batch_id, &lines)?
        } else {
            self.log.add(batch_id, &lines)?
        };
        if !written {
            return Err(Error::checkpoint(
                self.log.dir().join(batch_id.to_string()),
                "the seen-files log batch already exists but was not loaded: another run of this \
                 query is writing the checkpoint",
            ));
        }
        for e in &entries {
            self.remember(e);
        }
        self.log_batches.insert(batch_id, entries);
        self.purge_seen();
        Ok(())
    }

    fn parse_offset(&self, offset: &Offset) -> Result<u64> {
        parse_log_offset(offset.as_str()).ok_or_else(|| {
            self.source_error(format!(
                "'{offset}' is not a file source offset (expected {{\"logOffset\":N}})"
            ))
        })
    }
}

fn log_offset(batch_id: u64) -> Offset {
    Offset(format!("{{\"logOffset\":{batch_id}}}"))
}

fn parse_log_offset(text: &str) -> Option<u64> {
    let value: serde_json::Value = serde_json::from_str(text.trim()).ok()?;
    match value {
        serde_json::Value::Number(n) => n.as_u64(),
        serde_json::Value::Object(map) => map.get("logOffset")?.as_u64(),
        _ => None,
    }
}

fn resolve_schema(format: FileFormat, schema: Option<SchemaRef>) -> Result<SchemaRef> {
    let schema = match (format, schema) {
        (FileFormat::Text, None) => {
            return Ok(Arc::new(Schema::new(vec![Field::new(
                "value",
                DataType::Utf8,
                true,
            )])));
        }
        (FileFormat::Text, Some(s)) => {
            if s.fields().len() != 1 || s.field(0).data_type() != &DataType::Utf8 {
                return Err(Error::option(
                    "schema",
                    "the text source has exactly one string column (named 'value' by default)",
                ));
            }
            s
        }
        (_, Some(s)) => s,
        (_, None) => {
            return Err(Error::option(
                "schema",
                "Schema must be specified when creating a streaming source DataFrame. If some \
                 files already exist in the directory, then depending on the file format you may \
                 be able to create a static DataFrame on that directory with \
                 'spark.read.load(directory)' and infer schema from it.",
            ));
        }
    };
    // Spark forces streaming file source schemas to be nullable.
    let fields: Vec<Field> = schema
        .fields()
        .iter()
        .map(|f| f.as_ref().clone().with_nullable(true))
        .collect();
    Ok(Arc::new(Schema::new_with_metadata(
        fields,
        schema.metadata().clone(),
    )))
}

fn is_hidden(name: &str) -> bool {
    name.starts_with('.') || name.starts_with('_') || name.ends_with("._COPYING_")
}

/// Adds the files at `path` (a file, or a directory walked recursively) to `out`, except those
/// `seen` names: a regular file the directory entry already shows to be seen is skipped
/// without a `stat`, so listing a directory of old files costs one `getdents` per batch.
fn collect_files(
    path: &Path,
    out: &mut Vec<ListedFile>,
    seen: &dyn Fn(&str) -> bool,
) -> Result<()> {
    let meta = match fs::metadata(path) {
        Ok(m) => m,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(Error::io(path, e)),
    };
    if meta.is_file() {
        let mtime_ms = meta
            .modified()
            .ok()
            .and_then(|t| t.duration_since(UNIX_EPOCH).ok())
            .map(|d| d.as_millis() as i64)
            .unwrap_or(0);
        out.push(ListedFile {
            uri: file_uri(path),
            mtime_ms,
            size: meta.len(),
        });
        return Ok(());
    }
    if meta.is_dir() {
        let entries = fs::read_dir(path).map_err(|e| Error::io(path, e))?;
        for entry in entries {
            let entry = entry.map_err(|e| Error::io(path, e))?;
            let name = entry.file_name();
            if is_hidden(&name.to_string_lossy()) {
                continue;
            }
            let child = entry.path();
            if entry.file_type().is_ok_and(|t| t.is_file()) && seen(&file_uri(&child)) {
                continue;
            }
            collect_files(&child, out, seen)?;
        }
    }
    Ok(())
}

impl FileSource {
    /// The directory whose changes may bring new input: the path itself, or for a glob the
    /// directory before its first wildcard component (watched recursively then).
    fn watched_directory(&self) -> Option<(PathBuf, notify::RecursiveMode)> {
        if !self.is_glob {
            // Recursive: the directory's files are listed recursively too.
            return self
                .path
                .is_dir()
                .then(|| (self.path.clone(), notify::RecursiveMode::Recursive));
        }
        let mut base = PathBuf::new();
        for part in self.path.components() {
            let text = part.as_os_str().to_string_lossy();
            if text.contains(['*', '?', '[', '{']) {
                break;
            }
            base.push(part);
        }
        base.is_dir()
            .then_some((base, notify::RecursiveMode::Recursive))
    }
}

impl Source for FileSource {
    fn description(&self) -> String {
        self.name()
    }

    fn schema(&self) -> SchemaRef {
        self.schema.clone()
    }

    fn default_read_limit(&self) -> ReadLimit {
        match (self.max_files, self.max_bytes) {
            (Some(n), _) => ReadLimit::MaxFiles(n),
            (None, Some(b)) => ReadLimit::MaxBytes(b),
            (None, None) => ReadLimit::All,
        }
    }

    fn latest_offset(
        &mut self,
        start: Option<&Offset>,
        limit: ReadLimit,
    ) -> Result<Option<Offset>> {
        let next = match start {
            Some(o) => self.parse_offset(o)? + 1,
            None => 0,
        };
        let head = self.log_head();
        // Log batches written earlier (before a crash, or by available_now_offset) come first.
        if head.is_some_and(|h| next <= h) {
            return Ok(Some(log_offset(next)));
        }
        if head.map_or(0, |h| h + 1) != next {
            return Err(self.source_error(format!(
                "offset {} is beyond the seen-files log in {} (newest batch {:?}); the source's \
                 log does not match the checkpoint's offsets: restore it or use a new checkpoint",
                next.saturating_sub(1),
                self.log.dir().display(),
                head
            )));
        }
        if self.frozen {
            return Ok(start.cloned());
        }
        let files = self.new_files()?;
        if files.is_empty() {
            return Ok(start.cloned());
        }
        let take = Self::take_by_limit(&files, limit);
        self.admit(next, &files[..take], true)?;
        self.unadmitted = files[take..].to_vec();
        Ok(Some(log_offset(next)))
    }

    fn available_now_offset(&mut self) -> Result<Option<Offset>> {
        let files = self.new_files()?;
        let limit = self.default_read_limit();
        let mut rest = &files[..];
        while !rest.is_empty() {
            let next = self.log_head().map_or(0, |h| h + 1);
            let take = Self::take_by_limit(rest, limit);
            self.admit(next, &rest[..take], false)?;
            rest = &rest[take..];
        }
        self.frozen = true;
        self.unadmitted.clear();
        Ok(self.log_head().map(log_offset))
    }

    fn read(&mut self, start: Option<&Offset>, end: &Offset) -> Result<Vec<RecordBatch>> {
        let from = match start {
            Some(o) => self.parse_offset(o)? + 1,
            None => 0,
        };
        let to = self.parse_offset(end)?;
        let mut out = Vec::new();
        for batch_id in from..=to {
            let entries = self.log_batches.get(&batch_id).ok_or_else(|| {
                Error::checkpoint(
                    self.log.dir().join(batch_id.to_string()),
                    format!(
                        "the seen-files log has no batch {batch_id}, which the query's offsets \
                         refer to; restore the source log or use a new checkpoint"
                    ),
                )
            })?;
            for entry in entries {
                let path = path_from_uri(&entry.path).ok_or_else(|| {
                    self.source_error(format!(
                        "'{}' in the seen-files log is not a file URI",
                        entry.path
                    ))
                })?;
                if !path.exists() {
                    return Err(self.source_error(format!(
                        "input file {} (log batch {batch_id}) no longer exists; files must stay \
                         until their batch is committed",
                        path.display()
                    )));
                }
                out.extend(read_file(
                    self.format,
                    &path,
                    &self.schema,
                    &self.reader,
                    self.projection.as_deref(),
                    &self.bounds,
                )?);
            }
        }
        Ok(out)
    }

    fn commit(&mut self, _end: &Offset) -> Result<()> {
        Ok(())
    }

    fn can_replay(&self, start: Option<&Offset>, end: &Offset) -> bool {
        let from = match start {
            Some(o) => match self.parse_offset(o) {
                Ok(b) => b + 1,
                Err(_) => return true,
            },
            None => 0,
        };
        // An unparsable offset is not a lost entry: `read` reports it.
        let Ok(to) = self.parse_offset(end) else {
            return true;
        };
        (from..=to).all(|b| self.log_batches.contains_key(&b))
    }

    fn push_projection(&mut self, columns: &[usize]) {
        self.projection = valid_projection(&self.schema, columns);
    }

    fn push_filters(&mut self, bounds: &[super::ColumnBound]) {
        self.bounds = bounds.to_vec();
    }

    fn on_new_data(&mut self, wake: super::NewDataCallback) {
        use notify::Watcher;
        let Some((dir, mode)) = self.watched_directory() else {
            return;
        };
        // A plain directory (not a glob, not a file sink's output listed through its log):
        // the reported paths stand in for listing it.
        let names = (!self.is_glob && !self.path.join("_spark_metadata").is_dir())
            .then(|| Arc::new(Mutex::new(WatchedNames::default())));
        let reported = names.clone();
        // A file is new data once it is complete: its creation, a rename into the directory
        // or the end of a write. Watching is best effort: without it the query polls.
        let watcher = notify::recommended_watcher(move |event: notify::Result<notify::Event>| {
            let kind_is_news = event.as_ref().map_or(true, |e| !e.kind.is_access());
            if let Some(names) = &reported {
                let mut names = names.lock().unwrap_or_else(|p| p.into_inner());
                match &event {
                    Ok(e) if e.need_rescan() => names.rescan = true,
                    Ok(e) if e.kind.is_access() || e.kind.is_remove() => {}
                    Ok(e) => names.paths.extend(e.paths.iter().cloned()),
                    Err(_) => names.rescan = true,
                }
                if names.paths.len() > MAX_WATCHED_NAMES {
                    names.paths.clear();
                    names.rescan = true;
                }
            }
            if kind_is_news {
                wake();
            }
        });
        self.watcher = watcher
            .and_then(|mut w| w.watch(&dir, mode).map(|()| w))
            .ok();
        // Without a working watcher every look lists the directory.
        self.watched_names = names.filter(|_| self.watcher.is_some());
    }

    fn stop(&mut self) {
        self.watcher = None;
        self.watched_names = None;
    }
}
