//! Leads and lead lists: the one owner of the `leads`, `lead_lists` and `lead_list_members`
//! tables. A lead is a person a workspace writes to, unique by (lowercased) address in it; an
//! import that meets an existing address updates the lead instead of adding a second one (a
//! field the file leaves empty keeps its value; custom fields are merged). A lead can be in
//! several lists. Erasing a lead deletes every row about it and, when asked, keeps only a hash of
//! the address on the suppression list so the person is never contacted again.

use rusqlite::{Connection, OptionalExtension, Transaction};
use serde::Serialize;

use crate::error::{Error, Result};
use crate::suppression;

/// A lead's outcome across campaigns.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum LeadStatus {
    Active,
    Replied,
    Bounced,
    Unsubscribed,
}

impl LeadStatus {
    pub const ALL: [LeadStatus; 4] =
        [LeadStatus::Active, LeadStatus::Replied, LeadStatus::Bounced, LeadStatus::Unsubscribed];

    pub fn as_str(self) -> &'static str {
        match self {
            LeadStatus::Active => "active",
            LeadStatus::Replied => "replied",
            LeadStatus::Bounced => "bounced",
            LeadStatus::Unsubscribed => "unsubscribed",
        }
    }

    /// Words for a page.
    pub fn label(self) -> &'static str {
        match self {
            LeadStatus::Active => "Active",
            LeadStatus::Replied => "Replied",
            LeadStatus::Bounced => "Bounced",
            LeadStatus::Unsubscribed => "Unsubscribed",
        }
    }
}

crate::store::names::stored_name!(LeadStatus, "lead status");

/// A lead's fields as an import or a form gives them. Empty strings are "not given".
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LeadFields {
    /// The normalized address.
    pub email: String,
    pub first_name: String,
    pub last_name: String,
    pub company: String,
    pub title: String,
    pub website: String,
    pub time_zone: String,
    /// Custom fields by their column header.
    pub custom: Vec<(String, String)>,
}

/// A stored lead.
#[derive(Debug, Clone, Serialize)]
pub struct Lead {
    pub id: i64,
    pub email: String,
    pub first_name: String,
    pub last_name: String,
    pub company: String,
    pub title: String,
    pub website: String,
    pub time_zone: String,
    /// Custom fields, by name.
    pub fields: serde_json::Map<String, serde_json::Value>,
    pub status: LeadStatus,
    pub created_at: i64,
    pub updated_at: i64,
}

impl Lead {
    /// The value of a template variable: a standard field, or a custom field by name (names
    /// compared case-insensitively).
    pub fn variable(&self, name: &str) -> Option<String> {
        let standard = match name.to_ascii_lowercase().as_str() {
            "email" => Some(&self.email),
            "first_name" => Some(&self.first_name),
            "last_name" => Some(&self.last_name),
            "company" => Some(&self.company),
            "title" => Some(&self.title),
            "website" => Some(&self.website),
            _ => None,
        };
        if let Some(value) = standard {
            return Some(value.clone()).filter(|v| !v.is_empty());
        }
        self.fields
            .iter()
            .find(|(key, _)| key.eq_ignore_ascii_case(name))
            .and_then(|(_, value)| value.as_str().map(str::to_string))
            .filter(|v| !v.is_empty())
    }

    /// The domain of the lead's address.
    pub fn domain(&self) -> &str {
        self.email.rsplit_once('@').map_or("", |(_, domain)| domain)
    }
}

const SELECT: &str = "SELECT id, email, first_name, last_name, company, title, website, time_zone, fields, status, \
    created_at, updated_at FROM leads";

fn from_row(row: &rusqlite::Row<'_>) -> rusqlite::Result<Lead> {
    let fields: String = row.get(8)?;
    Ok(Lead {
        id: row.get(0)?,
        email: row.get(1)?,
        first_name: row.get(2)?,
        last_name: row.get(3)?,
        company: row.get(4)?,
        title: row.get(5)?,
        website: row.get(6)?,
        time_zone: row.get(7)?,
        fields: serde_json::from_str(&fields).unwrap_or_default(),
        status: row.get(9)?,
        created_at: row.get(10)?,
        updated_at: row.get(11)?,
    })
}

/// A lead of the workspace by id.
pub fn get(conn: &Connection, workspace: i64, id: i64) -> Result<Lead> {
    conn.prepare_cached(&format!("{SELECT} WHERE workspace_id = ?1 AND id = ?2"))?
        .query_row((workspace, id), from_row)
        .optional()?
        .ok_or(Error::NotFound)
}

/// A lead by id, whatever its workspace (for the engine, which has the id from a scoped row).
pub fn by_id(conn: &Connection, id: i64) -> rusqlite::Result<Option<Lead>> {
    conn.prepare_cached(&format!("{SELECT} WHERE id = ?1"))?.query_row([id], from_row).optional()
}

/// Leads by id (the engine's due leads), read in one query per 500.
pub fn leads_by_id(conn: &Connection, ids: &[i64]) -> rusqlite::Result<std::collections::HashMap<i64, Lead>> {
    let mut out = std::collections::HashMap::with_capacity(ids.len());
    for chunk in ids.chunks(500) {
        let list = chunk.iter().map(i64::to_string).collect::<Vec<_>>().join(",");
        let mut stmt = conn.prepare(&format!("{SELECT} WHERE id IN ({list})"))?;
        for lead in stmt.query_map([], from_row)? {
            let lead = lead?;
            out.insert(lead.id, lead);
        }
    }
    Ok(out)
}

/// The lead with this address in the workspace.
pub fn find(conn: &Connection, workspace: i64, email: &str) -> rusqlite::Result<Option<Lead>> {
    conn.prepare_cached(&format!("{SELECT} WHERE workspace_id = ?1 AND email = ?2"))?
        .query_row((workspace, email.trim().to_lowercase()), from_row)
        .optional()
}

/// What [`upsert`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Upserted {
    Imported(i64),
    Updated(i64),
}

impl Upserted {
    pub fn id(self) -> i64 {
        match self {
            Upserted::Imported(id) | Upserted::Updated(id) => id,
        }
    }
}

fn custom_json(custom: &[(String, String)]) -> String {
    let map: serde_json::Map<String, serde_json::Value> =
        custom.iter().map(|(key, value)| (key.clone(), serde_json::Value::String(value.clone()))).collect();
    serde_json::Value::Object(map).to_string()
}

/// Adds the lead, or updates the workspace's lead with the same address (fields the input
/// leaves empty keep their values; custom fields are merged).
pub fn upsert(tx: &Connection, workspace: i64, lead: &LeadFields, now: i64) -> rusqlite::Result<Upserted> {
    let existing: Option<i64> = tx
        .prepare_cached("SELECT id FROM leads WHERE workspace_id = ?1 AND email = ?2")?
        .query_row((workspace, &lead.email), |row| row.get(0))
        .optional()?;
    let custom = custom_json(&lead.custom);
    match existing {
        None => {
            tx.prepare_cached(
                "INSERT INTO leads (workspace_id, email, first_name, last_name, company, title, website, time_zone, \
                 fields, created_at, updated_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?10)",
            )?
            .execute((
                workspace,
                &lead.email,
                &lead.first_name,
                &lead.last_name,
                &lead.company,
                &lead.title,
                &lead.website,
                &lead.time_zone,
                &custom,
                now,
            ))?;
            Ok(Upserted::Imported(tx.last_insert_rowid()))
        }
        Some(id) => {
            tx.prepare_cached(
                "UPDATE leads SET first_name = iif(?2 = '', first_name, ?2), last_name = iif(?3 = '', last_name, ?3), \
                 company = iif(?4 = '', company, ?4), title = iif(?5 = '', title, ?5), \
                 website = iif(?6 = '', website, ?6), time_zone = iif(?7 = '', time_zone, ?7), \
                 fields = json_patch(fields, ?8), updated_at = ?9 WHERE id = ?1",
            )?
            .execute((
                id,
                &lead.first_name,
                &lead.last_name,
                &lead.company,
                &lead.title,
                &lead.website,
                &lead.time_zone,
                &custom,
                now,
            ))?;
            Ok(Upserted::Updated(id))
        }
    }
}

/// Replaces a lead's fields from an edit form (every field as given; the address stays).
pub fn update(tx: &Transaction, workspace: i64, id: i64, lead: &LeadFields, now: i64) -> Result<()> {
    let changed = tx.execute(
        "UPDATE leads SET first_name = ?3, last_name = ?4, company = ?5, title = ?6, website = ?7, time_zone = ?8, \
         fields = ?9, updated_at = ?10 WHERE workspace_id = ?1 AND id = ?2",
        (
            workspace,
            id,
            &lead.first_name,
            &lead.last_name,
            &lead.company,
            &lead.title,
            &lead.website,
            &lead.time_zone,
            custom_json(&lead.custom),
            now,
        ),
    )?;
    if changed == 0 {
        return Err(Error::NotFound);
    }
    Ok(())
}

/// Sets a lead's outcome.
pub fn set_status(conn: &Connection, id: i64, status: LeadStatus, now: i64) -> rusqlite::Result<()> {
    conn.prepare_cached("UPDATE leads SET status = ?2, updated_at = ?3 WHERE id = ?1")?.execute((id, status, now))?;
    Ok(())
}

/// Erases a lead: every row about it goes (list memberships and campaign states with it). With
/// `never_again`, a hash of the address goes on the suppression list, so a later import skips
/// the person as `suppressed` without the address being kept.
pub fn erase(tx: &Transaction, workspace: i64, id: i64, never_again: bool, now: i64) -> Result<Lead> {
    let lead = get(tx, workspace, id)?;
    tx.execute("DELETE FROM leads WHERE id = ?1", [id])?;
    if never_again {
        suppression::add_erased(tx, workspace, &lead.email, now)?;
    }
    Ok(lead)
}

/// A lead list of a workspace.
#[derive(Debug, Clone, Serialize)]
pub struct LeadList {
    pub id: i64,
    pub name: String,
    pub leads: i64,
    pub created_at: i64,
}

/// Checks a list name.
pub fn check_list_name(input: &str) -> Result<String> {
    let name = input.trim();
    if name.is_empty() || name.chars().count() > 100 {
        return Err(Error::invalid("list", "Give the list a name of 1 to 100 characters."));
    }
    Ok(name.to_string())
}

/// The id of the workspace's list with this name, made when there is none.
pub fn list_id_or_create(tx: &Connection, workspace: i64, name: &str, now: i64) -> rusqlite::Result<i64> {
    if let Some(id) = list_id(tx, workspace, name)? {
        return Ok(id);
    }
    tx.execute("INSERT INTO lead_lists (workspace_id, name, created_at) VALUES (?1, ?2, ?3)", (workspace, name, now))?;
    Ok(tx.last_insert_rowid())
}

/// The id of the workspace's list with this name.
pub fn list_id(conn: &Connection, workspace: i64, name: &str) -> rusqlite::Result<Option<i64>> {
    conn.prepare_cached("SELECT id FROM lead_lists WHERE workspace_id = ?1 AND name = ?2")?
        .query_row((workspace, name.trim()), |row| row.get(0))
        .optional()
}

/// Puts a lead in a list (once).
pub fn add_to_list(tx: &Connection, list: i64, lead: i64, now: i64) -> rusqlite::Result<()> {
    tx.prepare_cached("INSERT OR IGNORE INTO lead_list_members (list_id, lead_id, added_at) VALUES (?1, ?2, ?3)")?
        .execute((list, lead, now))?;
    Ok(())
}

/// The workspace's lists with their sizes, by name.
pub fn lists(conn: &Connection, workspace: i64) -> rusqlite::Result<Vec<LeadList>> {
    conn.prepare_cached(
        "SELECT l.id, l.name, (SELECT count(*) FROM lead_list_members m WHERE m.list_id = l.id), l.created_at \
         FROM lead_lists l WHERE l.workspace_id = ?1 ORDER BY l.name",
    )?
    .query_map([workspace], |row| {
        Ok(LeadList { id: row.get(0)?, name: row.get(1)?, leads: row.get(2)?, created_at: row.get(3)? })
    })?
    .collect()
}

/// Which leads to list.
#[derive(Debug, Clone, Default)]
pub struct Filter {
    /// Matches the address, the names and the company.
    pub search: String,
    pub status: Option<LeadStatus>,
    pub list: Option<i64>,
}

/// One page of the workspace's leads matching `filter`, newest first, and the number matching.
pub fn page(conn: &Connection, workspace: i64, filter: &Filter, offset: i64, limit: i64) -> Result<(Vec<Lead>, i64)> {
    let pattern = format!("%{}%", filter.search.trim().replace('\\', "\\\\").replace('%', "\\%").replace('_', "\\_"));
    let condition = "workspace_id = ?1 AND (?2 IS NULL OR status = ?2) \
        AND (?3 IS NULL OR id IN (SELECT lead_id FROM lead_list_members WHERE list_id = ?3)) \
        AND (?4 = '%%' OR email LIKE ?4 ESCAPE '\\' OR first_name LIKE ?4 ESCAPE '\\' \
        OR last_name LIKE ?4 ESCAPE '\\' OR company LIKE ?4 ESCAPE '\\')";
    let params = (workspace, filter.status, filter.list, &pattern);
    let total: i64 = conn
        .prepare_cached(&format!("SELECT count(*) FROM leads WHERE {condition}"))?
        .query_row(params, |row| row.get(0))?;
    let rows = conn
        .prepare_cached(&format!("{SELECT} WHERE {condition} ORDER BY id DESC LIMIT ?5 OFFSET ?6"))?
        .query_map((workspace, filter.status, filter.list, &pattern, limit, offset), from_row)?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    Ok((rows, total))
}

/// The names of the lists a lead is in.
pub fn lists_of(conn: &Connection, lead: i64) -> rusqlite::Result<Vec<String>> {
    conn.prepare_cached(
        "SELECT l.name FROM lead_list_members m JOIN lead_lists l ON l.id = m.list_id WHERE m.lead_id = ?1 ORDER BY l.name",
    )?
    .query_map([lead], |row| row.get(0))?
    .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fields(email: &str, first: &str, custom: &[(&str, &str)]) -> LeadFields {
        LeadFields {
            email: email.into(),
            first_name: first.into(),
            custom: custom.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect(),
            ..LeadFields::default()
        }
    }

    #[tokio::test]
    async fn an_existing_address_is_updated_keeping_what_the_file_leaves_empty() {
        let (_dir, store) = crate::store::open_temp();
        store
            .write(|tx| {
                tx.execute("INSERT INTO workspaces (id, name, created_at) VALUES (1, 'a', 0), (2, 'b', 0)", [])?;
                let first = upsert(tx, 1, &fields("ann@x.test", "Ann", &[("Plan", "pro")]), 10)?;
                assert!(matches!(first, Upserted::Imported(_)));
                let again = upsert(tx, 1, &fields("ann@x.test", "", &[("Seats", "5")]), 20)?;
                assert_eq!(again, Upserted::Updated(first.id()));
                let other = upsert(tx, 2, &fields("ann@x.test", "Annie", &[]), 20)?;
                assert!(matches!(other, Upserted::Imported(id) if id != first.id()), "workspaces are walls");
                let lead = get(tx, 1, first.id())?;
                assert_eq!(lead.first_name, "Ann");
                assert_eq!(lead.variable("plan").as_deref(), Some("pro"));
                assert_eq!(lead.variable("Seats").as_deref(), Some("5"));
                assert_eq!(lead.variable("last_name"), None);
                assert!(matches!(get(tx, 2, first.id()), Err(Error::NotFound)));
                Ok::<_, Error>(())
            })
            .await
            .unwrap();
    }

    #[tokio::test]
    async fn erasing_keeps_only_a_hash_on_the_suppression_list() {
        let (_dir, store) = crate::store::open_temp();
        store
            .write(|tx| {
                tx.execute("INSERT INTO workspaces (id, name, created_at) VALUES (1, 'a', 0)", [])?;
                let id = upsert(tx, 1, &fields("Bob@x.test".to_lowercase().as_str(), "Bob", &[]), 10)?.id();
                let list = list_id_or_create(tx, 1, "Q1", 10)?;
                add_to_list(tx, list, id, 10)?;
                add_to_list(tx, list, id, 11)?;
                assert_eq!(lists(tx, 1)?[0].leads, 1);
                erase(tx, 1, id, true, 20)?;
                assert_eq!(lists(tx, 1)?[0].leads, 0);
                let kept: String = tx.query_row("SELECT address FROM suppressions", [], |row| row.get(0))?;
                assert!(!kept.contains("bob"), "{kept}");
                assert!(suppression::reason(tx, 1, "BOB@x.test")?.is_some());
                Ok::<_, Error>(())
            })
            .await
            .unwrap();
    }
}
