//! Parsing and executing every DDL form, and the errors of malformed DDL.

mod common;

use std::collections::BTreeMap;

use arrow_schema::DataType;
use weir_plan::sql::{Catalog, ObjectKind, Statement, StatementResult, parse_sql, parse_statement};
use weir_plan::{OutputMode, Rule};

#[test]
fn create_source_with_watermark_and_options() {
    let sql = "CREATE SOURCE bids (auction BIGINT NOT NULL, price DECIMAL(10, 2), channel STRING, \
               date_time TIMESTAMP, WATERMARK FOR date_time AS date_time - INTERVAL '5' SECOND) \
               WITH (format = 'csv', path = 'data/bids', maxFilesPerTrigger = 1, 'kafka.bootstrap.servers' = 'h:9092', \
               header = true)";
    let Statement::CreateSource(create) = parse_statement(sql).unwrap() else {
        panic!("not a CREATE SOURCE")
    };
    assert_eq!(create.name, "bids");
    let columns: Vec<(&str, &DataType, bool)> = create
        .columns
        .iter()
        .map(|c| (c.name.as_str(), &c.data_type, c.nullable))
        .collect();
    assert_eq!(columns[0], ("auction", &DataType::Int64, false));
    assert_eq!(columns[1], ("price", &DataType::Decimal128(10, 2), true));
    assert_eq!(columns[2], ("channel", &DataType::Utf8, true));
    assert_eq!(columns[3].1, &weir_plan::expr::timestamp_type());
    let watermark = create.watermark.unwrap();
    assert_eq!(
        (watermark.column.as_str(), watermark.delay_us),
        ("date_time", 5_000_000)
    );
    let expected: BTreeMap<String, String> = [
        ("format", "csv"),
        ("path", "data/bids"),
        ("maxFilesPerTrigger", "1"),
        ("kafka.bootstrap.servers", "h:9092"),
        ("header", "true"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect();
    assert_eq!(create.options, expected);
}

#[test]
fn watermark_delay_forms() {
    for (text, us) in [
        ("date_time - INTERVAL '5' SECOND", 5_000_000),
        ("date_time - INTERVAL '10 seconds'", 10_000_000),
        ("date_time - INTERVAL '1' MINUTE", 60_000_000),
        ("date_time", 0),
    ] {
        let sql = format!(
            "CREATE SOURCE s (date_time TIMESTAMP, WATERMARK FOR date_time AS {text}) WITH (format = 'rate')"
        );
        let Statement::CreateSource(create) = parse_statement(&sql).unwrap() else {
            panic!()
        };
        assert_eq!(create.watermark.unwrap().delay_us, us, "{text}");
    }
}

#[test]
fn create_table_view_sink_drop_show_explain() {
    let script = "
        CREATE TABLE auctions (id BIGINT, item STRING) WITH (format = 'parquet', path = 'data/auctions');
        CREATE SOURCE bids (auction BIGINT, date_time TIMESTAMP,
                            WATERMARK FOR date_time AS date_time - INTERVAL '5' SECOND) WITH (format = 'json', path = 'in');
        CREATE VIEW recent AS SELECT auction, date_time FROM bids WHERE auction > 0;
        CREATE SINK counts WITH (format = 'json', path = 'out/counts', outputMode = 'append',
                                 trigger = 'availableNow', checkpointLocation = 'ck/counts')
          AS SELECT window(date_time, '10 seconds') AS w, auction, count(*) AS n
             FROM recent GROUP BY window(date_time, '10 seconds'), auction;
        SHOW SOURCES; SHOW TABLES; SHOW VIEWS; SHOW SINKS;
        EXPLAIN SELECT auction FROM bids;
        EXPLAIN CODEGEN SELECT auction FROM recent;
        DROP VIEW IF EXISTS nothing_here;
        DROP SINK counts;
    ";
    let statements = parse_sql(script).unwrap();
    assert_eq!(statements.len(), 12);
    assert!(matches!(
        &statements[8],
        Statement::Explain { codegen: false, .. }
    ));
    assert!(matches!(
        &statements[9],
        Statement::Explain { codegen: true, .. }
    ));
    assert!(matches!(
        &statements[11],
        Statement::Drop {
            kind: ObjectKind::Sink,
            if_exists: false,
            ..
        }
    ));

    let mut catalog = Catalog::new();
    let results = catalog.execute_script(script).unwrap();
    assert_eq!(
        results[0],
        StatementResult::Created {
            kind: ObjectKind::Table,
            name: "auctions".into()
        }
    );
    assert_eq!(results[4], StatementResult::Listed(vec!["bids".into()]));
    assert_eq!(results[5], StatementResult::Listed(vec!["auctions".into()]));
    assert_eq!(results[6], StatementResult::Listed(vec!["recent".into()]));
    assert_eq!(results[7], StatementResult::Listed(vec!["counts".into()]));
    assert!(
        matches!(&results[9], StatementResult::Explain { codegen: true, plan } if plan.is_streaming())
    );
    assert_eq!(
        results[11],
        StatementResult::Dropped {
            kind: ObjectKind::Sink,
            name: "counts".into()
        }
    );
    assert!(catalog.sink("counts").is_none());
    assert!(catalog.view("RECENT").is_some());
}

#[test]
fn sink_keeps_options_and_output_mode() {
    let mut catalog = common::catalog();
    catalog
        .execute_script(
            "CREATE SINK totals WITH (format = 'console', outputMode = 'Complete') AS \
             SELECT channel, count(*) AS n FROM bids GROUP BY channel ORDER BY n DESC",
        )
        .unwrap();
    let sink = catalog.sink("totals").unwrap();
    assert_eq!(sink.output_mode, OutputMode::Complete);
    assert_eq!(
        sink.options.get("format").map(String::as_str),
        Some("console")
    );
}

fn error_of(script: &str) -> weir_plan::Error {
    let mut catalog = Catalog::new();
    match catalog.execute_script(script) {
        Ok(_) => panic!("expected an error for {script}"),
        Err(e) => e,
    }
}

#[test]
fn ddl_errors_carry_positions() {
    let cases = [
        (
            "CREATE SOURCE s (a INT) WITH (path = 'x')",
            Some(Rule::Catalog),
        ),
        (
            "CREATE SOURCE s (a INT, WATERMARK FOR a AS a - INTERVAL '5' SECOND) WITH (format = 'csv')",
            Some(Rule::DatatypeMismatch),
        ),
        (
            "CREATE SOURCE s (ts TIMESTAMP, WATERMARK FOR nope AS nope) WITH (format = 'csv')",
            Some(Rule::UnresolvedColumn),
        ),
        (
            "CREATE SOURCE s (ts TIMESTAMP, WATERMARK FOR ts AS ts + INTERVAL '5' SECOND) WITH (format = 'csv')",
            None,
        ),
        ("CREATE SOURCE s (a FANCYTYPE) WITH (format = 'csv')", None),
        (
            "CREATE SOURCE s (a INT) WITH (format = 'csv', format = 'json')",
            None,
        ),
        ("CREATE GADGET g", None),
        ("DROP SOURCE missing", Some(Rule::Catalog)),
        ("SHOW GADGETS", None),
        (
            "CREATE SOURCE s (a INT) WITH (format = 'csv'); CREATE TABLE s (a INT) WITH (format = 'csv')",
            Some(Rule::Catalog),
        ),
        (
            "CREATE SINK k WITH (format = 'json', outputMode = 'sideways') AS SELECT 1 FROM x",
            Some(Rule::StreamingOutputMode),
        ),
    ];
    let mut rendered = String::new();
    for (script, rule) in cases {
        let err = error_of(script);
        assert_eq!(err.rule(), rule, "{script}: {err}");
        rendered.push_str(&format!("{script}\n{}\n\n", err.render_with_source(script)));
    }
    insta::with_settings!({snapshot_path => "../../../snapshots", prepend_module_to_snapshot => false}, {
        insta::assert_snapshot!("sql_ddl_errors", rendered);
    });
}

#[test]
fn or_replace_and_if_not_exists() {
    let mut catalog = Catalog::new();
    catalog
        .execute_script("CREATE SOURCE s (a INT) WITH (format = 'csv')")
        .unwrap();
    catalog
        .execute_script("CREATE SOURCE IF NOT EXISTS s (b INT) WITH (format = 'csv')")
        .unwrap();
    assert_eq!(catalog.source("s").unwrap().schema.field(0).name(), "a");
    catalog
        .execute_script("CREATE OR REPLACE SOURCE s (b INT) WITH (format = 'csv')")
        .unwrap();
    assert_eq!(catalog.source("S").unwrap().schema.field(0).name(), "b");
}

#[test]
fn select_window_parses_with_the_weir_dialect() {
    // GenericDialect reads `SELECT window(` as an empty projection plus a WINDOW clause.
    let statement =
        parse_statement("SELECT window(ts, '10 seconds') FROM s GROUP BY window(ts, '10 seconds')")
            .unwrap();
    assert!(matches!(statement, Statement::Query(_)));
}

/// Sinks are listed (and `weir run` starts them) in the order the script declares them.
#[test]
fn sinks_keep_script_order() {
    let mut catalog = Catalog::new();
    catalog
        .execute_script(
            "CREATE SOURCE s (a BIGINT) WITH (format = 'rate');
             CREATE SINK zeta WITH (format = 'console') AS SELECT a FROM s;
             CREATE SINK alpha WITH (format = 'console') AS SELECT a FROM s;
             CREATE SINK mid WITH (format = 'console') AS SELECT a FROM s;
             DROP SINK alpha;
             CREATE SINK alpha WITH (format = 'console') AS SELECT a FROM s;",
        )
        .unwrap();
    let names: Vec<&str> = catalog.sinks().map(|s| s.name.as_str()).collect();
    assert_eq!(names, ["zeta", "mid", "alpha"]);
}
