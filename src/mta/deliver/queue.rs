//! The queue table as delivery sees it: claiming due rows with a lease, recording outcomes, and
//! putting rows back.
//!
//! A row is due when `status IN ('queued','deferred') AND next_attempt_at <= now`. Claiming is
//! one `UPDATE ... RETURNING` in a write transaction that sets `status = 'in_flight'` and
//! `lease_until`, so no row is ever handed out twice. Rows are claimed per destination domain,
//! up to [`BATCH`] at a time, so one connection carries several messages to the same host.
//!
//! Only one delivery worker runs per database, so at start every row still `in_flight` was left
//! by a process that is gone: [`recover_in_flight`] puts them all back (a row whose attempt was
//! cut short may be sent twice; SMTP cannot do better). While running, leases are not reclaimed
//! (the test clock jumps hours at once); a batch that fails or panics has its unfinished rows put
//! back by the worker that ran it ([`release`]).

use rusqlite::{Connection, OptionalExtension, params_from_iter};

use super::classify::Reply;
use crate::mta::QueueStatus;

/// The most rows one claim takes (one connection's worth).
pub const BATCH: usize = 100;

/// A claimed queue row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Claimed {
    pub id: i64,
    pub message_id: i64,
    pub workspace_id: i64,
    pub mailbox_id: Option<i64>,
    pub recipient: String,
    pub domain: String,
    /// Attempts made before this one.
    pub attempts: i64,
    pub created_at: i64,
}

/// The envelope of a queued message (its body is loaded separately, when sent), with what routing
/// needs to know about its sender.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Envelope {
    pub id: i64,
    pub mail_from: String,
    pub workspace_id: i64,
    pub workspace_name: String,
    /// The egress address assigned to the sending domain (`domains.source_ip`), if any.
    pub source_ip: Option<String>,
}

/// What an attempt did to a row (bounces are `mta::bounce`'s to record).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finish<'a> {
    /// `delivered`, `deferred` or `expired`.
    pub status: QueueStatus,
    /// The next attempt, for `deferred`.
    pub next_attempt_at: Option<i64>,
    pub reply: &'a Reply,
}

/// Puts every `in_flight` row back in the queue (at start; see the module doc).
pub fn recover_in_flight(conn: &Connection, now: i64) -> rusqlite::Result<usize> {
    conn.prepare_cached(
        "UPDATE queue SET status = CASE WHEN attempts = 0 THEN 'queued' ELSE 'deferred' END, \
         lease_until = NULL, updated_at = ?1 WHERE status = 'in_flight'",
    )?
    .execute([now])
}

/// Destination domains with due rows, most overdue first.
pub fn due_domains(conn: &Connection, now: i64, limit: usize) -> rusqlite::Result<Vec<String>> {
    let limit = i64::try_from(limit).unwrap_or(i64::MAX);
    conn.prepare_cached(
        "SELECT domain FROM queue WHERE status IN ('queued', 'deferred') AND next_attempt_at <= ?1 \
         GROUP BY domain ORDER BY MIN(next_attempt_at) LIMIT ?2",
    )?
    .query_map((now, limit), |row| row.get(0))?
    .collect()
}

/// Claims up to `limit` due rows of `domain`, oldest due first. Each status is read in the order
/// of the `queue_due` index and stops at `limit`, so a claim costs the same however long the
/// queue is (one `status IN (...)` scan would sort every due row).
pub fn claim(
    conn: &Connection,
    domain: &str,
    now: i64,
    lease_until: i64,
    limit: usize,
) -> rusqlite::Result<Vec<Claimed>> {
    let limit = i64::try_from(limit).unwrap_or(i64::MAX);
    let mut rows: Vec<Claimed> = conn
        .prepare_cached(
            "UPDATE queue SET status = 'in_flight', lease_until = ?3, updated_at = ?2 WHERE id IN (\
               SELECT id FROM (\
                 SELECT id, next_attempt_at FROM (SELECT id, next_attempt_at FROM queue \
                   WHERE status = 'queued' AND domain = ?1 AND next_attempt_at <= ?2 \
                   ORDER BY next_attempt_at, id LIMIT ?4) \
                 UNION ALL \
                 SELECT id, next_attempt_at FROM (SELECT id, next_attempt_at FROM queue \
                   WHERE status = 'deferred' AND domain = ?1 AND next_attempt_at <= ?2 \
                   ORDER BY next_attempt_at, id LIMIT ?4)) \
               ORDER BY next_attempt_at, id LIMIT ?4) \
             RETURNING id, message_id, workspace_id, mailbox_id, recipient, domain, attempts, created_at",
        )?
        .query_map((domain, now, lease_until, limit), |row| {
            Ok(Claimed {
                id: row.get(0)?,
                message_id: row.get(1)?,
                workspace_id: row.get(2)?,
                mailbox_id: row.get(3)?,
                recipient: row.get(4)?,
                domain: row.get(5)?,
                attempts: row.get(6)?,
                created_at: row.get(7)?,
            })
        })?
        .collect::<rusqlite::Result<_>>()?;
    rows.sort_by_key(|row| (row.message_id, row.id));
    Ok(rows)
}

/// The earliest `next_attempt_at` of any waiting row.
pub fn next_due(conn: &Connection) -> rusqlite::Result<Option<i64>> {
    conn.prepare_cached("SELECT MIN(next_attempt_at) FROM queue WHERE status IN ('queued', 'deferred')")?
        .query_row([], |row| row.get(0))
}

/// The envelopes of these messages. The sending domain (after the last `@` of the envelope
/// sender) is looked up among the message's workspace's domains for its egress address.
pub fn envelopes(conn: &Connection, message_ids: &[i64]) -> rusqlite::Result<Vec<Envelope>> {
    let placeholders = vec!["?"; message_ids.len()].join(",");
    conn.prepare(&format!(
        "SELECT m.id, m.mail_from, m.workspace_id, \
           (SELECT d.source_ip FROM domains d WHERE d.workspace_id = m.workspace_id \
              AND d.name = lower(substr(m.mail_from, instr(m.mail_from, '@') + 1))) \
         FROM messages m WHERE m.id IN ({placeholders})"
    ))?
    .query_map(params_from_iter(message_ids), |row| {
        Ok(Envelope {
            id: row.get(0)?,
            mail_from: row.get(1)?,
            workspace_id: row.get(2)?,
            workspace_name: String::new(),
            source_ip: row.get(3)?,
        })
    })?
    .map(|envelope| {
        let mut envelope = envelope?;
        envelope.workspace_name = crate::workspaces::name(conn, envelope.workspace_id).unwrap_or_default();
        Ok(envelope)
    })
    .collect()
}

/// A message's body, if it still exists.
pub fn body(conn: &Connection, message_id: i64) -> rusqlite::Result<Option<Vec<u8>>> {
    conn.prepare_cached("SELECT body FROM messages WHERE id = ?1")?.query_row([message_id], |row| row.get(0)).optional()
}

/// Records an attempt's outcome on a claimed row (one more attempt). A row no longer
/// `in_flight` (cancelled meanwhile) is left alone; returns whether the row was updated.
pub fn finish(conn: &Connection, id: i64, finish: &Finish<'_>, now: i64) -> rusqlite::Result<bool> {
    let changed = conn
        .prepare_cached(
            "UPDATE queue SET status = ?2, attempts = attempts + 1, next_attempt_at = COALESCE(?3, next_attempt_at), \
             lease_until = NULL, last_code = ?4, last_status = ?5, last_reply = ?6, updated_at = ?7 \
             WHERE id = ?1 AND status = 'in_flight'",
        )?
        .execute((
            id,
            finish.status,
            finish.next_attempt_at,
            finish.reply.code,
            finish.reply.effective_status(),
            finish.reply.describe(),
            now,
        ))?;
    Ok(changed > 0)
}

/// Defers a claimed row to `until` without counting an attempt (a limit, not a failure).
pub fn postpone(conn: &Connection, id: i64, until: i64, now: i64) -> rusqlite::Result<()> {
    conn.prepare_cached(
        "UPDATE queue SET status = CASE WHEN attempts = 0 THEN 'queued' ELSE 'deferred' END, \
         next_attempt_at = ?2, lease_until = NULL, updated_at = ?3 WHERE id = ?1 AND status = 'in_flight'",
    )?
    .execute((id, until, now))?;
    Ok(())
}

/// Puts claimed rows that are still `in_flight` back in the queue, due at `due` (no attempt
/// counted). Rows already finished are untouched; returns how many were put back.
pub fn release(conn: &Connection, ids: &[i64], due: i64, now: i64) -> rusqlite::Result<usize> {
    let mut released = 0;
    for &id in ids {
        released += conn
            .prepare_cached(
                "UPDATE queue SET status = CASE WHEN attempts = 0 THEN 'queued' ELSE 'deferred' END, \
                 next_attempt_at = ?2, lease_until = NULL, updated_at = ?3 \
                 WHERE id = ?1 AND status = 'in_flight'",
            )?
            .execute((id, due, now))?;
    }
    Ok(released)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn setup(conn: &Connection) {
        conn.execute_batch(
            "INSERT INTO workspaces (id, name, created_at) VALUES (1, 'w', 0);
             INSERT INTO messages (id, workspace_id, mail_from, size, body, created_at)
                 VALUES (1, 1, 'ann@a.test', 2, x'6869', 0), (2, 1, 'ann@a.test', 2, x'6869', 0);
             INSERT INTO queue (message_id, workspace_id, recipient, domain, next_attempt_at, created_at, updated_at) VALUES
                 (1, 1, 'x@dest.test', 'dest.test', 100, 0, 0),
                 (2, 1, 'y@dest.test', 'dest.test', 50, 0, 0),
                 (1, 1, 'z@other.test', 'other.test', 10, 0, 0),
                 (1, 1, 'later@dest.test', 'dest.test', 500, 0, 0);",
        )
        .unwrap();
    }

    #[tokio::test]
    async fn claims_take_due_rows_once_and_recovery_puts_them_back() {
        let (_dir, store) = crate::store::open_temp();
        store
            .write(|tx| {
                setup(tx);
                assert_eq!(due_domains(tx, 200, 10)?, ["other.test", "dest.test"]);
                let claimed = claim(tx, "dest.test", 200, 900, 10)?;
                let recipients: Vec<&str> = claimed.iter().map(|c| c.recipient.as_str()).collect();
                assert_eq!(recipients, ["x@dest.test", "y@dest.test"], "grouped by message");
                assert!(claim(tx, "dest.test", 200, 900, 10)?.is_empty(), "never handed out twice");
                assert_eq!(next_due(tx)?, Some(10));

                let reply = Reply::local("4.4.1", "refused");
                let deferred = Finish { status: QueueStatus::Deferred, next_attempt_at: Some(260), reply: &reply };
                assert!(finish(tx, claimed[0].id, &deferred, 200)?);
                assert!(!finish(tx, claimed[0].id, &deferred, 200)?, "only in-flight rows finish");
                assert_eq!(recover_in_flight(tx, 300)?, 1);
                let statuses: Vec<(String, i64)> = tx
                    .prepare("SELECT status, attempts FROM queue WHERE domain = 'dest.test' ORDER BY id")?
                    .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?
                    .collect::<rusqlite::Result<_>>()?;
                assert_eq!(statuses, [("deferred".into(), 1), ("queued".into(), 0), ("queued".into(), 0)]);
                Ok::<_, rusqlite::Error>(())
            })
            .await
            .unwrap();
    }

    #[tokio::test]
    async fn a_claim_reads_the_claim_index_in_order() {
        let (_dir, store) = crate::store::open_temp();
        let plan: Vec<String> = store
            .read(|conn| {
                conn.prepare(
                    "EXPLAIN QUERY PLAN SELECT id, next_attempt_at FROM queue \
                     WHERE status = 'queued' AND domain = ?1 AND next_attempt_at <= ?2 \
                     ORDER BY next_attempt_at, id LIMIT ?3",
                )?
                .query_map(("dest.test", 100, 10), |row| row.get::<_, String>(3))?
                .collect::<rusqlite::Result<Vec<String>>>()
            })
            .await
            .unwrap();
        assert!(plan.iter().any(|step| step.contains("USING COVERING INDEX queue_claim")), "{plan:?}");
        assert!(!plan.iter().any(|step| step.contains("TEMP B-TREE")), "no sort of due rows: {plan:?}");
    }

    #[tokio::test]
    async fn envelopes_carry_the_workspace_and_the_sending_domains_egress_address() {
        let (_dir, store) = crate::store::open_temp();
        store
            .write(|tx| {
                setup(tx);
                tx.execute_batch(
                    "INSERT INTO domains (id, workspace_id, name, created_at, source_ip) VALUES (1, 1, 'a.test', 0, '192.0.2.7');
                     INSERT INTO workspaces (id, name, created_at) VALUES (2, 'other', 0);
                     INSERT INTO messages (id, workspace_id, mail_from, size, body, created_at)
                         VALUES (3, 2, 'bob@A.test', 2, x'6869', 0), (4, 1, '', 2, x'6869', 0);",
                )?;
                let mut found = envelopes(tx, &[1, 3, 4])?;
                found.sort_by_key(|e| e.id);
                let summary: Vec<(i64, &str, Option<&str>)> =
                    found.iter().map(|e| (e.id, e.workspace_name.as_str(), e.source_ip.as_deref())).collect();
                assert_eq!(summary, [(1, "w", Some("192.0.2.7")), (3, "other", None), (4, "w", None)]);
                Ok::<_, rusqlite::Error>(())
            })
            .await
            .unwrap();
    }

    #[tokio::test]
    async fn postponed_and_released_rows_keep_their_attempt_count() {
        let (_dir, store) = crate::store::open_temp();
        store
            .write(|tx| {
                setup(tx);
                let claimed = claim(tx, "dest.test", 200, 900, 10)?;
                postpone(tx, claimed[0].id, 230, 200)?;
                assert_eq!(release(tx, &[claimed[0].id, claimed[1].id], 200, 200)?, 1);
                let rows: Vec<(String, i64, i64)> = tx
                    .prepare("SELECT status, attempts, next_attempt_at FROM queue WHERE id IN (?1, ?2) ORDER BY id")?
                    .query_map((claimed[0].id, claimed[1].id), |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?
                    .collect::<rusqlite::Result<_>>()?;
                assert_eq!(rows, [("queued".into(), 0, 230), ("queued".into(), 0, 200)]);
                let envelope = envelopes(tx, &[1, 2])?;
                assert_eq!(envelope.len(), 2);
                assert_eq!(body(tx, 1)?, Some(b"hi".to_vec()));
                Ok::<_, rusqlite::Error>(())
            })
            .await
            .unwrap();
    }
}
