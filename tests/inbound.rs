//! Inbound mail end to end: the real binary as the MX of its domains, driven by real peers.
//!
//! - swaks to the inbound port: a local mailbox (also `user+tag@` and `postmaster@`) gets 250 and
//!   the message is in its INBOX with `Authentication-Results` and `Received` headers; an unknown
//!   local user gets 550 5.1.1, another domain 554 5.7.1 (never a relay), an oversize message 552;
//!   EHLO offers STARTTLS and no AUTH, and AUTH is refused.
//! - DMARC through Knot: a failing message from a `p=reject` domain is refused with 550 5.7.1, one
//!   from a `p=quarantine` domain lands in Spam.
//! - DKIM: a message the appliance signed (submitted to an external address and captured at a
//!   Postfix MX) comes back through that Postfix, relayed to the inbound port, as `dkim=pass`
//!   and `dmarc=pass`; the same message with its body changed gets `dkim=fail`.
//! - Classification: a reply to a submitted message is linked to it (`reply`), an out-of-office
//!   answer is an `auto_reply`, a removal request suppresses the sender, an ARF report is a
//!   `complaint` with suppression, and a real Postfix DSN (its error transport refusing a
//!   recipient after accepting the message) turns the delivered queue row into a hard bounce.
//!
//! Postfix reaches the appliance through its transport table (`grove.test` → the inbound port):
//! it cannot ask the tests' DNS server, which listens on a port of its own.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use common::peers::{Dns, PostfixMx, Zone, free_port};
use common::{Appliance, cli};
use rusqlite::{Connection, OptionalExtension};

const DOMAIN: &str = "grove.test";
const WAIT: Duration = Duration::from_secs(30);
/// The size limit the appliance runs with here, so the oversize test stays small.
const MAX_MESSAGE_SIZE: usize = 200_000;

/// The appliance with one domain and two mailboxes.
struct Rig {
    appliance: Appliance,
    db: PathBuf,
    /// (address, password, mailbox id), in creation order.
    mailboxes: Vec<(String, String, i64)>,
}

/// One stored message as the tests read it.
#[derive(Debug, Clone)]
struct Stored {
    body: String,
    classification: String,
    answers_message: Option<i64>,
    thread_id: Option<i64>,
}

impl Rig {
    /// Sets up the data dir with the CLI, publishes the domain's records in `dns` (when given)
    /// and starts the appliance, its resolver pointed at `dns` (or at a port where nobody answers).
    fn start(dns: Option<&Dns>, mx_port: Option<u16>) -> Rig {
        let dir = tempfile::tempdir().expect("temp dir");
        let data = dir.path().join("data");
        run_cli(&data, &["admin", "create", "--email", "admin@grove.test"], Some(common::PASSWORD));
        run_cli(&data, &["domain", "add", DOMAIN], None);
        let created = run_cli(&data, &["mailbox", "create", "--domain", DOMAIN, "--count", "2"], None);
        if let Some(dns) = dns {
            dns.set_zone(&Zone { name: DOMAIN.into(), records: zone_records(&data) });
        }
        let nameserver = match dns {
            Some(dns) => dns.nameserver(),
            None => format!("127.0.0.1:{}", free_port("127.0.0.1")),
        };
        let env: Vec<(String, String)> = vec![
            ("INBOXGROVE_DNS__NAMESERVERS".into(), format!("[\"{nameserver}\"]")),
            ("INBOXGROVE_SMTP__MAX_MESSAGE_SIZE".into(), MAX_MESSAGE_SIZE.to_string()),
            ("INBOXGROVE_DELIVERY__MX_PORT".into(), mx_port.unwrap_or(25).to_string()),
            ("INBOXGROVE_DELIVERY__TIMEOUT".into(), "10s".into()),
        ];
        let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        let appliance = Appliance::start_with(dir, &env);
        let db = appliance.data_dir().join("inboxgrove.db");
        let conn = open(&db);
        let mailboxes = created
            .lines()
            .skip(1)
            .map(|line| {
                let (address, password) = line.split_once(',').expect("email,password");
                let id = conn
                    .query_row("SELECT id FROM mailboxes WHERE address = ?1", [address], |r| r.get(0))
                    .expect("the mailbox row");
                (address.to_string(), password.trim().to_string(), id)
            })
            .collect::<Vec<_>>();
        assert_eq!(mailboxes.len(), 2, "{created}");
        Rig { appliance, db, mailboxes }
    }

    fn address(&self, index: usize) -> &str {
        &self.mailboxes[index].0
    }

    fn mailbox_id(&self, index: usize) -> i64 {
        self.mailboxes[index].2
    }

    /// The inbound listener: the harness gives each appliance its own loopback address.
    fn inbound(&self) -> String {
        format!("{}:2525", self.appliance.mail_ip)
    }

    /// The messages in a mailbox's folder, oldest first.
    fn folder(&self, mailbox_id: i64, folder: &str) -> Vec<Stored> {
        let conn = open(&self.db);
        let mut stmt = conn
            .prepare(
                "SELECT m.body, m.classification, m.answers_message, m.thread_id FROM mail m \
                 JOIN folders f ON f.id = m.folder_id WHERE f.mailbox_id = ?1 AND f.name = ?2 ORDER BY m.id",
            )
            .expect("select mail");
        stmt.query_map((mailbox_id, folder), |r| {
            Ok(Stored {
                body: String::from_utf8_lossy(&r.get::<_, Vec<u8>>(0)?).into_owned(),
                classification: r.get(1)?,
                answers_message: r.get(2)?,
                thread_id: r.get(3)?,
            })
        })
        .expect("query mail")
        .collect::<Result<_, _>>()
        .expect("mail rows")
    }

    /// Polls (bounded) until the folder holds `n` messages; returns them.
    fn wait_for_mail(&self, mailbox_id: i64, folder: &str, n: usize) -> Vec<Stored> {
        wait_until(&format!("{n} messages in mailbox {mailbox_id}'s {folder}"), || {
            let stored = self.folder(mailbox_id, folder);
            (stored.len() >= n).then_some(stored)
        })
    }

    /// (kind, recipient, queue_id, detail) of the events of `kind`, oldest first.
    fn events(&self, kind: &str) -> Vec<(String, Option<i64>, String)> {
        let conn = open(&self.db);
        let mut stmt = conn
            .prepare("SELECT recipient, queue_id, detail FROM events WHERE kind = ?1 ORDER BY id")
            .expect("select events");
        stmt.query_map([kind], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
            .expect("query events")
            .collect::<Result<_, _>>()
            .expect("event rows")
    }

    /// (kind, detail) of a queue row's events.
    fn row_events(&self, id: i64) -> Vec<(String, String)> {
        let conn = open(&self.db);
        let mut stmt = conn.prepare("SELECT kind, detail FROM events WHERE queue_id = ?1 ORDER BY id").expect("select");
        stmt.query_map([id], |r| Ok((r.get(0)?, r.get(1)?))).expect("query").collect::<Result<_, _>>().expect("rows")
    }

    fn suppression(&self, address: &str) -> Option<String> {
        open(&self.db)
            .query_row("SELECT reason FROM suppressions WHERE address = ?1", [address], |r| r.get(0))
            .optional()
            .expect("suppressions")
    }

    /// Submits a message from mailbox `index` to `to` through the submission port (swaks, STARTTLS,
    /// AUTH) and returns its queue row id and Message-ID once the row is `delivered` (or already
    /// `bounced`: a DSN may come back before the test looks).
    fn submit_and_deliver(&self, index: usize, to: &str, subject: &str) -> (i64, String) {
        let (from, password, _) = &self.mailboxes[index];
        let body = format!("Hello {to},\r\n\r\na short note from {DOMAIN}.\r\n\r\nAnn\r\n");
        let output = swaks(&[
            "--server",
            &self.appliance.smtp_submission,
            "--tls",
            "--auth",
            "PLAIN",
            "--auth-user",
            from,
            "--auth-password",
            password,
            "--from",
            from,
            "--to",
            to,
            "--header",
            &format!("Subject: {subject}"),
            "--body",
            &body,
        ]);
        assert!(output.0, "submission failed:\n{}", output.1);
        let (id, message_id): (i64, String) = open(&self.db)
            .query_row(
                "SELECT q.id, m.message_id FROM queue q JOIN messages m ON m.id = q.message_id \
                 WHERE q.recipient = ?1 ORDER BY q.id DESC LIMIT 1",
                [to],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .expect("a queue row for the submitted message");
        wait_until(&format!("queue row {id} delivered"), || {
            Some(self.queue_row(id)).filter(|row| row.0 == "delivered" || row.0 == "bounced")
        });
        (id, message_id)
    }

    fn queue_row(&self, id: i64) -> (String, Option<String>) {
        open(&self.db)
            .query_row("SELECT status, bounce_class FROM queue WHERE id = ?1", [id], |r| Ok((r.get(0)?, r.get(1)?)))
            .expect("queue row")
    }

    fn wait_for_status(&self, id: i64, status: &str) -> (String, Option<String>) {
        wait_until(&format!("queue row {id} {status}"), || Some(self.queue_row(id)).filter(|row| row.0 == status))
    }

    fn messages_row(&self, message_id: &str) -> i64 {
        open(&self.db)
            .query_row("SELECT id FROM messages WHERE message_id = ?1", [message_id], |r| r.get(0))
            .expect("the sent message")
    }
}

fn run_cli(data: &Path, args: &[&str], stdin: Option<&str>) -> String {
    let output = cli(data, args, stdin);
    assert!(output.status.success(), "{args:?}: {}", String::from_utf8_lossy(&output.stderr));
    String::from_utf8(output.stdout).expect("utf-8 output")
}

/// The record lines of `inboxgrove domain records grove.test --zone`.
fn zone_records(data: &Path) -> Vec<String> {
    run_cli(data, &["domain", "records", DOMAIN, "--zone"], None)
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with(';') && !l.starts_with('$'))
        .map(str::to_string)
        .collect()
}

fn open(db: &Path) -> Connection {
    let conn = Connection::open(db).expect("open the appliance's database");
    conn.busy_timeout(Duration::from_secs(10)).expect("busy timeout");
    conn
}

/// Polls every 100 ms until `check` gives a value; panics after [`WAIT`].
fn wait_until<T>(what: &str, mut check: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + WAIT;
    loop {
        if let Some(value) = check() {
            return value;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Runs swaks; returns (succeeded, its whole transcript).
fn swaks(args: &[&str]) -> (bool, String) {
    let output = Command::new("swaks").args(args).args(["--timeout", "20"]).output().expect("run swaks");
    let text = format!("{}{}", String::from_utf8_lossy(&output.stdout), String::from_utf8_lossy(&output.stderr));
    (output.status.success(), text)
}

/// Speaks SMTP line by line: the greeting, then each command's (possibly multi-line) reply.
fn dialogue(server: &str, commands: &[&str]) -> Vec<String> {
    use std::io::{BufRead, BufReader, Write};
    let stream = std::net::TcpStream::connect(server).expect("connect to the inbound port");
    stream.set_read_timeout(Some(WAIT)).expect("read timeout");
    let mut reader = BufReader::new(stream.try_clone().expect("clone stream"));
    let mut read_reply = || {
        let mut reply = String::new();
        loop {
            let mut line = String::new();
            reader.read_line(&mut line).expect("read a reply line");
            reply.push_str(&line);
            if line.len() < 4 || line.as_bytes()[3] != b'-' {
                return reply;
            }
        }
    };
    let mut replies = vec![read_reply()];
    let mut writer = stream;
    for command in commands {
        writer.write_all(format!("{command}\r\n").as_bytes()).expect("send a command");
        replies.push(read_reply());
    }
    replies
}

/// Sends a raw message (CRLF line ends) with swaks to `server`.
fn send_raw(server: &str, from: &str, to: &str, raw: &str) -> (bool, String) {
    let file = tempfile::NamedTempFile::new().expect("message file");
    std::fs::write(file.path(), raw.replace("\r\n", "\n").replace('\n', "\r\n")).expect("write message");
    let path = file.path().to_string_lossy().into_owned();
    swaks(&["--server", server, "--from", from, "--to", to, "--data", &path])
}

/// The header field values named `name` (unfolded), in order.
fn header_values(raw: &str, name: &str) -> Vec<String> {
    let header = raw.split("\r\n\r\n").next().unwrap_or_default().replace("\r\n\t", " ").replace("\r\n ", " ");
    header
        .split("\r\n")
        .filter_map(|line| line.split_once(':'))
        .filter(|(field, _)| field.eq_ignore_ascii_case(name))
        .map(|(_, value)| value.trim().to_string())
        .collect()
}

/// Routes `local` domains from the Postfix peer to the appliance's inbound port and makes
/// `bouncing` domains fail in Postfix's error(8) transport after accepting the mail (so Postfix
/// itself writes the DSN).
/// PostfixMx keeps its config in `<dir>/conf` beside `<dir>/mail/catchall`; the master re-reads
/// it on SIGHUP.
fn route_through_postfix(mx: &PostfixMx, inbound: &str, local: &[&str], bouncing: &[&str]) {
    let dir = mx.maildir.parent().and_then(Path::parent).expect("the PostfixMx directory");
    let conf = dir.join("conf");
    let entries: Vec<String> = local
        .iter()
        .map(|domain| format!("{{ {domain} = smtp:[{}]:{} }}", inbound_ip(inbound), inbound_port(inbound)))
        .chain(bouncing.iter().map(|domain| format!("{{ {domain} = error:5.1.1 mailbox unavailable }}")))
        .collect();
    let transport = format!("transport_maps = inline:{{ {} }}", entries.join(", "));
    // Accept mail for the error transport's domains, so it fails after the queue (a DSN).
    let unlisted = "smtpd_reject_unlisted_recipient = no";
    let status =
        Command::new("postconf").arg("-c").arg(&conf).args(["-e", &transport, unlisted]).status().expect("postconf");
    assert!(status.success(), "postconf -e {transport} {unlisted}");
    let main_cf = conf.join("main.cf");
    let past = std::time::SystemTime::now() - Duration::from_secs(60);
    std::fs::File::options().write(true).open(&main_cf).and_then(|f| f.set_modified(past)).expect("date main.cf");
    let pid = std::fs::read_to_string(dir.join("queue/pid/master.pid")).expect("master.pid");
    let status = Command::new("kill").args(["-HUP", pid.trim()]).status().expect("kill -HUP");
    assert!(status.success(), "reload Postfix");
    // The master restarts its services with the new table; give them a moment.
    std::thread::sleep(Duration::from_secs(2));
}

fn inbound_ip(inbound: &str) -> &str {
    inbound.rsplit_once(':').map_or(inbound, |(ip, _)| ip)
}

fn inbound_port(inbound: &str) -> &str {
    inbound.rsplit_once(':').map_or("25", |(_, port)| port)
}

/// Zones every DNS test serves: `test` (so DMARC's walk up the tree gets NXDOMAIN, not REFUSED)
/// and the destination domains, whose MX is the Postfix peer on 127.0.0.2.
fn base_zones() -> Vec<Zone> {
    vec![
        Zone::new("test", &[]),
        Zone::new("dest.test", &["@ MX 10 mx.dest.test.", "mx A 127.0.0.2", "@ TXT \"v=spf1 -all\""]),
        Zone::new("gone.test", &["@ MX 10 mx.gone.test.", "mx A 127.0.0.2"]),
        Zone::new(
            "strict.test",
            &["@ TXT \"v=spf1 -all\"", "_dmarc TXT \"v=DMARC1; p=reject; rua=mailto:d@strict.test\""],
        ),
        Zone::new("quarantine.test", &["@ TXT \"v=spf1 -all\"", "_dmarc TXT \"v=DMARC1; p=quarantine\""]),
    ]
}

#[test]
fn the_mx_accepts_mail_for_local_mailboxes_only() {
    // Knot answers at once for names it does not serve; a dead resolver would make every
    // SPF/DKIM/DMARC lookup wait for its timeout.
    if !(common::have_peer("swaks") && Dns::available()) {
        return;
    }
    let dns = Dns::start(&base_zones());
    let rig = Rig::start(Some(&dns), None);
    let inbound = rig.inbound();
    let (ann, first) = (rig.address(0).to_string(), rig.mailbox_id(0));

    let (ok, log) = swaks(&[
        "--server",
        &inbound,
        "--tls",
        "--from",
        "lead@example.net",
        "--to",
        &ann,
        "--header",
        "Subject: Hello there",
    ]);
    assert!(ok && log.contains("250 2.0.0 Message accepted"), "STARTTLS delivery to a mailbox:\n{log}");
    let inbox = rig.folder(first, "INBOX");
    assert_eq!(inbox.len(), 1, "the message is in the INBOX");
    let results = header_values(&inbox[0].body, "Authentication-Results");
    assert_eq!(results.len(), 1, "{}", inbox[0].body);
    assert!(results[0].starts_with("mail.grove.test; spf="), "{results:?}");
    assert!(results[0].contains("; dkim=none; dmarc="), "{results:?}");
    let received = header_values(&inbox[0].body, "Received");
    assert!(received[0].contains("by mail.grove.test (InboxGrove) with ESMTPS"), "{received:?}");
    assert!(inbox[0].body.contains("Subject: Hello there"));

    let replies = dialogue(&inbound, &["EHLO client.test", "AUTH PLAIN AGFubgBzZWNyZXQ=", "QUIT"]);
    assert!(
        replies[1].contains("STARTTLS") && !replies[1].contains("AUTH"),
        "EHLO offers STARTTLS, no AUTH: {replies:?}"
    );
    assert!(replies[2].starts_with("502 5.5.1"), "AUTH is refused: {replies:?}");

    let local_part = ann.split_once('@').expect("address").0;
    for to in [format!("{local_part}+campaign-7@{DOMAIN}"), format!("postmaster@{DOMAIN}")] {
        let (ok, log) = swaks(&["--server", &inbound, "--from", "lead@example.net", "--to", &to]);
        assert!(ok, "{to} is accepted:\n{log}");
    }
    let first_of_domain = rig.mailboxes.iter().map(|m| m.2).min().expect("mailboxes");
    assert_eq!(first_of_domain, first, "mailboxes are listed in creation order");
    assert_eq!(rig.folder(first, "INBOX").len(), 3, "plus-addressing and postmaster@ reach the first mailbox");

    let refusals = [
        (format!("nobody@{DOMAIN}"), "550 5.1.1"),
        ("someone@elsewhere.test".to_string(), "554 5.7.1"),
        (format!("someone@{DOMAIN}.evil.test"), "554 5.7.1"),
    ];
    for (to, code) in refusals {
        let (ok, log) = swaks(&["--server", &inbound, "--from", "lead@example.net", "--to", &to]);
        assert!(!ok && log.contains(&format!("<** {code}")), "{to} must get {code}:\n{log}");
    }

    let big = "x".repeat(100);
    let body = vec![big.as_str(); MAX_MESSAGE_SIZE / 100 + 100].join("\r\n");
    let (ok, log) = send_raw(&inbound, "lead@example.net", &ann, &format!("Subject: big\r\n\r\n{body}\r\n"));
    assert!(!ok && log.contains("<** 552 5.3.4"), "oversize must get 552:\n{}", &log[log.len().saturating_sub(2000)..]);
    assert_eq!(rig.folder(first, "INBOX").len(), 3, "nothing more was stored");
    assert!(rig.events("reply").is_empty(), "mail from strangers is stored, not counted as replies");
}

#[test]
fn dmarc_reject_is_refused_and_quarantine_goes_to_spam() {
    if !(common::have_peer("swaks") && Dns::available()) {
        return;
    }
    let dns = Dns::start(&base_zones());
    let rig = Rig::start(Some(&dns), None);
    let (ann, first) = (rig.address(0).to_string(), rig.mailbox_id(0));

    let (ok, log) = swaks(&["--server", &rig.inbound(), "--from", "ceo@strict.test", "--to", &ann]);
    assert!(!ok && log.contains("<** 550 5.7.1"), "p=reject failure must be refused:\n{log}");

    let (ok, log) = swaks(&["--server", &rig.inbound(), "--from", "ceo@quarantine.test", "--to", &ann]);
    assert!(ok, "p=quarantine failure is accepted:\n{log}");
    assert!(rig.folder(first, "INBOX").is_empty(), "nothing in the INBOX");
    let spam = rig.folder(first, "Spam");
    assert_eq!(spam.len(), 1, "filed to Spam");
    let results = header_values(&spam[0].body, "Authentication-Results").join(" ");
    for expected in ["spf=fail", "dmarc=fail", "header.from=quarantine.test", "policy.dmarc=quarantine"] {
        assert!(results.contains(expected), "missing {expected}: {results}");
    }
}

#[test]
fn appliance_signed_mail_verifies_through_postfix_and_a_forged_copy_fails() {
    if !(common::have_peer("swaks") && Dns::available() && PostfixMx::available()) {
        return;
    }
    let dns = Dns::start(&base_zones());
    let port = free_port("127.0.0.2");
    let mx = PostfixMx::start("127.0.0.2", port, &["dest.test"]);
    let rig = Rig::start(Some(&dns), Some(port));
    route_through_postfix(&mx, &rig.inbound(), &[DOMAIN], &[]);
    let (bob, second) = (rig.address(1).to_string(), rig.mailbox_id(1));

    rig.submit_and_deliver(0, "user@dest.test", "Signed for the round trip");
    let captured = mx.wait_for(1, WAIT);
    let signed = String::from_utf8_lossy(&captured[0]).replace("\r\n", "\n").replace('\n', "\r\n");
    assert!(signed.contains("DKIM-Signature:") && signed.contains("d=grove.test"), "signed:\n{signed}");

    // Back through Postfix, which relays it to the inbound port.
    let (ok, log) = send_raw(&format!("127.0.0.2:{port}"), "user@dest.test", &bob, &signed);
    assert!(ok, "Postfix accepts the message for {bob}:\n{log}");
    let inbox = rig.wait_for_mail(second, "INBOX", 1);
    let received = header_values(&inbox[0].body, "Received");
    assert!(
        received[0].starts_with("from mx.peer.test ") && received[1].contains("by mx.peer.test (Postfix)"),
        "{received:?}"
    );
    let results = header_values(&inbox[0].body, "Authentication-Results");
    assert_eq!(results.len(), 1, "exactly our Authentication-Results:\n{}", inbox[0].body);
    assert!(
        results[0].contains("dkim=pass") && results[0].contains("header.d=grove.test"),
        "{results:?}\n{mx_log}",
        mx_log = mx.log()
    );
    assert!(results[0].contains("dmarc=pass"), "{results:?}");

    let forged = signed.replacen("a short note from", "a LONG note from", 1);
    assert_ne!(forged, signed, "the body changed");
    let (ok, log) = send_raw(&rig.inbound(), "user@dest.test", &bob, &forged);
    assert!(ok, "{log}");
    let inbox = rig.folder(second, "INBOX");
    assert_eq!(inbox.len(), 2);
    let results = header_values(&inbox[1].body, "Authentication-Results").join(" ");
    assert!(results.contains("dkim=fail") && !results.contains("dkim=pass"), "{results}");
}

#[test]
fn replies_auto_replies_complaints_and_bounces_are_classified() {
    if !(common::have_peer("swaks") && Dns::available() && PostfixMx::available()) {
        return;
    }
    let dns = Dns::start(&base_zones());
    let port = free_port("127.0.0.2");
    let mx = PostfixMx::start("127.0.0.2", port, &["dest.test"]);
    let rig = Rig::start(Some(&dns), Some(port));
    route_through_postfix(&mx, &rig.inbound(), &[DOMAIN], &["gone.test"]);
    let inbound = rig.inbound();
    let (ann, first) = (rig.address(0).to_string(), rig.mailbox_id(0));

    // A reply, linked to the submitted message by In-Reply-To.
    let (lead_row, lead_id) = rig.submit_and_deliver(0, "lead@dest.test", "Quick question");
    let sent = rig.messages_row(&lead_id);
    let reply = format!(
        "From: Lead <lead@dest.test>\r\nTo: <{ann}>\r\nSubject: Re: Quick question\r\n\
         Message-ID: <reply-1@dest.test>\r\nIn-Reply-To: <{lead_id}>\r\nReferences: <{lead_id}>\r\n\r\n\
         Sounds interesting, call me on Tuesday.\r\n\r\nOn Mon, Ann <{ann}> wrote:\r\n> Hello\r\n"
    );
    assert!(send_raw(&inbound, "lead@dest.test", &ann, &reply).0);
    let inbox = rig.folder(first, "INBOX");
    let stored = inbox.last().expect("the reply");
    assert_eq!((stored.answers_message, stored.classification.as_str()), (Some(sent), "personal"));
    assert_eq!(rig.events("reply"), [("lead@dest.test".to_string(), Some(lead_row), "Re: Quick question".to_string())]);

    // An out-of-office answer.
    let away = format!(
        "From: Lead <lead@dest.test>\r\nTo: <{ann}>\r\nSubject: Automatic reply: Quick question\r\n\
         Auto-Submitted: auto-replied\r\nIn-Reply-To: <{lead_id}>\r\n\r\nI am out of the office until Monday.\r\n"
    );
    assert!(send_raw(&inbound, "lead@dest.test", &ann, &away).0);
    let stored = rig.folder(first, "INBOX").pop().expect("the auto-reply");
    assert_eq!(stored.classification, "auto_reply");
    assert_eq!(stored.thread_id, inbox.last().and_then(|reply| reply.thread_id), "same thread as the reply");
    assert_eq!(rig.events("auto_reply").len(), 1);
    assert_eq!(rig.events("reply").len(), 1, "an auto-reply is no reply");

    // A removal request.
    let (_, other_id) = rig.submit_and_deliver(0, "busy@dest.test", "Intro");
    let removal = format!(
        "From: <busy@dest.test>\r\nTo: <{ann}>\r\nSubject: Re: Intro\r\nIn-Reply-To: <{other_id}>\r\n\r\n\
         Please take me off your list.\r\n"
    );
    assert!(send_raw(&inbound, "busy@dest.test", &ann, &removal).0);
    assert_eq!(rig.events("unsubscribe_request").len(), 1);
    assert_eq!(rig.suppression("busy@dest.test").as_deref(), Some("reply"));

    // An ARF complaint about a delivered message, sent to abuse@.
    let (complained_row, complained_id) = rig.submit_and_deliver(0, "annoyed@dest.test", "Still interested?");
    let arf = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/arf/abuse.eml"))
        .expect("the ARF fixture")
        .replace("annoyed@example.net", "annoyed@dest.test")
        .replace("z9y8x7w6v5@mail.grove.test", &complained_id)
        .replace("ann@grove.test", &ann);
    assert!(send_raw(&inbound, "feedback@fbl.example.net", &format!("abuse@{DOMAIN}"), &arf).0);
    assert_eq!(
        rig.events("complaint").iter().map(|(to, row, _)| (to.as_str(), *row)).collect::<Vec<_>>(),
        [("annoyed@dest.test", Some(complained_row))]
    );
    assert_eq!(rig.suppression("annoyed@dest.test").as_deref(), Some("complaint"));

    // Postfix accepts mail for gone.test, then its error transport bounces it: a real Postfix DSN
    // comes back to the sending mailbox through the inbound port.
    let (lost_row, _) = rig.submit_and_deliver(0, "lost@gone.test", "Are you there?");
    let (status, class) = rig.wait_for_status(lost_row, "bounced");
    assert_eq!((status.as_str(), class.as_deref()), ("bounced", Some("hard")), "a late hard bounce");
    let bounces = rig.events("bounce");
    assert_eq!(
        bounces.len(),
        1,
        "{bounces:?}; queue row events: {:?}; Postfix log:\n{}",
        rig.row_events(lost_row),
        mx.log()
    );
    assert_eq!((bounces[0].0.as_str(), bounces[0].1), ("lost@gone.test", Some(lost_row)));
    assert!(bounces[0].2.starts_with("hard 5.1.1"), "{bounces:?}");
    assert_eq!(rig.suppression("lost@gone.test").as_deref(), Some("hard_bounce"));
    let dsn = rig.folder(first, "INBOX").pop().expect("the DSN");
    assert_eq!(dsn.classification, "dsn");
    assert!(dsn.body.contains("Undelivered Mail Returned to Sender"), "a Postfix DSN:\n{}", dsn.body);
    assert_eq!(rig.queue_row(lead_row).0, "delivered", "other rows are untouched");
}
