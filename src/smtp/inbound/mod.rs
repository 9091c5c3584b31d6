//! The inbound policy: the appliance as the MX of its own domains (`[smtp] inbound`), so replies,
//! bounces and complaints come home.
//!
//! - No AUTH (it is neither offered nor accepted); STARTTLS is offered by the engine; the engine
//!   enforces `[smtp] max_message_size` (552) and the recipient limit.
//! - RCPT accepts only addresses of local domains that resolve to a mailbox, an alias or the
//!   domain's catch-all (`mailbox::resolve`): an unknown local user gets 550 5.1.1, any other
//!   domain 554 5.7.1 — never a relay.
//! - After DATA: SPF, DKIM, ARC and DMARC are verified ([`authenticate`]); a DMARC `reject`
//!   failure is refused with 550 5.7.1 (unless `[smtp] inbound_dmarc_enforce` is off). Otherwise
//!   forged `Authentication-Results` claiming our host name are removed and the message is
//!   received through `mailstore::receive` (trace headers, threading, classification, effects) in
//!   one transaction; only then is 250 answered. A failure to store answers 451, so the sender
//!   retries.

pub mod authenticate;

use smtp_proto::EhloResponse;

use super::policy::{Policy, Session};
use super::reply::Reply;
use crate::app::App;
use crate::error::{Error, Result};
use crate::mailbox::resolve::{self, Refusal};
use crate::mailbox::sasl::Credentials;
use crate::mailstore::Announcer;
use crate::mailstore::receive::{self, Arrival, Facts, Origin, Received, Receiver};
use authenticate::{Disposition, Envelope};

/// The inbound (MX) policy.
pub struct Inbound {
    app: App,
}

impl Inbound {
    pub fn new(app: App) -> Inbound {
        Inbound { app }
    }

    /// Receives an authenticated message: its facts read on a blocking thread, then one write.
    async fn receive(
        &self,
        session: &Session<()>,
        raw: Vec<u8>,
        results: String,
        quarantine: bool,
    ) -> Result<Received> {
        let mail_from = session.mail_from.clone().unwrap_or_default();
        let (raw, mail_from, facts) = tokio::task::spawn_blocking(move || {
            let facts = Facts::read(&raw, &mail_from);
            (raw, mail_from, facts)
        })
        .await
        .map_err(|e| Error::Internal(format!("classifying task failed: {e}")))?;
        let (app, now) = (self.app.clone(), self.app.clock.unix());
        let (recipients, peer, tls) = (session.recipients.clone(), session.peer.ip(), session.tls);
        let helo = session.helo.clone().unwrap_or_default();
        let announcer = Announcer::new(&self.app);
        self.app
            .store
            .write(move |tx| {
                let receiver = Receiver { hostname: &app.config.hostname, keys: &app.keys, announcer: &announcer };
                let origin = Origin::Outside { peer, helo: &helo, tls, authentication_results: &results };
                let arrival = Arrival { raw: &raw, mail_from: &mail_from, recipients: &recipients, quarantine, origin };
                receive::receive(tx, &receiver, &arrival, &facts, now)
            })
            .await
    }
}

/// The SMTP reply for a recipient that delivers to no mailbox here.
pub fn refusal_reply(refusal: Refusal) -> Reply {
    match refusal {
        Refusal::BadSyntax => Reply::new(501, [5, 1, 3], "Bad recipient address syntax"),
        Refusal::NotLocal => Reply::new(554, [5, 7, 1], "Relay access denied: not a domain of this server"),
        Refusal::UnknownUser => Reply::new(550, [5, 1, 1], "No such user here"),
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
        match self.app.store.read(move |conn| resolve::resolve(conn, &to, &hostname)).await {
            Ok(Ok(_)) => Ok(()),
            Ok(Err(refusal)) => Err(refusal_reply(refusal)),
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
        let quarantine = verdict.disposition == Disposition::Quarantine;
        match self.receive(session, cleaned, verdict.header, quarantine).await {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refusals_have_the_contract_codes() {
        assert_eq!(refusal_reply(Refusal::UnknownUser).to_string(), "550 5.1.1 No such user here\r\n");
        assert!(refusal_reply(Refusal::NotLocal).to_string().starts_with("554 5.7.1 "));
    }
}
