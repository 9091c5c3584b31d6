//! The submission policy (ports 587/465): a mailbox authenticates over TLS and sends as itself.
//!
//! - AUTH (PLAIN, LOGIN) is offered and allowed only over TLS; MAIL, RCPT and DATA only after
//!   AUTH, so without AUTH every recipient is refused (never an open relay).
//! - MAIL FROM must be the mailbox's address; a paused mailbox cannot send.
//! - RCPT asks `mta::admit::check` early (a suppressed recipient, a full day or minute is refused
//!   before the message is sent; limits with 4.7.0, so sequencers back off) and refuses an
//!   address of a local domain that reaches no mailbox (`mailbox::resolve`, 550 5.1.1).
//! - After DATA: the From header must be the mailbox ([`headers`]); our `Received` field goes on
//!   top (RFC 5321 §4.4; `[smtp] received_client_address` decides whether it names the client);
//!   then `mta::prepare`, then one write transaction that admits the send (`mta::admit`: limits
//!   and suppression checked again and counted where the send is recorded) and calls
//!   `mta::enqueue`; the delivery workers are woken and only then is 250 answered.

pub mod headers;

use std::net::IpAddr;
use std::sync::Arc;

use smtp_proto::{AUTH_LOGIN, AUTH_PLAIN, EXT_AUTH, EhloResponse};

use super::policy::{Policy, Session};
use super::reply::Reply;
use crate::app::App;
use crate::error::Error;
use crate::listener::{Limiter, Slot};
use crate::mailbox::login::{self, LoginError};
use crate::mailbox::resolve::{self, Refusal as Unresolved};
use crate::mailbox::sasl::Credentials;
use crate::mta::admit::{self, AdmitError, Refusal};
use crate::mta::{self};

/// Signed-in sessions one mailbox may hold from one client address.
pub const SESSIONS_PER_MAILBOX_ADDRESS: usize = 50;
/// How long after connecting a client must have signed in.
pub const LOGIN_DEADLINE: std::time::Duration = std::time::Duration::from_secs(60);

/// The authenticated mailbox of a submission session.
#[derive(Debug, Clone)]
pub struct Sender {
    pub mailbox_id: i64,
    pub workspace_id: i64,
    pub address: String,
    /// The session's slot for its mailbox and client address.
    _slot: Arc<Slot<(i64, IpAddr)>>,
}

/// The submission policy.
pub struct Submission {
    app: App,
    /// DKIM keys opened once for all sessions.
    signers: mta::SignerCache,
    signed_in: Arc<Limiter<(i64, IpAddr)>>,
}

impl Submission {
    pub fn new(app: App) -> Submission {
        Submission { app, signers: mta::SignerCache::default(), signed_in: Limiter::new(SESSIONS_PER_MAILBOX_ADDRESS) }
    }

    /// A recipient of a local domain must reach a mailbox; then suppression and the limits for
    /// one more recipient.
    async fn check_recipient(&self, sender: &Sender, to: &str, accepted: usize) -> Result<(), Reply> {
        let mailbox = sender.mailbox_id;
        let adding = i64::try_from(accepted + 1).unwrap_or(i64::MAX);
        let (to, now, hostname) = (to.to_string(), self.app.clock.unix(), self.app.config.hostname.clone());
        self.app
            .store
            .read_quick(|conn| {
                if let Err(Unresolved::UnknownUser) = resolve::resolve(conn, &to, &hostname)? {
                    return Ok(Err(super::inbound::refusal_reply(Unresolved::UnknownUser)));
                }
                Ok(admit::check(conn, mailbox, &[&to], adding, now).map_err(|e| admit_reply(&e)))
            })
            .unwrap_or_else(|e: rusqlite::Error| Err(admit_reply(&AdmitError::Store(e))))
    }

    /// Prepares the message, then admits and queues it in one transaction.
    async fn queue(&self, session: &Session<Sender>, sender: &Sender, raw: Vec<u8>) -> Reply {
        let outgoing = mta::Outgoing {
            workspace_id: sender.workspace_id,
            mailbox_id: Some(sender.mailbox_id),
            mail_from: session.mail_from.clone().unwrap_or_else(|| sender.address.clone()),
            recipients: session.recipients.clone(),
            raw,
            trace: self.received_header(session),
        };
        let prepared = match mta::prepare_cached(&self.app, &self.signers, outgoing).await {
            Ok(prepared) => prepared,
            Err(e) => return mta_reply(&e),
        };
        let mailbox = sender.mailbox_id;
        let now = self.app.clock.unix();
        let queued = self
            .app
            .store
            .write(move |tx| {
                let recipients: Vec<&str> = prepared.recipients().collect();
                admit::admit(tx, mailbox, &recipients, now).map_err(Refused::Admit)?;
                mta::enqueue(tx, &prepared, now).map_err(Refused::Mta)
            })
            .await;
        match queued {
            Ok(ids) => {
                self.app.wakeup.notify_one();
                tracing::info!(mailbox = %sender.address, recipients = session.recipients.len(), queue_ids = ?ids, "message submitted");
                accepted(&ids)
            }
            Err(Refused::Admit(e)) => admit_reply(&e),
            Err(Refused::Mta(e)) => mta_reply(&e),
        }
    }

    /// This hop's trace field (RFC 5321 §4.4): the client's EHLO name and address unless
    /// `[smtp] received_client_address` is off; ESMTPSA (TLS and AUTH, RFC 3848).
    fn received_header(&self, session: &Session<Sender>) -> String {
        let date = self.app.clock.now().to_rfc2822();
        let host = &self.app.config.hostname;
        if !self.app.config.smtp.received_client_address {
            return format!("Received: by {host} (InboxGrove) with ESMTPSA;\r\n\t{date}\r\n");
        }
        let helo: String =
            session.helo.as_deref().unwrap_or("unknown").chars().filter(|c| c.is_ascii_graphic()).take(255).collect();
        format!(
            "Received: from {helo} ({ip})\r\n\tby {host} (InboxGrove) with ESMTPSA;\r\n\t{date}\r\n",
            ip = session.peer.ip()
        )
    }
}

/// A message with its first letter upper-case, for a reply's text.
fn capitalized(error: &impl std::fmt::Display) -> String {
    let text = error.to_string();
    let mut chars = text.chars();
    chars.next().map(|first| first.to_uppercase().chain(chars).collect()).unwrap_or_default()
}

/// Why the queuing transaction refused.
enum Refused {
    Admit(AdmitError),
    Mta(Error),
}

impl From<rusqlite::Error> for Refused {
    fn from(e: rusqlite::Error) -> Refused {
        Refused::Admit(AdmitError::Store(e))
    }
}

/// The SMTP reply for a refused send: limits are temporary (4.7.0, so sequencers back off); a
/// paused or deleted mailbox and a suppressed recipient are policy refusals (5.7.1).
pub fn refusal_reply(refusal: &Refusal) -> Reply {
    if refusal.is_temporary() {
        Reply::new(452, [4, 7, 0], refusal.to_string())
    } else {
        Reply::new(550, [5, 7, 1], refusal.to_string())
    }
}

fn admit_reply(error: &AdmitError) -> Reply {
    match error {
        AdmitError::Refused(refusal) => refusal_reply(refusal),
        AdmitError::Store(e) => {
            tracing::error!(error = %e, "submission failed internally");
            Reply::temporary_failure()
        }
    }
}

fn mta_reply(error: &Error) -> Reply {
    if error.is_user_error() {
        return Reply::new(550, [5, 6, 0], error.to_string());
    }
    tracing::error!(error = %error, "submission failed internally");
    Reply::temporary_failure()
}

/// The 250 after DATA, naming the queue ids (local deliveries have none).
fn accepted(ids: &[i64]) -> Reply {
    if ids.is_empty() {
        return Reply::ok("Message accepted and delivered locally");
    }
    let ids: Vec<String> = ids.iter().map(i64::to_string).collect();
    Reply::ok(format!("Queued as {}", ids.join(" ")))
}

fn authentication_required() -> Reply {
    Reply::new(530, [5, 7, 0], "Authentication required")
}

impl Policy for Submission {
    type Identity = Sender;

    fn name(&self) -> &'static str {
        "submission"
    }

    fn login_deadline(&self) -> Option<std::time::Duration> {
        Some(LOGIN_DEADLINE)
    }

    fn ehlo(&self, session: &Session<Sender>, reply: &mut EhloResponse<String>) {
        if session.tls {
            reply.capabilities |= EXT_AUTH;
            reply.auth_mechanisms |= AUTH_PLAIN | AUTH_LOGIN;
        }
    }

    fn check_auth_allowed(&self, session: &Session<Sender>) -> Result<(), Reply> {
        if session.tls { Ok(()) } else { Err(Reply::new(530, [5, 7, 0], "Must issue a STARTTLS command first")) }
    }

    async fn authenticate(&self, session: &Session<Sender>, credentials: Credentials) -> Result<Sender, Reply> {
        let ip = session.peer.ip();
        match login::login(&self.app, ip, &credentials.username, &credentials.password).await {
            Ok(account) => {
                let Some(slot) = self.signed_in.take((account.mailbox_id, ip)) else {
                    return Err(Reply::new(454, [4, 7, 0], "Too many connections for this mailbox from your address"));
                };
                let (mailbox_id, workspace_id, address) = (account.mailbox_id, account.workspace_id, account.address);
                Ok(Sender { mailbox_id, workspace_id, address, _slot: Arc::new(slot) })
            }
            Err(LoginError::Failed) => Err(Reply::new(535, [5, 7, 8], "Authentication credentials invalid")),
            Err(throttled @ LoginError::Throttled(_)) => Err(Reply::new(454, [4, 7, 0], capitalized(&throttled))),
            Err(LoginError::Internal(e)) => {
                tracing::error!(error = %e, "smtp auth failed internally");
                Err(Reply::new(454, [4, 7, 0], "Temporary authentication failure; try again later"))
            }
        }
    }

    fn check_transaction_allowed(&self, session: &Session<Sender>) -> Result<(), Reply> {
        if session.identity.is_some() { Ok(()) } else { Err(authentication_required()) }
    }

    async fn mail_from(&self, session: &Session<Sender>, from: &str) -> Result<(), Reply> {
        let Some(sender) = &session.identity else { return Err(authentication_required()) };
        if !from.eq_ignore_ascii_case(&sender.address) {
            return Err(Reply::new(
                550,
                [5, 7, 1],
                format!("Sender address must be {} (the authenticated mailbox)", sender.address),
            ));
        }
        let (mailbox, now) = (sender.mailbox_id, self.app.clock.unix());
        match self.app.store.read_quick(|conn| admit::check(conn, mailbox, &[], 0, now)) {
            Err(AdmitError::Refused(refusal)) if !refusal.is_temporary() => Err(refusal_reply(&refusal)),
            Err(AdmitError::Store(e)) => Err(admit_reply(&AdmitError::Store(e))),
            _ => Ok(()),
        }
    }

    async fn rcpt_to(&self, session: &Session<Sender>, to: &str) -> Result<(), Reply> {
        let Some(sender) = &session.identity else { return Err(authentication_required()) };
        let valid = to.rsplit_once('@').is_some_and(|(local, domain)| !local.is_empty() && !domain.is_empty());
        if !valid {
            return Err(Reply::new(501, [5, 1, 3], "Bad recipient address syntax"));
        }
        self.check_recipient(sender, to, session.recipients.len()).await
    }

    async fn data(&self, session: &Session<Sender>, message: Vec<u8>) -> Reply {
        let Some(sender) = &session.identity else { return authentication_required() };
        if let Err(problem) = headers::check_sender(&message, &sender.address) {
            return problem.reply();
        }
        self.queue(session, sender, message).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refusals_map_to_their_replies() {
        let full = Refusal::DailyLimit { limit: 3, address: "bob@x.test".into(), time_zone: "UTC".into() };
        assert_eq!(
            refusal_reply(&full).to_string(),
            "452 4.7.0 daily limit of 3 messages reached for bob@x.test; resets at midnight UTC\r\n"
        );
        assert_eq!(
            refusal_reply(&Refusal::Paused { address: "bob@x.test".into() }).to_string(),
            "550 5.7.1 bob@x.test is paused and cannot send; resume it in InboxGrove\r\n"
        );
        let suppressed = Refusal::Suppressed { recipient: "a@b.test".into(), why: "the recipient unsubscribed" };
        assert_eq!(
            refusal_reply(&suppressed).to_string(),
            "550 5.7.1 a@b.test is suppressed: the recipient unsubscribed\r\n"
        );
    }
}
