//! Sending domains. Adding one validates the name (stored in ASCII form), refuses duplicates,
//! generates a DKIM key outside the transaction (RSA generation takes a moment), seals the private
//! key under the master key and stores everything in one transaction with its audit entry.
//! The records to publish are derived from the config and the active key whenever shown.

use rusqlite::{Connection, OptionalExtension};
use serde::Serialize;

use crate::app::App;
use crate::audit;
use crate::config::Config;
use crate::dns::dkim::{self, DkimAlgorithm};
use crate::dns::name::{display_domain, normalize_domain};
use crate::dns::records::{DnsRecord, RecordInputs, bind_zone, expected_records};
use crate::error::{Error, Result};
use crate::workspaces::{Access, Role};

/// The sealing context of DKIM private keys.
pub const DKIM_SEAL_CONTEXT: &str = "dkim-private-key";

#[derive(Debug, Clone, Serialize)]
pub struct Domain {
    pub id: i64,
    /// ASCII (punycode) form, as used on the wire.
    pub name: String,
    /// Unicode form, for people.
    pub display_name: String,
    pub created_at: i64,
    pub mailbox_count: i64,
    pub dkim_selector: String,
    pub dkim_algorithm: String,
    pub dkim_public_key: String,
}

const SELECT: &str = "SELECT d.id, d.name, d.created_at, \
    (SELECT count(*) FROM mailboxes m WHERE m.domain_id = d.id), k.selector, k.algorithm, k.public_key \
    FROM domains d JOIN dkim_keys k ON k.domain_id = d.id AND k.active = 1";

fn from_row(row: &rusqlite::Row<'_>) -> rusqlite::Result<Domain> {
    let name: String = row.get(1)?;
    Ok(Domain {
        id: row.get(0)?,
        display_name: display_domain(&name),
        name,
        created_at: row.get(2)?,
        mailbox_count: row.get(3)?,
        dkim_selector: row.get(4)?,
        dkim_algorithm: row.get(5)?,
        dkim_public_key: row.get(6)?,
    })
}

/// A workspace's domains, by name.
pub fn list(conn: &Connection, workspace: i64) -> rusqlite::Result<Vec<Domain>> {
    let mut stmt = conn.prepare_cached(&format!("{SELECT} WHERE d.workspace_id = ?1 ORDER BY d.name"))?;
    stmt.query_map([workspace], from_row)?.collect()
}

/// One domain of a workspace; `NotFound` for another workspace's.
pub fn get(conn: &Connection, workspace: i64, id: i64) -> Result<Domain> {
    conn.query_row(&format!("{SELECT} WHERE d.workspace_id = ?1 AND d.id = ?2"), (workspace, id), from_row)
        .optional()?
        .ok_or(Error::NotFound)
}

/// One domain of a workspace by name (Unicode or ASCII form).
pub fn find_by_name(conn: &Connection, workspace: i64, name: &str) -> Result<Domain> {
    let ascii = normalize_domain(name).map_err(|_| Error::NotFound)?;
    conn.query_row(&format!("{SELECT} WHERE d.workspace_id = ?1 AND d.name = ?2"), (workspace, ascii), from_row)
        .optional()?
        .ok_or(Error::NotFound)
}

/// Adds a domain to the workspace with a fresh DKIM key.
pub async fn add(app: &App, access: &Access, input: &str, algorithm: DkimAlgorithm) -> Result<Domain> {
    access.workspace.role.require(Role::Member)?;
    let name = normalize_domain(input).map_err(|e| Error::invalid("name", e.to_string()))?;
    let workspace = access.workspace.id;
    let lookup = name.clone();
    if let Some(owner) = app
        .store
        .read(move |conn| {
            conn.query_row("SELECT workspace_id FROM domains WHERE name = ?1", [lookup], |row| row.get::<_, i64>(0))
                .optional()
        })
        .await?
    {
        return Err(duplicate(&name, owner == workspace));
    }
    let today = app.clock.now().date_naive();
    let key = tokio::task::spawn_blocking(move || dkim::generate(algorithm, today))
        .await
        .map_err(|e| Error::Internal(e.to_string()))?
        .map_err(|e| Error::Internal(e.to_string()))?;
    let sealed = app.keys.seal(DKIM_SEAL_CONTEXT, &key.private_pkcs8_der);
    let actor = access.actor.clone();
    let now = app.clock.unix();
    app.store
        .write(move |tx| {
            let owner: Option<i64> = tx
                .query_row("SELECT workspace_id FROM domains WHERE name = ?1", [&name], |row| row.get(0))
                .optional()?;
            if let Some(owner) = owner {
                return Err(duplicate(&name, owner == workspace));
            }
            tx.execute(
                "INSERT INTO domains (workspace_id, name, created_at) VALUES (?1, ?2, ?3)",
                (workspace, &name, now),
            )?;
            let id = tx.last_insert_rowid();
            tx.execute(
                "INSERT INTO dkim_keys (domain_id, selector, algorithm, private_key_enc, public_key, created_at) \
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                (id, &key.selector, key.algorithm.as_str(), &sealed, &key.public_key_b64, now),
            )?;
            let detail = format!("DKIM {} selector {}", key.algorithm.as_str(), key.selector);
            audit::record(tx, Some(workspace), &actor, "domain.add", &name, &detail, now)?;
            get(tx, workspace, id)
        })
        .await
}

fn duplicate(name: &str, same_workspace: bool) -> Error {
    if same_workspace {
        Error::Conflict(format!("{} is already added to this workspace.", display_domain(name)))
    } else {
        Error::Conflict(format!("{} is already in use on this appliance.", display_domain(name)))
    }
}

/// The records to publish for a domain.
pub fn records(config: &Config, domain: &Domain) -> Vec<DnsRecord> {
    let algorithm: DkimAlgorithm = domain.dkim_algorithm.parse().unwrap_or_default();
    let dkim_txt = dkim::txt_value(algorithm, &domain.dkim_public_key);
    expected_records(&RecordInputs {
        domain: &domain.name,
        hostname: &config.hostname,
        public_ips: &config.public_ips,
        dkim_selector: &domain.dkim_selector,
        dkim_txt: &dkim_txt,
    })
}

/// The records as a BIND zone snippet.
pub fn zone(config: &Config, domain: &Domain) -> String {
    bind_zone(&domain.name, &records(config, domain))
}

/// The records as text for a terminal: one block per record.
pub fn records_text(config: &Config, domain: &Domain) -> String {
    let mut out = String::new();
    for record in records(config, domain) {
        out.push_str(&format!("{} ({})\n  name:  {}\n", record.purpose, record.kind, record.name));
        if let Some(priority) = record.priority {
            out.push_str(&format!("  priority: {priority}\n"));
        }
        out.push_str(&format!("  value: {}\n\n", record.value));
    }
    out
}
