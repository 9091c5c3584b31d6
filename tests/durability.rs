//! DESIGN invariant 1 under kill -9: acknowledged mail is durable, and work in flight is picked
//! up on restart.
//!
//! The real binary submits to a Postfix MX (127.0.0.2) found through Knot DNS, over one delivery
//! connection (`delivery.concurrency = 1`), so the queue lags behind the submissions. The
//! project's load generator (`inboxgrove-load`) submits small messages over several STARTTLS +
//! AUTH sessions, logging the Message-ID of every message that got its 250. [`KILLS`] times, once
//! a further batch is acknowledged, the appliance is killed with SIGKILL, a copy of its database
//! files is read (the dead appliance's own files are not opened: that would recover them before
//! the restart does), it is started again on the same data dir, and the load generator carries on
//! with the messages not yet acknowledged (new Message-IDs). Each kill must find rows not yet
//! delivered (in flight or waiting), so the kill really interrupts work. Then, within 60 seconds,
//! every acknowledged Message-ID must reach the MX's Maildir.
//!
//! Loss (an acknowledged message that never arrives) fails the test. Duplicates are allowed only
//! for rows that were in flight at a kill (a delivery cut short is tried again: SMTP cannot do
//! better), so there may be at most as many as the kills found in flight. Messages delivered
//! without an acknowledgement (accepted just before a kill, the 250 never read) are counted and
//! printed.

mod common;

use std::collections::{BTreeMap, HashSet};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::peers::{Dns, PostfixMx, Zone, free_port};
use common::{Appliance, cli};

const MESSAGES: usize = 1000;
const SESSIONS: usize = 8;
const MAILBOXES: usize = 4;
const SIZE: usize = 1024;
/// How many times the appliance is killed.
const KILLS: usize = 3;
/// Acknowledgements between a start and the kill that follows.
const KILL_AFTER: usize = 200;
const SENDING_DOMAIN: &str = "grove-durable.test";
const DESTINATION: &str = "dest.test";
/// How long submission may take to reach [`KILL_AFTER`], or to finish after the restart.
const SUBMIT_WAIT: Duration = Duration::from_secs(120);
/// How long every acknowledged message may take to arrive after the restart.
const DELIVERY_WAIT: Duration = Duration::from_secs(60);

/// The load generator, running; killed (by PID) when dropped.
struct Load(Child);

impl Drop for Load {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn kill_9_loses_no_acknowledged_message() {
    if !(Dns::available() && PostfixMx::available()) {
        return;
    }
    let port = free_port("127.0.0.2");
    let dns = Dns::start(&[Zone::new(DESTINATION, &["@ MX 10 mx.dest.test.", "mx A 127.0.0.2"])]);
    let mx = PostfixMx::start("127.0.0.2", port, &[DESTINATION]);
    let work = tempfile::tempdir().expect("work dir");
    let (dir, credentials) = prepare_data_dir(work.path());
    let env = appliance_env(&dns, port);
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    let mut appliance = Appliance::start_with(dir, &env);

    // Submit, and kill -9 each time another batch is acknowledged.
    let mut acknowledged: Vec<String> = Vec::new();
    let mut in_flight_at_kills = 0;
    for kill in 1..=KILLS {
        let acked = work.path().join(format!("acked-{kill}.txt"));
        let mut load =
            start_load(&appliance, &credentials, MESSAGES - acknowledged.len(), &format!("run{kill}"), &acked);
        let deadline = Instant::now() + SUBMIT_WAIT;
        while read_lines(&acked).len() < KILL_AFTER {
            assert!(Instant::now() < deadline, "fewer than {KILL_AFTER} acknowledgements in {SUBMIT_WAIT:?}");
            assert!(load.0.try_wait().expect("load status").is_none(), "the load generator ended before the kill");
            std::thread::sleep(Duration::from_millis(20));
        }
        appliance.kill9();
        let at_kill = Snapshot::of_copy(&appliance.data_dir(), work.path(), &mx);
        wait_exit(&mut load, Duration::from_secs(30));
        acknowledged.extend(read_lines(&acked));
        println!("kill {kill}: SIGKILL after {} acknowledgements in all; at that moment {at_kill}", acknowledged.len());
        assert!(at_kill.in_flight + at_kill.waiting > 0, "kill {kill} found nothing left to deliver: {at_kill}");
        in_flight_at_kills += at_kill.in_flight;
        appliance = appliance.restart();
    }

    // The rest, on the last start.
    let acked = work.path().join("acked-last.txt");
    let remaining = MESSAGES - acknowledged.len();
    let mut load = start_load(&appliance, &credentials, remaining, "last", &acked);
    let status = wait_exit(&mut load, SUBMIT_WAIT);
    let last = read_lines(&acked);
    assert!(status.success(), "the load generator failed after the last restart");
    assert_eq!(last.len(), remaining, "every message submitted after the last restart is acknowledged");
    acknowledged.extend(last);

    // Every acknowledged message arrives; duplicates only of rows that were in flight.
    let acknowledged: HashSet<String> = acknowledged.into_iter().collect();
    assert_eq!(acknowledged.len(), MESSAGES, "Message-IDs are unique");
    let deadline = Instant::now() + DELIVERY_WAIT;
    let arrived = loop {
        let arrived = arrived_ids(&mx.maildir);
        let missing = acknowledged.iter().filter(|id| !arrived.contains_key(*id)).count();
        if missing == 0 || Instant::now() >= deadline {
            break arrived;
        }
        std::thread::sleep(Duration::from_millis(250));
    };
    let lost: Vec<&String> = acknowledged.iter().filter(|id| !arrived.contains_key(*id)).collect();
    let duplicates: usize = arrived.values().map(|copies| copies - 1).sum();
    let unacknowledged = arrived.keys().filter(|id| !acknowledged.contains(*id)).count();
    println!(
        "acknowledged {}, delivered {} distinct ({} copies), lost {}, duplicates {duplicates} \
         (in flight at the kills: {in_flight_at_kills}), delivered without acknowledgement {unacknowledged}",
        acknowledged.len(),
        arrived.len(),
        arrived.values().sum::<usize>(),
        lost.len(),
    );
    assert!(
        lost.is_empty(),
        "{} acknowledged messages were lost, e.g. {:?}; Postfix log:\n{}",
        lost.len(),
        &lost[..lost.len().min(5)],
        mx.log()
    );
    let bound = usize::try_from(in_flight_at_kills).unwrap_or(usize::MAX);
    assert!(duplicates <= bound, "{duplicates} duplicates, but only {bound} rows were in flight at the kills");
    drop(appliance);
}

/// Makes the data dir with the CLI: an admin, a sending domain, mailboxes whose limits allow
/// the whole run. Returns it and the credentials CSV written for the load generator.
fn prepare_data_dir(work: &Path) -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().expect("temp dir");
    let data = dir.path().join("data");
    let ok = |args: &[&str], stdin: Option<&str>| {
        let output = cli(&data, args, stdin);
        assert!(output.status.success(), "{args:?}: {}", String::from_utf8_lossy(&output.stderr));
        String::from_utf8_lossy(&output.stdout).into_owned()
    };
    ok(&["admin", "create", "--email", "admin@grove.test"], Some(common::PASSWORD));
    ok(&["domain", "add", SENDING_DOMAIN], None);
    let csv = ok(&["mailbox", "create", "--domain", SENDING_DOMAIN, "--count", &MAILBOXES.to_string()], None);
    for line in csv.lines().skip(1) {
        let email = line.split_once(',').expect("email,password").0;
        ok(&["mailbox", "set", email, "--daily-limit", "10000", "--per-minute", "0"], None);
    }
    let credentials = work.join("credentials.csv");
    std::fs::write(&credentials, csv).expect("write credentials");
    (dir, credentials)
}

/// The appliance's environment: DNS on Knot, MX port of the Postfix peer, fixed listeners on
/// an address of their own (so the restart listens where the first run did).
fn appliance_env(dns: &Dns, mx_port: u16) -> Vec<(String, String)> {
    let ip = common::free_loopback_address(&[2587, 2465, 2525, 2143, 2993]);
    vec![
        ("INBOXGROVE_DNS__NAMESERVERS".into(), format!("[\"{}\"]", dns.nameserver())),
        ("INBOXGROVE_DELIVERY__MX_PORT".into(), mx_port.to_string()),
        ("INBOXGROVE_DELIVERY__TIMEOUT".into(), "10s".into()),
        ("INBOXGROVE_DELIVERY__CONCURRENCY".into(), "1".into()),
        ("INBOXGROVE_SMTP__SUBMISSION".into(), format!("{ip}:2587")),
        ("INBOXGROVE_SMTP__SUBMISSIONS".into(), format!("{ip}:2465")),
        ("INBOXGROVE_SMTP__INBOUND".into(), format!("{ip}:2525")),
        ("INBOXGROVE_IMAP__LISTEN".into(), format!("{ip}:2143")),
        ("INBOXGROVE_IMAP__LISTEN_TLS".into(), format!("{ip}:2993")),
    ]
}

fn start_load(appliance: &Appliance, credentials: &Path, messages: usize, run_id: &str, acked: &Path) -> Load {
    let child = Command::new(env!("CARGO_BIN_EXE_inboxgrove-load"))
        .args(["--server", &appliance.smtp_submission, "--credentials"])
        .arg(credentials)
        .args(["--sessions", &SESSIONS.to_string(), "--messages", &messages.to_string()])
        .args(["--size", &SIZE.to_string(), "--to-domain", DESTINATION, "--run-id", run_id, "--acked"])
        .arg(acked)
        .stdin(Stdio::null())
        .spawn()
        .expect("start inboxgrove-load");
    Load(child)
}

/// Waits (bounded) for the load generator to exit; kills it when it does not.
fn wait_exit(load: &mut Load, timeout: Duration) -> std::process::ExitStatus {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(status) = load.0.try_wait().expect("load status") {
            return status;
        }
        if Instant::now() >= deadline {
            let _ = load.0.kill();
            panic!("the load generator did not finish within {timeout:?}");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// The non-empty lines of a file (none when it does not exist yet).
fn read_lines(path: &Path) -> Vec<String> {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .map(str::trim)
        .filter(|line| !line.is_empty())
        .map(str::to_string)
        .collect()
}

/// Message-ID (without brackets) → copies, over the Maildir's messages.
fn arrived_ids(maildir: &Path) -> BTreeMap<String, usize> {
    let mut ids = BTreeMap::new();
    for sub in ["new", "cur"] {
        let Ok(entries) = std::fs::read_dir(maildir.join(sub)) else { continue };
        for entry in entries.map_while(Result::ok) {
            let Ok(raw) = std::fs::read(entry.path()) else { continue };
            if let Some(id) = message_id(&String::from_utf8_lossy(&raw)) {
                *ids.entry(id).or_insert(0) += 1;
            }
        }
    }
    ids
}

/// The Message-ID header's value, without angle brackets.
fn message_id(message: &str) -> Option<String> {
    let header = message.split("\n\n").next()?;
    header.lines().find_map(|line| {
        let (name, value) = line.split_once(':')?;
        name.eq_ignore_ascii_case("Message-ID").then(|| value.trim().trim_matches(['<', '>']).to_string())
    })
}

/// What the queue and the sink held right after the kill.
struct Snapshot {
    delivered: i64,
    in_flight: i64,
    waiting: i64,
    at_sink: usize,
}

impl Snapshot {
    /// Reads a copy of the database files in `data` (made in `work`), leaving the originals to the
    /// restart.
    fn of_copy(data: &Path, work: &Path, mx: &PostfixMx) -> Snapshot {
        let copy = tempfile::tempdir_in(work).expect("a directory for the copy");
        for file in ["inboxgrove.db", "inboxgrove.db-wal"] {
            if data.join(file).exists() {
                std::fs::copy(data.join(file), copy.path().join(file)).expect("copy the database file");
            }
        }
        let conn = rusqlite::Connection::open(copy.path().join("inboxgrove.db")).expect("open the copy");
        let count = |status: &str| -> i64 {
            conn.query_row("SELECT count(*) FROM queue WHERE status = ?1", [status], |r| r.get(0)).expect("count")
        };
        let waiting = count("queued") + count("deferred");
        Snapshot { delivered: count("delivered"), in_flight: count("in_flight"), waiting, at_sink: mx.messages().len() }
    }
}

impl std::fmt::Display for Snapshot {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "the queue had {} delivered, {} in flight, {} waiting; {} messages had reached the sink",
            self.delivered, self.in_flight, self.waiting, self.at_sink
        )
    }
}
