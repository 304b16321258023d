//! The reference interpreter: evaluates a [`KernelSpec`] row at a time with obviously-correct
//! semantics. It is the oracle of every JIT test and the fallback for whatever the JIT does not
//! compile (whole kernels, or single sub-expressions pre-computed per batch).
//!
//! Semantics pinned here (the JIT must match them bit for bit):
//! - Integer `+ - * neg abs` wrap on overflow (Java), or error with `spec.ansi`.
//! - `/` and `%` by zero give NULL, or an error with `spec.ansi`; `MIN / -1` wraps (error in ANSI).
//!   Float division by zero is NULL too (Spark).
//! - Decimal results that do not fit their precision are NULL (error with ANSI).
//! - CAST: invalid strings and out-of-range values give NULL, or an error when the cast's `ansi`
//!   flag is set (this includes integer narrowing, where Spark's non-ANSI mode would wrap).
//!   float -> int truncates toward zero; NaN/±inf are out of range.
//! - Float comparisons use Spark's total order: NaN = NaN, NaN is larger than everything, -0.0 = 0.0.
//! - AND/OR/CASE/COALESCE are lazy: an error in a branch that is not taken is not raised.
//! - window_start: `d = ts - offset` (NULL on i64 overflow), `start = ts - d.rem_euclid(slide)`
//!   (NULL on overflow); a sliding window yields the starts `start - k*slide` with `start + size > ts`,
//!   oldest first. A NULL time yields one NULL window.

use std::cmp::Ordering;
use std::collections::HashMap;
use std::sync::Arc;

use arrow::array::{Array, ArrayRef, Int64Array, RecordBatch};
use arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use regex::Regex;

use crate::agg::{AggLayout, GroupState};
use crate::datetime::{self, MICROS_PER_DAY};
use crate::error::{JitError, Result};
use crate::spec::{
    BinaryOp, Expr, ExprId, KernelSpec, PipelineKind, Scalar, ScalarFunc, Stage, UnaryOp, is_float,
    is_integer, is_timestamp,
};
use crate::value::{V, build_array, read_value, scalar_value};

/// Per-row evaluation error message.
type Eval<T> = std::result::Result<T, String>;

/// Row-at-a-time interpreter over a validated spec.
#[derive(Debug)]
pub struct Interpreter {
    spec: Arc<KernelSpec>,
    regexes: HashMap<ExprId, Regex>,
    output_schema: SchemaRef,
    layout: Option<Arc<AggLayout>>,
}

struct RowCtx<'a> {
    cols: &'a [ArrayRef],
    row: usize,
    window: Option<(ExprId, V)>,
}

/// Output schema of a spec: the projection (or every input) for Map, keys + finalized aggregates for Aggregate.
pub fn output_schema(spec: &KernelSpec) -> Result<SchemaRef> {
    let mut fields = vec![];
    if let Some((keys, aggs)) = spec.aggregate() {
        for (n, e) in keys {
            fields.push(Field::new(n, spec.types[*e as usize].clone(), true));
        }
        for a in aggs {
            let arg_t = a
                .arg
                .map(|e| spec.types[e as usize].clone())
                .unwrap_or(DataType::Int64);
            let t = crate::spec::agg_output_type(a.func, &arg_t).map_err(JitError::InvalidSpec)?;
            let nullable = !matches!(
                a.func,
                crate::spec::AggFunc::Count | crate::spec::AggFunc::CountStar
            );
            fields.push(Field::new(&a.name, t, nullable));
        }
    } else if let Some(p) = spec.projection() {
        for (n, e) in p {
            fields.push(Field::new(n, spec.types[e as usize].clone(), true));
        }
    } else {
        for c in &spec.inputs {
            let t = crate::spec::logical_type(&c.data_type).unwrap_or(DataType::Null);
            fields.push(Field::new(&c.name, t, c.nullable));
        }
    }
    Ok(Arc::new(Schema::new(fields)))
}

/// Checks that a batch matches the spec's input columns.
pub fn check_batch(spec: &KernelSpec, batch: &RecordBatch) -> Result<()> {
    if batch.num_columns() != spec.inputs.len() {
        return Err(JitError::SchemaMismatch(format!(
            "expected {} columns, got {}",
            spec.inputs.len(),
            batch.num_columns()
        )));
    }
    for (i, (c, a)) in spec.inputs.iter().zip(batch.columns()).enumerate() {
        if &c.data_type != a.data_type() {
            return Err(JitError::SchemaMismatch(format!(
                "column {i} '{}' should be {} but is {}",
                c.name,
                c.data_type,
                a.data_type()
            )));
        }
    }
    Ok(())
}

/// Converts an unparsed LIKE pattern into an anchored regex (`%`, `_`, escape `\`).
pub fn like_to_regex(pattern: &str) -> String {
    let mut out = String::from("(?s)^");
    let mut chars = pattern.chars();
    while let Some(c) = chars.next() {
        match c {
            '%' => out += ".*",
            '_' => out.push('.'),
            '\\' => match chars.next() {
                Some(n) => out += &regex::escape(&n.to_string()),
                None => out += &regex::escape("\\"),
            },
            c => out += &regex::escape(&c.to_string()),
        }
    }
    out.push('$');
    out
}

impl Interpreter {
    /// Prepares an interpreter (validates the spec, compiles regexes).
    pub fn new(spec: &KernelSpec) -> Result<Self> {
        spec.validate()?;
        let mut regexes = HashMap::new();
        for (i, e) in spec.exprs.iter().enumerate() {
            if let Expr::Call { func, args } = e {
                let pat = match spec
                    .exprs
                    .get(args.get(1).copied().unwrap_or(u32::MAX) as usize)
                {
                    Some(Expr::Literal(Scalar::Utf8(p))) => p.clone(),
                    _ => continue,
                };
                let re = match func {
                    ScalarFunc::Like => like_to_regex(&pat),
                    ScalarFunc::RLike
                    | ScalarFunc::RegexpExtract
                    | ScalarFunc::RegexpReplace
                    | ScalarFunc::Split => pat,
                    _ => continue,
                };
                let compiled = Regex::new(&re)
                    .map_err(|e| spec.type_error(i as ExprId, format!("bad pattern: {e}")))?;
                regexes.insert(i as ExprId, compiled);
            }
        }
        let layout = match spec.kind() {
            PipelineKind::Aggregate => Some(Arc::new(AggLayout::new(spec)?)),
            PipelineKind::Map => None,
        };
        Ok(Interpreter {
            output_schema: output_schema(spec)?,
            spec: Arc::new(spec.clone()),
            regexes,
            layout,
        })
    }

    /// The spec.
    pub fn spec(&self) -> &KernelSpec {
        &self.spec
    }

    /// Output schema.
    pub fn output_schema(&self) -> SchemaRef {
        self.output_schema.clone()
    }

    /// Runs a filter/project pipeline over a batch.
    pub fn run(&self, batch: &RecordBatch) -> Result<RecordBatch> {
        if self.layout.is_some() {
            return Err(JitError::Unsupported(
                "run() on an aggregation kernel; use update()".into(),
            ));
        }
        check_batch(&self.spec, batch)?;
        let outputs: Vec<ExprId> = match self.spec.projection() {
            Some(p) => p.iter().map(|(_, e)| *e).collect(),
            None => {
                // No projection: pass input columns through (logical types).
                let mut cols = vec![];
                let keep = self.selected_rows(batch)?;
                for (i, field) in self.output_schema.fields().iter().enumerate() {
                    let vals = keep
                        .iter()
                        .map(|&r| read_value(batch.column(i).as_ref(), r))
                        .collect::<Result<Vec<_>>>()?;
                    cols.push(build_array(field.data_type(), &vals)?);
                }
                return Ok(RecordBatch::try_new_with_options(
                    self.output_schema.clone(),
                    cols,
                    &arrow::array::RecordBatchOptions::new().with_row_count(Some(keep.len())),
                )?);
            }
        };
        let mut values: Vec<Vec<V>> = vec![vec![]; outputs.len()];
        let mut rows_out = 0usize;
        for row in 0..batch.num_rows() {
            if !self.passes(batch.columns(), row)? {
                continue;
            }
            for window in self.windows(batch.columns(), row)? {
                let ctx = RowCtx {
                    cols: batch.columns(),
                    row,
                    window,
                };
                for (o, e) in outputs.iter().enumerate() {
                    values[o].push(
                        self.eval(*e, &ctx)
                            .map_err(|m| JitError::Runtime { row, message: m })?,
                    );
                }
                rows_out += 1;
            }
        }
        let cols = self
            .output_schema
            .fields()
            .iter()
            .zip(&values)
            .map(|(f, v)| build_array(f.data_type(), v))
            .collect::<Result<Vec<_>>>()?;
        Ok(RecordBatch::try_new_with_options(
            self.output_schema.clone(),
            cols,
            &arrow::array::RecordBatchOptions::new().with_row_count(Some(rows_out)),
        )?)
    }

    fn selected_rows(&self, batch: &RecordBatch) -> Result<Vec<usize>> {
        let mut keep = vec![];
        for row in 0..batch.num_rows() {
            if self.passes(batch.columns(), row)? {
                keep.push(row);
            }
        }
        Ok(keep)
    }

    fn passes(&self, cols: &[ArrayRef], row: usize) -> Result<bool> {
        let ctx = RowCtx {
            cols,
            row,
            window: None,
        };
        for st in &self.spec.stages {
            if let Stage::Filter(e) = st {
                match self
                    .eval(*e, &ctx)
                    .map_err(|m| JitError::Runtime { row, message: m })?
                {
                    V::Bool(true) => {}
                    _ => return Ok(false),
                }
            }
        }
        Ok(true)
    }

    /// The window values a row expands to (one `None` when there is no sliding window).
    fn windows(&self, cols: &[ArrayRef], row: usize) -> Result<Vec<Option<(ExprId, V)>>> {
        let Some(w) = self.spec.sliding_window() else {
            return Ok(vec![None]);
        };
        let Expr::WindowStart {
            time,
            size_us,
            slide_us,
            start_offset_us,
        } = &self.spec.exprs[w as usize]
        else {
            return Ok(vec![None]);
        };
        let ctx = RowCtx {
            cols,
            row,
            window: None,
        };
        let t = self
            .eval(*time, &ctx)
            .map_err(|m| JitError::Runtime { row, message: m })?;
        let V::Int(ts) = t else {
            return Ok(vec![Some((w, V::Null))]);
        };
        Ok(
            sliding_starts(ts as i64, *size_us, *slide_us, *start_offset_us)
                .into_iter()
                .map(|s| Some((w, V::Int(s as i128))))
                .collect(),
        )
    }

    /// A fresh, empty aggregation state for this spec.
    pub fn new_group_state(&self) -> Result<GroupState> {
        match &self.layout {
            Some(l) => Ok(GroupState::new(l.clone())),
            None => Err(JitError::Unsupported(
                "new_group_state() on a filter/project kernel".into(),
            )),
        }
    }

    /// Feeds a batch into an aggregation state (every row has weight +1).
    pub fn update(&self, state: &mut GroupState, batch: &RecordBatch) -> Result<()> {
        self.update_impl(state, batch, None)
    }

    /// Feeds a batch with per-row weights (-1 retracts; count/sum/avg only).
    pub fn update_weighted(
        &self,
        state: &mut GroupState,
        batch: &RecordBatch,
        weights: &Int64Array,
    ) -> Result<()> {
        self.update_impl(state, batch, Some(weights))
    }

    fn update_impl(
        &self,
        state: &mut GroupState,
        batch: &RecordBatch,
        weights: Option<&Int64Array>,
    ) -> Result<()> {
        let layout = self.layout.as_ref().ok_or_else(|| {
            JitError::Unsupported("update() on a filter/project kernel; use run()".into())
        })?;
        state.check_layout(layout)?;
        check_batch(&self.spec, batch)?;
        if let Some(w) = weights {
            crate::agg::check_weights(layout, w, batch.num_rows())?;
        }
        let (keys, aggs) = self
            .spec
            .aggregate()
            .ok_or_else(|| JitError::Unsupported("no aggregate stage".into()))?;
        let mut key_vals = Vec::with_capacity(keys.len());
        for row in 0..batch.num_rows() {
            if !self.passes(batch.columns(), row)? {
                continue;
            }
            let weight = weights.map(|w| w.value(row)).unwrap_or(1);
            for window in self.windows(batch.columns(), row)? {
                let ctx = RowCtx {
                    cols: batch.columns(),
                    row,
                    window,
                };
                let rt = |m| JitError::Runtime { row, message: m };
                key_vals.clear();
                for (_, e) in keys {
                    key_vals.push(self.eval(*e, &ctx).map_err(rt)?);
                }
                let mut args = Vec::with_capacity(aggs.len());
                for a in aggs {
                    args.push(match a.arg {
                        Some(e) => self.eval(e, &ctx).map_err(rt)?,
                        None => V::Null,
                    });
                }
                let gid = state.intern_values(&key_vals)?;
                for (i, v) in args.iter().enumerate() {
                    state.update_value(i, gid, v, weight);
                }
            }
        }
        Ok(())
    }

    /// Evaluates one expression over every row of a batch without failing: rows whose evaluation
    /// errors become NULL and their message is returned (used to pre-compute sub-expressions the
    /// JIT does not compile; the kernel raises the error only if the row really needs the value).
    pub fn eval_column(
        &self,
        expr: ExprId,
        batch: &RecordBatch,
    ) -> Result<(ArrayRef, Vec<Option<String>>)> {
        let mut vals = Vec::with_capacity(batch.num_rows());
        let mut errors = vec![];
        for row in 0..batch.num_rows() {
            let ctx = RowCtx {
                cols: batch.columns(),
                row,
                window: None,
            };
            match self.eval(expr, &ctx) {
                Ok(v) => vals.push(v),
                Err(m) => {
                    if errors.is_empty() {
                        errors = vec![None; batch.num_rows()];
                    }
                    errors[row] = Some(m);
                    vals.push(V::Null);
                }
            }
        }
        Ok((build_array(&self.spec.types[expr as usize], &vals)?, errors))
    }

    fn ty(&self, e: ExprId) -> &DataType {
        &self.spec.types[e as usize]
    }

    fn eval(&self, id: ExprId, ctx: &RowCtx<'_>) -> Eval<V> {
        if let Some((w, v)) = &ctx.window
            && *w == id
        {
            return Ok(v.clone());
        }
        let ansi = self.spec.ansi;
        match &self.spec.exprs[id as usize] {
            Expr::Column(i) => {
                read_value(ctx.cols[*i].as_ref(), ctx.row).map_err(|e| e.to_string())
            }
            Expr::Literal(s) => Ok(scalar_value(s)),
            Expr::Binary {
                op: BinaryOp::And,
                left,
                right,
            } => {
                let l = self.eval(*left, ctx)?;
                if l == V::Bool(false) {
                    return Ok(l);
                }
                let r = self.eval(*right, ctx)?;
                Ok(match (l, r) {
                    (_, V::Bool(false)) => V::Bool(false),
                    (V::Bool(true), V::Bool(true)) => V::Bool(true),
                    _ => V::Null,
                })
            }
            Expr::Binary {
                op: BinaryOp::Or,
                left,
                right,
            } => {
                let l = self.eval(*left, ctx)?;
                if l == V::Bool(true) {
                    return Ok(l);
                }
                let r = self.eval(*right, ctx)?;
                Ok(match (l, r) {
                    (_, V::Bool(true)) => V::Bool(true),
                    (V::Bool(false), V::Bool(false)) => V::Bool(false),
                    _ => V::Null,
                })
            }
            Expr::Binary { op, left, right } => {
                let l = self.eval(*left, ctx)?;
                let r = self.eval(*right, ctx)?;
                let (lt, rt) = (self.ty(*left), self.ty(*right));
                if *op == BinaryOp::EqNullSafe {
                    return Ok(V::Bool(match (&l, &r) {
                        (V::Null, V::Null) => true,
                        (V::Null, _) | (_, V::Null) => false,
                        _ => compare(&l, lt, &r, rt) == Ordering::Equal,
                    }));
                }
                if l.is_null() || r.is_null() {
                    return Ok(V::Null);
                }
                if op.is_comparison() {
                    let o = compare(&l, lt, &r, rt);
                    return Ok(V::Bool(match op {
                        BinaryOp::Eq => o == Ordering::Equal,
                        BinaryOp::NotEq => o != Ordering::Equal,
                        BinaryOp::Lt => o == Ordering::Less,
                        BinaryOp::LtEq => o != Ordering::Greater,
                        BinaryOp::Gt => o == Ordering::Greater,
                        _ => o != Ordering::Less,
                    }));
                }
                arith(*op, &l, lt, &r, rt, self.ty(id), ansi)
            }
            Expr::Unary { op, expr } => {
                let v = self.eval(*expr, ctx)?;
                Ok(match op {
                    UnaryOp::IsNull => V::Bool(v.is_null()),
                    UnaryOp::IsNotNull => V::Bool(!v.is_null()),
                    UnaryOp::Not => match v {
                        V::Bool(b) => V::Bool(!b),
                        _ => V::Null,
                    },
                    UnaryOp::Neg => match v {
                        V::Null => V::Null,
                        V::Float(f) => V::Float(-f),
                        V::Int(x) => match self.ty(id) {
                            DataType::Decimal128(..) => V::Int(-x),
                            t => int_result(0i128.wrapping_sub(x), t, ansi)?,
                        },
                        other => return Err(format!("cannot negate {other:?}")),
                    },
                })
            }
            Expr::Cast { expr, to, ansi } => {
                let v = self.eval(*expr, ctx)?;
                cast_value(v, self.ty(*expr), to, *ansi)
            }
            Expr::Case {
                branches,
                otherwise,
            } => {
                for (c, v) in branches {
                    if self.eval(*c, ctx)? == V::Bool(true) {
                        return self.eval(*v, ctx);
                    }
                }
                match otherwise {
                    Some(o) => self.eval(*o, ctx),
                    None => Ok(V::Null),
                }
            }
            Expr::Coalesce(args) => {
                for a in args {
                    let v = self.eval(*a, ctx)?;
                    if !v.is_null() {
                        return Ok(v);
                    }
                }
                Ok(V::Null)
            }
            Expr::InList {
                expr,
                list,
                negated,
            } => {
                let v = self.eval(*expr, ctx)?;
                if v.is_null() {
                    return Ok(V::Null);
                }
                let mut saw_null = false;
                for c in list {
                    let x = self.eval(*c, ctx)?;
                    if x.is_null() {
                        saw_null = true;
                    } else if compare(&v, self.ty(*expr), &x, self.ty(*c)) == Ordering::Equal {
                        return Ok(V::Bool(!negated));
                    }
                }
                Ok(if saw_null { V::Null } else { V::Bool(*negated) })
            }
            Expr::WindowStart {
                time,
                size_us,
                slide_us,
                start_offset_us,
            } => {
                debug_assert_eq!(
                    size_us, slide_us,
                    "sliding windows are expanded by the caller"
                );
                match self.eval(*time, ctx)? {
                    V::Int(ts) => Ok(tumbling_start(ts as i64, *slide_us, *start_offset_us)
                        .map(|s| V::Int(s as i128))
                        .unwrap_or(V::Null)),
                    _ => Ok(V::Null),
                }
            }
            Expr::Call { func, args } => self.call(id, *func, args, ctx),
        }
    }

    fn call(&self, id: ExprId, func: ScalarFunc, args: &[ExprId], ctx: &RowCtx<'_>) -> Eval<V> {
        use ScalarFunc as F;
        let mut vals = Vec::with_capacity(args.len());
        if func == F::ConcatWs {
            for a in args {
                vals.push(self.eval(*a, ctx)?);
            }
            let V::Str(sep) = &vals[0] else {
                return Ok(V::Null);
            };
            let parts: Vec<&str> = vals[1..]
                .iter()
                .filter_map(|v| {
                    if let V::Str(s) = v {
                        Some(s.as_ref())
                    } else {
                        None
                    }
                })
                .collect();
            return Ok(V::Str(Arc::from(parts.join(sep))));
        }
        for a in args {
            let v = self.eval(*a, ctx)?;
            if v.is_null() {
                return Ok(V::Null);
            }
            vals.push(v);
        }
        let s = |i: usize| -> &str { if let V::Str(s) = &vals[i] { s } else { "" } };
        let n = |i: usize| -> i128 { if let V::Int(x) = &vals[i] { *x } else { 0 } };
        let string = |x: String| V::Str(Arc::from(x));
        let regex = || {
            self.regexes
                .get(&id)
                .ok_or_else(|| "pattern was not compiled".to_string())
        };
        let ansi = self.spec.ansi;
        Ok(match func {
            F::Lower => string(s(0).to_lowercase()),
            F::Upper => string(s(0).to_uppercase()),
            F::Trim => string(s(0).trim_matches(' ').to_string()),
            F::LTrim => string(s(0).trim_start_matches(' ').to_string()),
            F::RTrim => string(s(0).trim_end_matches(' ').to_string()),
            F::Length => V::Int(s(0).chars().count() as i128),
            F::Substring => {
                let len = if vals.len() == 3 {
                    n(2) as i64
                } else {
                    i32::MAX as i64
                };
                string(substring(s(0), n(1) as i64, len))
            }
            F::Concat => string(
                vals.iter()
                    .map(|v| if let V::Str(s) = v { s.as_ref() } else { "" })
                    .collect(),
            ),
            F::ConcatWs => V::Null,
            F::StartsWith => V::Bool(s(0).starts_with(s(1))),
            F::EndsWith => V::Bool(s(0).ends_with(s(1))),
            F::Contains => V::Bool(s(0).contains(s(1))),
            F::Like | F::RLike => V::Bool(regex()?.is_match(s(0))),
            F::RegexpExtract => {
                let re = regex()?;
                let idx = n(2);
                if idx < 0 || idx as usize > re.captures_len() - 1 {
                    return Err(format!(
                        "regexp_extract: the pattern has {} groups but group {idx} was requested",
                        re.captures_len() - 1
                    ));
                }
                match re.captures(s(0)) {
                    Some(c) => string(
                        c.get(idx as usize)
                            .map(|m| m.as_str())
                            .unwrap_or("")
                            .to_string(),
                    ),
                    None => string(String::new()),
                }
            }
            F::RegexpReplace => string(regex()?.replace_all(s(0), s(2)).into_owned()),
            F::Split => V::List(regex()?.split(s(0)).map(|p| V::Str(Arc::from(p))).collect()),
            F::Year | F::Month | F::Day => {
                let days = if self.ty(args[0]) == &DataType::Date32 {
                    n(0) as i64
                } else {
                    (n(0) as i64).div_euclid(MICROS_PER_DAY)
                };
                let (y, m, d) = datetime::civil_from_days(days);
                V::Int(match func {
                    F::Year => y as i128,
                    F::Month => m as i128,
                    _ => d as i128,
                })
            }
            F::Hour | F::Minute | F::Second => {
                let rem = (n(0) as i64).rem_euclid(MICROS_PER_DAY);
                V::Int(match func {
                    F::Hour => rem / 3_600_000_000,
                    F::Minute => rem / 60_000_000 % 60,
                    _ => rem / 1_000_000 % 60,
                } as i128)
            }
            F::DateTrunc => {
                let unit = datetime::TruncUnit::parse(s(0))
                    .ok_or_else(|| format!("unknown date_trunc unit {}", s(0)))?;
                datetime::trunc_micros(n(1) as i64, unit)
                    .map(|t| V::Int(t as i128))
                    .unwrap_or(V::Null)
            }
            F::ToTimestamp => {
                let pattern = if vals.len() == 2 { Some(s(1)) } else { None };
                datetime::parse_timestamp(s(0), pattern)
                    .map(|t| V::Int(t as i128))
                    .unwrap_or(V::Null)
            }
            F::DateFormat => {
                let ts = if self.ty(args[0]) == &DataType::Date32 {
                    (n(0) as i64).checked_mul(MICROS_PER_DAY)
                } else {
                    Some(n(0) as i64)
                };
                ts.and_then(|ts| datetime::format_with_pattern(ts, s(1)))
                    .map(string)
                    .unwrap_or(V::Null)
            }
            F::Abs => match &vals[0] {
                V::Float(f) => V::Float(f.abs()),
                V::Int(x) => match self.ty(id) {
                    DataType::Decimal128(..) => V::Int(x.abs()),
                    t => int_result(x.abs(), t, ansi)?,
                },
                _ => V::Null,
            },
            F::Round => {
                let scale = if vals.len() == 2 { n(1) as i32 } else { 0 };
                match (&vals[0], self.ty(id)) {
                    (V::Float(f), t) => {
                        let r = round_float(*f, scale);
                        V::Float(if *t == DataType::Float32 {
                            r as f32 as f64
                        } else {
                            r
                        })
                    }
                    (V::Int(x), DataType::Decimal128(p, s)) => {
                        if scale >= *s as i32 {
                            V::Int(*x)
                        } else {
                            let drop = (*s as i32 - scale.max(-38)) as u32;
                            match rescale(*x, drop, 0)
                                .and_then(|r| r.checked_mul(pow10(drop.min(38))?))
                            {
                                Some(r) if fits_precision(r, *p) => V::Int(r),
                                _ => return overflow(ansi, "round"),
                            }
                        }
                    }
                    (V::Int(x), t) => {
                        if scale >= 0 {
                            V::Int(*x)
                        } else {
                            let drop = scale.unsigned_abs();
                            match rescale(*x, drop.min(38), 0)
                                .and_then(|r| r.checked_mul(pow10(drop.min(38))?))
                            {
                                Some(r) => int_result(r, t, ansi)?,
                                None => return overflow(ansi, "round"),
                            }
                        }
                    }
                    _ => V::Null,
                }
            }
            F::Floor | F::Ceil => match (&vals[0], self.ty(args[0])) {
                (V::Float(f), _) => {
                    let r = if func == F::Floor {
                        f.floor()
                    } else {
                        f.ceil()
                    };
                    cast_value(V::Float(r), &DataType::Float64, &DataType::Int64, ansi)?
                }
                (V::Int(x), DataType::Decimal128(_, s)) => {
                    let d = pow10(*s as u32).unwrap_or(1);
                    let q = x.div_euclid(d);
                    V::Int(if func == F::Ceil && x.rem_euclid(d) != 0 {
                        q + 1
                    } else {
                        q
                    })
                }
                (V::Int(x), _) => int_result(*x, &DataType::Int64, ansi)?,
                _ => V::Null,
            },
        })
    }
}

/// Window starts a time falls into (tumbling: one), oldest first; overflowing candidates are skipped.
pub fn sliding_starts(ts: i64, size: i64, slide: i64, offset: i64) -> Vec<i64> {
    let Some(last) = tumbling_start(ts, slide, offset) else {
        return vec![];
    };
    let n = (size + slide - 1) / slide;
    let mut out = vec![];
    for k in (0..n).rev() {
        let Some(start) = (k as i128 * slide as i128)
            .checked_neg()
            .map(|d| last as i128 + d)
        else {
            continue;
        };
        if start < i64::MIN as i128 {
            continue;
        }
        if start + size as i128 > ts as i128 {
            out.push(start as i64);
        }
    }
    out
}

/// Start of the tumbling window of length `size` containing `ts` (None on i64 overflow).
pub fn tumbling_start(ts: i64, size: i64, offset: i64) -> Option<i64> {
    let d = ts.checked_sub(offset)?;
    ts.checked_sub(d.rem_euclid(size))
}

fn substring(s: &str, pos: i64, len: i64) -> String {
    let chars: Vec<char> = s.chars().collect();
    let n = chars.len() as i64;
    let start = if pos > 0 {
        pos - 1
    } else if pos < 0 {
        n + pos
    } else {
        0
    };
    let end = if len == i32::MAX as i64 {
        i64::MAX
    } else {
        start.saturating_add(len)
    };
    let (start, end) = (start.max(0), end.min(n));
    if start >= end {
        String::new()
    } else {
        chars[start as usize..end as usize].iter().collect()
    }
}

fn round_float(f: f64, scale: i32) -> f64 {
    if !f.is_finite() {
        return f;
    }
    if scale == 0 {
        return f.round();
    }
    let m = 10f64.powi(scale);
    let r = (f * m).round() / m;
    if r.is_finite() { r } else { f }
}

/// 10^n as i128 (None above 10^38).
pub fn pow10(n: u32) -> Option<i128> {
    10i128.checked_pow(n)
}

/// |v| < 10^p.
pub fn fits_precision(v: i128, p: u8) -> bool {
    match pow10(p as u32) {
        Some(b) => v > -b && v < b,
        None => true,
    }
}

/// Changes scale by dividing by 10^drop with HALF_UP rounding, or multiplying by 10^raise.
pub fn rescale(v: i128, drop: u32, raise: u32) -> Option<i128> {
    let v = if drop > 0 {
        let Some(d) = pow10(drop) else { return Some(0) };
        let q = v / d;
        let r = v % d;
        if r.unsigned_abs() * 2 >= d.unsigned_abs() {
            q + v.signum()
        } else {
            q
        }
    } else {
        v
    };
    v.checked_mul(pow10(raise)?)
}

fn rescale_to(v: i128, from: i8, to: i8) -> Option<i128> {
    if to >= from {
        rescale(v, 0, (to - from) as u32)
    } else {
        rescale(v, (from - to) as u32, 0)
    }
}

fn overflow(ansi: bool, what: &str) -> Eval<V> {
    if ansi {
        Err(format!("arithmetic overflow in {what}"))
    } else {
        Ok(V::Null)
    }
}

/// Inclusive value range of an integer type.
pub fn int_bounds(t: &DataType) -> (i128, i128) {
    match t {
        DataType::Int8 => (i8::MIN as i128, i8::MAX as i128),
        DataType::Int16 => (i16::MIN as i128, i16::MAX as i128),
        DataType::Int32 | DataType::Date32 => (i32::MIN as i128, i32::MAX as i128),
        DataType::UInt8 => (0, u8::MAX as i128),
        DataType::UInt16 => (0, u16::MAX as i128),
        DataType::UInt32 => (0, u32::MAX as i128),
        DataType::UInt64 => (0, u64::MAX as i128),
        _ => (i64::MIN as i128, i64::MAX as i128),
    }
}

/// Wraps an integer into a type's width (two's complement).
pub fn wrap_int(x: i128, t: &DataType) -> i128 {
    match t {
        DataType::Int8 => x as i8 as i128,
        DataType::Int16 => x as i16 as i128,
        DataType::Int32 => x as i32 as i128,
        DataType::UInt8 => x as u8 as i128,
        DataType::UInt16 => x as u16 as i128,
        DataType::UInt32 => x as u32 as i128,
        DataType::UInt64 => x as u64 as i128,
        _ => x as i64 as i128,
    }
}

fn int_result(x: i128, t: &DataType, ansi: bool) -> Eval<V> {
    let (lo, hi) = int_bounds(t);
    if x >= lo && x <= hi {
        Ok(V::Int(x))
    } else if ansi {
        Err(format!("integer overflow: {x} does not fit {t}"))
    } else {
        Ok(V::Int(wrap_int(x, t)))
    }
}

fn arith(
    op: BinaryOp,
    l: &V,
    lt: &DataType,
    r: &V,
    rt: &DataType,
    out: &DataType,
    ansi: bool,
) -> Eval<V> {
    match (l, r) {
        (V::Float(a), V::Float(b)) => {
            let f32_ = *out == DataType::Float32;
            if matches!(op, BinaryOp::Div | BinaryOp::Mod) && *b == 0.0 {
                return if ansi {
                    Err("division by zero".into())
                } else {
                    Ok(V::Null)
                };
            }
            let v = if f32_ {
                let (a, b) = (*a as f32, *b as f32);
                (match op {
                    BinaryOp::Add => a + b,
                    BinaryOp::Sub => a - b,
                    BinaryOp::Mul => a * b,
                    BinaryOp::Div => a / b,
                    _ => a % b,
                }) as f64
            } else {
                match op {
                    BinaryOp::Add => a + b,
                    BinaryOp::Sub => a - b,
                    BinaryOp::Mul => a * b,
                    BinaryOp::Div => a / b,
                    _ => a % b,
                }
            };
            Ok(V::Float(v))
        }
        (V::Int(a), V::Int(b)) => {
            if let (
                DataType::Decimal128(_, s1),
                DataType::Decimal128(_, s2),
                DataType::Decimal128(p, s),
            ) = (lt, rt, out)
            {
                return decimal_arith(op, *a, *s1, *b, *s2, *p, *s, ansi);
            }
            let (a, b) = (*a, *b);
            let wide = match op {
                BinaryOp::Add => a.checked_add(b),
                BinaryOp::Sub => a.checked_sub(b),
                BinaryOp::Mul => a.checked_mul(b),
                BinaryOp::Div | BinaryOp::Mod => {
                    if b == 0 {
                        return if ansi {
                            Err("division by zero".into())
                        } else {
                            Ok(V::Null)
                        };
                    }
                    Some(if op == BinaryOp::Div { a / b } else { a % b })
                }
                _ => None,
            };
            match wide {
                Some(x) => int_result(x, out, ansi),
                None if ansi => Err(format!("integer overflow in {op:?}")),
                None => Ok(V::Int(wrap_int(
                    (a as u128).wrapping_mul(b as u128) as i128,
                    out,
                ))),
            }
        }
        _ => Err(format!("cannot apply {op:?} to {l:?} and {r:?}")),
    }
}

#[allow(clippy::too_many_arguments)]
fn decimal_arith(
    op: BinaryOp,
    a: i128,
    s1: i8,
    b: i128,
    s2: i8,
    p: u8,
    s: i8,
    ansi: bool,
) -> Eval<V> {
    let result: Option<i128> = match op {
        BinaryOp::Add | BinaryOp::Sub | BinaryOp::Mod => {
            let m = s1.max(s2);
            let (x, y) = (rescale_to(a, s1, m), rescale_to(b, s2, m));
            match (x, y) {
                (Some(x), Some(y)) => match op {
                    BinaryOp::Add => x.checked_add(y).and_then(|v| rescale_to(v, m, s)),
                    BinaryOp::Sub => x.checked_sub(y).and_then(|v| rescale_to(v, m, s)),
                    _ => {
                        if y == 0 {
                            return if ansi {
                                Err("division by zero".into())
                            } else {
                                Ok(V::Null)
                            };
                        }
                        rescale_to(x % y, m, s)
                    }
                },
                _ => None,
            }
        }
        BinaryOp::Mul => a.checked_mul(b).and_then(|v| rescale_to(v, s1 + s2, s)),
        _ => {
            if b == 0 {
                return if ansi {
                    Err("division by zero".into())
                } else {
                    Ok(V::Null)
                };
            }
            // a/10^s1 / (b/10^s2) at scale s = a * 10^(s - s1 + s2) / b, HALF_UP.
            let k = s as i32 - s1 as i32 + s2 as i32;
            let num = if k >= 0 {
                pow10(k as u32).and_then(|m| a.checked_mul(m))
            } else {
                rescale(a, (-k) as u32, 0)
            };
            num.map(|n| {
                let q = n / b;
                let r = n % b;
                if r.unsigned_abs() * 2 >= b.unsigned_abs() {
                    q + if (n < 0) != (b < 0) { -1 } else { 1 }
                } else {
                    q
                }
            })
        }
    };
    match result {
        Some(v) if fits_precision(v, p) => Ok(V::Int(v)),
        _ => overflow(ansi, "decimal arithmetic"),
    }
}

/// Spark-style total order of two non-null values of compatible types.
pub fn compare(l: &V, lt: &DataType, r: &V, rt: &DataType) -> Ordering {
    match (l, r) {
        (V::Float(a), V::Float(b)) => float_cmp(*a, *b),
        (V::Int(a), V::Int(b)) => match (lt, rt) {
            (DataType::Decimal128(_, s1), DataType::Decimal128(_, s2)) if s1 != s2 => {
                let m = (*s1).max(*s2);
                match (rescale_to(*a, *s1, m), rescale_to(*b, *s2, m)) {
                    (Some(x), Some(y)) => x.cmp(&y),
                    _ => {
                        let fa = *a as f64 / 10f64.powi(*s1 as i32);
                        let fb = *b as f64 / 10f64.powi(*s2 as i32);
                        fa.total_cmp(&fb)
                    }
                }
            }
            _ => a.cmp(b),
        },
        (V::Bool(a), V::Bool(b)) => a.cmp(b),
        (V::Str(a), V::Str(b)) => a.as_bytes().cmp(b.as_bytes()),
        _ => Ordering::Equal,
    }
}

/// NaN = NaN and is the largest value; -0.0 = 0.0.
pub fn float_cmp(a: f64, b: f64) -> Ordering {
    match (a.is_nan(), b.is_nan()) {
        (true, true) => Ordering::Equal,
        (true, false) => Ordering::Greater,
        (false, true) => Ordering::Less,
        _ => a.partial_cmp(&b).unwrap_or(Ordering::Equal),
    }
}

fn invalid(ansi: bool, msg: String) -> Eval<V> {
    if ansi { Err(msg) } else { Ok(V::Null) }
}

/// Formats a float the way Spark (Java) casts it to a string.
pub fn format_float(f: f64, is_f32: bool) -> String {
    if f.is_nan() {
        return "NaN".into();
    }
    if f.is_infinite() {
        return if f > 0.0 {
            "Infinity".into()
        } else {
            "-Infinity".into()
        };
    }
    let a = f.abs();
    if a == 0.0 || (1e-3..1e7).contains(&a) {
        let s = if is_f32 {
            format!("{}", f as f32)
        } else {
            format!("{f}")
        };
        if s.contains('.') { s } else { s + ".0" }
    } else {
        let s = if is_f32 {
            format!("{:e}", f as f32)
        } else {
            format!("{f:e}")
        };
        let (m, e) = s.split_once('e').unwrap_or((&s, "0"));
        let m = if m.contains('.') {
            m.to_string()
        } else {
            format!("{m}.0")
        };
        format!("{m}E{e}")
    }
}

/// Formats a decimal's unscaled value.
pub fn format_decimal(v: i128, s: i8) -> String {
    if s <= 0 {
        return v.to_string();
    }
    let digits = v.unsigned_abs().to_string();
    let s = s as usize;
    let padded = if digits.len() <= s {
        format!("{}{digits}", "0".repeat(s - digits.len() + 1))
    } else {
        digits
    };
    let (int, frac) = padded.split_at(padded.len() - s);
    format!("{}{int}.{frac}", if v < 0 { "-" } else { "" })
}

fn parse_decimal(text: &str, p: u8, s: i8) -> Option<i128> {
    let t = text.trim();
    let (neg, t) = match t.strip_prefix('-') {
        Some(r) => (true, r),
        None => (false, t.strip_prefix('+').unwrap_or(t)),
    };
    let (mantissa, exp) = match t.find(['e', 'E']) {
        Some(i) => (&t[..i], t[i + 1..].parse::<i32>().ok()?),
        None => (t, 0),
    };
    let (int, frac) = mantissa.split_once('.').unwrap_or((mantissa, ""));
    if int.is_empty() && frac.is_empty()
        || !int.chars().chain(frac.chars()).all(|c| c.is_ascii_digit())
    {
        return None;
    }
    let digits: String = format!("{int}{frac}");
    let digits = digits.trim_start_matches('0');
    let scale_of_digits = frac.len() as i32 - exp;
    if digits.len() > 60 {
        return None;
    }
    let unscaled: i128 = if digits.is_empty() {
        0
    } else {
        digits.parse().ok()?
    };
    let v = if s as i32 >= scale_of_digits {
        unscaled.checked_mul(pow10((s as i32 - scale_of_digits) as u32)?)?
    } else {
        rescale(unscaled, (scale_of_digits - s as i32) as u32, 0)?
    };
    let v = if neg { -v } else { v };
    fits_precision(v, p).then_some(v)
}

fn float_to_int_checked(f: f64, t: &DataType) -> Option<i128> {
    if !f.is_finite() {
        return None;
    }
    let tr = f.trunc();
    // The range check happens on the truncated value in i128 (exact for |f| < 2^127).
    if tr.abs() >= 1.7e38 {
        return None;
    }
    let x = tr as i128;
    let (lo, hi) = int_bounds(t);
    (x >= lo && x <= hi).then_some(x)
}

/// CAST semantics shared with the JIT (see module docs).
pub fn cast_value(v: V, from: &DataType, to: &DataType, ansi: bool) -> Eval<V> {
    if v.is_null() {
        return Ok(V::Null);
    }
    if from == to || (is_timestamp(from) && is_timestamp(to)) {
        return Ok(v);
    }
    let out_of_range =
        |what: String| invalid(ansi, format!("cast overflow: {what} does not fit {to}"));
    match (&v, from, to) {
        (V::Str(s), _, DataType::Utf8) => Ok(V::Str(s.clone())),
        (_, _, DataType::Utf8) => Ok(V::Str(Arc::from(match (&v, from) {
            (V::Bool(b), _) => b.to_string(),
            (V::Float(f), t) => format_float(*f, *t == DataType::Float32),
            (V::Int(x), DataType::Decimal128(_, s)) => format_decimal(*x, *s),
            (V::Int(x), DataType::Date32) => datetime::format_date(*x as i64),
            (V::Int(x), t) if is_timestamp(t) => datetime::format_timestamp(*x as i64),
            (V::Int(x), _) => x.to_string(),
            (other, _) => return Err(format!("cannot format {other:?}")),
        }))),
        (V::Str(s), _, t) => {
            let text = s.trim();
            let bad = || invalid(ansi, format!("invalid input syntax for {t}: '{s}'"));
            match t {
                t if is_integer(t) => match text.parse::<i128>() {
                    Ok(x) => {
                        let (lo, hi) = int_bounds(t);
                        if x >= lo && x <= hi {
                            Ok(V::Int(x))
                        } else {
                            out_of_range(format!("'{s}'"))
                        }
                    }
                    Err(_) => bad(),
                },
                t if is_float(t) => {
                    let parsed = match text.to_ascii_lowercase().as_str() {
                        "nan" => Some(f64::NAN),
                        "infinity" | "+infinity" | "inf" | "+inf" => Some(f64::INFINITY),
                        "-infinity" | "-inf" => Some(f64::NEG_INFINITY),
                        _ if text
                            .chars()
                            .all(|c| c.is_ascii_digit() || "+-.eE".contains(c)) =>
                        {
                            text.parse::<f64>().ok()
                        }
                        _ => None,
                    };
                    match parsed {
                        Some(f) if *t == DataType::Float32 => Ok(V::Float(f as f32 as f64)),
                        Some(f) => Ok(V::Float(f)),
                        None => bad(),
                    }
                }
                DataType::Decimal128(p, sc) => match parse_decimal(text, *p, *sc) {
                    Some(x) => Ok(V::Int(x)),
                    None => bad(),
                },
                DataType::Boolean => match text.to_ascii_lowercase().as_str() {
                    "true" | "t" | "yes" | "y" | "1" => Ok(V::Bool(true)),
                    "false" | "f" | "no" | "n" | "0" => Ok(V::Bool(false)),
                    _ => bad(),
                },
                DataType::Date32 => {
                    let date = text.split(['T', ' ']).next().unwrap_or("");
                    match datetime::parse_date(date) {
                        Some(d) => Ok(V::Int(d as i128)),
                        None => bad(),
                    }
                }
                t if is_timestamp(t) => match datetime::parse_timestamp(text, None) {
                    Some(x) => Ok(V::Int(x as i128)),
                    None => bad(),
                },
                _ => bad(),
            }
        }
        (V::Bool(b), _, t) => Ok(match t {
            t if is_float(t) => V::Float(*b as i32 as f64),
            DataType::Decimal128(p, s) => match rescale(*b as i128, 0, *s as u32) {
                Some(x) if fits_precision(x, *p) => V::Int(x),
                _ => return out_of_range(b.to_string()),
            },
            _ => V::Int(*b as i128),
        }),
        (V::Int(x), f, DataType::Boolean) => Ok(V::Bool(*x != 0 || matches!(f, DataType::Null))),
        (V::Float(x), _, DataType::Boolean) => Ok(V::Bool(*x != 0.0)),
        (V::Int(x), DataType::Date32, t) if is_timestamp(t) => {
            match (*x as i64).checked_mul(MICROS_PER_DAY) {
                Some(r) => Ok(V::Int(r as i128)),
                None => out_of_range(x.to_string()),
            }
        }
        (V::Int(x), f, DataType::Date32) if is_timestamp(f) => {
            Ok(V::Int((*x as i64).div_euclid(MICROS_PER_DAY) as i128))
        }
        (V::Int(x), f, t) if is_timestamp(t) && is_integer(f) => {
            let r = x * 1_000_000;
            if r >= i64::MIN as i128 && r <= i64::MAX as i128 {
                Ok(V::Int(r))
            } else {
                out_of_range(x.to_string())
            }
        }
        (V::Int(x), f, t) if is_timestamp(f) && is_integer(t) => {
            let secs = (*x as i64).div_euclid(1_000_000) as i128;
            let (lo, hi) = int_bounds(t);
            if secs >= lo && secs <= hi {
                Ok(V::Int(secs))
            } else {
                out_of_range(secs.to_string())
            }
        }
        (V::Int(x), DataType::Decimal128(_, s), t) => {
            let (x, s) = (*x, *s);
            match t {
                DataType::Decimal128(p2, s2) => match rescale_to(x, s, *s2) {
                    Some(r) if fits_precision(r, *p2) => Ok(V::Int(r)),
                    _ => out_of_range(format_decimal(x, s)),
                },
                t if is_float(t) => {
                    let f: f64 = format_decimal(x, s).parse().unwrap_or(f64::NAN);
                    Ok(V::Float(if *t == DataType::Float32 {
                        f as f32 as f64
                    } else {
                        f
                    }))
                }
                t => {
                    let q = x / pow10(s as u32).unwrap_or(1);
                    let (lo, hi) = int_bounds(t);
                    if q >= lo && q <= hi {
                        Ok(V::Int(q))
                    } else {
                        out_of_range(format_decimal(x, s))
                    }
                }
            }
        }
        (V::Int(x), _, t) => match t {
            t if is_float(t) => Ok(V::Float(if *t == DataType::Float32 {
                *x as f32 as f64
            } else {
                *x as f64
            })),
            DataType::Decimal128(p, s) => match rescale(*x, 0, *s as u32) {
                Some(r) if fits_precision(r, *p) => Ok(V::Int(r)),
                _ => out_of_range(x.to_string()),
            },
            t => {
                let (lo, hi) = int_bounds(t);
                if *x >= lo && *x <= hi {
                    Ok(V::Int(*x))
                } else {
                    out_of_range(x.to_string())
                }
            }
        },
        (V::Float(f), _, t) => match t {
            DataType::Float32 => Ok(V::Float(*f as f32 as f64)),
            DataType::Float64 => Ok(V::Float(*f)),
            DataType::Decimal128(p, s) => {
                if !f.is_finite() {
                    return out_of_range(format_float(*f, false));
                }
                match parse_decimal(&format!("{f:.*}", (*s as usize) + 1), *p, *s) {
                    Some(x) => Ok(V::Int(x)),
                    None => out_of_range(format_float(*f, false)),
                }
            }
            t => match float_to_int_checked(*f, t) {
                Some(x) => Ok(V::Int(x)),
                None => out_of_range(format_float(*f, false)),
            },
        },
        (other, f, t) => Err(format!("unsupported cast of {other:?} from {f} to {t}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decimal_text_round_trip() {
        assert_eq!(format_decimal(-5, 3), "-0.005");
        assert_eq!(format_decimal(12345, 2), "123.45");
        assert_eq!(parse_decimal("123.455", 10, 2), Some(12346));
        assert_eq!(parse_decimal("-0.005", 5, 3), Some(-5));
        assert_eq!(parse_decimal("1e2", 5, 0), Some(100));
        assert_eq!(parse_decimal("abc", 5, 0), None);
    }

    #[test]
    fn windows() {
        assert_eq!(tumbling_start(25, 10, 0), Some(20));
        assert_eq!(tumbling_start(-5, 10, 0), Some(-10));
        assert_eq!(sliding_starts(25, 10, 5, 0), vec![20, 25]);
        assert_eq!(sliding_starts(i64::MIN, 10, 10, 1), Vec::<i64>::new());
    }

    #[test]
    fn casts_follow_the_ansi_flag() {
        let s = V::Str(Arc::from("12x"));
        assert_eq!(
            cast_value(s.clone(), &DataType::Utf8, &DataType::Int32, false),
            Ok(V::Null)
        );
        assert!(cast_value(s, &DataType::Utf8, &DataType::Int32, true).is_err());
        assert_eq!(
            cast_value(V::Int(300), &DataType::Int32, &DataType::Int8, false),
            Ok(V::Null)
        );
        assert_eq!(
            cast_value(
                V::Float(f64::NAN),
                &DataType::Float64,
                &DataType::Int64,
                false
            ),
            Ok(V::Null)
        );
        assert_eq!(
            cast_value(V::Float(-2.7), &DataType::Float64, &DataType::Int64, false),
            Ok(V::Int(-2))
        );
        assert_eq!(format_float(1e10, false), "1.0E10");
        assert_eq!(format_float(0.5, false), "0.5");
        assert_eq!(format_float(3.0, false), "3.0");
    }
}
