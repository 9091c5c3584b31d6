//! The mail-store operations IMAP needs beyond delivery: folder listing and management, flag
//! updates, copy, move, expunge, append, `\Recent` claims, subscriptions, and a process-wide
//! change signal for IDLE.
//!
//! UIDs: every message written into a folder takes the folder's `uid_next` (which only grows),
//! exactly as [`super::deliver`] does, so UIDs are never reused within one `uid_validity`. A folder
//! created after another was deleted gets a `uid_validity` greater than any the mailbox has used,
//! so a client that cached the old folder's UIDs sees that they are void (RFC 9051 §2.3.1.1).
//!
//! Flags are stored as one space-separated string per message; callers normalize them.
//!
//! `\Recent` (RFC 3501 §2.3.2): each folder keeps `recent_claimed_uid`, the highest UID some
//! session has been told about. A session that selects the folder read-write (or learns of new
//! mail in it) claims the messages up to the highest UID it knows with [`claim_recent`]; those
//! above the mark as it stood before are `\Recent` for that session alone. Claims run on the one
//! writer thread, so two sessions never both get a message as recent.
//!
//! Subscriptions: `imap_subscriptions` holds what the client chose per folder name; INBOX and
//! the special-use folders count as subscribed unless a row says otherwise.
//! Every function runs inside the caller's transaction (or on a read connection); the caller
//! calls [`MailChanges::notify`] after the commit so IDLE sessions look again.

use rusqlite::{Connection, OptionalExtension, Transaction};
use tokio::sync::broadcast;

use crate::error::{Error, Result};

/// A mailbox's folder as IMAP shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Folder {
    pub id: i64,
    pub name: String,
    /// The SPECIAL-USE attribute (`\Junk`, `\Sent`, ...), if any.
    pub special_use: Option<String>,
    pub uid_validity: i64,
    pub uid_next: i64,
}

/// One message's UID and flags, without its body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MessageFlags {
    pub uid: i64,
    pub flags: String,
}

/// Counts for STATUS and SELECT.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct FolderCounts {
    pub messages: i64,
    pub unseen: i64,
    /// Messages no session has been told about yet (`\Recent` for the next one).
    pub recent: i64,
}

/// A message copied or moved: its UID in the source and in the destination.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Copied {
    pub source_uid: i64,
    pub target_uid: i64,
}

/// Signals "this mailbox's mail changed" to every IMAP session (IDLE wakes on it). Sent after
/// the commit that made the change; receivers that lag simply look again.
#[derive(Debug, Clone)]
pub struct MailChanges {
    sender: broadcast::Sender<i64>,
}

impl Default for MailChanges {
    fn default() -> Self {
        MailChanges { sender: broadcast::channel(1024).0 }
    }
}

impl MailChanges {
    /// Tells sessions of `mailbox_id` to look for new, changed or removed messages.
    pub fn notify(&self, mailbox_id: i64) {
        let _ = self.sender.send(mailbox_id);
    }

    /// A receiver of the mailbox ids whose mail changed.
    pub fn subscribe(&self) -> broadcast::Receiver<i64> {
        self.sender.subscribe()
    }
}

const FOLDER_COLUMNS: &str = "id, name, special_use, uid_validity, uid_next";

fn folder_from_row(row: &rusqlite::Row<'_>) -> rusqlite::Result<Folder> {
    Ok(Folder {
        id: row.get(0)?,
        name: row.get(1)?,
        special_use: row.get(2)?,
        uid_validity: row.get(3)?,
        uid_next: row.get(4)?,
    })
}

/// The stored form of a folder name: `INBOX` in any case is `INBOX` (RFC 9051 §5.1).
pub fn canonical_name(name: &str) -> &str {
    if name.eq_ignore_ascii_case("INBOX") { "INBOX" } else { name }
}

/// All folders of a mailbox, INBOX first, then by name.
pub fn folders(conn: &Connection, mailbox_id: i64) -> rusqlite::Result<Vec<Folder>> {
    conn.prepare_cached(&format!(
        "SELECT {FOLDER_COLUMNS} FROM folders WHERE mailbox_id = ?1 ORDER BY name <> 'INBOX', name"
    ))?
    .query_map([mailbox_id], folder_from_row)?
    .collect()
}

/// One folder of a mailbox by name.
pub fn folder(conn: &Connection, mailbox_id: i64, name: &str) -> rusqlite::Result<Option<Folder>> {
    conn.prepare_cached(&format!("SELECT {FOLDER_COLUMNS} FROM folders WHERE mailbox_id = ?1 AND name = ?2"))?
        .query_row((mailbox_id, canonical_name(name)), folder_from_row)
        .optional()
}

/// The folder's `uid_next`, or `None` when the folder is gone.
pub fn uid_next(conn: &Connection, folder_id: i64) -> rusqlite::Result<Option<i64>> {
    conn.prepare_cached("SELECT uid_next FROM folders WHERE id = ?1")?
        .query_row([folder_id], |row| row.get(0))
        .optional()
}

/// Messages, messages without `\Seen`, and messages above the `\Recent` mark in a folder.
pub fn counts(conn: &Connection, folder_id: i64) -> rusqlite::Result<FolderCounts> {
    conn.prepare_cached(
        "SELECT count(*), coalesce(sum(' ' || m.flags || ' ' NOT LIKE '% \\Seen %'), 0), \
         coalesce(sum(m.uid > f.recent_claimed_uid), 0) \
         FROM mail m JOIN folders f ON f.id = m.folder_id WHERE m.folder_id = ?1",
    )?
    .query_row([folder_id], |row| Ok(FolderCounts { messages: row.get(0)?, unseen: row.get(1)?, recent: row.get(2)? }))
}

/// The folder's `\Recent` mark: the highest UID a session has been told about (0 when the
/// folder is gone).
pub fn recent_mark(conn: &Connection, folder_id: i64) -> rusqlite::Result<i64> {
    conn.prepare_cached("SELECT recent_claimed_uid FROM folders WHERE id = ?1")?
        .query_row([folder_id], |row| row.get(0))
        .optional()
        .map(Option::unwrap_or_default)
}

/// Claims the messages up to `up_to` for one session: raises the folder's `\Recent` mark to
/// `up_to` when it is lower, and returns the mark as it was (the session's messages above it
/// are `\Recent` there).
pub fn claim_recent(tx: &Transaction, folder_id: i64, up_to: i64) -> rusqlite::Result<i64> {
    let before = recent_mark(tx, folder_id)?;
    if before < up_to {
        tx.prepare_cached("UPDATE folders SET recent_claimed_uid = ?2 WHERE id = ?1")?.execute((folder_id, up_to))?;
    }
    Ok(before)
}

/// The folder names a mailbox is subscribed to, INBOX first: the names the client subscribed,
/// and INBOX and the special-use folders unless the client unsubscribed them.
pub fn subscriptions(conn: &Connection, mailbox_id: i64) -> rusqlite::Result<Vec<String>> {
    conn.prepare_cached(
        "SELECT name FROM ( \
           SELECT name FROM imap_subscriptions WHERE mailbox_id = ?1 AND subscribed = 1 \
           UNION \
           SELECT f.name FROM folders f WHERE f.mailbox_id = ?1 AND (f.name = 'INBOX' OR f.special_use IS NOT NULL) \
             AND NOT EXISTS (SELECT 1 FROM imap_subscriptions s WHERE s.mailbox_id = ?1 AND s.name = f.name) \
         ) ORDER BY name <> 'INBOX', name",
    )?
    .query_map([mailbox_id], |row| row.get(0))?
    .collect()
}

/// Records SUBSCRIBE (`subscribed`) or UNSUBSCRIBE of a folder name.
pub fn set_subscribed(tx: &Transaction, mailbox_id: i64, name: &str, subscribed: bool) -> rusqlite::Result<()> {
    tx.prepare_cached(
        "INSERT INTO imap_subscriptions (mailbox_id, name, subscribed) VALUES (?1, ?2, ?3) \
         ON CONFLICT (mailbox_id, name) DO UPDATE SET subscribed = ?3",
    )?
    .execute((mailbox_id, canonical_name(name), subscribed))?;
    Ok(())
}

/// Carries a folder's subscription choice to its new name (RENAME).
fn rename_subscription(tx: &Transaction, mailbox_id: i64, from: &str, to: &str) -> rusqlite::Result<()> {
    tx.prepare_cached("DELETE FROM imap_subscriptions WHERE mailbox_id = ?1 AND name = ?2")?
        .execute((mailbox_id, to))?;
    tx.prepare_cached("UPDATE imap_subscriptions SET name = ?3 WHERE mailbox_id = ?1 AND name = ?2")?
        .execute((mailbox_id, from, to))?;
    Ok(())
}

/// Every message's UID and flags in a folder, by UID.
pub fn message_flags(conn: &Connection, folder_id: i64) -> rusqlite::Result<Vec<MessageFlags>> {
    conn.prepare_cached("SELECT uid, flags FROM mail WHERE folder_id = ?1 ORDER BY uid")?
        .query_map([folder_id], |row| Ok(MessageFlags { uid: row.get(0)?, flags: row.get(1)? }))?
        .collect()
}

/// A stored message as FETCH and SEARCH read it.
#[derive(Debug, Clone)]
pub struct MessageBody {
    pub uid: i64,
    pub flags: String,
    pub size: i64,
    pub received_at: i64,
    pub raw: Vec<u8>,
}

/// The messages with these UIDs that still exist, in the order given; `raw` is empty unless
/// `with_body`.
pub fn bodies(conn: &Connection, folder_id: i64, uids: &[i64], with_body: bool) -> rusqlite::Result<Vec<MessageBody>> {
    let mut stmt = conn.prepare_cached(
        "SELECT uid, flags, size, received_at, CASE WHEN ?3 THEN body ELSE x'' END FROM mail \
         WHERE folder_id = ?1 AND uid = ?2",
    )?;
    let mut found = Vec::with_capacity(uids.len());
    for &uid in uids {
        let body = stmt
            .query_row((folder_id, uid, with_body), |row| {
                Ok(MessageBody {
                    uid: row.get(0)?,
                    flags: row.get(1)?,
                    size: row.get(2)?,
                    received_at: row.get(3)?,
                    raw: row.get(4)?,
                })
            })
            .optional()?;
        found.extend(body);
    }
    Ok(found)
}

/// One message's flags before and after [`update_flags`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FlagChange {
    pub uid: i64,
    pub before: String,
    pub after: String,
}

/// Applies `change` to the flags the listed messages have in the store now (not to what some
/// session last saw of them, which another session may have changed since), writing those that
/// differ; returns every listed message that still exists, changed or not.
pub fn update_flags(
    tx: &Transaction,
    folder_id: i64,
    uids: &[i64],
    change: impl Fn(&str) -> String,
) -> rusqlite::Result<Vec<FlagChange>> {
    let mut current = tx.prepare_cached("SELECT flags FROM mail WHERE folder_id = ?1 AND uid = ?2")?;
    let mut update = tx.prepare_cached("UPDATE mail SET flags = ?3 WHERE folder_id = ?1 AND uid = ?2")?;
    let mut changes = Vec::with_capacity(uids.len());
    for &uid in uids {
        let Some(before) = current.query_row((folder_id, uid), |row| row.get::<_, String>(0)).optional()? else {
            continue;
        };
        let after = change(&before);
        if after != before {
            update.execute((folder_id, uid, &after))?;
        }
        changes.push(FlagChange { uid, before, after });
    }
    Ok(changes)
}

/// Takes the folder's next UID and advances `uid_next`.
fn take_uid(tx: &Transaction, folder_id: i64) -> rusqlite::Result<i64> {
    tx.prepare_cached("UPDATE folders SET uid_next = uid_next + 1 WHERE id = ?1 RETURNING uid_next - 1")?
        .query_row([folder_id], |row| row.get(0))
}

/// Copies the listed messages (those that still exist) into `target`, in UID order, each with
/// a new UID there and its flags and internal date kept.
pub fn copy(tx: &Transaction, source: i64, target: i64, uids: &[i64]) -> rusqlite::Result<Vec<Copied>> {
    let mut sorted = uids.to_vec();
    sorted.sort_unstable();
    sorted.dedup();
    let mut exists = tx.prepare_cached("SELECT EXISTS (SELECT 1 FROM mail WHERE folder_id = ?1 AND uid = ?2)")?;
    let mut insert = tx.prepare_cached(
        "INSERT INTO mail (folder_id, uid, flags, message_id, size, body, received_at) \
         SELECT ?3, ?4, flags, message_id, size, body, received_at FROM mail WHERE folder_id = ?1 AND uid = ?2",
    )?;
    let mut copied = Vec::new();
    for source_uid in sorted {
        if !exists.query_row((source, source_uid), |row| row.get::<_, bool>(0))? {
            continue;
        }
        let target_uid = take_uid(tx, target)?;
        insert.execute((source, source_uid, target, target_uid))?;
        copied.push(Copied { source_uid, target_uid });
    }
    Ok(copied)
}

/// Removes the listed messages from a folder; returns the UIDs that existed.
pub fn remove(tx: &Transaction, folder_id: i64, uids: &[i64]) -> rusqlite::Result<Vec<i64>> {
    let mut delete = tx.prepare_cached("DELETE FROM mail WHERE folder_id = ?1 AND uid = ?2")?;
    let mut removed = Vec::new();
    for &uid in uids {
        if delete.execute((folder_id, uid))? > 0 {
            removed.push(uid);
        }
    }
    Ok(removed)
}

/// Permanently removes the messages flagged `\Deleted` (only those in `only`, when given, for
/// UID EXPUNGE); returns their UIDs.
pub fn expunge(tx: &Transaction, folder_id: i64, only: Option<&[i64]>) -> rusqlite::Result<Vec<i64>> {
    let deleted: Vec<i64> = tx
        .prepare_cached(
            "SELECT uid FROM mail WHERE folder_id = ?1 AND ' ' || flags || ' ' LIKE '% \\Deleted %' ORDER BY uid",
        )?
        .query_map([folder_id], |row| row.get(0))?
        .collect::<rusqlite::Result<_>>()?;
    let chosen: Vec<i64> = match only {
        Some(allowed) => deleted.into_iter().filter(|uid| allowed.contains(uid)).collect(),
        None => deleted,
    };
    remove(tx, folder_id, &chosen)
}

/// What APPEND stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Appended {
    pub uid: i64,
    /// True when an identical Message-ID was already in this `\Sent` folder and no copy was added.
    pub deduplicated: bool,
}

/// Stores a client's message in a folder with its flags and internal date. In a `\Sent` folder,
/// a message whose Message-ID is already there (the copy the appliance filed when it sent the
/// message) is not stored twice: the existing one gains the flags and its UID is returned.
pub fn append(tx: &Transaction, folder: &Folder, raw: &[u8], flags: &str, received_at: i64) -> Result<Appended> {
    let message_id = message_id_of(raw);
    if folder.special_use.as_deref() == Some("\\Sent")
        && !message_id.is_empty()
        && let Some((uid, existing)) = sent_copy(tx, folder.id, &message_id)?
    {
        let merged = merge_flag_strings(&existing, flags);
        tx.prepare_cached("UPDATE mail SET flags = ?3 WHERE folder_id = ?1 AND uid = ?2")?
            .execute((folder.id, uid, merged))?;
        return Ok(Appended { uid, deduplicated: true });
    }
    let size = i64::try_from(raw.len()).map_err(|_| Error::Internal("message too large".into()))?;
    let uid = take_uid(tx, folder.id)?;
    tx.prepare_cached(
        "INSERT INTO mail (folder_id, uid, flags, message_id, size, body, received_at) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
    )?
    .execute((folder.id, uid, flags, &message_id, size, raw, received_at))?;
    Ok(Appended { uid, deduplicated: false })
}

fn sent_copy(tx: &Transaction, folder_id: i64, message_id: &str) -> rusqlite::Result<Option<(i64, String)>> {
    tx.prepare_cached("SELECT uid, flags FROM mail WHERE folder_id = ?1 AND message_id = ?2 ORDER BY uid LIMIT 1")?
        .query_row((folder_id, message_id), |row| Ok((row.get(0)?, row.get(1)?)))
        .optional()
}

/// The union of two space-separated flag lists, first list's order first.
fn merge_flag_strings(existing: &str, added: &str) -> String {
    let mut all: Vec<&str> = existing.split_whitespace().collect();
    for flag in added.split_whitespace() {
        if !all.iter().any(|have| have.eq_ignore_ascii_case(flag)) {
            all.push(flag);
        }
    }
    all.join(" ")
}

/// The Message-ID of a raw message, without angle brackets, or "".
fn message_id_of(raw: &[u8]) -> String {
    mail_parser::MessageParser::default()
        .parse_headers(raw)
        .and_then(|message| message.message_id().map(str::to_string))
        .unwrap_or_default()
}

/// Creates an empty folder; `Conflict` when the name is taken.
pub fn create_folder(tx: &Transaction, mailbox_id: i64, name: &str, now: i64) -> Result<Folder> {
    let name = canonical_name(name);
    if folder(tx, mailbox_id, name)?.is_some() {
        return Err(Error::Conflict("That folder already exists.".into()));
    }
    let uid_validity = next_uid_validity(tx, mailbox_id, now)?;
    tx.prepare_cached(
        "INSERT INTO folders (mailbox_id, name, special_use, uid_validity, uid_next) VALUES (?1, ?2, NULL, ?3, 1)",
    )?
    .execute((mailbox_id, name, uid_validity))?;
    folder(tx, mailbox_id, name)?.ok_or(Error::NotFound)
}

/// Creates the folder when the mailbox lacks it (a folder the appliance files mail in).
pub fn ensure_folder(tx: &Transaction, mailbox_id: i64, name: &str, now: i64) -> Result<()> {
    match create_folder(tx, mailbox_id, name, now) {
        Ok(_) | Err(Error::Conflict(_)) => Ok(()),
        Err(e) => Err(e),
    }
}

/// A `uid_validity` for a new folder: the current time, or one more than any the mailbox has
/// ever used (folders that exist, and the last one handed out, remembered in `settings` under
/// `imap.uid_validity.<mailbox id>` so that a deleted folder's value is not reused either).
fn next_uid_validity(tx: &Transaction, mailbox_id: i64, now: i64) -> rusqlite::Result<i64> {
    let key = format!("imap.uid_validity.{mailbox_id}");
    let existing: Option<i64> = tx
        .prepare_cached("SELECT max(uid_validity) FROM folders WHERE mailbox_id = ?1")?
        .query_row([mailbox_id], |row| row.get(0))?;
    let handed_out: Option<i64> = tx
        .prepare_cached("SELECT CAST(value AS INTEGER) FROM settings WHERE key = ?1")?
        .query_row([&key], |row| row.get(0))
        .optional()?;
    let highest = existing.into_iter().chain(handed_out).max();
    let uid_validity = highest.map_or(now, |highest| now.max(highest + 1));
    tx.prepare_cached("INSERT INTO settings (key, value) VALUES (?1, ?2) ON CONFLICT (key) DO UPDATE SET value = ?2")?
        .execute((&key, uid_validity.to_string()))?;
    Ok(uid_validity)
}

/// Deletes a folder and its messages. INBOX and the special-use folders stay (`Invalid`).
pub fn delete_folder(tx: &Transaction, mailbox_id: i64, name: &str) -> Result<()> {
    let found = folder(tx, mailbox_id, name)?.ok_or(Error::NotFound)?;
    if found.name == "INBOX" || found.special_use.is_some() {
        return Err(Error::invalid("folder", "INBOX and the special-use folders cannot be deleted."));
    }
    tx.prepare_cached("DELETE FROM folders WHERE id = ?1")?.execute([found.id])?;
    Ok(())
}

/// Renames a folder, keeping its messages, UIDs and subscription. INBOX cannot be renamed
/// (`Invalid`); a taken target name is a `Conflict`.
pub fn rename_folder(tx: &Transaction, mailbox_id: i64, from: &str, to: &str) -> Result<()> {
    let found = folder(tx, mailbox_id, from)?.ok_or(Error::NotFound)?;
    if found.name == "INBOX" || canonical_name(to) == "INBOX" {
        return Err(Error::invalid("folder", "INBOX cannot be renamed."));
    }
    // The folder and everything below it (RFC 3501 §6.3.5), as (id, old name, new name).
    let prefix = format!("{}/", found.name);
    let mut moves = vec![(found.id, found.name.clone(), to.to_string())];
    let children: Vec<(i64, String)> = tx
        .prepare_cached("SELECT id, name FROM folders WHERE mailbox_id = ?1 AND substr(name, 1, length(?2)) = ?2")?
        .query_map((mailbox_id, &prefix), |row| Ok((row.get(0)?, row.get(1)?)))?
        .collect::<rusqlite::Result<_>>()?;
    moves.extend(children.into_iter().map(|(id, name)| {
        let renamed = format!("{to}/{}", &name[prefix.len()..]);
        (id, name, renamed)
    }));
    for (_, _, renamed) in &moves {
        if folder(tx, mailbox_id, renamed)?.is_some() {
            return Err(Error::Conflict("A folder with that name already exists.".into()));
        }
    }
    for (id, name, renamed) in &moves {
        tx.prepare_cached("UPDATE folders SET name = ?2 WHERE id = ?1")?.execute((id, renamed))?;
        rename_subscription(tx, mailbox_id, name, renamed)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mailstore::tests::seed_mailbox as seed;

    /// Three messages into mailbox 1's INBOX (UIDs 1 to 3).
    fn deliver_three(tx: &Transaction) -> crate::error::Result<()> {
        for n in 0..3 {
            let raw = format!("Subject: {n}\r\n\r\nx\r\n");
            super::super::deliver(tx, &super::super::Announcer::silent(), 1, "INBOX", raw.as_bytes(), 100)?;
        }
        Ok(())
    }

    #[tokio::test]
    async fn copy_move_expunge_and_flags_keep_uids_growing() {
        let (_dir, store) = crate::store::open_temp();
        store
            .write(|tx| {
                seed(tx)?;
                deliver_three(tx)?;
                let inbox = folder(tx, 1, "inbox")?.unwrap();
                let spam = folder(tx, 1, "Spam")?.unwrap();
                assert_eq!(spam.special_use.as_deref(), Some("\\Junk"));
                let copied = copy(tx, inbox.id, spam.id, &[3, 1, 99])?;
                assert_eq!(copied, [Copied { source_uid: 1, target_uid: 1 }, Copied { source_uid: 3, target_uid: 2 }]);
                let set = |_: &str| "\\Deleted \\Seen".to_string();
                let changed = update_flags(tx, inbox.id, &[2, 99], set)?;
                assert_eq!(changed, [FlagChange { uid: 2, before: String::new(), after: "\\Deleted \\Seen".into() }]);
                assert_eq!(counts(tx, inbox.id)?, FolderCounts { messages: 3, unseen: 2, recent: 3 });
                assert_eq!(expunge(tx, inbox.id, Some(&[1]))?, Vec::<i64>::new());
                assert_eq!(expunge(tx, inbox.id, None)?, [2]);
                assert_eq!(remove(tx, inbox.id, &[1, 2])?, [1]);
                let left = message_flags(tx, inbox.id)?;
                assert_eq!(left, [MessageFlags { uid: 3, flags: String::new() }]);
                assert_eq!(uid_next(tx, inbox.id)?, Some(4));
                Ok::<_, Error>(())
            })
            .await
            .unwrap();
    }

    #[tokio::test]
    async fn flag_updates_apply_to_the_stored_flags_of_every_message() {
        let (_dir, store) = crate::store::open_temp();
        store
            .write(|tx| {
                seed(tx)?;
                deliver_three(tx)?;
                let inbox = folder(tx, 1, "INBOX")?.unwrap();
                update_flags(tx, inbox.id, &[2], |_| "\\Flagged".into())?;
                let add_answered = |flags: &str| format!("{flags} \\Answered").trim().to_string();
                let changed = update_flags(tx, inbox.id, &[1, 2, 3], add_answered)?;
                let after: Vec<&str> = changed.iter().map(|c| c.after.as_str()).collect();
                assert_eq!(after, ["\\Answered", "\\Flagged \\Answered", "\\Answered"]);
                let stored: Vec<String> = message_flags(tx, inbox.id)?.into_iter().map(|m| m.flags).collect();
                assert_eq!(stored, after, "every message of the set is written, each from its own flags");
                let same = update_flags(tx, inbox.id, &[1], |flags: &str| flags.to_string())?;
                assert_eq!(same[0].before, same[0].after, "an unchanged message is still reported");
                Ok::<_, Error>(())
            })
            .await
            .unwrap();
    }

    #[tokio::test]
    async fn sent_appends_are_deduplicated_and_folders_managed() {
        let (_dir, store) = crate::store::open_temp();
        store
            .write(|tx| {
                seed(tx)?;
                let raw = b"Message-ID: <m1@a.test>\r\nSubject: s\r\n\r\nbody\r\n";
                super::super::deliver(tx, &super::super::Announcer::silent(), 1, "Sent", raw, 100)?;
                let sent = folder(tx, 1, "Sent")?.unwrap();
                let again = append(tx, &sent, raw, "\\Seen", 200)?;
                assert_eq!(again, Appended { uid: 1, deduplicated: true });
                assert_eq!(message_flags(tx, sent.id)?[0].flags, "\\Seen");
                let other = append(tx, &sent, b"Subject: no id\r\n\r\n", "", 200)?;
                assert_eq!(other, Appended { uid: 2, deduplicated: false });

                let made = create_folder(tx, 1, "Projects/2026", 300)?;
                assert_eq!(made.uid_validity, 300);
                assert!(matches!(create_folder(tx, 1, "Projects/2026", 300), Err(Error::Conflict(_))));
                rename_folder(tx, 1, "Projects/2026", "Archive")?;
                assert!(matches!(rename_folder(tx, 1, "INBOX", "X"), Err(Error::Invalid { .. })));
                assert!(matches!(delete_folder(tx, 1, "Spam"), Err(Error::Invalid { .. })));
                delete_folder(tx, 1, "Archive")?;
                let again = create_folder(tx, 1, "Archive", 300)?;
                assert_eq!(again.uid_validity, 301, "a re-created folder never reuses a uid_validity");
                let names: Vec<String> = folders(tx, 1)?.into_iter().map(|f| f.name).collect();
                assert_eq!(names, ["INBOX", "Archive", "Drafts", "Sent", "Spam", "Trash"]);

                // Renaming a parent moves what is below it; a clash anywhere below changes nothing.
                for name in ["Clients", "Clients/Acme", "Clients/Acme/2026", "Clientsx", "Old/Acme"] {
                    create_folder(tx, 1, name, 400)?;
                }
                assert!(matches!(rename_folder(tx, 1, "Clients", "Old"), Err(Error::Conflict(_))));
                rename_folder(tx, 1, "Clients", "Customers")?;
                let names: Vec<String> = folders(tx, 1)?.into_iter().map(|f| f.name).collect();
                for name in ["Customers", "Customers/Acme", "Customers/Acme/2026", "Clientsx", "Old/Acme"] {
                    assert!(names.contains(&name.to_string()), "{name} in {names:?}");
                }
                assert!(!names.iter().any(|n| n.starts_with("Clients/")), "{names:?}");
                Ok::<_, Error>(())
            })
            .await
            .unwrap();
    }

    #[tokio::test]
    async fn recent_is_claimed_once_and_subscriptions_default_to_the_special_folders() {
        let (_dir, store) = crate::store::open_temp();
        store
            .write(|tx| {
                seed(tx)?;
                deliver_three(tx)?;
                let inbox = folder(tx, 1, "INBOX")?.unwrap();
                assert_eq!(counts(tx, inbox.id)?.recent, 3);
                assert_eq!(claim_recent(tx, inbox.id, 2)?, 0, "the first session gets 1 and 2");
                assert_eq!(claim_recent(tx, inbox.id, 3)?, 2, "the next one only 3");
                assert_eq!(claim_recent(tx, inbox.id, 1)?, 3, "the mark never goes down");
                assert_eq!((recent_mark(tx, inbox.id)?, counts(tx, inbox.id)?.recent), (3, 0));

                create_folder(tx, 1, "Entwürfe", 300)?;
                let defaults = ["INBOX", "Drafts", "Sent", "Spam", "Trash"];
                assert_eq!(subscriptions(tx, 1)?, defaults);
                set_subscribed(tx, 1, "Entwürfe", true)?;
                set_subscribed(tx, 1, "Trash", false)?;
                set_subscribed(tx, 1, "Gone", true)?;
                assert_eq!(subscriptions(tx, 1)?, ["INBOX", "Drafts", "Entwürfe", "Gone", "Sent", "Spam"]);
                rename_folder(tx, 1, "Entwürfe", "Brouillons")?;
                rename_folder(tx, 1, "Trash", "Bin")?;
                assert_eq!(subscriptions(tx, 1)?, ["INBOX", "Brouillons", "Drafts", "Gone", "Sent", "Spam"]);
                set_subscribed(tx, 1, "inbox", false)?;
                assert_eq!(subscriptions(tx, 1)?[0], "Brouillons");
                Ok::<_, Error>(())
            })
            .await
            .unwrap();
    }
}
