//! End to end in headless Chromium, clicked as a person would: first-run setup, add a domain,
//! read its DNS records, create 50 mailboxes, download the one-time Instantly CSV, and find the
//! 50 mailboxes on the list page. A PNG of every page lands in `target/test-output/browser/`.
//!
//! Needs `chromedriver` and `chromium` (Debian: chromium-driver, chromium); skipped when they are
//! missing unless INBOXGROVE_REQUIRE_PEERS=1 (tests/run installs them and sets it).

mod common;

use std::collections::BTreeMap;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use fantoccini::{Client, ClientBuilder, Locator};
use serde_json::json;

const CHROMIUM: &str = "/usr/bin/chromium";
const DOMAIN: &str = "grove-outreach.test";
const EMAIL: &str = "admin@grove-outreach.test";
const WORKSPACE: &str = "Grove Outreach";
const COUNT: usize = 50;
/// The longest any single page or download may take.
const STEP_TIMEOUT: Duration = Duration::from_secs(20);

/// A chromedriver on a loopback port; killed (with any browser it left behind) when dropped.
struct Driver {
    child: Child,
    url: String,
    /// The browser's profile directory: every Chromium process of this test names it.
    profile: PathBuf,
}

impl Driver {
    fn start(profile: &Path) -> Driver {
        let port = TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).expect("a free port").port();
        let child = Command::new("chromedriver")
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("start chromedriver");
        Driver { child, url: format!("http://127.0.0.1:{port}"), profile: profile.to_path_buf() }
    }

    /// Waits until chromedriver answers `/status` with `ready: true`.
    async fn wait_ready(&mut self) {
        let client = reqwest::Client::builder().timeout(Duration::from_secs(2)).build().expect("client");
        let deadline = Instant::now() + Duration::from_secs(15);
        loop {
            if let Ok(Some(status)) = self.child.try_wait() {
                panic!("chromedriver exited early: {status}");
            }
            if let Ok(response) = client.get(format!("{}/status", self.url)).send().await
                && let Ok(body) = response.json::<serde_json::Value>().await
                && body["value"]["ready"] == json!(true)
            {
                return;
            }
            assert!(Instant::now() < deadline, "chromedriver did not answer on {} within 15 s", self.url);
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        // A browser whose session was never closed (the test panicked) outlives chromedriver;
        // end exactly those processes: the ones started with this test's profile directory.
        let marker = format!("--user-data-dir={}", self.profile.display());
        for pid in processes_with_arg(&marker) {
            let _ = Command::new("kill").arg("-KILL").arg(pid.to_string()).status();
        }
    }
}

/// Process ids whose command line has exactly `arg` among its arguments.
fn processes_with_arg(arg: &str) -> Vec<u32> {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    entries
        .filter_map(Result::ok)
        .filter_map(|e| e.file_name().to_str()?.parse::<u32>().ok())
        .filter(|pid| {
            std::fs::read(format!("/proc/{pid}/cmdline"))
                .is_ok_and(|cmdline| cmdline.split(|b| *b == 0).any(|a| a == arg.as_bytes()))
        })
        .collect()
}

fn output_dir() -> PathBuf {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("target/test-output/browser");
    std::fs::create_dir_all(&dir).expect("create target/test-output/browser");
    dir
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn setup_domain_mailboxes_and_csv_in_chromium() {
    if !common::have_peer("chromedriver") || !common::have_peer(CHROMIUM) {
        return;
    }
    let started = Instant::now();
    let appliance = common::Appliance::start();
    let temp = tempfile::tempdir().expect("temp dir");
    let profile = temp.path().join("profile");
    let downloads = temp.path().join("downloads");
    std::fs::create_dir_all(&downloads).expect("download dir");
    let shots = output_dir();

    let mut driver = Driver::start(&profile);
    driver.wait_ready().await;

    let mut capabilities = serde_json::Map::new();
    capabilities.insert(
        "goog:chromeOptions".into(),
        json!({
            "binary": CHROMIUM,
            "args": [
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--disable-quic",
                "--no-first-run",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                "--disable-dev-shm-usage",
                "--window-size=1280,1000",
                format!("--user-data-dir={}", profile.display()),
            ],
            "prefs": {
                "download.default_directory": downloads.to_str().expect("utf-8 temp path"),
                "download.prompt_for_download": false,
                "download.directory_upgrade": true,
                "safebrowsing.enabled": false,
            },
        }),
    );
    let connector = hyper_util::client::legacy::connect::HttpConnector::new();
    let client = tokio::time::timeout(
        Duration::from_secs(30),
        ClientBuilder::new(connector).capabilities(capabilities).connect(&driver.url),
    )
    .await
    .expect("Chromium started within 30 s")
    .expect("a WebDriver session");

    // Run the steps on their own task so that the session is closed (and Chromium ends) even
    // when an assertion fails; the failure is then re-raised here.
    let mut steps =
        tokio::spawn(walk_through(client.clone(), appliance.setup_link.clone().expect("setup link"), downloads, shots));
    let outcome = tokio::time::timeout(Duration::from_secs(90), &mut steps).await;
    steps.abort();
    let _ = tokio::time::timeout(Duration::from_secs(10), client.close()).await;
    drop(driver);
    match outcome {
        Ok(Ok(())) => {}
        Ok(Err(e)) if e.is_panic() => std::panic::resume_unwind(e.into_panic()),
        Ok(Err(e)) => panic!("browser steps did not finish: {e}"),
        Err(_) => panic!("browser steps took longer than 90 s"),
    }
    println!("browser test took {:.1} s", started.elapsed().as_secs_f64());
}

async fn walk_through(client: Client, setup_link: String, downloads: PathBuf, shots: PathBuf) {
    // 1. First-run setup.
    client.goto(&setup_link).await.expect("open the setup link");
    let email = wait_for(&client, "input[name=email]").await;
    assert_eq!(client.title().await.expect("title"), "Set up · InboxGrove");
    screenshot(&client, &shots, "1-setup").await;
    email.send_keys(EMAIL).await.expect("type email");
    let password = client.find(Locator::Css("input[name=password]")).await.expect("password field");
    password.send_keys(common::PASSWORD).await.expect("type password");
    let workspace = client.find(Locator::Css("input[name=workspace]")).await.expect("workspace field");
    workspace.clear().await.expect("clear workspace");
    workspace.send_keys(WORKSPACE).await.expect("type workspace");
    click(&client, "#setup-submit").await;

    // 2. The domains page: add a domain.
    let name = wait_for(&client, "#domain-name").await;
    let url = client.current_url().await.expect("url");
    assert!(
        url.path().starts_with("/w/") && url.path().ends_with("/domains"),
        "setup lands on the domains page, got {url}"
    );
    let body = text_of(&client, "body").await;
    assert!(body.contains(EMAIL), "the header shows who is signed in:\n{body}");
    assert!(body.contains(WORKSPACE), "the header shows the workspace:\n{body}");
    screenshot(&client, &shots, "2-domains").await;
    name.send_keys(DOMAIN).await.expect("type the domain");
    click(&client, "#domain-add").await;

    // 3. The domain page: the DNS records to publish, then create the mailboxes.
    let count = wait_for(&client, "#mailbox-count").await;
    assert_eq!(text_of(&client, "h1").await, DOMAIN);
    let source = client.source().await.expect("page source");
    let purposes = common::select_text(&source, "table.records tbody tr td:first-child");
    for wanted in ["MX", "SPF", "DKIM", "DMARC", "Tracking"] {
        assert!(purposes.iter().any(|p| p == wanted), "the DNS table has a {wanted} row; it has {purposes:?}");
    }
    screenshot(&client, &shots, "3-domain").await;
    count.clear().await.expect("clear count");
    count.send_keys(&COUNT.to_string()).await.expect("type count");
    click(&client, "#mailbox-create").await;

    // 4. "Mailboxes created": 50 addresses and passwords, then the one-time CSV.
    wait_for(&client, "#credentials").await;
    assert_eq!(text_of(&client, "h1").await, "Mailboxes created");
    let source = client.source().await.expect("page source");
    let cells = common::select_text(&source, "#credentials tbody tr td");
    assert_eq!(cells.len(), COUNT * 2, "two cells per credential row");
    let shown: BTreeMap<String, String> = cells.chunks(2).map(|row| (row[0].clone(), row[1].clone())).collect();
    assert_eq!(shown.len(), COUNT, "{COUNT} different addresses: {shown:?}");
    for (address, password) in &shown {
        assert!(address.ends_with(&format!("@{DOMAIN}")), "{address} is on {DOMAIN}");
        assert!(password.len() >= 12, "{address} has a strong password, got {password:?}");
    }
    screenshot(&client, &shots, "4-created").await;
    click(&client, "#download-instantly").await;
    let csv_path = wait_for_download(&downloads).await;
    assert_eq!(csv_path.file_name().and_then(|n| n.to_str()), Some("instantly-credentials.csv"));
    let downloaded = read_instantly_csv(&csv_path);
    assert_eq!(downloaded.len(), COUNT, "{COUNT} data rows in the CSV");
    assert_eq!(downloaded, shown, "the CSV has the addresses and passwords the page showed");

    // 5. The mailbox list, reached through the navigation bar.
    click(&client, "nav.sections a[href$='/mailboxes']").await;
    wait_for(&client, "#select-all").await;
    assert_eq!(text_of(&client, "h1").await, format!("Mailboxes ({COUNT})"));
    let source = client.source().await.expect("page source");
    let listed = common::select_text(&source, "#selection tbody tr td:nth-child(2)");
    assert_eq!(listed.len(), COUNT, "the list shows {COUNT} mailboxes: {listed:?}");
    let listed: std::collections::BTreeSet<String> = listed.into_iter().collect();
    let created: std::collections::BTreeSet<String> = shown.keys().cloned().collect();
    assert_eq!(listed, created, "the list shows the mailboxes just created");
    screenshot(&client, &shots, "5-mailboxes").await;
}

/// Waits (bounded) for an element of the next page.
async fn wait_for(client: &Client, css: &str) -> fantoccini::elements::Element {
    match client.wait().at_most(STEP_TIMEOUT).for_element(Locator::Css(css)).await {
        Ok(element) => element,
        Err(e) => {
            let url = client.current_url().await.map(|u| u.to_string()).unwrap_or_default();
            let body = text_of(client, "body").await;
            panic!("no `{css}` within {STEP_TIMEOUT:?} on {url} ({e}); the page says:\n{body}");
        }
    }
}

async fn click(client: &Client, css: &str) {
    let element = client.find(Locator::Css(css)).await.unwrap_or_else(|e| panic!("find `{css}`: {e}"));
    element.click().await.unwrap_or_else(|e| panic!("click `{css}`: {e}"));
}

async fn text_of(client: &Client, css: &str) -> String {
    match client.find(Locator::Css(css)).await {
        Ok(element) => element.text().await.unwrap_or_default().trim().to_string(),
        Err(_) => String::new(),
    }
}

/// Saves a PNG of the whole page (the window is stretched to the page's height for the shot).
async fn screenshot(client: &Client, dir: &Path, name: &str) {
    let height = client
        .execute(
            "return Math.ceil(document.documentElement.scrollHeight + window.outerHeight - window.innerHeight);",
            vec![],
        )
        .await
        .ok()
        .and_then(|v| v.as_u64())
        .unwrap_or(1000);
    let height = u32::try_from(height.clamp(1000, 8000)).expect("clamped height fits");
    let _ = client.set_window_size(1280, height).await;
    let png = client.screenshot().await.expect("screenshot");
    let _ = client.set_window_size(1280, 1000).await;
    assert!(png.starts_with(b"\x89PNG"), "screenshot is a PNG");
    let path = dir.join(format!("{name}.png"));
    std::fs::write(&path, png).unwrap_or_else(|e| panic!("write {}: {e}", path.display()));
    println!("screenshot: {}", path.display());
}

/// Polls the download directory until one finished `.csv` file is there.
async fn wait_for_download(dir: &Path) -> PathBuf {
    let deadline = Instant::now() + STEP_TIMEOUT;
    loop {
        let names: Vec<PathBuf> =
            std::fs::read_dir(dir).expect("read download dir").filter_map(Result::ok).map(|e| e.path()).collect();
        let finished: Vec<&PathBuf> = names.iter().filter(|p| p.extension().is_some_and(|x| x == "csv")).collect();
        let partial = names.iter().any(|p| p.extension().is_some_and(|x| x == "crdownload"));
        if let [only] = finished.as_slice()
            && !partial
            && std::fs::metadata(only).is_ok_and(|m| m.len() > 0)
        {
            return (*only).clone();
        }
        assert!(finished.len() <= 1, "one download expected, found {names:?}");
        assert!(
            Instant::now() < deadline,
            "no CSV arrived in {} within {STEP_TIMEOUT:?}; it holds {names:?}",
            dir.display()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// The Email and IMAP Password columns of an Instantly CSV.
fn read_instantly_csv(path: &Path) -> BTreeMap<String, String> {
    let mut reader = csv::Reader::from_path(path).expect("open the CSV");
    let headers = reader.headers().expect("a header row").clone();
    let column = |name: &str| {
        headers.iter().position(|h| h == name).unwrap_or_else(|| panic!("no {name} column in {headers:?}"))
    };
    let (email, password) = (column("Email"), column("IMAP Password"));
    let mut rows = BTreeMap::new();
    for record in reader.records() {
        let record = record.expect("a CSV row");
        let previous = rows.insert(record[email].to_string(), record[password].to_string());
        assert!(previous.is_none(), "{} appears twice in the CSV", &record[email]);
    }
    rows
}
