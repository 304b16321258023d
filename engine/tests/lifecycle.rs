//! Query lifecycle through the public API: failures stay inside their query, names are unique,
//! one run per checkpoint, listeners see every event, streaming actions fail like Spark's, and a
//! checkpoint written by a different query is refused with a clear error.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use arrow::array::{Int64Array, RecordBatch};
use arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use weir_engine::query::listener::{
    QueryStartedEvent, QueryTerminatedEvent, StreamingQueryListener,
};
use weir_engine::{Session, SessionConfig, StreamingQueryProgress, Trigger};
use weir_plan::expr::col;

fn schema() -> SchemaRef {
    Arc::new(Schema::new(vec![Field::new("x", DataType::Int64, true)]))
}

fn rows(v: &[i64]) -> RecordBatch {
    RecordBatch::try_new(schema(), vec![Arc::new(Int64Array::from(v.to_vec()))]).unwrap()
}

fn session() -> Session {
    Session::with_config(SessionConfig {
        fsync: false,
        ..Default::default()
    })
    .unwrap()
}

#[test]
fn a_panic_in_one_query_fails_that_query_only() {
    let s = session();
    let (bad_in, bad) = s.read_stream().memory(schema()).unwrap();
    let (good_in, good) = s.read_stream().memory(schema()).unwrap();
    let bad_q = bad
        .write_stream()
        .query_name("bad")
        .foreach_batch(|batches, _| {
            if batches.iter().any(|b| b.num_rows() > 0) {
                panic!("user code exploded");
            }
            Ok(())
        })
        .start()
        .unwrap();
    let seen = Arc::new(AtomicUsize::new(0));
    let seen2 = seen.clone();
    let good_q = good
        .write_stream()
        .query_name("good")
        .foreach_batch(move |batches, _| {
            seen2.fetch_add(batches.iter().map(|b| b.num_rows()).sum(), Ordering::SeqCst);
            Ok(())
        })
        .start()
        .unwrap();
    bad_in.add_batch(rows(&[1]));
    let err = bad_q.await_termination().unwrap_err().to_string();
    assert!(err.contains("user code exploded"), "{err}");
    assert!(!bad_q.is_active());
    assert!(bad_q.exception().is_some());
    good_in.add_batch(rows(&[1, 2, 3]));
    good_q.process_all_available().unwrap();
    assert_eq!(seen.load(Ordering::SeqCst), 3);
    assert!(good_q.is_active());
    good_q.stop().unwrap();
}

#[test]
fn an_error_returned_by_foreach_batch_fails_the_query_with_its_message() {
    let s = session();
    let (input, df) = s.read_stream().memory(schema()).unwrap();
    let q = df
        .write_stream()
        .foreach_batch(|batches, id| {
            if batches.iter().any(|b| b.num_rows() > 0) {
                return Err(format!("downstream rejected batch {id}").into());
            }
            Ok(())
        })
        .start()
        .unwrap();
    input.add_batch(rows(&[7]));
    let err = q.await_termination().unwrap_err().to_string();
    assert!(err.contains("downstream rejected batch 0"), "{err}");
}

#[test]
fn query_names_are_unique_among_active_queries() {
    let s = session();
    let (_in, df) = s.read_stream().memory(schema()).unwrap();
    let q = df
        .write_stream()
        .format("noop")
        .query_name("q")
        .start()
        .unwrap();
    let err = df
        .write_stream()
        .format("noop")
        .query_name("q")
        .start()
        .unwrap_err()
        .to_string();
    assert!(err.contains("already active"), "{err}");
    q.stop().unwrap();
    let q2 = df
        .write_stream()
        .format("noop")
        .query_name("q")
        .start()
        .unwrap();
    q2.stop().unwrap();
}

#[test]
fn one_run_per_checkpoint() {
    let dir = tempfile::tempdir().unwrap();
    let s = session();
    let (_in, df) = s.read_stream().memory(schema()).unwrap();
    let ck = dir.path().join("ck");
    let q = df
        .write_stream()
        .format("noop")
        .option("checkpointLocation", ck.display())
        .start()
        .unwrap();
    let err = df
        .write_stream()
        .format("noop")
        .option("checkpointLocation", ck.display())
        .start()
        .unwrap_err()
        .to_string();
    assert!(err.contains("checkpoint"), "{err}");
    q.stop().unwrap();
    // Once the first run stopped, the checkpoint can be used again.
    let q = df
        .write_stream()
        .format("noop")
        .option("checkpointLocation", ck.display())
        .start()
        .unwrap();
    q.stop().unwrap();
}

#[derive(Default)]
struct Recorder {
    events: Mutex<Vec<String>>,
}

impl StreamingQueryListener for Recorder {
    fn on_query_started(&self, e: &QueryStartedEvent) {
        self.events
            .lock()
            .unwrap()
            .push(format!("started {}", e.name.clone().unwrap_or_default()));
    }
    fn on_query_progress(&self, p: &StreamingQueryProgress) {
        self.events
            .lock()
            .unwrap()
            .push(format!("progress {} rows {}", p.batch_id, p.num_input_rows));
    }
    fn on_query_terminated(&self, e: &QueryTerminatedEvent) {
        self.events
            .lock()
            .unwrap()
            .push(format!("terminated failed={}", e.exception.is_some()));
    }
}

#[test]
fn listeners_see_start_progress_and_termination() {
    let s = session();
    let rec = Arc::new(Recorder::default());
    s.add_listener(rec.clone());
    let (input, df) = s.read_stream().memory(schema()).unwrap();
    let q = df
        .write_stream()
        .format("noop")
        .query_name("listened")
        .start()
        .unwrap();
    input.add_batch(rows(&[1, 2]));
    q.process_all_available().unwrap();
    q.stop().unwrap();
    let events = rec.events.lock().unwrap().clone();
    assert_eq!(events.first().map(String::as_str), Some("started listened"));
    assert!(
        events.contains(&"progress 0 rows 2".to_string()),
        "{events:?}"
    );
    assert_eq!(
        events.last().map(String::as_str),
        Some("terminated failed=false")
    );
    let last = q.last_progress().unwrap();
    assert_eq!(last.batch_id, 0);
    assert_eq!(q.recent_progress().len(), 1);
    assert_eq!(q.status().message, "Stopped");
}

#[test]
fn immediate_actions_on_a_stream_fail_like_spark() {
    let s = session();
    let (_in, df) = s.read_stream().memory(schema()).unwrap();
    for err in [df.count().unwrap_err(), df.show().unwrap_err()] {
        let msg = err.to_string();
        assert!(
            msg.contains(
                "Queries with streaming sources must be executed with writeStream.start()"
            ),
            "{msg}"
        );
    }
}

#[test]
fn a_checkpoint_of_another_query_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let ck = dir.path().join("ck");
    let s = session();
    // Query 1: a rate-micro-batch stream, one batch.
    let rate = s
        .read_stream()
        .format("rate-micro-batch")
        .option("rowsPerBatch", 5)
        .load()
        .unwrap();
    let q = rate
        .write_stream()
        .format("noop")
        .trigger(Trigger::Once)
        .option("checkpointLocation", ck.display())
        .start()
        .unwrap();
    q.await_termination().unwrap();
    // Query 2: an aggregation on the same checkpoint.
    let agg = rate.group_by([col("value")]).count().unwrap();
    let err = agg
        .write_stream()
        .format("noop")
        .output_mode("complete")
        .option("checkpointLocation", ck.display())
        .start()
        .and_then(|q| {
            q.await_termination_timeout(Duration::from_secs(20))
                .map(|_| ())
        })
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("changed") || err.contains("another query"),
        "{err}"
    );
}

#[test]
fn a_file_sink_without_checkpoint_location_is_rejected() {
    let s = session();
    let (_in, df) = s.read_stream().memory(schema()).unwrap();
    let err = df
        .write_stream()
        .format("parquet")
        .option("path", "/tmp/nowhere")
        .start()
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("checkpointLocation must be specified"),
        "{err}"
    );
}
