//! Progress reports in the shape of Spark's `StreamingQueryProgress` JSON.
//!
//! Owns the report types and their JSON form (field names, order and rounding follow
//! Spark 4.3, see `spark-formats.md` §9). It does not measure anything itself: the
//! micro-batch loop fills these structs.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// One trigger's progress, serialised with Spark's field names and order.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct StreamingQueryProgress {
    /// Stable query id (the checkpoint's `metadata` id).
    pub id: String,
    /// Id of this run (new on every start).
    pub run_id: String,
    /// The query name, if one was given.
    pub name: Option<String>,
    /// Trigger start, ISO-8601 UTC with milliseconds.
    pub timestamp: String,
    /// The micro-batch id.
    pub batch_id: u64,
    /// Duration of the whole trigger in milliseconds.
    pub batch_duration: u64,
    /// Rows read from all sources in this batch.
    pub num_input_rows: u64,
    /// Rows per second since the previous trigger started (omitted when undefined).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub input_rows_per_second: Option<f64>,
    /// Rows per second of this trigger's duration (omitted when undefined).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub processed_rows_per_second: Option<f64>,
    /// Time spent in each phase of the trigger, in milliseconds (keys sorted).
    pub duration_ms: BTreeMap<String, u64>,
    /// Event-time statistics; present only when the query has a watermark.
    #[serde(skip_serializing_if = "BTreeMap::is_empty", default)]
    pub event_time: BTreeMap<String, String>,
    /// One entry per stateful operator.
    pub state_operators: Vec<StateOperatorProgress>,
    /// One entry per source.
    pub sources: Vec<SourceProgress>,
    /// The sink.
    pub sink: SinkProgress,
}

/// Metrics of one stateful operator for one trigger.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct StateOperatorProgress {
    /// Operator name, e.g. `stateStoreSave` or `dedupe`.
    pub operator_name: String,
    /// Rows in state after the batch.
    pub num_rows_total: u64,
    /// Rows inserted or updated by the batch.
    pub num_rows_updated: u64,
    /// Time spent updating state, ms.
    pub all_updates_time_ms: u64,
    /// Rows evicted by the batch.
    pub num_rows_removed: u64,
    /// Time spent evicting, ms.
    pub all_removals_time_ms: u64,
    /// Time spent committing the state version, ms.
    pub commit_time_ms: u64,
    /// Estimated memory held by the state.
    pub memory_used_bytes: u64,
    /// Input rows dropped because they were behind the watermark.
    pub num_rows_dropped_by_watermark: u64,
    /// Number of state shards.
    pub num_shuffle_partitions: u64,
    /// Number of state store instances.
    pub num_state_store_instances: u64,
    /// Operator-specific counters.
    #[serde(skip_serializing_if = "BTreeMap::is_empty", default)]
    pub custom_metrics: BTreeMap<String, i64>,
}

/// Metrics of one source for one trigger.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct SourceProgress {
    /// The source's description.
    pub description: String,
    /// Start offset (exclusive) as JSON, or null for the first batch.
    pub start_offset: serde_json::Value,
    /// End offset (inclusive) as JSON.
    pub end_offset: serde_json::Value,
    /// Latest offset seen by the source, as JSON, or null.
    pub latest_offset: serde_json::Value,
    /// Rows read from this source.
    pub num_input_rows: u64,
    /// See [`StreamingQueryProgress::input_rows_per_second`].
    #[serde(skip_serializing_if = "Option::is_none")]
    pub input_rows_per_second: Option<f64>,
    /// See [`StreamingQueryProgress::processed_rows_per_second`].
    #[serde(skip_serializing_if = "Option::is_none")]
    pub processed_rows_per_second: Option<f64>,
}

/// Metrics of the sink for one trigger.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct SinkProgress {
    /// The sink's description.
    pub description: String,
    /// Rows written, or −1 when the sink does not report it.
    pub num_output_rows: i64,
}

impl StreamingQueryProgress {
    /// The compact JSON text, as Spark's `progress.json()` prints it.
    pub fn json(&self) -> String {
        serde_json::to_string(self).unwrap_or_else(|e| format!("{{\"error\":\"{e}\"}}"))
    }

    /// Pretty-printed JSON, as Spark's `progress.prettyJson()`.
    pub fn pretty_json(&self) -> String {
        serde_json::to_string_pretty(self).unwrap_or_else(|e| format!("{{\"error\":\"{e}\"}}"))
    }
}

/// A rate rounded to one decimal, or `None` when it is NaN or infinite (Spark omits those).
pub fn rate(rows: u64, millis: u64) -> Option<f64> {
    if millis == 0 {
        return None;
    }
    let r = rows as f64 * 1000.0 / millis as f64;
    r.is_finite().then(|| (r * 10.0).round() / 10.0)
}

/// Formats epoch milliseconds as ISO-8601 UTC with milliseconds (`2024-01-01T00:00:25.000Z`).
pub fn iso_millis(epoch_ms: i64) -> String {
    match chrono::DateTime::from_timestamp_millis(epoch_ms) {
        Some(t) => t.format("%Y-%m-%dT%H:%M:%S%.3fZ").to_string(),
        None => format!("{epoch_ms}"),
    }
}

/// The status of a query, as Spark's `StreamingQueryStatus`.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct StreamingQueryStatus {
    /// E.g. "Waiting for data to arrive", "Processing new data", "Stopped".
    pub message: String,
    /// Whether the last trigger found new data.
    pub is_data_available: bool,
    /// Whether a trigger is running now.
    pub is_trigger_active: bool,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_has_sparks_field_names_and_order() {
        let p = StreamingQueryProgress {
            id: "a".into(),
            run_id: "b".into(),
            name: None,
            timestamp: iso_millis(1_704_067_225_000),
            batch_id: 1,
            batch_duration: 582,
            num_input_rows: 1,
            input_rows_per_second: rate(1, 1666),
            processed_rows_per_second: rate(1, 0),
            duration_ms: BTreeMap::from([
                ("triggerExecution".into(), 581),
                ("addBatch".into(), 446),
            ]),
            event_time: BTreeMap::new(),
            state_operators: vec![],
            sources: vec![SourceProgress {
                description: "FileStreamSource[file:/INPUT]".into(),
                start_offset: serde_json::json!({"logOffset": 0}),
                end_offset: serde_json::json!({"logOffset": 1}),
                latest_offset: serde_json::Value::Null,
                num_input_rows: 1,
                input_rows_per_second: Some(0.6),
                processed_rows_per_second: None,
            }],
            sink: SinkProgress {
                description: "FileSink[file:/OUTPUT]".into(),
                num_output_rows: -1,
            },
        };
        assert_eq!(
            p.json(),
            "{\"id\":\"a\",\"runId\":\"b\",\"name\":null,\"timestamp\":\"2024-01-01T00:00:25.000Z\",\"batchId\":1,\"batchDuration\":582,\"numInputRows\":1,\"inputRowsPerSecond\":0.6,\"durationMs\":{\"addBatch\":446,\"triggerExecution\":581},\"stateOperators\":[],\"sources\":[{\"description\":\"FileStreamSource[file:/INPUT]\",\"startOffset\":{\"logOffset\":0},\"endOffset\":{\"logOffset\":1},\"latestOffset\":null,\"numInputRows\":1,\"inputRowsPerSecond\":0.6}],\"sink\":{\"description\":\"FileSink[file:/OUTPUT]\",\"numOutputRows\":-1}}"
        );
    }

    #[test]
    fn spark_sample_deserialises() {
        let text = include_str!("../../tests/fixtures/spark-progress-batch1.json");
        let p: StreamingQueryProgress = serde_json::from_str(text).expect("Spark's sample parses");
        assert_eq!(p.batch_id, 1);
        assert_eq!(p.state_operators[0].operator_name, "stateStoreSave");
        assert_eq!(p.event_time["watermark"], "2024-01-01T00:00:00.000Z");
    }
}
