//! The kernel IR: [`KernelSpec`], its expression arena, its builder and its type checker.
//!
//! Owns the data model that the engine lowers plans into and that the interpreter and the
//! Cranelift lowering consume. It must not depend on Cranelift or on how a kernel runs.
//!
//! Typing rules (the caller inserts explicit casts; nothing is coerced implicitly):
//! - String-encoded inputs (Utf8, LargeUtf8, Utf8View, Dictionary(_, Utf8)) have logical type `Utf8`.
//! - Arithmetic needs both sides of the same numeric type, except decimals (Spark's result
//!   precision/scale rules, capped at 38) and timestamps (any time zone; the left one is kept).
//! - Comparisons need the same type (decimals of any precision/scale, timestamps of any zone).
//! - AND/OR/NOT need Boolean. CASE/COALESCE/IN need one common type.

use std::collections::HashMap;
use std::fmt;
use std::hash::{Hash, Hasher};
use std::sync::Arc;

use arrow::datatypes::{DataType, Field, Schema, SchemaRef, TimeUnit};
use serde::{Deserialize, Serialize};

use crate::error::{JitError, Result};

/// Index of an expression in a spec's arena.
pub type ExprId = u32;

/// Named group keys and aggregates of an Aggregate stage.
pub type AggregateParts<'a> = (&'a [(String, ExprId)], &'a [AggExpr]);

/// A literal value. Floats compare and hash by bit pattern so specs are canonical.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub enum Scalar {
    /// A typed NULL.
    Null(DataType),
    /// Boolean.
    Boolean(bool),
    /// Int8.
    Int8(i8),
    /// Int16.
    Int16(i16),
    /// Int32.
    Int32(i32),
    /// Int64.
    Int64(i64),
    /// UInt8.
    UInt8(u8),
    /// UInt16.
    UInt16(u16),
    /// UInt32.
    UInt32(u32),
    /// UInt64.
    UInt64(u64),
    /// Float32.
    Float32(f32),
    /// Float64.
    Float64(f64),
    /// Decimal128(unscaled value, precision, scale).
    Decimal128(i128, u8, i8),
    /// Days since 1970-01-01.
    Date32(i32),
    /// Microseconds since the epoch, with an optional time zone ("UTC").
    TimestampMicros(i64, Option<Arc<str>>),
    /// A string.
    Utf8(String),
}

impl Scalar {
    /// The Arrow type of this literal.
    pub fn data_type(&self) -> DataType {
        match self {
            Scalar::Null(t) => t.clone(),
            Scalar::Boolean(_) => DataType::Boolean,
            Scalar::Int8(_) => DataType::Int8,
            Scalar::Int16(_) => DataType::Int16,
            Scalar::Int32(_) => DataType::Int32,
            Scalar::Int64(_) => DataType::Int64,
            Scalar::UInt8(_) => DataType::UInt8,
            Scalar::UInt16(_) => DataType::UInt16,
            Scalar::UInt32(_) => DataType::UInt32,
            Scalar::UInt64(_) => DataType::UInt64,
            Scalar::Float32(_) => DataType::Float32,
            Scalar::Float64(_) => DataType::Float64,
            Scalar::Decimal128(_, p, s) => DataType::Decimal128(*p, *s),
            Scalar::Date32(_) => DataType::Date32,
            Scalar::TimestampMicros(_, tz) => {
                DataType::Timestamp(TimeUnit::Microsecond, tz.clone())
            }
            Scalar::Utf8(_) => DataType::Utf8,
        }
    }

    fn canonical_bits(&self) -> (u8, i128, Option<&str>) {
        match self {
            Scalar::Null(_) => (0, 0, None),
            Scalar::Boolean(b) => (1, *b as i128, None),
            Scalar::Int8(v) => (2, *v as i128, None),
            Scalar::Int16(v) => (3, *v as i128, None),
            Scalar::Int32(v) => (4, *v as i128, None),
            Scalar::Int64(v) => (5, *v as i128, None),
            Scalar::UInt8(v) => (6, *v as i128, None),
            Scalar::UInt16(v) => (7, *v as i128, None),
            Scalar::UInt32(v) => (8, *v as i128, None),
            Scalar::UInt64(v) => (9, *v as i128, None),
            Scalar::Float32(v) => (10, v.to_bits() as i128, None),
            Scalar::Float64(v) => (11, v.to_bits() as i128, None),
            Scalar::Decimal128(v, _, _) => (12, *v, None),
            Scalar::Date32(v) => (13, *v as i128, None),
            Scalar::TimestampMicros(v, _) => (14, *v as i128, None),
            Scalar::Utf8(s) => (15, 0, Some(s.as_str())),
        }
    }
}

impl PartialEq for Scalar {
    fn eq(&self, other: &Self) -> bool {
        self.canonical_bits() == other.canonical_bits() && self.data_type() == other.data_type()
    }
}
impl Eq for Scalar {}
impl Hash for Scalar {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.canonical_bits().hash(state);
        self.data_type().hash(state);
    }
}

/// Binary operators.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum BinaryOp {
    /// `+`
    Add,
    /// `-`
    Sub,
    /// `*`
    Mul,
    /// `/` (integer division truncates; division by zero is NULL, or an error in ANSI mode)
    Div,
    /// `%` (sign of the dividend, as in Java; by zero is NULL, or an error in ANSI mode)
    Mod,
    /// `=`
    Eq,
    /// `<>`
    NotEq,
    /// `<`
    Lt,
    /// `<=`
    LtEq,
    /// `>`
    Gt,
    /// `>=`
    GtEq,
    /// `<=>` (null-safe equality, never NULL)
    EqNullSafe,
    /// Kleene AND
    And,
    /// Kleene OR
    Or,
}

impl BinaryOp {
    /// True for `+ - * / %`.
    pub fn is_arithmetic(self) -> bool {
        matches!(
            self,
            BinaryOp::Add | BinaryOp::Sub | BinaryOp::Mul | BinaryOp::Div | BinaryOp::Mod
        )
    }
    /// True for the six comparisons and `<=>`.
    pub fn is_comparison(self) -> bool {
        matches!(
            self,
            BinaryOp::Eq
                | BinaryOp::NotEq
                | BinaryOp::Lt
                | BinaryOp::LtEq
                | BinaryOp::Gt
                | BinaryOp::GtEq
                | BinaryOp::EqNullSafe
        )
    }
}

/// Unary operators.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum UnaryOp {
    /// Kleene NOT.
    Not,
    /// Arithmetic negation (wraps on integer MIN unless ANSI).
    Neg,
    /// IS NULL.
    IsNull,
    /// IS NOT NULL.
    IsNotNull,
}

/// Scalar functions of the SQL surface. Argument types are listed on each variant; the
/// arguments marked "literal" must be literals.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum ScalarFunc {
    /// lower(Utf8) -> Utf8
    Lower,
    /// upper(Utf8) -> Utf8
    Upper,
    /// trim(Utf8) -> Utf8 (spaces)
    Trim,
    /// ltrim(Utf8) -> Utf8
    LTrim,
    /// rtrim(Utf8) -> Utf8
    RTrim,
    /// substring(Utf8, pos Int32 [, len Int32]) -> Utf8, 1-based, negative pos counts from the end (Spark).
    Substring,
    /// concat(Utf8, ...) -> Utf8, NULL if any argument is NULL.
    Concat,
    /// concat_ws(sep Utf8, Utf8, ...) -> Utf8, skips NULL arguments.
    ConcatWs,
    /// length(Utf8) -> Int32, in characters.
    Length,
    /// starts_with(Utf8, Utf8) -> Boolean
    StartsWith,
    /// ends_with(Utf8, Utf8) -> Boolean
    EndsWith,
    /// contains(Utf8, Utf8) -> Boolean
    Contains,
    /// like(Utf8, pattern literal Utf8) -> Boolean; `%`, `_`, escape `\`.
    Like,
    /// rlike(Utf8, regex literal Utf8) -> Boolean (unanchored search).
    RLike,
    /// regexp_extract(Utf8, regex literal, group literal Int32) -> Utf8 ("" when no match).
    RegexpExtract,
    /// regexp_replace(Utf8, regex literal, replacement Utf8) -> Utf8.
    RegexpReplace,
    /// year(Date32 | Timestamp) -> Int32
    Year,
    /// month(Date32 | Timestamp) -> Int32
    Month,
    /// day(Date32 | Timestamp) -> Int32
    Day,
    /// hour(Timestamp) -> Int32 (UTC)
    Hour,
    /// minute(Timestamp) -> Int32
    Minute,
    /// second(Timestamp) -> Int32
    Second,
    /// date_trunc(unit literal Utf8, Timestamp) -> Timestamp; units: year quarter month week day hour minute second millisecond microsecond.
    DateTrunc,
    /// to_timestamp(Utf8 [, Spark pattern literal Utf8]) -> Timestamp(µs, "UTC"); unparsable gives NULL.
    ToTimestamp,
    /// date_format(Timestamp | Date32, Spark pattern literal Utf8) -> Utf8
    DateFormat,
    /// abs(numeric) -> same type
    Abs,
    /// round(numeric [, scale literal Int32]) -> same type, HALF_UP.
    Round,
    /// floor(numeric) -> Int64 (Decimal(p,s) -> Decimal(p-s+1, 0))
    Floor,
    /// ceil(numeric) -> Int64 (Decimal(p,s) -> Decimal(p-s+1, 0))
    Ceil,
    /// split(Utf8, regex literal Utf8) -> List(Utf8). Interpreter only.
    Split,
}

/// One node of the expression arena.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Expr {
    /// Input column by index in the input schema.
    Column(usize),
    /// A literal.
    Literal(Scalar),
    /// A binary operation.
    Binary {
        /// Operator.
        op: BinaryOp,
        /// Left operand.
        left: ExprId,
        /// Right operand.
        right: ExprId,
    },
    /// A unary operation.
    Unary {
        /// Operator.
        op: UnaryOp,
        /// Operand.
        expr: ExprId,
    },
    /// CAST(expr AS to). With `ansi` an invalid or overflowing cast is an error, otherwise NULL.
    Cast {
        /// Operand.
        expr: ExprId,
        /// Target type.
        to: DataType,
        /// ANSI mode.
        ansi: bool,
    },
    /// A scalar function call.
    Call {
        /// Function.
        func: ScalarFunc,
        /// Arguments.
        args: Vec<ExprId>,
    },
    /// CASE WHEN c1 THEN v1 ... ELSE e END (IF is a one-branch CASE). Evaluated lazily.
    Case {
        /// (condition, value) pairs.
        branches: Vec<(ExprId, ExprId)>,
        /// ELSE value (NULL when absent).
        otherwise: Option<ExprId>,
    },
    /// COALESCE(a, b, ...), evaluated lazily left to right.
    Coalesce(Vec<ExprId>),
    /// expr [NOT] IN (list...), with SQL NULL semantics.
    InList {
        /// Probe.
        expr: ExprId,
        /// Candidates.
        list: Vec<ExprId>,
        /// NOT IN.
        negated: bool,
    },
    /// Start of the event-time window(s) containing `time`. Tumbling when `size_us == slide_us`;
    /// otherwise sliding: the pipeline emits one row per window the row falls into.
    WindowStart {
        /// A Timestamp expression.
        time: ExprId,
        /// Window length in microseconds.
        size_us: i64,
        /// Slide in microseconds.
        slide_us: i64,
        /// Start offset in microseconds.
        start_offset_us: i64,
    },
}

/// Aggregate functions. First/Last follow arrival order and keep NULL values (Spark's default).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum AggFunc {
    /// count(*)
    CountStar,
    /// count(x): non-NULL values
    Count,
    /// sum(x): Int* -> Int64 (wraps), floats -> Float64, Decimal(p,s) -> Decimal(min(38,p+10), s). NULL over no values.
    Sum,
    /// avg(x): numeric -> Float64, Decimal(p,s) -> Decimal(min(38,p+4), min(38,s+4)).
    Avg,
    /// min(x)
    Min,
    /// max(x)
    Max,
    /// first(x) by arrival order
    First,
    /// last(x) by arrival order
    Last,
}

/// One aggregate of an Aggregate stage.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct AggExpr {
    /// Output column name.
    pub name: String,
    /// Function.
    pub func: AggFunc,
    /// Argument (None only for CountStar).
    pub arg: Option<ExprId>,
}

/// A stage of the pipeline. Filters come first; at most one Project or Aggregate ends the pipeline.
/// All expressions refer to input columns.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Stage {
    /// Keep rows where the predicate is TRUE.
    Filter(ExprId),
    /// Emit named expressions.
    Project(Vec<(String, ExprId)>),
    /// Update grouped aggregation state.
    Aggregate {
        /// Group keys.
        keys: Vec<(String, ExprId)>,
        /// Aggregates.
        aggs: Vec<AggExpr>,
    },
}

/// Input column description (serialisable form of a field).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct InputColumn {
    /// Field name.
    pub name: String,
    /// Physical Arrow type.
    pub data_type: DataType,
    /// Whether the column may contain NULLs.
    pub nullable: bool,
}

/// A typed pipeline: input columns, an expression arena with the type of each node, and stages.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct KernelSpec {
    /// Input columns.
    pub inputs: Vec<InputColumn>,
    /// Expression arena (hash-consed by the builder).
    pub exprs: Vec<Expr>,
    /// Logical type of each expression (same length as `exprs`).
    pub types: Vec<DataType>,
    /// Stages.
    pub stages: Vec<Stage>,
    /// ANSI arithmetic: integer/decimal overflow and division by zero are errors (otherwise
    /// integers wrap, decimal overflow and division by zero are NULL).
    pub ansi: bool,
}

/// The shape of the pipeline's terminal stage.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PipelineKind {
    /// Filter/project: run() returns a batch.
    Map,
    /// Grouped aggregation: update() a GroupState.
    Aggregate,
}

/// Logical type of an input type: string encodings map to Utf8.
pub fn logical_type(dt: &DataType) -> Option<DataType> {
    Some(match dt {
        DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View => DataType::Utf8,
        DataType::Dictionary(k, v)
            if k.is_dictionary_key_type()
                && matches!(**v, DataType::Utf8 | DataType::LargeUtf8) =>
        {
            DataType::Utf8
        }
        DataType::Boolean
        | DataType::Int8
        | DataType::Int16
        | DataType::Int32
        | DataType::Int64
        | DataType::UInt8
        | DataType::UInt16
        | DataType::UInt32
        | DataType::UInt64
        | DataType::Float32
        | DataType::Float64
        | DataType::Date32 => dt.clone(),
        DataType::Decimal128(p, s) if *p >= 1 && *p <= 38 && *s >= 0 && (*s as u8) <= *p => {
            dt.clone()
        }
        DataType::Timestamp(TimeUnit::Microsecond, tz) => {
            DataType::Timestamp(TimeUnit::Microsecond, tz.clone())
        }
        _ => return None,
    })
}

/// Integer types.
pub fn is_integer(dt: &DataType) -> bool {
    dt.is_integer()
}
/// Float32/Float64.
pub fn is_float(dt: &DataType) -> bool {
    matches!(dt, DataType::Float32 | DataType::Float64)
}
/// Integer, float or decimal.
pub fn is_numeric(dt: &DataType) -> bool {
    is_integer(dt) || is_float(dt) || matches!(dt, DataType::Decimal128(..))
}
/// Timestamp(µs, any zone).
pub fn is_timestamp(dt: &DataType) -> bool {
    matches!(dt, DataType::Timestamp(TimeUnit::Microsecond, _))
}

/// Two types are the same for comparisons/CASE (timestamps ignore the zone, decimals unify).
fn compatible(a: &DataType, b: &DataType) -> bool {
    a == b
        || (is_timestamp(a) && is_timestamp(b))
        || (matches!(a, DataType::Decimal128(..)) && matches!(b, DataType::Decimal128(..)))
        || matches!(a, DataType::Null)
        || matches!(b, DataType::Null)
}

/// Spark's decimal type bound with precision loss allowed (DecimalPrecision.adjustPrecisionScale).
pub fn bounded_decimal(precision: i32, scale: i32) -> DataType {
    if precision <= 38 {
        DataType::Decimal128(precision.max(1) as u8, scale as i8)
    } else {
        let int_digits = precision - scale;
        let min_scale = scale.min(6);
        let adjusted = (38 - int_digits).max(min_scale);
        DataType::Decimal128(38, adjusted as i8)
    }
}

/// Result type of decimal arithmetic (Spark rules, precision loss allowed).
pub fn decimal_arith_type(op: BinaryOp, p1: u8, s1: i8, p2: u8, s2: i8) -> DataType {
    let (p1, s1, p2, s2) = (p1 as i32, s1 as i32, p2 as i32, s2 as i32);
    match op {
        BinaryOp::Add | BinaryOp::Sub => {
            let s = s1.max(s2);
            bounded_decimal(s + (p1 - s1).max(p2 - s2) + 1, s)
        }
        BinaryOp::Mul => bounded_decimal(p1 + p2 + 1, s1 + s2),
        BinaryOp::Div => {
            let s = 6.max(s1 + p2 + 1);
            bounded_decimal(p1 - s1 + s2 + s, s)
        }
        _ => {
            let s = s1.max(s2);
            bounded_decimal((p1 - s1).min(p2 - s2) + s, s)
        }
    }
}

/// Builds a [`KernelSpec`] with eager type checking and hash-consing.
#[derive(Debug)]
pub struct KernelSpecBuilder {
    spec: KernelSpec,
    interned: HashMap<Expr, ExprId>,
}

impl KernelSpec {
    /// Starts a spec over the given input schema.
    pub fn builder(input_schema: SchemaRef) -> KernelSpecBuilder {
        let inputs = input_schema
            .fields()
            .iter()
            .map(|f| InputColumn {
                name: f.name().clone(),
                data_type: f.data_type().clone(),
                nullable: f.is_nullable(),
            })
            .collect();
        KernelSpecBuilder {
            spec: KernelSpec {
                inputs,
                exprs: vec![],
                types: vec![],
                stages: vec![],
                ansi: false,
            },
            interned: HashMap::new(),
        }
    }

    /// The input schema.
    pub fn input_schema(&self) -> SchemaRef {
        Arc::new(Schema::new(
            self.inputs
                .iter()
                .map(|c| Field::new(&c.name, c.data_type.clone(), c.nullable))
                .collect::<Vec<_>>(),
        ))
    }

    /// Checks every expression's type and the stage structure.
    pub fn validate(&self) -> Result<()> {
        if self.types.len() != self.exprs.len() {
            return Err(JitError::InvalidSpec(
                "types and exprs have different lengths".into(),
            ));
        }
        for (i, c) in self.inputs.iter().enumerate() {
            if logical_type(&c.data_type).is_none() {
                return Err(JitError::InvalidSpec(format!(
                    "input column {i} '{}' has unsupported type {}; supported: Boolean, Int8-64, UInt8-64, Float32/64, Decimal128, Date32, Timestamp(µs), Utf8, LargeUtf8, Utf8View, Dictionary(_, Utf8)",
                    c.name, c.data_type
                )));
            }
        }
        for (i, e) in self.exprs.iter().enumerate() {
            let id = i as ExprId;
            let children = children(e);
            if children.iter().any(|&c| c >= id) {
                return Err(JitError::InvalidSpec(format!(
                    "expression #{id} refers to a later expression"
                )));
            }
            let t = type_of(self, id, e)?;
            if t != self.types[i] {
                return Err(self.type_error(
                    id,
                    format!(
                        "recorded type {} but the expression has type {t}",
                        self.types[i]
                    ),
                ));
            }
        }
        let check_id = |id: ExprId| -> Result<()> {
            if (id as usize) < self.exprs.len() {
                Ok(())
            } else {
                Err(JitError::InvalidSpec(format!(
                    "stage refers to missing expression #{id}"
                )))
            }
        };
        let mut terminal = false;
        let mut sliding: Option<ExprId> = None;
        for (si, st) in self.stages.iter().enumerate() {
            if terminal {
                return Err(JitError::InvalidSpec(format!(
                    "stage {si} follows a Project/Aggregate stage; put filters before it"
                )));
            }
            match st {
                Stage::Filter(e) => {
                    check_id(*e)?;
                    if self.types[*e as usize] != DataType::Boolean {
                        return Err(
                            self.type_error(*e, "a filter predicate must be Boolean".into())
                        );
                    }
                    if let Some(w) = self.sliding_window_in(*e) {
                        return Err(self
                            .type_error(w, "a sliding window cannot be used in a filter".into()));
                    }
                }
                Stage::Project(cols) => {
                    terminal = true;
                    let mut names = std::collections::HashSet::new();
                    for (n, e) in cols {
                        check_id(*e)?;
                        if !names.insert(n) {
                            return Err(JitError::InvalidSpec(format!(
                                "duplicate output column name '{n}'"
                            )));
                        }
                    }
                }
                Stage::Aggregate { keys, aggs } => {
                    terminal = true;
                    let mut names = std::collections::HashSet::new();
                    for (n, e) in keys {
                        check_id(*e)?;
                        if !names.insert(n.clone()) {
                            return Err(JitError::InvalidSpec(format!(
                                "duplicate output column name '{n}'"
                            )));
                        }
                        if matches!(self.types[*e as usize], DataType::List(_)) {
                            return Err(self.type_error(*e, "a group key cannot be a list".into()));
                        }
                    }
                    for a in aggs {
                        if !names.insert(a.name.clone()) {
                            return Err(JitError::InvalidSpec(format!(
                                "duplicate output column name '{}'",
                                a.name
                            )));
                        }
                        match (a.func, a.arg) {
                            (AggFunc::CountStar, None) => {}
                            (AggFunc::CountStar, Some(_)) => {
                                return Err(JitError::InvalidSpec(format!(
                                    "count(*) '{}' takes no argument",
                                    a.name
                                )));
                            }
                            (_, None) => {
                                return Err(JitError::InvalidSpec(format!(
                                    "aggregate '{}' needs an argument",
                                    a.name
                                )));
                            }
                            (f, Some(e)) => {
                                check_id(e)?;
                                agg_output_type(f, &self.types[e as usize])
                                    .map_err(|m| self.type_error(e, m))?;
                                if let Some(w) = self.sliding_window_in(e) {
                                    return Err(self.type_error(
                                        w,
                                        "a sliding window can only be a group key".into(),
                                    ));
                                }
                            }
                        }
                    }
                }
            }
            for root in stage_roots(st) {
                if let Some(w) = self.sliding_window_in(root) {
                    match sliding {
                        Some(prev) if prev != w => {
                            return Err(self.type_error(
                                w,
                                "a kernel may contain only one sliding window".into(),
                            ));
                        }
                        _ => sliding = Some(w),
                    }
                }
            }
        }
        Ok(())
    }

    /// A stable hash of the spec (the compile cache key).
    pub fn spec_hash(&self) -> u64 {
        let mut h = crate::hash::StableHasher::default();
        self.hash(&mut h);
        h.finish()
    }

    /// Whether run() or update() applies.
    pub fn kind(&self) -> PipelineKind {
        if self
            .stages
            .iter()
            .any(|s| matches!(s, Stage::Aggregate { .. }))
        {
            PipelineKind::Aggregate
        } else {
            PipelineKind::Map
        }
    }

    /// Filter predicates in order.
    pub fn filters(&self) -> Vec<ExprId> {
        self.stages
            .iter()
            .filter_map(|s| {
                if let Stage::Filter(e) = s {
                    Some(*e)
                } else {
                    None
                }
            })
            .collect()
    }

    /// Output columns of a Map pipeline (an implicit projection of every input column when there is no Project).
    pub fn projection(&self) -> Option<Vec<(String, ExprId)>> {
        self.stages.iter().find_map(|s| {
            if let Stage::Project(p) = s {
                Some(p.clone())
            } else {
                None
            }
        })
    }

    /// Keys and aggregates of an Aggregate pipeline.
    pub fn aggregate(&self) -> Option<AggregateParts<'_>> {
        self.stages.iter().find_map(|s| {
            if let Stage::Aggregate { keys, aggs } = s {
                Some((keys.as_slice(), aggs.as_slice()))
            } else {
                None
            }
        })
    }

    /// The (single) sliding WindowStart expression reachable from a stage, if any.
    pub fn sliding_window(&self) -> Option<ExprId> {
        self.stages
            .iter()
            .flat_map(stage_roots)
            .find_map(|r| self.sliding_window_in(r))
    }

    fn sliding_window_in(&self, root: ExprId) -> Option<ExprId> {
        let e = &self.exprs[root as usize];
        if let Expr::WindowStart {
            size_us, slide_us, ..
        } = e
            && size_us != slide_us
        {
            return Some(root);
        }
        children(e)
            .into_iter()
            .find_map(|c| self.sliding_window_in(c))
    }

    pub(crate) fn type_error(&self, id: ExprId, message: String) -> JitError {
        JitError::Type {
            expr: id,
            expr_text: self.display_expr(id),
            message,
        }
    }

    /// Renders an expression as text (for errors and reports).
    pub fn display_expr(&self, id: ExprId) -> String {
        let Some(e) = self.exprs.get(id as usize) else {
            return format!("#{id}?");
        };
        let list = |v: &[ExprId]| {
            v.iter()
                .map(|c| self.display_expr(*c))
                .collect::<Vec<_>>()
                .join(", ")
        };
        match e {
            Expr::Column(i) => match self.inputs.get(*i) {
                Some(c) => format!("{}#{i}", c.name),
                None => format!("column#{i}?"),
            },
            Expr::Literal(s) => format!("{s:?}"),
            Expr::Binary { op, left, right } => {
                format!(
                    "({} {op:?} {})",
                    self.display_expr(*left),
                    self.display_expr(*right)
                )
            }
            Expr::Unary { op, expr } => format!("{op:?}({})", self.display_expr(*expr)),
            Expr::Cast { expr, to, ansi } => {
                format!(
                    "cast({} as {to}{})",
                    self.display_expr(*expr),
                    if *ansi { ", ansi" } else { "" }
                )
            }
            Expr::Call { func, args } => format!("{func:?}({})", list(args)),
            Expr::Case {
                branches,
                otherwise,
            } => {
                let mut s = "case".to_string();
                for (c, v) in branches {
                    s += &format!(
                        " when {} then {}",
                        self.display_expr(*c),
                        self.display_expr(*v)
                    );
                }
                if let Some(o) = otherwise {
                    s += &format!(" else {}", self.display_expr(*o));
                }
                s + " end"
            }
            Expr::Coalesce(a) => format!("coalesce({})", list(a)),
            Expr::InList {
                expr,
                list: l,
                negated,
            } => {
                format!(
                    "{} {}in ({})",
                    self.display_expr(*expr),
                    if *negated { "not " } else { "" },
                    list(l)
                )
            }
            Expr::WindowStart {
                time,
                size_us,
                slide_us,
                start_offset_us,
            } => {
                format!(
                    "window_start({}, {size_us}us, {slide_us}us, {start_offset_us}us)",
                    self.display_expr(*time)
                )
            }
        }
    }
}

/// The expressions a stage evaluates directly.
pub fn stage_roots(st: &Stage) -> Vec<ExprId> {
    match st {
        Stage::Filter(e) => vec![*e],
        Stage::Project(p) => p.iter().map(|(_, e)| *e).collect(),
        Stage::Aggregate { keys, aggs } => keys
            .iter()
            .map(|(_, e)| *e)
            .chain(aggs.iter().filter_map(|a| a.arg))
            .collect(),
    }
}

/// Direct children of an expression.
pub fn children(e: &Expr) -> Vec<ExprId> {
    match e {
        Expr::Column(_) | Expr::Literal(_) => vec![],
        Expr::Binary { left, right, .. } => vec![*left, *right],
        Expr::Unary { expr, .. } | Expr::Cast { expr, .. } => vec![*expr],
        Expr::Call { args, .. } | Expr::Coalesce(args) => args.clone(),
        Expr::Case {
            branches,
            otherwise,
        } => branches
            .iter()
            .flat_map(|(c, v)| [*c, *v])
            .chain(otherwise.iter().copied())
            .collect(),
        Expr::InList { expr, list, .. } => {
            std::iter::once(*expr).chain(list.iter().copied()).collect()
        }
        Expr::WindowStart { time, .. } => vec![*time],
    }
}

/// Output type of an aggregate over an argument type, or why it is ill-typed.
pub fn agg_output_type(func: AggFunc, arg: &DataType) -> std::result::Result<DataType, String> {
    Ok(match func {
        AggFunc::CountStar | AggFunc::Count => DataType::Int64,
        AggFunc::Sum => match arg {
            t if is_integer(t) => DataType::Int64,
            t if is_float(t) => DataType::Float64,
            DataType::Decimal128(p, s) => DataType::Decimal128((*p + 10).min(38), *s),
            t => return Err(format!("sum needs a numeric argument, got {t}")),
        },
        AggFunc::Avg => match arg {
            t if is_integer(t) || is_float(t) => DataType::Float64,
            DataType::Decimal128(p, s) => DataType::Decimal128((*p + 4).min(38), (*s + 4).min(38)),
            t => return Err(format!("avg needs a numeric argument, got {t}")),
        },
        AggFunc::Min | AggFunc::Max | AggFunc::First | AggFunc::Last => {
            if matches!(arg, DataType::List(_)) {
                return Err(format!("{func:?} does not accept lists"));
            }
            arg.clone()
        }
    })
}

fn cast_supported(from: &DataType, to: &DataType) -> bool {
    let scalarish = |t: &DataType| {
        is_numeric(t)
            || is_timestamp(t)
            || matches!(
                t,
                DataType::Date32 | DataType::Utf8 | DataType::Boolean | DataType::Null
            )
    };
    if !scalarish(from) || !scalarish(to) || matches!(to, DataType::Null) {
        return false;
    }
    match (from, to) {
        (_, DataType::Utf8) | (DataType::Utf8, _) | (DataType::Null, _) => true,
        (DataType::Boolean, t) | (t, DataType::Boolean) => {
            is_numeric(t) || matches!(t, DataType::Boolean)
        }
        (DataType::Date32, t) | (t, DataType::Date32) => {
            is_timestamp(t) || matches!(t, DataType::Date32)
        }
        (a, b) if is_timestamp(a) && is_timestamp(b) => true,
        (a, b) if is_timestamp(a) || is_timestamp(b) => is_integer(a) || is_integer(b),
        _ => true,
    }
}

fn type_of(spec: &KernelSpec, id: ExprId, e: &Expr) -> Result<DataType> {
    let ty = |c: ExprId| spec.types[c as usize].clone();
    let err = |m: String| spec.type_error(id, m);
    let literal_utf8 = |c: ExprId| matches!(spec.exprs[c as usize], Expr::Literal(Scalar::Utf8(_)));
    let literal_int = |c: ExprId| matches!(spec.exprs[c as usize], Expr::Literal(Scalar::Int32(_)));
    Ok(match e {
        Expr::Column(i) => {
            let c = spec
                .inputs
                .get(*i)
                .ok_or_else(|| err(format!("input column {i} does not exist")))?;
            logical_type(&c.data_type)
                .ok_or_else(|| err(format!("unsupported input type {}", c.data_type)))?
        }
        Expr::Literal(s) => {
            let t = s.data_type();
            if let Scalar::Null(t) = s
                && !matches!(t, DataType::Null)
                && logical_type(t).as_ref() != Some(t)
            {
                return Err(err(format!("unsupported NULL literal type {t}")));
            }
            if let Scalar::Decimal128(v, p, s) = s
                && (logical_type(&t).is_none()
                    || v.unsigned_abs() >= 10u128.pow(*p as u32)
                    || *s < 0)
            {
                return Err(err(format!(
                    "decimal literal {v} does not fit Decimal128({p}, {s})"
                )));
            }
            t
        }
        Expr::Binary { op, left, right } => {
            let (l, r) = (ty(*left), ty(*right));
            match op {
                BinaryOp::And | BinaryOp::Or => {
                    if l != DataType::Boolean || r != DataType::Boolean {
                        return Err(err(format!(
                            "{op:?} needs Boolean operands, got {l} and {r}"
                        )));
                    }
                    DataType::Boolean
                }
                op if op.is_comparison() => {
                    if !compatible(&l, &r) || matches!(l, DataType::List(_)) {
                        return Err(err(format!(
                            "cannot compare {l} with {r}; cast one side first"
                        )));
                    }
                    DataType::Boolean
                }
                op => match (&l, &r) {
                    (DataType::Decimal128(p1, s1), DataType::Decimal128(p2, s2)) => {
                        decimal_arith_type(*op, *p1, *s1, *p2, *s2)
                    }
                    (a, b) if a == b && (is_integer(a) || is_float(a)) => l.clone(),
                    _ => {
                        return Err(err(format!(
                            "{op:?} needs two numeric operands of the same type, got {l} and {r}"
                        )));
                    }
                },
            }
        }
        Expr::Unary { op, expr } => {
            let t = ty(*expr);
            match op {
                UnaryOp::Not if t == DataType::Boolean => DataType::Boolean,
                UnaryOp::Not => return Err(err(format!("NOT needs Boolean, got {t}"))),
                UnaryOp::Neg if is_numeric(&t) => t,
                UnaryOp::Neg => {
                    return Err(err(format!("negation needs a numeric operand, got {t}")));
                }
                UnaryOp::IsNull | UnaryOp::IsNotNull => DataType::Boolean,
            }
        }
        Expr::Cast { expr, to, .. } => {
            let from = ty(*expr);
            if logical_type(to).as_ref() != Some(to) || !cast_supported(&from, to) {
                return Err(err(format!("unsupported cast from {from} to {to}")));
            }
            to.clone()
        }
        Expr::Call { func, args } => {
            let ts: Vec<DataType> = args.iter().map(|a| ty(*a)).collect();
            let n = ts.len();
            let all_utf8 = ts.iter().all(|t| *t == DataType::Utf8);
            let bad = || {
                err(format!(
                    "{func:?} cannot take arguments ({})",
                    ts.iter()
                        .map(|t| t.to_string())
                        .collect::<Vec<_>>()
                        .join(", ")
                ))
            };
            use ScalarFunc as F;
            match func {
                F::Lower | F::Upper | F::Trim | F::LTrim | F::RTrim if n == 1 && all_utf8 => {
                    DataType::Utf8
                }
                F::Length if n == 1 && all_utf8 => DataType::Int32,
                F::Substring
                    if (n == 2 || n == 3)
                        && ts[0] == DataType::Utf8
                        && ts[1..].iter().all(|t| *t == DataType::Int32) =>
                {
                    DataType::Utf8
                }
                F::Concat | F::ConcatWs if n >= 1 && all_utf8 => DataType::Utf8,
                F::StartsWith | F::EndsWith | F::Contains if n == 2 && all_utf8 => {
                    DataType::Boolean
                }
                F::Like | F::RLike if n == 2 && all_utf8 => {
                    if !literal_utf8(args[1]) {
                        return Err(err(format!("{func:?} needs a literal pattern")));
                    }
                    if *func == F::RLike {
                        check_regex(spec, args[1]).map_err(err)?;
                    }
                    DataType::Boolean
                }
                F::RegexpExtract
                    if n == 3
                        && ts[0] == DataType::Utf8
                        && ts[1] == DataType::Utf8
                        && ts[2] == DataType::Int32 =>
                {
                    if !literal_utf8(args[1]) || !literal_int(args[2]) {
                        return Err(err(
                            "regexp_extract needs a literal pattern and group index".into(),
                        ));
                    }
                    check_regex(spec, args[1]).map_err(err)?;
                    DataType::Utf8
                }
                F::RegexpReplace if n == 3 && all_utf8 => {
                    if !literal_utf8(args[1]) {
                        return Err(err("regexp_replace needs a literal pattern".into()));
                    }
                    check_regex(spec, args[1]).map_err(err)?;
                    DataType::Utf8
                }
                F::Split if n == 2 && all_utf8 => {
                    if !literal_utf8(args[1]) {
                        return Err(err("split needs a literal pattern".into()));
                    }
                    check_regex(spec, args[1]).map_err(err)?;
                    DataType::List(Arc::new(Field::new("item", DataType::Utf8, true)))
                }
                F::Year | F::Month | F::Day
                    if n == 1 && (ts[0] == DataType::Date32 || is_timestamp(&ts[0])) =>
                {
                    DataType::Int32
                }
                F::Hour | F::Minute | F::Second if n == 1 && is_timestamp(&ts[0]) => {
                    DataType::Int32
                }
                F::DateTrunc if n == 2 && ts[0] == DataType::Utf8 && is_timestamp(&ts[1]) => {
                    let unit = match &spec.exprs[args[0] as usize] {
                        Expr::Literal(Scalar::Utf8(u)) => u.to_ascii_lowercase(),
                        _ => return Err(err("date_trunc needs a literal unit".into())),
                    };
                    if crate::datetime::TruncUnit::parse(&unit).is_none() {
                        return Err(err(format!("unknown date_trunc unit '{unit}'")));
                    }
                    ts[1].clone()
                }
                F::ToTimestamp if (n == 1 || n == 2) && all_utf8 => {
                    if n == 2 && !literal_utf8(args[1]) {
                        return Err(err("to_timestamp needs a literal format".into()));
                    }
                    DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into()))
                }
                F::DateFormat
                    if n == 2
                        && (is_timestamp(&ts[0]) || ts[0] == DataType::Date32)
                        && ts[1] == DataType::Utf8 =>
                {
                    if !literal_utf8(args[1]) {
                        return Err(err("date_format needs a literal format".into()));
                    }
                    DataType::Utf8
                }
                F::Abs if n == 1 && is_numeric(&ts[0]) => ts[0].clone(),
                F::Round if (n == 1 || (n == 2 && literal_int(args[1]))) && is_numeric(&ts[0]) => {
                    ts[0].clone()
                }
                F::Floor | F::Ceil if n == 1 && is_numeric(&ts[0]) => match &ts[0] {
                    DataType::Decimal128(p, s) => {
                        DataType::Decimal128(((*p as i8 - *s + 1).clamp(1, 38)) as u8, 0)
                    }
                    _ => DataType::Int64,
                },
                _ => return Err(bad()),
            }
        }
        Expr::Case {
            branches,
            otherwise,
        } => {
            if branches.is_empty() {
                return Err(err("CASE needs at least one WHEN branch".into()));
            }
            let mut out: Option<DataType> = None;
            for (c, v) in branches {
                if ty(*c) != DataType::Boolean {
                    return Err(err(format!(
                        "a WHEN condition must be Boolean, got {}",
                        ty(*c)
                    )));
                }
                out = Some(unify(out, ty(*v)).map_err(err)?);
            }
            if let Some(o) = otherwise {
                out = Some(unify(out, ty(*o)).map_err(err)?);
            }
            out.unwrap_or(DataType::Null)
        }
        Expr::Coalesce(args) => {
            if args.is_empty() {
                return Err(err("COALESCE needs at least one argument".into()));
            }
            let mut out = None;
            for a in args {
                out = Some(unify(out, ty(*a)).map_err(err)?);
            }
            out.unwrap_or(DataType::Null)
        }
        Expr::InList { expr, list, .. } => {
            let t = ty(*expr);
            for c in list {
                if !compatible(&t, &ty(*c)) {
                    return Err(err(format!(
                        "IN list element of type {} does not match {t}",
                        ty(*c)
                    )));
                }
            }
            DataType::Boolean
        }
        Expr::WindowStart {
            time,
            size_us,
            slide_us,
            start_offset_us,
        } => {
            let t = ty(*time);
            if !is_timestamp(&t) {
                return Err(err(format!("window_start needs a Timestamp(µs), got {t}")));
            }
            if *size_us <= 0 || *slide_us <= 0 || slide_us > size_us {
                return Err(err(format!(
                    "window size {size_us}us and slide {slide_us}us must be positive with slide <= size"
                )));
            }
            if start_offset_us.unsigned_abs() >= *slide_us as u64 {
                return Err(err(format!(
                    "window start offset {start_offset_us}us must be smaller than the slide"
                )));
            }
            if size_us / slide_us > 1000 {
                return Err(err(
                    "a sliding window may overlap at most 1000 windows".into()
                ));
            }
            t
        }
    })
}

fn check_regex(spec: &KernelSpec, id: ExprId) -> std::result::Result<(), String> {
    if let Expr::Literal(Scalar::Utf8(p)) = &spec.exprs[id as usize] {
        regex::Regex::new(p)
            .map(|_| ())
            .map_err(|e| format!("invalid regular expression '{p}': {e}"))
    } else {
        Ok(())
    }
}

/// Common type of CASE/COALESCE branches: identical types, NULL-typed literals, timestamps of any zone.
/// Decimals must already agree (the caller casts).
fn unify(acc: Option<DataType>, t: DataType) -> std::result::Result<DataType, String> {
    match acc {
        None => Ok(t),
        Some(DataType::Null) => Ok(t),
        Some(a) if t == DataType::Null || a == t => Ok(a),
        Some(a) if is_timestamp(&a) && is_timestamp(&t) => Ok(a),
        Some(a) => Err(format!(
            "branches have different types {a} and {t}; cast them to one type"
        )),
    }
}

impl KernelSpecBuilder {
    fn push(&mut self, e: Expr) -> Result<ExprId> {
        if let Some(id) = self.interned.get(&e) {
            return Ok(*id);
        }
        let id = self.spec.exprs.len() as ExprId;
        for c in children(&e) {
            if c >= id {
                return Err(JitError::InvalidSpec(format!(
                    "expression refers to unknown expression #{c}"
                )));
            }
        }
        self.spec.exprs.push(e.clone());
        self.spec.types.push(DataType::Null);
        match type_of(&self.spec, id, &e) {
            Ok(t) => {
                self.spec.types[id as usize] = t;
                self.interned.insert(e, id);
                Ok(id)
            }
            Err(err) => {
                self.spec.exprs.pop();
                self.spec.types.pop();
                Err(err)
            }
        }
    }

    /// Sets ANSI arithmetic (overflow and division by zero are errors). Default: off.
    pub fn ansi(&mut self, ansi: bool) -> &mut Self {
        self.spec.ansi = ansi;
        self
    }
    /// Type of an expression built so far.
    pub fn type_of(&self, e: ExprId) -> Option<&DataType> {
        self.spec.types.get(e as usize)
    }
    /// Input column `idx`.
    pub fn column(&mut self, idx: usize) -> Result<ExprId> {
        self.push(Expr::Column(idx))
    }
    /// A literal.
    pub fn literal(&mut self, value: Scalar) -> Result<ExprId> {
        self.push(Expr::Literal(value))
    }
    /// A binary operation.
    pub fn binary(&mut self, op: BinaryOp, left: ExprId, right: ExprId) -> Result<ExprId> {
        self.push(Expr::Binary { op, left, right })
    }
    /// A unary operation.
    pub fn unary(&mut self, op: UnaryOp, expr: ExprId) -> Result<ExprId> {
        self.push(Expr::Unary { op, expr })
    }
    /// CAST(expr AS to).
    pub fn cast(&mut self, expr: ExprId, to: DataType, ansi: bool) -> Result<ExprId> {
        self.push(Expr::Cast { expr, to, ansi })
    }
    /// A function call.
    pub fn call(&mut self, func: ScalarFunc, args: Vec<ExprId>) -> Result<ExprId> {
        self.push(Expr::Call { func, args })
    }
    /// CASE WHEN ... END.
    pub fn case(
        &mut self,
        branches: Vec<(ExprId, ExprId)>,
        otherwise: Option<ExprId>,
    ) -> Result<ExprId> {
        self.push(Expr::Case {
            branches,
            otherwise,
        })
    }
    /// IF(cond, a, b).
    pub fn if_(&mut self, cond: ExprId, then: ExprId, otherwise: ExprId) -> Result<ExprId> {
        self.case(vec![(cond, then)], Some(otherwise))
    }
    /// COALESCE(...).
    pub fn coalesce(&mut self, args: Vec<ExprId>) -> Result<ExprId> {
        self.push(Expr::Coalesce(args))
    }
    /// expr [NOT] IN (list).
    pub fn in_list(&mut self, expr: ExprId, list: Vec<ExprId>, negated: bool) -> Result<ExprId> {
        self.push(Expr::InList {
            expr,
            list,
            negated,
        })
    }
    /// Window start (tumbling when size == slide).
    pub fn window_start(
        &mut self,
        time: ExprId,
        size_us: i64,
        slide_us: i64,
        start_offset_us: i64,
    ) -> Result<ExprId> {
        self.push(Expr::WindowStart {
            time,
            size_us,
            slide_us,
            start_offset_us,
        })
    }
    /// Adds a filter stage.
    pub fn filter(&mut self, predicate: ExprId) -> &mut Self {
        self.spec.stages.push(Stage::Filter(predicate));
        self
    }
    /// Adds the projection stage.
    pub fn project(&mut self, columns: Vec<(String, ExprId)>) -> &mut Self {
        self.spec.stages.push(Stage::Project(columns));
        self
    }
    /// Adds the aggregation stage.
    pub fn aggregate(
        &mut self,
        keys: Vec<(String, ExprId)>,
        aggs: Vec<(String, AggFunc, Option<ExprId>)>,
    ) -> &mut Self {
        let aggs = aggs
            .into_iter()
            .map(|(name, func, arg)| AggExpr { name, func, arg })
            .collect();
        self.spec.stages.push(Stage::Aggregate { keys, aggs });
        self
    }
    /// Validates and returns the spec.
    pub fn build(&self) -> Result<KernelSpec> {
        self.spec.validate()?;
        Ok(self.spec.clone())
    }
}

impl fmt::Display for KernelSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for st in &self.stages {
            match st {
                Stage::Filter(e) => writeln!(f, "filter {}", self.display_expr(*e))?,
                Stage::Project(cols) => {
                    for (n, e) in cols {
                        writeln!(f, "project {n} := {}", self.display_expr(*e))?;
                    }
                }
                Stage::Aggregate { keys, aggs } => {
                    for (n, e) in keys {
                        writeln!(f, "key {n} := {}", self.display_expr(*e))?;
                    }
                    for a in aggs {
                        let arg = a
                            .arg
                            .map(|e| self.display_expr(e))
                            .unwrap_or_else(|| "*".into());
                        writeln!(f, "agg {} := {:?}({arg})", a.name, a.func)?;
                    }
                }
            }
        }
        Ok(())
    }
}
