//! A trigger-by-trigger test harness for streaming queries (after Spark's `StreamTest`).
//!
//! Owns [`StreamTest`] and its [`Action`]s: add rows to memory streams, run the query until
//! everything available is processed, and check what the sink received — all of it, only what
//! is new since the last check, or the last batch — across stops, restarts on the same
//! checkpoint, manual-clock advances and expected failures. Users of weir can test their own
//! queries with it. It owns no engine logic: it drives the public API.

use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use arrow::array::{Array, ArrayRef, RecordBatch, StructArray};
use arrow::datatypes::{DataType, SchemaRef, TimeUnit};
use arrow::util::display::{ArrayFormatter, FormatOptions};

use crate::dataframe::DataFrame;
use crate::error::Result;
use crate::query::StreamingQuery;
use crate::query::trigger::{ManualClock, Trigger};
use crate::sink::{Sink, SinkOutputMode};
use crate::source::MemoryStream;

/// A check run on the query by [`Action::AssertOnQuery`].
pub type QueryCheck = Box<dyn Fn(&StreamingQuery) -> std::result::Result<(), String>>;

/// One step of a [`StreamTest`].
pub enum Action {
    /// Adds rows to a memory stream.
    AddData(MemoryStream, RecordBatch),
    /// Processes everything available, then checks the whole result: every row emitted so far
    /// (append/update), or the last batch (complete). Rows in any order.
    CheckAnswer(Vec<String>),
    /// Processes everything available, then checks the rows emitted since the previous check.
    CheckNewAnswer(Vec<String>),
    /// Processes everything available, then checks the last batch's rows.
    CheckLastBatch(Vec<String>),
    /// Stops the query (gracefully).
    StopStream,
    /// Starts (or restarts on the same checkpoint) the query with a trigger.
    StartStream(Trigger),
    /// Advances the manual clock by this many milliseconds.
    AdvanceManualClock(i64),
    /// Waits for the query to fail with a message containing this text.
    ExpectFailure(String),
    /// Processes everything available, then runs a check on the query.
    AssertOnQuery(QueryCheck),
}

/// Shorthand for `Action::CheckAnswer` with string rows.
pub fn check_answer(rows: &[&str]) -> Action {
    Action::CheckAnswer(rows.iter().map(|s| s.to_string()).collect())
}

/// Shorthand for `Action::CheckNewAnswer` with string rows.
pub fn check_new_answer(rows: &[&str]) -> Action {
    Action::CheckNewAnswer(rows.iter().map(|s| s.to_string()).collect())
}

/// Shorthand for `Action::CheckLastBatch` with string rows.
pub fn check_last_batch(rows: &[&str]) -> Action {
    Action::CheckLastBatch(rows.iter().map(|s| s.to_string()).collect())
}

#[derive(Default)]
struct Collected {
    /// (batch id, rows as strings), replaced when a batch id is re-delivered.
    batches: Vec<(u64, Vec<String>)>,
    mode: Option<SinkOutputMode>,
}

/// A sink that records every batch as formatted rows.
struct CollectingSink {
    collected: Arc<Mutex<Collected>>,
}

impl Sink for CollectingSink {
    fn description(&self) -> String {
        "StreamTestSink".into()
    }

    fn add_batch(
        &mut self,
        batch_id: u64,
        _schema: &SchemaRef,
        batches: &[RecordBatch],
        mode: SinkOutputMode,
    ) -> Result<()> {
        let mut rows = Vec::new();
        for b in batches {
            rows.extend(format_rows(b)?);
        }
        let mut c = self.collected.lock().unwrap_or_else(|p| p.into_inner());
        c.mode = Some(mode);
        c.batches.retain(|(id, _)| *id != batch_id);
        c.batches.push((batch_id, rows));
        Ok(())
    }
}

/// Formats each row of a batch as `v1, v2, ...` (timestamps as `YYYY-MM-DD HH:MM:SS[.ffffff]`
/// UTC, windows as `[start, end)`, NULL as `null`).
pub fn format_rows(batch: &RecordBatch) -> Result<Vec<String>> {
    let columns: Vec<Vec<String>> = batch
        .columns()
        .iter()
        .map(format_column)
        .collect::<Result<_>>()?;
    Ok((0..batch.num_rows())
        .map(|r| {
            columns
                .iter()
                .map(|c| c[r].as_str())
                .collect::<Vec<_>>()
                .join(", ")
        })
        .collect())
}

fn format_column(col: &ArrayRef) -> Result<Vec<String>> {
    match col.data_type() {
        DataType::Struct(_) => {
            let s = col
                .as_any()
                .downcast_ref::<StructArray>()
                .ok_or_else(|| crate::Error::Internal("struct column".into()))?;
            let children: Vec<Vec<String>> = s
                .columns()
                .iter()
                .map(format_column)
                .collect::<Result<_>>()?;
            let is_window = s.column_names() == ["start", "end"];
            Ok((0..s.len())
                .map(|i| {
                    if s.is_null(i) {
                        "null".to_string()
                    } else if is_window {
                        format!("[{}, {})", children[0][i], children[1][i])
                    } else {
                        format!(
                            "{{{}}}",
                            children
                                .iter()
                                .map(|c| c[i].as_str())
                                .collect::<Vec<_>>()
                                .join(", ")
                        )
                    }
                })
                .collect())
        }
        DataType::Timestamp(TimeUnit::Microsecond, _) => {
            let c = arrow::compute::cast(col, &DataType::Timestamp(TimeUnit::Microsecond, None))?;
            let options = FormatOptions::default()
                .with_null("null")
                .with_timestamp_format(Some("%Y-%m-%d %H:%M:%S%.f"));
            let f = ArrayFormatter::try_new(c.as_ref(), &options)?;
            Ok((0..c.len()).map(|i| f.value(i).to_string()).collect())
        }
        _ => {
            let options = FormatOptions::default().with_null("null");
            let f = ArrayFormatter::try_new(col.as_ref(), &options)?;
            Ok((0..col.len()).map(|i| f.value(i).to_string()).collect())
        }
    }
}

/// Runs a streaming query step by step against expected answers.
pub struct StreamTest {
    df: DataFrame,
    output_mode: String,
    checkpoint: PathBuf,
    _temp: Option<tempfile::TempDir>,
    collected: Arc<Mutex<Collected>>,
    query: Option<StreamingQuery>,
    checked_batches: usize,
    clock: Option<Arc<ManualClock>>,
}

impl StreamTest {
    /// A test of `df` in `output_mode` with a fresh checkpoint in a temporary directory.
    pub fn new(df: DataFrame, output_mode: &str) -> Result<StreamTest> {
        let temp = tempfile::tempdir().map_err(|e| crate::Error::io(std::env::temp_dir(), e))?;
        Ok(StreamTest {
            df,
            output_mode: output_mode.to_string(),
            checkpoint: temp.path().join("checkpoint"),
            _temp: Some(temp),
            collected: Arc::new(Mutex::new(Collected::default())),
            query: None,
            checked_batches: 0,
            clock: None,
        })
    }

    /// Uses a manual clock (the session must have been created with the same clock).
    pub fn with_manual_clock(mut self, clock: Arc<ManualClock>) -> Self {
        self.clock = Some(clock);
        self
    }

    /// The checkpoint directory the query uses.
    pub fn checkpoint_dir(&self) -> &std::path::Path {
        &self.checkpoint
    }

    /// The running query, if any.
    pub fn query(&self) -> Option<&StreamingQuery> {
        self.query.as_ref()
    }

    /// Runs the actions in order; the first failing action stops the test with a message naming
    /// it (its index) and what differed. The query is started with the default trigger first
    /// when the first action is not `StartStream`.
    pub fn run(&mut self, actions: Vec<Action>) -> std::result::Result<(), String> {
        if !matches!(actions.first(), Some(Action::StartStream(_))) && self.query.is_none() {
            self.start(Trigger::Default)
                .map_err(|e| format!("starting the query: {e}"))?;
        }
        for (i, action) in actions.into_iter().enumerate() {
            self.step(action).map_err(|e| format!("action #{i}: {e}"))?;
        }
        if let Some(q) = self.query.take() {
            q.stop().map_err(|e| e.to_string())?;
        }
        Ok(())
    }

    fn start(&mut self, trigger: Trigger) -> Result<()> {
        let sink = Box::new(CollectingSink {
            collected: self.collected.clone(),
        });
        let q = self
            .df
            .write_stream()
            .output_mode(&self.output_mode)
            .trigger(trigger)
            .option("checkpointLocation", self.checkpoint.display())
            .sink(sink)
            .start()?;
        self.query = Some(q);
        Ok(())
    }

    fn drain(&self) -> std::result::Result<(), String> {
        match &self.query {
            Some(q) => q.process_all_available().map_err(|e| e.to_string()),
            None => Err("the query is not running".into()),
        }
    }

    fn step(&mut self, action: Action) -> std::result::Result<(), String> {
        match action {
            Action::AddData(stream, batch) => {
                stream.add_batch(batch);
                Ok(())
            }
            Action::CheckAnswer(expected) => {
                self.drain()?;
                let c = self.collected.lock().unwrap_or_else(|p| p.into_inner());
                let actual: Vec<String> = if c.mode == Some(SinkOutputMode::Complete) {
                    c.batches.last().map(|(_, r)| r.clone()).unwrap_or_default()
                } else {
                    c.batches.iter().flat_map(|(_, r)| r.clone()).collect()
                };
                let n = c.batches.len();
                drop(c);
                self.checked_batches = n;
                compare("CheckAnswer", expected, actual)
            }
            Action::CheckNewAnswer(expected) => {
                self.drain()?;
                let c = self.collected.lock().unwrap_or_else(|p| p.into_inner());
                let actual: Vec<String> = c
                    .batches
                    .iter()
                    .skip(self.checked_batches)
                    .flat_map(|(_, r)| r.clone())
                    .collect();
                let n = c.batches.len();
                drop(c);
                self.checked_batches = n;
                compare("CheckNewAnswer", expected, actual)
            }
            Action::CheckLastBatch(expected) => {
                self.drain()?;
                let c = self.collected.lock().unwrap_or_else(|p| p.into_inner());
                let actual = c.batches.last().map(|(_, r)| r.clone()).unwrap_or_default();
                let n = c.batches.len();
                drop(c);
                self.checked_batches = n;
                compare("CheckLastBatch", expected, actual)
            }
            Action::StopStream => {
                if let Some(q) = self.query.take() {
                    q.stop().map_err(|e| e.to_string())?;
                    if let Some(e) = q.exception() {
                        return Err(format!("the query had failed before StopStream: {e}"));
                    }
                }
                Ok(())
            }
            Action::StartStream(trigger) => {
                if let Some(q) = self.query.take() {
                    q.stop().map_err(|e| e.to_string())?;
                }
                self.start(trigger).map_err(|e| e.to_string())
            }
            Action::AdvanceManualClock(ms) => match &self.clock {
                Some(c) => {
                    c.advance(ms);
                    Ok(())
                }
                None => Err("AdvanceManualClock needs StreamTest::with_manual_clock".into()),
            },
            Action::ExpectFailure(text) => {
                let Some(q) = self.query.take() else {
                    return Err("ExpectFailure: the query is not running".into());
                };
                match q.await_termination_timeout(std::time::Duration::from_secs(30)) {
                    Ok(true) => Err(format!(
                        "ExpectFailure: the query stopped without failing (expected '{text}')"
                    )),
                    Ok(false) => Err(format!(
                        "ExpectFailure: the query did not fail within 30 s (expected '{text}')"
                    )),
                    Err(e) if e.to_string().contains(&text) => Ok(()),
                    Err(e) => Err(format!(
                        "ExpectFailure: expected a failure containing '{text}', got: {e}"
                    )),
                }
            }
            Action::AssertOnQuery(check) => {
                self.drain()?;
                match &self.query {
                    Some(q) => check(q),
                    None => Err("AssertOnQuery: the query is not running".into()),
                }
            }
        }
    }
}

fn compare(
    what: &str,
    mut expected: Vec<String>,
    mut actual: Vec<String>,
) -> std::result::Result<(), String> {
    expected.sort();
    actual.sort();
    if expected == actual {
        Ok(())
    } else {
        Err(format!(
            "{what} mismatch\n  expected ({}):\n    {}\n  actual ({}):\n    {}",
            expected.len(),
            expected.join("\n    "),
            actual.len(),
            actual.join("\n    ")
        ))
    }
}
