//! Typed rows over Arrow: the [`Record`] trait that `#[derive(weir::Record)]` implements, the
//! per-field conversions it is built from ([`RecordField`], [`FieldReader`], [`FieldBuilder`]),
//! weir's own value types for instants, dates and decimals ([`Timestamp`], [`Date`],
//! [`Decimal`]), and [`RecordError`].
//!
//! This module owns the runtime half of the typed Rust API; the derive lives in `weir-macros`
//! and generates only short calls into this module. It must not plan or run queries.
//!
//! Conversion from a batch looks every column up by name once, downcasts it once into a typed
//! reader, and then indexes the Arrow buffers row by row: a row of fixed-width fields costs no
//! allocation. A `String` field allocates once per value (the row owns its text) and a `Vec<T>`
//! field once per list; nothing else allocates per row.
//!
//! | Rust field            | Arrow type                          |
//! |-----------------------|-------------------------------------|
//! | `i8`..`i64`, `u8`..`u64`, `f32`, `f64`, `bool` | the matching primitive type |
//! | `String`              | `Utf8` (read: also `LargeUtf8`, `Utf8View`) |
//! | [`Timestamp`]         | `Timestamp(Microsecond, "UTC")` (read: any time zone) |
//! | [`Date`]              | `Date32`                            |
//! | [`Decimal<P, S>`]     | `Decimal128(P, S)` (read: precision ≤ P, scale = S) |
//! | `Option<T>`           | the type of `T`, nullable           |
//! | `Vec<T>`              | `List<T>`                           |
//! | a `#[derive(Record)]` struct | `Struct` with its fields     |
//!
//! ```ignore
//! // Through the facade; weir-macros' tests/record_roundtrip.rs runs the same calls.
//! use weir::Record;
//! use weir::record::Timestamp;
//!
//! #[derive(Record)]
//! struct Bid {
//!     auction: i64,
//!     price: Option<i64>,                   // nullable Int64
//!     #[weir(rename = "dateTime", event_time)]
//!     date_time: Timestamp,                 // column "dateTime"
//!     #[weir(skip)]
//!     seen: u32,                            // not a column; Default on read
//! }
//!
//! let bids: Vec<Bid> = Bid::from_batch(&batch)?;   // columns matched by name
//! let batch = Bid::to_batch(&bids)?;                // with Bid::schema()
//! ```

use std::fmt;
use std::sync::{Arc, OnceLock};

use arrow::array::{
    Array, ArrayRef, ArrowPrimitiveType, BooleanArray, BooleanBuilder, LargeStringArray, ListArray,
    NullBufferBuilder, PrimitiveArray, PrimitiveBuilder, StringArray, StringBuilder,
    StringViewArray, StructArray,
};
use arrow::buffer::{NullBuffer, OffsetBuffer, ScalarBuffer};
use arrow::datatypes::{
    DataType, Date32Type, Decimal128Type, DecimalType, Field, FieldRef, Fields, Float32Type,
    Float64Type, Int8Type, Int16Type, Int32Type, Int64Type, Schema, SchemaRef, TimeUnit,
    TimestampMicrosecondType, UInt8Type, UInt16Type, UInt32Type, UInt64Type,
};
use arrow::error::ArrowError;
use arrow::record_batch::{RecordBatch, RecordBatchOptions};

/// What can go wrong converting between Arrow batches and typed records.
#[derive(Debug, thiserror::Error)]
pub enum RecordError {
    /// A field's column is not in the batch (or in the parent struct column).
    #[error(
        "column '{column}' not found; the input has columns [{}]. Add the column to the input or map the field to an existing one with #[weir(rename = \"...\")]",
        .available.join(", ")
    )]
    MissingColumn {
        /// The column the field reads, as a path (`parent.child`) for nested structs.
        column: String,
        /// The names of the columns that are there.
        available: Vec<String>,
    },
    /// A column has an Arrow type the field cannot be read from.
    #[error("column '{column}' has type {found}, but the record field needs {expected}")]
    WrongType {
        /// The column, as a path for nested structs and lists (`tags[]`).
        column: String,
        /// The Arrow type the field reads.
        expected: String,
        /// The column's actual Arrow type.
        found: String,
    },
    /// A null value in a column whose field is not an `Option`.
    #[error(
        "column '{column}' is null at row {row}, but its record field is not an Option; make the field Option<_> or filter the nulls out first"
    )]
    NullValue {
        /// The column, as a path; list elements carry their position (`tags[2]`).
        column: String,
        /// The row of the batch.
        row: usize,
    },
    /// Records could not be written to an Arrow column (a decimal out of its precision, a list
    /// column over 2^31 elements).
    #[error("cannot build column '{column}': {message}")]
    InvalidValue {
        /// The column being built.
        column: String,
        /// What is wrong.
        message: String,
    },
    /// Arrow refused to assemble the batch from the built columns.
    #[error("cannot assemble the record batch: {0}")]
    Arrow(#[from] ArrowError),
}

/// A struct whose values are rows of an Arrow [`RecordBatch`]; derive it with
/// `#[derive(weir::Record)]`.
///
/// Columns are matched by name, never by position, so a batch may hold its columns in any order
/// and extra columns are ignored. The associated types and the `readers` / `read_row` /
/// `builders` / `append_*` / `finish_columns` methods are the plumbing the derive generates;
/// users call [`Record::schema`], [`Record::from_batch`], [`Record::iter_batch`] and
/// [`Record::to_batch`].
pub trait Record: Sized {
    /// One typed reader per column, made once per batch (the derive uses a tuple).
    type Readers<'a>;
    /// One builder per column (the derive uses a tuple).
    type Builders;

    /// The Arrow fields of this record, in declaration order, without skipped fields.
    fn fields() -> Fields;

    /// The Arrow schema of this record (built once, then shared).
    fn schema() -> SchemaRef;

    /// The column marked `#[weir(event_time)]`, if any.
    fn event_time_column() -> Option<&'static str>;

    /// Finds and downcasts this record's columns in `columns`.
    fn readers<'a>(columns: &Columns<'a>) -> Result<Self::Readers<'a>, RecordError>;

    /// Reads the record at `row` from readers made by [`Record::readers`].
    fn read_row(readers: &Self::Readers<'_>, row: usize) -> Result<Self, RecordError>;

    /// Empty builders with room for `capacity` rows.
    fn builders(capacity: usize) -> Self::Builders;

    /// Appends one record to the builders.
    fn append_row(builders: &mut Self::Builders, row: &Self);

    /// Appends a null to every column (used under a null parent struct).
    fn append_null_row(builders: &mut Self::Builders);

    /// Finishes the builders into one array per field, in [`Record::fields`] order.
    fn finish_columns(builders: &mut Self::Builders) -> Result<Vec<ArrayRef>, RecordError>;

    /// Converts every row of `batch` into a record.
    fn from_batch(batch: &RecordBatch) -> Result<Vec<Self>, RecordError> {
        let readers = Self::readers(&Columns::of_batch(batch))?;
        let mut rows = Vec::with_capacity(batch.num_rows());
        for row in 0..batch.num_rows() {
            rows.push(Self::read_row(&readers, row)?);
        }
        Ok(rows)
    }

    /// Iterates over the rows of `batch` as records. Missing columns and wrong types are found
    /// here, before the first row; nulls in non-`Option` fields when their row is reached.
    fn iter_batch(batch: &RecordBatch) -> Result<RecordIter<'_, Self>, RecordError> {
        Ok(RecordIter {
            readers: Self::readers(&Columns::of_batch(batch))?,
            next_row: 0,
            num_rows: batch.num_rows(),
        })
    }

    /// Converts `rows` into a batch with [`Record::schema`].
    fn to_batch(rows: &[Self]) -> Result<RecordBatch, RecordError> {
        let mut builders = Self::builders(rows.len());
        for row in rows {
            Self::append_row(&mut builders, row);
        }
        let columns = Self::finish_columns(&mut builders)?;
        let options = RecordBatchOptions::new().with_row_count(Some(rows.len()));
        Ok(RecordBatch::try_new_with_options(
            Self::schema(),
            columns,
            &options,
        )?)
    }
}

/// The iterator returned by [`Record::iter_batch`].
pub struct RecordIter<'a, T: Record> {
    readers: T::Readers<'a>,
    next_row: usize,
    num_rows: usize,
}

impl<T: Record> Iterator for RecordIter<'_, T> {
    type Item = Result<T, RecordError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.next_row >= self.num_rows {
            return None;
        }
        let row = self.next_row;
        self.next_row += 1;
        Some(T::read_row(&self.readers, row))
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        let remaining = self.num_rows - self.next_row;
        (remaining, Some(remaining))
    }
}

impl<T: Record> ExactSizeIterator for RecordIter<'_, T> {}

impl<T: Record> std::iter::FusedIterator for RecordIter<'_, T> {}

/// The named columns a record reads from: the top level of a batch, or the children of a struct
/// column. Looks columns up by name: the exact name, else the one name that matches ignoring
/// ASCII case.
pub struct Columns<'a> {
    fields: &'a Fields,
    arrays: &'a [ArrayRef],
    path: String,
}

impl<'a> Columns<'a> {
    /// The top-level columns of `batch`.
    pub fn of_batch(batch: &'a RecordBatch) -> Self {
        Columns {
            fields: batch.schema_ref().fields(),
            arrays: batch.columns(),
            path: String::new(),
        }
    }

    /// The children of the struct column `array`, whose own path is `path`.
    pub fn of_struct(array: &'a StructArray, path: &str) -> Self {
        Columns {
            fields: array.fields(),
            arrays: array.columns(),
            path: path.to_owned(),
        }
    }

    /// Finds the column `name` and makes a reader of `T` over it.
    pub fn field<T: RecordField>(&self, name: &str) -> Result<T::Reader<'a>, RecordError> {
        self.read(name, T::reader)
    }

    /// Finds the column `name` and makes a reader over it with `reader` (the derive passes
    /// `<T as RecordField>::reader`, so that an unsupported field type is one error).
    pub fn read<R>(
        &self,
        name: &str,
        reader: fn(&'a dyn Array, &str) -> Result<R, RecordError>,
    ) -> Result<R, RecordError> {
        let column = if self.path.is_empty() {
            name.to_owned()
        } else {
            format!("{}.{name}", self.path)
        };
        let Some(index) = self.position(name) else {
            return Err(RecordError::MissingColumn {
                column,
                available: self.fields.iter().map(|f| f.name().clone()).collect(),
            });
        };
        reader(self.arrays[index].as_ref(), &column)
    }

    /// The column named exactly `name`, else the only one whose name equals it ignoring ASCII
    /// case (Spark resolves column names case-insensitively by default).
    fn position(&self, name: &str) -> Option<usize> {
        let names = || self.fields.iter().map(|field| field.name());
        if let Some(index) = names().position(|candidate| candidate == name) {
            return Some(index);
        }
        let mut matches = names()
            .enumerate()
            .filter(|(_, candidate)| candidate.eq_ignore_ascii_case(name));
        match (matches.next(), matches.next()) {
            (Some((index, _)), None) => Some(index),
            _ => None,
        }
    }
}

/// A Rust type that can be one field of a [`Record`]: it knows its Arrow type, how to read
/// itself from an Arrow array, and how to build one.
#[diagnostic::on_unimplemented(
    message = "`{Self}` cannot be a field of a weir Record",
    label = "unsupported field type",
    note = "supported: integers, f32, f64, bool, String, weir::record::{{Timestamp, Date, Decimal}}, Option<T>, Vec<T> and structs that derive weir::Record; or mark the field #[weir(skip)]"
)]
pub trait RecordField: Sized {
    /// Reads values of this type from one array.
    type Reader<'a>: FieldReader<Value = Self>;
    /// Builds one array from values of this type.
    type Builder: FieldBuilder<Value = Self>;

    /// The Arrow type written by [`RecordField::builder`].
    fn data_type() -> DataType;

    /// Whether the Arrow field is nullable (true for `Option<T>`).
    fn nullable() -> bool {
        false
    }

    /// Checks the type of `array` and makes a reader over it; `column` names it in errors.
    fn reader<'a>(array: &'a dyn Array, column: &str) -> Result<Self::Reader<'a>, RecordError>;

    /// An empty builder with room for `capacity` values.
    fn builder(capacity: usize) -> Self::Builder;
}

/// Reads the values of one typed array by row index.
pub trait FieldReader {
    /// The Rust type read.
    type Value;

    /// Whether the array is null at `row`.
    fn is_null(&self, row: usize) -> bool;

    /// Reads the value at `row`, which is not null (a value of nested fields may still fail).
    fn read_present(&self, row: usize) -> Result<Self::Value, RecordError>;

    /// The column path, for errors.
    fn column(&self) -> &str;

    /// Reads the value at `row`; a null is a [`RecordError::NullValue`].
    fn read(&self, row: usize) -> Result<Self::Value, RecordError> {
        if self.is_null(row) {
            return Err(RecordError::NullValue {
                column: self.column().to_owned(),
                row,
            });
        }
        self.read_present(row)
    }
}

/// Builds one Arrow array from typed values.
pub trait FieldBuilder {
    /// The Rust type written.
    type Value;

    /// Appends one value.
    fn append(&mut self, value: &Self::Value);

    /// Appends a null (under a null parent, or for `None`).
    fn append_null(&mut self);

    /// Finishes the array; `column` names it in errors.
    fn finish(&mut self, column: &str) -> Result<ArrayRef, RecordError>;
}

/// The Arrow struct type of a nested record.
pub fn struct_data_type<T: Record>() -> DataType {
    DataType::Struct(T::fields())
}

/// Checks at compile time that an `#[weir(event_time)]` field has an instant type, and returns
/// its column name.
pub fn event_time_column<T: EventTimeField>(column: &'static str) -> Option<&'static str> {
    Some(column)
}

/// The types an `#[weir(event_time)]` field may have.
#[diagnostic::on_unimplemented(
    message = "`{Self}` cannot be the event-time column of a weir Record",
    label = "not a timestamp",
    note = "an #[weir(event_time)] field must be weir::record::Timestamp or Option<Timestamp>"
)]
pub trait EventTimeField {}

impl EventTimeField for Timestamp {}
impl EventTimeField for Option<Timestamp> {}

/// A lazily built [`SchemaRef`], for the `schema()` of a derived record.
pub struct SchemaCell(OnceLock<SchemaRef>);

impl SchemaCell {
    /// An empty cell.
    pub const fn new() -> Self {
        SchemaCell(OnceLock::new())
    }

    /// The schema, built from `fields` on first use.
    pub fn get_or_init(&self, fields: fn() -> Fields) -> SchemaRef {
        Arc::clone(self.0.get_or_init(|| Arc::new(Schema::new(fields()))))
    }
}

impl Default for SchemaCell {
    fn default() -> Self {
        Self::new()
    }
}

fn wrong_type(column: &str, expected: &DataType, found: &DataType) -> RecordError {
    RecordError::WrongType {
        column: column.to_owned(),
        expected: expected.to_string(),
        found: found.to_string(),
    }
}

/// Downcasts `array` to `A` if `accepts` its data type, else a [`RecordError::WrongType`].
fn downcast<'a, A: Array + 'static>(
    array: &'a dyn Array,
    column: &str,
    expected: &DataType,
    accepts: impl Fn(&DataType) -> bool,
) -> Result<&'a A, RecordError> {
    if !accepts(array.data_type()) {
        return Err(wrong_type(column, expected, array.data_type()));
    }
    array
        .as_any()
        .downcast_ref::<A>()
        .ok_or_else(|| wrong_type(column, expected, array.data_type()))
}

#[inline]
fn null_at(nulls: Option<&NullBuffer>, row: usize) -> bool {
    nulls.is_some_and(|nulls| nulls.is_null(row))
}

// ---------------------------------------------------------------------------------------------
// Value types

/// An instant: microseconds since 1970-01-01T00:00:00 UTC. Arrow type
/// `Timestamp(Microsecond, "UTC")`, SQL type `TIMESTAMP`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Timestamp(i64);

impl Timestamp {
    /// The instant `micros` microseconds after the epoch.
    pub const fn from_micros(micros: i64) -> Self {
        Timestamp(micros)
    }

    /// The instant `millis` milliseconds after the epoch, or `None` if it overflows.
    pub const fn from_millis(millis: i64) -> Option<Self> {
        match millis.checked_mul(1_000) {
            Some(micros) => Some(Timestamp(micros)),
            None => None,
        }
    }

    /// Microseconds since the epoch.
    pub const fn micros(self) -> i64 {
        self.0
    }
}

impl fmt::Display for Timestamp {
    /// ISO 8601 in UTC with microseconds, e.g. `2026-11-24T05:30:00.000000Z`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match chrono::DateTime::from_timestamp_micros(self.0) {
            Some(instant) => write!(f, "{}", instant.format("%Y-%m-%dT%H:%M:%S%.6fZ")),
            None => write!(f, "{}µs", self.0),
        }
    }
}

/// A calendar date: days since 1970-01-01. Arrow type `Date32`, SQL type `DATE`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Date(i32);

impl Date {
    /// The date `days` days after 1970-01-01.
    pub const fn from_days(days: i32) -> Self {
        Date(days)
    }

    /// The proleptic Gregorian date `year-month-day`, or `None` if there is no such date.
    pub fn from_ymd(year: i32, month: u32, day: u32) -> Option<Self> {
        let date = chrono::NaiveDate::from_ymd_opt(year, month, day)?;
        let days = date
            .signed_duration_since(chrono::NaiveDate::default())
            .num_days();
        i32::try_from(days).ok().map(Date)
    }

    /// Days since 1970-01-01.
    pub const fn days(self) -> i32 {
        self.0
    }
}

impl fmt::Display for Date {
    /// `YYYY-MM-DD`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let date = chrono::NaiveDate::default()
            .checked_add_signed(chrono::TimeDelta::days(i64::from(self.0)));
        match date {
            Some(date) => write!(f, "{}", date.format("%Y-%m-%d")),
            None => write!(f, "{} days", self.0),
        }
    }
}

/// A decimal number with `PRECISION` digits, `SCALE` of them after the point, stored as its
/// unscaled integer (`12.34` in `Decimal<10, 2>` is `1234`). Arrow type
/// `Decimal128(PRECISION, SCALE)`, SQL type `DECIMAL(PRECISION, SCALE)`.
///
/// `PRECISION` must be 1..=38 and `SCALE` at most `PRECISION` (a compile error otherwise, when
/// the type is used in a record). [`Record::to_batch`] fails on a value with more digits than
/// `PRECISION`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Decimal<const PRECISION: u8, const SCALE: i8>(i128);

impl<const PRECISION: u8, const SCALE: i8> Decimal<PRECISION, SCALE> {
    const VALID_TYPE: () = assert!(
        PRECISION >= 1 && PRECISION <= 38 && SCALE <= PRECISION as i8,
        "Decimal<PRECISION, SCALE> needs 1 <= PRECISION <= 38 and SCALE <= PRECISION"
    );

    /// The decimal whose unscaled integer is `unscaled` (its value is `unscaled / 10^SCALE`).
    pub const fn from_unscaled(unscaled: i128) -> Self {
        Decimal(unscaled)
    }

    /// The unscaled integer.
    pub const fn unscaled(self) -> i128 {
        self.0
    }
}

impl<const PRECISION: u8, const SCALE: i8> fmt::Display for Decimal<PRECISION, SCALE> {
    /// The value with `SCALE` digits after the point, as Arrow prints it.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&Decimal128Type::format_decimal(self.0, PRECISION, SCALE))
    }
}

// ---------------------------------------------------------------------------------------------
// Fixed-width values

/// A Rust value stored as one Arrow primitive (a fixed-width value). Implemented for the
/// integers, floats, [`Timestamp`], [`Date`] and [`Decimal`].
pub trait PrimitiveField: Copy {
    /// The Arrow primitive type holding the value.
    type Arrow: ArrowPrimitiveType;

    /// The Arrow type written.
    fn data_type() -> DataType {
        Self::Arrow::DATA_TYPE
    }

    /// Whether a column of type `data_type` can be read as this type.
    fn accepts(data_type: &DataType) -> bool {
        *data_type == Self::data_type()
    }

    /// The value of an Arrow native value.
    fn from_native(native: <Self::Arrow as ArrowPrimitiveType>::Native) -> Self;

    /// The Arrow native value of this value.
    fn to_native(self) -> <Self::Arrow as ArrowPrimitiveType>::Native;

    /// Checks a finished array (decimals: every value fits the precision).
    fn validate(_array: &PrimitiveArray<Self::Arrow>) -> Result<(), ArrowError> {
        Ok(())
    }
}

/// Reads a [`PrimitiveField`] straight from the values buffer.
pub struct PrimitiveReader<'a, T: PrimitiveField> {
    values: &'a [<T::Arrow as ArrowPrimitiveType>::Native],
    nulls: Option<&'a NullBuffer>,
    column: String,
}

impl<'a, T: PrimitiveField> PrimitiveReader<'a, T> {
    /// A reader over `array`, which must have a type `T` accepts.
    pub fn new(array: &'a dyn Array, column: &str) -> Result<Self, RecordError> {
        let array: &PrimitiveArray<T::Arrow> =
            downcast(array, column, &T::data_type(), T::accepts)?;
        Ok(PrimitiveReader {
            values: array.values(),
            nulls: array.nulls(),
            column: column.to_owned(),
        })
    }
}

impl<T: PrimitiveField> FieldReader for PrimitiveReader<'_, T> {
    type Value = T;

    fn is_null(&self, row: usize) -> bool {
        null_at(self.nulls, row)
    }

    fn read_present(&self, row: usize) -> Result<T, RecordError> {
        Ok(T::from_native(self.values[row]))
    }

    fn column(&self) -> &str {
        &self.column
    }
}

/// Builds a primitive array of a [`PrimitiveField`].
pub struct PrimitiveColumnBuilder<T: PrimitiveField> {
    builder: PrimitiveBuilder<T::Arrow>,
}

impl<T: PrimitiveField> PrimitiveColumnBuilder<T> {
    /// An empty builder with room for `capacity` values.
    pub fn new(capacity: usize) -> Self {
        PrimitiveColumnBuilder {
            builder: PrimitiveBuilder::with_capacity(capacity).with_data_type(T::data_type()),
        }
    }
}

impl<T: PrimitiveField> FieldBuilder for PrimitiveColumnBuilder<T> {
    type Value = T;

    fn append(&mut self, value: &T) {
        self.builder.append_value(value.to_native());
    }

    fn append_null(&mut self) {
        self.builder.append_null();
    }

    fn finish(&mut self, column: &str) -> Result<ArrayRef, RecordError> {
        let array = self.builder.finish();
        T::validate(&array).map_err(|error| RecordError::InvalidValue {
            column: column.to_owned(),
            message: error.to_string(),
        })?;
        Ok(Arc::new(array))
    }
}

macro_rules! primitive_fields {
    ($($rust:ty => $arrow:ty),* $(,)?) => {$(
        impl PrimitiveField for $rust {
            type Arrow = $arrow;

            fn from_native(native: $rust) -> Self {
                native
            }

            fn to_native(self) -> $rust {
                self
            }
        }
    )*};
}

primitive_fields!(
    i8 => Int8Type, i16 => Int16Type, i32 => Int32Type, i64 => Int64Type,
    u8 => UInt8Type, u16 => UInt16Type, u32 => UInt32Type, u64 => UInt64Type,
    f32 => Float32Type, f64 => Float64Type,
);

impl PrimitiveField for Timestamp {
    type Arrow = TimestampMicrosecondType;

    fn data_type() -> DataType {
        DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into()))
    }

    /// Any time zone: Arrow stores zoned timestamps as UTC instants. A timestamp without a time
    /// zone is read as UTC too.
    fn accepts(data_type: &DataType) -> bool {
        matches!(data_type, DataType::Timestamp(TimeUnit::Microsecond, _))
    }

    fn from_native(native: i64) -> Self {
        Timestamp(native)
    }

    fn to_native(self) -> i64 {
        self.0
    }
}

impl PrimitiveField for Date {
    type Arrow = Date32Type;

    fn from_native(native: i32) -> Self {
        Date(native)
    }

    fn to_native(self) -> i32 {
        self.0
    }
}

impl<const PRECISION: u8, const SCALE: i8> PrimitiveField for Decimal<PRECISION, SCALE> {
    type Arrow = Decimal128Type;

    fn data_type() -> DataType {
        let () = Self::VALID_TYPE;
        DataType::Decimal128(PRECISION, SCALE)
    }

    /// The same scale and at most the same precision: every value then fits.
    fn accepts(data_type: &DataType) -> bool {
        matches!(data_type, DataType::Decimal128(precision, scale)
            if *precision <= PRECISION && *scale == SCALE)
    }

    fn from_native(native: i128) -> Self {
        Decimal(native)
    }

    fn to_native(self) -> i128 {
        self.0
    }

    fn validate(array: &PrimitiveArray<Decimal128Type>) -> Result<(), ArrowError> {
        array.validate_decimal_precision(PRECISION)
    }
}

macro_rules! primitive_record_fields {
    ($($rust:ty),* $(,)?) => {$(
        impl RecordField for $rust {
            type Reader<'a> = PrimitiveReader<'a, $rust>;
            type Builder = PrimitiveColumnBuilder<$rust>;

            fn data_type() -> DataType {
                <$rust as PrimitiveField>::data_type()
            }

            fn reader<'a>(array: &'a dyn Array, column: &str) -> Result<Self::Reader<'a>, RecordError> {
                PrimitiveReader::new(array, column)
            }

            fn builder(capacity: usize) -> Self::Builder {
                PrimitiveColumnBuilder::new(capacity)
            }
        }
    )*};
}

primitive_record_fields!(
    i8, i16, i32, i64, u8, u16, u32, u64, f32, f64, Timestamp, Date
);

impl<const PRECISION: u8, const SCALE: i8> RecordField for Decimal<PRECISION, SCALE> {
    type Reader<'a> = PrimitiveReader<'a, Self>;
    type Builder = PrimitiveColumnBuilder<Self>;

    fn data_type() -> DataType {
        <Self as PrimitiveField>::data_type()
    }

    fn reader<'a>(array: &'a dyn Array, column: &str) -> Result<Self::Reader<'a>, RecordError> {
        PrimitiveReader::new(array, column)
    }

    fn builder(capacity: usize) -> Self::Builder {
        PrimitiveColumnBuilder::new(capacity)
    }
}

// ---------------------------------------------------------------------------------------------
// bool and String

/// Reads `bool` from a boolean array.
pub struct BoolReader<'a> {
    array: &'a BooleanArray,
    column: String,
}

impl FieldReader for BoolReader<'_> {
    type Value = bool;

    #[inline]
    fn is_null(&self, row: usize) -> bool {
        self.array.is_null(row)
    }

    #[inline]
    fn read_present(&self, row: usize) -> Result<bool, RecordError> {
        Ok(self.array.value(row))
    }

    fn column(&self) -> &str {
        &self.column
    }
}

/// Builds a boolean array.
pub struct BoolColumnBuilder(BooleanBuilder);

impl FieldBuilder for BoolColumnBuilder {
    type Value = bool;

    #[inline]
    fn append(&mut self, value: &bool) {
        self.0.append_value(*value);
    }

    #[inline]
    fn append_null(&mut self) {
        self.0.append_null();
    }

    fn finish(&mut self, _column: &str) -> Result<ArrayRef, RecordError> {
        Ok(Arc::new(self.0.finish()))
    }
}

impl RecordField for bool {
    type Reader<'a> = BoolReader<'a>;
    type Builder = BoolColumnBuilder;

    fn data_type() -> DataType {
        DataType::Boolean
    }

    fn reader<'a>(array: &'a dyn Array, column: &str) -> Result<BoolReader<'a>, RecordError> {
        Ok(BoolReader {
            array: downcast(array, column, &DataType::Boolean, |t| {
                *t == DataType::Boolean
            })?,
            column: column.to_owned(),
        })
    }

    fn builder(capacity: usize) -> BoolColumnBuilder {
        BoolColumnBuilder(BooleanBuilder::with_capacity(capacity))
    }
}

/// Reads `String` from a `Utf8`, `LargeUtf8` or `Utf8View` array; each value is copied into its
/// own allocation (a row owns its text).
pub struct StringReader<'a> {
    values: StringValues<'a>,
    nulls: Option<&'a NullBuffer>,
    column: String,
}

/// The string encodings a `String` field reads.
enum StringValues<'a> {
    Utf8(&'a StringArray),
    LargeUtf8(&'a LargeStringArray),
    Utf8View(&'a StringViewArray),
}

impl<'a> StringReader<'a> {
    fn new(array: &'a dyn Array, column: &str) -> Result<Self, RecordError> {
        let mismatch = || wrong_type(column, &DataType::Utf8, array.data_type());
        let any = array.as_any();
        let values = match array.data_type() {
            DataType::Utf8 => StringValues::Utf8(any.downcast_ref().ok_or_else(mismatch)?),
            DataType::LargeUtf8 => {
                StringValues::LargeUtf8(any.downcast_ref().ok_or_else(mismatch)?)
            }
            DataType::Utf8View => StringValues::Utf8View(any.downcast_ref().ok_or_else(mismatch)?),
            _ => return Err(mismatch()),
        };
        Ok(StringReader {
            values,
            nulls: array.nulls(),
            column: column.to_owned(),
        })
    }
}

impl FieldReader for StringReader<'_> {
    type Value = String;

    #[inline]
    fn is_null(&self, row: usize) -> bool {
        null_at(self.nulls, row)
    }

    #[inline]
    fn read_present(&self, row: usize) -> Result<String, RecordError> {
        let value = match &self.values {
            StringValues::Utf8(array) => array.value(row),
            StringValues::LargeUtf8(array) => array.value(row),
            StringValues::Utf8View(array) => array.value(row),
        };
        Ok(value.to_owned())
    }

    fn column(&self) -> &str {
        &self.column
    }
}

/// Builds a `Utf8` array.
pub struct StringColumnBuilder(StringBuilder);

impl FieldBuilder for StringColumnBuilder {
    type Value = String;

    #[inline]
    fn append(&mut self, value: &String) {
        self.0.append_value(value);
    }

    #[inline]
    fn append_null(&mut self) {
        self.0.append_null();
    }

    fn finish(&mut self, _column: &str) -> Result<ArrayRef, RecordError> {
        Ok(Arc::new(self.0.finish()))
    }
}

impl RecordField for String {
    type Reader<'a> = StringReader<'a>;
    type Builder = StringColumnBuilder;

    fn data_type() -> DataType {
        DataType::Utf8
    }

    fn reader<'a>(array: &'a dyn Array, column: &str) -> Result<StringReader<'a>, RecordError> {
        StringReader::new(array, column)
    }

    fn builder(capacity: usize) -> StringColumnBuilder {
        StringColumnBuilder(StringBuilder::with_capacity(capacity, 0))
    }
}

// ---------------------------------------------------------------------------------------------
// Option<T>

/// Reads `Option<T>`: a null is `None`.
pub struct OptionReader<R>(R);

impl<R: FieldReader> FieldReader for OptionReader<R> {
    type Value = Option<R::Value>;

    fn is_null(&self, _row: usize) -> bool {
        false
    }

    fn read_present(&self, row: usize) -> Result<Self::Value, RecordError> {
        if self.0.is_null(row) {
            Ok(None)
        } else {
            self.0.read_present(row).map(Some)
        }
    }

    fn column(&self) -> &str {
        self.0.column()
    }
}

/// Builds the array of an `Option<T>` field: `None` is a null.
pub struct OptionBuilder<B>(B);

impl<B: FieldBuilder> FieldBuilder for OptionBuilder<B> {
    type Value = Option<B::Value>;

    fn append(&mut self, value: &Self::Value) {
        match value {
            Some(value) => self.0.append(value),
            None => self.0.append_null(),
        }
    }

    fn append_null(&mut self) {
        self.0.append_null();
    }

    fn finish(&mut self, column: &str) -> Result<ArrayRef, RecordError> {
        self.0.finish(column)
    }
}

impl<T: RecordField> RecordField for Option<T> {
    type Reader<'a> = OptionReader<T::Reader<'a>>;
    type Builder = OptionBuilder<T::Builder>;

    fn data_type() -> DataType {
        T::data_type()
    }

    fn nullable() -> bool {
        true
    }

    fn reader<'a>(array: &'a dyn Array, column: &str) -> Result<Self::Reader<'a>, RecordError> {
        T::reader(array, column).map(OptionReader)
    }

    fn builder(capacity: usize) -> Self::Builder {
        OptionBuilder(T::builder(capacity))
    }
}

// ---------------------------------------------------------------------------------------------
// Vec<T>

/// Reads `Vec<T>` from a `List` array; one allocation per list.
pub struct ListReader<'a, R> {
    offsets: &'a [i32],
    nulls: Option<&'a NullBuffer>,
    items: R,
    column: String,
}

impl<R: FieldReader> FieldReader for ListReader<'_, R> {
    type Value = Vec<R::Value>;

    fn is_null(&self, row: usize) -> bool {
        null_at(self.nulls, row)
    }

    fn read_present(&self, row: usize) -> Result<Self::Value, RecordError> {
        // Arrow validated the offsets when the array was built: non-negative and increasing.
        let start = self.offsets[row] as usize;
        let end = self.offsets[row + 1] as usize;
        let mut items = Vec::with_capacity(end - start);
        for item in start..end {
            let value = self.items.read(item).map_err(|error| match error {
                RecordError::NullValue { column, .. } => RecordError::NullValue {
                    // The item reader's path is this column followed by "[]": fill in the index.
                    column: format!(
                        "{}[{}]{}",
                        self.column,
                        item - start,
                        column.get(self.column.len() + 2..).unwrap_or_default()
                    ),
                    row,
                },
                other => other,
            })?;
            items.push(value);
        }
        Ok(items)
    }

    fn column(&self) -> &str {
        &self.column
    }
}

/// Builds a `List` array.
pub struct ListColumnBuilder<B> {
    item_field: FieldRef,
    offsets: Vec<i32>,
    nulls: NullBufferBuilder,
    items: B,
    overflowed: bool,
}

impl<B: FieldBuilder> FieldBuilder for ListColumnBuilder<B> {
    type Value = Vec<B::Value>;

    fn append(&mut self, value: &Self::Value) {
        for item in value {
            self.items.append(item);
        }
        let last = self.offsets.last().copied().unwrap_or(0);
        let next = i32::try_from(value.len())
            .ok()
            .and_then(|len| last.checked_add(len));
        match next {
            Some(next) => self.offsets.push(next),
            None => {
                self.overflowed = true;
                self.offsets.push(last);
            }
        }
        self.nulls.append_non_null();
    }

    fn append_null(&mut self) {
        let last = self.offsets.last().copied().unwrap_or(0);
        self.offsets.push(last);
        self.nulls.append_null();
    }

    fn finish(&mut self, column: &str) -> Result<ArrayRef, RecordError> {
        if std::mem::take(&mut self.overflowed) {
            return Err(RecordError::InvalidValue {
                column: column.to_owned(),
                message: "a list column holds at most 2^31 - 1 elements per batch; write the records in smaller batches".to_owned(),
            });
        }
        let items = self.items.finish(&format!("{column}[]"))?;
        let offsets = std::mem::replace(&mut self.offsets, vec![0]);
        let list = ListArray::try_new(
            Arc::clone(&self.item_field),
            OffsetBuffer::new(ScalarBuffer::from(offsets)),
            items,
            self.nulls.finish(),
        )?;
        Ok(Arc::new(list))
    }
}

impl<T: RecordField> RecordField for Vec<T> {
    type Reader<'a> = ListReader<'a, T::Reader<'a>>;
    type Builder = ListColumnBuilder<T::Builder>;

    fn data_type() -> DataType {
        DataType::List(list_item_field::<T>())
    }

    fn reader<'a>(array: &'a dyn Array, column: &str) -> Result<Self::Reader<'a>, RecordError> {
        let list: &ListArray = downcast(array, column, &Self::data_type(), |t| {
            matches!(t, DataType::List(_))
        })?;
        Ok(ListReader {
            offsets: list.value_offsets(),
            nulls: list.nulls(),
            items: T::reader(list.values().as_ref(), &format!("{column}[]"))?,
            column: column.to_owned(),
        })
    }

    fn builder(capacity: usize) -> Self::Builder {
        let mut offsets = Vec::with_capacity(capacity + 1);
        offsets.push(0);
        ListColumnBuilder {
            item_field: list_item_field::<T>(),
            offsets,
            nulls: NullBufferBuilder::new(capacity),
            items: T::builder(capacity),
            overflowed: false,
        }
    }
}

fn list_item_field<T: RecordField>() -> FieldRef {
    FieldRef::new(Field::new_list_field(T::data_type(), T::nullable()))
}

// ---------------------------------------------------------------------------------------------
// Nested records

/// Reads a nested record from a `Struct` array, its children matched by name.
pub struct StructReader<'a, T: Record> {
    nulls: Option<&'a NullBuffer>,
    readers: T::Readers<'a>,
    column: String,
}

impl<'a, T: Record> StructReader<'a, T> {
    /// A reader over the struct column `array`.
    pub fn new(array: &'a dyn Array, column: &str) -> Result<Self, RecordError> {
        let array: &StructArray = downcast(array, column, &struct_data_type::<T>(), |t| {
            matches!(t, DataType::Struct(_))
        })?;
        Ok(StructReader {
            nulls: array.nulls(),
            readers: T::readers(&Columns::of_struct(array, column))?,
            column: column.to_owned(),
        })
    }
}

impl<T: Record> FieldReader for StructReader<'_, T> {
    type Value = T;

    fn is_null(&self, row: usize) -> bool {
        null_at(self.nulls, row)
    }

    fn read_present(&self, row: usize) -> Result<T, RecordError> {
        T::read_row(&self.readers, row)
    }

    fn column(&self) -> &str {
        &self.column
    }
}

/// Builds a `Struct` array of a nested record.
pub struct StructColumnBuilder<T: Record> {
    builders: T::Builders,
    nulls: NullBufferBuilder,
    len: usize,
}

impl<T: Record> StructColumnBuilder<T> {
    /// An empty builder with room for `capacity` records.
    pub fn new(capacity: usize) -> Self {
        StructColumnBuilder {
            builders: T::builders(capacity),
            nulls: NullBufferBuilder::new(capacity),
            len: 0,
        }
    }
}

impl<T: Record> FieldBuilder for StructColumnBuilder<T> {
    type Value = T;

    fn append(&mut self, value: &T) {
        T::append_row(&mut self.builders, value);
        self.nulls.append_non_null();
        self.len += 1;
    }

    fn append_null(&mut self) {
        T::append_null_row(&mut self.builders);
        self.nulls.append_null();
        self.len += 1;
    }

    fn finish(&mut self, _column: &str) -> Result<ArrayRef, RecordError> {
        let columns = T::finish_columns(&mut self.builders)?;
        let len = std::mem::take(&mut self.len);
        let array =
            StructArray::try_new_with_length(T::fields(), columns, self.nulls.finish(), len)?;
        Ok(Arc::new(array))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow::array::{Int64Array, StringArray};

    fn batch(columns: Vec<(&str, ArrayRef)>) -> RecordBatch {
        RecordBatch::try_from_iter(columns).expect("valid test batch")
    }

    #[test]
    fn primitive_reader_reads_values_and_reports_nulls_with_column_and_row() {
        let batch = batch(vec![(
            "price",
            Arc::new(Int64Array::from(vec![Some(5), None])) as ArrayRef,
        )]);
        let columns = Columns::of_batch(&batch);
        let reader = columns.field::<i64>("price").expect("column exists");
        assert_eq!(reader.read(0).expect("not null"), 5);
        let error = reader.read(1).expect_err("null");
        assert_eq!(
            error.to_string(),
            "column 'price' is null at row 1, but its record field is not an Option; make the field Option<_> or filter the nulls out first"
        );
        let optional = columns
            .field::<Option<i64>>("price")
            .expect("column exists");
        assert_eq!(optional.read(1).expect("nullable"), None);
    }

    #[test]
    fn missing_column_lists_the_available_ones() {
        let batch = batch(vec![
            ("a", Arc::new(Int64Array::from(vec![1])) as ArrayRef),
            ("b", Arc::new(Int64Array::from(vec![1])) as ArrayRef),
        ]);
        let error = Columns::of_batch(&batch)
            .field::<i64>("price")
            .err()
            .expect("missing");
        assert_eq!(
            error.to_string(),
            "column 'price' not found; the input has columns [a, b]. Add the column to the input or map the field to an existing one with #[weir(rename = \"...\")]"
        );
    }

    #[test]
    fn columns_match_exactly_first_then_ignoring_case_if_unambiguous() {
        let batch = batch(vec![
            ("Price", Arc::new(Int64Array::from(vec![1])) as ArrayRef),
            ("price", Arc::new(Int64Array::from(vec![2])) as ArrayRef),
            ("BIDDER", Arc::new(Int64Array::from(vec![3])) as ArrayRef),
            ("Url", Arc::new(Int64Array::from(vec![4])) as ArrayRef),
            ("URL", Arc::new(Int64Array::from(vec![5])) as ArrayRef),
        ]);
        let columns = Columns::of_batch(&batch);
        let value = |name: &str| columns.field::<i64>(name).map(|reader| reader.read(0));
        assert_eq!(value("price").expect("exact").expect("valid"), 2);
        assert_eq!(value("bidder").expect("one match").expect("valid"), 3);
        assert!(matches!(
            value("url"),
            Err(RecordError::MissingColumn { .. })
        ));
    }

    #[test]
    fn wrong_type_names_expected_and_found() {
        let batch = batch(vec![(
            "price",
            Arc::new(StringArray::from(vec!["x"])) as ArrayRef,
        )]);
        let error = Columns::of_batch(&batch)
            .field::<i64>("price")
            .err()
            .expect("wrong type");
        assert_eq!(
            error.to_string(),
            "column 'price' has type Utf8, but the record field needs Int64"
        );
    }

    #[test]
    fn strings_read_from_every_utf8_encoding() {
        let arrays: [ArrayRef; 3] = [
            Arc::new(StringArray::from(vec![Some("a"), None])),
            Arc::new(arrow::array::LargeStringArray::from(vec![Some("a"), None])),
            Arc::new(arrow::array::StringViewArray::from(vec![Some("a"), None])),
        ];
        for array in arrays {
            let reader = <Option<String> as RecordField>::reader(array.as_ref(), "s")
                .expect("a string encoding");
            assert_eq!(reader.read(0).expect("valid"), Some("a".to_owned()));
            assert_eq!(reader.read(1).expect("valid"), None);
        }
    }

    #[test]
    fn timestamp_accepts_any_time_zone_but_only_microseconds() {
        assert!(Timestamp::accepts(&DataType::Timestamp(
            TimeUnit::Microsecond,
            None
        )));
        assert!(Timestamp::accepts(&DataType::Timestamp(
            TimeUnit::Microsecond,
            Some("+02:00".into())
        )));
        assert!(!Timestamp::accepts(&DataType::Timestamp(
            TimeUnit::Millisecond,
            Some("UTC".into())
        )));
    }

    #[test]
    fn decimal_out_of_precision_fails_to_build() {
        let mut builder = <Decimal<3, 1> as RecordField>::builder(2);
        builder.append(&Decimal::from_unscaled(999));
        builder.append(&Decimal::from_unscaled(1000));
        let error = builder.finish("amount").expect_err("too many digits");
        assert!(
            error
                .to_string()
                .starts_with("cannot build column 'amount': "),
            "{error}"
        );
    }

    #[test]
    fn list_item_null_reports_the_position_and_the_row() {
        let mut builder = <Vec<Option<i64>> as RecordField>::builder(2);
        builder.append(&vec![Some(1)]);
        builder.append(&vec![Some(2), None]);
        let array = builder.finish("tags").expect("valid list");
        let reader = <Vec<i64> as RecordField>::reader(array.as_ref(), "tags").expect("list");
        assert_eq!(reader.read(0).expect("no nulls"), vec![1]);
        let error = reader.read(1).expect_err("item null");
        assert!(
            error
                .to_string()
                .starts_with("column 'tags[1]' is null at row 1"),
            "{error}"
        );
    }

    #[test]
    fn value_types_display_readably() {
        assert_eq!(
            Timestamp::from_micros(1_500_000).to_string(),
            "1970-01-01T00:00:01.500000Z"
        );
        assert_eq!(
            Date::from_ymd(2026, 11, 24).map(|d| d.to_string()),
            Some("2026-11-24".to_owned())
        );
        assert_eq!(Date::from_ymd(1970, 1, 2), Some(Date::from_days(1)));
        assert_eq!(Decimal::<10, 2>::from_unscaled(-1234).to_string(), "-12.34");
        assert_eq!(Timestamp::from_millis(i64::MAX), None);
    }
}
