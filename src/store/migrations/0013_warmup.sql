-- Warmup: the pool's members, each sender's day plans, the messages planned and sent, and what
-- each receiving member saw (where the mail landed, whether it answers).

-- The workspace's ramp curve (see warmup::ramp), the share of warmup mail answered, and the
-- daily window (minutes after local midnight, in the workspace's time zone) warmup mail goes out in.
ALTER TABLE workspaces ADD COLUMN warmup_start INTEGER NOT NULL DEFAULT 2 CHECK (warmup_start >= 1);
ALTER TABLE workspaces ADD COLUMN warmup_target INTEGER NOT NULL DEFAULT 40 CHECK (warmup_target >= warmup_start);
ALTER TABLE workspaces ADD COLUMN warmup_days INTEGER NOT NULL DEFAULT 14 CHECK (warmup_days >= 1);
ALTER TABLE workspaces ADD COLUMN warmup_reply_percent INTEGER NOT NULL DEFAULT 30
    CHECK (warmup_reply_percent BETWEEN 0 AND 100);
ALTER TABLE workspaces ADD COLUMN warmup_window_start INTEGER NOT NULL DEFAULT 480;
ALTER TABLE workspaces ADD COLUMN warmup_window_end INTEGER NOT NULL DEFAULT 1080
    CHECK (warmup_window_end > warmup_window_start AND warmup_window_end <= 1440);

-- A mailbox (own or outside account) in its workspace's warmup pool. Day 1 of its ramp is
-- enrolled_day (the workspace's local date when it was enrolled).
CREATE TABLE warmup_members (
    mailbox_id   INTEGER PRIMARY KEY REFERENCES mailboxes(id) ON DELETE CASCADE,
    workspace_id INTEGER NOT NULL REFERENCES workspaces(id) ON DELETE CASCADE,
    enrolled_day TEXT NOT NULL,
    enrolled_at  INTEGER NOT NULL
);
CREATE INDEX warmup_members_workspace ON warmup_members(workspace_id);

-- A sender's planned day: made once, with the ramp's volume for that day.
CREATE TABLE warmup_days (
    mailbox_id INTEGER NOT NULL REFERENCES mailboxes(id) ON DELETE CASCADE,
    day        TEXT NOT NULL,
    day_number INTEGER NOT NULL,
    target     INTEGER NOT NULL,
    planned    INTEGER NOT NULL,
    PRIMARY KEY (mailbox_id, day)
);

-- One warmup message or reply, planned then sent (or skipped, with the reason). A message is
-- unique per (sender, day, seq); a reply per message answered: nothing is sent twice.
CREATE TABLE warmup_sends (
    id           INTEGER PRIMARY KEY,
    workspace_id INTEGER NOT NULL REFERENCES workspaces(id) ON DELETE CASCADE,
    sender_id    INTEGER NOT NULL REFERENCES mailboxes(id) ON DELETE CASCADE,
    recipient_id INTEGER NOT NULL REFERENCES mailboxes(id) ON DELETE CASCADE,
    day          TEXT NOT NULL,
    seq          INTEGER NOT NULL,
    kind         TEXT NOT NULL CHECK (kind IN ('message', 'reply')),
    -- The words, chosen when planned (so a day's messages are all different); for a reply, the
    -- Message-ID answered and the thread's References (space separated) too.
    subject      TEXT NOT NULL,
    body         TEXT NOT NULL,
    answers      TEXT NOT NULL DEFAULT '',
    refs         TEXT NOT NULL DEFAULT '',
    due_at       INTEGER NOT NULL,
    status       TEXT NOT NULL DEFAULT 'planned' CHECK (status IN ('planned', 'sent', 'skipped')),
    message_id   TEXT NOT NULL DEFAULT '',
    detail       TEXT NOT NULL DEFAULT '',
    sent_at      INTEGER
);
CREATE UNIQUE INDEX warmup_sends_message ON warmup_sends(sender_id, day, seq) WHERE kind = 'message';
CREATE UNIQUE INDEX warmup_sends_reply ON warmup_sends(answers) WHERE kind = 'reply';
CREATE INDEX warmup_sends_due ON warmup_sends(due_at) WHERE status = 'planned';
CREATE INDEX warmup_sends_sender ON warmup_sends(sender_id, day, kind, status);

-- A warmup message as its receiving member saw it: where it landed (inbox or spam, before the
-- member moved it) and on which of the receiver's local days.
CREATE TABLE warmup_received (
    id           INTEGER PRIMARY KEY,
    workspace_id INTEGER NOT NULL REFERENCES workspaces(id) ON DELETE CASCADE,
    mailbox_id   INTEGER NOT NULL REFERENCES mailboxes(id) ON DELETE CASCADE,
    sender_id    INTEGER REFERENCES mailboxes(id) ON DELETE SET NULL,
    message_id   TEXT NOT NULL,
    day          TEXT NOT NULL,
    placement    TEXT NOT NULL CHECK (placement IN ('inbox', 'spam')),
    received_at  INTEGER NOT NULL,
    UNIQUE (mailbox_id, message_id)
);
CREATE INDEX warmup_received_sender ON warmup_received(sender_id, received_at);
CREATE INDEX warmup_received_day ON warmup_received(mailbox_id, day);
