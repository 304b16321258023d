//! `approx_count_distinct(x)` of a streaming aggregation: per group, a HyperLogLog sketch
//! (exact while a group has few distinct values), kept beside the aggregation kernel's state.
//!
//! Owns the sketch, the side kernel that computes each row's grouping keys and arguments, the
//! map from a group's key (arrow-row bytes) to its sketches, and their persistence as Arrow
//! (keys + one Binary column per sketch) in a state store of their own. It does not decide what
//! to emit or evict: the aggregation operator asks it for the estimates of the groups it emits
//! and tells it which groups it evicts.

use std::collections::{HashMap, HashSet};
use std::path::Path;
use std::sync::Arc;

use arrow::array::{Array, ArrayRef, BinaryArray, Int64Array, RecordBatch};
use arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use arrow::row::{RowConverter, SortField};
use weir_jit::CompiledKernel;

use super::lower::KernelInputs;
use crate::error::{Error, Result};
use crate::state::{StateStore, StateStoreOptions};

/// Registers: 2^9 = 512 (relative standard deviation ≈ 1.04/√512 ≈ 4.6%, Spark's default 5%).
const P: u32 = 9;
const REGISTERS: usize = 1 << P;
/// Distinct values kept exactly before switching to registers.
const EXACT_LIMIT: usize = 64;

/// One group's sketch of one argument.
#[derive(Clone, Debug, Default, PartialEq)]
pub(crate) struct Sketch {
    /// Hashes of the values seen, while there are few.
    exact: HashSet<u64>,
    /// HyperLogLog registers once `exact` outgrew its limit.
    registers: Option<Vec<u8>>,
}

impl Sketch {
    fn add(&mut self, hash: u64) {
        if let Some(regs) = &mut self.registers {
            let index = (hash >> (64 - P)) as usize;
            let rank = ((hash << P) | (1 << (P - 1))).leading_zeros() as u8 + 1;
            regs[index] = regs[index].max(rank);
            return;
        }
        self.exact.insert(hash);
        if self.exact.len() > EXACT_LIMIT {
            let mut regs = vec![0u8; REGISTERS];
            for h in self.exact.drain() {
                let index = (h >> (64 - P)) as usize;
                let rank = ((h << P) | (1 << (P - 1))).leading_zeros() as u8 + 1;
                regs[index] = regs[index].max(rank);
            }
            self.registers = Some(regs);
        }
    }

    /// The estimated number of distinct values (exact below the switch-over).
    fn estimate(&self) -> i64 {
        let Some(regs) = &self.registers else {
            return self.exact.len() as i64;
        };
        let m = REGISTERS as f64;
        let sum: f64 = regs.iter().map(|&r| 2f64.powi(-i32::from(r))).sum();
        let raw = 0.7213 / (1.0 + 1.079 / m) * m * m / sum;
        let zeros = regs.iter().filter(|&&r| r == 0).count();
        let estimate = if raw <= 2.5 * m && zeros > 0 {
            m * (m / zeros as f64).ln()
        } else {
            raw
        };
        estimate.round() as i64
    }

    /// Serialised form: tag 0 + sorted hashes, or tag 1 + registers.
    fn to_bytes(&self) -> Vec<u8> {
        match &self.registers {
            Some(regs) => {
                let mut out = Vec::with_capacity(1 + REGISTERS);
                out.push(1);
                out.extend_from_slice(regs);
                out
            }
            None => {
                let mut hashes: Vec<u64> = self.exact.iter().copied().collect();
                hashes.sort_unstable();
                let mut out = Vec::with_capacity(1 + 8 * hashes.len());
                out.push(0);
                for h in hashes {
                    out.extend_from_slice(&h.to_le_bytes());
                }
                out
            }
        }
    }

    fn from_bytes(bytes: &[u8]) -> Option<Sketch> {
        match bytes.split_first()? {
            (1, regs) if regs.len() == REGISTERS => Some(Sketch {
                exact: HashSet::new(),
                registers: Some(regs.to_vec()),
            }),
            (0, hashes) if hashes.len() % 8 == 0 => Some(Sketch {
                exact: hashes
                    .chunks_exact(8)
                    .map(|c| u64::from_le_bytes(c.try_into().unwrap_or([0; 8])))
                    .collect(),
                registers: None,
            }),
            _ => None,
        }
    }
}

/// A fixed-seed 64-bit hash of a value's arrow-row bytes (the same in every process).
fn hash_bytes(bytes: &[u8]) -> u64 {
    let mut h: u64 = 0x9e37_79b9_7f4a_7c15 ^ bytes.len() as u64;
    for chunk in bytes.chunks(8) {
        let mut w = [0u8; 8];
        w[..chunk.len()].copy_from_slice(chunk);
        let full = u128::from(h ^ u64::from_le_bytes(w)) * 0xbf58_476d_1ce4_e5b9u128;
        h = (full as u64) ^ ((full >> 64) as u64);
    }
    // Final avalanche so the top bits (the register index) are well mixed.
    h ^= h >> 33;
    h = h.wrapping_mul(0xff51_afd7_ed55_8ccd);
    h ^= h >> 33;
    h
}

/// The distinct-count aggregates of one aggregation.
pub(crate) struct DistinctSketches {
    pub op_id: usize,
    /// Computes (keys..., arguments...) per input row, with the aggregation's filters.
    pub kernel: Arc<CompiledKernel>,
    pub inputs: KernelInputs,
    pub kernel_schema: SchemaRef,
    pub key_count: usize,
    /// Output positions (among the aggregates) of the distinct counts, in argument order.
    pub positions: Vec<usize>,
    key_rows: RowConverter,
    value_rows: Vec<RowConverter>,
    sketches: HashMap<Box<[u8]>, Vec<Sketch>>,
    touched: HashSet<Box<[u8]>>,
    removed: Vec<Box<[u8]>>,
    store: Option<StateStore>,
    state_schema: SchemaRef,
}

impl DistinctSketches {
    pub fn new(
        op_id: usize,
        kernel: Arc<CompiledKernel>,
        inputs: KernelInputs,
        kernel_schema: SchemaRef,
        key_count: usize,
        positions: Vec<usize>,
    ) -> Result<DistinctSketches> {
        let out = kernel.output_schema();
        let key_fields: Vec<Field> = out.fields()[..key_count]
            .iter()
            .map(|f| f.as_ref().clone().with_nullable(true))
            .collect();
        let key_rows = RowConverter::new(
            key_fields
                .iter()
                .map(|f| SortField::new(f.data_type().clone()))
                .collect(),
        )?;
        let value_rows = out.fields()[key_count..]
            .iter()
            .map(|f| RowConverter::new(vec![SortField::new(f.data_type().clone())]))
            .collect::<std::result::Result<Vec<_>, _>>()?;
        let mut state_fields = key_fields;
        for i in 0..positions.len() {
            state_fields.push(Field::new(format!("__sketch{i}"), DataType::Binary, true));
        }
        Ok(DistinctSketches {
            op_id,
            kernel,
            inputs,
            kernel_schema,
            key_count,
            positions,
            key_rows,
            value_rows,
            sketches: HashMap::new(),
            touched: HashSet::new(),
            removed: Vec::new(),
            store: None,
            state_schema: Arc::new(Schema::new(state_fields)),
        })
    }

    /// Adds one input batch (already past late-row dropping and window expansion).
    pub fn update(&mut self, batch: &RecordBatch, ts_us: i64) -> Result<()> {
        let input = self.inputs.project(batch, &self.kernel_schema, ts_us)?;
        let rows = self.kernel.run(&input)?;
        let keys = self
            .key_rows
            .convert_columns(&rows.columns()[..self.key_count])?;
        let mut values = Vec::with_capacity(self.positions.len());
        for (j, conv) in self.value_rows.iter().enumerate() {
            let col = rows.column(self.key_count + j);
            values.push((
                conv.convert_columns(std::slice::from_ref(col))?,
                col.clone(),
            ));
        }
        let n = self.positions.len();
        for (r, key) in keys.iter().enumerate() {
            let key: Box<[u8]> = key.as_ref().into();
            let sketches = self
                .sketches
                .entry(key.clone())
                .or_insert_with(|| vec![Sketch::default(); n]);
            for (j, (encoded, col)) in values.iter().enumerate() {
                if col.is_valid(r) {
                    sketches[j].add(hash_bytes(encoded.row(r).as_ref()));
                }
            }
            self.touched.insert(key);
        }
        Ok(())
    }

    /// Key columns as the aggregation state holds them, in this side's key types.
    fn aligned(&self, key_columns: &[ArrayRef]) -> Result<Vec<ArrayRef>> {
        key_columns
            .iter()
            .zip(self.state_schema.fields())
            .map(|(c, f)| {
                if c.data_type() == f.data_type() {
                    Ok(c.clone())
                } else {
                    Ok(arrow::compute::cast(c, f.data_type())?)
                }
            })
            .collect()
    }

    /// The estimates for groups given by their key columns (as the aggregation emits them):
    /// one Int64 column per distinct-count aggregate (0 for a group without a value).
    pub fn estimates(&self, key_columns: &[ArrayRef]) -> Result<Vec<ArrayRef>> {
        let keys = self.key_rows.convert_columns(&self.aligned(key_columns)?)?;
        let mut out: Vec<Vec<i64>> =
            vec![Vec::with_capacity(keys.num_rows()); self.positions.len()];
        for key in keys.iter() {
            let sketches = self.sketches.get(key.as_ref());
            for (j, col) in out.iter_mut().enumerate() {
                col.push(sketches.map_or(0, |s| s[j].estimate()));
            }
        }
        Ok(out
            .into_iter()
            .map(|v| Arc::new(Int64Array::from(v)) as ArrayRef)
            .collect())
    }

    /// Forgets evicted groups, given their key columns.
    pub fn remove(&mut self, key_columns: &[ArrayRef]) -> Result<()> {
        if key_columns.first().is_none_or(|c| c.is_empty()) {
            return Ok(());
        }
        let keys = self.key_rows.convert_columns(&self.aligned(key_columns)?)?;
        for key in keys.iter() {
            let key: Box<[u8]> = key.as_ref().into();
            self.touched.remove(&key);
            if self.sketches.remove(&key).is_some() {
                self.removed.push(key);
            }
        }
        Ok(())
    }

    fn batch_of(&self, keys: &[Box<[u8]>], with_sketches: bool) -> Result<RecordBatch> {
        let parser = self.key_rows.parser();
        let rows: Vec<_> = keys.iter().map(|k| parser.parse(k)).collect();
        let mut columns = self.key_rows.convert_rows(rows)?;
        for j in 0..self.positions.len() {
            let values: Vec<Option<Vec<u8>>> = keys
                .iter()
                .map(|k| {
                    with_sketches
                        .then(|| self.sketches.get(k).map(|s| s[j].to_bytes()))
                        .flatten()
                })
                .collect();
            columns.push(Arc::new(BinaryArray::from_iter(values)));
        }
        Ok(RecordBatch::try_new(self.state_schema.clone(), columns)?)
    }

    fn open_store(&mut self, state_root: &Path, fsync: bool) -> Result<&mut StateStore> {
        if self.store.is_none() {
            // Shard 1000 of the operator's state directory holds the sketches.
            self.store = Some(StateStore::open(
                state_root,
                self.op_id,
                1000,
                self.state_schema.clone(),
                self.key_count,
                StateStoreOptions {
                    fsync,
                    ..Default::default()
                },
            )?);
        }
        self.store
            .as_mut()
            .ok_or_else(|| Error::Internal("sketch store missing".into()))
    }

    /// Commits the batch's changed and removed sketches as `version`.
    pub fn commit(&mut self, state_root: &Path, version: u64, fsync: bool) -> Result<()> {
        let touched: Vec<Box<[u8]>> = self.touched.drain().collect();
        let upserts = self.batch_of(&touched, true)?;
        let removed = std::mem::take(&mut self.removed);
        let removals = self
            .batch_of(&removed, false)?
            .project(&(0..self.key_count).collect::<Vec<_>>())?;
        let full = if version.is_multiple_of(10) {
            let all: Vec<Box<[u8]>> = self.sketches.keys().cloned().collect();
            Some(self.batch_of(&all, true)?)
        } else {
            None
        };
        let store = self.open_store(state_root, fsync)?;
        store.commit(version, &upserts, &removals)?;
        if let Some(full) = full {
            store.maybe_snapshot(version, &full)?;
            store.purge()?;
        }
        Ok(())
    }

    /// Loads the sketches as of `version`.
    pub fn restore(&mut self, state_root: &Path, version: u64, fsync: bool) -> Result<()> {
        let batch = self.open_store(state_root, fsync)?.load(version)?;
        let keys = self
            .key_rows
            .convert_columns(&batch.columns()[..self.key_count])?;
        self.sketches.clear();
        for (r, key) in keys.iter().enumerate() {
            let mut sketches = Vec::with_capacity(self.positions.len());
            for j in 0..self.positions.len() {
                let col = batch
                    .column(self.key_count + j)
                    .as_any()
                    .downcast_ref::<BinaryArray>()
                    .ok_or_else(|| Error::Internal("sketch column".into()))?;
                let sketch = if col.is_valid(r) {
                    Sketch::from_bytes(col.value(r)).ok_or_else(|| {
                        Error::state(state_root, "an approx_count_distinct sketch is damaged; restore the checkpoint or start over")
                    })?
                } else {
                    Sketch::default()
                };
                sketches.push(sketch);
            }
            self.sketches.insert(key.as_ref().into(), sketches);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sketch_is_exact_for_few_values_and_close_for_many() {
        let mut s = Sketch::default();
        for i in 0..50u64 {
            s.add(hash_bytes(&i.to_le_bytes()));
            s.add(hash_bytes(&i.to_le_bytes()));
        }
        assert_eq!(s.estimate(), 50);
        for n in [1_000u64, 20_000, 200_000] {
            let mut s = Sketch::default();
            for i in 0..n {
                s.add(hash_bytes(&i.to_le_bytes()));
            }
            let e = s.estimate() as f64;
            let err = (e - n as f64).abs() / n as f64;
            assert!(err < 0.15, "n={n}, estimate {e}, error {err}");
            assert_eq!(Sketch::from_bytes(&s.to_bytes()), Some(s.clone()));
        }
    }
}
