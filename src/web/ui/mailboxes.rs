//! Mailboxes: bulk creation from a domain page, the list with selection, exports, password
//! resets, the one-time credentials download, and editing one mailbox.

use askama::Template;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect};
use axum_extra::extract::Query;
use serde::Deserialize;

use super::csv_download;
use crate::app::App;
use crate::clock::format_unix;
use crate::domains::{self, Domain};
use crate::error::Error;
use crate::mailbox::create::{self, Credential};
use crate::mailbox::export::{self, ExportFormat};
use crate::mailbox::{self, Changes, Mailbox, Status};
use crate::mta::admit;
use crate::mta::queue::{self, StatusCounts};
use crate::web::listing::{self, Listing};
use crate::web::session::{CsrfForm, Ctx, Session};
use crate::web::ui::domains::show_page;
use crate::web::{WebResult, render};
use crate::workspaces::Access;

#[derive(Deserialize)]
pub struct CreateForm {
    #[serde(default)]
    count: String,
    /// Empty: the workspace's default daily limit.
    #[serde(default)]
    daily_limit: String,
}

/// The daily limit typed into the creation form: `None` when left empty.
fn typed_daily_limit(input: &str) -> Result<Option<u32>, Error> {
    match input.trim() {
        "" => Ok(None),
        typed => typed.parse().map(Some).map_err(|_| {
            Error::invalid(
                "daily_limit",
                format!("The daily limit must be a whole number from 0 to {}.", mailbox::MAX_DAILY_LIMIT),
            )
        }),
    }
}

#[derive(Template)]
#[template(path = "mailboxes/issued.html")]
struct IssuedPage {
    ctx: Ctx,
    title: &'static str,
    credentials: Vec<Credential>,
    batch_id: i64,
    /// How long the downloads work at most.
    minutes: i64,
    warnings: Vec<String>,
}

pub async fn create(
    State(app): State<App>,
    session: Session,
    Path((ws, domain_id)): Path<(i64, i64)>,
    CsrfForm(form): CsrfForm<CreateForm>,
) -> WebResult {
    let (access, ctx) = session.in_workspace(&app, ws, "mailboxes").await?;
    let count = form
        .count
        .trim()
        .parse::<usize>()
        .map_err(|_| Error::invalid("count", "Enter how many mailboxes to create, from 1 to 500."));
    let result = match count.and_then(|count| Ok((count, typed_daily_limit(&form.daily_limit)?))) {
        Ok((count, daily_limit)) => create::create_bulk(&app, &access, domain_id, count, daily_limit, true).await,
        Err(e) => Err(e),
    };
    match result {
        Ok(issued) => Ok(issued_page(&app, ctx, "Mailboxes created", issued)),
        Err(e) if e.belongs_on_form() => {
            let mut page = show_page(&app, &session, ws, domain_id).await?;
            page.count = form.count;
            page.daily_limit = form.daily_limit;
            page.error = Some(e.to_string());
            Ok(render(StatusCode::UNPROCESSABLE_ENTITY, &page))
        }
        Err(e) => Err(e.into()),
    }
}

fn issued_page(app: &App, ctx: Ctx, title: &'static str, issued: create::Issued) -> axum::response::Response {
    let page = IssuedPage {
        ctx,
        title,
        credentials: issued.credentials,
        batch_id: issued.batch_id.unwrap_or_default(),
        minutes: create::BATCH_SECONDS / 60,
        warnings: app.config.deployment_warnings(),
    };
    let mut response = render(StatusCode::OK, &page);
    response.headers_mut().insert(axum::http::header::CACHE_CONTROL, "no-store".parse().expect("valid header"));
    response
}

#[derive(Template)]
#[template(path = "mailboxes/list.html")]
struct ListPage {
    ctx: Ctx,
    domains: Vec<Domain>,
    domain_filter: i64,
    status_filter: String,
    statuses: [Status; 3],
    listing: Listing,
    mailboxes: Vec<Mailbox>,
    error: Option<String>,
    warnings: Vec<String>,
}

impl ListPage {
    fn when(&self, at: &i64) -> String {
        format_unix(*at)
    }

    fn domain_name(&self, id: &i64) -> &str {
        self.domains.iter().find(|d| d.id == *id).map_or("", |d| d.display_name.as_str())
    }

    /// Whether the list shows a subset (a search or a filter), for what the empty table says.
    fn filtered(&self) -> bool {
        !self.listing.search().is_empty() || self.domain_filter != 0 || !self.status_filter.is_empty()
    }
}

/// The mailbox list's query: the shared list parameters, a domain and a status.
#[derive(Deserialize, Default)]
#[serde(default)]
pub struct ListQuery {
    domain: Option<i64>,
    status: String,
    q: String,
    sort: String,
    dir: String,
    page: u32,
}

async fn list_page(app: &App, session: &Session, ws: i64, query: ListQuery) -> WebResult<ListPage> {
    let (_, ctx) = session.in_workspace(app, ws, "mailboxes").await?;
    let status = query.status.trim().parse::<Status>().ok();
    let mut filters = Vec::new();
    if let Some(domain) = query.domain {
        filters.push(("domain", domain.to_string()));
    }
    if let Some(status) = status {
        filters.push(("status", status.as_str().to_string()));
    }
    let shared = listing::ListQuery { q: query.q, sort: query.sort, dir: query.dir, page: query.page };
    let mut listing = Listing::new(shared, filters, mailbox::SORT_COLUMNS);
    let search = mailbox::Search {
        text: listing.search().to_string(),
        domain: query.domain,
        status,
        order_by: listing.order_by(),
        ..Default::default()
    };
    let (listing, domains, mailboxes) = app
        .store
        .read(move |conn| {
            let mailboxes = listing.read_page(
                || mailbox::count_matching(conn, ws, &search),
                |limit, offset| mailbox::search(conn, ws, &mailbox::Search { limit, offset, ..search.clone() }),
            )?;
            Ok::<_, Error>((listing, domains::list(conn, ws)?, mailboxes))
        })
        .await?;
    Ok(ListPage {
        ctx,
        domains,
        domain_filter: query.domain.unwrap_or_default(),
        status_filter: status.map(|s| s.as_str().to_string()).unwrap_or_default(),
        statuses: Status::ALL,
        listing,
        mailboxes,
        error: None,
        warnings: app.config.deployment_warnings(),
    })
}

pub async fn list(
    State(app): State<App>,
    session: Session,
    Path(ws): Path<i64>,
    Query(query): Query<ListQuery>,
) -> WebResult {
    Ok(render(StatusCode::OK, &list_page(&app, &session, ws, query).await?))
}

/// What to export: selected mailbox ids, or every mailbox of a domain, or all. Role mailboxes
/// are never exported (`Mailbox::sends_campaigns`).
#[derive(Deserialize, Default)]
#[serde(default)]
pub struct ExportQuery {
    format: String,
    id: Vec<i64>,
    domain: Option<i64>,
}

/// Downloads mailboxes as CSV for a sequencer. Passwords are never in this export.
pub async fn export(
    State(app): State<App>,
    session: Session,
    Path(ws): Path<i64>,
    Query(query): Query<ExportQuery>,
) -> WebResult {
    let (access, _) = session.in_workspace(&app, ws, "mailboxes").await?;
    let format: ExportFormat =
        query.format.parse().map_err(|e: export::ExportError| Error::invalid("format", e.to_string()))?;
    let (label, mut mailboxes) = select(&app, &access, query.id.clone(), query.domain).await?;
    mailboxes.retain(Mailbox::sends_campaigns);
    if mailboxes.is_empty() && !query.id.is_empty() {
        return Err(only_role_mailboxes().into());
    }
    let body = export::write_csv(format, &mailbox::server_settings(&app.config), &mailbox::export_rows(&mailboxes));
    Ok(csv_download(&format.file_name(&label), body))
}

/// The export form of the mailbox list (a POST, so the CSRF token never lands in a URL).
pub async fn export_selected(
    State(app): State<App>,
    session: Session,
    Path(ws): Path<i64>,
    CsrfForm(query): CsrfForm<ExportQuery>,
) -> WebResult {
    if query.id.is_empty() {
        let mut page = list_page(&app, &session, ws, ListQuery::default()).await?;
        page.error = Some("Select the mailboxes to export: tick them in the list first.".into());
        return Ok(render(StatusCode::UNPROCESSABLE_ENTITY, &page));
    }
    session.in_workspace(&app, ws, "mailboxes").await?;
    let wanted = query.id.clone();
    let found = app.store.read(move |conn| mailbox::by_ids(conn, ws, &wanted)).await?;
    if !found.is_empty() && !found.iter().any(Mailbox::sends_campaigns) {
        let mut page = list_page(&app, &session, ws, ListQuery::default()).await?;
        page.error = Some(only_role_mailboxes().to_string());
        return Ok(render(StatusCode::UNPROCESSABLE_ENTITY, &page));
    }
    export(State(app), session, Path(ws), Query(query)).await
}

/// The refusal of an export whose selection holds only role mailboxes.
fn only_role_mailboxes() -> Error {
    Error::invalid(
        "id",
        "Role mailboxes (tagged Role mail) receive the domain's role addresses and are never exported to a \
         sequencer. Select the mailboxes that send campaigns.",
    )
}

/// The selected mailboxes (every one of them, role mailboxes included, or `NotFound`), else the
/// mailboxes of `domain` or the workspace that send campaigns.
async fn select(
    app: &App,
    access: &Access,
    ids: Vec<i64>,
    domain: Option<i64>,
) -> Result<(String, Vec<Mailbox>), Error> {
    let ws = access.workspace.id;
    app.store
        .read(move |conn| {
            if !ids.is_empty() {
                let found = mailbox::by_ids(conn, ws, &ids)?;
                let mut wanted = ids.clone();
                wanted.sort_unstable();
                wanted.dedup();
                if found.len() != wanted.len() {
                    return Err(Error::NotFound);
                }
                return Ok(("mailboxes".to_string(), found));
            }
            match domain {
                Some(id) => {
                    let domain = domains::get(conn, ws, id)?;
                    Ok((domain.name, mailbox::senders(conn, ws, Some(id))?))
                }
                None => Ok(("mailboxes".to_string(), mailbox::senders(conn, ws, None)?)),
            }
        })
        .await
}

#[derive(Deserialize, Default)]
#[serde(default)]
pub struct SelectionForm {
    id: Vec<i64>,
}

pub async fn reset_passwords(
    State(app): State<App>,
    session: Session,
    Path(ws): Path<i64>,
    CsrfForm(form): CsrfForm<SelectionForm>,
) -> WebResult {
    let (access, ctx) = session.in_workspace(&app, ws, "mailboxes").await?;
    if form.id.is_empty() {
        let mut page = list_page(&app, &session, ws, ListQuery::default()).await?;
        page.error = Some("Select at least one mailbox.".into());
        return Ok(render(StatusCode::UNPROCESSABLE_ENTITY, &page));
    }
    let (_, _) = select(&app, &access, form.id.clone(), None).await?;
    let issued = create::reset_passwords(&app, &access, form.id).await?;
    Ok(issued_page(&app, ctx, "Passwords reset", issued))
}

#[derive(Deserialize, Default)]
#[serde(default)]
pub struct DownloadForm {
    format: String,
}

/// A download of freshly issued credentials, in any format, while the credentials page is open
/// (see [`create::read_batch`]).
pub async fn download_credentials(
    State(app): State<App>,
    session: Session,
    Path((ws, batch)): Path<(i64, i64)>,
    CsrfForm(form): CsrfForm<DownloadForm>,
) -> WebResult {
    let (access, _) = session.in_workspace(&app, ws, "mailboxes").await?;
    let format = match form.format.trim() {
        "plain" => None,
        other => Some(other.parse::<ExportFormat>().map_err(|e| Error::invalid("format", e.to_string()))?),
    };
    let label = format.map_or("plain", |f| f.as_str());
    let rows = match create::read_batch(&app, &access, batch, label).await {
        Ok(rows) => rows,
        Err(Error::NotFound) => {
            return Err(Error::Invalid {
                field: None,
                message: format!(
                    "These passwords can no longer be downloaded: the credentials page was left or {} minutes \
                     passed. Reset the passwords to get new ones.",
                    create::BATCH_SECONDS / 60
                ),
            }
            .into());
        }
        Err(e) => return Err(e.into()),
    };
    Ok(match format {
        Some(format) => {
            let body = export::write_csv(format, &mailbox::server_settings(&app.config), &rows);
            csv_download(&format.file_name("credentials"), body)
        }
        None => {
            let pairs: Vec<(String, String)> =
                rows.into_iter().map(|row| (row.email, row.password.unwrap_or_default())).collect();
            csv_download("credentials.csv", export::write_credentials_csv(&pairs))
        }
    })
}

#[derive(Template)]
#[template(path = "mailboxes/edit.html")]
struct EditPage {
    ctx: Ctx,
    mailbox: Mailbox,
    display_name: String,
    daily_limit: String,
    status: String,
    statuses: [Status; 3],
    error: Option<String>,
    /// Where a mail client or sequencer connects.
    server: export::ServerSettings,
    /// Recipients sent to today, in the workspace's time zone.
    sent_today: i64,
    /// Its queue rows by status.
    counts: StatusCounts,
}

impl EditPage {
    fn created(&self) -> String {
        format_unix(self.mailbox.created_at)
    }
}

/// The mailbox page with the form showing `form` (the stored values when `None`).
async fn edit_page(app: &App, ctx: Ctx, ws: i64, id: i64, form: Option<EditForm>) -> WebResult<EditPage> {
    let now = app.clock.unix();
    let (mailbox, sent_today, counts) = app
        .store
        .read(move |conn| {
            let mailbox = mailbox::get(conn, ws, id)?;
            let (sent, _) = admit::sent_today(conn, id, now).map_err(|e| Error::Internal(e.to_string()))?;
            Ok::<_, Error>((mailbox, sent, queue::mailbox_counts(conn, ws, id)?))
        })
        .await?;
    let form = form.unwrap_or_else(|| EditForm {
        display_name: mailbox.display_name.clone(),
        daily_limit: mailbox.daily_limit.to_string(),
        status: mailbox.status.to_string(),
    });
    Ok(EditPage {
        ctx,
        display_name: form.display_name,
        daily_limit: form.daily_limit,
        status: form.status,
        statuses: Status::ALL,
        mailbox,
        error: None,
        server: mailbox::server_settings(&app.config),
        sent_today,
        counts,
    })
}

#[derive(Deserialize, Default)]
#[serde(default)]
pub struct EditForm {
    display_name: String,
    daily_limit: String,
    status: String,
}

pub async fn edit_form(State(app): State<App>, session: Session, Path((ws, id)): Path<(i64, i64)>) -> WebResult {
    let (_, ctx) = session.in_workspace(&app, ws, "mailboxes").await?;
    Ok(render(StatusCode::OK, &edit_page(&app, ctx, ws, id, None).await?))
}

pub async fn edit_submit(
    State(app): State<App>,
    session: Session,
    Path((ws, id)): Path<(i64, i64)>,
    CsrfForm(form): CsrfForm<EditForm>,
) -> WebResult {
    let (access, ctx) = session.in_workspace(&app, ws, "mailboxes").await?;
    let mailbox = app.store.read(move |conn| mailbox::get(conn, ws, id)).await?;
    let result = match parse_changes(&form) {
        Ok(changes) => mailbox::update(&app, &access, id, changes).await,
        Err(e) => Err(e),
    };
    match result {
        Ok(_) => Ok(Redirect::to(&format!("/w/{ws}/mailboxes?domain={}", mailbox.domain_id)).into_response()),
        Err(e) if e.belongs_on_form() => {
            let mut page = edit_page(&app, ctx, ws, id, Some(form)).await?;
            page.error = Some(e.to_string());
            Ok(render(StatusCode::UNPROCESSABLE_ENTITY, &page))
        }
        Err(e) => Err(e.into()),
    }
}

fn parse_changes(form: &EditForm) -> Result<Changes, Error> {
    let daily_limit = form
        .daily_limit
        .trim()
        .parse::<u32>()
        .map_err(|_| Error::invalid("daily_limit", "The daily limit must be a whole number."))?;
    Ok(Changes {
        display_name: Some(form.display_name.clone()),
        daily_limit: Some(daily_limit),
        per_minute: None,
        status: Some(form.status.parse()?),
    })
}
