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

mod common;

use std::sync::Arc;

use arrow::array::{Int64Array, RecordBatch, StringArray, TimestampMicrosecondArray};
use arrow::datatypes::SchemaRef;
use std::sync::Mutex;

use weir_engine::testing::{Action, StreamTest, check_answer, check_new_answer, format_rows};
use weir_engine::{DataFrame, Session, SessionConfig, StreamingQuery, Trigger};
use weir_plan::expr::{
    AggregateFunction, Expr, SessionGap, aggregate, col, count_star, lit, session_window,
};

fn events_schema() -> SchemaRef {
    common::event_schema(true)
}

/// Rows of (event time in seconds, word); `v` is the event time in seconds.
fn events(rows: &[(i64, &str)]) -> RecordBatch {
    common::event_batch(rows, true)
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
        .group_by([
            session_window(col("ts"), "10 seconds").unwrap(),
            col("word"),
        ])
        .agg([
            count_star().alias("n"),
            aggregate(AggregateFunction::Sum, col("v")).alias("s"),
        ])
        .unwrap();
    (input, df)
}

const ORACLE_BATCHES: [&[(i64, &str)]; 4] = [
    &[(10, "a"), (15, "a"), (30, "b"), (40, "b")],
    &[(5, "c"), (20, "a"), (55, "e")],
    &[(12, "d"), (47, "b"), (60, "e")],
    &[(100, "f")],
];

/// Writes `batches[first..]` as one JSON file each (oldest first) into `dir/in`.
fn write_files(dir: &std::path::Path, first: usize, batches: &[&[(i64, &str)]]) {
    common::write_event_files(dir, first, batches, true);
}

type Metrics = (u64, u64, u64, u64, u64, u64);
/// A batch id and its sorted rows.
type BatchRows = (u64, Vec<String>);

/// Runs the session query over `dir/in` with availableNow on the checkpoint `dir/ck`: returns
/// each batch's sorted rows and (batch, input rows, dropped late, sessions in state, sessions
/// updated, sessions removed).
fn run_files(dir: &std::path::Path, mode: &str) -> (Vec<BatchRows>, Vec<Metrics>) {
    let s = session();
    let df = s
        .read_stream()
        .format("json")
        .schema(events_schema())
        .option("maxFilesPerTrigger", 1)
        .load_path(Some(dir.join("in").to_str().unwrap()))
        .unwrap()
        .with_watermark("ts", "10 seconds")
        .unwrap()
        .group_by([
            session_window(col("ts"), "10 seconds").unwrap(),
            col("word"),
        ])
        .agg([
            count_star().alias("n"),
            aggregate(AggregateFunction::Sum, col("v")).alias("s"),
        ])
        .unwrap();
    let out: Arc<Mutex<Vec<BatchRows>>> = Arc::default();
    let sink_out = out.clone();
    let q = df
        .write_stream()
        .output_mode(mode)
        .trigger(Trigger::AvailableNow)
        .option("checkpointLocation", dir.join("ck").display())
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
    (batches, session_metrics(&q))
}

fn session_metrics(q: &StreamingQuery) -> Vec<Metrics> {
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

fn sorted(mut r: Vec<String>) -> Vec<String> {
    r.sort();
    r
}

#[test]
fn append_mode_matches_spark_batch_by_batch() {
    let dir = tempfile::tempdir().unwrap();
    write_files(dir.path(), 0, &ORACLE_BATCHES);
    let (batches, metrics) = run_files(dir.path(), "append");
    let expected = vec![
        (0, vec![]),
        (
            1,
            sorted(vec![row(5, 15, "c", 1, 5), row(10, 30, "a", 3, 45)]),
        ),
        (2, vec![]),
        (3, vec![]),
        // The no-data batch at watermark 90 closes b (merged with 47 across batches) and e.
        (
            4,
            sorted(vec![row(30, 57, "b", 3, 117), row(55, 70, "e", 2, 115)]),
        ),
    ];
    assert_eq!(batches, expected);
    // (batch, input rows, dropped late, sessions in state, sessions updated, removed), as Spark
    // reported them.
    assert_eq!(
        metrics,
        vec![
            (0, 4, 0, 2, 2, 0),
            (1, 3, 0, 2, 3, 2),
            (2, 3, 1, 2, 2, 0),
            (3, 1, 0, 3, 1, 0),
            (4, 0, 0, 1, 0, 2),
        ]
    );
}

#[test]
fn complete_mode_matches_spark_batch_by_batch() {
    let dir = tempfile::tempdir().unwrap();
    write_files(dir.path(), 0, &ORACLE_BATCHES);
    let (batches, metrics) = run_files(dir.path(), "complete");
    let c = row(5, 15, "c", 1, 5);
    let a = row(10, 30, "a", 3, 45);
    let b = row(30, 57, "b", 3, 117);
    let e = row(55, 70, "e", 2, 115);
    let expected = vec![
        (
            0,
            sorted(vec![row(10, 25, "a", 2, 25), row(30, 50, "b", 2, 70)]),
        ),
        (
            1,
            sorted(vec![
                c.clone(),
                a.clone(),
                row(30, 50, "b", 2, 70),
                row(55, 65, "e", 1, 55),
            ]),
        ),
        (2, sorted(vec![c.clone(), a.clone(), b.clone(), e.clone()])),
        (3, sorted(vec![c, a, b, e, row(100, 110, "f", 1, 100)])),
    ];
    assert_eq!(batches, expected);
    // Complete mode keeps every session, drops the late row all the same, and runs no
    // no-data batch.
    assert_eq!(
        metrics,
        vec![
            (0, 4, 0, 2, 2, 0),
            (1, 3, 0, 4, 3, 0),
            (2, 3, 1, 4, 2, 0),
            (3, 1, 0, 5, 1, 0)
        ]
    );
}

/// Stopping after batch 1 and restarting on the same checkpoint gives batch for batch what the
/// uninterrupted run gives: b's open session from batch 0 merges with the row at 47 read after
/// the restart.
#[test]
fn restart_on_the_same_checkpoint_keeps_open_sessions() {
    let dir = tempfile::tempdir().unwrap();
    write_files(dir.path(), 0, &ORACLE_BATCHES[..2]);
    let (first, _) = run_files(dir.path(), "append");
    assert_eq!(
        first,
        vec![
            (0, vec![]),
            (
                1,
                sorted(vec![row(5, 15, "c", 1, 5), row(10, 30, "a", 3, 45)])
            ),
            // availableNow ends with a no-data batch because the watermark moved (as Spark).
            (2, vec![]),
        ]
    );
    write_files(dir.path(), 2, &ORACLE_BATCHES);
    let (second, metrics) = run_files(dir.path(), "append");
    assert_eq!(
        second,
        vec![
            (3, vec![]),
            (4, vec![]),
            (
                5,
                sorted(vec![row(30, 57, "b", 3, 117), row(55, 70, "e", 2, 115)])
            ),
        ]
    );
    let totals: Vec<(u64, u64)> = metrics.iter().map(|m| (m.0, m.3)).collect();
    assert_eq!(totals, vec![(3, 2), (4, 3), (5, 1)]);
}

/// With memory streams every trigger drains what is available, so no-data batches run between
/// additions: the session of `a` closes as soon as the watermark passes its end, `b`'s session
/// keeps growing across batches, and a row whose session would end behind the previous
/// watermark is dropped.
#[test]
fn sessions_merge_across_memory_stream_batches_and_late_rows_are_dropped() {
    let s = session();
    let (input, df) = sessions_per_word(&s);
    let mut t = StreamTest::new(df, "append").unwrap();
    t.run(vec![
        Action::AddData(
            input.clone(),
            events(&[(10, "a"), (15, "a"), (30, "b"), (40, "b")]),
        ),
        // Watermark 30 after the batch: a no-data batch closes [10, 25).
        check_new_answer(&rows(&[row(10, 25, "a", 2, 25)])),
        // 45 and 52 extend b's session [30, 50) to [30, 62); watermark 42.
        Action::AddData(input.clone(), events(&[(45, "b"), (52, "b")])),
        check_new_answer(&[]),
        Action::StopStream,
        Action::StartStream(Trigger::Default),
        // 3 + 10 <= 30 (the previous watermark): late. 80 moves the watermark to 70.
        Action::AddData(input.clone(), events(&[(3, "z"), (80, "c")])),
        check_new_answer(&rows(&[row(30, 62, "b", 4, 167)])),
        Action::AssertOnQuery(Box::new(|q| {
            let progress = q.recent_progress();
            let dropped: u64 = progress
                .iter()
                .flat_map(|p| p.state_operators.iter())
                .map(|o| o.num_rows_dropped_by_watermark)
                .sum();
            let last = progress.last().ok_or("no progress")?;
            if dropped != 1 {
                return Err(format!(
                    "expected 1 row dropped by the watermark, got {dropped}"
                ));
            }
            if last.num_input_rows != 0 || last.state_operators[0].num_rows_total != 1 {
                return Err(format!(
                    "the last batch should be a no-data batch leaving c open: {}",
                    last.json()
                ));
            }
            Ok(())
        })),
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
    let df = df.group_by([dynamic, col("word")]).count().unwrap();
    let err = df
        .write_stream()
        .output_mode("complete")
        .format("memory")
        .query_name("dynamic_gap")
        .start()
        .expect_err("a dynamic gap must be refused");
    assert!(
        err.to_string().contains("per-row gap"),
        "unexpected error: {err}"
    );
}

/// The sessions of all `events` (key, second) with `gap_s`, as `StreamTest` formats the output
/// of `group_by(word, session_window(ts, gap)).agg(count(*), sum(v))`, computed directly.
fn reference_sessions(events: &[(String, i64)], gap_s: i64) -> Vec<String> {
    let mut sorted = events.to_vec();
    sorted.sort();
    let mut out = Vec::new();
    let mut current: Option<(String, i64, i64, i64, i64)> = None;
    for (word, t) in sorted {
        current = match current {
            Some((w, start, end, n, sum)) if w == word && t <= end => {
                Some((w, start, end.max(t + gap_s), n + 1, sum + t))
            }
            other => {
                if let Some((w, start, end, n, sum)) = other {
                    out.push(keyed_row(&w, start, end, n, sum));
                }
                Some((word, t, t + gap_s, 1, t))
            }
        };
    }
    if let Some((w, start, end, n, sum)) = current {
        out.push(keyed_row(&w, start, end, n, sum));
    }
    out
}

fn keyed_row(word: &str, start: i64, end: i64, n: i64, sum: i64) -> String {
    let t = |s: i64| format!("1970-01-01 00:{:02}:{:02}", s / 60, s % 60);
    format!("{word}, [{}, {}), {n}, {sum}", t(start), t(end))
}

fn keyed_sessions(s: &Session, gap: &str) -> (weir_engine::source::MemoryStream, DataFrame) {
    let (input, df) = s.read_stream().memory(events_schema()).unwrap();
    let df = df
        .group_by([col("word"), session_window(col("ts"), gap).unwrap()])
        .agg([
            count_star().alias("n"),
            aggregate(AggregateFunction::Sum, col("v")).alias("s"),
        ])
        .unwrap();
    (input, df)
}

/// More than ten batches make the state store write a snapshot (version 10); a restart then
/// loads the snapshot plus the later deltas, and the sessions are still whole.
#[test]
fn restart_after_a_state_snapshot_keeps_every_session() {
    let s = session();
    let (input, df) = keyed_sessions(&s, "10 seconds");
    let mut t = StreamTest::new(df, "complete").unwrap();
    let mut all = Vec::new();
    let mut actions = Vec::new();
    for i in 0..12i64 {
        let batch = [(i * 7, "a"), (i * 13 % 60, "b")];
        all.extend(batch.iter().map(|(ts, w)| (w.to_string(), *ts)));
        actions.push(Action::AddData(input.clone(), events(&batch)));
        actions.push(check_answer(&rows(&reference_sessions(&all, 10))));
    }
    actions.push(Action::StopStream);
    t.run(actions).unwrap();
    let snapshot = t.checkpoint_dir().join("state/0/0/10.snapshot");
    assert!(snapshot.exists(), "{} should exist", snapshot.display());
    all.push(("b".to_string(), 200));
    all.push(("a".to_string(), 84));
    t.run(vec![
        Action::StartStream(Trigger::Default),
        Action::AddData(input.clone(), events(&[(200, "b"), (84, "a")])),
        check_answer(&rows(&reference_sessions(&all, 10))),
    ])
    .unwrap();
}

proptest::proptest! {
    #![proptest_config(proptest::prelude::ProptestConfig { cases: 24, ..Default::default() })]

    /// Incremental equals batch: random events split at random into micro-batches (with a
    /// restart somewhere) give, in complete mode, the sessions of all events at once.
    #[test]
    fn incremental_sessions_equal_the_sessions_of_all_events(
        batches in proptest::collection::vec(
            proptest::collection::vec((0usize..3, 0i64..120), 0..6),
            1..8,
        ),
        gap_s in 1i64..15,
        restart_at in 0usize..8,
    ) {
        let s = session();
        let (input, df) = keyed_sessions(&s, &format!("{gap_s} seconds"));
        let mut t = StreamTest::new(df, "complete").unwrap();
        let words = ["a", "b", "c"];
        let mut all = Vec::new();
        let mut actions = Vec::new();
        for (i, batch) in batches.iter().enumerate() {
            if i == restart_at {
                actions.push(Action::StopStream);
                actions.push(Action::StartStream(Trigger::Default));
            }
            let rows_in: Vec<(i64, &str)> = batch.iter().map(|(k, ts)| (*ts, words[*k])).collect();
            all.extend(rows_in.iter().map(|(ts, w)| (w.to_string(), *ts)));
            actions.push(Action::AddData(input.clone(), events(&rows_in)));
        }
        let expected = reference_sessions(&all, gap_s);
        actions.push(check_answer(&rows(&expected)));
        t.run(actions).map_err(proptest::test_runner::TestCaseError::fail)?;
    }
}

/// Spark 4.3 runs a no-data batch after the last input whenever the watermark moved, even when
/// no session would close (`SessionWindowStateStoreSaveExec.shouldRunAnotherBatch` looks only at
/// the watermark): one file (10, a), (20, a) gives batch 0 and a no-data batch 1 at watermark
/// 10 s that emits nothing. weir, like its other stateful operators, runs one only when a session
/// would close.
#[test]
fn a_no_data_batch_runs_whenever_the_watermark_moves_like_spark() {
    let dir = tempfile::tempdir().unwrap();
    write_files(dir.path(), 0, &[&[(10, "a"), (20, "a")]]);
    let (batches, metrics) = run_files(dir.path(), "append");
    assert_eq!(batches, vec![(0, vec![]), (1, vec![])]);
    assert_eq!(metrics, vec![(0, 2, 0, 1, 1, 0), (1, 0, 0, 1, 0, 0)]);
}

/// A row without an event time belongs to no session and is not counted as late; a NULL key is
/// a key like any other (Spark 4.3 gives `[10, 20) a 1` and `[15, 28) NULL 2` for these rows).
#[test]
fn null_event_times_are_skipped_and_null_keys_form_sessions_like_spark() {
    let s = session();
    let (input, df) = s.read_stream().memory(events_schema()).unwrap();
    let df = df
        .with_watermark("ts", "10 seconds")
        .unwrap()
        .group_by([
            session_window(col("ts"), "10 seconds").unwrap(),
            col("word"),
        ])
        .count()
        .unwrap();
    let batch = RecordBatch::try_new(
        events_schema(),
        vec![
            Arc::new(
                TimestampMicrosecondArray::from(vec![
                    None,
                    Some(10_000_000),
                    Some(15_000_000),
                    Some(18_000_000),
                ])
                .with_timezone("UTC"),
            ),
            Arc::new(StringArray::from(vec![Some("a"), Some("a"), None, None])),
            Arc::new(Int64Array::from(vec![0, 10, 15, 18])),
        ],
    )
    .unwrap();
    let mut t = StreamTest::new(df, "complete").unwrap();
    t.run(vec![
        Action::AddData(input.clone(), batch),
        check_answer(&[
            "[1970-01-01 00:00:10, 1970-01-01 00:00:20), a, 1",
            "[1970-01-01 00:00:15, 1970-01-01 00:00:28), null, 2",
        ]),
        Action::AssertOnQuery(Box::new(|q| {
            let p = q.last_progress().ok_or("no progress")?;
            let op = &p.state_operators[0];
            // Spark names the operator sessionWindowStateStoreSaveExec in progress reports.
            if (
                op.operator_name.as_str(),
                op.num_rows_total,
                op.num_rows_dropped_by_watermark,
            ) == ("sessionWindowStateStoreSaveExec", 2, 0)
            {
                Ok(())
            } else {
                Err(format!("expected 2 sessions and no late row: {}", p.json()))
            }
        })),
    ])
    .unwrap();
}
