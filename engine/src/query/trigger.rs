//! Triggers: when the micro-batch loop starts the next batch.
//!
//! Owns the trigger kinds, their parsing from the text forms users write (`availableNow`,
//! `once`, `10 seconds`) and the clock abstraction that lets tests drive processing time by
//! hand. It does not run batches.

use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crate::error::{Error, Result};

/// When to run micro-batches (Spark's `Trigger`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Trigger {
    /// Run the next batch as soon as the previous one finishes (Spark's default).
    Default,
    /// Start a batch every interval; a late batch starts at once, missed intervals are not caught up.
    ProcessingTime(Duration),
    /// Process everything available at start (respecting rate limits, in several batches), then stop.
    AvailableNow,
    /// Process everything available at start in one batch, then stop (deprecated in Spark, kept).
    Once,
}

impl Trigger {
    /// Parses the option text: `default`, `availableNow`, `once`, `processingTime:10 seconds`, or
    /// an interval such as `10 seconds`, `500 milliseconds`, `1 minute`, `0`.
    pub fn parse(text: &str) -> Result<Trigger> {
        let t = text.trim();
        let lower = t.to_ascii_lowercase();
        match lower.as_str() {
            "" | "default" => return Ok(Trigger::Default),
            "availablenow" | "available_now" | "available-now" => return Ok(Trigger::AvailableNow),
            "once" => return Ok(Trigger::Once),
            _ => {}
        }
        let interval = lower
            .strip_prefix("processingtime:")
            .or_else(|| lower.strip_prefix("processingtime="))
            .unwrap_or(&lower);
        let d = parse_duration(interval).map_err(|msg| {
            Error::option(
                "trigger",
                format!(
                    "'{text}' is not a trigger: {msg}; use 'availableNow', 'once', or an interval such as '10 seconds'"
                ),
            )
        })?;
        Ok(if d.is_zero() {
            Trigger::Default
        } else {
            Trigger::ProcessingTime(d)
        })
    }
}

/// Parses Spark interval text such as `10 seconds`, `1 minute`, `500 ms`, `2 hours`, `0`.
pub fn parse_duration(text: &str) -> std::result::Result<Duration, String> {
    let t = text.trim().to_ascii_lowercase();
    let t = t
        .strip_prefix("interval")
        .unwrap_or(&t)
        .trim()
        .trim_matches('\'');
    let (num, unit) = match t.find(|c: char| !(c.is_ascii_digit() || c == '.')) {
        Some(i) => (t[..i].trim(), t[i..].trim()),
        None => (t, "ms"),
    };
    let value: f64 = num.parse().map_err(|_| {
        if num.is_empty() {
            "expected a number and a unit, such as '10 seconds'".to_string()
        } else {
            format!("'{num}' is not a number")
        }
    })?;
    let per_unit_ms = match unit.trim_matches('\'') {
        "ms" | "milli" | "millis" | "millisecond" | "milliseconds" => 1.0,
        "s" | "sec" | "secs" | "second" | "seconds" => 1_000.0,
        "m" | "min" | "mins" | "minute" | "minutes" => 60_000.0,
        "h" | "hour" | "hours" => 3_600_000.0,
        "d" | "day" | "days" => 86_400_000.0,
        other => return Err(format!("unknown time unit '{other}'")),
    };
    let ms = value * per_unit_ms;
    if !ms.is_finite() || !(0.0..=1e15).contains(&ms) {
        return Err(format!("interval '{text}' is out of range"));
    }
    Ok(Duration::from_micros((ms * 1000.0) as u64))
}

/// Processing time, as the trigger loop sees it. The system clock in production; a manual
/// clock in tests (Spark's `StreamManualClock`).
pub trait Clock: Send + Sync {
    /// Milliseconds since the Unix epoch.
    fn now_ms(&self) -> i64;
    /// Waits until `deadline_ms` or until `wake` says to stop waiting; returns the time reached.
    fn wait_until(&self, deadline_ms: i64, wake: &Wakeup) -> i64;
}

/// The real clock.
#[derive(Debug, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now_ms(&self) -> i64 {
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_millis() as i64)
            .unwrap_or(0)
    }

    fn wait_until(&self, deadline_ms: i64, wake: &Wakeup) -> i64 {
        loop {
            let now = self.now_ms();
            if now >= deadline_ms || wake.is_set() {
                return now;
            }
            wake.wait_timeout(Duration::from_millis((deadline_ms - now) as u64));
        }
    }
}

/// A clock that only moves when a test advances it.
#[derive(Debug, Default)]
pub struct ManualClock {
    now: Mutex<i64>,
    moved: Condvar,
}

impl ManualClock {
    /// A manual clock starting at `start_ms`.
    pub fn new(start_ms: i64) -> Arc<ManualClock> {
        Arc::new(ManualClock {
            now: Mutex::new(start_ms),
            moved: Condvar::new(),
        })
    }

    /// Moves the clock forward by `ms` and wakes every waiter.
    pub fn advance(&self, ms: i64) {
        let mut now = self.now.lock().unwrap_or_else(|p| p.into_inner());
        *now += ms;
        self.moved.notify_all();
    }
}

impl Clock for ManualClock {
    fn now_ms(&self) -> i64 {
        *self.now.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn wait_until(&self, deadline_ms: i64, wake: &Wakeup) -> i64 {
        let mut now = self.now.lock().unwrap_or_else(|p| p.into_inner());
        while *now < deadline_ms && !wake.is_set() {
            now = self
                .moved
                .wait_timeout(now, Duration::from_millis(10))
                .map(|(g, _)| g)
                .unwrap_or_else(|p| p.into_inner().0);
        }
        *now
    }
}

/// A flag with a condition variable: set to wake the trigger loop early (stop, new data).
#[derive(Debug, Default)]
pub struct Wakeup {
    flag: Mutex<bool>,
    cv: Condvar,
}

impl Wakeup {
    /// Sets the flag and wakes waiters.
    pub fn set(&self) {
        *self.flag.lock().unwrap_or_else(|p| p.into_inner()) = true;
        self.cv.notify_all();
    }

    /// Clears the flag.
    pub fn clear(&self) {
        *self.flag.lock().unwrap_or_else(|p| p.into_inner()) = false;
    }

    /// Whether the flag is set.
    pub fn is_set(&self) -> bool {
        *self.flag.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Waits at most `timeout` for the flag.
    pub fn wait_timeout(&self, timeout: Duration) {
        let guard = self.flag.lock().unwrap_or_else(|p| p.into_inner());
        if *guard {
            return;
        }
        let _ = self.cv.wait_timeout(guard, timeout);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_spark_trigger_forms() {
        assert_eq!(
            Trigger::parse("availableNow").unwrap(),
            Trigger::AvailableNow
        );
        assert_eq!(Trigger::parse("once").unwrap(), Trigger::Once);
        assert_eq!(Trigger::parse("").unwrap(), Trigger::Default);
        assert_eq!(Trigger::parse("0 seconds").unwrap(), Trigger::Default);
        assert_eq!(
            Trigger::parse("10 seconds").unwrap(),
            Trigger::ProcessingTime(Duration::from_secs(10))
        );
        assert_eq!(
            Trigger::parse("processingTime:500 ms").unwrap(),
            Trigger::ProcessingTime(Duration::from_millis(500))
        );
        let err = Trigger::parse("soon").unwrap_err().to_string();
        assert!(err.contains("'soon' is not a trigger"), "{err}");
        assert!(Trigger::parse("-5 seconds").is_err());
        assert!(Trigger::parse("10 fortnights").is_err());
    }

    #[test]
    fn manual_clock_wakes_waiter() {
        let clock = ManualClock::new(0);
        let c2 = clock.clone();
        let t = std::thread::spawn(move || c2.wait_until(100, &Wakeup::default()));
        std::thread::sleep(Duration::from_millis(20));
        clock.advance(100);
        assert_eq!(t.join().unwrap(), 100);
    }
}
