//! May this mailbox send to these recipients now? The one decision every sender (submission,
//! campaigns, warmup, replies from the inbox, the API) asks, checked where the send is recorded:
//! [`admit`] runs inside the transaction that calls `mta::enqueue` and counts the send there, so
//! nothing that changed since an earlier look can slip through (DESIGN invariant 3).
//!
//! The rules, in order:
//! - a paused mailbox sends nothing (and a deleted one is gone);
//! - no recipient may be on the workspace's suppression list;
//! - the daily limit counts recipients in `send_counts`, keyed by the day in the workspace's
//!   time zone (`workspaces.time_zone`), so it resets at local midnight;
//! - the per-minute rate (`mailboxes.per_minute`, 0 = none) counts the recipients the mailbox
//!   sent in the last 60 seconds (a sliding window over `send_seconds`, one row per second that
//!   saw a send; [`admit`] drops the rows older than the window), local deliveries included. A
//!   mailbox without a rate records nothing there.
//!
//! [`check`] is the same test made early without counting (submission asks it at MAIL FROM and
//! at each RCPT, so a client learns of a full day or a suppressed address before it sends the
//! message). A refusal is a [`Refusal`] with a stable [`code`](Refusal::code); each caller maps it
//! to its wire (SMTP replies, form messages, API errors). Campaign caps and warmup ramps plug in
//! here.

use chrono::{DateTime, Datelike};
use chrono_tz::Tz;
use rusqlite::{Connection, OptionalExtension};

use crate::suppression;

/// The per-minute rate's window, in seconds.
const WINDOW: i64 = 60;

/// Why a mailbox may not send now.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    #[error("{address} is paused and cannot send; resume it in InboxGrove")]
    Paused { address: String },
    #[error("{recipient} is suppressed: {why}")]
    Suppressed { recipient: String, why: &'static str },
    #[error("daily limit of {limit} messages reached for {address}; resets at midnight {time_zone}")]
    DailyLimit { limit: i64, address: String, time_zone: String },
    #[error("per-minute limit of {limit} messages reached for {address}; try again in a minute")]
    PerMinute { limit: i64, address: String },
    #[error("the mailbox no longer exists")]
    Gone,
}

impl Refusal {
    /// A stable code for scripts and the API.
    pub fn code(&self) -> &'static str {
        match self {
            Refusal::Paused { .. } => "mailbox_paused",
            Refusal::Suppressed { .. } => "suppressed",
            Refusal::DailyLimit { .. } => "daily_limit",
            Refusal::PerMinute { .. } => "per_minute_limit",
            Refusal::Gone => "mailbox_gone",
        }
    }

    /// Whether waiting helps (a limit), as opposed to a refusal that stands (paused, suppressed).
    pub fn is_temporary(&self) -> bool {
        matches!(self, Refusal::DailyLimit { .. } | Refusal::PerMinute { .. })
    }
}

/// A refusal, or the store failing to answer.
#[derive(Debug, thiserror::Error)]
pub enum AdmitError {
    #[error(transparent)]
    Refused(#[from] Refusal),
    #[error(transparent)]
    Store(#[from] rusqlite::Error),
}

/// A mailbox's current sending settings.
struct Sending {
    workspace_id: i64,
    address: String,
    paused: bool,
    daily_limit: i64,
    per_minute: i64,
    time_zone: Tz,
}

fn sending(conn: &Connection, mailbox_id: i64) -> Result<Sending, AdmitError> {
    let mailbox = crate::mailbox::sending(conn, mailbox_id)?.ok_or(AdmitError::Refused(Refusal::Gone))?;
    Ok(Sending {
        workspace_id: mailbox.workspace_id,
        paused: !crate::mailbox::create::may_send(mailbox.status),
        address: mailbox.address,
        daily_limit: mailbox.daily_limit,
        per_minute: mailbox.per_minute,
        time_zone: crate::workspaces::time_zone(conn, mailbox.workspace_id)?,
    })
}

/// The day `now` falls on in `zone`, as `send_counts.day` stores it.
pub fn local_day(zone: Tz, now: i64) -> String {
    let day = DateTime::from_timestamp(now, 0).unwrap_or_default().with_timezone(&zone).date_naive();
    format!("{:04}-{:02}-{:02}", day.year(), day.month(), day.day())
}

/// Recipients the mailbox has sent to on its workspace's day of `now`.
fn counted_today(conn: &Connection, mailbox_id: i64, zone: Tz, now: i64) -> rusqlite::Result<i64> {
    Ok(conn
        .prepare_cached("SELECT count FROM send_counts WHERE mailbox_id = ?1 AND day = ?2")?
        .query_row((mailbox_id, local_day(zone, now)), |row| row.get(0))
        .optional()?
        .unwrap_or(0))
}

/// Recipients the mailbox has sent to today (in its workspace's time zone), against its daily
/// limit: what the next [`admit`] counts.
pub fn sent_today(conn: &Connection, mailbox_id: i64, now: i64) -> Result<(i64, i64), AdmitError> {
    let mailbox = sending(conn, mailbox_id)?;
    Ok((counted_today(conn, mailbox_id, mailbox.time_zone, now)?, mailbox.daily_limit))
}

/// Whether the mailbox may send to `recipients` and `adding` recipients in all now (see the
/// module doc), without counting anything.
pub fn check(conn: &Connection, mailbox_id: i64, recipients: &[&str], adding: i64, now: i64) -> Result<(), AdmitError> {
    check_settings(conn, &sending(conn, mailbox_id)?, mailbox_id, recipients, adding, now)
}

fn check_settings(
    conn: &Connection,
    mailbox: &Sending,
    mailbox_id: i64,
    recipients: &[&str],
    adding: i64,
    now: i64,
) -> Result<(), AdmitError> {
    if mailbox.paused {
        return Err(Refusal::Paused { address: mailbox.address.clone() }.into());
    }
    for recipient in recipients {
        if let Some(reason) = suppression::reason(conn, mailbox.workspace_id, recipient)? {
            let why = suppression::Reason::describe(&reason);
            return Err(Refusal::Suppressed { recipient: recipient.trim().to_string(), why }.into());
        }
    }
    let sent_today = counted_today(conn, mailbox_id, mailbox.time_zone, now)?;
    if sent_today + adding > mailbox.daily_limit {
        return Err(Refusal::DailyLimit {
            limit: mailbox.daily_limit,
            address: mailbox.address.clone(),
            time_zone: mailbox.time_zone.name().to_string(),
        }
        .into());
    }
    if mailbox.per_minute > 0 {
        let last_minute: i64 = conn
            .prepare_cached("SELECT coalesce(sum(count), 0) FROM send_seconds WHERE mailbox_id = ?1 AND second > ?2")?
            .query_row((mailbox_id, now - WINDOW), |row| row.get(0))?;
        if last_minute + adding > mailbox.per_minute {
            return Err(Refusal::PerMinute { limit: mailbox.per_minute, address: mailbox.address.clone() }.into());
        }
    }
    Ok(())
}

/// Admits a send of the mailbox to `recipients` and counts it, in the caller's transaction (the
/// one that enqueues the message); see the module doc.
pub fn admit(conn: &Connection, mailbox_id: i64, recipients: &[&str], now: i64) -> Result<(), AdmitError> {
    let mailbox = sending(conn, mailbox_id)?;
    let adding = i64::try_from(recipients.len()).unwrap_or(i64::MAX);
    check_settings(conn, &mailbox, mailbox_id, recipients, adding, now)?;
    conn.prepare_cached(
        "INSERT INTO send_counts (mailbox_id, day, count) VALUES (?1, ?2, ?3) \
         ON CONFLICT (mailbox_id, day) DO UPDATE SET count = count + excluded.count",
    )?
    .execute((mailbox_id, local_day(mailbox.time_zone, now), adding))?;
    if mailbox.per_minute == 0 {
        // No rate to enforce: nothing to count (a rate set later starts counting then).
        return Ok(());
    }
    conn.prepare_cached(
        "INSERT INTO send_seconds (mailbox_id, second, count) VALUES (?1, ?2, ?3) \
         ON CONFLICT (mailbox_id, second) DO UPDATE SET count = count + excluded.count",
    )?
    .execute((mailbox_id, now, adding))?;
    conn.prepare_cached("DELETE FROM send_seconds WHERE mailbox_id = ?1 AND second <= ?2")?
        .execute((mailbox_id, now - WINDOW))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// 2026-03-10 23:30 UTC: already the 11th in Berlin, still the 10th in New York.
    const LATE_EVENING_UTC: i64 = 1_773_185_400;

    #[test]
    fn the_day_is_the_workspace_s_local_day() {
        assert_eq!(local_day(Tz::UTC, LATE_EVENING_UTC), "2026-03-10");
        assert_eq!(local_day(Tz::Europe__Berlin, LATE_EVENING_UTC), "2026-03-11");
        assert_eq!(local_day(Tz::America__New_York, LATE_EVENING_UTC), "2026-03-10");
    }

    fn setup(tx: &Connection, zone: &str, daily: i64, per_minute: i64) -> rusqlite::Result<()> {
        tx.execute("INSERT INTO workspaces (id, name, time_zone, created_at) VALUES (1, 'w', ?1, 0)", [zone])?;
        tx.execute("INSERT INTO domains (id, workspace_id, name, created_at) VALUES (1, 1, 'x.test', 0)", [])?;
        tx.execute(
            "INSERT INTO mailboxes (id, workspace_id, domain_id, local_part, address, first_name, last_name, \
             display_name, password_hash, daily_limit, per_minute, created_at) \
             VALUES (1, 1, 1, 'bob', 'bob@x.test', 'Bob', 'B', 'Bob B', 'x', ?1, ?2, 0)",
            (daily, per_minute),
        )?;
        Ok(())
    }

    /// `n` distinct recipients.
    fn leads(n: usize) -> Vec<String> {
        (0..n).map(|i| format!("lead{i}@prospect.test")).collect()
    }

    fn admit_n(tx: &Connection, n: usize, now: i64) -> Result<(), AdmitError> {
        let leads = leads(n);
        admit(tx, 1, &leads.iter().map(String::as_str).collect::<Vec<_>>(), now)
    }

    fn refusal(result: Result<(), AdmitError>) -> Refusal {
        match result {
            Err(AdmitError::Refused(refusal)) => refusal,
            other => panic!("expected a refusal, got {other:?}"),
        }
    }

    #[tokio::test]
    async fn the_daily_limit_counts_recipients_and_resets_at_local_midnight() {
        let (_dir, store) = crate::store::open_temp();
        store
            .write(|tx| {
                setup(tx, "Europe/Berlin", 3, 0)?;
                let evening = LATE_EVENING_UTC - 3600; // 22:30 UTC = 23:30 in Berlin
                admit_n(tx, 2, evening)?;
                assert!(check(tx, 1, &[], 1, evening).is_ok());
                assert!(check(tx, 1, &[], 2, evening).is_err());
                admit_n(tx, 1, evening)?;
                let refused = refusal(admit_n(tx, 1, evening));
                assert_eq!(
                    refused.to_string(),
                    "daily limit of 3 messages reached for bob@x.test; resets at midnight Europe/Berlin"
                );
                assert_eq!((refused.code(), refused.is_temporary()), ("daily_limit", true));
                assert!(admit_n(tx, 3, LATE_EVENING_UTC).is_ok(), "a new day in Berlin");
                let counted: i64 = tx.query_row("SELECT count(*) FROM send_seconds", [], |row| row.get(0))?;
                assert_eq!(counted, 0, "no per-minute rate, no per-second rows");
                Ok::<_, AdmitError>(())
            })
            .await
            .unwrap();
    }

    #[tokio::test]
    async fn the_per_minute_rate_is_a_sliding_window_and_paused_mailboxes_cannot_send() {
        let (_dir, store) = crate::store::open_temp();
        store
            .write(|tx| {
                setup(tx, "UTC", 100, 3)?;
                admit_n(tx, 2, 1000)?;
                admit_n(tx, 1, 1030)?;
                assert!(matches!(refusal(check(tx, 1, &[], 1, 1030)), Refusal::PerMinute { limit: 3, .. }));
                assert!(matches!(refusal(admit_n(tx, 1, 1059)), Refusal::PerMinute { .. }), "nothing has left yet");
                assert!(check(tx, 1, &[], 2, 1060).is_ok(), "the first two left the window");
                assert!(check(tx, 1, &[], 3, 1060).is_err(), "the third is still in it");
                admit_n(tx, 2, 1060)?;
                let rows: i64 = tx.query_row("SELECT count(*) FROM send_seconds", [], |row| row.get(0))?;
                assert_eq!(rows, 2, "rows older than the window are dropped as sends are recorded");
                tx.execute("UPDATE mailboxes SET status = 'paused' WHERE id = 1", [])?;
                let paused = refusal(check(tx, 1, &[], 1, 1060));
                assert_eq!(paused.to_string(), "bob@x.test is paused and cannot send; resume it in InboxGrove");
                assert_eq!((paused.code(), paused.is_temporary()), ("mailbox_paused", false));
                assert_eq!(refusal(check(tx, 2, &[], 1, 1060)), Refusal::Gone);
                Ok::<_, AdmitError>(())
            })
            .await
            .unwrap();
    }

    #[tokio::test]
    async fn a_suppressed_recipient_refuses_the_whole_send_and_counts_nothing() {
        let (_dir, store) = crate::store::open_temp();
        store
            .write(|tx| {
                setup(tx, "UTC", 100, 0)?;
                suppression::add(tx, 1, "Lead1@Prospect.test", suppression::Reason::Unsubscribe, "", 10)?;
                let refused = refusal(admit_n(tx, 3, 1000));
                assert_eq!(
                    refused,
                    Refusal::Suppressed { recipient: "lead1@prospect.test".into(), why: "the recipient unsubscribed" }
                );
                assert_eq!(refused.code(), "suppressed");
                let counted: Option<i64> = tx.query_row("SELECT sum(count) FROM send_counts", [], |row| row.get(0))?;
                assert_eq!(counted, None, "a refused send counts nothing");
                assert!(check(tx, 1, &["lead0@prospect.test"], 1, 1000).is_ok());
                Ok::<_, AdmitError>(())
            })
            .await
            .unwrap();
    }
}
