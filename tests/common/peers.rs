//! Real peers on loopback for the mail integration tests: an authoritative DNS server (Knot),
//! a destination MX (Postfix), a scriptable SMTP server (Python aiosmtpd) and an independent
//! DKIM verifier (dkimpy) — one submodule each under tests/common/peers/, the Python peers'
//! scripts under tests/peers/; this file holds what they share.
//!
//! Rules every peer follows:
//! - `X::available()` is asked first: it prints SKIPPED and returns false when the peer is
//!   missing, or panics when INBOXGROVE_REQUIRE_PEERS=1 (tests/run installs the peers and
//!   creates the Python venv at `target/peer-venv`).
//! - Each peer lives in its own temporary directory (config, queue, data, logs), so several
//!   instances run at once; it is stopped by PID in `Drop`.
//! - `start` returns only once the peer answers: DNS answers the SOA of every zone, SMTP peers
//!   send their 220 banner. Every wait is a bounded poll.
//! - A watchdog shell in its own session stops the peer and removes its directory if the test
//!   process dies without running `Drop` (killed by a timeout), so no daemon keeps a port.

use std::fs::File;
use std::io::{BufRead, BufReader, Write};
use std::net::{TcpListener, TcpStream, ToSocketAddrs, UdpSocket};
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use super::{have_peer, peers_required};

mod dkim;
mod dns;
mod postfix;
mod smtp;

// Each test binary compiles this module and uses only some of the peers.
#[allow(unused_imports)]
pub use dkim::{dkim_available, dkim_verify};
#[allow(unused_imports)]
pub use dns::{Dns, Zone, txt_record};
#[allow(unused_imports)]
pub use postfix::{PostfixMx, postfix_master_cf, write_settled};
#[allow(unused_imports)]
pub use smtp::{Envelope, Meta, ScriptedSmtp, SmtpOptions};

/// How long a peer may take to start answering.
const STARTUP_TIMEOUT: Duration = Duration::from_secs(30);
/// How long a stopped peer may take to exit before it is killed.
const STOP_TIMEOUT: Duration = Duration::from_secs(5);
/// How long one dkimpy verification may take.
const VERIFY_TIMEOUT: Duration = Duration::from_secs(30);
const POLL: Duration = Duration::from_millis(50);

/// The venv's python, if the venv exists (tests/run creates it at target/peer-venv).
pub fn venv_python() -> Option<PathBuf> {
    let python = Path::new(env!("CARGO_MANIFEST_DIR")).join("target/peer-venv/bin/python");
    python.exists().then_some(python)
}

/// A free TCP port on the given loopback ip (bind to port 0 and drop).
pub fn free_port(ip: &str) -> u16 {
    let listener = TcpListener::bind((ip, 0)).unwrap_or_else(|e| panic!("bind {ip}:0: {e}"));
    listener.local_addr().expect("local addr").port()
}

/// A port free for both TCP and UDP on `ip` (DNS serves both).
fn free_tcp_udp_port(ip: &str) -> u16 {
    for _ in 0..100 {
        let listener = TcpListener::bind((ip, 0)).unwrap_or_else(|e| panic!("bind {ip}:0: {e}"));
        let port = listener.local_addr().expect("local addr").port();
        if UdpSocket::bind((ip, port)).is_ok() {
            return port;
        }
    }
    panic!("no port free for both TCP and UDP on {ip}");
}

/// A file under tests/peers/.
fn peer_file(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/peers").join(name)
}

/// Whether the venv imports every module (prints SKIPPED or panics when not).
fn have_venv_modules(what: &str, modules: &[&str]) -> bool {
    let found = venv_python().is_some_and(|python| {
        Command::new(python)
            .arg("-c")
            .arg(format!("import {}", modules.join(", ")))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
    });
    if !found {
        let missing = format!("{what} needs the Python venv target/peer-venv with {}", modules.join(", "));
        assert!(!peers_required(), "{missing} (INBOXGROVE_REQUIRE_PEERS=1)");
        println!("SKIPPED: {missing}; run tests/run to create it");
    }
    found
}

/// Whether this process runs as root (the owner of /proc/self), as Postfix needs.
fn have_root(what: &str) -> bool {
    let root = std::fs::metadata("/proc/self").is_ok_and(|m| m.uid() == 0);
    if !root {
        assert!(!peers_required(), "{what} needs root (INBOXGROVE_REQUIRE_PEERS=1)");
        println!("SKIPPED: {what} needs root");
    }
    root
}

/// A temporary directory the peers' unprivileged users (postfix, vmail) can traverse.
fn peer_tempdir(prefix: &str) -> tempfile::TempDir {
    let dir = tempfile::Builder::new().prefix(prefix).tempdir().expect("temp dir");
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).expect("chmod temp dir");
    dir
}

fn log_file(dir: &Path, name: &str) -> File {
    File::options().create(true).append(true).open(dir.join(name)).expect("log file")
}

/// Polls `ready` every 50 ms until it holds or `timeout` passes; returns whether it held.
fn wait_until(timeout: Duration, mut ready: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + timeout;
    loop {
        if ready() {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        std::thread::sleep(POLL);
    }
}

/// Polls until an SMTP server on ip:port sends its 220 banner (then says QUIT), giving up early
/// when `alive` says the server died. Returns the banner.
fn wait_for_banner(ip: &str, port: u16, mut alive: impl FnMut() -> bool) -> Option<String> {
    let mut banner = None;
    wait_until(STARTUP_TIMEOUT, || {
        banner = smtp_banner(ip, port);
        banner.is_some() || !alive()
    });
    banner
}

fn smtp_banner(ip: &str, port: u16) -> Option<String> {
    let addr = (ip, port).to_socket_addrs().ok()?.next()?;
    let mut stream = TcpStream::connect_timeout(&addr, Duration::from_secs(1)).ok()?;
    stream.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    let mut line = String::new();
    BufReader::new(&stream).read_line(&mut line).ok()?;
    let _ = stream.write_all(b"QUIT\r\n");
    line.starts_with("220").then_some(line)
}

/// Whether a process exists and is not a zombie (a daemon's zombie may linger unreaped).
fn process_alive(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .is_ok_and(|stat| stat.rsplit_once(") ").is_some_and(|(_, rest)| !rest.starts_with('Z')))
}

/// Whether any process of the group led by `pgid` (a daemon and its children) is still running.
fn group_alive(pgid: u32) -> bool {
    let Ok(entries) = std::fs::read_dir("/proc") else { return false };
    entries.map_while(Result::ok).any(|entry| {
        let stat = std::fs::read_to_string(entry.path().join("stat")).unwrap_or_default();
        // After the command in parentheses: state, ppid, pgrp.
        let fields: Vec<&str> = stat.rsplit_once(") ").map(|(_, rest)| rest.split(' ').collect()).unwrap_or_default();
        fields.len() > 2 && fields[0] != "Z" && fields[2].parse::<u32>().is_ok_and(|group| group == pgid)
    })
}

/// SIGTERM, then SIGKILL when the child has not exited within STOP_TIMEOUT.
fn stop_child(child: &mut Child) {
    if matches!(child.try_wait(), Ok(Some(_))) {
        return;
    }
    let _ = Command::new("kill").args(["-TERM", &child.id().to_string()]).status();
    if !wait_until(STOP_TIMEOUT, || matches!(child.try_wait(), Ok(Some(_)))) {
        let _ = child.kill();
        let _ = child.wait();
    }
}

/// Runs a command to completion; panics with its output when it fails.
fn run_checked(command: &mut Command, what: &str) -> String {
    let output = command.output().unwrap_or_else(|e| panic!("cannot run {what}: {e}"));
    let text = output_text(&output);
    assert!(output.status.success(), "{what} failed ({}):\n{text}", output.status);
    text
}

/// Runs a command with `input` on stdin; kills it after `timeout`.
fn run_with_input(mut command: Command, input: &[u8], timeout: Duration) -> std::process::Output {
    let mut child = command.stdin(Stdio::piped()).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().expect("spawn");
    let pid = child.id();
    let mut stdin = child.stdin.take().expect("stdin");
    let input = input.to_vec();
    let writer = std::thread::spawn(move || {
        let _ = stdin.write_all(&input);
    });
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(child.wait_with_output());
    });
    let output = rx.recv_timeout(timeout).unwrap_or_else(|_| {
        let _ = Command::new("kill").args(["-KILL", &pid.to_string()]).status();
        panic!("command timed out after {timeout:?}")
    });
    let _ = writer.join();
    output.expect("command output")
}

fn output_text(output: &std::process::Output) -> String {
    format!("{}{}", lossy(&output.stdout), lossy(&output.stderr))
}

fn lossy(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

fn read_lossy(path: &Path) -> String {
    std::fs::read(path).map(|bytes| lossy(&bytes)).unwrap_or_default()
}

fn sh_quote(path: &Path) -> String {
    format!("'{}'", path.display().to_string().replace('\'', "'\\''"))
}

/// A shell in its own session that, once this test process has died, runs `stop` and removes
/// `dir` (retrying while the dying peer still writes there), so a peer outlives a killed test
/// by about a second. Killed (by PID) when the peer is dropped normally.
struct Watchdog(Option<Child>);

impl Watchdog {
    fn start(stop: &str, dir: &Path) -> Watchdog {
        let dir = sh_quote(dir);
        let script = format!(
            "while kill -0 {} 2>/dev/null; do sleep 1; done; \
             for attempt in 1 2 3 4 5 6 7 8 9 10; do {stop} 2>/dev/null; sleep 0.5; \
             rm -rf {dir} 2>/dev/null; [ -e {dir} ] || break; done",
            std::process::id()
        );
        let child = Command::new("setsid")
            .args(["sh", "-c", &script])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn();
        Watchdog(child.ok())
    }
}

impl Drop for Watchdog {
    fn drop(&mut self) {
        if let Some(child) = &mut self.0 {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}
