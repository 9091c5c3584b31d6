//! Postfix as a destination MX: a private instance (config, queue and data dirs in a tempdir,
//! its `master` run directly with `-c DIR`) whose smtpd listens on ip:port and delivers every
//! accepted message of its domains into one catch-all Maildir (virtual, uid/gid 5000). Refusals
//! are scripted by local part with a `check_recipient_access` inline map.

use std::fs::File;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use super::{
    STOP_TIMEOUT, Watchdog, group_alive, have_peer, have_root, log_file, peer_tempdir, process_alive, read_lossy,
    run_checked, sh_quote, wait_for_banner, wait_until,
};

/// The owner of the catch-all Maildir (Postfix refuses to deliver as root).
const VMAIL_ID: u32 = 5000;

/// A real Postfix (its own config, queue and data dirs: `postfix -c DIR`) on `ip:port`,
/// accepting mail for its domains into one catch-all Maildir. Replies by recipient local
/// part: `reject@` gets "550 5.1.1 no such user", `tempfail@` gets "450 4.2.0 try later",
/// `blocked@` gets "554 5.7.1 ... blocked using zen.spamhaus.org".
pub struct PostfixMx {
    pub ip: String,
    pub port: u16,
    /// The catch-all Maildir (messages land in `new/`).
    pub maildir: PathBuf,
    config: PathBuf,
    _watchdog: Watchdog,
    dir: tempfile::TempDir,
}

impl PostfixMx {
    /// Whether Postfix is installed and we run as root (prints SKIPPED or panics when not).
    pub fn available() -> bool {
        have_peer("postfix") && have_root("Postfix")
    }

    /// Starts Postfix on `ip:port` for `domains`, without TLS; returns once it sends its banner.
    pub fn start(ip: &str, port: u16, domains: &[&str]) -> PostfixMx {
        Self::launch(ip, port, domains, false, &[])
    }

    /// Like `start`, with more main.cf settings (`name = value` lines).
    pub fn start_with(ip: &str, port: u16, domains: &[&str], settings: &[String]) -> PostfixMx {
        Self::launch(ip, port, domains, false, settings)
    }

    /// Like `start`, but offering STARTTLS with a self-signed certificate for mx.peer.test
    /// (`smtpd_tls_security_level = may`); the stored Received header names the TLS version.
    pub fn start_tls(ip: &str, port: u16, domains: &[&str]) -> PostfixMx {
        Self::launch(ip, port, domains, true, &[])
    }

    fn launch(ip: &str, port: u16, domains: &[&str], tls: bool, settings: &[String]) -> PostfixMx {
        assert!(Self::available(), "Postfix is not installed: call PostfixMx::available() first");
        let dir = peer_tempdir("inboxgrove-mx-");
        let config = dir.path().join("conf");
        let mail = dir.path().join("mail");
        std::fs::create_dir(&config).expect("postfix conf dir");
        std::fs::create_dir(&mail).expect("maildir base");
        std::os::unix::fs::chown(&mail, Some(VMAIL_ID), Some(VMAIL_ID)).expect("chown maildir base");
        let mut main_cf = postfix_main_cf(dir.path(), domains);
        if tls {
            main_cf.push_str(&postfix_tls_settings(dir.path()));
        }
        for setting in settings {
            main_cf.push_str(setting);
            main_cf.push('\n');
        }
        write_settled(&config.join("main.cf"), &main_cf);
        write_settled(&config.join("master.cf"), &postfix_master_cf(ip, port));
        let pid_file = dir.path().join("queue/pid/master.pid");
        let stop = format!("kill $(cat {})", sh_quote(&pid_file));
        let mx = PostfixMx {
            ip: ip.to_string(),
            port,
            maildir: mail.join("catchall"),
            config,
            _watchdog: Watchdog::start(&stop, dir.path()),
            dir,
        };
        if !prepare_postfix_dirs(mx.dir.path()) {
            run_checked(Command::new("postfix").arg("-c").arg(&mx.config).arg("check"), "postfix check");
        }
        mx.start_master();
        let banner = wait_for_banner(ip, port, || mx.master_pid().is_some_and(process_alive));
        assert!(banner.is_some(), "Postfix did not answer on {ip}:{port}; log:\n{}", mx.log());
        mx
    }

    /// Every message delivered so far (raw bytes as stored, LF line ends), oldest first.
    pub fn messages(&self) -> Vec<Vec<u8>> {
        let mut files = Vec::new();
        for sub in ["new", "cur"] {
            let Ok(entries) = std::fs::read_dir(self.maildir.join(sub)) else { continue };
            for entry in entries.map_while(Result::ok) {
                let modified = entry.metadata().and_then(|m| m.modified()).ok();
                files.push((modified, entry.file_name(), entry.path()));
            }
        }
        files.sort();
        files.into_iter().filter_map(|(_, _, path)| std::fs::read(path).ok()).collect()
    }

    /// Polls (bounded by `timeout`) until at least `n` messages arrived and returns them;
    /// panics with Postfix's log when they do not.
    pub fn wait_for(&self, n: usize, timeout: Duration) -> Vec<Vec<u8>> {
        let arrived = wait_until(timeout, || self.messages().len() >= n);
        let messages = self.messages();
        assert!(
            arrived,
            "{n} messages expected at {}:{}, got {}; log:\n{}",
            self.ip,
            self.port,
            messages.len(),
            self.log()
        );
        messages
    }

    /// Postfix's log so far (maillog_file), for failure messages.
    pub fn log(&self) -> String {
        read_lossy(&self.dir.path().join("postfix.log"))
    }

    /// Runs the master daemon directly (`master -w` returns once it is initialized), not
    /// `postfix start`: its script logs through postlogd before the master starts it, and each
    /// such line waits a second for the socket.
    fn start_master(&self) {
        // The built-in default (-d): asking with `-c` takes two seconds of logging attempts.
        let daemons = run_checked(Command::new("postconf").args(["-d", "-h", "daemon_directory"]), "postconf");
        let master = Path::new(daemons.trim()).join("master");
        // The daemon inherits stdio: pipes would stay open after `master -w` returns.
        let started = Command::new(&master)
            .arg("-c")
            .arg(&self.config)
            .arg("-w")
            .stdin(Stdio::null())
            .stdout(log_file(self.dir.path(), "master.out"))
            .stderr(log_file(self.dir.path(), "master.out"))
            .status()
            .expect("run master");
        let output = read_lossy(&self.dir.path().join("master.out"));
        assert!(started.success(), "Postfix master failed: {output}\n{}", self.log());
    }

    fn master_pid(&self) -> Option<u32> {
        let text = std::fs::read_to_string(self.dir.path().join("queue/pid/master.pid")).ok()?;
        text.trim().parse().ok()
    }
}

impl Drop for PostfixMx {
    fn drop(&mut self) {
        let Some(pid) = self.master_pid() else { return };
        let _ = Command::new("kill").args(["-TERM", &pid.to_string()]).status();
        if !wait_until(STOP_TIMEOUT, || !group_alive(pid)) {
            let _ = Command::new("kill").args(["-KILL", "--", &format!("-{pid}")]).status();
        }
        // Removed here, retrying: a child that was still exiting may have written meanwhile.
        let dir = self.dir.path();
        wait_until(STOP_TIMEOUT, || std::fs::remove_dir_all(dir).is_ok() || !dir.exists());
    }
}

/// Writes a config file dated a minute ago: the master waits, polling, until main.cf is a
/// few seconds old before it starts.
pub fn write_settled(path: &Path, text: &str) {
    std::fs::write(path, text).expect("write postfix config");
    let past = std::time::SystemTime::now() - Duration::from_secs(60);
    File::options().write(true).open(path).and_then(|f| f.set_modified(past)).expect("date postfix config");
}

/// Creates the queue and data directories as Postfix's postfix-files lists them (owner, group,
/// mode), as `postfix check` would in 1.5 s. Returns false when postfix-files or the postfix
/// user or postdrop group is missing.
fn prepare_postfix_dirs(dir: &Path) -> bool {
    let queue = dir.join("queue");
    std::fs::create_dir(&queue).expect("postfix queue dir");
    let Ok(listing) = std::fs::read_to_string("/etc/postfix/postfix-files") else { return false };
    let ids = |file: &str, name: &str| {
        let table = std::fs::read_to_string(file).unwrap_or_default();
        table.lines().find_map(|line| {
            let fields: Vec<&str> = line.split(':').collect();
            (fields.first() == Some(&name)).then(|| fields.get(2)?.parse::<u32>().ok()).flatten()
        })
    };
    let (Some(mail_owner), Some(setgid_group)) = (ids("/etc/passwd", "postfix"), ids("/etc/group", "postdrop")) else {
        return false;
    };
    for line in listing.lines() {
        let fields: Vec<&str> = line.split(':').collect();
        let [path, "d", owner, group, mode, ..] = fields[..] else { continue };
        let path = match path.split_once('/') {
            Some(("$queue_directory", sub)) => queue.join(sub),
            None if path == "$data_directory" => dir.join("data"),
            _ => continue,
        };
        let uid = if owner == "$mail_owner" { mail_owner } else { 0 };
        let gid = if group == "$setgid_group" { setgid_group } else { 0 };
        let mode = u32::from_str_radix(mode, 8).expect("postfix-files mode");
        std::fs::create_dir_all(&path).expect("postfix dir");
        std::os::unix::fs::chown(&path, Some(uid), Some(gid)).expect("chown postfix dir");
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode)).expect("chmod postfix dir");
    }
    true
}

/// main.cf: no local delivery, one virtual catch-all Maildir, scripted refusals by local part,
/// no error sleeps or flow delays (tests send many rejected recipients quickly).
fn postfix_main_cf(dir: &Path, domains: &[&str]) -> String {
    let d = dir.display();
    let settings = [
        "compatibility_level = 3.6".to_string(),
        format!("queue_directory = {d}/queue"),
        format!("data_directory = {d}/data"),
        format!("maillog_file = {d}/postfix.log"),
        format!("maillog_file_prefixes = {d}"),
        "myhostname = mx.peer.test".into(),
        "mydestination =".into(),
        "inet_interfaces = 127.0.0.1".into(),
        "inet_protocols = ipv4".into(),
        "mynetworks = 127.0.0.0/8".into(),
        "alias_maps =".into(),
        "alias_database =".into(),
        "local_recipient_maps =".into(),
        format!("virtual_mailbox_domains = {}", domains.join(", ")),
        format!("virtual_mailbox_base = {d}/mail"),
        "virtual_mailbox_maps = static:catchall/".into(),
        format!("virtual_uid_maps = static:{VMAIL_ID}"),
        format!("virtual_gid_maps = static:{VMAIL_ID}"),
        "smtpd_recipient_restrictions = check_recipient_access inline:{ \
         { reject@ = 550 5.1.1 no such user }, { tempfail@ = 450 4.2.0 try later }, \
         { blocked@ = 554 5.7.1 Service unavailable; client host blocked using zen.spamhaus.org } }, \
         permit_mynetworks, reject_unauth_destination"
            .into(),
        "smtpd_peername_lookup = no".into(),
        "smtpd_error_sleep_time = 0s".into(),
        "smtpd_soft_error_limit = 1000".into(),
        "smtpd_hard_error_limit = 1000".into(),
        "in_flow_delay = 0s".into(),
        "biff = no".into(),
    ];
    settings.join("\n") + "\n"
}

/// Writes a self-signed certificate for mx.peer.test into `dir` and returns the main.cf lines
/// that offer STARTTLS with it.
fn postfix_tls_settings(dir: &Path) -> String {
    let certified = rcgen::generate_simple_self_signed(vec!["mx.peer.test".to_string()]).expect("certificate");
    let (key, cert) = (dir.join("tls-key.pem"), dir.join("tls-cert.pem"));
    std::fs::write(&key, certified.signing_key.serialize_pem()).expect("write TLS key");
    std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o600)).expect("chmod TLS key");
    std::fs::write(&cert, certified.cert.pem()).expect("write TLS certificate");
    format!(
        "smtpd_tls_security_level = may\nsmtpd_tls_chain_files = {}, {}\nsmtpd_tls_received_header = yes\n",
        key.display(),
        cert.display()
    )
}

/// master.cf: the smtpd on `ip:port` and the internal services, none chrooted.
pub fn postfix_master_cf(ip: &str, port: u16) -> String {
    let services = [
        format!("{ip}:{port} inet n - n - - smtpd"),
        "pickup unix n - n 60 1 pickup".into(),
        "cleanup unix n - n - 0 cleanup".into(),
        "qmgr unix n - n 300 1 qmgr".into(),
        "rewrite unix - - n - - trivial-rewrite".into(),
        "bounce unix - - n - 0 bounce".into(),
        "defer unix - - n - 0 bounce".into(),
        "trace unix - - n - 0 bounce".into(),
        "verify unix - - n - 1 verify".into(),
        "flush unix n - n 1000? 0 flush".into(),
        "proxymap unix - - n - - proxymap".into(),
        "smtp unix - - n - - smtp".into(),
        "relay unix - - n - - smtp".into(),
        "showq unix n - n - - showq".into(),
        "error unix - - n - - error".into(),
        "retry unix - - n - - error".into(),
        "discard unix - - n - - discard".into(),
        "local unix - n n - - local".into(),
        "virtual unix - n n - - virtual".into(),
        "lmtp unix - - n - - lmtp".into(),
        "anvil unix - - n - 1 anvil".into(),
        "scache unix - - n - 1 scache".into(),
        "postlog unix-dgram n - n - 1 postlogd".into(),
        "tlsmgr unix - - n 1000? 1 tlsmgr".into(),
    ];
    services.join("\n") + "\n"
}
