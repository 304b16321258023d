//! Lowering of resolved logical expressions (weir-plan) into weir-jit's kernel IR.
//!
//! Owns the mapping from Spark-level expressions to `KernelSpec` expressions: column binding
//! (only the columns an expression uses become kernel inputs; struct columns are flattened to
//! `name.field` inputs), Spark's implicit numeric widening where the IR needs explicit casts,
//! function-name binding, and per-batch constants (`current_timestamp()`), which become an extra
//! input column filled for each batch. It does not run kernels and holds no state.

use std::sync::Arc;

use arrow::array::{Array, ArrayRef, RecordBatch, StructArray, TimestampMicrosecondArray};
use arrow::datatypes::{DataType, Field, Schema, SchemaRef, TimeUnit};
use weir_jit::{BinaryOp, ExprId, KernelSpecBuilder, Scalar, ScalarFunc, UnaryOp};
use weir_plan::expr::{BinaryOperator, Expr, ScalarValue};

use crate::error::{Error, Result};

/// Name of the virtual input column that carries the batch timestamp.
pub const CURRENT_TIMESTAMP_COLUMN: &str = "__current_timestamp";

/// The columns a kernel reads, in kernel-input order, and how to build them from a batch of
/// the plan node's input.
#[derive(Clone, Debug, Default)]
pub struct KernelInputs {
    /// (kernel input name, source) in kernel-input order.
    columns: Vec<(String, InputSource)>,
}

#[derive(Clone, Debug)]
enum InputSource {
    /// Column `index` of the node's input.
    Column(usize),
    /// Field `field` of the struct column `index`.
    StructField(usize, usize),
    /// The batch timestamp, as a constant column.
    BatchTimestamp,
}

impl KernelInputs {
    /// The kernel's input schema, given the node's input schema.
    pub fn schema(&self, input: &Schema) -> SchemaRef {
        let fields: Vec<Field> = self
            .columns
            .iter()
            .map(|(name, src)| match src {
                InputSource::Column(i) => {
                    let f = input.field(*i);
                    Field::new(name, f.data_type().clone(), f.is_nullable())
                }
                InputSource::StructField(i, j) => match input.field(*i).data_type() {
                    DataType::Struct(children) => {
                        Field::new(name, children[*j].data_type().clone(), true)
                    }
                    other => Field::new(name, other.clone(), true),
                },
                InputSource::BatchTimestamp => Field::new(name, timestamp_type(), false),
            })
            .collect();
        Arc::new(Schema::new(fields))
    }

    /// Builds the kernel's input batch from a batch of the node's input.
    pub fn project(
        &self,
        batch: &RecordBatch,
        kernel_schema: &SchemaRef,
        batch_ts_us: i64,
    ) -> Result<RecordBatch> {
        let n = batch.num_rows();
        let mut arrays: Vec<ArrayRef> = Vec::with_capacity(self.columns.len());
        for (_, src) in &self.columns {
            arrays.push(match src {
                InputSource::Column(i) => batch.column(*i).clone(),
                InputSource::StructField(i, j) => {
                    let s = batch
                        .column(*i)
                        .as_any()
                        .downcast_ref::<StructArray>()
                        .ok_or_else(|| {
                            Error::Internal("struct input column is not a StructArray".into())
                        })?;
                    let child = s.column(*j).clone();
                    match s.nulls() {
                        // A null struct makes its fields null too.
                        Some(nulls) if nulls.null_count() > 0 => {
                            let combined =
                                arrow::buffer::NullBuffer::union(Some(nulls), child.nulls());
                            arrow::array::make_array(
                                child.to_data().into_builder().nulls(combined).build()?,
                            )
                        }
                        _ => child,
                    }
                }
                InputSource::BatchTimestamp => Arc::new(
                    TimestampMicrosecondArray::from(vec![batch_ts_us; n]).with_timezone("UTC"),
                ),
            });
        }
        let options = arrow::array::RecordBatchOptions::new().with_row_count(Some(n));
        Ok(RecordBatch::try_new_with_options(
            kernel_schema.clone(),
            arrays,
            &options,
        )?)
    }

    /// The kernel-input index of the column named `name`, if the kernel reads it.
    pub fn position(&self, name: &str) -> Option<usize> {
        self.columns.iter().position(|(n, _)| n == name)
    }

    /// Number of kernel inputs.
    pub fn len(&self) -> usize {
        self.columns.len()
    }

    /// True when the kernel reads no column.
    pub fn is_empty(&self) -> bool {
        self.columns.is_empty()
    }

    fn index_of(&mut self, name: &str, src: InputSource) -> usize {
        if let Some(i) = self.columns.iter().position(|(n, _)| n == name) {
            return i;
        }
        self.columns.push((name.to_string(), src));
        self.columns.len() - 1
    }
}

/// Spark's `TIMESTAMP` type.
pub fn timestamp_type() -> DataType {
    DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into()))
}

/// First pass: collects the kernel inputs an expression needs (so the builder can be created
/// over exactly those columns).
pub fn collect_inputs(expr: &Expr, input: &Schema, inputs: &mut KernelInputs) -> Result<()> {
    match expr {
        Expr::Column(c) => {
            let i = column_index(input, &c.name)?;
            inputs.index_of(&c.name, InputSource::Column(i));
        }
        Expr::GetField { expr, field } => {
            if let Expr::Column(c) = expr.as_ref() {
                let i = column_index(input, &c.name)?;
                if let DataType::Struct(children) = input.field(i).data_type()
                    && let Some(j) = children.iter().position(|f| f.name() == field)
                {
                    inputs.index_of(
                        &format!("{}.{}", c.name, field),
                        InputSource::StructField(i, j),
                    );
                    return Ok(());
                }
                return Err(Error::Unsupported(format!(
                    "field '{field}' of column '{}' does not exist",
                    c.name
                )));
            }
            collect_inputs(expr, input, inputs)?;
        }
        Expr::WindowTime(inner) => {
            let get_end = Expr::GetField {
                expr: inner.clone(),
                field: "end".into(),
            };
            collect_inputs(&get_end, input, inputs)?;
        }
        Expr::CurrentTimestamp => {
            inputs.index_of(CURRENT_TIMESTAMP_COLUMN, InputSource::BatchTimestamp);
        }
        other => {
            for child in children(other) {
                collect_inputs(child, input, inputs)?;
            }
        }
    }
    Ok(())
}

/// The direct children of an expression.
pub fn children(e: &Expr) -> Vec<&Expr> {
    match e {
        Expr::Column(_) | Expr::Literal(_) | Expr::CurrentTimestamp | Expr::Wildcard { .. } => {
            vec![]
        }
        Expr::BinaryOp { left, right, .. } => vec![left, right],
        Expr::Not(x)
        | Expr::Negative(x)
        | Expr::IsNull(x)
        | Expr::IsNotNull(x)
        | Expr::WindowTime(x) => vec![x],
        Expr::Like { expr, pattern, .. } | Expr::RLike { expr, pattern, .. } => vec![expr, pattern],
        Expr::InList { expr, list, .. } => std::iter::once(expr.as_ref()).chain(list).collect(),
        Expr::Between {
            expr, low, high, ..
        } => vec![expr, low, high],
        Expr::Case {
            operand,
            branches,
            else_expr,
        } => operand
            .iter()
            .map(|b| b.as_ref())
            .chain(branches.iter().flat_map(|(w, t)| [w, t]))
            .chain(else_expr.iter().map(|b| b.as_ref()))
            .collect(),
        Expr::Cast { expr, .. } | Expr::Alias { expr, .. } | Expr::GetField { expr, .. } => {
            vec![expr]
        }
        Expr::ScalarFunction { args, .. } | Expr::Aggregate { args, .. } => args.iter().collect(),
        Expr::Window { time, .. } => vec![time],
        Expr::SessionWindow { time, gap } => match gap {
            weir_plan::expr::SessionGap::Fixed(_) => vec![time],
            weir_plan::expr::SessionGap::Dynamic(g) => vec![time, g],
        },
    }
}

fn column_index(schema: &Schema, name: &str) -> Result<usize> {
    schema
        .index_of(name)
        .or_else(|_| {
            schema
                .fields()
                .iter()
                .position(|f| f.name().eq_ignore_ascii_case(name))
                .ok_or(())
        })
        .map_err(|_| {
            let names: Vec<&str> = schema.fields().iter().map(|f| f.name().as_str()).collect();
            Error::Internal(format!(
                "column '{name}' is not among the input columns [{}] of a resolved plan",
                names.join(", ")
            ))
        })
}

/// Second pass: lowers an expression into the builder, whose input schema is
/// `inputs.schema(input)`.
pub struct ExprLowering<'a> {
    /// The spec under construction.
    pub builder: &'a mut KernelSpecBuilder,
    /// Kernel inputs (from [`collect_inputs`]).
    pub inputs: &'a KernelInputs,
    /// ANSI mode for casts (Spark 4 default: on).
    pub ansi: bool,
}

impl ExprLowering<'_> {
    fn input(&mut self, name: &str) -> Result<ExprId> {
        let i = self
            .inputs
            .columns
            .iter()
            .position(|(n, _)| n == name)
            .ok_or_else(|| Error::Internal(format!("kernel input '{name}' was not collected")))?;
        Ok(self.builder.column(i)?)
    }

    fn ty(&self, id: ExprId) -> DataType {
        self.builder.type_of(id).cloned().unwrap_or(DataType::Null)
    }

    fn cast_to(&mut self, id: ExprId, to: &DataType) -> Result<ExprId> {
        if &self.ty(id) == to {
            return Ok(id);
        }
        Ok(self.builder.cast(id, to.clone(), false)?)
    }

    /// Lowers `e` and returns its id in the spec.
    pub fn lower(&mut self, e: &Expr) -> Result<ExprId> {
        match e {
            Expr::Column(c) => self.input(&c.name),
            Expr::Literal(v) => Ok(self.builder.literal(scalar(v)?)?),
            Expr::Alias { expr, .. } => self.lower(expr),
            Expr::BinaryOp { left, op, right } => {
                let l = self.lower(left)?;
                let r = self.lower(right)?;
                self.binary(*op, l, r)
            }
            Expr::Not(x) => {
                let x = self.lower(x)?;
                Ok(self.builder.unary(UnaryOp::Not, x)?)
            }
            Expr::Negative(x) => {
                let x = self.lower(x)?;
                Ok(self.builder.unary(UnaryOp::Neg, x)?)
            }
            Expr::IsNull(x) => {
                let x = self.lower(x)?;
                Ok(self.builder.unary(UnaryOp::IsNull, x)?)
            }
            Expr::IsNotNull(x) => {
                let x = self.lower(x)?;
                Ok(self.builder.unary(UnaryOp::IsNotNull, x)?)
            }
            Expr::Like {
                expr,
                pattern,
                negated,
                case_insensitive,
            } => {
                let mut x = self.lower(expr)?;
                let mut p = self.lower(pattern)?;
                if *case_insensitive {
                    x = self.builder.call(ScalarFunc::Lower, vec![x])?;
                    p = self.builder.call(ScalarFunc::Lower, vec![p])?;
                }
                let m = self.builder.call(ScalarFunc::Like, vec![x, p])?;
                self.maybe_not(m, *negated)
            }
            Expr::RLike {
                expr,
                pattern,
                negated,
            } => {
                let x = self.lower(expr)?;
                let p = self.lower(pattern)?;
                let m = self.builder.call(ScalarFunc::RLike, vec![x, p])?;
                self.maybe_not(m, *negated)
            }
            Expr::InList {
                expr,
                list,
                negated,
            } => {
                let x = self.lower(expr)?;
                let mut items = Vec::with_capacity(list.len());
                for item in list {
                    let v = self.lower(item)?;
                    items.push(v);
                }
                let common = items
                    .iter()
                    .fold(self.ty(x), |acc, id| common_type(&acc, &self.ty(*id)));
                let x = self.cast_to(x, &common)?;
                let items = items
                    .into_iter()
                    .map(|id| self.cast_to(id, &common))
                    .collect::<Result<Vec<_>>>()?;
                Ok(self.builder.in_list(x, items, *negated)?)
            }
            Expr::Between {
                expr,
                low,
                high,
                negated,
            } => {
                let x = self.lower(expr)?;
                let lo = self.lower(low)?;
                let hi = self.lower(high)?;
                let ge = self.binary(BinaryOperator::GtEq, x, lo)?;
                let le = self.binary(BinaryOperator::LtEq, x, hi)?;
                let both = self.builder.binary(BinaryOp::And, ge, le)?;
                self.maybe_not(both, *negated)
            }
            Expr::Case {
                operand,
                branches,
                else_expr,
            } => {
                let op = operand.as_ref().map(|o| self.lower(o)).transpose()?;
                let mut lowered = Vec::with_capacity(branches.len());
                for (when, then) in branches {
                    let w = self.lower(when)?;
                    let w = match op {
                        Some(o) => self.binary(BinaryOperator::Eq, o, w)?,
                        None => w,
                    };
                    let t = self.lower(then)?;
                    lowered.push((w, t));
                }
                let otherwise = else_expr.as_ref().map(|e| self.lower(e)).transpose()?;
                let common = lowered
                    .iter()
                    .map(|(_, t)| self.ty(*t))
                    .chain(otherwise.map(|o| self.ty(o)))
                    .fold(DataType::Null, |a, b| common_type(&a, &b));
                let lowered = lowered
                    .into_iter()
                    .map(|(w, t)| Ok((w, self.cast_to(t, &common)?)))
                    .collect::<Result<Vec<_>>>()?;
                let otherwise = otherwise.map(|o| self.cast_to(o, &common)).transpose()?;
                Ok(self.builder.case(lowered, otherwise)?)
            }
            Expr::Cast {
                expr,
                data_type,
                try_cast,
            } => {
                let x = self.lower(expr)?;
                Ok(self
                    .builder
                    .cast(x, data_type.clone(), self.ansi && !*try_cast)?)
            }
            Expr::ScalarFunction { name, args, .. } => self.function(name, args),
            Expr::GetField { expr, field } => match expr.as_ref() {
                Expr::Column(c) => self.input(&format!("{}.{}", c.name, field)),
                other => Err(Error::Unsupported(format!(
                    "field access on the computed value {other} is not supported yet; select the struct column first"
                ))),
            },
            Expr::WindowTime(inner) => match inner.as_ref() {
                Expr::Column(c) => {
                    // window_time(w) = w.end - 1 microsecond.
                    let end = self.input(&format!("{}.end", c.name))?;
                    let as_int = self.builder.cast(end, DataType::Int64, false)?;
                    let one = self.builder.literal(Scalar::Int64(1))?;
                    let minus = self.builder.binary(BinaryOp::Sub, as_int, one)?;
                    Ok(self.builder.cast(minus, timestamp_type(), false)?)
                }
                other => Err(Error::Unsupported(format!(
                    "window_time() needs a window column, found {other}"
                ))),
            },
            Expr::CurrentTimestamp => self.input(CURRENT_TIMESTAMP_COLUMN),
            Expr::Window { .. } | Expr::SessionWindow { .. } => Err(Error::Unsupported(format!(
                "{e} can only be used as a grouping expression of an aggregation"
            ))),
            Expr::Aggregate { .. } => Err(Error::Unsupported(format!(
                "the aggregate {e} is not allowed here"
            ))),
            Expr::Wildcard { .. } => Err(Error::Internal("unexpanded * in a resolved plan".into())),
        }
    }

    fn maybe_not(&mut self, id: ExprId, negated: bool) -> Result<ExprId> {
        if negated {
            Ok(self.builder.unary(UnaryOp::Not, id)?)
        } else {
            Ok(id)
        }
    }

    fn binary(&mut self, op: BinaryOperator, l: ExprId, r: ExprId) -> Result<ExprId> {
        let (lt, rt) = (self.ty(l), self.ty(r));
        let jop = match op {
            BinaryOperator::Plus => BinaryOp::Add,
            BinaryOperator::Minus => BinaryOp::Sub,
            BinaryOperator::Multiply => BinaryOp::Mul,
            BinaryOperator::Divide => BinaryOp::Div,
            BinaryOperator::Modulo => BinaryOp::Mod,
            BinaryOperator::Eq => BinaryOp::Eq,
            BinaryOperator::NotEq => BinaryOp::NotEq,
            BinaryOperator::Lt => BinaryOp::Lt,
            BinaryOperator::LtEq => BinaryOp::LtEq,
            BinaryOperator::Gt => BinaryOp::Gt,
            BinaryOperator::GtEq => BinaryOp::GtEq,
            BinaryOperator::And => BinaryOp::And,
            BinaryOperator::Or => BinaryOp::Or,
            BinaryOperator::StringConcat => {
                let l = self.cast_to(l, &DataType::Utf8)?;
                let r = self.cast_to(r, &DataType::Utf8)?;
                return Ok(self.builder.call(ScalarFunc::Concat, vec![l, r])?);
            }
        };
        let (l, r) = if matches!(jop, BinaryOp::And | BinaryOp::Or) {
            (l, r)
        } else if jop == BinaryOp::Div && !is_decimal(&lt) && !is_decimal(&rt) {
            // Spark: `/` is fractional; integer operands divide as doubles.
            (
                self.cast_to(l, &DataType::Float64)?,
                self.cast_to(r, &DataType::Float64)?,
            )
        } else if is_decimal(&lt) && is_decimal(&rt) {
            (l, r)
        } else {
            let common = common_type(&lt, &rt);
            (self.cast_to(l, &common)?, self.cast_to(r, &common)?)
        };
        Ok(self.builder.binary(jop, l, r)?)
    }

    fn function(&mut self, name: &str, args: &[Expr]) -> Result<ExprId> {
        let mut ids = Vec::with_capacity(args.len());
        for a in args {
            ids.push(self.lower(a)?);
        }
        let lname = name.to_ascii_lowercase();
        match lname.as_str() {
            "coalesce" | "nvl" | "ifnull" => {
                let common = ids
                    .iter()
                    .fold(DataType::Null, |a, id| common_type(&a, &self.ty(*id)));
                let ids = ids
                    .into_iter()
                    .map(|id| self.cast_to(id, &common))
                    .collect::<Result<Vec<_>>>()?;
                return Ok(self.builder.coalesce(ids)?);
            }
            "if" | "iff" if ids.len() == 3 => {
                let common = common_type(&self.ty(ids[1]), &self.ty(ids[2]));
                let t = self.cast_to(ids[1], &common)?;
                let f = self.cast_to(ids[2], &common)?;
                return Ok(self.builder.if_(ids[0], t, f)?);
            }
            _ => {}
        }
        let func = match lname.as_str() {
            "lower" | "lcase" => ScalarFunc::Lower,
            "upper" | "ucase" => ScalarFunc::Upper,
            "trim" | "btrim" => ScalarFunc::Trim,
            "ltrim" => ScalarFunc::LTrim,
            "rtrim" => ScalarFunc::RTrim,
            "substring" | "substr" => ScalarFunc::Substring,
            "concat" => ScalarFunc::Concat,
            "concat_ws" => ScalarFunc::ConcatWs,
            "length" | "char_length" | "character_length" | "len" => ScalarFunc::Length,
            "startswith" | "starts_with" => ScalarFunc::StartsWith,
            "endswith" | "ends_with" => ScalarFunc::EndsWith,
            "contains" => ScalarFunc::Contains,
            "like" => ScalarFunc::Like,
            "rlike" | "regexp" | "regexp_like" => ScalarFunc::RLike,
            "regexp_extract" => ScalarFunc::RegexpExtract,
            "regexp_replace" => ScalarFunc::RegexpReplace,
            "year" => ScalarFunc::Year,
            "month" => ScalarFunc::Month,
            "day" | "dayofmonth" => ScalarFunc::Day,
            "hour" => ScalarFunc::Hour,
            "minute" => ScalarFunc::Minute,
            "second" => ScalarFunc::Second,
            "date_trunc" => ScalarFunc::DateTrunc,
            "to_timestamp" => ScalarFunc::ToTimestamp,
            "date_format" => ScalarFunc::DateFormat,
            "abs" => ScalarFunc::Abs,
            "round" => ScalarFunc::Round,
            "floor" => ScalarFunc::Floor,
            "ceil" | "ceiling" => ScalarFunc::Ceil,
            "split" => ScalarFunc::Split,
            other => {
                return Err(Error::Unsupported(format!(
                    "function {other}() cannot run in a streaming pipeline yet"
                )));
            }
        };
        // Integer literal arguments (positions, scales, group indexes) are Int32 in the IR.
        let ids = match func {
            ScalarFunc::Substring | ScalarFunc::Round | ScalarFunc::RegexpExtract => {
                let mut out = vec![ids[0]];
                for id in &ids[1..] {
                    let t = self.ty(*id);
                    out.push(if t.is_integer() && t != DataType::Int32 {
                        self.builder.cast(*id, DataType::Int32, false)?
                    } else {
                        *id
                    });
                }
                out
            }
            ScalarFunc::Concat | ScalarFunc::ConcatWs => ids
                .into_iter()
                .map(|id| self.cast_to(id, &DataType::Utf8))
                .collect::<Result<Vec<_>>>()?,
            _ => ids,
        };
        Ok(self.builder.call(func, ids)?)
    }
}

fn is_decimal(t: &DataType) -> bool {
    matches!(t, DataType::Decimal128(..))
}

/// Spark's implicit widening for two operand types.
pub fn common_type(a: &DataType, b: &DataType) -> DataType {
    use DataType::*;
    if a == b {
        return a.clone();
    }
    match (a, b) {
        (Null, x) | (x, Null) => x.clone(),
        (Timestamp(..), Timestamp(..)) => timestamp_type(),
        (Float64, _) | (_, Float64) => Float64,
        (Float32, x) | (x, Float32) if x.is_integer() || is_decimal(x) => Float64,
        (Decimal128(p, s), x) | (x, Decimal128(p, s)) if x.is_integer() => {
            let int_digits: u8 = match x {
                Int8 | UInt8 => 3,
                Int16 | UInt16 => 5,
                Int32 | UInt32 => 10,
                _ => 20,
            };
            let scale = (*s).max(0) as u8;
            let whole = (p - scale).max(int_digits);
            Decimal128((whole + scale).min(38), *s)
        }
        (Decimal128(p1, s1), Decimal128(p2, s2)) => {
            let s = (*s1).max(*s2);
            let whole = (*p1 as i16 - *s1 as i16).max(*p2 as i16 - *s2 as i16);
            Decimal128(((whole + s as i16).min(38)) as u8, s)
        }
        (x, y) if x.is_integer() && y.is_integer() => {
            let width = |t: &DataType| match t {
                Int8 | UInt8 => 1,
                Int16 | UInt16 => 2,
                Int32 | UInt32 => 3,
                _ => 4,
            };
            match width(x).max(width(y)) {
                1 => Int16.max_of(x, y),
                2 => Int32.max_of(x, y),
                3 => Int64.max_of(x, y),
                _ => Int64,
            }
        }
        (Utf8, _) | (_, Utf8) => Utf8,
        (Date32, Timestamp(..)) | (Timestamp(..), Date32) => timestamp_type(),
        _ => a.clone(),
    }
}

trait MaxOf {
    fn max_of(self, a: &DataType, b: &DataType) -> DataType;
}

impl MaxOf for DataType {
    /// Picks the signed type at least as wide as both (with one step up for mixed sign).
    fn max_of(self, a: &DataType, b: &DataType) -> DataType {
        let signed = |t: &DataType| {
            matches!(
                t,
                DataType::Int8 | DataType::Int16 | DataType::Int32 | DataType::Int64
            )
        };
        if signed(a) && signed(b) {
            // Same-signedness: the wider of the two.
            let width = |t: &DataType| t.primitive_width().unwrap_or(8);
            if width(a) >= width(b) {
                a.clone()
            } else {
                b.clone()
            }
        } else {
            self
        }
    }
}

/// Converts a plan literal to a kernel literal.
pub fn scalar(v: &ScalarValue) -> Result<Scalar> {
    Ok(match v {
        ScalarValue::Null => Scalar::Null(DataType::Null),
        ScalarValue::Boolean(b) => Scalar::Boolean(*b),
        ScalarValue::Int32(i) => Scalar::Int32(*i),
        ScalarValue::Int64(i) => Scalar::Int64(*i),
        ScalarValue::Float64(f) => Scalar::Float64(*f),
        ScalarValue::Decimal128 {
            value,
            precision,
            scale,
        } => Scalar::Decimal128(*value, *precision, *scale),
        ScalarValue::Utf8(s) => Scalar::Utf8(s.clone()),
        ScalarValue::Date32(d) => Scalar::Date32(*d),
        ScalarValue::TimestampMicros(t) => Scalar::TimestampMicros(*t, Some("UTC".into())),
        ScalarValue::IntervalMicros(_) => {
            return Err(Error::Unsupported(format!(
                "the interval literal {v} can only be used in window and watermark definitions for now"
            )));
        }
    })
}

/// Re-nests flattened window columns into Spark's `struct<start, end>`.
pub fn window_struct(start: ArrayRef, end: ArrayRef) -> Result<ArrayRef> {
    let fields = vec![
        Arc::new(Field::new("start", timestamp_type(), true)),
        Arc::new(Field::new("end", timestamp_type(), true)),
    ];
    Ok(Arc::new(StructArray::try_new(
        fields.into(),
        vec![start, end],
        None,
    )?))
}
