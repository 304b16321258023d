//! The state store's files: names, checksummed atomic writes, verified reads, Arrow IPC
//! encoding, and the tally of bytes on disk.
//!
//! Layout of one store directory (`<checkpoint>/state/<op>/<shard>/`):
//! - `<version>.delta`, `<version>.snapshot`: Arrow IPC *file* format (see `mod.rs` for columns);
//! - `<file>.crc` beside each: `{"algorithm":"CRC32C","value":<u32>,"mainFileSize":<bytes>}`
//!   (the shape of Spark 4.x's checksum files), covering every byte of the data file;
//! - `.<file>.<uuid>.tmp`: a write in progress (removed when a store opens).
//!
//! Write order: remove an old data file of the same name, write the sidecar, then the data file
//! (each via temp file, fsync, rename, fsync directory). A data file therefore never exists
//! without the sidecar that describes it, and the data file's appearance commits the version.
//!
//! This module owns only file mechanics; what the files mean is decided in `mod.rs`.

use std::collections::BTreeMap;
use std::fs::{self, File, OpenOptions};
use std::io::{Cursor, ErrorKind, Write};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError};

use arrow::datatypes::Schema;
use arrow::ipc::reader::FileReader;
use arrow::ipc::writer::FileWriter;
use arrow::record_batch::RecordBatch;
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// Suffix of the checksum sidecar of a data file.
pub(crate) const CHECKSUM_SUFFIX: &str = ".crc";
const TEMP_SUFFIX: &str = ".tmp";

/// What to tell a user whose state file is damaged or missing.
pub(crate) const RECOVERY_HINT: &str =
    "restore the file from a backup, or delete the checkpoint to start the query over";

/// The two kinds of data file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum FileKind {
    /// The changes of one version.
    Delta,
    /// The full state at one version.
    Snapshot,
}

impl FileKind {
    /// The file extension (also the `weir.state.kind` metadata value).
    pub(crate) fn extension(self) -> &'static str {
        match self {
            FileKind::Delta => "delta",
            FileKind::Snapshot => "snapshot",
        }
    }
}

/// `<version>.delta` or `<version>.snapshot`.
pub(crate) fn data_file_name(version: u64, kind: FileKind) -> String {
    format!("{version}.{}", kind.extension())
}

/// The version and kind of a data file name, `None` for any other name.
pub(crate) fn parse_data_file_name(name: &str) -> Option<(u64, FileKind)> {
    let (stem, extension) = name.split_once('.')?;
    let kind = match extension {
        "delta" => FileKind::Delta,
        "snapshot" => FileKind::Snapshot,
        _ => return None,
    };
    if stem.is_empty() || !stem.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    Some((stem.parse().ok()?, kind))
}

/// The contents of a `.crc` sidecar.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct ChecksumFile {
    algorithm: String,
    value: u32,
    #[serde(rename = "mainFileSize")]
    main_file_size: u64,
}

const CHECKSUM_ALGORITHM: &str = "CRC32C";

/// Bytes and count of the store's files, shared with the background snapshot thread.
#[derive(Debug, Default)]
pub(crate) struct DiskUsage {
    sizes: Mutex<BTreeMap<String, u64>>,
}

impl DiskUsage {
    /// Scans `dir`: counts every data file and sidecar, removes leftover temp files.
    pub(crate) fn scan(dir: &Path) -> Result<DiskUsage> {
        let mut sizes = BTreeMap::new();
        for entry in fs::read_dir(dir).map_err(|e| Error::io(dir, e))? {
            let entry = entry.map_err(|e| Error::io(dir, e))?;
            let name = entry.file_name().to_string_lossy().into_owned();
            if name.starts_with('.') && name.ends_with(TEMP_SUFFIX) {
                remove_if_present(&entry.path())?;
                continue;
            }
            let data_name = name.strip_suffix(CHECKSUM_SUFFIX).unwrap_or(&name);
            if parse_data_file_name(data_name).is_some() {
                let len = entry
                    .metadata()
                    .map_err(|e| Error::io(entry.path(), e))?
                    .len();
                sizes.insert(name, len);
            }
        }
        Ok(DiskUsage {
            sizes: Mutex::new(sizes),
        })
    }

    fn set(&self, name: &str, len: Option<u64>) {
        let mut sizes = self.sizes.lock().unwrap_or_else(PoisonError::into_inner);
        match len {
            Some(len) => sizes.insert(name.to_string(), len),
            None => sizes.remove(name),
        };
    }

    /// (total bytes, number of files).
    pub(crate) fn totals(&self) -> (u64, u64) {
        let sizes = self.sizes.lock().unwrap_or_else(PoisonError::into_inner);
        (sizes.values().sum(), sizes.len() as u64)
    }

    /// The newest snapshot version present, if any.
    pub(crate) fn newest_snapshot(&self) -> Option<u64> {
        let sizes = self.sizes.lock().unwrap_or_else(PoisonError::into_inner);
        sizes
            .keys()
            .filter_map(|name| parse_data_file_name(name))
            .filter(|(_, kind)| *kind == FileKind::Snapshot)
            .map(|(version, _)| version)
            .max()
    }
}

/// Every data file in `dir` by (version, kind). Sidecars and temp files are not listed.
pub(crate) fn list_data_files(dir: &Path) -> Result<BTreeMap<(u64, FileKind), PathBuf>> {
    let mut files = BTreeMap::new();
    for entry in fs::read_dir(dir).map_err(|e| Error::io(dir, e))? {
        let entry = entry.map_err(|e| Error::io(dir, e))?;
        if let Some(key) = parse_data_file_name(&entry.file_name().to_string_lossy()) {
            files.insert(key, entry.path());
        }
    }
    Ok(files)
}

/// Encodes `batches` as one Arrow IPC file with `schema` (whose metadata travels in the file).
pub(crate) fn encode_ipc(schema: &Schema, batches: &[RecordBatch]) -> Result<Vec<u8>> {
    let mut writer = FileWriter::try_new(Vec::new(), schema)?;
    for batch in batches {
        writer.write(batch)?;
    }
    writer.finish()?;
    Ok(writer.into_inner()?)
}

/// Decodes an Arrow IPC file read from `path` into its schema and batches.
pub(crate) fn decode_ipc(path: &Path, bytes: Vec<u8>) -> Result<(Arc<Schema>, Vec<RecordBatch>)> {
    let unreadable = |e: arrow::error::ArrowError| {
        Error::state(
            path,
            format!(
                "is not a readable Arrow IPC file although its checksum matches ({e}); \
                 {RECOVERY_HINT}"
            ),
        )
    };
    let reader = FileReader::try_new(Cursor::new(bytes), None).map_err(unreadable)?;
    let schema = reader.schema();
    let batches = reader
        .collect::<std::result::Result<Vec<_>, _>>()
        .map_err(unreadable)?;
    Ok((schema, batches))
}

/// Writes `bytes` as `dir/name` with its checksum sidecar, replacing an earlier file of that
/// name (see the module doc for the order), and records the sizes in `usage`.
pub(crate) fn write_checked(
    dir: &Path,
    name: &str,
    bytes: &[u8],
    fsync: bool,
    usage: &DiskUsage,
) -> Result<()> {
    let sidecar_name = format!("{name}{CHECKSUM_SUFFIX}");
    remove_if_present(&dir.join(name))?;
    usage.set(name, None);
    let sidecar = ChecksumFile {
        algorithm: CHECKSUM_ALGORITHM.to_string(),
        value: crc32c::crc32c(bytes),
        main_file_size: bytes.len() as u64,
    };
    let sidecar_text = serde_json::to_vec(&sidecar)
        .map_err(|e| Error::Internal(format!("cannot encode a checksum file: {e}")))?;
    write_atomically(dir, &sidecar_name, &sidecar_text, fsync)?;
    usage.set(&sidecar_name, Some(sidecar_text.len() as u64));
    write_atomically(dir, name, bytes, fsync)?;
    usage.set(name, Some(bytes.len() as u64));
    Ok(())
}

/// Reads `path` and verifies it against its sidecar: present, same size, same CRC32C.
pub(crate) fn read_checked(path: &Path) -> Result<Vec<u8>> {
    let sidecar_path = sidecar_path(path);
    let sidecar_text = match fs::read(&sidecar_path) {
        Ok(text) => text,
        Err(e) if e.kind() == ErrorKind::NotFound => {
            return Err(Error::state(
                path,
                format!(
                    "its checksum file {} is missing, so the file cannot be verified; \
                     {RECOVERY_HINT}",
                    sidecar_path.display()
                ),
            ));
        }
        Err(e) => return Err(Error::io(&sidecar_path, e)),
    };
    let sidecar: ChecksumFile = serde_json::from_slice(&sidecar_text)
        .ok()
        .filter(|s: &ChecksumFile| s.algorithm == CHECKSUM_ALGORITHM)
        .ok_or_else(|| {
            Error::state(
                &sidecar_path,
                format!(
                    "is not a valid checksum file (expected {{\"algorithm\":\"CRC32C\",\
                     \"value\":..,\"mainFileSize\":..}}); {RECOVERY_HINT}"
                ),
            )
        })?;
    let bytes = fs::read(path).map_err(|e| Error::io(path, e))?;
    let len = bytes.len() as u64;
    if len != sidecar.main_file_size {
        let what = if len < sidecar.main_file_size {
            "is truncated"
        } else {
            "has extra bytes"
        };
        return Err(Error::state(
            path,
            format!(
                "{what}: it has {len} bytes but {} were written (per {}); {RECOVERY_HINT}",
                sidecar.main_file_size,
                sidecar_path.display()
            ),
        ));
    }
    let actual = crc32c::crc32c(&bytes);
    if actual != sidecar.value {
        return Err(Error::state(
            path,
            format!(
                "is damaged: its CRC32C is {actual:#010x} but {:#010x} was written (per {}); \
                 {RECOVERY_HINT}",
                sidecar.value,
                sidecar_path.display()
            ),
        ));
    }
    Ok(bytes)
}

/// Whether `path` has the size its sidecar records (a cheap check that does not read the data).
pub(crate) fn has_recorded_size(path: &Path) -> bool {
    let recorded = fs::read(sidecar_path(path))
        .ok()
        .and_then(|text| serde_json::from_slice::<ChecksumFile>(&text).ok())
        .map(|sidecar| sidecar.main_file_size);
    let actual = fs::metadata(path).ok().map(|m| m.len());
    recorded.is_some() && recorded == actual
}

/// Removes a data file and its sidecar (either may be absent) and updates `usage`.
pub(crate) fn remove_checked(path: &Path, usage: &DiskUsage) -> Result<()> {
    for file in [path.to_path_buf(), sidecar_path(path)] {
        remove_if_present(&file)?;
        if let Some(name) = file.file_name() {
            usage.set(&name.to_string_lossy(), None);
        }
    }
    Ok(())
}

fn sidecar_path(path: &Path) -> PathBuf {
    let mut name = path.file_name().unwrap_or_default().to_os_string();
    name.push(CHECKSUM_SUFFIX);
    path.with_file_name(name)
}

fn remove_if_present(path: &Path) -> Result<()> {
    match fs::remove_file(path) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == ErrorKind::NotFound => Ok(()),
        Err(e) => Err(Error::io(path, e)),
    }
}

/// Temp file, write, fsync, rename over `dir/name`, fsync `dir` (fsyncs only when `fsync`).
fn write_atomically(dir: &Path, name: &str, bytes: &[u8], fsync: bool) -> Result<()> {
    let temp = dir.join(format!(".{name}.{}{TEMP_SUFFIX}", uuid::Uuid::new_v4()));
    let target = dir.join(name);
    let written = (|| {
        let mut file = OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&temp)
            .map_err(|e| Error::io(&temp, e))?;
        file.write_all(bytes).map_err(|e| Error::io(&temp, e))?;
        if fsync {
            file.sync_all().map_err(|e| Error::io(&temp, e))?;
        }
        drop(file);
        fs::rename(&temp, &target).map_err(|e| Error::io(&target, e))
    })();
    if written.is_err() {
        // Best effort: the error being returned is the one that matters.
        let _ = fs::remove_file(&temp);
    }
    written?;
    if fsync {
        File::open(dir)
            .and_then(|d| d.sync_all())
            .map_err(|e| Error::io(dir, e))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn data_file_names_parse_back() {
        assert_eq!(
            parse_data_file_name("12.delta"),
            Some((12, FileKind::Delta))
        );
        assert_eq!(
            parse_data_file_name("10.snapshot"),
            Some((10, FileKind::Snapshot))
        );
        assert_eq!(data_file_name(7, FileKind::Delta), "7.delta");
        for other in [
            "12.delta.crc",
            ".12.delta.x.tmp",
            "a.delta",
            ".delta",
            "+1.delta",
            "1.zip",
        ] {
            assert_eq!(parse_data_file_name(other), None, "{other}");
        }
    }

    #[test]
    fn checked_write_then_read_round_trips_and_leaves_no_temp_file() {
        let dir = tempfile::tempdir().unwrap();
        let usage = DiskUsage::scan(dir.path()).unwrap();
        write_checked(dir.path(), "1.delta", b"hello", true, &usage).unwrap();
        assert_eq!(read_checked(&dir.path().join("1.delta")).unwrap(), b"hello");
        let names: Vec<_> = fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        assert_eq!(names.len(), 2, "{names:?}");
        let (bytes, files) = usage.totals();
        assert_eq!(files, 2);
        assert!(bytes > 5);
    }

    #[test]
    fn scan_removes_leftover_temp_files() {
        let dir = tempfile::tempdir().unwrap();
        fs::write(dir.path().join(".3.delta.abc.tmp"), b"partial").unwrap();
        let usage = DiskUsage::scan(dir.path()).unwrap();
        assert_eq!(usage.totals(), (0, 0));
        assert!(!dir.path().join(".3.delta.abc.tmp").exists());
    }
}
