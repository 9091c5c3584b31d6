//! Mailboxes: addresses on a workspace's domains that send (SMTP submission) and receive (IMAP).
//! Each has a display name, a daily limit, a status and a password stored only as an argon2id
//! hash. Creation and password resets are in [`create`]; exports in [`export`]; signing in in
//! [`login`] and [`sasl`]; which mailboxes an address reaches in [`resolve`].
//!
//! This module owns the `mailboxes` table: every statement on it is here or in a submodule, and
//! the rest of the appliance asks these functions.

pub mod create;
pub mod export;
pub mod login;
pub mod names;
pub mod password;
pub mod resolve;
pub mod sasl;

use std::fmt;
use std::str::FromStr;

use rusqlite::{Connection, OptionalExtension};
use serde::Serialize;

use crate::app::App;
use crate::audit;
use crate::config::Config;
use crate::error::{Error, Result};
use crate::workspaces::{Access, Role};

/// The default daily limit of a new workspace (`workspaces.default_daily_limit`); a new mailbox
/// takes its workspace's ([`crate::workspaces::default_daily_limit`]) unless given one.
pub const DEFAULT_DAILY_LIMIT: u32 = 40;
pub const MAX_DAILY_LIMIT: u32 = 10_000;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    Active,
    Warming,
    Paused,
}

impl Status {
    pub const ALL: [Status; 3] = [Status::Active, Status::Warming, Status::Paused];

    /// What the status means, in a sentence for the place where it is chosen.
    pub fn meaning(self) -> &'static str {
        match self {
            Status::Active => "Sends up to its daily limit; exports tell the sequencer to run no warmup on it.",
            Status::Warming => {
                "Being warmed up: sends up to its daily limit as an active mailbox does, and exports tell \
                 Instantly and Smartlead to run their warmup on it (Warmup Enabled TRUE, 20 warmup emails a \
                 day, 2 more each day)."
            }
            Status::Paused => {
                "Sends nothing: submission refuses its mail until it is set active again. It still receives mail."
            }
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Status::Active => "active",
            Status::Warming => "warming",
            Status::Paused => "paused",
        }
    }
}

impl fmt::Display for Status {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Status {
    type Err = Error;

    fn from_str(s: &str) -> Result<Status> {
        Status::ALL
            .into_iter()
            .find(|status| status.as_str() == s.trim())
            .ok_or_else(|| Error::invalid("status", "Choose active, warming or paused."))
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct Mailbox {
    pub id: i64,
    pub domain_id: i64,
    pub address: String,
    pub first_name: String,
    pub last_name: String,
    pub display_name: String,
    pub daily_limit: u32,
    /// Messages per minute this mailbox may submit (0: no limit).
    pub per_minute: u32,
    pub status: Status,
    pub created_at: i64,
    /// A role mailbox (`postmaster@`, made with its domain) receives the domain's role
    /// addresses and is read over IMAP; it never sends campaigns ([`Mailbox::sends_campaigns`]).
    pub role: bool,
}

impl Mailbox {
    /// Whether this mailbox may go into a sequencer export or a campaign's rotation pool: every
    /// mailbox but a role mailbox. The SQL form is [`SENDS_CAMPAIGNS`]; whatever chooses the
    /// mailboxes a campaign sends from must use one of the two.
    pub fn sends_campaigns(&self) -> bool {
        !self.role
    }
}

/// The condition on `mailboxes` rows that [`Mailbox::sends_campaigns`] states: the one filter
/// for exports and rotation pools.
pub const SENDS_CAMPAIGNS: &str = "mailboxes.role = 0";

/// The local part of the dedicated role mailbox made with a domain.
pub const ROLE_MAILBOX_LOCAL_PART: &str = "postmaster";

const SELECT: &str = "SELECT id, domain_id, address, first_name, last_name, display_name, daily_limit, status, \
    created_at, workspace_id, per_minute, role FROM mailboxes";

fn from_row(row: &rusqlite::Row<'_>) -> rusqlite::Result<Mailbox> {
    let status: String = row.get(7)?;
    Ok(Mailbox {
        id: row.get(0)?,
        domain_id: row.get(1)?,
        address: row.get(2)?,
        first_name: row.get(3)?,
        last_name: row.get(4)?,
        display_name: row.get(5)?,
        daily_limit: row.get(6)?,
        status: status
            .parse()
            .map_err(|_| rusqlite::Error::InvalidColumnType(7, status, rusqlite::types::Type::Text))?,
        created_at: row.get(8)?,
        per_minute: row.get(10)?,
        role: row.get(11)?,
    })
}

/// A workspace's mailboxes, optionally on one domain, by address.
pub fn list(conn: &Connection, workspace: i64, domain: Option<i64>) -> rusqlite::Result<Vec<Mailbox>> {
    let mut stmt = conn.prepare_cached(&format!(
        "{SELECT} WHERE workspace_id = ?1 AND (?2 IS NULL OR domain_id = ?2) ORDER BY address"
    ))?;
    stmt.query_map((workspace, domain), from_row)?.collect()
}

/// The mailboxes of a workspace (optionally of one domain) that may be exported to a sequencer
/// or put in a rotation pool ([`SENDS_CAMPAIGNS`]), by address.
pub fn senders(conn: &Connection, workspace: i64, domain: Option<i64>) -> rusqlite::Result<Vec<Mailbox>> {
    let mut stmt = conn.prepare_cached(&format!(
        "{SELECT} WHERE workspace_id = ?1 AND (?2 IS NULL OR domain_id = ?2) AND {SENDS_CAMPAIGNS} ORDER BY address"
    ))?;
    stmt.query_map((workspace, domain), from_row)?.collect()
}

/// Inserts the dedicated role mailbox `postmaster@DOMAIN` of a new domain (inside the domain's
/// own write) with `password_hash` (of a password nobody is shown: set one with a reset to read
/// it over IMAP) and the workspace's default daily limit; returns its id.
pub fn insert_role_mailbox(
    tx: &Connection,
    workspace: i64,
    domain_id: i64,
    domain: &str,
    password_hash: &str,
    now: i64,
) -> Result<i64> {
    let address = format!("{ROLE_MAILBOX_LOCAL_PART}@{domain}");
    let daily_limit = crate::workspaces::default_daily_limit(tx, workspace)?;
    let inserted = tx.execute(
        "INSERT INTO mailboxes (workspace_id, domain_id, local_part, address, first_name, last_name, \
         display_name, password_hash, daily_limit, status, role, created_at) \
         VALUES (?1, ?2, ?3, ?4, 'Postmaster', '', 'Postmaster', ?5, ?6, 'active', 1, ?7) ON CONFLICT DO NOTHING",
        (workspace, domain_id, ROLE_MAILBOX_LOCAL_PART, &address, password_hash, daily_limit, now),
    )?;
    if inserted == 0 {
        return Err(Error::Conflict(format!(
            "The address {address} is already taken: choose that mailbox for role mail instead."
        )));
    }
    Ok(tx.last_insert_rowid())
}

/// A search of a workspace's mailboxes for one page of the list.
#[derive(Debug, Clone, Default)]
pub struct Search {
    /// Part of the address or display name, in any case; empty: all.
    pub text: String,
    pub domain: Option<i64>,
    pub status: Option<Status>,
    /// `ORDER BY` text from the list's declared columns ([`SORT_COLUMNS`]).
    pub order_by: String,
    pub limit: i64,
    pub offset: i64,
}

/// The mailbox list's sortable columns: URL name and SQL expression.
pub const SORT_COLUMNS: &[(&str, &str)] = &[
    ("address", "address"),
    ("name", "display_name COLLATE NOCASE"),
    ("domain", "(SELECT name FROM domains WHERE domains.id = mailboxes.domain_id)"),
    ("limit", "daily_limit"),
    ("status", "status"),
    ("created", "created_at"),
];

const MATCHES: &str = "workspace_id = ?1 AND (?2 IS NULL OR domain_id = ?2) AND (?3 IS NULL OR status = ?3) \
    AND (?4 = '' OR instr(lower(address), lower(?4)) > 0 OR instr(lower(display_name), lower(?4)) > 0)";

/// How many mailboxes match `search`, over all pages.
pub fn count_matching(conn: &Connection, workspace: i64, search: &Search) -> rusqlite::Result<i64> {
    conn.prepare_cached(&format!("SELECT count(*) FROM mailboxes WHERE {MATCHES}"))?
        .query_row((workspace, search.domain, search.status.map(Status::as_str), search.text.trim()), |row| row.get(0))
}

/// One page of mailboxes matching `search`.
pub fn search(conn: &Connection, workspace: i64, search: &Search) -> rusqlite::Result<Vec<Mailbox>> {
    let order_by = if search.order_by.is_empty() { "address ASC" } else { &search.order_by };
    let mut stmt =
        conn.prepare_cached(&format!("{SELECT} WHERE {MATCHES} ORDER BY {order_by}, id LIMIT ?5 OFFSET ?6"))?;
    let status = search.status.map(Status::as_str);
    let params = (workspace, search.domain, status, search.text.trim(), search.limit, search.offset);
    stmt.query_map(params, from_row)?.collect()
}

/// Mailboxes of a workspace by id; ids of other workspaces are silently absent.
pub fn by_ids(conn: &Connection, workspace: i64, ids: &[i64]) -> rusqlite::Result<Vec<Mailbox>> {
    let mut stmt = conn.prepare_cached(&format!("{SELECT} WHERE workspace_id = ?1 AND id = ?2"))?;
    let mut found = Vec::with_capacity(ids.len());
    for id in ids {
        if let Some(mailbox) = stmt.query_row((workspace, id), from_row).optional()? {
            found.push(mailbox);
        }
    }
    found.sort_by(|a, b| a.address.cmp(&b.address));
    found.dedup_by_key(|m| m.id);
    Ok(found)
}

/// One mailbox of a workspace; `NotFound` for another workspace's.
pub fn get(conn: &Connection, workspace: i64, id: i64) -> Result<Mailbox> {
    conn.query_row(&format!("{SELECT} WHERE workspace_id = ?1 AND id = ?2"), (workspace, id), from_row)
        .optional()?
        .ok_or(Error::NotFound)
}

/// One mailbox by address, in whichever workspace (the command line acts as the operator).
pub fn find_by_address(conn: &Connection, address: &str) -> Result<(i64, Mailbox)> {
    conn.query_row(&format!("{SELECT} WHERE address = ?1"), [address.trim().to_lowercase()], |row| {
        Ok((row.get(9)?, from_row(row)?))
    })
    .optional()?
    .ok_or(Error::NotFound)
}

/// The address of a mailbox, if it still exists.
pub fn address_of(conn: &Connection, id: i64) -> rusqlite::Result<Option<String>> {
    conn.prepare_cached("SELECT address FROM mailboxes WHERE id = ?1")?.query_row([id], |row| row.get(0)).optional()
}

/// The addresses of mailboxes by id (ids of deleted mailboxes are absent).
pub fn addresses_of(
    conn: &Connection,
    ids: impl IntoIterator<Item = i64>,
) -> rusqlite::Result<std::collections::HashMap<i64, String>> {
    let mut found = std::collections::HashMap::new();
    for id in ids {
        if let std::collections::hash_map::Entry::Vacant(entry) = found.entry(id)
            && let Some(address) = address_of(conn, id)?
        {
            entry.insert(address);
        }
    }
    Ok(found)
}

/// Whether `address` (lowercase) is a mailbox, in any workspace.
pub fn exists(conn: &Connection, address: &str) -> rusqlite::Result<bool> {
    conn.prepare_cached("SELECT EXISTS (SELECT 1 FROM mailboxes WHERE address = ?1)")?
        .query_row([address], |row| row.get(0))
}

/// The id of the mailbox at `address` (lowercase) when it is one of the workspace's.
pub fn id_in_workspace(conn: &Connection, workspace: i64, address: &str) -> rusqlite::Result<Option<i64>> {
    conn.prepare_cached("SELECT id FROM mailboxes WHERE address = ?1 AND workspace_id = ?2")?
        .query_row((address, workspace), |row| row.get(0))
        .optional()
}

/// Whether mailbox `id` belongs to the workspace.
pub fn belongs_to(conn: &Connection, workspace: i64, id: i64) -> rusqlite::Result<bool> {
    conn.prepare_cached("SELECT EXISTS (SELECT 1 FROM mailboxes WHERE id = ?1 AND workspace_id = ?2)")?
        .query_row((id, workspace), |row| row.get(0))
}

/// How many mailboxes a domain has.
pub fn count_on_domain(conn: &Connection, domain_id: i64) -> rusqlite::Result<i64> {
    conn.prepare_cached("SELECT count(*) FROM mailboxes WHERE domain_id = ?1")?.query_row([domain_id], |row| row.get(0))
}

/// The local parts a domain's mailboxes use.
pub fn local_parts(conn: &Connection, domain_id: i64) -> rusqlite::Result<std::collections::HashSet<String>> {
    conn.prepare_cached("SELECT local_part FROM mailboxes WHERE domain_id = ?1")?
        .query_map([domain_id], |row| row.get(0))?
        .collect()
}

/// What `mta::admit` needs of a mailbox.
#[derive(Debug, Clone)]
pub struct Sending {
    pub workspace_id: i64,
    pub address: String,
    pub status: Status,
    pub daily_limit: i64,
    pub per_minute: i64,
}

/// A mailbox's sending settings, if it exists.
pub fn sending(conn: &Connection, id: i64) -> rusqlite::Result<Option<Sending>> {
    conn.prepare_cached("SELECT workspace_id, address, status, daily_limit, per_minute FROM mailboxes WHERE id = ?1")?
        .query_row([id], |row| {
            let status: String = row.get(2)?;
            Ok(Sending {
                workspace_id: row.get(0)?,
                address: row.get(1)?,
                status: status.parse().unwrap_or(Status::Paused),
                daily_limit: row.get(3)?,
                per_minute: row.get(4)?,
            })
        })
        .optional()
}

/// Checks a mailbox's daily limit (0 to [`MAX_DAILY_LIMIT`]).
pub fn check_daily_limit(limit: u32) -> Result<u32> {
    if limit > MAX_DAILY_LIMIT {
        return Err(Error::invalid("daily_limit", format!("The daily limit must be 0 to {MAX_DAILY_LIMIT}.")));
    }
    Ok(limit)
}

/// Changes to a mailbox's settings; `None` leaves a field as it is.
#[derive(Debug, Clone, Default)]
pub struct Changes {
    pub display_name: Option<String>,
    pub daily_limit: Option<u32>,
    pub per_minute: Option<u32>,
    pub status: Option<Status>,
}

impl Changes {
    fn validate(&mut self) -> Result<()> {
        if let Some(name) = &mut self.display_name {
            *name = name.trim().to_string();
            if name.is_empty() || name.chars().count() > 100 || name.contains(['\r', '\n']) {
                return Err(Error::invalid("display_name", "Use a display name of 1 to 100 characters on one line."));
            }
        }
        self.daily_limit.map(check_daily_limit).transpose()?;
        Ok(())
    }

    /// Leaves out the fields whose new value is the mailbox's current one.
    fn drop_unchanged(&mut self, current: &Mailbox) {
        self.display_name.take_if(|name| *name == current.display_name);
        self.daily_limit.take_if(|limit| *limit == current.daily_limit);
        self.per_minute.take_if(|rate| *rate == current.per_minute);
        self.status.take_if(|status| *status == current.status);
    }

    fn is_empty(&self) -> bool {
        self.display_name.is_none() && self.daily_limit.is_none() && self.per_minute.is_none() && self.status.is_none()
    }

    fn describe(&self) -> String {
        let mut parts = Vec::new();
        if let Some(name) = &self.display_name {
            parts.push(format!("display name \"{name}\""));
        }
        if let Some(limit) = self.daily_limit {
            parts.push(format!("daily limit {limit}"));
        }
        if let Some(rate) = self.per_minute {
            parts.push(format!("per-minute rate {rate}"));
        }
        if let Some(status) = self.status {
            parts.push(format!("status {status}"));
        }
        parts.join(", ")
    }
}

/// Applies `changes` to mailbox `id` of the workspace. Values equal to the current ones are no
/// change: when nothing differs, nothing is written and nothing audited.
pub async fn update(app: &App, access: &Access, id: i64, mut changes: Changes) -> Result<Mailbox> {
    access.workspace.role.require(Role::Member)?;
    changes.validate()?;
    let workspace = access.workspace.id;
    let actor = access.actor.clone();
    let now = app.clock.unix();
    app.store
        .write(move |tx| {
            let mailbox = get(tx, workspace, id)?;
            changes.drop_unchanged(&mailbox);
            if changes.is_empty() {
                return Ok(mailbox);
            }
            tx.execute(
                "UPDATE mailboxes SET display_name = coalesce(?1, display_name), daily_limit = coalesce(?2, daily_limit), \
                 status = coalesce(?3, status), per_minute = coalesce(?4, per_minute) WHERE id = ?5 AND workspace_id = ?6",
                (
                    &changes.display_name,
                    changes.daily_limit,
                    changes.status.map(Status::as_str),
                    changes.per_minute,
                    id,
                    workspace,
                ),
            )?;
            audit::record(tx, Some(workspace), &actor, "mailbox.update", &mailbox.address, &changes.describe(), now)?;
            get(tx, workspace, id)
        })
        .await
}

/// Removes mailbox `id` of the workspace with its folders and mail, with an audit entry. Its
/// queued messages stay queued (their rows lose the mailbox, as for any deleted mailbox).
pub async fn remove(app: &App, access: &Access, id: i64) -> Result<Mailbox> {
    access.workspace.role.require(Role::Member)?;
    let (workspace, actor, now) = (access.workspace.id, access.actor.clone(), app.clock.unix());
    app.store
        .write(move |tx| {
            let mailbox = get(tx, workspace, id)?;
            tx.execute("DELETE FROM mailboxes WHERE id = ?1 AND workspace_id = ?2", (id, workspace))?;
            audit::record(tx, Some(workspace), &actor, "mailbox.remove", &mailbox.address, "", now)?;
            Ok(mailbox)
        })
        .await
}

/// The SMTP and IMAP endpoints users connect to, as published in exports.
pub fn server_settings(config: &Config) -> export::ServerSettings {
    export::ServerSettings {
        smtp_host: config.hostname.clone(),
        smtp_port: config.public_submission_port(),
        imap_host: config.hostname.clone(),
        imap_port: config.public_imap_port(),
    }
}

/// The first and last name a sequencer gets for a mailbox: from its current display name (its
/// first word, and the rest), so a renamed mailbox exports its new name in every format; the
/// names it was created with when the display name is empty.
pub fn export_names(mailbox: &Mailbox) -> (String, String) {
    let display = mailbox.display_name.split_whitespace().collect::<Vec<_>>();
    match display.split_first() {
        Some((first, rest)) => ((*first).to_string(), rest.join(" ")),
        None => (mailbox.first_name.clone(), mailbox.last_name.clone()),
    }
}

/// Rows for a regular export (no passwords: they are stored only as hashes).
pub fn export_rows(mailboxes: &[Mailbox]) -> Vec<export::ExportRow> {
    mailboxes
        .iter()
        .map(|m| (m, export_names(m)))
        .map(|(m, (first_name, last_name))| export::ExportRow {
            email: m.address.clone(),
            first_name,
            last_name,
            display_name: m.display_name.clone(),
            password: None,
            daily_limit: m.daily_limit,
            warmup_enabled: m.status == Status::Warming,
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_warming_meaning_names_what_exports_ask_for() {
        let meaning = Status::Warming.meaning();
        assert!(meaning.contains(&format!("{} warmup emails a day", export::WARMUP_DAILY_LIMIT)), "{meaning}");
        assert!(meaning.contains(&format!("{} more each day", export::WARMUP_DAILY_INCREMENT)), "{meaning}");
        assert!(create::may_send(Status::Warming) && !create::may_send(Status::Paused));
    }

    #[test]
    fn exported_names_follow_the_display_name() {
        let mailbox = |display: &str| Mailbox {
            id: 1,
            domain_id: 1,
            address: "emma@a.test".into(),
            first_name: "Emma".into(),
            last_name: "Walker".into(),
            display_name: display.into(),
            daily_limit: 40,
            per_minute: 0,
            status: Status::Active,
            created_at: 0,
            role: false,
        };
        let names = |display: &str| export_names(&mailbox(display));
        assert_eq!(names("Emma Walker"), ("Emma".into(), "Walker".into()));
        assert_eq!(names("  Anna   Maria de  la Cruz "), ("Anna".into(), "Maria de la Cruz".into()));
        assert_eq!(names("Sales"), ("Sales".into(), String::new()));
        assert_eq!(names("  "), ("Emma".into(), "Walker".into()), "the created names when there is no display name");
        let row = export_rows(&[mailbox("Jo Bloggs")]).remove(0);
        assert_eq!(
            (row.first_name.as_str(), row.last_name.as_str(), row.display_name.as_str()),
            ("Jo", "Bloggs", "Jo Bloggs")
        );
    }
}
