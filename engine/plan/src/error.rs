//! The crate's error type: parse, catalog and analysis errors, each with the rule it broke and, when
//! the plan came from SQL, the line and column of the offending text.
//!
//! This module owns only error reporting; it must not know about plans or SQL beyond positions.

use std::fmt;

/// Result alias for weir-plan.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// A position in SQL text: 1-based line and column (columns count characters, as sqlparser does).
#[derive(
    Debug, Clone, Copy, Default, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize,
)]
pub struct Span {
    /// Line number, starting at 1.
    pub line: u64,
    /// Column number, starting at 1.
    pub column: u64,
}

impl Span {
    /// A span at `line`, `column` (both 1-based).
    pub fn new(line: u64, column: u64) -> Self {
        Self { line, column }
    }

    /// The span of a sqlparser location, or `None` for sqlparser's "empty" location (line 0).
    pub fn from_sql_location(location: sqlparser::tokenizer::Location) -> Option<Self> {
        (location.line > 0).then(|| Self::new(location.line, location.column))
    }
}

/// Where an expression came from in SQL text, if it did.
///
/// It is metadata, not identity: two `SourceSpan`s always compare equal and hash alike, so an
/// expression built from SQL equals the same expression built with the Rust builder (no position).
#[derive(Debug, Clone, Copy, Default)]
pub struct SourceSpan(pub Option<Span>);

impl SourceSpan {
    /// No position.
    pub const NONE: SourceSpan = SourceSpan(None);

    /// The position, if known.
    pub fn get(self) -> Option<Span> {
        self.0
    }
}

impl From<Option<Span>> for SourceSpan {
    fn from(span: Option<Span>) -> Self {
        SourceSpan(span)
    }
}

impl PartialEq for SourceSpan {
    fn eq(&self, _other: &Self) -> bool {
        true
    }
}

impl Eq for SourceSpan {}

impl std::hash::Hash for SourceSpan {
    fn hash<H: std::hash::Hasher>(&self, _state: &mut H) {}
}

impl fmt::Display for Span {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "line {}, column {}", self.line, self.column)
    }
}

/// The rule an analysis error broke. Its `Display` is Spark's error class (or, for the streaming
/// checks that have none in Spark, a name in the same style).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Rule {
    /// A column name that does not exist in the input.
    UnresolvedColumn,
    /// A column name that matches several input columns.
    AmbiguousReference,
    /// A function name weir does not know.
    UnresolvedRoutine,
    /// Wrong number of arguments to a function.
    WrongNumArgs,
    /// Operand or argument types that do not fit the operator or function.
    DatatypeMismatch,
    /// A non-aggregated column outside GROUP BY.
    MissingAggregation,
    /// An aggregate function where none is allowed (WHERE, GROUP BY, nested aggregates).
    InvalidAggregate,
    /// A bad literal: interval string, number, timestamp.
    InvalidLiteral,
    /// UNION inputs with different column counts or types.
    IncompatibleUnion,
    /// A name in the catalog that does not exist or already exists.
    Catalog,
    /// A SQL construct weir does not support at all.
    UnsupportedFeature,
    /// §1.3: the output mode does not fit the query shape.
    StreamingOutputMode,
    /// §4.4: append mode with an aggregation but no watermark on a grouping key.
    StreamingWatermarkRequired,
    /// §4.8: an operation that streaming queries do not support.
    StreamingUnsupportedOperation,
    /// §4.8: distinct aggregate functions on a stream.
    StreamingDistinctAggregate,
    /// §4.8: several stateful operators outside append mode.
    StreamingMultipleStatefulOperators,
    /// §4.8: sort on a stream.
    StreamingSort,
    /// §4.8: limit/offset on a stream.
    StreamingLimit,
    /// §4.8: joins involving a stream.
    StreamingJoin,
    /// §4.8: union of a stream and a batch plan.
    StreamingUnion,
    /// §4.8: `writeStream` on a batch plan.
    StreamingRequiresStreamingSource,
}

impl Rule {
    /// The rule's name as printed in error messages.
    pub fn name(self) -> &'static str {
        match self {
            Rule::UnresolvedColumn => "UNRESOLVED_COLUMN",
            Rule::AmbiguousReference => "AMBIGUOUS_REFERENCE",
            Rule::UnresolvedRoutine => "UNRESOLVED_ROUTINE",
            Rule::WrongNumArgs => "WRONG_NUM_ARGS",
            Rule::DatatypeMismatch => "DATATYPE_MISMATCH",
            Rule::MissingAggregation => "MISSING_AGGREGATION",
            Rule::InvalidAggregate => "INVALID_AGGREGATE",
            Rule::InvalidLiteral => "INVALID_LITERAL",
            Rule::IncompatibleUnion => "INCOMPATIBLE_COLUMN_TYPE",
            Rule::Catalog => "CATALOG",
            Rule::UnsupportedFeature => "UNSUPPORTED_FEATURE",
            Rule::StreamingOutputMode => "STREAMING_OUTPUT_MODE",
            Rule::StreamingWatermarkRequired => "STREAMING_WATERMARK_REQUIRED",
            Rule::StreamingUnsupportedOperation => "STREAMING_UNSUPPORTED_OPERATION",
            Rule::StreamingDistinctAggregate => "STREAMING_DISTINCT_AGGREGATE",
            Rule::StreamingMultipleStatefulOperators => "STREAMING_MULTIPLE_STATEFUL_OPERATORS",
            Rule::StreamingSort => "STREAMING_SORT",
            Rule::StreamingLimit => "STREAMING_LIMIT",
            Rule::StreamingJoin => "STREAMING_JOIN",
            Rule::StreamingUnion => "STREAMING_UNION",
            Rule::StreamingRequiresStreamingSource => "STREAMING_REQUIRES_STREAMING_SOURCE",
        }
    }
}

impl fmt::Display for Rule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Errors from parsing, planning and analysing a query.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum Error {
    /// The SQL text is not valid syntax.
    #[error("[PARSE_SYNTAX_ERROR] {message}{}", at(span))]
    Parse {
        /// What was wrong.
        message: String,
        /// Where in the SQL text.
        span: Option<Span>,
    },
    /// The query is syntactically fine but breaks a rule of analysis.
    #[error("[{rule}] {}{}{}", sentence(message), offending(expr), at(span))]
    Analysis {
        /// The rule broken.
        rule: Rule,
        /// Spark-style message.
        message: String,
        /// The offending expression or operator, as text.
        expr: Option<String>,
        /// Where in the SQL text, when the plan came from SQL.
        span: Option<Span>,
    },
}

fn at(span: &Option<Span>) -> String {
    match span {
        Some(span) => format!(" (at {span})"),
        None => String::new(),
    }
}

fn sentence(message: &str) -> String {
    if message.ends_with(['.', '?', '!']) {
        message.to_string()
    } else {
        format!("{message}.")
    }
}

fn offending(expr: &Option<String>) -> String {
    match expr {
        Some(expr) => format!(" Offending expression: `{expr}`."),
        None => String::new(),
    }
}

impl Error {
    /// An analysis error without position.
    pub fn analysis(rule: Rule, message: impl Into<String>) -> Self {
        Error::Analysis {
            rule,
            message: message.into(),
            expr: None,
            span: None,
        }
    }

    /// A parse error at an optional position.
    pub fn parse(message: impl Into<String>, span: Option<Span>) -> Self {
        Error::Parse {
            message: message.into(),
            span,
        }
    }

    /// Attach the offending expression text (kept if one is already set).
    pub fn with_expr(mut self, text: impl fmt::Display) -> Self {
        if let Error::Analysis { expr, .. } = &mut self
            && expr.is_none()
        {
            *expr = Some(text.to_string());
        }
        self
    }

    /// Attach a source position (kept if one is already set).
    pub fn with_span(mut self, new_span: Option<Span>) -> Self {
        match &mut self {
            Error::Parse { span, .. } | Error::Analysis { span, .. } => {
                if span.is_none() {
                    *span = new_span;
                }
            }
        }
        self
    }

    /// The rule broken, for analysis errors.
    pub fn rule(&self) -> Option<Rule> {
        match self {
            Error::Analysis { rule, .. } => Some(*rule),
            Error::Parse { .. } => None,
        }
    }

    /// The source position, if known.
    pub fn span(&self) -> Option<Span> {
        match self {
            Error::Parse { span, .. } | Error::Analysis { span, .. } => *span,
        }
    }

    /// The message followed, when the error has a position inside `sql`, by the offending line and
    /// a caret under the column:
    ///
    /// ```text
    /// [UNRESOLVED_COLUMN] ... (at line 1, column 8)
    ///   |
    /// 1 | SELECT nope FROM bids
    ///   |        ^
    /// ```
    pub fn render_with_source(&self, sql: &str) -> String {
        let mut out = self.to_string();
        let Some(span) = self.span() else { return out };
        let Some(line) = usize::try_from(span.line)
            .ok()
            .and_then(|n| n.checked_sub(1))
            .and_then(|index| sql.lines().nth(index))
        else {
            return out;
        };
        let number = span.line.to_string();
        let gutter = " ".repeat(number.len());
        let caret_offset: String = line
            .chars()
            .take(usize::try_from(span.column.saturating_sub(1)).unwrap_or(usize::MAX))
            .map(|c| if c == '\t' { '\t' } else { ' ' })
            .collect();
        out.push_str(&format!(
            "\n{gutter} |\n{number} | {line}\n{gutter} | {caret_offset}^"
        ));
        out
    }
}

impl From<sqlparser::parser::ParserError> for Error {
    fn from(err: sqlparser::parser::ParserError) -> Self {
        use sqlparser::parser::ParserError;
        let text = match err {
            ParserError::TokenizerError(s) | ParserError::ParserError(s) => s,
            ParserError::RecursionLimitExceeded => {
                return Error::parse(
                    "the SQL text nests too deeply (recursion limit exceeded)",
                    None,
                );
            }
        };
        // sqlparser appends " at Line: L, Column: C" to its messages; turn it into a span.
        match text.rfind(" at Line: ") {
            Some(pos) => {
                let (message, location) = text.split_at(pos);
                let span = parse_line_column(location);
                Error::parse(message.to_string(), span)
            }
            None => Error::parse(text, None),
        }
    }
}

fn parse_line_column(text: &str) -> Option<Span> {
    let rest = text.trim_start().strip_prefix("at Line: ")?;
    let (line, column) = rest.split_once(", Column: ")?;
    let column: String = column.chars().take_while(char::is_ascii_digit).collect();
    Some(Span::new(line.trim().parse().ok()?, column.parse().ok()?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn caret_under_column() {
        let err = Error::analysis(Rule::UnresolvedColumn, "no column `nope`")
            .with_span(Some(Span::new(2, 8)));
        let text = err.render_with_source("SELECT 1\nSELECT nope FROM t");
        assert!(
            text.ends_with("2 | SELECT nope FROM t\n  |        ^"),
            "{text}"
        );
    }

    #[test]
    fn span_outside_text_renders_message_only() {
        let err = Error::parse("bad", Some(Span::new(9, 1)));
        assert_eq!(err.render_with_source("x"), err.to_string());
    }
}
