//! Sinks on real directories: the file sink's `_spark_metadata` log (structure compared with
//! Spark 4.3.0's own files), replay skipping, compaction, and the console, memory and
//! foreach_batch sinks.

use std::collections::BTreeMap;
use std::fs;
use std::io::Write;
use std::path::Path;
use std::sync::{Arc, Mutex};

use arrow::array::{Int64Array, RecordBatch, StringArray, TimestampMicrosecondArray};
use arrow::datatypes::{DataType, Field, Schema, SchemaRef, TimeUnit};
use weir_engine::sink::{
    Sink, SinkContext, SinkOutputMode, console_sink, create_sink, foreach_batch_sink, memory_table,
};

fn opts(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

fn schema() -> SchemaRef {
    Arc::new(Schema::new(vec![
        Field::new("name", DataType::Utf8, true),
        Field::new("n", DataType::Int64, true),
    ]))
}

fn batch(names: &[Option<&str>], ns: &[Option<i64>]) -> RecordBatch {
    RecordBatch::try_new(
        schema(),
        vec![
            Arc::new(StringArray::from(names.to_vec())),
            Arc::new(Int64Array::from(ns.to_vec())),
        ],
    )
    .unwrap()
}

fn file_sink(format: &str, out: &Path) -> Box<dyn Sink> {
    create_sink(
        format,
        &opts(&[("path", &out.to_string_lossy())]),
        SinkContext {
            query_name: None,
            fsync: true,
            ..Default::default()
        },
    )
    .unwrap()
}

/// Replaces the parts of a log line that differ between runs, as the samples do with /OUTPUT.
fn normalise(log: &str, out: &Path) -> String {
    let uri_prefix = format!("file://{}/", out.display());
    let mut text = log.replace(&uri_prefix, "file:///OUTPUT/");
    let uuid = regex::Regex::new(r"part-00000-[0-9a-f-]{36}-c000").unwrap();
    text = uuid.replace_all(&text, "part-00000-UUID-c000").into_owned();
    let size = regex::Regex::new(r#""size":\d+"#).unwrap();
    text = size.replace_all(&text, "\"size\":SIZE").into_owned();
    let mtime = regex::Regex::new(r#""modificationTime":\d+"#).unwrap();
    mtime
        .replace_all(&text, "\"modificationTime\":MTIME")
        .into_owned()
}

/// `spark-formats/a-stateless-json-sink/output/_spark_metadata/0`, written by Spark 4.3.0.
const SPARK_JSON_SINK_LOG_0: &str = r#"v1
{"path":"file:///OUTPUT/part-00000-83f4f54a-6233-471b-ae33-88c31e02338e-c000.json","size":100,"isDir":false,"modificationTime":1795497223107,"blockReplication":1,"blockSize":33554432,"action":"add"}"#;

#[test]
fn json_sink_log_has_sparks_structure_and_replays_are_skipped() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("out");
    let mut sink = file_sink("json", &out);
    assert!(
        out.join("_spark_metadata").is_dir(),
        "created when the sink starts"
    );
    let b0 = batch(&[Some("a"), None], &[Some(1), Some(2)]);
    sink.add_batch(
        0,
        &schema(),
        std::slice::from_ref(&b0),
        SinkOutputMode::Append,
    )
    .unwrap();
    let log0 = fs::read_to_string(out.join("_spark_metadata/0")).unwrap();
    assert_eq!(
        normalise(&log0, &out),
        normalise(SPARK_JSON_SINK_LOG_0, Path::new("/OUTPUT"))
    );

    // The data file is listed with its exact size and holds Spark's JSON lines.
    let entry: serde_json::Value = serde_json::from_str(log0.lines().nth(1).unwrap()).unwrap();
    let path = weir_engine::checkpoint::path_from_uri(entry["path"].as_str().unwrap()).unwrap();
    assert_eq!(
        fs::metadata(&path).unwrap().len(),
        entry["size"].as_u64().unwrap()
    );
    assert_eq!(
        fs::read_to_string(&path).unwrap(),
        "{\"name\":\"a\",\"n\":1}\n{\"n\":2}\n"
    );

    // Replaying batch 0 (after a crash before commits/0) writes nothing new.
    let files_before = fs::read_dir(&out).unwrap().count();
    sink.add_batch(
        0,
        &schema(),
        std::slice::from_ref(&b0),
        SinkOutputMode::Append,
    )
    .unwrap();
    drop(sink);
    let mut sink = file_sink("json", &out);
    sink.add_batch(0, &schema(), &[b0], SinkOutputMode::Append)
        .unwrap();
    assert_eq!(fs::read_dir(&out).unwrap().count(), files_before);
    assert_eq!(
        fs::read_to_string(out.join("_spark_metadata/0")).unwrap(),
        log0
    );

    // An empty JSON batch gets a `v1`-only log file.
    sink.add_batch(1, &schema(), &[], SinkOutputMode::Append)
        .unwrap();
    assert_eq!(
        fs::read_to_string(out.join("_spark_metadata/1")).unwrap(),
        "v1"
    );
    let err = sink
        .add_batch(2, &schema(), &[], SinkOutputMode::Complete)
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("does not support Complete output mode"),
        "{err}"
    );
}

/// `spark-formats/d-sink-log-compaction/output/_spark_metadata/3.compact` (interval 2): a
/// compact file lists every live file of the batches so far, in batch order.
const SPARK_COMPACT_SAMPLE: &str = r#"v1
{"path":"file:///OUTPUT/part-00000-9ee1963e-c488-461e-b9f4-4e5d49bde4bf-c000.snappy.parquet","size":962,"isDir":false,"modificationTime":1795497235695,"blockReplication":1,"blockSize":33554432,"action":"add"}
{"path":"file:///OUTPUT/part-00000-a3fdf372-61e9-4e90-9edd-14dce73c0174-c000.snappy.parquet","size":962,"isDir":false,"modificationTime":1795497235911,"blockReplication":1,"blockSize":33554432,"action":"add"}
{"path":"file:///OUTPUT/part-00000-5b509cc9-2159-4cad-89d9-0e5dee808621-c000.snappy.parquet","size":962,"isDir":false,"modificationTime":1795497236095,"blockReplication":1,"blockSize":33554432,"action":"add"}
{"path":"file:///OUTPUT/part-00000-0926a586-c4ad-4be3-964b-a5948325c5c9-c000.snappy.parquet","size":962,"isDir":false,"modificationTime":1795497236311,"blockReplication":1,"blockSize":33554432,"action":"add"}"#;

#[test]
fn parquet_sink_compacts_at_batches_9_and_19() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("out");
    let mut sink = file_sink("parquet", &out);
    for b in 0..21u64 {
        let rows = batch(&[Some("x")], &[Some(b as i64)]);
        sink.add_batch(b, &schema(), &[rows], SinkOutputMode::Append)
            .unwrap();
    }
    let meta = out.join("_spark_metadata");
    for b in [9, 19] {
        assert!(meta.join(format!("{b}.compact")).exists(), "{b}.compact");
        assert!(!meta.join(b.to_string()).exists(), "no plain {b}");
    }
    assert!(meta.join("20").exists() && meta.join("8").exists());
    let compact9 = fs::read_to_string(meta.join("9.compact")).unwrap();
    let compact19 = fs::read_to_string(meta.join("19.compact")).unwrap();
    assert_eq!(compact9.lines().count(), 11);
    assert_eq!(compact19.lines().count(), 21);
    assert!(
        compact19.starts_with(&compact9),
        "entries stay in batch order"
    );
    assert!(!compact19.ends_with('\n'));
    // Same line structure as Spark's compact file.
    let sample_line = normalise(
        SPARK_COMPACT_SAMPLE.lines().nth(1).unwrap(),
        Path::new("/OUTPUT"),
    );
    for line in normalise(&compact19, &out).lines().skip(1) {
        assert_eq!(line, sample_line);
    }
    // Every listed file exists with the listed size and reads back.
    let mut total = 0;
    for line in compact19.lines().skip(1) {
        let entry: serde_json::Value = serde_json::from_str(line).unwrap();
        let path = weir_engine::checkpoint::path_from_uri(entry["path"].as_str().unwrap()).unwrap();
        assert_eq!(
            fs::metadata(&path).unwrap().len(),
            entry["size"].as_u64().unwrap()
        );
        let reader = parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder::try_new(
            fs::File::open(&path).unwrap(),
        )
        .unwrap()
        .build()
        .unwrap();
        total += reader.map(|b| b.unwrap().num_rows()).sum::<usize>();
    }
    assert_eq!(total, 20);
}

#[test]
fn empty_parquet_batch_writes_a_schema_only_file() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("out");
    let mut sink = file_sink("parquet", &out);
    sink.add_batch(0, &schema(), &[], SinkOutputMode::Append)
        .unwrap();
    let log = fs::read_to_string(out.join("_spark_metadata/0")).unwrap();
    assert_eq!(log.lines().count(), 2);
    assert!(log.contains(".snappy.parquet"));
}

#[test]
fn csv_sink_quotes_and_formats_values() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("out");
    let mut sink = file_sink("csv", &out);
    sink.add_batch(
        0,
        &schema(),
        &[batch(&[Some("a,b"), None], &[Some(1), None])],
        SinkOutputMode::Append,
    )
    .unwrap();
    let log = fs::read_to_string(out.join("_spark_metadata/0")).unwrap();
    let entry: serde_json::Value = serde_json::from_str(log.lines().nth(1).unwrap()).unwrap();
    let path = weir_engine::checkpoint::path_from_uri(entry["path"].as_str().unwrap()).unwrap();
    assert!(path.to_string_lossy().ends_with("-c000.csv"));
    assert_eq!(fs::read_to_string(path).unwrap(), "\"a,b\",1\n,\n");
}

/// A `Write` that tests can read back.
#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Captured {
    fn text(&self) -> String {
        String::from_utf8(self.0.lock().unwrap().clone()).unwrap()
    }
}

#[test]
fn console_prints_sparks_table() {
    let out = Captured::default();
    let mut sink = console_sink(&opts(&[("numRows", "2")]), Box::new(out.clone())).unwrap();
    let rows = batch(
        &[Some("alice"), None, Some("carol")],
        &[Some(1), Some(22), None],
    );
    sink.add_batch(0, &schema(), &[rows], SinkOutputMode::Append)
        .unwrap();
    assert_eq!(
        out.text(),
        "-------------------------------------------\n\
         Batch: 0\n\
         -------------------------------------------\n\
         +-----+---+\n\
         | name|  n|\n\
         +-----+---+\n\
         |alice|  1|\n\
         | null| 22|\n\
         +-----+---+\n\
         only showing top 2 rows\n\n"
    );
}

#[test]
fn console_truncates_long_cells_and_left_aligns_without_truncation() {
    let long = "abcdefghijklmnopqrstuvwxyz";
    let out = Captured::default();
    let mut sink = console_sink(&opts(&[]), Box::new(out.clone())).unwrap();
    sink.add_batch(
        3,
        &schema(),
        &[batch(&[Some(long)], &[Some(1)])],
        SinkOutputMode::Update,
    )
    .unwrap();
    assert!(
        out.text().contains("|abcdefghijklmnopq...|  1|\n"),
        "{}",
        out.text()
    );
    let out = Captured::default();
    let mut sink = console_sink(&opts(&[("truncate", "false")]), Box::new(out.clone())).unwrap();
    sink.add_batch(
        0,
        &schema(),
        &[batch(&[Some("ab")], &[Some(1)])],
        SinkOutputMode::Append,
    )
    .unwrap();
    assert!(
        out.text().contains("|name|n  |\n+----+---+\n|ab  |1  |\n"),
        "{}",
        out.text()
    );
}

#[test]
fn console_json_has_batch_id_and_iso_timestamps() {
    let schema = Arc::new(Schema::new(vec![
        Field::new(
            "t",
            DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into())),
            false,
        ),
        Field::new("v", DataType::Int64, false),
    ]));
    let rows = RecordBatch::try_new(
        schema.clone(),
        vec![
            Arc::new(
                TimestampMicrosecondArray::from(vec![1_704_067_200_123_000]).with_timezone("UTC"),
            ),
            Arc::new(Int64Array::from(vec![7])),
        ],
    )
    .unwrap();
    let out = Captured::default();
    let mut sink = console_sink(&opts(&[("outputFormat", "json")]), Box::new(out.clone())).unwrap();
    sink.add_batch(4, &schema, &[rows], SinkOutputMode::Append)
        .unwrap();
    assert_eq!(
        out.text(),
        "{\"batchId\":4,\"t\":\"2024-01-01T00:00:00.123Z\",\"v\":7}\n"
    );
}

#[test]
fn memory_sink_appends_or_replaces_and_skips_replays() {
    let ctx = |name: &str| SinkContext {
        query_name: Some(name.to_string()),
        fsync: false,
        ..Default::default()
    };
    let mut append = create_sink("memory", &opts(&[]), ctx("io_sinks_append")).unwrap();
    append
        .add_batch(
            0,
            &schema(),
            &[batch(&[Some("a")], &[Some(1)])],
            SinkOutputMode::Append,
        )
        .unwrap();
    append
        .add_batch(
            1,
            &schema(),
            &[batch(&[Some("b")], &[Some(2)])],
            SinkOutputMode::Append,
        )
        .unwrap();
    append
        .add_batch(
            1,
            &schema(),
            &[batch(&[Some("b")], &[Some(2)])],
            SinkOutputMode::Append,
        )
        .unwrap();
    let table = memory_table("io_sinks_append").unwrap();
    assert_eq!(table.num_rows(), 2);
    assert_eq!(table.to_json_rows()[1]["name"], "b");

    let mut complete = create_sink("memory", &opts(&[]), ctx("io_sinks_complete")).unwrap();
    complete
        .add_batch(
            0,
            &schema(),
            &[batch(&[Some("a")], &[Some(1)])],
            SinkOutputMode::Complete,
        )
        .unwrap();
    complete
        .add_batch(
            1,
            &schema(),
            &[batch(&[Some("a"), Some("b")], &[Some(2), Some(1)])],
            SinkOutputMode::Complete,
        )
        .unwrap();
    let table = memory_table("io_sinks_complete").unwrap();
    assert_eq!(table.num_rows(), 2);
    assert_eq!(table.last_batch_id(), Some(1));

    let err = create_sink("memory", &opts(&[]), SinkContext::default())
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("queryName must be specified for memory sink"),
        "{err}"
    );
}

#[test]
fn foreach_batch_gets_rows_and_batch_ids_and_reports_errors() {
    let seen = Arc::new(Mutex::new(Vec::new()));
    let seen_in = seen.clone();
    let mut sink = foreach_batch_sink(Box::new(move |batches, id| {
        let rows: usize = batches.iter().map(RecordBatch::num_rows).sum();
        if id == 2 {
            return Err("downstream is unavailable".into());
        }
        seen_in.lock().unwrap().push((id, rows));
        Ok(())
    }));
    sink.add_batch(
        0,
        &schema(),
        &[batch(&[Some("a")], &[Some(1)])],
        SinkOutputMode::Append,
    )
    .unwrap();
    sink.add_batch(1, &schema(), &[], SinkOutputMode::Append)
        .unwrap();
    let err = sink
        .add_batch(2, &schema(), &[], SinkOutputMode::Append)
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("downstream is unavailable") && err.contains("batch 2"),
        "{err}"
    );
    assert_eq!(*seen.lock().unwrap(), vec![(0, 1), (1, 0)]);
    let noop = create_sink("noop", &opts(&[]), SinkContext::default()).unwrap();
    assert_eq!(noop.description(), "NoopTable");
}

/// Continues a `_spark_metadata` log written by Spark 4.3.0 with compactInterval=2
/// (`spark-formats/d-sink-log-compaction`): weir reads it like Spark (newest compaction plus
/// later batches) and keeps Spark's interval when it appends.
#[test]
fn continues_a_spark_written_sink_log() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("out");
    let meta = out.join("_spark_metadata");
    fs::create_dir_all(&meta).unwrap();
    fs::write(meta.join("0"), r#"v1
{"path":"file:///OUTPUT/part-00000-9ee1963e-c488-461e-b9f4-4e5d49bde4bf-c000.snappy.parquet","size":962,"isDir":false,"modificationTime":1795497235695,"blockReplication":1,"blockSize":33554432,"action":"add"}"#).unwrap();
    fs::write(meta.join("1.compact"), r#"v1
{"path":"file:///OUTPUT/part-00000-9ee1963e-c488-461e-b9f4-4e5d49bde4bf-c000.snappy.parquet","size":962,"isDir":false,"modificationTime":1795497235695,"blockReplication":1,"blockSize":33554432,"action":"add"}
{"path":"file:///OUTPUT/part-00000-a3fdf372-61e9-4e90-9edd-14dce73c0174-c000.snappy.parquet","size":962,"isDir":false,"modificationTime":1795497235911,"blockReplication":1,"blockSize":33554432,"action":"add"}"#).unwrap();
    fs::write(meta.join("2"), r#"v1
{"path":"file:///OUTPUT/part-00000-5b509cc9-2159-4cad-89d9-0e5dee808621-c000.snappy.parquet","size":962,"isDir":false,"modificationTime":1795497236095,"blockReplication":1,"blockSize":33554432,"action":"add"}"#).unwrap();
    fs::write(meta.join("3.compact"), r#"v1
{"path":"file:///OUTPUT/part-00000-9ee1963e-c488-461e-b9f4-4e5d49bde4bf-c000.snappy.parquet","size":962,"isDir":false,"modificationTime":1795497235695,"blockReplication":1,"blockSize":33554432,"action":"add"}
{"path":"file:///OUTPUT/part-00000-a3fdf372-61e9-4e90-9edd-14dce73c0174-c000.snappy.parquet","size":962,"isDir":false,"modificationTime":1795497235911,"blockReplication":1,"blockSize":33554432,"action":"add"}
{"path":"file:///OUTPUT/part-00000-5b509cc9-2159-4cad-89d9-0e5dee808621-c000.snappy.parquet","size":962,"isDir":false,"modificationTime":1795497236095,"blockReplication":1,"blockSize":33554432,"action":"add"}
{"path":"file:///OUTPUT/part-00000-0926a586-c4ad-4be3-964b-a5948325c5c9-c000.snappy.parquet","size":962,"isDir":false,"modificationTime":1795497236311,"blockReplication":1,"blockSize":33554432,"action":"add"}"#).unwrap();
    fs::write(meta.join("4"), r#"v1
{"path":"file:///OUTPUT/part-00000-f1242434-9fcb-4a1d-b4f5-a491f7b5ffa4-c000.snappy.parquet","size":962,"isDir":false,"modificationTime":1795497236491,"blockReplication":1,"blockSize":33554432,"action":"add"}"#).unwrap();
    let listed = weir_engine::sink::committed_files(&out).unwrap();
    assert_eq!(listed.len(), 5, "3.compact (4 files) + 4 (1 file)");
    assert_eq!(listed[4].modification_time, 1_795_497_236_491);
    let mut sink = file_sink("parquet", &out);
    sink.add_batch(4, &schema(), &[], SinkOutputMode::Append)
        .unwrap();
    sink.add_batch(
        5,
        &schema(),
        &[batch(&[Some("x")], &[Some(1)])],
        SinkOutputMode::Append,
    )
    .unwrap();
    let compact = fs::read_to_string(meta.join("5.compact")).unwrap();
    assert_eq!(
        compact.lines().count(),
        1 + 6,
        "Spark's interval 2 is kept: 5 is a compaction"
    );
    assert!(compact.starts_with(&fs::read_to_string(meta.join("3.compact")).unwrap()));
}
