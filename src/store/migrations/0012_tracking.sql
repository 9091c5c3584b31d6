-- Open and click tracking: opens and clicks made by machines (image proxies, link scanners,
-- tools) are recorded but flagged; the links of each tracked send, the only URLs its click
-- redirect may answer; and a sending domain's own host for tracking links.

ALTER TABLE events ADD COLUMN machine INTEGER NOT NULL DEFAULT 0;

-- The links of a send whose clicks are tracked, by position in the message (from 0), written
-- in the transaction that records the send.
CREATE TABLE tracked_links (
    send_id  INTEGER NOT NULL REFERENCES campaign_sends(id) ON DELETE CASCADE,
    position INTEGER NOT NULL CHECK (position >= 0),
    url      TEXT NOT NULL,
    PRIMARY KEY (send_id, position)
) WITHOUT ROWID;

-- A host name (ASCII, lowercase) under the domain, CNAME'd to the appliance; NULL: none.
ALTER TABLE domains ADD COLUMN tracking_host TEXT;
CREATE UNIQUE INDEX domains_tracking_host ON domains(tracking_host) WHERE tracking_host IS NOT NULL;
