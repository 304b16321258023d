//! Atomic file writes, crc32c checksum sidecars and `file://` URIs.
//!
//! Every weir-written metadata file `<name>` gets a sidecar `<name>.crc` holding
//! `{"algorithm":"CRC32C","value":<int32>,"mainFileSize":<n>,...}` (the shape Spark 4.x uses for
//! its own checksum files). Spark's log listings ignore names that are not plain numbers, so the
//! sidecars never disturb a Spark reader. The sidecar is written (atomically) *before* its main
//! file, so a visible main file always has a sidecar that describes it, even after a crash.

use std::fs::{self, File, OpenOptions};
use std::io::{ErrorKind, Write};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// Writes `bytes` to `path` atomically, replacing any existing file: a temp file
/// `.<name>.<uuid>.tmp` in the same directory is written, fsynced, renamed over `path`, and the
/// directory is fsynced. Readers see either the old or the new content, never a torn file.
///
/// With `fsync == false` the data and the rename may still sit in the OS page cache when this
/// returns: a process crash is still safe, but a power loss or kernel crash can lose the file or
/// leave it empty after reboot (the checksum then reports it as damaged).
pub fn atomic_write(path: &Path, bytes: &[u8], fsync: bool) -> Result<()> {
    rename_into_place(path, bytes, fsync)?;
    sync_parent(path, fsync)
}

/// [`atomic_write`] without the directory fsync: the caller fsyncs the directory after a
/// following write in the same directory (the sidecar and its main file share one directory
/// fsync; journaling file systems commit the two renames in order).
fn rename_into_place(path: &Path, bytes: &[u8], fsync: bool) -> Result<()> {
    let tmp = write_temp(path, bytes, fsync)?;
    if let Err(e) = fs::rename(&tmp, path) {
        let _ = fs::remove_file(&tmp);
        return Err(Error::io(path, e));
    }
    Ok(())
}

/// Like [`atomic_write`] but never replaces: returns `Ok(false)` (and writes nothing) when
/// `path` already exists. The final step is a hard link, which fails atomically if the target
/// exists, so two writers can never both succeed.
pub fn atomic_create(path: &Path, bytes: &[u8], fsync: bool) -> Result<bool> {
    if path.exists() {
        return Ok(false);
    }
    let tmp = write_temp(path, bytes, fsync)?;
    let created = link_new(&tmp, path);
    let _ = fs::remove_file(&tmp);
    if created? {
        sync_parent(path, fsync)?;
        return Ok(true);
    }
    Ok(false)
}

fn write_temp(path: &Path, bytes: &[u8], fsync: bool) -> Result<PathBuf> {
    let (tmp, file) = write_temp_unsynced(path, bytes)?;
    if fsync && let Err(e) = file.sync_all() {
        let _ = fs::remove_file(&tmp);
        return Err(Error::io(&tmp, e));
    }
    Ok(tmp)
}

/// Writes `bytes` to a new temp file beside `path` without syncing it; returns its path and
/// open handle (for [`sync_round`]).
fn write_temp_unsynced(path: &Path, bytes: &[u8]) -> Result<(PathBuf, File)> {
    write_temp_pooled(path, bytes, None)
}

/// [`write_temp_unsynced`] that takes an empty temp file made ahead of time from `pool` when
/// it has one for the directory (see [`PendingWrites::refill_temp_files`]).
fn write_temp_pooled(
    path: &Path,
    bytes: &[u8],
    pool: Option<&PendingWrites>,
) -> Result<(PathBuf, File)> {
    let parent = parent_dir(path);
    if let Some(tmp) = pool.and_then(|p| p.take_temp_file(&parent)) {
        // Overwritten in place, then cut to length: truncating to 0 first would free the
        // file's block (and with `-o discard`, wait for the device to discard it).
        let opened = OpenOptions::new()
            .write(true)
            .truncate(false)
            .open(&tmp)
            .and_then(|mut file| {
                file.write_all(bytes)?;
                file.set_len(bytes.len() as u64)?;
                Ok(file)
            });
        match opened {
            Ok(file) => return Ok((tmp, file)),
            // A pooled file that went missing: make a new one below.
            Err(_) => {
                let _ = fs::remove_file(&tmp);
            }
        }
    }
    fs::create_dir_all(&parent).map_err(|e| Error::io(&parent, e))?;
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let tmp = parent.join(format!(".{name}.{}.tmp", uuid::Uuid::new_v4()));
    let result = (|| -> std::io::Result<File> {
        let mut file = OpenOptions::new().write(true).create_new(true).open(&tmp)?;
        file.write_all(bytes)?;
        Ok(file)
    })();
    match result {
        Ok(file) => Ok((tmp, file)),
        Err(e) => {
            let _ = fs::remove_file(&tmp);
            Err(Error::io(&tmp, e))
        }
    }
}

/// Makes several open files (or directories) durable as one round and returns the first error.
///
/// On Linux a round of two or more is one `syncfs` per file system: it writes back the file
/// system's dirty data and commits its journal once, which is what fsyncing every file would
/// do, for about one fsync's latency. Concurrent fsyncs do not group as well on ext4: the first
/// starts a journal commit and the others wait for the next one (measured here: a round of
/// four files took ~0.6 ms with parallel fsyncs, ~0.25 ms with `syncfs`, against 0.2 ms for
/// one fsync). The cost: other processes' dirty data on the same file system is written back
/// too. Elsewhere the files are fsynced concurrently, one thread each beyond the first.
pub(crate) fn sync_round(files: &[(&File, &Path)]) -> Result<()> {
    #[cfg(target_os = "linux")]
    if files.len() > 1 {
        return sync_file_systems(files);
    }
    sync_concurrently(files)
}

/// One `syncfs` per distinct file system among `files`.
#[cfg(target_os = "linux")]
fn sync_file_systems(files: &[(&File, &Path)]) -> Result<()> {
    use std::os::unix::fs::MetadataExt;
    let mut synced: Vec<u64> = Vec::new();
    for (file, path) in files {
        let device = file.metadata().map_err(|e| Error::io(path, e))?.dev();
        if synced.contains(&device) {
            continue;
        }
        rustix::fs::syncfs(file).map_err(|e| Error::io(path, std::io::Error::from(e)))?;
        synced.push(device);
    }
    Ok(())
}

/// fsyncs the files at once, one thread each beyond the first.
fn sync_concurrently(files: &[(&File, &Path)]) -> Result<()> {
    let sync = |(file, path): &(&File, &Path)| file.sync_all().map_err(|e| Error::io(path, e));
    match files {
        [] => Ok(()),
        [one] => sync(one),
        [first, rest @ ..] => std::thread::scope(|scope| {
            let others: Vec<_> = rest
                .iter()
                .map(|target| scope.spawn(move || sync(target)))
                .collect();
            let mut result = sync(first);
            for handle in others {
                let joined = handle
                    .join()
                    .unwrap_or_else(|_| Err(Error::Internal("an fsync thread panicked".into())));
                if result.is_ok() {
                    result = joined;
                }
            }
            result
        }),
    }
}

fn parent_dir(path: &Path) -> PathBuf {
    match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    }
}

/// fsyncs the directory holding `path`, so a rename or unlink in it is durable.
pub(crate) fn sync_parent(path: &Path, fsync: bool) -> Result<()> {
    sync_dir(&parent_dir(path), fsync)
}

/// fsyncs `dir` itself (its entries: creations, renames, unlinks).
pub(crate) fn sync_dir(dir: &Path, fsync: bool) -> Result<()> {
    if !fsync {
        return Ok(());
    }
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| Error::io(dir, e))
}

/// The checksum sidecar of a metadata file.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
struct ChecksumFile {
    algorithm: String,
    /// crc32c of the main file, as Spark writes it (a signed 32-bit int).
    value: i32,
    main_file_size: u64,
    /// The id of the query whose checkpoint holds the file (absent outside checkpoints).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    query_id: Option<String>,
    /// While a file is being replaced: the checksum of the content it replaces, so a crash
    /// between the two renames does not look like damage.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    previous: Option<PreviousChecksum>,
    /// Set on a checkpoint's `metadata` when weir created the checkpoint: every file in it then
    /// has a sidecar, so a missing one is damage.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    all_files_checksummed: bool,
}

#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
struct PreviousChecksum {
    value: i32,
    main_file_size: u64,
}

/// The sidecar path of `path`: `<path>.crc`.
pub fn checksum_path(path: &Path) -> PathBuf {
    let mut name = path.file_name().unwrap_or_default().to_os_string();
    name.push(".crc");
    path.with_file_name(name)
}

fn crc_value(bytes: &[u8]) -> i32 {
    crc32c::crc32c(bytes) as i32
}

fn sidecar_bytes(
    bytes: &[u8],
    owner: Option<&str>,
    previous: Option<PreviousChecksum>,
    all_files_checksummed: bool,
) -> Result<Vec<u8>> {
    let sidecar = ChecksumFile {
        algorithm: "CRC32C".to_string(),
        value: crc_value(bytes),
        main_file_size: bytes.len() as u64,
        query_id: owner.map(str::to_string),
        previous,
        all_files_checksummed,
    };
    serde_json::to_vec(&sidecar).map_err(|e| Error::Internal(format!("checksum json: {e}")))
}

/// What a query's writes left for the next fsync round, shared by the writers of one query:
/// directories holding new names that are not durable yet, and staged creates.
///
/// The rule that keeps writes durable in the order they were made, with fewer fsync rounds: a
/// checked create ([`create_checked_with`]) fsyncs every pending directory in the same round as
/// its own temp files (so all earlier names are durable before its own name exists) and then
/// leaves its own directory pending instead of syncing it. Whoever needs everything durable
/// (a query stopping) calls [`PendingWrites::flush`].
///
/// A staged create ([`stage_checked`]) writes its temp files now and joins the next round: its
/// temp files are synced with that round's, it is named, and its directory is fsynced (a
/// second, small round) before the round's own file is named, so the staged names are durable
/// first. A file source stages its seen-files log entry this way, and with a file sink the
/// query stages `offsets/N` too: both then join the round of the sink's log entry.
#[derive(Clone, Debug, Default)]
pub struct PendingWrites(Arc<Mutex<Pending>>);

#[derive(Debug, Default)]
struct Pending {
    /// Set for a query's pending writes, whose loop guarantees a later round (the next write
    /// or the flush at stop). Standalone writers (a source used outside a query) never stage.
    staging: bool,
    dirs: Vec<PathBuf>,
    staged: Vec<StagedCreate>,
    /// Empty temp files made ahead of time, by directory.
    temp_files: std::collections::HashMap<PathBuf, Vec<PathBuf>>,
    /// Directories whose temp files were taken since the last refill.
    drained: Vec<PathBuf>,
}

/// Empty temp files kept ready per directory (a batch takes two per log file).
const TEMP_FILES_PER_DIR: usize = 4;

/// At most this many recycled files wait per directory; more are deleted.
const MAX_RECYCLED_PER_DIR: usize = 16;

/// A checked create whose temp files are written but not yet synced or named.
#[derive(Debug)]
struct StagedCreate {
    path: PathBuf,
    side_tmp: PathBuf,
    side_file: File,
    main_tmp: PathBuf,
    main_file: File,
}

impl StagedCreate {
    fn discard(self) {
        let _ = fs::remove_file(&self.side_tmp);
        let _ = fs::remove_file(&self.main_tmp);
    }
}

impl PendingWrites {
    /// The pending writes of a query: staged creates are allowed (see [`stage_checked`]).
    pub(crate) fn for_query() -> PendingWrites {
        let pending = PendingWrites::default();
        pending.lock().staging = true;
        pending
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Pending> {
        self.0.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub(crate) fn defer(&self, dir: PathBuf) {
        let mut pending = self.lock();
        if !pending.dirs.contains(&dir) {
            pending.dirs.push(dir);
        }
    }

    fn stage(&self, staged: StagedCreate) {
        self.lock().staged.push(staged);
    }

    /// Whether a staged create waits for `path`.
    fn is_staged(&self, path: &Path) -> bool {
        self.lock().staged.iter().any(|s| s.path == path)
    }

    /// One [`sync_round`] of `targets`, the staged creates' temp files and every pending
    /// directory; then the staged creates are named (each leaving its directory pending). The
    /// directories stay pending if the round fails; the staged creates are then dropped and
    /// the error names them.
    fn sync_with(&self, targets: &[(&File, &Path)]) -> Result<()> {
        let (dirs, staged) = {
            let mut pending = self.lock();
            (
                std::mem::take(&mut pending.dirs),
                std::mem::take(&mut pending.staged),
            )
        };
        let result = (|| {
            let handles = dirs
                .iter()
                .map(|d| File::open(d).map_err(|e| Error::io(d, e)))
                .collect::<Result<Vec<_>>>()?;
            let mut all = targets.to_vec();
            for s in &staged {
                all.push((&s.side_file, s.side_tmp.as_path()));
                all.push((&s.main_file, s.main_tmp.as_path()));
            }
            all.extend(handles.iter().zip(&dirs).map(|(f, d)| (f, d.as_path())));
            sync_round(&all)
        })();
        if let Err(e) = result {
            for d in dirs {
                self.defer(d);
            }
            for s in staged {
                s.discard();
            }
            return Err(e);
        }
        let mut first_error = None;
        let placed_any = !staged.is_empty();
        for s in staged {
            let placed = place(&s.side_tmp, &s.main_tmp, &s.path);
            match placed {
                Ok(true) => self.defer(parent_dir(&s.path)),
                Ok(false) => {
                    first_error.get_or_insert(Error::checkpoint(
                        &s.path,
                        "the file was created by someone else while this query staged it: \
                         another run of this query is writing the checkpoint",
                    ));
                }
                Err(e) => {
                    first_error.get_or_insert(e);
                }
            }
            s.discard();
        }
        if let Some(e) = first_error {
            return Err(e);
        }
        if placed_any {
            // The staged names must be durable before the caller names its own file: their
            // directories (all that is pending now) get a round of their own.
            return self.sync_with(&[]);
        }
        Ok(())
    }

    /// An empty temp file made ahead of time in `dir`, if one is ready.
    fn take_temp_file(&self, dir: &Path) -> Option<PathBuf> {
        let mut pending = self.lock();
        let taken = pending.temp_files.get_mut(dir).and_then(Vec::pop);
        if !pending.drained.iter().any(|d| d == dir) {
            pending.drained.push(dir.to_path_buf());
        }
        taken
    }

    /// Makes empty temp files ahead of time in every directory a write used since the last
    /// call, so the next batch's writes open an existing file instead of creating one. Called
    /// by the query between batches, off the path from new data to committed output.
    ///
    /// Why: creating a file is the slowest step of a small write on some file systems. On
    /// ext4 without a journal (this project's CI machine), each creation scans past every
    /// inode freed in the last minutes; measured there, a create took 80-180 µs after a few
    /// thousand deletions, about a third of a whole fsync round.
    pub fn refill_temp_files(&self) {
        let drained = std::mem::take(&mut self.lock().drained);
        for dir in drained {
            let have = self.lock().temp_files.get(&dir).map_or(0, Vec::len);
            let mut made = Vec::new();
            for _ in have..TEMP_FILES_PER_DIR {
                let tmp = dir.join(format!(".pool-{}.tmp", uuid::Uuid::new_v4()));
                // Best effort: without a ready file the next write creates its own.
                if OpenOptions::new()
                    .write(true)
                    .create_new(true)
                    .open(&tmp)
                    .is_err()
                {
                    break;
                }
                made.push(tmp);
            }
            self.lock().temp_files.entry(dir).or_default().extend(made);
        }
    }

    /// Between batches, with fsync on: makes the pending directories and the temp files just
    /// made ahead of time durable now, in one round off the path from new data to output, so
    /// the next batch's round writes back only that batch's own files. (Without it, the next
    /// round also carried the previous batch's directories and the new temp files' metadata.)
    /// Nothing waits on this for correctness: a later round would sync the same things.
    pub fn settle(&self) -> Result<()> {
        let (dirs, pool_dirs) = {
            let pending = self.lock();
            (
                pending.dirs.clone(),
                pending.temp_files.keys().cloned().collect::<Vec<_>>(),
            )
        };
        // Every pending directory and the temp files' directories: on Linux a round of two or
        // more is one `syncfs` per distinct file system, which covers the new temp files too.
        let mut targets: Vec<PathBuf> = dirs.clone();
        for d in pool_dirs {
            if !targets.contains(&d) {
                targets.push(d);
            }
        }
        if targets.is_empty() {
            return Ok(());
        }
        let handles = targets
            .iter()
            .map(|d| File::open(d).map_err(|e| Error::io(d, e)))
            .collect::<Result<Vec<_>>>()?;
        let mut round: Vec<(&File, &Path)> = handles
            .iter()
            .zip(&targets)
            .map(|(f, d)| (f, d.as_path()))
            .collect();
        if round.len() == 1 {
            // One entry would be a plain fsync of that directory: repeat it to get the round.
            round.push(round[0]);
        }
        sync_round(&round)?;
        self.lock().dirs.retain(|d| !dirs.contains(d));
        Ok(())
    }

    /// Removes the temp files of earlier runs that were made ahead of time or recycled
    /// (`.pool-*.tmp` in `dir`): a crash leaves them behind. Called when a file source or a
    /// file sink opens its directories (the checkpoint's own `offsets/` and `commits/` lose
    /// every stale temp file at open). One run per checkpoint, so none of them is in use.
    pub fn remove_stale_pool_files(dir: &Path) {
        let Ok(entries) = fs::read_dir(dir) else {
            return;
        };
        for entry in entries.flatten() {
            let name = entry.file_name();
            let name = name.to_string_lossy();
            if name.starts_with(".pool-") && name.ends_with(".tmp") {
                let _ = fs::remove_file(entry.path());
            }
        }
    }

    /// Creates `path` for writing (a data file the caller syncs itself, e.g. a sink's part
    /// file), from an empty temp file made ahead of time in its directory when one is ready.
    pub fn create_file(&self, path: &Path) -> Result<File> {
        if let Some(tmp) = self.take_temp_file(&parent_dir(path)) {
            let reused = fs::rename(&tmp, path)
                .and_then(|()| OpenOptions::new().write(true).open(path))
                .and_then(|f| f.set_len(0).map(|()| f));
            if let Ok(file) = reused {
                return Ok(file);
            }
        }
        File::create(path).map_err(|e| Error::io(path, e))
    }

    /// Removes `path` and its checksum sidecar (a purged log file), keeping their inodes as
    /// temp files for later writes in the same directory while fewer than
    /// [`MAX_RECYCLED_PER_DIR`] wait there, as databases recycle old WAL segments. Deleting
    /// and creating small files each batch is what makes creation slow on ext4 without a
    /// journal (see [`Self::refill_temp_files`]); recycling makes a long-running query's
    /// steady state create and delete no checkpoint files at all.
    ///
    /// A recycled file is emptied first, so it is exactly like a fresh temp file: a torn write
    /// of it is empty (the checksum reports it), never an old batch's content.
    pub(crate) fn recycle(&self, path: &Path) -> Result<()> {
        let dir = parent_dir(path);
        // The main file goes first, as in [`remove_checked`].
        for p in [path.to_path_buf(), checksum_path(path)] {
            let room = self.lock().temp_files.get(&dir).map_or(0, Vec::len) < MAX_RECYCLED_PER_DIR;
            if !room {
                match fs::remove_file(&p) {
                    Ok(()) => {}
                    Err(e) if e.kind() == ErrorKind::NotFound => {}
                    Err(e) => return Err(Error::io(&p, e)),
                }
                continue;
            }
            let tmp = dir.join(format!(".pool-{}.tmp", uuid::Uuid::new_v4()));
            match fs::rename(&p, &tmp) {
                Ok(()) => {}
                Err(e) if e.kind() == ErrorKind::NotFound => continue,
                Err(e) => return Err(Error::io(&p, e)),
            }
            // Emptied: a recycled file then looks like a fresh one, so no crash (or silently
            // failed write-back) can show its old, checksum-valid content under a new name.
            OpenOptions::new()
                .write(true)
                .open(&tmp)
                .and_then(|f| f.set_len(0))
                .map_err(|e| Error::io(&tmp, e))?;
            self.lock()
                .temp_files
                .entry(dir.clone())
                .or_default()
                .push(tmp);
        }
        Ok(())
    }

    /// Removes the temp files made ahead of time (the query stops).
    pub fn remove_temp_files(&self) {
        let files = std::mem::take(&mut self.lock().temp_files);
        for tmp in files.into_values().flatten() {
            let _ = fs::remove_file(tmp);
        }
    }

    /// The directories currently pending (for tests).
    #[cfg(test)]
    pub(crate) fn pending(&self) -> Vec<PathBuf> {
        self.lock().dirs.clone()
    }

    /// Makes everything pending durable now: staged creates are synced and named, then every
    /// pending directory is fsynced.
    pub fn flush(&self) -> Result<()> {
        self.sync_with(&[])?;
        if !self.lock().dirs.is_empty() {
            self.sync_with(&[])?;
        }
        Ok(())
    }
}

/// Names a synced sidecar temp file and its synced main temp file: the sidecar first, so a
/// visible main file always has its sidecar. `Ok(false)` when `path` already exists.
fn place(side_tmp: &Path, main_tmp: &Path, path: &Path) -> Result<bool> {
    let sidecar = checksum_path(path);
    fs::rename(side_tmp, &sidecar).map_err(|e| Error::io(&sidecar, e))?;
    link_new(main_tmp, path)
}

/// Stages the checked create of `path` with `bytes` in `pending`: the temp files are written
/// now, and the next round of `pending` (the next checked create of the query, or a flush)
/// syncs them and names `path` before that round's own file (see [`PendingWrites`]).
/// `Ok(false)` (nothing written) when `path` exists or is already staged. With `fsync` off
/// there is no round to join, and outside a query ([`PendingWrites::for_query`]) nobody
/// guarantees one, so the file is created at once then.
pub(crate) fn stage_checked(
    path: &Path,
    bytes: &[u8],
    owner: Option<&str>,
    fsync: bool,
    pending: &PendingWrites,
) -> Result<bool> {
    if !fsync || !pending.lock().staging {
        return create_checked_with(path, bytes, owner, fsync, &[], Some(pending));
    }
    if path.exists() || pending.is_staged(path) {
        return Ok(false);
    }
    let (side_tmp, side_file) = write_temp_pooled(
        &checksum_path(path),
        &sidecar_bytes(bytes, owner, None, false)?,
        Some(pending),
    )?;
    let (main_tmp, main_file) = match write_temp_pooled(path, bytes, Some(pending)) {
        Ok(t) => t,
        Err(e) => {
            let _ = fs::remove_file(&side_tmp);
            return Err(e);
        }
    };
    pending.stage(StagedCreate {
        path: path.to_path_buf(),
        side_tmp,
        side_file,
        main_tmp,
        main_file,
    });
    Ok(true)
}

/// Creates `path` with `bytes` and a checksum sidecar, never replacing an existing file.
/// Returns `Ok(false)` when `path` already exists (nothing is written then).
pub(crate) fn create_checked(
    path: &Path,
    bytes: &[u8],
    owner: Option<&str>,
    fsync: bool,
) -> Result<bool> {
    create_checked_with(path, bytes, owner, fsync, &[], None)
}

/// [`create_checked`] that also fsyncs `also` (files that must be durable before `path` is
/// named, e.g. the data files a log entry lists) in the same round as its own temp files, and
/// with `pending`: fsyncs the pending directories in that round too and leaves its own
/// directory pending instead of syncing it (see [`PendingWrites`]).
pub(crate) fn create_checked_with(
    path: &Path,
    bytes: &[u8],
    owner: Option<&str>,
    fsync: bool,
    also: &[(&File, &Path)],
    pending: Option<&PendingWrites>,
) -> Result<bool> {
    if path.exists() {
        return Ok(false);
    }
    // Both temp files are written first and synced together (one fsync's latency, not two);
    // then the sidecar is renamed into place before the main file is linked, so a visible
    // main file always has its sidecar, and one directory fsync makes both names durable.
    let (side_tmp, side_file) = write_temp_pooled(
        &checksum_path(path),
        &sidecar_bytes(bytes, owner, None, false)?,
        pending,
    )?;
    let (main_tmp, main_file) = match write_temp_pooled(path, bytes, pending) {
        Ok(t) => t,
        Err(e) => {
            let _ = fs::remove_file(&side_tmp);
            return Err(e);
        }
    };
    let placed = (|| {
        if fsync {
            let mut targets = vec![
                (&side_file, side_tmp.as_path()),
                (&main_file, main_tmp.as_path()),
            ];
            targets.extend_from_slice(also);
            match pending {
                Some(p) => p.sync_with(&targets)?,
                None => sync_round(&targets)?,
            }
        }
        place(&side_tmp, &main_tmp, path)
    })();
    let _ = fs::remove_file(&side_tmp);
    let _ = fs::remove_file(&main_tmp);
    if !placed? {
        return Ok(false);
    }
    match pending.filter(|_| fsync) {
        Some(p) => p.defer(parent_dir(path)),
        None => sync_parent(path, fsync)?,
    }
    Ok(true)
}

/// Gives the (synced) temp file `tmp` the name `path` unless `path` exists: `Ok(false)` then.
///
/// On Linux this is one `renameat2(RENAME_NOREPLACE)`, which fails atomically if the target
/// exists, so two writers can never both succeed. Elsewhere (and on file systems without that
/// flag) a hard link does the same, and the temp name is removed afterwards by the caller. The
/// rename matters beyond one syscall fewer: without a journal, ext4 makes every file creation
/// skip the inodes freed in the last minutes one by one, so each unlinked temp file slows
/// every later creation on the file system (measured here: ~15 µs per create on a fresh
/// directory, over 100 µs after a few thousand batches of link-and-unlink).
fn link_new(tmp: &Path, path: &Path) -> Result<bool> {
    #[cfg(target_os = "linux")]
    {
        use rustix::fs::{CWD, RenameFlags, renameat_with};
        match renameat_with(CWD, tmp, CWD, path, RenameFlags::NOREPLACE) {
            Ok(()) => return Ok(true),
            Err(rustix::io::Errno::EXIST) => return Ok(false),
            // EINVAL / NOSYS: the file system or kernel lacks the flag; fall back to a link.
            Err(rustix::io::Errno::INVAL | rustix::io::Errno::NOSYS) => {}
            Err(e) => return Err(Error::io(path, std::io::Error::from(e))),
        }
    }
    match fs::hard_link(tmp, path) {
        Ok(()) => Ok(true),
        Err(e) if e.kind() == ErrorKind::AlreadyExists => Ok(false),
        // File systems without hard links: a rename after the caller's existence check (safe
        // while the checkpoint lock keeps other writers out).
        Err(_) => fs::rename(tmp, path)
            .map(|()| true)
            .map_err(|e| Error::io(path, e)),
    }
}

/// Replaces (or creates) `path` with `bytes` and its checksum sidecar. The sidecar first
/// accepts both the old and the new content, then the main file is replaced, then the sidecar
/// is narrowed to the new content, so no crash point makes the pair look damaged.
pub(crate) fn replace_checked(
    path: &Path,
    bytes: &[u8],
    owner: Option<&str>,
    all_files_checksummed: bool,
    fsync: bool,
) -> Result<()> {
    let previous = match fs::read(path) {
        Ok(old) => Some(PreviousChecksum {
            value: crc_value(&old),
            main_file_size: old.len() as u64,
        }),
        Err(e) if e.kind() == ErrorKind::NotFound => None,
        Err(e) => return Err(Error::io(path, e)),
    };
    let sidecar = checksum_path(path);
    if previous.is_some() {
        atomic_write(
            &sidecar,
            &sidecar_bytes(bytes, owner, previous, all_files_checksummed)?,
            fsync,
        )?;
    } else {
        atomic_write(
            &sidecar,
            &sidecar_bytes(bytes, owner, None, all_files_checksummed)?,
            fsync,
        )?;
    }
    atomic_write(path, bytes, fsync)?;
    atomic_write(
        &sidecar,
        &sidecar_bytes(bytes, owner, None, all_files_checksummed)?,
        fsync,
    )
}

/// A file read back and verified against its sidecar.
#[derive(Debug)]
pub(crate) struct CheckedFile {
    /// The file's bytes.
    pub bytes: Vec<u8>,
    /// The query id its sidecar names, if it has a sidecar that names one.
    pub owner: Option<String>,
    /// The sidecar's `allFilesChecksummed` flag (see [`replace_checked`]).
    pub all_files_checksummed: bool,
}

/// Reads `path` and verifies it against its sidecar. `Ok(None)` when the file does not exist.
/// A missing sidecar is accepted unless `require_checksum` (files written by Spark have none).
/// `how_to_recover` is appended to every damage message.
pub(crate) fn read_checked(
    path: &Path,
    require_checksum: bool,
    how_to_recover: &str,
) -> Result<Option<CheckedFile>> {
    let bytes = match fs::read(path) {
        Ok(b) => b,
        Err(e) if e.kind() == ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(Error::io(path, e)),
    };
    let sidecar_path = checksum_path(path);
    let sidecar = match fs::read(&sidecar_path) {
        Ok(s) => s,
        Err(e) if e.kind() == ErrorKind::NotFound => {
            if require_checksum {
                return Err(Error::checkpoint(
                    path,
                    format!(
                        "its checksum file {} is missing, so its integrity cannot be verified; {how_to_recover}",
                        sidecar_path.display()
                    ),
                ));
            }
            return Ok(Some(CheckedFile {
                bytes,
                owner: None,
                all_files_checksummed: false,
            }));
        }
        Err(e) => return Err(Error::io(&sidecar_path, e)),
    };
    let sidecar: ChecksumFile = serde_json::from_slice(&sidecar).map_err(|e| {
        Error::checkpoint(
            &sidecar_path,
            format!("checksum file is damaged ({e}); {how_to_recover}"),
        )
    })?;
    let size = bytes.len() as u64;
    let crc = crc_value(&bytes);
    let matches_current = sidecar.main_file_size == size && sidecar.value == crc;
    let matches_previous = sidecar
        .previous
        .as_ref()
        .is_some_and(|p| p.main_file_size == size && p.value == crc);
    if !matches_current && !matches_previous {
        let what = if size < sidecar.main_file_size {
            format!(
                "the file is truncated: {size} bytes, but {} were written",
                sidecar.main_file_size
            )
        } else if size > sidecar.main_file_size {
            format!(
                "the file is longer than written: {size} bytes, but {} were written",
                sidecar.main_file_size
            )
        } else {
            format!(
                "checksum mismatch: crc32c of the content is {}, but {} was written (a byte was changed)",
                crc as u32, sidecar.value as u32
            )
        };
        return Err(Error::checkpoint(path, format!("{what}; {how_to_recover}")));
    }
    Ok(Some(CheckedFile {
        bytes,
        owner: sidecar.query_id,
        all_files_checksummed: sidecar.all_files_checksummed,
    }))
}

/// Removes `path` and its sidecar (missing files are fine).
pub(crate) fn remove_checked(path: &Path) -> Result<()> {
    // The main file goes first: a crash in between leaves a sidecar without its file, which no
    // reader looks at, never a file without its sidecar, which would read as damage.
    for p in [path.to_path_buf(), checksum_path(path)] {
        match fs::remove_file(&p) {
            Ok(()) => {}
            Err(e) if e.kind() == ErrorKind::NotFound => {}
            Err(e) => return Err(Error::io(&p, e)),
        }
    }
    Ok(())
}

/// `file://` + the percent-encoded absolute path, as Hadoop's `Path.toUri` prints it
/// (`file:///tmp/a%20b/part-0.json`).
pub fn file_uri(path: &Path) -> String {
    let text = path.to_string_lossy();
    let mut out = String::with_capacity(text.len() + 8);
    out.push_str("file://");
    for &b in text.as_bytes() {
        let keep = b.is_ascii_alphanumeric() || b"/-._~!$&'()*+,;=:@".contains(&b);
        if keep {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// The local path of a `file:` URI (`file:///x`, `file:/x`), or `None` when it is not one.
pub fn path_from_uri(uri: &str) -> Option<PathBuf> {
    let rest = uri.strip_prefix("file:")?;
    let rest = match rest.strip_prefix("//") {
        Some(after) => after.strip_prefix("localhost").unwrap_or(after),
        None => rest,
    };
    if !rest.starts_with('/') {
        return None;
    }
    let bytes = rest.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            if i + 2 >= bytes.len() {
                return None;
            }
            let hex = std::str::from_utf8(&bytes[i + 1..i + 3]).ok()?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    Some(PathBuf::from(String::from_utf8(out).ok()?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uri_round_trip_encodes_spaces_and_percent() {
        let p = Path::new("/tmp/a b/100%/x.json");
        let uri = file_uri(p);
        assert_eq!(uri, "file:///tmp/a%20b/100%25/x.json");
        assert_eq!(path_from_uri(&uri).as_deref(), Some(p));
        assert_eq!(
            path_from_uri("file:/x/y").as_deref(),
            Some(Path::new("/x/y"))
        );
        assert_eq!(path_from_uri("x/y"), None);
        assert_eq!(path_from_uri("file:///bad%2"), None);
    }

    #[test]
    fn atomic_create_never_overwrites() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("0");
        assert!(atomic_create(&p, b"one", true).unwrap());
        assert!(!atomic_create(&p, b"two", true).unwrap());
        assert_eq!(fs::read(&p).unwrap(), b"one");
        let leftovers: Vec<_> = fs::read_dir(dir.path()).unwrap().collect();
        assert_eq!(leftovers.len(), 1, "no temp file is left behind");
    }

    #[test]
    fn checked_files_detect_damage() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("5");
        assert!(create_checked(&p, b"v1\n{\"a\":1}", Some("q"), true).unwrap());
        let ok = read_checked(&p, true, "fix it").unwrap().unwrap();
        assert_eq!(ok.owner.as_deref(), Some("q"));
        fs::write(&p, b"v1\n{\"a\":2}").unwrap();
        let err = read_checked(&p, true, "fix it").unwrap_err().to_string();
        assert!(
            err.contains("checksum mismatch") && err.contains("fix it"),
            "{err}"
        );
        fs::write(&p, b"v1\n{").unwrap();
        let err = read_checked(&p, true, "fix it").unwrap_err().to_string();
        assert!(err.contains("truncated"), "{err}");
    }

    #[test]
    fn replace_keeps_a_valid_pair() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("metadata");
        replace_checked(&p, b"old", None, true, false).unwrap();
        replace_checked(&p, b"new content", None, true, false).unwrap();
        assert!(
            read_checked(&p, true, "")
                .unwrap()
                .unwrap()
                .all_files_checksummed
        );
        assert_eq!(
            read_checked(&p, true, "").unwrap().unwrap().bytes,
            b"new content"
        );
    }
}
