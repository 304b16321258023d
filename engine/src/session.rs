//! The session: the entry point that owns shared resources and starts queries.
//!
//! Owns the JIT engine (one kernel cache per session), the registry of active queries and
//! memory streams, listeners, and the settings that apply to every query of the session
//! (fsync, watermark policy, worker threads, the clock). It turns a [`DataStreamWriter`] into a
//! running [`StreamingQuery`]: analysis with Spark's streaming rules, incremental planning,
//! checkpoint validation, and creating the sources and sink.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use arrow::datatypes::SchemaRef;
use weir_jit::{JitEngine, JitOptions};
use weir_plan::OutputMode;
use weir_plan::plan::LogicalPlan;

use crate::checkpoint::{Checkpoint, CheckpointOptions};
use crate::dataframe::{DataFrame, DataStreamReader, DataStreamWriter};
use crate::error::{Error, Result};
use crate::exec::planner::{PlannerOptions, plan_query};
use crate::query::listener::StreamingQueryListener;
use crate::query::trigger::{Clock, SystemClock};
use crate::query::{QueryConfig, StreamingQuery, WatermarkPolicy};
use crate::sink::{self, Sink, SinkContext};
use crate::source::{self, MemoryStream, Source, SourceContext};

/// Settings shared by the queries of a session.
#[derive(Clone)]
pub struct SessionConfig {
    /// fsync checkpoint and state files (default true). Off is faster but a power loss can lose
    /// or tear the last batch's files, as with Spark on a local file system.
    pub fsync: bool,
    /// How several watermarks combine.
    pub watermark_policy: WatermarkPolicy,
    /// Worker threads for stateless kernels (default: all cores).
    pub workers: usize,
    /// State shards of a new aggregation (rows routed by a hash of the grouping keys, shards
    /// updated in parallel). Default 1: on a 2-core machine routing cost more than the parallel
    /// update saved (see ARCHITECTURE.md). A checkpoint keeps the count it was created with.
    pub state_shards: usize,
    /// ANSI casts and arithmetic errors (Spark 4's default: on).
    pub ansi: bool,
    /// Processing-time clock (a manual clock in tests).
    pub clock: Arc<dyn Clock>,
    /// Poll interval when no data arrived.
    pub polling_delay: Duration,
    /// Batches of metadata and state kept for recovery.
    pub min_batches_to_retain: u64,
    /// Tune glibc's malloc for batch-sized buffers when the session is created (default
    /// true; see [`crate::alloc::tune_malloc`]). Turn off when the application brings its own
    /// allocator or malloc settings.
    pub tune_malloc: bool,
}

impl Default for SessionConfig {
    fn default() -> Self {
        SessionConfig {
            fsync: true,
            watermark_policy: WatermarkPolicy::Min,
            workers: std::thread::available_parallelism().map_or(1, |n| n.get()),
            state_shards: 1,
            ansi: true,
            clock: Arc::new(SystemClock),
            polling_delay: Duration::from_millis(10),
            min_batches_to_retain: 100,
            tune_malloc: true,
        }
    }
}

struct SessionInner {
    config: SessionConfig,
    jit: JitEngine,
    queries: Mutex<Vec<StreamingQuery>>,
    listeners: Mutex<Vec<Arc<dyn StreamingQueryListener>>>,
    memory_streams: Mutex<HashMap<String, MemoryStream>>,
}

/// A weir session (Spark's `SparkSession` for streaming). Cheap to clone.
#[derive(Clone)]
pub struct Session {
    inner: Arc<SessionInner>,
}

impl std::fmt::Debug for Session {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Session").finish_non_exhaustive()
    }
}

impl Session {
    /// A session with default settings.
    pub fn new() -> Result<Session> {
        Session::with_config(SessionConfig::default())
    }

    /// A session with the given settings.
    pub fn with_config(config: SessionConfig) -> Result<Session> {
        if config.tune_malloc {
            crate::alloc::tune_malloc();
        }
        Ok(Session {
            inner: Arc::new(SessionInner {
                jit: JitEngine::new(JitOptions::default())?,
                config,
                queries: Mutex::new(Vec::new()),
                listeners: Mutex::new(Vec::new()),
                memory_streams: Mutex::new(HashMap::new()),
            }),
        })
    }

    /// The session's settings.
    pub fn config(&self) -> &SessionConfig {
        &self.inner.config
    }

    /// The session's JIT engine (kernel cache).
    pub fn jit(&self) -> &JitEngine {
        &self.inner.jit
    }

    /// `spark.readStream`.
    pub fn read_stream(&self) -> DataStreamReader {
        DataStreamReader::new(self.clone())
    }

    /// A DataFrame over a resolved logical plan (e.g. from SQL).
    pub fn dataframe(&self, plan: LogicalPlan) -> DataFrame {
        DataFrame::new(self.clone(), plan.into())
    }

    /// Adds a listener for every query of this session.
    pub fn add_listener(&self, listener: Arc<dyn StreamingQueryListener>) {
        lock(&self.inner.listeners).push(listener);
    }

    /// The queries that are running.
    pub fn active_queries(&self) -> Vec<StreamingQuery> {
        let mut qs = lock(&self.inner.queries);
        qs.retain(|q| q.is_active());
        qs.clone()
    }

    /// Stops every active query.
    pub fn stop_all(&self) -> Result<()> {
        for q in self.active_queries() {
            q.stop()?;
        }
        Ok(())
    }

    pub(crate) fn register_memory_stream(&self, stream: MemoryStream) -> String {
        let mut streams = lock(&self.inner.memory_streams);
        let name = format!("MemoryStream[{}]", streams.len());
        streams.insert(name.clone(), stream);
        name
    }

    /// The explain text of a plan in an output mode (default: append, or complete for an
    /// aggregation with ORDER BY).
    pub fn explain(&self, plan: &LogicalPlan, mode: Option<OutputMode>) -> Result<String> {
        let mode = mode.unwrap_or(OutputMode::Append);
        let physical = plan_query(plan, mode, &self.inner.jit, &self.planner_options())?;
        Ok(physical.explain())
    }

    /// [`Session::explain`] plus the Cranelift IR of every compiled kernel (`EXPLAIN CODEGEN`).
    pub fn explain_codegen(&self, plan: &LogicalPlan, mode: Option<OutputMode>) -> Result<String> {
        let mode = mode.unwrap_or(OutputMode::Append);
        let physical = plan_query(plan, mode, &self.inner.jit, &self.planner_options())?;
        Ok(physical.explain_codegen())
    }

    fn planner_options(&self) -> PlannerOptions {
        PlannerOptions {
            workers: self.inner.config.workers,
            state_shards: self.inner.config.state_shards,
            ansi: self.inner.config.ansi,
        }
    }

    pub(crate) fn start_query(&self, writer: DataStreamWriter) -> Result<StreamingQuery> {
        let config = &self.inner.config;
        let plan = writer.df.logical_plan().clone();
        if !plan.is_streaming() {
            return Err(Error::Plan(weir_plan::Error::analysis(
                weir_plan::Rule::StreamingUnsupportedOperation,
                "'writeStream' can be called only on streaming Dataset/DataFrame".to_string(),
            )));
        }
        let mode: OutputMode = match &writer.output_mode {
            Some(m) => m.parse()?,
            None => OutputMode::Append,
        };
        weir_plan::analyzer::check_streaming(&plan, mode)?;
        let mut physical = plan_query(&plan, mode, &self.inner.jit, &self.planner_options())?;
        physical.set_fsync(config.fsync);

        if let Some(name) = &writer.query_name
            && self
                .active_queries()
                .iter()
                .any(|q| q.name() == Some(name.as_str()))
        {
            return Err(Error::option(
                "queryName",
                format!(
                    "Cannot start query with name {name} as a query with that name is already active in this session"
                ),
            ));
        }

        // Checkpoint: required for durable sinks; a temporary one for console/memory/noop/foreachBatch.
        let format = writer.format.to_ascii_lowercase();
        let checkpoint_dir = match writer
            .options
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case("checkpointLocation"))
        {
            Some((_, v)) => PathBuf::from(v),
            None => {
                let temporary_ok = writer.foreach_batch.is_some()
                    || writer.sink.is_some()
                    || matches!(format.as_str(), "console" | "memory" | "noop");
                if !temporary_ok {
                    return Err(Error::option(
                        "checkpointLocation",
                        "checkpointLocation must be specified for this sink: .option(\"checkpointLocation\", dir) \
                         in Rust, WITH (checkpointLocation = 'dir') in CREATE SINK, or `weir run --checkpoint-root DIR`",
                    ));
                }
                std::env::temp_dir().join(format!("weir-temporary-{}", uuid::Uuid::new_v4()))
            }
        };
        let mut checkpoint = Checkpoint::open(
            &checkpoint_dir,
            CheckpointOptions {
                fsync: config.fsync,
            },
        )?;
        check_state_fingerprint(&mut checkpoint, physical.state_fingerprint())?;

        // Sources.
        let mut sources: Vec<Box<dyn Source>> = Vec::new();
        for (i, spec) in physical.sources().iter().enumerate() {
            let mut source: Box<dyn Source> = if spec.format == "memory" {
                let name = spec.options.get("name").cloned().unwrap_or_default();
                let stream = lock(&self.inner.memory_streams)
                    .get(&name)
                    .cloned()
                    .ok_or_else(|| {
                        Error::Internal(format!("memory stream {name} is not registered"))
                    })?;
                stream.source()
            } else {
                source::create_source(
                    &spec.format,
                    &spec.options,
                    Some(spec.schema.clone()),
                    SourceContext {
                        checkpoint_dir: checkpoint.source_dir(i),
                        fsync: config.fsync,
                        pending_writes: checkpoint.pending_writes(),
                    },
                )?
            };
            if let Some(p) = &spec.projection {
                source.push_projection(p);
            }
            if !spec.bounds.is_empty() {
                source.push_filters(&spec.bounds);
            }
            sources.push(source);
        }

        // Sink.
        let sink: Box<dyn Sink> = if let Some(s) = writer.sink {
            s
        } else if let Some(f) = writer.foreach_batch {
            sink::foreach_batch_sink(f)
        } else {
            sink::create_sink(
                &format,
                &writer.options,
                SinkContext {
                    query_name: writer.query_name.clone(),
                    fsync: config.fsync,
                    pending_writes: checkpoint.pending_writes(),
                },
            )?
        };

        let query_config = QueryConfig {
            name: writer.query_name.clone(),
            checkpoint_dir,
            trigger: writer.trigger,
            fsync: config.fsync,
            clock: config.clock.clone(),
            polling_delay: config.polling_delay,
            min_batches_to_retain: config.min_batches_to_retain,
            watermark_policy: config.watermark_policy,
        };
        let listeners = lock(&self.inner.listeners).clone();
        let query =
            StreamingQuery::start(physical, sources, sink, checkpoint, query_config, listeners)?;
        lock(&self.inner.queries).push(query.clone());
        Ok(query)
    }
}

/// Refuses a checkpoint whose stateful operators differ from this query's, naming what changed;
/// records the fingerprint on first use.
fn check_state_fingerprint(checkpoint: &mut Checkpoint, fingerprint: &str) -> Result<()> {
    let recorded = checkpoint
        .extra_metadata()
        .and_then(|v| v.get("statefulOperators"))
        .and_then(|v| v.as_str())
        .map(str::to_string);
    match recorded {
        Some(old) if old == fingerprint => Ok(()),
        Some(old) => {
            let was: Vec<&str> = old
                .lines()
                .filter(|l| !fingerprint.lines().any(|n| n == *l))
                .collect();
            let now: Vec<&str> = fingerprint
                .lines()
                .filter(|l| !old.lines().any(|o| o == *l))
                .collect();
            Err(Error::checkpoint(
                checkpoint.dir().join("metadata"),
                format!(
                    "the stateful part of the query changed since this checkpoint was written, so its state cannot be reused.\n  \
                     checkpoint: {}\n  query:      {}\n\
                     Start the changed query with a new checkpointLocation, or run the original query.",
                    if was.is_empty() {
                        "(none)".to_string()
                    } else {
                        was.join("; ")
                    },
                    if now.is_empty() {
                        "(none)".to_string()
                    } else {
                        now.join("; ")
                    },
                ),
            ))
        }
        None => {
            let mut extra = checkpoint
                .extra_metadata()
                .cloned()
                .unwrap_or_else(|| serde_json::json!({}));
            if let Some(obj) = extra.as_object_mut() {
                obj.insert(
                    "statefulOperators".into(),
                    serde_json::Value::String(fingerprint.to_string()),
                );
            }
            checkpoint.write_extra_metadata(extra)
        }
    }
}

/// The schema a source reads: given (file sources) or fixed by the format (rate sources).
pub(crate) fn source_schema(format: &str, schema: Option<SchemaRef>) -> Result<SchemaRef> {
    match format.to_ascii_lowercase().as_str() {
        "rate" | "rate-micro-batch" => Ok(source::rate_schema()),
        "text" => Ok(schema.unwrap_or_else(|| {
            Arc::new(arrow::datatypes::Schema::new(vec![arrow::datatypes::Field::new(
                "value",
                arrow::datatypes::DataType::Utf8,
                true,
            )]))
        })),
        other => schema.ok_or_else(|| {
            Error::option(
                "schema",
                format!(
                    "Schema must be specified when creating a streaming source DataFrame from the '{other}' format; \
                     call .schema(...) on the reader"
                ),
            )
        }),
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}
