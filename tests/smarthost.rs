//! Delivery through relays (smarthosts), end to end: the real binary, mail submitted with swaks,
//! relays played by the scripted aiosmtpd server (implicit TLS or STARTTLS, AUTH), sending
//! domains published in Knot, a Postfix MX for direct delivery.
//!
//! - The global smarthost on port 465 is spoken to over implicit TLS (the default for 465): AUTH
//!   succeeds, the message arrives with its DKIM signature intact (dkimpy). A route whose
//!   password is wrong defers the message (4.7.8) with the relay's 535 reply recorded, and the
//!   relay gets nothing.
//! - A workspace route and a domain route send each workspace's / domain's mail to its own relay
//!   (the domain route winning inside the routed workspace), while other mail goes directly to
//!   the Postfix MX.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use common::peers::{Dns, PostfixMx, ScriptedSmtp, SmtpOptions, Zone, dkim_available, dkim_verify, free_port};
use common::{Appliance, cli, free_loopback_address};
use rusqlite::Connection;

const WAIT: Duration = Duration::from_secs(30);
const FIRST_WORKSPACE: &str = "My agency";

/// A sending mailbox made through the CLI.
struct Sender {
    address: String,
    password: String,
}

struct Rig {
    _appliance: Appliance,
    db: PathBuf,
    submission: u16,
    senders: Vec<Sender>,
}

/// One queue row as the test reads it.
#[derive(Debug, Clone)]
struct Row {
    status: String,
    attempts: i64,
    last_status: String,
    last_reply: String,
}

/// Sets up the data dir with the CLI: an admin (and the first workspace), the other workspaces
/// named in `sending` (inserted directly: the CLI has no command for them), one domain and one
/// mailbox per `(domain, workspace)`, the domains' records in `dns`; then starts the appliance.
fn start_rig(dns: &Dns, mx_port: u16, sending: &[(&str, &str)], extra: &[(&str, &str)]) -> Rig {
    let dir = tempfile::tempdir().expect("temp dir");
    let data = dir.path().join("data");
    let admin = cli(&data, &["admin", "create", "--email", "admin@grove.test"], Some(common::PASSWORD));
    assert!(admin.status.success(), "admin create: {}", String::from_utf8_lossy(&admin.stderr));
    let conn = open(&data.join("inboxgrove.db"));
    let mut made = Vec::new();
    for (domain, workspace) in sending {
        let exists: i64 =
            conn.query_row("SELECT count(*) FROM workspaces WHERE name = ?1", [workspace], |r| r.get(0)).unwrap();
        if exists == 0 {
            conn.execute("INSERT INTO workspaces (name, created_at) VALUES (?1, 0)", [workspace]).expect("workspace");
        }
        run(&data, &["domain", "add", domain, "--workspace", workspace]);
        let csv = run(&data, &["mailbox", "create", "--domain", domain, "--count", "1", "--workspace", workspace]);
        let line = csv.lines().nth(1).expect("one mailbox in the CSV");
        let (address, password) = line.split_once(',').expect("email,password");
        let zone = run(&data, &["domain", "records", domain, "--zone", "--workspace", workspace]);
        let records = zone
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty() && !l.starts_with(';') && !l.starts_with('$'))
            .map(str::to_string)
            .collect();
        dns.set_zone(&Zone { name: domain.to_string(), records });
        made.push(Sender { address: address.to_string(), password: password.trim().to_string() });
    }
    drop(conn);
    let submission = free_port("127.0.0.1");
    let env = common::delivery_env(&dns.nameserver(), mx_port, submission);
    let mut env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    env.extend_from_slice(extra);
    let appliance = Appliance::start_with(dir, &env);
    let db = appliance.data_dir().join("inboxgrove.db");
    Rig { _appliance: appliance, db, submission, senders: made }
}

/// Runs the CLI on `data`; returns its standard output, or panics with its error.
fn run(data: &Path, args: &[&str]) -> String {
    let output = cli(data, args, None);
    assert!(output.status.success(), "{args:?}: {}", String::from_utf8_lossy(&output.stderr));
    String::from_utf8_lossy(&output.stdout).into_owned()
}

fn open(db: &Path) -> Connection {
    let conn = Connection::open(db).expect("open the appliance's database");
    conn.busy_timeout(Duration::from_secs(10)).expect("busy timeout");
    conn
}

/// A self-signed certificate for `name`, written as PEM files in `dir`: (cert, key).
fn certificate(dir: &Path, name: &str) -> (PathBuf, PathBuf) {
    let certified = rcgen::generate_simple_self_signed(vec![name.to_string()]).expect("certificate");
    let (cert, key) = (dir.join(format!("{name}.crt")), dir.join(format!("{name}.key")));
    std::fs::write(&cert, certified.cert.pem()).expect("write cert");
    std::fs::write(&key, certified.signing_key.serialize_pem()).expect("write key");
    (cert, key)
}

/// A message from `sender` to `to`.
fn message(sender: &Sender, to: &str, subject: &str) -> Vec<u8> {
    let domain = sender.address.rsplit_once('@').expect("domain").1;
    format!(
        "From: Sender <{from}>\r\nTo: <{to}>\r\nSubject: {subject}\r\nDate: Mon, 23 Nov 2026 10:00:00 +0000\r\n\
         Message-ID: <{token}@{domain}>\r\nMIME-Version: 1.0\r\nContent-Type: text/plain; charset=us-ascii\r\n\r\n\
         Hello from {domain}.\r\n",
        from = sender.address,
        token = subject.replace(' ', "-").to_lowercase(),
    )
    .into_bytes()
}

/// Submits with swaks over STARTTLS with AUTH, as a mail client would.
fn submit(rig: &Rig, sender: &Sender, to: &str, subject: &str) {
    let file = tempfile::NamedTempFile::new().expect("message file");
    std::fs::write(file.path(), message(sender, to, subject)).expect("write message");
    let output = Command::new("swaks")
        .args(["--server", &format!("127.0.0.1:{}", rig.submission), "--tls", "--auth", "PLAIN"])
        .args(["--auth-user", &sender.address, "--auth-password", &sender.password])
        .args(["--from", &sender.address, "--to", to, "--timeout", "20"])
        .arg("--data")
        .arg(format!("@{}", file.path().display()))
        .output()
        .expect("run swaks");
    let text = format!("{}{}", String::from_utf8_lossy(&output.stdout), String::from_utf8_lossy(&output.stderr));
    assert!(output.status.success(), "submission failed:\n{text}");
}

/// Polls (bounded) until the queue row for `recipient` satisfies `done`.
fn wait_row(rig: &Rig, recipient: &str, what: &str, done: impl Fn(&Row) -> bool) -> Row {
    let deadline = Instant::now() + WAIT;
    loop {
        let row = open(&rig.db)
            .query_row(
                "SELECT status, attempts, last_status, last_reply FROM queue WHERE recipient = ?1 ORDER BY id DESC",
                [recipient],
                |r| Ok(Row { status: r.get(0)?, attempts: r.get(1)?, last_status: r.get(2)?, last_reply: r.get(3)? }),
            )
            .ok();
        if let Some(row) = &row
            && done(row)
        {
            return row.clone();
        }
        assert!(Instant::now() < deadline, "the row for {recipient} never became {what}: {row:?}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn peers_available() -> bool {
    Dns::available() && ScriptedSmtp::available() && common::have_peer("swaks")
}

#[test]
fn a_relay_on_465_gets_implicit_tls_and_auth_and_a_wrong_password_defers() {
    if !(peers_available() && dkim_available()) {
        return;
    }
    let certs = tempfile::tempdir().expect("cert dir");
    let relay_ip = common::free_loopback_address(&[465]).to_string();
    let relay_options = SmtpOptions {
        tls: Some(certificate(certs.path(), "relay.grove.test")),
        implicit_tls: true,
        auth: Some(("relay-user".into(), "relay-pass".into())),
        ..SmtpOptions::default()
    };
    let relay = ScriptedSmtp::start_with(&relay_ip, 465, &[], &relay_options);
    let strict_ip = common::free_loopback_address(&[465]).to_string();
    let strict_options = SmtpOptions { auth: Some(("relay-user".into(), "another-pass".into())), ..relay_options };
    let strict = ScriptedSmtp::start_with(&strict_ip, 465, &[], &strict_options);

    let dns = Dns::start(&[Zone::new("far.test", &["@ A 127.0.0.9"])]);
    let routes = format!(
        "[{{domain = \"wrongpw.test\", smarthost = \"{strict_ip}:465\", smarthost_user = \"relay-user\", \
         smarthost_password = \"not-the-password\", smarthost_tls_verify = false}}]"
    );
    let smarthost = format!("{relay_ip}:465");
    let env = [
        ("INBOXGROVE_DELIVERY__SMARTHOST", smarthost.as_str()),
        ("INBOXGROVE_DELIVERY__SMARTHOST_USER", "relay-user"),
        ("INBOXGROVE_DELIVERY__SMARTHOST_PASSWORD", "relay-pass"),
        ("INBOXGROVE_DELIVERY__SMARTHOST_TLS_VERIFY", "false"),
        ("INBOXGROVE_DELIVERY__ROUTES", routes.as_str()),
    ];
    let rig = start_rig(&dns, 25, &[("relayed.test", FIRST_WORKSPACE), ("wrongpw.test", FIRST_WORKSPACE)], &env);

    submit(&rig, &rig.senders[0], "someone@far.test", "Through the relay");
    let done = wait_row(&rig, "someone@far.test", "delivered", |r| r.status == "delivered");
    assert_eq!(done.attempts, 1, "{done:?}");
    let arrived = relay.wait_for(1, WAIT);
    let (passed, log) = dkim_verify(&arrived[0], &dns);
    assert!(passed, "dkimpy rejected the relayed message: {log}\n{}", String::from_utf8_lossy(&arrived[0]));
    let meta = &relay.metas()[0];
    assert_eq!(meta.login.as_deref(), Some("relay-user"), "{meta:?}");
    assert!(meta.tls && meta.esmtp, "implicit TLS, EHLO: {meta:?}");
    assert_eq!(relay.envelopes()[0].rcpt_to, ["someone@far.test"]);

    submit(&rig, &rig.senders[1], "other@far.test", "Wrong password");
    let deferred = wait_row(&rig, "other@far.test", "deferred", |r| r.attempts == 1);
    assert_eq!((deferred.status.as_str(), deferred.last_status.as_str()), ("deferred", "4.7.8"), "{deferred:?}");
    assert!(deferred.last_reply.contains("535 5.7.8"), "the relay's reply is recorded: {deferred:?}");
    assert!(strict.messages().is_empty() && relay.messages().len() == 1, "nothing went anywhere else");
}

#[test]
fn workspace_and_domain_routes_go_to_their_own_relays_and_other_mail_goes_direct() {
    if !(peers_available() && PostfixMx::available()) {
        return;
    }
    let certs = tempfile::tempdir().expect("cert dir");
    let port = free_port("127.0.0.2");
    let dns = Dns::start(&[Zone::new("dest.test", &["@ MX 10 mx.dest.test.", "mx A 127.0.0.2"])]);
    let mx = PostfixMx::start("127.0.0.2", port, &["dest.test"]);
    let workspace_relay_port = free_port("127.0.0.1");
    let workspace_relay = ScriptedSmtp::start_with(
        "127.0.0.1",
        workspace_relay_port,
        &[],
        &SmtpOptions {
            tls: Some(certificate(certs.path(), "ws-relay.grove.test")),
            auth: Some(("beta".into(), "beta-pass".into())),
            ..SmtpOptions::default()
        },
    );
    let domain_relay_port = free_port("127.0.0.1");
    let domain_relay = ScriptedSmtp::start("127.0.0.1", domain_relay_port, &[]);
    // The workspace is named by its slug; its relay is not on 465, so STARTTLS (required) is used.
    let routes = format!(
        "[{{workspace = \"beta-team\", smarthost = \"127.0.0.1:{workspace_relay_port}\", smarthost_user = \"beta\", \
         smarthost_password = \"beta-pass\", smarthost_tls_verify = false}}, \
         {{domain = \"b-special.test\", smarthost = \"127.0.0.1:{domain_relay_port}\", smarthost_tls = \"none\"}}]"
    );
    let env = [("INBOXGROVE_DELIVERY__ROUTES", routes.as_str())];
    let sending = [("direct.test", FIRST_WORKSPACE), ("b-plain.test", "Beta Team"), ("b-special.test", "Beta Team")];
    let rig = start_rig(&dns, port, &sending, &env);

    let recipients = ["direct@dest.test", "workspace@dest.test", "domain@dest.test"];
    for (sender, to) in rig.senders.iter().zip(recipients) {
        submit(&rig, sender, to, &format!("Routed to {to}"));
    }
    for to in recipients {
        let row = wait_row(&rig, to, "delivered", |r| r.status == "delivered");
        assert_eq!(row.attempts, 1, "{to}: {row:?}");
    }

    let direct = mx.wait_for(1, WAIT);
    assert_eq!(direct.len(), 1);
    assert!(String::from_utf8_lossy(&direct[0]).contains("Subject: Routed to direct@dest.test"));

    let through_workspace = workspace_relay.wait_for(1, WAIT);
    assert_eq!(through_workspace.len(), 1, "only Beta's unrouted domain goes to Beta's relay");
    assert_eq!(workspace_relay.envelopes()[0].rcpt_to, ["workspace@dest.test"]);
    let meta = &workspace_relay.metas()[0];
    assert!(meta.tls && meta.login.as_deref() == Some("beta"), "STARTTLS then AUTH: {meta:?}");

    domain_relay.wait_for(1, WAIT);
    assert_eq!(domain_relay.envelopes().len(), 1, "the domain route wins over the workspace route");
    assert_eq!(domain_relay.envelopes()[0].rcpt_to, ["domain@dest.test"]);
    let meta = &domain_relay.metas()[0];
    assert!(!meta.tls && meta.login.is_none(), "smarthost_tls = none, no credentials: {meta:?}");
    assert!(domain_relay.commands().is_empty(), "neither STARTTLS nor AUTH: {:?}", domain_relay.commands());
    let events: Vec<String> = open(&rig.db)
        .prepare("SELECT detail FROM events WHERE kind = 'delivered' AND recipient = 'domain@dest.test'")
        .unwrap()
        .query_map([], |r| r.get(0))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    assert!(events.iter().any(|d| d.contains("smarthost_tls")), "the plaintext relay is noted: {events:?}");
}

/// A relay with a private certificate is verified against the `smarthost_tls_ca` file and gets
/// the mail; a relay whose certificate chains to nothing trusted (checked against the platform's
/// trust store) gets neither the credentials nor the mail, and the message waits (4.7.5).
#[test]
fn a_relay_is_verified_against_its_ca_file_and_an_unknown_certificate_defers() {
    if !peers_available() {
        return;
    }
    let certs = tempfile::tempdir().expect("cert dir");
    let (trusted_ip, untrusted_ip) = (free_loopback_address(&[587]), free_loopback_address(&[587]));
    let (trusted_cert, trusted_key) = certificate(certs.path(), "trusted.relays.test");
    let options = |tls| SmtpOptions {
        tls: Some(tls),
        auth: Some(("relay-user".into(), "relay-pass".into())),
        ..SmtpOptions::default()
    };
    let trusted =
        ScriptedSmtp::start_with(&trusted_ip.to_string(), 587, &[], &options((trusted_cert.clone(), trusted_key)));
    let untrusted = ScriptedSmtp::start_with(
        &untrusted_ip.to_string(),
        587,
        &[],
        &options(certificate(certs.path(), "untrusted.relays.test")),
    );
    let dns = Dns::start(&[Zone::new(
        "relays.test",
        &[&format!("trusted A {trusted_ip}"), &format!("untrusted A {untrusted_ip}")],
    )]);
    let ca = trusted_cert.to_string_lossy().into_owned();
    let routes = format!(
        "[{{domain = \"private.test\", smarthost = \"trusted.relays.test:587\", smarthost_user = \"relay-user\", \
         smarthost_password = \"relay-pass\", smarthost_tls_ca = \"{ca}\"}}, \
         {{domain = \"public.test\", smarthost = \"untrusted.relays.test:587\", smarthost_user = \"relay-user\", \
         smarthost_password = \"relay-pass\"}}]"
    );
    let env = [("INBOXGROVE_DELIVERY__ROUTES", routes.as_str())];
    let rig = start_rig(&dns, 25, &[("private.test", FIRST_WORKSPACE), ("public.test", FIRST_WORKSPACE)], &env);

    submit(&rig, &rig.senders[0], "lead@far.test", "Verified relay");
    wait_row(&rig, "lead@far.test", "delivered", |r| r.status == "delivered");
    let meta = &trusted.metas()[0];
    assert!(meta.tls && meta.login.as_deref() == Some("relay-user"), "STARTTLS, then AUTH: {meta:?}");

    submit(&rig, &rig.senders[1], "other@far.test", "Unverifiable relay");
    let deferred = wait_row(&rig, "other@far.test", "deferred", |r| r.attempts == 1);
    assert_eq!((deferred.status.as_str(), deferred.last_status.as_str()), ("deferred", "4.7.5"), "{deferred:?}");
    assert!(untrusted.messages().is_empty(), "the unverified relay got nothing");
    assert_eq!(untrusted.commands(), ["STARTTLS"], "STARTTLS was tried, and no AUTH was ever sent");
    assert_eq!(trusted.commands(), ["STARTTLS", "AUTH PLAIN"], "the verified relay got AUTH after STARTTLS");
}
