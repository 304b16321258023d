//! SQL to plan: turns sqlparser's query and expression AST into weir [`Expr`]s and, through the
//! same builder functions as the Rust API, into resolved [`LogicalPlan`]s.
//!
//! Owns the mapping of Spark SQL syntax and function names; must not define syntax (that is
//! `parser`) or analysis rules (that is `analyzer`).

use std::collections::HashMap;
use std::sync::Arc;

use sqlparser::ast;

use crate::builder::{
    LogicalPlanBuilder, plan_aggregate, plan_join, plan_limit, plan_project, plan_union,
};
use crate::error::{Error, Result, Rule, Span};
use crate::expr::{
    AggregateFunction, BinaryOperator, Column, Expr, ScalarValue, SessionGap, SortExpr, count_star,
    parse_date_days, parse_duration, parse_timestamp_micros,
};
use crate::functions::{is_scalar_function, unknown_function};
use crate::plan::{JoinType, LogicalPlan, SubqueryAlias};
use crate::sql::catalog::Catalog;
use crate::sql::parser::{interval_micros, sql_type_to_arrow};

/// Where an expression starts, found without walking the whole (possibly very deep) tree: leaves
/// know their position; for a compound expression the leftmost leaf within a few steps is used.
fn span_of(e: &ast::Expr) -> Option<Span> {
    let mut node = e;
    for _ in 0..8 {
        node = match node {
            ast::Expr::Identifier(id) => return Span::from_sql_location(id.span.start),
            ast::Expr::CompoundIdentifier(parts) => {
                return parts
                    .first()
                    .and_then(|id| Span::from_sql_location(id.span.start));
            }
            ast::Expr::Value(v) => return Span::from_sql_location(v.span.start),
            ast::Expr::Function(f) => return name_span(&f.name),
            ast::Expr::BinaryOp { left, .. } => left,
            ast::Expr::Nested(inner)
            | ast::Expr::IsNull(inner)
            | ast::Expr::IsNotNull(inner)
            | ast::Expr::Cast { expr: inner, .. }
            | ast::Expr::Like { expr: inner, .. }
            | ast::Expr::ILike { expr: inner, .. }
            | ast::Expr::RLike { expr: inner, .. }
            | ast::Expr::In { expr: inner, .. }
            | ast::Expr::Between { expr: inner, .. }
            | ast::Expr::CompoundFieldAccess { root: inner, .. }
            | ast::Expr::Substring { expr: inner, .. }
            | ast::Expr::Trim { expr: inner, .. }
            | ast::Expr::Ceil { expr: inner, .. }
            | ast::Expr::Floor { expr: inner, .. }
            | ast::Expr::Extract { expr: inner, .. }
            | ast::Expr::UnaryOp { expr: inner, .. } => inner,
            ast::Expr::Case { case_token, .. } => {
                return Span::from_sql_location(case_token.0.span.start);
            }
            ast::Expr::Rollup(sets) | ast::Expr::Cube(sets) | ast::Expr::GroupingSets(sets) => {
                sets.first().and_then(|set| set.first())?
            }
            _ => return None,
        };
    }
    None
}

/// Where an object name starts.
fn name_span(name: &ast::ObjectName) -> Option<Span> {
    match name.0.first() {
        Some(ast::ObjectNamePart::Identifier(id)) => Span::from_sql_location(id.span.start),
        _ => None,
    }
}

/// Where a SELECT starts.
fn select_span(select: &ast::Select) -> Option<Span> {
    Span::from_sql_location(select.select_token.0.span.start)
}

/// Where a set expression starts (its first SELECT).
fn set_expr_span(body: &ast::SetExpr) -> Option<Span> {
    let mut node = body;
    for _ in 0..8 {
        node = match node {
            ast::SetExpr::Select(select) => return select_span(select),
            ast::SetExpr::SetOperation { left, .. } => left,
            ast::SetExpr::Query(q) => &q.body,
            _ => return None,
        };
    }
    None
}

fn unsupported(what: impl std::fmt::Display, span: Option<Span>) -> Error {
    Error::analysis(
        Rule::UnsupportedFeature,
        format!("{what} is not supported by weir"),
    )
    .with_span(span)
}

/// Deepest expression nesting accepted from SQL (deeper text gets an error, not a stack overflow).
pub const MAX_EXPR_DEPTH: usize = 256;

/// Convert a SQL expression to a weir expression (names unresolved).
pub fn sql_to_expr(e: &ast::Expr) -> Result<Expr> {
    convert(e, 0)
}

#[recursive::recursive]
fn convert(e: &ast::Expr, depth: usize) -> Result<Expr> {
    use ast::Expr as S;
    let span = span_of(e);
    if depth > MAX_EXPR_DEPTH {
        return Err(Error::analysis(
            Rule::UnsupportedFeature,
            format!("The expression nests more than {MAX_EXPR_DEPTH} levels deep; split it into subqueries or simplify it."),
        )
        .with_span(span));
    }
    let sub = |x: &ast::Expr| convert(x, depth + 1);
    Ok(match e {
        S::Identifier(id) => Expr::Column(Column {
            qualifier: None,
            name: id.value.clone(),
            span: span.into(),
        }),
        S::CompoundIdentifier(parts) => match parts.as_slice() {
            [a, b] => Expr::Column(Column {
                qualifier: Some(a.value.clone()),
                name: b.value.clone(),
                span: span.into(),
            }),
            [a, b, rest @ ..] => {
                let mut expr = Expr::Column(Column {
                    qualifier: Some(a.value.clone()),
                    name: b.value.clone(),
                    span: span.into(),
                });
                for part in rest {
                    expr = expr.field(part.value.clone());
                }
                expr
            }
            _ => return Err(unsupported("This multi-part identifier", span)),
        },
        S::CompoundFieldAccess { root, access_chain } => {
            let mut expr = sub(root)?;
            for access in access_chain {
                match access {
                    ast::AccessExpr::Dot(ast::Expr::Identifier(field)) => {
                        expr = expr.field(field.value.clone())
                    }
                    _ => return Err(unsupported("This field access (only `.name` is)", span)),
                }
            }
            expr
        }
        S::Nested(inner) => sub(inner)?,
        S::Value(v) => Expr::Literal(value_to_scalar(&v.value).map_err(|err| err.with_span(span))?),
        S::BinaryOp { left, op, right } => {
            let op = match op {
                ast::BinaryOperator::Plus => BinaryOperator::Plus,
                ast::BinaryOperator::Minus => BinaryOperator::Minus,
                ast::BinaryOperator::Multiply => BinaryOperator::Multiply,
                ast::BinaryOperator::Divide => BinaryOperator::Divide,
                ast::BinaryOperator::Modulo => BinaryOperator::Modulo,
                ast::BinaryOperator::Eq => BinaryOperator::Eq,
                ast::BinaryOperator::NotEq => BinaryOperator::NotEq,
                ast::BinaryOperator::Lt => BinaryOperator::Lt,
                ast::BinaryOperator::LtEq => BinaryOperator::LtEq,
                ast::BinaryOperator::Gt => BinaryOperator::Gt,
                ast::BinaryOperator::GtEq => BinaryOperator::GtEq,
                ast::BinaryOperator::And => BinaryOperator::And,
                ast::BinaryOperator::Or => BinaryOperator::Or,
                ast::BinaryOperator::StringConcat => BinaryOperator::StringConcat,
                other => return Err(unsupported(format!("The operator `{other}`"), span)),
            };
            Expr::BinaryOp {
                left: Box::new(sub(left)?),
                op,
                right: Box::new(sub(right)?),
            }
        }
        S::UnaryOp { op, expr } => match op {
            ast::UnaryOperator::Not => Expr::Not(Box::new(sub(expr)?)),
            ast::UnaryOperator::Plus => sub(expr)?,
            ast::UnaryOperator::Minus => match sub(expr)? {
                Expr::Literal(v) => match negate_literal(v) {
                    Some(v) => Expr::Literal(v),
                    None => return Err(unsupported("Negating this literal", span)),
                },
                other => Expr::Negative(Box::new(other)),
            },
            other => return Err(unsupported(format!("The operator `{other}`"), span)),
        },
        S::IsNull(inner) => Expr::IsNull(Box::new(sub(inner)?)),
        S::IsNotNull(inner) => Expr::IsNotNull(Box::new(sub(inner)?)),
        S::Like {
            negated,
            any: false,
            expr,
            pattern,
            escape_char: None,
        } => Expr::Like {
            expr: Box::new(sub(expr)?),
            pattern: Box::new(sub(pattern)?),
            negated: *negated,
            case_insensitive: false,
        },
        S::ILike {
            negated,
            any: false,
            expr,
            pattern,
            escape_char: None,
        } => Expr::Like {
            expr: Box::new(sub(expr)?),
            pattern: Box::new(sub(pattern)?),
            negated: *negated,
            case_insensitive: true,
        },
        S::RLike {
            negated,
            expr,
            pattern,
            ..
        } => Expr::RLike {
            expr: Box::new(sub(expr)?),
            pattern: Box::new(sub(pattern)?),
            negated: *negated,
        },
        S::In {
            expr,
            target: ast::InTarget::List(list),
            negated,
            global: false,
        } => Expr::InList {
            expr: Box::new(sub(expr)?),
            list: list.iter().map(&sub).collect::<Result<_>>()?,
            negated: *negated,
        },
        S::Between {
            expr,
            negated,
            low,
            high,
        } => Expr::Between {
            expr: Box::new(sub(expr)?),
            low: Box::new(sub(low)?),
            high: Box::new(sub(high)?),
            negated: *negated,
        },
        S::Case {
            operand,
            conditions,
            else_result,
            ..
        } => Expr::Case {
            operand: operand.as_deref().map(&sub).transpose()?.map(Box::new),
            branches: conditions
                .iter()
                .map(|c| Ok((sub(&c.condition)?, sub(&c.result)?)))
                .collect::<Result<_>>()?,
            else_expr: else_result.as_deref().map(&sub).transpose()?.map(Box::new),
        },
        S::Cast {
            kind,
            expr,
            data_type,
            format: None,
        } => Expr::Cast {
            expr: Box::new(sub(expr)?),
            data_type: sql_type_to_arrow(data_type).map_err(|err| err.with_span(span))?,
            try_cast: matches!(kind, ast::CastKind::TryCast | ast::CastKind::SafeCast),
        },
        S::Function(f) => function_to_expr(f, e, depth)?,
        S::Substring {
            expr,
            substring_from,
            substring_for,
            ..
        } => {
            let mut args = vec![sub(expr)?];
            match substring_from {
                Some(from) => args.push(sub(from)?),
                None => {
                    return Err(Error::analysis(
                        Rule::WrongNumArgs,
                        "The `substring` requires 2 to 3 parameters but the actual number is 1.",
                    )
                    .with_span(span));
                }
            }
            if let Some(len) = substring_for {
                args.push(sub(len)?);
            }
            Expr::ScalarFunction {
                name: "substring".into(),
                args,
                span: span.into(),
            }
        }
        S::Trim {
            expr,
            trim_where: None,
            trim_what: None,
            trim_characters: None,
        } => Expr::ScalarFunction {
            name: "trim".into(),
            args: vec![sub(expr)?],
            span: span.into(),
        },
        S::Ceil {
            expr,
            field: ast::CeilFloorKind::DateTimeField(ast::DateTimeField::NoDateTime),
        } => Expr::ScalarFunction {
            name: "ceil".into(),
            args: vec![sub(expr)?],
            span: span.into(),
        },
        S::Floor {
            expr,
            field: ast::CeilFloorKind::DateTimeField(ast::DateTimeField::NoDateTime),
        } => Expr::ScalarFunction {
            name: "floor".into(),
            args: vec![sub(expr)?],
            span: span.into(),
        },
        S::Extract { field, expr, .. } => {
            let name = match field {
                ast::DateTimeField::Year => "year",
                ast::DateTimeField::Month => "month",
                ast::DateTimeField::Day => "day",
                ast::DateTimeField::Hour => "hour",
                ast::DateTimeField::Minute => "minute",
                ast::DateTimeField::Second => "second",
                ast::DateTimeField::Quarter => "quarter",
                ast::DateTimeField::DayOfWeek => "dayofweek",
                ast::DateTimeField::DayOfYear => "dayofyear",
                other => return Err(unsupported(format!("EXTRACT({other} ...)"), span)),
            };
            Expr::ScalarFunction {
                name: name.into(),
                args: vec![sub(expr)?],
                span: span.into(),
            }
        }
        S::Interval(interval) => Expr::Literal(ScalarValue::IntervalMicros(
            interval_micros(interval).map_err(|err| err.with_span(span))?,
        )),
        S::TypedString(typed) => {
            let text = match &typed.value.value {
                ast::Value::SingleQuotedString(s) | ast::Value::DoubleQuotedString(s) => s.clone(),
                other => return Err(unsupported(format!("The literal `{other}`"), span)),
            };
            let bad = |kind: &str| {
                Error::analysis(
                    Rule::InvalidLiteral,
                    format!("The {kind} literal '{text}' is not valid."),
                )
                .with_span(span)
            };
            match &typed.data_type {
                ast::DataType::Timestamp(..) | ast::DataType::TimestampNtz(_) => {
                    Expr::Literal(ScalarValue::TimestampMicros(
                        parse_timestamp_micros(&text).ok_or_else(|| bad("TIMESTAMP"))?,
                    ))
                }
                ast::DataType::Date => {
                    let days = parse_date_days(&text)
                        .and_then(|d| i32::try_from(d).ok())
                        .ok_or_else(|| bad("DATE"))?;
                    Expr::Literal(ScalarValue::Date32(days))
                }
                other => {
                    return Err(unsupported(
                        format!("A typed literal of type {other}"),
                        span,
                    ));
                }
            }
        }
        S::Wildcard(_) => Expr::Wildcard { qualifier: None },
        S::QualifiedWildcard(name, _) => Expr::Wildcard {
            qualifier: Some(object_name(name)),
        },
        S::GroupingSets(_) | S::Cube(_) | S::Rollup(_) => return Err(grouping_sets_error(span)),
        S::Subquery(_)
        | S::Exists { .. }
        | S::In {
            target: ast::InTarget::Subquery(_),
            ..
        } => {
            return Err(unsupported("A subquery in an expression", span));
        }
        _ => return Err(unsupported("This kind of expression", span)),
    })
}

fn grouping_sets_error(span: Option<Span>) -> Error {
    Error::analysis(
        Rule::StreamingUnsupportedOperation,
        "GroupingSets is not supported on streaming DataFrames/Datasets (GROUPING SETS, CUBE and ROLLUP are not \
         supported by weir)",
    )
    .with_span(span)
}

fn negate_literal(v: ScalarValue) -> Option<ScalarValue> {
    Some(match v {
        ScalarValue::Int32(i) => ScalarValue::Int32(i.checked_neg()?),
        ScalarValue::Int64(i) => ScalarValue::Int64(i.checked_neg()?),
        ScalarValue::Float64(f) => ScalarValue::Float64(-f),
        ScalarValue::Decimal128 {
            value,
            precision,
            scale,
        } => ScalarValue::Decimal128 {
            value: value.checked_neg()?,
            precision,
            scale,
        },
        ScalarValue::IntervalMicros(us) => ScalarValue::IntervalMicros(us.checked_neg()?),
        _ => return None,
    })
}

/// A numeric literal as Spark types it: INT if it fits, else BIGINT; `L` suffix BIGINT; a decimal
/// point makes a DECIMAL; an exponent (or `D` suffix) a DOUBLE.
fn number_literal(text: &str, long_suffix: bool) -> Result<ScalarValue> {
    let bad = || {
        Error::analysis(
            Rule::InvalidLiteral,
            format!("The numeric literal {text} is out of range or invalid."),
        )
    };
    if long_suffix {
        return text
            .parse::<i64>()
            .map(ScalarValue::Int64)
            .map_err(|_| bad());
    }
    if text.contains(['e', 'E']) {
        return text
            .parse::<f64>()
            .map(ScalarValue::Float64)
            .map_err(|_| bad());
    }
    if let Some((int, frac)) = text.split_once('.') {
        let digits = format!("{int}{frac}");
        let trimmed = digits.trim_start_matches('0');
        let precision = trimmed.len().max(frac.len()).max(1);
        if precision > 38 {
            return text
                .parse::<f64>()
                .map(ScalarValue::Float64)
                .map_err(|_| bad());
        }
        let value: i128 = if digits.is_empty() {
            0
        } else {
            digits.parse().map_err(|_| bad())?
        };
        return Ok(ScalarValue::Decimal128 {
            value,
            precision: u8::try_from(precision).map_err(|_| bad())?,
            scale: i8::try_from(frac.len()).map_err(|_| bad())?,
        });
    }
    if let Ok(i) = text.parse::<i32>() {
        return Ok(ScalarValue::Int32(i));
    }
    if let Ok(i) = text.parse::<i64>() {
        return Ok(ScalarValue::Int64(i));
    }
    let digits = text.trim_start_matches('0');
    if digits.len() <= 38 && digits.chars().all(|c| c.is_ascii_digit()) {
        let value: i128 = digits.parse().map_err(|_| bad())?;
        return Ok(ScalarValue::Decimal128 {
            value,
            precision: digits.len().max(1) as u8,
            scale: 0,
        });
    }
    Err(bad())
}

fn value_to_scalar(v: &ast::Value) -> Result<ScalarValue> {
    Ok(match v {
        ast::Value::Number(n, long) => number_literal(n, *long)?,
        ast::Value::SingleQuotedString(s)
        | ast::Value::DoubleQuotedString(s)
        | ast::Value::EscapedStringLiteral(s) => ScalarValue::Utf8(s.clone()),
        ast::Value::Boolean(b) => ScalarValue::Boolean(*b),
        ast::Value::Null => ScalarValue::Null,
        other => {
            return Err(Error::analysis(
                Rule::UnsupportedFeature,
                format!("The literal `{other}` is not supported by weir"),
            ));
        }
    })
}

fn object_name(name: &ast::ObjectName) -> String {
    name.0
        .last()
        .map(|part| match part {
            ast::ObjectNamePart::Identifier(id) => id.value.clone(),
            other => other.to_string(),
        })
        .unwrap_or_default()
}

/// A string-literal (or INTERVAL-literal) argument as a duration, for `window`/`session_window`.
fn duration_arg(arg: &Expr, func: &str, what: &str) -> Result<i64> {
    match arg {
        Expr::Literal(ScalarValue::Utf8(s)) => parse_duration(s),
        Expr::Literal(ScalarValue::IntervalMicros(us)) => Ok(*us),
        other => Err(Error::analysis(
            Rule::DatatypeMismatch,
            format!("The {what} of `{func}` must be a literal interval string such as '10 seconds', found `{other}`."),
        )
        .with_span(other.span())),
    }
}

#[recursive::recursive]
fn function_to_expr(f: &ast::Function, node: &ast::Expr, depth: usize) -> Result<Expr> {
    let span = span_of(node);
    let name = object_name(&f.name).to_ascii_lowercase();
    if f.over.is_some() {
        return Err(Error::analysis(
            Rule::StreamingUnsupportedOperation,
            "Non-time-based windows are not supported on streaming DataFrames/Datasets (OVER windows are not \
             supported by weir; use window() in GROUP BY)",
        )
        .with_expr(format!("{name}(...) OVER (...)"))
        .with_span(span));
    }
    if f.filter.is_some() || !f.within_group.is_empty() || f.null_treatment.is_some() {
        return Err(unsupported(
            format!("FILTER, WITHIN GROUP and IGNORE/RESPECT NULLS on `{name}`"),
            span,
        ));
    }
    let (args, distinct, star) = match &f.args {
        ast::FunctionArguments::None => (vec![], false, false),
        ast::FunctionArguments::Subquery(_) => {
            return Err(unsupported("A subquery as a function argument", span));
        }
        ast::FunctionArguments::List(list) => {
            if !list.clauses.is_empty() {
                return Err(unsupported(
                    format!("The argument clauses (ORDER BY, LIMIT, ...) of `{name}`"),
                    span,
                ));
            }
            let distinct = matches!(
                list.duplicate_treatment,
                Some(ast::DuplicateTreatment::Distinct)
            );
            let mut args = Vec::with_capacity(list.args.len());
            let mut star = false;
            for arg in &list.args {
                match arg {
                    ast::FunctionArg::Unnamed(ast::FunctionArgExpr::Expr(e)) => {
                        args.push(convert(e, depth + 1)?)
                    }
                    ast::FunctionArg::Unnamed(ast::FunctionArgExpr::Wildcard) => star = true,
                    _ => return Err(unsupported(format!("A named argument of `{name}`"), span)),
                }
            }
            (args, distinct, star)
        }
    };
    if star && !(name == "count" && args.is_empty()) {
        return Err(Error::analysis(
            Rule::UnsupportedFeature,
            format!("Invalid usage of '*' in `{name}`: only count(*) takes `*`."),
        )
        .with_span(span));
    }
    if let Some(func) = AggregateFunction::from_name(&name) {
        if star {
            return Ok(set_span(count_star(), span));
        }
        return Ok(Expr::Aggregate {
            func,
            args,
            distinct,
            span: span.into(),
        });
    }
    if distinct {
        return Err(unsupported(
            format!("DISTINCT in the scalar function `{name}`"),
            span,
        ));
    }
    let arity = |n: std::ops::RangeInclusive<usize>| -> Result<()> {
        if n.contains(&args.len()) {
            Ok(())
        } else {
            Err(Error::analysis(
                Rule::WrongNumArgs,
                format!(
                    "The `{name}` requires {} parameters but the actual number is {}.",
                    if n.start() == n.end() {
                        n.start().to_string()
                    } else {
                        format!("{} to {}", n.start(), n.end())
                    },
                    args.len()
                ),
            )
            .with_span(span))
        }
    };
    match name.as_str() {
        "window" => {
            arity(2..=4)?;
            let window = || -> Result<Expr> {
                let size = duration_arg(&args[1], "window", "windowDuration")?;
                let slide = args
                    .get(2)
                    .map(|a| duration_arg(a, "window", "slideDuration"))
                    .transpose()?
                    .unwrap_or(size);
                let start = args
                    .get(3)
                    .map(|a| duration_arg(a, "window", "startTime"))
                    .transpose()?
                    .unwrap_or(0);
                Expr::window(args[0].clone(), size, slide, start)
            };
            window().map_err(|e| {
                e.with_expr(Expr::ScalarFunction {
                    name: name.clone(),
                    args: args.clone(),
                    span: span.into(),
                })
                .with_span(span)
            })
        }
        "session_window" => {
            arity(2..=2)?;
            let gap = match &args[1] {
                Expr::Literal(ScalarValue::Utf8(_) | ScalarValue::IntervalMicros(_)) => {
                    let us = duration_arg(&args[1], "session_window", "gapDuration")
                        .map_err(|e| e.with_span(span))?;
                    if us <= 0 {
                        return Err(Error::analysis(
                            Rule::InvalidLiteral,
                            "The gap duration of `session_window` must be greater than 0.",
                        )
                        .with_span(span));
                    }
                    SessionGap::Fixed(us)
                }
                other => SessionGap::Dynamic(Box::new(other.clone())),
            };
            Ok(Expr::SessionWindow {
                time: Box::new(args[0].clone()),
                gap,
            })
        }
        "window_time" => {
            arity(1..=1)?;
            Ok(Expr::WindowTime(Box::new(args[0].clone())))
        }
        "current_timestamp" | "now" => {
            arity(0..=0)?;
            Ok(Expr::CurrentTimestamp)
        }
        "explode" => Ok(Expr::ScalarFunction {
            name,
            args,
            span: span.into(),
        }),
        _ if is_scalar_function(&name) => Ok(Expr::ScalarFunction {
            name,
            args,
            span: span.into(),
        }),
        _ => Err(unknown_function(&name).with_span(span)),
    }
}

fn set_span(e: Expr, span: Option<Span>) -> Expr {
    match e {
        Expr::Aggregate {
            func,
            args,
            distinct,
            ..
        } => Expr::Aggregate {
            func,
            args,
            distinct,
            span: span.into(),
        },
        other => other,
    }
}

/// Plans queries against a catalog, with the CTEs in scope.
pub(crate) struct QueryPlanner<'a> {
    catalog: &'a Catalog,
    ctes: HashMap<String, Arc<LogicalPlan>>,
}

impl<'a> QueryPlanner<'a> {
    pub(crate) fn new(catalog: &'a Catalog) -> Self {
        Self {
            catalog,
            ctes: HashMap::new(),
        }
    }

    pub(crate) fn plan_query(&mut self, query: &ast::Query) -> Result<LogicalPlan> {
        if let Some(with) = &query.with {
            if with.recursive {
                return Err(unsupported("WITH RECURSIVE", None));
            }
            for cte in &with.cte_tables {
                let plan = self.plan_query(&cte.query)?;
                let alias = cte.alias.name.value.clone();
                let aliased = LogicalPlan::SubqueryAlias(SubqueryAlias {
                    input: Arc::new(plan),
                    alias: alias.clone(),
                });
                self.ctes
                    .insert(alias.to_ascii_lowercase(), Arc::new(aliased));
            }
        }
        if query.fetch.is_some()
            || !query.locks.is_empty()
            || query.for_clause.is_some()
            || !query.pipe_operators.is_empty()
        {
            return Err(unsupported(
                "This query clause (FETCH, FOR, pipe operators)",
                None,
            ));
        }
        let (mut plan, select_items) = self.plan_set_expr(&query.body)?;
        if let Some(order_by) = &query.order_by {
            let ast::OrderByKind::Expressions(exprs) = &order_by.kind else {
                return Err(unsupported("ORDER BY ALL", None));
            };
            let mut keys = Vec::with_capacity(exprs.len());
            for o in exprs {
                let expr = order_key(&o.expr, &plan, &select_items)?;
                let asc = !matches!(o.options.sort, Some(ast::OrderBySort::Desc));
                let nulls_first = o.options.nulls_first.unwrap_or(asc);
                keys.push(SortExpr {
                    expr,
                    asc,
                    nulls_first,
                });
            }
            plan = LogicalPlanBuilder::from(plan).order_by(keys)?.build();
        }
        if let Some(limit) = &query.limit_clause {
            let (limit_expr, offset_expr) = match limit {
                ast::LimitClause::LimitOffset {
                    limit,
                    offset,
                    limit_by,
                } => {
                    if !limit_by.is_empty() {
                        return Err(unsupported("LIMIT BY", None));
                    }
                    (limit.as_ref(), offset.as_ref().map(|o| &o.value))
                }
                ast::LimitClause::OffsetCommaLimit { offset, limit } => (Some(limit), Some(offset)),
            };
            let fetch = limit_expr.map(count_literal).transpose()?;
            let skip = offset_expr.map(count_literal).transpose()?.unwrap_or(0);
            let span = limit_expr.or(offset_expr).and_then(span_of);
            plan = plan_limit(Arc::new(plan), skip, fetch, span);
        }
        Ok(plan)
    }

    /// The plan and, for a plain SELECT, its select list (used to resolve ORDER BY aliases).
    fn plan_set_expr(&mut self, body: &ast::SetExpr) -> Result<(LogicalPlan, Vec<Expr>)> {
        match body {
            ast::SetExpr::Select(select) => self.plan_select(select),
            ast::SetExpr::Query(q) => Ok((self.plan_query(q)?, vec![])),
            ast::SetExpr::SetOperation {
                left,
                op,
                set_quantifier,
                right,
            } => {
                let (l, _) = self.plan_set_expr(left)?;
                let (r, _) = self.plan_set_expr(right)?;
                match op {
                    ast::SetOperator::Union => {
                        let union = plan_union(vec![Arc::new(l), Arc::new(r)])?;
                        match set_quantifier {
                            ast::SetQuantifier::All => Ok((union, vec![])),
                            ast::SetQuantifier::Distinct | ast::SetQuantifier::None => {
                                Ok((LogicalPlanBuilder::from(union).distinct()?.build(), vec![]))
                            }
                            _ => Err(unsupported("UNION BY NAME", None)),
                        }
                    }
                    ast::SetOperator::Except | ast::SetOperator::Minus => {
                        let message = if r.is_streaming() {
                            "Except on a streaming DataFrame/Dataset on the right is not supported"
                        } else {
                            "EXCEPT is not supported by weir"
                        };
                        Err(
                            Error::analysis(Rule::StreamingUnsupportedOperation, message)
                                .with_span(set_expr_span(body)),
                        )
                    }
                    ast::SetOperator::Intersect => {
                        let message = if l.is_streaming() || r.is_streaming() {
                            "Intersect between two streaming DataFrames/Datasets is not supported"
                        } else {
                            "INTERSECT is not supported by weir"
                        };
                        Err(
                            Error::analysis(Rule::StreamingUnsupportedOperation, message)
                                .with_span(set_expr_span(body)),
                        )
                    }
                }
            }
            _ => Err(unsupported("VALUES, TABLE and DML in a query", None)),
        }
    }

    fn plan_relation(&mut self, factor: &ast::TableFactor) -> Result<LogicalPlan> {
        match factor {
            ast::TableFactor::Table {
                name,
                alias,
                args,
                sample,
                with_hints,
                ..
            } => {
                if sample.is_some() {
                    return Err(Error::analysis(
                        Rule::StreamingUnsupportedOperation,
                        "Sampling is not supported on streaming DataFrames/Datasets (TABLESAMPLE is not supported by weir)",
                    )
                    .with_span(name_span(name)));
                }
                if args.is_some() || !with_hints.is_empty() {
                    return Err(unsupported(
                        "Table functions and table hints",
                        name_span(name),
                    ));
                }
                let table = object_name(name);
                let span = name_span(name);
                let plan = match self.ctes.get(&table.to_ascii_lowercase()) {
                    Some(plan) => plan.as_ref().clone(),
                    None => self
                        .catalog
                        .relation_plan(&table)
                        .map_err(|e| e.with_span(span))?,
                };
                Ok(with_alias(plan, alias.as_ref()))
            }
            ast::TableFactor::Derived {
                lateral: false,
                subquery,
                alias,
                sample: None,
            } => {
                let mut inner = QueryPlanner {
                    catalog: self.catalog,
                    ctes: self.ctes.clone(),
                };
                let plan = inner.plan_query(subquery)?;
                Ok(with_alias(plan, alias.as_ref()))
            }
            ast::TableFactor::NestedJoin {
                table_with_joins,
                alias,
            } => {
                let plan = self.plan_table_with_joins(table_with_joins)?;
                Ok(with_alias(plan, alias.as_ref()))
            }
            _ => Err(unsupported(
                "This kind of relation (LATERAL, UNNEST, table functions, ...)",
                None,
            )),
        }
    }

    fn plan_table_with_joins(&mut self, twj: &ast::TableWithJoins) -> Result<LogicalPlan> {
        let mut plan = self.plan_relation(&twj.relation)?;
        for join in &twj.joins {
            let right = self.plan_relation(&join.relation)?;
            use ast::JoinOperator as J;
            let (join_type, constraint) = match &join.join_operator {
                J::Join(c) | J::Inner(c) => (JoinType::Inner, c),
                J::Left(c) | J::LeftOuter(c) => (JoinType::LeftOuter, c),
                J::Right(c) | J::RightOuter(c) => (JoinType::RightOuter, c),
                J::FullOuter(c) => (JoinType::FullOuter, c),
                J::CrossJoin(c) => (JoinType::Cross, c),
                J::Semi(c) | J::LeftSemi(c) => (JoinType::LeftSemi, c),
                J::Anti(c) | J::LeftAnti(c) => (JoinType::LeftAnti, c),
                _ => return Err(unsupported("This join type", None)),
            };
            let condition = match constraint {
                ast::JoinConstraint::On(e) => Some(sql_to_expr(e)?),
                ast::JoinConstraint::None => None,
                _ => return Err(unsupported("JOIN USING / NATURAL JOIN", None)),
            };
            plan = plan_join(Arc::new(plan), Arc::new(right), join_type, condition)?;
        }
        Ok(plan)
    }

    fn plan_select(&mut self, select: &ast::Select) -> Result<(LogicalPlan, Vec<Expr>)> {
        if select.top.is_some()
            || select.into.is_some()
            || !select.lateral_views.is_empty()
            || select.prewhere.is_some()
            || !select.connect_by.is_empty()
            || !select.cluster_by.is_empty()
            || !select.distribute_by.is_empty()
            || !select.sort_by.is_empty()
            || !select.named_window.is_empty()
            || select.qualify.is_some()
            || select.exclude.is_some()
            || select.value_table_mode.is_some()
        {
            return Err(unsupported(
                "This SELECT clause (TOP, INTO, LATERAL VIEW, QUALIFY, WINDOW, ...)",
                select_span(select),
            ));
        }
        // FROM
        let mut from = select.from.iter();
        let Some(first) = from.next() else {
            return Err(Error::analysis(
                Rule::UnsupportedFeature,
                "A SELECT needs a FROM clause: weir queries read from a source, table or view",
            )
            .with_span(select_span(select)));
        };
        let mut input = self.plan_table_with_joins(first)?;
        for other in from {
            let right = self.plan_table_with_joins(other)?;
            input = plan_join(Arc::new(input), Arc::new(right), JoinType::Cross, None)?;
        }
        // WHERE
        if let Some(selection) = &select.selection {
            input = LogicalPlanBuilder::from(input)
                .filter(sql_to_expr(selection)?)?
                .build();
        }
        // SELECT list
        let mut items = Vec::with_capacity(select.projection.len());
        for item in &select.projection {
            items.push(match item {
                ast::SelectItem::UnnamedExpr(e) => sql_to_expr(e)?,
                ast::SelectItem::ExprWithAlias { expr, alias } => {
                    sql_to_expr(expr)?.alias(alias.value.clone())
                }
                ast::SelectItem::Wildcard(opts) if is_plain_wildcard(opts) => {
                    Expr::Wildcard { qualifier: None }
                }
                ast::SelectItem::QualifiedWildcard(
                    ast::SelectItemQualifiedWildcardKind::ObjectName(name),
                    opts,
                ) if is_plain_wildcard(opts) => Expr::Wildcard {
                    qualifier: Some(object_name(name)),
                },
                _ => {
                    return Err(unsupported(
                        "This select item (wildcard options, multiple aliases)",
                        select_span(select),
                    ));
                }
            });
        }
        // GROUP BY
        let group_by = match &select.group_by {
            ast::GroupByExpr::Expressions(exprs, modifiers) => {
                if !modifiers.is_empty() {
                    return Err(grouping_sets_error(select_span(select)));
                }
                exprs
                    .iter()
                    .map(|e| group_key(e, &input, &items))
                    .collect::<Result<Vec<_>>>()?
            }
            ast::GroupByExpr::All(_) => {
                return Err(unsupported("GROUP BY ALL", select_span(select)));
            }
        };
        let having = select
            .having
            .as_ref()
            .map(|h| having_expr(h, &input, &items))
            .transpose()?;
        let aggregating =
            !group_by.is_empty() || having.is_some() || items.iter().any(Expr::contains_aggregate);
        let input = Arc::new(input);
        let mut plan = if aggregating {
            plan_aggregate(input, group_by, items.clone(), having)?
        } else {
            plan_project(input, items.clone())?
        };
        match &select.distinct {
            None | Some(ast::Distinct::All) => {}
            Some(ast::Distinct::Distinct) => {
                plan = LogicalPlanBuilder::from(plan).distinct()?.build()
            }
            Some(ast::Distinct::On(_)) => {
                return Err(unsupported("DISTINCT ON", select_span(select)));
            }
        }
        Ok((plan, items))
    }
}

fn is_plain_wildcard(opts: &ast::WildcardAdditionalOptions) -> bool {
    opts.opt_ilike.is_none()
        && opts.opt_exclude.is_none()
        && opts.opt_except.is_none()
        && opts.opt_replace.is_none()
        && opts.opt_rename.is_none()
}

fn with_alias(plan: LogicalPlan, alias: Option<&ast::TableAlias>) -> LogicalPlan {
    match alias {
        Some(alias) => LogicalPlan::SubqueryAlias(SubqueryAlias {
            input: Arc::new(plan),
            alias: alias.name.value.clone(),
        }),
        None => plan,
    }
}

fn count_literal(e: &ast::Expr) -> Result<u64> {
    match e {
        ast::Expr::Value(ast::ValueWithSpan {
            value: ast::Value::Number(n, _),
            ..
        }) => n.parse::<u64>().map_err(|_| {
            Error::analysis(
                Rule::InvalidLiteral,
                format!("The limit expression must be a non-negative integer, found {n}."),
            )
            .with_span(span_of(e))
        }),
        other => Err(Error::analysis(
            Rule::InvalidLiteral,
            format!("The limit expression must be an integer literal, found `{other}`."),
        )
        .with_span(span_of(other))),
    }
}

fn ordinal_of(e: &ast::Expr) -> Option<usize> {
    match e {
        ast::Expr::Value(ast::ValueWithSpan {
            value: ast::Value::Number(n, false),
            ..
        }) => n.parse().ok(),
        _ => None,
    }
}

fn select_item_at(items: &[Expr], n: usize, e: &ast::Expr, clause: &str) -> Result<Expr> {
    match n.checked_sub(1).and_then(|i| items.get(i)) {
        Some(item) if !matches!(item, Expr::Wildcard { .. }) => Ok(item.clone()),
        _ => Err(Error::analysis(
            Rule::UnresolvedColumn,
            format!(
                "{clause} position {n} is not in select list (valid range is [1, {}]).",
                items.len()
            ),
        )
        .with_span(span_of(e))),
    }
}

fn is_input_column(name: &str, input: &LogicalPlan) -> bool {
    input
        .schema()
        .fields()
        .iter()
        .any(|f| f.name().eq_ignore_ascii_case(name))
}

fn alias_target<'e>(name: &str, items: &'e [Expr]) -> Option<&'e Expr> {
    items.iter().find_map(|item| match item {
        Expr::Alias { expr, name: alias } if alias.eq_ignore_ascii_case(name) => {
            Some(expr.as_ref())
        }
        _ => None,
    })
}

/// A GROUP BY key: an ordinal or a select alias (Spark's `groupByOrdinal`/`groupByAliases`), else an expression.
fn group_key(e: &ast::Expr, input: &LogicalPlan, items: &[Expr]) -> Result<Expr> {
    if let Some(n) = ordinal_of(e) {
        return Ok(select_item_at(items, n, e, "GROUP BY")?.unalias().clone());
    }
    let expr = sql_to_expr(e)?;
    if let Expr::Column(Column {
        qualifier: None,
        name,
        ..
    }) = &expr
        && !is_input_column(name, input)
        && let Some(target) = alias_target(name, items)
    {
        return Ok(target.clone());
    }
    Ok(expr)
}

/// HAVING may name select aliases; they stand for the aliased expression.
fn having_expr(e: &ast::Expr, input: &LogicalPlan, items: &[Expr]) -> Result<Expr> {
    sql_to_expr(e)?.transform_up(&mut |node| match node {
        Expr::Column(Column {
            qualifier: None,
            ref name,
            ..
        }) if !is_input_column(name, input) => {
            Ok(alias_target(name, items).cloned().unwrap_or(node))
        }
        other => Ok(other),
    })
}

/// An ORDER BY key over the query's output: an ordinal, an output column, or a select expression
/// (which stands for its output column).
fn order_key(e: &ast::Expr, plan: &LogicalPlan, items: &[Expr]) -> Result<Expr> {
    let names: Vec<String> = plan
        .schema()
        .fields()
        .iter()
        .map(|f| f.name().clone())
        .collect();
    if let Some(n) = ordinal_of(e) {
        return match n.checked_sub(1).and_then(|i| names.get(i)) {
            Some(name) => Ok(Expr::Column(Column {
                qualifier: None,
                name: name.clone(),
                span: span_of(e).into(),
            })),
            None => Err(Error::analysis(
                Rule::UnresolvedColumn,
                format!(
                    "ORDER BY position {n} is not in select list (valid range is [1, {}]).",
                    names.len()
                ),
            )
            .with_span(span_of(e))),
        };
    }
    let expr = sql_to_expr(e)?;
    if items.len() == names.len() {
        for (item, name) in items.iter().zip(&names) {
            if item.unalias() == &expr && !matches!(expr, Expr::Column(_)) {
                return Ok(Expr::Column(Column {
                    qualifier: None,
                    name: name.clone(),
                    span: expr.span().into(),
                }));
            }
        }
    }
    Ok(expr)
}
