//! The `weir` command end to end: the real binary runs SQL scripts and ad hoc queries over CSV,
//! JSON-lines and Parquet files in temporary directories; the tests check what it writes (only
//! files committed in the sink's `_spark_metadata` log count), what it prints on stdout and
//! stderr, and its exit code. Errors must exit non-zero with a readable message (a caret under
//! the offending SQL) and never a panic or backtrace.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;

use serde_json::{Value, json};
use weir::arrow::array::{Int64Array, RecordBatch, StringArray};
use weir::arrow::datatypes::{DataType, Field, Schema};

/// What one run of the binary produced.
struct Outcome {
    code: i32,
    stdout: String,
    stderr: String,
}

impl Outcome {
    fn describe(&self) -> String {
        format!(
            "exit code {}\n--- stdout ---\n{}\n--- stderr ---\n{}",
            self.code, self.stdout, self.stderr
        )
    }

    /// Exit code 0 and nothing that looks like a crash.
    fn assert_success(&self) -> &Self {
        assert_eq!(self.code, 0, "weir failed:\n{}", self.describe());
        self.assert_no_panic();
        self
    }

    /// A non-zero exit with an `error:` line and no crash.
    fn assert_failure(&self) -> &Self {
        assert_ne!(
            self.code,
            0,
            "weir should have failed:\n{}",
            self.describe()
        );
        assert!(
            self.stderr.starts_with("error: "),
            "stderr should start with 'error: ':\n{}",
            self.describe()
        );
        self.assert_no_panic();
        self
    }

    fn assert_no_panic(&self) {
        for text in [&self.stdout, &self.stderr] {
            assert!(
                !text.contains("panicked") && !text.contains("RUST_BACKTRACE"),
                "weir panicked:\n{}",
                self.describe()
            );
        }
    }

    /// The stderr contains `text`.
    fn assert_stderr_has(&self, text: &str) {
        assert!(
            self.stderr.contains(text),
            "stderr should contain {text:?}:\n{}",
            self.describe()
        );
    }

    /// The stdout contains `text`.
    fn assert_stdout_has(&self, text: &str) {
        assert!(
            self.stdout.contains(text),
            "stdout should contain {text:?}:\n{}",
            self.describe()
        );
    }

    /// The stderr shows `line` of the SQL with a caret under 1-based `column`.
    fn assert_caret(&self, line_number: usize, line: &str, column: usize) {
        let gutter = " ".repeat(line_number.to_string().len());
        let expected = format!(
            "{line_number} | {line}\n{gutter} | {}^",
            " ".repeat(column - 1)
        );
        assert!(
            self.stderr.contains(&expected),
            "expected a caret at line {line_number}, column {column}:\n{expected}\n{}",
            self.describe()
        );
    }
}

impl From<std::process::Output> for Outcome {
    fn from(out: std::process::Output) -> Self {
        Outcome {
            code: out.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        }
    }
}

/// The binary, with backtraces off as a user would have them.
fn weir_command(args: &[&str]) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_weir"));
    command.args(args).env_remove("RUST_BACKTRACE");
    command
}

fn weir(args: &[&str]) -> Outcome {
    weir_command(args)
        .output()
        .expect("the weir binary runs")
        .into()
}

fn path_str(path: &Path) -> &str {
    path.to_str().expect("temporary paths are UTF-8")
}

/// `weir run <script>` with progress off and no fsync (the checkpoint logic is the same).
fn run_script(script: &Path, extra: &[&str]) -> Outcome {
    let mut args = vec!["run", path_str(script), "--progress", "none", "--no-fsync"];
    args.extend_from_slice(extra);
    weir(&args)
}

fn write_script(dir: &Path, name: &str, text: &str) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap();
    path
}

/// The files the sink's `_spark_metadata` log lists as added.
fn committed_files(output: &Path) -> BTreeSet<String> {
    let mut files = BTreeSet::new();
    let Ok(entries) = std::fs::read_dir(output.join("_spark_metadata")) else {
        return files;
    };
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().to_string();
        if name.starts_with('.') || name.ends_with(".tmp") || name.ends_with(".crc") {
            continue;
        }
        let text = std::fs::read_to_string(entry.path()).unwrap();
        for line in text.lines().skip(1) {
            let v: Value = serde_json::from_str(line).unwrap();
            if v["action"] == "add" {
                let path = v["path"].as_str().unwrap();
                files.insert(path.trim_start_matches("file://").to_string());
            }
        }
    }
    files
}

/// The rows of the committed files, in file then line order (each file is one batch).
fn committed_rows(output: &Path) -> Vec<Value> {
    let mut rows = Vec::new();
    for file in committed_files(output) {
        let text = std::fs::read_to_string(&file)
            .unwrap_or_else(|e| panic!("committed file {file} is unreadable: {e}"));
        for line in text.lines().filter(|l| !l.trim().is_empty()) {
            rows.push(serde_json::from_str(line).unwrap());
        }
    }
    rows
}

fn sorted(mut rows: Vec<Value>) -> Vec<Value> {
    rows.sort_by_key(|v| v.to_string());
    rows
}

/// Three CSV files `id,ts,word`; event time in seconds after the epoch.
fn write_csv_inputs(dir: &Path) {
    std::fs::create_dir_all(dir).unwrap();
    let files = [
        "1,1970-01-01 00:00:01,apple\n2,1970-01-01 00:00:03,banana\n3,1970-01-01 00:00:07,apple\n",
        "4,1970-01-01 00:00:12,cherry\n5,1970-01-01 00:00:21,apple\n",
        "6,1970-01-01 00:00:35,apple\n",
    ];
    for (i, text) in files.iter().enumerate() {
        std::fs::write(dir.join(format!("part-{i}.csv")), text).unwrap();
    }
}

fn csv_source(input: &Path, watermark: bool) -> String {
    let watermark = if watermark {
        ", WATERMARK FOR ts AS ts - INTERVAL '5' SECOND"
    } else {
        ""
    };
    format!(
        "CREATE SOURCE events (id BIGINT, ts TIMESTAMP, word STRING{watermark})\n  \
         WITH (format = 'csv', path = '{}', maxFilesPerTrigger = '1');\n",
        input.display()
    )
}

fn file_sink(
    name: &str,
    output: &Path,
    checkpoint: Option<&Path>,
    mode: &str,
    query: &str,
) -> String {
    let checkpoint = checkpoint
        .map(|c| format!("checkpointLocation = '{}', ", c.display()))
        .unwrap_or_default();
    format!(
        "CREATE SINK {name} WITH (format = 'json', path = '{}', {checkpoint}\
         trigger = 'availableNow', outputMode = '{mode}')\n  AS {query};\n",
        output.display()
    )
}

// ---------------------------------------------------------------------------------------------
// weir run
// ---------------------------------------------------------------------------------------------

#[test]
fn run_stateless_csv_query_is_exactly_once_across_runs() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("in");
    let output = dir.path().join("out");
    write_csv_inputs(&input);
    let script = write_script(
        dir.path(),
        "job.sql",
        &(csv_source(&input, false)
            + &file_sink(
                "odd_words",
                &output,
                Some(&dir.path().join("ck")),
                "append",
                "SELECT id, upper(word) AS w FROM events WHERE id % 2 = 1",
            )),
    );

    let first = run_script(&script, &[]);
    first.assert_success();
    assert_eq!(
        first.stdout, "",
        "weir run prints nothing on stdout for file sinks"
    );
    let expected = vec![
        json!({"id": 1, "w": "APPLE"}),
        json!({"id": 3, "w": "APPLE"}),
        json!({"id": 5, "w": "APPLE"}),
    ];
    assert_eq!(sorted(committed_rows(&output)), expected);
    let files_after_first = committed_files(&output);

    // Same checkpoint, no new input: nothing new is written.
    let second = run_script(&script, &[]);
    second.assert_success();
    assert_eq!(committed_files(&output), files_after_first);
    assert_eq!(sorted(committed_rows(&output)), expected);

    // A new input file: only its rows are added.
    std::fs::write(
        input.join("part-9.csv"),
        "7,1970-01-01 00:00:40,date\n8,1970-01-01 00:00:41,elder\n",
    )
    .unwrap();
    run_script(&script, &[]).assert_success();
    let mut with_new = expected.clone();
    with_new.push(json!({"id": 7, "w": "DATE"}));
    assert_eq!(sorted(committed_rows(&output)), sorted(with_new));
}

#[test]
fn run_windowed_aggregation_with_watermark_appends_each_window_once() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("in");
    let output = dir.path().join("out");
    write_csv_inputs(&input);
    // A fourth file with a row for the window [0, 10) after that window was emitted: late, dropped.
    std::fs::write(input.join("part-3.csv"), "7,1970-01-01 00:00:04,late\n").unwrap();
    let script = write_script(
        dir.path(),
        "job.sql",
        &(csv_source(&input, true)
            + &file_sink(
                "counts",
                &output,
                Some(&dir.path().join("ck")),
                "append",
                "SELECT window(ts, '10 seconds') AS w, count(*) AS n, sum(id) AS ids\n  \
                 FROM events GROUP BY window(ts, '10 seconds')",
            )),
    );
    run_script(&script, &[]).assert_success();
    let window = |start: u32, n: i64, ids: i64| {
        json!({
            "w": {
                "start": format!("1970-01-01T00:00:{start:02}.000Z"),
                "end": format!("1970-01-01T00:00:{:02}.000Z", start + 10),
            },
            "n": n,
            "ids": ids,
        })
    };
    // Watermark 5 s behind the max event time: [0,10) closes at 16 s (after the second file),
    // [10,20) and [20,30) at 30 s (after the third). [30,40) stays open.
    let expected = sorted(vec![window(0, 3, 6), window(10, 1, 4), window(20, 1, 5)]);
    assert_eq!(sorted(committed_rows(&output)), expected);

    let files = committed_files(&output);
    run_script(&script, &[]).assert_success();
    assert_eq!(
        committed_files(&output),
        files,
        "a second run must not write anything"
    );
    assert_eq!(sorted(committed_rows(&output)), expected);
}

#[test]
fn run_json_lines_source_with_sliding_windows() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("in");
    let output = dir.path().join("out");
    std::fs::create_dir_all(&input).unwrap();
    std::fs::write(
        input.join("a.json"),
        "{\"user\":\"ann\",\"ts\":\"1970-01-01 00:00:01\",\"amount\":2.5}\n\
         {\"user\":\"bob\",\"ts\":\"1970-01-01 00:00:06\",\"amount\":1.0}\n",
    )
    .unwrap();
    std::fs::write(
        input.join("b.json"),
        "{\"user\":\"ann\",\"ts\":\"1970-01-01 00:01:00\",\"amount\":4.0}\n",
    )
    .unwrap();
    let script = write_script(
        dir.path(),
        "job.sql",
        &format!(
            "CREATE SOURCE payments (user STRING, ts TIMESTAMP, amount DOUBLE,\n  \
               WATERMARK FOR ts AS ts - INTERVAL '1' SECOND)\n  \
               WITH (format = 'json', path = '{}', maxFilesPerTrigger = '1');\n{}",
            input.display(),
            file_sink(
                "totals",
                &output,
                Some(&dir.path().join("ck")),
                "append",
                "SELECT window(ts, '10 seconds', '5 seconds') AS w, sum(amount) AS total\n  \
                 FROM payments GROUP BY window(ts, '10 seconds', '5 seconds')",
            )
        ),
    );
    run_script(&script, &[]).assert_success();
    let window = |start: u32, total: f64| {
        json!({
            "w": {
                "start": format!("1970-01-01T00:00:{start:02}.000Z"),
                "end": format!("1970-01-01T00:00:{:02}.000Z", start + 10),
            },
            "total": total,
        })
    };
    // ts 1 s falls in [-5,5) and [0,10); ts 6 s in [0,10) and [5,15). All close at 59 s.
    let expected = sorted(vec![
        json!({
            "w": {"start": "1969-12-31T23:59:55.000Z", "end": "1970-01-01T00:00:05.000Z"},
            "total": 2.5,
        }),
        window(0, 3.5),
        window(5, 1.0),
    ]);
    assert_eq!(sorted(committed_rows(&output)), expected);
}

#[test]
fn run_parquet_source() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("in");
    let output = dir.path().join("out");
    std::fs::create_dir_all(&input).unwrap();
    let schema = Arc::new(Schema::new(vec![
        Field::new("id", DataType::Int64, false),
        Field::new("name", DataType::Utf8, true),
    ]));
    for (i, (ids, names)) in [
        (vec![1i64, 2, 3], vec![Some("a"), None, Some("c")]),
        (vec![4i64], vec![Some("d")]),
    ]
    .into_iter()
    .enumerate()
    {
        let batch = RecordBatch::try_new(
            schema.clone(),
            vec![
                Arc::new(Int64Array::from(ids)),
                Arc::new(StringArray::from(names)),
            ],
        )
        .unwrap();
        let file = std::fs::File::create(input.join(format!("part-{i}.parquet"))).unwrap();
        let mut writer = parquet::arrow::ArrowWriter::try_new(file, schema.clone(), None).unwrap();
        writer.write(&batch).unwrap();
        writer.close().unwrap();
    }
    let script = write_script(
        dir.path(),
        "job.sql",
        &format!(
            "CREATE SOURCE people (id BIGINT, name STRING) WITH (format = 'parquet', path = '{}');\n{}",
            input.display(),
            file_sink(
                "shout",
                &output,
                Some(&dir.path().join("ck")),
                "append",
                "SELECT id * 10 AS x, coalesce(upper(name), '?') AS n FROM people WHERE id > 1",
            )
        ),
    );
    run_script(&script, &[]).assert_success();
    assert_eq!(
        sorted(committed_rows(&output)),
        vec![
            json!({"x": 20, "n": "?"}),
            json!({"x": 30, "n": "C"}),
            json!({"x": 40, "n": "D"}),
        ]
    );
}

#[test]
fn run_with_checkpoint_root_for_sinks_without_checkpoint_location() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("in");
    let output = dir.path().join("out");
    let root = dir.path().join("checkpoints");
    write_csv_inputs(&input);
    let script = write_script(
        dir.path(),
        "job.sql",
        &(csv_source(&input, false)
            + &file_sink(
                "ids",
                &output,
                None,
                "append",
                "SELECT id FROM events WHERE word = 'apple'",
            )),
    );

    // Without a checkpoint location a file sink cannot start.
    let refused = run_script(&script, &[]);
    refused.assert_failure();
    refused.assert_stderr_has("sink ids");
    refused.assert_stderr_has("checkpointLocation");
    assert!(committed_files(&output).is_empty());

    let root_arg = path_str(&root).to_string();
    run_script(&script, &["--checkpoint-root", &root_arg]).assert_success();
    let expected = vec![
        json!({"id": 1}),
        json!({"id": 3}),
        json!({"id": 5}),
        json!({"id": 6}),
    ];
    assert_eq!(sorted(committed_rows(&output)), expected);
    let checkpoint = root.join("ids");
    assert!(
        checkpoint.join("metadata").is_file(),
        "checkpoint in <root>/<sink name>"
    );
    assert!(checkpoint.join("offsets").join("2").is_file());
    assert!(checkpoint.join("commits").join("2").is_file());

    // The same root again: the checkpoint is found, nothing is written twice.
    run_script(&script, &["--checkpoint-root", &root_arg]).assert_success();
    assert_eq!(sorted(committed_rows(&output)), expected);
}

#[test]
fn run_prints_show_results_and_progress_lines() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("in");
    write_csv_inputs(&input);
    let script = write_script(
        dir.path(),
        "job.sql",
        &(csv_source(&input, false)
            + &file_sink(
                "ids",
                &dir.path().join("out"),
                Some(&dir.path().join("ck")),
                "append",
                "SELECT id FROM events",
            )
            + "SHOW SOURCES;\nSHOW SINKS;\n"),
    );
    let out = weir(&["run", path_str(&script), "--no-fsync"]);
    out.assert_success();
    // The built-in sources are in every catalog.
    assert_eq!(out.stdout, "events\nrate\nrate_micro_batch\nids\n");
    // Not a terminal: one progress line per batch.
    let lines: Vec<&str> = out.stderr.lines().collect();
    assert_eq!(lines.len(), 3, "{}", out.describe());
    for (i, line) in lines.iter().enumerate() {
        assert!(line.starts_with(&format!("ids: batch {i} | in ")), "{line}");
        assert!(
            line.contains("| out ") && line.contains("| state 0 rows"),
            "{line}"
        );
    }
}

// ---------------------------------------------------------------------------------------------
// weir sql
// ---------------------------------------------------------------------------------------------

#[test]
fn sql_prints_spark_shaped_progress_json_and_console_tables() {
    let out = weir(&[
        "sql",
        "SELECT value, value % 2 AS parity FROM rate_micro_batch WHERE value < 25",
        "--max-batches",
        "3",
        "--progress",
        "json",
    ]);
    out.assert_success();

    let progress: Vec<Value> = out
        .stderr
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}")))
        .collect();
    assert_eq!(
        progress.len(),
        3,
        "exactly --max-batches batches:\n{}",
        out.describe()
    );
    for (i, p) in progress.iter().enumerate() {
        for field in [
            "id",
            "runId",
            "name",
            "timestamp",
            "batchId",
            "numInputRows",
            "durationMs",
            "stateOperators",
            "sources",
            "sink",
        ] {
            assert!(p.get(field).is_some(), "progress without {field}: {p}");
        }
        assert_eq!(p["batchId"], json!(i));
        assert_eq!(p["id"], progress[0]["id"]);
        assert_eq!(p["runId"], progress[0]["runId"]);
        assert_eq!(
            p["numInputRows"],
            json!(10),
            "rowsPerBatch of rate_micro_batch"
        );
        assert!(p["durationMs"]["triggerExecution"].is_u64(), "{p}");
        assert!(p["durationMs"]["walCommit"].is_u64(), "{p}");
        let sources = p["sources"].as_array().unwrap();
        assert_eq!(sources.len(), 1);
        assert!(
            sources[0]["description"]
                .as_str()
                .unwrap()
                .starts_with("RatePerMicroBatchStream")
        );
        assert_eq!(sources[0]["endOffset"]["offset"], json!(10 * (i + 1)));
        assert!(
            p["sink"]["description"]
                .as_str()
                .unwrap()
                .starts_with("ConsoleSink")
        );
    }
    let output_rows: Vec<i64> = progress
        .iter()
        .map(|p| p["sink"]["numOutputRows"].as_i64().unwrap())
        .collect();
    assert_eq!(output_rows, [10, 10, 5]);

    // Console tables, Spark style, exactly three batches.
    assert!(
        out.stdout
            .starts_with("-------------------------------------------\nBatch: 0\n")
    );
    assert_eq!(out.stdout.matches("\nBatch: ").count(), 3, "{}", out.stdout);
    assert!(!out.stdout.contains("Batch: 3"));
    assert!(out.stdout.contains("|value|parity|\n"));
    assert!(out.stdout.contains("|   24|     0|\n"));
    assert!(!out.stdout.contains("|   25|"));
}

#[test]
fn sql_json_format_prints_one_object_per_row_with_batch_id() {
    let out = weir(&[
        "sql",
        "SELECT value, concat('v', CAST(value AS STRING)) AS label FROM rate_micro_batch",
        "--max-batches",
        "2",
        "--format",
        "json",
        "--progress",
        "none",
    ]);
    out.assert_success();
    assert_eq!(out.stderr, "");
    let rows: Vec<Value> = out
        .stdout
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let expected: Vec<Value> = (0..20)
        .map(|v| json!({"batchId": v / 10, "value": v, "label": format!("v{v}")}))
        .collect();
    assert_eq!(rows, expected);
}

#[test]
fn sql_json_format_prints_timestamps_and_windows_as_iso_8601() {
    let out = weir(&[
        "sql",
        "SELECT window(timestamp, '2 seconds') AS w, count(*) AS n FROM rate_micro_batch \
         GROUP BY window(timestamp, '2 seconds')",
        "--max-batches",
        "1",
        "--format",
        "json",
        "--progress",
        "none",
    ]);
    out.assert_success();
    // rate_micro_batch (advanceMillisPerBatch = 1000): the 10 rows of batch 0 have event times
    // within the first second after the epoch, so they all fall in the window [0 s, 2 s).
    let rows: Vec<Value> = out
        .stdout
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(
        rows,
        vec![json!({
            "batchId": 0,
            "w": {"start": "1970-01-01T00:00:00.000Z", "end": "1970-01-01T00:00:02.000Z"},
            "n": 10,
        })]
    );
}

/// A CSV source defined in a script; one file per batch.
fn sql_over_csv_script(query: &str, extra: &[&str]) -> Outcome {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("in");
    write_csv_inputs(&input);
    let defs = write_script(dir.path(), "defs.sql", &csv_source(&input, false));
    let mut args = vec![
        "sql",
        "--script",
        path_str(&defs),
        query,
        "--trigger",
        "availableNow",
        "--format",
        "json",
        "--progress",
        "none",
    ];
    args.extend_from_slice(extra);
    weir(&args)
}

fn rows_by_batch(out: &Outcome) -> Vec<Vec<Value>> {
    let mut batches: Vec<Vec<Value>> = Vec::new();
    for line in out.stdout.lines() {
        let mut row: Value = serde_json::from_str(line).unwrap();
        let batch = row["batchId"].as_u64().unwrap() as usize;
        row.as_object_mut().unwrap().remove("batchId");
        if batches.len() <= batch {
            batches.resize(batch + 1, Vec::new());
        }
        batches[batch].push(row);
    }
    batches.into_iter().map(sorted).collect()
}

#[test]
fn sql_aggregation_over_a_script_source_defaults_to_update_mode() {
    let out = sql_over_csv_script("SELECT word, count(*) AS n FROM events GROUP BY word", &[]);
    out.assert_success();
    // Update mode: each batch shows only the groups that changed in it.
    assert_eq!(
        rows_by_batch(&out),
        vec![
            sorted(vec![
                json!({"word": "apple", "n": 2}),
                json!({"word": "banana", "n": 1})
            ]),
            sorted(vec![
                json!({"word": "apple", "n": 3}),
                json!({"word": "cherry", "n": 1})
            ]),
            vec![json!({"word": "apple", "n": 4})],
        ]
    );
}

#[test]
fn sql_aggregation_with_order_by_defaults_to_complete_mode() {
    let out = sql_over_csv_script(
        "SELECT word, count(*) AS n FROM events GROUP BY word ORDER BY n DESC, word LIMIT 2",
        &[],
    );
    out.assert_success();
    let lines: Vec<Value> = out
        .stdout
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    // Complete mode: the whole sorted, limited result table every batch.
    assert_eq!(
        lines,
        vec![
            json!({"batchId": 0, "word": "apple", "n": 2}),
            json!({"batchId": 0, "word": "banana", "n": 1}),
            json!({"batchId": 1, "word": "apple", "n": 3}),
            json!({"batchId": 1, "word": "banana", "n": 1}),
            json!({"batchId": 2, "word": "apple", "n": 4}),
            json!({"batchId": 2, "word": "banana", "n": 1}),
        ]
    );
}

#[test]
fn sql_output_mode_flag_overrides_the_default() {
    let out = sql_over_csv_script(
        "SELECT word, count(*) AS n FROM events GROUP BY word",
        &["--output-mode", "complete"],
    );
    out.assert_success();
    let batches = rows_by_batch(&out);
    assert_eq!(batches.len(), 3);
    assert_eq!(
        batches[2],
        sorted(vec![
            json!({"word": "apple", "n": 4}),
            json!({"word": "banana", "n": 1}),
            json!({"word": "cherry", "n": 1}),
        ])
    );
}

#[test]
fn sql_explain_statements_follow_the_output_mode_flag() {
    let query = "EXPLAIN SELECT value, count(*) AS n FROM rate GROUP BY value";
    let complete = weir(&["sql", query, "--output-mode", "complete"]);
    complete.assert_success();
    complete.assert_stdout_has("== Incremental Plan (output mode Complete) ==");
    let append = weir(&["sql", query, "--output-mode", "append"]);
    append.assert_failure();
    assert!(append.stderr.contains("[STREAMING_WATERMARK_REQUIRED]"));
    append.assert_caret(1, query, 56);
}

#[test]
fn sql_lists_objects_and_refuses_definitions() {
    let show = weir(&["sql", "SHOW SOURCES"]);
    show.assert_success();
    assert_eq!(show.stdout, "rate\nrate_micro_batch\n");

    let create = weir(&["sql", "CREATE VIEW v AS SELECT value FROM rate"]);
    create.assert_failure();
    assert_eq!(
        create.stderr,
        "error: weir sql runs one query; CREATE VIEW `v` belongs in a script: \
         pass it with --script, or run the script with weir run\n"
    );
    let drop = weir(&["sql", "DROP SOURCE rate"]);
    drop.assert_failure();
    drop.assert_stderr_has("DROP SOURCE `rate` belongs in a script");
}

#[test]
fn sql_runs_explain_statements() {
    let out = weir(&[
        "sql",
        "EXPLAIN SELECT value FROM rate_micro_batch WHERE value > 3",
    ]);
    out.assert_success();
    out.assert_stdout_has("== Analyzed Logical Plan ==");
    assert!(
        out.stdout
            .contains("== Incremental Plan (output mode Append) ==")
    );
}

// ---------------------------------------------------------------------------------------------
// Errors
// ---------------------------------------------------------------------------------------------

#[test]
fn sql_syntax_error_shows_a_caret() {
    let query = "SELECT value FROM rate_micro_batch WHERE";
    let out = weir(&["sql", query, "--max-batches", "1"]);
    out.assert_failure();
    out.assert_stderr_has("[PARSE_SYNTAX_ERROR]");
    out.assert_caret(1, query, query.len() + 1);
    assert_eq!(out.code, 1);
    assert_eq!(out.stdout, "");
}

#[test]
fn unknown_column_is_named_with_a_suggestion() {
    let query = "SELECT value, valeu FROM rate_micro_batch";
    let out = weir(&["sql", query, "--max-batches", "1"]);
    out.assert_failure();
    out.assert_stderr_has("[UNRESOLVED_COLUMN]");
    assert!(out.stderr.contains("`valeu`") && out.stderr.contains("`value`"));
    out.assert_caret(1, query, 15);
}

#[test]
fn unknown_function_is_named_with_a_suggestion() {
    let query = "SELECT uper(CAST(value AS STRING)) FROM rate_micro_batch";
    let out = weir(&["sql", query, "--max-batches", "1"]);
    out.assert_failure();
    out.assert_stderr_has("[UNRESOLVED_ROUTINE]");
    assert!(out.stderr.contains("`uper`") && out.stderr.contains("`upper`"));
    out.assert_caret(1, query, 8);
}

#[test]
fn append_aggregation_without_watermark_is_refused_before_running() {
    let query = "SELECT value % 3 AS k, count(*) AS n FROM rate_micro_batch GROUP BY value % 3";
    let out = weir(&[
        "sql",
        query,
        "--output-mode",
        "append",
        "--max-batches",
        "1",
    ]);
    out.assert_failure();
    out.assert_stderr_has("[STREAMING_WATERMARK_REQUIRED]");
    out.assert_caret(1, query, 69);
    assert_eq!(out.stdout, "", "no batch may run");
}

#[test]
fn script_errors_point_at_the_line_of_the_script() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("in");
    write_csv_inputs(&input);
    let query = "  AS SELECT word, count(*) AS n FROM events GROUP BY word;";
    let script = write_script(
        dir.path(),
        "job.sql",
        &format!(
            "{}CREATE SINK counts WITH (format = 'json', path = '{}', checkpointLocation = '{}', outputMode = 'append')\n{query}\n",
            csv_source(&input, false),
            dir.path().join("out").display(),
            dir.path().join("ck").display()
        ),
    );
    let out = run_script(&script, &[]);
    out.assert_failure();
    out.assert_stderr_has("[STREAMING_WATERMARK_REQUIRED]");
    out.assert_caret(4, query, 54);
    assert!(!dir.path().join("ck").exists(), "nothing may start");
}

#[test]
fn a_failing_query_stops_the_script_with_its_error() {
    use std::process::Stdio;
    use std::time::{Duration, Instant};

    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("in");
    std::fs::create_dir_all(&input).unwrap();
    std::fs::write(input.join("a.csv"), "1,x\n2,12\n").unwrap();
    // `good` has the default trigger and would run forever; `bad` fails on its first batch
    // (ANSI cast of 'x' to INT).
    let script = write_script(
        dir.path(),
        "job.sql",
        &format!(
            "CREATE SOURCE s (id BIGINT, v STRING) WITH (format = 'csv', path = '{}');\n\
             CREATE SINK good WITH (format = 'json', path = '{}', checkpointLocation = '{}')\n  \
               AS SELECT id FROM s;\n\
             CREATE SINK bad WITH (format = 'json', path = '{}', checkpointLocation = '{}')\n  \
               AS SELECT CAST(v AS INT) AS n FROM s;\n",
            input.display(),
            dir.path().join("out1").display(),
            dir.path().join("ck1").display(),
            dir.path().join("out2").display(),
            dir.path().join("ck2").display(),
        ),
    );
    let mut child = weir_command(&["run", path_str(&script), "--progress", "none", "--no-fsync"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let started = Instant::now();
    while child.try_wait().unwrap().is_none() {
        if started.elapsed() > Duration::from_secs(10) {
            let _ = child.kill();
            panic!("weir run kept running after a query failed");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let out = Outcome::from(child.wait_with_output().unwrap());
    out.assert_failure();
    out.assert_stderr_has("query bad: ");
    out.assert_stderr_has("'x'");
    assert!(!out.stderr.contains("query good"), "{}", out.describe());
}

#[test]
fn a_sink_that_cannot_start_stops_the_sinks_already_started() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("in");
    let checkpoint = dir.path().join("ck");
    write_csv_inputs(&input);
    // Sinks start in name order: `a_ids` (default trigger, runs until stopped) starts, then
    // `b_broken` is refused.
    let script = write_script(
        dir.path(),
        "job.sql",
        &format!(
            "{}CREATE SINK a_ids WITH (format = 'json', path = '{}', checkpointLocation = '{}')\n  \
               AS SELECT id FROM events;\n\
             CREATE SINK b_broken WITH (format = 'deltalake', path = '{}', checkpointLocation = '{}')\n  \
               AS SELECT id FROM events;\n",
            csv_source(&input, false),
            dir.path().join("out").display(),
            checkpoint.display(),
            dir.path().join("out2").display(),
            dir.path().join("ck2").display(),
        ),
    );
    let out = run_script(&script, &[]);
    out.assert_failure();
    out.assert_stderr_has("sink b_broken: unknown streaming sink format 'deltalake'");
    // A clean stop finishes the batch in flight: every planned batch is committed.
    let batches = |log: &str| -> BTreeSet<String> {
        std::fs::read_dir(checkpoint.join(log))
            .map(|entries| {
                entries
                    .flatten()
                    .map(|e| e.file_name().to_string_lossy().to_string())
                    .filter(|n| n.chars().all(|c| c.is_ascii_digit()))
                    .collect()
            })
            .unwrap_or_default()
    };
    assert_eq!(batches("offsets"), batches("commits"));
}

#[test]
fn missing_source_path_fails_with_the_path() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("no-such-dir");
    let script = write_script(
        dir.path(),
        "job.sql",
        &(csv_source(&missing, false)
            + &file_sink(
                "ids",
                &dir.path().join("out"),
                Some(&dir.path().join("ck")),
                "append",
                "SELECT id FROM events",
            )),
    );
    let out = run_script(&script, &[]);
    out.assert_failure();
    out.assert_stderr_has("sink ids");
    out.assert_stderr_has("PATH_NOT_FOUND");
    out.assert_stderr_has(path_str(&missing));
}

#[test]
fn source_without_path_option_fails() {
    let dir = tempfile::tempdir().unwrap();
    let script = write_script(
        dir.path(),
        "job.sql",
        &format!(
            "CREATE SOURCE events (id BIGINT) WITH (format = 'csv');\n{}",
            file_sink(
                "ids",
                &dir.path().join("out"),
                Some(&dir.path().join("ck")),
                "append",
                "SELECT id FROM events",
            )
        ),
    );
    let out = run_script(&script, &[]);
    out.assert_failure();
    out.assert_stderr_has("'path'");
}

#[test]
fn missing_script_fails_with_its_path() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("missing.sql");
    for out in [
        run_script(&missing, &[]),
        weir(&[
            "sql",
            "--script",
            path_str(&missing),
            "SELECT value FROM rate_micro_batch",
        ]),
        weir(&["explain", path_str(&missing)]),
    ] {
        out.assert_failure();
        out.assert_stderr_has(&format!("cannot read the script {}", missing.display()));
    }
}

#[test]
fn bad_command_lines_exit_with_usage_errors() {
    for args in [
        vec!["sql"],
        vec!["frobnicate"],
        vec!["sql", "SELECT value FROM rate", "--max-batches", "0"],
        vec!["sql", "SELECT value FROM rate", "--format", "xml"],
    ] {
        let out = weir(&args);
        assert_eq!(out.code, 2, "{args:?}: {}", out.describe());
        assert!(
            out.stderr.starts_with("error: "),
            "{args:?}: {}",
            out.describe()
        );
        out.assert_no_panic();
    }
    for args in [
        vec!["sql", "SELECT value FROM rate", "--output-mode", "sideways"],
        vec!["sql", "SELECT value FROM rate", "--trigger", "whenever"],
        vec!["sql", "SELECT value FROM rate; SELECT value FROM rate"],
        vec!["sql", "CREATE VIEW v AS SELECT value FROM rate"],
    ] {
        let out = weir(&args);
        out.assert_failure();
        assert_eq!(out.code, 1, "{args:?}");
    }
    let help = weir(&["--help"]);
    help.assert_success();
    assert!(
        help.stdout.contains("run")
            && help.stdout.contains("sql")
            && help.stdout.contains("explain")
    );
}

// ---------------------------------------------------------------------------------------------
// weir explain
// ---------------------------------------------------------------------------------------------

#[test]
fn explain_a_query_prints_the_plans_in_the_ad_hoc_mode() {
    let out = weir(&[
        "explain",
        "SELECT value % 3 AS k, count(*) AS n FROM rate_micro_batch GROUP BY value % 3",
    ]);
    out.assert_success();
    assert!(
        out.stdout.starts_with("== Analyzed Logical Plan ==\n"),
        "{}",
        out.describe()
    );
    assert!(
        out.stdout
            .contains("== Incremental Plan (output mode Update) ==")
    );
    assert!(out.stdout.contains("StatefulAggregate op=0 mode=Update"));
    assert!(out.stdout.contains("Scan #0 rate_micro_batch"));

    let append = weir(&[
        "explain",
        "SELECT value FROM rate WHERE value > 1",
        "--output-mode",
        "append",
    ]);
    append.assert_success();
    assert!(
        append
            .stdout
            .contains("== Incremental Plan (output mode Append) ==")
    );
}

#[test]
fn explain_refuses_a_query_the_mode_cannot_run() {
    let query = "SELECT value % 3 AS k, count(*) AS n FROM rate_micro_batch GROUP BY value % 3";
    let out = weir(&["explain", query, "--output-mode", "append"]);
    out.assert_failure();
    out.assert_stderr_has("[STREAMING_WATERMARK_REQUIRED]");
    out.assert_caret(1, query, 69);
}

#[test]
fn explain_a_script_prints_every_sink_in_its_mode() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("in");
    write_csv_inputs(&input);
    let script = write_script(
        dir.path(),
        "job.sql",
        &(csv_source(&input, true)
            + &file_sink(
                "ids",
                &dir.path().join("out1"),
                Some(&dir.path().join("ck1")),
                "append",
                "SELECT id FROM events WHERE word <> 'apple'",
            )
            + &file_sink(
                "counts",
                &dir.path().join("out2"),
                Some(&dir.path().join("ck2")),
                "update",
                "SELECT word, count(*) AS n FROM events GROUP BY word",
            )),
    );
    let out = weir(&["explain", path_str(&script)]);
    out.assert_success();
    // One section per sink, each starting with `-- sink <name>`.
    let sections: std::collections::BTreeMap<&str, &str> = out
        .stdout
        .split("-- sink ")
        .filter(|s| !s.is_empty())
        .map(|s| s.split_once('\n').expect("a sink name line"))
        .collect();
    assert_eq!(
        sections.keys().copied().collect::<Vec<_>>(),
        ["counts", "ids"]
    );
    let (counts_text, ids_text) = (sections["counts"], sections["ids"]);
    assert!(
        counts_text.contains("== Incremental Plan (output mode Update) =="),
        "{counts_text}"
    );
    assert!(counts_text.contains("StatefulAggregate"), "{counts_text}");
    assert!(
        ids_text.contains("== Incremental Plan (output mode Append) =="),
        "{ids_text}"
    );
    assert!(ids_text.contains("EventTimeWatermark"), "{ids_text}");
    assert!(!dir.path().join("ck1").exists(), "explain starts nothing");
}

#[test]
fn explain_without_a_query_is_an_error() {
    let dir = tempfile::tempdir().unwrap();
    let script = write_script(
        dir.path(),
        "defs.sql",
        "CREATE SOURCE s (a INT) WITH (format = 'csv', path = '/x');",
    );
    let out = weir(&["explain", path_str(&script)]);
    out.assert_failure();
    out.assert_stderr_has("nothing to explain");
}

// ---------------------------------------------------------------------------------------------
// Ctrl-C
// ---------------------------------------------------------------------------------------------

/// Starts `weir` with `args`, waits for its first progress JSON line on stderr, sends SIGINT
/// (what Ctrl-C sends) and returns the outcome once it exits, which must be within 10 s.
fn interrupt_after_first_batch(args: &[&str]) -> Outcome {
    use std::io::{BufRead, BufReader, Read};
    use std::process::Stdio;
    use std::time::{Duration, Instant};

    let mut child = weir_command(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the weir binary runs");
    let mut stdout = child.stdout.take().unwrap();
    let stdout_reader = std::thread::spawn(move || {
        let mut text = String::new();
        stdout.read_to_string(&mut text).unwrap();
        text
    });
    let mut stderr = BufReader::new(child.stderr.take().unwrap());
    let mut first_line = String::new();
    stderr.read_line(&mut first_line).unwrap();
    assert!(
        first_line.starts_with('{'),
        "expected a progress line first, got: {first_line}"
    );
    let pid = child.id().to_string();
    let kill = Command::new("kill").args(["-INT", &pid]).status().unwrap();
    assert!(kill.success());
    let started = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if started.elapsed() > Duration::from_secs(10) {
            let _ = child.kill();
            panic!("weir did not stop within 10 s of SIGINT");
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let mut rest = String::new();
    stderr.read_to_string(&mut rest).unwrap();
    Outcome {
        code: status.code().unwrap_or(-1),
        stdout: stdout_reader.join().unwrap(),
        stderr: first_line + &rest,
    }
}

#[test]
fn ctrl_c_stops_an_ad_hoc_query_cleanly() {
    let out = interrupt_after_first_batch(&[
        "sql",
        "SELECT value FROM rate_micro_batch",
        "--trigger",
        "200 milliseconds",
        "--progress",
        "json",
    ]);
    out.assert_success();
    out.assert_stdout_has("Batch: 0");
}

#[test]
fn ctrl_c_stops_a_continuous_script_cleanly_and_keeps_its_checkpoint() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("in");
    let output = dir.path().join("out");
    let checkpoint = dir.path().join("ck");
    write_csv_inputs(&input);
    // No trigger option: the default trigger runs until stopped.
    let script = write_script(
        dir.path(),
        "job.sql",
        &format!(
            "{}CREATE SINK ids WITH (format = 'json', path = '{}', checkpointLocation = '{}')\n  \
             AS SELECT id FROM events;\n",
            csv_source(&input, false),
            output.display(),
            checkpoint.display()
        ),
    );
    let out = interrupt_after_first_batch(&[
        "run",
        path_str(&script),
        "--progress",
        "json",
        "--no-fsync",
    ]);
    out.assert_success();
    assert!(
        checkpoint.join("commits").join("0").is_file(),
        "{}",
        out.describe()
    );
    let before = committed_rows(&output).len();
    assert!((1..=6).contains(&before), "{before} rows committed");

    // The same query and checkpoint with availableNow: it resumes where the stop left it, so
    // every row is committed exactly once.
    let resume = write_script(
        dir.path(),
        "resume.sql",
        &(csv_source(&input, false)
            + &file_sink(
                "ids",
                &output,
                Some(&checkpoint),
                "append",
                "SELECT id FROM events",
            )),
    );
    run_script(&resume, &[]).assert_success();
    let ids: Vec<Value> = (1..=6).map(|id| json!({ "id": id })).collect();
    assert_eq!(sorted(committed_rows(&output)), sorted(ids));
}
