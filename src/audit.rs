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

/// What the audit page filters by, and the page it reads; empty strings mean "any".
#[derive(Debug, Clone, Default)]
pub struct Filter {
    /// An action, or an action group (`domain` matches `domain.add`).
    pub action: String,
    pub actor: String,
    /// Text contained in the target or the detail.
    pub text: String,
    /// `ORDER BY` text from the page's declared columns ([`SORT_COLUMNS`]); empty: newest first.
    pub order_by: String,
    pub limit: i64,
    pub offset: i64,
}

/// The audit page's sortable columns: URL name and SQL expression.
pub const SORT_COLUMNS: &[(&str, &str)] =
    &[("when", "at"), ("who", "actor COLLATE NOCASE"), ("action", "action"), ("what", "target COLLATE NOCASE")];

const MATCHES: &str = "workspace_id = ?1 AND (?2 = '' OR action = ?2 OR action LIKE ?2 || '.%') \
    AND (?3 = '' OR actor = ?3) AND (?4 = '' OR target LIKE ?5 ESCAPE '\\' OR detail LIKE ?5 ESCAPE '\\')";

/// The filter's parameters ?1 to ?5 of [`MATCHES`].
fn matches_params(workspace: i64, filter: &Filter) -> (i64, &str, &str, &str, String) {
    let text = filter.text.trim();
    let like = format!("%{}%", text.replace('\\', "\\\\").replace('%', "\\%").replace('_', "\\_"));
    (workspace, filter.action.trim(), filter.actor.trim(), text, like)
}

/// How many of a workspace's entries match `filter`, over all pages.
pub fn count(conn: &Connection, workspace: i64, filter: &Filter) -> rusqlite::Result<i64> {
    conn.prepare_cached(&format!("SELECT count(*) FROM audit_log WHERE {MATCHES}"))?
        .query_row(matches_params(workspace, filter), |row| row.get(0))
}

/// One page of a workspace's entries matching `filter`; entries of the same moment in the
/// order they were written.
pub fn list(conn: &Connection, workspace: i64, filter: &Filter) -> rusqlite::Result<Vec<Entry>> {
    let order_by = if filter.order_by.is_empty() { "at DESC" } else { &filter.order_by };
    let same_moment = if order_by.ends_with("DESC") { "id DESC" } else { "id" };
    let mut stmt = conn.prepare_cached(&format!(
        "SELECT id, actor, at, action, target, detail FROM audit_log WHERE {MATCHES} \
         ORDER BY {order_by}, {same_moment} LIMIT ?6 OFFSET ?7"
    ))?;
    let (w, action, actor, text, like) = matches_params(workspace, filter);
    let rows = stmt.query_map((w, action, actor, text, like, filter.limit, filter.offset), |row| {
        Ok(Entry {
            id: row.get(0)?,
            actor: row.get(1)?,
            at: row.get(2)?,
            action: row.get(3)?,
            target: row.get(4)?,
            detail: row.get(5)?,
        })
    })?;
    rows.collect()
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
