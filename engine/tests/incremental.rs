//! Incremental equals batch: random data split at random into micro-batches gives, in complete
//! mode (and in append mode once the final watermark has passed), exactly the result of the same
//! query over all the data at once, computed here by a plain Rust model.

use std::collections::BTreeMap;
use std::sync::Arc;

use arrow::array::{Int64Array, RecordBatch, StringArray, TimestampMicrosecondArray};
use arrow::datatypes::{DataType, Field, Schema, SchemaRef, TimeUnit};
use proptest::prelude::*;
use weir_engine::testing::{Action, StreamTest};
use weir_engine::{Session, SessionConfig};
use weir_plan::expr::{AggregateFunction, aggregate, col, count_star, window};

fn schema() -> SchemaRef {
    Arc::new(Schema::new(vec![
        Field::new(
            "ts",
            DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into())),
            true,
        ),
        Field::new("word", DataType::Utf8, true),
        Field::new("v", DataType::Int64, true),
    ]))
}

#[derive(Clone, Debug)]
struct Row {
    ts_s: i64,
    word: Option<&'static str>,
    v: Option<i64>,
}

fn batch(rows: &[Row]) -> RecordBatch {
    RecordBatch::try_new(
        schema(),
        vec![
            Arc::new(
                TimestampMicrosecondArray::from(
                    rows.iter().map(|r| r.ts_s * 1_000_000).collect::<Vec<_>>(),
                )
                .with_timezone("UTC"),
            ),
            Arc::new(StringArray::from(
                rows.iter().map(|r| r.word).collect::<Vec<_>>(),
            )),
            Arc::new(Int64Array::from(
                rows.iter().map(|r| r.v).collect::<Vec<_>>(),
            )),
        ],
    )
    .unwrap()
}

/// count(*), count(v), sum(v), min(v), max(v) of one group.
type Totals = (i64, i64, Option<i64>, Option<i64>, Option<i64>);

const WORDS: [&str; 4] = ["ant", "bee", "cat", "dog"];

/// Rows whose event time grows by 0..3 s per row with at most 4 s of disorder, so a 10-second
/// watermark never drops one; words and values may be NULL.
fn rows_strategy() -> impl Strategy<Value = Vec<Row>> {
    prop::collection::vec(
        (
            0i64..3,
            0i64..5,
            prop::option::weighted(0.9, 0usize..4),
            prop::option::weighted(0.8, -50i64..50),
        ),
        1..120,
    )
    .prop_map(|steps| {
        let mut t = 100;
        steps
            .into_iter()
            .map(|(step, back, w, v)| {
                t += step;
                Row {
                    ts_s: (t - back).max(0),
                    word: w.map(|i| WORDS[i]),
                    v,
                }
            })
            .collect()
    })
}

/// Random cut points splitting `n` rows into micro-batches.
fn split(rows: &[Row], cuts: &[usize]) -> Vec<Vec<Row>> {
    let mut points: Vec<usize> = cuts.iter().map(|c| c % (rows.len() + 1)).collect();
    points.push(0);
    points.push(rows.len());
    points.sort_unstable();
    points.dedup();
    points
        .windows(2)
        .map(|w| rows[w[0]..w[1]].to_vec())
        .collect()
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

fn fmt_opt(v: Option<i64>) -> String {
    v.map_or("null".into(), |v| v.to_string())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 24, .. ProptestConfig::default() })]

    #[test]
    fn complete_mode_aggregation_equals_batch(rows in rows_strategy(), cuts in prop::collection::vec(0usize..200, 0..6)) {
        // Model: group by word: count(*), count(v), sum(v), min(v), max(v).
        let mut model: BTreeMap<Option<&str>, Totals> = BTreeMap::new();
        for r in &rows {
            let e = model.entry(r.word).or_insert((0, 0, None, None, None));
            e.0 += 1;
            if let Some(v) = r.v {
                e.1 += 1;
                e.2 = Some(e.2.unwrap_or(0) + v);
                e.3 = Some(e.3.map_or(v, |m| m.min(v)));
                e.4 = Some(e.4.map_or(v, |m| m.max(v)));
            }
        }
        let expected: Vec<String> = model
            .iter()
            .map(|(w, (n, nv, s, lo, hi))| {
                format!("{}, {n}, {nv}, {}, {}, {}", w.unwrap_or("null"), fmt_opt(*s), fmt_opt(*lo), fmt_opt(*hi))
            })
            .collect();

        let s = session();
        let (input, df) = s.read_stream().memory(schema()).unwrap();
        let df = df
            .group_by([col("word")])
            .agg([
                count_star().alias("n"),
                aggregate(AggregateFunction::Count, col("v")).alias("nv"),
                aggregate(AggregateFunction::Sum, col("v")).alias("s"),
                aggregate(AggregateFunction::Min, col("v")).alias("lo"),
                aggregate(AggregateFunction::Max, col("v")).alias("hi"),
            ])
            .unwrap();
        // Each part is processed as its own micro-batch (AssertOnQuery drains before running).
        let mut actions: Vec<Action> = Vec::new();
        for part in split(&rows, &cuts) {
            actions.push(Action::AddData(input.clone(), batch(&part)));
            actions.push(Action::AssertOnQuery(Box::new(|_| Ok(()))));
        }
        actions.push(Action::CheckAnswer(expected));
        let mut t = StreamTest::new(df, "complete").unwrap();
        prop_assert_eq!(t.run(actions), Ok(()));
    }

    /// One state shard and micro-batches that arrive as several RecordBatches: the batches of
    /// a micro-batch are aggregated on parallel partial states and merged in arrival order,
    /// which must give what one state seeing the rows in order gives, including first/last.
    #[test]
    fn parallel_partial_aggregation_equals_batch(
        rows in rows_strategy(),
        cuts in prop::collection::vec(0usize..200, 0..6),
        pieces in prop::collection::vec(1usize..5, 6),
    ) {
        // Model: group by word: count(*), sum(v), min(v), max(v), first(v), last(v) (arrival
        // order, NULLs included, as Spark's first/last without ignoreNulls).
        type Model = (i64, Option<i64>, Option<i64>, Option<i64>, Option<Option<i64>>, Option<i64>);
        let mut model: BTreeMap<Option<&str>, Model> = BTreeMap::new();
        for r in &rows {
            let e = model.entry(r.word).or_insert((0, None, None, None, None, None));
            e.0 += 1;
            if let Some(v) = r.v {
                e.1 = Some(e.1.unwrap_or(0) + v);
                e.2 = Some(e.2.map_or(v, |m| m.min(v)));
                e.3 = Some(e.3.map_or(v, |m| m.max(v)));
            }
            e.4.get_or_insert(r.v);
            e.5 = r.v;
        }
        let expected: Vec<String> = model
            .iter()
            .map(|(w, (n, s, lo, hi, first, last))| {
                format!(
                    "{}, {n}, {}, {}, {}, {}, {}",
                    w.unwrap_or("null"),
                    fmt_opt(*s),
                    fmt_opt(*lo),
                    fmt_opt(*hi),
                    fmt_opt(first.flatten()),
                    fmt_opt(*last)
                )
            })
            .collect();

        let s = Session::with_config(SessionConfig {
            workers: 2,
            state_shards: 1,
            fsync: false,
            ..Default::default()
        })
        .unwrap();
        let (input, df) = s.read_stream().memory(schema()).unwrap();
        let df = df
            .group_by([col("word")])
            .agg([
                count_star().alias("n"),
                aggregate(AggregateFunction::Sum, col("v")).alias("s"),
                aggregate(AggregateFunction::Min, col("v")).alias("lo"),
                aggregate(AggregateFunction::Max, col("v")).alias("hi"),
                aggregate(AggregateFunction::First, col("v")).alias("f"),
                aggregate(AggregateFunction::Last, col("v")).alias("l"),
            ])
            .unwrap();
        let mut actions: Vec<Action> = Vec::new();
        for (i, part) in split(&rows, &cuts).into_iter().enumerate() {
            // The micro-batch's rows as `pieces[i]` RecordBatches of one offset.
            let n = pieces[i % pieces.len()].min(part.len().max(1));
            let size = part.len().div_ceil(n).max(1);
            let batches: Vec<RecordBatch> = part.chunks(size).map(batch).collect();
            let stream = input.clone();
            actions.push(Action::AssertOnQuery(Box::new(move |_| {
                stream.add_data(batches.clone());
                Ok(())
            })));
        }
        actions.push(Action::CheckAnswer(expected));
        let mut t = StreamTest::new(df, "complete").unwrap();
        prop_assert_eq!(t.run(actions), Ok(()));
    }

    #[test]
    fn append_mode_windows_equal_batch_after_the_final_watermark(rows in rows_strategy(), cuts in prop::collection::vec(0usize..200, 0..6)) {
        // Model: 10-second tumbling windows per word (NULL words group together).
        let mut model: BTreeMap<(i64, Option<&str>), i64> = BTreeMap::new();
        for r in &rows {
            *model.entry((r.ts_s - r.ts_s.rem_euclid(10), r.word)).or_default() += 1;
        }
        let ts = |s: i64| format!("1970-01-01 00:{:02}:{:02}", s / 60, s % 60);
        let expected: Vec<String> = model
            .iter()
            .map(|((start, w), n)| format!("[{}, {}), {}, {n}", ts(*start), ts(start + 10), w.unwrap_or("null")))
            .collect();

        let s = session();
        let (input, df) = s.read_stream().memory(schema()).unwrap();
        let df = df
            .with_watermark("ts", "10 seconds")
            .unwrap()
            .group_by([window(col("ts"), "10 seconds", None, None).unwrap(), col("word")])
            .count()
            .unwrap();
        let mut actions: Vec<Action> = Vec::new();
        for part in split(&rows, &cuts) {
            actions.push(Action::AddData(input.clone(), batch(&part)));
            actions.push(Action::AssertOnQuery(Box::new(|_| Ok(()))));
        }
        // A far-future row in a window of its own pushes the watermark past every real window.
        let last = rows.iter().map(|r| r.ts_s).max().unwrap_or(0);
        let flush = Row { ts_s: last + 1000, word: Some("zzz"), v: None };
        actions.push(Action::AddData(input.clone(), batch(&[flush])));
        actions.push(Action::CheckAnswer(expected));
        let mut t = StreamTest::new(df, "append").unwrap();
        prop_assert_eq!(t.run(actions), Ok(()));
    }
}
