//! Which mailboxes a recipient address of this appliance delivers to — or why it does not. The
//! one resolution for mail from outside (the inbound MX, at RCPT and again when storing) and for
//! mail between mailboxes of the appliance (`mta::enqueue`'s local branch).
//!
//! The rule, for `local@domain` (compared lowercased):
//! 1. The domain must be in the `domains` table (any workspace); otherwise the address is not
//!    ours ([`Refusal::NotLocal`]: the MX refuses it, `enqueue` queues it for remote delivery).
//! 2. `unsubscribe+…@domain` is the mailto form of List-Unsubscribe (`mta::unsubscribe`): it
//!    delivers to no mailbox ([`Resolved::Unsubscribe`]); `mailstore::receive` acts on it.
//! 3. The mailbox whose address is `local@domain` gets it.
//! 4. Else the alias `local@domain` (table `aliases`) gets it: every one of its target mailboxes,
//!    which are mailboxes of the domain's workspace (an alias whose targets are all gone counts
//!    as absent). Aliases deliver locally only; nothing is forwarded off the appliance.
//! 5. With plus-addressing, `user+tag@domain` is then tried as `user@domain` (rules 3 and 4).
//! 6. Else the domain's catch-all mailbox (`domains.catch_all_mailbox_id`, when it is a mailbox
//!    of the same workspace) gets it — role addresses included: a domain with a catch-all sends
//!    everything nobody claims there.
//! 7. Role addresses — `postmaster@`, `abuse@` and `dmarc-reports@` (the DMARC `rua` address the
//!    published records name) — go to the domain's role mailbox (`domains.role_mailbox_id`,
//!    when it is a mailbox of the same workspace). It is chosen when the domain is added: by
//!    default a dedicated `postmaster@DOMAIN` mailbox marked as a role mailbox (`mailboxes.role`:
//!    read over IMAP, never exported, never in a rotation pool), or an existing mailbox of the
//!    workspace; an admin can change it on the domain page. Domains from before that choice
//!    (or whose role mailbox was removed) fall back to the domain's first mailbox (lowest id),
//!    else to the workspace's first mailbox. An alias of a role's name (rule 4) sends that one
//!    elsewhere. A workspace without any mailbox cannot receive them (550 5.1.1).
//! 8. Anything else: [`Refusal::UnknownUser`] (550 5.1.1 on the wire). A bare `postmaster` (RFC
//!    5321 §4.5.1) is the postmaster of the host name's domain or its parent, when one is local.
//!
//! So a mailbox always beats an alias, and both beat the catch-all.

use rusqlite::{Connection, OptionalExtension};

/// Local parts every local domain answers to, even without a mailbox of that name.
pub const ROLE_LOCAL_PARTS: [&str; 3] = ["postmaster", "abuse", "dmarc-reports"];

/// A mailbox a recipient resolves to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Local {
    pub mailbox_id: i64,
    pub workspace_id: i64,
}

/// What a local address delivers to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Resolved {
    /// These mailboxes (several for an alias), in a stable order.
    Mailboxes(Vec<Local>),
    /// A mailto List-Unsubscribe request: no mailbox gets it (rule 2).
    Unsubscribe,
}

impl Resolved {
    /// The mailboxes it delivers to (none for an unsubscribe request).
    pub fn mailboxes(&self) -> &[Local] {
        match self {
            Resolved::Mailboxes(found) => found,
            Resolved::Unsubscribe => &[],
        }
    }
}

/// Why an address delivers to no mailbox here.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// Not `local@domain`.
    BadSyntax,
    /// The domain is not one of ours.
    NotLocal,
    /// A local domain, but no such mailbox.
    UnknownUser,
}

/// A local domain's row.
struct Domain {
    id: i64,
    name: String,
    workspace_id: i64,
    role_mailbox_id: Option<i64>,
    catch_all_mailbox_id: Option<i64>,
}

/// Resolves `address` (see the module doc). `hostname` is the appliance's host name.
pub fn resolve(conn: &Connection, address: &str, hostname: &str) -> rusqlite::Result<Result<Resolved, Refusal>> {
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
    if is_unsubscribe(&local) {
        return Ok(Ok(Resolved::Unsubscribe));
    }
    let base = local.split_once('+').map(|(base, _)| base).filter(|base| !base.is_empty());
    for candidate in std::iter::once(local.as_str()).chain(base) {
        if let Some(found) = mailbox_by_local_part(conn, &domain, candidate)? {
            return Ok(Ok(Resolved::Mailboxes(vec![found])));
        }
        let targets = alias_targets(conn, &domain, candidate)?;
        if !targets.is_empty() {
            return Ok(Ok(Resolved::Mailboxes(targets)));
        }
    }
    if let Some(found) = catch_all(conn, &domain)? {
        return Ok(Ok(Resolved::Mailboxes(vec![found])));
    }
    let base = base.unwrap_or(&local);
    if ROLE_LOCAL_PARTS.contains(&base) {
        return Ok(role_mailbox(conn, &domain)?
            .map(|found| Resolved::Mailboxes(vec![found]))
            .ok_or(Refusal::UnknownUser));
    }
    Ok(Err(Refusal::UnknownUser))
}

/// Whether a local part is a mailto List-Unsubscribe address (rule 2).
pub fn is_unsubscribe(local: &str) -> bool {
    local.len() > crate::tracking::unsubscribe::MAILTO_PREFIX.len()
        && local.to_ascii_lowercase().starts_with(crate::tracking::unsubscribe::MAILTO_PREFIX)
}

/// `postmaster` without a domain: the postmaster of the host name's domain or its parent.
fn bare_postmaster(conn: &Connection, hostname: &str) -> rusqlite::Result<Result<Resolved, Refusal>> {
    let parent = hostname.split_once('.').map(|(_, parent)| parent);
    for name in std::iter::once(hostname).chain(parent) {
        if let Some(domain) = local_domain(conn, name)? {
            return resolve(conn, &format!("postmaster@{}", domain.name), hostname);
        }
    }
    Ok(Err(Refusal::UnknownUser))
}

/// The domain's row when it is one of ours.
fn local_domain(conn: &Connection, name: &str) -> rusqlite::Result<Option<Domain>> {
    let Ok(name) = crate::dns::name::normalize_domain(name) else {
        return Ok(None);
    };
    conn.prepare_cached(
        "SELECT id, name, workspace_id, role_mailbox_id, catch_all_mailbox_id FROM domains WHERE name = ?1",
    )?
    .query_row([name], |row| {
        Ok(Domain {
            id: row.get(0)?,
            name: row.get(1)?,
            workspace_id: row.get(2)?,
            role_mailbox_id: row.get(3)?,
            catch_all_mailbox_id: row.get(4)?,
        })
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

/// The target mailboxes of the alias `local@domain` that belong to the domain's workspace.
fn alias_targets(conn: &Connection, domain: &Domain, local: &str) -> rusqlite::Result<Vec<Local>> {
    conn.prepare_cached(
        "SELECT m.id FROM aliases a JOIN alias_targets t ON t.alias_id = a.id \
         JOIN mailboxes m ON m.id = t.mailbox_id AND m.workspace_id = a.workspace_id \
         WHERE a.domain_id = ?1 AND a.local_part = ?2 AND a.workspace_id = ?3 ORDER BY m.id",
    )?
    .query_map((domain.id, local, domain.workspace_id), |row| {
        Ok(Local { mailbox_id: row.get(0)?, workspace_id: domain.workspace_id })
    })?
    .collect()
}

/// The domain's catch-all mailbox, when set and in the domain's workspace.
fn catch_all(conn: &Connection, domain: &Domain) -> rusqlite::Result<Option<Local>> {
    let Some(id) = domain.catch_all_mailbox_id else { return Ok(None) };
    conn.prepare_cached("SELECT id FROM mailboxes WHERE id = ?1 AND workspace_id = ?2")?
        .query_row((id, domain.workspace_id), |row| {
            Ok(Local { mailbox_id: row.get(0)?, workspace_id: domain.workspace_id })
        })
        .optional()
}

/// The mailbox that receives the domain's role addresses (module doc, rule 7).
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

    fn local(ids: &[i64]) -> Result<Resolved, Refusal> {
        Ok(Resolved::Mailboxes(ids.iter().map(|&mailbox_id| Local { mailbox_id, workspace_id: 1 }).collect()))
    }

    #[tokio::test]
    async fn recipients_resolve_by_the_rules() {
        let (_dir, store) = crate::store::open_temp();
        store
            .write(|tx| {
                seed(tx);
                let host = "mail.grove.test";
                assert_eq!(resolve(tx, "Ann@Grove.TEST", host)?, local(&[3]));
                assert_eq!(resolve(tx, "ann+campaign-7@grove.test", host)?, local(&[3]), "plus-addressing");
                assert_eq!(resolve(tx, "nobody@grove.test", host)?, Err(Refusal::UnknownUser));
                assert_eq!(resolve(tx, "ann@elsewhere.test", host)?, Err(Refusal::NotLocal));
                assert_eq!(resolve(tx, "ann", host)?, Err(Refusal::BadSyntax));
                assert_eq!(
                    resolve(tx, "Unsubscribe+1-2-ab@grove.test", host)?,
                    Ok(Resolved::Unsubscribe),
                    "mailto unsubscribe"
                );
                assert_eq!(resolve(tx, "unsubscribe+@grove.test", host)?, Err(Refusal::UnknownUser));
                assert_eq!(resolve(tx, "postmaster@grove.test", host)?, local(&[3]), "the domain's first mailbox");
                assert_eq!(resolve(tx, "dmarc-reports@grove.test", host)?, local(&[3]));
                assert_eq!(resolve(tx, "abuse@grove.test", host)?, local(&[9]), "a real mailbox wins");
                assert_eq!(resolve(tx, "postmaster@empty.test", host)?, local(&[3]), "the workspace's first mailbox");
                assert_eq!(resolve(tx, "postmaster", host)?, local(&[3]), "the host name's domain");
                assert_eq!(resolve(tx, "postmaster@lonely.test", host)?, Err(Refusal::UnknownUser));
                tx.execute("UPDATE domains SET role_mailbox_id = 5 WHERE id = 1", [])?;
                assert_eq!(resolve(tx, "postmaster@grove.test", host)?, local(&[5]), "the designated mailbox");
                Ok::<_, rusqlite::Error>(())
            })
            .await
            .unwrap();
    }

    #[tokio::test]
    async fn role_addresses_reach_the_dedicated_role_mailbox() {
        let (_dir, store) = crate::store::open_temp();
        store
            .write(|tx| {
                seed(tx);
                tx.execute_batch(
                    "INSERT INTO mailboxes (id, workspace_id, domain_id, local_part, address, first_name, last_name,
                        display_name, password_hash, role, created_at) VALUES
                       (7, 1, 2, 'postmaster', 'postmaster@empty.test', 'P', '', 'P', 'x', 1, 0);
                     UPDATE domains SET role_mailbox_id = 7 WHERE id = 2;",
                )?;
                let host = "mail.grove.test";
                for role in ["postmaster", "abuse", "Dmarc-Reports", "abuse+fbl"] {
                    assert_eq!(resolve(tx, &format!("{role}@empty.test"), host)?, local(&[7]), "{role}");
                }
                assert_eq!(resolve(tx, "nobody@empty.test", host)?, Err(Refusal::UnknownUser));
                tx.execute("DELETE FROM mailboxes WHERE id = 7", [])?;
                assert_eq!(resolve(tx, "abuse@empty.test", host)?, local(&[3]), "the fallback once it is gone");
                Ok::<_, rusqlite::Error>(())
            })
            .await
            .unwrap();
    }

    #[tokio::test]
    async fn aliases_and_the_catch_all_come_after_mailboxes() {
        let (_dir, store) = crate::store::open_temp();
        store
            .write(|tx| {
                seed(tx);
                tx.execute_batch(
                    "INSERT INTO mailboxes (id, workspace_id, domain_id, local_part, address, first_name, last_name,
                        display_name, password_hash, created_at) VALUES
                       (20, 2, 3, 'zed', 'zed@lonely.test', 'Z', 'Z', 'Z', 'x', 0);
                     INSERT INTO aliases (id, workspace_id, domain_id, local_part, address, created_at) VALUES
                       (1, 1, 1, 'sales', 'sales@grove.test', 0), (2, 1, 1, 'ann', 'ann@grove.test', 0),
                       (3, 1, 1, 'postmaster', 'postmaster@grove.test', 0), (4, 1, 1, 'gone', 'gone@grove.test', 0),
                       (5, 1, 1, 'leak', 'leak@grove.test', 0);
                     INSERT INTO alias_targets (alias_id, mailbox_id) VALUES
                       (1, 5), (1, 3), (2, 5), (3, 9), (5, 20);",
                )?;
                let host = "mail.grove.test";
                assert_eq!(resolve(tx, "Sales@grove.test", host)?, local(&[3, 5]), "every target");
                assert_eq!(resolve(tx, "sales+q3@grove.test", host)?, local(&[3, 5]), "plus-addressing");
                assert_eq!(resolve(tx, "ann@grove.test", host)?, local(&[3]), "a mailbox beats an alias");
                assert_eq!(resolve(tx, "postmaster@grove.test", host)?, local(&[9]), "an alias routes a role");
                assert_eq!(resolve(tx, "postmaster", host)?, local(&[3]), "the host name's own domain has no alias");
                assert_eq!(resolve(tx, "gone@grove.test", host)?, Err(Refusal::UnknownUser), "no targets");
                assert_eq!(resolve(tx, "leak@grove.test", host)?, Err(Refusal::UnknownUser), "other workspace");

                tx.execute("UPDATE domains SET catch_all_mailbox_id = 5 WHERE id = 1", [])?;
                assert_eq!(resolve(tx, "nobody@grove.test", host)?, local(&[5]), "the catch-all");
                assert_eq!(resolve(tx, "gone@grove.test", host)?, local(&[5]));
                assert_eq!(resolve(tx, "abuse@grove.test", host)?, local(&[9]), "a mailbox beats the catch-all");
                assert_eq!(resolve(tx, "dmarc-reports@grove.test", host)?, local(&[5]), "roles go to the catch-all");
                assert_eq!(resolve(tx, "sales@grove.test", host)?, local(&[3, 5]), "an alias beats the catch-all");
                tx.execute("UPDATE domains SET catch_all_mailbox_id = 20 WHERE id = 1", [])?;
                assert_eq!(
                    resolve(tx, "nobody@grove.test", host)?,
                    Err(Refusal::UnknownUser),
                    "another workspace's mailbox is no catch-all"
                );
                Ok::<_, rusqlite::Error>(())
            })
            .await
            .unwrap();
    }
}
