//! What campaigns do about what happened to their mail: a reply, a bounce, an unsubscribe, a
//! complaint or a "remove me" reply stops the lead's sequence. The facts come only from the
//! event log (written by `mailstore::receive`, `mta::bounce` and the unsubscribe endpoint in
//! the transaction that learned them); [`apply`] reads the events past a stored cursor and
//! changes the lead states. The engine calls it at the start of every transaction that records
//! sends, so an event committed before that transaction always stops the lead before its next
//! step can go, and nothing depends on the engine having been awake when the event happened.
//!
//! Rules, per event about a lead of the workspace (the event's peer is the lead's address):
//! - `reply`: the lead is `replied` in every campaign with stop on reply; in those that also stop
//!   the lead's company, every other active lead at the same domain is `finished` (unless the
//!   domain is a free mail provider, where a domain is not a company);
//! - `bounced`, `expired`: `bounced` in every campaign;
//! - `unsubscribed`, `complaint`, `unsubscribe_request`: `unsubscribed` in every campaign.
//!
//! An automatic reply (out of office) changes nothing.

use rusqlite::{Connection, OptionalExtension, Transaction};

use crate::campaign::leads::{self, LeadStatus};
use crate::error::Result;

/// The settings key of the last event applied.
const CURSOR: &str = "campaign_events_cursor";
/// Events read per query.
const BATCH: i64 = 5000;

/// Domains of free mail providers: a reply from one does not stop its "company".
const FREE_MAIL: &[&str] = &[
    "gmail.com",
    "googlemail.com",
    "yahoo.com",
    "ymail.com",
    "outlook.com",
    "hotmail.com",
    "live.com",
    "msn.com",
    "icloud.com",
    "me.com",
    "mac.com",
    "aol.com",
    "gmx.com",
    "gmx.de",
    "gmx.net",
    "web.de",
    "mail.com",
    "proton.me",
    "protonmail.com",
    "yandex.com",
    "yandex.ru",
    "mail.ru",
    "zoho.com",
    "fastmail.com",
];

/// How an event changes a lead's campaigns.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Stop {
    Replied,
    Bounced,
    Unsubscribed,
}

fn stop_of(kind: &str) -> Option<Stop> {
    match kind {
        "reply" => Some(Stop::Replied),
        "bounced" | "expired" => Some(Stop::Bounced),
        "unsubscribed" | "complaint" | "unsubscribe_request" => Some(Stop::Unsubscribed),
        _ => None,
    }
}

/// An event that may stop a lead.
struct Happened {
    id: i64,
    workspace_id: i64,
    kind: String,
    peer: String,
    detail: String,
}

/// Applies the events past the cursor (see the module doc); returns how many leads it stopped.
pub fn apply(tx: &Transaction, now: i64) -> Result<usize> {
    let mut cursor = cursor(tx)?;
    let mut stopped = 0;
    loop {
        let events = events_after(tx, cursor)?;
        let Some(last) = events.last().map(|event| event.id) else { break };
        for event in &events {
            stopped += react(tx, event, now)?;
        }
        cursor = last;
        if i64::try_from(events.len()).unwrap_or(BATCH) < BATCH {
            break;
        }
    }
    tx.prepare_cached(
        "INSERT INTO settings (key, value) VALUES (?1, ?2) ON CONFLICT (key) DO UPDATE SET value = excluded.value",
    )?
    .execute((CURSOR, cursor.to_string()))?;
    Ok(stopped)
}

fn cursor(conn: &Connection) -> rusqlite::Result<i64> {
    let stored: Option<String> = conn
        .prepare_cached("SELECT value FROM settings WHERE key = ?1")?
        .query_row([CURSOR], |row| row.get(0))
        .optional()?;
    match stored.and_then(|value| value.parse().ok()) {
        Some(cursor) => Ok(cursor),
        // First run: nothing before now concerns campaigns that do not exist yet.
        None => conn.query_row("SELECT coalesce(max(id), 0) FROM events", [], |row| row.get(0)),
    }
}

fn events_after(conn: &Connection, cursor: i64) -> rusqlite::Result<Vec<Happened>> {
    conn.prepare_cached(
        "SELECT id, workspace_id, kind, recipient, detail FROM events WHERE id > ?1 AND kind IN \
         ('reply', 'bounced', 'expired', 'unsubscribed', 'complaint', 'unsubscribe_request') ORDER BY id LIMIT ?2",
    )?
    .query_map((cursor, BATCH), |row| {
        Ok(Happened {
            id: row.get(0)?,
            workspace_id: row.get(1)?,
            kind: row.get(2)?,
            peer: row.get(3)?,
            detail: row.get(4)?,
        })
    })?
    .collect()
}

fn react(tx: &Transaction, event: &Happened, now: i64) -> Result<usize> {
    let Some(stop) = stop_of(&event.kind) else { return Ok(0) };
    let Some(lead) = leads::find(tx, event.workspace_id, &event.peer)? else { return Ok(0) };
    let (lead_status, state, reason) = match stop {
        Stop::Replied => (LeadStatus::Replied, "replied", "replied".to_string()),
        Stop::Bounced => (LeadStatus::Bounced, "bounced", format!("bounced: {}", event.detail)),
        Stop::Unsubscribed => (LeadStatus::Unsubscribed, "unsubscribed", event.kind.replace('_', " ")),
    };
    leads::set_status(tx, lead.id, lead_status, now)?;
    let only_stopping_on_reply = if stop == Stop::Replied { "AND c.stop_on_reply = 1" } else { "" };
    let mut stopped = tx
        .prepare_cached(&format!(
            "UPDATE campaign_leads SET status = ?2, stop_reason = ?3, updated_at = ?4 WHERE lead_id = ?1 \
             AND status IN ('active', 'paused') AND campaign_id IN (SELECT c.id FROM campaigns c \
             WHERE c.workspace_id = ?5 {only_stopping_on_reply})"
        ))?
        .execute((lead.id, state, &reason, now, event.workspace_id))?;
    if stop == Stop::Replied && !FREE_MAIL.contains(&lead.domain()) {
        stopped += stop_company(tx, event.workspace_id, &lead.email, lead.domain(), now)?;
    }
    Ok(stopped)
}

/// Finishes the other leads at the replying lead's domain in the campaigns that ask for it.
fn stop_company(tx: &Transaction, workspace: i64, email: &str, domain: &str, now: i64) -> Result<usize> {
    let reason = format!("{email} at the same company replied");
    let pattern = format!("%@{}", domain.replace('\\', "\\\\").replace('%', "\\%").replace('_', "\\_"));
    let stopped = tx
        .prepare_cached(
            "UPDATE campaign_leads SET status = 'finished', stop_reason = ?3, updated_at = ?4 \
             WHERE status IN ('active', 'paused') AND campaign_id IN (SELECT id FROM campaigns \
             WHERE workspace_id = ?1 AND stop_on_reply = 1 AND stop_company_on_reply = 1) \
             AND lead_id IN (SELECT id FROM leads WHERE workspace_id = ?1 AND email LIKE ?2 ESCAPE '\\')",
        )?
        .execute((workspace, &pattern, &reason, now))?;
    Ok(stopped)
}
