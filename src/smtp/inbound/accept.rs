//! Taking responsibility for an inbound message: it is classified and its threading facts read
//! (on a blocking thread: parsing a large message is CPU work), then one write transaction, per
//! distinct recipient mailbox: `mailstore::deliver` into INBOX (or Spam when quarantined; it also
//! announces the new mail to IMAP sessions after the commit), the
//! thread link, the classification stored on the row, and the classification's effects (events,
//! suppression, late bounces; none for quarantined mail, which may be forged). The caller answers
//! 250 only after this returns: the message is committed.
//!
//! A mailto List-Unsubscribe request (a recipient `unsubscribe+…@domain`) is stored nowhere: in
//! the same transaction, its address is checked against the envelope sender and then the From
//! address (the MAC binds the recipient it was issued to, `mta::unsubscribe`), and the first that
//! matches is unsubscribed. One that matches neither is accepted and dropped with a warning (a
//! refusal would only make the requester's provider send a bounce nobody reads).

use crate::app::App;
use crate::error::{Error, Result};
use crate::mailstore::classify::{self, Classification};
use crate::mailstore::thread::{self, ThreadFacts};
use crate::mailstore::{self};
use crate::mta::unsubscribe;

use super::effects::{self, Context};
use super::recipients::{self, Local};

/// A message to store.
#[derive(Debug, Clone)]
pub struct Incoming {
    /// The message as it will be stored (our trace headers already prepended).
    pub raw: Vec<u8>,
    /// The envelope sender; "" for the null reverse-path.
    pub mail_from: String,
    /// The accepted envelope recipients.
    pub recipients: Vec<String>,
    /// Filed to Spam (DMARC quarantine) instead of INBOX.
    pub quarantine: bool,
}

/// What was stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stored {
    /// The mailboxes that received it.
    pub mailboxes: Vec<i64>,
    /// `mail.classification` (see [`Classification::kind`]).
    pub kind: &'static str,
}

/// Stores the message (see the module doc). `NotFound` when no recipient resolves any more (the
/// mailboxes were deleted since RCPT).
pub async fn store(app: &App, incoming: Incoming) -> Result<Stored> {
    let Incoming { raw, mail_from, recipients, quarantine } = incoming;
    let (raw, mail_from, classification, facts) = tokio::task::spawn_blocking(move || {
        let classification = classify::classify(&raw, &mail_from);
        let facts = ThreadFacts::read(&raw);
        (raw, mail_from, classification, facts)
    })
    .await
    .map_err(|e| Error::Internal(format!("classifying task failed: {e}")))?;
    let hostname = app.config.hostname.clone();
    let now = app.clock.unix();
    let announcer = mailstore::Announcer::new(app);
    let keys = app.keys.clone();
    app.store
        .write(move |tx| {
            let targets = resolve_all(tx, &recipients, &hostname)?;
            let requests: Vec<&str> = recipients.iter().filter_map(|r| unsubscribe_local_part(r)).collect();
            if targets.is_empty() && requests.is_empty() {
                return Err(Error::NotFound);
            }
            if !quarantine {
                for local in requests {
                    unsubscribe_by_mail(tx, &keys, local, [mail_from.as_str(), facts.from.as_str()], now)?;
                }
            }
            for target in &targets {
                store_one(tx, &announcer, *target, &raw, quarantine, &classification, &facts, now)?;
            }
            Ok(Stored { mailboxes: targets.iter().map(|t| t.mailbox_id).collect(), kind: classification.kind() })
        })
        .await
}

/// The distinct mailboxes of the recipients that still resolve (an alias gives several; a mailbox
/// reached through two recipients gets one copy).
fn resolve_all(conn: &rusqlite::Connection, recipients: &[String], hostname: &str) -> Result<Vec<Local>> {
    let mut targets: Vec<Local> = Vec::new();
    for recipient in recipients {
        let Ok(locals) = recipients::resolve(conn, recipient, hostname)? else { continue };
        for local in locals {
            if !targets.iter().any(|t| t.mailbox_id == local.mailbox_id) {
                targets.push(local);
            }
        }
    }
    Ok(targets)
}

/// The local part of a mailto List-Unsubscribe recipient.
fn unsubscribe_local_part(recipient: &str) -> Option<&str> {
    let (local, _) = recipient.trim().rsplit_once('@')?;
    recipients::is_unsubscribe(local).then_some(local)
}

/// Acts on one mailto unsubscribe request: the first of `senders` it was issued to is unsubscribed.
fn unsubscribe_by_mail(
    tx: &rusqlite::Transaction,
    keys: &crate::crypto::MasterKey,
    local: &str,
    senders: [&str; 2],
    now: i64,
) -> Result<()> {
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

/// Delivers to one mailbox, links and classifies the stored row, and records the effects.
#[allow(clippy::too_many_arguments)]
fn store_one(
    tx: &rusqlite::Transaction,
    announcer: &mailstore::Announcer,
    target: Local,
    raw: &[u8],
    quarantine: bool,
    classification: &Classification,
    facts: &ThreadFacts,
    now: i64,
) -> Result<()> {
    let folder = if quarantine { "Spam" } else { "INBOX" };
    let (folder_id, uid) = mailstore::deliver(tx, announcer, target.mailbox_id, folder, raw, now)?;
    let mail_id: i64 =
        tx.query_row("SELECT id FROM mail WHERE folder_id = ?1 AND uid = ?2", (folder_id, uid), |row| row.get(0))?;
    let link = thread::link(tx, target.workspace_id, target.mailbox_id, mail_id, facts, now)?;
    tx.prepare_cached("UPDATE mail SET classification = ?1 WHERE id = ?2")?
        .execute((classification.kind(), mail_id))?;
    if quarantine {
        return Ok(());
    }
    let ctx = Context {
        workspace_id: target.workspace_id,
        mailbox_id: target.mailbox_id,
        link: &link,
        sender: &facts.from,
        subject: &facts.subject,
        now,
    };
    effects::record(tx, &ctx, classification)
}
