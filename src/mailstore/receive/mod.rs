//! The one way into the mail store: mail from outside (the inbound MX) and mail between
//! mailboxes of the appliance (`mta::enqueue`'s local branch) are received the same way.
//!
//! Before the write (CPU work, on a blocking thread for mail from outside): the message is
//! classified and its threading facts read ([`Facts`]). Then, inside the caller's transaction:
//! 1. each recipient is resolved (`mailbox::resolve`); one that no longer resolves (a mailbox
//!    deleted since RCPT) is skipped, and a mailbox reached through several recipients gets one
//!    copy;
//! 2. a mailto List-Unsubscribe request (a recipient `unsubscribe+…@domain`) is stored nowhere: its
//!    address is checked against the envelope sender and then the From address (the MAC binds
//!    the recipient it was issued to, `mta::unsubscribe`), and the first that matches is
//!    unsubscribed; one that matches neither is dropped with a warning (a refusal would only make
//!    the requester's provider send a bounce nobody reads);
//! 3. every mailbox gets the message with our trace headers on top ([`trace_headers`]):
//!    `Return-Path` (the envelope sender, RFC 5321 §4.4), `Received` for this hop, and for mail
//!    from outside the `Authentication-Results` of its verification; into INBOX, or Spam when
//!    quarantined (DMARC). `mailstore::deliver` stores it and announces it to IMAP sessions (IDLE)
//!    after the commit;
//! 4. the stored row is linked into its thread ([`thread`](super::thread)) and its classification
//!    recorded, and the classification's effects are written ([`effects`]: replies, automatic
//!    replies, DSNs through `mta::bounce`, complaints, removal requests; none for quarantined mail,
//!    which may be forged).
//!
//! Warmup mail (a valid mark of the receiving workspace, `warmup::marker`) skips steps 3 and 4:
//! it is filed read in the mailbox's `Warmup` folder and handed to `warmup::engage`.
//!
//! The caller acknowledges the message only after the transaction commits.

pub mod effects;

use std::net::IpAddr;

use rusqlite::Transaction;

use crate::crypto::MasterKey;
use crate::error::{Error, Result};
use crate::mailbox::resolve::{self, Local, Resolved};
use crate::mailstore::classify::{self, Classification};
use crate::mailstore::thread::{self, ThreadFacts};
use crate::mailstore::{self, Announcer};
use crate::tracking::unsubscribe;

use effects::Context;

/// Where a message comes from.
#[derive(Debug, Clone, Copy)]
pub enum Origin<'a> {
    /// Over SMTP from another server (the inbound MX).
    Outside {
        /// The client's address.
        peer: IpAddr,
        /// The name it gave in EHLO/HELO.
        helo: &'a str,
        tls: bool,
        /// The `Authentication-Results: ...\r\n` field of its verification.
        authentication_results: &'a str,
    },
    /// From a mailbox of this appliance.
    Local,
}

/// What the message is, read once from its bytes.
#[derive(Debug, Clone)]
pub struct Facts {
    pub classification: Classification,
    pub thread: ThreadFacts,
    /// The warmup mark header's value, when the message has one (checked per receiving workspace).
    pub warmup_mark: Option<String>,
}

impl Facts {
    /// Classifies and reads the threading facts; `mail_from` is the envelope sender.
    pub fn read(raw: &[u8], mail_from: &str) -> Facts {
        Facts {
            classification: classify::classify(raw, mail_from),
            thread: ThreadFacts::read(raw),
            warmup_mark: warmup_mark(raw),
        }
    }
}

/// A message to receive.
#[derive(Debug, Clone, Copy)]
pub struct Arrival<'a> {
    /// The message as it arrived (without our trace headers).
    pub raw: &'a [u8],
    /// The envelope sender; "" for the null reverse-path.
    pub mail_from: &'a str,
    /// The envelope recipients.
    pub recipients: &'a [String],
    /// Filed to Spam (DMARC quarantine) instead of INBOX, without effects.
    pub quarantine: bool,
    pub origin: Origin<'a>,
}

/// What the receiving side needs from the appliance.
#[derive(Clone, Copy)]
pub struct Receiver<'a> {
    /// The appliance's host name (trace headers, the bare `postmaster`).
    pub hostname: &'a str,
    /// Verifies mailto unsubscribe addresses.
    pub keys: &'a MasterKey,
    /// Tells IMAP sessions about the new mail after the commit.
    pub announcer: &'a Announcer,
}

/// What was received.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Received {
    /// The mailboxes that got a copy.
    pub mailboxes: Vec<i64>,
    /// `mail.classification` (see [`Classification::kind`]).
    pub kind: &'static str,
}

/// Receives a message (see the module doc) in the caller's transaction. `NotFound` when no
/// recipient resolves any more and none is an unsubscribe request.
pub fn receive(
    tx: &Transaction,
    receiver: &Receiver<'_>,
    arrival: &Arrival<'_>,
    facts: &Facts,
    now: i64,
) -> Result<Received> {
    let (targets, requests) = resolve_all(tx, arrival.recipients, receiver.hostname)?;
    if targets.is_empty() && requests.is_empty() {
        return Err(Error::NotFound);
    }
    if !arrival.quarantine {
        for local in requests {
            let senders = [arrival.mail_from, facts.thread.from.as_str()];
            unsubscribe_by_mail(tx, receiver.keys, local, senders, now)?;
        }
    }
    if !targets.is_empty() {
        let raw = [trace_headers(receiver.hostname, arrival, now).as_bytes(), arrival.raw].concat();
        for target in &targets {
            if is_warmup(receiver.keys, *target, facts) {
                store_warmup(tx, receiver.announcer, *target, &raw, arrival.quarantine, facts, now)?;
            } else {
                store_one(tx, receiver.announcer, *target, &raw, arrival.quarantine, facts, now)?;
            }
        }
    }
    Ok(Received { mailboxes: targets.iter().map(|t| t.mailbox_id).collect(), kind: facts.classification.kind() })
}

/// The distinct mailboxes of the recipients that still resolve, and the local parts of the
/// unsubscribe requests among them.
fn resolve_all<'r>(
    conn: &rusqlite::Connection,
    recipients: &'r [String],
    hostname: &str,
) -> Result<(Vec<Local>, Vec<&'r str>)> {
    let (mut targets, mut requests): (Vec<Local>, Vec<&str>) = (Vec::new(), Vec::new());
    for recipient in recipients {
        match resolve::resolve(conn, recipient, hostname)? {
            Ok(Resolved::Mailboxes(found)) => {
                for local in found {
                    if !targets.iter().any(|t| t.mailbox_id == local.mailbox_id) {
                        targets.push(local);
                    }
                }
            }
            Ok(Resolved::Unsubscribe) => {
                requests.extend(recipient.trim().rsplit_once('@').map(|(local, _)| local));
            }
            Err(_) => {}
        }
    }
    Ok((targets, requests))
}

/// Our trace header fields for this hop, in the order they go on top of the message:
/// `Return-Path`, then `Authentication-Results` (mail from outside), then `Received`.
pub fn trace_headers(hostname: &str, arrival: &Arrival<'_>, now: i64) -> String {
    let date = chrono::DateTime::from_timestamp(now, 0).unwrap_or_default().to_rfc2822();
    let return_path = format!("Return-Path: <{}>\r\n", arrival.mail_from.trim());
    match arrival.origin {
        Origin::Outside { peer, helo, tls, authentication_results } => {
            let helo: String = helo.chars().filter(|c| c.is_ascii_graphic()).take(255).collect();
            let helo = if helo.is_empty() { "unknown".to_string() } else { helo };
            let protocol = if tls { "ESMTPS" } else { "ESMTP" };
            format!(
                "{return_path}{authentication_results}Received: from {helo} ({peer})\r\n\tby {hostname} (InboxGrove) \
                 with {protocol};\r\n\t{date}\r\n"
            )
        }
        Origin::Local => {
            format!("{return_path}Received: by {hostname} (InboxGrove) for local delivery;\r\n\t{date}\r\n")
        }
    }
}

/// Acts on one mailto unsubscribe request: the first of `senders` it was issued to is unsubscribed.
fn unsubscribe_by_mail(tx: &Transaction, keys: &MasterKey, local: &str, senders: [&str; 2], now: i64) -> Result<()> {
    let found = senders.iter().filter(|s| !s.is_empty()).find_map(|s| unsubscribe::verify_mailto(keys, local, s));
    let Some(subscriber) = found else {
        tracing::warn!(address = local, senders = ?senders, "a mailto unsubscribe request from an address it was not issued to; ignored");
        return Ok(());
    };
    match unsubscribe::record(tx, &subscriber, "mailto", now) {
        Err(Error::NotFound) => {
            tracing::warn!(address = local, "a mailto unsubscribe request for a workspace that no longer exists");
            Ok(())
        }
        other => other.map(|_| ()),
    }
}

/// The value of the warmup mark header, if any.
fn warmup_mark(raw: &[u8]) -> Option<String> {
    let message = mail_parser::MessageParser::default().parse_headers(raw)?;
    message.header_raw(crate::warmup::marker::HEADER).map(|value| value.trim().to_string())
}

/// Whether the message carries a valid warmup mark of the receiving mailbox's workspace.
fn is_warmup(keys: &MasterKey, target: Local, facts: &Facts) -> bool {
    facts
        .warmup_mark
        .as_deref()
        .is_some_and(|mark| crate::warmup::marker::verify(keys, target.workspace_id, &facts.thread.message_id, mark))
}

/// Files warmup mail read in the mailbox's warmup folder, out of the thread and reply views,
/// without classification effects, and lets the receiving member engage (`warmup::engage`).
fn store_warmup(
    tx: &Transaction,
    announcer: &Announcer,
    target: Local,
    raw: &[u8],
    quarantine: bool,
    facts: &Facts,
    now: i64,
) -> Result<()> {
    use crate::warmup::engage::{self, Placement};
    mailstore::imap_ops::ensure_folder(tx, target.mailbox_id, engage::FOLDER, now)?;
    mailstore::deliver_flagged(tx, announcer, target.mailbox_id, engage::FOLDER, raw, "\\Seen", now)?;
    let placement = if quarantine { Placement::Spam } else { Placement::Inbox };
    engage::received(tx, target.workspace_id, target.mailbox_id, &facts.thread, placement, now)
}

/// Delivers to one mailbox, links and classifies the stored row, and records the effects.
fn store_one(
    tx: &Transaction,
    announcer: &Announcer,
    target: Local,
    raw: &[u8],
    quarantine: bool,
    facts: &Facts,
    now: i64,
) -> Result<()> {
    let folder = if quarantine { "Spam" } else { "INBOX" };
    let (folder_id, uid) = mailstore::deliver(tx, announcer, target.mailbox_id, folder, raw, now)?;
    let mail_id: i64 =
        tx.query_row("SELECT id FROM mail WHERE folder_id = ?1 AND uid = ?2", (folder_id, uid), |row| row.get(0))?;
    let link = thread::link(tx, target.workspace_id, target.mailbox_id, mail_id, &facts.thread, now)?;
    tx.prepare_cached("UPDATE mail SET classification = ?1 WHERE id = ?2")?
        .execute((facts.classification.kind(), mail_id))?;
    if quarantine {
        return Ok(());
    }
    let ctx = Context {
        workspace_id: target.workspace_id,
        mailbox_id: target.mailbox_id,
        link: &link,
        sender: &facts.thread.from,
        subject: &facts.thread.subject,
        now,
    };
    effects::record(tx, &ctx, &facts.classification)
}
