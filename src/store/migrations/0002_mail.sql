-- Submission, the outbound queue, suppression, events, and the local mail store.

ALTER TABLE mailboxes ADD COLUMN per_minute INTEGER NOT NULL DEFAULT 0 CHECK (per_minute >= 0);

-- Per-workspace mail settings.
ALTER TABLE workspaces ADD COLUMN list_unsubscribe INTEGER NOT NULL DEFAULT 0;
ALTER TABLE workspaces ADD COLUMN file_sent_copies INTEGER NOT NULL DEFAULT 1;

-- Addresses a workspace never sends to again, and why.
CREATE TABLE suppressions (
    workspace_id INTEGER NOT NULL REFERENCES workspaces(id) ON DELETE CASCADE,
    address      TEXT NOT NULL,
    reason       TEXT NOT NULL CHECK (reason IN ('hard_bounce', 'unsubscribe', 'complaint', 'reply', 'manual')),
    detail       TEXT NOT NULL DEFAULT '',
    created_at   INTEGER NOT NULL,
    PRIMARY KEY (workspace_id, address)
);

-- A message body, stored once (raw RFC 5322 bytes, already DKIM-signed) and referenced by its
-- recipients' queue rows.
CREATE TABLE messages (
    id           INTEGER PRIMARY KEY,
    workspace_id INTEGER NOT NULL REFERENCES workspaces(id) ON DELETE CASCADE,
    mailbox_id   INTEGER REFERENCES mailboxes(id) ON DELETE SET NULL,
    mail_from    TEXT NOT NULL,
    message_id   TEXT NOT NULL DEFAULT '',
    subject      TEXT NOT NULL DEFAULT '',
    size         INTEGER NOT NULL,
    body         BLOB NOT NULL,
    created_at   INTEGER NOT NULL
);

-- One row per recipient of a message: the unit of delivery, retry and bounce.
CREATE TABLE queue (
    id              INTEGER PRIMARY KEY,
    message_id      INTEGER NOT NULL REFERENCES messages(id) ON DELETE CASCADE,
    workspace_id    INTEGER NOT NULL REFERENCES workspaces(id) ON DELETE CASCADE,
    mailbox_id      INTEGER REFERENCES mailboxes(id) ON DELETE SET NULL,
    recipient       TEXT NOT NULL,
    domain          TEXT NOT NULL,
    status          TEXT NOT NULL DEFAULT 'queued'
                    CHECK (status IN ('queued', 'in_flight', 'delivered', 'deferred', 'bounced', 'expired', 'cancelled')),
    attempts        INTEGER NOT NULL DEFAULT 0,
    next_attempt_at INTEGER NOT NULL,
    lease_until     INTEGER,
    last_code       INTEGER,
    last_status     TEXT NOT NULL DEFAULT '',
    last_reply      TEXT NOT NULL DEFAULT '',
    bounce_class    TEXT,
    created_at      INTEGER NOT NULL,
    updated_at      INTEGER NOT NULL
);
CREATE INDEX queue_due ON queue(status, next_attempt_at);
CREATE INDEX queue_workspace ON queue(workspace_id, status);
CREATE INDEX queue_message ON queue(message_id);
CREATE INDEX queue_mailbox ON queue(mailbox_id, created_at);

-- Sends counted per mailbox and day (in the workspace's time zone), maintained in the
-- transaction that queues the message, so caps are checked where the send is recorded.
CREATE TABLE send_counts (
    mailbox_id INTEGER NOT NULL REFERENCES mailboxes(id) ON DELETE CASCADE,
    day        TEXT NOT NULL,
    count      INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (mailbox_id, day)
);

-- Everything that happens to mail, append-only.
CREATE TABLE events (
    id           INTEGER PRIMARY KEY,
    workspace_id INTEGER NOT NULL REFERENCES workspaces(id) ON DELETE CASCADE,
    mailbox_id   INTEGER REFERENCES mailboxes(id) ON DELETE SET NULL,
    queue_id     INTEGER REFERENCES queue(id) ON DELETE SET NULL,
    kind         TEXT NOT NULL,
    recipient    TEXT NOT NULL DEFAULT '',
    detail       TEXT NOT NULL DEFAULT '',
    at           INTEGER NOT NULL
);
CREATE INDEX events_workspace ON events(workspace_id, at);

-- Stored mail per mailbox and folder, with the UID scheme IMAP needs.
CREATE TABLE folders (
    id           INTEGER PRIMARY KEY,
    mailbox_id   INTEGER NOT NULL REFERENCES mailboxes(id) ON DELETE CASCADE,
    name         TEXT NOT NULL,
    special_use  TEXT,
    uid_validity INTEGER NOT NULL,
    uid_next     INTEGER NOT NULL DEFAULT 1,
    UNIQUE (mailbox_id, name)
);

CREATE TABLE mail (
    id          INTEGER PRIMARY KEY,
    folder_id   INTEGER NOT NULL REFERENCES folders(id) ON DELETE CASCADE,
    uid         INTEGER NOT NULL,
    flags       TEXT NOT NULL DEFAULT '',
    message_id  TEXT NOT NULL DEFAULT '',
    size        INTEGER NOT NULL,
    body        BLOB NOT NULL,
    received_at INTEGER NOT NULL,
    UNIQUE (folder_id, uid)
);
CREATE INDEX mail_message_id ON mail(message_id);
