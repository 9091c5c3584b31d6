//! The submission policy (ports 587/465): a mailbox authenticates over TLS and sends as itself.
//!
//! - AUTH (PLAIN, LOGIN) is offered and allowed only over TLS; MAIL, RCPT and DATA only after
//!   AUTH, so without AUTH every recipient is refused (never an open relay).
//! - MAIL FROM must be the mailbox's address; a paused mailbox cannot send.
//! - RCPT refuses suppressed recipients (naming why) and recipients beyond the daily or
//!   per-minute limit (4.7.0, so sequencers back off).
//! - After DATA: the From header must be the mailbox ([`headers`]), then `mta::prepare`, then
//!   one write transaction that checks and counts the limits ([`limits::record`]) and calls
//!   `mta::enqueue`; the delivery workers are woken and only then is 250 answered.

pub mod auth;
pub mod headers;
pub mod limits;

use smtp_proto::{AUTH_LOGIN, AUTH_PLAIN, EXT_AUTH, EhloResponse};

use super::policy::{Policy, Session};
use super::reply::Reply;
use super::sasl::Credentials;
use crate::app::App;
use crate::mta;
use limits::Refusal;

/// The authenticated mailbox of a submission session.
#[derive(Debug, Clone)]
pub struct Sender {
    pub mailbox_id: i64,
    pub workspace_id: i64,
    pub address: String,
}

/// The submission policy.
pub struct Submission {
    app: App,
    /// DKIM keys opened once for all sessions.
    signers: mta::SignerCache,
}

impl Submission {
    pub fn new(app: App) -> Submission {
        Submission { app, signers: mta::SignerCache::default() }
    }

    /// Suppression, then the limits for one more recipient.
    async fn check_recipient(&self, sender: &Sender, to: &str, accepted: usize) -> Result<(), Reply> {
        let (workspace, mailbox) = (sender.workspace_id, sender.mailbox_id);
        let adding = i64::try_from(accepted + 1).unwrap_or(i64::MAX);
        let (to, now) = (to.to_string(), self.app.clock.unix());
        self.app
            .store
            .read_quick(|conn| {
                if let Some(reason) = crate::suppression::reason(conn, workspace, &to)? {
                    let why = crate::suppression::Reason::describe(&reason);
                    return Ok(Err(Reply::new(550, [5, 7, 1], format!("{to} is suppressed: {why}"))));
                }
                Ok(limits::check(conn, mailbox, adding, now).map_err(|refusal| refusal.reply()))
            })
            .unwrap_or_else(|e: Refusal| Err(e.reply()))
    }

    /// Prepares, then queues the message in one transaction with the limits; returns queue ids.
    async fn queue(&self, sender: &Sender, mail_from: String, recipients: Vec<String>, raw: Vec<u8>) -> Reply {
        let outgoing = mta::Outgoing {
            workspace_id: sender.workspace_id,
            mailbox_id: Some(sender.mailbox_id),
            mail_from,
            recipients,
            raw,
        };
        let prepared = match mta::prepare_cached(&self.app, &self.signers, outgoing).await {
            Ok(prepared) => prepared,
            Err(e) => return Refusal::Mta(e).reply(),
        };
        let mailbox = sender.mailbox_id;
        let adding = i64::try_from(prepared.recipients().count()).unwrap_or(i64::MAX);
        let now = self.app.clock.unix();
        let queued = self
            .app
            .store
            .write(move |tx| {
                limits::record(tx, mailbox, adding, now)?;
                Ok::<_, Refusal>(mta::enqueue(tx, &prepared, now)?)
            })
            .await;
        match queued {
            Ok(ids) => {
                self.app.wakeup.notify_one();
                tracing::info!(mailbox = %sender.address, recipients = adding, queue_ids = ?ids, "message submitted");
                accepted(&ids)
            }
            Err(refusal) => refusal.reply(),
        }
    }
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
        auth::authenticate(&self.app, session.peer.ip(), credentials).await
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
        let state = self.app.store.read_quick(|conn| limits::check(conn, mailbox, 0, now));
        match state {
            Ok(()) | Err(Refusal::DailyLimit { .. } | Refusal::PerMinute { .. }) => Ok(()),
            Err(refusal) => Err(refusal.reply()),
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
        let mail_from = session.mail_from.clone().unwrap_or_else(|| sender.address.clone());
        self.queue(sender, mail_from, session.recipients.clone(), message).await
    }
}
