-- 0004_delivery: per-domain egress address, and the index the delivery claim reads.

-- The source address a domain's mail leaves from (bind before connect). NULL: automatic (a stable
-- hash of the domain over `[delivery] source_ips`). A value no longer in `source_ips` is ignored
-- (automatic, with a warning) rather than failing delivery.
ALTER TABLE domains ADD COLUMN source_ip TEXT;

-- mta::deliver::queue::claim reads, per status, `status = ? AND domain = ? AND next_attempt_at <= ?
-- ORDER BY next_attempt_at, id LIMIT n`: with this index that is a range scan that stops after n
-- rows, however many rows of other domains are due (queue_due alone scans every due row).
CREATE INDEX queue_claim ON queue(status, domain, next_attempt_at);
