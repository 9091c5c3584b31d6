//! The appliance settings page, for any signed-in user: the TLS certificate that SMTP and IMAP
//! present, with what a mail client needs to pin it (names, validity, SHA-256 fingerprint).

use askama::Template;
use axum::extract::State;
use axum::http::StatusCode;

use crate::app::App;
use crate::clock::format_unix;
use crate::tls::{self, CertificateInfo};
use crate::web::session::{Ctx, Session};
use crate::web::{WebResult, render};

#[derive(Template)]
#[template(path = "settings/show.html")]
struct SettingsPage {
    ctx: Ctx,
    hostname: String,
    /// The certificate, or why it cannot be read.
    certificate: Result<CertificateInfo, String>,
    /// `[tls] cert` and `key` are set (otherwise the appliance made its own).
    configured: bool,
    renew_days: i64,
}

impl SettingsPage {
    fn when(&self, at: &i64) -> String {
        format_unix(*at)
    }
}

pub async fn show(State(app): State<App>, session: Session) -> WebResult {
    let mut ctx = session.ctx(&app).await?;
    ctx.section = "settings";
    let config = app.config.clone();
    let certificate = tokio::task::spawn_blocking(move || tls::current(&config).map_err(|e| e.to_string()))
        .await
        .unwrap_or_else(|e| Err(e.to_string()));
    let page = SettingsPage {
        ctx,
        hostname: app.config.hostname.clone(),
        certificate,
        configured: tls::is_configured(&app.config),
        renew_days: tls::RENEW_BEFORE / (24 * 3600),
    };
    Ok(render(StatusCode::OK, &page))
}
