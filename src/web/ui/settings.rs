//! The settings pages, one sub-navigation for them all (Workspace, Members, Appliance):
//!
//! - the workspace's settings (name, time zone, default daily limit of new mailboxes,
//!   List-Unsubscribe, postal address): every member sees them, owners and admins change them.
//!   Each field is checked on its own so every mistake is shown beside its field at once, with
//!   what the user typed; a save redirects back with a notice (`?saved=1`), so reloading the
//!   page does not post the form again.
//! - the appliance's, for any signed-in user: the TLS certificate that SMTP and IMAP present,
//!   with what a mail client needs to pin it (names, validity, SHA-256 fingerprint). It is shown
//!   inside a workspace (`/w/{ws}/settings/appliance`) or outside any (`/settings`).

use askama::Template;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect};
use axum_extra::extract::Query;
use serde::Deserialize;

use crate::app::App;
use crate::clock::format_unix;
use crate::error::Error;
use crate::tls::{self, CertificateInfo};
use crate::web::session::{CsrfForm, Ctx, Session};
use crate::web::{WebResult, render};
use crate::workspaces::{self, Changes, Role, Summary};

#[derive(Template)]
#[template(path = "settings/show.html")]
struct AppliancePage {
    ctx: Ctx,
    hostname: String,
    /// The certificate, or why it cannot be read.
    certificate: Result<CertificateInfo, String>,
    /// `[tls] cert` and `key` are set (otherwise the appliance made its own).
    configured: bool,
    renew_days: i64,
}

impl AppliancePage {
    fn when(&self, at: &i64) -> String {
        format_unix(*at)
    }
}

async fn appliance_page(app: &App, ctx: Ctx) -> WebResult {
    let config = app.config.clone();
    let certificate = tokio::task::spawn_blocking(move || tls::current(&config).map_err(|e| e.to_string()))
        .await
        .unwrap_or_else(|e| Err(e.to_string()));
    let page = AppliancePage {
        ctx,
        hostname: app.config.hostname.clone(),
        certificate,
        configured: tls::is_configured(&app.config),
        renew_days: tls::RENEW_BEFORE / (24 * 3600),
    };
    Ok(render(StatusCode::OK, &page))
}

/// The appliance settings outside any workspace.
pub async fn show(State(app): State<App>, session: Session) -> WebResult {
    let mut ctx = session.ctx(&app).await?;
    ctx.section = "settings";
    appliance_page(&app, ctx).await
}

/// The appliance settings inside a workspace's navigation.
pub async fn appliance(State(app): State<App>, session: Session, Path(ws): Path<i64>) -> WebResult {
    let (_, ctx) = session.in_workspace(&app, ws, "settings").await?;
    appliance_page(&app, ctx).await
}

/// `/w/{ws}/settings`: the first settings page.
pub async fn enter(Path(ws): Path<i64>) -> axum::response::Response {
    Redirect::to(&format!("/w/{ws}/settings/workspace")).into_response()
}

/// A mistake shown beside its form field (`field` empty: above the form).
struct FieldError {
    field: &'static str,
    message: String,
}

impl From<Error> for FieldError {
    fn from(e: Error) -> Self {
        let field = match &e {
            Error::Invalid { field: Some(field), .. } => field,
            _ => "",
        };
        FieldError { field, message: e.to_string() }
    }
}

#[derive(Template)]
#[template(path = "workspaces/settings.html")]
struct WorkspaceSettingsPage {
    ctx: Ctx,
    /// The values shown: the stored ones, or what the user typed.
    form: SettingsForm,
    errors: Vec<FieldError>,
    notice: Option<&'static str>,
    /// IANA zone names for the time zone field's suggestions (only on the form).
    zones: Vec<&'static str>,
    max_postal_address: usize,
    max_daily_limit: u32,
}

impl WorkspaceSettingsPage {
    /// The mistake to show beside `field`, if any.
    fn error_for(&self, field: &str) -> Option<&str> {
        self.errors.iter().find(|e| e.field == field).map(|e| e.message.as_str())
    }

    /// Whether some field has a mistake to show beside it.
    fn has_field_errors(&self) -> bool {
        self.errors.iter().any(|e| !e.field.is_empty())
    }

    /// The `aria-describedby` of a field: its help and, when it has one, its error.
    fn described_by(&self, field: &str, id: &str) -> String {
        match self.error_for(field) {
            Some(_) => format!("{id}-help {id}-error"),
            None => format!("{id}-help"),
        }
    }
}

#[derive(Deserialize, Default)]
#[serde(default)]
pub struct SettingsForm {
    name: String,
    time_zone: String,
    default_daily_limit: String,
    list_unsubscribe: Option<String>,
    postal_address: String,
}

impl SettingsForm {
    fn from_summary(summary: Summary) -> SettingsForm {
        SettingsForm {
            name: summary.name,
            time_zone: summary.time_zone,
            default_daily_limit: summary.default_daily_limit.to_string(),
            list_unsubscribe: summary.list_unsubscribe.then(|| "on".to_string()),
            postal_address: summary.postal_address,
        }
    }

    fn list_unsubscribe(&self) -> bool {
        self.list_unsubscribe.is_some()
    }

    /// The changes the form asks for, or every field's mistake.
    fn changes(&self) -> Result<Changes, Vec<FieldError>> {
        let mut errors = Vec::new();
        let name = kept(workspaces::check_name(&self.name), &mut errors);
        let time_zone = kept(workspaces::check_time_zone(&self.time_zone), &mut errors);
        let default_daily_limit = kept(workspaces::parse_default_daily_limit(&self.default_daily_limit), &mut errors);
        let postal_address = kept(workspaces::check_postal_address(&self.postal_address), &mut errors);
        if !errors.is_empty() {
            return Err(errors);
        }
        Ok(Changes {
            name,
            time_zone,
            default_daily_limit,
            list_unsubscribe: Some(self.list_unsubscribe()),
            postal_address,
        })
    }
}

/// A checked value, or `None` with its mistake added to `errors`.
fn kept<T>(result: Result<T, Error>, errors: &mut Vec<FieldError>) -> Option<T> {
    result.map_err(|e| errors.push(e.into())).ok()
}

fn settings_page(ctx: Ctx, form: SettingsForm, errors: Vec<FieldError>) -> WorkspaceSettingsPage {
    let zones =
        if ctx.can_administer() { chrono_tz::TZ_VARIANTS.iter().map(|zone| zone.name()).collect() } else { Vec::new() };
    WorkspaceSettingsPage {
        ctx,
        form,
        errors,
        notice: None,
        zones,
        max_postal_address: workspaces::MAX_POSTAL_ADDRESS,
        max_daily_limit: crate::mailbox::MAX_DAILY_LIMIT,
    }
}

#[derive(Deserialize, Default)]
#[serde(default)]
pub struct SavedQuery {
    saved: Option<String>,
}

pub async fn workspace(
    State(app): State<App>,
    session: Session,
    Path(ws): Path<i64>,
    Query(query): Query<SavedQuery>,
) -> WebResult {
    let (access, ctx) = session.in_workspace(&app, ws, "settings").await?;
    let id = access.workspace.id;
    let summary = app.store.read(move |conn| workspaces::summary(conn, id)).await?;
    let mut page = settings_page(ctx, SettingsForm::from_summary(summary), Vec::new());
    page.notice = query.saved.is_some().then_some("Workspace settings saved.");
    Ok(render(StatusCode::OK, &page))
}

/// Saves the workspace's settings (owners and admins); mistakes re-render the form with 422.
pub async fn save_workspace(
    State(app): State<App>,
    session: Session,
    Path(ws): Path<i64>,
    CsrfForm(form): CsrfForm<SettingsForm>,
) -> WebResult {
    let (access, ctx) = session.in_workspace(&app, ws, "settings").await?;
    access.workspace.role.require(Role::Admin)?;
    let changes = match form.changes() {
        Ok(changes) => changes,
        Err(errors) => return Ok(render(StatusCode::UNPROCESSABLE_ENTITY, &settings_page(ctx, form, errors))),
    };
    let now = app.clock.unix();
    match app.store.write(move |tx| workspaces::update(tx, &access, changes, now)).await {
        Ok(_) => Ok(Redirect::to(&format!("/w/{ws}/settings/workspace?saved=1")).into_response()),
        Err(e) if e.belongs_on_form() => {
            Ok(render(StatusCode::UNPROCESSABLE_ENTITY, &settings_page(ctx, form, vec![e.into()])))
        }
        Err(e) => Err(e.into()),
    }
}
