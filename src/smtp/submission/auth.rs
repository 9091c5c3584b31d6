//! SMTP AUTH for submission: a mailbox logs in with its address and password. The password is
//! checked against `mailboxes.password_hash` on a blocking thread (an unknown address is checked
//! against a dummy hash, so timing does not tell which addresses exist). Failures are throttled
//! with `crate::auth::throttle`, per mailbox and per client IP, under keys prefixed `smtp:` so
//! SMTP failures and web sign-ins do not count against each other.

use std::net::IpAddr;

use rusqlite::{Connection, OptionalExtension};

use super::Sender;
use crate::app::App;
use crate::auth::{password, throttle};
use crate::error::Error;
use crate::smtp::reply::Reply;
use crate::smtp::sasl::Credentials;

/// The prefix of this protocol's keys in `auth_failures`.
const KEY_PREFIX: &str = "smtp:";

/// A mailbox as AUTH needs it.
struct Login {
    sender: Sender,
    password_hash: String,
    has_failures: bool,
}

/// Checks the credentials; the error is the reply to send.
pub async fn authenticate(app: &App, ip: IpAddr, credentials: Credentials) -> Result<Sender, Reply> {
    let address = credentials.username.trim().to_lowercase();
    let account_key = format!("{KEY_PREFIX}{address}");
    let ip_key = format!("{KEY_PREFIX}{ip}");
    let now = app.clock.unix();
    let (account, client) = (account_key.clone(), ip_key.clone());
    let login = app
        .store
        .read(move |conn| {
            throttle::check(conn, &account, &client, now)?;
            find_login(conn, &address, &account)
        })
        .await
        .map_err(|e| match e {
            Error::Throttled(text) => Reply::new(454, [4, 7, 0], text),
            other => internal(&other),
        })?;
    let hash = login.as_ref().map_or_else(|| password::DUMMY_HASH.to_string(), |l| l.password_hash.clone());
    let verified = password::verify(hash, credentials.password).await;
    match login {
        Some(login) if verified => {
            if login.has_failures {
                app.store
                    .write(move |tx| throttle::clear_account(tx, &account_key))
                    .await
                    .map_err(|e| internal(&Error::from(e)))?;
            }
            Ok(login.sender)
        }
        _ => {
            app.store
                .write(move |tx| throttle::record_failure(tx, &account_key, &ip_key, now))
                .await
                .map_err(|e| internal(&Error::from(e)))?;
            Err(Reply::new(535, [5, 7, 8], "Authentication credentials invalid"))
        }
    }
}

fn find_login(conn: &Connection, address: &str, account_key: &str) -> Result<Option<Login>, Error> {
    let login = conn
        .prepare_cached("SELECT id, workspace_id, address, password_hash FROM mailboxes WHERE address = ?1")?
        .query_row([address], |row| {
            Ok(Login {
                sender: Sender { mailbox_id: row.get(0)?, workspace_id: row.get(1)?, address: row.get(2)? },
                password_hash: row.get(3)?,
                has_failures: false,
            })
        })
        .optional()?;
    let Some(mut login) = login else { return Ok(None) };
    login.has_failures = conn
        .prepare_cached("SELECT EXISTS (SELECT 1 FROM auth_failures WHERE scope = 'account' AND key = ?1)")?
        .query_row([account_key], |row| row.get(0))?;
    Ok(Some(login))
}

fn internal(error: &Error) -> Reply {
    tracing::error!(error = %error, "smtp auth failed internally");
    Reply::new(454, [4, 7, 0], "Temporary authentication failure; try again later")
}
