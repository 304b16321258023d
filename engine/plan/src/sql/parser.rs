//! weir's SQL statements and their parser: a wrapper around sqlparser's `Parser` (in the style of
//! DataFusion's `DFParser`) that handles weir's DDL (`CREATE SOURCE ... WATERMARK FOR ...`,
//! `CREATE SINK ... AS`, `DROP`, `SHOW`, `EXPLAIN [CODEGEN]`) itself and hands queries and
//! expressions to sqlparser.
//!
//! Owns syntax only: it must not look names up in the catalog or build plans (that is `planner`).

use std::collections::BTreeMap;

use arrow_schema::{DataType, Field, TimeUnit};
use sqlparser::ast;
use sqlparser::dialect::Dialect;
use sqlparser::keywords::Keyword;
use sqlparser::parser::Parser;
use sqlparser::tokenizer::{Token, TokenWithSpan, Tokenizer};

use crate::error::{Error, Result, Span};
use crate::expr::parse_duration;

/// Spark SQL as weir reads it: backquoted identifiers, `"..."` and `'...'` string literals with
/// backslash escapes, and no empty projections (so `SELECT window(...)` is a function call).
#[derive(Debug, Default, Clone, Copy)]
pub struct WeirDialect;

impl Dialect for WeirDialect {
    fn is_identifier_start(&self, ch: char) -> bool {
        ch.is_ascii_alphabetic() || ch == '_'
    }

    fn is_identifier_part(&self, ch: char) -> bool {
        ch.is_ascii_alphanumeric() || ch == '_'
    }

    fn is_delimited_identifier_start(&self, ch: char) -> bool {
        ch == '`'
    }

    fn supports_string_literal_backslash_escape(&self) -> bool {
        true
    }

    fn supports_group_by_expr(&self) -> bool {
        true
    }
}

/// The kind of a catalog object named in DDL.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ObjectKind {
    /// A streaming source.
    Source,
    /// A static table.
    Table,
    /// A named query.
    View,
    /// A streaming query writing to a sink.
    Sink,
}

impl ObjectKind {
    /// Lower-case singular name (`source`).
    pub fn name(self) -> &'static str {
        match self {
            ObjectKind::Source => "source",
            ObjectKind::Table => "table",
            ObjectKind::View => "view",
            ObjectKind::Sink => "sink",
        }
    }
}

/// A column of `CREATE SOURCE` / `CREATE TABLE`.
#[derive(Debug, Clone, PartialEq)]
pub struct ColumnDefinition {
    /// Column name.
    pub name: String,
    /// Arrow type of the declared SQL type.
    pub data_type: DataType,
    /// False when declared `NOT NULL`.
    pub nullable: bool,
}

impl ColumnDefinition {
    /// The Arrow field.
    pub fn to_field(&self) -> Field {
        Field::new(&self.name, self.data_type.clone(), self.nullable)
    }
}

/// `WATERMARK FOR col AS col - INTERVAL '5' SECOND`.
#[derive(Debug, Clone, PartialEq)]
pub struct WatermarkDefinition {
    /// Event-time column.
    pub column: String,
    /// Delay, microseconds.
    pub delay_us: i64,
    /// Where the clause starts.
    pub span: Option<Span>,
}

/// `CREATE SOURCE` (streaming) or `CREATE TABLE` (static).
#[derive(Debug, Clone, PartialEq)]
pub struct CreateSource {
    /// Name.
    pub name: String,
    /// Declared columns.
    pub columns: Vec<ColumnDefinition>,
    /// Declared watermark.
    pub watermark: Option<WatermarkDefinition>,
    /// `WITH (...)` options, keys as written.
    pub options: BTreeMap<String, String>,
    /// `IF NOT EXISTS`.
    pub if_not_exists: bool,
    /// `OR REPLACE`.
    pub or_replace: bool,
    /// Where the name appears.
    pub span: Option<Span>,
}

/// `CREATE VIEW name AS query`.
#[derive(Debug, Clone, PartialEq)]
pub struct CreateView {
    /// Name.
    pub name: String,
    /// The query.
    pub query: Box<ast::Query>,
    /// `OR REPLACE`.
    pub or_replace: bool,
    /// Where the name appears.
    pub span: Option<Span>,
}

/// `CREATE SINK name WITH (...) AS query`.
#[derive(Debug, Clone, PartialEq)]
pub struct CreateSink {
    /// Name (also the default query name).
    pub name: String,
    /// Writer options (`format`, `path`, `outputMode`, `trigger`, `checkpointLocation`, ...).
    pub options: BTreeMap<String, String>,
    /// The query.
    pub query: Box<ast::Query>,
    /// `OR REPLACE`.
    pub or_replace: bool,
    /// Where the name appears.
    pub span: Option<Span>,
}

/// A weir SQL statement.
#[derive(Debug, Clone, PartialEq)]
pub enum Statement {
    /// A query.
    Query(Box<ast::Query>),
    /// `CREATE SOURCE`.
    CreateSource(CreateSource),
    /// `CREATE TABLE` (a static table).
    CreateTable(CreateSource),
    /// `CREATE VIEW`.
    CreateView(CreateView),
    /// `CREATE SINK`.
    CreateSink(CreateSink),
    /// `DROP SOURCE|TABLE|VIEW|SINK [IF EXISTS] name`.
    Drop {
        /// Kind of object.
        kind: ObjectKind,
        /// Name.
        name: String,
        /// `IF EXISTS`.
        if_exists: bool,
        /// Where the name appears.
        span: Option<Span>,
    },
    /// `SHOW SOURCES|TABLES|VIEWS|SINKS`.
    Show(ObjectKind),
    /// `EXPLAIN [CODEGEN] query`.
    Explain {
        /// `EXPLAIN CODEGEN` (adds the generated code).
        codegen: bool,
        /// The query explained.
        query: Box<ast::Query>,
    },
}

/// Parse a script of `;`-separated statements.
pub fn parse_sql(sql: &str) -> Result<Vec<Statement>> {
    WeirParser::new(sql)
        .and_then(|mut p| p.parse_statements())
        .map_err(|e| at_end_if_unplaced(e, sql))
}

/// sqlparser reports "found: EOF" without a position; place such errors just after the text.
fn at_end_if_unplaced(err: Error, sql: &str) -> Error {
    match &err {
        Error::Parse {
            message,
            span: None,
        } if message.ends_with("EOF") => {
            let line = sql.lines().count().max(1);
            let last = sql.lines().last().unwrap_or("");
            let column = last.chars().count() + 1;
            err.with_span(Some(Span::new(line as u64, column as u64)))
        }
        _ => err,
    }
}

/// Parse exactly one statement (a trailing `;` is allowed).
pub fn parse_statement(sql: &str) -> Result<Statement> {
    let mut statements = parse_sql(sql)?;
    match statements.len() {
        1 => Ok(statements.remove(0)),
        0 => Err(Error::parse(
            "Expected a statement, found nothing",
            Some(Span::new(1, 1)),
        )),
        n => Err(Error::parse(
            format!("Expected one statement, found {n}"),
            None,
        )),
    }
}

/// Parse one SQL expression (as `selectExpr` takes), e.g. `price * 2 AS doubled`.
pub fn parse_sql_expr_ast(sql: &str) -> Result<(ast::Expr, Option<String>)> {
    parse_expr_with_alias(sql).map_err(|e| at_end_if_unplaced(e, sql))
}

fn parse_expr_with_alias(sql: &str) -> Result<(ast::Expr, Option<String>)> {
    let mut p = WeirParser::new(sql)?;
    let expr = p.parser.parse_expr()?;
    let alias = if p.parser.parse_keyword(Keyword::AS) {
        Some(p.parser.parse_identifier()?.value)
    } else if let Token::Word(w) = &p.parser.peek_token().token {
        if w.keyword == Keyword::NoKeyword {
            Some(p.parser.parse_identifier()?.value)
        } else {
            None
        }
    } else {
        None
    };
    let next = p.parser.peek_token();
    if next.token != Token::EOF {
        return Err(unexpected("end of expression", &next));
    }
    Ok((expr, alias))
}

/// Maximum nesting depth accepted (deeper text gets an error, not a stack overflow).
const RECURSION_LIMIT: usize = 64;

/// Most tokens one statement may have. Operator chains (`a + b + c ...`) nest one level per
/// operator without touching sqlparser's recursion limit, so their length must be bounded too.
pub const MAX_STATEMENT_TOKENS: usize = 20_000;

fn check_statement_sizes(tokens: &[TokenWithSpan]) -> Result<()> {
    let mut count = 0usize;
    for token in tokens {
        match token.token {
            Token::SemiColon => count = 0,
            Token::Whitespace(_) => {}
            _ => {
                count += 1;
                if count > MAX_STATEMENT_TOKENS {
                    return Err(Error::parse(
                        format!(
                            "A statement has more than {MAX_STATEMENT_TOKENS} tokens; split it into several statements \
                             or views"
                        ),
                        span_of(token),
                    ));
                }
            }
        }
    }
    Ok(())
}

fn span_of(token: &TokenWithSpan) -> Option<Span> {
    Span::from_sql_location(token.span.start)
}

fn unexpected(expected: &str, found: &TokenWithSpan) -> Error {
    Error::parse(
        format!("Expected: {expected}, found: {}", found.token),
        span_of(found),
    )
}

struct WeirParser<'a> {
    parser: Parser<'a>,
}

const DIALECT: WeirDialect = WeirDialect;

impl<'a> WeirParser<'a> {
    fn new(sql: &str) -> Result<Self> {
        let tokens = Tokenizer::new(&DIALECT, sql)
            .tokenize_with_location()
            .map_err(|e| Error::parse(e.message, Span::from_sql_location(e.location)))?;
        check_statement_sizes(&tokens)?;
        let parser = Parser::new(&DIALECT)
            .with_recursion_limit(RECURSION_LIMIT)
            .with_tokens_with_locations(tokens);
        Ok(Self { parser })
    }

    fn parse_statements(&mut self) -> Result<Vec<Statement>> {
        let mut statements = Vec::new();
        loop {
            while self.parser.consume_token(&Token::SemiColon) {}
            if self.parser.peek_token().token == Token::EOF {
                return Ok(statements);
            }
            statements.push(self.parse_statement()?);
            let next = self.parser.peek_token();
            match next.token {
                Token::SemiColon | Token::EOF => {}
                _ => return Err(unexpected("end of statement", &next)),
            }
        }
    }

    fn peek_word(&self) -> Option<String> {
        match &self.parser.peek_token().token {
            Token::Word(w) if w.quote_style.is_none() => Some(w.value.to_ascii_uppercase()),
            _ => None,
        }
    }

    /// Consume the next token if it is the unquoted word `word` (case-insensitive).
    fn parse_word(&mut self, word: &str) -> bool {
        if self.peek_word().as_deref() == Some(word) {
            self.parser.next_token();
            true
        } else {
            false
        }
    }

    fn parse_statement(&mut self) -> Result<Statement> {
        match self.peek_word().as_deref() {
            Some("CREATE") => {
                self.parser.next_token();
                self.parse_create()
            }
            Some("DROP") => {
                self.parser.next_token();
                self.parse_drop()
            }
            Some("SHOW") => {
                self.parser.next_token();
                self.parse_show()
            }
            Some("EXPLAIN") => {
                self.parser.next_token();
                let codegen = self.parse_word("CODEGEN");
                let query = self.parser.parse_query()?;
                Ok(Statement::Explain { codegen, query })
            }
            Some("SELECT" | "WITH" | "VALUES") => Ok(Statement::Query(self.parser.parse_query()?)),
            _ if self.parser.peek_token().token == Token::LParen => {
                Ok(Statement::Query(self.parser.parse_query()?))
            }
            _ => Err(unexpected(
                "SELECT, CREATE, DROP, SHOW or EXPLAIN",
                &self.parser.peek_token(),
            )),
        }
    }

    fn parse_kind(&mut self, plural: bool) -> Result<ObjectKind> {
        let token = self.parser.peek_token();
        let kind = match (self.peek_word().as_deref(), plural) {
            (Some("SOURCE"), false) | (Some("SOURCES"), true) => ObjectKind::Source,
            (Some("TABLE"), false) | (Some("TABLES"), true) => ObjectKind::Table,
            (Some("VIEW"), false) | (Some("VIEWS"), true) => ObjectKind::View,
            (Some("SINK"), false) | (Some("SINKS"), true) => ObjectKind::Sink,
            _ => {
                let expected = if plural {
                    "SOURCES, TABLES, VIEWS or SINKS"
                } else {
                    "SOURCE, TABLE, VIEW or SINK"
                };
                return Err(unexpected(expected, &token));
            }
        };
        self.parser.next_token();
        Ok(kind)
    }

    fn parse_name(&mut self) -> Result<(String, Option<Span>)> {
        let token = self.parser.peek_token();
        let ident = self
            .parser
            .parse_identifier()
            .map_err(|_| unexpected("a name", &token))?;
        Ok((ident.value, Span::from_sql_location(ident.span.start)))
    }

    fn parse_create(&mut self) -> Result<Statement> {
        let or_replace = self.parser.parse_keywords(&[Keyword::OR, Keyword::REPLACE]);
        let kind = self.parse_kind(false)?;
        let if_not_exists =
            self.parser
                .parse_keywords(&[Keyword::IF, Keyword::NOT, Keyword::EXISTS]);
        let (name, span) = self.parse_name()?;
        match kind {
            ObjectKind::Source | ObjectKind::Table => {
                let (columns, watermark) = self.parse_columns()?;
                let options = if self.parser.parse_keyword(Keyword::WITH) {
                    self.parse_options()?
                } else {
                    BTreeMap::new()
                };
                let create = CreateSource {
                    name,
                    columns,
                    watermark,
                    options,
                    if_not_exists,
                    or_replace,
                    span,
                };
                Ok(if kind == ObjectKind::Source {
                    Statement::CreateSource(create)
                } else {
                    Statement::CreateTable(create)
                })
            }
            ObjectKind::View => {
                self.parser.expect_keyword(Keyword::AS)?;
                let query = self.parser.parse_query()?;
                Ok(Statement::CreateView(CreateView {
                    name,
                    query,
                    or_replace,
                    span,
                }))
            }
            ObjectKind::Sink => {
                let options = if self.parser.parse_keyword(Keyword::WITH) {
                    self.parse_options()?
                } else {
                    BTreeMap::new()
                };
                self.parser.expect_keyword(Keyword::AS)?;
                let query = self.parser.parse_query()?;
                Ok(Statement::CreateSink(CreateSink {
                    name,
                    options,
                    query,
                    or_replace,
                    span,
                }))
            }
        }
    }

    fn parse_drop(&mut self) -> Result<Statement> {
        let kind = self.parse_kind(false)?;
        let if_exists = self.parser.parse_keywords(&[Keyword::IF, Keyword::EXISTS]);
        let (name, span) = self.parse_name()?;
        Ok(Statement::Drop {
            kind,
            name,
            if_exists,
            span,
        })
    }

    fn parse_show(&mut self) -> Result<Statement> {
        Ok(Statement::Show(self.parse_kind(true)?))
    }

    /// `( col type [NOT NULL], ..., [WATERMARK FOR col AS expr] )`
    fn parse_columns(&mut self) -> Result<(Vec<ColumnDefinition>, Option<WatermarkDefinition>)> {
        let open = self.parser.peek_token();
        if !self.parser.consume_token(&Token::LParen) {
            return Err(unexpected("'(' and a column list", &open));
        }
        let mut columns = Vec::new();
        let mut watermark = None;
        loop {
            let start = self.parser.peek_token();
            if self.peek_word().as_deref() == Some("WATERMARK") {
                self.parser.next_token();
                if watermark.is_some() {
                    return Err(Error::parse(
                        "A source can declare only one WATERMARK",
                        span_of(&start),
                    ));
                }
                watermark = Some(self.parse_watermark(span_of(&start))?);
            } else {
                let def = self.parser.parse_column_def()?;
                let span = Span::from_sql_location(def.name.span.start);
                let data_type = sql_type_to_arrow(&def.data_type).map_err(|e| e.with_span(span))?;
                let mut nullable = true;
                for option in &def.options {
                    match option.option {
                        ast::ColumnOption::NotNull => nullable = false,
                        ast::ColumnOption::Null => nullable = true,
                        _ => {
                            return Err(Error::parse(
                                format!(
                                    "Column option `{}` is not supported; only NULL and NOT NULL are",
                                    option.option
                                ),
                                span,
                            ));
                        }
                    }
                }
                columns.push(ColumnDefinition {
                    name: def.name.value,
                    data_type,
                    nullable,
                });
            }
            let next = self.parser.next_token();
            match next.token {
                Token::Comma => {}
                Token::RParen => break,
                _ => return Err(unexpected("',' or ')' after a column definition", &next)),
            }
        }
        Ok((columns, watermark))
    }

    /// After `WATERMARK`: `FOR col AS col [- INTERVAL ...]`.
    fn parse_watermark(&mut self, span: Option<Span>) -> Result<WatermarkDefinition> {
        self.parser.expect_keyword(Keyword::FOR)?;
        let column = self.parser.parse_identifier()?;
        self.parser.expect_keyword(Keyword::AS)?;
        let expr_token = self.parser.peek_token();
        let expr = self.parser.parse_expr()?;
        let bad = || {
            Error::parse(
                format!(
                    "The watermark must be `{0}` or `{0} - INTERVAL '<delay>' <unit>`, found `{expr}`",
                    column.value
                ),
                span_of(&expr_token),
            )
        };
        let same_column = |e: &ast::Expr| matches!(e, ast::Expr::Identifier(id) if id.value.eq_ignore_ascii_case(&column.value));
        let delay_us = match &expr {
            e if same_column(e) => 0,
            ast::Expr::BinaryOp {
                left,
                op: ast::BinaryOperator::Minus,
                right,
            } if same_column(left) => match right.as_ref() {
                ast::Expr::Interval(interval) => {
                    interval_micros(interval).map_err(|e| e.with_span(span_of(&expr_token)))?
                }
                _ => return Err(bad()),
            },
            _ => return Err(bad()),
        };
        Ok(WatermarkDefinition {
            column: column.value,
            delay_us,
            span,
        })
    }

    /// `( key = value, ... )` where keys are identifiers (dotted allowed) or strings and values are
    /// strings, numbers, booleans or identifiers.
    fn parse_options(&mut self) -> Result<BTreeMap<String, String>> {
        let open = self.parser.next_token();
        if open.token != Token::LParen {
            return Err(unexpected("'(' and options", &open));
        }
        let mut options = BTreeMap::new();
        if self.parser.consume_token(&Token::RParen) {
            return Ok(options);
        }
        loop {
            let key_token = self.parser.next_token();
            let mut key = match &key_token.token {
                Token::Word(w) => w.value.clone(),
                Token::SingleQuotedString(s) | Token::DoubleQuotedString(s) => s.clone(),
                _ => return Err(unexpected("an option name", &key_token)),
            };
            while self.parser.consume_token(&Token::Period) {
                let part = self.parser.next_token();
                match &part.token {
                    Token::Word(w) => {
                        key.push('.');
                        key.push_str(&w.value);
                    }
                    _ => return Err(unexpected("an option name part after '.'", &part)),
                }
            }
            let eq = self.parser.next_token();
            if eq.token != Token::Eq {
                return Err(unexpected("'=' after the option name", &eq));
            }
            let value_token = self.parser.next_token();
            let value = match &value_token.token {
                Token::SingleQuotedString(s) | Token::DoubleQuotedString(s) => s.clone(),
                Token::Number(n, _) => n.clone(),
                Token::Word(w) => w.value.clone(),
                Token::Minus => match self.parser.next_token().token {
                    Token::Number(n, _) => format!("-{n}"),
                    _ => return Err(unexpected("an option value", &value_token)),
                },
                _ => {
                    return Err(unexpected(
                        "an option value (a string, number or word)",
                        &value_token,
                    ));
                }
            };
            if options.insert(key.clone(), value).is_some() {
                return Err(Error::parse(
                    format!("The option `{key}` is given twice"),
                    span_of(&key_token),
                ));
            }
            let next = self.parser.next_token();
            match next.token {
                Token::Comma => {}
                Token::RParen => return Ok(options),
                _ => return Err(unexpected("',' or ')' after an option", &next)),
            }
        }
    }
}

/// Microseconds of an `INTERVAL '5' SECOND` / `INTERVAL '5 seconds'` / `INTERVAL 5 SECONDS` literal.
pub(crate) fn interval_micros(interval: &ast::Interval) -> Result<i64> {
    let value = match interval.value.as_ref() {
        ast::Expr::Value(v) => match &v.value {
            ast::Value::SingleQuotedString(s) | ast::Value::DoubleQuotedString(s) => s.clone(),
            ast::Value::Number(n, _) => n.clone(),
            other => {
                return Err(Error::parse(
                    format!("Invalid interval value `{other}`"),
                    None,
                ));
            }
        },
        ast::Expr::UnaryOp {
            op: ast::UnaryOperator::Minus,
            expr,
        } => match expr.as_ref() {
            ast::Expr::Value(ast::ValueWithSpan {
                value: ast::Value::Number(n, _),
                ..
            }) => format!("-{n}"),
            other => {
                return Err(Error::parse(
                    format!("Invalid interval value `{other}`"),
                    None,
                ));
            }
        },
        other => {
            return Err(Error::parse(
                format!("Invalid interval value `{other}`"),
                None,
            ));
        }
    };
    if interval.last_field.is_some() {
        return Err(Error::parse(
            format!(
                "Interval ranges such as `{interval}` are not supported; write INTERVAL '<n> <unit>'"
            ),
            None,
        ));
    }
    let text = match &interval.leading_field {
        Some(field) => format!("{value} {field}"),
        None => value,
    };
    parse_duration(&text)
}

/// The Arrow type of a Spark SQL type name.
pub fn sql_type_to_arrow(data_type: &ast::DataType) -> Result<DataType> {
    use ast::DataType as S;
    Ok(match data_type {
        S::Boolean | S::Bool => DataType::Boolean,
        S::TinyInt(_) => DataType::Int8,
        S::SmallInt(_) | S::Int2(_) => DataType::Int16,
        S::Int(_) | S::Integer(_) | S::Int4(_) => DataType::Int32,
        S::BigInt(_) | S::Int8(_) | S::Int64 => DataType::Int64,
        S::Float(_) | S::Real | S::Float4 => DataType::Float32,
        S::Double(_) | S::DoublePrecision | S::Float8 | S::Float64 => DataType::Float64,
        S::Decimal(info) | S::Numeric(info) | S::Dec(info) => {
            let (p, s) = match info {
                ast::ExactNumberInfo::None => (10, 0),
                ast::ExactNumberInfo::Precision(p) => (*p, 0),
                ast::ExactNumberInfo::PrecisionAndScale(p, s) => (*p, *s),
            };
            if !(1..=38).contains(&p) || s < 0 || s > i64::try_from(p).unwrap_or(38) {
                return Err(Error::parse(
                    format!(
                        "Invalid decimal type DECIMAL({p},{s}): precision must be 1..38 and scale 0..precision"
                    ),
                    None,
                ));
            }
            DataType::Decimal128(p as u8, s as i8)
        }
        S::String(_)
        | S::Text
        | S::Varchar(_)
        | S::Char(_)
        | S::CharacterVarying(_)
        | S::Character(_) => DataType::Utf8,
        S::Binary(_) | S::Varbinary(_) | S::Bytea | S::Blob(_) => DataType::Binary,
        S::Date => DataType::Date32,
        S::Timestamp(
            _,
            ast::TimezoneInfo::None | ast::TimezoneInfo::WithTimeZone | ast::TimezoneInfo::Tz,
        ) => crate::expr::timestamp_type(),
        S::Timestamp(_, ast::TimezoneInfo::WithoutTimeZone) | S::TimestampNtz(_) => {
            DataType::Timestamp(TimeUnit::Microsecond, None)
        }
        S::Custom(name, modifiers) if modifiers.is_empty() => {
            match name.to_string().to_ascii_lowercase().as_str() {
                "long" => DataType::Int64,
                "short" => DataType::Int16,
                "byte" => DataType::Int8,
                "timestamp_ltz" => crate::expr::timestamp_type(),
                "timestamp_ntz" => DataType::Timestamp(TimeUnit::Microsecond, None),
                other => {
                    return Err(Error::parse(
                        format!("Unsupported data type `{other}`"),
                        None,
                    ));
                }
            }
        }
        S::Array(ast::ArrayElemTypeDef::AngleBracket(inner)) => DataType::List(
            std::sync::Arc::new(Field::new_list_field(sql_type_to_arrow(inner)?, true)),
        ),
        other => {
            return Err(Error::parse(
                format!("Unsupported data type `{other}`"),
                None,
            ));
        }
    })
}
