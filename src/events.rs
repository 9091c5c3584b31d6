//! The event log: everything that happens to mail (queued, delivered, deferred, bounced,
//! expired, unsubscribed...), append-only, written in the transaction that caused it.
//! Counters and dashboards are derived from it.

use rusqlite::Connection;
use serde::Serialize;

/// One thing that happened.
#[derive(Debug, Clone, Default)]
pub struct NewEvent<'a> {
    pub workspace_id: i64,
    pub mailbox_id: Option<i64>,
    pub queue_id: Option<i64>,
    /// `queued`, `delivered`, `deferred`, `bounced`, `expired`, `cancelled`, `unsubscribed`, ...
    pub kind: &'a str,
    pub recipient: &'a str,
    /// The reply text or a short explanation.
    pub detail: &'a str,
}

pub fn record(conn: &Connection, event: &NewEvent<'_>, now: i64) -> rusqlite::Result<()> {
    conn.prepare_cached(
        "INSERT INTO events (workspace_id, mailbox_id, queue_id, kind, recipient, detail, at) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
    )?
    .execute((
        event.workspace_id,
        event.mailbox_id,
        event.queue_id,
        event.kind,
        event.recipient,
        event.detail,
        now,
    ))?;
    Ok(())
}

#[derive(Debug, Clone, Serialize)]
pub struct Event {
    pub id: i64,
    pub mailbox_id: Option<i64>,
    pub queue_id: Option<i64>,
    pub kind: String,
    pub recipient: String,
    pub detail: String,
    pub at: i64,
}

/// A workspace's latest events, newest first, optionally of one queue row.
pub fn list(conn: &Connection, workspace: i64, queue_id: Option<i64>, limit: u32) -> rusqlite::Result<Vec<Event>> {
    let mut stmt = conn.prepare_cached(
        "SELECT id, mailbox_id, queue_id, kind, recipient, detail, at FROM events \
         WHERE workspace_id = ?1 AND (?2 IS NULL OR queue_id = ?2) ORDER BY at DESC, id DESC LIMIT ?3",
    )?;
    stmt.query_map((workspace, queue_id, limit), |row| {
        Ok(Event {
            id: row.get(0)?,
            mailbox_id: row.get(1)?,
            queue_id: row.get(2)?,
            kind: row.get(3)?,
            recipient: row.get(4)?,
            detail: row.get(5)?,
            at: row.get(6)?,
        })
    })?
    .collect()
}
