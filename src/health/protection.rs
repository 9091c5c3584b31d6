//! Pausing mailboxes for campaigns, and resuming them.
//!
//! A pause is a reason text stored on the mailbox (`campaign_pause_reason`, with
//! `campaign_paused_at`). Campaign sends refuse a paused mailbox; warmup and manual sends are not
//! affected. Pausing is idempotent: a mailbox already paused for the same reason gets no new
//! timestamp and no new audit entry; a different reason replaces the old one and is audited.
//! Each pause is audited as `mailbox.campaign_pause` by the actor `health`, each resume as
//! `mailbox.campaign_resume` by whoever resumed it. The mailboxes paused now are the workspace's
//! health [`alerts`].

use rusqlite::{Connection, OptionalExtension};
use serde::Serialize;

/// The audit actor of automatic pauses.
pub const ACTOR: &str = "health";

/// One current pause, shown as an alert.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Alert {
    pub mailbox_id: i64,
    pub email: String,
    pub reason: String,
    /// Unix seconds.
    pub paused_at: i64,
}

/// Pauses one mailbox for campaigns with `reason`; returns whether anything changed (false when it
/// was already paused for the same reason).
pub fn pause(conn: &Connection, mailbox_id: i64, reason: &str, now: i64) -> rusqlite::Result<bool> {
    let row: Option<(i64, String, Option<String>)> = conn
        .query_row(
            "SELECT workspace_id, address, campaign_pause_reason FROM mailboxes WHERE id = ?1",
            [mailbox_id],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
        )
        .optional()?;
    let Some((workspace_id, address, current)) = row else { return Ok(false) };
    if current.as_deref() == Some(reason) {
        return Ok(false);
    }
    conn.execute(
        "UPDATE mailboxes SET campaign_pause_reason = ?2, campaign_paused_at = ?3 WHERE id = ?1",
        (mailbox_id, reason, now),
    )?;
    audit(conn, workspace_id, ACTOR, "mailbox.campaign_pause", &address, reason, now)?;
    Ok(true)
}

/// Resumes campaigns for one mailbox; returns the reason it was paused for (None: it was not).
pub fn resume(conn: &Connection, mailbox_id: i64, actor: &str, now: i64) -> rusqlite::Result<Option<String>> {
    let row: Option<(i64, String, Option<String>)> = conn
        .query_row(
            "SELECT workspace_id, address, campaign_pause_reason FROM mailboxes WHERE id = ?1",
            [mailbox_id],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
        )
        .optional()?;
    let Some((workspace_id, address, Some(reason))) = row else { return Ok(None) };
    conn.execute(
        "UPDATE mailboxes SET campaign_pause_reason = NULL, campaign_paused_at = NULL WHERE id = ?1",
        [mailbox_id],
    )?;
    audit(conn, workspace_id, actor, "mailbox.campaign_resume", &address, &reason, now)?;
    Ok(Some(reason))
}

/// Why the mailbox is paused for campaigns, if it is.
pub fn paused_reason(conn: &Connection, mailbox_id: i64) -> rusqlite::Result<Option<String>> {
    conn.query_row("SELECT campaign_pause_reason FROM mailboxes WHERE id = ?1", [mailbox_id], |r| r.get(0))
        .optional()
        .map(Option::flatten)
}

/// Pauses every mailbox of the domain for campaigns because its checks failed (`reasons`: e.g. a
/// blocklisting, a failing SPF or DKIM check). Idempotent: mailboxes already paused for the same
/// reasons are left as they are. Does nothing when `reasons` is empty or the domain is not in the
/// workspace.
pub fn domain_checks_failed(
    tx: &Connection,
    workspace_id: i64,
    domain_id: i64,
    reasons: &[String],
    now: i64,
) -> rusqlite::Result<()> {
    if reasons.is_empty() {
        return Ok(());
    }
    let reason = format!("domain checks failed: {}", reasons.join("; "));
    let ids: Vec<i64> = tx
        .prepare("SELECT id FROM mailboxes WHERE workspace_id = ?1 AND domain_id = ?2 ORDER BY id")?
        .query_map((workspace_id, domain_id), |r| r.get(0))?
        .collect::<rusqlite::Result<_>>()?;
    for id in ids {
        pause(tx, id, &reason, now)?;
    }
    Ok(())
}

/// Hard-bounce rate above which a mailbox is paused (over its last [`RECENT_SENDS`] sends).
pub const MAX_BOUNCE_RATE: f64 = 0.05;
/// Complaint rate above which a mailbox is paused (complaints since the oldest of its last
/// [`RECENT_SENDS`] sends, over those sends).
pub const MAX_COMPLAINT_RATE: f64 = 0.003;
/// How many of the latest finished sends the rates are taken over.
pub const RECENT_SENDS: i64 = 100;

/// Looks at the mailbox's last [`RECENT_SENDS`] finished sends (delivered or bounced events) and
/// pauses it for campaigns when the hard-bounce rate or the complaint rate passes its limit.
/// Returns the reason when it paused the mailbox (None: within limits, or already paused for it).
pub fn check_sender(conn: &Connection, mailbox_id: i64, now: i64) -> rusqlite::Result<Option<String>> {
    let (sends, bounced, oldest): (i64, i64, Option<i64>) = conn.query_row(
        "SELECT count(*), coalesce(sum(kind = 'bounced'), 0), min(at) FROM (SELECT kind, at FROM events \
         WHERE mailbox_id = ?1 AND kind IN ('delivered', 'bounced') ORDER BY at DESC, id DESC LIMIT ?2)",
        (mailbox_id, RECENT_SENDS),
        |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
    )?;
    let Some(oldest) = oldest else { return Ok(None) };
    let complaints: i64 = conn.query_row(
        "SELECT count(*) FROM events WHERE mailbox_id = ?1 AND kind = 'complaint' AND at >= ?2",
        (mailbox_id, oldest),
        |r| r.get(0),
    )?;
    let reason = if rate_exceeds(bounced, sends, MAX_BOUNCE_RATE) {
        format!("hard-bounce rate {bounced}/{sends} over the last {sends} sends passed 5%")
    } else if rate_exceeds(complaints, sends, MAX_COMPLAINT_RATE) {
        format!("complaint rate {complaints}/{sends} over the last {sends} sends passed 0.3%")
    } else {
        return Ok(None);
    };
    Ok(pause(conn, mailbox_id, &reason, now)?.then_some(reason))
}

/// Whether `part / whole` is strictly above `limit` (exact in integers for the limits used).
fn rate_exceeds(part: i64, whole: i64, limit: f64) -> bool {
    let (Ok(part), Ok(whole)) = (i32::try_from(part), i32::try_from(whole)) else { return false };
    whole > 0 && f64::from(part) > limit * f64::from(whole)
}

/// The workspace's health alerts: its mailboxes paused for campaigns, most recent first.
pub fn alerts(conn: &Connection, workspace_id: i64) -> rusqlite::Result<Vec<Alert>> {
    conn.prepare(
        "SELECT id, address, campaign_pause_reason, campaign_paused_at FROM mailboxes \
         WHERE workspace_id = ?1 AND campaign_pause_reason IS NOT NULL ORDER BY campaign_paused_at DESC, id",
    )?
    .query_map([workspace_id], |r| {
        Ok(Alert { mailbox_id: r.get(0)?, email: r.get(1)?, reason: r.get(2)?, paused_at: r.get(3)? })
    })?
    .collect()
}

fn audit(
    conn: &Connection,
    workspace_id: i64,
    actor: &str,
    action: &str,
    target: &str,
    detail: &str,
    now: i64,
) -> rusqlite::Result<()> {
    conn.prepare_cached(
        "INSERT INTO audit_log (workspace_id, user_id, actor, at, action, target, detail) \
         VALUES (?1, NULL, ?2, ?3, ?4, ?5, ?6)",
    )?
    .execute((workspace_id, actor, now, action, target, detail))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn seed(tx: &Connection) -> rusqlite::Result<()> {
        tx.execute_batch(
            "INSERT INTO workspaces (id, name, created_at) VALUES (1, 'a', 0), (2, 'b', 0);
             INSERT INTO domains (id, workspace_id, name, created_at) VALUES (1, 1, 'a.test', 0), (2, 2, 'b.test', 0);
             INSERT INTO mailboxes (id, workspace_id, domain_id, local_part, address, first_name, last_name,
                 display_name, password_hash, created_at) VALUES
                 (1, 1, 1, 'x', 'x@a.test', 'X', '', 'X', '', 0),
                 (2, 1, 1, 'y', 'y@a.test', 'Y', '', 'Y', '', 0),
                 (3, 2, 2, 'z', 'z@b.test', 'Z', '', 'Z', '', 0);",
        )
    }

    fn audits(tx: &Connection, action: &str) -> rusqlite::Result<i64> {
        tx.query_row("SELECT count(*) FROM audit_log WHERE action = ?1", [action], |r| r.get(0))
    }

    #[tokio::test]
    async fn domain_failures_pause_its_mailboxes_once() {
        let (_dir, store) = crate::store::open_temp();
        store
            .write(|tx| {
                seed(tx)?;
                let reasons = vec!["SPF fails".to_string()];
                domain_checks_failed(tx, 1, 1, &reasons, 100)?;
                domain_checks_failed(tx, 1, 1, &reasons, 200)?;
                assert_eq!(audits(tx, "mailbox.campaign_pause")?, 2);
                assert_eq!(paused_reason(tx, 1)?.as_deref(), Some("domain checks failed: SPF fails"));
                assert_eq!(paused_reason(tx, 3)?, None);
                // Another workspace's id pair changes nothing.
                domain_checks_failed(tx, 2, 1, &reasons, 300)?;
                assert_eq!(audits(tx, "mailbox.campaign_pause")?, 2);
                let list = alerts(tx, 1)?;
                assert_eq!(list.len(), 2);
                assert!(list.iter().all(|a| a.paused_at == 100));
                assert!(alerts(tx, 2)?.is_empty());
                Ok::<_, rusqlite::Error>(())
            })
            .await
            .unwrap();
    }

    fn send(tx: &Connection, kind: &str, at: i64) -> rusqlite::Result<()> {
        tx.execute("INSERT INTO events (workspace_id, mailbox_id, kind, at) VALUES (1, 1, ?1, ?2)", (kind, at))?;
        Ok(())
    }

    #[tokio::test]
    async fn pauses_exactly_when_bounces_pass_five_percent_of_last_hundred() {
        let (_dir, store) = crate::store::open_temp();
        store
            .write(|tx| {
                seed(tx)?;
                for at in 0..95 {
                    send(tx, "delivered", at)?;
                }
                for at in 95..100 {
                    send(tx, "bounced", at)?;
                }
                assert_eq!(check_sender(tx, 1, 100)?, None, "5 of 100 is not above 5%");
                send(tx, "bounced", 100)?;
                let reason = check_sender(tx, 1, 101)?.expect("6 of the last 100 pauses");
                assert!(reason.contains("6/100"), "{reason}");
                assert_eq!(check_sender(tx, 1, 102)?, None, "already paused for it");
                assert_eq!(paused_reason(tx, 1)?, Some(reason));
                Ok::<_, rusqlite::Error>(())
            })
            .await
            .unwrap();
    }

    #[test]
    fn rate_limits_are_strict() {
        assert!(!rate_exceeds(3, 1000, MAX_COMPLAINT_RATE));
        assert!(rate_exceeds(4, 1000, MAX_COMPLAINT_RATE));
        assert!(!rate_exceeds(0, 0, MAX_BOUNCE_RATE));
    }

    #[tokio::test]
    async fn resume_clears_and_is_audited() {
        let (_dir, store) = crate::store::open_temp();
        store
            .write(|tx| {
                seed(tx)?;
                assert!(pause(tx, 1, "hard bounces", 10)?);
                assert!(pause(tx, 1, "complaints", 11)?);
                assert_eq!(resume(tx, 1, "cli", 12)?.as_deref(), Some("complaints"));
                assert_eq!(resume(tx, 1, "cli", 13)?, None);
                assert_eq!(paused_reason(tx, 1)?, None);
                assert_eq!(audits(tx, "mailbox.campaign_resume")?, 1);
                Ok::<_, rusqlite::Error>(())
            })
            .await
            .unwrap();
    }
}
