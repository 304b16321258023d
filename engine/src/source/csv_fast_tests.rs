//! Tests of the fast CSV path against the per-record path (the reference): random files of
//! every column type, quoting style and line ending, split into chunks and read in blocks of
//! every size, must decode to the same columns, and a file the per-record path finds malformed
//! must not be taken by the fast path.

use std::sync::Arc;

use arrow::array::Array;
use arrow::compute::concat_batches;
use arrow::datatypes::{DataType, Field, Schema, SchemaRef, TimeUnit};
use arrow::record_batch::RecordBatch;
use proptest::prelude::*;

use super::{ParseMode, ReaderOptions, TimestampFormat, read_csv_fast_split, read_csv_per_record};
use crate::source::csv_fast::CsvSplit;

/// The column types of the generated files.
#[derive(Clone, Copy, Debug)]
enum Col {
    Int,
    Int32,
    Text,
    Float,
    Bool,
    Timestamp,
    Decimal,
    Date,
}

impl Col {
    fn data_type(self) -> DataType {
        match self {
            Col::Int => DataType::Int64,
            Col::Int32 => DataType::Int32,
            Col::Text => DataType::Utf8,
            Col::Float => DataType::Float64,
            Col::Bool => DataType::Boolean,
            Col::Timestamp => DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into())),
            Col::Decimal => DataType::Decimal128(10, 2),
            Col::Date => DataType::Date32,
        }
    }
}

fn col() -> impl Strategy<Value = Col> {
    prop_oneof![
        3 => Just(Col::Int),
        1 => Just(Col::Int32),
        3 => Just(Col::Text),
        1 => Just(Col::Float),
        1 => Just(Col::Bool),
        2 => Just(Col::Timestamp),
        1 => Just(Col::Decimal),
        1 => Just(Col::Date),
    ]
}

/// How a field is written: bare when it can be, quoted with doubled quotes, or quoted with
/// backslash-escaped quotes.
#[derive(Clone, Copy, Debug)]
enum Quoting {
    Bare,
    Doubled,
    Backslash,
}

fn quoting() -> impl Strategy<Value = Quoting> {
    prop_oneof![
        Just(Quoting::Bare),
        Just(Quoting::Doubled),
        Just(Quoting::Backslash)
    ]
}

/// Text with the characters that matter to CSV: separators, quotes, line breaks, backslashes,
/// spaces and non-ASCII letters; sometimes long.
fn text() -> impl Strategy<Value = String> {
    let ch = prop_oneof![
        6 => prop::char::range('a', 'z'),
        1 => Just(','),
        1 => Just('"'),
        1 => Just('\n'),
        1 => Just('\r'),
        1 => Just('\\'),
        1 => Just(' '),
        1 => Just('é'),
        1 => Just('€'),
    ];
    prop_oneof![
        4 => prop::collection::vec(ch.clone(), 0..12),
        1 => prop::collection::vec(ch, 200..600),
    ]
    .prop_map(|chars| chars.into_iter().collect())
}

/// A value of `col` as canonical text (what a writer produces), or anything when `odd`.
fn value(col: Col, formatted_timestamps: bool) -> BoxedStrategy<String> {
    match col {
        Col::Int => prop_oneof![
            any::<i64>().prop_map(|v| v.to_string()),
            (-99_999i64..99_999).prop_map(|v| v.to_string()),
        ]
        .boxed(),
        Col::Int32 => any::<i32>().prop_map(|v| v.to_string()).boxed(),
        Col::Text => text().boxed(),
        Col::Float => prop_oneof![
            (-1_000_000i64..1_000_000).prop_map(|v| (v as f64 / 64.0).to_string()),
            any::<f64>().prop_map(|v| v.to_string()),
        ]
        .boxed(),
        Col::Bool => prop_oneof![Just("true".to_string()), Just("false".to_string())].boxed(),
        Col::Timestamp => (0i64..4_000_000_000_000, 0u8..3)
            .prop_map(move |(ms, shape)| {
                let t = chrono::DateTime::from_timestamp_millis(ms).unwrap_or_default();
                match (formatted_timestamps, shape) {
                    (true, _) => t.format("%Y-%m-%d %H:%M:%S%.3f").to_string(),
                    (false, 0) => t.format("%Y-%m-%d %H:%M:%S").to_string(),
                    (false, 1) => t.format("%Y-%m-%dT%H:%M:%S%.3fZ").to_string(),
                    (false, _) => t.format("%Y-%m-%d").to_string(),
                }
            })
            .boxed(),
        Col::Decimal => (-9_999_999i64..9_999_999, 0u32..4)
            .prop_map(|(v, scale)| {
                let text = format!("{:0>5}", v.unsigned_abs());
                let (int, frac) = text.split_at(text.len() - scale as usize);
                let sign = if v < 0 { "-" } else { "" };
                if scale == 0 {
                    format!("{sign}{int}")
                } else {
                    format!("{sign}{int}.{frac}")
                }
            })
            .boxed(),
        Col::Date => (0i64..50_000)
            .prop_map(|days| {
                (chrono::NaiveDate::from_ymd_opt(1970, 1, 1).unwrap_or_default()
                    + chrono::Duration::days(days))
                .to_string()
            })
            .boxed(),
    }
}

/// Odd values: whitespace, signs, leading zeros, junk, text after quotes.
fn odd_value() -> impl Strategy<Value = String> {
    prop_oneof![
        Just(" 7 ".to_string()),
        Just("+5".to_string()),
        Just("007".to_string()),
        Just("-0".to_string()),
        Just("abc".to_string()),
        Just("1.5".to_string()),
        Just("99999999999999999999".to_string()),
        Just("2024-13-01 00:00:00.000".to_string()),
        Just(" 2024-01-01 00:00:00.000".to_string()),
        Just("TRUE".to_string()),
        Just("\"x\"y".to_string()),
        Just("\"open".to_string()),
        Just("   ".to_string()),
    ]
}

/// One field as written in the file. A canonical (`clean`) field is always one the fast path
/// reads; otherwise the text goes in raw when it cannot be quoted as asked.
fn render(content: &str, quoting: Quoting, clean: bool) -> String {
    let needs_quotes = content.contains([',', '\n', '\r']) || content.starts_with('"');
    match quoting {
        Quoting::Bare if !needs_quotes || !clean => content.to_string(),
        Quoting::Doubled | Quoting::Bare => {
            let mut content = content.to_string();
            if clean {
                // A backslash before a quote, or before the closing quote, is an escape.
                content = content.replace("\\\"", "/\"");
                while content.ends_with('\\') {
                    content.pop();
                    content.push('/');
                }
            }
            format!("\"{}\"", content.replace('"', "\"\""))
        }
        Quoting::Backslash => {
            let mut content = content.to_string();
            if clean {
                while content.ends_with('\\') {
                    content.pop();
                    content.push('/');
                }
            }
            format!("\"{}\"", content.replace('"', "\\\""))
        }
    }
}

/// A generated file: its columns, text, options and whether every record is canonical.
#[derive(Debug)]
struct CsvCase {
    cols: Vec<Col>,
    text: String,
    header: bool,
    formatted_timestamps: bool,
    clean: bool,
}

fn csv_case() -> impl Strategy<Value = CsvCase> {
    (
        prop::collection::vec(col(), 1..6),
        any::<bool>(),
        any::<bool>(),
        prop_oneof![3 => Just(true), 1 => Just(false)],
    )
        .prop_flat_map(|(cols, header, formatted_timestamps, clean)| {
            let cell = |c: Col| {
                let canonical = (value(c, formatted_timestamps), quoting(), 0u8..10)
                    .prop_map(|(v, q, empty)| (if empty == 0 { String::new() } else { v }, q));
                if clean {
                    canonical.boxed()
                } else {
                    prop_oneof![
                        4 => canonical,
                        1 => (odd_value(), quoting()),
                    ]
                    .boxed()
                }
            };
            let row = cols.iter().map(|&c| cell(c)).collect::<Vec<_>>();
            // Per record: its cells, line ending (0: \n, 1: \r\n, 2: a blank line before),
            // and for odd files a field too many or too few.
            let rows = prop::collection::vec((row, 0u8..3, 0u8..20), 0..60);
            (
                Just(cols),
                (rows, prop_oneof![3 => Just(0usize), 1 => 1usize..40]),
                any::<bool>(),
                Just(header),
                Just(formatted_timestamps),
                Just(clean),
            )
        })
        .prop_map(
            |(
                cols,
                (rows, leading_blank_lines),
                final_newline,
                header,
                formatted_timestamps,
                clean,
            )| {
                let mut text = "\n".repeat(leading_blank_lines);
                if header {
                    let names: Vec<String> = (0..cols.len()).map(|i| format!("c{i}")).collect();
                    text.push_str(&names.join(","));
                    text.push('\n');
                }
                let count = rows.len();
                for (i, (cells, ending, shape)) in rows.into_iter().enumerate() {
                    if ending == 2 {
                        text.push('\n');
                    }
                    let mut fields: Vec<String> =
                        cells.iter().map(|(v, q)| render(v, *q, clean)).collect();
                    if !clean && shape == 0 {
                        fields.push("extra".into());
                    } else if !clean && shape == 1 && fields.len() > 1 {
                        fields.pop();
                    }
                    text.push_str(&fields.join(","));
                    if i + 1 < count || final_newline {
                        text.push_str(if ending == 1 { "\r\n" } else { "\n" });
                    }
                }
                CsvCase {
                    cols,
                    text,
                    header,
                    formatted_timestamps,
                    clean,
                }
            },
        )
}

fn options(header: bool, formatted_timestamps: bool) -> ReaderOptions {
    ReaderOptions {
        header,
        sep: ',',
        quote: '"',
        escape: '\\',
        timestamp_format: formatted_timestamps
            .then(|| TimestampFormat::parse("yyyy-MM-dd HH:mm:ss.SSS"))
            .transpose()
            .expect("valid pattern"),
        mode: ParseMode::FailFast,
        corrupt_column: "_corrupt_record".into(),
    }
}

fn schema_of(cols: &[Col]) -> SchemaRef {
    Arc::new(Schema::new(
        cols.iter()
            .enumerate()
            .map(|(i, c)| Field::new(format!("c{i}"), c.data_type(), true))
            .collect::<Vec<_>>(),
    ))
}

fn concat(schema: &SchemaRef, batches: &[RecordBatch]) -> RecordBatch {
    concat_batches(schema, batches).expect("batches of one schema")
}

/// Asserts equal columns, naming the first that differs.
fn assert_same_columns(fast: &RecordBatch, slow: &RecordBatch) {
    assert_eq!(fast.num_rows(), slow.num_rows(), "row count");
    assert_eq!(fast.schema(), slow.schema(), "schema");
    for i in 0..fast.num_columns() {
        assert_eq!(
            fast.column(i).to_data(),
            slow.column(i).to_data(),
            "column {}",
            fast.schema().field(i).name()
        );
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    /// Whatever the chunk count and block size, the fast path decodes exactly what the
    /// per-record path does, declines every file the per-record path finds malformed, and
    /// takes every canonical file.
    #[test]
    fn fast_csv_path_matches_per_record_path(
        case in csv_case(),
        chunks in 1usize..6,
        block_bytes in prop_oneof![1usize..8, 8usize..200, 200usize..100_000],
        projection_seed in any::<u64>(),
    ) {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("f.csv");
        std::fs::write(&path, &case.text).expect("write file");
        let schema = schema_of(&case.cols);
        let opts = options(case.header, case.formatted_timestamps);
        let data_cols: Vec<usize> = (0..case.cols.len()).collect();
        let split = CsvSplit { chunks, min_chunk_bytes: 1, block_bytes };

        let slow = read_csv_per_record(&path, &schema, &opts, &data_cols, None);
        let fast = read_csv_fast_split(&path, &schema, &opts, &data_cols, None, None, split)
            .expect("no I/O error");
        match &slow {
            Err(_) => prop_assert!(fast.is_none(), "fast path took a malformed file"),
            Ok(slow) => {
                let slow = concat(&schema, slow);
                if case.clean {
                    prop_assert!(fast.is_some(), "fast path declined a canonical file");
                }
                if let Some(fast) = fast {
                    assert_same_columns(&concat(&schema, &fast), &slow);
                }
                // A projection decodes only its columns, in its order.
                let projection: Vec<usize> = (0..case.cols.len())
                    .filter(|i| projection_seed >> i & 1 == 1)
                    .rev()
                    .collect();
                let projected = read_csv_fast_split(
                    &path, &schema, &opts, &data_cols, None, Some(&projection), split,
                )
                .expect("no I/O error");
                if case.clean {
                    prop_assert!(projected.is_some(), "fast path declined a canonical file");
                }
                if let Some(projected) = projected {
                    let projected_schema = Arc::new(schema.project(&projection).expect("projection"));
                    let slow_projected = slow.project(&projection).expect("projection");
                    assert_same_columns(&concat(&projected_schema, &projected), &slow_projected);
                }
            }
        }
    }

    /// The no-chrono reading of `yyyy-MM-dd HH:mm:ss.SSS` agrees with chrono, valid or not.
    #[test]
    fn iso_timestamps_parse_like_chrono(
        y in 0u32..10_000, mo in 0u32..14, d in 0u32..33,
        h in 0u32..25, mi in 0u32..61, s in 0u32..61, ms in 0u32..1000,
    ) {
        let text = format!("{y:04}-{mo:02}-{d:02} {h:02}:{mi:02}:{s:02}.{ms:03}");
        let format = TimestampFormat::parse("yyyy-MM-dd HH:mm:ss.SSS").expect("valid pattern");
        let expected = chrono::NaiveDate::from_ymd_opt(y as i32, mo, d)
            .and_then(|date| date.and_hms_milli_opt(h, mi, s, ms))
            .filter(|_| s < 60)
            .map(|t| t.and_utc().timestamp_micros());
        prop_assert_eq!(format.parse_iso_like(text.as_bytes()), expected);
    }
}

/// Writes `text`, reads it with `split` on both paths and asserts the fast path took it and
/// agrees; returns the row count.
fn fast_equals_slow(text: &str, cols: &[Col], header: bool, split: CsvSplit) -> usize {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("f.csv");
    std::fs::write(&path, text).expect("write file");
    let schema = schema_of(cols);
    let opts = options(header, false);
    let data_cols: Vec<usize> = (0..cols.len()).collect();
    let slow = read_csv_per_record(&path, &schema, &opts, &data_cols, None).expect("well-formed");
    let fast = read_csv_fast_split(&path, &schema, &opts, &data_cols, None, None, split)
        .expect("no I/O error")
        .expect("fast path takes a well-formed file");
    let slow = concat(&schema, &slow);
    assert_same_columns(&concat(&schema, &fast), &slow);
    slow.num_rows()
}

#[test]
fn a_cut_inside_a_quoted_field_with_newlines_does_not_corrupt_records() {
    // The middle of the file, and the line starts after it, are inside record 2's quoted
    // field, whose lines read as well-formed records on their own: a chunk starting at such a
    // cut parses fine but wrongly, and must be redone from the true boundary.
    let lines = "5,inner \"\"quoted\"\"\n".repeat(200);
    let text = format!("1,\"first\"\n2,\"{lines}6,end\"\n3,\"x\"\n4,last\n");
    for chunks in 2..6 {
        for block_bytes in [1, 7, 64, 1 << 20] {
            let split = CsvSplit {
                chunks,
                min_chunk_bytes: 1,
                block_bytes,
            };
            assert_eq!(
                fast_equals_slow(&text, &[Col::Int, Col::Text], false, split),
                4
            );
        }
    }
}

#[test]
fn a_header_after_blank_lines_past_the_first_cut_is_still_skipped() {
    // The first cuts fall in the blank lines: the chunk holding the header must skip it.
    let text = format!("{}name\na\nb\n", "\n".repeat(100));
    for chunks in 2..6 {
        let split = CsvSplit {
            chunks,
            min_chunk_bytes: 1,
            block_bytes: 16,
        };
        assert_eq!(fast_equals_slow(&text, &[Col::Text], true, split), 2);
    }
}

#[test]
fn blank_lines_crlf_and_a_missing_final_newline_read_alike() {
    let text = "a,b\r\n\r\n1,\"x\r\ny\"\r\n\n2,\r\n3,\"\"\n\n4,\"q\"\"\"";
    for block_bytes in [1, 2, 3, 1 << 20] {
        let split = CsvSplit {
            chunks: 3,
            min_chunk_bytes: 1,
            block_bytes,
        };
        assert_eq!(
            fast_equals_slow(text, &[Col::Int, Col::Text], true, split),
            4
        );
    }
}

#[test]
fn a_corrupt_record_column_is_all_null_on_the_fast_path_and_declined_when_needed() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("f.csv");
    let schema: SchemaRef = Arc::new(Schema::new(vec![
        Field::new("a", DataType::Int64, true),
        Field::new("_corrupt_record", DataType::Utf8, true),
        Field::new("b", DataType::Utf8, true),
    ]));
    let opts = ReaderOptions {
        mode: ParseMode::Permissive,
        ..options(false, false)
    };
    let data_cols = [0, 2];
    let split = CsvSplit {
        chunks: 2,
        min_chunk_bytes: 1,
        block_bytes: 5,
    };
    std::fs::write(&path, "1,x\n2,\"y,z\"\n").expect("write file");
    let fast = read_csv_fast_split(&path, &schema, &opts, &data_cols, Some(1), None, split)
        .expect("no I/O error")
        .expect("well-formed file");
    let slow = read_csv_per_record(&path, &schema, &opts, &data_cols, Some(1)).expect("reads");
    assert_same_columns(&concat(&schema, &fast), &concat(&schema, &slow));
    assert_eq!(concat(&schema, &fast).column(1).null_count(), 2);

    // A record with a field too few needs the corrupt-record column: the fast path declines.
    std::fs::write(&path, "1,x\n2\n").expect("write file");
    let fast = read_csv_fast_split(&path, &schema, &opts, &data_cols, Some(1), None, split)
        .expect("no I/O error");
    assert!(fast.is_none());
}

#[test]
fn another_separator_and_quote_read_alike() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("f.csv");
    std::fs::write(&path, "1;'a;b'\n-2;'it''s'\n3;\"x\"\n").expect("write file");
    let schema = schema_of(&[Col::Int, Col::Text]);
    let opts = ReaderOptions {
        sep: ';',
        quote: '\'',
        ..options(false, false)
    };
    let split = CsvSplit {
        chunks: 2,
        min_chunk_bytes: 1,
        block_bytes: 3,
    };
    let fast = read_csv_fast_split(&path, &schema, &opts, &[0, 1], None, None, split)
        .expect("no I/O error")
        .expect("well-formed file");
    let slow = read_csv_per_record(&path, &schema, &opts, &[0, 1], None).expect("reads");
    let fast = concat(&schema, &fast);
    assert_same_columns(&fast, &concat(&schema, &slow));
    let texts = fast
        .column(1)
        .as_any()
        .downcast_ref::<arrow::array::StringArray>();
    let texts: Vec<&str> = texts.expect("text column").iter().flatten().collect();
    assert_eq!(texts, ["a;b", "it's", "\"x\""]);
}
