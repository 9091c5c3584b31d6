//! The audit log page: owners and admins search a workspace's changes, filter them by action and
//! by who made them, and sort them (newest first unless asked otherwise), a page at a time.

use askama::Template;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum_extra::extract::Query;
use serde::Deserialize;

use crate::app::App;
use crate::audit::{self, Entry, Filter};
use crate::clock::format_unix;
use crate::error::Error;
use crate::web::listing::{self, Listing};
use crate::web::session::{Ctx, Session};
use crate::web::{WebResult, render};
use crate::workspaces::Role;

#[derive(Template)]
#[template(path = "audit/list.html")]
struct AuditPage {
    ctx: Ctx,
    listing: Listing,
    entries: Vec<Entry>,
    actions: Vec<String>,
    actors: Vec<String>,
    action: String,
    actor: String,
}

impl AuditPage {
    fn when(&self, at: &i64) -> String {
        format_unix(*at)
    }

    /// Whether the page shows a subset (a search or a filter), for what the empty table says.
    fn filtered(&self) -> bool {
        !self.listing.search().is_empty() || !self.action.is_empty() || !self.actor.is_empty()
    }
}

/// The audit page's query: the shared list parameters, an action and an actor.
#[derive(Deserialize, Default)]
#[serde(default)]
pub struct AuditQuery {
    action: String,
    actor: String,
    q: String,
    sort: String,
    dir: String,
    page: u32,
}

pub async fn list(
    State(app): State<App>,
    session: Session,
    Path(ws): Path<i64>,
    Query(query): Query<AuditQuery>,
) -> WebResult {
    let (access, ctx) = session.in_workspace(&app, ws, "audit").await?;
    access.workspace.role.require(Role::Admin)?;
    let (action, actor) = (query.action.trim().to_string(), query.actor.trim().to_string());
    let filters = [("action", &action), ("actor", &actor)]
        .into_iter()
        .filter(|(_, value)| !value.is_empty())
        .map(|(name, value)| (name, value.clone()))
        .collect();
    let shared = listing::ListQuery { q: query.q, sort: query.sort, dir: query.dir, page: query.page };
    let mut listing = Listing::new(shared, filters, audit::SORT_COLUMNS).descending_by_default();
    let filter = Filter {
        action: action.clone(),
        actor: actor.clone(),
        text: listing.search().to_string(),
        order_by: listing.order_by(),
        ..Default::default()
    };
    let (listing, entries, (actions, actors)) = app
        .store
        .read(move |conn| {
            let entries = listing.read_page(
                || audit::count(conn, ws, &filter),
                |limit, offset| audit::list(conn, ws, &Filter { limit, offset, ..filter.clone() }),
            )?;
            Ok::<_, Error>((listing, entries, audit::facets(conn, ws)?))
        })
        .await?;
    Ok(render(StatusCode::OK, &AuditPage { ctx, listing, entries, actions, actors, action, actor }))
}
