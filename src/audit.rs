//! The audit log: every change, with who made it, when, in which workspace, and what. Written in
//! the same transaction as the change it describes, so the two cannot disagree.

use rusqlite::{Connection, Transaction};
use serde::Serialize;

use crate::auth::Actor;

#[derive(Debug, Clone, Serialize)]
pub struct Entry {
    pub id: i64,
    pub actor: String,
    pub at: i64,
    pub action: String,
    pub target: String,
    pub detail: String,
}

/// Records one change.
pub fn record(
    tx: &Transaction,
    workspace: Option<i64>,
    actor: &Actor,
    action: &str,
    target: &str,
    detail: &str,
    now: i64,
) -> rusqlite::Result<()> {
    tx.prepare_cached(
        "INSERT INTO audit_log (workspace_id, user_id, actor, at, action, target, detail) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
    )?
    .execute((workspace, actor.user_id, &actor.label, now, action, target, detail))?;
    Ok(())
}

/// What the audit page filters by; empty strings mean "any".
#[derive(Debug, Clone, Default, serde::Deserialize)]
#[serde(default)]
pub struct Filter {
    pub action: String,
    pub actor: String,
    pub q: String,
    pub page: u32,
}

pub const PAGE_SIZE: u32 = 100;

/// One page of a workspace's entries, newest first, and whether another page follows.
pub fn list(conn: &Connection, workspace: i64, filter: &Filter) -> rusqlite::Result<(Vec<Entry>, bool)> {
    let like = |s: &str| format!("%{}%", s.replace('\\', "\\\\").replace('%', "\\%").replace('_', "\\_"));
    let mut stmt = conn.prepare_cached(
        "SELECT id, actor, at, action, target, detail FROM audit_log WHERE workspace_id = ?1 \
         AND (?2 = '' OR action = ?2 OR action LIKE ?2 || '.%') AND (?3 = '' OR actor = ?3) \
         AND (?4 = '' OR target LIKE ?5 ESCAPE '\\' OR detail LIKE ?5 ESCAPE '\\') \
         ORDER BY at DESC, id DESC LIMIT ?6 OFFSET ?7",
    )?;
    let rows = stmt.query_map(
        (
            workspace,
            filter.action.trim(),
            filter.actor.trim(),
            filter.q.trim(),
            like(filter.q.trim()),
            PAGE_SIZE + 1,
            filter.page * PAGE_SIZE,
        ),
        |row| {
            Ok(Entry {
                id: row.get(0)?,
                actor: row.get(1)?,
                at: row.get(2)?,
                action: row.get(3)?,
                target: row.get(4)?,
                detail: row.get(5)?,
            })
        },
    )?;
    let mut entries = rows.collect::<rusqlite::Result<Vec<_>>>()?;
    let more = entries.len() > usize::try_from(PAGE_SIZE).unwrap_or(usize::MAX);
    entries.truncate(usize::try_from(PAGE_SIZE).unwrap_or(usize::MAX));
    Ok((entries, more))
}

/// The distinct actions and actors recorded in a workspace, for the filter menus.
pub fn facets(conn: &Connection, workspace: i64) -> rusqlite::Result<(Vec<String>, Vec<String>)> {
    let collect = |sql: &str| -> rusqlite::Result<Vec<String>> {
        conn.prepare(sql)?.query_map([workspace], |row| row.get(0))?.collect()
    };
    Ok((
        collect("SELECT DISTINCT action FROM audit_log WHERE workspace_id = ?1 ORDER BY action")?,
        collect("SELECT DISTINCT actor FROM audit_log WHERE workspace_id = ?1 ORDER BY actor")?,
    ))
}
