//! Property test: whatever rows a file sink writes (csv, json lines, parquet), the file
//! source reads back unchanged through the sink's `_spark_metadata` log.

use std::collections::BTreeMap;
use std::sync::Arc;

use arrow::array::{Int64Array, RecordBatch, StringArray};
use arrow::compute::concat_batches;
use arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use proptest::prelude::*;
use weir_engine::sink::{SinkContext, SinkOutputMode, create_sink};
use weir_engine::source::{ReadLimit, SourceContext, create_source};

fn schema() -> SchemaRef {
    Arc::new(Schema::new(vec![
        Field::new("n", DataType::Int64, true),
        Field::new("s", DataType::Utf8, true),
    ]))
}

fn round_trip(format: &str, batch: &RecordBatch) -> RecordBatch {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("out");
    let path = out.to_string_lossy().into_owned();
    let options = BTreeMap::from([("path".to_string(), path)]);
    let mut sink = create_sink(format, &options, SinkContext::default()).unwrap();
    sink.add_batch(
        0,
        &schema(),
        std::slice::from_ref(batch),
        SinkOutputMode::Append,
    )
    .unwrap();
    let mut read_options = options.clone();
    read_options.insert("mode".into(), "FAILFAST".into());
    let ctx = SourceContext {
        checkpoint_dir: tmp.path().join("cp/sources/0"),
        fsync: false,
        ..Default::default()
    };
    let mut source = create_source(format, &read_options, Some(schema()), ctx).unwrap();
    let Some(end) = source.latest_offset(None, ReadLimit::All).unwrap() else {
        return RecordBatch::new_empty(schema());
    };
    let batches = source.read(None, &end).unwrap();
    concat_batches(&schema(), &batches).unwrap()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]

    #[test]
    fn file_sink_output_reads_back_unchanged(
        rows in prop::collection::vec(
            (proptest::option::of(any::<i64>()), proptest::option::of("[a-z ,\"\n\r{}:]{1,8}")),
            1..20,
        )
    ) {
        let ns: Vec<Option<i64>> = rows.iter().map(|r| r.0).collect();
        let ss: Vec<Option<String>> = rows.iter().map(|r| r.1.clone()).collect();
        let batch = RecordBatch::try_new(
            schema(),
            vec![Arc::new(Int64Array::from(ns)), Arc::new(StringArray::from(ss))],
        )
        .unwrap();
        for format in ["json", "parquet", "csv"] {
            let back = round_trip(format, &batch);
            prop_assert_eq!(&back, &batch, "format {}", format);
        }
    }
}
