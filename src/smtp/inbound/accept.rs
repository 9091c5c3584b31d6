//! Taking responsibility for an inbound message: it is classified and its threading facts read
//! (on a blocking thread: parsing a large message is CPU work), then one write transaction, per
//! distinct recipient mailbox: `mailstore::deliver` into INBOX (or Spam when quarantined), the
//! thread link, the classification stored on the row, and the classification's effects (events,
//! suppression, late bounces; none for quarantined mail, which may be forged). The caller answers
//! 250 only after this returns: the message is committed.

use crate::app::App;
use crate::error::{Error, Result};
use crate::mailstore::classify::{self, Classification};
use crate::mailstore::thread::{self, ThreadFacts};
use crate::mailstore::{self};

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
    let (raw, classification, facts) = tokio::task::spawn_blocking(move || {
        let classification = classify::classify(&raw, &mail_from);
        let facts = ThreadFacts::read(&raw);
        (raw, classification, facts)
    })
    .await
    .map_err(|e| Error::Internal(format!("classifying task failed: {e}")))?;
    let hostname = app.config.hostname.clone();
    let now = app.clock.unix();
    app.store
        .write(move |tx| {
            let targets = resolve_all(tx, &recipients, &hostname)?;
            if targets.is_empty() {
                return Err(Error::NotFound);
            }
            for target in &targets {
                store_one(tx, *target, &raw, quarantine, &classification, &facts, now)?;
            }
            Ok(Stored { mailboxes: targets.iter().map(|t| t.mailbox_id).collect(), kind: classification.kind() })
        })
        .await
}

/// The distinct mailboxes of the recipients that still resolve.
fn resolve_all(conn: &rusqlite::Connection, recipients: &[String], hostname: &str) -> Result<Vec<Local>> {
    let mut targets: Vec<Local> = Vec::new();
    for recipient in recipients {
        if let Ok(local) = recipients::resolve(conn, recipient, hostname)?
            && !targets.iter().any(|t| t.mailbox_id == local.mailbox_id)
        {
            targets.push(local);
        }
    }
    Ok(targets)
}

/// Delivers to one mailbox, links and classifies the stored row, and records the effects.
fn store_one(
    tx: &rusqlite::Transaction,
    target: Local,
    raw: &[u8],
    quarantine: bool,
    classification: &Classification,
    facts: &ThreadFacts,
    now: i64,
) -> Result<()> {
    let folder = if quarantine { "Spam" } else { "INBOX" };
    let (folder_id, uid) = mailstore::deliver(tx, target.mailbox_id, folder, raw, now)?;
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
