-- Health protection: a mailbox paused for campaigns (warmup and manual sends continue), why and
-- since when. Written only by health::protection; NULL reason means campaigns may use it.
ALTER TABLE mailboxes ADD COLUMN campaign_pause_reason TEXT;
ALTER TABLE mailboxes ADD COLUMN campaign_paused_at INTEGER;
