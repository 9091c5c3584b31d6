//! Sending domains. Adding one validates the name (stored in ASCII form), refuses duplicates,
//! generates a DKIM key outside the transaction (RSA generation takes a moment), seals the private
//! key under the master key and stores everything in one transaction with its audit entry.
//! The records to publish are derived from the config and the active key whenever shown.
//!
//! A domain may be given an egress address (`source_ip`): one of `[delivery] source_ips`, which
//! delivery binds to before connecting; NULL means automatic (a stable hash of the domain over
//! the configured addresses, see `mta::deliver::session`).
//!
//! Role mail (`postmaster@`, `abuse@`, `dmarc-reports@`, see `mailbox::resolve` rule 7) goes to
//! the domain's role mailbox (`role_mailbox_id`), chosen when the domain is added: by default a
//! dedicated `postmaster@DOMAIN` mailbox marked as a role mailbox, created in the same write as
//! the domain (its password hash, like the DKIM key, is made before the write), or an existing
//! mailbox of the workspace. An admin can point it at another mailbox later.

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
    /// The assigned egress address; `None`: automatic.
    pub source_ip: Option<String>,
    /// The mailbox chosen for role mail; `None` (domains from before the choice, or the mailbox
    /// was removed): the fallbacks of `mailbox::resolve` rule 7.
    pub role_mailbox_id: Option<i64>,
    /// That mailbox's address.
    pub role_mailbox: Option<String>,
}

/// Where a domain's role mail goes, as chosen when adding it or on its page.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RoleChoice {
    /// A dedicated `postmaster@DOMAIN` role mailbox (made when missing).
    Dedicated,
    /// An existing mailbox of the workspace, by id.
    Mailbox(i64),
    /// An existing mailbox of the workspace, by address (the command line).
    Address(String),
}

impl RoleChoice {
    /// A form's value: "dedicated" (or empty) or a mailbox id.
    pub fn from_form(input: &str) -> Result<RoleChoice> {
        match input.trim() {
            "" | "dedicated" => Ok(RoleChoice::Dedicated),
            id => id.parse().map(RoleChoice::Mailbox).map_err(|_| not_in_workspace()),
        }
    }

    /// A command line's value: "dedicated" or a mailbox address.
    pub fn from_cli(input: Option<&str>) -> RoleChoice {
        match input.map(str::trim) {
            None | Some("" | "dedicated") => RoleChoice::Dedicated,
            Some(address) => RoleChoice::Address(address.to_lowercase()),
        }
    }
}

fn not_in_workspace() -> Error {
    Error::invalid(
        "role_mailbox",
        "Choose a mailbox of this workspace for role mail, or a dedicated postmaster mailbox.",
    )
}

const SELECT: &str = "SELECT d.id, d.name, d.created_at, k.selector, k.algorithm, k.public_key, d.source_ip, \
    d.role_mailbox_id, d.workspace_id FROM domains d JOIN dkim_keys k ON k.domain_id = d.id AND k.active = 1";

fn from_row(row: &rusqlite::Row<'_>) -> rusqlite::Result<Domain> {
    let name: String = row.get(1)?;
    Ok(Domain {
        id: row.get(0)?,
        display_name: display_domain(&name),
        name,
        created_at: row.get(2)?,
        mailbox_count: 0,
        dkim_selector: row.get(3)?,
        dkim_algorithm: row.get(4)?,
        dkim_public_key: row.get(5)?,
        source_ip: row.get(6)?,
        role_mailbox_id: row.get(7)?,
        role_mailbox: None,
    })
}

/// The domain with its mailbox count and role mailbox address filled in.
fn counted(conn: &Connection, workspace: i64, mut domain: Domain) -> Result<Domain> {
    domain.mailbox_count = crate::mailbox::count_on_domain(conn, domain.id)?;
    domain.role_mailbox = match domain.role_mailbox_id {
        Some(id) => crate::mailbox::get(conn, workspace, id).ok().map(|m| m.address),
        None => None,
    };
    if domain.role_mailbox.is_none() {
        domain.role_mailbox_id = None;
    }
    Ok(domain)
}

/// A workspace's domains, by name.
pub fn list(conn: &Connection, workspace: i64) -> Result<Vec<Domain>> {
    let mut stmt = conn.prepare_cached(&format!("{SELECT} WHERE d.workspace_id = ?1 ORDER BY d.name"))?;
    let found = stmt.query_map([workspace], from_row)?.collect::<rusqlite::Result<Vec<_>>>()?;
    found.into_iter().map(|domain| counted(conn, workspace, domain)).collect()
}

/// A search of a workspace's domains for one page of the list.
#[derive(Debug, Clone, Default)]
pub struct Search {
    /// Part of the name, in either form and any case; empty: all.
    pub text: String,
    /// `ORDER BY` text from the list's declared columns ([`SORT_COLUMNS`]).
    pub order_by: String,
    pub limit: i64,
    pub offset: i64,
}

/// The domain list's sortable columns: URL name and SQL expression.
pub const SORT_COLUMNS: &[(&str, &str)] = &[
    ("name", "d.name"),
    ("mailboxes", "(SELECT count(*) FROM mailboxes WHERE mailboxes.domain_id = d.id)"),
    ("dkim", "k.algorithm"),
    ("created", "d.created_at"),
];

const MATCHES: &str =
    "d.workspace_id = ?1 AND (?2 = '' OR instr(display_domain(d.name), ?2) > 0 OR instr(d.name, ?3) > 0)";

/// The search text as typed (lowercase), matched against names as people read them (so "büch"
/// finds `xn--bcher-kva.test`), and in ASCII form (so "xn--bcher" does too).
fn search_terms(text: &str) -> (String, String) {
    let typed = text.trim().to_lowercase();
    let ascii = normalize_domain(&typed).unwrap_or_else(|_| typed.clone());
    (typed, ascii)
}

/// How many domains match `search`, over all pages.
pub fn count_matching(conn: &Connection, workspace: i64, search: &Search) -> Result<i64> {
    let (typed, ascii) = search_terms(&search.text);
    Ok(conn
        .prepare_cached(&format!("SELECT count(*) FROM domains d WHERE {MATCHES}"))?
        .query_row((workspace, typed, ascii), |row| row.get(0))?)
}

/// One page of domains matching `search`, with their mailbox counts.
pub fn search(conn: &Connection, workspace: i64, search: &Search) -> Result<Vec<Domain>> {
    let order_by = if search.order_by.is_empty() { "d.name ASC" } else { &search.order_by };
    let mut stmt =
        conn.prepare_cached(&format!("{SELECT} WHERE {MATCHES} ORDER BY {order_by}, d.id LIMIT ?4 OFFSET ?5"))?;
    let (typed, ascii) = search_terms(&search.text);
    let found = stmt
        .query_map((workspace, typed, ascii, search.limit, search.offset), from_row)?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    found.into_iter().map(|domain| counted(conn, workspace, domain)).collect()
}

/// Whether `name` (ASCII, lowercase) is a domain of this appliance, in any workspace.
pub fn is_local(conn: &Connection, name: &str) -> rusqlite::Result<bool> {
    conn.prepare_cached("SELECT EXISTS (SELECT 1 FROM domains WHERE name = ?1)")?.query_row([name], |row| row.get(0))
}

/// One domain of a workspace; `NotFound` for another workspace's.
pub fn get(conn: &Connection, workspace: i64, id: i64) -> Result<Domain> {
    let domain = conn
        .query_row(&format!("{SELECT} WHERE d.workspace_id = ?1 AND d.id = ?2"), (workspace, id), from_row)
        .optional()?
        .ok_or(Error::NotFound)?;
    counted(conn, workspace, domain)
}

/// One domain of a workspace by name (Unicode or ASCII form).
pub fn find_by_name(conn: &Connection, workspace: i64, name: &str) -> Result<Domain> {
    let ascii = normalize_domain(name).map_err(|_| Error::NotFound)?;
    let domain = conn
        .query_row(&format!("{SELECT} WHERE d.workspace_id = ?1 AND d.name = ?2"), (workspace, ascii), from_row)
        .optional()?
        .ok_or(Error::NotFound)?;
    counted(conn, workspace, domain)
}

/// Adds a domain to the workspace with a fresh DKIM key, its role mail going where `role`
/// says (a dedicated role mailbox is created in the same write).
pub async fn add(
    app: &App,
    access: &Access,
    input: &str,
    algorithm: DkimAlgorithm,
    role: RoleChoice,
) -> Result<Domain> {
    access.workspace.role.require(Role::Member)?;
    let name = normalize_domain(input).map_err(|e| Error::invalid("name", e.to_string()))?;
    let workspace = access.workspace.id;
    let (lookup, choice) = (name.clone(), role.clone());
    let owner = app
        .store
        .read(move |conn| {
            chosen_mailbox(conn, workspace, &choice)?;
            Ok::<_, Error>(
                conn.query_row("SELECT workspace_id FROM domains WHERE name = ?1", [lookup], |row| {
                    row.get::<_, i64>(0)
                })
                .optional()?,
            )
        })
        .await?;
    if let Some(owner) = owner {
        return Err(duplicate(&name, owner == workspace));
    }
    let today = app.clock.now().date_naive();
    let key = tokio::task::spawn_blocking(move || dkim::generate(algorithm, today))
        .await
        .map_err(|e| Error::Internal(e.to_string()))?
        .map_err(|e| Error::Internal(e.to_string()))?;
    let sealed = app.keys.seal(DKIM_SEAL_CONTEXT, &key.private_pkcs8_der);
    let role_hash = role_password_hash(&role).await?;
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
            let role_mail = route_role_mail(tx, workspace, id, &name, &role, role_hash.as_deref(), now)?;
            let detail = format!("DKIM {} selector {}, {role_mail}", key.algorithm.as_str(), key.selector);
            audit::record(tx, Some(workspace), &actor, "domain.add", &name, &detail, now)?;
            get(tx, workspace, id)
        })
        .await
}

/// Points the domain's role mail at `role` (creating the dedicated role mailbox when it is
/// missing), with an audit entry. Needs the admin role.
pub async fn set_role_mailbox(app: &App, access: &Access, id: i64, role: RoleChoice) -> Result<Domain> {
    access.workspace.role.require(Role::Admin)?;
    let workspace = access.workspace.id;
    let choice = role.clone();
    app.store
        .read(move |conn| {
            get(conn, workspace, id)?;
            chosen_mailbox(conn, workspace, &choice)
        })
        .await?;
    let role_hash = role_password_hash(&role).await?;
    let (actor, now) = (access.actor.clone(), app.clock.unix());
    app.store
        .write(move |tx| {
            let domain = get(tx, workspace, id)?;
            let detail = route_role_mail(tx, workspace, id, &domain.name, &role, role_hash.as_deref(), now)?;
            audit::record(tx, Some(workspace), &actor, "domain.role_mailbox", &domain.name, &detail, now)?;
            get(tx, workspace, id)
        })
        .await
}

/// The id of the existing mailbox `choice` names; `None` for a dedicated one; a user error
/// when it is not a mailbox of the workspace.
fn chosen_mailbox(conn: &Connection, workspace: i64, choice: &RoleChoice) -> Result<Option<i64>> {
    let found = match choice {
        RoleChoice::Dedicated => return Ok(None),
        RoleChoice::Mailbox(id) => crate::mailbox::belongs_to(conn, workspace, *id)?.then_some(*id),
        RoleChoice::Address(address) => crate::mailbox::id_in_workspace(conn, workspace, address)?,
    };
    found.map(Some).ok_or_else(not_in_workspace)
}

/// A hash of a password nobody is shown, for a dedicated role mailbox that may be created.
async fn role_password_hash(role: &RoleChoice) -> Result<Option<String>> {
    if *role != RoleChoice::Dedicated {
        return Ok(None);
    }
    let hash = tokio::task::spawn_blocking(|| {
        crate::auth::password::hash_mailbox_password(&crate::mailbox::password::generate_password())
    })
    .await
    .map_err(|e| Error::Internal(e.to_string()))??;
    Ok(Some(hash))
}

/// Sets `role_mailbox_id` of domain `id` as `role` says, creating the dedicated role mailbox
/// (with `role_hash`) unless it exists; returns the audit wording ("role mail to ...").
fn route_role_mail(
    tx: &Connection,
    workspace: i64,
    id: i64,
    name: &str,
    role: &RoleChoice,
    role_hash: Option<&str>,
    now: i64,
) -> Result<String> {
    let mailbox = match chosen_mailbox(tx, workspace, role)? {
        Some(mailbox) => mailbox,
        None => dedicated_mailbox(tx, workspace, id, name, role_hash.unwrap_or_default(), now)?,
    };
    tx.execute(
        "UPDATE domains SET role_mailbox_id = ?1 WHERE id = ?2 AND workspace_id = ?3",
        (mailbox, id, workspace),
    )?;
    let address = crate::mailbox::get(tx, workspace, mailbox)?.address;
    let kind = if *role == RoleChoice::Dedicated { " (dedicated)" } else { "" };
    Ok(format!("role mail to {address}{kind}"))
}

/// The domain's dedicated role mailbox: the existing `postmaster@` role mailbox, else a new one.
fn dedicated_mailbox(tx: &Connection, workspace: i64, id: i64, name: &str, hash: &str, now: i64) -> Result<i64> {
    let address = format!("{}@{name}", crate::mailbox::ROLE_MAILBOX_LOCAL_PART);
    match crate::mailbox::id_in_workspace(tx, workspace, &address)? {
        Some(existing) if crate::mailbox::get(tx, workspace, existing)?.role => Ok(existing),
        Some(_) => Err(Error::invalid(
            "role_mailbox",
            format!("There is already an ordinary mailbox {address}: choose it from the list to send role mail there."),
        )),
        None => crate::mailbox::insert_role_mailbox(tx, workspace, id, name, hash, now),
    }
}

/// Assigns `input` (an address of `[delivery] source_ips`, or "auto" / empty for automatic) as
/// the domain's egress address, with an audit entry. Needs the admin role.
pub async fn set_source_ip(app: &App, access: &Access, id: i64, input: &str) -> Result<Domain> {
    access.workspace.role.require(Role::Admin)?;
    let source_ip = parse_source_ip(&app.config.delivery.source_ips, input)?;
    let (workspace, actor, now) = (access.workspace.id, access.actor.clone(), app.clock.unix());
    app.store
        .write(move |tx| {
            let domain = get(tx, workspace, id)?;
            tx.execute(
                "UPDATE domains SET source_ip = ?1 WHERE id = ?2 AND workspace_id = ?3",
                (&source_ip, id, workspace),
            )?;
            let detail = format!("egress address {}", source_ip.as_deref().unwrap_or("automatic"));
            audit::record(tx, Some(workspace), &actor, "domain.source_ip", &domain.name, &detail, now)?;
            get(tx, workspace, id)
        })
        .await
}

/// Removes a domain with its DKIM keys and aliases, with an audit entry. Refused while mailboxes
/// live on it (they hold mail): remove them first. Needs the admin role.
pub async fn remove(app: &App, access: &Access, id: i64) -> Result<Domain> {
    access.workspace.role.require(Role::Admin)?;
    let (workspace, actor, now) = (access.workspace.id, access.actor.clone(), app.clock.unix());
    app.store
        .write(move |tx| {
            let domain = get(tx, workspace, id)?;
            if domain.mailbox_count > 0 {
                return Err(Error::invalid(
                    "domain",
                    format!(
                        "{} still has {} mailboxes; remove them first (their mail goes with them).",
                        domain.display_name, domain.mailbox_count
                    ),
                ));
            }
            tx.execute("DELETE FROM domains WHERE id = ?1 AND workspace_id = ?2", (id, workspace))?;
            audit::record(tx, Some(workspace), &actor, "domain.remove", &domain.name, "", now)?;
            Ok(domain)
        })
        .await
}

/// "auto" or "" → `None`; otherwise an address that must be one of `configured`, in its
/// canonical form.
pub fn parse_source_ip(configured: &[String], input: &str) -> Result<Option<String>> {
    let input = input.trim();
    if input.is_empty() || input.eq_ignore_ascii_case("auto") || input.eq_ignore_ascii_case("automatic") {
        return Ok(None);
    }
    let ip: std::net::IpAddr =
        input.parse().map_err(|_| Error::invalid("source_ip", format!("\"{input}\" is not an IP address.")))?;
    if configured.is_empty() {
        return Err(Error::invalid(
            "source_ip",
            "No source addresses are configured: list them in source_ips under [delivery] in the configuration first.",
        ));
    }
    if !configured.iter().any(|c| c.parse::<std::net::IpAddr>().is_ok_and(|c| c == ip)) {
        return Err(Error::invalid(
            "source_ip",
            format!(
                "{ip} is not one of the configured source addresses ([delivery] source_ips: {}).",
                configured.join(", ")
            ),
        ));
    }
    Ok(Some(ip.to_string()))
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_source_ip_must_be_configured_or_automatic() {
        let configured = vec!["127.0.0.5".to_string(), "2001:db8::1".to_string()];
        assert_eq!(parse_source_ip(&configured, "auto").unwrap(), None);
        assert_eq!(parse_source_ip(&configured, " ").unwrap(), None);
        assert_eq!(parse_source_ip(&configured, "127.0.0.5").unwrap().as_deref(), Some("127.0.0.5"));
        assert_eq!(parse_source_ip(&configured, "2001:DB8:0::1").unwrap().as_deref(), Some("2001:db8::1"));
        let other = parse_source_ip(&configured, "127.0.0.6").unwrap_err().to_string();
        assert!(other.contains("not one of the configured") && other.contains("127.0.0.5"), "{other}");
        assert!(parse_source_ip(&configured, "mail.test").unwrap_err().to_string().contains("not an IP"));
        assert!(parse_source_ip(&[], "127.0.0.5").unwrap_err().to_string().contains("No source addresses"));
    }
}
