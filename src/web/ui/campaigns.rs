//! Campaigns: the list (figures, then every campaign with its numbers and forecast), a
//! campaign's page (status and Start / Pause / Resume, its figures, why it is not sending, the
//! forecast, a chart of sends per day, the numbers of each step and variant, its leads a page at
//! a time, and their CSV export), the create and edit form ([`form`]) and the preview with its
//! test send ([`preview`]). Every number comes from `campaign::stats` (the event log). Viewers
//! read; members create, edit, start and pause.

mod form;
mod preview;

use askama::Template;
use axum::Router;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect};
use axum::routing::{get, post};
use axum_extra::extract::Query;
use serde::Deserialize;

use crate::app::App;
use crate::campaign::campaigns::{self, Campaign, CampaignStatus};
use crate::campaign::engine::{self, NotSending};
use crate::campaign::forecast::{self, Forecast};
use crate::campaign::stats::{self, Counts, LeadFilter, LeadRow, StepStats};
use crate::campaign::windows;
use crate::clock::format_unix;
use crate::error::Error;
use crate::web::listing::{self, Listing, thousands};
use crate::web::session::{CsrfForm, Ctx, Session};
use crate::web::{WebResult, render};

/// This area's routes.
pub fn routes() -> Router<App> {
    Router::new()
        .route("/w/{ws}/campaigns", get(list))
        .route("/w/{ws}/campaigns/new", get(form::new_form).post(form::create))
        .route("/w/{ws}/campaigns/{id}", get(show))
        .route("/w/{ws}/campaigns/{id}/edit", get(form::edit_form).post(form::edit_submit))
        .route("/w/{ws}/campaigns/{id}/start", post(start))
        .route("/w/{ws}/campaigns/{id}/pause", post(pause))
        .route("/w/{ws}/campaigns/{id}/resume", post(resume))
        .route("/w/{ws}/campaigns/{id}/leads.csv", get(leads_csv))
        .route("/w/{ws}/campaigns/{id}/preview", get(preview::show))
        .route("/w/{ws}/campaigns/{id}/test-send", post(preview::test_send))
}

/// The badge colour of a campaign status (the word is always shown with it).
fn status_tone(status: CampaignStatus) -> &'static str {
    match status {
        CampaignStatus::Active => "green",
        CampaignStatus::Paused => "red",
        CampaignStatus::Draft | CampaignStatus::Completed => "grey",
    }
}

/// The badge colour of a lead's state in a campaign.
fn lead_tone(status: &str) -> &'static str {
    match status {
        "active" | "replied" => "green",
        "paused" => "amber",
        "bounced" => "red",
        _ => "grey",
    }
}

/// A campaign row of the list.
struct Row {
    campaign: Campaign,
    counts: Counts,
    forecast: Forecast,
}

#[derive(Template)]
#[template(path = "campaigns/list.html")]
struct ListPage {
    ctx: Ctx,
    rows: Vec<Row>,
    /// Campaigns in all, and active ones.
    total: usize,
    active: usize,
    sent_today: i64,
    sent_yesterday: i64,
    replied: i64,
    sent: i64,
    bounced: i64,
    status_filter: String,
    statuses: [CampaignStatus; 4],
}

impl ListPage {
    fn figure(&self, n: &i64) -> String {
        thousands(*n)
    }

    fn tone(&self, status: &CampaignStatus) -> &'static str {
        status_tone(*status)
    }

    fn rate(&self, part: &i64, of: &i64) -> String {
        stats::rate(*part, *of)
    }
}

#[derive(Deserialize, Default)]
#[serde(default)]
pub struct ListQuery {
    status: String,
}

pub async fn list(
    State(app): State<App>,
    session: Session,
    Path(ws): Path<i64>,
    Query(query): Query<ListQuery>,
) -> WebResult {
    let (_, ctx) = session.in_workspace(&app, ws, "campaigns").await?;
    let status = query.status.trim().parse::<CampaignStatus>().ok();
    let now = app.clock.unix();
    let (all, rows, today, yesterday) = app
        .store
        .read(move |conn| {
            let all = campaigns::list(conn, ws)?;
            let mut rows = Vec::new();
            for campaign in &all {
                let counts = stats::counts(conn, campaign.id)?;
                let forecast = forecast::forecast(conn, campaign, now)?;
                rows.push(Row { campaign: campaign.clone(), counts, forecast });
            }
            let zone = crate::workspaces::time_zone(conn, ws)?;
            let (start, end) = windows::local_day_range(now, zone);
            let (before, _) = windows::local_day_range(start - 1, zone);
            let today = stats::workspace_sent_between(conn, ws, start, end)?;
            let yesterday = stats::workspace_sent_between(conn, ws, before, start)?;
            Ok::<_, Error>((all, rows, today, yesterday))
        })
        .await?;
    let sum = |f: fn(&Counts) -> i64| rows.iter().map(|r| f(&r.counts)).sum::<i64>();
    let (replied, sent, bounced) = (sum(|c| c.replied), sum(|c| c.sent), sum(|c| c.bounced));
    let rows = rows.into_iter().filter(|r| status.is_none_or(|s| r.campaign.status == s)).collect();
    let page = ListPage {
        ctx,
        rows,
        total: all.len(),
        active: all.iter().filter(|c| c.status == CampaignStatus::Active).count(),
        sent_today: today,
        sent_yesterday: yesterday,
        replied,
        sent,
        bounced,
        status_filter: status.map(|s| s.as_str().to_string()).unwrap_or_default(),
        statuses: CampaignStatus::ALL,
    };
    Ok(render(StatusCode::OK, &page))
}

/// A bar of the sends-per-day chart.
struct Bar {
    day: String,
    sent: i64,
    x: i64,
    y: i64,
    height: i64,
}

#[derive(Template)]
#[template(path = "campaigns/show.html")]
struct ShowPage {
    ctx: Ctx,
    campaign: Campaign,
    counts: Counts,
    not_sending: Vec<NotSending>,
    forecast: Forecast,
    steps: Vec<StepStats>,
    pool: Vec<String>,
    lists: Vec<String>,
    bars: Vec<Bar>,
    chart_max: i64,
    listing: Listing,
    leads: Vec<LeadRow>,
    lead_statuses: [&'static str; 6],
    lead_status: String,
    notice: Option<&'static str>,
    error: Option<String>,
}

impl ShowPage {
    fn figure(&self, n: &i64) -> String {
        thousands(*n)
    }

    fn rate(&self, part: &i64, of: &i64) -> String {
        stats::rate(*part, *of)
    }

    fn tone(&self) -> &'static str {
        status_tone(self.campaign.status)
    }

    fn lead_tone(&self, status: &str) -> &'static str {
        lead_tone(status)
    }

    fn lead_label(&self, status: &str) -> &'static str {
        stats::status_label(status)
    }

    fn when(&self, at: &Option<i64>) -> String {
        at.map(format_unix).unwrap_or_default()
    }

    fn name(&self, lead: &LeadRow) -> String {
        format!("{} {}", lead.first_name, lead.last_name).trim().to_string()
    }

    fn window(&self) -> String {
        let s = &self.campaign.settings;
        let days = ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"];
        let on: Vec<&str> = days.iter().zip(s.days).filter(|(_, on)| *on).map(|(d, _)| *d).collect();
        let zone = if s.use_lead_time_zone {
            format!("each lead's time zone ({} when it has none)", s.time_zone.name())
        } else {
            s.time_zone.name().to_string()
        };
        format!(
            "{}, {} to {}, in {zone}",
            on.join(", "),
            windows::format_clock(s.window_start),
            windows::format_clock(s.window_end)
        )
    }

    fn filtered(&self) -> bool {
        !self.listing.search().is_empty() || !self.lead_status.is_empty()
    }

    fn next_send(&self) -> Option<String> {
        self.forecast.next_send.map(|at| self.forecast.date(at))
    }

    /// "12-07" for the day 2026-12-07.
    fn short_day(&self, day: &str) -> String {
        day.get(5..).unwrap_or(day).to_string()
    }
}

/// The campaign page's query: the lead table's list parameters and status, and the notice of
/// an action just done.
#[derive(Deserialize, Default)]
#[serde(default)]
pub struct ShowQuery {
    status: String,
    q: String,
    sort: String,
    dir: String,
    page: u32,
    done: String,
}

/// What the campaign page reads, in one read.
struct Read {
    campaign: Campaign,
    counts: Counts,
    not_sending: Vec<NotSending>,
    forecast: Forecast,
    steps: Vec<StepStats>,
    pool: Vec<String>,
    lists: Vec<String>,
    days: Vec<(String, i64)>,
    listing: Listing,
    leads: Vec<LeadRow>,
}

/// The chart's bars for (day, sent) pairs, and the value of its top.
fn bars(days: Vec<(String, i64)>) -> (Vec<Bar>, i64) {
    let top = days.iter().map(|(_, n)| *n).max().unwrap_or(0).max(1);
    let bars = days
        .into_iter()
        .zip(0i64..)
        .map(|((day, sent), i)| {
            let height = sent * CHART_HEIGHT / top;
            Bar { day, sent, x: 40 + i * (BAR_WIDTH + 6), y: 10 + CHART_HEIGHT - height, height }
        })
        .collect();
    (bars, top)
}

/// Days of the sends-per-day chart.
const CHART_DAYS: usize = 14;
const CHART_HEIGHT: i64 = 120;
const BAR_WIDTH: i64 = 28;

async fn show_page(app: &App, ctx: Ctx, ws: i64, id: i64, query: ShowQuery) -> WebResult<ShowPage> {
    let lead_status = stats::LEAD_STATUSES.iter().find(|s| **s == query.status.trim()).map(|s| s.to_string());
    let filters = lead_status.iter().map(|s| ("status", s.clone())).collect();
    let shared = listing::ListQuery { q: query.q, sort: query.sort, dir: query.dir, page: query.page };
    let mut listing = Listing::new(shared, filters, stats::LEAD_SORT_COLUMNS);
    let filter = LeadFilter { search: listing.search().to_string(), status: lead_status.clone() };
    let order_by = listing.order_by();
    let now = app.clock.unix();
    let read = move |conn: &rusqlite::Connection| {
        let campaign = campaigns::get(conn, ws, id)?;
        let leads = listing.read_page(
            || stats::lead_count(conn, id, &filter),
            |limit, offset| stats::lead_page(conn, id, &filter, &order_by, limit, offset),
        )?;
        Ok::<_, Error>(Read {
            counts: stats::counts(conn, id)?,
            not_sending: engine::not_sending(conn, &campaign, now)?,
            forecast: forecast::forecast(conn, &campaign, now)?,
            steps: stats::by_step(conn, id)?,
            pool: campaigns::pool_addresses(conn, id)?,
            lists: campaigns::list_names(conn, id)?,
            days: stats::sent_per_day(conn, id, campaign.settings.time_zone, now, CHART_DAYS)?,
            listing,
            leads,
            campaign,
        })
    };
    let read = app.store.read(read).await?;
    let (bars, chart_max) = bars(read.days);
    let notice = match query.done.as_str() {
        "created" => Some("Campaign created as a draft. Check it with the preview, then start it."),
        "saved" => Some("Campaign saved."),
        "started" => Some("Campaign started: its leads are due from now, inside the send window."),
        "paused" => Some("Campaign paused: nothing more is sent until it is resumed."),
        "resumed" => Some("Campaign resumed."),
        _ => None,
    };
    Ok(ShowPage {
        ctx,
        campaign: read.campaign,
        counts: read.counts,
        not_sending: read.not_sending,
        forecast: read.forecast,
        steps: read.steps,
        pool: read.pool,
        lists: read.lists,
        bars,
        chart_max,
        listing: read.listing,
        leads: read.leads,
        lead_statuses: stats::LEAD_STATUSES,
        lead_status: lead_status.unwrap_or_default(),
        notice,
        error: None,
    })
}

pub async fn show(
    State(app): State<App>,
    session: Session,
    Path((ws, id)): Path<(i64, i64)>,
    Query(query): Query<ShowQuery>,
) -> WebResult {
    let (_, ctx) = session.in_workspace(&app, ws, "campaigns").await?;
    Ok(render(StatusCode::OK, &show_page(&app, ctx, ws, id, query).await?))
}

/// A form with nothing but its CSRF field.
#[derive(Deserialize)]
pub struct ActionForm {}

async fn change_status(
    app: &App,
    session: &Session,
    ws: i64,
    id: i64,
    wanted: CampaignStatus,
    done: &str,
) -> WebResult {
    let (access, ctx) = session.in_workspace(app, ws, "campaigns").await?;
    let now = app.clock.unix();
    match app.store.write(move |tx| campaigns::set_status(tx, &access, id, wanted, now)).await {
        Ok(_) => {
            app.campaigns.wake();
            Ok(Redirect::to(&format!("/w/{ws}/campaigns/{id}?done={done}")).into_response())
        }
        Err(Error::Conflict(message)) => {
            let mut page = show_page(app, ctx, ws, id, ShowQuery::default()).await?;
            page.error = Some(message);
            Ok(render(StatusCode::CONFLICT, &page))
        }
        Err(e) => Err(e.into()),
    }
}

pub async fn start(
    State(app): State<App>,
    session: Session,
    Path((ws, id)): Path<(i64, i64)>,
    CsrfForm(_): CsrfForm<ActionForm>,
) -> WebResult {
    change_status(&app, &session, ws, id, CampaignStatus::Active, "started").await
}

pub async fn pause(
    State(app): State<App>,
    session: Session,
    Path((ws, id)): Path<(i64, i64)>,
    CsrfForm(_): CsrfForm<ActionForm>,
) -> WebResult {
    change_status(&app, &session, ws, id, CampaignStatus::Paused, "paused").await
}

pub async fn resume(
    State(app): State<App>,
    session: Session,
    Path((ws, id)): Path<(i64, i64)>,
    CsrfForm(_): CsrfForm<ActionForm>,
) -> WebResult {
    change_status(&app, &session, ws, id, CampaignStatus::Active, "resumed").await
}

/// The columns of the per-lead export.
const CSV_HEADER: [&str; 16] = [
    "email",
    "first_name",
    "last_name",
    "company",
    "status",
    "stop_reason",
    "steps_sent",
    "last_sent_at",
    "mailbox",
    "delivered",
    "bounced",
    "opened",
    "clicked",
    "replied",
    "unsubscribed",
    "lead_id",
];

/// Every lead of the campaign with its state and outcome, as CSV (formula-safe).
pub async fn leads_csv(State(app): State<App>, session: Session, Path((ws, id)): Path<(i64, i64)>) -> WebResult {
    session.in_workspace(&app, ws, "campaigns").await?;
    let (campaign, rows, outcomes) = app
        .store
        .read(move |conn| {
            let campaign = campaigns::get(conn, ws, id)?;
            let rows = stats::lead_page(conn, id, &LeadFilter::default(), "l.email", -1, 0)?;
            Ok::<_, Error>((campaign, rows, stats::outcomes(conn, id)?))
        })
        .await?;
    let mut writer = csv::Writer::from_writer(Vec::new());
    let failed = |e: csv::Error| Error::Internal(format!("writing the CSV failed: {e}"));
    writer.write_record(CSV_HEADER).map_err(failed)?;
    let yes = |b: bool| if b { "yes" } else { "no" }.to_string();
    for row in rows {
        let outcome = outcomes.get(&row.lead_id).copied().unwrap_or_default();
        let last = row
            .last_sent_at
            .and_then(|at| chrono::DateTime::from_timestamp(at, 0))
            .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true))
            .unwrap_or_default();
        let cells = [
            row.email,
            row.first_name,
            row.last_name,
            row.company,
            row.status,
            row.stop_reason,
            row.steps_sent.to_string(),
            last,
            row.mailbox,
            yes(outcome.delivered),
            yes(outcome.bounced),
            yes(outcome.opened),
            yes(outcome.clicked),
            yes(outcome.replied),
            yes(outcome.unsubscribed),
            row.lead_id.to_string(),
        ];
        let safe: Vec<String> = cells.iter().map(|c| crate::mailbox::export::neutralize(c).into_owned()).collect();
        writer.write_record(&safe).map_err(failed)?;
    }
    let body = writer.into_inner().map_err(|e| Error::Internal(format!("writing the CSV failed: {e}")))?;
    Ok(super::csv_download(&file_name(&campaign), body))
}

/// `campaign-12-winter-outreach-leads.csv`: the id and a safe form of the name.
fn file_name(campaign: &Campaign) -> String {
    let slug: String = campaign
        .settings
        .name
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c.to_ascii_lowercase() } else { '-' })
        .collect();
    let slug: Vec<&str> = slug.split('-').filter(|part| !part.is_empty()).collect();
    let slug: String = slug.join("-").chars().take(60).collect();
    format!("campaign-{}-{slug}-leads.csv", campaign.id)
}
