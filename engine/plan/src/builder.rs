//! The plan builder: Spark's DataFrame operations (`select`, `withColumn`, `filter`, `groupBy().agg()`,
//! `withWatermark`, `dropDuplicates`, ...) as pure functions from plan to plan.
//!
//! Every operation resolves its expressions against its input as it is added (as Spark's DataFrames
//! are eagerly analysed), so a bad column name fails at the call that used it. The SQL planner goes
//! through the same functions, which is what makes SQL and builder plans identical. This module owns
//! plan construction only: it must not check streaming rules (`analyzer::check_streaming`) or optimise.

use std::sync::Arc;

use arrow_schema::{DataType, Field, Fields, Schema};

use crate::analyzer::{
    expr_field, expr_type, resolve_expr, resolve_output_expr, resolve_predicate,
    schema_with_watermark, wider_type,
};
use crate::error::{Error, Result, Rule, Span};
use crate::expr::{Column, Expr, SortExpr, parse_duration, spark_type_name};
use crate::plan::{
    Aggregate, Deduplicate, Explode, Filter, Join, JoinType, Limit, LogicalPlan, Project,
    RELATION_KEY, Sort, Source, SubqueryAlias, Union, Watermark,
};

/// Builds a resolved [`LogicalPlan`] one DataFrame operation at a time.
#[derive(Debug, Clone, PartialEq)]
pub struct LogicalPlanBuilder {
    plan: Arc<LogicalPlan>,
}

/// The result of [`LogicalPlanBuilder::group_by`]: grouping keys waiting for their aggregates.
#[derive(Debug, Clone)]
pub struct GroupedBuilder {
    input: Arc<LogicalPlan>,
    group_by: Vec<Expr>,
}

impl GroupedBuilder {
    /// `groupBy(keys).agg(exprs)`: one row per group with the keys then the aggregates.
    /// Aggregate expressions may combine aggregate calls (`sum(x) / count(x)`).
    pub fn agg(self, aggregates: impl IntoIterator<Item = Expr>) -> Result<LogicalPlanBuilder> {
        let mut select: Vec<Expr> = self.group_by.clone();
        select.extend(aggregates);
        let plan = plan_aggregate(self.input, self.group_by, select, None)?;
        Ok(LogicalPlanBuilder::from(plan))
    }

    /// `groupBy(keys).count()`: the keys and a `count` column.
    pub fn count(self) -> Result<LogicalPlanBuilder> {
        self.agg([crate::expr::count_star().alias("count")])
    }
}

impl From<LogicalPlan> for LogicalPlanBuilder {
    fn from(plan: LogicalPlan) -> Self {
        Self {
            plan: Arc::new(plan),
        }
    }
}

impl From<Arc<LogicalPlan>> for LogicalPlanBuilder {
    fn from(plan: Arc<LogicalPlan>) -> Self {
        Self { plan }
    }
}

impl LogicalPlanBuilder {
    /// Start from a source; a watermark declared on it becomes a [`Watermark`] node above it.
    pub fn scan(source: Source) -> Result<Self> {
        let watermark = source.watermark.clone();
        let builder = Self::from(LogicalPlan::Source(source));
        match watermark {
            Some(spec) => builder.with_watermark_us(&spec.column, spec.delay_us),
            None => Ok(builder),
        }
    }

    /// The plan built so far.
    pub fn plan(&self) -> &LogicalPlan {
        &self.plan
    }

    /// Finish: the resolved plan.
    pub fn build(self) -> LogicalPlan {
        Arc::unwrap_or_clone(self.plan)
    }

    /// The output schema so far.
    pub fn schema(&self) -> &Arc<Schema> {
        self.plan.schema()
    }

    /// `select(exprs)`: `*` expands to all columns, an aggregate makes it a global aggregation, and
    /// one `explode(..)` in the list becomes a generator, as in Spark.
    pub fn select(self, exprs: impl IntoIterator<Item = Expr>) -> Result<Self> {
        Ok(Self::from(plan_project(
            self.plan,
            exprs.into_iter().collect(),
        )?))
    }

    /// `selectExpr("a + 1 AS b", ...)`: each string is a Spark SQL expression.
    pub fn select_expr(self, exprs: &[&str]) -> Result<Self> {
        let parsed = exprs
            .iter()
            .map(|e| crate::sql::parse_sql_expr(e))
            .collect::<Result<Vec<_>>>()?;
        self.select(parsed)
    }

    /// `withColumn(name, expr)`: replace the column of that name (case-insensitive) or append it.
    pub fn with_column(self, name: &str, expr: Expr) -> Result<Self> {
        let mut exprs: Vec<Expr> = Vec::new();
        let mut replaced = false;
        for field in self.plan.schema().fields() {
            if field.name().eq_ignore_ascii_case(name) && !replaced {
                exprs.push(expr.clone().alias(name));
                replaced = true;
            } else {
                exprs.push(Expr::Column(Column::new(field.name())));
            }
        }
        if !replaced {
            exprs.push(expr.alias(name));
        }
        self.select(exprs)
    }

    /// `drop(names)`: remove the named columns (names that do not exist are ignored, as in Spark).
    pub fn drop(self, names: &[&str]) -> Result<Self> {
        let keep: Vec<Expr> = self
            .plan
            .schema()
            .fields()
            .iter()
            .filter(|f| !names.iter().any(|n| n.eq_ignore_ascii_case(f.name())))
            .map(|f| Expr::Column(Column::new(f.name())))
            .collect();
        self.select(keep)
    }

    /// `filter(predicate)` / `where`.
    pub fn filter(self, predicate: Expr) -> Result<Self> {
        let predicate = resolve_predicate(predicate, &self.plan, "WHERE")?;
        Ok(Self::from(LogicalPlan::Filter(Filter {
            input: self.plan,
            predicate,
        })))
    }

    /// `union(other)` (= `UNION ALL`, by position).
    pub fn union(self, other: LogicalPlanBuilder) -> Result<Self> {
        Ok(Self::from(plan_union(vec![self.plan, other.plan])?))
    }

    /// `select(*, explode(expr) AS alias)`: one row per array element.
    pub fn explode(self, expr: Expr, alias: &str) -> Result<Self> {
        Ok(Self::from(plan_explode(self.plan, expr, alias)?))
    }

    /// `withWatermark(column, "10 seconds")`.
    pub fn with_watermark(self, column: &str, delay: &str) -> Result<Self> {
        let delay_us = parse_duration(delay)?;
        self.with_watermark_us(column, delay_us)
    }

    /// `withWatermark` with the delay in microseconds.
    pub fn with_watermark_us(self, column: &str, delay_us: i64) -> Result<Self> {
        Ok(Self::from(plan_watermark(
            self.plan, column, delay_us, None,
        )?))
    }

    /// `groupBy(keys)`; finish with [`GroupedBuilder::agg`].
    pub fn group_by(self, keys: impl IntoIterator<Item = Expr>) -> GroupedBuilder {
        GroupedBuilder {
            input: self.plan,
            group_by: keys.into_iter().collect(),
        }
    }

    /// `distinct()`: an aggregation grouping by every column (Spark plans it the same way).
    pub fn distinct(self) -> Result<Self> {
        let keys: Vec<Expr> = self
            .plan
            .schema()
            .fields()
            .iter()
            .map(|f| Expr::Column(Column::new(f.name())))
            .collect();
        self.group_by(keys).agg([])
    }

    /// `dropDuplicates(columns)`; an empty list means all columns.
    pub fn drop_duplicates(self, columns: &[&str]) -> Result<Self> {
        Ok(Self::from(plan_deduplicate(self.plan, columns, false)?))
    }

    /// `dropDuplicatesWithinWatermark(columns)`; an empty list means all columns.
    pub fn drop_duplicates_within_watermark(self, columns: &[&str]) -> Result<Self> {
        Ok(Self::from(plan_deduplicate(self.plan, columns, true)?))
    }

    /// `orderBy(keys)`.
    pub fn order_by(self, keys: impl IntoIterator<Item = SortExpr>) -> Result<Self> {
        let exprs = keys
            .into_iter()
            .map(|k| {
                Ok(SortExpr {
                    expr: resolve_expr(k.expr, &self.plan)?,
                    ..k
                })
            })
            .collect::<Result<Vec<_>>>()?;
        Ok(Self::from(LogicalPlan::Sort(Sort {
            input: self.plan,
            exprs,
        })))
    }

    /// `limit(n)`.
    pub fn limit(self, n: u64) -> Result<Self> {
        Ok(Self::from(plan_limit(self.plan, 0, Some(n), None)))
    }

    /// `offset(n)` (rejected on streams by the streaming check).
    pub fn offset(self, n: u64) -> Result<Self> {
        Ok(Self::from(plan_limit(self.plan, n, None, None)))
    }

    /// `alias(name)` / `as(name)`: name the relation so its columns can be qualified.
    pub fn alias(self, name: &str) -> Result<Self> {
        Ok(Self::from(LogicalPlan::SubqueryAlias(SubqueryAlias {
            input: self.plan,
            alias: name.to_string(),
        })))
    }

    /// `join(right, on, joinType)`.
    pub fn join(
        self,
        right: LogicalPlanBuilder,
        join_type: JoinType,
        on: Option<Expr>,
    ) -> Result<Self> {
        Ok(Self::from(plan_join(self.plan, right.plan, join_type, on)?))
    }
}

fn schema_of(fields: Vec<Field>) -> Arc<Schema> {
    Arc::new(Schema::new(Fields::from(fields)))
}

/// Expand `*` and `t.*` into the input's columns.
fn expand_wildcards(input: &LogicalPlan, exprs: Vec<Expr>) -> Result<Vec<Expr>> {
    let mut out = Vec::with_capacity(exprs.len());
    for e in exprs {
        match e {
            Expr::Wildcard { qualifier } => {
                if let Some(q) = &qualifier
                    && !input
                        .relation_names()
                        .iter()
                        .any(|r| r.eq_ignore_ascii_case(q))
                {
                    return Err(Error::analysis(
                        Rule::UnresolvedColumn,
                        format!("Cannot resolve `{q}.*` given input relations [{}].", {
                            let names: Vec<String> = input
                                .relation_names()
                                .iter()
                                .map(|r| format!("`{r}`"))
                                .collect();
                            names.join(", ")
                        }),
                    )
                    .with_expr(format!("{q}.*")));
                }
                out.extend(
                    input
                        .schema()
                        .fields()
                        .iter()
                        .map(|f| Expr::Column(Column::new(f.name()))),
                );
            }
            other => out.push(other),
        }
    }
    Ok(out)
}

fn is_generator(e: &Expr) -> bool {
    matches!(e.unalias(), Expr::ScalarFunction { name, .. } if name == "explode")
}

/// A projection (with `*` expansion, global aggregation and `explode` handling).
pub(crate) fn plan_project(input: Arc<LogicalPlan>, exprs: Vec<Expr>) -> Result<LogicalPlan> {
    let exprs = expand_wildcards(&input, exprs)?;
    if exprs.iter().any(Expr::contains_aggregate) {
        return plan_aggregate(input, vec![], exprs, None);
    }
    let generators: Vec<usize> = exprs
        .iter()
        .enumerate()
        .filter(|(_, e)| is_generator(e))
        .map(|(i, _)| i)
        .collect();
    let (input, exprs) = match generators.as_slice() {
        [] => (input, exprs),
        [index] => {
            let index = *index;
            let generator = &exprs[index];
            let alias = match generator {
                Expr::Alias { name, .. } => name.clone(),
                _ => "col".to_string(),
            };
            let Expr::ScalarFunction { args, span, .. } = generator.unalias() else {
                return Err(Error::analysis(
                    Rule::UnsupportedFeature,
                    "explode expects a function call",
                ));
            };
            let [arg] = args.as_slice() else {
                return Err(Error::analysis(
                    Rule::WrongNumArgs,
                    format!(
                        "The `explode` requires 1 parameters but the actual number is {}.",
                        args.len()
                    ),
                )
                .with_span(span.get()));
            };
            let exploded = plan_explode(input, arg.clone(), &alias)?;
            let mut exprs = exprs;
            exprs[index] = Expr::Column(Column::new(alias));
            (Arc::new(exploded), exprs)
        }
        [_, second, ..] => {
            return Err(Error::analysis(
                Rule::UnsupportedFeature,
                "Only one generator allowed per SELECT clause but found 2: explode, explode.",
            )
            .with_expr(&exprs[*second])
            .with_span(exprs[*second].span()));
        }
    };
    let exprs = exprs
        .into_iter()
        .map(|e| resolve_output_expr(e, &input))
        .collect::<Result<Vec<_>>>()?;
    let fields = exprs
        .iter()
        .map(|e| expr_field(e, input.schema()))
        .collect::<Result<Vec<_>>>()?;
    Ok(LogicalPlan::Project(Project {
        input,
        exprs,
        schema: schema_of(fields),
    }))
}

/// `explode(expr) AS alias` keeping the input columns.
pub(crate) fn plan_explode(
    input: Arc<LogicalPlan>,
    expr: Expr,
    alias: &str,
) -> Result<LogicalPlan> {
    let expr = resolve_expr(expr, &input)?;
    let (data_type, _) = expr_type(&expr, input.schema())?;
    let element = match &data_type {
        DataType::List(item) | DataType::LargeList(item) => item.data_type().clone(),
        other => {
            return Err(Error::analysis(
                Rule::DatatypeMismatch,
                format!(
                    "Cannot resolve \"explode({expr})\" due to data type mismatch: parameter 1 requires the \"ARRAY\" \
                     type, however \"{expr}\" has the type \"{}\".",
                    spark_type_name(other).to_ascii_uppercase()
                ),
            )
            .with_expr(format!("explode({expr})"))
            .with_span(expr.span()));
        }
    };
    let mut fields: Vec<Field> = input
        .schema()
        .fields()
        .iter()
        .map(|f| f.as_ref().clone())
        .collect();
    fields.push(Field::new(alias, element, true));
    Ok(LogicalPlan::Explode(Explode {
        input,
        expr,
        alias: alias.to_string(),
        schema: schema_of(fields),
    }))
}

/// `withWatermark(column, delay)`.
pub(crate) fn plan_watermark(
    input: Arc<LogicalPlan>,
    column: &str,
    delay_us: i64,
    span: Option<Span>,
) -> Result<LogicalPlan> {
    let resolved = resolve_expr(
        Expr::Column(Column {
            qualifier: None,
            name: column.to_string(),
            span: span.into(),
        }),
        &input,
    )?;
    let Expr::Column(resolved) = resolved else {
        return Err(Error::analysis(
            Rule::UnresolvedColumn,
            format!("`{column}` is not a column"),
        ));
    };
    let (data_type, _) = expr_type(&Expr::Column(resolved.clone()), input.schema())?;
    if !matches!(data_type, DataType::Timestamp(..)) {
        return Err(Error::analysis(
            Rule::DatatypeMismatch,
            format!(
                "Event time must be defined on a window or a timestamp, but `{}` is of type {}.",
                resolved.name,
                spark_type_name(&data_type)
            ),
        )
        .with_expr(&resolved.name)
        .with_span(span));
    }
    if delay_us < 0 {
        return Err(Error::analysis(
            Rule::InvalidLiteral,
            "The watermark delay must not be negative.",
        )
        .with_span(span));
    }
    let schema = Arc::new(schema_with_watermark(
        input.schema(),
        &resolved.name,
        delay_us,
    ));
    Ok(LogicalPlan::Watermark(Watermark {
        input,
        column: resolved.name,
        delay_us,
        schema,
    }))
}

/// `dropDuplicates[WithinWatermark](columns)`.
pub(crate) fn plan_deduplicate(
    input: Arc<LogicalPlan>,
    columns: &[&str],
    within_watermark: bool,
) -> Result<LogicalPlan> {
    let columns: Vec<String> = if columns.is_empty() {
        input
            .schema()
            .fields()
            .iter()
            .map(|f| f.name().clone())
            .collect()
    } else {
        columns
            .iter()
            .map(
                |c| match resolve_expr(Expr::Column(Column::new(*c)), &input)? {
                    Expr::Column(c) => Ok(c.name),
                    other => Err(Error::analysis(
                        Rule::UnresolvedColumn,
                        format!("`{other}` is not a column"),
                    )),
                },
            )
            .collect::<Result<_>>()?
    };
    if within_watermark && !input.is_streaming() {
        return Err(Error::analysis(
            Rule::UnsupportedFeature,
            "dropDuplicatesWithinWatermark is not supported with batch DataFrames/Datasets; use dropDuplicates.",
        ));
    }
    Ok(LogicalPlan::Deduplicate(Deduplicate {
        input,
        columns,
        within_watermark,
    }))
}

/// `LIMIT fetch OFFSET skip`.
pub(crate) fn plan_limit(
    input: Arc<LogicalPlan>,
    skip: u64,
    fetch: Option<u64>,
    span: Option<Span>,
) -> LogicalPlan {
    LogicalPlan::Limit(Limit {
        input,
        skip,
        fetch,
        span,
    })
}

/// `UNION ALL` of two or more inputs: same column count, types widened per position (with casts).
pub(crate) fn plan_union(inputs: Vec<Arc<LogicalPlan>>) -> Result<LogicalPlan> {
    // Flatten nested unions so `a UNION ALL b UNION ALL c` is one node.
    let mut flat: Vec<Arc<LogicalPlan>> = Vec::new();
    for input in inputs {
        match input.as_ref() {
            LogicalPlan::Union(u) => flat.extend(u.inputs.iter().cloned()),
            _ => flat.push(input),
        }
    }
    let Some(first) = flat.first() else {
        return Err(Error::analysis(
            Rule::IncompatibleUnion,
            "UNION needs at least one input",
        ));
    };
    let first_schema = first.schema().clone();
    let mut fields: Vec<Field> = first_schema
        .fields()
        .iter()
        .map(|f| f.as_ref().clone())
        .collect();
    for (n, other) in flat.iter().enumerate().skip(1) {
        let other_fields = other.schema().fields();
        if other_fields.len() != fields.len() {
            return Err(Error::analysis(
                Rule::IncompatibleUnion,
                format!(
                    "UNION can only be performed on inputs with the same number of columns, but the first table has {} \
                     columns and the {} table has {} columns.",
                    fields.len(),
                    ordinal(n + 1),
                    other_fields.len()
                ),
            ));
        }
        for (i, (field, other_field)) in fields.iter_mut().zip(other_fields.iter()).enumerate() {
            let wider = wider_type(field.data_type(), other_field.data_type()).ok_or_else(|| {
                Error::analysis(
                    Rule::IncompatibleUnion,
                    format!(
                        "UNION can only be performed on inputs with compatible column types. The {} column of the {} \
                         table is \"{}\" type which is not compatible with \"{}\" at the same column of the first table.",
                        ordinal(i + 1),
                        ordinal(n + 1),
                        spark_type_name(other_field.data_type()).to_ascii_uppercase(),
                        spark_type_name(field.data_type()).to_ascii_uppercase()
                    ),
                )
            })?;
            let nullable = field.is_nullable() || other_field.is_nullable();
            *field = Field::new(field.name(), wider, nullable);
        }
    }
    // Cast inputs whose column types differ from the widened ones.
    let mut casted = Vec::with_capacity(flat.len());
    for input in flat {
        let needs_cast = input
            .schema()
            .fields()
            .iter()
            .zip(&fields)
            .any(|(a, b)| a.data_type() != b.data_type());
        if needs_cast {
            let exprs: Vec<Expr> = input
                .schema()
                .fields()
                .iter()
                .zip(&fields)
                .map(|(a, b)| {
                    let c = Expr::Column(Column::new(a.name()));
                    if a.data_type() == b.data_type() {
                        c
                    } else {
                        c.cast(b.data_type().clone()).alias(a.name())
                    }
                })
                .collect();
            casted.push(Arc::new(plan_project(input, exprs)?));
        } else {
            casted.push(input);
        }
    }
    Ok(LogicalPlan::Union(Union {
        inputs: casted,
        schema: schema_of(fields),
    }))
}

fn ordinal(n: usize) -> String {
    let suffix = match (n % 10, n % 100) {
        (1, x) if x != 11 => "st",
        (2, x) if x != 12 => "nd",
        (3, x) if x != 13 => "rd",
        _ => "th",
    };
    format!("{n}{suffix}")
}

/// A join; the condition is resolved against both sides' columns.
pub(crate) fn plan_join(
    left: Arc<LogicalPlan>,
    right: Arc<LogicalPlan>,
    join_type: JoinType,
    on: Option<Expr>,
) -> Result<LogicalPlan> {
    let right_nullable = matches!(join_type, JoinType::LeftOuter | JoinType::FullOuter);
    let left_nullable = matches!(join_type, JoinType::RightOuter | JoinType::FullOuter);
    let fields = side_fields(&left, left_nullable);
    let semi = matches!(join_type, JoinType::LeftSemi | JoinType::LeftAnti);
    let mut both: Vec<Field> = fields.clone();
    both.extend(side_fields(&right, right_nullable));
    let output = if semi { fields } else { both.clone() };
    // Resolve the condition against a join over both sides' columns.
    let condition = match on {
        Some(on) => {
            let scope = LogicalPlan::Join(Join {
                left: left.clone(),
                right: right.clone(),
                join_type,
                condition: None,
                schema: schema_of(both),
            });
            Some(resolve_predicate(on, &scope, "JOIN")?)
        }
        None => None,
    };
    Ok(LogicalPlan::Join(Join {
        left,
        right,
        join_type,
        condition,
        schema: schema_of(output),
    }))
}

/// One join side's fields, tagged with the relation they come from and made nullable when the
/// join may pad that side with NULLs.
fn side_fields(side: &LogicalPlan, nullable: bool) -> Vec<Field> {
    let relation = side_relation(side);
    side.schema()
        .fields()
        .iter()
        .map(|f| {
            let mut field = f
                .as_ref()
                .clone()
                .with_nullable(f.is_nullable() || nullable);
            if let Some(relation) = relation {
                let mut metadata = field.metadata().clone();
                metadata.insert(RELATION_KEY, relation);
                field = field.with_metadata(metadata);
            }
            field
        })
        .collect()
}

/// The single relation name a join side's columns belong to, if it has one.
fn side_relation(plan: &LogicalPlan) -> Option<&str> {
    match plan {
        LogicalPlan::Source(s) => Some(&s.name),
        LogicalPlan::SubqueryAlias(a) => Some(&a.alias),
        LogicalPlan::Filter(Filter { input, .. })
        | LogicalPlan::Watermark(Watermark { input, .. })
        | LogicalPlan::Sort(Sort { input, .. })
        | LogicalPlan::Limit(Limit { input, .. })
        | LogicalPlan::Deduplicate(Deduplicate { input, .. }) => side_relation(input),
        _ => None,
    }
}

/// Plan `SELECT select FROM input GROUP BY group_by HAVING having`: an [`Aggregate`] node with the
/// grouping keys and the aggregate calls, a Filter for HAVING, and a Project when the select list
/// is not exactly keys-then-aggregates.
pub(crate) fn plan_aggregate(
    input: Arc<LogicalPlan>,
    group_by: Vec<Expr>,
    select: Vec<Expr>,
    having: Option<Expr>,
) -> Result<LogicalPlan> {
    let select = expand_wildcards(&input, select)?;
    if let Some(agg) = group_by.iter().find(|g| g.contains_aggregate()) {
        return Err(Error::analysis(
            Rule::InvalidAggregate,
            format!("Aggregate functions are not allowed in GROUP BY, but found {agg}."),
        )
        .with_expr(agg)
        .with_span(agg.span()));
    }
    let group_by = group_by
        .into_iter()
        .map(|g| resolve_output_expr(g, &input))
        .collect::<Result<Vec<_>>>()?;
    let select = select
        .into_iter()
        .map(|e| resolve_output_expr(e, &input))
        .collect::<Result<Vec<_>>>()?;
    let having = having.map(|h| resolve_expr(h, &input)).transpose()?;

    // Aggregate calls: top-level ones keep their alias; nested ones are collected bare.
    let mut aggregates: Vec<Expr> = Vec::new();
    for e in &select {
        if matches!(e.unalias(), Expr::Aggregate { .. }) {
            if !aggregates.contains(e) {
                aggregates.push(e.clone());
            }
        } else {
            collect_aggregates(e, &mut aggregates);
        }
    }
    if let Some(h) = &having {
        collect_aggregates(h, &mut aggregates);
    }
    let mut fields = Vec::with_capacity(group_by.len() + aggregates.len());
    for e in group_by.iter().chain(&aggregates) {
        fields.push(expr_field(e, input.schema())?);
    }
    let aggregate = Aggregate {
        input,
        group_by,
        aggregates,
        schema: schema_of(fields),
    };

    let projection = select
        .iter()
        .map(|e| {
            rewrite_over_aggregate(e.clone(), &aggregate).map(|rewritten| keep_name(e, rewritten))
        })
        .collect::<Result<Vec<_>>>()?;
    let having = having
        .map(|h| rewrite_over_aggregate(h, &aggregate))
        .transpose()?;

    let identity = projection.len() == aggregate.schema.fields().len()
        && projection
            .iter()
            .zip(aggregate.schema.fields())
            .all(|(e, f)| matches!(e, Expr::Column(c) if c.name == *f.name()));
    let mut plan = LogicalPlan::Aggregate(aggregate);
    if let Some(h) = having {
        let predicate = resolve_predicate(h, &plan, "HAVING")?;
        plan = LogicalPlan::Filter(Filter {
            input: Arc::new(plan),
            predicate,
        });
    }
    if identity {
        return Ok(plan);
    }
    let input = Arc::new(plan);
    let exprs = projection
        .into_iter()
        .map(|e| resolve_expr(e, &input))
        .collect::<Result<Vec<_>>>()?;
    let fields = exprs
        .iter()
        .map(|e| expr_field(e, input.schema()))
        .collect::<Result<Vec<_>>>()?;
    Ok(LogicalPlan::Project(Project {
        input,
        exprs,
        schema: schema_of(fields),
    }))
}

#[recursive::recursive]
fn collect_aggregates(e: &Expr, out: &mut Vec<Expr>) {
    if matches!(e, Expr::Aggregate { .. }) {
        if !out.iter().any(|o| o.unalias() == e) {
            out.push(e.clone());
        }
        return;
    }
    for child in e.children() {
        collect_aggregates(child, out);
    }
}

/// Rewrite an expression over the aggregate's input into one over its output: grouping
/// expressions and aggregate calls become columns; any other column is an error.
#[recursive::recursive]
fn rewrite_over_aggregate(e: Expr, aggregate: &Aggregate) -> Result<Expr> {
    let names = aggregate.schema.fields();
    let to_column = |i: usize, span: Option<Span>| {
        Expr::Column(Column {
            qualifier: None,
            name: names[i].name().clone(),
            span: span.into(),
        })
    };
    let groups = aggregate.group_by.len();
    if let Some(i) = aggregate
        .group_by
        .iter()
        .position(|g| g.unalias() == e.unalias())
    {
        return Ok(to_column(i, e.span()));
    }
    if matches!(e.unalias(), Expr::Aggregate { .. })
        && let Some(i) = aggregate
            .aggregates
            .iter()
            .position(|a| a.unalias() == e.unalias())
    {
        return Ok(to_column(groups + i, e.span()));
    }
    match e {
        Expr::Column(c) => Err(Error::analysis(
            Rule::MissingAggregation,
            format!(
                "The non-aggregating expression \"{c}\" is based on columns which are not participating in the GROUP BY \
                 clause. Add the columns or the expression to the GROUP BY, aggregate the expression, or use \
                 \"any_value({c})\" if you do not care which of the values within a group is returned."
            ),
        )
        .with_expr(&c)
        .with_span(c.span.get())),
        Expr::Alias { expr, name } => {
            let inner = rewrite_over_aggregate(*expr, aggregate)?;
            Ok(match inner {
                Expr::Column(c) if c.name == name => Expr::Column(c),
                inner => inner.alias(name),
            })
        }
        other => other.map_children(|child| rewrite_over_aggregate(child, aggregate)),
    }
}

/// `replacement`, aliased to `original`'s output name when that differs.
fn keep_name(original: &Expr, replacement: Expr) -> Expr {
    let name = original.output_name();
    if replacement.output_name() == name {
        replacement
    } else {
        replacement.unalias().clone().alias(name)
    }
}
