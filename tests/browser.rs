//! End to end in headless Chromium, clicked as a person would: first-run setup, add a domain
//! (the page warns that the hostname is not public), read its DNS records, create 50 mailboxes,
//! download the Instantly and the Smartlead file with the passwords from the same one-time page,
//! and find the 50 mailboxes on the list page. Then the domain's settings: pick a source address
//! among `[delivery] source_ips` and back to automatic, add an alias to two mailboxes, be refused
//! an alias that is a mailbox (error shown, typed values kept), set the catch-all, remove the
//! alias, and switch the List-Unsubscribe setting of the queue page, and save the workspace
//! settings (a bad time zone refused beside its field first). Then rename a mailbox and
//! export again (the names follow); invite someone and revoke it, invite a colleague who joins,
//! change their role, and open the used invite link; search and page the mailbox list; and give
//! the workspace a long name and look at the pages 390 px wide (no page scrolls sideways, the
//! header fits). Every result the pages claim is checked again in the database, the downloaded
//! files or through the CLI. A PNG of every page and state lands in `target/test-output/browser/`.
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
/// The configured egress addresses, as the environment passes the list.
const SOURCE_IPS: (&str, &str) = ("INBOXGROVE_DELIVERY__SOURCE_IPS", r#"["127.0.0.21","127.0.0.22"]"#);
/// The one of [`SOURCE_IPS`] the test picks.
const PICKED_IP: &str = "127.0.0.22";
/// The longest any single page or download may take.
const STEP_TIMEOUT: Duration = Duration::from_secs(20);
/// The longest all the steps together may take.
const WALK_TIMEOUT: Duration = Duration::from_secs(300);
/// A phone's viewport width, in CSS pixels.
const PHONE_WIDTH: u32 = 390;
/// The colleague invited, who joins the workspace.
const COLLEAGUE: &str = "colleague@elsewhere.test";
/// A workspace name of the longest length allowed (80 characters).
const LONG_NAME: &str = "Grove Outreach and Partners International Cold Email Operations, Nordic Division";

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
    let appliance = common::Appliance::start_with(tempfile::tempdir().expect("temp dir"), &[SOURCE_IPS]);
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
    let walk = Walk { client: client.clone(), shots, data: appliance.data_dir() };
    let mut steps = tokio::spawn(walk_through(walk, appliance.setup_link.clone().expect("setup link"), downloads));
    let outcome = tokio::time::timeout(WALK_TIMEOUT, &mut steps).await;
    steps.abort();
    let _ = tokio::time::timeout(Duration::from_secs(10), client.close()).await;
    drop(driver);
    match outcome {
        Ok(Ok(())) => {}
        Ok(Err(e)) if e.is_panic() => std::panic::resume_unwind(e.into_panic()),
        Ok(Err(e)) => panic!("browser steps did not finish: {e}"),
        Err(_) => panic!("browser steps took longer than {WALK_TIMEOUT:?}"),
    }
    println!("browser test took {:.1} s", started.elapsed().as_secs_f64());
}

/// What the steps share: the browser, where screenshots go, and the appliance's data dir (for
/// checking through the CLI and the database what the pages claim).
struct Walk {
    client: Client,
    shots: PathBuf,
    data: PathBuf,
}

async fn walk_through(walk: Walk, setup_link: String, downloads: PathBuf) {
    let created = first_run(&walk, &setup_link, &downloads).await;
    let mailboxes: Vec<&String> = created.keys().collect();
    let domain_page = open_domain_page(&walk).await;
    source_address(&walk, &domain_page).await;
    aliases_and_catch_all(&walk, &mailboxes).await;
    queue_settings(&walk).await;
    workspace_settings(&walk).await;
    rename_and_export(&walk, &downloads, mailboxes[4]).await;
    team(&walk).await;
    search_and_page(&walk, mailboxes[9]).await;
    long_name_and_phone_width(&walk, &domain_page).await;
}

/// Setup, a domain, 50 mailboxes and their CSV; returns the addresses and passwords created.
async fn first_run(walk: &Walk, setup_link: &str, downloads: &Path) -> BTreeMap<String, String> {
    let (client, shots) = (&walk.client, &walk.shots);
    // 1. First-run setup.
    client.goto(setup_link).await.expect("open the setup link");
    let email = wait_for(client, "input[name=email]").await;
    assert_eq!(client.title().await.expect("title"), "Set up · InboxGrove");
    screenshot(client, shots, "1-setup").await;
    email.send_keys(EMAIL).await.expect("type email");
    let password = client.find(Locator::Css("input[name=password]")).await.expect("password field");
    password.send_keys(common::PASSWORD).await.expect("type password");
    let workspace = client.find(Locator::Css("input[name=workspace]")).await.expect("workspace field");
    workspace.clear().await.expect("clear workspace");
    workspace.send_keys(WORKSPACE).await.expect("type workspace");
    click(client, "#setup-submit").await;

    // 2. The domains page: add a domain.
    let name = wait_for(client, "#domain-name").await;
    let url = client.current_url().await.expect("url");
    assert!(
        url.path().starts_with("/w/") && url.path().ends_with("/domains"),
        "setup lands on the domains page, got {url}"
    );
    let body = text_of(client, "body").await;
    assert!(body.contains(EMAIL), "the header shows who is signed in:\n{body}");
    assert!(body.contains(WORKSPACE), "the header shows the workspace:\n{body}");
    screenshot(client, shots, "2-domains").await;
    name.send_keys(DOMAIN).await.expect("type the domain");
    click(client, "#domain-add").await;

    // 3. The domain page: the DNS records to publish, then create the mailboxes.
    let count = wait_for(client, "#mailbox-count").await;
    assert_eq!(text_of(client, "h1").await, DOMAIN);
    let source = client.source().await.expect("page source");
    let purposes = common::select_text(&source, "table.records tbody tr td:first-child");
    for wanted in ["MX", "SPF", "DKIM", "DMARC", "Tracking"] {
        assert!(purposes.iter().any(|p| p == wanted), "the DNS table has a {wanted} row; it has {purposes:?}");
    }
    let banner = text_of(client, ".warning").await;
    assert!(
        banner.contains("not a public name") && banner.contains("Set hostname"),
        "the domain page warns about the hostname and names the setting: {banner:?}"
    );
    screenshot(client, shots, "3-domain").await;
    count.clear().await.expect("clear count");
    count.send_keys(&COUNT.to_string()).await.expect("type count");
    click(client, "#mailbox-create").await;

    // 4. "Mailboxes created": 50 addresses and passwords, then the one-time CSV.
    wait_for(client, "#credentials").await;
    assert_eq!(text_of(client, "h1").await, "Mailboxes created");
    let source = client.source().await.expect("page source");
    let cells = common::select_text(&source, "#credentials tbody tr td");
    assert_eq!(cells.len(), COUNT * 2, "two cells per credential row");
    let shown: BTreeMap<String, String> = cells.chunks(2).map(|row| (row[0].clone(), row[1].clone())).collect();
    assert_eq!(shown.len(), COUNT, "{COUNT} different addresses: {shown:?}");
    for (address, password) in &shown {
        assert!(address.ends_with(&format!("@{DOMAIN}")), "{address} is on {DOMAIN}");
        assert!(password.len() >= 12, "{address} has a strong password, got {password:?}");
    }
    screenshot(client, shots, "4-created").await;
    // Both sequencers' files, with the passwords, from the same page.
    click(client, "#download-instantly").await;
    let csv_path = wait_for_download(downloads).await;
    assert_eq!(csv_path.file_name().and_then(|n| n.to_str()), Some("instantly-credentials.csv"));
    let downloaded = csv_columns(&csv_path, "Email", "IMAP Password");
    assert_eq!(downloaded.len(), COUNT, "{COUNT} data rows in the CSV");
    assert_eq!(downloaded, shown, "the CSV has the addresses and passwords the page showed");
    click(client, "#download-smartlead").await;
    let csv_path = wait_for_download(downloads).await;
    assert_eq!(csv_path.file_name().and_then(|n| n.to_str()), Some("smartlead-credentials.csv"));
    assert_eq!(csv_columns(&csv_path, "from_email", "password"), shown, "Smartlead's file has the passwords too");
    assert_eq!(csv_columns(&csv_path, "from_email", "imap_password"), shown, "and the IMAP passwords");

    // 5. The mailbox list, reached through the navigation bar.
    click(client, "nav.sections a[href$='/mailboxes']").await;
    wait_for(client, "#select-all").await;
    assert_eq!(text_of(client, "h1").await, format!("Mailboxes ({})", COUNT + 1), "and the role mailbox");
    let source = client.source().await.expect("page source");
    let listed = common::select_text(&source, "#selection tbody tr td:nth-child(2)");
    assert_eq!(listed.len(), 50, "one page of 50 of the {} mailboxes: {listed:?}", COUNT + 1);
    let listed: std::collections::BTreeSet<String> = listed.into_iter().collect();
    let postmaster = format!("postmaster@{DOMAIN}");
    let mut every: std::collections::BTreeSet<String> = shown.keys().cloned().collect();
    every.insert(postmaster.clone());
    let first_page: std::collections::BTreeSet<String> = every.into_iter().take(50).collect();
    assert_eq!(listed, first_page, "the list shows the mailboxes just created and the role mailbox, by address");
    if listed.contains(&postmaster) {
        let rows = common::select_text(&source, "#selection tbody tr");
        let tagged: Vec<&String> = rows.iter().filter(|row| row.contains("Role mail")).collect();
        assert!(tagged.len() == 1 && tagged[0].contains(&postmaster), "the role mailbox is tagged: {rows:?}");
    }
    screenshot(client, shots, "5-mailboxes").await;
    shown
}

/// From the domains list (navigation bar) to the domain's page; returns the page's URL.
async fn open_domain_page(walk: &Walk) -> String {
    let client = &walk.client;
    click_through(client, "nav.sections a[href$='/domains']").await;
    wait_for(client, "#domain-name").await;
    follow(client, Locator::LinkText(DOMAIN)).await;
    wait_for(client, "#source-ip").await;
    assert_eq!(text_of(client, "h1").await, DOMAIN);
    client.current_url().await.expect("url").to_string()
}

/// 6–7. The egress address: pick one of the configured addresses, then automatic again.
async fn source_address(walk: &Walk, domain_page: &str) {
    let client = &walk.client;
    let offered = option_labels(client, "#source-ip option").await;
    assert_eq!(offered, ["Automatic", "127.0.0.21", "127.0.0.22"], "the select offers automatic and source_ips");
    assert_eq!(selected_label(client, "#source-ip").await, "Automatic", "a new domain sends from automatic");

    pick(client, "#source-ip", PICKED_IP).await;
    click_through(client, "#source-ip-save").await;
    wait_for(client, "#source-ip").await;
    assert_eq!(client.current_url().await.expect("url").as_str(), domain_page, "saving stays on the domain page");
    assert_eq!(selected_label(client, "#source-ip").await, PICKED_IP, "the saved address is selected");
    let current = text_of(client, "#source-ip-current").await;
    assert!(current.contains(PICKED_IP), "the page says where mail leaves from: {current}");
    assert_eq!(stored_source_ip(&walk.data).await.as_deref(), Some(PICKED_IP), "the database has the choice");
    screenshot(client, &walk.shots, "6-source-ip").await;

    pick(client, "#source-ip", "Automatic").await;
    click_through(client, "#source-ip-save").await;
    wait_for(client, "#source-ip").await;
    assert_eq!(selected_label(client, "#source-ip").await, "Automatic", "automatic is selected again");
    let current = text_of(client, "#source-ip-current").await;
    assert!(current.contains("picked automatically"), "the page says the address is automatic: {current}");
    assert_eq!(stored_source_ip(&walk.data).await, None, "the database has no assignment any more");
    screenshot(client, &walk.shots, "7-source-ip-automatic").await;
}

/// 8–11. The aliases page: add, refused input, catch-all (refused, then set), remove.
async fn aliases_and_catch_all(walk: &Walk, mailboxes: &[&String]) {
    let client = &walk.client;
    let [first, second, third, catch_all, ..] = mailboxes else { panic!("at least four mailboxes") };
    let sales = format!("sales@{DOMAIN}");
    click_through(client, "#aliases-link").await;
    wait_for(client, "#alias-add").await;
    assert!(
        client.current_url().await.expect("url").path().ends_with("/aliases"),
        "the link leads to the aliases page"
    );
    assert_eq!(text_of(client, "#aliases tbody").await, "No aliases yet.");

    // 8. sales@ to two mailboxes.
    type_into(client, "#alias-add input[name=local_part]", "sales").await;
    type_into(client, "#alias-add input[name=to]", &format!("{first}, {second}")).await;
    click_through(client, "#alias-add button[type=submit]").await;
    wait_for(client, "#alias-add").await;
    let mut targets = [first.as_str(), second.as_str()];
    targets.sort_unstable();
    assert_eq!(alias_rows(client).await, [(sales.clone(), targets.join(", "))], "listed with both targets");
    let listed = cli_alias_list(&walk.data).await;
    assert_eq!(listed, format!("{sales}\t{}\n", targets.join(",")), "the CLI lists the same alias");
    screenshot(client, &walk.shots, "8-alias-added").await;

    // 9. An alias whose address is a mailbox: refused, with what was typed still in the fields.
    let (local, _) = third.split_once('@').expect("an address");
    type_into(client, "#alias-add input[name=local_part]", local).await;
    type_into(client, "#alias-add input[name=to]", first).await;
    click_through(client, "#alias-add button[type=submit]").await;
    wait_for(client, "#alias-add").await;
    let error = text_of(client, "#alias-error").await;
    assert!(error.contains(third.as_str()) && error.contains("is a mailbox"), "the page says why: {error:?}");
    assert_eq!(field_value(client, "#alias-add input[name=local_part]").await, local, "the alias typed is kept");
    assert_eq!(field_value(client, "#alias-add input[name=to]").await, first.as_str(), "the targets typed are kept");
    assert_eq!(alias_rows(client).await.len(), 1, "nothing was added");
    assert_eq!(cli_alias_list(&walk.data).await, listed, "the CLI agrees nothing was added");
    screenshot(client, &walk.shots, "9-alias-refused").await;

    // 10. The catch-all.
    assert!(text_of(client, "main").await.contains("is refused (550 5.1.1)"), "no catch-all at first");
    let stranger = format!("nobody@{DOMAIN}");
    type_into(client, "#catch-all input[name=mailbox]", &stranger).await;
    click_through(client, "#catch-all button[type=submit]").await;
    wait_for(client, "#catch-all").await;
    let error = text_of(client, "#catch-all-error").await;
    assert!(error.contains("is not a mailbox of this workspace"), "the page says why: {error:?}");
    assert_eq!(field_value(client, "#catch-all input[name=mailbox]").await, stranger, "the address typed is kept");
    assert_eq!(stored_catch_all(&walk.data).await, None, "no catch-all was stored");
    let sentence = text_of(client, "main").await;
    assert!(sentence.contains("is refused (550 5.1.1)"), "the page still says there is no catch-all:\n{sentence}");
    assert_eq!(text_of(client, "#catch-all-current").await, "", "the refused address is not shown as current");
    screenshot(client, &walk.shots, "10-catch-all-refused").await;
    type_into(client, "#catch-all input[name=mailbox]", catch_all).await;
    click_through(client, "#catch-all button[type=submit]").await;
    wait_for(client, "#catch-all-current").await;
    assert_eq!(text_of(client, "#catch-all-current").await, catch_all.as_str(), "the page shows the catch-all");
    assert_eq!(field_value(client, "#catch-all input[name=mailbox]").await, catch_all.as_str());
    assert_eq!(stored_catch_all(&walk.data).await.as_deref(), Some(catch_all.as_str()), "the database agrees");
    screenshot(client, &walk.shots, "10-catch-all-set").await;

    // 11. Remove sales@.
    click_through(client, &format!("#aliases button[aria-label='Remove {sales}']")).await;
    wait_for(client, "#alias-add").await;
    assert_eq!(text_of(client, "#aliases tbody").await, "No aliases yet.", "the alias is gone");
    assert_eq!(text_of(client, "#catch-all-current").await, catch_all.as_str(), "the catch-all stays");
    assert_eq!(cli_alias_list(&walk.data).await, "(no aliases)\n", "the CLI lists no alias");
    screenshot(client, &walk.shots, "11-alias-removed").await;
}

/// 12. The queue page's List-Unsubscribe checkbox, switched and saved twice.
async fn queue_settings(walk: &Walk) {
    let client = &walk.client;
    click_through(client, "nav.sections a[href$='/queue']").await;
    wait_for(client, "#list-unsubscribe").await;
    let before = is_checked(client, "#list-unsubscribe").await;
    assert_eq!(stored_list_unsubscribe(&walk.data).await, before, "the checkbox shows the stored setting");
    for (round, wanted) in [!before, before].into_iter().enumerate() {
        click(client, "#list-unsubscribe").await;
        click_through(client, "#mail-settings button[type=submit]").await;
        wait_for(client, "#list-unsubscribe").await;
        assert_eq!(is_checked(client, "#list-unsubscribe").await, wanted, "saved and shown checked: {wanted}");
        assert_eq!(stored_list_unsubscribe(&walk.data).await, wanted, "the database agrees");
        if round == 0 {
            screenshot(client, &walk.shots, "12-queue-settings").await;
        }
    }
}

/// 12b. The workspace settings, from the top bar's Settings: a time zone that is not one is
/// refused beside its field with what was typed kept; then the default daily limit and a postal
/// address on two lines are saved and shown again with a notice.
async fn workspace_settings(walk: &Walk) {
    let client = &walk.client;
    click_through(client, "header .who a[href$='/settings/workspace']").await;
    wait_for(client, "#ws-default-daily-limit").await;
    assert_eq!(field_value(client, "#ws-default-daily-limit").await, "40");
    type_into(client, "#ws-time-zone", "Mars/Olympus").await;
    click_through(client, "#workspace-settings-save").await;
    wait_for(client, "#ws-time-zone-error").await;
    assert!(text_of(client, "#ws-time-zone-error").await.contains("is not an IANA time zone"));
    assert_eq!(field_value(client, "#ws-time-zone").await, "Mars/Olympus", "what was typed stays");
    screenshot(client, &walk.shots, "12b-workspace-settings-error").await;
    type_into(client, "#ws-time-zone", "Europe/Berlin").await;
    type_into(client, "#ws-default-daily-limit", "30").await;
    type_into(client, "#ws-postal-address", "Grove Outreach GmbH\nHauptstrasse 1, 10115 Berlin").await;
    click_through(client, "#workspace-settings-save").await;
    wait_for(client, "#saved").await;
    assert_eq!(text_of(client, "#saved").await, "Workspace settings saved.");
    assert_eq!(field_value(client, "#ws-default-daily-limit").await, "30");
    let sql = "SELECT default_daily_limit FROM workspaces WHERE name = ?1";
    assert_eq!(query_db::<i64>(&walk.data, sql, WORKSPACE).await, 30, "the database agrees");
    let sql = "SELECT postal_address FROM workspaces WHERE name = ?1";
    assert_eq!(
        query_db::<String>(&walk.data, sql, WORKSPACE).await,
        "Grove Outreach GmbH\nHauptstrasse 1, 10115 Berlin"
    );
    screenshot(client, &walk.shots, "12c-workspace-settings-saved").await;
}

/// Step 13: rename a mailbox, then export the page again. Both sequencers' names follow the
/// new name, and the passwords, shown once, are no longer in the files.
async fn rename_and_export(walk: &Walk, downloads: &Path, address: &str) {
    let client = &walk.client;
    click_through(client, "nav.sections a[href$='/mailboxes']").await;
    wait_for(client, "#select-all").await;
    follow(client, Locator::LinkText(address)).await;
    wait_for(client, "input[name=display_name]").await;
    assert_eq!(text_of(client, "h1").await, address);
    type_into(client, "input[name=display_name]", "Rosalind Okafor-Quist").await;
    click_through(client, "main form button[type=submit]").await;
    wait_for(client, "#select-all").await;
    let row = format!("//table[@id='mailboxes']//tr[td/a[normalize-space()='{address}']]/td[3]");
    let shown = client.find(Locator::XPath(&row)).await.expect("the renamed row").text().await.expect("text");
    assert_eq!(shown, "Rosalind Okafor-Quist", "the list shows the new name");
    screenshot(client, &walk.shots, "13-renamed").await;

    click(client, "#select-all").await;
    click(client, "#export-instantly").await;
    let instantly = read_csv(&wait_for_download(downloads).await);
    let ours = instantly.iter().find(|r| r["Email"] == address).expect("the renamed mailbox is exported");
    assert_eq!((ours["First Name"].as_str(), ours["Last Name"].as_str()), ("Rosalind", "Okafor-Quist"));
    assert!(instantly.iter().all(|r| r["IMAP Password"].is_empty()), "passwords are not exported again");
    click(client, "#export-smartlead").await;
    let smartlead = read_csv(&wait_for_download(downloads).await);
    let ours = smartlead.iter().find(|r| r["from_email"] == address).expect("the renamed mailbox is exported");
    assert_eq!(ours["from_name"], "Rosalind Okafor-Quist");
    assert_eq!(smartlead.len(), instantly.len(), "the same mailboxes in both files");
}

/// 14–17. The members page: invite and revoke; invite a colleague who joins through the link;
/// change their role; the used link then says so and offers sign-in.
async fn team(walk: &Walk) {
    let client = &walk.client;
    click_through(client, "nav.sections a[href$='/members']").await;
    wait_for(client, "#invites").await;

    // 14. Invite, listed as pending, revoked (after the confirmation), and its link is dead.
    let revoked_link = invite(client, "pending@elsewhere.test", "member").await;
    let pending = client.source().await.expect("page source");
    assert_eq!(common::select_text(&pending, "#invites td.email"), ["pending@elsewhere.test"]);
    assert_eq!(common::select_text(&pending, "#invites td.role"), ["member"]);
    screenshot(client, &walk.shots, "14-invited").await;
    confirm_through(client, "#invites form.revoke-invite button", "Revoke the invite for pending@elsewhere.test").await;
    wait_for(client, "#invites").await;
    assert_eq!(text_of(client, "#invites tbody").await, "No pending invites. Invite someone below.");
    assert_eq!(
        query_db::<i64>(&walk.data, "SELECT count(*) FROM audit_log WHERE action = ?1", "member.invite_revoke").await,
        1
    );
    screenshot(client, &walk.shots, "15-revoked").await;

    // 15. A colleague is invited as viewer and joins (signed out, in the same browser).
    let link = invite(client, COLLEAGUE, "viewer").await;
    click_through(client, "header form[action='/logout'] button").await;
    client.goto(&revoked_link).await.expect("open the revoked link");
    wait_for(client, ".dead-link").await;
    let said = text_of(client, ".dead-link").await;
    assert!(said.contains("no longer valid"), "the revoked link says it no longer works: {said}");
    client.goto(&link).await.expect("open the invite link");
    wait_for(client, "input[name=password]").await;
    assert!(text_of(client, "main").await.contains(COLLEAGUE), "the invite names the address");
    type_into(client, "input[name=password]", common::PASSWORD).await;
    click_through(client, "main form button[type=submit]").await;
    wait_for(client, "nav.sections").await;
    assert!(text_of(client, "header").await.contains(WORKSPACE), "the colleague is in the workspace");
    click_through(client, "header form[action='/logout'] button").await;

    // 16. Back as the owner: the colleague is a viewer; make them a member.
    wait_for(client, "#login-submit").await;
    type_into(client, "input[name=email]", EMAIL).await;
    type_into(client, "input[name=password]", common::PASSWORD).await;
    click_through(client, "#login-submit").await;
    wait_for(client, "nav.sections").await;
    click_through(client, "nav.sections a[href$='/members']").await;
    wait_for(client, "#members").await;
    let row = format!("//table[@id='members']//tr[td[@class='email' and normalize-space()='{COLLEAGUE}']]");
    let role = client.find(Locator::XPath(&format!("{row}/td[@class='role']"))).await.expect("the colleague's row");
    assert_eq!(role.text().await.expect("role"), "viewer");
    let select = client.find(Locator::XPath(&format!("{row}//select[@name='role']"))).await.expect("role select");
    select.select_by_label("member").await.expect("pick member");
    follow(client, Locator::XPath(&format!("{row}//form[contains(@class,'change-role')]//button"))).await;
    wait_for(client, "#members").await;
    let role = client.find(Locator::XPath(&format!("{row}/td[@class='role']"))).await.expect("the colleague's row");
    assert_eq!(role.text().await.expect("role"), "member", "the page shows the new role");
    let stored: String = query_db(
        &walk.data,
        "SELECT m.role FROM memberships m JOIN users u ON u.id = m.user_id WHERE u.email = ?1",
        COLLEAGUE,
    )
    .await;
    assert_eq!(stored, "member", "the database has the new role");
    assert_eq!(
        query_db::<i64>(&walk.data, "SELECT count(*) FROM audit_log WHERE action = ?1", "member.role_change").await,
        1
    );
    screenshot(client, &walk.shots, "16-role-changed").await;

    // 17. The used invite link: it says it was used and offers sign-in.
    client.goto(&link).await.expect("open the used link");
    wait_for(client, ".dead-link").await;
    let said = text_of(client, ".dead-link").await;
    assert!(said.contains("used"), "the page says the link was used: {said}");
    screenshot(client, &walk.shots, "17-used-invite").await;
    click_through(client, ".dead-link a.sign-in").await;
    wait_for(client, "nav.sections").await;
}

/// Fills in the invite form and returns the one-time link the page shows.
async fn invite(client: &Client, email: &str, role: &str) -> String {
    type_into(client, "form[action$='/members'] input[name=email]", email).await;
    pick(client, "form[action$='/members'] select[name=role]", role).await;
    click_through(client, "form[action$='/members'] button[type=submit]").await;
    wait_for(client, "#invite-link").await;
    let link = text_of(client, "#invite-link").await;
    let path = link.find("/invite/").map(|at| &link[at..]).unwrap_or_else(|| panic!("an invite link: {link}"));
    client.current_url().await.expect("url").join(path).expect("the link on this origin").to_string()
}

/// Clicks a button whose form asks for confirmation, checks the question, accepts it, and waits
/// for the next page.
async fn confirm_through(client: &Client, css: &str, question: &str) {
    let old = client.find(Locator::Css("html")).await.expect("the current page");
    click(client, css).await;
    let deadline = Instant::now() + STEP_TIMEOUT;
    let asked = loop {
        if let Ok(text) = client.get_alert_text().await {
            break text;
        }
        assert!(Instant::now() < deadline, "clicking `{css}` asked nothing within {STEP_TIMEOUT:?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert!(asked.contains(question), "the confirmation names what is lost: {asked:?}");
    client.accept_alert().await.expect("accept the confirmation");
    while old.tag_name().await.is_ok() {
        assert!(Instant::now() < deadline, "confirming `{css}` did not lead to another page within {STEP_TIMEOUT:?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// 18. More mailboxes than a page holds (five more from the CLI): page through them, then search.
async fn search_and_page(walk: &Walk, wanted: &str) {
    let client = &walk.client;
    let data = walk.data.clone();
    let output = tokio::task::spawn_blocking(move || {
        common::cli(&data, &["mailbox", "add", "--domain", DOMAIN, "--count", "5"], None)
    })
    .await
    .expect("the CLI ran");
    assert!(output.status.success(), "mailbox add: {}", String::from_utf8_lossy(&output.stderr));
    let total: i64 = query_db(&walk.data, "SELECT count(*) FROM mailboxes WHERE address LIKE '%@' || ?1", DOMAIN).await;
    assert!(total > 50, "more than a page: {total}");

    click_through(client, "nav.sections a[href$='/mailboxes']").await;
    wait_for(client, "#pager-summary").await;
    assert_eq!(text_of(client, "#pager-summary").await, format!("1–50 of {total}"));
    let first = common::select_text(&client.source().await.expect("source"), "#mailboxes tbody td:nth-child(2)");
    assert_eq!(first.len(), 50);
    click_through(client, "#pager-next").await;
    wait_for(client, "#pager-summary").await;
    assert_eq!(text_of(client, "#pager-summary").await, format!("51–{total} of {total}"));
    let second = common::select_text(&client.source().await.expect("source"), "#mailboxes tbody td:nth-child(2)");
    assert_eq!(second.len(), usize::try_from(total - 50).expect("a count"));
    assert!(second.iter().all(|a| !first.contains(a)), "no mailbox on both pages");
    screenshot(client, &walk.shots, "18-page-two").await;

    let local = wanted.split('@').next().expect("an address");
    type_into(client, "#mailbox-search", local).await;
    click_through(client, "#mailbox-filters button[type=submit]").await;
    wait_for(client, "#pager-summary").await;
    let found = common::select_text(&client.source().await.expect("source"), "#mailboxes tbody td:nth-child(2)");
    // Generated names may share a prefix (chris@, chrisk@): every match contains what was typed.
    assert!(
        found.iter().any(|a| a == wanted) && found.iter().all(|a| a.contains(local)),
        "the search finds the mailbox: {found:?}"
    );
    assert_eq!(text_of(client, "#pager-summary").await, format!("1–{n} of {n}", n = found.len()));
    assert_eq!(field_value(client, "#mailbox-search").await, local, "the search stays in the box");
    screenshot(client, &walk.shots, "19-search").await;
}

/// 19–20. An 80-character workspace name keeps the header on one line; at a phone's width no page
/// scrolls sideways, the header's items are all on screen, and wide tables scroll in their box.
async fn long_name_and_phone_width(walk: &Walk, domain_page: &str) {
    let client = &walk.client;
    let base = client.current_url().await.expect("url");
    let ws = base.path().split('/').nth(2).expect("a workspace path").to_string();
    let header_height = "return document.querySelector('header.top').getBoundingClientRect().height;";
    let before = client.execute(header_height, vec![]).await.expect("header height");
    let data = walk.data.clone();
    let output = tokio::task::spawn_blocking(move || {
        common::cli(&data, &["workspace", "set", WORKSPACE, "--name", LONG_NAME], None)
    })
    .await
    .expect("the CLI ran");
    assert!(output.status.success(), "workspace set: {}", String::from_utf8_lossy(&output.stderr));
    assert_eq!(LONG_NAME.chars().count(), 80);

    let pages = [
        format!("/w/{ws}/domains"),
        domain_page.to_string(),
        format!("/w/{ws}/mailboxes"),
        format!("/w/{ws}/members"),
        format!("/w/{ws}/queue"),
        format!("/w/{ws}/audit"),
        format!("/w/{ws}/settings/workspace"),
    ];
    client.goto(&pages[2]).await.expect("open the mailbox list");
    wait_for(client, ".workspace-name").await;
    screenshot(client, &walk.shots, "20-long-name").await;
    let after = client.execute(header_height, vec![]).await.expect("header height");
    assert_eq!(after, before, "a long name does not make the header wrap");
    let name = client.find(Locator::Css(".workspace-name")).await.expect("the name");
    assert_eq!(name.attr("title").await.expect("title").as_deref(), Some(LONG_NAME), "the full name is its title");

    client.set_window_size(PHONE_WIDTH, 1000).await.expect("phone width");
    let width = client.execute("return window.innerWidth;", vec![]).await.expect("width");
    assert!(width.as_u64().is_some_and(|w| w <= u64::from(PHONE_WIDTH)), "the viewport is a phone's: {width}");
    let overflow = "const w = document.documentElement.clientWidth;
        const out = [...document.querySelectorAll('header.top .brand, header.top nav, header.top .who')]
            .filter(e => { const r = e.getBoundingClientRect(); return r.left < 0 || r.right > w + 1; })
            .map(e => e.className || e.tagName);
        const wide = [...document.body.querySelectorAll('*')]
            .filter(e => e.getBoundingClientRect().right > w + 1)
            .slice(-3).map(e => e.tagName + '.' + e.className + '#' + e.id + ' ' + e.getBoundingClientRect().width);
        return { page: document.documentElement.scrollWidth - w, header: out, wide: wide };";
    for (i, page) in pages.iter().enumerate() {
        let url = base.join(page).expect("a page url");
        client.goto(url.as_str()).await.expect("open the page");
        wait_for(client, "header.top").await;
        let measured = client.execute(overflow, vec![]).await.expect("measure");
        assert_eq!(measured["page"], json!(0), "{page} does not scroll sideways at {PHONE_WIDTH} px: {measured}");
        assert_eq!(measured["header"], json!([]), "{page}: the header's items are on screen: {measured}");
        screenshot_at(client, &walk.shots, &format!("21-phone-{i}"), PHONE_WIDTH).await;
    }
    client.set_window_size(1280, 1000).await.expect("back to desktop width");
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

/// Clicks `css` (a link or a submit button) and waits until the next page has replaced this one.
async fn click_through(client: &Client, css: &str) {
    follow(client, Locator::Css(css)).await;
}

/// Clicks what `locator` finds and waits (bounded) until the next page has replaced this one,
/// even when it has the same address (a form re-rendered with its error).
async fn follow(client: &Client, locator: Locator<'_>) {
    let old = client.find(Locator::Css("html")).await.expect("the current page");
    let target = client.find(locator).await.unwrap_or_else(|e| panic!("find {locator:?}: {e}"));
    target.click().await.unwrap_or_else(|e| panic!("click {locator:?}: {e}"));
    let deadline = Instant::now() + STEP_TIMEOUT;
    while old.tag_name().await.is_ok() {
        assert!(Instant::now() < deadline, "clicking {locator:?} did not lead to another page within {STEP_TIMEOUT:?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Clears a text field and types `text` into it.
async fn type_into(client: &Client, css: &str, text: &str) {
    let field = client.find(Locator::Css(css)).await.unwrap_or_else(|e| panic!("find `{css}`: {e}"));
    field.clear().await.unwrap_or_else(|e| panic!("clear `{css}`: {e}"));
    field.send_keys(text).await.unwrap_or_else(|e| panic!("type into `{css}`: {e}"));
}

/// The current value of a form field (what the person sees in it).
async fn field_value(client: &Client, css: &str) -> String {
    let field = client.find(Locator::Css(css)).await.unwrap_or_else(|e| panic!("find `{css}`: {e}"));
    field.prop("value").await.unwrap_or_else(|e| panic!("value of `{css}`: {e}")).unwrap_or_default()
}

async fn is_checked(client: &Client, css: &str) -> bool {
    let field = client.find(Locator::Css(css)).await.unwrap_or_else(|e| panic!("find `{css}`: {e}"));
    field.is_selected().await.unwrap_or_else(|e| panic!("state of `{css}`: {e}"))
}

/// Picks the option labelled `label` of a select, as a click on it would.
async fn pick(client: &Client, css: &str, label: &str) {
    let select = client.find(Locator::Css(css)).await.unwrap_or_else(|e| panic!("find `{css}`: {e}"));
    select.select_by_label(label).await.unwrap_or_else(|e| panic!("pick {label} in `{css}`: {e}"));
}

/// The labels of the options matching `css`, in page order.
async fn option_labels(client: &Client, css: &str) -> Vec<String> {
    let options = client.find_all(Locator::Css(css)).await.unwrap_or_else(|e| panic!("find `{css}`: {e}"));
    let mut labels = Vec::new();
    for option in options {
        labels.push(option.prop("label").await.expect("option label").unwrap_or_default().trim().to_string());
    }
    labels
}

/// The label of the option a select shows as chosen.
async fn selected_label(client: &Client, select: &str) -> String {
    let chosen = option_labels(client, &format!("{select} option:checked")).await;
    assert_eq!(chosen.len(), 1, "one option of `{select}` is chosen: {chosen:?}");
    chosen.into_iter().next().unwrap_or_default()
}

/// The rows of the aliases table: (alias, "delivers to" text); empty when it says there is none.
async fn alias_rows(client: &Client) -> Vec<(String, String)> {
    let source = client.source().await.expect("page source");
    let doc = scraper::Html::parse_document(&source);
    let rows = scraper::Selector::parse("#aliases tbody tr").expect("selector");
    let cells = scraper::Selector::parse("td").expect("selector");
    doc.select(&rows)
        .map(|row| row.select(&cells).map(|c| c.text().collect::<String>().trim().to_string()).collect::<Vec<_>>())
        .filter(|cells| cells.len() == 3)
        .map(|cells| (cells[0].clone(), cells[1].clone()))
        .collect()
}

/// `inboxgrove alias list --domain DOMAIN` on the appliance's data dir: its standard output.
async fn cli_alias_list(data: &Path) -> String {
    let data = data.to_path_buf();
    let output = tokio::task::spawn_blocking(move || common::cli(&data, &["alias", "list", "--domain", DOMAIN], None))
        .await
        .expect("the CLI ran");
    assert!(output.status.success(), "alias list: {}", String::from_utf8_lossy(&output.stderr));
    String::from_utf8(output.stdout).expect("utf-8 output")
}

/// Runs one query of one optional value on the appliance's database (read while it serves).
async fn query_db<T: rusqlite::types::FromSql + Send + 'static>(
    data: &Path,
    sql: &'static str,
    param: &'static str,
) -> T {
    let db = data.join("inboxgrove.db");
    tokio::task::spawn_blocking(move || {
        let conn = rusqlite::Connection::open(&db).expect("open the appliance's database");
        conn.busy_timeout(Duration::from_secs(10)).expect("busy timeout");
        conn.query_row(sql, [param], |row| row.get(0)).unwrap_or_else(|e| panic!("{sql}: {e}"))
    })
    .await
    .expect("the query ran")
}

/// The domain's assigned egress address (`None`: automatic).
async fn stored_source_ip(data: &Path) -> Option<String> {
    query_db(data, "SELECT source_ip FROM domains WHERE name = ?1", DOMAIN).await
}

/// The address of the domain's catch-all mailbox.
async fn stored_catch_all(data: &Path) -> Option<String> {
    let sql = "SELECT m.address FROM domains d LEFT JOIN mailboxes m ON m.id = d.catch_all_mailbox_id \
               WHERE d.name = ?1";
    query_db(data, sql, DOMAIN).await
}

/// Whether the workspace adds List-Unsubscribe headers.
async fn stored_list_unsubscribe(data: &Path) -> bool {
    query_db::<i64>(data, "SELECT list_unsubscribe FROM workspaces WHERE name = ?1", WORKSPACE).await != 0
}

/// Saves a PNG of the whole page (the window is stretched to the page's height for the shot).
async fn screenshot(client: &Client, dir: &Path, name: &str) {
    screenshot_at(client, dir, name, 1280).await;
}

/// [`screenshot`] with the window `width` CSS pixels wide; the window is that wide afterwards.
async fn screenshot_at(client: &Client, dir: &Path, name: &str, width: u32) {
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
    let _ = client.set_window_size(width, height).await;
    let png = client.screenshot().await.expect("screenshot");
    let _ = client.set_window_size(width, 1000).await;
    assert!(png.starts_with(b"\x89PNG"), "screenshot is a PNG");
    let path = dir.join(format!("{name}.png"));
    std::fs::write(&path, png).unwrap_or_else(|e| panic!("write {}: {e}", path.display()));
    println!("screenshot: {}", path.display());
}

/// Polls the download directory until one finished `.csv` file is there, and moves it out of the
/// way (into `done/`) so that the next download is the only one again.
async fn wait_for_download(dir: &Path) -> PathBuf {
    let arrived = arrived_download(dir).await;
    let done = dir.join("done");
    std::fs::create_dir_all(&done).expect("create done/");
    let kept = done.join(arrived.file_name().expect("a file name"));
    std::fs::rename(&arrived, &kept).expect("move the download");
    kept
}

async fn arrived_download(dir: &Path) -> PathBuf {
    let deadline = Instant::now() + STEP_TIMEOUT;
    loop {
        let names: Vec<PathBuf> = std::fs::read_dir(dir)
            .expect("read download dir")
            .filter_map(Result::ok)
            .map(|e| e.path())
            .filter(|p| p.is_file())
            .collect();
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

/// The rows of a CSV file, each as header → value.
fn read_csv(path: &Path) -> Vec<BTreeMap<String, String>> {
    let mut reader = csv::Reader::from_path(path).expect("open the CSV");
    let headers = reader.headers().expect("a header row").clone();
    reader
        .records()
        .map(|record| {
            let record = record.expect("a CSV row");
            headers.iter().zip(record.iter()).map(|(h, v)| (h.to_string(), v.to_string())).collect()
        })
        .collect()
}

/// Two columns of a CSV file as key → value; a key may appear only once.
fn csv_columns(path: &Path, key: &str, value: &str) -> BTreeMap<String, String> {
    let mut columns = BTreeMap::new();
    for row in read_csv(path) {
        let cell = |name: &str| row.get(name).unwrap_or_else(|| panic!("no {name} column in {row:?}")).clone();
        let previous = columns.insert(cell(key), cell(value));
        assert!(previous.is_none(), "{} appears twice in {}", cell(key), path.display());
    }
    columns
}

/// The Leads area in Chromium at 1366 px and 390 px: the empty list, the upload form, the
/// mapping step (a column set to Ignore by hand), an import large enough to run in the
/// background (the MX check asking a slow DNS server on loopback) whose page shows the progress
/// bar and, through `app.js`, reloads into the report on its own; the list with its figures; a
/// lead refused a bad time zone beside the field, then saved; and a lead deleted never to be
/// contacted again. No page scrolls sideways at phone width. PNGs land beside the others as
/// `30-...` to `38-...`, each at 1366 and 390 px.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn leads_import_progress_report_and_erasure_in_chromium() {
    if !common::have_peer("chromedriver") || !common::have_peer(CHROMIUM) {
        return;
    }
    let dns = leads_dns::slow_dns(Duration::from_millis(1500));
    let nameservers = format!("[\"127.0.0.1:{dns}\"]");
    let appliance = common::Appliance::start_with(
        tempfile::tempdir().expect("temp dir"),
        &[("INBOXGROVE_DNS__NAMESERVERS", nameservers.as_str())],
    );
    let temp = tempfile::tempdir().expect("temp dir");
    let profile = temp.path().join("profile");
    let mut driver = Driver::start(&profile);
    driver.wait_ready().await;
    let client = leads_chromium(&driver, &profile).await;
    let csv = temp.path().join("founders-q3.csv");
    std::fs::write(&csv, leads_csv()).expect("write the CSV");
    let walk = Walk { client: client.clone(), shots: output_dir(), data: appliance.data_dir() };
    let setup = appliance.setup_link.clone().expect("setup link");
    let mut steps = tokio::spawn(async move { leads_walk(walk, setup, csv).await });
    let outcome = tokio::time::timeout(WALK_TIMEOUT, &mut steps).await;
    steps.abort();
    let _ = tokio::time::timeout(Duration::from_secs(10), client.close()).await;
    drop(driver);
    match outcome {
        Ok(Ok(())) => {}
        Ok(Err(e)) if e.is_panic() => std::panic::resume_unwind(e.into_panic()),
        Ok(Err(e)) => panic!("browser steps did not finish: {e}"),
        Err(_) => panic!("browser steps took longer than {WALK_TIMEOUT:?}"),
    }
}

#[path = "leads/dns.rs"]
mod leads_dns;

/// The desktop width the Leads screenshots are taken at.
const DESKTOP_WIDTH: u32 = 1366;

/// A headless Chromium session through `driver`, with its own profile.
async fn leads_chromium(driver: &Driver, profile: &Path) -> Client {
    let mut capabilities = serde_json::Map::new();
    capabilities.insert(
        "goog:chromeOptions".into(),
        json!({
            "binary": CHROMIUM,
            "args": [
                "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                "--disable-background-networking", "--disable-component-update", "--disable-sync",
                "--disable-dev-shm-usage", "--window-size=1366,1000",
                format!("--user-data-dir={}", profile.display()),
            ],
        }),
    );
    let connector = hyper_util::client::legacy::connect::HttpConnector::new();
    tokio::time::timeout(
        Duration::from_secs(30),
        ClientBuilder::new(connector).capabilities(capabilities).connect(&driver.url),
    )
    .await
    .expect("Chromium started within 30 s")
    .expect("a WebDriver session")
}

/// 3,000 leads over 30 domains (ten new ones in each chunk of 1,000 rows, so each chunk waits for
/// the slow DNS server), with a custom column, a notes column to ignore, and a few bad rows.
fn leads_csv() -> String {
    let firsts = ["Ann", "Ben", "Cleo", "Dev", "Eva", "Finn", "Gia", "Hugo"];
    let mut csv = String::from("\u{feff}Email;First Name;Last Name;Company;Job Title;Plan;Notes\r\n");
    for i in 0..2990 {
        let first = firsts[i % firsts.len()];
        csv.push_str(&format!(
            "{}.{i}@founders{}.test;{first};Lead{i};\"Founders {}; Ltd\";Founder;{};call back\r\n",
            first.to_lowercase(),
            i / 100,
            i / 100,
            ["pro", "basic"][i % 2]
        ));
    }
    for bad in ["not an address", "info@founders1.test", "eve@mailinator.com", "ann.0@founders0.test"] {
        csv.push_str(&format!("{bad};X;Y;Z;;;\r\n"));
    }
    for i in 0..6 {
        csv.push_str(&format!("gone{i}@nomx-founders.test;Gone;{i};Nowhere;;;\r\n"));
    }
    csv
}

/// Saves the page at desktop width, then at phone width (checking that nothing but a table's own
/// box scrolls sideways there), and goes back to desktop width.
async fn both_widths(client: &Client, shots: &Path, name: &str) {
    screenshot_at(client, shots, &format!("{name}-1366"), DESKTOP_WIDTH).await;
    client.set_window_size(PHONE_WIDTH, 1000).await.expect("phone width");
    let overflow = "const w = document.documentElement.clientWidth; return document.documentElement.scrollWidth - w;";
    let sideways = client.execute(overflow, vec![]).await.expect("measure");
    assert_eq!(sideways, json!(0), "{name} does not scroll sideways at {PHONE_WIDTH} px");
    screenshot_at(client, shots, &format!("{name}-390"), PHONE_WIDTH).await;
    client.set_window_size(DESKTOP_WIDTH, 1000).await.expect("desktop width");
}

async fn leads_walk(walk: Walk, setup_link: String, csv: PathBuf) {
    let (client, shots) = (&walk.client, &walk.shots);
    client.goto(&setup_link).await.expect("open the setup link");
    type_into(client, "input[name=email]", EMAIL).await;
    type_into(client, "input[name=password]", common::PASSWORD).await;
    type_into(client, "input[name=workspace]", WORKSPACE).await;
    click_through(client, "#setup-submit").await;
    click_through(client, "nav.sections a[href$='/leads']").await;
    wait_for(client, "#leads-empty").await;
    assert!(text_of(client, "#leads-empty").await.starts_with("No leads yet. Import a CSV"));
    both_widths(client, shots, "30-leads-empty").await;

    click_through(client, "#import-csv").await;
    let file = wait_for(client, "#upload-file").await;
    file.send_keys(csv.to_str().expect("utf-8 path")).await.expect("choose the file");
    type_into(client, "#upload-list", "Q3 Founders").await;
    assert!(is_checked(client, "#upload-mx").await, "the MX check is on by default");
    both_widths(client, shots, "31-leads-upload").await;
    click_through(client, "#upload-submit").await;

    wait_for(client, "#mapping-form").await;
    assert_eq!(selected_label(client, "#column-0").await, "Email");
    assert_eq!(selected_label(client, "#column-4").await, "Title");
    assert_eq!(selected_label(client, "#column-5").await, "Custom field “Plan”");
    pick(client, "#column-6", "Ignore").await;
    assert!(text_of(client, "#mapping-summary").await.starts_with("3,000 rows separated by semicolons"));
    both_widths(client, shots, "32-leads-mapping").await;
    click_through(client, "#mapping-submit").await;

    wait_for(client, "#import-progress").await;
    assert_eq!(text_of(client, "#import-status").await, "Running");
    screenshot_at(client, shots, "33-leads-import-running-1366", DESKTOP_WIDTH).await;
    // The page's script moves the bar as chunks are written, without reloading the page.
    let deadline = Instant::now() + STEP_TIMEOUT;
    loop {
        let shown = text_of(client, "#import-progress-text").await;
        if shown.starts_with("1,000 of") || shown.starts_with("2,000 of") {
            break;
        }
        assert!(Instant::now() < deadline, "the progress bar did not move: {shown:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let value = client.execute("return document.querySelector('#import-bar').value;", vec![]).await.expect("value");
    assert!(value == json!(1000) || value == json!(2000), "the bar's value: {value}");
    both_widths(client, shots, "33-leads-import-part-way").await;
    // The page's script polls the progress and reloads into the report by itself.
    let figures = client.wait().at_most(Duration::from_secs(60)).for_element(Locator::Css("#import-figures")).await;
    figures.expect("the page showed the report when the import ended");
    assert_eq!(text_of(client, "#import-status").await, "Done");
    assert_eq!(text_of(client, "#figure-imported .value").await, "2,990");
    assert_eq!(text_of(client, "#figure-skipped .value").await, "10");
    both_widths(client, shots, "34-leads-import-report").await;

    click_through(client, "#list-leads").await;
    wait_for(client, "#lead-figures").await;
    assert_eq!(text_of(client, "#figure-total .value").await, "2,990");
    both_widths(client, shots, "35-leads-list").await;

    click_through(client, "#leads tbody tr:first-child a.address").await;
    wait_for(client, "#lead-form").await;
    type_into(client, "#lead-time-zone", "Mars/Olympus").await;
    type_into(client, "#lead-title", "Co-founder").await;
    click_through(client, "#lead-save").await;
    wait_for(client, "#lead-time-zone-error").await;
    assert_eq!(field_value(client, "#lead-title").await, "Co-founder", "what was typed is kept");
    both_widths(client, shots, "36-lead-error").await;
    type_into(client, "#lead-time-zone", "Europe/Lisbon").await;
    click_through(client, "#lead-save").await;
    wait_for(client, "#lead-saved").await;
    assert_eq!(field_value(client, "#lead-time-zone").await, "Europe/Lisbon");
    both_widths(client, shots, "37-lead-saved").await;

    let email = text_of(client, "#lead-email").await;
    click(client, "#delete-confirm").await;
    click_through(client, "#delete-never-again").await;
    wait_for(client, "#lead-notice").await;
    assert!(text_of(client, "#lead-notice").await.contains("Only a hash of its address stays"));
    assert_eq!(text_of(client, "#figure-total .value").await, "2,989");
    both_widths(client, shots, "38-lead-erased").await;
    let data = walk.data.clone();
    let kept = tokio::task::spawn_blocking(move || {
        let conn = rusqlite::Connection::open(data.join("inboxgrove.db")).expect("open the database");
        conn.query_row("SELECT count(*) FROM leads WHERE email = ?1", [&email], |r| r.get::<_, i64>(0)).expect("count")
    })
    .await
    .expect("the query ran");
    assert_eq!(kept, 0);
}

/// Campaigns in Chromium: create a 2-step campaign through the form (the second step added with
/// its "Add step" button), preview its follow-up for a lead (the `Re:` subject and the warning
/// about a variable the lead lacks), start it, move the injected clock, and see the counts move
/// on its page and on the list. The leads are mailboxes of the appliance, so every send is
/// delivered at once. PNGs land beside the others as `40-...` to `45-...`, each at 1366 and 390
/// px (no page scrolls sideways at phone width).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn campaign_created_previewed_started_and_counting_in_chromium() {
    if !common::have_peer("chromedriver") || !common::have_peer(CHROMIUM) {
        return;
    }
    let appliance =
        common::Appliance::start_with(tempfile::tempdir().expect("temp dir"), &[("INBOXGROVE_TEST_CLOCK", "1")]);
    let temp = tempfile::tempdir().expect("temp dir");
    let profile = temp.path().join("profile");
    let mut driver = Driver::start(&profile);
    driver.wait_ready().await;
    let client = leads_chromium(&driver, &profile).await;
    let walk = Walk { client: client.clone(), shots: output_dir(), data: appliance.data_dir() };
    let (setup, base) = (appliance.setup_link.clone().expect("setup link"), appliance.base.clone());
    let mut steps = tokio::spawn(async move { campaign_walk(walk, setup, base).await });
    let outcome = tokio::time::timeout(WALK_TIMEOUT, &mut steps).await;
    steps.abort();
    let _ = tokio::time::timeout(Duration::from_secs(10), client.close()).await;
    drop(driver);
    match outcome {
        Ok(Ok(())) => {}
        Ok(Err(e)) if e.is_panic() => std::panic::resume_unwind(e.into_panic()),
        Ok(Err(e)) => panic!("browser steps did not finish: {e}"),
        Err(_) => panic!("browser steps took longer than {WALK_TIMEOUT:?}"),
    }
}

/// Runs the CLI on the appliance's data dir (off the async threads); its standard output.
async fn campaign_cli(data: &Path, args: &[&str]) -> String {
    let (data, args): (PathBuf, Vec<String>) = (data.to_path_buf(), args.iter().map(|a| a.to_string()).collect());
    tokio::task::spawn_blocking(move || {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let out = common::cli(&data, &args, None);
        assert!(out.status.success(), "{args:?}: {}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8(out.stdout).expect("utf-8 output")
    })
    .await
    .expect("the CLI ran")
}

/// Moves the appliance's injected clock by `seconds` and waits until the campaign engine has
/// finished a tick after it.
async fn campaign_clock(base: &str, seconds: i64) {
    let http = reqwest::Client::new();
    let answer = http.post(format!("{base}/_test/clock")).body(seconds.to_string()).send().await.expect("clock");
    let now: i64 = answer.text().await.expect("the new time").trim().parse().expect("a time");
    let deadline = Instant::now() + STEP_TIMEOUT;
    loop {
        let tick = http.get(format!("{base}/_test/campaign-tick")).send().await.expect("tick").text().await;
        if tick.ok().and_then(|t| t.trim().parse::<i64>().ok()).is_some_and(|t| t >= now) {
            return;
        }
        assert!(Instant::now() < deadline, "no campaign tick after the clock moved");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn campaign_walk(walk: Walk, setup_link: String, base: String) {
    let (client, shots, data) = (&walk.client, &walk.shots, &walk.data);
    client.goto(&setup_link).await.expect("open the setup link");
    type_into(client, "input[name=email]", EMAIL).await;
    type_into(client, "input[name=password]", common::PASSWORD).await;
    type_into(client, "input[name=workspace]", WORKSPACE).await;
    click_through(client, "#setup-submit").await;
    // Two mailboxes send; six more are the leads (the last one without a company).
    campaign_cli(data, &["domain", "add", DOMAIN]).await;
    let created = campaign_cli(data, &["mailbox", "create", "--domain", DOMAIN, "--count", "8"]).await;
    let addresses: Vec<String> =
        created.lines().skip(1).filter_map(|l| l.split_once(',')).map(|(a, _)| a.to_string()).collect();
    let mut csv = String::from("email,first_name,company\n");
    for (i, lead) in addresses[2..].iter().enumerate() {
        csv.push_str(&format!("{lead},Lead{i},{}\n", if i < 5 { format!("Company {i}") } else { String::new() }));
    }
    let file = data.join("campaign-leads.csv");
    std::fs::write(&file, csv).expect("write the CSV");
    campaign_cli(data, &["leads", "import", file.to_str().expect("utf-8"), "--list", "Founders", "--no-mx-check"])
        .await;

    click_through(client, "nav.sections a[href$='/campaigns']").await;
    wait_for(client, "#campaigns-empty").await;
    assert_eq!(text_of(client, "#campaigns-empty").await, "No campaigns yet. Create one");
    both_widths(client, shots, "40-campaigns-empty").await;

    click_through(client, "#new-campaign").await;
    wait_for(client, "#campaign-form").await;
    type_into(client, "#name", "Founders, spring").await;
    for sender in &addresses[..2] {
        click(client, &format!("input[name=mailbox][value='{sender}']")).await;
    }
    click(client, "input[name=list][value='Founders']").await;
    click(client, "#day-sat").await;
    click(client, "#day-sun").await;
    type_into(client, "#start", "00:00").await;
    type_into(client, "#end", "24:00").await;
    type_into(client, "#step0_v0_subject", "{Quick|Short} question for {{company|you}}").await;
    type_into(client, "#step0_v0_body", "Hi {{first_name}},\n\nWould {{company|your team}} try this?\n\nAnn").await;
    click_through(client, "#add-step").await;
    wait_for(client, "#step1").await;
    assert_eq!(field_value(client, "#name").await, "Founders, spring", "what was typed is kept");
    type_into(client, "#step1_delay", "2").await;
    type_into(client, "#step1_v0_body", "Just following up, {{first_name}}: is {{company}} the right place?").await;
    both_widths(client, shots, "41-campaign-form").await;
    click_through(client, "#save-campaign").await;
    wait_for(client, "#campaign-notice").await;
    assert_eq!(text_of(client, "#campaign-status").await, "Draft");
    both_widths(client, shots, "42-campaign-draft").await;

    click_through(client, "#preview-campaign").await;
    wait_for(client, "#preview-steps").await;
    click_through(client, "#preview-steps a:nth-child(2)").await;
    let last = addresses.last().expect("a lead").clone();
    pick(client, "#preview-lead", &last).await;
    click_through(client, "#lead-picker button").await;
    wait_for(client, "#preview-warnings").await;
    assert!(text_of(client, "#preview-subject").await.starts_with("Re: "), "a follow-up in the thread");
    assert!(text_of(client, "#preview-text").await.starts_with("Just following up, Lead5: is  the right place?"));
    assert!(text_of(client, "#preview-warnings").await.contains("has no value for {{company}}"));
    both_widths(client, shots, "43-campaign-preview").await;

    client.back().await.expect("back");
    client.back().await.expect("back");
    client.back().await.expect("back to the campaign");
    wait_for(client, "#start-campaign").await;
    click_through(client, "#start-campaign").await;
    wait_for(client, "#pause-campaign").await;
    assert_eq!(text_of(client, "#campaign-status").await, "Active");
    campaign_clock(&base, 60).await;
    client.refresh().await.expect("reload");
    wait_for(client, "#figure-sent").await;
    assert_eq!(text_of(client, "#figure-sent .value").await, "6", "the counts moved");
    assert_eq!(text_of(client, "#figure-delivered .value").await, "6");
    assert!(text_of(client, "#forecast").await.contains("6 sends left"));
    both_widths(client, shots, "44-campaign-active").await;
    campaign_clock(&base, 2 * 86_400 + 60).await;
    click_through(client, "#campaign-leads thead a[data-sort='sent']").await;
    wait_for(client, "#figure-sent").await;
    assert_eq!(text_of(client, "#figure-sent .value").await, "12", "step 2 went out two days later");
    assert_eq!(text_of(client, "#campaign-status").await, "Completed");
    click_through(client, "nav.sections a[href$='/campaigns']").await;
    wait_for(client, "#campaigns tbody tr[data-campaign]").await;
    assert_eq!(text_of(client, "#figure-sent-today .value").await, "6");
    both_widths(client, shots, "45-campaigns-list").await;
}
