//! Property tests: the JIT and the interpreter agree on random well-typed specs and random
//! batches (nulls, odd slice offsets, edge values, every string encoding, zero rows).

use proptest::prelude::*;
use weir_jit::{AggFunc, BinaryOp, Interpreter, JitError, KernelSpec, Scalar};

use super::engine;
use super::generate::{Choices, agg_spec, batch, map_spec, schema};

fn same_outcome(
    spec: &KernelSpec,
    jit: Result<arrow::array::RecordBatch, JitError>,
    interp: Result<arrow::array::RecordBatch, JitError>,
) {
    match (jit, interp) {
        (Ok(a), Ok(b)) => assert_eq!(a, b, "spec:\n{spec}"),
        (Err(JitError::Runtime { row: r1, .. }), Err(JitError::Runtime { row: r2, .. })) => {
            assert_eq!(r1, r2, "error rows differ for spec:\n{spec}")
        }
        (a, b) => panic!("outcomes differ for spec:\n{spec}\njit: {a:?}\ninterpreter: {b:?}"),
    }
}

proptest! {
    // PROPTEST_CASES overrides the count for long bug hunts.
    #![proptest_config(ProptestConfig {
        cases: std::env::var("PROPTEST_CASES").ok().and_then(|v| v.parse().ok()).unwrap_or(256),
        ..ProptestConfig::default()
    })]

    #[test]
    fn map_kernels_match_the_interpreter(
        spec_words in proptest::collection::vec(any::<u32>(), 96),
        data_words in proptest::collection::vec(any::<u32>(), 4096),
        rows in prop_oneof![Just(0usize), 1usize..40, 60usize..140],
        offset in 0usize..13,
        null_percent in prop_oneof![Just(0usize), Just(20), Just(60)],
    ) {
        let spec = map_spec(&mut Choices::new(spec_words));
        let batch = batch(&mut Choices::new(data_words), rows, offset, null_percent, false);
        let kernel = engine().compile(&spec).expect("compiles");
        let interp = Interpreter::new(&spec).expect("interpreter");
        same_outcome(&spec, kernel.run(&batch), interp.run(&batch));
    }

    #[test]
    fn aggregate_kernels_match_the_interpreter(
        spec_words in proptest::collection::vec(any::<u32>(), 96),
        data_words in proptest::collection::vec(any::<u32>(), 4096),
        rows in prop_oneof![Just(0usize), 1usize..60, 900usize..1400],
        offset in 0usize..13,
        null_percent in prop_oneof![Just(0usize), Just(25)],
    ) {
        let spec = agg_spec(&mut Choices::new(spec_words));
        let batch = batch(&mut Choices::new(data_words), rows, offset, null_percent, true);
        let kernel = engine().compile(&spec).expect("compiles");
        let interp = Interpreter::new(&spec).expect("interpreter");
        let mut a = kernel.new_group_state();
        let mut b = interp.new_group_state().expect("state");
        let ra = kernel.update(&mut a, &batch);
        let rb = interp.update(&mut b, &batch);
        match (ra, rb) {
            (Ok(()), Ok(())) => {
                let (sa, sb) = (a.to_record_batch().expect("state"), b.to_record_batch().expect("state"));
                for (i, f) in sa.schema().fields().iter().enumerate() {
                    prop_assert_eq!(sa.column(i), sb.column(i), "state column {} differs; spec:\n{}", f.name(), spec);
                }
                prop_assert_eq!(a.output_all().expect("out"), b.output_all().expect("out"));
            }
            (Err(JitError::Runtime { row: r1, .. }), Err(JitError::Runtime { row: r2, .. })) => prop_assert_eq!(r1, r2),
            (x, y) => prop_assert!(false, "outcomes differ for spec:\n{}\njit: {:?}\ninterpreter: {:?}", spec, x, y),
        }
    }
}

/// Guards against the differential tests silently testing only the fallback paths.
#[test]
fn most_generated_kernels_compile_natively() {
    use weir_jit::KernelMode;
    let (mut native, mut fully_native, mut total) = (0, 0, 0);
    for seed in 0..200u32 {
        let words = super::generate::words(seed as u64, 96);
        for spec in [
            map_spec(&mut Choices::new(words.clone())),
            agg_spec(&mut Choices::new(words)),
        ] {
            let k = engine().compile(&spec).expect("compiles");
            total += 1;
            if k.report().mode == KernelMode::Native {
                native += 1;
                if k.report().precomputed.is_empty() {
                    fully_native += 1;
                }
            }
        }
    }
    println!("{native}/{total} native, {fully_native} without pre-computed columns");
    assert!(native * 10 >= total * 9, "{native}/{total} native");
    assert!(
        fully_native * 10 >= total * 4,
        "{fully_native}/{total} fully native"
    );
}

/// Group-by shapes that take the specialised interning paths (one string key; one, two and
/// three one-word keys including floats and a window start), each against the interpreter.
fn specialised_key_specs() -> Vec<KernelSpec> {
    let key_sets: [&[usize]; 8] = [
        &[14],       // s: Utf8
        &[15],       // ls: LargeUtf8
        &[16],       // sv: Utf8View
        &[17],       // dict: Dictionary(Int32, Utf8)
        &[18],       // i64nn
        &[8, 0],     // f64 (NaN, -0.0), i8
        &[13, 3, 8], // window start over ts, i64, f64
        &[12, 5],    // date, u32
    ];
    key_sets
        .iter()
        .map(|cols| {
            let mut b = KernelSpec::builder(schema());
            let keys = cols
                .iter()
                .enumerate()
                .map(|(n, &c)| {
                    let col = b.column(c).unwrap();
                    let e = if c == 13 {
                        b.window_start(col, 10_000_000, 10_000_000, 0).unwrap()
                    } else {
                        col
                    };
                    (format!("k{n}"), e)
                })
                .collect();
            let x = b.column(3).unwrap();
            b.aggregate(
                keys,
                vec![
                    ("n".into(), AggFunc::CountStar, None),
                    ("sum".into(), AggFunc::Sum, Some(x)),
                    ("max".into(), AggFunc::Max, Some(x)),
                ],
            );
            b.build().unwrap()
        })
        .collect()
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 32, ..ProptestConfig::default() })]

    #[test]
    fn specialised_interning_matches_the_interpreter(
        data_words in proptest::collection::vec(any::<u32>(), 4096),
        rows in prop_oneof![1usize..60, 900usize..2600],
        offset in 0usize..13,
        null_percent in prop_oneof![Just(0usize), Just(25)],
    ) {
        let batch = batch(&mut Choices::new(data_words), rows, offset, null_percent, true);
        for spec in specialised_key_specs() {
            let kernel = engine().compile(&spec).expect("compiles");
            let interp = Interpreter::new(&spec).expect("interpreter");
            let mut a = kernel.new_group_state();
            let mut b = interp.new_group_state().expect("state");
            kernel.update(&mut a, &batch).expect("jit update");
            interp.update(&mut b, &batch).expect("interpreter update");
            // Twice: the second pass finds every group already interned.
            kernel.update(&mut a, &batch).expect("jit update");
            interp.update(&mut b, &batch).expect("interpreter update");
            prop_assert_eq!(a.to_record_batch().expect("state"), b.to_record_batch().expect("state"), "spec:\n{}", spec);
            prop_assert_eq!(a.output_all().expect("out"), b.output_all().expect("out"));
        }
    }
}

/// A literal of the column's integer type (None when `d` does not fit it).
fn int_literal(t: &arrow::datatypes::DataType, d: i128) -> Option<Scalar> {
    use arrow::datatypes::DataType as T;
    Some(match t {
        T::Int8 => Scalar::Int8(i8::try_from(d).ok()?),
        T::Int16 => Scalar::Int16(i16::try_from(d).ok()?),
        T::Int32 => Scalar::Int32(i32::try_from(d).ok()?),
        T::Int64 => Scalar::Int64(i64::try_from(d).ok()?),
        T::UInt8 => Scalar::UInt8(u8::try_from(d).ok()?),
        T::UInt16 => Scalar::UInt16(u16::try_from(d).ok()?),
        T::UInt32 => Scalar::UInt32(u32::try_from(d).ok()?),
        T::UInt64 => Scalar::UInt64(u64::try_from(d).ok()?),
        _ => return None,
    })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    /// `x % d = 0` and `x % d <> 0` are lowered to a divisibility test (no division): they
    /// agree with the interpreter for every integer type, divisors of every shape (powers of
    /// two, odd, even with an odd part, negative, the type's extremes) and edge values of x,
    /// in projections and filters.
    #[test]
    fn divisibility_tests_match_the_interpreter(
        data_words in proptest::collection::vec(any::<u32>(), 4096),
        rows in 1usize..700,
        divisor in prop_oneof![
            Just(2i128), Just(3), Just(-3), Just(4), Just(6), Just(7), Just(-8), Just(10),
            Just(12), Just(123), Just(-123), Just(1_000), Just(96), Just(127), Just(-128),
            Just(255), Just(32_768), Just(1_000_000_007), Just(1 << 40), Just(i64::MAX as i128),
            Just(i64::MIN as i128), Just(u64::MAX as i128), Just((1u128 << 63) as i128 + 1),
            2i128..100_000, -100_000i128..-2,
        ],
        null_percent in prop_oneof![Just(0usize), Just(30)],
    ) {
        let batch = batch(&mut Choices::new(data_words), rows, 3, null_percent, false);
        let schema = schema();
        for (c, field) in schema.fields().iter().enumerate() {
            let Some(lit) = int_literal(field.data_type(), divisor) else { continue };
            let zero = int_literal(field.data_type(), 0).unwrap();
            let mut b = KernelSpec::builder(schema.clone());
            let x = b.column(c).unwrap();
            let d = b.literal(lit).unwrap();
            let rem = b.binary(BinaryOp::Mod, x, d).unwrap();
            let z = b.literal(zero).unwrap();
            let eq = b.binary(BinaryOp::Eq, rem, z).unwrap();
            let ne = b.binary(BinaryOp::NotEq, z, rem).unwrap();
            b.filter(ne).project(vec![("eq".into(), eq), ("ne".into(), ne), ("x".into(), x)]);
            let spec = b.build().unwrap();
            let kernel = engine().compile(&spec).expect("compiles");
            let interp = Interpreter::new(&spec).expect("interpreter");
            same_outcome(&spec, kernel.run(&batch), interp.run(&batch));
        }
    }
}
