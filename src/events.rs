//! The event log: everything that happens to mail (queued, delivered, deferred, bounced,
//! expired, replies, complaints, unsubscribes...), append-only, written in the transaction that
//! caused it. Counters and dashboards are derived from it.
//!
//! Each event names its kind ([`Kind`], stored by its name), the workspace, the mailbox it
//! concerns (the sender for outgoing mail, the receiver for replies and reports), the queue row
//! when there is one, the peer (the other party's address: the recipient of outgoing mail, the
//! sender of a reply or complaint), the Message-ID of our sent message it is about (when known),
//! and for `bounced` the bounce class. Opens and clicks (`opened`, `clicked`, see
//! [`crate::tracking`]) carry a `machine` flag: set when an image proxy, a link scanner or a tool
//! made the request, so human rates count `machine = 0` only.

use rusqlite::Connection;
use serde::Serialize;

use crate::mta::bounce::BounceClass;

/// What happened.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Kind {
    /// A remote recipient's row was queued.
    Queued,
    /// Delivered: accepted by the recipient's server, or stored in a local mailbox.
    Delivered,
    /// A temporary failure; retried later.
    Deferred,
    /// A permanent failure, during delivery or reported later by a DSN.
    Bounced,
    /// Retries ran out.
    Expired,
    /// Cancelled by a user before delivery.
    Cancelled,
    /// A user asked for the next attempt now.
    Retry,
    /// A person answered.
    Reply,
    /// An automatic reply (out of office, vacation...).
    AutoReply,
    /// A feedback-loop complaint (ARF).
    Complaint,
    /// A reply asking to be removed.
    UnsubscribeRequest,
    /// A List-Unsubscribe request (one-click, link or mailto).
    Unsubscribed,
    /// The open pixel of a tracked message was loaded (detail: the user agent).
    Opened,
    /// A tracked link was followed (detail: the link's URL).
    Clicked,
}

impl Kind {
    pub const ALL: [Kind; 14] = [
        Kind::Queued,
        Kind::Delivered,
        Kind::Deferred,
        Kind::Bounced,
        Kind::Expired,
        Kind::Cancelled,
        Kind::Retry,
        Kind::Reply,
        Kind::AutoReply,
        Kind::Complaint,
        Kind::UnsubscribeRequest,
        Kind::Unsubscribed,
        Kind::Opened,
        Kind::Clicked,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Queued => "queued",
            Kind::Delivered => "delivered",
            Kind::Deferred => "deferred",
            Kind::Bounced => "bounced",
            Kind::Expired => "expired",
            Kind::Cancelled => "cancelled",
            Kind::Retry => "retry",
            Kind::Reply => "reply",
            Kind::AutoReply => "auto_reply",
            Kind::Complaint => "complaint",
            Kind::UnsubscribeRequest => "unsubscribe_request",
            Kind::Unsubscribed => "unsubscribed",
            Kind::Opened => "opened",
            Kind::Clicked => "clicked",
        }
    }
}

crate::store::names::stored_name!(Kind, "kind");

/// One thing that happened, as a writer records it.
#[derive(Debug, Clone)]
pub struct NewEvent<'a> {
    pub workspace_id: i64,
    pub mailbox_id: Option<i64>,
    pub queue_id: Option<i64>,
    pub kind: Kind,
    /// The other party's address.
    pub peer: &'a str,
    /// The Message-ID (without angle brackets) of our message the event is about; "" when unknown.
    pub message_id: &'a str,
    /// The bounce class, for `bounced`.
    pub class: Option<BounceClass>,
    /// The reply text or a short explanation.
    pub detail: &'a str,
}

impl<'a> NewEvent<'a> {
    /// An event of `kind` about `peer`, with nothing else known yet.
    pub fn new(workspace_id: i64, kind: Kind, peer: &'a str) -> NewEvent<'a> {
        NewEvent { workspace_id, mailbox_id: None, queue_id: None, kind, peer, message_id: "", class: None, detail: "" }
    }
}

/// Records an event. An event about a queue row that names no Message-ID gets the row's.
pub fn record(conn: &Connection, event: &NewEvent<'_>, now: i64) -> rusqlite::Result<()> {
    record_flagged(conn, event, false, now)
}

/// [`record`] with the machine flag (opens and clicks made by a machine, see the module doc).
pub fn record_flagged(conn: &Connection, event: &NewEvent<'_>, machine: bool, now: i64) -> rusqlite::Result<()> {
    conn.prepare_cached(
        "INSERT INTO events (workspace_id, mailbox_id, queue_id, kind, recipient, message_id, class, detail, at, \
         machine) VALUES (?1, ?2, ?3, ?4, ?5, CASE WHEN ?6 = '' AND ?3 IS NOT NULL THEN coalesce((SELECT \
         m.message_id FROM queue q JOIN messages m ON m.id = q.message_id WHERE q.id = ?3), '') ELSE ?6 END, ?7, \
         ?8, ?9, ?10)",
    )?
    .execute((
        event.workspace_id,
        event.mailbox_id,
        event.queue_id,
        event.kind,
        event.peer,
        event.message_id,
        event.class,
        event.detail,
        now,
        machine,
    ))?;
    Ok(())
}

/// One recorded event.
#[derive(Debug, Clone, Serialize)]
pub struct Event {
    pub id: i64,
    pub workspace_id: i64,
    pub mailbox_id: Option<i64>,
    /// The mailbox's address, while the mailbox exists.
    pub mailbox: Option<String>,
    pub queue_id: Option<i64>,
    pub kind: Kind,
    pub peer: String,
    pub message_id: String,
    pub class: Option<BounceClass>,
    pub detail: String,
    pub at: i64,
    /// An open or click made by a machine (proxy, scanner, tool).
    pub machine: bool,
}

/// Which events to list.
#[derive(Debug, Clone, Default)]
pub struct Filter {
    /// One workspace's, or every workspace's (the operator's command line).
    pub workspace: Option<i64>,
    pub queue_id: Option<i64>,
    pub kind: Option<Kind>,
    pub mailbox_id: Option<i64>,
    /// Only events at or after this time.
    pub since: Option<i64>,
}

const SELECT: &str = "SELECT e.id, e.workspace_id, e.mailbox_id, e.queue_id, e.kind, e.recipient, \
    e.message_id, e.class, e.detail, e.at, e.machine FROM events e";

fn from_row(row: &rusqlite::Row<'_>) -> rusqlite::Result<Event> {
    Ok(Event {
        id: row.get(0)?,
        workspace_id: row.get(1)?,
        mailbox_id: row.get(2)?,
        mailbox: None,
        queue_id: row.get(3)?,
        kind: row.get(4)?,
        peer: row.get(5)?,
        message_id: row.get(6)?,
        class: row.get(7)?,
        detail: row.get(8)?,
        at: row.get(9)?,
        machine: row.get(10)?,
    })
}

/// The latest `limit` events that match, newest first.
pub fn latest(conn: &Connection, filter: &Filter, limit: u32) -> rusqlite::Result<Vec<Event>> {
    query(conn, filter, "ORDER BY e.at DESC, e.id DESC", limit)
}

/// The first `limit` events that match, oldest first (a log read forward from `since`).
pub fn in_order(conn: &Connection, filter: &Filter, limit: u32) -> rusqlite::Result<Vec<Event>> {
    query(conn, filter, "ORDER BY e.at, e.id", limit)
}

fn query(conn: &Connection, filter: &Filter, order: &str, limit: u32) -> rusqlite::Result<Vec<Event>> {
    let mut stmt = conn.prepare_cached(&format!(
        "{SELECT} WHERE (?1 IS NULL OR e.workspace_id = ?1) AND (?2 IS NULL OR e.queue_id = ?2) \
         AND (?3 IS NULL OR e.kind = ?3) AND (?4 IS NULL OR e.mailbox_id = ?4) AND (?5 IS NULL OR e.at >= ?5) \
         {order} LIMIT ?6"
    ))?;
    let mut found = stmt
        .query_map((filter.workspace, filter.queue_id, filter.kind, filter.mailbox_id, filter.since, limit), from_row)?
        .collect::<rusqlite::Result<Vec<Event>>>()?;
    let addresses = crate::mailbox::addresses_of(conn, found.iter().filter_map(|e| e.mailbox_id))?;
    for event in &mut found {
        event.mailbox = event.mailbox_id.and_then(|id| addresses.get(&id).cloned());
    }
    Ok(found)
}

/// A workspace's latest events, newest first, optionally of one queue row.
pub fn list(conn: &Connection, workspace: i64, queue_id: Option<i64>, limit: u32) -> rusqlite::Result<Vec<Event>> {
    latest(conn, &Filter { workspace: Some(workspace), queue_id, ..Filter::default() }, limit)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_round_trip_by_name() {
        for kind in Kind::ALL {
            assert_eq!(kind.as_str().parse::<Kind>().unwrap(), kind);
            assert_eq!(serde_json::to_string(&kind).unwrap(), format!("\"{kind}\""));
        }
        assert!("open".parse::<Kind>().is_err());
    }

    #[tokio::test]
    async fn events_are_listed_by_filter_in_either_order() {
        let (_dir, store) = crate::store::open_temp();
        let (newest, oldest_bounce) = store
            .write(|tx| {
                crate::mailstore::tests::seed_mailbox(tx)?;
                let queued = NewEvent { mailbox_id: Some(1), ..NewEvent::new(1, Kind::Queued, "lead@x.test") };
                record(tx, &queued, 10)?;
                let bounced = NewEvent {
                    mailbox_id: Some(1),
                    class: Some(BounceClass::Block),
                    message_id: "m1@a.test",
                    ..NewEvent::new(1, Kind::Bounced, "lead@x.test")
                };
                record(tx, &bounced, 20)?;
                record(tx, &NewEvent::new(1, Kind::Reply, "other@y.test"), 30)?;
                let newest = latest(tx, &Filter { workspace: Some(1), ..Filter::default() }, 1)?;
                let filter = Filter { kind: Some(Kind::Bounced), since: Some(15), ..Filter::default() };
                Ok::<_, rusqlite::Error>((newest, in_order(tx, &filter, 10)?))
            })
            .await
            .unwrap();
        assert_eq!((newest.len(), newest[0].kind), (1, Kind::Reply));
        assert_eq!(oldest_bounce.len(), 1);
        let bounce = &oldest_bounce[0];
        assert_eq!(bounce.mailbox.as_deref(), Some("ann@a.test"));
        assert_eq!((bounce.class, bounce.message_id.as_str()), (Some(BounceClass::Block), "m1@a.test"));
    }
}
