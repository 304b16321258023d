//! The `rate` and `rate-micro-batch` sources, with Spark's row values, timestamps, offsets
//! and descriptions (RateStreamMicroBatchStream, RatePerMicroBatchStream).
//!
//! `rate` offsets are whole seconds since the source was created (a bare number); the creation
//! time is stored once in `sources/<i>/0` as `v1\n<ms>`. `rate-micro-batch` offsets are
//! `{"offset":<rows so far>,"timestamp":<event-time counter>}` and need no private files.

use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use arrow::array::{ArrayRef, Int64Array, TimestampMicrosecondArray};
use arrow::datatypes::{DataType, Field, Schema, SchemaRef, TimeUnit};
use arrow::record_batch::RecordBatch;

use crate::checkpoint::{create_checked, parse_log_text, read_checked};
use crate::error::{Error, Result};
use crate::source::options::SourceOptions;
use crate::source::readers::BATCH_ROWS;
use crate::source::{Offset, ReadLimit, Source, SourceContext, project_batches, valid_projection};

/// The rate sources' columns: `timestamp` (Timestamp(µs, UTC)) and `value` (Int64).
pub fn rate_schema() -> SchemaRef {
    Arc::new(Schema::new(vec![
        Field::new(
            "timestamp",
            DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into())),
            false,
        ),
        Field::new("value", DataType::Int64, false),
    ]))
}

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

/// Builds record batches of at most [`BATCH_ROWS`] rows from (timestamp µs, value) pairs.
fn rate_batches(rows: impl Iterator<Item = (i64, i64)>) -> Result<Vec<RecordBatch>> {
    let schema = rate_schema();
    let mut out = Vec::new();
    let (mut ts, mut values) = (Vec::new(), Vec::new());
    let flush =
        |ts: &mut Vec<i64>, values: &mut Vec<i64>, out: &mut Vec<RecordBatch>| -> Result<()> {
            if ts.is_empty() {
                return Ok(());
            }
            let ts_col: ArrayRef =
                Arc::new(TimestampMicrosecondArray::from(std::mem::take(ts)).with_timezone("UTC"));
            let value_col: ArrayRef = Arc::new(Int64Array::from(std::mem::take(values)));
            out.push(RecordBatch::try_new(
                schema.clone(),
                vec![ts_col, value_col],
            )?);
            Ok(())
        };
    for (t, v) in rows {
        ts.push(t);
        values.push(v);
        if ts.len() == BATCH_ROWS {
            flush(&mut ts, &mut values, &mut out)?;
        }
    }
    flush(&mut ts, &mut values, &mut out)?;
    Ok(out)
}

fn num_partitions(opts: &SourceOptions) -> Result<i64> {
    Ok(opts.int("numPartitions", 1)?.unwrap_or(1))
}

/// Spark's `rate` source: `rowsPerSecond` rows per wall-clock second after an optional linear
/// `rampUpTime`; row `i` has value `i`.
#[derive(Debug)]
pub struct RateSource {
    rows_per_second: i64,
    ramp_up_seconds: i64,
    num_partitions: i64,
    creation_time_ms: i64,
    last_time_ms: i64,
    projection: Option<Vec<usize>>,
    /// The availableNow stop point (seconds); later offsets never pass it.
    stop_seconds: Option<i64>,
}

impl RateSource {
    /// Creates the source; reads (or, on first start, writes) its creation time in
    /// `ctx.checkpoint_dir/0`.
    pub fn new(opts: &SourceOptions, ctx: SourceContext) -> Result<RateSource> {
        let rows_per_second = opts.int("rowsPerSecond", 1)?.unwrap_or(1);
        let ramp_up_seconds = opts.duration_secs("rampUpTime")?.unwrap_or(0).max(0);
        let num_partitions = num_partitions(opts)?;
        let path = ctx.checkpoint_dir.join("0");
        let hint = "the rate source's start time is damaged; restore it or use a new checkpoint";
        let creation_time_ms = match read_checked(&path, false, hint)? {
            Some(file) => {
                let lines = parse_log_text(&path, &file.bytes)?;
                lines
                    .first()
                    .and_then(|l| l.trim().parse::<i64>().ok())
                    .ok_or_else(|| {
                        Error::checkpoint(&path, format!("no start time found; {hint}"))
                    })?
            }
            None => {
                let now = now_ms();
                create_checked(&path, format!("v1\n{now}").as_bytes(), None, ctx.fsync)?;
                now
            }
        };
        Ok(RateSource {
            rows_per_second,
            ramp_up_seconds,
            num_partitions,
            creation_time_ms,
            last_time_ms: creation_time_ms,
            projection: None,
            stop_seconds: None,
        })
    }

    /// The number of rows generated in the first `seconds` seconds (Spark's `valueAtSecond`).
    fn value_at_second(&self, seconds: i64) -> i64 {
        let ramp = self.ramp_up_seconds;
        let speed_delta = self.rows_per_second / ramp.saturating_add(1);
        // (0 + speed_delta * s) * (s + 1) / 2, computed so that it does not overflow early;
        // saturating, so absurd option values cannot panic.
        let ramp_value = |s: i64| -> i64 {
            if s % 2 == 1 {
                ((s + 1) / 2).saturating_mul(speed_delta).saturating_mul(s)
            } else {
                (s / 2)
                    .saturating_mul(speed_delta)
                    .saturating_mul(s.saturating_add(1))
            }
        };
        if seconds <= ramp {
            ramp_value(seconds)
        } else {
            ramp_value(ramp).saturating_add((seconds - ramp).saturating_mul(self.rows_per_second))
        }
    }

    fn parse(&self, offset: &Offset) -> Result<i64> {
        offset
            .as_str()
            .trim()
            .parse::<i64>()
            .map_err(|_| Error::Source {
                source_name: self.description(),
                message: format!("'{offset}' is not a rate source offset (a number of seconds)"),
            })
    }

    fn current_seconds(&mut self) -> i64 {
        self.last_time_ms = self.last_time_ms.max(now_ms());
        (self.last_time_ms - self.creation_time_ms) / 1000
    }
}

impl Source for RateSource {
    fn description(&self) -> String {
        // Spark's text, including its missing closing bracket.
        format!(
            "RateStreamV2[rowsPerSecond={}, rampUpTimeSeconds={}, numPartitions={}",
            self.rows_per_second, self.ramp_up_seconds, self.num_partitions
        )
    }

    fn schema(&self) -> SchemaRef {
        rate_schema()
    }

    fn default_read_limit(&self) -> ReadLimit {
        ReadLimit::All
    }

    fn latest_offset(
        &mut self,
        start: Option<&Offset>,
        _limit: ReadLimit,
    ) -> Result<Option<Offset>> {
        let start_seconds = start.map(|o| self.parse(o)).transpose()?.unwrap_or(0);
        let mut seconds = self.current_seconds();
        if let Some(stop) = self.stop_seconds {
            seconds = seconds.min(stop);
        }
        if seconds <= start_seconds {
            return Ok(start.cloned());
        }
        Ok(Some(Offset(seconds.to_string())))
    }

    /// The seconds elapsed so far; `latest_offset` never goes past this point afterwards.
    fn available_now_offset(&mut self) -> Result<Option<Offset>> {
        let seconds = self.current_seconds();
        self.stop_seconds = Some(seconds);
        Ok((seconds > 0).then(|| Offset(seconds.to_string())))
    }

    fn read(&mut self, start: Option<&Offset>, end: &Offset) -> Result<Vec<RecordBatch>> {
        let start_seconds = start.map(|o| self.parse(o)).transpose()?.unwrap_or(0);
        let end_seconds = self.parse(end)?;
        if end_seconds <= start_seconds {
            return Ok(Vec::new());
        }
        let range_start = self.value_at_second(start_seconds);
        let range_end = self.value_at_second(end_seconds);
        if range_end <= range_start {
            return Ok(Vec::new());
        }
        let local_start_ms = self
            .creation_time_ms
            .saturating_add(start_seconds.saturating_mul(1000));
        let ms_per_value =
            (end_seconds - start_seconds) as f64 * 1000.0 / (range_end - range_start) as f64;
        let n = self.num_partitions;
        let rows = (0..n).flat_map(move |p| {
            (range_start.saturating_add(p)..range_end)
                .step_by(n as usize)
                .map(move |v| {
                    let ms = (local_start_ms as f64 + (v - range_start) as f64 * ms_per_value + 0.5)
                        .floor() as i64;
                    (ms * 1000, v)
                })
        });
        project_batches(rate_batches(rows)?, self.projection.as_deref())
    }

    fn commit(&mut self, _end: &Offset) -> Result<()> {
        Ok(())
    }

    fn push_projection(&mut self, columns: &[usize]) {
        self.projection = valid_projection(&rate_schema(), columns);
    }
}

/// Spark's `rate-micro-batch` source: exactly `rowsPerBatch` rows per batch whatever the wall
/// clock does; every row of a batch carries the batch's start timestamp, which advances by
/// `advanceMillisPerMicroBatch` per batch from `startTimestamp`.
#[derive(Debug)]
pub struct RateMicroBatchSource {
    rows_per_batch: i64,
    num_partitions: i64,
    start_timestamp: i64,
    advance_ms: i64,
    /// The newest offset this source has handed out or been told about.
    last_known: Option<(i64, i64)>,
    available_now: Option<Offset>,
    projection: Option<Vec<usize>>,
}

impl RateMicroBatchSource {
    /// Creates the source from `rowsPerBatch` (required), `numPartitions`, `startTimestamp` and
    /// `advanceMillisPerMicroBatch` (also accepted as `advanceMillisPerBatch`).
    pub fn new(opts: &SourceOptions) -> Result<RateMicroBatchSource> {
        let rows_per_batch = opts.int("rowsPerBatch", 1)?.ok_or_else(|| {
            Error::option(
                "rowsPerBatch",
                "rate-micro-batch needs a positive 'rowsPerBatch'",
            )
        })?;
        let advance_ms = match opts.int("advanceMillisPerMicroBatch", 1)? {
            Some(v) => v,
            None => opts.int("advanceMillisPerBatch", 1)?.unwrap_or(1000),
        };
        Ok(RateMicroBatchSource {
            rows_per_batch,
            num_partitions: num_partitions(opts)?,
            start_timestamp: opts.int("startTimestamp", 0)?.unwrap_or(0),
            advance_ms,
            last_known: None,
            available_now: None,
            projection: None,
        })
    }

    fn parse(&self, offset: &Offset) -> Result<(i64, i64)> {
        let bad = || Error::Source {
            source_name: self.description(),
            message: format!(
                "'{offset}' is not a rate-micro-batch offset (expected {{\"offset\":N,\"timestamp\":T}})"
            ),
        };
        let v: serde_json::Value = serde_json::from_str(offset.as_str()).map_err(|_| bad())?;
        let offset_rows = v
            .get("offset")
            .and_then(serde_json::Value::as_i64)
            .ok_or_else(bad)?;
        let timestamp = v
            .get("timestamp")
            .and_then(serde_json::Value::as_i64)
            .ok_or_else(bad)?;
        Ok((offset_rows, timestamp))
    }

    fn start_of(&self, start: Option<&Offset>) -> Result<(i64, i64)> {
        match start {
            Some(o) => self.parse(o),
            None => Ok((0, self.start_timestamp)),
        }
    }

    fn format(offset: (i64, i64)) -> Offset {
        Offset(format!(
            "{{\"offset\":{},\"timestamp\":{}}}",
            offset.0, offset.1
        ))
    }

    fn next_after(&self, (rows, ts): (i64, i64)) -> (i64, i64) {
        (
            rows.saturating_add(self.rows_per_batch),
            ts.saturating_add(self.advance_ms),
        )
    }

    fn note(&mut self, offset: (i64, i64)) {
        if self.last_known.is_none_or(|k| offset.0 > k.0) {
            self.last_known = Some(offset);
        }
    }
}

impl Source for RateMicroBatchSource {
    fn description(&self) -> String {
        format!(
            "RatePerMicroBatchStream[rowsPerBatch={}, numPartitions={}, startTimestamp={}, advanceMsPerBatch={}]",
            self.rows_per_batch, self.num_partitions, self.start_timestamp, self.advance_ms
        )
    }

    fn schema(&self) -> SchemaRef {
        rate_schema()
    }

    fn default_read_limit(&self) -> ReadLimit {
        ReadLimit::MaxRows(self.rows_per_batch as u64)
    }

    fn latest_offset(
        &mut self,
        start: Option<&Offset>,
        _limit: ReadLimit,
    ) -> Result<Option<Offset>> {
        let start = self.start_of(start)?;
        self.note(start);
        if let Some(frozen) = &self.available_now {
            let frozen_at = self.parse(frozen)?;
            // Frozen before the committed position was known (no `commit` or `read` yet after
            // a restart): re-freeze one batch beyond it.
            if frozen_at.0 >= start.0 {
                return Ok(Some(frozen.clone()));
            }
            let end = Self::format(self.next_after(start));
            self.available_now = Some(end.clone());
            return Ok(Some(end));
        }
        let end = self.next_after(start);
        Ok(Some(Self::format(end)))
    }

    /// One batch beyond the newest offset this source has seen (Spark freezes its latest offset
    /// under availableNow the same way); later `latest_offset` calls return this offset. After a
    /// restart, call `commit` with the recovered committed offset first, so the source knows
    /// where the query stands.
    fn available_now_offset(&mut self) -> Result<Option<Offset>> {
        let base = self.last_known.unwrap_or((0, self.start_timestamp));
        let end = Self::format(self.next_after(base));
        self.available_now = Some(end.clone());
        Ok(Some(end))
    }

    fn read(&mut self, start: Option<&Offset>, end: &Offset) -> Result<Vec<RecordBatch>> {
        let (start_rows, start_ts) = self.start_of(start)?;
        let (end_rows, end_ts) = self.parse(end)?;
        if end_rows < start_rows || end_ts < start_ts {
            return Err(Error::Source {
                source_name: self.description(),
                message: format!("end offset {end} is before the start offset"),
            });
        }
        self.note((end_rows, end_ts));
        let ts_micros = start_ts.saturating_mul(1000);
        let n = self.num_partitions;
        let rows = (0..n).flat_map(move |p| {
            (start_rows.saturating_add(p)..end_rows)
                .step_by(n as usize)
                .map(move |v| (ts_micros, v))
        });
        project_batches(rate_batches(rows)?, self.projection.as_deref())
    }

    fn commit(&mut self, end: &Offset) -> Result<()> {
        let end = self.parse(end)?;
        self.note(end);
        Ok(())
    }

    fn push_projection(&mut self, columns: &[usize]) {
        self.projection = valid_projection(&rate_schema(), columns);
    }
}
