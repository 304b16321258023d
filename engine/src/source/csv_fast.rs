//! The fast CSV decoder: splits a whole file's bytes into records on all cores (quote-aware) and
//! decodes only the wanted columns straight from the bytes into Arrow arrays.
//!
//! It owns tokenizing and value decoding for well-formed files only. It gives exactly the
//! values of the per-record path in `readers.rs` (`split_csv` + `convert_strings`), which stays
//! the reference: whenever a record or value is anything but plainly well-formed (wrong field
//! count, unterminated quote, text after a closing quote, a value that does not convert,
//! invalid UTF-8 in a decoded text column), [`decode_csv`] returns `None` and the caller takes
//! the per-record path, which applies the parse mode and the corrupt-record column. It must not
//! apply parse modes or produce corrupt-record values itself.
//!
//! Record syntax, as `split_csv` reads it: a field that starts with the quote character is
//! quoted; inside it a doubled quote, or the escape character followed by a quote, stands for a
//! quote, and separators and newlines are data. A quote anywhere else is data. A `\r` right
//! before the `\n` that ends a record is dropped; a blank line is no record; an empty field
//! (quoted or not) is null.
//!
//! Parallel split: the file is cut into chunks at line starts near equal byte offsets and every
//! chunk is parsed on its own thread from its cut. Each chunk reports where its last record
//! really ended (it reads past its cut until a record ends at or after the next cut). A cut that
//! was not a record boundary (it fell inside a quoted field holding a newline) shows up as a
//! mismatch with the previous chunk's end, and that chunk is parsed again from the true
//! boundary, so the result never depends on where the cuts fell.

use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::path::Path;
use std::sync::Arc;

use arrow::array::{
    Array, ArrayRef, BinaryBuilder, PrimitiveBuilder, RecordBatchOptions, StringArray,
    StringBuilder, new_null_array,
};
use arrow::compute::kernels::cast_utils::Parser;
use arrow::datatypes::{
    ArrowPrimitiveType, DataType, Date32Type, Field, Float32Type, Float64Type, Int8Type, Int16Type,
    Int32Type, Int64Type, Schema, SchemaRef, TimeUnit, UInt8Type, UInt16Type, UInt32Type,
    UInt64Type,
};
use arrow::record_batch::RecordBatch;
use memchr::{memchr, memchr2};

use super::readers::{
    BATCH_ROWS, ReaderOptions, TimestampFormat, convert_strings, timestamp_array,
};

/// The bytes that structure a CSV file: separator, quote and, when it differs from the quote,
/// the escape character.
#[derive(Clone, Copy, Debug)]
pub(super) struct CsvDialect {
    sep: u8,
    quote: u8,
    /// `None` when the escape character is the quote itself (only doubled quotes escape).
    escape: Option<u8>,
}

impl CsvDialect {
    /// The dialect for these options; `None` when a character is not ASCII or the combination
    /// is one the fast path does not read (separator equal to the quote, or a line break as
    /// separator or quote).
    pub(super) fn new(sep: char, quote: char, escape: char) -> Option<CsvDialect> {
        let ascii = |c: char| u8::try_from(c).ok().filter(u8::is_ascii);
        let (sep, quote, escape) = (ascii(sep)?, ascii(quote)?, ascii(escape)?);
        let line_break = |b: u8| b == b'\n' || b == b'\r';
        if sep == quote || line_break(sep) || line_break(quote) {
            return None;
        }
        Some(CsvDialect {
            sep,
            quote,
            escape: (escape != quote).then_some(escape),
        })
    }
}

/// What to decode from a file and how.
pub(super) struct CsvDecodePlan<'a> {
    /// Separator, quote and escape bytes.
    pub dialect: CsvDialect,
    /// Whether the file's first record is a header to skip.
    pub header: bool,
    /// The data columns (every schema column but the corrupt-record one), in file order.
    pub data_schema: &'a Schema,
    /// Data-column indices to output, in output order.
    pub output_columns: &'a [usize],
    /// Where to insert an all-null corrupt-record column in the output, if anywhere.
    pub corrupt_index: Option<usize>,
    /// The schema of the batches produced.
    pub output_schema: &'a SchemaRef,
    /// Reader options (`timestampFormat`, and what `convert_strings` needs).
    pub opts: &'a ReaderOptions,
}

/// How finely [`decode_csv`] splits a file for its threads.
#[derive(Clone, Copy, Debug)]
pub(super) struct CsvSplit {
    /// Number of chunks (one thread each) for a file large enough.
    pub chunks: usize,
    /// A file is split only into chunks of at least this many bytes.
    pub min_chunk_bytes: usize,
}

impl CsvSplit {
    /// One chunk per core, chunks of at least 1 MiB.
    pub(super) fn per_core() -> CsvSplit {
        CsvSplit {
            chunks: std::thread::available_parallelism().map_or(1, |n| n.get()),
            min_chunk_bytes: 1 << 20,
        }
    }
}

/// Decodes a whole CSV file into batches of `plan.output_schema`; `None` when any record is
/// not plainly well-formed or any decoded value does not convert (the caller then takes the
/// per-record path).
pub(super) fn decode_csv(
    bytes: &[u8],
    plan: &CsvDecodePlan<'_>,
    split: CsvSplit,
) -> Option<Vec<RecordBatch>> {
    let columns = ColumnSet::new(plan)?;
    let chunk_count = split
        .chunks
        .min(bytes.len() / split.min_chunk_bytes.max(1))
        .max(1);
    let cuts = cut_points(bytes, chunk_count);
    let parse = |i: usize, start: usize| {
        let stop = cuts.get(i + 1).copied().unwrap_or(bytes.len());
        ChunkParser::new(plan, &columns).parse(bytes, start, stop, i == 0 && plan.header)
    };
    let mut results: Vec<Option<ChunkOutput>> = if cuts.len() == 1 {
        vec![parse(0, 0)]
    } else {
        std::thread::scope(|scope| {
            let handles: Vec<_> = cuts
                .iter()
                .enumerate()
                .map(|(i, &start)| {
                    let parse = &parse;
                    scope.spawn(move || parse(i, start))
                })
                .collect();
            // A panicking chunk counts as one that could not be decoded.
            handles
                .into_iter()
                .map(|h| h.join().ok().flatten())
                .collect()
        })
    };
    // Chunk 0 starts at a true record boundary; each later one is trusted only when it
    // started where the previous chunk's last record ended.
    let mut out = Vec::new();
    let mut boundary = 0;
    for i in 0..results.len() {
        let chunk = match results[i].take() {
            Some(chunk) if chunk.start == boundary => chunk,
            _ if cuts[i] == boundary => return None,
            _ => parse(i, boundary)?,
        };
        boundary = chunk.end;
        out.extend(chunk.batches);
    }
    Some(out)
}

/// Reads a whole file with the byte ranges of `split`'s chunks read on their own threads, so
/// that copying from the page cache and faulting in the buffer run on all cores.
pub(super) fn read_file_parallel(path: &Path, split: CsvSplit) -> std::io::Result<Vec<u8>> {
    let mut file = File::open(path)?;
    let len = usize::try_from(file.metadata()?.len()).map_err(std::io::Error::other)?;
    let parts = split.chunks.min(len / split.min_chunk_bytes.max(1));
    if parts < 2 {
        let mut bytes = Vec::with_capacity(len);
        file.read_to_end(&mut bytes)?;
        return Ok(bytes);
    }
    let mut bytes = vec![0u8; len];
    let part_len = len.div_ceil(parts);
    std::thread::scope(|scope| {
        let handles: Vec<_> = bytes
            .chunks_mut(part_len)
            .enumerate()
            .map(|(i, part)| {
                scope.spawn(move || -> std::io::Result<()> {
                    let mut file = File::open(path)?;
                    file.seek(SeekFrom::Start((i * part_len) as u64))?;
                    file.read_exact(part)
                })
            })
            .collect();
        handles.into_iter().try_for_each(|h| {
            h.join()
                .map_err(|_| std::io::Error::other("a file reading thread panicked"))?
        })
    })?;
    // Whatever was appended after the length was taken.
    file.seek(SeekFrom::Start(len as u64))?;
    file.read_to_end(&mut bytes)?;
    Ok(bytes)
}

/// Chunk start offsets: 0, then the line starts at or after each equal share of the file.
fn cut_points(bytes: &[u8], chunks: usize) -> Vec<usize> {
    let mut cuts = vec![0];
    for i in 1..chunks {
        let target = (bytes.len() / chunks * i).max(cuts[cuts.len() - 1]);
        match memchr(b'\n', &bytes[target..]) {
            Some(off) if target + off + 1 < bytes.len() => cuts.push(target + off + 1),
            _ => break,
        }
    }
    cuts.dedup();
    cuts
}

/// One chunk's batches and the record boundaries it started and ended at.
struct ChunkOutput {
    start: usize,
    end: usize,
    batches: Vec<RecordBatch>,
}

/// The decoded columns: which record fields are decoded and into which output columns.
struct ColumnSet<'a> {
    /// Per record field: the index of its decoder, when the field is decoded.
    decoder_of_field: Vec<Option<usize>>,
    /// Per decoder: how to decode.
    kinds: Vec<ColumnKind<'a>>,
    /// Per output data column: its decoder.
    decoder_of_output: Vec<usize>,
}

impl<'a> ColumnSet<'a> {
    fn new(plan: &CsvDecodePlan<'a>) -> Option<ColumnSet<'a>> {
        let field_count = plan.data_schema.fields().len();
        let mut decoder_of_field = vec![None; field_count];
        let mut kinds = Vec::new();
        let mut decoder_of_output = Vec::with_capacity(plan.output_columns.len());
        for &col in plan.output_columns {
            let slot = decoder_of_field.get_mut(col)?;
            let decoder = match *slot {
                Some(d) => d,
                None => {
                    kinds.push(ColumnKind::new(plan.data_schema.field(col), plan.opts));
                    *slot = Some(kinds.len() - 1);
                    kinds.len() - 1
                }
            };
            decoder_of_output.push(decoder);
        }
        Some(ColumnSet {
            decoder_of_field,
            kinds,
            decoder_of_output,
        })
    }
}

/// How one column is decoded.
enum ColumnKind<'a> {
    /// Text as is (validated UTF-8).
    Utf8,
    /// A type whose text cast is Arrow's `Parser` on the trimmed value.
    Parsed(DataType),
    /// A timestamp read with the `timestampFormat` option.
    FormattedTimestamp {
        format: &'a TimestampFormat,
        unit: TimeUnit,
        tz: Option<Arc<str>>,
    },
    /// Anything else: collected as text and converted like the per-record path does.
    Converted(&'a Field, &'a ReaderOptions),
}

impl<'a> ColumnKind<'a> {
    fn new(field: &'a Field, opts: &'a ReaderOptions) -> ColumnKind<'a> {
        match (field.data_type(), &opts.timestamp_format) {
            (DataType::Utf8, _) => ColumnKind::Utf8,
            (DataType::Timestamp(unit, tz), Some(format)) => ColumnKind::FormattedTimestamp {
                format,
                unit: *unit,
                tz: tz.clone(),
            },
            (
                dt @ (DataType::Int8
                | DataType::Int16
                | DataType::Int32
                | DataType::Int64
                | DataType::UInt8
                | DataType::UInt16
                | DataType::UInt32
                | DataType::UInt64
                | DataType::Float32
                | DataType::Float64
                | DataType::Date32),
                _,
            ) => ColumnKind::Parsed(dt.clone()),
            _ => ColumnKind::Converted(field, opts),
        }
    }

    fn decoder(&self) -> Box<dyn ColumnDecoder + 'a> {
        match self {
            ColumnKind::Utf8 => Box::new(Utf8Column(BinaryBuilder::new())),
            ColumnKind::Parsed(dt) => match dt {
                DataType::Int8 => Box::new(ParsedColumn::<Int8Type>::default()),
                DataType::Int16 => Box::new(ParsedColumn::<Int16Type>::default()),
                DataType::Int32 => Box::new(ParsedColumn::<Int32Type>::default()),
                DataType::Int64 => Box::new(Int64Column::default()),
                DataType::UInt8 => Box::new(ParsedColumn::<UInt8Type>::default()),
                DataType::UInt16 => Box::new(ParsedColumn::<UInt16Type>::default()),
                DataType::UInt32 => Box::new(ParsedColumn::<UInt32Type>::default()),
                DataType::UInt64 => Box::new(ParsedColumn::<UInt64Type>::default()),
                DataType::Float32 => Box::new(ParsedColumn::<Float32Type>::default()),
                DataType::Float64 => Box::new(ParsedColumn::<Float64Type>::default()),
                _ => Box::new(ParsedColumn::<Date32Type>::default()),
            },
            ColumnKind::FormattedTimestamp { format, unit, tz } => {
                Box::new(FormattedTimestampColumn {
                    format: *format,
                    unit: *unit,
                    tz: tz.clone(),
                    micros: Vec::new(),
                })
            }
            ColumnKind::Converted(field, opts) => Box::new(ConvertedColumn {
                field: *field,
                opts: *opts,
                text: StringBuilder::new(),
            }),
        }
    }
}

/// Builds one column from field bytes. Values are pushed without their quotes and escapes;
/// an empty field is pushed as null.
trait ColumnDecoder {
    /// Appends a non-empty value; `false` when it does not convert exactly.
    fn push(&mut self, value: &[u8]) -> bool;
    /// Appends a null (an empty field).
    fn push_null(&mut self);
    /// The column of everything pushed since the last call; `None` when it does not convert.
    fn finish(&mut self) -> Option<ArrayRef>;
}

/// A string column: bytes are collected as binary and validated as UTF-8 once per batch.
struct Utf8Column(BinaryBuilder);

impl ColumnDecoder for Utf8Column {
    fn push(&mut self, value: &[u8]) -> bool {
        self.0.append_value(value);
        true
    }

    fn push_null(&mut self) {
        self.0.append_null();
    }

    fn finish(&mut self) -> Option<ArrayRef> {
        let (offsets, values, nulls) = self.0.finish().into_parts();
        Some(Arc::new(StringArray::try_new(offsets, values, nulls).ok()?))
    }
}

/// A column whose per-record conversion is `P::parse` of the trimmed text (what Arrow's
/// string cast does).
struct ParsedColumn<P: ArrowPrimitiveType>(PrimitiveBuilder<P>);

impl<P: ArrowPrimitiveType> Default for ParsedColumn<P> {
    fn default() -> Self {
        ParsedColumn(PrimitiveBuilder::new())
    }
}

impl<P: ArrowPrimitiveType + Parser> ColumnDecoder for ParsedColumn<P> {
    fn push(&mut self, value: &[u8]) -> bool {
        match std::str::from_utf8(value)
            .ok()
            .and_then(|s| P::parse(s.trim()))
        {
            Some(v) => {
                self.0.append_value(v);
                true
            }
            None => false,
        }
    }

    fn push_null(&mut self) {
        self.0.append_null();
    }

    fn finish(&mut self) -> Option<ArrayRef> {
        Some(Arc::new(self.0.finish()))
    }
}

/// A BIGINT column: plain decimal digits with an optional minus sign are read directly,
/// anything else through Arrow's parser like [`ParsedColumn`].
#[derive(Default)]
struct Int64Column(ParsedColumn<Int64Type>);

impl ColumnDecoder for Int64Column {
    fn push(&mut self, value: &[u8]) -> bool {
        match plain_i64(value) {
            Some(v) => {
                self.0.0.append_value(v);
                true
            }
            None => self.0.push(value),
        }
    }

    fn push_null(&mut self) {
        self.0.push_null();
    }

    fn finish(&mut self) -> Option<ArrayRef> {
        self.0.finish()
    }
}

/// `-?[0-9]{1,18}` as an i64 (18 digits cannot overflow); `None` for any other text.
fn plain_i64(value: &[u8]) -> Option<i64> {
    let (negative, digits) = match value.split_first() {
        Some((b'-', rest)) => (true, rest),
        _ => (false, value),
    };
    if digits.is_empty() || digits.len() > 18 {
        return None;
    }
    let mut n: i64 = 0;
    for &d in digits {
        let digit = d.wrapping_sub(b'0');
        if digit > 9 {
            return None;
        }
        n = n * 10 + i64::from(digit);
    }
    Some(if negative { -n } else { n })
}

/// A timestamp column read with `timestampFormat`, converted exactly as the per-record path
/// does (`TimestampFormat::parse_micros`, then `timestamp_array`).
struct FormattedTimestampColumn<'a> {
    format: &'a TimestampFormat,
    unit: TimeUnit,
    tz: Option<Arc<str>>,
    micros: Vec<Option<i64>>,
}

impl ColumnDecoder for FormattedTimestampColumn<'_> {
    fn push(&mut self, value: &[u8]) -> bool {
        match self.format.parse_micros_bytes(value) {
            Some(m) => {
                self.micros.push(Some(m));
                true
            }
            None => false,
        }
    }

    fn push_null(&mut self) {
        self.micros.push(None);
    }

    fn finish(&mut self) -> Option<ArrayRef> {
        let micros = std::mem::take(&mut self.micros);
        let array = timestamp_array(&micros, self.unit, self.tz.clone());
        // A value out of the unit's range became null: the per-record path calls it malformed.
        let nulls = micros.iter().filter(|m| m.is_none()).count();
        (array.null_count() == nulls).then_some(array)
    }
}

/// Any other type: the values are collected as text and converted by `convert_strings`, the
/// per-record path's own conversion.
struct ConvertedColumn<'a> {
    field: &'a Field,
    opts: &'a ReaderOptions,
    text: StringBuilder,
}

impl ColumnDecoder for ConvertedColumn<'_> {
    fn push(&mut self, value: &[u8]) -> bool {
        match std::str::from_utf8(value) {
            Ok(s) => {
                self.text.append_value(s);
                true
            }
            Err(_) => false,
        }
    }

    fn push_null(&mut self) {
        self.text.append_null();
    }

    fn finish(&mut self) -> Option<ArrayRef> {
        let text = self.text.finish();
        let (converted, failed) = convert_strings(&text, self.field, self.opts).ok()?;
        (!failed.contains(&true)).then_some(converted)
    }
}

/// Where a field's value is after tokenizing.
#[derive(Clone, Copy)]
enum FieldValue {
    /// `bytes[start..end]` of the file.
    Input(usize, usize),
    /// The chunk's unescape buffer (the field had doubled or escaped quotes).
    Unescaped,
}

/// Parses the records of one chunk into batches.
struct ChunkParser<'p, 'a> {
    plan: &'p CsvDecodePlan<'a>,
    columns: &'p ColumnSet<'a>,
    decoders: Vec<Box<dyn ColumnDecoder + 'a>>,
    rows: usize,
    batches: Vec<RecordBatch>,
    unescaped: Vec<u8>,
}

impl<'p, 'a> ChunkParser<'p, 'a> {
    fn new(plan: &'p CsvDecodePlan<'a>, columns: &'p ColumnSet<'a>) -> Self {
        ChunkParser {
            plan,
            columns,
            decoders: columns.kinds.iter().map(ColumnKind::decoder).collect(),
            rows: 0,
            batches: Vec::new(),
            unescaped: Vec::new(),
        }
    }

    /// Parses the records that start in `start..stop` (`start` being taken as a record
    /// boundary); the last one may run past `stop`. `skip_header` skips the first record.
    fn parse(
        mut self,
        bytes: &[u8],
        start: usize,
        stop: usize,
        mut skip_header: bool,
    ) -> Option<ChunkOutput> {
        let mut pos = start;
        while pos < stop {
            // A blank line is no record.
            if bytes[pos] == b'\n' {
                pos += 1;
                continue;
            }
            if bytes[pos] == b'\r' && bytes.get(pos + 1) == Some(&b'\n') {
                pos += 2;
                continue;
            }
            pos = self.record(bytes, pos, !skip_header)?;
            if !skip_header {
                self.rows += 1;
                if self.rows == BATCH_ROWS {
                    self.flush()?;
                }
            }
            skip_header = false;
        }
        if self.rows > 0 {
            self.flush()?;
        }
        Some(ChunkOutput {
            start,
            end: pos,
            batches: self.batches,
        })
    }

    /// Tokenizes the record at `pos` and, when `decode`, pushes its decoded fields. Returns
    /// where the next record starts; `None` when the record is not plainly well-formed.
    fn record(&mut self, bytes: &[u8], mut pos: usize, decode: bool) -> Option<usize> {
        let expected = self.columns.decoder_of_field.len();
        let mut field = 0;
        loop {
            if decode && field >= expected {
                return None;
            }
            let (value, next, record_ends) = self.field(bytes, pos)?;
            if decode && let Some(d) = self.columns.decoder_of_field[field] {
                let value = match value {
                    FieldValue::Input(a, b) => &bytes[a..b],
                    FieldValue::Unescaped => &self.unescaped[..],
                };
                let decoder = &mut self.decoders[d];
                if value.is_empty() {
                    decoder.push_null();
                } else if !decoder.push(value) {
                    return None;
                }
            }
            field += 1;
            pos = next;
            if record_ends {
                break;
            }
        }
        (!decode || field == expected).then_some(pos)
    }

    /// Tokenizes the field at `pos`: its value, where the next field or record starts, and
    /// whether the record ends with it. `None` for an unterminated quoted field or text after
    /// a closing quote.
    fn field(&mut self, bytes: &[u8], pos: usize) -> Option<(FieldValue, usize, bool)> {
        let CsvDialect { sep, quote, escape } = self.plan.dialect;
        if bytes.get(pos) != Some(&quote) {
            return Some(match memchr2(sep, b'\n', &bytes[pos..]) {
                Some(off) if bytes[pos + off] == sep => {
                    (FieldValue::Input(pos, pos + off), pos + off + 1, false)
                }
                Some(off) => {
                    let newline = pos + off;
                    let end = if newline > pos && bytes[newline - 1] == b'\r' {
                        newline - 1
                    } else {
                        newline
                    };
                    (FieldValue::Input(pos, end), newline + 1, true)
                }
                None => (FieldValue::Input(pos, bytes.len()), bytes.len(), true),
            });
        }
        let content = pos + 1;
        let mut segment = content;
        let mut search = content;
        let mut unescaped = false;
        let closing = loop {
            let rest = &bytes[search..];
            let at = search
                + match escape {
                    Some(e) => memchr2(quote, e, rest)?,
                    None => memchr(quote, rest)?,
                };
            let quote_follows = bytes.get(at + 1) == Some(&quote);
            if bytes[at] == quote && !quote_follows {
                break at;
            }
            if !quote_follows {
                // An escape character not before a quote is data.
                search = at + 1;
                continue;
            }
            if !unescaped {
                self.unescaped.clear();
                unescaped = true;
            }
            // A doubled quote keeps its first byte; an escape before a quote becomes the quote.
            self.unescaped.extend_from_slice(&bytes[segment..at]);
            self.unescaped.push(quote);
            segment = at + 2;
            search = at + 2;
        };
        let value = if unescaped {
            self.unescaped.extend_from_slice(&bytes[segment..closing]);
            FieldValue::Unescaped
        } else {
            FieldValue::Input(content, closing)
        };
        let after = closing + 1;
        match bytes.get(after) {
            None => Some((value, after, true)),
            Some(&b) if b == sep => Some((value, after + 1, false)),
            Some(b'\n') => Some((value, after + 1, true)),
            Some(b'\r') if bytes.get(after + 1) == Some(&b'\n') => Some((value, after + 2, true)),
            Some(_) => None,
        }
    }

    /// Turns the decoded rows into a batch.
    fn flush(&mut self) -> Option<()> {
        let decoded: Vec<ArrayRef> = self
            .decoders
            .iter_mut()
            .map(|d| d.finish())
            .collect::<Option<_>>()?;
        let mut columns: Vec<ArrayRef> = self
            .columns
            .decoder_of_output
            .iter()
            .map(|&d| decoded[d].clone())
            .collect();
        if let Some(i) = self.plan.corrupt_index {
            columns.insert(i, new_null_array(&DataType::Utf8, self.rows));
        }
        let batch = RecordBatch::try_new_with_options(
            self.plan.output_schema.clone(),
            columns,
            &RecordBatchOptions::new().with_row_count(Some(self.rows)),
        )
        .ok()?;
        self.batches.push(batch);
        self.rows = 0;
        Some(())
    }
}
