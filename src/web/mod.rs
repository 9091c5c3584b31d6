//! The web edge: the router shared by `serve` and the tests, error pages (inside the app's
//! navigation for a signed-in visitor), the CSRF cookie layer,
//! and the embedded static assets. Handlers live in `ui/`, one file per area.

mod assets;
pub mod client;
pub mod listing;
pub mod session;
#[cfg(test)]
mod tests;
mod ui;

use std::net::SocketAddr;

use askama::Template;
use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{Html, IntoResponse, Response};
use axum::routing::get;

use crate::app::App;
use crate::error::Error;

/// Every route of the admin UI.
pub fn router(app: App) -> Router {
    let mut router = Router::new();
    if std::env::var("INBOXGROVE_TEST_CLOCK").is_ok_and(|v| v == "1") {
        tracing::warn!("INBOXGROVE_TEST_CLOCK=1: the clock can be moved through POST /_test/clock (tests only)");
        router = router
            .route("/_test/clock", axum::routing::post(advance_clock))
            .route("/_test/campaign-tick", axum::routing::get(campaign_tick))
            .route("/_test/warmup-tick", axum::routing::get(warmup_tick));
    }
    router
        .route("/healthz", get(healthz))
        .merge(assets::routes())
        .merge(ui::routes())
        .merge(crate::tracking::routes())
        .fallback(|| async { WebError(Error::NotFound) })
        .layer(axum::middleware::from_fn_with_state(app.clone(), error_layout))
        .layer(axum::middleware::from_fn_with_state(app.clone(), session::csrf_cookie_layer))
        .layer(axum::middleware::from_fn_with_state(app.clone(), crate::tracking::host_guard))
        .with_state(app)
}

/// Serves the UI on `listener` until `shutdown` resolves.
pub async fn serve(
    app: App,
    listener: tokio::net::TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    axum::serve(listener, router(app).into_make_service_with_connect_info::<SocketAddr>())
        .with_graceful_shutdown(shutdown)
        .await
}

async fn healthz(State(app): State<App>) -> Response {
    if app.store.is_usable().await {
        (StatusCode::OK, "ok\n").into_response()
    } else {
        (StatusCode::SERVICE_UNAVAILABLE, "store unusable\n").into_response()
    }
}

/// The injected clock's time when the campaign engine last finished a tick (tests wait for it).
async fn campaign_tick(State(app): State<App>) -> String {
    format!("{}\n", app.campaigns.last_tick())
}

/// The injected clock's time when the warmup engine last finished a tick (tests wait for it).
async fn warmup_tick(State(app): State<App>) -> String {
    format!("{}\n", app.warmup.last_tick())
}

/// Tests move time instead of sleeping: the body is the number of seconds to move forward.
/// Exists only when the appliance was started with `INBOXGROVE_TEST_CLOCK=1`, and only for
/// loopback clients. The new offset is stored, so commands run with `INBOXGROVE_TEST_CLOCK=1`
/// see the same time ([`crate::settings::TEST_CLOCK_OFFSET`]).
async fn advance_clock(
    State(app): State<App>,
    axum::extract::ConnectInfo(peer): axum::extract::ConnectInfo<SocketAddr>,
    body: String,
) -> Response {
    if !peer.ip().is_loopback() {
        return StatusCode::NOT_FOUND.into_response();
    }
    match body.trim().parse::<i64>() {
        Ok(seconds) if seconds >= 0 => {
            app.clock.advance(seconds);
            if let Err(e) =
                crate::settings::set(&app.store, crate::settings::TEST_CLOCK_OFFSET, &app.clock.offset().to_string())
                    .await
            {
                return (StatusCode::INTERNAL_SERVER_ERROR, format!("{e}\n")).into_response();
            }
            app.wakeup.notify_waiters();
            app.campaigns.wake();
            app.warmup.wake();
            (StatusCode::OK, format!("{}\n", app.clock.unix())).into_response()
        }
        _ => (StatusCode::BAD_REQUEST, "give a number of seconds\n").into_response(),
    }
}

/// Renders a template with a status code.
pub fn render(status: StatusCode, template: &impl Template) -> Response {
    match template.render() {
        Ok(html) => (status, Html(html)).into_response(),
        Err(e) => {
            tracing::error!(error = %e, "template failed to render");
            (StatusCode::INTERNAL_SERVER_ERROR, "Internal error: the page could not be drawn.").into_response()
        }
    }
}

#[derive(Template)]
#[template(path = "error.html")]
struct ErrorPage {
    ctx: session::Ctx,
    title: &'static str,
    message: String,
}

/// What an error page says, kept on its response so [`error_layout`] can render it again inside
/// the signed-in user's navigation.
#[derive(Clone)]
struct ErrorShown {
    title: &'static str,
    message: String,
}

/// An error page with the plain layout (the header without navigation); [`error_layout`] gives
/// it the workspace navigation when the visitor is signed in.
pub fn error_page(status: StatusCode, title: &'static str, message: String) -> Response {
    let shown = ErrorShown { title, message: message.clone() };
    let mut response = render(status, &ErrorPage { ctx: session::Ctx::anonymous(""), title, message });
    response.extensions_mut().insert(shown);
    response
}

/// Re-renders error pages for a signed-in visitor with the app's layout: their workspaces, and
/// the workspace's sections when the URL is inside one they belong to.
async fn error_layout(
    State(app): State<App>,
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    let csrf = request.extensions().get::<session::CsrfToken>().map(|t| t.0.clone()).unwrap_or_default();
    let session_token = session::cookie(request.headers(), session::SESSION_COOKIE);
    let path = request.uri().path().to_string();
    let response = next.run(request).await;
    let (Some(shown), Some(token)) = (response.extensions().get::<ErrorShown>().cloned(), session_token) else {
        return response;
    };
    let Some(ctx) = session::signed_in_ctx(&app, token, csrf, &path).await else { return response };
    let (mut parts, _) = response.into_parts();
    let page = render(parts.status, &ErrorPage { ctx, title: shown.title, message: shown.message });
    parts.headers.remove(axum::http::header::CONTENT_LENGTH);
    Response::from_parts(parts, page.into_body())
}

/// An error leaving a handler: rendered as an error page with the right status.
#[derive(Debug)]
pub struct WebError(pub Error);

impl<E: Into<Error>> From<E> for WebError {
    fn from(e: E) -> Self {
        WebError(e.into())
    }
}

pub type WebResult<T = Response> = Result<T, WebError>;

impl IntoResponse for WebError {
    fn into_response(self) -> Response {
        let (status, title, message) = match &self.0 {
            Error::NotFound => (StatusCode::NOT_FOUND, "Not found", "There is nothing here.".to_string()),
            Error::Forbidden => (StatusCode::FORBIDDEN, "Not allowed", self.0.to_string()),
            Error::Invalid { .. } => (StatusCode::UNPROCESSABLE_ENTITY, "Please check", self.0.to_string()),
            Error::Conflict(m) => (StatusCode::CONFLICT, "Conflict", m.clone()),
            Error::Throttled(m) => (StatusCode::TOO_MANY_REQUESTS, "Too many attempts", m.clone()),
            other => {
                tracing::error!(error = %other, "request failed");
                (StatusCode::INTERNAL_SERVER_ERROR, "Something went wrong", "The error was logged.".to_string())
            }
        };
        error_page(status, title, message)
    }
}
