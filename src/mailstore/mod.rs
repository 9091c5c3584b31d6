//! Stored mail per mailbox and folder, with the UID scheme IMAP needs; local delivery lands here.
//!
//! One path for everything that reaches a mailbox: inbound mail, DSNs and mail between local
//! mailboxes all go through [`deliver`], inside the caller's transaction. It is also the one place
//! that tells IMAP sessions (IDLE) about new mail: through the caller's [`Announcer`], which
//! signals `App::mail_changes` once the transaction that stored the message has committed (a
//! session woken earlier would look before the row is visible and fall back to its poll).
//!
//! "Once committed", without a hook in the store: the announcer hands the writer an empty write
//! after the storing closure has started. The writer runs closures in groups it gathers before
//! running any of them, so that empty write lands in a later group, and its answer comes only
//! after the storing group's COMMIT. Mailboxes announced meanwhile share one such write. A
//! storing closure that fails afterwards leaves a needless signal, which is harmless.
//!
//! Folders: the first delivery to a mailbox creates the standard set — INBOX, Sent (`\Sent`),
//! Spam (`\Junk`), Trash (`\Trash`) and Drafts (`\Drafts`) — each with `uid_validity` = the time
//! of creation. A folder's `uid_next` is the UID the next message gets; it only grows, so UIDs
//! are never reused within one `uid_validity` (RFC 9051 §2.3.1.1).

pub mod classify;
pub mod imap_ops;
pub mod receive;
pub mod thread;

use std::collections::BTreeSet;
use std::sync::{Arc, Mutex};

use rusqlite::{Connection, OptionalExtension, Transaction};
use serde::Serialize;

use crate::app::App;
use crate::error::{Error, Result};
use crate::store::Store;
use imap_ops::MailChanges;

/// The folders every mailbox has, with their SPECIAL-USE attribute (RFC 6154).
pub const STANDARD_FOLDERS: [(&str, Option<&str>); 5] = [
    ("INBOX", None),
    ("Sent", Some("\\Sent")),
    ("Spam", Some("\\Junk")),
    ("Trash", Some("\\Trash")),
    ("Drafts", Some("\\Drafts")),
];

/// One stored message.
#[derive(Debug, Clone, Serialize)]
pub struct StoredMail {
    pub id: i64,
    pub uid: i64,
    /// Space-separated IMAP flags (`\Seen \Flagged`); empty for new mail.
    pub flags: String,
    /// The Message-ID header without angle brackets ("" when absent).
    pub message_id: String,
    pub size: i64,
    pub received_at: i64,
    /// The raw RFC 5322 bytes.
    pub raw: Vec<u8>,
}

/// Announces stored mail to IMAP sessions after the commit (see the module doc). Cheap to clone;
/// senders make one per message or keep one.
#[derive(Clone)]
pub struct Announcer {
    inner: Option<Arc<AnnouncerInner>>,
}

struct AnnouncerInner {
    store: Store,
    changes: MailChanges,
    /// Where the waiting task runs; captured at construction (deliveries run on the writer thread).
    runtime: tokio::runtime::Handle,
    pending: Mutex<Pending>,
}

#[derive(Default)]
struct Pending {
    mailboxes: BTreeSet<i64>,
    /// Whether a task is about to take `mailboxes`.
    scheduled: bool,
}

impl std::fmt::Debug for Announcer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(if self.inner.is_some() { "Announcer" } else { "Announcer(silent)" })
    }
}

impl Announcer {
    /// An announcer for the app's IMAP sessions. Call from within the tokio runtime; outside it
    /// the announcer is silent (IMAP sessions then see new mail at their next poll).
    pub fn new(app: &App) -> Announcer {
        let inner = tokio::runtime::Handle::try_current().ok().map(|runtime| {
            Arc::new(AnnouncerInner {
                store: app.store.clone(),
                changes: app.mail_changes.clone(),
                runtime,
                pending: Mutex::default(),
            })
        });
        Announcer { inner }
    }

    /// An announcer that tells nobody (tests of the storage alone).
    pub fn silent() -> Announcer {
        Announcer { inner: None }
    }

    /// Notes that `mailbox_id` got mail in the running transaction.
    pub fn announce(&self, mailbox_id: i64) {
        let Some(inner) = &self.inner else { return };
        let mut pending = inner.pending.lock().unwrap_or_else(|e| e.into_inner());
        pending.mailboxes.insert(mailbox_id);
        if !pending.scheduled {
            pending.scheduled = true;
            inner.runtime.spawn(announce_after_commit(inner.clone()));
        }
    }
}

/// Takes the pending mailboxes, waits for an empty write (so their commit is done), signals them.
async fn announce_after_commit(inner: Arc<AnnouncerInner>) {
    let mailboxes = {
        let mut pending = inner.pending.lock().unwrap_or_else(|e| e.into_inner());
        pending.scheduled = false;
        std::mem::take(&mut pending.mailboxes)
    };
    if let Err(e) = inner.store.write(|_| Ok::<_, rusqlite::Error>(())).await {
        tracing::warn!(error = %e, "waiting for the commit of new mail failed; IMAP sessions will poll");
    }
    for mailbox in mailboxes {
        inner.changes.notify(mailbox);
    }
}

/// Stores `raw` in the mailbox's `folder`, creating the standard folders on first use, and
/// assigns the next UID; `announcer` tells IMAP sessions once the caller's transaction commits.
/// Returns (folder id, uid). A folder name other than the standard ones must already exist
/// (`NotFound` otherwise); `INBOX` is matched case-insensitively.
pub fn deliver(
    tx: &Transaction,
    announcer: &Announcer,
    mailbox_id: i64,
    folder: &str,
    raw: &[u8],
    now: i64,
) -> Result<(i64, i64)> {
    deliver_flagged(tx, announcer, mailbox_id, folder, raw, "", now)
}

/// [`deliver`] with the flags the message starts with (space-separated, e.g. `\Seen` for the
/// copy of what the mailbox itself sent).
pub fn deliver_flagged(
    tx: &Transaction,
    announcer: &Announcer,
    mailbox_id: i64,
    folder: &str,
    raw: &[u8],
    flags: &str,
    now: i64,
) -> Result<(i64, i64)> {
    ensure_standard_folders(tx, mailbox_id, now)?;
    let folder_id = folder_id(tx, mailbox_id, folder)?.ok_or(Error::NotFound)?;
    let uid = take_uid(tx, folder_id)?;
    let size = i64::try_from(raw.len()).map_err(|_| Error::Internal("message too large".into()))?;
    tx.prepare_cached(
        "INSERT INTO mail (folder_id, uid, flags, message_id, size, body, received_at) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
    )?
    .execute((folder_id, uid, flags, message_id_of(raw), size, raw, now))?;
    announcer.announce(mailbox_id);
    Ok((folder_id, uid))
}

/// Creates the standard folders the mailbox lacks (all of them on first use).
pub fn ensure_standard_folders(tx: &Transaction, mailbox_id: i64, now: i64) -> Result<()> {
    let mut insert = tx.prepare_cached(
        "INSERT INTO folders (mailbox_id, name, special_use, uid_validity, uid_next) VALUES (?1, ?2, ?3, ?4, 1) \
         ON CONFLICT (mailbox_id, name) DO NOTHING",
    )?;
    for (name, special_use) in STANDARD_FOLDERS {
        insert.execute((mailbox_id, name, special_use, now))?;
    }
    Ok(())
}

/// The id of a mailbox's folder by name (`INBOX` in any case, RFC 9051 §5.1).
fn folder_id(conn: &Connection, mailbox_id: i64, folder: &str) -> rusqlite::Result<Option<i64>> {
    let name = if folder.eq_ignore_ascii_case("INBOX") { "INBOX" } else { folder };
    conn.prepare_cached("SELECT id FROM folders WHERE mailbox_id = ?1 AND name = ?2")?
        .query_row((mailbox_id, name), |row| row.get(0))
        .optional()
}

/// Takes the folder's next UID and advances `uid_next`.
fn take_uid(tx: &Transaction, folder_id: i64) -> rusqlite::Result<i64> {
    tx.prepare_cached("UPDATE folders SET uid_next = uid_next + 1 WHERE id = ?1 RETURNING uid_next - 1")?
        .query_row([folder_id], |row| row.get(0))
}

/// The Message-ID of a raw message, without angle brackets, or "".
pub fn message_id_of(raw: &[u8]) -> String {
    mail_parser::MessageParser::default()
        .parse_headers(raw)
        .and_then(|message| message.message_id().map(str::to_string))
        .unwrap_or_default()
}

/// The messages in a mailbox's folder, by UID; empty when the folder does not exist.
pub fn list(conn: &Connection, mailbox_id: i64, folder: &str) -> rusqlite::Result<Vec<StoredMail>> {
    let Some(folder_id) = folder_id(conn, mailbox_id, folder)? else {
        return Ok(Vec::new());
    };
    let mut stmt = conn.prepare_cached(
        "SELECT id, uid, flags, message_id, size, received_at, body FROM mail WHERE folder_id = ?1 ORDER BY uid",
    )?;
    stmt.query_map([folder_id], |row| {
        Ok(StoredMail {
            id: row.get(0)?,
            uid: row.get(1)?,
            flags: row.get(2)?,
            message_id: row.get(3)?,
            size: row.get(4)?,
            received_at: row.get(5)?,
            raw: row.get(6)?,
        })
    })?
    .collect()
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// A workspace, a domain and one mailbox (id 1).
    pub(crate) fn seed_mailbox(tx: &Transaction) -> rusqlite::Result<()> {
        tx.execute_batch(
            "INSERT INTO workspaces (id, name, created_at) VALUES (1, 'w', 0);
             INSERT INTO domains (id, workspace_id, name, created_at) VALUES (1, 1, 'a.test', 0);
             INSERT INTO mailboxes (id, workspace_id, domain_id, local_part, address, first_name, last_name,
                display_name, password_hash, created_at) VALUES (1, 1, 1, 'ann', 'ann@a.test', 'Ann', 'A', 'Ann A', 'x', 0);",
        )
    }

    #[tokio::test]
    async fn first_delivery_creates_the_folders_and_uids_grow() {
        let (_dir, store) = crate::store::open_temp();
        let listed = store
            .write(|tx| {
                seed_mailbox(tx)?;
                let first =
                    deliver(tx, &Announcer::silent(), 1, "INBOX", b"Message-ID: <one@a.test>\r\n\r\nhi\r\n", 100)?;
                let second = deliver(tx, &Announcer::silent(), 1, "inbox", b"Subject: two\r\n\r\nhi\r\n", 101)?;
                assert_eq!(first.0, second.0);
                assert_eq!((first.1, second.1), (1, 2));
                let (_, sent_uid) = deliver(tx, &Announcer::silent(), 1, "Sent", b"Subject: s\r\n\r\n", 102)?;
                assert_eq!(sent_uid, 1);
                assert!(matches!(deliver(tx, &Announcer::silent(), 1, "Nope", b"x", 103), Err(Error::NotFound)));
                let folders: Vec<(String, Option<String>, i64)> = tx
                    .prepare("SELECT name, special_use, uid_validity FROM folders WHERE mailbox_id = 1 ORDER BY id")?
                    .query_map([], |row| Ok((row.get(0)?, row.get(1)?, row.get(2)?)))?
                    .collect::<rusqlite::Result<_>>()?;
                assert_eq!(folders.len(), 5);
                assert!(folders.contains(&("Spam".into(), Some("\\Junk".into()), 100)));
                Ok::<_, Error>(list(tx, 1, "INBOX")?)
            })
            .await
            .unwrap();
        assert_eq!(listed.len(), 2);
        assert_eq!(listed[0].message_id, "one@a.test");
        assert_eq!(listed[1].raw, b"Subject: two\r\n\r\nhi\r\n");
        assert_eq!(listed[1].flags, "");
    }
}
