//! Streaming aggregation over session windows (`session_window(ts, gap)` with a fixed gap), after
//! Spark's SessionWindowStateStoreRestoreExec / MergingSessionsExec / SessionWindowStateStoreSaveExec.
//!
//! Owns one session-window aggregation: the stage that filters and projects its input (the other
//! grouping keys, the event time, the aggregate arguments), dropping late rows, the buffer of the
//! rows still in open sessions (persisted through [`crate::state::StateStore`], keyed by a row
//! sequence number), cutting the buffer into sessions per key, choosing the sessions to emit for
//! the output mode, and evicting them. The aggregates of emitted sessions are computed by a
//! weir-jit aggregation kernel grouped by the keys and the session bounds, so they share the code
//! path of [`super::aggregate`]. It must not decide when batches run or touch other operators'
//! state.
//!
//! Semantics (checked against Spark 4.3): a row starts the session `[t, t + gap)`; two sessions of
//! a key merge when they overlap or touch (an event exactly `gap` after the previous one joins
//! its session); a row is late when `t + gap <= ` the previous batch's watermark, in every output
//! mode; append mode emits and evicts a session once its end is at or behind the current
//! watermark; complete mode emits every session in every batch and evicts nothing.

use std::path::Path;
use std::sync::Arc;
use std::time::Instant;

use arrow::array::{
    Array, ArrayRef, BooleanArray, Int64Array, RecordBatch, TimestampMicrosecondArray, UInt32Array,
};
use arrow::compute;
use arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use arrow::row::{RowConverter, SortField};
use weir_jit::CompiledKernel;
use weir_plan::OutputMode;

use super::BatchContext;
use super::lower::{KernelInputs, timestamp_type, window_struct};
use super::map::MapStage;
use crate::error::{Error, Result};
use crate::query::progress::StateOperatorProgress;
use crate::state::{StateStore, StateStoreOptions};

/// Name of the state column holding each buffered row's sequence number (the state key).
const SEQ_COLUMN: &str = "__seq";
/// Names of the session bounds columns fed to the aggregation kernel.
pub(crate) const SESSION_START_COLUMN: &str = "__session_start";
pub(crate) const SESSION_END_COLUMN: &str = "__session_end";

/// How the operator's input maps onto its buffered rows and its aggregation kernel.
pub(crate) struct SessionLayout {
    /// Filters and projects the input to `[key_0 .. key_{n-1}, event_time, arg_0 .. arg_{m-1}]`.
    pub stage: MapStage,
    /// Number of grouping keys besides the session window.
    pub plain_keys: usize,
    /// Position of `session_window` among the grouping expressions.
    pub session_position: usize,
    /// The fixed gap, µs.
    pub gap_us: i64,
    /// Whether the event time carries a watermark (late rows are dropped only then).
    pub watermarked: bool,
}

/// The aggregation kernel over emitted rows: input `[keys.., session start, session end, args..]`,
/// grouped by the keys and both bounds.
pub(crate) struct SessionKernel {
    pub kernel: Arc<CompiledKernel>,
    pub inputs: KernelInputs,
    pub kernel_schema: SchemaRef,
}

/// One key's session among the sorted buffered rows.
#[derive(Clone, Copy, Debug)]
struct Session {
    start_us: i64,
    end_us: i64,
    /// Whether a row of this batch is in the session.
    touched: bool,
}

/// The buffer sorted by key and event time, cut into sessions.
struct Sessionized {
    rows: RecordBatch,
    sessions: Vec<Session>,
    /// Index into `sessions` for each row of `rows`.
    row_session: Vec<usize>,
}

/// One session-window aggregation.
pub(crate) struct SessionWindowOp {
    pub op_id: usize,
    pub fsync: bool,
    layout: SessionLayout,
    agg: SessionKernel,
    mode: OutputMode,
    output_schema: SchemaRef,
    description: String,
    /// `[__seq, keys.., event time, args..]`; the first column is the state key.
    state_schema: SchemaRef,
    /// Rows of open sessions (append) or of every session (complete).
    buffer: RecordBatch,
    next_seq: i64,
    /// The earliest end among the sessions left in the buffer, µs.
    min_open_end_us: Option<i64>,
    open_sessions: u64,
    store: Option<StateStore>,
    pending: Option<(RecordBatch, RecordBatch)>,
    metrics: StateOperatorProgress,
}

impl SessionWindowOp {
    /// A session-window aggregation emitting rows of `output_schema` (the aggregate's schema).
    pub fn new(
        op_id: usize,
        layout: SessionLayout,
        agg: SessionKernel,
        mode: OutputMode,
        output_schema: SchemaRef,
        description: String,
    ) -> SessionWindowOp {
        let mut fields = vec![Field::new(SEQ_COLUMN, DataType::Int64, false)];
        fields.extend(
            layout
                .stage
                .output_schema
                .fields()
                .iter()
                .map(|f| Field::new(f.name(), f.data_type().clone(), true)),
        );
        let state_schema = Arc::new(Schema::new(fields));
        SessionWindowOp {
            op_id,
            fsync: true,
            buffer: RecordBatch::new_empty(state_schema.clone()),
            state_schema,
            layout,
            agg,
            mode,
            output_schema,
            description,
            next_seq: 0,
            min_open_end_us: None,
            open_sessions: 0,
            store: None,
            pending: None,
            metrics: StateOperatorProgress {
                operator_name: "sessionWindowStateStoreSaveExec".into(),
                num_shuffle_partitions: 1,
                num_state_store_instances: 1,
                ..Default::default()
            },
        }
    }

    /// Explain text.
    pub fn describe(&self) -> String {
        format!(
            "SessionWindowAggregate op={} mode={} gap={}us [{}]\n{}\n{}",
            self.op_id,
            self.mode,
            self.layout.gap_us,
            self.description,
            self.layout.stage.describe().trim_end(),
            self.agg.kernel.report().to_string().trim_end()
        )
    }

    /// Column of the event time in the state schema.
    fn time_column(&self) -> usize {
        1 + self.layout.plain_keys
    }

    /// Runs one batch: returns the rows to emit.
    pub fn process(
        &mut self,
        rows: Vec<RecordBatch>,
        ctx: &BatchContext,
    ) -> Result<Vec<RecordBatch>> {
        let t_update = Instant::now();
        let projected = self.layout.stage.run(rows, ctx)?;
        let late_us = (self.layout.watermarked && ctx.late_watermark_ms > 0)
            .then(|| ctx.late_watermark_ms.saturating_mul(1000));
        let first_new_seq = self.next_seq;
        let mut parts = vec![self.buffer.clone()];
        let mut dropped = 0u64;
        for batch in projected {
            let (kept, late) = self.keep_on_time(&batch, late_us)?;
            dropped += late;
            if kept.num_rows() > 0 {
                parts.push(self.with_sequence_numbers(&kept)?);
            }
        }
        let all = compute::concat_batches(&self.state_schema, &parts)?;
        let cut = self.sessionize(&all, first_new_seq)?;
        let update_ms = t_update.elapsed().as_millis() as u64;

        let t_remove = Instant::now();
        let watermark_us = ctx.watermark_ms.saturating_mul(1000);
        let evicting =
            self.mode == OutputMode::Append && self.layout.watermarked && ctx.watermark_ms > 0;
        let emit: Vec<bool> = cut
            .sessions
            .iter()
            .map(|s| match self.mode {
                OutputMode::Complete => true,
                _ => evicting && s.end_us <= watermark_us,
            })
            .collect();
        let output = self.aggregate_sessions(&cut, &emit, ctx)?;

        // In append mode emitted sessions leave the state; complete mode keeps everything.
        let evict: Vec<bool> = if self.mode == OutputMode::Complete {
            vec![false; cut.sessions.len()]
        } else {
            emit.clone()
        };
        let keep_mask: BooleanArray = cut.row_session.iter().map(|s| Some(!evict[*s])).collect();
        let remaining = compute::filter_record_batch(&cut.rows, &keep_mask)?;
        let seqs = sequence_numbers(&cut.rows)?;
        let new_mask: BooleanArray = (0..cut.rows.num_rows())
            .map(|i| Some(!evict[cut.row_session[i]] && seqs.value(i) >= first_new_seq))
            .collect();
        let upserts = compute::filter_record_batch(&cut.rows, &new_mask)?;
        let removed_mask: BooleanArray = (0..cut.rows.num_rows())
            .map(|i| Some(evict[cut.row_session[i]] && seqs.value(i) < first_new_seq))
            .collect();
        let removals = compute::filter_record_batch(&cut.rows.project(&[0])?, &removed_mask)?;
        self.pending = Some((upserts, removals));

        let open: Vec<&Session> = cut
            .sessions
            .iter()
            .zip(&evict)
            .filter(|(_, e)| !**e)
            .map(|(s, _)| s)
            .collect();
        self.min_open_end_us = open.iter().map(|s| s.end_us).min();
        self.open_sessions = open.len() as u64;
        self.buffer = remaining;
        self.metrics.num_rows_total = self.open_sessions;
        self.metrics.num_rows_updated = cut.sessions.iter().filter(|s| s.touched).count() as u64;
        self.metrics.num_rows_removed = evict.iter().filter(|e| **e).count() as u64;
        self.metrics.num_rows_dropped_by_watermark = dropped;
        self.metrics.all_updates_time_ms = update_ms;
        self.metrics.all_removals_time_ms = t_remove.elapsed().as_millis() as u64;
        Ok(output)
    }

    /// Drops rows without an event time (they belong to no session) and late rows, whose
    /// session `[t, t + gap)` ends at or before `late_us`; returns the kept rows and the number
    /// of late rows.
    fn keep_on_time(
        &self,
        batch: &RecordBatch,
        late_us: Option<i64>,
    ) -> Result<(RecordBatch, u64)> {
        let times = timestamps(batch.column(self.layout.plain_keys))?;
        let gap = self.layout.gap_us;
        let mut late = 0u64;
        let keep: BooleanArray = times
            .iter()
            .map(|t| {
                Some(match (t, late_us) {
                    (None, _) => false,
                    (Some(t), Some(w)) if t.saturating_add(gap) <= w => {
                        late += 1;
                        false
                    }
                    _ => true,
                })
            })
            .collect();
        Ok((compute::filter_record_batch(batch, &keep)?, late))
    }

    /// Prepends fresh sequence numbers to projected rows, giving a batch of the state schema.
    fn with_sequence_numbers(&mut self, batch: &RecordBatch) -> Result<RecordBatch> {
        let n = batch.num_rows() as i64;
        let seq: ArrayRef = Arc::new(Int64Array::from_iter_values(
            self.next_seq..self.next_seq + n,
        ));
        self.next_seq += n;
        let mut columns = vec![seq];
        columns.extend(batch.columns().iter().cloned());
        Ok(RecordBatch::try_new(self.state_schema.clone(), columns)?)
    }

    /// Sorts rows by key, event time and sequence number and cuts them into sessions: a row
    /// joins the current session of its key when its time is at or before the session's end.
    fn sessionize(&self, rows: &RecordBatch, first_new_seq: i64) -> Result<Sessionized> {
        let keys = self.layout.plain_keys;
        let mut sort_columns: Vec<compute::SortColumn> = (1..=keys + 1)
            .map(|i| compute::SortColumn {
                values: rows.column(i).clone(),
                options: None,
            })
            .collect();
        sort_columns.push(compute::SortColumn {
            values: rows.column(0).clone(),
            options: None,
        });
        let sorted = if rows.num_rows() > 1 {
            let order = compute::lexsort_to_indices(&sort_columns, None)?;
            compute::take_record_batch(rows, &order)?
        } else {
            rows.clone()
        };
        let key_columns: Vec<ArrayRef> = (1..=keys).map(|i| sorted.column(i).clone()).collect();
        let converter = RowConverter::new(
            key_columns
                .iter()
                .map(|c| SortField::new(c.data_type().clone()))
                .collect(),
        )?;
        let encoded = converter.convert_columns(&key_columns)?;
        let times = timestamps(sorted.column(self.time_column()))?;
        let seqs = sequence_numbers(&sorted)?;
        let gap = self.layout.gap_us;
        let mut sessions: Vec<Session> = Vec::new();
        let mut row_session = Vec::with_capacity(sorted.num_rows());
        for i in 0..sorted.num_rows() {
            let t = times.value(i);
            let is_new = seqs.value(i) >= first_new_seq;
            let same_key = i > 0 && (keys == 0 || encoded.row(i) == encoded.row(i - 1));
            match sessions.last_mut() {
                Some(s) if same_key && t <= s.end_us => {
                    s.end_us = s.end_us.max(t.saturating_add(gap));
                    s.touched |= is_new;
                }
                _ => sessions.push(Session {
                    start_us: t,
                    end_us: t.saturating_add(gap),
                    touched: is_new,
                }),
            }
            row_session.push(sessions.len() - 1);
        }
        Ok(Sessionized {
            rows: sorted,
            sessions,
            row_session,
        })
    }

    /// Aggregates the rows of the sessions marked in `emit`, in the plan's output schema.
    fn aggregate_sessions(
        &self,
        cut: &Sessionized,
        emit: &[bool],
        ctx: &BatchContext,
    ) -> Result<Vec<RecordBatch>> {
        let indices: Vec<u32> = (0..cut.rows.num_rows())
            .filter(|i| emit[cut.row_session[*i]])
            .map(|i| i as u32)
            .collect();
        if indices.is_empty() {
            return Ok(Vec::new());
        }
        let indices = UInt32Array::from(indices);
        let rows = compute::take_record_batch(&cut.rows, &indices)?;
        let bounds = |pick: fn(&Session) -> i64| -> ArrayRef {
            Arc::new(
                indices
                    .values()
                    .iter()
                    .map(|i| Some(pick(&cut.sessions[cut.row_session[*i as usize]])))
                    .collect::<TimestampMicrosecondArray>()
                    .with_timezone("UTC"),
            )
        };
        let keys = self.layout.plain_keys;
        let mut fields: Vec<Field> = Vec::new();
        let mut columns: Vec<ArrayRef> = Vec::new();
        for i in 1..=keys {
            fields.push(self.state_schema.field(i).clone());
            columns.push(rows.column(i).clone());
        }
        fields.push(Field::new(SESSION_START_COLUMN, timestamp_type(), true));
        columns.push(bounds(|s| s.start_us));
        fields.push(Field::new(SESSION_END_COLUMN, timestamp_type(), true));
        columns.push(bounds(|s| s.end_us));
        for i in self.time_column() + 1..rows.num_columns() {
            fields.push(self.state_schema.field(i).clone());
            columns.push(rows.column(i).clone());
        }
        let emitted = RecordBatch::try_new(Arc::new(Schema::new(fields)), columns)?;
        let input = self.agg.inputs.project(
            &emitted,
            &self.agg.kernel_schema,
            ctx.batch_timestamp_ms.saturating_mul(1000),
        )?;
        let mut state = self.agg.kernel.new_group_state();
        self.agg.kernel.update(&mut state, &input)?;
        let raw = state.output_all()?;
        Ok(vec![self.to_output(&raw)?])
    }

    /// Converts the kernel's output (keys, session start, session end, aggregates) to the plan's
    /// output schema, with the session as `struct<start, end>` at its grouping position.
    fn to_output(&self, raw: &RecordBatch) -> Result<RecordBatch> {
        let keys = self.layout.plain_keys;
        let session = window_struct(raw.column(keys).clone(), raw.column(keys + 1).clone())?;
        let mut columns: Vec<ArrayRef> = Vec::with_capacity(self.output_schema.fields().len());
        let mut plain = 0;
        for position in 0..=keys {
            if position == self.layout.session_position {
                columns.push(session.clone());
            } else {
                columns.push(raw.column(plain).clone());
                plain += 1;
            }
        }
        columns.extend(raw.columns()[keys + 2..].iter().cloned());
        if columns.len() != self.output_schema.fields().len() {
            return Err(Error::Internal(format!(
                "session aggregation produced {} columns for an output of {}",
                columns.len(),
                self.output_schema.fields().len()
            )));
        }
        super::aggregate::fit_to_schema(columns, &self.output_schema, raw.num_rows())
    }

    /// Whether sessions are closed (emitted and evicted) by the watermark.
    pub fn evicts_by_watermark(&self) -> bool {
        self.mode == OutputMode::Append && self.layout.watermarked
    }

    fn open_store(&mut self, state_root: &Path, fsync: bool) -> Result<&mut StateStore> {
        if self.store.is_none() {
            self.store = Some(StateStore::open(
                state_root,
                self.op_id,
                0,
                self.state_schema.clone(),
                1,
                StateStoreOptions {
                    fsync,
                    ..Default::default()
                },
            )?);
        }
        self.store
            .as_mut()
            .ok_or_else(|| Error::Internal("state store missing".into()))
    }

    /// Loads the buffered rows as of `version` from the checkpoint.
    pub fn restore(&mut self, state_root: &Path, version: u64, fsync: bool) -> Result<()> {
        let loaded = self.open_store(state_root, fsync)?.load(version)?;
        let buffer = RecordBatch::try_new(self.state_schema.clone(), loaded.columns().to_vec())?;
        let seqs = sequence_numbers(&buffer)?;
        self.next_seq = compute::max(&seqs).map_or(0, |m| m.saturating_add(1));
        let cut = self.sessionize(&buffer, self.next_seq)?;
        self.min_open_end_us = cut.sessions.iter().map(|s| s.end_us).min();
        self.open_sessions = cut.sessions.len() as u64;
        self.buffer = cut.rows;
        Ok(())
    }

    /// Commits this batch's new and evicted rows as `version`.
    pub fn commit(&mut self, state_root: &Path, version: u64) -> Result<StateOperatorProgress> {
        let t = Instant::now();
        let (upserts, removals) = match self.pending.take() {
            Some(p) => p,
            None => {
                let empty = RecordBatch::new_empty(Arc::new(Schema::empty()));
                (empty.clone(), empty)
            }
        };
        let full = version.is_multiple_of(10).then(|| self.buffer.clone());
        let fsync = self.fsync;
        let store = self.open_store(state_root, fsync)?;
        store.commit(version, &upserts, &removals)?;
        if let Some(full) = full {
            store.maybe_snapshot(version, &full)?;
            store.purge()?;
        }
        self.metrics.commit_time_ms = t.elapsed().as_millis() as u64;
        self.metrics.memory_used_bytes = self.buffer.get_array_memory_size() as u64;
        Ok(self.metrics.clone())
    }
}

fn sequence_numbers(rows: &RecordBatch) -> Result<Int64Array> {
    rows.column(0)
        .as_any()
        .downcast_ref::<Int64Array>()
        .cloned()
        .ok_or_else(|| Error::Internal("session buffer sequence column".into()))
}

fn timestamps(col: &ArrayRef) -> Result<TimestampMicrosecondArray> {
    col.as_any()
        .downcast_ref::<TimestampMicrosecondArray>()
        .cloned()
        .ok_or_else(|| {
            Error::Unsupported(format!(
                "the time of a session_window must be a TIMESTAMP, found {}",
                col.data_type()
            ))
        })
}
