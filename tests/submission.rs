//! SMTP submission end to end, with real clients: swaks and Python's smtplib submit over
//! STARTTLS and implicit TLS with AUTH PLAIN and LOGIN and the message lands in the queue,
//! DKIM-signed with a Message-ID; a raw TLS client in Rust checks every refusal's code (wrong
//! password, foreign MAIL FROM and From header, AUTH before STARTTLS, no open relay, unknown
//! commands, oversize messages, bare LF, STARTTLS injection), pipelined replies in order, and
//! the limits: daily limit, per-minute rate, suppression and paused mailboxes.

mod common;

use std::process::Command;
use std::sync::Arc;
use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use common::Appliance;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;
use tokio_rustls::client::TlsStream;

const DOMAIN: &str = "grove-send.test";
const LEAD: &str = "lead@prospect.test";
const WAIT: Duration = Duration::from_secs(20);

/// A running appliance with one domain and two mailboxes (address, password).
struct Fixture {
    appliance: Appliance,
    mailboxes: Vec<(String, String)>,
}

impl Fixture {
    fn start(extra_env: &[(&str, &str)]) -> Fixture {
        // Delivery workers look recipients up: point them at a loopback port where nobody answers.
        let dead_dns = format!("[\"127.0.0.1:{}\"]", common::peers::free_port("127.0.0.1"));
        let mut env = vec![
            ("INBOXGROVE_SMTP__SUBMISSION", "127.0.0.1:0"),
            ("INBOXGROVE_SMTP__SUBMISSIONS", "127.0.0.1:0"),
            ("INBOXGROVE_DNS__NAMESERVERS", dead_dns.as_str()),
        ];
        env.extend_from_slice(extra_env);
        let appliance = Appliance::start_with(tempfile::tempdir().expect("temp dir"), &env);
        run_ok(
            &appliance,
            &["admin", "create", "--email", "admin@grove.test"],
            Some(&format!("{}\n", common::PASSWORD)),
        );
        run_ok(&appliance, &["domain", "add", DOMAIN], None);
        let created = run_ok(&appliance, &["mailbox", "create", "--domain", DOMAIN, "--count", "2"], None);
        let mailboxes = created
            .lines()
            .skip(1)
            .map(|line| {
                let (email, password) = line.split_once(',').expect("email,password");
                (email.to_string(), password.to_string())
            })
            .collect::<Vec<_>>();
        assert_eq!(mailboxes.len(), 2, "{created}");
        Fixture { appliance, mailboxes }
    }

    fn mailbox(&self, index: usize) -> (&str, &str) {
        (&self.mailboxes[index].0, &self.mailboxes[index].1)
    }

    fn port(&self, implicit_tls: bool) -> u16 {
        let address = if implicit_tls { &self.appliance.smtp_submissions } else { &self.appliance.smtp_submission };
        address.rsplit_once(':').and_then(|(_, port)| port.parse().ok()).expect("a port")
    }

    fn db(&self) -> rusqlite::Connection {
        let conn = rusqlite::Connection::open(self.appliance.data_dir().join("inboxgrove.db")).expect("open db");
        conn.busy_timeout(Duration::from_secs(10)).expect("busy timeout");
        conn
    }

    /// The number of queue rows so far.
    fn queued(&self) -> i64 {
        self.db().query_row("SELECT count(*) FROM queue", [], |row| row.get(0)).expect("count queue")
    }

    /// The newest queue row's status and its message body.
    fn newest(&self) -> (String, String) {
        self.db()
            .query_row(
                "SELECT q.status, m.body FROM queue q JOIN messages m ON m.id = q.message_id ORDER BY q.id DESC LIMIT 1",
                [],
                |row| Ok((row.get(0)?, String::from_utf8_lossy(&row.get::<_, Vec<u8>>(1)?).into_owned())),
            )
            .expect("a queued message")
    }

    /// Asserts that one more message is queued for LEAD, signed and with a Message-ID.
    fn assert_queued(&self, before: i64, subject: &str) {
        assert_eq!(self.queued(), before + 1, "one more queue row after: {subject}");
        let (status, body) = self.newest();
        assert!(["queued", "in_flight", "deferred"].contains(&status.as_str()), "status {status}");
        assert!(body.contains(subject), "the newest message is {subject}:\n{body}");
        assert!(body.starts_with("DKIM-Signature:"), "DKIM-signed:\n{body}");
        assert!(body.contains(&format!("d={DOMAIN}")), "signed by the From domain:\n{body}");
        assert!(body.to_ascii_lowercase().contains("\r\nmessage-id: <"), "has a Message-ID:\n{body}");
        let received = "(127.0.0.1)\r\n\tby mail.grove.test (InboxGrove) with ESMTPSA;\r\n\t";
        assert!(body.contains("\r\nReceived: from ") && body.contains(received), "our trace field:\n{body}");
    }

    /// A TLS session (implicit, or after STARTTLS), ready for EHLO.
    async fn tls_client(&self, implicit_tls: bool) -> Smtp<TlsStream<TcpStream>> {
        let mut plain = Smtp::connect(self.port(implicit_tls)).await;
        let config = tls_config(&self.appliance);
        if implicit_tls {
            let mut tls = plain.into_tls(config).await;
            tls.greeting().await.expect_code(220);
            return tls;
        }
        plain.greeting().await.expect_code(220);
        plain.command("EHLO client.test").await.expect_code(250);
        plain.command("STARTTLS").await.expect_code(220);
        plain.into_tls(config).await
    }

    /// A TLS session, EHLO'd and authenticated as mailbox `index`.
    async fn authenticated(&self, index: usize) -> Smtp<TlsStream<TcpStream>> {
        let mut smtp = self.tls_client(true).await;
        smtp.command("EHLO client.test").await.expect_code(250);
        let (email, password) = self.mailbox(index);
        smtp.command(&format!("AUTH PLAIN {}", plain_auth(email, password))).await.expect_code(235);
        smtp
    }
}

fn run_ok(appliance: &Appliance, args: &[&str], stdin: Option<&str>) -> String {
    let output = appliance.cli(args, stdin);
    assert!(output.status.success(), "{args:?}: {}", String::from_utf8_lossy(&output.stderr));
    String::from_utf8(output.stdout).expect("utf-8 output")
}

fn plain_auth(user: &str, password: &str) -> String {
    BASE64.encode(format!("\0{user}\0{password}"))
}

fn message(from: &str, subject: &str) -> String {
    format!("From: <{from}>\r\nTo: <{LEAD}>\r\nSubject: {subject}\r\n\r\nHello from the submission tests.\r\n")
}

/// Trusts the appliance's self-signed certificate (it names the configured hostname).
fn tls_config(appliance: &Appliance) -> Arc<rustls::ClientConfig> {
    let pem = appliance.data_dir().join("tls/cert.pem");
    let mut roots = rustls::RootCertStore::empty();
    for cert in CertificateDer::pem_file_iter(&pem).expect("read cert.pem") {
        roots.add(cert.expect("a certificate")).expect("add the certificate");
    }
    Arc::new(rustls::ClientConfig::builder().with_root_certificates(roots).with_no_client_auth())
}

/// One reply: its code and its lines' texts.
#[derive(Debug)]
struct Reply {
    code: u16,
    lines: Vec<String>,
}

impl Reply {
    fn text(&self) -> String {
        self.lines.join("\n")
    }

    #[track_caller]
    fn expect_code(&self, code: u16) -> &Reply {
        assert_eq!(self.code, code, "reply: {self:?}");
        self
    }

    #[track_caller]
    fn expect(&self, code: u16, contains: &str) -> &Reply {
        self.expect_code(code);
        assert!(self.text().contains(contains), "reply {self:?} should contain {contains:?}");
        self
    }
}

/// A raw SMTP client over any stream.
struct Smtp<S> {
    stream: S,
    buffer: Vec<u8>,
}

impl Smtp<TcpStream> {
    async fn connect(port: u16) -> Smtp<TcpStream> {
        let stream = TcpStream::connect(("127.0.0.1", port)).await.expect("connect");
        Smtp { stream, buffer: Vec::new() }
    }

    async fn into_tls(self, config: Arc<rustls::ClientConfig>) -> Smtp<TlsStream<TcpStream>> {
        assert!(self.buffer.is_empty(), "nothing may follow the reply to STARTTLS");
        let name = ServerName::try_from("mail.grove.test").expect("server name");
        let stream = tokio::time::timeout(WAIT, TlsConnector::from(config).connect(name, self.stream))
            .await
            .expect("handshake in time")
            .expect("TLS handshake");
        Smtp { stream, buffer: Vec::new() }
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> Smtp<S> {
    async fn send(&mut self, bytes: &[u8]) {
        self.stream.write_all(bytes).await.expect("write");
        self.stream.flush().await.expect("flush");
    }

    async fn command(&mut self, line: &str) -> Reply {
        self.send(format!("{line}\r\n").as_bytes()).await;
        self.reply().await
    }

    async fn greeting(&mut self) -> Reply {
        self.reply().await
    }

    /// Reads one (possibly multi-line) reply.
    async fn reply(&mut self) -> Reply {
        let mut lines = Vec::new();
        loop {
            let line = self.line().await.unwrap_or_else(|| panic!("connection closed; read so far: {lines:?}"));
            let code: u16 = line.get(..3).and_then(|c| c.parse().ok()).unwrap_or_else(|| panic!("bad reply {line:?}"));
            lines.push(line.get(4..).unwrap_or_default().to_string());
            if line.as_bytes().get(3) != Some(&b'-') {
                return Reply { code, lines };
            }
        }
    }

    /// One CRLF line, or `None` at the end of the stream.
    async fn line(&mut self) -> Option<String> {
        loop {
            if let Some(end) = self.buffer.windows(2).position(|w| w == b"\r\n") {
                let line: Vec<u8> = self.buffer.drain(..end + 2).collect();
                return Some(String::from_utf8_lossy(&line[..end]).into_owned());
            }
            let mut chunk = [0u8; 4096];
            let read = tokio::time::timeout(WAIT, self.stream.read(&mut chunk)).await.expect("a reply in time");
            match read {
                Ok(0) | Err(_) => return None,
                Ok(n) => self.buffer.extend_from_slice(&chunk[..n]),
            }
        }
    }

    /// MAIL, RCPT, DATA and the message; returns the reply to the message.
    async fn submit(&mut self, from: &str, to: &str, message: &str) -> Reply {
        self.command(&format!("MAIL FROM:<{from}>")).await.expect_code(250);
        self.command(&format!("RCPT TO:<{to}>")).await.expect_code(250);
        self.command("DATA").await.expect_code(354);
        self.send(format!("{message}.\r\n").as_bytes()).await;
        self.reply().await
    }
}

/// Runs Python's smtplib against the appliance; returns the reply to DATA ("250 ...").
fn python_submit(port: u16, implicit_tls: bool, mechanism: &str, user: &str, password: &str, subject: &str) -> String {
    const SCRIPT: &str = r#"
import smtplib, ssl, sys
port, mode, mechanism, user, password, subject, to = sys.argv[1:]
context = ssl.create_default_context()
context.check_hostname = False
context.verify_mode = ssl.CERT_NONE
if mode == "implicit":
    smtp = smtplib.SMTP_SSL("127.0.0.1", int(port), context=context, timeout=20)
else:
    smtp = smtplib.SMTP("127.0.0.1", int(port), timeout=20)
    smtp.starttls(context=context)
smtp.ehlo()
if mechanism == "LOGIN":
    smtp.user, smtp.password = user, password
    smtp.auth("LOGIN", smtp.auth_login, initial_response_ok=False)
else:
    smtp.login(user, password)
body = f"From: {user}\r\nTo: {to}\r\nSubject: {subject}\r\n\r\nHello from smtplib.\r\n"
smtp.mail(user)
smtp.rcpt(to)
code, text = smtp.data(body)
print(code, text.decode())
smtp.quit()
"#;
    let mode = if implicit_tls { "implicit" } else { "starttls" };
    let output = Command::new("python3")
        .args(["-c", SCRIPT, &port.to_string(), mode, mechanism, user, password, subject, LEAD])
        .output()
        .expect("run python3");
    assert!(output.status.success(), "smtplib failed: {}", String::from_utf8_lossy(&output.stderr));
    String::from_utf8_lossy(&output.stdout).trim().to_string()
}

#[tokio::test]
async fn real_clients_submit_over_starttls_and_implicit_tls() {
    let fixture = Fixture::start(&[]);
    let (email, password) = fixture.mailbox(0);

    for (implicit_tls, mechanism) in [(false, "PLAIN"), (true, "LOGIN"), (false, "LOGIN"), (true, "PLAIN")] {
        let subject = format!("smtplib {mechanism} implicit={implicit_tls}");
        let before = fixture.queued();
        let reply = python_submit(fixture.port(implicit_tls), implicit_tls, mechanism, email, password, &subject);
        assert!(reply.starts_with("250 2.0.0 Queued as "), "{reply}");
        fixture.assert_queued(before, &subject);
    }

    if !common::have_peer("swaks") {
        return;
    }
    for (tls_flag, mechanism) in [("--tls", "PLAIN"), ("--tlsc", "LOGIN"), ("--tls", "LOGIN"), ("--tlsc", "PLAIN")] {
        let subject = format!("swaks {mechanism} {tls_flag}");
        let before = fixture.queued();
        let port = fixture.port(tls_flag == "--tlsc");
        let output = Command::new("swaks")
            .args(["--server", &format!("127.0.0.1:{port}"), tls_flag, "--auth", mechanism])
            .args(["--auth-user", email, "--auth-password", password, "--from", email, "--to", LEAD])
            .args(["--header", &format!("Subject: {subject}"), "--timeout", "20"])
            .output()
            .expect("run swaks");
        let dialogue = String::from_utf8_lossy(&output.stdout);
        assert!(output.status.success(), "swaks failed:\n{dialogue}\n{}", String::from_utf8_lossy(&output.stderr));
        assert!(dialogue.contains("250 2.0.0 Queued as "), "{dialogue}");
        fixture.assert_queued(before, &subject);
    }
}

#[tokio::test]
async fn the_received_field_can_leave_out_the_client() {
    let fixture = Fixture::start(&[("INBOXGROVE_SMTP__RECEIVED_CLIENT_ADDRESS", "false")]);
    let (email, _) = fixture.mailbox(0);
    let mut smtp = fixture.authenticated(0).await;
    smtp.submit(email, LEAD, &message(email, "private")).await.expect(250, "Queued");
    let (_, body) = fixture.newest();
    assert!(body.contains("\r\nReceived: by mail.grove.test (InboxGrove) with ESMTPSA;\r\n\t"), "{body}");
    assert!(!body.contains("127.0.0.1") && !body.contains("client.test"), "{body}");
}

#[tokio::test]
async fn refusals_carry_the_right_codes() {
    let fixture =
        Fixture::start(&[("INBOXGROVE_SMTP__MAX_MESSAGE_SIZE", "10000"), ("INBOXGROVE_SMTP__MAX_RECIPIENTS", "3")]);
    let (email, password) = fixture.mailbox(0);

    // Plaintext: the order of things, AUTH only after STARTTLS, and never a relay without AUTH.
    let mut plain = Smtp::connect(fixture.port(false)).await;
    plain.greeting().await.expect(220, "mail.grove.test");
    plain.command(&format!("MAIL FROM:<{email}>")).await.expect(503, "5.5.1");
    let ehlo = plain.command("EHLO client.test").await;
    let capabilities = ehlo.expect_code(250).text();
    for wanted in ["PIPELINING", "SIZE 10000", "8BITMIME", "SMTPUTF8", "ENHANCEDSTATUSCODES", "STARTTLS"] {
        assert!(capabilities.contains(wanted), "{wanted} in {capabilities}");
    }
    assert!(!capabilities.contains("AUTH"), "no AUTH before TLS: {capabilities}");
    plain.command(&format!("AUTH PLAIN {}", plain_auth(email, password))).await.expect(530, "STARTTLS");
    plain.command(&format!("MAIL FROM:<{email}>")).await.expect(530, "5.7.0");
    plain.command("RCPT TO:<victim@elsewhere.test>").await.expect(530, "5.7.0");
    plain.command("DATA").await.expect(530, "5.7.0");
    plain.command("XYZZY").await.expect(500, "5.5.1");
    plain.command("EXPN staff").await.expect(502, "5.5.1");
    plain.command(&format!("NOOP {}", "x".repeat(5000))).await.expect(500, "5.5.2");
    plain.command("VRFY someone").await.expect_code(252);
    plain.command("NOOP").await.expect(250, "2.0.0");
    plain.command("QUIT").await.expect_code(221);

    // STARTTLS: plaintext pipelined after it is discarded, and the session starts over.
    let mut plain = Smtp::connect(fixture.port(false)).await;
    plain.greeting().await.expect_code(220);
    plain.command("EHLO client.test").await.expect_code(250);
    plain.send(b"STARTTLS\r\nNOOP injected\r\n").await;
    plain.reply().await.expect(220, "2.0.0");
    let mut tls = plain.into_tls(tls_config(&fixture.appliance)).await;
    // (AUTH at once, without this EHLO, is accepted as Postfix accepts it: tests/login.rs.)
    let ehlo = tls.command("EHLO client.test").await;
    assert!(ehlo.lines[0].contains("Hello"), "the injected NOOP was not answered: {ehlo:?}");
    let capabilities = ehlo.expect_code(250).text();
    assert!(capabilities.contains("AUTH PLAIN LOGIN") || capabilities.contains("AUTH LOGIN PLAIN"), "{capabilities}");
    assert!(!capabilities.contains("STARTTLS"), "{capabilities}");
    tls.command(&format!("AUTH PLAIN {}", plain_auth(email, "wrong password"))).await.expect(535, "5.7.8");
    tls.command("AUTH PLAIN").await.expect_code(334);
    tls.command("*").await.expect(501, "cancelled");
    tls.command("AUTH PLAIN").await.expect_code(334);
    tls.command(&plain_auth(email, "another wrong one")).await.expect(535, "5.7.8");
    tls.command("AUTH LOGIN").await.expect_code(334);
    tls.command(&BASE64.encode(email)).await.expect_code(334);
    tls.command(&BASE64.encode(password)).await.expect(235, "2.7.0");

    // The mailbox sends only as itself.
    tls.command("MAIL FROM:<someone@grove-send.test>").await.expect(550, "5.7.1");
    let before = fixture.queued();
    let foreign = tls.submit(email, LEAD, &message("ceo@grove-send.test", "foreign from")).await;
    foreign.expect(550, "5.7.1");
    let no_from = tls.submit(email, LEAD, &format!("To: <{LEAD}>\r\nSubject: none\r\n\r\nbody\r\n")).await;
    no_from.expect(550, "From header");
    assert_eq!(no_from.lines[0].get(..5), Some("5.6.0"), "{no_from:?}");

    // Sizes: declared and actual.
    tls.command(&format!("MAIL FROM:<{email}> SIZE=20000")).await.expect(552, "5.3.4");
    let big = format!("{}{}", message(email, "too big"), format!("{}\r\n", "0123456789".repeat(10)).repeat(150));
    tls.submit(email, LEAD, &big).await.expect(552, "5.3.4");
    assert_eq!(fixture.queued(), before, "nothing refused was queued");

    // A pipelined burst gets its replies in order; the fourth recipient is one too many.
    let burst = format!(
        "MAIL FROM:<{email}>\r\nRCPT TO:<a@prospect.test>\r\nRCPT TO:<b@prospect.test>\r\nRCPT TO:<c@prospect.test>\r\n\
         RCPT TO:<d@prospect.test>\r\nDATA\r\n"
    );
    tls.send(burst.as_bytes()).await;
    tls.reply().await.expect(250, "2.1.0");
    for _ in 0..3 {
        tls.reply().await.expect(250, "2.1.5");
    }
    tls.reply().await.expect(452, "4.5.3");
    tls.reply().await.expect_code(354);
    tls.send(format!("{}.\r\n", message(email, "pipelined")).as_bytes()).await;
    tls.reply().await.expect(250, "Queued as");
    assert_eq!(fixture.queued(), before + 3, "three recipients queued");
    tls.command("RSET").await.expect_code(250);

    // Bare LF (a smuggling attempt) is refused and the connection closed; nothing is queued.
    tls.command(&format!("MAIL FROM:<{email}>")).await.expect_code(250);
    tls.command(&format!("RCPT TO:<{LEAD}>")).await.expect_code(250);
    tls.command("DATA").await.expect_code(354);
    let smuggled =
        format!("{}\n.\r\nMAIL FROM:<{email}>\r\nRCPT TO:<victim@prospect.test>\r\n", message(email, "smuggled"));
    tls.send(smuggled.as_bytes()).await;
    tls.reply().await.expect(554, "Bare LF");
    assert!(tls.line().await.is_none(), "the connection is closed after a smuggling attempt");
    assert_eq!(fixture.queued(), before + 3);
}

#[tokio::test]
async fn limits_suppression_and_pause_are_enforced() {
    let fixture = Fixture::start(&[]);
    let (first, _) = fixture.mailbox(0);
    let (second, _) = fixture.mailbox(1);
    let (first, second) = (first.to_string(), second.to_string());

    // Daily limit 2: two messages pass, the third recipient is refused, naming the limit.
    run_ok(&fixture.appliance, &["mailbox", "set", &first, "--daily-limit", "2"], None);
    let mut smtp = fixture.authenticated(0).await;
    smtp.submit(&first, LEAD, &message(&first, "one")).await.expect(250, "Queued");
    smtp.submit(&first, "other@prospect.test", &message(&first, "two")).await.expect(250, "Queued");
    smtp.command(&format!("MAIL FROM:<{first}>")).await.expect_code(250);
    let full = smtp.command("RCPT TO:<third@prospect.test>").await;
    full.expect(452, "4.7.0");
    assert!(full.text().contains(&format!("daily limit of 2 messages reached for {first}")), "{full:?}");
    assert!(full.text().contains("resets at midnight UTC"), "{full:?}");
    smtp.command("RSET").await.expect_code(250);

    // Suppressed recipients are refused at RCPT, naming why.
    let conn = fixture.db();
    let workspace: i64 = conn
        .query_row("SELECT workspace_id FROM mailboxes WHERE address = ?1", [&second], |row| row.get(0))
        .expect("workspace");
    conn.execute(
        "INSERT INTO suppressions (workspace_id, address, reason, created_at) VALUES (?1, 'gone@prospect.test', 'unsubscribe', 0)",
        [workspace],
    )
    .expect("suppress");
    let mut smtp = fixture.authenticated(1).await;
    smtp.command(&format!("MAIL FROM:<{second}>")).await.expect_code(250);
    smtp.command("RCPT TO:<Gone@Prospect.test>").await.expect(550, "5.7.1").expect(550, "unsubscribed");
    smtp.command("RSET").await.expect_code(250);

    // Per-minute rate 1: the second message in the same minute waits. The first goes to a local
    // mailbox (it never reaches the queue) and counts all the same.
    run_ok(&fixture.appliance, &["mailbox", "set", &second, "--per-minute", "1"], None);
    smtp.submit(&second, &first, &message(&second, "first this minute")).await.expect_code(250);
    smtp.command(&format!("MAIL FROM:<{second}>")).await.expect_code(250);
    smtp.command(&format!("RCPT TO:<{LEAD}>")).await.expect(452, "4.7.0").expect(452, "per-minute limit of 1");
    smtp.command("RSET").await.expect_code(250);

    // A paused mailbox cannot send, even in a session authenticated before the pause.
    run_ok(&fixture.appliance, &["mailbox", "set", &second, "--status", "paused"], None);
    smtp.command(&format!("MAIL FROM:<{second}>")).await.expect(550, "5.7.1").expect(550, "paused");
    let mut fresh = fixture.authenticated(1).await;
    fresh.command(&format!("MAIL FROM:<{second}>")).await.expect(550, "paused");
}

#[test]
fn a_taken_submission_port_fails_startup_naming_the_key() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let address = taken.local_addr().expect("address").to_string();
    let dir = tempfile::tempdir().expect("temp dir");
    let data = dir.path().join("data");
    let output = common::run_to_exit(
        &["serve", "--data", data.to_str().expect("utf-8 path")],
        &[
            ("INBOXGROVE_HTTP__LISTEN", "127.0.0.1:0"),
            ("INBOXGROVE_SMTP__SUBMISSION", &address),
            ("INBOXGROVE_SMTP__SUBMISSIONS", "127.0.0.1:0"),
        ],
    );
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains(&format!("Cannot listen on {address} (smtp.submission)")), "{stderr}");
}
