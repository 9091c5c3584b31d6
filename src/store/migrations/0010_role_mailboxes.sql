-- A role mailbox (postmaster@ made with its domain) receives the domain's role addresses
-- (postmaster@, abuse@, dmarc-reports@). It is read over IMAP, never exported to a sequencer
-- and never in a rotation pool; 0: an ordinary mailbox that sends campaigns.
ALTER TABLE mailboxes ADD COLUMN role INTEGER NOT NULL DEFAULT 0;
