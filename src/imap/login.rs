//! LOGIN and AUTHENTICATE (PLAIN, LOGIN): a mailbox logs in with its address and password, only
//! over TLS (before STARTTLS the capability list says LOGINDISABLED and both commands answer
//! `NO [PRIVACYREQUIRED]`).
//!
//! The credential check and the SASL parser are the mailbox's own (`mailbox::login`,
//! `mailbox::sasl`), shared with SMTP AUTH: the same throttle, the same verdicts. A failure is
//! answered `NO [AUTHENTICATIONFAILED]`, a throttled attempt `NO [UNAVAILABLE]`, an undecodable
//! SASL response `BAD`; after [`MAX_AUTH_FAILURES`] failures in one session the session ends. A
//! paused mailbox may still log in and read its mail. A successful login creates the standard
//! folders if the mailbox has none yet.

use std::time::Duration;

use imap_codec::AuthenticateDataCodec;
use imap_codec::decode::Decoder;
use imap_codec::imap_types::auth::{AuthMechanism, AuthenticateData};
use imap_codec::imap_types::core::Tag;

use super::connection::{End, Incoming};
use super::session::{MAX_AUTH_FAILURES, Session, User, code};
use crate::mailbox::login::{self, LoginError};
use crate::mailbox::sasl::{self, Credentials, SaslError};

/// How long the client may take to send its SASL response.
const SASL_TIMEOUT: Duration = Duration::from_secs(60);

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
        let password = String::from_utf8_lossy(secret).into_owned();
        self.finish_login(tag, Credentials { username, password }).await
    }

    /// AUTHENTICATE PLAIN (the initial response inline, SASL-IR, or after a `+`) or LOGIN (the
    /// user name, then the password, each after a `+` with its prompt).
    pub(super) async fn authenticate(
        &mut self,
        tag: &Tag<'static>,
        mechanism: &AuthMechanism<'_>,
        initial: Option<Vec<u8>>,
    ) -> Result<(), End> {
        if !self.login_allowed(tag) {
            return Ok(());
        }
        let credentials = match mechanism {
            AuthMechanism::Plain => match initial {
                Some(response) => Ok(response),
                None => self.sasl_response("").await?,
            }
            .and_then(|response| sasl::parse_plain(&response)),
            AuthMechanism::Login => self.sasl_login(initial).await?,
            _ => {
                self.no(tag, None, "Use AUTHENTICATE PLAIN or LOGIN");
                return Ok(());
            }
        };
        match credentials {
            Ok(credentials) => self.finish_login(tag, credentials).await,
            Err(SaslError::Cancelled) => {
                self.bad(tag, "Authentication cancelled");
                Ok(())
            }
            Err(SaslError::Malformed) => {
                self.bad(tag, "Invalid SASL response");
                Ok(())
            }
            Err(SaslError::ProxyRefused) => {
                self.no(tag, Some(code("AUTHENTICATIONFAILED")), "Authorization identity must be the user");
                self.count_auth_failure()
            }
        }
    }

    /// LOGIN's two steps; an initial response (SASL-IR) is the user name.
    async fn sasl_login(&mut self, initial: Option<Vec<u8>>) -> Result<Result<Credentials, SaslError>, End> {
        let username = match initial {
            Some(response) => Ok(response),
            None => self.sasl_response(sasl::LOGIN_USERNAME_PROMPT).await?,
        };
        let username = match username.and_then(|bytes| sasl::parse_login_field(&bytes)) {
            Ok(username) => username,
            Err(e) => return Ok(Err(e)),
        };
        let password = self.sasl_response(sasl::LOGIN_PASSWORD_PROMPT).await?;
        Ok(password
            .and_then(|bytes| sasl::parse_login_field(&bytes))
            .map(|password| Credentials { username, password }))
    }

    /// Sends a `+` continuation with `prompt` (base64) and decodes the client's answer.
    async fn sasl_response(&mut self, prompt: &str) -> Result<Result<Vec<u8>, SaslError>, End> {
        self.conn.write_raw(format!("+ {prompt}\r\n").as_bytes());
        let Incoming::Message(bytes) = self.conn.next_message(SASL_TIMEOUT).await? else {
            return Ok(Err(SaslError::Malformed));
        };
        Ok(match AuthenticateDataCodec::default().decode(&bytes) {
            Ok(([], AuthenticateData::Continue(data))) => Ok(data.declassify().to_vec()),
            Ok((_, AuthenticateData::Cancel)) => Err(SaslError::Cancelled),
            _ => Err(SaslError::Malformed),
        })
    }

    async fn finish_login(&mut self, tag: &Tag<'static>, credentials: Credentials) -> Result<(), End> {
        match login::login(&self.app, self.peer.ip(), &credentials.username, &credentials.password).await {
            Ok(account) => {
                let Some(slot) = self.signed_in.take((account.mailbox_id, self.peer.ip())) else {
                    self.no(tag, Some(code("LIMIT")), "Too many connections for this mailbox from your address");
                    return Ok(());
                };
                // A mailbox that never received mail still shows INBOX, Sent, Spam, Trash, Drafts.
                let (mailbox_id, now) = (account.mailbox_id, self.app.clock.unix());
                let folders = self
                    .app
                    .store
                    .write(move |tx| crate::mailstore::ensure_standard_folders(tx, mailbox_id, now))
                    .await;
                if let Err(e) = folders {
                    tracing::error!(error = %e, "imap login failed internally");
                    self.no(tag, Some(code("UNAVAILABLE")), "Temporary authentication failure; try again later");
                    return Ok(());
                }
                tracing::debug!(mailbox = %account.address, peer = %self.peer, "imap login");
                let user = User { mailbox_id, workspace_id: account.workspace_id, address: account.address };
                self.user = Some(user);
                (self.mailbox_slot, self.address_slot) = (Some(slot), None);
                let capabilities = self.capability_code();
                self.ok(tag, capabilities, "Logged in");
                Ok(())
            }
            Err(LoginError::Failed) => {
                self.no(tag, Some(code("AUTHENTICATIONFAILED")), "Authentication failed");
                self.count_auth_failure()
            }
            Err(throttled @ LoginError::Throttled(_)) => {
                self.no(tag, Some(code("UNAVAILABLE")), &throttled.to_string());
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
