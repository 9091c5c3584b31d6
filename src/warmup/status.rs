//! A member's warmup as it stands: its day of warmup, today's target and what it sent, received
//! and answered today (its workspace's local day), and where its warmup mail landed over the
//! last [`PLACEMENT_DAYS`] days, as the receiving members recorded it.

use rusqlite::{Connection, OptionalExtension};
use serde::Serialize;

use super::{engine, members};
use crate::campaign::windows;
use crate::error::Result;

/// The span the placement figures cover, in days.
pub const PLACEMENT_DAYS: i64 = 14;

/// Where a member's warmup mail landed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct PlacementCounts {
    pub inbox: i64,
    pub spam: i64,
}

impl PlacementCounts {
    /// The share that landed in the inbox, when any landed at all.
    #[must_use]
    pub fn inbox_rate(&self) -> Option<f64> {
        let total = self.inbox + self.spam;
        #[allow(clippy::cast_precision_loss)]
        (total > 0).then(|| self.inbox as f64 / total as f64)
    }
}

/// The status `inboxgrove warmup status EMAIL --json` prints.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Status {
    pub enrolled: bool,
    /// The day of warmup (1 = the day of enrolment); 0 when not enrolled.
    pub day: i64,
    pub target_today: i64,
    pub sent_today: i64,
    pub received_today: i64,
    pub replied_today: i64,
    pub placement: PlacementCounts,
}

/// The status of a mailbox of `workspace_id` at `now`.
pub fn status(conn: &Connection, workspace_id: i64, mailbox_id: i64, now: i64) -> Result<Status> {
    crate::mailbox::get(conn, workspace_id, mailbox_id)?;
    let settings = members::settings(conn, workspace_id)?;
    let today = windows::local_day(now, settings.time_zone);
    let day = engine::day_number(conn, mailbox_id, &today)?;
    let planned_target: Option<i64> = conn
        .prepare_cached("SELECT target FROM warmup_days WHERE mailbox_id = ?1 AND day = ?2")?
        .query_row((mailbox_id, &today), |row| row.get(0))
        .optional()?;
    let count = |sql: &str| -> rusqlite::Result<i64> {
        conn.prepare_cached(sql)?.query_row((mailbox_id, &today), |row| row.get(0))
    };
    Ok(Status {
        enrolled: day.is_some(),
        day: day.unwrap_or(0),
        target_today: day.map_or(0, |day| planned_target.unwrap_or_else(|| settings.curve.volume(day))),
        sent_today: count(
            "SELECT count(*) FROM warmup_sends WHERE sender_id = ?1 AND day = ?2 AND kind = 'message' AND status = 'sent'",
        )?,
        received_today: count("SELECT count(*) FROM warmup_received WHERE mailbox_id = ?1 AND day = ?2")?,
        replied_today: count(
            "SELECT count(*) FROM warmup_sends WHERE sender_id = ?1 AND day = ?2 AND kind = 'reply' AND status = 'sent'",
        )?,
        placement: placement(conn, mailbox_id, now - PLACEMENT_DAYS * 86_400)?,
    })
}

/// Where the mailbox's warmup mail received since `since` landed.
pub fn placement(conn: &Connection, mailbox_id: i64, since: i64) -> rusqlite::Result<PlacementCounts> {
    conn.prepare_cached(
        "SELECT coalesce(sum(placement = 'inbox'), 0), coalesce(sum(placement = 'spam'), 0) FROM warmup_received \
         WHERE sender_id = ?1 AND received_at > ?2",
    )?
    .query_row((mailbox_id, since), |row| Ok(PlacementCounts { inbox: row.get(0)?, spam: row.get(1)? }))
}
