//! Domains: the list with the add form, one domain's records to publish, its zone snippet, and
//! its egress address (a select of `[delivery] source_ips` and "automatic"), and where its role
//! mail goes (a dedicated postmaster@ mailbox or a select of the workspace's mailboxes), chosen
//! when adding it and changeable on its page, and its tracking host (`crate::tracking::host`).

use askama::Template;
use axum::extract::{Path, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Redirect};
use axum_extra::extract::Query;
use serde::Deserialize;

use crate::app::App;
use crate::clock::format_unix;
use crate::dns::dkim::DkimAlgorithm;
use crate::dns::records::DnsRecord;
use crate::domains::{self, Domain, RoleChoice};
use crate::error::Error;
use crate::mailbox::{self, Mailbox};
use crate::web::listing::{ListQuery, Listing};
use crate::web::session::{CsrfForm, Ctx, Session};
use crate::web::{WebResult, render};
use crate::workspaces;

#[derive(Template)]
#[template(path = "domains/list.html")]
struct ListPage {
    ctx: Ctx,
    listing: Listing,
    domains: Vec<Domain>,
    /// The workspace's mailboxes, to choose one for role mail.
    mailboxes: Vec<Mailbox>,
    name: String,
    dkim: String,
    /// "dedicated" or a mailbox id, as chosen.
    role_mailbox: String,
    error: Option<String>,
}

impl ListPage {
    fn when(&self, at: &i64) -> String {
        format_unix(*at)
    }
}

#[derive(Deserialize)]
pub struct AddForm {
    #[serde(default)]
    name: String,
    #[serde(default)]
    dkim: String,
    #[serde(default)]
    role_mailbox: String,
}

async fn list_page(app: &App, session: &Session, ws: i64, query: ListQuery) -> WebResult<ListPage> {
    let (_, ctx) = session.in_workspace(app, ws, "domains").await?;
    let mut listing = Listing::new(query, Vec::new(), domains::SORT_COLUMNS);
    let search =
        domains::Search { text: listing.search().to_string(), order_by: listing.order_by(), ..Default::default() };
    let (listing, domains, mailboxes) = app
        .store
        .read(move |conn| {
            let domains = listing.read_page(
                || domains::count_matching(conn, ws, &search),
                |limit, offset| domains::search(conn, ws, &domains::Search { limit, offset, ..search.clone() }),
            )?;
            Ok::<_, Error>((listing, domains, mailbox::list(conn, ws, None)?))
        })
        .await?;
    Ok(ListPage {
        ctx,
        listing,
        domains,
        mailboxes,
        name: String::new(),
        dkim: "rsa".into(),
        role_mailbox: "dedicated".into(),
        error: None,
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

pub async fn add(
    State(app): State<App>,
    session: Session,
    Path(ws): Path<i64>,
    CsrfForm(form): CsrfForm<AddForm>,
) -> WebResult {
    let (access, _) = session.in_workspace(&app, ws, "domains").await?;
    let choice = form.dkim.parse::<DkimAlgorithm>().map_err(|e| Error::invalid("dkim", e.to_string()));
    let result = match choice.and_then(|algorithm| Ok((algorithm, RoleChoice::from_form(&form.role_mailbox)?))) {
        Ok((algorithm, role)) => domains::add(&app, &access, &form.name, algorithm, role).await,
        Err(e) => Err(e),
    };
    match result {
        Ok(domain) => Ok(Redirect::to(&format!("/w/{ws}/domains/{}", domain.id)).into_response()),
        Err(e) if e.belongs_on_form() => {
            let mut page = list_page(&app, &session, ws, ListQuery::default()).await?;
            page.name = form.name;
            page.dkim = form.dkim;
            page.role_mailbox = form.role_mailbox;
            page.error = Some(e.to_string());
            Ok(render(StatusCode::UNPROCESSABLE_ENTITY, &page))
        }
        Err(e) => Err(e.into()),
    }
}

#[derive(Template)]
#[template(path = "domains/show.html")]
pub struct ShowPage {
    pub ctx: Ctx,
    pub domain: Domain,
    pub records: Vec<DnsRecord>,
    pub count: String,
    /// The daily limit of the mailboxes to create: the workspace's default until changed.
    pub daily_limit: String,
    pub error: Option<String>,
    /// The configured egress addresses (`[delivery] source_ips`).
    pub source_ips: Vec<String>,
    /// The selected egress address; empty: automatic.
    pub source_ip: String,
    pub source_ip_error: Option<String>,
    /// The workspace's mailboxes, to choose one for role mail.
    pub workspace_mailboxes: Vec<Mailbox>,
    /// "dedicated" or a mailbox id: the selected choice for role mail.
    pub role_mailbox: String,
    pub role_mailbox_error: Option<String>,
    /// The domain's tracking host, as stored.
    pub tracking_host_current: Option<String>,
    /// The tracking host field's value: the stored one until changed.
    pub tracking_host: String,
    pub tracking_host_error: Option<String>,
    /// Where tracking links point without a tracking host.
    pub base_url: String,
    /// The name a tracking host's CNAME points at.
    pub hostname: String,
    /// What keeps the records from being usable (`Config::deployment_warnings`).
    pub warnings: Vec<String>,
}

/// The domain page, with the mailbox-creation form pre-filled.
pub async fn show_page(app: &App, session: &Session, ws: i64, id: i64) -> WebResult<ShowPage> {
    let (_, ctx) = session.in_workspace(app, ws, "domains").await?;
    let (domain, workspace_mailboxes, daily_limit, tracking_host) = app
        .store
        .read(move |conn| {
            let domain = domains::get(conn, ws, id)?;
            let tracking_host = crate::tracking::host::of_domain(conn, ws, id)?;
            let mailboxes = mailbox::list(conn, ws, None)?;
            Ok::<_, Error>((domain, mailboxes, workspaces::default_daily_limit(conn, ws)?, tracking_host))
        })
        .await?;
    let records = domains::records(&app.config, &domain);
    let source_ip = domain.source_ip.clone().unwrap_or_default();
    let role_mailbox = domain.role_mailbox_id.map(|id| id.to_string()).unwrap_or_default();
    Ok(ShowPage {
        ctx,
        domain,
        records,
        count: "50".into(),
        daily_limit: daily_limit.to_string(),
        error: None,
        source_ips: app.config.delivery.source_ips.clone(),
        source_ip,
        source_ip_error: None,
        workspace_mailboxes,
        role_mailbox,
        role_mailbox_error: None,
        tracking_host: tracking_host.clone().unwrap_or_default(),
        tracking_host_current: tracking_host,
        tracking_host_error: None,
        base_url: app.config.http.base_url.clone(),
        hostname: app.config.hostname.clone(),
        warnings: app.config.deployment_warnings(),
    })
}

pub async fn show(State(app): State<App>, session: Session, Path((ws, id)): Path<(i64, i64)>) -> WebResult {
    Ok(render(StatusCode::OK, &show_page(&app, &session, ws, id).await?))
}

#[derive(Deserialize)]
pub struct SourceIpForm {
    #[serde(default)]
    source_ip: String,
}

/// Sets the domain's egress address; bad input re-renders the page with the error.
pub async fn set_source_ip(
    State(app): State<App>,
    session: Session,
    Path((ws, id)): Path<(i64, i64)>,
    CsrfForm(form): CsrfForm<SourceIpForm>,
) -> WebResult {
    let (access, _) = session.in_workspace(&app, ws, "domains").await?;
    match domains::set_source_ip(&app, &access, id, &form.source_ip).await {
        Ok(_) => Ok(Redirect::to(&format!("/w/{ws}/domains/{id}")).into_response()),
        Err(e) if e.belongs_on_form() => {
            let mut page = show_page(&app, &session, ws, id).await?;
            page.source_ip = form.source_ip;
            page.source_ip_error = Some(e.to_string());
            Ok(render(StatusCode::UNPROCESSABLE_ENTITY, &page))
        }
        Err(e) => Err(e.into()),
    }
}

#[derive(Deserialize)]
pub struct RoleMailboxForm {
    #[serde(default)]
    role_mailbox: String,
}

/// Sets where the domain's role mail goes; a bad choice re-renders the page with the error.
pub async fn set_role_mailbox(
    State(app): State<App>,
    session: Session,
    Path((ws, id)): Path<(i64, i64)>,
    CsrfForm(form): CsrfForm<RoleMailboxForm>,
) -> WebResult {
    let (access, _) = session.in_workspace(&app, ws, "domains").await?;
    let result = match RoleChoice::from_form(&form.role_mailbox) {
        Ok(role) => domains::set_role_mailbox(&app, &access, id, role).await,
        Err(e) => Err(e),
    };
    match result {
        Ok(_) => Ok(Redirect::to(&format!("/w/{ws}/domains/{id}")).into_response()),
        Err(e) if e.belongs_on_form() => {
            let mut page = show_page(&app, &session, ws, id).await?;
            page.role_mailbox = form.role_mailbox;
            page.role_mailbox_error = Some(e.to_string());
            Ok(render(StatusCode::UNPROCESSABLE_ENTITY, &page))
        }
        Err(e) => Err(e.into()),
    }
}

#[derive(Deserialize)]
pub struct TrackingHostForm {
    #[serde(default)]
    tracking_host: String,
}

/// Sets (or, empty, clears) the domain's tracking host; a bad name re-renders the page with the
/// error and what was typed.
pub async fn set_tracking_host(
    State(app): State<App>,
    session: Session,
    Path((ws, id)): Path<(i64, i64)>,
    CsrfForm(form): CsrfForm<TrackingHostForm>,
) -> WebResult {
    let (access, _) = session.in_workspace(&app, ws, "domains").await?;
    match crate::tracking::host::set(&app, &access, id, &form.tracking_host).await {
        Ok(_) => Ok(Redirect::to(&format!("/w/{ws}/domains/{id}")).into_response()),
        Err(e) if e.belongs_on_form() => {
            let mut page = show_page(&app, &session, ws, id).await?;
            page.tracking_host = form.tracking_host;
            page.tracking_host_error = Some(e.to_string());
            Ok(render(StatusCode::UNPROCESSABLE_ENTITY, &page))
        }
        Err(e) => Err(e.into()),
    }
}

/// The records as a BIND zone snippet, downloaded as `DOMAIN.zone`.
pub async fn zone(State(app): State<App>, session: Session, Path((ws, id)): Path<(i64, i64)>) -> WebResult {
    session.in_workspace(&app, ws, "domains").await?;
    let domain = app.store.read(move |conn| domains::get(conn, ws, id)).await?;
    let body = domains::zone(&app.config, &domain);
    Ok((
        [
            (header::CONTENT_TYPE, "text/plain; charset=utf-8".to_string()),
            (header::CONTENT_DISPOSITION, format!("attachment; filename=\"{}.zone\"", domain.name)),
        ],
        body,
    )
        .into_response())
}
