//! The create and edit form of a campaign: name, pool, lists, schedule, caps and gaps, stop
//! rules, tracking, unsubscribe mode, and the steps with their variants.
//!
//! It works without JavaScript: "Add step", "Add variant" and the remove buttons are submit
//! buttons (`action`) that re-render the form with one block more or less, keeping everything
//! typed; a hidden default button first in the form makes Enter save rather than add. Steps and
//! variants are numbered fields (`step0_delay`, `step0_v1_body`), with counts (`steps`,
//! `step0_variants`) saying how many blocks the form has. Every mistake is shown beside its
//! field at once, with what was typed (422); nothing is saved until all are corrected. When
//! editing, a step or variant some lead already got has no remove button (and
//! `campaigns::update` refuses removing it anyway).

use std::collections::HashMap;

use askama::Template;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect};

use crate::app::App;
use crate::campaign::campaigns::{
    self, Campaign, CampaignStatus, DelayUnit, NewCampaign, NewStep, NewVariant, Settings, Step,
};
use crate::campaign::leads::{self, LeadList};
use crate::campaign::windows;
use crate::error::Error;
use crate::mailbox::{self, Mailbox};
use crate::web::session::{CsrfForm, Ctx, Session};
use crate::web::{WebResult, render};
use crate::workspaces::{self, Role};

/// Blocks a form may have at most.
const MAX_STEPS: usize = 20;
const MAX_VARIANTS: usize = 10;
/// Upper bounds of the numbers typed.
const MAX_DELAY: u32 = 10_000;
const MAX_DAILY_CAP: u32 = 1_000_000;
const MAX_GAP_SECONDS: u32 = 86_400;
const MAX_WEIGHT: u32 = 1000;
/// The form names of the days, Monday first, and their labels.
const DAYS: [(&str, &str); 7] =
    [("mon", "Mon"), ("tue", "Tue"), ("wed", "Wed"), ("thu", "Thu"), ("fri", "Fri"), ("sat", "Sat"), ("sun", "Sun")];
/// The delay units as (form value, label).
const UNITS: [(&str, &str); 3] = [("days", "days"), ("business_days", "business days"), ("hours", "hours")];

/// A variant as typed.
#[derive(Debug, Clone)]
pub struct VariantForm {
    pub subject: String,
    pub body: String,
    pub html: String,
    pub weight: String,
}

impl Default for VariantForm {
    fn default() -> Self {
        VariantForm { subject: String::new(), body: String::new(), html: String::new(), weight: "1".into() }
    }
}

/// A step as typed.
#[derive(Debug, Clone)]
pub struct StepForm {
    pub delay: String,
    pub unit: String,
    pub new_thread: bool,
    pub variants: Vec<VariantForm>,
}

impl StepForm {
    fn empty(first: bool) -> StepForm {
        let delay = if first { "0" } else { "3" };
        StepForm { delay: delay.into(), unit: "days".into(), new_thread: false, variants: vec![VariantForm::default()] }
    }
}

/// The whole form as typed (the values shown).
#[derive(Debug, Clone, Default)]
pub struct CampaignForm {
    pub name: String,
    pub mailboxes: Vec<String>,
    pub lists: Vec<String>,
    pub time_zone: String,
    pub days: [bool; 7],
    pub start: String,
    pub end: String,
    pub use_lead_time_zone: bool,
    pub start_date: String,
    pub daily_cap: String,
    pub min_gap_seconds: String,
    pub jitter_seconds: String,
    pub stop_on_reply: bool,
    pub stop_company_on_reply: bool,
    pub track_opens: bool,
    pub track_clicks: bool,
    /// `header` or `footer`.
    pub unsubscribe: String,
    pub steps: Vec<StepForm>,
}

/// What a button of the form asks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Action {
    Save,
    AddStep,
    AddVariant(usize),
    RemoveStep(usize),
    RemoveVariant(usize, usize),
}

impl Action {
    fn parse(value: &str) -> Action {
        let mut parts = value.split(':').skip(1);
        let mut number = || parts.next().and_then(|n| n.parse::<usize>().ok());
        match value.split(':').next().unwrap_or_default() {
            "add_step" => Action::AddStep,
            "add_variant" => number().map_or(Action::Save, Action::AddVariant),
            "remove_step" => number().map_or(Action::Save, Action::RemoveStep),
            "remove_variant" => match (number(), number()) {
                (Some(step), Some(variant)) => Action::RemoveVariant(step, variant),
                _ => Action::Save,
            },
            _ => Action::Save,
        }
    }
}

/// The posted fields: the last value of each name, and every value of the repeated ones.
struct Posted<'a> {
    one: HashMap<&'a str, &'a str>,
    pairs: &'a [(String, String)],
}

impl<'a> Posted<'a> {
    fn new(pairs: &'a [(String, String)]) -> Posted<'a> {
        Posted { one: pairs.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect(), pairs }
    }

    fn text(&self, name: &str) -> String {
        self.one.get(name).map(|v| v.to_string()).unwrap_or_default()
    }

    fn on(&self, name: &str) -> bool {
        self.one.contains_key(name)
    }

    fn all(&self, name: &str) -> Vec<String> {
        self.pairs.iter().filter(|(k, _)| k == name).map(|(_, v)| v.trim().to_string()).collect()
    }

    fn count(&self, name: &str, max: usize) -> usize {
        self.one.get(name).and_then(|v| v.trim().parse::<usize>().ok()).unwrap_or(1).clamp(1, max)
    }
}

impl CampaignForm {
    /// A new campaign's form: one step, Monday to Friday 09:00–17:00 in the workspace's zone.
    fn new_default(zone: &str) -> CampaignForm {
        CampaignForm {
            time_zone: zone.to_string(),
            days: [true, true, true, true, true, false, false],
            start: "09:00".into(),
            end: "17:00".into(),
            use_lead_time_zone: true,
            daily_cap: "0".into(),
            min_gap_seconds: "0".into(),
            jitter_seconds: "0".into(),
            stop_on_reply: true,
            unsubscribe: "header".into(),
            steps: vec![StepForm::empty(true)],
            ..CampaignForm::default()
        }
    }

    /// A stored campaign's form.
    fn from_campaign(campaign: &Campaign, pool: Vec<String>, lists: Vec<String>, steps: &[Step]) -> CampaignForm {
        let s = &campaign.settings;
        CampaignForm {
            name: s.name.clone(),
            mailboxes: pool,
            lists,
            time_zone: s.time_zone.name().to_string(),
            days: s.days,
            start: windows::format_clock(s.window_start),
            end: windows::format_clock(s.window_end),
            use_lead_time_zone: s.use_lead_time_zone,
            start_date: s.start_date.clone(),
            daily_cap: s.daily_cap.to_string(),
            min_gap_seconds: s.min_gap_seconds.to_string(),
            jitter_seconds: s.jitter_seconds.to_string(),
            stop_on_reply: s.stop_on_reply,
            stop_company_on_reply: s.stop_company_on_reply,
            track_opens: s.track_opens,
            track_clicks: s.track_clicks,
            unsubscribe: if s.unsubscribe_footer { "footer" } else { "header" }.into(),
            steps: steps
                .iter()
                .map(|step| StepForm {
                    delay: step.delay.to_string(),
                    unit: step.delay_unit.as_str().into(),
                    new_thread: step.new_thread,
                    variants: step
                        .variants
                        .iter()
                        .map(|v| VariantForm {
                            subject: v.subject.clone(),
                            body: v.body.clone(),
                            html: v.html.clone(),
                            weight: v.weight.to_string(),
                        })
                        .collect(),
                })
                .collect(),
        }
    }

    /// The form as posted, and what its button asked.
    fn from_pairs(pairs: &[(String, String)]) -> (CampaignForm, Action) {
        let posted = Posted::new(pairs);
        let days = DAYS.map(|(key, _)| posted.all("day").iter().any(|d| d == key));
        let steps = (0..posted.count("steps", MAX_STEPS))
            .map(|i| {
                let key = |part: &str| format!("step{i}_{part}");
                let variants = (0..posted.count(&key("variants"), MAX_VARIANTS))
                    .map(|j| VariantForm {
                        subject: posted.text(&key(&format!("v{j}_subject"))),
                        body: posted.text(&key(&format!("v{j}_body"))),
                        html: posted.text(&key(&format!("v{j}_html"))),
                        weight: posted.text(&key(&format!("v{j}_weight"))),
                    })
                    .collect();
                StepForm {
                    delay: posted.text(&key("delay")),
                    unit: posted.text(&key("unit")),
                    new_thread: posted.on(&key("new_thread")),
                    variants,
                }
            })
            .collect();
        let form = CampaignForm {
            name: posted.text("name"),
            mailboxes: posted.all("mailbox"),
            lists: posted.all("list"),
            time_zone: posted.text("time_zone"),
            days,
            start: posted.text("start"),
            end: posted.text("end"),
            use_lead_time_zone: posted.on("use_lead_time_zone"),
            start_date: posted.text("start_date"),
            daily_cap: posted.text("daily_cap"),
            min_gap_seconds: posted.text("min_gap_seconds"),
            jitter_seconds: posted.text("jitter_seconds"),
            stop_on_reply: posted.on("stop_on_reply"),
            stop_company_on_reply: posted.on("stop_company_on_reply"),
            track_opens: posted.on("track_opens"),
            track_clicks: posted.on("track_clicks"),
            unsubscribe: posted.text("unsubscribe"),
            steps,
        };
        (form, Action::parse(&posted.text("action")))
    }

    /// Applies an add or remove button; false for Save. At least one step and one variant stay.
    fn apply(&mut self, action: Action) -> bool {
        match action {
            Action::Save => return false,
            Action::AddStep if self.steps.len() < MAX_STEPS => self.steps.push(StepForm::empty(self.steps.is_empty())),
            Action::AddVariant(i) => {
                if let Some(step) = self.steps.get_mut(i).filter(|s| s.variants.len() < MAX_VARIANTS) {
                    step.variants.push(VariantForm::default());
                }
            }
            Action::RemoveStep(i) if self.steps.len() > 1 && i < self.steps.len() => {
                self.steps.remove(i);
            }
            Action::RemoveVariant(i, j) => {
                if let Some(step) = self.steps.get_mut(i).filter(|s| s.variants.len() > 1 && j < s.variants.len()) {
                    step.variants.remove(j);
                }
            }
            _ => {}
        }
        true
    }

    /// The campaign the form describes, or every mistake beside its field.
    fn to_new(&self) -> Result<NewCampaign, Vec<FieldError>> {
        let mut errors = Errors::default();
        let name = self.name.trim().to_string();
        if name.is_empty() || name.chars().count() > 200 {
            errors.add("name", "Give the campaign a name of 1 to 200 characters.");
        }
        let time_zone = errors.keep("time_zone", windows::parse_zone(&self.time_zone));
        if !self.days.contains(&true) {
            errors.add("days", "Choose at least one day of the week to send on.");
        }
        let start = errors.keep("start", windows::parse_clock(&self.start));
        let end = errors.keep("end", windows::parse_clock(&self.end));
        if let (Some(start), Some(end)) = (start, end)
            && start >= end
        {
            errors.add("end", "The window must end after it starts (for example 09:00 to 17:00).");
        }
        let start_date = self.start_date.trim().to_string();
        if !start_date.is_empty() && chrono::NaiveDate::parse_from_str(&start_date, "%Y-%m-%d").is_err() {
            errors.add("start_date", format!("\"{start_date}\" is not a date such as 2026-12-07."));
        }
        let daily_cap = errors.number("daily_cap", &self.daily_cap, 0, MAX_DAILY_CAP, "The daily cap");
        let gap = errors.number("min_gap_seconds", &self.min_gap_seconds, 0, MAX_GAP_SECONDS, "The minimum gap");
        let jitter = errors.number("jitter_seconds", &self.jitter_seconds, 0, MAX_GAP_SECONDS, "The jitter");
        if self.mailboxes.is_empty() {
            errors.add("mailboxes", "Choose at least one mailbox to send from.");
        }
        if self.lists.is_empty() {
            errors.add("lists", "Choose at least one lead list.");
        }
        let steps: Vec<NewStep> =
            self.steps.iter().enumerate().map(|(i, step)| step_of(i, step, &mut errors)).collect();
        let unsubscribe_footer = match self.unsubscribe.as_str() {
            "footer" => true,
            "header" => false,
            _ => {
                errors.add("unsubscribe", "Choose how recipients unsubscribe.");
                false
            }
        };
        if !errors.0.is_empty() {
            return Err(errors.0);
        }
        let settings = Settings {
            name,
            time_zone: time_zone.unwrap_or(chrono_tz::Tz::UTC),
            days: self.days,
            window_start: start.unwrap_or_default(),
            window_end: end.unwrap_or_default(),
            use_lead_time_zone: self.use_lead_time_zone,
            start_date,
            daily_cap,
            min_gap_seconds: gap,
            jitter_seconds: jitter,
            stop_on_reply: self.stop_on_reply,
            stop_company_on_reply: self.stop_on_reply && self.stop_company_on_reply,
            track_opens: self.track_opens,
            track_clicks: self.track_clicks,
            unsubscribe_footer,
        };
        let campaign = NewCampaign { settings, mailboxes: self.mailboxes.clone(), lists: self.lists.clone(), steps };
        campaigns::check(&campaign).map_err(|e| vec![FieldError::from(e)])?;
        Ok(campaign)
    }
}

/// A step as checked; its mistakes go into `errors` under its fields' names.
fn step_of(i: usize, step: &StepForm, errors: &mut Errors) -> NewStep {
    let key = |part: &str| format!("step{i}_{part}");
    let number = i + 1;
    let delay = errors.number(&key("delay"), &step.delay, 0, MAX_DELAY, &format!("Step {number}'s delay"));
    let delay_unit = errors.keep(&key("unit"), step.unit.parse::<DelayUnit>()).unwrap_or(DelayUnit::Days);
    let threaded = i > 0 && !step.new_thread;
    let variants: Vec<NewVariant> = step
        .variants
        .iter()
        .enumerate()
        .map(|(j, v)| {
            let field = |part: &str| key(&format!("v{j}_{part}"));
            if v.body.trim().is_empty() {
                errors.add(&field("body"), "Write the message.");
            }
            if v.subject.trim().is_empty() && !threaded {
                let message = if i == 0 {
                    "Give the first step a subject."
                } else {
                    "Give a subject: this step starts a new thread."
                };
                errors.add(&field("subject"), message);
            }
            let weight = if v.weight.trim().is_empty() {
                1
            } else {
                errors.number(&field("weight"), &v.weight, 0, MAX_WEIGHT, "The weight")
            };
            NewVariant { subject: v.subject.trim().to_string(), body: v.body.clone(), html: v.html.clone(), weight }
        })
        .collect();
    if variants.iter().all(|v| v.weight == 0) {
        errors.add(&key("weights"), "At least one variant needs a weight above 0.");
    }
    NewStep { delay, delay_unit, new_thread: i > 0 && step.new_thread, variants }
}

/// A mistake shown beside its form field (`field` empty: above the form).
#[derive(Debug, Clone)]
pub struct FieldError {
    pub field: String,
    pub message: String,
}

impl From<Error> for FieldError {
    fn from(e: Error) -> Self {
        let field = match &e {
            Error::Invalid { field: Some(field), .. } => field.to_string(),
            _ => String::new(),
        };
        FieldError { field, message: e.to_string() }
    }
}

#[derive(Default)]
struct Errors(Vec<FieldError>);

impl Errors {
    fn add(&mut self, field: &str, message: impl Into<String>) {
        self.0.push(FieldError { field: field.to_string(), message: message.into() });
    }

    fn keep<T, E: std::fmt::Display>(&mut self, field: &str, result: Result<T, E>) -> Option<T> {
        result.map_err(|e| self.add(field, e.to_string())).ok()
    }

    /// A whole number in [min, max]; empty is `min`.
    fn number(&mut self, field: &str, typed: &str, min: u32, max: u32, what: &str) -> u32 {
        let typed = typed.trim();
        if typed.is_empty() {
            return min;
        }
        match typed.parse::<u32>() {
            Ok(n) if (min..=max).contains(&n) => n,
            _ => {
                self.add(field, format!("{what} must be a whole number from {min} to {max}."));
                min
            }
        }
    }
}

#[derive(Template)]
#[template(path = "campaigns/form.html")]
struct FormPage {
    ctx: Ctx,
    /// None: a new campaign.
    campaign: Option<Campaign>,
    form: CampaignForm,
    errors: Vec<FieldError>,
    mailboxes: Vec<Mailbox>,
    lists: Vec<LeadList>,
    zones: Vec<&'static str>,
    postal_address: String,
    /// Leads each stored step was sent to, by position, and each of its variants.
    sent_steps: Vec<i64>,
    sent_variants: Vec<Vec<i64>>,
    days: [(&'static str, &'static str); 7],
    units: [(&'static str, &'static str); 3],
}

impl FormPage {
    fn action(&self) -> String {
        match &self.campaign {
            Some(c) => format!("/w/{}/campaigns/{}/edit", self.ctx.ws(), c.id),
            None => format!("/w/{}/campaigns/new", self.ctx.ws()),
        }
    }

    fn error_for(&self, field: &str) -> Option<&str> {
        self.errors.iter().find(|e| e.field == field).map(|e| e.message.as_str())
    }

    fn has_errors(&self) -> bool {
        !self.errors.is_empty()
    }

    fn step_error(&self, i: &usize, part: &str) -> Option<&str> {
        self.error_for(&format!("step{i}_{part}"))
    }

    fn variant_error(&self, i: &usize, j: &usize, part: &str) -> Option<&str> {
        self.error_for(&format!("step{i}_v{j}_{part}"))
    }

    fn day_on(&self, index: &usize) -> bool {
        self.form.days.get(*index).copied().unwrap_or(false)
    }

    fn in_pool(&self, address: &str) -> bool {
        self.form.mailboxes.iter().any(|m| m.eq_ignore_ascii_case(address))
    }

    fn in_lists(&self, name: &str) -> bool {
        self.form.lists.iter().any(|l| l == name)
    }

    fn step_sent(&self, i: &usize) -> i64 {
        self.sent_steps.get(*i).copied().unwrap_or(0)
    }

    fn variant_sent(&self, i: &usize, j: &usize) -> i64 {
        self.sent_variants.get(*i).and_then(|v| v.get(*j)).copied().unwrap_or(0)
    }

    /// Whether the variant may be removed: neither it nor one after it was sent (so no sent
    /// variant changes position; `campaigns::update` matches variants by position).
    fn variant_removable(&self, i: &usize, j: &usize) -> bool {
        self.sent_variants.get(*i).is_none_or(|v| v.iter().skip(*j).all(|n| *n == 0))
    }

    fn letter(&self, j: &usize) -> String {
        label_of(*j)
    }

    fn active(&self) -> bool {
        self.campaign.as_ref().is_some_and(|c| c.status != CampaignStatus::Draft)
    }
}

async fn form_page(
    app: &App,
    ctx: Ctx,
    campaign: Option<Campaign>,
    form: CampaignForm,
    errors: Vec<FieldError>,
) -> WebResult<FormPage> {
    let ws = ctx.ws();
    let id = campaign.as_ref().map(|c| c.id);
    let (mailboxes, lists, postal_address, sent) = app
        .store
        .read(move |conn| {
            let sent = match id {
                Some(id) => sent_by_position(conn, id)?,
                None => (Vec::new(), Vec::new()),
            };
            Ok::<_, Error>((
                mailbox::senders(conn, ws, None)?,
                leads::lists(conn, ws)?,
                workspaces::postal_address(conn, ws)?,
                sent,
            ))
        })
        .await?;
    Ok(FormPage {
        ctx,
        campaign,
        form,
        errors,
        mailboxes,
        lists,
        zones: chrono_tz::TZ_VARIANTS.iter().map(|zone| zone.name()).collect(),
        postal_address,
        sent_steps: sent.0,
        sent_variants: sent.1,
        days: DAYS,
        units: UNITS,
    })
}

/// Why a remove button may not remove its block: the step was sent, or the variant or one
/// after it was (a sent variant keeps its position).
fn removal_refused(action: Action, sent_steps: &[i64], sent_variants: &[Vec<i64>]) -> Option<String> {
    let leads = |n: i64| if n == 1 { "1 lead".to_string() } else { format!("{n} leads") };
    match action {
        Action::RemoveStep(i) => sent_steps.get(i).copied().filter(|n| *n > 0).map(|n| {
            format!(
                "Step {} was already sent to {} and cannot be removed: edit its text instead, or pause the campaign.",
                i + 1,
                leads(n)
            )
        }),
        Action::RemoveVariant(i, j) => {
            let later: i64 = sent_variants.get(i).map(|v| v.iter().skip(j).sum()).unwrap_or(0);
            (later > 0).then(|| {
                format!(
                    "Variant {} of step {} cannot be removed: it or a variant after it was already sent to {}. \
                     Set its weight to 0 to stop sending it.",
                    label_of(j),
                    i + 1,
                    leads(later)
                )
            })
        }
        _ => None,
    }
}

/// A variant's label by position: A, B, C...
fn label_of(j: usize) -> String {
    b"ABCDEFGHIJKLMNOPQRSTUVWXYZ".get(j).map_or_else(|| format!("V{}", j + 1), |c| char::from(*c).to_string())
}

/// Sends of each stored step by position, and of each of its variants by position.
fn sent_by_position(conn: &rusqlite::Connection, campaign: i64) -> Result<(Vec<i64>, Vec<Vec<i64>>), Error> {
    let steps = campaigns::steps(conn, campaign)?;
    let sent = campaigns::sent_counts(conn, campaign)?;
    let by_step = steps.iter().map(|s| sent.step(s.id)).collect();
    let by_variant = steps.iter().map(|s| s.variants.iter().map(|v| sent.variant(v.id)).collect()).collect();
    Ok((by_step, by_variant))
}

pub async fn new_form(State(app): State<App>, session: Session, Path(ws): Path<i64>) -> WebResult {
    let (access, ctx) = session.in_workspace(&app, ws, "campaigns").await?;
    access.workspace.role.require(Role::Member)?;
    let zone = app.store.read(move |conn| workspaces::time_zone(conn, ws)).await?;
    let page = form_page(&app, ctx, None, CampaignForm::new_default(zone.name()), Vec::new()).await?;
    Ok(render(StatusCode::OK, &page))
}

/// Creates a campaign (members), or re-renders the form after an add or remove button (200)
/// or with its mistakes (422).
pub async fn create(
    State(app): State<App>,
    session: Session,
    Path(ws): Path<i64>,
    CsrfForm(pairs): CsrfForm<Vec<(String, String)>>,
) -> WebResult {
    let (access, ctx) = session.in_workspace(&app, ws, "campaigns").await?;
    access.workspace.role.require(Role::Member)?;
    let (mut form, action) = CampaignForm::from_pairs(&pairs);
    if form.apply(action) {
        return Ok(render(StatusCode::OK, &form_page(&app, ctx, None, form, Vec::new()).await?));
    }
    let new = match form.to_new() {
        Ok(new) => new,
        Err(errors) => return refused(&app, ctx, None, form, errors).await,
    };
    let now = app.clock.unix();
    match app.store.write(move |tx| campaigns::create(tx, &access, &new, now)).await {
        Ok(id) => Ok(Redirect::to(&format!("/w/{ws}/campaigns/{id}?done=created")).into_response()),
        Err(e) if e.belongs_on_form() => refused(&app, ctx, None, form, vec![e.into()]).await,
        Err(e) => Err(e.into()),
    }
}

async fn refused(
    app: &App,
    ctx: Ctx,
    campaign: Option<Campaign>,
    form: CampaignForm,
    errors: Vec<FieldError>,
) -> WebResult {
    Ok(render(StatusCode::UNPROCESSABLE_ENTITY, &form_page(app, ctx, campaign, form, errors).await?))
}

pub async fn edit_form(State(app): State<App>, session: Session, Path((ws, id)): Path<(i64, i64)>) -> WebResult {
    let (access, ctx) = session.in_workspace(&app, ws, "campaigns").await?;
    access.workspace.role.require(Role::Member)?;
    let (campaign, form) = app
        .store
        .read(move |conn| {
            let campaign = campaigns::get(conn, ws, id)?;
            let steps = campaigns::steps(conn, id)?;
            let pool = campaigns::pool_addresses(conn, id)?;
            let form = CampaignForm::from_campaign(&campaign, pool, campaigns::list_names(conn, id)?, &steps);
            Ok::<_, Error>((campaign, form))
        })
        .await?;
    Ok(render(StatusCode::OK, &form_page(&app, ctx, Some(campaign), form, Vec::new()).await?))
}

/// Saves an edit (members; the rules are `campaigns::update`'s), or re-renders the form.
pub async fn edit_submit(
    State(app): State<App>,
    session: Session,
    Path((ws, id)): Path<(i64, i64)>,
    CsrfForm(pairs): CsrfForm<Vec<(String, String)>>,
) -> WebResult {
    let (access, ctx) = session.in_workspace(&app, ws, "campaigns").await?;
    access.workspace.role.require(Role::Member)?;
    let (campaign, (sent_steps, sent_variants)) = app
        .store
        .read(move |conn| Ok::<_, Error>((campaigns::get(conn, ws, id)?, sent_by_position(conn, id)?)))
        .await?;
    let (mut form, action) = CampaignForm::from_pairs(&pairs);
    if let Some(message) = removal_refused(action, &sent_steps, &sent_variants) {
        let error = FieldError { field: "steps".into(), message };
        return refused(&app, ctx, Some(campaign), form, vec![error]).await;
    }
    if form.apply(action) {
        return Ok(render(StatusCode::OK, &form_page(&app, ctx, Some(campaign), form, Vec::new()).await?));
    }
    let new = match form.to_new() {
        Ok(new) => new,
        Err(errors) => return refused(&app, ctx, Some(campaign), form, errors).await,
    };
    let now = app.clock.unix();
    match app.store.write(move |tx| campaigns::update(tx, &access, id, &new, now)).await {
        Ok(_) => {
            app.campaigns.wake();
            Ok(Redirect::to(&format!("/w/{ws}/campaigns/{id}?done=saved")).into_response())
        }
        Err(e) if e.belongs_on_form() => refused(&app, ctx, Some(campaign), form, vec![e.into()]).await,
        Err(e) => Err(e.into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pairs(fields: &[(&str, &str)]) -> Vec<(String, String)> {
        fields.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    fn valid() -> Vec<(String, String)> {
        pairs(&[
            ("name", "Winter"),
            ("mailbox", "ann@a.test"),
            ("list", "Prospects"),
            ("time_zone", "Europe/Berlin"),
            ("day", "mon"),
            ("day", "wed"),
            ("start", "09:00"),
            ("end", "24:00"),
            ("use_lead_time_zone", "on"),
            ("daily_cap", "50"),
            ("stop_on_reply", "on"),
            ("unsubscribe", "footer"),
            ("steps", "2"),
            ("step0_delay", "0"),
            ("step0_unit", "days"),
            ("step0_variants", "2"),
            ("step0_v0_subject", "Hi {{first_name}}"),
            ("step0_v0_body", "Body A"),
            ("step0_v0_weight", "2"),
            ("step0_v1_subject", "Hello"),
            ("step0_v1_body", "Body B"),
            ("step0_v1_weight", "1"),
            ("step1_delay", "2"),
            ("step1_unit", "business_days"),
            ("step1_variants", "1"),
            ("step1_v0_body", "Following up"),
            ("action", "save"),
        ])
    }

    #[test]
    fn a_posted_form_reads_into_a_campaign() {
        let (form, action) = CampaignForm::from_pairs(&valid());
        assert_eq!(action, Action::Save);
        let campaign = form.to_new().expect("valid");
        let s = &campaign.settings;
        assert_eq!((s.window_start, s.window_end, s.daily_cap), (540, 1440, 50));
        assert_eq!(s.days, [true, false, true, false, false, false, false]);
        assert!(s.use_lead_time_zone && s.stop_on_reply && s.unsubscribe_footer && !s.track_opens);
        assert_eq!(campaign.steps.len(), 2);
        assert_eq!(campaign.steps[0].variants[0].weight, 2);
        assert_eq!((campaign.steps[1].delay, campaign.steps[1].delay_unit), (2, DelayUnit::BusinessDays));
        assert_eq!(campaign.mailboxes, ["ann@a.test"]);
    }

    #[test]
    fn every_mistake_is_named_beside_its_field() {
        let mut fields = valid();
        for (key, value) in &mut fields {
            match key.as_str() {
                "time_zone" => *value = "Mars/Base".into(),
                "end" => *value = "08:00".into(),
                "daily_cap" => *value = "lots".into(),
                "step0_v1_body" => value.clear(),
                "step1_delay" => *value = "-1".into(),
                _ => {}
            }
        }
        let errors = CampaignForm::from_pairs(&fields).0.to_new().unwrap_err();
        let fields: Vec<&str> = errors.iter().map(|e| e.field.as_str()).collect();
        assert_eq!(fields, ["time_zone", "end", "daily_cap", "step0_v1_body", "step1_delay"], "{errors:?}");
        let mut no_subject = valid();
        no_subject.retain(|(k, _)| k != "step0_v0_subject");
        let errors = CampaignForm::from_pairs(&no_subject).0.to_new().unwrap_err();
        assert_eq!(errors[0].field, "step0_v0_subject");
    }

    #[test]
    fn buttons_add_and_remove_blocks_keeping_what_was_typed() {
        let mut fields = valid();
        fields.retain(|(k, _)| k != "action");
        fields.push(("action".into(), "add_variant:1".into()));
        let (mut form, action) = CampaignForm::from_pairs(&fields);
        assert!(form.apply(action));
        assert_eq!(form.steps[1].variants.len(), 2);
        assert_eq!(form.steps[1].variants[0].body, "Following up");
        assert!(form.apply(Action::AddStep));
        assert_eq!((form.steps.len(), form.steps[2].delay.as_str()), (3, "3"));
        assert!(form.apply(Action::RemoveVariant(0, 0)));
        assert_eq!(form.steps[0].variants[0].body, "Body B");
        assert!(form.apply(Action::RemoveStep(1)));
        assert_eq!(form.steps.len(), 2);
        assert_eq!(form.name, "Winter");
        assert_eq!(Action::parse("remove_variant:3:4"), Action::RemoveVariant(3, 4));
        assert_eq!(Action::parse("nonsense"), Action::Save);
    }

    #[test]
    fn a_sent_step_or_a_variant_before_a_sent_one_is_not_removed() {
        let (steps, variants) = ([6, 0], vec![vec![0, 3], vec![0, 0]]);
        let refused = removal_refused(Action::RemoveStep(0), &steps, &variants).unwrap();
        assert!(refused.starts_with("Step 1 was already sent to 6 leads"), "{refused}");
        assert_eq!(removal_refused(Action::RemoveStep(1), &steps, &variants), None);
        let refused = removal_refused(Action::RemoveVariant(0, 0), &steps, &variants).unwrap();
        assert!(refused.starts_with("Variant A of step 1 cannot be removed"), "B after it was sent: {refused}");
        assert!(removal_refused(Action::RemoveVariant(0, 1), &steps, &variants).is_some());
        assert_eq!(removal_refused(Action::RemoveVariant(1, 0), &steps, &variants), None);
        assert_eq!(removal_refused(Action::AddStep, &steps, &variants), None);
    }

    #[test]
    fn the_form_body_decodes_into_pairs() {
        let body = "csrf=x&day=mon&day=tue&step0_v0_body=a%26b%0D%0Ac";
        let pairs: Vec<(String, String)> = serde_html_form::from_str(body).expect("pairs");
        let (form, _) = CampaignForm::from_pairs(&pairs);
        assert_eq!(form.days[..2], [true, true]);
        assert_eq!(form.steps[0].variants[0].body, "a&b\r\nc");
    }
}
