//! A mailbox's sending limits, checked where the send is recorded (DESIGN invariant 3).
//!
//! - Paused mailboxes send nothing.
//! - The daily limit counts recipients in `send_counts`, keyed by the day in the workspace's
//!   time zone (`workspaces.time_zone`), so it resets at local midnight. [`record`] checks and
//!   adds in the transaction that queues the message; [`check`] is the same test made early,
//!   at RCPT, so a client learns of a full day before sending the message.
//! - The per-minute rate (`mailboxes.per_minute`, 0 = none) counts the recipients the mailbox
//!   sent in the last 60 seconds (a sliding window over `send_seconds`, one row per second that
//!   saw a send; [`record`] drops the rows older than the window), local deliveries included.
//!   A mailbox without a rate records nothing there.
//!
//! `adding` is the number of recipients the pending send would add.

use std::str::FromStr;

use chrono::{DateTime, Datelike};
use chrono_tz::Tz;
use rusqlite::{Connection, OptionalExtension};

use crate::smtp::reply::Reply;

/// The per-minute rate's window, in seconds.
const WINDOW: i64 = 60;

/// Why a mailbox may not send now.
#[derive(Debug, thiserror::Error)]
pub enum Refusal {
    #[error("{address} is paused and cannot send; resume it in InboxGrove")]
    Paused { address: String },
    #[error("daily limit of {limit} messages reached for {address}; resets at midnight {time_zone}")]
    DailyLimit { limit: i64, address: String, time_zone: String },
    #[error("per-minute limit of {limit} messages reached for {address}; try again in a minute")]
    PerMinute { limit: i64, address: String },
    #[error("the mailbox no longer exists")]
    Gone,
    #[error(transparent)]
    Store(#[from] rusqlite::Error),
    #[error(transparent)]
    Mta(#[from] crate::error::Error),
}

impl Refusal {
    /// The SMTP reply: limits are temporary (4.7.0, so sequencers back off), a paused or deleted
    /// mailbox is a policy refusal (5.7.1).
    pub fn reply(&self) -> Reply {
        match self {
            Refusal::Paused { .. } | Refusal::Gone => Reply::new(550, [5, 7, 1], self.to_string()),
            Refusal::DailyLimit { .. } | Refusal::PerMinute { .. } => Reply::new(452, [4, 7, 0], self.to_string()),
            Refusal::Mta(e) if e.is_user_error() => Reply::new(550, [5, 6, 0], e.to_string()),
            Refusal::Store(_) | Refusal::Mta(_) => {
                tracing::error!(error = %self, "submission failed internally");
                Reply::temporary_failure()
            }
        }
    }
}

/// A mailbox's current sending settings.
struct Sending {
    address: String,
    paused: bool,
    daily_limit: i64,
    per_minute: i64,
    time_zone: Tz,
}

fn sending(conn: &Connection, mailbox_id: i64) -> Result<Sending, Refusal> {
    conn.prepare_cached(
        "SELECT m.address, m.status, m.daily_limit, m.per_minute, w.time_zone \
         FROM mailboxes m JOIN workspaces w ON w.id = m.workspace_id WHERE m.id = ?1",
    )?
    .query_row([mailbox_id], |row| {
        let status: String = row.get(1)?;
        let zone: String = row.get(4)?;
        Ok(Sending {
            address: row.get(0)?,
            paused: !crate::mailbox::create::may_send(status.parse().unwrap_or(crate::mailbox::Status::Paused)),
            daily_limit: row.get(2)?,
            per_minute: row.get(3)?,
            time_zone: Tz::from_str(&zone).unwrap_or(Tz::UTC),
        })
    })
    .optional()?
    .ok_or(Refusal::Gone)
}

/// The day `now` falls on in `zone`, as `send_counts.day` stores it.
pub fn local_day(zone: Tz, now: i64) -> String {
    let day = DateTime::from_timestamp(now, 0).unwrap_or_default().with_timezone(&zone).date_naive();
    format!("{:04}-{:02}-{:02}", day.year(), day.month(), day.day())
}

/// Whether the mailbox may send to `adding` more recipients now.
pub fn check(conn: &Connection, mailbox_id: i64, adding: i64, now: i64) -> Result<(), Refusal> {
    check_settings(conn, &sending(conn, mailbox_id)?, mailbox_id, adding, now)
}

fn check_settings(conn: &Connection, mailbox: &Sending, mailbox_id: i64, adding: i64, now: i64) -> Result<(), Refusal> {
    if mailbox.paused {
        return Err(Refusal::Paused { address: mailbox.address.clone() });
    }
    let sent_today: i64 = conn
        .prepare_cached("SELECT count FROM send_counts WHERE mailbox_id = ?1 AND day = ?2")?
        .query_row((mailbox_id, local_day(mailbox.time_zone, now)), |row| row.get(0))
        .optional()?
        .unwrap_or(0);
    if sent_today + adding > mailbox.daily_limit {
        return Err(Refusal::DailyLimit {
            limit: mailbox.daily_limit,
            address: mailbox.address.clone(),
            time_zone: mailbox.time_zone.name().to_string(),
        });
    }
    if mailbox.per_minute > 0 {
        let last_minute: i64 = conn
            .prepare_cached("SELECT coalesce(sum(count), 0) FROM send_seconds WHERE mailbox_id = ?1 AND second > ?2")?
            .query_row((mailbox_id, now - WINDOW), |row| row.get(0))?;
        if last_minute + adding > mailbox.per_minute {
            return Err(Refusal::PerMinute { limit: mailbox.per_minute, address: mailbox.address.clone() });
        }
    }
    Ok(())
}

/// Checks the limits and counts `adding` recipients against today, in the caller's transaction.
pub fn record(conn: &Connection, mailbox_id: i64, adding: i64, now: i64) -> Result<(), Refusal> {
    let mailbox = sending(conn, mailbox_id)?;
    check_settings(conn, &mailbox, mailbox_id, adding, now)?;
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

    #[tokio::test]
    async fn the_daily_limit_counts_recipients_and_resets_at_local_midnight() {
        let (_dir, store) = crate::store::open_temp();
        store
            .write(|tx| {
                setup(tx, "Europe/Berlin", 3, 0)?;
                let evening = LATE_EVENING_UTC - 3600; // 22:30 UTC = 23:30 in Berlin
                record(tx, 1, 2, evening)?;
                assert!(check(tx, 1, 1, evening).is_ok());
                assert!(check(tx, 1, 2, evening).is_err());
                record(tx, 1, 1, evening)?;
                let refusal = record(tx, 1, 1, evening).unwrap_err();
                assert_eq!(
                    refusal.to_string(),
                    "daily limit of 3 messages reached for bob@x.test; resets at midnight Europe/Berlin"
                );
                assert_eq!(refusal.reply().code, 452);
                assert!(record(tx, 1, 3, LATE_EVENING_UTC).is_ok(), "a new day in Berlin");
                let counted: i64 = tx.query_row("SELECT count(*) FROM send_seconds", [], |row| row.get(0))?;
                assert_eq!(counted, 0, "no per-minute rate, no per-second rows");
                Ok::<_, Refusal>(())
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
                record(tx, 1, 2, 1000)?;
                record(tx, 1, 1, 1030)?;
                assert!(matches!(check(tx, 1, 1, 1030), Err(Refusal::PerMinute { limit: 3, .. })));
                assert!(matches!(record(tx, 1, 1, 1059), Err(Refusal::PerMinute { .. })), "nothing has left yet");
                assert!(check(tx, 1, 2, 1060).is_ok(), "the first two left the window");
                assert!(check(tx, 1, 3, 1060).is_err(), "the third is still in it");
                record(tx, 1, 2, 1060)?;
                let rows: i64 = tx.query_row("SELECT count(*) FROM send_seconds", [], |row| row.get(0))?;
                assert_eq!(rows, 2, "rows older than the window are dropped as sends are recorded");
                tx.execute("UPDATE mailboxes SET status = 'paused' WHERE id = 1", [])?;
                let paused = check(tx, 1, 1, 1060).unwrap_err();
                assert_eq!(
                    paused.reply().to_string(),
                    "550 5.7.1 bob@x.test is paused and cannot send; resume it in InboxGrove\r\n"
                );
                assert!(matches!(check(tx, 2, 1, 1060), Err(Refusal::Gone)));
                Ok::<_, Refusal>(())
            })
            .await
            .unwrap();
    }
}
