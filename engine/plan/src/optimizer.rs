//! Logical optimisation of resolved plans: constant folding, predicate push-down (below projections
//! and aliases, into sources as advisory `pushed_filters`) and projection push-down (the columns each
//! source must read, so Parquet can prune).
//!
//! Every rewrite keeps the plan's output schema (names, types, nullability) unchanged. This module
//! must not change query semantics under streaming: predicates on a watermark's event-time column
//! are not moved below it (they would change the watermark), as in Spark.

use std::collections::BTreeSet;
use std::sync::Arc;

use arrow_schema::{Field, Fields, Schema};

use crate::analyzer::schema_with_watermark;
use crate::error::Result;
use crate::expr::{BinaryOperator, Column, Expr, ScalarValue};
use crate::plan::{Explode, Filter, LogicalPlan, Project, Source, Watermark};

/// Optimise a resolved plan: constant folding, then predicate push-down, then projection push-down.
pub fn optimize(plan: &LogicalPlan) -> Result<LogicalPlan> {
    let folded = fold_plan(plan)?;
    let pushed = push_down_predicates(&folded);
    Ok(push_down_projection(&pushed, None))
}

// ---------------------------------------------------------------------------------------------
// Constant folding
// ---------------------------------------------------------------------------------------------

#[recursive::recursive]
fn fold_plan(plan: &LogicalPlan) -> Result<LogicalPlan> {
    let inputs = plan
        .inputs()
        .into_iter()
        .map(|i| fold_plan(i).map(Arc::new))
        .collect::<Result<Vec<_>>>()?;
    let node = plan.with_new_inputs(inputs);
    Ok(match node {
        LogicalPlan::Filter(f) => {
            let predicate = fold_expr(f.predicate)?;
            if predicate == Expr::Literal(ScalarValue::Boolean(true)) {
                Arc::unwrap_or_clone(f.input)
            } else {
                LogicalPlan::Filter(Filter {
                    input: f.input,
                    predicate,
                })
            }
        }
        LogicalPlan::Project(p) => {
            let exprs = p
                .exprs
                .into_iter()
                .map(|e| {
                    let name = e.output_name();
                    let folded = fold_expr(e)?;
                    Ok(if folded.output_name() == name {
                        folded
                    } else {
                        folded.alias(name)
                    })
                })
                .collect::<Result<Vec<_>>>()?;
            LogicalPlan::Project(Project { exprs, ..p })
        }
        other => other,
    })
}

/// Fold literal-only sub-expressions and trivial boolean identities.
pub fn fold_expr(expr: Expr) -> Result<Expr> {
    expr.transform_up(&mut |e| Ok(fold_node(e)))
}

fn fold_node(e: Expr) -> Expr {
    use ScalarValue as V;
    match e {
        Expr::BinaryOp { left, op, right } => match (*left, op, *right) {
            (Expr::Literal(l), op, Expr::Literal(r)) => match fold_binary(&l, op, &r) {
                Some(v) => Expr::Literal(v),
                None => Expr::BinaryOp {
                    left: Box::new(Expr::Literal(l)),
                    op,
                    right: Box::new(Expr::Literal(r)),
                },
            },
            (Expr::Literal(V::Boolean(false)), BinaryOperator::And, _)
            | (_, BinaryOperator::And, Expr::Literal(V::Boolean(false))) => {
                Expr::Literal(V::Boolean(false))
            }
            (Expr::Literal(V::Boolean(true)), BinaryOperator::Or, _)
            | (_, BinaryOperator::Or, Expr::Literal(V::Boolean(true))) => {
                Expr::Literal(V::Boolean(true))
            }
            (Expr::Literal(V::Boolean(true)), BinaryOperator::And, other)
            | (other, BinaryOperator::And, Expr::Literal(V::Boolean(true)))
            | (Expr::Literal(V::Boolean(false)), BinaryOperator::Or, other)
            | (other, BinaryOperator::Or, Expr::Literal(V::Boolean(false))) => other,
            (l, op, r) => Expr::BinaryOp {
                left: Box::new(l),
                op,
                right: Box::new(r),
            },
        },
        Expr::Not(inner) => match *inner {
            Expr::Literal(V::Boolean(b)) => Expr::Literal(V::Boolean(!b)),
            Expr::Literal(V::Null) => Expr::Literal(V::Null).cast(arrow_schema::DataType::Boolean),
            other => Expr::Not(Box::new(other)),
        },
        Expr::Negative(inner) => match *inner {
            Expr::Literal(V::Int32(i)) if i != i32::MIN => Expr::Literal(V::Int32(-i)),
            Expr::Literal(V::Int64(i)) if i != i64::MIN => Expr::Literal(V::Int64(-i)),
            Expr::Literal(V::Float64(f)) => Expr::Literal(V::Float64(-f)),
            other => Expr::Negative(Box::new(other)),
        },
        Expr::IsNull(inner) => match *inner {
            Expr::Literal(v) => Expr::Literal(V::Boolean(v.is_null())),
            other => Expr::IsNull(Box::new(other)),
        },
        Expr::IsNotNull(inner) => match *inner {
            Expr::Literal(v) => Expr::Literal(V::Boolean(!v.is_null())),
            other => Expr::IsNotNull(Box::new(other)),
        },
        Expr::Cast {
            expr,
            data_type,
            try_cast,
        } => match *expr {
            Expr::Literal(v) => match fold_cast(&v, &data_type) {
                Some(folded) => Expr::Literal(folded),
                None => Expr::Cast {
                    expr: Box::new(Expr::Literal(v)),
                    data_type,
                    try_cast,
                },
            },
            other => Expr::Cast {
                expr: Box::new(other),
                data_type,
                try_cast,
            },
        },
        other => other,
    }
}

fn fold_cast(v: &ScalarValue, to: &arrow_schema::DataType) -> Option<ScalarValue> {
    use ScalarValue as V;
    use arrow_schema::DataType as T;
    if &v.data_type() == to {
        return Some(v.clone());
    }
    Some(match (v, to) {
        (V::Int32(i), T::Int64) => V::Int64(i64::from(*i)),
        (V::Int32(i), T::Float64) => V::Float64(f64::from(*i)),
        (V::Int64(i), T::Float64) => V::Float64(*i as f64),
        (V::Int32(i), T::Decimal128(p, s)) => decimal_from_int(i128::from(*i), *p, *s)?,
        (V::Int64(i), T::Decimal128(p, s)) => decimal_from_int(i128::from(*i), *p, *s)?,
        (V::Decimal128 { value, scale, .. }, T::Decimal128(p, s)) if *s >= *scale => {
            let factor = 10i128.checked_pow(u32::try_from(*s - *scale).ok()?)?;
            let value = value.checked_mul(factor)?;
            check_precision(value, *p)?;
            V::Decimal128 {
                value,
                precision: *p,
                scale: *s,
            }
        }
        (V::Decimal128 { value, scale, .. }, T::Float64) => {
            V::Float64(*value as f64 / 10f64.powi(i32::from(*scale)))
        }
        (V::Utf8(s), T::Timestamp(..)) => {
            V::TimestampMicros(crate::expr::parse_timestamp_micros(s)?)
        }
        _ => return None,
    })
}

fn check_precision(value: i128, precision: u8) -> Option<()> {
    let limit = 10i128.checked_pow(u32::from(precision))?;
    (value.abs() < limit).then_some(())
}

fn decimal_from_int(i: i128, precision: u8, scale: i8) -> Option<ScalarValue> {
    let factor = 10i128.checked_pow(u32::try_from(scale).ok()?)?;
    let value = i.checked_mul(factor)?;
    check_precision(value, precision)?;
    Some(ScalarValue::Decimal128 {
        value,
        precision,
        scale,
    })
}

/// Fold `l op r` for literals of the same type; `None` leaves it to run time (overflow, division by
/// zero, and types without exact folding keep Spark's run-time behaviour).
fn fold_binary(l: &ScalarValue, op: BinaryOperator, r: &ScalarValue) -> Option<ScalarValue> {
    use BinaryOperator as B;
    use ScalarValue as V;
    if op.is_comparison() {
        let ordering = match (l, r) {
            (V::Int32(a), V::Int32(b)) => a.cmp(b),
            (V::Int64(a), V::Int64(b)) => a.cmp(b),
            (V::Float64(a), V::Float64(b)) => a.partial_cmp(b)?,
            (V::Utf8(a), V::Utf8(b)) => a.cmp(b),
            (V::Boolean(a), V::Boolean(b)) => a.cmp(b),
            (V::TimestampMicros(a), V::TimestampMicros(b)) => a.cmp(b),
            (V::Date32(a), V::Date32(b)) => a.cmp(b),
            _ => return None,
        };
        use std::cmp::Ordering as O;
        let result = match op {
            B::Eq => ordering == O::Equal,
            B::NotEq => ordering != O::Equal,
            B::Lt => ordering == O::Less,
            B::LtEq => ordering != O::Greater,
            B::Gt => ordering == O::Greater,
            B::GtEq => ordering != O::Less,
            _ => return None,
        };
        return Some(V::Boolean(result));
    }
    Some(match (l, op, r) {
        (V::Int32(a), _, V::Int32(b)) => {
            V::Int32(int_op(i64::from(*a), op, i64::from(*b)).and_then(|v| i32::try_from(v).ok())?)
        }
        (V::Int64(a), _, V::Int64(b)) => V::Int64(int_op(*a, op, *b)?),
        (V::Float64(a), _, V::Float64(b)) => V::Float64(match op {
            B::Plus => a + b,
            B::Minus => a - b,
            B::Multiply => a * b,
            B::Divide if *b != 0.0 => a / b,
            _ => return None,
        }),
        (V::Boolean(a), B::And, V::Boolean(b)) => V::Boolean(*a && *b),
        (V::Boolean(a), B::Or, V::Boolean(b)) => V::Boolean(*a || *b),
        (V::Utf8(a), B::StringConcat, V::Utf8(b)) => V::Utf8(format!("{a}{b}")),
        (V::TimestampMicros(t), B::Plus, V::IntervalMicros(d)) => {
            V::TimestampMicros(t.checked_add(*d)?)
        }
        (V::TimestampMicros(t), B::Minus, V::IntervalMicros(d)) => {
            V::TimestampMicros(t.checked_sub(*d)?)
        }
        _ => return None,
    })
}

fn int_op(a: i64, op: BinaryOperator, b: i64) -> Option<i64> {
    match op {
        BinaryOperator::Plus => a.checked_add(b),
        BinaryOperator::Minus => a.checked_sub(b),
        BinaryOperator::Multiply => a.checked_mul(b),
        BinaryOperator::Modulo if b != 0 => a.checked_rem(b),
        _ => None,
    }
}

// ---------------------------------------------------------------------------------------------
// Predicate push-down
// ---------------------------------------------------------------------------------------------

#[recursive::recursive]
fn split_conjunction(e: Expr, out: &mut Vec<Expr>) {
    match e {
        Expr::BinaryOp {
            left,
            op: BinaryOperator::And,
            right,
        } => {
            split_conjunction(*left, out);
            split_conjunction(*right, out);
        }
        other => out.push(other),
    }
}

fn conjunction(mut parts: Vec<Expr>) -> Option<Expr> {
    let first = if parts.is_empty() {
        return None;
    } else {
        parts.remove(0)
    };
    Some(parts.into_iter().fold(first, Expr::and))
}

fn references_only(e: &Expr, schema: &Schema) -> bool {
    e.columns()
        .iter()
        .all(|c| schema.fields().iter().any(|f| f.name() == &c.name))
}

fn with_filter(input: LogicalPlan, conjuncts: Vec<Expr>) -> LogicalPlan {
    match conjunction(conjuncts) {
        Some(predicate) => LogicalPlan::Filter(Filter {
            input: Arc::new(input),
            predicate,
        }),
        None => input,
    }
}

/// Push each Filter as deep as it can go; the Filter directly above a Source also records its
/// conjuncts in the Source's `pushed_filters`.
#[recursive::recursive]
fn push_down_predicates(plan: &LogicalPlan) -> LogicalPlan {
    match plan {
        LogicalPlan::Filter(f) => {
            let mut conjuncts = Vec::new();
            split_conjunction(f.predicate.clone(), &mut conjuncts);
            push_filter(&f.input, conjuncts)
        }
        other => {
            let inputs = other
                .inputs()
                .into_iter()
                .map(|i| Arc::new(push_down_predicates(i)))
                .collect();
            other.with_new_inputs(inputs)
        }
    }
}

/// Place `conjuncts` (a filter over `input`'s output) as low as possible below `input`.
#[recursive::recursive]
fn push_filter(input: &LogicalPlan, conjuncts: Vec<Expr>) -> LogicalPlan {
    match input {
        LogicalPlan::Filter(inner) => {
            let mut all = Vec::new();
            split_conjunction(inner.predicate.clone(), &mut all);
            all.extend(conjuncts);
            push_filter(&inner.input, all)
        }
        LogicalPlan::SubqueryAlias(alias) => {
            let pushed = push_filter(&alias.input, conjuncts);
            LogicalPlan::SubqueryAlias(crate::plan::SubqueryAlias {
                input: Arc::new(pushed),
                alias: alias.alias.clone(),
            })
        }
        LogicalPlan::Project(p) => {
            // Substitute each output column by the expression computing it; push what stays cheap
            // and deterministic (no aggregates; `current_timestamp` is fixed per batch).
            let (mut below, mut above) = (Vec::new(), Vec::new());
            for c in conjuncts {
                match substitute_project(&c, p) {
                    Some(rewritten) => below.push(rewritten),
                    None => above.push(c),
                }
            }
            let new_input = if below.is_empty() {
                push_down_predicates(&p.input)
            } else {
                push_filter(&p.input, below)
            };
            let project = LogicalPlan::Project(Project {
                input: Arc::new(new_input),
                ..p.clone()
            });
            with_filter(project, above)
        }
        LogicalPlan::Watermark(w) => {
            let (below, above): (Vec<Expr>, Vec<Expr>) = conjuncts
                .into_iter()
                .partition(|c| !c.columns().iter().any(|col| col.name == w.column));
            let new_input = if below.is_empty() {
                push_down_predicates(&w.input)
            } else {
                push_filter(&w.input, below)
            };
            let watermark = LogicalPlan::Watermark(Watermark {
                input: Arc::new(new_input),
                ..w.clone()
            });
            with_filter(watermark, above)
        }
        LogicalPlan::Explode(e) => {
            let (below, above): (Vec<Expr>, Vec<Expr>) = conjuncts
                .into_iter()
                .partition(|c| !c.columns().iter().any(|col| col.name == e.alias));
            let new_input = if below.is_empty() {
                push_down_predicates(&e.input)
            } else {
                push_filter(&e.input, below)
            };
            let explode = LogicalPlan::Explode(Explode {
                input: Arc::new(new_input),
                ..e.clone()
            });
            with_filter(explode, above)
        }
        LogicalPlan::Source(s) => {
            let mut source = s.clone();
            for c in &conjuncts {
                if !source.pushed_filters.contains(c) && references_only(c, &s.schema) {
                    source.pushed_filters.push(c.clone());
                }
            }
            with_filter(LogicalPlan::Source(source), conjuncts)
        }
        other => with_filter(push_down_predicates(other), conjuncts),
    }
}

/// `conjunct` over the projection's output rewritten over its input, if every column it uses is
/// computed by an expression without aggregates.
fn substitute_project(conjunct: &Expr, p: &Project) -> Option<Expr> {
    let mut ok = true;
    let rewritten = conjunct
        .clone()
        .transform_up(&mut |e| {
            Ok(match e {
                Expr::Column(c) => {
                    let position = p.schema.fields().iter().position(|f| f.name() == &c.name);
                    match position.map(|i| p.exprs[i].unalias().clone()) {
                        Some(source) if !source.contains_aggregate() => source,
                        _ => {
                            ok = false;
                            Expr::Column(c)
                        }
                    }
                }
                other => other,
            })
        })
        .ok()?;
    ok.then_some(rewritten)
}

// ---------------------------------------------------------------------------------------------
// Projection push-down
// ---------------------------------------------------------------------------------------------

type Required = Option<BTreeSet<String>>;

fn with_columns(required: &Required, exprs: &[&Expr]) -> Required {
    let mut set = required.clone()?;
    for e in exprs {
        set.extend(e.columns().into_iter().map(|c| c.name.clone()));
    }
    Some(set)
}

fn columns_of(exprs: &[&Expr]) -> Required {
    with_columns(&Some(BTreeSet::new()), exprs)
}

/// Rewrite `plan` knowing its parent needs only `required` of its output columns (`None` = all).
#[recursive::recursive]
fn push_down_projection(plan: &LogicalPlan, required: Required) -> LogicalPlan {
    match plan {
        LogicalPlan::Source(s) => prune_source(s, &required),
        LogicalPlan::Project(p) => {
            let exprs: Vec<&Expr> = p.exprs.iter().collect();
            let input = push_down_projection(&p.input, columns_of(&exprs));
            LogicalPlan::Project(Project {
                input: Arc::new(input),
                ..p.clone()
            })
        }
        LogicalPlan::Aggregate(a) => {
            let exprs: Vec<&Expr> = a.group_by.iter().chain(&a.aggregates).collect();
            let input = push_down_projection(&a.input, columns_of(&exprs));
            LogicalPlan::Aggregate(crate::plan::Aggregate {
                input: Arc::new(input),
                ..a.clone()
            })
        }
        LogicalPlan::Filter(f) => {
            let input = push_down_projection(&f.input, with_columns(&required, &[&f.predicate]));
            LogicalPlan::Filter(Filter {
                input: Arc::new(input),
                predicate: f.predicate.clone(),
            })
        }
        LogicalPlan::Watermark(w) => {
            let column = Expr::Column(Column::new(&w.column));
            let input = push_down_projection(&w.input, with_columns(&required, &[&column]));
            let schema = Arc::new(schema_with_watermark(input.schema(), &w.column, w.delay_us));
            LogicalPlan::Watermark(Watermark {
                input: Arc::new(input),
                schema,
                ..w.clone()
            })
        }
        LogicalPlan::Deduplicate(d) => {
            let keys: Vec<Expr> = d
                .columns
                .iter()
                .map(|c| Expr::Column(Column::new(c)))
                .collect();
            let refs: Vec<&Expr> = keys.iter().collect();
            let input = push_down_projection(&d.input, with_columns(&required, &refs));
            LogicalPlan::Deduplicate(crate::plan::Deduplicate {
                input: Arc::new(input),
                ..d.clone()
            })
        }
        LogicalPlan::Explode(e) => {
            let below = required.map(|mut set| {
                set.remove(&e.alias);
                set
            });
            let input = push_down_projection(&e.input, with_columns(&below, &[&e.expr]));
            let mut fields: Vec<Field> = input
                .schema()
                .fields()
                .iter()
                .map(|f| f.as_ref().clone())
                .collect();
            if let Some(element) = e.schema.fields().last() {
                fields.push(element.as_ref().clone());
            }
            LogicalPlan::Explode(Explode {
                input: Arc::new(input),
                schema: Arc::new(Schema::new(Fields::from(fields))),
                ..e.clone()
            })
        }
        LogicalPlan::Sort(s) => {
            let keys: Vec<&Expr> = s.exprs.iter().map(|k| &k.expr).collect();
            let input = push_down_projection(&s.input, with_columns(&required, &keys));
            LogicalPlan::Sort(crate::plan::Sort {
                input: Arc::new(input),
                exprs: s.exprs.clone(),
            })
        }
        LogicalPlan::Limit(_) | LogicalPlan::SubqueryAlias(_) => {
            let inputs = plan
                .inputs()
                .into_iter()
                .map(|i| Arc::new(push_down_projection(i, required.clone())))
                .collect();
            plan.with_new_inputs(inputs)
        }
        // Union is positional and joins are not executed yet: their inputs keep every column.
        LogicalPlan::Union(_) | LogicalPlan::Join(_) => {
            let inputs = plan
                .inputs()
                .into_iter()
                .map(|i| Arc::new(push_down_projection(i, None)))
                .collect();
            plan.with_new_inputs(inputs)
        }
    }
}

fn prune_source(s: &Source, required: &Required) -> LogicalPlan {
    let Some(required) = required else {
        return LogicalPlan::Source(s.clone());
    };
    let mut indices: Vec<usize> = s
        .table_schema
        .fields()
        .iter()
        .enumerate()
        .filter(|(_, f)| required.contains(f.name()))
        .map(|(i, _)| i)
        .collect();
    if indices.is_empty() && !s.table_schema.fields().is_empty() {
        // Row counts still need rows: keep the first column rather than read none.
        indices.push(0);
    }
    if indices.len() == s.table_schema.fields().len() {
        return LogicalPlan::Source(s.clone());
    }
    let fields: Vec<Field> = indices
        .iter()
        .map(|&i| s.table_schema.field(i).clone())
        .collect();
    let mut source = s.clone();
    source.schema = Arc::new(Schema::new(Fields::from(fields)));
    source.projection = Some(indices);
    LogicalPlan::Source(source)
}

/// The logical part of `explain` / `EXPLAIN`, Spark style: the analysed plan with its output
/// schema, then the optimised plan. The engine appends its incremental and kernel plans.
pub fn explain_logical(plan: &LogicalPlan) -> Result<String> {
    let optimized = optimize(plan)?;
    Ok(format!(
        "== Analyzed Logical Plan ==\n{}\n{plan}\n== Optimized Logical Plan ==\n{optimized}",
        plan.schema_description()
    ))
}
