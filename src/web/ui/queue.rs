//! The outbound queue page: counts by status, by sending mailbox and by destination domain, the
//! rows (searched by recipient or sender, filtered by status, sorted, a page at a time), one row with its events, "retry now" and "cancel"
//! (members and above; viewers only look), and the workspace's mail settings (owners and admins).

use askama::Template;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect};
use axum_extra::extract::Query;
use serde::Deserialize;

use crate::app::App;
use crate::clock::format_unix;
use crate::error::Error;
use crate::events::Event;
use crate::mta::QueueStatus;
use crate::mta::queue::{self, Counts, QueueRow};
use crate::tracking::unsubscribe;
use crate::web::listing::{self, Listing};
use crate::web::session::{CsrfForm, Ctx, Session};
use crate::web::{WebResult, render};

#[derive(Template)]
#[template(path = "queue/list.html")]
struct ListPage {
    ctx: Ctx,
    counts: Counts,
    listing: Listing,
    rows: Vec<QueueRow>,
    statuses: [QueueStatus; 7],
    status: String,
    list_unsubscribe: bool,
}

impl ListPage {
    fn when(&self, at: &i64) -> String {
        format_unix(*at)
    }

    fn count(&self, status: &QueueStatus) -> i64 {
        self.counts.by_status.of(*status)
    }

    /// "12 (3 local)" for the delivered count when some were local deliveries.
    fn count_text(&self, status: &QueueStatus) -> String {
        let count = self.count(status);
        match self.counts.by_status.delivered_locally {
            local if local > 0 && *status == QueueStatus::Delivered => format!("{count} ({local} local)"),
            _ => count.to_string(),
        }
    }

    /// Whether the list shows a subset (a search or a status), for what the empty table says.
    fn filtered(&self) -> bool {
        !self.listing.search().is_empty() || !self.status.is_empty()
    }
}

/// The queue page's query: the shared list parameters and a status.
#[derive(Deserialize, Default)]
#[serde(default)]
pub struct ListQuery {
    status: String,
    q: String,
    sort: String,
    dir: String,
    page: u32,
}

pub async fn list(
    State(app): State<App>,
    session: Session,
    Path(ws): Path<i64>,
    Query(query): Query<ListQuery>,
) -> WebResult {
    let (_, ctx) = session.in_workspace(&app, ws, "queue").await?;
    let status = queue::check_status(&query.status)?;
    let filters = status.map(|s| ("status", s.to_string())).into_iter().collect();
    let shared = listing::ListQuery { q: query.q, sort: query.sort, dir: query.dir, page: query.page };
    let mut listing = Listing::new(shared, filters, queue::SORT_COLUMNS).descending_by_default();
    let search = queue::Search {
        text: listing.search().to_string(),
        status,
        order_by: listing.order_by(),
        ..Default::default()
    };
    let (counts, listing, rows, list_unsubscribe) = app
        .store
        .read(move |conn| {
            let rows = listing.read_page(
                || queue::count_matching(conn, Some(ws), &search),
                |limit, offset| queue::search(conn, Some(ws), &queue::Search { limit, offset, ..search.clone() }),
            )?;
            Ok::<_, Error>((queue::counts(conn, Some(ws))?, listing, rows, unsubscribe::enabled(conn, ws)?))
        })
        .await?;
    let page = ListPage {
        ctx,
        counts,
        listing,
        rows,
        statuses: QueueStatus::ALL,
        status: status.map(|s| s.to_string()).unwrap_or_default(),
        list_unsubscribe,
    };
    Ok(render(StatusCode::OK, &page))
}

#[derive(Template)]
#[template(path = "queue/show.html")]
struct ShowPage {
    ctx: Ctx,
    row: QueueRow,
    events: Vec<Event>,
    error: Option<String>,
}

impl ShowPage {
    fn when(&self, at: &i64) -> String {
        format_unix(*at)
    }
}

async fn show_page(app: &App, session: &Session, ws: i64, id: i64) -> WebResult<ShowPage> {
    let (_, ctx) = session.in_workspace(app, ws, "queue").await?;
    let (row, events) = app.store.read(move |conn| queue::detail(conn, Some(ws), id)).await?;
    Ok(ShowPage { ctx, row, events, error: None })
}

pub async fn show(State(app): State<App>, session: Session, Path((ws, id)): Path<(i64, i64)>) -> WebResult {
    Ok(render(StatusCode::OK, &show_page(&app, &session, ws, id).await?))
}

/// A form with nothing but its CSRF field.
#[derive(Deserialize)]
pub struct ActionForm {}

pub async fn retry(
    State(app): State<App>,
    session: Session,
    Path((ws, id)): Path<(i64, i64)>,
    CsrfForm(_): CsrfForm<ActionForm>,
) -> WebResult {
    let (access, _) = session.in_workspace(&app, ws, "queue").await?;
    let result = queue::retry_now(&app, Some(&access), id).await;
    after_action(&app, &session, ws, id, result.map(|_| ())).await
}

pub async fn cancel(
    State(app): State<App>,
    session: Session,
    Path((ws, id)): Path<(i64, i64)>,
    CsrfForm(_): CsrfForm<ActionForm>,
) -> WebResult {
    let (access, _) = session.in_workspace(&app, ws, "queue").await?;
    let result = queue::cancel(&app, Some(&access), id).await;
    after_action(&app, &session, ws, id, result.map(|_| ())).await
}

/// Back to the row's page, or the page again with the reason the action did not apply.
async fn after_action(app: &App, session: &Session, ws: i64, id: i64, result: Result<(), Error>) -> WebResult {
    match result {
        Ok(()) => Ok(Redirect::to(&format!("/w/{ws}/queue/{id}")).into_response()),
        Err(Error::Conflict(message)) => {
            let mut page = show_page(app, session, ws, id).await?;
            page.error = Some(message);
            Ok(render(StatusCode::CONFLICT, &page))
        }
        Err(e) => Err(e.into()),
    }
}

#[derive(Deserialize, Default)]
#[serde(default)]
pub struct SettingsForm {
    list_unsubscribe: Option<String>,
}

/// Saves the workspace's mail settings (owners and admins).
pub async fn settings(
    State(app): State<App>,
    session: Session,
    Path(ws): Path<i64>,
    CsrfForm(form): CsrfForm<SettingsForm>,
) -> WebResult {
    let (access, _) = session.in_workspace(&app, ws, "queue").await?;
    unsubscribe::set_enabled(&app, &access, form.list_unsubscribe.is_some()).await?;
    Ok(Redirect::to(&format!("/w/{ws}/queue")).into_response())
}
