-- IMAP state kept between sessions: which messages are \Recent, and subscriptions.

-- \Recent (RFC 3501 §2.3.2): the highest UID of the folder that some session has already been
-- told about. The messages above it are \Recent for the next session that learns of them with
-- the folder selected read-write, which moves this mark up in the same transaction. Mail that
-- is already stored when this migration runs counts as seen.
ALTER TABLE folders ADD COLUMN recent_claimed_uid INTEGER NOT NULL DEFAULT 0;
UPDATE folders SET recent_claimed_uid = uid_next - 1;

-- SUBSCRIBE / UNSUBSCRIBE (RFC 3501 §6.3.6-7), by folder name as stored (UTF-8, modified UTF-7
-- decoded). A row records what the client chose; a name without a row is subscribed when it is
-- INBOX or a special-use folder (so they are subscribed by default), and not otherwise. Rows
-- outlive their folder (RFC 3501: a server must not unsubscribe a name by itself); RENAME
-- carries them to the new name.
CREATE TABLE imap_subscriptions (
    mailbox_id INTEGER NOT NULL REFERENCES mailboxes(id) ON DELETE CASCADE,
    name       TEXT NOT NULL,
    subscribed INTEGER NOT NULL CHECK (subscribed IN (0, 1)),
    PRIMARY KEY (mailbox_id, name)
) WITHOUT ROWID;
