//! Property tests: the JIT and the interpreter agree on random well-typed specs and random
//! batches (nulls, odd slice offsets, edge values, every string encoding, zero rows).

use proptest::prelude::*;
use weir_jit::{AggFunc, Interpreter, JitError, KernelSpec};

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
