//! File-to-sink throughput, side by side with Spark and the hand-written Rust ceiling.
//!
//! Runs the queries of `../shared/peers/spark_bench.py` on the same Parquet files (10 M Nexmark
//! bids, one file per trigger, trigger availableNow, noop sink):
//! q1 `0.908 * price` (decimal), q2 `auction % 123 = 0`, and a 10-second windowed count per auction
//! with a 5-second watermark in update and append mode. Prints rows/s, the median trigger time and
//! peak RSS for weir, then the ratios to Spark (measured in the same run when `--spark` is given,
//! otherwise the figures recorded in `peers/RESULTS.md` on this machine) and to the ceiling program
//! (run in the same run when it has been built). Never asserts on time.
//!
//! Data: `peers/.venv/bin/python peers/gen_data.py --rows 10000000` (see peers/README.md).
//! Run: `cargo bench --bench file_queries [-- --spark]` (env: `WEIR_BENCH_ONLY=<query prefix>`,
//! `WEIR_WORKERS=<n>`, `WEIR_STATE_SHARDS=<n>`).

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use weir::plan::sql::{Catalog, StatementResult, parse_sql};
use weir::{Session, SessionConfig, Trigger};

/// Spark 4.3 rows/s (trigger time) from peers/RESULTS.md §1 (Parquet) and §2 (CSV), measured on
/// this machine.
const SPARK_RECORDED: [(&str, &str, f64); 7] = [
    ("q1", "parquet", 2_268_603.0),
    ("q2", "parquet", 3_671_072.0),
    ("win_update", "parquet", 1_494_098.0),
    ("win_append", "parquet", 1_427_348.0),
    ("q1", "csv", 741_954.0),
    ("q2", "csv", 1_173_155.0),
    ("wordcount", "text", 430_663.0),
];

fn peers_dir() -> PathBuf {
    std::env::var_os("WEIR_PEERS")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/peers"))
}

/// Reads every file under `dir` once (into nothing) so the measured runs read from memory.
fn warm_page_cache(dir: &Path) {
    for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        if let Ok(mut file) = std::fs::File::open(entry.path()) {
            let _ = std::io::copy(&mut file, &mut std::io::sink());
        }
    }
}

fn peak_rss_mb() -> f64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find(|l| l.starts_with("VmHWM:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|kb| kb.parse::<f64>().ok())
        .map_or(0.0, |kb| kb / 1024.0)
}

fn reset_peak_rss() {
    let _ = std::fs::write("/proc/self/clear_refs", "5");
}

struct Run {
    rows: u64,
    out_rows: i64,
    wall_s: f64,
    trigger_rows_per_s: f64,
    median_trigger_ms: u64,
    peak_rss_mb: f64,
    /// Mean per data batch: (read ms, execute + sink ms, commit ms).
    phases_ms: (f64, f64, f64),
}

fn run_weir(data: &Path, format: &str, query: &str, mode: &str, work: &Path, fsync: bool) -> Run {
    let reader_options = if format == "csv" {
        ", header = 'false', timestampFormat = 'yyyy-MM-dd HH:mm:ss.SSS'"
    } else {
        ""
    };
    let ddl = if format == "text" {
        format!(
            "CREATE SOURCE lines (value STRING) WITH (format = 'text', path = '{}', maxFilesPerTrigger = '1');",
            data.display()
        )
    } else {
        // As in spark_bench.py, only the windowed queries have a watermark (`withWatermark`);
        // q1 and q2 then need not read `date_time` at all.
        let watermark = if query.contains("window(") {
            ",\n                             WATERMARK FOR date_time AS date_time - INTERVAL '5' SECOND"
        } else {
            ""
        };
        format!(
            "CREATE SOURCE bids (auction BIGINT, bidder BIGINT, price BIGINT, channel STRING, url STRING,
                             date_time TIMESTAMP, extra STRING{watermark})
           WITH (format = '{format}', path = '{}', maxFilesPerTrigger = '1'{reader_options});",
            data.display()
        )
    };
    let mut catalog = Catalog::new();
    catalog.execute_script(&ddl).expect("DDL");
    let statements = parse_sql(query).expect("query parses");
    let StatementResult::Query(plan) = catalog.execute(&statements[0]).expect("query plans") else {
        panic!("not a query")
    };
    let mut config = SessionConfig {
        fsync,
        ..Default::default()
    };
    if let Some(w) = std::env::var("WEIR_WORKERS")
        .ok()
        .and_then(|w| w.parse().ok())
    {
        config.workers = w;
    }
    if let Some(n) = std::env::var("WEIR_STATE_SHARDS")
        .ok()
        .and_then(|n| n.parse().ok())
    {
        config.state_shards = n;
    }
    let session = Session::with_config(config).expect("session");
    let ck = work.join(format!("ck-{}", uuid_like()));
    reset_peak_rss();
    let t0 = Instant::now();
    let q = session
        .dataframe(plan)
        .write_stream()
        .format("noop")
        .output_mode(mode)
        .trigger(Trigger::AvailableNow)
        .option("checkpointLocation", ck.display())
        .start()
        .expect("start");
    q.await_termination().expect("query");
    let wall_s = t0.elapsed().as_secs_f64();
    let progress = q.recent_progress();
    let rows: u64 = progress.iter().map(|p| p.num_input_rows).sum();
    let out_rows: i64 = progress.iter().map(|p| p.sink.num_output_rows).sum();
    let trigger_ms: u64 = progress
        .iter()
        .map(|p| p.duration_ms["triggerExecution"])
        .sum();
    let mut with_data: Vec<u64> = progress
        .iter()
        .filter(|p| p.num_input_rows > 0)
        .map(|p| p.duration_ms["triggerExecution"])
        .collect();
    with_data.sort_unstable();
    let data_batches: Vec<_> = progress.iter().filter(|p| p.num_input_rows > 0).collect();
    let mean = |key: &str| {
        data_batches
            .iter()
            .map(|p| p.duration_ms[key] as f64)
            .sum::<f64>()
            / data_batches.len().max(1) as f64
    };
    let phases_ms = (
        mean("getBatch"),
        mean("addBatch"),
        mean("walCommit") + mean("commitOffsets"),
    );
    let _ = std::fs::remove_dir_all(&ck);
    Run {
        rows,
        out_rows,
        wall_s,
        trigger_rows_per_s: rows as f64 / (trigger_ms.max(1) as f64 / 1000.0),
        median_trigger_ms: with_data.get(with_data.len() / 2).copied().unwrap_or(0),
        peak_rss_mb: peak_rss_mb(),
        phases_ms,
    }
}

fn uuid_like() -> String {
    format!(
        "{}-{}",
        std::process::id(),
        Instant::now().elapsed().as_nanos()
    )
}

/// rows/s of the ceiling program for a query, when it has been built.
fn run_ceiling(peers: &Path, data: &Path, query: &str) -> Option<f64> {
    let bin = peers.join("ceiling/target/release/ceiling");
    if !bin.exists() {
        return None;
    }
    let out = Command::new(bin)
        .args([data.to_str()?, query, "2"])
        .output()
        .ok()?;
    let text = String::from_utf8_lossy(&out.stdout);
    text.split_whitespace()
        .find_map(|w| w.strip_prefix("rows/s="))
        .and_then(|v| v.parse().ok())
}

/// rows/s (trigger time) of Spark for each query, measured now.
fn run_spark(peers: &Path, queries: &[&str]) -> Vec<(String, f64)> {
    let python = peers.join(".venv/bin/python");
    if !python.exists() {
        eprintln!("(Spark venv missing: bash peers/setup.sh spark)");
        return Vec::new();
    }
    let out = Command::new(python)
        .arg(peers.join("spark_bench.py"))
        .args([
            "--rows",
            "10000000",
            "--warmup-rows",
            "100000",
            "--queries",
            &queries.join(","),
        ])
        .output();
    let Ok(out) = out else { return Vec::new() };
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter_map(|v| {
            Some((
                v["query"].as_str()?.to_string(),
                v["rows_per_s_trigger"].as_f64()?,
            ))
        })
        .collect()
}

fn main() {
    let with_spark = std::env::args().any(|a| a == "--spark");
    let peers = peers_dir();
    let data = peers.join("data/bids_10000000/parquet");
    let csv_data = peers.join("data/bids_10000000/csv");
    if !data.is_dir() {
        println!(
            "no benchmark data at {}: run `{}/.venv/bin/python {}/gen_data.py --rows 10000000` first",
            data.display(),
            peers.display(),
            peers.display()
        );
        return;
    }
    let work = std::env::temp_dir().join("weir-bench");
    let _ = std::fs::create_dir_all(&work);
    let only: Option<String> = std::env::var("WEIR_BENCH_ONLY").ok();
    let q1 = "SELECT auction, bidder, 0.908 * price AS price, date_time, extra FROM bids";
    let q2 = "SELECT auction, price FROM bids WHERE auction % 123 = 0";
    let queries = [
        ("q1", q1, "append", "q1"),
        ("q2", q2, "append", "q2"),
        (
            "win_update",
            "SELECT window(date_time, '10 seconds') AS window, auction, count(*) AS count FROM bids \
             GROUP BY window(date_time, '10 seconds'), auction",
            "update",
            "win",
        ),
        (
            "win_append",
            "SELECT window(date_time, '10 seconds') AS window, auction, count(*) AS count FROM bids \
             GROUP BY window(date_time, '10 seconds'), auction",
            "append",
            "win",
        ),
    ];
    let spark_now = if with_spark {
        run_spark(&peers, &queries.iter().map(|q| q.0).collect::<Vec<_>>())
    } else {
        Vec::new()
    };
    println!(
        "| query | rows | out rows | weir wall s | weir rows/s (trigger) | median trigger ms | read / run / log ms per batch | peak RSS MB | weir rows/s, fsync on | Spark rows/s | weir/Spark | ceiling rows/s (2 thr) | weir/ceiling |"
    );
    println!("|---|---|---|---|---|---|---|---|---|---|---|---|---|");
    let mut runs: Vec<(&str, &str, &str, &str, &Path)> = queries
        .iter()
        .map(|(n, q, m, _)| (*n, "parquet", *q, *m, data.as_path()))
        .collect();
    if csv_data.is_dir() {
        runs.push(("q1", "csv", q1, "append", csv_data.as_path()));
        runs.push(("q2", "csv", q2, "append", csv_data.as_path()));
    } else {
        eprintln!("(no CSV data: gen_data.py --csv adds the CSV runs)");
    }
    // Word count in complete mode over 2 M lines (20 M words); rows are lines, as Spark's figure.
    let text_data = peers.join("data/text_2000000");
    let wordcount = "SELECT word, count(*) AS count FROM (SELECT explode(split(value, ' ')) AS word FROM lines) t GROUP BY word";
    if text_data.is_dir() {
        runs.push((
            "wordcount",
            "text",
            wordcount,
            "complete",
            text_data.as_path(),
        ));
    }
    for (name, format, sql, mode, dir) in runs {
        if only.as_deref().is_some_and(|o| !name.starts_with(o)) {
            continue;
        }
        // Every engine here reads files from the page cache (Spark and the ceiling after their
        // warm-up): read the input once first, as a build may have evicted it.
        warm_page_cache(dir);
        // Spark's local file system never fsyncs: the like-for-like run has fsync off; the
        // durable run (weir's default) is printed beside it.
        let r = run_weir(dir, format, sql, mode, &work, false);
        let durable = run_weir(dir, format, sql, mode, &work, true);
        let (spark, spark_src) = match spark_now
            .iter()
            .find(|(q, _)| q == name)
            .filter(|_| format == "parquet")
        {
            Some((_, v)) => (*v, "now"),
            None => (
                SPARK_RECORDED
                    .iter()
                    .find(|(q, f, _)| *q == name && *f == format)
                    .map_or(f64::NAN, |(_, _, v)| *v),
                "RESULTS.md",
            ),
        };
        let ceiling_query = queries.iter().find(|q| q.0 == name).map_or("q1", |q| q.3);
        let ceiling = if format == "parquet" {
            run_ceiling(&peers, dir, ceiling_query)
        } else {
            None
        };
        let name = format!("{name} ({format})");
        println!(
            "| {name} | {} | {} | {:.2} | {:.0} | {} | {:.0} / {:.0} / {:.0} | {:.0} | {:.0} | {:.0} ({spark_src}) | {:.1}× | {} | {} |",
            r.rows,
            r.out_rows,
            r.wall_s,
            r.trigger_rows_per_s,
            r.median_trigger_ms,
            r.phases_ms.0,
            r.phases_ms.1,
            r.phases_ms.2,
            r.peak_rss_mb,
            durable.trigger_rows_per_s,
            spark,
            r.trigger_rows_per_s / spark,
            ceiling.map_or("-".to_string(), |c| format!("{c:.0}")),
            ceiling.map_or("-".to_string(), |c| format!(
                "{:.2}",
                r.trigger_rows_per_s / c
            )),
        );
    }
}
