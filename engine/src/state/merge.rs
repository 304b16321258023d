//! Replaying snapshots and deltas into one keyed state: a hash index from key (arrow-row bytes,
//! so keys of any row-encodable Arrow type compare by value across all key columns) to the
//! newest row holding it. Rows are not copied until [`KeyedMerge::finish`] gathers the live
//! ones, sorted by key.
//!
//! Owns only the merge; it reads no files and knows nothing about versions.

use std::hash::BuildHasher;

use arrow::array::{Array, ArrayRef, BooleanArray, new_null_array};
use arrow::compute::interleave;
use arrow::datatypes::{DataType, SchemaRef};
use arrow::record_batch::RecordBatch;
use arrow::row::{RowConverter, Rows, SortField};
use hashbrown::{DefaultHashBuilder, HashTable};

use crate::error::{Error, Result};

/// The key encoder of a state: arrow-row over the key columns. A state without key columns (a
/// global aggregate) has one implicit key shared by every row.
#[derive(Debug)]
pub(crate) struct KeyEncoder {
    converter: RowConverter,
    key_columns: usize,
}

impl KeyEncoder {
    /// An encoder for the first `key_columns` columns of `schema`; names the first key column
    /// whose type arrow-row cannot encode.
    pub(crate) fn new(schema: &SchemaRef, key_columns: usize) -> Result<Self> {
        let mut sort_fields = Vec::with_capacity(key_columns.max(1));
        for field in &schema.fields()[..key_columns] {
            let sort_field = SortField::new(field.data_type().clone());
            if !RowConverter::supports_fields(std::slice::from_ref(&sort_field)) {
                return Err(Error::Unsupported(format!(
                    "state key column '{}' has type {}, which cannot be used as a state key",
                    field.name(),
                    field.data_type()
                )));
            }
            sort_fields.push(sort_field);
        }
        if key_columns == 0 {
            sort_fields.push(SortField::new(DataType::Null));
        }
        Ok(KeyEncoder {
            converter: RowConverter::new(sort_fields)?,
            key_columns,
        })
    }

    /// The encoded keys of `num_rows` rows whose first `columns` are the key columns (types
    /// already checked against the state schema).
    pub(crate) fn encode(&self, columns: &[ArrayRef], num_rows: usize) -> Result<Rows> {
        if self.key_columns == 0 {
            let implicit: ArrayRef = new_null_array(&DataType::Null, num_rows);
            return Ok(self.converter.convert_columns(&[implicit])?);
        }
        Ok(self
            .converter
            .convert_columns(&columns[..self.key_columns])?)
    }
}

/// Where the newest row of a live key is: (batch index, row index).
type RowRef = (usize, usize);

/// Accumulates state batches in order; the newest row of a key wins, a removal drops the key.
#[derive(Debug)]
pub(crate) struct KeyedMerge {
    encoder: KeyEncoder,
    schema: SchemaRef,
    batches: Vec<Vec<ArrayRef>>,
    keys: Vec<Rows>,
    index: HashTable<RowRef>,
    hasher: DefaultHashBuilder,
}

impl KeyedMerge {
    /// An empty state of `schema` with `key_columns` key columns.
    pub(crate) fn new(schema: SchemaRef, key_columns: usize) -> Result<Self> {
        Ok(KeyedMerge {
            encoder: KeyEncoder::new(&schema, key_columns)?,
            schema,
            batches: Vec::new(),
            keys: Vec::new(),
            index: HashTable::new(),
            hasher: DefaultHashBuilder::default(),
        })
    }

    /// Applies `num_rows` rows (`columns` typed exactly as the state schema's; values may be
    /// null in removal rows) in order: a row whose `removed` flag is true removes its key, any
    /// other row upserts it.
    pub(crate) fn apply(
        &mut self,
        columns: Vec<ArrayRef>,
        num_rows: usize,
        removed: Option<&BooleanArray>,
    ) -> Result<()> {
        let keys = self.encoder.encode(&columns, num_rows)?;
        let batch_index = self.batches.len();
        // The key at a `RowRef`, for rows of earlier batches and of this one alike.
        let key_at = |&(b, r): &RowRef| {
            if b == batch_index {
                keys.row(r)
            } else {
                self.keys[b].row(r)
            }
        };
        let hasher = &self.hasher;
        self.index
            .reserve(num_rows, |entry| hasher.hash_one(key_at(entry).data()));
        for row in 0..num_rows {
            let key = keys.row(row);
            let hash = self.hasher.hash_one(key.data());
            let same_key = |entry: &RowRef| key_at(entry) == key;
            let is_removal = removed.is_some_and(|flags| flags.is_valid(row) && flags.value(row));
            if is_removal {
                if let Ok(entry) = self.index.find_entry(hash, same_key) {
                    entry.remove();
                }
            } else if let Some(slot) = self.index.find_mut(hash, same_key) {
                *slot = (batch_index, row);
            } else {
                self.index.insert_unique(hash, (batch_index, row), |entry| {
                    hasher.hash_one(key_at(entry).data())
                });
            }
        }
        self.batches.push(columns);
        self.keys.push(keys);
        Ok(())
    }

    /// The live rows as one batch of the state schema, sorted by key.
    pub(crate) fn finish(self) -> Result<RecordBatch> {
        // arrow-row bytes compare like the keys (their purpose), so sorting bytes sorts keys.
        let keys = &self.keys;
        let mut by_key: Vec<(&[u8], RowRef)> = self
            .index
            .iter()
            .map(|&(b, r)| (keys[b].row(r).data(), (b, r)))
            .collect();
        by_key.sort_unstable_by(|a, b| a.0.cmp(b.0));
        let live: Vec<RowRef> = by_key.into_iter().map(|(_, at)| at).collect();
        let columns = (0..self.schema.fields().len())
            .map(|column| {
                let arrays: Vec<&dyn Array> = self
                    .batches
                    .iter()
                    .map(|columns| columns[column].as_ref())
                    .collect();
                if arrays.is_empty() {
                    Ok(new_null_array(self.schema.field(column).data_type(), 0))
                } else {
                    interleave(&arrays, &live).map_err(Error::from)
                }
            })
            .collect::<Result<Vec<_>>>()?;
        let options =
            arrow::record_batch::RecordBatchOptions::new().with_row_count(Some(live.len()));
        Ok(RecordBatch::try_new_with_options(
            self.schema,
            columns,
            &options,
        )?)
    }
}
