//! Signing in and out, the one-time setup link, and accepting an invite.

use askama::Template;
use axum::extract::{Path, State};
use axum::http::header::SET_COOKIE;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use serde::Deserialize;

use crate::app::App;
use crate::auth::{password, sessions, users};
use crate::error::Error;
use crate::web::client::ClientIp;
use crate::web::session::{CsrfForm, Ctx, SESSION_COOKIE, Visitor, cookie, cookie_header, start_session};
use crate::web::{WebResult, render};
use crate::workspaces;

#[derive(Template)]
#[template(path = "account/setup.html")]
struct SetupPage {
    ctx: Ctx,
    token: String,
    email: String,
    workspace: String,
    error: Option<String>,
}

#[derive(Deserialize)]
pub struct SetupForm {
    #[serde(default)]
    email: String,
    #[serde(default)]
    password: String,
    #[serde(default)]
    workspace: String,
}

/// The page for a setup or invite link that no longer opens: why, and the way to sign in. It
/// answers 404, as an unknown link does.
#[derive(Template)]
#[template(path = "account/dead_link.html")]
struct DeadLinkPage {
    ctx: Ctx,
    title: &'static str,
    message: &'static str,
}

fn dead_link(visitor: &Visitor, title: &'static str, message: &'static str) -> Response {
    render(StatusCode::NOT_FOUND, &DeadLinkPage { ctx: Ctx::anonymous(&visitor.csrf), title, message })
}

/// A setup link that does not open: used when an account exists, otherwise replaced by a newer
/// one (each start prints a fresh link).
async fn dead_setup_link(app: &App, visitor: &Visitor) -> WebResult {
    let accounts = app.store.read(users::count).await.map_err(Error::from)?;
    Ok(if accounts > 0 {
        dead_link(visitor, "This setup link was already used", "The appliance is set up. Sign in with your account.")
    } else {
        dead_link(
            visitor,
            "This setup link is no longer valid",
            "Use the newest setup link the appliance printed when it started, or sign in if you have an account.",
        )
    })
}

/// An invite link that does not open: used, expired, or revoked (or never issued).
async fn dead_invite_link(app: &App, visitor: &Visitor, token: String) -> WebResult {
    let now = app.clock.unix();
    let why = app.store.read(move |conn| workspaces::dead_invite(conn, &token, now)).await.map_err(Error::from)?;
    Ok(match why {
        workspaces::DeadInvite::Used => dead_link(
            visitor,
            "This invite link was already used",
            "An invite link works once. If you accepted it, sign in with that account.",
        ),
        workspaces::DeadInvite::Expired => dead_link(
            visitor,
            "This invite link has expired",
            "Invite links are valid for 7 days. Ask the person who invited you for a new one.",
        ),
        workspaces::DeadInvite::Unknown => dead_link(
            visitor,
            "This invite link is no longer valid",
            "It may have been revoked. Ask the person who invited you for a new one, or sign in.",
        ),
    })
}

pub async fn setup_form(State(app): State<App>, visitor: Visitor, Path(token): Path<String>) -> WebResult {
    let check = token.clone();
    if !app.store.read(move |conn| users::setup_token_valid(conn, &check)).await.map_err(Error::from)? {
        return dead_setup_link(&app, &visitor).await;
    }
    let page = SetupPage {
        ctx: Ctx::anonymous(&visitor.csrf),
        token,
        email: String::new(),
        workspace: "My agency".into(),
        error: None,
    };
    Ok(render(StatusCode::OK, &page))
}

pub async fn setup_submit(
    State(app): State<App>,
    visitor: Visitor,
    Path(token): Path<String>,
    CsrfForm(form): CsrfForm<SetupForm>,
) -> WebResult {
    match users::complete_setup(&app, token.clone(), &form.email, form.password, &form.workspace).await {
        Ok(session) => Ok(start_session(&app, &session, "/")),
        Err(Error::NotFound) => dead_setup_link(&app, &visitor).await,
        Err(e) if e.is_user_error() => {
            let page = SetupPage {
                ctx: Ctx::anonymous(&visitor.csrf),
                token,
                email: form.email,
                workspace: form.workspace,
                error: Some(e.to_string()),
            };
            Ok(render(StatusCode::UNPROCESSABLE_ENTITY, &page))
        }
        Err(e) => Err(e.into()),
    }
}

#[derive(Template)]
#[template(path = "account/login.html")]
struct LoginPage {
    ctx: Ctx,
    email: String,
    error: Option<String>,
}

#[derive(Deserialize)]
pub struct LoginForm {
    #[serde(default)]
    email: String,
    #[serde(default)]
    password: String,
}

pub async fn login_form(visitor: Visitor) -> Response {
    if visitor.user.is_some() {
        return Redirect::to("/").into_response();
    }
    render(StatusCode::OK, &LoginPage { ctx: Ctx::anonymous(&visitor.csrf), email: String::new(), error: None })
}

pub async fn login_submit(
    State(app): State<App>,
    ClientIp(client): ClientIp,
    visitor: Visitor,
    CsrfForm(form): CsrfForm<LoginForm>,
) -> WebResult {
    match users::login(&app, &form.email, form.password, client.to_string()).await {
        Ok(session) => Ok(start_session(&app, &session, "/")),
        Err(e) if e.is_user_error() => {
            let status = match e {
                Error::Throttled(_) => StatusCode::TOO_MANY_REQUESTS,
                _ => StatusCode::UNAUTHORIZED,
            };
            let page = LoginPage { ctx: Ctx::anonymous(&visitor.csrf), email: form.email, error: Some(e.to_string()) };
            Ok(render(status, &page))
        }
        Err(e) => Err(e.into()),
    }
}

#[derive(Deserialize)]
pub struct EmptyForm {}

pub async fn logout(State(app): State<App>, headers: HeaderMap, CsrfForm(_): CsrfForm<EmptyForm>) -> WebResult {
    if let Some(token) = cookie(&headers, SESSION_COOKIE) {
        app.store.write(move |tx| sessions::delete(tx, &token)).await.map_err(Error::from)?;
    }
    let cleared = cookie_header(&app, SESSION_COOKIE, "", Some(0));
    Ok(([(SET_COOKIE, cleared)], Redirect::to("/login")).into_response())
}

#[derive(Template)]
#[template(path = "account/invite.html")]
struct InvitePage {
    ctx: Ctx,
    token: String,
    workspace: String,
    email: String,
    role: String,
    signed_in_as: Option<String>,
    error: Option<String>,
}

#[derive(Deserialize)]
pub struct InviteForm {
    #[serde(default)]
    password: String,
}

async fn find_invite(app: &App, token: &str) -> WebResult<Option<workspaces::Invite>> {
    let (token, now) = (token.to_string(), app.clock.unix());
    Ok(app.store.read(move |conn| workspaces::find_invite(conn, &token, now)).await.map_err(Error::from)?)
}

fn invite_page(visitor: &Visitor, token: String, invite: &workspaces::Invite, error: Option<String>) -> InvitePage {
    InvitePage {
        ctx: Ctx::anonymous(&visitor.csrf),
        token,
        workspace: invite.workspace_name.clone(),
        email: invite.email.clone(),
        role: invite.role.to_string(),
        signed_in_as: visitor.user.as_ref().map(|u| u.email.clone()),
        error,
    }
}

pub async fn invite_form(State(app): State<App>, visitor: Visitor, Path(token): Path<String>) -> WebResult {
    let Some(invite) = find_invite(&app, &token).await? else { return dead_invite_link(&app, &visitor, token).await };
    Ok(render(StatusCode::OK, &invite_page(&visitor, token, &invite, None)))
}

/// Accepting an invite: a signed-in user whose email matches joins at once; otherwise the invited
/// email gets an account with the password chosen here (or, if the account exists, proves it).
pub async fn invite_submit(
    State(app): State<App>,
    visitor: Visitor,
    Path(token): Path<String>,
    CsrfForm(form): CsrfForm<InviteForm>,
) -> WebResult {
    let Some(invite) = find_invite(&app, &token).await? else { return dead_invite_link(&app, &visitor, token).await };
    match accept(&app, &visitor, &invite, form.password).await {
        Ok(session) => Ok(start_session(&app, &session, &format!("/w/{}", invite.workspace_id))),
        Err(Error::NotFound) => dead_invite_link(&app, &visitor, token).await,
        Err(e) if e.is_user_error() => {
            Ok(render(StatusCode::UNPROCESSABLE_ENTITY, &invite_page(&visitor, token, &invite, Some(e.to_string()))))
        }
        Err(e) => Err(e.into()),
    }
}

async fn accept(app: &App, visitor: &Visitor, invite: &workspaces::Invite, password: String) -> Result<String, Error> {
    let now = app.clock.unix();
    let email = invite.email.clone();
    let lookup = email.clone();
    let existing = app.store.read(move |conn| users::find_by_email(conn, &lookup)).await?;
    let new_hash = match &existing {
        Some((user, hash)) => {
            let signed_in = visitor.user.as_ref().is_some_and(|u| u.user_id == user.id);
            if !signed_in && !password::verify(hash.clone(), password).await {
                return Err(Error::invalid("password", "Enter the password of your existing account."));
            }
            None
        }
        None => {
            password::check_user_password(&password)?;
            Some(password::hash_user_password(password).await?)
        }
    };
    let invite = invite.clone();
    app.store
        .write(move |tx| {
            let user = match (existing, new_hash) {
                (Some((user, _)), _) => user,
                (None, Some(hash)) => users::insert(tx, &email, &hash, now)?,
                (None, None) => return Err(Error::Internal("no account and no password".into())),
            };
            workspaces::accept_invite(tx, &invite, user.id, &user.email, now)?;
            Ok(sessions::create(tx, user.id, now)?)
        })
        .await
}
