//! Workspaces are walls: every domain, mailbox (and later lead and campaign) belongs to one, and
//! a user reaches a workspace's objects only through a membership. Roles, strongest first:
//! owner (everything, including members and invites), admin (everything but granting ownership),
//! member (creates and edits domains and mailboxes), viewer (reads only).
//!
//! Managing people follows one rule, shared by the UI and the CLI: admins invite, re-role and
//! remove everyone but owners; only an owner grants, takes away or revokes ownership; and the last
//! owner can be neither removed nor demoted, so a workspace always has someone who can manage it.
//!
//! A workspace's settings (admins change them, with one audit entry per change listing what
//! changed): its name; its time zone, whose midnight resets daily limits; the default daily
//! limit new mailboxes get when their creator gives none; List-Unsubscribe headers on or off;
//! and the postal address campaign footers print (CAN-SPAM).

use std::fmt;
use std::str::FromStr;

use rusqlite::{Connection, OptionalExtension, Transaction};
use serde::Serialize;

use crate::audit;
use crate::auth::{Actor, users};
use crate::crypto::{random_token, token_hash};
use crate::error::{Error, Result};

/// How long an invite link stays valid.
pub const INVITE_SECONDS: i64 = 7 * 24 * 3600;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    Viewer,
    Member,
    Admin,
    Owner,
}

impl Role {
    pub const ALL: [Role; 4] = [Role::Owner, Role::Admin, Role::Member, Role::Viewer];

    pub fn as_str(self) -> &'static str {
        match self {
            Role::Owner => "owner",
            Role::Admin => "admin",
            Role::Member => "member",
            Role::Viewer => "viewer",
        }
    }

    /// May create and change domains and mailboxes.
    pub fn can_edit(self) -> bool {
        self >= Role::Member
    }

    /// May invite people, see the audit log.
    pub fn can_administer(self) -> bool {
        self >= Role::Admin
    }

    /// Fails with `Forbidden` unless the role is at least `needed`.
    pub fn require(self, needed: Role) -> Result<()> {
        if self >= needed { Ok(()) } else { Err(Error::Forbidden) }
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Role {
    type Err = Error;

    fn from_str(s: &str) -> Result<Role> {
        Role::ALL
            .into_iter()
            .find(|role| role.as_str() == s)
            .ok_or_else(|| Error::invalid("role", "Choose owner, admin, member or viewer."))
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct Workspace {
    pub id: i64,
    pub name: String,
    pub role: Role,
}

/// A user's access to one workspace: what every scoped handler starts from.
#[derive(Debug, Clone)]
pub struct Access {
    pub workspace: Workspace,
    pub actor: Actor,
}

pub fn check_name(input: &str) -> Result<String> {
    let name = input.trim();
    if name.is_empty() || name.chars().count() > 80 {
        return Err(Error::invalid("name", "Give the workspace a name of 1 to 80 characters."));
    }
    Ok(name.to_string())
}

fn role_from_sql(value: String) -> rusqlite::Result<Role> {
    value.parse().map_err(|_| rusqlite::Error::InvalidColumnType(0, value, rusqlite::types::Type::Text))
}

/// Creates a workspace owned by `owner`.
pub fn create(tx: &Transaction, name: &str, owner: i64, actor: &Actor, now: i64) -> Result<i64> {
    tx.execute("INSERT INTO workspaces (name, created_at) VALUES (?1, ?2)", (name, now))?;
    let id = tx.last_insert_rowid();
    tx.execute(
        "INSERT INTO memberships (workspace_id, user_id, role, created_at) VALUES (?1, ?2, 'owner', ?3)",
        (id, owner, now),
    )?;
    audit::record(tx, Some(id), actor, "workspace.create", name, "", now)?;
    Ok(id)
}

/// Adds (or changes) a membership.
pub fn add_member(tx: &Transaction, workspace: i64, user: i64, role: Role, actor: &Actor, now: i64) -> Result<()> {
    tx.execute(
        "INSERT INTO memberships (workspace_id, user_id, role, created_at) VALUES (?1, ?2, ?3, ?4) \
         ON CONFLICT (workspace_id, user_id) DO UPDATE SET role = excluded.role",
        (workspace, user, role.as_str(), now),
    )?;
    let email: String = tx.query_row("SELECT email FROM users WHERE id = ?1", [user], |row| row.get(0))?;
    audit::record(tx, Some(workspace), actor, "member.add", &email, role.as_str(), now)?;
    Ok(())
}

/// The workspaces a user belongs to, by name.
pub fn list_for_user(conn: &Connection, user: i64) -> rusqlite::Result<Vec<Workspace>> {
    let mut stmt = conn.prepare_cached(
        "SELECT w.id, w.name, m.role FROM workspaces w JOIN memberships m ON m.workspace_id = w.id \
         WHERE m.user_id = ?1 ORDER BY w.name, w.id",
    )?;
    let rows = stmt.query_map([user], |row| {
        Ok(Workspace { id: row.get(0)?, name: row.get(1)?, role: role_from_sql(row.get(2)?)? })
    })?;
    rows.collect()
}

/// The user's access to workspace `id`; `NotFound` when they are not a member.
pub fn access(conn: &Connection, user: i64, email: &str, id: i64) -> Result<Access> {
    let workspace = conn
        .query_row(
            "SELECT w.id, w.name, m.role FROM workspaces w JOIN memberships m ON m.workspace_id = w.id \
             WHERE m.user_id = ?1 AND w.id = ?2",
            (user, id),
            |row| Ok(Workspace { id: row.get(0)?, name: row.get(1)?, role: role_from_sql(row.get(2)?)? }),
        )
        .optional()?
        .ok_or(Error::NotFound)?;
    Ok(Access { workspace, actor: Actor::user(user, email) })
}

/// A workspace's name; `NotFound` when it does not exist.
pub fn name(conn: &Connection, id: i64) -> Result<String> {
    conn.prepare_cached("SELECT name FROM workspaces WHERE id = ?1")?
        .query_row([id], |row| row.get(0))
        .optional()?
        .ok_or(Error::NotFound)
}

/// Whether a workspace exists.
pub fn exists(conn: &Connection, id: i64) -> rusqlite::Result<bool> {
    conn.prepare_cached("SELECT EXISTS (SELECT 1 FROM workspaces WHERE id = ?1)")?.query_row([id], |row| row.get(0))
}

/// The first workspace made, if any.
pub fn first(conn: &Connection) -> rusqlite::Result<Option<i64>> {
    conn.prepare_cached("SELECT min(id) FROM workspaces")?.query_row([], |row| row.get(0))
}

/// A workspace's time zone (IANA name; UTC when unset or unknown): daily limits reset at its
/// midnight.
pub fn time_zone(conn: &Connection, id: i64) -> rusqlite::Result<chrono_tz::Tz> {
    let zone: Option<String> = conn
        .prepare_cached("SELECT time_zone FROM workspaces WHERE id = ?1")?
        .query_row([id], |row| row.get(0))
        .optional()?;
    Ok(zone.and_then(|zone| zone.parse().ok()).unwrap_or(chrono_tz::Tz::UTC))
}

/// Whether a workspace adds List-Unsubscribe headers (false for a workspace that is gone).
pub fn list_unsubscribe(conn: &Connection, id: i64) -> rusqlite::Result<bool> {
    Ok(conn
        .prepare_cached("SELECT list_unsubscribe FROM workspaces WHERE id = ?1")?
        .query_row([id], |row| row.get::<_, bool>(0))
        .optional()?
        .unwrap_or(false))
}

/// Turns a workspace's List-Unsubscribe headers on or off.
pub fn set_list_unsubscribe(tx: &Transaction, id: i64, enabled: bool) -> rusqlite::Result<()> {
    tx.prepare_cached("UPDATE workspaces SET list_unsubscribe = ?1 WHERE id = ?2")?.execute((enabled, id))?;
    Ok(())
}

/// Whether the workspace files a copy of what its mailboxes send in their Sent folders.
pub fn files_sent_copies(conn: &Connection, id: i64) -> Result<bool> {
    conn.prepare_cached("SELECT file_sent_copies FROM workspaces WHERE id = ?1")?
        .query_row([id], |row| row.get(0))
        .optional()?
        .ok_or(Error::NotFound)
}

/// Finds a workspace for the command line: by id or name, or the only one when `None`.
pub fn resolve_for_cli(conn: &Connection, wanted: Option<&str>) -> Result<i64> {
    let all: Vec<(i64, String)> = conn
        .prepare("SELECT id, name FROM workspaces ORDER BY id")?
        .query_map([], |row| Ok((row.get(0)?, row.get(1)?)))?
        .collect::<rusqlite::Result<_>>()?;
    match wanted {
        Some(w) => all
            .iter()
            .find(|(id, name)| id.to_string() == w || name.eq_ignore_ascii_case(w))
            .map(|(id, _)| *id)
            .ok_or_else(|| Error::invalid("workspace", format!("No workspace named or numbered \"{w}\"."))),
        None => match all.as_slice() {
            [(id, _)] => Ok(*id),
            [] => Err(Error::invalid("workspace", "There is no workspace yet: run \"inboxgrove admin create\" first.")),
            _ => Err(Error::invalid("workspace", "There are several workspaces: choose one with --workspace.")),
        },
    }
}

/// A workspace's settings, as the command line lists them (`workspace list --json`) and the
/// settings page shows them.
#[derive(Debug, Clone, Serialize)]
pub struct Summary {
    pub id: i64,
    pub name: String,
    pub time_zone: String,
    pub created_at: i64,
    /// The daily limit a new mailbox gets when its creator gives none.
    pub default_daily_limit: u32,
    /// Whether outgoing mail gets List-Unsubscribe headers.
    pub list_unsubscribe: bool,
    /// The physical postal address campaign footers carry (CAN-SPAM); empty until set.
    pub postal_address: String,
}

const SUMMARY: &str =
    "SELECT id, name, time_zone, created_at, default_daily_limit, list_unsubscribe, postal_address FROM workspaces";

fn summary_from_row(row: &rusqlite::Row) -> rusqlite::Result<Summary> {
    Ok(Summary {
        id: row.get(0)?,
        name: row.get(1)?,
        time_zone: row.get(2)?,
        created_at: row.get(3)?,
        default_daily_limit: row.get(4)?,
        list_unsubscribe: row.get(5)?,
        postal_address: row.get(6)?,
    })
}

/// Every workspace, by id.
pub fn list_all(conn: &Connection) -> rusqlite::Result<Vec<Summary>> {
    conn.prepare_cached(&format!("{SUMMARY} ORDER BY id"))?.query_map([], summary_from_row)?.collect()
}

/// One workspace's settings; `NotFound` when it does not exist.
pub fn summary(conn: &Connection, id: i64) -> Result<Summary> {
    conn.prepare_cached(&format!("{SUMMARY} WHERE id = ?1"))?
        .query_row([id], summary_from_row)
        .optional()?
        .ok_or(Error::NotFound)
}

/// The daily limit a new mailbox of the workspace gets when its creator gives none; `NotFound`
/// when the workspace does not exist.
pub fn default_daily_limit(conn: &Connection, id: i64) -> Result<u32> {
    conn.prepare_cached("SELECT default_daily_limit FROM workspaces WHERE id = ?1")?
        .query_row([id], |row| row.get(0))
        .optional()?
        .ok_or(Error::NotFound)
}

/// The postal address campaign footers of the workspace carry (empty when unset); `NotFound`
/// when the workspace does not exist.
pub fn postal_address(conn: &Connection, id: i64) -> Result<String> {
    conn.prepare_cached("SELECT postal_address FROM workspaces WHERE id = ?1")?
        .query_row([id], |row| row.get(0))
        .optional()?
        .ok_or(Error::NotFound)
}

/// Checks an IANA time zone name (e.g. `Europe/Berlin`) and returns its canonical form.
pub fn check_time_zone(input: &str) -> Result<String> {
    input.trim().parse::<chrono_tz::Tz>().map(|zone| zone.name().to_string()).map_err(|_| {
        Error::invalid("time_zone", format!("\"{}\" is not an IANA time zone such as Europe/Berlin.", input.trim()))
    })
}

/// The most characters a postal address may have.
pub const MAX_POSTAL_ADDRESS: usize = 500;

fn daily_limit_error() -> Error {
    let max = crate::mailbox::MAX_DAILY_LIMIT;
    Error::invalid("default_daily_limit", format!("The default daily limit must be a whole number from 0 to {max}."))
}

/// Checks a default daily limit for new mailboxes (0 to [`crate::mailbox::MAX_DAILY_LIMIT`]).
pub fn check_default_daily_limit(limit: u32) -> Result<u32> {
    if limit > crate::mailbox::MAX_DAILY_LIMIT {
        return Err(daily_limit_error());
    }
    Ok(limit)
}

/// Reads a default daily limit typed into a form (see [`check_default_daily_limit`]).
pub fn parse_default_daily_limit(input: &str) -> Result<u32> {
    input.trim().parse().map_err(|_| daily_limit_error()).and_then(check_default_daily_limit)
}

/// Checks a postal address and returns its stored form: line breaks as `\n`, trimmed, at most
/// [`MAX_POSTAL_ADDRESS`] characters, no control characters but line breaks and tabs.
pub fn check_postal_address(input: &str) -> Result<String> {
    let address = input.replace("\r\n", "\n").replace('\r', "\n").trim().to_string();
    if address.chars().count() > MAX_POSTAL_ADDRESS {
        return Err(Error::invalid(
            "postal_address",
            format!("Keep the postal address to {MAX_POSTAL_ADDRESS} characters or fewer."),
        ));
    }
    if address.chars().any(|c| c.is_control() && c != '\n' && c != '\t') {
        return Err(Error::invalid("postal_address", "The postal address contains characters that cannot be printed."));
    }
    Ok(address)
}

/// Changes to a workspace's settings; `None` leaves a setting as it is.
#[derive(Debug, Clone, Default)]
pub struct Changes {
    pub name: Option<String>,
    /// An IANA time zone name: daily limits reset at its midnight.
    pub time_zone: Option<String>,
    /// The daily limit of new mailboxes created without one (existing mailboxes keep theirs).
    pub default_daily_limit: Option<u32>,
    pub list_unsubscribe: Option<bool>,
    /// Several lines allowed; empty removes it.
    pub postal_address: Option<String>,
}

impl Changes {
    /// Checks every given value and puts it in its stored form.
    fn validate(&mut self) -> Result<()> {
        if let Some(name) = &mut self.name {
            *name = check_name(name)?;
        }
        if let Some(zone) = &mut self.time_zone {
            *zone = check_time_zone(zone)?;
        }
        if let Some(limit) = self.default_daily_limit {
            check_default_daily_limit(limit)?;
        }
        if let Some(address) = &mut self.postal_address {
            *address = check_postal_address(address)?;
        }
        Ok(())
    }

    /// Leaves out the settings whose new value is the workspace's current one.
    fn drop_unchanged(&mut self, current: &Summary) {
        self.name.take_if(|name| *name == current.name);
        self.time_zone.take_if(|zone| *zone == current.time_zone);
        self.default_daily_limit.take_if(|limit| *limit == current.default_daily_limit);
        self.list_unsubscribe.take_if(|on| *on == current.list_unsubscribe);
        self.postal_address.take_if(|address| *address == current.postal_address);
    }

    /// Whether no setting is given.
    pub fn is_empty(&self) -> bool {
        self.name.is_none()
            && self.time_zone.is_none()
            && self.default_daily_limit.is_none()
            && self.list_unsubscribe.is_none()
            && self.postal_address.is_none()
    }

    /// What changed, for the audit log: `name "Acme", List-Unsubscribe on`.
    fn describe(&self) -> String {
        let mut parts = Vec::new();
        if let Some(name) = &self.name {
            parts.push(format!("name \"{name}\""));
        }
        if let Some(zone) = &self.time_zone {
            parts.push(format!("time zone {zone}"));
        }
        if let Some(limit) = self.default_daily_limit {
            parts.push(format!("default daily limit {limit}"));
        }
        if let Some(on) = self.list_unsubscribe {
            parts.push(format!("List-Unsubscribe {}", if on { "on" } else { "off" }));
        }
        match self.postal_address.as_deref() {
            Some("") => parts.push("postal address removed".to_string()),
            Some(address) => parts.push(format!("postal address \"{}\"", address_on_one_line(address))),
            None => {}
        }
        parts.join(", ")
    }
}

/// A multi-line postal address on one line, its lines separated by commas.
pub fn address_on_one_line(address: &str) -> String {
    address.lines().map(str::trim).filter(|line| !line.is_empty()).collect::<Vec<_>>().join(", ")
}

/// Applies `changes` to the workspace's settings, with one audit entry listing what changed;
/// values equal to the current ones are no change (nothing written, nothing audited). Needs the
/// admin role.
pub fn update(tx: &Transaction, access: &Access, mut changes: Changes, now: i64) -> Result<Summary> {
    access.workspace.role.require(Role::Admin)?;
    changes.validate()?;
    let id = access.workspace.id;
    let current = summary(tx, id)?;
    changes.drop_unchanged(&current);
    if changes.is_empty() {
        return Ok(current);
    }
    tx.execute(
        "UPDATE workspaces SET name = coalesce(?1, name), time_zone = coalesce(?2, time_zone), \
         default_daily_limit = coalesce(?3, default_daily_limit), list_unsubscribe = coalesce(?4, list_unsubscribe), \
         postal_address = coalesce(?5, postal_address) WHERE id = ?6",
        (
            &changes.name,
            &changes.time_zone,
            changes.default_daily_limit,
            changes.list_unsubscribe,
            &changes.postal_address,
            id,
        ),
    )?;
    audit::record(tx, Some(id), &access.actor, "workspace.update", &current.name, &changes.describe(), now)?;
    summary(tx, id)
}

/// The rule for managing someone with `role`: admins manage everyone but owners; only an owner
/// touches an owner (or makes one).
fn require_manager_of(access: &Access, role: Role) -> Result<()> {
    access.workspace.role.require(Role::Admin)?;
    if role == Role::Owner {
        access.workspace.role.require(Role::Owner)?;
    }
    Ok(())
}

/// Finds `email` among the workspace's members, checks the caller may manage them, and refuses
/// to take the workspace's last owner away (`is_leaving`: the change ends their ownership).
fn managed_member(tx: &Transaction, access: &Access, email: &str, is_leaving: bool) -> Result<Member> {
    access.workspace.role.require(Role::Admin)?;
    let email = users::normalize_email(email)?;
    let all = members(tx, access.workspace.id)?;
    let member = all.iter().find(|m| m.email == email).cloned().ok_or(Error::NotFound)?;
    require_manager_of(access, member.role)?;
    let owners = all.iter().filter(|m| m.role == Role::Owner).count();
    if member.role == Role::Owner && is_leaving && owners == 1 {
        return Err(Error::invalid("member", format!("{email} is the last owner; make someone else owner first.")));
    }
    Ok(member)
}

/// Ends `email`'s membership of the workspace, with an audit entry. Only an owner removes an
/// owner, and the last owner stays.
pub fn remove_member(tx: &Transaction, access: &Access, email: &str, now: i64) -> Result<Member> {
    let member = managed_member(tx, access, email, true)?;
    let workspace = access.workspace.id;
    tx.execute("DELETE FROM memberships WHERE workspace_id = ?1 AND user_id = ?2", (workspace, member.user_id))?;
    audit::record(tx, Some(workspace), &access.actor, "member.remove", &member.email, member.role.as_str(), now)?;
    Ok(member)
}

/// Gives `email` the role `role`, with an audit entry ("admin → member"); the same role is no
/// change. Only an owner grants or takes away ownership, and the last owner stays an owner.
pub fn change_role(tx: &Transaction, access: &Access, email: &str, role: Role, now: i64) -> Result<Member> {
    let member = managed_member(tx, access, email, role != Role::Owner)?;
    require_manager_of(access, role)?;
    if member.role == role {
        return Ok(member);
    }
    let workspace = access.workspace.id;
    tx.execute(
        "UPDATE memberships SET role = ?1 WHERE workspace_id = ?2 AND user_id = ?3",
        (role.as_str(), workspace, member.user_id),
    )?;
    let detail = format!("{} → {}", member.role, role);
    audit::record(tx, Some(workspace), &access.actor, "member.role_change", &member.email, &detail, now)?;
    Ok(Member { role, ..member })
}

#[derive(Debug, Clone, Serialize)]
pub struct Member {
    pub user_id: i64,
    pub email: String,
    pub role: Role,
}

/// The ids of the workspaces `email` (any case) is a member of.
pub fn workspaces_of_member(conn: &Connection, email: &str) -> rusqlite::Result<Vec<i64>> {
    let mut stmt = conn.prepare_cached(
        "SELECT m.workspace_id FROM memberships m JOIN users u ON u.id = m.user_id \
         WHERE u.email = ?1 COLLATE NOCASE ORDER BY m.workspace_id",
    )?;
    stmt.query_map([email.trim()], |row| row.get(0))?.collect()
}

pub fn members(conn: &Connection, workspace: i64) -> rusqlite::Result<Vec<Member>> {
    let mut stmt = conn.prepare_cached(
        "SELECT u.id, u.email, m.role FROM memberships m JOIN users u ON u.id = m.user_id \
         WHERE m.workspace_id = ?1 ORDER BY u.email",
    )?;
    let rows = stmt.query_map([workspace], |row| {
        Ok(Member { user_id: row.get(0)?, email: row.get(1)?, role: role_from_sql(row.get(2)?)? })
    })?;
    rows.collect()
}

/// Creates an invite link token for `email` with `role`. Only an owner may invite an owner.
pub fn invite(tx: &Transaction, access: &Access, email: &str, role: Role, now: i64) -> Result<String> {
    require_manager_of(access, role)?;
    let email = users::normalize_email(email)?;
    let token = random_token();
    tx.execute(
        "INSERT INTO invites (workspace_id, token_hash, email, role, created_by, created_at, expires_at) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
        (
            access.workspace.id,
            token_hash(&token),
            &email,
            role.as_str(),
            access.actor.user_id,
            now,
            now + INVITE_SECONDS,
        ),
    )?;
    audit::record(tx, Some(access.workspace.id), &access.actor, "member.invite", &email, role.as_str(), now)?;
    Ok(token)
}

/// An invite not yet used, revoked or expired, as the members page lists it.
#[derive(Debug, Clone, Serialize)]
pub struct PendingInvite {
    pub id: i64,
    pub email: String,
    pub role: Role,
    /// The inviter's email; `None` when that account is gone.
    pub invited_by: Option<String>,
    pub created_at: i64,
    pub expires_at: i64,
}

/// The workspace's pending invites, newest first.
pub fn pending_invites(conn: &Connection, workspace: i64, now: i64) -> rusqlite::Result<Vec<PendingInvite>> {
    conn.prepare_cached(
        "SELECT i.id, i.email, i.role, u.email, i.created_at, i.expires_at FROM invites i \
         LEFT JOIN users u ON u.id = i.created_by \
         WHERE i.workspace_id = ?1 AND i.used_at IS NULL AND i.expires_at > ?2 ORDER BY i.created_at DESC, i.id DESC",
    )?
    .query_map((workspace, now), |row| {
        Ok(PendingInvite {
            id: row.get(0)?,
            email: row.get(1)?,
            role: role_from_sql(row.get(2)?)?,
            invited_by: row.get(3)?,
            created_at: row.get(4)?,
            expires_at: row.get(5)?,
        })
    })?
    .collect()
}

/// Withdraws a pending invite: its link stops working at once. The invite row is deleted (the
/// audit entry keeps the record); an owner invite needs an owner to revoke it.
pub fn revoke_invite(tx: &Transaction, access: &Access, invite: i64, now: i64) -> Result<PendingInvite> {
    access.workspace.role.require(Role::Admin)?;
    let pending = pending_invites(tx, access.workspace.id, now)?;
    let found = pending.into_iter().find(|i| i.id == invite).ok_or(Error::NotFound)?;
    require_manager_of(access, found.role)?;
    tx.execute("DELETE FROM invites WHERE id = ?1 AND workspace_id = ?2", (invite, access.workspace.id))?;
    audit::record(
        tx,
        Some(access.workspace.id),
        &access.actor,
        "member.invite_revoke",
        &found.email,
        found.role.as_str(),
        now,
    )?;
    Ok(found)
}

/// Why an invite link does not open: what the page for a dead link says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeadInvite {
    Used,
    Expired,
    /// Revoked, or never issued: the appliance cannot tell these apart.
    Unknown,
}

/// Why the invite link `token` no longer works (call it when [`find_invite`] found nothing).
pub fn dead_invite(conn: &Connection, token: &str, now: i64) -> rusqlite::Result<DeadInvite> {
    let state: Option<(Option<i64>, i64)> = conn
        .query_row("SELECT used_at, expires_at FROM invites WHERE token_hash = ?1", [token_hash(token)], |row| {
            Ok((row.get(0)?, row.get(1)?))
        })
        .optional()?;
    Ok(match state {
        Some((Some(_), _)) => DeadInvite::Used,
        Some((None, expires_at)) if expires_at <= now => DeadInvite::Expired,
        _ => DeadInvite::Unknown,
    })
}

/// A live invite: what the invite page shows.
#[derive(Debug, Clone)]
pub struct Invite {
    pub id: i64,
    pub workspace_id: i64,
    pub workspace_name: String,
    pub email: String,
    pub role: Role,
}

pub fn find_invite(conn: &Connection, token: &str, now: i64) -> rusqlite::Result<Option<Invite>> {
    conn.query_row(
        "SELECT i.id, i.workspace_id, w.name, i.email, i.role FROM invites i JOIN workspaces w ON w.id = i.workspace_id \
         WHERE i.token_hash = ?1 AND i.used_at IS NULL AND i.expires_at > ?2",
        (token_hash(token), now),
        |row| {
            Ok(Invite {
                id: row.get(0)?,
                workspace_id: row.get(1)?,
                workspace_name: row.get(2)?,
                email: row.get(3)?,
                role: role_from_sql(row.get(4)?)?,
            })
        },
    )
    .optional()
}

/// Consumes an invite: joins the workspace as `user` (an existing account or one just created).
pub fn accept_invite(tx: &Transaction, invite: &Invite, user: i64, email: &str, now: i64) -> Result<()> {
    let changed = tx.execute("UPDATE invites SET used_at = ?1 WHERE id = ?2 AND used_at IS NULL", (now, invite.id))?;
    if changed == 0 {
        return Err(Error::NotFound);
    }
    add_member(tx, invite.workspace_id, user, invite.role, &Actor::user(user, email), now)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_postal_address_keeps_its_lines_and_is_trimmed() {
        let address = check_postal_address("  Acme Outreach\r\n1 Main St\r\nSpringfield  \n").unwrap();
        assert_eq!(address, "Acme Outreach\n1 Main St\nSpringfield");
        assert_eq!(address_on_one_line(&address), "Acme Outreach, 1 Main St, Springfield");
        assert_eq!(check_postal_address(&"x".repeat(MAX_POSTAL_ADDRESS)).unwrap().len(), MAX_POSTAL_ADDRESS);
        for bad in ["x".repeat(MAX_POSTAL_ADDRESS + 1), "1 Main St\u{0}".to_string()] {
            let error = check_postal_address(&bad).unwrap_err();
            assert!(matches!(error, Error::Invalid { field: Some("postal_address"), .. }), "{error}");
        }
    }

    #[test]
    fn the_default_daily_limit_is_a_whole_number_up_to_the_mailbox_maximum() {
        assert_eq!(parse_default_daily_limit(" 25 ").unwrap(), 25);
        assert_eq!(parse_default_daily_limit("0").unwrap(), 0);
        assert_eq!(parse_default_daily_limit("10000").unwrap(), 10_000);
        for bad in ["10001", "-1", "2.5", "", "forty"] {
            let error = parse_default_daily_limit(bad).unwrap_err();
            assert!(matches!(error, Error::Invalid { field: Some("default_daily_limit"), .. }), "{bad}");
            assert_eq!(error.to_string(), "The default daily limit must be a whole number from 0 to 10000.");
        }
    }

    #[test]
    fn changes_describe_what_changed_in_one_line() {
        let changes = Changes {
            default_daily_limit: Some(25),
            list_unsubscribe: Some(true),
            postal_address: Some("1 Main St\nSpringfield".into()),
            ..Default::default()
        };
        assert_eq!(
            changes.describe(),
            "default daily limit 25, List-Unsubscribe on, postal address \"1 Main St, Springfield\""
        );
        let removed = Changes { postal_address: Some(String::new()), ..Default::default() };
        assert_eq!(removed.describe(), "postal address removed");
    }
}
