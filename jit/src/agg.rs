//! Grouped aggregation state: columnar group keys, a fixed-seed hash index of group ids, and
//! struct-of-arrays accumulators indexed by group id. Owns [`GroupState`], its checkpoint form
//! (an Arrow RecordBatch of keys + raw accumulators) and finalisation. The interpreter updates it
//! through `intern_values`/`update_value`; JIT kernels intern a chunk of rows at a time through
//! `intern_chunk` and update the accumulator vectors in place through raw pointers.
//! It must not know how kernels are compiled.

use std::sync::Arc;

use arrow::array::{
    Array, ArrayRef, AsArray, Decimal128Array, Float64Array, Int64Array, RecordBatch, StringArray,
    UInt8Array,
};
use arrow::datatypes::{
    DataType, Decimal128Type, Field, Float64Type, Int64Type, Schema, SchemaRef,
};
use hashbrown::HashTable;

use crate::error::{JitError, Result};
use crate::hash::{hash_bytes, mix};
use crate::interp::{compare, fits_precision, pow10};
use crate::spec::{AggFunc, KernelSpec, agg_output_type, is_float};
use crate::value::{V, build_array, read_value};

/// Rows interned per helper call by JIT kernels.
pub const CHUNK_ROWS: usize = 1024;

/// How a key column is stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyKind {
    /// Booleans, integers (u64 as bits), dates, timestamps.
    I64,
    /// Floats as normalised f64 bits (-0.0 -> 0.0, one NaN).
    F64,
    /// Decimals.
    I128,
    /// Strings (bytes).
    Str,
}

/// How an aggregate's value accumulator is stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ValueKind {
    /// No value (count).
    None,
    /// i64 (integer sums wrap; u64 min/max compare unsigned).
    I64,
    /// f64.
    F64,
    /// i128 (decimals).
    I128,
    /// Strings.
    Str,
}

/// A key column of the layout.
#[derive(Debug, Clone)]
pub struct KeyDesc {
    /// Output name.
    pub name: String,
    /// Logical type.
    pub data_type: DataType,
    /// Storage.
    pub kind: KeyKind,
}

/// An aggregate of the layout.
#[derive(Debug, Clone)]
pub struct AggDesc {
    /// Output name.
    pub name: String,
    /// Function.
    pub func: AggFunc,
    /// Argument type (Int64 for count(*)).
    pub arg_type: DataType,
    /// Finalised output type.
    pub out_type: DataType,
    /// Value storage.
    pub value: ValueKind,
}

/// The shape of a spec's aggregation state.
#[derive(Debug, Clone)]
pub struct AggLayout {
    /// Key columns.
    pub keys: Vec<KeyDesc>,
    /// Aggregates.
    pub aggs: Vec<AggDesc>,
    state_schema: SchemaRef,
    output_schema: SchemaRef,
}

fn key_kind(t: &DataType) -> KeyKind {
    match t {
        t if is_float(t) => KeyKind::F64,
        DataType::Decimal128(..) => KeyKind::I128,
        DataType::Utf8 => KeyKind::Str,
        _ => KeyKind::I64,
    }
}

fn value_kind(func: AggFunc, t: &DataType) -> ValueKind {
    match func {
        AggFunc::CountStar | AggFunc::Count => ValueKind::None,
        _ => match t {
            t if is_float(t) => ValueKind::F64,
            DataType::Decimal128(..) => ValueKind::I128,
            DataType::Utf8 => ValueKind::Str,
            _ => ValueKind::I64,
        },
    }
}

impl AggLayout {
    /// Derives the layout of a validated aggregation spec.
    pub fn new(spec: &KernelSpec) -> Result<Self> {
        let (keys, aggs) = spec
            .aggregate()
            .ok_or_else(|| JitError::Unsupported("spec has no aggregate stage".into()))?;
        let keys: Vec<KeyDesc> = keys
            .iter()
            .map(|(n, e)| {
                let t = spec.types[*e as usize].clone();
                KeyDesc {
                    name: n.clone(),
                    kind: key_kind(&t),
                    data_type: t,
                }
            })
            .collect();
        let mut descs = vec![];
        for a in aggs {
            let arg_type = a
                .arg
                .map(|e| spec.types[e as usize].clone())
                .unwrap_or(DataType::Int64);
            let out_type = agg_output_type(a.func, &arg_type).map_err(JitError::InvalidSpec)?;
            descs.push(AggDesc {
                name: a.name.clone(),
                func: a.func,
                value: value_kind(a.func, &arg_type),
                arg_type,
                out_type,
            });
        }
        let mut state_fields: Vec<Field> = keys
            .iter()
            .map(|k| Field::new(&k.name, k.data_type.clone(), true))
            .collect();
        for a in &descs {
            if let Some(t) = value_state_type(a) {
                state_fields.push(Field::new(format!("{}$value", a.name), t, true));
            }
            state_fields.push(Field::new(
                format!("{}$count", a.name),
                DataType::Int64,
                false,
            ));
            state_fields.push(Field::new(
                format!("{}$flags", a.name),
                DataType::UInt8,
                false,
            ));
        }
        let mut out_fields: Vec<Field> = keys
            .iter()
            .map(|k| Field::new(&k.name, k.data_type.clone(), true))
            .collect();
        for a in &descs {
            let nullable = !matches!(a.func, AggFunc::Count | AggFunc::CountStar);
            out_fields.push(Field::new(&a.name, a.out_type.clone(), nullable));
        }
        Ok(AggLayout {
            keys,
            aggs: descs,
            state_schema: Arc::new(Schema::new(state_fields)),
            output_schema: Arc::new(Schema::new(out_fields)),
        })
    }

    /// Whether every aggregate can be retracted (count/sum/avg).
    pub fn invertible(&self) -> bool {
        self.aggs.iter().all(|a| {
            matches!(
                a.func,
                AggFunc::CountStar | AggFunc::Count | AggFunc::Sum | AggFunc::Avg
            )
        })
    }
}

fn value_state_type(a: &AggDesc) -> Option<DataType> {
    Some(match a.value {
        ValueKind::None => return None,
        ValueKind::I64 => DataType::Int64,
        ValueKind::F64 => DataType::Float64,
        ValueKind::I128 => match a.arg_type {
            DataType::Decimal128(_, s) => DataType::Decimal128(38, s),
            _ => DataType::Decimal128(38, 0),
        },
        ValueKind::Str => DataType::Utf8,
    })
}

/// Rejects weights other than +1 when an aggregate cannot be retracted.
pub fn check_weights(layout: &AggLayout, weights: &Int64Array, rows: usize) -> Result<()> {
    if weights.len() != rows {
        return Err(JitError::SchemaMismatch(format!(
            "{} weights for {rows} rows",
            weights.len()
        )));
    }
    if weights.null_count() > 0 {
        return Err(JitError::SchemaMismatch("weights must not be NULL".into()));
    }
    if !layout.invertible() && weights.values().iter().any(|w| *w != 1) {
        return Err(JitError::Unsupported(
            "retractions (weight != 1) are only supported for count, sum and avg; min/max/first/last need append-only input".into(),
        ));
    }
    Ok(())
}

#[derive(Debug, Clone)]
enum KeyData {
    I64(Vec<i64>),
    F64(Vec<u64>),
    I128(Vec<i128>),
    Str { offsets: Vec<usize>, bytes: Vec<u8> },
}

#[derive(Debug, Clone)]
struct KeyColumn {
    valid: Vec<bool>,
    data: KeyData,
}

/// One key value borrowed for interning.
#[derive(Debug, Clone, Copy)]
pub enum KeyRef<'a> {
    /// NULL.
    Null,
    /// I64 storage.
    I64(i64),
    /// Normalised f64 bits.
    F64(u64),
    /// Decimal.
    I128(i128),
    /// String bytes.
    Str(&'a [u8]),
}

/// Normalises a float key: -0.0 -> 0.0 and every NaN to one NaN (Spark).
pub fn normalize_float_bits(f: f64) -> u64 {
    if f.is_nan() {
        f64::NAN.to_bits()
    } else if f == 0.0 {
        0
    } else {
        f.to_bits()
    }
}

/// Accumulator values of one aggregate.
#[derive(Debug, Clone)]
pub(crate) enum ValueVec {
    None,
    I64(Vec<i64>),
    F64(Vec<f64>),
    I128(Vec<i128>),
    Str(Vec<Option<Arc<str>>>),
}

#[derive(Debug, Clone)]
pub(crate) struct AccColumn {
    pub(crate) value: ValueVec,
    /// count for count/sum/avg.
    pub(crate) count: Vec<i64>,
    /// bit 0: set (min/max/first/last saw a row); bit 1: value is not NULL (first/last).
    pub(crate) flags: Vec<u8>,
}

/// Adds string keys to a count-only state (see [`GroupState::string_key_counter`]).
#[derive(Debug)]
pub struct StringKeyCounter<'a> {
    state: &'a mut GroupState,
}

impl StringKeyCounter<'_> {
    /// One more row with this key: its group is found or created and every count grows by one.
    #[inline]
    pub fn add(&mut self, key: &[u8]) {
        let g = self.state.intern_one_string_key(Some(key)) as usize;
        for a in &mut self.state.accs {
            a.count[g] = a.count[g].wrapping_add(1);
        }
    }
}

/// Aggregation state of one (operator, partition): single writer.
#[derive(Debug, Clone)]
pub struct GroupState {
    layout: Arc<AggLayout>,
    keys: Vec<KeyColumn>,
    /// Fixed-width key tuples packed row-wise (when no key is a string): one memcmp per probe.
    packed: Option<PackedKeys>,
    pub(crate) accs: Vec<AccColumn>,
    index: HashTable<u32>,
    hashes: Vec<u64>,
    dirty: Vec<bool>,
    dirty_list: Vec<u32>,
    len: usize,
    /// Per-chunk scratch of the specialised interning loops (kept for its allocation).
    scratch_words: Vec<u64>,
    scratch_hashes: Vec<u64>,
}

const NULL_KEY: u64 = 0x006e_756c_6c6b_6579;

/// Most u64 words of a packed key tuple (null mask + values).
const MAX_PACKED_WORDS: usize = 16;

/// Row-wise fixed-width keys: word 0 is the null mask, then one word per I64/F64 key and two
/// per I128 key (lo, hi); NULL keys store zeros.
#[derive(Debug, Clone)]
struct PackedKeys {
    stride: usize,
    words: Vec<u64>,
}

fn packed_stride(layout: &AggLayout) -> Option<usize> {
    if layout.keys.len() > 63 {
        return None;
    }
    let mut stride = 1;
    for k in &layout.keys {
        stride += match k.kind {
            KeyKind::I64 | KeyKind::F64 => 1,
            KeyKind::I128 => 2,
            KeyKind::Str => return None,
        };
    }
    (stride <= MAX_PACKED_WORDS).then_some(stride)
}

fn decode_keys(kinds: &[KeyDesc], enc: &[u64], out: &mut Vec<KeyRef<'static>>) {
    let mut w = 1;
    for (c, k) in kinds.iter().enumerate() {
        let null = enc[0] & (1 << c) != 0;
        let r = match k.kind {
            KeyKind::I128 => {
                let v = ((enc[w + 1] as u128) << 64 | enc[w] as u128) as i128;
                w += 2;
                KeyRef::I128(v)
            }
            KeyKind::F64 => {
                w += 1;
                KeyRef::F64(enc[w - 1])
            }
            _ => {
                w += 1;
                KeyRef::I64(enc[w - 1] as i64)
            }
        };
        out.push(if null { KeyRef::Null } else { r });
    }
}

/// Equality of two byte strings of the same length; short ones (words, names) are compared
/// inline, which is cheaper than a library `memcmp` call per probe.
#[inline]
fn short_bytes_equal(a: &[u8], b: &[u8]) -> bool {
    if a.len() > 32 {
        return a == b;
    }
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// Equality of two short word slices without a library memcmp call per probe.
#[inline]
fn words_equal(a: &[u64], b: &[u64]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u64, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// Hash of a packed key tuple (word 0 the null mask, then the key words). The mask is mixed in
/// only when some key is NULL: one multiply less per row in the common case, and the same
/// function serves every path (interning, restore), so the index stays consistent.
#[inline]
fn hash_words(words: &[u64]) -> u64 {
    let Some((&mask, keys)) = words.split_first() else {
        return 0x243f_6a88_85a3_08d3;
    };
    let h = keys.iter().fold(0x243f_6a88_85a3_08d3, |h, w| mix(h, *w));
    if mask == 0 { h } else { mix(h, mask) }
}

/// Encodes a key tuple into packed words; returns the number of words.
fn encode_keys(kinds: &[KeyDesc], keys: &[KeyRef<'_>], out: &mut [u64; MAX_PACKED_WORDS]) -> usize {
    let mut mask = 0u64;
    let mut n = 1;
    for (c, (k, desc)) in keys.iter().zip(kinds).enumerate() {
        match k {
            KeyRef::Null => {
                mask |= 1 << c;
                let w = if desc.kind == KeyKind::I128 { 2 } else { 1 };
                out[n..n + w].fill(0);
                n += w;
            }
            KeyRef::I64(v) => {
                out[n] = *v as u64;
                n += 1;
            }
            KeyRef::F64(b) => {
                out[n] = *b;
                n += 1;
            }
            KeyRef::I128(v) => {
                out[n] = *v as u64;
                out[n + 1] = (*v >> 64) as u64;
                n += 2;
            }
            KeyRef::Str(_) => {}
        }
    }
    out[0] = mask;
    n
}

fn hash_keys(keys: &[KeyRef<'_>]) -> u64 {
    let mut h = 0x243f_6a88_85a3_08d3;
    for k in keys {
        h = match k {
            KeyRef::Null => mix(h, NULL_KEY),
            KeyRef::I64(v) => mix(h, *v as u64),
            KeyRef::F64(b) => mix(h, *b),
            KeyRef::I128(v) => mix(mix(h, *v as u64), (*v >> 64) as u64),
            KeyRef::Str(b) => hash_bytes(h, b),
        };
    }
    h
}

impl GroupState {
    pub(crate) fn new(layout: Arc<AggLayout>) -> Self {
        let keys = layout
            .keys
            .iter()
            .map(|k| KeyColumn {
                valid: vec![],
                data: match k.kind {
                    KeyKind::I64 => KeyData::I64(vec![]),
                    KeyKind::F64 => KeyData::F64(vec![]),
                    KeyKind::I128 => KeyData::I128(vec![]),
                    KeyKind::Str => KeyData::Str {
                        offsets: vec![0],
                        bytes: vec![],
                    },
                },
            })
            .collect();
        let accs = layout
            .aggs
            .iter()
            .map(|a| AccColumn {
                value: match a.value {
                    ValueKind::None => ValueVec::None,
                    ValueKind::I64 => ValueVec::I64(vec![]),
                    ValueKind::F64 => ValueVec::F64(vec![]),
                    ValueKind::I128 => ValueVec::I128(vec![]),
                    ValueKind::Str => ValueVec::Str(vec![]),
                },
                count: vec![],
                flags: vec![],
            })
            .collect();
        let packed = packed_stride(&layout).map(|stride| PackedKeys {
            stride,
            words: vec![],
        });
        GroupState {
            layout,
            keys,
            packed,
            accs,
            index: HashTable::new(),
            hashes: vec![],
            dirty: vec![],
            dirty_list: vec![],
            len: 0,
            scratch_words: vec![],
            scratch_hashes: vec![],
        }
    }

    pub(crate) fn layout(&self) -> &Arc<AggLayout> {
        &self.layout
    }

    pub(crate) fn check_layout(&self, layout: &Arc<AggLayout>) -> Result<()> {
        if Arc::ptr_eq(&self.layout, layout) || self.layout.state_schema == layout.state_schema {
            Ok(())
        } else {
            Err(JitError::State(
                "this state was created for a different aggregation kernel".into(),
            ))
        }
    }

    /// Number of groups.
    pub fn num_groups(&self) -> usize {
        self.len
    }

    /// Schema of [`GroupState::to_record_batch`]: keys, then per aggregate `name$value`
    /// (if any), `name$count`, `name$flags`.
    pub fn state_schema(&self) -> SchemaRef {
        self.layout.state_schema.clone()
    }

    /// Schema of [`GroupState::output`].
    pub fn output_schema(&self) -> SchemaRef {
        self.layout.output_schema.clone()
    }

    fn key_ref(&self, col: usize, gid: usize) -> KeyRef<'_> {
        let k = &self.keys[col];
        if !k.valid[gid] {
            return KeyRef::Null;
        }
        match &k.data {
            KeyData::I64(v) => KeyRef::I64(v[gid]),
            KeyData::F64(v) => KeyRef::F64(v[gid]),
            KeyData::I128(v) => KeyRef::I128(v[gid]),
            KeyData::Str { offsets, bytes } => KeyRef::Str(&bytes[offsets[gid]..offsets[gid + 1]]),
        }
    }

    fn keys_equal(&self, gid: usize, keys: &[KeyRef<'_>]) -> bool {
        keys.iter()
            .enumerate()
            .all(|(c, k)| match (self.key_ref(c, gid), k) {
                (KeyRef::Null, KeyRef::Null) => true,
                (KeyRef::I64(a), KeyRef::I64(b)) => a == *b,
                (KeyRef::F64(a), KeyRef::F64(b)) => a == *b,
                (KeyRef::I128(a), KeyRef::I128(b)) => a == *b,
                (KeyRef::Str(a), KeyRef::Str(b)) => a == *b,
                _ => false,
            })
    }

    /// Finds or creates the group of a key tuple; marks it dirty.
    pub(crate) fn intern(&mut self, keys: &[KeyRef<'_>]) -> u32 {
        if self.packed.is_some() {
            let mut enc = [0u64; MAX_PACKED_WORDS];
            let n = encode_keys(&self.layout.keys, keys, &mut enc);
            return self.intern_packed(&enc[..n], keys);
        }
        let h = hash_keys(keys);
        let found = {
            let this = &*self;
            this.index
                .find(h, |&g| this.keys_equal(g as usize, keys))
                .copied()
        };
        let gid = match found {
            Some(g) => g,
            None => self.insert_group(keys, h, None),
        };
        self.mark_dirty(gid);
        gid
    }

    /// Interns an already packed key tuple (`keys` is used only to create a new group).
    fn intern_packed(&mut self, enc: &[u64], keys: &[KeyRef<'_>]) -> u32 {
        let h = hash_words(enc);
        let found = match &self.packed {
            Some(p) => {
                let stride = p.stride;
                let words = &p.words;
                self.index
                    .find(h, |&g| {
                        words_equal(&words[g as usize * stride..(g as usize + 1) * stride], enc)
                    })
                    .copied()
            }
            None => None,
        };
        let gid = match found {
            Some(g) => g,
            None => self.insert_group(keys, h, Some(enc)),
        };
        self.mark_dirty(gid);
        gid
    }

    fn insert_group(&mut self, keys: &[KeyRef<'_>], h: u64, enc: Option<&[u64]>) -> u32 {
        let g = self.len as u32;
        self.push_group(keys, h);
        if let (Some(p), Some(enc)) = (&mut self.packed, enc) {
            p.words.extend_from_slice(enc);
        }
        let hashes = &self.hashes;
        self.index.insert_unique(h, g, |&x| hashes[x as usize]);
        g
    }

    #[inline]
    fn mark_dirty(&mut self, gid: u32) {
        if !self.dirty[gid as usize] {
            self.dirty[gid as usize] = true;
            self.dirty_list.push(gid);
        }
    }

    fn push_group(&mut self, keys: &[KeyRef<'_>], h: u64) {
        for (col, k) in self.keys.iter_mut().zip(keys) {
            col.valid.push(!matches!(k, KeyRef::Null));
            match (&mut col.data, k) {
                (KeyData::I64(v), KeyRef::I64(x)) => v.push(*x),
                (KeyData::I64(v), _) => v.push(0),
                (KeyData::F64(v), KeyRef::F64(x)) => v.push(*x),
                (KeyData::F64(v), _) => v.push(0),
                (KeyData::I128(v), KeyRef::I128(x)) => v.push(*x),
                (KeyData::I128(v), _) => v.push(0),
                (KeyData::Str { offsets, bytes }, k) => {
                    if let KeyRef::Str(b) = k {
                        bytes.extend_from_slice(b);
                    }
                    offsets.push(bytes.len());
                }
            }
        }
        for a in &mut self.accs {
            match &mut a.value {
                ValueVec::None => {}
                ValueVec::I64(v) => v.push(0),
                ValueVec::F64(v) => v.push(0.0),
                ValueVec::I128(v) => v.push(0),
                ValueVec::Str(v) => v.push(None),
            }
            a.count.push(0);
            a.flags.push(0);
        }
        self.hashes.push(h);
        self.dirty.push(false);
        self.len += 1;
    }

    fn key_from_value<'a>(kind: KeyKind, v: &'a V) -> KeyRef<'a> {
        match (kind, v) {
            (_, V::Null) => KeyRef::Null,
            (KeyKind::I64, V::Int(x)) => KeyRef::I64(*x as i64),
            (KeyKind::I64, V::Bool(b)) => KeyRef::I64(*b as i64),
            (KeyKind::F64, V::Float(f)) => KeyRef::F64(normalize_float_bits(*f)),
            (KeyKind::I128, V::Int(x)) => KeyRef::I128(*x),
            (KeyKind::Str, V::Str(s)) => KeyRef::Str(s.as_bytes()),
            _ => KeyRef::Null,
        }
    }

    /// Interns a key tuple given as interpreter values.
    pub(crate) fn intern_values(&mut self, keys: &[V]) -> Result<u32> {
        let layout = self.layout.clone();
        let refs: Vec<KeyRef<'_>> = layout
            .keys
            .iter()
            .zip(keys)
            .map(|(k, v)| Self::key_from_value(k.kind, v))
            .collect();
        Ok(self.intern(&refs))
    }

    /// Interns `n` rows of key scratch written by a JIT kernel: per key column `words` u64 values
    /// per row (I64/F64: 1; I128: lo, hi; Str: ptr, len) and one validity byte per row.
    ///
    /// # Safety
    /// Every pointer must be valid for `n` rows, and string (ptr, len) pairs must point to live bytes.
    pub(crate) unsafe fn intern_chunk(
        &mut self,
        key_vals: &[*const u64],
        key_valid: &[*const u8],
        n: usize,
        gids: *mut u32,
    ) {
        let layout = self.layout.clone();
        let word_keys = layout
            .keys
            .iter()
            .all(|k| matches!(k.kind, KeyKind::I64 | KeyKind::F64));
        if self.packed.is_some() && word_keys {
            // SAFETY: forwarded caller contract.
            unsafe {
                match layout.keys.len() {
                    1 => return self.intern_words::<1, 2>(key_vals, key_valid, n, gids),
                    2 => return self.intern_words::<2, 3>(key_vals, key_valid, n, gids),
                    3 => return self.intern_words::<3, 4>(key_vals, key_valid, n, gids),
                    _ => {}
                }
            }
        }
        if layout.keys.len() == 1 && layout.keys[0].kind == KeyKind::Str {
            // SAFETY: forwarded caller contract.
            return unsafe { self.intern_one_string(key_vals[0], key_valid[0], n, gids) };
        }
        let mut refs: Vec<KeyRef<'_>> = Vec::with_capacity(layout.keys.len());
        if self.packed.is_some() {
            let mut enc = [0u64; MAX_PACKED_WORDS];
            for row in 0..n {
                let mut mask = 0u64;
                let mut w = 1;
                for (c, k) in layout.keys.iter().enumerate() {
                    // SAFETY: the caller guarantees n rows of scratch per key column (2 words per row for I128).
                    unsafe {
                        let valid = *key_valid[c].add(row) != 0;
                        match k.kind {
                            KeyKind::I128 => {
                                let (lo, hi) = if valid {
                                    (*key_vals[c].add(2 * row), *key_vals[c].add(2 * row + 1))
                                } else {
                                    (0, 0)
                                };
                                enc[w] = lo;
                                enc[w + 1] = hi;
                                w += 2;
                            }
                            kind => {
                                let raw = if valid { *key_vals[c].add(row) } else { 0 };
                                enc[w] = if valid && kind == KeyKind::F64 {
                                    normalize_float_bits(f64::from_bits(raw))
                                } else {
                                    raw
                                };
                                w += 1;
                            }
                        }
                        if !valid {
                            mask |= 1 << c;
                        }
                    }
                }
                enc[0] = mask;
                let h = hash_words(&enc[..w]);
                let found = match &self.packed {
                    Some(p) => {
                        let stride = p.stride;
                        let words = &p.words;
                        self.index
                            .find(h, |&g| {
                                words_equal(
                                    &words[g as usize * stride..(g as usize + 1) * stride],
                                    &enc[..w],
                                )
                            })
                            .copied()
                    }
                    None => None,
                };
                let g = match found {
                    Some(g) => {
                        self.mark_dirty(g);
                        g
                    }
                    None => {
                        refs.clear();
                        decode_keys(&layout.keys, &enc[..w], &mut refs);
                        self.intern_packed(&enc[..w], &refs)
                    }
                };
                // SAFETY: gids has room for n entries.
                unsafe { *gids.add(row) = g };
            }
            return;
        }
        for row in 0..n {
            refs.clear();
            for (c, k) in layout.keys.iter().enumerate() {
                // SAFETY: the caller guarantees n rows of scratch per key column.
                let valid = unsafe { *key_valid[c].add(row) } != 0;
                if !valid {
                    refs.push(KeyRef::Null);
                    continue;
                }
                // SAFETY: as above; Str/I128 keys use two words per row.
                let r = unsafe {
                    match k.kind {
                        KeyKind::I64 => KeyRef::I64(*key_vals[c].add(row) as i64),
                        KeyKind::F64 => {
                            KeyRef::F64(normalize_float_bits(f64::from_bits(*key_vals[c].add(row))))
                        }
                        KeyKind::I128 => {
                            let lo = *key_vals[c].add(2 * row);
                            let hi = *key_vals[c].add(2 * row + 1);
                            KeyRef::I128(((hi as u128) << 64 | lo as u128) as i128)
                        }
                        KeyKind::Str => {
                            let ptr = *key_vals[c].add(2 * row) as *const u8;
                            let len = *key_vals[c].add(2 * row + 1) as usize;
                            KeyRef::Str(if len == 0 {
                                &[]
                            } else {
                                std::slice::from_raw_parts(ptr, len)
                            })
                        }
                    }
                };
                refs.push(r);
            }
            let g = self.intern(&refs);
            // SAFETY: gids has room for n entries.
            unsafe { *gids.add(row) = g };
        }
    }

    /// [`Self::intern_chunk`] for `K` one-word keys (I64/F64), packed as `W = K + 1` words: the
    /// key count and width are compile-time constants, so encoding, hashing and comparing a key
    /// are straight-line code (the common shape: window start and one or two integer keys).
    ///
    /// # Safety
    /// As [`Self::intern_chunk`]; every key column is one word per row.
    #[inline(never)]
    unsafe fn intern_words<const K: usize, const W: usize>(
        &mut self,
        key_vals: &[*const u64],
        key_valid: &[*const u8],
        n: usize,
        gids: *mut u32,
    ) {
        debug_assert_eq!(W, K + 1);
        let mut float = [false; K];
        for (c, f) in float.iter_mut().enumerate() {
            *f = self.layout.keys[c].kind == KeyKind::F64;
        }
        let vals: [*const u64; K] = std::array::from_fn(|c| key_vals[c]);
        let valid: [*const u8; K] = std::array::from_fn(|c| key_valid[c]);
        // Two passes over the chunk: first every row's packed key and hash (straight-line code
        // with independent multiplies), then the probes, whose cache misses the CPU can then
        // overlap across rows instead of waiting on each row's hash first.
        let mut encs = std::mem::take(&mut self.scratch_words);
        let mut hashes = std::mem::take(&mut self.scratch_hashes);
        encs.clear();
        encs.resize(n * W, 0);
        hashes.clear();
        hashes.resize(n, 0);
        for row in 0..n {
            let mut enc = [0u64; W];
            for c in 0..K {
                // SAFETY: the caller guarantees n rows of one-word scratch per key column.
                let (ok, raw) = unsafe { (*valid[c].add(row) != 0, *vals[c].add(row)) };
                enc[c + 1] = match (ok, float[c]) {
                    (false, _) => 0,
                    (true, true) => normalize_float_bits(f64::from_bits(raw)),
                    (true, false) => raw,
                };
                enc[0] |= u64::from(!ok) << c;
            }
            hashes[row] = hash_words(&enc);
            encs[row * W..(row + 1) * W].copy_from_slice(&enc);
        }
        for row in 0..n {
            let h = hashes[row];
            let enc: [u64; W] = encs[row * W..(row + 1) * W]
                .try_into()
                .expect("W words per row");
            let found = {
                let words = &self.packed.as_ref().expect("packed layout").words;
                self.index
                    .find(h, |&g| {
                        let at = g as usize * W;
                        words[at..at + W] == enc
                    })
                    .copied()
            };
            let g = match found {
                Some(g) => g,
                None => {
                    // One-word keys decode without an allocation per new group.
                    let refs: [KeyRef<'static>; K] = std::array::from_fn(|c| {
                        if enc[0] & (1 << c) != 0 {
                            KeyRef::Null
                        } else if float[c] {
                            KeyRef::F64(enc[c + 1])
                        } else {
                            KeyRef::I64(enc[c + 1] as i64)
                        }
                    });
                    self.insert_group(&refs, h, Some(&enc))
                }
            };
            self.mark_dirty(g);
            // SAFETY: gids has room for n entries.
            unsafe { *gids.add(row) = g };
        }
        self.scratch_words = encs;
        self.scratch_hashes = hashes;
    }

    /// [`Self::intern_chunk`] for a single string key (word counts, group by a name): the key
    /// is hashed and compared straight against the columnar key store, without building a key
    /// tuple per row. Same hash and same groups as the general path.
    ///
    /// # Safety
    /// As [`Self::intern_chunk`]: `vals` holds n (ptr, len) pairs of live bytes, `valid` n bytes.
    #[inline(never)]
    unsafe fn intern_one_string(
        &mut self,
        vals: *const u64,
        valid: *const u8,
        n: usize,
        gids: *mut u32,
    ) {
        for row in 0..n {
            // SAFETY: the caller guarantees n rows of (ptr, len) scratch and validity bytes, and
            // that every (ptr, len) of a valid row points to live bytes.
            let key: Option<&[u8]> = unsafe {
                if *valid.add(row) == 0 {
                    None
                } else {
                    let ptr = *vals.add(2 * row) as *const u8;
                    let len = *vals.add(2 * row + 1) as usize;
                    Some(if len == 0 {
                        &[]
                    } else {
                        std::slice::from_raw_parts(ptr, len)
                    })
                }
            };
            let g = self.intern_one_string_key(key);
            // SAFETY: gids has room for n entries.
            unsafe { *gids.add(row) = g };
        }
    }

    /// Finds or creates the group of a single string key (`None`: NULL) and marks it dirty:
    /// hashed and compared straight against the columnar key store. Same hash and same
    /// groups as the general path.
    #[inline]
    fn intern_one_string_key(&mut self, key: Option<&[u8]>) -> u32 {
        let refs = [key.map_or(KeyRef::Null, KeyRef::Str)];
        let h = hash_keys(&refs);
        let found = {
            let column = &self.keys[0];
            let KeyData::Str { offsets, bytes } = &column.data else {
                unreachable!("a string key column stores strings")
            };
            self.index
                .find(h, |&g| {
                    let g = g as usize;
                    match key {
                        None => !column.valid[g],
                        Some(k) => {
                            column.valid[g]
                                && offsets[g + 1] - offsets[g] == k.len()
                                && short_bytes_equal(&bytes[offsets[g]..offsets[g + 1]], k)
                        }
                    }
                })
                .copied()
        };
        let g = match found {
            Some(g) => g,
            None => self.insert_group(&refs, h, None),
        };
        self.mark_dirty(g);
        g
    }

    /// Whether [`Self::count_string_keys`] applies: one string key, only count aggregates.
    pub fn counts_string_keys(&self) -> bool {
        self.layout.keys.len() == 1
            && self.layout.keys[0].kind == KeyKind::Str
            && self
                .layout
                .aggs
                .iter()
                .all(|a| matches!(a.func, AggFunc::CountStar | AggFunc::Count))
    }

    /// Adds one row per key to the state of a `GROUP BY <string> ... count(..)` aggregation,
    /// straight from the keys' bytes (no input batch): each key's group is found or created
    /// and every count aggregate grows by one. For keys that are never NULL (the words of a
    /// split), where `count(*)` and `count(key)` agree. A fused explode → count uses this.
    pub fn count_string_keys<'a>(
        &mut self,
        keys: impl IntoIterator<Item = &'a [u8]>,
    ) -> Result<()> {
        let mut counter = self.string_key_counter()?;
        for key in keys {
            counter.add(key);
        }
        Ok(())
    }

    /// A handle that adds keys one by one as [`Self::count_string_keys`] does (the layout is
    /// checked once, here).
    pub fn string_key_counter(&mut self) -> Result<StringKeyCounter<'_>> {
        if !self.counts_string_keys() {
            return Err(JitError::InvalidSpec(
                "counting string keys needs one string key and only count aggregates".into(),
            ));
        }
        Ok(StringKeyCounter { state: self })
    }

    /// Adds the groups of `other`, a state of the same layout that saw *later* rows of the same
    /// stream, as if this state had seen those rows itself after its own: counts and sums add,
    /// min and max keep the better value, `first` keeps this state's value when it has one,
    /// `last` takes `other`'s. Merged groups are marked dirty. Integer and decimal results are
    /// exactly those of one state seeing all rows; float sums and averages add in another order
    /// (so may differ in the last bits), which is why the engine merges only exact aggregates.
    /// `other` must not hold weighted (retracted) rows.
    pub fn merge_from(&mut self, other: &GroupState) -> Result<()> {
        self.check_layout(&other.layout)?;
        let key_count = self.layout.keys.len();
        let mut keys: Vec<KeyRef<'_>> = Vec::with_capacity(key_count);
        for g in 0..other.len {
            keys.clear();
            keys.extend((0..key_count).map(|c| other.key_ref(c, g)));
            let m = self.intern(&keys) as usize;
            for a in 0..self.accs.len() {
                let src = &other.accs[a];
                match self.layout.aggs[a].func {
                    AggFunc::CountStar | AggFunc::Count => {
                        let dst = &mut self.accs[a];
                        dst.count[m] = dst.count[m].wrapping_add(src.count[g]);
                    }
                    AggFunc::Sum | AggFunc::Avg => {
                        if src.count[g] == 0 {
                            continue;
                        }
                        let dst = &mut self.accs[a];
                        dst.count[m] = dst.count[m].wrapping_add(src.count[g]);
                        match (&mut dst.value, &src.value) {
                            (ValueVec::I64(d), ValueVec::I64(v)) => d[m] = d[m].wrapping_add(v[g]),
                            (ValueVec::F64(d), ValueVec::F64(v)) => d[m] += v[g],
                            (ValueVec::I128(d), ValueVec::I128(v)) => {
                                d[m] = d[m].wrapping_add(v[g])
                            }
                            _ => {}
                        }
                    }
                    AggFunc::Min | AggFunc::Max | AggFunc::First | AggFunc::Last => {
                        if src.flags[g] & 1 == 0 {
                            continue;
                        }
                        // Bit 1 clear: a first/last whose value is NULL.
                        let v = if src.flags[g] & 2 != 0 {
                            value_at(&src.value, g)
                        } else {
                            V::Null
                        };
                        self.update_value(a, m as u32, &v, 1);
                    }
                }
            }
        }
        Ok(())
    }

    /// Whether [`Self::merge_from`] gives exactly the state one state would reach: true unless
    /// some sum or average accumulates floats (their merged sums add in another order).
    pub fn merge_is_exact(&self) -> bool {
        self.layout
            .aggs
            .iter()
            .all(|a| !matches!(a.func, AggFunc::Sum | AggFunc::Avg) || a.value != ValueKind::F64)
    }

    /// Empties the state and keeps its allocations (a per-batch partial state is reused).
    pub fn clear(&mut self) {
        for k in &mut self.keys {
            k.valid.clear();
            match &mut k.data {
                KeyData::I64(v) => v.clear(),
                KeyData::F64(v) => v.clear(),
                KeyData::I128(v) => v.clear(),
                KeyData::Str { offsets, bytes } => {
                    offsets.truncate(1);
                    bytes.clear();
                }
            }
        }
        if let Some(p) = &mut self.packed {
            p.words.clear();
        }
        for a in &mut self.accs {
            match &mut a.value {
                ValueVec::None => {}
                ValueVec::I64(v) => v.clear(),
                ValueVec::F64(v) => v.clear(),
                ValueVec::I128(v) => v.clear(),
                ValueVec::Str(v) => v.clear(),
            }
            a.count.clear();
            a.flags.clear();
        }
        self.index.clear();
        self.hashes.clear();
        self.dirty.clear();
        self.dirty_list.clear();
        self.len = 0;
    }

    /// Applies one argument value with a weight to an aggregate (interpreter path).
    pub(crate) fn update_value(&mut self, agg: usize, gid: u32, v: &V, w: i64) {
        let g = gid as usize;
        let desc = &self.layout.aggs[agg];
        let func = desc.func;
        let unsigned = desc.arg_type == DataType::UInt64;
        let arg_type = desc.arg_type.clone();
        let a = &mut self.accs[agg];
        match func {
            AggFunc::CountStar => a.count[g] = a.count[g].wrapping_add(w),
            AggFunc::Count => {
                if !v.is_null() {
                    a.count[g] = a.count[g].wrapping_add(w)
                }
            }
            AggFunc::Sum | AggFunc::Avg => {
                if v.is_null() {
                    return;
                }
                a.count[g] = a.count[g].wrapping_add(w);
                match (&mut a.value, v) {
                    (ValueVec::I64(s), V::Int(x)) => {
                        s[g] = s[g].wrapping_add((*x as i64).wrapping_mul(w))
                    }
                    (ValueVec::F64(s), V::Float(x)) => s[g] += (w as f64) * x,
                    (ValueVec::I128(s), V::Int(x)) => {
                        s[g] = s[g].wrapping_add(x.wrapping_mul(w as i128))
                    }
                    _ => {}
                }
            }
            AggFunc::Min | AggFunc::Max => {
                if v.is_null() {
                    return;
                }
                // Booleans are stored (and compared) as 0/1 integers.
                let as_int;
                let v = match v {
                    V::Bool(b) => {
                        as_int = V::Int(*b as i128);
                        &as_int
                    }
                    other => other,
                };
                let set = a.flags[g] & 1 != 0;
                let current = if set {
                    Some(value_at(&a.value, g))
                } else {
                    None
                };
                let better = match current {
                    None => true,
                    Some(cur) => {
                        let o = if unsigned {
                            let (V::Int(x), V::Int(c)) = (v, &cur) else {
                                return;
                            };
                            (*x as u64).cmp(&(*c as u64))
                        } else {
                            compare(v, &arg_type, &cur, &arg_type)
                        };
                        if func == AggFunc::Min {
                            o.is_lt()
                        } else {
                            o.is_gt()
                        }
                    }
                };
                if better {
                    set_value(&mut a.value, g, v);
                    a.flags[g] = 3;
                }
            }
            AggFunc::First | AggFunc::Last => {
                if func == AggFunc::First && a.flags[g] & 1 != 0 {
                    return;
                }
                set_value(&mut a.value, g, v);
                a.flags[g] = 1 | if v.is_null() { 0 } else { 2 };
            }
        }
    }

    /// Writes the raw pointers of every accumulator vector into `out`, 3 per aggregate:
    /// value (null for count and strings), count, flags.
    pub(crate) fn acc_pointers(&mut self, out: &mut [*mut u8]) {
        for (i, a) in self.accs.iter_mut().enumerate() {
            out[3 * i] = match &mut a.value {
                ValueVec::None | ValueVec::Str(_) => std::ptr::null_mut(),
                ValueVec::I64(v) => v.as_mut_ptr() as *mut u8,
                ValueVec::F64(v) => v.as_mut_ptr() as *mut u8,
                ValueVec::I128(v) => v.as_mut_ptr() as *mut u8,
            };
            out[3 * i + 1] = a.count.as_mut_ptr() as *mut u8;
            out[3 * i + 2] = a.flags.as_mut_ptr();
        }
    }

    /// Group ids updated since the last call, ascending.
    pub fn take_dirty(&mut self) -> Vec<u32> {
        let mut out = std::mem::take(&mut self.dirty_list);
        for g in &out {
            self.dirty[*g as usize] = false;
        }
        out.sort_unstable();
        out
    }

    /// Key column `i` for every group (e.g. to find windows below the watermark).
    pub fn key_column(&self, i: usize) -> ArrayRef {
        let gids: Vec<u32> = (0..self.len as u32).collect();
        self.key_array(i, &gids)
            .unwrap_or_else(|_| arrow::array::new_null_array(&DataType::Null, self.len))
    }

    fn key_value(&self, col: usize, gid: usize) -> V {
        let t = &self.layout.keys[col].data_type;
        match self.key_ref(col, gid) {
            KeyRef::Null => V::Null,
            KeyRef::I64(x) if *t == DataType::Boolean => V::Bool(x != 0),
            KeyRef::I64(x) if *t == DataType::UInt64 => V::Int(x as u64 as i128),
            KeyRef::I64(x) => V::Int(x as i128),
            KeyRef::F64(b) => V::Float(f64::from_bits(b)),
            KeyRef::I128(x) => V::Int(x),
            KeyRef::Str(b) => V::Str(Arc::from(String::from_utf8_lossy(b).as_ref())),
        }
    }

    fn key_array(&self, col: usize, gids: &[u32]) -> Result<ArrayRef> {
        let vals: Vec<V> = gids
            .iter()
            .map(|g| self.key_value(col, *g as usize))
            .collect();
        build_array(&self.layout.keys[col].data_type, &vals)
    }

    fn check_gids(&self, gids: &[u32]) -> Result<()> {
        match gids.iter().find(|g| **g as usize >= self.len) {
            Some(g) => Err(JitError::State(format!(
                "group id {g} out of range ({} groups)",
                self.len
            ))),
            None => Ok(()),
        }
    }

    /// Keys and finalised aggregate values of the given groups, named as in the spec.
    pub fn output(&self, gids: &[u32]) -> Result<RecordBatch> {
        self.check_gids(gids)?;
        let mut cols = vec![];
        for c in 0..self.keys.len() {
            cols.push(self.key_array(c, gids)?);
        }
        for (i, desc) in self.layout.aggs.iter().enumerate() {
            let a = &self.accs[i];
            let vals: Vec<V> = gids
                .iter()
                .map(|g| finalize(desc, a, *g as usize))
                .collect();
            cols.push(build_array(&desc.out_type, &vals)?);
        }
        Ok(RecordBatch::try_new_with_options(
            self.layout.output_schema.clone(),
            cols,
            &arrow::array::RecordBatchOptions::new().with_row_count(Some(gids.len())),
        )?)
    }

    /// [`GroupState::output`] of every group.
    pub fn output_all(&self) -> Result<RecordBatch> {
        let gids: Vec<u32> = (0..self.len as u32).collect();
        self.output(&gids)
    }

    /// Keys and raw accumulators of every group (lossless; see [`GroupState::state_schema`]).
    pub fn to_record_batch(&self) -> Result<RecordBatch> {
        let gids: Vec<u32> = (0..self.len as u32).collect();
        self.state_rows(&gids)
    }

    /// The checkpoint form ([`Self::to_record_batch`]'s schema) of the groups `gids` only, in
    /// that order: what a state store delta needs, in time proportional to `gids`, not to the
    /// state.
    pub fn state_rows(&self, gids: &[u32]) -> Result<RecordBatch> {
        self.check_gids(gids)?;
        let pick = |g: &u32| *g as usize;
        let mut cols = vec![];
        for c in 0..self.keys.len() {
            cols.push(self.key_array(c, gids)?);
        }
        for (desc, a) in self.layout.aggs.iter().zip(&self.accs) {
            if let Some(t) = value_state_type(desc) {
                let col: ArrayRef = match &a.value {
                    ValueVec::I64(v) => Arc::new(Int64Array::from_iter_values(
                        gids.iter().map(|g| v[pick(g)]),
                    )),
                    ValueVec::F64(v) => {
                        Arc::new(Float64Array::from_iter_values(gids.iter().map(|g| {
                            let f = v[pick(g)];
                            if f.is_nan() { f64::NAN } else { f }
                        })))
                    }
                    ValueVec::I128(v) => Arc::new(
                        Decimal128Array::from_iter_values(gids.iter().map(|g| v[pick(g)]))
                            .with_data_type(t),
                    ),
                    ValueVec::Str(v) => Arc::new(
                        gids.iter()
                            .map(|g| v[pick(g)].as_deref())
                            .collect::<StringArray>(),
                    ),
                    ValueVec::None => continue,
                };
                cols.push(col);
            }
            cols.push(Arc::new(Int64Array::from_iter_values(
                gids.iter().map(|g| a.count[pick(g)]),
            )));
            cols.push(Arc::new(UInt8Array::from_iter_values(
                gids.iter().map(|g| a.flags[pick(g)]),
            )));
        }
        Ok(RecordBatch::try_new_with_options(
            self.layout.state_schema.clone(),
            cols,
            &arrow::array::RecordBatchOptions::new().with_row_count(Some(gids.len())),
        )?)
    }

    /// Bytes held by the state's keys, accumulators and index (an estimate, for progress
    /// metrics), computed without materialising anything.
    pub fn memory_bytes(&self) -> usize {
        let keys: usize = self
            .keys
            .iter()
            .map(|k| {
                k.valid.capacity()
                    + match &k.data {
                        KeyData::I64(v) => v.capacity() * 8,
                        KeyData::F64(v) => v.capacity() * 8,
                        KeyData::I128(v) => v.capacity() * 16,
                        KeyData::Str { offsets, bytes } => {
                            offsets.capacity() * 8 + bytes.capacity()
                        }
                    }
            })
            .sum();
        let accs: usize = self
            .accs
            .iter()
            .map(|a| {
                a.count.capacity() * 8
                    + a.flags.capacity()
                    + match &a.value {
                        ValueVec::None => 0,
                        ValueVec::I64(v) => v.capacity() * 8,
                        ValueVec::F64(v) => v.capacity() * 8,
                        ValueVec::I128(v) => v.capacity() * 16,
                        ValueVec::Str(v) => {
                            v.capacity() * 16 + v.iter().flatten().map(|s| s.len()).sum::<usize>()
                        }
                    }
            })
            .sum();
        let packed = self.packed.as_ref().map_or(0, |p| p.words.capacity() * 8);
        let index = self.index.capacity() * 5 + self.hashes.capacity() * 8;
        keys + accs + packed + index + self.dirty.capacity() + self.dirty_list.capacity() * 4
    }

    /// Rebuilds a state (and its hash index) from [`GroupState::to_record_batch`] output.
    pub(crate) fn from_batch(layout: Arc<AggLayout>, batch: &RecordBatch) -> Result<GroupState> {
        if batch.schema().fields() != layout.state_schema.fields() {
            return Err(JitError::State(format!(
                "checkpointed state has schema {:?} but this kernel expects {:?}",
                batch
                    .schema()
                    .fields()
                    .iter()
                    .map(|f| format!("{}: {}", f.name(), f.data_type()))
                    .collect::<Vec<_>>(),
                layout
                    .state_schema
                    .fields()
                    .iter()
                    .map(|f| format!("{}: {}", f.name(), f.data_type()))
                    .collect::<Vec<_>>()
            )));
        }
        let mut st = GroupState::new(layout.clone());
        let nkeys = layout.keys.len();
        let mut key_vals: Vec<V> = Vec::with_capacity(nkeys);
        for row in 0..batch.num_rows() {
            key_vals.clear();
            for c in 0..nkeys {
                key_vals.push(read_value(batch.column(c).as_ref(), row)?);
            }
            let before = st.len;
            st.intern_values(&key_vals)?;
            if st.len == before {
                return Err(JitError::State(format!(
                    "duplicate group key at state row {row}"
                )));
            }
        }
        st.take_dirty();
        let mut col = nkeys;
        for (i, desc) in layout.aggs.iter().enumerate() {
            let a = &mut st.accs[i];
            if desc.value != ValueKind::None {
                let arr = batch.column(col);
                match &mut a.value {
                    ValueVec::I64(v) => v.copy_from_slice(arr.as_primitive::<Int64Type>().values()),
                    ValueVec::F64(v) => {
                        v.copy_from_slice(arr.as_primitive::<Float64Type>().values())
                    }
                    ValueVec::I128(v) => {
                        v.copy_from_slice(arr.as_primitive::<Decimal128Type>().values())
                    }
                    ValueVec::Str(v) => {
                        let s = arr.as_string::<i32>();
                        for (j, slot) in v.iter_mut().enumerate() {
                            *slot = if s.is_null(j) {
                                None
                            } else {
                                Some(Arc::from(s.value(j)))
                            };
                        }
                    }
                    ValueVec::None => {}
                }
                col += 1;
            }
            a.count
                .copy_from_slice(batch.column(col).as_primitive::<Int64Type>().values());
            a.flags.copy_from_slice(
                batch
                    .column(col + 1)
                    .as_primitive::<arrow::datatypes::UInt8Type>()
                    .values(),
            );
            col += 2;
        }
        Ok(st)
    }

    /// Evicts groups; the remaining groups are renumbered (in their previous order).
    pub fn remove(&mut self, gids: &[u32]) -> Result<()> {
        self.check_gids(gids)?;
        let mut drop = vec![false; self.len];
        for g in gids {
            drop[*g as usize] = true;
        }
        let keep: Vec<usize> = (0..self.len).filter(|g| !drop[*g]).collect();
        let dirty_kept: Vec<bool> = keep.iter().map(|g| self.dirty[*g]).collect();
        for col in &mut self.keys {
            col.valid = keep.iter().map(|g| col.valid[*g]).collect();
            col.data = match &col.data {
                KeyData::I64(v) => KeyData::I64(keep.iter().map(|g| v[*g]).collect()),
                KeyData::F64(v) => KeyData::F64(keep.iter().map(|g| v[*g]).collect()),
                KeyData::I128(v) => KeyData::I128(keep.iter().map(|g| v[*g]).collect()),
                KeyData::Str { offsets, bytes } => {
                    let mut o = vec![0];
                    let mut b = vec![];
                    for g in &keep {
                        b.extend_from_slice(&bytes[offsets[*g]..offsets[*g + 1]]);
                        o.push(b.len());
                    }
                    KeyData::Str {
                        offsets: o,
                        bytes: b,
                    }
                }
            };
        }
        for a in &mut self.accs {
            a.value = match &a.value {
                ValueVec::None => ValueVec::None,
                ValueVec::I64(v) => ValueVec::I64(keep.iter().map(|g| v[*g]).collect()),
                ValueVec::F64(v) => ValueVec::F64(keep.iter().map(|g| v[*g]).collect()),
                ValueVec::I128(v) => ValueVec::I128(keep.iter().map(|g| v[*g]).collect()),
                ValueVec::Str(v) => ValueVec::Str(keep.iter().map(|g| v[*g].clone()).collect()),
            };
            a.count = keep.iter().map(|g| a.count[*g]).collect();
            a.flags = keep.iter().map(|g| a.flags[*g]).collect();
        }
        if let Some(p) = &mut self.packed {
            let stride = p.stride;
            p.words = keep
                .iter()
                .flat_map(|g| p.words[g * stride..(g + 1) * stride].iter().copied())
                .collect();
        }
        self.hashes = keep.iter().map(|g| self.hashes[*g]).collect();
        self.len = keep.len();
        self.dirty = dirty_kept;
        self.dirty_list = (0..self.len as u32)
            .filter(|g| self.dirty[*g as usize])
            .collect();
        self.index = HashTable::with_capacity(self.len);
        for g in 0..self.len {
            let hashes = &self.hashes;
            self.index
                .insert_unique(hashes[g], g as u32, |&x| hashes[x as usize]);
        }
        Ok(())
    }
}

fn value_at(v: &ValueVec, g: usize) -> V {
    match v {
        ValueVec::None => V::Null,
        ValueVec::I64(x) => V::Int(x[g] as i128),
        ValueVec::F64(x) => V::Float(x[g]),
        ValueVec::I128(x) => V::Int(x[g]),
        ValueVec::Str(x) => x[g].clone().map(V::Str).unwrap_or(V::Null),
    }
}

fn set_value(v: &mut ValueVec, g: usize, x: &V) {
    match (v, x) {
        (ValueVec::I64(s), V::Int(i)) => s[g] = *i as i64,
        (ValueVec::I64(s), V::Bool(b)) => s[g] = *b as i64,
        (ValueVec::F64(s), V::Float(f)) => s[g] = *f,
        (ValueVec::I128(s), V::Int(i)) => s[g] = *i,
        (ValueVec::Str(s), V::Str(t)) => s[g] = Some(t.clone()),
        (ValueVec::Str(s), _) => s[g] = None,
        (ValueVec::I64(s), _) => s[g] = 0,
        (ValueVec::F64(s), _) => s[g] = 0.0,
        (ValueVec::I128(s), _) => s[g] = 0,
        (ValueVec::None, _) => {}
    }
}

fn finalize(desc: &AggDesc, a: &AccColumn, g: usize) -> V {
    match desc.func {
        AggFunc::CountStar | AggFunc::Count => V::Int(a.count[g] as i128),
        AggFunc::Sum => {
            if a.count[g] <= 0 {
                return V::Null;
            }
            match (&a.value, &desc.out_type) {
                (ValueVec::I128(s), DataType::Decimal128(p, _)) => {
                    if fits_precision(s[g], *p) {
                        V::Int(s[g])
                    } else {
                        V::Null
                    }
                }
                (v, _) => value_at(v, g),
            }
        }
        AggFunc::Avg => {
            let n = a.count[g];
            if n <= 0 {
                return V::Null;
            }
            match (&a.value, &desc.arg_type, &desc.out_type) {
                (ValueVec::I64(s), _, _) => V::Float(s[g] as f64 / n as f64),
                (ValueVec::F64(s), _, _) => V::Float(s[g] / n as f64),
                (ValueVec::I128(s), DataType::Decimal128(_, s1), DataType::Decimal128(p, s2)) => {
                    let num = pow10((*s2 - *s1) as u32).and_then(|m| s[g].checked_mul(m));
                    match num {
                        Some(num) => {
                            let d = n as i128;
                            let q = num / d;
                            let r = num % d;
                            let q = if r.unsigned_abs() * 2 >= d.unsigned_abs() {
                                q + num.signum()
                            } else {
                                q
                            };
                            if fits_precision(q, *p) {
                                V::Int(q)
                            } else {
                                V::Null
                            }
                        }
                        None => V::Null,
                    }
                }
                _ => V::Null,
            }
        }
        AggFunc::Min | AggFunc::Max | AggFunc::First | AggFunc::Last => {
            if a.flags[g] & 2 == 0 {
                return V::Null;
            }
            let v = value_at(&a.value, g);
            match (&desc.arg_type, v) {
                (DataType::Boolean, V::Int(x)) => V::Bool(x != 0),
                (DataType::UInt64, V::Int(x)) => V::Int(x as i64 as u64 as i128),
                (_, v) => v,
            }
        }
    }
}

impl PartialEq for GroupState {
    /// Same groups with the same keys and accumulators in the same order (floats by bits).
    fn eq(&self, other: &Self) -> bool {
        match (self.to_record_batch(), other.to_record_batch()) {
            (Ok(a), Ok(b)) => a == b,
            _ => false,
        }
    }
}
