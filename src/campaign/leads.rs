//! Leads and lead lists: the one owner of the `leads`, `lead_lists` and `lead_list_members`
//! tables. A lead is a person a workspace writes to, unique by (lowercased) address in it; an
//! import that meets an existing address updates the lead instead of adding a second one (a
//! field the file leaves empty keeps its value; custom fields are merged). A lead can be in
//! several lists. Erasing a lead deletes every row about it and, when asked, keeps only a hash of
//! the address on the suppression list so the person is never contacted again.
//!
//! The `_by` functions are the changes a person makes from the admin UI: they check the role
//! (members and above) and write the audit entry in the same transaction, naming the lead by id
//! (`lead #12`) so that an erased person's address is left in no entry.

use rusqlite::{Connection, OptionalExtension, Transaction};
use serde::Serialize;

use crate::audit;
use crate::error::{Error, Result};
use crate::suppression;
use crate::workspaces::{Access, Role};

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

/// Erases a lead: every row about it goes (list memberships and campaign states with it, and
/// the rows of the workspace's import reports that name the address). With `never_again`, a
/// hash of the address goes on the suppression list, so a later import skips the person as
/// `suppressed` without the address being kept.
pub fn erase(tx: &Transaction, workspace: i64, id: i64, never_again: bool, now: i64) -> Result<Lead> {
    let lead = get(tx, workspace, id)?;
    tx.execute("DELETE FROM leads WHERE id = ?1", [id])?;
    crate::campaign::import::forget_address(tx, workspace, &lead.email)?;
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

/// The lead list's sortable columns: URL name and SQL expression (the first is the default).
pub const SORT_COLUMNS: &[(&str, &str)] = &[
    ("added", "created_at"),
    ("email", "email"),
    ("name", "(first_name || ' ' || last_name) COLLATE NOCASE"),
    ("company", "company COLLATE NOCASE"),
    ("status", "status"),
];

const MATCHING: &str = "workspace_id = ?1 AND (?2 IS NULL OR status = ?2) \
    AND (?3 IS NULL OR id IN (SELECT lead_id FROM lead_list_members WHERE list_id = ?3)) \
    AND (?4 = '%%' OR email LIKE ?4 ESCAPE '\\' OR first_name LIKE ?4 ESCAPE '\\' \
    OR last_name LIKE ?4 ESCAPE '\\' OR company LIKE ?4 ESCAPE '\\')";

fn search_pattern(filter: &Filter) -> String {
    format!("%{}%", filter.search.trim().replace('\\', "\\\\").replace('%', "\\%").replace('_', "\\_"))
}

/// How many of the workspace's leads match `filter`.
pub fn count(conn: &Connection, workspace: i64, filter: &Filter) -> rusqlite::Result<i64> {
    conn.prepare_cached(&format!("SELECT count(*) FROM leads WHERE {MATCHING}"))?
        .query_row((workspace, filter.status, filter.list, search_pattern(filter)), |row| row.get(0))
}

/// One page of the workspace's leads matching `filter` in `order_by` (an expression of
/// [`SORT_COLUMNS`] and a direction; never text from a request), newest first among equals.
pub fn search(
    conn: &Connection,
    workspace: i64,
    filter: &Filter,
    order_by: &str,
    limit: i64,
    offset: i64,
) -> rusqlite::Result<Vec<Lead>> {
    conn.prepare_cached(&format!("{SELECT} WHERE {MATCHING} ORDER BY {order_by}, id DESC LIMIT ?5 OFFSET ?6"))?
        .query_map((workspace, filter.status, filter.list, search_pattern(filter), limit, offset), from_row)?
        .collect()
}

/// One page of the workspace's leads matching `filter`, newest first, and the number matching.
pub fn page(conn: &Connection, workspace: i64, filter: &Filter, offset: i64, limit: i64) -> Result<(Vec<Lead>, i64)> {
    let total = count(conn, workspace, filter)?;
    Ok((search(conn, workspace, filter, "id DESC", limit, offset)?, total))
}

/// The names of the lists a lead is in.
pub fn lists_of(conn: &Connection, lead: i64) -> rusqlite::Result<Vec<String>> {
    conn.prepare_cached(
        "SELECT l.name FROM lead_list_members m JOIN lead_lists l ON l.id = m.list_id WHERE m.lead_id = ?1 ORDER BY l.name",
    )?
    .query_map([lead], |row| row.get(0))?
    .collect()
}

/// The workspace's leads by status, for the figures above the list.
#[derive(Debug, Clone, Copy, Default, Serialize)]
pub struct StatusCounts {
    pub total: i64,
    pub active: i64,
    pub replied: i64,
    pub bounced: i64,
    pub unsubscribed: i64,
    /// Leads added since the `since` given to [`status_counts`].
    pub added_since: i64,
}

impl StatusCounts {
    pub fn of(&self, status: LeadStatus) -> i64 {
        match status {
            LeadStatus::Active => self.active,
            LeadStatus::Replied => self.replied,
            LeadStatus::Bounced => self.bounced,
            LeadStatus::Unsubscribed => self.unsubscribed,
        }
    }
}

/// How many leads the workspace has in each status, and how many were added since `since`.
pub fn status_counts(conn: &Connection, workspace: i64, since: i64) -> rusqlite::Result<StatusCounts> {
    conn.prepare_cached(
        "SELECT count(*), coalesce(sum(status = 'active'), 0), coalesce(sum(status = 'replied'), 0), \
         coalesce(sum(status = 'bounced'), 0), coalesce(sum(status = 'unsubscribed'), 0), \
         coalesce(sum(created_at >= ?2), 0) FROM leads WHERE workspace_id = ?1",
    )?
    .query_row((workspace, since), |row| {
        Ok(StatusCounts {
            total: row.get(0)?,
            active: row.get(1)?,
            replied: row.get(2)?,
            bounced: row.get(3)?,
            unsubscribed: row.get(4)?,
            added_since: row.get(5)?,
        })
    })
}

/// The lists a lead is in, as (id, name), by name.
pub fn memberships(conn: &Connection, lead: i64) -> rusqlite::Result<Vec<(i64, String)>> {
    conn.prepare_cached(
        "SELECT l.id, l.name FROM lead_list_members m JOIN lead_lists l ON l.id = m.list_id WHERE m.lead_id = ?1 \
         ORDER BY l.name",
    )?
    .query_map([lead], |row| Ok((row.get(0)?, row.get(1)?)))?
    .collect()
}

/// Where a lead stands in one campaign (a read of `campaign_leads`, which the engine writes).
#[derive(Debug, Clone, Serialize)]
pub struct LeadCampaign {
    pub id: i64,
    pub name: String,
    /// The lead's state in it: active, finished, replied, bounced, unsubscribed or paused.
    pub status: String,
    pub steps_done: i64,
    pub stop_reason: String,
}

impl LeadCampaign {
    /// The state in words.
    pub fn label(&self) -> &'static str {
        match self.status.as_str() {
            "active" => "In sequence",
            "finished" => "Finished",
            "replied" => "Replied",
            "bounced" => "Bounced",
            "unsubscribed" => "Unsubscribed",
            "paused" => "Paused",
            _ => "Unknown",
        }
    }
}

/// The campaigns of the workspace a lead is enrolled in, by name.
pub fn campaigns_of(conn: &Connection, workspace: i64, lead: i64) -> rusqlite::Result<Vec<LeadCampaign>> {
    conn.prepare_cached(
        "SELECT c.id, c.name, cl.status, cl.steps_done, cl.stop_reason FROM campaign_leads cl \
         JOIN campaigns c ON c.id = cl.campaign_id WHERE cl.lead_id = ?1 AND c.workspace_id = ?2 ORDER BY c.name, c.id",
    )?
    .query_map((lead, workspace), |row| {
        Ok(LeadCampaign {
            id: row.get(0)?,
            name: row.get(1)?,
            status: row.get(2)?,
            steps_done: row.get(3)?,
            stop_reason: row.get(4)?,
        })
    })?
    .collect()
}

/// The most characters of a standard field other than the website.
pub const MAX_FIELD: usize = 200;
/// The most characters of a website or a custom field's value.
pub const MAX_VALUE: usize = 1000;
/// The most characters of a custom field's name.
pub const MAX_FIELD_NAME: usize = 100;

/// Checks an edit form's fields (the address is not edited): lengths, a time zone that is empty
/// or an IANA name (made canonical), custom fields with names. Returns every mistake, each
/// naming its field (`custom` for the custom fields).
pub fn check_edit(mut fields: LeadFields) -> std::result::Result<LeadFields, Vec<Error>> {
    let mut errors = Vec::new();
    let standard: [(&'static str, &str, &mut String, usize); 5] = [
        ("first_name", "The first name", &mut fields.first_name, MAX_FIELD),
        ("last_name", "The last name", &mut fields.last_name, MAX_FIELD),
        ("company", "The company", &mut fields.company, MAX_FIELD),
        ("title", "The title", &mut fields.title, MAX_FIELD),
        ("website", "The website", &mut fields.website, MAX_VALUE),
    ];
    for (field, what, value, max) in standard {
        *value = value.trim().to_string();
        if value.chars().count() > max || value.contains(['\r', '\n']) {
            errors.push(Error::invalid(field, format!("{what} must be one line of at most {max} characters.")));
        }
    }
    fields.time_zone = match fields.time_zone.trim() {
        "" => String::new(),
        zone => crate::workspaces::check_time_zone(zone).unwrap_or_else(|e| {
            errors.push(e);
            zone.to_string()
        }),
    };
    if let Err(e) = check_custom(&mut fields.custom) {
        errors.push(e);
    }
    if errors.is_empty() { Ok(fields) } else { Err(errors) }
}

/// Trims custom fields, drops those without name and value, and refuses a value without a
/// name, a name or value too long, or a name given twice.
fn check_custom(custom: &mut Vec<(String, String)>) -> Result<()> {
    let mut kept: Vec<(String, String)> = Vec::with_capacity(custom.len());
    for (name, value) in custom.drain(..) {
        let (name, value) = (name.trim().to_string(), value.trim().to_string());
        if name.is_empty() && value.is_empty() {
            continue;
        }
        if name.is_empty() {
            return Err(Error::invalid("custom", format!("Give the custom field with the value \"{value}\" a name.")));
        }
        if name.chars().count() > MAX_FIELD_NAME || value.chars().count() > MAX_VALUE {
            return Err(Error::invalid(
                "custom",
                format!("A custom field's name has at most {MAX_FIELD_NAME} characters and its value {MAX_VALUE}."),
            ));
        }
        if kept.iter().any(|(other, _)| other.eq_ignore_ascii_case(&name)) {
            return Err(Error::invalid("custom", format!("The custom field \"{name}\" is given twice.")));
        }
        if !value.is_empty() {
            kept.push((name, value));
        }
    }
    *custom = kept;
    Ok(())
}

/// How a lead is named in the audit log: by id, so that erasing it leaves no address behind.
fn audit_target(id: i64) -> String {
    format!("lead #{id}")
}

/// [`update`] by a person (members and above), with an audit entry naming the fields changed.
pub fn update_by(tx: &Transaction, access: &Access, id: i64, fields: &LeadFields, now: i64) -> Result<()> {
    access.workspace.role.require(Role::Member)?;
    let workspace = access.workspace.id;
    let before = get(tx, workspace, id)?;
    update(tx, workspace, id, fields, now)?;
    let after = get(tx, workspace, id)?;
    let changed = changed_fields(&before, &after);
    if !changed.is_empty() {
        audit::record(tx, Some(workspace), &access.actor, "lead.update", &audit_target(id), &changed.join(", "), now)?;
    }
    Ok(())
}

fn changed_fields(before: &Lead, after: &Lead) -> Vec<&'static str> {
    let pairs = [
        ("first_name", &before.first_name, &after.first_name),
        ("last_name", &before.last_name, &after.last_name),
        ("company", &before.company, &after.company),
        ("title", &before.title, &after.title),
        ("website", &before.website, &after.website),
        ("time_zone", &before.time_zone, &after.time_zone),
    ];
    let mut changed: Vec<&'static str> = pairs.iter().filter(|(_, a, b)| a != b).map(|(name, ..)| *name).collect();
    if before.fields != after.fields {
        changed.push("custom fields");
    }
    changed
}

/// [`erase`] by a person (members and above), with an audit entry that names the lead by id
/// only, never by its address.
pub fn erase_by(tx: &Transaction, access: &Access, id: i64, never_again: bool, now: i64) -> Result<Lead> {
    access.workspace.role.require(Role::Member)?;
    let lead = erase(tx, access.workspace.id, id, never_again, now)?;
    let detail = if never_again { "never contact again: a hash of the address is suppressed" } else { "deleted" };
    audit::record(tx, Some(access.workspace.id), &access.actor, "lead.erase", &audit_target(id), detail, now)?;
    Ok(lead)
}

/// Puts a lead of the workspace in the list named `list` (made when there is none) and enrolls
/// it in the started campaigns that target the list, as an import would; by a person.
pub fn join_list_by(tx: &Transaction, access: &Access, id: i64, list: &str, now: i64) -> Result<()> {
    access.workspace.role.require(Role::Member)?;
    let workspace = access.workspace.id;
    let name = check_list_name(list)?;
    get(tx, workspace, id)?;
    let list_id = list_id_or_create(tx, workspace, &name, now)?;
    add_to_list(tx, list_id, id, now)?;
    if crate::campaign::campaigns::list_is_targeted(tx, list_id)? {
        crate::campaign::campaigns::enroll_lead(tx, list_id, id, now)?;
    }
    audit::record(tx, Some(workspace), &access.actor, "lead.list_add", &audit_target(id), &name, now)?;
    Ok(())
}

/// Takes a lead of the workspace out of one of its lists (its campaign states stay); by a person.
pub fn leave_list_by(tx: &Transaction, access: &Access, id: i64, list: i64, now: i64) -> Result<()> {
    access.workspace.role.require(Role::Member)?;
    let workspace = access.workspace.id;
    get(tx, workspace, id)?;
    let name: String = tx
        .prepare_cached("SELECT name FROM lead_lists WHERE workspace_id = ?1 AND id = ?2")?
        .query_row((workspace, list), |row| row.get(0))
        .optional()?
        .ok_or(Error::NotFound)?;
    tx.prepare_cached("DELETE FROM lead_list_members WHERE list_id = ?1 AND lead_id = ?2")?.execute((list, id))?;
    audit::record(tx, Some(workspace), &access.actor, "lead.list_remove", &audit_target(id), &name, now)?;
    Ok(())
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

    #[test]
    fn an_edit_is_checked_field_by_field() {
        let typed = LeadFields {
            first_name: "  Ann ".into(),
            time_zone: " Europe/Berlin ".into(),
            custom: vec![(" Plan ".into(), " pro ".into()), ("".into(), "".into()), ("Gone".into(), "".into())],
            ..LeadFields::default()
        };
        let checked = check_edit(typed).unwrap();
        assert_eq!((checked.first_name.as_str(), checked.time_zone.as_str()), ("Ann", "Europe/Berlin"));
        assert_eq!(checked.custom, [("Plan".to_string(), "pro".to_string())], "an emptied field is removed");
        assert_eq!(check_edit(LeadFields::default()).unwrap().time_zone, "", "no time zone is fine");
        let bad = LeadFields {
            company: "x".repeat(MAX_FIELD + 1),
            title: "two\nlines".into(),
            time_zone: "Mars/Olympus".into(),
            custom: vec![("".into(), "orphan".into())],
            ..LeadFields::default()
        };
        let fields: Vec<_> = check_edit(bad)
            .unwrap_err()
            .into_iter()
            .map(|e| match e {
                Error::Invalid { field, .. } => field,
                _ => None,
            })
            .collect();
        assert_eq!(fields, [Some("company"), Some("title"), Some("time_zone"), Some("custom")]);
        let twice =
            LeadFields { custom: vec![("Plan".into(), "a".into()), ("plan".into(), "b".into())], ..Default::default() };
        assert!(check_edit(twice).is_err());
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
