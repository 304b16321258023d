//! Trigger-by-trigger conformance tests of the engine's semantics (spark-structured-streaming.md
//! §1.2–1.4, §4.1–4.5), driven through the public `StreamTest` harness over memory streams.

mod common;

use std::sync::Arc;

use arrow::array::{Int64Array, RecordBatch, StringArray};
use arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use weir_engine::testing::{Action, StreamTest, check_answer, check_new_answer};
use weir_engine::{Session, SessionConfig};
use weir_plan::expr::{AggregateFunction, aggregate, col, count_star, func, lit, window};

fn words_schema() -> SchemaRef {
    Arc::new(Schema::new(vec![
        Field::new("word", DataType::Utf8, true),
        Field::new("n", DataType::Int64, true),
    ]))
}

fn words(rows: &[(&str, i64)]) -> RecordBatch {
    RecordBatch::try_new(
        words_schema(),
        vec![
            Arc::new(StringArray::from(
                rows.iter().map(|r| r.0).collect::<Vec<_>>(),
            )),
            Arc::new(Int64Array::from(
                rows.iter().map(|r| r.1).collect::<Vec<_>>(),
            )),
        ],
    )
    .unwrap()
}

fn events_schema() -> SchemaRef {
    common::event_schema(false)
}

/// Rows of (event time in seconds, word).
fn events(rows: &[(i64, &str)]) -> RecordBatch {
    common::event_batch(rows, false)
}

fn session() -> Session {
    // Two state shards: these tests also cover routing rows to shards and merging their output.
    Session::with_config(SessionConfig {
        workers: 2,
        state_shards: 2,
        fsync: false,
        ..Default::default()
    })
    .unwrap()
}

#[test]
fn stateless_filter_and_project_emit_each_new_row_once() {
    let s = session();
    let (input, df) = s.read_stream().memory(words_schema()).unwrap();
    let df = df
        .filter((col("n") % lit(2i64)).eq(lit(0i64)))
        .unwrap()
        .select([
            func("upper", vec![col("word")]).alias("w"),
            (col("n") * lit(10i64)).alias("n10"),
        ])
        .unwrap();
    let mut t = StreamTest::new(df, "append").unwrap();
    t.run(vec![
        Action::AddData(input.clone(), words(&[("a", 1), ("b", 2), ("c", 4)])),
        check_answer(&["B, 20", "C, 40"]),
        Action::AddData(input.clone(), words(&[("d", 6), ("e", 7)])),
        check_new_answer(&["D, 60"]),
        check_answer(&["B, 20", "C, 40", "D, 60"]),
    ])
    .unwrap();
}

#[test]
fn word_count_in_complete_mode_emits_the_whole_table() {
    let s = session();
    let (input, df) = s.read_stream().memory(words_schema()).unwrap();
    let df = df.group_by([col("word")]).count().unwrap();
    let mut t = StreamTest::new(df, "complete").unwrap();
    t.run(vec![
        Action::AddData(input.clone(), words(&[("a", 1), ("b", 1), ("a", 1)])),
        check_answer(&["a, 2", "b, 1"]),
        Action::AddData(input.clone(), words(&[("a", 1), ("c", 1)])),
        check_answer(&["a, 3", "b, 1", "c, 1"]),
    ])
    .unwrap();
}

#[test]
fn aggregation_in_update_mode_emits_only_changed_groups() {
    let s = session();
    let (input, df) = s.read_stream().memory(words_schema()).unwrap();
    let df = df
        .group_by([col("word")])
        .agg([
            count_star().alias("cnt"),
            aggregate(AggregateFunction::Sum, col("n")).alias("total"),
            aggregate(AggregateFunction::Max, col("n")).alias("top"),
        ])
        .unwrap();
    let mut t = StreamTest::new(df, "update").unwrap();
    t.run(vec![
        Action::AddData(input.clone(), words(&[("a", 1), ("b", 5), ("a", 3)])),
        check_new_answer(&["a, 2, 4, 3", "b, 1, 5, 5"]),
        Action::AddData(input.clone(), words(&[("a", 10)])),
        check_new_answer(&["a, 3, 14, 10"]),
    ])
    .unwrap();
}

#[test]
fn aggregation_state_survives_a_restart_on_the_same_checkpoint() {
    let s = session();
    let (input, df) = s.read_stream().memory(words_schema()).unwrap();
    let df = df
        .group_by([col("word")])
        .agg([
            count_star().alias("cnt"),
            aggregate(AggregateFunction::Min, col("n")).alias("lo"),
        ])
        .unwrap();
    let mut t = StreamTest::new(df, "update").unwrap();
    t.run(vec![
        Action::AddData(input.clone(), words(&[("a", 4), ("b", 2)])),
        check_new_answer(&["a, 1, 4", "b, 1, 2"]),
        Action::StopStream,
        Action::AddData(input.clone(), words(&[("a", 3)])),
        Action::StartStream(weir_engine::Trigger::Default),
        check_new_answer(&["a, 2, 3"]),
        Action::StopStream,
        Action::StartStream(weir_engine::Trigger::Default),
        Action::AddData(input.clone(), words(&[("b", 9)])),
        check_new_answer(&["b, 2, 2"]),
    ])
    .unwrap();
}

fn windowed_counts(s: &Session) -> (weir_engine::source::MemoryStream, weir_engine::DataFrame) {
    let (input, df) = s.read_stream().memory(events_schema()).unwrap();
    let df = df
        .with_watermark("ts", "10 seconds")
        .unwrap()
        .group_by([
            window(col("ts"), "10 seconds", None, None).unwrap(),
            col("word"),
        ])
        .count()
        .unwrap();
    (input, df)
}

/// §1.4 in append mode: a window is emitted once, when the watermark passes its end, and its
/// state is evicted; a no-data batch flushes it without new input.
#[test]
fn windowed_count_in_append_mode_emits_final_windows_once() {
    let s = session();
    let (input, df) = windowed_counts(&s);
    let mut t = StreamTest::new(df, "append").unwrap();
    t.run(vec![
        Action::AddData(input.clone(), events(&[(12, "a"), (14, "a"), (21, "b")])),
        check_new_answer(&[]),
        // max event time 21 → watermark 11; 35 → watermark 25: [10, 20) closes.
        Action::AddData(input.clone(), events(&[(35, "a")])),
        check_new_answer(&["[1970-01-01 00:00:10, 1970-01-01 00:00:20), a, 2"]),
        // A row for a closed window is late and dropped.
        Action::AddData(input.clone(), events(&[(15, "a"), (45, "c")])),
        check_new_answer(&["[1970-01-01 00:00:20, 1970-01-01 00:00:30), b, 1"]),
    ])
    .unwrap();
}

#[test]
fn windowed_count_in_update_mode_emits_changed_windows() {
    let s = session();
    let (input, df) = windowed_counts(&s);
    let mut t = StreamTest::new(df, "update").unwrap();
    t.run(vec![
        Action::AddData(input.clone(), events(&[(12, "a"), (14, "a"), (21, "b")])),
        check_new_answer(&[
            "[1970-01-01 00:00:10, 1970-01-01 00:00:20), a, 2",
            "[1970-01-01 00:00:20, 1970-01-01 00:00:30), b, 1",
        ]),
        Action::AddData(input.clone(), events(&[(13, "a")])),
        check_new_answer(&["[1970-01-01 00:00:10, 1970-01-01 00:00:20), a, 3"]),
    ])
    .unwrap();
}

#[test]
fn drop_duplicates_without_watermark_keeps_first_row_per_key() {
    let s = session();
    let (input, df) = s.read_stream().memory(words_schema()).unwrap();
    let df = df.drop_duplicates(&["word"]).unwrap();
    let mut t = StreamTest::new(df, "append").unwrap();
    t.run(vec![
        Action::AddData(input.clone(), words(&[("a", 1), ("b", 2), ("a", 3)])),
        check_new_answer(&["a, 1", "b, 2"]),
        Action::StopStream,
        Action::StartStream(weir_engine::Trigger::Default),
        Action::AddData(input.clone(), words(&[("b", 4), ("c", 5)])),
        check_new_answer(&["c, 5"]),
    ])
    .unwrap();
}

fn lines_schema() -> SchemaRef {
    Arc::new(Schema::new(vec![Field::new("value", DataType::Utf8, true)]))
}

fn lines(rows: &[&str]) -> RecordBatch {
    RecordBatch::try_new(
        lines_schema(),
        vec![Arc::new(StringArray::from(rows.to_vec()))],
    )
    .unwrap()
}

/// The seed's first example: a streaming word count over lines, in complete mode.
#[test]
fn word_count_over_exploded_lines() {
    let s = session();
    let (input, df) = s.read_stream().memory(lines_schema()).unwrap();
    let df = df
        .select([func("explode", vec![func("split", vec![col("value"), lit(" ")])]).alias("word")])
        .unwrap()
        .group_by([col("word")])
        .count()
        .unwrap();
    let mut t = StreamTest::new(df, "complete").unwrap();
    t.run(vec![
        Action::AddData(input.clone(), lines(&["the cat", "the dog"])),
        check_answer(&["the, 2", "cat, 1", "dog, 1"]),
        Action::AddData(input.clone(), lines(&["a cat"])),
        check_answer(&["the, 2", "cat, 2", "dog, 1", "a, 1"]),
    ])
    .unwrap();
}

/// The one-pass split of a literal separator gives exactly what the general (regex) path gives,
/// empty fields included: Spark's `split` keeps leading, inner and trailing empty strings.
#[test]
fn literal_split_matches_the_regex_split() {
    let run = |pattern: &str| {
        let s = session();
        let (input, df) = s.read_stream().memory(lines_schema()).unwrap();
        let df = df
            .select([func(
                "explode",
                vec![func("split", vec![col("value"), lit(pattern)])],
            )
            .alias("w")])
            .unwrap();
        let out: Arc<std::sync::Mutex<Vec<String>>> = Arc::default();
        let sink_out = out.clone();
        let q = df
            .write_stream()
            .foreach_batch(move |batches, _| {
                for b in batches {
                    sink_out
                        .lock()
                        .unwrap()
                        .extend(weir_engine::testing::format_rows(b)?);
                }
                Ok(())
            })
            .start()
            .unwrap();
        let rows = RecordBatch::try_new(
            lines_schema(),
            vec![Arc::new(StringArray::from(vec![
                Some("a  b "),
                Some(""),
                None,
                Some(" x"),
                Some("one"),
            ]))],
        )
        .unwrap();
        input.add_batch(rows);
        q.process_all_available().unwrap();
        q.stop().unwrap();
        out.lock().unwrap().clone()
    };
    let literal = run(" ");
    let regex = run("[ ]");
    assert_eq!(literal, regex);
    assert_eq!(literal, ["a", "", "b", "", "", "", "x", "one"]);
}

/// A count by the words of a literal one-byte split is fused (the words are counted straight
/// from the lines, see explain); it must count exactly what the unfused plan (a regex split,
/// which is never fused) counts: empty words included, NULL lines without words, across
/// triggers whose input arrives as several batches (aggregated in parallel and merged).
#[test]
fn fused_word_count_equals_the_unfused_plan() {
    let first: Vec<Vec<Option<&str>>> = vec![
        vec![Some("a  b "), Some(""), None, Some(" x")],
        vec![
            Some("the cat the"),
            Some("éé é"),
            Some("a-much-longer-word a"),
        ],
    ];
    let second: Vec<Vec<Option<&str>>> = vec![vec![Some("x x x")], vec![None, Some(" ")]];
    // Model: Rust's `split(' ')` keeps empty fields, as Spark's `split` does.
    let mut model: std::collections::BTreeMap<String, i64> = Default::default();
    for line in first.iter().chain(&second).flatten().flatten() {
        for w in line.split(' ') {
            *model.entry(w.to_string()).or_default() += 1;
        }
    }
    let expected: Vec<String> = model
        .iter()
        .map(|(w, n)| format!("{w}, {n}, {n}"))
        .collect();
    let run = |pattern: &str| -> String {
        let s = Session::with_config(SessionConfig {
            workers: 2,
            fsync: false,
            ..Default::default()
        })
        .unwrap();
        let (input, df) = s.read_stream().memory(lines_schema()).unwrap();
        let df = df
            .select([func(
                "explode",
                vec![func("split", vec![col("value"), lit(pattern)])],
            )
            .alias("word")])
            .unwrap()
            .select([col("word")])
            .unwrap()
            .group_by([col("word")])
            .agg([
                count_star().alias("n"),
                aggregate(AggregateFunction::Count, col("word")).alias("c"),
            ])
            .unwrap();
        let explained = df.explain().unwrap();
        let batches = |parts: &[Vec<Option<&str>>]| -> Vec<RecordBatch> {
            parts
                .iter()
                .map(|rows| {
                    RecordBatch::try_new(
                        lines_schema(),
                        vec![Arc::new(StringArray::from(rows.clone()))],
                    )
                    .unwrap()
                })
                .collect()
        };
        let (one, two) = (batches(&first), batches(&second));
        let (i1, i2) = (input.clone(), input.clone());
        let mut t = StreamTest::new(df, "complete").unwrap();
        t.run(vec![
            // Each trigger's input arrives as several batches of one offset.
            Action::AssertOnQuery(Box::new(move |_| {
                i1.add_data(one.clone());
                Ok(())
            })),
            Action::AssertOnQuery(Box::new(move |_| {
                i2.add_data(two.clone());
                Ok(())
            })),
            Action::CheckAnswer(expected.clone()),
        ])
        .unwrap();
        explained
    };
    let fused_plan = run(" ");
    let unfused_plan = run("[ ]");
    assert!(fused_plan.contains("FusedExplodeSplit"), "{fused_plan}");
    assert!(
        !unfused_plan.contains("FusedExplodeSplit"),
        "{unfused_plan}"
    );
}

/// `approx_count_distinct` per group, exact for small groups (as Spark's HLL++ is), in update
/// mode across batches and a restart, beside kernel aggregates.
#[test]
fn approx_count_distinct_per_group_survives_restart() {
    let s = session();
    let (input, df) = s.read_stream().memory(words_schema()).unwrap();
    let df = df
        .group_by([col("word")])
        .agg([
            aggregate(AggregateFunction::ApproxCountDistinct, col("n")).alias("distinct_n"),
            count_star().alias("cnt"),
        ])
        .unwrap();
    let mut t = StreamTest::new(df, "update").unwrap();
    t.run(vec![
        Action::AddData(
            input.clone(),
            words(&[("a", 1), ("a", 2), ("a", 1), ("b", 7)]),
        ),
        check_new_answer(&["a, 2, 3", "b, 1, 1"]),
        Action::StopStream,
        Action::StartStream(weir_engine::Trigger::Default),
        Action::AddData(input.clone(), words(&[("a", 3), ("b", 7)])),
        check_new_answer(&["a, 3, 4", "b, 1, 2"]),
    ])
    .unwrap();
}

/// Only distinct counts, over a tumbling window with a watermark in append mode: sketches are
/// evicted with their windows.
#[test]
fn approx_count_distinct_in_windows_append() {
    let s = session();
    let (input, df) = s.read_stream().memory(events_schema()).unwrap();
    let df = df
        .with_watermark("ts", "10 seconds")
        .unwrap()
        .group_by([window(col("ts"), "10 seconds", None, None).unwrap()])
        .agg([aggregate(AggregateFunction::ApproxCountDistinct, col("word")).alias("words")])
        .unwrap();
    let mut t = StreamTest::new(df, "append").unwrap();
    t.run(vec![
        Action::AddData(
            input.clone(),
            events(&[(1, "a"), (2, "b"), (3, "a"), (12, "c")]),
        ),
        check_new_answer(&[]),
        Action::AddData(input.clone(), events(&[(40, "z")])),
        check_new_answer(&[
            "[1970-01-01 00:00:00, 1970-01-01 00:00:10), 2",
            "[1970-01-01 00:00:10, 1970-01-01 00:00:20), 1",
        ]),
    ])
    .unwrap();
}

/// A word count whose checkpoint pins two state shards (created with `state_shards = 2`, so
/// not fused then) restarts in a session with one: the fused plan must count every word into
/// the shard the checkpoint's rows are routed to, so each word stays one row with its total.
#[test]
fn fused_word_count_restarts_on_a_sharded_checkpoint() {
    use weir_engine::Trigger;
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("in");
    std::fs::create_dir_all(&input).unwrap();
    let checkpoint = dir.path().join("ck");
    let texts = ["the cat sat", "on the mat", "the end", "a cat a dog"];
    let mut model: std::collections::BTreeMap<&str, i64> = Default::default();
    let run = |shards: usize, files: &[&str], first: usize| -> Vec<String> {
        for (i, text) in files.iter().enumerate() {
            let path = input.join(format!("f{}.txt", first + i));
            std::fs::write(&path, format!("{text}\n")).unwrap();
            let mtime =
                std::time::UNIX_EPOCH + std::time::Duration::from_secs(1_000 + (first + i) as u64);
            std::fs::File::options()
                .write(true)
                .open(&path)
                .unwrap()
                .set_modified(mtime)
                .unwrap();
        }
        let s = Session::with_config(SessionConfig {
            workers: 2,
            state_shards: shards,
            fsync: false,
            ..Default::default()
        })
        .unwrap();
        let last: Arc<std::sync::Mutex<Vec<String>>> = Arc::default();
        let sink = last.clone();
        let q = s
            .read_stream()
            .format("text")
            .option("maxFilesPerTrigger", 1)
            .load_path(Some(input.to_str().unwrap()))
            .unwrap()
            .select([
                func("explode", vec![func("split", vec![col("value"), lit(" ")])]).alias("word"),
            ])
            .unwrap()
            .group_by([col("word")])
            .count()
            .unwrap()
            .write_stream()
            .output_mode("complete")
            .trigger(Trigger::AvailableNow)
            .option("checkpointLocation", checkpoint.display())
            .foreach_batch(move |batches, _| {
                let mut rows = Vec::new();
                for b in batches {
                    rows.extend(weir_engine::testing::format_rows(b)?);
                }
                rows.sort();
                *sink.lock().unwrap() = rows;
                Ok(())
            })
            .start()
            .unwrap();
        q.await_termination().unwrap();
        let rows = last.lock().unwrap();
        rows.clone()
    };
    let first = run(2, &texts[..2], 0);
    for t in &texts[..2] {
        for w in t.split(' ') {
            *model.entry(w).or_default() += 1;
        }
    }
    let expected = |m: &std::collections::BTreeMap<&str, i64>| -> Vec<String> {
        let mut v: Vec<String> = m.iter().map(|(w, n)| format!("{w}, {n}")).collect();
        v.sort();
        v
    };
    assert_eq!(first, expected(&model));
    let second = run(1, &texts[2..], 2);
    for t in &texts[2..] {
        for w in t.split(' ') {
            *model.entry(w).or_default() += 1;
        }
    }
    assert_eq!(second, expected(&model));
}
