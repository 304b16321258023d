//! Decoding one input file into Arrow record batches: CSV, JSON lines, Parquet and text, with
//! Spark's parse modes for malformed records (PERMISSIVE, DROPMALFORMED, FAILFAST) and its
//! corrupt-record column.
//!
//! Only decoding lives here; listing files and tracking what was read is `file.rs`. CSV files
//! go through the fast path of `csv_fast.rs` first; the per-record path here is the reference
//! it must agree with, and reads whatever the fast path declines.

use std::fs::File;
use std::path::Path;
use std::sync::Arc;

use arrow::array::{
    Array, ArrayRef, AsArray, RecordBatchOptions, StringArray, TimestampMicrosecondArray,
    TimestampMillisecondArray, TimestampNanosecondArray, TimestampSecondArray, new_null_array,
};
use arrow::compute::{CastOptions, cast_with_options, filter_record_batch, interleave};
use arrow::datatypes::{
    DataType, Field, Schema, SchemaRef, TimeUnit, TimestampMicrosecondType,
    TimestampMillisecondType, TimestampNanosecondType, TimestampSecondType,
};
use arrow::record_batch::RecordBatch;
use parquet::arrow::ProjectionMask;
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;

use super::csv_fast::{CsvDecodePlan, CsvDialect, CsvSplit, decode_csv};
use crate::error::{Error, Result};

/// Rows per record batch produced by the readers.
pub const BATCH_ROWS: usize = 64 * 1024;

/// The formats the file source reads.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FileFormat {
    /// Comma-separated values (`sep`, `header`).
    Csv,
    /// JSON lines: one object per line.
    Json,
    /// Apache Parquet.
    Parquet,
    /// One row per line in a single string column `value`.
    Text,
}

impl FileFormat {
    /// The format for a source/sink name (`csv`, `json`, `parquet`, `text`).
    pub fn from_name(name: &str) -> Option<FileFormat> {
        match name.to_ascii_lowercase().as_str() {
            "csv" => Some(FileFormat::Csv),
            "json" => Some(FileFormat::Json),
            "parquet" => Some(FileFormat::Parquet),
            "text" => Some(FileFormat::Text),
            _ => None,
        }
    }

    /// The format's name as Spark spells it.
    pub fn name(self) -> &'static str {
        match self {
            FileFormat::Csv => "csv",
            FileFormat::Json => "json",
            FileFormat::Parquet => "parquet",
            FileFormat::Text => "text",
        }
    }
}

/// What to do with a record that does not parse against the schema (Spark's `mode`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ParseMode {
    /// Keep the row: unparsable fields become null and the raw record goes into the corrupt
    /// record column when the schema has one.
    Permissive,
    /// Drop the row.
    DropMalformed,
    /// Fail the query, naming file and line.
    FailFast,
}

impl ParseMode {
    /// Parses Spark's mode names (case-insensitive).
    pub fn from_name(name: &str) -> Option<ParseMode> {
        match name.to_ascii_uppercase().as_str() {
            "PERMISSIVE" => Some(ParseMode::Permissive),
            "DROPMALFORMED" => Some(ParseMode::DropMalformed),
            "FAILFAST" => Some(ParseMode::FailFast),
            _ => None,
        }
    }
}

/// Reader options shared by the formats.
#[derive(Clone, Debug)]
pub(crate) struct ReaderOptions {
    pub header: bool,
    pub sep: char,
    pub quote: char,
    pub escape: char,
    pub timestamp_format: Option<TimestampFormat>,
    pub mode: ParseMode,
    pub corrupt_column: String,
}

/// A parsed `timestampFormat` (Java DateTimeFormatter pattern translated to chrono).
#[derive(Clone, Debug)]
pub(crate) struct TimestampFormat {
    chrono: String,
    has_zone: bool,
    has_time: bool,
    /// Whether the pattern is `yyyy-MM-dd HH:mm:ss` (`Some(false)`) or the same with `.SSS`
    /// (`Some(true)`), which [`TimestampFormat::parse_iso_like`] reads without chrono.
    iso_millis: Option<bool>,
}

impl TimestampFormat {
    /// Translates a Java pattern such as `yyyy-MM-dd HH:mm:ss.SSS` or `dd/MM/yyyy'T'HH:mmXXX`.
    pub fn parse(pattern: &str) -> Result<TimestampFormat> {
        let chars: Vec<char> = pattern.chars().collect();
        let mut out = String::new();
        let (mut has_zone, mut has_time) = (false, false);
        let mut i = 0;
        while i < chars.len() {
            let c = chars[i];
            if c == '\'' {
                let end = chars[i + 1..]
                    .iter()
                    .position(|&q| q == '\'')
                    .map(|p| i + 1 + p)
                    .ok_or_else(|| {
                        Error::option(
                            "timestampFormat",
                            format!("unterminated quote in '{pattern}'"),
                        )
                    })?;
                if end == i + 1 {
                    out.push('\'');
                }
                for &lit in &chars[i + 1..end] {
                    if lit == '%' {
                        out.push_str("%%");
                    } else {
                        out.push(lit);
                    }
                }
                i = end + 1;
                continue;
            }
            if !c.is_ascii_alphabetic() {
                if c == '[' || c == ']' {
                    return Err(Error::option(
                        "timestampFormat",
                        format!("optional sections '[...]' are not supported in '{pattern}'"),
                    ));
                }
                if c == '%' {
                    out.push_str("%%");
                } else {
                    out.push(c);
                }
                i += 1;
                continue;
            }
            let run = chars[i..].iter().take_while(|&&x| x == c).count();
            let spec = match (c, run) {
                ('y' | 'u', 2) => "%y",
                ('y' | 'u', _) => "%Y",
                ('M', 1 | 2) => "%m",
                ('M', 3) => "%b",
                ('M', _) => "%B",
                ('d', _) => "%d",
                ('H', _) => {
                    has_time = true;
                    "%H"
                }
                ('h', _) => {
                    has_time = true;
                    "%I"
                }
                ('m', _) => "%M",
                ('s', _) => "%S",
                ('S', 3) => "%3f",
                ('S', 6) => "%6f",
                ('S', 9) => "%9f",
                ('S', _) => "%f",
                ('a', _) => "%p",
                ('X' | 'x', 3) => {
                    has_zone = true;
                    "%:z"
                }
                ('X' | 'x' | 'Z', _) => {
                    has_zone = true;
                    "%z"
                }
                _ => {
                    return Err(Error::option(
                        "timestampFormat",
                        format!("pattern letter '{c}' is not supported in '{pattern}'"),
                    ));
                }
            };
            out.push_str(spec);
            i += run;
        }
        let iso_millis = match out.as_str() {
            "%Y-%m-%d %H:%M:%S%.3f" | "%Y-%m-%d %H:%M:%S.%3f" => Some(true),
            "%Y-%m-%d %H:%M:%S" => Some(false),
            _ => None,
        };
        Ok(TimestampFormat {
            chrono: out,
            has_zone,
            has_time,
            iso_millis,
        })
    }

    /// Microseconds since the epoch (UTC for patterns without a zone).
    pub(super) fn parse_micros(&self, text: &str) -> Option<i64> {
        let text = text.trim();
        if let Some(micros) = self.parse_iso_like(text.as_bytes()) {
            return Some(micros);
        }
        if self.has_zone {
            let dt = chrono::DateTime::parse_from_str(text, &self.chrono).ok()?;
            return Some(dt.timestamp_micros());
        }
        if self.has_time {
            let dt = chrono::NaiveDateTime::parse_from_str(text, &self.chrono).ok()?;
            return Some(dt.and_utc().timestamp_micros());
        }
        let date = chrono::NaiveDate::parse_from_str(text, &self.chrono).ok()?;
        Some(date.and_hms_opt(0, 0, 0)?.and_utc().timestamp_micros())
    }

    /// [`TimestampFormat::parse_micros`] of raw bytes (`None` when they are not UTF-8), with
    /// the common shapes read straight from the bytes; `days` remembers the last date read
    /// that way (timestamps in a file tend to share their date).
    pub(super) fn parse_micros_bytes(&self, bytes: &[u8], days: &mut DayCache) -> Option<i64> {
        // A text of the exact shape has no surrounding whitespace, so trimming is a no-op.
        if let Some(micros) = self.parse_iso_like_cached(bytes, days) {
            return Some(micros);
        }
        self.parse_micros(std::str::from_utf8(bytes).ok()?)
    }

    /// A fast path for the common `yyyy-MM-dd HH:mm:ss[.SSS]` patterns: fixed-position digits
    /// parsed directly (the general path goes through chrono's format interpreter). `None` when
    /// the pattern or the text does not have that exact shape or is not a valid date and time;
    /// the caller then uses chrono.
    fn parse_iso_like(&self, b: &[u8]) -> Option<i64> {
        self.parse_iso_like_cached(b, &mut DayCache::default())
    }

    /// [`TimestampFormat::parse_iso_like`], taking the date's day number from `cache` when the
    /// date text is the one read last.
    fn parse_iso_like_cached(&self, b: &[u8], cache: &mut DayCache) -> Option<i64> {
        let millis = self.iso_millis?;
        let expected_len = if millis { 23 } else { 19 };
        if b.len() != expected_len
            || b[4] != b'-'
            || b[7] != b'-'
            || b[10] != b' '
            || b[13] != b':'
            || b[16] != b':'
            || (millis && b[19] != b'.')
        {
            return None;
        }
        let digit = |i: usize| -> Option<i64> {
            let d = b[i].wrapping_sub(b'0');
            (d <= 9).then_some(i64::from(d))
        };
        let two = |i: usize| -> Option<i64> { Some(digit(i)? * 10 + digit(i + 1)?) };
        let days = if b[..10] == cache.date {
            cache.days
        } else {
            let year = two(0)? * 100 + two(2)?;
            let (month, day) = (two(5)?, two(8)?);
            if !(1..=12).contains(&month) || day < 1 || day > days_in_month(year, month) {
                return None;
            }
            let days = days_from_civil(year, month, day);
            cache.date.copy_from_slice(&b[..10]);
            cache.days = days;
            days
        };
        let (hour, minute, second) = (two(11)?, two(14)?, two(17)?);
        if hour > 23 || minute > 59 || second > 59 {
            return None;
        }
        let ms = if millis {
            digit(20)? * 100 + two(21)?
        } else {
            0
        };
        Some(((days * 86_400 + hour * 3_600 + minute * 60 + second) * 1_000 + ms) * 1_000)
    }
}

/// The day number of the last `yyyy-MM-dd` date read by
/// [`TimestampFormat::parse_micros_bytes`].
#[derive(Clone, Copy, Debug, Default)]
pub(super) struct DayCache {
    /// The date's text; all zeros (no date) at first.
    date: [u8; 10],
    days: i64,
}

/// Days in `month` (1-12) of `year` in the proleptic Gregorian calendar.
fn days_in_month(year: i64, month: i64) -> i64 {
    let leap = year % 4 == 0 && (year % 100 != 0 || year % 400 == 0);
    match month {
        2 if leap => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// Days from 1970-01-01 to a valid proleptic Gregorian date (Howard Hinnant's
/// `days_from_civil`).
fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
    let year = if month <= 2 { year - 1 } else { year };
    let era = year.div_euclid(400);
    let year_of_era = year - era * 400;
    let month_from_march = (month + 9) % 12;
    let day_of_year = (153 * month_from_march + 2) / 5 + day - 1;
    let day_of_era = year_of_era * 365 + year_of_era / 4 - year_of_era / 100 + day_of_year;
    era * 146_097 + day_of_era - 719_468
}

/// Reads `path` as `format` into batches of `schema` (or of its `projection` when given).
pub(crate) fn read_file(
    format: FileFormat,
    path: &Path,
    schema: &SchemaRef,
    opts: &ReaderOptions,
    projection: Option<&[usize]>,
    bounds: &[crate::source::ColumnBound],
) -> Result<Vec<RecordBatch>> {
    let batches = match format {
        FileFormat::Parquet => return read_parquet(path, schema, projection, bounds),
        FileFormat::Csv => {
            let (batches, projected) = read_csv(path, schema, opts, projection)?;
            if projected {
                return Ok(batches);
            }
            batches
        }
        FileFormat::Json => read_json(path, schema, opts)?,
        FileFormat::Text => read_text(path, schema)?,
    };
    crate::source::project_batches(batches, projection)
}

fn read_text_file(path: &Path) -> Result<String> {
    let bytes = std::fs::read(path).map_err(|e| Error::io(path, e))?;
    Ok(match String::from_utf8(bytes) {
        Ok(s) => s,
        Err(e) => String::from_utf8_lossy(e.as_bytes()).into_owned(),
    })
}

/// One row per line (a `\r` before the `\n` dropped; no row after a final newline). The file
/// is read in chunks of [`TEXT_CHUNK`] bytes cut after their last newline, and each chunk's
/// lines are turned into rows on all cores (the chunk split at newlines, parts in order), so
/// the whole file's text is never held beside its rows. Invalid UTF-8 is replaced, as a lossy
/// read of the whole file would (a newline is never part of a multi-byte character).
fn read_text(path: &Path, schema: &SchemaRef) -> Result<Vec<RecordBatch>> {
    use std::io::Read;
    let mut file = File::open(path).map_err(|e| Error::io(path, e))?;
    let workers = std::thread::available_parallelism().map_or(1, |n| n.get());
    let mut batches = Vec::new();
    let mut chunk: Vec<u8> = Vec::new();
    loop {
        // Top the chunk (the previous chunk's unfinished line first) up to TEXT_CHUNK bytes.
        let have = chunk.len();
        chunk.resize(have + TEXT_CHUNK, 0);
        let mut filled = have;
        while filled < chunk.len() {
            match file.read(&mut chunk[filled..]) {
                Ok(0) => break,
                Ok(n) => filled += n,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(e) => return Err(Error::io(path, e)),
            }
        }
        let eof = filled < chunk.len();
        chunk.truncate(filled);
        let cut = if eof {
            chunk.len()
        } else {
            match memchr::memrchr(b'\n', &chunk) {
                Some(i) => i + 1,
                // A line longer than the chunk: read on.
                None => continue,
            }
        };
        let rest = chunk.split_off(cut);
        batches.extend(text_rows(&chunk, schema, workers)?);
        chunk = rest;
        if eof {
            break;
        }
    }
    Ok(batches)
}

/// Bytes read at a time by the text reader.
const TEXT_CHUNK: usize = 8 << 20;

/// The rows of whole lines (`text` ends after a newline, or at the end of the file), built by
/// up to `workers` threads over parts cut at newlines; batches in line order.
fn text_rows(text: &[u8], schema: &SchemaRef, workers: usize) -> Result<Vec<RecordBatch>> {
    let parts = workers.clamp(1, 8).min(text.len() / (256 << 10)).max(1);
    let mut bounds = vec![0];
    for p in 1..parts {
        let from = (text.len() * p / parts).max(*bounds.last().unwrap_or(&0));
        match memchr::memchr(b'\n', &text[from..]) {
            Some(i) => bounds.push(from + i + 1),
            None => break,
        }
    }
    bounds.push(text.len());
    bounds.dedup();
    if bounds.len() <= 2 {
        return text_part_rows(text, schema);
    }
    std::thread::scope(|scope| {
        let handles: Vec<_> = bounds
            .windows(2)
            .map(|w| {
                let part = &text[w[0]..w[1]];
                scope.spawn(move || text_part_rows(part, schema))
            })
            .collect();
        let mut out = Vec::new();
        for h in handles {
            out.extend(
                h.join()
                    .map_err(|_| Error::Internal("a text reader thread panicked".into()))??,
            );
        }
        Ok(out)
    })
}

/// The rows of the lines of one part, in batches of [`BATCH_ROWS`].
fn text_part_rows(text: &[u8], schema: &SchemaRef) -> Result<Vec<RecordBatch>> {
    let mut batches = Vec::new();
    let mut builder = arrow::array::StringBuilder::new();
    let mut rows = 0usize;
    let mut start = 0;
    while start < text.len() {
        let end = memchr::memchr(b'\n', &text[start..]).map_or(text.len(), |i| start + i);
        let mut line = &text[start..end];
        // `\r\n` loses its `\r`; so does a last line that ends in a lone `\r`.
        if let Some(rest) = line.strip_suffix(b"\r") {
            line = rest;
        }
        // Valid UTF-8 (the common case) is checked by the fast validator; only invalid lines
        // take the lossy path, which replaces bad sequences with U+FFFD as Spark's reader does.
        match std::str::from_utf8(line) {
            Ok(valid) => builder.append_value(valid),
            Err(_) => builder.append_value(String::from_utf8_lossy(line)),
        }
        rows += 1;
        if rows == BATCH_ROWS {
            batches.push(RecordBatch::try_new(
                schema.clone(),
                vec![Arc::new(builder.finish()) as ArrayRef],
            )?);
            rows = 0;
        }
        start = end + 1;
    }
    if rows > 0 {
        batches.push(RecordBatch::try_new(
            schema.clone(),
            vec![Arc::new(builder.finish()) as ArrayRef],
        )?);
    }
    Ok(batches)
}

/// The schema's data columns (all but the corrupt-record column) and the corrupt column's
/// index, when the schema has one of type string.
fn split_corrupt_column(schema: &Schema, corrupt: &str) -> (Vec<usize>, Option<usize>) {
    let corrupt_index = schema
        .fields()
        .iter()
        .position(|f| f.name() == corrupt && matches!(f.data_type(), DataType::Utf8));
    let data = (0..schema.fields().len())
        .filter(|&i| Some(i) != corrupt_index)
        .collect();
    (data, corrupt_index)
}

/// `schema` with time zones dropped from top-level timestamp columns. Arrow (built without
/// chrono-tz) cannot parse named zones such as `UTC` when decoding or casting; the stored
/// values are UTC epochs either way, so decoding naive and re-tagging gives the same data.
fn without_timezones(schema: &Schema) -> SchemaRef {
    let fields: Vec<Field> = schema
        .fields()
        .iter()
        .map(|f| match f.data_type() {
            DataType::Timestamp(unit, Some(_)) => f
                .as_ref()
                .clone()
                .with_data_type(DataType::Timestamp(*unit, None)),
            _ => f.as_ref().clone(),
        })
        .collect();
    Arc::new(Schema::new(fields))
}

/// Re-tags a timestamp column with `target`'s time zone (no value changes).
fn retag_timezone(array: ArrayRef, target: &DataType) -> ArrayRef {
    let DataType::Timestamp(_, tz) = target else {
        return array;
    };
    let tz = tz.clone();
    match array.data_type() {
        DataType::Timestamp(TimeUnit::Second, _) => Arc::new(
            array
                .as_primitive::<TimestampSecondType>()
                .clone()
                .with_timezone_opt(tz),
        ),
        DataType::Timestamp(TimeUnit::Millisecond, _) => Arc::new(
            array
                .as_primitive::<TimestampMillisecondType>()
                .clone()
                .with_timezone_opt(tz),
        ),
        DataType::Timestamp(TimeUnit::Microsecond, _) => Arc::new(
            array
                .as_primitive::<TimestampMicrosecondType>()
                .clone()
                .with_timezone_opt(tz),
        ),
        DataType::Timestamp(TimeUnit::Nanosecond, _) => Arc::new(
            array
                .as_primitive::<TimestampNanosecondType>()
                .clone()
                .with_timezone_opt(tz),
        ),
        _ => array,
    }
}

/// Re-tags every column decoded with [`without_timezones`] to `schema`'s types.
fn retag_columns(columns: Vec<ArrayRef>, schema: &Schema) -> Vec<ArrayRef> {
    columns
        .into_iter()
        .zip(schema.fields())
        .map(|(c, f)| retag_timezone(c, f.data_type()))
        .collect()
}

/// Casts `array` to `target`, going through the zone-less timestamp type (see
/// [`without_timezones`]).
fn cast_to(array: &dyn Array, target: &DataType, options: &CastOptions<'_>) -> Result<ArrayRef> {
    match target {
        DataType::Timestamp(unit, Some(_)) => {
            let naive = match array.data_type() {
                DataType::Timestamp(from_unit, Some(_)) => {
                    let plain = retag_timezone(
                        arrow::array::make_array(array.to_data()),
                        &DataType::Timestamp(*from_unit, None),
                    );
                    cast_with_options(&plain, &DataType::Timestamp(*unit, None), options)?
                }
                _ => cast_with_options(array, &DataType::Timestamp(*unit, None), options)?,
            };
            Ok(retag_timezone(naive, target))
        }
        _ => Ok(cast_with_options(array, target, options)?),
    }
}

/// One raw record of a text-based format and why it is malformed, if it is.
struct RawRecord<'a> {
    raw: &'a str,
    line: usize,
    malformed: Option<String>,
}

/// Applies the parse mode to decoded data columns and assembles the output batch.
fn finish_batch(
    schema: &SchemaRef,
    data_cols: &[usize],
    corrupt_index: Option<usize>,
    mut columns: Vec<ArrayRef>,
    records: &[RawRecord<'_>],
    opts: &ReaderOptions,
    path: &Path,
) -> Result<RecordBatch> {
    if opts.mode == ParseMode::FailFast
        && let Some(bad) = records.iter().find(|r| r.malformed.is_some())
    {
        return Err(Error::MalformedRecord {
            location: format!("{}:{}", path.display(), bad.line),
            message: format!(
                "{}. Parse Mode: FAILFAST. To process malformed records as null result, try setting the option 'mode' as 'PERMISSIVE'. Record: {}",
                bad.malformed.as_deref().unwrap_or("malformed record"),
                truncate_for_message(bad.raw)
            ),
        });
    }
    let mut all: Vec<ArrayRef> = Vec::with_capacity(schema.fields().len());
    let mut data_iter = columns.drain(..);
    for i in 0..schema.fields().len() {
        if Some(i) == corrupt_index {
            let corrupt: StringArray = records
                .iter()
                .map(|r| r.malformed.as_ref().map(|_| r.raw))
                .collect();
            all.push(Arc::new(corrupt));
        } else {
            debug_assert!(data_cols.contains(&i));
            let col = data_iter
                .next()
                .ok_or_else(|| Error::Internal("reader produced too few columns".into()))?;
            all.push(col);
        }
    }
    let batch = RecordBatch::try_new_with_options(
        schema.clone(),
        all,
        &RecordBatchOptions::new().with_row_count(Some(records.len())),
    )?;
    if opts.mode == ParseMode::DropMalformed && records.iter().any(|r| r.malformed.is_some()) {
        let keep: arrow::array::BooleanArray = records
            .iter()
            .map(|r| Some(r.malformed.is_none()))
            .collect();
        return Ok(filter_record_batch(&batch, &keep)?);
    }
    Ok(batch)
}

fn truncate_for_message(raw: &str) -> String {
    const MAX: usize = 200;
    if raw.len() <= MAX {
        return raw.to_string();
    }
    let mut end = MAX;
    while !raw.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}...", &raw[..end])
}

/// Spark's SQL type name of an Arrow type, for messages.
fn sql_type_name(dt: &DataType) -> String {
    match dt {
        DataType::Boolean => "boolean".into(),
        DataType::Int8 => "tinyint".into(),
        DataType::Int16 => "smallint".into(),
        DataType::Int32 => "int".into(),
        DataType::Int64 => "bigint".into(),
        DataType::Float32 => "float".into(),
        DataType::Float64 => "double".into(),
        DataType::Utf8 | DataType::LargeUtf8 => "string".into(),
        DataType::Date32 => "date".into(),
        DataType::Timestamp(_, _) => "timestamp".into(),
        DataType::Decimal128(p, s) => format!("decimal({p},{s})"),
        other => other.to_string(),
    }
}

/// Converts string values to `field`'s type. Returns the column and, per row, whether a
/// non-empty value failed to convert.
pub(super) fn convert_strings(
    values: &StringArray,
    field: &Field,
    opts: &ReaderOptions,
) -> Result<(ArrayRef, Vec<bool>)> {
    let target = field.data_type();
    let converted: ArrayRef = match (target, &opts.timestamp_format) {
        (DataType::Utf8, _) => return Ok((Arc::new(values.clone()), vec![false; values.len()])),
        (DataType::Timestamp(unit, tz), Some(format)) => {
            let micros: Vec<Option<i64>> = values
                .iter()
                .map(|v| v.and_then(|s| format.parse_micros(s)))
                .collect();
            timestamp_array(&micros, *unit, tz.clone())
        }
        _ => {
            let trimmed: StringArray = values.iter().map(|v| v.map(str::trim)).collect();
            cast_to(
                &trimmed,
                target,
                &CastOptions {
                    safe: true,
                    ..Default::default()
                },
            )
            .map_err(|e| {
                Error::Unsupported(format!(
                    "column '{}' of type {} cannot be read from text: {e}",
                    field.name(),
                    sql_type_name(target)
                ))
            })?
        }
    };
    let failed = (0..values.len())
        .map(|i| values.is_valid(i) && !values.value(i).is_empty() && converted.is_null(i))
        .collect();
    Ok((converted, failed))
}

pub(super) fn timestamp_array(
    micros: &[Option<i64>],
    unit: TimeUnit,
    tz: Option<Arc<str>>,
) -> ArrayRef {
    match unit {
        TimeUnit::Second => Arc::new(
            TimestampSecondArray::from(
                micros
                    .iter()
                    .map(|m| m.map(|v| v.div_euclid(1_000_000)))
                    .collect::<Vec<_>>(),
            )
            .with_timezone_opt(tz),
        ),
        TimeUnit::Millisecond => Arc::new(
            TimestampMillisecondArray::from(
                micros
                    .iter()
                    .map(|m| m.map(|v| v.div_euclid(1000)))
                    .collect::<Vec<_>>(),
            )
            .with_timezone_opt(tz),
        ),
        TimeUnit::Microsecond => {
            Arc::new(TimestampMicrosecondArray::from(micros.to_vec()).with_timezone_opt(tz))
        }
        TimeUnit::Nanosecond => Arc::new(
            TimestampNanosecondArray::from(
                micros
                    .iter()
                    .map(|m| m.and_then(|v| v.checked_mul(1000)))
                    .collect::<Vec<_>>(),
            )
            .with_timezone_opt(tz),
        ),
    }
}

/// One CSV record split into fields.
struct CsvRecord<'a> {
    fields: Vec<Option<String>>,
    raw: &'a str,
    line: usize,
    unterminated_quote: bool,
}

/// Splits CSV text into records (RFC 4180 quoting with `quote`, `escape` before a quote inside
/// quotes, newlines allowed inside quotes). Blank lines are skipped; an empty unquoted field is
/// null.
fn split_csv(text: &str, sep: char, quote: char, escape: char) -> Vec<CsvRecord<'_>> {
    let mut records = Vec::new();
    let mut fields: Vec<Option<String>> = Vec::new();
    let mut field = String::new();
    let (mut in_quotes, mut field_quoted) = (false, false);
    let (mut rec_start, mut line, mut rec_line) = (0usize, 1usize, 1usize);
    let mut chars = text.char_indices().peekable();
    while let Some((i, c)) = chars.next() {
        if in_quotes {
            let next = chars.peek().map(|&(_, n)| n);
            if c == escape && escape != quote && next == Some(quote) {
                field.push(quote);
                chars.next();
            } else if c == quote {
                if next == Some(quote) {
                    field.push(quote);
                    chars.next();
                } else {
                    in_quotes = false;
                }
            } else {
                if c == '\n' {
                    line += 1;
                }
                field.push(c);
            }
        } else if c == quote && field.is_empty() && !field_quoted {
            in_quotes = true;
            field_quoted = true;
        } else if c == sep {
            end_field(&mut fields, &mut field);
            field_quoted = false;
        } else if c == '\n' {
            end_field(&mut fields, &mut field);
            field_quoted = false;
            push_record(
                &mut records,
                std::mem::take(&mut fields),
                &text[rec_start..i],
                rec_line,
                false,
            );
            line += 1;
            rec_start = i + 1;
            rec_line = line;
        } else if c == '\r' && chars.peek().map(|&(_, n)| n) == Some('\n') {
            // The '\n' ends the record.
        } else {
            field.push(c);
        }
    }
    if rec_start < text.len() {
        end_field(&mut fields, &mut field);
        push_record(
            &mut records,
            fields,
            &text[rec_start..],
            rec_line,
            in_quotes,
        );
    }
    records
}

/// Ends a field; an empty field (quoted or not) is null, as in Spark's default `nullValue`.
fn end_field(fields: &mut Vec<Option<String>>, field: &mut String) {
    let value = std::mem::take(field);
    fields.push((!value.is_empty()).then_some(value));
}

fn push_record<'a>(
    records: &mut Vec<CsvRecord<'a>>,
    fields: Vec<Option<String>>,
    raw: &'a str,
    line: usize,
    unterminated_quote: bool,
) {
    let raw = raw.strip_suffix('\r').unwrap_or(raw);
    if fields.len() == 1 && fields[0].is_none() && raw.trim().is_empty() {
        return;
    }
    records.push(CsvRecord {
        fields,
        raw,
        line,
        unterminated_quote,
    });
}

/// The fast path ([`super::csv_fast`]): the file split into records on all cores, only the
/// wanted columns decoded. `None` when any record is not plainly well-formed or a value does
/// not convert (or a feature it lacks is needed); the caller then takes the per-record path,
/// which gives the same values for well-formed files and applies the parse mode otherwise.
fn read_csv_fast(
    path: &Path,
    schema: &SchemaRef,
    opts: &ReaderOptions,
    data_cols: &[usize],
    corrupt_index: Option<usize>,
    projection: Option<&[usize]>,
) -> Result<Option<Vec<RecordBatch>>> {
    read_csv_fast_split(
        path,
        schema,
        opts,
        data_cols,
        corrupt_index,
        projection,
        CsvSplit::per_core(),
    )
}

/// [`read_csv_fast`] with an explicit split of the file into chunks.
fn read_csv_fast_split(
    path: &Path,
    schema: &SchemaRef,
    opts: &ReaderOptions,
    data_cols: &[usize],
    corrupt_index: Option<usize>,
    projection: Option<&[usize]>,
    split: CsvSplit,
) -> Result<Option<Vec<RecordBatch>>> {
    let Some(dialect) = CsvDialect::new(opts.sep, opts.quote, opts.escape) else {
        return Ok(None);
    };
    let data_schema = schema.project(data_cols)?;
    // Output: the projected columns (indices into the data columns, which are the schema's
    // columns when there is no corrupt-record column), or every column.
    let (output_schema, output_columns): (SchemaRef, Vec<usize>) = match projection {
        Some(p) => (Arc::new(schema.project(p)?), p.to_vec()),
        None => (schema.clone(), (0..data_cols.len()).collect()),
    };
    let plan = CsvDecodePlan {
        dialect,
        header: opts.header,
        data_schema: &data_schema,
        output_columns: &output_columns,
        // A projection never comes with a corrupt-record column (see `read_csv`).
        corrupt_index: corrupt_index.filter(|_| projection.is_none()),
        output_schema: &output_schema,
        opts,
    };
    Ok(decode_csv(path, &plan, split))
}

/// Reads a CSV file; the flag says whether `projection` was already applied (the fast path
/// decodes only the projected columns when there is no corrupt-record column).
fn read_csv(
    path: &Path,
    schema: &SchemaRef,
    opts: &ReaderOptions,
    projection: Option<&[usize]>,
) -> Result<(Vec<RecordBatch>, bool)> {
    let (data_cols, corrupt_index) = split_corrupt_column(schema, &opts.corrupt_column);
    let projection = projection.filter(|_| corrupt_index.is_none());
    if let Some(batches) = read_csv_fast(path, schema, opts, &data_cols, corrupt_index, projection)?
    {
        return Ok((batches, projection.is_some()));
    }
    Ok((
        read_csv_per_record(path, schema, opts, &data_cols, corrupt_index)?,
        false,
    ))
}

/// The per-record path: finds malformed records and applies the parse mode to them.
fn read_csv_per_record(
    path: &Path,
    schema: &SchemaRef,
    opts: &ReaderOptions,
    data_cols: &[usize],
    corrupt_index: Option<usize>,
) -> Result<Vec<RecordBatch>> {
    let text = read_text_file(path)?;
    let mut records = split_csv(&text, opts.sep, opts.quote, opts.escape);
    if opts.header && !records.is_empty() {
        records.remove(0);
    }
    let mut batches = Vec::new();
    for chunk in records.chunks(BATCH_ROWS) {
        let mut raw: Vec<RawRecord<'_>> = chunk
            .iter()
            .map(|r| RawRecord {
                raw: r.raw,
                line: r.line,
                malformed: if r.unterminated_quote {
                    Some("unterminated quoted field".to_string())
                } else if r.fields.len() != data_cols.len() {
                    Some(format!(
                        "expected {} fields but found {}",
                        data_cols.len(),
                        r.fields.len()
                    ))
                } else {
                    None
                },
            })
            .collect();
        let mut columns = Vec::with_capacity(data_cols.len());
        for (j, &col) in data_cols.iter().enumerate() {
            let field = schema.field(col);
            let strings: StringArray = chunk
                .iter()
                .map(|r| r.fields.get(j).and_then(|f| f.as_deref()))
                .collect();
            let (converted, failed) = convert_strings(&strings, field, opts)?;
            for (row, bad) in failed.iter().enumerate() {
                if *bad && raw[row].malformed.is_none() {
                    raw[row].malformed = Some(format!(
                        "value '{}' of column '{}' is not a valid {}",
                        strings.value(row),
                        field.name(),
                        sql_type_name(field.data_type())
                    ));
                }
            }
            columns.push(converted);
        }
        batches.push(finish_batch(
            schema,
            data_cols,
            corrupt_index,
            columns,
            &raw,
            opts,
            path,
        )?);
    }
    Ok(batches)
}

fn json_decoder(schema: &SchemaRef, rows: usize) -> Result<arrow::json::reader::Decoder> {
    // Spark reads a JSON number or boolean into a string column as its text.
    Ok(arrow::json::ReaderBuilder::new(schema.clone())
        .with_coerce_primitive(true)
        .with_batch_size(rows.max(1))
        .build_decoder()?)
}

/// Decodes `lines` (each one JSON object) into one batch of `schema`.
fn decode_json_lines(schema: &SchemaRef, lines: &[&str]) -> Result<RecordBatch> {
    let mut decoder = json_decoder(schema, lines.len())?;
    for line in lines {
        let bytes = line.as_bytes();
        let mut pos = 0;
        while pos < bytes.len() {
            let read = decoder.decode(&bytes[pos..])?;
            if read == 0 {
                break;
            }
            pos += read;
        }
        if pos < bytes.len() {
            return Err(Error::MalformedRecord {
                location: String::new(),
                message: "a line holds more than one JSON value".into(),
            });
        }
        decoder.decode(b"\n")?;
    }
    let batch = decoder.flush()?;
    let batch = batch.unwrap_or_else(|| RecordBatch::new_empty(schema.clone()));
    if batch.num_rows() != lines.len() {
        return Err(Error::Internal(format!(
            "JSON decoder returned {} rows for {} lines",
            batch.num_rows(),
            lines.len()
        )));
    }
    Ok(batch)
}

/// Why one JSON line cannot be decoded, or `None` when it can.
fn json_line_error(schema: &SchemaRef, line: &str) -> Option<String> {
    match serde_json::from_str::<serde_json::Value>(line) {
        Err(e) => return Some(format!("invalid JSON: {e}")),
        Ok(v) if !v.is_object() => return Some("a JSON line must hold an object".to_string()),
        Ok(_) => {}
    }
    decode_json_lines(schema, &[line])
        .err()
        .map(|e| e.to_string())
}

fn read_json(path: &Path, schema: &SchemaRef, opts: &ReaderOptions) -> Result<Vec<RecordBatch>> {
    let text = read_text_file(path)?;
    let (data_cols, corrupt_index) = split_corrupt_column(schema, &opts.corrupt_column);
    let data_schema = schema.project(&data_cols)?;
    let decode_schema = without_timezones(&data_schema);
    let lines: Vec<(usize, &str)> = text
        .split('\n')
        .enumerate()
        .map(|(i, l)| (i + 1, l.strip_suffix('\r').unwrap_or(l)))
        .filter(|(_, l)| !l.trim().is_empty())
        .collect();
    let mut batches = Vec::new();
    for chunk in lines.chunks(BATCH_ROWS) {
        let texts: Vec<&str> = chunk.iter().map(|&(_, l)| l).collect();
        // Arrow's decoder rejects malformed JSON; a line must also hold an object.
        let objects_only = texts.iter().all(|l| l.trim_start().starts_with('{'));
        let fast = if objects_only {
            decode_json_lines(&decode_schema, &texts).ok()
        } else {
            None
        };
        let (columns, raw) = match fast {
            Some(batch) => {
                let raw = chunk
                    .iter()
                    .map(|&(line, raw)| RawRecord {
                        raw,
                        line,
                        malformed: None,
                    })
                    .collect::<Vec<_>>();
                (batch.columns().to_vec(), raw)
            }
            None => decode_json_per_line(&decode_schema, chunk)?,
        };
        let columns = retag_columns(columns, &data_schema);
        batches.push(finish_batch(
            schema,
            &data_cols,
            corrupt_index,
            columns,
            &raw,
            opts,
            path,
        )?);
    }
    Ok(batches)
}

/// The slow path for a chunk with malformed lines: finds them one by one, decodes the good ones
/// together and gives the bad ones all-null data columns.
fn decode_json_per_line<'a>(
    data_schema: &SchemaRef,
    chunk: &[(usize, &'a str)],
) -> Result<(Vec<ArrayRef>, Vec<RawRecord<'a>>)> {
    let raw: Vec<RawRecord<'a>> = chunk
        .iter()
        .map(|&(line, text)| RawRecord {
            raw: text,
            line,
            malformed: json_line_error(data_schema, text),
        })
        .collect();
    let good: Vec<&str> = raw
        .iter()
        .filter(|r| r.malformed.is_none())
        .map(|r| r.raw)
        .collect();
    let good_batch = decode_json_lines(data_schema, &good)?;
    let mut good_row = 0;
    let indices: Vec<(usize, usize)> = raw
        .iter()
        .map(|r| {
            if r.malformed.is_none() {
                good_row += 1;
                (0, good_row - 1)
            } else {
                (1, 0)
            }
        })
        .collect();
    let mut columns = Vec::with_capacity(data_schema.fields().len());
    for (i, field) in data_schema.fields().iter().enumerate() {
        let null_row = new_null_array(field.data_type(), 1);
        let good_col = good_batch.column(i);
        columns.push(interleave(
            &[good_col.as_ref(), null_row.as_ref()],
            &indices,
        )?);
    }
    Ok((columns, raw))
}

fn read_parquet(
    path: &Path,
    schema: &SchemaRef,
    projection: Option<&[usize]>,
    bounds: &[crate::source::ColumnBound],
) -> Result<Vec<RecordBatch>> {
    let wanted: SchemaRef = match projection {
        Some(cols) => Arc::new(schema.project(cols)?),
        None => schema.clone(),
    };
    let damaged = |e: parquet::errors::ParquetError| Error::MalformedRecord {
        location: path.display().to_string(),
        message: format!("not a readable Parquet file: {e}"),
    };
    let open = || -> Result<ParquetRecordBatchReaderBuilder<File>> {
        let file = File::open(path).map_err(|e| Error::io(path, e))?;
        ParquetRecordBatchReaderBuilder::try_new(file).map_err(damaged)
    };
    let builder = open()?;
    // Predicate push-down: row groups whose statistics rule out a pushed bound are skipped.
    let kept: Vec<usize> = (0..builder.metadata().num_row_groups())
        .filter(|&g| row_group_may_match(&builder, g, bounds))
        .collect();
    let row_groups = kept.len();
    if row_groups == 0 {
        return Ok(Vec::new());
    }
    // Row groups are decoded in parallel, in contiguous ranges, so batch order is file order.
    let workers = std::thread::available_parallelism()
        .map_or(1, |n| n.get())
        .min(row_groups);
    if workers <= 1 {
        let all = row_groups == builder.metadata().num_row_groups();
        return decode_parquet(path, builder, (!all).then_some(kept), &wanted);
    }
    let per_worker = row_groups.div_ceil(workers);
    let ranges: Vec<Vec<usize>> = kept.chunks(per_worker).map(<[usize]>::to_vec).collect();
    let parts: Vec<Result<Vec<RecordBatch>>> = std::thread::scope(|scope| {
        let handles: Vec<_> = ranges
            .into_iter()
            .map(|groups| {
                let wanted = &wanted;
                let open = &open;
                scope.spawn(move || decode_parquet(path, open()?, Some(groups), wanted))
            })
            .collect();
        handles
            .into_iter()
            .map(|h| {
                h.join().unwrap_or_else(|_| {
                    Err(Error::Internal(format!(
                        "a Parquet decoding thread panicked on {}",
                        path.display()
                    )))
                })
            })
            .collect()
    });
    let mut out = Vec::new();
    for part in parts {
        out.extend(part?);
    }
    Ok(out)
}

/// Whether row group `g` may hold rows satisfying every bound, judged by its min/max statistics
/// (integer columns, and timestamp columns stored in microseconds). Unknown means "may".
fn row_group_may_match(
    builder: &ParquetRecordBatchReaderBuilder<File>,
    g: usize,
    bounds: &[crate::source::ColumnBound],
) -> bool {
    use parquet::file::statistics::Statistics;
    let arrow_schema = builder.schema();
    let rg = builder.metadata().row_group(g);
    bounds.iter().all(|b| {
        let Ok(field) = arrow_schema.field_with_name(&b.column) else {
            return true;
        };
        // Signed integers and µs timestamps: their statistics compare as i64 directly.
        let comparable = matches!(
            field.data_type(),
            DataType::Int8
                | DataType::Int16
                | DataType::Int32
                | DataType::Int64
                | DataType::Timestamp(TimeUnit::Microsecond, _)
        );
        let leaf = rg
            .columns()
            .iter()
            .position(|c| c.column_path().parts() == [b.column.clone()]);
        let (true, Some(leaf)) = (comparable, leaf) else {
            return true;
        };
        match rg.column(leaf).statistics() {
            Some(Statistics::Int64(s)) => match (s.min_opt(), s.max_opt()) {
                (Some(min), Some(max)) => b.may_match(*min, *max),
                _ => true,
            },
            Some(Statistics::Int32(s)) => match (s.min_opt(), s.max_opt()) {
                (Some(min), Some(max)) => b.may_match(i64::from(*min), i64::from(*max)),
                _ => true,
            },
            _ => true,
        }
    })
}

/// Decodes the `row_groups` (all when `None`) of a Parquet file into batches of `wanted`.
fn decode_parquet(
    path: &Path,
    builder: ParquetRecordBatchReaderBuilder<File>,
    row_groups: Option<Vec<usize>>,
    wanted: &SchemaRef,
) -> Result<Vec<RecordBatch>> {
    let damaged = |e: parquet::errors::ParquetError| Error::MalformedRecord {
        location: path.display().to_string(),
        message: format!("not a readable Parquet file: {e}"),
    };
    let file_schema = builder.schema().clone();
    let mut roots: Vec<usize> = wanted
        .fields()
        .iter()
        .filter_map(|f| file_schema.index_of(f.name()).ok())
        .collect();
    roots.sort_unstable();
    roots.dedup();
    let mask = ProjectionMask::roots(builder.parquet_schema(), roots);
    let mut builder = builder.with_projection(mask).with_batch_size(BATCH_ROWS);
    if let Some(groups) = row_groups {
        builder = builder.with_row_groups(groups);
    }
    let reader = builder.build().map_err(damaged)?;
    let mut out = Vec::new();
    for batch in reader {
        let batch = batch.map_err(|e| Error::MalformedRecord {
            location: path.display().to_string(),
            message: format!("cannot decode Parquet data: {e}"),
        })?;
        let mut columns = Vec::with_capacity(wanted.fields().len());
        for field in wanted.fields() {
            let col = match batch.schema().index_of(field.name()) {
                Ok(i) => {
                    let col = batch.column(i);
                    if col.data_type() == field.data_type() {
                        col.clone()
                    } else {
                        cast_to(col, field.data_type(), &CastOptions::default()).map_err(|e| {
                            Error::Source {
                                source_name: path.display().to_string(),
                                message: format!(
                                    "column '{}' is {} in the file but {} in the schema: {e}",
                                    field.name(),
                                    col.data_type(),
                                    field.data_type()
                                ),
                            }
                        })?
                    }
                }
                Err(_) => new_null_array(field.data_type(), batch.num_rows()),
            };
            columns.push(col);
        }
        out.push(RecordBatch::try_new_with_options(
            wanted.clone(),
            columns,
            &RecordBatchOptions::new().with_row_count(Some(batch.num_rows())),
        )?);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_lines_split_like_spark_and_survive_bad_utf8() {
        let dir = tempfile::tempdir().unwrap();
        let schema = Arc::new(Schema::new(vec![Field::new("value", DataType::Utf8, true)]));
        let read = |bytes: &[u8]| -> Vec<String> {
            let path = dir.path().join("t.txt");
            std::fs::write(&path, bytes).unwrap();
            read_text(&path, &schema)
                .unwrap()
                .iter()
                .flat_map(|b| {
                    let a = b.column(0).as_string::<i32>().clone();
                    (0..a.len()).map(move |i| a.value(i).to_string())
                })
                .collect()
        };
        assert_eq!(read(b""), Vec::<String>::new());
        assert_eq!(read(b"a\n\nb c\r\nd"), ["a", "", "b c", "d"]);
        assert_eq!(read(b"x\n"), ["x"]);
        assert_eq!(read(b"last\r"), ["last"]);
        assert_eq!(read(b"ok\n\xff\xfe!\n"), ["ok", "\u{fffd}\u{fffd}!"]);
        // Batches of BATCH_ROWS rows, all lines kept in order.
        let many: String = (0..BATCH_ROWS + 5).map(|i| format!("{i}\n")).collect();
        let lines = read(many.as_bytes());
        assert_eq!(lines.len(), BATCH_ROWS + 5);
        assert_eq!(lines[BATCH_ROWS + 4], (BATCH_ROWS + 4).to_string());
    }

    #[test]
    fn splits_quoted_csv() {
        let text = "a,\"b,c\",\"say \"\"hi\"\"\"\n\n1,\"multi\nline\",\r\nlast";
        let records = split_csv(text, ',', '"', '\\');
        assert_eq!(records.len(), 3);
        assert_eq!(
            records[0].fields,
            vec![
                Some("a".to_string()),
                Some("b,c".to_string()),
                Some("say \"hi\"".to_string())
            ]
        );
        assert_eq!(records[1].fields[1].as_deref(), Some("multi\nline"));
        assert_eq!(records[1].fields[2], None);
        assert_eq!(records[1].line, 3);
        assert_eq!(records[2].line, 5);
        assert_eq!(records[2].raw, "last");
    }

    fn opts() -> ReaderOptions {
        ReaderOptions {
            header: true,
            sep: ',',
            quote: '"',
            escape: '\\',
            timestamp_format: None,
            mode: ParseMode::FailFast,
            corrupt_column: "_corrupt_record".into(),
        }
    }

    #[test]
    fn csv_fast_and_per_record_paths_agree() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f.csv");
        std::fs::write(
            &path,
            "a,b,c,t,d\n1,\"x,\"\"y\"\"\",true,2024-01-01T00:00:01Z,1.5\n\n,,,,\n3,\"multi\nline\",false,2024-01-01 00:00:02,-2\n",
        )
        .unwrap();
        let schema: SchemaRef = Arc::new(Schema::new(vec![
            Field::new("a", DataType::Int64, true),
            Field::new("b", DataType::Utf8, true),
            Field::new("c", DataType::Boolean, true),
            Field::new(
                "t",
                DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into())),
                true,
            ),
            Field::new("d", DataType::Float64, true),
        ]));
        let cols: Vec<usize> = (0..5).collect();
        let fast = read_csv_fast(&path, &schema, &opts(), &cols, None, None)
            .unwrap()
            .expect("well-formed file takes the fast path");
        let slow = read_csv_per_record(&path, &schema, &opts(), &cols, None).unwrap();
        assert_eq!(fast, slow);
        assert_eq!(fast[0].num_rows(), 3);
    }

    #[test]
    fn json_lines_with_two_objects_are_not_accepted_in_bulk() {
        let schema: SchemaRef = Arc::new(Schema::new(vec![Field::new("a", DataType::Int64, true)]));
        assert!(decode_json_lines(&schema, &["{\"a\":1} {\"a\":2}"]).is_err());
        assert!(decode_json_lines(&schema, &["{\"a\":1}", "{\"a\":2}"]).is_ok());
        assert!(json_line_error(&schema, "5").is_some());
    }

    #[test]
    fn translates_java_timestamp_patterns() {
        let f = TimestampFormat::parse("dd/MM/yyyy HH:mm:ss").unwrap();
        assert_eq!(f.parse_micros("02/01/1970 00:00:01"), Some(86_401_000_000));
        let z = TimestampFormat::parse("yyyy-MM-dd'T'HH:mm:ssXXX").unwrap();
        assert_eq!(z.parse_micros("1970-01-01T01:00:00+01:00"), Some(0));
        assert!(TimestampFormat::parse("yyyy[-MM]").is_err());
    }
}

#[cfg(test)]
#[path = "csv_fast_tests.rs"]
mod csv_fast_tests;
