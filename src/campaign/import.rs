//! Importing a lead CSV into a list: the one import used by the command line and the admin UI.
//!
//! The file is streamed ([`LeadReader`]) in chunks of [`CHUNK`] rows. Each row is checked in
//! order: syntax, role address, disposable domain (no store or network: `validate`), a duplicate
//! of an earlier row of the same file (a set of the addresses seen), then, in the chunk's write
//! transaction, the suppression list, and with the MX check on, whether the domain has a mail
//! server (looked up once per domain through the configured resolver, many domains at once, a
//! temporary DNS failure giving the benefit of the doubt). A valid row is added or updates the
//! workspace's lead with its address, joins the list, and is enrolled in the started campaigns
//! that target the list.
//!
//! Progress and the report live in `lead_imports` / `lead_import_skips`, written with each
//! chunk, so the UI can show a progress bar that survives a reload and the report is kept. An
//! import is "done" only once its last chunk committed.
//!
//! The admin UI stores an uploaded file under `{data_dir}/imports/` (mode 0600) as
//! `upload-{workspace}-{token}.csv` while the user maps its columns; starting the import renames
//! it (`claimed-...`, so a second click finds nothing, then `import-{id}.csv`) and [`spawn`] runs
//! it on a supervised task, which deletes the file when it ends (a page waits for files of at
//! most [`INLINE_ROWS`] rows, others run in the background).
//! An import cut short by a stop or a crash is not resumed: [`recover_interrupted`], called at
//! start, marks it failed with the rows it got through (the leads written so far stay; importing
//! the file again updates them instead of adding them twice), deletes its file, and deletes
//! uploads never imported after [`UPLOAD_SECONDS`].

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};

use rusqlite::{Connection, OptionalExtension, Transaction};
use serde::Serialize;

use crate::app::App;
use crate::audit;
use crate::campaign::campaigns;
use crate::campaign::csv_file::{Column, CsvError, LeadReader, RawLead, guess_mapping};
use crate::campaign::leads::{self, LeadFields, Upserted};
use crate::campaign::validate::{self, SkipReason};
use crate::dns::resolver::{LookupError, Resolver};
use crate::error::{Error, Result};
use crate::store::Store;
use crate::suppression;
use crate::workspaces::{Access, Role};

/// Rows per write transaction (and per step of the progress bar).
const CHUNK: usize = 1000;
/// Files of at most this many rows import while the page waits; larger ones in the background.
pub const INLINE_ROWS: u64 = 2000;
/// How long an uploaded file waits for its import to be started before it is deleted.
pub const UPLOAD_SECONDS: i64 = 24 * 3600;
/// MX lookups in flight at once.
const LOOKUPS: usize = 32;

/// How to import.
#[derive(Debug, Clone)]
pub struct Options {
    /// The list the leads join (made when it does not exist).
    pub list: String,
    /// The column mapping; `None`: guessed from the headers.
    pub mapping: Option<Vec<Column>>,
    pub mx_check: bool,
    /// The name shown in the import history.
    pub file_name: String,
}

/// One skipped row of the report.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Skip {
    pub row: u64,
    pub email: String,
    pub reason: SkipReason,
}

/// What an import did (the `--json` shape of `leads import`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Report {
    pub imported: u64,
    pub updated: u64,
    pub skipped: Vec<Skip>,
}

/// What an import needs from the appliance.
#[derive(Clone)]
pub struct Importer {
    pub store: Store,
    pub resolver: Resolver,
    pub clock: crate::clock::Clock,
}

/// A row that passed the checks that need no store.
struct Candidate {
    row: u64,
    fields: LeadFields,
}

/// Registers an import (running) and returns its id.
pub async fn begin(store: &Store, workspace: i64, options: &Options, total_rows: u64, now: i64) -> Result<i64> {
    let list = leads::check_list_name(&options.list)?;
    let name = options.file_name.clone();
    let total = i64::try_from(total_rows).unwrap_or(i64::MAX);
    store.write(move |tx| Ok(register(tx, workspace, &list, &name, total, now)?)).await
}

/// [`begin`] for a person: members and above only, with an audit entry in the same write.
pub async fn begin_by(store: &Store, access: &Access, options: &Options, total_rows: u64, now: i64) -> Result<i64> {
    access.workspace.role.require(Role::Member)?;
    let list = leads::check_list_name(&options.list)?;
    let name = options.file_name.clone();
    let (workspace, actor) = (access.workspace.id, access.actor.clone());
    let mx = if options.mx_check { "with" } else { "without" };
    let detail = format!("{total_rows} rows into list \"{list}\", {mx} the MX check");
    store
        .write(move |tx| {
            let id = register(tx, workspace, &list, &name, as_i64(total_rows), now)?;
            audit::record(tx, Some(workspace), &actor, "lead.import", &name, &detail, now)?;
            Ok(id)
        })
        .await
}

fn register(
    tx: &Connection,
    workspace: i64,
    list: &str,
    file_name: &str,
    total: i64,
    now: i64,
) -> rusqlite::Result<i64> {
    let list_id = leads::list_id_or_create(tx, workspace, list, now)?;
    tx.execute(
        "INSERT INTO lead_imports (workspace_id, list_id, file_name, total_rows, created_at) VALUES (?1, ?2, ?3, ?4, ?5)",
        (workspace, list_id, file_name, total, now),
    )?;
    Ok(tx.last_insert_rowid())
}

/// Counts the data rows of a file (for the progress bar), streaming.
pub fn count_rows(path: &Path) -> Result<u64> {
    let mut reader = LeadReader::open(path).map_err(csv_error)?;
    let mapping = vec![Column::Ignore; reader.headers().len()];
    let mut rows = 0;
    while let Some(row) = reader.next_row(&mapping) {
        rows = row.map_err(csv_error)?.row;
    }
    Ok(rows)
}

/// Refuses, before anything is registered, a file whose headers the guessed mapping (the
/// command line's) maps to no email column.
pub fn check_guessed_mapping(path: &Path) -> Result<()> {
    let reader = LeadReader::open(path).map_err(csv_error)?;
    if guess_mapping(reader.headers()).contains(&Column::Email) { Ok(()) } else { Err(no_email_column()) }
}

fn no_email_column() -> Error {
    Error::invalid("mapping", "No column is mapped to email.")
}

fn csv_error(e: CsvError) -> Error {
    Error::invalid("file", e.to_string())
}

impl Importer {
    /// Imports the file into the workspace under the registered import `id` (see the module doc).
    pub async fn run(&self, workspace: i64, id: i64, path: &Path, options: &Options) -> Result<Report> {
        match self.import(workspace, id, path, options).await {
            Ok(report) => Ok(report),
            Err(e) => {
                let message = if e.is_user_error() { e.to_string() } else { "The import failed.".to_string() };
                let now = self.clock.unix();
                self.store
                    .write(move |tx| {
                        tx.execute(
                            "UPDATE lead_imports SET status = 'failed', error = ?2, finished_at = ?3 WHERE id = ?1",
                            (id, message, now),
                        )
                    })
                    .await?;
                Err(e)
            }
        }
    }

    async fn import(&self, workspace: i64, id: i64, path: &Path, options: &Options) -> Result<Report> {
        let list = leads::check_list_name(&options.list)?;
        let mut reader = LeadReader::open(path).map_err(csv_error)?;
        let mapping = options.mapping.clone().unwrap_or_else(|| guess_mapping(reader.headers()));
        if !mapping.contains(&Column::Email) {
            return Err(no_email_column());
        }
        let mut seen = HashSet::new();
        let mut mx_cache: HashMap<String, bool> = HashMap::new();
        let mut report = Report::default();
        let mut done_rows = 0;
        loop {
            let mut chunk = Vec::with_capacity(CHUNK);
            let mut skipped = Vec::new();
            while chunk.len() + skipped.len() < CHUNK {
                let Some(row) = reader.next_row(&mapping) else { break };
                let row = row.map_err(csv_error)?;
                done_rows = row.row;
                match check_row(row, &mut seen) {
                    Ok(candidate) => chunk.push(candidate),
                    Err(skip) => skipped.push(skip),
                }
            }
            if chunk.is_empty() && skipped.is_empty() {
                break;
            }
            if options.mx_check {
                self.check_mx(&mut chunk, &mut skipped, &mut mx_cache).await;
            }
            let now = self.clock.unix();
            let (list, done) = (list.clone(), done_rows);
            let (counts, skipped) =
                self.store.write(move |tx| write_chunk(tx, workspace, id, &list, chunk, skipped, done, now)).await?;
            report.imported += counts.0;
            report.updated += counts.1;
            report.skipped.extend(skipped);
        }
        let now = self.clock.unix();
        self.store
            .write(move |tx| {
                tx.execute("UPDATE lead_imports SET status = 'done', finished_at = ?2 WHERE id = ?1", (id, now))
            })
            .await?;
        report.skipped.sort_by_key(|skip| skip.row);
        Ok(report)
    }

    /// Skips the candidates whose domain has no mail server (module doc).
    async fn check_mx(&self, chunk: &mut Vec<Candidate>, skipped: &mut Vec<Skip>, cache: &mut HashMap<String, bool>) {
        let unknown: Vec<String> = chunk
            .iter()
            .map(|c| validate::domain_of(&c.fields.email).to_string())
            .filter(|domain| !cache.contains_key(domain))
            .collect::<HashSet<_>>()
            .into_iter()
            .collect();
        for group in unknown.chunks(LOOKUPS) {
            let mut tasks = tokio::task::JoinSet::new();
            for domain in group {
                let (resolver, domain) = (self.resolver.clone(), domain.clone());
                tasks.spawn(async move {
                    let has_mx = has_mail_server(&resolver, &domain).await;
                    (domain, has_mx)
                });
            }
            while let Some(Ok((domain, has_mx))) = tasks.join_next().await {
                cache.insert(domain, has_mx);
            }
        }
        let (kept, dropped): (Vec<_>, Vec<_>) = std::mem::take(chunk)
            .into_iter()
            .partition(|c| cache.get(validate::domain_of(&c.fields.email)).copied().unwrap_or(true));
        *chunk = kept;
        skipped.extend(dropped.into_iter().map(|c| Skip {
            row: c.row,
            email: c.fields.email,
            reason: SkipReason::NoMx,
        }));
    }
}

/// Whether the domain has a mail server: an MX other than the null MX. A temporary failure
/// counts as yes (the import should not drop good leads because DNS hiccuped).
async fn has_mail_server(resolver: &Resolver, domain: &str) -> bool {
    match resolver.mx(domain).await {
        Ok(records) => records.iter().any(|mx| !mx.exchange.is_empty()),
        Err(LookupError::Temporary(..)) => true,
        Err(_) => false,
    }
}

/// The checks of one row that need no store: syntax, role, disposable, duplicate.
fn check_row(row: RawLead, seen: &mut HashSet<String>) -> std::result::Result<Candidate, Skip> {
    let skip = |reason: SkipReason, email: &str| Skip { row: row.row, email: email.to_string(), reason };
    let email = validate::check_offline(&row.email).map_err(|reason| skip(reason, row.email.trim()))?;
    if !seen.insert(email.clone()) {
        return Err(skip(SkipReason::Duplicate, &email));
    }
    let time_zone =
        row.time_zone.trim().parse::<chrono_tz::Tz>().map(|zone| zone.name().to_string()).unwrap_or_default();
    Ok(Candidate {
        row: row.row,
        fields: LeadFields {
            email,
            first_name: row.first_name,
            last_name: row.last_name,
            company: row.company,
            title: row.title,
            website: row.website,
            time_zone,
            custom: row.custom,
        },
    })
}

/// Writes one chunk: suppression check, upserts, list membership, enrollment, progress and
/// the chunk's skipped rows. Returns (imported, updated) and every skip of the chunk.
#[allow(clippy::too_many_arguments)]
fn write_chunk(
    tx: &Transaction,
    workspace: i64,
    import: i64,
    list: &str,
    chunk: Vec<Candidate>,
    mut skipped: Vec<Skip>,
    done_rows: u64,
    now: i64,
) -> Result<((u64, u64), Vec<Skip>)> {
    let list_id = leads::list_id_or_create(tx, workspace, list, now)?;
    let enroll = campaigns::list_is_targeted(tx, list_id)?;
    let (mut imported, mut updated) = (0, 0);
    for candidate in chunk {
        if suppression::reason(tx, workspace, &candidate.fields.email)?.is_some() {
            skipped.push(Skip { row: candidate.row, email: candidate.fields.email, reason: SkipReason::Suppressed });
            continue;
        }
        let lead = leads::upsert(tx, workspace, &candidate.fields, now)?;
        match lead {
            Upserted::Imported(_) => imported += 1,
            Upserted::Updated(_) => updated += 1,
        }
        leads::add_to_list(tx, list_id, lead.id(), now)?;
        if enroll {
            campaigns::enroll_lead(tx, list_id, lead.id(), now)?;
        }
    }
    record_progress(tx, import, &skipped, (imported, updated), done_rows)?;
    Ok(((imported, updated), skipped))
}

fn record_progress(tx: &Connection, import: i64, skipped: &[Skip], counts: (u64, u64), done_rows: u64) -> Result<()> {
    let mut insert = tx.prepare_cached(
        "INSERT OR REPLACE INTO lead_import_skips (import_id, row, email, reason) VALUES (?1, ?2, ?3, ?4)",
    )?;
    for skip in skipped {
        insert.execute((import, as_i64(skip.row), &skip.email, skip.reason.code()))?;
    }
    tx.prepare_cached(
        "UPDATE lead_imports SET imported = imported + ?2, updated = updated + ?3, done_rows = ?4 WHERE id = ?1",
    )?
    .execute((import, as_i64(counts.0), as_i64(counts.1), as_i64(done_rows)))?;
    Ok(())
}

fn as_i64(n: u64) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

/// Where an import stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ImportStatus {
    Running,
    Done,
    Failed,
}

impl ImportStatus {
    pub const ALL: [ImportStatus; 3] = [ImportStatus::Running, ImportStatus::Done, ImportStatus::Failed];

    pub fn as_str(self) -> &'static str {
        match self {
            ImportStatus::Running => "running",
            ImportStatus::Done => "done",
            ImportStatus::Failed => "failed",
        }
    }

    /// Words for a page.
    pub fn label(self) -> &'static str {
        match self {
            ImportStatus::Running => "Running",
            ImportStatus::Done => "Done",
            ImportStatus::Failed => "Failed",
        }
    }
}

crate::store::names::stored_name!(ImportStatus, "import status");

/// A registered import as its page shows it: progress, counts and what went wrong.
#[derive(Debug, Clone, Serialize)]
pub struct ImportRecord {
    pub id: i64,
    pub list_id: Option<i64>,
    /// The list's name; empty when the list was deleted since.
    pub list: String,
    pub file_name: String,
    pub status: ImportStatus,
    pub total_rows: i64,
    /// Rows read and written so far (the last chunk committed).
    pub done_rows: i64,
    pub imported: i64,
    pub updated: i64,
    pub skipped: i64,
    /// Why it failed, in words; empty otherwise.
    pub error: String,
    pub created_at: i64,
    pub finished_at: Option<i64>,
}

impl ImportRecord {
    /// How far it got, 0 to 100.
    pub fn percent(&self) -> i64 {
        match (self.status, self.total_rows) {
            (ImportStatus::Done, _) => 100,
            (_, total) if total <= 0 => 0,
            (_, total) => (self.done_rows.clamp(0, total) * 100) / total,
        }
    }

    /// Seconds left while running, at the pace so far; `None` before the first chunk.
    pub fn eta_seconds(&self, now: i64) -> Option<i64> {
        let elapsed = (now - self.created_at).max(1);
        let left = self.total_rows - self.done_rows;
        (self.status == ImportStatus::Running && self.done_rows > 0 && left >= 0)
            .then(|| left.saturating_mul(elapsed) / self.done_rows)
    }
}

const SELECT_IMPORT: &str = "SELECT i.id, i.list_id, coalesce(l.name, ''), i.file_name, i.status, i.total_rows, \
    i.done_rows, i.imported, i.updated, (SELECT count(*) FROM lead_import_skips s WHERE s.import_id = i.id), \
    i.error, i.created_at, i.finished_at FROM lead_imports i LEFT JOIN lead_lists l ON l.id = i.list_id";

fn import_from_row(row: &rusqlite::Row<'_>) -> rusqlite::Result<ImportRecord> {
    Ok(ImportRecord {
        id: row.get(0)?,
        list_id: row.get(1)?,
        list: row.get(2)?,
        file_name: row.get(3)?,
        status: row.get(4)?,
        total_rows: row.get(5)?,
        done_rows: row.get(6)?,
        imported: row.get(7)?,
        updated: row.get(8)?,
        skipped: row.get(9)?,
        error: row.get(10)?,
        created_at: row.get(11)?,
        finished_at: row.get(12)?,
    })
}

/// An import of the workspace by id.
pub fn get(conn: &Connection, workspace: i64, id: i64) -> Result<ImportRecord> {
    conn.prepare_cached(&format!("{SELECT_IMPORT} WHERE i.workspace_id = ?1 AND i.id = ?2"))?
        .query_row((workspace, id), import_from_row)
        .optional()?
        .ok_or(Error::NotFound)
}

/// The workspace's latest imports, newest first.
pub fn recent(conn: &Connection, workspace: i64, limit: i64) -> rusqlite::Result<Vec<ImportRecord>> {
    conn.prepare_cached(&format!("{SELECT_IMPORT} WHERE i.workspace_id = ?1 ORDER BY i.id DESC LIMIT ?2"))?
        .query_map((workspace, limit), import_from_row)?
        .collect()
}

/// How many rows of an import were skipped for each reason, in [`SkipReason::ALL`] order.
pub fn skip_counts(conn: &Connection, import: i64) -> rusqlite::Result<Vec<(SkipReason, i64)>> {
    let counted: HashMap<String, i64> = conn
        .prepare_cached("SELECT reason, count(*) FROM lead_import_skips WHERE import_id = ?1 GROUP BY reason")?
        .query_map([import], |row| Ok((row.get(0)?, row.get(1)?)))?
        .collect::<rusqlite::Result<_>>()?;
    Ok(SkipReason::ALL.into_iter().filter_map(|reason| Some((reason, *counted.get(reason.code())?))).collect())
}

/// One page of an import's skipped rows (only those skipped for `reason` when given), by row.
pub fn skips(
    conn: &Connection,
    import: i64,
    reason: Option<SkipReason>,
    limit: i64,
    offset: i64,
) -> rusqlite::Result<Vec<Skip>> {
    conn.prepare_cached(
        "SELECT row, email, reason FROM lead_import_skips WHERE import_id = ?1 AND (?2 IS NULL OR reason = ?2) \
         ORDER BY row LIMIT ?3 OFFSET ?4",
    )?
    .query_map((import, reason.map(SkipReason::code), limit, offset), |row| {
        Ok((row.get::<_, i64>(0)?, row.get::<_, String>(1)?, row.get::<_, String>(2)?))
    })?
    .filter_map(|found| match found {
        Ok((row, email, code)) => {
            let reason = SkipReason::from_code(&code)?;
            Some(Ok(Skip { row: u64::try_from(row).unwrap_or_default(), email, reason }))
        }
        Err(e) => Some(Err(e)),
    })
    .collect()
}

/// Deletes the rows of the workspace's import reports that name `address` (an erased lead).
pub fn forget_address(tx: &Connection, workspace: i64, address: &str) -> rusqlite::Result<usize> {
    tx.prepare_cached(
        "DELETE FROM lead_import_skips WHERE lower(email) = lower(?2) \
         AND import_id IN (SELECT id FROM lead_imports WHERE workspace_id = ?1)",
    )?
    .execute((workspace, address.trim()))
}

impl Importer {
    /// The appliance's store, resolver and clock.
    pub fn of(app: &App) -> Importer {
        Importer { store: app.store.clone(), resolver: app.resolver.clone(), clock: app.clock.clone() }
    }
}

/// What the import of a stopping appliance says.
const STOPPED: &str = "The appliance stopped before this import finished.";

/// Runs a registered import on a supervised task and deletes `path` when it ends. The task
/// stops with the appliance (the import is then marked failed); await the handle to wait for
/// the end (the import goes on if the waiting request goes away).
pub fn spawn(app: &App, workspace: i64, id: i64, path: PathBuf, options: Options) -> tokio::task::JoinHandle<()> {
    let importer = Importer::of(app);
    let stopping = app.clone();
    app.spawn_supervised("lead import", async move {
        let outcome = tokio::select! {
            result = importer.run(workspace, id, &path, &options) => Some(result),
            () = stopping.shutting_down() => None,
        };
        remove_file(&path);
        match outcome {
            Some(Ok(report)) => {
                tracing::info!(import = id, imported = report.imported, updated = report.updated, "lead import done");
                Ok(())
            }
            Some(Err(e)) if e.is_user_error() => {
                tracing::info!(import = id, error = %e, "lead import refused the file");
                Ok(())
            }
            Some(Err(e)) => Err(anyhow::anyhow!("lead import {id}: {e}")),
            None => {
                mark_failed(&importer.store, id, STOPPED.to_string(), importer.clock.unix()).await?;
                Ok(())
            }
        }
    })
}

/// Marks a running import failed with `message`.
async fn mark_failed(store: &Store, id: i64, message: String, now: i64) -> Result<()> {
    store
        .write(move |tx| {
            tx.execute(
                "UPDATE lead_imports SET status = 'failed', error = ?2, finished_at = ?3 \
                 WHERE id = ?1 AND status = 'running'",
                (id, message, now),
            )
        })
        .await?;
    Ok(())
}

fn remove_file(path: &Path) {
    if let Err(e) = std::fs::remove_file(path)
        && e.kind() != std::io::ErrorKind::NotFound
    {
        tracing::warn!(path = %path.display(), error = %e, "an import file could not be deleted");
    }
}

/// The folder of uploaded lead files in a data dir.
pub fn uploads_dir(data_dir: &Path) -> PathBuf {
    data_dir.join("imports")
}

/// Creates a new, empty upload file for the workspace (0600, in a 0700 folder); returns its
/// token (what the mapping form carries) and the open file.
pub async fn create_upload(data_dir: &Path, workspace: i64) -> std::io::Result<(String, tokio::fs::File)> {
    let dir = uploads_dir(data_dir);
    let mut folder = tokio::fs::DirBuilder::new();
    folder.recursive(true).mode(0o700);
    folder.create(&dir).await?;
    let token = crate::crypto::random_token();
    let path = dir.join(format!("upload-{workspace}-{token}.csv"));
    let file = tokio::fs::OpenOptions::new().write(true).create_new(true).mode(0o600).open(path).await?;
    Ok((token, file))
}

/// The path of the workspace's upload `token`, if the token has the right form (so it cannot
/// name a file elsewhere). The file itself may be gone.
pub fn upload_path(data_dir: &Path, workspace: i64, token: &str) -> Option<PathBuf> {
    let well_formed = token.len() == 43 && token.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
    well_formed.then(|| uploads_dir(data_dir).join(format!("upload-{workspace}-{token}.csv")))
}

/// Deletes an upload that will not be imported.
pub fn discard_upload(path: &Path) {
    remove_file(path);
}

/// Takes an upload for one import: renames it so that a second request for the same upload
/// (a double click) finds nothing. `None` when the upload is not there (any more).
pub fn claim_upload(upload: &Path) -> std::io::Result<Option<PathBuf>> {
    let Some(name) = upload.file_name().and_then(|n| n.to_str()).and_then(|n| n.strip_prefix("upload-")) else {
        return Ok(None);
    };
    let claimed = upload.with_file_name(format!("claimed-{name}"));
    match std::fs::rename(upload, &claimed) {
        Ok(()) => Ok(Some(claimed)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e),
    }
}

/// Gives a claimed upload back (its form is to be corrected); returns its upload path.
pub fn release_upload(claimed: &Path) -> std::io::Result<PathBuf> {
    let name = claimed.file_name().and_then(|n| n.to_str()).and_then(|n| n.strip_prefix("claimed-")).unwrap_or("");
    let upload = claimed.with_file_name(format!("upload-{name}"));
    std::fs::rename(claimed, &upload)?;
    Ok(upload)
}

/// Moves a claimed upload to the name of its registered import, for [`spawn`] (and for
/// [`recover_interrupted`] to find).
pub fn assign_upload(data_dir: &Path, claimed: &Path, id: i64) -> std::io::Result<PathBuf> {
    let assigned = import_path(data_dir, id);
    std::fs::rename(claimed, &assigned)?;
    Ok(assigned)
}

fn import_path(data_dir: &Path, id: i64) -> PathBuf {
    uploads_dir(data_dir).join(format!("import-{id}.csv"))
}

/// At start: marks the imports a stop or crash left running as failed, deletes their files and
/// the uploads older than [`UPLOAD_SECONDS`] (see the module doc). Returns how many imports it
/// marked. Call it before serving.
pub async fn recover_interrupted(app: &App) -> Result<usize> {
    let now = app.clock.unix();
    let interrupted = fail_interrupted(&app.store, now).await?;
    let data_dir = app.config.data_dir.clone();
    for id in &interrupted {
        remove_file(&import_path(&data_dir, *id));
    }
    sweep_uploads(&uploads_dir(&data_dir), now);
    if !interrupted.is_empty() {
        tracing::warn!(imports = ?interrupted, "lead imports interrupted by the last stop were marked failed");
    }
    Ok(interrupted.len())
}

/// Marks every running import failed, saying how far it got; returns their ids.
pub async fn fail_interrupted(store: &Store, now: i64) -> Result<Vec<i64>> {
    store
        .write(move |tx| {
            let running: Vec<(i64, i64, i64)> = tx
                .prepare("SELECT id, done_rows, total_rows FROM lead_imports WHERE status = 'running'")?
                .query_map([], |row| Ok((row.get(0)?, row.get(1)?, row.get(2)?)))?
                .collect::<rusqlite::Result<_>>()?;
            for (id, done, total) in &running {
                let message = format!(
                    "The appliance stopped before this import finished: {} of {} rows were read. The leads \
                     imported so far are kept; import the file again to add the rest (leads already imported \
                     are updated, not added twice).",
                    crate::web::listing::thousands(*done),
                    crate::web::listing::thousands(*total),
                );
                tx.execute(
                    "UPDATE lead_imports SET status = 'failed', error = ?2, finished_at = ?3 WHERE id = ?1",
                    (id, message, now),
                )?;
            }
            Ok(running.into_iter().map(|(id, ..)| id).collect())
        })
        .await
}

/// Deletes the uploads of `dir` (claimed or not) last changed more than [`UPLOAD_SECONDS`]
/// before `now`; the files of registered imports are their task's to delete.
pub fn sweep_uploads(dir: &Path, now: i64) {
    let Ok(entries) = std::fs::read_dir(dir) else { return };
    for entry in entries.filter_map(std::result::Result::ok) {
        let name = entry.file_name().to_string_lossy().into_owned();
        if !(name.starts_with("upload-") || name.starts_with("claimed-")) {
            continue;
        }
        let changed = entry
            .metadata()
            .and_then(|m| m.modified())
            .ok()
            .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
            .and_then(|d| i64::try_from(d.as_secs()).ok());
        if changed.is_some_and(|at| now - at > UPLOAD_SECONDS) {
            remove_file(&entry.path());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn app() -> (tempfile::TempDir, App) {
        let dir = tempfile::tempdir().expect("temp dir");
        let config = crate::config::Config { data_dir: dir.path().to_path_buf(), ..Default::default() };
        let app = App::open(config).await.expect("open app");
        app.store
            .write(|tx| tx.execute("INSERT INTO workspaces (id, name, created_at) VALUES (1, 'a', 0), (2, 'b', 0)", []))
            .await
            .expect("workspaces");
        (dir, app)
    }

    fn options(list: &str) -> Options {
        Options { list: list.into(), mapping: None, mx_check: false, file_name: "leads.csv".into() }
    }

    #[tokio::test]
    async fn the_report_is_read_by_reason_and_an_erased_address_leaves_it() {
        let (dir, app) = app().await;
        let file = dir.path().join("leads.csv");
        std::fs::write(&file, "email\nann@x.test\nnope\nann@x.test\ninfo@x.test\nbob@x.test\nbob@x.test\n").unwrap();
        let id = begin(&app.store, 1, &options("Q1"), 6, app.clock.unix()).await.unwrap();
        let report = Importer::of(&app).run(1, id, &file, &options("Q1")).await.unwrap();
        assert_eq!((report.imported, report.skipped.len()), (2, 4));
        let (record, counts, duplicates) = app
            .store
            .read(move |conn| {
                Ok::<_, Error>((
                    get(conn, 1, id)?,
                    skip_counts(conn, id)?,
                    skips(conn, id, Some(SkipReason::Duplicate), 10, 0)?,
                ))
            })
            .await
            .unwrap();
        assert_eq!(
            (record.status, record.done_rows, record.skipped, record.percent()),
            (ImportStatus::Done, 6, 4, 100)
        );
        assert_eq!(record.list, "Q1");
        let expected = [(SkipReason::InvalidSyntax, 1), (SkipReason::Duplicate, 2), (SkipReason::RoleAddress, 1)];
        assert_eq!(counts, expected);
        assert_eq!(
            duplicates.iter().map(|s| (s.row, s.email.as_str())).collect::<Vec<_>>(),
            [(3, "ann@x.test"), (6, "bob@x.test")]
        );
        assert!(matches!(app.store.read(move |conn| get(conn, 2, id)).await, Err(Error::NotFound)), "walls");

        let forgotten = app.store.write(|tx| forget_address(tx, 1, "BOB@x.test")).await.unwrap();
        assert_eq!(forgotten, 1);
        let left = app.store.read(move |conn| skips(conn, id, None, 10, 0)).await.unwrap();
        assert_eq!(left.iter().map(|s| s.row).collect::<Vec<_>>(), [2, 3, 4]);
    }

    #[tokio::test]
    async fn a_restart_marks_interrupted_imports_failed_and_deletes_their_files() {
        let (dir, app) = app().await;
        let now = app.clock.unix();
        let running = begin(&app.store, 1, &options("Q1"), 5000, now).await.unwrap();
        let finished = begin(&app.store, 1, &options("Q2"), 10, now).await.unwrap();
        app.store
            .write(move |tx| {
                tx.execute("UPDATE lead_imports SET done_rows = 2000 WHERE id = ?1", [running])?;
                tx.execute("UPDATE lead_imports SET status = 'done', done_rows = 10 WHERE id = ?1", [finished])
            })
            .await
            .unwrap();
        let (token, _) = create_upload(dir.path(), 1).await.unwrap();
        let fresh = upload_path(dir.path(), 1, &token).unwrap();
        let stale = uploads_dir(dir.path()).join("upload-1-stale.csv");
        let two_days_ago = std::time::SystemTime::now() - std::time::Duration::from_secs(2 * 24 * 3600);
        std::fs::File::create(&stale).unwrap().set_modified(two_days_ago).unwrap();
        let interrupted_file = import_path(dir.path(), running);
        std::fs::write(&interrupted_file, "email\n").unwrap();

        assert_eq!(recover_interrupted(&app).await.unwrap(), 1);
        let (failed, done) = app
            .store
            .read(move |conn| Ok::<_, Error>((get(conn, 1, running)?, get(conn, 1, finished)?)))
            .await
            .unwrap();
        assert_eq!(failed.status, ImportStatus::Failed);
        assert!(failed.error.contains("2,000 of 5,000 rows were read"), "{}", failed.error);
        assert_eq!(failed.finished_at, Some(now));
        assert_eq!(done.status, ImportStatus::Done);
        assert!(fresh.exists(), "a recent upload waits for its mapping");
        assert!(!stale.exists() && !interrupted_file.exists());
        assert_eq!(recover_interrupted(&app).await.unwrap(), 0);
    }

    #[tokio::test]
    async fn uploads_are_private_and_their_tokens_name_only_their_workspaces_files() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let (token, _) = create_upload(dir.path(), 7).await.unwrap();
        let path = upload_path(dir.path(), 7, &token).unwrap();
        assert_eq!(std::fs::metadata(&path).unwrap().permissions().mode() & 0o777, 0o600);
        assert_eq!(std::fs::metadata(uploads_dir(dir.path())).unwrap().permissions().mode() & 0o777, 0o700);
        assert!(!upload_path(dir.path(), 8, &token).unwrap().exists(), "another workspace's name");
        for bad in ["", "../inboxgrove.db", &format!("{}/", &token[..42]), &token[..42]] {
            assert_eq!(upload_path(dir.path(), 7, bad), None, "{bad:?}");
        }
        let claimed = claim_upload(&path).unwrap().expect("claimed");
        assert!(claimed.exists() && !path.exists());
        assert_eq!(claim_upload(&path).unwrap(), None, "a second claim finds nothing");
        assert_eq!(release_upload(&claimed).unwrap(), path, "given back");
        let claimed = claim_upload(&path).unwrap().expect("claimed again");
        let assigned = assign_upload(dir.path(), &claimed, 3).unwrap();
        assert!(assigned.ends_with("imports/import-3.csv") && assigned.exists() && !claimed.exists());
    }

    #[test]
    fn progress_and_time_left() {
        let record = ImportRecord {
            id: 1,
            list_id: None,
            list: String::new(),
            file_name: String::new(),
            status: ImportStatus::Running,
            total_rows: 4000,
            done_rows: 1000,
            imported: 0,
            updated: 0,
            skipped: 0,
            error: String::new(),
            created_at: 100,
            finished_at: None,
        };
        assert_eq!((record.percent(), record.eta_seconds(110)), (25, Some(30)));
        assert_eq!(ImportRecord { done_rows: 0, ..record.clone() }.eta_seconds(110), None);
        assert_eq!(ImportRecord { total_rows: 0, done_rows: 0, ..record.clone() }.percent(), 0);
        let failed = ImportRecord { status: ImportStatus::Failed, ..record };
        assert_eq!((failed.percent(), failed.eta_seconds(110)), (25, None));
    }
}
