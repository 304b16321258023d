//! Cranelift lowering of a [`LowerPlan`] into one native function. This is the ONLY module that
//! imports `cranelift_*` (pinned to 0.135.8): module/ISA setup, the helper import table, the
//! produce/consume loop codegen and finalisation. It must not decide what is native (plan.rs
//! does) and must not allocate anything the kernel writes to (kernel.rs does).
//!
//! Generated code never traps: divisors are replaced by 1 when zero (or MIN/-1), float->int uses
//! saturating conversions behind explicit range checks, loads only touch rows < `rows` of buffers
//! whose lengths Rust checked, and dictionary/view indexes are clamped.

use std::collections::{BTreeMap, HashMap};
use std::sync::Mutex;

use arrow::datatypes::DataType;
use cranelift_codegen::ir::condcodes::{FloatCC, IntCC};
use cranelift_codegen::ir::types::{F32, F64, I8, I16, I32, I64, I128};
use cranelift_codegen::ir::{
    AbiParam, BlockArg, InstBuilder, MemFlagsData, StackSlotData, StackSlotKind, Type,
    UserFuncName, Value,
};
use cranelift_codegen::settings::{self, Configurable};
use cranelift_frontend::{FunctionBuilder, FunctionBuilderContext, Variable};
use cranelift_jit::{JITBuilder, JITModule};
use cranelift_module::{Linkage, Module, default_libcall_names};

use crate::abi::{self, off};
use crate::agg::{CHUNK_ROWS, KeyKind, ValueKind};
use crate::datetime::MICROS_PER_DAY;
use crate::error::{JitError, Result};
use crate::plan::{LowerPlan, OutputPlan};
use crate::spec::{
    AggFunc, BinaryOp, Expr, ExprId, Scalar, ScalarFunc, UnaryOp, is_float, is_timestamp,
};

/// Rows per chunk of a filtering map kernel: its selection vector (4 bytes a row) lives in the
/// kernel's stack frame, kept under one page so no stack probe is needed.
const SELECT_CHUNK_ROWS: usize = 512;

/// Rows per iteration of a filtering kernel's first loop.
const FILTER_UNROLL: usize = 4;

/// Code generation options.
#[derive(Debug, Clone)]
pub struct EmitOptions {
    /// Cranelift opt_level: "none", "speed" or "speed_and_size".
    pub opt_level: String,
    /// Run the Cranelift verifier.
    pub verify: bool,
    /// Keep the machine code listing.
    pub disasm: bool,
}

/// Owns the JIT module of one kernel; frees its code memory on drop.
pub struct CodeHandle {
    module: Mutex<Option<JITModule>>,
}

impl std::fmt::Debug for CodeHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("CodeHandle")
    }
}

impl Drop for CodeHandle {
    fn drop(&mut self) {
        let module = match self.module.get_mut() {
            Ok(m) => m.take(),
            Err(poisoned) => poisoned.into_inner().take(),
        };
        if let Some(m) = module {
            // SAFETY: the handle is dropped only when the last CompiledKernel (which owns the
            // only copies of the function pointer) is dropped, so no thread can be running it.
            unsafe { m.free_memory() };
        }
    }
}

/// A compiled kernel.
pub struct Emitted {
    /// Owner of the code memory.
    pub handle: CodeHandle,
    /// Entry point.
    pub func: abi::KernelFn,
    /// CLIF text before optimisation.
    pub clif: String,
    /// Machine code listing after register allocation (with [`EmitOptions::disasm`]).
    pub disasm: Option<String>,
}

fn cerr(e: impl std::fmt::Display) -> JitError {
    JitError::Compile(e.to_string())
}

/// Cranelift type of a logical type (strings are (ptr, len) pairs of I64).
fn clif_type(t: &DataType) -> Type {
    match t {
        DataType::Boolean | DataType::Int8 | DataType::UInt8 => I8,
        DataType::Int16 | DataType::UInt16 => I16,
        DataType::Int32 | DataType::UInt32 | DataType::Date32 => I32,
        DataType::Float32 => F32,
        DataType::Float64 => F64,
        DataType::Decimal128(..) => I128,
        _ => I64,
    }
}

fn is_signed(t: &DataType) -> bool {
    !matches!(
        t,
        DataType::UInt8
            | DataType::UInt16
            | DataType::UInt32
            | DataType::UInt64
            | DataType::Boolean
    )
}

/// Compiles a plan.
pub fn compile(plan: &LowerPlan, opts: &EmitOptions) -> Result<Emitted> {
    let mut flags = settings::builder();
    flags.set("opt_level", &opts.opt_level).map_err(cerr)?;
    flags
        .set(
            "enable_verifier",
            if opts.verify { "true" } else { "false" },
        )
        .map_err(cerr)?;
    flags.set("is_pic", "false").map_err(cerr)?;
    flags.set("use_colocated_libcalls", "false").map_err(cerr)?;
    let isa = cranelift_native::builder()
        .map_err(cerr)?
        .finish(settings::Flags::new(flags))
        .map_err(cerr)?;
    let mut jb = JITBuilder::with_isa(isa, default_libcall_names());
    jb.symbol("weir_rt_intern", crate::kernel::rt_intern as *const u8);
    let mut module = JITModule::new(jb);
    let ptr = module.target_config().pointer_type();

    let mut intern_sig = module.make_signature();
    intern_sig
        .params
        .extend([AbiParam::new(ptr), AbiParam::new(I64)]);
    intern_sig.returns.push(AbiParam::new(I32));
    let intern_id = module
        .declare_function("weir_rt_intern", Linkage::Import, &intern_sig)
        .map_err(cerr)?;

    let mut ctx = module.make_context();
    ctx.func.name = UserFuncName::testcase("weir_kernel");
    for _ in 0..4 {
        ctx.func.signature.params.push(AbiParam::new(ptr));
    }
    ctx.func.signature.returns.push(AbiParam::new(I32));
    let intern_ref = module.declare_func_in_func(intern_id, &mut ctx.func);
    let mut fctx = FunctionBuilderContext::new();
    let frontend_config = module.target_config();
    {
        let mut b = FunctionBuilder::new(&mut ctx.func, &mut fctx);
        let mut cg = Codegen::new(&mut b, plan);
        if plan.agg.is_some() {
            cg.agg_kernel(intern_ref)?;
        } else {
            cg.map_kernel()?;
        }
        b.seal_all_blocks();
        b.finalize(frontend_config);
    }
    let clif = ctx.func.display().to_string();
    ctx.set_disasm(opts.disasm);
    let id = module
        .declare_anonymous_function(&ctx.func.signature)
        .map_err(cerr)?;
    module
        .define_function(id, &mut ctx)
        .map_err(|e| JitError::Compile(format!("{e:?}")))?;
    let disasm = ctx
        .compiled_code()
        .and_then(|c| c.vcode.clone())
        .filter(|_| opts.disasm);
    module.clear_context(&mut ctx);
    module.finalize_definitions().map_err(cerr)?;
    let code = module.get_finalized_function(id);
    // SAFETY: the function was built with exactly the KernelFn signature (4 pointers -> u32)
    // in the host's default calling convention, which is extern "C".
    let func: abi::KernelFn = unsafe { std::mem::transmute::<*const u8, abi::KernelFn>(code) };
    Ok(Emitted {
        handle: CodeHandle {
            module: Mutex::new(Some(module)),
        },
        func,
        clif,
        disasm,
    })
}

/// A lowered value: value (and length for strings), validity (i8, None = never NULL) and error code (i32, None = cannot fail).
#[derive(Debug, Clone, Copy)]
struct Lv {
    v: Value,
    len: Option<Value>,
    valid: Option<Value>,
    err: Option<Value>,
}

/// The selection-vector pointer and, per native output, (expression, values, validity) pointers.
type OutputPointers = (Value, Vec<(ExprId, Value, Value)>);

/// What a loop counter is compared with: a variable (chunk ends, staged row counts) or a value
/// fixed for the whole kernel (the batch's row count).
#[derive(Clone, Copy)]
enum LoopBound {
    Var(Variable),
    Value(Value),
}

/// Loop-invariant pointers of one column.
#[derive(Debug, Clone, Copy)]
struct ColPtrs {
    values: Value,
    data: Option<Value>,
    count: Option<Value>,
    bit_offset: Option<Value>,
    validity: Option<Value>,
    validity_offset: Option<Value>,
    errors: Option<Value>,
}

struct Codegen<'a, 'b> {
    b: &'a mut FunctionBuilder<'b>,
    plan: &'a LowerPlan,
    /// Column pointers loaded once in the entry block (columns the filters read).
    cols: BTreeMap<usize, ColPtrs>,
    /// Column pointers loaded at first use in the current row (columns read only after the
    /// filters: keeping them out of the loop leaves registers for the hot filter path).
    row_cols: HashMap<usize, ColPtrs>,
    cols_base: Option<Value>,
    consts: Option<Value>,
    row: Option<Value>,
    col_cache: HashMap<usize, Lv>,
    expr_cache: HashMap<ExprId, Lv>,
}

fn flags() -> MemFlagsData {
    MemFlagsData::new().with_notrap()
}

impl<'a, 'b> Codegen<'a, 'b> {
    fn new(b: &'a mut FunctionBuilder<'b>, plan: &'a LowerPlan) -> Self {
        Codegen {
            b,
            plan,
            cols: BTreeMap::new(),
            row_cols: HashMap::new(),
            cols_base: None,
            consts: None,
            row: None,
            col_cache: HashMap::new(),
            expr_cache: HashMap::new(),
        }
    }

    fn ty(&self, e: ExprId) -> &'a DataType {
        &self.plan.spec.types[e as usize]
    }

    fn iconst(&mut self, t: Type, v: i64) -> Value {
        self.b.ins().iconst(t, v)
    }

    fn i128const(&mut self, v: i128) -> Value {
        if v >= i64::MIN as i128 && v <= i64::MAX as i128 {
            let x = self.b.ins().iconst(I64, v as i64);
            self.b.ins().sextend(I128, x)
        } else {
            let lo = self.b.ins().iconst(I64, v as u64 as i64);
            let hi = self.b.ins().iconst(I64, (v >> 64) as i64);
            self.b.ins().iconcat(lo, hi)
        }
    }

    fn load(&mut self, t: Type, base: Value, offset: i32) -> Value {
        self.b.ins().load(t, flags(), base, offset)
    }

    fn and_opt(&mut self, a: Option<Value>, b: Option<Value>) -> Option<Value> {
        match (a, b) {
            (Some(x), Some(y)) => Some(self.b.ins().band(x, y)),
            (x, None) => x,
            (None, y) => y,
        }
    }

    /// First non-zero error code (left to right).
    fn err_opt(&mut self, a: Option<Value>, b: Option<Value>) -> Option<Value> {
        match (a, b) {
            (Some(x), Some(y)) => {
                let nz = self.b.ins().icmp_imm_s(IntCC::NotEqual, x, 0);
                Some(self.b.ins().select(nz, x, y))
            }
            (x, None) => x,
            (None, y) => y,
        }
    }

    /// Error code `code` where `cond` (i8) holds and the operands are valid.
    fn err_if(&mut self, cond: Value, valid: Option<Value>, code: u32) -> Value {
        let cond = match valid {
            Some(v) => self.b.ins().band(cond, v),
            None => cond,
        };
        let c = self.iconst(I32, code as i64);
        let z = self.iconst(I32, 0);
        self.b.ins().select(cond, c, z)
    }

    fn not(&mut self, v: Value) -> Value {
        self.b.ins().icmp_imm_s(IntCC::Equal, v, 0)
    }

    fn one(&mut self) -> Value {
        self.iconst(I8, 1)
    }

    /// Loads the loop-invariant pointers of every column the plan reads (in the entry block).
    fn load_columns(&mut self, batch: Value) {
        let cols = self.load(I64, batch, off::BATCH_COLS);
        self.cols_base = Some(cols);
        self.consts = Some(self.load(I64, batch, off::BATCH_CONSTS));
        let eager = self.used_columns(!self.plan.filters.is_empty());
        for c in eager {
            let p = self.col_ptrs(c);
            self.cols.insert(c, p);
        }
    }

    /// Loads the pointers of column `c` from the batch's ColView array (in the current block).
    fn col_ptrs(&mut self, c: usize) -> ColPtrs {
        let cols = self.cols_base.expect("column array");
        let plan = &self.plan.columns[c];
        let base = self
            .b
            .ins()
            .iadd_imm_s(cols, (c as i64) * off::COL_SIZE as i64);
        let values = self.load(I64, base, off::COL_VALUES);
        let needs_data = matches!(
            plan.data_type,
            DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View | DataType::Dictionary(..)
        );
        let data = needs_data.then(|| self.load(I64, base, off::COL_DATA));
        let count = matches!(
            plan.data_type,
            DataType::Utf8View | DataType::Dictionary(..)
        )
        .then(|| self.load(I64, base, off::COL_COUNT));
        let bit_offset = (plan.data_type == DataType::Boolean)
            .then(|| self.load(I64, base, off::COL_BIT_OFFSET));
        let (validity, validity_offset) = if plan.nullable {
            (
                Some(self.load(I64, base, off::COL_VALIDITY)),
                Some(self.load(I64, base, off::COL_VALIDITY_OFFSET)),
            )
        } else {
            (None, None)
        };
        let errors = plan
            .has_errors
            .then(|| self.load(I64, base, off::COL_ERRORS));
        ColPtrs {
            values,
            data,
            count,
            bit_offset,
            validity,
            validity_offset,
            errors,
        }
    }

    /// Starts a new row: forgets per-row column loads, pointers and memoised expressions.
    fn start_row(&mut self, row: Value) {
        self.row = Some(row);
        self.col_cache.clear();
        self.expr_cache.clear();
        self.row_cols.clear();
    }

    /// Columns the kernel reads (only those the filters read when `filters_only`).
    fn used_columns(&self, filters_only: bool) -> Vec<usize> {
        let mut used = std::collections::BTreeSet::new();
        let spec = &self.plan.spec;
        let mut stack: Vec<ExprId> = self.plan.filters.clone();
        let outputs = if filters_only {
            &[][..]
        } else {
            &self.plan.outputs[..]
        };
        for o in outputs {
            match o {
                OutputPlan::Native(e) => stack.push(*e),
                OutputPlan::Take(c) if self.plan.columns[*c].has_errors => {
                    used.insert(*c);
                }
                OutputPlan::Take(_) => {}
            }
        }
        if let Some(a) = self.plan.agg.as_ref().filter(|_| !filters_only) {
            stack.extend(a.keys.iter().copied());
            stack.extend(a.args.iter().copied());
        }
        let mut seen = std::collections::BTreeSet::new();
        while let Some(e) = stack.pop() {
            if !seen.insert(e) {
                continue;
            }
            if let Some(c) = self.plan.precomputed.get(&e) {
                used.insert(*c);
                continue;
            }
            if let Expr::Column(i) = &spec.exprs[e as usize] {
                used.insert(*i);
            }
            stack.extend(crate::spec::children(&spec.exprs[e as usize]));
        }
        used.into_iter().collect()
    }

    /// Reads a bit at `offset + row` of a bitmap.
    fn bit(&mut self, bitmap: Value, offset: Value, row: Value) -> Value {
        let j = self.b.ins().iadd(offset, row);
        let byte_idx = self.b.ins().ushr_imm_u(j, 3);
        let addr = self.b.ins().iadd(bitmap, byte_idx);
        let byte = self.b.ins().uload8(I32, flags(), addr, 0);
        let sh = self.b.ins().band_imm_u(j, 7);
        let sh32 = self.b.ins().ireduce(I32, sh);
        let shifted = self.b.ins().ushr(byte, sh32);
        let bit = self.b.ins().band_imm_u(shifted, 1);
        self.b.ins().ireduce(I8, bit)
    }

    /// Loads column `c` at the current row (cached per row: a column is loaded at first use).
    fn column(&mut self, c: usize) -> Lv {
        if let Some(lv) = self.col_cache.get(&c) {
            return *lv;
        }
        let row = self.row.expect("row loop");
        let p = match self.cols.get(&c).or_else(|| self.row_cols.get(&c)) {
            Some(p) => *p,
            None => {
                let p = self.col_ptrs(c);
                self.row_cols.insert(c, p);
                p
            }
        };
        let dt = self.plan.columns[c].data_type.clone();
        let valid = match (p.validity, p.validity_offset) {
            (Some(v), Some(o)) => Some(self.bit(v, o, row)),
            _ => None,
        };
        let (v, len) = match &dt {
            DataType::Boolean => {
                let off = p.bit_offset.expect("bool offset");
                (self.bit(p.values, off, row), None)
            }
            DataType::Utf8 | DataType::LargeUtf8 => {
                let (w, t) = if dt == DataType::Utf8 {
                    (4, I32)
                } else {
                    (8, I64)
                };
                let idx = self.b.ins().imul_imm_s(row, w);
                let addr = self.b.ins().iadd(p.values, idx);
                let (start, end) = if t == I32 {
                    (
                        self.b.ins().sload32(flags(), addr, 0),
                        self.b.ins().sload32(flags(), addr, 4),
                    )
                } else {
                    (self.load(I64, addr, 0), self.load(I64, addr, 8))
                };
                let ptr = self.b.ins().iadd(p.data.expect("utf8 data"), start);
                let len = self.b.ins().isub(end, start);
                (ptr, Some(len))
            }
            DataType::Utf8View => {
                let idx = self.b.ins().imul_imm_s(row, 16);
                let view = self.b.ins().iadd(p.values, idx);
                let len = self.b.ins().uload32(flags(), view, 0);
                let inline = self.b.ins().iadd_imm_s(view, 4);
                let buf = self.b.ins().uload32(flags(), view, 8);
                let boff = self.b.ins().uload32(flags(), view, 12);
                let count = p.count.expect("view count");
                let in_range = self.b.ins().icmp(IntCC::UnsignedLessThan, buf, count);
                let zero = self.iconst(I64, 0);
                let buf = self.b.ins().select(in_range, buf, zero);
                let slot = self.b.ins().ishl_imm_u(buf, 3);
                let slot = self.b.ins().iadd(p.data.expect("view buffers"), slot);
                let base = self.load(I64, slot, 0);
                let outline = self.b.ins().iadd(base, boff);
                let small = self
                    .b
                    .ins()
                    .icmp_imm_u(IntCC::UnsignedLessThanOrEqual, len, 12);
                let ptr = self.b.ins().select(small, inline, outline);
                (ptr, Some(len))
            }
            DataType::Dictionary(kt, _) => {
                let (kty, signed) = (clif_type(kt), is_signed(kt));
                let w = kty.bytes() as i64;
                let idx = self.b.ins().imul_imm_s(row, w);
                let addr = self.b.ins().iadd(p.values, idx);
                let key = self.load(kty, addr, 0);
                let key = if kty == I64 {
                    key
                } else if signed {
                    self.b.ins().sextend(I64, key)
                } else {
                    self.b.ins().uextend(I64, key)
                };
                let count = p.count.expect("dict count");
                let in_range = self.b.ins().icmp(IntCC::UnsignedLessThan, key, count);
                let zero = self.iconst(I64, 0);
                let key = self.b.ins().select(in_range, key, zero);
                let pair = self.b.ins().ishl_imm_u(key, 4);
                let pair = self.b.ins().iadd(p.data.expect("dict data"), pair);
                (self.load(I64, pair, 0), Some(self.load(I64, pair, 8)))
            }
            t => {
                let ct = clif_type(t);
                let idx = self.b.ins().imul_imm_s(row, ct.bytes() as i64);
                let addr = self.b.ins().iadd(p.values, idx);
                (self.load(ct, addr, 0), None)
            }
        };
        // A NULL string has length 0 so nothing ever reads its bytes.
        let len = match (len, valid) {
            (Some(l), Some(ok)) => {
                let z = self.iconst(I64, 0);
                Some(self.b.ins().select(ok, l, z))
            }
            (l, _) => l,
        };
        let err = p.errors.map(|e| {
            let addr = self.b.ins().iadd(e, row);
            let flag = self.b.ins().uload8(I32, flags(), addr, 0);
            let nz = self.b.ins().icmp_imm_s(IntCC::NotEqual, flag, 0);
            let code = self.iconst(I32, (abi::ERR_PRECOMPUTED_BASE as usize + c) as i64);
            let z = self.iconst(I32, 0);
            self.b.ins().select(nz, code, z)
        });
        let lv = Lv { v, len, valid, err };
        self.col_cache.insert(c, lv);
        lv
    }

    fn literal(&mut self, id: ExprId, s: &Scalar) -> Lv {
        let t = self.ty(id).clone();
        let plain = |v| Lv {
            v,
            len: None,
            valid: None,
            err: None,
        };
        match s {
            Scalar::Null(_) => {
                let z = self.zero_of(&t);
                let len = (t == DataType::Utf8).then(|| self.iconst(I64, 0));
                let invalid = self.iconst(I8, 0);
                Lv {
                    v: z,
                    len,
                    valid: Some(invalid),
                    err: None,
                }
            }
            Scalar::Boolean(b) => plain(self.iconst(I8, *b as i64)),
            Scalar::Int8(v) => plain(self.iconst(I8, *v as i64)),
            Scalar::Int16(v) => plain(self.iconst(I16, *v as i64)),
            Scalar::Int32(v) => plain(self.iconst(I32, *v as i64)),
            Scalar::Int64(v) => plain(self.iconst(I64, *v)),
            Scalar::UInt8(v) => plain(self.iconst(I8, *v as i64)),
            Scalar::UInt16(v) => plain(self.iconst(I16, *v as i64)),
            Scalar::UInt32(v) => plain(self.iconst(I32, *v as i64)),
            Scalar::UInt64(v) => plain(self.iconst(I64, *v as i64)),
            Scalar::Float32(v) => plain(self.b.ins().f32const(*v)),
            Scalar::Float64(v) => plain(self.b.ins().f64const(*v)),
            Scalar::Decimal128(v, _, _) => plain(self.i128const(*v)),
            Scalar::Date32(v) => plain(self.iconst(I32, *v as i64)),
            Scalar::TimestampMicros(v, _) => plain(self.iconst(I64, *v)),
            Scalar::Utf8(_) => {
                let (o, l) = self.plan.const_offsets.get(&id).copied().unwrap_or((0, 0));
                let base = self.consts.expect("consts");
                let ptr = self.b.ins().iadd_imm_s(base, o as i64);
                let len = self.iconst(I64, l as i64);
                Lv {
                    v: ptr,
                    len: Some(len),
                    valid: None,
                    err: None,
                }
            }
        }
    }

    fn zero_of(&mut self, t: &DataType) -> Value {
        match clif_type(t) {
            F32 => self.b.ins().f32const(0.0),
            F64 => self.b.ins().f64const(0.0),
            I128 => self.i128const(0),
            ct => self.iconst(ct, 0),
        }
    }

    /// Lowers an expression at the current row (memoised per row).
    fn expr(&mut self, id: ExprId) -> Lv {
        if let Some(lv) = self.expr_cache.get(&id) {
            return *lv;
        }
        let lv = if let Some(c) = self.plan.precomputed.get(&id).copied() {
            self.column(c)
        } else {
            let e = self.plan.spec.exprs[id as usize].clone();
            self.lower(id, &e)
        };
        self.expr_cache.insert(id, lv);
        lv
    }

    fn lower(&mut self, id: ExprId, e: &Expr) -> Lv {
        let ansi = self.plan.spec.ansi;
        match e {
            Expr::Column(c) => self.column(*c),
            Expr::Literal(s) => self.literal(id, s),
            Expr::Unary { op, expr } => {
                let a = self.expr(*expr);
                match op {
                    UnaryOp::IsNull | UnaryOp::IsNotNull => {
                        let v = match (a.valid, op) {
                            (None, UnaryOp::IsNull) => self.iconst(I8, 0),
                            (None, _) => self.iconst(I8, 1),
                            (Some(k), UnaryOp::IsNull) => self.not(k),
                            (Some(k), _) => k,
                        };
                        Lv {
                            v,
                            len: None,
                            valid: None,
                            err: a.err,
                        }
                    }
                    UnaryOp::Not => Lv {
                        v: self.not(a.v),
                        ..a
                    },
                    UnaryOp::Neg => {
                        let t = self.ty(id).clone();
                        if is_float(&t) {
                            Lv {
                                v: self.b.ins().fneg(a.v),
                                ..a
                            }
                        } else {
                            let v = self.b.ins().ineg(a.v);
                            let mut err = a.err;
                            if ansi && !matches!(t, DataType::Decimal128(..)) {
                                let bad = if is_signed(&t) {
                                    let min = self.int_min(&t);
                                    self.b.ins().icmp(IntCC::Equal, a.v, min)
                                } else {
                                    self.b.ins().icmp_imm_s(IntCC::NotEqual, a.v, 0)
                                };
                                let e2 = self.err_if(bad, a.valid, abi::ERR_OVERFLOW);
                                err = self.err_opt(err, Some(e2));
                            }
                            Lv {
                                v,
                                len: None,
                                valid: a.valid,
                                err,
                            }
                        }
                    }
                }
            }
            Expr::Binary {
                op: BinaryOp::And | BinaryOp::Or,
                left,
                right,
            } => {
                let op = if let Expr::Binary { op, .. } = e {
                    *op
                } else {
                    BinaryOp::And
                };
                let a = self.expr(*left);
                let b = self.expr(*right);
                let err = self.err_opt(a.err, b.err);
                let one = self.one();
                let ak = a.valid.unwrap_or(one);
                let bk = b.valid.unwrap_or(one);
                let (v, valid) = if op == BinaryOp::And {
                    let v = self.b.ins().band(a.v, b.v);
                    if a.valid.is_none() && b.valid.is_none() {
                        (v, None)
                    } else {
                        let both = self.b.ins().band(ak, bk);
                        let na = self.not(a.v);
                        let a_false = self.b.ins().band(ak, na);
                        let nb = self.not(b.v);
                        let b_false = self.b.ins().band(bk, nb);
                        let k = self.b.ins().bor(both, a_false);
                        (v, Some(self.b.ins().bor(k, b_false)))
                    }
                } else {
                    let v = self.b.ins().bor(a.v, b.v);
                    if a.valid.is_none() && b.valid.is_none() {
                        (v, None)
                    } else {
                        let both = self.b.ins().band(ak, bk);
                        let a_true = self.b.ins().band(ak, a.v);
                        let b_true = self.b.ins().band(bk, b.v);
                        let k = self.b.ins().bor(both, a_true);
                        (v, Some(self.b.ins().bor(k, b_true)))
                    }
                };
                Lv {
                    v,
                    len: None,
                    valid,
                    err,
                }
            }
            Expr::Binary { op, left, right }
                if let Some((x, d)) = self.divisibility_pattern(*op, *left, *right) =>
            {
                self.divisibility_test(x, d, *op == BinaryOp::NotEq)
            }
            Expr::Binary { op, left, right } => {
                let a = self.expr(*left);
                let b = self.expr(*right);
                let err = self.err_opt(a.err, b.err);
                let lt = self.ty(*left).clone();
                let rt = self.ty(*right).clone();
                if *op == BinaryOp::EqNullSafe {
                    let eq = self.compare(BinaryOp::Eq, a, &lt, b, &rt);
                    let one = self.one();
                    let ak = a.valid.unwrap_or(one);
                    let bk = b.valid.unwrap_or(one);
                    let both = self.b.ins().band(ak, bk);
                    let both_eq = self.b.ins().band(both, eq);
                    let any = self.b.ins().bor(ak, bk);
                    let neither = self.not(any);
                    let v = self.b.ins().bor(both_eq, neither);
                    return Lv {
                        v,
                        len: None,
                        valid: None,
                        err,
                    };
                }
                let valid = self.and_opt(a.valid, b.valid);
                if op.is_comparison() {
                    let v = self.compare(*op, a, &lt, b, &rt);
                    return Lv {
                        v,
                        len: None,
                        valid,
                        err,
                    };
                }
                if matches!(op, BinaryOp::Div | BinaryOp::Mod)
                    && self.const_divisor(*right).is_some()
                {
                    // A literal divisor that is neither 0 nor -1 needs no guard (and lets
                    // Cranelift strength-reduce the division).
                    let v = match (op, is_signed(&lt)) {
                        (BinaryOp::Div, true) => self.b.ins().sdiv(a.v, b.v),
                        (BinaryOp::Div, false) => self.b.ins().udiv(a.v, b.v),
                        (_, true) => self.b.ins().srem(a.v, b.v),
                        (_, false) => self.b.ins().urem(a.v, b.v),
                    };
                    return Lv {
                        v,
                        len: None,
                        valid,
                        err,
                    };
                }
                self.arith(*op, a, b, &lt, &rt, self.ty(id).clone(), valid, err)
            }
            Expr::Cast { expr, to, ansi } => {
                let a = self.expr(*expr);
                let from = self.ty(*expr).clone();
                self.cast(a, &from, to, *ansi)
            }
            Expr::Case {
                branches,
                otherwise,
            } => {
                let t = self.ty(id).clone();
                let conds: Vec<(Lv, Lv)> = branches
                    .iter()
                    .map(|(c, v)| (self.expr(*c), self.expr(*v)))
                    .collect();
                let mut res = match otherwise {
                    Some(o) => self.expr(*o),
                    None => self.literal(id, &Scalar::Null(t.clone())),
                };
                let first_err = conds.first().and_then(|(c, _)| c.err);
                for (c, v) in conds.into_iter().rev() {
                    let take = match c.valid {
                        Some(k) => self.b.ins().band(k, c.v),
                        None => c.v,
                    };
                    res = self.select_lv(take, v, res, &t);
                }
                res.err = first_err;
                res
            }
            Expr::Coalesce(args) => {
                let t = self.ty(id).clone();
                let vals: Vec<Lv> = args.iter().map(|a| self.expr(*a)).collect();
                let first_err = vals[0].err;
                let mut res = vals[vals.len() - 1];
                for v in vals.into_iter().rev().skip(1) {
                    if let Some(k) = v.valid {
                        res = self.select_lv(k, v, res, &t);
                    } else {
                        res = v;
                    }
                }
                res.err = first_err;
                res
            }
            Expr::InList {
                expr,
                list,
                negated,
            } => {
                let p = self.expr(*expr);
                let pt = self.ty(*expr).clone();
                let mut any_eq = self.iconst(I8, 0);
                let mut saw_null = self.iconst(I8, 0);
                for c in list {
                    let x = self.expr(*c);
                    let xt = self.ty(*c).clone();
                    let eq = self.compare(BinaryOp::Eq, p, &pt, x, &xt);
                    let hit = match x.valid {
                        Some(k) => {
                            let nk = self.not(k);
                            saw_null = self.b.ins().bor(saw_null, nk);
                            self.b.ins().band(eq, k)
                        }
                        None => eq,
                    };
                    any_eq = self.b.ins().bor(any_eq, hit);
                }
                let no_null = self.not(saw_null);
                let decided = self.b.ins().bor(any_eq, no_null);
                let valid = self.and_opt(p.valid, Some(decided));
                let v = if *negated { self.not(any_eq) } else { any_eq };
                Lv {
                    v,
                    len: None,
                    valid,
                    err: p.err,
                }
            }
            Expr::WindowStart {
                time,
                size_us,
                start_offset_us,
                ..
            } => {
                let a = self.expr(*time);
                let off = self.iconst(I64, *start_offset_us);
                let (d, of1) = self.b.ins().ssub_overflow(a.v, off);
                let r = self.b.ins().srem_imm_s(d, *size_us);
                let neg = self.b.ins().icmp_imm_s(IntCC::SignedLessThan, r, 0);
                let size = self.iconst(I64, *size_us);
                let zero = self.iconst(I64, 0);
                let adj = self.b.ins().select(neg, size, zero);
                let r = self.b.ins().iadd(r, adj);
                let (start, of2) = self.b.ins().ssub_overflow(a.v, r);
                let of = self.b.ins().bor(of1, of2);
                let ok = self.not(of);
                let valid = self.and_opt(a.valid, Some(ok));
                Lv {
                    v: start,
                    len: None,
                    valid,
                    err: a.err,
                }
            }
            Expr::Call { func, args } => self.call(id, *func, args),
        }
    }

    /// The value of an integer literal divisor that can never trap (not 0, not -1 when signed).
    /// `x % d = 0` or `x % d <> 0` (either side) for an integer `x` and a literal `d` with
    /// |d| ≥ 2: returns (x, d).
    fn divisibility_pattern(
        &self,
        op: BinaryOp,
        left: ExprId,
        right: ExprId,
    ) -> Option<(ExprId, i128)> {
        if !matches!(op, BinaryOp::Eq | BinaryOp::NotEq) {
            return None;
        }
        let is_zero = |e: ExprId| {
            !self.plan.precomputed.contains_key(&e)
                && matches!(
                    &self.plan.spec.exprs[e as usize],
                    Expr::Literal(
                        Scalar::Int8(0)
                            | Scalar::Int16(0)
                            | Scalar::Int32(0)
                            | Scalar::Int64(0)
                            | Scalar::UInt8(0)
                            | Scalar::UInt16(0)
                            | Scalar::UInt32(0)
                            | Scalar::UInt64(0)
                    )
                )
        };
        let rem = match (is_zero(left), is_zero(right)) {
            (false, true) => left,
            (true, false) => right,
            _ => return None,
        };
        if self.plan.precomputed.contains_key(&rem) {
            return None;
        }
        let Expr::Binary {
            op: BinaryOp::Mod,
            left: x,
            right: d,
        } = &self.plan.spec.exprs[rem as usize]
        else {
            return None;
        };
        if !crate::spec::is_integer(self.ty(*x)) {
            return None;
        }
        let d = self.const_divisor(*d)?;
        (d.unsigned_abs() >= 2).then_some((*x, d))
    }

    /// Whether `x` is divisible by the literal `d` (negated for `<>`), without a division:
    /// the low bits for the power-of-two part of |d|, and for its odd part d0 a multiplication
    /// by d0's inverse mod 2^64 (a bijection mapping exactly the multiples of d0 onto
    /// 0..=u64::MAX / d0). A signed `x` is first biased by 2^63 (exactly, as an unsigned
    /// value u); u ≡ 2^63 (mod d0) then tests x, and u below 2^63 mod d0 cannot qualify.
    /// NULL `x` gives NULL; `x`'s own errors pass through (the remainder itself cannot fail).
    fn divisibility_test(&mut self, x: ExprId, d: i128, negate: bool) -> Lv {
        let xt = self.ty(x).clone();
        let lx = self.expr(x);
        let signed = is_signed(&xt);
        let x64 = self.widen_i64(lx.v, &xt);
        let d_abs = d.unsigned_abs() as u64;
        let k = d_abs.trailing_zeros();
        let d0 = d_abs >> k;
        let mut pass: Option<Value> = None;
        if k > 0 {
            let mask = ((1u64 << k) - 1) as i64;
            let low = self.b.ins().band_imm_u(x64, mask);
            pass = Some(self.b.ins().icmp_imm_s(IntCC::Equal, low, 0));
        }
        if d0 > 1 {
            let mut inv = d0;
            for _ in 0..5 {
                inv = inv.wrapping_mul(2u64.wrapping_sub(d0.wrapping_mul(inv)));
            }
            let limit = (u64::MAX / d0) as i64;
            let odd_ok = if signed {
                let r = ((1u128 << 63) % u128::from(d0)) as i64;
                let u = self.b.ins().bxor_imm_s(x64, i64::MIN);
                let ge = self
                    .b
                    .ins()
                    .icmp_imm_s(IntCC::UnsignedGreaterThanOrEqual, u, r);
                let shifted = self.b.ins().iadd_imm_s(u, r.wrapping_neg());
                let p = self.b.ins().imul_imm_s(shifted, inv as i64);
                let le = self
                    .b
                    .ins()
                    .icmp_imm_s(IntCC::UnsignedLessThanOrEqual, p, limit);
                self.b.ins().band(ge, le)
            } else {
                let p = self.b.ins().imul_imm_s(x64, inv as i64);
                self.b
                    .ins()
                    .icmp_imm_s(IntCC::UnsignedLessThanOrEqual, p, limit)
            };
            pass = Some(match pass {
                Some(low_ok) => self.b.ins().band(low_ok, odd_ok),
                None => odd_ok,
            });
        }
        let pass = pass.expect("|d| >= 2 has a power-of-two or an odd part");
        let v = if negate { self.not(pass) } else { pass };
        Lv {
            v,
            len: None,
            valid: lx.valid,
            err: lx.err,
        }
    }

    fn const_divisor(&self, e: ExprId) -> Option<i128> {
        if self.plan.precomputed.contains_key(&e) {
            return None;
        }
        let v = match &self.plan.spec.exprs[e as usize] {
            Expr::Literal(s) => match s {
                Scalar::Int8(v) => *v as i128,
                Scalar::Int16(v) => *v as i128,
                Scalar::Int32(v) => *v as i128,
                Scalar::Int64(v) => *v as i128,
                Scalar::UInt8(v) => *v as i128,
                Scalar::UInt16(v) => *v as i128,
                Scalar::UInt32(v) => *v as i128,
                Scalar::UInt64(v) => *v as i128,
                _ => return None,
            },
            _ => return None,
        };
        let signed = is_signed(self.ty(e));
        (v != 0 && !(signed && v == -1)).then_some(v)
    }

    fn int_min(&mut self, t: &DataType) -> Value {
        let ct = clif_type(t);
        let min = match ct {
            I8 => i8::MIN as i64,
            I16 => i16::MIN as i64,
            I32 => i32::MIN as i64,
            _ => i64::MIN,
        };
        self.iconst(ct, min)
    }

    fn select_lv(&mut self, c: Value, a: Lv, b: Lv, t: &DataType) -> Lv {
        let v = self.b.ins().select(c, a.v, b.v);
        let len = match (a.len, b.len) {
            (Some(x), Some(y)) => Some(self.b.ins().select(c, x, y)),
            _ => None,
        };
        let valid = match (a.valid, b.valid) {
            (None, None) => None,
            (x, y) => {
                let one = self.one();
                let (x, y) = (x.unwrap_or(one), y.unwrap_or(one));
                Some(self.b.ins().select(c, x, y))
            }
        };
        let _ = t;
        Lv {
            v,
            len,
            valid,
            err: None,
        }
    }

    /// Whether `n` bytes at `a` and `b` are equal (i8).
    fn bytes_equal(&mut self, a: Value, b: Value, n: Value) -> Value {
        let head = self.b.create_block();
        let body = self.b.create_block();
        let done = self.b.create_block();
        let j = self.b.append_block_param(head, I64);
        let res = self.b.append_block_param(done, I8);
        let zero = self.iconst(I64, 0);
        self.b.ins().jump(head, &[BlockArg::Value(zero)]);
        self.b.switch_to_block(head);
        let more = self.b.ins().icmp(IntCC::UnsignedLessThan, j, n);
        let yes = self.iconst(I8, 1);
        self.b
            .ins()
            .brif(more, body, &[], done, &[BlockArg::Value(yes)]);
        self.b.switch_to_block(body);
        let pa = self.b.ins().iadd(a, j);
        let pb = self.b.ins().iadd(b, j);
        let ca = self.b.ins().uload8(I32, flags(), pa, 0);
        let cb = self.b.ins().uload8(I32, flags(), pb, 0);
        let ne = self.b.ins().icmp(IntCC::NotEqual, ca, cb);
        let j2 = self.b.ins().iadd_imm_s(j, 1);
        let no = self.iconst(I8, 0);
        self.b.ins().brif(
            ne,
            done,
            &[BlockArg::Value(no)],
            head,
            &[BlockArg::Value(j2)],
        );
        self.b.switch_to_block(done);
        res
    }

    /// Number of UTF-8 characters of a string: bytes that are not continuation bytes (i32).
    fn utf8_char_count(&mut self, s: Lv) -> Value {
        let n = s.len.expect("len");
        let head = self.b.create_block();
        let body = self.b.create_block();
        let done = self.b.create_block();
        let j = self.b.append_block_param(head, I64);
        let count = self.b.append_block_param(head, I64);
        let res = self.b.append_block_param(done, I64);
        let zero = self.iconst(I64, 0);
        self.b
            .ins()
            .jump(head, &[BlockArg::Value(zero), BlockArg::Value(zero)]);
        self.b.switch_to_block(head);
        let more = self.b.ins().icmp(IntCC::UnsignedLessThan, j, n);
        self.b
            .ins()
            .brif(more, body, &[], done, &[BlockArg::Value(count)]);
        self.b.switch_to_block(body);
        let p = self.b.ins().iadd(s.v, j);
        let c = self.b.ins().uload8(I32, flags(), p, 0);
        let top = self.b.ins().band_imm_u(c, 0xC0);
        let starts = self.b.ins().icmp_imm_s(IntCC::NotEqual, top, 0x80);
        let inc = self.b.ins().uextend(I64, starts);
        let count2 = self.b.ins().iadd(count, inc);
        let j2 = self.b.ins().iadd_imm_s(j, 1);
        self.b
            .ins()
            .jump(head, &[BlockArg::Value(j2), BlockArg::Value(count2)]);
        self.b.switch_to_block(done);
        self.b.ins().ireduce(I32, res)
    }

    /// Byte-wise comparison of two strings: -1, 0 or 1 (i32).
    fn str_cmp(&mut self, a: Lv, b: Lv) -> Value {
        let (la, lb) = (a.len.expect("len"), b.len.expect("len"));
        let n = self.b.ins().umin(la, lb);
        let head = self.b.create_block();
        let body = self.b.create_block();
        let differ = self.b.create_block();
        let done = self.b.create_block();
        let j = self.b.append_block_param(head, I64);
        let res = self.b.append_block_param(done, I32);
        let zero = self.iconst(I64, 0);
        self.b.ins().jump(head, &[BlockArg::Value(zero)]);
        self.b.switch_to_block(head);
        let more = self.b.ins().icmp(IntCC::UnsignedLessThan, j, n);
        // Equal prefix: order by length.
        let gt = self.b.ins().icmp(IntCC::UnsignedGreaterThan, la, lb);
        let lt = self.b.ins().icmp(IntCC::UnsignedLessThan, la, lb);
        let gt32 = self.b.ins().uextend(I32, gt);
        let lt32 = self.b.ins().uextend(I32, lt);
        let by_len = self.b.ins().isub(gt32, lt32);
        self.b
            .ins()
            .brif(more, body, &[], done, &[BlockArg::Value(by_len)]);
        self.b.switch_to_block(body);
        let pa = self.b.ins().iadd(a.v, j);
        let pb = self.b.ins().iadd(b.v, j);
        let ca = self.b.ins().uload8(I32, flags(), pa, 0);
        let cb = self.b.ins().uload8(I32, flags(), pb, 0);
        let ne = self.b.ins().icmp(IntCC::NotEqual, ca, cb);
        let j2 = self.b.ins().iadd_imm_s(j, 1);
        self.b
            .ins()
            .brif(ne, differ, &[], head, &[BlockArg::Value(j2)]);
        self.b.switch_to_block(differ);
        let less = self.b.ins().icmp(IntCC::UnsignedLessThan, ca, cb);
        let m1 = self.iconst(I32, -1);
        let p1 = self.iconst(I32, 1);
        let r = self.b.ins().select(less, m1, p1);
        self.b.ins().jump(done, &[BlockArg::Value(r)]);
        self.b.switch_to_block(done);
        res
    }

    fn compare(&mut self, op: BinaryOp, a: Lv, lt: &DataType, b: Lv, rt: &DataType) -> Value {
        if *lt == DataType::Utf8 {
            let c = self.str_cmp(a, b);
            let cc = int_cc(op, true);
            return self.b.ins().icmp_imm_s(cc, c, 0);
        }
        if is_float(lt) {
            return self.float_cmp(op, a.v, b.v);
        }
        let (mut x, mut y) = (a.v, b.v);
        if let (DataType::Decimal128(_, s1), DataType::Decimal128(_, s2)) = (lt, rt) {
            if s1 < s2 {
                let m = self.i128const(10i128.pow((s2 - s1) as u32));
                x = self.b.ins().imul(x, m);
            } else if s2 < s1 {
                let m = self.i128const(10i128.pow((s1 - s2) as u32));
                y = self.b.ins().imul(y, m);
            }
        }
        self.b.ins().icmp(int_cc(op, is_signed(lt)), x, y)
    }

    /// Spark order: NaN = NaN, NaN greatest, -0.0 = 0.0.
    fn float_cmp(&mut self, op: BinaryOp, a: Value, b: Value) -> Value {
        let a_nan = self.b.ins().fcmp(FloatCC::Unordered, a, a);
        let b_nan = self.b.ins().fcmp(FloatCC::Unordered, b, b);
        let lt = |s: &mut Self, x: Value, y: Value, x_nan: Value, y_nan: Value| {
            let plain = s.b.ins().fcmp(FloatCC::LessThan, x, y);
            let x_num = s.not(x_nan);
            let nan_above = s.b.ins().band(x_num, y_nan);
            s.b.ins().bor(plain, nan_above)
        };
        let eq = |s: &mut Self| {
            let plain = s.b.ins().fcmp(FloatCC::Equal, a, b);
            let both = s.b.ins().band(a_nan, b_nan);
            s.b.ins().bor(plain, both)
        };
        match op {
            BinaryOp::Eq => eq(self),
            BinaryOp::NotEq => {
                let e = eq(self);
                self.not(e)
            }
            BinaryOp::Lt => lt(self, a, b, a_nan, b_nan),
            BinaryOp::Gt => lt(self, b, a, b_nan, a_nan),
            BinaryOp::LtEq => {
                let g = lt(self, b, a, b_nan, a_nan);
                self.not(g)
            }
            _ => {
                let l = lt(self, a, b, a_nan, b_nan);
                self.not(l)
            }
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn arith(
        &mut self,
        op: BinaryOp,
        a: Lv,
        b: Lv,
        lt: &DataType,
        rt: &DataType,
        out: DataType,
        valid: Option<Value>,
        err: Option<Value>,
    ) -> Lv {
        let ansi = self.plan.spec.ansi;
        if is_float(&out) {
            return match op {
                BinaryOp::Add => Lv {
                    v: self.b.ins().fadd(a.v, b.v),
                    len: None,
                    valid,
                    err,
                },
                BinaryOp::Sub => Lv {
                    v: self.b.ins().fsub(a.v, b.v),
                    len: None,
                    valid,
                    err,
                },
                BinaryOp::Mul => Lv {
                    v: self.b.ins().fmul(a.v, b.v),
                    len: None,
                    valid,
                    err,
                },
                _ => {
                    let z = self.zero_of(&out);
                    let zero = self.b.ins().fcmp(FloatCC::Equal, b.v, z);
                    let v = self.b.ins().fdiv(a.v, b.v);
                    if ansi {
                        let e2 = self.err_if(zero, valid, abi::ERR_DIV_ZERO);
                        let err = self.err_opt(err, Some(e2));
                        Lv {
                            v,
                            len: None,
                            valid,
                            err,
                        }
                    } else {
                        let nz = self.not(zero);
                        let valid = self.and_opt(valid, Some(nz));
                        Lv {
                            v,
                            len: None,
                            valid,
                            err,
                        }
                    }
                }
            };
        }
        if let (
            DataType::Decimal128(_, s1),
            DataType::Decimal128(_, s2),
            DataType::Decimal128(p, s),
        ) = (lt, rt, &out)
        {
            let (mut x, mut y) = (a.v, b.v);
            if op != BinaryOp::Mul {
                if s1 < s {
                    let m = self.i128const(10i128.pow((*s - *s1) as u32));
                    x = self.b.ins().imul(x, m);
                }
                if s2 < s {
                    let m = self.i128const(10i128.pow((*s - *s2) as u32));
                    y = self.b.ins().imul(y, m);
                }
            }
            let v = match op {
                BinaryOp::Add => self.b.ins().iadd(x, y),
                BinaryOp::Sub => self.b.ins().isub(x, y),
                _ => self.b.ins().imul(x, y),
            };
            let bound = 10i128.pow(*p as u32);
            let hi = self.i128const(bound);
            let lo = self.i128const(-bound);
            let below = self.b.ins().icmp(IntCC::SignedLessThan, v, hi);
            let above = self.b.ins().icmp(IntCC::SignedGreaterThan, v, lo);
            let fits = self.b.ins().band(below, above);
            return self.overflow_result(v, fits, valid, err, ansi);
        }
        let t = clif_type(&out);
        let signed = is_signed(&out);
        match op {
            BinaryOp::Add | BinaryOp::Sub | BinaryOp::Mul => {
                if !ansi {
                    let v = match op {
                        BinaryOp::Add => self.b.ins().iadd(a.v, b.v),
                        BinaryOp::Sub => self.b.ins().isub(a.v, b.v),
                        _ => self.b.ins().imul(a.v, b.v),
                    };
                    return Lv {
                        v,
                        len: None,
                        valid,
                        err,
                    };
                }
                let (v, of) = if t == I64 {
                    match (op, signed) {
                        (BinaryOp::Add, true) => self.b.ins().sadd_overflow(a.v, b.v),
                        (BinaryOp::Add, false) => self.b.ins().uadd_overflow(a.v, b.v),
                        (BinaryOp::Sub, true) => self.b.ins().ssub_overflow(a.v, b.v),
                        (BinaryOp::Sub, false) => self.b.ins().usub_overflow(a.v, b.v),
                        (_, true) => self.b.ins().smul_overflow(a.v, b.v),
                        (_, false) => self.b.ins().umul_overflow(a.v, b.v),
                    }
                } else {
                    let ext = |s: &mut Self, x: Value| {
                        if signed {
                            s.b.ins().sextend(I64, x)
                        } else {
                            s.b.ins().uextend(I64, x)
                        }
                    };
                    let (x, y) = (ext(self, a.v), ext(self, b.v));
                    let wide = match op {
                        BinaryOp::Add => self.b.ins().iadd(x, y),
                        BinaryOp::Sub => self.b.ins().isub(x, y),
                        _ => self.b.ins().imul(x, y),
                    };
                    let narrow = self.b.ins().ireduce(t, wide);
                    let back = ext(self, narrow);
                    (narrow, self.b.ins().icmp(IntCC::NotEqual, back, wide))
                };
                let e2 = self.err_if(of, valid, abi::ERR_OVERFLOW);
                let err = self.err_opt(err, Some(e2));
                Lv {
                    v,
                    len: None,
                    valid,
                    err,
                }
            }
            _ => {
                let zero = self.b.ins().icmp_imm_s(IntCC::Equal, b.v, 0);
                let mut bad = zero;
                let mut min_by_minus1 = None;
                if signed {
                    let m1 = self.b.ins().icmp_imm_s(IntCC::Equal, b.v, -1);
                    let min = self.int_min(&out);
                    let is_min = self.b.ins().icmp(IntCC::Equal, a.v, min);
                    let ovf = self.b.ins().band(m1, is_min);
                    bad = self.b.ins().bor(bad, ovf);
                    min_by_minus1 = Some(ovf);
                }
                let one = self.iconst(t, 1);
                let divisor = self.b.ins().select(bad, one, b.v);
                let v = match (op, signed) {
                    (BinaryOp::Div, true) => self.b.ins().sdiv(a.v, divisor),
                    (BinaryOp::Div, false) => self.b.ins().udiv(a.v, divisor),
                    (_, true) => self.b.ins().srem(a.v, divisor),
                    (_, false) => self.b.ins().urem(a.v, divisor),
                };
                if ansi {
                    let e_zero = self.err_if(zero, valid, abi::ERR_DIV_ZERO);
                    let mut err = self.err_opt(err, Some(e_zero));
                    if let (BinaryOp::Div, Some(ovf)) = (op, min_by_minus1) {
                        let e_ovf = self.err_if(ovf, valid, abi::ERR_OVERFLOW);
                        err = self.err_opt(err, Some(e_ovf));
                    }
                    Lv {
                        v,
                        len: None,
                        valid,
                        err,
                    }
                } else {
                    let nz = self.not(zero);
                    let valid = self.and_opt(valid, Some(nz));
                    Lv {
                        v,
                        len: None,
                        valid,
                        err,
                    }
                }
            }
        }
    }

    /// NULL (or an overflow error in ANSI mode) where `fits` is false.
    fn overflow_result(
        &mut self,
        v: Value,
        fits: Value,
        valid: Option<Value>,
        err: Option<Value>,
        ansi: bool,
    ) -> Lv {
        if ansi {
            let bad = self.not(fits);
            let e2 = self.err_if(bad, valid, abi::ERR_OVERFLOW);
            let err = self.err_opt(err, Some(e2));
            Lv {
                v,
                len: None,
                valid,
                err,
            }
        } else {
            let valid = self.and_opt(valid, Some(fits));
            Lv {
                v,
                len: None,
                valid,
                err,
            }
        }
    }

    fn widen_i128(&mut self, v: Value, t: &DataType) -> Value {
        let ct = clif_type(t);
        if ct == I128 {
            v
        } else if is_signed(t) {
            self.b.ins().sextend(I128, v)
        } else {
            self.b.ins().uextend(I128, v)
        }
    }

    /// Range check of an i128 against an integer type's bounds.
    fn fits_int(&mut self, wide: Value, t: &DataType) -> Value {
        let (lo, hi) = crate::interp::int_bounds(t);
        let lo = self.i128const(lo);
        let hi = self.i128const(hi);
        let a = self.b.ins().icmp(IntCC::SignedGreaterThanOrEqual, wide, lo);
        let b = self.b.ins().icmp(IntCC::SignedLessThanOrEqual, wide, hi);
        self.b.ins().band(a, b)
    }

    fn cast(&mut self, a: Lv, from: &DataType, to: &DataType, ansi: bool) -> Lv {
        if from == to || (is_timestamp(from) && is_timestamp(to)) {
            return a;
        }
        let fail = |s: &mut Self, v: Value, ok: Value| {
            if ansi {
                let bad = s.not(ok);
                let e2 = s.err_if(bad, a.valid, abi::ERR_CAST);
                let err = s.err_opt(a.err, Some(e2));
                Lv {
                    v,
                    len: None,
                    valid: a.valid,
                    err,
                }
            } else {
                let valid = s.and_opt(a.valid, Some(ok));
                Lv {
                    v,
                    len: None,
                    valid,
                    err: a.err,
                }
            }
        };
        let plain = |v: Value| Lv {
            v,
            len: None,
            valid: a.valid,
            err: a.err,
        };
        match (from, to) {
            (DataType::Boolean, t) if is_float(t) => {
                let x = self.b.ins().uextend(I32, a.v);
                plain(self.b.ins().fcvt_from_sint(clif_type(t), x))
            }
            (f, DataType::Boolean) if is_float(f) => {
                let z = self.zero_of(f);
                plain(self.b.ins().fcmp(FloatCC::NotEqual, a.v, z))
            }
            (_, DataType::Boolean) => plain(self.b.ins().icmp_imm_s(IntCC::NotEqual, a.v, 0)),
            (f, t) if is_float(f) && is_float(t) => plain(if *t == DataType::Float64 {
                self.b.ins().fpromote(F64, a.v)
            } else {
                self.b.ins().fdemote(F32, a.v)
            }),
            (f, t) if !is_float(f) && is_float(t) => {
                let x = if clif_type(f).bits() < 32 {
                    if is_signed(f) {
                        self.b.ins().sextend(I32, a.v)
                    } else {
                        self.b.ins().uextend(I32, a.v)
                    }
                } else {
                    a.v
                };
                let ft = clif_type(t);
                plain(if is_signed(f) {
                    self.b.ins().fcvt_from_sint(ft, x)
                } else {
                    self.b.ins().fcvt_from_uint(ft, x)
                })
            }
            (f, t) if is_float(f) => {
                // float -> integer: truncate, range-check the truncated value, saturating convert.
                let x = if *f == DataType::Float32 {
                    self.b.ins().fpromote(F64, a.v)
                } else {
                    a.v
                };
                let tr = self.b.ins().trunc(x);
                let (lo, hi) = crate::interp::int_bounds(t);
                let (lo_f, hi_f) = (lo as f64, hi as f64);
                let lo_c = self.b.ins().f64const(lo_f);
                let ge = self.b.ins().fcmp(FloatCC::GreaterThanOrEqual, tr, lo_c);
                // i64/u64 upper bounds are not exact in f64: compare strictly against 2^63 / 2^64.
                let ok_hi = if hi > (1i128 << 53) {
                    let c = self.b.ins().f64const(hi_f);
                    self.b.ins().fcmp(FloatCC::LessThan, tr, c)
                } else {
                    let c = self.b.ins().f64const(hi_f);
                    self.b.ins().fcmp(FloatCC::LessThanOrEqual, tr, c)
                };
                let ok = self.b.ins().band(ge, ok_hi);
                let ct = clif_type(t);
                let wide = if is_signed(t) {
                    self.b.ins().fcvt_to_sint_sat(I64, tr)
                } else {
                    self.b.ins().fcvt_to_uint_sat(I64, tr)
                };
                let v = if ct == I64 {
                    wide
                } else {
                    self.b.ins().ireduce(ct, wide)
                };
                fail(self, v, ok)
            }
            (DataType::Date32, t) if is_timestamp(t) => {
                let d = self.b.ins().sextend(I64, a.v);
                let per_day = self.iconst(I64, MICROS_PER_DAY);
                let (v, of) = self.b.ins().smul_overflow(d, per_day);
                let ok = self.not(of);
                fail(self, v, ok)
            }
            (f, DataType::Date32) if is_timestamp(f) => {
                let q = self.b.ins().sdiv_imm_s(a.v, MICROS_PER_DAY);
                let r = self.b.ins().srem_imm_s(a.v, MICROS_PER_DAY);
                let neg = self.b.ins().icmp_imm_s(IntCC::SignedLessThan, r, 0);
                let adj = self.b.ins().uextend(I64, neg);
                let q = self.b.ins().isub(q, adj);
                plain(self.b.ins().ireduce(I32, q))
            }
            (f, DataType::Decimal128(p, s)) => {
                let (wide, fs) = match f {
                    DataType::Decimal128(_, fs) => (a.v, *fs),
                    f => (self.widen_i128(a.v, f), 0),
                };
                let v = if *s > fs {
                    let m = self.i128const(10i128.pow((*s - fs) as u32));
                    self.b.ins().imul(wide, m)
                } else {
                    wide
                };
                let bound = 10i128.pow(*p as u32);
                let hi = self.i128const(bound);
                let lo = self.i128const(-bound);
                let below = self.b.ins().icmp(IntCC::SignedLessThan, v, hi);
                let above = self.b.ins().icmp(IntCC::SignedGreaterThan, v, lo);
                let ok = self.b.ins().band(below, above);
                fail(self, v, ok)
            }
            (f, t) => {
                // integer/bool -> integer
                let wide = self.widen_i128(a.v, f);
                let ok = self.fits_int(wide, t);
                let v = self.b.ins().ireduce(clif_type(t), wide);
                if *f == DataType::Boolean {
                    plain(v)
                } else {
                    fail(self, v, ok)
                }
            }
        }
    }

    fn call(&mut self, id: ExprId, func: ScalarFunc, args: &[ExprId]) -> Lv {
        let a = self.expr(args[0]);
        let at = self.ty(args[0]).clone();
        match func {
            ScalarFunc::Length => {
                let v = self.utf8_char_count(a);
                Lv {
                    v,
                    len: None,
                    valid: a.valid,
                    err: a.err,
                }
            }
            ScalarFunc::StartsWith | ScalarFunc::EndsWith => {
                let b = self.expr(args[1]);
                let err = self.err_opt(a.err, b.err);
                let valid = self.and_opt(a.valid, b.valid);
                let (la, lb) = (a.len.expect("len"), b.len.expect("len"));
                let fits = self.b.ins().icmp(IntCC::UnsignedGreaterThanOrEqual, la, lb);
                let zero = self.iconst(I64, 0);
                // Compare lb bytes only when the needle fits, so nothing past `a` is read.
                let n = self.b.ins().select(fits, lb, zero);
                let start = if func == ScalarFunc::StartsWith {
                    a.v
                } else {
                    let tail = self.b.ins().isub(la, n);
                    self.b.ins().iadd(a.v, tail)
                };
                let same = self.bytes_equal(start, b.v, n);
                let v = self.b.ins().band(fits, same);
                Lv {
                    v,
                    len: None,
                    valid,
                    err,
                }
            }
            ScalarFunc::Abs => {
                if is_float(&at) {
                    return Lv {
                        v: self.b.ins().fabs(a.v),
                        ..a
                    };
                }
                if !is_signed(&at) {
                    return a;
                }
                let neg = self.b.ins().icmp_imm_s(IntCC::SignedLessThan, a.v, 0);
                let n = self.b.ins().ineg(a.v);
                let v = self.b.ins().select(neg, n, a.v);
                if self.plan.spec.ansi && !matches!(at, DataType::Decimal128(..)) {
                    let min = self.int_min(&at);
                    let is_min = self.b.ins().icmp(IntCC::Equal, a.v, min);
                    let e2 = self.err_if(is_min, a.valid, abi::ERR_OVERFLOW);
                    let err = self.err_opt(a.err, Some(e2));
                    return Lv {
                        v,
                        len: None,
                        valid: a.valid,
                        err,
                    };
                }
                Lv { v, ..a }
            }
            ScalarFunc::Hour | ScalarFunc::Minute | ScalarFunc::Second => {
                let r = self.b.ins().srem_imm_s(a.v, MICROS_PER_DAY);
                let neg = self.b.ins().icmp_imm_s(IntCC::SignedLessThan, r, 0);
                let day = self.iconst(I64, MICROS_PER_DAY);
                let z = self.iconst(I64, 0);
                let adj = self.b.ins().select(neg, day, z);
                let r = self.b.ins().iadd(r, adj);
                let v = match func {
                    ScalarFunc::Hour => self.b.ins().sdiv_imm_s(r, 3_600_000_000),
                    ScalarFunc::Minute => {
                        let m = self.b.ins().sdiv_imm_s(r, 60_000_000);
                        self.b.ins().srem_imm_s(m, 60)
                    }
                    _ => {
                        let s = self.b.ins().sdiv_imm_s(r, 1_000_000);
                        self.b.ins().srem_imm_s(s, 60)
                    }
                };
                Lv {
                    v: self.b.ins().ireduce(I32, v),
                    len: None,
                    valid: a.valid,
                    err: a.err,
                }
            }
            _ => {
                // Year / Month / Day (civil_from_days on floor(days)).
                let days = if at == DataType::Date32 {
                    self.b.ins().sextend(I64, a.v)
                } else {
                    self.floor_div(a.v, MICROS_PER_DAY)
                };
                let (y, m, d) = self.civil(days);
                let v = match func {
                    ScalarFunc::Year => y,
                    ScalarFunc::Month => m,
                    _ => d,
                };
                let _ = id;
                Lv {
                    v: self.b.ins().ireduce(I32, v),
                    len: None,
                    valid: a.valid,
                    err: a.err,
                }
            }
        }
    }

    fn floor_div(&mut self, x: Value, d: i64) -> Value {
        let q = self.b.ins().sdiv_imm_s(x, d);
        let r = self.b.ins().srem_imm_s(x, d);
        let neg = self.b.ins().icmp_imm_s(IntCC::SignedLessThan, r, 0);
        let adj = self.b.ins().uextend(I64, neg);
        self.b.ins().isub(q, adj)
    }

    /// Howard Hinnant's civil_from_days in CLIF (mirrors datetime::civil_from_days).
    fn civil(&mut self, days: Value) -> (Value, Value, Value) {
        let z = self.b.ins().iadd_imm_s(days, 719_468);
        let era = self.floor_div(z, 146_097);
        let era_days = self.b.ins().imul_imm_s(era, 146_097);
        let doe = self.b.ins().isub(z, era_days);
        let t1 = self.b.ins().sdiv_imm_s(doe, 1460);
        let t2 = self.b.ins().sdiv_imm_s(doe, 36_524);
        let t3 = self.b.ins().sdiv_imm_s(doe, 146_096);
        let x = self.b.ins().isub(doe, t1);
        let x = self.b.ins().iadd(x, t2);
        let x = self.b.ins().isub(x, t3);
        let yoe = self.b.ins().sdiv_imm_s(x, 365);
        let era400 = self.b.ins().imul_imm_s(era, 400);
        let y = self.b.ins().iadd(yoe, era400);
        let y365 = self.b.ins().imul_imm_s(yoe, 365);
        let y4 = self.b.ins().sdiv_imm_s(yoe, 4);
        let y100 = self.b.ins().sdiv_imm_s(yoe, 100);
        let s = self.b.ins().iadd(y365, y4);
        let s = self.b.ins().isub(s, y100);
        let doy = self.b.ins().isub(doe, s);
        let mp5 = self.b.ins().imul_imm_s(doy, 5);
        let mp5 = self.b.ins().iadd_imm_s(mp5, 2);
        let mp = self.b.ins().sdiv_imm_s(mp5, 153);
        let m153 = self.b.ins().imul_imm_s(mp, 153);
        let m153 = self.b.ins().iadd_imm_s(m153, 2);
        let m153 = self.b.ins().sdiv_imm_s(m153, 5);
        let d = self.b.ins().isub(doy, m153);
        let d = self.b.ins().iadd_imm_s(d, 1);
        let lt10 = self.b.ins().icmp_imm_s(IntCC::SignedLessThan, mp, 10);
        let m_a = self.b.ins().iadd_imm_s(mp, 3);
        let m_b = self.b.ins().iadd_imm_s(mp, -9);
        let m = self.b.ins().select(lt10, m_a, m_b);
        let le2 = self.b.ins().icmp_imm_s(IntCC::SignedLessThanOrEqual, m, 2);
        let y1 = self.b.ins().iadd_imm_s(y, 1);
        let y = self.b.ins().select(le2, y1, y);
        (y, m, d)
    }

    /// Checks an error code and leaves the row through `err_block` when it is non-zero.
    fn check_err(&mut self, err: Option<Value>, err_block: cranelift_codegen::ir::Block) {
        if let Some(e) = err {
            let ok = self.b.create_block();
            let nz = self.b.ins().icmp_imm_s(IntCC::NotEqual, e, 0);
            self.b
                .ins()
                .brif(nz, err_block, &[BlockArg::Value(e)], ok, &[]);
            self.b.switch_to_block(ok);
        }
    }

    /// Emits the filters; continues in the "passed" block; jumps to `next` otherwise.
    fn filters(
        &mut self,
        next: cranelift_codegen::ir::Block,
        err_block: cranelift_codegen::ir::Block,
    ) {
        for f in self.plan.filters.clone() {
            let pass = self.filter_pass(f, err_block);
            let cont = self.b.create_block();
            self.b.ins().brif(pass, cont, &[], next, &[]);
            self.b.switch_to_block(cont);
        }
    }

    /// Creates the error exit block (filled by `fill_error_exit` once the loop is emitted).
    fn error_exit(&mut self) -> cranelift_codegen::ir::Block {
        let err_block = self.b.create_block();
        self.b.append_block_param(err_block, I32);
        err_block
    }

    /// Error exit: stores the code and the row into RtCtx and returns STATUS_ERROR.
    fn fill_error_exit(
        &mut self,
        err_block: cranelift_codegen::ir::Block,
        rt: Value,
        i_var: Variable,
    ) {
        self.b.switch_to_block(err_block);
        let code = self.b.block_params(err_block)[0];
        let row = self.b.use_var(i_var);
        self.b.ins().store(flags(), code, rt, off::RT_ERR_CODE);
        self.b.ins().store(flags(), row, rt, off::RT_ERR_ROW);
        let st = self.iconst(I32, abi::STATUS_ERROR as i64);
        self.b.ins().return_(&[st]);
    }

    /// Loads the selection vector and the (values, validity) pointers of every native output.
    #[allow(clippy::type_complexity)]
    fn output_pointers(&mut self, out: Value) -> OutputPointers {
        let sel = self.load(I64, out, off::OUT_SEL);
        let out_cols = self.load(I64, out, off::OUT_COLS);
        let mut native_outs = vec![];
        let mut n_native = 0i64;
        for o in self.plan.outputs.clone() {
            if let OutputPlan::Native(e) = o {
                let base = self
                    .b
                    .ins()
                    .iadd_imm_s(out_cols, n_native * off::OUTCOL_SIZE as i64);
                let vals = self.load(I64, base, 0);
                let valid = self.load(I64, base, off::OUTCOL_VALIDITY);
                native_outs.push((e, vals, valid));
                n_native += 1;
            }
        }
        (sel, native_outs)
    }

    fn map_kernel(&mut self) -> Result<()> {
        let entry = self.b.create_block();
        self.b.append_block_params_for_function_params(entry);
        self.b.switch_to_block(entry);
        let params = self.b.block_params(entry).to_vec();
        let (batch, out, rt) = (params[0], params[2], params[3]);
        let rows = self.load(I64, batch, off::BATCH_ROWS);
        let filtered = !self.plan.filters.is_empty();
        if !filtered {
            self.load_columns(batch);
        }
        // With a filter, output pointers are loaded only for rows that pass (they would otherwise
        // stay live across the whole loop and push the hot per-row values out of registers).
        let entry_outputs = if filtered {
            None
        } else {
            Some(self.output_pointers(out))
        };
        let i_var = self.b.declare_var(I64);
        let k_var = self.b.declare_var(I64);
        let start = self.load(I64, rt, off::RT_NEXT_ROW);
        let start_k = self.load(I64, rt, off::RT_OUT_ROWS);
        self.b.def_var(i_var, start);
        self.b.def_var(k_var, start_k);
        let done = self.b.create_block();
        let full = self.b.create_block();
        let err_block = self.error_exit();
        if filtered {
            self.filtered_loops(batch, rows, out, i_var, k_var, done, full, err_block);
        } else {
            let head = self.b.create_block();
            let body = self.b.create_block();
            let next = self.b.create_block();
            self.b.ins().jump(head, &[]);

            self.loop_head(head, i_var, LoopBound::Value(rows), body, done);

            self.b.switch_to_block(body);
            let row = self.b.use_var(i_var);
            self.start_row(row);
            self.output_row(out, entry_outputs.as_ref(), k_var, next, full, err_block);

            self.b.switch_to_block(next);
            self.step_and_jump(i_var, head);
        }

        self.b.switch_to_block(done);
        let k = self.b.use_var(k_var);
        self.b.ins().store(flags(), k, rt, off::RT_OUT_ROWS);
        let ok = self.iconst(I32, abi::STATUS_OK as i64);
        self.b.ins().return_(&[ok]);

        self.b.switch_to_block(full);
        let k = self.b.use_var(k_var);
        let i = self.b.use_var(i_var);
        self.b.ins().store(flags(), k, rt, off::RT_OUT_ROWS);
        self.b.ins().store(flags(), i, rt, off::RT_NEXT_ROW);
        let st = self.iconst(I32, abi::STATUS_OUTPUT_FULL as i64);
        self.b.ins().return_(&[st]);
        self.fill_error_exit(err_block, rt, i_var);
        Ok(())
    }

    /// The loops of a filtering map kernel, per chunk of [`SELECT_CHUNK_ROWS`] rows: loop A
    /// evaluates only the filters and appends each passing row to a selection vector on the
    /// stack (the last filter without a branch: the row is always written, the count grows by
    /// the filter's 0/1); loop B computes and stores the outputs of the selected rows. Keeping
    /// the output work out of loop A leaves its registers to the filter columns, and a selective
    /// filter costs no mispredicted branch per row.
    #[allow(clippy::too_many_arguments)]
    fn filtered_loops(
        &mut self,
        batch: Value,
        rows: Value,
        out: Value,
        i_var: Variable,
        k_var: Variable,
        done: cranelift_codegen::ir::Block,
        full: cranelift_codegen::ir::Block,
        err_block: cranelift_codegen::ir::Block,
    ) {
        let slot = self.b.create_sized_stack_slot(StackSlotData::new(
            StackSlotKind::ExplicitSlot,
            (4 * SELECT_CHUNK_ROWS) as u32,
            2,
        ));
        let sel = self.b.ins().stack_addr(I64, slot, 0);
        let c_var = self.b.declare_var(I64);
        let m_var = self.b.declare_var(I64);
        let j_var = self.b.declare_var(I64);
        let end_var = self.b.declare_var(I64);
        let c0 = self.b.use_var(i_var);
        self.b.def_var(c_var, c0);
        let zero = self.iconst(I64, 0);
        self.b.def_var(m_var, zero);
        self.b.def_var(j_var, zero);
        self.b.def_var(end_var, zero);
        let chunk_head = self.b.create_block();
        let chunk_start = self.b.create_block();
        let a_head = self.b.create_block();
        let a_body = self.b.create_block();
        let a_next = self.b.create_block();
        let b_start = self.b.create_block();
        let b_head = self.b.create_block();
        let b_body = self.b.create_block();
        let b_next = self.b.create_block();
        let chunk_next = self.b.create_block();
        // A filter error at row r ends loop A there: the selected rows before r still run
        // through loop B (one of them may fail first), then r's error is raised, so the first
        // failing row in row order is the one reported, as in the interpreter.
        let filter_failed = self.b.create_block();
        self.b.append_block_param(filter_failed, I32);
        let pending_err = self.b.declare_var(I32);
        let pending_row = self.b.declare_var(I64);
        let no_err = self.iconst(I32, 0);
        self.b.def_var(pending_err, no_err);
        self.b.def_var(pending_row, zero);
        let raise_pending = self.b.create_block();
        let next_chunk = self.b.create_block();
        self.b.ins().jump(chunk_head, &[]);

        self.loop_head(chunk_head, c_var, LoopBound::Value(rows), chunk_start, done);

        self.b.switch_to_block(chunk_start);
        // Column pointers are (re)loaded per chunk: short live ranges keep them in registers
        // through loop A instead of spilled across the whole function.
        self.load_columns(batch);
        let c = self.b.use_var(c_var);
        let end = self.b.ins().iadd_imm_s(c, SELECT_CHUNK_ROWS as i64);
        let end = self.b.ins().umin(end, rows);
        self.b.def_var(end_var, end);
        self.b.def_var(i_var, c);
        let z = self.iconst(I64, 0);
        self.b.def_var(m_var, z);
        self.b.ins().jump(a_head, &[]);

        // Loop A: filters only, four rows per iteration while four remain (fewer loop
        // instructions per row, and four independent rows for the CPU to overlap), then one.
        let a_quad = self.b.create_block();
        let a_single = self.b.create_block();
        self.b.switch_to_block(a_head);
        let i = self.b.use_var(i_var);
        let end = self.b.use_var(end_var);
        let i4 = self.b.ins().iadd_imm_s(i, FILTER_UNROLL as i64);
        let four_left = self.b.ins().icmp(IntCC::UnsignedLessThanOrEqual, i4, end);
        self.b.ins().brif(four_left, a_quad, &[], a_single, &[]);

        self.b.switch_to_block(a_quad);
        let base = self.b.use_var(i_var);
        for u in 0..FILTER_UNROLL {
            let next_row = self.b.create_block();
            let row = self.b.ins().iadd_imm_s(base, u as i64);
            self.filter_row(row, sel, i_var, m_var, filter_failed, next_row);
            self.b.switch_to_block(next_row);
        }
        let i4 = self.b.ins().iadd_imm_s(base, FILTER_UNROLL as i64);
        self.b.def_var(i_var, i4);
        self.b.ins().jump(a_head, &[]);

        self.loop_head(a_single, i_var, LoopBound::Var(end_var), a_body, b_start);

        self.b.switch_to_block(a_body);
        let row = self.b.use_var(i_var);
        self.filter_row(row, sel, i_var, m_var, filter_failed, a_next);

        self.b.switch_to_block(a_next);
        self.step_and_jump(i_var, a_single);

        // Loop B: outputs of the selected rows. The output pointers are loaded once per chunk
        // here, not per row: every row of loop B stores through them, and reloading them through
        // the output struct each row was a chain of dependent loads on the loop's critical path.
        // (Loop A does not need them, so they are not live there.)
        self.b.switch_to_block(b_start);
        let z = self.iconst(I64, 0);
        self.b.def_var(j_var, z);
        let chunk_outputs = self.output_pointers(out);
        self.b.ins().jump(b_head, &[]);

        self.loop_head(b_head, j_var, LoopBound::Var(m_var), b_body, chunk_next);

        self.b.switch_to_block(b_body);
        let j = self.b.use_var(j_var);
        let at = self.b.ins().ishl_imm_u(j, 2);
        let addr = self.b.ins().iadd(sel, at);
        let row = self.b.ins().uload32(flags(), addr, 0);
        // The row reported on an error or resumed at when the output is full.
        self.b.def_var(i_var, row);
        self.start_row(row);
        self.output_row(out, Some(&chunk_outputs), k_var, b_next, full, err_block);

        self.b.switch_to_block(b_next);
        self.step_and_jump(j_var, b_head);

        self.b.switch_to_block(filter_failed);
        let code = self.b.block_params(filter_failed)[0];
        self.b.def_var(pending_err, code);
        let row = self.b.use_var(i_var);
        self.b.def_var(pending_row, row);
        self.b.ins().jump(b_start, &[]);

        self.b.switch_to_block(chunk_next);
        let code = self.b.use_var(pending_err);
        let failed = self.b.ins().icmp_imm_s(IntCC::NotEqual, code, 0);
        self.b
            .ins()
            .brif(failed, raise_pending, &[], next_chunk, &[]);

        self.b.switch_to_block(raise_pending);
        let row = self.b.use_var(pending_row);
        self.b.def_var(i_var, row);
        let code = self.b.use_var(pending_err);
        self.b.ins().jump(err_block, &[BlockArg::Value(code)]);

        self.b.switch_to_block(next_chunk);
        let end = self.b.use_var(end_var);
        self.b.def_var(c_var, end);
        self.b.ins().jump(chunk_head, &[]);
    }

    /// Loop A's work for one row: evaluates the filters (leading ones branch to `next` when
    /// they fail; the last one is branch-free), writes the row to the selection vector and
    /// counts it if it passed, then jumps to `next`. `i_var` is set to the row first, so a
    /// filter error reports it.
    fn filter_row(
        &mut self,
        row: Value,
        sel: Value,
        i_var: Variable,
        m_var: Variable,
        filter_failed: cranelift_codegen::ir::Block,
        next: cranelift_codegen::ir::Block,
    ) {
        self.b.def_var(i_var, row);
        self.start_row(row);
        let filters = self.plan.filters.clone();
        let (last, leading) = filters.split_last().expect("a filter");
        for f in leading {
            let pass = self.filter_pass(*f, filter_failed);
            let cont = self.b.create_block();
            self.b.ins().brif(pass, cont, &[], next, &[]);
            self.b.switch_to_block(cont);
        }
        let pass = self.filter_pass(*last, filter_failed);
        let m = self.b.use_var(m_var);
        let row32 = self.b.ins().ireduce(I32, row);
        let at = self.b.ins().ishl_imm_u(m, 2);
        let addr = self.b.ins().iadd(sel, at);
        self.b.ins().store(flags(), row32, addr, 0);
        // Booleans are any non-zero integer here: count the row as 0 or 1.
        let pass01 = self.b.ins().icmp_imm_s(IntCC::NotEqual, pass, 0);
        let inc = self.b.ins().uextend(I64, pass01);
        let m2 = self.b.ins().iadd(m, inc);
        self.b.def_var(m_var, m2);
        self.b.ins().jump(next, &[]);
    }

    /// Ends the current block as a loop head: `counter < bound` (unsigned) continues with
    /// `body`, otherwise `exit`.
    fn loop_head(
        &mut self,
        head: cranelift_codegen::ir::Block,
        counter: Variable,
        bound: LoopBound,
        body: cranelift_codegen::ir::Block,
        exit: cranelift_codegen::ir::Block,
    ) {
        self.b.switch_to_block(head);
        let i = self.b.use_var(counter);
        let bound = match bound {
            LoopBound::Var(v) => self.b.use_var(v),
            LoopBound::Value(v) => v,
        };
        let more = self.b.ins().icmp(IntCC::UnsignedLessThan, i, bound);
        self.b.ins().brif(more, body, &[], exit, &[]);
    }

    /// Adds one to `counter` and jumps back to `head`.
    fn step_and_jump(&mut self, counter: Variable, head: cranelift_codegen::ir::Block) {
        let i = self.b.use_var(counter);
        let i2 = self.b.ins().iadd_imm_s(i, 1);
        self.b.def_var(counter, i2);
        self.b.ins().jump(head, &[]);
    }

    /// One filter's verdict for the current row (i8: 1 = keep; NULL counts as false).
    fn filter_pass(&mut self, f: ExprId, err_block: cranelift_codegen::ir::Block) -> Value {
        let lv = self.expr(f);
        self.check_err(lv.err, err_block);
        match lv.valid {
            Some(k) => self.b.ins().band(k, lv.v),
            None => lv.v,
        }
    }

    /// Writes the current row's outputs at position `k_var` (leaving through `full` when the
    /// output buffers have no room), then jumps to `next`.
    fn output_row(
        &mut self,
        out: Value,
        entry_outputs: Option<&OutputPointers>,
        k_var: Variable,
        next: cranelift_codegen::ir::Block,
        full: cranelift_codegen::ir::Block,
        err_block: cranelift_codegen::ir::Block,
    ) {
        // Taken (copied) columns that were pre-computed may carry per-row errors: raise them for selected rows.
        for o in self.plan.outputs.clone() {
            if let OutputPlan::Take(c) = o
                && self.plan.columns[c].has_errors
            {
                let lv = self.column(c);
                self.check_err(lv.err, err_block);
            }
        }
        let k = self.b.use_var(k_var);
        // Output full: leave so Rust can grow the buffers and resume at this row.
        let capacity = self.load(I64, out, off::OUT_CAPACITY);
        let has_room = self.b.ins().icmp(IntCC::UnsignedLessThan, k, capacity);
        let store_block = self.b.create_block();
        self.b.ins().brif(has_room, store_block, &[], full, &[]);
        self.b.switch_to_block(store_block);
        let (sel, native_outs) = match entry_outputs {
            Some(p) => p.clone(),
            None => self.output_pointers(out),
        };
        let mut stores = vec![];
        for (e, vals, valid) in native_outs {
            let lv = self.expr(e);
            self.check_err(lv.err, err_block);
            stores.push((e, lv, vals, valid));
        }
        for (e, lv, vals, valid) in stores {
            let t = self.ty(e).clone();
            let ct = clif_type(&t);
            let v = match lv.valid {
                Some(ok) => {
                    let z = self.zero_of(&t);
                    self.b.ins().select(ok, lv.v, z)
                }
                None => lv.v,
            };
            // One canonical NaN (payloads depend on operand order, which Cranelift may commute).
            let v = if ct == F32 || ct == F64 {
                let nan = if ct == F32 {
                    self.b.ins().f32const(f32::NAN)
                } else {
                    self.b.ins().f64const(f64::NAN)
                };
                let is_nan = self.b.ins().fcmp(FloatCC::Unordered, v, v);
                self.b.ins().select(is_nan, nan, v)
            } else {
                v
            };
            let off_v = self.b.ins().imul_imm_s(k, ct.bytes() as i64);
            let addr = self.b.ins().iadd(vals, off_v);
            self.b.ins().store(flags(), v, addr, 0);
            let ok = lv.valid.unwrap_or_else(|| self.one());
            let vaddr = self.b.ins().iadd(valid, k);
            self.b.ins().store(flags(), ok, vaddr, 0);
        }
        let row = self.row.expect("row");
        let row32 = self.b.ins().ireduce(I32, row);
        let sel_off = self.b.ins().ishl_imm_u(k, 2);
        let sel_addr = self.b.ins().iadd(sel, sel_off);
        self.b.ins().store(flags(), row32, sel_addr, 0);
        let k2 = self.b.ins().iadd_imm_s(k, 1);
        self.b.def_var(k_var, k2);
        self.b.ins().jump(next, &[]);
    }

    fn agg_kernel(&mut self, intern: cranelift_codegen::ir::FuncRef) -> Result<()> {
        let agg = self
            .plan
            .agg
            .clone()
            .ok_or_else(|| JitError::Compile("no aggregate plan".into()))?;
        let entry = self.b.create_block();
        self.b.append_block_params_for_function_params(entry);
        self.b.switch_to_block(entry);
        let params = self.b.block_params(entry).to_vec();
        let (batch, ctx, rt) = (params[0], params[1], params[3]);
        let rows = self.load(I64, batch, off::BATCH_ROWS);
        let in_weights = self.load(I64, batch, off::BATCH_WEIGHTS);
        let weight_stride = self.load(I64, batch, off::BATCH_WEIGHT_STRIDE);
        self.load_columns(batch);
        let key_vals_tab = self.load(I64, ctx, off::AGG_KEY_VALS);
        let key_valid_tab = self.load(I64, ctx, off::AGG_KEY_VALID);
        let arg_vals_tab = self.load(I64, ctx, off::AGG_ARG_VALS);
        let arg_valid_tab = self.load(I64, ctx, off::AGG_ARG_VALID);
        let s_weights = self.load(I64, ctx, off::AGG_WEIGHTS);
        let gids = self.load(I64, ctx, off::AGG_GIDS);
        let accs_tab = self.load(I64, ctx, off::AGG_ACCS);
        let key_scratch: Vec<(Value, Value)> = (0..agg.keys.len())
            .map(|c| {
                (
                    self.load(I64, key_vals_tab, 8 * c as i32),
                    self.load(I64, key_valid_tab, 8 * c as i32),
                )
            })
            .collect();
        let arg_scratch: Vec<(Value, Value)> = (0..agg.args.len())
            .map(|c| {
                (
                    self.load(I64, arg_vals_tab, 8 * c as i32),
                    self.load(I64, arg_valid_tab, 8 * c as i32),
                )
            })
            .collect();

        let c_var = self.b.declare_var(I64);
        let i_var = self.b.declare_var(I64);
        let m_var = self.b.declare_var(I64);
        let j_var = self.b.declare_var(I64);
        let end_var = self.b.declare_var(I64);
        let zero = self.iconst(I64, 0);
        self.b.def_var(c_var, zero);
        self.b.def_var(i_var, zero);
        self.b.def_var(m_var, zero);
        self.b.def_var(j_var, zero);
        self.b.def_var(end_var, zero);
        let chunk_head = self.b.create_block();
        let chunk_start = self.b.create_block();
        let l1_head = self.b.create_block();
        let l1_body = self.b.create_block();
        let l1_next = self.b.create_block();
        let intern_block = self.b.create_block();
        let l2_head = self.b.create_block();
        let l2_body = self.b.create_block();
        let chunk_next = self.b.create_block();
        let done = self.b.create_block();
        let helper_failed = self.b.create_block();
        let err_block = self.error_exit();
        self.b.ins().jump(chunk_head, &[]);

        self.loop_head(chunk_head, c_var, LoopBound::Value(rows), chunk_start, done);

        self.b.switch_to_block(chunk_start);
        let c = self.b.use_var(c_var);
        let end = self.b.ins().iadd_imm_s(c, CHUNK_ROWS as i64);
        let end = self.b.ins().umin(end, rows);
        self.b.def_var(end_var, end);
        self.b.def_var(i_var, c);
        let z = self.iconst(I64, 0);
        self.b.def_var(m_var, z);
        self.b.ins().jump(l1_head, &[]);

        self.loop_head(
            l1_head,
            i_var,
            LoopBound::Var(end_var),
            l1_body,
            intern_block,
        );

        // Loop 1: filter, evaluate keys and arguments, stage them in scratch.
        self.b.switch_to_block(l1_body);
        let row = self.b.use_var(i_var);
        self.start_row(row);
        self.filters(l1_next, err_block);
        let mut key_lvs = vec![];
        for k in &agg.keys {
            let lv = self.expr(*k);
            self.check_err(lv.err, err_block);
            key_lvs.push(lv);
        }
        let mut arg_lvs = vec![];
        for a in &agg.args {
            let lv = self.expr(*a);
            self.check_err(lv.err, err_block);
            arg_lvs.push(lv);
        }
        let m = self.b.use_var(m_var);
        for (idx, (lv, (vals, valid))) in key_lvs.iter().zip(&key_scratch).enumerate() {
            let desc = &agg.layout.keys[idx];
            let t = desc.data_type.clone();
            match desc.kind {
                KeyKind::I64 => {
                    let v = self.widen_i64(lv.v, &t);
                    let o = self.b.ins().ishl_imm_u(m, 3);
                    let addr = self.b.ins().iadd(*vals, o);
                    self.b.ins().store(flags(), v, addr, 0);
                }
                KeyKind::F64 => {
                    let v = if t == DataType::Float32 {
                        self.b.ins().fpromote(F64, lv.v)
                    } else {
                        lv.v
                    };
                    let o = self.b.ins().ishl_imm_u(m, 3);
                    let addr = self.b.ins().iadd(*vals, o);
                    self.b.ins().store(flags(), v, addr, 0);
                }
                KeyKind::I128 => {
                    let o = self.b.ins().ishl_imm_u(m, 4);
                    let addr = self.b.ins().iadd(*vals, o);
                    self.b.ins().store(flags(), lv.v, addr, 0);
                }
                KeyKind::Str => {
                    let o = self.b.ins().ishl_imm_u(m, 4);
                    let addr = self.b.ins().iadd(*vals, o);
                    self.b.ins().store(flags(), lv.v, addr, 0);
                    let len = lv.len.expect("string len");
                    self.b.ins().store(flags(), len, addr, 8);
                }
            }
            let ok = lv.valid.unwrap_or_else(|| self.one());
            let vaddr = self.b.ins().iadd(*valid, m);
            self.b.ins().store(flags(), ok, vaddr, 0);
        }
        for (slot, (lv, (vals, valid))) in arg_lvs.iter().zip(&arg_scratch).enumerate() {
            let t = self.ty(agg.args[slot]).clone();
            let v = if is_float(&t) {
                if t == DataType::Float32 {
                    self.b.ins().fpromote(F64, lv.v)
                } else {
                    lv.v
                }
            } else if clif_type(&t) == I128 {
                lv.v
            } else {
                self.widen_i64(lv.v, &t)
            };
            let o = self.b.ins().ishl_imm_u(m, 4);
            let addr = self.b.ins().iadd(*vals, o);
            self.b.ins().store(flags(), v, addr, 0);
            let ok = lv.valid.unwrap_or_else(|| self.one());
            let vaddr = self.b.ins().iadd(*valid, m);
            self.b.ins().store(flags(), ok, vaddr, 0);
        }
        let woff = self.b.ins().imul(row, weight_stride);
        let waddr = self.b.ins().iadd(in_weights, woff);
        let w = self.load(I64, waddr, 0);
        let so = self.b.ins().ishl_imm_u(m, 3);
        let saddr = self.b.ins().iadd(s_weights, so);
        self.b.ins().store(flags(), w, saddr, 0);
        let m2 = self.b.ins().iadd_imm_s(m, 1);
        self.b.def_var(m_var, m2);
        self.b.ins().jump(l1_next, &[]);

        self.b.switch_to_block(l1_next);
        self.step_and_jump(i_var, l1_head);

        // One helper call per chunk: intern the staged keys into group ids.
        self.b.switch_to_block(intern_block);
        let m = self.b.use_var(m_var);
        let call = self.b.ins().call(intern, &[ctx, m]);
        let status = self.b.inst_results(call)[0];
        let failed = self.b.ins().icmp_imm_s(IntCC::NotEqual, status, 0);
        let z = self.iconst(I64, 0);
        self.b.def_var(j_var, z);
        self.b.ins().brif(failed, helper_failed, &[], l2_head, &[]);

        self.loop_head(l2_head, j_var, LoopBound::Var(m_var), l2_body, chunk_next);

        // Loop 2: update the struct-of-arrays accumulators in place.
        self.b.switch_to_block(l2_body);
        let j = self.b.use_var(j_var);
        let go = self.b.ins().ishl_imm_u(j, 2);
        let gaddr = self.b.ins().iadd(gids, go);
        let gid32 = self.b.ins().uload32(flags(), gaddr, 0);
        let gid = gid32;
        let wo = self.b.ins().ishl_imm_u(j, 3);
        let waddr = self.b.ins().iadd(s_weights, wo);
        let w = self.load(I64, waddr, 0);
        let aggs = agg.layout.aggs.clone();
        for (ai, desc) in aggs.iter().enumerate() {
            let count_ptr = self.load(I64, accs_tab, (8 * (3 * ai + 1)) as i32);
            let co = self.b.ins().ishl_imm_u(gid, 3);
            let caddr = self.b.ins().iadd(count_ptr, co);
            let (arg, arg_valid) = match agg.arg_slot[ai] {
                Some(s) => {
                    let (vals, valid) = arg_scratch[s];
                    let vo = self.b.ins().ishl_imm_u(j, 4);
                    let vaddr = self.b.ins().iadd(vals, vo);
                    let vt = match desc.value {
                        ValueKind::F64 => F64,
                        ValueKind::I128 => I128,
                        _ => I64,
                    };
                    let v = self.load(vt, vaddr, 0);
                    let kaddr = self.b.ins().iadd(valid, j);
                    let k = self.b.ins().uload8(I32, flags(), kaddr, 0);
                    let k = self.b.ins().ireduce(I8, k);
                    (Some((v, vt)), Some(k))
                }
                None => (None, None),
            };
            match desc.func {
                AggFunc::CountStar | AggFunc::Count => {
                    let cur = self.load(I64, caddr, 0);
                    let add = match arg_valid {
                        Some(k) if desc.func == AggFunc::Count => {
                            let z = self.iconst(I64, 0);
                            self.b.ins().select(k, w, z)
                        }
                        _ => w,
                    };
                    let new = self.b.ins().iadd(cur, add);
                    self.b.ins().store(flags(), new, caddr, 0);
                }
                AggFunc::Sum | AggFunc::Avg => {
                    let (Some((v, vt)), Some(k)) = (arg, arg_valid) else {
                        continue;
                    };
                    let cur = self.load(I64, caddr, 0);
                    let z = self.iconst(I64, 0);
                    let add = self.b.ins().select(k, w, z);
                    let new = self.b.ins().iadd(cur, add);
                    self.b.ins().store(flags(), new, caddr, 0);
                    let val_ptr = self.load(I64, accs_tab, (8 * (3 * ai)) as i32);
                    let (addr, new_sum) = match vt {
                        F64 => {
                            let o = self.b.ins().ishl_imm_u(gid, 3);
                            let addr = self.b.ins().iadd(val_ptr, o);
                            let s = self.load(F64, addr, 0);
                            let wf = self.b.ins().fcvt_from_sint(F64, w);
                            let prod = self.b.ins().fmul(wf, v);
                            let sum = self.b.ins().fadd(s, prod);
                            (addr, self.b.ins().select(k, sum, s))
                        }
                        I128 => {
                            let o = self.b.ins().ishl_imm_u(gid, 4);
                            let addr = self.b.ins().iadd(val_ptr, o);
                            let s = self.load(I128, addr, 0);
                            let w128 = self.b.ins().sextend(I128, w);
                            let prod = self.b.ins().imul(v, w128);
                            let sum = self.b.ins().iadd(s, prod);
                            (addr, self.b.ins().select(k, sum, s))
                        }
                        _ => {
                            let o = self.b.ins().ishl_imm_u(gid, 3);
                            let addr = self.b.ins().iadd(val_ptr, o);
                            let s = self.load(I64, addr, 0);
                            let prod = self.b.ins().imul(v, w);
                            let sum = self.b.ins().iadd(s, prod);
                            (addr, self.b.ins().select(k, sum, s))
                        }
                    };
                    self.b.ins().store(flags(), new_sum, addr, 0);
                }
                AggFunc::Min | AggFunc::Max | AggFunc::First | AggFunc::Last => {
                    let (Some((v, vt)), Some(k)) = (arg, arg_valid) else {
                        continue;
                    };
                    let val_ptr = self.load(I64, accs_tab, (8 * (3 * ai)) as i32);
                    let flags_ptr = self.load(I64, accs_tab, (8 * (3 * ai + 2)) as i32);
                    let shift = if vt == I128 { 4 } else { 3 };
                    let o = self.b.ins().ishl_imm_u(gid, shift);
                    let vaddr = self.b.ins().iadd(val_ptr, o);
                    let faddr = self.b.ins().iadd(flags_ptr, gid);
                    let cur = self.load(vt, vaddr, 0);
                    let fl = self.b.ins().uload8(I32, flags(), faddr, 0);
                    let fl8 = self.b.ins().ireduce(I8, fl);
                    let set = self.b.ins().band_imm_u(fl8, 1);
                    let unset = self.not(set);
                    let (new_v, new_f) = match desc.func {
                        AggFunc::Min | AggFunc::Max => {
                            let better = if vt == F64 {
                                let op = if desc.func == AggFunc::Min {
                                    BinaryOp::Lt
                                } else {
                                    BinaryOp::Gt
                                };
                                self.float_cmp(op, v, cur)
                            } else {
                                let signed = desc.arg_type != DataType::UInt64;
                                let op = if desc.func == AggFunc::Min {
                                    BinaryOp::Lt
                                } else {
                                    BinaryOp::Gt
                                };
                                self.b.ins().icmp(int_cc(op, signed), v, cur)
                            };
                            let take = self.b.ins().bor(unset, better);
                            let take = self.b.ins().band(take, k);
                            let nv = self.b.ins().select(take, v, cur);
                            let three = self.iconst(I8, 3);
                            (nv, self.b.ins().select(take, three, fl8))
                        }
                        _ => {
                            let zero = match vt {
                                F64 => self.b.ins().f64const(0.0),
                                I128 => self.i128const(0),
                                _ => self.iconst(I64, 0),
                            };
                            let stored = self.b.ins().select(k, v, zero);
                            let kk = self.b.ins().ishl_imm_u(k, 1);
                            let f_new = self.b.ins().bor_imm_u(kk, 1);
                            if desc.func == AggFunc::First {
                                let nv = self.b.ins().select(unset, stored, cur);
                                (nv, self.b.ins().select(unset, f_new, fl8))
                            } else {
                                (stored, f_new)
                            }
                        }
                    };
                    self.b.ins().store(flags(), new_v, vaddr, 0);
                    self.b.ins().store(flags(), new_f, faddr, 0);
                }
            }
        }
        self.step_and_jump(j_var, l2_head);

        self.b.switch_to_block(chunk_next);
        let end = self.b.use_var(end_var);
        self.b.def_var(c_var, end);
        self.b.ins().jump(chunk_head, &[]);

        self.b.switch_to_block(helper_failed);
        let code = self.iconst(I32, abi::ERR_HELPER_PANIC as i64);
        self.b.ins().jump(err_block, &[BlockArg::Value(code)]);

        self.b.switch_to_block(done);
        let ok = self.iconst(I32, abi::STATUS_OK as i64);
        self.b.ins().return_(&[ok]);
        self.fill_error_exit(err_block, rt, i_var);
        Ok(())
    }

    /// Sign- or zero-extends an integer-backed value to i64.
    fn widen_i64(&mut self, v: Value, t: &DataType) -> Value {
        let ct = clif_type(t);
        if ct == I64 {
            v
        } else if is_signed(t) {
            self.b.ins().sextend(I64, v)
        } else {
            self.b.ins().uextend(I64, v)
        }
    }
}

fn int_cc(op: BinaryOp, signed: bool) -> IntCC {
    match (op, signed) {
        (BinaryOp::Eq, _) => IntCC::Equal,
        (BinaryOp::NotEq, _) => IntCC::NotEqual,
        (BinaryOp::Lt, true) => IntCC::SignedLessThan,
        (BinaryOp::Lt, false) => IntCC::UnsignedLessThan,
        (BinaryOp::LtEq, true) => IntCC::SignedLessThanOrEqual,
        (BinaryOp::LtEq, false) => IntCC::UnsignedLessThanOrEqual,
        (BinaryOp::Gt, true) => IntCC::SignedGreaterThan,
        (BinaryOp::Gt, false) => IntCC::UnsignedGreaterThan,
        (_, true) => IntCC::SignedGreaterThanOrEqual,
        (_, false) => IntCC::UnsignedGreaterThanOrEqual,
    }
}
