//! Stateful streaming aggregation (Spark's StateStoreRestore/StateStoreSave pair).
//!
//! Owns one grouped aggregation: dropping late rows, expanding sliding windows, feeding rows to
//! the compiled aggregation kernel (which updates weir-jit's `GroupState` in place), choosing the
//! rows to emit for the output mode, evicting groups behind the watermark, and turning the
//! batch's changes into a state-store delta. Keys, accumulators and their layout belong to the
//! kernel's `GroupState`; durability belongs to [`crate::state::StateStore`].

use std::path::Path;
use std::sync::Arc;
use std::time::Instant;

use arrow::array::{
    Array, ArrayRef, BooleanArray, RecordBatch, RecordBatchOptions, TimestampMicrosecondArray,
    UInt32Array,
};
use arrow::compute;
use arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use weir_jit::{CompiledKernel, GroupState};
use weir_plan::OutputMode;

use super::BatchContext;
use super::lower::{KernelInputs, timestamp_type, window_struct};
use crate::error::{Error, Result};
use crate::query::progress::StateOperatorProgress;
use crate::state::{StateStore, StateStoreOptions};

/// Where an output aggregate comes from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum AggSlot {
    /// The aggregation kernel's aggregate `i`.
    Kernel(usize),
    /// Distinct count `j` of the sketches.
    Distinct(usize),
}

/// What a grouping key is.
#[derive(Clone, Debug, PartialEq)]
pub(crate) enum KeyKind {
    /// A plain value.
    Plain,
    /// The start of an event-time window of `size_us`; emitted as `struct<start, end>`.
    Window { size_us: i64 },
}

/// The key that carries the watermark, and how its end time is computed.
#[derive(Clone, Debug)]
pub(crate) struct EventTimeKey {
    /// Index among the grouping keys.
    pub key: usize,
    /// Window length (0 for a plain event-time key: the key itself is the time).
    pub size_us: i64,
    /// Offset of window starts from the epoch.
    pub start_us: i64,
}

/// Rows of a sliding window are expanded before the kernel: one row per window.
#[derive(Clone, Debug)]
pub(crate) struct SlidingExpansion {
    /// Event-time column in the operator's input.
    pub time_column: usize,
    pub size_us: i64,
    pub slide_us: i64,
    pub start_us: i64,
}

/// `GROUP BY word` with only counts over `explode(split(line, sep))` for a one-byte `sep`:
/// the planner drops the explode and the aggregation reads the lines.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct FusedSplit {
    /// The line column in the aggregation's (fused) input.
    pub line_column: usize,
    /// The separator byte (ASCII).
    pub separator: u8,
}

impl FusedSplit {
    /// Counts the words of every non-NULL line of `batch` into `states`: one state, or the
    /// state shards, each word routed to its shard as [`route_rows`] would route it. Spark's
    /// `split` keeps empty words (leading, inner, trailing separators); a NULL line has none.
    fn count_words(&self, states: Vec<&mut GroupState>, batch: &RecordBatch) -> Result<()> {
        let lines = compute::cast(batch.column(self.line_column), &DataType::Utf8)?;
        let lines = lines
            .as_any()
            .downcast_ref::<arrow::array::StringArray>()
            .ok_or_else(|| Error::Internal("split input is not a string column".into()))?;
        let mut counters = states
            .into_iter()
            .map(|s| s.string_key_counter())
            .collect::<std::result::Result<Vec<_>, _>>()?;
        let shards = counters.len() as u64;
        let mut add = |word: &[u8]| {
            let shard = if shards == 1 {
                0
            } else {
                (route_hash_str(ROUTE_SEED, word) % shards) as usize
            };
            counters[shard].add(word);
        };
        for row in 0..lines.len() {
            if lines.is_null(row) {
                continue;
            }
            let line = lines.value(row).as_bytes();
            let mut start = 0;
            super::map::for_each_position_of(line, self.separator, |i| {
                add(&line[start..i]);
                start = i + 1;
            });
            add(&line[start..]);
        }
        Ok(())
    }
}

/// The input of the batch being fed to an [`AggregateOp`] (see [`AggregateOp::begin`]).
#[derive(Debug)]
pub(crate) struct AggFeed {
    started: Instant,
    dropped: u64,
    /// Routed input per shard, when there are several shards.
    parts: Vec<Vec<RecordBatch>>,
}

/// One streaming aggregation.
pub(crate) struct AggregateOp {
    pub op_id: usize,
    pub kernel: Arc<CompiledKernel>,
    pub inputs: KernelInputs,
    pub kernel_schema: SchemaRef,
    pub keys: Vec<KeyKind>,
    pub event_time: Option<EventTimeKey>,
    /// For tumbling windows and plain event-time keys: the input column of the event time, so
    /// late rows can be dropped before the kernel.
    pub late_time_column: Option<usize>,
    pub sliding: Option<SlidingExpansion>,
    pub mode: OutputMode,
    pub output_schema: SchemaRef,
    pub description: String,
    pub fsync: bool,
    /// Input batches the stateless operators below run at a time before their rows are fed in
    /// (the map stages' worker count, so they keep their parallelism).
    pub input_batches_per_feed: usize,
    /// Kernel-input columns whose values route a row to its shard (plain-column grouping keys);
    /// empty means one shard.
    route: Vec<usize>,
    /// State shards: each owns the groups whose routing key hashes to it, with its own store
    /// under `state/<op>/<shard>/`; shards are updated in parallel.
    shards: Vec<Shard>,
    /// The output aggregates, in plan order (kernel aggregates and distinct counts).
    pub slots: Vec<AggSlot>,
    /// `approx_count_distinct` sketches, when the aggregation has any (one shard then).
    pub distinct: Option<super::distinct::DistinctSketches>,
    /// Whether partial states merge exactly (no float sums), so input batches may be
    /// aggregated in parallel (see [`Self::feed_many`]).
    merge_is_exact: bool,
    /// Per-thread partial states of [`Self::feed_many`], kept for their allocations.
    partials: Vec<GroupState>,
    /// A fused `explode(split(line, sep))` below a count by the exploded word: the input rows
    /// are the lines (this column), and the words are counted straight from their bytes,
    /// never built as a column (see [`FusedSplit`]).
    pub fused_split: Option<FusedSplit>,
    metrics: StateOperatorProgress,
}

/// One shard of an aggregation's state.
#[derive(Default)]
struct Shard {
    state: Option<GroupState>,
    store: Option<StateStore>,
    pending: Option<(RecordBatch, RecordBatch)>,
}

impl AggregateOp {
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        op_id: usize,
        kernel: Arc<CompiledKernel>,
        inputs: KernelInputs,
        kernel_schema: SchemaRef,
        keys: Vec<KeyKind>,
        event_time: Option<EventTimeKey>,
        late_time_column: Option<usize>,
        sliding: Option<SlidingExpansion>,
        mode: OutputMode,
        output_schema: SchemaRef,
        description: String,
        route: Vec<usize>,
    ) -> AggregateOp {
        let merge_is_exact = kernel.new_group_state().merge_is_exact();
        AggregateOp {
            op_id,
            kernel,
            inputs,
            kernel_schema,
            keys,
            event_time,
            late_time_column,
            sliding,
            mode,
            output_schema,
            description,
            fsync: true,
            input_batches_per_feed: 1,
            route,
            shards: vec![Shard::default()],
            slots: Vec::new(),
            distinct: None,
            merge_is_exact,
            partials: Vec::new(),
            fused_split: None,
            metrics: StateOperatorProgress {
                operator_name: "stateStoreSave".into(),
                num_shuffle_partitions: 1,
                num_state_store_instances: 1,
                ..Default::default()
            },
        }
    }

    /// Explain text.
    pub fn describe(&self) -> String {
        let expansion = match &self.sliding {
            Some(s) => format!(
                "\nExpandSlidingWindows size {} slide {} (one row per window, late windows dropped)",
                weir_plan::expr::format_duration(s.size_us),
                weir_plan::expr::format_duration(s.slide_us)
            ),
            None => String::new(),
        };
        let fused = match &self.fused_split {
            Some(f) => format!(
                "\nFusedExplodeSplit line column {} separator {:?}: words counted straight from the lines (no word column)",
                f.line_column, f.separator as char
            ),
            None => String::new(),
        };
        format!(
            "StatefulAggregate op={} mode={} [{}]{expansion}{fused}\n{}",
            self.op_id,
            self.mode,
            self.description,
            self.kernel.report().to_string().trim_end()
        )
    }

    /// Number of state shards.
    pub fn shard_count(&self) -> usize {
        self.shards.len()
    }

    /// Sets the number of state shards (the checkpoint pins it). A query whose grouping keys
    /// cannot route rows keeps one shard.
    pub fn set_shard_count(&mut self, n: usize) {
        let n = if self.route.is_empty() || self.distinct.is_some() {
            1
        } else {
            n.max(1)
        };
        self.shards = (0..n).map(|_| Shard::default()).collect();
        self.metrics.num_shuffle_partitions = n as u64;
        self.metrics.num_state_store_instances = n as u64;
    }

    /// Starts a batch. Its input is given piece by piece to [`Self::feed`] (so the stateless
    /// operators below need not hold the whole batch's rows at once); [`Self::finish`] ends it
    /// and returns the rows to emit.
    pub fn begin(&self) -> AggFeed {
        AggFeed {
            started: Instant::now(),
            dropped: 0,
            parts: vec![Vec::new(); self.shards.len()],
        }
    }

    /// Adds several input batches of the current batch, in order. With one state shard and
    /// exact merges (see [`GroupState::merge_is_exact`]) the batches update partial states on
    /// one thread each, which are then merged into the state in input order (Spark's partial
    /// aggregation, without a shuffle); otherwise they are fed one by one.
    pub fn feed_many(
        &mut self,
        feed: &mut AggFeed,
        batches: Vec<RecordBatch>,
        ctx: &BatchContext,
    ) -> Result<()> {
        let parallel = batches.len() > 1
            && self.shards.len() == 1
            && self.distinct.is_none()
            && self.merge_is_exact;
        if !parallel {
            return batches
                .into_iter()
                .try_for_each(|b| self.feed(feed, b, ctx));
        }
        let kernel = self.kernel.clone();
        // Taken out while the threads borrow the rest of the operator.
        let mut partials = std::mem::take(&mut self.partials);
        while partials.len() < batches.len() {
            partials.push(kernel.new_group_state());
        }
        let this = &*self;
        let outcomes: Vec<Result<(u64, bool)>> = std::thread::scope(|scope| {
            let handles: Vec<_> = batches
                .into_iter()
                .zip(partials.iter_mut())
                .map(|(batch, partial)| {
                    let kernel = &kernel;
                    scope.spawn(move || -> Result<(u64, bool)> {
                        partial.clear();
                        if let Some(fused) = &this.fused_split {
                            fused.count_words(vec![partial], &batch)?;
                            return Ok((0, true));
                        }
                        let (input, dropped) = this.kernel_input(batch, ctx)?;
                        let Some(input) = input else {
                            return Ok((dropped, false));
                        };
                        kernel.update(partial, &input)?;
                        Ok((dropped, true))
                    })
                })
                .collect();
            handles
                .into_iter()
                .map(|h| {
                    h.join().unwrap_or_else(|_| {
                        Err(Error::Internal("an aggregation thread panicked".into()))
                    })
                })
                .collect()
        });
        // Merged in input order, so first/last and the group order are those of one thread;
        // the first failure (in input order) ends the batch, as on the serial path.
        let state = self.shards[0]
            .state
            .get_or_insert_with(|| kernel.new_group_state());
        let mut result = Ok(());
        for (outcome, partial) in outcomes.into_iter().zip(&partials) {
            match outcome.and_then(|(dropped, used)| {
                feed.dropped += dropped;
                if used {
                    state.merge_from(partial)?;
                }
                Ok(())
            }) {
                Ok(()) => {}
                Err(e) => {
                    result = Err(e);
                    break;
                }
            }
        }
        self.partials = partials;
        result
    }

    /// Late rows dropped (or sliding windows expanded) and the kernel's input columns of one
    /// input batch; `None` when no row is left. Also returns the number of rows dropped as late.
    fn kernel_input(
        &self,
        batch: RecordBatch,
        ctx: &BatchContext,
    ) -> Result<(Option<RecordBatch>, u64)> {
        let (batch, dropped) = self.without_late_rows(batch, ctx)?;
        if batch.num_rows() == 0 {
            return Ok((None, dropped));
        }
        let ts_us = ctx.batch_timestamp_ms.saturating_mul(1000);
        let input = self.inputs.project(&batch, &self.kernel_schema, ts_us)?;
        Ok((Some(input), dropped))
    }

    /// The rows of `batch` not behind the watermark (a sliding window's rows expanded to one
    /// per window first), and how many were dropped.
    fn without_late_rows(
        &self,
        batch: RecordBatch,
        ctx: &BatchContext,
    ) -> Result<(RecordBatch, u64)> {
        let late_us = ctx.late_watermark_ms.saturating_mul(1000);
        if let Some(sl) = &self.sliding {
            let late = (ctx.late_watermark_ms > 0).then_some(late_us);
            return expand_sliding(&batch, sl, late);
        }
        match (self.late_time_column, self.event_time.as_ref()) {
            (Some(col), Some(et)) if ctx.late_watermark_ms > 0 => {
                drop_late(&batch, col, et.size_us, et.start_us, late_us)
            }
            _ => Ok((batch, 0)),
        }
    }

    /// Adds input rows of the current batch: late rows are dropped, the rest update the state
    /// now (one shard) or are routed to their shard's part (updated in parallel at the end).
    pub fn feed(
        &mut self,
        feed: &mut AggFeed,
        batch: RecordBatch,
        ctx: &BatchContext,
    ) -> Result<()> {
        if let Some(fused) = &self.fused_split {
            let kernel = self.kernel.clone();
            // Every shard (a restored checkpoint pins the count it was created with).
            let states: Vec<&mut GroupState> = self
                .shards
                .iter_mut()
                .map(|s| s.state.get_or_insert_with(|| kernel.new_group_state()))
                .collect();
            return fused.count_words(states, &batch);
        }
        let ts_us = ctx.batch_timestamp_ms.saturating_mul(1000);
        let shard_count = self.shards.len();
        let (batch, dropped) = self.without_late_rows(batch, ctx)?;
        feed.dropped += dropped;
        if batch.num_rows() == 0 {
            return Ok(());
        }
        if let Some(d) = &mut self.distinct {
            d.update(&batch, ts_us)?;
        }
        let input = self.inputs.project(&batch, &self.kernel_schema, ts_us)?;
        if shard_count == 1 {
            let kernel = self.kernel.clone();
            let state = self.shards[0]
                .state
                .get_or_insert_with(|| kernel.new_group_state());
            kernel.update(state, &input)?;
        } else {
            for (shard, part) in route_rows(&input, &self.route, shard_count)?
                .into_iter()
                .enumerate()
            {
                if part.num_rows() > 0 {
                    feed.parts[shard].push(part);
                }
            }
        }
        Ok(())
    }

    /// Ends the batch: updates the shards' parts in parallel, then emits and evicts by the
    /// output mode and the watermark; returns the rows to emit.
    pub fn finish(&mut self, feed: AggFeed, ctx: &BatchContext) -> Result<Vec<RecordBatch>> {
        let AggFeed {
            started: t_update,
            dropped,
            parts,
        } = feed;
        let shard_count = self.shards.len();
        let kernel = self.kernel.clone();
        let update = |shard: &mut Shard, batches: Vec<RecordBatch>| -> Result<()> {
            let state = shard.state.get_or_insert_with(|| kernel.new_group_state());
            for b in &batches {
                kernel.update(state, b)?;
            }
            Ok(())
        };
        if shard_count > 1 {
            std::thread::scope(|scope| {
                let handles: Vec<_> = self
                    .shards
                    .iter_mut()
                    .zip(parts)
                    .map(|(shard, batches)| scope.spawn(|| update(shard, batches)))
                    .collect();
                for h in handles {
                    h.join().map_err(|_| {
                        Error::Internal("an aggregation shard thread panicked".into())
                    })??;
                }
                Ok::<(), Error>(())
            })?;
        }
        let update_ms = t_update.elapsed().as_millis() as u64;

        // Decide what to emit and what to evict, shard by shard.
        let t_remove = Instant::now();
        let watermark_us = ctx.watermark_ms.saturating_mul(1000);
        let evict_enabled =
            self.mode != OutputMode::Complete && self.event_time.is_some() && ctx.watermark_ms > 0;
        let mut output = Vec::new();
        let (mut total, mut updated, mut removed) = (0u64, 0u64, 0u64);
        let mut memory = 0u64;
        for s in 0..shard_count {
            let kernel = self.kernel.clone();
            let state = self.shards[s]
                .state
                .get_or_insert_with(|| kernel.new_group_state());
            let mut dirty = state.take_dirty();
            dirty.sort_unstable();
            let expired: Vec<u32> = match (&self.event_time, evict_enabled) {
                (Some(et), true) => expired_groups(state, et.key, watermark_us, et.size_us)?,
                _ => Vec::new(),
            };
            let emit_gids: Vec<u32> = match self.mode {
                OutputMode::Complete => (0..state.num_groups() as u32).collect(),
                OutputMode::Update => dirty.clone(),
                OutputMode::Append => expired.clone(),
            };
            if !emit_gids.is_empty() {
                // Distinct counts are read now, before evicted groups drop their sketches.
                let raw = state.output(&emit_gids)?;
                output.push(Self::with_distinct_counts(
                    self.distinct.as_ref(),
                    &self.slots,
                    self.keys.len(),
                    &raw,
                )?);
            }
            // Changes for the state store: upserts of touched live groups, removal of evicted
            // keys; both read only those groups' rows (not the whole state).
            memory += state.memory_bytes() as u64;
            let expired_set: std::collections::HashSet<u32> = expired.iter().copied().collect();
            let upsert_ids: Vec<u32> = dirty
                .iter()
                .copied()
                .filter(|g| !expired_set.contains(g))
                .collect();
            let upserts = state.state_rows(&upsert_ids)?;
            let removals = state
                .state_rows(&expired)?
                .project(&(0..self.keys.len()).collect::<Vec<_>>())?;
            if !expired.is_empty() {
                state.remove(&expired)?;
                if let Some(d) = &mut self.distinct {
                    d.remove(removals.columns())?;
                }
            }
            total += state.num_groups() as u64;
            updated += upsert_ids.len() as u64;
            removed += expired.len() as u64;
            self.shards[s].pending = Some((upserts, removals));
        }
        let output = output
            .iter()
            .map(|raw| self.to_output(raw))
            .collect::<Result<Vec<_>>>()?;
        self.metrics.num_rows_total = total;
        self.metrics.num_rows_updated = updated;
        self.metrics.num_rows_removed = removed;
        self.metrics.memory_used_bytes = memory;
        self.metrics.num_rows_dropped_by_watermark = dropped;
        self.metrics.all_updates_time_ms = update_ms;
        self.metrics.all_removals_time_ms = t_remove.elapsed().as_millis() as u64;
        Ok(output)
    }

    /// Puts the aggregates in plan order: the kernel's, and the distinct counts of the same
    /// groups from the sketches.
    fn with_distinct_counts(
        distinct: Option<&super::distinct::DistinctSketches>,
        slots: &[AggSlot],
        k: usize,
        raw: &RecordBatch,
    ) -> Result<RecordBatch> {
        let Some(d) = distinct else {
            return Ok(raw.clone());
        };
        let keys: Vec<ArrayRef> = raw.columns()[..k].to_vec();
        let estimates = d.estimates(&keys)?;
        let mut columns = keys;
        let mut fields: Vec<Field> = raw.schema().fields()[..k]
            .iter()
            .map(|f| f.as_ref().clone())
            .collect();
        for (n, slot) in slots.iter().enumerate() {
            let col = match slot {
                AggSlot::Kernel(i) => raw.column(k + i).clone(),
                AggSlot::Distinct(j) => estimates[*j].clone(),
            };
            fields.push(Field::new(format!("a{n}"), col.data_type().clone(), true));
            columns.push(col);
        }
        let options = RecordBatchOptions::new().with_row_count(Some(raw.num_rows()));
        Ok(RecordBatch::try_new_with_options(
            Arc::new(Schema::new(fields)),
            columns,
            &options,
        )?)
    }

    /// Converts `GroupState::output` (keys then aggregates) to the plan's output schema.
    fn to_output(&self, raw: &RecordBatch) -> Result<RecordBatch> {
        let mut columns: Vec<ArrayRef> = Vec::with_capacity(self.output_schema.fields().len());
        for (i, kind) in self.keys.iter().enumerate() {
            let col = raw.column(i).clone();
            columns.push(match kind {
                KeyKind::Plain => col,
                KeyKind::Window { size_us } => {
                    let start = as_timestamp(&col)?;
                    let end: TimestampMicrosecondArray = start
                        .iter()
                        .map(|v| v.map(|s| s.saturating_add(*size_us)))
                        .collect::<TimestampMicrosecondArray>()
                        .with_timezone("UTC");
                    window_struct(Arc::new(start.with_timezone("UTC")), Arc::new(end))?
                }
            });
        }
        for j in self.keys.len()..raw.num_columns() {
            columns.push(raw.column(j).clone());
        }
        super::aggregate::fit_to_schema(columns, &self.output_schema, raw.num_rows())
    }

    /// Whether groups are evicted (and, in append mode, emitted) by the watermark.
    pub fn evicts_by_watermark(&self) -> bool {
        self.mode != OutputMode::Complete && self.event_time.is_some()
    }

    /// Loads every shard's state as of `version` from the checkpoint.
    pub fn restore(&mut self, state_root: &Path, version: u64, fsync: bool) -> Result<()> {
        if let Some(d) = &mut self.distinct {
            d.restore(state_root, version, fsync)?;
        }
        for s in 0..self.shards.len() {
            let batch = self.open_store(s, state_root, fsync)?.load(version)?;
            self.shards[s].state = Some(self.kernel.restore_group_state(&batch)?);
        }
        Ok(())
    }

    fn open_store(
        &mut self,
        shard: usize,
        state_root: &Path,
        fsync: bool,
    ) -> Result<&mut StateStore> {
        let keys = self.keys.len();
        let schema = self.kernel.new_group_state().state_schema();
        let slot = &mut self.shards[shard].store;
        if slot.is_none() {
            *slot = Some(StateStore::open(
                state_root,
                self.op_id,
                shard,
                schema,
                keys,
                StateStoreOptions {
                    fsync,
                    ..Default::default()
                },
            )?);
        }
        slot.as_mut()
            .ok_or_else(|| Error::Internal("state store missing".into()))
    }

    /// Commits every shard's changes of this batch as `version`.
    pub fn commit(&mut self, state_root: &Path, version: u64) -> Result<StateOperatorProgress> {
        let t = Instant::now();
        let fsync = self.fsync;
        for s in 0..self.shards.len() {
            let pending = self.shards[s].pending.take();
            // The full state is only needed for a snapshot (every 10 versions).
            let full = match &self.shards[s].state {
                Some(state) if version.is_multiple_of(10) => Some(state.to_record_batch()?),
                _ => None,
            };
            let store = self.open_store(s, state_root, fsync)?;
            let (upserts, removals) = match pending {
                Some(p) => p,
                None => {
                    let empty = RecordBatch::new_empty(Arc::new(Schema::empty()));
                    (empty.clone(), empty)
                }
            };
            store.commit(version, &upserts, &removals)?;
            if version.is_multiple_of(10) {
                if let Some(full) = &full {
                    store.maybe_snapshot(version, full)?;
                }
                store.purge()?;
            }
        }
        if let Some(d) = &mut self.distinct {
            d.commit(state_root, version, fsync)?;
        }
        self.metrics.commit_time_ms = t.elapsed().as_millis() as u64;
        Ok(self.metrics.clone())
    }
}

/// Splits a kernel-input batch by shard: a fixed-seed hash of the routing columns (the same in
/// every process, since shards own state on disk), modulo the shard count.
fn route_rows(batch: &RecordBatch, route: &[usize], shards: usize) -> Result<Vec<RecordBatch>> {
    let n = batch.num_rows();
    let mut hashes = vec![ROUTE_SEED; n];
    for &c in route {
        hash_column(batch.column(c), &mut hashes)?;
    }
    let mut indices: Vec<Vec<u32>> = vec![Vec::with_capacity(n / shards + 1); shards];
    for (row, h) in hashes.iter().enumerate() {
        indices[(h % shards as u64) as usize].push(row as u32);
    }
    indices
        .into_iter()
        .map(|idx| Ok(compute::take_record_batch(batch, &UInt32Array::from(idx))?))
        .collect()
}

/// The routing hash's starting value (one per row, before the routing columns fold in).
const ROUTE_SEED: u64 = 0x9e37_79b9_7f4a_7c15;

fn route_mix(a: u64, b: u64) -> u64 {
    let full = u128::from(a ^ 0x9e37_79b9_7f4a_7c15) * u128::from(b ^ 0xbf58_476d_1ce4_e5b9);
    (full as u64) ^ ((full >> 64) as u64)
}

/// Folds a non-NULL string into a routing hash (the fused word count routes each word with it
/// exactly as [`route_rows`] routes a row whose only routing column holds that word).
fn route_hash_str(h: u64, bytes: &[u8]) -> u64 {
    let mut x = route_mix(h, 0x5354_5200);
    for chunk in bytes.chunks(8) {
        let mut w = [0u8; 8];
        w[..chunk.len()].copy_from_slice(chunk);
        x = route_mix(x, u64::from_le_bytes(w));
    }
    x
}

/// Folds one column into per-row hashes (NULL hashes as a fixed word).
fn hash_column(col: &ArrayRef, hashes: &mut [u64]) -> Result<()> {
    use arrow::array::AsArray;
    use arrow::datatypes::{
        DataType as T, Date32Type, Int8Type, Int16Type, Int32Type, Int64Type,
        TimestampMicrosecondType, UInt8Type, UInt16Type, UInt32Type, UInt64Type,
    };
    let mix = route_mix;
    macro_rules! primitive {
        ($t:ty) => {{
            let a = col.as_primitive::<$t>();
            for (i, h) in hashes.iter_mut().enumerate() {
                let v = if a.is_null(i) {
                    0x6e75_6c6c
                } else {
                    a.value(i) as u64
                };
                *h = mix(*h, v);
            }
        }};
    }
    match col.data_type() {
        T::Int8 => primitive!(Int8Type),
        T::Int16 => primitive!(Int16Type),
        T::Int32 => primitive!(Int32Type),
        T::Int64 => primitive!(Int64Type),
        T::UInt8 => primitive!(UInt8Type),
        T::UInt16 => primitive!(UInt16Type),
        T::UInt32 => primitive!(UInt32Type),
        T::UInt64 => primitive!(UInt64Type),
        T::Date32 => primitive!(Date32Type),
        T::Timestamp(arrow::datatypes::TimeUnit::Microsecond, _) => {
            primitive!(TimestampMicrosecondType)
        }
        T::Utf8 | T::LargeUtf8 | T::Utf8View => {
            let strings = compute::cast(col, &T::Utf8)?;
            let a = strings.as_string::<i32>();
            for (i, h) in hashes.iter_mut().enumerate() {
                *h = if a.is_valid(i) {
                    route_hash_str(*h, a.value(i).as_bytes())
                } else {
                    mix(mix(*h, 0x5354_5200), 0x6e75_6c6c)
                };
            }
        }
        other => {
            return Err(Error::Internal(format!("a routing key of type {other}")));
        }
    }
    Ok(())
}

/// Whether rows can be routed to shards by a column of this type.
pub(crate) fn routable(t: &DataType) -> bool {
    t.is_integer()
        || matches!(
            t,
            DataType::Date32
                | DataType::Timestamp(arrow::datatypes::TimeUnit::Microsecond, _)
                | DataType::Utf8
                | DataType::LargeUtf8
                | DataType::Utf8View
        )
}

/// Builds an operator's output batch: each column cast to `schema`'s type where it differs,
/// every field nullable (aggregates of no values, windows of NULL event times).
pub(crate) fn fit_to_schema(
    columns: Vec<ArrayRef>,
    schema: &SchemaRef,
    rows: usize,
) -> Result<RecordBatch> {
    let columns = columns
        .into_iter()
        .zip(schema.fields())
        .map(|(c, f)| {
            if c.data_type() == f.data_type() {
                Ok(c)
            } else {
                Ok(compute::cast(&c, f.data_type())?)
            }
        })
        .collect::<Result<Vec<_>>>()?;
    let relaxed = Arc::new(Schema::new(
        schema
            .fields()
            .iter()
            .map(|f| f.as_ref().clone().with_nullable(true))
            .collect::<Vec<Field>>(),
    ));
    let options = RecordBatchOptions::new().with_row_count(Some(rows));
    Ok(RecordBatch::try_new_with_options(
        relaxed, columns, &options,
    )?)
}

/// Group ids whose event-time key ends at or before the watermark.
fn expired_groups(
    state: &GroupState,
    key: usize,
    watermark_us: i64,
    size_us: i64,
) -> Result<Vec<u32>> {
    if state.num_groups() == 0 {
        return Ok(Vec::new());
    }
    let col = state.key_column(key);
    let ts = as_timestamp(&col)?;
    Ok(ts
        .iter()
        .enumerate()
        .filter_map(|(gid, v)| match v {
            Some(start) if start.saturating_add(size_us) <= watermark_us => Some(gid as u32),
            _ => None,
        })
        .collect())
}

fn as_timestamp(col: &ArrayRef) -> Result<TimestampMicrosecondArray> {
    match col.data_type() {
        DataType::Timestamp(arrow::datatypes::TimeUnit::Microsecond, _) => Ok(col
            .as_any()
            .downcast_ref::<TimestampMicrosecondArray>()
            .cloned()
            .ok_or_else(|| Error::Internal("timestamp key".into()))?),
        DataType::Int64 => {
            let c = compute::cast(col, &timestamp_type())?;
            Ok(c.as_any()
                .downcast_ref::<TimestampMicrosecondArray>()
                .cloned()
                .ok_or_else(|| Error::Internal("timestamp key".into()))?)
        }
        other => Err(Error::Internal(format!(
            "an event-time key of type {other}"
        ))),
    }
}

/// Drops rows whose window (or event time, when `size_us` is 0) ends at or before `late_us`.
fn drop_late(
    batch: &RecordBatch,
    column: usize,
    size_us: i64,
    start_us: i64,
    late_us: i64,
) -> Result<(RecordBatch, u64)> {
    let ts = as_timestamp(batch.column(column))?;
    let on_time = |t: i64| {
        if size_us == 0 {
            return t > late_us;
        }
        let start = t.saturating_sub(t.saturating_sub(start_us).rem_euclid(size_us));
        start.saturating_add(size_us) > late_us
    };
    // A window's end never decreases with the time, so when the earliest row is on time every
    // row is (the usual case): no per-row pass, no copy.
    match compute::min(&ts) {
        Some(earliest) if !on_time(earliest) => {}
        _ => return Ok((batch.clone(), 0)),
    }
    let mut dropped = 0u64;
    let keep: BooleanArray = ts
        .iter()
        .map(|v| {
            let keep = v.is_none_or(on_time);
            if !keep {
                dropped += 1;
            }
            Some(keep)
        })
        .collect();
    if dropped == 0 {
        return Ok((batch.clone(), 0));
    }
    Ok((compute::filter_record_batch(batch, &keep)?, dropped))
}

/// Expands each row into one row per sliding window containing it, with the window start as an
/// extra last column `__window_start`; windows ending at or before `late_us` are dropped.
fn expand_sliding(
    batch: &RecordBatch,
    sl: &SlidingExpansion,
    late_us: Option<i64>,
) -> Result<(RecordBatch, u64)> {
    let ts = as_timestamp(batch.column(sl.time_column))?;
    let mut indices: Vec<u32> = Vec::with_capacity(ts.len() * 2);
    let mut starts: Vec<Option<i64>> = Vec::with_capacity(ts.len() * 2);
    let mut dropped_rows = 0u64;
    for (row, v) in ts.iter().enumerate() {
        let Some(t) = v else {
            continue; // Spark: a NULL event time belongs to no window.
        };
        let mut kept_any = false;
        let mut late_any = false;
        // Latest window start <= t, aligned to start_us + k * slide.
        let last = t - (t - sl.start_us).rem_euclid(sl.slide_us);
        let mut start = last;
        while start > t - sl.size_us {
            let late = late_us.is_some_and(|w| start.saturating_add(sl.size_us) <= w);
            if late {
                late_any = true;
            } else {
                indices.push(row as u32);
                starts.push(Some(start));
                kept_any = true;
            }
            start -= sl.slide_us;
        }
        if late_any && !kept_any {
            dropped_rows += 1;
        }
    }
    let taken = compute::take_record_batch(batch, &UInt32Array::from(indices))?;
    let start_col: ArrayRef =
        Arc::new(TimestampMicrosecondArray::from(starts).with_timezone("UTC"));
    let mut fields: Vec<Field> = batch
        .schema()
        .fields()
        .iter()
        .map(|f| f.as_ref().clone())
        .collect();
    fields.push(Field::new("__window_start", timestamp_type(), true));
    let mut cols = taken.columns().to_vec();
    cols.push(start_col);
    let options = RecordBatchOptions::new().with_row_count(Some(taken.num_rows()));
    Ok((
        RecordBatch::try_new_with_options(Arc::new(Schema::new(fields)), cols, &options)?,
        dropped_rows,
    ))
}
