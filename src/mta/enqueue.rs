//! The one way out: a prepared message ([`prepare`](super::prepare)) is routed here, recipient by
//! recipient, inside the sender's transaction (after `mta::admit` has let it through).
//!
//! Each recipient is resolved with `mailbox::resolve`, the same resolution inbound mail gets:
//! - an address of another domain gets a `queue` row (status `queued`, due now) referencing a
//!   `messages` row that holds the body once, and a `queued` event; the delivery workers take it
//!   from there;
//! - an address that reaches local mailboxes (a mailbox, a plus address, an alias, the catch-all,
//!   a role address, a mailto unsubscribe address) is delivered at once through
//!   `mailstore::receive`, exactly as if it had arrived from outside (trace headers, threading,
//!   classification and its effects, the IDLE announcement); its row is recorded `delivered`
//!   with `queue.local` set, never handed to the workers, with a `delivered` event;
//! - an address of a local domain that reaches nobody bounces at once (`mta::bounce`: hard,
//!   550 5.1.1) and the sender gets a DSN.
//!
//! A copy of what a mailbox sends is filed in its Sent folder when the workspace keeps them.

use rusqlite::Transaction;

use crate::app::App;
use crate::error::{Error, Result};
use crate::events::{self, Kind, NewEvent};
use crate::mailbox::resolve::{self, Refusal};
use crate::mailstore::receive::{self, Arrival, Facts, Origin, Receiver};
use crate::mailstore::{self};
use crate::mta::QueueStatus;
use crate::mta::bounce::{self, Bounce, BounceClass};
use crate::mta::dsn::{self, DsnAction, DsnRecipient};

pub use super::prepare::{
    Outgoing, Prepared, PreparedBody, Receiving, SignerCache, prepare, prepare_cached, split_message, to_crlf,
    trim_trailing_blank_lines,
};

/// The reply recorded for a recipient of a local domain that reaches no mailbox.
const NO_SUCH_USER: (u16, &str, &str) = (550, "5.1.1", "No such user here");

/// Where the recipients of one body go.
#[derive(Default)]
struct Routes<'a> {
    remote: Vec<&'a str>,
    local: Vec<&'a str>,
    unknown: Vec<&'a str>,
}

/// Routes each recipient inside the caller's transaction (see the module doc). Returns the ids
/// of the rows queued for remote delivery, in recipient order.
pub fn enqueue(tx: &Transaction, prepared: &Prepared, now: i64) -> Result<Vec<i64>> {
    let mut queued = Vec::new();
    for body in &prepared.bodies {
        let routes = route(tx, &prepared.receiving.hostname, &body.recipients)?;
        let message = insert_message(tx, prepared, &body.raw, now)?;
        for recipient in &routes.remote {
            queued.push(insert_queue_row(tx, prepared, message, recipient, Row::Queued, now)?);
        }
        if !routes.local.is_empty() {
            deliver_locally(tx, prepared, body, message, &routes.local, now)?;
        }
        for recipient in &routes.unknown {
            bounce_unknown(tx, prepared, body, message, recipient, now)?;
        }
    }
    file_sent_copy(tx, prepared, now)?;
    Ok(queued)
}

fn route<'a>(tx: &Transaction, hostname: &str, recipients: &'a [String]) -> Result<Routes<'a>> {
    let mut routes = Routes::default();
    for recipient in recipients {
        match resolve::resolve(tx, recipient, hostname)? {
            Ok(_) => routes.local.push(recipient),
            Err(Refusal::UnknownUser) => routes.unknown.push(recipient),
            Err(Refusal::NotLocal | Refusal::BadSyntax) => routes.remote.push(recipient),
        }
    }
    Ok(routes)
}

/// Receives the body in the local recipients' mailboxes and records their rows and events.
fn deliver_locally(
    tx: &Transaction,
    prepared: &Prepared,
    body: &PreparedBody,
    message: i64,
    recipients: &[&str],
    now: i64,
) -> Result<()> {
    let facts = match &body.facts {
        Some(facts) => facts.clone(),
        None => std::sync::Arc::new(Facts::read(&body.raw, &prepared.mail_from)),
    };
    let receiving = &prepared.receiving;
    let receiver = Receiver { hostname: &receiving.hostname, keys: &receiving.keys, announcer: &receiving.announcer };
    let recipients: Vec<String> = recipients.iter().map(|r| r.to_string()).collect();
    let arrival = Arrival {
        raw: &body.raw,
        mail_from: &prepared.mail_from,
        recipients: &recipients,
        quarantine: false,
        origin: Origin::Local,
    };
    for recipient in &recipients {
        insert_queue_row(tx, prepared, message, recipient, Row::DeliveredLocally, now)?;
    }
    receive::receive(tx, &receiver, &arrival, &facts, now)?;
    Ok(())
}

/// A recipient of a local domain that reaches nobody: a hard bounce at once, and a DSN.
fn bounce_unknown(
    tx: &Transaction,
    prepared: &Prepared,
    body: &PreparedBody,
    message: i64,
    recipient: &str,
    now: i64,
) -> Result<()> {
    let id = insert_queue_row(tx, prepared, message, recipient, Row::Queued, now)?;
    let (code, status, text) = NO_SUCH_USER;
    let reply = format!("{code} {status} {text}");
    let detail = format!("{reply} (from {})", prepared.receiving.hostname);
    let bounce = Bounce {
        workspace_id: prepared.workspace_id,
        mailbox_id: prepared.mailbox_id,
        queue_id: Some(id),
        row_from: Some(QueueStatus::Queued),
        recipient,
        class: BounceClass::Hard,
        code: Some(code),
        status,
        reply: &reply,
        detail: &detail,
    };
    bounce::record(tx, &bounce, now)?;
    if prepared.mail_from.is_empty() {
        return Ok(());
    }
    let failed = DsnRecipient {
        recipient: recipient.to_string(),
        action: DsnAction::Failed,
        status: status.to_string(),
        diagnostic: format!("smtp; {reply}"),
        remote_mta: Some(prepared.receiving.hostname.clone()),
    };
    let raw = dsn::build(&prepared.receiving.hostname, &body.raw, &prepared.mail_from, &[failed], now);
    let notice = Prepared {
        workspace_id: prepared.workspace_id,
        mailbox_id: prepared.mailbox_id,
        mail_from: String::new(),
        message_id: mailstore::message_id_of(&raw),
        subject: dsn::FAILED_SUBJECT.to_string(),
        bodies: vec![PreparedBody { raw, recipients: vec![prepared.mail_from.clone()], facts: None }],
        receiving: prepared.receiving.clone(),
    };
    enqueue(tx, &notice, now)?;
    Ok(())
}

/// Files a copy of what a mailbox sent in its Sent folder when the workspace keeps such copies
/// (`workspaces.file_sent_copies`, on by default); warmup mail goes to the warmup folder instead,
/// so it never shows among what the mailbox sent. Bounce notices (an empty reverse path) are
/// not something the mailbox sent. The copy is the first body: per-recipient bodies differ only
/// in their List-Unsubscribe headers. The copy is `\Seen`: the mailbox wrote it. An IMAP client
/// that APPENDs the same message to Sent finds it by Message-ID and leaves one copy.
fn file_sent_copy(tx: &Transaction, prepared: &Prepared, now: i64) -> Result<()> {
    let (Some(mailbox), Some(body)) = (prepared.mailbox_id, prepared.bodies.first()) else {
        return Ok(());
    };
    if prepared.mail_from.is_empty() {
        return Ok(());
    }
    if crate::workspaces::files_sent_copies(tx, prepared.workspace_id)? {
        let announcer = &prepared.receiving.announcer;
        let folder = if crate::warmup::marker::is_marked(&body.raw) {
            crate::mailstore::imap_ops::ensure_folder(tx, mailbox, crate::warmup::engage::FOLDER, now)?;
            crate::warmup::engage::FOLDER
        } else {
            "Sent"
        };
        mailstore::deliver_flagged(tx, announcer, mailbox, folder, &body.raw, "\\Seen", now)?;
    }
    Ok(())
}

/// [`prepare`], then [`enqueue`] in one write transaction, then wakes the delivery workers.
/// For internal senders that have nothing else to record with the send.
pub async fn send(app: &App, outgoing: Outgoing) -> Result<Vec<i64>> {
    let prepared = prepare(app, outgoing).await?;
    let now = app.clock.unix();
    let ids = app.store.write(move |tx| enqueue(tx, &prepared, now)).await?;
    app.wakeup.notify_one();
    Ok(ids)
}

fn insert_message(tx: &Transaction, prepared: &Prepared, raw: &[u8], now: i64) -> Result<i64> {
    let size = i64::try_from(raw.len()).map_err(|_| Error::Internal("message too large".into()))?;
    tx.prepare_cached(
        "INSERT INTO messages (workspace_id, mailbox_id, mail_from, message_id, subject, size, body, created_at) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
    )?
    .execute((
        prepared.workspace_id,
        prepared.mailbox_id,
        &prepared.mail_from,
        &prepared.message_id,
        &prepared.subject,
        size,
        raw,
        now,
    ))?;
    Ok(tx.last_insert_rowid())
}

/// How a recipient's row starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Row {
    /// Due now for the delivery workers (or about to bounce).
    Queued,
    /// Already in the mail store.
    DeliveredLocally,
}

fn insert_queue_row(
    tx: &Transaction,
    prepared: &Prepared,
    message: i64,
    recipient: &str,
    row: Row,
    now: i64,
) -> Result<i64> {
    let domain = recipient.rsplit_once('@').map(|(_, d)| d.to_lowercase()).unwrap_or_default();
    let (status, kind, local, last_reply) = match row {
        Row::Queued => (QueueStatus::Queued, Kind::Queued, false, ""),
        Row::DeliveredLocally => (QueueStatus::Delivered, Kind::Delivered, true, "delivered locally"),
    };
    tx.prepare_cached(
        "INSERT INTO queue (message_id, workspace_id, mailbox_id, recipient, domain, status, local, last_reply, \
         attempts, next_attempt_at, created_at, updated_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?7, ?9, ?9, ?9)",
    )?
    .execute((
        message,
        prepared.workspace_id,
        prepared.mailbox_id,
        recipient,
        domain,
        status,
        local,
        last_reply,
        now,
    ))?;
    let id = tx.last_insert_rowid();
    let event = NewEvent {
        mailbox_id: prepared.mailbox_id,
        queue_id: Some(id),
        message_id: &prepared.message_id,
        detail: last_reply,
        ..NewEvent::new(prepared.workspace_id, kind, recipient)
    };
    events::record(tx, &event, now)?;
    Ok(id)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    use mail_auth::DkimResult;

    use crate::dns::dkim::DkimAlgorithm;
    use crate::mta::prepare::tests::{app_with, outgoing, text, verify};

    #[tokio::test]
    async fn prepare_completes_and_signs_and_enqueue_routes_local_and_remote() {
        let (_dir, app, key) = app_with(DkimAlgorithm::Ed25519).await;
        let raw = "From: Ann <ann@a.test>\nTo: carl@a.test, bob@remote.test\nSubject: Hi there\n\nHello\n  \n\t\n";
        let prepared = prepare(&app, outgoing(raw, &["carl@a.test", "Bob@Remote.TEST", "carl@A.test"])).await.unwrap();
        assert_eq!(prepared.bodies.len(), 1);
        assert_eq!(prepared.recipients().collect::<Vec<_>>(), ["carl@a.test", "Bob@Remote.TEST"]);
        assert_eq!(prepared.subject, "Hi there");
        assert!(prepared.bodies[0].facts.is_some(), "a recipient is local: the facts are read before the write");
        let body = &prepared.bodies[0].raw.clone();
        let shown = text(body);
        assert!(shown.starts_with("DKIM-Signature: v=1; a=ed25519-sha256;"), "{shown}");
        assert!(shown.contains(" d=a.test;"), "{shown}");
        assert!(shown.contains(&format!("Message-ID: <{}>\r\n", prepared.message_id)), "{shown}");
        assert!(prepared.message_id.ends_with("@mail.grove.test"));
        let date = shown.lines().find_map(|l| l.strip_prefix("Date: ")).expect("a Date header");
        assert!(chrono::DateTime::parse_from_rfc2822(date).is_ok(), "{date}");
        assert!(shown.ends_with("\r\n\r\nHello\r\n"), "trailing blank lines removed: {shown:?}");
        assert!(!body.windows(2).any(|w| w[1] == b'\n' && w[0] != b'\r'), "only CRLF line ends");
        assert_eq!(verify(body, &key).await, [DkimResult::Pass]);

        let now = app.clock.unix();
        let (ids, stored, rows, messages, kinds) = app
            .store
            .write(move |tx| {
                let ids = enqueue(tx, &prepared, now)?;
                let stored = mailstore::list(tx, 2, "INBOX")?;
                let sent = mailstore::list(tx, 1, "Sent")?;
                assert_eq!(sent.len(), 1, "the sender's Sent folder has one copy");
                assert_eq!(sent[0].message_id, prepared.message_id);
                assert_eq!(sent[0].flags, "\\Seen", "what the mailbox sent is not unread");
                let rows: Vec<(String, String, QueueStatus, bool, i64)> = tx
                    .prepare("SELECT recipient, domain, status, local, message_id FROM queue ORDER BY id")?
                    .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?)))?
                    .collect::<rusqlite::Result<_>>()?;
                let messages: Vec<(i64, Vec<u8>, String, String)> = tx
                    .prepare("SELECT id, body, mail_from, subject FROM messages")?
                    .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))?
                    .collect::<rusqlite::Result<_>>()?;
                let mut kinds: Vec<(Kind, String, String)> =
                    events::list(tx, 1, None, 10)?.into_iter().map(|e| (e.kind, e.peer, e.message_id)).collect();
                kinds.sort_by_key(|(kind, ..)| kind.as_str());
                Ok::<_, Error>((ids, stored, rows, messages, kinds))
            })
            .await
            .unwrap();
        assert_eq!(ids.len(), 1, "only the remote recipient is queued");
        assert_eq!(stored.len(), 1);
        let delivered = text(&stored[0].raw);
        assert!(
            delivered.starts_with("Return-Path: <ann@a.test>\r\nReceived: by mail.grove.test (InboxGrove)"),
            "{delivered}"
        );
        assert!(stored[0].raw.ends_with(body), "the local mailbox got the signed message under the trace fields");
        let message = messages[0].0;
        assert_eq!(
            rows,
            [
                ("Bob@Remote.TEST".to_string(), "remote.test".to_string(), QueueStatus::Queued, false, message),
                ("carl@a.test".to_string(), "a.test".to_string(), QueueStatus::Delivered, true, message),
            ]
        );
        assert_eq!(messages.len(), 1);
        assert_eq!((&messages[0].1, messages[0].2.as_str(), messages[0].3.as_str()), (body, "ann@a.test", "Hi there"));
        assert_eq!(
            kinds.iter().map(|(kind, peer, _)| (*kind, peer.as_str())).collect::<Vec<_>>(),
            [(Kind::Delivered, "carl@a.test"), (Kind::Queued, "Bob@Remote.TEST")]
        );
        assert!(kinds.iter().all(|(_, _, message_id)| message_id.ends_with("@mail.grove.test")), "{kinds:?}");
    }

    #[tokio::test]
    async fn no_sent_copy_when_the_workspace_turns_them_off() {
        let (_dir, app, _key) = app_with(DkimAlgorithm::Ed25519).await;
        app.store.write(|tx| tx.execute("UPDATE workspaces SET file_sent_copies = 0", [])).await.unwrap();
        let raw = "From: ann@a.test\r\nTo: carl@a.test\r\nSubject: x\r\n\r\nhi\r\n";
        let prepared = prepare(&app, outgoing(raw, &["carl@a.test"])).await.unwrap();
        let now = app.clock.unix();
        let sent = app
            .store
            .write(move |tx| {
                enqueue(tx, &prepared, now)?;
                Ok::<_, Error>(mailstore::list(tx, 1, "Sent")?)
            })
            .await
            .unwrap();
        assert!(sent.is_empty());
    }

    #[tokio::test]
    async fn a_local_domain_address_of_nobody_bounces_at_once_with_a_dsn_in_the_sender_s_inbox() {
        let (_dir, app, _key) = app_with(DkimAlgorithm::Ed25519).await;
        let raw = "From: ann@a.test\r\nTo: nobody@a.test\r\nSubject: Hello\r\n\r\nHi\r\n";
        let prepared = prepare(&app, outgoing(raw, &["nobody@a.test"])).await.unwrap();
        let now = app.clock.unix();
        let (ids, row, suppressed) = app
            .store
            .write(move |tx| {
                let ids = enqueue(tx, &prepared, now)?;
                let row: (QueueStatus, Option<BounceClass>, String) = tx.query_row(
                    "SELECT status, bounce_class, last_status FROM queue WHERE recipient = 'nobody@a.test'",
                    [],
                    |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
                )?;
                Ok::<_, Error>((ids, row, crate::suppression::reason(tx, 1, "nobody@a.test")?))
            })
            .await
            .unwrap();
        assert!(ids.is_empty(), "nothing for the delivery workers");
        assert_eq!(row, (QueueStatus::Bounced, Some(BounceClass::Hard), "5.1.1".to_string()));
        assert_eq!(suppressed.as_deref(), Some("hard_bounce"));
        let inbox = app.store.read(|c| mailstore::list(c, 1, "INBOX")).await.unwrap();
        assert_eq!(inbox.len(), 1, "the DSN reached the sender");
        let message = mail_parser::MessageParser::default().parse(&inbox[0].raw).expect("parses");
        assert_eq!(message.subject(), Some(dsn::FAILED_SUBJECT));
        assert!(text(&inbox[0].raw).contains("Final-Recipient: rfc822; nobody@a.test"));
        let bounces = app
            .store
            .read(|c| events::latest(c, &events::Filter { kind: Some(Kind::Bounced), ..Default::default() }, 10))
            .await
            .unwrap();
        assert_eq!(bounces.len(), 1, "our own DSN, received and classified, does not count the bounce twice");

        // `send` leaves a wake-up for the delivery workers when it queues something.
        let raw = "From: ann@a.test\r\nSubject: x\r\n\r\nhi\r\n";
        let ids = send(&app, outgoing(raw, &["far@r.test"])).await.unwrap();
        assert_eq!(ids.len(), 1);
        tokio::time::timeout(Duration::from_secs(1), app.wakeup.notified()).await.expect("workers woken");
    }

    #[tokio::test]
    async fn aliases_plus_addresses_and_the_catch_all_deliver_locally_and_replies_between_mailboxes_count() {
        let (_dir, app, _key) = app_with(DkimAlgorithm::Ed25519).await;
        app.store
            .write(|tx| {
                tx.execute_batch(
                    "INSERT INTO aliases (id, workspace_id, domain_id, local_part, address, created_at)
                        VALUES (1, 1, 1, 'team', 'team@a.test', 0);
                     INSERT INTO alias_targets (alias_id, mailbox_id) VALUES (1, 1), (1, 2);
                     UPDATE domains SET catch_all_mailbox_id = 2 WHERE id = 1;",
                )
            })
            .await
            .unwrap();
        let raw = "From: ann@a.test\r\nTo: team@a.test\r\nSubject: Plan\r\nMessage-ID: <plan@a.test>\r\n\r\nHi\r\n";
        let prepared =
            prepare(&app, outgoing(raw, &["team@a.test", "carl+q3@a.test", "whoever@a.test"])).await.unwrap();
        let now = app.clock.unix();
        let ids = app.store.write(move |tx| enqueue(tx, &prepared, now)).await.unwrap();
        assert!(ids.is_empty(), "nothing queued for remote delivery");
        let (ann, carl) = app
            .store
            .read(|c| Ok::<_, Error>((mailstore::list(c, 1, "INBOX")?, mailstore::list(c, 2, "INBOX")?)))
            .await
            .unwrap();
        assert_eq!((ann.len(), carl.len()), (1, 1), "one copy per mailbox, however many recipients reach it");

        // Carl answers Ann's message from his own mailbox: a reply, linked to what it answers.
        let mut answer = outgoing(
            "From: carl@a.test\r\nTo: ann@a.test\r\nSubject: Re: Plan\r\nIn-Reply-To: <plan@a.test>\r\n\r\nYes\r\n",
            &["ann@a.test"],
        );
        (answer.mailbox_id, answer.mail_from) = (Some(2), "carl@a.test".into());
        let prepared = prepare(&app, answer).await.unwrap();
        let now = app.clock.unix();
        app.store.write(move |tx| enqueue(tx, &prepared, now)).await.unwrap();
        let (replies, answered) = app
            .store
            .read(|c| {
                let replies = events::latest(c, &events::Filter { kind: Some(Kind::Reply), ..Default::default() }, 10)?;
                let answered: Option<i64> = c.query_row(
                    "SELECT answers_message FROM mail WHERE message_id LIKE '%@mail.grove.test' \
                     AND classification = 'personal' AND folder_id IN (SELECT id FROM folders WHERE mailbox_id = 1 \
                     AND name = 'INBOX') ORDER BY id DESC LIMIT 1",
                    [],
                    |r| r.get(0),
                )?;
                Ok::<_, Error>((replies, answered))
            })
            .await
            .unwrap();
        assert_eq!(replies.len(), 1, "{replies:?}");
        assert_eq!((replies[0].mailbox_id, replies[0].peer.as_str()), (Some(1), "carl@a.test"));
        assert_eq!(replies[0].message_id, "plan@a.test", "the reply names the message it answers");
        assert!(answered.is_some(), "threaded to the sent message");
    }
}
