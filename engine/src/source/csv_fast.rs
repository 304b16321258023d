//! The fast CSV decoder: splits a file into records on all cores (quote-aware) and decodes only
//! the wanted columns straight from the bytes into Arrow arrays.
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
//! Parallel split: the file is cut into chunks at line starts near equal byte offsets, and
//! every chunk is read (in blocks of [`CsvSplit::block_bytes`], so the bytes being parsed stay
//! in cache) and parsed on its own thread from its cut, reading past the next cut until its
//! last record ends. A cut is trusted only if it is where the previous chunk's last record
//! ended and the header, if any, was met before it; otherwise (the cut fell inside a quoted
//! field holding a newline, or before the header) that chunk is parsed again from the true
//! boundary, so the result never depends on where the cuts fell.
//!
//! Not handled here (the per-record path reads these): non-ASCII separator, quote or escape
//! characters; a separator equal to the quote; malformed records of any kind; text after a
//! closing quote (`"a"b`).

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
    BATCH_ROWS, DayCache, ReaderOptions, TimestampFormat, convert_strings, timestamp_array,
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
    /// Bytes each chunk's thread reads from the file at a time.
    pub block_bytes: usize,
}

impl CsvSplit {
    /// One chunk per core, chunks of at least 1 MiB, read in blocks of 1 MiB (the bytes being
    /// parsed stay in cache).
    pub(super) fn per_core() -> CsvSplit {
        CsvSplit {
            chunks: std::thread::available_parallelism().map_or(1, |n| n.get()),
            min_chunk_bytes: 1 << 20,
            block_bytes: 1 << 20,
        }
    }
}

/// Decodes the CSV file at `path` into batches of `plan.output_schema`; `None` when any record
/// is not plainly well-formed, any decoded value does not convert, or the file cannot be read
/// (the caller then takes the per-record path, which reports I/O errors).
pub(super) fn decode_csv(
    path: &Path,
    plan: &CsvDecodePlan<'_>,
    split: CsvSplit,
) -> Option<Vec<RecordBatch>> {
    let columns = ColumnSet::new(plan)?;
    let len = usize::try_from(std::fs::metadata(path).ok()?.len()).ok()?;
    let chunk_count = split.chunks.min(len / split.min_chunk_bytes.max(1)).max(1);
    let cuts = cut_points(path, len, chunk_count).ok()?;
    let parse = |i: usize, start: usize, skip_header: bool| {
        let stop = cuts.get(i + 1).copied().unwrap_or(usize::MAX);
        ChunkParser::new(plan, &columns).parse(path, start, stop, skip_header, split)
    };
    let mut results: Vec<Option<ChunkOutput>> = if cuts.len() == 1 {
        vec![parse(0, 0, plan.header)]
    } else {
        std::thread::scope(|scope| {
            let handles: Vec<_> = cuts
                .iter()
                .enumerate()
                .map(|(i, &start)| {
                    let parse = &parse;
                    scope.spawn(move || parse(i, start, i == 0 && plan.header))
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
    // started where the previous chunk's last record ended and the header (the file's first
    // record) was already met before it, else it is parsed again from that boundary.
    let mut out = Vec::new();
    let mut boundary = 0;
    let mut header_pending = plan.header;
    for i in 0..results.len() {
        let trusted = cuts[i] == boundary && (i == 0 || !header_pending);
        let chunk = match results[i].take() {
            Some(chunk) if trusted => chunk,
            _ if trusted => return None,
            _ => parse(i, boundary, header_pending)?,
        };
        boundary = chunk.end;
        header_pending &= !chunk.saw_record;
        out.extend(chunk.batches);
    }
    Some(out)
}

/// Chunk start offsets: 0, then the line start after each equal share of the file's `len`
/// bytes (fewer when lines are longer than a share).
fn cut_points(path: &Path, len: usize, chunks: usize) -> std::io::Result<Vec<usize>> {
    let mut cuts = vec![0];
    if chunks < 2 {
        return Ok(cuts);
    }
    let mut file = File::open(path)?;
    let mut window = vec![0u8; 64 << 10];
    for i in 1..chunks {
        let mut at = (len / chunks * i).max(cuts[cuts.len() - 1]);
        file.seek(SeekFrom::Start(at as u64))?;
        let line_start = loop {
            let n = file.read(&mut window)?;
            if n == 0 {
                break None;
            }
            if let Some(off) = memchr(b'\n', &window[..n]) {
                break Some(at + off + 1);
            }
            at += n;
        };
        match line_start {
            Some(cut) if cut < len => cuts.push(cut),
            _ => break,
        }
    }
    Ok(cuts)
}

/// One chunk's batches and the record boundary (file offset) it ended at.
struct ChunkOutput {
    end: usize,
    /// Whether the chunk held any record (blank lines are none), the header included.
    saw_record: bool,
    batches: Vec<RecordBatch>,
}

/// The decoded columns: which record fields are decoded and into which output columns.
struct ColumnSet<'a> {
    /// Fields per record.
    field_count: usize,
    /// Per decoder: the record field it decodes and how.
    decoded: Vec<(usize, ColumnKind<'a>)>,
    /// Per output data column: its decoder.
    decoder_of_output: Vec<usize>,
}

impl<'a> ColumnSet<'a> {
    fn new(plan: &CsvDecodePlan<'a>) -> Option<ColumnSet<'a>> {
        let field_count = plan.data_schema.fields().len();
        let mut decoded: Vec<(usize, ColumnKind<'a>)> = Vec::new();
        let mut decoder_of_output = Vec::with_capacity(plan.output_columns.len());
        for &col in plan.output_columns {
            if col >= field_count {
                return None;
            }
            let decoder = match decoded.iter().position(|(field, _)| *field == col) {
                Some(d) => d,
                None => {
                    let kind = ColumnKind::new(plan.data_schema.field(col), plan.opts);
                    decoded.push((col, kind));
                    decoded.len() - 1
                }
            };
            decoder_of_output.push(decoder);
        }
        Some(ColumnSet {
            field_count,
            decoded,
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

    fn decoder(&self) -> Decoder<'a> {
        match self {
            ColumnKind::Utf8 => Decoder::Utf8(Utf8Column(BinaryBuilder::new())),
            ColumnKind::Parsed(DataType::Int64) => Decoder::Int64(Int64Column::default()),
            ColumnKind::Parsed(dt) => Decoder::Other(match dt {
                DataType::Int8 => Box::new(ParsedColumn::<Int8Type>::default()),
                DataType::Int16 => Box::new(ParsedColumn::<Int16Type>::default()),
                DataType::Int32 => Box::new(ParsedColumn::<Int32Type>::default()),
                DataType::UInt8 => Box::new(ParsedColumn::<UInt8Type>::default()),
                DataType::UInt16 => Box::new(ParsedColumn::<UInt16Type>::default()),
                DataType::UInt32 => Box::new(ParsedColumn::<UInt32Type>::default()),
                DataType::UInt64 => Box::new(ParsedColumn::<UInt64Type>::default()),
                DataType::Float32 => Box::new(ParsedColumn::<Float32Type>::default()),
                DataType::Float64 => Box::new(ParsedColumn::<Float64Type>::default()),
                _ => Box::new(ParsedColumn::<Date32Type>::default()),
            }),
            ColumnKind::FormattedTimestamp { format, unit, tz } => {
                Decoder::Timestamp(FormattedTimestampColumn {
                    format,
                    unit: *unit,
                    tz: tz.clone(),
                    micros: Vec::new(),
                    days: DayCache::default(),
                })
            }
            ColumnKind::Converted(field, opts) => Decoder::Other(Box::new(ConvertedColumn {
                field,
                opts,
                text: StringBuilder::new(),
            })),
        }
    }
}

/// A column's decoder: the common types dispatched statically, the rest through the trait.
enum Decoder<'a> {
    Utf8(Utf8Column),
    Int64(Int64Column),
    Timestamp(FormattedTimestampColumn<'a>),
    Other(Box<dyn ColumnDecoder + 'a>),
}

impl ColumnDecoder for Decoder<'_> {
    #[inline]
    fn push(&mut self, value: &[u8]) -> bool {
        match self {
            Decoder::Utf8(d) => d.push(value),
            Decoder::Int64(d) => d.push(value),
            Decoder::Timestamp(d) => d.push(value),
            Decoder::Other(d) => d.push(value),
        }
    }

    fn push_null(&mut self) {
        match self {
            Decoder::Utf8(d) => d.push_null(),
            Decoder::Int64(d) => d.push_null(),
            Decoder::Timestamp(d) => d.push_null(),
            Decoder::Other(d) => d.push_null(),
        }
    }

    fn finish(&mut self) -> Option<ArrayRef> {
        match self {
            Decoder::Utf8(d) => d.finish(),
            Decoder::Int64(d) => d.finish(),
            Decoder::Timestamp(d) => d.finish(),
            Decoder::Other(d) => d.finish(),
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
        // The next batch likely holds about as much text: allocate it once.
        self.0 = BinaryBuilder::with_capacity(BATCH_ROWS, values.len());
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
    days: DayCache,
}

impl ColumnDecoder for FormattedTimestampColumn<'_> {
    fn push(&mut self, value: &[u8]) -> bool {
        match self.format.parse_micros_bytes(value, &mut self.days) {
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
enum Span {
    /// `buffer[start..end]`.
    Input(usize, usize),
    /// `unescaped[start..end]` (the field had doubled or escaped quotes).
    Unescaped(usize, usize),
}

/// What [`RecordScanner::scan`] found at a position.
enum Scan {
    /// A blank line; the next record starts at the offset.
    Blank(usize),
    /// A record (its fields in the scanner's spans); the next record starts at the offset.
    Record(usize),
    /// The end of the file.
    End,
    /// The record runs past the bytes read so far.
    NeedMore,
    /// The record is not plainly well-formed (unterminated quote, text after a closing quote).
    Malformed,
}

/// What [`RecordScanner::field`] found.
enum FieldScan {
    /// The field ends at a separator; the next field starts at the offset.
    Next(usize),
    /// The field ends the record; the next record starts at the offset.
    Last(usize),
    /// See [`Scan::NeedMore`].
    NeedMore,
    /// See [`Scan::Malformed`].
    Malformed,
}

/// Splits records into fields.
struct RecordScanner {
    dialect: CsvDialect,
    /// The fields of the last record scanned.
    spans: Vec<Span>,
    /// Unescaped values of the last record's fields that had doubled or escaped quotes.
    unescaped: Vec<u8>,
}

impl RecordScanner {
    /// Scans the record at `pos` of `buf`; `eof` says whether `buf` ends at the end of the
    /// file (otherwise a record reaching the end of `buf` needs more bytes).
    fn scan(&mut self, buf: &[u8], pos: usize, eof: bool) -> Scan {
        match (buf.get(pos), buf.get(pos + 1)) {
            (None, _) if eof => return Scan::End,
            (None, _) | (Some(b'\r'), None) if !eof => return Scan::NeedMore,
            (Some(b'\n'), _) => return Scan::Blank(pos + 1),
            (Some(b'\r'), Some(b'\n')) => return Scan::Blank(pos + 2),
            _ => {}
        }
        self.spans.clear();
        self.unescaped.clear();
        let mut field_start = pos;
        loop {
            match self.field(buf, field_start, eof) {
                FieldScan::Next(next) => field_start = next,
                FieldScan::Last(next) => return Scan::Record(next),
                FieldScan::NeedMore => return Scan::NeedMore,
                FieldScan::Malformed => return Scan::Malformed,
            }
        }
    }

    /// Scans the field at `pos` and pushes its span.
    fn field(&mut self, buf: &[u8], pos: usize, eof: bool) -> FieldScan {
        let CsvDialect { sep, quote, escape } = self.dialect;
        if buf.get(pos) != Some(&quote) {
            return match find_sep_or_newline(buf, pos, sep) {
                Some(at) if buf[at] == sep => {
                    self.spans.push(Span::Input(pos, at));
                    FieldScan::Next(at + 1)
                }
                Some(newline) => {
                    let end = if newline > pos && buf[newline - 1] == b'\r' {
                        newline - 1
                    } else {
                        newline
                    };
                    self.spans.push(Span::Input(pos, end));
                    FieldScan::Last(newline + 1)
                }
                None if eof => {
                    self.spans.push(Span::Input(pos, buf.len()));
                    FieldScan::Last(buf.len())
                }
                None => FieldScan::NeedMore,
            };
        }
        let content = pos + 1;
        let mut segment = content;
        let mut search = content;
        let unescaped_start = self.unescaped.len();
        let mut unescaped = false;
        let closing = loop {
            let rest = &buf[search..];
            let found = match escape {
                Some(e) => memchr2(quote, e, rest),
                None => memchr(quote, rest),
            };
            let Some(off) = found else {
                return if eof {
                    FieldScan::Malformed
                } else {
                    FieldScan::NeedMore
                };
            };
            let at = search + off;
            let quote_follows = match buf.get(at + 1) {
                Some(&b) => b == quote,
                None if eof => false,
                None => return FieldScan::NeedMore,
            };
            if buf[at] == quote && !quote_follows {
                break at;
            }
            if !quote_follows {
                // An escape character not before a quote is data.
                search = at + 1;
                continue;
            }
            // A doubled quote keeps its first byte; an escape before a quote becomes the quote.
            self.unescaped.extend_from_slice(&buf[segment..at]);
            self.unescaped.push(quote);
            unescaped = true;
            segment = at + 2;
            search = at + 2;
        };
        let span = if unescaped {
            self.unescaped.extend_from_slice(&buf[segment..closing]);
            Span::Unescaped(unescaped_start, self.unescaped.len())
        } else {
            Span::Input(content, closing)
        };
        self.spans.push(span);
        let after = closing + 1;
        match (buf.get(after), buf.get(after + 1)) {
            (None, _) if eof => FieldScan::Last(after),
            (None, _) | (Some(b'\r'), None) if !eof => FieldScan::NeedMore,
            (Some(&b), _) if b == sep => FieldScan::Next(after + 1),
            (Some(b'\n'), _) => FieldScan::Last(after + 1),
            (Some(b'\r'), Some(b'\n')) => FieldScan::Last(after + 2),
            _ => FieldScan::Malformed,
        }
    }
}

/// The first separator or newline at or after `from` (short fields are scanned byte by byte,
/// longer ones with memchr).
fn find_sep_or_newline(buf: &[u8], from: usize, sep: u8) -> Option<usize> {
    let short_end = buf.len().min(from + 16);
    for (i, &b) in buf[from..short_end].iter().enumerate() {
        if b == sep || b == b'\n' {
            return Some(from + i);
        }
    }
    memchr2(sep, b'\n', &buf[short_end..]).map(|off| short_end + off)
}

/// Parses the records of one chunk into batches.
struct ChunkParser<'p, 'a> {
    plan: &'p CsvDecodePlan<'a>,
    columns: &'p ColumnSet<'a>,
    decoders: Vec<Decoder<'a>>,
    rows: usize,
    batches: Vec<RecordBatch>,
}

impl<'p, 'a> ChunkParser<'p, 'a> {
    fn new(plan: &'p CsvDecodePlan<'a>, columns: &'p ColumnSet<'a>) -> Self {
        ChunkParser {
            plan,
            columns,
            decoders: columns
                .decoded
                .iter()
                .map(|(_, kind)| kind.decoder())
                .collect(),
            rows: 0,
            batches: Vec::new(),
        }
    }

    /// Parses the records of the file at `path` that start in `start..stop` (`start` being
    /// taken as a record boundary); the last one may run past `stop`. `skip_header` skips the
    /// first record. The file is read in blocks of `split.block_bytes`.
    fn parse(
        mut self,
        path: &Path,
        start: usize,
        stop: usize,
        mut skip_header: bool,
        split: CsvSplit,
    ) -> Option<ChunkOutput> {
        let mut file = File::open(path).ok()?;
        file.seek(SeekFrom::Start(start as u64)).ok()?;
        let mut scanner = RecordScanner {
            dialect: self.plan.dialect,
            spans: Vec::new(),
            unescaped: Vec::new(),
        };
        let mut buf: Vec<u8> = Vec::new();
        // `buf[0]` is the file's byte at offset `base`.
        let (mut base, mut pos, mut eof) = (start, 0, false);
        let mut saw_record = false;
        while base + pos < stop {
            match scanner.scan(&buf, pos, eof) {
                Scan::Blank(next) => pos = next,
                Scan::Record(next) => {
                    saw_record = true;
                    if skip_header {
                        skip_header = false;
                    } else {
                        self.decode(&buf, &scanner)?;
                    }
                    pos = next;
                }
                Scan::End => break,
                Scan::NeedMore => {
                    buf.drain(..pos);
                    base += pos;
                    pos = 0;
                    let read = (&mut file)
                        .take(split.block_bytes.max(1) as u64)
                        .read_to_end(&mut buf)
                        .ok()?;
                    eof = read == 0;
                }
                Scan::Malformed => return None,
            }
        }
        if self.rows > 0 {
            self.flush()?;
        }
        Some(ChunkOutput {
            end: base + pos,
            saw_record,
            batches: self.batches,
        })
    }

    /// Pushes the decoded fields of the record the scanner holds.
    fn decode(&mut self, buf: &[u8], scanner: &RecordScanner) -> Option<()> {
        if scanner.spans.len() != self.columns.field_count {
            return None;
        }
        for ((field, _), decoder) in self.columns.decoded.iter().zip(&mut self.decoders) {
            let value = match scanner.spans[*field] {
                Span::Input(a, b) => &buf[a..b],
                Span::Unescaped(a, b) => &scanner.unescaped[a..b],
            };
            if value.is_empty() {
                decoder.push_null();
            } else if !decoder.push(value) {
                return None;
            }
        }
        self.rows += 1;
        if self.rows == BATCH_ROWS {
            self.flush()?;
        }
        Some(())
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
