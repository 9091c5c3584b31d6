//! Outbound delivery end to end: the real binary takes queued mail to real peers found through a
//! real DNS server (Knot), and time is moved through `/_test/clock`, never slept through.
//!
//! - Mail reaches a Postfix MX (127.0.0.2) and dkimpy verifies it, for an RSA and an Ed25519
//!   sending domain.
//! - A scripted server (127.0.0.3) answers 451 twice then 250: the message is retried on the
//!   schedule (1 minute, then 5) as the clock moves, and delivered exactly once.
//! - Postfix answers `reject@` with 550 5.1.1: a hard bounce, a suppression entry and a DSN in
//!   the sending mailbox's INBOX.
//! - A null MX and an NXDOMAIN bounce at once; an MX where nothing listens (127.0.0.4) defers,
//!   and expires (with a DSN) once `delivery.max_age` has passed.
//! - Over a destination's per-minute limit, a message waits without an attempt being counted.
//! - Rows that fall due together leave over one connection, with STARTTLS to a Postfix that
//!   offers it (its session summary and its Received fields say so).
//! - Egress: two domains assigned two source addresses (CLI, then swapped) reach a server that
//!   records the peer address from exactly those; an assignment no longer configured falls back
//!   to the automatic pick with a warning; the domain page's form sets it (CSRF, errors, audit).
//! - A server that refuses EHLO (502) gets HELO and 7-bit mail only (8-bit mail bounces 5.6.3);
//!   MAIL FROM carries SIZE, BODY=8BITMIME and SMTPUTF8 as advertised and needed; a message over
//!   the advertised SIZE bounces 5.3.4 at once; a UTF-8 recipient at a server without SMTPUTF8
//!   bounces 5.6.7; Postfix takes an 8-bit message and logs the parameters it received.
//!
//! Mail goes in through the submission port, as a mail client sends it: swaks for ordinary
//! messages, Python's smtplib for 8-bit bodies, UTF-8 recipients (SMTPUTF8) and several
//! recipients at once; the workers are then woken through the clock.

mod common;

use std::net::{TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, Instant};

use common::peers::{Dns, PostfixMx, ScriptedSmtp, SmtpOptions, Zone, dkim_available, dkim_verify, free_port};
use common::{Appliance, cli};
use inboxgrove::dns::dkim::DkimAlgorithm;
use rusqlite::{Connection, OptionalExtension};

const WAIT: Duration = Duration::from_secs(30);

/// A sending mailbox made through the CLI.
struct Sender {
    address: String,
    password: String,
    domain: String,
    mailbox_id: i64,
    workspace_id: i64,
}

/// The appliance with a workspace, sending domains and one mailbox on each.
struct Rig {
    appliance: Appliance,
    db: PathBuf,
    submission: u16,
    senders: Vec<Sender>,
}

/// One queue row as the test reads it.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Row {
    status: String,
    attempts: i64,
    next_attempt_at: i64,
    last_code: Option<i64>,
    last_status: String,
    last_reply: String,
    bounce_class: Option<String>,
    updated_at: i64,
}

/// Two loopback addresses that can both listen on one port (the MX port is one setting).
fn shared_port(ips: &[&str]) -> u16 {
    for _ in 0..100 {
        let port = free_port(ips[0]);
        if ips[1..].iter().all(|ip| TcpListener::bind((*ip, port)).is_ok()) {
            return port;
        }
    }
    panic!("no port free on all of {ips:?}");
}

/// Sets up the data dir with the CLI (admin, workspace, domains, mailboxes), publishes the
/// sending domains' records in `dns`, and starts the appliance pointed at it.
fn start_rig(dns: &Dns, mx_port: u16, sending: &[(&str, DkimAlgorithm)]) -> Rig {
    start_rig_with(dns, mx_port, sending, &[])
}

/// [`start_rig`] with extra environment for the appliance.
fn start_rig_with(dns: &Dns, mx_port: u16, sending: &[(&str, DkimAlgorithm)], extra: &[(&str, &str)]) -> Rig {
    let dir = tempfile::tempdir().expect("temp dir");
    let data = dir.path().join("data");
    let admin = cli(&data, &["admin", "create", "--email", "admin@grove.test"], Some(common::PASSWORD));
    assert!(admin.status.success(), "admin create: {}", String::from_utf8_lossy(&admin.stderr));
    let mut made = Vec::new();
    for (domain, algorithm) in sending {
        let dkim = algorithm.as_str();
        let added = cli(&data, &["domain", "add", domain, "--dkim", dkim], None);
        assert!(added.status.success(), "domain add: {}", String::from_utf8_lossy(&added.stderr));
        let created = cli(&data, &["mailbox", "create", "--domain", domain, "--count", "1"], None);
        assert!(created.status.success(), "mailbox create: {}", String::from_utf8_lossy(&created.stderr));
        let csv = String::from_utf8_lossy(&created.stdout).to_string();
        let line = csv.lines().nth(1).expect("one mailbox in the CSV");
        let (address, password) = line.split_once(',').expect("email,password");
        dns.set_zone(&Zone { name: domain.to_string(), records: zone_records(&data, domain) });
        made.push((address.to_string(), password.trim().to_string(), domain.to_string()));
    }
    let submission = free_port("127.0.0.1");
    let env = common::delivery_env(&dns.nameserver(), mx_port, submission);
    let mut env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    env.extend_from_slice(extra);
    let appliance = Appliance::start_with(dir, &env);
    let db = appliance.data_dir().join("inboxgrove.db");
    assert!(listening(submission), "the submission port 127.0.0.1:{submission} does not answer");
    let conn = open(&db);
    let senders = made
        .into_iter()
        .map(|(address, password, domain)| {
            let (mailbox_id, workspace_id) = conn
                .query_row("SELECT id, workspace_id FROM mailboxes WHERE address = ?1", [&address], |r| {
                    Ok((r.get(0)?, r.get(1)?))
                })
                .expect("the mailbox row");
            Sender { address, password, domain, mailbox_id, workspace_id }
        })
        .collect();
    Rig { appliance, db, submission, senders }
}

/// The record lines of `inboxgrove domain records NAME --zone` (comments and directives dropped).
fn zone_records(data: &std::path::Path, domain: &str) -> Vec<String> {
    let output = cli(data, &["domain", "records", domain, "--zone"], None);
    assert!(output.status.success(), "domain records: {}", String::from_utf8_lossy(&output.stderr));
    String::from_utf8_lossy(&output.stdout)
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with(';') && !l.starts_with('$'))
        .map(str::to_string)
        .collect()
}

/// Whether something accepts connections on 127.0.0.1:port within ten seconds.
fn listening(port: u16) -> bool {
    let deadline = Instant::now() + Duration::from_secs(10);
    while Instant::now() < deadline {
        if TcpStream::connect(("127.0.0.1", port)).is_ok() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    false
}

fn open(db: &std::path::Path) -> Connection {
    let conn = Connection::open(db).expect("open the appliance's database");
    conn.busy_timeout(Duration::from_secs(10)).expect("busy timeout");
    conn
}

/// Moves the appliance's clock forward (0 just wakes the workers); returns its new time.
fn advance_clock(rig: &Rig, seconds: i64) -> i64 {
    rig.appliance.advance_clock(seconds)
}

/// A plain message from `sender` to `to`.
fn message(sender: &Sender, to: &str, subject: &str) -> Vec<u8> {
    format!(
        "From: Sender <{from}>\r\nTo: <{to}>\r\nSubject: {subject}\r\nDate: Mon, 23 Nov 2026 10:00:00 +0000\r\n\
         Message-ID: <{token}@{domain}>\r\nMIME-Version: 1.0\r\nContent-Type: text/plain; charset=us-ascii\r\n\r\n\
         Hello from {domain}.\r\n.leading dot survives\r\n",
        from = sender.address,
        domain = sender.domain,
        token = subject.replace(' ', "-").to_lowercase(),
    )
    .into_bytes()
}

/// Submits a message with swaks; returns the ids of the rows queued for remote delivery.
fn queue_mail(rig: &Rig, sender: &Sender, to: &[&str], raw: &[u8]) -> Vec<i64> {
    queued_by(rig, || submit(rig.submission, sender, to, raw))
}

/// Submits with smtplib (8-bit bodies, UTF-8 recipients with SMTPUTF8, several recipients);
/// returns the ids of the rows queued for remote delivery.
fn queue_smtplib(rig: &Rig, sender: &Sender, to: &[&str], raw: &[u8]) -> Vec<i64> {
    queued_by(rig, || smtplib_submit(rig.submission, sender, to, raw))
}

/// Runs `submit`, wakes the workers, and returns the new rows for remote delivery.
fn queued_by(rig: &Rig, submit: impl FnOnce()) -> Vec<i64> {
    let before = max_queue_id(rig);
    submit();
    advance_clock(rig, 0);
    let conn = open(&rig.db);
    let mut stmt = conn.prepare("SELECT id FROM queue WHERE id > ?1 AND local = 0 ORDER BY id").expect("select");
    stmt.query_map([before], |r| r.get(0)).expect("query").collect::<Result<_, _>>().expect("ids")
}

fn max_queue_id(rig: &Rig) -> i64 {
    open(&rig.db).query_row("SELECT COALESCE(MAX(id), 0) FROM queue", [], |r| r.get(0)).expect("max id")
}

/// Submits with swaks over STARTTLS with AUTH, as a mail client would.
fn submit(port: u16, sender: &Sender, to: &[&str], raw: &[u8]) {
    let file = tempfile::NamedTempFile::new().expect("message file");
    std::fs::write(file.path(), raw).expect("write message");
    let output = Command::new("swaks")
        .args(["--server", &format!("127.0.0.1:{port}"), "--tls", "--auth", "PLAIN"])
        .args(["--auth-user", &sender.address, "--auth-password", &sender.password])
        .args(["--from", &sender.address, "--to", &to.join(","), "--timeout", "20"])
        .arg("--data")
        .arg(format!("@{}", file.path().display()))
        .output()
        .expect("run swaks");
    let text = format!("{}{}", String::from_utf8_lossy(&output.stdout), String::from_utf8_lossy(&output.stderr));
    assert!(output.status.success(), "submission failed:\n{text}");
}

/// Submits the bytes of `raw` with Python's smtplib over STARTTLS with AUTH, asking for SMTPUTF8
/// when a recipient is not ASCII.
fn smtplib_submit(port: u16, sender: &Sender, to: &[&str], raw: &[u8]) {
    const SCRIPT: &str = r#"
import smtplib, ssl, sys
port, user, password, path = sys.argv[1:5]
to = sys.argv[5:]
context = ssl.create_default_context()
context.check_hostname = False
context.verify_mode = ssl.CERT_NONE
smtp = smtplib.SMTP("127.0.0.1", int(port), timeout=20)
smtp.starttls(context=context)
smtp.login(user, password)
options = ["SMTPUTF8"] if any(not t.isascii() for t in to) else []
refused = smtp.sendmail(user, to, open(path, "rb").read(), mail_options=options)
assert not refused, refused
smtp.quit()
"#;
    let file = tempfile::NamedTempFile::new().expect("message file");
    std::fs::write(file.path(), raw).expect("write message");
    let output = Command::new("python3")
        .args(["-c", SCRIPT, &port.to_string(), &sender.address, &sender.password])
        .arg(file.path())
        .args(to)
        .output()
        .expect("run python3");
    assert!(output.status.success(), "smtplib submission failed: {}", String::from_utf8_lossy(&output.stderr));
}

fn row(rig: &Rig, id: i64) -> Row {
    open(&rig.db)
        .query_row(
            "SELECT status, attempts, next_attempt_at, last_code, last_status, last_reply, bounce_class, updated_at \
             FROM queue WHERE id = ?1",
            [id],
            |r| {
                Ok(Row {
                    status: r.get(0)?,
                    attempts: r.get(1)?,
                    next_attempt_at: r.get(2)?,
                    last_code: r.get(3)?,
                    last_status: r.get(4)?,
                    last_reply: r.get(5)?,
                    bounce_class: r.get(6)?,
                    updated_at: r.get(7)?,
                })
            },
        )
        .expect("queue row")
}

/// Polls (bounded) until the row satisfies `done`; returns it, or panics with its last state.
fn wait_row(rig: &Rig, id: i64, what: &str, done: impl Fn(&Row) -> bool) -> Row {
    let deadline = Instant::now() + WAIT;
    loop {
        let current = row(rig, id);
        if done(&current) {
            return current;
        }
        assert!(Instant::now() < deadline, "queue row {id} never became {what}: {current:?}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// The kinds of a queue row's events, oldest first.
fn event_kinds(rig: &Rig, id: i64) -> Vec<String> {
    let conn = open(&rig.db);
    let mut stmt = conn.prepare("SELECT kind FROM events WHERE queue_id = ?1 ORDER BY id").expect("select");
    stmt.query_map([id], |r| r.get(0)).expect("query").collect::<Result<_, _>>().expect("kinds")
}

/// The bodies in a mailbox's INBOX.
fn inbox(rig: &Rig, mailbox_id: i64) -> Vec<String> {
    let conn = open(&rig.db);
    let mut stmt = conn
        .prepare(
            "SELECT m.body FROM mail m JOIN folders f ON f.id = m.folder_id \
             WHERE f.mailbox_id = ?1 AND f.name = 'INBOX' ORDER BY m.id",
        )
        .expect("select");
    stmt.query_map([mailbox_id], |r| r.get::<_, Vec<u8>>(0))
        .expect("query")
        .map(|body| String::from_utf8_lossy(&body.expect("body")).into_owned())
        .collect()
}

#[test]
fn mail_reaches_the_mx_dkim_signed_for_rsa_and_ed25519_domains() {
    if !(Dns::available() && PostfixMx::available() && dkim_available()) {
        return;
    }
    let port = free_port("127.0.0.2");
    let dns = Dns::start(&[Zone::new("dest.test", &["@ MX 10 mx.dest.test.", "mx A 127.0.0.2"])]);
    let mx = PostfixMx::start("127.0.0.2", port, &["dest.test"]);
    let rig =
        start_rig(&dns, port, &[("grove-rsa.test", DkimAlgorithm::Rsa), ("grove-ed.test", DkimAlgorithm::Ed25519)]);

    let mut ids = Vec::new();
    for sender in &rig.senders {
        let raw = message(sender, "user@dest.test", &format!("Signed by {}", sender.domain));
        ids.extend(queue_mail(&rig, sender, &["user@dest.test"], &raw));
    }
    assert_eq!(ids.len(), 2, "one queue row per message");
    for id in &ids {
        let done = wait_row(&rig, *id, "delivered", |r| r.status == "delivered");
        assert_eq!((done.attempts, done.last_code), (1, Some(250)), "{done:?}");
        assert_eq!(event_kinds(&rig, *id).last().map(String::as_str), Some("delivered"));
    }
    let arrived = mx.wait_for(2, WAIT);
    for sender in &rig.senders {
        let copy = arrived
            .iter()
            .find(|m| String::from_utf8_lossy(m).contains(&format!("Subject: Signed by {}", sender.domain)))
            .unwrap_or_else(|| panic!("no message from {} in the Maildir", sender.domain));
        let text = String::from_utf8_lossy(copy);
        assert!(text.contains("\n.leading dot survives") && !text.contains("\n..leading"), "dot-stuffing: {text}");
        let (passed, log) = dkim_verify(copy, &dns);
        assert!(passed, "dkimpy rejected the {} message: {log}\n{text}", sender.domain);
    }
}

/// Rows that fell due together leave over one connection, with STARTTLS when the MX offers it:
/// three messages wait (deferred) while nothing listens at the MX; then a Postfix that offers
/// STARTTLS starts there, the clock moves past the retry, and all three arrive over one TLS
/// connection (Postfix's own Received field says how it received them).
#[test]
fn due_rows_share_one_connection_and_starttls_is_used_when_the_mx_offers_it() {
    if !(Dns::available() && PostfixMx::available()) {
        return;
    }
    let port = free_port("127.0.0.2");
    let dns = Dns::start(&[Zone::new("dest.test", &["@ MX 10 mx.dest.test.", "mx A 127.0.0.2"])]);
    let rig = start_rig(&dns, port, &[("grove-ed.test", DkimAlgorithm::Ed25519)]);
    let sender = &rig.senders[0];
    let mut ids = Vec::new();
    for n in 1..=3 {
        let to = format!("user{n}@dest.test");
        ids.extend(queue_mail(&rig, sender, &[&to], &message(sender, &to, &format!("Batched {n}"))));
    }
    for id in &ids {
        wait_row(&rig, *id, "deferred", |r| r.status == "deferred" && r.attempts == 1);
    }
    let mx = PostfixMx::start_tls("127.0.0.2", port, &["dest.test"]);
    advance_clock(&rig, 60);
    for id in &ids {
        let done = wait_row(&rig, *id, "delivered", |r| r.status == "delivered");
        assert_eq!(done.attempts, 2, "{done:?}");
    }
    let arrived = mx.wait_for(3, WAIT);
    for copy in &arrived {
        let text = String::from_utf8_lossy(copy);
        assert!(text.contains("(using TLSv1."), "received over TLS:\n{text}");
    }
    // Postfix sums up each session when it ends ("disconnect from ... starttls=1 mail=3 ...").
    let deadline = Instant::now() + WAIT;
    let sessions = loop {
        let log = mx.log();
        let sessions: Vec<String> = log
            .lines()
            .filter(|l| l.contains(": disconnect from") && l.contains(" mail="))
            .map(str::to_string)
            .collect();
        if !sessions.is_empty() || Instant::now() >= deadline {
            break sessions;
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    assert_eq!(sessions.len(), 1, "one session carried mail: {sessions:?}\n{}", mx.log());
    assert!(sessions[0].contains(" starttls=1") && sessions[0].contains(" mail=3 "), "{sessions:?}");
}

#[test]
fn the_per_minute_limit_postpones_without_counting_an_attempt() {
    if !(Dns::available() && PostfixMx::available()) {
        return;
    }
    let port = free_port("127.0.0.2");
    let dns = Dns::start(&[Zone::new("dest.test", &["@ MX 10 mx.dest.test.", "mx A 127.0.0.2"])]);
    let mx = PostfixMx::start("127.0.0.2", port, &["dest.test"]);
    let limit = [("INBOXGROVE_DELIVERY__DEFAULT_DESTINATION__PER_MINUTE", "1")];
    let rig = start_rig_with(&dns, port, &[("grove-rsa.test", DkimAlgorithm::Rsa)], &limit);
    let sender = &rig.senders[0];

    let mut ids = Vec::new();
    for to in ["one@dest.test", "two@dest.test"] {
        ids.extend(queue_mail(&rig, sender, &[to], &message(sender, to, &format!("Paced {to}"))));
    }
    let deadline = Instant::now() + WAIT;
    let (sent, held) = loop {
        let rows = [row(&rig, ids[0]), row(&rig, ids[1])];
        let postponed = |r: &Row| r.status == "queued" && r.next_attempt_at > r.updated_at;
        match rows.iter().position(|r| r.status == "delivered") {
            Some(i) if postponed(&rows[1 - i]) => break (rows[i].clone(), ids[1 - i]),
            _ => assert!(Instant::now() < deadline, "one delivered and one postponed expected: {rows:?}"),
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    assert_eq!(sent.attempts, 1);
    let waiting = row(&rig, held);
    assert_eq!(waiting.attempts, 0, "a postponement is not an attempt: {waiting:?}");
    assert!(waiting.next_attempt_at - waiting.updated_at <= 60, "{waiting:?}");
    assert_eq!(mx.wait_for(1, WAIT).len(), 1, "one message arrived, the other waits");

    advance_clock(&rig, 60);
    let done = wait_row(&rig, held, "delivered", |r| r.status == "delivered");
    assert_eq!(done.attempts, 1, "{done:?}");
    mx.wait_for(2, WAIT);
}

#[test]
fn a_temporary_failure_is_retried_on_the_schedule_and_delivered_once() {
    if !(Dns::available() && ScriptedSmtp::available()) {
        return;
    }
    let port = shared_port(&["127.0.0.3"]);
    let dns = Dns::start(&[Zone::new("flaky.test", &["@ MX 10 mx.flaky.test.", "mx A 127.0.0.3"])]);
    let greylist = "451 4.7.1 Greylisted, try again later";
    let script: &[(&str, &[&str])] = &[("later@flaky.test", &[greylist, greylist, "250 2.1.5 OK"])];
    let server = ScriptedSmtp::start("127.0.0.3", port, script);
    let rig = start_rig(&dns, port, &[("grove-rsa.test", DkimAlgorithm::Rsa)]);
    let sender = &rig.senders[0];

    let ids = queue_mail(&rig, sender, &["later@flaky.test"], &message(sender, "later@flaky.test", "Retry me"));
    let id = ids[0];
    let first = wait_row(&rig, id, "deferred once", |r| r.attempts == 1);
    assert_eq!(first.status, "deferred");
    assert_eq!((first.last_code, first.last_status.as_str()), (Some(451), "4.7.1"), "{first:?}");
    assert_eq!(first.next_attempt_at - first.updated_at, 60, "the first wait is one minute");
    assert_eq!(server.attempts("later@flaky.test"), 1);

    // Half the wait: nothing happens.
    advance_clock(&rig, 30);
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(row(&rig, id).attempts, 1, "retried before its time");

    advance_clock(&rig, 30);
    let second = wait_row(&rig, id, "deferred twice", |r| r.attempts == 2);
    assert_eq!(second.status, "deferred");
    assert_eq!(second.next_attempt_at - second.updated_at, 300, "the second wait is five minutes");

    advance_clock(&rig, 300);
    let done = wait_row(&rig, id, "delivered", |r| r.status == "delivered");
    assert_eq!((done.attempts, done.last_code), (3, Some(250)), "{done:?}");
    server.wait_for(1, WAIT);

    // Much later: still exactly one copy, and no more attempts.
    advance_clock(&rig, 86_400);
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(server.messages().len(), 1, "delivered exactly once");
    assert_eq!(server.attempts("later@flaky.test"), 3);
    let kinds: Vec<String> = event_kinds(&rig, id).into_iter().filter(|k| k != "queued").collect();
    assert_eq!(kinds, ["deferred", "deferred", "delivered"]);
}

#[test]
fn a_hard_bounce_is_suppressed_and_reported_to_the_sending_mailbox() {
    if !(Dns::available() && PostfixMx::available()) {
        return;
    }
    let port = free_port("127.0.0.2");
    let dns = Dns::start(&[Zone::new("dest.test", &["@ MX 10 mx.dest.test.", "mx A 127.0.0.2"])]);
    let _mx = PostfixMx::start("127.0.0.2", port, &["dest.test"]);
    let rig = start_rig(&dns, port, &[("grove-rsa.test", DkimAlgorithm::Rsa)]);
    let sender = &rig.senders[0];

    let ids = queue_mail(&rig, sender, &["reject@dest.test"], &message(sender, "reject@dest.test", "Bounce me"));
    let bounced = wait_row(&rig, ids[0], "bounced", |r| r.status == "bounced");
    assert_eq!(bounced.attempts, 1);
    assert_eq!((bounced.last_code, bounced.last_status.as_str()), (Some(550), "5.1.1"), "{bounced:?}");
    assert_eq!(bounced.bounce_class.as_deref(), Some("hard"));
    assert!(bounced.last_reply.contains("no such user"), "{bounced:?}");
    assert_eq!(event_kinds(&rig, ids[0]).last().map(String::as_str), Some("bounced"));

    let conn = open(&rig.db);
    let reason: Option<String> = conn
        .query_row(
            "SELECT reason FROM suppressions WHERE workspace_id = ?1 AND address = 'reject@dest.test'",
            [sender.workspace_id],
            |r| r.get(0),
        )
        .optional()
        .expect("suppressions");
    assert_eq!(reason.as_deref(), Some("hard_bounce"));

    let dsn = inbox(&rig, sender.mailbox_id);
    assert_eq!(dsn.len(), 1, "one DSN in the sender's INBOX");
    for expected in
        ["Undelivered Mail Returned to Sender", "Final-Recipient: rfc822; reject@dest.test", "Status: 5.1.1"]
    {
        assert!(dsn[0].contains(expected), "missing {expected:?} in the DSN:\n{}", dsn[0]);
    }

    let listed = rig.appliance.cli(&["queue", "list", "--status", "bounced"], None);
    assert!(listed.status.success(), "queue list: {}", String::from_utf8_lossy(&listed.stderr));
    let text = String::from_utf8_lossy(&listed.stdout);
    let line = text.lines().find(|line| line.contains("reject@dest.test")).unwrap_or_else(|| panic!("{text}"));
    assert!(line.contains("bounced") && line.contains(&sender.address), "queue list --status bounced:\n{text}");
}

#[test]
fn a_null_mx_or_missing_domain_bounces_at_once_and_an_unreachable_mx_defers_then_expires() {
    if !Dns::available() {
        return;
    }
    let port = shared_port(&["127.0.0.4"]);
    let dns = Dns::start(&[
        Zone::new("nullmx.test", &["@ MX 0 ."]),
        Zone::new("down.test", &["@ MX 10 mx.down.test.", "mx A 127.0.0.4"]),
        Zone::new("parent.test", &["www A 127.0.0.9"]),
    ]);
    let rig = start_rig(&dns, port, &[("grove-rsa.test", DkimAlgorithm::Rsa)]);
    let sender = &rig.senders[0];
    let to = ["a@nullmx.test", "b@down.test", "c@missing.parent.test"];
    let mut ids = Vec::new();
    for recipient in to {
        ids.extend(queue_mail(&rig, sender, &[recipient], &message(sender, recipient, &format!("To {recipient}"))));
    }

    let null_mx = wait_row(&rig, ids[0], "bounced", |r| r.status == "bounced");
    assert_eq!((null_mx.attempts, null_mx.last_status.as_str()), (1, "5.1.10"), "{null_mx:?}");
    assert_eq!(null_mx.bounce_class.as_deref(), Some("hard"));
    assert!(null_mx.last_reply.contains("null MX"), "{null_mx:?}");

    let nxdomain = wait_row(&rig, ids[2], "bounced", |r| r.status == "bounced");
    assert_eq!((nxdomain.last_status.as_str(), nxdomain.bounce_class.as_deref()), ("5.1.2", Some("hard")));
    assert!(nxdomain.last_reply.contains("no such domain"), "{nxdomain:?}");

    let down = wait_row(&rig, ids[1], "deferred", |r| r.attempts == 1);
    assert_eq!(down.status, "deferred", "{down:?}");
    assert!(down.last_status.starts_with("4."), "{down:?}");
    assert_eq!(down.next_attempt_at - down.updated_at, 60);
    assert!(down.last_reply.contains("127.0.0.4"), "{down:?}");

    assert_eq!(inbox(&rig, sender.mailbox_id).len(), 2, "a DSN for each bounce, none for the deferral");

    // Three days later (delivery.max_age) the unreachable destination expires, with a DSN.
    advance_clock(&rig, 3 * 86_400);
    let expired = wait_row(&rig, ids[1], "expired", |r| r.status == "expired");
    assert_eq!(expired.attempts, 2, "{expired:?}");
    assert_eq!(event_kinds(&rig, ids[1]).last().map(String::as_str), Some("expired"));
    let notices = inbox(&rig, sender.mailbox_id);
    assert_eq!(notices.len(), 3, "one more DSN, for the expiry");
    let expiry = notices.iter().find(|n| n.contains("rfc822; b@down.test")).expect("the expiry DSN");
    assert!(expiry.contains("Action: failed") && expiry.contains("Status: 4.4.7"), "{expiry}");
}

/// Runs the CLI on the rig's data dir with extra environment (the appliance's config comes from
/// the environment, and the CLI must see the same `[delivery] source_ips`).
fn cli_env(rig: &Rig, args: &[&str], env: &[(&str, &str)]) -> std::process::Output {
    let mut command = Command::new(common::BIN);
    command.args(args).arg("--data").arg(rig.appliance.data_dir()).env("INBOXGROVE_HOSTNAME", "mail.grove.test");
    for (key, value) in env {
        command.env(key, value);
    }
    command.env_remove("INBOXGROVE_MASTER_KEY").output().expect("run inboxgrove")
}

/// The peer address each accepted message came from, by envelope sender.
fn peers_by_sender(server: &ScriptedSmtp) -> Vec<(String, String)> {
    server.envelopes().into_iter().zip(server.metas()).map(|(env, meta)| (env.mail_from, meta.peer_ip)).collect()
}

/// Waits (bounded) for a line of the appliance's output containing `needle`.
fn wait_output(rig: &Rig, needle: &str) -> bool {
    let deadline = Instant::now() + WAIT;
    while Instant::now() < deadline {
        match rig.appliance.output.recv_timeout(Duration::from_millis(200)) {
            Ok(line) if line.contains(needle) => return true,
            _ => {}
        }
    }
    false
}

#[tokio::test(flavor = "multi_thread")]
async fn each_domain_leaves_from_its_assigned_source_address() {
    if !(Dns::available() && ScriptedSmtp::available()) {
        return;
    }
    let port = shared_port(&["127.0.0.5"]);
    let dns = Dns::start(&[Zone::new("dest.test", &["@ MX 10 mx.dest.test.", "mx A 127.0.0.5"])]);
    let server = ScriptedSmtp::start("127.0.0.5", port, &[]);
    let sources = [("INBOXGROVE_DELIVERY__SOURCE_IPS", "[\"127.0.0.21\", \"127.0.0.22\"]")];
    let sending = [("egress-one.test", DkimAlgorithm::Ed25519), ("egress-two.test", DkimAlgorithm::Ed25519)];
    let rig = start_rig_with(&dns, port, &sending, &sources);
    let (one, two) = (&rig.senders[0], &rig.senders[1]);

    let assign = |domain: &str, ip: &str| {
        let output = cli_env(&rig, &["domain", "set", domain, "--source-ip", ip], &sources);
        assert!(output.status.success(), "domain set: {}", String::from_utf8_lossy(&output.stderr));
    };
    let send_round = |round: usize| {
        for sender in [one, two] {
            let to = format!("r{round}-{}@dest.test", sender.domain);
            let ids = queue_mail(&rig, sender, &[&to], &message(sender, &to, &format!("Egress {round}")));
            wait_row(&rig, ids[0], "delivered", |r| r.status == "delivered");
        }
        server.wait_for(2 * round, WAIT);
        peers_by_sender(&server)[2 * (round - 1)..].to_vec()
    };
    assign("egress-one.test", "127.0.0.21");
    assign("egress-two.test", "127.0.0.22");
    let first = send_round(1);
    assert!(first.contains(&(one.address.clone(), "127.0.0.21".into())), "{first:?}");
    assert!(first.contains(&(two.address.clone(), "127.0.0.22".into())), "{first:?}");

    // Swapped: whatever the automatic pick would be, the assignment decides.
    assign("egress-one.test", "127.0.0.22");
    assign("egress-two.test", "127.0.0.21");
    let second = send_round(2);
    assert!(second.contains(&(one.address.clone(), "127.0.0.22".into())), "{second:?}");
    assert!(second.contains(&(two.address.clone(), "127.0.0.21".into())), "{second:?}");

    // An address that is not configured is refused by the CLI...
    let refused = cli_env(&rig, &["domain", "set", "egress-one.test", "--source-ip", "127.0.0.99"], &sources);
    let error = String::from_utf8_lossy(&refused.stderr);
    assert!(!refused.status.success() && error.contains("not one of the configured source addresses"), "{error}");
    // ...and one that was configured once but no longer is falls back to the automatic pick.
    open(&rig.db)
        .execute("UPDATE domains SET source_ip = '127.0.0.99' WHERE name = 'egress-one.test'", [])
        .expect("stale assignment");
    let to = "stale@dest.test";
    let ids = queue_mail(&rig, one, &[to], &message(one, to, "Stale egress"));
    let done = wait_row(&rig, ids[0], "delivered", |r| r.status == "delivered");
    assert_eq!(done.attempts, 1);
    server.wait_for(5, WAIT);
    let (_, stale_peer) = peers_by_sender(&server).pop().expect("the stale message");
    assert!(["127.0.0.21", "127.0.0.22"].contains(&stale_peer.as_str()), "automatic pick: {stale_peer}");
    assert!(wait_output(&rig, "not in delivery.source_ips"), "a warning about the stale address");

    // The domain page: a select of the configured addresses, CSRF form, inline error, audit.
    let browser = rig.appliance.browser();
    let login = browser.get("/login").await;
    let signed_in = browser
        .post_form("/login", &login.body, &[("email", "admin@grove.test"), ("password", common::PASSWORD)])
        .await;
    assert_eq!(signed_in.status, 200, "{}", signed_in.body);
    let domain_id: i64 = open(&rig.db)
        .query_row("SELECT id FROM domains WHERE name = 'egress-two.test'", [], |r| r.get(0))
        .expect("domain id");
    let page_url = format!("/w/{}/domains/{domain_id}", two.workspace_id);
    let page = browser.get(&page_url).await;
    assert_eq!(common::select_attr(&page.body, "#source-ip option", "value"), ["auto", "127.0.0.21", "127.0.0.22"]);
    assert_eq!(common::select_attr(&page.body, "#source-ip option[selected]", "value"), ["127.0.0.21"]);
    let form_url = format!("{page_url}/source-ip");
    let without_csrf = browser.post_raw(&form_url, &[("source_ip", "auto")]).await;
    assert_eq!(without_csrf.status, 403, "no CSRF, no change");
    let bad = browser.post_form(&form_url, &page.body, &[("source_ip", "127.0.0.99")]).await;
    assert_eq!(bad.status, 422, "{}", bad.body);
    let shown = common::select_text(&bad.body, "#source-ip-error");
    assert!(shown.iter().any(|e| e.contains("not one of the configured")), "{shown:?}");
    let saved = browser.post_form(&form_url, &page.body, &[("source_ip", "auto")]).await;
    assert_eq!(saved.status, 200, "{}", saved.body);
    assert!(common::select_text(&saved.body, "#source-ip-current")[0].contains("automatically"), "{}", saved.body);
    let stored: Option<String> = open(&rig.db)
        .query_row("SELECT source_ip FROM domains WHERE id = ?1", [domain_id], |r| r.get(0))
        .expect("source_ip");
    assert_eq!(stored, None);
    let audited: Vec<String> = open(&rig.db)
        .prepare(
            "SELECT detail FROM audit_log WHERE action = 'domain.source_ip' AND target = 'egress-two.test' ORDER BY id",
        )
        .unwrap()
        .query_map([], |r| r.get(0))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    assert_eq!(audited.last().map(String::as_str), Some("egress address automatic"), "{audited:?}");
}

/// An 8-bit message (UTF-8 body, declared as such).
fn eight_bit_message(sender: &Sender, to: &str, subject: &str) -> Vec<u8> {
    String::from_utf8(message(sender, to, subject))
        .unwrap()
        .replace("charset=us-ascii", "charset=utf-8\r\nContent-Transfer-Encoding: 8bit")
        .replace("Hello from", "Grüße aus")
        .into_bytes()
}

/// Submits one message to one recipient with smtplib; returns its queue row.
fn queue_one(rig: &Rig, sender: &Sender, to: &str, raw: &[u8]) -> i64 {
    let ids = queue_smtplib(rig, sender, &[to], raw);
    assert_eq!(ids.len(), 1, "one row for {to}");
    ids[0]
}

#[test]
fn a_server_that_refuses_ehlo_gets_helo_and_seven_bit_mail_only() {
    if !(Dns::available() && ScriptedSmtp::available()) {
        return;
    }
    let port = shared_port(&["127.0.0.6"]);
    let dns = Dns::start(&[Zone::new("old.test", &["@ MX 10 mx.old.test.", "mx A 127.0.0.6"])]);
    let options = SmtpOptions { refuse_ehlo: true, ..SmtpOptions::default() };
    let server = ScriptedSmtp::start_with("127.0.0.6", port, &[], &options);
    let rig = start_rig(&dns, port, &[("grove-ed.test", DkimAlgorithm::Ed25519)]);
    let sender = &rig.senders[0];

    let plain = queue_one(&rig, sender, "seven@old.test", &message(sender, "seven@old.test", "Seven bits"));
    let done = wait_row(&rig, plain, "delivered", |r| r.status == "delivered");
    assert_eq!(done.attempts, 1, "{done:?}");
    server.wait_for(1, WAIT);
    let meta = &server.metas()[0];
    assert!(!meta.esmtp && meta.mail_options.is_empty(), "HELO, no parameters: {meta:?}");

    let raw = eight_bit_message(sender, "eight@old.test", "Eight bits");
    let eight = queue_one(&rig, sender, "eight@old.test", &raw);
    let bounced = wait_row(&rig, eight, "bounced", |r| r.status == "bounced");
    assert_eq!((bounced.attempts, bounced.last_status.as_str()), (1, "5.6.3"), "{bounced:?}");
    assert!(bounced.last_reply.contains("8BITMIME"), "{bounced:?}");
    assert_eq!(server.messages().len(), 1, "the 8-bit message was not sent");
}

#[test]
fn mail_from_parameters_follow_the_servers_extensions() {
    if !(Dns::available() && ScriptedSmtp::available() && PostfixMx::available()) {
        return;
    }
    let port = shared_port(&["127.0.0.7", "127.0.0.8", "127.0.0.2"]);
    let dns = Dns::start(&[
        Zone::new("sized.test", &["@ MX 10 mx.sized.test.", "mx A 127.0.0.7"]),
        Zone::new("ascii.test", &["@ MX 10 mx.ascii.test.", "mx A 127.0.0.8"]),
        Zone::new("dest.test", &["@ MX 10 mx.dest.test.", "mx A 127.0.0.2"]),
    ]);
    let sized =
        ScriptedSmtp::start_with("127.0.0.7", port, &[], &SmtpOptions { size: Some(20_000), ..SmtpOptions::default() });
    let ascii_only =
        ScriptedSmtp::start_with("127.0.0.8", port, &[], &SmtpOptions { no_smtputf8: true, ..SmtpOptions::default() });
    // Postfix logs the SMTP dialogue of these peers, so the test sees the MAIL FROM it got.
    let mx = PostfixMx::start_with("127.0.0.2", port, &["dest.test"], &["debug_peer_list = 127.0.0.0/8".into()]);
    let rig = start_rig(&dns, port, &[("grove-ed.test", DkimAlgorithm::Ed25519)]);
    let sender = &rig.senders[0];

    // SIZE and BODY=8BITMIME, then SMTPUTF8 for a UTF-8 recipient.
    let raw = eight_bit_message(sender, "eight@sized.test", "Sized");
    let id = queue_one(&rig, sender, "eight@sized.test", &raw);
    wait_row(&rig, id, "delivered", |r| r.status == "delivered");
    let utf8 = queue_one(&rig, sender, "jürgen@sized.test", &message(sender, "jürgen@sized.test", "UTF-8"));
    wait_row(&rig, utf8, "delivered", |r| r.status == "delivered");
    server_options(&sized, 2, &[&["SIZE=", "BODY=8BITMIME"], &["SIZE=", "SMTPUTF8"]]);
    assert_eq!(sized.envelopes()[1].rcpt_to, ["jürgen@sized.test"]);

    // Over the advertised limit: bounced at once, nothing sent.
    let mut big = message(sender, "big@sized.test", "Too big");
    for _ in 0..400 {
        big.extend(std::iter::repeat_n(b'x', 75));
        big.extend_from_slice(b"\r\n");
    }
    let too_big = queue_one(&rig, sender, "big@sized.test", &big);
    let bounced = wait_row(&rig, too_big, "bounced", |r| r.status == "bounced");
    assert_eq!((bounced.attempts, bounced.last_status.as_str()), (1, "5.3.4"), "{bounced:?}");
    assert_eq!(sized.messages().len(), 2);

    // No SMTPUTF8: a UTF-8 recipient bounces 5.6.7, an ASCII one of the same message is sent.
    let to = ["jürgen@ascii.test", "plain@ascii.test"];
    let rows = queue_smtplib(&rig, sender, &to, &message(sender, "plain@ascii.test", "Mixed"));
    let utf8_row = wait_row(&rig, rows[0], "bounced", |r| r.status == "bounced");
    assert_eq!(utf8_row.last_status, "5.6.7", "{utf8_row:?}");
    wait_row(&rig, rows[1], "delivered", |r| r.status == "delivered");
    assert_eq!(ascii_only.envelopes()[0].rcpt_to, ["plain@ascii.test"]);

    // Postfix takes an 8-bit message sent with SIZE and BODY=8BITMIME.
    let raw = eight_bit_message(sender, "user@dest.test", "Eight bits to Postfix");
    let id = queue_one(&rig, sender, "user@dest.test", &raw);
    let done = wait_row(&rig, id, "delivered", |r| r.status == "delivered");
    assert_eq!(done.last_code, Some(250));
    let arrived = mx.wait_for(1, WAIT);
    assert!(String::from_utf8_lossy(&arrived[0]).contains("Grüße aus"), "8-bit body intact");
    let log = mx.log();
    let mail_from = format!("MAIL FROM:<{}>", sender.address);
    let sent = log.lines().find(|line| line.contains(&mail_from)).unwrap_or_else(|| panic!("no {mail_from}:\n{log}"));
    assert!(sent.contains(" SIZE=") && sent.contains(" BODY=8BITMIME"), "what Postfix received: {sent}");
}

/// Asserts the MAIL FROM parameters of the first `n` transactions `server` accepted contain
/// the expected prefixes.
fn server_options(server: &ScriptedSmtp, n: usize, expected: &[&[&str]]) {
    server.wait_for(n, WAIT);
    let metas = server.metas();
    for (meta, wanted) in metas.iter().zip(expected) {
        for prefix in *wanted {
            assert!(meta.mail_options.iter().any(|o| o.starts_with(prefix)), "{prefix} missing: {meta:?}");
        }
    }
}
