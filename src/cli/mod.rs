//! The `weir` command line (clap): `weir run`, `weir sql`, `weir explain`.
//!
//! Owns argument parsing, turning SQL scripts into started queries (one per `CREATE SINK`),
//! the terminal progress line / JSON progress lines, Ctrl-C handling and error rendering with a
//! caret under the offending SQL. It owns no query semantics: everything goes through
//! weir-plan's catalog and weir-engine's session.

use std::collections::BTreeMap;
use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::Duration;

use clap::{Parser, Subcommand, ValueEnum};
use weir::engine::query::listener::StreamingQueryListener;
use weir::engine::source::rate_schema;
use weir::plan::plan::{LogicalPlan, Source};
use weir::plan::sql::{Catalog, ObjectKind, SinkDefinition, StatementResult, parse_sql};
use weir::plan::{OutputMode, check_streaming};
use weir::{Session, StreamingQuery, StreamingQueryProgress, Trigger};

/// weir: streaming SQL over Arrow, compiled to native kernels.
#[derive(Parser, Debug)]
#[command(name = "weir", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Run every CREATE SINK of a script as a streaming query.
    Run {
        /// The SQL script.
        script: PathBuf,
        /// Root for checkpoints of sinks without `checkpointLocation` (one sub-directory per sink).
        #[arg(long)]
        checkpoint_root: Option<PathBuf>,
        #[command(flatten)]
        common: CommonArgs,
    },
    /// Run an ad hoc query and print its result to the console, batch by batch.
    Sql {
        /// The query (SELECT ...). Built-in sources: `rate`, `rate_micro_batch`.
        query: String,
        /// A script of CREATE SOURCE / VIEW statements to run first.
        #[arg(long)]
        script: Option<PathBuf>,
        /// append | update | complete (default: update for aggregations, complete with ORDER BY).
        #[arg(long)]
        output_mode: Option<String>,
        /// default | availableNow | once | an interval such as '1 second'.
        #[arg(long, default_value = "default")]
        trigger: String,
        /// Console output: table (like Spark's) or json (one object per row).
        #[arg(long, value_enum, default_value_t = OutputFormat::Table)]
        format: OutputFormat,
        /// Rows shown per batch in table format.
        #[arg(long, default_value_t = 20)]
        num_rows: usize,
        /// Stop after this many batches (at least 1).
        #[arg(long, value_parser = clap::value_parser!(u64).range(1..))]
        max_batches: Option<u64>,
        #[command(flatten)]
        common: CommonArgs,
    },
    /// Print the logical, incremental and kernel plans of a query or of every query of a script.
    Explain {
        /// A script path or the query text.
        target: String,
        /// Output mode to plan for (default: append, update for ad hoc aggregations).
        #[arg(long)]
        output_mode: Option<String>,
    },
}

#[derive(clap::Args, Debug)]
struct CommonArgs {
    /// Progress on stderr: a live line on a terminal (default), JSON lines, or none.
    #[arg(long, value_enum, default_value_t = ProgressFormat::Line)]
    progress: ProgressFormat,
    /// Do not fsync checkpoint files (faster; a power loss may lose the last batch's files).
    #[arg(long)]
    no_fsync: bool,
}

#[derive(Clone, Copy, Debug, ValueEnum, PartialEq, Eq)]
enum OutputFormat {
    Table,
    Json,
}

#[derive(Clone, Copy, Debug, ValueEnum, PartialEq, Eq)]
enum ProgressFormat {
    Line,
    Json,
    None,
}

/// Runs the command line; returns the process exit code.
pub fn main() -> i32 {
    let cli = match Cli::try_parse() {
        Ok(c) => c,
        Err(e) => {
            let _ = e.print();
            return if e.use_stderr() { 2 } else { 0 };
        }
    };
    let result = match cli.command {
        Command::Run {
            script,
            checkpoint_root,
            common,
        } => run_script(&script, checkpoint_root.as_deref(), &common),
        Command::Sql {
            query,
            script,
            output_mode,
            trigger,
            format,
            num_rows,
            max_batches,
            common,
        } => run_sql(&SqlArgs {
            query,
            script,
            output_mode,
            trigger,
            format,
            num_rows,
            max_batches,
            common,
        }),
        Command::Explain {
            target,
            output_mode,
        } => explain(&target, output_mode.as_deref()),
    };
    match result {
        Ok(()) => 0,
        Err(message) => {
            eprintln!("error: {message}");
            1
        }
    }
}

struct SqlArgs {
    query: String,
    script: Option<PathBuf>,
    output_mode: Option<String>,
    trigger: String,
    format: OutputFormat,
    num_rows: usize,
    max_batches: Option<u64>,
    common: CommonArgs,
}

/// A catalog with the built-in sources `rate` and `rate_micro_batch`.
fn builtin_catalog() -> Result<Catalog, String> {
    let mut catalog = Catalog::new();
    for (name, format, options) in [
        ("rate", "rate", vec![("rowsPerSecond", "1")]),
        (
            "rate_micro_batch",
            "rate-micro-batch",
            vec![("rowsPerBatch", "10"), ("advanceMillisPerBatch", "1000")],
        ),
    ] {
        let schema = rate_schema();
        catalog
            .register_source(Source {
                name: name.into(),
                format: format.into(),
                options: options
                    .into_iter()
                    .map(|(k, v)| (k.to_string(), v.to_string()))
                    .collect(),
                table_schema: schema.clone(),
                schema,
                streaming: true,
                watermark: None,
                pushed_filters: Vec::new(),
                projection: None,
            })
            .map_err(|e| e.to_string())?;
    }
    Ok(catalog)
}

fn read_script(path: &Path) -> Result<String, String> {
    std::fs::read_to_string(path)
        .map_err(|e| format!("cannot read the script {}: {e}", path.display()))
}

/// Renders an error from SQL text with a caret under the offending position.
fn sql_error(e: &weir::plan::Error, sql: &str) -> String {
    e.render_with_source(sql)
}

fn engine_error(e: weir::Error, sql: &str) -> String {
    match e {
        weir::Error::Plan(p) => sql_error(&p, sql),
        other => other.to_string(),
    }
}

fn session(common: &CommonArgs) -> Result<Session, String> {
    Session::with_config(weir::SessionConfig {
        fsync: !common.no_fsync,
        ..Default::default()
    })
    .map_err(|e| e.to_string())
}

/// The mode a user at a terminal expects: update for aggregations, complete when sorted.
fn default_ad_hoc_mode(plan: &LogicalPlan) -> OutputMode {
    weir::plan::analyzer::default_output_mode(plan)
}

fn mode_name(m: OutputMode) -> &'static str {
    match m {
        OutputMode::Append => "append",
        OutputMode::Update => "update",
        OutputMode::Complete => "complete",
    }
}

/// `--max-batches`: stops the query from its own thread when the last allowed batch reports
/// progress, so no further batch starts (a stop requested by the polling main thread would let
/// one or more extra batches run and print).
struct BatchLimit {
    max: u64,
    query: Mutex<Option<StreamingQuery>>,
    query_started: Condvar,
}

impl BatchLimit {
    fn new(max: u64) -> Self {
        BatchLimit {
            max,
            query: Mutex::new(None),
            query_started: Condvar::new(),
        }
    }

    /// Hands over the started query; a limit reached before this waits for it.
    fn set_query(&self, query: StreamingQuery) {
        *self.query.lock().unwrap_or_else(|p| p.into_inner()) = Some(query);
        self.query_started.notify_all();
    }

    /// Called on the query thread after batch number `n` (1-based) finished.
    fn after_batch(&self, n: u64) {
        if n != self.max {
            return;
        }
        let mut query = self.query.lock().unwrap_or_else(|p| p.into_inner());
        while query.is_none() {
            query = self
                .query_started
                .wait(query)
                .unwrap_or_else(|p| p.into_inner());
        }
        if let Some(q) = query.as_ref() {
            // Only flags the loop (we are on the query's own thread): it exits before the next batch.
            q.request_stop();
        }
    }
}

/// Prints progress to stderr and counts batches.
struct ProgressPrinter {
    format: ProgressFormat,
    batches: AtomicU64,
    limit: Option<Arc<BatchLimit>>,
    terminal: bool,
}

impl StreamingQueryListener for ProgressPrinter {
    fn on_query_progress(&self, p: &StreamingQueryProgress) {
        let n = self.batches.fetch_add(1, Ordering::SeqCst) + 1;
        let mut err = std::io::stderr().lock();
        match self.format {
            ProgressFormat::Json => {
                let _ = writeln!(err, "{}", p.json());
            }
            ProgressFormat::Line => {
                let state_rows: u64 = p.state_operators.iter().map(|s| s.num_rows_total).sum();
                // With several queries (one per sink), say which one this line is about.
                let name = p
                    .name
                    .as_deref()
                    .map(|n| format!("{n}: "))
                    .unwrap_or_default();
                let line = format!(
                    "{name}batch {} | in {} rows ({:.0} rows/s) | out {} rows | watermark {} | state {} rows",
                    p.batch_id,
                    p.num_input_rows,
                    p.processed_rows_per_second.unwrap_or(0.0),
                    p.sink.num_output_rows,
                    p.event_time
                        .get("watermark")
                        .map(String::as_str)
                        .unwrap_or("-"),
                    state_rows
                );
                if self.terminal {
                    let _ = write!(err, "\r\x1b[2K{line}");
                } else {
                    let _ = writeln!(err, "{line}");
                }
            }
            ProgressFormat::None => {}
        }
        drop(err);
        if let Some(limit) = &self.limit {
            limit.after_batch(n);
        }
    }
}

fn install_ctrlc(flag: Arc<AtomicBool>) {
    // A second handler install fails harmlessly (only one per process).
    let _ = ctrlc::set_handler(move || flag.store(true, Ordering::SeqCst));
}

/// Waits until every query terminated. When the stop flag is set (Ctrl-C) or one query failed,
/// stops the others cleanly: a failure is reported at once rather than when the rest end, which
/// for queries with a processing-time trigger would be never.
fn wait_for(queries: &[StreamingQuery], stop: &AtomicBool) -> Result<(), String> {
    loop {
        let one_failed = queries.iter().any(|q| q.exception().is_some());
        if stop.load(Ordering::SeqCst) || one_failed {
            for q in queries {
                q.stop().map_err(|e| e.to_string())?;
            }
            break;
        }
        if queries.iter().all(|q| !q.is_active()) {
            break;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let mut failures = Vec::new();
    for q in queries {
        if let Some(e) = q.exception() {
            failures.push(format!("query {}: {e}", q.name().unwrap_or("?")));
        }
    }
    if failures.is_empty() {
        Ok(())
    } else {
        Err(failures.join("\n"))
    }
}

/// The error for a DDL statement given to `weir sql`.
fn not_a_query(verb: &str, kind: ObjectKind, name: &str) -> String {
    format!(
        "weir sql runs one query; {verb} {} `{name}` belongs in a script: pass it with --script, or run the script with weir run",
        kind.name().to_ascii_uppercase()
    )
}

fn run_sql(args: &SqlArgs) -> Result<(), String> {
    let mut catalog = builtin_catalog()?;
    if let Some(path) = &args.script {
        let text = read_script(path)?;
        catalog
            .execute_script(&text)
            .map_err(|e| sql_error(&e, &text))?;
    }
    let statements = parse_sql(&args.query).map_err(|e| sql_error(&e, &args.query))?;
    let [statement] = statements.as_slice() else {
        return Err(format!(
            "weir sql runs exactly one query, got {} statements; put definitions in --script",
            statements.len()
        ));
    };
    let output_mode = args
        .output_mode
        .as_deref()
        .map(|m| m.parse::<OutputMode>().map_err(|e| e.to_string()))
        .transpose()?;
    let plan = match catalog
        .execute(statement)
        .map_err(|e| sql_error(&e, &args.query))?
    {
        StatementResult::Query(plan) => plan,
        StatementResult::Explain { plan, codegen } => {
            let s = session(&args.common)?;
            let mode = output_mode.unwrap_or_else(|| default_ad_hoc_mode(&plan));
            check_streaming(&plan, mode).map_err(|e| sql_error(&e, &args.query))?;
            println!(
                "{}",
                explain_text(&s, &plan, mode, codegen).map_err(|e| engine_error(e, &args.query))?
            );
            return Ok(());
        }
        StatementResult::Listed(names) => {
            println!("{}", names.join("\n"));
            return Ok(());
        }
        StatementResult::Created { kind, name } => return Err(not_a_query("CREATE", kind, &name)),
        StatementResult::Dropped { kind, name } => return Err(not_a_query("DROP", kind, &name)),
    };
    let mode = output_mode.unwrap_or_else(|| default_ad_hoc_mode(&plan));
    let trigger = Trigger::parse(&args.trigger).map_err(|e| e.to_string())?;
    let s = session(&args.common)?;
    let stop = Arc::new(AtomicBool::new(false));
    let limit = args.max_batches.map(|max| Arc::new(BatchLimit::new(max)));
    let printer = Arc::new(ProgressPrinter {
        format: args.common.progress,
        batches: AtomicU64::new(0),
        limit: limit.clone(),
        terminal: std::io::stderr().is_terminal(),
    });
    s.add_listener(printer);
    install_ctrlc(stop.clone());
    let query = s
        .dataframe(plan)
        .write_stream()
        .format("console")
        .output_mode(mode_name(mode))
        .trigger(trigger)
        .option("numRows", args.num_rows)
        .option(
            "outputFormat",
            match args.format {
                OutputFormat::Table => "table",
                OutputFormat::Json => "json",
            },
        )
        .start()
        .map_err(|e| engine_error(e, &args.query))?;
    if let Some(limit) = &limit {
        limit.set_query(query.clone());
    }
    let result = wait_for(std::slice::from_ref(&query), &stop);
    if args.common.progress == ProgressFormat::Line && std::io::stderr().is_terminal() {
        eprintln!();
    }
    result
}

fn run_script(
    path: &Path,
    checkpoint_root: Option<&Path>,
    common: &CommonArgs,
) -> Result<(), String> {
    let text = read_script(path)?;
    let mut catalog = builtin_catalog()?;
    let results = catalog
        .execute_script(&text)
        .map_err(|e| sql_error(&e, &text))?;
    for r in &results {
        match r {
            StatementResult::Listed(names) => println!("{}", names.join("\n")),
            StatementResult::Query(_) => {
                return Err("a bare SELECT in a script has no sink: wrap it in CREATE SINK name WITH (...) AS SELECT ...".into());
            }
            StatementResult::Explain { plan, codegen } => {
                let s = session(common)?;
                let mode = default_ad_hoc_mode(plan);
                check_streaming(plan, mode).map_err(|e| sql_error(&e, &text))?;
                println!(
                    "{}",
                    explain_text(&s, plan, mode, *codegen).map_err(|e| engine_error(e, &text))?
                );
            }
            _ => {}
        }
    }
    let sinks: Vec<_> = catalog.sinks().cloned().collect();
    if sinks.is_empty() {
        return Ok(());
    }
    let s = session(common)?;
    let stop = Arc::new(AtomicBool::new(false));
    s.add_listener(Arc::new(ProgressPrinter {
        format: common.progress,
        batches: AtomicU64::new(0),
        limit: None,
        terminal: std::io::stderr().is_terminal(),
    }));
    install_ctrlc(stop.clone());
    let mut queries = Vec::new();
    for sink in &sinks {
        match start_sink(&s, sink, checkpoint_root, &text) {
            Ok(q) => queries.push(q),
            Err(e) => {
                // Stop the sinks already started cleanly rather than killing them mid-batch.
                for q in &queries {
                    let _ = q.stop();
                }
                return Err(e);
            }
        }
    }
    wait_for(&queries, &stop)
}

/// Starts one `CREATE SINK` of a script: its `format`, `trigger` and `outputMode` options
/// configure the writer, the rest are passed to the sink as they are.
fn start_sink(
    s: &Session,
    sink: &SinkDefinition,
    checkpoint_root: Option<&Path>,
    text: &str,
) -> Result<StreamingQuery, String> {
    let mut options: BTreeMap<String, String> = sink.options.clone();
    let take = |options: &mut BTreeMap<String, String>, key: &str| {
        let k = options
            .keys()
            .find(|k| k.eq_ignore_ascii_case(key))
            .cloned();
        k.and_then(|k| options.remove(&k))
    };
    let format = take(&mut options, "format").unwrap_or_else(|| "console".into());
    let trigger = match take(&mut options, "trigger") {
        Some(t) => Trigger::parse(&t).map_err(|e| format!("sink {}: {e}", sink.name))?,
        None => Trigger::Default,
    };
    take(&mut options, "outputMode");
    if !options
        .keys()
        .any(|k| k.eq_ignore_ascii_case("checkpointLocation"))
        && let Some(root) = checkpoint_root
    {
        options.insert(
            "checkpointLocation".into(),
            root.join(&sink.name).display().to_string(),
        );
    }
    let mut writer = s
        .dataframe(sink.plan.clone())
        .write_stream()
        .format(&format)
        .output_mode(mode_name(sink.output_mode))
        .trigger(trigger)
        .query_name(&sink.name);
    for (k, v) in &options {
        writer = writer.option(k, v);
    }
    writer
        .start()
        .map_err(|e| format!("sink {}: {}", sink.name, engine_error(e, text)))
}

/// The plans of a query, with the kernels' Cranelift IR for `EXPLAIN CODEGEN`.
fn explain_text(
    s: &Session,
    plan: &LogicalPlan,
    mode: OutputMode,
    codegen: bool,
) -> weir::Result<String> {
    if codegen {
        s.explain_codegen(plan, Some(mode))
    } else {
        s.explain(plan, Some(mode))
    }
}

fn explain(target: &str, output_mode: Option<&str>) -> Result<(), String> {
    let s = Session::new().map_err(|e| e.to_string())?;
    let mode = output_mode
        .map(|m| m.parse::<OutputMode>().map_err(|e| e.to_string()))
        .transpose()?;
    let mut catalog = builtin_catalog()?;
    let path = Path::new(target);
    // A target that names a script (exists, or ends in .sql) is read as one; anything else is SQL.
    let names_script = path.is_file()
        || path
            .extension()
            .is_some_and(|e| e.eq_ignore_ascii_case("sql"));
    let text = if names_script {
        read_script(path)?
    } else {
        target.to_string()
    };
    let results = catalog
        .execute_script(&text)
        .map_err(|e| sql_error(&e, &text))?;
    let mut printed = false;
    for r in results {
        let (plan, codegen) = match r {
            StatementResult::Query(plan) => (plan, false),
            StatementResult::Explain { plan, codegen } => (plan, codegen),
            _ => continue,
        };
        {
            let m = mode.unwrap_or_else(|| default_ad_hoc_mode(&plan));
            check_streaming(&plan, m).map_err(|e| sql_error(&e, &text))?;
            println!(
                "{}",
                explain_text(&s, &plan, m, codegen).map_err(|e| engine_error(e, &text))?
            );
            printed = true;
        }
    }
    for sink in catalog.sinks() {
        let m = mode.unwrap_or(sink.output_mode);
        check_streaming(&sink.plan, m).map_err(|e| sql_error(&e, &text))?;
        println!("-- sink {}", sink.name);
        println!(
            "{}",
            s.explain(&sink.plan, Some(m))
                .map_err(|e| engine_error(e, &text))?
        );
        printed = true;
    }
    if !printed {
        return Err("nothing to explain: give a query or a script with queries or sinks".into());
    }
    Ok(())
}
