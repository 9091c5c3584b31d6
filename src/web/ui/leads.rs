//! Leads: the list (figures by status, search, filters by status and list, sortable pages), one
//! lead's page (its fields, custom fields included, its lists and campaigns; edited by members),
//! erasing a lead with or without keeping a hash of its address suppressed, and the CSV import
//! (`import`: upload, column mapping, progress and report). Viewers read; members edit.

mod import;

use askama::Template;
use axum::Router;
use axum::extract::{DefaultBodyLimit, Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect};
use axum::routing::{get, post};
use axum_extra::extract::Query;
use serde::Deserialize;

use crate::app::App;
use crate::campaign::leads::{self, Filter, Lead, LeadCampaign, LeadFields, LeadList, LeadStatus, StatusCounts};
use crate::clock::format_unix;
use crate::error::Error;
use crate::web::listing::{self, Listing, thousands};
use crate::web::session::{CsrfForm, Ctx, Session};
use crate::web::{WebResult, render};
use crate::workspaces::Role;

/// This area's routes.
pub fn routes() -> Router<App> {
    Router::new()
        .route("/w/{ws}/leads", get(list))
        .route(
            "/w/{ws}/leads/import",
            get(import::form).post(import::upload).layer(DefaultBodyLimit::max(import::MAX_UPLOAD_REQUEST)),
        )
        .route("/w/{ws}/leads/import/confirm", post(import::confirm))
        .route("/w/{ws}/leads/imports/{id}", get(import::show))
        .route("/w/{ws}/leads/imports/{id}/progress", get(import::progress))
        .route("/w/{ws}/leads/{id}", get(show).post(save))
        .route("/w/{ws}/leads/{id}/lists", post(change_lists))
        .route("/w/{ws}/leads/{id}/delete", post(delete))
}

/// The badge colour of a lead status (the word is always shown with it).
fn status_tone(status: LeadStatus) -> &'static str {
    match status {
        LeadStatus::Active | LeadStatus::Replied => "green",
        LeadStatus::Bounced => "red",
        LeadStatus::Unsubscribed => "grey",
    }
}

/// A lead's name as people read it: first and last name, or nothing.
fn full_name(lead: &Lead) -> String {
    format!("{} {}", lead.first_name, lead.last_name).trim().to_string()
}

/// A row of the lead list: the lead and its lists as (id, name).
struct LeadRow {
    lead: Lead,
    lists: Vec<(i64, String)>,
}

#[derive(Template)]
#[template(path = "leads/list.html")]
struct ListPage {
    ctx: Ctx,
    counts: StatusCounts,
    statuses: [LeadStatus; 4],
    status_filter: String,
    lists: Vec<LeadList>,
    list_filter: i64,
    listing: Listing,
    rows: Vec<LeadRow>,
    notice: Option<&'static str>,
}

impl ListPage {
    fn when(&self, at: &i64) -> String {
        format_unix(*at)
    }

    fn name(&self, lead: &Lead) -> String {
        full_name(lead)
    }

    fn tone(&self, status: &LeadStatus) -> &'static str {
        status_tone(*status)
    }

    fn figure(&self, n: &i64) -> String {
        thousands(*n)
    }

    fn count_of(&self, status: &LeadStatus) -> String {
        thousands(self.counts.of(*status))
    }

    /// Whether the list shows a subset (a search or a filter), for what the empty table says.
    fn filtered(&self) -> bool {
        !self.listing.search().is_empty() || self.list_filter != 0 || !self.status_filter.is_empty()
    }
}

/// The lead list's query: the shared list parameters, a status and a list.
#[derive(Deserialize, Default)]
#[serde(default)]
pub struct ListQuery {
    status: String,
    list: Option<i64>,
    q: String,
    sort: String,
    dir: String,
    page: u32,
    /// Set after an erasure: `1`, or `suppressed` when a hash of the address was kept.
    erased: String,
}

/// What the figures count as "new": leads added in the last seven days.
const RECENT_SECONDS: i64 = 7 * 24 * 3600;

pub async fn list(
    State(app): State<App>,
    session: Session,
    Path(ws): Path<i64>,
    Query(query): Query<ListQuery>,
) -> WebResult {
    let (_, ctx) = session.in_workspace(&app, ws, "leads").await?;
    let status = query.status.trim().parse::<LeadStatus>().ok();
    let mut filters = Vec::new();
    if let Some(status) = status {
        filters.push(("status", status.as_str().to_string()));
    }
    if let Some(list) = query.list {
        filters.push(("list", list.to_string()));
    }
    let shared = listing::ListQuery { q: query.q, sort: query.sort, dir: query.dir, page: query.page };
    let mut listing = Listing::new(shared, filters, leads::SORT_COLUMNS).descending_by_default();
    let filter = Filter { search: listing.search().to_string(), status, list: query.list };
    let order_by = listing.order_by();
    let since = app.clock.unix() - RECENT_SECONDS;
    let (listing, counts, lists, rows) = app
        .store
        .read(move |conn| {
            let found = listing.read_page(
                || leads::count(conn, ws, &filter),
                |limit, offset| leads::search(conn, ws, &filter, &order_by, limit, offset),
            )?;
            let rows = found
                .into_iter()
                .map(|lead| Ok(LeadRow { lists: leads::memberships(conn, lead.id)?, lead }))
                .collect::<rusqlite::Result<Vec<_>>>()?;
            Ok::<_, Error>((listing, leads::status_counts(conn, ws, since)?, leads::lists(conn, ws)?, rows))
        })
        .await?;
    let notice = match query.erased.as_str() {
        "" => None,
        "suppressed" => Some("The lead was erased. Only a hash of its address stays, on the suppression list."),
        _ => Some("The lead was erased."),
    };
    let page = ListPage {
        ctx,
        counts,
        statuses: LeadStatus::ALL,
        status_filter: status.map(|s| s.as_str().to_string()).unwrap_or_default(),
        lists,
        list_filter: query.list.unwrap_or_default(),
        listing,
        rows,
        notice,
    };
    Ok(render(StatusCode::OK, &page))
}

/// A mistake shown beside its form field (`field` empty: above the form).
struct FieldError {
    field: &'static str,
    message: String,
}

impl From<Error> for FieldError {
    fn from(e: Error) -> Self {
        let field = match &e {
            Error::Invalid { field: Some(field), .. } => field,
            _ => "",
        };
        FieldError { field, message: e.to_string() }
    }
}

/// The lead form as typed: the standard fields and the custom fields as parallel lists.
#[derive(Deserialize, Default, Clone)]
#[serde(default)]
pub struct EditForm {
    first_name: String,
    last_name: String,
    company: String,
    title: String,
    website: String,
    time_zone: String,
    custom_name: Vec<String>,
    custom_value: Vec<String>,
}

impl EditForm {
    fn from_lead(lead: &Lead) -> EditForm {
        let (custom_name, custom_value) = lead
            .fields
            .iter()
            .map(|(name, value)| (name.clone(), value.as_str().map_or_else(|| value.to_string(), str::to_string)))
            .unzip();
        EditForm {
            first_name: lead.first_name.clone(),
            last_name: lead.last_name.clone(),
            company: lead.company.clone(),
            title: lead.title.clone(),
            website: lead.website.clone(),
            time_zone: lead.time_zone.clone(),
            custom_name,
            custom_value,
        }
    }

    fn fields(&self, email: &str) -> LeadFields {
        let values = self.custom_value.iter().cloned().chain(std::iter::repeat(String::new()));
        LeadFields {
            email: email.to_string(),
            first_name: self.first_name.clone(),
            last_name: self.last_name.clone(),
            company: self.company.clone(),
            title: self.title.clone(),
            website: self.website.clone(),
            time_zone: self.time_zone.clone(),
            custom: self.custom_name.iter().cloned().zip(values).collect(),
        }
    }
}

#[derive(Template)]
#[template(path = "leads/show.html")]
struct ShowPage {
    ctx: Ctx,
    lead: Lead,
    form: EditForm,
    errors: Vec<FieldError>,
    notice: Option<&'static str>,
    memberships: Vec<(i64, String)>,
    /// The workspace's lists, for the "add to a list" suggestions.
    lists: Vec<LeadList>,
    list_name: String,
    list_error: Option<String>,
    campaigns: Vec<LeadCampaign>,
    delete_error: Option<String>,
    /// IANA zone names for the time zone field's suggestions (only on the form).
    zones: Vec<&'static str>,
    max_field: usize,
    max_value: usize,
}

impl ShowPage {
    fn when(&self, at: &i64) -> String {
        format_unix(*at)
    }

    fn name(&self) -> String {
        full_name(&self.lead)
    }

    fn tone(&self) -> &'static str {
        status_tone(self.lead.status)
    }

    /// The mistake to show beside `field`, if any.
    fn error_for(&self, field: &str) -> Option<&str> {
        self.errors.iter().find(|e| e.field == field).map(|e| e.message.as_str())
    }

    fn has_errors(&self) -> bool {
        !self.errors.is_empty()
    }

    /// The custom fields as (name, value) rows, and one empty row to add a field.
    fn custom_rows(&self) -> Vec<(String, String)> {
        let values = self.form.custom_value.iter().cloned().chain(std::iter::repeat(String::new()));
        let mut rows: Vec<(String, String)> = self
            .form
            .custom_name
            .iter()
            .cloned()
            .zip(values)
            .filter(|(name, value)| !(name.trim().is_empty() && value.trim().is_empty()))
            .collect();
        rows.push((String::new(), String::new()));
        rows
    }

    /// A custom field's value as text, for the read-only view.
    fn text(&self, value: &serde_json::Value) -> String {
        value.as_str().map_or_else(|| value.to_string(), str::to_string)
    }
}

/// The lead's page with the form showing `form` (the stored values when `None`).
async fn show_page(app: &App, ctx: Ctx, ws: i64, id: i64, form: Option<EditForm>) -> WebResult<ShowPage> {
    let (lead, memberships, lists, campaigns) = app
        .store
        .read(move |conn| {
            let lead = leads::get(conn, ws, id)?;
            let memberships = leads::memberships(conn, id)?;
            Ok::<_, Error>((lead, memberships, leads::lists(conn, ws)?, leads::campaigns_of(conn, ws, id)?))
        })
        .await?;
    let zones =
        if ctx.can_edit() { chrono_tz::TZ_VARIANTS.iter().map(|zone| zone.name()).collect() } else { Vec::new() };
    Ok(ShowPage {
        ctx,
        form: form.unwrap_or_else(|| EditForm::from_lead(&lead)),
        lead,
        errors: Vec::new(),
        notice: None,
        memberships,
        lists,
        list_name: String::new(),
        list_error: None,
        campaigns,
        delete_error: None,
        zones,
        max_field: leads::MAX_FIELD,
        max_value: leads::MAX_VALUE,
    })
}

#[derive(Deserialize, Default)]
#[serde(default)]
pub struct ShowQuery {
    saved: Option<String>,
}

pub async fn show(
    State(app): State<App>,
    session: Session,
    Path((ws, id)): Path<(i64, i64)>,
    Query(query): Query<ShowQuery>,
) -> WebResult {
    let (_, ctx) = session.in_workspace(&app, ws, "leads").await?;
    let mut page = show_page(&app, ctx, ws, id, None).await?;
    page.notice = query.saved.is_some().then_some("Saved.");
    Ok(render(StatusCode::OK, &page))
}

/// Saves a lead's fields (members); mistakes re-render the form with 422, keeping what was typed.
pub async fn save(
    State(app): State<App>,
    session: Session,
    Path((ws, id)): Path<(i64, i64)>,
    CsrfForm(form): CsrfForm<EditForm>,
) -> WebResult {
    let (access, ctx) = session.in_workspace(&app, ws, "leads").await?;
    access.workspace.role.require(Role::Member)?;
    let lead = app.store.read(move |conn| leads::get(conn, ws, id)).await?;
    let fields = match leads::check_edit(form.fields(&lead.email)) {
        Ok(fields) => fields,
        Err(errors) => return form_errors(&app, ctx, ws, id, form, errors.into_iter().map(Into::into).collect()).await,
    };
    let now = app.clock.unix();
    match app.store.write(move |tx| leads::update_by(tx, &access, id, &fields, now)).await {
        Ok(()) => Ok(Redirect::to(&format!("/w/{ws}/leads/{id}?saved=1")).into_response()),
        Err(e) if e.belongs_on_form() => form_errors(&app, ctx, ws, id, form, vec![e.into()]).await,
        Err(e) => Err(e.into()),
    }
}

async fn form_errors(app: &App, ctx: Ctx, ws: i64, id: i64, form: EditForm, errors: Vec<FieldError>) -> WebResult {
    let mut page = show_page(app, ctx, ws, id, Some(form)).await?;
    page.errors = errors;
    Ok(render(StatusCode::UNPROCESSABLE_ENTITY, &page))
}

/// The lists form of a lead's page: add to the list named `add`, or leave the list `remove`.
#[derive(Deserialize, Default)]
#[serde(default)]
pub struct ListsForm {
    add: String,
    remove: Option<i64>,
}

pub async fn change_lists(
    State(app): State<App>,
    session: Session,
    Path((ws, id)): Path<(i64, i64)>,
    CsrfForm(form): CsrfForm<ListsForm>,
) -> WebResult {
    let (access, ctx) = session.in_workspace(&app, ws, "leads").await?;
    access.workspace.role.require(Role::Member)?;
    let now = app.clock.unix();
    let (add, remove) = (form.add.clone(), form.remove);
    let result = app
        .store
        .write(move |tx| match remove {
            Some(list) => leads::leave_list_by(tx, &access, id, list, now),
            None => leads::join_list_by(tx, &access, id, &add, now),
        })
        .await;
    match result {
        Ok(()) => Ok(Redirect::to(&format!("/w/{ws}/leads/{id}#lists")).into_response()),
        Err(e) if e.belongs_on_form() => {
            let mut page = show_page(&app, ctx, ws, id, None).await?;
            page.list_name = form.add;
            page.list_error = Some(e.to_string());
            Ok(render(StatusCode::UNPROCESSABLE_ENTITY, &page))
        }
        Err(e) => Err(e.into()),
    }
}

/// The delete form: which button (`delete` or `never_again`) and the confirmation box.
#[derive(Deserialize, Default)]
#[serde(default)]
pub struct DeleteForm {
    mode: String,
    confirm: Option<String>,
}

/// Erases a lead (members). Asks once: the form's box must be ticked.
pub async fn delete(
    State(app): State<App>,
    session: Session,
    Path((ws, id)): Path<(i64, i64)>,
    CsrfForm(form): CsrfForm<DeleteForm>,
) -> WebResult {
    let (access, ctx) = session.in_workspace(&app, ws, "leads").await?;
    access.workspace.role.require(Role::Member)?;
    let never_again = match form.mode.as_str() {
        "never_again" => true,
        "delete" => false,
        _ => return delete_refused(&app, ctx, ws, id, "Choose Delete or Delete and never contact again.").await,
    };
    if form.confirm.is_none() {
        let message = "Tick the box to confirm: the lead's data is erased and cannot be brought back.";
        return delete_refused(&app, ctx, ws, id, message).await;
    }
    let now = app.clock.unix();
    app.store.write(move |tx| leads::erase_by(tx, &access, id, never_again, now)).await?;
    let erased = if never_again { "suppressed" } else { "1" };
    Ok(Redirect::to(&format!("/w/{ws}/leads?erased={erased}")).into_response())
}

async fn delete_refused(app: &App, ctx: Ctx, ws: i64, id: i64, message: &str) -> WebResult {
    let mut page = show_page(app, ctx, ws, id, None).await?;
    page.delete_error = Some(message.to_string());
    Ok(render(StatusCode::UNPROCESSABLE_ENTITY, &page))
}
