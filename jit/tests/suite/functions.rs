//! The interpreter's scalar functions and casts against Spark's documented results (the JIT and
//! the pre-computation path both inherit these semantics).

use std::sync::Arc;

use arrow::array::{Array, AsArray, RecordBatch, StringArray};
use arrow::datatypes::{DataType, Field, Schema};
use weir_jit::{ExprId, Interpreter, KernelSpec, KernelSpecBuilder, Scalar, ScalarFunc};

/// Evaluates `f(s, extra...)` over one string row and returns the result rendered as text.
fn eval(input: &str, build: impl FnOnce(&mut KernelSpecBuilder, ExprId) -> ExprId) -> String {
    let schema = Arc::new(Schema::new(vec![Field::new("s", DataType::Utf8, true)]));
    let mut b = KernelSpec::builder(schema.clone());
    let s = b.column(0).unwrap();
    let e = build(&mut b, s);
    let e = if b.type_of(e) == Some(&DataType::Utf8) {
        e
    } else {
        b.cast(e, DataType::Utf8, false).unwrap()
    };
    b.project(vec![("r".into(), e)]);
    let spec = b.build().unwrap();
    let batch =
        RecordBatch::try_new(schema, vec![Arc::new(StringArray::from(vec![input]))]).unwrap();
    let out = Interpreter::new(&spec).unwrap().run(&batch).unwrap();
    let col = out.column(0).as_string::<i32>();
    if col.is_null(0) {
        "NULL".to_string()
    } else {
        col.value(0).to_string()
    }
}

fn lit(b: &mut KernelSpecBuilder, s: Scalar) -> ExprId {
    b.literal(s).unwrap()
}

fn call(b: &mut KernelSpecBuilder, f: ScalarFunc, args: Vec<ExprId>) -> ExprId {
    b.call(f, args).unwrap()
}

#[test]
fn string_functions_follow_spark() {
    assert_eq!(
        eval("Spark SQL", |b, s| {
            let p = lit(b, Scalar::Int32(-3));
            call(b, ScalarFunc::Substring, vec![s, p])
        }),
        "SQL"
    );
    assert_eq!(
        eval("Spark SQL", |b, s| {
            let p = lit(b, Scalar::Int32(0));
            let l = lit(b, Scalar::Int32(5));
            call(b, ScalarFunc::Substring, vec![s, p, l])
        }),
        "Spark"
    );
    assert_eq!(
        eval("  héllo ", |b, s| call(b, ScalarFunc::Trim, vec![s])),
        "héllo"
    );
    assert_eq!(
        eval("héllo", |b, s| call(b, ScalarFunc::Length, vec![s])),
        "5"
    );
    assert_eq!(
        eval("héllo", |b, s| call(b, ScalarFunc::Upper, vec![s])),
        "HÉLLO"
    );
    assert_eq!(
        eval("a_b%c", |b, s| {
            let p = lit(b, Scalar::Utf8("a\\_b\\%%".into()));
            call(b, ScalarFunc::Like, vec![s, p])
        }),
        "true"
    );
    assert_eq!(
        eval("axb%c", |b, s| {
            let p = lit(b, Scalar::Utf8("a\\_b%".into()));
            call(b, ScalarFunc::Like, vec![s, p])
        }),
        "false"
    );
    assert_eq!(
        eval("100-200", |b, s| {
            let p = lit(b, Scalar::Utf8("(\\d+)-(\\d+)".into()));
            let g = lit(b, Scalar::Int32(2));
            call(b, ScalarFunc::RegexpExtract, vec![s, p, g])
        }),
        "200"
    );
    assert_eq!(
        eval("no digits", |b, s| {
            let p = lit(b, Scalar::Utf8("(\\d+)".into()));
            let g = lit(b, Scalar::Int32(1));
            call(b, ScalarFunc::RegexpExtract, vec![s, p, g])
        }),
        ""
    );
    assert_eq!(
        eval("a1b22", |b, s| {
            let p = lit(b, Scalar::Utf8("\\d+".into()));
            let r = lit(b, Scalar::Utf8("#".into()));
            call(b, ScalarFunc::RegexpReplace, vec![s, p, r])
        }),
        "a#b#"
    );
    assert_eq!(
        eval("x", |b, s| {
            let sep = lit(b, Scalar::Utf8("-".into()));
            let n = lit(b, Scalar::Null(DataType::Utf8));
            let y = lit(b, Scalar::Utf8("y".into()));
            call(b, ScalarFunc::ConcatWs, vec![sep, s, n, y])
        }),
        "x-y"
    );
    assert_eq!(
        eval("x", |b, s| {
            let n = lit(b, Scalar::Null(DataType::Utf8));
            call(b, ScalarFunc::Concat, vec![s, n])
        }),
        "NULL"
    );
}

#[test]
fn casts_and_datetime_functions_follow_spark() {
    assert_eq!(
        eval(" 42 ", |b, s| b.cast(s, DataType::Int32, false).unwrap()),
        "42"
    );
    assert_eq!(
        eval("4x2", |b, s| b.cast(s, DataType::Int32, false).unwrap()),
        "NULL"
    );
    assert_eq!(
        eval("3000000000", |b, s| b
            .cast(s, DataType::Int32, false)
            .unwrap()),
        "NULL"
    );
    assert_eq!(
        eval("1.005", |b, s| b
            .cast(s, DataType::Decimal128(5, 2), false)
            .unwrap()),
        "1.01"
    );
    assert_eq!(
        eval("1e10", |b, s| b.cast(s, DataType::Float64, false).unwrap()),
        "1.0E10"
    );
    assert_eq!(
        eval("2024-02-29", |b, s| {
            let d = b.cast(s, DataType::Date32, false).unwrap();
            let y = call(b, ScalarFunc::Day, vec![d]);
            b.cast(y, DataType::Utf8, false).unwrap()
        }),
        "29"
    );
    assert_eq!(
        eval("2024-05-17 13:45:12.5", |b, s| {
            let t = call(b, ScalarFunc::ToTimestamp, vec![s]);
            let u = lit(b, Scalar::Utf8("hour".into()));
            call(b, ScalarFunc::DateTrunc, vec![u, t])
        }),
        "2024-05-17 13:00:00"
    );
    assert_eq!(
        eval("17/05/2024 08:05", |b, s| {
            let f = lit(b, Scalar::Utf8("dd/MM/yyyy HH:mm".into()));
            let t = call(b, ScalarFunc::ToTimestamp, vec![s, f]);
            let out = lit(b, Scalar::Utf8("yyyy-MM-dd'T'HH:mm".into()));
            call(b, ScalarFunc::DateFormat, vec![t, out])
        }),
        "2024-05-17T08:05"
    );
    assert_eq!(
        eval("not a time", |b, s| call(
            b,
            ScalarFunc::ToTimestamp,
            vec![s]
        )),
        "NULL"
    );
}

#[test]
fn ansi_casts_raise_errors_that_name_the_row() {
    let schema = Arc::new(Schema::new(vec![Field::new("s", DataType::Utf8, true)]));
    let mut b = KernelSpec::builder(schema.clone());
    let s = b.column(0).unwrap();
    let i = b.cast(s, DataType::Int64, true).unwrap();
    b.project(vec![("i".into(), i)]);
    let spec = b.build().unwrap();
    let batch = RecordBatch::try_new(
        schema,
        vec![Arc::new(StringArray::from(vec!["1", "2", "x"]))],
    )
    .unwrap();
    let err = super::engine()
        .compile(&spec)
        .unwrap()
        .run(&batch)
        .unwrap_err();
    assert!(
        matches!(err, weir_jit::JitError::Runtime { row: 2, .. }),
        "{err}"
    );
    assert!(err.to_string().contains("'x'"), "{err}");
}
