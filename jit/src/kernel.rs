//! The compile cache and the compiled kernel: [`JitEngine`] turns a [`KernelSpec`] into an
//! `Arc<CompiledKernel>`, which runs batches natively (building the ABI views, pre-computing the
//! fallback sub-expressions, preallocating output buffers) or through the interpreter when the
//! whole kernel falls back. Also owns the `extern "C"` runtime helper called by generated code.
//! It must not import Cranelift (emit.rs does).

use std::collections::HashMap;
use std::fmt;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::{Arc, Mutex, Weak};
use std::time::{Duration, Instant};

use arrow::array::{
    Array, ArrayData, ArrayRef, AsArray, BooleanArray, Int64Array, RecordBatch, RecordBatchOptions,
    UInt32Array, make_array,
};
use arrow::buffer::{BooleanBuffer, Buffer, NullBuffer};
use arrow::datatypes::{DataType, SchemaRef};

use crate::abi::{self, AggCtx, BatchView, ColView, OutCol, OutView, RtCtx};
use crate::agg::{AggLayout, CHUNK_ROWS, GroupState, check_weights};
use crate::emit::{self, CodeHandle, EmitOptions};
use crate::error::{JitError, Result};
use crate::interp::{Interpreter, check_batch};
use crate::plan::{LowerPlan, OutputPlan, whole_kernel_fallback};
use crate::spec::{KernelSpec, PipelineKind};

/// Options of the JIT engine.
#[derive(Debug, Clone)]
pub struct JitOptions {
    /// Cranelift optimisation level: "none", "speed" or "speed_and_size".
    pub opt_level: String,
    /// Run Cranelift's IR verifier on every kernel (on in debug builds and tests).
    pub verify: bool,
    /// Force every kernel through the interpreter (for debugging and comparisons).
    pub interpret_only: bool,
    /// Keep the machine code listing (after register allocation) of every kernel, for
    /// [`CompiledKernel::disasm`] (debugging and performance work; costs compile time).
    pub disasm: bool,
}

impl Default for JitOptions {
    fn default() -> Self {
        JitOptions {
            opt_level: "speed".into(),
            verify: cfg!(debug_assertions),
            interpret_only: false,
            disasm: false,
        }
    }
}

/// Compiles kernels and caches them by spec (Send + Sync). The cache holds weak references:
/// a kernel's code memory is freed as soon as the last user drops it.
#[derive(Debug)]
pub struct JitEngine {
    opts: JitOptions,
    cache: Mutex<HashMap<KernelSpec, Weak<CompiledKernel>>>,
}

/// How a kernel executes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KernelMode {
    /// One native function (possibly with pre-computed columns).
    Native,
    /// The whole kernel runs in the interpreter, for the given reason.
    Interpreted(String),
}

/// What was compiled natively and what fell back (for EXPLAIN).
#[derive(Debug, Clone)]
pub struct CompileReport {
    /// Native or interpreted.
    pub mode: KernelMode,
    /// Stage expressions compiled natively.
    pub native: Vec<String>,
    /// Sub-expressions pre-computed per batch by the interpreter into extra columns.
    pub precomputed: Vec<String>,
    /// Wall time of IR construction + Cranelift compilation.
    pub compile_time: Duration,
}

impl fmt::Display for CompileReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.mode {
            KernelMode::Native => writeln!(
                f,
                "kernel: native (compiled in {} µs)",
                self.compile_time.as_micros()
            )?,
            KernelMode::Interpreted(why) => writeln!(f, "kernel: interpreted ({why})")?,
        }
        for n in &self.native {
            writeln!(f, "  native: {n}")?;
        }
        for p in &self.precomputed {
            writeln!(f, "  pre-computed per batch (interpreter): {p}")?;
        }
        Ok(())
    }
}

struct Native {
    plan: LowerPlan,
    func: abi::KernelFn,
    clif: String,
    disasm: Option<String>,
    _code: CodeHandle,
}

/// A compiled pipeline. Cheap to share; many threads may run it at once.
pub struct CompiledKernel {
    spec: Arc<KernelSpec>,
    interp: Interpreter,
    native: Option<Native>,
    report: CompileReport,
    layout: Option<Arc<AggLayout>>,
}

impl fmt::Debug for CompiledKernel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CompiledKernel")
            .field("report", &self.report)
            .finish()
    }
}

impl JitEngine {
    /// Creates an engine.
    pub fn new(opts: JitOptions) -> Result<Self> {
        if !matches!(opts.opt_level.as_str(), "none" | "speed" | "speed_and_size") {
            return Err(JitError::InvalidSpec(format!(
                "unknown opt_level '{}'; use none, speed or speed_and_size",
                opts.opt_level
            )));
        }
        Ok(JitEngine {
            opts,
            cache: Mutex::new(HashMap::new()),
        })
    }

    /// Compiles a spec (or returns the cached kernel of an equal spec that is still alive).
    pub fn compile(&self, spec: &KernelSpec) -> Result<Arc<CompiledKernel>> {
        if let Ok(cache) = self.cache.lock()
            && let Some(k) = cache.get(spec).and_then(Weak::upgrade)
        {
            return Ok(k);
        }
        let kernel = Arc::new(CompiledKernel::compile(spec, &self.opts)?);
        if let Ok(mut cache) = self.cache.lock() {
            if cache.len() >= 1024 {
                cache.retain(|_, w| w.strong_count() > 0);
            }
            cache.insert(spec.clone(), Arc::downgrade(&kernel));
        }
        Ok(kernel)
    }
}

impl CompiledKernel {
    fn compile(spec: &KernelSpec, opts: &JitOptions) -> Result<Self> {
        let start = Instant::now();
        let interp = Interpreter::new(spec)?;
        let spec = Arc::new(spec.clone());
        let layout = match spec.kind() {
            PipelineKind::Aggregate => Some(Arc::new(AggLayout::new(&spec)?)),
            PipelineKind::Map => None,
        };
        let fallback = if opts.interpret_only {
            Some("interpret_only option".to_string())
        } else {
            whole_kernel_fallback(&spec)
        };
        let (native, mode, native_desc, precomputed) = match fallback {
            Some(why) => (None, KernelMode::Interpreted(why), vec![], vec![]),
            None => {
                let plan = LowerPlan::new(spec.clone(), layout.clone());
                let emitted = emit::compile(
                    &plan,
                    &EmitOptions {
                        opt_level: opts.opt_level.clone(),
                        verify: opts.verify,
                        disasm: opts.disasm,
                    },
                )?;
                let precomputed: Vec<String> = plan
                    .precomputed
                    .keys()
                    .map(|e| spec.display_expr(*e))
                    .collect();
                let native_desc = describe_native(&spec, &plan);
                let native = Native {
                    plan,
                    func: emitted.func,
                    clif: emitted.clif,
                    disasm: emitted.disasm,
                    _code: emitted.handle,
                };
                (Some(native), KernelMode::Native, native_desc, precomputed)
            }
        };
        let report = CompileReport {
            mode,
            native: native_desc,
            precomputed,
            compile_time: start.elapsed(),
        };
        Ok(CompiledKernel {
            spec,
            interp,
            native,
            report,
            layout,
        })
    }

    /// The spec this kernel was compiled from.
    pub fn spec(&self) -> &KernelSpec {
        &self.spec
    }

    /// Output schema (projection, or keys + finalised aggregates).
    pub fn output_schema(&self) -> SchemaRef {
        match &self.layout {
            Some(l) => GroupState::new(l.clone()).output_schema(),
            None => self.interp.output_schema(),
        }
    }

    /// What compiled natively and what fell back.
    pub fn report(&self) -> &CompileReport {
        &self.report
    }

    /// CLIF text of the kernel before optimisation (None when interpreted).
    pub fn clif(&self) -> Option<&str> {
        self.native.as_ref().map(|n| n.clif.as_str())
    }

    /// Machine code listing after register allocation, when compiled with
    /// [`JitOptions::disasm`] (None otherwise or when interpreted).
    pub fn disasm(&self) -> Option<&str> {
        self.native.as_ref().and_then(|n| n.disasm.as_deref())
    }

    /// Runs a filter/project pipeline over one batch.
    pub fn run(&self, batch: &RecordBatch) -> Result<RecordBatch> {
        let Some(native) = &self.native else {
            return self.interp.run(batch);
        };
        if self.layout.is_some() {
            return Err(JitError::Unsupported(
                "run() on an aggregation kernel; use update()".into(),
            ));
        }
        check_batch(&self.spec, batch)?;
        let rows = batch.num_rows();
        if rows > u32::MAX as usize {
            return Err(JitError::SchemaMismatch(format!(
                "batch of {rows} rows exceeds the 2^32-1 row limit"
            )));
        }
        let inputs = InputViews::new(&native.plan, &self.interp, batch)?;
        // Outputs are preallocated by Rust: every row when nothing filters, otherwise a small
        // buffer the kernel reports full (STATUS_OUTPUT_FULL) so it can be grown and resumed.
        let mut capacity = if native.plan.filters.is_empty() {
            rows
        } else {
            rows.min(INITIAL_FILTERED_OUTPUT)
        }
        .max(1);
        let out_types: Vec<DataType> = native
            .plan
            .outputs
            .iter()
            .filter_map(|o| {
                if let OutputPlan::Native(e) = o {
                    Some(self.spec.types[*e as usize].clone())
                } else {
                    None
                }
            })
            .collect();
        let mut out_values: Vec<OutBuf> =
            out_types.iter().map(|t| OutBuf::new(t, capacity)).collect();
        let mut sel: Vec<u32> = Vec::with_capacity(capacity);
        let one: i64 = 1;
        let view = inputs.batch_view(rows, &one, 0, native.plan.consts.as_ptr());
        let mut rt = RtCtx::default();
        loop {
            let out_cols: Vec<OutCol> = out_values
                .iter_mut()
                .map(|b| OutCol {
                    values: b.values_ptr(),
                    validity: b.valid.as_mut_ptr(),
                })
                .collect();
            let out = OutView {
                sel: sel.as_mut_ptr(),
                cols: out_cols.as_ptr(),
                capacity: capacity as u64,
            };
            // SAFETY: every pointer in `view` and `out` points into buffers owned by `inputs`,
            // `out_values` and `sel`, which outlive the call; input buffers hold `rows` rows and
            // output buffers `capacity` rows, which the kernel checks before every output row.
            let status = unsafe { (native.func)(&view, std::ptr::null_mut(), &out, &mut rt) };
            match status {
                abi::STATUS_OK => break,
                abi::STATUS_OUTPUT_FULL => {
                    let written = (rt.out_rows as usize).min(capacity);
                    let grown = (capacity * 2).min(rows).max(written + 1);
                    for (buf, t) in out_values.iter_mut().zip(&out_types) {
                        // SAFETY: the kernel wrote rows 0..written of every native output.
                        unsafe { buf.grow(t, written, grown) };
                    }
                    // SAFETY: the kernel wrote the selection vector for rows 0..written.
                    unsafe { sel.set_len(written) };
                    sel.reserve_exact(grown - written);
                    capacity = grown;
                }
                _ => return Err(runtime_error(&rt, &inputs)),
            }
        }
        let n = (rt.out_rows as usize).min(capacity);
        // SAFETY: the kernel wrote the selection vector for rows 0..n.
        unsafe { sel.set_len(n) };
        let sel_array = UInt32Array::from(sel);
        let mut cols: Vec<ArrayRef> = vec![];
        let schema = self.interp.output_schema();
        let mut natives = out_values.into_iter();
        for (o, field) in native.plan.outputs.iter().zip(schema.fields()) {
            match o {
                OutputPlan::Native(_) => {
                    let buf = natives
                        .next()
                        .ok_or_else(|| JitError::Compile("missing output buffer".into()))?;
                    // SAFETY: the kernel finished with STATUS_OK and wrote rows 0..n of every native output.
                    cols.push(unsafe { buf.finish(field.data_type(), n)? });
                }
                OutputPlan::Take(c) => {
                    let col = inputs.column(*c);
                    let taken = if n == rows {
                        col.clone()
                    } else {
                        arrow::compute::take(col.as_ref(), &sel_array, None)?
                    };
                    let taken = if taken.data_type() != field.data_type() {
                        arrow::compute::cast(taken.as_ref(), field.data_type())?
                    } else {
                        taken
                    };
                    cols.push(taken);
                }
            }
        }
        Ok(RecordBatch::try_new_with_options(
            schema,
            cols,
            &RecordBatchOptions::new().with_row_count(Some(n)),
        )?)
    }

    /// A fresh aggregation state.
    pub fn new_group_state(&self) -> GroupState {
        match &self.layout {
            Some(l) => GroupState::new(l.clone()),
            None => GroupState::new(Arc::new(empty_layout())),
        }
    }

    /// Rebuilds a state from [`GroupState::to_record_batch`] output (e.g. after restoring a checkpoint).
    pub fn restore_group_state(&self, batch: &RecordBatch) -> Result<GroupState> {
        match &self.layout {
            Some(l) => GroupState::from_batch(l.clone(), batch),
            None => Err(JitError::Unsupported(
                "restore_group_state() on a filter/project kernel".into(),
            )),
        }
    }

    /// Feeds a batch into an aggregation state (weight +1 per row).
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
        let Some(native) = &self.native else {
            return match weights {
                Some(w) => self.interp.update_weighted(state, batch, w),
                None => self.interp.update(state, batch),
            };
        };
        state.check_layout(layout)?;
        check_batch(&self.spec, batch)?;
        let rows = batch.num_rows();
        if let Some(w) = weights {
            check_weights(layout, w, rows)?;
        }
        let plan_agg = native
            .plan
            .agg
            .as_ref()
            .ok_or_else(|| JitError::Compile("no aggregate plan".into()))?;
        let inputs = InputViews::new(&native.plan, &self.interp, batch)?;
        let mut key_vals: Vec<Vec<u64>> = plan_agg
            .keys
            .iter()
            .map(|_| vec![0u64; 2 * CHUNK_ROWS])
            .collect();
        let mut key_valid: Vec<Vec<u8>> = plan_agg
            .keys
            .iter()
            .map(|_| vec![0u8; CHUNK_ROWS])
            .collect();
        let mut arg_vals: Vec<Vec<u64>> = plan_agg
            .args
            .iter()
            .map(|_| vec![0u64; 2 * CHUNK_ROWS])
            .collect();
        let mut arg_valid: Vec<Vec<u8>> = plan_agg
            .args
            .iter()
            .map(|_| vec![0u8; CHUNK_ROWS])
            .collect();
        let mut s_weights = vec![0i64; CHUNK_ROWS];
        let mut gids = vec![0u32; CHUNK_ROWS];
        let key_val_ptrs: Vec<*mut u64> = key_vals.iter_mut().map(|v| v.as_mut_ptr()).collect();
        let key_valid_ptrs: Vec<*mut u8> = key_valid.iter_mut().map(|v| v.as_mut_ptr()).collect();
        let arg_val_ptrs: Vec<*mut u8> = arg_vals
            .iter_mut()
            .map(|v| v.as_mut_ptr() as *mut u8)
            .collect();
        let arg_valid_ptrs: Vec<*mut u8> = arg_valid.iter_mut().map(|v| v.as_mut_ptr()).collect();
        let mut accs: Vec<*mut u8> = vec![std::ptr::null_mut(); 3 * layout.aggs.len().max(1)];
        state.acc_pointers(&mut accs);
        let mut owner = InternOwner {
            state,
            key_vals: key_val_ptrs.iter().map(|p| *p as *const u64).collect(),
            key_valid: key_valid_ptrs.iter().map(|p| *p as *const u8).collect(),
        };
        let mut ctx = AggCtx {
            key_vals: key_val_ptrs.as_ptr(),
            key_valid: key_valid_ptrs.as_ptr(),
            arg_vals: arg_val_ptrs.as_ptr(),
            arg_valid: arg_valid_ptrs.as_ptr(),
            weights: s_weights.as_mut_ptr(),
            gids: gids.as_mut_ptr(),
            accs: accs.as_mut_ptr(),
            owner: &mut owner as *mut InternOwner as *mut u8,
        };
        let one: i64 = 1;
        let (wptr, stride) = match weights {
            Some(w) => (w.values().as_ptr(), 8),
            None => (&one as *const i64, 0),
        };
        let view = inputs.batch_view(rows, wptr, stride, native.plan.consts.as_ptr());
        let out = OutView {
            sel: std::ptr::null_mut(),
            cols: std::ptr::null(),
            capacity: 0,
        };
        let mut rt = RtCtx::default();
        // SAFETY: all views point into buffers that outlive the call (inputs, scratch vectors,
        // `accs`, `owner`), scratch holds CHUNK_ROWS rows, weights hold `rows` entries (or stride 0),
        // and the helper refreshes `accs` after any growth before the kernel reads them again.
        let status = unsafe { (native.func)(&view, &mut ctx, &out, &mut rt) };
        if status != abi::STATUS_OK {
            return Err(runtime_error(&rt, &inputs));
        }
        Ok(())
    }
}

fn empty_layout() -> AggLayout {
    let spec = KernelSpec {
        inputs: vec![],
        exprs: vec![],
        types: vec![],
        stages: vec![crate::spec::Stage::Aggregate {
            keys: vec![],
            aggs: vec![],
        }],
        ansi: false,
    };
    // An aggregate stage without keys or aggregates always has a layout.
    AggLayout::new(&spec).unwrap_or_else(|_| unreachable!("empty aggregate layout"))
}

fn describe_native(spec: &KernelSpec, plan: &LowerPlan) -> Vec<String> {
    let mut out = vec![];
    for f in &plan.filters {
        out.push(format!("filter {}", spec.display_expr(*f)));
    }
    if let Some((keys, aggs)) = spec.aggregate() {
        for (n, e) in keys {
            out.push(format!("key {n} := {}", spec.display_expr(*e)));
        }
        for a in aggs {
            out.push(format!(
                "agg {} := {:?}({})",
                a.name,
                a.func,
                a.arg.map(|e| spec.display_expr(e)).unwrap_or("*".into())
            ));
        }
    } else if let Some(p) = spec.projection() {
        for ((n, e), o) in p.iter().zip(&plan.outputs) {
            match o {
                OutputPlan::Native(_) => {
                    out.push(format!("project {n} := {}", spec.display_expr(*e)))
                }
                OutputPlan::Take(_) => out.push(format!(
                    "project {n} := {} (copied at selected rows)",
                    spec.display_expr(*e)
                )),
            }
        }
    }
    out
}

fn runtime_error(rt: &RtCtx, inputs: &InputViews) -> JitError {
    let row = rt.err_row as usize;
    let message = match rt.err_code {
        abi::ERR_DIV_ZERO => "division by zero (ANSI mode)".to_string(),
        abi::ERR_OVERFLOW => "arithmetic overflow (ANSI mode)".to_string(),
        abi::ERR_CAST => "invalid or overflowing cast (ANSI cast)".to_string(),
        abi::ERR_HELPER_PANIC => "internal error: the group-interning helper panicked".to_string(),
        c if c >= abi::ERR_PRECOMPUTED_BASE => inputs
            .precomputed_error((c - abi::ERR_PRECOMPUTED_BASE) as usize, row)
            .unwrap_or_else(|| "error in a pre-computed expression".to_string()),
        c => format!("unknown kernel error code {c}"),
    };
    JitError::Runtime { row, message }
}

/// Rust-side owner of one update call, reachable from the intern helper through AggCtx.owner.
struct InternOwner<'a> {
    state: &'a mut GroupState,
    key_vals: Vec<*const u64>,
    key_valid: Vec<*const u8>,
}

/// Compile-time check that the helper has the signature emit.rs declares.
const _: abi::InternFn = rt_intern;

/// Interns `n` staged rows into group ids and refreshes the accumulator pointers.
/// Returns 0, or 1 if the Rust code panicked (the panic never crosses the JIT frame).
pub(crate) extern "C" fn rt_intern(ctx: *mut AggCtx, n: u64) -> u32 {
    let result = catch_unwind(AssertUnwindSafe(|| {
        // SAFETY: generated code passes the AggCtx built by update_impl, whose owner is a live
        // InternOwner and whose scratch holds n <= CHUNK_ROWS staged rows.
        unsafe {
            let ctx = &mut *ctx;
            let owner = &mut *(ctx.owner as *mut InternOwner<'_>);
            owner
                .state
                .intern_chunk(&owner.key_vals, &owner.key_valid, n as usize, ctx.gids);
            let naccs = owner.state.layout().aggs.len();
            let accs = std::slice::from_raw_parts_mut(ctx.accs as *mut *mut u8, 3 * naccs);
            owner.state.acc_pointers(accs);
        }
    }));
    if result.is_ok() { 0 } else { 1 }
}

/// Initial output capacity (rows) of a filtering kernel; doubled whenever the kernel reports full.
const INITIAL_FILTERED_OUTPUT: usize = 1024;

/// A preallocated native output column. Capacity is reserved for every input row but nothing is
/// initialised up front: the kernel writes rows 0..k and only those become the array.
struct OutBuf {
    words: Vec<u64>,
    wide: Vec<i128>,
    valid: Vec<u8>,
}

impl OutBuf {
    fn new(t: &DataType, rows: usize) -> Self {
        let n = rows.max(1);
        match t {
            DataType::Decimal128(..) => OutBuf {
                words: vec![],
                wide: Vec::with_capacity(n),
                valid: Vec::with_capacity(n),
            },
            _ => OutBuf {
                words: Vec::with_capacity(n),
                wide: vec![],
                valid: Vec::with_capacity(n),
            },
        }
    }

    /// Keeps the first `written` rows and makes room for `capacity` rows.
    ///
    /// # Safety
    /// The kernel must have written values and validity of rows 0..written.
    unsafe fn grow(&mut self, t: &DataType, written: usize, capacity: usize) {
        // SAFETY: rows 0..written are initialised (caller contract); tails are zeroed first.
        unsafe {
            self.valid.set_len(written);
            self.valid.reserve_exact(capacity - written);
            if self.wide.capacity() == 0 {
                let width = t.primitive_width().unwrap_or(1);
                let bytes = written * width;
                let words = bytes.div_ceil(8);
                std::ptr::write_bytes(
                    (self.words.as_mut_ptr() as *mut u8).add(bytes),
                    0,
                    words * 8 - bytes,
                );
                self.words.set_len(words);
                self.words.reserve_exact(capacity - words);
            } else {
                self.wide.set_len(written);
                self.wide.reserve_exact(capacity - written);
            }
        }
    }

    fn values_ptr(&mut self) -> *mut u8 {
        if self.wide.capacity() == 0 {
            self.words.as_mut_ptr() as *mut u8
        } else {
            self.wide.as_mut_ptr() as *mut u8
        }
    }

    /// Takes ownership of the first `n` rows the kernel wrote.
    ///
    /// # Safety
    /// The kernel must have written values and validity of rows 0..n (it writes every output
    /// row it counts in `RtCtx::out_rows`).
    unsafe fn finish(mut self, t: &DataType, n: usize) -> Result<ArrayRef> {
        // SAFETY: rows 0..n were written by the kernel (caller contract); capacity >= n.
        unsafe {
            self.valid.set_len(n);
            if self.wide.capacity() == 0 {
                // Values narrower than 8 bytes occupy n * width bytes of the u64 words.
                let width = t.primitive_width().unwrap_or(1);
                let bytes = n * width;
                let words = bytes.div_ceil(8);
                // Zero the tail of the last word so every byte of the words is initialised.
                std::ptr::write_bytes(
                    (self.words.as_mut_ptr() as *mut u8).add(bytes),
                    0,
                    words * 8 - bytes,
                );
                self.words.set_len(words);
            } else {
                self.wide.set_len(n);
            }
        }
        let nulls = NullBuffer::new(BooleanBuffer::collect_bool(n, |i| self.valid[i] != 0));
        let nulls = (nulls.null_count() > 0).then_some(nulls);
        if *t == DataType::Boolean {
            let bytes: &[u8] = bytemuck_bytes(&self.words);
            let values = BooleanBuffer::collect_bool(n, |i| bytes[i] != 0);
            return Ok(Arc::new(BooleanArray::new(values, nulls)));
        }
        let buffer = if self.wide.capacity() == 0 {
            Buffer::from_vec(self.words)
        } else {
            Buffer::from_vec(self.wide)
        };
        let data = ArrayData::builder(t.clone())
            .len(n)
            .add_buffer(buffer)
            .nulls(nulls)
            .build()?;
        Ok(make_array(data))
    }
}

fn bytemuck_bytes(words: &[u64]) -> &[u8] {
    // SAFETY: u64 has no padding and any byte pattern is a valid u8; the slice covers exactly
    // the words' memory.
    unsafe { std::slice::from_raw_parts(words.as_ptr() as *const u8, std::mem::size_of_val(words)) }
}

/// Column views of one batch plus everything they point into.
struct InputViews {
    columns: Vec<ArrayRef>,
    views: Vec<ColView>,
    errors: Vec<Vec<Option<String>>>,
    _keep: Vec<Keep>,
}

#[allow(dead_code)]
enum Keep {
    Bytes(Vec<u8>),
    Ptrs(Vec<*const u8>),
    Pairs(Vec<[u64; 2]>),
    Nulls(NullBuffer),
}

impl InputViews {
    fn new(plan: &LowerPlan, interp: &Interpreter, batch: &RecordBatch) -> Result<Self> {
        let rows = batch.num_rows();
        let mut columns: Vec<ArrayRef> = batch.columns().to_vec();
        let mut errors: Vec<Vec<Option<String>>> = vec![vec![]; plan.columns.len()];
        let mut precomputed: Vec<(usize, u32)> =
            plan.precomputed.iter().map(|(e, c)| (*c, *e)).collect();
        precomputed.sort_unstable();
        for (c, e) in &precomputed {
            let (array, errs) = interp.eval_column(*e, batch)?;
            if columns.len() != *c {
                return Err(JitError::Compile(
                    "pre-computed columns out of order".into(),
                ));
            }
            columns.push(array);
            errors[*c] = errs;
        }
        let mut keep = vec![];
        let mut views = vec![];
        let ones = vec![0xffu8; rows / 8 + 2];
        for (i, (col, cp)) in columns.iter().zip(&plan.columns).enumerate() {
            let data = col.to_data();
            let off = data.offset();
            let mut v = ColView {
                values: std::ptr::null(),
                data: std::ptr::null(),
                count: 0,
                bit_offset: 0,
                validity: std::ptr::null(),
                validity_offset: 0,
                errors: std::ptr::null(),
            };
            let buf0 = data
                .buffers()
                .first()
                .map(|b| b.as_ptr())
                .unwrap_or(std::ptr::null());
            match data.data_type() {
                DataType::Boolean => {
                    v.values = buf0;
                    v.bit_offset = off as u64;
                }
                DataType::Utf8 | DataType::LargeUtf8 => {
                    let w = if *data.data_type() == DataType::Utf8 {
                        4
                    } else {
                        8
                    };
                    // SAFETY: the offsets buffer holds len + 1 entries after `off`.
                    v.values = unsafe { buf0.add(off * w) };
                    v.data = data
                        .buffers()
                        .get(1)
                        .map(|b| b.as_ptr())
                        .unwrap_or(std::ptr::null());
                }
                DataType::Utf8View => {
                    // SAFETY: the views buffer holds len views after `off`.
                    v.values = unsafe { buf0.add(off * 16) };
                    let mut ptrs: Vec<*const u8> =
                        data.buffers()[1..].iter().map(|b| b.as_ptr()).collect();
                    if ptrs.is_empty() {
                        ptrs.push(std::ptr::null());
                    }
                    v.data = ptrs.as_ptr() as *const u8;
                    v.count = ptrs.len() as u64;
                    keep.push(Keep::Ptrs(ptrs));
                }
                DataType::Dictionary(kt, _) => {
                    let w = kt.primitive_width().unwrap_or(1);
                    // SAFETY: the keys buffer holds len keys after `off`.
                    v.values = unsafe { buf0.add(off * w) };
                    let dict = col.as_any_dictionary();
                    let values = dict.values();
                    let mut pairs: Vec<[u64; 2]> = Vec::with_capacity(values.len().max(1));
                    match values.data_type() {
                        DataType::Utf8 => {
                            let s = values.as_string::<i32>();
                            for j in 0..s.len() {
                                let b = s.value(j).as_bytes();
                                pairs.push([b.as_ptr() as u64, b.len() as u64]);
                            }
                        }
                        _ => {
                            let s = values.as_string::<i64>();
                            for j in 0..s.len() {
                                let b = s.value(j).as_bytes();
                                pairs.push([b.as_ptr() as u64, b.len() as u64]);
                            }
                        }
                    }
                    if pairs.is_empty() {
                        pairs.push([0, 0]);
                    }
                    v.data = pairs.as_ptr() as *const u8;
                    v.count = pairs.len() as u64;
                    keep.push(Keep::Pairs(pairs));
                }
                t => {
                    let w = t.primitive_width().unwrap_or(0);
                    // SAFETY: the values buffer holds len values after `off`.
                    v.values = unsafe { buf0.add(off * w) };
                }
            }
            if cp.nullable {
                let nulls = if matches!(data.data_type(), DataType::Dictionary(..)) {
                    col.logical_nulls()
                } else {
                    col.nulls().cloned()
                };
                match nulls {
                    Some(nb) => {
                        v.validity = nb.buffer().as_ptr();
                        v.validity_offset = nb.offset() as u64;
                        keep.push(Keep::Nulls(nb));
                    }
                    None => v.validity = ones.as_ptr(),
                }
            }
            if cp.has_errors {
                let flags: Vec<u8> = if errors[i].is_empty() {
                    vec![0; rows.max(1)]
                } else {
                    errors[i].iter().map(|e| e.is_some() as u8).collect()
                };
                v.errors = flags.as_ptr();
                keep.push(Keep::Bytes(flags));
            }
            views.push(v);
        }
        keep.push(Keep::Bytes(ones));
        Ok(InputViews {
            columns,
            views,
            errors,
            _keep: keep,
        })
    }

    fn batch_view(
        &self,
        rows: usize,
        weights: *const i64,
        stride: u64,
        consts: *const u8,
    ) -> BatchView {
        BatchView {
            rows: rows as u64,
            cols: self.views.as_ptr(),
            weights,
            weight_stride: stride,
            consts,
        }
    }

    fn column(&self, i: usize) -> &ArrayRef {
        &self.columns[i]
    }

    fn precomputed_error(&self, col: usize, row: usize) -> Option<String> {
        self.errors.get(col)?.get(row)?.clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    #[test]
    fn kernels_are_send_and_sync() {
        fn check<T: Send + Sync>() {}
        check::<CompiledKernel>();
        check::<JitEngine>();
        check::<GroupState>();
    }
}
