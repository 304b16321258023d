//! Running queries: the micro-batch loop and the `StreamingQuery` handle.
//!
//! Owns the write-ahead protocol of Spark's `MicroBatchExecution` (offsets/N before running
//! batch N, commits/N after the sink and the state have committed), recovery on start (a batch
//! without a commit is re-run with exactly its recorded offsets, watermark and timestamp),
//! triggers, the watermark's advance between batches, progress reports and listeners.
//!
//! It does not evaluate the query (that is [`crate::exec`]), read or write data (sources and
//! sinks) or lay out files (checkpoint).

pub mod listener;
pub mod progress;
pub mod trigger;

use std::collections::{BTreeMap, VecDeque};
use std::panic::AssertUnwindSafe;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use arrow::record_batch::RecordBatch;

use crate::checkpoint::{Checkpoint, CheckpointOptions, CommitMetadata, OffsetSeq};
use crate::error::{Error, Result};
use crate::exec::{BatchContext, PhysicalPlan};
use crate::sink::Sink;
use crate::source::{Offset, Source};

use listener::{QueryIdleEvent, QueryStartedEvent, QueryTerminatedEvent, StreamingQueryListener};
use progress::{
    SinkProgress, SourceProgress, StreamingQueryProgress, StreamingQueryStatus, iso_millis, rate,
};
use trigger::{Clock, Trigger, Wakeup};

/// How many progress reports a query keeps (Spark's `numRecentProgressUpdates`).
const RECENT_PROGRESS: usize = 100;

/// How the global watermark combines several watermarked inputs
/// (`spark.sql.streaming.multipleWatermarkPolicy`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum WatermarkPolicy {
    /// The slowest input decides (Spark's default).
    #[default]
    Min,
    /// The fastest input decides.
    Max,
}

/// Everything a query needs besides its plan, sources and sink.
#[derive(Clone)]
pub struct QueryConfig {
    /// Optional name, unique among a session's active queries.
    pub name: Option<String>,
    /// Checkpoint directory.
    pub checkpoint_dir: PathBuf,
    /// When batches run.
    pub trigger: Trigger,
    /// Whether checkpoint and state files are fsynced (default true).
    pub fsync: bool,
    /// Processing-time clock.
    pub clock: Arc<dyn Clock>,
    /// Wait between polls when no data arrived (Spark's `pollingDelay`, 10 ms).
    pub polling_delay: Duration,
    /// Batches of offsets/commits (and state versions) kept (Spark's `minBatchesToRetain`, 100).
    pub min_batches_to_retain: u64,
    /// How several watermarks combine.
    pub watermark_policy: WatermarkPolicy,
}

/// State shared between the query thread and its handles.
struct Shared {
    id: Mutex<String>,
    run_id: String,
    name: Option<String>,
    status: Mutex<StreamingQueryStatus>,
    progress: Mutex<VecDeque<StreamingQueryProgress>>,
    exception: Mutex<Option<String>>,
    stop: Wakeup,
    stop_requested: AtomicBool,
    terminated: Mutex<bool>,
    terminated_cv: Condvar,
    /// Incremented by `process_all_available`; the loop acknowledges the value it saw when a
    /// later check found nothing to do.
    drain_requests: AtomicU64,
    drain_acked: Mutex<u64>,
    drain_cv: Condvar,
    listeners: Vec<Arc<dyn StreamingQueryListener>>,
    explain: String,
}

/// A handle to a running (or finished) streaming query. Cheap to clone.
#[derive(Clone)]
pub struct StreamingQuery {
    shared: Arc<Shared>,
    thread: Arc<Mutex<Option<std::thread::JoinHandle<()>>>>,
}

impl std::fmt::Debug for StreamingQuery {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StreamingQuery")
            .field("id", &self.id())
            .field("run_id", &self.shared.run_id)
            .field("name", &self.shared.name)
            .finish()
    }
}

impl StreamingQuery {
    /// Starts the query on its own thread. Fails (without starting) when the checkpoint cannot be
    /// opened or belongs to a different query; failures after start are reported by
    /// [`StreamingQuery::await_termination`].
    pub fn start(
        plan: PhysicalPlan,
        sources: Vec<Box<dyn Source>>,
        sink: Box<dyn Sink>,
        checkpoint: Checkpoint,
        config: QueryConfig,
        listeners: Vec<Arc<dyn StreamingQueryListener>>,
    ) -> Result<StreamingQuery> {
        let shared = Arc::new(Shared {
            id: Mutex::new(checkpoint.query_id().to_string()),
            run_id: uuid::Uuid::new_v4().to_string(),
            name: config.name.clone(),
            status: Mutex::new(StreamingQueryStatus {
                message: "Initializing sources".into(),
                is_data_available: false,
                is_trigger_active: false,
            }),
            progress: Mutex::new(VecDeque::new()),
            exception: Mutex::new(None),
            stop: Wakeup::default(),
            stop_requested: AtomicBool::new(false),
            terminated: Mutex::new(false),
            terminated_cv: Condvar::new(),
            drain_requests: AtomicU64::new(0),
            drain_acked: Mutex::new(0),
            drain_cv: Condvar::new(),
            listeners,
            explain: plan.explain(),
        });
        let started = QueryStartedEvent {
            id: checkpoint.query_id().to_string(),
            run_id: shared.run_id.clone(),
            name: config.name.clone(),
            timestamp: iso_millis(config.clock.now_ms()),
        };
        for l in &shared.listeners {
            let _ = std::panic::catch_unwind(AssertUnwindSafe(|| l.on_query_started(&started)));
        }
        let exec = MicroBatchExecution {
            shared: shared.clone(),
            plan,
            sources,
            sink,
            checkpoint,
            config,
        };
        let thread_name = format!(
            "weir-query-{}",
            exec.config
                .name
                .clone()
                .unwrap_or_else(|| shared.run_id[..8].to_string())
        );
        let handle = std::thread::Builder::new()
            .name(thread_name)
            .spawn(move || exec.run_to_termination())
            .map_err(|e| Error::Internal(format!("cannot spawn the query thread: {e}")))?;
        Ok(StreamingQuery {
            shared,
            thread: Arc::new(Mutex::new(Some(handle))),
        })
    }

    /// The stable query id (from the checkpoint's `metadata`).
    pub fn id(&self) -> String {
        lock(&self.shared.id).clone()
    }

    /// The id of this run.
    pub fn run_id(&self) -> &str {
        &self.shared.run_id
    }

    /// The query name, if one was given.
    pub fn name(&self) -> Option<&str> {
        self.shared.name.as_deref()
    }

    /// Whether the query is still running.
    pub fn is_active(&self) -> bool {
        !*lock(&self.shared.terminated)
    }

    /// What the query is doing now.
    pub fn status(&self) -> StreamingQueryStatus {
        lock(&self.shared.status).clone()
    }

    /// The last (up to 100) progress reports, oldest first.
    pub fn recent_progress(&self) -> Vec<StreamingQueryProgress> {
        lock(&self.shared.progress).iter().cloned().collect()
    }

    /// The newest progress report.
    pub fn last_progress(&self) -> Option<StreamingQueryProgress> {
        lock(&self.shared.progress).back().cloned()
    }

    /// The failure that terminated the query, if it failed.
    pub fn exception(&self) -> Option<String> {
        lock(&self.shared.exception).clone()
    }

    /// The plans of the query, with which kernels were compiled natively.
    pub fn explain(&self) -> String {
        self.shared.explain.clone()
    }

    /// Stops the query after the batch in flight (if any) finishes and waits for its thread.
    pub fn stop(&self) -> Result<()> {
        self.request_stop();
        self.join();
        Ok(())
    }

    /// Asks the query to stop after the batch in flight, without waiting (safe to call from a
    /// listener, which runs on the query's own thread).
    pub fn request_stop(&self) {
        self.shared.stop_requested.store(true, Ordering::SeqCst);
        self.shared.stop.set();
    }

    /// Waits until the query terminates; returns its failure as an error.
    pub fn await_termination(&self) -> Result<()> {
        {
            let mut done = lock(&self.shared.terminated);
            while !*done {
                done = self
                    .shared
                    .terminated_cv
                    .wait(done)
                    .unwrap_or_else(|p| p.into_inner());
            }
        }
        self.join();
        self.failure()
    }

    /// Waits at most `timeout`; returns `Ok(true)` when the query terminated cleanly.
    pub fn await_termination_timeout(&self, timeout: Duration) -> Result<bool> {
        let deadline = Instant::now() + timeout;
        let mut done = lock(&self.shared.terminated);
        while !*done {
            let now = Instant::now();
            if now >= deadline {
                return Ok(false);
            }
            done = self
                .shared
                .terminated_cv
                .wait_timeout(done, deadline - now)
                .map(|(g, _)| g)
                .unwrap_or_else(|p| p.into_inner().0);
        }
        drop(done);
        self.join();
        self.failure().map(|_| true)
    }

    /// Blocks until every row available in the sources when called has been processed and
    /// committed (for tests), or the query terminated.
    pub fn process_all_available(&self) -> Result<()> {
        let ticket = self.shared.drain_requests.fetch_add(1, Ordering::SeqCst) + 1;
        self.shared.stop.set();
        let mut acked = lock(&self.shared.drain_acked);
        while *acked < ticket {
            if !self.is_active() {
                drop(acked);
                return self.failure();
            }
            acked = self
                .shared
                .drain_cv
                .wait_timeout(acked, Duration::from_millis(20))
                .map(|(g, _)| g)
                .unwrap_or_else(|p| p.into_inner().0);
        }
        drop(acked);
        self.failure()
    }

    fn failure(&self) -> Result<()> {
        match self.exception() {
            None => Ok(()),
            Some(message) => Err(Error::QueryFailed {
                name: self.name().map(str::to_string).unwrap_or_else(|| self.id()),
                message,
            }),
        }
    }

    fn join(&self) {
        let handle = lock(&self.thread).take();
        if let Some(h) = handle
            && h.thread().id() != std::thread::current().id()
        {
            let _ = h.join();
        }
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// The query thread: owns the plan, the sources, the sink and the checkpoint.
struct MicroBatchExecution {
    shared: Arc<Shared>,
    plan: PhysicalPlan,
    sources: Vec<Box<dyn Source>>,
    sink: Box<dyn Sink>,
    checkpoint: Checkpoint,
    config: QueryConfig,
}

/// Offsets and timings of one batch, for the progress report.
struct BatchRun {
    batch_id: u64,
    starts: Vec<Option<Offset>>,
    ends: Vec<Option<Offset>>,
    watermark_ms: i64,
    /// The previous batch's watermark: late input is judged by it (Spark ≥ 3.4).
    previous_watermark_ms: i64,
    timestamp_ms: i64,
}

impl MicroBatchExecution {
    fn run_to_termination(mut self) {
        let result = std::panic::catch_unwind(AssertUnwindSafe(|| self.run()))
            .unwrap_or_else(|panic| Err(Error::Internal(panic_message(&panic))));
        // The last writes left their directory fsyncs pending (the next write would have
        // synced them): make everything durable before the query reports it has stopped.
        let flushed = self.checkpoint.pending_writes().flush();
        self.checkpoint.pending_writes().remove_temp_files();
        let result = result.and(flushed);
        let exception = result.err().map(|e| e.to_string());
        *lock(&self.shared.exception) = exception.clone();
        for s in &mut self.sources {
            s.stop();
        }
        {
            let mut st = lock(&self.shared.status);
            st.message = "Stopped".into();
            st.is_trigger_active = false;
        }
        let ev = QueryTerminatedEvent {
            id: lock(&self.shared.id).clone(),
            run_id: self.shared.run_id.clone(),
            exception,
        };
        for l in &self.shared.listeners {
            let _ = std::panic::catch_unwind(AssertUnwindSafe(|| l.on_query_terminated(&ev)));
        }
        *lock(&self.shared.terminated) = true;
        self.shared.terminated_cv.notify_all();
        self.shared.drain_cv.notify_all();
    }

    fn run(&mut self) -> Result<()> {
        let n = self.sources.len();
        let mut committed: Vec<Option<Offset>> = vec![None; n];
        let mut watermark_ms: i64 = 0;
        let mut next_batch: u64 = 0;
        let mut last_batch_watermark: i64 = 0;

        // Recovery: find where the previous run stopped.
        while let Some((last, seq)) = self.checkpoint.latest_offsets()? {
            // The state shard count is pinned by the checkpoint.
            if let Some(n) = seq.conf.get("spark.sql.shuffle.partitions") {
                let shards = n
                    .parse::<usize>()
                    .ok()
                    .filter(|n| (1..=4096).contains(n))
                    .ok_or_else(|| {
                        Error::checkpoint(
                            self.checkpoint.dir().join("offsets").join(last.to_string()),
                            format!("spark.sql.shuffle.partitions is '{n}', not a shard count"),
                        )
                    })?;
                self.plan.set_state_shards(shards);
            }
            let last_commit = self.checkpoint.latest_commit()?;
            if last_commit.as_ref().map(|(b, _)| *b) == Some(last) {
                committed = seq.offsets.clone();
                watermark_ms = seq.batch_watermark_ms;
                if let Some((_, c)) = &last_commit {
                    watermark_ms = watermark_ms.max(c.next_batch_watermark_ms);
                }
                last_batch_watermark = seq.batch_watermark_ms;
                next_batch = last + 1;
                self.plan
                    .restore_state(&self.checkpoint.state_dir(), next_batch)?;
            } else {
                // Batch `last` was written to the WAL but never committed: re-run it exactly.
                let previous = if last == 0 {
                    None
                } else {
                    Some(self.checkpoint.offsets(last - 1)?.ok_or_else(|| {
                        Error::checkpoint(
                            self.checkpoint.dir().join("offsets").join((last - 1).to_string()),
                            format!(
                                "batch {last} must be re-run but the offsets of batch {} are missing; \
                                 restore the file or start over with a new checkpoint",
                                last - 1
                            ),
                        )
                    })?)
                };
                let previous_watermark_ms = previous.as_ref().map_or(0, |p| p.batch_watermark_ms);
                let starts = match previous {
                    None => vec![None; n],
                    Some(p) => p.offsets,
                };
                if seq.offsets.len() != n {
                    return Err(Error::checkpoint(
                        self.checkpoint.dir().join("offsets").join(last.to_string()),
                        format!(
                            "records {} sources but the query has {n}; a checkpoint can only be \
                             reused by the same query",
                            seq.offsets.len()
                        ),
                    ));
                }
                if self.lost_source_entry(last, &starts, &seq.offsets)? {
                    // Planned again from the previous batch's end.
                    self.checkpoint.discard_uncommitted_offsets(last)?;
                    continue;
                }
                self.plan
                    .restore_state(&self.checkpoint.state_dir(), last)?;
                let run = BatchRun {
                    batch_id: last,
                    starts,
                    ends: seq.offsets.clone(),
                    watermark_ms: seq.batch_watermark_ms,
                    previous_watermark_ms,
                    timestamp_ms: seq.batch_timestamp_ms,
                };
                let t0 = self.config.clock.now_ms();
                watermark_ms = self.execute_batch(&run, false, t0, None)?;
                last_batch_watermark = seq.batch_watermark_ms;
                committed = seq.offsets;
                next_batch = last + 1;
            }
            break;
        }
        if committed.len() != n {
            return Err(Error::checkpoint(
                self.checkpoint.dir().join("offsets"),
                format!(
                    "the checkpoint records {} sources but the query has {n}; a checkpoint can only \
                     be reused by the same query",
                    committed.len()
                ),
            ));
        }

        let trigger = self.config.trigger;
        // Tell each source where the committed part of the stream ends (a restarted source
        // knows nothing of the previous run until then).
        for (i, s) in self.sources.iter_mut().enumerate() {
            if let Some(end) = &committed[i] {
                s.commit(end)?;
            }
        }
        // A source that sees new data arrive wakes the idle loop at once (no polling delay).
        for s in &mut self.sources {
            let shared = Arc::clone(&self.shared);
            s.on_new_data(Arc::new(move || shared.stop.set()));
        }
        // availableNow and once fix their stop point now; the sources then never go past it.
        let mut stop_offsets: Vec<Option<Offset>> = Vec::new();
        if matches!(trigger, Trigger::AvailableNow | Trigger::Once) {
            for s in &mut self.sources {
                stop_offsets.push(s.available_now_offset()?);
            }
        }
        let mut last_trigger_start: Option<i64> = None;
        let mut idle_reported = false;
        loop {
            if self.shared.stop_requested.load(Ordering::SeqCst) {
                return Ok(());
            }
            let drain_ticket = self.shared.drain_requests.load(Ordering::SeqCst);
            self.shared.stop.clear();
            // Wait for the trigger.
            if let Trigger::ProcessingTime(interval) = trigger {
                let interval_ms = interval.as_millis().max(1) as i64;
                if let Some(prev) = last_trigger_start {
                    let next = (prev / interval_ms + 1) * interval_ms;
                    let now = self.config.clock.now_ms();
                    if now < next {
                        self.config.clock.wait_until(next, &self.shared.stop);
                        if self.shared.stop_requested.load(Ordering::SeqCst) {
                            return Ok(());
                        }
                        if self.config.clock.now_ms() < next {
                            // Woken early (process_all_available): acknowledge only if idle.
                            self.ack_if_idle(
                                drain_ticket,
                                &committed,
                                watermark_ms,
                                last_batch_watermark,
                            )?;
                            continue;
                        }
                    }
                }
            }
            let trigger_start = self.config.clock.now_ms();
            let wall_start = Instant::now();
            last_trigger_start = Some(trigger_start);
            set_status(&self.shared, "Processing new data", true, true);

            // 1. Latest offsets.
            let t_latest = Instant::now();
            let mut ends = Vec::with_capacity(n);
            for (i, s) in self.sources.iter_mut().enumerate() {
                let end = if trigger == Trigger::Once {
                    stop_offsets[i].clone()
                } else {
                    let limit = s.default_read_limit();
                    s.latest_offset(committed[i].as_ref(), limit)?
                };
                ends.push(end.or_else(|| committed[i].clone()));
            }
            let latest_offset_ms = t_latest.elapsed().as_millis() as u64;
            let has_data = ends
                .iter()
                .zip(&committed)
                .any(|(e, c)| e.is_some() && e != c);
            let no_data_batch =
                !has_data && watermark_ms > last_batch_watermark && self.plan.needs_no_data_batch();
            if !has_data && !no_data_batch {
                set_status(&self.shared, "Waiting for data to arrive", false, false);
                self.ack_drain(drain_ticket);
                if !idle_reported {
                    idle_reported = true;
                    let ev = QueryIdleEvent {
                        id: lock(&self.shared.id).clone(),
                        run_id: self.shared.run_id.clone(),
                        timestamp: iso_millis(trigger_start),
                    };
                    for l in &self.shared.listeners {
                        let _ = std::panic::catch_unwind(AssertUnwindSafe(|| l.on_query_idle(&ev)));
                    }
                }
                if matches!(trigger, Trigger::AvailableNow | Trigger::Once) {
                    return Ok(());
                }
                if !matches!(trigger, Trigger::ProcessingTime(_)) {
                    self.shared.stop.wait_timeout(self.config.polling_delay);
                }
                continue;
            }
            idle_reported = false;
            let run = BatchRun {
                batch_id: next_batch,
                starts: committed.clone(),
                ends: ends.clone(),
                watermark_ms,
                previous_watermark_ms: last_batch_watermark,
                timestamp_ms: trigger_start,
            };
            let wal_start = Instant::now();
            let seq = OffsetSeq {
                batch_watermark_ms: run.watermark_ms,
                batch_timestamp_ms: run.timestamp_ms,
                conf: self.pinned_conf(),
                offsets: run.ends.clone(),
            };
            if self.sink.commits_through_pending_writes() {
                // Durable in the sink's commit round, before its output becomes visible.
                self.checkpoint.stage_offsets(run.batch_id, &seq)?;
            } else {
                // The sink acts on its own (console, memory, foreach_batch): offsets/N and the
                // sources' entries must be durable before it runs, as Spark's WAL is.
                self.checkpoint.write_offsets(run.batch_id, &seq)?;
                self.checkpoint.pending_writes().flush()?;
            }
            let wal_ms = wal_start.elapsed().as_millis() as u64;
            let timings = PhaseTimings {
                latest_offset_ms,
                wal_commit_ms: wal_ms,
                wall_start,
                previous_trigger_start: self.previous_trigger_start(),
            };
            let new_watermark = self.execute_batch(&run, true, trigger_start, Some(timings))?;
            last_batch_watermark = run.watermark_ms;
            watermark_ms = new_watermark;
            committed = ends;
            next_batch += 1;
            // Between batches, off the path from new data to committed output.
            self.checkpoint.pending_writes().refill_temp_files();
            if self.config.fsync {
                self.checkpoint.pending_writes().settle()?;
            }
            if trigger == Trigger::Once {
                return Ok(());
            }
        }
    }

    /// The recovery rule for a source log entry staged with `offsets/N` (a file sink's batch,
    /// see `checkpoint::PendingWrites`): both are named one after the other and their
    /// directories fsynced together, so a power loss in between may keep `offsets/N` without
    /// the entry. When batch `batch_id` has no commit and a source cannot serve its range,
    /// nothing of the batch can be durable (the sink names its entry only after that fsync),
    /// so the batch is planned again. If the sink's own log does record the batch, the
    /// checkpoint was damaged by hand: that is an error.
    fn lost_source_entry(
        &self,
        batch_id: u64,
        starts: &[Option<Offset>],
        ends: &[Option<Offset>],
    ) -> Result<bool> {
        let lost = self.sources.iter().enumerate().find(|(i, s)| {
            ends[*i].as_ref().is_some_and(|end| {
                starts[*i].as_ref() != Some(end) && !s.can_replay(starts[*i].as_ref(), end)
            })
        });
        let Some((i, source)) = lost else {
            return Ok(false);
        };
        if self
            .sink
            .last_committed_batch()?
            .is_some_and(|b| b >= batch_id)
        {
            return Err(Error::checkpoint(
                self.checkpoint.dir().join("sources").join(i.to_string()),
                format!(
                    "the sink committed batch {batch_id} but {} has no log entry for it; the \
                     source log was damaged: restore it or start over with a new checkpoint",
                    source.description()
                ),
            ));
        }
        Ok(true)
    }

    fn previous_trigger_start(&self) -> Option<i64> {
        lock(&self.shared.progress)
            .back()
            .and_then(|p| chrono::DateTime::parse_from_rfc3339(&p.timestamp).ok())
            .map(|t| t.timestamp_millis())
    }

    /// When a `process_all_available` woke a processing-time trigger early, acknowledge it if
    /// there is nothing to process; otherwise the next trigger will.
    fn ack_if_idle(
        &mut self,
        ticket: u64,
        committed: &[Option<Offset>],
        watermark_ms: i64,
        last_batch_watermark: i64,
    ) -> Result<()> {
        let mut has_data = false;
        for (i, s) in self.sources.iter_mut().enumerate() {
            let end = s.latest_offset(committed[i].as_ref(), s.default_read_limit())?;
            if end.is_some() && end.as_ref() != committed[i].as_ref() {
                has_data = true;
            }
        }
        let pending = watermark_ms > last_batch_watermark && self.plan.needs_no_data_batch();
        if !has_data && !pending {
            self.ack_drain(ticket);
        }
        Ok(())
    }

    fn ack_drain(&self, ticket: u64) {
        let mut acked = lock(&self.shared.drain_acked);
        if *acked < ticket {
            *acked = ticket;
        }
        self.shared.drain_cv.notify_all();
    }

    fn pinned_conf(&self) -> BTreeMap<String, String> {
        BTreeMap::from([
            (
                "spark.sql.streaming.multipleWatermarkPolicy".to_string(),
                match self.config.watermark_policy {
                    WatermarkPolicy::Min => "min".to_string(),
                    WatermarkPolicy::Max => "max".to_string(),
                },
            ),
            (
                "spark.sql.shuffle.partitions".to_string(),
                self.plan.state_shards().to_string(),
            ),
        ])
    }

    /// Runs one batch whose offsets are already in the WAL: read, execute, sink, commit state,
    /// commit the batch. Returns the watermark for the next batch.
    fn execute_batch(
        &mut self,
        run: &BatchRun,
        report: bool,
        trigger_start: i64,
        timings: Option<PhaseTimings>,
    ) -> Result<i64> {
        let wall_start = timings
            .as_ref()
            .map(|t| t.wall_start)
            .unwrap_or_else(Instant::now);
        // 2. Read each source's range.
        let t_get = Instant::now();
        let mut inputs: Vec<Vec<RecordBatch>> = Vec::with_capacity(self.sources.len());
        let mut rows_per_source = Vec::with_capacity(self.sources.len());
        for (i, s) in self.sources.iter_mut().enumerate() {
            let batches = match &run.ends[i] {
                Some(end) if run.starts[i].as_ref() != Some(end) => {
                    s.read(run.starts[i].as_ref(), end)?
                }
                _ => Vec::new(),
            };
            rows_per_source.push(batches.iter().map(|b| b.num_rows() as u64).sum::<u64>());
            inputs.push(batches);
        }
        let get_batch_ms = t_get.elapsed().as_millis() as u64;

        // 3. Execute the plan and hand the result to the sink.
        let t_add = Instant::now();
        let ctx = BatchContext {
            batch_id: run.batch_id,
            watermark_ms: run.watermark_ms,
            late_watermark_ms: run.previous_watermark_ms,
            batch_timestamp_ms: run.timestamp_ms,
        };
        let output = self.plan.execute(inputs, &ctx)?;
        let out_rows: u64 = output.iter().map(|b| b.num_rows() as u64).sum();
        let schema = self.plan.output_schema();
        self.sink
            .add_batch(run.batch_id, &schema, &output, self.plan.sink_output_mode())?;
        let add_batch_ms = t_add.elapsed().as_millis() as u64;

        // 4. Commit state, then the batch.
        let t_commit = Instant::now();
        let state_ops = self
            .plan
            .commit_state(&self.checkpoint.state_dir(), run.batch_id + 1)?;
        let candidate = self.plan.watermark_candidate(self.config.watermark_policy);
        let next_watermark = candidate.map_or(run.watermark_ms, |c| c.max(run.watermark_ms));
        self.checkpoint.write_commit(
            run.batch_id,
            &CommitMetadata {
                next_batch_watermark_ms: next_watermark,
            },
        )?;
        for (i, s) in self.sources.iter_mut().enumerate() {
            if let Some(end) = &run.ends[i] {
                s.commit(end)?;
            }
        }
        if run.batch_id >= self.config.min_batches_to_retain {
            self.checkpoint.purge(self.config.min_batches_to_retain)?;
        }
        let commit_ms = t_commit.elapsed().as_millis() as u64;

        if report {
            let total_ms = wall_start.elapsed().as_millis() as u64;
            let timings = timings.unwrap_or(PhaseTimings {
                latest_offset_ms: 0,
                wal_commit_ms: 0,
                wall_start,
                previous_trigger_start: None,
            });
            let input_rows: u64 = rows_per_source.iter().sum();
            let since_prev = timings
                .previous_trigger_start
                .map(|p| (trigger_start - p).max(0) as u64);
            let duration_ms = BTreeMap::from([
                ("addBatch".to_string(), add_batch_ms),
                ("commitOffsets".to_string(), commit_ms),
                ("getBatch".to_string(), get_batch_ms),
                ("latestOffset".to_string(), timings.latest_offset_ms),
                ("queryPlanning".to_string(), 0),
                ("triggerExecution".to_string(), total_ms),
                ("walCommit".to_string(), timings.wal_commit_ms),
            ]);
            let mut event_time = BTreeMap::new();
            if self.plan.has_watermark() {
                if let Some((min, max, avg)) = self.plan.event_time_stats() {
                    event_time.insert("avg".to_string(), iso_millis(avg));
                    event_time.insert("max".to_string(), iso_millis(max));
                    event_time.insert("min".to_string(), iso_millis(min));
                }
                event_time.insert("watermark".to_string(), iso_millis(run.watermark_ms));
            }
            let sources = self
                .sources
                .iter()
                .enumerate()
                .map(|(i, s)| SourceProgress {
                    description: s.description(),
                    start_offset: offset_json(run.starts[i].as_ref()),
                    end_offset: offset_json(run.ends[i].as_ref()),
                    latest_offset: offset_json(run.ends[i].as_ref()),
                    num_input_rows: rows_per_source[i],
                    input_rows_per_second: since_prev.and_then(|ms| rate(rows_per_source[i], ms)),
                    processed_rows_per_second: rate(rows_per_source[i], total_ms),
                })
                .collect();
            let progress = StreamingQueryProgress {
                id: lock(&self.shared.id).clone(),
                run_id: self.shared.run_id.clone(),
                name: self.shared.name.clone(),
                timestamp: iso_millis(trigger_start),
                batch_id: run.batch_id,
                batch_duration: total_ms,
                num_input_rows: input_rows,
                input_rows_per_second: since_prev.and_then(|ms| rate(input_rows, ms)),
                processed_rows_per_second: rate(input_rows, total_ms),
                duration_ms,
                event_time,
                state_operators: state_ops,
                sources,
                sink: SinkProgress {
                    description: self.sink.description(),
                    num_output_rows: out_rows as i64,
                },
            };
            {
                let mut recent = lock(&self.shared.progress);
                if recent.len() == RECENT_PROGRESS {
                    recent.pop_front();
                }
                recent.push_back(progress.clone());
            }
            for l in &self.shared.listeners {
                let _ =
                    std::panic::catch_unwind(AssertUnwindSafe(|| l.on_query_progress(&progress)));
            }
        }
        Ok(next_watermark)
    }
}

struct PhaseTimings {
    latest_offset_ms: u64,
    wal_commit_ms: u64,
    wall_start: Instant,
    previous_trigger_start: Option<i64>,
}

fn set_status(shared: &Shared, message: &str, data: bool, active: bool) {
    let mut st = lock(&shared.status);
    st.message = message.to_string();
    st.is_data_available = data;
    st.is_trigger_active = active;
}

fn offset_json(o: Option<&Offset>) -> serde_json::Value {
    match o {
        None => serde_json::Value::Null,
        Some(o) => {
            serde_json::from_str(&o.0).unwrap_or_else(|_| serde_json::Value::String(o.0.clone()))
        }
    }
}

fn panic_message(panic: &Box<dyn std::any::Any + Send>) -> String {
    let text = panic
        .downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| panic.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "unknown panic".to_string());
    format!("a worker panicked: {text}")
}

/// Opens the checkpoint for a query, with the engine's defaults.
pub fn open_checkpoint(dir: &std::path::Path, fsync: bool) -> Result<Checkpoint> {
    Checkpoint::open(dir, CheckpointOptions { fsync })
}
