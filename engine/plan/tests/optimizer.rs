//! The optimizer's rewrites, asserted on the plan structure (the snapshots in `plans.rs` show them).

mod common;

use weir_plan::plan::{LogicalPlan, Source};
use weir_plan::{Expr, ScalarValue, explain_logical, optimize, sql_to_plan};

fn find_sources(plan: &LogicalPlan, out: &mut Vec<Source>) {
    if let LogicalPlan::Source(s) = plan {
        out.push(s.clone());
    }
    for input in plan.inputs() {
        find_sources(input, out);
    }
}

fn optimized_sources(sql: &str) -> Vec<Source> {
    let plan = sql_to_plan(&common::catalog(), sql).unwrap();
    let optimized = optimize(&plan).unwrap();
    assert_eq!(plan.schema(), optimized.schema());
    let mut sources = Vec::new();
    find_sources(&optimized, &mut sources);
    sources
}

#[test]
fn projection_push_down_records_needed_columns() {
    let sources =
        optimized_sources("SELECT auction, count(*) FROM bids WHERE price > 3 GROUP BY auction");
    let bids = &sources[0];
    // auction(0), price(2), and the watermark's event time date_time(5).
    assert_eq!(bids.projection, Some(vec![0, 2, 5]));
    let names: Vec<&str> = bids
        .schema
        .fields()
        .iter()
        .map(|f| f.name().as_str())
        .collect();
    assert_eq!(names, ["auction", "price", "date_time"]);
    assert_eq!(bids.table_schema.fields().len(), 7);
}

#[test]
fn predicates_reach_the_source_through_projections_and_aliases() {
    let sources = optimized_sources(
        "SELECT p FROM (SELECT price * 2 AS p, channel AS c FROM bids) t WHERE p > 10 AND c = 'web'",
    );
    let pushed: Vec<String> = sources[0]
        .pushed_filters
        .iter()
        .map(ToString::to_string)
        .collect();
    assert_eq!(pushed, ["((price * 2L) > 10L)", "(channel = 'web')"]);
}

#[test]
fn predicates_on_the_event_time_stay_above_the_watermark() {
    let plan = sql_to_plan(
        &common::catalog(),
        "SELECT auction FROM bids WHERE date_time > TIMESTAMP '2024-01-01 00:00:00' AND price > 1",
    )
    .unwrap();
    let text = optimize(&plan).unwrap().to_string();
    let filter_above = text.find("Filter (date_time").unwrap();
    let watermark = text.find("EventTimeWatermark").unwrap();
    assert!(filter_above < watermark, "{text}");
    let mut sources = Vec::new();
    find_sources(&optimize(&plan).unwrap(), &mut sources);
    assert_eq!(sources[0].pushed_filters.len(), 1);
}

#[test]
fn constant_folding_keeps_column_names() {
    let plan = sql_to_plan(
        &common::catalog(),
        "SELECT 1 + 2, price * (3 - 1) FROM bids WHERE 1 = 1",
    )
    .unwrap();
    let optimized = optimize(&plan).unwrap();
    assert_eq!(plan.schema(), optimized.schema());
    let LogicalPlan::Project(project) = &optimized else {
        panic!("{optimized}")
    };
    assert_eq!(
        project.exprs[0],
        Expr::Literal(ScalarValue::Int32(3)).alias("(1 + 2)")
    );
    // `WHERE 1 = 1` folds to true and the Filter disappears.
    assert!(!optimized.to_string().contains("Filter"), "{optimized}");
}

#[test]
fn overflow_is_left_for_run_time() {
    let plan = sql_to_plan(&common::catalog(), "SELECT 2147483647 + 1 FROM bids").unwrap();
    let text = optimize(&plan).unwrap().to_string();
    assert!(text.contains("(2147483647 + 1)"), "{text}");
}

#[test]
fn explain_has_both_plans() {
    let plan = sql_to_plan(
        &common::catalog(),
        "SELECT auction FROM bids WHERE price > 1 + 1",
    )
    .unwrap();
    let text = explain_logical(&plan).unwrap();
    assert!(
        text.starts_with("== Analyzed Logical Plan ==\nauction: bigint\n"),
        "{text}"
    );
    assert!(
        text.contains("== Optimized Logical Plan ==")
            && text.contains("pushed_filters=[(price > 2L)]"),
        "{text}"
    );
}
