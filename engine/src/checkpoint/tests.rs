//! Checkpoint tests on real temp dirs: Spark's byte layout, recovery reads of a Spark-written
//! checkpoint, and each kind of damage reported by file name.

use super::*;

fn seq(offsets: &[&str]) -> OffsetSeq {
    OffsetSeq {
        batch_watermark_ms: 0,
        batch_timestamp_ms: 1_795_497_222_069,
        conf: BTreeMap::from([("spark.sql.shuffle.partitions".to_string(), "2".to_string())]),
        offsets: offsets
            .iter()
            .map(|o| Some(Offset(o.to_string())))
            .collect(),
    }
}

fn open(dir: &Path) -> Result<Checkpoint> {
    Checkpoint::open(dir, CheckpointOptions::default())
}

/// A checkpoint with batches 0..=2 offset-logged and 0..=1 committed.
fn three_batches(dir: &Path) -> String {
    let cp = open(dir).unwrap();
    for b in 0..3u64 {
        cp.write_offsets(b, &seq(&[&format!("{{\"logOffset\":{b}}}")]))
            .unwrap();
        if b < 2 {
            cp.write_commit(b, &CommitMetadata::default()).unwrap();
        }
    }
    cp.query_id().to_string()
}

#[test]
fn writes_spark_layout_and_reads_it_back() {
    let tmp = tempfile::tempdir().unwrap();
    let cp = open(tmp.path()).unwrap();
    let id = cp.query_id().to_string();
    assert_eq!(
        fs::read_to_string(tmp.path().join("metadata")).unwrap(),
        format!("{{\"id\":\"{id}\"}}")
    );
    cp.write_offsets(0, &seq(&["{\"logOffset\":0}"])).unwrap();
    cp.write_commit(
        0,
        &CommitMetadata {
            next_batch_watermark_ms: 1_704_067_200_000,
        },
    )
    .unwrap();
    assert_eq!(
        fs::read_to_string(tmp.path().join("offsets/0")).unwrap(),
        "v1\n{\"batchWatermarkMs\":0,\"batchTimestampMs\":1795497222069,\"conf\":{\"spark.sql.shuffle.partitions\":\"2\"}}\n{\"logOffset\":0}"
    );
    assert_eq!(
        fs::read_to_string(tmp.path().join("commits/0")).unwrap(),
        "v1\n{\"nextBatchWatermarkMs\":1704067200000}"
    );
    assert!(tmp.path().join("offsets/0.crc").exists());
    // Writing the same batch again is a no-op; different content is refused.
    cp.write_offsets(0, &seq(&["{\"logOffset\":0}"])).unwrap();
    let err = cp
        .write_offsets(0, &seq(&["{\"logOffset\":9}"]))
        .unwrap_err();
    assert!(err.to_string().contains("already exists"), "{err}");
    drop(cp);

    let cp = open(tmp.path()).unwrap();
    assert_eq!(cp.query_id(), id);
    assert_eq!(
        cp.latest_offsets().unwrap(),
        Some((0, seq(&["{\"logOffset\":0}"])))
    );
    assert_eq!(
        cp.latest_commit().unwrap(),
        Some((
            0,
            CommitMetadata {
                next_batch_watermark_ms: 1_704_067_200_000
            }
        ))
    );
    assert_eq!(cp.source_dir(1), tmp.path().join("sources/1"));
    assert_eq!(cp.state_dir(), tmp.path().join("state"));
}

#[test]
fn reads_a_checkpoint_written_by_spark() {
    // Files of spark-formats/a-stateless-json-sink/checkpoint (no weir checksums).
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path();
    let conf = r#"{"spark.sql.streaming.stateStore.providerClass":"org.apache.spark.sql.execution.streaming.state.HDFSBackedStateStoreProvider","spark.sql.shuffle.partitions":"2"}"#;
    fs::create_dir_all(d.join("offsets")).unwrap();
    fs::create_dir_all(d.join("commits")).unwrap();
    fs::write(
        d.join("metadata"),
        r#"{"id":"0312f30e-bd84-4609-bade-4745b59e0fc4"}"#,
    )
    .unwrap();
    for (b, ts) in [(0, 1_795_497_222_069i64), (1, 1_795_497_223_298)] {
        fs::write(
            d.join(format!("offsets/{b}")),
            format!("v1\n{{\"batchWatermarkMs\":0,\"batchTimestampMs\":{ts},\"conf\":{conf}}}\n{{\"logOffset\":{b}}}"),
        )
        .unwrap();
        fs::write(
            d.join(format!("commits/{b}")),
            "v1\n{\"nextBatchWatermarkMs\":0}",
        )
        .unwrap();
        // Hadoop's own checksum files are ignored.
        fs::write(d.join(format!("offsets/.{b}.crc")), b"crc\0junk").unwrap();
    }
    let cp = open(d).unwrap();
    assert_eq!(cp.query_id(), "0312f30e-bd84-4609-bade-4745b59e0fc4");
    let (b, s) = cp.latest_offsets().unwrap().unwrap();
    assert_eq!(b, 1);
    assert_eq!(s.batch_timestamp_ms, 1_795_497_223_298);
    assert_eq!(s.conf["spark.sql.shuffle.partitions"], "2");
    assert_eq!(s.offsets, vec![Some(Offset("{\"logOffset\":1}".into()))]);
    assert_eq!(cp.latest_commit().unwrap().unwrap().0, 1);
    // New files written into a Spark checkpoint get sidecars and stay readable, also after
    // weir stored its extra metadata and the checkpoint is reopened.
    cp.write_offsets(2, &seq(&["{\"logOffset\":2}"])).unwrap();
    assert!(cp.offsets(2).unwrap().is_some());
    let mut cp = cp;
    cp.write_extra_metadata(serde_json::json!({"k": 1}))
        .unwrap();
    drop(cp);
    let cp = open(d).unwrap();
    assert_eq!(cp.latest_offsets().unwrap().unwrap().0, 2);
}

#[test]
fn flipped_byte_is_named() {
    let tmp = tempfile::tempdir().unwrap();
    three_batches(tmp.path());
    let path = tmp.path().join("offsets/1");
    let mut bytes = fs::read(&path).unwrap();
    bytes[10] ^= 0x01;
    fs::write(&path, bytes).unwrap();
    let err = open(tmp.path()).unwrap_err().to_string();
    assert!(
        err.contains("offsets/1") && err.contains("checksum mismatch"),
        "{err}"
    );
    assert!(err.contains("restore this file from a backup"), "{err}");
}

#[test]
fn truncated_file_is_named() {
    let tmp = tempfile::tempdir().unwrap();
    three_batches(tmp.path());
    let path = tmp.path().join("commits/1");
    let bytes = fs::read(&path).unwrap();
    fs::write(&path, &bytes[..bytes.len() / 2]).unwrap();
    let err = open(tmp.path()).unwrap_err().to_string();
    assert!(
        err.contains("commits/1") && err.contains("truncated"),
        "{err}"
    );
}

#[test]
fn missing_offsets_file_in_the_middle_is_named() {
    let tmp = tempfile::tempdir().unwrap();
    three_batches(tmp.path());
    fs::remove_file(tmp.path().join("offsets/1")).unwrap();
    let err = open(tmp.path()).unwrap_err().to_string();
    assert!(
        err.contains("offsets/1") && err.contains("missing"),
        "{err}"
    );
}

#[test]
fn missing_checksum_in_a_weir_checkpoint_is_damage() {
    let tmp = tempfile::tempdir().unwrap();
    three_batches(tmp.path());
    fs::remove_file(tmp.path().join("offsets/2.crc")).unwrap();
    let err = open(tmp.path()).unwrap_err().to_string();
    assert!(
        err.contains("offsets/2") && err.contains("checksum file"),
        "{err}"
    );
}

#[test]
fn metadata_of_another_query_is_detected() {
    let a = tempfile::tempdir().unwrap();
    let b = tempfile::tempdir().unwrap();
    let id_a = three_batches(a.path());
    let id_b = three_batches(b.path());
    // Copy b's metadata (with its valid checksum) over a's.
    fs::copy(b.path().join("metadata"), a.path().join("metadata")).unwrap();
    fs::copy(b.path().join("metadata.crc"), a.path().join("metadata.crc")).unwrap();
    let err = open(a.path()).unwrap_err().to_string();
    assert!(err.contains("belongs to another query"), "{err}");
    assert!(err.contains(&id_a) && err.contains(&id_b), "{err}");
}

#[test]
fn second_open_is_refused_while_the_first_is_alive() {
    let tmp = tempfile::tempdir().unwrap();
    let first = open(tmp.path()).unwrap();
    let err = open(tmp.path()).unwrap_err().to_string();
    assert!(err.contains("another query run is active"), "{err}");
    drop(first);
    open(tmp.path()).unwrap();
}

#[test]
fn extra_metadata_is_kept_next_to_the_id() {
    let tmp = tempfile::tempdir().unwrap();
    let mut cp = open(tmp.path()).unwrap();
    let id = cp.query_id().to_string();
    cp.write_extra_metadata(serde_json::json!({"fingerprint": "abc"}))
        .unwrap();
    drop(cp);
    let cp = open(tmp.path()).unwrap();
    assert_eq!(cp.query_id(), id);
    assert_eq!(
        cp.extra_metadata(),
        Some(&serde_json::json!({"fingerprint": "abc"}))
    );
}

#[test]
fn purge_keeps_the_newest_batches() {
    let tmp = tempfile::tempdir().unwrap();
    let cp = open(tmp.path()).unwrap();
    for b in 0..7u64 {
        cp.write_offsets(b, &seq(&["1"])).unwrap();
        cp.write_commit(b, &CommitMetadata::default()).unwrap();
    }
    cp.purge(3).unwrap();
    assert_eq!(
        list_batch_ids(&tmp.path().join("offsets")).unwrap(),
        vec![4, 5, 6]
    );
    assert_eq!(
        list_batch_ids(&tmp.path().join("commits")).unwrap(),
        vec![4, 5, 6]
    );
    assert!(!tmp.path().join("offsets/3.crc").exists());
    drop(cp);
    open(tmp.path()).unwrap();
}

#[test]
fn no_offset_is_written_as_a_dash() {
    let tmp = tempfile::tempdir().unwrap();
    let cp = open(tmp.path()).unwrap();
    let s = OffsetSeq {
        offsets: vec![None, Some(Offset("4".into()))],
        ..OffsetSeq::default()
    };
    cp.write_offsets(0, &s).unwrap();
    assert!(
        fs::read_to_string(tmp.path().join("offsets/0"))
            .unwrap()
            .ends_with("\n-\n4")
    );
    assert_eq!(cp.offsets(0).unwrap(), Some(s));
}

#[test]
fn empty_metadata_line_is_refused() {
    let tmp = tempfile::tempdir().unwrap();
    fs::create_dir_all(tmp.path().join("offsets")).unwrap();
    fs::write(tmp.path().join("metadata"), r#"{"id":"x"}"#).unwrap();
    fs::write(tmp.path().join("offsets/0"), "v1\n\n4").unwrap();
    let err = open(tmp.path()).unwrap_err().to_string();
    assert!(err.contains("offsets/0") && err.contains("empty"), "{err}");
}

#[test]
fn a_torn_write_is_never_visible() {
    let tmp = tempfile::tempdir().unwrap();
    three_batches(tmp.path());
    // What a crash in the middle of writing offsets/3 leaves: a partial temp file.
    let torn = tmp
        .path()
        .join("offsets/.3.0b0e9c1a-1111-2222-3333-444455556666.tmp");
    fs::write(&torn, b"v1\n{\"batchWat").unwrap();
    let cp = open(tmp.path()).unwrap();
    assert_eq!(cp.latest_offsets().unwrap().unwrap().0, 2);
    assert!(
        !torn.exists(),
        "the stale temp file is cleaned up under the lock"
    );
}

/// Each write syncs the directories earlier writes left pending (in its own temp-file fsync
/// round) and leaves its own directory pending; a query's offsets, commits, source log and
/// sink log all share one pending set.
#[test]
fn writes_sync_the_directories_earlier_writes_left_pending() {
    let dir = tempfile::tempdir().unwrap();
    let cp = open(dir.path()).unwrap();
    let pending = cp.pending_writes();
    assert!(pending.pending().is_empty());
    cp.write_offsets(0, &seq(&["{\"logOffset\":0}"])).unwrap();
    assert_eq!(pending.pending(), vec![cp.offsets_dir()]);

    let log = CompactibleLog::open(&dir.path().join("sink-log"), 10, None, true)
        .unwrap()
        .with_pending_writes(pending.clone());
    assert!(log.add(0, &["{}".to_string()]).unwrap());
    // The offsets directory was synced with the log entry's temp files; the log's is pending.
    assert_eq!(pending.pending(), vec![dir.path().join("sink-log")]);

    cp.write_commit(0, &CommitMetadata::default()).unwrap();
    assert_eq!(pending.pending(), vec![cp.commits_dir()]);
    // Writing the same content again writes nothing and changes nothing.
    cp.write_commit(0, &CommitMetadata::default()).unwrap();
    assert_eq!(pending.pending(), vec![cp.commits_dir()]);
    pending.flush().unwrap();
    assert!(pending.pending().is_empty());
    assert!(cp.commit(0).unwrap().is_some());

    // Without fsync nothing is ever pending (there is nothing to sync).
    let dir2 = tempfile::tempdir().unwrap();
    let cp2 = Checkpoint::open(dir2.path(), CheckpointOptions { fsync: false }).unwrap();
    cp2.write_offsets(0, &seq(&["{\"logOffset\":0}"])).unwrap();
    assert!(cp2.pending_writes().pending().is_empty());
}
