//! One outbound SMTP connection, driven with mail-send step by step.
//!
//! Opening: connect to each target in turn (bound to the chosen source address when egress
//! addresses are configured) until one greets us; EHLO with `config.hostname`; then TLS:
//! - to MX hosts, STARTTLS when offered (opportunistic, see `tls.rs`). If the STARTTLS command or
//!   handshake fails and plaintext fallback is allowed, the same address is connected to again
//!   and used without TLS; the session carries a note saying so, recorded in the event detail.
//!   Without fallback the target counts as failed (temporary) and the next one is tried.
//! - to the smarthost, TLS is required (implicit on port 465, STARTTLS otherwise) with a verified
//!   certificate, then AUTH with `smarthost_user` / `smarthost_password`.
//!
//! Sending: per message `MAIL FROM`, `RCPT TO` per recipient (each refusal is that recipient's
//! reply), then `DATA` if anyone was accepted (its reply applies to all accepted). Messages after
//! the first are preceded by `RSET`. When the server offers PIPELINING (RFC 2920) the commands
//! up to `DATA` go in one write and their replies are read together; the message follows only
//! after a 354 while some recipient was accepted (a 354 with no recipient accepted breaks the
//! session rather than sending an empty message). Any error that is not an SMTP reply (I/O,
//! timeout, garbage) breaks the session: its recipients get a temporary failure and the caller
//! stops using it.
//!
//! Egress: with `delivery.source_ips` set, a connection is bound to one of them, picked stably
//! by the sending domain (FNV-1a hash of the domain modulo the addresses of the target's family),
//! so a domain always leaves from the same address; targets of a family with no source address
//! are skipped. (A per-domain assignment stored in the database can replace the hash later.)

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

use super::classify::{Reply, Stage};
use super::route::Target;
use super::tls::Connectors;

/// A server's reply as smtp-proto parses it.
type Response = smtp_proto::Response<String>;

/// The port on which a smarthost speaks TLS from the first byte.
const IMPLICIT_TLS_PORT: u16 = 465;

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
    /// The smarthost: TLS required and verified, then AUTH when credentials are set.
    Smarthost { credentials: Option<Credentials<String>> },
}

/// The source addresses a connection may use (see the module doc).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Egress {
    v4: Option<IpAddr>,
    v6: Option<IpAddr>,
    /// Whether source addresses are configured at all (then a family without one is skipped).
    restricted: bool,
}

impl Egress {
    /// The stable pick for `sending_domain` among `source_ips`.
    pub fn pick(source_ips: &[IpAddr], sending_domain: &str) -> Egress {
        let hash = fnv1a(sending_domain.to_ascii_lowercase().as_bytes());
        let choose = |family: &dyn Fn(&IpAddr) -> bool| {
            let candidates: Vec<IpAddr> = source_ips.iter().copied().filter(|ip| family(ip)).collect();
            let len = u64::try_from(candidates.len()).ok().filter(|&n| n > 0)?;
            candidates.get(usize::try_from(hash % len).ok()?).copied()
        };
        Egress { v4: choose(&IpAddr::is_ipv4), v6: choose(&IpAddr::is_ipv6), restricted: !source_ips.is_empty() }
    }

    /// The address to bind for a connection to `target`: `Some(None)` binds nothing, `None`
    /// means no allowed source address for that family.
    fn source_for(&self, target: IpAddr) -> Option<Option<IpAddr>> {
        let source = if target.is_ipv4() { self.v4 } else { self.v6 };
        match (source, self.restricted) {
            (Some(ip), _) => Some(Some(ip)),
            (None, false) => Some(None),
            (None, true) => None,
        }
    }
}

/// 64-bit FNV-1a: small, stable across builds and platforms.
fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |hash, &b| (hash ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3))
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
    let (client, tls, ehlo) = match &settings.security {
        Security::Smarthost { .. } if target.port == IMPLICIT_TLS_PORT => {
            let connector = verified(settings, &remote)?;
            let client = client.into_tls(connector, &target.host).await.map_err(|e| tls_error(e, &remote))?;
            let mut client = SmtpClient { stream: Stream::Tls(Box::new(client.stream)), timeout: settings.timeout };
            greeting(&mut client, &remote).await?;
            (client, true, None)
        }
        _ => plain_then_starttls(client, target, settings, starttls).await?,
    };
    let mut session = Session { client, remote, tls, note: None, used: false, broken: false, pipelining: false };
    let ehlo = match ehlo {
        Some(ehlo) => ehlo,
        // A failure right after the handshake is a TLS failure too (plaintext may still work).
        None => session.client.ehlo(settings.hostname).await.map_err(|e| match e {
            mail_send::Error::UnexpectedReply(_) => OpenError::Other(failure(e, &session.remote, Stage::Connect)),
            e => tls_error(e, &session.remote),
        })?,
    };
    session.pipelining = ehlo.has_capability(EXT_PIPELINING);
    if let Security::Smarthost { credentials: Some(credentials) } = &settings.security {
        session.client.authenticate(credentials, &ehlo).await.map_err(|e| {
            let reply = failure(e, &session.remote, Stage::Connect);
            // Refused credentials are our configuration, never the recipient's fault.
            OpenError::Other(Reply::local("4.7.8", format!("smarthost authentication failed: {}", reply.describe())))
        })?;
    }
    Ok(session)
}

/// Greeting and EHLO in plaintext, then STARTTLS when offered (required for the smarthost).
/// Returns the EHLO reply when no TLS followed (after TLS the caller says EHLO again).
async fn plain_then_starttls(
    mut client: SmtpClient<TcpStream>,
    target: &Target,
    settings: &Settings<'_>,
    starttls: bool,
) -> Result<(SmtpClient<Stream>, bool, Option<EhloResponse<String>>), OpenError> {
    let remote = target.label();
    greeting(&mut client, &remote).await?;
    let ehlo =
        client.ehlo(settings.hostname).await.map_err(|e| OpenError::Other(failure(e, &remote, Stage::Connect)))?;
    let offered = ehlo.has_capability(EXT_START_TLS);
    let connector = match &settings.security {
        Security::Smarthost { .. } if !offered => {
            return Err(OpenError::Other(Reply::local("4.7.10", format!("{remote} does not offer STARTTLS"))));
        }
        Security::Smarthost { .. } => verified(settings, &remote)?,
        Security::Opportunistic { .. } if offered && starttls => &settings.connectors.opportunistic,
        Security::Opportunistic { .. } => {
            let plain = SmtpClient { stream: Stream::Plain(client.stream), timeout: settings.timeout };
            return Ok((plain, false, Some(ehlo)));
        }
    };
    let client = client.start_tls(connector, &target.host).await.map_err(|e| tls_error(e, &remote))?;
    Ok((SmtpClient { stream: Stream::Tls(Box::new(client.stream)), timeout: settings.timeout }, true, None))
}

fn verified<'a>(settings: &'a Settings<'_>, remote: &str) -> Result<&'a tokio_rustls::TlsConnector, OpenError> {
    settings.connectors.verified.as_ref().ok_or_else(|| {
        OpenError::Other(Reply::local("4.7.5", format!("cannot verify the certificate of {remote}: no trust store")))
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
        if self.pipelining {
            return self.send_pipelined(mail_from, recipients, body).await;
        }
        let all = |reply: Reply| vec![reply; recipients.len()];
        if self.used
            && let Err(e) = self.client.rset().await
        {
            return all(self.fail(e, Stage::MailFrom));
        }
        self.used = true;
        if let Err(e) = self.client.mail_from(mail_from, &Parameters::new()).await {
            return all(self.fail(e, Stage::MailFrom));
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
    async fn send_pipelined(&mut self, mail_from: &str, recipients: &[String], body: &[u8]) -> Vec<Reply> {
        let all = |reply: Reply| vec![reply; recipients.len()];
        let mut commands = Vec::with_capacity(recipients.len() + 3);
        if self.used {
            commands.push("RSET\r\n".to_string());
        }
        self.used = true;
        commands.push(format!("MAIL FROM:<{mail_from}>\r\n"));
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
    fn egress_is_a_stable_pick_per_sending_domain_and_family() {
        let ips: Vec<IpAddr> =
            ["192.0.2.1", "192.0.2.2", "192.0.2.3", "2001:db8::1"].iter().map(|s| s.parse().unwrap()).collect();
        let a = Egress::pick(&ips, "alpha.test");
        assert_eq!(a, Egress::pick(&ips, "ALPHA.test"), "stable and case-insensitive");
        let v4 = a.source_for("198.51.100.7".parse().unwrap()).unwrap().unwrap();
        assert!(v4.is_ipv4() && ips.contains(&v4));
        assert_eq!(a.source_for("2001:db8::25".parse().unwrap()), Some(Some(ips[3])));
        let picks: std::collections::HashSet<IpAddr> =
            (0..50).filter_map(|n| Egress::pick(&ips, &format!("d{n}.test")).v4).collect();
        assert!(picks.len() > 1, "domains spread over the addresses");
    }

    #[test]
    fn without_source_addresses_nothing_is_bound_and_families_without_one_are_skipped() {
        assert_eq!(Egress::pick(&[], "a.test").source_for("192.0.2.9".parse().unwrap()), Some(None));
        let only_v4 = Egress::pick(&["192.0.2.1".parse().unwrap()], "a.test");
        assert_eq!(only_v4.source_for("2001:db8::25".parse().unwrap()), None);
    }

    #[test]
    fn the_final_line_break_is_left_to_mail_send() {
        assert_eq!(without_final_crlf(b"a\r\nb\r\n"), b"a\r\nb");
        assert_eq!(without_final_crlf(b"a\r\nb"), b"a\r\nb");
    }
}
