//! Query lifecycle events (Spark's `StreamingQueryListener`).
//!
//! Owns the listener trait and its event types. Listeners are called from the query's own
//! thread; a panicking listener is caught and ignored so it cannot kill the query.

use super::progress::StreamingQueryProgress;

/// Sent synchronously from `start()` once the query thread is running.
#[derive(Clone, Debug)]
pub struct QueryStartedEvent {
    /// Stable query id.
    pub id: String,
    /// This run's id.
    pub run_id: String,
    /// The query name, if any.
    pub name: Option<String>,
    /// ISO-8601 UTC start time.
    pub timestamp: String,
}

/// Sent when a trigger found no new data (at most once per idle period).
#[derive(Clone, Debug)]
pub struct QueryIdleEvent {
    /// Stable query id.
    pub id: String,
    /// This run's id.
    pub run_id: String,
    /// ISO-8601 UTC time.
    pub timestamp: String,
}

/// Sent when the query stops, with the failure if it failed.
#[derive(Clone, Debug)]
pub struct QueryTerminatedEvent {
    /// Stable query id.
    pub id: String,
    /// This run's id.
    pub run_id: String,
    /// The failure message, or `None` after a clean stop.
    pub exception: Option<String>,
}

/// Receives lifecycle events of every query of a session. All methods default to no-ops.
pub trait StreamingQueryListener: Send + Sync {
    /// A query started.
    fn on_query_started(&self, _event: &QueryStartedEvent) {}
    /// A trigger finished and produced this progress report.
    fn on_query_progress(&self, _progress: &StreamingQueryProgress) {}
    /// A query is waiting for data.
    fn on_query_idle(&self, _event: &QueryIdleEvent) {}
    /// A query stopped or failed.
    fn on_query_terminated(&self, _event: &QueryTerminatedEvent) {}
}
