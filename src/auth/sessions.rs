//! Server-side sessions. The browser holds a random 256-bit token in an HttpOnly, SameSite=Lax
//! cookie; the database keeps only its SHA-256, the user and the expiry. Sessions last
//! [`SESSION_SECONDS`] and end at logout.

use rusqlite::{Connection, OptionalExtension};

use crate::crypto::{random_token, token_hash};

pub const SESSION_SECONDS: i64 = 14 * 24 * 3600;

/// The signed-in user behind a session.
#[derive(Debug, Clone)]
pub struct SessionUser {
    pub user_id: i64,
    pub email: String,
}

/// Starts a session and returns the token for the cookie.
pub fn create(conn: &Connection, user_id: i64, now: i64) -> rusqlite::Result<String> {
    let token = random_token();
    conn.execute(
        "INSERT INTO sessions (token_hash, user_id, created_at, expires_at) VALUES (?1, ?2, ?3, ?4)",
        (token_hash(&token), user_id, now, now + SESSION_SECONDS),
    )?;
    conn.execute("DELETE FROM sessions WHERE expires_at <= ?1", [now])?;
    Ok(token)
}

/// The user behind a live session token.
pub fn lookup(conn: &Connection, token: &str, now: i64) -> rusqlite::Result<Option<SessionUser>> {
    conn.query_row(
        "SELECT u.id, u.email FROM sessions s JOIN users u ON u.id = s.user_id \
         WHERE s.token_hash = ?1 AND s.expires_at > ?2",
        (token_hash(token), now),
        |row| Ok(SessionUser { user_id: row.get(0)?, email: row.get(1)? }),
    )
    .optional()
}

/// Ends a session.
pub fn delete(conn: &Connection, token: &str) -> rusqlite::Result<()> {
    conn.execute("DELETE FROM sessions WHERE token_hash = ?1", [token_hash(token)])?;
    Ok(())
}

/// Ends every session of a user (after a password reset).
pub fn delete_all_for_user(conn: &Connection, user_id: i64) -> rusqlite::Result<()> {
    conn.execute("DELETE FROM sessions WHERE user_id = ?1", [user_id])?;
    Ok(())
}
