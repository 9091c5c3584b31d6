//! Signing in and holding sessions, over the real binary. One credential check for SMTP AUTH
//! and IMAP LOGIN / AUTHENTICATE:
//! - one table of cases (right, wrong, paused, unknown, throttled, authorization identities,
//!   malformed responses) runs through SMTP AUTH PLAIN and LOGIN and IMAP LOGIN, AUTHENTICATE
//!   PLAIN and AUTHENTICATE LOGIN, and every way gets the same verdict;
//! - a stranger cannot lock a mailbox out: wrong passwords from 127.0.0.9 slow 127.0.0.9 (each
//!   further attempt waits longer) while the right password from 127.0.0.1 signs in at once;
//! - AUTH right after STARTTLS, without a new EHLO, is accepted as Postfix accepts it.
//!
//! And one client address cannot take every connection slot: with 1,500 idle connections from
//! 127.0.0.9 to each listener (held by a Python helper that raises its own file limit), a client
//! from 127.0.0.1 still connects, signs in and sends on every port, while 127.0.0.9's next
//! connection is told why it is refused; and 200 signed-in IMAP sessions for 100 mailboxes from
//! one address are all served.

mod common;

use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant};

use common::Appliance;
use common::wire::{Wire, b64, quoted, tls_config};
use tokio::net::TcpStream;
use tokio_rustls::client::TlsStream;

const DOMAIN: &str = "grove-login.test";
/// Mailboxes the fixture creates (the 200-session test wants 100).
const MAILBOXES: usize = 100;

/// What a sign-in came to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Verdict {
    SignedIn,
    /// Signed in, after waiting at least a second (a penalty).
    SignedInSlowly,
    Refused,
    /// The SASL response could not be decoded.
    Malformed,
}

/// The ways in.
#[derive(Debug, Clone, Copy)]
enum Way {
    SmtpPlain,
    SmtpLogin,
    ImapLogin,
    ImapPlain,
    ImapAuthLogin,
}

const WAYS: [Way; 5] = [Way::SmtpPlain, Way::SmtpLogin, Way::ImapLogin, Way::ImapPlain, Way::ImapAuthLogin];

/// What the client sends: a PLAIN response (authzid, user, password) or a raw base64 blob.
#[derive(Debug, Clone)]
enum Attempt {
    Plain {
        authzid: String,
        user: String,
        password: String,
    },
    /// A PLAIN response that is not `authzid NUL user NUL password`.
    Garbage,
}

struct Fixture {
    appliance: Appliance,
    /// (address, password) of the mailboxes.
    mailboxes: Vec<(String, String)>,
}

impl Fixture {
    fn start() -> Fixture {
        let appliance =
            Appliance::start_with(tempfile::tempdir().expect("temp dir"), &[("INBOXGROVE_TEST_CLOCK", "1")]);
        let cli = |args: &[&str], stdin: Option<&str>| {
            let output = appliance.cli(args, stdin);
            assert!(output.status.success(), "{args:?}: {}", String::from_utf8_lossy(&output.stderr));
            String::from_utf8(output.stdout).expect("utf-8")
        };
        cli(&["admin", "create", "--email", "admin@grove.test"], Some(&format!("{}\n", common::PASSWORD)));
        cli(&["domain", "add", DOMAIN], None);
        let created = cli(&["mailbox", "create", "--domain", DOMAIN, "--count", &MAILBOXES.to_string()], None);
        let mailboxes: Vec<(String, String)> = created
            .lines()
            .skip(1)
            .map(|line| line.split_once(',').map(|(a, p)| (a.to_string(), p.to_string())).expect("email,password"))
            .collect();
        cli(&["mailbox", "set", &mailboxes[2].0, "--status", "paused"], None);
        Fixture { appliance, mailboxes }
    }

    fn target(&self, port: u16) -> SocketAddr {
        SocketAddr::new(IpAddr::V4(self.appliance.mail_ip), port)
    }

    /// An SMTP session over implicit TLS from `source`, after EHLO.
    async fn smtp(&self, source: IpAddr) -> Wire<TlsStream<TcpStream>> {
        let mut wire = Wire::from(source, self.target(2465)).await.into_tls(tls_config(&self.appliance)).await;
        assert_eq!(wire.smtp_reply().await.0, 220);
        assert_eq!(wire.smtp("EHLO client.test").await.0, 250);
        wire
    }

    /// An IMAP session over implicit TLS from `source`, after the greeting.
    async fn imap(&self, source: IpAddr) -> Wire<TlsStream<TcpStream>> {
        let mut wire = Wire::from(source, self.target(2993)).await.into_tls(tls_config(&self.appliance)).await;
        assert!(wire.line().await.expect("greeting").starts_with("* OK"));
        wire
    }

    /// One sign-in attempt from `source` through `way`; the verdict and how long it took.
    async fn sign_in(&self, way: Way, source: IpAddr, attempt: &Attempt) -> (Verdict, Duration) {
        match way {
            Way::SmtpPlain | Way::SmtpLogin => {
                let mut wire = self.smtp(source).await;
                let started = Instant::now();
                let (code, line) = smtp_auth(&mut wire, way, attempt).await;
                (smtp_verdict(code, &line), started.elapsed())
            }
            Way::ImapLogin | Way::ImapPlain | Way::ImapAuthLogin => {
                let mut wire = self.imap(source).await;
                let started = Instant::now();
                let completion = imap_auth(&mut wire, way, attempt).await;
                (imap_verdict(&completion), started.elapsed())
            }
        }
    }
}

async fn smtp_auth(wire: &mut Wire<TlsStream<TcpStream>>, way: Way, attempt: &Attempt) -> (u16, String) {
    match (way, attempt) {
        (Way::SmtpPlain, _) => wire.smtp(&format!("AUTH PLAIN {}", plain(attempt))).await,
        (_, Attempt::Plain { user, password, .. }) => {
            assert_eq!(wire.smtp("AUTH LOGIN").await.0, 334);
            assert_eq!(wire.smtp(&b64(user)).await.0, 334);
            wire.smtp(&b64(password)).await
        }
        (_, Attempt::Garbage) => {
            assert_eq!(wire.smtp("AUTH LOGIN").await.0, 334);
            wire.smtp("!!not base64!!").await
        }
    }
}

async fn imap_auth(wire: &mut Wire<TlsStream<TcpStream>>, way: Way, attempt: &Attempt) -> String {
    match (way, attempt) {
        (Way::ImapPlain, _) => wire.imap("a", &format!("AUTHENTICATE PLAIN {}", plain(attempt))).await.0,
        (Way::ImapLogin, Attempt::Plain { user, password, .. }) => {
            wire.imap("a", &format!("LOGIN {} {}", quoted(user), quoted(password))).await.0
        }
        (Way::ImapAuthLogin, Attempt::Plain { user, password, .. }) => {
            assert!(wire.imap("a", "AUTHENTICATE LOGIN").await.0.starts_with("+ VXNlcm5hbWU6"));
            wire.send(&b64(user)).await;
            assert!(wire.imap_completion("a").await.0.starts_with("+ UGFzc3dvcmQ6"));
            wire.send(&b64(password)).await;
            wire.imap_completion("a").await.0
        }
        (_, Attempt::Garbage) => {
            assert!(wire.imap("a", "AUTHENTICATE LOGIN").await.0.starts_with('+'));
            wire.send("!!not base64!!").await;
            wire.imap_completion("a").await.0
        }
        (Way::SmtpPlain | Way::SmtpLogin, _) => unreachable!("{way:?} is not IMAP"),
    }
}

/// The base64 PLAIN response of an attempt.
fn plain(attempt: &Attempt) -> String {
    match attempt {
        Attempt::Plain { authzid, user, password } => b64(&format!("{authzid}\0{user}\0{password}")),
        Attempt::Garbage => b64("no separators here"),
    }
}

fn smtp_verdict(code: u16, line: &str) -> Verdict {
    match code {
        235 => Verdict::SignedIn,
        535 => Verdict::Refused,
        501 => Verdict::Malformed,
        _ => panic!("unexpected reply to AUTH: {line}"),
    }
}

fn imap_verdict(completion: &str) -> Verdict {
    match completion.split_whitespace().nth(1) {
        Some("OK") => Verdict::SignedIn,
        Some("NO") if completion.contains("[AUTHENTICATIONFAILED]") => Verdict::Refused,
        Some("BAD") => Verdict::Malformed,
        _ => panic!("unexpected completion of a login: {completion:?}"),
    }
}

fn attempt(authzid: &str, user: &str, password: &str) -> Attempt {
    Attempt::Plain { authzid: authzid.into(), user: user.into(), password: password.into() }
}

#[tokio::test]
async fn every_way_in_gives_the_same_verdicts() {
    let fixture = Fixture::start();
    let (ann, ann_pw) = fixture.mailboxes[0].clone();
    let bob = fixture.mailboxes[1].0.clone();
    let (paused, paused_pw) = fixture.mailboxes[2].clone();
    let cases: Vec<(&str, Attempt, Verdict)> = vec![
        ("right", attempt("", &ann, &ann_pw), Verdict::SignedIn),
        ("right, address in capitals", attempt("", &ann.to_uppercase(), &ann_pw), Verdict::SignedIn),
        ("wrong password", attempt("", &bob, "not the password"), Verdict::Refused),
        ("paused mailbox", attempt("", &paused, &paused_pw), Verdict::SignedIn),
        ("unknown mailbox", attempt("", &format!("nobody@{DOMAIN}"), &ann_pw), Verdict::Refused),
        ("authzid: the user", attempt(&ann, &ann, &ann_pw), Verdict::SignedIn),
        ("authzid: the user in capitals", attempt(&ann.to_uppercase(), &ann, &ann_pw), Verdict::SignedIn),
        ("authzid: another mailbox", attempt(&bob, &ann, &ann_pw), Verdict::Refused),
        ("malformed response", Attempt::Garbage, Verdict::Malformed),
    ];
    let mut source = 10u8;
    for (name, attempt, expected) in &cases {
        for way in WAYS {
            // LOGIN carries no authorization identity and cannot be garbled into PLAIN's shape.
            let authzid_case = matches!(attempt, Attempt::Plain { authzid, .. } if !authzid.is_empty());
            if authzid_case && matches!(way, Way::SmtpLogin | Way::ImapLogin | Way::ImapAuthLogin) {
                continue;
            }
            if matches!(attempt, Attempt::Garbage) && matches!(way, Way::ImapLogin) {
                continue;
            }
            source += 1;
            let (verdict, _) = fixture.sign_in(way, IpAddr::from([127, 0, 0, source]), attempt).await;
            assert_eq!(verdict, *expected, "{name} through {way:?}");
        }
    }

    // Throttled: three failures from one address, then the right password from it waits (the
    // penalty) and signs in, the same through every way.
    let (carl, carl_pw) = fixture.mailboxes[3].clone();
    for (index, way) in WAYS.into_iter().enumerate() {
        let source = IpAddr::from([127, 0, 1, u8::try_from(index + 1).expect("small")]);
        for _ in 0..3 {
            let (verdict, _) = fixture.sign_in(way, source, &attempt("", &carl, "wrong")).await;
            assert_eq!(verdict, Verdict::Refused, "{way:?}");
        }
        let (verdict, took) = fixture.sign_in(way, source, &attempt("", &carl, &carl_pw)).await;
        let verdict = if verdict == Verdict::SignedIn && took >= Duration::from_secs(1) {
            Verdict::SignedInSlowly
        } else {
            verdict
        };
        assert_eq!(verdict, Verdict::SignedInSlowly, "throttled through {way:?} (took {took:?})");
    }

    // The paused mailbox signed in over SMTP, but may not send.
    let mut smtp = fixture.smtp(IpAddr::from([127, 0, 2, 1])).await;
    assert_eq!(smtp.smtp(&format!("AUTH PLAIN {}", b64(&format!("\0{paused}\0{paused_pw}")))).await.0, 235);
    let (code, line) = smtp.smtp(&format!("MAIL FROM:<{paused}>")).await;
    assert!(code == 550 && line.contains("5.7.1") && line.contains("paused"), "{line}");
}

#[tokio::test]
async fn a_stranger_s_wrong_passwords_slow_the_stranger_and_never_lock_the_owner_out() {
    let fixture = Fixture::start();
    let stranger = IpAddr::from([127, 0, 0, 9]);
    let owner = IpAddr::from([127, 0, 0, 1]);
    for (index, way) in [Way::SmtpPlain, Way::ImapLogin].into_iter().enumerate() {
        let (address, password) = fixture.mailboxes[index].clone();
        let mut waits = Vec::new();
        for _ in 0..5 {
            let (verdict, took) = fixture.sign_in(way, stranger, &attempt("", &address, "guess")).await;
            assert_eq!(verdict, Verdict::Refused, "{way:?}");
            waits.push(took);
        }
        // The fourth and fifth guesses waited their penalties (1 s, 2 s; the first three are free).
        assert!(waits[3] >= Duration::from_secs(1) && waits[4] >= Duration::from_secs(2), "{way:?}: {waits:?}");
        let (verdict, took) = fixture.sign_in(way, owner, &attempt("", &address, &password)).await;
        assert_eq!(verdict, Verdict::SignedIn, "{way:?}: the owner signs in");
        assert!(took < Duration::from_secs(1), "{way:?}: at once, without a penalty ({took:?})");
        // The stranger is still slowed; once the failures leave the window, it is not.
        let (_, took) = fixture.sign_in(way, stranger, &attempt("", &address, "guess")).await;
        assert!(took >= Duration::from_secs(4), "{way:?}: {took:?}");
        fixture.appliance.advance_clock(15 * 60 + 1);
    }
}

#[tokio::test]
async fn auth_right_after_starttls_without_a_new_ehlo_is_accepted() {
    let fixture = Fixture::start();
    let (ann, ann_pw) = fixture.mailboxes[0].clone();
    let mut plain = Wire::from(IpAddr::from([127, 0, 0, 1]), fixture.target(2587)).await;
    assert_eq!(plain.smtp_reply().await.0, 220);
    assert_eq!(plain.smtp("EHLO client.test").await.0, 250);
    assert_eq!(plain.smtp("STARTTLS").await.0, 220);
    let mut tls = plain.into_tls(tls_config(&fixture.appliance)).await;
    assert_eq!(tls.smtp(&format!("AUTH PLAIN {}", b64(&format!("\0{ann}\0{ann_pw}")))).await.0, 235);
    let (code, line) = tls.smtp(&format!("MAIL FROM:<{ann}>")).await;
    assert_eq!(code, 250, "{line}");
}

/// Holds `count` idle connections from `source` to each of `targets` (a Python helper that raises
/// its own open-file limit) until dropped.
struct Flood {
    child: std::process::Child,
}

impl Flood {
    fn start(source: &str, count: usize, targets: &[SocketAddr]) -> Flood {
        const SCRIPT: &str = r#"
import resource, socket, sys, threading
count, source, targets = int(sys.argv[1]), sys.argv[2], sys.argv[3:]
soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
need = count * len(targets) + 64
if soft < need:
    if hard != resource.RLIM_INFINITY and hard < need:
        sys.exit(f"the open-file limit ({hard}) is below the {need} connections to hold")
    resource.setrlimit(resource.RLIMIT_NOFILE, (need, hard))
held = []
def flood(target):
    host, port = target.rsplit(":", 1)
    for _ in range(count):
        s = socket.socket()
        s.bind((source, 0))
        s.connect((host, int(port)))
        held.append(s)
# All listeners at once: each must be full well within the 30 s a connection gets for its
# first command.
threads = [threading.Thread(target=flood, args=(t,)) for t in targets]
for t in threads:
    t.start()
for t in threads:
    t.join()
print("ready", len(held), flush=True)
sys.stdin.read()
"#;
        let mut command = std::process::Command::new("python3");
        command.args(["-c", SCRIPT, &count.to_string(), source]);
        command.args(targets.iter().map(|t| t.to_string()));
        command.stdin(std::process::Stdio::piped()).stdout(std::process::Stdio::piped());
        let mut child = command.spawn().expect("run python3");
        let mut line = String::new();
        use std::io::BufRead;
        std::io::BufReader::new(child.stdout.take().expect("stdout")).read_line(&mut line).expect("read");
        assert_eq!(line.trim(), format!("ready {}", count * targets.len()), "the flood is in place");
        Flood { child }
    }
}

impl Drop for Flood {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The first line the listener at `target` says to a new connection from `source`, retried
/// (for up to 20 s) until it starts with `refusal`: the appliance takes up a flood's connections
/// from its accept queue over a while.
async fn first_line_once_refused(target: SocketAddr, source: IpAddr, refusal: &str) -> String {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    loop {
        let line = Wire::from(source, target).await.line().await.expect("a first line");
        if line.starts_with(refusal) || std::time::Instant::now() > deadline {
            return line;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
}

#[tokio::test]
async fn one_address_cannot_take_every_connection_slot() {
    let fixture = Fixture::start();
    let (ann, ann_pw) = fixture.mailboxes[0].clone();
    let bob = fixture.mailboxes[1].0.clone();
    let ports = [2587, 2465, 2525, 2143, 2993];
    let _flood = Flood::start("127.0.0.9", 1500, &ports.map(|port| fixture.target(port)));
    let client = IpAddr::from([127, 0, 0, 1]);
    let config = tls_config(&fixture.appliance);

    // The flooding address is told why, as soon as the appliance has taken up its connections
    // (and well within the 30 s it gives a connection for its first command).
    let stranger = IpAddr::from([127, 0, 0, 9]);
    let line = first_line_once_refused(fixture.target(2587), stranger, "421").await;
    assert!(line.starts_with("421") && line.contains("4.7.0") && line.contains("from your address"), "{line}");
    let bye = first_line_once_refused(fixture.target(2143), stranger, "* BYE").await;
    assert!(bye.starts_with("* BYE") && bye.contains("from your address"), "{bye}");

    // Submission, both ports: sign in and send.
    for implicit in [false, true] {
        let mut wire = if implicit {
            fixture.smtp(client).await
        } else {
            let mut plain = Wire::from(client, fixture.target(2587)).await;
            assert_eq!(plain.smtp_reply().await.0, 220, "a greeting, not 421");
            assert_eq!(plain.smtp("EHLO client.test").await.0, 250);
            assert_eq!(plain.smtp("STARTTLS").await.0, 220);
            let mut tls = plain.into_tls(config.clone()).await;
            assert_eq!(tls.smtp("EHLO client.test").await.0, 250);
            tls
        };
        assert_eq!(wire.smtp(&format!("AUTH PLAIN {}", b64(&format!("\0{ann}\0{ann_pw}")))).await.0, 235);
        assert_eq!(wire.smtp(&format!("MAIL FROM:<{ann}>")).await.0, 250);
        assert_eq!(wire.smtp(&format!("RCPT TO:<{bob}>")).await.0, 250);
        assert_eq!(wire.smtp("DATA").await.0, 354);
        wire.send(&format!("From: <{ann}>\r\nTo: <{bob}>\r\nSubject: Still here\r\n\r\nHi\r\n.")).await;
        let (code, line) = wire.smtp_reply().await;
        assert_eq!(code, 250, "{line}");
    }

    // The MX.
    let mut mx = Wire::from(client, fixture.target(2525)).await;
    assert_eq!(mx.smtp_reply().await.0, 220);
    assert_eq!(mx.smtp("EHLO peer.test").await.0, 250);
    assert_eq!(mx.smtp("MAIL FROM:<someone@peer.test>").await.0, 250);
    assert_eq!(mx.smtp(&format!("RCPT TO:<{bob}>")).await.0, 250);

    // IMAP, both ports.
    let mut imaps = fixture.imap(client).await;
    assert!(imaps.imap("a", &format!("LOGIN {} {}", quoted(&ann), quoted(&ann_pw))).await.0.starts_with("a OK"));
    let mut imap = Wire::from(client, fixture.target(2143)).await;
    assert!(imap.line().await.expect("greeting").starts_with("* OK"), "a greeting, not BYE");
    assert!(imap.imap("s", "STARTTLS").await.0.starts_with("s OK"));
    let mut imap = imap.into_tls(config.clone()).await;
    assert!(imap.imap("a", &format!("LOGIN {} {}", quoted(&ann), quoted(&ann_pw))).await.0.starts_with("a OK"));
}

#[tokio::test]
async fn two_hundred_signed_in_imap_sessions_for_a_hundred_mailboxes_from_one_address_are_served() {
    let fixture = Fixture::start();
    let (target, config) = (fixture.target(2993), tls_config(&fixture.appliance));
    let mut sessions = Vec::new();
    for wave in 0..4 {
        // Fifty at a time, as a sequencer ramps up its pollers.
        let mut logins = tokio::task::JoinSet::new();
        for i in 0..50 {
            let (address, password) = fixture.mailboxes[(wave * 50 + i) % MAILBOXES].clone();
            let config = config.clone();
            logins.spawn(async move {
                let mut wire = Wire::from(IpAddr::from([127, 0, 0, 1]), target).await.into_tls(config).await;
                assert!(wire.line().await.expect("greeting").starts_with("* OK"));
                let (done, _) = wire.imap("a", &format!("LOGIN {} {}", quoted(&address), quoted(&password))).await;
                assert!(done.starts_with("a OK"), "{address}: {done}");
                wire
            });
        }
        sessions.extend(logins.join_all().await);
    }
    assert_eq!(sessions.len(), 200);
    for (index, wire) in sessions.iter_mut().enumerate() {
        let (done, untagged) = wire.imap("b", "SELECT INBOX").await;
        assert!(done.starts_with("b OK"), "session {index}: {done} {untagged:?}");
    }
}
