//! What recipients reach over HTTP: the open pixel, the click redirect and the List-Unsubscribe
//! tokens (RFC 8058, [`unsubscribe`]).
//!
//! Open and click tracking are per campaign (`track_opens`, `track_clicks`, both off by
//! default). A tracked message is composed ([`crate::campaign::compose`]) with a [`Tracking`]:
//! - clicks: every http(s) URL of the text part and every link of the HTML part becomes
//!   `{base}/t/c/{token}` ([`rewrite`]); the original links are stored with the send
//!   ([`click::record_links`], in the transaction that records it), and the redirect answers
//!   only those ([`click`]); the unsubscribe link is left as it is;
//! - opens: an `<img>` of `{base}/t/o/{token}` at the end of the HTML part ([`open`]). A
//!   message without an HTML part gets no pixel, so its opens are not seen.
//!
//! `{base}` is the sending domain's tracking host when it has one ([`host`]), else
//! `http.base_url`. Tokens ([`token`]) are signed under a key derived from the master key and
//! name the workspace, our Message-ID and, for clicks, the link's position. Each request records
//! one `opened` or `clicked` event ([`hits`]), flagged `machine` when a rule of [`machine`] says
//! an image proxy, a link scanner or a tool made it (HEAD, a known user agent, no user agent, or
//! before or within seconds of delivery); analytics count humans with `machine = 0`.
//!
//! A request whose Host is a tracking host is served only the tracking paths, the unsubscribe
//! pages and static assets; anything else there is a 404 ([`host_guard`]), so the admin UI is
//! never reachable under a customer's tracking name.

pub mod click;
pub mod hits;
pub mod host;
pub mod machine;
pub mod open;
pub mod rewrite;
#[cfg(test)]
mod tests;
pub mod token;
pub mod unsubscribe;

use std::sync::Arc;

use axum::Router;
use axum::extract::{Request, State};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::get;

use crate::app::App;
use crate::campaign::campaigns::Campaign;
use crate::crypto::MasterKey;
use crate::error::{Error, Result};
use crate::tracking::rewrite::Rewriter;
use crate::tracking::token::Target;
use crate::web::WebError;

/// The tracking routes (GET answers HEAD too).
pub fn routes() -> Router<App> {
    Router::new().route("/t/o/{token}", get(open::pixel)).route("/t/c/{token}", get(click::redirect))
}

/// The paths a tracking host serves.
const TRACKING_HOST_PATHS: [&str; 3] = ["/t/", "/unsubscribe/", "/static/"];

/// Answers 404 for anything but [`TRACKING_HOST_PATHS`] on a tracking host (see the module
/// doc). The base URL's host, IP addresses and single-label names are never tracking hosts
/// ([`host::parse`]), so requests to them pass without a lookup.
pub async fn host_guard(State(app): State<App>, request: Request, next: Next) -> Response {
    let path = request.uri().path();
    let Some(name) = hits::request_host(request.headers(), request.uri()) else { return next.run(request).await };
    let never = name.parse::<std::net::IpAddr>().is_ok()
        || !name.contains('.')
        || host::url_host(&app.config.http.base_url).is_some_and(|base| base == name);
    if never || TRACKING_HOST_PATHS.iter().any(|prefix| path.starts_with(prefix)) {
        return next.run(request).await;
    }
    match app.store.read(move |conn| host::workspace_of(conn, &name)).await {
        Ok(None) => next.run(request).await,
        Ok(Some(_)) => WebError(Error::NotFound).into_response(),
        Err(e) => WebError(e.into()).into_response(),
    }
}

/// How one message is tracked, and where its tracking URLs point.
pub struct Tracking {
    keys: Arc<MasterKey>,
    workspace_id: i64,
    /// The base of tracking URLs (no trailing slash).
    base: String,
    opens: bool,
    clicks: bool,
    /// URL prefixes (lowercase) never rewritten: our unsubscribe and tracking URLs.
    keep: Vec<String>,
}

impl Tracking {
    /// Tracking for a workspace's message with URLs under `base` (see [`host`]); `base_url` is
    /// the appliance's, whose unsubscribe links are never rewritten. `None` when neither opens
    /// nor clicks are tracked, or there is no base to point at.
    pub fn new(
        keys: Arc<MasterKey>,
        workspace_id: i64,
        base: &str,
        base_url: &str,
        opens: bool,
        clicks: bool,
    ) -> Option<Tracking> {
        let base = base.trim_end_matches('/').to_string();
        if !(opens || clicks) || base.is_empty() {
            return None;
        }
        let keep = [&base, base_url.trim_end_matches('/')]
            .into_iter()
            .filter(|prefix| !prefix.is_empty())
            .flat_map(|prefix| [format!("{prefix}/unsubscribe/"), format!("{prefix}/t/")])
            .map(|prefix| prefix.to_ascii_lowercase())
            .collect();
        Some(Tracking { keys, workspace_id, base, opens, clicks, keep })
    }

    /// The tracking of a campaign's message sent from `mailbox`: `None` when the campaign tracks
    /// neither opens nor clicks (then nothing is read).
    pub async fn for_send(app: &App, campaign: &Campaign, mailbox: i64) -> Result<Option<Tracking>> {
        let (opens, clicks) = (campaign.settings.track_opens, campaign.settings.track_clicks);
        if !(opens || clicks) {
            return Ok(None);
        }
        let tracking_host = app.store.read(move |conn| host::of_mailbox(conn, mailbox)).await?;
        let base_url = &app.config.http.base_url;
        let base = match tracking_host {
            Some(name) => host::with_host(base_url, &name),
            None => base_url.clone(),
        };
        Ok(Tracking::new(app.keys.clone(), campaign.workspace_id, &base, base_url, opens, clicks))
    }

    pub fn opens(&self) -> bool {
        self.opens
    }

    pub fn clicks(&self) -> bool {
        self.clicks
    }

    /// The open pixel's URL for the message.
    pub fn pixel_url(&self, message_id: &str) -> String {
        let target = Target::Open { workspace_id: self.workspace_id, message_id: message_id.to_string() };
        format!("{}/t/o/{}", self.base, token::sign(&self.keys, &target))
    }

    /// The click URL of the message's link at `position`.
    pub fn click_url(&self, message_id: &str, position: u32) -> String {
        let target = Target::Click { workspace_id: self.workspace_id, message_id: message_id.to_string(), position };
        format!("{}/t/c/{}", self.base, token::sign(&self.keys, &target))
    }

    /// A rewriter of the message's parts ([`rewrite`]).
    pub fn rewriter<'a>(&'a self, message_id: &'a str) -> Rewriter<'a, impl Fn(u32) -> String + 'a> {
        Rewriter::new(move |position| self.click_url(message_id, position), &self.keep)
    }

    /// The HTML with the open pixel at its end (before `</body>` when it has one).
    pub fn with_pixel(&self, message_id: &str, html: &str) -> String {
        let src = self.pixel_url(message_id).replace('&', "&amp;").replace('"', "&quot;");
        let img = format!(
            "<img src=\"{src}\" width=\"1\" height=\"1\" alt=\"\" style=\"display:block;width:1px;height:1px;border:0\">"
        );
        match html.to_ascii_lowercase().rfind("</body") {
            Some(at) => format!("{}{img}{}", &html[..at], &html[at..]),
            None => format!("{html}{img}"),
        }
    }
}
