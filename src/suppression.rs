//! The suppression list: addresses a workspace never sends to again (hard bounces, unsubscribes,
//! complaints, removal requests, manual entries). Checked at RCPT by submission and by every
//! sender before a send is recorded. Addresses are compared lowercased.
//!
//! An erased person (GDPR erasure with "never contact again") is kept only as
//! `sha256:HEX` of the lowercased address: [`reason`] matches either form, and the address
//! itself is stored nowhere.

use rusqlite::{Connection, OptionalExtension};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reason {
    HardBounce,
    Unsubscribe,
    Complaint,
    Reply,
    Manual,
}

impl Reason {
    pub fn as_str(self) -> &'static str {
        match self {
            Reason::HardBounce => "hard_bounce",
            Reason::Unsubscribe => "unsubscribe",
            Reason::Complaint => "complaint",
            Reason::Reply => "reply",
            Reason::Manual => "manual",
        }
    }

    /// Words for an SMTP reply or a page: "the address unsubscribed".
    pub fn describe(reason: &str) -> &'static str {
        match reason {
            "hard_bounce" => "the address bounced permanently",
            "unsubscribe" => "the recipient unsubscribed",
            "complaint" => "the recipient complained",
            "reply" => "the recipient asked to be removed",
            _ => "the address is on the suppression list",
        }
    }
}

/// The reason an address is suppressed in a workspace, if it is.
pub fn reason(conn: &Connection, workspace: i64, address: &str) -> rusqlite::Result<Option<String>> {
    let address = address.trim().to_lowercase();
    conn.prepare_cached("SELECT reason FROM suppressions WHERE workspace_id = ?1 AND address IN (?2, ?3) LIMIT 1")?
        .query_row((workspace, &address, hashed(&address)), |row| row.get(0))
        .optional()
}

/// The stored form of an erased address (see the module doc).
fn hashed(lowercased: &str) -> String {
    format!("sha256:{}", crate::crypto::token_hash(lowercased))
}

/// Suppresses an erased person by the hash of their address only (see the module doc).
pub fn add_erased(conn: &Connection, workspace: i64, address: &str, now: i64) -> rusqlite::Result<bool> {
    let stored = hashed(&address.trim().to_lowercase());
    add(conn, workspace, &stored, Reason::Manual, "erased on request: only a hash of the address is kept", now)
}

/// Adds an address (keeping the first reason recorded).
pub fn add(
    conn: &Connection,
    workspace: i64,
    address: &str,
    reason: Reason,
    detail: &str,
    now: i64,
) -> rusqlite::Result<bool> {
    let added = conn
        .prepare_cached(
            "INSERT INTO suppressions (workspace_id, address, reason, detail, created_at) VALUES (?1, ?2, ?3, ?4, ?5) \
             ON CONFLICT (workspace_id, address) DO NOTHING",
        )?
        .execute((workspace, address.trim().to_lowercase(), reason.as_str(), detail, now))?;
    Ok(added > 0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn addresses_are_suppressed_per_workspace_case_insensitively() {
        let (_dir, store) = crate::store::open_temp();
        store
            .write(|tx| {
                tx.execute("INSERT INTO workspaces (id, name, created_at) VALUES (1, 'a', 0), (2, 'b', 0)", [])?;
                assert!(add(tx, 1, "Bob@X.test", Reason::HardBounce, "550 5.1.1", 10)?);
                assert!(!add(tx, 1, "bob@x.test", Reason::Unsubscribe, "", 11)?);
                assert_eq!(reason(tx, 1, "BOB@x.test")?.as_deref(), Some("hard_bounce"));
                assert_eq!(reason(tx, 2, "bob@x.test")?, None);
                Ok::<_, rusqlite::Error>(())
            })
            .await
            .unwrap();
    }
}
