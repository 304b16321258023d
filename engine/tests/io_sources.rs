//! Sources on real files: each format, each parse mode with malformed rows, rate limits, the
//! seen-files log across restarts, and the rate sources' deterministic rows.

use std::collections::BTreeMap;
use std::fs;
use std::path::Path;
use std::sync::Arc;

use arrow::array::{Array, AsArray, Int64Array, RecordBatch, StringArray};
use arrow::datatypes::{
    DataType, Field, Int64Type, Schema, SchemaRef, TimeUnit, TimestampMicrosecondType,
};
use weir_engine::Error;
use weir_engine::source::{
    MemoryStream, Offset, ReadLimit, Source, SourceContext, create_source, rate_schema,
};

fn opts(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

fn ctx(dir: &Path) -> SourceContext {
    SourceContext {
        checkpoint_dir: dir.join("sources/0"),
        fsync: true,
        ..Default::default()
    }
}

fn schema_ab() -> SchemaRef {
    Arc::new(Schema::new(vec![
        Field::new("a", DataType::Int64, true),
        Field::new("b", DataType::Utf8, true),
    ]))
}

fn schema_ab_corrupt() -> SchemaRef {
    Arc::new(Schema::new(vec![
        Field::new("a", DataType::Int64, true),
        Field::new("b", DataType::Utf8, true),
        Field::new("_corrupt_record", DataType::Utf8, true),
    ]))
}

/// Writes `name` and gives it a distinct mtime so listing order is deterministic.
fn write_file(dir: &Path, name: &str, content: &[u8], mtime_s: i64) {
    let path = dir.join(name);
    fs::write(&path, content).unwrap();
    let f = fs::File::options().write(true).open(&path).unwrap();
    let t = std::time::UNIX_EPOCH + std::time::Duration::from_secs(mtime_s as u64);
    f.set_modified(t).unwrap();
}

fn now_s() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

fn read_all(src: &mut Box<dyn Source>) -> Vec<RecordBatch> {
    let end = src.latest_offset(None, ReadLimit::All).unwrap().unwrap();
    src.read(None, &end).unwrap()
}

fn col_i64(batches: &[RecordBatch], i: usize) -> Vec<Option<i64>> {
    batches
        .iter()
        .flat_map(|b| {
            b.column(i)
                .as_primitive::<Int64Type>()
                .iter()
                .collect::<Vec<_>>()
        })
        .collect()
}

fn col_str(batches: &[RecordBatch], i: usize) -> Vec<Option<String>> {
    batches
        .iter()
        .flat_map(|b| {
            b.column(i)
                .as_string::<i32>()
                .iter()
                .map(|s| s.map(str::to_string))
                .collect::<Vec<_>>()
        })
        .collect()
}

fn file_source(
    tmp: &Path,
    format: &str,
    schema: Option<SchemaRef>,
    extra: &[(&str, &str)],
) -> weir_engine::Result<Box<dyn Source>> {
    let input = tmp.join("in");
    let mut o = opts(extra);
    o.insert("path".into(), input.to_string_lossy().into_owned());
    create_source(format, &o, schema, ctx(tmp))
}

#[test]
fn reads_csv_with_header_and_quotes() {
    let tmp = tempfile::tempdir().unwrap();
    fs::create_dir(tmp.path().join("in")).unwrap();
    write_file(
        &tmp.path().join("in"),
        "f1.csv",
        b"a,b\n1,\"x,y\"\n2,\n",
        now_s(),
    );
    let mut src = file_source(tmp.path(), "csv", Some(schema_ab()), &[("header", "true")]).unwrap();
    assert!(src.description().starts_with("FileStreamSource[file:/"));
    let batches = read_all(&mut src);
    assert_eq!(col_i64(&batches, 0), vec![Some(1), Some(2)]);
    assert_eq!(col_str(&batches, 1), vec![Some("x,y".into()), None]);
}

#[test]
fn reads_json_lines_text_and_parquet() {
    let tmp = tempfile::tempdir().unwrap();
    let input = tmp.path().join("in");
    fs::create_dir(&input).unwrap();
    write_file(
        &input,
        "f1.json",
        b"{\"a\":1,\"b\":\"x\"}\n\n{\"a\":2}\n",
        now_s(),
    );
    let mut json = file_source(tmp.path(), "json", Some(schema_ab()), &[]).unwrap();
    let batches = read_all(&mut json);
    assert_eq!(col_i64(&batches, 0), vec![Some(1), Some(2)]);
    assert_eq!(col_str(&batches, 1), vec![Some("x".into()), None]);

    let tmp = tempfile::tempdir().unwrap();
    let input = tmp.path().join("in");
    fs::create_dir(&input).unwrap();
    write_file(&input, "f.txt", b"hello\r\nworld\n", now_s());
    let mut text = file_source(tmp.path(), "text", None, &[]).unwrap();
    assert_eq!(text.schema().field(0).name(), "value");
    let batches = read_all(&mut text);
    assert_eq!(
        col_str(&batches, 0),
        vec![Some("hello".into()), Some("world".into())]
    );

    let tmp = tempfile::tempdir().unwrap();
    let input = tmp.path().join("in");
    fs::create_dir(&input).unwrap();
    let file_schema = Arc::new(Schema::new(vec![
        Field::new("b", DataType::Utf8, true),
        Field::new("a", DataType::Int64, true),
        Field::new("unused", DataType::Int64, true),
    ]));
    let batch = RecordBatch::try_new(
        file_schema.clone(),
        vec![
            Arc::new(StringArray::from(vec!["p", "q"])),
            Arc::new(Int64Array::from(vec![10, 20])),
            Arc::new(Int64Array::from(vec![0, 0])),
        ],
    )
    .unwrap();
    let file = fs::File::create(input.join("part-0.parquet")).unwrap();
    let mut writer = parquet::arrow::ArrowWriter::try_new(file, file_schema, None).unwrap();
    writer.write(&batch).unwrap();
    writer.close().unwrap();
    let mut pq = file_source(tmp.path(), "parquet", Some(schema_ab()), &[]).unwrap();
    pq.push_projection(&[1]);
    let batches = read_all(&mut pq);
    assert_eq!(
        batches[0].num_columns(),
        1,
        "projection push-down returns only column b"
    );
    assert_eq!(
        col_str(&batches, 0),
        vec![Some("p".into()), Some("q".into())]
    );
}

#[test]
fn schema_is_required_and_missing_path_is_clear() {
    let tmp = tempfile::tempdir().unwrap();
    fs::create_dir(tmp.path().join("in")).unwrap();
    let err = file_source(tmp.path(), "json", None, &[])
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("Schema must be specified when creating a streaming source DataFrame"),
        "{err}"
    );
    let o = opts(&[("path", "/definitely/not/here")]);
    let err = create_source("csv", &o, Some(schema_ab()), ctx(tmp.path()))
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("Path does not exist: file:/definitely/not/here"),
        "{err}"
    );
    let err = create_source("avro", &o, None, ctx(tmp.path()))
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("unknown streaming source format 'avro'"),
        "{err}"
    );
}

const BAD_CSV: &[u8] = b"1,x\nnope,y\n3,z,extra\n4,w\n";
const BAD_JSON: &[u8] =
    b"{\"a\":1,\"b\":\"x\"}\n{\"a\":\"nope\",\"b\":\"y\"}\n{broken\n{\"a\":4,\"b\":\"w\"}\n";

#[test]
fn permissive_mode_keeps_rows_and_fills_the_corrupt_column() {
    for (format, content, name) in [("csv", BAD_CSV, "f.csv"), ("json", BAD_JSON, "f.json")] {
        let tmp = tempfile::tempdir().unwrap();
        fs::create_dir(tmp.path().join("in")).unwrap();
        write_file(&tmp.path().join("in"), name, content, now_s());
        let mut src = file_source(tmp.path(), format, Some(schema_ab_corrupt()), &[]).unwrap();
        let batches = read_all(&mut src);
        let a = col_i64(&batches, 0);
        let corrupt = col_str(&batches, 2);
        assert_eq!(a.len(), 4, "{format}: every row is kept");
        assert_eq!((a[0], a[1], a[3]), (Some(1), None, Some(4)), "{format}");
        assert_eq!(corrupt[0], None, "{format}");
        assert!(
            corrupt[1].as_deref().is_some_and(|c| c.contains("nope")),
            "{format}: {corrupt:?}"
        );
        assert!(corrupt[2].is_some(), "{format}: {corrupt:?}");
        assert_eq!(corrupt[3], None, "{format}");
    }
}

#[test]
fn dropmalformed_mode_drops_bad_rows() {
    for (format, content, name) in [("csv", BAD_CSV, "f.csv"), ("json", BAD_JSON, "f.json")] {
        let tmp = tempfile::tempdir().unwrap();
        fs::create_dir(tmp.path().join("in")).unwrap();
        write_file(&tmp.path().join("in"), name, content, now_s());
        let mut src = file_source(
            tmp.path(),
            format,
            Some(schema_ab()),
            &[("mode", "DROPMALFORMED")],
        )
        .unwrap();
        let batches = read_all(&mut src);
        assert_eq!(col_i64(&batches, 0), vec![Some(1), Some(4)], "{format}");
        assert_eq!(
            col_str(&batches, 1),
            vec![Some("x".into()), Some("w".into())],
            "{format}"
        );
    }
}

#[test]
fn failfast_mode_names_file_and_line() {
    for (format, content, name) in [("csv", BAD_CSV, "f.csv"), ("json", BAD_JSON, "f.json")] {
        let tmp = tempfile::tempdir().unwrap();
        fs::create_dir(tmp.path().join("in")).unwrap();
        write_file(&tmp.path().join("in"), name, content, now_s());
        let mut src = file_source(
            tmp.path(),
            format,
            Some(schema_ab()),
            &[("mode", "failfast")],
        )
        .unwrap();
        let end = src.latest_offset(None, ReadLimit::All).unwrap().unwrap();
        let err = src.read(None, &end).unwrap_err();
        assert!(
            matches!(err, Error::MalformedRecord { .. }),
            "{format}: {err:?}"
        );
        let text = err.to_string();
        assert!(text.contains(&format!("{name}:2")), "{format}: {text}");
        assert!(text.contains("FAILFAST"), "{format}: {text}");
    }
}

#[test]
fn timestamp_format_is_applied() {
    let tmp = tempfile::tempdir().unwrap();
    fs::create_dir(tmp.path().join("in")).unwrap();
    write_file(
        &tmp.path().join("in"),
        "f.csv",
        b"01/01/2024 00:00:01\n",
        now_s(),
    );
    let schema = Arc::new(Schema::new(vec![Field::new(
        "t",
        DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into())),
        true,
    )]));
    let mut src = file_source(
        tmp.path(),
        "csv",
        Some(schema),
        &[
            ("timestampFormat", "dd/MM/yyyy HH:mm:ss"),
            ("mode", "FAILFAST"),
        ],
    )
    .unwrap();
    let batches = read_all(&mut src);
    let t = batches[0]
        .column(0)
        .as_primitive::<TimestampMicrosecondType>()
        .value(0);
    assert_eq!(t, 1_704_067_201_000_000);
}

#[test]
fn max_files_per_trigger_batches_files_in_mtime_order() {
    let tmp = tempfile::tempdir().unwrap();
    let input = tmp.path().join("in");
    fs::create_dir(&input).unwrap();
    let base = now_s() - 100;
    // Names sort opposite to mtimes: mtime decides.
    write_file(&input, "c.csv", b"1,x\n", base);
    write_file(&input, "b.csv", b"2,y\n", base + 1);
    write_file(&input, "a.csv", b"3,z\n", base + 2);
    let mut src = file_source(
        tmp.path(),
        "csv",
        Some(schema_ab()),
        &[("maxFilesPerTrigger", "1")],
    )
    .unwrap();
    assert_eq!(src.default_read_limit(), ReadLimit::MaxFiles(1));
    let mut start: Option<Offset> = None;
    let mut values = Vec::new();
    for expected in 0..3 {
        let limit = src.default_read_limit();
        let end = src.latest_offset(start.as_ref(), limit).unwrap().unwrap();
        assert_eq!(end.as_str(), format!("{{\"logOffset\":{expected}}}"));
        values.push(col_i64(&src.read(start.as_ref(), &end).unwrap(), 0));
        src.commit(&end).unwrap();
        start = Some(end);
    }
    assert_eq!(values, vec![vec![Some(1)], vec![Some(2)], vec![Some(3)]]);
    // Nothing new: the latest offset stays where it is.
    assert_eq!(
        src.latest_offset(start.as_ref(), ReadLimit::MaxFiles(1))
            .unwrap(),
        start
    );
    // The seen-files log is Spark's FileStreamSourceLog.
    let log0 = fs::read_to_string(tmp.path().join("sources/0/0")).unwrap();
    let uri = format!("file://{}", input.join("c.csv").display());
    assert_eq!(
        log0,
        format!(
            "v1\n{{\"path\":\"{uri}\",\"timestamp\":{},\"batchId\":0}}",
            base * 1000
        )
    );
}

#[test]
fn seen_files_survive_a_restart_and_are_never_reread() {
    let tmp = tempfile::tempdir().unwrap();
    let input = tmp.path().join("in");
    fs::create_dir(&input).unwrap();
    write_file(&input, "f1.json", b"{\"a\":1}\n", now_s() - 10);
    let end = {
        let mut src = file_source(tmp.path(), "json", Some(schema_ab()), &[]).unwrap();
        let end = src.latest_offset(None, ReadLimit::All).unwrap().unwrap();
        src.commit(&end).unwrap();
        end
    };
    // Restart: f1 was seen; only f2 is new.
    write_file(&input, "f2.json", b"{\"a\":2}\n", now_s());
    let mut src = file_source(tmp.path(), "json", Some(schema_ab()), &[]).unwrap();
    // Replaying the committed range still gives the same rows.
    assert_eq!(col_i64(&src.read(None, &end).unwrap(), 0), vec![Some(1)]);
    let next = src
        .latest_offset(Some(&end), ReadLimit::All)
        .unwrap()
        .unwrap();
    assert_eq!(next.as_str(), "{\"logOffset\":1}");
    assert_eq!(
        col_i64(&src.read(Some(&end), &next).unwrap(), 0),
        vec![Some(2)]
    );
    drop(src);
    let mut src = file_source(tmp.path(), "json", Some(schema_ab()), &[]).unwrap();
    assert_eq!(
        src.latest_offset(Some(&next), ReadLimit::All).unwrap(),
        Some(next)
    );
}

#[test]
fn source_log_compacts_every_ten_batches_and_available_now_splits_by_limit() {
    let tmp = tempfile::tempdir().unwrap();
    let input = tmp.path().join("in");
    fs::create_dir(&input).unwrap();
    let base = now_s() - 100;
    for i in 0..12 {
        write_file(
            &input,
            &format!("f{i:02}.json"),
            format!("{{\"a\":{i}}}\n").as_bytes(),
            base + i,
        );
    }
    let mut src = file_source(
        tmp.path(),
        "json",
        Some(schema_ab()),
        &[("maxFilesPerTrigger", "1")],
    )
    .unwrap();
    let stop = src.available_now_offset().unwrap().unwrap();
    assert_eq!(stop.as_str(), "{\"logOffset\":11}");
    assert!(tmp.path().join("sources/0/9.compact").exists());
    let compact = fs::read_to_string(tmp.path().join("sources/0/9.compact")).unwrap();
    assert_eq!(compact.lines().count(), 11, "v1 + 10 entries");
    assert!(compact.lines().nth(1).unwrap().ends_with("\"batchId\":0}"));
    // Rate-limited steps walk up to the stop offset.
    let step = src
        .latest_offset(
            Some(&Offset("{\"logOffset\":4}".into())),
            ReadLimit::MaxFiles(1),
        )
        .unwrap();
    assert_eq!(step.unwrap().as_str(), "{\"logOffset\":5}");
    drop(src);
    let mut src = file_source(
        tmp.path(),
        "json",
        Some(schema_ab()),
        &[("maxFilesPerTrigger", "1")],
    )
    .unwrap();
    let all = src.read(None, &stop).unwrap();
    assert_eq!(col_i64(&all, 0), (0..12).map(Some).collect::<Vec<_>>());
}

#[test]
fn max_bytes_per_trigger_takes_at_least_one_file() {
    let tmp = tempfile::tempdir().unwrap();
    let input = tmp.path().join("in");
    fs::create_dir(&input).unwrap();
    let base = now_s() - 100;
    write_file(&input, "f1.json", b"{\"a\":1}\n", base);
    write_file(&input, "f2.json", b"{\"a\":2}\n", base + 1);
    let mut src = file_source(
        tmp.path(),
        "json",
        Some(schema_ab()),
        &[("maxBytesPerTrigger", "1")],
    )
    .unwrap();
    let limit = src.default_read_limit();
    assert_eq!(limit, ReadLimit::MaxBytes(1));
    let end = src.latest_offset(None, limit).unwrap().unwrap();
    assert_eq!(col_i64(&src.read(None, &end).unwrap(), 0), vec![Some(1)]);
}

#[test]
fn rate_micro_batch_is_deterministic() {
    let tmp = tempfile::tempdir().unwrap();
    let make = || {
        create_source(
            "rate-micro-batch",
            &opts(&[("rowsPerBatch", "5"), ("numPartitions", "2")]),
            None,
            ctx(tmp.path()),
        )
        .unwrap()
    };
    let mut src = make();
    assert_eq!(src.schema(), rate_schema());
    let first = src
        .latest_offset(None, src.default_read_limit())
        .unwrap()
        .unwrap();
    assert_eq!(first.as_str(), "{\"offset\":5,\"timestamp\":1000}");
    let second = src
        .latest_offset(Some(&first), ReadLimit::All)
        .unwrap()
        .unwrap();
    assert_eq!(second.as_str(), "{\"offset\":10,\"timestamp\":2000}");
    let rows = src.read(Some(&first), &second).unwrap();
    // Partition-major like Spark's two readers: 5,7,9 then 6,8.
    assert_eq!(
        col_i64(&rows, 1),
        vec![Some(5), Some(7), Some(9), Some(6), Some(8)]
    );
    let ts: Vec<i64> = rows[0]
        .column(0)
        .as_primitive::<TimestampMicrosecondType>()
        .values()
        .to_vec();
    assert!(
        ts.iter().all(|&t| t == 1_000_000),
        "every row has the start offset's timestamp"
    );
    let again = make().read(Some(&first), &second).unwrap();
    assert_eq!(rows, again);
}

#[test]
fn rate_source_matches_spark_values_and_timestamps() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("sources/0");
    fs::create_dir_all(&dir).unwrap();
    fs::write(dir.join("0"), "v1\n1000").unwrap();
    let mut src = create_source(
        "rate",
        &opts(&[("rowsPerSecond", "2")]),
        None,
        ctx(tmp.path()),
    )
    .unwrap();
    assert_eq!(
        src.description(),
        "RateStreamV2[rowsPerSecond=2, rampUpTimeSeconds=0, numPartitions=1"
    );
    let rows = src
        .read(Some(&Offset("0".into())), &Offset("2".into()))
        .unwrap();
    assert_eq!(col_i64(&rows, 1), vec![Some(0), Some(1), Some(2), Some(3)]);
    let ts: Vec<i64> = rows[0]
        .column(0)
        .as_primitive::<TimestampMicrosecondType>()
        .values()
        .to_vec();
    assert_eq!(ts, vec![1_000_000, 1_500_000, 2_000_000, 2_500_000]);
    // The wall clock is far past the creation time: the latest offset is a bare number.
    let latest = src.latest_offset(None, ReadLimit::All).unwrap().unwrap();
    assert!(latest.as_str().parse::<i64>().unwrap() > 1_000_000);
}

#[test]
fn rate_source_records_its_start_time_once() {
    let tmp = tempfile::tempdir().unwrap();
    create_source("rate", &opts(&[]), None, ctx(tmp.path())).unwrap();
    let first = fs::read_to_string(tmp.path().join("sources/0/0")).unwrap();
    assert!(first.starts_with("v1\n"));
    create_source("rate", &opts(&[]), None, ctx(tmp.path())).unwrap();
    assert_eq!(
        fs::read_to_string(tmp.path().join("sources/0/0")).unwrap(),
        first
    );
}

#[test]
fn memory_stream_offsets_are_block_indices() {
    let schema = Arc::new(Schema::new(vec![Field::new("v", DataType::Int64, false)]));
    let stream = MemoryStream::new(schema.clone());
    let mut src = stream.source();
    assert_eq!(src.latest_offset(None, ReadLimit::All).unwrap(), None);
    let batch = |v: Vec<i64>| {
        RecordBatch::try_new(schema.clone(), vec![Arc::new(Int64Array::from(v))]).unwrap()
    };
    assert_eq!(stream.add_batch(batch(vec![1, 2])), Offset("0".into()));
    assert_eq!(
        stream.add_data(vec![batch(vec![3]), batch(vec![4])]),
        Offset("1".into())
    );
    let end = src.latest_offset(None, ReadLimit::All).unwrap().unwrap();
    assert_eq!(end.as_str(), "1");
    assert_eq!(
        col_i64(&src.read(None, &end).unwrap(), 0),
        vec![Some(1), Some(2), Some(3), Some(4)]
    );
    assert_eq!(
        col_i64(&src.read(Some(&Offset("0".into())), &end).unwrap(), 0),
        vec![Some(3), Some(4)]
    );
    assert!(src.read(None, &Offset("7".into())).is_err());
    assert!(
        src.read(None, &end)
            .unwrap()
            .iter()
            .all(|b| b.column(0).null_count() == 0)
    );
}

#[test]
fn latest_first_takes_the_newest_file_first() {
    let tmp = tempfile::tempdir().unwrap();
    let input = tmp.path().join("in");
    fs::create_dir(&input).unwrap();
    let base = now_s() - 100;
    write_file(&input, "old.json", b"{\"a\":1}\n", base);
    write_file(&input, "new.json", b"{\"a\":2}\n", base + 1);
    let mut src = file_source(
        tmp.path(),
        "json",
        Some(schema_ab()),
        &[("latestFirst", "true"), ("maxFilesPerTrigger", "1")],
    )
    .unwrap();
    let end = src
        .latest_offset(None, ReadLimit::MaxFiles(1))
        .unwrap()
        .unwrap();
    assert_eq!(col_i64(&src.read(None, &end).unwrap(), 0), vec![Some(2)]);
}

#[test]
fn max_file_age_ignores_files_older_than_the_newest_seen_minus_the_age() {
    let tmp = tempfile::tempdir().unwrap();
    let input = tmp.path().join("in");
    fs::create_dir(&input).unwrap();
    let now = now_s();
    // Batch 0 takes every file, however old.
    write_file(&input, "ancient.json", b"{\"a\":0}\n", now - 30 * 86_400);
    write_file(&input, "f1.json", b"{\"a\":1}\n", now - 10);
    let mut src = file_source(
        tmp.path(),
        "json",
        Some(schema_ab()),
        &[("maxFileAge", "1h")],
    )
    .unwrap();
    let first = src.latest_offset(None, ReadLimit::All).unwrap().unwrap();
    assert_eq!(
        col_i64(&src.read(None, &first).unwrap(), 0),
        vec![Some(0), Some(1)]
    );
    // A late file older than (newest seen − 1h) is never read; a fresh one is.
    write_file(&input, "late.json", b"{\"a\":2}\n", now - 2 * 3600);
    write_file(&input, "f2.json", b"{\"a\":3}\n", now);
    let next = src
        .latest_offset(Some(&first), ReadLimit::All)
        .unwrap()
        .unwrap();
    assert_eq!(
        col_i64(&src.read(Some(&first), &next).unwrap(), 0),
        vec![Some(3)]
    );
}

#[test]
fn file_name_only_treats_same_names_as_the_same_file() {
    let tmp = tempfile::tempdir().unwrap();
    let input = tmp.path().join("in");
    fs::create_dir_all(input.join("x")).unwrap();
    fs::create_dir_all(input.join("y")).unwrap();
    let base = now_s() - 100;
    write_file(&input.join("x"), "f.json", b"{\"a\":1}\n", base);
    let mut src = file_source(
        tmp.path(),
        "json",
        Some(schema_ab()),
        &[("fileNameOnly", "true")],
    )
    .unwrap();
    let first = src.latest_offset(None, ReadLimit::All).unwrap().unwrap();
    write_file(&input.join("y"), "f.json", b"{\"a\":2}\n", base + 1);
    assert_eq!(
        src.latest_offset(Some(&first), ReadLimit::All).unwrap(),
        Some(first)
    );
}

#[test]
fn glob_paths_and_hidden_files() {
    let tmp = tempfile::tempdir().unwrap();
    let input = tmp.path().join("in");
    fs::create_dir(&input).unwrap();
    let base = now_s() - 100;
    write_file(&input, "a.json", b"{\"a\":1}\n", base);
    write_file(&input, "b.txt", b"{\"a\":2}\n", base + 1);
    write_file(&input, ".hidden.json", b"{\"a\":3}\n", base + 2);
    write_file(&input, "_SUCCESS", b"", base + 3);
    let mut o = opts(&[]);
    o.insert("path".into(), format!("{}/*.json", input.display()));
    let mut src = create_source("json", &o, Some(schema_ab()), ctx(tmp.path())).unwrap();
    assert_eq!(col_i64(&read_all(&mut src), 0), vec![Some(1)]);
    let tmp2 = tempfile::tempdir().unwrap();
    fs::create_dir(tmp2.path().join("in")).unwrap();
    for name in ["a.json", ".hidden.json", "_SUCCESS"] {
        fs::copy(input.join(name), tmp2.path().join("in").join(name)).unwrap();
    }
    let mut dir_src = file_source(tmp2.path(), "json", Some(schema_ab()), &[]).unwrap();
    assert_eq!(col_i64(&read_all(&mut dir_src), 0), vec![Some(1)]);
}

#[test]
fn json_written_by_the_file_sink_reads_back_with_utc_timestamps() {
    use arrow::array::TimestampMicrosecondArray;
    use weir_engine::sink::{SinkContext, SinkOutputMode, create_sink};
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("in");
    let schema = Arc::new(Schema::new(vec![
        Field::new(
            "t",
            DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into())),
            true,
        ),
        Field::new("a", DataType::Int64, true),
    ]));
    let batch = RecordBatch::try_new(
        schema.clone(),
        vec![
            Arc::new(
                TimestampMicrosecondArray::from(vec![1_704_067_200_123_000]).with_timezone("UTC"),
            ),
            Arc::new(Int64Array::from(vec![5])),
        ],
    )
    .unwrap();
    for format in ["json", "csv", "parquet"] {
        let out = out.join(format);
        let mut sink = create_sink(
            format,
            &opts(&[("path", &out.to_string_lossy())]),
            SinkContext {
                query_name: None,
                fsync: false,
                ..Default::default()
            },
        )
        .unwrap();
        sink.add_batch(
            0,
            &schema,
            std::slice::from_ref(&batch),
            SinkOutputMode::Append,
        )
        .unwrap();
        let mut o = opts(&[("mode", "FAILFAST")]);
        o.insert("path".into(), out.to_string_lossy().into_owned());
        let mut src = create_source(
            format,
            &o,
            Some(schema.clone()),
            ctx(&tmp.path().join(format)),
        )
        .unwrap();
        let back = read_all(&mut src);
        assert_eq!(back.len(), 1, "{format}");
        assert_eq!(
            back[0].column(0).as_ref(),
            batch.column(0).as_ref(),
            "{format}"
        );
        assert_eq!(
            back[0].column(1).as_ref(),
            batch.column(1).as_ref(),
            "{format}"
        );
    }
}

#[test]
fn a_file_sink_directory_is_read_through_its_log() {
    use weir_engine::sink::{SinkContext, SinkOutputMode, committed_files, create_sink};
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("in");
    let mut sink = create_sink(
        "json",
        &opts(&[("path", &out.to_string_lossy())]),
        SinkContext {
            query_name: None,
            fsync: false,
            ..Default::default()
        },
    )
    .unwrap();
    let batch = RecordBatch::try_new(
        schema_ab(),
        vec![
            Arc::new(Int64Array::from(vec![1])),
            Arc::new(StringArray::from(vec!["x"])),
        ],
    )
    .unwrap();
    sink.add_batch(0, &schema_ab(), &[batch], SinkOutputMode::Append)
        .unwrap();
    // A torn, uncommitted part file (crash before the log entry) is not read.
    fs::write(out.join("part-00000-torn-c000.json"), b"{\"a\":99}\n{\"a\"").unwrap();
    assert_eq!(committed_files(&out).unwrap().len(), 1);
    let mut src = file_source(
        tmp.path(),
        "json",
        Some(schema_ab()),
        &[("mode", "FAILFAST")],
    )
    .unwrap();
    assert_eq!(col_i64(&read_all(&mut src), 0), vec![Some(1)]);
}

#[test]
fn rate_source_ramps_up_like_spark() {
    // Spark's own example: rampUpTime 4 s, 10 rows/s → 0 2 6 12 20 30 40 rows after 0..6 s.
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("sources/0");
    fs::create_dir_all(&dir).unwrap();
    fs::write(dir.join("0"), "v1\n0").unwrap();
    let mut src = create_source(
        "rate",
        &opts(&[
            ("rowsPerSecond", "10"),
            ("rampUpTime", "4s"),
            ("numPartitions", "3"),
        ]),
        None,
        ctx(tmp.path()),
    )
    .unwrap();
    let all = src.read(None, &Offset("6".into())).unwrap();
    assert_eq!(all.iter().map(RecordBatch::num_rows).sum::<usize>(), 40);
    let third = src
        .read(Some(&Offset("2".into())), &Offset("3".into()))
        .unwrap();
    let mut values: Vec<i64> = col_i64(&third, 1).into_iter().flatten().collect();
    values.sort_unstable();
    assert_eq!(values, (6..12).collect::<Vec<_>>());
    let huge = create_source(
        "rate",
        &opts(&[
            ("rowsPerSecond", "9223372036854775807"),
            ("rampUpTime", "5"),
        ]),
        None,
        ctx(tmp.path()),
    );
    assert!(
        huge.is_ok(),
        "absurd rates are accepted without overflow panics"
    );
}

#[test]
fn every_built_in_source_honours_projection() {
    let tmp = tempfile::tempdir().unwrap();
    let mut rate = create_source(
        "rate-micro-batch",
        &opts(&[("rowsPerBatch", "3")]),
        None,
        ctx(tmp.path()),
    )
    .unwrap();
    rate.push_projection(&[1]);
    let end = rate.latest_offset(None, ReadLimit::All).unwrap().unwrap();
    let rows = rate.read(None, &end).unwrap();
    assert_eq!(rows[0].num_columns(), 1);
    assert_eq!(col_i64(&rows, 0), vec![Some(0), Some(1), Some(2)]);

    let stream = MemoryStream::new(schema_ab());
    stream.add_batch(
        RecordBatch::try_new(
            schema_ab(),
            vec![
                Arc::new(Int64Array::from(vec![7])),
                Arc::new(StringArray::from(vec!["s"])),
            ],
        )
        .unwrap(),
    );
    let mut mem = stream.source();
    mem.push_projection(&[1, 0]);
    let end = mem.latest_offset(None, ReadLimit::All).unwrap().unwrap();
    let rows = mem.read(None, &end).unwrap();
    assert_eq!(col_str(&rows, 0), vec![Some("s".to_string())]);
    assert_eq!(col_i64(&rows, 1), vec![Some(7)]);
    // Out-of-range indices clear the projection: full rows again.
    mem.push_projection(&[5]);
    assert_eq!(mem.read(None, &end).unwrap()[0].schema(), schema_ab());
}

#[test]
fn available_now_never_passes_its_starting_snapshot() {
    let tmp = tempfile::tempdir().unwrap();
    let input = tmp.path().join("in");
    fs::create_dir(&input).unwrap();
    let base = now_s() - 100;
    write_file(&input, "f1.json", b"{\"a\":1}\n", base);
    let mut src = file_source(tmp.path(), "json", Some(schema_ab()), &[]).unwrap();
    let stop = src.available_now_offset().unwrap().unwrap();
    write_file(&input, "f2.json", b"{\"a\":2}\n", base + 1);
    let end = src.latest_offset(None, ReadLimit::All).unwrap().unwrap();
    assert_eq!(end, stop);
    assert_eq!(
        src.latest_offset(Some(&end), ReadLimit::All).unwrap(),
        Some(end)
    );

    // rate-micro-batch restarted at a committed offset: the frozen stop is one batch beyond it.
    let mut rate = create_source(
        "rate-micro-batch",
        &opts(&[("rowsPerBatch", "5")]),
        None,
        ctx(tmp.path()),
    )
    .unwrap();
    rate.available_now_offset().unwrap();
    let committed = Offset("{\"offset\":10,\"timestamp\":2000}".into());
    let next = rate
        .latest_offset(Some(&committed), ReadLimit::All)
        .unwrap()
        .unwrap();
    assert_eq!(next.as_str(), "{\"offset\":15,\"timestamp\":3000}");
    assert_eq!(
        rate.latest_offset(Some(&next), ReadLimit::All).unwrap(),
        Some(next)
    );
}

#[test]
fn parquet_with_many_row_groups_is_read_in_file_order() {
    let tmp = tempfile::tempdir().unwrap();
    let input = tmp.path().join("in");
    fs::create_dir_all(&input).unwrap();
    let file_schema = Arc::new(Schema::new(vec![
        Field::new("a", DataType::Int64, true),
        Field::new("b", DataType::Utf8, true),
    ]));
    let n = 1000i64;
    let batch = RecordBatch::try_new(
        file_schema.clone(),
        vec![
            Arc::new(Int64Array::from((0..n).collect::<Vec<_>>())),
            Arc::new(StringArray::from(
                (0..n).map(|i| format!("s{i}")).collect::<Vec<_>>(),
            )),
        ],
    )
    .unwrap();
    let props = parquet::file::properties::WriterProperties::builder()
        .set_max_row_group_row_count(Some(70))
        .build();
    let file = fs::File::create(input.join("part-0.parquet")).unwrap();
    let mut writer = parquet::arrow::ArrowWriter::try_new(file, file_schema, Some(props)).unwrap();
    writer.write(&batch).unwrap();
    writer.close().unwrap();
    let mut pq = file_source(tmp.path(), "parquet", Some(schema_ab()), &[]).unwrap();
    let batches = read_all(&mut pq);
    let a = col_i64(&batches, 0);
    assert_eq!(a, (0..n).map(Some).collect::<Vec<_>>());
    let b = col_str(&batches, 1);
    assert_eq!(b[999].as_deref(), Some("s999"));
}

/// A large unquoted CSV is parsed in chunks on all cores; rows keep file order and the common
/// `yyyy-MM-dd HH:mm:ss.SSS` timestamps parse exactly (fast path) next to chrono's general path.
#[test]
fn large_csv_parses_in_order_with_fast_timestamps() {
    let tmp = tempfile::tempdir().unwrap();
    let input = tmp.path().join("in");
    fs::create_dir(&input).unwrap();
    let n = 120_000i64;
    let mut text = String::with_capacity(6 << 20);
    for i in 0..n {
        let ms = i * 1_337;
        let secs = ms / 1000;
        text.push_str(&format!(
            "{i},2024-01-{:02} {:02}:{:02}:{:02}.{:03},padding-to-make-the-file-bigger-than-four-megabytes\n",
            1 + secs / 86_400,
            secs / 3600 % 24,
            secs / 60 % 60,
            secs % 60,
            ms % 1000
        ));
    }
    assert!(text.len() > 4 << 20);
    write_file(&input, "big.csv", text.as_bytes(), now_s());
    let schema = Arc::new(Schema::new(vec![
        Field::new("id", DataType::Int64, true),
        Field::new(
            "t",
            DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into())),
            true,
        ),
        Field::new("pad", DataType::Utf8, true),
    ]));
    let mut src = file_source(
        tmp.path(),
        "csv",
        Some(schema),
        &[
            ("timestampFormat", "yyyy-MM-dd HH:mm:ss.SSS"),
            ("mode", "FAILFAST"),
        ],
    )
    .unwrap();
    let batches = read_all(&mut src);
    let ids = col_i64(&batches, 0);
    assert_eq!(ids, (0..n).map(Some).collect::<Vec<_>>());
    let base = 1_704_067_200_000_000i64; // 2024-01-01T00:00:00Z
    let mut row = 0;
    for b in &batches {
        let t = b.column(1).as_primitive::<TimestampMicrosecondType>();
        for i in 0..t.len() {
            assert_eq!(t.value(i), base + (row as i64) * 1_337_000, "row {row}");
            row += 1;
        }
    }
}

/// Projection push-down into CSV: only the requested columns are decoded, in the requested
/// order, timestamps parsed with the format included.
#[test]
fn csv_projection_decodes_only_requested_columns() {
    let tmp = tempfile::tempdir().unwrap();
    let input = tmp.path().join("in");
    fs::create_dir(&input).unwrap();
    write_file(
        &input,
        "p.csv",
        b"1,2024-01-01 00:00:01.500,x\n2,2024-01-01 00:00:02.000,y\n",
        now_s(),
    );
    let schema = Arc::new(Schema::new(vec![
        Field::new("id", DataType::Int64, true),
        Field::new(
            "t",
            DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into())),
            true,
        ),
        Field::new("s", DataType::Utf8, true),
    ]));
    let mut src = file_source(
        tmp.path(),
        "csv",
        Some(schema),
        &[("timestampFormat", "yyyy-MM-dd HH:mm:ss.SSS")],
    )
    .unwrap();
    src.push_projection(&[2, 1]);
    let batches = read_all(&mut src);
    assert_eq!(batches[0].num_columns(), 2);
    assert_eq!(batches[0].schema().field(0).name(), "s");
    assert_eq!(
        col_str(&batches, 0),
        vec![Some("x".to_string()), Some("y".to_string())]
    );
    let t = batches[0]
        .column(1)
        .as_primitive::<TimestampMicrosecondType>();
    assert_eq!(t.value(0), 1_704_067_201_500_000);
    assert_eq!(t.value(1), 1_704_067_202_000_000);
}

fn write_sorted_parquet(dir: &Path, rows: i64, rows_per_group: usize) {
    fs::create_dir_all(dir).unwrap();
    let file_schema = Arc::new(Schema::new(vec![
        Field::new("a", DataType::Int64, true),
        Field::new("b", DataType::Utf8, true),
    ]));
    let batch = RecordBatch::try_new(
        file_schema.clone(),
        vec![
            Arc::new(Int64Array::from((0..rows).collect::<Vec<_>>())),
            Arc::new(StringArray::from(
                (0..rows).map(|i| format!("s{i}")).collect::<Vec<_>>(),
            )),
        ],
    )
    .unwrap();
    let props = parquet::file::properties::WriterProperties::builder()
        .set_max_row_group_row_count(Some(rows_per_group))
        .build();
    let file = fs::File::create(dir.join("sorted.parquet")).unwrap();
    let mut writer = parquet::arrow::ArrowWriter::try_new(file, file_schema, Some(props)).unwrap();
    writer.write(&batch).unwrap();
    writer.close().unwrap();
}

/// Predicate push-down into Parquet: row groups whose min/max rule a bound out are not read.
#[test]
fn parquet_skips_row_groups_ruled_out_by_pushed_bounds() {
    use weir_engine::source::{BoundOp, ColumnBound};
    let tmp = tempfile::tempdir().unwrap();
    write_sorted_parquet(&tmp.path().join("in"), 1000, 100);
    let mut pq = file_source(tmp.path(), "parquet", Some(schema_ab()), &[]).unwrap();
    pq.push_filters(&[ColumnBound {
        column: "a".into(),
        op: BoundOp::GtEq,
        value: 905,
    }]);
    let a = col_i64(&read_all(&mut pq), 0);
    // Only the last row group [900, 999] can hold a >= 905; it is read whole.
    assert_eq!(a, (900..1000).map(Some).collect::<Vec<_>>());
    for (op, value, expected_rows) in [
        (BoundOp::Eq, 250, 100),
        (BoundOp::Lt, 100, 100),
        (BoundOp::LtEq, 100, 200),
        (BoundOp::Gt, 999, 0),
        (BoundOp::Eq, 5000, 0),
    ] {
        let tmp = tempfile::tempdir().unwrap();
        write_sorted_parquet(&tmp.path().join("in"), 1000, 100);
        let mut pq = file_source(tmp.path(), "parquet", Some(schema_ab()), &[]).unwrap();
        pq.push_filters(&[ColumnBound {
            column: "a".into(),
            op,
            value,
        }]);
        let rows: usize = read_all(&mut pq).iter().map(|b| b.num_rows()).sum();
        assert_eq!(rows, expected_rows, "{op:?} {value}");
    }
}

/// End to end: a query's WHERE is pushed into the Parquet reader and the answer is unchanged.
#[test]
fn pushed_down_filter_keeps_the_exact_answer() {
    use weir_engine::{Session, SessionConfig, Trigger};
    use weir_plan::expr::{col, lit};
    let tmp = tempfile::tempdir().unwrap();
    write_sorted_parquet(&tmp.path().join("in"), 1000, 100);
    let s = Session::with_config(SessionConfig {
        fsync: false,
        ..Default::default()
    })
    .unwrap();
    let df = s
        .read_stream()
        .format("parquet")
        .schema(schema_ab())
        .load_path(Some(tmp.path().join("in").to_str().unwrap()))
        .unwrap()
        .filter(col("a").gt_eq(lit(905i64)))
        .unwrap();
    assert!(
        df.explain().unwrap().contains("pushed_filters"),
        "{}",
        df.explain().unwrap()
    );
    let seen = Arc::new(std::sync::Mutex::new(Vec::new()));
    let sink = seen.clone();
    let q = df
        .write_stream()
        .trigger(Trigger::AvailableNow)
        .foreach_batch(move |batches, _| {
            for b in batches {
                let a = b.column(0).as_primitive::<arrow::datatypes::Int64Type>();
                sink.lock().unwrap().extend(a.values().iter().copied());
            }
            Ok(())
        })
        .start()
        .unwrap();
    q.await_termination().unwrap();
    let mut got = seen.lock().unwrap().clone();
    got.sort_unstable();
    assert_eq!(got, (905..1000).collect::<Vec<_>>());
}

/// A file source wakes its idle query when a file arrives (inotify), so a new file is read at
/// once even with a polling delay far longer than the test allows.
#[test]
fn a_new_file_wakes_the_idle_query_before_the_polling_delay() {
    use std::time::{Duration, Instant};
    use weir_engine::{Session, SessionConfig};
    let tmp = tempfile::tempdir().unwrap();
    let input = tmp.path().join("in");
    std::fs::create_dir_all(&input).unwrap();
    let s = Session::with_config(SessionConfig {
        fsync: false,
        polling_delay: Duration::from_secs(60),
        ..Default::default()
    })
    .unwrap();
    let seen = Arc::new(std::sync::Mutex::new(0usize));
    let sink = seen.clone();
    let q = s
        .read_stream()
        .format("json")
        .schema(schema_ab())
        .load_path(Some(input.to_str().unwrap()))
        .unwrap()
        .write_stream()
        .foreach_batch(move |batches, _| {
            *sink.lock().unwrap() += batches.iter().map(|b| b.num_rows()).sum::<usize>();
            Ok(())
        })
        .start()
        .unwrap();
    // Let the query go idle (its first look found nothing), then drop a file atomically.
    std::thread::sleep(Duration::from_millis(300));
    let staged = tmp.path().join("f.json");
    std::fs::write(&staged, "{\"a\":1,\"b\":\"x\"}\n{\"a\":2,\"b\":\"y\"}\n").unwrap();
    let dropped = Instant::now();
    std::fs::rename(&staged, input.join("f.json")).unwrap();
    while *seen.lock().unwrap() < 2 {
        assert!(
            dropped.elapsed() < Duration::from_secs(20),
            "the new file was not read within 20 s (polling delay 60 s): no wake-up"
        );
        std::thread::sleep(Duration::from_millis(5));
    }
    q.stop().unwrap();
}

/// With a watcher, a batch stats only the reported paths instead of listing the directory.
/// What it reads must be what a listing would: files dropped together are admitted one per
/// trigger (`maxFilesPerTrigger`) in modification-time order, hidden names are skipped, and files
/// in subdirectories, new or existing, are found (the directory is read recursively).
#[test]
fn watched_directory_finds_what_a_listing_would() {
    use std::time::{Duration, Instant};
    use weir_engine::{Session, SessionConfig};
    let tmp = tempfile::tempdir().unwrap();
    let input = tmp.path().join("in");
    std::fs::create_dir_all(input.join("old-sub")).unwrap();
    let s = Session::with_config(SessionConfig {
        fsync: false,
        polling_delay: Duration::from_secs(60),
        ..Default::default()
    })
    .unwrap();
    let batches_seen = Arc::new(std::sync::Mutex::new(Vec::<Vec<i64>>::new()));
    let sink = batches_seen.clone();
    let q = s
        .read_stream()
        .format("json")
        .schema(schema_ab())
        .option("maxFilesPerTrigger", 1)
        .load_path(Some(input.to_str().unwrap()))
        .unwrap()
        .write_stream()
        .foreach_batch(move |batches, _| {
            let mut values: Vec<i64> = batches
                .iter()
                .flat_map(|b| col_i64(std::slice::from_ref(b), 0))
                .flatten()
                .collect();
            values.sort_unstable();
            sink.lock().unwrap().push(values);
            Ok(())
        })
        .start()
        .unwrap();
    // The first look (a full listing) finds nothing; from then on the watcher reports.
    std::thread::sleep(Duration::from_millis(300));
    let staged = tmp.path().join("staged");
    std::fs::create_dir_all(&staged).unwrap();
    let drop_file = |rel: &str, a: i64, age_s: u64| {
        let path = staged.join(rel.replace('/', "_"));
        std::fs::write(&path, format!("{{\"a\":{a}}}\n")).unwrap();
        let mtime = std::time::SystemTime::now() - Duration::from_secs(age_s);
        std::fs::File::options()
            .write(true)
            .open(&path)
            .unwrap()
            .set_modified(mtime)
            .unwrap();
        let target = input.join(rel);
        std::fs::create_dir_all(target.parent().unwrap()).unwrap();
        std::fs::rename(&path, target).unwrap();
    };
    // Arriving together (one directory renamed in), newest first: only the mtime order puts
    // them right. Hidden names inside are skipped.
    let together = tmp.path().join("together");
    std::fs::create_dir_all(&together).unwrap();
    for (name, a, age_s) in [
        ("c.json", 3, 10),
        ("b.json", 2, 20),
        ("a.json", 1, 30),
        (".hidden.json", 100, 5),
        ("_skip.json", 200, 5),
    ] {
        let path = together.join(name);
        std::fs::write(&path, format!("{{\"a\":{a}}}\n")).unwrap();
        let mtime = std::time::SystemTime::now() - Duration::from_secs(age_s);
        std::fs::File::options()
            .write(true)
            .open(&path)
            .unwrap()
            .set_modified(mtime)
            .unwrap();
    }
    std::fs::rename(&together, input.join("new-sub")).unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    let wait_for = |n: usize| {
        while batches_seen.lock().unwrap().concat().len() < n {
            assert!(
                Instant::now() < deadline,
                "got {:?}",
                batches_seen.lock().unwrap()
            );
            std::thread::sleep(Duration::from_millis(5));
        }
    };
    wait_for(3);
    // Later files in a subdirectory that existed before the query and in the one it saw
    // arrive.
    drop_file("old-sub/d.json", 4, 2);
    wait_for(4);
    drop_file("new-sub/e.json", 5, 1);
    wait_for(5);
    q.stop().unwrap();
    let got = batches_seen.lock().unwrap().clone();
    let got: Vec<Vec<i64>> = got.into_iter().filter(|b| !b.is_empty()).collect();
    assert_eq!(got, vec![vec![1], vec![2], vec![3], vec![4], vec![5]]);
}

/// A file found by a look but left for a later trigger (`maxFilesPerTrigger`) is looked at
/// again when its turn comes: if it was deleted meanwhile it is not admitted (a listing would
/// not see it either), and the files the watcher reported since are.
#[test]
fn a_watched_file_deleted_before_its_trigger_is_not_admitted() {
    use std::sync::atomic::{AtomicUsize, Ordering};
    let tmp = tempfile::tempdir().unwrap();
    let input = tmp.path().join("in");
    fs::create_dir(&input).unwrap();
    let base = now_s() - 100;
    write_file(&input, "f1.json", b"{\"a\":1}\n", base);
    write_file(&input, "f2.json", b"{\"a\":2}\n", base + 1);
    let mut src = file_source(
        tmp.path(),
        "json",
        Some(schema_ab()),
        &[("maxFilesPerTrigger", "1")],
    )
    .unwrap();
    let woken = Arc::new(AtomicUsize::new(0));
    let w = woken.clone();
    src.on_new_data(Arc::new(move || {
        w.fetch_add(1, Ordering::SeqCst);
    }));
    // First look: a full listing; f1 is admitted, f2 waits for the next trigger.
    let first = src
        .latest_offset(None, ReadLimit::MaxFiles(1))
        .unwrap()
        .unwrap();
    assert_eq!(col_i64(&src.read(None, &first).unwrap(), 0), vec![Some(1)]);
    // f2 goes away before its turn; f3 arrives (reported by the watcher).
    fs::remove_file(input.join("f2.json")).unwrap();
    write_file(&input, "f3.json", b"{\"a\":3}\n", base + 2);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    while woken.load(Ordering::SeqCst) < 2 {
        assert!(std::time::Instant::now() < deadline, "no watcher events");
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
    let second = src
        .latest_offset(Some(&first), ReadLimit::MaxFiles(1))
        .unwrap()
        .unwrap();
    assert_eq!(
        col_i64(&src.read(Some(&first), &second).unwrap(), 0),
        vec![Some(3)]
    );
    let log1 = fs::read_to_string(tmp.path().join("sources/0/1")).unwrap();
    assert!(
        log1.contains("f3.json") && !log1.contains("f2.json"),
        "{log1}"
    );
}
