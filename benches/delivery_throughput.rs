//! Submission to delivery, end to end, against Postfix on the same machine.
//!
//! One `smtp-sink` (Postfix's fast SMTP sink) on 127.0.0.5 counts the messages it receives.
//! 1. InboxGrove (release build): 20 mailboxes on a domain with an RSA DKIM key (or Ed25519 with
//!    `DELIVERY_BENCH_DKIM=ed25519`); the load
//!    generator `inboxgrove-load` submits 20,000 messages of about 4 KB over 20 concurrent
//!    STARTTLS sessions with AUTH PLAIN, as a sequencer would; the appliance signs, queues
//!    (`synchronous=FULL`: every 250 follows an fsync) and delivers them to the MX of their
//!    domain (Knot DNS on loopback points it at the sink). The clock runs from the first
//!    connection until the sink has counted all 20,000.
//! 2. The baseline: `smtp-source -s 20 -m 20000 -l 4096` into a stock Postfix (a private
//!    instance on 127.0.0.6, `relayhost` = the sink; no TLS, no AUTH, no signing), timed the
//!    same way; then the same with `-d` (smtp-source reuses its connections, as the load
//!    generator does).
//!
//! 3. InboxGrove again, as one mailbox: 10,000 messages over the same 20 sessions, all signed in
//!    as the same mailbox (a sequencer with one account and many connections).
//!
//! It prints the end-to-end rates, the ratio to Postfix's faster run, and for each appliance run
//! its resident memory once started and idle (VmRSS) and its peak under the load (VmHWM).
//! Run with `cargo bench --bench delivery_throughput` (as root, with the peers tests/run
//! installs). `cargo test --all-targets` also runs this binary (harness = false), without
//! `--bench`: then it only says so and exits.

#[path = "../tests/common/mod.rs"]
mod common;

use std::io::{Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::peers::{Dns, Zone, free_port, postfix_master_cf, write_settled};

/// The messages per run (`DELIVERY_BENCH_MESSAGES` overrides it for quick experiments, and
/// `DELIVERY_BENCH_ONLY=inboxgrove` or `postfix` runs one side only).
const MESSAGES: usize = 20_000;
/// The messages of the one-mailbox run.
const ONE_MAILBOX_MESSAGES: usize = 10_000;
const SESSIONS: usize = 20;
const SIZE: usize = 4096;
const SINK_IP: &str = "127.0.0.5";
const RELAY_IP: &str = "127.0.0.6";
const SENDING_DOMAIN: &str = "grove-bench.test";
const DESTINATION: &str = "sink.test";
/// The longest one run may take.
const RUN_LIMIT: Duration = Duration::from_secs(600);
const TARGET_RATE: f64 = 1000.0;
const TARGET_RATIO: f64 = 1.5;
const IDLE_TARGET_MIB: u64 = 40;
const PEAK_TARGET_MIB: u64 = 150;

fn main() {
    if !std::env::args().any(|a| a == "--bench") {
        println!("delivery_throughput: a benchmark; run it with `cargo bench --bench delivery_throughput`");
        return;
    }
    for program in ["smtp-sink", "smtp-source", "postfix", "knotd"] {
        assert!(common::have_peer(program), "{program} is needed: run tests/run to install the peers");
    }
    let only = std::env::var("DELIVERY_BENCH_ONLY").unwrap_or_default();
    let sink = Sink::start();
    let ours = (only != "postfix").then(|| appliance_run(&sink, SESSIONS, messages()));
    let postfix = if only == "inboxgrove" { Vec::new() } else { postfix_runs(&sink) };
    let one_mailbox = (only != "postfix").then(|| {
        let count = std::env::var("DELIVERY_BENCH_MESSAGES").map_or(ONE_MAILBOX_MESSAGES, |_| messages());
        appliance_run(&sink, 1, count)
    });
    report(ours.as_ref(), &postfix, one_mailbox.as_ref());
}

/// The sending domain's DKIM algorithm: `rsa` (2048 bits, the default and what receivers
/// expect), or `DELIVERY_BENCH_DKIM=ed25519`.
fn dkim_algorithm() -> String {
    std::env::var("DELIVERY_BENCH_DKIM").unwrap_or_else(|_| "rsa".into())
}

/// The messages per run: [`MESSAGES`], or `DELIVERY_BENCH_MESSAGES` when set.
fn messages() -> usize {
    std::env::var("DELIVERY_BENCH_MESSAGES").ok().and_then(|n| n.parse().ok()).unwrap_or(MESSAGES)
}

/// One run's outcome.
struct Run {
    seconds: f64,
    /// The messages the run submits.
    expected: usize,
    delivered: u64,
    /// What the submitting side printed.
    client_output: String,
    peak_memory_kib: Option<u64>,
    /// The appliance's resident memory once started, before any load.
    idle_memory_kib: Option<u64>,
    /// CPU time (user + system) the appliance used, in seconds.
    cpu_seconds: Option<f64>,
}

impl Run {
    fn rate(&self) -> f64 {
        f64::from(u32::try_from(self.delivered).unwrap_or(u32::MAX)) / self.seconds
    }
}

/// The appliance submitting `count` messages over [`SESSIONS`] sessions signed in as
/// `mailboxes` mailboxes (session i as mailbox i modulo their number).
fn appliance_run(sink: &Sink, mailboxes: usize, count: usize) -> Run {
    let dns = Dns::start(&[Zone::new(DESTINATION, &["@ MX 10 mx.sink.test.", &format!("mx A {SINK_IP}")])]);
    let dir = tempfile::tempdir().expect("temp dir");
    let credentials = dir.path().join("credentials.csv");
    prepare_data_dir(&dir.path().join("data"), &credentials);
    let env = [
        ("INBOXGROVE_DNS__NAMESERVERS", format!("[\"{}\"]", dns.nameserver())),
        ("INBOXGROVE_DELIVERY__MX_PORT", sink.port.to_string()),
        ("INBOXGROVE_LOG", "warn".to_string()),
        (
            "INBOXGROVE_DELIVERY__DEFAULT_DESTINATION__CONNECTIONS",
            std::env::var("DELIVERY_BENCH_CONNECTIONS").unwrap_or_else(|_| "20".into()),
        ),
    ];
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let appliance = common::Appliance::start_with(dir, &env);
    // Settled: what the process holds once started, before the first connection.
    std::thread::sleep(Duration::from_secs(2));
    let idle_memory_kib = memory(appliance.pid(), "VmRSS");
    let csv = std::fs::read_to_string(&credentials).expect("credentials");
    let used: Vec<&str> = csv.lines().take(1 + mailboxes).collect();
    std::fs::write(&credentials, used.join("\n") + "\n").expect("write credentials");

    println!(
        "InboxGrove: {count} messages of {SIZE} bytes over {SESSIONS} STARTTLS+AUTH sessions as {mailboxes} mailboxes…"
    );
    let start_count = sink.count();
    let started = Instant::now();
    let client = Command::new(env!("CARGO_BIN_EXE_inboxgrove-load"))
        .args(["--server", &appliance.smtp_submission, "--credentials"])
        .arg(appliance.dir.path().join("credentials.csv"))
        .args(["--sessions", &SESSIONS.to_string(), "--messages", &count.to_string()])
        .args(["--size", &SIZE.to_string(), "--to-domain", DESTINATION])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start inboxgrove-load");
    let (seconds, delivered, client_output) = time_until_delivered(sink, start_count, started, count, Guard(client));
    let peak_memory_kib = memory(appliance.pid(), "VmHWM");
    let cpu_seconds = cpu_time(appliance.pid());
    drop(appliance);
    Run { seconds, expected: count, delivered, client_output, peak_memory_kib, idle_memory_kib, cpu_seconds }
}

/// The baseline, twice through the same relay: `smtp-source` as the brief gives it (a new
/// connection per message), then with `-d` (connections reused, as `inboxgrove-load` does).
fn postfix_runs(sink: &Sink) -> Vec<(String, Run)> {
    let relay = Relay::start(sink);
    let runs = [false, true]
        .into_iter()
        .map(|reuse| {
            let mut args = vec!["-s".to_string(), SESSIONS.to_string(), "-m".into(), messages().to_string()];
            args.extend(["-l".to_string(), SIZE.to_string()]);
            if reuse {
                args.push("-d".into());
            }
            let label = format!("smtp-source {}", args.join(" "));
            println!("Postfix: {label} through a stock Postfix…");
            let start_count = sink.count();
            let started = Instant::now();
            let client = Command::new("smtp-source")
                .args(&args)
                .args(["-f", &format!("bench@{SENDING_DOMAIN}"), "-t", &format!("user@{DESTINATION}")])
                .arg(format!("{RELAY_IP}:{}", relay.port))
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .expect("start smtp-source");
            let (seconds, delivered, client_output) =
                time_until_delivered(sink, start_count, started, messages(), Guard(client));
            let (peak_memory_kib, idle_memory_kib, cpu_seconds) = (None, None, None);
            let expected = messages();
            (label, Run { seconds, expected, delivered, client_output, peak_memory_kib, idle_memory_kib, cpu_seconds })
        })
        .collect();
    drop(relay);
    runs
}

/// Waits until the sink has counted `expected` more than `start_count` (bounded); returns the
/// seconds since `started`, the messages counted and the client's output.
fn time_until_delivered(
    sink: &Sink,
    start_count: u64,
    started: Instant,
    expected: usize,
    mut client: Guard,
) -> (f64, u64, String) {
    let target = start_count + u64::try_from(expected).unwrap_or(u64::MAX);
    let mut last_report = Instant::now();
    let mut count = start_count;
    while count < target && started.elapsed() < RUN_LIMIT {
        std::thread::sleep(Duration::from_millis(10));
        count = sink.count();
        if last_report.elapsed() >= Duration::from_secs(5) {
            println!("  {:6.1} s: {} delivered", started.elapsed().as_secs_f64(), count - start_count);
            last_report = Instant::now();
        }
    }
    let seconds = started.elapsed().as_secs_f64();
    if count < target {
        println!("  gave up after {RUN_LIMIT:?}: {} of {expected} delivered", count - start_count);
    }
    let output = client.finish();
    (seconds, count - start_count, output)
}

/// The appliance's data dir: an admin, the sending domain (RSA DKIM), 20 mailboxes allowed to
/// send their share today. Writes their credentials CSV to `credentials`.
fn prepare_data_dir(data: &Path, credentials: &Path) {
    let ok = |args: &[&str], stdin: Option<&str>| {
        let output = common::cli(data, args, stdin);
        assert!(output.status.success(), "{args:?}: {}", String::from_utf8_lossy(&output.stderr));
        String::from_utf8_lossy(&output.stdout).into_owned()
    };
    ok(&["admin", "create", "--email", "admin@grove.test"], Some(common::PASSWORD));
    ok(&["domain", "add", SENDING_DOMAIN, "--dkim", &dkim_algorithm()], None);
    let csv = ok(&["mailbox", "create", "--domain", SENDING_DOMAIN, "--count", &SESSIONS.to_string()], None);
    for line in csv.lines().skip(1) {
        let email = line.split_once(',').expect("email,password").0;
        ok(&["mailbox", "set", email, "--daily-limit", "10000", "--per-minute", "0"], None);
    }
    std::fs::write(credentials, csv).expect("write credentials");
}

/// The CPU time (user + system) a process has used, in seconds (`/proc/PID/stat`, clock ticks).
fn cpu_time(pid: u32) -> Option<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let fields: Vec<&str> = stat.rsplit_once(") ")?.1.split(' ').collect();
    let ticks: u32 = fields.get(11)?.parse::<u32>().ok()? + fields.get(12)?.parse::<u32>().ok()?;
    let output = Command::new("getconf").arg("CLK_TCK").output().ok()?;
    let per_second: u32 = String::from_utf8_lossy(&output.stdout).trim().parse().ok()?;
    Some(f64::from(ticks) / f64::from(per_second))
}

/// A memory figure of a process from `/proc/PID/status` (`VmRSS`: resident now, `VmHWM`: peak
/// resident), in KiB.
fn memory(pid: u32, field: &str) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.strip_prefix(field).is_some_and(|rest| rest.starts_with(':')))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

fn report(ours: Option<&Run>, postfix: &[(String, Run)], one_mailbox: Option<&Run>) {
    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    println!();
    for run in [ours, one_mailbox].into_iter().flatten() {
        println!("inboxgrove-load said:\n{}", run.client_output.trim_end());
    }
    println!();
    println!("Submission to delivery, messages of {SIZE} bytes, {SESSIONS} sessions, {cores} cores:");
    for (run, who) in [(ours, format!("{SESSIONS} mailboxes")), (one_mailbox, "1 mailbox".to_string())] {
        let Some(run) = run else { continue };
        println!(
            "  InboxGrove, {who} (STARTTLS, AUTH, DKIM {}, fsync per 250): {:8.1} messages/s ({} of {} in {:.2} s)",
            dkim_algorithm(),
            run.rate(),
            run.delivered,
            run.expected,
            run.seconds
        );
        let mib = |kib: Option<u64>| kib.map_or("unknown".to_string(), |kib| format!("{:.1} MiB", kib_as_mib(kib)));
        println!(
            "    memory: {} idle after start (VmRSS, target < {IDLE_TARGET_MIB} MiB), {} peak (VmHWM, target < {PEAK_TARGET_MIB} MiB)",
            mib(run.idle_memory_kib),
            mib(run.peak_memory_kib)
        );
        if let Some(cpu) = run.cpu_seconds {
            let per_message = cpu * 1000.0 / f64::from(u32::try_from(run.delivered.max(1)).unwrap_or(u32::MAX));
            println!("    CPU time: {cpu:.1} s, {per_message:.2} ms per message (startup included)");
        }
    }
    for (label, run) in postfix {
        println!(
            "  Postfix ({label}; plain SMTP, no AUTH, no signing): {:8.1} messages/s ({} in {:.2} s)",
            run.rate(),
            run.delivered,
            run.seconds
        );
    }
    let met = |ok: bool| if ok { "met" } else { "NOT met" };
    if let Some(ours) = ours {
        println!("  target ≥ {TARGET_RATE} messages/s: {}", met(ours.rate() >= TARGET_RATE));
    }
    let best = postfix.iter().map(|(_, run)| run.rate()).fold(0.0, f64::max);
    if let Some(ours) = ours.filter(|_| best > 0.0) {
        let ratio = ours.rate() / best;
        println!("  ratio InboxGrove / Postfix (its faster run): {ratio:.2}");
        println!("  target ≥ {TARGET_RATIO} × Postfix: {}", met(ratio >= TARGET_RATIO));
    }
    for run in [ours, one_mailbox].into_iter().flatten() {
        let under = |kib: Option<u64>, mib: u64| kib.is_some_and(|kib| kib < mib * 1024);
        let ok = under(run.idle_memory_kib, IDLE_TARGET_MIB) && under(run.peak_memory_kib, PEAK_TARGET_MIB);
        println!("  memory targets ({} messages): {}", run.expected, met(ok));
    }
}

fn kib_as_mib(kib: u64) -> f64 {
    f64::from(u32::try_from(kib).unwrap_or(u32::MAX)) / 1024.0
}

/// A child process stopped (SIGKILL) when dropped unless it finished.
struct Guard(Child);

impl Guard {
    /// Waits up to 30 s for the process to end by itself; returns its output.
    fn finish(&mut self) -> String {
        let deadline = Instant::now() + Duration::from_secs(30);
        while self.0.try_wait().ok().flatten().is_none() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = self.0.kill();
        let mut text = String::new();
        if let Some(out) = self.0.stdout.as_mut() {
            let _ = out.read_to_string(&mut text);
        }
        if let Some(err) = self.0.stderr.as_mut() {
            let _ = err.read_to_string(&mut text);
        }
        text
    }
}

impl Drop for Guard {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// `smtp-sink -c` on 127.0.0.5, its running counters in a file.
struct Sink {
    port: u16,
    counters: PathBuf,
    _dir: tempfile::TempDir,
    _process: Guard,
}

impl Sink {
    fn start() -> Sink {
        let dir = tempfile::tempdir().expect("temp dir");
        let port = free_port(SINK_IP);
        let counters = dir.path().join("counters");
        let out = std::fs::File::create(&counters).expect("counter file");
        let process = Command::new("smtp-sink")
            .args(["-u", "postfix", "-c", &format!("{SINK_IP}:{port}"), "1000"])
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(Stdio::null())
            .spawn()
            .expect("start smtp-sink");
        let deadline = Instant::now() + Duration::from_secs(10);
        while std::net::TcpStream::connect((SINK_IP, port)).is_err() {
            assert!(Instant::now() < deadline, "smtp-sink did not listen on {SINK_IP}:{port}");
            std::thread::sleep(Duration::from_millis(50));
        }
        Sink { port, counters, _dir: dir, _process: Guard(process) }
    }

    /// Messages received so far: the last `mesg=N` of the counters (each update ends in CR).
    fn count(&self) -> u64 {
        let Ok(mut file) = std::fs::File::open(&self.counters) else { return 0 };
        let length = file.metadata().map(|m| m.len()).unwrap_or(0);
        let _ = file.seek(SeekFrom::Start(length.saturating_sub(256)));
        let mut tail = String::new();
        let _ = file.read_to_string(&mut tail);
        tail.rsplit("mesg=").next().and_then(|n| n.trim().parse().ok()).unwrap_or(0)
    }
}

/// A stock Postfix relaying everything to the sink: a private instance (config, queue and data
/// dirs in a temporary dir, its `master` run with `-c DIR`) whose smtpd listens on 127.0.0.6.
struct Relay {
    port: u16,
    dir: tempfile::TempDir,
}

impl Relay {
    fn start(sink: &Sink) -> Relay {
        let dir = tempfile::Builder::new().prefix("inboxgrove-relay-").tempdir().expect("temp dir");
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).expect("chmod");
        let port = free_port(RELAY_IP);
        let config = dir.path().join("conf");
        std::fs::create_dir(&config).expect("conf dir");
        std::fs::create_dir(dir.path().join("queue")).expect("queue dir");
        let d = dir.path().display();
        let main_cf = [
            "compatibility_level = 3.6".to_string(),
            format!("queue_directory = {d}/queue"),
            format!("data_directory = {d}/data"),
            format!("maillog_file = {d}/postfix.log"),
            format!("maillog_file_prefixes = {d}"),
            "myhostname = relay.bench.test".into(),
            "mydestination =".into(),
            "inet_interfaces = 127.0.0.1".into(),
            "inet_protocols = ipv4".into(),
            "mynetworks = 127.0.0.0/8".into(),
            format!("relayhost = [{SINK_IP}]:{}", sink.port),
            "alias_maps =".into(),
            "alias_database =".into(),
            "local_recipient_maps =".into(),
            // No reverse DNS for loopback clients: there is no resolver to ask here.
            "smtpd_peername_lookup = no".into(),
        ];
        write_settled(&config.join("main.cf"), &(main_cf.join("\n") + "\n"));
        write_settled(&config.join("master.cf"), &postfix_master_cf(RELAY_IP, port));
        let relay = Relay { port, dir };
        let checked = Command::new("postfix").arg("-c").arg(&config).arg("check").output().expect("postfix check");
        let said = format!("{}{}", String::from_utf8_lossy(&checked.stdout), String::from_utf8_lossy(&checked.stderr));
        assert!(checked.status.success(), "postfix check failed: {said}");
        let daemons = Command::new("postconf").args(["-d", "-h", "daemon_directory"]).output().expect("postconf");
        let master = Path::new(String::from_utf8_lossy(&daemons.stdout).trim()).join("master");
        let started = Command::new(master)
            .arg("-c")
            .arg(&config)
            .arg("-w")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .expect("run master");
        assert!(started.success(), "Postfix master failed to start");
        let deadline = Instant::now() + Duration::from_secs(30);
        while std::net::TcpStream::connect((RELAY_IP, port)).is_err() {
            assert!(Instant::now() < deadline, "Postfix did not listen on {RELAY_IP}:{port}");
            std::thread::sleep(Duration::from_millis(50));
        }
        relay
    }

    fn master_pid(&self) -> Option<u32> {
        std::fs::read_to_string(self.dir.path().join("queue/pid/master.pid")).ok()?.trim().parse().ok()
    }
}

impl Drop for Relay {
    fn drop(&mut self) {
        let Some(pid) = self.master_pid() else { return };
        let _ = Command::new("kill").args(["-TERM", &pid.to_string()]).status();
        let deadline = Instant::now() + Duration::from_secs(10);
        while Path::new(&format!("/proc/{pid}")).exists() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}
