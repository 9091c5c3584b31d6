//! The workspace list, creating workspaces, members and invites.

use askama::Template;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use serde::Deserialize;

use super::account::EmptyForm;
use crate::app::App;
use crate::auth::Actor;
use crate::clock::format_unix;
use crate::error::Error;
use crate::web::session::{CsrfForm, Ctx, Session};
use crate::web::{WebResult, render};
use crate::workspaces::{self, Access, Member, PendingInvite, Role};

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
    invites: Vec<PendingInvite>,
    /// The roles the viewer may give (owner only for owners).
    roles: Vec<&'static str>,
    email: String,
    role: String,
    invite_link: Option<String>,
    error: Option<String>,
    notice: Option<String>,
}

impl MembersPage {
    /// Whether the viewer may change or remove this member (admins manage all but owners).
    fn manages(&self, member: &Member) -> bool {
        self.ctx
            .current
            .as_ref()
            .is_some_and(|w| w.role.can_administer() && (member.role != Role::Owner || w.role == Role::Owner))
    }

    fn manages_invite(&self, invite: &PendingInvite) -> bool {
        self.ctx
            .current
            .as_ref()
            .is_some_and(|w| w.role.can_administer() && (invite.role != Role::Owner || w.role == Role::Owner))
    }

    fn when(&self, at: &i64) -> String {
        format_unix(*at)
    }
}

#[derive(Deserialize)]
pub struct InviteForm {
    #[serde(default)]
    email: String,
    #[serde(default)]
    role: String,
}

async fn members_page(app: &App, session: &Session, ws: i64) -> WebResult<(Access, MembersPage)> {
    let (access, ctx) = session.in_workspace(app, ws, "members").await?;
    let (id, now) = (access.workspace.id, app.clock.unix());
    let (members, invites) = app
        .store
        .read(move |conn| Ok::<_, Error>((workspaces::members(conn, id)?, workspaces::pending_invites(conn, id, now)?)))
        .await?;
    let roles = Role::ALL
        .into_iter()
        .filter(|r| *r != Role::Owner || access.workspace.role == Role::Owner)
        .map(Role::as_str)
        .collect();
    let page = MembersPage {
        ctx,
        members,
        invites,
        roles,
        email: String::new(),
        role: "member".into(),
        invite_link: None,
        error: None,
        notice: None,
    };
    Ok((access, page))
}

pub async fn members(State(app): State<App>, session: Session, Path(ws): Path<i64>) -> WebResult {
    Ok(render(StatusCode::OK, &members_page(&app, &session, ws).await?.1))
}

/// The members page after a change: the page again (with the change in it) and a notice, or
/// the user's mistake re-rendered with 422; a role that does not allow it is a 403.
async fn after_change<T>(
    app: &App,
    session: &Session,
    ws: i64,
    result: Result<T, Error>,
    notice: impl FnOnce(T) -> String,
) -> WebResult {
    let (status, outcome) = match result {
        Ok(done) => (StatusCode::OK, Ok(notice(done))),
        Err(e) if e.belongs_on_form() => (StatusCode::UNPROCESSABLE_ENTITY, Err(e.to_string())),
        Err(e) => return Err(e.into()),
    };
    let (_, mut page) = members_page(app, session, ws).await?;
    match outcome {
        Ok(notice) => page.notice = Some(notice),
        Err(error) => page.error = Some(error),
    }
    Ok(render(status, &page))
}

/// Creates a one-time invite link and shows it (the appliance does not send the email itself).
pub async fn invite(
    State(app): State<App>,
    session: Session,
    Path(ws): Path<i64>,
    CsrfForm(form): CsrfForm<InviteForm>,
) -> WebResult {
    let (access, _) = session.in_workspace(&app, ws, "members").await?;
    let now = app.clock.unix();
    let result = match form.role.parse::<Role>() {
        Ok(role) => {
            let email = form.email.clone();
            app.store.write(move |tx| workspaces::invite(tx, &access, &email, role, now)).await
        }
        Err(e) => Err(e),
    };
    match result {
        Ok(token) => {
            let (_, mut page) = members_page(&app, &session, ws).await?;
            page.invite_link = Some(format!("{}/invite/{token}", app.config.http.base_url));
            Ok(render(StatusCode::OK, &page))
        }
        Err(Error::Forbidden) => Err(Error::Forbidden.into()),
        Err(e) if e.is_user_error() => {
            let (_, mut page) = members_page(&app, &session, ws).await?;
            page.email = form.email;
            page.role = form.role;
            page.error = Some(e.to_string());
            Ok(render(StatusCode::UNPROCESSABLE_ENTITY, &page))
        }
        Err(e) => Err(e.into()),
    }
}

#[derive(Deserialize)]
pub struct MemberForm {
    #[serde(default)]
    email: String,
    #[serde(default)]
    role: String,
}

/// Gives a member another role.
pub async fn change_role(
    State(app): State<App>,
    session: Session,
    Path(ws): Path<i64>,
    CsrfForm(form): CsrfForm<MemberForm>,
) -> WebResult {
    let (access, _) = session.in_workspace(&app, ws, "members").await?;
    let now = app.clock.unix();
    let result = match form.role.parse::<Role>() {
        Ok(role) => app.store.write(move |tx| workspaces::change_role(tx, &access, &form.email, role, now)).await,
        Err(e) => Err(e),
    };
    after_change(&app, &session, ws, result, |m| format!("{} is now {}.", m.email, m.role)).await
}

/// Ends a membership.
pub async fn remove(
    State(app): State<App>,
    session: Session,
    Path(ws): Path<i64>,
    CsrfForm(form): CsrfForm<MemberForm>,
) -> WebResult {
    let (access, _) = session.in_workspace(&app, ws, "members").await?;
    let now = app.clock.unix();
    let result = app.store.write(move |tx| workspaces::remove_member(tx, &access, &form.email, now)).await;
    if matches!(&result, Ok(m) if m.user_id == session.user.user_id) {
        return Ok(Redirect::to("/workspaces").into_response());
    }
    after_change(&app, &session, ws, result, |m| format!("{} is no longer a member.", m.email)).await
}

/// Withdraws a pending invite; its link stops working.
pub async fn revoke_invite(
    State(app): State<App>,
    session: Session,
    Path((ws, id)): Path<(i64, i64)>,
    CsrfForm(_): CsrfForm<EmptyForm>,
) -> WebResult {
    let (access, _) = session.in_workspace(&app, ws, "members").await?;
    let now = app.clock.unix();
    let result = app.store.write(move |tx| workspaces::revoke_invite(tx, &access, id, now)).await;
    after_change(&app, &session, ws, result, |i| format!("The invite for {} was revoked.", i.email)).await
}
