//! Shared by the integration tests: runs the real `inboxgrove` binary on a free port with a
//! temporary data dir, and drives it over HTTP as a browser would (cookie jar, CSRF fields).
#![allow(dead_code)]

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

pub mod mail_rig;
pub mod peers;
pub mod wire;

pub const BIN: &str = env!("CARGO_BIN_EXE_inboxgrove");
pub const PASSWORD: &str = "correct horse battery staple";

/// A running appliance; stopped (SIGTERM) when dropped.
pub struct Appliance {
    pub dir: tempfile::TempDir,
    pub base: String,
    pub setup_link: Option<String>,
    /// Where SMTP submission listens (STARTTLS), as printed at startup: `127.x.y.z:PORT`.
    pub smtp_submission: String,
    /// Where SMTP submission with implicit TLS listens, as printed at startup.
    pub smtp_submissions: String,
    /// The loopback address every mail listener of this appliance uses (with the default ports
    /// 2525 inbound, 2143 IMAP, 2993 IMAP over TLS unless `env` overrode them).
    pub mail_ip: std::net::Ipv4Addr,
    child: Child,
    pub output: mpsc::Receiver<String>,
    /// The extra environment it was started with, for [`Appliance::restart`].
    env: Vec<(String, String)>,
}

impl Appliance {
    pub fn start() -> Appliance {
        Self::start_with(tempfile::tempdir().expect("temp dir"), &[])
    }

    /// Starts on an existing data dir with extra environment variables.
    pub fn start_with(dir: tempfile::TempDir, env: &[(&str, &str)]) -> Appliance {
        let mut command = Command::new(BIN);
        command
            .args(["serve", "--data"])
            .arg(dir.path().join("data"))
            .env("INBOXGROVE_HTTP__LISTEN", "127.0.0.1:0")
            .env("INBOXGROVE_HOSTNAME", "mail.grove.test")
            .env_remove("INBOXGROVE_MASTER_KEY")
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit());
        // Mail listeners keep their default ports (exports show them) on an address of their own,
        // so appliances running side by side do not collide; `env` may override them.
        let loopback = free_loopback_address(&[2587, 2465, 2525, 2143, 2993]);
        command
            .env("INBOXGROVE_SMTP__SUBMISSION", format!("{loopback}:2587"))
            .env("INBOXGROVE_SMTP__SUBMISSIONS", format!("{loopback}:2465"))
            .env("INBOXGROVE_SMTP__INBOUND", format!("{loopback}:2525"))
            .env("INBOXGROVE_IMAP__LISTEN", format!("{loopback}:2143"))
            .env("INBOXGROVE_IMAP__LISTEN_TLS", format!("{loopback}:2993"));
        for (key, value) in env {
            command.env(key, value);
        }
        let mut child = command.spawn().expect("start inboxgrove");
        let stdout = child.stdout.take().expect("stdout");
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                println!("[inboxgrove] {line}");
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let mut base = None;
        let mut setup_link = None;
        while base.is_none() {
            let line = rx.recv_timeout(Duration::from_secs(30)).expect("inboxgrove printed its address");
            if let Some(url) = line.strip_prefix("InboxGrove admin UI on ") {
                base = Some(url.trim().to_string());
            }
        }
        // Then, in this order: the setup link (while no admin exists) and the SMTP listeners.
        let (mut smtp_submission, mut smtp_submissions) = (None, None);
        while smtp_submission.is_none() || smtp_submissions.is_none() {
            let line = rx.recv_timeout(Duration::from_secs(30)).expect("inboxgrove printed its SMTP listeners");
            if let Some(pos) = line.find("/setup/") {
                let start = line[..pos].rfind("http").expect("link");
                setup_link = Some(line[start..].trim().to_string());
            } else if let Some(rest) = line.strip_prefix("SMTP submission on ") {
                smtp_submission = rest.split_whitespace().next().map(str::to_string);
            } else if let Some(rest) = line.strip_prefix("SMTP submissions on ") {
                smtp_submissions = rest.split_whitespace().next().map(str::to_string);
            }
        }
        Appliance {
            dir,
            base: base.expect("base url"),
            setup_link,
            smtp_submission: smtp_submission.expect("submission address"),
            smtp_submissions: smtp_submissions.expect("submissions address"),
            mail_ip: loopback,
            child,
            output: rx,
            env: env.iter().map(|(key, value)| (key.to_string(), value.to_string())).collect(),
        }
    }

    /// The process id of the running appliance.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Kills the process with SIGKILL (no shutdown of any kind) and reaps it.
    pub fn kill9(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// Starts the appliance again on the same data dir with the same extra environment, after
    /// [`Appliance::kill9`] or [`Appliance::stop`] (a running appliance is stopped first).
    pub fn restart(mut self) -> Appliance {
        terminate(&mut self.child);
        let placeholder = tempfile::tempdir().expect("temp dir");
        let dir = std::mem::replace(&mut self.dir, placeholder);
        let env = std::mem::take(&mut self.env);
        drop(self);
        let env: Vec<(&str, &str)> = env.iter().map(|(key, value)| (key.as_str(), value.as_str())).collect();
        Appliance::start_with(dir, &env)
    }

    pub fn data_dir(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.base, path)
    }

    /// Moves the appliance's injected clock forward (it runs with `INBOXGROVE_TEST_CLOCK=1`);
    /// returns its new time.
    pub fn advance_clock(&self, seconds: i64) -> i64 {
        use std::io::{Read, Write};
        let address = self.base.trim_start_matches("http://").to_string();
        let mut stream = std::net::TcpStream::connect(&address).expect("connect to the appliance");
        let body = seconds.to_string();
        write!(
            stream,
            "POST /_test/clock HTTP/1.1\r\nHost: {address}\r\nContent-Type: text/plain\r\nContent-Length: {}\r\n\
             Connection: close\r\n\r\n{body}",
            body.len()
        )
        .expect("send the request");
        let mut response = String::new();
        stream.read_to_string(&mut response).expect("read the response");
        assert!(response.starts_with("HTTP/1.1 200"), "clock refused: {response}");
        let now = response.rsplit("\r\n\r\n").next().unwrap_or_default().trim();
        now.parse().unwrap_or_else(|_| panic!("clock answered {response}"))
    }

    /// Runs a CLI command against this appliance's data dir.
    pub fn cli(&self, args: &[&str], stdin: Option<&str>) -> std::process::Output {
        cli(&self.data_dir(), args, stdin)
    }

    /// Stops with SIGTERM and returns the exit status.
    pub fn stop(&mut self) -> std::process::ExitStatus {
        terminate(&mut self.child)
    }

    /// A new browser (cookie jar) for this appliance.
    pub fn browser(&self) -> Browser {
        Browser::new(&self.base)
    }

    /// Completes the first-run setup as `email` and returns the signed-in browser.
    pub async fn setup_admin(&self, email: &str) -> Browser {
        let browser = self.browser();
        let link = self.setup_link.clone().expect("a setup link on first start");
        let page = browser.get(&link).await;
        assert_eq!(page.status, 200, "{}", page.body);
        let done = browser
            .post_form(&link, &page.body, &[("email", email), ("password", PASSWORD), ("workspace", "Acme Outreach")])
            .await;
        assert_eq!(done.status, 200, "{}", done.body);
        assert!(done.url.contains("/w/"), "setup lands in the workspace, got {}", done.url);
        browser
    }
}

impl Drop for Appliance {
    fn drop(&mut self) {
        terminate(&mut self.child);
    }
}

/// The environment of an appliance that delivers: the injected clock, `nameserver` as its
/// resolver, destination MX hosts on `mx_port`, submission (STARTTLS) on 127.0.0.1:`submission`
/// and its other mail listeners on free loopback ports.
pub fn delivery_env(nameserver: &str, mx_port: u16, submission: u16) -> Vec<(String, String)> {
    let free = || format!("127.0.0.1:{}", peers::free_port("127.0.0.1"));
    vec![
        ("INBOXGROVE_TEST_CLOCK".into(), "1".into()),
        ("INBOXGROVE_DNS__NAMESERVERS".into(), format!("[\"{nameserver}\"]")),
        ("INBOXGROVE_DELIVERY__MX_PORT".into(), mx_port.to_string()),
        ("INBOXGROVE_DELIVERY__TIMEOUT".into(), "10s".into()),
        ("INBOXGROVE_SMTP__SUBMISSION".into(), format!("127.0.0.1:{submission}")),
        ("INBOXGROVE_SMTP__SUBMISSIONS".into(), free()),
        ("INBOXGROVE_SMTP__INBOUND".into(), free()),
        ("INBOXGROVE_IMAP__LISTEN".into(), free()),
        ("INBOXGROVE_IMAP__LISTEN_TLS".into(), free()),
    ]
}

/// A loopback address (in 127.0.0.0/8) on which every port in `ports` is free right now.
pub fn free_loopback_address(ports: &[u16]) -> std::net::Ipv4Addr {
    use std::hash::{BuildHasher, Hasher};
    use std::sync::atomic::{AtomicU64, Ordering};
    static PICKED: AtomicU64 = AtomicU64::new(0);
    for _ in 0..50 {
        let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
        hasher.write_u32(std::process::id());
        hasher.write_u64(PICKED.fetch_add(1, Ordering::Relaxed));
        let [a, b, c, ..] = hasher.finish().to_le_bytes();
        let address = std::net::Ipv4Addr::new(127, a.clamp(1, 254), b, c.clamp(1, 254));
        if ports.iter().all(|&port| std::net::TcpListener::bind((address, port)).is_ok()) {
            return address;
        }
    }
    panic!("no free loopback address for ports {ports:?}");
}

fn terminate(child: &mut Child) -> std::process::ExitStatus {
    if let Ok(Some(status)) = child.try_wait() {
        return status;
    }
    let _ = Command::new("kill").arg("-TERM").arg(child.id().to_string()).status();
    for _ in 0..100 {
        if let Ok(Some(status)) = child.try_wait() {
            return status;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let _ = child.kill();
    child.wait().expect("wait for inboxgrove")
}

/// Runs `inboxgrove` with `args` and `env`, expecting it to exit by itself within 20 seconds.
pub fn run_to_exit(args: &[&str], env: &[(&str, &str)]) -> std::process::Output {
    let mut command = Command::new(BIN);
    command.args(args).stdout(Stdio::piped()).stderr(Stdio::piped()).env_remove("INBOXGROVE_MASTER_KEY");
    for (key, value) in env {
        command.env(key, value);
    }
    let mut child = command.spawn().expect("run inboxgrove");
    for _ in 0..200 {
        if child.try_wait().expect("wait").is_some() {
            return child.wait_with_output().expect("output");
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let _ = child.kill();
    panic!("inboxgrove {args:?} kept running");
}

/// Runs the CLI on a data dir.
pub fn cli(data_dir: &Path, args: &[&str], stdin: Option<&str>) -> std::process::Output {
    cli_with_env(data_dir, args, stdin, &[])
}

/// Runs the CLI on a data dir with extra environment (config keys such as the resolver's).
pub fn cli_with_env(data_dir: &Path, args: &[&str], stdin: Option<&str>, env: &[(&str, &str)]) -> std::process::Output {
    use std::io::Write;
    let mut child = Command::new(BIN)
        .envs(env.iter().copied())
        .args(args)
        .arg("--data")
        .arg(data_dir)
        .env("INBOXGROVE_HOSTNAME", "mail.grove.test")
        .env_remove("INBOXGROVE_MASTER_KEY")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run inboxgrove");
    let mut input = child.stdin.take().expect("stdin");
    if let Some(text) = stdin {
        input.write_all(text.as_bytes()).expect("write stdin");
    }
    drop(input);
    child.wait_with_output().expect("inboxgrove output")
}

/// A page as the browser received it.
#[derive(Debug)]
pub struct Page {
    pub status: u16,
    pub url: String,
    pub body: String,
    pub content_type: String,
    pub disposition: String,
}

impl Page {
    pub fn csrf(&self) -> String {
        csrf_of(&self.body)
    }
}

/// A browser: a cookie jar that follows redirects.
pub struct Browser {
    pub client: reqwest::Client,
    base: String,
}

impl Browser {
    pub fn new(base: &str) -> Browser {
        Browser::with_headers(base, reqwest::header::HeaderMap::new())
    }

    /// A browser behind a reverse proxy that says it forwards for `client`.
    pub fn forwarded_for(base: &str, client: &str) -> Browser {
        let mut headers = reqwest::header::HeaderMap::new();
        headers.insert("x-forwarded-for", client.parse().expect("a header value"));
        Browser::with_headers(base, headers)
    }

    fn with_headers(base: &str, headers: reqwest::header::HeaderMap) -> Browser {
        let client = reqwest::Client::builder().cookie_store(true).default_headers(headers).build().expect("client");
        Browser { client, base: base.to_string() }
    }

    fn absolute(&self, url: &str) -> String {
        if url.starts_with("http") { url.to_string() } else { format!("{}{}", self.base, url) }
    }

    pub async fn get(&self, url: &str) -> Page {
        page(self.client.get(self.absolute(url)).send().await.expect("GET")).await
    }

    /// Submits a form found on `form_page` (its CSRF field is added) with `fields`.
    pub async fn post_form(&self, url: &str, form_page: &str, fields: &[(&str, &str)]) -> Page {
        let csrf = csrf_of(form_page);
        let mut all: Vec<(&str, &str)> = vec![("csrf", csrf.as_str())];
        all.extend_from_slice(fields);
        self.post_raw(url, &all).await
    }

    /// Posts exactly `fields` (no CSRF added).
    pub async fn post_raw(&self, url: &str, fields: &[(&str, &str)]) -> Page {
        let body = serde_html_form::to_string(fields).expect("encode form");
        let response = self
            .client
            .post(self.absolute(url))
            .header("content-type", "application/x-www-form-urlencoded")
            .body(body)
            .send()
            .await
            .expect("POST");
        page(response).await
    }
}

async fn page(response: reqwest::Response) -> Page {
    let header =
        |name: &str| response.headers().get(name).and_then(|v| v.to_str().ok()).unwrap_or_default().to_string();
    let (content_type, disposition) = (header("content-type"), header("content-disposition"));
    Page {
        status: response.status().as_u16(),
        url: response.url().to_string(),
        content_type,
        disposition,
        body: response.text().await.expect("body"),
    }
}

/// The value of the first hidden `csrf` field of a page.
pub fn csrf_of(html: &str) -> String {
    let marker = "name=\"csrf\" value=\"";
    let start = html.find(marker).unwrap_or_else(|| panic!("no csrf field in page:\n{html}")) + marker.len();
    html[start..start + html[start..].find('"').expect("end quote")].to_string()
}

/// All values of an attribute on elements matching a CSS selector.
pub fn select_attr(html: &str, selector: &str, attr: &str) -> Vec<String> {
    let doc = scraper::Html::parse_document(html);
    let sel = scraper::Selector::parse(selector).expect("selector");
    doc.select(&sel).filter_map(|e| e.value().attr(attr).map(str::to_string)).collect()
}

/// The texts of elements matching a CSS selector.
pub fn select_text(html: &str, selector: &str) -> Vec<String> {
    let doc = scraper::Html::parse_document(html);
    let sel = scraper::Selector::parse(selector).expect("selector");
    doc.select(&sel).map(|e| e.text().collect::<String>().trim().to_string()).collect()
}

/// Whether tests that need a real peer must fail (not skip) when it is missing.
pub fn peers_required() -> bool {
    std::env::var("INBOXGROVE_REQUIRE_PEERS").is_ok_and(|v| v == "1")
}

/// Skips (returns false, printing why) or fails when a peer program is missing.
pub fn have_peer(program: &str) -> bool {
    let found = Command::new("sh")
        .arg("-c")
        .arg(format!("command -v {program}"))
        .stdout(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if !found {
        assert!(!peers_required(), "{program} is required (INBOXGROVE_REQUIRE_PEERS=1) but not installed");
        println!("SKIPPED: {program} is not installed; run tests/run to install the peers");
    }
    found
}
