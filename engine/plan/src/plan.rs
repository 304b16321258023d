//! The logical plan: a tree of relational operators over streams and tables, each node holding its
//! resolved output schema, plus the streaming output mode.
//!
//! Owns [`LogicalPlan`], its node structs, [`OutputMode`] and the Spark-style tree printing. Plans are
//! built (and resolved as they are built) by `builder::LogicalPlanBuilder`; this module must not
//! resolve names or check streaming rules (that is `analyzer`).

use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;
use std::sync::Arc;

use arrow_schema::SchemaRef;

use crate::error::{Error, Result, Rule, Span};
use crate::expr::{Expr, SortExpr, format_duration, spark_type_name};

/// Field metadata key set on an event-time column by a [`Watermark`] node: the delay in
/// milliseconds, as Spark's `EventTimeWatermark.delayKey`.
pub const WATERMARK_DELAY_MS_KEY: &str = "spark.watermarkDelayMs";

/// Field metadata key with the exact watermark delay in microseconds (weir's own precision).
pub const WATERMARK_DELAY_US_KEY: &str = "weir.watermarkDelayUs";

/// Field metadata key on a join's output columns naming the relation (source, table or alias) each
/// comes from, so `a.id` and `b.id` can be told apart.
pub const RELATION_KEY: &str = "weir.relation";

/// Which rows of the result table reach the sink on each trigger (§1.2).
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, Default, serde::Serialize, serde::Deserialize,
)]
pub enum OutputMode {
    /// Only final rows (the default).
    #[default]
    Append,
    /// Rows inserted or changed by this trigger.
    Update,
    /// The whole result table every trigger.
    Complete,
}

impl fmt::Display for OutputMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            OutputMode::Append => "Append",
            OutputMode::Update => "Update",
            OutputMode::Complete => "Complete",
        })
    }
}

impl FromStr for OutputMode {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self> {
        match s.to_ascii_lowercase().as_str() {
            "append" => Ok(OutputMode::Append),
            "update" => Ok(OutputMode::Update),
            "complete" => Ok(OutputMode::Complete),
            _ => Err(Error::analysis(
                Rule::StreamingOutputMode,
                format!(
                    "Unknown output mode {s}. Accepted output modes are 'append', 'complete', 'update'"
                ),
            )),
        }
    }
}

/// A watermark declared with the source (`WATERMARK FOR col AS col - INTERVAL ...` in DDL).
#[derive(Debug, Clone, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub struct WatermarkSpec {
    /// Event-time column.
    pub column: String,
    /// Allowed lateness, microseconds.
    pub delay_us: i64,
}

/// A stream or table read.
#[derive(Debug, Clone, PartialEq)]
pub struct Source {
    /// Catalog name of the source or table.
    pub name: String,
    /// Reader format (`csv`, `json`, `parquet`, `rate`, `kafka`, `memory`, ...).
    pub format: String,
    /// Spark reader options (`path`, `maxFilesPerTrigger`, ...).
    pub options: BTreeMap<String, String>,
    /// Full schema of the source.
    pub table_schema: SchemaRef,
    /// Output schema: `table_schema`, or the columns kept by projection push-down.
    pub schema: SchemaRef,
    /// An unbounded stream (`true`) or a static table.
    pub streaming: bool,
    /// Watermark declared in DDL; the builder puts a [`Watermark`] node above the source for it.
    pub watermark: Option<WatermarkSpec>,
    /// Predicates pushed down by the optimizer (all must hold; the reader may use them to skip data,
    /// but the plan keeps the Filter, so a reader may also ignore them).
    pub pushed_filters: Vec<Expr>,
    /// Indices into `table_schema` of the columns the query needs (projection push-down);
    /// `None` reads every column.
    pub projection: Option<Vec<usize>>,
}

impl Source {
    /// A source reading every column of `schema`, with no options and no watermark.
    pub fn new(
        name: impl Into<String>,
        format: impl Into<String>,
        schema: SchemaRef,
        streaming: bool,
    ) -> Self {
        Self {
            name: name.into(),
            format: format.into(),
            options: BTreeMap::new(),
            table_schema: schema.clone(),
            schema,
            streaming,
            watermark: None,
            pushed_filters: Vec::new(),
            projection: None,
        }
    }

    /// Add a reader option.
    pub fn with_option(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.options.insert(key.into(), value.into());
        self
    }

    /// Declare a watermark (as `WATERMARK FOR` in DDL).
    pub fn with_watermark(mut self, column: impl Into<String>, delay_us: i64) -> Self {
        self.watermark = Some(WatermarkSpec {
            column: column.into(),
            delay_us,
        });
        self
    }
}

/// Keep rows where `predicate` is true.
#[derive(Debug, Clone, PartialEq)]
pub struct Filter {
    /// Input.
    pub input: Arc<LogicalPlan>,
    /// Boolean predicate over the input's columns.
    pub predicate: Expr,
}

/// Compute one output column per expression.
#[derive(Debug, Clone, PartialEq)]
pub struct Project {
    /// Input.
    pub input: Arc<LogicalPlan>,
    /// Output expressions (aliased where the name is not the expression text).
    pub exprs: Vec<Expr>,
    /// Output schema.
    pub schema: SchemaRef,
}

/// Group and aggregate. Output: one column per grouping expression, then one per aggregate.
#[derive(Debug, Clone, PartialEq)]
pub struct Aggregate {
    /// Input.
    pub input: Arc<LogicalPlan>,
    /// Grouping expressions (columns, `window(..)`, `session_window(..)`, other expressions).
    pub group_by: Vec<Expr>,
    /// Aggregate calls, each possibly aliased; nothing else.
    pub aggregates: Vec<Expr>,
    /// Output schema.
    pub schema: SchemaRef,
}

/// `withWatermark(column, delay)`: mark the event-time column; the engine tracks `max - delay`.
#[derive(Debug, Clone, PartialEq)]
pub struct Watermark {
    /// Input.
    pub input: Arc<LogicalPlan>,
    /// Event-time column (exact name in the input).
    pub column: String,
    /// Allowed lateness, microseconds.
    pub delay_us: i64,
    /// Input schema with watermark metadata on `column`.
    pub schema: SchemaRef,
}

/// `dropDuplicates(columns)` / `dropDuplicatesWithinWatermark(columns)`.
#[derive(Debug, Clone, PartialEq)]
pub struct Deduplicate {
    /// Input.
    pub input: Arc<LogicalPlan>,
    /// Key columns (exact names); all columns when the user gave none.
    pub columns: Vec<String>,
    /// `dropDuplicatesWithinWatermark` (key → expiry state) rather than `dropDuplicates`.
    pub within_watermark: bool,
}

/// `UNION ALL` by position.
#[derive(Debug, Clone, PartialEq)]
pub struct Union {
    /// Inputs, two or more.
    pub inputs: Vec<Arc<LogicalPlan>>,
    /// Output schema (names of the first input; nullable where any input is).
    pub schema: SchemaRef,
}

/// `explode(array)`: one output row per array element; input columns plus the element as `alias`.
#[derive(Debug, Clone, PartialEq)]
pub struct Explode {
    /// Input.
    pub input: Arc<LogicalPlan>,
    /// Array-typed expression.
    pub expr: Expr,
    /// Name of the element column.
    pub alias: String,
    /// Output schema: input columns, then the element column.
    pub schema: SchemaRef,
}

/// `ORDER BY`.
#[derive(Debug, Clone, PartialEq)]
pub struct Sort {
    /// Input.
    pub input: Arc<LogicalPlan>,
    /// Sort keys, most significant first.
    pub exprs: Vec<SortExpr>,
}

/// `LIMIT fetch OFFSET skip`.
#[derive(Debug, Clone, PartialEq)]
pub struct Limit {
    /// Input.
    pub input: Arc<LogicalPlan>,
    /// Rows skipped first (`OFFSET`; rejected on streams).
    pub skip: u64,
    /// Rows kept after the skip; `None` keeps all.
    pub fetch: Option<u64>,
    /// Where the LIMIT/OFFSET appeared in SQL text.
    pub span: Option<Span>,
}

/// A relation renamed (`FROM (subquery) AS t`, `FROM bids b`): qualifies its columns as `alias.col`.
#[derive(Debug, Clone, PartialEq)]
pub struct SubqueryAlias {
    /// Input.
    pub input: Arc<LogicalPlan>,
    /// New relation name.
    pub alias: String,
}

/// The kind of a join.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum JoinType {
    /// `INNER JOIN`.
    Inner,
    /// `LEFT OUTER JOIN`.
    LeftOuter,
    /// `RIGHT OUTER JOIN`.
    RightOuter,
    /// `FULL OUTER JOIN`.
    FullOuter,
    /// `LEFT SEMI JOIN`.
    LeftSemi,
    /// `LEFT ANTI JOIN`.
    LeftAnti,
    /// `CROSS JOIN`.
    Cross,
}

impl fmt::Display for JoinType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            JoinType::Inner => "Inner",
            JoinType::LeftOuter => "LeftOuter",
            JoinType::RightOuter => "RightOuter",
            JoinType::FullOuter => "FullOuter",
            JoinType::LeftSemi => "LeftSemi",
            JoinType::LeftAnti => "LeftAnti",
            JoinType::Cross => "Cross",
        })
    }
}

/// A join (planned and checked against §4.6/§4.8; the engine does not execute joins yet).
#[derive(Debug, Clone, PartialEq)]
pub struct Join {
    /// Left input.
    pub left: Arc<LogicalPlan>,
    /// Right input.
    pub right: Arc<LogicalPlan>,
    /// Join type.
    pub join_type: JoinType,
    /// `ON` condition over both sides' columns.
    pub condition: Option<Expr>,
    /// Output schema: left columns then right columns (left only for semi/anti).
    pub schema: SchemaRef,
}

/// A logical plan node. Every node is resolved: its expressions name input columns exactly and
/// [`LogicalPlan::schema`] is its output schema.
#[derive(Debug, Clone, PartialEq)]
pub enum LogicalPlan {
    /// Read a stream or table.
    Source(Source),
    /// Keep matching rows.
    Filter(Filter),
    /// Compute columns.
    Project(Project),
    /// Group and aggregate.
    Aggregate(Aggregate),
    /// Declare an event-time watermark.
    Watermark(Watermark),
    /// Drop duplicate rows.
    Deduplicate(Deduplicate),
    /// Concatenate inputs.
    Union(Union),
    /// Explode an array into rows.
    Explode(Explode),
    /// Order rows.
    Sort(Sort),
    /// Keep the first rows.
    Limit(Limit),
    /// Rename the relation.
    SubqueryAlias(SubqueryAlias),
    /// Join two inputs.
    Join(Join),
}

impl LogicalPlan {
    /// The node's output schema.
    pub fn schema(&self) -> &SchemaRef {
        match self {
            LogicalPlan::Source(n) => &n.schema,
            LogicalPlan::Project(n) => &n.schema,
            LogicalPlan::Aggregate(n) => &n.schema,
            LogicalPlan::Watermark(n) => &n.schema,
            LogicalPlan::Union(n) => &n.schema,
            LogicalPlan::Explode(n) => &n.schema,
            LogicalPlan::Join(n) => &n.schema,
            LogicalPlan::Filter(Filter { input, .. })
            | LogicalPlan::Deduplicate(Deduplicate { input, .. })
            | LogicalPlan::Sort(Sort { input, .. })
            | LogicalPlan::Limit(Limit { input, .. })
            | LogicalPlan::SubqueryAlias(SubqueryAlias { input, .. }) => input.schema(),
        }
    }

    /// The node's inputs, in order.
    pub fn inputs(&self) -> Vec<&Arc<LogicalPlan>> {
        match self {
            LogicalPlan::Source(_) => vec![],
            LogicalPlan::Filter(Filter { input, .. })
            | LogicalPlan::Project(Project { input, .. })
            | LogicalPlan::Aggregate(Aggregate { input, .. })
            | LogicalPlan::Watermark(Watermark { input, .. })
            | LogicalPlan::Deduplicate(Deduplicate { input, .. })
            | LogicalPlan::Explode(Explode { input, .. })
            | LogicalPlan::Sort(Sort { input, .. })
            | LogicalPlan::Limit(Limit { input, .. })
            | LogicalPlan::SubqueryAlias(SubqueryAlias { input, .. }) => vec![input],
            LogicalPlan::Union(Union { inputs, .. }) => inputs.iter().collect(),
            LogicalPlan::Join(Join { left, right, .. }) => vec![left, right],
        }
    }

    /// The same node over new inputs (same count and order as [`LogicalPlan::inputs`]).
    /// Schemas are kept: use it only for rewrites that do not change the inputs' schemas.
    pub fn with_new_inputs(&self, mut inputs: Vec<Arc<LogicalPlan>>) -> LogicalPlan {
        let mut node = self.clone();
        match &mut node {
            LogicalPlan::Source(_) => {}
            LogicalPlan::Filter(Filter { input, .. })
            | LogicalPlan::Project(Project { input, .. })
            | LogicalPlan::Aggregate(Aggregate { input, .. })
            | LogicalPlan::Watermark(Watermark { input, .. })
            | LogicalPlan::Deduplicate(Deduplicate { input, .. })
            | LogicalPlan::Explode(Explode { input, .. })
            | LogicalPlan::Sort(Sort { input, .. })
            | LogicalPlan::Limit(Limit { input, .. })
            | LogicalPlan::SubqueryAlias(SubqueryAlias { input, .. }) => {
                if let Some(new) = inputs.pop() {
                    *input = new;
                }
            }
            LogicalPlan::Union(Union { inputs: old, .. }) => {
                if inputs.len() == old.len() {
                    *old = inputs;
                }
            }
            LogicalPlan::Join(Join { left, right, .. }) => {
                if let (Some(r), Some(l)) = (inputs.pop(), inputs.pop()) {
                    *left = l;
                    *right = r;
                }
            }
        }
        node
    }

    /// True if any source below is a stream (Spark's `isStreaming`).
    #[recursive::recursive]
    pub fn is_streaming(&self) -> bool {
        match self {
            LogicalPlan::Source(s) => s.streaming,
            other => other.inputs().into_iter().any(|i| i.is_streaming()),
        }
    }

    /// The expressions the node evaluates (not those of its inputs).
    pub fn expressions(&self) -> Vec<&Expr> {
        match self {
            LogicalPlan::Source(s) => s.pushed_filters.iter().collect(),
            LogicalPlan::Filter(f) => vec![&f.predicate],
            LogicalPlan::Project(p) => p.exprs.iter().collect(),
            LogicalPlan::Aggregate(a) => a.group_by.iter().chain(&a.aggregates).collect(),
            LogicalPlan::Explode(e) => vec![&e.expr],
            LogicalPlan::Sort(s) => s.exprs.iter().map(|s| &s.expr).collect(),
            LogicalPlan::Join(j) => j.condition.iter().collect(),
            LogicalPlan::Watermark(_)
            | LogicalPlan::Deduplicate(_)
            | LogicalPlan::Union(_)
            | LogicalPlan::Limit(_)
            | LogicalPlan::SubqueryAlias(_) => vec![],
        }
    }

    /// The relation names visible to expressions over this node's output (source names and
    /// subquery aliases, seen through projections and aggregations), used to check qualifiers such
    /// as `b.price`.
    #[recursive::recursive]
    pub fn relation_names(&self) -> Vec<&str> {
        match self {
            LogicalPlan::Source(s) => vec![s.name.as_str()],
            LogicalPlan::SubqueryAlias(a) => vec![a.alias.as_str()],
            LogicalPlan::Join(j) => {
                let mut names = j.left.relation_names();
                names.extend(j.right.relation_names());
                names
            }
            LogicalPlan::Filter(Filter { input, .. })
            | LogicalPlan::Watermark(Watermark { input, .. })
            | LogicalPlan::Deduplicate(Deduplicate { input, .. })
            | LogicalPlan::Explode(Explode { input, .. })
            | LogicalPlan::Sort(Sort { input, .. })
            | LogicalPlan::Limit(Limit { input, .. }) => input.relation_names(),
            LogicalPlan::Project(Project { input, .. })
            | LogicalPlan::Aggregate(Aggregate { input, .. }) => input.relation_names(),
            LogicalPlan::Union(_) => vec![],
        }
    }

    /// A one-line description of this node alone (no inputs), as printed in the plan tree.
    pub fn node_description(&self) -> String {
        match self {
            LogicalPlan::Source(s) => {
                let columns: Vec<String> = s
                    .schema
                    .fields()
                    .iter()
                    .map(|f| format!("{}: {}", f.name(), spark_type_name(f.data_type())))
                    .collect();
                let kind = if s.streaming {
                    "StreamingSource"
                } else {
                    "Table"
                };
                let mut text = format!(
                    "{kind} {} [{}] format={}",
                    s.name,
                    columns.join(", "),
                    s.format
                );
                if !s.options.is_empty() {
                    let opts: Vec<String> =
                        s.options.iter().map(|(k, v)| format!("{k}={v}")).collect();
                    text.push_str(&format!(" options=[{}]", opts.join(", ")));
                }
                if !s.pushed_filters.is_empty() {
                    text.push_str(&format!(
                        " pushed_filters=[{}]",
                        join(s.pushed_filters.iter())
                    ));
                }
                text
            }
            LogicalPlan::Filter(f) => format!("Filter {}", f.predicate),
            LogicalPlan::Project(p) => format!("Project [{}]", join(p.exprs.iter())),
            LogicalPlan::Aggregate(a) => {
                format!(
                    "Aggregate [{}], [{}]",
                    join(a.group_by.iter()),
                    join(a.aggregates.iter())
                )
            }
            LogicalPlan::Watermark(w) => format!(
                "EventTimeWatermark {}, {}",
                w.column,
                format_duration(w.delay_us)
            ),
            LogicalPlan::Deduplicate(d) => {
                let name = if d.within_watermark {
                    "DeduplicateWithinWatermark"
                } else {
                    "Deduplicate"
                };
                format!("{name} [{}]", d.columns.join(", "))
            }
            LogicalPlan::Union(_) => "Union".to_string(),
            LogicalPlan::Explode(e) => format!("Generate explode({}) AS {}", e.expr, e.alias),
            LogicalPlan::Sort(s) => format!("Sort [{}]", join(s.exprs.iter())),
            LogicalPlan::Limit(l) => match (l.fetch, l.skip) {
                (Some(n), 0) => format!("Limit {n}"),
                (Some(n), skip) => format!("Limit {n} Offset {skip}"),
                (None, skip) => format!("Offset {skip}"),
            },
            LogicalPlan::SubqueryAlias(a) => format!("SubqueryAlias {}", a.alias),
            LogicalPlan::Join(j) => match &j.condition {
                Some(c) => format!("Join {}, {c}", j.join_type),
                None => format!("Join {}", j.join_type),
            },
        }
    }

    #[recursive::recursive]
    fn fmt_tree(&self, f: &mut fmt::Formatter<'_>, prefix: &str) -> fmt::Result {
        writeln!(f, "{}", self.node_description())?;
        let inputs = self.inputs();
        let count = inputs.len();
        for (i, input) in inputs.into_iter().enumerate() {
            let last = i + 1 == count;
            let (branch, continuation) = if last { ("+- ", "   ") } else { (":- ", ":  ") };
            write!(f, "{prefix}{branch}")?;
            input.fmt_tree(f, &format!("{prefix}{continuation}"))?;
        }
        Ok(())
    }

    /// The output schema as one line (`name: type, ...`, with ` not null` after non-nullable types),
    /// for explain output and snapshots.
    pub fn schema_description(&self) -> String {
        let fields: Vec<String> = self
            .schema()
            .fields()
            .iter()
            .map(|f| {
                let null = if f.is_nullable() { "" } else { " not null" };
                format!("{}: {}{null}", f.name(), spark_type_name(f.data_type()))
            })
            .collect();
        fields.join(", ")
    }
}

fn join<T: fmt::Display>(items: impl Iterator<Item = T>) -> String {
    items.map(|i| i.to_string()).collect::<Vec<_>>().join(", ")
}

/// Prints the tree, Spark style:
///
/// ```text
/// Project [w, auction, count(1) AS n]
/// +- Aggregate [window(date_time, 10 seconds), auction], [count(1)]
///    +- EventTimeWatermark date_time, 5 seconds
///       +- StreamingSource bids [...] format=csv
/// ```
impl fmt::Display for LogicalPlan {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.fmt_tree(f, "")
    }
}
