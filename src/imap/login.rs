//! LOGIN and AUTHENTICATE PLAIN: a mailbox logs in with its address and password, only over
//! TLS (before STARTTLS the capability list says LOGINDISABLED and both commands answer
//! `NO [PRIVACYREQUIRED]`).
//!
//! The password is checked against `mailboxes.password_hash` on a blocking thread; an unknown
//! address is checked against a dummy hash, so timing does not tell which addresses exist.
//! Failures are throttled with `crate::auth::throttle`, per mailbox and per client IP, under keys
//! prefixed `imap:` (SMTP AUTH uses `smtp:`), and answered `NO [AUTHENTICATIONFAILED]`; after
//! [`MAX_AUTH_FAILURES`] in one session the session ends. A paused mailbox may still log in and
//! read its mail. A successful login creates the standard folders if the mailbox has none yet.

use std::net::IpAddr;
use std::time::Duration;

use imap_codec::AuthenticateDataCodec;
use imap_codec::decode::Decoder;
use imap_codec::imap_types::auth::{AuthMechanism, AuthenticateData};
use imap_codec::imap_types::core::Tag;
use rusqlite::{Connection, OptionalExtension};

use super::connection::{End, Incoming};
use super::session::{MAX_AUTH_FAILURES, Session, User, code};
use crate::app::App;
use crate::auth::{password, throttle};
use crate::error::Error;

/// The prefix of IMAP's keys in `auth_failures`.
const KEY_PREFIX: &str = "imap:";
/// How long the client may take to send its SASL response.
const SASL_TIMEOUT: Duration = Duration::from_secs(60);

/// Why a login failed.
#[derive(Debug)]
pub enum LoginError {
    /// Wrong address or password.
    Failed,
    /// Too many failures; the text says how long to wait.
    Throttled(String),
    Internal(Error),
}

/// A mailbox as login needs it.
struct Account {
    user: User,
    password_hash: String,
    has_failures: bool,
}

/// Checks a mailbox address and password, recording failures for throttling.
pub async fn check_credentials(app: &App, ip: IpAddr, username: &str, secret: &str) -> Result<User, LoginError> {
    let address = username.trim().to_lowercase();
    let account_key = format!("{KEY_PREFIX}{address}");
    let ip_key = format!("{KEY_PREFIX}{ip}");
    let now = app.clock.unix();
    let (account, client) = (account_key.clone(), ip_key.clone());
    let found = app
        .store
        .read(move |conn| {
            throttle::check(conn, &account, &client, now)?;
            find_account(conn, &address, &account)
        })
        .await
        .map_err(|e| match e {
            Error::Throttled(text) => LoginError::Throttled(text),
            other => LoginError::Internal(other),
        })?;
    let hash = found.as_ref().map_or_else(|| password::DUMMY_HASH.to_string(), |a| a.password_hash.clone());
    let verified = password::verify(hash, secret.to_string()).await;
    match found {
        Some(account) if verified => {
            // A mailbox that never received mail still shows INBOX, Sent, Spam, Trash, Drafts.
            let (mailbox_id, had_failures) = (account.user.mailbox_id, account.has_failures);
            app.store
                .write(move |tx| {
                    crate::mailstore::ensure_standard_folders(tx, mailbox_id, now)?;
                    if had_failures {
                        throttle::clear_account(tx, &account_key)?;
                    }
                    Ok::<_, Error>(())
                })
                .await
                .map_err(LoginError::Internal)?;
            Ok(account.user)
        }
        _ => {
            app.store
                .write(move |tx| throttle::record_failure(tx, &account_key, &ip_key, now))
                .await
                .map_err(|e| LoginError::Internal(e.into()))?;
            Err(LoginError::Failed)
        }
    }
}

fn find_account(conn: &Connection, address: &str, account_key: &str) -> Result<Option<Account>, Error> {
    let account = conn
        .prepare_cached("SELECT id, workspace_id, address, password_hash FROM mailboxes WHERE address = ?1")?
        .query_row([address], |row| {
            Ok(Account {
                user: User { mailbox_id: row.get(0)?, workspace_id: row.get(1)?, address: row.get(2)? },
                password_hash: row.get(3)?,
                has_failures: false,
            })
        })
        .optional()?;
    let Some(mut account) = account else { return Ok(None) };
    account.has_failures = conn
        .prepare_cached("SELECT EXISTS (SELECT 1 FROM auth_failures WHERE scope = 'account' AND key = ?1)")?
        .query_row([account_key], |row| row.get(0))?;
    Ok(Some(account))
}

/// Splits a SASL PLAIN response (`authzid NUL authcid NUL password`); the authorization
/// identity must be empty or the same as the authentication identity.
pub fn parse_plain(response: &[u8]) -> Option<(String, String)> {
    let mut fields = response.split(|&b| b == 0);
    let (authz, authc, secret) = (fields.next()?, fields.next()?, fields.next()?);
    if fields.next().is_some() || authc.is_empty() || !(authz.is_empty() || authz == authc) {
        return None;
    }
    Some((String::from_utf8(authc.to_vec()).ok()?, String::from_utf8(secret.to_vec()).ok()?))
}

impl Session {
    /// Whether a login may be attempted now; answers when not.
    fn login_allowed(&mut self, tag: &Tag<'static>) -> bool {
        if self.user.is_some() {
            self.bad(tag, "Already logged in");
            return false;
        }
        if !self.tls {
            self.no(tag, Some(code("PRIVACYREQUIRED")), "Log in over TLS: use STARTTLS or the IMAPS port");
            return false;
        }
        true
    }

    /// LOGIN.
    pub(super) async fn login(&mut self, tag: &Tag<'static>, username: &[u8], secret: &[u8]) -> Result<(), End> {
        if !self.login_allowed(tag) {
            return Ok(());
        }
        let username = String::from_utf8_lossy(username).into_owned();
        let secret = String::from_utf8_lossy(secret).into_owned();
        self.finish_login(tag, &username, &secret).await
    }

    /// AUTHENTICATE PLAIN, with the initial response inline (SASL-IR) or after a `+`.
    pub(super) async fn authenticate(
        &mut self,
        tag: &Tag<'static>,
        mechanism: &AuthMechanism<'_>,
        initial: Option<Vec<u8>>,
    ) -> Result<(), End> {
        if !self.login_allowed(tag) {
            return Ok(());
        }
        if *mechanism != AuthMechanism::Plain {
            self.no(tag, None, "Only AUTHENTICATE PLAIN is supported");
            return Ok(());
        }
        let response = match initial {
            Some(response) => response,
            None => {
                self.conn.write_raw(b"+ \r\n");
                let Incoming::Message(bytes) = self.conn.next_message(SASL_TIMEOUT).await? else {
                    self.bad(tag, "Response too large");
                    return Ok(());
                };
                match AuthenticateDataCodec::default().decode(&bytes) {
                    Ok(([], AuthenticateData::Continue(data))) => data.declassify().to_vec(),
                    Ok((_, AuthenticateData::Cancel)) => {
                        self.bad(tag, "Authentication cancelled");
                        return Ok(());
                    }
                    _ => {
                        self.bad(tag, "Invalid SASL response");
                        return Ok(());
                    }
                }
            }
        };
        match parse_plain(&response) {
            Some((username, secret)) => self.finish_login(tag, &username, &secret).await,
            None => {
                self.no(tag, Some(code("AUTHENTICATIONFAILED")), "Authentication failed");
                self.count_auth_failure()
            }
        }
    }

    async fn finish_login(&mut self, tag: &Tag<'static>, username: &str, secret: &str) -> Result<(), End> {
        match check_credentials(&self.app, self.peer.ip(), username, secret).await {
            Ok(user) => {
                tracing::debug!(mailbox = %user.address, peer = %self.peer, "imap login");
                self.user = Some(user);
                let capabilities = self.capability_code();
                self.ok(tag, capabilities, "Logged in");
                Ok(())
            }
            Err(LoginError::Failed) => {
                self.no(tag, Some(code("AUTHENTICATIONFAILED")), "Authentication failed");
                self.count_auth_failure()
            }
            Err(LoginError::Throttled(text)) => {
                self.no(tag, Some(code("UNAVAILABLE")), &text);
                self.count_auth_failure()
            }
            Err(LoginError::Internal(e)) => {
                tracing::error!(error = %e, "imap login failed internally");
                self.no(tag, Some(code("UNAVAILABLE")), "Temporary authentication failure; try again later");
                Ok(())
            }
        }
    }

    fn count_auth_failure(&mut self) -> Result<(), End> {
        self.auth_failures += 1;
        if self.auth_failures >= MAX_AUTH_FAILURES {
            self.untagged_bye("Too many failed logins");
            return Err(End::Closed);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_responses_are_split_and_checked() {
        assert_eq!(parse_plain(b"\0ann@a.test\0pw"), Some(("ann@a.test".into(), "pw".into())));
        assert_eq!(parse_plain(b"ann@a.test\0ann@a.test\0pw"), Some(("ann@a.test".into(), "pw".into())));
        assert_eq!(parse_plain(b"bob@a.test\0ann@a.test\0pw"), None, "no acting as someone else");
        assert_eq!(parse_plain(b"\0ann@a.test"), None);
        assert_eq!(parse_plain(b"\0\0pw"), None);
    }
}
