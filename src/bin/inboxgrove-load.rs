//! `inboxgrove-load`: the project's load generator for the submission ports (Postfix's
//! smtp-source speaks neither TLS nor AUTH).
//!
//! It opens `--sessions` connections at once to a submission port (STARTTLS, or implicit TLS
//! with `--implicit-tls`; any certificate is accepted, since appliances start with a self-signed
//! one), authenticates each with AUTH PLAIN using the credentials CSV that
//! `inboxgrove mailbox create` prints (`email,password`, session i takes line i modulo their
//! number) and submits `--messages` messages in total, spread evenly over the sessions.
//!
//! Each session sends its messages one after another over the same connection: MAIL FROM (its
//! mailbox), RCPT TO (the next address of `--to`, or `load{n}@` `--to-domain`) and DATA, written
//! together when the server advertises PIPELINING, then the message (about `--size` bytes: From
//! = the mailbox, a unique Message-ID and an `X-Load-Counter` header). RSET is sent only after a
//! refused transaction. A 250 after the message counts as acknowledged; with `--acked FILE` the
//! Message-ID of every acknowledged message is appended to FILE as soon as the 250 arrives.
//!
//! At the end it prints the messages acknowledged and refused (with the first few refusals),
//! the elapsed time and the rate. It exits non-zero when any session failed to connect or lost
//! its connection.

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, anyhow, bail};
use base64::Engine as _;
use clap::Parser;
use rustls::crypto::aws_lc_rs;
use rustls::pki_types::ServerName;
use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncWrite, AsyncWriteExt, BufStream};
use tokio::net::TcpStream;
use tokio::sync::Mutex;
use tokio_rustls::TlsConnector;

/// How long one reply may take.
const REPLY_TIMEOUT: Duration = Duration::from_secs(60);
/// How many refusals are printed.
const SHOWN_REFUSALS: usize = 5;
/// The length of a body line (plus CRLF).
const LINE: usize = 76;

#[derive(Parser, Debug)]
#[command(about = "Submits test mail to an InboxGrove submission port over TLS with AUTH, and times it")]
struct Args {
    /// The submission port: host:port.
    #[arg(long)]
    server: String,
    /// TLS from the first byte (port 465 style) instead of STARTTLS.
    #[arg(long)]
    implicit_tls: bool,
    /// CSV of mailbox credentials (`email,password`, a header line is skipped).
    #[arg(long)]
    credentials: PathBuf,
    /// Concurrent sessions.
    #[arg(long, default_value_t = 1)]
    sessions: usize,
    /// Messages in total, over all sessions.
    #[arg(long, default_value_t = 1)]
    messages: usize,
    /// Approximate size of each message in bytes, headers included.
    #[arg(long, default_value_t = 4096)]
    size: usize,
    /// Recipient addresses, comma-separated, used in turn.
    #[arg(long, value_delimiter = ',', conflicts_with = "to_domain")]
    to: Vec<String>,
    /// Or: a recipient domain; message n goes to `load{n}@DOMAIN`.
    #[arg(long)]
    to_domain: Option<String>,
    /// Appends the Message-ID of each acknowledged message to this file (one per line).
    #[arg(long)]
    acked: Option<PathBuf>,
    /// Makes Message-IDs unique across runs (default: the current time).
    #[arg(long)]
    run_id: Option<String>,
}

/// What every session shares.
struct Shared {
    args: Args,
    credentials: Vec<(String, String)>,
    tls: TlsConnector,
    server_name: ServerName<'static>,
    run_id: String,
    acknowledged: AtomicU64,
    refused: AtomicU64,
    refusals: Mutex<Vec<String>>,
    acked_log: Option<Mutex<tokio::fs::File>>,
}

trait Io: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> Io for T {}

/// One SMTP connection with buffered reads and writes.
struct Client {
    stream: BufStream<Box<dyn Io>>,
    pipelining: bool,
}

/// A reply: its code and its full text (all lines).
struct Reply {
    code: u16,
    text: String,
}

#[tokio::main]
async fn main() -> std::process::ExitCode {
    let _ = aws_lc_rs::default_provider().install_default();
    match run(Args::parse()).await {
        Ok(true) => std::process::ExitCode::SUCCESS,
        Ok(false) => std::process::ExitCode::FAILURE,
        Err(e) => {
            eprintln!("inboxgrove-load: {e:#}");
            std::process::ExitCode::from(2)
        }
    }
}

/// Runs every session; returns whether all of them kept their connection.
async fn run(args: Args) -> anyhow::Result<bool> {
    if args.to.is_empty() && args.to_domain.is_none() {
        bail!("give recipients with --to or --to-domain");
    }
    let credentials = read_credentials(&args.credentials)?;
    let host = args.server.rsplit_once(':').map_or(args.server.as_str(), |(host, _)| host);
    let server_name = ServerName::try_from(host.trim_matches(['[', ']']).to_string())?;
    let acked_log = match &args.acked {
        Some(path) => Some(Mutex::new(
            tokio::fs::OpenOptions::new().create(true).append(true).open(path).await.context("open --acked file")?,
        )),
        None => None,
    };
    let run_id = args.run_id.clone().unwrap_or_else(|| {
        let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default();
        format!("{}{:09}", now.as_secs(), now.subsec_nanos())
    });
    let sessions = args.sessions.max(1);
    let shared = Arc::new(Shared {
        credentials,
        tls: inboxgrove::mta::deliver::any_certificate_connector()?,
        server_name,
        run_id,
        acknowledged: AtomicU64::new(0),
        refused: AtomicU64::new(0),
        refusals: Mutex::new(Vec::new()),
        acked_log,
        args,
    });
    let started = Instant::now();
    let tasks: Vec<_> = (0..sessions)
        .map(|session| {
            let count = shared.args.messages / sessions + usize::from(session < shared.args.messages % sessions);
            let shared = shared.clone();
            tokio::spawn(async move { (session, run_session(&shared, session, count).await) })
        })
        .collect();
    let mut failures = 0;
    for task in tasks {
        let (session, result) = task.await?;
        if let Err(e) = result {
            failures += 1;
            eprintln!("session {session}: {e:#}");
        }
    }
    report(&shared, started.elapsed(), sessions, failures).await;
    Ok(failures == 0)
}

async fn report(shared: &Shared, elapsed: Duration, sessions: usize, failures: usize) {
    let acknowledged = shared.acknowledged.load(Ordering::Relaxed);
    let refused = shared.refused.load(Ordering::Relaxed);
    let seconds = elapsed.as_secs_f64();
    let rate = if seconds > 0.0 { f64::from(u32::try_from(acknowledged).unwrap_or(u32::MAX)) / seconds } else { 0.0 };
    println!("sessions: {sessions} ({failures} failed)");
    println!("acknowledged: {acknowledged}");
    println!("refused: {refused}");
    for refusal in shared.refusals.lock().await.iter() {
        println!("  refusal: {refusal}");
    }
    println!("elapsed: {seconds:.3} s");
    println!("rate: {rate:.1} messages/s");
}

/// `email,password` lines; a first line starting with "email" is a header.
fn read_credentials(path: &PathBuf) -> anyhow::Result<Vec<(String, String)>> {
    let text = std::fs::read_to_string(path).with_context(|| format!("read {}", path.display()))?;
    let credentials: Vec<(String, String)> = text
        .lines()
        .map(str::trim)
        .filter(|line| !line.is_empty() && !line.to_ascii_lowercase().starts_with("email,"))
        .filter_map(|line| line.split_once(','))
        .map(|(email, password)| (email.trim().to_string(), password.trim().to_string()))
        .collect();
    if credentials.is_empty() {
        bail!("no credentials in {}", path.display());
    }
    Ok(credentials)
}

/// One session: connect, TLS, AUTH, then `count` transactions, then QUIT.
async fn run_session(shared: &Shared, session: usize, count: usize) -> anyhow::Result<()> {
    let (user, password) = &shared.credentials[session % shared.credentials.len()];
    let mut client = Client::open(shared).await?;
    client.auth_plain(user, password).await?;
    let domain = user.rsplit_once('@').map_or("load.test", |(_, d)| d);
    let filler = Filler::new(shared.args.size);
    for n in 0..count {
        let message_id = format!("load.{}.{session}.{n}@{domain}", shared.run_id);
        let to = recipient(&shared.args, session * count + n);
        let message = compose(user, &to, &message_id, &format!("{session}-{n}"), &filler);
        match client.transaction(user, &to, &message).await? {
            Ok(()) => {
                shared.acknowledged.fetch_add(1, Ordering::Relaxed);
                if let Some(log) = &shared.acked_log {
                    let mut file = log.lock().await;
                    file.write_all(format!("{message_id}\n").as_bytes()).await?;
                    file.flush().await?;
                }
            }
            Err(refusal) => {
                shared.refused.fetch_add(1, Ordering::Relaxed);
                let mut shown = shared.refusals.lock().await;
                if shown.len() < SHOWN_REFUSALS {
                    shown.push(refusal);
                }
                drop(shown);
                client.command("RSET").await?;
            }
        }
    }
    let _ = client.command("QUIT").await;
    Ok(())
}

fn recipient(args: &Args, n: usize) -> String {
    match &args.to_domain {
        Some(domain) => format!("load{n}@{domain}"),
        None => args.to[n % args.to.len()].clone(),
    }
}

/// A message of about `size` bytes: headers, then lines of [`LINE`] characters (`filler`).
fn compose(from: &str, to: &str, message_id: &str, counter: &str, filler: &Filler) -> String {
    let headers = format!(
        "From: <{from}>\r\nTo: <{to}>\r\nSubject: load test {counter}\r\nMessage-ID: <{message_id}>\r\n\
         X-Load-Counter: {counter}\r\nMIME-Version: 1.0\r\nContent-Type: text/plain; charset=us-ascii\r\n\r\n"
    );
    let lines = filler.size.saturating_sub(headers.len()) / (LINE + 2);
    let mut message = String::with_capacity(filler.size + LINE);
    message.push_str(&headers);
    message.push_str(&filler.text[..lines * (LINE + 2)]);
    message
}

/// Body lines enough for a message of `size` bytes, made once.
struct Filler {
    size: usize,
    text: String,
}

impl Filler {
    fn new(size: usize) -> Filler {
        let pattern: Vec<char> = "the quick brown fox jumps over the lazy dog 0123456789 ".chars().collect();
        let mut text = String::with_capacity(size + LINE);
        for line_number in 0..=size / (LINE + 2) {
            text.extend((0..LINE).map(|i| pattern[(i + line_number) % pattern.len()]));
            text.push_str("\r\n");
        }
        Filler { size, text }
    }
}

impl Client {
    /// Connects, reads the greeting, says EHLO and sets up TLS as asked (EHLO again after it).
    async fn open(shared: &Shared) -> anyhow::Result<Client> {
        let tcp = tokio::time::timeout(REPLY_TIMEOUT, TcpStream::connect(&shared.args.server))
            .await
            .map_err(|_| anyhow!("connecting to {} timed out", shared.args.server))?
            .with_context(|| format!("connect to {}", shared.args.server))?;
        tcp.set_nodelay(true)?;
        let stream: Box<dyn Io> = if shared.args.implicit_tls {
            Box::new(shared.tls.connect(shared.server_name.clone(), tcp).await.context("TLS handshake")?)
        } else {
            Box::new(tcp)
        };
        let mut client = Client { stream: BufStream::new(stream), pipelining: false };
        client.expect(220, "greeting").await?;
        client.ehlo().await?;
        if shared.args.implicit_tls {
            return Ok(client);
        }
        client.expect_command("STARTTLS", 220).await?;
        let plain = client.stream.into_inner();
        let tls = shared.tls.connect(shared.server_name.clone(), plain).await.context("STARTTLS handshake")?;
        let mut client = Client { stream: BufStream::new(Box::new(tls)), pipelining: false };
        client.ehlo().await?;
        Ok(client)
    }

    async fn ehlo(&mut self) -> anyhow::Result<()> {
        let reply = self.command("EHLO load.inboxgrove.test").await?;
        if reply.code != 250 {
            bail!("EHLO refused: {}", reply.text);
        }
        self.pipelining = reply.text.lines().any(|line| line.get(4..).is_some_and(|c| c.starts_with("PIPELINING")));
        Ok(())
    }

    async fn auth_plain(&mut self, user: &str, password: &str) -> anyhow::Result<()> {
        let token = base64::engine::general_purpose::STANDARD.encode(format!("\0{user}\0{password}"));
        let reply = self.command(&format!("AUTH PLAIN {token}")).await?;
        if reply.code != 235 {
            bail!("AUTH as {user} refused: {}", reply.text);
        }
        Ok(())
    }

    /// MAIL, RCPT, DATA (pipelined when offered), then the message. `Ok(Err(reply))` is a
    /// refusal; `Err` a broken connection.
    async fn transaction(&mut self, from: &str, to: &str, message: &str) -> anyhow::Result<Result<(), String>> {
        let commands = [format!("MAIL FROM:<{from}>"), format!("RCPT TO:<{to}>"), "DATA".to_string()];
        let mut replies = Vec::with_capacity(3);
        if self.pipelining {
            for command in &commands {
                self.stream.write_all(format!("{command}\r\n").as_bytes()).await?;
            }
            self.stream.flush().await?;
            for _ in &commands {
                replies.push(self.read_reply().await?);
            }
        } else {
            for command in &commands {
                let reply = self.command(command).await?;
                let refused = reply.code >= 400;
                replies.push(reply);
                if refused {
                    break;
                }
            }
        }
        let expected = [250, 250, 354];
        if let Some(refused) = replies.iter().zip(expected).find(|(reply, code)| reply.code != *code) {
            return Ok(Err(refused.0.text.trim_end().to_string()));
        }
        self.stream.write_all(dot_stuffed(message).as_bytes()).await?;
        self.stream.write_all(b".\r\n").await?;
        self.stream.flush().await?;
        let reply = self.read_reply().await?;
        Ok(if reply.code == 250 { Ok(()) } else { Err(reply.text.trim_end().to_string()) })
    }

    async fn command(&mut self, line: &str) -> anyhow::Result<Reply> {
        self.stream.write_all(format!("{line}\r\n").as_bytes()).await?;
        self.stream.flush().await?;
        self.read_reply().await
    }

    async fn expect_command(&mut self, line: &str, code: u16) -> anyhow::Result<()> {
        let reply = self.command(line).await?;
        if reply.code != code {
            bail!("{line} refused: {}", reply.text);
        }
        Ok(())
    }

    async fn expect(&mut self, code: u16, what: &str) -> anyhow::Result<()> {
        let reply = self.read_reply().await?;
        if reply.code != code {
            bail!("unexpected {what}: {}", reply.text);
        }
        Ok(())
    }

    /// Reads one reply, all its lines (`250-...` continues, `250 ...` ends).
    async fn read_reply(&mut self) -> anyhow::Result<Reply> {
        let mut text = String::new();
        loop {
            let mut line = String::new();
            let read = tokio::time::timeout(REPLY_TIMEOUT, self.stream.read_line(&mut line))
                .await
                .map_err(|_| anyhow!("no reply within {REPLY_TIMEOUT:?}"))??;
            if read == 0 {
                bail!("the server closed the connection");
            }
            text.push_str(&line);
            let code =
                line.get(..3).and_then(|c| c.parse::<u16>().ok()).ok_or_else(|| anyhow!("bad reply {line:?}"))?;
            if line.as_bytes().get(3) != Some(&b'-') {
                return Ok(Reply { code, text });
            }
        }
    }
}

/// A line starting with "." gets another one (RFC 5321 4.5.2).
fn dot_stuffed(message: &str) -> String {
    let stuffed = message.replace("\r\n.", "\r\n..");
    if stuffed.starts_with('.') { format!(".{stuffed}") } else { stuffed }
}
