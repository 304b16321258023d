//! Aggregation state: chunking invariance, checkpoint round trip, retractions, eviction.

use std::sync::Arc;

use arrow::array::{Array, AsArray, Int64Array, RecordBatch};
use arrow::datatypes::{DataType, Int64Type};
use proptest::prelude::*;
use weir_jit::{AggFunc, GroupState, JitError, KernelSpec};

use super::engine;
use super::generate::{Choices, agg_spec, batch, schema, words};

fn window_count_spec() -> KernelSpec {
    let mut b = KernelSpec::builder(schema());
    let ts = b.column(13).unwrap();
    let w = b.window_start(ts, 10_000_000, 10_000_000, 0).unwrap();
    let s = b.column(17).unwrap();
    let x = b.column(3).unwrap();
    let f = b.column(8).unwrap();
    b.aggregate(
        vec![("window".into(), w), ("s".into(), s)],
        vec![
            ("n".into(), AggFunc::CountStar, None),
            ("sum".into(), AggFunc::Sum, Some(x)),
            ("avg".into(), AggFunc::Avg, Some(f)),
            ("cnt".into(), AggFunc::Count, Some(x)),
        ],
    );
    b.build().unwrap()
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

    /// The same rows fed in any chunking give the same state, and the state survives a
    /// RecordBatch round trip (checkpoint → restore → continue equals uninterrupted).
    #[test]
    fn chunking_and_checkpoints_do_not_change_the_state(
        spec_words in proptest::collection::vec(any::<u32>(), 96),
        data_words in proptest::collection::vec(any::<u32>(), 4096),
        rows in 0usize..2500,
        cuts in proptest::collection::vec(0usize..2500, 0..5),
    ) {
        let spec = agg_spec(&mut Choices::new(spec_words));
        let data = batch(&mut Choices::new(data_words), rows, 3, 20, true);
        let k = engine().compile(&spec).unwrap();
        let mut whole = k.new_group_state();
        if k.update(&mut whole, &data).is_err() {
            return Ok(()); // ANSI errors are covered by the differential tests
        }
        let mut cuts: Vec<usize> = cuts.into_iter().map(|c| c.min(rows)).collect();
        cuts.push(0);
        cuts.push(rows);
        cuts.sort_unstable();
        let mut pieces = k.new_group_state();
        for w in cuts.windows(2) {
            let part = data.slice(w[0], w[1] - w[0]);
            k.update(&mut pieces, &part).unwrap();
            // checkpoint and restore between every chunk
            let saved = pieces.to_record_batch().unwrap();
            pieces = GroupState::from_record_batch(&k, &saved).unwrap();
        }
        prop_assert_eq!(whole.to_record_batch().unwrap(), pieces.to_record_batch().unwrap(), "spec:\n{}", spec);
        prop_assert_eq!(whole.output_all().unwrap(), pieces.output_all().unwrap());
        // The rows of some groups, in any order, are those rows of the full checkpoint form.
        let gids: Vec<u32> = (0..whole.num_groups() as u32).rev().step_by(3).collect();
        let full = whole.to_record_batch().unwrap();
        let expected = arrow::compute::take_record_batch(&full, &arrow::array::UInt32Array::from(gids.clone())).unwrap();
        prop_assert_eq!(whole.state_rows(&gids).unwrap(), expected);
    }
}

/// Float columns equal up to rounding (merged float sums add in another order); every other
/// column exactly.
fn assert_same_up_to_float_rounding(a: &RecordBatch, b: &RecordBatch, spec: &KernelSpec) {
    assert_eq!(a.schema(), b.schema(), "spec:\n{spec}");
    for (i, field) in a.schema().fields().iter().enumerate() {
        if field.data_type() == &DataType::Float64 {
            let (x, y) = (
                a.column(i).as_primitive::<arrow::datatypes::Float64Type>(),
                b.column(i).as_primitive::<arrow::datatypes::Float64Type>(),
            );
            assert_eq!(
                x.nulls(),
                y.nulls(),
                "column {} spec:\n{spec}",
                field.name()
            );
            for (u, v) in x.values().iter().zip(y.values()) {
                let close = u == v
                    || (u.is_nan() && v.is_nan())
                    || (u - v).abs() <= 1e-9 * u.abs().max(v.abs()).max(1.0);
                assert!(close, "column {}: {u} vs {v}; spec:\n{spec}", field.name());
            }
        } else {
            assert_eq!(
                a.column(i),
                b.column(i),
                "column {} spec:\n{spec}",
                field.name()
            );
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 96, ..ProptestConfig::default() })]

    /// Parallel partial aggregation: states that saw consecutive slices of the rows, merged
    /// in order, equal one state that saw all rows (same groups in the same order, same
    /// aggregates; float sums up to rounding). A cleared state starts over.
    #[test]
    fn merged_partial_states_equal_one_state(
        spec_words in proptest::collection::vec(any::<u32>(), 96),
        data_words in proptest::collection::vec(any::<u32>(), 4096),
        rows in 0usize..2500,
        cuts in proptest::collection::vec(0usize..2500, 0..4),
    ) {
        let spec = agg_spec(&mut Choices::new(spec_words));
        let data = batch(&mut Choices::new(data_words), rows, 3, 20, true);
        let k = engine().compile(&spec).unwrap();
        let mut whole = k.new_group_state();
        if k.update(&mut whole, &data).is_err() {
            return Ok(()); // ANSI errors are covered by the differential tests
        }
        let mut cuts: Vec<usize> = cuts.into_iter().map(|c| c.min(rows)).collect();
        cuts.push(0);
        cuts.push(rows);
        cuts.sort_unstable();
        let mut merged = k.new_group_state();
        let mut partial = k.new_group_state();
        for w in cuts.windows(2) {
            partial.clear();
            k.update(&mut partial, &data.slice(w[0], w[1] - w[0])).unwrap();
            merged.merge_from(&partial).unwrap();
        }
        assert_same_up_to_float_rounding(&whole.output_all().unwrap(), &merged.output_all().unwrap(), &spec);
        let mut dirty = merged.take_dirty();
        dirty.sort_unstable();
        prop_assert_eq!(dirty, (0..whole.num_groups() as u32).collect::<Vec<_>>());
    }
}

#[test]
fn merging_a_state_of_another_layout_is_rejected() {
    let k = engine().compile(&window_count_spec()).unwrap();
    let other = engine()
        .compile(&agg_spec(&mut Choices::new(words(7, 96))))
        .unwrap();
    let mut a = k.new_group_state();
    let b = other.new_group_state();
    if a.state_schema() != b.state_schema() {
        assert!(a.merge_from(&b).is_err());
    }
}

#[test]
fn retractions_cancel_insertions() {
    let spec = window_count_spec();
    let k = engine().compile(&spec).unwrap();
    let data = batch(&mut Choices::new(words(1, 8192)), 1500, 5, 20, true);
    let mut st = k.new_group_state();
    k.update(&mut st, &data).unwrap();
    let before = st.output_all().unwrap();
    let second = data.slice(0, 700);
    k.update(&mut st, &second).unwrap();
    k.update_weighted(&mut st, &second, &Int64Array::from(vec![-1; 700]))
        .unwrap();
    assert_eq!(st.output_all().unwrap(), before);
    // Retracting everything leaves count 0 and NULL sums.
    k.update_weighted(&mut st, &data, &Int64Array::from(vec![-1; 1500]))
        .unwrap();
    let out = st.output_all().unwrap();
    assert!(
        out.column(2)
            .as_primitive::<Int64Type>()
            .values()
            .iter()
            .all(|n| *n == 0)
    );
    assert_eq!(out.column(3).null_count(), out.num_rows());
}

#[test]
fn min_max_reject_retractions() {
    let mut b = KernelSpec::builder(schema());
    let x = b.column(3).unwrap();
    b.aggregate(vec![], vec![("m".into(), AggFunc::Max, Some(x))]);
    let k = engine().compile(&b.build().unwrap()).unwrap();
    let data = batch(&mut Choices::new(vec![7; 4096]), 10, 0, 0, false);
    let mut st = k.new_group_state();
    let err = k
        .update_weighted(&mut st, &data, &Int64Array::from(vec![-1; 10]))
        .unwrap_err();
    assert!(matches!(err, JitError::Unsupported(_)), "{err}");
}

#[test]
fn eviction_dirty_tracking_and_key_columns() {
    let spec = window_count_spec();
    let k = engine().compile(&spec).unwrap();
    let data = batch(&mut Choices::new(words(2, 8192)), 900, 1, 10, false);
    let mut st = k.new_group_state();
    k.update(&mut st, &data).unwrap();
    let n = st.num_groups();
    assert!(n > 1);
    assert_eq!(st.take_dirty().len(), n);
    assert!(st.take_dirty().is_empty());
    let windows = st.key_column(0);
    assert_eq!(windows.len(), n);
    assert_eq!(
        windows.data_type(),
        &DataType::Timestamp(arrow::datatypes::TimeUnit::Microsecond, None)
    );
    // Evict every group whose window is NULL or starts before 0, then check the rest is intact.
    let w = windows.as_primitive::<arrow::datatypes::TimestampMicrosecondType>();
    let evict: Vec<u32> = (0..n as u32)
        .filter(|g| w.is_null(*g as usize) || w.value(*g as usize) < 0)
        .collect();
    let kept_before: Vec<u32> = (0..n as u32).filter(|g| !evict.contains(g)).collect();
    let expected = st.output(&kept_before).unwrap();
    st.remove(&evict).unwrap();
    assert_eq!(st.num_groups(), n - evict.len());
    assert_eq!(st.output_all().unwrap(), expected);
    // The index was rebuilt: feeding the same rows again finds every kept group and re-creates
    // each evicted one exactly once.
    k.update(&mut st, &data).unwrap();
    assert_eq!(st.num_groups(), n);
    assert!(st.remove(&[u32::MAX]).is_err());
}

#[test]
fn restoring_a_foreign_state_is_rejected() {
    let k = engine().compile(&window_count_spec()).unwrap();
    let other = RecordBatch::try_new(
        Arc::new(arrow::datatypes::Schema::new(vec![
            arrow::datatypes::Field::new("x", DataType::Int64, false),
        ])),
        vec![Arc::new(Int64Array::from(vec![1]))],
    )
    .unwrap();
    let err = GroupState::from_record_batch(&k, &other).unwrap_err();
    assert!(matches!(err, JitError::State(_)), "{err}");
}

/// The fused word count (`count_string_keys`) builds the same state as the kernel fed the
/// words as a column: same groups in the same order, same counts; other layouts are refused.
#[test]
fn counting_string_keys_equals_the_kernel() {
    use arrow::array::StringArray;
    use arrow::datatypes::{Field, Schema};
    let schema = Arc::new(Schema::new(vec![Field::new("w", DataType::Utf8, true)]));
    let mut b = KernelSpec::builder(schema.clone());
    let w = b.column(0).unwrap();
    b.aggregate(
        vec![("w".into(), w)],
        vec![
            ("n".into(), AggFunc::CountStar, None),
            ("c".into(), AggFunc::Count, Some(w)),
        ],
    );
    let k = engine().compile(&b.build().unwrap()).unwrap();
    let words: Vec<&str> = "the cat  sat on the mat the end  é é a-very-long-word-of-many-bytes x"
        .split(' ')
        .collect();
    let batch =
        RecordBatch::try_new(schema, vec![Arc::new(StringArray::from(words.clone()))]).unwrap();
    let mut by_kernel = k.new_group_state();
    k.update(&mut by_kernel, &batch).unwrap();
    let mut counted = k.new_group_state();
    assert!(counted.counts_string_keys());
    counted
        .count_string_keys(words[..5].iter().map(|w| w.as_bytes()))
        .unwrap();
    counted
        .count_string_keys(words[5..].iter().map(|w| w.as_bytes()))
        .unwrap();
    assert_eq!(
        by_kernel.output_all().unwrap(),
        counted.output_all().unwrap()
    );
    let mut other = engine()
        .compile(&window_count_spec())
        .unwrap()
        .new_group_state();
    assert!(!other.counts_string_keys());
    assert!(other.count_string_keys([b"x".as_slice()]).is_err());
}
