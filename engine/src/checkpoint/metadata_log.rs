//! Spark's HDFSMetadataLog / CompactibleFileStreamLog file format, shared by the file source's
//! seen-files log (`sources/<i>/`) and the file sink's `_spark_metadata/` log.
//!
//! Each batch `b` is one file named `b` (or `b.compact` for a compaction batch, when
//! `(b + 1) % interval == 0`) holding `v1` and one JSON entry per line, `\n`-joined with no
//! trailing newline. A compact file holds every live entry up to and including its batch.
//! Files are written atomically, never replaced, and carry a crc32c sidecar (`<name>.crc`).

use std::fs;
use std::path::{Path, PathBuf};

use std::fs::File;

use crate::checkpoint::files::{PendingWrites, create_checked_with, read_checked, stage_checked};
use crate::error::{Error, Result};

/// The default compaction interval (`spark.sql.streaming.fileSink.log.compactInterval`,
/// `fileSource.log.compactInterval`).
pub const DEFAULT_COMPACT_INTERVAL: u64 = 10;

/// The highest log version weir reads.
const MAX_VERSION: u32 = 1;

/// A compactible metadata log in one directory.
#[derive(Debug, Clone)]
pub struct CompactibleLog {
    dir: PathBuf,
    interval: u64,
    fsync: bool,
    owner: Option<String>,
    /// When set, each write leaves its directory fsync pending (see [`PendingWrites`]).
    pending: Option<PendingWrites>,
}

/// One file of the log as found in a listing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct LogFile {
    batch_id: u64,
    compact: bool,
}

impl CompactibleLog {
    /// Opens the log in `dir` (created on first write). The compaction interval is taken from
    /// the existing files when there are any (Spark's rule, so a log written with another
    /// interval keeps working), otherwise `default_interval`. `owner` is recorded in each
    /// checksum sidecar.
    pub fn open(
        dir: &Path,
        default_interval: u64,
        owner: Option<String>,
        fsync: bool,
    ) -> Result<CompactibleLog> {
        let mut log = CompactibleLog {
            dir: dir.to_path_buf(),
            interval: default_interval.max(1),
            fsync,
            owner,
            pending: None,
        };
        let files = log.list()?;
        log.interval = derive_interval(&files, log.interval);
        Ok(log)
    }

    /// The log directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The compaction interval in use.
    pub fn interval(&self) -> u64 {
        self.interval
    }

    /// Whether batch `b` is written as `b.compact`.
    pub fn is_compaction_batch(&self, batch_id: u64) -> bool {
        (batch_id + 1).is_multiple_of(self.interval)
    }

    fn file_path(&self, f: LogFile) -> PathBuf {
        if f.compact {
            self.dir.join(format!("{}.compact", f.batch_id))
        } else {
            self.dir.join(f.batch_id.to_string())
        }
    }

    /// Lists the log files: names that are a number, optionally followed by `.compact`.
    fn list(&self) -> Result<Vec<LogFile>> {
        let entries = match fs::read_dir(&self.dir) {
            Ok(e) => e,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(Error::io(&self.dir, e)),
        };
        let mut files = Vec::new();
        for entry in entries {
            let entry = entry.map_err(|e| Error::io(&self.dir, e))?;
            let name = entry.file_name().to_string_lossy().into_owned();
            let (stem, compact) = match name.strip_suffix(".compact") {
                Some(stem) => (stem, true),
                None => (name.as_str(), false),
            };
            if !stem.is_empty()
                && stem.bytes().all(|b| b.is_ascii_digit())
                && let Ok(batch_id) = stem.parse::<u64>()
            {
                files.push(LogFile { batch_id, compact });
            }
        }
        files.sort_by_key(|f| (f.batch_id, f.compact));
        Ok(files)
    }

    /// The newest batch id in the log.
    pub fn latest_batch_id(&self) -> Result<Option<u64>> {
        Ok(self.list()?.last().map(|f| f.batch_id))
    }

    /// The entries (JSON lines) written for batch `b` itself; for a compaction batch this is
    /// the whole compacted content. `Ok(None)` when the batch is not in the log.
    pub fn read_batch(&self, batch_id: u64) -> Result<Option<Vec<String>>> {
        for compact in [true, false] {
            let path = self.file_path(LogFile { batch_id, compact });
            if let Some(lines) = self.read_file(&path)? {
                return Ok(Some(lines));
            }
        }
        Ok(None)
    }

    fn read_file(&self, path: &Path) -> Result<Option<Vec<String>>> {
        let recover = "move the damaged file away only if the batches it lists can be recomputed, \
                       or restore it from a backup";
        let Some(file) = read_checked(path, false, recover)? else {
            return Ok(None);
        };
        parse_log_text(path, &file.bytes).map(Some)
    }

    /// Every live entry: the newest compact file and the plain files after it, in batch order.
    /// A gap in the batch ids is reported as a missing file.
    pub fn all_entries(&self) -> Result<Vec<String>> {
        let files = self.list()?;
        let Some(last) = files.last().copied() else {
            return Ok(Vec::new());
        };
        // From the newest compaction, or from the first batch present (a log that was started
        // at a later batch id, e.g. a new output directory for a resumed query).
        let start = files
            .iter()
            .rev()
            .find(|f| f.compact)
            .or(files.first())
            .map(|f| f.batch_id)
            .unwrap_or(0);
        let mut entries = Vec::new();
        for batch_id in start..=last.batch_id {
            match self.read_batch(batch_id)? {
                Some(lines) => entries.extend(lines),
                None => {
                    return Err(Error::checkpoint(
                        self.dir.join(batch_id.to_string()),
                        format!(
                            "metadata log file for batch {batch_id} is missing (the log holds batches up to {}); \
                             the log cannot be read past a gap: restore the file from a backup",
                            last.batch_id
                        ),
                    ));
                }
            }
        }
        Ok(entries)
    }

    /// Whether writes go through a query's [`PendingWrites`].
    pub fn has_pending_writes(&self) -> bool {
        self.pending.is_some()
    }

    /// Joins the query's pending writes: every write then syncs the pending directories (and
    /// staged creates) with its own temp files and leaves its directory pending (one fsync
    /// round per write instead of two; order of durability unchanged).
    pub fn with_pending_writes(mut self, pending: PendingWrites) -> Self {
        self.pending = Some(pending);
        self
    }

    /// Writes batch `b` with `entries`. For a compaction batch the file holds every live entry
    /// followed by `entries`. Returns `Ok(false)` (writing nothing) when the batch exists.
    pub fn add(&self, batch_id: u64, entries: &[String]) -> Result<bool> {
        self.add_with(batch_id, entries, &[])
    }

    /// [`Self::add`] that makes `also` (open files and directories, e.g. the data files the
    /// entries list) durable in the same fsync round, before the batch file is named.
    pub fn add_with(
        &self,
        batch_id: u64,
        entries: &[String],
        also: &[(&File, &Path)],
    ) -> Result<bool> {
        if self.read_batch_exists(batch_id) {
            return Ok(false);
        }
        let compact = self.is_compaction_batch(batch_id);
        let mut lines = if compact {
            self.all_entries()?
        } else {
            Vec::new()
        };
        lines.extend(entries.iter().cloned());
        let mut text = String::from("v1");
        for line in &lines {
            text.push('\n');
            text.push_str(line);
        }
        let path = self.file_path(LogFile { batch_id, compact });
        create_checked_with(
            &path,
            text.as_bytes(),
            self.owner.as_deref(),
            self.fsync,
            also,
            self.pending.as_ref(),
        )
    }

    /// [`Self::add`] for a log with pending writes: a plain batch is staged (written by the
    /// query's next fsync round, before that round's own file: see [`PendingWrites`]); a
    /// compaction batch, which reads every earlier batch back, first makes the staged ones
    /// durable and is then written at once.
    pub fn add_staged(&self, batch_id: u64, entries: &[String]) -> Result<bool> {
        let Some(pending) = self.pending.as_ref() else {
            return self.add(batch_id, entries);
        };
        if self.is_compaction_batch(batch_id) {
            pending.flush()?;
            return self.add(batch_id, entries);
        }
        if self.read_batch_exists(batch_id) {
            return Ok(false);
        }
        let mut text = String::from("v1");
        for line in entries {
            text.push('\n');
            text.push_str(line);
        }
        let path = self.file_path(LogFile {
            batch_id,
            compact: false,
        });
        stage_checked(
            &path,
            text.as_bytes(),
            self.owner.as_deref(),
            self.fsync,
            pending,
        )
    }

    fn read_batch_exists(&self, batch_id: u64) -> bool {
        [true, false]
            .iter()
            .any(|&compact| self.file_path(LogFile { batch_id, compact }).exists())
    }
}

/// Spark's rule for the interval of an existing log: two or more compact files → the gap
/// between the two newest; one at `c` → `c + 1` (or the smallest divisor of `c + 1` that is at
/// least the configured interval when that is smaller than half of it); none → the configured.
fn derive_interval(files: &[LogFile], configured: u64) -> u64 {
    let compacts: Vec<u64> = files
        .iter()
        .filter(|f| f.compact)
        .map(|f| f.batch_id)
        .collect();
    match compacts.as_slice() {
        [] => configured,
        [c] => {
            let n = c + 1;
            if n <= configured {
                n
            } else if configured < n / 2 {
                (configured..=n).find(|d| n % d == 0).unwrap_or(n)
            } else {
                n
            }
        }
        [.., a, b] => (b - a).max(1),
    }
}

/// Parses the text of a log file into its entry lines.
pub fn parse_log_text(path: &Path, bytes: &[u8]) -> Result<Vec<String>> {
    if bytes.is_empty() {
        return Err(Error::checkpoint(
            path,
            "incomplete log file: it is empty (a torn write from a non-atomic writer); \
             delete it only if its batch can be recomputed",
        ));
    }
    let text = std::str::from_utf8(bytes)
        .map_err(|_| Error::checkpoint(path, "malformed log file: it is not UTF-8 text"))?;
    let mut lines = text.split('\n').map(|l| l.strip_suffix('\r').unwrap_or(l));
    let version_line = lines.next().unwrap_or_default();
    let version = version_line
        .strip_prefix('v')
        .and_then(|v| v.parse::<u32>().ok())
        .ok_or_else(|| {
            Error::checkpoint(
                path,
                format!("malformed log file: the first line must be a version like 'v1', found '{version_line}'"),
            )
        })?;
    if version == 0 || version > MAX_VERSION {
        return Err(Error::checkpoint(
            path,
            format!(
                "invalid log version v{version}: weir reads up to v{MAX_VERSION}; the file was written by a newer writer"
            ),
        ));
    }
    Ok(lines
        .filter(|l| !l.trim().is_empty())
        .map(str::to_string)
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn compacts_at_interval_boundaries() {
        let dir = tempfile::tempdir().unwrap();
        let log = CompactibleLog::open(dir.path(), 10, None, false).unwrap();
        for b in 0..21u64 {
            assert!(log.add(b, &[format!("{{\"b\":{b}}}")]).unwrap());
        }
        assert!(dir.path().join("9.compact").exists());
        assert!(dir.path().join("19.compact").exists());
        assert!(!dir.path().join("9").exists());
        assert_eq!(log.read_batch(19).unwrap().unwrap().len(), 20);
        assert_eq!(log.all_entries().unwrap().len(), 21);
        assert!(
            !log.add(3, &[]).unwrap(),
            "an existing batch is never rewritten"
        );
        let reopened = CompactibleLog::open(dir.path(), 3, None, false).unwrap();
        assert_eq!(reopened.interval(), 10);
    }

    #[test]
    fn version_and_emptiness_are_checked() {
        let p = Path::new("x/0");
        assert!(
            parse_log_text(p, b"")
                .unwrap_err()
                .to_string()
                .contains("incomplete")
        );
        assert!(
            parse_log_text(p, b"v9\n{}")
                .unwrap_err()
                .to_string()
                .contains("v9")
        );
        assert!(
            parse_log_text(p, b"{}")
                .unwrap_err()
                .to_string()
                .contains("malformed")
        );
        assert_eq!(
            parse_log_text(p, b"v1\r\n{}\r\n").unwrap(),
            vec!["{}".to_string()]
        );
    }

    #[test]
    fn derives_spark_interval() {
        let f = |ids: &[(u64, bool)]| {
            ids.iter()
                .map(|&(batch_id, compact)| LogFile { batch_id, compact })
                .collect::<Vec<_>>()
        };
        assert_eq!(derive_interval(&f(&[(1, true), (3, true)]), 10), 2);
        assert_eq!(derive_interval(&f(&[(1, true)]), 10), 2);
        assert_eq!(derive_interval(&f(&[(0, false)]), 10), 10);
        assert_eq!(derive_interval(&f(&[(29, true)]), 10), 10);
        assert_eq!(derive_interval(&f(&[(14, true)]), 10), 15);
        assert_eq!(derive_interval(&f(&[(99, true)]), 10), 10);
    }
}
