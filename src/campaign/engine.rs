//! The engine tick: turns due (lead, step) pairs into sends. It runs about every second of real
//! time and reads the injected clock, so moving the clock moves the campaigns within seconds.
//!
//! One tick:
//! 1. applies the events past its cursor ([`reactions`]), so replies, bounces and unsubscribes
//!    stop leads first;
//! 2. for each active campaign, **plans** on a reader: the leads whose next step is due (an
//!    index over `campaign_leads(campaign_id, due_at)` of active rows, so a tick reads only what
//!    is due), each checked against the window in its zone (a lead outside its window is moved
//!    to the window's next opening, so it is not read again until then), the campaign's daily
//!    cap, and a mailbox by rotation ([`rotation`]);
//! 3. **renders and prepares** the planned messages outside any transaction (DKIM signing on
//!    blocking threads);
//! 4. **records** them in one write transaction: it applies the events again, re-reads each
//!    lead's state (a send whose lead moved on or stopped is dropped), checks the campaign cap,
//!    asks `mta::admit` (mailbox status and daily limit, suppression), then `mta::enqueue`s the
//!    message, inserts the `campaign_sends` row (unique on campaign, lead and step: a second
//!    send of a step is impossible whatever crashes) and moves the lead to its next step.
//!
//! A crash before the commit loses only the plan (the next tick plans it again); after it, the
//! message is in the queue and the step is recorded. When no lead of a campaign is left active,
//! the campaign is completed.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use rusqlite::{Connection, OptionalExtension, Transaction};

use crate::app::App;
use crate::campaign::campaigns::{self, Campaign, CampaignStatus, Step};
use crate::campaign::compose::{self, Thread, Unsubscribe};
use crate::campaign::leads::{Lead, leads_by_id};
use crate::campaign::reactions;
use crate::campaign::rotation::{self, Sender, Unavailable};
use crate::campaign::windows;
use crate::error::{Error, Result};
use crate::mta::admit::{self, AdmitError, Refusal};
use crate::mta::enqueue::{self, Outgoing, Prepared, SignerCache};
use crate::tracking::unsubscribe;

/// Sends planned and recorded together.
const BATCH: usize = 100;
/// Due rows read per plan at least (some are outside their window and only rescheduled).
const DUE_READ: usize = 500;
/// The pause between two ticks (real time).
const PAUSE: Duration = Duration::from_secs(1);
/// How far a lead is pushed when its window can never open (it waits for an edit).
const NEVER: i64 = 7 * 24 * 3600;

/// Why a campaign is not sending now (shown on its page and by `campaign show`).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case", tag = "reason")]
pub enum NotSending {
    /// Draft, paused or completed.
    NotActive { status: CampaignStatus },
    /// The due leads are outside their send window; the next opening.
    OutsideWindow { next_open: Option<i64> },
    /// Every mailbox that could send is at its daily limit.
    MailboxesAtLimit,
    /// Every mailbox that could send is paused.
    MailboxesPaused,
    /// Waiting out the minimum gap between two sends of a mailbox.
    MinimumGap,
    /// The campaign's daily cap is reached.
    CampaignCap { cap: u32 },
    /// No lead is due; when the next one is.
    NoLeadDue { next_due: Option<i64> },
}

impl NotSending {
    /// A stable code for scripts.
    pub fn code(&self) -> &'static str {
        match self {
            NotSending::NotActive { .. } => "not_active",
            NotSending::OutsideWindow { .. } => "outside_window",
            NotSending::MailboxesAtLimit => "mailboxes_at_limit",
            NotSending::MailboxesPaused => "mailboxes_paused",
            NotSending::MinimumGap => "minimum_gap",
            NotSending::CampaignCap { .. } => "campaign_cap",
            NotSending::NoLeadDue { .. } => "no_lead_due",
        }
    }

    /// Plain words for the campaign page.
    pub fn describe(&self) -> String {
        let when = |at: &Option<i64>| at.map_or_else(|| "never".to_string(), crate::clock::format_unix);
        match self {
            NotSending::NotActive { status } => format!(
                "The campaign is {}.",
                match status {
                    CampaignStatus::Draft => "a draft, not started yet",
                    other => other.as_str(),
                }
            ),
            NotSending::OutsideWindow { next_open } => {
                format!("The due leads are outside the send window; it opens next at {}.", when(next_open))
            }
            NotSending::MailboxesAtLimit => "Every mailbox is at its daily limit; they reset at midnight.".into(),
            NotSending::MailboxesPaused => "Every mailbox of the campaign is paused.".into(),
            NotSending::MinimumGap => "Waiting out the minimum gap between two sends of a mailbox.".into(),
            NotSending::CampaignCap { cap } => format!("The campaign's daily cap of {cap} is reached."),
            NotSending::NoLeadDue { next_due: None } => "No lead is due: every lead has finished or stopped.".into(),
            NotSending::NoLeadDue { next_due } => format!("No lead is due; the next is due at {}.", when(next_due)),
        }
    }
}

impl From<Unavailable> for NotSending {
    fn from(why: Unavailable) -> NotSending {
        match why {
            Unavailable::Paused => NotSending::MailboxesPaused,
            Unavailable::AtLimit => NotSending::MailboxesAtLimit,
            Unavailable::Gap => NotSending::MinimumGap,
        }
    }
}

/// One send the plan chose.
#[derive(Debug, Clone)]
struct Planned {
    lead: Lead,
    /// The lead's `steps_done` when planned (the record step checks it did not change).
    steps_done: i64,
    step: usize,
    /// That step's id when planned (an edit may change the steps before the record).
    step_id: i64,
    sender: Sender,
    thread: Option<Thread>,
}

/// What a plan found for one campaign.
#[derive(Debug, Default)]
struct Plan {
    sends: Vec<Planned>,
    /// Leads outside their window, to be due again at its opening.
    reschedule: Vec<(i64, i64)>,
    /// Leads past the last step.
    finished: Vec<i64>,
    not_sending: Vec<NotSending>,
}

/// Wakes an engine (campaigns, warmup) and tells when its last tick finished.
#[derive(Debug, Default)]
pub struct Signal {
    wake: tokio::sync::Notify,
    /// The injected clock's time at the start of the last finished tick.
    last_tick: std::sync::atomic::AtomicI64,
}

impl Signal {
    /// Runs a tick now instead of at the end of the pause.
    pub fn wake(&self) {
        self.wake.notify_one();
    }

    /// The clock time the last finished tick started at (0 before the first).
    pub fn last_tick(&self) -> i64 {
        self.last_tick.load(std::sync::atomic::Ordering::Acquire)
    }

    /// Records that a tick which started at `started` (clock time) finished.
    pub fn finished(&self, started: i64) {
        self.last_tick.store(started, std::sync::atomic::Ordering::Release);
    }

    /// Resolves when [`Signal::wake`] is called.
    pub async fn notified(&self) {
        self.wake.notified().await;
    }
}

/// Starts the engine task.
pub fn start(app: &App) {
    let app = app.clone();
    let task = app.clone();
    app.spawn_supervised("campaign engine", async move { run(task).await });
}

async fn run(app: App) -> anyhow::Result<()> {
    let signers = Arc::new(SignerCache::default());
    loop {
        let started = app.clock.unix();
        if let Err(e) = tick(&app, &signers).await {
            tracing::error!(error = %e, "campaign tick failed");
        }
        app.campaigns.finished(started);
        tokio::select! {
            _ = tokio::time::sleep(PAUSE) => {}
            _ = app.campaigns.notified() => {}
            _ = app.shutting_down() => break,
        }
    }
    Ok(())
}

/// One tick over every active campaign; returns the number of messages sent.
pub async fn tick(app: &App, signers: &Arc<SignerCache>) -> Result<usize> {
    let now = app.clock.unix();
    app.store.write(move |tx| reactions::apply(tx, now)).await?;
    let mut sent = 0;
    for campaign in app.store.read(campaigns::active).await? {
        sent += run_campaign(app, signers, &campaign).await?;
    }
    Ok(sent)
}

async fn run_campaign(app: &App, signers: &Arc<SignerCache>, campaign: &Campaign) -> Result<usize> {
    let steps = {
        let id = campaign.id;
        app.store.read(move |conn| campaigns::steps(conn, id)).await?
    };
    let mut sent = 0;
    loop {
        let now = app.clock.unix();
        let (c, s) = (campaign.clone(), steps.clone());
        let plan = app.store.read(move |conn| plan(conn, &c, &s, now, BATCH)).await?;
        let planned = plan.sends.len();
        let (reschedule, finished, id) = (plan.reschedule, plan.finished, campaign.id);
        if !reschedule.is_empty() || !finished.is_empty() {
            app.store.write(move |tx| move_leads(tx, id, &reschedule, &finished, now)).await?;
        }
        if planned == 0 {
            break;
        }
        let prepared = prepare_all(app, signers, campaign, &steps, plan.sends, now).await?;
        let c = campaign.clone();
        sent += app.store.write(move |tx| record(tx, &c, prepared, now)).await?;
        app.wakeup.notify_one();
        if planned < BATCH {
            break;
        }
    }
    let id = campaign.id;
    let now = app.clock.unix();
    app.store.write(move |tx| complete_if_done(tx, id, now)).await?;
    Ok(sent)
}

/// Plans up to `limit` sends of a campaign now (module doc, step 2).
fn plan(conn: &Connection, campaign: &Campaign, steps: &[Step], now: i64, limit: usize) -> Result<Plan> {
    let mut out = Plan::default();
    let s = &campaign.settings;
    let mut cap_left = cap_left(conn, campaign, now)?;
    let mut pool = load_pool(conn, campaign, now)?;
    let mut followers: HashMap<i64, Sender> = HashMap::new();
    let due = due_rows(conn, campaign.id, now, limit.saturating_mul(2).max(DUE_READ))?;
    let lead_ids: Vec<i64> = due.iter().map(|row| row.0).collect();
    let leads = leads_by_id(conn, &lead_ids)?;
    for (lead_id, steps_done, mailbox) in due {
        let Some(lead) = leads.get(&lead_id) else { continue };
        let Some(step) = usize::try_from(steps_done).ok().filter(|done| *done < steps.len()) else {
            out.finished.push(lead_id);
            continue;
        };
        let window = campaign.window().with_zone(campaign.zone_for(&lead.time_zone));
        if !window.is_open(now) {
            let next = window.next_open(now);
            out.reschedule.push((lead_id, next.unwrap_or(now + NEVER)));
            note(&mut out.not_sending, NotSending::OutsideWindow { next_open: next });
            continue;
        }
        if s.daily_cap > 0 && cap_left <= 0 {
            note(&mut out.not_sending, NotSending::CampaignCap { cap: s.daily_cap });
            break;
        }
        let sender = match (steps_done, mailbox) {
            (0, _) | (_, None) => match rotation::pick(&pool, now) {
                Ok(index) => {
                    pool[index].take(now, s.min_gap_seconds, s.jitter_seconds);
                    pool[index].clone()
                }
                Err(why) => {
                    note(&mut out.not_sending, why.into());
                    continue;
                }
            },
            (_, Some(mailbox)) => match follower(conn, campaign, &mut pool, &mut followers, mailbox, now)? {
                Ok(sender) => sender,
                Err(why) => {
                    // A follow-up waits for its own mailbox: moved past the wait, so it is not
                    // read again (and does not crowd out other due leads) before it can go.
                    if let Some(at) = follow_up_retry(conn, campaign, why, now)? {
                        out.reschedule.push((lead_id, at));
                    }
                    note(&mut out.not_sending, why.into());
                    continue;
                }
            },
        };
        cap_left -= 1;
        let thread = if steps_done > 0 { thread_of(conn, campaign.id, lead_id, steps)? } else { None };
        out.sends.push(Planned { lead: lead.clone(), steps_done, step, step_id: steps[step].id, sender, thread });
        if out.sends.len() >= limit {
            break;
        }
    }
    if out.sends.is_empty() && out.not_sending.is_empty() {
        out.not_sending.push(NotSending::NoLeadDue { next_due: next_due(conn, campaign.id)? });
    }
    Ok(out)
}

fn note(reasons: &mut Vec<NotSending>, reason: NotSending) {
    if !reasons.iter().any(|r| r.code() == reason.code()) {
        reasons.push(reason);
    }
}

/// When a follow-up whose mailbox cannot send now is worth reading again: after the mailbox's
/// day resets (workspace midnight) when it is at its limit, in an hour when it is paused, and
/// on the next tick when it only waits out its gap.
fn follow_up_retry(conn: &Connection, campaign: &Campaign, why: Unavailable, now: i64) -> Result<Option<i64>> {
    Ok(match why {
        Unavailable::AtLimit => {
            let zone = crate::workspaces::time_zone(conn, campaign.workspace_id)?;
            Some(windows::next_local_midnight(now, zone))
        }
        Unavailable::Paused => Some(now + 3600),
        Unavailable::Gap => None,
    })
}

/// The mailbox of a follow-up (the lead's first sender), taken for one send if it can send.
fn follower(
    conn: &Connection,
    campaign: &Campaign,
    pool: &mut [Sender],
    followers: &mut HashMap<i64, Sender>,
    mailbox: i64,
    now: i64,
) -> Result<Result<Sender, Unavailable>> {
    let s = &campaign.settings;
    let sender = match pool.iter_mut().find(|sender| sender.id == mailbox) {
        Some(sender) => sender,
        None => {
            if let std::collections::hash_map::Entry::Vacant(entry) = followers.entry(mailbox) {
                let Some(loaded) = rotation::load(conn, mailbox, s.min_gap_seconds, s.jitter_seconds, now)? else {
                    return Ok(Err(Unavailable::Paused));
                };
                entry.insert(loaded);
            }
            followers.get_mut(&mailbox).ok_or(Error::NotFound)?
        }
    };
    if let Err(why) = sender.check(now) {
        return Ok(Err(why));
    }
    sender.take(now, s.min_gap_seconds, s.jitter_seconds);
    Ok(Ok(sender.clone()))
}

/// Sends the campaign may still make today (in its zone); i64::MAX without a cap.
fn cap_left(conn: &Connection, campaign: &Campaign, now: i64) -> Result<i64> {
    if campaign.settings.daily_cap == 0 {
        return Ok(i64::MAX);
    }
    Ok(i64::from(campaign.settings.daily_cap) - sent_today(conn, campaign, now)?)
}

fn sent_today(conn: &Connection, campaign: &Campaign, now: i64) -> Result<i64> {
    let (start, end) = windows::local_day_range(now, campaign.settings.time_zone);
    Ok(conn
        .prepare_cached(
            "SELECT count(*) FROM campaign_sends WHERE campaign_id = ?1 AND sent_at >= ?2 AND sent_at < ?3",
        )?
        .query_row((campaign.id, start, end), |row| row.get(0))?)
}

fn load_pool(conn: &Connection, campaign: &Campaign, now: i64) -> Result<Vec<Sender>> {
    let s = &campaign.settings;
    let mut pool = Vec::new();
    for id in campaigns::pool(conn, campaign.id)? {
        if let Some(sender) = rotation::load(conn, id, s.min_gap_seconds, s.jitter_seconds, now)? {
            pool.push(sender);
        }
    }
    Ok(pool)
}

/// (lead, steps done, first mailbox) of the active leads due now, earliest first.
fn due_rows(conn: &Connection, campaign: i64, now: i64, read: usize) -> Result<Vec<(i64, i64, Option<i64>)>> {
    Ok(conn
        .prepare_cached(
            "SELECT lead_id, steps_done, mailbox_id FROM campaign_leads INDEXED BY campaign_leads_due \
             WHERE campaign_id = ?1 AND status = 'active' AND due_at <= ?2 ORDER BY due_at LIMIT ?3",
        )?
        .query_map((campaign, now, i64::try_from(read).unwrap_or(i64::MAX)), |row| {
            Ok((row.get(0)?, row.get(1)?, row.get(2)?))
        })?
        .collect::<rusqlite::Result<_>>()?)
}

fn next_due(conn: &Connection, campaign: i64) -> Result<Option<i64>> {
    Ok(conn
        .prepare_cached(
            "SELECT min(due_at) FROM campaign_leads INDEXED BY campaign_leads_due WHERE campaign_id = ?1 AND status = 'active'",
        )?
        .query_row([campaign], |row| row.get(0))?)
}

/// The thread a follow-up continues: the lead's sends in this campaign since the last step that
/// started a new thread.
fn thread_of(conn: &Connection, campaign: i64, lead: i64, steps: &[Step]) -> Result<Option<Thread>> {
    let sends: Vec<(i64, String, String)> = conn
        .prepare_cached(
            "SELECT step_id, message_id, subject FROM campaign_sends WHERE campaign_id = ?1 AND lead_id = ?2 ORDER BY id",
        )?
        .query_map((campaign, lead), |row| Ok((row.get(0)?, row.get(1)?, row.get(2)?)))?
        .collect::<rusqlite::Result<_>>()?;
    let mut thread: Option<Thread> = None;
    for (step_id, message_id, subject) in sends {
        let starts = steps.iter().find(|step| step.id == step_id).is_some_and(|step| step.new_thread);
        match thread.as_mut() {
            Some(current) if !starts => current.message_ids.push(message_id),
            _ => thread = Some(Thread { subject, message_ids: vec![message_id] }),
        }
    }
    Ok(thread)
}

/// A planned send, rendered and prepared.
struct Ready {
    planned: Planned,
    variant_id: i64,
    message_id: String,
    subject: String,
    /// The links click tracking rewrote, stored with the send.
    links: Vec<String>,
    prepared: Prepared,
}

/// Renders and prepares the planned sends (module doc, step 3), concurrently: signing runs on
/// blocking threads, one per core (the [`SignerCache`] limits it).
async fn prepare_all(
    app: &App,
    signers: &Arc<SignerCache>,
    campaign: &Campaign,
    steps: &[Step],
    sends: Vec<Planned>,
    now: i64,
) -> Result<Vec<Ready>> {
    let footer_address = if campaign.settings.unsubscribe_footer {
        let workspace = campaign.workspace_id;
        Some(app.store.read(move |conn| crate::workspaces::postal_address(conn, workspace)).await?)
    } else {
        None
    };
    let mut tasks = tokio::task::JoinSet::new();
    for (index, planned) in sends.into_iter().enumerate() {
        let (app, signers, campaign) = (app.clone(), signers.clone(), campaign.clone());
        let step = steps[planned.step].clone();
        let footer_address = footer_address.clone();
        tasks.spawn(async move {
            let ready = prepare_one(&app, &signers, &campaign, &step, planned, footer_address, now).await;
            (index, ready)
        });
    }
    let mut ready = Vec::new();
    while let Some(joined) = tasks.join_next().await {
        let (index, one) = joined.map_err(|e| Error::Internal(format!("preparing a campaign send failed: {e}")))?;
        if let Some(one) = one? {
            ready.push((index, one));
        }
    }
    ready.sort_by_key(|(index, _)| *index);
    Ok(ready.into_iter().map(|(_, one)| one).collect())
}

async fn prepare_one(
    app: &App,
    signers: &SignerCache,
    campaign: &Campaign,
    step: &Step,
    planned: Planned,
    footer_address: Option<String>,
    now: i64,
) -> Result<Option<Ready>> {
    let Some(rendered) = compose::render(campaign.id, step, &planned.lead, &planned.sender) else {
        return Ok(None);
    };
    let unsubscribe = unsubscribe_for(app, campaign, &planned, footer_address);
    let tracking = crate::tracking::Tracking::for_send(app, campaign, planned.sender.id).await?;
    let (lead, sender, thread) = (&planned.lead, &planned.sender, planned.thread.as_ref());
    let composed = compose::compose(&rendered, step, lead, sender, thread, &unsubscribe, tracking.as_ref(), now);
    let outgoing = Outgoing {
        workspace_id: campaign.workspace_id,
        mailbox_id: Some(planned.sender.id),
        mail_from: planned.sender.address.clone(),
        recipients: vec![planned.lead.email.clone()],
        raw: composed.raw,
        trace: String::new(),
    };
    let prepared = enqueue::prepare_cached(app, signers, outgoing).await?;
    Ok(Some(Ready {
        planned,
        variant_id: rendered.variant_id,
        message_id: composed.message_id,
        subject: composed.subject,
        links: composed.links,
        prepared,
    }))
}

fn unsubscribe_for(app: &App, campaign: &Campaign, planned: &Planned, footer_address: Option<String>) -> Unsubscribe {
    let (workspace, mailbox, email) = (campaign.workspace_id, Some(planned.sender.id), &planned.lead.email);
    let token = unsubscribe::token(&app.keys, workspace, mailbox, email);
    let domain = planned.sender.address.rsplit_once('@').map_or("", |(_, domain)| domain);
    let mailto = format!("{}@{domain}", unsubscribe::mailto_local_part(&app.keys, workspace, mailbox, email));
    let base = &app.config.http.base_url;
    Unsubscribe {
        headers: unsubscribe::headers(base, &token, Some(&mailto)),
        link: if base.is_empty() { String::new() } else { format!("{base}/unsubscribe/{token}") },
        footer_address,
    }
}

/// Records the prepared sends (module doc, step 4); returns how many were sent.
fn record(tx: &Transaction, campaign: &Campaign, ready: Vec<Ready>, now: i64) -> Result<usize> {
    reactions::apply(tx, now)?;
    let status: Option<CampaignStatus> =
        tx.query_row("SELECT status FROM campaigns WHERE id = ?1", [campaign.id], |row| row.get(0)).optional()?;
    if status != Some(CampaignStatus::Active) {
        return Ok(0);
    }
    let mut sent = 0;
    // The steps as they are now: an edit since the plan may have added one, which a lead who
    // gets the old last step must still receive.
    let steps = campaigns::steps(tx, campaign.id)?;
    for one in ready {
        if record_one(tx, campaign, &steps, &one, now)? {
            sent += 1;
        }
    }
    Ok(sent)
}

fn record_one(tx: &Transaction, campaign: &Campaign, steps: &[Step], one: &Ready, now: i64) -> Result<bool> {
    let planned = &one.planned;
    let lead = &planned.lead;
    let Some(step) = steps.get(planned.step).filter(|step| step.id == planned.step_id) else {
        return Ok(false);
    };
    let state: Option<(String, i64)> = tx
        .prepare_cached("SELECT status, steps_done FROM campaign_leads WHERE campaign_id = ?1 AND lead_id = ?2")?
        .query_row((campaign.id, lead.id), |row| Ok((row.get(0)?, row.get(1)?)))
        .optional()?;
    if state != Some(("active".to_string(), planned.steps_done)) {
        return Ok(false);
    }
    let already: bool = tx
        .prepare_cached(
            "SELECT EXISTS (SELECT 1 FROM campaign_sends WHERE campaign_id = ?1 AND lead_id = ?2 AND step_id = ?3)",
        )?
        .query_row((campaign.id, lead.id, step.id), |row| row.get(0))?;
    if already {
        advance(tx, campaign, steps, lead, planned.steps_done + 1, planned.sender.id, now)?;
        return Ok(false);
    }
    if campaign.settings.daily_cap > 0 && sent_today(tx, campaign, now)? >= i64::from(campaign.settings.daily_cap) {
        return Ok(false);
    }
    match admit::admit(tx, planned.sender.id, &[lead.email.as_str()], now) {
        Ok(()) => {}
        Err(AdmitError::Refused(refusal)) => {
            stop_refused(tx, campaign.id, lead.id, &refusal, now)?;
            return Ok(false);
        }
        Err(AdmitError::Store(e)) => return Err(e.into()),
    }
    enqueue::enqueue(tx, &one.prepared, now)?;
    tx.prepare_cached(
        "INSERT INTO campaign_sends (campaign_id, lead_id, step_id, variant_id, mailbox_id, message_id, subject, sent_at) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
    )?
    .execute((campaign.id, lead.id, step.id, one.variant_id, planned.sender.id, &one.message_id, &one.subject, now))?;
    crate::tracking::click::record_links(tx, tx.last_insert_rowid(), &one.links)?;
    advance(tx, campaign, steps, lead, planned.steps_done + 1, planned.sender.id, now)?;
    Ok(true)
}

/// A refusal that stands stops the lead (suppressed); one that passes leaves it due.
fn stop_refused(tx: &Transaction, campaign: i64, lead: i64, refusal: &Refusal, now: i64) -> Result<()> {
    if let Refusal::Suppressed { why, .. } = refusal {
        let status = if why.contains("bounced") { "bounced" } else { "unsubscribed" };
        tx.prepare_cached(
            "UPDATE campaign_leads SET status = ?3, stop_reason = ?4, updated_at = ?5 WHERE campaign_id = ?1 AND lead_id = ?2",
        )?
        .execute((campaign, lead, status, format!("suppressed: {why}"), now))?;
    }
    Ok(())
}

/// Moves a lead past a sent step: due for the next one, or finished.
fn advance(
    tx: &Transaction,
    campaign: &Campaign,
    steps: &[Step],
    lead: &Lead,
    steps_done: i64,
    mailbox: i64,
    now: i64,
) -> Result<()> {
    let next = usize::try_from(steps_done).ok().and_then(|index| steps.get(index));
    let (status, due) = match next {
        Some(step) => ("active", windows::due_after(now, step.delay(), campaign.zone_for(&lead.time_zone))),
        None => ("finished", now),
    };
    tx.prepare_cached(
        "UPDATE campaign_leads SET steps_done = ?3, status = ?4, due_at = ?5, mailbox_id = coalesce(mailbox_id, ?6), \
         updated_at = ?7 WHERE campaign_id = ?1 AND lead_id = ?2",
    )?
    .execute((campaign.id, lead.id, steps_done, status, due, mailbox, now))?;
    Ok(())
}

fn move_leads(tx: &Transaction, campaign: i64, reschedule: &[(i64, i64)], finished: &[i64], now: i64) -> Result<()> {
    let mut due = tx.prepare_cached(
        "UPDATE campaign_leads SET due_at = ?3, updated_at = ?4 WHERE campaign_id = ?1 AND lead_id = ?2 AND status = 'active'",
    )?;
    for (lead, at) in reschedule {
        due.execute((campaign, lead, at, now))?;
    }
    let mut done = tx.prepare_cached(
        "UPDATE campaign_leads SET status = 'finished', updated_at = ?3 WHERE campaign_id = ?1 AND lead_id = ?2 \
         AND status = 'active'",
    )?;
    for lead in finished {
        done.execute((campaign, lead, now))?;
    }
    Ok(())
}

/// Completes an active campaign none of whose leads is left active (both questions answered
/// from indexes: no scan of the campaign's leads).
fn complete_if_done(tx: &Transaction, campaign: i64, now: i64) -> Result<()> {
    let (any, active): (bool, bool) = tx.query_row(
        "SELECT EXISTS (SELECT 1 FROM campaign_leads WHERE campaign_id = ?1), \
         EXISTS (SELECT 1 FROM campaign_leads INDEXED BY campaign_leads_due WHERE campaign_id = ?1 AND status = 'active')",
        [campaign],
        |row| Ok((row.get(0)?, row.get(1)?)),
    )?;
    if any && !active {
        campaigns::complete(tx, campaign, now)?;
    }
    Ok(())
}

/// Why a campaign is not sending now (empty when it is sending).
pub fn not_sending(conn: &Connection, campaign: &Campaign, now: i64) -> Result<Vec<NotSending>> {
    if campaign.status != CampaignStatus::Active {
        return Ok(vec![NotSending::NotActive { status: campaign.status }]);
    }
    let steps = campaigns::steps(conn, campaign.id)?;
    let plan = plan(conn, campaign, &steps, now, 1)?;
    if plan.sends.is_empty() { Ok(plan.not_sending) } else { Ok(Vec::new()) }
}

/// How many sends a tick would plan for the campaign now (at most `limit`), without sending:
/// the due-work half of a tick, for benchmarks and diagnostics.
pub fn due_work(conn: &Connection, campaign: &Campaign, now: i64, limit: usize) -> Result<usize> {
    let steps = campaigns::steps(conn, campaign.id)?;
    Ok(plan(conn, campaign, &steps, now, limit)?.sends.len())
}
