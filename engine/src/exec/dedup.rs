//! Stateful deduplication (`dropDuplicates`, with or without a watermark, and
//! `dropDuplicatesWithinWatermark`).
//!
//! Owns the set of keys seen (as arrow-row encoded bytes, so any key type works), the choice of
//! which rows pass, eviction behind the watermark, and the state-store delta of each batch. It
//! does not evaluate expressions: keys are input columns.

use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;
use std::time::Instant;

use arrow::array::{
    Array, ArrayRef, BooleanArray, Int64Array, RecordBatch, TimestampMicrosecondArray,
};
use arrow::compute;
use arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use arrow::row::{RowConverter, SortField};

use super::BatchContext;
use crate::error::{Error, Result};
use crate::query::progress::StateOperatorProgress;
use crate::state::{StateStore, StateStoreOptions};

/// Name of the state column holding a key's expiry (event time, or event time + delay), µs.
const EXPIRY_COLUMN: &str = "__expiry_us";

/// How event time bounds the state.
#[derive(Clone, Debug)]
pub(crate) struct DedupWatermark {
    /// Event-time column in the input.
    pub time_column: usize,
    /// For `dropDuplicatesWithinWatermark`: the delay added to a key's first event time.
    /// For `dropDuplicates` with the event time among the keys: 0.
    pub expiry_delay_us: i64,
}

/// One deduplication operator.
pub(crate) struct DedupOp {
    pub op_id: usize,
    pub key_columns: Vec<usize>,
    pub watermark: Option<DedupWatermark>,
    pub description: String,
    pub fsync: bool,
    state_schema: SchemaRef,
    converter: RowConverter,
    seen: HashMap<Box<[u8]>, Option<i64>>,
    store: Option<StateStore>,
    pending_upserts: Vec<(Box<[u8]>, Option<i64>)>,
    pending_removals: Vec<Box<[u8]>>,
    metrics: StateOperatorProgress,
}

impl DedupOp {
    pub fn new(
        op_id: usize,
        input_schema: &Schema,
        key_columns: Vec<usize>,
        watermark: Option<DedupWatermark>,
        description: String,
    ) -> Result<DedupOp> {
        let mut fields: Vec<Field> = key_columns
            .iter()
            .map(|i| input_schema.field(*i).clone().with_nullable(true))
            .collect();
        let sort_fields = fields
            .iter()
            .map(|f| SortField::new(f.data_type().clone()))
            .collect();
        fields.push(Field::new(EXPIRY_COLUMN, DataType::Int64, true));
        Ok(DedupOp {
            op_id,
            key_columns,
            watermark,
            description,
            fsync: true,
            state_schema: Arc::new(Schema::new(fields)),
            converter: RowConverter::new(sort_fields)?,
            seen: HashMap::new(),
            store: None,
            pending_upserts: Vec::new(),
            pending_removals: Vec::new(),
            metrics: StateOperatorProgress {
                operator_name: "dedupe".into(),
                num_shuffle_partitions: 1,
                num_state_store_instances: 1,
                ..Default::default()
            },
        })
    }

    /// Explain text.
    pub fn describe(&self) -> String {
        format!("Deduplicate op={} [{}]", self.op_id, self.description)
    }

    /// Runs one batch: returns the rows whose key was not seen before.
    pub fn process(
        &mut self,
        rows: Vec<RecordBatch>,
        ctx: &BatchContext,
    ) -> Result<Vec<RecordBatch>> {
        let t = Instant::now();
        let late_us =
            (ctx.late_watermark_ms > 0).then(|| ctx.late_watermark_ms.saturating_mul(1000));
        let mut out = Vec::with_capacity(rows.len());
        let mut dropped_late = 0u64;
        let mut duplicates = 0i64;
        for batch in rows {
            let keys: Vec<ArrayRef> = self
                .key_columns
                .iter()
                .map(|i| batch.column(*i).clone())
                .collect();
            let encoded = self.converter.convert_columns(&keys)?;
            let times = match &self.watermark {
                Some(w) => Some(timestamps(batch.column(w.time_column))?),
                None => None,
            };
            let mut keep = Vec::with_capacity(batch.num_rows());
            for (i, row) in encoded.iter().enumerate() {
                let event_us = times
                    .as_ref()
                    .and_then(|t| t.is_valid(i).then(|| t.value(i)));
                if let (Some(late), Some(ts)) = (late_us, event_us)
                    && ts <= late
                {
                    dropped_late += 1;
                    keep.push(false);
                    continue;
                }
                let bytes: Box<[u8]> = row.as_ref().into();
                if self.seen.contains_key(&bytes) {
                    duplicates += 1;
                    keep.push(false);
                } else {
                    let expiry = match (&self.watermark, event_us) {
                        (Some(w), Some(ts)) => Some(ts.saturating_add(w.expiry_delay_us)),
                        _ => None,
                    };
                    self.seen.insert(bytes.clone(), expiry);
                    self.pending_upserts.push((bytes, expiry));
                    keep.push(true);
                }
            }
            let mask = BooleanArray::from(keep);
            let kept = compute::filter_record_batch(&batch, &mask)?;
            if kept.num_rows() > 0 {
                out.push(kept);
            }
        }
        // Evict keys whose expiry is at or behind the watermark.
        let mut removed = 0u64;
        if self.watermark.is_some() && ctx.watermark_ms > 0 {
            let wm = ctx.watermark_ms.saturating_mul(1000);
            let expired: Vec<Box<[u8]>> = self
                .seen
                .iter()
                .filter(|(_, e)| e.is_some_and(|e| e <= wm))
                .map(|(k, _)| k.clone())
                .collect();
            for k in expired {
                self.seen.remove(&k);
                self.pending_upserts.retain(|(u, _)| u != &k);
                self.pending_removals.push(k);
                removed += 1;
            }
        }
        self.metrics.num_rows_total = self.seen.len() as u64;
        self.metrics.num_rows_updated = self.pending_upserts.len() as u64;
        self.metrics.num_rows_removed = removed;
        self.metrics.num_rows_dropped_by_watermark = dropped_late;
        self.metrics.all_updates_time_ms = t.elapsed().as_millis() as u64;
        self.metrics
            .custom_metrics
            .insert("numDroppedDuplicateRows".into(), duplicates);
        Ok(out)
    }

    /// Whether keys expire behind the watermark.
    pub fn evicts_by_watermark(&self) -> bool {
        self.watermark.is_some()
    }

    fn to_batch(&self, entries: &[(Box<[u8]>, Option<i64>)]) -> Result<RecordBatch> {
        let parser = self.converter.parser();
        let rows: Vec<_> = entries.iter().map(|(k, _)| parser.parse(k)).collect();
        let mut columns = self.converter.convert_rows(rows)?;
        columns.push(Arc::new(Int64Array::from(
            entries.iter().map(|(_, e)| *e).collect::<Vec<_>>(),
        )));
        Ok(RecordBatch::try_new(self.state_schema.clone(), columns)?)
    }

    fn open_store(&mut self, state_root: &Path, fsync: bool) -> Result<&mut StateStore> {
        if self.store.is_none() {
            let key_count = self.key_columns.len();
            self.store = Some(StateStore::open(
                state_root,
                self.op_id,
                0,
                self.state_schema.clone(),
                key_count,
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

    /// Loads the keys as of `version`.
    pub fn restore(&mut self, state_root: &Path, version: u64, fsync: bool) -> Result<()> {
        let batch = self.open_store(state_root, fsync)?.load(version)?;
        let key_count = self.key_columns.len();
        let keys: Vec<ArrayRef> = batch.columns()[..key_count].to_vec();
        let expiry = batch
            .column(key_count)
            .as_any()
            .downcast_ref::<Int64Array>()
            .cloned()
            .ok_or_else(|| Error::Internal("dedup state expiry column".into()))?;
        let rows = self.converter.convert_columns(&keys)?;
        self.seen.clear();
        for (i, row) in rows.iter().enumerate() {
            let e = expiry.is_valid(i).then(|| expiry.value(i));
            self.seen.insert(row.as_ref().into(), e);
        }
        Ok(())
    }

    /// Commits the batch's new and evicted keys as `version`.
    pub fn commit(&mut self, state_root: &Path, version: u64) -> Result<StateOperatorProgress> {
        let t = Instant::now();
        let pending = std::mem::take(&mut self.pending_upserts);
        let upserts = self.to_batch(&pending)?;
        let removed: Vec<(Box<[u8]>, Option<i64>)> = std::mem::take(&mut self.pending_removals)
            .into_iter()
            .map(|k| (k, None))
            .collect();
        let removals = self.to_batch(&removed)?;
        let removals = removals.project(&(0..self.key_columns.len()).collect::<Vec<_>>())?;
        let full = if version.is_multiple_of(10) {
            let all: Vec<(Box<[u8]>, Option<i64>)> =
                self.seen.iter().map(|(k, e)| (k.clone(), *e)).collect();
            Some(self.to_batch(&all)?)
        } else {
            None
        };
        let fsync = self.fsync;
        let store = self.open_store(state_root, fsync)?;
        store.commit(version, &upserts, &removals)?;
        if let Some(full) = full {
            store.maybe_snapshot(version, &full)?;
            store.purge()?;
        }
        self.metrics.commit_time_ms = t.elapsed().as_millis() as u64;
        self.metrics.memory_used_bytes = self.seen.keys().map(|k| k.len() as u64 + 24).sum();
        Ok(self.metrics.clone())
    }
}

fn timestamps(col: &ArrayRef) -> Result<TimestampMicrosecondArray> {
    col.as_any()
        .downcast_ref::<TimestampMicrosecondArray>()
        .cloned()
        .ok_or_else(|| {
            Error::Unsupported(format!(
                "an event-time column must be a TIMESTAMP, found {}",
                col.data_type()
            ))
        })
}
