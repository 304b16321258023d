//! Helpers shared by the engine's integration tests (not a test target itself).
// Each test crate uses only some of the helpers.
#![allow(dead_code)]

use std::path::Path;
use std::sync::Arc;

use arrow::array::{ArrayRef, Int64Array, RecordBatch, StringArray, TimestampMicrosecondArray};
use arrow::datatypes::{DataType, Field, Schema, SchemaRef, TimeUnit};

/// Writes `batches[first..]` as one JSON file each into `dir/in`, oldest first (modification
/// times one second apart), so a file source with `maxFilesPerTrigger = 1` reads one per
/// trigger. Rows are (event time in seconds, word); with `with_v` each row also carries
/// `v` = its event time in seconds.
pub fn write_event_files(dir: &Path, first: usize, batches: &[&[(i64, &str)]], with_v: bool) {
    let input = dir.join("in");
    std::fs::create_dir_all(&input).unwrap();
    for (i, rows) in batches.iter().enumerate().skip(first) {
        let path = input.join(format!("f{i:03}.json"));
        let text: String = rows
            .iter()
            .map(|(ts, w)| {
                let v = if with_v {
                    format!(",\"v\":{ts}")
                } else {
                    String::new()
                };
                format!(
                    "{{\"ts\":\"1970-01-01T00:{:02}:{:02}Z\",\"word\":\"{w}\"{v}}}\n",
                    ts / 60,
                    ts % 60
                )
            })
            .collect();
        std::fs::write(&path, text).unwrap();
        let mtime = std::time::UNIX_EPOCH + std::time::Duration::from_secs(1_000 + i as u64);
        std::fs::File::options()
            .write(true)
            .open(&path)
            .unwrap()
            .set_modified(mtime)
            .unwrap();
    }
}

/// The event rows' schema: `ts` (UTC timestamp), `word`, and with `with_v` an Int64 `v`.
pub fn event_schema(with_v: bool) -> SchemaRef {
    let mut fields = vec![
        Field::new(
            "ts",
            DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into())),
            true,
        ),
        Field::new("word", DataType::Utf8, true),
    ];
    if with_v {
        fields.push(Field::new("v", DataType::Int64, true));
    }
    Arc::new(Schema::new(fields))
}

/// Rows of (event time in seconds, word); with `with_v`, `v` is the event time in seconds.
pub fn event_batch(rows: &[(i64, &str)], with_v: bool) -> RecordBatch {
    let mut columns: Vec<ArrayRef> = vec![
        Arc::new(
            TimestampMicrosecondArray::from(
                rows.iter().map(|r| r.0 * 1_000_000).collect::<Vec<_>>(),
            )
            .with_timezone("UTC"),
        ),
        Arc::new(StringArray::from(
            rows.iter().map(|r| r.1).collect::<Vec<_>>(),
        )),
    ];
    if with_v {
        columns.push(Arc::new(Int64Array::from(
            rows.iter().map(|r| r.0).collect::<Vec<_>>(),
        )));
    }
    RecordBatch::try_new(event_schema(with_v), columns).unwrap()
}
