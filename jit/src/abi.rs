//! The fixed `#[repr(C)]` kernel ABI shared by Rust and generated code: one batch view, one view
//! per column, the output view, the aggregation context and the runtime context. Field offsets
//! are part of the ABI: emit.rs reads them through the `OFF_*` constants below, which tests pin
//! with `std::mem::offset_of!`. Owns no behaviour.

/// One input column as the kernel sees it. Unused pointers are null.
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct ColView {
    /// Primitive values (slice-adjusted), Boolean value bits, Utf8 offsets (slice-adjusted),
    /// Utf8View views, or dictionary keys.
    pub values: *const u8,
    /// Utf8 bytes; Utf8View: array of data-buffer pointers; Dictionary: (ptr, len) pairs of the values.
    pub data: *const u8,
    /// Utf8View: number of data buffers; Dictionary: number of values (both padded to at least 1).
    pub count: u64,
    /// Bit offset of Boolean values.
    pub bit_offset: u64,
    /// Validity bitmap (LSB order), or null when the column is declared non-nullable.
    pub validity: *const u8,
    /// Bit offset into the validity bitmap.
    pub validity_offset: u64,
    /// Pre-computed columns only: one byte per row, non-zero where evaluation raised an error.
    pub errors: *const u8,
}

/// The input batch.
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct BatchView {
    /// Rows.
    pub rows: u64,
    /// Column views (inputs, then pre-computed columns).
    pub cols: *const ColView,
    /// Row weights (i64).
    pub weights: *const i64,
    /// Byte stride of `weights`: 8, or 0 with `weights` pointing at a single +1.
    pub weight_stride: u64,
    /// Constant pool (string literals).
    pub consts: *const u8,
}

/// One output column: values (rows × width) and one validity byte per row.
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct OutCol {
    /// Values buffer.
    pub values: *mut u8,
    /// Validity bytes (0/1).
    pub validity: *mut u8,
}

/// Output of a filter/project kernel.
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct OutView {
    /// Selected input row indices (u32), used for pass-through (taken) columns.
    pub sel: *mut u32,
    /// Natively computed output columns.
    pub cols: *const OutCol,
    /// Rows the output buffers (and `sel`) can hold.
    pub capacity: u64,
}

/// Aggregation context: chunk scratch and accumulator pointers.
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct AggCtx {
    /// Per key column: values scratch (1 or 2 u64 words per row).
    pub key_vals: *const *mut u64,
    /// Per key column: validity bytes scratch.
    pub key_valid: *const *mut u8,
    /// Per distinct aggregate argument: values scratch (16 bytes per row).
    pub arg_vals: *const *mut u8,
    /// Per distinct aggregate argument: validity bytes scratch.
    pub arg_valid: *const *mut u8,
    /// Weight per selected row.
    pub weights: *mut i64,
    /// Group id per selected row (written by the intern helper).
    pub gids: *mut u32,
    /// Accumulator pointers, 3 per aggregate (value, count, flags); refreshed by the intern helper.
    pub accs: *const *mut u8,
    /// Opaque Rust state for the intern helper.
    pub owner: *mut u8,
}

/// Runtime context: error reporting and output row count.
#[repr(C)]
#[derive(Debug, Clone, Copy, Default)]
pub struct RtCtx {
    /// Error code (see `ERR_*`), 0 = none.
    pub err_code: u32,
    /// Padding.
    pub reserved: u32,
    /// Row of the error.
    pub err_row: u64,
    /// Filter/project kernels: output rows written so far (in: where to continue; out: total).
    pub out_rows: u64,
    /// Filter/project kernels: the input row to start at (in), or to resume at after
    /// `STATUS_OUTPUT_FULL` (out).
    pub next_row: u64,
}

/// Kernel status: finished.
pub const STATUS_OK: u32 = 0;
/// Kernel status: stopped on an error described in RtCtx.
pub const STATUS_ERROR: u32 = 1;
/// Kernel status: the output buffers are full; grow them and call again (RtCtx.next_row/out_rows say where).
pub const STATUS_OUTPUT_FULL: u32 = 2;

/// Division by zero (ANSI).
pub const ERR_DIV_ZERO: u32 = 1;
/// Arithmetic overflow (ANSI).
pub const ERR_OVERFLOW: u32 = 2;
/// Invalid or overflowing cast (ANSI cast).
pub const ERR_CAST: u32 = 3;
/// A Rust helper panicked.
pub const ERR_HELPER_PANIC: u32 = 4;
/// Pre-computed column `n` raised an error: code = ERR_PRECOMPUTED_BASE + n.
pub const ERR_PRECOMPUTED_BASE: u32 = 100;

/// The single kernel signature.
pub type KernelFn = unsafe extern "C" fn(
    batch: *const BatchView,
    agg: *mut AggCtx,
    out: *const OutView,
    rt: *mut RtCtx,
) -> u32;

/// The intern helper: interns `n` scratch rows, writes group ids and refreshes accumulator pointers.
pub type InternFn = unsafe extern "C" fn(agg: *mut AggCtx, n: u64) -> u32;

/// Byte offsets used by generated code.
pub mod off {
    use super::*;
    use std::mem::offset_of;
    /// ColView fields.
    pub const COL_VALUES: i32 = offset_of!(ColView, values) as i32;
    /// ColView.data
    pub const COL_DATA: i32 = offset_of!(ColView, data) as i32;
    /// ColView.count
    pub const COL_COUNT: i32 = offset_of!(ColView, count) as i32;
    /// ColView.bit_offset
    pub const COL_BIT_OFFSET: i32 = offset_of!(ColView, bit_offset) as i32;
    /// ColView.validity
    pub const COL_VALIDITY: i32 = offset_of!(ColView, validity) as i32;
    /// ColView.validity_offset
    pub const COL_VALIDITY_OFFSET: i32 = offset_of!(ColView, validity_offset) as i32;
    /// ColView.errors
    pub const COL_ERRORS: i32 = offset_of!(ColView, errors) as i32;
    /// size_of ColView
    pub const COL_SIZE: i32 = std::mem::size_of::<ColView>() as i32;
    /// BatchView.rows
    pub const BATCH_ROWS: i32 = offset_of!(BatchView, rows) as i32;
    /// BatchView.cols
    pub const BATCH_COLS: i32 = offset_of!(BatchView, cols) as i32;
    /// BatchView.weights
    pub const BATCH_WEIGHTS: i32 = offset_of!(BatchView, weights) as i32;
    /// BatchView.weight_stride
    pub const BATCH_WEIGHT_STRIDE: i32 = offset_of!(BatchView, weight_stride) as i32;
    /// BatchView.consts
    pub const BATCH_CONSTS: i32 = offset_of!(BatchView, consts) as i32;
    /// OutView.sel
    pub const OUT_SEL: i32 = offset_of!(OutView, sel) as i32;
    /// OutView.cols
    pub const OUT_COLS: i32 = offset_of!(OutView, cols) as i32;
    /// OutView.capacity
    pub const OUT_CAPACITY: i32 = offset_of!(OutView, capacity) as i32;
    /// size_of OutCol
    pub const OUTCOL_SIZE: i32 = std::mem::size_of::<OutCol>() as i32;
    /// OutCol.validity
    pub const OUTCOL_VALIDITY: i32 = offset_of!(OutCol, validity) as i32;
    /// AggCtx.key_vals
    pub const AGG_KEY_VALS: i32 = offset_of!(AggCtx, key_vals) as i32;
    /// AggCtx.key_valid
    pub const AGG_KEY_VALID: i32 = offset_of!(AggCtx, key_valid) as i32;
    /// AggCtx.arg_vals
    pub const AGG_ARG_VALS: i32 = offset_of!(AggCtx, arg_vals) as i32;
    /// AggCtx.arg_valid
    pub const AGG_ARG_VALID: i32 = offset_of!(AggCtx, arg_valid) as i32;
    /// AggCtx.weights
    pub const AGG_WEIGHTS: i32 = offset_of!(AggCtx, weights) as i32;
    /// AggCtx.gids
    pub const AGG_GIDS: i32 = offset_of!(AggCtx, gids) as i32;
    /// AggCtx.accs
    pub const AGG_ACCS: i32 = offset_of!(AggCtx, accs) as i32;
    /// RtCtx.err_code
    pub const RT_ERR_CODE: i32 = offset_of!(RtCtx, err_code) as i32;
    /// RtCtx.err_row
    pub const RT_ERR_ROW: i32 = offset_of!(RtCtx, err_row) as i32;
    /// RtCtx.out_rows
    pub const RT_OUT_ROWS: i32 = offset_of!(RtCtx, out_rows) as i32;
    /// RtCtx.next_row
    pub const RT_NEXT_ROW: i32 = offset_of!(RtCtx, next_row) as i32;
}
