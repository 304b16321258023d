//! Stateless pipeline stages: a chain of filters and one projection fused into one kernel.
//!
//! Owns running a compiled kernel over a batch list (spread over worker threads), building the
//! kernel's input columns (including per-batch constants) and re-nesting struct outputs. It does
//! not build kernels (that is [`super::planner`]) and keeps no state between batches.

use std::sync::Arc;

use arrow::array::{Array, ArrayRef, RecordBatch, RecordBatchOptions};
use arrow::datatypes::SchemaRef;
use weir_jit::CompiledKernel;

use super::BatchContext;
use super::lower::{KernelInputs, window_struct};
use crate::error::{Error, Result};

/// How one output column is built from the kernel's output.
#[derive(Clone, Debug)]
pub(crate) enum OutputColumn {
    /// Kernel output column `i`.
    Kernel(usize),
    /// A `struct<start, end>` window from kernel outputs `start` and `end`.
    WindowStruct { start: usize, end: usize },
    /// Column `i` of the stage's input, passed through without a copy (only in stages without a
    /// filter).
    Input(usize),
}

/// A fused filter/project stage.
pub(crate) struct MapStage {
    pub inputs: KernelInputs,
    pub kernel_schema: SchemaRef,
    /// `None` when every output column is passed through.
    pub kernel: Option<Arc<CompiledKernel>>,
    pub outputs: Vec<OutputColumn>,
    pub output_schema: SchemaRef,
    pub description: String,
    pub workers: usize,
}

impl MapStage {
    /// One line for explain, with what was compiled natively.
    pub fn describe(&self) -> String {
        match &self.kernel {
            Some(k) => format!(
                "Kernel [{}]\n{}",
                self.description,
                k.report().to_string().trim_end()
            ),
            None => format!(
                "Select [{}] (columns passed through, no kernel)",
                self.description
            ),
        }
    }

    /// Runs the stage over a batch list, in parallel when there are several batches.
    pub fn run(&self, batches: Vec<RecordBatch>, ctx: &BatchContext) -> Result<Vec<RecordBatch>> {
        let ts_us = ctx.batch_timestamp_ms.saturating_mul(1000);
        run_parallel(&batches, self.workers, |b| self.run_one(b, ts_us))
    }

    fn run_one(&self, batch: &RecordBatch, ts_us: i64) -> Result<RecordBatch> {
        let out = match &self.kernel {
            Some(kernel) => Some(
                kernel
                    .run(&self.inputs.project(batch, &self.kernel_schema, ts_us)?)
                    .map_err(|source| Error::Evaluation {
                        stage: self.description.clone(),
                        source,
                    })?,
            ),
            None => None,
        };
        let n = out.as_ref().map_or(batch.num_rows(), RecordBatch::num_rows);
        let kernel_column = |i: usize| -> Result<ArrayRef> {
            out.as_ref()
                .map(|o| o.column(i).clone())
                .ok_or_else(|| Error::Internal("a kernel output without a kernel".into()))
        };
        let columns: Vec<ArrayRef> = self
            .outputs
            .iter()
            .map(|o| match o {
                OutputColumn::Kernel(i) => kernel_column(*i),
                OutputColumn::WindowStruct { start, end } => {
                    window_struct(kernel_column(*start)?, kernel_column(*end)?)
                }
                OutputColumn::Input(i) => Ok(batch.column(*i).clone()),
            })
            .collect::<Result<_>>()?;
        let options = RecordBatchOptions::new().with_row_count(Some(n));
        Ok(RecordBatch::try_new_with_options(
            self.output_schema.clone(),
            columns,
            &options,
        )?)
    }
}

/// `explode(array)`: one output row per array element (rows with an empty or NULL array produce
/// none, as Spark's `explode`); the array is computed by a kernel.
pub(crate) struct ExplodeStage {
    pub inputs: KernelInputs,
    pub kernel_schema: SchemaRef,
    pub kernel: Arc<CompiledKernel>,
    pub output_schema: SchemaRef,
    pub description: String,
    /// `explode(split(column, 'literal'))` with a pattern free of regex metacharacters: split
    /// directly in one pass over the strings (input column index, separator), instead of
    /// building the list with the kernel.
    pub literal_split: Option<(usize, String)>,
    /// Per input column: copied to every output row (`true`), or left NULL because nothing
    /// above reads it.
    pub copied_columns: Vec<bool>,
    /// Threads a batch list is spread over.
    pub workers: usize,
}

impl ExplodeStage {
    /// One line for explain.
    pub fn describe(&self) -> String {
        match &self.literal_split {
            Some((_, sep)) => format!(
                "Explode [{}]\n  split on the literal {sep:?} in one pass (no regex, no list built)",
                self.description
            ),
            None => format!(
                "Explode [{}]\n{}",
                self.description,
                self.kernel.report().to_string().trim_end()
            ),
        }
    }

    /// Explodes `split(column, sep)` of a literal separator: Spark's `split` with limit -1 keeps
    /// empty fields (leading, inner and trailing), and a NULL string produces no row.
    fn explode_literal_split(
        &self,
        batch: &RecordBatch,
        column: usize,
        sep: &str,
    ) -> Result<RecordBatch> {
        let strings =
            arrow::compute::cast(batch.column(column), &arrow::datatypes::DataType::Utf8)?;
        let strings = strings
            .as_any()
            .downcast_ref::<arrow::array::StringArray>()
            .ok_or_else(|| Error::Internal("split input is not a string column".into()))?;
        let mut parents: Vec<u32> = Vec::with_capacity(strings.len() * 4);
        let mut words =
            arrow::array::StringBuilder::with_capacity(strings.len() * 4, strings.values().len());
        // A one-byte (ASCII) separator is found eight bytes at a time (see
        // `for_each_position_of`): words are short, so a memchr call per word or a substring
        // searcher per row costs more than it saves.
        let one_byte = match sep.as_bytes() {
            [b] if b.is_ascii() => Some(*b),
            _ => None,
        };
        for row in 0..strings.len() {
            if strings.is_null(row) {
                continue;
            }
            let line = strings.value(row);
            match one_byte {
                Some(b) => {
                    let mut start = 0;
                    for_each_position_of(line.as_bytes(), b, |i| {
                        // An ASCII byte is never inside a multi-byte character: `start..i`
                        // are character boundaries.
                        parents.push(row as u32);
                        words.append_value(&line[start..i]);
                        start = i + 1;
                    });
                    parents.push(row as u32);
                    words.append_value(&line[start..]);
                }
                None => line.split(sep).for_each(|word| {
                    parents.push(row as u32);
                    words.append_value(word);
                }),
            }
        }
        let parents = arrow::array::UInt32Array::from(parents);
        let mut columns = self.copy_parents(batch, &parents)?;
        let words: ArrayRef = Arc::new(words.finish());
        let target = self.output_schema.field(columns.len()).data_type();
        columns.push(if words.data_type() == target {
            words
        } else {
            arrow::compute::cast(&words, target)?
        });
        let options = RecordBatchOptions::new().with_row_count(Some(parents.len()));
        Ok(RecordBatch::try_new_with_options(
            self.output_schema.clone(),
            columns,
            &options,
        )?)
    }

    /// The input columns repeated for each output row (NULL for columns nothing reads).
    fn copy_parents(
        &self,
        batch: &RecordBatch,
        parents: &arrow::array::UInt32Array,
    ) -> Result<Vec<ArrayRef>> {
        batch
            .columns()
            .iter()
            .enumerate()
            .map(|(i, c)| {
                if self.copied_columns.get(i).copied().unwrap_or(true) {
                    Ok(arrow::compute::take(c.as_ref(), parents, None)?)
                } else {
                    Ok(arrow::array::new_null_array(c.data_type(), parents.len()))
                }
            })
            .collect()
    }

    /// Explodes every batch.
    pub fn run(&self, batches: Vec<RecordBatch>, ctx: &BatchContext) -> Result<Vec<RecordBatch>> {
        if let Some((column, sep)) = &self.literal_split {
            return run_parallel(&batches, self.workers, |b| {
                self.explode_literal_split(b, *column, sep)
            });
        }
        let ts_us = ctx.batch_timestamp_ms.saturating_mul(1000);
        let mut out = Vec::with_capacity(batches.len());
        for batch in &batches {
            let input = self.inputs.project(batch, &self.kernel_schema, ts_us)?;
            let arrays = self.kernel.run(&input)?;
            let list = arrays.column(0);
            let list = list
                .as_any()
                .downcast_ref::<arrow::array::ListArray>()
                .ok_or_else(|| {
                    Error::Internal(format!("explode of a {} value", list.data_type()))
                })?;
            let offsets = list.value_offsets();
            let mut parents: Vec<u32> = Vec::with_capacity(list.values().len());
            let mut elements: Vec<u32> = Vec::with_capacity(list.values().len());
            for row in 0..list.len() {
                if list.is_null(row) {
                    continue;
                }
                let (start, end) = (offsets[row] as usize, offsets[row + 1] as usize);
                for e in start..end {
                    parents.push(row as u32);
                    elements.push(e as u32);
                }
            }
            let parents = arrow::array::UInt32Array::from(parents);
            let mut columns = self.copy_parents(batch, &parents)?;
            columns.push(arrow::compute::take(
                list.values().as_ref(),
                &arrow::array::UInt32Array::from(elements),
                None,
            )?);
            let options = RecordBatchOptions::new().with_row_count(Some(parents.len()));
            out.push(RecordBatch::try_new_with_options(
                self.output_schema.clone(),
                columns,
                &options,
            )?);
        }
        Ok(out)
    }
}

/// Applies `f` to every batch, in order, spreading the list over up to `workers` threads
/// (each thread takes one contiguous part, so the output keeps the input's order).
fn run_parallel(
    batches: &[RecordBatch],
    workers: usize,
    f: impl Fn(&RecordBatch) -> Result<RecordBatch> + Sync,
) -> Result<Vec<RecordBatch>> {
    if batches.len() <= 1 || workers <= 1 {
        return batches.iter().map(&f).collect();
    }
    let chunk = batches.len().div_ceil(workers);
    let f = &f;
    std::thread::scope(|scope| {
        let handles: Vec<_> = batches
            .chunks(chunk)
            .map(|part| scope.spawn(move || part.iter().map(f).collect::<Result<Vec<_>>>()))
            .collect();
        let mut out = Vec::with_capacity(batches.len());
        for h in handles {
            let part = h
                .join()
                .map_err(|_| Error::Internal("a kernel worker thread panicked".into()))??;
            out.extend(part);
        }
        Ok(out)
    })
}

/// Calls `f` with each index of `needle` in `haystack`, in order. Eight bytes at a time: the
/// bytes equal to `needle` become zero bytes of `word ^ pattern`, and an exact zero-byte mask
/// (no false positives from borrows) gives their positions; the last 0-7 bytes one by one.
pub(crate) fn for_each_position_of(haystack: &[u8], needle: u8, mut f: impl FnMut(usize)) {
    const LOW7: u64 = 0x7f7f_7f7f_7f7f_7f7f;
    let pattern = u64::from_ne_bytes([needle; 8]);
    let mut chunks = haystack.chunks_exact(8);
    let mut base = 0;
    for chunk in &mut chunks {
        let word = u64::from_le_bytes(chunk.try_into().expect("8 bytes")) ^ pattern;
        // High bit of each byte set iff that byte of `word` is zero.
        let mut zeros = !(((word & LOW7).wrapping_add(LOW7)) | word | LOW7);
        while zeros != 0 {
            f(base + zeros.trailing_zeros() as usize / 8);
            zeros &= zeros - 1;
        }
        base += 8;
    }
    for (i, &c) in chunks.remainder().iter().enumerate() {
        if c == needle {
            f(base + i);
        }
    }
}

#[cfg(test)]
mod position_tests {
    use super::for_each_position_of;

    #[test]
    fn finds_every_position_like_a_byte_scan() {
        let text: Vec<u8> = (0..300u32)
            .map(|i| match (i * 7919) % 11 {
                0..=2 => b' ',
                3 => 0x80 | (i as u8),
                4 => 0,
                5 => 0xff,
                _ => b'a' + (i % 26) as u8,
            })
            .collect();
        for needle in [b' ', 0u8, 0x7f, b'a'] {
            for len in [0, 1, 7, 8, 9, 15, 16, 17, 64, 299, 300] {
                let hay = &text[..len];
                let expected: Vec<usize> = (0..len).filter(|&i| hay[i] == needle).collect();
                let mut got = Vec::new();
                for_each_position_of(hay, needle, |i| got.push(i));
                assert_eq!(got, expected, "needle {needle} len {len}");
            }
        }
    }
}
