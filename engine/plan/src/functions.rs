//! The scalar function library's signatures: which Spark function names weir knows, how many
//! arguments each takes, how arguments are implicitly cast, and the result type.
//!
//! Owns only signatures and typing; evaluation lives in weir-jit / weir-engine. Special forms that
//! are not plain scalar calls (`window`, `session_window`, `window_time`, `current_timestamp`,
//! `explode`, aggregates) are planned by the SQL layer and the builder, not here.

use arrow_schema::{DataType, Field};
use std::sync::Arc;

use crate::analyzer::{cast_if_needed, wider_type};
use crate::error::{Error, Result, Rule};
use crate::expr::{Expr, spark_type_name, timestamp_type};

/// The kind of value an argument position takes; arguments of another type are implicitly cast.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Param {
    /// STRING (atomic values are cast to string).
    Str,
    /// INT.
    Int,
    /// BIGINT.
    Long,
    /// DOUBLE.
    Double,
    /// Any numeric type, kept as is.
    Numeric,
    /// TIMESTAMP (strings and dates are cast).
    Timestamp,
    /// BOOLEAN.
    Bool,
    /// Any type; all `Same` arguments are cast to their common type.
    Same,
}

/// How the result type is derived.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Returns {
    Str,
    Int,
    Long,
    Double,
    Bool,
    Timestamp,
    Date,
    StringArray,
    /// The (common) type of the `Same`/`Numeric` arguments.
    Common,
}

struct Signature {
    name: &'static str,
    params: &'static [Param],
    /// How many trailing `params` may be left out.
    optional: usize,
    /// Further arguments of this kind after `params` (for varargs functions).
    variadic: Option<Param>,
    returns: Returns,
}

const fn sig(
    name: &'static str,
    params: &'static [Param],
    optional: usize,
    returns: Returns,
) -> Signature {
    Signature {
        name,
        params,
        optional,
        variadic: None,
        returns,
    }
}

const fn varargs(
    name: &'static str,
    params: &'static [Param],
    variadic: Param,
    returns: Returns,
) -> Signature {
    Signature {
        name,
        params,
        optional: 0,
        variadic: Some(variadic),
        returns,
    }
}

use Param as P;
use Returns as R;

const SIGNATURES: &[Signature] = &[
    // strings
    sig("lower", &[P::Str], 0, R::Str),
    sig("lcase", &[P::Str], 0, R::Str),
    sig("upper", &[P::Str], 0, R::Str),
    sig("ucase", &[P::Str], 0, R::Str),
    sig("trim", &[P::Str], 0, R::Str),
    sig("ltrim", &[P::Str], 0, R::Str),
    sig("rtrim", &[P::Str], 0, R::Str),
    sig("initcap", &[P::Str], 0, R::Str),
    sig("reverse", &[P::Str], 0, R::Str),
    sig("substring", &[P::Str, P::Int, P::Int], 1, R::Str),
    sig("substr", &[P::Str, P::Int, P::Int], 1, R::Str),
    sig("left", &[P::Str, P::Int], 0, R::Str),
    sig("right", &[P::Str, P::Int], 0, R::Str),
    sig("length", &[P::Str], 0, R::Int),
    sig("char_length", &[P::Str], 0, R::Int),
    sig("instr", &[P::Str, P::Str], 0, R::Int),
    sig("lpad", &[P::Str, P::Int, P::Str], 1, R::Str),
    sig("rpad", &[P::Str, P::Int, P::Str], 1, R::Str),
    sig("replace", &[P::Str, P::Str, P::Str], 1, R::Str),
    sig("split", &[P::Str, P::Str, P::Int], 1, R::StringArray),
    sig("regexp_extract", &[P::Str, P::Str, P::Int], 1, R::Str),
    sig("regexp_replace", &[P::Str, P::Str, P::Str], 0, R::Str),
    sig("startswith", &[P::Str, P::Str], 0, R::Bool),
    sig("endswith", &[P::Str, P::Str], 0, R::Bool),
    sig("contains", &[P::Str, P::Str], 0, R::Bool),
    varargs("concat", &[], P::Str, R::Str),
    varargs("concat_ws", &[P::Str], P::Str, R::Str),
    // date and time
    sig("to_timestamp", &[P::Str, P::Str], 1, R::Timestamp),
    sig("to_date", &[P::Str, P::Str], 1, R::Date),
    sig("date_format", &[P::Timestamp, P::Str], 0, R::Str),
    sig("date_trunc", &[P::Str, P::Timestamp], 0, R::Timestamp),
    sig("year", &[P::Timestamp], 0, R::Int),
    sig("quarter", &[P::Timestamp], 0, R::Int),
    sig("month", &[P::Timestamp], 0, R::Int),
    sig("day", &[P::Timestamp], 0, R::Int),
    sig("dayofmonth", &[P::Timestamp], 0, R::Int),
    sig("dayofweek", &[P::Timestamp], 0, R::Int),
    sig("dayofyear", &[P::Timestamp], 0, R::Int),
    sig("hour", &[P::Timestamp], 0, R::Int),
    sig("minute", &[P::Timestamp], 0, R::Int),
    sig("second", &[P::Timestamp], 0, R::Int),
    sig("unix_timestamp", &[P::Timestamp], 0, R::Long),
    sig("unix_millis", &[P::Timestamp], 0, R::Long),
    sig("unix_micros", &[P::Timestamp], 0, R::Long),
    sig("from_unixtime", &[P::Long, P::Str], 1, R::Str),
    sig("timestamp_seconds", &[P::Long], 0, R::Timestamp),
    sig("timestamp_millis", &[P::Long], 0, R::Timestamp),
    sig("timestamp_micros", &[P::Long], 0, R::Timestamp),
    // conditional
    varargs("coalesce", &[P::Same], P::Same, R::Common),
    sig("if", &[P::Bool, P::Same, P::Same], 0, R::Common),
    sig("nvl", &[P::Same, P::Same], 0, R::Common),
    sig("ifnull", &[P::Same, P::Same], 0, R::Common),
    sig("nullif", &[P::Same, P::Same], 0, R::Common),
    varargs("greatest", &[P::Same], P::Same, R::Common),
    varargs("least", &[P::Same], P::Same, R::Common),
    // math
    sig("abs", &[P::Numeric], 0, R::Common),
    sig("round", &[P::Numeric, P::Int], 1, R::Common),
    sig("floor", &[P::Double], 0, R::Long),
    sig("ceil", &[P::Double], 0, R::Long),
    sig("ceiling", &[P::Double], 0, R::Long),
    sig("sqrt", &[P::Double], 0, R::Double),
    sig("exp", &[P::Double], 0, R::Double),
    sig("ln", &[P::Double], 0, R::Double),
    sig("log10", &[P::Double], 0, R::Double),
    sig("pow", &[P::Double, P::Double], 0, R::Double),
    sig("power", &[P::Double, P::Double], 0, R::Double),
    sig("signum", &[P::Double], 0, R::Double),
    sig("sign", &[P::Double], 0, R::Double),
    sig("pmod", &[P::Numeric, P::Numeric], 0, R::Common),
];

/// Functions Spark has that a streaming query must not use (§4.1, §4.8).
const STREAMING_FORBIDDEN: &[&str] = &["monotonically_increasing_id", "rand", "randn", "uuid"];

/// Every scalar function name weir knows, for suggestions and documentation.
pub fn scalar_function_names() -> impl Iterator<Item = &'static str> {
    SIGNATURES.iter().map(|s| s.name)
}

/// True if `name` (lower case) is a known scalar function.
pub fn is_scalar_function(name: &str) -> bool {
    SIGNATURES.iter().any(|s| s.name == name)
}

/// The error for an unknown function name, with Spark's wording and close names as suggestions.
pub fn unknown_function(name: &str) -> Error {
    if STREAMING_FORBIDDEN.contains(&name) {
        return Error::analysis(
            Rule::StreamingUnsupportedOperation,
            format!(
                "The function `{name}` is not supported by weir: it is nondeterministic, and streaming queries \
                 must be deterministic to be re-run exactly after a failure (Spark forbids it in streaming plans)."
            ),
        )
        .with_expr(format!("{name}()"));
    }
    let mut candidates: Vec<(usize, &str)> = scalar_function_names()
        .chain([
            "count",
            "sum",
            "avg",
            "min",
            "max",
            "first",
            "last",
            "approx_count_distinct",
        ])
        .chain([
            "window",
            "session_window",
            "window_time",
            "current_timestamp",
            "explode",
        ])
        .map(|c| (crate::analyzer::edit_distance(name, c), c))
        .filter(|(d, _)| *d <= 2)
        .collect();
    candidates.sort();
    let hint = match candidates.first() {
        Some((_, best)) => format!(" Did you mean `{best}`?"),
        None => String::new(),
    };
    Error::analysis(
        Rule::UnresolvedRoutine,
        format!("Cannot resolve routine `{name}` on search path [`builtin`].{hint}"),
    )
    .with_expr(format!("{name}(...)"))
}

/// Type-check a resolved scalar call, inserting implicit casts; returns the new arguments and the
/// result field type with its nullability.
pub(crate) fn check_call(
    name: &str,
    args: Vec<Expr>,
    types: &[(DataType, bool)],
) -> Result<(Vec<Expr>, DataType, bool)> {
    let Some(sig) = SIGNATURES.iter().find(|s| s.name == name) else {
        return Err(unknown_function(name));
    };
    let min = sig.params.len() - sig.optional;
    let max = if sig.variadic.is_some() {
        usize::MAX
    } else {
        sig.params.len()
    };
    if args.len() < min || args.len() > max {
        let expected = match (sig.variadic.is_some(), sig.optional) {
            (true, _) => format!("at least {min}"),
            (false, 0) => format!("{min}"),
            (false, _) => format!("between {min} and {max}"),
        };
        return Err(Error::analysis(
            Rule::WrongNumArgs,
            format!(
                "The `{name}` requires {expected} parameters but the actual number is {}.",
                args.len()
            ),
        ));
    }
    let param_of = |i: usize| {
        sig.params
            .get(i)
            .copied()
            .or(sig.variadic)
            .unwrap_or(Param::Same)
    };
    // Common type of the `Same`/`Numeric` arguments.
    let mut common: Option<DataType> = None;
    for (i, (ty, _)) in types.iter().enumerate() {
        if matches!(param_of(i), Param::Same | Param::Numeric) {
            common = Some(match common {
                None => ty.clone(),
                Some(c) => wider_type(&c, ty).ok_or_else(|| {
                    Error::analysis(
                        Rule::DatatypeMismatch,
                        format!(
                            "Cannot resolve `{name}` due to data type mismatch: input to `{name}` should all be \
                             the same type, but it's [{}, {}].",
                            spark_type_name(&c),
                            spark_type_name(ty)
                        ),
                    )
                })?,
            });
        }
    }
    let mut out = Vec::with_capacity(args.len());
    for (i, (arg, (ty, _))) in args.into_iter().zip(types).enumerate() {
        let param = param_of(i);
        let target = match param {
            Param::Str => DataType::Utf8,
            Param::Int => DataType::Int32,
            Param::Long => DataType::Int64,
            Param::Double => DataType::Float64,
            Param::Bool => DataType::Boolean,
            Param::Timestamp => timestamp_type(),
            Param::Same | Param::Numeric => common.clone().unwrap_or(DataType::Null),
        };
        if param == Param::Numeric && !(is_numeric(ty) || ty == &DataType::Null) {
            return Err(type_mismatch(name, i, "numeric", ty));
        }
        if !implicitly_castable(ty, &target) {
            return Err(type_mismatch(name, i, &spark_type_name(&target), ty));
        }
        out.push(cast_if_needed(arg, ty, &target));
    }
    let nullable = types.iter().any(|(_, n)| *n)
        || matches!(
            name,
            "if" | "nullif" | "to_timestamp" | "to_date" | "regexp_extract" | "from_unixtime"
        )
        || types.iter().any(|(t, _)| t == &DataType::Null);
    let nullable = if name == "coalesce" || name == "nvl" || name == "ifnull" {
        types.iter().all(|(_, n)| *n)
    } else {
        nullable
    };
    let data_type = match sig.returns {
        Returns::Str => DataType::Utf8,
        Returns::Int => DataType::Int32,
        Returns::Long => DataType::Int64,
        Returns::Double => DataType::Float64,
        Returns::Bool => DataType::Boolean,
        Returns::Timestamp => timestamp_type(),
        Returns::Date => DataType::Date32,
        Returns::StringArray => {
            DataType::List(Arc::new(Field::new_list_field(DataType::Utf8, true)))
        }
        Returns::Common => match (name, common) {
            ("round", Some(DataType::Decimal128(p, s))) => round_decimal_type(p, s, out.get(1)),
            (_, common) => common.unwrap_or(DataType::Null),
        },
    };
    Ok((out, data_type, nullable))
}

/// Spark's `round(decimal(p, s), d)` type: `decimal(p - s + 1 + min(s, d), min(s, d))`.
fn round_decimal_type(precision: u8, scale: i8, digits: Option<&Expr>) -> DataType {
    let digits = match digits {
        Some(Expr::Literal(crate::expr::ScalarValue::Int32(d))) => *d,
        _ => 0,
    };
    let new_scale = i32::from(scale).min(digits.max(0));
    let integral = i32::from(precision) - i32::from(scale) + 1;
    let precision = (integral + new_scale).clamp(1, 38);
    DataType::Decimal128(precision as u8, new_scale as i8)
}

fn type_mismatch(name: &str, index: usize, expected: &str, actual: &DataType) -> Error {
    Error::analysis(
        Rule::DatatypeMismatch,
        format!(
            "Cannot resolve `{name}` due to data type mismatch: parameter {} requires the \"{}\" type, \
             however it has the type \"{}\".",
            index + 1,
            expected.to_ascii_uppercase(),
            spark_type_name(actual).to_ascii_uppercase()
        ),
    )
}

/// True for the integral, decimal and floating-point types.
pub(crate) fn is_numeric(t: &DataType) -> bool {
    matches!(
        t,
        DataType::Int8
            | DataType::Int16
            | DataType::Int32
            | DataType::Int64
            | DataType::Float32
            | DataType::Float64
            | DataType::Decimal128(_, _)
    )
}

/// Spark's implicit casts for function arguments: NULL to anything, atomic values to string,
/// numbers among themselves, strings/dates to timestamps, strings to numbers.
pub(crate) fn implicitly_castable(from: &DataType, to: &DataType) -> bool {
    if from == to || from == &DataType::Null {
        return true;
    }
    let atomic = |t: &DataType| {
        is_numeric(t)
            || matches!(
                t,
                DataType::Utf8 | DataType::Boolean | DataType::Date32 | DataType::Timestamp(_, _)
            )
    };
    match to {
        DataType::Utf8 => atomic(from),
        t if is_numeric(t) => is_numeric(from) || from == &DataType::Utf8,
        DataType::Timestamp(_, _) => matches!(
            from,
            DataType::Utf8 | DataType::Date32 | DataType::Timestamp(_, _)
        ),
        DataType::Date32 => matches!(from, DataType::Utf8 | DataType::Timestamp(_, _)),
        DataType::Boolean => from == &DataType::Utf8,
        _ => false,
    }
}
