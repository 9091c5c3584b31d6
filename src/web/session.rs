//! Browser sessions and CSRF protection.
//!
//! - `ig_session`: the session token (HttpOnly, SameSite=Lax, Secure when served over TLS).
//! - `ig_csrf`: a random token set on the first response to any browser; every POST form carries
//!   it in a hidden `csrf` field and [`CsrfForm`] refuses a form whose field does not match the
//!   cookie (a page on another site can neither read the cookie nor set the field).

use axum::body::Bytes;
use axum::extract::{FromRequest, FromRequestParts, Request, State};
use axum::http::header::{COOKIE, SET_COOKIE};
use axum::http::request::Parts;
use axum::http::{HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Redirect, Response};
use serde::Deserialize;
use serde::de::DeserializeOwned;

use crate::app::App;
use crate::auth::sessions::{self, SessionUser};
use crate::crypto::{random_token, same_secret};
use crate::error::Error;
use crate::web::WebError;
use crate::workspaces::{self, Access, Workspace};

pub const SESSION_COOKIE: &str = "ig_session";
const CSRF_COOKIE: &str = "ig_csrf";

/// The CSRF token of this browser, available to every handler.
#[derive(Clone)]
pub struct CsrfToken(pub String);

/// Ensures every browser has a CSRF cookie, and makes its value available to handlers.
pub async fn csrf_cookie_layer(State(app): State<App>, mut request: Request, next: Next) -> Response {
    let existing = cookie(request.headers(), CSRF_COOKIE).filter(|t| t.len() == 43);
    let token = existing.clone().unwrap_or_else(random_token);
    request.extensions_mut().insert(CsrfToken(token.clone()));
    let mut response = next.run(request).await;
    if existing.is_none() {
        let value = cookie_header(&app, CSRF_COOKIE, &token, None);
        response.headers_mut().append(SET_COOKIE, value);
    }
    response
}

/// Reads one cookie from the request headers.
pub fn cookie(headers: &axum::http::HeaderMap, name: &str) -> Option<String> {
    headers
        .get_all(COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v.to_string())
}

/// A `Set-Cookie` value with the appliance's flags; `max_age` 0 deletes the cookie.
pub fn cookie_header(app: &App, name: &str, value: &str, max_age: Option<i64>) -> HeaderValue {
    let secure = if app.config.served_over_tls() { "; Secure" } else { "" };
    let age = max_age.map(|s| format!("; Max-Age={s}")).unwrap_or_default();
    HeaderValue::from_str(&format!("{name}={value}; Path=/; HttpOnly; SameSite=Lax{secure}{age}"))
        .expect("cookie values are URL-safe base64")
}

/// Sets the session cookie and redirects.
pub fn start_session(app: &App, token: &str, to: &str) -> Response {
    let cookie = cookie_header(app, SESSION_COOKIE, token, Some(sessions::SESSION_SECONDS));
    ([(SET_COOKIE, cookie)], Redirect::to(to)).into_response()
}

/// Any visitor: the CSRF token, and the user when signed in.
pub struct Visitor {
    pub csrf: String,
    pub user: Option<SessionUser>,
}

impl FromRequestParts<App> for Visitor {
    type Rejection = WebError;

    async fn from_request_parts(parts: &mut Parts, app: &App) -> Result<Self, Self::Rejection> {
        let csrf = parts.extensions.get::<CsrfToken>().map(|t| t.0.clone()).unwrap_or_default();
        let user = match cookie(&parts.headers, SESSION_COOKIE) {
            Some(token) => {
                let now = app.clock.unix();
                app.store.read(move |conn| sessions::lookup(conn, &token, now)).await.map_err(Error::from)?
            }
            None => None,
        };
        Ok(Visitor { csrf, user })
    }
}

/// A signed-in user; anyone else is sent to the login page.
pub struct Session {
    pub csrf: String,
    pub user: SessionUser,
}

/// `/w/{ws}/credentials/{batch}`: a download from the credentials page.
fn is_credentials_download(path: &str) -> bool {
    let parts: Vec<&str> = path.trim_start_matches('/').split('/').collect();
    matches!(parts.as_slice(), ["w", _, "credentials", _])
}

impl FromRequestParts<App> for Session {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, app: &App) -> Result<Self, Self::Rejection> {
        let visitor = Visitor::from_request_parts(parts, app).await.map_err(IntoResponse::into_response)?;
        let Some(user) = visitor.user else { return Err(Redirect::to("/login").into_response()) };
        if !is_credentials_download(parts.uri.path()) {
            // Any other page means the user has left the credentials page.
            crate::mailbox::create::discard_batches_of(app, user.user_id)
                .await
                .map_err(|e| WebError::from(e).into_response())?;
        }
        Ok(Session { csrf: visitor.csrf, user })
    }
}

/// What every page's layout needs: who is signed in, their workspaces, the current one.
pub struct Ctx {
    pub csrf: String,
    pub user: Option<String>,
    pub workspaces: Vec<Workspace>,
    pub current: Option<Workspace>,
    pub section: &'static str,
}

impl Ctx {
    /// The context of a page seen by a visitor who is not signed in.
    pub fn anonymous(csrf: &str) -> Ctx {
        Ctx { csrf: csrf.to_string(), user: None, workspaces: Vec::new(), current: None, section: "" }
    }

    pub fn css_url(&self) -> String {
        super::assets::url("app.css")
    }

    pub fn js_url(&self) -> String {
        super::assets::url("app.js")
    }

    /// The current workspace's id, for links.
    pub fn ws(&self) -> i64 {
        self.current.as_ref().map_or(0, |w| w.id)
    }

    pub fn can_edit(&self) -> bool {
        self.current.as_ref().is_some_and(|w| w.role.can_edit())
    }

    pub fn can_administer(&self) -> bool {
        self.current.as_ref().is_some_and(|w| w.role.can_administer())
    }
}

impl Session {
    /// The page context outside any workspace.
    pub async fn ctx(&self, app: &App) -> Result<Ctx, WebError> {
        let user = self.user.user_id;
        let workspaces =
            app.store.read(move |conn| workspaces::list_for_user(conn, user)).await.map_err(Error::from)?;
        Ok(Ctx { csrf: self.csrf.clone(), user: Some(self.user.email.clone()), workspaces, current: None, section: "" })
    }

    /// The user's access to workspace `ws` and the page context inside it; 404 for non-members.
    pub async fn in_workspace(&self, app: &App, ws: i64, section: &'static str) -> Result<(Access, Ctx), WebError> {
        let (user, email) = (self.user.user_id, self.user.email.clone());
        let (access, workspaces) = app
            .store
            .read(move |conn| {
                let access = workspaces::access(conn, user, &email, ws)?;
                Ok::<_, Error>((access, workspaces::list_for_user(conn, user)?))
            })
            .await?;
        let ctx = Ctx {
            csrf: self.csrf.clone(),
            user: Some(self.user.email.clone()),
            workspaces,
            current: Some(access.workspace.clone()),
            section,
        };
        Ok((access, ctx))
    }
}

#[derive(Deserialize)]
struct CsrfField {
    #[serde(default)]
    csrf: String,
}

/// A url-encoded form whose `csrf` field matched the browser's CSRF cookie.
pub struct CsrfForm<T>(pub T);

impl<T: DeserializeOwned> FromRequest<App> for CsrfForm<T> {
    type Rejection = Response;

    async fn from_request(request: Request, app: &App) -> Result<Self, Self::Rejection> {
        let expected = request.extensions().get::<CsrfToken>().map(|t| t.0.clone()).unwrap_or_default();
        let had_cookie = cookie(request.headers(), CSRF_COOKIE).is_some();
        let body = Bytes::from_request(request, app).await.map_err(IntoResponse::into_response)?;
        let field: CsrfField = serde_html_form::from_bytes(&body).unwrap_or(CsrfField { csrf: String::new() });
        if !had_cookie || field.csrf.is_empty() || !same_secret(&field.csrf, &expected) {
            return Err(forbidden_form());
        }
        serde_html_form::from_bytes(&body).map(CsrfForm).map_err(|e| {
            WebError(Error::Invalid { field: None, message: format!("The form could not be read: {e}") })
                .into_response()
        })
    }
}

fn forbidden_form() -> Response {
    super::error_page(
        StatusCode::FORBIDDEN,
        "Form expired",
        "This form's security token did not match. Go back, reload the page and try again.".into(),
    )
}

/// The workspace and section a path such as `/w/3/domains/7` is in.
fn workspace_section(path: &str) -> Option<(i64, &'static str)> {
    let mut parts = path.trim_start_matches('/').split('/');
    if parts.next() != Some("w") {
        return None;
    }
    let ws = parts.next()?.parse().ok()?;
    let section = match parts.next() {
        Some("campaigns") => "campaigns",
        Some("leads") => "leads",
        Some("domains") => "domains",
        Some("mailboxes" | "credentials") => "mailboxes",
        Some("queue") => "queue",
        Some("members" | "invites") => "members",
        Some("audit") => "audit",
        Some("settings") => "settings",
        _ => "",
    };
    Some((ws, section))
}

/// The page context of the user signed in with session `token` at `path` (the workspace only
/// when they belong to it); `None` for no valid session.
pub async fn signed_in_ctx(app: &App, token: String, csrf: String, path: &str) -> Option<Ctx> {
    let now = app.clock.unix();
    let place = workspace_section(path);
    let found = app
        .store
        .read(move |conn| {
            let Some(user) = sessions::lookup(conn, &token, now)? else { return Ok::<_, Error>(None) };
            Ok(Some((user.email.clone(), workspaces::list_for_user(conn, user.user_id)?)))
        })
        .await;
    let (email, workspaces) = match found {
        Ok(found) => found?,
        Err(e) => {
            tracing::warn!(error = %e, "no navigation on an error page");
            return None;
        }
    };
    let current = place.and_then(|(ws, _)| workspaces.iter().find(|w| w.id == ws).cloned());
    let section = if current.is_some() { place.map_or("", |(_, section)| section) } else { "" };
    Some(Ctx { csrf, user: Some(email), workspaces, current, section })
}
