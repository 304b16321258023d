//! The DataFrame API: Spark's `readStream` / DataFrame operations / `writeStream`.
//!
//! Owns [`DataFrame`] (a resolved logical plan bound to a [`Session`]), [`DataStreamReader`] and
//! [`DataStreamWriter`]. Operations delegate to weir-plan's `LogicalPlanBuilder`, so a DataFrame
//! and the same query in SQL have the same plan. Starting a query is the session's job.

use std::collections::BTreeMap;

use arrow::datatypes::SchemaRef;
use weir_plan::builder::LogicalPlanBuilder;
use weir_plan::expr::{Expr, SortExpr};
use weir_plan::plan::{LogicalPlan, Source as SourceNode};

use crate::error::{Error, Result};
use crate::query::StreamingQuery;
use crate::query::trigger::Trigger;
use crate::session::Session;
use crate::sink::{ForeachBatchFn, Sink};
use crate::source::MemoryStream;

/// A streaming (or static) DataFrame: a resolved query plan, lazily executed.
#[derive(Clone)]
pub struct DataFrame {
    session: Session,
    plan: LogicalPlanBuilder,
}

impl std::fmt::Debug for DataFrame {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "DataFrame\n{}", self.plan.plan())
    }
}

/// The error Spark gives for an immediate action on a stream.
fn streaming_action_error(action: &str) -> Error {
    Error::Plan(weir_plan::Error::analysis(
        weir_plan::Rule::StreamingUnsupportedOperation,
        format!(
            "Queries with streaming sources must be executed with writeStream.start(); {action}() is not supported on a streaming DataFrame"
        ),
    ))
}

impl DataFrame {
    pub(crate) fn new(session: Session, plan: LogicalPlanBuilder) -> DataFrame {
        DataFrame { session, plan }
    }

    fn with(&self, plan: LogicalPlanBuilder) -> DataFrame {
        DataFrame {
            session: self.session.clone(),
            plan,
        }
    }

    /// The resolved logical plan.
    pub fn logical_plan(&self) -> &LogicalPlan {
        self.plan.plan()
    }

    /// The output schema.
    pub fn schema(&self) -> SchemaRef {
        self.plan.schema().clone()
    }

    /// Whether the DataFrame reads a stream (Spark's `isStreaming`).
    pub fn is_streaming(&self) -> bool {
        self.plan.plan().is_streaming()
    }

    /// `select(exprs)`.
    pub fn select(&self, exprs: impl IntoIterator<Item = Expr>) -> Result<DataFrame> {
        Ok(self.with(self.plan.clone().select(exprs)?))
    }

    /// `selectExpr("a + 1 AS b", ...)`: expressions in SQL syntax.
    pub fn select_expr(&self, exprs: &[&str]) -> Result<DataFrame> {
        Ok(self.with(self.plan.clone().select_expr(exprs)?))
    }

    /// `withColumn(name, expr)`: adds or replaces a column.
    pub fn with_column(&self, name: &str, expr: Expr) -> Result<DataFrame> {
        Ok(self.with(self.plan.clone().with_column(name, expr)?))
    }

    /// `drop(names)`.
    pub fn drop(&self, names: &[&str]) -> Result<DataFrame> {
        Ok(self.with(self.plan.clone().drop(names)?))
    }

    /// `filter(predicate)` / `where`.
    pub fn filter(&self, predicate: Expr) -> Result<DataFrame> {
        Ok(self.with(self.plan.clone().filter(predicate)?))
    }

    /// `union(other)` (by position, like Spark's `union`).
    pub fn union(&self, other: &DataFrame) -> Result<DataFrame> {
        Ok(self.with(self.plan.clone().union(other.plan.clone())?))
    }

    /// `explode(array) AS alias`: one row per element.
    pub fn explode(&self, expr: Expr, alias: &str) -> Result<DataFrame> {
        Ok(self.with(self.plan.clone().explode(expr, alias)?))
    }

    /// `withWatermark(column, "10 seconds")`.
    pub fn with_watermark(&self, column: &str, delay: &str) -> Result<DataFrame> {
        Ok(self.with(self.plan.clone().with_watermark(column, delay)?))
    }

    /// `groupBy(keys)`; finish with [`GroupedData::agg`] or [`GroupedData::count`].
    pub fn group_by(&self, keys: impl IntoIterator<Item = Expr>) -> GroupedData {
        GroupedData {
            df: self.clone(),
            keys: keys.into_iter().collect(),
        }
    }

    /// `dropDuplicates(columns)` (all columns when empty).
    pub fn drop_duplicates(&self, columns: &[&str]) -> Result<DataFrame> {
        Ok(self.with(self.plan.clone().drop_duplicates(columns)?))
    }

    /// `dropDuplicatesWithinWatermark(columns)`.
    pub fn drop_duplicates_within_watermark(&self, columns: &[&str]) -> Result<DataFrame> {
        Ok(self.with(
            self.plan
                .clone()
                .drop_duplicates_within_watermark(columns)?,
        ))
    }

    /// `distinct()`.
    pub fn distinct(&self) -> Result<DataFrame> {
        Ok(self.with(self.plan.clone().distinct()?))
    }

    /// `orderBy(keys)`.
    pub fn order_by(&self, keys: impl IntoIterator<Item = SortExpr>) -> Result<DataFrame> {
        Ok(self.with(self.plan.clone().order_by(keys)?))
    }

    /// `limit(n)`.
    pub fn limit(&self, n: u64) -> Result<DataFrame> {
        Ok(self.with(self.plan.clone().limit(n)?))
    }

    /// `count()` as an action fails on a stream, as in Spark (use `groupBy().count()`).
    pub fn count(&self) -> Result<u64> {
        Err(streaming_action_error("count"))
    }

    /// `collect()` fails on a stream, as in Spark.
    pub fn collect(&self) -> Result<Vec<arrow::record_batch::RecordBatch>> {
        Err(streaming_action_error("collect"))
    }

    /// `show()` fails on a stream, as in Spark (use the console sink).
    pub fn show(&self) -> Result<()> {
        Err(streaming_action_error("show"))
    }

    /// The logical, incremental and kernel plans, in `mode` (default: append).
    pub fn explain(&self) -> Result<String> {
        self.session.explain(self.plan.plan(), None)
    }

    /// `writeStream`.
    pub fn write_stream(&self) -> DataStreamWriter {
        DataStreamWriter {
            df: self.clone(),
            format: "console".into(),
            output_mode: None,
            trigger: Trigger::Default,
            query_name: None,
            options: BTreeMap::new(),
            foreach_batch: None,
            sink: None,
        }
    }
}

/// `df.groupBy(keys)`.
pub struct GroupedData {
    df: DataFrame,
    keys: Vec<Expr>,
}

impl GroupedData {
    /// `.agg(exprs)`.
    pub fn agg(self, aggregates: impl IntoIterator<Item = Expr>) -> Result<DataFrame> {
        let plan = self.df.plan.clone().group_by(self.keys).agg(aggregates)?;
        Ok(self.df.with(plan))
    }

    /// `.count()`: the keys and a `count` column.
    pub fn count(self) -> Result<DataFrame> {
        let plan = self.df.plan.clone().group_by(self.keys).count()?;
        Ok(self.df.with(plan))
    }
}

/// `spark.readStream`.
pub struct DataStreamReader {
    session: Session,
    format: String,
    schema: Option<SchemaRef>,
    options: BTreeMap<String, String>,
}

impl DataStreamReader {
    pub(crate) fn new(session: Session) -> DataStreamReader {
        DataStreamReader {
            session,
            format: String::new(),
            schema: None,
            options: BTreeMap::new(),
        }
    }

    /// The source format: `csv`, `json`, `parquet`, `text`, `rate`, `rate-micro-batch`.
    pub fn format(mut self, format: &str) -> Self {
        self.format = format.to_string();
        self
    }

    /// The schema (required for file sources).
    pub fn schema(mut self, schema: SchemaRef) -> Self {
        self.schema = Some(schema);
        self
    }

    /// A reader option (Spark's names).
    pub fn option(mut self, key: &str, value: impl ToString) -> Self {
        self.options.insert(key.to_string(), value.to_string());
        self
    }

    /// Loads the stream (the path may also be given as the `path` option).
    pub fn load(self) -> Result<DataFrame> {
        self.load_path(None)
    }

    /// Loads the stream from `path`.
    pub fn load_path(mut self, path: Option<&str>) -> Result<DataFrame> {
        if let Some(p) = path {
            self.options.insert("path".into(), p.to_string());
        }
        if self.format.is_empty() {
            return Err(Error::option(
                "format",
                "no source format given; call .format(\"csv\" | \"json\" | \"parquet\" | \"text\" | \"rate\" | \"rate-micro-batch\")",
            ));
        }
        let schema = crate::session::source_schema(&self.format, self.schema.clone())?;
        let name = self
            .options
            .get("path")
            .cloned()
            .unwrap_or_else(|| self.format.clone());
        let node = SourceNode {
            name,
            format: self.format.to_ascii_lowercase(),
            options: self.options,
            table_schema: schema.clone(),
            schema,
            streaming: true,
            watermark: None,
            pushed_filters: Vec::new(),
            projection: None,
        };
        Ok(DataFrame::new(
            self.session,
            LogicalPlanBuilder::scan(node)?,
        ))
    }

    /// A memory stream (for tests and embedding): returns the stream handle and its DataFrame.
    pub fn memory(self, schema: SchemaRef) -> Result<(MemoryStream, DataFrame)> {
        let stream = MemoryStream::new(schema.clone());
        let name = self.session.register_memory_stream(stream.clone());
        let node = SourceNode {
            name: name.clone(),
            format: "memory".into(),
            options: BTreeMap::from([("name".to_string(), name)]),
            table_schema: schema.clone(),
            schema,
            streaming: true,
            watermark: None,
            pushed_filters: Vec::new(),
            projection: None,
        };
        Ok((
            stream,
            DataFrame::new(self.session, LogicalPlanBuilder::scan(node)?),
        ))
    }
}

/// `df.writeStream`.
pub struct DataStreamWriter {
    pub(crate) df: DataFrame,
    pub(crate) format: String,
    pub(crate) output_mode: Option<String>,
    pub(crate) trigger: Trigger,
    pub(crate) query_name: Option<String>,
    pub(crate) options: BTreeMap<String, String>,
    pub(crate) foreach_batch: Option<ForeachBatchFn>,
    pub(crate) sink: Option<Box<dyn Sink>>,
}

impl DataStreamWriter {
    /// The sink format: `console` (default), `memory`, `parquet`, `csv`, `json`, `noop`.
    pub fn format(mut self, format: &str) -> Self {
        self.format = format.to_string();
        self
    }

    /// `append` (default), `update` or `complete`.
    pub fn output_mode(mut self, mode: &str) -> Self {
        self.output_mode = Some(mode.to_string());
        self
    }

    /// When batches run.
    pub fn trigger(mut self, trigger: Trigger) -> Self {
        self.trigger = trigger;
        self
    }

    /// The query name (the memory sink's table name; unique among active queries).
    pub fn query_name(mut self, name: &str) -> Self {
        self.query_name = Some(name.to_string());
        self
    }

    /// A writer option (Spark's names), e.g. `checkpointLocation`, `path`, `numRows`.
    pub fn option(mut self, key: &str, value: impl ToString) -> Self {
        self.options.insert(key.to_string(), value.to_string());
        self
    }

    /// `foreachBatch(f)`: `f` gets each batch's rows and its batch id.
    pub fn foreach_batch<F>(mut self, f: F) -> Self
    where
        F: FnMut(
                &[arrow::record_batch::RecordBatch],
                u64,
            ) -> std::result::Result<(), Box<dyn std::error::Error + Send + Sync>>
            + Send
            + 'static,
    {
        self.foreach_batch = Some(Box::new(f));
        self
    }

    /// Writes to a sink object (for embedding and tests).
    pub fn sink(mut self, sink: Box<dyn Sink>) -> Self {
        self.sink = Some(sink);
        self
    }

    /// Starts the query.
    pub fn start(self) -> Result<StreamingQuery> {
        let session = self.df.session.clone();
        session.start_query(self)
    }
}
