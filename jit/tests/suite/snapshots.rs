//! insta snapshots of the CLIF (before optimisation, so stable across CPUs) of representative
//! kernels. Snapshots live in the top-level snapshots/ folder.

use arrow::datatypes::DataType;
use weir_jit::{
    AggFunc, BinaryOp, ExprId, KernelSpec, KernelSpecBuilder, Scalar, ScalarFunc, UnaryOp,
};

use super::engine;
use super::generate::{TS, schema};

/// Builds a spec over the generator schema, compiles it and snapshots its CLIF and report.
fn snap(name: &str, build: impl FnOnce(&mut KernelSpecBuilder)) {
    let mut b = KernelSpec::builder(schema());
    build(&mut b);
    let spec = b.build().expect("valid spec");
    let kernel = engine().compile(&spec).expect("compiles");
    let clif = kernel.clif().expect("native kernel");
    // The host calling convention is the only platform-dependent token.
    let clif = clif
        .replace("apple_aarch64", "system_v")
        .replace("windows_fastcall", "system_v");
    let report = kernel.report();
    let text = format!(
        "{spec}\nmode: {:?}; pre-computed: {:?}\n\n{clif}",
        report.mode, report.precomputed
    );
    insta::with_settings!({snapshot_path => "../../../snapshots", prepend_module_to_snapshot => false}, {
        insta::assert_snapshot!(format!("jit_clif_{name}"), text);
    });
}

fn lit(b: &mut KernelSpecBuilder, s: Scalar) -> ExprId {
    b.literal(s).unwrap()
}

#[test]
fn clif_filter_mod_project_decimal() {
    snap("filter_mod_project_decimal", |b| {
        let a = b.column(3).unwrap();
        let m = lit(b, Scalar::Int64(123));
        let r = b.binary(BinaryOp::Mod, a, m).unwrap();
        let z = lit(b, Scalar::Int64(0));
        let p = b.binary(BinaryOp::Eq, r, z).unwrap();
        let price = b.column(10).unwrap();
        let rate = lit(b, Scalar::Decimal128(908, 3, 3));
        let e = b.binary(BinaryOp::Mul, price, rate).unwrap();
        b.filter(p)
            .project(vec![("auction".into(), a), ("eur".into(), e)]);
    });
}

#[test]
fn clif_nullable_int_add_non_null_column() {
    snap("int_add", |b| {
        let x = b.column(2).unwrap();
        let y = b.column(18).unwrap();
        let x64 = b.cast(x, DataType::Int64, false).unwrap();
        let s = b.binary(BinaryOp::Add, x64, y).unwrap();
        b.project(vec![("s".into(), s)]);
    });
}

#[test]
fn clif_ansi_checked_arithmetic() {
    snap("ansi_checked_arithmetic", |b| {
        b.ansi(true);
        let x = b.column(3).unwrap();
        let y = b.column(18).unwrap();
        let s = b.binary(BinaryOp::Mul, x, y).unwrap();
        let d = b.binary(BinaryOp::Div, s, x).unwrap();
        b.project(vec![("d".into(), d)]);
    });
}

#[test]
fn clif_float_compare_total_order() {
    snap("float_compare", |b| {
        let x = b.column(8).unwrap();
        let y = lit(b, Scalar::Float64(f64::NAN));
        let p = b.binary(BinaryOp::GtEq, x, y).unwrap();
        b.filter(p).project(vec![("x".into(), x)]);
    });
}

#[test]
fn clif_utf8_equals_literal() {
    snap("utf8_eq_literal", |b| {
        let s = b.column(14).unwrap();
        let l = lit(b, Scalar::Utf8("apple".into()));
        let p = b.binary(BinaryOp::Eq, s, l).unwrap();
        b.filter(p).project(vec![("s".into(), s)]);
    });
}

#[test]
fn clif_utf8view_and_large_utf8_ordering() {
    snap("utf8view_lt_large_utf8", |b| {
        let v = b.column(16).unwrap();
        let l = b.column(15).unwrap();
        let p = b.binary(BinaryOp::Lt, v, l).unwrap();
        b.project(vec![("lt".into(), p)]);
    });
}

#[test]
fn clif_dictionary_predicate() {
    snap("dictionary_ne", |b| {
        let d = b.column(17).unwrap();
        let l = lit(b, Scalar::Utf8("".into()));
        let p = b.binary(BinaryOp::NotEq, d, l).unwrap();
        let x = b.column(0).unwrap();
        b.filter(p).project(vec![("x".into(), x)]);
    });
}

#[test]
fn clif_kleene_logic() {
    snap("kleene_logic", |b| {
        let x = b.column(9).unwrap();
        let i = b.column(4).unwrap();
        let z = lit(b, Scalar::UInt8(200));
        let big = b.binary(BinaryOp::Gt, i, z).unwrap();
        let a = b.binary(BinaryOp::And, x, big).unwrap();
        let n = b.unary(UnaryOp::Not, x).unwrap();
        let o = b.binary(BinaryOp::Or, a, n).unwrap();
        let isnull = b.unary(UnaryOp::IsNull, i).unwrap();
        b.project(vec![("o".into(), o), ("isnull".into(), isnull)]);
    });
}

#[test]
fn clif_case_coalesce_in_list() {
    snap("case_coalesce_in", |b| {
        let x = b.column(2).unwrap();
        let one = lit(b, Scalar::Int32(1));
        let seven = lit(b, Scalar::Int32(7));
        let inl = b.in_list(x, vec![one, seven], false).unwrap();
        let y = b.column(2).unwrap();
        let c = b.coalesce(vec![y, seven]).unwrap();
        let e = b.case(vec![(inl, one)], Some(c)).unwrap();
        b.project(vec![("e".into(), e)]);
    });
}

#[test]
fn clif_casts() {
    snap("casts", |b| {
        let f = b.column(8).unwrap();
        let i = b.cast(f, DataType::Int32, false).unwrap();
        let d = b.column(12).unwrap();
        let t = b.cast(d, TS, true).unwrap();
        let u = b.column(6).unwrap();
        let uf = b.cast(u, DataType::Float32, false).unwrap();
        b.project(vec![("i".into(), i), ("t".into(), t), ("uf".into(), uf)]);
    });
}

#[test]
fn clif_date_parts() {
    snap("date_parts", |b| {
        let t = b.column(13).unwrap();
        let y = b.call(ScalarFunc::Year, vec![t]).unwrap();
        let h = b.call(ScalarFunc::Hour, vec![t]).unwrap();
        b.project(vec![("y".into(), y), ("h".into(), h)]);
    });
}

#[test]
fn clif_tumbling_window_count() {
    snap("tumbling_window_count", |b| {
        let t = b.column(13).unwrap();
        let w = b.window_start(t, 10_000_000, 10_000_000, 0).unwrap();
        let a = b.column(18).unwrap();
        b.aggregate(
            vec![("window".into(), w), ("auction".into(), a)],
            vec![("n".into(), AggFunc::CountStar, None)],
        );
    });
}

#[test]
fn clif_aggregate_string_key_many_accumulators() {
    snap("aggregate_string_key", |b| {
        let s = b.column(14).unwrap();
        let x = b.column(3).unwrap();
        let f = b.column(7).unwrap();
        let d = b.column(10).unwrap();
        b.aggregate(
            vec![("s".into(), s)],
            vec![
                ("sum".into(), AggFunc::Sum, Some(x)),
                ("avg".into(), AggFunc::Avg, Some(f)),
                ("min".into(), AggFunc::Min, Some(d)),
                ("first".into(), AggFunc::First, Some(x)),
                ("cnt".into(), AggFunc::Count, Some(f)),
            ],
        );
    });
}

#[test]
fn clif_precomputed_string_function() {
    snap("precomputed_upper", |b| {
        let s = b.column(14).unwrap();
        let u = b.call(ScalarFunc::Upper, vec![s]).unwrap();
        let l = lit(b, Scalar::Utf8("APPLE".into()));
        let p = b.binary(BinaryOp::Eq, u, l).unwrap();
        b.filter(p).project(vec![("u".into(), u)]);
    });
}

#[test]
fn clif_decimal_compare_across_scales() {
    snap("decimal_compare_scales", |b| {
        let d = b.column(10).unwrap();
        let d2 = b.column(11).unwrap();
        let p = b.binary(BinaryOp::Lt, d, d2).unwrap();
        let s = b.binary(BinaryOp::Add, d, d2).unwrap();
        b.filter(p).project(vec![("s".into(), s)]);
    });
}

#[test]
fn clif_ansi_precomputed_errors() {
    snap("ansi_cast_string_to_int", |b| {
        let s = b.column(14).unwrap();
        let i = b.cast(s, DataType::Int64, true).unwrap();
        let one = lit(b, Scalar::Int64(1));
        let r = b.binary(BinaryOp::Add, i, one).unwrap();
        b.project(vec![("r".into(), r)]);
    });
}
