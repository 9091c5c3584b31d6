//! Creating mailboxes in bulk, resetting passwords, and the one-time credential batch.
//!
//! Bulk creation draws people's names (see [`names`]) avoiding the domain's existing local parts,
//! generates a password per mailbox and hashes them on all cores, then inserts every mailbox in
//! one transaction: all of them or none. The plaintext passwords leave the process only twice:
//! in the response to the creating request, and in the downloads of the credential batch, which
//! is sealed under the master key and belongs to the user who was shown the passwords: it can
//! be downloaded in every format while that user stays on the credentials page, and is deleted
//! when they open any other page ([`discard_batches_of`]) or after [`BATCH_SECONDS`].

use serde::{Deserialize, Serialize};

use super::export::ExportRow;
use super::{Mailbox, Status, get, names, password};
use crate::app::App;
use crate::audit;
use crate::auth::password::hash_mailbox_password;
use crate::error::{Error, Result};
use crate::workspaces::{Access, Role};

pub const MAX_BULK: usize = 500;
/// How long a credential batch can be downloaded at most.
pub const BATCH_SECONDS: i64 = 15 * 60;
const BATCH_CONTEXT: &str = "credential-batch";

/// A mailbox with the password it was just given.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Credential {
    pub email: String,
    pub password: String,
}

/// What a creation or reset hands back: the mailboxes, their passwords, and the batch to download once.
#[derive(Debug, Clone)]
pub struct Issued {
    pub mailboxes: Vec<Mailbox>,
    pub credentials: Vec<Credential>,
    pub batch_id: Option<i64>,
}

/// Checks the requested count.
pub fn check_count(count: usize) -> Result<()> {
    if !(1..=MAX_BULK).contains(&count) {
        return Err(Error::invalid("count", format!("Create between 1 and {MAX_BULK} mailboxes at a time.")));
    }
    Ok(())
}

/// Creates `count` mailboxes on a domain of the workspace, each with `daily_limit` (`None`: the
/// workspace's default daily limit). With `keep_batch` the credentials are also kept (sealed)
/// for one download.
pub async fn create_bulk(
    app: &App,
    access: &Access,
    domain_id: i64,
    count: usize,
    daily_limit: Option<u32>,
    keep_batch: bool,
) -> Result<Issued> {
    access.workspace.role.require(Role::Member)?;
    check_count(count)?;
    daily_limit.map(super::check_daily_limit).transpose()?;
    let workspace = access.workspace.id;
    let (domain, taken) = app
        .store
        .read(move |conn| {
            let domain = crate::domains::get(conn, workspace, domain_id)?;
            let taken = super::local_parts(conn, domain_id)?;
            Ok::<_, Error>((domain, taken))
        })
        .await?;
    let people = names::generate_people(count, &taken).map_err(|e| Error::invalid("count", e.to_string()))?;
    let credentials: Vec<Credential> = people
        .iter()
        .map(|p| Credential {
            email: format!("{}@{}", p.local_part, domain.name),
            password: password::generate_password(),
        })
        .collect();
    let hashes = hash_all(credentials.iter().map(|c| c.password.clone()).collect()).await?;
    let sealed = keep_batch.then(|| seal_batch(app, &credentials)).transpose()?;
    let actor = access.actor.clone();
    let now = app.clock.unix();
    let issued_credentials = credentials.clone();
    let (mailboxes, batch_id) = app
        .store
        .write(move |tx| {
            crate::domains::get(tx, workspace, domain_id)?;
            let daily_limit = match daily_limit {
                Some(limit) => limit,
                None => crate::workspaces::default_daily_limit(tx, workspace)?,
            };
            let mut insert = tx.prepare_cached(
                "INSERT INTO mailboxes (workspace_id, domain_id, local_part, address, first_name, last_name, \
                 display_name, password_hash, daily_limit, status, created_at) \
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, 'active', ?10) ON CONFLICT DO NOTHING",
            )?;
            let mut ids = Vec::with_capacity(people.len());
            for ((person, credential), hash) in people.iter().zip(&credentials).zip(&hashes) {
                let inserted = insert.execute((
                    workspace,
                    domain_id,
                    &person.local_part,
                    &credential.email,
                    &person.first_name,
                    &person.last_name,
                    &person.display_name,
                    hash,
                    daily_limit,
                    now,
                ))?;
                if inserted == 0 {
                    return Err(Error::Conflict(format!(
                        "{} was created by someone else meanwhile; nothing was created, please try again.",
                        credential.email
                    )));
                }
                ids.push(tx.last_insert_rowid());
            }
            let batch_id =
                sealed.map(|payload| insert_batch(tx, workspace, actor.user_id, &payload, now)).transpose()?;
            let detail = format!("{} mailboxes, daily limit {daily_limit}", ids.len());
            audit::record(tx, Some(workspace), &actor, "mailbox.create", &domain.name, &detail, now)?;
            let mailboxes = ids.iter().map(|id| get(tx, workspace, *id)).collect::<Result<Vec<_>>>()?;
            Ok((mailboxes, batch_id))
        })
        .await?;
    Ok(Issued { mailboxes, credentials: issued_credentials, batch_id })
}

/// Gives the selected mailboxes new passwords; old ones stop working at once.
pub async fn reset_passwords(app: &App, access: &Access, ids: Vec<i64>) -> Result<Issued> {
    access.workspace.role.require(Role::Member)?;
    let workspace = access.workspace.id;
    let mailboxes = app.store.read(move |conn| super::by_ids(conn, workspace, &ids)).await?;
    if mailboxes.is_empty() {
        return Err(Error::invalid("ids", "Select at least one mailbox."));
    }
    let credentials: Vec<Credential> = mailboxes
        .iter()
        .map(|m| Credential { email: m.address.clone(), password: password::generate_password() })
        .collect();
    let hashes = hash_all(credentials.iter().map(|c| c.password.clone()).collect()).await?;
    let sealed = seal_batch(app, &credentials)?;
    let actor = access.actor.clone();
    let now = app.clock.unix();
    let changed = mailboxes.clone();
    let batch_id = app
        .store
        .write(move |tx| {
            let mut update =
                tx.prepare_cached("UPDATE mailboxes SET password_hash = ?1 WHERE id = ?2 AND workspace_id = ?3")?;
            for (mailbox, hash) in changed.iter().zip(&hashes) {
                update.execute((hash, mailbox.id, workspace))?;
                audit::record(tx, Some(workspace), &actor, "mailbox.password_reset", &mailbox.address, "", now)?;
            }
            Ok::<_, Error>(insert_batch(tx, workspace, actor.user_id, &sealed, now)?)
        })
        .await?;
    Ok(Issued { mailboxes, credentials, batch_id: Some(batch_id) })
}

/// A credential batch of this user as export rows with their passwords, for a download in
/// `format` (audited); `NotFound` when it is gone, expired or another user's. A sequencer's
/// format leaves role mailboxes out.
pub async fn read_batch(app: &App, access: &Access, batch_id: i64, format: &str) -> Result<Vec<ExportRow>> {
    access.workspace.role.require(Role::Member)?;
    let workspace = access.workspace.id;
    let now = app.clock.unix();
    let actor = access.actor.clone();
    let detail = format!("format {format}");
    let (payload, mailboxes) = app
        .store
        .write(move |tx| {
            tx.execute("DELETE FROM credential_batches WHERE expires_at <= ?1", [now])?;
            let payload: Vec<u8> = tx
                .query_row(
                    "SELECT payload_enc FROM credential_batches WHERE id = ?1 AND workspace_id = ?2 \
                     AND user_id IS ?3",
                    (batch_id, workspace, actor.user_id),
                    |row| row.get(0),
                )
                .map_err(|e| match e {
                    rusqlite::Error::QueryReturnedNoRows => Error::NotFound,
                    other => other.into(),
                })?;
            audit::record(tx, Some(workspace), &actor, "mailbox.credentials_download", "credentials", &detail, now)?;
            Ok::<_, Error>((payload, super::list(tx, workspace, None)?))
        })
        .await?;
    let credentials: Vec<Credential> = serde_json::from_slice(&app.keys.open(BATCH_CONTEXT, &payload)?)
        .map_err(|e| Error::Internal(format!("credential batch unreadable: {e}")))?;
    let mut rows = Vec::with_capacity(credentials.len());
    for credential in credentials {
        let exported = |m: &&Mailbox| format == "plain" || m.sends_campaigns();
        if let Some(mailbox) = mailboxes.iter().filter(exported).find(|m| m.address == credential.email) {
            let mut row = super::export_rows(std::slice::from_ref(mailbox)).remove(0);
            row.password = Some(credential.password);
            rows.push(row);
        }
    }
    Ok(rows)
}

/// Deletes the credential batches of a user who has left the credentials page (any other page
/// they open); a lookup only when there is none, so pages cost no write.
pub async fn discard_batches_of(app: &App, user_id: i64) -> Result<()> {
    let held = app.store.read_quick(move |conn| {
        conn.prepare_cached("SELECT EXISTS (SELECT 1 FROM credential_batches WHERE user_id = ?1)")?
            .query_row([user_id], |row| row.get::<_, bool>(0))
    })?;
    if held {
        app.store.write(move |tx| tx.execute("DELETE FROM credential_batches WHERE user_id = ?1", [user_id])).await?;
    }
    Ok(())
}

fn seal_batch(app: &App, credentials: &[Credential]) -> Result<Vec<u8>> {
    let json = serde_json::to_vec(credentials).map_err(|e| Error::Internal(e.to_string()))?;
    Ok(app.keys.seal(BATCH_CONTEXT, &json))
}

fn insert_batch(
    tx: &rusqlite::Transaction,
    workspace: i64,
    user: Option<i64>,
    sealed: &[u8],
    now: i64,
) -> rusqlite::Result<i64> {
    tx.execute(
        "INSERT INTO credential_batches (workspace_id, user_id, payload_enc, created_at, expires_at) \
         VALUES (?1, ?2, ?3, ?4, ?5)",
        (workspace, user, sealed, now, now + BATCH_SECONDS),
    )?;
    Ok(tx.last_insert_rowid())
}

/// Hashes passwords on every core, off the async runtime.
async fn hash_all(passwords: Vec<String>) -> Result<Vec<String>> {
    tokio::task::spawn_blocking(move || {
        let threads = std::thread::available_parallelism().map_or(1, |n| n.get()).min(passwords.len().max(1));
        let chunk = passwords.len().div_ceil(threads).max(1);
        std::thread::scope(|scope| {
            let workers: Vec<_> = passwords
                .chunks(chunk)
                .map(|part| {
                    scope.spawn(move || part.iter().map(|p| hash_mailbox_password(p)).collect::<Result<Vec<_>>>())
                })
                .collect();
            let mut hashes = Vec::with_capacity(passwords.len());
            for worker in workers {
                hashes.extend(worker.join().map_err(|_| Error::Internal("password hashing panicked".into()))??);
            }
            Ok(hashes)
        })
    })
    .await
    .map_err(|e| Error::Internal(e.to_string()))?
}

/// Whether a mailbox status allows sending (used by submission).
pub fn may_send(status: Status) -> bool {
    status != Status::Paused
}
