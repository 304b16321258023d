//! Explain snapshots: for every query shape weir supports, the text `weir explain` prints (the
//! analysed plan, the incremental plan in the given output mode and the kernels it compiles), and
//! for every analyzer error class the rendered error with its caret, exactly as the `weir`
//! command shows them. Everything goes through the public API the command uses: the SQL catalog,
//! `check_streaming` and `Session::explain`.
//!
//! Sources are declared with fixed paths that are never read (explaining opens no file), so the
//! only nondeterministic text is the kernel compile time, which a filter replaces.

use weir::plan::OutputMode;
use weir::plan::plan::LogicalPlan;
use weir::plan::sql::{Catalog, StatementResult};
use weir::{DataFrame, Session};

/// The sources and the view every case can use.
const DEFINITIONS: &str = "
CREATE SOURCE events (id BIGINT, ts TIMESTAMP, word STRING, amount DOUBLE,
                      WATERMARK FOR ts AS ts - INTERVAL '10' SECOND)
  WITH (format = 'csv', path = '/data/events', maxFilesPerTrigger = '1');
CREATE SOURCE bids (auction BIGINT, bidder BIGINT, price DOUBLE, channel STRING, date_time TIMESTAMP)
  WITH (format = 'json', path = '/data/bids');
CREATE SOURCE lines (line STRING) WITH (format = 'text', path = '/data/lines');
CREATE SOURCE readings (sensor STRING, reading DOUBLE, unit STRING, note STRING, at TIMESTAMP)
  WITH (format = 'parquet', path = '/data/readings');
CREATE TABLE sensors (sensor STRING, site STRING) WITH (format = 'csv', path = '/data/sensors');
CREATE VIEW apples AS SELECT id, ts, amount FROM events WHERE word = 'apple';
";

fn catalog() -> Catalog {
    let mut catalog = Catalog::new();
    if let Err(e) = catalog.execute_script(DEFINITIONS) {
        panic!("definitions: {}", e.render_with_source(DEFINITIONS));
    }
    catalog
}

/// The plan of one query, or its rendered error (as `weir` prints it, caret included).
fn plan(catalog: &mut Catalog, sql: &str) -> Result<LogicalPlan, String> {
    let results = catalog
        .execute_script(sql)
        .map_err(|e| e.render_with_source(sql))?;
    match results.as_slice() {
        [StatementResult::Query(plan)] => Ok(plan.clone()),
        other => panic!("expected one query in {sql}, got {other:?}"),
    }
}

/// What `weir explain --output-mode <mode>` prints for a plan, or the error it reports.
fn explain_plan(plan: &LogicalPlan, sql: &str, mode: OutputMode) -> Result<String, String> {
    weir::plan::check_streaming(plan, mode).map_err(|e| e.render_with_source(sql))?;
    let session = Session::new().map_err(|e| e.to_string())?;
    session.explain(plan, Some(mode)).map_err(|e| match e {
        weir::Error::Plan(p) => p.render_with_source(sql),
        other => other.to_string(),
    })
}

fn snapshot(name: &str, text: String) {
    insta::with_settings!({
        snapshot_path => "../snapshots",
        prepend_module_to_snapshot => false,
        filters => vec![(r"compiled in \d+ µs", "compiled in [time] µs")],
    }, {
        insta::assert_snapshot!(name, text);
    });
}

/// A query that must plan: its explain text is snapshotted as `explain_<name>`.
fn explain_ok(name: &str, sql: &str, mode: OutputMode) {
    let mut catalog = catalog();
    let text = plan(&mut catalog, sql)
        .and_then(|p| explain_plan(&p, sql, mode))
        .unwrap_or_else(|e| panic!("{name} should explain:\n{e}"));
    snapshot(
        &format!("explain_{name}"),
        format!("{sql}\noutput mode: {mode}\n\n{text}"),
    );
}

/// A DataFrame query (shapes that have no SQL syntax).
fn explain_df_ok(name: &str, description: &str, df: DataFrame, mode: OutputMode) {
    let text = explain_plan(df.logical_plan(), description, mode)
        .unwrap_or_else(|e| panic!("{name} should explain:\n{e}"));
    snapshot(
        &format!("explain_{name}"),
        format!("{description}\noutput mode: {mode}\n\n{text}"),
    );
}

/// A query that must fail: the rendered error is snapshotted as `explain_error_<name>`.
fn explain_err(name: &str, sql: &str, mode: OutputMode) {
    let mut catalog = catalog();
    let error = match plan(&mut catalog, sql).and_then(|p| explain_plan(&p, sql, mode)) {
        Ok(text) => panic!("{name} should fail, but explained as:\n{text}"),
        Err(e) => e,
    };
    assert!(!error.contains("panicked"), "{error}");
    snapshot(
        &format!("explain_error_{name}"),
        format!("{sql}\noutput mode: {mode}\n\n{error}"),
    );
}

macro_rules! ok {
    ($name:ident, $mode:ident, $sql:expr) => {
        #[test]
        fn $name() {
            explain_ok(stringify!($name), $sql, OutputMode::$mode);
        }
    };
}

macro_rules! err {
    ($name:ident, $mode:ident, $sql:expr) => {
        #[test]
        fn $name() {
            explain_err(stringify!($name), $sql, OutputMode::$mode);
        }
    };
}

// ---- stateless shapes ----
ok!(
    projection,
    Append,
    "SELECT id, word, amount * 2 AS doubled FROM events"
);
ok!(
    filter,
    Append,
    "SELECT id, word FROM events WHERE id > 10 AND (word <> 'x' OR amount IS NULL)"
);
ok!(
    case_coalesce_cast,
    Append,
    "SELECT CASE WHEN id % 2 = 0 THEN 'even' ELSE 'odd' END AS parity,\n       \
     coalesce(word, 'none') AS w, CAST(id AS STRING) AS s, CAST('12' AS INT) + 1 AS thirteen\n\
     FROM events"
);
ok!(
    string_functions,
    Append,
    "SELECT lower(channel) AS lo, upper(channel) AS up, trim(channel) AS t, substring(channel, 2, 3) AS sub,\n       \
     concat(channel, '-', CAST(auction AS STRING)) AS c, concat_ws('/', channel, 'x') AS cw,\n       \
     regexp_extract(channel, '([a-z]+)([0-9]+)', 2) AS re, regexp_replace(channel, '[0-9]', '#') AS rr\n\
     FROM bids"
);
ok!(
    like_and_rlike,
    Append,
    "SELECT auction FROM bids\nWHERE channel LIKE 'app%' AND channel NOT LIKE '%_test' AND channel RLIKE '^[a-z]+[0-9]*$'"
);
ok!(
    date_functions,
    Append,
    "SELECT to_timestamp(channel, 'yyyy-MM-dd HH:mm:ss') AS parsed,\n       \
     date_format(date_time, 'yyyy-MM-dd') AS day, date_trunc('hour', date_time) AS hour_start,\n       \
     hour(date_time) AS h, minute(date_time) AS m\nFROM bids"
);
ok!(
    current_timestamp,
    Append,
    "SELECT auction, current_timestamp() AS seen_at, date_time < current_timestamp() AS past FROM bids"
);
ok!(
    union_all,
    Append,
    "SELECT id AS key, amount AS value FROM events\nUNION ALL\nSELECT auction, price FROM bids WHERE price > 100"
);
ok!(
    subquery_in_from,
    Append,
    "SELECT t.x + 1 AS y FROM (SELECT id * 2 AS x FROM events WHERE id > 0) t WHERE t.x < 100"
);
ok!(
    explode_split,
    Append,
    "SELECT explode(split(line, ' ')) AS word FROM lines"
);
ok!(
    view,
    Append,
    "SELECT id, amount FROM apples WHERE amount > 1.5"
);
ok!(
    parquet_column_pruning,
    Append,
    "SELECT sensor, reading * 1.8 + 32 AS fahrenheit FROM readings WHERE unit = 'C'"
);

// ---- aggregations in each valid output mode ----
ok!(
    aggregation_update_by_key,
    Update,
    "SELECT word, count(*) AS n, sum(amount) AS total, avg(amount) AS mean, min(id) AS lo, max(id) AS hi\n\
     FROM events GROUP BY word"
);
ok!(
    aggregation_complete_by_key,
    Complete,
    "SELECT word, count(*) AS n FROM events GROUP BY word"
);
ok!(
    global_aggregation_complete,
    Complete,
    "SELECT count(*) AS n, sum(price) AS total FROM bids"
);
ok!(
    aggregation_on_event_time_append,
    Append,
    "SELECT ts, count(*) AS n FROM events GROUP BY ts"
);
ok!(
    tumbling_window_append,
    Append,
    "SELECT window(ts, '1 minute') AS w, word, count(*) AS n\nFROM events GROUP BY window(ts, '1 minute'), word"
);
ok!(
    tumbling_window_update,
    Update,
    "SELECT window(ts, '1 minute') AS w, sum(amount) AS total FROM events GROUP BY window(ts, '1 minute')"
);
ok!(
    tumbling_window_complete,
    Complete,
    "SELECT window(ts, '1 minute') AS w, count(*) AS n FROM events GROUP BY window(ts, '1 minute')"
);
ok!(
    tumbling_window_without_watermark_update,
    Update,
    "SELECT window(date_time, '10 seconds') AS w, max(price) AS top FROM bids GROUP BY window(date_time, '10 seconds')"
);
ok!(
    sliding_window_append,
    Append,
    "SELECT window(ts, '1 minute', '20 seconds') AS w, avg(amount) AS mean\n\
     FROM events GROUP BY window(ts, '1 minute', '20 seconds')"
);
ok!(
    window_time,
    Append,
    "SELECT window_time(w) AS wt, n FROM (\n  \
       SELECT window(ts, '1 minute') AS w, count(*) AS n FROM events GROUP BY window(ts, '1 minute')\n) t"
);
ok!(
    having,
    Update,
    "SELECT word, count(*) AS n FROM events GROUP BY word HAVING count(*) > 1 AND max(amount) < 10"
);
ok!(
    order_by_limit_complete,
    Complete,
    "SELECT word, count(*) AS n FROM events GROUP BY word ORDER BY n DESC, word LIMIT 3"
);
ok!(
    word_count_over_explode,
    Update,
    "SELECT word, count(*) AS n FROM (SELECT explode(split(lower(line), ' ')) AS word FROM lines) t\n\
     WHERE word <> '' GROUP BY word"
);
ok!(
    distinct_rows,
    Append,
    "SELECT DISTINCT word, ts FROM events"
);
ok!(
    session_window_append,
    Append,
    "SELECT session_window(ts, '5 minutes') AS s, word, count(*) AS n\nFROM events GROUP BY session_window(ts, '5 minutes'), word"
);

// ---- shapes only the DataFrame API can express ----
fn events_df() -> DataFrame {
    let mut catalog = catalog();
    let plan = plan(&mut catalog, "SELECT * FROM events").unwrap_or_else(|e| panic!("{e}"));
    Session::new().unwrap().dataframe(plan)
}

#[test]
fn drop_duplicates_with_watermark() {
    let df = events_df().drop_duplicates(&["id", "ts"]).unwrap();
    explain_df_ok(
        "drop_duplicates_with_watermark",
        "events.dropDuplicates([\"id\", \"ts\"])",
        df,
        OutputMode::Append,
    );
}

#[test]
fn drop_duplicates_without_event_time() {
    let df = events_df().drop_duplicates(&["word"]).unwrap();
    explain_df_ok(
        "drop_duplicates_without_event_time",
        "events.dropDuplicates([\"word\"])",
        df,
        OutputMode::Append,
    );
}

#[test]
fn drop_duplicates_within_watermark() {
    let df = events_df()
        .drop_duplicates_within_watermark(&["id"])
        .unwrap();
    explain_df_ok(
        "drop_duplicates_within_watermark",
        "events.dropDuplicatesWithinWatermark([\"id\"])",
        df,
        OutputMode::Append,
    );
}

// ---- every analyzer error class ----
err!(parse_error, Append, "SELECT id,\n  word\nFROM events WHERE");
err!(unresolved_column, Append, "SELECT id, wrod FROM events");
err!(
    ambiguous_reference,
    Append,
    "SELECT sensor FROM readings JOIN sensors ON readings.sensor = sensors.sensor"
);
err!(
    unresolved_routine,
    Append,
    "SELECT id, uper(word) FROM events"
);
err!(wrong_num_args, Append, "SELECT substring(word) FROM events");
err!(
    datatype_mismatch,
    Append,
    "SELECT id FROM events WHERE word + ts > 1"
);
err!(
    missing_aggregation,
    Update,
    "SELECT word, id, count(*) FROM events GROUP BY word"
);
err!(
    invalid_aggregate,
    Update,
    "SELECT word FROM events WHERE count(*) > 1 GROUP BY word"
);
err!(
    invalid_literal,
    Append,
    "SELECT window(ts, '5 fortnights') AS w, count(*) FROM events GROUP BY 1"
);
err!(
    incompatible_union,
    Append,
    "SELECT id, word FROM events UNION ALL SELECT auction FROM bids"
);
err!(unknown_relation, Append, "SELECT * FROM evnts");
err!(unsupported_feature, Append, "SELECT 1 + 1");
err!(
    streaming_output_mode,
    Complete,
    "SELECT id, word FROM events WHERE amount > 1"
);
err!(
    streaming_watermark_required,
    Append,
    "SELECT word, count(*) AS n FROM events GROUP BY word"
);
err!(
    streaming_unsupported_operation,
    Append,
    "SELECT id, sum(amount) OVER (PARTITION BY word) FROM events"
);
err!(
    streaming_distinct_aggregate,
    Update,
    "SELECT word, count(DISTINCT id) FROM events GROUP BY word"
);
err!(
    streaming_multiple_stateful_operators,
    Update,
    "SELECT n, count(*) FROM (SELECT word, count(*) AS n FROM events GROUP BY word) t GROUP BY n"
);
err!(
    streaming_sort,
    Append,
    "SELECT id, amount FROM events ORDER BY amount DESC"
);
err!(
    streaming_limit,
    Update,
    "SELECT word, count(*) AS n FROM events GROUP BY word LIMIT 10"
);
err!(
    streaming_join,
    Append,
    "SELECT e.id, b.price FROM events e FULL OUTER JOIN bids b ON e.id = b.auction"
);
err!(
    streaming_union,
    Append,
    "SELECT sensor FROM readings UNION ALL SELECT sensor FROM sensors"
);
err!(
    streaming_requires_streaming_source,
    Append,
    "SELECT sensor, site FROM sensors"
);

// ---- errors of the engine's planner (past analysis) ----
err!(
    window_outside_group_by,
    Append,
    "SELECT id, window(ts, '1 minute') AS w FROM events"
);
err!(
    stream_static_join,
    Append,
    "SELECT r.sensor, s.site, r.reading FROM readings r JOIN sensors s ON r.sensor = s.sensor"
);
