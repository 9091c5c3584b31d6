//! Looking at and steering the outbound queue: rows with their message's subject and sender,
//! counts by status, by mailbox and by destination domain, one row with its events, "retry now"
//! and "cancel".
//!
//! Every function takes `workspace: Option<i64>`: `Some(id)` for a workspace's users (another
//! workspace's row answers `NotFound`, Invariant 4), `None` for the operator's command line.
//! Retry and cancel change a row only from `queued` or `deferred`, in one guarded `UPDATE`, so
//! they cannot race a delivery worker that has claimed the row (`in_flight`).

use rusqlite::{Connection, OptionalExtension, Transaction};
use serde::Serialize;

use crate::app::App;
use crate::audit;
use crate::auth::Actor;
use crate::error::{Error, Result};
use crate::events::{self, Event, Kind, NewEvent};
use crate::mta::QueueStatus;
use crate::mta::bounce::BounceClass;
use crate::workspaces::{Access, Role};

/// One recipient of one message, as the queue pages show it.
#[derive(Debug, Clone, Serialize)]
pub struct QueueRow {
    pub id: i64,
    pub workspace_id: i64,
    pub mailbox_id: Option<i64>,
    /// The sending mailbox's address, when the row has a mailbox that still exists.
    pub mailbox: Option<String>,
    pub recipient: String,
    pub domain: String,
    pub status: QueueStatus,
    /// Delivered to a local mailbox (in the mail store at once).
    pub local: bool,
    pub attempts: i64,
    pub next_attempt_at: i64,
    pub last_code: Option<i64>,
    pub last_status: String,
    pub last_reply: String,
    pub bounce_class: Option<BounceClass>,
    pub created_at: i64,
    pub updated_at: i64,
    /// The envelope sender ("" for the null reverse-path).
    pub mail_from: String,
    pub subject: String,
    pub size: i64,
}

impl QueueRow {
    /// Whether "retry now" and "cancel" apply.
    pub fn is_pending(&self) -> bool {
        self.status.is_pending()
    }
}

const SELECT: &str = "SELECT q.id, q.workspace_id, q.mailbox_id, NULL, q.recipient, q.domain, q.status, \
    q.attempts, q.next_attempt_at, q.last_code, q.last_status, q.last_reply, q.bounce_class, q.created_at, \
    q.updated_at, m.mail_from, m.subject, m.size, q.local \
    FROM queue q JOIN messages m ON m.id = q.message_id";

fn from_row(row: &rusqlite::Row<'_>) -> rusqlite::Result<QueueRow> {
    Ok(QueueRow {
        id: row.get(0)?,
        workspace_id: row.get(1)?,
        mailbox_id: row.get(2)?,
        mailbox: row.get(3)?,
        recipient: row.get(4)?,
        domain: row.get(5)?,
        status: row.get(6)?,
        attempts: row.get(7)?,
        next_attempt_at: row.get(8)?,
        last_code: row.get(9)?,
        last_status: row.get(10)?,
        last_reply: row.get(11)?,
        bounce_class: row.get(12)?,
        created_at: row.get(13)?,
        updated_at: row.get(14)?,
        mail_from: row.get(15)?,
        subject: row.get(16)?,
        size: row.get(17)?,
        local: row.get(18)?,
    })
}

/// A status filter from a form or the command line: a status's name, or "" for any.
pub fn check_status(status: &str) -> Result<Option<QueueStatus>> {
    match status.trim() {
        "" => Ok(None),
        s => s.parse().map(Some),
    }
}

/// A search of the queue for one page of rows.
#[derive(Debug, Clone, Default)]
pub struct Search {
    /// Part of the recipient or the envelope sender, in any case; empty: all.
    pub text: String,
    pub status: Option<QueueStatus>,
    /// `ORDER BY` text from the list's declared columns ([`SORT_COLUMNS`]); empty: newest first.
    pub order_by: String,
    /// Rows to read; negative: all.
    pub limit: i64,
    pub offset: i64,
}

/// The queue list's sortable columns: URL name and SQL expression.
pub const SORT_COLUMNS: &[(&str, &str)] = &[
    ("id", "q.id"),
    ("status", "q.status"),
    ("recipient", "q.recipient"),
    ("from", "m.mail_from COLLATE NOCASE"),
    ("subject", "m.subject COLLATE NOCASE"),
    ("attempts", "q.attempts"),
    ("next", "q.next_attempt_at"),
];

const MATCHES: &str = "(?1 IS NULL OR q.workspace_id = ?1) AND (?2 IS NULL OR q.status = ?2) \
    AND (?3 = '' OR instr(lower(q.recipient), lower(?3)) > 0 OR instr(lower(m.mail_from), lower(?3)) > 0)";

/// How many rows match `search`, over all pages.
pub fn count_matching(conn: &Connection, workspace: Option<i64>, search: &Search) -> rusqlite::Result<i64> {
    conn.prepare_cached(&format!(
        "SELECT count(*) FROM queue q JOIN messages m ON m.id = q.message_id WHERE {MATCHES}"
    ))?
    .query_row((workspace, search.status, search.text.trim()), |row| row.get(0))
}

/// One page of rows matching `search`, with their sending mailbox's address.
pub fn search(conn: &Connection, workspace: Option<i64>, search: &Search) -> rusqlite::Result<Vec<QueueRow>> {
    let order_by = if search.order_by.is_empty() { "q.id DESC" } else { &search.order_by };
    let mut stmt =
        conn.prepare_cached(&format!("{SELECT} WHERE {MATCHES} ORDER BY {order_by}, q.id DESC LIMIT ?4 OFFSET ?5"))?;
    let params = (workspace, search.status, search.text.trim(), search.limit, search.offset);
    let mut rows = stmt.query_map(params, from_row)?.collect::<rusqlite::Result<Vec<_>>>()?;
    let addresses = crate::mailbox::addresses_of(conn, rows.iter().filter_map(|row| row.mailbox_id))?;
    for row in &mut rows {
        row.mailbox = row.mailbox_id.and_then(|id| addresses.get(&id).cloned());
    }
    Ok(rows)
}

/// One row; `NotFound` when it does not exist or belongs to another workspace.
pub fn get(conn: &Connection, workspace: Option<i64>, id: i64) -> Result<QueueRow> {
    let mut row = conn
        .prepare_cached(&format!("{SELECT} WHERE q.id = ?1 AND (?2 IS NULL OR q.workspace_id = ?2)"))?
        .query_row((id, workspace), from_row)
        .optional()?
        .ok_or(Error::NotFound)?;
    row.mailbox = row.mailbox_id.map(|id| crate::mailbox::address_of(conn, id)).transpose()?.flatten();
    Ok(row)
}

/// One row with its events, newest first.
pub fn detail(conn: &Connection, workspace: Option<i64>, id: i64) -> Result<(QueueRow, Vec<Event>)> {
    let row = get(conn, workspace, id)?;
    let events = events::list(conn, row.workspace_id, Some(id), 500)?;
    Ok((row, events))
}

/// How many rows are in each status.
#[derive(Debug, Clone, Default, Serialize, PartialEq, Eq)]
pub struct StatusCounts {
    pub queued: i64,
    pub in_flight: i64,
    pub deferred: i64,
    pub delivered: i64,
    /// Of the delivered rows, those delivered to local mailboxes.
    pub delivered_locally: i64,
    pub bounced: i64,
    pub expired: i64,
    pub cancelled: i64,
}

impl StatusCounts {
    fn slot(&mut self, status: QueueStatus) -> &mut i64 {
        match status {
            QueueStatus::Queued => &mut self.queued,
            QueueStatus::InFlight => &mut self.in_flight,
            QueueStatus::Deferred => &mut self.deferred,
            QueueStatus::Delivered => &mut self.delivered,
            QueueStatus::Bounced => &mut self.bounced,
            QueueStatus::Expired => &mut self.expired,
            QueueStatus::Cancelled => &mut self.cancelled,
        }
    }

    fn add(&mut self, status: QueueStatus, local: bool, count: i64) {
        *self.slot(status) += count;
        if local && status == QueueStatus::Delivered {
            self.delivered_locally += count;
        }
    }

    /// The count of one status.
    pub fn of(&self, status: QueueStatus) -> i64 {
        *self.clone().slot(status)
    }

    /// Rows still to be delivered (queued, in flight or deferred).
    pub fn pending(&self) -> i64 {
        self.queued + self.in_flight + self.deferred
    }

    pub fn total(&self) -> i64 {
        self.pending() + self.delivered + self.bounced + self.expired + self.cancelled
    }
}

/// Counts for one mailbox or one destination domain.
#[derive(Debug, Clone, Serialize)]
pub struct GroupCounts {
    /// The mailbox address ("(no mailbox)" for system mail) or the destination domain.
    pub label: String,
    pub counts: StatusCounts,
}

/// The queue's overview: by status, by sending mailbox and by destination domain.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Counts {
    pub by_status: StatusCounts,
    pub by_mailbox: Vec<GroupCounts>,
    pub by_domain: Vec<GroupCounts>,
}

/// The most groups each overview table shows (the busiest first).
const GROUPS_SHOWN: usize = 50;

/// Counts of a workspace's queue (or the whole queue for `None`).
pub fn counts(conn: &Connection, workspace: Option<i64>) -> rusqlite::Result<Counts> {
    let by_status = grouped(
        conn,
        "SELECT '', status, local, count(*) FROM queue WHERE (?1 IS NULL OR workspace_id = ?1) GROUP BY 2, 3",
        [workspace],
    )?
    .pop()
    .map(|all| all.counts)
    .unwrap_or_default();
    let mut by_mailbox = grouped(
        conn,
        "SELECT coalesce(CAST(mailbox_id AS TEXT), ''), status, local, count(*) FROM queue \
         WHERE (?1 IS NULL OR workspace_id = ?1) GROUP BY 1, 2, 3",
        [workspace],
    )?;
    let ids: Vec<i64> = by_mailbox.iter().filter_map(|group| group.label.parse().ok()).collect();
    let addresses = crate::mailbox::addresses_of(conn, ids)?;
    for group in &mut by_mailbox {
        let address = group.label.parse().ok().and_then(|id: i64| addresses.get(&id));
        group.label = address.cloned().unwrap_or_else(|| "(no mailbox)".to_string());
    }
    let by_domain = grouped(
        conn,
        "SELECT domain, status, local, count(*) FROM queue WHERE (?1 IS NULL OR workspace_id = ?1) GROUP BY 1, 2, 3",
        [workspace],
    )?;
    Ok(Counts { by_status, by_mailbox, by_domain })
}

/// Counts of one mailbox's rows in a workspace's queue, by status.
pub fn mailbox_counts(conn: &Connection, workspace: i64, mailbox_id: i64) -> rusqlite::Result<StatusCounts> {
    let sql = "SELECT '', status, local, count(*) FROM queue WHERE workspace_id = ?1 AND mailbox_id = ?2 GROUP BY 2, 3";
    Ok(grouped(conn, sql, (workspace, mailbox_id))?.pop().map(|all| all.counts).unwrap_or_default())
}

/// Runs a `(label, status, local, count)` query and folds it into groups, busiest first.
fn grouped(conn: &Connection, sql: &str, params: impl rusqlite::Params) -> rusqlite::Result<Vec<GroupCounts>> {
    let mut groups: std::collections::BTreeMap<String, StatusCounts> = std::collections::BTreeMap::new();
    let mut stmt = conn.prepare_cached(sql)?;
    let rows = stmt.query_map(params, |row| {
        Ok((row.get::<_, String>(0)?, row.get::<_, QueueStatus>(1)?, row.get::<_, bool>(2)?, row.get::<_, i64>(3)?))
    })?;
    for row in rows {
        let (label, status, local, count) = row?;
        groups.entry(label).or_default().add(status, local, count);
    }
    let mut groups: Vec<GroupCounts> =
        groups.into_iter().map(|(label, counts)| GroupCounts { label, counts }).collect();
    groups.sort_by(|a, b| b.counts.pending().cmp(&a.counts.pending()).then(b.counts.total().cmp(&a.counts.total())));
    groups.truncate(GROUPS_SHOWN);
    Ok(groups)
}

/// Makes a queued or deferred row due now. The caller wakes the workers after commit.
pub fn retry_now_in(tx: &Transaction, workspace: Option<i64>, id: i64, actor: &Actor, now: i64) -> Result<QueueRow> {
    let row = get(tx, workspace, id)?;
    let changed = tx.execute(
        "UPDATE queue SET next_attempt_at = ?1, updated_at = ?1 WHERE id = ?2 AND status IN ('queued', 'deferred')",
        (now, id),
    )?;
    if changed == 0 {
        return Err(not_pending(&row, "retried"));
    }
    let detail = format!("retry requested by {}", actor.label);
    record_change(tx, &row, Kind::Retry, &detail, actor, now)?;
    get(tx, workspace, id)
}

/// Cancels a queued or deferred row: it will not be delivered.
pub fn cancel_in(tx: &Transaction, workspace: Option<i64>, id: i64, actor: &Actor, now: i64) -> Result<QueueRow> {
    let row = get(tx, workspace, id)?;
    let changed = tx.execute(
        "UPDATE queue SET status = 'cancelled', lease_until = NULL, updated_at = ?1 \
         WHERE id = ?2 AND status IN ('queued', 'deferred')",
        (now, id),
    )?;
    if changed == 0 {
        return Err(not_pending(&row, "cancelled"));
    }
    let detail = format!("cancelled by {}", actor.label);
    record_change(tx, &row, Kind::Cancelled, &detail, actor, now)?;
    get(tx, workspace, id)
}

fn not_pending(row: &QueueRow, verb: &str) -> Error {
    let now = match row.status {
        QueueStatus::InFlight => "is being delivered right now".to_string(),
        status => format!("is {status}"),
    };
    Error::Conflict(format!(
        "Message {} to {} {now}; only queued or deferred mail can be {verb}.",
        row.id, row.recipient
    ))
}

/// The event (on the row) and the audit entry (who did it) of a retry or cancel.
fn record_change(tx: &Transaction, row: &QueueRow, kind: Kind, detail: &str, actor: &Actor, now: i64) -> Result<()> {
    let event = NewEvent {
        mailbox_id: row.mailbox_id,
        queue_id: Some(row.id),
        detail,
        ..NewEvent::new(row.workspace_id, kind, &row.recipient)
    };
    events::record(tx, &event, now)?;
    let action = if kind == Kind::Retry { "queue.retry" } else { "queue.cancel" };
    audit::record(tx, Some(row.workspace_id), actor, action, &format!("#{} to {}", row.id, row.recipient), "", now)?;
    Ok(())
}

/// "Retry now" by a workspace member (or the operator with `access` = `None`); wakes the
/// delivery workers of this process.
pub async fn retry_now(app: &App, access: Option<&Access>, id: i64) -> Result<QueueRow> {
    let (workspace, actor) = scope(access)?;
    let now = app.clock.unix();
    let row = app.store.write(move |tx| retry_now_in(tx, workspace, id, &actor, now)).await?;
    app.wakeup.notify_waiters();
    app.wakeup.notify_one();
    Ok(row)
}

/// "Cancel" by a workspace member (or the operator with `access` = `None`).
pub async fn cancel(app: &App, access: Option<&Access>, id: i64) -> Result<QueueRow> {
    let (workspace, actor) = scope(access)?;
    let now = app.clock.unix();
    app.store.write(move |tx| cancel_in(tx, workspace, id, &actor, now)).await
}

/// The workspace scope and actor of a change; members and above may act.
fn scope(access: Option<&Access>) -> Result<(Option<i64>, Actor)> {
    match access {
        Some(access) => {
            access.workspace.role.require(Role::Member)?;
            Ok((Some(access.workspace.id), access.actor.clone()))
        }
        None => Ok((None, Actor::cli())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Two workspaces; workspace 1 has a mailbox and three rows (queued, deferred, in flight),
    /// workspace 2 one queued row.
    fn seed(tx: &Transaction) -> rusqlite::Result<()> {
        tx.execute_batch(
            "INSERT INTO workspaces (id, name, created_at) VALUES (1, 'one', 0), (2, 'two', 0);
             INSERT INTO users (id, email, password_hash, created_at) VALUES (1, 'owner@a.test', 'x', 0);
             INSERT INTO domains (id, workspace_id, name, created_at) VALUES (1, 1, 'a.test', 0);
             INSERT INTO mailboxes (id, workspace_id, domain_id, local_part, address, first_name, last_name,
                display_name, password_hash, created_at) VALUES (1, 1, 1, 'ann', 'ann@a.test', 'Ann', 'A', 'Ann A', 'x', 0);
             INSERT INTO messages (id, workspace_id, mailbox_id, mail_from, subject, size, body, created_at)
                VALUES (1, 1, 1, 'ann@a.test', 'Hello', 5, x'00', 0), (2, 2, NULL, 'x@b.test', 'Other', 5, x'00', 0);
             INSERT INTO queue (id, message_id, workspace_id, mailbox_id, recipient, domain, status, next_attempt_at,
                created_at, updated_at) VALUES
                (1, 1, 1, 1, 'bob@x.test', 'x.test', 'queued', 50, 0, 0),
                (2, 1, 1, 1, 'cat@y.test', 'y.test', 'deferred', 900, 0, 0),
                (3, 1, 1, 1, 'dan@x.test', 'x.test', 'in_flight', 50, 0, 0),
                (4, 2, 2, NULL, 'eve@z.test', 'z.test', 'queued', 50, 0, 0);",
        )
    }

    #[tokio::test]
    async fn lists_counts_and_isolates_workspaces() {
        let (_dir, store) = crate::store::open_temp();
        store
            .write(|tx| {
                seed(tx)?;
                let all = Search { limit: -1, ..Search::default() };
                let rows = search(tx, Some(1), &all)?;
                assert_eq!(rows.iter().map(|r| r.id).collect::<Vec<_>>(), [3, 2, 1], "newest first");
                assert_eq!(rows[0].subject, "Hello");
                assert_eq!(rows[0].mailbox.as_deref(), Some("ann@a.test"));
                let deferred = Search { status: Some(QueueStatus::Deferred), ..all.clone() };
                assert_eq!((search(tx, Some(1), &deferred)?.len(), count_matching(tx, Some(1), &deferred)?), (1, 1));
                assert_eq!((search(tx, None, &all)?.len(), count_matching(tx, None, &all)?), (4, 4));
                let to_x = Search { text: "X.TEST".into(), order_by: "q.recipient ASC".into(), ..all.clone() };
                let found = search(tx, Some(1), &to_x)?;
                assert_eq!(
                    found.iter().map(|r| r.recipient.as_str()).collect::<Vec<_>>(),
                    ["bob@x.test", "dan@x.test"]
                );
                let from_ann = Search { text: "ann@".into(), ..all.clone() };
                assert_eq!(count_matching(tx, Some(1), &from_ann)?, 3, "by sender");
                let second = search(tx, Some(1), &Search { limit: 2, offset: 2, ..all.clone() })?;
                assert_eq!(second.iter().map(|r| r.id).collect::<Vec<_>>(), [1], "the second page of two");
                assert!(matches!(get(tx, Some(1), 4), Err(Error::NotFound)));
                assert_eq!(get(tx, None, 4)?.recipient, "eve@z.test");

                let overview = counts(tx, Some(1))?;
                assert_eq!(
                    (overview.by_status.queued, overview.by_status.deferred, overview.by_status.in_flight),
                    (1, 1, 1)
                );
                assert_eq!(overview.by_status.total(), 3);
                assert_eq!(overview.by_mailbox.len(), 1);
                assert_eq!(overview.by_mailbox[0].label, "ann@a.test");
                assert_eq!(overview.by_domain[0].label, "x.test");
                assert_eq!(overview.by_domain[0].counts.pending(), 2);
                assert_eq!(counts(tx, Some(2))?.by_mailbox[0].label, "(no mailbox)");
                assert!(check_status("bogus").is_err());
                assert_eq!(check_status(" deferred ")?, Some(QueueStatus::Deferred));
                Ok::<_, Error>(())
            })
            .await
            .unwrap();
    }

    #[tokio::test]
    async fn retry_and_cancel_only_touch_pending_rows_of_the_workspace() {
        let (_dir, store) = crate::store::open_temp();
        store
            .write(|tx| {
                seed(tx)?;
                let actor = Actor::user(1, "owner@a.test");
                let row = retry_now_in(tx, Some(1), 2, &actor, 100)?;
                assert_eq!((row.status, row.next_attempt_at), (QueueStatus::Deferred, 100));
                assert!(matches!(retry_now_in(tx, Some(1), 3, &actor, 100), Err(Error::Conflict(_))));
                assert!(matches!(cancel_in(tx, Some(1), 4, &actor, 100), Err(Error::NotFound)));
                assert_eq!(cancel_in(tx, Some(1), 1, &actor, 101)?.status, QueueStatus::Cancelled);
                let again = cancel_in(tx, Some(1), 1, &actor, 102);
                assert!(matches!(&again, Err(Error::Conflict(m)) if m.contains("is cancelled")), "{again:?}");
                assert_eq!(cancel_in(tx, None, 4, &Actor::cli(), 103)?.status, QueueStatus::Cancelled);

                let (_, events) = detail(tx, Some(1), 1)?;
                assert_eq!(events.iter().map(|e| e.kind).collect::<Vec<_>>(), [Kind::Cancelled]);
                assert_eq!(events[0].detail, "cancelled by owner@a.test");
                let audits: i64 =
                    tx.query_row("SELECT count(*) FROM audit_log WHERE action LIKE 'queue.%'", [], |r| r.get(0))?;
                assert_eq!(audits, 3);
                Ok::<_, Error>(())
            })
            .await
            .unwrap();
    }
}
