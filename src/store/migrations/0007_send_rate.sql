-- 0007_send_rate: what the per-minute rate counts. Recipients a mailbox sent, per second, kept
-- for one minute (smtp::submission::limits prunes older rows as it records), so the rate covers
-- every send, local deliveries included, not only the queue rows of remote recipients.
CREATE TABLE send_seconds (
    mailbox_id INTEGER NOT NULL REFERENCES mailboxes(id) ON DELETE CASCADE,
    second     INTEGER NOT NULL,
    count      INTEGER NOT NULL,
    PRIMARY KEY (mailbox_id, second)
) WITHOUT ROWID;
