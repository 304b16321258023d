//! The rules around stateful operators, through the public API (spark-structured-streaming.md
//! §4.4, §4.5, §6.3–6.5): damaged state and checkpoint files are detected at start and named, a
//! query whose stateful part changed refuses an existing checkpoint, both deduplication forms
//! with a watermark evict state and drop late rows trigger by trigger, and no-data batches flush
//! final windows.
//!
//! Expected outputs marked "Spark 4.3" were printed by Spark itself (PySpark 4.3.0, local[2]) for
//! the same JSON files with `maxFilesPerTrigger = 1` and `trigger(availableNow=True)`, collected
//! with `foreachBatch`.

mod common;

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use arrow::array::{RecordBatch, StringArray, TimestampMicrosecondArray};
use arrow::datatypes::{DataType, Field, Schema, SchemaRef, TimeUnit};
use weir_engine::testing::{Action, StreamTest, check_new_answer, format_rows};
use weir_engine::{DataFrame, Session, SessionConfig, StreamingQuery, Trigger};
use weir_plan::expr::{AggregateFunction, aggregate, col, count_star, session_window, window};

fn schema() -> SchemaRef {
    Arc::new(Schema::new(vec![
        Field::new(
            "ts",
            DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into())),
            true,
        ),
        Field::new("word", DataType::Utf8, true),
    ]))
}

fn session() -> Session {
    Session::with_config(SessionConfig {
        workers: 2,
        fsync: false,
        ..Default::default()
    })
    .unwrap()
}

/// Writes `batches[first..]` as one JSON file each (oldest first) into `dir/in`.
fn write_files(dir: &std::path::Path, first: usize, batches: &[&[(i64, &str)]]) {
    common::write_event_files(dir, first, batches, false);
}

/// A file stream over `dir/in`, one file per trigger.
fn file_stream(s: &Session, dir: &Path) -> DataFrame {
    s.read_stream()
        .format("json")
        .schema(schema())
        .option("maxFilesPerTrigger", 1)
        .load_path(Some(dir.join("in").to_str().unwrap()))
        .unwrap()
}

fn windowed_count(df: DataFrame, size: &str) -> DataFrame {
    df.with_watermark("ts", "10 seconds")
        .unwrap()
        .group_by([window(col("ts"), size, None, None).unwrap(), col("word")])
        .count()
        .unwrap()
}

/// A batch id and its sorted rows.
type BatchRows = (u64, Vec<String>);
/// (batch, input rows, dropped late, state rows, updated, removed) of one batch.
type Metrics = (u64, u64, u64, u64, u64, u64);
type Batches = Arc<Mutex<Vec<BatchRows>>>;

/// Starts `df` with availableNow on `checkpoint`, collecting each batch's sorted rows.
fn start(
    df: &DataFrame,
    mode: &str,
    checkpoint: &Path,
) -> weir_engine::Result<(StreamingQuery, Batches)> {
    let out: Batches = Arc::default();
    let sink_out = out.clone();
    let q = df
        .write_stream()
        .output_mode(mode)
        .trigger(Trigger::AvailableNow)
        .option("checkpointLocation", checkpoint.display())
        .foreach_batch(move |batches, id| {
            let mut rows = Vec::new();
            for b in batches {
                rows.extend(format_rows(b)?);
            }
            rows.sort();
            sink_out.lock().unwrap().push((id, rows));
            Ok(())
        })
        .start()?;
    Ok((q, out))
}

/// Runs `df` to the end of its input; returns the batches and (batch, input rows, dropped late,
/// state rows, updated, removed) of the first state operator per batch.
fn run_to_end(df: &DataFrame, mode: &str, checkpoint: &Path) -> (Vec<BatchRows>, Vec<Metrics>) {
    let (q, out) = start(df, mode, checkpoint).unwrap();
    q.await_termination().unwrap();
    let metrics = q
        .recent_progress()
        .iter()
        .map(|p| {
            let op = p.state_operators.first().cloned().unwrap_or_default();
            (
                p.batch_id,
                p.num_input_rows,
                op.num_rows_dropped_by_watermark,
                op.num_rows_total,
                op.num_rows_updated,
                op.num_rows_removed,
            )
        })
        .collect();
    let batches = out.lock().unwrap().clone();
    (batches, metrics)
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), &target).unwrap();
        }
    }
}

const WINDOW_BATCHES: [&[(i64, &str)]; 4] = [
    &[(12, "a"), (14, "a"), (21, "b")],
    &[(35, "a")],
    &[(15, "a"), (45, "c")],
    &[(5, "z"), (26, "b")],
];

/// A windowed count run over four files; returns the temp dir holding `in/` and the checkpoint
/// `ck/` (whose state store has one delta per committed batch).
fn committed_windowed_run() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    write_files(dir.path(), 0, &WINDOW_BATCHES);
    let s = session();
    let df = windowed_count(file_stream(&s, dir.path()), "10 seconds");
    let (batches, _) = run_to_end(&df, "append", &dir.path().join("ck"));
    assert!(
        batches.len() >= 4,
        "expected at least 4 batches, got {batches:?}"
    );
    dir
}

fn delta_path(checkpoint: &Path, version: u64) -> PathBuf {
    checkpoint
        .join("state")
        .join("0")
        .join("0")
        .join(format!("{version}.delta"))
}

/// Restarts the windowed query on `checkpoint` and returns the error it fails with.
fn restart_error(dir: &Path, checkpoint: &Path) -> String {
    let s = session();
    let df = windowed_count(file_stream(&s, dir), "10 seconds");
    match start(&df, "append", checkpoint) {
        Err(e) => e.to_string(),
        Ok((q, _)) => match q.await_termination() {
            Err(e) => e.to_string(),
            Ok(()) => panic!("the query restarted on a damaged checkpoint without an error"),
        },
    }
}

/// Copies the committed checkpoint, damages it with `damage`, restarts: the error must name
/// `named`.
fn assert_damage_detected(damage: impl Fn(&Path), named: &str) -> String {
    let base = committed_windowed_run();
    let copy = base.path().join("ck-damaged");
    copy_dir(&base.path().join("ck"), &copy);
    damage(&copy);
    let err = restart_error(base.path(), &copy);
    assert!(err.contains(named), "the error should name {named}: {err}");
    err
}

#[test]
fn a_flipped_byte_in_a_state_delta_is_detected_at_start() {
    assert_damage_detected(
        |ck| {
            let path = delta_path(ck, 2);
            let mut bytes = std::fs::read(&path).unwrap();
            let middle = bytes.len() / 2;
            bytes[middle] ^= 0x40;
            std::fs::write(&path, bytes).unwrap();
        },
        "2.delta",
    );
}

#[test]
fn a_truncated_state_delta_is_detected_at_start() {
    assert_damage_detected(
        |ck| {
            let path = delta_path(ck, 3);
            let bytes = std::fs::read(&path).unwrap();
            std::fs::write(&path, &bytes[..bytes.len() - 7]).unwrap();
        },
        "3.delta",
    );
}

#[test]
fn a_missing_state_delta_in_the_middle_is_detected_at_start() {
    let err = assert_damage_detected(
        |ck| std::fs::remove_file(delta_path(ck, 2)).unwrap(),
        "2.delta",
    );
    assert!(
        err.contains("missing"),
        "the error should say the file is missing: {err}"
    );
}

#[test]
fn a_damaged_offsets_file_is_detected_at_start() {
    let err = assert_damage_detected(
        |ck| {
            let offsets = ck.join("offsets");
            let last = std::fs::read_dir(&offsets)
                .unwrap()
                .filter_map(|e| e.ok()?.file_name().to_str()?.parse::<u64>().ok())
                .max()
                .unwrap();
            let path = offsets.join(last.to_string());
            let text = std::fs::read_to_string(&path).unwrap();
            std::fs::write(&path, &text[..text.len() / 2]).unwrap();
        },
        "offsets",
    );
    // The message names the file itself, not only the directory.
    assert!(
        err.contains("offsets/"),
        "the error should name the offsets file: {err}"
    );
}

/// Runs `original` on a fresh checkpoint, then starts `changed` on it: the start must fail with
/// the fingerprint error naming what changed.
fn assert_change_refused(
    original: impl Fn(DataFrame) -> DataFrame,
    changed: impl Fn(DataFrame) -> DataFrame,
    mode: &str,
    names: &[&str],
) {
    let dir = tempfile::tempdir().unwrap();
    write_files(dir.path(), 0, &WINDOW_BATCHES[..2]);
    let checkpoint = dir.path().join("ck");
    let s = session();
    run_to_end(&original(file_stream(&s, dir.path())), mode, &checkpoint);
    write_files(dir.path(), 2, &WINDOW_BATCHES);
    let err = match start(&changed(file_stream(&s, dir.path())), mode, &checkpoint) {
        Err(e) => e.to_string(),
        Ok((q, _)) => match q.await_termination() {
            Err(e) => e.to_string(),
            Ok(()) => panic!("a changed stateful query reused the checkpoint"),
        },
    };
    assert!(
        err.contains("stateful part of the query changed"),
        "unexpected error: {err}"
    );
    for name in names {
        assert!(err.contains(name), "the error should name {name}: {err}");
    }
    // The original query still runs on it.
    run_to_end(&original(file_stream(&s, dir.path())), mode, &checkpoint);
}

#[test]
fn changed_grouping_keys_refuse_the_checkpoint() {
    assert_change_refused(
        |df| windowed_count(df, "10 seconds"),
        |df| {
            df.with_watermark("ts", "10 seconds")
                .unwrap()
                .group_by([window(col("ts"), "10 seconds", None, None).unwrap()])
                .count()
                .unwrap()
        },
        "append",
        &["word"],
    );
}

#[test]
fn changed_aggregates_refuse_the_checkpoint() {
    assert_change_refused(
        |df| windowed_count(df, "10 seconds"),
        |df| {
            df.with_watermark("ts", "10 seconds")
                .unwrap()
                .group_by([
                    window(col("ts"), "10 seconds", None, None).unwrap(),
                    col("word"),
                ])
                .agg([
                    count_star(),
                    aggregate(AggregateFunction::Max, col("ts")).alias("last"),
                ])
                .unwrap()
        },
        "append",
        &["max"],
    );
}

#[test]
fn a_changed_window_size_refuses_the_checkpoint() {
    assert_change_refused(
        |df| windowed_count(df, "10 seconds"),
        |df| windowed_count(df, "20 seconds"),
        "append",
        &["10 seconds", "20 seconds"],
    );
}

#[test]
fn a_changed_session_gap_refuses_the_checkpoint() {
    let sessions = |gap: &'static str| {
        move |df: DataFrame| {
            df.with_watermark("ts", "10 seconds")
                .unwrap()
                .group_by([session_window(col("ts"), gap).unwrap(), col("word")])
                .count()
                .unwrap()
        }
    };
    assert_change_refused(
        sessions("10 seconds"),
        sessions("30 seconds"),
        "append",
        &[
            "session_window(ts, 10 seconds)",
            "session_window(ts, 30 seconds)",
        ],
    );
}

#[test]
fn changed_dedup_columns_refuse_the_checkpoint() {
    assert_change_refused(
        |df| {
            df.with_watermark("ts", "10 seconds")
                .unwrap()
                .drop_duplicates(&["word", "ts"])
                .unwrap()
        },
        |df| {
            df.with_watermark("ts", "10 seconds")
                .unwrap()
                .drop_duplicates(&["word"])
                .unwrap()
        },
        "append",
        &["keys=[word, ts]", "keys=[word]"],
    );
}

const DEDUP_KEY_BATCHES: [&[(i64, &str)]; 5] = [
    &[(10, "a"), (10, "a"), (12, "b")],
    &[(10, "a"), (25, "c")],
    &[(10, "a"), (12, "b"), (26, "c")],
    &[(11, "a"), (30, "d")],
    &[(60, "e")],
];

fn ts_word(ts: i64, word: &str) -> String {
    format!("1970-01-01 00:{:02}:{:02}, {word}", ts / 60, ts % 60)
}

fn timestamp_rows(rows: &[(i64, &str)]) -> Vec<String> {
    let mut r: Vec<String> = rows.iter().map(|(t, w)| ts_word(*t, w)).collect();
    r.sort();
    r
}

/// `dropDuplicates("word", "ts")` with a watermark on `ts` (Spark 4.3): a duplicate is dropped
/// while its key is in the state, even when the key's time is behind the current watermark
/// (eviction happens at the end of the batch); afterwards a row that old is late and dropped.
#[test]
fn drop_duplicates_with_a_watermarked_key_matches_spark() {
    let dir = tempfile::tempdir().unwrap();
    write_files(dir.path(), 0, &DEDUP_KEY_BATCHES);
    let s = session();
    let df = file_stream(&s, dir.path())
        .with_watermark("ts", "10 seconds")
        .unwrap()
        .drop_duplicates(&["word", "ts"])
        .unwrap();
    let (batches, metrics) = run_to_end(&df, "append", &dir.path().join("ck"));
    assert_eq!(
        batches,
        vec![
            (0, timestamp_rows(&[(10, "a"), (12, "b")])),
            (1, timestamp_rows(&[(25, "c")])),
            (2, timestamp_rows(&[(26, "c")])),
            (3, timestamp_rows(&[(30, "d")])),
            (4, timestamp_rows(&[(60, "e")])),
            (5, vec![]),
        ]
    );
    // (batch, input rows, dropped late, keys in state, keys added, keys evicted), as Spark
    // reported them.
    assert_eq!(
        metrics,
        vec![
            (0, 3, 0, 2, 2, 0),
            (1, 2, 0, 3, 1, 0),
            (2, 3, 0, 2, 1, 2),
            (3, 2, 1, 3, 1, 0),
            (4, 1, 0, 4, 1, 0),
            (5, 0, 0, 1, 0, 3),
        ]
    );
}

const DEDUP_WITHIN_BATCHES: [&[(i64, &str)]; 5] = [
    &[(10, "a"), (11, "a"), (12, "b")],
    &[(15, "a"), (25, "c")],
    &[(18, "a"), (21, "b"), (30, "c")],
    &[(36, "a"), (60, "e")],
    &[(61, "a")],
];

fn dedup_within_run() -> (Vec<BatchRows>, Vec<Metrics>) {
    let dir = tempfile::tempdir().unwrap();
    write_files(dir.path(), 0, &DEDUP_WITHIN_BATCHES);
    let s = session();
    let df = file_stream(&s, dir.path())
        .with_watermark("ts", "10 seconds")
        .unwrap()
        .drop_duplicates_within_watermark(&["word"])
        .unwrap();
    run_to_end(&df, "append", &dir.path().join("ck"))
}

/// `dropDuplicatesWithinWatermark("word")` with a 10 s delay (Spark 4.3): a key expires at its
/// first event time + 10 s; a duplicate arriving in the batch whose watermark reaches the expiry
/// is still dropped (a at 36 in batch 3), and passes from the next batch on (a at 61).
#[test]
fn drop_duplicates_within_watermark_matches_spark() {
    let (batches, metrics) = dedup_within_run();
    let data_batches: Vec<(u64, Vec<String>)> =
        batches.into_iter().filter(|(id, _)| *id < 5).collect();
    assert_eq!(
        data_batches,
        vec![
            (0, timestamp_rows(&[(10, "a"), (12, "b")])),
            (1, timestamp_rows(&[(25, "c")])),
            (2, vec![]),
            (3, timestamp_rows(&[(60, "e")])),
            (4, timestamp_rows(&[(61, "a")])),
        ]
    );
    let data_metrics: Vec<_> = metrics.into_iter().filter(|m| m.0 < 5).collect();
    assert_eq!(
        data_metrics,
        vec![
            (0, 3, 0, 2, 2, 0),
            (1, 2, 0, 3, 1, 0),
            (2, 3, 0, 3, 0, 0),
            (3, 2, 0, 3, 1, 1),
            (4, 1, 0, 2, 1, 2),
        ]
    );
}

/// Spark 4.3 runs a no-data batch after the last input whenever the watermark moved and the
/// query has a watermarked deduplication (`shouldRunAnotherBatch` looks only at the watermark),
/// even when no key would be evicted: here batch 5 at watermark 51 evicts nothing.
#[test]
fn drop_duplicates_within_watermark_runs_the_same_no_data_batch_as_spark() {
    let (batches, metrics) = dedup_within_run();
    assert_eq!(batches.last(), Some(&(5, vec![])));
    assert_eq!(metrics.last(), Some(&(5, 0, 0, 2, 0, 0)));
}

fn events(rows: &[(i64, &str)]) -> RecordBatch {
    RecordBatch::try_new(
        schema(),
        vec![
            Arc::new(
                TimestampMicrosecondArray::from(
                    rows.iter().map(|r| r.0 * 1_000_000).collect::<Vec<_>>(),
                )
                .with_timezone("UTC"),
            ),
            Arc::new(StringArray::from(
                rows.iter().map(|r| r.1).collect::<Vec<_>>(),
            )),
        ],
    )
    .unwrap()
}

/// A windowed append query emits a window in a batch without new input once the watermark
/// passes its end.
#[test]
fn a_no_data_batch_emits_the_final_window() {
    let s = session();
    let (input, df) = s.read_stream().memory(schema()).unwrap();
    let df = windowed_count(df, "10 seconds");
    let mut t = StreamTest::new(df, "append").unwrap();
    t.run(vec![
        // Watermark 11 after this batch: [10, 20) is still open; the no-data batch that follows
        // (the watermark moved, as in Spark) emits nothing.
        Action::AddData(input.clone(), events(&[(12, "a"), (14, "a"), (21, "b")])),
        check_new_answer(&[]),
        // Watermark 25 after this batch: a no-data batch closes [10, 20).
        Action::AddData(input.clone(), events(&[(35, "a")])),
        check_new_answer(&["[1970-01-01 00:00:10, 1970-01-01 00:00:20), a, 2"]),
        Action::AssertOnQuery(Box::new(|q| {
            let progress = q.recent_progress();
            let shape: Vec<(u64, u64, i64)> = progress
                .iter()
                .map(|p| (p.batch_id, p.num_input_rows, p.sink.num_output_rows))
                .collect();
            let expected = vec![(0, 3, 0), (1, 0, 0), (2, 1, 0), (3, 0, 1)];
            if shape != expected {
                return Err(format!(
                    "(batch, input rows, output rows): expected {expected:?}, got {shape:?}"
                ));
            }
            let watermark = progress[3]
                .event_time
                .get("watermark")
                .cloned()
                .unwrap_or_default();
            if watermark != "1970-01-01T00:00:25.000Z" {
                return Err(format!(
                    "the no-data batch should run at watermark 25 s, got {watermark}"
                ));
            }
            // Batch 0's event times 12, 14 and 21 s: min, max and avg (Spark's eventTime).
            let stats: Vec<String> = ["min", "max", "avg"]
                .iter()
                .map(|k| progress[0].event_time.get(*k).cloned().unwrap_or_default())
                .collect();
            let expected = [
                "1970-01-01T00:00:12.000Z",
                "1970-01-01T00:00:21.000Z",
                "1970-01-01T00:00:15.666Z",
            ];
            if stats != expected {
                return Err(format!(
                    "batch 0 eventTime: expected {expected:?}, got {stats:?}"
                ));
            }
            Ok(())
        })),
    ])
    .unwrap();
}

/// Spark 4.3 runs a no-data batch after the last input whenever the watermark moved, for an
/// append-mode aggregation too, even when no window would close (`StateStoreSaveExec
/// .shouldRunAnotherBatch` looks only at the watermark): one file (12, a), (14, a) with a 10 s
/// window and delay gives batch 0 and a no-data batch 1 at watermark 4 s that emits nothing.
#[test]
fn windowed_append_runs_the_same_no_data_batch_as_spark() {
    let dir = tempfile::tempdir().unwrap();
    write_files(dir.path(), 0, &[&[(12, "a"), (14, "a")]]);
    let s = session();
    let df = windowed_count(file_stream(&s, dir.path()), "10 seconds");
    let (batches, metrics) = run_to_end(&df, "append", &dir.path().join("ck"));
    assert_eq!(batches, vec![(0, vec![]), (1, vec![])]);
    assert_eq!(metrics, vec![(0, 2, 0, 1, 1, 0), (1, 0, 0, 1, 0, 0)]);
}
