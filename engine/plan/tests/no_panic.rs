//! Any SQL text gives a plan or an error, never a panic: random token soups and mutations of valid
//! queries, planned against a catalog and checked in every output mode.

mod common;

use proptest::prelude::*;
use weir_plan::sql::{Catalog, parse_sql};
use weir_plan::{OutputMode, check_streaming, optimize, sql_to_plan};

const TOKENS: &[&str] = &[
    "SELECT",
    "FROM",
    "WHERE",
    "GROUP",
    "BY",
    "HAVING",
    "ORDER",
    "LIMIT",
    "OFFSET",
    "UNION",
    "ALL",
    "JOIN",
    "ON",
    "LEFT",
    "AS",
    "AND",
    "OR",
    "NOT",
    "NULL",
    "IS",
    "IN",
    "BETWEEN",
    "LIKE",
    "RLIKE",
    "CASE",
    "WHEN",
    "THEN",
    "ELSE",
    "END",
    "CAST",
    "INTERVAL",
    "DISTINCT",
    "CREATE",
    "SOURCE",
    "SINK",
    "TABLE",
    "VIEW",
    "DROP",
    "SHOW",
    "EXPLAIN",
    "WITH",
    "WATERMARK",
    "FOR",
    "bids",
    "events",
    "auctions",
    "auction",
    "price",
    "date_time",
    "amount",
    "tags",
    "window",
    "session_window",
    "window_time",
    "count",
    "sum",
    "avg",
    "max",
    "lower",
    "split",
    "explode",
    "current_timestamp",
    "coalesce",
    "(",
    ")",
    ",",
    "*",
    "+",
    "-",
    "/",
    "%",
    "=",
    "<>",
    "<",
    ">=",
    "||",
    ".",
    ";",
    "'10 seconds'",
    "'5 minutes'",
    "'x'",
    "0",
    "1",
    "2147483648",
    "1.5",
    "1e400",
    "-",
    "TIMESTAMP",
    "'2024-13-45'",
    "BIGINT",
    "DECIMAL(38,10)",
    "STRING",
    "SECOND",
    "99999999999999999999999999999999999999999",
];

const QUERIES: &[&str] = &[
    "SELECT window(date_time, '10 seconds') AS w, auction, count(*) AS n FROM bids GROUP BY window(date_time, '10 seconds'), auction",
    "SELECT auction, price * 2 FROM bids WHERE price > 10 AND channel LIKE 'a%' ORDER BY auction LIMIT 3",
    "SELECT user_id, sum(amount) / count(*) FROM events GROUP BY user_id HAVING sum(amount) > 1.5",
    "SELECT explode(split(tags, ',')) AS tag FROM events",
    "SELECT w.start, n FROM (SELECT window(date_time, '1 minute') AS w, count(*) AS n FROM bids GROUP BY 1) t",
    "CREATE SOURCE s (a BIGINT, ts TIMESTAMP, WATERMARK FOR ts AS ts - INTERVAL '5' SECOND) WITH (format = 'csv')",
    "SELECT CASE WHEN price > 100 THEN 'hi' ELSE 'lo' END, CAST(price AS DOUBLE) FROM bids UNION ALL SELECT id, 1.0 FROM events",
];

fn exercise(catalog: &Catalog, sql: &str) {
    if let Ok(plan) = sql_to_plan(catalog, sql) {
        let _ = optimize(&plan);
        for mode in [OutputMode::Append, OutputMode::Update, OutputMode::Complete] {
            let _ = check_streaming(&plan, mode);
        }
        let _ = plan.to_string();
    }
    let mut scratch = catalog.clone();
    if let Ok(statements) = parse_sql(sql) {
        for statement in &statements {
            let _ = scratch.execute(statement);
        }
    }
    if let Err(e) = sql_to_plan(catalog, sql) {
        let _ = e.render_with_source(sql);
    }
}

fn mutate(query: &str, cut: usize, insert: &str, delete: usize) -> String {
    let chars: Vec<char> = query.chars().collect();
    let at = cut % (chars.len() + 1);
    let end = (at + delete).min(chars.len());
    let mut out: String = chars[..at].iter().collect();
    out.push_str(insert);
    out.extend(&chars[end..]);
    out
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 600, ..ProptestConfig::default() })]

    #[test]
    fn token_soup_never_panics(tokens in prop::collection::vec(prop::sample::select(TOKENS), 0..40)) {
        let catalog = common::catalog();
        exercise(&catalog, &tokens.join(" "));
    }

    #[test]
    fn mutated_queries_never_panic(
        query in prop::sample::select(QUERIES),
        cut in 0usize..400,
        insert in prop::sample::select(TOKENS),
        delete in 0usize..12,
    ) {
        let catalog = common::catalog();
        exercise(&catalog, &mutate(query, cut, &format!(" {insert} "), delete));
    }

    #[test]
    fn arbitrary_text_never_panics(text in "\\PC{0,80}") {
        let catalog = common::catalog();
        exercise(&catalog, &text);
    }
}

#[test]
fn deep_nesting_is_an_error_not_a_stack_overflow() {
    let catalog = common::catalog();
    let sql = format!("SELECT {}1{} FROM bids", "(".repeat(5000), ")".repeat(5000));
    assert!(sql_to_plan(&catalog, &sql).is_err());
}

#[test]
fn long_operator_chains_are_an_error_or_a_plan_not_a_stack_overflow() {
    let catalog = common::catalog();
    for n in [100usize, 250, 2_000, 50_000] {
        let sql = format!("SELECT price{} FROM bids", " + 1".repeat(n));
        let _ = sql_to_plan(&catalog, &sql).map(|plan| optimize(&plan));
        let sql = format!(
            "SELECT price FROM bids WHERE {}",
            vec!["price > 1"; n].join(" AND ")
        );
        let _ = sql_to_plan(&catalog, &sql).map(|plan| optimize(&plan));
    }
}
