//! The one way out and the queue, through the real binary: mail sent with `mta::send` (from this
//! test process, on the appliance's data dir, as the CLI does) is DKIM-signed, lands at once in
//! a local mailbox and queues for a remote one; the running appliance's delivery workers defer
//! it (the smarthost refuses connections); the queue page, `inboxgrove queue list/retry/cancel`,
//! the retry and cancel buttons, roles and workspace walls; and List-Unsubscribe end to end
//! (the setting, the header, the public one-click POST that suppresses the address).

mod common;

use std::time::{Duration, Instant};

use common::{Appliance, Browser, select_attr, select_text};
use inboxgrove::app::App;
use inboxgrove::config::Config;
use inboxgrove::events::Kind;
use inboxgrove::mta::{self, Outgoing, QueueStatus, queue};

const ADMIN: &str = "owner@acme.test";
const DOMAIN: &str = "grove-queue.test";

/// A port nothing listens on (bound, then released).
fn closed_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    listener.local_addr().expect("addr").port()
}

/// Starts the appliance with every listener on a free port and a smarthost that refuses
/// connections, so remote mail is deferred (and then left alone for an hour).
fn start() -> Appliance {
    let smarthost = format!("127.0.0.1:{}", closed_port());
    Appliance::start_with(
        tempfile::tempdir().expect("temp dir"),
        &[
            ("INBOXGROVE_SMTP__SUBMISSION", "127.0.0.1:0"),
            ("INBOXGROVE_SMTP__SUBMISSIONS", "127.0.0.1:0"),
            ("INBOXGROVE_SMTP__INBOUND", "127.0.0.1:0"),
            ("INBOXGROVE_IMAP__LISTEN", "127.0.0.1:0"),
            ("INBOXGROVE_IMAP__LISTEN_TLS", "127.0.0.1:0"),
            ("INBOXGROVE_DELIVERY__SMARTHOST", &smarthost),
            ("INBOXGROVE_DELIVERY__RETRY_SCHEDULE", r#"["1h"]"#),
            ("INBOXGROVE_DELIVERY__TIMEOUT", "5s"),
        ],
    )
}

/// An `App` of this test process on the appliance's data dir (links point at the appliance).
async fn open_app(appliance: &Appliance) -> App {
    let mut config = Config { data_dir: appliance.data_dir(), hostname: "mail.grove.test".into(), ..Config::default() };
    config.http.base_url = appliance.base.clone();
    App::open(config).await.expect("open the data dir")
}

fn workspace_of(url: &str) -> i64 {
    url.split("/w/")
        .nth(1)
        .and_then(|rest| rest.split('/').next())
        .and_then(|id| id.parse().ok())
        .expect("workspace url")
}

fn stdout(output: &std::process::Output) -> String {
    String::from_utf8_lossy(&output.stdout).to_string()
}

fn stderr(output: &std::process::Output) -> String {
    String::from_utf8_lossy(&output.stderr).to_string()
}

/// Creates the domain and two mailboxes with the CLI; returns the mailboxes' addresses.
fn domain_and_mailboxes(appliance: &Appliance) -> (String, String) {
    let added = appliance.cli(&["domain", "add", DOMAIN, "--dkim", "ed25519"], None);
    assert!(added.status.success(), "{}", stderr(&added));
    let created = appliance.cli(&["mailbox", "create", "--domain", DOMAIN, "--count", "2"], None);
    assert!(created.status.success(), "{}", stderr(&created));
    let addresses: Vec<String> = stdout(&created)
        .lines()
        .skip(1)
        .filter_map(|line| line.split(',').next())
        .filter(|email| email.contains('@'))
        .map(str::to_string)
        .collect();
    assert_eq!(addresses.len(), 2, "{}", stdout(&created));
    (addresses[0].clone(), addresses[1].clone())
}

/// Sends a message from `from` (a mailbox of workspace `ws`) through the one way out.
async fn send(app: &App, ws: i64, from: &str, to: &[&str], subject: &str) -> Vec<i64> {
    let lookup = from.to_string();
    let (_, mailbox) =
        app.store.read(move |conn| inboxgrove::mailbox::find_by_address(conn, &lookup)).await.expect("mailbox");
    let raw = format!("From: {from}\r\nTo: {}\r\nSubject: {subject}\r\n\r\nHello there.\r\n", to.join(", "));
    let outgoing = Outgoing {
        workspace_id: ws,
        mailbox_id: Some(mailbox.id),
        mail_from: from.to_string(),
        recipients: to.iter().map(|r| r.to_string()).collect(),
        raw: raw.into_bytes(),
        trace: String::new(),
    };
    mta::send(app, outgoing).await.expect("send")
}

async fn row(app: &App, id: i64) -> queue::QueueRow {
    app.store.read(move |conn| queue::get(conn, None, id)).await.expect("queue row")
}

/// Waits (at most 30 s) until the row satisfies `done`; the scheduler looks at least every 5 s.
async fn wait_for(app: &App, id: i64, what: &str, done: impl Fn(&queue::QueueRow) -> bool) -> queue::QueueRow {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let current = row(app, id).await;
        if done(&current) {
            return current;
        }
        assert!(Instant::now() < deadline, "row {id} never became {what}: {current:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn deferred_after(app: &App, id: i64, attempts: i64) -> queue::QueueRow {
    wait_for(app, id, &format!("deferred after {attempts} attempts"), |r| {
        r.status == QueueStatus::Deferred && r.attempts >= attempts
    })
    .await
}

/// Invites `email` to workspace `ws` with `role`; returns their signed-in browser.
async fn invite(appliance: &Appliance, owner: &Browser, ws: i64, email: &str, role: &str) -> Browser {
    let members = owner.get(&format!("/w/{ws}/members")).await;
    let invited =
        owner.post_form(&format!("/w/{ws}/members"), &members.body, &[("email", email), ("role", role)]).await;
    let link = select_text(&invited.body, "#invite-link").remove(0);
    let browser = appliance.browser();
    let page = browser.get(&link).await;
    let joined = browser.post_form(&link, &page.body, &[("password", "a long enough password")]).await;
    assert_eq!(joined.status, 200, "{}", joined.body);
    browser
}

#[tokio::test]
async fn local_and_remote_routing_the_queue_page_cli_roles_and_walls() {
    let appliance = start();
    let owner = appliance.setup_admin(ADMIN).await;
    let ws = workspace_of(&owner.get("/").await.url);
    let (ann, carl) = domain_and_mailboxes(&appliance);
    let app = open_app(&appliance).await;

    // One message to a local mailbox and a remote address: one queue row, one local copy.
    let ids = send(&app, ws, &ann, &[&carl, "bob@remote.test"], "Quarterly numbers").await;
    assert_eq!(ids.len(), 1, "only the remote recipient is queued");
    let first = ids[0];
    let lookup = carl.clone();
    let inbox = app
        .store
        .read(move |conn| {
            let (_, mailbox) = inboxgrove::mailbox::find_by_address(conn, &lookup)?;
            Ok::<_, inboxgrove::error::Error>(inboxgrove::mailstore::list(conn, mailbox.id, "INBOX")?)
        })
        .await
        .expect("inbox");
    assert_eq!(inbox.len(), 1);
    let local = String::from_utf8_lossy(&inbox[0].raw).to_string();
    // Local delivery puts its trace fields on top of the signed message, as inbound mail gets.
    let lines: Vec<&str> = local.split("\r\n").collect();
    assert_eq!(lines[0], format!("Return-Path: <{ann}>"), "{local}");
    assert_eq!(lines[1], "Received: by mail.grove.test (InboxGrove) for local delivery;", "{local}");
    assert!(lines[2].starts_with('\t'), "the Received date: {local}");
    assert!(lines[3].starts_with("DKIM-Signature: v=1; a=ed25519-sha256;"), "{local}");
    assert!(local.contains(&format!("d={DOMAIN};")), "{local}");
    assert!(local.contains("Message-ID: <") && local.contains("\r\nDate: "), "{local}");

    // The smarthost refuses: the row is deferred for an hour.
    let deferred = deferred_after(&app, first, 1).await;
    assert_eq!(deferred.recipient, "bob@remote.test");
    assert!(deferred.next_attempt_at > app.clock.unix() + 1800);

    // The queue page: counts, the groups, the row; the detail page with its events.
    let page = owner.get(&format!("/w/{ws}/queue")).await;
    assert_eq!(page.status, 200, "{}", page.body);
    assert_eq!(select_text(&page.body, "#status-counts td[data-status=deferred]"), ["1"]);
    assert_eq!(
        select_text(&page.body, "#status-counts td[data-status=delivered]"),
        ["1 (1 local)"],
        "the local delivery is counted"
    );
    assert!(select_text(&page.body, "#mailbox-counts td").contains(&ann));
    assert!(select_text(&page.body, "#domain-counts td").contains(&"remote.test".to_string()));
    let rows = select_text(&page.body, "#queue-rows td");
    assert!(rows.contains(&"bob@remote.test".to_string()) && rows.contains(&"Quarterly numbers".to_string()));
    assert!(page.body.contains(&format!("href=\"/w/{ws}/queue\" aria-current=\"page\">Queue")), "nav link");
    let filtered = owner.get(&format!("/w/{ws}/queue?status=delivered")).await;
    assert!(!select_text(&filtered.body, "#queue-rows td").contains(&"bob@remote.test".to_string()));
    let bogus = owner.get(&format!("/w/{ws}/queue?status=bogus")).await;
    assert_eq!(bogus.status, 422);
    assert_eq!(select_text(&bogus.body, ".error-page h1").len(), 1, "the error page: {}", bogus.body);
    let sections = select_attr(&bogus.body, "nav.sections a", "href");
    assert!(sections.contains(&format!("/w/{ws}/queue")), "a 422 keeps the navigation: {sections:?}");
    let detail = owner.get(&format!("/w/{ws}/queue/{first}")).await;
    assert_eq!(detail.status, 200);
    let kinds = select_text(&detail.body, "#events td");
    assert!(kinds.contains(&"queued".to_string()) && kinds.contains(&"deferred".to_string()), "{kinds:?}");

    // "Retry now" in the UI wakes the workers: another attempt at once.
    let retried = owner.post_form(&format!("/w/{ws}/queue/{first}/retry"), &detail.body, &[]).await;
    assert_eq!(retried.status, 200, "{}", retried.body);
    assert!(retried.url.ends_with(&format!("/w/{ws}/queue/{first}")), "{}", retried.url);
    assert!(select_text(&retried.body, "#events td").iter().any(|t| t.starts_with("retry requested by owner")));
    deferred_after(&app, first, 2).await;

    // The CLI: the table, retry (picked up by the running appliance), cancel, errors.
    let listed = appliance.cli(&["queue", "list"], None);
    assert!(listed.status.success(), "{}", stderr(&listed));
    let table = stdout(&listed);
    let header = table.lines().next().expect("header");
    for column in ["ID", "STATUS", "ATTEMPTS", "RECIPIENT", "FROM", "NEXT ATTEMPT", "LAST REPLY"] {
        assert!(header.contains(column), "{table}");
    }
    let line = table.lines().find(|l| l.starts_with(&format!("{first} "))).expect("the row is listed");
    assert!(line.contains("deferred") && line.contains("bob@remote.test") && line.contains(&ann), "{line}");
    assert!(!stdout(&appliance.cli(&["queue", "list", "--status", "cancelled"], None)).contains("bob@remote.test"));
    assert!(!appliance.cli(&["queue", "list", "--status", "nonsense"], None).status.success());
    let retry = appliance.cli(&["queue", "retry", &first.to_string()], None);
    assert!(retry.status.success(), "{}", stderr(&retry));
    deferred_after(&app, first, 3).await;

    let second = send(&app, ws, &ann, &["dora@remote.test"], "Second").await[0];
    deferred_after(&app, second, 1).await;
    let cancelled = appliance.cli(&["queue", "cancel", &second.to_string()], None);
    assert!(cancelled.status.success(), "{}", stderr(&cancelled));
    assert_eq!(row(&app, second).await.status, QueueStatus::Cancelled);
    let again = appliance.cli(&["queue", "cancel", &second.to_string()], None);
    assert!(!again.status.success() && stderr(&again).contains("is cancelled"), "{}", stderr(&again));
    let missing = appliance.cli(&["queue", "retry", "999999"], None);
    assert!(!missing.status.success() && stderr(&missing).contains("No queue row 999999"), "{}", stderr(&missing));
    let cancelled_list = stdout(&appliance.cli(&["queue", "list", "--status", "cancelled"], None));
    assert!(cancelled_list.contains("dora@remote.test"), "{cancelled_list}");

    // A viewer sees the page but has no buttons, and a forged POST is refused.
    let viewer = invite(&appliance, &owner, ws, "viewer@acme.test", "viewer").await;
    let seen = viewer.get(&format!("/w/{ws}/queue/{first}")).await;
    assert_eq!(seen.status, 200);
    assert!(select_attr(&seen.body, "#retry", "id").is_empty() && select_attr(&seen.body, "#cancel", "id").is_empty());
    assert_eq!(viewer.post_form(&format!("/w/{ws}/queue/{first}/cancel"), &seen.body, &[]).await.status, 403);
    assert!(select_attr(&viewer.get(&format!("/w/{ws}/queue")).await.body, "#mail-settings", "id").is_empty());

    // A member cancels in the UI; a second cancel explains why it cannot.
    let member = invite(&appliance, &owner, ws, "member@acme.test", "member").await;
    let third = send(&app, ws, &ann, &["erin@remote.test"], "Third").await[0];
    deferred_after(&app, third, 1).await;
    let page = member.get(&format!("/w/{ws}/queue/{third}")).await;
    let done = member.post_form(&format!("/w/{ws}/queue/{third}/cancel"), &page.body, &[]).await;
    assert_eq!(done.status, 200);
    assert_eq!(select_text(&done.body, "#row-status"), ["cancelled"]);
    let twice = member.post_form(&format!("/w/{ws}/queue/{third}/cancel"), &page.body, &[]).await;
    assert_eq!(twice.status, 409);
    assert!(twice.body.contains("only queued or deferred mail can be cancelled"), "{}", twice.body);

    // Workspaces are walls: a stranger with a workspace of their own sees none of it.
    let workspaces = owner.get("/workspaces").await;
    let ws2 = workspace_of(&owner.post_form("/workspaces", &workspaces.body, &[("name", "Other Agency")]).await.url);
    let stranger = invite(&appliance, &owner, ws2, "stranger@other.test", "owner").await;
    for url in [format!("/w/{ws2}/queue/{first}"), format!("/w/{ws}/queue/{first}"), format!("/w/{ws}/queue")] {
        let page = stranger.get(&url).await;
        assert_eq!(page.status, 404, "{url}");
        assert!(!page.body.contains("bob@remote.test"), "{url} leaks");
    }
    let own = stranger.get(&format!("/w/{ws2}/queue")).await;
    assert_eq!(own.status, 200);
    assert!(!own.body.contains("bob@remote.test") && !own.body.contains(&ann), "the other workspace's queue leaks");
    let forged = stranger.post_form(&format!("/w/{ws2}/queue/{first}/retry"), &own.body, &[]).await;
    assert_eq!(forged.status, 404);
    assert_eq!(row(&app, first).await.attempts, 3, "nothing happened to the row");
}

#[tokio::test]
async fn list_unsubscribe_setting_header_and_one_click_post() {
    let appliance = start();
    let owner = appliance.setup_admin(ADMIN).await;
    let ws = workspace_of(&owner.get("/").await.url);
    let (ann, _) = domain_and_mailboxes(&appliance);
    let app = open_app(&appliance).await;

    // Off by default: no header.
    let plain = send(&app, ws, &ann, &["lead@remote.test"], "Plain").await[0];
    let body = message_body(&app, plain).await;
    assert!(!body.contains("\r\nList-Unsubscribe:"), "{body}");

    // The owner turns it on; the change is audited.
    let page = owner.get(&format!("/w/{ws}/queue")).await;
    assert!(select_attr(&page.body, "#list-unsubscribe", "checked").is_empty());
    let saved = owner.post_form(&format!("/w/{ws}/queue/settings"), &page.body, &[("list_unsubscribe", "on")]).await;
    assert_eq!(saved.status, 200);
    assert_eq!(select_attr(&saved.body, "#list-unsubscribe", "checked").len(), 1);
    let audit = owner.get(&format!("/w/{ws}/audit")).await;
    assert!(audit.body.contains("settings.list_unsubscribe"), "{}", audit.body);

    let id = send(&app, ws, &ann, &["lead@remote.test"], "With a way out").await[0];
    let body = message_body(&app, id).await;
    let header_end = body.find("\r\n\r\n").expect("header end");
    assert!(body[..header_end].contains("List-Unsubscribe-Post: List-Unsubscribe=One-Click"), "{body}");
    let link_start = body.find(&format!("<{}/unsubscribe/", appliance.base)).expect("https link") + 1;
    let link = &body[link_start..link_start + body[link_start..].find('>').expect("end")];
    let on_from_domain = [">", "?"].iter().any(|end| body.contains(&format!("@{DOMAIN}{end}")));
    assert!(on_from_domain, "mailto on the From domain: {body}");

    // GET only asks; a mail provider's one-click POST (no cookies, no CSRF) unsubscribes.
    let visitor = reqwest::Client::new();
    let confirm = visitor.get(link).send().await.expect("GET");
    assert_eq!(confirm.status(), 200);
    assert!(confirm.text().await.expect("body").contains("lead@remote.test"));
    assert_eq!(suppression(&app, ws, "lead@remote.test").await, None, "a GET changes nothing");
    for _ in 0..2 {
        let posted = visitor
            .post(link)
            .header("content-type", "application/x-www-form-urlencoded")
            .body("List-Unsubscribe=One-Click")
            .send()
            .await
            .expect("POST");
        assert_eq!(posted.status(), 200);
        assert!(posted.text().await.expect("body").contains("unsubscribed"));
    }
    assert_eq!(suppression(&app, ws, "lead@remote.test").await.as_deref(), Some("unsubscribe"));
    let events = app.store.read(move |conn| inboxgrove::events::list(conn, ws, None, 100)).await.expect("events");
    let unsubscribed: Vec<_> = events.iter().filter(|e| e.kind == Kind::Unsubscribed).collect();
    assert_eq!(unsubscribed.len(), 1, "recorded once however often it is posted");
    assert_eq!(unsubscribed[0].peer, "lead@remote.test");

    // A forged or damaged token is a 404.
    let mut damaged = link.to_string();
    let last = damaged.pop().expect("a character");
    damaged.push(if last == 'A' { 'B' } else { 'A' });
    assert_eq!(visitor.post(&damaged).body("").send().await.expect("POST").status(), 404);
    assert_eq!(
        visitor.get(format!("{}/unsubscribe/nonsense", appliance.base)).send().await.expect("GET").status(),
        404
    );
}

/// The stored body of a queue row's message.
async fn message_body(app: &App, queue_id: i64) -> String {
    app.store
        .read(move |conn| {
            conn.query_row(
                "SELECT m.body FROM messages m JOIN queue q ON q.message_id = m.id WHERE q.id = ?1",
                [queue_id],
                |row| row.get::<_, Vec<u8>>(0),
            )
        })
        .await
        .map(|body| String::from_utf8_lossy(&body).to_string())
        .expect("message body")
}

async fn suppression(app: &App, ws: i64, address: &'static str) -> Option<String> {
    app.store.read(move |conn| inboxgrove::suppression::reason(conn, ws, address)).await.expect("suppression")
}

#[tokio::test]
async fn the_queue_list_searches_sorts_filters_and_pages() {
    let appliance = start();
    let owner = appliance.setup_admin(ADMIN).await;
    let ws = workspace_of(&owner.get("/").await.url);
    let (ann, carl) = domain_and_mailboxes(&appliance);
    let app = open_app(&appliance).await;

    // 55 remote recipients in five messages (the last one from carl); all deferred.
    let mut ids = Vec::new();
    for batch in 0..5 {
        let to: Vec<String> = (0..11).map(|n| format!("lead-{:02}@remote.test", batch * 11 + n)).collect();
        let to: Vec<&str> = to.iter().map(String::as_str).collect();
        let from = if batch == 4 { &carl } else { &ann };
        ids.extend(send(&app, ws, from, &to, &format!("Batch {batch}")).await);
    }
    assert_eq!(ids.len(), 55);
    for &id in &ids {
        deferred_after(&app, id, 1).await;
    }

    // Newest first, 50 a page.
    let url = format!("/w/{ws}/queue");
    let column =
        |page: &common::Page, n: usize| select_text(&page.body, &format!("#queue-rows tbody td:nth-child({n})"));
    let first = owner.get(&url).await;
    assert_eq!(select_text(&first.body, "#pager-summary"), ["1–50 of 55"]);
    let shown = column(&first, 1);
    assert_eq!(shown.len(), 50);
    assert_eq!(shown[0], ids.iter().max().expect("ids").to_string(), "the newest row first");
    let next = select_attr(&first.body, "#pager-next", "href").remove(0);
    let second = owner.get(&format!("{url}{}", next.replace("&amp;", "&"))).await;
    assert_eq!(select_text(&second.body, "#pager-summary"), ["51–55 of 55"]);
    assert_eq!(column(&second, 1).len(), 5);
    assert!(column(&second, 1).iter().all(|id| !shown.contains(id)), "no row on both pages");

    // The recipient header sorts from A to Z first, then the other way round.
    let header = select_attr(&first.body, "th a[data-sort=recipient]", "href").remove(0);
    let ascending = owner.get(&format!("{url}{}", header.replace("&amp;", "&"))).await;
    assert_eq!(select_attr(&ascending.body, "th[aria-sort=ascending] a", "data-sort"), ["recipient"]);
    let expected: Vec<String> = (0..50).map(|n| format!("lead-{n:02}@remote.test")).collect();
    assert_eq!(column(&ascending, 3), expected);
    let header = select_attr(&ascending.body, "th a[data-sort=recipient]", "href").remove(0);
    let descending = owner.get(&format!("{url}{}", header.replace("&amp;", "&"))).await;
    assert_eq!(column(&descending, 3)[0], "lead-54@remote.test");

    // A status filter and a search stay in the pager's links.
    let deferred = owner.get(&format!("{url}?status=deferred")).await;
    assert_eq!(select_text(&deferred.body, "#pager-summary"), ["1–50 of 55"]);
    let next = select_attr(&deferred.body, "#pager-next", "href").remove(0);
    assert!(next.contains("status=deferred") && next.contains("page=2"), "{next}");
    let delivered = owner.get(&format!("{url}?status=delivered")).await;
    assert_eq!(select_text(&delivered.body, "#pager-summary"), ["None"]);
    assert!(select_text(&delivered.body, "#queue-rows td").join(" ").contains("Nothing in the queue matches"));
    let searched = owner.get(&format!("{url}?q=remote.test")).await;
    let next = select_attr(&searched.body, "#pager-next", "href").remove(0);
    assert!(next.contains("q=remote.test"), "{next}");

    // Search by recipient (any case) and by sender.
    let tens = owner.get(&format!("{url}?q=LEAD-1&sort=recipient&dir=asc")).await;
    assert_eq!(column(&tens, 3), (10..20).map(|n| format!("lead-{n}@remote.test")).collect::<Vec<_>>());
    let from_carl = owner.get(&format!("{url}?q={}", carl.replace('@', "%40"))).await;
    let mut to = column(&from_carl, 3);
    to.sort();
    assert_eq!(to, (44..55).map(|n| format!("lead-{n}@remote.test")).collect::<Vec<_>>(), "carl's message");

    // Odd parameters fall back to the defaults.
    let odd = owner.get(&format!("{url}?sort=id%3B+DELETE+FROM+queue&dir=up&page=7")).await;
    assert_eq!(odd.status, 200);
    assert_eq!(select_text(&odd.body, "#pager-summary"), ["51–55 of 55"]);
    assert_eq!(column(&odd, 1), column(&second, 1));
}
