//! IMAP end to end, with real clients against the real binary. Mail gets in only through the
//! appliance: from outside through its MX (swaks to the inbound port, with the test clock
//! moved for the internal dates), and what a mailbox sends through submission (the Sent copy
//! is filed by the appliance).
//! - Python's imaplib over implicit TLS and STARTTLS (login, LIST with SPECIAL-USE, SELECT, FETCH
//!   of every common item, SEARCH, STORE, UID MOVE to Spam and back, COPY, EXPUNGE, APPEND to
//!   Sent without duplicating the appliance's own copy, sequence numbers kept while another
//!   session expunges);
//! - an IDLE client woken within a second by a delivery submitted with swaks and by another
//!   session's APPEND, by the change signal alone (IDLE's periodic re-check is off);
//! - raw sockets feeding bad input (commands before login, LOGINDISABLED, another mailbox's
//!   password, a literal larger than allowed, a literal shorter than announced, garbage, an
//!   oversize line);
//! - mbsync syncing a mailbox to a Maildir and back;
//! - raw sockets checking \Recent (SELECT, EXAMINE, STATUS, SEARCH, new mail), subscriptions
//!   (LSUB, defaults, RENAME, DELETE), modified UTF-7 folder names, and the sequence/UID edge
//!   cases clients hit (`FETCH 1:*` on an empty folder, `UID FETCH 4294967295:*`, STORE on an
//!   expunged message, SEARCH CHARSET UTF-8 with non-ASCII literals, LIST and LSUB patterns that
//!   are not modified UTF-7);
//! - raw sockets checking that new keywords are announced (FLAGS, PERMANENTFLAGS) before any
//!   FETCH shows them, that `NIL` is refused as a keyword, that a STORE on a set holds for every
//!   message, and ENVELOPE's group markers;
//! - a message submitted with smtplib to a recipient a real Postfix MX (found through Knot)
//!   refuses, whose DSN is then searched and fetched over IMAP (multipart/report, the
//!   delivery-status part, the original headers).

mod common;

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use chrono::Datelike;
use common::Appliance;
use common::mail_rig::{send_raw, submit_raw};
use common::peers::{Dns, PostfixMx, Zone, free_port};

const DOMAIN: &str = "grove-imap.test";
const IMAP_PORT: u16 = 2143;
const IMAPS_PORT: u16 = 2993;
/// How long one client script may run.
const SCRIPT_LIMIT: Duration = Duration::from_secs(120);
const DAY: i64 = 86_400;

/// A running appliance with one domain and its mailboxes (address, password).
struct Fixture {
    appliance: Appliance,
    mailboxes: Vec<(String, String)>,
    /// The resolver its MX checks senders with, when it has one.
    _dns: Option<Dns>,
}

impl Fixture {
    /// The appliance with `count` mailboxes, ready to take mail from outside ([`Fixture::deliver`]):
    /// Knot as its resolver (the MX checks SPF and DMARC; every `.test` name but its own is
    /// NXDOMAIN) and its clock movable, so seeded mail gets the internal dates the tests choose.
    /// `None` (the test is skipped) when Knot or swaks is missing.
    fn start(count: usize) -> Option<Fixture> {
        if !(common::have_peer("swaks") && Dns::available()) {
            return None;
        }
        let dns = Dns::start(&[Zone::new("test", &[])]);
        let nameservers = format!("[\"{}\"]", dns.nameserver());
        let env = [("INBOXGROVE_TEST_CLOCK", "1"), ("INBOXGROVE_DNS__NAMESERVERS", nameservers.as_str())];
        let fixture = Fixture::start_with(count, &env);
        Some(Fixture { _dns: Some(dns), ..fixture })
    }

    /// [`Fixture::start`] with the appliance's environment given (DNS, clock, delivery port);
    /// the resolver points where nobody answers unless `env` names one.
    fn start_with(count: usize, env: &[(&str, &str)]) -> Fixture {
        let dead_dns = format!("[\"127.0.0.1:{}\"]", free_port("127.0.0.1"));
        let mut env = env.to_vec();
        if !env.iter().any(|(key, _)| *key == "INBOXGROVE_DNS__NAMESERVERS") {
            env.push(("INBOXGROVE_DNS__NAMESERVERS", dead_dns.as_str()));
        }
        let appliance = Appliance::start_with(tempfile::tempdir().expect("temp dir"), &env);
        run_ok(
            &appliance,
            &["admin", "create", "--email", "admin@grove.test"],
            Some(&format!("{}\n", common::PASSWORD)),
        );
        run_ok(&appliance, &["domain", "add", DOMAIN], None);
        let created =
            run_ok(&appliance, &["mailbox", "create", "--domain", DOMAIN, "--count", &count.to_string()], None);
        let mailboxes: Vec<(String, String)> = created
            .lines()
            .skip(1)
            .filter_map(|line| line.trim().split_once(','))
            .map(|(email, password)| (email.to_string(), password.to_string()))
            .collect();
        assert_eq!(mailboxes.len(), count, "{created}");
        wait_for_listener(&appliance);
        Fixture { appliance, mailboxes, _dns: None }
    }

    fn host(&self) -> String {
        self.appliance.mail_ip.to_string()
    }

    fn db(&self) -> rusqlite::Connection {
        let conn = rusqlite::Connection::open(self.appliance.data_dir().join("inboxgrove.db")).expect("open db");
        conn.busy_timeout(Duration::from_secs(10)).expect("busy timeout");
        conn
    }

    /// Mail from outside: `raw` sent to `address` through the appliance's MX (swaks to the
    /// inbound port, the envelope sender taken from its From field). The appliance answers 250
    /// only once the message is stored.
    fn deliver(&self, address: &str, raw: &str) {
        // swaks ends the data with CRLF of its own before the final dot.
        let raw = raw.strip_suffix("\r\n").unwrap_or(raw);
        let from = raw
            .lines()
            .find_map(|line| line.strip_prefix("From: "))
            .map(|from| from.rsplit(['<', ' ']).next().unwrap_or(from).trim_end_matches('>'))
            .expect("a From field");
        let (sent, output) = send_raw(&format!("{}:2525", self.appliance.mail_ip), from, address, raw);
        assert!(sent, "inbound delivery to {address} failed:\n{output}");
    }

    /// Mail a mailbox sends: `raw` submitted as mailbox `index` to mailbox `to` (swaks to the
    /// submission port); the appliance files the Sent copy itself.
    fn submit(&self, index: usize, to: usize, raw: &str) {
        let (from, password) = &self.mailboxes[index];
        let recipient = &self.mailboxes[to].0;
        let raw = raw.strip_suffix("\r\n").unwrap_or(raw);
        let (sent, output) = submit_raw(&self.appliance.smtp_submission, (from, password), recipient, raw);
        assert!(sent, "submission from {from} failed:\n{output}");
    }

    /// Moves the appliance's clock forward to the next 15th of a month, 12:00 UTC; returns it.
    fn clock_to_next_fifteenth(&self) -> i64 {
        let now = self.appliance.advance_clock(0);
        let today = chrono::DateTime::from_timestamp(now, 0).expect("a time").date_naive();
        let noon = |day: chrono::NaiveDate| day.and_hms_opt(12, 0, 0).expect("noon").and_utc().timestamp();
        let this_month = today.with_day(15).expect("a 15th");
        let next = if noon(this_month) > now {
            this_month
        } else {
            this_month.checked_add_months(chrono::Months::new(1)).expect("next month")
        };
        self.appliance.advance_clock(noon(next) - now)
    }

    /// (uid, flags) of a mailbox's folder, by UID.
    fn stored(&self, address: &str, folder: &str) -> Vec<(i64, String)> {
        let db = self.db();
        let mut stmt = db
            .prepare(
                "SELECT m.uid, m.flags FROM mail m JOIN folders f ON f.id = m.folder_id \
                 JOIN mailboxes b ON b.id = f.mailbox_id WHERE b.address = ?1 AND f.name = ?2 ORDER BY m.uid",
            )
            .expect("prepare");
        stmt.query_map((address, folder), |row| Ok((row.get(0)?, row.get(1)?)))
            .expect("query")
            .collect::<Result<_, _>>()
            .expect("rows")
    }

    /// The three INBOX messages every imaplib run starts with, delivered through the MX 22 days
    /// apart, and a message mailbox `index` submits to mailbox `colleague` (its Sent copy is the
    /// appliance's). Returns the day of the first message (`15-Jan-2027`, as INTERNALDATE
    /// shows it) and a day between the first and the second.
    fn seed(&self, index: usize, colleague: usize) -> (String, String) {
        let address = self.mailboxes[index].0.clone();
        let first = self.clock_to_next_fifteenth();
        self.deliver(&address, &simple_message());
        self.appliance.advance_clock(22 * DAY);
        self.deliver(&address, &multipart_message());
        self.appliance.advance_clock(22 * DAY);
        self.deliver(
            &address,
            "From: ops@vendor.test\r\nTo: team@grove-imap.test\r\nSubject: Invoice 42\r\n\
             Date: Sun, 1 Mar 2026 09:00:00 +0000\r\nMessage-ID: <inv-42@vendor.test>\r\n\r\nPlease pay.\r\n",
        );
        self.submit(index, colleague, &sent_message(&address));
        let day = |at: i64| chrono::DateTime::from_timestamp(at, 0).expect("a time").format("%d-%b-%Y").to_string();
        (day(first), day(first + 11 * DAY))
    }

    /// Runs a Python client script with the connection details of mailbox `index` in its env.
    fn python(&self, name: &str, script: &str, index: usize, extra: &[(&str, String)]) -> String {
        let (user, password) = &self.mailboxes[index];
        let mut env = vec![
            ("IMAP_HOST", self.host()),
            ("IMAP_PORT", IMAP_PORT.to_string()),
            ("IMAPS_PORT", IMAPS_PORT.to_string()),
            ("IMAP_USER", user.clone()),
            ("IMAP_PASS", password.clone()),
        ];
        env.extend(extra.iter().map(|(k, v)| (*k, v.clone())));
        run_python(self.appliance.dir.path(), name, script, &env)
    }
}

fn run_ok(appliance: &Appliance, args: &[&str], stdin: Option<&str>) -> String {
    let output = appliance.cli(args, stdin);
    assert!(output.status.success(), "{args:?}: {}", String::from_utf8_lossy(&output.stderr));
    String::from_utf8(output.stdout).expect("utf-8 output")
}

/// Waits until the appliance printed its IMAP listeners (they start after SMTP's).
fn wait_for_listener(appliance: &Appliance) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while Instant::now() < deadline {
        if std::net::TcpStream::connect((appliance.mail_ip, IMAPS_PORT)).is_ok() {
            return;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    panic!("IMAP did not start listening on {}:{IMAPS_PORT}", appliance.mail_ip);
}

/// Runs `script` with python3 (killed after [`SCRIPT_LIMIT`]) and returns its output; fails the
/// test when the script fails.
fn run_python(dir: &Path, name: &str, script: &str, env: &[(&str, String)]) -> String {
    let path: PathBuf = dir.join(name);
    std::fs::write(&path, script).expect("write script");
    let mut command = Command::new("python3");
    command.arg(&path).stdout(Stdio::piped()).stderr(Stdio::piped());
    for (key, value) in env {
        command.env(key, value);
    }
    let mut child = command.spawn().expect("run python3");
    let started = Instant::now();
    while child.try_wait().expect("wait").is_none() {
        if started.elapsed() > SCRIPT_LIMIT {
            let _ = child.kill();
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let output = child.wait_with_output().expect("output");
    let (stdout, stderr) = (String::from_utf8_lossy(&output.stdout), String::from_utf8_lossy(&output.stderr));
    println!("--- {name} stdout ---\n{stdout}\n--- {name} stderr ---\n{stderr}");
    assert!(output.status.success(), "{name} failed:\n{stdout}\n{stderr}");
    stdout.into_owned()
}

fn simple_message() -> String {
    "From: =?utf-8?q?Zo=C3=AB_Park?= <zoe@prospect.test>\r\nTo: team@grove-imap.test\r\n\
     Subject: Quarterly plan\r\nDate: Sat, 10 Jan 2026 12:00:00 +0000\r\nMessage-ID: <plan-1@prospect.test>\r\n\r\n\
     See the numbers attached.\r\n"
        .to_string()
}

fn multipart_message() -> String {
    "From: Lead <lead@prospect.test>\r\nTo: team@grove-imap.test\r\nSubject: Re: pricing\r\n\
     Date: Sun, 1 Feb 2026 08:30:00 +0000\r\nMessage-ID: <pricing-2@prospect.test>\r\nMIME-Version: 1.0\r\n\
     Content-Type: multipart/mixed; boundary=\"sep\"\r\n\r\n--sep\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n\
     Sounds good, send the contract.\r\n--sep\r\nContent-Type: application/pdf; name=\"contract.pdf\"\r\n\
     Content-Disposition: attachment; filename=\"contract.pdf\"\r\nContent-Transfer-Encoding: base64\r\n\r\n\
     JVBERi0xLjQKJcfsj6IK\r\n--sep--\r\n"
        .to_string()
}

/// What mailbox `from` sends (to a colleague; the To field names a prospect).
fn sent_message(from: &str) -> String {
    format!(
        "From: {from}\r\nTo: lead@prospect.test\r\nSubject: Contract\r\n\
         Date: Sun, 1 Mar 2026 10:00:00 +0000\r\nMessage-ID: <sent-1@grove-imap.test>\r\n\r\nHere it is.\r\n"
    )
}

/// The imaplib session every mode runs; asserts as it goes and prints DONE.
const IMAPLIB_FLOW: &str = r#"
import imaplib, os, re, ssl, sys

host, user, pw = os.environ['IMAP_HOST'], os.environ['IMAP_USER'], os.environ['IMAP_PASS']
ctx = ssl.create_default_context()
ctx.check_hostname = False
ctx.verify_mode = ssl.CERT_NONE

def connect():
    if os.environ['MODE'] == 'tls':
        return imaplib.IMAP4_SSL(host, int(os.environ['IMAPS_PORT']), ssl_context=ctx)
    m = imaplib.IMAP4(host, int(os.environ['IMAP_PORT']))
    assert 'LOGINDISABLED' in m.capabilities and 'STARTTLS' in m.capabilities, m.capabilities
    m.starttls(ssl_context=ctx)
    assert 'AUTH=PLAIN' in m.capabilities, m.capabilities
    return m

def ok(result):
    typ, data = result
    assert typ == 'OK', result
    return data

def joined(data):
    out = b''
    for item in data:
        if isinstance(item, tuple):
            out += item[0] + item[1]
        elif item is not None:
            out += item
    return out.decode('utf-8', 'replace')

M = connect()
ok(M.login(user, pw))
for cap in ['IDLE', 'MOVE', 'UIDPLUS', 'SPECIAL-USE', 'LITERAL+', 'NAMESPACE', 'ID']:
    assert cap in M.capabilities, (cap, M.capabilities)

# LIST shows the special-use attributes (RFC 6154).
listed = [line.decode() for line in ok(M.list())]
def attrs(name):
    for line in listed:
        if line.endswith(' ' + name) or line.endswith(' "' + name + '"'):
            return line
    raise AssertionError(f'{name} not listed: {listed}')
assert '\\Junk' in attrs('Spam'), listed
assert '\\Sent' in attrs('Sent'), listed
assert '\\Trash' in attrs('Trash'), listed
assert '\\Drafts' in attrs('Drafts'), listed
attrs('INBOX')

# SELECT reports what RFC 3501 asks for.
assert ok(M.select('INBOX')) == [b'3']
assert M.untagged_responses.get('UIDVALIDITY') and M.untagged_responses.get('UIDNEXT'), M.untagged_responses
assert M.untagged_responses.get('PERMANENTFLAGS'), M.untagged_responses

# FETCH: peeks leave \Seen alone; RFC822 sets it.
headers = joined(ok(M.fetch('2', '(BODY.PEEK[HEADER.FIELDS (SUBJECT FROM)])')))
assert 'Subject: Re: pricing\r\n' in headers and 'From: Lead <lead@prospect.test>\r\n' in headers, headers
assert 'Date:' not in headers, headers
structure = joined(ok(M.fetch('2', '(FLAGS BODYSTRUCTURE)')))
assert '\\Seen' not in structure, structure
assert '"MIXED"' in structure and '"APPLICATION" "PDF"' in structure and '"TEXT" "PLAIN"' in structure, structure
assert '"ATTACHMENT" ("FILENAME" "contract.pdf")' in structure, structure
envelope = joined(ok(M.fetch('1', '(ENVELOPE INTERNALDATE RFC822.SIZE UID)')))
assert '"Quarterly plan"' in envelope and '"zoe" "prospect.test"' in envelope, envelope
assert '"<plan-1@prospect.test>"' in envelope and f'INTERNALDATE "{os.environ["FIRST_DAY"]} 12:00:' in envelope, envelope
part = joined(ok(M.fetch('2', '(BODY.PEEK[2]<0.8>)')))
assert 'JVBERi0x' in part and 'BODY[2]<0>' in part, part
text = joined(ok(M.fetch('2', '(BODY.PEEK[1])')))
assert 'Sounds good, send the contract.' in text, text
raw = ok(M.fetch('1', '(RFC822)'))[0][1]
# The message as sent, whole, after the trace fields the MX put on top.
sent_first = open(os.environ['FIRST_FILE'], 'rb').read()
assert raw.endswith(sent_first) and raw.endswith(b'See the numbers attached.\r\n'), raw
trace = raw[:-len(sent_first)].decode()
assert trace.startswith('Return-Path: <zoe@prospect.test>\r\n'), trace
assert all(re.match(r'(Return-Path|Received|Authentication-Results): |[ \t]', line)
           for line in trace.split('\r\n')[:-1]), trace
assert '\\Seen' in joined(ok(M.fetch('1', '(FLAGS)')))

# SEARCH
assert ok(M.search(None, 'UNSEEN')) == [b'2 3']
assert ok(M.search(None, 'FROM', 'lead@prospect.test')) == [b'2']
M.literal = 'Zoë'.encode('utf-8')
assert ok(M.search('UTF-8', 'FROM')) == [b'1']
assert ok(M.search(None, 'SUBJECT', 'invoice')) == [b'3']
assert ok(M.search(None, 'SINCE', os.environ['BETWEEN_DAY'])) == [b'2 3']
assert ok(M.search(None, 'BEFORE', os.environ['BETWEEN_DAY'])) == [b'1']
assert ok(M.search(None, 'OR', 'SUBJECT', 'invoice', 'FROM', 'zoe')) == [b'1 3']
assert ok(M.search(None, 'NOT', 'SEEN', 'BODY', 'contract')) == [b'2']
assert ok(M.uid('SEARCH', 'UID', '2:*')) == [b'2 3']
assert ok(M.search(None, '2:3', 'UNSEEN')) == [b'2 3']

# STORE
stored = joined(ok(M.store('3', '+FLAGS', '(\\Seen \\Flagged)')))
assert '\\Seen' in stored and '\\Flagged' in stored, stored
assert ok(M.search(None, 'FLAGGED')) == [b'3']
ok(M.store('3', '-FLAGS.SILENT', '(\\Flagged)'))
assert ok(M.search(None, 'FLAGGED')) == [b'']

# UID MOVE to Spam and back (RFC 6851).
ok(M.uid('MOVE', '2', 'Spam'))
assert ok(M.select('INBOX')) == [b'2']
# A UID that was just moved is no error: no output.
assert ok(M.uid('STORE', '2', '+FLAGS', '(\\Seen)')) == [None]
assert ok(M.uid('FETCH', '2', '(FLAGS)')) == [None]
assert ok(M.select('Spam')) == [b'1']
spam = joined(ok(M.uid('FETCH', '1:*', '(UID BODY.PEEK[HEADER.FIELDS (SUBJECT)])')))
assert 'Re: pricing' in spam, spam
ok(M.uid('MOVE', '1', 'INBOX'))
assert ok(M.select('Spam')) == [b'0']
assert ok(M.select('INBOX')) == [b'3']

# COPY answers COPYUID (UIDPLUS).
copied = ok(M.copy('1', 'Trash'))
assert re.search(rb'\[COPYUID \d+ \d+ 1\]', copied[0]), copied
assert b'MESSAGES 1' in ok(M.status('Trash', '(MESSAGES UNSEEN UIDNEXT UIDVALIDITY)'))[0]

# Sequence numbers stay put while another session expunges, until NOOP says so.
other = connect()
ok(other.authenticate('PLAIN', lambda _: f'\0{user}\0{pw}'.encode()))
ok(other.select('INBOX'))
ok(other.store('1', '+FLAGS', '(\\Deleted)'))
assert ok(other.expunge()) == [b'1']
other.logout()
listed_uids = joined(ok(M.fetch('1:*', '(UID)')))
assert 'EXPUNGE' not in M.untagged_responses, M.untagged_responses
assert listed_uids.count('UID') == 2, listed_uids
ok(M.noop())
assert M.untagged_responses.get('EXPUNGE') == [b'1'], M.untagged_responses
assert ok(M.select('INBOX')) == [b'2']

# Delete + EXPUNGE in this session.
ok(M.store('1', '+FLAGS', '(\\Deleted)'))
assert ok(M.expunge()) == [b'1']
assert ok(M.select('INBOX')) == [b'1']

# The appliance's own Sent copy is seen: what the mailbox sent is not unread.
ok(M.select('Sent', readonly=True))
flags = joined(ok(M.fetch('1', '(FLAGS)')))
assert '\\Seen' in flags, flags
ok(M.select('INBOX'))

# APPEND to Sent: the appliance's own copy is not duplicated; a new message is added.
sent = open(os.environ['SENT_FILE'], 'rb').read()
appended = ok(M.append('Sent', '(\\Seen)', None, sent))
assert re.search(rb'\[APPENDUID \d+ 1\]', appended[0]), appended
assert b'MESSAGES 1' in ok(M.status('Sent', '(MESSAGES)'))[0]
appended = ok(M.append('Sent', '(\\Seen)', '"01-Mar-2026 10:00:00 +0000"', b'Subject: new\r\nMessage-ID: <new@x>\r\n\r\nhi\r\n'))
assert re.search(rb'\[APPENDUID \d+ 2\]', appended[0]), appended
assert b'MESSAGES 2' in ok(M.status('Sent', '(MESSAGES)'))[0]

# Folder management.
ok(M.create('Projects/2026'))
assert any('Projects/2026' in line.decode() for line in ok(M.list('""', 'Projects/%')))
ok(M.rename('Projects/2026', 'Archive'))
ok(M.delete('Archive'))
assert M.delete('Spam')[0] == 'NO'
ok(M.close())
M.logout()
print('DONE')
"#;

#[test]
fn imaplib_works_over_implicit_tls_and_starttls() {
    let Some(fixture) = Fixture::start(3) else { return };
    let first_file = fixture.appliance.dir.path().join("first.eml");
    std::fs::write(&first_file, simple_message()).expect("write the first message");
    for (index, mode) in [(0, "tls"), (1, "starttls")] {
        let address = fixture.mailboxes[index].0.clone();
        let (first_day, between) = fixture.seed(index, 2);
        let sent_file = fixture.appliance.dir.path().join(format!("sent-{mode}.eml"));
        std::fs::write(&sent_file, sent_message(&address)).expect("write what the client saved as sent");
        let extra = [
            ("MODE", mode.to_string()),
            ("SENT_FILE", sent_file.display().to_string()),
            ("FIRST_FILE", first_file.display().to_string()),
            ("FIRST_DAY", first_day),
            ("BETWEEN_DAY", between),
        ];
        let output = fixture.python(&format!("imaplib_{mode}.py"), IMAPLIB_FLOW, index, &extra);
        assert!(output.contains("DONE"), "{output}");
        // The store agrees with what the client saw.
        let inbox = fixture.stored(&address, "INBOX");
        assert_eq!(inbox.len(), 1, "{inbox:?}");
        assert_eq!(fixture.stored(&address, "Sent").len(), 2);
        assert_eq!(fixture.stored(&address, "Trash").len(), 1);
        assert!(fixture.stored(&address, "Spam").is_empty());
    }
}

/// IDLE until woken; prints the seconds it took. `WAKE` says what wakes it.
const IDLE_CLIENT: &str = r#"
import imaplib, os, ssl, subprocess, time

ctx = ssl.create_default_context()
ctx.check_hostname = False
ctx.verify_mode = ssl.CERT_NONE
host, user, pw = os.environ['IMAP_HOST'], os.environ['IMAP_USER'], os.environ['IMAP_PASS']
M = imaplib.IMAP4_SSL(host, int(os.environ['IMAPS_PORT']), ssl_context=ctx)
M.login(user, pw)
typ, data = M.select('INBOX')
before = int(data[0])
tag = M._new_tag().decode()
M.send(f'{tag} IDLE\r\n'.encode())
assert M.readline().startswith(b'+'), 'IDLE continuation'
if os.environ['WAKE'] == 'swaks':
    result = subprocess.run(os.environ['SWAKS'].split('\x1f'), capture_output=True, timeout=60)
    assert result.returncode == 0, result.stdout + result.stderr
else:
    other = imaplib.IMAP4_SSL(host, int(os.environ['IMAPS_PORT']), ssl_context=ctx)
    other.login(user, pw)
    assert other.append('INBOX', None, None, b'Subject: appended while idling\r\n\r\nhi\r\n')[0] == 'OK'
    other.logout()
woken = time.monotonic()
M.sock.settimeout(5)
line = M.readline()
elapsed = time.monotonic() - woken
assert line == f'* {before + 1} EXISTS\r\n'.encode(), line
# The new message is \Recent here (what an earlier session was told of is not).
recent = M.readline()
assert recent == b'* 1 RECENT\r\n', recent
M.send(b'DONE\r\n')
done = M.readline()
assert done.startswith(f'{tag} OK'.encode()), done
M.logout()
print(f'WOKEN {elapsed:.3f}')
"#;

fn woken_after(output: &str) -> f64 {
    output
        .lines()
        .find_map(|line| line.strip_prefix("WOKEN "))
        .and_then(|seconds| seconds.trim().parse().ok())
        .unwrap_or_else(|| panic!("no WOKEN line in {output}"))
}

/// The appliance runs with IDLE's periodic re-check off, so a wake can only come from the
/// change signal sent after the commit.
#[test]
fn idle_is_woken_within_a_second() {
    let fixture = Fixture::start_with(2, &[("INBOXGROVE_IDLE_RECHECK_SECS", "0")]);
    let output = fixture.python("idle_append.py", IDLE_CLIENT, 1, &[("WAKE", "append".into())]);
    assert!(woken_after(&output) < 1.0, "{output}");
    if !common::have_peer("swaks") {
        return;
    }
    let ((sender, sender_password), (recipient, _)) = (&fixture.mailboxes[0], &fixture.mailboxes[1]);
    let (server, port) = fixture.appliance.smtp_submission.rsplit_once(':').expect("submission address");
    let swaks = [
        "swaks",
        "--server",
        server,
        "--port",
        port,
        "--tls",
        "--auth",
        "PLAIN",
        "--auth-user",
        sender,
        "--auth-password",
        sender_password,
        "--from",
        sender,
        "--to",
        recipient,
        "--header",
        "Subject: delivered while idling",
        "--body",
        "Wake up.",
    ]
    .join("\x1f");
    let output = fixture.python("idle_swaks.py", IDLE_CLIENT, 1, &[("WAKE", "swaks".into()), ("SWAKS", swaks)]);
    assert!(woken_after(&output) < 1.0, "{output}");
    let inbox = fixture.stored(recipient, "INBOX");
    assert_eq!(inbox.len(), 2, "the append and the delivery: {inbox:?}");
}

/// Bad input over raw sockets; asserts each answer and prints DONE.
const BAD_INPUT: &str = r#"
import os, re, socket, ssl, time

host, user, pw, other_pw = os.environ['IMAP_HOST'], os.environ['IMAP_USER'], os.environ['IMAP_PASS'], os.environ['OTHER_PASS']
ctx = ssl.create_default_context()
ctx.check_hostname = False
ctx.verify_mode = ssl.CERT_NONE

class Client:
    def __init__(self, tls=True):
        sock = socket.create_connection((host, int(os.environ['IMAPS_PORT' if tls else 'IMAP_PORT'])), timeout=40)
        self.sock = ctx.wrap_socket(sock) if tls else sock
        self.file = self.sock.makefile('rb')
        greeting = self.line()
        assert greeting.startswith(b'* OK'), greeting
    def line(self):
        return self.file.readline()
    def send(self, data):
        self.sock.sendall(data)
    def ask(self, data):
        self.send(data)
        return self.line()

plain = Client(tls=False)
caps = plain.ask(b'a CAPABILITY\r\n')
assert b'LOGINDISABLED' in caps and b'STARTTLS' in caps and b'AUTH=PLAIN' not in caps, caps
assert plain.line().startswith(b'a OK')
assert plain.ask(f'b LOGIN {user} {pw}\r\n'.encode()).startswith(b'b NO [PRIVACYREQUIRED]')
assert plain.ask(b'c SELECT INBOX\r\n').startswith(b'c BAD')
assert plain.ask(b'd FETCH 1 FLAGS\r\n').startswith(b'd BAD')

c = Client()
assert c.ask(b'a LIST "" *\r\n').startswith(b'a BAD'), 'LIST before login'
assert c.ask(f'b LOGIN {user} {other_pw}\r\n'.encode()) == b'b NO [AUTHENTICATIONFAILED] Authentication failed\r\n'
assert c.ask(f'c LOGIN {user} {pw}\r\n'.encode()).startswith(b'c OK')
c.send(b'd SELECT INBOX\r\n')
selected = []
while not (line := c.line()).startswith(b'd '):
    assert line.startswith(b'* '), (line, selected)
    selected.append(line)
assert line == b'd OK [READ-WRITE] SELECT completed\r\n', (line, selected)
assert selected[:2] == [b'* FLAGS (\\Answered \\Flagged \\Deleted \\Seen \\Draft)\r\n',
                        b'* OK [PERMANENTFLAGS (\\Answered \\Flagged \\Deleted \\Seen \\Draft \\*)] Flags permitted\r\n'], selected
assert b'* 1 EXISTS\r\n' in selected and b'* 1 RECENT\r\n' in selected, selected
assert b'* OK [UNSEEN 1] First unseen\r\n' in selected, selected
assert any(re.match(rb'\* OK \[UIDVALIDITY \d+\] ', l) for l in selected), selected
assert b'* OK [UIDNEXT 2] Predicted next UID\r\n' in selected, selected
# A literal larger than allowed is refused before the client sends it.
assert c.ask(b'e APPEND INBOX {999999999}\r\n').startswith(b'e NO [TOOBIG]')
assert c.ask(b'f NOOP\r\n').startswith(b'f OK')
# Garbage is BAD, and the session goes on.
assert c.ask(b'this is not imap\r\n').startswith(b'this BAD')
assert c.ask(b'\r\n').startswith(b'* BAD')
assert c.ask(b'g FETCH 1:* (FLAGS\r\n').startswith(b'g BAD')
assert c.ask(b'h UID FETCH 4000000000 (FLAGS)\r\n').startswith(b'h OK')
# An oversize line ends the session.
assert c.ask(b'i NOOP ' + b'x' * 200000 + b'\r\n').startswith(b'* BYE'), 'oversize line'

# A literal shorter than announced times out cleanly; nothing is stored.
c = Client()
assert c.ask(f'a LOGIN {user} {pw}\r\n'.encode()).startswith(b'a OK')
assert c.ask(b'b APPEND INBOX {200}\r\n').startswith(b'+')
c.send(b'Subject: short\r\n\r\nonly this\r\n')
started = time.monotonic()
bye = c.line()
assert bye.startswith(b'* BYE'), bye
assert time.monotonic() - started < 35

# Many errors end the session.
c = Client()
for n in range(10):
    assert c.ask(f'z{n} BOGUS\r\n'.encode()).startswith(f'z{n} BAD'.encode())
assert c.line().startswith(b'* BYE')

# Still serving: a fresh login works and the mailbox is untouched.
c = Client()
assert c.ask(f'a LOGIN {user} {pw}\r\n'.encode()).startswith(b'a OK')
assert c.ask(b'b STATUS INBOX (MESSAGES)\r\n') == b'* STATUS INBOX (MESSAGES 1)\r\n'
print('DONE')
"#;

#[test]
fn bad_input_is_answered_and_nothing_is_half_stored() {
    let Some(fixture) = Fixture::start(2) else { return };
    let address = fixture.mailboxes[1].0.clone();
    fixture.deliver(&address, &simple_message());
    let other_password = fixture.mailboxes[0].1.clone();
    let output = fixture.python("bad_input.py", BAD_INPUT, 1, &[("OTHER_PASS", other_password)]);
    assert!(output.contains("DONE"), "{output}");
    assert_eq!(fixture.stored(&address, "INBOX").len(), 1, "the refused APPENDs stored nothing");
    let mut log = String::new();
    while let Ok(line) = fixture.appliance.output.try_recv() {
        log.push_str(&line);
    }
    assert!(!log.contains("panicked"), "{log}");
}

/// Runs mbsync with `config`; fails the test on an error.
fn mbsync(dir: &Path, config: &Path) -> String {
    let output = Command::new("mbsync")
        .arg("-c")
        .arg(config)
        .arg("-a")
        .current_dir(dir)
        .stdin(Stdio::null())
        .output()
        .expect("run mbsync");
    let (stdout, stderr) = (String::from_utf8_lossy(&output.stdout), String::from_utf8_lossy(&output.stderr));
    println!("--- mbsync ---\n{stdout}\n{stderr}");
    assert!(output.status.success(), "mbsync failed:\n{stdout}\n{stderr}");
    assert!(!stderr.to_lowercase().contains("error"), "{stderr}");
    format!("{stdout}{stderr}")
}

/// The message files of a Maildir folder (new and cur).
fn maildir_files(folder: &Path) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = ["new", "cur"]
        .iter()
        .filter_map(|sub| std::fs::read_dir(folder.join(sub)).ok())
        .flat_map(|entries| entries.filter_map(Result::ok).map(|entry| entry.path()))
        .collect();
    files.sort();
    files
}

#[test]
fn mbsync_syncs_to_a_maildir_and_back() {
    if !common::have_peer("mbsync") {
        return;
    }
    let Some(fixture) = Fixture::start(2) else { return };
    let (address, password) = fixture.mailboxes[0].clone();
    fixture.seed(0, 1);
    let dir = fixture.appliance.dir.path();
    let maildir = dir.join("maildir");
    std::fs::create_dir_all(&maildir).expect("maildir");
    let config = dir.join("mbsyncrc");
    let mut file = std::fs::File::create(&config).expect("config");
    write!(
        file,
        "IMAPAccount grove\nHost {host}\nPort {IMAPS_PORT}\nUser {address}\nPass {password}\nSSLType IMAPS\n\
         CertificateFile {cert}\n\nIMAPStore remote\nAccount grove\n\nMaildirStore local\nPath {maildir}/\n\
         Inbox {maildir}/INBOX\nSubFolders Verbatim\n\nChannel grove\nFar :remote:\nNear :local:\nPatterns *\n\
         Create Both\nExpunge Both\nSyncState *\nSync All\n",
        host = fixture.host(),
        cert = fixture.appliance.data_dir().join("tls/cert.pem").display(),
        maildir = maildir.display(),
    )
    .expect("write config");
    drop(file);

    mbsync(dir, &config);
    let inbox = maildir_files(&maildir.join("INBOX"));
    assert_eq!(inbox.len(), 3, "{inbox:?}");
    assert_eq!(maildir_files(&maildir.join("Sent")).len(), 1);
    assert!(maildir.join("Spam").is_dir() && maildir.join("Trash").is_dir());

    // Flag one message and trash another locally; the next sync carries both to the server.
    let flag_target = inbox[0].clone();
    let trash_target = inbox[1].clone();
    let renamed = |path: &Path, flags: &str| {
        let name = path.file_name().and_then(|n| n.to_str()).expect("name");
        let base = name.split(":2,").next().expect("base");
        path.parent().and_then(Path::parent).expect("folder").join("cur").join(format!("{base}:2,{flags}"))
    };
    std::fs::rename(&flag_target, renamed(&flag_target, "F")).expect("flag");
    std::fs::rename(&trash_target, renamed(&trash_target, "ST")).expect("trash");
    // Maildir notices changes by mtime; give it a distinct second.
    std::thread::sleep(Duration::from_millis(1100));
    mbsync(dir, &config);

    let stored = fixture.stored(&address, "INBOX");
    assert_eq!(stored.len(), 2, "the trashed message was expunged on the server: {stored:?}");
    assert_eq!(stored.iter().filter(|(_, flags)| flags.contains("\\Flagged")).count(), 1, "{stored:?}");
    assert_eq!(maildir_files(&maildir.join("INBOX")).len(), 2);
}

/// Submits a message to a recipient the destination refuses (smtplib, STARTTLS + AUTH), waits
/// (bounded, waking the queue through the test clock) for the DSN in the sender's INBOX, then
/// reads it over IMAP: SEARCH, BODYSTRUCTURE (parsed here as an IMAP list), and each part.
const DSN_OVER_IMAP: &str = r#"
import imaplib, os, smtplib, ssl, time, urllib.request

host, user, pw = os.environ['IMAP_HOST'], os.environ['IMAP_USER'], os.environ['IMAP_PASS']
ctx = ssl.create_default_context()
ctx.check_hostname = False
ctx.verify_mode = ssl.CERT_NONE

def ok(result):
    typ, data = result
    assert typ == 'OK', result
    return data

def joined(data):
    out = b''
    for item in data:
        if isinstance(item, tuple):
            out += item[0] + item[1]
        elif item is not None:
            out += item
    return out.decode('utf-8', 'replace')

def parse_list(text):
    """Parses an IMAP parenthesized list (atoms, quoted strings, literals, NIL) into lists."""
    pos = 0
    def skip():
        nonlocal pos
        while pos < len(text) and text[pos] == ' ':
            pos += 1
    def value():
        nonlocal pos
        skip()
        c = text[pos]
        if c == '(':
            pos += 1
            items = []
            while True:
                skip()
                if text[pos] == ')':
                    pos += 1
                    return items
                items.append(value())
        if c == '"':
            pos += 1
            out = ''
            while text[pos] != '"':
                if text[pos] == '\\':
                    pos += 1
                out += text[pos]
                pos += 1
            pos += 1
            return out
        if c == '{':
            end = text.index('}', pos)
            size = int(text[pos + 1:end])
            start = end + 1
            pos = start + size
            return text[start:pos]
        start = pos
        while pos < len(text) and text[pos] not in ' ()':
            pos += 1
        atom = text[start:pos]
        return None if atom.upper() == 'NIL' else atom
    return value()

# Submit like a mail client: STARTTLS, AUTH, one refused recipient.
sub_host, sub_port = os.environ['SUBMISSION'].rsplit(':', 1)
smtp = smtplib.SMTP(sub_host, int(sub_port), timeout=30)
smtp.starttls(context=ctx)
smtp.login(user, pw)
original = (f'From: Grove Sender <{user}>\r\nTo: <reject@dest.test>\r\nSubject: Quarterly numbers\r\n'
            'Date: Mon, 23 Nov 2026 10:00:00 +0000\r\nMessage-ID: <bounce-me-1@grove-imap.test>\r\n'
            'MIME-Version: 1.0\r\nContent-Type: text/plain; charset=us-ascii\r\n\r\nHello there.\r\n')
refused = smtp.sendmail(user, ['reject@dest.test'], original)
assert refused == {}, refused
smtp.quit()

# Wait for the DSN: wake the queue through the test clock, poll STATUS.
M = imaplib.IMAP4_SSL(host, int(os.environ['IMAPS_PORT']), ssl_context=ctx)
ok(M.login(user, pw))
deadline = time.monotonic() + 60
while True:
    request = urllib.request.Request(os.environ['CLOCK_URL'], data=b'0', method='POST',
                                     headers={'Content-Type': 'text/plain'})
    urllib.request.urlopen(request, timeout=10).read()
    status = ok(M.status('INBOX', '(MESSAGES RECENT)'))[0]
    if b'MESSAGES 1' in status:
        break
    assert time.monotonic() < deadline, ('no DSN in INBOX', status)
    time.sleep(0.25)
assert b'RECENT 1' in status, status

# The first session to select the folder sees the DSN as \Recent; later ones do not.
assert ok(M.select('INBOX')) == [b'1']
assert M.untagged_responses.get('RECENT') == [b'1'], M.untagged_responses
assert '\\Recent' in joined(ok(M.fetch('1', '(FLAGS)')))
assert ok(M.search(None, 'NEW')) == [b'1']
later = imaplib.IMAP4_SSL(host, int(os.environ['IMAPS_PORT']), ssl_context=ctx)
ok(later.login(user, pw))
assert b'RECENT 0' in ok(later.status('INBOX', '(RECENT)'))[0]
ok(later.select('INBOX'))
assert later.untagged_responses.get('RECENT') == [b'0'], later.untagged_responses
assert '\\Recent' not in joined(ok(later.fetch('1', '(FLAGS)')))
assert ok(later.search(None, 'RECENT')) == [b'']
later.logout()
assert ok(M.search(None, 'SUBJECT', 'Undelivered')) == [b'1']
assert ok(M.search(None, 'FROM', 'MAILER-DAEMON')) == [b'1']
assert ok(M.search(None, 'HEADER', 'Content-Type', 'delivery-status')) == [b'1']
assert ok(M.uid('SEARCH', 'UNSEEN')) == [b'1']

fetched = joined(ok(M.fetch('1', '(BODYSTRUCTURE)')))
structure = parse_list(fetched[fetched.index('(BODYSTRUCTURE ') + len('(BODYSTRUCTURE '):])
print('BODYSTRUCTURE', structure)
parts = [item for item in structure if isinstance(item, list) and item and isinstance(item[0], str)
         and item[0].upper() in ('TEXT', 'MESSAGE', 'APPLICATION')]
assert len(parts) == 3, structure
subtype = structure[3]
assert subtype.upper() == 'REPORT', structure
params = structure[4]
pairs = {params[i].upper(): params[i + 1] for i in range(0, len(params), 2)}
assert pairs.get('REPORT-TYPE', '').lower() == 'delivery-status', pairs
assert [p[0].upper() + '/' + p[1].upper() for p in parts] == \
    ['TEXT/PLAIN', 'MESSAGE/DELIVERY-STATUS', 'TEXT/RFC822-HEADERS'], parts

header = joined(ok(M.fetch('1', '(BODY.PEEK[HEADER])')))
assert 'multipart/report' in header and 'delivery-status' in header, header
status_part = joined(ok(M.fetch('1', '(BODY.PEEK[2])')))
assert 'Final-Recipient: rfc822; reject@dest.test' in status_part, status_part
assert 'Action: failed' in status_part and 'Status: 5.1.1' in status_part, status_part
headers_part = joined(ok(M.fetch('1', '(BODY.PEEK[3])')))
assert 'Message-ID: <bounce-me-1@grove-imap.test>' in headers_part, headers_part
assert 'Subject: Quarterly numbers' in headers_part and 'To: <reject@dest.test>' in headers_part, headers_part
text = joined(ok(M.fetch('1', '(BODY[1])')))
assert 'reject@dest.test' in text, text
assert '\\Seen' in joined(ok(M.fetch('1', '(FLAGS)')))
M.logout()
print('DONE')
"#;

#[test]
fn a_refused_recipient_comes_back_as_a_dsn_read_over_imap() {
    if !(Dns::available() && PostfixMx::available()) {
        return;
    }
    let mx_port = free_port("127.0.0.2");
    let dns = Dns::start(&[Zone::new("dest.test", &["@ MX 10 mx.dest.test.", "mx A 127.0.0.2"])]);
    let mx = PostfixMx::start("127.0.0.2", mx_port, &["dest.test"]);
    let nameservers = format!("[\"{}\"]", dns.nameserver());
    let mx_port_text = mx_port.to_string();
    let env = [
        ("INBOXGROVE_TEST_CLOCK", "1"),
        ("INBOXGROVE_DNS__NAMESERVERS", nameservers.as_str()),
        ("INBOXGROVE_DELIVERY__MX_PORT", mx_port_text.as_str()),
        ("INBOXGROVE_DELIVERY__TIMEOUT", "10s"),
    ];
    let fixture = Fixture::start_with(1, &env);
    let extra = [
        ("SUBMISSION", fixture.appliance.smtp_submission.clone()),
        ("CLOCK_URL", fixture.appliance.url("/_test/clock")),
    ];
    let output = fixture.python("dsn_over_imap.py", DSN_OVER_IMAP, 0, &extra);
    assert!(output.contains("DONE"), "{output}\nPostfix log:\n{}", mx.log());
    assert!(mx.messages().is_empty(), "the refused message was not delivered");
}

/// A raw IMAP client over implicit TLS for scripts that check every untagged line: `Client()`
/// logs in; `run`, `ok` and `no` send one command and return its untagged lines.
const RAW_CLIENT: &str = r#"
import os, re, socket, ssl

host, user, pw = os.environ['IMAP_HOST'], os.environ['IMAP_USER'], os.environ['IMAP_PASS']
ctx = ssl.create_default_context()
ctx.check_hostname = False
ctx.verify_mode = ssl.CERT_NONE

class Client:
    def __init__(self):
        sock = socket.create_connection((host, int(os.environ['IMAPS_PORT'])), timeout=30)
        self.sock = ctx.wrap_socket(sock)
        self.file = self.sock.makefile('rb')
        self.count = 0
        assert self.file.readline().startswith(b'* OK')
        self.ok(f'LOGIN "{user}" "{pw}"')
    def line(self):
        line = self.file.readline()
        match = re.search(rb'\{(\d+)\}\r\n$', line)
        if match:
            line += self.file.read(int(match.group(1)))
            line += self.line()
        return line
    def run(self, command):
        """Sends one command; returns (untagged lines, tagged line), both decoded."""
        self.count += 1
        tag = f't{self.count}'
        self.sock.sendall(tag.encode() + b' ' + (command if isinstance(command, bytes) else command.encode()) + b'\r\n')
        untagged = []
        while True:
            line = self.line().decode('utf-8', 'replace').rstrip('\r\n')
            if line.startswith(tag + ' '):
                return untagged, line[len(tag) + 1:]
            untagged.append(line)
    def ok(self, command):
        untagged, done = self.run(command)
        assert done.startswith('OK'), (command, untagged, done)
        return untagged
    def no(self, command):
        untagged, done = self.run(command)
        assert done.startswith('NO') or done.startswith('BAD'), (command, untagged, done)
        return done

def fetches(lines):
    return [line for line in lines if re.match(r'\* \d+ FETCH', line)]

def unquoted(lines):
    return [line.replace('"', '') for line in lines]

def lsub(client):
    return sorted(line.split(' / ')[1] for line in unquoted(client.ok('LSUB "" "*"')) if line.startswith('* LSUB'))

def literal(text):
    data = text.encode('utf-8')
    return b'{%d+}\r\n' % len(data) + data

"#;

/// \Recent, subscriptions, modified UTF-7 names and the sequence/UID edge cases real clients
/// hit, over raw sockets (so every untagged line can be checked); prints DONE.
const SESSION_STATE: &str = r#"
a, b = Client(), Client()

# \Recent: the first session to select INBOX gets its three messages as \Recent, no other does.
assert 'RECENT 3' in a.ok('STATUS INBOX (MESSAGES RECENT)')[0]
# EXAMINE shows recent mail without claiming it.
examined = b.ok('EXAMINE INBOX')
assert '* 3 RECENT' in examined, examined
selected = a.ok('SELECT INBOX')
assert '* 3 EXISTS' in selected and '* 3 RECENT' in selected, selected
assert '\\Recent' in a.ok('FETCH 1 (FLAGS)')[0]
assert a.ok('SEARCH RECENT') == ['* SEARCH 1 2 3'] and a.ok('SEARCH NEW') == ['* SEARCH 1 2 3']
assert a.ok('SEARCH OLD') == ['* SEARCH']
reselected = b.ok('SELECT INBOX')
assert '* 0 RECENT' in reselected, reselected
assert '\\Recent' not in b.ok('FETCH 1 (FLAGS)')[0]
assert 'RECENT 0' in b.ok('STATUS INBOX (RECENT)')[0]
# \Recent is no flag a client can store.
a.ok('STORE 1 FLAGS (\\Seen)')
assert a.ok('FETCH 1 (FLAGS)') == ['* 1 FETCH (FLAGS (\\Seen \\Recent))']
assert a.ok('SEARCH NEW') == ['* SEARCH 2 3']
# New mail: the session selected read-write when it arrives is told EXISTS and RECENT.
b.ok('UNSELECT')
b.ok(b'APPEND INBOX ' + literal('Subject: arrives later\r\n\r\nhi\r\n'))
noop = a.ok('NOOP')
assert '* 4 EXISTS' in noop and '* 4 RECENT' in noop, noop
assert a.ok('UID SEARCH RECENT') == ['* SEARCH 1 2 3 4']
assert '* 0 RECENT' in b.ok('SELECT INBOX')

# Sequence and UID edge cases.
a.ok('CREATE Empty')
empty = a.ok('SELECT Empty')
assert '* 0 EXISTS' in empty and '* 0 RECENT' in empty, empty
assert a.ok('FETCH 1:* (FLAGS)') == []
assert a.ok('UID FETCH 4294967295:* (FLAGS)') == []
assert a.ok('UID FETCH 1:* (UID)') == []
assert a.ok('SEARCH ALL') == ['* SEARCH']
assert a.ok('UID STORE 1:* +FLAGS (\\Seen)') == []
a.ok('SELECT INBOX')
highest = a.ok('UID FETCH 4294967295:* (UID)')
assert highest == ['* 4 FETCH (UID 4)'], highest
assert a.ok('UID FETCH *:4294967295 (UID)') == ['* 4 FETCH (UID 4)']
# STORE on a UID this session just expunged: no error, no output.
a.ok('STORE 4 +FLAGS (\\Deleted)')
assert a.ok('EXPUNGE') == ['* 4 EXPUNGE']
assert a.ok('UID STORE 4 +FLAGS (\\Seen)') == []
assert a.ok('UID FETCH 4 (FLAGS)') == []
# STORE on a message another session expunged, before this one was told: no error either.
b.ok('STORE 3 +FLAGS (\\Deleted)')
b.ok('EXPUNGE')
stored = a.ok('STORE 3 +FLAGS (\\Flagged)')
assert fetches(stored) == [] and not any('EXPUNGE' in line for line in stored), stored
assert a.ok('FETCH 3 (FLAGS)') == [], 'a vanished message yields nothing, and FETCH may not expunge'
assert a.ok('NOOP') == ['* 3 EXPUNGE']

# SEARCH with CHARSET UTF-8 and non-ASCII literals: an encoded subject, a quoted-printable body.
assert a.ok(b'SEARCH CHARSET UTF-8 SUBJECT ' + literal('grüße')) == ['* SEARCH 2']
assert a.ok(b'UID SEARCH CHARSET UTF-8 BODY ' + literal('Köln')) == ['* SEARCH 2']
assert a.ok(b'SEARCH CHARSET UTF-8 TEXT ' + literal('Zürich')) == ['* SEARCH']
assert 'BADCHARSET' in a.no('SEARCH CHARSET KOI8-R SUBJECT x')

# Modified UTF-7 folder names: stored decoded, encoded on the wire, invalid ones refused.
a.ok('CREATE "Entw&APw-rfe"')
assert unquoted(a.ok('LIST "" "Entw*"')) == ['* LIST (\\HasNoChildren) / Entw&APw-rfe']
assert 'MESSAGES 0' in a.ok('STATUS "Entw&APw-rfe" (MESSAGES)')[0]
a.ok('COPY 1 "Entw&APw-rfe"')
assert '* 1 EXISTS' in a.ok('SELECT "Entw&APw-rfe"')
a.ok('CREATE "Entw&APw-rfe/&ZeVnLIqe-"')
assert unquoted(a.ok('LIST "Entw&APw-rfe/" "%"')) == ['* LIST (\\HasNoChildren) / Entw&APw-rfe/&ZeVnLIqe-']
for bad in ['"Entw&APx-"', '"&AGE-"', '"Entw&APw"', '"&APw-&APw-"']:
    assert 'CANNOT' in a.no('CREATE ' + bad), bad
a.no(b'CREATE ' + literal('Entwürfe'))
assert 'CANNOT' in a.no('SELECT "&AGE-"')
assert 'CANNOT' in a.no('RENAME "Entw&APw-rfe" "x&-&AGE-"')
# A pattern that is not valid modified UTF-7 names no folder: OK, nothing listed.
assert a.ok('LIST "" "&AGE-"') == [] and a.ok('LIST "" "Entw&APx-*"') == []
assert a.ok('LSUB "" "&AGE-"') == [] and a.ok('LSUB "" "*&APw"') == []

# Subscriptions: the special folders by default; SUBSCRIBE and UNSUBSCRIBE are stored.
assert lsub(a) == ['Drafts', 'INBOX', 'Sent', 'Spam', 'Trash'], lsub(a)
a.ok('SUBSCRIBE "Entw&APw-rfe"')
a.ok('UNSUBSCRIBE Trash')
assert lsub(a) == ['Drafts', 'Entw&APw-rfe', 'INBOX', 'Sent', 'Spam'], lsub(a)
assert lsub(b) == lsub(a), 'another session sees the same subscriptions'
assert unquoted(b.ok('LSUB "" "Entw%"')) == ['* LSUB (\\HasChildren) / Entw&APw-rfe']
a.ok('RENAME "Entw&APw-rfe/&ZeVnLIqe-" "Archiv"')
a.ok('SUBSCRIBE Archiv')
a.ok('DELETE Archiv')
assert unquoted(a.ok('LSUB "" "Archiv"')) == ['* LSUB (\\Noselect) / Archiv'], 'a deleted folder stays subscribed'
a.ok('UNSUBSCRIBE Archiv')
assert a.ok('LSUB "" "Archiv"') == []
# RFC 3501 §6.3.9: where % stops above a subscribed name, its parent is answered \Noselect.
a.ok('SUBSCRIBE "Projekte/2026"')
assert '* LSUB (\\Noselect) / Projekte' in unquoted(a.ok('LSUB "" "%"'))
a.ok('LOGOUT')
b.ok('LOGOUT')
print('DONE')
"#;

#[test]
fn recent_subscriptions_utf7_names_and_edge_cases() {
    let Some(fixture) = Fixture::start(1) else { return };
    let address = fixture.mailboxes[0].0.clone();
    fixture.deliver(&address, &simple_message());
    let encoded = "From: a@prospect.test\r\nSubject: =?utf-8?q?Gr=C3=BC=C3=9Fe?=\r\nMIME-Version: 1.0\r\n\
        Content-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\n\
        Viele Gr=C3=BC=C3=9Fe aus K=C3=B6ln\r\n";
    fixture.deliver(&address, encoded);
    fixture.deliver(&address, &multipart_message());
    let output = fixture.python("session_state.py", &format!("{RAW_CLIENT}{SESSION_STATE}"), 0, &[]);
    assert!(output.contains("DONE"), "{output}");
    let names: Vec<String> = {
        let db = fixture.db();
        let mut stmt = db.prepare("SELECT name FROM folders ORDER BY name").expect("prepare");
        stmt.query_map([], |row| row.get(0)).expect("query").collect::<Result<_, _>>().expect("names")
    };
    assert!(names.contains(&"Entwürfe".to_string()), "stored decoded: {names:?}");
    assert!(!names.iter().any(|name| name.contains('&')), "{names:?}");
}

/// Keywords (RFC 3501 §7.2.6), flags stored on a whole set, and ENVELOPE groups, over raw
/// sockets so the order of the untagged lines is checked; prints DONE.
const FLAGS_AND_GROUPS: &str = r#"
SYSTEM = '\\Answered \\Flagged \\Deleted \\Seen \\Draft'

def announced(*keywords):
    """The FLAGS and PERMANENTFLAGS lines announcing these keywords, in this order."""
    listed = ' '.join((SYSTEM,) + keywords)
    return [f'* FLAGS ({listed})', f'* OK [PERMANENTFLAGS ({listed} \\*)] Flags permitted']

a, b = Client(), Client()

# A STORE that brings a keyword the session was not told of announces it before the FETCH.
assert announced() == b.ok('SELECT INBOX')[:2]
stored = b.ok('STORE 1 +FLAGS ($Label1)')
assert stored == announced('$Label1') + ['* 1 FETCH (FLAGS ($Label1 \\Recent))'], stored
# SELECT announces the keywords already in use in the folder.
selected = a.ok('SELECT INBOX')
assert selected[:2] == announced('$Label1'), selected
# Another session's new keyword: announced before the FETCH that reports the change.
stored = a.ok('STORE 2 +FLAGS (Urgent)')
assert stored == announced('$Label1', 'Urgent') + ['* 2 FETCH (FLAGS (Urgent))'], stored
noop = b.ok('NOOP')
assert noop == announced('$Label1', 'Urgent') + ['* 2 FETCH (UID 2 FLAGS (Urgent \\Recent))'], noop
# A keyword already announced (in any case) is not announced again.
assert a.ok('STORE 3 +FLAGS (urgent)') == ['* 3 FETCH (FLAGS (urgent))']
# APPEND with a new keyword into the selected folder: announced before EXISTS and any FETCH.
appended = a.ok(b'APPEND INBOX (Followup) ' + literal('Subject: later\r\n\r\nhi\r\n'))
assert appended[:3] == announced('$Label1', 'Urgent', 'Followup') + ['* 4 EXISTS'], appended
assert a.ok('FETCH 4 (FLAGS)') == ['* 4 FETCH (FLAGS (Followup \\Recent))']
# EXAMINE lists the keywords in use and permits none.
examined = Client().ok('EXAMINE INBOX')
assert examined[:2] == [f'* FLAGS ({SYSTEM} $Label1 Urgent Followup)', '* OK [PERMANENTFLAGS ()] Flags permitted'], examined

# NIL, in any case, is refused as a keyword and nothing is stored.
for nil in ['NIL', 'nil', 'Nil']:
    a.no(f'STORE 1 +FLAGS ({nil})')
    a.no(f'UID STORE 1:* FLAGS (\\Seen {nil})')
    a.no(f'APPEND INBOX ({nil}) '.encode() + literal('Subject: x\r\n\r\nhi\r\n'))
assert 'MESSAGES 4' in a.ok('STATUS INBOX (MESSAGES)')[0]
assert not any('NIL' in line.upper() for line in a.ok('FETCH 1:* (FLAGS)')), 'no NIL keyword stored'

# A STORE on a set sets the flags of every message in it, as the next FETCH and others see.
stored = a.ok('STORE 1:3 FLAGS (\\Answered)')
assert fetches(stored) == [f'* {n} FETCH (FLAGS (\\Answered))' for n in (1, 2, 3)], stored
assert a.ok('FETCH 1:3 (FLAGS)') == [f'* {n} FETCH (FLAGS (\\Answered))' for n in (1, 2, 3)]
assert fetches(b.ok('NOOP'))[:3] == [f'* {n} FETCH (UID {n} FLAGS (\\Answered \\Recent))' for n in (1, 2, 3)]
assert b.ok('FETCH 1:3 (FLAGS)') == [f'* {n} FETCH (FLAGS (\\Answered \\Recent))' for n in (1, 2, 3)]
# ... each from the flags it has in the store, not from what this session last heard of it.
b.ok('STORE 2 FLAGS ()')
b.ok('STORE 3 +FLAGS (\\Flagged)')
stored = a.ok('STORE 1:3 FLAGS (\\Answered)')
assert fetches(stored) == [f'* {n} FETCH (FLAGS (\\Answered))' for n in (1, 2, 3)], stored
assert a.ok('FETCH 1:3 (FLAGS)') == [f'* {n} FETCH (FLAGS (\\Answered))' for n in (1, 2, 3)]
b.ok('STORE 3 +FLAGS (\\Flagged)')
stored = a.ok('STORE 1:* +FLAGS.SILENT ($Done)')
assert stored == announced('$Label1', 'Urgent', 'Followup', '$Done') + \
    ['* 3 FETCH (UID 3 FLAGS (\\Answered \\Flagged $Done))'], 'the other session\'s \\Flagged is kept and reported'
assert a.ok('SEARCH KEYWORD $Done') == ['* SEARCH 1 2 3 4']

# ENVELOPE groups (RFC 3501 §7.4.2): a start marker with the name, members, an end marker.
envelope = a.ok('FETCH 3 (ENVELOPE)')[0]
assert '((NIL NIL "undisclosed-recipients" NIL)(NIL NIL NIL NIL))' in envelope, envelope
assert '((NIL NIL "Team" NIL)(NIL NIL "ann" "grove-imap.test")("Bo Lind" NIL "bo" "grove-imap.test")' \
    '(NIL NIL NIL NIL)(NIL NIL "lead" "prospect.test"))' in envelope, envelope
a.ok('LOGOUT')
b.ok('LOGOUT')
print('DONE')
"#;

#[test]
fn keywords_are_announced_stores_on_sets_hold_and_groups_are_enveloped() {
    let Some(fixture) = Fixture::start(1) else { return };
    let address = fixture.mailboxes[0].0.clone();
    fixture.deliver(&address, &simple_message());
    fixture.deliver(&address, &multipart_message());
    fixture.deliver(
        &address,
        "From: ops@vendor.test\r\nTo: undisclosed-recipients:;\r\n\
         Cc: Team: ann@grove-imap.test, Bo Lind <bo@grove-imap.test>;, lead@prospect.test\r\n\
         Subject: Groups\r\n\r\nhi\r\n",
    );
    let output = fixture.python("flags_and_groups.py", &format!("{RAW_CLIENT}{FLAGS_AND_GROUPS}"), 0, &[]);
    assert!(output.contains("DONE"), "{output}");
    let inbox = fixture.stored(&address, "INBOX");
    let flags: Vec<&str> = inbox.iter().map(|(_, flags)| flags.as_str()).collect();
    assert_eq!(flags, ["\\Answered $Done", "\\Answered $Done", "\\Answered \\Flagged $Done", "Followup $Done"]);
}
