//! The audit log page: owners and admins filter a workspace's changes.

use askama::Template;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum_extra::extract::Query;

use crate::app::App;
use crate::audit::{self, Entry, Filter};
use crate::clock::format_unix;
use crate::error::Error;
use crate::web::session::{Ctx, Session};
use crate::web::{WebResult, render};
use crate::workspaces::Role;

#[derive(Template)]
#[template(path = "audit/list.html")]
struct AuditPage {
    ctx: Ctx,
    entries: Vec<Entry>,
    actions: Vec<String>,
    actors: Vec<String>,
    filter: Filter,
    more: bool,
}

impl AuditPage {
    fn when(&self, at: &i64) -> String {
        format_unix(*at)
    }

    fn page_link(&self, page: u32) -> String {
        let enc = |s: &str| serde_html_form::to_string([("x", s)]).unwrap_or_default().split_off(2);
        format!(
            "?action={}&actor={}&q={}&page={page}",
            enc(&self.filter.action),
            enc(&self.filter.actor),
            enc(&self.filter.q)
        )
    }
}

pub async fn list(
    State(app): State<App>,
    session: Session,
    Path(ws): Path<i64>,
    Query(filter): Query<Filter>,
) -> WebResult {
    let (access, ctx) = session.in_workspace(&app, ws, "audit").await?;
    access.workspace.role.require(Role::Admin)?;
    let query = filter.clone();
    let ((entries, more), (actions, actors)) =
        app.store.read(move |conn| Ok::<_, Error>((audit::list(conn, ws, &query)?, audit::facets(conn, ws)?))).await?;
    Ok(render(StatusCode::OK, &AuditPage { ctx, entries, actions, actors, filter, more }))
}
