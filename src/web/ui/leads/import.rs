//! The CSV import pages: the upload form with the recent imports, the mapping step (a preview of
//! the first rows and a field for each column, guessed from the headers), and the import's page:
//! a progress bar while it runs (read from `lead_imports`, so a reload finds it; `app.js` polls
//! [`progress`] and reloads when it ends, and without JS a Refresh link does), then the report.
//!
//! The upload is a multipart form whose `csrf` field must come before the file: the file is
//! streamed to `{data_dir}/imports/` (see `campaign::import`) only once the token matched.

use std::path::PathBuf;

use askama::Template;
use axum::Json;
use axum::extract::{Multipart, Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use axum_extra::extract::Query;
use serde::{Deserialize, Serialize};
use tokio::io::AsyncWriteExt;

use crate::app::App;
use crate::campaign::csv_file::{self, Column, Preview};
use crate::campaign::import::{self, ImportRecord, ImportStatus, Options, Skip};
use crate::campaign::leads::{self, LeadList};
use crate::campaign::validate::SkipReason;
use crate::clock::format_unix;
use crate::crypto::same_secret;
use crate::error::Error;
use crate::web::listing::{self, Listing, thousands};
use crate::web::session::{CsrfForm, Ctx, Session};
use crate::web::{WebResult, error_page, render};
use crate::workspaces::{Access, Role};

/// The largest file the upload takes.
pub const MAX_UPLOAD_BYTES: usize = 50 * 1024 * 1024;
/// The largest upload request: the file and the form's other fields.
pub const MAX_UPLOAD_REQUEST: usize = MAX_UPLOAD_BYTES + 64 * 1024;
/// Rows shown in the mapping step's preview.
const PREVIEW_ROWS: usize = 5;
/// How much of the file the preview reads.
const PREVIEW_BYTES: u64 = 256 * 1024;
/// Imports listed on the upload page.
const RECENT_IMPORTS: i64 = 10;

/// The choices for a column, as (form value, label); `custom` keeps the column's header.
const CHOICES: [(&str, &str); 9] = [
    ("email", "Email"),
    ("first_name", "First name"),
    ("last_name", "Last name"),
    ("company", "Company"),
    ("title", "Title"),
    ("website", "Website"),
    ("time_zone", "Time zone"),
    ("custom", "Custom field"),
    ("ignore", "Ignore"),
];

fn import_tone(status: ImportStatus) -> &'static str {
    match status {
        ImportStatus::Running => "amber",
        ImportStatus::Done => "green",
        ImportStatus::Failed => "red",
    }
}

#[derive(Template)]
#[template(path = "leads/import.html")]
struct UploadPage {
    ctx: Ctx,
    lists: Vec<LeadList>,
    list: String,
    mx_check: bool,
    error: Option<String>,
    /// The field the error is about: `list`, or the file for anything else.
    error_field: &'static str,
    imports: Vec<ImportRecord>,
    max_mb: usize,
}

impl UploadPage {
    fn when(&self, at: &i64) -> String {
        format_unix(*at)
    }

    fn tone(&self, status: &ImportStatus) -> &'static str {
        import_tone(*status)
    }

    fn figure(&self, n: &i64) -> String {
        thousands(*n)
    }

    /// The error to show beside `field` (`file` or `list`).
    fn error_for(&self, field: &str) -> Option<&str> {
        let shown_at = if self.error_field == "list" { "list" } else { "file" };
        self.error.as_deref().filter(|_| shown_at == field)
    }
}

async fn upload_page(app: &App, ctx: Ctx, ws: i64, list: String, mx_check: bool) -> WebResult<UploadPage> {
    let (lists, imports) = app
        .store
        .read(move |conn| Ok::<_, Error>((leads::lists(conn, ws)?, import::recent(conn, ws, RECENT_IMPORTS)?)))
        .await?;
    let max_mb = MAX_UPLOAD_BYTES / (1024 * 1024);
    Ok(UploadPage { ctx, lists, list, mx_check, error: None, error_field: "", imports, max_mb })
}

/// The upload form re-rendered with a mistake (422).
async fn upload_refused(app: &App, ctx: Ctx, ws: i64, list: String, mx_check: bool, error: &Error) -> WebResult {
    let mut page = upload_page(app, ctx, ws, list, mx_check).await?;
    page.error_field = match error {
        Error::Invalid { field: Some(field), .. } => field,
        _ => "",
    };
    page.error = Some(match page.error_field {
        "list" => format!("{error} Choose the file again too."),
        _ => error.to_string(),
    });
    Ok(render(StatusCode::UNPROCESSABLE_ENTITY, &page))
}

#[derive(Deserialize, Default)]
#[serde(default)]
pub struct FormQuery {
    /// A list to import into, filled in.
    list: String,
}

pub async fn form(
    State(app): State<App>,
    session: Session,
    Path(ws): Path<i64>,
    Query(query): Query<FormQuery>,
) -> WebResult {
    let (_, ctx) = session.in_workspace(&app, ws, "leads").await?;
    Ok(render(StatusCode::OK, &upload_page(&app, ctx, ws, query.list, true).await?))
}

/// What the upload form sent.
struct Received {
    list: String,
    mx_check: bool,
    /// Whether every part was read (else the checkbox may not have been reached yet).
    complete: bool,
    file: Option<Stored>,
}

/// The uploaded file as stored.
struct Stored {
    token: String,
    path: PathBuf,
    name: String,
    bytes: u64,
}

/// Why an upload was not taken.
enum Refused {
    /// The CSRF field was missing, wrong, or came after the file.
    Csrf,
    /// A mistake to show on the form.
    Form(Error),
}

impl From<axum::extract::multipart::MultipartError> for Refused {
    fn from(e: axum::extract::multipart::MultipartError) -> Self {
        if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
            return too_large();
        }
        Refused::Form(Error::invalid("file", format!("The upload could not be read: {}.", e.body_text())))
    }
}

impl From<std::io::Error> for Refused {
    fn from(e: std::io::Error) -> Self {
        Refused::Form(Error::Internal(format!("storing an upload: {e}")))
    }
}

fn too_large() -> Refused {
    let mb = MAX_UPLOAD_BYTES / (1024 * 1024);
    Refused::Form(Error::invalid("file", format!("The file is larger than {mb} MB.")))
}

/// Reads the form's parts into `received`, streaming the file to a new upload.
async fn receive(
    app: &App,
    ws: i64,
    csrf: &str,
    multipart: &mut Multipart,
    received: &mut Received,
) -> Result<(), Refused> {
    let mut csrf_ok = false;
    while let Some(mut field) = multipart.next_field().await? {
        match field.name().unwrap_or_default() {
            "csrf" => csrf_ok = same_secret(&field.text().await?, csrf) && !csrf.is_empty(),
            "list" => received.list = field.text().await?,
            "mx_check" => received.mx_check = true,
            "file" if !csrf_ok => return Err(Refused::Csrf),
            "file" if received.file.is_none() => {
                let name = field.file_name().unwrap_or_default().to_string();
                let (token, mut file) = import::create_upload(&app.config.data_dir, ws).await?;
                let path = import::upload_path(&app.config.data_dir, ws, &token).expect("a token of our own");
                received.file = Some(Stored { token, path, name, bytes: 0 });
                let stored = received.file.as_mut().expect("just stored");
                while let Some(chunk) = field.chunk().await? {
                    stored.bytes += u64::try_from(chunk.len()).unwrap_or(u64::MAX);
                    if stored.bytes > MAX_UPLOAD_BYTES as u64 {
                        return Err(too_large());
                    }
                    file.write_all(&chunk).await?;
                }
                file.flush().await?;
            }
            _ => {}
        }
    }
    if !csrf_ok {
        return Err(Refused::Csrf);
    }
    received.complete = true;
    Ok(())
}

fn form_expired() -> Response {
    error_page(
        StatusCode::FORBIDDEN,
        "Form expired",
        "This form's security token did not match. Go back, reload the page and try again.".into(),
    )
}

/// Takes the uploaded file and shows the mapping step.
pub async fn upload(
    State(app): State<App>,
    session: Session,
    Path(ws): Path<i64>,
    mut multipart: Multipart,
) -> WebResult {
    let (access, ctx) = session.in_workspace(&app, ws, "leads").await?;
    access.workspace.role.require(Role::Member)?;
    let (uploads, now) = (import::uploads_dir(&app.config.data_dir), app.clock.unix());
    tokio::task::spawn_blocking(move || import::sweep_uploads(&uploads, now));
    let mut received = Received { list: String::new(), mx_check: false, complete: false, file: None };
    let outcome = receive(&app, ws, &session.csrf, &mut multipart, &mut received).await;
    let stored = received.file.take();
    let checked = match outcome {
        Ok(()) => check_upload(stored, &received.list).await,
        Err(refused) => {
            stored.inspect(|file| import::discard_upload(&file.path));
            match refused {
                Refused::Csrf => return Ok(form_expired()),
                Refused::Form(e) => Err(e),
            }
        }
    };
    let mx_check = received.mx_check || !received.complete;
    match checked {
        Ok((file, preview, total_rows)) => {
            let (_, headers, _) = &preview;
            let choices = csv_file::guess_mapping(headers).iter().map(choice_of).collect();
            let list = received.list.trim().to_string();
            let page = mapping_page(ctx, &file.token, &file.name, list, mx_check, preview, choices, total_rows);
            Ok(render(StatusCode::OK, &page))
        }
        Err(e) if e.belongs_on_form() => upload_refused(&app, ctx, ws, received.list, mx_check, &e).await,
        Err(e) => Err(e.into()),
    }
}

/// Checks a stored upload (a file was chosen, the list name, the file's header and rows): its
/// preview and row count, or the mistake (the file is then deleted).
async fn check_upload(stored: Option<Stored>, list: &str) -> Result<(Stored, Preview, u64), Error> {
    let Some(file) = stored else {
        return Err(Error::invalid("file", "Choose a CSV file to upload."));
    };
    if file.bytes == 0 {
        import::discard_upload(&file.path);
        return Err(Error::invalid("file", "Choose a CSV file to upload: the one chosen is empty."));
    }
    let checked = async {
        leads::check_list_name(list)?;
        let preview = read_preview(file.path.clone()).await?;
        let total_rows = count_rows(file.path.clone()).await?;
        if total_rows == 0 {
            return Err(Error::invalid("file", "The file has a header row but no leads under it."));
        }
        Ok((preview, total_rows))
    };
    match checked.await {
        Ok((preview, total_rows)) => Ok((file, preview, total_rows)),
        Err(e) => {
            import::discard_upload(&file.path);
            Err(e)
        }
    }
}

/// The headers and first rows of a stored file (its first [`PREVIEW_BYTES`], cut at a line end).
async fn read_preview(path: PathBuf) -> Result<Preview, Error> {
    tokio::task::spawn_blocking(move || {
        use std::io::Read;
        let mut bytes = Vec::new();
        let file = std::fs::File::open(&path).map_err(|e| Error::Internal(format!("reading an upload: {e}")))?;
        let length = file.metadata().map(|m| m.len()).unwrap_or(0);
        file.take(PREVIEW_BYTES).read_to_end(&mut bytes).map_err(|e| Error::Internal(e.to_string()))?;
        if length > PREVIEW_BYTES
            && let Some(end) = bytes.iter().rposition(|&b| b == b'\n')
        {
            bytes.truncate(end + 1);
        }
        csv_file::preview(&bytes, PREVIEW_ROWS).map_err(|e| Error::invalid("file", e.to_string()))
    })
    .await
    .map_err(|e| Error::Internal(e.to_string()))?
}

async fn count_rows(path: PathBuf) -> Result<u64, Error> {
    tokio::task::spawn_blocking(move || import::count_rows(&path)).await.map_err(|e| Error::Internal(e.to_string()))?
}

/// The form value of a column's mapping.
fn choice_of(column: &Column) -> String {
    match column {
        Column::Custom(_) => "custom".to_string(),
        Column::Ignore => "ignore".to_string(),
        standard => standard.field().unwrap_or("ignore").to_string(),
    }
}

#[derive(Template)]
#[template(path = "leads/mapping.html")]
struct MappingPage {
    ctx: Ctx,
    upload: String,
    file_name: String,
    list: String,
    mx_check: bool,
    headers: Vec<String>,
    rows: Vec<Vec<String>>,
    /// The chosen form value for each column.
    choices: Vec<String>,
    total_rows: u64,
    delimiter: &'static str,
    error: Option<String>,
    options: [(&'static str, &'static str); 9],
}

impl MappingPage {
    fn choice(&self, column: &usize) -> &str {
        self.choices.get(*column).map_or("ignore", String::as_str)
    }

    fn rows_text(&self) -> String {
        match self.total_rows {
            1 => "1 row".to_string(),
            n => format!("{} rows", thousands(i64::try_from(n).unwrap_or(i64::MAX))),
        }
    }

    /// Whether the import will run in the background (the page does not wait for it).
    fn in_background(&self) -> bool {
        self.total_rows > import::INLINE_ROWS
    }
}

#[allow(clippy::too_many_arguments)]
fn mapping_page(
    ctx: Ctx,
    upload: &str,
    file_name: &str,
    list: String,
    mx_check: bool,
    preview: Preview,
    choices: Vec<String>,
    total_rows: u64,
) -> MappingPage {
    let (dialect, headers, rows) = preview;
    let delimiter = match dialect.delimiter {
        b';' => "semicolons",
        b'\t' => "tabs",
        _ => "commas",
    };
    MappingPage {
        ctx,
        upload: upload.to_string(),
        file_name: file_name.to_string(),
        list,
        mx_check,
        headers,
        rows,
        choices,
        total_rows,
        delimiter,
        error: None,
        options: CHOICES,
    }
}

/// The mapping form: the upload, where to import, and one choice per column in order.
#[derive(Deserialize, Default)]
#[serde(default)]
pub struct ConfirmForm {
    upload: String,
    file_name: String,
    list: String,
    mx_check: Option<String>,
    column: Vec<String>,
}

/// The columns the form maps, checked against the file's headers: one choice per column, each
/// standard field at most once, and one column for the address.
fn mapping_of(headers: &[String], choices: &[String]) -> Result<Vec<Column>, Error> {
    if choices.len() != headers.len() {
        return Err(Error::invalid("column", "Choose what each column holds."));
    }
    let mut mapping = Vec::with_capacity(headers.len());
    for (header, choice) in headers.iter().zip(choices) {
        let column = match choice.as_str() {
            "custom" if header.trim().is_empty() => Column::Ignore,
            "custom" => Column::Custom(header.trim().to_string()),
            "ignore" => Column::Ignore,
            field => {
                Column::from_field(field).ok_or_else(|| Error::invalid("column", "Choose what each column holds."))?
            }
        };
        if column.field().is_some() && mapping.contains(&column) {
            let label = CHOICES.iter().find(|(value, _)| *value == choice).map_or("", |(_, label)| *label);
            return Err(Error::invalid("column", format!("Two columns are mapped to {label}: choose one of them.")));
        }
        mapping.push(column);
    }
    if !mapping.contains(&Column::Email) {
        return Err(Error::invalid("column", "Map one column to Email: every lead needs its address."));
    }
    Ok(mapping)
}

/// Starts the import of a mapped upload and goes to its page: small files are imported before
/// the answer, larger ones in the background. The upload is claimed first, so a second click
/// on the same form finds it gone; a form to correct gives it back.
pub async fn confirm(
    State(app): State<App>,
    session: Session,
    Path(ws): Path<i64>,
    CsrfForm(form): CsrfForm<ConfirmForm>,
) -> WebResult {
    let (access, ctx) = session.in_workspace(&app, ws, "leads").await?;
    access.workspace.role.require(Role::Member)?;
    let mx_check = form.mx_check.is_some();
    let claimed = match import::upload_path(&app.config.data_dir, ws, &form.upload) {
        Some(path) => import::claim_upload(&path).map_err(|e| Error::Internal(format!("claiming an upload: {e}")))?,
        None => None,
    };
    let Some(claimed) = claimed else {
        let gone = Error::invalid("file", "This upload was imported already or is gone: upload the file again.");
        return upload_refused(&app, ctx, ws, form.list, mx_check, &gone).await;
    };
    let preview = match read_preview(claimed.clone()).await {
        Ok(preview) => preview,
        Err(e) => {
            import::discard_upload(&claimed);
            return upload_refused(&app, ctx, ws, form.list, mx_check, &e).await;
        }
    };
    let checked = async {
        let mapping = mapping_of(&preview.1, &form.column)?;
        leads::check_list_name(&form.list)?;
        Ok::<_, Error>((mapping, count_rows(claimed.clone()).await?))
    };
    match checked.await {
        Ok((mapping, total_rows)) => {
            let file_name = form.file_name.trim().chars().take(200).collect();
            let options = Options { list: form.list.trim().to_string(), mapping: Some(mapping), mx_check, file_name };
            start(&app, &access, claimed, options, total_rows).await
        }
        Err(e) if e.belongs_on_form() => {
            let upload = import::release_upload(&claimed).map_err(|e| Error::Internal(format!("an upload: {e}")))?;
            let total_rows = count_rows(upload).await.unwrap_or(0);
            let (upload, file_name) = (form.upload.as_str(), form.file_name.as_str());
            let mut page = mapping_page(ctx, upload, file_name, form.list, mx_check, preview, form.column, total_rows);
            page.error = Some(e.to_string());
            Ok(render(StatusCode::UNPROCESSABLE_ENTITY, &page))
        }
        Err(e) => {
            import::discard_upload(&claimed);
            Err(e.into())
        }
    }
}

/// Registers the import of a claimed upload, runs it, and goes to its page.
async fn start(app: &App, access: &Access, claimed: PathBuf, options: Options, total_rows: u64) -> WebResult {
    let ws = access.workspace.id;
    let id = match import::begin_by(&app.store, access, &options, total_rows, app.clock.unix()).await {
        Ok(id) => id,
        Err(e) => {
            import::discard_upload(&claimed);
            return Err(e.into());
        }
    };
    let assigned = match import::assign_upload(&app.config.data_dir, &claimed, id) {
        Ok(assigned) => assigned,
        Err(e) => {
            import::discard_upload(&claimed);
            let message = "The uploaded file could not be read again: upload it again.".to_string();
            app.store
                .write(move |tx| {
                    tx.execute("UPDATE lead_imports SET status = 'failed', error = ?2 WHERE id = ?1", (id, message))
                })
                .await?;
            return Err(Error::Internal(format!("moving upload {}: {e}", claimed.display())).into());
        }
    };
    let task = import::spawn(app, ws, id, assigned, options);
    if total_rows <= import::INLINE_ROWS {
        let _ = task.await;
    }
    Ok(Redirect::to(&format!("/w/{ws}/leads/imports/{id}")).into_response())
}

/// What the progress bar says: "1,000 of 5,000 rows (20%) · about 4 s left".
fn progress_text(record: &ImportRecord, now: i64) -> String {
    let counts =
        format!("{} of {} rows ({}%)", thousands(record.done_rows), thousands(record.total_rows), record.percent());
    match record.eta_seconds(now) {
        Some(seconds) => format!("{counts} · about {} left", duration_words(seconds)),
        None if record.status == ImportStatus::Running => format!("{counts} · starting"),
        None => counts,
    }
}

/// 75 as "1 min 15 s", 8 as "8 s".
fn duration_words(seconds: i64) -> String {
    let seconds = seconds.max(1);
    match (seconds / 3600, (seconds % 3600) / 60, seconds % 60) {
        (0, 0, s) => format!("{s} s"),
        (0, m, 0) => format!("{m} min"),
        (0, m, s) => format!("{m} min {s} s"),
        (h, m, _) => format!("{h} h {m} min"),
    }
}

/// The report's list of skipped rows pages by row number only.
const SKIP_COLUMNS: &[(&str, &str)] = &[("row", "row")];

#[derive(Template)]
#[template(path = "leads/import_report.html")]
struct ReportPage {
    ctx: Ctx,
    import: ImportRecord,
    /// Rows skipped for each reason that skipped any.
    reasons: Vec<(SkipReason, i64)>,
    reason_filter: String,
    listing: Listing,
    skips: Vec<Skip>,
    now: i64,
}

impl ReportPage {
    fn when(&self, at: &i64) -> String {
        format_unix(*at)
    }

    fn tone(&self) -> &'static str {
        import_tone(self.import.status)
    }

    fn figure(&self, n: &i64) -> String {
        thousands(*n)
    }

    fn progress_text(&self) -> String {
        progress_text(&self.import, self.now)
    }

    fn running(&self) -> bool {
        self.import.status == ImportStatus::Running
    }
}

#[derive(Deserialize, Default)]
#[serde(default)]
pub struct ReportQuery {
    reason: String,
    page: u32,
}

/// An import's page: its progress while it runs, then its report.
pub async fn show(
    State(app): State<App>,
    session: Session,
    Path((ws, id)): Path<(i64, i64)>,
    Query(query): Query<ReportQuery>,
) -> WebResult {
    let (_, ctx) = session.in_workspace(&app, ws, "leads").await?;
    let reason = SkipReason::from_code(query.reason.trim());
    let filters = reason.map(|r| vec![("reason", r.code().to_string())]).unwrap_or_default();
    let shared = listing::ListQuery { page: query.page, ..Default::default() };
    let mut listing = Listing::new(shared, filters, SKIP_COLUMNS);
    let (import, reasons, listing, skips) = app
        .store
        .read(move |conn| {
            let record = import::get(conn, ws, id)?;
            let reasons = import::skip_counts(conn, id)?;
            let matching = match reason {
                Some(wanted) => reasons.iter().find(|(r, _)| *r == wanted).map_or(0, |(_, n)| *n),
                None => record.skipped,
            };
            let skips = listing.read_page(
                || Ok::<_, Error>(matching),
                |limit, offset| Ok(import::skips(conn, id, reason, limit, offset)?),
            )?;
            Ok::<_, Error>((record, reasons, listing, skips))
        })
        .await?;
    let page = ReportPage {
        ctx,
        import,
        reasons,
        reason_filter: reason.map(|r| r.code().to_string()).unwrap_or_default(),
        listing,
        skips,
        now: app.clock.unix(),
    };
    Ok(render(StatusCode::OK, &page))
}

/// An import's progress for the page's script.
#[derive(Serialize)]
struct Progress {
    status: ImportStatus,
    done_rows: i64,
    total_rows: i64,
    percent: i64,
    text: String,
}

pub async fn progress(State(app): State<App>, session: Session, Path((ws, id)): Path<(i64, i64)>) -> WebResult {
    session.in_workspace(&app, ws, "leads").await?;
    let record = app.store.read(move |conn| import::get(conn, ws, id)).await?;
    let progress = Progress {
        status: record.status,
        done_rows: record.done_rows,
        total_rows: record.total_rows,
        percent: record.percent(),
        text: progress_text(&record, app.clock.unix()),
    };
    let mut response = Json(progress).into_response();
    response.headers_mut().insert(axum::http::header::CACHE_CONTROL, "no-store".parse().expect("valid header"));
    Ok(response)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(names: &[&str]) -> Vec<String> {
        names.iter().map(|n| n.to_string()).collect()
    }

    #[test]
    fn a_mapping_needs_one_email_column_and_keeps_custom_headers() {
        let h = headers(&["E-mail", "Vorname", "Plan", ""]);
        let choices = headers(&["email", "first_name", "custom", "custom"]);
        assert_eq!(
            mapping_of(&h, &choices).unwrap(),
            [Column::Email, Column::FirstName, Column::Custom("Plan".into()), Column::Ignore]
        );
        let none = mapping_of(&h, &headers(&["ignore", "first_name", "custom", "ignore"])).unwrap_err();
        assert!(none.to_string().contains("Email"), "{none}");
        let twice = mapping_of(&h, &headers(&["email", "email", "custom", "ignore"])).unwrap_err();
        assert!(twice.to_string().contains("Two columns"), "{twice}");
        assert!(mapping_of(&h, &headers(&["email"])).is_err(), "one choice per column");
        assert!(mapping_of(&h, &headers(&["email", "password", "custom", "ignore"])).is_err());
    }

    #[test]
    fn progress_reads_as_counts_percent_and_time_left() {
        let record = ImportRecord {
            id: 1,
            list_id: None,
            list: "Q1".into(),
            file_name: "a.csv".into(),
            status: ImportStatus::Running,
            total_rows: 5000,
            done_rows: 1000,
            imported: 1000,
            updated: 0,
            skipped: 0,
            error: String::new(),
            created_at: 100,
            finished_at: None,
        };
        assert_eq!(progress_text(&record, 102), "1,000 of 5,000 rows (20%) · about 8 s left");
        let starting = ImportRecord { done_rows: 0, ..record.clone() };
        assert_eq!(progress_text(&starting, 100), "0 of 5,000 rows (0%) · starting");
        let done = ImportRecord { status: ImportStatus::Done, done_rows: 5000, ..record };
        assert_eq!(progress_text(&done, 200), "5,000 of 5,000 rows (100%)");
        assert_eq!([duration_words(8), duration_words(75), duration_words(120)], ["8 s", "1 min 15 s", "2 min"]);
        assert_eq!(duration_words(3 * 3600 + 125), "3 h 2 min");
    }
}
