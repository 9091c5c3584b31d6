//! Which mailbox an inbound recipient address belongs to — or why it is refused.
//!
//! The rule, for `local@domain`:
//! 1. The domain must be in the `domains` table (any workspace); otherwise the address is not
//!    ours and is refused with 554 5.7.1: the MX never relays.
//! 2. The mailbox whose address is `local@domain` (compared lowercased) gets it; with
//!    plus-addressing, `user+tag@domain` goes to `user@domain`.
//! 3. Role addresses — `postmaster@`, `abuse@` and `dmarc-reports@` (the DMARC `rua` address the
//!    published records name) — of a local domain that has no mailbox of that name go to the
//!    domain's designated role mailbox (`domains.role_mailbox_id`, when it is a mailbox of the
//!    same workspace), else to the domain's first mailbox (lowest id), else to the workspace's
//!    first mailbox. A workspace without any mailbox cannot receive them (550 5.1.1).
//! 4. Anything else: 550 5.1.1. A bare `postmaster` (RFC 5321 §4.5.1) is the postmaster of the
//!    host name's domain or its parent, when one of them is local.

use rusqlite::{Connection, OptionalExtension};

use crate::smtp::reply::Reply;

/// Local parts every local domain answers to, even without a mailbox of that name.
pub const ROLE_LOCAL_PARTS: [&str; 3] = ["postmaster", "abuse", "dmarc-reports"];

/// The mailbox a recipient resolves to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Local {
    pub mailbox_id: i64,
    pub workspace_id: i64,
}

/// Why a recipient is refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    /// Not `local@domain`.
    BadSyntax,
    /// The domain is not one of ours.
    NotLocal,
    /// A local domain, but no such mailbox.
    UnknownUser,
}

impl Refusal {
    /// The SMTP reply for the refusal.
    pub fn reply(&self) -> Reply {
        match self {
            Refusal::BadSyntax => Reply::new(501, [5, 1, 3], "Bad recipient address syntax"),
            Refusal::NotLocal => Reply::new(554, [5, 7, 1], "Relay access denied: not a domain of this server"),
            Refusal::UnknownUser => Reply::new(550, [5, 1, 1], "No such user here"),
        }
    }
}

/// A local domain's row.
struct Domain {
    id: i64,
    name: String,
    workspace_id: i64,
    role_mailbox_id: Option<i64>,
}

/// Resolves `address` (see the module doc). `hostname` is the appliance's host name.
pub fn resolve(conn: &Connection, address: &str, hostname: &str) -> rusqlite::Result<Result<Local, Refusal>> {
    let address = address.trim();
    let Some((local, domain)) = address.rsplit_once('@') else {
        return if address.eq_ignore_ascii_case("postmaster") {
            bare_postmaster(conn, hostname)
        } else {
            Ok(Err(Refusal::BadSyntax))
        };
    };
    if local.is_empty() {
        return Ok(Err(Refusal::BadSyntax));
    }
    let Some(domain) = local_domain(conn, domain)? else {
        return Ok(Err(Refusal::NotLocal));
    };
    let local = local.to_lowercase();
    let base = local.split_once('+').map(|(base, _)| base).filter(|base| !base.is_empty());
    for candidate in std::iter::once(local.as_str()).chain(base) {
        if let Some(found) = mailbox_by_local_part(conn, &domain, candidate)? {
            return Ok(Ok(found));
        }
    }
    let base = base.unwrap_or(&local);
    if ROLE_LOCAL_PARTS.contains(&base) {
        return Ok(role_mailbox(conn, &domain)?.ok_or(Refusal::UnknownUser));
    }
    Ok(Err(Refusal::UnknownUser))
}

/// `postmaster` without a domain: the postmaster of the host name's domain or its parent.
fn bare_postmaster(conn: &Connection, hostname: &str) -> rusqlite::Result<Result<Local, Refusal>> {
    let parent = hostname.split_once('.').map(|(_, parent)| parent);
    for name in std::iter::once(hostname).chain(parent) {
        if let Some(domain) = local_domain(conn, name)? {
            return Ok(role_mailbox(conn, &domain)?.ok_or(Refusal::UnknownUser));
        }
    }
    Ok(Err(Refusal::UnknownUser))
}

/// The domain's row when it is one of ours.
fn local_domain(conn: &Connection, name: &str) -> rusqlite::Result<Option<Domain>> {
    let Ok(name) = crate::dns::name::normalize_domain(name) else {
        return Ok(None);
    };
    conn.prepare_cached("SELECT id, name, workspace_id, role_mailbox_id FROM domains WHERE name = ?1")?
        .query_row([name], |row| {
            Ok(Domain { id: row.get(0)?, name: row.get(1)?, workspace_id: row.get(2)?, role_mailbox_id: row.get(3)? })
        })
        .optional()
}

/// The mailbox `local@domain` (addresses are stored lowercased, as `mta::enqueue` finds them).
fn mailbox_by_local_part(conn: &Connection, domain: &Domain, local: &str) -> rusqlite::Result<Option<Local>> {
    conn.prepare_cached("SELECT id, workspace_id FROM mailboxes WHERE address = ?1")?
        .query_row([format!("{local}@{}", domain.name)], |row| {
            Ok(Local { mailbox_id: row.get(0)?, workspace_id: row.get(1)? })
        })
        .optional()
}

/// The mailbox that receives the domain's role addresses (module doc, rule 3).
fn role_mailbox(conn: &Connection, domain: &Domain) -> rusqlite::Result<Option<Local>> {
    let mailbox: Option<i64> = conn
        .prepare_cached(
            "SELECT id FROM ( \
               SELECT id, 0 AS rank FROM mailboxes WHERE id = ?1 AND workspace_id = ?3 \
               UNION ALL SELECT id, 1 FROM mailboxes WHERE domain_id = ?2 \
               UNION ALL SELECT id, 2 FROM mailboxes WHERE workspace_id = ?3 \
             ) ORDER BY rank, id LIMIT 1",
        )?
        .query_row((domain.role_mailbox_id, domain.id, domain.workspace_id), |row| row.get(0))
        .optional()?;
    Ok(mailbox.map(|mailbox_id| Local { mailbox_id, workspace_id: domain.workspace_id }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn seed(conn: &Connection) {
        conn.execute_batch(
            "INSERT INTO workspaces (id, name, created_at) VALUES (1, 'w', 0), (2, 'v', 0);
             INSERT INTO domains (id, workspace_id, name, created_at) VALUES
               (1, 1, 'grove.test', 0), (2, 1, 'empty.test', 0), (3, 2, 'lonely.test', 0), (4, 1, 'mail.grove.test', 0);
             INSERT INTO mailboxes (id, workspace_id, domain_id, local_part, address, first_name, last_name,
                display_name, password_hash, created_at) VALUES
               (5, 1, 1, 'bob', 'bob@grove.test', 'B', 'B', 'B', 'x', 0),
               (3, 1, 1, 'ann', 'ann@grove.test', 'A', 'A', 'A', 'x', 0),
               (9, 1, 1, 'abuse', 'abuse@grove.test', 'A', 'A', 'A', 'x', 0);",
        )
        .unwrap();
    }

    #[tokio::test]
    async fn recipients_resolve_by_the_rules() {
        let (_dir, store) = crate::store::open_temp();
        store
            .write(|tx| {
                seed(tx);
                let local = |mailbox_id| Ok(Local { mailbox_id, workspace_id: 1 });
                let host = "mail.grove.test";
                assert_eq!(resolve(tx, "Ann@Grove.TEST", host)?, local(3));
                assert_eq!(resolve(tx, "ann+campaign-7@grove.test", host)?, local(3), "plus-addressing");
                assert_eq!(resolve(tx, "nobody@grove.test", host)?, Err(Refusal::UnknownUser));
                assert_eq!(resolve(tx, "ann@elsewhere.test", host)?, Err(Refusal::NotLocal));
                assert_eq!(resolve(tx, "ann", host)?, Err(Refusal::BadSyntax));
                assert_eq!(resolve(tx, "postmaster@grove.test", host)?, local(3), "the domain's first mailbox");
                assert_eq!(resolve(tx, "dmarc-reports@grove.test", host)?, local(3));
                assert_eq!(resolve(tx, "abuse@grove.test", host)?, local(9), "a real mailbox wins");
                assert_eq!(resolve(tx, "postmaster@empty.test", host)?, local(3), "the workspace's first mailbox");
                assert_eq!(resolve(tx, "postmaster", host)?, local(3), "the host name's domain");
                assert_eq!(resolve(tx, "postmaster@lonely.test", host)?, Err(Refusal::UnknownUser));
                tx.execute("UPDATE domains SET role_mailbox_id = 5 WHERE id = 1", [])?;
                assert_eq!(resolve(tx, "postmaster@grove.test", host)?, local(5), "the designated mailbox");
                Ok::<_, rusqlite::Error>(())
            })
            .await
            .unwrap();
    }

    #[test]
    fn refusals_have_the_contract_codes() {
        assert_eq!(Refusal::UnknownUser.reply().to_string(), "550 5.1.1 No such user here\r\n");
        assert!(Refusal::NotLocal.reply().to_string().starts_with("554 5.7.1 "));
    }
}
