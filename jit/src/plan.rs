//! The fallback rule: decides, per expression, whether the Cranelift lowering compiles it
//! natively or whether it is pre-computed per batch (by the interpreter, into an extra input
//! column), and whether a whole kernel must run in the interpreter. Owns [`LowerPlan`], the
//! input of emit.rs. Must not import Cranelift.
//!
//! Rule: a sub-tree is native iff its operator is in the native set (below) with native
//! children and, for operators that evaluate some children lazily (AND, OR, CASE, COALESCE, IN),
//! the lazily evaluated children cannot raise errors. Every other maximal sub-tree is
//! pre-computed. String-typed projection outputs are taken (selected rows copied) from an input
//! or pre-computed column. Whole kernels fall back to the interpreter when they contain a sliding
//! window or a string-valued min/max/first/last.

use std::collections::BTreeMap;
use std::sync::Arc;

use arrow::datatypes::DataType;

use crate::agg::AggLayout;
use crate::spec::{
    BinaryOp, Expr, ExprId, KernelSpec, Scalar, ScalarFunc, Stage, UnaryOp, children, is_float,
    is_integer, is_timestamp, stage_roots,
};

/// One column the kernel reads: an input column or a pre-computed one.
#[derive(Debug, Clone)]
pub struct ColumnPlan {
    /// Physical Arrow type of the array handed to the kernel.
    pub data_type: DataType,
    /// Whether validity bits must be read.
    pub nullable: bool,
    /// Pre-computed columns whose evaluation may raise errors carry an error byte per row.
    pub has_errors: bool,
}

/// How one projected output column is produced.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OutputPlan {
    /// Computed in the kernel into a preallocated buffer.
    Native(ExprId),
    /// Copied (taken) from a column at the selected rows.
    Take(usize),
}

/// The aggregation part of a plan.
#[derive(Debug, Clone)]
pub struct AggPlan {
    /// Key expressions.
    pub keys: Vec<ExprId>,
    /// Distinct aggregate arguments (scratch slots).
    pub args: Vec<ExprId>,
    /// Scratch slot of each aggregate's argument.
    pub arg_slot: Vec<Option<usize>>,
    /// State layout.
    pub layout: Arc<AggLayout>,
}

/// Everything emit.rs needs.
#[derive(Debug, Clone)]
pub struct LowerPlan {
    /// The spec.
    pub spec: Arc<KernelSpec>,
    /// Input columns, then pre-computed columns.
    pub columns: Vec<ColumnPlan>,
    /// Pre-computed sub-trees and their column index.
    pub precomputed: BTreeMap<ExprId, usize>,
    /// Filter predicates.
    pub filters: Vec<ExprId>,
    /// Map kernels: output columns.
    pub outputs: Vec<OutputPlan>,
    /// Aggregate kernels.
    pub agg: Option<AggPlan>,
    /// Constant pool (string literals).
    pub consts: Vec<u8>,
    /// (offset, len) of each string literal in the pool.
    pub const_offsets: BTreeMap<ExprId, (u32, u32)>,
}

/// Why a whole kernel runs in the interpreter, if it does.
pub fn whole_kernel_fallback(spec: &KernelSpec) -> Option<String> {
    if let Some(w) = spec.sliding_window() {
        return Some(format!(
            "sliding window {} expands rows",
            spec.display_expr(w)
        ));
    }
    if let Some((_, aggs)) = spec.aggregate() {
        for a in aggs {
            if let Some(e) = a.arg
                && spec.types[e as usize] == DataType::Utf8
                && !matches!(a.func, crate::spec::AggFunc::Count)
            {
                return Some(format!(
                    "{:?} over a string ({}) keeps strings in state",
                    a.func, a.name
                ));
            }
        }
    }
    None
}

/// Whether evaluating the sub-tree may raise a runtime error.
pub fn can_error(spec: &KernelSpec, id: ExprId) -> bool {
    let e = &spec.exprs[id as usize];
    let own = match e {
        Expr::Binary { op, .. } => spec.ansi && op.is_arithmetic(),
        Expr::Unary {
            op: UnaryOp::Neg, ..
        } => spec.ansi,
        Expr::Cast { ansi, .. } => *ansi,
        Expr::Call { func, .. } => {
            matches!(func, ScalarFunc::RegexpExtract)
                || (spec.ansi
                    && matches!(
                        func,
                        ScalarFunc::Abs | ScalarFunc::Round | ScalarFunc::Floor | ScalarFunc::Ceil
                    ))
        }
        _ => false,
    };
    own || children(e).into_iter().any(|c| can_error(spec, c))
}

fn decimal_parts(t: &DataType) -> Option<(i32, i32)> {
    if let DataType::Decimal128(p, s) = t {
        Some((*p as i32, *s as i32))
    } else {
        None
    }
}

/// Whether the node itself (children aside) has a native lowering.
fn node_native(spec: &KernelSpec, id: ExprId) -> bool {
    let ty = |c: ExprId| &spec.types[c as usize];
    let out = ty(id);
    match &spec.exprs[id as usize] {
        Expr::Column(_) => true,
        Expr::Literal(s) => !matches!(s, Scalar::Null(DataType::Null)),
        Expr::Unary { .. } => true,
        Expr::Binary { op, left, right } => {
            let (l, r) = (ty(*left), ty(*right));
            match op {
                BinaryOp::And | BinaryOp::Or => true,
                op if op.is_comparison() => match (decimal_parts(l), decimal_parts(r)) {
                    (Some((p1, s1)), Some((p2, s2))) => {
                        let k = (s1 - s2).abs();
                        if s1 < s2 { p1 + k <= 38 } else { p2 + k <= 38 }
                    }
                    _ => !matches!(l, DataType::List(_) | DataType::Null),
                },
                BinaryOp::Add | BinaryOp::Sub | BinaryOp::Mul => {
                    match (decimal_parts(l), decimal_parts(r)) {
                        (Some((p1, s1)), Some((p2, s2))) => {
                            let Some((p, s)) = decimal_parts(out) else {
                                return false;
                            };
                            if *op == BinaryOp::Mul {
                                p1 + p2 < 38 && s == s1 + s2 && p == p1 + p2 + 1
                            } else {
                                let ms = s1.max(s2);
                                s == ms && p == ms + (p1 - s1).max(p2 - s2) + 1
                            }
                        }
                        _ => is_integer(l) || is_float(l),
                    }
                }
                BinaryOp::Div => is_integer(l) || is_float(l),
                BinaryOp::Mod => is_integer(l),
                _ => false,
            }
        }
        Expr::Cast { expr, to, .. } => {
            let from = ty(*expr);
            let num = |t: &DataType| is_integer(t) || is_float(t);
            match (from, to) {
                (f, t) if f == t => true,
                (f, t) if is_timestamp(f) && is_timestamp(t) => true,
                (f, t) if num(f) && num(t) => true,
                (DataType::Boolean, t) if num(t) => true,
                (f, DataType::Boolean) if num(f) => true,
                (f, DataType::Decimal128(p, s)) if is_integer(f) => *s <= 18 && *p <= 38,
                (DataType::Decimal128(p1, s1), DataType::Decimal128(_, s2)) => {
                    s2 >= s1 && (*p1 as i32 + (*s2 - *s1) as i32) <= 38
                }
                (DataType::Date32, t) if is_timestamp(t) => true,
                (f, DataType::Date32) if is_timestamp(f) => true,
                _ => false,
            }
        }
        Expr::Case { .. } | Expr::Coalesce(_) => !matches!(out, DataType::List(_) | DataType::Null),
        Expr::InList { expr, .. } => !matches!(
            ty(*expr),
            DataType::List(_) | DataType::Null | DataType::Decimal128(..)
        ),
        Expr::WindowStart {
            size_us, slide_us, ..
        } => size_us == slide_us,
        Expr::Call { func, args } => match func {
            ScalarFunc::Abs => args.len() == 1,
            ScalarFunc::StartsWith | ScalarFunc::EndsWith | ScalarFunc::Length => true,
            ScalarFunc::Hour | ScalarFunc::Minute | ScalarFunc::Second => true,
            ScalarFunc::Year | ScalarFunc::Month | ScalarFunc::Day => true,
            _ => false,
        },
    }
}

/// Children that are evaluated only conditionally (they must not raise errors to stay native).
fn lazy_children(e: &Expr) -> Vec<ExprId> {
    match e {
        Expr::Binary {
            op: BinaryOp::And | BinaryOp::Or,
            right,
            ..
        } => vec![*right],
        Expr::Case {
            branches,
            otherwise,
        } => {
            let mut v: Vec<ExprId> = branches
                .iter()
                .flat_map(|(c, v)| [*c, *v])
                .skip(1)
                .collect();
            v.extend(otherwise.iter().copied());
            v
        }
        Expr::Coalesce(args) => args.iter().skip(1).copied().collect(),
        Expr::InList { list, .. } => list.clone(),
        _ => vec![],
    }
}

/// Whether the whole sub-tree is native.
pub fn is_native(spec: &KernelSpec, id: ExprId, memo: &mut BTreeMap<ExprId, bool>) -> bool {
    if let Some(v) = memo.get(&id) {
        return *v;
    }
    let e = &spec.exprs[id as usize];
    let ok = node_native(spec, id)
        && children(e).into_iter().all(|c| is_native(spec, c, memo))
        && lazy_children(e).into_iter().all(|c| !can_error(spec, c));
    memo.insert(id, ok);
    ok
}

impl LowerPlan {
    /// Builds the plan of a spec that does not need whole-kernel fallback.
    pub fn new(spec: Arc<KernelSpec>, layout: Option<Arc<AggLayout>>) -> Self {
        let mut columns: Vec<ColumnPlan> = spec
            .inputs
            .iter()
            .map(|c| ColumnPlan {
                data_type: c.data_type.clone(),
                // Dictionary values may be NULL even when keys are not: always read logical nulls.
                nullable: c.nullable || matches!(c.data_type, DataType::Dictionary(..)),
                has_errors: false,
            })
            .collect();
        let mut precomputed = BTreeMap::new();
        let mut memo = BTreeMap::new();
        let precompute = |e: ExprId,
                          columns: &mut Vec<ColumnPlan>,
                          precomputed: &mut BTreeMap<ExprId, usize>| {
            if let Expr::Column(i) = spec.exprs[e as usize] {
                return i;
            }
            *precomputed.entry(e).or_insert_with(|| {
                columns.push(ColumnPlan {
                    data_type: spec.types[e as usize].clone(),
                    nullable: true,
                    has_errors: can_error(&spec, e),
                });
                columns.len() - 1
            })
        };
        // Walk every stage root; the maximal non-native sub-trees become pre-computed columns.
        fn walk(
            spec: &KernelSpec,
            e: ExprId,
            memo: &mut BTreeMap<ExprId, bool>,
            found: &mut Vec<ExprId>,
        ) {
            if is_native(spec, e, memo) {
                return;
            }
            let node = &spec.exprs[e as usize];
            if !node_native(spec, e) || lazy_children(node).into_iter().any(|c| can_error(spec, c))
            {
                found.push(e);
            } else {
                for c in children(node) {
                    walk(spec, c, memo, found);
                }
            }
        }
        let mut outputs = vec![];
        let mut roots = vec![];
        for st in &spec.stages {
            match st {
                Stage::Project(cols) => {
                    for (_, e) in cols {
                        let t = &spec.types[*e as usize];
                        if matches!(t, DataType::Utf8 | DataType::List(_)) {
                            outputs.push(OutputPlan::Take(precompute(
                                *e,
                                &mut columns,
                                &mut precomputed,
                            )));
                        } else {
                            roots.push(*e);
                            outputs.push(OutputPlan::Native(*e));
                        }
                    }
                }
                other => roots.extend(stage_roots(other)),
            }
        }
        if spec.projection().is_none() && spec.aggregate().is_none() {
            outputs = (0..spec.inputs.len()).map(OutputPlan::Take).collect();
        }
        let mut found = vec![];
        for r in roots {
            walk(&spec, r, &mut memo, &mut found);
        }
        for e in found {
            precompute(e, &mut columns, &mut precomputed);
        }
        let agg = spec.aggregate().and_then(|(keys, aggs)| {
            let layout = layout.clone()?;
            let mut args: Vec<ExprId> = vec![];
            let arg_slot = aggs
                .iter()
                .map(|a| {
                    a.arg.map(|e| match args.iter().position(|x| *x == e) {
                        Some(p) => p,
                        None => {
                            args.push(e);
                            args.len() - 1
                        }
                    })
                })
                .collect();
            Some(AggPlan {
                keys: keys.iter().map(|(_, e)| *e).collect(),
                args,
                arg_slot,
                layout,
            })
        });
        let mut consts = vec![];
        let mut const_offsets = BTreeMap::new();
        for (i, e) in spec.exprs.iter().enumerate() {
            if let Expr::Literal(Scalar::Utf8(s)) = e {
                const_offsets.insert(i as ExprId, (consts.len() as u32, s.len() as u32));
                consts.extend_from_slice(s.as_bytes());
            }
        }
        LowerPlan {
            filters: spec.filters(),
            spec,
            columns,
            precomputed,
            outputs,
            agg,
            consts,
            const_offsets,
        }
    }
}
