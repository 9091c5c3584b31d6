//! User accounts and the one-time setup link.
//!
//! While no user exists, each start creates a setup token (only its hash is stored) and prints
//! the link; opening it lets one person create the first admin, who owns a first workspace. The
//! token is consumed in the same transaction that creates the user, so the link works once.

use rusqlite::{Connection, OptionalExtension, Transaction};

use crate::app::App;
use crate::auth::{Actor, password, sessions, throttle};
use crate::crypto::{random_token, same_secret, token_hash};
use crate::error::{Error, Result};
use crate::workspaces::{self, Role};

const SETUP_TOKEN: &str = "setup_token_hash";

#[derive(Debug, Clone)]
pub struct User {
    pub id: i64,
    pub email: String,
}

/// Normalizes and checks an email address typed by a person.
pub fn normalize_email(input: &str) -> Result<String> {
    let email = input.trim().to_lowercase();
    let valid = email.len() <= 254
        && email.split_once('@').is_some_and(|(local, domain)| {
            !local.is_empty() && domain.contains('.') && !domain.starts_with('.') && !domain.ends_with('.')
        })
        && !email.contains(char::is_whitespace)
        && email.matches('@').count() == 1;
    if valid { Ok(email) } else { Err(Error::invalid("email", "Enter an email address like name@example.com.")) }
}

pub fn count(conn: &Connection) -> rusqlite::Result<i64> {
    conn.query_row("SELECT count(*) FROM users", [], |row| row.get(0))
}

pub fn find_by_email(conn: &Connection, email: &str) -> rusqlite::Result<Option<(User, String)>> {
    conn.query_row("SELECT id, email, password_hash FROM users WHERE email = ?1", [email], |row| {
        Ok((User { id: row.get(0)?, email: row.get(1)? }, row.get(2)?))
    })
    .optional()
}

/// Inserts a user; a duplicate email is a conflict.
pub fn insert(tx: &Transaction, email: &str, password_hash: &str, now: i64) -> Result<User> {
    if find_by_email(tx, email)?.is_some() {
        return Err(Error::Conflict(format!("An account for {email} already exists.")));
    }
    tx.execute(
        "INSERT INTO users (email, password_hash, created_at) VALUES (?1, ?2, ?3)",
        (email, password_hash, now),
    )?;
    Ok(User { id: tx.last_insert_rowid(), email: email.to_string() })
}

/// When no user exists yet, makes a fresh setup token and returns the setup link.
pub async fn setup_link(app: &App) -> Result<Option<String>> {
    let token = random_token();
    let hash = token_hash(&token);
    let created = app
        .store
        .write(move |tx| {
            if count(tx)? > 0 {
                tx.execute("DELETE FROM settings WHERE key = ?1", [SETUP_TOKEN])?;
                return Ok::<_, Error>(false);
            }
            tx.execute(
                "INSERT INTO settings (key, value) VALUES (?1, ?2) ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                (SETUP_TOKEN, hash),
            )?;
            Ok(true)
        })
        .await?;
    Ok(created.then(|| format!("{}/setup/{token}", app.config.http.base_url)))
}

/// Whether `token` is the live setup token.
pub fn setup_token_valid(conn: &Connection, token: &str) -> rusqlite::Result<bool> {
    let stored: Option<String> =
        conn.query_row("SELECT value FROM settings WHERE key = ?1", [SETUP_TOKEN], |row| row.get(0)).optional()?;
    Ok(stored.is_some_and(|stored| same_secret(&stored, &token_hash(token))))
}

/// Creates the first admin through the setup link, with a first workspace, and signs them in.
/// Returns the session token.
pub async fn complete_setup(
    app: &App,
    token: String,
    email: &str,
    password: String,
    workspace: &str,
) -> Result<String> {
    let email = normalize_email(email)?;
    password::check_user_password(&password)?;
    let workspace = workspaces::check_name(workspace)?;
    let hash = password::hash_user_password(password).await?;
    let now = app.clock.unix();
    app.store
        .write(move |tx| {
            if !setup_token_valid(tx, &token)? || count(tx)? > 0 {
                return Err(Error::NotFound);
            }
            tx.execute("DELETE FROM settings WHERE key = ?1", [SETUP_TOKEN])?;
            let user = insert(tx, &email, &hash, now)?;
            let actor = Actor::user(user.id, &user.email);
            workspaces::create(tx, &workspace, user.id, &actor, now)?;
            Ok(sessions::create(tx, user.id, now)?)
        })
        .await
}

/// Creates an admin from the command line; the first one also gets a first workspace.
pub async fn create_admin(app: &App, email: &str, password: String) -> Result<User> {
    let email = normalize_email(email)?;
    password::check_user_password(&password)?;
    let hash = password::hash_user_password(password).await?;
    let now = app.clock.unix();
    app.store
        .write(move |tx| {
            let user = insert(tx, &email, &hash, now)?;
            tx.execute("DELETE FROM settings WHERE key = ?1", [SETUP_TOKEN])?;
            let existing = workspaces::first(tx)?;
            match existing {
                None => {
                    workspaces::create(tx, "My agency", user.id, &Actor::cli(), now)?;
                }
                Some(first) => workspaces::add_member(tx, first, user.id, Role::Owner, &Actor::cli(), now)?,
            }
            Ok(user)
        })
        .await
}

/// Sets a new password from the command line and ends the user's sessions.
pub async fn reset_password(app: &App, email: &str, password: String) -> Result<()> {
    let email = normalize_email(email)?;
    password::check_user_password(&password)?;
    let hash = password::hash_user_password(password).await?;
    let now = app.clock.unix();
    app.store
        .write(move |tx| {
            let (user, _) = find_by_email(tx, &email)?.ok_or(Error::NotFound)?;
            tx.execute("UPDATE users SET password_hash = ?1 WHERE id = ?2", (&hash, user.id))?;
            sessions::delete_all_for_user(tx, user.id)?;
            throttle::clear_account(tx, &email)?;
            crate::audit::record(tx, None, &Actor::cli(), "user.password_reset", &email, "", now)?;
            Ok(())
        })
        .await
}

/// Signs a user in, applying throttling per account and per IP. Returns the session token.
pub async fn login(app: &App, email: &str, password: String, ip: String) -> Result<String> {
    let email = email.trim().to_lowercase();
    let now = app.clock.unix();
    let lookup_email = email.clone();
    let lookup_ip = ip.clone();
    let found = app
        .store
        .read(move |conn| {
            throttle::check(conn, &lookup_email, &lookup_ip, now)?;
            Ok::<_, Error>(find_by_email(conn, &lookup_email)?)
        })
        .await?;
    let hash = found.as_ref().map(|(_, h)| h.clone()).unwrap_or_else(|| password::DUMMY_HASH.to_string());
    let ok = password::verify(hash, password).await && found.is_some();
    app.store
        .write(move |tx| match found {
            Some((user, _)) if ok => {
                throttle::clear_account(tx, &email)?;
                Ok::<_, Error>(Ok(sessions::create(tx, user.id, now)?))
            }
            // The failure must be committed, so the transaction returns Ok with the refusal.
            _ => {
                throttle::record_failure(tx, &email, &ip, now)?;
                Ok(throttle::check(tx, &email, &ip, now)
                    .and(Err(Error::invalid("password", "The email or password is not right."))))
            }
        })
        .await?
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn emails_are_normalized_and_checked() {
        assert_eq!(normalize_email(" Bob@Example.COM ").unwrap(), "bob@example.com");
        for bad in ["", "bob", "bob@", "@x.com", "bob@x", "a b@x.com", "a@b@x.com"] {
            assert!(normalize_email(bad).is_err(), "{bad}");
        }
    }
}
