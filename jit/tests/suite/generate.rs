//! Random well-typed kernel specs and random batches for the differential tests.
//!
//! A spec is grown from a stream of random choices (`Choices`), so every generated tree is well
//! typed by construction and proptest can shrink the choice vector.

use std::sync::Arc;

use arrow::array::{
    ArrayRef, BooleanArray, Date32Array, Decimal128Array, DictionaryArray, Float32Array,
    Float64Array, Int8Array, Int16Array, Int32Array, Int64Array, LargeStringArray, RecordBatch,
    StringArray, StringViewArray, TimestampMicrosecondArray, UInt8Array, UInt32Array, UInt64Array,
};
use arrow::datatypes::{DataType, Field, Int32Type, Schema, SchemaRef, TimeUnit};
use weir_jit::{
    AggFunc, BinaryOp, ExprId, KernelSpec, KernelSpecBuilder, Scalar, ScalarFunc, UnaryOp,
};

/// Deterministic choice stream.
pub struct Choices {
    words: Vec<u32>,
    pos: usize,
}

impl Choices {
    pub fn new(words: Vec<u32>) -> Self {
        Choices { words, pos: 0 }
    }
    pub fn pick(&mut self, n: usize) -> usize {
        let w = self.words.get(self.pos).copied().unwrap_or(0);
        self.pos += 1;
        (w as usize) % n.max(1)
    }
    pub fn coin(&mut self, percent: usize) -> bool {
        self.pick(100) < percent
    }
}

pub const TS: DataType = DataType::Timestamp(TimeUnit::Microsecond, None);

/// The column set of the generated batches (index = column).
pub fn schema() -> SchemaRef {
    Arc::new(Schema::new(vec![
        Field::new("i8", DataType::Int8, true),
        Field::new("i16", DataType::Int16, true),
        Field::new("i32", DataType::Int32, true),
        Field::new("i64", DataType::Int64, true),
        Field::new("u8", DataType::UInt8, true),
        Field::new("u32", DataType::UInt32, true),
        Field::new("u64", DataType::UInt64, true),
        Field::new("f32", DataType::Float32, true),
        Field::new("f64", DataType::Float64, true),
        Field::new("b", DataType::Boolean, true),
        Field::new("d", DataType::Decimal128(10, 2), true),
        Field::new("d2", DataType::Decimal128(18, 4), true),
        Field::new("date", DataType::Date32, true),
        Field::new("ts", TS, true),
        Field::new("s", DataType::Utf8, true),
        Field::new("ls", DataType::LargeUtf8, true),
        Field::new("sv", DataType::Utf8View, true),
        Field::new(
            "dict",
            DataType::Dictionary(Box::new(DataType::Int32), Box::new(DataType::Utf8)),
            true,
        ),
        Field::new("i64nn", DataType::Int64, false),
    ]))
}

/// Logical types that expressions can have, with the columns of that logical type.
fn columns_of(t: &DataType) -> Vec<usize> {
    match t {
        DataType::Int8 => vec![0],
        DataType::Int16 => vec![1],
        DataType::Int32 => vec![2],
        DataType::Int64 => vec![3, 18],
        DataType::UInt8 => vec![4],
        DataType::UInt32 => vec![5],
        DataType::UInt64 => vec![6],
        DataType::Float32 => vec![7],
        DataType::Float64 => vec![8],
        DataType::Boolean => vec![9],
        DataType::Decimal128(10, 2) => vec![10],
        DataType::Decimal128(18, 4) => vec![11],
        DataType::Date32 => vec![12],
        DataType::Timestamp(..) => vec![13],
        DataType::Utf8 => vec![14, 15, 16, 17],
        _ => vec![],
    }
}

pub const VALUE_TYPES: &[DataType] = &[
    DataType::Int8,
    DataType::Int16,
    DataType::Int32,
    DataType::Int64,
    DataType::UInt8,
    DataType::UInt32,
    DataType::UInt64,
    DataType::Float32,
    DataType::Float64,
    DataType::Boolean,
    DataType::Decimal128(10, 2),
    DataType::Decimal128(18, 4),
    DataType::Date32,
    TS,
    DataType::Utf8,
];

const STRINGS: &[&str] = &[
    "",
    "a",
    "apple",
    "Apple",
    "a much longer string than twelve",
    "héllo wörld ß",
    "12",
    " 7 ",
    "2024-03-01",
    "abc%",
];

fn literal(t: &DataType, c: &mut Choices) -> Scalar {
    if c.coin(8) {
        return Scalar::Null(t.clone());
    }
    let k = c.pick(6);
    match t {
        DataType::Int8 => Scalar::Int8([0, 1, -1, i8::MIN, i8::MAX, 3][k]),
        DataType::Int16 => Scalar::Int16([0, 1, -1, i16::MIN, i16::MAX, 7][k]),
        DataType::Int32 => Scalar::Int32([0, 1, -1, i32::MIN, i32::MAX, 123][k]),
        DataType::Int64 => Scalar::Int64([0, 1, -1, i64::MIN, i64::MAX, 123][k]),
        DataType::UInt8 => Scalar::UInt8([0, 1, 2, u8::MAX, 200, 3][k]),
        DataType::UInt32 => Scalar::UInt32([0, 1, 2, u32::MAX, 1 << 31, 3][k]),
        DataType::UInt64 => Scalar::UInt64([0, 1, 2, u64::MAX, 1 << 63, 3][k]),
        DataType::Float32 => Scalar::Float32([0.0, -0.0, 1.5, f32::NAN, f32::INFINITY, -3.25][k]),
        DataType::Float64 => {
            Scalar::Float64([0.0, -0.0, 2.5, f64::NAN, f64::NEG_INFINITY, 1e300][k])
        }
        DataType::Boolean => Scalar::Boolean(k.is_multiple_of(2)),
        DataType::Decimal128(p, s) => Scalar::Decimal128(
            [0, 1, -1, 908, 10i128.pow(*p as u32) - 1, -12345][k],
            *p,
            *s,
        ),
        DataType::Date32 => Scalar::Date32([0, -1, 19_000, 365, -719_162, 2_932_896][k]),
        DataType::Timestamp(..) => Scalar::TimestampMicros(
            [
                0,
                -1,
                1_700_000_000_000_000,
                i64::MIN,
                i64::MAX,
                86_399_999_999,
            ][k],
            None,
        ),
        _ => Scalar::Utf8(STRINGS[c.pick(STRINGS.len())].to_string()),
    }
}

fn pick_type(c: &mut Choices) -> DataType {
    VALUE_TYPES[c.pick(VALUE_TYPES.len())].clone()
}

fn is_int(t: &DataType) -> bool {
    t.is_integer()
}

/// Grows a well-typed expression of type `t`.
pub fn expr(b: &mut KernelSpecBuilder, t: &DataType, depth: usize, c: &mut Choices) -> ExprId {
    let leaf = depth == 0 || c.coin(30);
    if leaf {
        let cols = columns_of(t);
        if !cols.is_empty() && c.coin(75) {
            return b.column(cols[c.pick(cols.len())]).expect("column");
        }
        return b.literal(literal(t, c)).expect("literal");
    }
    let d = depth - 1;
    // Generic shapes valid for every type.
    match c.pick(10) {
        0 => {
            let cond = expr(b, &DataType::Boolean, d, c);
            let x = expr(b, t, d, c);
            let y = expr(b, t, d, c);
            return if c.coin(50) {
                b.case(vec![(cond, x)], Some(y)).expect("case")
            } else {
                let cond2 = expr(b, &DataType::Boolean, d, c);
                b.case(vec![(cond, x), (cond2, y)], None).expect("case")
            };
        }
        1 => {
            let x = expr(b, t, d, c);
            let y = expr(b, t, d, c);
            return b.coalesce(vec![x, y]).expect("coalesce");
        }
        2 if *t != DataType::Boolean => {
            let from = pick_type(c);
            let x = expr(b, &from, d, c);
            let ansi = c.coin(20);
            if let Ok(e) = b.cast(x, t.clone(), ansi) {
                return e;
            }
        }
        _ => {}
    }
    match t {
        DataType::Boolean => match c.pick(7) {
            0 | 1 => {
                let ot = pick_type(c);
                let x = expr(b, &ot, d, c);
                let y = expr(b, &ot, d, c);
                let op = [
                    BinaryOp::Eq,
                    BinaryOp::NotEq,
                    BinaryOp::Lt,
                    BinaryOp::LtEq,
                    BinaryOp::Gt,
                    BinaryOp::GtEq,
                    BinaryOp::EqNullSafe,
                ][c.pick(7)];
                b.binary(op, x, y).expect("cmp")
            }
            2 => {
                let x = expr(b, t, d, c);
                let y = expr(b, t, d, c);
                b.binary(
                    if c.coin(50) {
                        BinaryOp::And
                    } else {
                        BinaryOp::Or
                    },
                    x,
                    y,
                )
                .expect("logic")
            }
            3 => {
                let x = expr(b, t, d, c);
                b.unary(UnaryOp::Not, x).expect("not")
            }
            4 => {
                let ot = pick_type(c);
                let x = expr(b, &ot, d, c);
                b.unary(
                    if c.coin(50) {
                        UnaryOp::IsNull
                    } else {
                        UnaryOp::IsNotNull
                    },
                    x,
                )
                .expect("isnull")
            }
            5 => {
                let ot = [
                    DataType::Int64,
                    DataType::Utf8,
                    DataType::Float64,
                    DataType::Int32,
                ][c.pick(4)]
                .clone();
                let x = expr(b, &ot, d, c);
                let list = (0..1 + c.pick(3)).map(|_| expr(b, &ot, 0, c)).collect();
                b.in_list(x, list, c.coin(30)).expect("in")
            }
            _ => {
                let s = expr(b, &DataType::Utf8, d, c);
                let f = [
                    ScalarFunc::StartsWith,
                    ScalarFunc::EndsWith,
                    ScalarFunc::Contains,
                    ScalarFunc::Like,
                ][c.pick(4)];
                let p = if f == ScalarFunc::Like {
                    b.literal(Scalar::Utf8(["a%", "%e", "_pp%", "%"][c.pick(4)].into()))
                        .expect("lit")
                } else {
                    expr(b, &DataType::Utf8, 0, c)
                };
                b.call(f, vec![s, p]).expect("call")
            }
        },
        t if is_int(t) || matches!(t, DataType::Float32 | DataType::Float64) => match c.pick(5) {
            0..=2 => {
                let x = expr(b, t, d, c);
                let y = expr(b, t, d, c);
                let op = [
                    BinaryOp::Add,
                    BinaryOp::Sub,
                    BinaryOp::Mul,
                    BinaryOp::Div,
                    BinaryOp::Mod,
                ][c.pick(5)];
                b.binary(op, x, y).expect("arith")
            }
            3 => {
                let x = expr(b, t, d, c);
                if c.coin(50) {
                    b.unary(UnaryOp::Neg, x).expect("neg")
                } else {
                    b.call(ScalarFunc::Abs, vec![x]).expect("abs")
                }
            }
            _ if *t == DataType::Int32 => {
                if c.coin(30) {
                    let s = expr(b, &DataType::Utf8, d, c);
                    return b.call(ScalarFunc::Length, vec![s]).expect("length");
                }
                let (src, fs) = if c.coin(50) {
                    (
                        DataType::Date32,
                        &[ScalarFunc::Year, ScalarFunc::Month, ScalarFunc::Day][..],
                    )
                } else {
                    (
                        TS,
                        &[
                            ScalarFunc::Year,
                            ScalarFunc::Month,
                            ScalarFunc::Day,
                            ScalarFunc::Hour,
                            ScalarFunc::Minute,
                            ScalarFunc::Second,
                        ][..],
                    )
                };
                let x = expr(b, &src, d, c);
                b.call(fs[c.pick(fs.len())], vec![x]).expect("datepart")
            }
            _ => expr(b, t, d, c),
        },
        DataType::Decimal128(..) => {
            let x = expr(b, t, d, c);
            let y = expr(b, t, d, c);
            let op = [BinaryOp::Add, BinaryOp::Sub, BinaryOp::Mul, BinaryOp::Div][c.pick(4)];
            let r = b.binary(op, x, y).expect("decimal arith");
            b.cast(r, t.clone(), c.coin(20)).expect("decimal cast")
        }
        DataType::Timestamp(..) => {
            let x = expr(b, t, d, c);
            if c.coin(60) {
                let size = [1_000_000, 10_000_000, 86_400_000_000][c.pick(3)];
                let offset = if c.coin(30) { 1_000 } else { 0 };
                b.window_start(x, size, size, offset).expect("window")
            } else {
                let unit = b
                    .literal(Scalar::Utf8(
                        ["hour", "day", "month", "week"][c.pick(4)].into(),
                    ))
                    .expect("lit");
                b.call(ScalarFunc::DateTrunc, vec![unit, x]).expect("trunc")
            }
        }
        DataType::Utf8 => {
            let x = expr(b, t, d, c);
            match c.pick(4) {
                0 => b.call(ScalarFunc::Upper, vec![x]).expect("upper"),
                1 => {
                    let y = expr(b, t, d, c);
                    b.call(ScalarFunc::Concat, vec![x, y]).expect("concat")
                }
                2 => {
                    let p = b.literal(Scalar::Int32(c.pick(5) as i32 - 2)).expect("lit");
                    b.call(ScalarFunc::Substring, vec![x, p]).expect("substr")
                }
                _ => x,
            }
        }
        _ => expr(b, t, 0, c),
    }
}

/// A random filter/project spec.
pub fn map_spec(c: &mut Choices) -> KernelSpec {
    let mut b = KernelSpec::builder(schema());
    b.ansi(c.coin(20));
    if c.coin(70) {
        let f = expr(&mut b, &DataType::Boolean, 3, c);
        b.filter(f);
    }
    let n = 1 + c.pick(3);
    let mut cols = vec![];
    for i in 0..n {
        let t = pick_type(c);
        let e = expr(&mut b, &t, 3, c);
        cols.push((format!("c{i}"), e));
    }
    b.project(cols);
    b.build().expect("generated spec is well typed")
}

/// A random aggregation spec.
pub fn agg_spec(c: &mut Choices) -> KernelSpec {
    let mut b = KernelSpec::builder(schema());
    b.ansi(c.coin(10));
    if c.coin(50) {
        let f = expr(&mut b, &DataType::Boolean, 2, c);
        b.filter(f);
    }
    let key_types = [
        DataType::Int64,
        DataType::Utf8,
        DataType::Int8,
        DataType::Boolean,
        DataType::Float64,
        DataType::Decimal128(10, 2),
        TS,
        DataType::UInt64,
    ];
    let mut keys = vec![];
    for i in 0..1 + c.pick(2) {
        let t = key_types[c.pick(key_types.len())].clone();
        let e = if t == TS && c.coin(70) {
            let ts = b.column(13).expect("ts");
            b.window_start(ts, 10_000_000, 10_000_000, 0)
                .expect("window")
        } else {
            expr(&mut b, &t, 1, c)
        };
        keys.push((format!("k{i}"), e));
    }
    let funcs = [
        AggFunc::CountStar,
        AggFunc::Count,
        AggFunc::Sum,
        AggFunc::Avg,
        AggFunc::Min,
        AggFunc::Max,
        AggFunc::First,
        AggFunc::Last,
    ];
    let arg_types = [
        DataType::Int64,
        DataType::Int32,
        DataType::UInt64,
        DataType::Float64,
        DataType::Float32,
        DataType::Decimal128(10, 2),
        DataType::Boolean,
        TS,
    ];
    let mut aggs = vec![];
    for i in 0..1 + c.pick(4) {
        let f = funcs[c.pick(funcs.len())];
        let mut t = arg_types[c.pick(arg_types.len())].clone();
        if matches!(f, AggFunc::Sum | AggFunc::Avg)
            && matches!(t, DataType::Boolean | DataType::Timestamp(..))
        {
            t = DataType::Int64;
        }
        let arg = if f == AggFunc::CountStar {
            None
        } else {
            Some(expr(&mut b, &t, 1, c))
        };
        aggs.push((format!("a{i}"), f, arg));
    }
    b.aggregate(keys, aggs);
    b.build().expect("generated agg spec is well typed")
}

/// A random batch of `rows` rows over [`schema`], sliced at `offset`.
pub fn batch(
    c: &mut Choices,
    rows: usize,
    offset: usize,
    null_percent: usize,
    few_values: bool,
) -> RecordBatch {
    let total = rows + offset;
    let null = |c: &mut Choices| c.coin(null_percent);
    macro_rules! prim {
        ($arr:ty, $vals:expr) => {{
            let vals = $vals;
            let a: $arr = (0..total)
                .map(|_| {
                    if null(c) {
                        None
                    } else {
                        Some(vals[c.pick(vals.len())])
                    }
                })
                .collect();
            Arc::new(a) as ArrayRef
        }};
    }
    let spread = if few_values { 3 } else { usize::MAX };
    let ints64: Vec<i64> = [
        0,
        1,
        -1,
        2,
        123,
        246,
        i64::MIN,
        i64::MAX,
        7,
        -123,
        1000,
        999_999,
    ]
    .into_iter()
    .take(spread.max(3))
    .collect();
    let strings: Vec<&str> = STRINGS
        .iter()
        .copied()
        .take(if few_values { 3 } else { STRINGS.len() })
        .collect();
    let s: Vec<Option<&str>> = (0..total)
        .map(|_| {
            if null(c) {
                None
            } else {
                Some(strings[c.pick(strings.len())])
            }
        })
        .collect();
    let s2: Vec<Option<&str>> = (0..total)
        .map(|_| {
            if null(c) {
                None
            } else {
                Some(strings[c.pick(strings.len())])
            }
        })
        .collect();
    let sv: Vec<Option<&str>> = (0..total)
        .map(|_| {
            if null(c) {
                None
            } else {
                Some(strings[c.pick(strings.len())])
            }
        })
        .collect();
    let dict_keys: Vec<Option<i32>> = (0..total)
        .map(|_| {
            if null(c) {
                None
            } else {
                Some(c.pick(4) as i32)
            }
        })
        .collect();
    let dict_values = StringArray::from(vec![
        Some("apple"),
        None,
        Some("a much longer string than twelve"),
        Some(""),
    ]);
    let dict =
        DictionaryArray::<Int32Type>::try_new(Int32Array::from(dict_keys), Arc::new(dict_values))
            .expect("dict");
    let cols: Vec<ArrayRef> = vec![
        prim!(Int8Array, [0i8, 1, -1, i8::MIN, i8::MAX, 3, 100]),
        prim!(Int16Array, [0i16, 1, -1, i16::MIN, i16::MAX, 7]),
        prim!(Int32Array, [0i32, 1, -1, i32::MIN, i32::MAX, 123, 19_000]),
        prim!(Int64Array, ints64.clone()),
        prim!(UInt8Array, [0u8, 1, 2, u8::MAX, 200]),
        prim!(UInt32Array, [0u32, 1, 2, u32::MAX, 1 << 31]),
        prim!(UInt64Array, [0u64, 1, 2, u64::MAX, 1 << 63, 123]),
        prim!(
            Float32Array,
            [0.0f32, -0.0, 1.5, f32::NAN, f32::INFINITY, -3.25, 1e20]
        ),
        prim!(
            Float64Array,
            [
                0.0f64,
                -0.0,
                2.5,
                f64::NAN,
                f64::NEG_INFINITY,
                1e300,
                -7.0,
                9.3e18
            ]
        ),
        {
            let a: BooleanArray = (0..total)
                .map(|_| if null(c) { None } else { Some(c.coin(50)) })
                .collect();
            Arc::new(a)
        },
        {
            let vals = [0i128, 1, -1, 908, 9_999_999_999, -12_345, 100];
            let a: Decimal128Array = (0..total)
                .map(|_| {
                    if null(c) {
                        None
                    } else {
                        Some(vals[c.pick(vals.len())])
                    }
                })
                .collect();
            Arc::new(a.with_precision_and_scale(10, 2).expect("dec"))
        },
        {
            let vals = [0i128, 1, -1, 999_999_999_999_999_999, -55_555, 10_000];
            let a: Decimal128Array = (0..total)
                .map(|_| {
                    if null(c) {
                        None
                    } else {
                        Some(vals[c.pick(vals.len())])
                    }
                })
                .collect();
            Arc::new(a.with_precision_and_scale(18, 4).expect("dec"))
        },
        prim!(
            Date32Array,
            [
                0i32,
                -1,
                19_000,
                365,
                -719_162,
                2_932_896,
                i32::MIN,
                i32::MAX
            ]
        ),
        prim!(
            TimestampMicrosecondArray,
            [
                0i64,
                -1,
                1_700_000_000_123_456,
                i64::MIN,
                i64::MAX,
                86_399_999_999,
                25_000_000,
                -86_400_000_001
            ]
        ),
        Arc::new(StringArray::from(s)),
        Arc::new(LargeStringArray::from(s2)),
        Arc::new(StringViewArray::from(sv)),
        Arc::new(dict),
        {
            let a: Int64Array = (0..total)
                .map(|_| Some(ints64[c.pick(ints64.len())]))
                .collect();
            Arc::new(a)
        },
    ];
    let batch = RecordBatch::try_new(schema(), cols).expect("batch");
    batch.slice(offset, rows)
}

/// A pseudo-random choice stream from a seed (xorshift).
pub fn words(seed: u64, n: usize) -> Vec<u32> {
    let mut x = seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1;
    (0..n)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x >> 16) as u32
        })
        .collect()
}
