//! The appliance as the MX of its own domain, for end-to-end tests of mail that comes in (from
//! outside through the inbound port, or from another own mailbox through submission): one
//! domain (`grove.test`) with two mailboxes, Knot as its resolver when given, and helpers to
//! submit with swaks, send raw mail, read folders, events, queue rows and suppressions. A Postfix
//! MX for `dest.test` on 127.0.0.2 can route mail for the domain back to the inbound port.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use rusqlite::{Connection, OptionalExtension};

use super::peers::{Dns, PostfixMx, Zone, free_port};
use super::{Appliance, cli};

pub const DOMAIN: &str = "grove.test";
pub const WAIT: Duration = Duration::from_secs(30);
/// The size limit the appliance runs with here, so the oversize test stays small.
pub const MAX_MESSAGE_SIZE: usize = 200_000;

/// The appliance with one domain and two mailboxes.
pub struct Rig {
    pub appliance: Appliance,
    pub db: PathBuf,
    /// (address, password, mailbox id), in creation order.
    pub mailboxes: Vec<(String, String, i64)>,
}

/// One stored message as the tests read it.
#[derive(Debug, Clone)]
pub struct Stored {
    pub body: String,
    pub classification: String,
    pub answers_message: Option<i64>,
    pub thread_id: Option<i64>,
}

impl Rig {
    /// Sets up the data dir with the CLI, publishes the domain's records in `dns` (when given)
    /// and starts the appliance, its resolver pointed at `dns` (or at a port where nobody answers).
    pub fn start(dns: Option<&Dns>, mx_port: Option<u16>) -> Rig {
        Rig::start_with(dns, mx_port, &[])
    }

    /// [`Rig::start`] with more environment (config keys) for the appliance.
    pub fn start_with(dns: Option<&Dns>, mx_port: Option<u16>, extra_env: &[(&str, &str)]) -> Rig {
        let dir = tempfile::tempdir().expect("temp dir");
        let data = dir.path().join("data");
        run_cli(&data, &["admin", "create", "--email", "admin@grove.test"], Some(super::PASSWORD));
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
        let mut env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        env.extend_from_slice(extra_env);
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

    pub fn address(&self, index: usize) -> &str {
        &self.mailboxes[index].0
    }

    pub fn mailbox_id(&self, index: usize) -> i64 {
        self.mailboxes[index].2
    }

    /// The inbound listener: the harness gives each appliance its own loopback address.
    pub fn inbound(&self) -> String {
        format!("{}:2525", self.appliance.mail_ip)
    }

    /// The messages in a mailbox's folder, oldest first.
    pub fn folder(&self, mailbox_id: i64, folder: &str) -> Vec<Stored> {
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
    pub fn wait_for_mail(&self, mailbox_id: i64, folder: &str, n: usize) -> Vec<Stored> {
        wait_until(&format!("{n} messages in mailbox {mailbox_id}'s {folder}"), || {
            let stored = self.folder(mailbox_id, folder);
            (stored.len() >= n).then_some(stored)
        })
    }

    /// (kind, recipient, queue_id, detail) of the events of `kind`, oldest first.
    pub fn events(&self, kind: &str) -> Vec<(String, Option<i64>, String)> {
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
    pub fn row_events(&self, id: i64) -> Vec<(String, String)> {
        let conn = open(&self.db);
        let mut stmt = conn.prepare("SELECT kind, detail FROM events WHERE queue_id = ?1 ORDER BY id").expect("select");
        stmt.query_map([id], |r| Ok((r.get(0)?, r.get(1)?))).expect("query").collect::<Result<_, _>>().expect("rows")
    }

    pub fn suppression(&self, address: &str) -> Option<String> {
        open(&self.db)
            .query_row("SELECT reason FROM suppressions WHERE address = ?1", [address], |r| r.get(0))
            .optional()
            .expect("suppressions")
    }

    /// Submits a message from mailbox `index` to `to` through the submission port (swaks, STARTTLS,
    /// AUTH) and returns its queue row id and Message-ID once the row is `delivered` (or already
    /// `bounced`: a DSN may come back before the test looks).
    pub fn submit_and_deliver(&self, index: usize, to: &str, subject: &str) -> (i64, String) {
        let body = format!("Hello {to},\r\n\r\na short note from {DOMAIN}.\r\n\r\nAnn\r\n");
        let raw = format!("From: <{}>\r\nTo: <{to}>\r\nSubject: {subject}\r\n\r\n{body}", self.address(index));
        let (id, message_id) = self.submit(index, to, &raw);
        wait_until(&format!("queue row {id} delivered"), || {
            Some(self.queue_row(id)).filter(|row| row.0 == "delivered" || row.0 == "bounced")
        });
        (id, message_id)
    }

    /// Submits `raw` from mailbox `index` to `to` (swaks, STARTTLS, AUTH); returns the queue row of
    /// `to` and the message's Message-ID.
    pub fn submit(&self, index: usize, to: &str, raw: &str) -> (i64, String) {
        let (from, password, _) = &self.mailboxes[index];
        let output = submit_raw(&self.appliance.smtp_submission, (from, password), to, raw);
        assert!(output.0, "submission failed:\n{}", output.1);
        open(&self.db)
            .query_row(
                "SELECT q.id, m.message_id FROM queue q JOIN messages m ON m.id = q.message_id \
                 WHERE q.recipient = ?1 ORDER BY q.id DESC LIMIT 1",
                [to],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .expect("a queue row for the submitted message")
    }

    pub fn queue_row(&self, id: i64) -> (String, Option<String>) {
        open(&self.db)
            .query_row("SELECT status, bounce_class FROM queue WHERE id = ?1", [id], |r| Ok((r.get(0)?, r.get(1)?)))
            .expect("queue row")
    }

    pub fn wait_for_status(&self, id: i64, status: &str) -> (String, Option<String>) {
        wait_until(&format!("queue row {id} {status}"), || Some(self.queue_row(id)).filter(|row| row.0 == status))
    }

    pub fn messages_row(&self, message_id: &str) -> i64 {
        open(&self.db)
            .query_row("SELECT id FROM messages WHERE message_id = ?1", [message_id], |r| r.get(0))
            .expect("the sent message")
    }
}

pub fn run_cli(data: &Path, args: &[&str], stdin: Option<&str>) -> String {
    let output = cli(data, args, stdin);
    assert!(output.status.success(), "{args:?}: {}", String::from_utf8_lossy(&output.stderr));
    String::from_utf8(output.stdout).expect("utf-8 output")
}

/// The record lines of `inboxgrove domain records grove.test --zone`.
pub fn zone_records(data: &Path) -> Vec<String> {
    run_cli(data, &["domain", "records", DOMAIN, "--zone"], None)
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with(';') && !l.starts_with('$'))
        .map(str::to_string)
        .collect()
}

pub fn open(db: &Path) -> Connection {
    let conn = Connection::open(db).expect("open the appliance's database");
    conn.busy_timeout(Duration::from_secs(10)).expect("busy timeout");
    conn
}

/// Polls every 100 ms until `check` gives a value; panics after [`WAIT`].
pub fn wait_until<T>(what: &str, mut check: impl FnMut() -> Option<T>) -> T {
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
pub fn swaks(args: &[&str]) -> (bool, String) {
    let output = Command::new("swaks").args(args).args(["--timeout", "20"]).output().expect("run swaks");
    let text = format!("{}{}", String::from_utf8_lossy(&output.stdout), String::from_utf8_lossy(&output.stderr));
    (output.status.success(), text)
}

/// Speaks SMTP line by line: the greeting, then each command's (possibly multi-line) reply.
pub fn dialogue(server: &str, commands: &[&str]) -> Vec<String> {
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

/// Submits `raw` as the mailbox `(address, password)` to `to` through the submission port at
/// `server` (swaks, STARTTLS, AUTH PLAIN); returns (succeeded, the transcript).
pub fn submit_raw(server: &str, (from, password): (&str, &str), to: &str, raw: &str) -> (bool, String) {
    let file = tempfile::NamedTempFile::new().expect("message file");
    std::fs::write(file.path(), raw).expect("write message");
    let path = file.path().to_string_lossy().into_owned();
    let auth = ["--tls", "--auth", "PLAIN", "--auth-user", from, "--auth-password", password];
    swaks(&[&["--server", server], &auth[..], &["--from", from, "--to", to, "--data", &path]].concat())
}

/// Sends a raw message (CRLF line ends) with swaks to `server`.
pub fn send_raw(server: &str, from: &str, to: &str, raw: &str) -> (bool, String) {
    let file = tempfile::NamedTempFile::new().expect("message file");
    std::fs::write(file.path(), raw.replace("\r\n", "\n").replace('\n', "\r\n")).expect("write message");
    let path = file.path().to_string_lossy().into_owned();
    swaks(&["--server", server, "--from", from, "--to", to, "--data", &path])
}

/// The header field values named `name` (unfolded), in order.
pub fn header_values(raw: &str, name: &str) -> Vec<String> {
    let header = raw.split("\r\n\r\n").next().unwrap_or_default().replace("\r\n\t", " ").replace("\r\n ", " ");
    header
        .split("\r\n")
        .filter_map(|line| line.split_once(':'))
        .filter(|(field, _)| field.eq_ignore_ascii_case(name))
        .map(|(_, value)| value.trim().to_string())
        .collect()
}

/// The appliance with Knot as its resolver and a Postfix MX for `dest.test` on 127.0.0.2, which
/// routes mail for [`DOMAIN`] back to the appliance's MX and fails the `bouncing` domains itself
/// with their reply (see [`routing`]); `None` (the test is skipped) when a peer is missing.
pub fn postfix_rig(bouncing: &[(&str, &str)]) -> Option<(Dns, PostfixMx, Rig)> {
    if !(super::have_peer("swaks") && Dns::available() && PostfixMx::available()) {
        return None;
    }
    let dns = Dns::start(&base_zones());
    let port = free_port("127.0.0.2");
    let rig = Rig::start(Some(&dns), Some(port));
    let mx = PostfixMx::start_with("127.0.0.2", port, &["dest.test"], &routing(&rig.inbound(), &[DOMAIN], bouncing));
    Some((dns, mx, rig))
}

/// Postfix settings that route `local` domains to the appliance's inbound port and make the
/// `bouncing` domains fail in Postfix's error(8) transport with their reply after accepting the
/// mail (so Postfix itself writes the DSN).
pub fn routing(inbound: &str, local: &[&str], bouncing: &[(&str, &str)]) -> Vec<String> {
    let entries: Vec<String> = local
        .iter()
        .map(|domain| format!("{{ {domain} = smtp:[{}]:{} }}", inbound_ip(inbound), inbound_port(inbound)))
        .chain(bouncing.iter().map(|(domain, reply)| format!("{{ {domain} = error:{reply} }}")))
        .collect();
    // Accept mail for the error transport's domains, so it fails after the queue (a DSN).
    vec![format!("transport_maps = inline:{{ {} }}", entries.join(", ")), "smtpd_reject_unlisted_recipient = no".into()]
}

pub fn inbound_ip(inbound: &str) -> &str {
    inbound.rsplit_once(':').map_or(inbound, |(ip, _)| ip)
}

pub fn inbound_port(inbound: &str) -> &str {
    inbound.rsplit_once(':').map_or("25", |(_, port)| port)
}

/// Zones every DNS test serves: `test` (so DMARC's walk up the tree gets NXDOMAIN, not REFUSED)
/// and the destination domains, whose MX is the Postfix peer on 127.0.0.2.
pub fn base_zones() -> Vec<Zone> {
    vec![
        Zone::new("test", &[]),
        Zone::new("dest.test", &["@ MX 10 mx.dest.test.", "mx A 127.0.0.2", "@ TXT \"v=spf1 -all\""]),
        Zone::new("gone.test", &["@ MX 10 mx.gone.test.", "mx A 127.0.0.2"]),
        Zone::new("listed.test", &["@ MX 10 mx.listed.test.", "mx A 127.0.0.2"]),
        Zone::new(
            "strict.test",
            &["@ TXT \"v=spf1 -all\"", "_dmarc TXT \"v=DMARC1; p=reject; rua=mailto:d@strict.test\""],
        ),
        Zone::new("quarantine.test", &["@ TXT \"v=spf1 -all\"", "_dmarc TXT \"v=DMARC1; p=quarantine\""]),
        Zone::new(
            "partner.test",
            &["@ TXT \"v=spf1 ip4:127.0.0.1 -all\"", "_dmarc TXT \"v=DMARC1; p=reject; aspf=s\""],
        ),
    ]
}

/// Signs in to the rig's appliance as its admin.
pub async fn sign_in(rig: &Rig) -> super::Browser {
    let browser = rig.appliance.browser();
    let form = browser.get("/login").await;
    let done =
        browser.post_form("/login", &form.body, &[("email", "admin@grove.test"), ("password", super::PASSWORD)]).await;
    assert_eq!(done.status, 200, "{}", done.body);
    browser
}
