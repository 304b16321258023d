//! Hand-written end-to-end cases.

use std::sync::Arc;

use arrow::array::{
    Array, AsArray, Decimal128Array, Int64Array, RecordBatch, StringArray,
    TimestampMicrosecondArray,
};
use arrow::datatypes::{DataType, Field, Int64Type, Schema, TimeUnit};
use weir_jit::{AggFunc, BinaryOp, Interpreter, KernelMode, KernelSpec, Scalar};

use super::engine;

fn bids(n: i64) -> RecordBatch {
    let schema = Arc::new(Schema::new(vec![
        Field::new("auction", DataType::Int64, false),
        Field::new("price", DataType::Decimal128(10, 2), true),
        Field::new(
            "ts",
            DataType::Timestamp(TimeUnit::Microsecond, None),
            false,
        ),
        Field::new("channel", DataType::Utf8, true),
    ]));
    let auction = Int64Array::from_iter_values((0..n).map(|i| i % 1000));
    let price = Decimal128Array::from_iter((0..n).map(|i| {
        if i % 7 == 3 {
            None
        } else {
            Some(i as i128 * 13)
        }
    }))
    .with_precision_and_scale(10, 2)
    .unwrap();
    let ts = TimestampMicrosecondArray::from_iter_values((0..n).map(|i| i * 1_000_000));
    let channel = StringArray::from_iter((0..n).map(|i| match i % 4 {
        0 => Some("apple"),
        1 => Some("a much longer channel name"),
        2 => None,
        _ => Some(""),
    }));
    RecordBatch::try_new(
        schema,
        vec![
            Arc::new(auction),
            Arc::new(price),
            Arc::new(ts),
            Arc::new(channel),
        ],
    )
    .unwrap()
}

#[test]
fn filter_project_decimal() {
    let batch = bids(5000);
    let mut b = KernelSpec::builder(batch.schema());
    let auction = b.column(0).unwrap();
    let m = b.literal(Scalar::Int64(123)).unwrap();
    let rem = b.binary(BinaryOp::Mod, auction, m).unwrap();
    let zero = b.literal(Scalar::Int64(0)).unwrap();
    let pred = b.binary(BinaryOp::Eq, rem, zero).unwrap();
    let price = b.column(1).unwrap();
    let rate = b.literal(Scalar::Decimal128(908, 3, 3)).unwrap();
    let conv = b.binary(BinaryOp::Mul, price, rate).unwrap();
    let ch = b.column(3).unwrap();
    b.filter(pred).project(vec![
        ("auction".into(), auction),
        ("eur".into(), conv),
        ("channel".into(), ch),
    ]);
    let spec = b.build().unwrap();
    let k = engine().compile(&spec).unwrap();
    assert_eq!(k.report().mode, KernelMode::Native, "{}", k.report());
    let out = k.run(&batch).unwrap();
    let expected = Interpreter::new(&spec).unwrap().run(&batch).unwrap();
    assert_eq!(out, expected);
    assert!(out.num_rows() > 0);
    assert_eq!(out.column(1).data_type(), &DataType::Decimal128(14, 5));
}

#[test]
fn string_compare_and_window_count() {
    let batch = bids(3000);
    let mut b = KernelSpec::builder(batch.schema());
    let ch = b.column(3).unwrap();
    let lit = b.literal(Scalar::Utf8("apple".into())).unwrap();
    let ne = b.binary(BinaryOp::NotEq, ch, lit).unwrap();
    let ts = b.column(2).unwrap();
    let w = b.window_start(ts, 10_000_000, 10_000_000, 0).unwrap();
    let auction = b.column(0).unwrap();
    let price = b.column(1).unwrap();
    b.filter(ne).aggregate(
        vec![
            ("window".into(), w),
            ("auction".into(), auction),
            ("channel".into(), ch),
        ],
        vec![
            ("n".into(), AggFunc::CountStar, None),
            ("s".into(), AggFunc::Sum, Some(price)),
            ("mx".into(), AggFunc::Max, Some(price)),
            ("f".into(), AggFunc::First, Some(price)),
        ],
    );
    let spec = b.build().unwrap();
    let k = engine().compile(&spec).unwrap();
    assert_eq!(k.report().mode, KernelMode::Native, "{}", k.report());
    let mut st = k.new_group_state();
    k.update(&mut st, &batch).unwrap();
    let interp = Interpreter::new(&spec).unwrap();
    let mut st2 = interp.new_group_state().unwrap();
    interp.update(&mut st2, &batch).unwrap();
    assert_eq!(
        st.to_record_batch().unwrap(),
        st2.to_record_batch().unwrap()
    );
    let out = st.output_all().unwrap();
    let n: i64 = out
        .column(3)
        .as_primitive::<Int64Type>()
        .values()
        .iter()
        .sum();
    // NULL channels fail the filter (NULL <> x is NULL): only "" and the long name remain.
    assert_eq!(
        n as usize,
        (0..3000).filter(|i| i % 4 == 1 || i % 4 == 3).count()
    );
    assert!(k.clif().unwrap().contains("call fn0"));
}

#[test]
fn dictionaries_with_narrow_keys_and_null_values() {
    use arrow::array::{DictionaryArray, UInt16Array};
    use arrow::datatypes::UInt16Type;
    let values = StringArray::from(vec![
        Some("x"),
        None,
        Some("a value longer than twelve bytes"),
    ]);
    let keys = UInt16Array::from(vec![
        Some(0),
        Some(1),
        None,
        Some(2),
        Some(0),
        Some(2),
        Some(1),
    ]);
    let dict = DictionaryArray::<UInt16Type>::try_new(keys, Arc::new(values)).unwrap();
    let schema = Arc::new(Schema::new(vec![Field::new(
        "d",
        dict.data_type().clone(),
        true,
    )]));
    let batch = RecordBatch::try_new(schema.clone(), vec![Arc::new(dict)])
        .unwrap()
        .slice(1, 6);
    let mut b = KernelSpec::builder(schema);
    let d = b.column(0).unwrap();
    let lit = b
        .literal(Scalar::Utf8("a value longer than twelve bytes".into()))
        .unwrap();
    let gt = b.binary(BinaryOp::GtEq, d, lit).unwrap();
    let isnull = b.unary(weir_jit::UnaryOp::IsNull, d).unwrap();
    b.project(vec![
        ("ge".into(), gt),
        ("isnull".into(), isnull),
        ("d".into(), d),
    ]);
    let spec = b.build().unwrap();
    let k = engine().compile(&spec).unwrap();
    assert_eq!(k.report().mode, KernelMode::Native);
    let out = k.run(&batch).unwrap();
    assert_eq!(out, Interpreter::new(&spec).unwrap().run(&batch).unwrap());
    let isnull = out.column(1).as_boolean();
    assert_eq!(
        (0..6).map(|i| isnull.value(i)).collect::<Vec<_>>(),
        vec![true, true, false, false, false, true]
    );
    assert_eq!(out.column(2).data_type(), &DataType::Utf8);
}

#[test]
fn global_aggregate_without_keys() {
    let batch = bids(2500);
    let mut b = KernelSpec::builder(batch.schema());
    let price = b.column(1).unwrap();
    b.aggregate(
        vec![],
        vec![
            ("n".into(), AggFunc::Count, Some(price)),
            ("avg".into(), AggFunc::Avg, Some(price)),
        ],
    );
    let spec = b.build().unwrap();
    let k = engine().compile(&spec).unwrap();
    let mut st = k.new_group_state();
    k.update(&mut st, &batch).unwrap();
    k.update(&mut st, &batch.slice(0, 0)).unwrap();
    assert_eq!(st.num_groups(), 1);
    let out = st.output_all().unwrap();
    let expected = (0..2500).filter(|i| i % 7 != 3).count() as i64;
    assert_eq!(out.column(0).as_primitive::<Int64Type>().value(0), expected);
    assert_eq!(out.column(1).data_type(), &DataType::Decimal128(14, 6));
}

#[test]
fn filtered_outputs_grow_past_their_initial_capacity() {
    let batch = bids(20_000).slice(3, 19_990);
    let mut b = KernelSpec::builder(batch.schema());
    let auction = b.column(0).unwrap();
    let lim = b.literal(Scalar::Int64(990)).unwrap();
    let pred = b.binary(BinaryOp::Lt, auction, lim).unwrap();
    let price = b.column(1).unwrap();
    let ch = b.column(3).unwrap();
    let flag = b.unary(weir_jit::UnaryOp::IsNull, price).unwrap();
    b.filter(pred).project(vec![
        ("p".into(), price),
        ("c".into(), ch),
        ("null".into(), flag),
        ("a".into(), auction),
    ]);
    let spec = b.build().unwrap();
    let out = engine().compile(&spec).unwrap().run(&batch).unwrap();
    assert!(out.num_rows() > 19_000);
    assert_eq!(out, Interpreter::new(&spec).unwrap().run(&batch).unwrap());
}
