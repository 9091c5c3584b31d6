//! Server-rendered pages, one file per area.

mod account;
mod aliases;
mod audit;
mod campaigns;
mod domains;
mod leads;
mod mailboxes;
mod queue;
mod settings;
mod unsubscribe;
mod workspaces;

use axum::Router;
use axum::routing::{get, post};

use crate::app::App;

pub fn routes() -> Router<App> {
    Router::new()
        .route("/", get(workspaces::home))
        .route("/setup/{token}", get(account::setup_form).post(account::setup_submit))
        .route("/login", get(account::login_form).post(account::login_submit))
        .route("/logout", post(account::logout))
        .route("/invite/{token}", get(account::invite_form).post(account::invite_submit))
        .route("/settings", get(settings::show))
        .route("/workspaces", get(workspaces::list).post(workspaces::create))
        .route("/w/{ws}", get(workspaces::enter))
        .route("/w/{ws}/members", get(workspaces::members).post(workspaces::invite))
        .route("/w/{ws}/members/role", post(workspaces::change_role))
        .route("/w/{ws}/members/remove", post(workspaces::remove))
        .route("/w/{ws}/invites/{id}/revoke", post(workspaces::revoke_invite))
        .route("/w/{ws}/settings", get(settings::enter))
        .route("/w/{ws}/settings/workspace", get(settings::workspace).post(settings::save_workspace))
        .route("/w/{ws}/settings/appliance", get(settings::appliance))
        .route("/w/{ws}/audit", get(audit::list))
        .route("/w/{ws}/domains", get(domains::list).post(domains::add))
        .route("/w/{ws}/domains/{id}", get(domains::show))
        .route("/w/{ws}/domains/{id}/zone", get(domains::zone))
        .route("/w/{ws}/domains/{id}/source-ip", post(domains::set_source_ip))
        .route("/w/{ws}/domains/{id}/role-mailbox", post(domains::set_role_mailbox))
        .route("/w/{ws}/domains/{id}/tracking-host", post(domains::set_tracking_host))
        .route("/w/{ws}/domains/{id}/mailboxes", post(mailboxes::create))
        .route("/w/{ws}/domains/{id}/aliases", get(aliases::list).post(aliases::add))
        .route("/w/{ws}/domains/{id}/aliases/{alias}/remove", post(aliases::remove))
        .route("/w/{ws}/domains/{id}/catch-all", post(aliases::catch_all))
        .route("/w/{ws}/mailboxes", get(mailboxes::list))
        .route("/w/{ws}/mailboxes/export", get(mailboxes::export).post(mailboxes::export_selected))
        .route("/w/{ws}/mailboxes/reset-passwords", post(mailboxes::reset_passwords))
        .route("/w/{ws}/mailboxes/{id}", get(mailboxes::edit_form).post(mailboxes::edit_submit))
        .route("/w/{ws}/credentials/{batch}", post(mailboxes::download_credentials))
        .route("/w/{ws}/queue", get(queue::list))
        .route("/w/{ws}/queue/settings", post(queue::settings))
        .route("/w/{ws}/queue/{id}", get(queue::show))
        .route("/w/{ws}/queue/{id}/retry", post(queue::retry))
        .route("/w/{ws}/queue/{id}/cancel", post(queue::cancel))
        .route("/unsubscribe/{token}", get(unsubscribe::confirm).post(unsubscribe::submit))
        .merge(leads::routes())
        .merge(campaigns::routes())
}

/// A CSV file download.
pub fn csv_download(file_name: &str, body: Vec<u8>) -> axum::response::Response {
    use axum::http::header;
    use axum::response::IntoResponse;
    (
        [
            (header::CONTENT_TYPE, "text/csv; charset=utf-8".to_string()),
            (header::CONTENT_DISPOSITION, format!("attachment; filename=\"{file_name}\"")),
            (header::CACHE_CONTROL, "no-store".to_string()),
        ],
        body,
    )
        .into_response()
}
