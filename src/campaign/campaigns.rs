//! Campaigns, their steps and variants, pools and lists: the one owner of the `campaigns`,
//! `campaign_steps`, `campaign_variants`, `campaign_mailboxes` and `campaign_lists` tables, and
//! of the state changes a user makes (create, edit, start, pause, resume). Starting a campaign
//! enrolls every lead of its lists in `campaign_leads`, due at the campaign's start; leads that
//! join a targeted list later are enrolled by [`enroll_lead`] in the write that adds them.
//!
//! Editing ([`update`]) never resends a step: a send is keyed by its step's id (the unique
//! `campaign_sends(campaign_id, lead_id, step_id)`) and a lead's progress is a count of steps
//! (`campaign_leads.steps_done`), so the steps keep their ids and their order:
//! - the settings, the pool and the lists are replaced;
//! - the steps are matched by position: each existing step is edited in place (delay, thread,
//!   its variants by position, so they keep their ids and their analytics), new ones are
//!   appended, and a step is removed only when no lead got it yet (a lead gets steps in order,
//!   so the steps sent form a prefix and no sent step ever changes position). A variant that was
//!   sent is not removed either: its weight can go to 0;
//! - a lead keeps its progress: one who got step 2 of 2 is `finished` and stays so, so a step
//!   added later goes to the leads still active (those who have not got every step yet);
//! - in a started campaign, the leads of added lists are enrolled; leads of removed lists that
//!   were sent nothing yet leave it (the others carry on); when the window, the zone, the start
//!   date or a delay changed, each active lead's next step is due again from its last send (a
//!   first step from the campaign's start) with the new rule, and the engine moves a lead that
//!   falls outside the window to its next opening as always.
//!
//! A completed campaign is kept as it ran and is not edited.

use std::collections::HashMap;

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
        "INSERT INTO campaigns (workspace_id, name, time_zone, created_at, updated_at) VALUES (?1, ?2, ?3, ?4, ?4)",
        (workspace, s.name.trim(), s.time_zone.name(), now),
    )?;
    let id = tx.last_insert_rowid();
    save_settings(tx, id, s, now)?;
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
pub fn first_due(conn: &Connection, campaign: &Campaign, now: i64) -> Result<i64> {
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

/// How many sends each step and each variant of a campaign has had, by id.
#[derive(Debug, Clone, Default)]
pub struct SentCounts {
    pub by_step: HashMap<i64, i64>,
    pub by_variant: HashMap<i64, i64>,
}

impl SentCounts {
    pub fn step(&self, id: i64) -> i64 {
        self.by_step.get(&id).copied().unwrap_or(0)
    }

    pub fn variant(&self, id: i64) -> i64 {
        self.by_variant.get(&id).copied().unwrap_or(0)
    }
}

/// The sends of a campaign counted by step and by variant.
pub fn sent_counts(conn: &Connection, campaign: i64) -> rusqlite::Result<SentCounts> {
    let mut counts = SentCounts::default();
    let mut stmt = conn.prepare_cached(
        "SELECT step_id, variant_id, count(*) FROM campaign_sends WHERE campaign_id = ?1 GROUP BY step_id, variant_id",
    )?;
    let rows =
        stmt.query_map([campaign], |row| Ok((row.get::<_, i64>(0)?, row.get::<_, Option<i64>>(1)?, row.get(2)?)));
    for row in rows? {
        let (step, variant, n): (i64, Option<i64>, i64) = row?;
        *counts.by_step.entry(step).or_default() += n;
        if let Some(variant) = variant {
            *counts.by_variant.entry(variant).or_default() += n;
        }
    }
    Ok(counts)
}

/// The addresses of a campaign's rotation pool, by address.
pub fn pool_addresses(conn: &Connection, campaign: i64) -> rusqlite::Result<Vec<String>> {
    conn.prepare_cached(
        "SELECT m.address FROM campaign_mailboxes c JOIN mailboxes m ON m.id = c.mailbox_id WHERE c.campaign_id = ?1 \
         ORDER BY m.address",
    )?
    .query_map([campaign], |row| row.get(0))?
    .collect()
}

/// The campaign's rotation pool as (id, address), by id (the order of [`pool`]).
pub fn pool_mailboxes(conn: &Connection, campaign: i64) -> rusqlite::Result<Vec<(i64, String)>> {
    conn.prepare_cached(
        "SELECT m.id, m.address FROM campaign_mailboxes c JOIN mailboxes m ON m.id = c.mailbox_id \
         WHERE c.campaign_id = ?1 ORDER BY m.id",
    )?
    .query_map([campaign], |row| Ok((row.get(0)?, row.get(1)?)))?
    .collect()
}

/// Edits a draft, active or paused campaign (member role), with one audit entry; the rules are
/// in the module doc. Refused, changing nothing: a completed campaign, a step or a variant
/// some lead already got that the edit would remove.
pub fn update(tx: &Transaction, access: &Access, id: i64, campaign: &NewCampaign, now: i64) -> Result<Campaign> {
    access.workspace.role.require(Role::Member)?;
    check(campaign)?;
    let workspace = access.workspace.id;
    let before = get(tx, workspace, id)?;
    if before.status == CampaignStatus::Completed {
        return Err(Error::Conflict(
            "The campaign is completed: every lead has finished or stopped, so it is kept as it ran. \
             Create a new campaign to write to these leads again."
                .into(),
        ));
    }
    let mailboxes = pool_ids(tx, workspace, &campaign.mailboxes)?;
    let lists = list_ids(tx, workspace, &campaign.lists)?;
    let old_steps = steps(tx, id)?;
    check_removals(&old_steps, &campaign.steps, &sent_counts(tx, id)?)?;
    let old_lists = list_names(tx, id)?;
    save_settings(tx, id, &campaign.settings, now)?;
    tx.execute("DELETE FROM campaign_mailboxes WHERE campaign_id = ?1", [id])?;
    for mailbox in mailboxes {
        tx.execute(
            "INSERT OR IGNORE INTO campaign_mailboxes (campaign_id, mailbox_id) VALUES (?1, ?2)",
            (id, mailbox),
        )?;
    }
    tx.execute("DELETE FROM campaign_lists WHERE campaign_id = ?1", [id])?;
    for list in lists {
        tx.execute("INSERT OR IGNORE INTO campaign_lists (campaign_id, list_id) VALUES (?1, ?2)", (id, list))?;
    }
    save_steps(tx, id, &old_steps, &campaign.steps, now)?;
    let after = get(tx, workspace, id)?;
    if matches!(after.status, CampaignStatus::Active | CampaignStatus::Paused) {
        if old_lists != list_names(tx, id)? {
            leave_removed_lists(tx, id)?;
            enroll_all(tx, &after, now)?;
        }
        let new_steps = steps(tx, id)?;
        if timing_changed(&before, &after, &old_steps, &new_steps) {
            reschedule(tx, &after, &new_steps, now)?;
        }
    }
    let s = &campaign.settings;
    let detail = format!(
        "{} steps, {} mailboxes, {} lists",
        campaign.steps.len(),
        campaign.mailboxes.len(),
        campaign.lists.len()
    );
    audit::record(tx, Some(workspace), &access.actor, "campaign.update", s.name.trim(), &detail, now)?;
    Ok(after)
}

/// Refuses an edit that would remove a step or a variant some lead already got.
fn check_removals(old: &[Step], new: &[NewStep], sent: &SentCounts) -> Result<()> {
    for (index, step) in old.iter().enumerate() {
        let number = index + 1;
        let Some(kept) = new.get(index) else {
            let leads = sent.step(step.id);
            if leads > 0 {
                return Err(Error::invalid(
                    "steps",
                    format!(
                        "Step {number} was already sent to {} and cannot be removed: a step sent stays in the \
                         sequence. Edit its text instead, or pause the campaign.",
                        leads_word(leads)
                    ),
                ));
            }
            continue;
        };
        for variant in step.variants.iter().skip(kept.variants.len()) {
            let leads = sent.variant(variant.id);
            if leads > 0 {
                return Err(Error::invalid(
                    "steps",
                    format!(
                        "Variant {} of step {number} was already sent to {} and cannot be removed; set its \
                         weight to 0 to stop sending it.",
                        variant.label,
                        leads_word(leads)
                    ),
                ));
            }
        }
    }
    Ok(())
}

fn leads_word(n: i64) -> String {
    if n == 1 { "1 lead".into() } else { format!("{n} leads") }
}

/// Writes every setting of a campaign (creation and edits alike).
fn save_settings(tx: &Transaction, id: i64, s: &Settings, now: i64) -> Result<()> {
    tx.execute(
        "UPDATE campaigns SET name = ?2, time_zone = ?3, days = ?4, window_start = ?5, window_end = ?6, \
         use_lead_time_zone = ?7, start_date = ?8, daily_cap = ?9, min_gap_seconds = ?10, jitter_seconds = ?11, \
         stop_on_reply = ?12, stop_company_on_reply = ?13, track_opens = ?14, track_clicks = ?15, \
         unsubscribe_footer = ?16, updated_at = ?17 WHERE id = ?1",
        rusqlite::params![
            id,
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
    Ok(())
}

/// The steps by position: edited in place, appended, or (unsent, checked before) removed.
fn save_steps(tx: &Transaction, campaign: i64, old: &[Step], new: &[NewStep], now: i64) -> Result<()> {
    for (index, step) in new.iter().enumerate() {
        let position = i64::try_from(index + 1).unwrap_or(i64::MAX);
        let Some(existing) = old.get(index) else {
            insert_step(tx, campaign, position, step, now)?;
            continue;
        };
        tx.execute(
            "UPDATE campaign_steps SET position = ?2, delay = ?3, delay_unit = ?4, new_thread = ?5 WHERE id = ?1",
            (existing.id, position, step.delay, step.delay_unit, step.new_thread),
        )?;
        for (vi, variant) in step.variants.iter().enumerate() {
            match existing.variants.get(vi) {
                Some(stored) => tx.execute(
                    "UPDATE campaign_variants SET subject = ?2, body = ?3, html = ?4, weight = ?5 WHERE id = ?1",
                    (stored.id, variant.subject.trim(), &variant.body, &variant.html, variant.weight),
                )?,
                None => tx.execute(
                    "INSERT INTO campaign_variants (step_id, label, subject, body, html, weight) \
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                    (existing.id, label(vi), variant.subject.trim(), &variant.body, &variant.html, variant.weight),
                )?,
            };
        }
        for stored in existing.variants.iter().skip(step.variants.len()) {
            tx.execute("DELETE FROM campaign_variants WHERE id = ?1", [stored.id])?;
        }
    }
    for removed in old.iter().skip(new.len()) {
        tx.execute("DELETE FROM campaign_steps WHERE id = ?1", [removed.id])?;
    }
    Ok(())
}

/// Removes the leads that were sent nothing and are no longer in any of the campaign's lists.
fn leave_removed_lists(tx: &Transaction, campaign: i64) -> Result<()> {
    tx.execute(
        "DELETE FROM campaign_leads WHERE campaign_id = ?1 AND status = 'active' AND steps_done = 0 \
         AND NOT EXISTS (SELECT 1 FROM campaign_sends s WHERE s.campaign_id = ?1 AND s.lead_id = campaign_leads.lead_id) \
         AND NOT EXISTS (SELECT 1 FROM campaign_lists c JOIN lead_list_members m ON m.list_id = c.list_id \
         WHERE c.campaign_id = ?1 AND m.lead_id = campaign_leads.lead_id)",
        [campaign],
    )?;
    Ok(())
}

/// Whether an edit changed when leads are due: the window, the zones, the start date or the
/// delay of a step that was kept (an appended step's delay counts when a lead reaches it).
fn timing_changed(before: &Campaign, after: &Campaign, old: &[Step], new: &[Step]) -> bool {
    let (a, b) = (&before.settings, &after.settings);
    before.window() != after.window()
        || a.use_lead_time_zone != b.use_lead_time_zone
        || a.start_date != b.start_date
        || old.iter().zip(new).any(|(old, new)| old.delay() != new.delay())
}

/// Makes each active lead's next step due again by the campaign's current rules: from the
/// lead's last send with the next step's delay in its zone, or for a first step from the
/// campaign's start (or start date) with the first delay.
fn reschedule(tx: &Transaction, campaign: &Campaign, steps: &[Step], now: i64) -> Result<()> {
    let start = start_at(campaign, campaign.started_at.unwrap_or(now));
    let first =
        steps.first().map_or(start, |step| windows::due_after(start, step.delay(), campaign.settings.time_zone));
    let rows: Vec<(i64, i64, String, Option<i64>, i64)> = tx
        .prepare(
            "SELECT c.lead_id, c.steps_done, l.time_zone, (SELECT max(s.sent_at) FROM campaign_sends s \
             WHERE s.campaign_id = c.campaign_id AND s.lead_id = c.lead_id), c.due_at \
             FROM campaign_leads c JOIN leads l ON l.id = c.lead_id WHERE c.campaign_id = ?1 AND c.status = 'active'",
        )?
        .query_map([campaign.id], |row| Ok((row.get(0)?, row.get(1)?, row.get(2)?, row.get(3)?, row.get(4)?)))?
        .collect::<rusqlite::Result<_>>()?;
    let mut set = tx.prepare_cached(
        "UPDATE campaign_leads SET due_at = ?3, updated_at = ?4 WHERE campaign_id = ?1 AND lead_id = ?2",
    )?;
    for (lead, steps_done, zone, last, due) in rows {
        let next = usize::try_from(steps_done).ok().and_then(|index| steps.get(index));
        let natural = match (next, last) {
            (None, _) => continue,
            (Some(_), None) => first,
            (Some(step), Some(last)) => windows::due_after(last, step.delay(), campaign.zone_for(&zone)),
        };
        if natural != due {
            set.execute((campaign.id, lead, natural, now))?;
        }
    }
    Ok(())
}

/// Up to `limit` leads (id, address) of the campaign's lists whose address contains `search`,
/// by address: the preview's lead picker.
pub fn list_leads(conn: &Connection, campaign: i64, search: &str, limit: i64) -> rusqlite::Result<Vec<(i64, String)>> {
    let pattern = format!("%{}%", search.trim().replace('\\', "\\\\").replace('%', "\\%").replace('_', "\\_"));
    conn.prepare_cached(
        "SELECT DISTINCT l.id, l.email FROM campaign_lists c JOIN lead_list_members m ON m.list_id = c.list_id \
         JOIN leads l ON l.id = m.lead_id WHERE c.campaign_id = ?1 AND l.email LIKE ?2 ESCAPE '\\' \
         ORDER BY l.email LIMIT ?3",
    )?
    .query_map((campaign, pattern, limit), |row| Ok((row.get(0)?, row.get(1)?)))?
    .collect()
}

/// Whether the lead is in one of the campaign's lists or enrolled in it.
pub fn targets_lead(conn: &Connection, campaign: i64, lead: i64) -> rusqlite::Result<bool> {
    conn.prepare_cached(
        "SELECT EXISTS (SELECT 1 FROM campaign_lists c JOIN lead_list_members m ON m.list_id = c.list_id \
         WHERE c.campaign_id = ?1 AND m.lead_id = ?2) \
         OR EXISTS (SELECT 1 FROM campaign_leads WHERE campaign_id = ?1 AND lead_id = ?2)",
    )?
    .query_row((campaign, lead), |row| row.get(0))
}

/// The mailbox that sent the lead's first step of the campaign (its follow-ups go from it).
pub fn lead_mailbox(conn: &Connection, campaign: i64, lead: i64) -> rusqlite::Result<Option<i64>> {
    Ok(conn
        .prepare_cached("SELECT mailbox_id FROM campaign_leads WHERE campaign_id = ?1 AND lead_id = ?2")?
        .query_row((campaign, lead), |row| row.get::<_, Option<i64>>(0))
        .optional()?
        .flatten())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::auth::Actor;
    use crate::workspaces::Workspace;

    const NOW: i64 = 1_780_000_000;

    fn access() -> Access {
        Access { workspace: Workspace { id: 1, name: "w".into(), role: Role::Member }, actor: Actor::cli() }
    }

    /// A workspace with a mailbox and lists A (leads 1, 2) and B (lead 3).
    fn setup(tx: &Transaction) -> rusqlite::Result<()> {
        tx.execute("INSERT INTO workspaces (id, name, time_zone, created_at) VALUES (1, 'w', 'UTC', 0)", [])?;
        tx.execute("INSERT INTO domains (id, workspace_id, name, created_at) VALUES (1, 1, 'x.test', 0)", [])?;
        tx.execute(
            "INSERT INTO mailboxes (id, workspace_id, domain_id, local_part, address, first_name, last_name, \
             display_name, password_hash, created_at) VALUES (1, 1, 1, 'ann', 'ann@x.test', 'Ann', '', 'Ann', 'x', 0)",
            [],
        )?;
        for (id, list) in [(1, "A"), (2, "B")] {
            tx.execute(
                "INSERT INTO lead_lists (id, workspace_id, name, created_at) VALUES (?1, 1, ?2, 0)",
                (id, list),
            )?;
        }
        for (lead, list) in [(1, 1), (2, 1), (3, 2)] {
            tx.execute(
                "INSERT INTO leads (id, workspace_id, email, created_at, updated_at) VALUES (?1, 1, ?2, 0, 0)",
                (lead, format!("lead{lead}@y.test")),
            )?;
            tx.execute("INSERT INTO lead_list_members (list_id, lead_id, added_at) VALUES (?1, ?2, 0)", (list, lead))?;
        }
        Ok(())
    }

    fn step(delay: u32, bodies: &[&str]) -> NewStep {
        let variants = bodies
            .iter()
            .map(|body| NewVariant { subject: "Hello".into(), body: body.to_string(), html: String::new(), weight: 1 })
            .collect();
        NewStep { delay, delay_unit: DelayUnit::Days, new_thread: false, variants }
    }

    fn campaign(lists: &[&str], steps: Vec<NewStep>) -> NewCampaign {
        NewCampaign {
            settings: Settings {
                name: "Winter".into(),
                time_zone: Tz::UTC,
                days: [true; 7],
                window_start: 0,
                window_end: 1440,
                use_lead_time_zone: false,
                start_date: String::new(),
                daily_cap: 0,
                min_gap_seconds: 0,
                jitter_seconds: 0,
                stop_on_reply: true,
                stop_company_on_reply: false,
                track_opens: false,
                track_clicks: false,
                unsubscribe_footer: false,
            },
            mailboxes: vec!["ann@x.test".into()],
            lists: lists.iter().map(|l| l.to_string()).collect(),
            steps,
        }
    }

    /// Records that `lead` got the step at `index` (its first variant, or `variant`) at `at`.
    fn sent(tx: &Transaction, id: i64, lead: i64, index: usize, variant: usize, at: i64) -> Result<()> {
        let steps = steps(tx, id)?;
        let (step, variant) = (&steps[index], &steps[index].variants[variant]);
        tx.execute(
            "INSERT INTO campaign_sends (campaign_id, lead_id, step_id, variant_id, mailbox_id, message_id, subject, \
             sent_at) VALUES (?1, ?2, ?3, ?4, 1, ?5, 'Hello', ?6)",
            (id, lead, step.id, variant.id, format!("m{lead}-{index}@x.test"), at),
        )?;
        tx.execute(
            "UPDATE campaign_leads SET steps_done = ?3, mailbox_id = 1, due_at = ?4 WHERE campaign_id = ?1 AND lead_id = ?2",
            (id, lead, i64::try_from(index + 1).unwrap(), at + 86_400),
        )?;
        Ok(())
    }

    fn lead_state(tx: &Transaction, id: i64) -> rusqlite::Result<Vec<(i64, String, i64, i64)>> {
        tx.prepare(
            "SELECT lead_id, status, steps_done, due_at FROM campaign_leads WHERE campaign_id = ?1 ORDER BY lead_id",
        )?
        .query_map([id], |row| Ok((row.get(0)?, row.get(1)?, row.get(2)?, row.get(3)?)))?
        .collect()
    }

    #[tokio::test]
    async fn an_edit_keeps_sent_steps_appends_new_ones_and_refuses_removing_what_was_sent() {
        let (_dir, store) = crate::store::open_temp();
        store
            .write(|tx| {
                setup(tx)?;
                let access = access();
                let id =
                    create(tx, &access, &campaign(&["A"], vec![step(0, &["One", "One B"]), step(2, &["Two"])]), NOW)?;
                set_status(tx, &access, id, CampaignStatus::Active, NOW)?;
                let before = steps(tx, id)?;
                sent(tx, id, 1, 0, 1, NOW)?;

                // Text edited in place, a third step appended: the ids stay, the progress too.
                let edited =
                    campaign(&["A"], vec![step(0, &["One!", "One B!"]), step(2, &["Two!"]), step(1, &["Three"])]);
                update(tx, &access, id, &edited, NOW + 10)?;
                let after = steps(tx, id)?;
                assert_eq!(after.len(), 3);
                assert_eq!((after[0].id, after[1].id), (before[0].id, before[1].id));
                assert_eq!(after[0].variants[1].id, before[0].variants[1].id);
                assert_eq!((after[0].variants[0].body.as_str(), after[2].position), ("One!", 3));
                assert_eq!(lead_state(tx, id)?[0], (1, "active".into(), 1, NOW + 86_400), "unchanged timing");

                // The sent variant B of step 1 stays; the unsent step 3 may go again.
                let without_b = campaign(&["A"], vec![step(0, &["One"]), step(2, &["Two"])]);
                let refused = update(tx, &access, id, &without_b, NOW + 20).unwrap_err();
                assert!(refused.to_string().contains("Variant B of step 1 was already sent to 1 lead"), "{refused}");
                update(tx, &access, id, &campaign(&["A"], vec![step(0, &["One", "B"]), step(2, &["Two"])]), NOW + 20)?;
                assert_eq!(steps(tx, id)?.len(), 2);

                // Step 1 was sent: it cannot be removed (nor can a sent step 2 later).
                sent(tx, id, 1, 1, 0, NOW + 30)?;
                let refused = update(tx, &access, id, &campaign(&["A"], vec![step(0, &["One", "B"])]), NOW + 40);
                assert!(refused.unwrap_err().to_string().contains("Step 2 was already sent to 1 lead"));
                Ok::<_, Error>(())
            })
            .await
            .unwrap();
    }

    #[tokio::test]
    async fn an_edit_enrolls_added_lists_drops_unsent_leads_of_removed_ones_and_reschedules() {
        let (_dir, store) = crate::store::open_temp();
        store
            .write(|tx| {
                setup(tx)?;
                let access = access();
                let id = create(tx, &access, &campaign(&["A"], vec![step(0, &["One"]), step(2, &["Two"])]), NOW)?;
                set_status(tx, &access, id, CampaignStatus::Active, NOW)?;
                sent(tx, id, 1, 0, 0, NOW)?;
                // List B added, list A removed: lead 3 joins, lead 2 (sent nothing) leaves, lead 1
                // (in sequence) carries on; step 2's delay goes from 2 days to 5.
                update(tx, &access, id, &campaign(&["B"], vec![step(0, &["One"]), step(5, &["Two"])]), NOW + 60)?;
                let states = lead_state(tx, id)?;
                assert_eq!(states.iter().map(|s| s.0).collect::<Vec<_>>(), [1, 3]);
                assert_eq!(states[0], (1, "active".into(), 1, NOW + 5 * 86_400), "due from its last send");
                assert_eq!((states[1].1.as_str(), states[1].2), ("active", 0));
                // A finished lead stays finished when a step is added.
                tx.execute("UPDATE campaign_leads SET status = 'finished' WHERE lead_id = 1", [])?;
                let three = campaign(&["B"], vec![step(0, &["One"]), step(5, &["Two"]), step(1, &["Three"])]);
                update(tx, &access, id, &three, NOW + 70)?;
                assert_eq!(lead_state(tx, id)?[0].1, "finished");
                // A completed campaign is not edited; a viewer edits nothing.
                complete(tx, id, NOW + 80)?;
                tx.execute("UPDATE campaigns SET status = 'completed' WHERE id = ?1", [id])?;
                assert!(matches!(update(tx, &access, id, &three, NOW + 90), Err(Error::Conflict(_))));
                let viewer =
                    Access { workspace: Workspace { role: Role::Viewer, ..access.workspace.clone() }, ..access };
                assert!(matches!(update(tx, &viewer, id, &three, NOW + 90), Err(Error::Forbidden)));
                Ok::<_, Error>(())
            })
            .await
            .unwrap();
    }
}
