//! The settings pages over HTTP against the real binary. The appliance page shows the
//! certificate the mail ports present (subject, names, a year of validity, self-signed), and its
//! SHA-256 fingerprint equals the hash of the certificate the implicit-TLS submission and IMAP
//! ports hand a client, and what `openssl x509 -fingerprint -sha256` prints for the data dir's
//! `tls/cert.pem`. The workspace page shows the workspace's settings, saves them with one audit
//! entry, keeps what was typed beside each mistake, and is read-only for a viewer; new mailboxes
//! then start with the workspace's default daily limit.

mod common;

use std::process::Command;

use chrono::NaiveDateTime;
use common::{Appliance, Browser, Page, have_peer, select_attr, select_text};
use rustls::pki_types::ServerName;

/// The SHA-256 fingerprint of the certificate presented on `address` (implicit TLS).
async fn presented_fingerprint(address: &str) -> String {
    let tcp = tokio::net::TcpStream::connect(address).await.expect("connect");
    let connector = inboxgrove::mta::deliver::any_certificate_connector().expect("connector");
    let name = ServerName::try_from("mail.grove.test").expect("name");
    let tls = connector.connect(name, tcp).await.expect("TLS handshake");
    let der = tls.get_ref().1.peer_certificates().expect("a certificate")[0].to_vec();
    let digest = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, &der);
    digest.as_ref().iter().map(|byte| format!("{byte:02X}")).collect::<Vec<_>>().join(":")
}

fn shown_time(text: &str) -> NaiveDateTime {
    NaiveDateTime::parse_from_str(text, "%Y-%m-%d %H:%M UTC").unwrap_or_else(|e| panic!("{text:?}: {e}"))
}

#[tokio::test]
async fn the_settings_page_shows_the_certificate_the_mail_ports_present() {
    let appliance = Appliance::start();
    let browser = appliance.setup_admin("owner@grove.test").await;
    let home = browser.get("/workspaces").await;
    assert_eq!(select_attr(&home.body, "header a[href='/settings']", "href").len(), 1, "linked from the top bar");

    let page = browser.get("/settings").await;
    assert_eq!(page.status, 200, "{}", page.body);
    assert_eq!(select_text(&page.body, "#cert-source"), ["Self-signed (generated)"]);
    assert_eq!(select_text(&page.body, "#cert-subject"), ["CN=mail.grove.test"]);
    assert_eq!(select_text(&page.body, "#cert-names code"), ["mail.grove.test", "localhost"]);
    let from = shown_time(&select_text(&page.body, "#cert-not-before")[0]);
    let until = shown_time(&select_text(&page.body, "#cert-not-after")[0]);
    assert_eq!((until - from).num_days(), 365);
    assert!((chrono::Utc::now().naive_utc() - from).num_minutes().abs() <= 5, "valid from now: {from}");

    let shown = select_text(&page.body, "#cert-sha256").remove(0);
    assert_eq!(shown, presented_fingerprint(&appliance.smtp_submissions).await, "submission presents it");
    assert_eq!(shown, presented_fingerprint(&format!("{}:2993", appliance.mail_ip)).await, "IMAPS presents it");
    if have_peer("openssl") {
        let out = Command::new("openssl")
            .args(["x509", "-noout", "-fingerprint", "-sha256", "-in"])
            .arg(appliance.data_dir().join("tls/cert.pem"))
            .output()
            .expect("run openssl");
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        let printed = String::from_utf8_lossy(&out.stdout);
        let openssl = printed.trim().rsplit('=').next().expect("a fingerprint");
        assert_eq!(shown, openssl, "{printed}");
    }

    let signed_out = appliance.browser().get("/settings").await;
    assert!(signed_out.url.ends_with("/login"), "{}", signed_out.url);
    assert!(!signed_out.body.contains(&shown));
}

fn workspace_of(url: &str) -> i64 {
    url.split("/w/").nth(1).and_then(|rest| rest.split('/').next()).and_then(|id| id.parse().ok()).expect("ws url")
}

/// The stored settings of workspace `ws`: name, time zone, default daily limit,
/// List-Unsubscribe, postal address.
fn stored_settings(appliance: &Appliance, ws: i64) -> (String, String, i64, bool, String) {
    let conn = rusqlite::Connection::open(appliance.data_dir().join("inboxgrove.db")).expect("open the database");
    conn.query_row(
        "SELECT name, time_zone, default_daily_limit, list_unsubscribe, postal_address FROM workspaces WHERE id = ?1",
        [ws],
        |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?)),
    )
    .expect("the workspace")
}

/// The details of the audit entries with `action`, from the database.
fn audit_details(appliance: &Appliance, action: &str) -> Vec<String> {
    let conn = rusqlite::Connection::open(appliance.data_dir().join("inboxgrove.db")).expect("open the database");
    let mut stmt = conn.prepare("SELECT detail FROM audit_log WHERE action = ?1 ORDER BY id").expect("prepare");
    stmt.query_map([action], |r| r.get(0)).expect("query").collect::<Result<_, _>>().expect("rows")
}

/// The value of the form field `#id` (the text of a textarea).
fn field(page: &Page, id: &str) -> String {
    let value = select_attr(&page.body, &format!("#{id}"), "value");
    value.into_iter().next().unwrap_or_else(|| select_text(&page.body, &format!("#{id}")).remove(0))
}

/// Invites `email` as a viewer and accepts the link in a new browser.
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
async fn workspace_settings_are_shown_saved_once_checked_per_field_and_read_only_for_viewers() {
    let appliance = Appliance::start();
    let owner = appliance.setup_admin("owner@grove.test").await;
    let ws = workspace_of(&owner.get("/").await.url);
    let url = format!("/w/{ws}/settings/workspace");

    // The top bar's Settings opens it inside a workspace; the settings pages link to each other.
    let domains = owner.get(&format!("/w/{ws}/domains")).await;
    assert_eq!(select_attr(&domains.body, "header .who a[href$='/settings/workspace']", "href"), [url.as_str()]);
    let page = owner.get(&url).await;
    assert_eq!(page.status, 200, "{}", page.body);
    let tabs = [url.clone(), format!("/w/{ws}/members"), format!("/w/{ws}/settings/appliance")];
    assert_eq!(select_attr(&page.body, "nav.tabs a", "href"), tabs);
    assert_eq!(select_text(&page.body, "nav.tabs a[aria-current]"), ["Workspace"]);
    let inside = owner.get(&tabs[2]).await;
    assert_eq!(inside.status, 200);
    assert_eq!(
        select_text(&inside.body, "#cert-subject"),
        ["CN=mail.grove.test"],
        "the appliance page in the workspace"
    );
    assert_eq!(select_attr(&inside.body, "nav.tabs a", "href"), tabs);
    let outside = owner.get("/settings").await;
    assert!(select_attr(&outside.body, "nav.tabs a", "href").contains(&url), "{}", outside.body);
    assert!(select_attr(&owner.get(&tabs[1]).await.body, "nav.tabs a", "href").contains(&url), "from Members");

    // The stored values, and a form that says what it does.
    assert_eq!(field(&page, "ws-name"), "Acme Outreach");
    assert_eq!(field(&page, "ws-time-zone"), "UTC");
    assert_eq!(field(&page, "ws-default-daily-limit"), "40");
    assert!(select_attr(&page.body, "#ws-list-unsubscribe", "checked").is_empty(), "off by default");
    assert_eq!(field(&page, "ws-postal-address"), "");
    assert!(select_attr(&page.body, "#time-zones option", "value").contains(&"Europe/Berlin".to_string()));
    assert_eq!(select_text(&page.body, "#workspace-settings button[type=submit]"), ["Save workspace settings"]);
    assert!(select_text(&page.body, "#ws-postal-address-help")[0].contains("campaign footers"));

    // Saving stores every setting with one audit entry and comes back with a notice.
    let address = "Acme Outreach Ltd\r\n1 Main Street\r\nSpringfield, IL 62701  ";
    let fields = [
        ("name", "Acme EU"),
        ("time_zone", "Europe/Berlin"),
        ("default_daily_limit", "25"),
        ("list_unsubscribe", "on"),
        ("postal_address", address),
    ];
    let saved = owner.post_form(&url, &page.body, &fields).await;
    assert_eq!(saved.status, 200, "{}", saved.body);
    assert!(saved.url.ends_with(&format!("{url}?saved=1")), "redirected back: {}", saved.url);
    assert_eq!(select_text(&saved.body, ".notice"), ["Workspace settings saved."]);
    let stored_address = "Acme Outreach Ltd\n1 Main Street\nSpringfield, IL 62701";
    let expected = ("Acme EU".into(), "Europe/Berlin".into(), 25, true, stored_address.into());
    assert_eq!(stored_settings(&appliance, ws), expected);
    assert_eq!(field(&saved, "ws-name"), "Acme EU");
    assert_eq!(field(&saved, "ws-default-daily-limit"), "25");
    assert_eq!(select_attr(&saved.body, "#ws-list-unsubscribe", "checked").len(), 1);
    assert_eq!(field(&saved, "ws-postal-address"), stored_address);
    assert_eq!(
        audit_details(&appliance, "workspace.update"),
        ["name \"Acme EU\", time zone Europe/Berlin, default daily limit 25, List-Unsubscribe on, \
          postal address \"Acme Outreach Ltd, 1 Main Street, Springfield, IL 62701\""]
    );
    let again = owner.post_form(&url, &saved.body, &fields).await;
    assert_eq!(again.status, 200);
    assert_eq!(audit_details(&appliance, "workspace.update").len(), 1, "the same values are no change");
    assert!(!owner.get(&url).await.body.contains("Workspace settings saved."), "the notice is for one save");

    // Mistakes: each beside its field, with what was typed; nothing saved.
    let typed = [
        ("name", "Acme Mars"),
        ("time_zone", "Mars/Olympus"),
        ("default_daily_limit", "20000"),
        ("postal_address", "Olympus Mons 1"),
    ];
    let refused = owner.post_form(&url, &saved.body, &typed).await;
    assert_eq!(refused.status, 422, "{}", refused.body);
    assert_eq!(
        select_text(&refused.body, "#ws-time-zone-error"),
        ["\"Mars/Olympus\" is not an IANA time zone such as Europe/Berlin."]
    );
    assert_eq!(
        select_text(&refused.body, "#ws-default-daily-limit-error"),
        ["The default daily limit must be a whole number from 0 to 10000."]
    );
    assert!(select_text(&refused.body, "#ws-name-error").is_empty(), "a good field has no error");
    assert_eq!(select_attr(&refused.body, "#ws-time-zone", "aria-invalid"), ["true"]);
    assert_eq!(field(&refused, "ws-name"), "Acme Mars");
    assert_eq!(field(&refused, "ws-time-zone"), "Mars/Olympus");
    assert_eq!(field(&refused, "ws-default-daily-limit"), "20000");
    assert_eq!(field(&refused, "ws-postal-address"), "Olympus Mons 1");
    assert!(select_attr(&refused.body, "#ws-list-unsubscribe", "checked").is_empty(), "unchecked as posted");
    assert_eq!(stored_settings(&appliance, ws), expected, "nothing saved");
    let not_a_number = owner.post_form(&url, &saved.body, &[("name", "Acme EU"), ("time_zone", "UTC")]).await;
    assert_eq!(not_a_number.status, 422);
    assert_eq!(select_text(&not_a_number.body, "#ws-default-daily-limit-error").len(), 1, "an empty limit");
    assert_eq!(audit_details(&appliance, "workspace.update").len(), 1);

    // New mailboxes start with the default: the form is pre-filled, and so is the role mailbox.
    let list = owner.get(&format!("/w/{ws}/domains")).await;
    let added = owner
        .post_form(&format!("/w/{ws}/domains"), &list.body, &[("name", "grove-settings.test"), ("dkim", "ed25519")])
        .await;
    assert_eq!(added.status, 200, "{}", added.body);
    assert_eq!(select_attr(&added.body, "#mailbox-daily-limit", "value"), ["25"]);
    let action = select_attr(&added.body, "form[action$='/mailboxes']", "action").remove(0);
    let created = owner.post_form(&action, &added.body, &[("count", "2")]).await;
    assert_eq!(created.status, 200, "{}", created.body);
    let conn = rusqlite::Connection::open(appliance.data_dir().join("inboxgrove.db")).expect("open the database");
    let limits: Vec<i64> = conn
        .prepare("SELECT daily_limit FROM mailboxes WHERE address LIKE '%@grove-settings.test' ORDER BY id")
        .expect("prepare")
        .query_map([], |r| r.get(0))
        .expect("query")
        .collect::<Result<_, _>>()
        .expect("rows");
    assert_eq!(limits, [25, 25, 25], "the role mailbox and the two new ones");

    // A viewer sees the values and cannot change them.
    let viewer = viewer(&appliance, &owner, ws, "viewer@grove.test").await;
    let shown = viewer.get(&url).await;
    assert_eq!(shown.status, 200, "{}", shown.body);
    assert!(select_attr(&shown.body, "#workspace-settings-save", "id").is_empty(), "no save button");
    assert!(select_attr(&shown.body, "form#workspace-settings", "id").is_empty(), "no form");
    assert_eq!(select_text(&shown.body, "#ws-name"), ["Acme EU"]);
    assert_eq!(select_text(&shown.body, "#ws-default-daily-limit"), ["25"]);
    assert_eq!(select_text(&shown.body, "#ws-list-unsubscribe"), ["On"]);
    assert_eq!(select_text(&shown.body, "#ws-postal-address"), [stored_address]);
    let forbidden = viewer.post_form(&url, &shown.body, &[("name", "Viewer's"), ("time_zone", "UTC")]).await;
    assert_eq!(forbidden.status, 403, "{}", forbidden.body);
    assert_eq!(stored_settings(&appliance, ws), expected, "the viewer changed nothing");
}
