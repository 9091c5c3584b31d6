//! Aliases and catch-all mailboxes: how an address of a local domain that is not a mailbox still
//! receives mail (resolution is `mailbox::resolve`).
//!
//! - An **alias** `local@domain` delivers to one or more mailboxes of the domain's workspace (on
//!   any of its domains): one stored copy per target mailbox. Aliases are local only: forwarding
//!   to an outside address would need SRS (or break SPF) and is not offered.
//! - A domain's **catch-all** mailbox (one of the workspace's) receives mail for local parts that
//!   are neither a mailbox nor an alias, role addresses included; none means 550 5.1.1.
//! - Role addresses (`postmaster@`, `abuse@`, `dmarc-reports@`) need no configuration: they reach
//!   the catch-all, else the domain's first mailbox. An alias of that name routes them elsewhere.
//!
//! Rules checked in the transaction that writes (so two requests cannot race past them): the
//! domain belongs to the workspace; the local part is plain (letters, digits, `.`, `_`, `-`; no
//! `+`, which plus-addressing already means); the address is not a mailbox and not an alias yet;
//! every target is a mailbox of the same workspace. Each change is audited.

use rusqlite::{Connection, OptionalExtension, Transaction};
use serde::Serialize;

use crate::app::App;
use crate::audit;
use crate::dns::name::normalize_domain;
use crate::error::{Error, Result};
use crate::mailbox::resolve::{self, ROLE_LOCAL_PARTS};
use crate::mailbox::{self};
use crate::workspaces::{Access, Role};

/// The most mailboxes one alias delivers to.
pub const MAX_TARGETS: usize = 50;
/// The longest local part (RFC 5321 §4.5.3.1.1).
const MAX_LOCAL_PART: usize = 64;

/// An alias and the mailboxes it delivers to.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct Alias {
    pub id: i64,
    pub domain_id: i64,
    /// `local@domain`, lowercased, ASCII domain.
    pub address: String,
    /// The target mailboxes' addresses, sorted.
    pub targets: Vec<String>,
    pub created_at: i64,
}

/// Where a role address of a domain goes today (for the alias page).
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct RoleRoute {
    pub address: String,
    /// The receiving mailboxes' addresses; empty: refused (the workspace has no mailbox).
    pub mailboxes: Vec<String>,
}

/// Splits a list of addresses typed by a person ("a@d.test, b@d.test" or one per line).
pub fn parse_targets(input: &str) -> Vec<String> {
    input
        .split([',', ';', ' ', '\n', '\r', '\t'])
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_string)
        .collect()
}

/// The workspace's aliases, optionally of one domain, by address.
pub fn list(conn: &Connection, workspace: i64, domain: Option<i64>) -> Result<Vec<Alias>> {
    let rows: Vec<(i64, i64, String, i64)> = conn
        .prepare_cached(
            "SELECT id, domain_id, address, created_at FROM aliases \
             WHERE workspace_id = ?1 AND (?2 IS NULL OR domain_id = ?2) ORDER BY address",
        )?
        .query_map((workspace, domain), |row| Ok((row.get(0)?, row.get(1)?, row.get(2)?, row.get(3)?)))?
        .collect::<rusqlite::Result<_>>()?;
    rows.into_iter()
        .map(|(id, domain_id, address, created_at)| {
            Ok(Alias { id, domain_id, address, targets: targets_of(conn, id)?, created_at })
        })
        .collect()
}

/// One alias of a workspace; `NotFound` for another workspace's.
pub fn get(conn: &Connection, workspace: i64, id: i64) -> Result<Alias> {
    let row: Option<(i64, String, i64)> = conn
        .prepare_cached("SELECT domain_id, address, created_at FROM aliases WHERE workspace_id = ?1 AND id = ?2")?
        .query_row((workspace, id), |row| Ok((row.get(0)?, row.get(1)?, row.get(2)?)))
        .optional()?;
    let (domain_id, address, created_at) = row.ok_or(Error::NotFound)?;
    Ok(Alias { id, domain_id, address, targets: targets_of(conn, id)?, created_at })
}

/// The id of a workspace's alias by address; `NotFound` when it has none of that name.
pub fn find_by_address(conn: &Connection, workspace: i64, address: &str) -> Result<i64> {
    let (local, domain) = split_address(address).map_err(|_| Error::NotFound)?;
    conn.prepare_cached("SELECT id FROM aliases WHERE workspace_id = ?1 AND address = ?2")?
        .query_row((workspace, format!("{local}@{domain}")), |row| row.get(0))
        .optional()?
        .ok_or(Error::NotFound)
}

/// The workspace that owns the domain of `address` (for the command line, which may be told
/// only the address); `None` when the domain is not local.
pub fn workspace_of_address(conn: &Connection, address: &str) -> Result<Option<i64>> {
    let domain = address.rsplit_once('@').map_or(address, |(_, domain)| domain);
    let Ok(domain) = normalize_domain(domain) else { return Ok(None) };
    Ok(conn
        .prepare_cached("SELECT workspace_id FROM domains WHERE name = ?1")?
        .query_row([domain], |row| row.get(0))
        .optional()?)
}

/// The addresses of an alias's target mailboxes, sorted.
fn targets_of(conn: &Connection, alias: i64) -> rusqlite::Result<Vec<String>> {
    let ids = conn
        .prepare_cached("SELECT mailbox_id FROM alias_targets WHERE alias_id = ?1")?
        .query_map([alias], |row| row.get(0))?
        .collect::<rusqlite::Result<Vec<i64>>>()?;
    let mut addresses: Vec<String> = mailbox::addresses_of(conn, ids)?.into_values().collect();
    addresses.sort();
    Ok(addresses)
}

/// Adds the alias `address` delivering to the mailboxes `targets` (addresses), after the checks
/// of the module doc.
pub async fn add(app: &App, access: &Access, address: &str, targets: &[String]) -> Result<Alias> {
    access.workspace.role.require(Role::Member)?;
    let (local, domain) = split_address(address)?;
    let targets = targets.to_vec();
    let (workspace, actor, now) = (access.workspace.id, access.actor.clone(), app.clock.unix());
    app.store
        .write(move |tx| {
            let domain_id = workspace_domain(tx, workspace, &domain, "address")?;
            let address = format!("{local}@{domain}");
            check_unused(tx, &address)?;
            let mailboxes = target_mailboxes(tx, workspace, &targets)?;
            tx.prepare_cached(
                "INSERT INTO aliases (workspace_id, domain_id, local_part, address, created_at) \
                 VALUES (?1, ?2, ?3, ?4, ?5)",
            )?
            .execute((workspace, domain_id, &local, &address, now))?;
            let id = tx.last_insert_rowid();
            let mut insert = tx.prepare_cached("INSERT INTO alias_targets (alias_id, mailbox_id) VALUES (?1, ?2)")?;
            for (mailbox, _) in &mailboxes {
                insert.execute((id, mailbox))?;
            }
            let names: Vec<&str> = mailboxes.iter().map(|(_, address)| address.as_str()).collect();
            audit::record(
                tx,
                Some(workspace),
                &actor,
                "alias.add",
                &address,
                &format!("to {}", names.join(", ")),
                now,
            )?;
            get(tx, workspace, id)
        })
        .await
}

/// Removes a workspace's alias; `NotFound` for another workspace's.
pub async fn remove(app: &App, access: &Access, id: i64) -> Result<Alias> {
    access.workspace.role.require(Role::Member)?;
    let (workspace, actor, now) = (access.workspace.id, access.actor.clone(), app.clock.unix());
    app.store
        .write(move |tx| {
            let alias = get(tx, workspace, id)?;
            tx.prepare_cached("DELETE FROM aliases WHERE id = ?1 AND workspace_id = ?2")?.execute((id, workspace))?;
            let detail = format!("was to {}", alias.targets.join(", "));
            audit::record(tx, Some(workspace), &actor, "alias.remove", &alias.address, &detail, now)?;
            Ok(alias)
        })
        .await
}

/// The address of a workspace domain's catch-all mailbox, if any.
pub fn catch_all(conn: &Connection, workspace: i64, domain: i64) -> Result<Option<String>> {
    let mailbox: Option<i64> = conn
        .prepare_cached("SELECT catch_all_mailbox_id FROM domains WHERE workspace_id = ?1 AND id = ?2")?
        .query_row((workspace, domain), |row| row.get(0))
        .optional()?
        .flatten();
    match mailbox {
        Some(id) if mailbox::belongs_to(conn, workspace, id)? => Ok(mailbox::address_of(conn, id)?),
        _ => Ok(None),
    }
}

/// Sets (a mailbox address of the workspace) or clears (`None`) a domain's catch-all mailbox.
/// Returns the domain's name.
pub async fn set_catch_all(app: &App, access: &Access, domain: i64, mailbox: Option<String>) -> Result<String> {
    access.workspace.role.require(Role::Member)?;
    let (workspace, actor, now) = (access.workspace.id, access.actor.clone(), app.clock.unix());
    app.store
        .write(move |tx| {
            let name: String = tx
                .prepare_cached("SELECT name FROM domains WHERE workspace_id = ?1 AND id = ?2")?
                .query_row((workspace, domain), |row| row.get(0))
                .optional()?
                .ok_or(Error::NotFound)?;
            let target = match &mailbox {
                Some(address) => Some(target_mailbox(tx, workspace, address, "catch_all")?),
                None => None,
            };
            tx.prepare_cached("UPDATE domains SET catch_all_mailbox_id = ?1 WHERE id = ?2")?
                .execute((target.as_ref().map(|(id, _)| *id), domain))?;
            let detail = match &target {
                Some((_, address)) => format!("catch-all {address}"),
                None => "no catch-all".to_string(),
            };
            audit::record(tx, Some(workspace), &actor, "domain.catch_all", &name, &detail, now)?;
            Ok(name)
        })
        .await
}

/// Where each role address of `domain` (ASCII name) is delivered now.
pub fn role_routes(conn: &Connection, domain: &str, hostname: &str) -> Result<Vec<RoleRoute>> {
    ROLE_LOCAL_PARTS
        .iter()
        .map(|local| {
            let address = format!("{local}@{domain}");
            let mailboxes = match resolve::resolve(conn, &address, hostname)? {
                Ok(found) => found
                    .mailboxes()
                    .iter()
                    .filter_map(|local| mailbox::address_of(conn, local.mailbox_id).transpose())
                    .collect::<rusqlite::Result<_>>()?,
                Err(_) => Vec::new(),
            };
            Ok(RoleRoute { address, mailboxes })
        })
        .collect()
}

/// (local part, ASCII domain) of an alias address, lowercased; the local part checked.
fn split_address(input: &str) -> Result<(String, String)> {
    let input = input.trim();
    let Some((local, domain)) = input.rsplit_once('@') else {
        if input.is_empty() {
            return Err(Error::invalid("address", "Enter an alias."));
        }
        return Err(Error::invalid("address", format!("\"{input}\" is not an address like sales@example.com.")));
    };
    let local = local.to_lowercase();
    if local.is_empty() {
        return Err(Error::invalid("address", "Enter an alias."));
    }
    let plain = local.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'));
    if local.is_empty()
        || local.len() > MAX_LOCAL_PART
        || !plain
        || local.starts_with('.')
        || local.ends_with('.')
        || local.contains("..")
    {
        return Err(Error::invalid(
            "address",
            format!(
                "\"{local}\" cannot be an alias: use up to {MAX_LOCAL_PART} letters, digits, dots, underscores \
                 or hyphens (no plus sign: sales+anything@ already reaches sales@)."
            ),
        ));
    }
    let domain = normalize_domain(domain).map_err(|e| Error::invalid("address", e.to_string()))?;
    Ok((local, domain))
}

/// The id of the workspace's domain `name`; an invalid-input error naming `field` otherwise.
fn workspace_domain(conn: &Connection, workspace: i64, name: &str, field: &'static str) -> Result<i64> {
    conn.prepare_cached("SELECT id FROM domains WHERE workspace_id = ?1 AND name = ?2")?
        .query_row((workspace, name), |row| row.get(0))
        .optional()?
        .ok_or_else(|| Error::invalid(field, format!("{name} is not a domain of this workspace.")))
}

/// Refuses an address that is already a mailbox or an alias.
fn check_unused(tx: &Transaction, address: &str) -> Result<()> {
    if mailbox::exists(tx, address)? {
        return Err(Error::Conflict(format!("{address} is a mailbox; its mail already reaches it.")));
    }
    let alias =
        tx.prepare_cached("SELECT 1 FROM aliases WHERE address = ?1")?.query_row([address], |_| Ok(())).optional()?;
    if alias.is_some() {
        return Err(Error::Conflict(format!("{address} is already an alias; remove it first to change it.")));
    }
    Ok(())
}

/// The distinct target mailboxes (id, address), each a mailbox of the workspace.
fn target_mailboxes(conn: &Connection, workspace: i64, targets: &[String]) -> Result<Vec<(i64, String)>> {
    if targets.is_empty() {
        return Err(Error::invalid("to", "Name at least one mailbox of this workspace to deliver to."));
    }
    let mut found: Vec<(i64, String)> = Vec::new();
    for target in targets {
        let mailbox = target_mailbox(conn, workspace, target, "to")?;
        if !found.iter().any(|(id, _)| *id == mailbox.0) {
            found.push(mailbox);
        }
    }
    if found.len() > MAX_TARGETS {
        return Err(Error::invalid("to", format!("An alias delivers to at most {MAX_TARGETS} mailboxes.")));
    }
    Ok(found)
}

/// The mailbox (id, address) at `address` when it is one of the workspace's.
fn target_mailbox(conn: &Connection, workspace: i64, address: &str, field: &'static str) -> Result<(i64, String)> {
    let address = address.trim().to_lowercase();
    mailbox::id_in_workspace(conn, workspace, &address)?.map(|id| (id, address.clone())).ok_or_else(|| {
        Error::invalid(
            field,
            format!("{address} is not a mailbox of this workspace (aliases deliver to local mailboxes only)."),
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn targets_are_split_on_commas_and_spaces() {
        assert_eq!(parse_targets(" a@d.test,b@d.test ;\nc@d.test  "), ["a@d.test", "b@d.test", "c@d.test"]);
        assert!(parse_targets(" , ").is_empty());
    }

    #[test]
    fn alias_local_parts_are_plain() {
        assert_eq!(split_address(" Sales@Grove.TEST").unwrap(), ("sales".into(), "grove.test".into()));
        assert_eq!(split_address("first.last-2_x@grove.test").unwrap().0, "first.last-2_x");
        for bad in ["sales", "@grove.test", "a+b@grove.test", ".a@grove.test", "a..b@grove.test", "a b@grove.test"] {
            assert!(matches!(split_address(bad), Err(Error::Invalid { .. })), "{bad}");
        }
        assert!(split_address(&format!("{}@grove.test", "a".repeat(65))).is_err());
        for empty in ["", "  ", "@grove.test"] {
            assert_eq!(split_address(empty).unwrap_err().to_string(), "Enter an alias.", "{empty:?}");
        }
        let refused = split_address("a+b@grove.test").unwrap_err().to_string();
        assert!(refused.starts_with("\"a+b\" cannot be an alias") && !refused.contains('`'), "{refused}");
    }

    #[tokio::test]
    async fn targets_must_be_mailboxes_of_the_workspace() {
        let (_dir, store) = crate::store::open_temp();
        store
            .write(|tx| {
                tx.execute_batch(
                    "INSERT INTO workspaces (id, name, created_at) VALUES (1, 'w', 0), (2, 'v', 0);
                     INSERT INTO domains (id, workspace_id, name, created_at) VALUES (1, 1, 'grove.test', 0),
                        (2, 2, 'other.test', 0);
                     INSERT INTO mailboxes (id, workspace_id, domain_id, local_part, address, first_name, last_name,
                        display_name, password_hash, created_at) VALUES
                       (3, 1, 1, 'ann', 'ann@grove.test', 'A', 'A', 'A', 'x', 0),
                       (4, 2, 2, 'zed', 'zed@other.test', 'Z', 'Z', 'Z', 'x', 0);",
                )?;
                let ok = target_mailboxes(tx, 1, &["Ann@grove.test".into(), "ann@grove.test".into()])?;
                assert_eq!(ok, [(3, "ann@grove.test".to_string())], "repeats collapse");
                assert!(matches!(target_mailboxes(tx, 1, &["zed@other.test".into()]), Err(Error::Invalid { .. })));
                assert!(matches!(target_mailboxes(tx, 1, &[]), Err(Error::Invalid { .. })));
                assert!(matches!(check_unused(tx, "ann@grove.test"), Err(Error::Conflict(_))));
                assert!(check_unused(tx, "sales@grove.test").is_ok());
                assert_eq!(workspace_domain(tx, 1, "grove.test", "address")?, 1);
                assert!(matches!(workspace_domain(tx, 1, "other.test", "address"), Err(Error::Invalid { .. })));
                Ok::<_, Error>(())
            })
            .await
            .unwrap();
    }
}
