//! What a classified message changes, inside the transaction that stores it: events
//! (`bounced`, `complaint`, `auto_reply`, `reply`, `unsubscribe_request`), suppression entries and
//! late bounces on queue rows. The same for mail from outside and mail between own mailboxes.
//!
//! Rules:
//! - **DSN**: each `failed` recipient block is a permanent failure classified by `mta::bounce`
//!   from its Status and Diagnostic-Code, exactly as a refusal during delivery would be. Its queue
//!   row is found by the original Message-ID (the row of that message whose recipient is the
//!   reported address — or the message's only row, when the address was rewritten on the way)
//!   and else by the address, the receiving mailbox's rows first. A row still `delivered`
//!   becomes `bounced` (a late bounce) through `mta::bounce`, which records the event and
//!   suppresses hard bounces; a row in any other state already counted its outcome (or is still
//!   being delivered) and is left alone, so our own DSNs and repeated reports count once; a
//!   report that matches no row gives a `bounced` event only.
//! - **Complaint** (ARF abuse/fraud/virus/other): a `complaint` event for the complainant (or, when
//!   the report redacts it, the only recipient of the reported message), and suppression.
//! - **Automatic reply / personal message**: counted only when it concerns our sending — it answers
//!   a message this appliance sent, or its sender is someone the workspace has sent to. Then an
//!   `auto_reply` or `reply` event; a removal request adds `unsubscribe_request` and suppression.
//! - Suppression (hard bounce, complaint, removal request) only ever adds an address the workspace
//!   has sent to — or, for a removal request, the sender of a reply to a message it sent — so a
//!   forged report cannot put arbitrary addresses on the list.

use rusqlite::{Connection, OptionalExtension, Transaction};

use crate::error::Result;
use crate::events::{self, Kind, NewEvent};
use crate::mailstore::classify::{Classification, Dsn, FeedbackReport, RecipientStatus};
use crate::mailstore::thread::Link;
use crate::mta::QueueStatus;
use crate::mta::bounce::{self, Bounce, sent_to};
use crate::suppression::{self, Reason};

/// The longest event detail kept.
const MAX_DETAIL: usize = 500;

/// Where the message landed and what it answers.
#[derive(Debug, Clone, Copy)]
pub struct Context<'a> {
    pub workspace_id: i64,
    pub mailbox_id: i64,
    pub link: &'a Link,
    /// The From address, lowercased.
    pub sender: &'a str,
    pub subject: &'a str,
    pub now: i64,
}

/// A queue row found for a report.
#[derive(Debug, Clone, PartialEq, Eq)]
struct QueueRow {
    id: i64,
    recipient: String,
    status: QueueStatus,
    /// The sending mailbox.
    mailbox_id: Option<i64>,
}

/// Records what the classification changes (see the module doc).
pub fn record(tx: &Transaction, ctx: &Context<'_>, classification: &Classification) -> Result<()> {
    match classification {
        Classification::Dsn(dsn) => record_dsn(tx, ctx, dsn),
        Classification::Feedback(report) if report.is_complaint() => record_complaint(tx, ctx, report),
        Classification::Feedback(_) => Ok(()),
        Classification::AutoReply => record_answer(tx, ctx, Kind::AutoReply, false),
        Classification::Personal { removal_request } => record_answer(tx, ctx, Kind::Reply, *removal_request),
    }
}

fn record_dsn(tx: &Transaction, ctx: &Context<'_>, dsn: &Dsn) -> Result<()> {
    for status in &dsn.recipients {
        let Some(class) = status.bounce_class() else { continue };
        let Some(address) = reported_address(status, dsn) else { continue };
        let addresses: Vec<&str> =
            [status.original_recipient.as_deref(), status.final_recipient.as_deref()].into_iter().flatten().collect();
        let row = queue_row(tx, ctx, dsn.original_message_id.as_deref(), &addresses)?;
        if row.as_ref().is_some_and(|row| row.status != QueueStatus::Delivered) {
            continue;
        }
        let (code, _) = bounce::diagnostic_reply(&status.diagnostic);
        let reply = clip(&status.diagnostic);
        let reporter = if dsn.reporting_mta.is_empty() { ctx.sender } else { dsn.reporting_mta.as_str() };
        let detail = clip(&format!("{class} {} {} (reported by {reporter})", status.status, status.diagnostic));
        let bounce = Bounce {
            workspace_id: ctx.workspace_id,
            mailbox_id: row.as_ref().map_or(Some(ctx.mailbox_id), |row| row.mailbox_id),
            queue_id: row.as_ref().map(|row| row.id),
            row_from: row.as_ref().map(|_| QueueStatus::Delivered),
            recipient: row.as_ref().map_or(address.as_str(), |row| row.recipient.as_str()),
            class,
            code,
            status: &status.status,
            reply: &reply,
            detail: &detail,
        };
        bounce::record(tx, &bounce, ctx.now)?;
    }
    Ok(())
}

/// The address a failed block speaks of; a block naming none falls back to the original's only
/// recipient.
fn reported_address(status: &RecipientStatus, dsn: &Dsn) -> Option<String> {
    match status.address() {
        Some(address) => Some(address.to_string()),
        None if dsn.original_recipients.len() == 1 => Some(dsn.original_recipients[0].clone()),
        None => None,
    }
}

fn record_complaint(tx: &Transaction, ctx: &Context<'_>, report: &FeedbackReport) -> Result<()> {
    let addresses: Vec<&str> = report.complainant.as_deref().into_iter().collect();
    let row = queue_row(tx, ctx, report.original_message_id.as_deref(), &addresses)?;
    let Some(recipient) = row.as_ref().map(|row| row.recipient.clone()).or_else(|| report.complainant.clone()) else {
        return Ok(());
    };
    let detail = clip(&format!("{} report from {}", report.feedback_type, report.user_agent.trim()));
    let message_id = report.original_message_id.as_deref().unwrap_or_default();
    event(tx, ctx, Kind::Complaint, row.as_ref().map(|row| row.id), &recipient, message_id, &detail)?;
    if row.is_some() || sent_to(tx, ctx.workspace_id, &recipient)? {
        suppression::add(tx, ctx.workspace_id, &recipient, Reason::Complaint, &detail, ctx.now)?;
    }
    Ok(())
}

/// An automatic reply or a person's reply: counted when it concerns our sending.
fn record_answer(tx: &Transaction, ctx: &Context<'_>, kind: Kind, removal_request: bool) -> Result<()> {
    if ctx.sender.is_empty() {
        return Ok(());
    }
    let answered = ctx.link.answers_message;
    if answered.is_none() && !sent_to(tx, ctx.workspace_id, ctx.sender)? {
        return Ok(());
    }
    let queue_id = reply_queue_row(tx, ctx, answered)?;
    let message_id = match answered {
        Some(id) => sent_message_id(tx, id)?,
        None => String::new(),
    };
    let detail = clip(ctx.subject);
    event(tx, ctx, kind, queue_id, ctx.sender, &message_id, &detail)?;
    if removal_request {
        event(tx, ctx, Kind::UnsubscribeRequest, queue_id, ctx.sender, &message_id, &detail)?;
        suppression::add(tx, ctx.workspace_id, ctx.sender, Reason::Reply, "asked to be removed in a reply", ctx.now)?;
    }
    Ok(())
}

/// An event of the receiving mailbox about `peer`; `message_id` is our message's, when the queue
/// row does not give it.
fn event(
    tx: &Transaction,
    ctx: &Context<'_>,
    kind: Kind,
    queue_id: Option<i64>,
    peer: &str,
    message_id: &str,
    detail: &str,
) -> Result<()> {
    let event = NewEvent {
        mailbox_id: Some(ctx.mailbox_id),
        queue_id,
        message_id,
        detail,
        ..NewEvent::new(ctx.workspace_id, kind, peer)
    };
    events::record(tx, &event, ctx.now)?;
    Ok(())
}

/// The queue row a report is about (module doc, DSN rule).
fn queue_row(
    conn: &Connection,
    ctx: &Context<'_>,
    message_id: Option<&str>,
    addresses: &[&str],
) -> Result<Option<QueueRow>> {
    if let Some(message_id) = message_id {
        let rows = rows_of_message(conn, ctx.workspace_id, message_id)?;
        let matching = rows.iter().find(|row| addresses.iter().any(|a| a.eq_ignore_ascii_case(&row.recipient)));
        if let Some(row) = matching {
            return Ok(Some(row.clone()));
        }
        if rows.len() == 1 {
            return Ok(rows.into_iter().next());
        }
    }
    for address in addresses {
        let row = conn
            .prepare_cached(
                "SELECT id, recipient, status, mailbox_id FROM queue WHERE workspace_id = ?1 \
                 AND recipient = ?2 COLLATE NOCASE ORDER BY (mailbox_id IS ?3) DESC, id DESC LIMIT 1",
            )?
            .query_row((ctx.workspace_id, address, ctx.mailbox_id), queue_row_from)
            .optional()?;
        if row.is_some() {
            return Ok(row);
        }
    }
    Ok(None)
}

/// The queue rows of the workspace's sent message with this Message-ID.
fn rows_of_message(conn: &Connection, workspace_id: i64, message_id: &str) -> Result<Vec<QueueRow>> {
    let mut stmt = conn.prepare_cached(
        "SELECT q.id, q.recipient, q.status, q.mailbox_id FROM queue q JOIN messages m ON m.id = q.message_id \
         WHERE m.workspace_id = ?1 AND m.message_id = ?2 ORDER BY q.id",
    )?;
    let rows = stmt.query_map((workspace_id, message_id), queue_row_from)?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}

/// The queue row of the reply's sender: for the answered message when known, else their latest.
fn reply_queue_row(conn: &Connection, ctx: &Context<'_>, answered: Option<i64>) -> Result<Option<i64>> {
    Ok(conn
        .prepare_cached(
            "SELECT id FROM queue WHERE workspace_id = ?1 AND recipient = ?2 COLLATE NOCASE \
             ORDER BY (message_id IS ?3) DESC, (mailbox_id IS ?4) DESC, id DESC LIMIT 1",
        )?
        .query_row((ctx.workspace_id, ctx.sender, answered, ctx.mailbox_id), |row| row.get(0))
        .optional()?)
}

/// The Message-ID of a message this appliance sent.
fn sent_message_id(conn: &Connection, id: i64) -> Result<String> {
    Ok(conn
        .prepare_cached("SELECT message_id FROM messages WHERE id = ?1")?
        .query_row([id], |row| row.get(0))
        .optional()?
        .unwrap_or_default())
}

fn queue_row_from(row: &rusqlite::Row<'_>) -> rusqlite::Result<QueueRow> {
    Ok(QueueRow { id: row.get(0)?, recipient: row.get(1)?, status: row.get(2)?, mailbox_id: row.get(3)? })
}

/// At most [`MAX_DETAIL`] characters.
fn clip(text: &str) -> String {
    text.chars().take(MAX_DETAIL).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mailstore::classify::classify;

    /// Workspace 1 with mailbox 1 (ann@grove.test), a delivered message to nobody@example.org
    /// (queue row 10) and a queued one to lead@example.net (row 11).
    fn seed(tx: &Transaction) -> rusqlite::Result<()> {
        tx.execute_batch(
            "INSERT INTO workspaces (id, name, created_at) VALUES (1, 'w', 0);
             INSERT INTO domains (id, workspace_id, name, created_at) VALUES (1, 1, 'grove.test', 0);
             INSERT INTO mailboxes (id, workspace_id, domain_id, local_part, address, first_name, last_name,
                display_name, password_hash, created_at) VALUES (1, 1, 1, 'ann', 'ann@grove.test', 'A', 'A', 'A', 'x', 0);
             INSERT INTO messages (id, workspace_id, mailbox_id, mail_from, message_id, subject, size, body, created_at)
               VALUES (5, 1, 1, 'ann@grove.test', 'q7f3kd92ls@mail.grove.test', 'Quick question', 1, x'00', 0),
                      (6, 1, 1, 'ann@grove.test', 'other@mail.grove.test', 'Intro', 1, x'00', 0);
             INSERT INTO queue (id, message_id, workspace_id, mailbox_id, recipient, domain, status, next_attempt_at,
                created_at, updated_at)
               VALUES (10, 5, 1, 1, 'Nobody@example.org', 'example.org', 'delivered', 0, 0, 0),
                      (11, 6, 1, 1, 'lead@example.net', 'example.net', 'queued', 0, 0, 0);",
        )
    }

    fn fixture(path: &str) -> Classification {
        let raw = std::fs::read(format!("{}/tests/fixtures/{path}", env!("CARGO_MANIFEST_DIR"))).unwrap();
        classify(&raw, "")
    }

    fn context<'a>(link: &'a Link, sender: &'a str) -> Context<'a> {
        Context { workspace_id: 1, mailbox_id: 1, link, sender, subject: "Re: Intro", now: 100 }
    }

    fn kinds(tx: &Transaction) -> Vec<(String, String, Option<i64>)> {
        let mut stmt = tx.prepare("SELECT kind, recipient, queue_id FROM events ORDER BY id").unwrap();
        stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?))).unwrap().collect::<rusqlite::Result<_>>().unwrap()
    }

    #[tokio::test]
    async fn a_late_hard_bounce_marks_the_row_and_suppresses_but_strangers_are_not_suppressed() {
        let (_dir, store) = crate::store::open_temp();
        store
            .write(|tx| {
                seed(tx)?;
                let link = Link { thread_id: 1, answers_message: None, answers_mail: None };
                record(tx, &context(&link, "mailer-daemon@mx1.example.org"), &fixture("dsn/postfix.eml"))?;
                let row: (String, Option<String>, String) =
                    tx.query_row("SELECT status, bounce_class, last_status FROM queue WHERE id = 10", [], |r| {
                        Ok((r.get(0)?, r.get(1)?, r.get(2)?))
                    })?;
                assert_eq!(row, ("bounced".into(), Some("hard".into()), "5.1.1".into()));
                assert_eq!(crate::suppression::reason(tx, 1, "nobody@example.org")?.as_deref(), Some("hard_bounce"));

                // Nobody here ever wrote to contoso.com: events, but no suppression.
                record(tx, &context(&link, "postmaster@contoso.com"), &fixture("dsn/outlook.eml"))?;
                assert_eq!(crate::suppression::reason(tx, 1, "nobody@contoso.com")?, None);
                // A delay warning changes nothing.
                record(tx, &context(&link, "mailer-daemon@mx1.example.org"), &fixture("dsn/postfix_delayed.eml"))?;
                assert_eq!(
                    kinds(tx),
                    [
                        ("bounced".into(), "Nobody@example.org".into(), Some(10)),
                        ("bounced".into(), "nobody@contoso.com".into(), None),
                        ("bounced".into(), "full@contoso.com".into(), None),
                    ]
                );
                Ok::<_, crate::error::Error>(())
            })
            .await
            .unwrap();
    }

    #[tokio::test]
    async fn replies_count_only_from_people_we_wrote_to() {
        let (_dir, store) = crate::store::open_temp();
        store
            .write(|tx| {
                seed(tx)?;
                let unlinked = Link { thread_id: 1, answers_message: None, answers_mail: None };
                let stranger = Classification::Personal { removal_request: true };
                record(tx, &context(&unlinked, "stranger@example.com"), &stranger)?;
                assert!(kinds(tx).is_empty(), "a stranger's mail is no reply and suppresses nobody");
                assert_eq!(crate::suppression::reason(tx, 1, "stranger@example.com")?, None);

                record(tx, &context(&unlinked, "lead@example.net"), &stranger)?;
                record(tx, &context(&unlinked, "lead@example.net"), &Classification::AutoReply)?;
                assert_eq!(
                    kinds(tx),
                    [
                        ("reply".into(), "lead@example.net".into(), Some(11)),
                        ("unsubscribe_request".into(), "lead@example.net".into(), Some(11)),
                        ("auto_reply".into(), "lead@example.net".into(), Some(11)),
                    ]
                );
                assert_eq!(crate::suppression::reason(tx, 1, "lead@example.net")?.as_deref(), Some("reply"));
                Ok::<_, crate::error::Error>(())
            })
            .await
            .unwrap();
    }
}
