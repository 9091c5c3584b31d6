//! The workspace list, creating workspaces, members and invites.

use askama::Template;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use serde::Deserialize;

use crate::app::App;
use crate::auth::Actor;
use crate::error::Error;
use crate::web::session::{CsrfForm, Ctx, Session};
use crate::web::{WebResult, render};
use crate::workspaces::{self, Member, Role};

/// The start page: the first workspace, or the list when there are several (or none).
pub async fn home(State(app): State<App>, session: Session) -> WebResult {
    let ctx = session.ctx(&app).await?;
    Ok(match ctx.workspaces.as_slice() {
        [only] => Redirect::to(&format!("/w/{}/domains", only.id)).into_response(),
        _ => Redirect::to("/workspaces").into_response(),
    })
}

pub async fn enter(Path(ws): Path<i64>) -> Response {
    Redirect::to(&format!("/w/{ws}/domains")).into_response()
}

#[derive(Template)]
#[template(path = "workspaces/list.html")]
struct ListPage {
    ctx: Ctx,
    name: String,
    error: Option<String>,
}

#[derive(Deserialize)]
pub struct CreateForm {
    #[serde(default)]
    name: String,
}

pub async fn list(State(app): State<App>, session: Session) -> WebResult {
    let ctx = session.ctx(&app).await?;
    Ok(render(StatusCode::OK, &ListPage { ctx, name: String::new(), error: None }))
}

/// Any signed-in user may create a workspace; they become its owner.
pub async fn create(State(app): State<App>, session: Session, CsrfForm(form): CsrfForm<CreateForm>) -> WebResult {
    let name = match workspaces::check_name(&form.name) {
        Ok(name) => name,
        Err(e) => {
            let ctx = session.ctx(&app).await?;
            let page = ListPage { ctx, name: form.name, error: Some(e.to_string()) };
            return Ok(render(StatusCode::UNPROCESSABLE_ENTITY, &page));
        }
    };
    let (user, actor) = (session.user.user_id, Actor::user(session.user.user_id, &session.user.email));
    let now = app.clock.unix();
    let id = app.store.write(move |tx| workspaces::create(tx, &name, user, &actor, now)).await?;
    Ok(Redirect::to(&format!("/w/{id}/domains")).into_response())
}

#[derive(Template)]
#[template(path = "workspaces/members.html")]
struct MembersPage {
    ctx: Ctx,
    members: Vec<Member>,
    roles: Vec<&'static str>,
    email: String,
    role: String,
    invite_link: Option<String>,
    error: Option<String>,
}

#[derive(Deserialize)]
pub struct InviteForm {
    #[serde(default)]
    email: String,
    #[serde(default)]
    role: String,
}

async fn members_page(app: &App, session: &Session, ws: i64) -> WebResult<MembersPage> {
    let (access, ctx) = session.in_workspace(app, ws, "members").await?;
    let id = access.workspace.id;
    let members = app.store.read(move |conn| workspaces::members(conn, id)).await.map_err(Error::from)?;
    let roles = Role::ALL
        .into_iter()
        .filter(|r| *r != Role::Owner || access.workspace.role == Role::Owner)
        .map(Role::as_str)
        .collect();
    Ok(MembersPage { ctx, members, roles, email: String::new(), role: "member".into(), invite_link: None, error: None })
}

pub async fn members(State(app): State<App>, session: Session, Path(ws): Path<i64>) -> WebResult {
    Ok(render(StatusCode::OK, &members_page(&app, &session, ws).await?))
}

/// Creates a one-time invite link and shows it (the appliance does not send the email itself).
pub async fn invite(
    State(app): State<App>,
    session: Session,
    Path(ws): Path<i64>,
    CsrfForm(form): CsrfForm<InviteForm>,
) -> WebResult {
    let mut page = members_page(&app, &session, ws).await?;
    let (access, _) = session.in_workspace(&app, ws, "members").await?;
    let now = app.clock.unix();
    let result = match form.role.parse::<Role>() {
        Ok(role) => {
            let (email, access) = (form.email.clone(), access.clone());
            app.store.write(move |tx| workspaces::invite(tx, &access, &email, role, now)).await
        }
        Err(e) => Err(e),
    };
    match result {
        Ok(token) => {
            page.invite_link = Some(format!("{}/invite/{token}", app.config.http.base_url));
            Ok(render(StatusCode::OK, &page))
        }
        Err(Error::Forbidden) => Err(Error::Forbidden.into()),
        Err(e) if e.is_user_error() => {
            page.email = form.email;
            page.role = form.role;
            page.error = Some(e.to_string());
            Ok(render(StatusCode::UNPROCESSABLE_ENTITY, &page))
        }
        Err(e) => Err(e.into()),
    }
}
