//! A scriptable SMTP server: tests/peers/scripted_smtp.py (aiosmtpd, from the peer venv) on
//! ip:port, replying to each RCPT TO (and end of DATA) from a per-recipient script and recording
//! what it saw in files of its tempdir, which these methods read. [`ScriptedSmtp::start_with`]
//! adds optional behaviours (STARTTLS or implicit TLS, AUTH, a refused EHLO, SIZE, no 8BITMIME
//! or SMTPUTF8), [`ScriptedSmtp::metas`] what each accepted transaction looked like, and
//! [`ScriptedSmtp::commands`] every STARTTLS and AUTH it was sent, accepted or not.

use std::net::TcpStream;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use super::{
    STARTUP_TIMEOUT, Watchdog, have_venv_modules, log_file, peer_file, peer_tempdir, read_lossy, stop_child,
    venv_python, wait_for_banner, wait_until,
};

/// The envelope of one accepted message.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Envelope {
    pub mail_from: String,
    pub rcpt_to: Vec<String>,
}

/// Optional behaviours of the scripted server (all off by default: [`ScriptedSmtp::start`]).
#[derive(Clone, Debug, Default)]
pub struct SmtpOptions {
    /// PEM certificate and key: STARTTLS is offered, or TLS is spoken from the first byte with
    /// `implicit_tls`.
    pub tls: Option<(PathBuf, PathBuf)>,
    pub implicit_tls: bool,
    /// AUTH with exactly these credentials is required before MAIL.
    pub auth: Option<(String, String)>,
    /// EHLO is answered with 502 (HELO works).
    pub refuse_ehlo: bool,
    /// SIZE is advertised with this limit (and enforced).
    pub size: Option<u64>,
    pub no_8bitmime: bool,
    pub no_smtputf8: bool,
}

impl SmtpOptions {
    fn args(&self) -> Vec<String> {
        let mut args = Vec::new();
        if let Some((cert, key)) = &self.tls {
            args.extend(["--tls-cert".into(), cert.display().to_string()]);
            args.extend(["--tls-key".into(), key.display().to_string()]);
        }
        if self.implicit_tls {
            args.push("--implicit-tls".into());
        }
        if let Some((user, password)) = &self.auth {
            args.extend(["--auth".into(), format!("{user}:{password}")]);
        }
        if self.refuse_ehlo {
            args.push("--refuse-ehlo".into());
        }
        if let Some(size) = self.size {
            args.extend(["--size".into(), size.to_string()]);
        }
        if self.no_8bitmime {
            args.push("--no-8bitmime".into());
        }
        if self.no_smtputf8 {
            args.push("--no-smtputf8".into());
        }
        args
    }
}

/// What one accepted transaction looked like (NNNNNN.meta).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Meta {
    /// The client's address (`session.peer`).
    pub peer_ip: String,
    /// The MAIL FROM parameters, upper-cased ("SIZE=123", "BODY=8BITMIME", "SMTPUTF8").
    pub mail_options: Vec<String>,
    /// Whether the client said EHLO (false: HELO).
    pub esmtp: bool,
    /// The AUTH login, if the client authenticated.
    pub login: Option<String>,
    pub tls: bool,
}

/// A scriptable SMTP server on ip:port. Each RCPT TO gets the next reply of the script for that
/// recipient (the last one repeats); recipients not in the script are accepted. The key "DATA"
/// scripts the replies to the end of DATA the same way. Accepted messages are recorded.
pub struct ScriptedSmtp {
    pub ip: String,
    pub port: u16,
    child: Child,
    _watchdog: Watchdog,
    dir: tempfile::TempDir,
}

impl ScriptedSmtp {
    /// Whether the venv with aiosmtpd exists (prints SKIPPED or panics when not).
    pub fn available() -> bool {
        have_venv_modules("the scripted SMTP server", &["aiosmtpd"])
    }

    /// Starts the server; returns once it sends its banner.
    pub fn start(ip: &str, port: u16, script: &[(&str, &[&str])]) -> ScriptedSmtp {
        Self::start_with(ip, port, script, &SmtpOptions::default())
    }

    /// [`ScriptedSmtp::start`] with optional behaviours; returns once it accepts connections
    /// (and, without implicit TLS, sends its banner).
    pub fn start_with(ip: &str, port: u16, script: &[(&str, &[&str])], options: &SmtpOptions) -> ScriptedSmtp {
        assert!(Self::available(), "the peer venv is missing: call ScriptedSmtp::available() first");
        let python = venv_python().expect("venv python");
        let dir = peer_tempdir("inboxgrove-smtp-");
        let record = dir.path().join("record");
        std::fs::create_dir(&record).expect("record dir");
        let script_path = dir.path().join("script.json");
        std::fs::write(&script_path, script_json(script)).expect("write script");
        let child = Command::new(python)
            .arg(peer_file("scripted_smtp.py"))
            .arg("--listen")
            .arg(format!("{ip}:{port}"))
            .arg("--script")
            .arg(&script_path)
            .arg("--record")
            .arg(&record)
            .args(options.args())
            .stdin(Stdio::null())
            .stdout(log_file(dir.path(), "server.log"))
            .stderr(log_file(dir.path(), "server.log"))
            .spawn()
            .expect("start scripted_smtp.py");
        let stop = format!("kill {}", child.id());
        let mut server =
            ScriptedSmtp { ip: ip.to_string(), port, child, _watchdog: Watchdog::start(&stop, dir.path()), dir };
        let ready = if options.implicit_tls {
            wait_until(STARTUP_TIMEOUT, || {
                TcpStream::connect((ip, port)).is_ok() || !matches!(server.child.try_wait(), Ok(None))
            }) && matches!(server.child.try_wait(), Ok(None))
        } else {
            wait_for_banner(ip, port, || matches!(server.child.try_wait(), Ok(None))).is_some()
        };
        assert!(ready, "scripted SMTP did not answer on {ip}:{port}; log:\n{}", server.log());
        server
    }

    /// What each accepted transaction looked like, oldest first.
    pub fn metas(&self) -> Vec<Meta> {
        self.recorded("meta").iter().filter_map(|path| std::fs::read_to_string(path).ok()).map(parse_meta).collect()
    }

    /// The raw DATA of the accepted messages, oldest first.
    pub fn messages(&self) -> Vec<Vec<u8>> {
        self.recorded("eml").iter().filter_map(|path| std::fs::read(path).ok()).collect()
    }

    /// The envelopes of the accepted messages (accepted recipients only), oldest first.
    pub fn envelopes(&self) -> Vec<Envelope> {
        self.recorded("env").iter().filter_map(|path| std::fs::read_to_string(path).ok()).map(parse_envelope).collect()
    }

    /// Every STARTTLS and AUTH command received ("STARTTLS", "AUTH PLAIN"), on any connection,
    /// whatever came of it.
    pub fn commands(&self) -> Vec<String> {
        read_lossy(&self.dir.path().join("record/commands.log")).lines().map(str::to_string).collect()
    }

    /// How many RCPT TOs were seen for `recipient` (case-insensitive), whatever the reply.
    pub fn attempts(&self, recipient: &str) -> usize {
        let log = read_lossy(&self.dir.path().join("record/rcpt.log"));
        log.lines().filter(|line| line.split('\t').next().is_some_and(|r| r.eq_ignore_ascii_case(recipient))).count()
    }

    /// Polls (bounded by `timeout`) until at least `n` messages were accepted and returns
    /// them; panics with the server's log when they were not.
    pub fn wait_for(&self, n: usize, timeout: Duration) -> Vec<Vec<u8>> {
        let arrived = wait_until(timeout, || self.recorded("eml").len() >= n);
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

    /// The server's output so far (Python tracebacks land here).
    pub fn log(&self) -> String {
        read_lossy(&self.dir.path().join("server.log"))
    }

    /// Recorded files with extension `ext`, in arrival order (their names are sequence numbers).
    fn recorded(&self, ext: &str) -> Vec<PathBuf> {
        let Ok(entries) = std::fs::read_dir(self.dir.path().join("record")) else { return Vec::new() };
        let mut paths: Vec<PathBuf> = entries
            .map_while(Result::ok)
            .map(|e| e.path())
            .filter(|p| p.extension().is_some_and(|e| e == ext))
            .collect();
        paths.sort();
        paths
    }
}

impl Drop for ScriptedSmtp {
    fn drop(&mut self) {
        stop_child(&mut self.child);
    }
}

/// The script as JSON: lower-cased recipient (or "data") → replies.
fn script_json(script: &[(&str, &[&str])]) -> String {
    let map: serde_json::Map<String, serde_json::Value> =
        script.iter().map(|(key, replies)| (key.to_ascii_lowercase(), serde_json::json!(replies))).collect();
    serde_json::Value::Object(map).to_string()
}

fn parse_envelope(text: String) -> Envelope {
    let inside = |line: &str, prefix: &str| {
        line.strip_prefix(prefix).map(|rest| rest.trim_end().trim_start_matches('<').trim_end_matches('>').to_string())
    };
    Envelope {
        mail_from: text.lines().find_map(|l| inside(l, "MAIL FROM:")).unwrap_or_default(),
        rcpt_to: text.lines().filter_map(|l| inside(l, "RCPT TO:")).collect(),
    }
}

fn parse_meta(text: String) -> Meta {
    let value: serde_json::Value = serde_json::from_str(&text).unwrap_or_default();
    Meta {
        peer_ip: value["peer"][0].as_str().unwrap_or_default().to_string(),
        mail_options: value["mail_options"]
            .as_array()
            .map(|options| options.iter().filter_map(|o| o.as_str().map(str::to_string)).collect())
            .unwrap_or_default(),
        esmtp: value["esmtp"].as_bool().unwrap_or_default(),
        login: value["login"].as_str().map(str::to_string),
        tls: value["tls"].as_bool().unwrap_or_default(),
    }
}
