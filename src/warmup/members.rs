//! The warmup pool of a workspace (`warmup_members`, owned here) and the workspace's warmup
//! settings (the ramp curve, the share of warmup mail answered, the daily window).
//!
//! A member is any sending mailbox of the workspace: an own mailbox or a connected outside
//! account (both are `mailboxes` rows). Enrolling is idempotent: enrolling a member again keeps
//! its day 1. A role mailbox (it never sends campaigns) cannot be enrolled.

use chrono_tz::Tz;
use rusqlite::{Connection, OptionalExtension, Transaction};

use super::plan::Member;
use super::ramp::Curve;
use crate::audit;
use crate::campaign::windows::{self, Window};
use crate::error::{Error, Result};
use crate::workspaces::{Access, Role};

/// A workspace's warmup settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Settings {
    pub curve: Curve,
    /// Percent of received warmup messages a member answers.
    pub reply_percent: i64,
    /// Minutes after local midnight the daily window opens and closes.
    pub window_start: u32,
    pub window_end: u32,
    pub time_zone: Tz,
}

impl Settings {
    /// The daily window warmup mail goes out in, every day of the week.
    #[must_use]
    pub fn window(&self) -> Window {
        Window { zone: self.time_zone, days: [true; 7], start: self.window_start, end: self.window_end }
    }
}

/// The workspace's warmup settings.
pub fn settings(conn: &Connection, workspace_id: i64) -> Result<Settings> {
    let row = conn
        .prepare_cached(
            "SELECT warmup_start, warmup_target, warmup_days, warmup_reply_percent, warmup_window_start, \
             warmup_window_end, time_zone FROM workspaces WHERE id = ?1",
        )?
        .query_row([workspace_id], |row| {
            Ok((
                Curve { start: row.get(0)?, target: row.get(1)?, ramp_days: row.get(2)? },
                row.get::<_, i64>(3)?,
                row.get::<_, u32>(4)?,
                row.get::<_, u32>(5)?,
                row.get::<_, String>(6)?,
            ))
        })
        .optional()?
        .ok_or(Error::NotFound)?;
    let (curve, reply_percent, window_start, window_end, zone) = row;
    Ok(Settings { curve, reply_percent, window_start, window_end, time_zone: zone.parse().unwrap_or(Tz::UTC) })
}

/// Checks settings from a form or the command line: the curve, a percent, and `HH:MM` times.
pub fn check_settings(curve: Curve, reply_percent: i64, window_start: &str, window_end: &str) -> Result<(u32, u32)> {
    Curve::new(curve.start, curve.target, curve.ramp_days)?;
    if !(0..=100).contains(&reply_percent) {
        return Err(Error::invalid("warmup_reply_percent", "The share of warmup mail answered is 0 to 100 percent."));
    }
    let start = windows::parse_clock(window_start)
        .map_err(|e| Error::invalid("warmup_window_start", format!("{e}; write a time as HH:MM, e.g. 08:00.")))?;
    let end = windows::parse_clock(window_end)
        .map_err(|e| Error::invalid("warmup_window_end", format!("{e}; write a time as HH:MM, e.g. 18:00.")))?;
    if end <= start {
        return Err(Error::invalid("warmup_window_end", "The window must close after it opens."));
    }
    Ok((start, end))
}

/// Stores checked settings (see [`check_settings`]).
pub fn save_settings(
    tx: &Transaction,
    workspace_id: i64,
    curve: Curve,
    reply_percent: i64,
    window: (u32, u32),
) -> Result<()> {
    tx.prepare_cached(
        "UPDATE workspaces SET warmup_start = ?2, warmup_target = ?3, warmup_days = ?4, warmup_reply_percent = ?5, \
         warmup_window_start = ?6, warmup_window_end = ?7 WHERE id = ?1",
    )?
    .execute((workspace_id, curve.start, curve.target, curve.ramp_days, reply_percent, window.0, window.1))?;
    Ok(())
}

/// A member's enrolment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Enrolment {
    pub enrolled_day: String,
    pub enrolled_at: i64,
}

/// The mailbox's enrolment, if it is in the pool.
pub fn enrolment(conn: &Connection, mailbox_id: i64) -> rusqlite::Result<Option<Enrolment>> {
    conn.prepare_cached("SELECT enrolled_day, enrolled_at FROM warmup_members WHERE mailbox_id = ?1")?
        .query_row([mailbox_id], |row| Ok(Enrolment { enrolled_day: row.get(0)?, enrolled_at: row.get(1)? }))
        .optional()
}

/// Puts a mailbox of the workspace into the pool; true when it was not in it yet.
pub fn enroll(tx: &Transaction, workspace_id: i64, mailbox_id: i64, now: i64) -> Result<bool> {
    let mailbox = crate::mailbox::get(tx, workspace_id, mailbox_id)?;
    if !mailbox.sends_campaigns() {
        return Err(Error::invalid(
            "mailbox",
            format!("{} is the domain's role mailbox: it receives role mail and sends no warmup.", mailbox.address),
        ));
    }
    let zone = crate::workspaces::time_zone(tx, workspace_id)?;
    let added = tx
        .prepare_cached(
            "INSERT INTO warmup_members (mailbox_id, workspace_id, enrolled_day, enrolled_at) VALUES (?1, ?2, ?3, ?4) \
             ON CONFLICT (mailbox_id) DO NOTHING",
        )?
        .execute((mailbox_id, workspace_id, windows::local_day(now, zone), now))?;
    Ok(added == 1)
}

/// Enrolls (`on`) or unenrolls a mailbox as `access`, audited; true when that changed anything.
pub fn set_enrolled(tx: &Transaction, access: &Access, mailbox_id: i64, on: bool, now: i64) -> Result<bool> {
    access.workspace.role.require(Role::Member)?;
    let workspace_id = access.workspace.id;
    let changed = if on { enroll(tx, workspace_id, mailbox_id, now)? } else { unenroll(tx, workspace_id, mailbox_id)? };
    if changed {
        let address = crate::mailbox::get(tx, workspace_id, mailbox_id)?.address;
        let action = if on { "warmup.enroll" } else { "warmup.unenroll" };
        audit::record(tx, Some(workspace_id), &access.actor, action, &address, "", now)?;
    }
    Ok(changed)
}

/// Checks and stores new settings as `access`, audited (see [`check_settings`]).
pub fn update_settings(
    tx: &Transaction,
    access: &Access,
    curve: Curve,
    reply_percent: i64,
    window: (&str, &str),
    now: i64,
) -> Result<()> {
    access.workspace.role.require(Role::Admin)?;
    let minutes = check_settings(curve, reply_percent, window.0, window.1)?;
    save_settings(tx, access.workspace.id, curve, reply_percent, minutes)?;
    let detail = format!(
        "{} to {} over {} days, {reply_percent}% answered, {}-{}",
        curve.start, curve.target, curve.ramp_days, window.0, window.1
    );
    audit::record(tx, Some(access.workspace.id), &access.actor, "warmup.settings", "warmup", &detail, now)?;
    Ok(())
}

/// Takes a mailbox out of the pool, dropping what it had planned and not sent; true when it was in.
pub fn unenroll(tx: &Transaction, workspace_id: i64, mailbox_id: i64) -> Result<bool> {
    crate::mailbox::get(tx, workspace_id, mailbox_id)?;
    let removed = tx
        .prepare_cached("DELETE FROM warmup_members WHERE mailbox_id = ?1 AND workspace_id = ?2")?
        .execute((mailbox_id, workspace_id))?;
    tx.prepare_cached(
        "UPDATE warmup_sends SET status = 'skipped', detail = 'left the warmup pool' \
         WHERE status = 'planned' AND (sender_id = ?1 OR recipient_id = ?1)",
    )?
    .execute([mailbox_id])?;
    tx.prepare_cached("DELETE FROM warmup_days WHERE mailbox_id = ?1")?.execute([mailbox_id])?;
    Ok(removed == 1)
}

/// The workspace's pool, as the planner sees it (the domain is the address's domain).
pub fn pool(conn: &Connection, workspace_id: i64) -> rusqlite::Result<Vec<Member>> {
    let mut stmt = conn.prepare_cached(
        "SELECT m.id, m.address FROM warmup_members w JOIN mailboxes m ON m.id = w.mailbox_id \
         WHERE w.workspace_id = ?1 ORDER BY m.id",
    )?;
    stmt.query_map([workspace_id], |row| {
        let address: String = row.get(1)?;
        let domain = address.rsplit_once('@').map(|(_, d)| d.to_ascii_lowercase()).unwrap_or_default();
        Ok(Member { mailbox_id: row.get(0)?, domain })
    })?
    .collect()
}

/// The workspaces that have a warmup pool.
pub fn workspaces(conn: &Connection) -> rusqlite::Result<Vec<i64>> {
    let mut stmt = conn.prepare_cached("SELECT DISTINCT workspace_id FROM warmup_members ORDER BY workspace_id")?;
    stmt.query_map([], |row| row.get(0))?.collect()
}

/// Whether the mailbox is in a pool.
pub fn is_member(conn: &Connection, mailbox_id: i64) -> rusqlite::Result<bool> {
    Ok(enrolment(conn, mailbox_id)?.is_some())
}
