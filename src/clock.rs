//! The injected clock. Domain logic asks `App.clock`, never the system clock, so tests can move
//! time forward instead of sleeping.

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};

use chrono::{DateTime, Utc};

/// System time plus an adjustable offset (zero in production).
#[derive(Clone, Default)]
pub struct Clock {
    offset_seconds: Arc<AtomicI64>,
}

impl Clock {
    /// Now, as Unix seconds.
    pub fn unix(&self) -> i64 {
        Utc::now().timestamp() + self.offset_seconds.load(Ordering::Relaxed)
    }

    /// Now, as a UTC date and time.
    pub fn now(&self) -> DateTime<Utc> {
        DateTime::from_timestamp(self.unix(), 0).unwrap_or_default()
    }

    /// How far this clock runs ahead of the system clock, in seconds.
    pub fn offset(&self) -> i64 {
        self.offset_seconds.load(Ordering::Relaxed)
    }

    /// Moves this clock (and every clone of it) forward by `seconds`.
    pub fn advance(&self, seconds: i64) {
        self.offset_seconds.fetch_add(seconds, Ordering::Relaxed);
    }
}

/// Formats Unix seconds for people: `2026-11-23 14:05 UTC`.
pub fn format_unix(at: i64) -> String {
    DateTime::from_timestamp(at, 0).map(|t| t.format("%Y-%m-%d %H:%M UTC").to_string()).unwrap_or_default()
}
