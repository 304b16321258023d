//! What a power loss can leave behind now that a file source's seen-files log entry and the
//! batch's `offsets/N` share one fsync round (and, with a file sink, the sink's commit round):
//! after a crash any subset of those names may exist. These tests build the states a power loss
//! can leave, restart on them, and check the committed output is exactly once; a state no crash
//! can leave (the sink committed a batch whose source entry is gone) is an error naming the
//! source log. They also check that purged checkpoint files are recycled, not deleted.

mod common;

use std::path::Path;

use common::{event_schema, write_event_files};
use weir_engine::sink::committed_files;
use weir_engine::{Session, SessionConfig, Trigger};

const FILES: &[&[(i64, &str)]] = &[
    &[(1, "a"), (2, "b")],
    &[(3, "c")],
    &[(4, "d"), (5, "e"), (6, "f")],
];

fn session() -> Session {
    Session::with_config(SessionConfig {
        workers: 1,
        fsync: true,
        ..Default::default()
    })
    .unwrap()
}

/// Runs the file → JSON file query with availableNow (one input file per batch) to the end.
fn run(dir: &Path) -> weir_engine::error::Result<()> {
    let q = session()
        .read_stream()
        .format("json")
        .schema(event_schema(false))
        .option("maxFilesPerTrigger", 1)
        .load_path(Some(dir.join("in").to_str().unwrap()))?
        .select_expr(&["word"])?
        .write_stream()
        .format("json")
        .trigger(Trigger::AvailableNow)
        .option("path", dir.join("out").display())
        .option("checkpointLocation", dir.join("ck").display())
        .start()?;
    q.await_termination()
}

/// The words in the committed output, sorted (each committed row once).
fn committed_words(dir: &Path) -> Vec<String> {
    let mut words = Vec::new();
    for f in committed_files(&dir.join("out")).unwrap() {
        let path = weir_engine::checkpoint::path_from_uri(&f.path).unwrap();
        for line in std::fs::read_to_string(path).unwrap().lines() {
            let v: serde_json::Value = serde_json::from_str(line).unwrap();
            words.push(v["word"].as_str().unwrap().to_string());
        }
    }
    words.sort();
    words
}

fn remove_with_sidecar(path: &Path) {
    std::fs::remove_file(path).unwrap();
    let mut crc = path.as_os_str().to_owned();
    crc.push(".crc");
    let _ = std::fs::remove_file(crc);
}

#[test]
fn offsets_that_outlived_their_source_entry_are_planned_again() {
    let dir = tempfile::tempdir().unwrap();
    write_event_files(dir.path(), 0, FILES, false);
    run(dir.path()).unwrap();
    let ck = dir.path().join("ck");
    // A power loss after batch 2's renames: offsets/2 survived; its source entry, the sink's
    // entry and commits/2 did not.
    remove_with_sidecar(&ck.join("sources/0/2"));
    remove_with_sidecar(&ck.join("commits/2"));
    remove_with_sidecar(&dir.path().join("out/_spark_metadata/2"));
    assert!(ck.join("offsets/2").exists());
    run(dir.path()).unwrap();
    assert_eq!(committed_words(dir.path()), ["a", "b", "c", "d", "e", "f"]);
    assert!(ck.join("sources/0/2").exists());
    assert!(ck.join("commits/2").exists());
}

#[test]
fn a_source_entry_lost_after_the_sink_committed_is_an_error() {
    let dir = tempfile::tempdir().unwrap();
    write_event_files(dir.path(), 0, FILES, false);
    run(dir.path()).unwrap();
    let ck = dir.path().join("ck");
    // No crash leaves this (the sink commits only after the entry is durable): damage by hand.
    remove_with_sidecar(&ck.join("sources/0/2"));
    remove_with_sidecar(&ck.join("commits/2"));
    let err = run(dir.path()).unwrap_err().to_string();
    assert!(err.contains("sources/0"), "names the source log: {err}");
    assert!(
        err.contains("sink committed batch 2"),
        "says what is inconsistent: {err}"
    );
}

#[test]
fn a_source_entry_without_its_offsets_is_used_by_the_next_batch() {
    let dir = tempfile::tempdir().unwrap();
    write_event_files(dir.path(), 0, FILES, false);
    run(dir.path()).unwrap();
    let ck = dir.path().join("ck");
    // The other order: the source entry for batch 2 survived, offsets/2 did not.
    remove_with_sidecar(&ck.join("offsets/2"));
    remove_with_sidecar(&ck.join("commits/2"));
    remove_with_sidecar(&dir.path().join("out/_spark_metadata/2"));
    run(dir.path()).unwrap();
    assert_eq!(committed_words(dir.path()), ["a", "b", "c", "d", "e", "f"]);
}

#[test]
fn purged_batches_are_recycled_and_leave_no_temp_files_behind() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("in");
    std::fs::create_dir_all(&input).unwrap();
    let files: Vec<Vec<(i64, &str)>> = (0..14).map(|i| vec![(i, "w")]).collect();
    let refs: Vec<&[(i64, &str)]> = files.iter().map(Vec::as_slice).collect();
    write_event_files(dir.path(), 0, &refs, false);
    let q = Session::with_config(SessionConfig {
        workers: 1,
        fsync: true,
        min_batches_to_retain: 4,
        ..Default::default()
    })
    .unwrap()
    .read_stream()
    .format("json")
    .schema(event_schema(false))
    .option("maxFilesPerTrigger", 1)
    .load_path(Some(input.to_str().unwrap()))
    .unwrap()
    .write_stream()
    .format("json")
    .trigger(Trigger::AvailableNow)
    .option("path", dir.path().join("out").display())
    .option("checkpointLocation", dir.path().join("ck").display())
    .start()
    .unwrap();
    q.await_termination().unwrap();
    let names = |sub: &str| -> Vec<String> {
        let mut v: Vec<String> = std::fs::read_dir(dir.path().join(sub))
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        v.sort();
        v
    };
    // Only the last four batches are kept, each with its checksum sidecar, and the temp files
    // made ahead of time (or recycled from purged batches) are gone after the query stopped.
    assert_eq!(
        names("ck/offsets"),
        [
            "10", "10.crc", "11", "11.crc", "12", "12.crc", "13", "13.crc"
        ]
    );
    assert_eq!(
        names("ck/commits"),
        [
            "10", "10.crc", "11", "11.crc", "12", "12.crc", "13", "13.crc"
        ]
    );
    for sub in [
        "ck/offsets",
        "ck/commits",
        "ck/sources/0",
        "out",
        "out/_spark_metadata",
    ] {
        assert!(
            names(sub).iter().all(|n| !n.ends_with(".tmp")),
            "{sub} has temp files left: {:?}",
            names(sub)
        );
    }
    assert_eq!(committed_words(dir.path()).len(), 14);
}
