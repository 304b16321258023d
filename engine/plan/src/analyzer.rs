//! Analysis: name resolution (case-insensitive, with "did you mean" suggestions), type derivation and
//! Spark's implicit type coercion, aggregate validation, and the streaming checks of Spark's
//! `UnsupportedOperationChecker` (§1.3 output-mode matrix, §4.4 watermark requirement, §4.8 rules).
//!
//! Owns the rules, not the tree: plan nodes are built by `builder`, which calls the resolution
//! functions here as each node is added. This module must not parse SQL or optimise plans.

use std::sync::Arc;

use arrow_schema::{DataType, Field, Fields, Metadata, Schema, TimeUnit};

use crate::error::{Error, Result, Rule, Span};
use crate::expr::{
    AggregateFunction, BinaryOperator, Column, Expr, SessionGap, spark_type_name, timestamp_type,
    window_struct_type,
};
use crate::functions::{check_call, implicitly_castable, is_numeric};
use crate::plan::{
    Aggregate, JoinType, LogicalPlan, OutputMode, RELATION_KEY, WATERMARK_DELAY_MS_KEY,
    WATERMARK_DELAY_US_KEY,
};

const MAX_DECIMAL_PRECISION: u8 = 38;

/// Spark's type name in upper case, as used in its error messages (`"BIGINT"`).
fn type_text(t: &DataType) -> String {
    format!("\"{}\"", spark_type_name(t).to_ascii_uppercase())
}

/// Levenshtein distance on ASCII-lowercased strings, for suggestions.
pub(crate) fn edit_distance(a: &str, b: &str) -> usize {
    let a: Vec<char> = a.to_lowercase().chars().collect();
    let b: Vec<char> = b.to_lowercase().chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.iter().enumerate() {
        let mut cur = vec![i + 1; b.len() + 1];
        for (j, cb) in b.iter().enumerate() {
            let cost = usize::from(ca != cb);
            cur[j + 1] = (prev[j] + cost).min(prev[j + 1] + 1).min(cur[j] + 1);
        }
        prev = cur;
    }
    prev[b.len()]
}

fn unresolved_column(name: &str, schema: &Schema, span: Option<Span>) -> Error {
    let mut candidates: Vec<(usize, &str)> = schema
        .fields()
        .iter()
        .map(|f| (edit_distance(name, f.name()), f.name().as_str()))
        .collect();
    candidates.sort();
    let suggestions: Vec<String> = candidates
        .iter()
        .take(5)
        .map(|(_, n)| format!("`{n}`"))
        .collect();
    let message = if suggestions.is_empty() {
        format!("A column, variable, or function parameter with name `{name}` cannot be resolved.")
    } else {
        format!(
            "A column, variable, or function parameter with name `{name}` cannot be resolved. Did you mean one of \
             the following? [{}].",
            suggestions.join(", ")
        )
    };
    Error::analysis(Rule::UnresolvedColumn, message)
        .with_expr(name)
        .with_span(span)
}

/// The input field matching `name` case-insensitively (an exact-case match wins over others).
/// The input field matching `name` case-insensitively (an exact-case match wins over others).
/// When several fields share the name (the two sides of a join), `qualifier` picks the one whose
/// relation (field metadata [`RELATION_KEY`]) it names.
fn find_field<'a>(
    schema: &'a Schema,
    name: &str,
    qualifier: Option<&str>,
    span: Option<Span>,
) -> Result<&'a Arc<Field>> {
    let mut matches: Vec<&Arc<Field>> = schema
        .fields()
        .iter()
        .filter(|f| f.name().eq_ignore_ascii_case(name))
        .collect();
    if matches.len() > 1
        && let Some(q) = qualifier
    {
        let narrowed: Vec<&Arc<Field>> = matches
            .iter()
            .copied()
            .filter(|f| {
                f.metadata()
                    .get(RELATION_KEY)
                    .is_some_and(|r| r.eq_ignore_ascii_case(q))
            })
            .collect();
        if !narrowed.is_empty() {
            matches = narrowed;
        }
    }
    match matches.as_slice() {
        [] => Err(unresolved_column(name, schema, span)),
        [one] => Ok(one),
        several => match several.iter().find(|f| f.name() == name) {
            Some(exact) if several.iter().filter(|f| f.name() == name).count() == 1 => Ok(exact),
            _ => {
                let candidates: Vec<String> = several
                    .iter()
                    .map(|f| match f.metadata().get(RELATION_KEY) {
                        Some(r) => format!("`{r}`.`{}`", f.name()),
                        None => format!("`{}`", f.name()),
                    })
                    .collect();
                Err(Error::analysis(
                    Rule::AmbiguousReference,
                    format!(
                        "Reference `{name}` is ambiguous, could be: [{}]. Qualify it with its relation name, or \
                         rename one of the columns in a subquery.",
                        candidates.join(", ")
                    ),
                )
                .with_expr(name)
                .with_span(span))
            }
        },
    }
}

/// A resolved reference to `field`: unqualified, unless another input column has the same name
/// (then it keeps the field's relation as qualifier, so it stays unambiguous).
fn resolved_column(field: &Field, schema: &Schema, span: crate::error::SourceSpan) -> Expr {
    let duplicated = schema
        .fields()
        .iter()
        .filter(|f| f.name() == field.name())
        .count()
        > 1;
    let qualifier = if duplicated {
        field.metadata().get(RELATION_KEY).cloned()
    } else {
        None
    };
    Expr::Column(Column {
        qualifier,
        name: field.name().clone(),
        span,
    })
}

fn resolve_column(column: &Column, input: &LogicalPlan) -> Result<Expr> {
    let schema = input.schema();
    let span = column.span.get();
    match &column.qualifier {
        None => {
            let field = find_field(schema, &column.name, None, span)?;
            Ok(resolved_column(field, schema, column.span))
        }
        Some(qualifier) => {
            if input
                .relation_names()
                .iter()
                .any(|r| r.eq_ignore_ascii_case(qualifier))
            {
                let field = find_field(schema, &column.name, Some(qualifier), span)?;
                return Ok(resolved_column(field, schema, column.span));
            }
            // `w.start`: a field of a struct column.
            match find_field(schema, qualifier, None, span) {
                Ok(field) if matches!(field.data_type(), DataType::Struct(_)) => {
                    let base = resolved_column(field, schema, column.span);
                    resolve_get_field(base, field.data_type(), &column.name)
                }
                _ => Err(unresolved_column(
                    &format!("{qualifier}.{}", column.name),
                    schema,
                    span,
                )),
            }
        }
    }
}

fn resolve_get_field(base: Expr, base_type: &DataType, field: &str) -> Result<Expr> {
    let DataType::Struct(fields) = base_type else {
        return Err(Error::analysis(
            Rule::DatatypeMismatch,
            format!(
                "Field name should be a STRUCT field, but `{base}` has the type {}.",
                type_text(base_type)
            ),
        )
        .with_span(base.span()));
    };
    match fields.iter().find(|f| f.name().eq_ignore_ascii_case(field)) {
        Some(f) => Ok(Expr::GetField {
            expr: Box::new(base),
            field: f.name().clone(),
        }),
        None => {
            let names: Vec<String> = fields.iter().map(|f| format!("`{}`", f.name())).collect();
            Err(Error::analysis(
                Rule::UnresolvedColumn,
                format!("No such struct field `{field}` in {}.", names.join(", ")),
            )
            .with_expr(format!("{base}.{field}"))
            .with_span(base.span()))
        }
    }
}

/// Resolve column names only: exact input names (case-insensitive lookup), qualifiers checked,
/// `a.b` on a struct column turned into a field access. Types are not checked.
pub fn resolve_names(expr: Expr, input: &LogicalPlan) -> Result<Expr> {
    let schema = input.schema().clone();
    expr.transform_up(&mut |node| match node {
        Expr::Column(c) => resolve_column(&c, input),
        Expr::GetField { expr, field } => {
            let (t, _) = expr_type(&expr, &schema)?;
            resolve_get_field(*expr, &t, &field)
        }
        Expr::Wildcard { .. } => Err(Error::analysis(
            Rule::UnsupportedFeature,
            "Invalid usage of '*' in expression: `*` is only allowed alone in the SELECT list or in count(*).",
        )),
        other => Ok(other),
    })
}

/// Resolve an expression against `input`: exact column names, struct fields, implicit casts and
/// type checks. Wildcards must be expanded by the caller.
pub fn resolve_expr(expr: Expr, input: &LogicalPlan) -> Result<Expr> {
    let original = expr.to_string();
    let span = expr.span();
    let schema = input.schema().clone();
    resolve_names(expr, input)
        .and_then(|named| named.transform_up(&mut |node| resolve_node(node, &schema)))
        .map_err(|e| e.with_expr(&original).with_span(span))
}

/// Resolve an output expression of a SELECT or aggregation: like [`resolve_expr`], and named as
/// Spark names it (from the expression with resolved names but before implicit casts), adding an
/// alias when coercion changed the text.
pub fn resolve_output_expr(expr: Expr, input: &LogicalPlan) -> Result<Expr> {
    let original = expr.to_string();
    let span = expr.span();
    let named = resolve_names(expr, input).map_err(|e| e.with_expr(&original).with_span(span))?;
    let name = named.output_name();
    let schema = input.schema().clone();
    let resolved = named
        .transform_up(&mut |node| resolve_node(node, &schema))
        .map_err(|e| e.with_expr(&original).with_span(span))?;
    Ok(if resolved.output_name() == name {
        resolved
    } else {
        resolved.unalias().clone().alias(name)
    })
}

/// Type-check one node whose children are resolved, inserting implicit casts.
fn resolve_node(node: Expr, schema: &Schema) -> Result<Expr> {
    let ty = |e: &Expr| expr_type(e, schema);
    match node {
        Expr::BinaryOp { left, op, right } => {
            let (lt, _) = ty(&left)?;
            let (rt, _) = ty(&right)?;
            let (lt2, rt2, _) = binary_types(op, &lt, &rt).map_err(|e| {
                let text = Expr::BinaryOp {
                    left: left.clone(),
                    op,
                    right: right.clone(),
                };
                e.with_expr(text)
            })?;
            Ok(Expr::BinaryOp {
                left: Box::new(cast_if_needed(*left, &lt, &lt2)),
                op,
                right: Box::new(cast_if_needed(*right, &rt, &rt2)),
            })
        }
        Expr::Not(e) => Ok(Expr::Not(Box::new(expect_boolean(*e, schema, "NOT")?))),
        Expr::Negative(e) => {
            let (t, _) = ty(&e)?;
            if !(is_numeric(&t) || matches!(t, DataType::Duration(_) | DataType::Null)) {
                return Err(mismatch(
                    &format!("(- {e})"),
                    "the operand must be numeric or an interval",
                    &[&t],
                ));
            }
            Ok(Expr::Negative(e))
        }
        Expr::Like {
            expr,
            pattern,
            negated,
            case_insensitive,
        } => Ok(Expr::Like {
            expr: Box::new(to_string_operand(*expr, schema, "LIKE")?),
            pattern: Box::new(to_string_operand(*pattern, schema, "LIKE")?),
            negated,
            case_insensitive,
        }),
        Expr::RLike {
            expr,
            pattern,
            negated,
        } => Ok(Expr::RLike {
            expr: Box::new(to_string_operand(*expr, schema, "RLIKE")?),
            pattern: Box::new(to_string_operand(*pattern, schema, "RLIKE")?),
            negated,
        }),
        Expr::InList {
            expr,
            list,
            negated,
        } => {
            let mut all = vec![*expr];
            all.extend(list);
            let mut all = coerce_to_common(all, schema, "IN")?;
            let expr = all.remove(0);
            Ok(Expr::InList {
                expr: Box::new(expr),
                list: all,
                negated,
            })
        }
        Expr::Between {
            expr,
            low,
            high,
            negated,
        } => {
            let mut all = coerce_to_common(vec![*expr, *low, *high], schema, "BETWEEN")?;
            let high = all.pop();
            let low = all.pop();
            let expr = all.pop();
            match (expr, low, high) {
                (Some(expr), Some(low), Some(high)) => Ok(Expr::Between {
                    expr: Box::new(expr),
                    low: Box::new(low),
                    high: Box::new(high),
                    negated,
                }),
                _ => Err(Error::analysis(
                    Rule::DatatypeMismatch,
                    "BETWEEN needs a value and two bounds",
                )),
            }
        }
        Expr::Case {
            operand,
            branches,
            else_expr,
        } => resolve_case(operand, branches, else_expr, schema),
        Expr::Cast {
            expr,
            data_type,
            try_cast,
        } => {
            let (from, _) = ty(&expr)?;
            if !can_cast(&from, &data_type) {
                return Err(Error::analysis(
                    Rule::DatatypeMismatch,
                    format!(
                        "Cannot resolve \"{}\" due to data type mismatch: cannot cast {} to {}.",
                        Expr::Cast {
                            expr: expr.clone(),
                            data_type: data_type.clone(),
                            try_cast
                        },
                        type_text(&from),
                        type_text(&data_type)
                    ),
                ));
            }
            Ok(Expr::Cast {
                expr,
                data_type,
                try_cast,
            })
        }
        Expr::ScalarFunction { name, args, span } => {
            if name == "explode" {
                return Err(Error::analysis(
                    Rule::UnsupportedFeature,
                    "The generator `explode` is only supported alone in the SELECT list (optionally aliased), \
                     not nested in expressions or in other clauses.",
                )
                .with_span(span.get()));
            }
            let types = args.iter().map(&ty).collect::<Result<Vec<_>>>()?;
            let (args, _, _) =
                check_call(&name, args, &types).map_err(|e| e.with_span(span.get()))?;
            Ok(Expr::ScalarFunction { name, args, span })
        }
        Expr::Aggregate {
            func,
            args,
            distinct,
            span,
        } => {
            if args.iter().any(Expr::contains_aggregate) {
                return Err(Error::analysis(
                    Rule::InvalidAggregate,
                    "It is not allowed to use an aggregate function in the argument of another aggregate \
                     function. Please use the inner aggregate function in a sub-query.",
                )
                .with_span(span.get()));
            }
            let node = Expr::Aggregate {
                func,
                args,
                distinct,
                span,
            };
            aggregate_type(&node, schema).map_err(|e| e.with_span(span.get()))?;
            Ok(node)
        }
        Expr::Window {
            time,
            size_us,
            slide_us,
            start_us,
        } => {
            let time = window_time_operand(*time, schema, "window")?;
            Ok(Expr::Window {
                time: Box::new(time),
                size_us,
                slide_us,
                start_us,
            })
        }
        Expr::SessionWindow { time, gap } => {
            let time = window_time_operand(*time, schema, "session_window")?;
            if let SessionGap::Dynamic(g) = &gap {
                let (t, _) = ty(g)?;
                if !matches!(t, DataType::Duration(_) | DataType::Utf8) {
                    return Err(mismatch(
                        &format!("session_window({time}, {g})"),
                        "the gap must be an interval or an interval string",
                        &[&t],
                    ));
                }
            }
            Ok(Expr::SessionWindow {
                time: Box::new(time),
                gap,
            })
        }
        Expr::WindowTime(e) => {
            let (t, _) = ty(&e)?;
            if t != window_struct_type() {
                return Err(mismatch(
                    &format!("window_time({e})"),
                    "the argument must be a window column",
                    &[&t],
                ));
            }
            Ok(Expr::WindowTime(e))
        }
        other @ (Expr::Literal(_)
        | Expr::Column(_)
        | Expr::GetField { .. }
        | Expr::Wildcard { .. }
        | Expr::IsNull(_)
        | Expr::IsNotNull(_)
        | Expr::Alias { .. }
        | Expr::CurrentTimestamp) => Ok(other),
    }
}

fn mismatch(expr: &str, why: &str, types: &[&DataType]) -> Error {
    let types: Vec<String> = types.iter().map(|t| type_text(t)).collect();
    Error::analysis(
        Rule::DatatypeMismatch,
        format!(
            "Cannot resolve \"{expr}\" due to data type mismatch: {why} (got {}).",
            types.join(", ")
        ),
    )
}

fn window_time_operand(time: Expr, schema: &Schema, func: &str) -> Result<Expr> {
    let (t, _) = expr_type(&time, schema)?;
    match t {
        DataType::Timestamp(_, _) => Ok(time),
        DataType::Utf8 => Ok(time.cast(timestamp_type())),
        t if t == window_struct_type() => Ok(Expr::WindowTime(Box::new(time))),
        t => Err(mismatch(
            &format!("{func}({time}, ...)"),
            "the time column must be a TIMESTAMP (or a window column)",
            &[&t],
        )),
    }
}

fn expect_boolean(e: Expr, schema: &Schema, context: &str) -> Result<Expr> {
    let (t, _) = expr_type(&e, schema)?;
    match t {
        DataType::Boolean => Ok(e),
        DataType::Null => Ok(e.cast(DataType::Boolean)),
        t => Err(mismatch(
            &format!("{context} {e}"),
            "the operand must be BOOLEAN",
            &[&t],
        )),
    }
}

fn to_string_operand(e: Expr, schema: &Schema, context: &str) -> Result<Expr> {
    let (t, _) = expr_type(&e, schema)?;
    if !implicitly_castable(&t, &DataType::Utf8) {
        return Err(mismatch(
            &format!("{e} {context}"),
            "the operands must be STRING",
            &[&t],
        ));
    }
    Ok(cast_if_needed(e, &t, &DataType::Utf8))
}

fn coerce_to_common(exprs: Vec<Expr>, schema: &Schema, context: &str) -> Result<Vec<Expr>> {
    let types = exprs
        .iter()
        .map(|e| expr_type(e, schema).map(|(t, _)| t))
        .collect::<Result<Vec<_>>>()?;
    let mut common = DataType::Null;
    for t in &types {
        common = comparison_type(&common, t).ok_or_else(|| {
            mismatch(
                context,
                &format!(
                    "the input types must all be comparable, but {} and {} are not",
                    type_text(&common),
                    type_text(t)
                ),
                &[&common, t],
            )
        })?;
    }
    Ok(exprs
        .into_iter()
        .zip(&types)
        .map(|(e, t)| cast_if_needed(e, t, &common))
        .collect())
}

fn resolve_case(
    operand: Option<Box<Expr>>,
    branches: Vec<(Expr, Expr)>,
    else_expr: Option<Box<Expr>>,
    schema: &Schema,
) -> Result<Expr> {
    let (whens, thens): (Vec<Expr>, Vec<Expr>) = branches.into_iter().unzip();
    let (operand, whens) = match operand {
        Some(op) => {
            let mut all = vec![*op];
            all.extend(whens);
            let mut all = coerce_to_common(all, schema, "CASE")?;
            let op = all.remove(0);
            (Some(Box::new(op)), all)
        }
        None => (
            None,
            whens
                .into_iter()
                .map(|w| expect_boolean(w, schema, "CASE WHEN"))
                .collect::<Result<_>>()?,
        ),
    };
    let mut values = thens;
    let has_else = else_expr.is_some();
    if let Some(e) = else_expr {
        values.push(*e);
    }
    let types = values
        .iter()
        .map(|e| expr_type(e, schema).map(|(t, _)| t))
        .collect::<Result<Vec<_>>>()?;
    let mut common = DataType::Null;
    for t in &types {
        common = wider_type(&common, t).ok_or_else(|| {
            mismatch(
                "CASE",
                "THEN and ELSE expressions should all be same type or coercible to a common type",
                &[&common, t],
            )
        })?;
    }
    let mut values: Vec<Expr> = values
        .into_iter()
        .zip(&types)
        .map(|(e, t)| cast_if_needed(e, t, &common))
        .collect();
    let else_expr = if has_else {
        values.pop().map(Box::new)
    } else {
        None
    };
    Ok(Expr::Case {
        operand,
        branches: whens.into_iter().zip(values).collect(),
        else_expr,
    })
}

/// Wrap `expr` in a cast when `from` differs from `to`.
pub(crate) fn cast_if_needed(expr: Expr, from: &DataType, to: &DataType) -> Expr {
    if from == to || to == &DataType::Null {
        expr
    } else {
        expr.cast(to.clone())
    }
}

fn numeric_rank(t: &DataType) -> Option<u8> {
    Some(match t {
        DataType::Int8 => 1,
        DataType::Int16 => 2,
        DataType::Int32 => 3,
        DataType::Int64 => 4,
        DataType::Float32 => 6,
        DataType::Float64 => 7,
        _ => return None,
    })
}

/// The decimal type that holds every value of an integral type (Spark's `DecimalType.forType`).
fn integral_as_decimal(t: &DataType) -> Option<(u8, i8)> {
    Some(match t {
        DataType::Int8 => (3, 0),
        DataType::Int16 => (5, 0),
        DataType::Int32 => (10, 0),
        DataType::Int64 => (20, 0),
        DataType::Decimal128(p, s) => (*p, *s),
        _ => return None,
    })
}

/// Spark's `DecimalType.adjustPrecisionScale` (allowPrecisionLoss = true).
fn bounded_decimal(precision: i32, scale: i32) -> DataType {
    let max = i32::from(MAX_DECIMAL_PRECISION);
    let (p, s) = if precision <= max {
        (precision, scale)
    } else {
        let int_digits = precision - scale;
        let min_scale = scale.min(6);
        let adjusted = (max - int_digits).max(min_scale);
        (max, adjusted)
    };
    DataType::Decimal128(p.clamp(1, max) as u8, s.clamp(0, max) as i8)
}

/// The wider of two types for UNION, CASE, COALESCE (Spark's `findWiderTypeForTwo`): numbers widen,
/// decimals grow to hold both, anything atomic with a string becomes a string, dates widen to timestamps.
pub(crate) fn wider_type(a: &DataType, b: &DataType) -> Option<DataType> {
    if a == b {
        return Some(a.clone());
    }
    match (a, b) {
        (DataType::Null, t) | (t, DataType::Null) => Some(t.clone()),
        (DataType::Decimal128(..), t) | (t, DataType::Decimal128(..))
            if matches!(t, DataType::Float32 | DataType::Float64) =>
        {
            Some(DataType::Float64)
        }
        (x, y)
            if integral_as_decimal(x).is_some()
                && integral_as_decimal(y).is_some()
                && (matches!(x, DataType::Decimal128(..))
                    || matches!(y, DataType::Decimal128(..))) =>
        {
            let (p1, s1) = integral_as_decimal(x)?;
            let (p2, s2) = integral_as_decimal(y)?;
            let scale = i32::from(s1.max(s2));
            let range = (i32::from(p1) - i32::from(s1)).max(i32::from(p2) - i32::from(s2));
            Some(bounded_decimal(range + scale, scale))
        }
        (x, y) if numeric_rank(x).is_some() && numeric_rank(y).is_some() => {
            if numeric_rank(x) >= numeric_rank(y) {
                Some(x.clone())
            } else {
                Some(y.clone())
            }
        }
        (DataType::Date32, DataType::Timestamp(..)) => Some(b.clone()),
        (DataType::Timestamp(..), DataType::Date32) => Some(a.clone()),
        (DataType::Utf8, t) | (t, DataType::Utf8) if implicitly_castable(t, &DataType::Utf8) => {
            Some(DataType::Utf8)
        }
        _ => None,
    }
}

/// The common type two values are compared in (Spark's comparison coercion): numbers widen, a
/// string against a number/date/timestamp is cast to that type, dates widen to timestamps.
fn comparison_type(a: &DataType, b: &DataType) -> Option<DataType> {
    if a == b {
        return Some(a.clone());
    }
    match (a, b) {
        (DataType::Utf8, t) | (t, DataType::Utf8)
            if is_numeric(t)
                || matches!(
                    t,
                    DataType::Date32 | DataType::Timestamp(..) | DataType::Boolean
                ) =>
        {
            Some(t.clone())
        }
        (DataType::Utf8, DataType::Null) | (DataType::Null, DataType::Utf8) => Some(DataType::Utf8),
        (DataType::Boolean, DataType::Null) | (DataType::Null, DataType::Boolean) => {
            Some(DataType::Boolean)
        }
        (x, y)
            if is_numeric(x) || is_numeric(y) || x == &DataType::Null || y == &DataType::Null =>
        {
            wider_type(x, y)
        }
        (DataType::Date32, DataType::Timestamp(..))
        | (DataType::Timestamp(..), DataType::Date32) => wider_type(a, b),
        (DataType::Timestamp(..), DataType::Timestamp(..)) => Some(timestamp_type()),
        _ => None,
    }
}

/// For `left op right` with operand types `lt`/`rt`: the types to cast each operand to and the result type.
fn binary_types(
    op: BinaryOperator,
    lt: &DataType,
    rt: &DataType,
) -> Result<(DataType, DataType, DataType)> {
    let incompatible = || {
        Error::analysis(
            Rule::DatatypeMismatch,
            format!(
                "Cannot resolve the binary operator `{op}` due to data type mismatch: the left and right operands of \
                 the binary operator have incompatible types ({} and {}).",
                type_text(lt),
                type_text(rt)
            ),
        )
    };
    use BinaryOperator as B;
    match op {
        B::And | B::Or => {
            let ok = |t: &DataType| matches!(t, DataType::Boolean | DataType::Null);
            if !ok(lt) || !ok(rt) {
                return Err(Error::analysis(
                    Rule::DatatypeMismatch,
                    format!(
                        "Cannot resolve `{op}` due to data type mismatch: the binary operator requires the input type \
                         \"BOOLEAN\", not {} and {}.",
                        type_text(lt),
                        type_text(rt)
                    ),
                ));
            }
            Ok((DataType::Boolean, DataType::Boolean, DataType::Boolean))
        }
        B::StringConcat => {
            if !implicitly_castable(lt, &DataType::Utf8)
                || !implicitly_castable(rt, &DataType::Utf8)
            {
                return Err(incompatible());
            }
            Ok((DataType::Utf8, DataType::Utf8, DataType::Utf8))
        }
        op if op.is_comparison() => {
            let common = comparison_type(lt, rt).ok_or_else(incompatible)?;
            Ok((common.clone(), common, DataType::Boolean))
        }
        _ => arithmetic_types(op, lt, rt).ok_or_else(incompatible),
    }
}

fn arithmetic_types(
    op: BinaryOperator,
    lt: &DataType,
    rt: &DataType,
) -> Option<(DataType, DataType, DataType)> {
    use BinaryOperator as B;
    let duration = DataType::Duration(TimeUnit::Microsecond);
    // Time arithmetic.
    match (op, lt, rt) {
        (B::Plus | B::Minus, DataType::Timestamp(..), DataType::Duration(_)) => {
            return Some((lt.clone(), duration, lt.clone()));
        }
        (B::Plus, DataType::Duration(_), DataType::Timestamp(..)) => {
            return Some((duration, rt.clone(), rt.clone()));
        }
        (B::Minus, DataType::Timestamp(..), DataType::Timestamp(..)) => {
            return Some((timestamp_type(), timestamp_type(), duration));
        }
        (B::Plus | B::Minus, DataType::Duration(_), DataType::Duration(_)) => {
            return Some((duration.clone(), duration.clone(), duration));
        }
        (
            B::Plus | B::Minus,
            DataType::Date32,
            DataType::Int8 | DataType::Int16 | DataType::Int32,
        ) => {
            return Some((DataType::Date32, DataType::Int32, DataType::Date32));
        }
        _ => {}
    }
    // Strings in arithmetic are read as doubles; NULL takes the other side's type.
    let operand = |t: &DataType, other: &DataType| -> Option<DataType> {
        match t {
            DataType::Utf8 => Some(DataType::Float64),
            DataType::Null if other == &DataType::Null => Some(DataType::Int32),
            DataType::Null => Some(if other == &DataType::Utf8 {
                DataType::Float64
            } else {
                other.clone()
            }),
            t if is_numeric(t) => Some(t.clone()),
            _ => None,
        }
    };
    let l = operand(lt, rt)?;
    let r = operand(rt, lt)?;
    let any_float = matches!(l, DataType::Float32 | DataType::Float64)
        || matches!(r, DataType::Float32 | DataType::Float64);
    let any_decimal =
        matches!(l, DataType::Decimal128(..)) || matches!(r, DataType::Decimal128(..));
    if any_float {
        let common = if op == B::Divide {
            DataType::Float64
        } else {
            wider_type(&l, &r)?
        };
        let common = if any_decimal {
            DataType::Float64
        } else {
            common
        };
        return Some((common.clone(), common.clone(), common));
    }
    if any_decimal {
        let (p1, s1) = integral_as_decimal(&l)?;
        let (p2, s2) = integral_as_decimal(&r)?;
        let (p1, s1, p2, s2) = (i32::from(p1), i32::from(s1), i32::from(p2), i32::from(s2));
        let result = match op {
            B::Plus | B::Minus => {
                let scale = s1.max(s2);
                bounded_decimal((p1 - s1).max(p2 - s2) + scale + 1, scale)
            }
            B::Multiply => bounded_decimal(p1 + p2 + 1, s1 + s2),
            B::Divide => {
                let scale = 6.max(s1 + p2 + 1);
                bounded_decimal(p1 - s1 + s2 + scale, scale)
            }
            B::Modulo => {
                let scale = s1.max(s2);
                bounded_decimal((p1 - s1).min(p2 - s2) + scale, scale)
            }
            _ => return None,
        };
        let as_dec = |t: &DataType, p: i32, s: i32| {
            if matches!(t, DataType::Decimal128(..)) {
                t.clone()
            } else {
                bounded_decimal(p, s)
            }
        };
        return Some((as_dec(&l, p1, s1), as_dec(&r, p2, s2), result));
    }
    // Integral: `/` is fractional (Spark's Divide casts integral operands to double).
    if op == B::Divide {
        return Some((DataType::Float64, DataType::Float64, DataType::Float64));
    }
    let common = wider_type(&l, &r)?;
    Some((common.clone(), common.clone(), common))
}

/// True if Spark's CAST supports `from` → `to`.
fn can_cast(from: &DataType, to: &DataType) -> bool {
    if from == to || from == &DataType::Null {
        return true;
    }
    let atomic = |t: &DataType| {
        is_numeric(t)
            || matches!(
                t,
                DataType::Utf8 | DataType::Boolean | DataType::Date32 | DataType::Timestamp(..)
            )
    };
    match (from, to) {
        (_, DataType::Utf8) => {
            atomic(from)
                || matches!(
                    from,
                    DataType::Struct(_) | DataType::List(_) | DataType::Duration(_)
                )
        }
        (DataType::Utf8, t) => atomic(t) || matches!(t, DataType::Duration(_)),
        (f, t)
            if (is_numeric(f) || f == &DataType::Boolean)
                && (is_numeric(t) || t == &DataType::Boolean) =>
        {
            true
        }
        (DataType::Timestamp(..), t) => {
            is_numeric(t) || matches!(t, DataType::Date32 | DataType::Timestamp(..))
        }
        (f, DataType::Timestamp(..)) => is_numeric(f) || f == &DataType::Date32,
        _ => false,
    }
}

fn aggregate_type(expr: &Expr, schema: &Schema) -> Result<(DataType, bool)> {
    let Expr::Aggregate { func, args, .. } = expr else {
        return expr_type(expr, schema);
    };
    let arg = match args.as_slice() {
        [one] => one,
        _ => {
            return Err(Error::analysis(
                Rule::WrongNumArgs,
                format!(
                    "The `{func}` requires 1 parameters but the actual number is {}.",
                    args.len()
                ),
            ));
        }
    };
    let (t, _) = expr_type(arg, schema)?;
    let numeric_required = || {
        Error::analysis(
            Rule::DatatypeMismatch,
            format!(
                "Cannot resolve \"{expr}\" due to data type mismatch: the first parameter requires the \"NUMERIC\" type, \
                 however \"{arg}\" has the type {}.",
                type_text(&t)
            ),
        )
    };
    Ok(match func {
        AggregateFunction::Count | AggregateFunction::ApproxCountDistinct => {
            (DataType::Int64, false)
        }
        AggregateFunction::Sum => (
            match &t {
                DataType::Int8
                | DataType::Int16
                | DataType::Int32
                | DataType::Int64
                | DataType::Null => DataType::Int64,
                DataType::Float32 | DataType::Float64 => DataType::Float64,
                DataType::Decimal128(p, s) => bounded_decimal(i32::from(*p) + 10, i32::from(*s)),
                DataType::Duration(_) => t.clone(),
                _ => return Err(numeric_required()),
            },
            true,
        ),
        AggregateFunction::Avg => (
            match &t {
                DataType::Decimal128(p, s) => bounded_decimal(i32::from(*p) + 4, i32::from(*s) + 4),
                t if is_numeric(t) || t == &DataType::Null => DataType::Float64,
                DataType::Duration(_) => t.clone(),
                _ => return Err(numeric_required()),
            },
            true,
        ),
        AggregateFunction::Min | AggregateFunction::Max => {
            if matches!(t, DataType::Struct(_) | DataType::List(_)) && t != window_struct_type() {
                return Err(Error::analysis(
                    Rule::DatatypeMismatch,
                    format!(
                        "Cannot resolve \"{expr}\" due to data type mismatch: {} is not orderable.",
                        type_text(&t)
                    ),
                ));
            }
            (t, true)
        }
        AggregateFunction::First | AggregateFunction::Last => (t, true),
    })
}

/// The type and nullability of a resolved expression over `schema`.
#[recursive::recursive]
pub fn expr_type(expr: &Expr, schema: &Schema) -> Result<(DataType, bool)> {
    let ty = |e: &Expr| expr_type(e, schema);
    Ok(match expr {
        Expr::Column(c) => {
            let f = find_field(schema, &c.name, c.qualifier.as_deref(), c.span.get())?;
            (f.data_type().clone(), f.is_nullable())
        }
        Expr::Literal(v) => (v.data_type(), v.is_null()),
        Expr::BinaryOp { left, op, right } => {
            let (lt, ln) = ty(left)?;
            let (rt, rn) = ty(right)?;
            let (_, _, result) = binary_types(*op, &lt, &rt)?;
            let nullable =
                ln || rn || matches!(op, BinaryOperator::Divide | BinaryOperator::Modulo);
            (result, nullable)
        }
        Expr::Not(e) => (DataType::Boolean, ty(e)?.1),
        Expr::Negative(e) => ty(e)?,
        Expr::IsNull(_) | Expr::IsNotNull(_) => (DataType::Boolean, false),
        Expr::Like { expr, pattern, .. } | Expr::RLike { expr, pattern, .. } => {
            (DataType::Boolean, ty(expr)?.1 || ty(pattern)?.1)
        }
        Expr::InList { expr, list, .. } => {
            let mut nullable = ty(expr)?.1;
            for e in list {
                nullable |= ty(e)?.1;
            }
            (DataType::Boolean, nullable)
        }
        Expr::Between {
            expr, low, high, ..
        } => (DataType::Boolean, ty(expr)?.1 || ty(low)?.1 || ty(high)?.1),
        Expr::Case {
            branches,
            else_expr,
            ..
        } => {
            let mut common = DataType::Null;
            let mut nullable = else_expr.is_none();
            for (_, then) in branches {
                let (t, n) = ty(then)?;
                common = wider_type(&common, &t).unwrap_or(t);
                nullable |= n;
            }
            if let Some(e) = else_expr {
                let (t, n) = ty(e)?;
                common = wider_type(&common, &t).unwrap_or(t);
                nullable |= n;
            }
            (common, nullable)
        }
        Expr::Cast {
            expr,
            data_type,
            try_cast,
        } => {
            let (from, n) = ty(expr)?;
            (
                data_type.clone(),
                n || *try_cast || (from == DataType::Utf8 && data_type != &DataType::Utf8),
            )
        }
        Expr::ScalarFunction { name, args, .. } => {
            let types = args.iter().map(&ty).collect::<Result<Vec<_>>>()?;
            let (_, t, n) = check_call(name, args.clone(), &types)?;
            (t, n)
        }
        Expr::Aggregate { .. } => aggregate_type(expr, schema)?,
        Expr::Alias { expr, .. } => ty(expr)?,
        Expr::Window { time, .. } | Expr::SessionWindow { time, .. } => {
            (window_struct_type(), ty(time)?.1)
        }
        Expr::WindowTime(e) => (timestamp_type(), ty(e)?.1),
        Expr::CurrentTimestamp => (timestamp_type(), false),
        Expr::GetField { expr, field } => {
            let (t, n) = ty(expr)?;
            match &t {
                DataType::Struct(fields) => match fields.iter().find(|f| f.name() == field) {
                    Some(f) => (f.data_type().clone(), n || f.is_nullable()),
                    None => {
                        return Err(resolve_get_field((**expr).clone(), &t, field)
                            .err()
                            .unwrap_or_else(|| {
                                Error::analysis(
                                    Rule::UnresolvedColumn,
                                    format!("No such struct field `{field}`."),
                                )
                            }));
                    }
                },
                _ => {
                    return Err(resolve_get_field((**expr).clone(), &t, field)
                        .err()
                        .unwrap_or_else(|| {
                            Error::analysis(
                                Rule::DatatypeMismatch,
                                format!("`{expr}` is not a struct."),
                            )
                        }));
                }
            }
        }
        Expr::Wildcard { .. } => {
            return Err(Error::analysis(
                Rule::UnsupportedFeature,
                "Invalid usage of '*' in expression.",
            ));
        }
    })
}

/// The watermark metadata an expression's output carries: a column's own, or that of the time
/// column of a window over it (Spark copies the delay onto the window attribute).
#[recursive::recursive]
fn watermark_metadata(expr: &Expr, schema: &Schema) -> Option<Metadata> {
    match expr {
        Expr::Column(c) => {
            let field = schema.fields().iter().find(|f| f.name() == &c.name)?;
            let md = field.metadata();
            md.contains_key(WATERMARK_DELAY_MS_KEY).then(|| md.clone())
        }
        Expr::Alias { expr, .. } => watermark_metadata(expr, schema),
        Expr::Window { time, .. } | Expr::SessionWindow { time, .. } | Expr::WindowTime(time) => {
            watermark_metadata(time, schema)
        }
        Expr::Cast {
            expr,
            data_type: DataType::Timestamp(..),
            ..
        } => watermark_metadata(expr, schema),
        _ => None,
    }
}

/// The output field of a resolved expression: its name (as Spark names it), type, nullability and
/// watermark metadata.
pub fn expr_field(expr: &Expr, schema: &Schema) -> Result<Field> {
    let (data_type, nullable) = expr_type(expr, schema)?;
    let field = Field::new(expr.output_name(), data_type, nullable);
    Ok(match watermark_metadata(expr, schema) {
        Some(md) => field.with_metadata(md),
        None => field,
    })
}

/// Mark `column` of `schema` with watermark metadata for `delay_us`.
pub(crate) fn schema_with_watermark(schema: &Schema, column: &str, delay_us: i64) -> Schema {
    let fields: Vec<Field> = schema
        .fields()
        .iter()
        .map(|f| {
            let mut md = f.metadata().clone();
            if f.name() == column {
                md.insert(
                    WATERMARK_DELAY_MS_KEY.to_string(),
                    (delay_us / 1000).to_string(),
                );
                md.insert(WATERMARK_DELAY_US_KEY.to_string(), delay_us.to_string());
            } else {
                md.remove(WATERMARK_DELAY_MS_KEY);
                md.remove(WATERMARK_DELAY_US_KEY);
            }
            f.as_ref().clone().with_metadata(md)
        })
        .collect();
    Schema::new(Fields::from(fields))
}

/// True if the field carries watermark metadata.
pub fn has_watermark(field: &Field) -> bool {
    field.metadata().contains_key(WATERMARK_DELAY_MS_KEY)
}

/// A filter predicate: resolved, boolean, without aggregates.
pub(crate) fn resolve_predicate(
    predicate: Expr,
    input: &LogicalPlan,
    clause: &str,
) -> Result<Expr> {
    if predicate.contains_aggregate() {
        return Err(Error::analysis(
            Rule::InvalidAggregate,
            format!(
                "The {clause} condition {predicate} contains invalid expressions. Rewrite the query to avoid window \
                 functions, aggregate functions, and generator functions in the {clause} clause."
            ),
        )
        .with_expr(&predicate)
        .with_span(predicate.span()));
    }
    let resolved = resolve_expr(predicate, input)?;
    let (t, _) = expr_type(&resolved, input.schema())?;
    match t {
        DataType::Boolean => Ok(resolved),
        DataType::Null => Ok(resolved.cast(DataType::Boolean)),
        t => Err(Error::analysis(
            Rule::DatatypeMismatch,
            format!(
                "Filter expression \"{resolved}\" of type {} is not a boolean.",
                type_text(&t)
            ),
        )
        .with_expr(&resolved)
        .with_span(resolved.span())),
    }
}

// ---------------------------------------------------------------------------------------------
// Streaming checks (§1.3, §4.4, §4.8)
// ---------------------------------------------------------------------------------------------

fn streaming_error(rule: Rule, message: impl Into<String>) -> Error {
    Error::analysis(rule, message)
}

#[recursive::recursive]
fn collect_nodes<'a>(plan: &'a LogicalPlan, out: &mut Vec<&'a LogicalPlan>) {
    out.push(plan);
    for input in plan.inputs() {
        collect_nodes(input, out);
    }
}

fn streaming_aggregates(plan: &LogicalPlan) -> Vec<&Aggregate> {
    let mut nodes = Vec::new();
    collect_nodes(plan, &mut nodes);
    nodes
        .into_iter()
        .filter_map(|n| match n {
            LogicalPlan::Aggregate(a) if a.input.is_streaming() => Some(a),
            _ => None,
        })
        .collect()
}

fn aggregate_span(a: &Aggregate) -> Option<Span> {
    a.group_by.iter().chain(&a.aggregates).find_map(Expr::span)
}

fn is_session_window(e: &Expr) -> bool {
    matches!(e.unalias(), Expr::SessionWindow { .. })
}

/// Check a plan about to run as a streaming query in `mode`: the output-mode matrix (§1.3), the
/// watermark requirement of append mode (§4.4) and Spark's unsupported operations (§4.8), with
/// Spark's messages. Returns the first violation found (bottom-up, as Spark reports them).
pub fn check_streaming(plan: &LogicalPlan, mode: OutputMode) -> Result<()> {
    if !plan.is_streaming() {
        return Err(streaming_error(
            Rule::StreamingRequiresStreamingSource,
            "Queries without streaming sources cannot be executed with writeStream.start()",
        ));
    }
    let aggregates = streaming_aggregates(plan);

    // Operator-local rules, bottom-up.
    check_operators(plan, mode)?;

    // Several stateful aggregations are only allowed in append mode (§4.9, Spark 3.4+).
    if aggregates.len() > 1 && mode != OutputMode::Append {
        let span = aggregates.first().and_then(|a| aggregate_span(a));
        return Err(streaming_error(
            Rule::StreamingMultipleStatefulOperators,
            format!(
                "Multiple streaming aggregations are not supported with streaming DataFrames/Datasets in {mode} \
                 output mode, only in Append output mode"
            ),
        )
        .with_span(span));
    }

    match mode {
        OutputMode::Append => {
            for aggregate in &aggregates {
                let input_schema = aggregate.input.schema();
                let has_watermarked_key = aggregate.group_by.iter().any(|g| {
                    expr_field(g, input_schema)
                        .map(|f| has_watermark(&f))
                        .unwrap_or(false)
                });
                if !has_watermarked_key {
                    let watermarked: Vec<&str> = input_schema
                        .fields()
                        .iter()
                        .filter(|f| has_watermark(f))
                        .map(|f| f.name().as_str())
                        .collect();
                    let hint = match watermarked.as_slice() {
                        [] => " Add a watermark with withWatermark / WATERMARK FOR and group by the event-time column \
                               or a window on it, or use Update or Complete output mode."
                            .to_string(),
                        cols => format!(
                            " The watermarked column `{}` is not a grouping key: group by it or by a window on it.",
                            cols.join("`, `")
                        ),
                    };
                    return Err(streaming_error(
                        Rule::StreamingWatermarkRequired,
                        format!(
                            "Append output mode not supported when there are streaming aggregations on streaming \
                             DataFrames/DataSets without watermark.{hint}"
                        ),
                    )
                    .with_expr(LogicalPlan::Aggregate((*aggregate).clone()).node_description())
                    .with_span(aggregate_span(aggregate)));
                }
            }
        }
        OutputMode::Complete => {
            if aggregates.is_empty() {
                return Err(streaming_error(
                    Rule::StreamingOutputMode,
                    "Complete output mode not supported when there are no streaming aggregations on streaming \
                     DataFrames/Datasets",
                ));
            }
        }
        OutputMode::Update => {
            if let Some(aggregate) = aggregates
                .iter()
                .find(|a| a.group_by.iter().any(is_session_window))
            {
                return Err(streaming_error(
                    Rule::StreamingOutputMode,
                    "Update output mode is not supported for session window aggregations on streaming \
                     DataFrames/Datasets; use Append or Complete output mode",
                )
                .with_span(aggregate_span(aggregate)));
            }
        }
    }
    Ok(())
}

/// The output mode an ad hoc query (`weir sql`) runs in when the user names none: Append for
/// stateless queries, Update for aggregations, Complete for aggregations sorted with ORDER BY.
pub fn default_output_mode(plan: &LogicalPlan) -> OutputMode {
    if !contains_streaming_aggregate(plan) {
        return OutputMode::Append;
    }
    let mut nodes = Vec::new();
    collect_nodes(plan, &mut nodes);
    let sorted = nodes
        .iter()
        .any(|n| matches!(n, LogicalPlan::Sort(s) if contains_streaming_aggregate(&s.input)));
    if sorted {
        OutputMode::Complete
    } else {
        OutputMode::Update
    }
}

fn contains_streaming_aggregate(plan: &LogicalPlan) -> bool {
    !streaming_aggregates(plan).is_empty()
}

#[recursive::recursive]
fn check_operators(node: &LogicalPlan, mode: OutputMode) -> Result<()> {
    for input in node.inputs() {
        check_operators(input, mode)?;
    }
    match node {
        LogicalPlan::Aggregate(a) if a.input.is_streaming() => {
            if let Some(distinct) = a
                .aggregates
                .iter()
                .find(|e| e.any(&mut |x| matches!(x, Expr::Aggregate { distinct: true, .. })))
            {
                return Err(streaming_error(
                    Rule::StreamingDistinctAggregate,
                    "Distinct aggregations are not supported on streaming DataFrames/Datasets. Consider using \
                     approx_count_distinct() instead.",
                )
                .with_expr(distinct)
                .with_span(distinct.span()));
            }
            if a.group_by.iter().any(is_session_window) && a.group_by.len() == 1 {
                return Err(streaming_error(
                    Rule::StreamingUnsupportedOperation,
                    "Global session window is not supported on streaming DataFrames/Datasets: group by at least \
                     one column besides session_window",
                )
                .with_expr(&a.group_by[0])
                .with_span(a.group_by[0].span()));
            }
            if mode != OutputMode::Append && contains_streaming_aggregate(&a.input) {
                // Reported by the multiple-aggregation rule with its own message.
                return Ok(());
            }
        }
        LogicalPlan::Deduplicate(d) if d.input.is_streaming() => {
            if mode != OutputMode::Append && contains_streaming_aggregate(&d.input) {
                return Err(streaming_error(
                    Rule::StreamingMultipleStatefulOperators,
                    "Detected pattern of possible 'correctness' issue due to global watermark. The query contains \
                     stateful operation which can emit rows older than the current watermark plus allowed late record \
                     delay, which are \"late rows\" in downstream stateful operations and these rows can be discarded. \
                     Please refer the programming guide doc for more details.",
                ));
            }
            if d.within_watermark && !d.input.schema().fields().iter().any(|f| has_watermark(f)) {
                return Err(streaming_error(
                    Rule::StreamingWatermarkRequired,
                    "dropDuplicatesWithinWatermark is not supported on streaming DataFrames/DataSets without \
                     watermark. Use withWatermark / WATERMARK FOR before it.",
                ));
            }
        }
        LogicalPlan::Join(j) => check_join(j, mode)?,
        LogicalPlan::Union(u) => {
            let streaming = u.inputs.iter().filter(|i| i.is_streaming()).count();
            if streaming > 0 && streaming < u.inputs.len() {
                return Err(streaming_error(
                    Rule::StreamingUnion,
                    "Union between streaming and batch DataFrames/Datasets is not supported",
                ));
            }
        }
        LogicalPlan::Limit(l) if l.input.is_streaming() => {
            if l.skip > 0 {
                return Err(streaming_error(
                    Rule::StreamingLimit,
                    "Offset is not supported on streaming DataFrames/Datasets",
                )
                .with_expr(node.node_description())
                .with_span(l.span));
            }
            if mode == OutputMode::Update && l.fetch.is_some() {
                return Err(streaming_error(
                    Rule::StreamingLimit,
                    "Limits are not supported on streaming DataFrames/Datasets in Update output mode",
                )
                .with_expr(node.node_description())
                .with_span(l.span));
            }
        }
        LogicalPlan::Sort(s) if s.input.is_streaming() => {
            let complete_data =
                mode == OutputMode::Complete && contains_streaming_aggregate(&s.input);
            if !complete_data {
                let span = s.exprs.iter().find_map(|e| e.expr.span());
                return Err(streaming_error(
                    Rule::StreamingSort,
                    "Sorting is not supported on streaming DataFrames/Datasets, unless it is on aggregated \
                     DataFrame/Dataset in Complete output mode",
                )
                .with_expr(node.node_description())
                .with_span(span));
            }
        }
        _ => {}
    }
    Ok(())
}

fn check_join(j: &crate::plan::Join, mode: OutputMode) -> Result<()> {
    let (ls, rs) = (j.left.is_streaming(), j.right.is_streaming());
    let span = j.condition.as_ref().and_then(Expr::span);
    let err = |rule: Rule, message: String| Err(streaming_error(rule, message).with_span(span));
    match j.join_type {
        JoinType::Inner | JoinType::Cross => {
            if ls && rs && mode != OutputMode::Append {
                return err(
                    Rule::StreamingJoin,
                    format!(
                        "Inner join between two streaming DataFrames/Datasets is not supported in {mode} output \
                         mode, only in Append output mode"
                    ),
                );
            }
        }
        JoinType::FullOuter => {
            if ls != rs {
                return err(
                    Rule::StreamingJoin,
                    "Full outer joins with streaming DataFrames/Datasets are not supported"
                        .to_string(),
                );
            }
        }
        JoinType::LeftSemi | JoinType::LeftAnti => {
            if rs && !ls {
                return err(
                    Rule::StreamingJoin,
                    "Left semi/anti joins with a streaming DataFrame/Dataset on the right are not supported".to_string(),
                );
            }
        }
        JoinType::LeftOuter => {
            if !ls && rs {
                return err(
                    Rule::StreamingJoin,
                    "Left outer join with a streaming DataFrame/Dataset on the right and a static DataFrame/Dataset \
                     on the left is not supported"
                        .to_string(),
                );
            }
        }
        JoinType::RightOuter => {
            if ls && !rs {
                return err(
                    Rule::StreamingJoin,
                    "Right outer join with a streaming DataFrame/Dataset on the left and a static DataFrame/DataSet \
                     on the right not supported"
                        .to_string(),
                );
            }
        }
    }
    if ls && rs {
        if mode != OutputMode::Append {
            return err(
                Rule::StreamingJoin,
                format!(
                    "Join between two streaming DataFrames/Datasets is not supported in {mode} output mode, only in \
                     Append output mode"
                ),
            );
        }
        let outer = !matches!(j.join_type, JoinType::Inner | JoinType::Cross);
        if outer && !join_condition_uses_watermark(j) {
            return err(
                Rule::StreamingJoin,
                "Stream-stream outer join between two streaming DataFrame/Datasets is not supported without a \
                 watermark in the join keys, or a watermark on the nullable side and an appropriate range condition"
                    .to_string(),
            );
        }
    }
    Ok(())
}

/// A conservative stand-in for Spark's `StreamingJoinHelper`: the join condition must reference a
/// watermarked column of the side(s) that may be null-padded.
fn join_condition_uses_watermark(j: &crate::plan::Join) -> bool {
    let Some(condition) = &j.condition else {
        return false;
    };
    let watermarked = |plan: &LogicalPlan| -> Vec<String> {
        plan.schema()
            .fields()
            .iter()
            .filter(|f| has_watermark(f))
            .map(|f| f.name().clone())
            .collect()
    };
    let referenced: Vec<String> = condition.columns().iter().map(|c| c.name.clone()).collect();
    let side_ok = |plan: &LogicalPlan| watermarked(plan).iter().any(|w| referenced.contains(w));
    match j.join_type {
        JoinType::LeftOuter | JoinType::LeftSemi | JoinType::LeftAnti => side_ok(&j.right),
        JoinType::RightOuter => side_ok(&j.left),
        JoinType::FullOuter => side_ok(&j.left) && side_ok(&j.right),
        JoinType::Inner | JoinType::Cross => true,
    }
}
