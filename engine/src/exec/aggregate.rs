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
    state: Option<GroupState>,
    store: Option<StateStore>,
    pending: Option<(RecordBatch, RecordBatch)>,
    metrics: StateOperatorProgress,
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
    ) -> AggregateOp {
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
            state: None,
            store: None,
            pending: None,
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
        format!(
            "StatefulAggregate op={} mode={} [{}]{expansion}\n{}",
            self.op_id,
            self.mode,
            self.description,
            self.kernel.report().to_string().trim_end()
        )
    }

    fn state_mut(&mut self) -> Result<&mut GroupState> {
        if self.state.is_none() {
            self.state = Some(self.kernel.new_group_state());
        }
        self.state
            .as_mut()
            .ok_or_else(|| Error::Internal("group state missing".into()))
    }

    /// Runs one batch: returns the rows to emit.
    pub fn process(&mut self, rows: Vec<RecordBatch>, ctx: &BatchContext) -> Result<Vec<RecordBatch>> {
        let t_update = Instant::now();
        let late_us = ctx.late_watermark_ms.saturating_mul(1000);
        let mut dropped = 0u64;
        let ts_us = ctx.batch_timestamp_ms.saturating_mul(1000);
        for batch in rows {
            let batch = if let Some(sl) = self.sliding.clone() {
                let (b, d) = expand_sliding(&batch, &sl, if ctx.late_watermark_ms > 0 { Some(late_us) } else { None })?;
                dropped += d;
                b
            } else if let (Some(col), Some(et), true) =
                (self.late_time_column, self.event_time.as_ref(), ctx.late_watermark_ms > 0)
            {
                let (b, d) = drop_late(&batch, col, et.size_us, et.start_us, late_us)?;
                dropped += d;
                b
            } else {
                batch
            };
            if batch.num_rows() == 0 {
                continue;
            }
            let input = self.inputs.project(&batch, &self.kernel_schema, ts_us)?;
            let kernel = self.kernel.clone();
            kernel.update(self.state_mut()?, &input)?;
        }
        let update_ms = t_update.elapsed().as_millis() as u64;

        // Decide what to emit and what to evict.
        let t_remove = Instant::now();
        let watermark_us = ctx.watermark_ms.saturating_mul(1000);
        let evict_enabled = self.mode != OutputMode::Complete && self.event_time.is_some() && ctx.watermark_ms > 0;
        let event_time = self.event_time.clone();
        let state = self.state_mut()?;
        let mut dirty = state.take_dirty();
        dirty.sort_unstable();
        let expired: Vec<u32> = match (&event_time, evict_enabled) {
            (Some(et), true) => expired_groups(state, et.key, watermark_us, et.size_us)?,
            _ => Vec::new(),
        };
        let mode = self.mode;
        let state = self.state_mut()?;
        let emit_gids: Vec<u32> = match mode {
            OutputMode::Complete => (0..state.num_groups() as u32).collect(),
            OutputMode::Update => dirty.clone(),
            OutputMode::Append => expired.clone(),
        };
        let output = if emit_gids.is_empty() {
            Vec::new()
        } else {
            let raw = state.output(&emit_gids)?;
            vec![self.to_output(&raw)?]
        };

        // Changes for the state store: upserts of touched live groups, removal of evicted keys.
        let state = self.state_mut()?;
        let full = state.to_record_batch()?;
        let expired_set: std::collections::HashSet<u32> = expired.iter().copied().collect();
        let upsert_ids: Vec<u32> = dirty.iter().copied().filter(|g| !expired_set.contains(g)).collect();
        let upserts = compute::take_record_batch(&full, &UInt32Array::from(upsert_ids.clone()))?;
        let key_count = self.keys.len();
        let keys_only = full.project(&(0..key_count).collect::<Vec<_>>())?;
        let removals = compute::take_record_batch(&keys_only, &UInt32Array::from(expired.clone()))?;
        if !expired.is_empty() {
            self.state_mut()?.remove(&expired)?;
        }
        let removal_ms = t_remove.elapsed().as_millis() as u64;
        self.pending = Some((upserts, removals));
        let total = self.state.as_ref().map_or(0, |s| s.num_groups()) as u64;
        self.metrics.num_rows_total = total;
        self.metrics.num_rows_updated = upsert_ids.len() as u64;
        self.metrics.num_rows_removed = expired.len() as u64;
        self.metrics.num_rows_dropped_by_watermark = dropped;
        self.metrics.all_updates_time_ms = update_ms;
        self.metrics.all_removals_time_ms = removal_ms;
        Ok(output)
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
        let columns = columns
            .into_iter()
            .zip(self.output_schema.fields())
            .map(|(c, f)| {
                if c.data_type() == f.data_type() {
                    Ok(c)
                } else {
                    Ok(compute::cast(&c, f.data_type())?)
                }
            })
            .collect::<Result<Vec<_>>>()?;
        let relaxed = Arc::new(Schema::new(
            self.output_schema
                .fields()
                .iter()
                .map(|f| f.as_ref().clone().with_nullable(true))
                .collect::<Vec<Field>>(),
        ));
        let options = RecordBatchOptions::new().with_row_count(Some(raw.num_rows()));
        Ok(RecordBatch::try_new_with_options(relaxed, columns, &options)?)
    }

    /// Whether groups are evicted (and, in append mode, emitted) by the watermark.
    pub fn evicts_by_watermark(&self) -> bool {
        self.mode != OutputMode::Complete && self.event_time.is_some()
    }

    /// Loads the state as of `version` from the checkpoint.
    pub fn restore(&mut self, state_root: &Path, version: u64, fsync: bool) -> Result<()> {
        let store = self.open_store(state_root, fsync)?;
        let batch = store.load(version)?;
        self.state = Some(self.kernel.restore_group_state(&batch)?);
        Ok(())
    }

    fn open_store(&mut self, state_root: &Path, fsync: bool) -> Result<&mut StateStore> {
        if self.store.is_none() {
            let schema = self.kernel.new_group_state().state_schema();
            let store = StateStore::open(
                state_root,
                self.op_id,
                0,
                schema,
                self.keys.len(),
                StateStoreOptions {
                    fsync,
                    ..Default::default()
                },
            )?;
            self.store = Some(store);
        }
        self.store
            .as_mut()
            .ok_or_else(|| Error::Internal("state store missing".into()))
    }

    /// Commits this batch's state changes as `version`.
    pub fn commit(&mut self, state_root: &Path, version: u64) -> Result<StateOperatorProgress> {
        let t = Instant::now();
        let pending = self.pending.take();
        let full = if version.is_multiple_of(10) {
            Some(self.state_mut()?.to_record_batch()?)
        } else {
            None
        };
        let fsync = self.fsync;
        let store = self.open_store(state_root, fsync)?;
        let (upserts, removals) = match pending {
            Some(p) => p,
            None => {
                let empty = RecordBatch::new_empty(Arc::new(Schema::empty()));
                (empty.clone(), empty)
            }
        };
        store.commit(version, &upserts, &removals)?;
        if let Some(full) = full {
            store.maybe_snapshot(version, &full)?;
        }
        if version.is_multiple_of(10) {
            store.purge()?;
        }
        self.metrics.commit_time_ms = t.elapsed().as_millis() as u64;
        self.metrics.memory_used_bytes = self
            .state
            .as_ref()
            .and_then(|s| s.to_record_batch().ok())
            .map_or(0, |b| b.get_array_memory_size() as u64);
        Ok(self.metrics.clone())
    }
}

/// Group ids whose event-time key ends at or before the watermark.
fn expired_groups(state: &GroupState, key: usize, watermark_us: i64, size_us: i64) -> Result<Vec<u32>> {
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
        other => Err(Error::Internal(format!("an event-time key of type {other}"))),
    }
}

/// Drops rows whose window (or event time, when `size_us` is 0) ends at or before `late_us`.
fn drop_late(batch: &RecordBatch, column: usize, size_us: i64, start_us: i64, late_us: i64) -> Result<(RecordBatch, u64)> {
    let ts = as_timestamp(batch.column(column))?;
    let mut dropped = 0u64;
    let keep: BooleanArray = ts
        .iter()
        .map(|v| {
            let keep = match v {
                None => true,
                Some(t) if size_us == 0 => t > late_us,
                Some(t) => {
                    let start = t - (t - start_us).rem_euclid(size_us);
                    start.saturating_add(size_us) > late_us
                }
            };
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
fn expand_sliding(batch: &RecordBatch, sl: &SlidingExpansion, late_us: Option<i64>) -> Result<(RecordBatch, u64)> {
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
    let start_col: ArrayRef = Arc::new(TimestampMicrosecondArray::from(starts).with_timezone("UTC"));
    let mut fields: Vec<Field> = batch.schema().fields().iter().map(|f| f.as_ref().clone()).collect();
    fields.push(Field::new("__window_start", timestamp_type(), true));
    let mut cols = taken.columns().to_vec();
    cols.push(start_col);
    let options = RecordBatchOptions::new().with_row_count(Some(taken.num_rows()));
    Ok((
        RecordBatch::try_new_with_options(Arc::new(Schema::new(fields)), cols, &options)?,
        dropped_rows,
    ))
}
