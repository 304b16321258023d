//! Incremental planning: an analysed logical plan becomes the physical operator tree.
//!
//! Owns the split of a query into stateless pipelines (each compiled to one weir-jit kernel;
//! filters are fused into the kernel that follows them) and stateful operators (aggregation,
//! deduplication), the assignment of stateful operator ids in plan order, and the watermark
//! trackers. It must not check streaming rules (weir-plan's analyzer does, before this runs) or
//! run anything.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::Arc;

use arrow::compute::SortOptions;
use arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use weir_jit::{AggFunc, JitEngine, KernelSpec};
use weir_plan::expr::{AggregateFunction, Expr, ScalarValue};
use weir_plan::plan::{LogicalPlan, WATERMARK_DELAY_US_KEY};
use weir_plan::{OutputMode, analyzer};

use super::aggregate::{AggregateOp, EventTimeKey, KeyKind, SlidingExpansion};
use super::dedup::{DedupOp, DedupWatermark};
use super::lower::{ExprLowering, KernelInputs, collect_inputs, timestamp_type};
use super::map::{MapStage, OutputColumn};
use super::{Node, PhysicalPlan, WatermarkTracker, explain_node};
use crate::error::{Error, Result};

/// A source the query reads, as the plan describes it.
#[derive(Clone, Debug)]
pub struct SourceSpec {
    /// Catalog name.
    pub name: String,
    /// Reader format.
    pub format: String,
    /// Reader options.
    pub options: BTreeMap<String, String>,
    /// The full schema of the source.
    pub schema: SchemaRef,
    /// Columns the query needs (projection push-down), as indices into `schema`.
    pub projection: Option<Vec<usize>>,
    /// Predicates every kept row satisfies (predicate push-down; advisory for the source).
    pub bounds: Vec<crate::source::ColumnBound>,
}

/// Settings of the planner.
#[derive(Clone, Debug)]
pub struct PlannerOptions {
    /// Worker threads for stateless kernels.
    pub workers: usize,
    /// State shards of each aggregation.
    pub state_shards: usize,
    /// ANSI casts (Spark 4's default).
    pub ansi: bool,
}

impl Default for PlannerOptions {
    fn default() -> Self {
        PlannerOptions {
            workers: std::thread::available_parallelism().map_or(1, |n| n.get()),
            state_shards: 1,
            ansi: true,
        }
    }
}

/// Plans an analysed streaming query for execution.
pub fn plan_query(
    plan: &LogicalPlan,
    mode: OutputMode,
    jit: &JitEngine,
    options: &PlannerOptions,
) -> Result<PhysicalPlan> {
    let mut planner = Planner {
        jit,
        options,
        mode,
        sources: Vec::new(),
        trackers: Vec::new(),
        next_op: 0,
        fingerprint: String::new(),
        scan_labels: Vec::new(),
        watermark_labels: Vec::new(),
        explode_needed: None,
    };
    // Constant folding, predicate and projection push-down (the output schema is unchanged).
    let optimized = weir_plan::optimize(plan)?;
    let root = planner.build(&optimized)?;
    let mut explain = String::new();
    let _ = writeln!(explain, "== Analyzed Logical Plan ==\n{plan}");
    let _ = writeln!(explain, "== Optimized Logical Plan ==\n{optimized}");
    let _ = writeln!(explain, "== Incremental Plan (output mode {mode}) ==");
    let labels = super::ExplainLabels {
        scans: planner.scan_labels.clone(),
        watermarks: planner.watermark_labels.clone(),
    };
    explain_node(&root, 0, &labels, &mut explain);
    Ok(PhysicalPlan {
        root,
        sources: planner.sources,
        output_schema: optimized.schema().clone(),
        output_mode: mode,
        trackers: planner.trackers,
        explain,
        fingerprint: planner.fingerprint,
    })
}

struct Planner<'a> {
    jit: &'a JitEngine,
    options: &'a PlannerOptions,
    mode: OutputMode,
    sources: Vec<SourceSpec>,
    trackers: Vec<WatermarkTracker>,
    next_op: usize,
    fingerprint: String,
    /// Explain text of each source, by index.
    scan_labels: Vec<String>,
    /// Explain text of each watermark tracker, by index.
    watermark_labels: Vec<String>,
    /// Columns the projection above the next explode reads (the others need no copy).
    explode_needed: Option<std::collections::HashSet<String>>,
}

/// A grouping key as the aggregation kernel computes it.
enum GroupKey {
    /// An expression over the input (including the `__window_start` column a sliding-window
    /// expansion adds).
    Expr(Expr),
    /// The start of the tumbling window holding `time`, computed inside the kernel.
    TumblingStart {
        time: Expr,
        size_us: i64,
        start_us: i64,
    },
}

impl GroupKey {
    /// The expression whose columns the key reads.
    fn input_expr(&self) -> &Expr {
        match self {
            GroupKey::Expr(e) | GroupKey::TumblingStart { time: e, .. } => e,
        }
    }

    /// Lowers the key into the kernel under construction.
    fn lower(&self, lowering: &mut ExprLowering<'_>) -> Result<weir_jit::ExprId> {
        match self {
            GroupKey::Expr(e) => lowering.lower(e),
            GroupKey::TumblingStart {
                time,
                size_us,
                start_us,
            } => {
                let time = lowering.lower(time)?;
                Ok(lowering
                    .builder
                    .window_start(time, *size_us, *size_us, *start_us)?)
            }
        }
    }
}

/// Strips filters directly below a node: returns the node under them and the predicates.
fn peel_filters(plan: &Arc<LogicalPlan>) -> (&Arc<LogicalPlan>, Vec<Expr>) {
    let mut predicates = Vec::new();
    let mut current = plan;
    while let LogicalPlan::Filter(f) = current.as_ref() {
        predicates.push(f.predicate.clone());
        current = &f.input;
    }
    (current, predicates)
}

fn strip_alias(e: &Expr) -> &Expr {
    match e {
        Expr::Alias { expr, .. } => strip_alias(expr),
        other => other,
    }
}

fn is_window_struct(t: &DataType) -> bool {
    matches!(t, DataType::Struct(f) if f.len() == 2 && f[0].name() == "start" && f[1].name() == "end")
}

impl Planner<'_> {
    fn build(&mut self, plan: &LogicalPlan) -> Result<Node> {
        match plan {
            LogicalPlan::Source(s) => {
                if !s.streaming {
                    return Err(Error::Unsupported(format!(
                        "the static table '{}' can only be joined with a stream, and stream-static joins are not supported yet",
                        s.name
                    )));
                }
                let index = self.sources.len();
                self.scan_labels.push(format!(
                    "{} [{}] columns [{}]",
                    s.name,
                    s.format,
                    s.schema
                        .fields()
                        .iter()
                        .map(|f| f.name().as_str())
                        .collect::<Vec<_>>()
                        .join(", ")
                ));
                self.sources.push(SourceSpec {
                    name: s.name.clone(),
                    format: s.format.clone(),
                    options: s.options.clone(),
                    schema: s.table_schema.clone(),
                    projection: s.projection.clone(),
                    bounds: s.pushed_filters.iter().flat_map(column_bounds).collect(),
                });
                Ok(Node::Scan {
                    index,
                    projection: s.projection.clone(),
                })
            }
            LogicalPlan::SubqueryAlias(a) => self.build(&a.input),
            LogicalPlan::Project(p) => {
                let (below, filters) = peel_filters(&p.input);
                // An explode right below only needs to copy the columns this projection reads.
                if matches!(below.as_ref(), LogicalPlan::Explode(_)) {
                    let mut used = std::collections::HashSet::new();
                    for e in p.exprs.iter().chain(&filters) {
                        referenced_columns(e, &mut used);
                    }
                    self.explode_needed = Some(used);
                }
                let input = self.build(below)?;
                let stage = self.map_stage(below.schema(), &filters, &p.exprs, &p.schema)?;
                Ok(Node::Map {
                    input: Box::new(input),
                    stage,
                })
            }
            LogicalPlan::Filter(_) => {
                let wrapped = Arc::new(plan.clone());
                let (below, filters) = peel_filters(&wrapped);
                let input = self.build(below)?;
                let schema = below.schema().clone();
                let identity: Vec<Expr> = schema
                    .fields()
                    .iter()
                    .map(|f| weir_plan::expr::col(f.name()))
                    .collect();
                let stage = self.map_stage(&schema, &filters, &identity, &schema)?;
                Ok(Node::Map {
                    input: Box::new(input),
                    stage,
                })
            }
            LogicalPlan::Watermark(w) => {
                let input = self.build(&w.input)?;
                let column = w.input.schema().index_of(&w.column).map_err(|_| {
                    Error::Internal(format!(
                        "watermark column '{}' missing after analysis",
                        w.column
                    ))
                })?;
                let tracker = self.trackers.len();
                self.watermark_labels.push(format!(
                    "{}, delay {}",
                    w.column,
                    weir_plan::expr::format_duration(w.delay_us)
                ));
                self.trackers.push(WatermarkTracker {
                    column_name: w.column.clone(),
                    delay_ms: w.delay_us.div_euclid(1000),
                    max_event_time_ms: None,
                    batch_stats: None,
                });
                Ok(Node::Watermark {
                    input: Box::new(input),
                    column,
                    tracker,
                })
            }
            LogicalPlan::Union(u) => {
                let inputs = u
                    .inputs
                    .iter()
                    .map(|i| self.build(i))
                    .collect::<Result<Vec<_>>>()?;
                Ok(Node::Union { inputs })
            }
            LogicalPlan::Aggregate(a) => self.aggregate(a),
            LogicalPlan::Deduplicate(d) => {
                let input = self.build(&d.input)?;
                let schema = d.input.schema().clone();
                let key_columns = d
                    .columns
                    .iter()
                    .map(|c| {
                        schema.index_of(c).map_err(|_| {
                            Error::Internal(format!("dedup column '{c}' missing after analysis"))
                        })
                    })
                    .collect::<Result<Vec<_>>>()?;
                let watermarked = schema
                    .fields()
                    .iter()
                    .position(|f| analyzer::has_watermark(f));
                let watermark = if d.within_watermark {
                    let time_column = watermarked.ok_or_else(|| {
                        Error::Unsupported(
                            "dropDuplicatesWithinWatermark needs a watermark on the input".into(),
                        )
                    })?;
                    let delay_us = schema
                        .field(time_column)
                        .metadata()
                        .get(WATERMARK_DELAY_US_KEY)
                        .and_then(|v| v.parse::<i64>().ok())
                        .unwrap_or(0);
                    Some(DedupWatermark {
                        time_column,
                        expiry_delay_us: delay_us,
                    })
                } else {
                    key_columns
                        .iter()
                        .find(|i| analyzer::has_watermark(schema.field(**i)))
                        .map(|i| DedupWatermark {
                            time_column: *i,
                            expiry_delay_us: 0,
                        })
                };
                let op_id = self.next_op;
                self.next_op += 1;
                let description = format!(
                    "keys=[{}]{}",
                    d.columns.join(", "),
                    if d.within_watermark {
                        " withinWatermark"
                    } else {
                        ""
                    }
                );
                let _ = writeln!(self.fingerprint, "op {op_id}: dedup {description}");
                let op = DedupOp::new(op_id, &schema, key_columns, watermark, description)?;
                Ok(Node::Dedup {
                    input: Box::new(input),
                    op: Box::new(op),
                })
            }
            LogicalPlan::Sort(s) => {
                let input = self.build(&s.input)?;
                let schema = s.input.schema();
                let keys = s
                    .exprs
                    .iter()
                    .map(|k| match strip_alias(&k.expr) {
                        Expr::Column(c) => schema
                            .index_of(&c.name)
                            .map(|i| {
                                (
                                    i,
                                    SortOptions {
                                        descending: !k.asc,
                                        nulls_first: k.nulls_first,
                                    },
                                )
                            })
                            .map_err(|_| {
                                Error::Internal(format!("sort column '{}' missing", c.name))
                            }),
                        other => Err(Error::Unsupported(format!(
                            "ORDER BY {other}: sort by an output column of the aggregation"
                        ))),
                    })
                    .collect::<Result<Vec<_>>>()?;
                Ok(Node::Sort {
                    input: Box::new(input),
                    keys,
                })
            }
            LogicalPlan::Limit(l) => {
                let input = self.build(&l.input)?;
                Ok(Node::Limit {
                    input: Box::new(input),
                    fetch: l
                        .fetch
                        .map_or(usize::MAX, |f| usize::try_from(f).unwrap_or(usize::MAX)),
                    emitted: 0,
                    per_batch: self.mode == OutputMode::Complete,
                })
            }
            LogicalPlan::Explode(e) => {
                let needed = self.explode_needed.take();
                let input = self.build(&e.input)?;
                let in_schema = e.input.schema().clone();
                let mut inputs = KernelInputs::default();
                collect_inputs(&e.expr, &in_schema, &mut inputs)?;
                let kernel_schema = inputs.schema(&in_schema);
                let mut builder = KernelSpec::builder(kernel_schema.clone());
                builder.ansi(self.options.ansi);
                let mut lowering = ExprLowering {
                    builder: &mut builder,
                    inputs: &inputs,
                    ansi: self.options.ansi,
                };
                let id = lowering.lower(&e.expr)?;
                builder.project(vec![(e.alias.clone(), id)]);
                let kernel = self.jit.compile(&builder.build()?)?;
                Ok(Node::Explode {
                    input: Box::new(input),
                    stage: super::map::ExplodeStage {
                        inputs,
                        kernel_schema,
                        kernel,
                        output_schema: e.schema.clone(),
                        description: format!("{} AS {}", e.expr, e.alias),
                        literal_split: literal_split(&e.expr, &in_schema),
                        workers: self.options.workers,
                        copied_columns: in_schema
                            .fields()
                            .iter()
                            // A non-nullable column is always copied: NULLs would break its schema.
                            .map(|f| {
                                !f.is_nullable()
                                    || needed.as_ref().is_none_or(|n| n.contains(f.name()))
                            })
                            .collect(),
                    },
                })
            }
            LogicalPlan::Join(_) => Err(Error::Unsupported(
                "joins are not supported in streaming execution yet".into(),
            )),
        }
    }

    /// The side kernel of distinct counts: the aggregation's filters, then its grouping keys
    /// (computed exactly as the aggregation kernel computes them) and the distinct-count
    /// arguments, one row per input row.
    fn distinct_kernel(
        &mut self,
        input: &SchemaRef,
        filters: &[Expr],
        keys: &[GroupKey],
        args: &[Expr],
    ) -> Result<(
        std::sync::Arc<weir_jit::CompiledKernel>,
        KernelInputs,
        SchemaRef,
    )> {
        let mut inputs = KernelInputs::default();
        for e in filters.iter().chain(args) {
            collect_inputs(e, input, &mut inputs)?;
        }
        for k in keys {
            collect_inputs(k.input_expr(), input, &mut inputs)?;
        }
        let kernel_schema = inputs.schema(input);
        let mut builder = KernelSpec::builder(kernel_schema.clone());
        builder.ansi(self.options.ansi);
        let mut lowering = ExprLowering {
            builder: &mut builder,
            inputs: &inputs,
            ansi: self.options.ansi,
        };
        let mut predicates = Vec::new();
        for f in filters {
            predicates.push(lowering.lower(f)?);
        }
        let mut columns = Vec::new();
        for (i, k) in keys.iter().enumerate() {
            columns.push((format!("k{i}"), k.lower(&mut lowering)?));
        }
        for (j, a) in args.iter().enumerate() {
            let id = lowering.lower(a)?;
            columns.push((format!("d{j}"), id));
        }
        for p in predicates {
            builder.filter(p);
        }
        builder.project(columns);
        Ok((self.jit.compile(&builder.build()?)?, inputs, kernel_schema))
    }

    /// A fused stage: filters, then the projection `exprs` with output schema `out`.
    fn map_stage(
        &mut self,
        input: &SchemaRef,
        filters: &[Expr],
        exprs: &[Expr],
        out: &SchemaRef,
    ) -> Result<MapStage> {
        // Struct (window) columns pass through as their two fields.
        let mut flat_exprs: Vec<(String, Expr)> = Vec::new();
        let mut outputs = Vec::new();
        for (e, field) in exprs.iter().zip(out.fields()) {
            let inner = strip_alias(e);
            // Without a filter, a plain column reference is passed through without a copy.
            if filters.is_empty()
                && let Expr::Column(c) = inner
                && let Ok(i) = input.index_of(&c.name)
                && input.field(i).data_type() == field.data_type()
            {
                outputs.push(OutputColumn::Input(i));
                continue;
            }
            if is_window_struct(field.data_type()) {
                let Expr::Column(c) = inner else {
                    return Err(Error::Unsupported(format!(
                        "the window expression {e} can only be used as a grouping expression"
                    )));
                };
                let start = flat_exprs.len();
                for part in ["start", "end"] {
                    flat_exprs.push((
                        format!("{}.{part}", field.name()),
                        Expr::GetField {
                            expr: Box::new(Expr::Column(c.clone())),
                            field: part.into(),
                        },
                    ));
                }
                outputs.push(OutputColumn::WindowStruct {
                    start,
                    end: start + 1,
                });
            } else if matches!(field.data_type(), DataType::Struct(_) | DataType::List(_)) {
                return Err(Error::Unsupported(format!(
                    "the column '{}' of type {} cannot be processed by a streaming kernel yet",
                    field.name(),
                    field.data_type()
                )));
            } else {
                outputs.push(OutputColumn::Kernel(flat_exprs.len()));
                flat_exprs.push((field.name().clone(), inner.clone()));
            }
        }
        let mut inputs = KernelInputs::default();
        for f in filters {
            collect_inputs(f, input, &mut inputs)?;
        }
        for (_, e) in &flat_exprs {
            collect_inputs(e, input, &mut inputs)?;
        }
        let kernel_schema = inputs.schema(input);
        let mut builder = KernelSpec::builder(kernel_schema.clone());
        builder.ansi(self.options.ansi);
        let mut lowering = ExprLowering {
            builder: &mut builder,
            inputs: &inputs,
            ansi: self.options.ansi,
        };
        let mut predicate_ids = Vec::new();
        for f in filters {
            predicate_ids.push(lowering.lower(f)?);
        }
        let mut columns = Vec::new();
        for (name, e) in &flat_exprs {
            let id = lowering.lower(e)?;
            columns.push((name.clone(), id));
        }
        // Make each output the exact type the plan promises.
        let kernel_types = flat_field_types(out, &outputs);
        for ((_, id), field) in columns.iter_mut().zip(kernel_types) {
            if builder.type_of(*id) != Some(&field) && field != DataType::Null {
                *id = builder.cast(*id, field, false)?;
            }
        }
        for p in predicate_ids {
            builder.filter(p);
        }
        let kernel = if columns.is_empty() && filters.is_empty() {
            None
        } else {
            builder.project(columns);
            let spec = builder.build()?;
            Some(self.jit.compile(&spec)?)
        };
        let description = describe_stage(filters, exprs);
        let output_schema = Arc::new(Schema::new(
            out.fields()
                .iter()
                .map(|f| f.as_ref().clone())
                .collect::<Vec<Field>>(),
        ));
        Ok(MapStage {
            inputs,
            kernel_schema,
            kernel,
            outputs,
            output_schema,
            description,
            workers: self.options.workers,
        })
    }

    fn aggregate(&mut self, a: &weir_plan::plan::Aggregate) -> Result<Node> {
        let (below, filters) = peel_filters(&a.input);
        let input = self.build(below)?;
        let in_schema = below.schema().clone();

        // Group keys: window assignment, the event-time key, sliding expansion.
        let mut keys = Vec::new();
        let mut key_exprs: Vec<GroupKey> = Vec::new();
        let mut event_time = None;
        let mut late_time_column = None;
        let mut sliding = None;
        let mut kernel_input_schema = in_schema.clone();
        for (i, g) in a.group_by.iter().enumerate() {
            match strip_alias(g) {
                Expr::Window {
                    time,
                    size_us,
                    slide_us,
                    start_us,
                } => {
                    let time_col = match time.as_ref() {
                        Expr::Column(c) => in_schema.index_of(&c.name).ok(),
                        _ => None,
                    };
                    let watermarked =
                        time_col.is_some_and(|c| analyzer::has_watermark(in_schema.field(c)));
                    if watermarked && event_time.is_none() {
                        event_time = Some(EventTimeKey {
                            key: i,
                            size_us: *size_us,
                            start_us: *start_us,
                        });
                    }
                    keys.push(KeyKind::Window { size_us: *size_us });
                    if size_us == slide_us {
                        if watermarked {
                            late_time_column = time_col;
                        }
                        key_exprs.push(GroupKey::TumblingStart {
                            time: time.as_ref().clone(),
                            size_us: *size_us,
                            start_us: *start_us,
                        });
                    } else {
                        let time_column = time_col.ok_or_else(|| {
                            Error::Unsupported(format!(
                                "a sliding window needs a column as its time, found {time}"
                            ))
                        })?;
                        if sliding.is_some() {
                            return Err(Error::Unsupported(
                                "only one sliding window per aggregation".into(),
                            ));
                        }
                        sliding = Some(SlidingExpansion {
                            time_column,
                            size_us: *size_us,
                            slide_us: *slide_us,
                            start_us: *start_us,
                        });
                        let mut fields: Vec<Field> = kernel_input_schema
                            .fields()
                            .iter()
                            .map(|f| f.as_ref().clone())
                            .collect();
                        fields.push(Field::new("__window_start", timestamp_type(), true));
                        kernel_input_schema = Arc::new(Schema::new(fields));
                        key_exprs.push(GroupKey::Expr(weir_plan::expr::col("__window_start")));
                    }
                }
                Expr::SessionWindow { .. } => {
                    return self.session_aggregate(a, input, &in_schema, &filters);
                }
                other => {
                    if let Expr::Column(c) = other
                        && let Ok(idx) = in_schema.index_of(&c.name)
                        && analyzer::has_watermark(in_schema.field(idx))
                        && event_time.is_none()
                    {
                        event_time = Some(EventTimeKey {
                            key: i,
                            size_us: 0,
                            start_us: 0,
                        });
                        late_time_column = Some(idx);
                    }
                    keys.push(KeyKind::Plain);
                    key_exprs.push(GroupKey::Expr(other.clone()));
                }
            }
        }
        if sliding.is_some() {
            // Late rows are dropped per window during the expansion.
            late_time_column = None;
        }

        // Aggregates: the kernel's, and the distinct counts kept as sketches beside them.
        let mut agg_specs: Vec<(AggFunc, Option<Expr>)> = Vec::new();
        let mut slots: Vec<super::aggregate::AggSlot> = Vec::new();
        let mut distinct_args: Vec<Expr> = Vec::new();
        for e in &a.aggregates {
            let (f, arg) = match agg_call(e)? {
                AggCall::Kernel(f, arg) => (f, arg),
                AggCall::ApproxCountDistinct(arg) => {
                    slots.push(super::aggregate::AggSlot::Distinct(distinct_args.len()));
                    distinct_args.push(arg);
                    continue;
                }
            };
            slots.push(super::aggregate::AggSlot::Kernel(agg_specs.len()));
            agg_specs.push((f, arg));
        }
        if agg_specs.is_empty() && !distinct_args.is_empty() {
            // Only distinct counts: the kernel still tracks the groups (with a count nobody reads).
            agg_specs.push((AggFunc::CountStar, None));
        }

        // One kernel: filters, keys, aggregate inputs.
        let mut inputs = KernelInputs::default();
        for f in &filters {
            collect_inputs(f, &kernel_input_schema, &mut inputs)?;
        }
        for k in &key_exprs {
            collect_inputs(k.input_expr(), &kernel_input_schema, &mut inputs)?;
        }
        for (_, arg) in &agg_specs {
            if let Some(arg) = arg {
                collect_inputs(arg, &kernel_input_schema, &mut inputs)?;
            }
        }
        let kernel_schema = inputs.schema(&kernel_input_schema);
        let distinct_side = if distinct_args.is_empty() {
            None
        } else {
            Some(self.distinct_kernel(
                &kernel_input_schema,
                &filters,
                &key_exprs,
                &distinct_args,
            )?)
        };
        let mut builder = KernelSpec::builder(kernel_schema.clone());
        builder.ansi(self.options.ansi);
        let mut lowering = ExprLowering {
            builder: &mut builder,
            inputs: &inputs,
            ansi: self.options.ansi,
        };
        let mut predicate_ids = Vec::new();
        for f in &filters {
            predicate_ids.push(lowering.lower(f)?);
        }
        let mut key_ids = Vec::new();
        for (i, k) in key_exprs.iter().enumerate() {
            key_ids.push((format!("k{i}"), k.lower(&mut lowering)?));
        }
        let mut agg_ids = Vec::new();
        for (j, (f, arg)) in agg_specs.iter().enumerate() {
            let id = arg.as_ref().map(|a| lowering.lower(a)).transpose()?;
            agg_ids.push((format!("a{j}"), *f, id));
        }
        for p in predicate_ids {
            builder.filter(p);
        }
        builder.aggregate(key_ids, agg_ids);
        let spec = builder.build()?;
        let kernel = self.jit.compile(&spec)?;

        let op_id = self.next_op;
        self.next_op += 1;
        let description = format!(
            "keys=[{}], aggs=[{}]",
            a.group_by
                .iter()
                .map(|e| e.to_string())
                .collect::<Vec<_>>()
                .join(", "),
            a.aggregates
                .iter()
                .map(|e| e.to_string())
                .collect::<Vec<_>>()
                .join(", ")
        );
        let _ = writeln!(self.fingerprint, "op {op_id}: aggregate {description}");
        // Plain-column keys route rows to state shards (all rows of a group share them).
        let route: Vec<usize> = key_exprs
            .iter()
            .filter_map(|k| match k {
                GroupKey::Expr(Expr::Column(c)) => inputs.position(&c.name),
                _ => None,
            })
            .filter(|i| super::aggregate::routable(kernel_schema.field(*i).data_type()))
            .collect();
        let mut op = AggregateOp::new(
            op_id,
            kernel,
            inputs,
            kernel_schema,
            keys,
            event_time,
            late_time_column,
            sliding,
            self.mode,
            a.schema.clone(),
            description,
            route,
        );
        op.slots = slots;
        if let Some((kernel, inputs, kernel_schema)) = distinct_side {
            op.distinct = Some(super::distinct::DistinctSketches::new(
                op_id,
                kernel,
                inputs,
                kernel_schema,
                key_exprs.len(),
                (0..distinct_args.len()).collect(),
            )?);
        }
        op.set_shard_count(self.options.state_shards);
        op.input_batches_per_feed = self.options.workers.max(1);
        let counts_only = agg_specs.iter().all(|(f, arg)| {
            matches!(
                (f, arg),
                (AggFunc::CountStar, None) | (AggFunc::Count, Some(Expr::Column(_)))
            )
        });
        let input = match fused_split(
            input,
            &key_exprs,
            &agg_specs,
            counts_only
                && filters.is_empty()
                && op.event_time.is_none()
                && op.sliding.is_none()
                && op.distinct.is_none()
                && op.shard_count() == 1,
        ) {
            Ok((lines, fused)) => {
                // Not in the fingerprint: the state is the same with or without the fusion.
                op.fused_split = Some(fused);
                lines
            }
            Err(input) => *input,
        };
        Ok(Node::Aggregate {
            input: Box::new(input),
            op: Box::new(op),
        })
    }
}

/// `GROUP BY word` with only `count(*)`/`count(word)` over `explode(split(line, 'c'))` for a
/// one-byte ASCII `c` (directly, or through a projection that only passes columns on):
/// returns the explode's input and the fusion, so the aggregation counts words straight from
/// the lines; otherwise gives `input` back unchanged.
fn fused_split(
    input: Node,
    key_exprs: &[GroupKey],
    agg_specs: &[(AggFunc, Option<Expr>)],
    eligible: bool,
) -> std::result::Result<(Node, super::aggregate::FusedSplit), Box<Node>> {
    if !eligible {
        return Err(Box::new(input));
    }
    // Down through projections that only pass columns on, to the explode.
    let mut maps: Vec<&super::map::MapStage> = Vec::new();
    let mut node = &input;
    while let Node::Map {
        input: below,
        stage,
    } = node
    {
        if stage.kernel.is_some() {
            return Err(Box::new(input));
        }
        maps.push(stage);
        node = below.as_ref();
    }
    let Node::Explode { stage, .. } = node else {
        return Err(Box::new(input));
    };
    // Up again: where the exploded word is, and under which names the aggregation sees it.
    let mut word_columns = vec![stage.output_schema.fields().len().saturating_sub(1)];
    let mut schema = stage.output_schema.clone();
    for map in maps.iter().rev() {
        word_columns = map
            .outputs
            .iter()
            .enumerate()
            .filter(|(_, o)| matches!(o, super::map::OutputColumn::Input(i) if word_columns.contains(i)))
            .map(|(j, _)| j)
            .collect();
        schema = map.output_schema.clone();
    }
    let word_names: Vec<String> = word_columns
        .iter()
        .map(|&j| schema.field(j).name().clone())
        .collect();
    let is_word = |e: &Expr| matches!(e, Expr::Column(c) if word_names.contains(&c.name));
    let separator = match &stage.literal_split {
        Some((column, sep)) => match sep.as_bytes() {
            [b] if b.is_ascii() => Some((*column, *b)),
            _ => None,
        },
        None => None,
    };
    let keyed_by_word = matches!(key_exprs, [GroupKey::Expr(e)] if is_word(e));
    let counts_word = agg_specs
        .iter()
        .all(|(_, arg)| arg.as_ref().is_none_or(is_word));
    let Some((line_column, separator)) = separator.filter(|_| keyed_by_word && counts_word) else {
        return Err(Box::new(input));
    };
    let fused = super::aggregate::FusedSplit {
        line_column,
        separator,
    };
    // Peel the projections and the explode: the lines feed the aggregation.
    let mut node = input;
    loop {
        node = match node {
            Node::Map { input: below, .. } => *below,
            Node::Explode { input: lines, .. } => return Ok((*lines, fused)),
            other => return Err(Box::new(other)),
        };
    }
}

/// The kernel output types, in kernel output order: window structs are flattened and passed
/// through columns have no kernel output.
fn flat_field_types(out: &SchemaRef, outputs: &[OutputColumn]) -> Vec<DataType> {
    let mut types = Vec::new();
    for (f, o) in out.fields().iter().zip(outputs) {
        match o {
            OutputColumn::Input(_) => {}
            OutputColumn::WindowStruct { .. } => {
                types.push(timestamp_type());
                types.push(timestamp_type());
            }
            OutputColumn::Kernel(_) => types.push(f.data_type().clone()),
        }
    }
    types
}

fn describe_stage(filters: &[Expr], exprs: &[Expr]) -> String {
    let mut s = String::new();
    if !filters.is_empty() {
        let _ = write!(
            s,
            "filter {} → ",
            filters
                .iter()
                .map(|f| f.to_string())
                .collect::<Vec<_>>()
                .join(" AND ")
        );
    }
    let _ = write!(
        s,
        "project {}",
        exprs
            .iter()
            .map(|e| e.to_string())
            .collect::<Vec<_>>()
            .join(", ")
    );
    s
}

impl Planner<'_> {
    /// Plans an aggregation whose grouping contains `session_window` (see [`super::session`]):
    /// a stage projecting the other keys, the event time and the aggregate arguments (with the
    /// filters below the aggregation fused in), and a kernel aggregating emitted sessions grouped
    /// by the keys and the session bounds.
    fn session_aggregate(
        &mut self,
        a: &weir_plan::plan::Aggregate,
        input: Node,
        in_schema: &SchemaRef,
        filters: &[Expr],
    ) -> Result<Node> {
        use super::session::{
            SESSION_END_COLUMN, SESSION_START_COLUMN, SessionKernel, SessionLayout, SessionWindowOp,
        };
        use weir_plan::SessionGap;

        let mut session = None;
        let mut plain_keys: Vec<Expr> = Vec::new();
        for (position, g) in a.group_by.iter().enumerate() {
            match strip_alias(g) {
                Expr::SessionWindow { time, gap } => {
                    if session.is_some() {
                        return Err(Error::Unsupported(format!(
                            "{g}: only one session_window per aggregation is supported"
                        )));
                    }
                    let gap_us = match gap {
                        SessionGap::Fixed(us) => *us,
                        SessionGap::Dynamic(e) => {
                            return Err(Error::Unsupported(format!(
                                "session_window with a per-row gap ({e}) is not supported yet; use a fixed gap such as '5 minutes'"
                            )));
                        }
                    };
                    session = Some((position, time.as_ref().clone(), gap_us));
                }
                Expr::Window { .. } => {
                    return Err(Error::Unsupported(format!(
                        "{g}: window() cannot be combined with session_window() in one aggregation"
                    )));
                }
                other => plain_keys.push(other.clone()),
            }
        }
        let (session_position, time, gap_us) = session.ok_or_else(|| {
            Error::Internal("session aggregation without a session_window key".into())
        })?;

        let agg_specs = a
            .aggregates
            .iter()
            .map(|e| match agg_call(e)? {
                AggCall::Kernel(f, arg) => Ok((f, arg)),
                AggCall::ApproxCountDistinct(_) => Err(Error::Unsupported(
                    "approx_count_distinct() over session windows is not supported yet".into(),
                )),
            })
            .collect::<Result<Vec<_>>>()?;

        // Stage: keys, event time, aggregate arguments.
        let mut stage_exprs: Vec<Expr> = Vec::new();
        let mut stage_fields: Vec<Field> = Vec::new();
        for (i, k) in plain_keys.iter().enumerate() {
            let f = weir_plan::analyzer::expr_field(k, in_schema)?;
            stage_fields.push(Field::new(format!("__k{i}"), f.data_type().clone(), true));
            stage_exprs.push(k.clone());
        }
        let time_field = weir_plan::analyzer::expr_field(&time, in_schema)?;
        if !matches!(time_field.data_type(), DataType::Timestamp(..)) {
            return Err(Error::Unsupported(format!(
                "session_window({time}, ..): the time must be a TIMESTAMP, found {}",
                time_field.data_type()
            )));
        }
        let watermarked = analyzer::has_watermark(&time_field);
        stage_fields.push(Field::new("__event_time", timestamp_type(), true));
        stage_exprs.push(time.clone());
        let mut kernel_fields: Vec<Field> = stage_fields[..plain_keys.len()].to_vec();
        kernel_fields.push(Field::new(SESSION_START_COLUMN, timestamp_type(), true));
        kernel_fields.push(Field::new(SESSION_END_COLUMN, timestamp_type(), true));
        let mut arg_columns: Vec<Option<String>> = Vec::new();
        for (_, arg) in &agg_specs {
            match arg {
                Some(arg) => {
                    let name = format!("__a{}", stage_exprs.len() - plain_keys.len() - 1);
                    let f = weir_plan::analyzer::expr_field(arg, in_schema)?;
                    stage_fields.push(Field::new(&name, f.data_type().clone(), true));
                    kernel_fields.push(Field::new(&name, f.data_type().clone(), true));
                    stage_exprs.push(arg.clone());
                    arg_columns.push(Some(name));
                }
                None => arg_columns.push(None),
            }
        }
        let stage_schema = Arc::new(Schema::new(stage_fields));
        let stage = self.map_stage(in_schema, filters, &stage_exprs, &stage_schema)?;

        // Kernel over emitted rows: group by the keys and the session bounds.
        let kernel_input_schema = Arc::new(Schema::new(kernel_fields));
        let mut inputs = KernelInputs::default();
        for f in kernel_input_schema.fields() {
            collect_inputs(
                &weir_plan::expr::col(f.name()),
                &kernel_input_schema,
                &mut inputs,
            )?;
        }
        let kernel_schema = inputs.schema(&kernel_input_schema);
        let mut builder = KernelSpec::builder(kernel_schema.clone());
        builder.ansi(self.options.ansi);
        let mut lowering = ExprLowering {
            builder: &mut builder,
            inputs: &inputs,
            ansi: self.options.ansi,
        };
        let mut key_ids = Vec::new();
        for (i, f) in kernel_input_schema.fields()[..plain_keys.len() + 2]
            .iter()
            .enumerate()
        {
            key_ids.push((
                format!("k{i}"),
                lowering.lower(&weir_plan::expr::col(f.name()))?,
            ));
        }
        let mut agg_ids = Vec::new();
        for (j, ((f, _), column)) in agg_specs.iter().zip(&arg_columns).enumerate() {
            let id = column
                .as_ref()
                .map(|c| lowering.lower(&weir_plan::expr::col(c)))
                .transpose()?;
            agg_ids.push((format!("a{j}"), *f, id));
        }
        builder.aggregate(key_ids, agg_ids);
        let kernel = self.jit.compile(&builder.build()?)?;

        let op_id = self.next_op;
        self.next_op += 1;
        let description = format!(
            "keys=[{}], aggs=[{}]",
            a.group_by
                .iter()
                .map(|e| e.to_string())
                .collect::<Vec<_>>()
                .join(", "),
            a.aggregates
                .iter()
                .map(|e| e.to_string())
                .collect::<Vec<_>>()
                .join(", ")
        );
        let _ = writeln!(
            self.fingerprint,
            "op {op_id}: session aggregate {description}"
        );
        let op = SessionWindowOp::new(
            op_id,
            SessionLayout {
                stage,
                plain_keys: plain_keys.len(),
                session_position,
                gap_us,
                watermarked,
            },
            SessionKernel {
                kernel,
                inputs,
                kernel_schema,
            },
            self.mode,
            a.schema.clone(),
            description,
        );
        Ok(Node::SessionWindow {
            input: Box::new(input),
            op: Box::new(op),
        })
    }
}

/// What one streaming aggregate call becomes.
enum AggCall {
    /// An aggregate the kernel computes (function and argument).
    Kernel(AggFunc, Option<Expr>),
    /// `approx_count_distinct(arg)`: a sketch kept beside the kernel's state.
    ApproxCountDistinct(Expr),
}

/// Lowers one aggregate call of a streaming aggregation.
fn agg_call(e: &Expr) -> Result<AggCall> {
    let Expr::Aggregate {
        func,
        args,
        distinct,
        ..
    } = strip_alias(e)
    else {
        return Err(Error::Unsupported(format!(
            "{e} in an aggregation's output must be an aggregate call"
        )));
    };
    if *distinct {
        return Err(Error::Unsupported(format!(
            "{e}: distinct aggregations are not supported on streaming DataFrames; use approx_count_distinct"
        )));
    }
    let arg = args.first().cloned();
    let kernel = |f: AggFunc, arg: Option<Expr>| Ok(AggCall::Kernel(f, arg));
    match func {
        AggregateFunction::Count => match &arg {
            None => kernel(AggFunc::CountStar, None),
            Some(Expr::Literal(v)) if !v.is_null() => kernel(AggFunc::CountStar, None),
            Some(_) => kernel(AggFunc::Count, arg),
        },
        AggregateFunction::Sum => kernel(AggFunc::Sum, arg),
        AggregateFunction::Avg => kernel(AggFunc::Avg, arg),
        AggregateFunction::Min => kernel(AggFunc::Min, arg),
        AggregateFunction::Max => kernel(AggFunc::Max, arg),
        AggregateFunction::First => kernel(AggFunc::First, arg),
        AggregateFunction::Last => kernel(AggFunc::Last, arg),
        AggregateFunction::ApproxCountDistinct => arg
            .map(AggCall::ApproxCountDistinct)
            .ok_or_else(|| Error::Unsupported("approx_count_distinct() needs an argument".into())),
    }
}

/// `split(column, 'sep')` whose separator has no regex metacharacters: (column index, sep).
fn literal_split(expr: &Expr, input: &SchemaRef) -> Option<(usize, String)> {
    let Expr::ScalarFunction { name, args, .. } = strip_alias(expr) else {
        return None;
    };
    if name != "split" || args.len() != 2 {
        return None;
    }
    let (Expr::Column(c), Expr::Literal(ScalarValue::Utf8(sep))) = (&args[0], &args[1]) else {
        return None;
    };
    let plain = !sep.is_empty() && !sep.chars().any(|ch| "\\^$.|?*+()[]{}".contains(ch));
    let index = input.index_of(&c.name).ok()?;
    let is_string = matches!(
        input.field(index).data_type(),
        DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View
    );
    (plain && is_string).then(|| (index, sep.clone()))
}

/// Collects the names of the columns an expression reads.
fn referenced_columns(e: &Expr, out: &mut std::collections::HashSet<String>) {
    match e {
        Expr::Column(c) => {
            out.insert(c.name.clone());
        }
        other => {
            for child in super::lower::children(other) {
                referenced_columns(child, out);
            }
        }
    }
}

/// The `column op literal` conjuncts of a pushed-down filter that a source can use to skip data
/// (integer and timestamp literals).
fn column_bounds(e: &Expr) -> Vec<crate::source::ColumnBound> {
    use crate::source::{BoundOp, ColumnBound};
    use weir_plan::BinaryOperator as B;
    let Expr::BinaryOp { left, op, right } = strip_alias(e) else {
        return Vec::new();
    };
    if *op == B::And {
        let mut out = column_bounds(left);
        out.extend(column_bounds(right));
        return out;
    }
    let literal = |e: &Expr| match e {
        Expr::Literal(ScalarValue::Int64(v)) | Expr::Literal(ScalarValue::TimestampMicros(v)) => {
            Some(*v)
        }
        Expr::Literal(ScalarValue::Int32(v)) => Some(i64::from(*v)),
        _ => None,
    };
    let (column, value, flipped) = match (left.as_ref(), right.as_ref()) {
        (Expr::Column(c), r) => match literal(r) {
            Some(v) => (c.name.clone(), v, false),
            None => return Vec::new(),
        },
        (l, Expr::Column(c)) => match literal(l) {
            Some(v) => (c.name.clone(), v, true),
            None => return Vec::new(),
        },
        _ => return Vec::new(),
    };
    let op = match (op, flipped) {
        (B::Eq, _) => BoundOp::Eq,
        (B::Lt, false) | (B::Gt, true) => BoundOp::Lt,
        (B::LtEq, false) | (B::GtEq, true) => BoundOp::LtEq,
        (B::Gt, false) | (B::Lt, true) => BoundOp::Gt,
        (B::GtEq, false) | (B::LtEq, true) => BoundOp::GtEq,
        _ => return Vec::new(),
    };
    vec![ColumnBound { column, op, value }]
}
