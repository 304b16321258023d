//! Incremental execution of one query: the physical plan a micro-batch runs.
//!
//! Owns the physical operator tree built from an analysed logical plan ([`planner`]): fused
//! stateless kernels ([`map`]), watermark trackers, unions, and the stateful operators
//! ([`aggregate`], [`dedup`], [`session`]) with their state stores. Per batch it takes each
//! source's rows and returns the rows for the sink, following the output mode. It does not decide
//! when batches run, write offsets or commits, or talk to sources and sinks (that is
//! [`crate::query`]).

pub mod aggregate;
pub mod dedup;
pub mod distinct;
pub mod lower;
pub mod map;
pub mod planner;
pub mod session;

use std::fmt::Write as _;
use std::path::Path;

use arrow::array::{Array, RecordBatch, TimestampMicrosecondArray};
use arrow::compute;
use arrow::datatypes::SchemaRef;
use weir_plan::OutputMode;

use crate::error::{Error, Result};
use crate::query::WatermarkPolicy;
use crate::query::progress::StateOperatorProgress;
use crate::sink::SinkOutputMode;

pub use planner::{SourceSpec, plan_query};

/// What a batch needs to know besides its rows.
#[derive(Clone, Copy, Debug)]
pub struct BatchContext {
    /// The micro-batch id.
    pub batch_id: u64,
    /// The watermark for eviction and output (computed at the end of the previous batch), ms.
    pub watermark_ms: i64,
    /// The watermark used to drop late input: the previous batch's watermark, ms (Spark ≥ 3.4).
    pub late_watermark_ms: i64,
    /// The batch's processing time, ms (`current_timestamp()`).
    pub batch_timestamp_ms: i64,
}

/// A physical operator.
pub(crate) enum Node {
    /// The rows of source `index`, narrowed to `projection` when the source returned every column.
    Scan {
        index: usize,
        projection: Option<Vec<usize>>,
    },
    /// A fused filter/project kernel.
    Map {
        input: Box<Node>,
        stage: map::MapStage,
    },
    /// One row per element of an array expression.
    Explode {
        input: Box<Node>,
        stage: map::ExplodeStage,
    },
    /// Tracks the max event time of a column (Spark's EventTimeWatermark).
    Watermark {
        input: Box<Node>,
        column: usize,
        tracker: usize,
    },
    /// Concatenation of inputs.
    Union { inputs: Vec<Node> },
    /// Stateful grouped aggregation.
    Aggregate {
        input: Box<Node>,
        op: Box<aggregate::AggregateOp>,
    },
    /// Stateful deduplication.
    Dedup {
        input: Box<Node>,
        op: Box<dedup::DedupOp>,
    },
    /// Stateful aggregation over session windows.
    SessionWindow {
        input: Box<Node>,
        op: Box<session::SessionWindowOp>,
    },
    /// Sort of the whole result (complete mode only).
    Sort {
        input: Box<Node>,
        keys: Vec<(usize, arrow::compute::SortOptions)>,
    },
    /// First rows of the result (complete mode) or of the stream (append).
    Limit {
        input: Box<Node>,
        fetch: usize,
        emitted: usize,
        per_batch: bool,
    },
}

/// Max event time seen by one `withWatermark`, and its delay.
#[derive(Clone, Debug)]
pub(crate) struct WatermarkTracker {
    pub column_name: String,
    pub delay_ms: i64,
    pub max_event_time_ms: Option<i64>,
    /// (min, max, sum, count) of event times in the current batch, for progress reports.
    pub batch_stats: Option<(i64, i64, i128, u64)>,
}

/// The executable form of a query.
pub struct PhysicalPlan {
    pub(crate) root: Node,
    pub(crate) sources: Vec<SourceSpec>,
    pub(crate) output_schema: SchemaRef,
    pub(crate) output_mode: OutputMode,
    pub(crate) trackers: Vec<WatermarkTracker>,
    pub(crate) explain: String,
    pub(crate) fingerprint: String,
}

impl PhysicalPlan {
    /// The sources to create, in order.
    pub fn sources(&self) -> &[SourceSpec] {
        &self.sources
    }

    /// Schema of the rows handed to the sink.
    pub fn output_schema(&self) -> SchemaRef {
        self.output_schema.clone()
    }

    /// The output mode, as the sink sees it.
    pub fn sink_output_mode(&self) -> SinkOutputMode {
        match self.output_mode {
            OutputMode::Append => SinkOutputMode::Append,
            OutputMode::Update => SinkOutputMode::Update,
            OutputMode::Complete => SinkOutputMode::Complete,
        }
    }

    /// The logical, incremental and kernel plans, as `explain()` prints them.
    pub fn explain(&self) -> String {
        self.explain.clone()
    }

    /// [`PhysicalPlan::explain`] plus the CLIF of every compiled kernel (`EXPLAIN CODEGEN`).
    pub fn explain_codegen(&self) -> String {
        let mut text = self.explain.clone();
        let _ = writeln!(text, "== Generated Code (Cranelift IR) ==");
        for (label, kernel) in kernels(&self.root) {
            let _ = writeln!(text, "-- {label}");
            match kernel.clif() {
                Some(clif) => {
                    let _ = writeln!(text, "{}", clif.trim_end());
                }
                None => {
                    let _ = writeln!(text, "(not compiled natively: runs on the interpreter)");
                }
            }
        }
        text
    }

    /// A description of the stateful part of the query; a checkpoint written by a query with a
    /// different fingerprint is refused.
    pub fn state_fingerprint(&self) -> &str {
        &self.fingerprint
    }

    /// Number of state shards of the aggregations (pinned in the checkpoint's offsets conf as
    /// `spark.sql.shuffle.partitions`).
    pub fn state_shards(&self) -> usize {
        let mut n = 1;
        visit(&self.root, &mut |node| {
            if let Node::Aggregate { op, .. } = node {
                n = n.max(op.shard_count());
            }
        });
        n
    }

    /// Sets the shard count of every aggregation (from a checkpoint, before restoring state).
    pub fn set_state_shards(&mut self, n: usize) {
        visit_mut(&mut self.root, &mut |node| {
            if let Node::Aggregate { op, .. } = node {
                op.set_shard_count(n);
            }
        });
    }

    /// True when the query has a watermark.
    pub fn has_watermark(&self) -> bool {
        !self.trackers.is_empty()
    }

    /// Runs one batch: `inputs[i]` are the rows of source `i`.
    pub fn execute(
        &mut self,
        inputs: Vec<Vec<RecordBatch>>,
        ctx: &BatchContext,
    ) -> Result<Vec<RecordBatch>> {
        let mut inputs: Vec<Option<Vec<RecordBatch>>> = inputs.into_iter().map(Some).collect();
        for t in &mut self.trackers {
            t.batch_stats = None;
        }
        let out = execute_node(&mut self.root, &mut inputs, &mut self.trackers, ctx)?;
        Ok(out.into_iter().filter(|b| b.num_rows() > 0).collect())
    }

    /// The global watermark candidate after the batches run so far (max event time − delay,
    /// combined by `policy`), in ms; `None` when no watermarked input has been seen.
    pub fn watermark_candidate(&self, policy: WatermarkPolicy) -> Option<i64> {
        let candidates: Vec<Option<i64>> = self
            .trackers
            .iter()
            .map(|t| t.max_event_time_ms.map(|m| m - t.delay_ms))
            .collect();
        if candidates.is_empty() {
            return None;
        }
        match policy {
            // An input that has seen no data yet holds the min watermark back.
            WatermarkPolicy::Min => candidates
                .iter()
                .copied()
                .collect::<Option<Vec<_>>>()?
                .into_iter()
                .min(),
            WatermarkPolicy::Max => candidates.iter().flatten().copied().max(),
        }
    }

    /// Event-time (min, max, avg) of this batch's watermarked rows, ms.
    pub fn event_time_stats(&self) -> Option<(i64, i64, i64)> {
        let mut acc: Option<(i64, i64, i128, u64)> = None;
        for t in &self.trackers {
            if let Some((mn, mx, sum, n)) = t.batch_stats {
                acc = Some(match acc {
                    None => (mn, mx, sum, n),
                    Some((a, b, c, d)) => (a.min(mn), b.max(mx), c + sum, d + n),
                });
            }
        }
        acc.filter(|s| s.3 > 0)
            .map(|(mn, mx, sum, n)| (mn, mx, (sum / n as i128) as i64))
    }

    /// Whether a batch without new data should run after the watermark moved: as Spark's
    /// `shouldRunAnotherBatch`, whenever a stateful operator evicts or emits by the watermark
    /// (aggregations and session windows outside complete mode, watermarked deduplication),
    /// whether or not anything is due yet.
    pub fn needs_no_data_batch(&self) -> bool {
        let mut needed = false;
        visit(&self.root, &mut |n| match n {
            Node::Aggregate { op, .. } => needed |= op.evicts_by_watermark(),
            Node::Dedup { op, .. } => needed |= op.evicts_by_watermark(),
            Node::SessionWindow { op, .. } => needed |= op.evicts_by_watermark(),
            _ => {}
        });
        needed
    }

    /// Loads every stateful operator's state as of `version` (= batches committed).
    pub fn restore_state(&mut self, state_root: &Path, version: u64) -> Result<()> {
        let mut result = Ok(());
        let fsync = true;
        visit_mut(&mut self.root, &mut |n| {
            if result.is_err() {
                return;
            }
            result = match n {
                Node::Aggregate { op, .. } => op.restore(state_root, version, fsync),
                Node::Dedup { op, .. } => op.restore(state_root, version, fsync),
                Node::SessionWindow { op, .. } => op.restore(state_root, version, fsync),
                _ => Ok(()),
            };
        });
        result
    }

    /// Commits every stateful operator's state as `version`; returns their progress metrics.
    pub fn commit_state(
        &mut self,
        state_root: &Path,
        version: u64,
    ) -> Result<Vec<StateOperatorProgress>> {
        let mut out = Vec::new();
        let mut result = Ok(());
        visit_mut(&mut self.root, &mut |n| {
            if result.is_err() {
                return;
            }
            let r = match n {
                Node::Aggregate { op, .. } => op.commit(state_root, version),
                Node::Dedup { op, .. } => op.commit(state_root, version),
                Node::SessionWindow { op, .. } => op.commit(state_root, version),
                _ => return,
            };
            match r {
                Ok(p) => out.push(p),
                Err(e) => result = Err(e),
            }
        });
        result.map(|_| out)
    }

    /// Sets whether state files are fsynced.
    pub fn set_fsync(&mut self, fsync: bool) {
        visit_mut(&mut self.root, &mut |n| match n {
            Node::Aggregate { op, .. } => op.fsync = fsync,
            Node::Dedup { op, .. } => op.fsync = fsync,
            Node::SessionWindow { op, .. } => op.fsync = fsync,
            _ => {}
        });
    }
}

fn visit(node: &Node, f: &mut dyn FnMut(&Node)) {
    f(node);
    match node {
        Node::Scan { .. } => {}
        Node::Map { input, .. }
        | Node::Explode { input, .. }
        | Node::Watermark { input, .. }
        | Node::Aggregate { input, .. }
        | Node::Dedup { input, .. }
        | Node::SessionWindow { input, .. }
        | Node::Sort { input, .. }
        | Node::Limit { input, .. } => visit(input, f),
        Node::Union { inputs } => inputs.iter().for_each(|i| visit(i, f)),
    }
}

fn visit_mut(node: &mut Node, f: &mut dyn FnMut(&mut Node)) {
    f(node);
    match node {
        Node::Scan { .. } => {}
        Node::Map { input, .. }
        | Node::Explode { input, .. }
        | Node::Watermark { input, .. }
        | Node::Aggregate { input, .. }
        | Node::Dedup { input, .. }
        | Node::SessionWindow { input, .. }
        | Node::Sort { input, .. }
        | Node::Limit { input, .. } => visit_mut(input, f),
        Node::Union { inputs } => inputs.iter_mut().for_each(|i| visit_mut(i, f)),
    }
}

fn execute_node(
    node: &mut Node,
    inputs: &mut [Option<Vec<RecordBatch>>],
    trackers: &mut [WatermarkTracker],
    ctx: &BatchContext,
) -> Result<Vec<RecordBatch>> {
    match node {
        Node::Scan { index, projection } => {
            let rows = inputs
                .get_mut(*index)
                .and_then(Option::take)
                .unwrap_or_default();
            match projection {
                Some(p) => rows
                    .into_iter()
                    .map(|b| {
                        if b.num_columns() == p.len() {
                            Ok(b)
                        } else {
                            Ok(b.project(p)?)
                        }
                    })
                    .collect(),
                None => Ok(rows),
            }
        }
        Node::Map { input, stage } => {
            let rows = execute_node(input, inputs, trackers, ctx)?;
            stage.run(rows, ctx)
        }
        Node::Explode { input, stage } => {
            let rows = execute_node(input, inputs, trackers, ctx)?;
            stage.run(rows, ctx)
        }
        Node::Watermark {
            input,
            column,
            tracker,
        } => {
            let rows = execute_node(input, inputs, trackers, ctx)?;
            let t = &mut trackers[*tracker];
            for b in &rows {
                observe_event_times(t, b.column(*column).as_ref())?;
            }
            Ok(rows)
        }
        Node::Union { inputs: children } => {
            let mut out = Vec::new();
            for c in children {
                out.extend(execute_node(c, inputs, trackers, ctx)?);
            }
            Ok(out)
        }
        Node::Aggregate { input, op } => {
            // The stateless operators below run a few input batches at a time and hand their
            // rows straight to the aggregation, so a batch's intermediate rows (an explode's
            // words, say) are never all held at once.
            let mut feed = op.begin();
            let group = op.input_batches_per_feed;
            stream_node(input, inputs, trackers, ctx, group, &mut |rows, _| {
                op.feed_many(&mut feed, rows, ctx)
            })?;
            op.finish(feed, ctx)
        }
        Node::Dedup { input, op } => {
            let rows = execute_node(input, inputs, trackers, ctx)?;
            op.process(rows, ctx)
        }
        Node::SessionWindow { input, op } => {
            let rows = execute_node(input, inputs, trackers, ctx)?;
            op.process(rows, ctx)
        }
        Node::Sort { input, keys } => {
            let rows = execute_node(input, inputs, trackers, ctx)?;
            if rows.is_empty() {
                return Ok(rows);
            }
            let schema = rows[0].schema();
            let all = compute::concat_batches(&schema, &rows)?;
            let sort_cols: Vec<compute::SortColumn> = keys
                .iter()
                .map(|(i, o)| compute::SortColumn {
                    values: all.column(*i).clone(),
                    options: Some(*o),
                })
                .collect();
            let idx = compute::lexsort_to_indices(&sort_cols, None)?;
            Ok(vec![compute::take_record_batch(&all, &idx)?])
        }
        Node::Limit {
            input,
            fetch,
            emitted,
            per_batch,
        } => {
            let rows = execute_node(input, inputs, trackers, ctx)?;
            if *per_batch {
                *emitted = 0;
            }
            let mut out = Vec::new();
            for b in rows {
                let left = fetch.saturating_sub(*emitted);
                if left == 0 {
                    break;
                }
                let take = left.min(b.num_rows());
                *emitted += take;
                out.push(b.slice(0, take));
            }
            Ok(out)
        }
    }
}

/// Receives the rows of a streamed operator chain, a group of batches at a time.
type RowSink<'a> = dyn FnMut(Vec<RecordBatch>, &mut [WatermarkTracker]) -> Result<()> + 'a;

/// Runs `node` and gives its rows to `emit` in groups of `group` input batches (the map
/// stages' worker count, so they still run their batches in parallel) when `node` is a chain of
/// stateless operators over sources; any other node runs whole and is emitted at once. Same
/// rows, same order and same watermark observations as [`execute_node`].
fn stream_node(
    node: &mut Node,
    inputs: &mut [Option<Vec<RecordBatch>>],
    trackers: &mut [WatermarkTracker],
    ctx: &BatchContext,
    group: usize,
    emit: &mut RowSink<'_>,
) -> Result<()> {
    match node {
        Node::Scan { .. } => {
            let rows = execute_node(node, inputs, trackers, ctx)?;
            let mut rows = rows.into_iter().peekable();
            while rows.peek().is_some() {
                let part: Vec<RecordBatch> = rows.by_ref().take(group).collect();
                emit(part, trackers)?;
            }
            Ok(())
        }
        Node::Map { input, stage } => {
            stream_node(input, inputs, trackers, ctx, group, &mut |rows, t| {
                emit(stage.run(rows, ctx)?, t)
            })
        }
        Node::Explode { input, stage } => {
            stream_node(input, inputs, trackers, ctx, group, &mut |rows, t| {
                emit(stage.run(rows, ctx)?, t)
            })
        }
        Node::Watermark {
            input,
            column,
            tracker,
        } => {
            let (column, tracker) = (*column, *tracker);
            stream_node(input, inputs, trackers, ctx, group, &mut |rows, t| {
                for b in &rows {
                    observe_event_times(&mut t[tracker], b.column(column).as_ref())?;
                }
                emit(rows, t)
            })
        }
        Node::Union { inputs: children } => {
            for c in children {
                stream_node(c, inputs, trackers, ctx, group, emit)?;
            }
            Ok(())
        }
        _ => {
            let rows = execute_node(node, inputs, trackers, ctx)?;
            emit(rows, trackers)
        }
    }
}

/// Σ floor(v / 1000) over microsecond times with minimum `mn` and maximum `mx` (Spark averages
/// event times in whole ms). When the batch spans less than 2^32 µs (71 minutes) every value is
/// a `u32` offset from a whole-ms base, and a `u32` division by a constant vectorises; otherwise
/// one `i64` division per value.
fn sum_of_millis(values: &[i64], mn: i64, mx: i64) -> i128 {
    let base = mn.div_euclid(1000).checked_mul(1000);
    let narrow = base
        .and_then(|b| mx.checked_sub(b))
        .is_some_and(|span| (0..=i64::from(u32::MAX)).contains(&span));
    if let (true, Some(base)) = (narrow, base) {
        let mut sum = 0u128;
        // Per 2^20 values a u64 sum of u32 / 1000 cannot overflow.
        for chunk in values.chunks(1 << 20) {
            let part: u64 = chunk
                .iter()
                .map(|&v| u64::from((v.wrapping_sub(base) as u32) / 1000))
                .sum();
            sum += u128::from(part);
        }
        sum as i128 + i128::from(base / 1000) * values.len() as i128
    } else {
        values.iter().map(|&v| i128::from(v.div_euclid(1000))).sum()
    }
}

fn observe_event_times(t: &mut WatermarkTracker, col: &dyn Array) -> Result<()> {
    let ts = col
        .as_any()
        .downcast_ref::<TimestampMicrosecondArray>()
        .ok_or_else(|| {
            Error::Unsupported(format!(
                "the watermark column '{}' must be a TIMESTAMP, found {}",
                t.column_name,
                col.data_type()
            ))
        })?;
    let n = (ts.len() - ts.null_count()) as u64;
    if n == 0 {
        return Ok(());
    }
    // One pass for min, max and the sum of event times in ms (the progress report's avg).
    let (mn, mx, sum) = if ts.null_count() == 0 {
        let values = ts.values();
        let (mn, mx) = values
            .iter()
            .fold((i64::MAX, i64::MIN), |(a, b), &v| (a.min(v), b.max(v)));
        (mn, mx, sum_of_millis(values, mn, mx))
    } else {
        let (Some(mn), Some(mx)) = (compute::min(ts), compute::max(ts)) else {
            return Ok(());
        };
        let sum: i128 = ts
            .iter()
            .flatten()
            .map(|v| i128::from(v.div_euclid(1000)))
            .sum();
        (mn, mx, sum)
    };
    let (mn, mx) = (mn.div_euclid(1000), mx.div_euclid(1000));
    t.max_event_time_ms = Some(t.max_event_time_ms.map_or(mx, |m| m.max(mx)));
    t.batch_stats = Some(match t.batch_stats {
        None => (mn, mx, sum, n),
        Some((a, b, c, d)) => (a.min(mn), b.max(mx), c + sum, d + n),
    });
    Ok(())
}

/// Names the explain text uses for sources and watermarks (from the logical plan).
pub(crate) struct ExplainLabels {
    pub scans: Vec<String>,
    pub watermarks: Vec<String>,
}

fn indent(text: &str, pad: &str) -> String {
    text.replace('\n', &format!("\n{pad}  "))
}

/// Appends one line (or block) per node to an explain text, children indented below.
pub(crate) fn explain_node(node: &Node, depth: usize, labels: &ExplainLabels, out: &mut String) {
    let pad = "  ".repeat(depth);
    let child = |input: &Node, out: &mut String| explain_node(input, depth + 1, labels, out);
    match node {
        Node::Scan { index, .. } => {
            let label = labels.scans.get(*index).map_or("?", String::as_str);
            let _ = writeln!(out, "{pad}Scan #{index} {label}");
        }
        Node::Map { input, stage } => {
            let _ = writeln!(out, "{pad}{}", indent(&stage.describe(), &pad));
            child(input, out);
        }
        Node::Explode { input, stage } => {
            let _ = writeln!(out, "{pad}{}", indent(&stage.describe(), &pad));
            child(input, out);
        }
        Node::Watermark { input, tracker, .. } => {
            let label = labels.watermarks.get(*tracker).map_or("?", String::as_str);
            let _ = writeln!(out, "{pad}EventTimeWatermark {label}");
            child(input, out);
        }
        Node::Union { inputs } => {
            let _ = writeln!(out, "{pad}Union");
            for i in inputs {
                child(i, out);
            }
        }
        Node::Aggregate { input, op } => {
            let _ = writeln!(out, "{pad}{}", indent(&op.describe(), &pad));
            child(input, out);
        }
        Node::Dedup { input, op } => {
            let _ = writeln!(out, "{pad}{}", op.describe());
            child(input, out);
        }
        Node::SessionWindow { input, op } => {
            let _ = writeln!(out, "{pad}{}", indent(&op.describe(), &pad));
            child(input, out);
        }
        Node::Sort { input, keys } => {
            let keys: Vec<String> = keys
                .iter()
                .map(|(i, o)| {
                    format!(
                        "#{i} {} NULLS {}",
                        if o.descending { "DESC" } else { "ASC" },
                        if o.nulls_first { "FIRST" } else { "LAST" }
                    )
                })
                .collect();
            let _ = writeln!(out, "{pad}Sort [{}]", keys.join(", "));
            child(input, out);
        }
        Node::Limit { input, fetch, .. } => {
            let _ = writeln!(out, "{pad}Limit {fetch}");
            child(input, out);
        }
    }
}

/// The compiled kernels of a plan, in plan order, with a label each (for `EXPLAIN CODEGEN`).
pub(crate) fn kernels(node: &Node) -> Vec<(String, std::sync::Arc<weir_jit::CompiledKernel>)> {
    let mut out = Vec::new();
    visit(node, &mut |n| match n {
        Node::Map { stage, .. } => {
            if let Some(k) = &stage.kernel {
                out.push((format!("Kernel [{}]", stage.description), k.clone()));
            }
        }
        Node::Explode { stage, .. } => out.push((
            format!("Explode [{}]", stage.description),
            stage.kernel.clone(),
        )),
        Node::Aggregate { op, .. } => out.push((
            format!("StatefulAggregate op={}", op.op_id),
            op.kernel.clone(),
        )),
        _ => {}
    });
    out
}

#[cfg(test)]
mod tests {
    use super::sum_of_millis;

    fn naive(values: &[i64]) -> i128 {
        values.iter().map(|&v| i128::from(v.div_euclid(1000))).sum()
    }

    #[test]
    fn millisecond_sums_are_exact_in_every_range() {
        let cases: Vec<Vec<i64>> = vec![
            vec![12_000_000, 14_000_999, 21_000_001],
            vec![-1, -999, -1000, -1001, 0, 999, 1000],
            vec![
                1_700_000_000_123_456,
                1_700_000_003_000_000,
                1_700_000_000_000_001,
            ],
            // Wider than 2^32 µs: the i64 path.
            vec![0, 5_000_000_000, -7_000_000_001],
            vec![i64::MIN, i64::MIN + 1, i64::MIN + 999],
            vec![i64::MAX, i64::MAX - 1],
        ];
        for values in cases {
            let mn = *values.iter().min().unwrap();
            let mx = *values.iter().max().unwrap();
            assert_eq!(sum_of_millis(&values, mn, mx), naive(&values), "{values:?}");
        }
    }
}
