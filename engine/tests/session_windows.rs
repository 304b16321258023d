//! Trigger-by-trigger tests of session-window aggregation (`session_window(ts, gap)`,
//! spark-structured-streaming.md §4.3, §4.4), driven through the public `StreamTest` harness
//! over memory streams.
//!
//! The expected rows and metrics are what Spark 4.3.0 printed for the same input, one file per
//! trigger (local[2], availableNow, maxFilesPerTrigger=1, foreachBatch), for
//! `withWatermark("ts", "10 seconds").groupBy(session_window("ts", "10 seconds"), "word")
//! .agg(count("*"), sum(unix_timestamp("ts")))` over these batches:
//!
//! ```text
//! 0: (10,a) (15,a) (30,b) (40,b)   append: —                                  dropped 0
//! 1: (5,c) (20,a) (55,e)           append: [5,15) c 1 5; [10,30) a 3 45        dropped 0
//! 2: (12,d) (47,b) (60,e)          append: —                                   dropped 1 (d)
//! 3: (100,f)                       append: —
//! 4: (no data, watermark 90)       append: [30,57) b 3 117; [55,70) e 2 115
//! ```
//!
//! It shows that an event exactly `gap` after the previous one joins its session (b: 30, 40 →
//! [30, 50)), that late rows are judged by the previous batch's watermark (c at 5 is kept in batch
//! 1, d at 12 dropped in batch 2), and that complete mode drops late rows too.

use std::sync::Arc;

use arrow::array::{Int64Array, RecordBatch, StringArray, TimestampMicrosecondArray};
use arrow::datatypes::{DataType, Field, Schema, SchemaRef, TimeUnit};
use weir_engine::testing::{Action, StreamTest, check_answer, check_new_answer};
use weir_engine::{DataFrame, Session, SessionConfig, StreamingQuery, Trigger};
use weir_plan::expr::{AggregateFunction, Expr, SessionGap, aggregate, col, count_star, lit, session_window};

fn events_schema() -> SchemaRef {
    Arc::new(Schema::new(vec![
        Field::new("ts", DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into())), true),
        Field::new("word", DataType::Utf8, true),
        Field::new("v", DataType::Int64, true),
    ]))
}

/// Rows of (event time in seconds, word); `v` is the event time in seconds.
fn events(rows: &[(i64, &str)]) -> RecordBatch {
    RecordBatch::try_new(
        events_schema(),
        vec![
            Arc::new(
                TimestampMicrosecondArray::from(rows.iter().map(|r| r.0 * 1_000_000).collect::<Vec<_>>())
                    .with_timezone("UTC"),
            ),
            Arc::new(StringArray::from(rows.iter().map(|r| r.1).collect::<Vec<_>>())),
            Arc::new(Int64Array::from(rows.iter().map(|r| r.0).collect::<Vec<_>>())),
        ],
    )
    .unwrap()
}

fn session() -> Session {
    Session::with_config(SessionConfig {
        workers: 2,
        fsync: false,
        ..Default::default()
    })
    .unwrap()
}

/// A session row as `StreamTest` formats it: `[start, end), word, count, sum`.
fn row(start: i64, end: i64, word: &str, n: i64, sum: i64) -> String {
    let t = |s: i64| format!("1970-01-01 00:{:02}:{:02}", s / 60, s % 60);
    format!("[{}, {}), {word}, {n}, {sum}", t(start), t(end))
}

fn rows(r: &[String]) -> Vec<&str> {
    r.iter().map(String::as_str).collect()
}

fn sessions_per_word(s: &Session) -> (weir_engine::source::MemoryStream, DataFrame) {
    let (input, df) = s.read_stream().memory(events_schema()).unwrap();
    let df = df
        .with_watermark("ts", "10 seconds")
        .unwrap()
        .group_by([session_window(col("ts"), "10 seconds").unwrap(), col("word")])
        .agg([
            count_star().alias("n"),
            aggregate(AggregateFunction::Sum, col("v")).alias("s"),
        ])
        .unwrap();
    (input, df)
}

fn batch0() -> RecordBatch {
    events(&[(10, "a"), (15, "a"), (30, "b"), (40, "b")])
}
fn batch1() -> RecordBatch {
    events(&[(5, "c"), (20, "a"), (55, "e")])
}
fn batch2() -> RecordBatch {
    events(&[(12, "d"), (47, "b"), (60, "e")])
}
fn batch3() -> RecordBatch {
    events(&[(100, "f")])
}

fn session_metrics(q: &StreamingQuery) -> Vec<(u64, u64, u64, u64, u64, u64)> {
    q.recent_progress()
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
        .collect()
}

#[test]
fn append_mode_emits_closed_sessions_merged_across_batches_like_spark() {
    let s = session();
    let (input, df) = sessions_per_word(&s);
    let mut t = StreamTest::new(df, "append").unwrap();
    t.run(vec![
        Action::AddData(input.clone(), batch0()),
        check_new_answer(&[]),
        Action::AddData(input.clone(), batch1()),
        check_new_answer(&rows(&[row(5, 15, "c", 1, 5), row(10, 30, "a", 3, 45)])),
        Action::AddData(input.clone(), batch2()),
        check_new_answer(&[]),
        // Batch 3 moves the watermark to 90: a no-data batch closes b (merged with 47 across
        // batches) and e.
        Action::AddData(input.clone(), batch3()),
        check_new_answer(&rows(&[row(30, 57, "b", 3, 117), row(55, 70, "e", 2, 115)])),
        Action::AssertOnQuery(Box::new(|q| {
            // (batch, input rows, dropped late, sessions in state, sessions updated, removed),
            // as Spark reported them.
            let expected = vec![
                (0, 4, 0, 2, 2, 0),
                (1, 3, 0, 2, 3, 2),
                (2, 3, 1, 2, 2, 0),
                (3, 1, 0, 3, 1, 0),
                (4, 0, 0, 1, 0, 2),
            ];
            let actual = session_metrics(q);
            if actual == expected {
                Ok(())
            } else {
                Err(format!("metrics: expected {expected:?}, got {actual:?}"))
            }
        })),
    ])
    .unwrap();
}

#[test]
fn complete_mode_emits_every_session_and_still_drops_late_rows_like_spark() {
    let s = session();
    let (input, df) = sessions_per_word(&s);
    let mut t = StreamTest::new(df, "complete").unwrap();
    t.run(vec![
        Action::AddData(input.clone(), batch0()),
        check_answer(&rows(&[row(10, 25, "a", 2, 25), row(30, 50, "b", 2, 70)])),
        Action::AddData(input.clone(), batch1()),
        check_answer(&rows(&[
            row(5, 15, "c", 1, 5),
            row(10, 30, "a", 3, 45),
            row(30, 50, "b", 2, 70),
            row(55, 65, "e", 1, 55),
        ])),
        Action::AddData(input.clone(), batch2()),
        check_answer(&rows(&[
            row(5, 15, "c", 1, 5),
            row(10, 30, "a", 3, 45),
            row(30, 57, "b", 3, 117),
            row(55, 70, "e", 2, 115),
        ])),
        Action::AddData(input.clone(), batch3()),
        check_answer(&rows(&[
            row(5, 15, "c", 1, 5),
            row(10, 30, "a", 3, 45),
            row(30, 57, "b", 3, 117),
            row(55, 70, "e", 2, 115),
            row(100, 110, "f", 1, 100),
        ])),
        Action::AssertOnQuery(Box::new(|q| {
            // Complete mode keeps every session and runs no no-data batch (Spark: 4 batches,
            // sessions in state 2, 4, 4, 5; one late row dropped in batch 2).
            let expected = vec![
                (0, 4, 0, 2, 2, 0),
                (1, 3, 0, 4, 3, 0),
                (2, 3, 1, 4, 2, 0),
                (3, 1, 0, 5, 1, 0),
            ];
            let actual = session_metrics(q);
            if actual == expected {
                Ok(())
            } else {
                Err(format!("metrics: expected {expected:?}, got {actual:?}"))
            }
        })),
    ])
    .unwrap();
}

/// Open sessions survive a restart on the same checkpoint: b's session from batch 0 merges
/// with the row at 47 added after the restart, and the result equals the uninterrupted run's.
#[test]
fn restart_on_the_same_checkpoint_keeps_open_sessions() {
    let s = session();
    let (input, df) = sessions_per_word(&s);
    let mut t = StreamTest::new(df, "append").unwrap();
    t.run(vec![
        Action::AddData(input.clone(), batch0()),
        Action::AddData(input.clone(), batch1()),
        check_new_answer(&rows(&[row(5, 15, "c", 1, 5), row(10, 30, "a", 3, 45)])),
        Action::StopStream,
        Action::StartStream(Trigger::Default),
        Action::AddData(input.clone(), batch2()),
        check_new_answer(&[]),
        Action::StopStream,
        Action::StartStream(Trigger::Default),
        Action::AddData(input.clone(), batch3()),
        check_new_answer(&rows(&[row(30, 57, "b", 3, 117), row(55, 70, "e", 2, 115)])),
        Action::StopStream,
        // After a restart the remaining session (f) is still there and closes when later data
        // moves the watermark.
        Action::StartStream(Trigger::Default),
        Action::AddData(input.clone(), events(&[(105, "f"), (200, "g")])),
        check_new_answer(&rows(&[row(100, 115, "f", 2, 205)])),
    ])
    .unwrap();
}

/// Rows removed by a filter below the aggregation take no part in sessions: the `x` rows would
/// otherwise bridge the two sessions of `a`. The session window may be any grouping key, and
/// the other aggregates work over sessions too.
#[test]
fn filters_below_the_aggregation_do_not_bridge_sessions() {
    let s = session();
    let (input, df) = s.read_stream().memory(events_schema()).unwrap();
    let df = df
        .with_watermark("ts", "10 seconds")
        .unwrap()
        .filter(col("v").lt(lit(1000i64)))
        .unwrap()
        .group_by([col("word"), session_window(col("ts"), "5 seconds").unwrap()])
        .agg([
            aggregate(AggregateFunction::Min, col("v")).alias("lo"),
            aggregate(AggregateFunction::Max, col("v")).alias("hi"),
        ])
        .unwrap();
    let mut t = StreamTest::new(df, "complete").unwrap();
    let batch = RecordBatch::try_new(
        events_schema(),
        vec![
            Arc::new(
                TimestampMicrosecondArray::from(vec![1_000_000, 5_000_000, 9_000_000, 12_000_000])
                    .with_timezone("UTC"),
            ),
            Arc::new(StringArray::from(vec!["a", "a", "a", "a"])),
            // 5 s and 9 s are filtered out; without the filter one session [1, 17) would form.
            Arc::new(Int64Array::from(vec![1, 5000, 9000, 12])),
        ],
    )
    .unwrap();
    t.run(vec![
        Action::AddData(input.clone(), batch),
        check_answer(&[
            "a, [1970-01-01 00:00:01, 1970-01-01 00:00:06), 1, 1",
            "a, [1970-01-01 00:00:12, 1970-01-01 00:00:17), 12, 12",
        ]),
    ])
    .unwrap();
}

/// A per-row gap is refused with a message saying so, when the query starts.
#[test]
fn a_dynamic_gap_is_refused_with_a_clear_error() {
    let s = session();
    let (_input, df) = s.read_stream().memory(events_schema()).unwrap();
    let dynamic = Expr::SessionWindow {
        time: Box::new(col("ts")),
        gap: SessionGap::Dynamic(Box::new(lit("10 seconds"))),
    };
    let df = df
        .group_by([dynamic, col("word")])
        .count()
        .unwrap();
    let err = df
        .write_stream()
        .output_mode("complete")
        .format("memory")
        .query_name("dynamic_gap")
        .start()
        .err()
        .expect("a dynamic gap must be refused");
    assert!(err.to_string().contains("per-row gap"), "unexpected error: {err}");
}
