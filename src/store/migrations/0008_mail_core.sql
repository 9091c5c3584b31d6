-- 0008_mail_core: what the one mail core records.

-- Events name the Message-ID of our message they are about, and a bounce's class (`mta::bounce`).
ALTER TABLE events ADD COLUMN message_id TEXT NOT NULL DEFAULT '';
ALTER TABLE events ADD COLUMN class TEXT
    CHECK (class IS NULL OR class IN ('hard', 'soft', 'policy', 'block', 'content', 'rate'));
CREATE INDEX events_kind ON events(workspace_id, kind, at);
CREATE INDEX events_log ON events(at);

-- Rows of recipients that are local mailboxes: recorded `delivered` at once by `mta::enqueue`
-- (the mail went into the mail store in the same transaction), never handed to the delivery
-- workers, and counted on the queue page like every other send.
ALTER TABLE queue ADD COLUMN local INTEGER NOT NULL DEFAULT 0 CHECK (local IN (0, 1));
