//! One outbound SMTP connection, driven with mail-send step by step.
//!
//! Opening: connect to each target in turn (bound to the chosen source address when egress
//! addresses are configured) until one greets us; EHLO with `config.hostname` (a server that
//! refuses EHLO with 5xx gets HELO, and the session goes on without any extension: no STARTTLS,
//! no PIPELINING, 7-bit only, RFC 5321 §3.2); then TLS:
//! - to MX hosts, STARTTLS when offered (opportunistic, see `tls.rs`). If the STARTTLS command or
//!   handshake fails and plaintext fallback is allowed, the same address is connected to again
//!   and used without TLS; the session carries a note saying so, recorded in the event detail.
//!   Without fallback the target counts as failed (temporary) and the next one is tried.
//! - to a relay (smarthost or route), as its `smarthost_tls` says: `implicit` (TLS from the first
//!   byte), `starttls` (required: a relay that does not offer it is deferred, 4.7.10) or `none`;
//!   the certificate is verified ([`Trust`]: against `smarthost_tls_ca`, else the platform's trust
//!   store) unless `smarthost_tls_verify = false`. Then AUTH with the
//!   relay's user and password, which therefore never travel in the clear unless the
//!   configuration says `none`. A refused AUTH is a temporary failure with the relay's reply.
//!
//! Sending: `extensions.rs` first decides the `MAIL FROM` parameters (SIZE, BODY=8BITMIME,
//! SMTPUTF8) and what cannot be sent to this server at all. Then per message `MAIL FROM`,
//! `RCPT TO` per recipient (each refusal is that recipient's reply), then `DATA` if anyone was
//! accepted (its reply applies to all accepted). Messages after the first are preceded by `RSET`. When the server offers PIPELINING (RFC 2920) the commands
//! up to `DATA` go in one write and their replies are read together; the message follows only
//! after a 354 while some recipient was accepted (a 354 with no recipient accepted breaks the
//! session rather than sending an empty message). Any error that is not an SMTP reply (I/O,
//! timeout, garbage) breaks the session: its recipients get a temporary failure and the caller
//! stops using it.
//!
//! Egress: with `delivery.source_ips` set, a connection is bound to one of them: the address
//! assigned to the sending domain (`domains.source_ip`) when it is one of `source_ips`, else a
//! stable pick by the sending domain (FNV-1a hash of the domain modulo the addresses of the
//! target's family), so a domain always leaves from the same address; targets of a family with no
//! source address are skipped.

use std::io;
use std::net::{IpAddr, SocketAddr};
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use mail_send::smtp::message::Parameters;
use mail_send::{Credentials, SmtpClient};
use smtp_proto::{EXT_PIPELINING, EXT_START_TLS, EhloResponse};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpSocket, TcpStream};
use tokio_rustls::client::TlsStream;

use crate::config::SmarthostTls;

pub use super::egress::Egress;

use super::classify::{Reply, Stage};
use super::extensions::{self, Extensions, Plan};
use super::route::Target;
use super::tls::Connectors;

/// A server's reply as smtp-proto parses it.
type Response = smtp_proto::Response<String>;

/// A connection in plaintext or TLS.
pub enum Stream {
    Plain(TcpStream),
    Tls(Box<TlsStream<TcpStream>>),
}

impl AsyncRead for Stream {
    fn poll_read(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_read(cx, buf),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_read(cx, buf),
        }
    }
}

impl AsyncWrite for Stream {
    fn poll_write(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_write(cx, buf),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_write(cx, buf),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_flush(cx),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_flush(cx),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_shutdown(cx),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_shutdown(cx),
        }
    }
}

/// How TLS is used.
pub enum Security {
    /// An MX host: STARTTLS when offered, any certificate; plaintext retry when allowed.
    Opportunistic { fallback_plaintext: bool },
    /// A relay: TLS as configured (its certificate checked as `trust` says), then AUTH when
    /// credentials are set.
    Smarthost { credentials: Option<Credentials<String>>, tls: SmarthostTls, trust: Trust },
}

/// What a relay's certificate is checked against.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Trust {
    /// The platform's trust store.
    Platform,
    /// The certificates of this PEM file (`smarthost_tls_ca`).
    Ca(String),
    /// Nothing: any certificate (`smarthost_tls_verify = false`).
    Any,
}

/// Everything needed to open a session.
pub struct Settings<'a> {
    pub hostname: &'a str,
    pub timeout: Duration,
    pub egress: Egress,
    pub connectors: &'a Connectors,
    pub security: Security,
}

/// An open, greeted session.
pub struct Session {
    client: SmtpClient<Stream>,
    /// "mx.dest.test [127.0.0.2]".
    pub remote: String,
    /// Whether the session is encrypted.
    tls: bool,
    /// Why the session is in plaintext after a failed STARTTLS.
    note: Option<String>,
    used: bool,
    broken: bool,
    /// Whether the server offered PIPELINING.
    pipelining: bool,
    /// SIZE, 8BITMIME, SMTPUTF8 as offered (none after HELO).
    extensions: Extensions,
}

/// Why a target could not be used.
enum OpenError {
    /// STARTTLS was refused or its handshake failed.
    Tls(Reply),
    Other(Reply),
}

impl OpenError {
    fn into_reply(self) -> Reply {
        match self {
            OpenError::Tls(reply) | OpenError::Other(reply) => reply,
        }
    }
}

/// Opens a session with the first target that works; otherwise the last failure.
pub async fn connect(targets: &[Target], settings: &Settings<'_>) -> Result<Session, Reply> {
    let mut last = None;
    for target in targets {
        let Some(source) = settings.egress.source_for(target.ip) else {
            last = Some(Reply::local("4.4.1", format!("no source address for {}", target.label())));
            continue;
        };
        match open(target, settings, source, true).await {
            Ok(session) => return Ok(session),
            Err(OpenError::Tls(reply)) if fallback_allowed(settings) => {
                tracing::info!(remote = %target.label(), reason = %reply.describe(), "STARTTLS failed; retrying in plaintext");
                match open(target, settings, source, false).await {
                    Ok(mut session) => {
                        session.note = Some(format!(
                            "without TLS: STARTTLS with {} failed ({})",
                            target.label(),
                            reply.describe()
                        ));
                        return Ok(session);
                    }
                    Err(e) => last = Some(e.into_reply()),
                }
            }
            Err(e) => last = Some(e.into_reply()),
        }
    }
    Err(last.unwrap_or_else(|| Reply::local("4.4.1", "no address to connect to")))
}

fn fallback_allowed(settings: &Settings<'_>) -> bool {
    matches!(settings.security, Security::Opportunistic { fallback_plaintext: true })
}

/// What the server answered to our hello.
enum Hello {
    Ehlo(Box<EhloResponse<String>>),
    /// EHLO was refused with 5xx and HELO accepted: no extensions.
    Helo,
}

impl Hello {
    fn has(&self, capability: u32) -> bool {
        matches!(self, Hello::Ehlo(ehlo) if ehlo.has_capability(capability))
    }
}

/// Connects, reads the greeting, says EHLO and sets up TLS (and AUTH) as `settings` say.
async fn open(
    target: &Target,
    settings: &Settings<'_>,
    source: Option<IpAddr>,
    starttls: bool,
) -> Result<Session, OpenError> {
    let remote = target.label();
    let tcp = connect_tcp(target, source, settings.timeout)
        .await
        .map_err(|e| OpenError::Other(Reply::local("4.4.1", format!("cannot connect to {remote}: {e}"))))?;
    let client = SmtpClient { stream: tcp, timeout: settings.timeout };
    let (client, tls, hello) = match &settings.security {
        Security::Smarthost { tls: SmarthostTls::Implicit, trust, .. } => {
            let connector = relay_connector(settings, trust, &remote)?;
            let client = client.into_tls(connector, &target.host).await.map_err(|e| tls_error(e, &remote))?;
            let mut client = SmtpClient { stream: Stream::Tls(Box::new(client.stream)), timeout: settings.timeout };
            greeting(&mut client, &remote).await?;
            (client, true, None)
        }
        _ => plain_then_starttls(client, target, settings, starttls).await?,
    };
    let mut session = Session {
        client,
        remote,
        tls,
        note: None,
        used: false,
        broken: false,
        pipelining: false,
        extensions: Extensions::default(),
    };
    let hello = match hello {
        Some(hello) => hello,
        // A failure right after the handshake is a TLS failure too (plaintext may still work).
        None => say_hello(&mut session.client, settings.hostname, &session.remote).await.map_err(|e| match e {
            OpenError::Other(reply) if reply.code.is_some() => OpenError::Other(reply),
            OpenError::Other(reply) | OpenError::Tls(reply) => OpenError::Tls(reply),
        })?,
    };
    if let Security::Smarthost { tls: SmarthostTls::None, .. } = &settings.security {
        session.note =
            Some(format!("without TLS: the relay {} is configured with smarthost_tls = \"none\"", session.remote));
    }
    session.pipelining = hello.has(EXT_PIPELINING);
    if let Hello::Ehlo(ehlo) = &hello {
        session.extensions = Extensions::from_ehlo(ehlo);
    }
    if let Security::Smarthost { credentials: Some(credentials), .. } = &settings.security {
        authenticate(&mut session, credentials, &hello).await?;
    }
    Ok(session)
}

/// AUTH with a relay's credentials; a refusal is a temporary failure carrying the relay's reply.
async fn authenticate(
    session: &mut Session,
    credentials: &Credentials<String>,
    hello: &Hello,
) -> Result<(), OpenError> {
    let Hello::Ehlo(ehlo) = hello else {
        let text = format!("smarthost authentication failed: {} refused EHLO, so it offers no AUTH", session.remote);
        return Err(OpenError::Other(Reply::local("4.7.8", text).from_host(&session.remote)));
    };
    let authenticated = session.client.authenticate(credentials, ehlo.as_ref()).await;
    authenticated.map(|_| ()).map_err(|e| {
        let reply = failure(e, &session.remote, Stage::Connect);
        // Refused credentials are our configuration, never the recipient's fault.
        let text = format!("smarthost authentication failed: {}", reply.describe());
        OpenError::Other(Reply::local("4.7.8", text).from_host(&session.remote))
    })
}

/// EHLO; when it is refused with 5xx (RFC 5321 §4.1.4: an old server), HELO instead.
async fn say_hello<T: AsyncRead + AsyncWrite + Unpin>(
    client: &mut SmtpClient<T>,
    hostname: &str,
    remote: &str,
) -> Result<Hello, OpenError> {
    match client.ehlo(hostname).await {
        Ok(ehlo) => Ok(Hello::Ehlo(Box::new(ehlo))),
        Err(mail_send::Error::UnexpectedReply(refused)) if (500..600).contains(&refused.code) => {
            tracing::debug!(%remote, code = refused.code, "EHLO refused; trying HELO");
            let response = client
                .cmd(format!("HELO {hostname}\r\n"))
                .await
                .map_err(|e| OpenError::Other(failure(e, remote, Stage::Connect)))?;
            if (200..300).contains(&response.code) {
                Ok(Hello::Helo)
            } else {
                Err(OpenError::Other(Reply::from_response(&response, Some(remote), Stage::Connect)))
            }
        }
        Err(e) => Err(OpenError::Other(failure(e, remote, Stage::Connect))),
    }
}

/// Greeting and EHLO in plaintext, then STARTTLS when offered (required for a `starttls` relay).
/// Returns the hello when no TLS followed (after TLS the caller says EHLO again).
async fn plain_then_starttls(
    mut client: SmtpClient<TcpStream>,
    target: &Target,
    settings: &Settings<'_>,
    starttls: bool,
) -> Result<(SmtpClient<Stream>, bool, Option<Hello>), OpenError> {
    let remote = target.label();
    greeting(&mut client, &remote).await?;
    let hello = say_hello(&mut client, settings.hostname, &remote).await?;
    let offered = hello.has(EXT_START_TLS);
    let connector = match &settings.security {
        Security::Smarthost { tls: SmarthostTls::None, .. } => None,
        Security::Smarthost { .. } if !offered => {
            return Err(OpenError::Other(Reply::local("4.7.10", format!("{remote} does not offer STARTTLS"))));
        }
        Security::Smarthost { trust, .. } => Some(relay_connector(settings, trust, &remote)?),
        Security::Opportunistic { .. } if offered && starttls => Some(&settings.connectors.opportunistic),
        Security::Opportunistic { .. } => None,
    };
    let Some(connector) = connector else {
        let plain = SmtpClient { stream: Stream::Plain(client.stream), timeout: settings.timeout };
        return Ok((plain, false, Some(hello)));
    };
    let client = client.start_tls(connector, &target.host).await.map_err(|e| tls_error(e, &remote))?;
    Ok((SmtpClient { stream: Stream::Tls(Box::new(client.stream)), timeout: settings.timeout }, true, None))
}

/// The connector for a relay, verifying its certificate as `trust` says.
fn relay_connector<'a>(
    settings: &'a Settings<'_>,
    trust: &Trust,
    remote: &str,
) -> Result<&'a tokio_rustls::TlsConnector, OpenError> {
    let connectors = settings.connectors;
    let (connector, store) = match trust {
        Trust::Any => return Ok(&connectors.opportunistic),
        Trust::Platform => (connectors.verified.as_ref(), "the platform's trust store".to_string()),
        Trust::Ca(path) => (connectors.private.get(path), format!("the CA file {path}")),
    };
    connector.ok_or_else(|| {
        OpenError::Other(Reply::local(
            "4.7.5",
            format!("cannot verify the certificate of {remote}: {store} is unusable"),
        ))
    })
}

fn tls_error(error: mail_send::Error, remote: &str) -> OpenError {
    let reply = failure(error, remote, Stage::Connect);
    OpenError::Tls(Reply::local("4.7.5", format!("TLS with {remote} failed: {}", reply.describe())).from_host(remote))
}

/// Reads the server's greeting; anything but 2xx refuses the session.
async fn greeting<T: AsyncRead + AsyncWrite + Unpin>(
    client: &mut SmtpClient<T>,
    remote: &str,
) -> Result<(), OpenError> {
    let response = tokio::time::timeout(client.timeout, client.read())
        .await
        .map_err(|_| mail_send::Error::Timeout)
        .and_then(|read| read)
        .map_err(|e| OpenError::Other(failure(e, remote, Stage::Connect)))?;
    if (200..300).contains(&response.code) {
        Ok(())
    } else {
        Err(OpenError::Other(Reply::from_response(&response, Some(remote), Stage::Connect)))
    }
}

async fn connect_tcp(target: &Target, source: Option<IpAddr>, timeout: Duration) -> io::Result<TcpStream> {
    let address = SocketAddr::new(target.ip, target.port);
    let socket = if address.is_ipv4() { TcpSocket::new_v4()? } else { TcpSocket::new_v6()? };
    if let Some(source) = source {
        socket.bind(SocketAddr::new(source, 0))?;
    }
    let stream = tokio::time::timeout(timeout, socket.connect(address))
        .await
        .map_err(|_| io::Error::new(io::ErrorKind::TimedOut, "connection timed out"))??;
    // Without it, the small writes of a pipelined dialogue wait for delayed ACKs (40 ms each).
    stream.set_nodelay(true)?;
    Ok(stream)
}

/// A mail-send error as a reply: the server's own reply when there was one, else a temporary
/// network failure.
fn failure(error: mail_send::Error, remote: &str, stage: Stage) -> Reply {
    match error {
        mail_send::Error::UnexpectedReply(response) | mail_send::Error::AuthenticationFailed(response) => {
            Reply::from_response(&response, Some(remote), stage)
        }
        mail_send::Error::Timeout => {
            Reply::local("4.4.2", format!("{remote} did not answer in time")).from_host(remote)
        }
        other => Reply::local("4.4.2", format!("connection with {remote} failed: {other}")).from_host(remote),
    }
}

impl Session {
    /// What to record about the connection's security: the plaintext fallback, or that the
    /// server offered no TLS; nothing when the session is encrypted.
    pub fn security_note(&self) -> Option<String> {
        match (&self.note, self.tls) {
            (Some(note), _) => Some(note.clone()),
            (None, true) => None,
            (None, false) => Some(format!("without TLS: {} offered no STARTTLS", self.remote)),
        }
    }

    /// Whether the connection can carry another message.
    pub fn usable(&self) -> bool {
        !self.broken
    }

    /// Sends `body` from `mail_from` to `recipients`; one reply per recipient, in order.
    pub async fn send(&mut self, mail_from: &str, recipients: &[String], body: &[u8]) -> Vec<Reply> {
        let (parameters, refused) = match extensions::plan(&self.extensions, mail_from, recipients, body) {
            Plan::Refuse(reply) => return vec![reply; recipients.len()],
            Plan::Send { parameters, refused } => (parameters, refused),
        };
        let sendable: Vec<String> =
            recipients.iter().zip(&refused).filter(|(_, r)| r.is_none()).map(|(to, _)| to.clone()).collect();
        if sendable.is_empty() {
            return refused.into_iter().flatten().collect();
        }
        let mut replies = if self.pipelining {
            self.send_pipelined(mail_from, &parameters, &sendable, body).await
        } else {
            self.send_in_turn(mail_from, &parameters, &sendable, body).await
        }
        .into_iter();
        refused.into_iter().map(|r| r.or_else(|| replies.next()).unwrap_or_else(|| self.missing_reply())).collect()
    }

    fn missing_reply(&self) -> Reply {
        Reply::local("4.4.2", format!("{} sent too few replies", self.remote))
    }

    /// One command at a time, each reply read before the next command.
    async fn send_in_turn(
        &mut self,
        mail_from: &str,
        parameters: &str,
        recipients: &[String],
        body: &[u8],
    ) -> Vec<Reply> {
        let all = |reply: Reply| vec![reply; recipients.len()];
        if self.used
            && let Err(e) = self.client.rset().await
        {
            return all(self.fail(e, Stage::MailFrom));
        }
        self.used = true;
        let mail = self.client.cmd(format!("MAIL FROM:<{mail_from}>{parameters}\r\n")).await;
        match mail {
            Ok(response) if (200..300).contains(&response.code) => {}
            Ok(response) => return all(Reply::from_response(&response, Some(&self.remote), Stage::MailFrom)),
            Err(e) => return all(self.fail(e, Stage::MailFrom)),
        }
        let mut refused: Vec<Option<Reply>> = Vec::with_capacity(recipients.len());
        for recipient in recipients {
            match self.client.rcpt_to(recipient, &Parameters::new()).await {
                Ok(()) => refused.push(None),
                Err(e) => {
                    let reply = self.fail(e, Stage::RcptTo);
                    if self.broken {
                        return all(reply);
                    }
                    refused.push(Some(reply));
                }
            }
        }
        if refused.iter().all(Option::is_some) {
            return refused.into_iter().flatten().collect();
        }
        let data_reply = match self.client.data(without_final_crlf(body)).await {
            Ok(response) => Reply::from_response(&response, Some(&self.remote), Stage::Data),
            Err(e) => self.fail(e, Stage::Data),
        };
        refused.into_iter().map(|r| r.unwrap_or_else(|| data_reply.clone())).collect()
    }

    /// [`Session::send`] with the commands up to DATA in one write (see the module doc).
    async fn send_pipelined(
        &mut self,
        mail_from: &str,
        parameters: &str,
        recipients: &[String],
        body: &[u8],
    ) -> Vec<Reply> {
        let all = |reply: Reply| vec![reply; recipients.len()];
        let mut commands = Vec::with_capacity(recipients.len() + 3);
        if self.used {
            commands.push("RSET\r\n".to_string());
        }
        self.used = true;
        commands.push(format!("MAIL FROM:<{mail_from}>{parameters}\r\n"));
        commands.extend(recipients.iter().map(|r| format!("RCPT TO:<{r}>\r\n")));
        commands.push("DATA\r\n".to_string());
        let responses = match self.client.cmds(&commands).await {
            Ok(responses) => responses,
            Err(e) => return all(self.fail(e, Stage::MailFrom)),
        };
        let mut responses = responses.into_iter();
        if commands[0].starts_with("RSET")
            && let Some(rset) = responses.next()
            && !(200..300).contains(&rset.code)
        {
            self.broken = true;
            return all(Reply::from_response(&rset, Some(&self.remote), Stage::MailFrom));
        }
        let (Some(mail), rcpts, Some(data)) = split_replies(responses, recipients.len()) else {
            self.broken = true;
            return all(Reply::local("4.4.2", format!("{} sent too few replies", self.remote)));
        };
        if !(200..300).contains(&mail.code) {
            if data.code == 354 {
                self.broken = true;
            }
            return all(Reply::from_response(&mail, Some(&self.remote), Stage::MailFrom));
        }
        let refused: Vec<Option<Reply>> = rcpts
            .iter()
            .map(|r| {
                (!(200..300).contains(&r.code)).then(|| Reply::from_response(r, Some(&self.remote), Stage::RcptTo))
            })
            .collect();
        let any_accepted = refused.iter().any(Option::is_none);
        if data.code != 354 || !any_accepted {
            if data.code == 354 {
                // DATA was accepted without a recipient: end the session rather than send.
                self.broken = true;
            }
            let data_reply = Reply::from_response(&data, Some(&self.remote), Stage::Data);
            return refused.into_iter().map(|r| r.unwrap_or_else(|| data_reply.clone())).collect();
        }
        let finished = tokio::time::timeout(self.client.timeout, async {
            self.client.write_message(without_final_crlf(body)).await?;
            self.client.read().await
        })
        .await
        .unwrap_or(Err(mail_send::Error::Timeout));
        let data_reply = match finished {
            Ok(response) => Reply::from_response(&response, Some(&self.remote), Stage::Data),
            Err(e) => self.fail(e, Stage::Data),
        };
        refused.into_iter().map(|r| r.unwrap_or_else(|| data_reply.clone())).collect()
    }

    /// Says QUIT (politely, briefly) and closes.
    pub async fn close(self) {
        if !self.broken {
            let _ = tokio::time::timeout(Duration::from_secs(5), self.client.quit()).await;
        }
    }

    fn fail(&mut self, error: mail_send::Error, stage: Stage) -> Reply {
        if !matches!(error, mail_send::Error::UnexpectedReply(_)) {
            self.broken = true;
        }
        failure(error, &self.remote, stage)
    }
}

/// The pipelined replies: MAIL's, one per recipient, DATA's (`None`s when some are missing).
fn split_replies(
    mut responses: impl Iterator<Item = Response>,
    recipients: usize,
) -> (Option<Response>, Vec<Response>, Option<Response>) {
    let mail = responses.next();
    let rcpts: Vec<_> = responses.by_ref().take(recipients).collect();
    let data = responses.next();
    if rcpts.len() < recipients { (mail, rcpts, None) } else { (mail, rcpts, data) }
}

/// mail-send ends DATA with CRLF.CRLF itself; dropping the body's own final CRLF keeps the
/// message byte for byte.
fn without_final_crlf(body: &[u8]) -> &[u8] {
    body.strip_suffix(b"\r\n").unwrap_or(body)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_final_line_break_is_left_to_mail_send() {
        assert_eq!(without_final_crlf(b"a\r\nb\r\n"), b"a\r\nb");
        assert_eq!(without_final_crlf(b"a\r\nb"), b"a\r\nb");
    }
}
