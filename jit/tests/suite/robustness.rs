//! Bad input, fallback reporting, serde and concurrency.

use std::sync::Arc;
use std::thread;

use arrow::array::{Array, Int64Array, RecordBatch, TimestampMicrosecondArray};
use arrow::datatypes::{DataType, Field, Schema};
use weir_jit::{
    AggFunc, BinaryOp, Expr, Interpreter, JitError, KernelMode, KernelSpec, Scalar, ScalarFunc,
    Stage,
};

use super::engine;
use super::generate::{Choices, TS, batch, map_spec, schema, words};

#[test]
fn ill_typed_specs_name_the_expression() {
    let mut b = KernelSpec::builder(schema());
    let x = b.column(3).unwrap();
    let s = b.column(14).unwrap();
    let err = b.binary(BinaryOp::Add, x, s).unwrap_err();
    let text = err.to_string();
    assert!(matches!(err, JitError::Type { .. }), "{text}");
    assert!(text.contains("i64#3") && text.contains("s#14"), "{text}");

    // A spec edited by hand (e.g. deserialised) is re-checked by validate().
    let mut b = KernelSpec::builder(schema());
    let x = b.column(3).unwrap();
    b.filter(x);
    let err = b.build().unwrap_err();
    assert!(
        err.to_string().contains("filter predicate must be Boolean"),
        "{err}"
    );

    let mut b = KernelSpec::builder(schema());
    let x = b.column(3).unwrap();
    b.project(vec![("x".into(), x)]);
    let mut spec = b.build().unwrap();
    spec.types[0] = DataType::Utf8;
    let err = spec.validate().unwrap_err();
    assert!(matches!(err, JitError::Type { expr: 0, .. }), "{err}");
    spec.types[0] = DataType::Int64;
    spec.exprs.push(Expr::Call {
        func: ScalarFunc::Upper,
        args: vec![0],
    });
    spec.types.push(DataType::Utf8);
    assert!(matches!(
        spec.validate().unwrap_err(),
        JitError::Type { expr: 1, .. }
    ));

    let mut b = KernelSpec::builder(schema());
    assert!(b.column(99).is_err());
    let s = b.column(14).unwrap();
    let bad = b.literal(Scalar::Utf8("([".into())).unwrap();
    assert!(
        b.call(ScalarFunc::RLike, vec![s, bad])
            .unwrap_err()
            .to_string()
            .contains("invalid regular expression")
    );
}

#[test]
fn batches_that_do_not_match_the_schema_are_rejected() {
    let spec = map_spec(&mut Choices::new(words(3, 96)));
    let k = engine().compile(&spec).unwrap();
    let other = RecordBatch::try_new(
        Arc::new(Schema::new(vec![Field::new("x", DataType::Int64, false)])),
        vec![Arc::new(Int64Array::from(vec![1]))],
    )
    .unwrap();
    assert!(matches!(
        k.run(&other).unwrap_err(),
        JitError::SchemaMismatch(_)
    ));
}

#[test]
fn specs_round_trip_through_json_with_a_stable_hash() {
    let spec = map_spec(&mut Choices::new(words(4, 96)));
    let json = serde_json::to_string(&spec).unwrap();
    let back: KernelSpec = serde_json::from_str(&json).unwrap();
    assert_eq!(back, spec);
    assert_eq!(back.spec_hash(), spec.spec_hash());
    back.validate().unwrap();
}

#[test]
fn sliding_windows_fall_back_to_the_interpreter_and_expand_rows() {
    let schema = Arc::new(Schema::new(vec![
        Field::new("ts", TS, false),
        Field::new("v", DataType::Int64, false),
    ]));
    let mut b = KernelSpec::builder(schema.clone());
    let ts = b.column(0).unwrap();
    let w = b.window_start(ts, 10, 5, 0).unwrap();
    let v = b.column(1).unwrap();
    b.project(vec![("w".into(), w), ("v".into(), v)]);
    let spec = b.build().unwrap();
    let k = engine().compile(&spec).unwrap();
    assert!(
        matches!(k.report().mode, KernelMode::Interpreted(_)),
        "{}",
        k.report()
    );
    assert!(k.report().to_string().contains("sliding window"));
    assert!(k.clif().is_none());
    let batch = RecordBatch::try_new(
        schema,
        vec![
            Arc::new(TimestampMicrosecondArray::from(vec![25, 7])),
            Arc::new(Int64Array::from(vec![1, 2])),
        ],
    )
    .unwrap();
    let out = k.run(&batch).unwrap();
    let w = out
        .column(0)
        .as_any()
        .downcast_ref::<TimestampMicrosecondArray>()
        .unwrap();
    assert_eq!(w.values().to_vec(), vec![20, 25, 0, 5]);
}

#[test]
fn report_names_precomputed_expressions() {
    let mut b = KernelSpec::builder(schema());
    let s = b.column(14).unwrap();
    let u = b.call(ScalarFunc::Lower, vec![s]).unwrap();
    let l = b.literal(Scalar::Utf8("apple".into())).unwrap();
    let p = b.binary(BinaryOp::Eq, u, l).unwrap();
    let x = b.column(3).unwrap();
    b.filter(p).aggregate(
        vec![("x".into(), x)],
        vec![("n".into(), AggFunc::CountStar, None)],
    );
    let k = engine().compile(&b.build().unwrap()).unwrap();
    let report = k.report().to_string();
    assert_eq!(k.report().mode, KernelMode::Native);
    assert!(
        report.contains("pre-computed per batch (interpreter): Lower(s#14)"),
        "{report}"
    );
    assert!(report.contains("native: filter"), "{report}");
}

#[test]
fn many_threads_share_one_kernel() {
    let spec = map_spec(&mut Choices::new(words(5, 96)));
    let kernel = engine().compile(&spec).unwrap();
    let interp = Arc::new(Interpreter::new(&spec).unwrap());
    let handles: Vec<_> = (0..8u64)
        .map(|t| {
            let kernel = kernel.clone();
            let interp = interp.clone();
            thread::spawn(move || {
                for round in 0..25u64 {
                    let data = batch(
                        &mut Choices::new(words(t * 100 + round, 8192)),
                        300 + round as usize,
                        (t % 7) as usize,
                        20,
                        false,
                    );
                    match (kernel.run(&data), interp.run(&data)) {
                        (Ok(a), Ok(b)) => assert_eq!(a, b),
                        (
                            Err(JitError::Runtime { row: a, .. }),
                            Err(JitError::Runtime { row: b, .. }),
                        ) => assert_eq!(a, b),
                        (a, b) => panic!("{a:?} vs {b:?}"),
                    }
                }
            })
        })
        .collect();
    for h in handles {
        h.join().unwrap();
    }
}

#[test]
fn engine_caches_live_kernels_by_spec() {
    let engine = engine();
    let spec = map_spec(&mut Choices::new(words(6, 96)));
    let a = engine.compile(&spec).unwrap();
    let b = engine.compile(&spec).unwrap();
    assert!(Arc::ptr_eq(&a, &b));
    assert!(matches!(spec.stages.last(), Some(Stage::Project(_))));
}
