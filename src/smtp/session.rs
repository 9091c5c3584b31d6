//! The SMTP session engine: one task per connection runs the RFC 5321 dialogue and consults its
//! [`Policy`] wherever a decision is about who may do what.
//!
//! The algorithm: read a line, parse it with smtp-proto, check the command's place in the
//! sequence (EHLO/HELO first, MAIL before RCPT before DATA, no AUTH inside a transaction), ask
//! the policy, queue the reply. Replies are written when the engine needs more input, so a
//! pipelined burst is answered in order with one write. STARTTLS (RFC 3207) discards whatever
//! plaintext followed the command, upgrades the stream and starts a fresh session (EHLO again,
//! no identity, no transaction). After DATA the message is collected by [`DataCollector`],
//! which refuses bare CR/LF and closes the connection for them (see `data.rs`). Too many
//! protocol errors or failed AUTH attempts end the session with 421.
//!
//! A client that connects and says nothing is cut off after [`FIRST_COMMAND_TIMEOUT`]; on a
//! listener whose policy wants sign-in ([`Policy::login_deadline`]), one that has not signed in
//! by then is cut off too. A session holds its client address's slot (`listener::Limiter`)
//! until it signs in; then the policy's identity holds a slot of its own.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use smtp_proto::{
    AUTH_LOGIN, AUTH_PLAIN, EXT_8BIT_MIME, EXT_ENHANCED_STATUS_CODES, EXT_PIPELINING, EXT_SIZE, EXT_SMTP_UTF8,
    EXT_START_TLS, EhloResponse, Error as ParseError, MailFrom, RcptTo, Request,
};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpStream;
use tokio::sync::watch;
use tokio_rustls::TlsAcceptor;

use super::connection::{Connection, End, Line};
use super::data::{DataCollector, DataEnd};
use super::policy::{Policy, Session};
use super::reply::Reply;
use crate::app::App;
use crate::listener::Slot;
use crate::mailbox::sasl::{self, Credentials, SaslError};

/// How long the TLS handshake may take.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(30);
/// Protocol errors (unknown commands, bad syntax) tolerated in one session.
const MAX_ERRORS: u32 = 20;
/// Failed AUTH attempts tolerated in one session (the throttle counts across sessions).
const MAX_AUTH_FAILURES: u32 = 3;
/// How long a new connection may take to send its first command.
pub const FIRST_COMMAND_TIMEOUT: Duration = Duration::from_secs(30);

/// How a listener's connections begin.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Security {
    /// Plaintext, upgraded with STARTTLS.
    StartTls,
    /// TLS from the first byte.
    Implicit,
}

/// The engine for one listener: the policy plus what every session needs.
pub struct Engine<P: Policy> {
    policy: P,
    tls: TlsAcceptor,
    hostname: String,
    max_message_size: usize,
    max_recipients: usize,
    shutdown: watch::Receiver<bool>,
}

/// What a session phase asks for when it ends normally.
enum Next {
    Quit,
    /// Upgrade to TLS; the name the client gave in EHLO before it.
    StartTls {
        helo: Option<String>,
    },
}

impl<P: Policy> Engine<P> {
    pub fn new(app: &App, policy: P, tls: TlsAcceptor) -> Engine<P> {
        let config = &app.config.smtp;
        Engine {
            policy,
            tls,
            hostname: app.config.hostname.clone(),
            max_message_size: usize::try_from(config.max_message_size).unwrap_or(usize::MAX),
            max_recipients: config.max_recipients.max(1),
            shutdown: app.shutdown.clone(),
        }
    }

    /// Runs one connection to its end. Client-side failures (disconnects, timeouts) are normal
    /// and only logged at debug level.
    pub async fn serve(
        self: Arc<Self>,
        tcp: TcpStream,
        peer: SocketAddr,
        security: Security,
        slot: Slot<std::net::IpAddr>,
    ) -> anyhow::Result<()> {
        let _ = tcp.set_nodelay(true);
        let mut state = PhaseState { slot: Some(slot), connected: tokio::time::Instant::now(), commands: 0 };
        let state = &mut state;
        let ended = match security {
            Security::Implicit => match self.handshake(tcp).await {
                Some(tls) => {
                    let mut conn = Connection::new(tls, self.shutdown.clone());
                    self.run_phase(&mut conn, Session::new(peer, true), state, true).await
                }
                None => Ok(Next::Quit),
            },
            Security::StartTls => {
                let mut plain = Connection::new(tcp, self.shutdown.clone());
                match self.run_phase(&mut plain, Session::new(peer, false), state, true).await {
                    Ok(Next::StartTls { helo }) => match self.handshake(plain.stream).await {
                        Some(tls) => {
                            // RFC 3207 wants a new EHLO; like Postfix, a client that goes straight
                            // on (to AUTH, say) is taken to have said the same name again.
                            let mut session = Session::new(peer, true);
                            session.helo = helo;
                            let mut conn = Connection::new(tls, self.shutdown.clone());
                            self.run_phase(&mut conn, session, state, false).await
                        }
                        None => Ok(Next::Quit),
                    },
                    other => other,
                }
            }
        };
        if let Err(end) = ended {
            tracing::debug!(policy = self.policy.name(), %peer, reason = %end, "smtp session ended");
        }
        Ok(())
    }

    async fn handshake(&self, tcp: TcpStream) -> Option<tokio_rustls::server::TlsStream<TcpStream>> {
        match tokio::time::timeout(HANDSHAKE_TIMEOUT, self.tls.accept(tcp)).await {
            Ok(Ok(tls)) => Some(tls),
            Ok(Err(e)) => {
                tracing::debug!(policy = self.policy.name(), error = %e, "TLS handshake failed");
                None
            }
            Err(_) => None,
        }
    }

    /// Runs the dialogue on one stream (plaintext, or TLS) with a fresh session state.
    async fn run_phase<S: AsyncRead + AsyncWrite + Unpin + Send>(
        &self,
        conn: &mut Connection<S>,
        session: Session<P::Identity>,
        state: &mut PhaseState,
        greet: bool,
    ) -> Result<Next, End> {
        if greet {
            conn.reply(&Reply::plain(220, format!("{} ESMTP InboxGrove", self.hostname)));
        }
        let mut run = Run { engine: self, conn, session, state, errors: 0, auth_failures: 0 };
        let result = run.dialogue().await;
        match &result {
            Err(End::IdleTimeout) => {
                conn.close_with(&Reply::new(421, [4, 4, 2], format!("{} Idle timeout, closing", self.hostname))).await
            }
            Err(End::Deadline) => {
                let text = format!("{} Too slow: send a command and sign in promptly; closing", self.hostname);
                conn.close_with(&Reply::new(421, [4, 4, 2], text)).await
            }
            Err(End::Shutdown) => {
                conn.close_with(&Reply::new(
                    421,
                    [4, 3, 2],
                    format!("{} Shutting down, try again later", self.hostname),
                ))
                .await
            }
            _ => {}
        }
        result
    }
}

/// What a connection carries from one phase to the next (plaintext, then TLS).
struct PhaseState {
    /// The client address's slot, held until the session signs in.
    slot: Option<Slot<std::net::IpAddr>>,
    connected: tokio::time::Instant,
    /// Commands received so far.
    commands: u64,
}

/// One session phase in progress.
struct Run<'a, P: Policy, S> {
    engine: &'a Engine<P>,
    conn: &'a mut Connection<S>,
    session: Session<P::Identity>,
    state: &'a mut PhaseState,
    errors: u32,
    auth_failures: u32,
}

impl<P: Policy, S: AsyncRead + AsyncWrite + Unpin + Send> Run<'_, P, S> {
    /// When the client must have sent its first command, or signed in (see the module doc).
    fn deadline(&self) -> Option<tokio::time::Instant> {
        if self.state.commands == 0 {
            return Some(self.state.connected + FIRST_COMMAND_TIMEOUT);
        }
        match self.engine.policy.login_deadline() {
            Some(limit) if self.session.identity.is_none() => Some(self.state.connected + limit),
            _ => None,
        }
    }

    async fn dialogue(&mut self) -> Result<Next, End> {
        loop {
            self.conn.deadline = self.deadline();
            let line = self.conn.next_line().await?;
            self.state.commands += 1;
            let line = match line {
                Line::Complete(line) => line,
                Line::TooLong => {
                    self.protocol_error(Reply::new(500, [5, 5, 2], "Line too long")).await?;
                    continue;
                }
            };
            let request = match Request::parse(&mut line.iter()) {
                Ok(request) => request.into_owned(),
                Err(e) => {
                    self.protocol_error(parse_error_reply(e)).await?;
                    continue;
                }
            };
            if let Some(next) = self.handle(request).await? {
                return Ok(next);
            }
        }
    }

    async fn handle(&mut self, request: Request<String>) -> Result<Option<Next>, End> {
        let reply = match request {
            Request::Ehlo { host } => self.ehlo(host),
            Request::Helo { host } => {
                self.session.helo = Some(host);
                self.session.reset_transaction();
                Reply::plain(250, self.engine.hostname.clone())
            }
            Request::StartTls => return self.starttls().await,
            Request::Auth { mechanism, initial_response } => self.auth(mechanism, initial_response).await?,
            Request::Mail { from } => self.mail(from).await,
            Request::Rcpt { to } => self.rcpt(to).await,
            Request::Data => self.data().await?,
            Request::Rset => {
                self.session.reset_transaction();
                Reply::ok("Reset")
            }
            Request::Noop { .. } => Reply::ok("OK"),
            Request::Vrfy { .. } => Reply::new(252, [2, 5, 0], "Cannot verify the user; send the message to try"),
            Request::Help { .. } => Reply::new(214, [2, 0, 0], "See RFC 5321"),
            Request::Quit => {
                self.conn.close_with(&Reply::new(221, [2, 0, 0], "Bye")).await;
                return Ok(Some(Next::Quit));
            }
            other => {
                let name = other.name();
                self.protocol_error(Reply::new(502, [5, 5, 1], format!("{name} is not implemented"))).await?;
                return Ok(None);
            }
        };
        self.conn.reply(&reply);
        Ok(None)
    }

    /// Queues an error reply; too many end the session.
    async fn protocol_error(&mut self, reply: Reply) -> Result<(), End> {
        self.conn.reply(&reply);
        self.errors += 1;
        if self.errors > MAX_ERRORS {
            self.conn.close_with(&Reply::new(421, [4, 7, 0], "Too many errors, closing")).await;
            return Err(End::Refused);
        }
        Ok(())
    }

    /// Answers EHLO with the engine's capabilities plus the policy's (e.g. AUTH after TLS).
    fn ehlo(&mut self, host: String) -> Reply {
        self.session.helo = Some(host);
        self.session.reset_transaction();
        let mut ehlo = EhloResponse::new(self.engine.hostname.clone());
        ehlo.capabilities = EXT_PIPELINING | EXT_SIZE | EXT_8BIT_MIME | EXT_SMTP_UTF8 | EXT_ENHANCED_STATUS_CODES;
        if !self.session.tls {
            ehlo.capabilities |= EXT_START_TLS;
        }
        ehlo.size = self.engine.max_message_size;
        self.engine.policy.ehlo(&self.session, &mut ehlo);
        let mut bytes = Vec::new();
        let _ = ehlo.write(&mut bytes);
        // smtp-proto's first line carries its own greeting text; ours names the client.
        let capabilities = bytes.windows(2).position(|w| w == b"\r\n").map_or(0, |p| p + 2);
        let mut lines = String::from_utf8_lossy(&bytes[capabilities..])
            .lines()
            .map(|line| line.get(4..).unwrap_or_default().to_string())
            .collect::<Vec<_>>();
        lines.insert(0, format!("{} Hello {}", self.engine.hostname, self.session.peer.ip()));
        Reply::plain(250, lines.join("\n"))
    }

    /// Answers 220 (sent at once: the handshake follows) and drops any pipelined plaintext.
    async fn starttls(&mut self) -> Result<Option<Next>, End> {
        let refusal = if self.session.tls {
            Some(Reply::bad_sequence("Already using TLS"))
        } else if self.session.helo.is_none() {
            Some(Reply::bad_sequence("Send EHLO first"))
        } else {
            None
        };
        if let Some(reply) = refusal {
            self.conn.reply(&reply);
            return Ok(None);
        }
        self.conn.reply(&Reply::new(220, [2, 0, 0], "Ready to start TLS"));
        self.conn.discard_input();
        self.conn.flush().await?;
        Ok(Some(Next::StartTls { helo: self.session.helo.take() }))
    }

    async fn auth(&mut self, mechanism: u64, initial_response: String) -> Result<Reply, End> {
        if self.session.helo.is_none() {
            return Ok(Reply::bad_sequence("Send EHLO first"));
        }
        if self.session.identity.is_some() {
            return Ok(Reply::bad_sequence("Already authenticated"));
        }
        if self.session.mail_from.is_some() {
            return Ok(Reply::bad_sequence("AUTH is not allowed during a mail transaction"));
        }
        if let Err(reply) = self.engine.policy.check_auth_allowed(&self.session) {
            return Ok(reply);
        }
        let credentials = match mechanism {
            AUTH_PLAIN => self.sasl_plain(initial_response).await?,
            AUTH_LOGIN => self.sasl_login(initial_response).await?,
            _ => return Ok(Reply::new(504, [5, 5, 4], "Unrecognized authentication mechanism; use PLAIN or LOGIN")),
        };
        let credentials = match credentials {
            Ok(credentials) => credentials,
            Err(SaslError::Cancelled) => return Ok(Reply::new(501, [5, 0, 0], "Authentication cancelled")),
            Err(SaslError::Malformed) => return Ok(Reply::new(501, [5, 5, 2], "Cannot decode the response")),
            Err(SaslError::ProxyRefused) => {
                return self.auth_failed(Reply::new(535, [5, 7, 8], "Authorization identity must be the user")).await;
            }
        };
        match self.engine.policy.authenticate(&self.session, credentials).await {
            Ok(identity) => {
                self.session.identity = Some(identity);
                self.state.slot = None;
                self.conn.deadline = None;
                Ok(Reply::new(235, [2, 7, 0], "Authentication successful"))
            }
            Err(reply) => self.auth_failed(reply).await,
        }
    }

    async fn auth_failed(&mut self, reply: Reply) -> Result<Reply, End> {
        self.auth_failures += 1;
        if self.auth_failures >= MAX_AUTH_FAILURES {
            self.conn.reply(&reply);
            self.conn.close_with(&Reply::new(421, [4, 7, 0], "Too many failed authentication attempts")).await;
            return Err(End::Refused);
        }
        Ok(reply)
    }

    /// Sends a 334 challenge and decodes the client's answer.
    async fn challenge(&mut self, prompt: &str) -> Result<Result<Vec<u8>, SaslError>, End> {
        self.conn.reply(&Reply::plain(334, prompt));
        Ok(match self.conn.next_line().await? {
            Line::Complete(line) => sasl::decode_response(&String::from_utf8_lossy(&line)),
            Line::TooLong => Err(SaslError::Malformed),
        })
    }

    async fn sasl_plain(&mut self, initial_response: String) -> Result<Result<Credentials, SaslError>, End> {
        let response = if initial_response.is_empty() {
            self.challenge("").await?
        } else {
            sasl::decode_response(&initial_response)
        };
        Ok(response.and_then(|bytes| sasl::parse_plain(&bytes)))
    }

    async fn sasl_login(&mut self, initial_response: String) -> Result<Result<Credentials, SaslError>, End> {
        let username = if initial_response.is_empty() {
            self.challenge(sasl::LOGIN_USERNAME_PROMPT).await?
        } else {
            sasl::decode_response(&initial_response)
        };
        let username = match username.and_then(|bytes| sasl::parse_login_field(&bytes)) {
            Ok(username) => username,
            Err(e) => return Ok(Err(e)),
        };
        let password = self.challenge(sasl::LOGIN_PASSWORD_PROMPT).await?;
        Ok(password
            .and_then(|bytes| sasl::parse_login_field(&bytes))
            .map(|password| Credentials { username, password }))
    }

    /// The checks MAIL, RCPT and DATA share: EHLO first, then whatever the policy requires.
    fn transaction_refusal(&self) -> Option<Reply> {
        if self.session.helo.is_none() {
            return Some(Reply::bad_sequence("Send EHLO first"));
        }
        self.engine.policy.check_transaction_allowed(&self.session).err()
    }

    async fn mail(&mut self, from: MailFrom<String>) -> Reply {
        if let Some(reply) = self.transaction_refusal() {
            return reply;
        }
        if self.session.mail_from.is_some() {
            return Reply::bad_sequence("Nested MAIL command");
        }
        if from.size > self.engine.max_message_size {
            return message_too_big(self.engine.max_message_size);
        }
        match self.engine.policy.mail_from(&self.session, &from.address).await {
            Ok(()) => {
                self.session.mail_from = Some(from.address);
                Reply::new(250, [2, 1, 0], "Sender OK")
            }
            Err(reply) => reply,
        }
    }

    async fn rcpt(&mut self, to: RcptTo<String>) -> Reply {
        if let Some(reply) = self.transaction_refusal() {
            return reply;
        }
        if self.session.mail_from.is_none() {
            return Reply::bad_sequence("Send MAIL FROM first");
        }
        if self.session.recipients.iter().any(|r| r.eq_ignore_ascii_case(&to.address)) {
            return Reply::new(250, [2, 1, 5], "Recipient OK (duplicate)");
        }
        if self.session.recipients.len() >= self.engine.max_recipients {
            return Reply::new(452, [4, 5, 3], format!("Too many recipients (at most {})", self.engine.max_recipients));
        }
        match self.engine.policy.rcpt_to(&self.session, &to.address).await {
            Ok(()) => {
                self.session.recipients.push(to.address);
                Reply::new(250, [2, 1, 5], "Recipient OK")
            }
            Err(reply) => reply,
        }
    }

    async fn data(&mut self) -> Result<Reply, End> {
        if let Some(reply) = self.transaction_refusal() {
            return Ok(reply);
        }
        if self.session.mail_from.is_none() {
            return Ok(Reply::bad_sequence("Send MAIL FROM first"));
        }
        if self.session.recipients.is_empty() {
            return Ok(Reply::new(554, [5, 5, 1], "No valid recipients"));
        }
        self.conn.reply(&Reply::plain(354, "Start mail input; end with <CRLF>.<CRLF>"));
        let end = self.receive_message().await?;
        let reply = match end {
            DataEnd::Message(message) => self.engine.policy.data(&self.session, message).await,
            DataEnd::TooBig => message_too_big(self.engine.max_message_size),
            DataEnd::LineTooLong => Reply::new(
                500,
                [5, 5, 2],
                "Message has a line longer than 998 characters; encode the body (quoted-printable or base64)",
            ),
            DataEnd::BareLineEnding => {
                let reply = Reply::new(554, [5, 5, 2], "Bare LF or CR in message data; lines must end with CRLF");
                self.conn.close_with(&reply).await;
                return Err(End::Refused);
            }
        };
        self.session.reset_transaction();
        Ok(reply)
    }

    async fn receive_message(&mut self) -> Result<DataEnd, End> {
        let mut collector = DataCollector::new(self.engine.max_message_size);
        loop {
            if !self.conn.input.is_empty() {
                let (consumed, end) = collector.ingest(&self.conn.input);
                self.conn.input.drain(..consumed);
                if let Some(end) = end {
                    return Ok(end);
                }
            }
            self.conn.fill().await?;
        }
    }
}

fn message_too_big(limit: usize) -> Reply {
    Reply::new(552, [5, 3, 4], format!("Message size exceeds the limit of {limit} bytes"))
}

/// The reply to a line smtp-proto could not parse.
fn parse_error_reply(error: ParseError) -> Reply {
    match error {
        ParseError::UnknownCommand | ParseError::NeedsMoreData { .. } | ParseError::ResponseTooLong => {
            Reply::new(500, [5, 5, 1], "Unknown command")
        }
        ParseError::InvalidSenderAddress => Reply::new(501, [5, 1, 7], "Bad sender address syntax"),
        ParseError::InvalidRecipientAddress => Reply::new(501, [5, 1, 3], "Bad recipient address syntax"),
        ParseError::SyntaxError { syntax } => Reply::new(501, [5, 5, 4], format!("Syntax: {syntax}")),
        ParseError::InvalidParameter { param } => Reply::new(501, [5, 5, 4], format!("Invalid parameter {param}")),
        ParseError::UnsupportedParameter { param } => {
            Reply::new(504, [5, 5, 4], format!("Unsupported parameter {param}"))
        }
        ParseError::InvalidResponse { .. } => Reply::new(500, [5, 5, 2], "Syntax error"),
    }
}
