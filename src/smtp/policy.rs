//! The policy a listener applies: the session engine handles the protocol (parsing, TLS,
//! pipelining, sequencing, size and recipient limits) and consults its policy at each step
//! where a decision is about who may do what: the EHLO capabilities, whether AUTH is allowed
//! and whose credentials are good, whether a mail transaction may start, MAIL FROM, each RCPT
//! TO, and the message after DATA. Submission is one policy; inbound (the MX) is another.

use std::future::Future;
use std::net::SocketAddr;

use smtp_proto::EhloResponse;

use super::reply::Reply;
use crate::mailbox::sasl::Credentials;

/// What the engine knows about a session, shown to the policy at each step.
#[derive(Debug)]
pub struct Session<I> {
    /// The client's address.
    pub peer: SocketAddr,
    /// Whether the connection is encrypted (implicit TLS, or after STARTTLS).
    pub tls: bool,
    /// The name the client gave in EHLO or HELO.
    pub helo: Option<String>,
    /// Who authenticated, once AUTH succeeded.
    pub identity: Option<I>,
    /// The current transaction's reverse path, once MAIL FROM was accepted.
    pub mail_from: Option<String>,
    /// The current transaction's accepted recipients.
    pub recipients: Vec<String>,
}

impl<I> Session<I> {
    pub fn new(peer: SocketAddr, tls: bool) -> Session<I> {
        Session { peer, tls, helo: None, identity: None, mail_from: None, recipients: Vec::new() }
    }

    /// Ends the current mail transaction (RSET, EHLO, after DATA).
    pub fn reset_transaction(&mut self) {
        self.mail_from = None;
        self.recipients.clear();
    }
}

/// The decisions a listener's policy makes. Every refusal is a [`Reply`] sent as is.
pub trait Policy: Send + Sync + 'static {
    /// Who a successful AUTH identifies.
    type Identity: Send + Sync + 'static;

    /// A short name for logs ("submission").
    fn name(&self) -> &'static str;

    /// How long after connecting a client must have signed in; `None` when nobody signs in.
    fn login_deadline(&self) -> Option<std::time::Duration> {
        None
    }

    /// Adds the policy's capabilities (e.g. AUTH mechanisms) to the engine's EHLO reply.
    fn ehlo(&self, session: &Session<Self::Identity>, reply: &mut EhloResponse<String>);

    /// Refuses AUTH in this state (e.g. before TLS), or allows it.
    fn check_auth_allowed(&self, session: &Session<Self::Identity>) -> Result<(), Reply>;

    /// Checks credentials; a refusal is the reply to send.
    fn authenticate(
        &self,
        session: &Session<Self::Identity>,
        credentials: Credentials,
    ) -> impl Future<Output = Result<Self::Identity, Reply>> + Send;

    /// Consulted before MAIL, RCPT and DATA (e.g. submission requires AUTH first).
    fn check_transaction_allowed(&self, session: &Session<Self::Identity>) -> Result<(), Reply>;

    /// Accepts or refuses the reverse path.
    fn mail_from(
        &self,
        session: &Session<Self::Identity>,
        from: &str,
    ) -> impl Future<Output = Result<(), Reply>> + Send;

    /// Accepts or refuses one recipient (not yet in `session.recipients`).
    fn rcpt_to(&self, session: &Session<Self::Identity>, to: &str) -> impl Future<Output = Result<(), Reply>> + Send;

    /// Takes responsibility for the message (or refuses it); the reply is the answer to DATA.
    /// A positive reply must only be given once the message is durably stored.
    fn data(&self, session: &Session<Self::Identity>, message: Vec<u8>) -> impl Future<Output = Reply> + Send;
}
