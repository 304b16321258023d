//! Logical expressions: what a query computes per row or per group, before any physical choice.
//!
//! Owns [`Expr`], its literals ([`ScalarValue`]), operators, aggregate functions, the Spark-style
//! `Display` used for plan printing and auto-generated column names, and the parsing of Spark's
//! interval strings into microseconds. It must not resolve names or types (that is `analyzer`)
//! and must not know about SQL syntax (that is `sql`).

use arrow_schema::{DataType, Field, Fields, TimeUnit};
use std::fmt;

use crate::error::{Error, Result, Rule, SourceSpan, Span};

/// The Arrow type of Spark's `TIMESTAMP`: microseconds since the epoch, UTC.
pub fn timestamp_type() -> DataType {
    DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into()))
}

/// The Arrow type of a `window`/`session_window` column: `struct<start: timestamp, end: timestamp>`.
pub fn window_struct_type() -> DataType {
    DataType::Struct(Fields::from(vec![
        Field::new("start", timestamp_type(), true),
        Field::new("end", timestamp_type(), true),
    ]))
}

/// A constant value with its Arrow type.
#[derive(Debug, Clone, PartialEq)]
pub enum ScalarValue {
    /// The untyped `NULL` literal (Arrow `Null`); a cast gives it a type.
    Null,
    /// `BOOLEAN`.
    Boolean(bool),
    /// `INT`.
    Int32(i32),
    /// `BIGINT`.
    Int64(i64),
    /// `DOUBLE`.
    Float64(f64),
    /// `DECIMAL(precision, scale)`: the unscaled value.
    Decimal128 {
        /// Unscaled value.
        value: i128,
        /// Total digits.
        precision: u8,
        /// Digits after the point.
        scale: i8,
    },
    /// `STRING`.
    Utf8(String),
    /// `DATE`: days since the epoch.
    Date32(i32),
    /// `TIMESTAMP`: microseconds since the epoch, UTC.
    TimestampMicros(i64),
    /// A day-time `INTERVAL`, in microseconds (Arrow `Duration(Microsecond)`).
    IntervalMicros(i64),
}

impl ScalarValue {
    /// The Arrow type of the value.
    pub fn data_type(&self) -> DataType {
        match self {
            ScalarValue::Null => DataType::Null,
            ScalarValue::Boolean(_) => DataType::Boolean,
            ScalarValue::Int32(_) => DataType::Int32,
            ScalarValue::Int64(_) => DataType::Int64,
            ScalarValue::Float64(_) => DataType::Float64,
            ScalarValue::Decimal128 {
                precision, scale, ..
            } => DataType::Decimal128(*precision, *scale),
            ScalarValue::Utf8(_) => DataType::Utf8,
            ScalarValue::Date32(_) => DataType::Date32,
            ScalarValue::TimestampMicros(_) => timestamp_type(),
            ScalarValue::IntervalMicros(_) => DataType::Duration(TimeUnit::Microsecond),
        }
    }

    /// True for the `NULL` literal.
    pub fn is_null(&self) -> bool {
        matches!(self, ScalarValue::Null)
    }
}

impl fmt::Display for ScalarValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ScalarValue::Null => f.write_str("NULL"),
            ScalarValue::Boolean(v) => f.write_str(if *v { "true" } else { "false" }),
            ScalarValue::Int32(v) => write!(f, "{v}"),
            ScalarValue::Int64(v) => write!(f, "{v}L"),
            ScalarValue::Float64(v) => {
                if v.is_finite() && v.fract() == 0.0 && v.abs() < 1e15 {
                    write!(f, "{v:.1}")
                } else {
                    write!(f, "{v}")
                }
            }
            ScalarValue::Decimal128 { value, scale, .. } => {
                f.write_str(&format_decimal(*value, *scale))
            }
            ScalarValue::Utf8(s) => write!(f, "'{}'", s.replace('\'', "\\'")),
            ScalarValue::Date32(days) => write!(f, "DATE '{}'", format_date(i64::from(*days))),
            ScalarValue::TimestampMicros(us) => write!(f, "TIMESTAMP '{}'", format_timestamp(*us)),
            ScalarValue::IntervalMicros(us) => write!(f, "INTERVAL '{}'", format_duration(*us)),
        }
    }
}

fn format_decimal(value: i128, scale: i8) -> String {
    if scale <= 0 {
        let zeros = "0".repeat(usize::from(scale.unsigned_abs()));
        return format!("{value}{zeros}");
    }
    let digits = value.unsigned_abs().to_string();
    let scale = usize::from(scale.unsigned_abs());
    let padded = format!("{digits:0>width$}", width = scale + 1);
    let (int, frac) = padded.split_at(padded.len() - scale);
    let sign = if value < 0 { "-" } else { "" };
    format!("{sign}{int}.{frac}")
}

/// Days since 1970-01-01 → (year, month, day) in the proleptic Gregorian calendar.
pub(crate) fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

/// (year, month, day) → days since 1970-01-01.
pub(crate) fn days_from_civil(year: i64, month: u32, day: u32) -> i64 {
    let year = if month <= 2 { year - 1 } else { year };
    let era = year.div_euclid(400);
    let yoe = year.rem_euclid(400);
    let month = i64::from(month);
    let mp = if month > 2 { month - 3 } else { month + 9 };
    let doy = (153 * mp + 2) / 5 + i64::from(day) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

fn format_date(days: i64) -> String {
    let (y, m, d) = civil_from_days(days);
    format!("{y:04}-{m:02}-{d:02}")
}

fn format_timestamp(micros: i64) -> String {
    let days = micros.div_euclid(86_400_000_000);
    let rest = micros.rem_euclid(86_400_000_000);
    let (secs, frac) = (rest / 1_000_000, rest % 1_000_000);
    let time = format!("{:02}:{:02}:{:02}", secs / 3600, secs / 60 % 60, secs % 60);
    if frac == 0 {
        format!("{} {time}", format_date(days))
    } else {
        format!("{} {time}.{frac:06}", format_date(days))
    }
}

/// A binary operator.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum BinaryOperator {
    /// `+`
    Plus,
    /// `-`
    Minus,
    /// `*`
    Multiply,
    /// `/` (always fractional, as Spark: int / int is double)
    Divide,
    /// `%`
    Modulo,
    /// `=`
    Eq,
    /// `<>` / `!=`
    NotEq,
    /// `<`
    Lt,
    /// `<=`
    LtEq,
    /// `>`
    Gt,
    /// `>=`
    GtEq,
    /// `AND`
    And,
    /// `OR`
    Or,
    /// `||` string concatenation
    StringConcat,
}

impl BinaryOperator {
    /// True for `= <> < <= > >=`.
    pub fn is_comparison(self) -> bool {
        matches!(
            self,
            Self::Eq | Self::NotEq | Self::Lt | Self::LtEq | Self::Gt | Self::GtEq
        )
    }

    /// True for `+ - * / %`.
    pub fn is_arithmetic(self) -> bool {
        matches!(
            self,
            Self::Plus | Self::Minus | Self::Multiply | Self::Divide | Self::Modulo
        )
    }

    /// True for `AND`/`OR`.
    pub fn is_logical(self) -> bool {
        matches!(self, Self::And | Self::Or)
    }

    /// The operator's SQL symbol.
    pub fn symbol(self) -> &'static str {
        match self {
            Self::Plus => "+",
            Self::Minus => "-",
            Self::Multiply => "*",
            Self::Divide => "/",
            Self::Modulo => "%",
            Self::Eq => "=",
            Self::NotEq => "<>",
            Self::Lt => "<",
            Self::LtEq => "<=",
            Self::Gt => ">",
            Self::GtEq => ">=",
            Self::And => "AND",
            Self::Or => "OR",
            Self::StringConcat => "||",
        }
    }
}

impl fmt::Display for BinaryOperator {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.symbol())
    }
}

/// An aggregate function.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AggregateFunction {
    /// `count(x)` counts non-null values; `count(*)` is planned as `count(1)`, as Spark does.
    Count,
    /// `sum(x)`
    Sum,
    /// `avg(x)` (always double, or decimal for decimal input)
    Avg,
    /// `min(x)`
    Min,
    /// `max(x)`
    Max,
    /// `first(x)`
    First,
    /// `last(x)`
    Last,
    /// `approx_count_distinct(x)`
    ApproxCountDistinct,
}

impl AggregateFunction {
    /// The function for a (lower-case or any-case) Spark name, if it is an aggregate.
    pub fn from_name(name: &str) -> Option<Self> {
        Some(match name.to_ascii_lowercase().as_str() {
            "count" => Self::Count,
            "sum" => Self::Sum,
            "avg" | "mean" => Self::Avg,
            "min" => Self::Min,
            "max" => Self::Max,
            "first" | "first_value" => Self::First,
            "last" | "last_value" => Self::Last,
            "approx_count_distinct" => Self::ApproxCountDistinct,
            _ => return None,
        })
    }

    /// The Spark name.
    pub fn name(self) -> &'static str {
        match self {
            Self::Count => "count",
            Self::Sum => "sum",
            Self::Avg => "avg",
            Self::Min => "min",
            Self::Max => "max",
            Self::First => "first",
            Self::Last => "last",
            Self::ApproxCountDistinct => "approx_count_distinct",
        }
    }
}

impl fmt::Display for AggregateFunction {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A column reference, optionally qualified by a relation name (`t.a`).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Column {
    /// Relation name (source, table, view or subquery alias), if written.
    pub qualifier: Option<String>,
    /// Column name as written (before analysis) or as in the input schema (after).
    pub name: String,
    /// Where the reference appeared in SQL text.
    pub span: SourceSpan,
}

impl Column {
    /// An unqualified column.
    pub fn new(name: impl Into<String>) -> Self {
        Self {
            qualifier: None,
            name: name.into(),
            span: SourceSpan::NONE,
        }
    }
}

impl fmt::Display for Column {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.qualifier {
            Some(q) => write!(f, "{q}.{}", self.name),
            None => f.write_str(&self.name),
        }
    }
}

/// The gap of a session window.
#[derive(Debug, Clone, PartialEq)]
pub enum SessionGap {
    /// A fixed gap in microseconds (`session_window(ts, '5 minutes')`).
    Fixed(i64),
    /// A gap computed per row (an interval- or string-typed expression).
    Dynamic(Box<Expr>),
}

/// A sort key for `ORDER BY`.
#[derive(Debug, Clone, PartialEq)]
pub struct SortExpr {
    /// What to sort by.
    pub expr: Expr,
    /// Ascending (the default) or descending.
    pub asc: bool,
    /// NULLs first (Spark's default for ascending) or last (default for descending).
    pub nulls_first: bool,
}

impl SortExpr {
    /// Ascending with Spark's default null order (nulls first).
    pub fn asc(expr: Expr) -> Self {
        Self {
            expr,
            asc: true,
            nulls_first: true,
        }
    }

    /// Descending with Spark's default null order (nulls last).
    pub fn desc(expr: Expr) -> Self {
        Self {
            expr,
            asc: false,
            nulls_first: false,
        }
    }
}

impl fmt::Display for SortExpr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let dir = if self.asc { "ASC" } else { "DESC" };
        let nulls = if self.nulls_first {
            "NULLS FIRST"
        } else {
            "NULLS LAST"
        };
        write!(f, "{} {dir} {nulls}", self.expr)
    }
}

/// A logical expression.
#[derive(Debug, Clone, PartialEq)]
pub enum Expr {
    /// A column of the input.
    Column(Column),
    /// A constant.
    Literal(ScalarValue),
    /// `left op right`.
    BinaryOp {
        /// Left operand.
        left: Box<Expr>,
        /// Operator.
        op: BinaryOperator,
        /// Right operand.
        right: Box<Expr>,
    },
    /// `NOT x`.
    Not(Box<Expr>),
    /// `-x`.
    Negative(Box<Expr>),
    /// `x IS NULL`.
    IsNull(Box<Expr>),
    /// `x IS NOT NULL`.
    IsNotNull(Box<Expr>),
    /// `x [NOT] LIKE pattern` (`ILIKE` when `case_insensitive`).
    Like {
        /// Value tested.
        expr: Box<Expr>,
        /// SQL LIKE pattern (`%`, `_`, `\` escape).
        pattern: Box<Expr>,
        /// `NOT LIKE`.
        negated: bool,
        /// `ILIKE`.
        case_insensitive: bool,
    },
    /// `x [NOT] RLIKE regex` (Java regex, unanchored find).
    RLike {
        /// Value tested.
        expr: Box<Expr>,
        /// Regular expression.
        pattern: Box<Expr>,
        /// `NOT RLIKE`.
        negated: bool,
    },
    /// `x [NOT] IN (a, b, ...)`.
    InList {
        /// Value tested.
        expr: Box<Expr>,
        /// Candidates.
        list: Vec<Expr>,
        /// `NOT IN`.
        negated: bool,
    },
    /// `x [NOT] BETWEEN low AND high` (inclusive).
    Between {
        /// Value tested.
        expr: Box<Expr>,
        /// Lower bound.
        low: Box<Expr>,
        /// Upper bound.
        high: Box<Expr>,
        /// `NOT BETWEEN`.
        negated: bool,
    },
    /// `CASE [operand] WHEN .. THEN .. [ELSE ..] END`.
    Case {
        /// The simple-CASE operand; `None` for searched CASE.
        operand: Option<Box<Expr>>,
        /// (WHEN, THEN) pairs in order.
        branches: Vec<(Expr, Expr)>,
        /// ELSE value (NULL when absent).
        else_expr: Option<Box<Expr>>,
    },
    /// `CAST(x AS type)` or `TRY_CAST` (bad values become NULL instead of an error).
    Cast {
        /// Value converted.
        expr: Box<Expr>,
        /// Target type.
        data_type: DataType,
        /// `TRY_CAST`.
        try_cast: bool,
    },
    /// A scalar function by its lower-case Spark name (see `functions`).
    ScalarFunction {
        /// Lower-case function name.
        name: String,
        /// Arguments.
        args: Vec<Expr>,
        /// Where the call appeared in SQL text.
        span: SourceSpan,
    },
    /// An aggregate function call.
    Aggregate {
        /// Function.
        func: AggregateFunction,
        /// Arguments (`count(*)` is `count(1)`).
        args: Vec<Expr>,
        /// `DISTINCT` (rejected on streams).
        distinct: bool,
        /// Where the call appeared in SQL text.
        span: SourceSpan,
    },
    /// `x AS name`.
    Alias {
        /// Aliased expression.
        expr: Box<Expr>,
        /// Output column name.
        name: String,
    },
    /// Spark's `window(time, size[, slide[, start]])`: a `struct<start, end>` tumbling or sliding window.
    Window {
        /// Event-time column (a timestamp, or a window struct whose `window_time` is used).
        time: Box<Expr>,
        /// Window length, microseconds.
        size_us: i64,
        /// Slide, microseconds (equals `size_us` for tumbling windows).
        slide_us: i64,
        /// Offset of window starts from the epoch, microseconds.
        start_us: i64,
    },
    /// Spark's `session_window(time, gap)`.
    SessionWindow {
        /// Event-time column.
        time: Box<Expr>,
        /// Static or per-row gap.
        gap: SessionGap,
    },
    /// `window_time(w)`: the window's end minus 1 microsecond.
    WindowTime(Box<Expr>),
    /// `current_timestamp()`: the batch's timestamp (fixed per micro-batch).
    CurrentTimestamp,
    /// `x.field` on a struct (for example `w.start`).
    GetField {
        /// Struct value.
        expr: Box<Expr>,
        /// Field name.
        field: String,
    },
    /// `*` or `t.*` (expanded by the analyzer).
    Wildcard {
        /// Relation name for `t.*`.
        qualifier: Option<String>,
    },
}

/// A column reference by name.
pub fn col(name: impl Into<String>) -> Expr {
    Expr::Column(Column::new(name))
}

/// A literal.
pub fn lit(value: impl Into<ScalarValue>) -> Expr {
    Expr::Literal(value.into())
}

/// `window(time, size[, slide[, start]])` from Spark interval strings.
pub fn window(time: Expr, size: &str, slide: Option<&str>, start: Option<&str>) -> Result<Expr> {
    let size_us = parse_duration(size)?;
    let slide_us = slide.map(parse_duration).transpose()?.unwrap_or(size_us);
    let start_us = start.map(parse_duration).transpose()?.unwrap_or(0);
    Expr::window(time, size_us, slide_us, start_us)
}

/// `session_window(time, gap)` with a fixed gap from a Spark interval string.
pub fn session_window(time: Expr, gap: &str) -> Result<Expr> {
    let gap_us = parse_duration(gap)?;
    if gap_us <= 0 {
        return Err(Error::analysis(
            Rule::InvalidLiteral,
            format!("the session gap '{gap}' must be positive"),
        ));
    }
    Ok(Expr::SessionWindow {
        time: Box::new(time),
        gap: SessionGap::Fixed(gap_us),
    })
}

/// An aggregate call.
pub fn aggregate(func: AggregateFunction, arg: Expr) -> Expr {
    Expr::Aggregate {
        func,
        args: vec![arg],
        distinct: false,
        span: SourceSpan::NONE,
    }
}

/// `count(*)`, planned as Spark does: `count(1)`.
pub fn count_star() -> Expr {
    Expr::Aggregate {
        func: AggregateFunction::Count,
        args: vec![lit(1i32)],
        distinct: false,
        span: SourceSpan::NONE,
    }
}

/// A scalar function call by Spark name.
pub fn func(name: &str, args: Vec<Expr>) -> Expr {
    Expr::ScalarFunction {
        name: name.to_ascii_lowercase(),
        args,
        span: SourceSpan::NONE,
    }
}

impl From<bool> for ScalarValue {
    fn from(v: bool) -> Self {
        ScalarValue::Boolean(v)
    }
}
impl From<i32> for ScalarValue {
    fn from(v: i32) -> Self {
        ScalarValue::Int32(v)
    }
}
impl From<i64> for ScalarValue {
    fn from(v: i64) -> Self {
        ScalarValue::Int64(v)
    }
}
impl From<f64> for ScalarValue {
    fn from(v: f64) -> Self {
        ScalarValue::Float64(v)
    }
}
impl From<&str> for ScalarValue {
    fn from(v: &str) -> Self {
        ScalarValue::Utf8(v.to_string())
    }
}
impl From<String> for ScalarValue {
    fn from(v: String) -> Self {
        ScalarValue::Utf8(v)
    }
}

macro_rules! binary_builders {
    ($($name:ident => $op:ident),* $(,)?) => {
        $(
            #[doc = concat!("`self ", stringify!($op), " other`.")]
            pub fn $name(self, other: Expr) -> Expr {
                Expr::BinaryOp { left: Box::new(self), op: BinaryOperator::$op, right: Box::new(other) }
            }
        )*
    };
}

macro_rules! operator_traits {
    ($($trait:ident :: $method:ident => $op:ident),* $(,)?) => {
        $(
            impl std::ops::$trait for Expr {
                type Output = Expr;

                fn $method(self, other: Expr) -> Expr {
                    Expr::BinaryOp { left: Box::new(self), op: BinaryOperator::$op, right: Box::new(other) }
                }
            }
        )*
    };
}

operator_traits!(Add::add => Plus, Sub::sub => Minus, Mul::mul => Multiply, Div::div => Divide, Rem::rem => Modulo);

impl std::ops::Neg for Expr {
    type Output = Expr;

    fn neg(self) -> Expr {
        Expr::Negative(Box::new(self))
    }
}

impl Expr {
    binary_builders!(
        eq => Eq, not_eq => NotEq, lt => Lt, lt_eq => LtEq, gt => Gt, gt_eq => GtEq,
        and => And, or => Or, concat => StringConcat,
    );

    /// `self AS name`.
    pub fn alias(self, name: impl Into<String>) -> Expr {
        Expr::Alias {
            expr: Box::new(self),
            name: name.into(),
        }
    }

    /// `CAST(self AS data_type)`.
    pub fn cast(self, data_type: DataType) -> Expr {
        Expr::Cast {
            expr: Box::new(self),
            data_type,
            try_cast: false,
        }
    }

    /// `self IS NULL`.
    pub fn is_null(self) -> Expr {
        Expr::IsNull(Box::new(self))
    }

    /// `self IS NOT NULL`.
    pub fn is_not_null(self) -> Expr {
        Expr::IsNotNull(Box::new(self))
    }

    /// `self.field`.
    pub fn field(self, field: impl Into<String>) -> Expr {
        Expr::GetField {
            expr: Box::new(self),
            field: field.into(),
        }
    }

    /// A window expression from microsecond durations, validated as Spark does.
    pub fn window(time: Expr, size_us: i64, slide_us: i64, start_us: i64) -> Result<Expr> {
        if size_us <= 0 {
            return Err(Error::analysis(
                Rule::InvalidLiteral,
                "The window duration must be greater than 0.",
            ));
        }
        if slide_us <= 0 {
            return Err(Error::analysis(
                Rule::InvalidLiteral,
                "The slide duration must be greater than 0.",
            ));
        }
        if slide_us > size_us {
            return Err(Error::analysis(
                Rule::InvalidLiteral,
                format!(
                    "The slide duration ({}) must be less than or equal to the windowDuration ({}).",
                    format_duration(slide_us),
                    format_duration(size_us)
                ),
            ));
        }
        if start_us.checked_abs().is_none_or(|s| s >= slide_us) {
            return Err(Error::analysis(
                Rule::InvalidLiteral,
                format!(
                    "The absolute value of start time ({}) must be less than the slideDuration ({}).",
                    format_duration(start_us),
                    format_duration(slide_us)
                ),
            ));
        }
        Ok(Expr::Window {
            time: Box::new(time),
            size_us,
            slide_us,
            start_us,
        })
    }

    /// The expression's direct children, in order.
    pub fn children(&self) -> Vec<&Expr> {
        match self {
            Expr::Column(_) | Expr::Literal(_) | Expr::CurrentTimestamp | Expr::Wildcard { .. } => {
                vec![]
            }
            Expr::BinaryOp { left, right, .. } => vec![left, right],
            Expr::Not(e)
            | Expr::Negative(e)
            | Expr::IsNull(e)
            | Expr::IsNotNull(e)
            | Expr::WindowTime(e)
            | Expr::Cast { expr: e, .. }
            | Expr::Alias { expr: e, .. }
            | Expr::GetField { expr: e, .. }
            | Expr::Window { time: e, .. } => vec![e],
            Expr::Like { expr, pattern, .. } | Expr::RLike { expr, pattern, .. } => {
                vec![expr, pattern]
            }
            Expr::InList { expr, list, .. } => std::iter::once(&**expr).chain(list).collect(),
            Expr::Between {
                expr, low, high, ..
            } => vec![expr, low, high],
            Expr::Case {
                operand,
                branches,
                else_expr,
            } => operand
                .iter()
                .map(|e| &**e)
                .chain(branches.iter().flat_map(|(w, t)| [w, t]))
                .chain(else_expr.iter().map(|e| &**e))
                .collect(),
            Expr::ScalarFunction { args, .. } | Expr::Aggregate { args, .. } => {
                args.iter().collect()
            }
            Expr::SessionWindow { time, gap } => match gap {
                SessionGap::Fixed(_) => vec![time],
                SessionGap::Dynamic(gap) => vec![time, gap],
            },
        }
    }

    /// Rebuild the expression with `f` applied to each direct child.
    pub fn map_children(self, mut f: impl FnMut(Expr) -> Result<Expr>) -> Result<Expr> {
        let mut bx = |e: Box<Expr>| -> Result<Box<Expr>> { Ok(Box::new(f(*e)?)) };
        Ok(match self {
            e @ (Expr::Column(_)
            | Expr::Literal(_)
            | Expr::CurrentTimestamp
            | Expr::Wildcard { .. }) => e,
            Expr::BinaryOp { left, op, right } => Expr::BinaryOp {
                left: bx(left)?,
                op,
                right: bx(right)?,
            },
            Expr::Not(e) => Expr::Not(bx(e)?),
            Expr::Negative(e) => Expr::Negative(bx(e)?),
            Expr::IsNull(e) => Expr::IsNull(bx(e)?),
            Expr::IsNotNull(e) => Expr::IsNotNull(bx(e)?),
            Expr::WindowTime(e) => Expr::WindowTime(bx(e)?),
            Expr::Cast {
                expr,
                data_type,
                try_cast,
            } => Expr::Cast {
                expr: bx(expr)?,
                data_type,
                try_cast,
            },
            Expr::Alias { expr, name } => Expr::Alias {
                expr: bx(expr)?,
                name,
            },
            Expr::GetField { expr, field } => Expr::GetField {
                expr: bx(expr)?,
                field,
            },
            Expr::Window {
                time,
                size_us,
                slide_us,
                start_us,
            } => Expr::Window {
                time: bx(time)?,
                size_us,
                slide_us,
                start_us,
            },
            Expr::Like {
                expr,
                pattern,
                negated,
                case_insensitive,
            } => Expr::Like {
                expr: bx(expr)?,
                pattern: bx(pattern)?,
                negated,
                case_insensitive,
            },
            Expr::RLike {
                expr,
                pattern,
                negated,
            } => Expr::RLike {
                expr: bx(expr)?,
                pattern: bx(pattern)?,
                negated,
            },
            Expr::InList {
                expr,
                list,
                negated,
            } => {
                let expr = bx(expr)?;
                let list = list.into_iter().map(&mut f).collect::<Result<_>>()?;
                Expr::InList {
                    expr,
                    list,
                    negated,
                }
            }
            Expr::Between {
                expr,
                low,
                high,
                negated,
            } => Expr::Between {
                expr: bx(expr)?,
                low: bx(low)?,
                high: bx(high)?,
                negated,
            },
            Expr::Case {
                operand,
                branches,
                else_expr,
            } => {
                let operand = operand.map(&mut bx).transpose()?;
                let branches = branches
                    .into_iter()
                    .map(|(w, t)| Ok((f(w)?, f(t)?)))
                    .collect::<Result<_>>()?;
                let else_expr = else_expr
                    .map(|e| Ok::<_, Error>(Box::new(f(*e)?)))
                    .transpose()?;
                Expr::Case {
                    operand,
                    branches,
                    else_expr,
                }
            }
            Expr::ScalarFunction { name, args, span } => Expr::ScalarFunction {
                name,
                args: args.into_iter().map(&mut f).collect::<Result<_>>()?,
                span,
            },
            Expr::Aggregate {
                func,
                args,
                distinct,
                span,
            } => Expr::Aggregate {
                func,
                args: args.into_iter().map(&mut f).collect::<Result<_>>()?,
                distinct,
                span,
            },
            Expr::SessionWindow { time, gap } => {
                let time = bx(time)?;
                let gap = match gap {
                    SessionGap::Fixed(us) => SessionGap::Fixed(us),
                    SessionGap::Dynamic(g) => SessionGap::Dynamic(bx(g)?),
                };
                Expr::SessionWindow { time, gap }
            }
        })
    }

    /// Rewrite bottom-up: children first, then `f` on the rebuilt node.
    #[recursive::recursive]
    pub fn transform_up(self, f: &mut impl FnMut(Expr) -> Result<Expr>) -> Result<Expr> {
        let rebuilt = self.map_children(|child| child.transform_up(f))?;
        f(rebuilt)
    }

    /// True if `pred` holds for this expression or any descendant.
    #[recursive::recursive]
    pub fn any(&self, pred: &mut impl FnMut(&Expr) -> bool) -> bool {
        pred(self) || self.children().into_iter().any(|c| c.any(pred))
    }

    /// True if the expression contains an aggregate function call.
    pub fn contains_aggregate(&self) -> bool {
        self.any(&mut |e| matches!(e, Expr::Aggregate { .. }))
    }

    /// The columns the expression reads (duplicates removed, in first-use order).
    pub fn columns(&self) -> Vec<&Column> {
        let mut out: Vec<&Column> = Vec::new();
        self.collect_columns(&mut out);
        out
    }

    #[recursive::recursive]
    fn collect_columns<'a>(&'a self, out: &mut Vec<&'a Column>) {
        if let Expr::Column(c) = self {
            if !out
                .iter()
                .any(|o| o.name == c.name && o.qualifier == c.qualifier)
            {
                out.push(c);
            }
            return;
        }
        for child in self.children() {
            child.collect_columns(out);
        }
    }

    /// The first source position found in the expression (its own, or a descendant's).
    #[recursive::recursive]
    pub fn span(&self) -> Option<Span> {
        match self {
            Expr::Column(c) => c.span.get(),
            Expr::ScalarFunction {
                span: SourceSpan(Some(s)),
                ..
            }
            | Expr::Aggregate {
                span: SourceSpan(Some(s)),
                ..
            } => Some(*s),
            _ => self.children().into_iter().find_map(Expr::span),
        }
    }

    /// The expression without a top-level alias.
    pub fn unalias(&self) -> &Expr {
        match self {
            Expr::Alias { expr, .. } => expr.unalias(),
            e => e,
        }
    }

    /// The name of the column this expression produces, as Spark names it: the alias, the column
    /// name, `window`/`session_window` for windows, else the expression text.
    pub fn output_name(&self) -> String {
        match self {
            Expr::Alias { name, .. } => name.clone(),
            Expr::Column(c) => c.name.clone(),
            Expr::GetField { field, .. } => field.clone(),
            Expr::Window { .. } => "window".to_string(),
            Expr::SessionWindow { .. } => "session_window".to_string(),
            other => other.to_string(),
        }
    }
}

impl fmt::Display for Expr {
    #[recursive::recursive]
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Expr::Column(c) => write!(f, "{c}"),
            Expr::Literal(v) => write!(f, "{v}"),
            Expr::BinaryOp { left, op, right } => write!(f, "({left} {op} {right})"),
            Expr::Not(e) => write!(f, "(NOT {e})"),
            Expr::Negative(e) => write!(f, "(- {e})"),
            Expr::IsNull(e) => write!(f, "({e} IS NULL)"),
            Expr::IsNotNull(e) => write!(f, "({e} IS NOT NULL)"),
            Expr::Like {
                expr,
                pattern,
                negated,
                case_insensitive,
            } => {
                let not = if *negated { "NOT " } else { "" };
                let op = if *case_insensitive { "ILIKE" } else { "LIKE" };
                write!(f, "({expr} {not}{op} {pattern})")
            }
            Expr::RLike {
                expr,
                pattern,
                negated,
            } => {
                let not = if *negated { "NOT " } else { "" };
                write!(f, "({expr} {not}RLIKE {pattern})")
            }
            Expr::InList {
                expr,
                list,
                negated,
            } => {
                let not = if *negated { "NOT " } else { "" };
                write!(f, "({expr} {not}IN ({}))", join(list))
            }
            Expr::Between {
                expr,
                low,
                high,
                negated,
            } => {
                let not = if *negated { "NOT " } else { "" };
                write!(f, "({expr} {not}BETWEEN {low} AND {high})")
            }
            Expr::Case {
                operand,
                branches,
                else_expr,
            } => {
                f.write_str("CASE")?;
                if let Some(op) = operand {
                    write!(f, " {op}")?;
                }
                for (when, then) in branches {
                    write!(f, " WHEN {when} THEN {then}")?;
                }
                if let Some(e) = else_expr {
                    write!(f, " ELSE {e}")?;
                }
                f.write_str(" END")
            }
            Expr::Cast {
                expr,
                data_type,
                try_cast,
            } => {
                let name = if *try_cast { "TRY_CAST" } else { "CAST" };
                write!(f, "{name}({expr} AS {})", spark_type_name(data_type))
            }
            Expr::ScalarFunction { name, args, .. } => write!(f, "{name}({})", join(args)),
            Expr::Aggregate {
                func,
                args,
                distinct,
                ..
            } => {
                let d = if *distinct { "DISTINCT " } else { "" };
                write!(f, "{func}({d}{})", join(args))
            }
            Expr::Alias { expr, name } => write!(f, "{expr} AS {name}"),
            Expr::Window {
                time,
                size_us,
                slide_us,
                start_us,
            } => {
                write!(f, "window({time}, {}", format_duration(*size_us))?;
                if slide_us != size_us || *start_us != 0 {
                    write!(f, ", {}", format_duration(*slide_us))?;
                }
                if *start_us != 0 {
                    write!(f, ", {}", format_duration(*start_us))?;
                }
                f.write_str(")")
            }
            Expr::SessionWindow { time, gap } => match gap {
                SessionGap::Fixed(us) => {
                    write!(f, "session_window({time}, {})", format_duration(*us))
                }
                SessionGap::Dynamic(g) => write!(f, "session_window({time}, {g})"),
            },
            Expr::WindowTime(e) => write!(f, "window_time({e})"),
            Expr::CurrentTimestamp => f.write_str("current_timestamp()"),
            Expr::GetField { expr, field } => write!(f, "{expr}.{field}"),
            Expr::Wildcard { qualifier: Some(q) } => write!(f, "{q}.*"),
            Expr::Wildcard { qualifier: None } => f.write_str("*"),
        }
    }
}

fn join(exprs: &[Expr]) -> String {
    exprs
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join(", ")
}

/// Spark SQL's name of an Arrow type (`bigint`, `string`, `decimal(10,2)`, `struct<start:timestamp,...>`).
pub fn spark_type_name(data_type: &DataType) -> String {
    match data_type {
        DataType::Null => "void".into(),
        DataType::Boolean => "boolean".into(),
        DataType::Int8 => "tinyint".into(),
        DataType::Int16 => "smallint".into(),
        DataType::Int32 => "int".into(),
        DataType::Int64 => "bigint".into(),
        DataType::Float32 => "float".into(),
        DataType::Float64 => "double".into(),
        DataType::Decimal128(p, s) => format!("decimal({p},{s})"),
        DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View => "string".into(),
        DataType::Binary | DataType::LargeBinary => "binary".into(),
        DataType::Date32 => "date".into(),
        DataType::Timestamp(_, Some(_)) => "timestamp".into(),
        DataType::Timestamp(_, None) => "timestamp_ntz".into(),
        DataType::Duration(_) => "interval day to second".into(),
        DataType::List(item) | DataType::LargeList(item) => {
            format!("array<{}>", spark_type_name(item.data_type()))
        }
        DataType::Struct(fields) => {
            let inner: Vec<String> = fields
                .iter()
                .map(|f| format!("{}:{}", f.name(), spark_type_name(f.data_type())))
                .collect();
            format!("struct<{}>", inner.join(","))
        }
        other => format!("{other}"),
    }
}

/// Format microseconds as a Spark-style interval string, using the largest unit that divides it.
pub fn format_duration(micros: i64) -> String {
    const UNITS: [(i64, &str); 6] = [
        (86_400_000_000, "day"),
        (3_600_000_000, "hour"),
        (60_000_000, "minute"),
        (1_000_000, "second"),
        (1_000, "millisecond"),
        (1, "microsecond"),
    ];
    if micros == 0 {
        return "0 seconds".to_string();
    }
    for (unit, name) in UNITS {
        if micros % unit == 0 {
            let n = micros / unit;
            let plural = if n.abs() == 1 { "" } else { "s" };
            return format!("{n} {name}{plural}");
        }
    }
    format!("{micros} microseconds")
}

/// Parse a Spark interval string into microseconds: `'10 seconds'`, `'1 minute'`, `'1 hour 30 minutes'`,
/// `'INTERVAL 5 SECONDS'`, `'500 ms'`. Month and year units are rejected (a window or watermark delay
/// must be a fixed length), as are empty, negative-overflowing or unknown units.
pub fn parse_duration(text: &str) -> Result<i64> {
    let bad = |why: &str| {
        Error::analysis(
            Rule::InvalidLiteral,
            format!(
                "Cannot parse the interval string '{text}': {why}. Write it like '10 seconds' or '1 hour 30 minutes'."
            ),
        )
    };
    let mut tokens: Vec<&str> = text.split_whitespace().collect();
    if tokens
        .first()
        .is_some_and(|t| t.eq_ignore_ascii_case("interval"))
    {
        tokens.remove(0);
    }
    if tokens.is_empty() {
        return Err(bad("it is empty"));
    }
    let mut total: i64 = 0;
    let mut i = 0;
    while i < tokens.len() {
        let (number, unit) = match split_number_unit(tokens[i]) {
            Some((n, u)) if !u.is_empty() => (n, u.to_string()),
            Some((n, _)) => {
                let unit = tokens
                    .get(i + 1)
                    .ok_or_else(|| bad("a number has no unit"))?;
                i += 1;
                (n, unit.to_string())
            }
            None => return Err(bad(&format!("'{}' is not a number", tokens[i]))),
        };
        i += 1;
        let unit = unit.trim_matches('\'').to_ascii_lowercase();
        let per_unit: i64 = match unit.as_str() {
            "microsecond" | "microseconds" | "us" => 1,
            "millisecond" | "milliseconds" | "ms" => 1_000,
            "second" | "seconds" | "sec" | "secs" | "s" => 1_000_000,
            "minute" | "minutes" | "min" | "mins" | "m" => 60_000_000,
            "hour" | "hours" | "h" => 3_600_000_000,
            "day" | "days" | "d" => 86_400_000_000,
            "week" | "weeks" => 7 * 86_400_000_000,
            "month" | "months" | "year" | "years" => {
                return Err(bad("months and years have no fixed length; use days"));
            }
            other => return Err(bad(&format!("unknown unit '{other}'"))),
        };
        let micros =
            mul_decimal(number, per_unit).ok_or_else(|| bad("the value is out of range"))?;
        total = total
            .checked_add(micros)
            .ok_or_else(|| bad("the value is out of range"))?;
    }
    Ok(total)
}

/// Split `"10"`, `"10s"`, `"1.5"` into a number and a (possibly empty) unit suffix.
fn split_number_unit(token: &str) -> Option<(&str, &str)> {
    let token = token.trim_matches('\'');
    let end = token
        .char_indices()
        .find(|(i, c)| !(c.is_ascii_digit() || *c == '.' || (*i == 0 && (*c == '-' || *c == '+'))))
        .map_or(token.len(), |(i, _)| i);
    let number = &token[..end];
    if number.is_empty() || !number.chars().any(|c| c.is_ascii_digit()) {
        return None;
    }
    Some((number, &token[end..]))
}

/// `number * unit` for a decimal number string, exact to the microsecond.
fn mul_decimal(number: &str, unit: i64) -> Option<i64> {
    let (negative, digits) = match number.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, number.strip_prefix('+').unwrap_or(number)),
    };
    let (int, frac) = digits.split_once('.').unwrap_or((digits, ""));
    if frac.contains('.') {
        return None;
    }
    let int: i64 = if int.is_empty() { 0 } else { int.parse().ok()? };
    let mut value = int.checked_mul(unit)?;
    let mut scale = unit;
    for digit in frac.chars() {
        scale /= 10;
        let d = i64::from(digit.to_digit(10)?);
        value = value.checked_add(d.checked_mul(scale)?)?;
    }
    Some(if negative { -value } else { value })
}

/// Parse `YYYY-MM-DD[ HH:MM:SS[.ffffff]]` (also with `T`, and an optional trailing `Z`) as UTC micros.
pub fn parse_timestamp_micros(text: &str) -> Option<i64> {
    let text = text.trim().trim_end_matches('Z');
    let (date, time) = match text.split_once([' ', 'T']) {
        Some((d, t)) => (d, Some(t)),
        None => (text, None),
    };
    let days = parse_date_days(date)?;
    let mut micros = days.checked_mul(86_400_000_000)?;
    if let Some(time) = time {
        let mut parts = time.splitn(3, ':');
        let h: i64 = parts.next()?.parse().ok()?;
        let m: i64 = parts.next()?.parse().ok()?;
        let sec = parts.next().unwrap_or("0");
        let (s, frac) = sec.split_once('.').unwrap_or((sec, ""));
        let s: i64 = s.parse().ok()?;
        if !(0..24).contains(&h) || !(0..60).contains(&m) || !(0..60).contains(&s) || frac.len() > 6
        {
            return None;
        }
        let frac_us: i64 = if frac.is_empty() {
            0
        } else {
            format!("{frac:0<6}").parse().ok()?
        };
        micros = micros.checked_add(((h * 60 + m) * 60 + s) * 1_000_000 + frac_us)?;
    }
    Some(micros)
}

/// Parse `YYYY-MM-DD` as days since the epoch.
pub fn parse_date_days(text: &str) -> Option<i64> {
    let mut parts = text.trim().splitn(3, '-');
    let y: i64 = parts.next()?.parse().ok()?;
    let m: u32 = parts.next()?.parse().ok()?;
    let d: u32 = parts.next()?.parse().ok()?;
    if !(1..=12).contains(&m) || d == 0 || !(0..=9999).contains(&y) {
        return None;
    }
    let leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
    let days_in_month = [
        31,
        if leap { 29 } else { 28 },
        31,
        30,
        31,
        30,
        31,
        31,
        30,
        31,
        30,
        31,
    ];
    if d > days_in_month[(m - 1) as usize] {
        return None;
    }
    Some(days_from_civil(y, m, d))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_spark_interval_strings() {
        assert_eq!(parse_duration("10 seconds").unwrap(), 10_000_000);
        assert_eq!(parse_duration("1 minute").unwrap(), 60_000_000);
        assert_eq!(parse_duration("INTERVAL 5 SECONDS").unwrap(), 5_000_000);
        assert_eq!(parse_duration("1 hour 30 minutes").unwrap(), 5_400_000_000);
        assert_eq!(parse_duration("1.5 seconds").unwrap(), 1_500_000);
        assert_eq!(parse_duration("500ms").unwrap(), 500_000);
        assert!(parse_duration("1 month").is_err());
        assert!(parse_duration("").is_err());
        assert!(parse_duration("ten seconds").is_err());
        assert!(parse_duration("99999999999999999 days").is_err());
    }

    #[test]
    fn formats_durations_with_largest_unit() {
        assert_eq!(format_duration(10_000_000), "10 seconds");
        assert_eq!(format_duration(60_000_000), "1 minute");
        assert_eq!(format_duration(1_500_000), "1500 milliseconds");
    }

    #[test]
    fn window_validation() {
        assert!(window(col("ts"), "10 seconds", Some("20 seconds"), None).is_err());
        assert!(
            window(
                col("ts"),
                "10 seconds",
                Some("5 seconds"),
                Some("5 seconds")
            )
            .is_err()
        );
        let w = window(col("ts"), "10 seconds", Some("5 seconds"), None).unwrap();
        assert_eq!(w.to_string(), "window(ts, 10 seconds, 5 seconds)");
    }

    #[test]
    fn timestamps_round_trip() {
        let us = parse_timestamp_micros("2024-02-29 12:34:56.5").unwrap();
        assert_eq!(format_timestamp(us), "2024-02-29 12:34:56.500000");
        assert!(parse_timestamp_micros("2023-02-29").is_none());
    }
}
