//! Batch-by-batch agreement with Apache Spark 4.3 on the same input files.
//!
//! The expected outputs below were produced by Spark itself (PySpark 4.3.0, local[2]) running the
//! same query over the same four JSON files with `maxFilesPerTrigger = 1` and
//! `trigger(availableNow=True)`, collected with `foreachBatch`. They pin down the subtle parts of
//! watermarking: late input is judged by the previous batch's watermark, windows are emitted and
//! evicted by the current one, and `numRowsDroppedByWatermark` counts the dropped rows.

use std::sync::{Arc, Mutex};

use arrow::datatypes::{DataType, Field, Schema, TimeUnit};
use weir_engine::testing::format_rows;
use weir_engine::{Session, SessionConfig, Trigger};
use weir_plan::expr::{col, window};

const BATCHES: [&[(i64, &str)]; 4] = [
    &[(12, "a"), (14, "a"), (21, "b")],
    &[(35, "a")],
    &[(15, "a"), (45, "c")],
    &[(5, "z"), (26, "b")],
];

/// Rows per batch id, as collected by `foreach_batch`.
type Batches = Vec<(u64, Vec<String>)>;

fn run(
    mode: &str,
) -> (
    Vec<(u64, Vec<String>)>,
    Vec<weir_engine::StreamingQueryProgress>,
) {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("in");
    std::fs::create_dir_all(&input).unwrap();
    for (i, rows) in BATCHES.iter().enumerate() {
        let path = input.join(format!("f{i:03}.json"));
        let text: String = rows
            .iter()
            .map(|(ts, w)| format!("{{\"ts\":\"1970-01-01T00:00:{ts:02}Z\",\"word\":\"{w}\"}}\n"))
            .collect();
        std::fs::write(&path, text).unwrap();
        // Distinct modification times, oldest first, as the file source orders by them.
        let mtime = std::time::UNIX_EPOCH + std::time::Duration::from_secs(1_000 + i as u64);
        std::fs::File::options()
            .write(true)
            .open(&path)
            .unwrap()
            .set_modified(mtime)
            .unwrap();
    }
    let schema = Arc::new(Schema::new(vec![
        Field::new(
            "ts",
            DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into())),
            true,
        ),
        Field::new("word", DataType::Utf8, true),
    ]));
    let session = Session::with_config(SessionConfig {
        fsync: false,
        ..Default::default()
    })
    .unwrap();
    let df = session
        .read_stream()
        .format("json")
        .schema(schema)
        .option("maxFilesPerTrigger", 1)
        .load_path(Some(input.to_str().unwrap()))
        .unwrap()
        .with_watermark("ts", "10 seconds")
        .unwrap()
        .group_by([
            window(col("ts"), "10 seconds", None, None).unwrap(),
            col("word"),
        ])
        .count()
        .unwrap();
    let out: Arc<Mutex<Batches>> = Arc::default();
    let sink_out = out.clone();
    let q = df
        .write_stream()
        .output_mode(mode)
        .trigger(Trigger::AvailableNow)
        .option("checkpointLocation", dir.path().join("ck").display())
        .foreach_batch(move |batches, id| {
            let mut rows = Vec::new();
            for b in batches {
                rows.extend(format_rows(b)?);
            }
            rows.sort();
            sink_out.lock().unwrap().push((id, rows));
            Ok(())
        })
        .start()
        .unwrap();
    q.await_termination().unwrap();
    let batches = out.lock().unwrap().clone();
    (batches, q.recent_progress())
}

fn w(start: i64, end: i64, word: &str, n: i64) -> String {
    format!("[1970-01-01 00:00:{start:02}, 1970-01-01 00:00:{end:02}), {word}, {n}")
}

#[test]
fn append_mode_matches_spark_batch_by_batch() {
    let (batches, progress) = run("append");
    assert_eq!(
        batches,
        vec![
            (0, vec![]),
            (1, vec![]),
            (2, vec![w(10, 20, "a", 3)]),
            (3, vec![w(20, 30, "b", 2)])
        ]
    );
    let watermarks: Vec<&str> = progress
        .iter()
        .map(|p| p.event_time["watermark"].as_str())
        .collect();
    assert_eq!(
        watermarks,
        [
            "1970-01-01T00:00:00.000Z",
            "1970-01-01T00:00:11.000Z",
            "1970-01-01T00:00:25.000Z",
            "1970-01-01T00:00:35.000Z"
        ]
    );
    let dropped: Vec<u64> = progress
        .iter()
        .map(|p| p.state_operators[0].num_rows_dropped_by_watermark)
        .collect();
    assert_eq!(dropped, [0, 0, 0, 1]);
}

#[test]
fn update_mode_matches_spark_batch_by_batch() {
    let (batches, _) = run("update");
    assert_eq!(
        batches,
        vec![
            (0, vec![w(10, 20, "a", 2), w(20, 30, "b", 1)]),
            (1, vec![w(30, 40, "a", 1)]),
            (2, vec![w(10, 20, "a", 3), w(40, 50, "c", 1)]),
            (3, vec![w(20, 30, "b", 2)]),
        ]
    );
}
