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

use std::collections::{HashMap, HashSet};
use std::path::Path;

use rusqlite::{Connection, Transaction};
use serde::Serialize;

use crate::campaign::campaigns;
use crate::campaign::csv_file::{Column, CsvError, LeadReader, RawLead, guess_mapping};
use crate::campaign::leads::{self, LeadFields, Upserted};
use crate::campaign::validate::{self, SkipReason};
use crate::dns::resolver::{LookupError, Resolver};
use crate::error::{Error, Result};
use crate::store::Store;
use crate::suppression;

/// Rows per write transaction.
const CHUNK: usize = 5000;
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
    store
        .write(move |tx| {
            let list_id = leads::list_id_or_create(tx, workspace, &list, now)?;
            tx.execute(
                "INSERT INTO lead_imports (workspace_id, list_id, file_name, total_rows, created_at) \
                 VALUES (?1, ?2, ?3, ?4, ?5)",
                (workspace, list_id, name, total, now),
            )?;
            Ok(tx.last_insert_rowid())
        })
        .await
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
            return Err(Error::invalid("mapping", "No column is mapped to email."));
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
