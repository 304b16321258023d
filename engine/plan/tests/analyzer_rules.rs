//! Every analyzer rule with a failing query (whose rendered error is snapshotted) and a passing one.

mod common;

use weir_plan::builder::LogicalPlanBuilder;
use weir_plan::sql::{Catalog, Statement, parse_statement};
use weir_plan::{Error, OutputMode, Rule, check_streaming, sql_to_plan};

/// Plan `sql` and, when `mode` is given, check it as a streaming query in that mode.
fn run(catalog: &Catalog, sql: &str, mode: Option<OutputMode>) -> Result<(), Error> {
    let plan = sql_to_plan(catalog, sql)?;
    match mode {
        Some(mode) => check_streaming(&plan, mode),
        None => Ok(()),
    }
}

fn check_rule(name: &str, rule: Rule, failing: &str, passing: &str, mode: Option<OutputMode>) {
    let catalog = common::catalog();
    if let Err(e) = run(&catalog, passing, mode) {
        panic!(
            "passing query of {name} failed:\n{}",
            e.render_with_source(passing)
        );
    }
    let err = match run(&catalog, failing, mode) {
        Ok(()) => panic!("failing query of {name} passed: {failing}"),
        Err(e) => e,
    };
    assert_eq!(
        err.rule(),
        Some(rule),
        "{}",
        err.render_with_source(failing)
    );
    let mode_text = mode.map_or("none (batch planning)".to_string(), |m| m.to_string());
    let text = format!(
        "{failing}\noutput mode: {mode_text}\n\n{}",
        err.render_with_source(failing)
    );
    insta::with_settings!({snapshot_path => "../../../snapshots", prepend_module_to_snapshot => false}, {
        insta::assert_snapshot!(format!("analyzer_{name}"), text);
    });
}

macro_rules! rule_case {
    ($name:ident, $rule:expr, $mode:expr, fail: $failing:expr, pass: $passing:expr) => {
        #[test]
        fn $name() {
            check_rule(stringify!($name), $rule, $failing, $passing, $mode);
        }
    };
}

const APPEND: Option<OutputMode> = Some(OutputMode::Append);
const UPDATE: Option<OutputMode> = Some(OutputMode::Update);
const COMPLETE: Option<OutputMode> = Some(OutputMode::Complete);

// ---- name and type resolution ----
rule_case!(unresolved_column, Rule::UnresolvedColumn, None,
    fail: "SELECT auction,\n       prise FROM bids",
    pass: "SELECT AUCTION, Price FROM bids");
rule_case!(unresolved_qualifier, Rule::UnresolvedColumn, None,
    fail: "SELECT x.price FROM bids b",
    pass: "SELECT b.price FROM bids b");
rule_case!(ambiguous_reference, Rule::AmbiguousReference, None,
    fail: "SELECT id FROM events JOIN auctions ON user_id = seller",
    pass: "SELECT e.id, a.id AS auction_id, item FROM events e JOIN auctions a ON e.user_id = a.id");
rule_case!(unresolved_routine, Rule::UnresolvedRoutine, None,
    fail: "SELECT lowr(channel) FROM bids",
    pass: "SELECT lower(channel) FROM bids");
rule_case!(wrong_num_args, Rule::WrongNumArgs, None,
    fail: "SELECT substring(url) FROM bids",
    pass: "SELECT substring(url, 1, 3) FROM bids");
rule_case!(binary_type_mismatch, Rule::DatatypeMismatch, None,
    fail: "SELECT price + date_time FROM bids",
    pass: "SELECT date_time + INTERVAL '1' MINUTE, price + 1.5 FROM bids");
rule_case!(non_boolean_filter, Rule::DatatypeMismatch, None,
    fail: "SELECT price FROM bids WHERE price",
    pass: "SELECT price FROM bids WHERE price > 0");
rule_case!(bad_cast, Rule::DatatypeMismatch, None,
    fail: "SELECT CAST(window(date_time, '1 minute') AS INT) FROM bids",
    pass: "SELECT CAST(price AS STRING), CAST('12' AS INT) FROM bids");
rule_case!(function_argument_type, Rule::DatatypeMismatch, None,
    fail: "SELECT abs(channel) FROM bids",
    pass: "SELECT abs(price), abs(amount) FROM events JOIN bids ON user_id = bidder");
rule_case!(missing_aggregation, Rule::MissingAggregation, None,
    fail: "SELECT auction, bidder, count(*) FROM bids GROUP BY auction",
    pass: "SELECT auction, bidder, count(*) FROM bids GROUP BY auction, bidder");
rule_case!(aggregate_in_where, Rule::InvalidAggregate, None,
    fail: "SELECT auction FROM bids WHERE count(*) > 1",
    pass: "SELECT auction FROM bids GROUP BY auction HAVING count(*) > 1");
rule_case!(nested_aggregate, Rule::InvalidAggregate, None,
    fail: "SELECT sum(max(price)) FROM bids",
    pass: "SELECT sum(price), max(price) FROM bids");
rule_case!(aggregate_in_group_by, Rule::InvalidAggregate, None,
    fail: "SELECT count(*) FROM bids GROUP BY sum(price)",
    pass: "SELECT count(*) FROM bids GROUP BY price % 10");
rule_case!(bad_interval, Rule::InvalidLiteral, None,
    fail: "SELECT window(date_time, '10 parsecs') FROM bids GROUP BY 1",
    pass: "SELECT window(date_time, '10 seconds') FROM bids GROUP BY 1");
rule_case!(slide_longer_than_window, Rule::InvalidLiteral, None,
    fail: "SELECT window(date_time, '10 seconds', '1 minute') FROM bids GROUP BY 1",
    pass: "SELECT window(date_time, '1 minute', '10 seconds') FROM bids GROUP BY 1");
rule_case!(union_column_count, Rule::IncompatibleUnion, None,
    fail: "SELECT auction FROM bids UNION ALL SELECT user_id, id FROM events",
    pass: "SELECT auction FROM bids UNION ALL SELECT user_id FROM events");
rule_case!(union_column_type, Rule::IncompatibleUnion, None,
    fail: "SELECT price > 1 FROM bids UNION ALL SELECT ts FROM events",
    pass: "SELECT price FROM bids UNION ALL SELECT amount FROM events");
rule_case!(unknown_relation, Rule::Catalog, None,
    fail: "SELECT * FROM bidz",
    pass: "SELECT * FROM bids");
rule_case!(explode_non_array, Rule::DatatypeMismatch, None,
    fail: "SELECT explode(tags) FROM events",
    pass: "SELECT explode(split(tags, ' ')) FROM events");
rule_case!(select_without_from, Rule::UnsupportedFeature, None,
    fail: "SELECT 1 + 1",
    pass: "SELECT 1 + 1 FROM bids");

// ---- §1.3 output-mode matrix and §4.4 watermark requirement ----
rule_case!(complete_without_aggregation, Rule::StreamingOutputMode, COMPLETE,
    fail: "SELECT auction, price FROM bids WHERE price > 10",
    pass: "SELECT auction, count(*) FROM bids GROUP BY auction");
rule_case!(append_aggregation_without_watermark, Rule::StreamingWatermarkRequired, APPEND,
    fail: "SELECT user_id, sum(amount) FROM events GROUP BY user_id",
    pass: "SELECT window(date_time, '1 minute'), count(*) FROM bids GROUP BY 1");
rule_case!(append_watermark_not_a_grouping_key, Rule::StreamingWatermarkRequired, APPEND,
    fail: "SELECT auction, count(*) FROM bids GROUP BY auction",
    pass: "SELECT auction, date_time, count(*) FROM bids GROUP BY auction, date_time");
rule_case!(session_window_in_update, Rule::StreamingOutputMode, UPDATE,
    fail: "SELECT session_window(date_time, '5 minutes'), bidder, count(*) FROM bids GROUP BY 1, 2",
    pass: "SELECT window(date_time, '5 minutes'), bidder, count(*) FROM bids GROUP BY 1, 2");

// ---- §4.8 unsupported operations ----
rule_case!(global_session_window, Rule::StreamingUnsupportedOperation, APPEND,
    fail: "SELECT session_window(date_time, '5 minutes'), count(*) FROM bids GROUP BY 1",
    pass: "SELECT session_window(date_time, '5 minutes'), bidder, count(*) FROM bids GROUP BY 1, 2");
rule_case!(distinct_aggregate, Rule::StreamingDistinctAggregate, UPDATE,
    fail: "SELECT auction, count(DISTINCT bidder) FROM bids GROUP BY auction",
    pass: "SELECT auction, approx_count_distinct(bidder) FROM bids GROUP BY auction");
rule_case!(multiple_aggregations_in_update, Rule::StreamingMultipleStatefulOperators, UPDATE,
    fail: "SELECT n, count(*) FROM (SELECT auction, count(*) AS n FROM bids GROUP BY auction) t GROUP BY n",
    pass: "SELECT auction, count(*) AS n FROM bids GROUP BY auction");
rule_case!(sort_without_complete_aggregation, Rule::StreamingSort, APPEND,
    fail: "SELECT auction, price FROM bids ORDER BY price DESC",
    pass: "SELECT auction, price FROM bids");
rule_case!(sort_in_update, Rule::StreamingSort, UPDATE,
    fail: "SELECT auction, count(*) AS n FROM bids GROUP BY auction ORDER BY n",
    pass: "SELECT auction, count(*) AS n FROM bids GROUP BY auction");
rule_case!(limit_in_update, Rule::StreamingLimit, UPDATE,
    fail: "SELECT auction, count(*) AS n FROM bids GROUP BY auction LIMIT 5",
    pass: "SELECT auction, count(*) AS n FROM bids GROUP BY auction");
rule_case!(offset, Rule::StreamingLimit, APPEND,
    fail: "SELECT auction FROM bids LIMIT 5 OFFSET 2",
    pass: "SELECT auction FROM bids LIMIT 5");
rule_case!(stream_stream_join_in_update, Rule::StreamingJoin, UPDATE,
    fail: "SELECT auction, id FROM bids JOIN events ON bidder = user_id",
    pass: "SELECT auction, item FROM bids JOIN auctions ON auction = auctions.id");
rule_case!(full_outer_stream_static_join, Rule::StreamingJoin, APPEND,
    fail: "SELECT auction, item FROM bids FULL OUTER JOIN auctions ON auction = id",
    pass: "SELECT auction, item FROM bids LEFT OUTER JOIN auctions ON auction = id");
rule_case!(left_outer_static_stream_join, Rule::StreamingJoin, APPEND,
    fail: "SELECT item, auction FROM auctions LEFT JOIN bids ON id = auction",
    pass: "SELECT item, auction FROM auctions RIGHT JOIN bids ON id = auction");
rule_case!(stream_stream_outer_join_without_watermark, Rule::StreamingJoin, APPEND,
    fail: "SELECT auction, id FROM bids LEFT JOIN events ON bidder = user_id",
    pass: "SELECT auction, id FROM bids JOIN events ON bidder = user_id");
rule_case!(union_stream_and_table, Rule::StreamingUnion, APPEND,
    fail: "SELECT auction FROM bids UNION ALL SELECT id FROM auctions",
    pass: "SELECT auction FROM bids UNION ALL SELECT user_id FROM events");
rule_case!(grouping_sets, Rule::StreamingUnsupportedOperation, None,
    fail: "SELECT auction, bidder, count(*) FROM bids GROUP BY ROLLUP (auction, bidder)",
    pass: "SELECT auction, bidder, count(*) FROM bids GROUP BY auction, bidder");
rule_case!(over_window, Rule::StreamingUnsupportedOperation, None,
    fail: "SELECT auction, sum(price) OVER (PARTITION BY auction) FROM bids",
    pass: "SELECT auction, sum(price) FROM bids GROUP BY auction");
rule_case!(monotonically_increasing_id, Rule::StreamingUnsupportedOperation, None,
    fail: "SELECT monotonically_increasing_id(), auction FROM bids",
    pass: "SELECT auction FROM bids");
rule_case!(tablesample, Rule::StreamingUnsupportedOperation, None,
    fail: "SELECT auction FROM bids TABLESAMPLE (10 PERCENT)",
    pass: "SELECT auction FROM bids");
rule_case!(intersect_streams, Rule::StreamingUnsupportedOperation, None,
    fail: "SELECT auction FROM bids INTERSECT SELECT user_id FROM events",
    pass: "SELECT auction FROM bids UNION ALL SELECT user_id FROM events");
rule_case!(except_stream_on_right, Rule::StreamingUnsupportedOperation, None,
    fail: "SELECT id FROM auctions EXCEPT SELECT auction FROM bids",
    pass: "SELECT id FROM auctions");
rule_case!(batch_plan_as_stream, Rule::StreamingRequiresStreamingSource, APPEND,
    fail: "SELECT id, item FROM auctions",
    pass: "SELECT auction FROM bids");

#[test]
fn dedup_within_watermark_needs_a_watermark() {
    let catalog = common::catalog();
    let events = catalog.source("events").unwrap().clone();
    let failing = LogicalPlanBuilder::scan(events.clone())
        .unwrap()
        .drop_duplicates_within_watermark(&["id"])
        .unwrap()
        .build();
    let err = check_streaming(&failing, OutputMode::Append).unwrap_err();
    assert_eq!(err.rule(), Some(Rule::StreamingWatermarkRequired));
    let passing = LogicalPlanBuilder::scan(events)
        .unwrap()
        .with_watermark("ts", "1 minute")
        .unwrap()
        .drop_duplicates_within_watermark(&["id"])
        .unwrap()
        .build();
    check_streaming(&passing, OutputMode::Append).unwrap();
    insta::with_settings!({snapshot_path => "../../../snapshots", prepend_module_to_snapshot => false}, {
        insta::assert_snapshot!("analyzer_dedup_within_watermark_without_watermark", err.to_string());
    });
}

#[test]
fn dedup_after_aggregation_in_update() {
    let catalog = common::catalog();
    let plan = LogicalPlanBuilder::from(
        sql_to_plan(
            &catalog,
            "SELECT auction, count(*) AS n FROM bids GROUP BY auction",
        )
        .unwrap(),
    )
    .drop_duplicates(&["n"])
    .unwrap()
    .build();
    let err = check_streaming(&plan, OutputMode::Update).unwrap_err();
    assert_eq!(err.rule(), Some(Rule::StreamingMultipleStatefulOperators));
    // Dedup before the aggregation is fine in update mode.
    let fine = LogicalPlanBuilder::scan(catalog.source("bids").unwrap().clone())
        .unwrap()
        .drop_duplicates(&["auction", "bidder"])
        .unwrap()
        .group_by([weir_plan::expr::col("auction")])
        .count()
        .unwrap()
        .build();
    check_streaming(&fine, OutputMode::Update).unwrap();
}

#[test]
fn create_sink_checks_the_query_for_its_output_mode() {
    let mut catalog = common::catalog();
    let failing = "CREATE SINK counts WITH (format = 'json', path = 'out', outputMode = 'append')\n  AS SELECT auction, count(*) FROM bids GROUP BY auction";
    let statement = parse_statement(failing).unwrap();
    let err = catalog.execute(&statement).unwrap_err();
    assert_eq!(err.rule(), Some(Rule::StreamingWatermarkRequired));
    insta::with_settings!({snapshot_path => "../../../snapshots", prepend_module_to_snapshot => false}, {
        insta::assert_snapshot!("analyzer_create_sink_append_without_watermark", err.render_with_source(failing));
    });
    let passing = "CREATE SINK counts WITH (format = 'json', path = 'out', outputMode = 'update')\n  AS SELECT auction, count(*) FROM bids GROUP BY auction";
    catalog.execute(&parse_statement(passing).unwrap()).unwrap();
    assert_eq!(
        catalog.sink("COUNTS").map(|s| s.output_mode),
        Some(OutputMode::Update)
    );
    assert!(matches!(
        parse_statement("SHOW SINKS").unwrap(),
        Statement::Show(_)
    ));
}

#[test]
fn parse_error_has_line_column_and_caret() {
    let catalog = common::catalog();
    let sql = "SELECT auction\nFROM bids\nWHERE price >";
    let err = sql_to_plan(&catalog, sql).unwrap_err();
    assert!(err.span().is_some(), "{err}");
    insta::with_settings!({snapshot_path => "../../../snapshots", prepend_module_to_snapshot => false}, {
        insta::assert_snapshot!("analyzer_parse_error_caret", err.render_with_source(sql));
    });
}
