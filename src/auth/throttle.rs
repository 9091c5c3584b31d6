//! Throttling of failed logins. Each failure is recorded per account and per client IP; once a
//! key has `limit` failures inside the window, further attempts are refused until the oldest of
//! those failures leaves the window. A successful login clears the account's failures. The same
//! rule serves the web UI, SMTP AUTH and IMAP LOGIN (each with its own scope names).

use rusqlite::Connection;

use crate::error::{Error, Result};

/// How many failures a key may have inside [`WINDOW_SECONDS`].
pub const ACCOUNT_LIMIT: i64 = 5;
pub const IP_LIMIT: i64 = 20;
pub const WINDOW_SECONDS: i64 = 15 * 60;

/// What is being throttled.
#[derive(Debug, Clone, Copy)]
pub enum Scope {
    Account,
    Ip,
}

impl Scope {
    fn name(self) -> &'static str {
        match self {
            Scope::Account => "account",
            Scope::Ip => "ip",
        }
    }

    fn limit(self) -> i64 {
        match self {
            Scope::Account => ACCOUNT_LIMIT,
            Scope::Ip => IP_LIMIT,
        }
    }
}

/// Seconds until `key` may try again, or `None` when it is not throttled.
pub fn wait_seconds(conn: &Connection, scope: Scope, key: &str, now: i64) -> rusqlite::Result<Option<i64>> {
    let since = now - WINDOW_SECONDS;
    let (count, oldest): (i64, Option<i64>) = conn.query_row(
        "SELECT count(*), min(at) FROM (SELECT at FROM auth_failures WHERE scope = ?1 AND key = ?2 AND at > ?3 \
         ORDER BY at DESC LIMIT ?4)",
        (scope.name(), key, since, scope.limit()),
        |row| Ok((row.get(0)?, row.get(1)?)),
    )?;
    Ok(match oldest {
        Some(oldest) if count >= scope.limit() => Some((oldest + WINDOW_SECONDS - now).max(1)),
        _ => None,
    })
}

/// Fails with a user-readable `Throttled` error when the account or the IP is throttled.
pub fn check(conn: &Connection, account: &str, ip: &str, now: i64) -> Result<()> {
    if let Some(wait) = wait_seconds(conn, Scope::Account, account, now)? {
        return Err(Error::Throttled(format!(
            "Too many failed sign-in attempts for this account. Try again in {}.",
            minutes(wait)
        )));
    }
    if let Some(wait) = wait_seconds(conn, Scope::Ip, ip, now)? {
        return Err(Error::Throttled(format!(
            "Too many failed sign-in attempts from your address. Try again in {}.",
            minutes(wait)
        )));
    }
    Ok(())
}

/// Records one failure for the account and the IP, and forgets failures older than the window.
pub fn record_failure(conn: &Connection, account: &str, ip: &str, now: i64) -> rusqlite::Result<()> {
    let mut insert = conn.prepare_cached("INSERT INTO auth_failures (scope, key, at) VALUES (?1, ?2, ?3)")?;
    insert.execute((Scope::Account.name(), account, now))?;
    insert.execute((Scope::Ip.name(), ip, now))?;
    conn.execute("DELETE FROM auth_failures WHERE at <= ?1", [now - WINDOW_SECONDS])?;
    Ok(())
}

/// Forgets the account's failures after a successful login.
pub fn clear_account(conn: &Connection, account: &str) -> rusqlite::Result<()> {
    conn.execute("DELETE FROM auth_failures WHERE scope = 'account' AND key = ?1", [account])?;
    Ok(())
}

fn minutes(seconds: i64) -> String {
    let minutes = (seconds + 59) / 60;
    if minutes == 1 { "1 minute".into() } else { format!("{minutes} minutes") }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn account_is_throttled_after_limit_and_released_after_window() {
        let (_dir, store) = crate::store::open_temp();
        store
            .write(|tx| {
                for i in 0..ACCOUNT_LIMIT {
                    assert!(check(tx, "a@x.com", "1.2.3.4", 1000 + i).is_ok());
                    record_failure(tx, "a@x.com", "1.2.3.4", 1000 + i)?;
                }
                assert!(matches!(check(tx, "a@x.com", "9.9.9.9", 1010), Err(Error::Throttled(_))));
                assert!(check(tx, "b@x.com", "1.2.3.4", 1010).is_ok());
                assert!(check(tx, "a@x.com", "1.2.3.4", 1000 + WINDOW_SECONDS + 1).is_ok());
                clear_account(tx, "a@x.com")?;
                assert!(check(tx, "a@x.com", "1.2.3.4", 1010).is_ok());
                Ok::<_, Error>(())
            })
            .await
            .unwrap();
    }
}
