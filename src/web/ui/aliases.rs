//! A domain's inbound addresses: its aliases (list, add, remove), its catch-all mailbox, and
//! where its role addresses go. Linked from the domain page; the rules are in `crate::aliases`.
//! Every form re-renders the page with the error and what was typed when the input is refused;
//! what the page states as current (the catch-all sentence) always comes from the store.

use askama::Template;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use serde::Deserialize;

use crate::aliases::{self, Alias, RoleRoute};
use crate::app::App;
use crate::domains::{self, Domain};
use crate::error::Error;
use crate::mailbox::{self, Mailbox};
use crate::web::session::{CsrfForm, Ctx, Session};
use crate::web::{WebResult, render};

#[derive(Template)]
#[template(path = "aliases/list.html")]
struct AliasPage {
    ctx: Ctx,
    domain: Domain,
    aliases: Vec<Alias>,
    roles: Vec<RoleRoute>,
    /// The workspace's mailboxes, offered as suggestions.
    mailboxes: Vec<Mailbox>,
    /// The add form, as typed.
    local_part: String,
    to: String,
    error: Option<String>,
    /// The stored catch-all mailbox; empty: none (unknown addresses are refused).
    current_catch_all: String,
    /// The catch-all form, as typed (the current catch-all when not submitted).
    catch_all: String,
    catch_all_error: Option<String>,
}

#[derive(Deserialize, Default)]
#[serde(default)]
pub struct AddForm {
    local_part: String,
    to: String,
}

#[derive(Deserialize, Default)]
#[serde(default)]
pub struct CatchAllForm {
    mailbox: String,
}

async fn page(app: &App, session: &Session, ws: i64, id: i64) -> WebResult<AliasPage> {
    let (_, ctx) = session.in_workspace(app, ws, "domains").await?;
    let hostname = app.config.hostname.clone();
    let (domain, aliases, roles, mailboxes, catch_all) = app
        .store
        .read(move |conn| {
            let domain = domains::get(conn, ws, id)?;
            let roles = aliases::role_routes(conn, &domain.name, &hostname)?;
            Ok::<_, Error>((
                domain,
                aliases::list(conn, ws, Some(id))?,
                roles,
                mailbox::list(conn, ws, None)?,
                aliases::catch_all(conn, ws, id)?,
            ))
        })
        .await?;
    Ok(AliasPage {
        ctx,
        domain,
        aliases,
        roles,
        mailboxes,
        local_part: String::new(),
        to: String::new(),
        error: None,
        current_catch_all: catch_all.clone().unwrap_or_default(),
        catch_all: catch_all.unwrap_or_default(),
        catch_all_error: None,
    })
}

fn back(ws: i64, id: i64) -> Response {
    Redirect::to(&format!("/w/{ws}/domains/{id}/aliases")).into_response()
}

pub async fn list(State(app): State<App>, session: Session, Path((ws, id)): Path<(i64, i64)>) -> WebResult {
    Ok(render(StatusCode::OK, &page(&app, &session, ws, id).await?))
}

pub async fn add(
    State(app): State<App>,
    session: Session,
    Path((ws, id)): Path<(i64, i64)>,
    CsrfForm(form): CsrfForm<AddForm>,
) -> WebResult {
    let (access, _) = session.in_workspace(&app, ws, "domains").await?;
    let domain = app.store.read(move |conn| domains::get(conn, ws, id)).await?;
    let local = form.local_part.trim();
    let address = match local.rsplit_once('@') {
        Some(_) => local.to_string(),
        None => format!("{local}@{}", domain.name),
    };
    match aliases::add(&app, &access, &address, &aliases::parse_targets(&form.to)).await {
        Ok(_) => Ok(back(ws, id)),
        Err(e) if e.belongs_on_form() => {
            let mut page = page(&app, &session, ws, id).await?;
            page.local_part = form.local_part;
            page.to = form.to;
            page.error = Some(e.to_string());
            Ok(render(StatusCode::UNPROCESSABLE_ENTITY, &page))
        }
        Err(e) => Err(e.into()),
    }
}

pub async fn remove(
    State(app): State<App>,
    session: Session,
    Path((ws, id, alias)): Path<(i64, i64, i64)>,
    CsrfForm(_): CsrfForm<serde::de::IgnoredAny>,
) -> WebResult {
    let (access, _) = session.in_workspace(&app, ws, "domains").await?;
    let found = app.store.read(move |conn| aliases::get(conn, ws, alias)).await?;
    if found.domain_id != id {
        return Err(Error::NotFound.into());
    }
    aliases::remove(&app, &access, alias).await?;
    Ok(back(ws, id))
}

pub async fn catch_all(
    State(app): State<App>,
    session: Session,
    Path((ws, id)): Path<(i64, i64)>,
    CsrfForm(form): CsrfForm<CatchAllForm>,
) -> WebResult {
    let (access, _) = session.in_workspace(&app, ws, "domains").await?;
    let typed = form.mailbox.trim();
    let mailbox = Some(typed.to_string()).filter(|m| !m.is_empty() && !m.eq_ignore_ascii_case("none"));
    match aliases::set_catch_all(&app, &access, id, mailbox).await {
        Ok(_) => Ok(back(ws, id)),
        Err(e) if e.belongs_on_form() => {
            let mut page = page(&app, &session, ws, id).await?;
            page.catch_all = form.mailbox;
            page.catch_all_error = Some(e.to_string());
            Ok(render(StatusCode::UNPROCESSABLE_ENTITY, &page))
        }
        Err(e) => Err(e.into()),
    }
}
