//! The inbound policy: the appliance as the MX of its own domains (`[smtp] inbound`), so replies,
//! bounces and complaints come home.
//!
//! - No AUTH (it is neither offered nor accepted); STARTTLS is offered by the engine; the engine
//!   enforces `[smtp] max_message_size` (552) and the recipient limit.
//! - RCPT accepts only addresses of local domains that resolve to a mailbox, an alias or the
//!   domain's catch-all ([`recipients`]): an unknown local user gets 550 5.1.1, any other domain
//!   554 5.7.1 — never a relay.
//! - After DATA: SPF, DKIM, ARC and DMARC are verified ([`authenticate`]); a DMARC `reject`
//!   failure is refused with 550 5.7.1 (unless `[smtp] inbound_dmarc_enforce` is off). Otherwise the message gets an `Authentication-Results` header (forged
//!   ones claiming our host name removed) and a `Received` header, and is stored, threaded and
//!   classified in one transaction ([`accept`], [`effects`]); only then is 250 answered. A
//!   failure to store answers 451, so the sender retries.

pub mod accept;
pub mod authenticate;
pub mod effects;
pub mod recipients;

use smtp_proto::EhloResponse;

use super::policy::{Policy, Session};
use super::reply::Reply;
use super::sasl::Credentials;
use crate::app::App;
use crate::error::Error;
use accept::Incoming;
use authenticate::{Disposition, Envelope};

/// The inbound (MX) policy.
pub struct Inbound {
    app: App,
}

impl Inbound {
    pub fn new(app: App) -> Inbound {
        Inbound { app }
    }

    /// The trace header for this hop (RFC 5321 §4.4).
    fn received_header(&self, session: &Session<()>) -> String {
        let helo: String =
            session.helo.as_deref().unwrap_or("unknown").chars().filter(|c| c.is_ascii_graphic()).take(255).collect();
        let protocol = if session.tls { "ESMTPS" } else { "ESMTP" };
        format!(
            "Received: from {helo} ({ip})\r\n\tby {host} (InboxGrove) with {protocol};\r\n\t{date}\r\n",
            ip = session.peer.ip(),
            host = self.app.config.hostname,
            date = self.app.clock.now().to_rfc2822(),
        )
    }
}

fn no_auth() -> Reply {
    Reply::new(502, [5, 5, 1], "AUTH is not offered on this port; use the submission port")
}

impl Policy for Inbound {
    type Identity = ();

    fn name(&self) -> &'static str {
        "inbound"
    }

    fn ehlo(&self, _session: &Session<()>, _reply: &mut EhloResponse<String>) {}

    fn check_auth_allowed(&self, _session: &Session<()>) -> Result<(), Reply> {
        Err(no_auth())
    }

    async fn authenticate(&self, _session: &Session<()>, _credentials: Credentials) -> Result<(), Reply> {
        Err(no_auth())
    }

    fn check_transaction_allowed(&self, _session: &Session<()>) -> Result<(), Reply> {
        Ok(())
    }

    async fn mail_from(&self, _session: &Session<()>, _from: &str) -> Result<(), Reply> {
        Ok(())
    }

    async fn rcpt_to(&self, _session: &Session<()>, to: &str) -> Result<(), Reply> {
        let (to, hostname) = (to.to_string(), self.app.config.hostname.clone());
        match self.app.store.read(move |conn| recipients::resolve(conn, &to, &hostname)).await {
            Ok(Ok(_)) => Ok(()),
            Ok(Err(refusal)) => Err(refusal.reply()),
            Err(e) => {
                tracing::error!(error = %e, "inbound recipient lookup failed");
                Err(Reply::temporary_failure())
            }
        }
    }

    async fn data(&self, session: &Session<()>, message: Vec<u8>) -> Reply {
        let mail_from = session.mail_from.clone().unwrap_or_default();
        let helo = session.helo.clone().unwrap_or_default();
        let envelope = Envelope { ip: session.peer.ip(), helo: &helo, mail_from: &mail_from };
        let verdict = authenticate::verify(&self.app, envelope, &message).await;
        if let Disposition::Reject(domain) = &verdict.disposition {
            tracing::info!(peer = %session.peer, %domain, "inbound message refused by the sender's DMARC policy");
            return Reply::new(550, [5, 7, 1], format!("Message refused: it fails the DMARC policy of {domain}"));
        }
        let cleaned = authenticate::without_forged_results(&message, &self.app.config.hostname);
        let raw = [verdict.header.as_bytes(), self.received_header(session).as_bytes(), &cleaned].concat();
        let incoming = Incoming {
            raw,
            mail_from,
            recipients: session.recipients.clone(),
            quarantine: verdict.disposition == Disposition::Quarantine,
        };
        match accept::store(&self.app, incoming).await {
            Ok(stored) => {
                tracing::info!(peer = %session.peer, mailboxes = ?stored.mailboxes, kind = stored.kind, "inbound message stored");
                Reply::ok("Message accepted for delivery")
            }
            Err(Error::NotFound) => Reply::new(550, [5, 1, 1], "No such user here"),
            Err(e) => {
                tracing::error!(error = %e, "storing an inbound message failed");
                Reply::temporary_failure()
            }
        }
    }
}
