//! The foundation, driven over HTTP as a browser would and through the CLI: first-run setup,
//! login and throttling, CSRF, workspace isolation, domains, bulk mailboxes, exports, backup.

mod common;

use common::{Appliance, Browser, PASSWORD, select_attr, select_text};

const ADMIN: &str = "owner@acme.test";

/// The id in a `/w/{ws}/...` URL.
fn workspace_of(url: &str) -> i64 {
    url.split("/w/")
        .nth(1)
        .and_then(|rest| rest.split('/').next())
        .and_then(|id| id.parse().ok())
        .expect("workspace url")
}

async fn add_domain(browser: &Browser, ws: i64, name: &str) -> common::Page {
    let form = browser.get(&format!("/w/{ws}/domains")).await;
    browser.post_form(&format!("/w/{ws}/domains"), &form.body, &[("name", name), ("dkim", "rsa")]).await
}

/// Creates `count` mailboxes on the domain page at `domain_url`; returns the issued page.
async fn create_mailboxes(browser: &Browser, domain_url: &str, count: &str) -> common::Page {
    let form = browser.get(domain_url).await;
    let action = select_attr(&form.body, "form[action$='/mailboxes']", "action").remove(0);
    browser.post_form(&action, &form.body, &[("count", count)]).await
}

fn parse_csv(body: &str) -> (Vec<String>, Vec<Vec<String>>) {
    let mut reader = csv::Reader::from_reader(body.as_bytes());
    let header = reader.headers().expect("header").iter().map(str::to_string).collect();
    let rows = reader.records().map(|r| r.expect("row").iter().map(str::to_string).collect()).collect();
    (header, rows)
}

#[tokio::test]
async fn first_run_setup_login_logout_and_csrf() {
    let appliance = Appliance::start();
    assert_eq!(appliance.browser().get("/healthz").await.status, 200);
    let link = appliance.setup_link.clone().expect("setup link printed on first start");

    // A short password re-renders the form with the message and what was typed.
    let visitor = appliance.browser();
    let form = visitor.get(&link).await;
    let short =
        visitor.post_form(&link, &form.body, &[("email", ADMIN), ("password", "short"), ("workspace", "Acme")]).await;
    assert_eq!(short.status, 422);
    assert!(short.body.contains("at least 10 characters"), "{}", short.body);
    assert!(short.body.contains(ADMIN));

    // A form without the CSRF token is refused.
    let forged = visitor.post_raw(&link, &[("email", ADMIN), ("password", PASSWORD), ("workspace", "Acme")]).await;
    assert_eq!(forged.status, 403);
    let wrong = visitor
        .post_raw(
            &link,
            &[("csrf", "x".repeat(43).as_str()), ("email", ADMIN), ("password", PASSWORD), ("workspace", "A")],
        )
        .await;
    assert_eq!(wrong.status, 403);

    let admin = appliance.setup_admin(ADMIN).await;
    let home = admin.get("/").await;
    assert!(home.url.ends_with("/domains"), "{}", home.url);
    assert!(home.body.contains("Acme Outreach"));

    // The link works once.
    assert_eq!(appliance.browser().get(&link).await.status, 404);

    // Session cookie flags.
    let response = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
        .post(appliance.url("/login"))
        .header("cookie", "ig_csrf=abcdefghijabcdefghijabcdefghijabcdefghij123")
        .form(&[("csrf", "abcdefghijabcdefghijabcdefghijabcdefghij123"), ("email", ADMIN), ("password", PASSWORD)])
        .send()
        .await
        .unwrap();
    let cookie = response.headers().get("set-cookie").unwrap().to_str().unwrap().to_string();
    assert!(
        cookie.starts_with("ig_session=") && cookie.contains("HttpOnly") && cookie.contains("SameSite=Lax"),
        "{cookie}"
    );

    // Logout ends the session; pages then lead to the login form.
    let page = admin.get("/").await;
    let out = admin.post_form("/logout", &page.body, &[]).await;
    assert!(out.url.ends_with("/login"), "{}", out.url);
    assert!(admin.get("/workspaces").await.url.ends_with("/login"));

    // Wrong password, then the right one.
    let login = admin.get("/login").await;
    let bad = admin.post_form("/login", &login.body, &[("email", ADMIN), ("password", "not the password")]).await;
    assert_eq!(bad.status, 401);
    assert!(bad.body.contains("not right") && bad.body.contains(ADMIN));
    let good = admin.post_form("/login", &login.body, &[("email", ADMIN), ("password", PASSWORD)]).await;
    assert_eq!(good.status, 200);
    assert!(good.url.contains("/w/"));
}

#[tokio::test]
async fn failed_logins_are_throttled_per_account_and_the_ui_says_so() {
    let appliance = Appliance::start();
    appliance.setup_admin(ADMIN).await;
    let attacker = appliance.browser();
    let login = attacker.get("/login").await;
    for _ in 0..5 {
        let page = attacker.post_form("/login", &login.body, &[("email", ADMIN), ("password", "guess guess")]).await;
        assert!(page.status == 401 || page.status == 429);
    }
    let page = attacker.post_form("/login", &login.body, &[("email", ADMIN), ("password", PASSWORD)]).await;
    assert_eq!(page.status, 429, "even the right password waits once throttled");
    assert!(page.body.contains("Too many failed sign-in attempts for this account"), "{}", page.body);

    // Per IP: many accounts from one address.
    let mut last = 0;
    for i in 0..21 {
        let page = attacker
            .post_form(
                "/login",
                &login.body,
                &[("email", &format!("nobody{i}@acme.test")), ("password", "guess guess")],
            )
            .await;
        last = page.status;
        if page.status == 429 {
            assert!(page.body.contains("from your address"), "{}", page.body);
            break;
        }
    }
    assert_eq!(last, 429);
}

/// Behind a trusted reverse proxy, the address throttled is the one the proxy forwards for: one
/// client guessing from one address is stopped, another client through the same proxy is not.
/// A client's own X-Forwarded-For entries (left of the proxy's) change nothing.
#[tokio::test]
async fn behind_a_trusted_proxy_logins_are_throttled_per_forwarded_address() {
    let appliance = Appliance::start_with(
        tempfile::tempdir().expect("temp dir"),
        &[("INBOXGROVE_HTTP__TRUSTED_PROXIES", "[\"127.0.0.1\"]")],
    );
    appliance.setup_admin(ADMIN).await;
    let attacker = Browser::forwarded_for(&appliance.base, "10.9.8.7, 203.0.113.5");
    let login = attacker.get("/login").await;
    let mut throttled = false;
    for i in 0..25 {
        let fields = [("email", format!("nobody{i}@acme.test")), ("password", "guess guess".to_string())];
        let fields: Vec<(&str, &str)> = fields.iter().map(|(k, v)| (*k, v.as_str())).collect();
        let page = attacker.post_form("/login", &login.body, &fields).await;
        if page.status == 429 {
            assert!(page.body.contains("from your address"), "{}", page.body);
            throttled = true;
            break;
        }
    }
    assert!(throttled, "one forwarded address is throttled");
    let spoofing = Browser::forwarded_for(&appliance.base, "198.51.100.1, 203.0.113.5");
    let page = spoofing.get("/login").await;
    let refused = spoofing.post_form("/login", &page.body, &[("email", ADMIN), ("password", PASSWORD)]).await;
    assert_eq!(refused.status, 429, "a made-up entry before the proxy's does not escape the throttle");
    let neighbour = Browser::forwarded_for(&appliance.base, "203.0.113.6");
    let page = neighbour.get("/login").await;
    let signed_in = neighbour.post_form("/login", &page.body, &[("email", ADMIN), ("password", PASSWORD)]).await;
    assert_eq!(signed_in.status, 200, "{}", signed_in.body);
    assert!(signed_in.url.contains("/w/"), "another client behind the same proxy signs in");
}

#[tokio::test]
async fn domains_are_validated_and_their_records_shown() {
    let appliance = Appliance::start();
    let admin = appliance.setup_admin(ADMIN).await;
    let ws = workspace_of(&admin.get("/").await.url);

    for (bad, message) in [
        ("exa mple.com", "contains a space"),
        ("https://grove.test", "is a web address; enter just the domain"),
        ("bob@grove.test", "is an email address; enter just the domain after the @, such as grove.test"),
        ("localhost", "needs at least two parts separated by a dot"),
        ("", "Enter a domain name, such as example.com"),
        ("-bad.test", "starts or ends with a hyphen"),
    ] {
        let page = add_domain(&admin, ws, bad).await;
        assert_eq!(page.status, 422, "{bad}: {}", page.body);
        assert!(!select_text(&page.body, ".error").is_empty(), "{bad} shows an error");
        let shown = select_text(&page.body, ".error").join(" ");
        assert!(shown.contains(message), "{bad}: the error says {message:?}, not {shown:?}");
        if !bad.is_empty() {
            assert_eq!(select_attr(&page.body, "#domain-name", "value"), vec![bad.to_string()], "keeps what was typed");
        }
    }

    let page = add_domain(&admin, ws, "Grove-Outreach.TEST").await;
    assert_eq!(page.status, 200, "{}", page.body);
    assert!(page.url.contains("/domains/"));
    let texts = select_text(&page.body, "table.records td");
    let joined = texts.join("\n");
    for expected in [
        "grove-outreach.test",
        "10 mail.grove.test",
        "v=spf1",
        "._domainkey.grove-outreach.test",
        "v=DKIM1; k=rsa; p=",
        "_dmarc.grove-outreach.test",
        "v=DMARC1; p=none; rua=mailto:",
        "track.grove-outreach.test",
    ] {
        assert!(joined.contains(expected), "records show {expected}:\n{joined}");
    }

    // The records point at a hostname no other server can reach: the page says so and names
    // the settings that fix it.
    let banner = select_text(&page.body, "#deployment-warnings li");
    assert!(banner.iter().any(|w| w.contains("\"mail.grove.test\", which is not a public name")), "{banner:?}");
    assert!(banner.iter().any(|w| w.contains("smtp.public_submission_port")), "{banner:?}");

    let zone = admin.get(&format!("{}/zone", page.url)).await;
    assert!(zone.disposition.contains("grove-outreach.test.zone"));
    assert!(zone.body.contains("$ORIGIN grove-outreach.test."));
    let txt: Vec<&str> = zone.body.lines().filter(|l| l.split_whitespace().nth(3) == Some("TXT")).collect();
    assert_eq!(txt.len(), 3, "SPF, DKIM and DMARC as TXT records:\n{}", zone.body);
    for prefix in ["v=spf1", "v=DKIM1", "v=DMARC1"] {
        assert!(txt.iter().any(|l| l.contains(prefix)), "{prefix} in the zone:\n{}", zone.body);
    }
    assert!(txt.iter().all(|l| l.split('"').all(|s| s.len() <= 255)), "TXT strings split at 255:\n{}", zone.body);

    let duplicate = add_domain(&admin, ws, "grove-outreach.test").await;
    assert_eq!(duplicate.status, 422);
    assert!(duplicate.body.contains("already added"), "{}", duplicate.body);

    // Internationalized names are stored in ASCII form.
    let idn = add_domain(&admin, ws, "bücher-grove.test").await;
    assert_eq!(idn.status, 200, "{}", idn.body);
    assert!(idn.body.contains("xn--bcher-grove-"), "{}", idn.body);

    // Ed25519 keys on request.
    let form = admin.get(&format!("/w/{ws}/domains")).await;
    let ed = admin
        .post_form(&format!("/w/{ws}/domains"), &form.body, &[("name", "ed-grove.test"), ("dkim", "ed25519")])
        .await;
    assert!(ed.body.contains("k=ed25519"), "{}", ed.body);

    // The CLI prints the same records.
    let out = appliance.cli(&["domain", "records", "grove-outreach.test", "--zone"], None);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(String::from_utf8_lossy(&out.stdout).contains("_dmarc.grove-outreach.test."));

    // The audit log lists the additions.
    let audit = admin.get(&format!("/w/{ws}/audit?action=domain")).await;
    assert_eq!(select_text(&audit.body, "tbody tr").len(), 3, "{}", audit.body);
}

#[tokio::test]
async fn fifty_mailboxes_export_column_by_column_and_passwords_only_once() {
    let appliance = Appliance::start();
    let admin = appliance.setup_admin(ADMIN).await;
    let ws = workspace_of(&admin.get("/").await.url);
    let domain_page = add_domain(&admin, ws, "grove-outreach.test").await;

    let over = create_mailboxes(&admin, &domain_page.url, "501").await;
    assert_eq!(over.status, 422);
    assert!(over.body.contains("between 1 and 500"));
    assert_eq!(select_attr(&over.body, "#mailbox-count", "value"), vec!["501"]);
    let count_shown = |page: &common::Page| {
        page.body.contains("<h2>Mailboxes <small>(") && select_text(&page.body, "h2 small").len() == 1
    };
    assert!(count_shown(&over) && select_text(&over.body, "h2 small") == ["(1)"], "postmaster@ alone");

    let issued = create_mailboxes(&admin, &domain_page.url, "50").await;
    assert_eq!(issued.status, 200, "{}", issued.body);
    let cells = select_text(&issued.body, "#credentials tbody td");
    let shown: Vec<(String, String)> = cells.chunks(2).map(|c| (c[0].clone(), c[1].clone())).collect();
    assert_eq!(shown.len(), 50);
    let mut locals: Vec<&str> = shown.iter().map(|(e, _)| e.split('@').next().unwrap()).collect();
    locals.sort_unstable();
    locals.dedup();
    assert_eq!(locals.len(), 50, "distinct addresses");
    for (email, password) in &shown {
        assert!(email.ends_with("@grove-outreach.test"));
        let local = email.split('@').next().unwrap();
        assert!(local.chars().all(|c| c.is_ascii_lowercase() || c == '.' || c == '_'), "{local} looks like a name");
        assert!(password.len() >= 16, "strong password");
    }

    // The one-time download carries the passwords, column by column.
    let batch_action = select_attr(&issued.body, "form[action*='/credentials/']", "action").remove(0);
    let csv = admin.post_form(&batch_action, &issued.body, &[("format", "instantly")]).await;
    assert_eq!(csv.status, 200);
    assert!(csv.content_type.starts_with("text/csv"));
    let (header, rows) = parse_csv(&csv.body);
    assert_eq!(
        header,
        [
            "Email",
            "First Name",
            "Last Name",
            "IMAP Username",
            "IMAP Password",
            "IMAP Host",
            "IMAP Port",
            "SMTP Username",
            "SMTP Password",
            "SMTP Host",
            "SMTP Port",
            "Daily Limit",
            "Warmup Enabled",
            "Warmup Limit",
            "Warmup Increment"
        ]
    );
    assert_eq!(rows.len(), 50);
    for row in &rows {
        let password = &shown.iter().find(|(e, _)| *e == row[0]).expect("exported mailbox was created").1;
        assert!(!row[1].is_empty() && !row[2].is_empty(), "names");
        assert_eq!(row[3], row[0], "IMAP username");
        assert_eq!(&row[4], password, "IMAP password");
        assert_eq!(row[5], "mail.grove.test");
        assert_eq!(row[6], "993", "IMAP port: the public IMAPS port, not the development listener");
        assert_eq!(row[7], row[0]);
        assert_eq!(&row[8], password);
        assert_eq!(row[9], "mail.grove.test");
        assert_eq!(row[10], "587", "SMTP port: the public submission port, not the development listener");
        assert_eq!(row[11], "40", "default daily limit");
    }

    // Every format from the same page, while the user stays on it.
    let notice = select_text(&issued.body, "#credentials-notice").join(" ");
    assert!(notice.contains("until you open another page or for 15 minutes"), "{notice}");
    let smartlead = admin.post_form(&batch_action, &issued.body, &[("format", "smartlead")]).await;
    assert_eq!(smartlead.status, 200, "{}", smartlead.body);
    let (header, rows) = parse_csv(&smartlead.body);
    let password_column = header.iter().position(|h| h == "password").unwrap();
    assert_eq!(rows.len(), 50);
    for row in &rows {
        let email = &row[header.iter().position(|h| h == "from_email").unwrap()];
        assert_eq!(&row[password_column], &shown.iter().find(|(e, _)| e == email).unwrap().1);
    }
    let plain = admin.post_form(&batch_action, &issued.body, &[("format", "plain")]).await;
    let (header, rows) = parse_csv(&plain.body);
    assert_eq!(header, ["email", "password"]);
    let mut sorted_shown = shown.clone();
    sorted_shown.sort();
    let mut plain_rows: Vec<(String, String)> = rows.into_iter().map(|r| (r[0].clone(), r[1].clone())).collect();
    plain_rows.sort();
    assert_eq!(plain_rows, sorted_shown);
    // The warning that the hostname and ports are not public is shown before the downloads.
    let warnings = select_text(&issued.body, "#deployment-warnings li");
    assert!(warnings.iter().any(|w| w.contains("mail.grove.test") && w.contains("Set hostname")), "{warnings:?}");

    // Once the user opens another page, the passwords are gone.
    let counted = admin.get(&domain_page.url).await;
    assert!(count_shown(&counted) && select_text(&counted.body, "h2 small") == ["(51)"], "the fifty and postmaster@");
    assert_eq!(admin.get(&format!("/w/{ws}/mailboxes")).await.status, 200);
    let again = admin.post_form(&batch_action, &issued.body, &[("format", "smartlead")]).await;
    assert_eq!(again.status, 422);
    assert!(again.body.contains("can no longer be downloaded"), "{}", again.body);

    // A regular export of selected mailboxes: Smartlead layout, no passwords.
    let list = admin.get(&format!("/w/{ws}/mailboxes")).await;
    assert_eq!(select_text(&list.body, "#pager-summary"), ["1–50 of 51"], "the 50 and the role mailbox");
    let mut ids = Vec::new();
    let mut role_rows = Vec::new();
    let next = admin.get(&format!("/w/{ws}/mailboxes?page=2")).await;
    for page in [&list, &next] {
        let labels = select_attr(&page.body, "input[name=id]", "aria-label");
        for (id, label) in select_attr(&page.body, "input[name=id]", "value").into_iter().zip(labels) {
            if label == "Select postmaster@grove-outreach.test" {
                role_rows.push(id);
            } else {
                ids.push(id);
            }
        }
    }
    assert_eq!((ids.len(), role_rows.len()), (50, 1));
    let mut fields: Vec<(&str, &str)> = ids.iter().take(10).map(|id| ("id", id.as_str())).collect();
    fields.push(("format", "smartlead"));
    let export = admin.post_form(&format!("/w/{ws}/mailboxes/export"), &list.body, &fields).await;
    let (header, rows) = parse_csv(&export.body);
    assert_eq!(
        header[..8],
        ["from_name", "from_email", "user_name", "password", "smtp_host", "smtp_port", "imap_host", "imap_port"]
    );
    assert_eq!(rows.len(), 10);
    let column = |name: &str| header.iter().position(|h| h == name).unwrap();
    for row in &rows {
        assert_eq!(row[column("user_name")], row[column("from_email")]);
        assert_eq!(row[column("password")], "", "no passwords in a regular export");
        assert_eq!(row[column("imap_password")], "");
        assert_eq!(row[column("max_email_per_day")], "40");
        assert_eq!(row[column("smtp_port")], "587");
    }

    // A display name that a spreadsheet would run as a formula is neutralized.
    let first = &ids[0];
    let edit_url = format!("/w/{ws}/mailboxes/{first}");
    let edit = admin.get(&edit_url).await;
    let formula = "=HYPERLINK(\"http://evil.test\",\"x\")";
    let saved = admin
        .post_form(&edit_url, &edit.body, &[("display_name", formula), ("daily_limit", "25"), ("status", "warming")])
        .await;
    assert_eq!(saved.status, 200, "{}", saved.body);
    let bad_limit = admin
        .post_form(&edit_url, &edit.body, &[("display_name", "X"), ("daily_limit", "-3"), ("status", "active")])
        .await;
    assert_eq!(bad_limit.status, 422);
    assert_eq!(select_attr(&bad_limit.body, "input[name=daily_limit]", "value"), vec!["-3"]);
    let export = admin.get(&format!("/w/{ws}/mailboxes/export?format=smartlead&id={first}")).await;
    let (header, rows) = parse_csv(&export.body);
    assert_eq!(rows[0][header.iter().position(|h| h == "from_name").unwrap()], format!("'{formula}"));
    assert_eq!(rows[0][header.iter().position(|h| h == "max_email_per_day").unwrap()], "25");
    assert_eq!(rows[0][header.iter().position(|h| h == "warmup_enabled").unwrap()], "TRUE");

    // The mailbox page: what each status means, the connection settings, the sending numbers.
    let page = admin.get(&edit_url).await;
    let meanings = select_text(&page.body, "#status-choice label");
    assert_eq!(meanings.len(), 3, "{meanings:?}");
    assert!(meanings[1].starts_with("warming") && meanings[1].contains("Warmup Enabled TRUE"), "{meanings:?}");
    assert!(meanings[2].starts_with("paused") && meanings[2].contains("Sends nothing"), "{meanings:?}");
    let settings = select_text(&page.body, "#connection-settings tbody td");
    assert_eq!(settings[..3], ["mail.grove.test", "587", "STARTTLS"], "{settings:?}");
    assert_eq!(settings[4..7], ["mail.grove.test", "993", "SSL/TLS"], "{settings:?}");
    assert!(settings[3].contains('@') && settings[3] == settings[7], "the address is the username: {settings:?}");
    assert_eq!(select_text(&page.body, "#sent-today"), ["0 of 25"]);

    // A renamed mailbox exports its new name in both formats.
    let second = &ids[1];
    let edit_url = format!("/w/{ws}/mailboxes/{second}");
    let edit = admin.get(&edit_url).await;
    let renamed = admin
        .post_form(
            &edit_url,
            &edit.body,
            &[("display_name", "Jo van Bloggs"), ("daily_limit", "40"), ("status", "active")],
        )
        .await;
    assert_eq!(renamed.status, 200, "{}", renamed.body);
    let instantly = admin.get(&format!("/w/{ws}/mailboxes/export?format=instantly&id={second}")).await;
    let (_, rows) = parse_csv(&instantly.body);
    assert_eq!((rows[0][1].as_str(), rows[0][2].as_str()), ("Jo", "van Bloggs"), "Instantly's First and Last Name");
    let smartlead = admin.get(&format!("/w/{ws}/mailboxes/export?format=smartlead&id={second}")).await;
    let (header, rows) = parse_csv(&smartlead.body);
    assert_eq!(rows[0][header.iter().position(|h| h == "from_name").unwrap()], "Jo van Bloggs");

    // A password reset issues a new one-time batch.
    let reset = admin.post_form(&format!("/w/{ws}/mailboxes/reset-passwords"), &list.body, &[("id", first)]).await;
    assert_eq!(reset.status, 200, "{}", reset.body);
    let new_password = select_text(&reset.body, "#credentials tbody td code").remove(0);
    let action = select_attr(&reset.body, "form[action*='/credentials/']", "action").remove(0);
    let csv = admin.post_form(&action, &reset.body, &[("format", "smartlead")]).await;
    let (header, rows) = parse_csv(&csv.body);
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0][header.iter().position(|h| h == "password").unwrap()], new_password);

    // The audit log records who did it.
    let audit = admin.get(&format!("/w/{ws}/audit?action=mailbox")).await;
    let text = select_text(&audit.body, "tbody td").join(" ");
    assert!(text.contains("mailbox.create") && text.contains("50 mailboxes") && text.contains(ADMIN), "{text}");
    assert!(text.contains("mailbox.update") && text.contains("mailbox.password_reset"), "{text}");
}

#[tokio::test]
async fn another_workspace_sees_404_everywhere() {
    let appliance = Appliance::start();
    let owner = appliance.setup_admin(ADMIN).await;
    let ws1 = workspace_of(&owner.get("/").await.url);
    let domain_page = add_domain(&owner, ws1, "grove-outreach.test").await;
    let domain_id = domain_page.url.rsplit('/').next().unwrap().to_string();
    create_mailboxes(&owner, &domain_page.url, "3").await;
    let list = owner.get(&format!("/w/{ws1}/mailboxes")).await;
    let mailbox_id = select_attr(&list.body, "input[name=id]", "value").remove(0);

    // The owner makes a second workspace and invites a stranger as its owner.
    let workspaces = owner.get("/workspaces").await;
    let created = owner.post_form("/workspaces", &workspaces.body, &[("name", "Other Agency")]).await;
    let ws2 = workspace_of(&created.url);
    assert_ne!(ws1, ws2);
    let members = owner.get(&format!("/w/{ws2}/members")).await;
    let invited = owner
        .post_form(&format!("/w/{ws2}/members"), &members.body, &[("email", "stranger@other.test"), ("role", "owner")])
        .await;
    let link = select_text(&invited.body, "#invite-link").remove(0);
    let stranger = appliance.browser();
    let invite = stranger.get(&link).await;
    assert!(invite.body.contains("Other Agency"));
    let joined = stranger.post_form(&link, &invite.body, &[("password", "stranger password 1")]).await;
    assert_eq!(workspace_of(&joined.url), ws2);
    assert_eq!(appliance.browser().get(&link).await.status, 404, "invite links work once");

    for url in [
        format!("/w/{ws1}/domains"),
        format!("/w/{ws1}/domains/{domain_id}"),
        format!("/w/{ws1}/domains/{domain_id}/zone"),
        format!("/w/{ws2}/domains/{domain_id}"),
        format!("/w/{ws1}/mailboxes"),
        format!("/w/{ws1}/mailboxes/{mailbox_id}"),
        format!("/w/{ws2}/mailboxes/{mailbox_id}"),
        format!("/w/{ws1}/mailboxes/export?format=instantly"),
        format!("/w/{ws2}/mailboxes/export?format=instantly&id={mailbox_id}"),
        format!("/w/{ws2}/mailboxes/export?format=instantly&domain={domain_id}"),
        format!("/w/{ws1}/audit"),
    ] {
        let page = stranger.get(&url).await;
        assert_eq!(page.status, 404, "{url} answered {}", page.status);
        assert!(!page.body.contains("grove-outreach"), "{url} leaks");
    }
    let ws2_list = stranger.get(&format!("/w/{ws2}/mailboxes")).await;
    let edit = stranger
        .post_form(
            &format!("/w/{ws2}/mailboxes/{mailbox_id}"),
            &ws2_list.body,
            &[("display_name", "x"), ("daily_limit", "1"), ("status", "paused")],
        )
        .await;
    assert_eq!(edit.status, 404);
    let reset = stranger
        .post_form(&format!("/w/{ws2}/mailboxes/reset-passwords"), &ws2_list.body, &[("id", &mailbox_id)])
        .await;
    assert_eq!(reset.status, 404);
    let export = stranger.get(&format!("/w/{ws2}/mailboxes/export?format=smartlead")).await;
    assert_eq!(export.status, 200);
    assert_eq!(parse_csv(&export.body).1.len(), 0, "the second workspace's export holds none of the first's");

    // A viewer reads but cannot change.
    let members = owner.get(&format!("/w/{ws1}/members")).await;
    let invited = owner
        .post_form(&format!("/w/{ws1}/members"), &members.body, &[("email", "viewer@acme.test"), ("role", "viewer")])
        .await;
    let link = select_text(&invited.body, "#invite-link").remove(0);
    let viewer = appliance.browser();
    let invite = viewer.get(&link).await;
    viewer.post_form(&link, &invite.body, &[("password", "viewer password 1")]).await;
    assert_eq!(viewer.get(&format!("/w/{ws1}/domains/{domain_id}")).await.status, 200);
    let denied = add_domain(&viewer, ws1, "viewer-grove.test").await;
    assert_eq!(denied.status, 403);
    assert_eq!(viewer.get(&format!("/w/{ws1}/audit")).await.status, 403);
}

#[tokio::test]
async fn cli_commands_backup_and_master_key() {
    let mut appliance = Appliance::start();
    let created = appliance.cli(&["admin", "create", "--email", "ops@acme.test"], Some("a long cli password\n"));
    assert!(created.status.success(), "{}", String::from_utf8_lossy(&created.stderr));
    assert!(appliance.browser().get(&appliance.setup_link.clone().unwrap()).await.status == 404, "setup closes");

    let added = appliance.cli(&["domain", "add", "cli-grove.test", "--dkim", "ed25519"], None);
    assert!(added.status.success(), "{}", String::from_utf8_lossy(&added.stderr));
    assert!(String::from_utf8_lossy(&added.stdout).contains("k=ed25519"));
    let bad = appliance.cli(&["domain", "add", "not a domain"], None);
    assert!(!bad.status.success());

    let out = appliance.cli(&["mailbox", "create", "--domain", "cli-grove.test", "--count", "5"], None);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let (header, rows) = parse_csv(&String::from_utf8_lossy(&out.stdout));
    assert_eq!(header, ["email", "password"]);
    assert_eq!(rows.len(), 5);

    let email = rows[0][0].clone();
    let set = appliance.cli(&["mailbox", "set", &email, "--daily-limit", "12", "--status", "paused"], None);
    assert!(set.status.success(), "{}", String::from_utf8_lossy(&set.stderr));
    let export = appliance.cli(&["mailbox", "export", "--domain", "cli-grove.test", "--format", "instantly"], None);
    let (header, rows) = parse_csv(&String::from_utf8_lossy(&export.stdout));
    assert_eq!(rows.len(), 5, "the role mailbox is not exported: {rows:?}");
    assert!(rows.iter().all(|r| r[0] != "postmaster@cli-grove.test"));
    let row = rows.iter().find(|r| r[0] == email).expect("exported");
    assert_eq!(row[header.iter().position(|h| h == "Daily Limit").unwrap()], "12");
    assert_eq!(row[header.iter().position(|h| h == "IMAP Password").unwrap()], "");

    let check = appliance.cli(&["config", "check"], None);
    assert!(check.status.success());
    assert!(String::from_utf8_lossy(&check.stdout).contains("hostname = \"mail.grove.test\""));

    // A consistent backup while serving.
    let file = appliance.dir.path().join("backup.db");
    let backup = appliance.cli(&["backup", file.to_str().unwrap()], None);
    assert!(backup.status.success(), "{}", String::from_utf8_lossy(&backup.stderr));
    let copy = rusqlite::Connection::open(&file).unwrap();
    let integrity: String = copy.query_row("PRAGMA integrity_check", [], |r| r.get(0)).unwrap();
    assert_eq!(integrity, "ok");
    let count: i64 = copy.query_row("SELECT count(*) FROM mailboxes", [], |r| r.get(0)).unwrap();
    assert_eq!(count, 6, "the five and the role mailbox");
    let (sealed, public): (Vec<u8>, String) = copy
        .query_row("SELECT private_key_enc, public_key FROM dkim_keys", [], |r| Ok((r.get(0)?, r.get(1)?)))
        .unwrap();
    // Sealed: the stored bytes are no key, and the master key opens them to the published one.
    use aws_lc_rs::signature::{Ed25519KeyPair, KeyPair as _};
    assert!(Ed25519KeyPair::from_pkcs8(&sealed).is_err(), "the stored DKIM key is not a plain key");
    let master = inboxgrove::crypto::MasterKey::load(&appliance.data_dir(), None, false).expect("the master key");
    let der = master.open(inboxgrove::domains::DKIM_SEAL_CONTEXT, &sealed).expect("the master key opens it");
    let opened = Ed25519KeyPair::from_pkcs8(&der).expect("a PKCS#8 Ed25519 key");
    use base64::Engine as _;
    let published = base64::engine::general_purpose::STANDARD.encode(opened.public_key().as_ref());
    assert_eq!(published, public, "the key DNS publishes");
    assert!(!sealed.windows(32).any(|w| der.windows(32).any(|d| d == w)), "nothing of the key shows through");
    assert!(!appliance.cli(&["backup", file.to_str().unwrap()], None).status.success(), "never overwrites");

    // A wrong master key is refused at start.
    let data = appliance.data_dir();
    let status = appliance.stop();
    assert!(status.success(), "SIGTERM shuts down cleanly: {status:?}");
    let key = "11".repeat(32);
    let wrong = common::run_to_exit(
        &["serve", "--data", data.to_str().unwrap()],
        &[("INBOXGROVE_HTTP__LISTEN", "127.0.0.1:0"), ("INBOXGROVE_MASTER_KEY", &key)],
    );
    assert!(!wrong.status.success());
    assert!(
        String::from_utf8_lossy(&wrong.stderr).contains("master key does not match"),
        "{}",
        String::from_utf8_lossy(&wrong.stderr)
    );
}

#[tokio::test]
async fn admin_password_reset_ends_sessions_and_json_logs() {
    let mut appliance = Appliance::start_with(tempfile::tempdir().unwrap(), &[("INBOXGROVE_LOG__FORMAT", "json")]);
    let admin = appliance.setup_admin(ADMIN).await;
    assert!(admin.get("/workspaces").await.url.ends_with("/workspaces"));

    let missing =
        appliance.cli(&["admin", "reset-password", "--email", "nobody@acme.test"], Some("another long password\n"));
    assert!(!missing.status.success());
    assert!(String::from_utf8_lossy(&missing.stderr).contains("No user with the email nobody@acme.test"));
    let short = appliance.cli(&["admin", "reset-password", "--email", ADMIN], Some("short\n"));
    assert!(!short.status.success());
    let reset = appliance.cli(&["admin", "reset-password", "--email", ADMIN], Some("another long password\n"));
    assert!(reset.status.success(), "{}", String::from_utf8_lossy(&reset.stderr));

    assert!(admin.get("/workspaces").await.url.ends_with("/login"), "sessions end on reset");
    let login = admin.get("/login").await;
    let old = admin.post_form("/login", &login.body, &[("email", ADMIN), ("password", PASSWORD)]).await;
    assert_eq!(old.status, 401);
    let new = admin.post_form("/login", &login.body, &[("email", ADMIN), ("password", "another long password")]).await;
    assert_eq!(new.status, 200);

    // Logs are JSON lines when configured (the shutdown is logged).
    assert!(appliance.stop().success());
    let mut json_lines = 0;
    while let Ok(line) = appliance.output.recv_timeout(std::time::Duration::from_secs(5)) {
        if line.starts_with('{') {
            let value: serde_json::Value = serde_json::from_str(&line).expect("a JSON log line");
            assert!(value.get("level").is_some() && value.get("timestamp").is_some());
            json_lines += 1;
        }
    }
    assert!(json_lines > 0, "at least one JSON log line");
}

#[tokio::test]
async fn the_mailbox_list_searches_sorts_filters_and_pages() {
    let appliance = Appliance::start();
    let admin = appliance.setup_admin(ADMIN).await;
    let ws = workspace_of(&admin.get("/").await.url);
    let one = add_domain(&admin, ws, "grove-one.test").await;
    let two = add_domain(&admin, ws, "grove-two.test").await;
    assert_eq!(create_mailboxes(&admin, &one.url, "60").await.status, 200);
    assert_eq!(create_mailboxes(&admin, &two.url, "3").await.status, 200);
    let url = format!("/w/{ws}/mailboxes");
    let addresses = |page: &common::Page| select_text(&page.body, "#mailboxes tbody td:nth-child(2)");

    // 65 mailboxes (with the two role mailboxes): 50 on the first page, by address, and 15 on the second.
    let first = admin.get(&url).await;
    assert_eq!(select_text(&first.body, "#pager-summary"), ["1–50 of 65"]);
    let shown = addresses(&first);
    assert_eq!(shown.len(), 50);
    let mut sorted = shown.clone();
    sorted.sort();
    assert_eq!(shown, sorted, "sorted by address");
    let next = select_attr(&first.body, "#pager-next", "href").remove(0);
    let second = admin.get(&format!("{url}{next}")).await;
    assert_eq!(select_text(&second.body, "#pager-summary"), ["51–65 of 65"]);
    assert_eq!(addresses(&second).len(), 15);
    assert!(addresses(&second).iter().all(|a| !shown.contains(a)), "no row on both pages");
    assert!(select_attr(&second.body, "#pager-next", "href").is_empty(), "the last page");

    // The address header sorts the other way round.
    let header = select_attr(&first.body, "th a[data-sort=address]", "href").remove(0);
    let descending = admin.get(&format!("{url}{header}")).await;
    assert_eq!(select_attr(&descending.body, "th[aria-sort=descending] a", "data-sort"), ["address"]);
    let mut expected = addresses(&descending);
    expected.sort_by(|a, b| b.cmp(a));
    assert_eq!(addresses(&descending), expected, "sorted by address, descending");
    assert!(addresses(&descending)[0] > shown[49], "the last addresses come first");

    // Filter by domain, by status, and search in address and name.
    let domain_two = two.url.rsplit('/').next().unwrap();
    let filtered = admin.get(&format!("{url}?domain={domain_two}")).await;
    assert_eq!(addresses(&filtered).len(), 4, "three and postmaster@");
    assert!(addresses(&filtered).iter().all(|a| a.ends_with("@grove-two.test")));
    assert!(addresses(&filtered).contains(&"postmaster@grove-two.test".to_string()));
    let target = shown[7].clone();
    let out = appliance.cli(&["mailbox", "set", &target, "--status", "paused", "--display-name", "Zed Quigley"], None);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(addresses(&admin.get(&format!("{url}?status=paused")).await), [target.as_str()]);
    assert_eq!(addresses(&admin.get(&format!("{url}?q=zed+QUIG")).await), [target.as_str()], "by name, any case");
    let local = target.split('@').next().unwrap();
    assert_eq!(addresses(&admin.get(&format!("{url}?q={local}%40grove-one")).await), [target.as_str()], "by address");
    let none = admin.get(&format!("{url}?q=nobody-at-all")).await;
    assert_eq!(select_text(&none.body, "#pager-summary"), ["None"]);
    assert!(select_text(&none.body, "#mailboxes tbody td").join(" ").contains("No mailboxes match"));
    // Hostile or odd parameters fall back to the defaults.
    let odd = admin.get(&format!("{url}?sort=address%3BDROP+TABLE+mailboxes&page=999&status=bogus")).await;
    assert_eq!(odd.status, 200);
    assert_eq!(select_text(&odd.body, "#pager-summary"), ["51–65 of 65"], "past the end is the last page");

    // Export selected with nothing ticked says so instead of exporting everything.
    let refused = admin.post_form(&format!("{url}/export"), &first.body, &[("format", "instantly")]).await;
    assert_eq!(refused.status, 422);
    assert!(select_text(&refused.body, "#mailbox-error")[0].contains("Select the mailboxes to export"));
    assert!(!refused.content_type.starts_with("text/csv"));
}

/// Creates an invite link on the members page of `ws`; returns the page it answered with.
async fn invite(browser: &Browser, ws: i64, email: &str, role: &str) -> common::Page {
    let members = browser.get(&format!("/w/{ws}/members")).await;
    browser.post_form(&format!("/w/{ws}/members"), &members.body, &[("email", email), ("role", role)]).await
}

/// The invite link shown on the page an invite answered with.
fn invite_link(page: &common::Page) -> String {
    select_text(&page.body, "#invite-link").pop().unwrap_or_else(|| panic!("no invite link shown:\n{}", page.body))
}

/// Accepts an invite link in a new browser, choosing a password for the new account.
async fn accept_invite(appliance: &Appliance, link: &str) -> Browser {
    let browser = appliance.browser();
    let form = browser.get(link).await;
    assert_eq!(form.status, 200, "{}", form.body);
    let joined = browser.post_form(link, &form.body, &[("password", "a new member password")]).await;
    assert_eq!(joined.status, 200, "{}", joined.body);
    assert!(joined.url.contains("/w/"), "accepting lands in the workspace, got {}", joined.url);
    browser
}

/// Posts one of the members page's per-member forms (change role, remove) as `browser`.
async fn manage_member(browser: &Browser, ws: i64, what: &str, fields: &[(&str, &str)]) -> common::Page {
    let members = browser.get(&format!("/w/{ws}/members")).await;
    browser.post_form(&format!("/w/{ws}/members/{what}"), &members.body, fields).await
}

/// The (target, detail) of the audit entries of `ws` with exactly the action `action`.
async fn audit_entries(browser: &Browser, ws: i64, action: &str) -> Vec<(String, String)> {
    let audit = browser.get(&format!("/w/{ws}/audit?action={action}")).await;
    assert_eq!(audit.status, 200, "{}", audit.body);
    let doc = scraper::Html::parse_document(&audit.body);
    let rows = scraper::Selector::parse("tbody tr").expect("selector");
    let cells = scraper::Selector::parse("td").expect("selector");
    doc.select(&rows)
        .map(|row| row.select(&cells).map(|c| c.text().collect::<String>().trim().to_string()).collect::<Vec<_>>())
        .filter(|cells| cells.len() == 5 && cells[2] == action)
        .map(|cells| (cells[3].clone(), cells[4].clone()))
        .collect()
}

/// The role the members page shows for `email`.
fn role_shown(page: &common::Page, email: &str) -> Option<String> {
    let emails = select_text(&page.body, "#members td.email");
    let roles = select_text(&page.body, "#members td.role");
    emails.iter().position(|e| e == email).map(|index| roles[index].clone())
}

#[tokio::test]
async fn an_invite_is_listed_until_revoked_and_its_link_then_dies() {
    let appliance = Appliance::start();
    let owner = appliance.setup_admin(ADMIN).await;
    let ws = workspace_of(&owner.get("/").await.url);

    let invited = invite(&owner, ws, "gone@acme.test", "member").await;
    assert_eq!(invited.status, 200, "{}", invited.body);
    let link = invite_link(&invited);
    assert_eq!(select_text(&invited.body, "#invites td.email"), ["gone@acme.test"], "listed as pending");
    assert_eq!(select_text(&invited.body, "#invites td.role"), ["member"]);

    let revoke = select_attr(&invited.body, "form.revoke-invite", "action").remove(0);
    let revoked = owner.post_form(&revoke, &invited.body, &[]).await;
    assert_eq!(revoked.status, 200, "{}", revoked.body);
    assert_eq!(select_text(&revoked.body, ".notice"), ["The invite for gone@acme.test was revoked."]);
    assert!(select_text(&revoked.body, "#invites td.email").is_empty(), "no longer pending");

    let dead = appliance.browser().get(&link).await;
    assert_eq!(dead.status, 404);
    assert_eq!(select_text(&dead.body, ".dead-link h1"), ["This invite link is no longer valid"]);
    assert!(select_text(&dead.body, ".dead-link [role=alert]")[0].contains("It may have been revoked"));
    assert_eq!(select_attr(&dead.body, ".dead-link a.sign-in", "href"), ["/login"]);
    let late = appliance.browser();
    let login = late.get("/login").await;
    let refused = late.post_form(&link, &login.body, &[("password", "a new member password")]).await;
    assert_eq!(refused.status, 404, "a revoked link cannot be accepted either");

    assert_eq!(
        audit_entries(&owner, ws, "member.invite_revoke").await,
        [("gone@acme.test".to_string(), "member".to_string())]
    );
    // Revoking it again finds nothing.
    assert_eq!(owner.post_form(&revoke, &invited.body, &[]).await.status, 404);
}

#[tokio::test]
async fn members_change_role_and_are_removed_and_the_last_owner_stays() {
    let appliance = Appliance::start();
    let owner = appliance.setup_admin(ADMIN).await;
    let ws = workspace_of(&owner.get("/").await.url);
    let second = accept_invite(&appliance, &invite_link(&invite(&owner, ws, "second@acme.test", "member").await)).await;
    assert_eq!(second.get(&format!("/w/{ws}/domains")).await.status, 200);

    // The owner makes the member an admin.
    let changed = manage_member(&owner, ws, "role", &[("email", "second@acme.test"), ("role", "admin")]).await;
    assert_eq!(changed.status, 200, "{}", changed.body);
    assert_eq!(select_text(&changed.body, ".notice"), ["second@acme.test is now admin."]);
    assert_eq!(role_shown(&changed, "second@acme.test").as_deref(), Some("admin"));
    assert_eq!(
        audit_entries(&owner, ws, "member.role_change").await,
        [("second@acme.test".to_string(), "member → admin".to_string())]
    );

    // The last owner can be neither demoted nor removed; the page says why.
    let message = format!("{ADMIN} is the last owner; make someone else owner first.");
    let demoted = manage_member(&owner, ws, "role", &[("email", ADMIN), ("role", "admin")]).await;
    assert_eq!(demoted.status, 422, "{}", demoted.body);
    assert_eq!(select_text(&demoted.body, ".error"), [message.as_str()]);
    assert_eq!(role_shown(&demoted, ADMIN).as_deref(), Some("owner"), "the members page, re-rendered");
    let removed = manage_member(&owner, ws, "remove", &[("email", ADMIN)]).await;
    assert_eq!(removed.status, 422, "{}", removed.body);
    assert_eq!(select_text(&removed.body, ".error"), [message.as_str()]);
    assert_eq!(role_shown(&removed, ADMIN).as_deref(), Some("owner"));

    // The owner removes the admin, who loses access at once.
    let removed = manage_member(&owner, ws, "remove", &[("email", "second@acme.test")]).await;
    assert_eq!(removed.status, 200, "{}", removed.body);
    assert_eq!(select_text(&removed.body, ".notice"), ["second@acme.test is no longer a member."]);
    assert_eq!(role_shown(&removed, "second@acme.test"), None);
    assert_eq!(
        audit_entries(&owner, ws, "member.remove").await,
        [("second@acme.test".to_string(), "admin".to_string())]
    );
    for url in [format!("/w/{ws}/domains"), format!("/w/{ws}/members")] {
        assert_eq!(second.get(&url).await.status, 404, "{url} after removal");
    }
    let page = second.get("/workspaces").await;
    let gone = second.post_form(&format!("/w/{ws}/members/remove"), &page.body, &[("email", ADMIN)]).await;
    assert_eq!(gone.status, 404, "a removed member cannot manage either");
}

#[tokio::test]
async fn an_admin_cannot_grant_ownership_and_a_viewer_or_member_cannot_manage() {
    let appliance = Appliance::start();
    let owner = appliance.setup_admin(ADMIN).await;
    let ws = workspace_of(&owner.get("/").await.url);
    let admin = accept_invite(&appliance, &invite_link(&invite(&owner, ws, "admin@acme.test", "admin").await)).await;
    let viewer = accept_invite(&appliance, &invite_link(&invite(&owner, ws, "viewer@acme.test", "viewer").await)).await;
    let member = accept_invite(&appliance, &invite_link(&invite(&owner, ws, "member@acme.test", "member").await)).await;

    // An admin is offered no owner role, and forcing it is refused.
    let page = admin.get(&format!("/w/{ws}/members")).await;
    let offered = select_attr(&page.body, "form.change-role option", "value");
    assert!(!offered.is_empty() && !offered.contains(&"owner".to_string()), "{offered:?}");
    let forced = manage_member(&admin, ws, "role", &[("email", "viewer@acme.test"), ("role", "owner")]).await;
    assert_eq!(forced.status, 403, "{}", forced.body);
    assert!(select_text(&forced.body, ".error")[0].contains("Your role in this workspace does not allow this"));
    assert_eq!(invite(&admin, ws, "boss@acme.test", "owner").await.status, 403);
    let demote_owner = manage_member(&admin, ws, "role", &[("email", ADMIN), ("role", "viewer")]).await;
    assert_eq!(demote_owner.status, 403);
    assert_eq!(manage_member(&admin, ws, "remove", &[("email", ADMIN)]).await.status, 403);
    // What an admin may do: re-role a viewer.
    let promoted = manage_member(&admin, ws, "role", &[("email", "viewer@acme.test"), ("role", "member")]).await;
    assert_eq!(promoted.status, 200, "{}", promoted.body);
    let demoted = manage_member(&admin, ws, "role", &[("email", "viewer@acme.test"), ("role", "viewer")]).await;
    assert_eq!(demoted.status, 200, "{}", demoted.body);
    let owners: Vec<String> = select_text(&owner.get(&format!("/w/{ws}/members")).await.body, "#members td.role")
        .into_iter()
        .filter(|role| role == "owner")
        .collect();
    assert_eq!(owners.len(), 1, "still one owner");

    // Viewers and members see the members page but no forms, and every POST is refused.
    let pending = invite(&owner, ws, "later@acme.test", "viewer").await;
    let revoke = select_attr(&pending.body, "form.revoke-invite", "action").remove(0);
    for (name, browser) in [("viewer", &viewer), ("member", &member)] {
        let page = browser.get(&format!("/w/{ws}/members")).await;
        assert_eq!(page.status, 200, "{name}");
        assert!(select_attr(&page.body, "form[method=post][action*='/members']", "action").is_empty(), "{name}");
        let attempts = [
            manage_member(browser, ws, "role", &[("email", "admin@acme.test"), ("role", "viewer")]).await,
            manage_member(browser, ws, "remove", &[("email", "admin@acme.test")]).await,
            invite(browser, ws, "friend@acme.test", "viewer").await,
            browser.post_form(&revoke, &page.body, &[]).await,
        ];
        for attempt in &attempts {
            assert_eq!(attempt.status, 403, "{name}: {}", attempt.url);
        }
    }
    let page = owner.get(&format!("/w/{ws}/members")).await;
    assert_eq!(role_shown(&page, "admin@acme.test").as_deref(), Some("admin"), "nothing changed");
    assert_eq!(select_text(&page.body, "#invites td.email"), ["later@acme.test"]);
    assert!(audit_entries(&owner, ws, "member.invite").await.iter().all(|(target, _)| target != "friend@acme.test"));
}

#[tokio::test]
async fn dead_links_and_error_pages() {
    let appliance = Appliance::start();
    let setup = appliance.setup_link.clone().expect("a setup link");
    let owner = appliance.setup_admin(ADMIN).await;
    let ws = workspace_of(&owner.get("/").await.url);

    // A used setup link and a used invite link say so, with a way to sign in.
    let used_setup = appliance.browser().get(&setup).await;
    assert_eq!(used_setup.status, 404);
    assert_eq!(select_text(&used_setup.body, ".dead-link h1"), ["This setup link was already used"]);
    assert_eq!(select_attr(&used_setup.body, ".dead-link a.sign-in", "href"), ["/login"]);
    let link = invite_link(&invite(&owner, ws, "viewer@acme.test", "viewer").await);
    let viewer = accept_invite(&appliance, &link).await;
    let used_invite = appliance.browser().get(&link).await;
    assert_eq!(used_invite.status, 404);
    assert_eq!(select_text(&used_invite.body, ".dead-link h1"), ["This invite link was already used"]);
    assert!(select_text(&used_invite.body, ".dead-link [role=alert]")[0].contains("sign in with that account"));
    assert_eq!(select_attr(&used_invite.body, ".dead-link a.sign-in", "href"), ["/login"]);

    // Signed in, a 404 and a 403 inside a workspace keep the app's navigation.
    let sections = [format!("/w/{ws}/domains"), format!("/w/{ws}/mailboxes"), format!("/w/{ws}/queue")];
    let missing = owner.get(&format!("/w/{ws}/mailboxes/999999")).await;
    assert_eq!(missing.status, 404);
    assert_eq!(select_text(&missing.body, ".error-page h1"), ["Not found"]);
    let links = select_attr(&missing.body, "nav.sections a", "href");
    assert!(sections.iter().all(|s| links.contains(s)), "{links:?}");
    assert!(links.contains(&format!("/w/{ws}/audit")), "an owner's navigation: {links:?}");
    assert_eq!(select_text(&missing.body, ".who .user"), [ADMIN]);
    let denied = viewer.get(&format!("/w/{ws}/audit")).await;
    assert_eq!(denied.status, 403);
    assert_eq!(select_text(&denied.body, ".error-page h1"), ["Not allowed"]);
    let links = select_attr(&denied.body, "nav.sections a", "href");
    assert!(sections.iter().all(|s| links.contains(s)), "{links:?}");
    assert!(!links.contains(&format!("/w/{ws}/audit")), "a viewer's navigation has no audit log: {links:?}");
    assert_eq!(select_text(&denied.body, ".who .user"), ["viewer@acme.test"]);

    // Signed out, a 404 is the plain page.
    let stranger = appliance.browser().get("/no-such-page").await;
    assert_eq!(stranger.status, 404);
    assert_eq!(select_text(&stranger.body, ".error-page h1"), ["Not found"]);
    assert!(select_attr(&stranger.body, "nav.sections a", "href").is_empty(), "{}", stranger.body);
    assert!(select_text(&stranger.body, ".who").is_empty(), "no user menu");
}

/// The id of the mailbox at `address`, and whether it is a role mailbox, from the database.
fn mailbox_row(appliance: &Appliance, address: &str) -> Option<(i64, bool)> {
    let conn = rusqlite::Connection::open(appliance.data_dir().join("inboxgrove.db")).expect("open the database");
    conn.query_row("SELECT id, role FROM mailboxes WHERE address = ?1", [address], |r| Ok((r.get(0)?, r.get(1)?))).ok()
}

/// Where the alias page says each role address of the domain at `domain_url` is delivered.
async fn role_routes(browser: &Browser, domain_url: &str) -> Vec<String> {
    let page = browser.get(&format!("{domain_url}/aliases")).await;
    select_text(&page.body, "#roles tbody tr")
}

#[tokio::test]
async fn role_mail_goes_to_a_dedicated_postmaster_mailbox_or_a_chosen_one() {
    let appliance = Appliance::start();
    let admin = appliance.setup_admin(ADMIN).await;
    let ws = workspace_of(&admin.get("/").await.url);

    // The default: a dedicated postmaster@ mailbox, marked as role mail, gets every role address.
    let form = admin.get(&format!("/w/{ws}/domains")).await;
    assert_eq!(select_attr(&form.body, "#role-mailbox option[selected]", "value"), ["dedicated"]);
    let first = add_domain(&admin, ws, "roles-one.test").await;
    assert_eq!(first.status, 200, "{}", first.body);
    let (postmaster, role) = mailbox_row(&appliance, "postmaster@roles-one.test").expect("postmaster@ created");
    assert!(role, "marked as a role mailbox");
    let current = select_text(&first.body, "#role-mailbox-current").join(" ");
    assert!(current.contains("postmaster@roles-one.test"), "{current}");
    let routes = role_routes(&admin, &first.url).await;
    assert_eq!(routes.len(), 3, "{routes:?}");
    for (route, role) in routes.iter().zip(["postmaster", "abuse", "dmarc-reports"]) {
        assert!(route.contains(&format!("{role}@roles-one.test")), "{routes:?}");
        assert!(route.ends_with("postmaster@roles-one.test"), "{role}@ reaches the role mailbox: {routes:?}");
    }

    // Bulk creation neither makes nor counts it; the list tags it; no export holds it.
    let issued = create_mailboxes(&admin, &first.url, "3").await;
    let cells = select_text(&issued.body, "#credentials tbody td");
    let addresses: Vec<String> = cells.chunks(2).map(|c| c[0].clone()).collect();
    assert_eq!(addresses.len(), 3, "{cells:?}");
    assert!(addresses.iter().all(|a| !a.starts_with("postmaster@")), "{addresses:?}");
    let domain_id = first.url.rsplit('/').next().unwrap().to_string();
    let list = admin.get(&format!("/w/{ws}/mailboxes?domain={domain_id}")).await;
    let rows = select_text(&list.body, "#mailboxes tbody tr");
    assert_eq!(rows.len(), 4, "{rows:?}");
    let tagged: Vec<&String> = rows.iter().filter(|r| r.contains("Role mail")).collect();
    assert!(tagged.len() == 1 && tagged[0].contains("postmaster@roles-one.test"), "{rows:?}");
    for format in ["instantly", "smartlead"] {
        let export = admin.get(&format!("/w/{ws}/mailboxes/export?format={format}&domain={domain_id}")).await;
        assert_eq!(export.status, 200, "{}", export.body);
        let (_, rows) = parse_csv(&export.body);
        assert_eq!(rows.len(), 3, "{format}: only the three that send");
        assert!(!export.body.contains("postmaster@"), "{format}: {}", export.body);
        let all = admin.get(&format!("/w/{ws}/mailboxes/export?format={format}")).await;
        assert!(!all.body.contains("postmaster@") && parse_csv(&all.body).1.len() == 3, "{}", all.body);
    }
    let postmaster_id = postmaster.to_string();
    let fields = [("id", postmaster_id.as_str()), ("format", "instantly")];
    let refused = admin.post_form(&format!("/w/{ws}/mailboxes/export"), &list.body, &fields).await;
    assert_eq!(refused.status, 422);
    assert!(!refused.content_type.starts_with("text/csv"));
    let error = select_text(&refused.body, "#mailbox-error").join(" ");
    assert!(error.contains("Role mailboxes") && error.contains("never exported"), "{error}");

    // An existing mailbox chosen when adding: no postmaster@ is made, role mail goes there.
    let chosen = addresses[0].clone();
    let (chosen_id, _) = mailbox_row(&appliance, &chosen).expect("the chosen mailbox");
    let form = admin.get(&format!("/w/{ws}/domains")).await;
    let chosen_value = chosen_id.to_string();
    let fields = [("name", "roles-two.test"), ("dkim", "rsa"), ("role_mailbox", chosen_value.as_str())];
    let second = admin.post_form(&format!("/w/{ws}/domains"), &form.body, &fields).await;
    assert_eq!(second.status, 200, "{}", second.body);
    assert!(mailbox_row(&appliance, "postmaster@roles-two.test").is_none(), "no postmaster@ made");
    assert!(select_text(&second.body, "#role-mailbox-current").join(" ").contains(&chosen));
    let routes = role_routes(&admin, &second.url).await;
    assert!(routes.len() == 3 && routes.iter().all(|r| r.ends_with(&chosen)), "{routes:?}");

    // Another workspace's mailbox is no choice: 422 with the form kept, nothing added or changed.
    let workspaces = admin.get("/workspaces").await;
    let other = workspace_of(&admin.post_form("/workspaces", &workspaces.body, &[("name", "Elsewhere")]).await.url);
    let foreign_domain = add_domain(&admin, other, "roles-elsewhere.test").await;
    let (foreign, _) = mailbox_row(&appliance, "postmaster@roles-elsewhere.test").expect("its own postmaster@");
    assert!(foreign_domain.url.contains(&format!("/w/{other}/")));
    let foreign = foreign.to_string();
    let fields = [("name", "roles-three.test"), ("dkim", "rsa"), ("role_mailbox", foreign.as_str())];
    let bad_add = admin.post_form(&format!("/w/{ws}/domains"), &form.body, &fields).await;
    assert_eq!(bad_add.status, 422);
    assert!(bad_add.body.contains("Choose a mailbox of this workspace"), "{}", bad_add.body);
    assert_eq!(select_attr(&bad_add.body, "#domain-name", "value"), ["roles-three.test"]);
    assert!(!admin.get(&format!("/w/{ws}/domains")).await.body.contains("roles-three.test"), "not added");
    let action = select_attr(&second.body, "form[action$='/role-mailbox']", "action").remove(0);
    let bad_set = admin.post_form(&action, &second.body, &[("role_mailbox", foreign.as_str())]).await;
    assert_eq!(bad_set.status, 422);
    let error = select_text(&bad_set.body, "#role-mailbox-error").join(" ");
    assert!(error.contains("Choose a mailbox of this workspace"), "{error}");
    assert!(select_text(&bad_set.body, "#role-mailbox-current").join(" ").contains(&chosen), "unchanged");

    // Changed on the domain page: to the first domain's postmaster@, then to a new dedicated one.
    let set = admin.post_form(&action, &second.body, &[("role_mailbox", postmaster_id.as_str())]).await;
    assert_eq!(set.status, 200, "{}", set.body);
    assert!(select_text(&set.body, "#role-mailbox-current").join(" ").contains("postmaster@roles-one.test"));
    assert_eq!(select_attr(&set.body, "#role-mailbox option[selected]", "value"), [postmaster_id.as_str()]);
    let dedicated = admin.post_form(&action, &set.body, &[("role_mailbox", "dedicated")]).await;
    assert_eq!(dedicated.status, 200, "{}", dedicated.body);
    assert_eq!(mailbox_row(&appliance, "postmaster@roles-two.test").map(|(_, role)| role), Some(true));
    let routes = role_routes(&admin, &second.url).await;
    assert!(routes.iter().all(|r| r.ends_with("postmaster@roles-two.test")), "{routes:?}");
    let audit = admin.get(&format!("/w/{ws}/audit?action=domain")).await;
    let text = select_text(&audit.body, "tbody tr").join("\n");
    assert!(text.contains(&format!("role mail to {chosen}")), "chosen when added: {text}");
    assert!(text.contains("domain.role_mailbox") && text.contains("role mail to postmaster@roles-one.test"), "{text}");
    assert!(text.contains("role mail to postmaster@roles-two.test (dedicated)"), "{text}");
}

/// Adds domain `name` with an Ed25519 key (quick to make, for tests that add many).
async fn add_ed25519_domain(browser: &Browser, ws: i64, name: &str) -> common::Page {
    let form = browser.get(&format!("/w/{ws}/domains")).await;
    browser.post_form(&format!("/w/{ws}/domains"), &form.body, &[("name", name), ("dkim", "ed25519")]).await
}

/// Follows the link (a query string) at `css` from `page` on the list at `url`.
async fn follow_link(browser: &Browser, url: &str, page: &common::Page, css: &str) -> common::Page {
    let link = select_attr(&page.body, css, "href");
    assert_eq!(link.len(), 1, "one `{css}` link");
    browser.get(&format!("{url}{}", link[0].replace("&amp;", "&"))).await
}

#[tokio::test]
async fn the_domain_list_and_the_audit_log_search_sort_and_page() {
    let appliance = Appliance::start();
    let admin = appliance.setup_admin(ADMIN).await;
    let ws = workspace_of(&admin.get("/").await.url);
    let mut seven = String::new();
    for n in 0..52 {
        let added = add_ed25519_domain(&admin, ws, &format!("list-{n:02}.test")).await;
        assert_eq!(added.status, 200, "{}", added.body);
        if n == 7 {
            seven = added.url.clone();
        }
    }
    let unicode = add_ed25519_domain(&admin, ws, "bücher-list.test").await;
    assert_eq!(unicode.status, 200, "{}", unicode.body);
    assert_eq!(create_mailboxes(&admin, &seven, "2").await.status, 200);

    // 53 domains: 50 on the first page by name, 3 on the second, none on both.
    let url = format!("/w/{ws}/domains");
    let names = |page: &common::Page| select_text(&page.body, "#domains tbody td:first-child a");
    let first = admin.get(&url).await;
    assert_eq!(select_text(&first.body, "h1 small"), ["(53)"]);
    assert_eq!(select_text(&first.body, "#pager-summary"), ["1–50 of 53"]);
    let shown = names(&first);
    assert_eq!(shown.len(), 50);
    assert_eq!(shown[0], "list-00.test");
    let second = follow_link(&admin, &url, &first, "#pager-next").await;
    assert_eq!(select_text(&second.body, "#pager-summary"), ["51–53 of 53"]);
    assert_eq!(names(&second), ["list-50.test", "list-51.test", "bücher-list.test"], "by name as stored: xn--...");
    assert!(names(&second).iter().all(|n| !shown.contains(n)), "no row on both pages");
    assert!(select_attr(&second.body, "#pager-next", "href").is_empty(), "the last page");

    // The name header sorts the other way round; the mailbox count sorts too.
    let descending = follow_link(&admin, &url, &first, "th a[data-sort=name]").await;
    assert_eq!(select_attr(&descending.body, "th[aria-sort=descending] a", "data-sort"), ["name"]);
    let mut expected = vec!["bücher-list.test".to_string()];
    expected.extend((3..52).rev().map(|n| format!("list-{n:02}.test")));
    assert_eq!(names(&descending), expected, "names descending (xn--bcher-list-... last of all)");
    let kept = |name: &str| select_attr(&descending.body, &format!("#domain-filters input[name={name}]"), "value");
    assert_eq!(
        (kept("sort"), kept("dir")),
        (vec!["name".to_string()], vec!["desc".to_string()]),
        "a search keeps the sort"
    );
    let by_count = follow_link(&admin, &url, &first, "th a[data-sort=mailboxes]").await;
    let fewest = names(&by_count);
    assert_ne!(fewest[0], "list-07.test", "ascending: the domain with mailboxes is not first");
    let most = follow_link(&admin, &url, &by_count, "th a[data-sort=mailboxes]").await;
    assert_eq!(names(&most)[0], "list-07.test", "three mailboxes (two and postmaster@) come first");

    // Search: a part of the name, in any case, and Unicode or ASCII form; the pager keeps it.
    let forties = admin.get(&format!("{url}?q=LIST-4")).await;
    assert_eq!(names(&forties), (40..50).map(|n| format!("list-{n}.test")).collect::<Vec<_>>());
    assert_eq!(select_text(&forties.body, "#pager-summary"), ["1–10 of 10"]);
    assert_eq!(select_attr(&forties.body, "#domain-search", "value"), ["LIST-4"]);
    assert_eq!(names(&admin.get(&format!("{url}?q=b%C3%BCcher")).await), ["bücher-list.test"]);
    assert_eq!(names(&admin.get(&format!("{url}?q=xn--bcher")).await), ["bücher-list.test"]);
    let all = admin.get(&format!("{url}?q=list&sort=name&dir=desc")).await;
    let next = select_attr(&all.body, "#pager-next", "href").remove(0);
    assert!(next.contains("q=list") && next.contains("dir=desc") && next.contains("page=2"), "{next}");
    let none = admin.get(&format!("{url}?q=nothing-like-this")).await;
    assert_eq!(select_text(&none.body, "#pager-summary"), ["None"]);
    assert!(select_text(&none.body, "#domains td").join(" ").contains("No domains match"));
    let odd = admin.get(&format!("{url}?sort=name%3B+DROP+TABLE+domains&dir=sideways&page=99")).await;
    assert_eq!(odd.status, 200);
    assert_eq!(select_text(&odd.body, "#pager-summary"), ["51–53 of 53"], "past the end is the last page");
    assert_eq!(names(&odd), names(&second), "an unknown sort is the default one");

    // The audit log: newest first, 50 a page, filtered by action group and by text.
    let audit = format!("/w/{ws}/audit");
    let actions = |page: &common::Page| select_text(&page.body, "#audit tbody td:nth-child(3)");
    let targets = |page: &common::Page| select_text(&page.body, "#audit tbody td:nth-child(4)");
    let log = admin.get(&audit).await;
    let total: i64 = select_text(&log.body, "h1 small")[0].trim_matches(['(', ')']).parse().expect("a count");
    assert!(total >= 54, "53 domains added and the mailboxes created: {total}");
    assert_eq!(select_text(&log.body, "#pager-summary"), [format!("1–50 of {total}")]);
    assert_eq!(actions(&log)[0], "mailbox.create", "the newest first");
    assert_eq!(targets(&log)[1], "xn--bcher-list-9db.test");
    let older = follow_link(&admin, &audit, &log, "#pager-next").await;
    assert_eq!(select_text(&older.body, "#pager-summary"), [format!("51–{total} of {total}")]);
    assert!(targets(&older).contains(&"list-00.test".to_string()), "the oldest on the last page");
    let oldest_first = follow_link(&admin, &audit, &log, "th a[data-sort=when]").await;
    assert_eq!(select_attr(&oldest_first.body, "th[aria-sort=ascending] a", "data-sort"), ["when"]);
    let first_domain = actions(&oldest_first).iter().position(|a| a == "domain.add").expect("a domain");
    assert_eq!(targets(&oldest_first)[first_domain], "list-00.test", "oldest first");
    let by_action = follow_link(&admin, &audit, &log, "th a[data-sort=action]").await;
    let sorted_actions = actions(&by_action);
    let mut expected = sorted_actions.clone();
    expected.sort();
    assert_eq!(sorted_actions, expected, "another column's header sorts from A to Z first");

    let domains_only = admin.get(&format!("{audit}?action=domain")).await;
    assert_eq!(select_text(&domains_only.body, "#pager-summary"), ["1–50 of 53"]);
    assert!(actions(&domains_only).iter().all(|a| a == "domain.add"), "{:?}", actions(&domains_only));
    let next = select_attr(&domains_only.body, "#pager-next", "href").remove(0);
    assert!(next.contains("action=domain") && next.contains("page=2"), "the filter stays in the pager: {next}");
    let searched = admin.get(&format!("{audit}?q=list-07")).await;
    let mut found = actions(&searched);
    found.sort();
    assert_eq!(found, ["domain.add", "mailbox.create"], "{}", searched.body);
    let literal = admin.get(&format!("{audit}?q=list_0")).await;
    assert_eq!(select_text(&literal.body, "#pager-summary"), ["None"], "an underscore is not a wildcard");
    let odd = admin.get(&format!("{audit}?sort=at%29+UNION+SELECT&dir=x&page=0&actor=nobody")).await;
    assert_eq!(odd.status, 200);
    assert_eq!(select_text(&odd.body, "#pager-summary"), ["None"]);
}

#[tokio::test]
async fn the_credentials_page_downloads_for_fifteen_minutes() {
    let appliance = Appliance::start_with(tempfile::tempdir().expect("temp dir"), &[("INBOXGROVE_TEST_CLOCK", "1")]);
    let admin = appliance.setup_admin(ADMIN).await;
    let ws = workspace_of(&admin.get("/").await.url);
    let domain = add_ed25519_domain(&admin, ws, "fifteen.test").await;
    let issued = create_mailboxes(&admin, &domain.url, "2").await;
    assert_eq!(issued.status, 200, "{}", issued.body);
    let batch_action = select_attr(&issued.body, "form[action*='/credentials/']", "action").remove(0);

    let instantly = admin.post_form(&batch_action, &issued.body, &[("format", "instantly")]).await;
    assert!(instantly.content_type.starts_with("text/csv"), "{}", instantly.body);
    appliance.advance_clock(14 * 60);
    let plain = admin.post_form(&batch_action, &issued.body, &[("format", "plain")]).await;
    assert!(plain.content_type.starts_with("text/csv"), "still there after 14 minutes: {}", plain.body);
    assert_eq!(parse_csv(&plain.body).1.len(), 2);
    appliance.advance_clock(2 * 60);
    let late = admin.post_form(&batch_action, &issued.body, &[("format", "smartlead")]).await;
    assert_eq!(late.status, 422, "gone after 16 minutes");
    assert!(late.body.contains("can no longer be downloaded"), "{}", late.body);
}
