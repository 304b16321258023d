//! Recovery: the `weir` binary runs a file-source → file-sink query and is killed with SIGKILL at
//! random moments, then restarted on the same checkpoint, again and again; the committed output
//! (the files listed in the sink's `_spark_metadata` log) must equal an uninterrupted run's
//! exactly — nothing lost, nothing twice. One stateless and one windowed-aggregation query.

use std::collections::{BTreeMap, BTreeSet};
use std::io::Write;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const FILES: usize = 400;
const ROWS_PER_FILE: usize = 25;
const KILLS: usize = 20;

fn write_inputs(dir: &Path) {
    std::fs::create_dir_all(dir).unwrap();
    let words = ["apple", "banana", "cherry", "date", "elder"];
    for f in 0..FILES {
        let mut text = String::new();
        for r in 0..ROWS_PER_FILE {
            let id = f * ROWS_PER_FILE + r;
            // Event time advances ~1 s per 50 rows, with some disorder.
            let secs = id / 50 + (id * 7 % 5);
            text.push_str(&format!(
                "{id},1970-01-01 00:{:02}:{:02},{}\n",
                secs / 60,
                secs % 60,
                words[id * 31 % words.len()]
            ));
        }
        let path = dir.join(format!("part-{f:04}.csv"));
        std::fs::write(&path, text).unwrap();
    }
}

fn script(input: &Path, output: &Path, checkpoint: &Path, query: &str) -> String {
    format!(
        "CREATE SOURCE events (id BIGINT, ts TIMESTAMP, word STRING, WATERMARK FOR ts AS ts - INTERVAL '5' SECOND)
           WITH (format = 'csv', path = '{}', maxFilesPerTrigger = '1');
         CREATE SINK out WITH (format = 'json', path = '{}', checkpointLocation = '{}',
                               trigger = 'availableNow', outputMode = 'append')
           AS {query};",
        input.display(),
        output.display(),
        checkpoint.display()
    )
}

/// The committed output: rows of the files the `_spark_metadata` log lists, as canonical JSON.
fn committed_rows(output: &Path) -> Vec<String> {
    let log = output.join("_spark_metadata");
    let mut files = BTreeSet::new();
    if let Ok(entries) = std::fs::read_dir(&log) {
        for e in entries.flatten() {
            let name = e.file_name().to_string_lossy().to_string();
            if name.starts_with('.') || name.ends_with(".tmp") || name.ends_with(".crc") {
                continue;
            }
            let text = std::fs::read_to_string(e.path()).unwrap();
            for line in text.lines().skip(1) {
                let v: serde_json::Value = serde_json::from_str(line).unwrap();
                if v["action"] == "add" {
                    let path = v["path"]
                        .as_str()
                        .unwrap()
                        .trim_start_matches("file://")
                        .to_string();
                    files.insert(path);
                }
            }
        }
    }
    let mut rows = Vec::new();
    for f in files {
        let text = std::fs::read_to_string(&f)
            .unwrap_or_else(|e| panic!("committed file {f} unreadable: {e}"));
        for line in text.lines().filter(|l| !l.trim().is_empty()) {
            let v: serde_json::Value = serde_json::from_str(line).unwrap();
            rows.push(v.to_string());
        }
    }
    rows.sort();
    rows
}

fn weir() -> Command {
    Command::new(env!("CARGO_BIN_EXE_weir"))
}

fn run_to_completion(script_path: &Path) {
    let out = weir()
        .args([
            "run",
            script_path.to_str().unwrap(),
            "--progress",
            "none",
            "--no-fsync",
        ])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "weir run failed: {}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A deterministic pseudo-random sequence (no extra dependency): xorshift.
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
}

fn kill_and_restart_matches_uninterrupted_run(query: &str, seed: u64) {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("in");
    write_inputs(&input);

    // Reference: one uninterrupted run.
    let ref_script = dir.path().join("reference.sql");
    std::fs::write(
        &ref_script,
        script(
            &input,
            &dir.path().join("ref-out"),
            &dir.path().join("ref-ck"),
            query,
        ),
    )
    .unwrap();
    let reference_started = Instant::now();
    run_to_completion(&ref_script);
    let reference_ms = reference_started.elapsed().as_millis() as u64;
    let expected = committed_rows(&dir.path().join("ref-out"));
    assert!(!expected.is_empty(), "the reference run produced no rows");

    // Crashing runs on one checkpoint.
    let out = dir.path().join("out");
    let ck = dir.path().join("ck");
    let crash_script = dir.path().join("crash.sql");
    std::fs::write(&crash_script, script(&input, &out, &ck, query)).unwrap();
    let mut rng = Rng(seed);
    let mut kills = 0;
    let mut finished_early = 0;
    let started = Instant::now();
    while kills < KILLS && started.elapsed() < Duration::from_secs(240) {
        let mut child = weir()
            .args(["run", crash_script.to_str().unwrap(), "--progress", "none"])
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        // Kill moments scale with the uninterrupted run's time (start-up plus FILES batches),
        // so that about KILLS kills fit before the job is done whatever the machine's speed:
        // some runs die while starting, most after committing a few batches.
        let span = (reference_ms / 8).max(60);
        let wait = Duration::from_millis(20 + rng.next() % span);
        std::thread::sleep(wait);
        match child.try_wait().unwrap() {
            Some(status) => {
                let mut err = String::new();
                use std::io::Read;
                child
                    .stderr
                    .take()
                    .unwrap()
                    .read_to_string(&mut err)
                    .unwrap();
                assert!(status.success(), "a run failed on its own: {err}");
                finished_early += 1;
                if finished_early > 5 {
                    break;
                }
            }
            None => {
                // SAFETY: sending SIGKILL to our own child process by its pid.
                let rc = unsafe { libc::kill(child.id() as i32, libc::SIGKILL) };
                assert_eq!(rc, 0, "kill failed");
                let _ = child.wait();
                kills += 1;
            }
        }
    }
    // The kills interrupted real work: some batches committed, and not all of them.
    let committed_batches = std::fs::read_dir(ck.join("commits"))
        .map(|d| {
            d.flatten()
                .filter(|e| !e.file_name().to_string_lossy().contains('.'))
                .count()
        })
        .unwrap_or(0);
    assert!(
        committed_batches > 0 && committed_batches < FILES,
        "{committed_batches} of {FILES} batches were committed before the final run"
    );
    // Finish the job.
    run_to_completion(&crash_script);
    let actual = committed_rows(&out);
    let mut log = std::io::stderr();
    let _ = writeln!(
        log,
        "recovery: {kills} SIGKILLs, {finished_early} early completions"
    );
    assert!(
        kills >= KILLS,
        "only {kills} SIGKILLs happened before the job finished; the test needs {KILLS}"
    );
    assert_eq!(
        actual.len(),
        expected.len(),
        "row counts differ after {kills} kills"
    );
    let a: BTreeMap<&String, usize> = actual.iter().fold(BTreeMap::new(), |mut m, r| {
        *m.entry(r).or_default() += 1;
        m
    });
    let e: BTreeMap<&String, usize> = expected.iter().fold(BTreeMap::new(), |mut m, r| {
        *m.entry(r).or_default() += 1;
        m
    });
    assert!(
        a == e,
        "committed output differs from the uninterrupted run after {kills} kills"
    );
}

#[test]
fn stateless_file_to_file_query_is_exactly_once_under_sigkill() {
    kill_and_restart_matches_uninterrupted_run(
        "SELECT id, upper(word) AS w, id * 2 AS d FROM events WHERE id % 3 <> 0",
        0x9E37_79B9_7F4A_7C15,
    );
}

#[test]
fn windowed_aggregation_is_exactly_once_under_sigkill() {
    kill_and_restart_matches_uninterrupted_run(
        "SELECT window(ts, '10 seconds') AS w, word, count(*) AS n, sum(id) AS s FROM events \
         GROUP BY window(ts, '10 seconds'), word",
        0xD1B5_4A32_D192_ED03,
    );
}
