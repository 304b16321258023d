//! The state store's files: names, self-checksummed Arrow IPC encoding, verified reads, atomic
//! writes, and the tally of bytes on disk.
//!
//! Layout of one store directory (`<checkpoint>/state/<op>/<shard>/`):
//! - `<version>.delta`, `<version>.snapshot`: Arrow IPC *file* format (see `mod.rs` for columns);
//! - `.<file>.<uuid>.tmp`: a write in progress (removed when a store opens).
//!
//! Checksum: the file footer's custom metadata (`FileReader::custom_metadata`) holds
//! `weir.state.crc32c` = 8 lowercase hex digits, the CRC32C of the whole file computed with those
//! 8 digits set to ASCII `0`. It covers every byte, footer included, so a flipped byte anywhere is
//! found; a truncated file has lost its footer (Arrow files end with `ARROW1`). One file per
//! version, written atomically (temp file, fsync, rename, fsync directory): its appearance
//! commits the version, and a rewrite of the same version (a batch re-run) replaces it whole.
//!
//! This module owns only file mechanics; what the files mean is decided in `mod.rs`.

use std::collections::BTreeMap;
use std::fs::{self, File, OpenOptions};
use std::io::{Cursor, ErrorKind, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError};

use arrow::datatypes::Schema;
use arrow::ipc::reader::FileReader;
use arrow::ipc::writer::FileWriter;
use arrow::record_batch::RecordBatch;

use crate::error::{Error, Result};

/// Footer metadata key of the file checksum.
const CHECKSUM_KEY: &str = "weir.state.crc32c";
/// The checksum's value while the checksum is computed.
const CHECKSUM_PLACEHOLDER: &str = "00000000";
/// The last bytes of every Arrow IPC file.
const ARROW_MAGIC: &[u8] = b"ARROW1";
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

/// Bytes and count of the store's files, shared with the background snapshot thread.
#[derive(Debug, Default)]
pub(crate) struct DiskUsage {
    sizes: Mutex<BTreeMap<String, u64>>,
}

impl DiskUsage {
    /// Scans `dir`: counts every data file, removes leftover temp files.
    pub(crate) fn scan(dir: &Path) -> Result<DiskUsage> {
        let mut sizes = BTreeMap::new();
        for entry in fs::read_dir(dir).map_err(|e| Error::io(dir, e))? {
            let entry = entry.map_err(|e| Error::io(dir, e))?;
            let name = entry.file_name().to_string_lossy().into_owned();
            if name.starts_with('.') && name.ends_with(TEMP_SUFFIX) {
                remove_if_present(&entry.path())?;
                continue;
            }
            if parse_data_file_name(&name).is_some() {
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

/// Every data file in `dir` by (version, kind). Temp files are not listed.
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

/// Encodes `batches` as one Arrow IPC file with `schema` (whose metadata travels in the file)
/// and the checksum in the footer metadata.
pub(crate) fn encode_ipc(schema: &Schema, batches: &[RecordBatch]) -> Result<Vec<u8>> {
    let mut writer = FileWriter::try_new(Vec::new(), schema)?;
    for batch in batches {
        writer.write(batch)?;
    }
    writer.write_metadata(CHECKSUM_KEY, CHECKSUM_PLACEHOLDER);
    writer.finish()?;
    let mut bytes = writer.into_inner()?;
    let (offset, _) = find_checksum(&bytes).map_err(|reason| {
        Error::Internal(format!(
            "a state file just encoded has no checksum slot: {reason}"
        ))
    })?;
    let checksum = format!("{:08x}", crc32c::crc32c(&bytes));
    bytes[offset..offset + CHECKSUM_PLACEHOLDER.len()].copy_from_slice(checksum.as_bytes());
    Ok(bytes)
}

/// The byte offset and text of the checksum in an Arrow IPC file's footer metadata, or why it
/// cannot be found.
fn find_checksum(bytes: &[u8]) -> std::result::Result<(usize, &str), String> {
    let trailer = ARROW_MAGIC.len() + 4;
    if bytes.len() < trailer || !bytes.ends_with(ARROW_MAGIC) {
        return Err("is truncated: it does not end with an Arrow IPC file footer".to_string());
    }
    let length_at = bytes.len() - trailer;
    let mut footer_length = [0u8; 4];
    footer_length.copy_from_slice(&bytes[length_at..length_at + 4]);
    let footer_start = usize::try_from(i32::from_le_bytes(footer_length))
        .ok()
        .and_then(|length| length_at.checked_sub(length))
        .ok_or_else(|| "is damaged: its Arrow footer length is out of range".to_string())?;
    let footer = arrow::ipc::root_as_footer(&bytes[footer_start..length_at])
        .map_err(|e| format!("is damaged: its Arrow footer is not readable ({e})"))?;
    let value = footer
        .custom_metadata()
        .into_iter()
        .flatten()
        .find(|entry| entry.key() == Some(CHECKSUM_KEY))
        .and_then(|entry| entry.value())
        .ok_or_else(|| {
            format!("has no {CHECKSUM_KEY} footer metadata, so it was not written by weir")
        })?;
    // `value` borrows from `bytes`, so the difference of addresses is its offset.
    let offset = value.as_ptr() as usize - bytes.as_ptr() as usize;
    if value.len() != CHECKSUM_PLACEHOLDER.len() || offset + value.len() > bytes.len() {
        return Err(format!(
            "is damaged: its {CHECKSUM_KEY} value {value:?} is malformed"
        ));
    }
    Ok((offset, value))
}

/// Fails with a message naming `path` unless `bytes` carry a matching checksum.
fn verify_checksum(path: &Path, bytes: &[u8]) -> Result<()> {
    let damaged = |reason: String| Error::state(path, format!("{reason}; {RECOVERY_HINT}"));
    let (offset, recorded) = find_checksum(bytes).map_err(damaged)?;
    let end = offset + CHECKSUM_PLACEHOLDER.len();
    let actual = [
        &bytes[..offset],
        CHECKSUM_PLACEHOLDER.as_bytes(),
        &bytes[end..],
    ]
    .iter()
    .fold(0, |crc, part| crc32c::crc32c_append(crc, part));
    if u32::from_str_radix(recorded, 16).ok() != Some(actual) {
        return Err(damaged(format!(
            "is damaged: its CRC32C is {actual:08x} but {recorded} was written"
        )));
    }
    Ok(())
}

/// Reads `path` and verifies its checksum.
pub(crate) fn read_checked(path: &Path) -> Result<Vec<u8>> {
    let bytes = fs::read(path).map_err(|e| Error::io(path, e))?;
    verify_checksum(path, &bytes)?;
    Ok(bytes)
}

/// Decodes an Arrow IPC file read (and verified) from `path` into its schema and batches.
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

/// Whether `path` ends like a complete Arrow IPC file (a cheap check that reads 6 bytes).
pub(crate) fn ends_with_footer(path: &Path) -> bool {
    let mut tail = [0u8; ARROW_MAGIC.len()];
    File::open(path)
        .and_then(|mut file| {
            file.seek(SeekFrom::End(-(ARROW_MAGIC.len() as i64)))?;
            file.read_exact(&mut tail)
        })
        .is_ok_and(|()| tail == ARROW_MAGIC)
}

/// Writes `bytes` as `dir/name` atomically, replacing a file of that name, and records its
/// size in `usage`.
pub(crate) fn write_tracked(
    dir: &Path,
    name: &str,
    bytes: &[u8],
    fsync: bool,
    usage: &DiskUsage,
) -> Result<()> {
    write_atomically(dir, name, bytes, fsync)?;
    usage.set(name, Some(bytes.len() as u64));
    Ok(())
}

/// Removes a data file (it may be absent) and updates `usage`.
pub(crate) fn remove_tracked(path: &Path, usage: &DiskUsage) -> Result<()> {
    remove_if_present(path)?;
    if let Some(name) = path.file_name() {
        usage.set(&name.to_string_lossy(), None);
    }
    Ok(())
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

    fn sample_file() -> Vec<u8> {
        use arrow::array::Int64Array;
        use arrow::datatypes::{DataType, Field};
        let schema = Arc::new(Schema::new(vec![Field::new("v", DataType::Int64, false)]));
        let batch = RecordBatch::try_new(
            schema.clone(),
            vec![Arc::new(Int64Array::from(vec![1, 2, 3]))],
        )
        .unwrap();
        encode_ipc(&schema, &[batch]).unwrap()
    }

    #[test]
    fn every_flipped_byte_and_every_truncation_is_detected() {
        let bytes = sample_file();
        let path = Path::new("/ck/state/0/0/1.delta");
        verify_checksum(path, &bytes).unwrap();
        for at in 0..bytes.len() {
            let mut damaged = bytes.clone();
            damaged[at] ^= 0x04;
            let err = verify_checksum(path, &damaged).unwrap_err();
            assert!(err.to_string().contains("1.delta"), "{err}");
        }
        for len in 0..bytes.len() {
            assert!(
                verify_checksum(path, &bytes[..len]).is_err(),
                "length {len}"
            );
        }
    }

    #[test]
    fn checked_files_are_plain_arrow_files_with_the_checksum_in_the_footer() {
        let bytes = sample_file();
        let reader = FileReader::try_new(Cursor::new(bytes.clone()), None).unwrap();
        let checksum = reader.custom_metadata()[CHECKSUM_KEY].clone();
        assert_eq!(checksum.len(), 8);
        assert_ne!(checksum, CHECKSUM_PLACEHOLDER);
        assert_eq!(reader.map(|b| b.unwrap().num_rows()).sum::<usize>(), 3);
    }

    #[test]
    fn tracked_write_leaves_no_temp_file_and_counts_bytes() {
        let dir = tempfile::tempdir().unwrap();
        let usage = DiskUsage::scan(dir.path()).unwrap();
        let bytes = sample_file();
        write_tracked(dir.path(), "1.delta", &bytes, true, &usage).unwrap();
        assert_eq!(read_checked(&dir.path().join("1.delta")).unwrap(), bytes);
        assert!(ends_with_footer(&dir.path().join("1.delta")));
        let names: Vec<_> = fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        assert_eq!(names, ["1.delta"]);
        assert_eq!(usage.totals(), (bytes.len() as u64, 1));
        remove_tracked(&dir.path().join("1.delta"), &usage).unwrap();
        assert_eq!(usage.totals(), (0, 0));
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
