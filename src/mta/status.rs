//! The status of a queue row (one recipient of one message), stored by its name.
//!
//! `queued` → `in_flight` (claimed by a delivery worker) → `delivered`, `deferred` (back to
//! `in_flight` when due), `bounced` or `expired`; `queued` and `deferred` rows may be
//! `cancelled`. A row for a local mailbox is made `delivered` at once (`queue.local`). A
//! `delivered` row may still become `bounced` when a DSN reports a failure later.

use serde::Serialize;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum QueueStatus {
    Queued,
    InFlight,
    Deferred,
    Delivered,
    Bounced,
    Expired,
    Cancelled,
}

impl QueueStatus {
    /// Every status, in the order pages show them.
    pub const ALL: [QueueStatus; 7] = [
        QueueStatus::Queued,
        QueueStatus::InFlight,
        QueueStatus::Deferred,
        QueueStatus::Delivered,
        QueueStatus::Bounced,
        QueueStatus::Expired,
        QueueStatus::Cancelled,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            QueueStatus::Queued => "queued",
            QueueStatus::InFlight => "in_flight",
            QueueStatus::Deferred => "deferred",
            QueueStatus::Delivered => "delivered",
            QueueStatus::Bounced => "bounced",
            QueueStatus::Expired => "expired",
            QueueStatus::Cancelled => "cancelled",
        }
    }

    /// Still to be delivered: "retry now" and "cancel" apply.
    pub fn is_pending(self) -> bool {
        matches!(self, QueueStatus::Queued | QueueStatus::Deferred)
    }
}

crate::store::names::stored_name!(QueueStatus, "status");

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_round_trip_by_name() {
        for status in QueueStatus::ALL {
            assert_eq!(status.as_str().parse::<QueueStatus>().unwrap(), status);
        }
        assert!("sent".parse::<QueueStatus>().is_err());
        assert_eq!(QueueStatus::ALL.iter().filter(|s| s.is_pending()).count(), 2);
    }
}
