//! The Leads area over HTTP against the real binary: a CSV (semicolons, a byte-order mark,
//! quoted fields, CRLF) uploaded, previewed and mapped, imported with a report by reason; a file
//! of 5,000 rows imported in the background while its page shows the progress, then the report
//! (the MX check asking a DNS server on loopback, which answers slowly and has no mail server for
//! one domain); the list searched, filtered and paged; a lead edited (a bad time zone refused
//! beside its field, what was typed kept) and put in lists; a lead deleted, and one deleted
//! never to be contacted again, which a new import then skips as suppressed while its address is
//! stored nowhere; another workspace's leads and imports answering 404; a viewer reading only.

mod common;
#[path = "leads/dns.rs"]
mod dns;

use std::time::{Duration, Instant};

use common::{Appliance, Browser, Page, select_attr, select_text};

const OWNER: &str = "owner@grove.test";

fn workspace_of(url: &str) -> i64 {
    url.split("/w/").nth(1).and_then(|rest| rest.split('/').next()).and_then(|id| id.parse().ok()).expect("ws url")
}

/// The id at the end of a URL path such as `/w/1/leads/imports/7`.
fn last_id(url: &str) -> i64 {
    url.split(['?', '#']).next().and_then(|path| path.rsplit('/').next()).and_then(|id| id.parse().ok()).expect("id")
}

/// Uploads `bytes` as the file of the upload form on `form_page`, as a browser sends it
/// (multipart, the CSRF field first).
async fn upload(
    browser: &Browser,
    url: &str,
    form_page: &Page,
    file_name: &str,
    bytes: &[u8],
    list: &str,
    mx: bool,
) -> Page {
    const BOUNDARY: &str = "----inboxgrove-test-boundary-7d1f";
    fn part(body: &mut Vec<u8>, name: &str, value: &str) {
        let head = format!("--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"{name}\"\r\n\r\n{value}\r\n");
        body.extend_from_slice(head.as_bytes());
    }
    let mut body = Vec::new();
    part(&mut body, "csrf", &form_page.csrf());
    let head = format!(
        "--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"{file_name}\"\r\n\
         Content-Type: text/csv\r\n\r\n"
    );
    body.extend_from_slice(head.as_bytes());
    body.extend_from_slice(bytes);
    body.extend_from_slice(b"\r\n");
    part(&mut body, "list", list);
    if mx {
        part(&mut body, "mx_check", "on");
    }
    body.extend_from_slice(format!("--{BOUNDARY}--\r\n").as_bytes());
    let response = browser
        .client
        .post(format!("{}{url}", base_of(&form_page.url)))
        .header("content-type", format!("multipart/form-data; boundary={BOUNDARY}"))
        .body(body)
        .send()
        .await
        .expect("POST the upload");
    to_page(response).await
}

fn base_of(url: &str) -> String {
    let after_scheme = url.find("://").map_or(0, |i| i + 3);
    let end = url[after_scheme..].find('/').map_or(url.len(), |i| after_scheme + i);
    url[..end].to_string()
}

async fn to_page(response: reqwest::Response) -> Page {
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

/// The mapping form's fields as the page has them: hidden fields, the checkbox, and each
/// column's selected choice (`columns` overrides some, by index).
fn mapping_fields(page: &Page, columns: &[(usize, &str)]) -> Vec<(String, String)> {
    let doc = scraper::Html::parse_document(&page.body);
    let hidden = scraper::Selector::parse("#mapping-form input[type=hidden]").unwrap();
    let mut fields: Vec<(String, String)> = doc
        .select(&hidden)
        .filter_map(|e| Some((e.value().attr("name")?.to_string(), e.value().attr("value")?.to_string())))
        .filter(|(name, _)| name != "csrf")
        .collect();
    let selects = scraper::Selector::parse("#mapping-form select[name=column]").unwrap();
    let selected = scraper::Selector::parse("option[selected]").unwrap();
    for (i, select) in doc.select(&selects).enumerate() {
        let chosen = select.select(&selected).next().and_then(|o| o.value().attr("value")).unwrap_or("ignore");
        let value = columns.iter().find(|(index, _)| *index == i).map_or(chosen, |(_, v)| v);
        fields.push(("column".into(), value.to_string()));
    }
    fields
}

async fn confirm(browser: &Browser, ws: i64, mapping: &Page, columns: &[(usize, &str)]) -> Page {
    let fields = mapping_fields(mapping, columns);
    let pairs: Vec<(&str, &str)> = fields.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    browser.post_form(&format!("/w/{ws}/leads/import/confirm"), &mapping.body, &pairs).await
}

/// Uploads and imports a file with the guessed mapping; returns the import's page.
async fn import_file(browser: &Browser, ws: i64, name: &str, bytes: &[u8], list: &str, mx: bool) -> Page {
    let form = browser.get(&format!("/w/{ws}/leads/import")).await;
    let mapping = upload(browser, &format!("/w/{ws}/leads/import"), &form, name, bytes, list, mx).await;
    assert_eq!(mapping.status, 200, "{}", mapping.body);
    let report = confirm(browser, ws, &mapping, &[]).await;
    assert_eq!(report.status, 200, "{}", report.body);
    assert!(report.url.contains("/leads/imports/"), "{}", report.url);
    report
}

fn db(appliance: &Appliance) -> rusqlite::Connection {
    let conn = rusqlite::Connection::open(appliance.data_dir().join("inboxgrove.db")).expect("open the database");
    conn.busy_timeout(Duration::from_secs(10)).expect("busy timeout");
    conn
}

fn lead_id(appliance: &Appliance, email: &str) -> i64 {
    db(appliance).query_row("SELECT id FROM leads WHERE email = ?1", [email], |r| r.get(0)).expect("the lead")
}

/// The text of the one element matching `css`.
fn text(page: &Page, css: &str) -> String {
    let found = select_text(&page.body, css);
    assert_eq!(found.len(), 1, "one `{css}` on {}:\n{}", page.url, page.body);
    found.into_iter().next().unwrap_or_default()
}

/// The value of a figure card, as shown ("1,234").
fn figure(page: &Page, id: &str) -> String {
    text(page, &format!("#{id} .value"))
}

fn files_in(dir: &std::path::Path) -> Vec<String> {
    std::fs::read_dir(dir)
        .map(|entries| entries.filter_map(Result::ok).map(|e| e.file_name().to_string_lossy().into_owned()).collect())
        .unwrap_or_default()
}

const SEMICOLON_FILE: &str = "\u{feff}Email Address;First Name;Surname;Company;Plan;Time Zone\r\n\
    ann@acme.test;Ann;Archer;\"Acme; Inc.\";pro;Europe/Berlin\r\n\
    \"Bob <BOB@Beta.test>\";Bob;\"Baker \"\"the Bold\"\"\";Beta;;America/New_York\r\n\
    not-an-address;Nope;;;;\r\n\
    ann@acme.test;Ann again;;;;\r\n\
    info@acme.test;;;Acme;;\r\n\
    carl@mailinator.com;Carl;;;;\r\n\
    dora@delta.test;Dora;;\"Delta\r\nLabs\";basic;Nowhere/Else\r\n";

#[tokio::test]
async fn a_csv_is_previewed_mapped_imported_and_reported_by_reason() {
    let appliance = Appliance::start();
    let browser = appliance.setup_admin(OWNER).await;
    let ws = workspace_of(&browser.get("/").await.url);

    let empty = browser.get(&format!("/w/{ws}/leads")).await;
    assert_eq!(empty.status, 200, "{}", empty.body);
    assert!(text(&empty, "#leads-empty").starts_with("No leads yet. Import a CSV"), "{}", empty.body);
    assert_eq!(select_attr(&empty.body, "#import-csv", "href"), [format!("/w/{ws}/leads/import")]);
    assert_eq!(figure(&empty, "figure-total"), "0");

    let form = browser.get(&format!("/w/{ws}/leads/import")).await;
    assert_eq!(select_attr(&form.body, "#upload-mx", "checked").len(), 1, "the MX check is on by default");
    let url = format!("/w/{ws}/leads/import");
    let nothing = upload(&browser, &url, &form, "empty.csv", b"", "Q1", false).await;
    assert_eq!(nothing.status, 422);
    assert!(text(&nothing, "#upload-error").starts_with("Choose a CSV file"), "{}", nothing.body);
    let no_list = upload(&browser, &url, &form, "a.csv", b"email\na@b.test\n", " ", true).await;
    assert_eq!(no_list.status, 422);
    assert!(text(&no_list, "#upload-list-error").contains("Choose the file again"), "{}", no_list.body);
    let header_only = upload(&browser, &url, &form, "h.csv", b"email,name\r\n", "Q1", false).await;
    assert_eq!(header_only.status, 422);
    assert!(text(&header_only, "#upload-error").contains("no leads"), "{}", header_only.body);

    let mapping = upload(&browser, &url, &form, "leads export.csv", SEMICOLON_FILE.as_bytes(), "Q1", false).await;
    assert_eq!(mapping.status, 200, "{}", mapping.body);
    assert!(text(&mapping, "#mapping-summary").starts_with("7 rows separated by semicolons"), "{}", mapping.body);
    let headers = select_text(&mapping.body, "#preview thead th");
    assert_eq!(headers, ["Email Address", "First Name", "Surname", "Company", "Plan", "Time Zone"], "no BOM");
    let rows = select_text(&mapping.body, "#preview tbody tr");
    assert_eq!(rows.len(), 5, "the first five rows");
    let cells = select_text(&mapping.body, "#preview tbody td");
    assert!(cells.contains(&"Acme; Inc.".to_string()), "quoted delimiter: {cells:?}");
    assert!(cells.contains(&"Baker \"the Bold\"".to_string()), "doubled quotes: {cells:?}");
    let guessed = mapping_fields(&mapping, &[]);
    let columns: Vec<&str> = guessed.iter().filter(|(k, _)| k == "column").map(|(_, v)| v.as_str()).collect();
    assert_eq!(columns, ["email", "first_name", "last_name", "company", "custom", "time_zone"]);
    assert_eq!(select_text(&mapping.body, "#column-4 option[value=custom]"), ["Custom field “Plan”"]);
    let uploads = appliance.data_dir().join("imports");
    assert_eq!(files_in(&uploads).len(), 1, "only the upload to map is kept: {:?}", files_in(&uploads));
    let mode = std::os::unix::fs::PermissionsExt::mode(
        &std::fs::metadata(uploads.join(&files_in(&uploads)[0])).expect("the upload").permissions(),
    );
    assert_eq!(mode & 0o777, 0o600);

    let no_email = confirm(&browser, ws, &mapping, &[(0, "ignore")]).await;
    assert_eq!(no_email.status, 422);
    assert!(text(&no_email, "#mapping-error").contains("Email"), "{}", no_email.body);
    assert_eq!(select_attr(&no_email.body, "#column-0 option[selected]", "value"), ["ignore"], "the choice is kept");
    assert_eq!(select_text(&no_email.body, "#preview tbody tr").len(), 5, "the preview again");

    let (report, twice) = tokio::join!(confirm(&browser, ws, &mapping, &[]), confirm(&browser, ws, &mapping, &[]));
    let (report, twice) = if report.status == 200 { (report, twice) } else { (twice, report) };
    assert_eq!(report.status, 200, "{}", report.body);
    assert_eq!(twice.status, 422, "a double click imports once: {}", twice.body);
    assert!(text(&twice, "#upload-error").contains("imported already"), "{}", twice.body);
    assert_eq!(text(&report, "#import-status"), "Done", "a small file is imported before the answer");
    assert_eq!(figure(&report, "figure-imported"), "3");
    assert_eq!(figure(&report, "figure-updated"), "0");
    assert_eq!(figure(&report, "figure-skipped"), "4");
    let reasons = select_attr(&report.body, "#skip-reasons tr[data-reason]", "data-reason");
    assert_eq!(reasons, ["invalid_syntax", "duplicate", "role_address", "disposable"], "in the stable order");
    let words = select_text(&report.body, "#skip-reasons td a");
    assert_eq!(words[1], "Appears earlier in the file");
    let skipped = select_text(&report.body, "#skips tbody td.address");
    assert_eq!(skipped, ["not-an-address", "ann@acme.test", "info@acme.test", "carl@mailinator.com"]);
    assert_eq!(select_attr(&report.body, "#skips td[title]", "title")[0], "invalid_syntax", "the code as a tooltip");
    assert!(files_in(&uploads).is_empty(), "the file is deleted when the import ends: {:?}", files_in(&uploads));
    let only_duplicates = browser.get(&format!("{}?reason=duplicate", report.url)).await;
    assert_eq!(select_text(&only_duplicates.body, "#skips tbody td.address"), ["ann@acme.test"]);

    let list_link = select_attr(&report.body, "#list-leads", "href").remove(0);
    let leads = browser.get(&list_link).await;
    assert_eq!(
        select_text(&leads.body, "#leads tbody td a.address"),
        ["dora@delta.test", "bob@beta.test", "ann@acme.test"]
    );
    assert_eq!(select_text(&leads.body, "#leads .badge"), ["Active", "Active", "Active"]);
    let ann = browser.get(&format!("/w/{ws}/leads/{}", lead_id(&appliance, "ann@acme.test"))).await;
    assert_eq!(select_attr(&ann.body, "input[name=custom_name]", "value"), ["Plan", ""], "and a row to add one");
    assert_eq!(select_attr(&ann.body, "input[name=custom_value]", "value"), ["pro", ""]);
    assert_eq!(select_attr(&ann.body, "#lead-company", "value"), ["Acme; Inc."]);
    assert_eq!(select_attr(&ann.body, "#lead-time-zone", "value"), ["Europe/Berlin"]);
    let dora = browser.get(&format!("/w/{ws}/leads/{}", lead_id(&appliance, "dora@delta.test"))).await;
    assert_eq!(select_attr(&dora.body, "#lead-company", "value"), ["Delta\r\nLabs".replace("\r\n", "\n")]);
    assert_eq!(select_attr(&dora.body, "#lead-time-zone", "value"), [""], "an unknown zone is left empty");

    let imports = browser.get(&format!("/w/{ws}/leads/import")).await;
    assert_eq!(select_text(&imports.body, "#imports tbody td:nth-child(2)"), ["leads export.csv"]);
    let audit: String = db(&appliance)
        .query_row("SELECT detail FROM audit_log WHERE action = 'lead.import'", [], |r| r.get(0))
        .expect("an audit entry");
    assert_eq!(audit, "7 rows into list \"Q1\", without the MX check");
}

#[tokio::test]
async fn a_large_file_imports_in_the_background_with_its_progress_on_the_page() {
    let dns = dns::slow_dns(Duration::from_millis(600));
    let nameservers = format!("[\"127.0.0.1:{dns}\"]");
    let dir = tempfile::tempdir().expect("temp dir");
    let appliance = Appliance::start_with(dir, &[("INBOXGROVE_DNS__NAMESERVERS", &nameservers)]);
    let browser = appliance.setup_admin(OWNER).await;
    let ws = workspace_of(&browser.get("/").await.url);

    // 5,000 rows over 50 domains, ten new ones in each chunk of 1,000 rows, so that each chunk
    // waits for its MX answers; the last ten rows are at a domain without a mail server.
    let mut csv = String::from("email,first_name,company\n");
    for i in 0..4990 {
        csv.push_str(&format!("lead{i}@d{}.test,Lead {i},Company {}\n", i / 100, i % 7));
    }
    for i in 0..10 {
        csv.push_str(&format!("gone{i}@nomx.test,Gone {i},Nowhere\n"));
    }
    let form = browser.get(&format!("/w/{ws}/leads/import")).await;
    let mapping =
        upload(&browser, &format!("/w/{ws}/leads/import"), &form, "big.csv", csv.as_bytes(), "Big", true).await;
    assert_eq!(mapping.status, 200, "{}", mapping.body);
    assert!(text(&mapping, "#mapping-summary").contains("in the background"), "{}", mapping.body);

    let started = Instant::now();
    let first = confirm(&browser, ws, &mapping, &[]).await;
    assert!(started.elapsed() < Duration::from_secs(2), "the answer does not wait for the import");
    assert_eq!(text(&first, "#import-status"), "Running", "{}", first.body);
    assert_eq!(select_attr(&first.body, "#import-bar", "max"), ["5000"]);
    assert!(!select_attr(&first.body, "[data-progress-url]", "data-progress-url").is_empty(), "the script polls it");
    assert!(select_text(&first.body, "#import-refresh").contains(&"Refresh".to_string()), "the no-JS way");

    let page_url = first.url.clone();
    let progress_url = format!("/w/{ws}/leads/imports/{}/progress", last_id(&page_url));
    let (mut seen, mut last) = (Vec::new(), None);
    while started.elapsed() < Duration::from_secs(90) {
        let page = browser.get(&page_url).await;
        if text(&page, "#import-status") != "Running" {
            last = Some(page);
            break;
        }
        let value: i64 = select_attr(&page.body, "#import-bar", "value")[0].parse().expect("a number");
        let shown = text(&page, "#import-progress-text");
        assert!(shown.contains("of 5,000 rows"), "{shown}");
        seen.push(value);
        let json: serde_json::Value =
            browser.client.get(appliance.url(&progress_url)).send().await.unwrap().json().await.unwrap();
        assert!(json["done_rows"].as_i64().unwrap() >= value, "{json}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let report = last.expect("the import finished within 90 s");
    assert!(seen.windows(2).all(|w| w[0] <= w[1]), "progress only grows: {seen:?}");
    assert!(seen.iter().any(|&done| done > 0 && done < 5000), "a reload showed the import part way: {seen:?}");
    assert_eq!(text(&report, "#import-status"), "Done");
    assert_eq!(figure(&report, "figure-imported"), "4,990");
    assert_eq!(figure(&report, "figure-skipped"), "10");
    assert_eq!(select_attr(&report.body, "#skip-reasons tr[data-reason]", "data-reason"), ["no_mx"]);
    assert_eq!(select_text(&report.body, "#skip-reasons td a"), ["The domain has no mail server (no MX)"]);
    assert!(select_text(&report.body, "#import-progress").is_empty(), "no progress bar once done");
    let json: serde_json::Value =
        browser.client.get(appliance.url(&progress_url)).send().await.unwrap().json().await.unwrap();
    assert_eq!((json["status"].as_str(), json["percent"].as_i64()), (Some("done"), Some(100)));
    assert!(files_in(&appliance.data_dir().join("imports")).is_empty());

    let leads = browser.get(&format!("/w/{ws}/leads")).await;
    assert_eq!(figure(&leads, "figure-total"), "4,990");
    assert_eq!(text(&leads, "#pager-summary"), "1–50 of 4,990");
}

/// Imports `count` leads named `prefix{i}` into `list` through the command line.
fn cli_import(appliance: &Appliance, list: &str, rows: &[String], workspace: Option<&str>) {
    let file = appliance.dir.path().join(format!("{list}.csv"));
    std::fs::write(&file, format!("email,first_name,last_name,company\n{}\n", rows.join("\n"))).expect("write");
    let mut args = vec!["leads", "import", file.to_str().expect("utf-8"), "--list", list, "--no-mx-check"];
    if let Some(workspace) = workspace {
        args.extend(["--workspace", workspace]);
    }
    let out = appliance.cli(&args, None);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
}

#[tokio::test]
async fn the_list_is_searched_filtered_by_status_and_list_sorted_and_paged() {
    let appliance = Appliance::start();
    let browser = appliance.setup_admin(OWNER).await;
    let ws = workspace_of(&browser.get("/").await.url);
    let big: Vec<String> =
        (0..120).map(|i| format!("person{i:03}@big.test,Person,Number{i:03},{}", ["Acme", "Beta"][i % 2])).collect();
    cli_import(&appliance, "Big", &big, None);
    cli_import(&appliance, "Small", &["zed@small.test,Zed,Zulu,Zeta".into(), "person000@big.test,,,".into()], None);
    db(&appliance)
        .execute("UPDATE leads SET status = 'bounced' WHERE email IN ('person001@big.test', 'person002@big.test')", [])
        .expect("bounce two");
    db(&appliance).execute("UPDATE leads SET status = 'replied' WHERE email = 'zed@small.test'", []).expect("reply");

    let all = browser.get(&format!("/w/{ws}/leads")).await;
    assert_eq!(all.status, 200, "{}", all.body);
    assert_eq!(figure(&all, "figure-total"), "121");
    assert_eq!(figure(&all, "figure-active"), "118");
    assert_eq!(figure(&all, "figure-bounced"), "2");
    assert_eq!(figure(&all, "figure-replied"), "1");
    assert_eq!(figure(&all, "figure-unsubscribed"), "0");
    assert_eq!(select_attr(&all.body, "#figure-bounced", "href"), [format!("/w/{ws}/leads?status=bounced")]);
    assert_eq!(text(&all, "#pager-summary"), "1–50 of 121");
    assert_eq!(select_text(&all.body, "#leads tbody tr").len(), 50);
    assert_eq!(select_attr(&all.body, "#pager-next", "href"), ["?sort=added&page=2"]);
    let last = browser.get(&format!("/w/{ws}/leads?page=3")).await;
    assert_eq!(text(&last, "#pager-summary"), "101–121 of 121");

    let bounced = browser.get(&format!("/w/{ws}/leads?status=bounced")).await;
    assert_eq!(select_text(&bounced.body, "#leads tbody .badge"), ["Bounced", "Bounced"]);
    assert_eq!(select_attr(&bounced.body, "#figure-bounced", "aria-current"), ["true"]);
    let small_id: i64 =
        db(&appliance).query_row("SELECT id FROM lead_lists WHERE name = 'Small'", [], |r| r.get(0)).expect("list");
    let small = browser.get(&format!("/w/{ws}/leads?list={small_id}&sort=email&dir=asc")).await;
    assert_eq!(select_text(&small.body, "#leads tbody td a.address"), ["person000@big.test", "zed@small.test"]);
    let in_two = select_text(&small.body, "#leads tbody tr:first-child a.tag");
    assert_eq!(in_two, ["Big", "Small"], "a lead in two lists");
    assert_eq!(select_text(&small.body, "#leads tbody tr:nth-child(2) .badge"), ["Replied"]);

    let search = browser.get(&format!("/w/{ws}/leads?q=number11&sort=email&dir=desc")).await;
    let found = select_text(&search.body, "#leads tbody td a.address");
    assert_eq!(found.len(), 10, "{found:?}");
    assert_eq!(found[0], "person119@big.test");
    let beta = browser.get(&format!("/w/{ws}/leads?q=beta&status=bounced")).await;
    assert_eq!(select_text(&beta.body, "#leads tbody td a.address"), ["person001@big.test"]);
    assert_eq!(select_attr(&beta.body, "#lead-search", "value"), ["beta"], "the search is kept");
    let none = browser.get(&format!("/w/{ws}/leads?q=nobody")).await;
    assert!(text(&none, "#leads-empty").starts_with("No leads match."), "{}", none.body);
    let by_name = browser.get(&format!("/w/{ws}/leads?sort=name&dir=asc")).await;
    assert_eq!(select_text(&by_name.body, "#leads tbody td a.address")[0], "person000@big.test");
}

#[tokio::test]
async fn a_lead_is_edited_with_mistakes_shown_beside_their_fields_and_put_in_lists() {
    let appliance = Appliance::start();
    let browser = appliance.setup_admin(OWNER).await;
    let ws = workspace_of(&browser.get("/").await.url);
    cli_import(&appliance, "Q1", &["ann@acme.test,Ann,Archer,Acme".into()], None);
    let id = lead_id(&appliance, "ann@acme.test");
    let url = format!("/w/{ws}/leads/{id}");
    let page = browser.get(&url).await;
    assert_eq!(page.status, 200, "{}", page.body);
    assert_eq!(text(&page, "#lead-email"), "ann@acme.test");

    let typed = [
        ("first_name", "Annie"),
        ("last_name", "Archer"),
        ("company", "Acme GmbH"),
        ("title", "CTO"),
        ("website", "acme.test"),
        ("time_zone", "Mars/Olympus"),
        ("custom_name", "Seats"),
        ("custom_value", "12"),
    ];
    let refused = browser.post_form(&url, &page.body, &typed).await;
    assert_eq!(refused.status, 422, "{}", refused.body);
    assert!(text(&refused, "#lead-time-zone-error").contains("\"Mars/Olympus\" is not an IANA time zone"));
    assert_eq!(select_attr(&refused.body, "#lead-time-zone", "aria-invalid"), ["true"]);
    assert_eq!(select_attr(&refused.body, "#lead-first_name", "value"), ["Annie"], "what was typed is kept");
    assert_eq!(select_attr(&refused.body, "#lead-time-zone", "value"), ["Mars/Olympus"]);
    assert_eq!(select_attr(&refused.body, "input[name=custom_name]", "value"), ["Seats", ""]);
    let stored: String = db(&appliance).query_row("SELECT first_name FROM leads", [], |r| r.get(0)).unwrap();
    assert_eq!(stored, "Ann", "nothing was saved");
    let too_long = "x".repeat(201);
    let long = browser
        .post_form(
            &url,
            &page.body,
            &[("first_name", too_long.as_str()), ("custom_name", ""), ("custom_value", "orphan")],
        )
        .await;
    assert_eq!(long.status, 422);
    assert!(text(&long, "#lead-first_name-error").contains("at most 200 characters"));
    assert!(text(&long, "#lead-custom-error").contains("a name"));

    let mut good = typed;
    good[5] = ("time_zone", " America/New_York ");
    let saved = browser.post_form(&url, &page.body, &good).await;
    assert_eq!(saved.status, 200, "{}", saved.body);
    assert!(saved.url.ends_with("?saved=1"), "{}", saved.url);
    assert_eq!(text(&saved, "#lead-saved"), "Saved.");
    assert_eq!(select_attr(&saved.body, "#lead-time-zone", "value"), ["America/New_York"], "trimmed");
    assert_eq!(select_attr(&saved.body, "input[name=custom_value]", "value"), ["12", ""]);
    let (first, tz, fields): (String, String, String) = db(&appliance)
        .query_row("SELECT first_name, time_zone, fields FROM leads", [], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
        .unwrap();
    assert_eq!((first.as_str(), tz.as_str(), fields.as_str()), ("Annie", "America/New_York", "{\"Seats\":\"12\"}"));
    let audit: (String, String) = db(&appliance)
        .query_row("SELECT target, detail FROM audit_log WHERE action = 'lead.update'", [], |r| {
            Ok((r.get(0)?, r.get(1)?))
        })
        .unwrap();
    assert_eq!(audit, (format!("lead #{id}"), "first_name, company, title, website, time_zone, custom fields".into()));

    let lists_url = format!("{url}/lists");
    let added = browser.post_form(&lists_url, &saved.body, &[("add", "VIP")]).await;
    assert_eq!(added.status, 200);
    assert_eq!(select_text(&added.body, "#lead-lists li a"), ["Q1", "VIP"]);
    let blank = browser.post_form(&lists_url, &saved.body, &[("add", "  ")]).await;
    assert_eq!(blank.status, 422);
    assert!(text(&blank, "#list-error").contains("1 to 100 characters"));
    let q1: String = select_attr(&added.body, "#lead-lists input[name=remove]", "value").remove(0);
    let removed = browser.post_form(&lists_url, &saved.body, &[("remove", q1.as_str())]).await;
    assert_eq!(select_text(&removed.body, "#lead-lists li a"), ["VIP"]);
}

#[tokio::test]
async fn delete_erases_and_delete_and_never_contact_again_keeps_only_a_hash() {
    let appliance = Appliance::start();
    let browser = appliance.setup_admin(OWNER).await;
    let ws = workspace_of(&browser.get("/").await.url);
    let file = "email,first_name\nann@acme.test,Ann\nbob@beta.test,Bob\n";
    let first =
        import_file(&browser, ws, "two.csv", format!("{file}BOB@beta.test,Bob again\n").as_bytes(), "Q1", false).await;
    assert_eq!(select_text(&first.body, "#skips tbody td.address"), ["bob@beta.test"], "a duplicate");
    let (ann, bob) = (lead_id(&appliance, "ann@acme.test"), lead_id(&appliance, "bob@beta.test"));

    let page = browser.get(&format!("/w/{ws}/leads/{ann}")).await;
    assert!(text(&page, "#lead-delete").contains("keeps only a hash of the address"), "the difference is explained");
    let unconfirmed =
        browser.post_form(&format!("/w/{ws}/leads/{ann}/delete"), &page.body, &[("mode", "delete")]).await;
    assert_eq!(unconfirmed.status, 422);
    assert!(text(&unconfirmed, "#delete-error").starts_with("Tick the box"), "{}", unconfirmed.body);
    let deleted = browser
        .post_form(&format!("/w/{ws}/leads/{ann}/delete"), &page.body, &[("mode", "delete"), ("confirm", "yes")])
        .await;
    assert_eq!(deleted.status, 200);
    assert_eq!(text(&deleted, "#lead-notice"), "The lead was erased.");
    assert_eq!(browser.get(&format!("/w/{ws}/leads/{ann}")).await.status, 404);

    let page = browser.get(&format!("/w/{ws}/leads/{bob}")).await;
    let never = browser
        .post_form(&format!("/w/{ws}/leads/{bob}/delete"), &page.body, &[("mode", "never_again"), ("confirm", "yes")])
        .await;
    assert_eq!(never.status, 200);
    assert!(text(&never, "#lead-notice").contains("Only a hash of its address stays"));
    let conn = db(&appliance);
    let kept: Vec<String> = conn
        .prepare("SELECT address FROM suppressions")
        .unwrap()
        .query_map([], |r| r.get(0))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    assert_eq!(kept.len(), 1, "{kept:?}");
    assert!(kept[0].starts_with("sha256:") && !kept[0].contains("bob"), "{kept:?}");
    let mentions: i64 = conn
        .query_row(
            "SELECT (SELECT count(*) FROM leads WHERE email LIKE '%bob%') + \
             (SELECT count(*) FROM lead_import_skips WHERE email LIKE '%bob%') + \
             (SELECT count(*) FROM audit_log WHERE target LIKE '%bob%' OR detail LIKE '%bob%')",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(mentions, 0, "the address is stored nowhere");
    let audit: Vec<String> = conn
        .prepare("SELECT detail FROM audit_log WHERE action = 'lead.erase' ORDER BY id")
        .unwrap()
        .query_map([], |r| r.get(0))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    assert_eq!(audit, ["deleted", "never contact again: a hash of the address is suppressed"]);

    let again = import_file(&browser, ws, "again.csv", file.as_bytes(), "Q2", false).await;
    assert_eq!(figure(&again, "figure-imported"), "1", "ann may be imported again");
    assert_eq!(select_attr(&again.body, "#skip-reasons tr[data-reason]", "data-reason"), ["suppressed"]);
    assert_eq!(select_text(&again.body, "#skips tbody td.address"), ["bob@beta.test"]);
}

async fn viewer(appliance: &Appliance, owner: &Browser, ws: i64, email: &str) -> Browser {
    let members = owner.get(&format!("/w/{ws}/members")).await;
    let invited =
        owner.post_form(&format!("/w/{ws}/members"), &members.body, &[("email", email), ("role", "viewer")]).await;
    let link = select_text(&invited.body, "#invite-link").pop().expect("an invite link");
    let browser = appliance.browser();
    let form = browser.get(&link).await;
    let joined = browser.post_form(&link, &form.body, &[("password", "a viewer's long password")]).await;
    assert!(joined.url.contains("/w/"), "{}", joined.body);
    browser
}

#[tokio::test]
async fn another_workspaces_leads_are_not_found_and_a_viewer_only_reads() {
    let appliance = Appliance::start();
    let owner = appliance.setup_admin(OWNER).await;
    let ws = workspace_of(&owner.get("/").await.url);
    let report = import_file(&owner, ws, "one.csv", b"email,first_name\nann@acme.test,Ann\n", "Q1", false).await;
    let import = last_id(&report.url);
    let ann = lead_id(&appliance, "ann@acme.test");

    let workspaces = owner.get("/workspaces").await;
    let other = owner.post_form("/workspaces", &workspaces.body, &[("name", "Other Agency")]).await;
    let other_ws = workspace_of(&other.url);
    cli_import(&appliance, "Theirs", &["zoe@other.test,Zoe,,".into()], Some("Other Agency"));
    let zoe = lead_id(&appliance, "zoe@other.test");
    let lead_page = owner.get(&format!("/w/{ws}/leads/{ann}")).await;
    assert_eq!(owner.get(&format!("/w/{other_ws}/leads/{zoe}")).await.status, 200, "its own workspace");
    assert_eq!(owner.get(&format!("/w/{ws}/leads/{zoe}")).await.status, 404, "through another workspace");
    assert_eq!(owner.get(&format!("/w/{other_ws}/leads/{ann}")).await.status, 404);
    assert_eq!(owner.get(&format!("/w/{other_ws}/leads/imports/{import}")).await.status, 404);
    assert_eq!(owner.get(&format!("/w/{other_ws}/leads/imports/{import}/progress")).await.status, 404);
    let save = owner.post_form(&format!("/w/{ws}/leads/{zoe}"), &lead_page.body, &[("first_name", "X")]).await;
    assert_eq!(save.status, 404);
    let erase = owner
        .post_form(&format!("/w/{ws}/leads/{zoe}/delete"), &lead_page.body, &[("mode", "delete"), ("confirm", "yes")])
        .await;
    assert_eq!(erase.status, 404);
    let join = owner.post_form(&format!("/w/{ws}/leads/{zoe}/lists"), &lead_page.body, &[("add", "Mine")]).await;
    assert_eq!(join.status, 404);
    assert_eq!(lead_id(&appliance, "zoe@other.test"), zoe, "still there");
    let mine = owner.get(&format!("/w/{ws}/leads?q=zoe")).await;
    assert!(select_text(&mine.body, "#leads tbody td a.address").is_empty());

    let viewer = viewer(&appliance, &owner, ws, "viewer@grove.test").await;
    let outsider = viewer.get(&format!("/w/{other_ws}/leads")).await;
    assert_eq!(outsider.status, 404, "not a member there");
    let list = viewer.get(&format!("/w/{ws}/leads")).await;
    assert_eq!(select_text(&list.body, "#leads tbody td a.address"), ["ann@acme.test"]);
    assert!(select_attr(&list.body, "#import-csv", "href").is_empty(), "no import button");
    let page = viewer.get(&format!("/w/{ws}/leads/{ann}")).await;
    assert_eq!(page.status, 200);
    assert!(select_attr(&page.body, "#lead-form", "action").is_empty(), "no form for a viewer");
    assert!(select_attr(&page.body, "#lead-delete", "action").is_empty());
    assert_eq!(select_text(&page.body, "#lead-fields tr").len(), 6);
    // A form a viewer could only forge, with the viewer's own CSRF token: refused.
    let csrf_page = viewer.get("/workspaces").await;
    let save = viewer.post_form(&format!("/w/{ws}/leads/{ann}"), &csrf_page.body, &[("first_name", "Mallory")]).await;
    assert_eq!(save.status, 403);
    let erase = viewer
        .post_form(&format!("/w/{ws}/leads/{ann}/delete"), &csrf_page.body, &[("mode", "delete"), ("confirm", "yes")])
        .await;
    assert_eq!(erase.status, 403);
    let join = viewer.post_form(&format!("/w/{ws}/leads/{ann}/lists"), &csrf_page.body, &[("add", "Mine")]).await;
    assert_eq!(join.status, 403);
    let import_page = viewer.get(&format!("/w/{ws}/leads/import")).await;
    assert!(select_attr(&import_page.body, "#upload-form", "action").is_empty());
    assert_eq!(select_text(&import_page.body, "#imports tbody td:nth-child(2)"), ["one.csv"], "imports are readable");
    let upload =
        upload(&viewer, &format!("/w/{ws}/leads/import"), &csrf_page, "x.csv", b"email\na@b.test\n", "Q", false).await;
    assert_eq!(upload.status, 403);
    let report = viewer.get(&format!("/w/{ws}/leads/imports/{import}")).await;
    assert_eq!(text(&report, "#import-status"), "Done");
    let first: String =
        db(&appliance).query_row("SELECT first_name FROM leads WHERE id = ?1", [ann], |r| r.get(0)).unwrap();
    assert_eq!(first, "Ann");
}

#[tokio::test]
async fn an_upload_needs_the_forms_token() {
    let appliance = Appliance::start();
    let browser = appliance.setup_admin(OWNER).await;
    let ws = workspace_of(&browser.get("/").await.url);
    let form = browser.get(&format!("/w/{ws}/leads/import")).await;
    let forged = Page { body: form.body.replace(&form.csrf(), "forged-token"), ..form };
    let refused =
        upload(&browser, &format!("/w/{ws}/leads/import"), &forged, "x.csv", b"email\na@b.test\n", "Q", false).await;
    assert_eq!(refused.status, 403);
    assert!(files_in(&appliance.data_dir().join("imports")).is_empty(), "nothing stored");
    let confirm = browser
        .post_form(
            &format!("/w/{ws}/leads/import/confirm"),
            &browser.get(&format!("/w/{ws}/leads/import")).await.body,
            &[("upload", "../../inboxgrove.db"), ("list", "Q"), ("column", "email")],
        )
        .await;
    assert_eq!(confirm.status, 422, "an upload token names no other file");
    assert!(text(&confirm, "#upload-error").contains("upload the file again"));
}

#[tokio::test]
async fn a_file_over_the_limit_is_refused_and_not_kept() {
    let appliance = Appliance::start();
    let browser = appliance.setup_admin(OWNER).await;
    let ws = workspace_of(&browser.get("/").await.url);
    let form = browser.get(&format!("/w/{ws}/leads/import")).await;
    let mut exactly = b"email\n".to_vec();
    exactly.resize(50 * 1024 * 1024 - 1, b'a');
    exactly.push(b'\n');
    let taken = upload(&browser, &format!("/w/{ws}/leads/import"), &form, "50mb.csv", &exactly, "Q", false).await;
    assert_eq!(taken.status, 200, "50 MB are taken");
    assert!(text(&taken, "#mapping-summary").starts_with("1 row separated by commas"), "{}", taken.body);
    let mut big = exactly;
    big.push(b'a');
    let refused = upload(&browser, &format!("/w/{ws}/leads/import"), &form, "big.csv", &big, "Q", false).await;
    assert_eq!(refused.status, 422, "{}", refused.body);
    assert!(text(&refused, "#upload-error").contains("larger than 50 MB"), "{}", refused.body);
    assert_eq!(files_in(&appliance.data_dir().join("imports")).len(), 1, "only the upload of 50 MB is kept");
}
