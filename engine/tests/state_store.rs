//! Behaviour of weir-engine's versioned state store on real files in temp dirs: round trips,
//! snapshots, a model-based property test, every kind of damage, retention, and readability by a
//! plain Arrow IPC reader.

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use arrow::array::{
    Array, ArrayRef, AsArray, DictionaryArray, Int64Array, StringArray, StructArray,
};
use arrow::array::{TimestampMillisecondArray, UInt64Array};
use arrow::datatypes::{
    DataType, Field, Fields, Int32Type, Int64Type, Schema, SchemaRef, TimeUnit,
    TimestampMillisecondType,
};
use arrow::ipc::reader::FileReader;
use arrow::record_batch::{RecordBatch, RecordBatchOptions};
use proptest::prelude::*;
use weir_engine::Error;
use weir_engine::state::{StateSchemaFingerprint, StateStore, StateStoreOptions};

/// (word, id) → count; count is nullable.
type Model = BTreeMap<(String, i64), Option<i64>>;

fn schema() -> SchemaRef {
    Arc::new(Schema::new(vec![
        Field::new("word", DataType::Utf8, false),
        Field::new("id", DataType::Int64, false),
        Field::new("count", DataType::Int64, true),
    ]))
}

fn options(snapshot_interval: u64, min_versions_to_retain: u64) -> StateStoreOptions {
    StateStoreOptions {
        snapshot_interval,
        min_versions_to_retain,
        fsync: true,
    }
}

fn open(root: &Path, opts: StateStoreOptions) -> StateStore {
    StateStore::open(root, 3, 1, schema(), 2, opts).unwrap()
}

fn rows(rows: &[(&str, i64, Option<i64>)]) -> RecordBatch {
    RecordBatch::try_new(
        schema(),
        vec![
            Arc::new(StringArray::from_iter_values(rows.iter().map(|r| r.0))),
            Arc::new(Int64Array::from_iter_values(rows.iter().map(|r| r.1))),
            Arc::new(Int64Array::from_iter(rows.iter().map(|r| r.2))),
        ],
    )
    .unwrap()
}

fn keys(keys: &[(&str, i64)]) -> RecordBatch {
    let key_schema = Arc::new(schema().project(&[0, 1]).unwrap());
    RecordBatch::try_new(
        key_schema,
        vec![
            Arc::new(StringArray::from_iter_values(keys.iter().map(|k| k.0))),
            Arc::new(Int64Array::from_iter_values(keys.iter().map(|k| k.1))),
        ],
    )
    .unwrap()
}

fn to_model(batch: &RecordBatch) -> Model {
    let words = batch.column(0).as_string::<i32>();
    let ids = batch.column(1).as_primitive::<Int64Type>();
    let counts = batch.column(2).as_primitive::<Int64Type>();
    let mut model = Model::new();
    for row in 0..batch.num_rows() {
        let count = counts.is_valid(row).then(|| counts.value(row));
        let previous = model.insert((words.value(row).to_string(), ids.value(row)), count);
        assert!(
            previous.is_none(),
            "duplicate key in loaded state at row {row}"
        );
    }
    model
}

fn model_batch(model: &Model) -> RecordBatch {
    let entries: Vec<(&str, i64, Option<i64>)> = model
        .iter()
        .map(|((w, i), c)| (w.as_str(), *i, *c))
        .collect();
    rows(&entries)
}

fn store_dir(root: &Path) -> PathBuf {
    root.join("3").join("1")
}

fn file_names(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    names.sort();
    names
}

fn state_error(err: Error) -> (PathBuf, String) {
    match err {
        Error::State { path, message } => (path, message),
        other => panic!("expected a state store error, got {other:?}"),
    }
}

/// Commits versions 1..=n, where version v upserts ("w{v % 7}", v % 3) with count v and removes
/// ("w{(v + 3) % 7}", (v + 3) % 3); returns the model after each version (index = version).
fn commit_history(store: &mut StateStore, n: u64, snapshots: bool) -> Vec<Model> {
    let mut history = vec![Model::new()];
    assert_eq!(store.load(0).unwrap().num_rows(), 0);
    for v in 1..=n {
        let mut model = history.last().unwrap().clone();
        let word = format!("w{}", v % 7);
        let id = (v % 3) as i64;
        let gone = (format!("w{}", (v + 3) % 7), ((v + 3) % 3) as i64);
        model.insert((word.clone(), id), Some(v as i64));
        model.remove(&gone);
        store
            .commit(
                v,
                &rows(&[(&word, id, Some(v as i64))]),
                &keys(&[(&gone.0, gone.1)]),
            )
            .unwrap();
        if snapshots {
            store.maybe_snapshot(v, &model_batch(&model)).unwrap();
        }
        history.push(model);
    }
    store.wait_for_snapshot().unwrap();
    history
}

#[test]
fn commit_then_load_round_trips_across_reopen() {
    let root = tempfile::tempdir().unwrap();
    {
        let mut store = open(root.path(), StateStoreOptions::default());
        assert_eq!(store.load(0).unwrap().num_rows(), 0);
        let stats = store
            .commit(1, &rows(&[("a", 1, Some(1)), ("b", 2, None)]), &keys(&[]))
            .unwrap();
        assert_eq!(
            (stats.version, stats.upserted_rows, stats.removed_rows),
            (1, 2, 0)
        );
        assert!(stats.bytes_written > 0);
        store
            .commit(
                2,
                &rows(&[("b", 2, Some(5)), ("c", 1, Some(7))]),
                &keys(&[("a", 1)]),
            )
            .unwrap();
        let metrics = store.metrics();
        assert_eq!(metrics.last_version, Some(2));
        assert_eq!(metrics.files_on_disk, 2);
        assert!(metrics.bytes_on_disk > 0);
    }
    let mut store = open(root.path(), StateStoreOptions::default());
    let v2 = store.load(2).unwrap();
    assert_eq!(v2.schema(), schema());
    assert_eq!(
        to_model(&v2),
        Model::from([
            (("b".to_string(), 2), Some(5)),
            (("c".to_string(), 1), Some(7))
        ])
    );
    let v1 = store.load(1).unwrap();
    assert_eq!(
        to_model(&v1),
        Model::from([
            (("a".to_string(), 1), Some(1)),
            (("b".to_string(), 2), None)
        ])
    );
    // Loaded state is sorted by key.
    let words = v1.column(0).as_string::<i32>();
    assert_eq!((words.value(0), words.value(1)), ("a", "b"));
    assert_eq!(file_names(&store_dir(root.path())), ["1.delta", "2.delta"]);
}

#[test]
fn same_key_upserted_twice_keeps_the_last_and_a_removal_in_the_same_commit_wins() {
    let root = tempfile::tempdir().unwrap();
    let mut store = open(root.path(), StateStoreOptions::default());
    store.load(0).unwrap();
    store
        .commit(
            1,
            &rows(&[("a", 1, Some(1)), ("a", 1, Some(2)), ("b", 1, Some(3))]),
            &keys(&[("b", 1), ("zzz", 9)]),
        )
        .unwrap();
    assert_eq!(
        to_model(&store.load(1).unwrap()),
        Model::from([(("a".to_string(), 1), Some(2))])
    );
}

#[test]
fn snapshot_plus_deltas_equals_deltas_only() {
    let with_snapshots = tempfile::tempdir().unwrap();
    let deltas_only = tempfile::tempdir().unwrap();
    let mut a = open(with_snapshots.path(), options(10, 100));
    let mut b = open(deltas_only.path(), options(1000, 100));
    let history = commit_history(&mut a, 25, true);
    assert_eq!(commit_history(&mut b, 25, true), history);
    let names = file_names(&store_dir(with_snapshots.path()));
    assert!(names.contains(&"10.snapshot".to_string()), "{names:?}");
    assert!(names.contains(&"20.snapshot".to_string()), "{names:?}");
    assert!(
        !names
            .iter()
            .any(|n| n.contains("snapshot") && !n.starts_with("10.") && !n.starts_with("20."))
    );
    assert!(
        !file_names(&store_dir(deltas_only.path()))
            .iter()
            .any(|n| n.contains("snapshot"))
    );
    assert_eq!(a.metrics().last_snapshot_version, Some(20));
    for version in [9, 10, 11, 20, 25] {
        let from_snapshot = a.load(version).unwrap();
        let from_deltas = b.load(version).unwrap();
        assert_eq!(from_snapshot, from_deltas, "version {version}");
        assert_eq!(to_model(&from_snapshot), history[version as usize]);
    }
    // The snapshot really is the base: without the deltas it covers, version 25 still loads.
    for v in 1..=20 {
        fs::remove_file(store_dir(with_snapshots.path()).join(format!("{v}.delta"))).unwrap();
    }
    assert_eq!(to_model(&a.load(25).unwrap()), history[25]);
}

#[test]
fn dropping_the_store_finishes_a_background_snapshot() {
    let root = tempfile::tempdir().unwrap();
    let big: Model = (0..200_000)
        .map(|i| ((format!("word-{i}"), i % 13), Some(i)))
        .collect();
    let mut store = open(root.path(), options(10, 100));
    store.load(0).unwrap();
    for v in 1..=10 {
        let upserts = if v == 1 { model_batch(&big) } else { rows(&[]) };
        store.commit(v, &upserts, &keys(&[])).unwrap();
    }
    store.maybe_snapshot(10, &model_batch(&big)).unwrap();
    drop(store);
    let dir = store_dir(root.path());
    assert!(dir.join("10.snapshot").exists());
    for v in 1..=10 {
        fs::remove_file(dir.join(format!("{v}.delta"))).unwrap();
    }
    let mut store = open(root.path(), options(10, 100));
    assert_eq!(to_model(&store.load(10).unwrap()), big);
}

#[test]
fn re_running_a_batch_rewrites_a_damaged_snapshot() {
    let root = tempfile::tempdir().unwrap();
    let dir = store_dir(root.path());
    let mut store = open(root.path(), options(10, 100));
    let history = commit_history(&mut store, 10, true);
    let snapshot = dir.join("10.snapshot");
    let mut bytes = fs::read(&snapshot).unwrap();
    let last = bytes.len() - 1;
    bytes[last] ^= 0xff;
    fs::write(&snapshot, bytes).unwrap();
    // The batch that produced version 10 runs again after a crash.
    store.load(9).unwrap();
    store
        .commit(10, &rows(&[("w3", 1, Some(10))]), &keys(&[("w6", 1)]))
        .unwrap();
    store
        .maybe_snapshot(10, &model_batch(&history[10]))
        .unwrap();
    store.wait_for_snapshot().unwrap();
    for v in 1..=10 {
        fs::remove_file(dir.join(format!("{v}.delta"))).unwrap();
    }
    assert_eq!(to_model(&store.load(10).unwrap()), history[10]);
}

#[test]
fn a_plain_arrow_file_reader_reads_a_delta() {
    let root = tempfile::tempdir().unwrap();
    let mut store = open(root.path(), StateStoreOptions::default());
    store.load(0).unwrap();
    store
        .commit(
            1,
            &rows(&[("a", 1, Some(10)), ("b", 2, None)]),
            &keys(&[("c", 3)]),
        )
        .unwrap();
    let file = fs::File::open(store_dir(root.path()).join("1.delta")).unwrap();
    let reader = FileReader::try_new(file, None).unwrap();
    let file_schema = reader.schema();
    let names: Vec<&str> = file_schema
        .fields()
        .iter()
        .map(|f| f.name().as_str())
        .collect();
    assert_eq!(names, ["word", "id", "count", "__weir_removed"]);
    assert_eq!(file_schema.metadata()["weir.state.kind"], "delta");
    assert_eq!(file_schema.metadata()["weir.state.version"], "1");
    assert_eq!(file_schema.metadata()["weir.state.key_columns"], "2");
    assert_eq!(reader.custom_metadata()["weir.state.crc32c"].len(), 8);
    let batches: Vec<RecordBatch> = reader.map(Result::unwrap).collect();
    assert_eq!(batches.len(), 1);
    let delta = &batches[0];
    assert_eq!(delta.num_rows(), 3, "2 upserts, then 1 removal");
    let removed: Vec<bool> = delta.column(3).as_boolean().iter().flatten().collect();
    assert_eq!(removed, [false, false, true]);
    assert_eq!(delta.column(0).as_string::<i32>().value(2), "c");
    assert!(delta.column(2).is_null(2));
    assert_eq!(delta.column(2).as_primitive::<Int64Type>().value(0), 10);
}

/// Commits three versions and returns the root and the store directory.
fn three_versions() -> (tempfile::TempDir, PathBuf) {
    let root = tempfile::tempdir().unwrap();
    let mut store = open(root.path(), StateStoreOptions::default());
    commit_history(&mut store, 3, false);
    let dir = store_dir(root.path());
    (root, dir)
}

#[test]
fn a_flipped_byte_is_named() {
    let (root, dir) = three_versions();
    let path = dir.join("2.delta");
    let mut bytes = fs::read(&path).unwrap();
    let middle = bytes.len() / 2;
    bytes[middle] ^= 0x01;
    fs::write(&path, bytes).unwrap();
    let mut store = open(root.path(), StateStoreOptions::default());
    assert!(
        store.load(1).is_ok(),
        "versions before the damage still load"
    );
    let (file, message) = state_error(store.load(3).unwrap_err());
    assert_eq!(file, path);
    assert!(
        message.starts_with("is damaged: its CRC32C is"),
        "{message}"
    );
    assert!(message.contains("delete the checkpoint"), "{message}");
}

#[test]
fn a_truncated_delta_is_named() {
    let (root, dir) = three_versions();
    let path = dir.join("3.delta");
    let bytes = fs::read(&path).unwrap();
    fs::write(&path, &bytes[..bytes.len() - 7]).unwrap();
    let mut store = open(root.path(), StateStoreOptions::default());
    let (file, message) = state_error(store.load(3).unwrap_err());
    assert_eq!(file, path);
    assert!(
        message.starts_with("is truncated: it does not end with an Arrow IPC file footer"),
        "{message}"
    );
    assert!(message.contains("restore the file"), "{message}");
}

#[test]
fn a_missing_delta_is_named() {
    let (root, dir) = three_versions();
    fs::remove_file(dir.join("2.delta")).unwrap();
    let mut store = open(root.path(), StateStoreOptions::default());
    let (file, message) = state_error(store.load(3).unwrap_err());
    assert_eq!(file, dir.join("2.delta"));
    assert!(
        message.contains("is missing; it is needed to load state version 3"),
        "{message}"
    );
    // Asking for a version that was never committed names the first missing delta too.
    let (file, _) = state_error(store.load(5).unwrap_err());
    assert_eq!(file, dir.join("2.delta"));
}

#[test]
fn a_file_without_weirs_checksum_is_named() {
    let (root, dir) = three_versions();
    // An Arrow IPC file written by another tool, with the right name and columns.
    let path = dir.join("2.delta");
    let file = fs::File::create(&path).unwrap();
    let mut writer = arrow::ipc::writer::FileWriter::try_new(file, &schema()).unwrap();
    writer.write(&rows(&[("a", 1, Some(1))])).unwrap();
    writer.finish().unwrap();
    let mut store = open(root.path(), StateStoreOptions::default());
    let (file, message) = state_error(store.load(2).unwrap_err());
    assert_eq!(file, path);
    assert!(
        message.starts_with("has no weir.state.crc32c footer metadata"),
        "{message}"
    );
}

#[test]
fn a_damaged_snapshot_is_named() {
    let root = tempfile::tempdir().unwrap();
    let mut store = open(root.path(), options(2, 100));
    commit_history(&mut store, 3, true);
    let path = store_dir(root.path()).join("2.snapshot");
    let mut bytes = fs::read(&path).unwrap();
    bytes[20] ^= 0x80;
    fs::write(&path, bytes).unwrap();
    let (file, message) = state_error(store.load(3).unwrap_err());
    assert_eq!(file, path);
    assert!(message.starts_with("is damaged"), "{message}");
}

#[test]
fn a_changed_state_schema_is_refused_naming_the_columns() {
    let (root, dir) = three_versions();
    let changed = Arc::new(Schema::new(vec![
        Field::new("word", DataType::Utf8, false),
        Field::new("id", DataType::Int64, false),
        Field::new("sum", DataType::Float64, true),
    ]));
    let mut store =
        StateStore::open(root.path(), 3, 1, changed, 2, StateStoreOptions::default()).unwrap();
    let (file, message) = state_error(store.load(3).unwrap_err());
    assert_eq!(file, dir.join("1.delta"));
    assert!(
        message.contains(
            "value columns were [count: int64], now [sum: float64] (removed count: int64, added sum: float64)"
        ),
        "{message}"
    );
    assert!(message.contains("delete the checkpoint"), "{message}");
    // A different key split of the same columns is a change as well.
    let resplit = StateStore::open(root.path(), 3, 1, schema(), 1, StateStoreOptions::default());
    let (_, message) = state_error(resplit.unwrap().load(3).unwrap_err());
    assert!(
        message.contains("key columns were [word: utf8, id: int64], now [word: utf8]"),
        "{message}"
    );
}

#[test]
fn a_renamed_file_is_named() {
    let (root, dir) = three_versions();
    fs::copy(dir.join("1.delta"), dir.join("2.delta")).unwrap();
    let mut store = open(root.path(), StateStoreOptions::default());
    let (file, message) = state_error(store.load(2).unwrap_err());
    assert_eq!(file, dir.join("2.delta"));
    assert!(
        message.contains("holds delta version 1 but its name says delta version 2"),
        "{message}"
    );
}

#[test]
fn purge_keeps_the_last_versions_loadable() {
    let root = tempfile::tempdir().unwrap();
    let mut store = open(root.path(), options(10, 12));
    let history = commit_history(&mut store, 35, true);
    let before = store.metrics();
    store.purge().unwrap();
    let after = store.metrics();
    assert!(after.files_on_disk < before.files_on_disk);
    assert!(after.bytes_on_disk < before.bytes_on_disk);
    let names = file_names(&store_dir(root.path()));
    assert_eq!(after.files_on_disk, names.len() as u64);
    // Oldest retained version is 24; its base is snapshot 20.
    assert!(!names.contains(&"20.delta".to_string()), "{names:?}");
    assert!(!names.contains(&"10.snapshot".to_string()), "{names:?}");
    assert!(names.contains(&"20.snapshot".to_string()), "{names:?}");
    assert!(names.contains(&"21.delta".to_string()), "{names:?}");
    let mut reopened = open(root.path(), options(10, 12));
    for version in 24..=35 {
        assert_eq!(
            to_model(&reopened.load(version).unwrap()),
            history[version as usize]
        );
    }
    // Purging again changes nothing.
    reopened.purge().unwrap();
    assert_eq!(file_names(&store_dir(root.path())), names);
}

#[test]
fn purge_without_a_usable_snapshot_deletes_nothing() {
    let root = tempfile::tempdir().unwrap();
    let mut store = open(root.path(), options(100, 2));
    commit_history(&mut store, 8, true);
    let before = file_names(&store_dir(root.path()));
    store.purge().unwrap();
    assert_eq!(file_names(&store_dir(root.path())), before);
}

#[test]
fn commits_must_follow_the_loaded_version() {
    let root = tempfile::tempdir().unwrap();
    let mut store = open(root.path(), StateStoreOptions::default());
    // An empty directory is version 0; "no change" may be any batch without rows.
    let nothing = RecordBatch::new_empty(Arc::new(Schema::empty()));
    assert!(store.commit(2, &nothing, &nothing).is_err());
    store.commit(1, &nothing, &nothing).unwrap();
    drop(store);
    // Once files exist, the version must be loaded before committing.
    let mut store = open(root.path(), StateStoreOptions::default());
    let err = store.commit(2, &rows(&[]), &keys(&[])).unwrap_err();
    assert!(matches!(err, Error::Internal(_)), "{err}");
    assert!(err.to_string().contains("load version 1 first"), "{err}");
    store.load(1).unwrap();
    store.commit(2, &rows(&[]), &keys(&[])).unwrap();
    // A batch re-run after a crash re-commits the same version over the earlier attempt.
    store.load(0).unwrap();
    store
        .commit(1, &rows(&[("x", 1, Some(1))]), &keys(&[]))
        .unwrap();
    assert_eq!(store.load(1).unwrap().num_rows(), 1);
}

#[test]
fn bad_options_and_schemas_are_refused() {
    let root = tempfile::tempdir().unwrap();
    let err = StateStore::open(root.path(), 0, 0, schema(), 2, options(0, 10)).unwrap_err();
    assert!(err.to_string().contains("snapshot_interval"), "{err}");
    let err = StateStore::open(root.path(), 0, 0, schema(), 2, options(10, 0)).unwrap_err();
    assert!(err.to_string().contains("min_versions_to_retain"), "{err}");
    assert!(StateStore::open(root.path(), 0, 0, schema(), 4, options(10, 10)).is_err());
    let reserved = Arc::new(Schema::new(vec![
        Field::new("k", DataType::Utf8, false),
        Field::new("__weir_removed", DataType::Boolean, false),
    ]));
    let err = StateStore::open(root.path(), 0, 0, reserved, 1, options(10, 10)).unwrap_err();
    assert!(err.to_string().contains("reserved"), "{err}");
    // Upserts with the wrong columns are a caller bug, reported before anything is written.
    let mut store = open(root.path(), StateStoreOptions::default());
    assert!(store.commit(1, &keys(&[("a", 1)]), &keys(&[])).is_err());
    assert!(
        store
            .commit(1, &rows(&[]), &rows(&[("a", 1, None)]))
            .is_err()
    );
    assert_eq!(store.metrics().files_on_disk, 0);
}

#[test]
fn window_struct_and_timestamp_keys_compare_by_value() {
    let window_type = DataType::Struct(Fields::from(vec![
        Field::new(
            "start",
            DataType::Timestamp(TimeUnit::Millisecond, None),
            false,
        ),
        Field::new(
            "end",
            DataType::Timestamp(TimeUnit::Millisecond, None),
            false,
        ),
    ]));
    let state_schema = Arc::new(Schema::new(vec![
        Field::new("window", window_type, false),
        Field::new("auction", DataType::UInt64, false),
        Field::new("count", DataType::Int64, false),
    ]));
    let window = |starts: &[i64]| -> ArrayRef {
        let start: ArrayRef = Arc::new(TimestampMillisecondArray::from(starts.to_vec()));
        let end: ArrayRef = Arc::new(TimestampMillisecondArray::from(
            starts.iter().map(|s| s + 10_000).collect::<Vec<_>>(),
        ));
        Arc::new(StructArray::from(vec![
            (
                Arc::new(Field::new(
                    "start",
                    DataType::Timestamp(TimeUnit::Millisecond, None),
                    false,
                )),
                start,
            ),
            (
                Arc::new(Field::new(
                    "end",
                    DataType::Timestamp(TimeUnit::Millisecond, None),
                    false,
                )),
                end,
            ),
        ]))
    };
    let state = |starts: &[i64], auctions: &[u64], counts: &[i64]| {
        RecordBatch::try_new(
            state_schema.clone(),
            vec![
                window(starts),
                Arc::new(UInt64Array::from(auctions.to_vec())),
                Arc::new(Int64Array::from(counts.to_vec())),
            ],
        )
        .unwrap()
    };
    let key_schema = Arc::new(state_schema.project(&[0, 1]).unwrap());
    let removal = |starts: &[i64], auctions: &[u64]| {
        RecordBatch::try_new(
            key_schema.clone(),
            vec![
                window(starts),
                Arc::new(UInt64Array::from(auctions.to_vec())),
            ],
        )
        .unwrap()
    };
    let root = tempfile::tempdir().unwrap();
    let mut store =
        StateStore::open(root.path(), 0, 0, state_schema.clone(), 2, options(2, 10)).unwrap();
    store.load(0).unwrap();
    store
        .commit(
            1,
            &state(&[0, 0, 10_000], &[1, 2, 1], &[1, 1, 1]),
            &removal(&[], &[]),
        )
        .unwrap();
    store
        .commit(2, &state(&[0], &[1], &[5]), &removal(&[10_000], &[1]))
        .unwrap();
    store
        .maybe_snapshot(2, &state(&[0, 0], &[1, 2], &[5, 1]))
        .unwrap();
    store
        .commit(3, &state(&[20_000], &[2], &[1]), &removal(&[0], &[2]))
        .unwrap();
    let loaded = store.load(3).unwrap();
    assert_eq!(loaded, state(&[0, 20_000], &[1, 2], &[5, 1]));
    let starts = loaded
        .column(0)
        .as_struct()
        .column(0)
        .as_primitive::<TimestampMillisecondType>();
    assert_eq!(starts.value(1), 20_000);
}

#[test]
fn dictionary_encoded_keys_and_values_compare_by_value() {
    let dictionary = DataType::Dictionary(Box::new(DataType::Int32), Box::new(DataType::Utf8));
    let state_schema = Arc::new(Schema::new(vec![
        Field::new("word", dictionary.clone(), false),
        Field::new("last_lang", dictionary, true),
    ]));
    let state = |words: Vec<&str>, langs: Vec<Option<&str>>| {
        let words: DictionaryArray<Int32Type> = words.into_iter().collect();
        let langs: DictionaryArray<Int32Type> = langs.into_iter().collect();
        RecordBatch::try_new(state_schema.clone(), vec![Arc::new(words), Arc::new(langs)]).unwrap()
    };
    let key_schema = Arc::new(state_schema.project(&[0]).unwrap());
    let removal = |words: Vec<&str>| {
        let words: DictionaryArray<Int32Type> = words.into_iter().collect();
        RecordBatch::try_new(key_schema.clone(), vec![Arc::new(words)]).unwrap()
    };
    let root = tempfile::tempdir().unwrap();
    let mut store =
        StateStore::open(root.path(), 0, 0, state_schema.clone(), 1, options(10, 10)).unwrap();
    store
        .commit(
            1,
            &state(vec!["b", "a"], vec![Some("en"), None]),
            &removal(vec![]),
        )
        .unwrap();
    // A different dictionary (other values, other order) for the same keys in the next delta.
    store
        .commit(
            2,
            &state(vec!["z", "b"], vec![Some("fr"), Some("de")]),
            &removal(vec!["a"]),
        )
        .unwrap();
    let loaded = store.load(2).unwrap();
    let words = loaded.column(0).as_dictionary::<Int32Type>();
    let words: Vec<&str> = words
        .downcast_dict::<StringArray>()
        .unwrap()
        .into_iter()
        .flatten()
        .collect();
    assert_eq!(words, ["b", "z"]);
    let langs = loaded.column(1).as_dictionary::<Int32Type>();
    let langs: Vec<&str> = langs
        .downcast_dict::<StringArray>()
        .unwrap()
        .into_iter()
        .flatten()
        .collect();
    assert_eq!(langs, ["de", "fr"]);
}

#[test]
fn a_global_aggregate_without_key_columns_keeps_one_row() {
    let state_schema = Arc::new(Schema::new(vec![Field::new(
        "count",
        DataType::Int64,
        false,
    )]));
    let one = |n: i64| {
        RecordBatch::try_new(
            state_schema.clone(),
            vec![Arc::new(Int64Array::from(vec![n]))],
        )
        .unwrap()
    };
    let no_keys = |n: usize| {
        RecordBatch::try_new_with_options(
            Arc::new(Schema::empty()),
            vec![],
            &RecordBatchOptions::new().with_row_count(Some(n)),
        )
        .unwrap()
    };
    let root = tempfile::tempdir().unwrap();
    let mut store =
        StateStore::open(root.path(), 0, 0, state_schema.clone(), 0, options(10, 10)).unwrap();
    store.load(0).unwrap();
    store.commit(1, &one(3), &no_keys(0)).unwrap();
    store.commit(2, &one(7), &no_keys(0)).unwrap();
    assert_eq!(store.load(2).unwrap(), one(7));
    store.commit(3, &one(1), &no_keys(1)).unwrap();
    assert_eq!(store.load(3).unwrap().num_rows(), 0);
}

#[test]
fn the_fingerprint_is_the_one_of_the_schema() {
    let root = tempfile::tempdir().unwrap();
    let store = open(root.path(), StateStoreOptions::default());
    assert_eq!(
        store.fingerprint().to_json(),
        r#"{"keys":[{"name":"word","type":"utf8"},{"name":"id","type":"int64"}],"values":[{"name":"count","type":"int64"}]}"#
    );
    assert_eq!(
        store.fingerprint(),
        &StateSchemaFingerprint::of(&schema(), 2).unwrap()
    );
}

/// One version's changes: upserts (key, count) and removed keys, over a small key domain so that
/// keys collide often.
#[derive(Debug, Clone)]
struct Change {
    upserts: Vec<((u8, i64), Option<i64>)>,
    removals: Vec<(u8, i64)>,
}

fn change_strategy() -> impl Strategy<Value = Change> {
    let key = (0u8..6, -2i64..3);
    (
        proptest::collection::vec((key.clone(), proptest::option::of(-50i64..50)), 0..6),
        proptest::collection::vec(key, 0..4),
    )
        .prop_map(|(upserts, removals)| Change { upserts, removals })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(24))]

    #[test]
    fn random_changes_load_like_an_in_memory_map(
        changes in proptest::collection::vec(change_strategy(), 1..30),
        interval in 1u64..6,
        retain in 1u64..8,
        purge_every in 1u64..5,
    ) {
        let root = tempfile::tempdir().unwrap();
        let opts = StateStoreOptions {
            snapshot_interval: interval,
            min_versions_to_retain: retain,
            fsync: false,
        };
        let mut store = open(root.path(), opts.clone());
        store.load(0).unwrap();
        let mut history = vec![Model::new()];
        for (i, change) in changes.iter().enumerate() {
            let version = i as u64 + 1;
            let mut model = history.last().unwrap().clone();
            let words: Vec<String> =
                change.upserts.iter().map(|((w, _), _)| format!("k{w}")).collect();
            let upserts: Vec<(&str, i64, Option<i64>)> = change
                .upserts
                .iter()
                .zip(&words)
                .map(|(((_, id), count), word)| (word.as_str(), *id, *count))
                .collect();
            let removed_words: Vec<String> =
                change.removals.iter().map(|(w, _)| format!("k{w}")).collect();
            let removals: Vec<(&str, i64)> = change
                .removals
                .iter()
                .zip(&removed_words)
                .map(|((_, id), word)| (word.as_str(), *id))
                .collect();
            for (word, id, count) in &upserts {
                model.insert((word.to_string(), *id), *count);
            }
            for (word, id) in &removals {
                model.remove(&(word.to_string(), *id));
            }
            store.commit(version, &rows(&upserts), &keys(&removals)).unwrap();
            store.maybe_snapshot(version, &model_batch(&model)).unwrap();
            if version.is_multiple_of(purge_every) {
                store.purge().unwrap();
            }
            history.push(model);
        }
        drop(store);
        let newest = changes.len() as u64;
        let mut reopened = open(root.path(), opts);
        let oldest = newest.saturating_sub(retain - 1).max(1);
        for version in (oldest..=newest).rev() {
            let loaded = to_model(&reopened.load(version).unwrap());
            prop_assert_eq!(&loaded, &history[version as usize]);
        }
    }
}
