//! Snapshots of analysed and optimised plans for each supported query shape, with the verdict of
//! the streaming check per output mode, and SQL-versus-builder equality.

mod common;

use weir_plan::builder::LogicalPlanBuilder;
use weir_plan::expr::{AggregateFunction, SortExpr, aggregate, col, count_star, func, lit, window};
use weir_plan::{LogicalPlan, OutputMode, check_streaming, optimize, sql_to_plan};

fn verdicts(plan: &LogicalPlan) -> String {
    [OutputMode::Append, OutputMode::Update, OutputMode::Complete]
        .iter()
        .map(|mode| match check_streaming(plan, *mode) {
            Ok(()) => format!("{mode}: ok"),
            Err(e) => format!("{mode}: {}", e.rule().map_or("parse", |r| r.name())),
        })
        .collect::<Vec<_>>()
        .join(", ")
}

fn describe(sql: &str) -> String {
    let catalog = common::catalog();
    let plan =
        sql_to_plan(&catalog, sql).unwrap_or_else(|e| panic!("{}", e.render_with_source(sql)));
    let optimized = optimize(&plan).unwrap_or_else(|e| panic!("optimize: {e}"));
    assert_eq!(
        plan.schema(),
        optimized.schema(),
        "the optimizer must keep the output schema"
    );
    format!(
        "{sql}\n\n== Analyzed Logical Plan ==\n{}\n{plan}\n== Optimized Logical Plan ==\n{optimized}\n== Streaming ==\n{}\n",
        plan.schema_description(),
        verdicts(&plan)
    )
}

macro_rules! plan_snapshot {
    ($name:ident, $sql:expr) => {
        #[test]
        fn $name() {
            let text = describe($sql);
            insta::with_settings!({snapshot_path => "../../../snapshots", prepend_module_to_snapshot => false}, {
                insta::assert_snapshot!(concat!("plan_", stringify!($name)), text);
            });
        }
    };
}

plan_snapshot!(
    stateless_select_filter,
    "SELECT auction, price * 2 AS doubled, upper(channel) AS ch FROM bids WHERE price > 10 + 5 AND channel LIKE 'a%'"
);
plan_snapshot!(
    tumbling_window_count,
    "SELECT window(date_time, '10 seconds') AS w, auction, count(*) AS n FROM bids \
     GROUP BY window(date_time, '10 seconds'), auction"
);
plan_snapshot!(
    sliding_window_max,
    "SELECT window(date_time, '1 minute', '20 seconds'), max(price) AS top FROM bids GROUP BY 1"
);
plan_snapshot!(
    session_window_per_bidder,
    "SELECT session_window(date_time, '5 minutes') AS s, bidder, sum(price) AS spent FROM bids GROUP BY 1, bidder"
);
plan_snapshot!(
    aggregation_without_watermark,
    "SELECT user_id, count(*) AS n, avg(amount) AS mean FROM events GROUP BY user_id HAVING count(*) > 2"
);
plan_snapshot!(
    complete_mode_sorted_top,
    "SELECT channel, count(*) AS n FROM bids GROUP BY channel ORDER BY n DESC LIMIT 10"
);
plan_snapshot!(
    explode_tags,
    "SELECT id, explode(split(tags, ',')) AS tag FROM events WHERE user_id = 7"
);
plan_snapshot!(
    union_all_streams,
    "SELECT auction AS id, price FROM bids UNION ALL SELECT user_id, CAST(amount AS BIGINT) FROM events"
);
plan_snapshot!(
    subquery_window_time_chain,
    "SELECT window(window_time(w), '1 minute') AS hour_w, sum(n) AS total FROM \
     (SELECT window(date_time, '10 seconds') AS w, count(*) AS n FROM bids GROUP BY 1) t GROUP BY 1"
);
plan_snapshot!(
    stream_static_join,
    "SELECT b.auction, a.item, b.price FROM bids b JOIN auctions a ON b.auction = a.id WHERE a.seller = 3"
);
plan_snapshot!(distinct_rows, "SELECT DISTINCT channel, url FROM bids");
plan_snapshot!(
    case_cast_functions,
    "SELECT CASE WHEN price > 100 THEN 'high' WHEN price > 10 THEN 'mid' ELSE 'low' END AS band, \
     coalesce(extra, 'none') AS e, date_format(date_time, 'yyyy-MM-dd') AS day, price / 3 AS third, \
     amount * 1.5 AS scaled FROM bids JOIN events ON bids.bidder = events.user_id"
);
plan_snapshot!(
    struct_field_access,
    "SELECT w.start, w.end, n FROM (SELECT window(date_time, '10 seconds') AS w, count(*) AS n FROM bids GROUP BY 1) t \
     WHERE n > 1"
);

#[test]
fn sql_and_builder_give_the_same_plan_for_a_windowed_count() {
    let catalog = common::catalog();
    let sql = sql_to_plan(
        &catalog,
        "SELECT window(date_time, '10 seconds') AS w, auction, count(*) AS n FROM bids \
         GROUP BY window(date_time, '10 seconds'), auction",
    )
    .unwrap();
    let source = catalog.source("bids").unwrap().clone();
    let built = LogicalPlanBuilder::scan(source)
        .unwrap()
        .group_by([
            window(col("date_time"), "10 seconds", None, None).unwrap(),
            col("auction"),
        ])
        .agg([count_star().alias("n")])
        .unwrap()
        .select([col("window").alias("w"), col("auction"), col("n")])
        .unwrap()
        .build();
    assert_eq!(sql, built);
    insta::with_settings!({snapshot_path => "../../../snapshots", prepend_module_to_snapshot => false}, {
        insta::assert_snapshot!("plan_builder_windowed_count", format!("== SQL ==\n{sql}\n== Builder ==\n{built}"));
    });
}

#[test]
fn sql_and_builder_give_the_same_plan_for_a_filtered_projection() {
    let catalog = common::catalog();
    let sql = sql_to_plan(
        &catalog,
        "SELECT auction, price * 2 AS doubled, lower(channel) FROM bids WHERE price > 10",
    )
    .unwrap();
    let source = catalog.source("bids").unwrap().clone();
    let built = LogicalPlanBuilder::scan(source)
        .unwrap()
        .filter(col("price").gt(lit(10)))
        .unwrap()
        .select([
            col("auction"),
            (col("price") * lit(2)).alias("doubled"),
            func("lower", vec![col("channel")]),
        ])
        .unwrap()
        .build();
    assert_eq!(sql, built);
    let via_select_expr = LogicalPlanBuilder::scan(catalog.source("bids").unwrap().clone())
        .unwrap()
        .filter(weir_plan::sql::parse_sql_expr("price > 10").unwrap())
        .unwrap()
        .select_expr(&["auction", "price * 2 AS doubled", "lower(channel)"])
        .unwrap()
        .build();
    assert_eq!(sql, via_select_expr);
    insta::with_settings!({snapshot_path => "../../../snapshots", prepend_module_to_snapshot => false}, {
        insta::assert_snapshot!("plan_builder_filtered_projection", format!("== SQL ==\n{sql}\n== Builder ==\n{built}"));
    });
}

#[test]
fn sql_and_builder_give_the_same_plan_for_having_and_order() {
    let catalog = common::catalog();
    let sql = sql_to_plan(
        &catalog,
        "SELECT user_id, sum(amount) AS total FROM events GROUP BY user_id HAVING sum(amount) > 100 ORDER BY total DESC",
    )
    .unwrap();
    let source = catalog.source("events").unwrap().clone();
    let aggregated = LogicalPlanBuilder::scan(source)
        .unwrap()
        .group_by([col("user_id")])
        .agg([aggregate(AggregateFunction::Sum, col("amount")).alias("total")])
        .unwrap()
        .filter(col("total").gt(lit(100)))
        .unwrap()
        .order_by([SortExpr::desc(col("total"))])
        .unwrap()
        .build();
    // HAVING filters on the aggregate's output column, as the builder's filter after agg does.
    assert_eq!(sql.to_string(), aggregated.to_string());
    assert_eq!(sql.schema(), aggregated.schema());
}

#[test]
fn builder_with_column_drop_and_dedup() {
    let catalog = common::catalog();
    let plan = LogicalPlanBuilder::scan(catalog.source("events").unwrap().clone())
        .unwrap()
        .with_watermark("ts", "10 minutes")
        .unwrap()
        .with_column("tags", func("upper", vec![col("tags")]))
        .unwrap()
        .drop(&["amount"])
        .unwrap()
        .drop_duplicates_within_watermark(&["id"])
        .unwrap()
        .build();
    assert_eq!(
        plan.schema_description(),
        "id: string, user_id: bigint, ts: timestamp, tags: string"
    );
    check_streaming(&plan, OutputMode::Append).unwrap();
    insta::with_settings!({snapshot_path => "../../../snapshots", prepend_module_to_snapshot => false}, {
        insta::assert_snapshot!("plan_builder_dedup_within_watermark", plan.to_string());
    });
}

#[test]
fn sql_and_builder_give_the_same_plan_for_explode_and_union() {
    let catalog = common::catalog();
    let events = || LogicalPlanBuilder::scan(catalog.source("events").unwrap().clone()).unwrap();
    let bids = || LogicalPlanBuilder::scan(catalog.source("bids").unwrap().clone()).unwrap();

    let sql = sql_to_plan(
        &catalog,
        "SELECT id, explode(split(tags, ',')) AS tag FROM events",
    )
    .unwrap();
    let built = events()
        .explode(func("split", vec![col("tags"), lit(",")]), "tag")
        .unwrap()
        .select([col("id"), col("tag")])
        .unwrap()
        .build();
    assert_eq!(sql, built);
    // `select` with the generator inside plans the same way.
    let via_select = events()
        .select([
            col("id"),
            func("explode", vec![func("split", vec![col("tags"), lit(",")])]).alias("tag"),
        ])
        .unwrap()
        .build();
    assert_eq!(sql, via_select);

    let sql = sql_to_plan(
        &catalog,
        "SELECT auction AS id, price FROM bids UNION ALL SELECT user_id, amount FROM events",
    )
    .unwrap();
    let built = bids()
        .select([col("auction").alias("id"), col("price")])
        .unwrap()
        .union(events().select([col("user_id"), col("amount")]).unwrap())
        .unwrap()
        .build();
    assert_eq!(sql, built);
    // bigint and decimal(10,2) widen to decimal(22,2), with casts inserted under the union.
    assert_eq!(sql.schema_description(), "id: bigint, price: decimal(22,2)");
}

#[test]
fn builder_errors_name_the_problem() {
    let catalog = common::catalog();
    let bids = || LogicalPlanBuilder::scan(catalog.source("bids").unwrap().clone()).unwrap();
    let err = bids().select([col("nope")]).unwrap_err();
    assert_eq!(err.rule(), Some(weir_plan::Rule::UnresolvedColumn));
    let err = bids().with_watermark("price", "10 seconds").unwrap_err();
    assert_eq!(err.rule(), Some(weir_plan::Rule::DatatypeMismatch));
    let err = bids()
        .with_watermark("date_time", "ten seconds")
        .unwrap_err();
    assert_eq!(err.rule(), Some(weir_plan::Rule::InvalidLiteral));
    let err = bids()
        .group_by([col("auction")])
        .agg([col("price")])
        .unwrap_err();
    assert_eq!(err.rule(), Some(weir_plan::Rule::MissingAggregation));
    // `drop` ignores unknown names, as Spark does; `with_column` replaces in place.
    let plan = bids()
        .drop(&["nope", "URL"])
        .unwrap()
        .with_column("PRICE", col("price") * lit(2))
        .unwrap()
        .build();
    assert_eq!(
        plan.schema_description(),
        "auction: bigint, bidder: bigint, PRICE: bigint, channel: string, date_time: timestamp, extra: string"
    );
    // The watermark metadata survives projections of the event-time column.
    let counted = bids()
        .select([col("date_time"), col("auction")])
        .unwrap()
        .group_by([window(col("date_time"), "1 minute", None, None).unwrap()])
        .count()
        .unwrap()
        .build();
    check_streaming(&counted, OutputMode::Append).unwrap();
}

#[test]
fn default_output_mode_for_ad_hoc_queries() {
    let catalog = common::catalog();
    let mode = |sql: &str| weir_plan::default_output_mode(&sql_to_plan(&catalog, sql).unwrap());
    assert_eq!(mode("SELECT auction FROM bids"), OutputMode::Append);
    assert_eq!(
        mode("SELECT auction, count(*) FROM bids GROUP BY auction"),
        OutputMode::Update
    );
    assert_eq!(
        mode("SELECT auction, count(*) AS n FROM bids GROUP BY auction ORDER BY n DESC"),
        OutputMode::Complete
    );
}

#[test]
fn qualified_names_tell_join_sides_apart() {
    let catalog = common::catalog();
    let plan = sql_to_plan(
        &catalog,
        "SELECT e.id, a.id AS auction_id FROM events e JOIN auctions a ON e.user_id = a.id AND a.id > 0",
    )
    .unwrap();
    assert_eq!(plan.schema_description(), "id: string, auction_id: bigint");
    let text = plan.to_string();
    assert!(text.starts_with("Project [e.id, a.id AS auction_id]\n+- Join Inner, ((user_id = a.id) AND (a.id > CAST(0 AS bigint)))"), "{text}");
}
