//! Campaigns, their steps and variants, pools and lists: the one owner of the `campaigns`,
//! `campaign_steps`, `campaign_variants`, `campaign_mailboxes` and `campaign_lists` tables, and
//! of the state changes a user makes (create, start, pause, resume). Starting a campaign enrolls
//! every lead of its lists in `campaign_leads`, due at the campaign's start; leads that join a
//! targeted list later are enrolled by [`enroll_lead`] in the write that adds them.

use chrono_tz::Tz;
use rusqlite::{Connection, OptionalExtension, Transaction};
use serde::Serialize;

use crate::audit;
use crate::campaign::windows::{self, Delay, Window};
use crate::error::{Error, Result};
use crate::workspaces::{Access, Role};

/// Where a campaign stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum CampaignStatus {
    Draft,
    Active,
    Paused,
    Completed,
}

impl CampaignStatus {
    pub const ALL: [CampaignStatus; 4] =
        [CampaignStatus::Draft, CampaignStatus::Active, CampaignStatus::Paused, CampaignStatus::Completed];

    pub fn as_str(self) -> &'static str {
        match self {
            CampaignStatus::Draft => "draft",
            CampaignStatus::Active => "active",
            CampaignStatus::Paused => "paused",
            CampaignStatus::Completed => "completed",
        }
    }

    /// Words for a page.
    pub fn label(self) -> &'static str {
        match self {
            CampaignStatus::Draft => "Draft",
            CampaignStatus::Active => "Active",
            CampaignStatus::Paused => "Paused",
            CampaignStatus::Completed => "Completed",
        }
    }
}

crate::store::names::stored_name!(CampaignStatus, "status");

/// The unit of a step's delay.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum DelayUnit {
    Days,
    BusinessDays,
    Hours,
}

impl DelayUnit {
    pub const ALL: [DelayUnit; 3] = [DelayUnit::Days, DelayUnit::BusinessDays, DelayUnit::Hours];

    pub fn as_str(self) -> &'static str {
        match self {
            DelayUnit::Days => "days",
            DelayUnit::BusinessDays => "business_days",
            DelayUnit::Hours => "hours",
        }
    }
}

crate::store::names::stored_name!(DelayUnit, "delay_unit");

/// A campaign's settings, checked (as a file, a form or the API gives them).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Settings {
    pub name: String,
    pub time_zone: Tz,
    pub days: [bool; 7],
    /// Minutes after local midnight.
    pub window_start: u32,
    pub window_end: u32,
    pub use_lead_time_zone: bool,
    /// `YYYY-MM-DD` in the campaign's zone; "" for "when started".
    pub start_date: String,
    pub daily_cap: u32,
    pub min_gap_seconds: u32,
    pub jitter_seconds: u32,
    pub stop_on_reply: bool,
    pub stop_company_on_reply: bool,
    pub track_opens: bool,
    pub track_clicks: bool,
    pub unsubscribe_footer: bool,
}

/// A step as given.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewStep {
    pub delay: u32,
    pub delay_unit: DelayUnit,
    pub new_thread: bool,
    pub variants: Vec<NewVariant>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewVariant {
    pub subject: String,
    pub body: String,
    pub html: String,
    pub weight: u32,
}

/// A whole campaign as given: settings, pool (addresses), lists (names) and steps.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewCampaign {
    pub settings: Settings,
    pub mailboxes: Vec<String>,
    pub lists: Vec<String>,
    pub steps: Vec<NewStep>,
}

/// A stored campaign.
#[derive(Debug, Clone)]
pub struct Campaign {
    pub id: i64,
    pub workspace_id: i64,
    pub status: CampaignStatus,
    pub settings: Settings,
    pub created_at: i64,
    pub started_at: Option<i64>,
}

impl Campaign {
    /// The send window in the campaign's zone.
    pub fn window(&self) -> Window {
        let s = &self.settings;
        Window { zone: s.time_zone, days: s.days, start: s.window_start, end: s.window_end }
    }

    /// The zone a lead's sends are timed in: the lead's own when the campaign uses it and the
    /// lead has a valid one, else the campaign's.
    pub fn zone_for(&self, lead_zone: &str) -> Tz {
        if self.settings.use_lead_time_zone
            && let Ok(zone) = lead_zone.trim().parse::<Tz>()
        {
            return zone;
        }
        self.settings.time_zone
    }
}

/// A stored step with its variants.
#[derive(Debug, Clone)]
pub struct Step {
    pub id: i64,
    pub position: i64,
    pub delay: u32,
    pub delay_unit: DelayUnit,
    pub new_thread: bool,
    pub variants: Vec<Variant>,
}

impl Step {
    pub fn delay(&self) -> Delay {
        match self.delay_unit {
            DelayUnit::Days => Delay::Days(self.delay),
            DelayUnit::BusinessDays => Delay::BusinessDays(self.delay),
            DelayUnit::Hours => Delay::Hours(self.delay),
        }
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct Variant {
    pub id: i64,
    pub label: String,
    pub subject: String,
    pub body: String,
    pub html: String,
    pub weight: u32,
}

const SELECT: &str = "SELECT id, workspace_id, name, status, time_zone, days, window_start, window_end, \
    use_lead_time_zone, start_date, daily_cap, min_gap_seconds, jitter_seconds, stop_on_reply, stop_company_on_reply, \
    track_opens, track_clicks, unsubscribe_footer, created_at, started_at FROM campaigns";

fn from_row(row: &rusqlite::Row<'_>) -> rusqlite::Result<Campaign> {
    let zone: String = row.get(4)?;
    let days: String = row.get(5)?;
    Ok(Campaign {
        id: row.get(0)?,
        workspace_id: row.get(1)?,
        status: row.get(3)?,
        settings: Settings {
            name: row.get(2)?,
            time_zone: zone.parse().unwrap_or(Tz::UTC),
            days: windows::parse_days_str(&days).unwrap_or([false; 7]),
            window_start: row.get(6)?,
            window_end: row.get(7)?,
            use_lead_time_zone: row.get(8)?,
            start_date: row.get(9)?,
            daily_cap: row.get(10)?,
            min_gap_seconds: row.get(11)?,
            jitter_seconds: row.get(12)?,
            stop_on_reply: row.get(13)?,
            stop_company_on_reply: row.get(14)?,
            track_opens: row.get(15)?,
            track_clicks: row.get(16)?,
            unsubscribe_footer: row.get(17)?,
        },
        created_at: row.get(18)?,
        started_at: row.get(19)?,
    })
}

/// A campaign of the workspace.
pub fn get(conn: &Connection, workspace: i64, id: i64) -> Result<Campaign> {
    conn.prepare_cached(&format!("{SELECT} WHERE workspace_id = ?1 AND id = ?2"))?
        .query_row((workspace, id), from_row)
        .optional()?
        .ok_or(Error::NotFound)
}

/// A campaign by id, whatever its workspace (the command line finds the workspace this way).
pub fn by_id(conn: &Connection, id: i64) -> rusqlite::Result<Option<Campaign>> {
    conn.prepare_cached(&format!("{SELECT} WHERE id = ?1"))?.query_row([id], from_row).optional()
}

/// The workspace's campaigns, newest first.
pub fn list(conn: &Connection, workspace: i64) -> rusqlite::Result<Vec<Campaign>> {
    conn.prepare_cached(&format!("{SELECT} WHERE workspace_id = ?1 ORDER BY id DESC"))?
        .query_map([workspace], from_row)?
        .collect()
}

/// Every active campaign of the appliance, for the engine.
pub fn active(conn: &Connection) -> rusqlite::Result<Vec<Campaign>> {
    conn.prepare_cached(&format!("{SELECT} WHERE status = 'active' ORDER BY id"))?.query_map([], from_row)?.collect()
}

/// A campaign's steps in order, with their variants.
pub fn steps(conn: &Connection, campaign: i64) -> rusqlite::Result<Vec<Step>> {
    let mut steps: Vec<Step> = conn
        .prepare_cached(
            "SELECT id, position, delay, delay_unit, new_thread FROM campaign_steps WHERE campaign_id = ?1 \
             ORDER BY position, id",
        )?
        .query_map([campaign], |row| {
            Ok(Step {
                id: row.get(0)?,
                position: row.get(1)?,
                delay: row.get(2)?,
                delay_unit: row.get(3)?,
                new_thread: row.get(4)?,
                variants: Vec::new(),
            })
        })?
        .collect::<rusqlite::Result<_>>()?;
    let mut variants = conn.prepare_cached(
        "SELECT id, label, subject, body, html, weight FROM campaign_variants WHERE step_id = ?1 ORDER BY id",
    )?;
    for step in &mut steps {
        step.variants = variants
            .query_map([step.id], |row| {
                Ok(Variant {
                    id: row.get(0)?,
                    label: row.get(1)?,
                    subject: row.get(2)?,
                    body: row.get(3)?,
                    html: row.get(4)?,
                    weight: row.get(5)?,
                })
            })?
            .collect::<rusqlite::Result<_>>()?;
    }
    Ok(steps)
}

/// The ids of a campaign's rotation pool.
pub fn pool(conn: &Connection, campaign: i64) -> rusqlite::Result<Vec<i64>> {
    conn.prepare_cached("SELECT mailbox_id FROM campaign_mailboxes WHERE campaign_id = ?1 ORDER BY mailbox_id")?
        .query_map([campaign], |row| row.get(0))?
        .collect()
}

/// The names of a campaign's lead lists.
pub fn list_names(conn: &Connection, campaign: i64) -> rusqlite::Result<Vec<String>> {
    conn.prepare_cached(
        "SELECT l.name FROM campaign_lists c JOIN lead_lists l ON l.id = c.list_id WHERE c.campaign_id = ?1 ORDER BY l.name",
    )?
    .query_map([campaign], |row| row.get(0))?
    .collect()
}

/// Checks a campaign as given (the parts that need no store).
pub fn check(campaign: &NewCampaign) -> Result<()> {
    let s = &campaign.settings;
    if s.name.trim().is_empty() || s.name.chars().count() > 200 {
        return Err(Error::invalid("name", "Give the campaign a name of 1 to 200 characters."));
    }
    if !s.days.iter().any(|day| *day) {
        return Err(Error::invalid("days", "Choose at least one day of the week to send on."));
    }
    if s.window_start >= s.window_end {
        return Err(Error::invalid("start", "The send window must start before it ends (for example 09:00 to 17:00)."));
    }
    if campaign.mailboxes.is_empty() {
        return Err(Error::invalid("mailboxes", "Choose at least one mailbox to send from."));
    }
    if campaign.lists.is_empty() {
        return Err(Error::invalid("lists", "Choose at least one lead list."));
    }
    if campaign.steps.is_empty() {
        return Err(Error::invalid("steps", "Add at least one step."));
    }
    if !s.start_date.is_empty() && chrono::NaiveDate::parse_from_str(&s.start_date, "%Y-%m-%d").is_err() {
        return Err(Error::invalid("start_date", format!("\"{}\" is not a date such as 2026-12-07.", s.start_date)));
    }
    for (index, step) in campaign.steps.iter().enumerate() {
        check_step(index + 1, step)?;
    }
    Ok(())
}

fn check_step(number: usize, step: &NewStep) -> Result<()> {
    if step.variants.is_empty() {
        return Err(Error::invalid("steps", format!("Step {number} has no subject and body.")));
    }
    if step.variants.iter().all(|variant| variant.weight == 0) {
        return Err(Error::invalid("steps", format!("Step {number}: at least one variant needs a weight above 0.")));
    }
    let threaded = number > 1 && !step.new_thread;
    for variant in &step.variants {
        if variant.body.trim().is_empty() {
            return Err(Error::invalid("steps", format!("Step {number} has a variant with an empty body.")));
        }
        if variant.subject.trim().is_empty() && !threaded {
            return Err(Error::invalid(
                "steps",
                format!("Step {number} needs a subject (only a follow-up in the same thread may leave it empty)."),
            ));
        }
    }
    Ok(())
}

/// Variant labels: A, B, C...
fn label(index: usize) -> String {
    let letters = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ";
    letters.get(index).map_or_else(|| format!("V{}", index + 1), |letter| char::from(*letter).to_string())
}

/// Creates a draft campaign in the workspace (member role), with one audit entry.
pub fn create(tx: &Transaction, access: &Access, campaign: &NewCampaign, now: i64) -> Result<i64> {
    access.workspace.role.require(Role::Member)?;
    check(campaign)?;
    let workspace = access.workspace.id;
    let mailboxes = pool_ids(tx, workspace, &campaign.mailboxes)?;
    let lists = list_ids(tx, workspace, &campaign.lists)?;
    let s = &campaign.settings;
    tx.execute(
        "INSERT INTO campaigns (workspace_id, name, time_zone, days, window_start, window_end, use_lead_time_zone, \
         start_date, daily_cap, min_gap_seconds, jitter_seconds, stop_on_reply, stop_company_on_reply, track_opens, \
         track_clicks, unsubscribe_footer, created_at, updated_at) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17, ?17)",
        rusqlite::params![
            workspace,
            s.name.trim(),
            s.time_zone.name(),
            windows::days_to_string(&s.days),
            s.window_start,
            s.window_end,
            s.use_lead_time_zone,
            s.start_date,
            s.daily_cap,
            s.min_gap_seconds,
            s.jitter_seconds,
            s.stop_on_reply,
            s.stop_company_on_reply,
            s.track_opens,
            s.track_clicks,
            s.unsubscribe_footer,
            now
        ],
    )?;
    let id = tx.last_insert_rowid();
    for mailbox in mailboxes {
        tx.execute(
            "INSERT OR IGNORE INTO campaign_mailboxes (campaign_id, mailbox_id) VALUES (?1, ?2)",
            (id, mailbox),
        )?;
    }
    for list in lists {
        tx.execute("INSERT OR IGNORE INTO campaign_lists (campaign_id, list_id) VALUES (?1, ?2)", (id, list))?;
    }
    for (index, step) in campaign.steps.iter().enumerate() {
        insert_step(tx, id, i64::try_from(index + 1).unwrap_or(i64::MAX), step, now)?;
    }
    audit::record(tx, Some(workspace), &access.actor, "campaign.create", s.name.trim(), "draft", now)?;
    Ok(id)
}

fn insert_step(tx: &Transaction, campaign: i64, position: i64, step: &NewStep, now: i64) -> Result<()> {
    tx.execute(
        "INSERT INTO campaign_steps (campaign_id, position, delay, delay_unit, new_thread, created_at) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
        (campaign, position, step.delay, step.delay_unit, step.new_thread, now),
    )?;
    let step_id = tx.last_insert_rowid();
    for (index, variant) in step.variants.iter().enumerate() {
        tx.execute(
            "INSERT INTO campaign_variants (step_id, label, subject, body, html, weight) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
            (step_id, label(index), variant.subject.trim(), &variant.body, &variant.html, variant.weight),
        )?;
    }
    Ok(())
}

/// The ids of the pool's mailboxes, each an own mailbox of the workspace that sends campaigns.
fn pool_ids(conn: &Connection, workspace: i64, addresses: &[String]) -> Result<Vec<i64>> {
    let mut ids = Vec::new();
    for address in addresses {
        let address = address.trim().to_lowercase();
        let found: Option<(i64, bool)> = conn
            .prepare_cached("SELECT id, role FROM mailboxes WHERE workspace_id = ?1 AND address = ?2")?
            .query_row((workspace, &address), |row| Ok((row.get(0)?, row.get(1)?)))
            .optional()?;
        match found {
            None => {
                return Err(Error::invalid("mailboxes", format!("{address} is not a mailbox of this workspace.")));
            }
            Some((_, true)) => {
                return Err(Error::invalid(
                    "mailboxes",
                    format!("{address} is the domain's role mailbox (postmaster); it never sends campaigns."),
                ));
            }
            Some((id, false)) => ids.push(id),
        }
    }
    Ok(ids)
}

fn list_ids(conn: &Connection, workspace: i64, names: &[String]) -> Result<Vec<i64>> {
    names
        .iter()
        .map(|name| {
            crate::campaign::leads::list_id(conn, workspace, name)?.ok_or_else(|| {
                Error::invalid(
                    "lists",
                    format!("There is no lead list named \"{}\"; import leads into it first.", name.trim()),
                )
            })
        })
        .collect()
}

/// When a campaign's first step may go: its start date's local midnight, or now.
fn start_at(campaign: &Campaign, now: i64) -> i64 {
    let Ok(date) = chrono::NaiveDate::parse_from_str(&campaign.settings.start_date, "%Y-%m-%d") else {
        return now;
    };
    let midnight = date.and_hms_opt(0, 0, 0).unwrap_or_default();
    let local = midnight.and_local_timezone(campaign.settings.time_zone).earliest();
    local.map_or(now, |at| at.timestamp().max(now))
}

/// Enrolls the campaign's leads that are not in it yet, due for the first step.
fn enroll_all(tx: &Transaction, campaign: &Campaign, now: i64) -> Result<usize> {
    let due = first_due(tx, campaign, now)?;
    let enrolled = tx.execute(
        "INSERT OR IGNORE INTO campaign_leads (campaign_id, lead_id, status, steps_done, due_at, updated_at) \
         SELECT DISTINCT ?1, m.lead_id, 'active', 0, ?2, ?3 FROM campaign_lists c \
         JOIN lead_list_members m ON m.list_id = c.list_id JOIN leads l ON l.id = m.lead_id \
         WHERE c.campaign_id = ?1 AND l.status = 'active'",
        (campaign.id, due, now),
    )?;
    Ok(enrolled)
}

/// When a newly enrolled lead's first step is due.
fn first_due(conn: &Connection, campaign: &Campaign, now: i64) -> Result<i64> {
    let start = start_at(campaign, campaign.started_at.unwrap_or(now).max(now));
    let first = steps(conn, campaign.id)?.into_iter().next();
    Ok(first.map_or(start, |step| windows::due_after(start, step.delay(), campaign.settings.time_zone)))
}

/// Enrolls one lead just added to `list` in the started campaigns that target the list.
pub fn enroll_lead(tx: &Transaction, list: i64, lead: i64, now: i64) -> Result<()> {
    let campaigns: Vec<i64> = tx
        .prepare_cached(
            "SELECT c.id FROM campaigns c JOIN campaign_lists l ON l.campaign_id = c.id \
             WHERE l.list_id = ?1 AND c.status IN ('active', 'paused')",
        )?
        .query_map([list], |row| row.get(0))?
        .collect::<rusqlite::Result<_>>()?;
    for id in campaigns {
        let Some(campaign) = by_id(tx, id)? else { continue };
        let due = first_due(tx, &campaign, now)?;
        tx.prepare_cached(
            "INSERT OR IGNORE INTO campaign_leads (campaign_id, lead_id, status, steps_done, due_at, updated_at) \
             SELECT ?1, id, 'active', 0, ?3, ?4 FROM leads WHERE id = ?2 AND status = 'active'",
        )?
        .execute((id, lead, due, now))?;
    }
    Ok(())
}

/// Whether any started campaign targets the list (so an import must enroll what it adds).
pub fn list_is_targeted(conn: &Connection, list: i64) -> rusqlite::Result<bool> {
    conn.prepare_cached(
        "SELECT EXISTS (SELECT 1 FROM campaigns c JOIN campaign_lists l ON l.campaign_id = c.id \
         WHERE l.list_id = ?1 AND c.status IN ('active', 'paused'))",
    )?
    .query_row([list], |row| row.get(0))
}

/// Starts a draft, pauses an active campaign or resumes a paused one (member role). Starting
/// enrolls the lists' leads; resuming enrolls the leads added meanwhile.
pub fn set_status(tx: &Transaction, access: &Access, id: i64, wanted: CampaignStatus, now: i64) -> Result<Campaign> {
    access.workspace.role.require(Role::Member)?;
    let mut campaign = get(tx, access.workspace.id, id)?;
    let from = campaign.status;
    let allowed = matches!(
        (from, wanted),
        (CampaignStatus::Draft, CampaignStatus::Active)
            | (CampaignStatus::Active, CampaignStatus::Paused)
            | (CampaignStatus::Paused, CampaignStatus::Active)
    );
    if from == wanted {
        return Ok(campaign);
    }
    if !allowed {
        return Err(Error::Conflict(format!(
            "The campaign is {}; it cannot become {}.",
            from.label().to_lowercase(),
            wanted.label().to_lowercase()
        )));
    }
    if from == CampaignStatus::Draft {
        tx.execute("UPDATE campaigns SET started_at = ?2 WHERE id = ?1", (id, now))?;
        campaign.started_at = Some(now);
    }
    tx.execute("UPDATE campaigns SET status = ?2, updated_at = ?3 WHERE id = ?1", (id, wanted, now))?;
    campaign.status = wanted;
    if wanted == CampaignStatus::Active {
        enroll_all(tx, &campaign, now)?;
    }
    let action = match (from, wanted) {
        (CampaignStatus::Draft, _) => "campaign.start",
        (_, CampaignStatus::Paused) => "campaign.pause",
        _ => "campaign.resume",
    };
    audit::record(tx, Some(access.workspace.id), &access.actor, action, &campaign.settings.name, wanted.as_str(), now)?;
    Ok(campaign)
}

/// Marks a campaign completed (the engine, once no lead is left active).
pub fn complete(conn: &Connection, id: i64, now: i64) -> rusqlite::Result<()> {
    conn.prepare_cached(
        "UPDATE campaigns SET status = 'completed', updated_at = ?2 WHERE id = ?1 AND status = 'active'",
    )?
    .execute((id, now))?;
    Ok(())
}
