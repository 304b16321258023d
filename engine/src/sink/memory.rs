//! The memory sink: a process-wide registry of in-memory tables named by query name, readable
//! from Rust with [`memory_table`]. Complete mode replaces the table's rows; append and update
//! append. Like Spark's, the table lives in process memory only: a restarted query starts a new,
//! empty table.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock, PoisonError};

use arrow::datatypes::SchemaRef;
use arrow::record_batch::RecordBatch;
use serde_json::{Map, Value};

use crate::error::{Error, Result};
use crate::sink::format::json_rows;
use crate::sink::{Sink, SinkOutputMode};

#[derive(Debug, Default)]
struct TableData {
    schema: Option<SchemaRef>,
    batches: Vec<RecordBatch>,
    last_batch: Option<u64>,
}

/// A handle on a memory sink's table; clones see the same data.
#[derive(Clone, Debug, Default)]
pub struct MemoryTable {
    data: Arc<Mutex<TableData>>,
}

impl MemoryTable {
    /// The table's rows as record batches, in arrival order.
    pub fn batches(&self) -> Vec<RecordBatch> {
        self.lock().batches.clone()
    }

    /// The schema of the rows written so far (`None` before the first batch).
    pub fn schema(&self) -> Option<SchemaRef> {
        self.lock().schema.clone()
    }

    /// The number of rows.
    pub fn num_rows(&self) -> usize {
        self.lock().batches.iter().map(RecordBatch::num_rows).sum()
    }

    /// Every row as a JSON object (nulls left out, timestamps ISO-8601 UTC).
    pub fn to_json_rows(&self) -> Vec<Map<String, Value>> {
        self.lock()
            .batches
            .iter()
            .flat_map(json_rows)
            .map(|row| row.into_iter().map(|(k, v)| (k, v.to_value())).collect())
            .collect()
    }

    /// The id of the newest batch written.
    pub fn last_batch_id(&self) -> Option<u64> {
        self.lock().last_batch
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, TableData> {
        self.data.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

fn registry() -> &'static Mutex<HashMap<String, MemoryTable>> {
    static REGISTRY: OnceLock<Mutex<HashMap<String, MemoryTable>>> = OnceLock::new();
    REGISTRY.get_or_init(|| Mutex::new(HashMap::new()))
}

/// The memory table written by the query named `name`, if one was created in this process.
pub fn memory_table(name: &str) -> Option<MemoryTable> {
    registry()
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .get(name)
        .cloned()
}

/// Removes the table named `name` from the registry (a later query of that name starts empty).
pub fn drop_memory_table(name: &str) -> Option<MemoryTable> {
    registry()
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .remove(name)
}

/// Writes into a registered [`MemoryTable`].
pub(crate) struct MemorySink {
    table: MemoryTable,
}

impl MemorySink {
    /// Registers a new, empty table `name`, replacing any table of that name (as Spark
    /// replaces the temp view when a memory-sink query starts).
    pub(crate) fn new(name: Option<String>) -> Result<MemorySink> {
        let name = name.ok_or_else(|| {
            Error::option("queryName", "queryName must be specified for memory sink")
        })?;
        let table = MemoryTable::default();
        registry()
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(name, table.clone());
        Ok(MemorySink { table })
    }
}

impl Sink for MemorySink {
    fn description(&self) -> String {
        "MemorySink".to_string()
    }

    fn add_batch(
        &mut self,
        batch_id: u64,
        schema: &SchemaRef,
        batches: &[RecordBatch],
        mode: SinkOutputMode,
    ) -> Result<()> {
        let mut data = self.table.lock();
        if data.last_batch.is_some_and(|last| batch_id <= last) {
            return Ok(());
        }
        let rows: Vec<RecordBatch> = batches
            .iter()
            .filter(|b| b.num_rows() > 0)
            .cloned()
            .collect();
        match mode {
            SinkOutputMode::Complete => data.batches = rows,
            SinkOutputMode::Append | SinkOutputMode::Update => data.batches.extend(rows),
        }
        data.schema = Some(schema.clone());
        data.last_batch = Some(batch_id);
        Ok(())
    }
}
