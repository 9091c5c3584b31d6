//! Open and click tracking over the real binary: a campaign with `track_opens` and
//! `track_clicks` sends one step (text and HTML) from grove.test, whose tracking host is set
//! with `domain set --tracking-host`, to two leads who are mailboxes of the appliance's own
//! leads.test (delivered locally, so the `delivered` event is written with the send and no
//! peer is needed). The injected clock is moved, never slept through.
//!
//! Asserted: the delivered message's links point at the tracking host (with the base URL's
//! scheme and port) and its pixel ends the HTML, the unsubscribe link is left alone; a click
//! within seconds of delivery, a HEAD, an image proxy and curl are recorded as machines, a
//! browser a minute later as a person, each event with the send's Message-ID, the lead and
//! the sending mailbox; a click redirects to the message's own URL only (a tampered token and
//! a token naming no stored link are 404s without a redirect, a `url` parameter is ignored);
//! the tracking host serves the pixel and the unsubscribe page but not the admin UI.

mod common;

use std::io::{Read, Write};

use common::Appliance;
use common::mail_rig::{open, run_cli, wait_until};
use common::peers::free_port;

const FIREFOX: &str = "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0";
const SITE: &str = "https://site.test/pricing?plan=pro&ref=mail";

const CAMPAIGN: &str = r#"
name = "Tracked"
mailboxes = ["SENDER"]
lists = ["Prospects"]
track_opens = true
track_clicks = true
unsubscribe = "footer"

[schedule]
time_zone = "UTC"
days = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"]
start = "00:00"
end = "24:00"

[[steps]]
subject = "Pricing for {{first_name}}"
body = "Hi {{first_name}},\n\nSee SITE. Or write to me: mailto:SENDER\n"
html = "<p>Hi {{first_name}},</p><p>See <a href=\"SITE_HTML\">our prices</a> or <a href=\"mailto:SENDER\">write</a>.</p>"
"#;

/// One HTTP/1.1 request over a plain connection: (status, headers lowercased, body).
fn request(appliance: &Appliance, method: &str, host: &str, path: &str, agent: Option<&str>) -> (u16, String, Vec<u8>) {
    let address = appliance.base.trim_start_matches("http://").to_string();
    let mut stream = std::net::TcpStream::connect(&address).expect("connect");
    let agent = agent.map(|a| format!("User-Agent: {a}\r\n")).unwrap_or_default();
    write!(stream, "{method} {path} HTTP/1.1\r\nHost: {host}\r\n{agent}Connection: close\r\n\r\n").unwrap();
    let mut response = Vec::new();
    stream.read_to_end(&mut response).unwrap();
    let split = response.windows(4).position(|w| w == b"\r\n\r\n").expect("a head") + 4;
    let head = String::from_utf8_lossy(&response[..split]).to_string();
    let status = head.split_whitespace().nth(1).and_then(|s| s.parse().ok()).expect("a status");
    (status, head.to_ascii_lowercase(), response[split..].to_vec())
}

fn location(head: &str) -> Option<String> {
    head.lines().find_map(|l| l.strip_prefix("location: ")).map(|l| l.trim().to_string())
}

/// The path of every URL of `kind` ("o" or "c") under `base` in `text`.
fn paths(text: &str, base: &str, kind: &str) -> Vec<String> {
    let prefix = format!("{base}/t/{kind}/");
    text.match_indices(&prefix)
        .map(|(at, _)| {
            let token: String = text[at + prefix.len()..]
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric() || *c == '-' || *c == '_')
                .collect();
            format!("/t/{kind}/{token}")
        })
        .collect()
}

/// (kind, message_id, recipient, mailbox_id, detail, machine) of the opens and clicks.
fn hits(db: &std::path::Path) -> Vec<(String, String, String, i64, String, bool)> {
    let conn = open(db);
    let mut stmt = conn
        .prepare(
            "SELECT kind, message_id, recipient, mailbox_id, detail, machine FROM events \
             WHERE kind IN ('opened', 'clicked') ORDER BY id",
        )
        .unwrap();
    stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?, r.get(5)?)))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap()
}

struct Setup {
    appliance: Appliance,
    sender: String,
    leads: Vec<String>,
}

/// The appliance with grove.test (one sender, tracking host track.grove.test) and leads.test
/// (two mailboxes, the leads), the campaign created and started.
fn setup() -> Setup {
    let dir = tempfile::tempdir().expect("temp dir");
    let data = dir.path().join("data");
    run_cli(&data, &["admin", "create", "--email", "admin@grove.test"], Some(common::PASSWORD));
    let mut created: Vec<Vec<String>> = Vec::new();
    for (domain, count) in [("grove.test", "1"), ("leads.test", "2")] {
        run_cli(&data, &["domain", "add", domain], None);
        let out = run_cli(&data, &["mailbox", "create", "--domain", domain, "--count", count], None);
        created.push(out.lines().skip(1).filter_map(|l| l.split_once(',')).map(|(a, _)| a.to_string()).collect());
    }
    let (sender, leads): (String, Vec<String>) = (created[0].first().cloned().unwrap(), created[1].clone());
    set_tracking_host(&data);
    let csv = dir.path().join("leads.csv");
    let rows: String = leads.iter().enumerate().map(|(i, lead)| format!("{lead},Lead{i}\n")).collect();
    std::fs::write(&csv, format!("email,first_name\n{rows}")).unwrap();
    run_cli(&data, &["leads", "import", csv.to_str().unwrap(), "--list", "Prospects", "--no-mx-check"], None);
    let file = dir.path().join("campaign.toml");
    let campaign = CAMPAIGN.replace("SITE_HTML", &SITE.replace('&', "&amp;")).replace("SITE", SITE);
    std::fs::write(&file, campaign.replace("SENDER", &sender)).unwrap();
    let id = run_cli(&data, &["campaign", "create", "--file", file.to_str().unwrap()], None).trim().to_string();
    run_cli(&data, &["campaign", "start", &id], None);
    let nowhere = format!("[\"127.0.0.1:{}\"]", free_port("127.0.0.1"));
    let env = [("INBOXGROVE_TEST_CLOCK", "1"), ("INBOXGROVE_DNS__NAMESERVERS", nowhere.as_str())];
    Setup { appliance: Appliance::start_with(dir, &env), sender, leads }
}

/// `domain set --tracking-host`: bad names refused with the reason, then track.grove.test set.
fn set_tracking_host(data: &std::path::Path) {
    for (bad, says) in [("track.other.test", "under grove.test"), ("192.0.2.1", "IP address"), ("grove.test", "under")]
    {
        let out = common::cli(data, &["domain", "set", "grove.test", "--tracking-host", bad], None);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success() && stderr.contains(says), "{bad}: {stderr}");
    }
    let out = common::cli(data, &["domain", "set", "grove.test", "--tracking-host", "Track.Grove.Test"], None);
    assert!(String::from_utf8_lossy(&out.stderr).contains("tracking links use track.grove.test"), "{out:?}");
    let out = common::cli(data, &["domain", "set", "leads.test", "--tracking-host", "track.grove.test"], None);
    assert!(!out.status.success(), "under another domain: {out:?}");
    let shown = run_cli(data, &["domain", "show", "grove.test", "--json"], None);
    let shown: serde_json::Value = serde_json::from_str(shown.trim()).unwrap();
    assert_eq!(shown["tracking_host"], "track.grove.test", "{shown}");
}

/// The sends' (lead, Message-ID, raw message), once both were sent.
fn sent(setup: &Setup) -> Vec<(String, String, Vec<u8>)> {
    let db = setup.appliance.data_dir().join("inboxgrove.db");
    let conn = open(&db);
    let read = || {
        let mut stmt = conn
            .prepare(
                "SELECT l.email, s.message_id, m.body FROM campaign_sends s JOIN leads l ON l.id = s.lead_id \
                 JOIN messages m ON m.message_id = s.message_id ORDER BY s.id",
            )
            .ok()?;
        let rows: Vec<(String, String, Vec<u8>)> =
            stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?))).ok()?.collect::<Result<_, _>>().ok()?;
        (rows.len() == setup.leads.len()).then_some(rows)
    };
    wait_until("both sends", read)
}

#[test]
fn opens_and_clicks_are_recorded_flagged_and_only_redirect_to_the_message_s_links() {
    let setup = setup();
    let appliance = &setup.appliance;
    let port = appliance.base.rsplit(':').next().unwrap().to_string();
    let track = format!("track.grove.test:{port}");
    let base = format!("http://{track}");
    let sends = sent(&setup);
    let (lead, message_id, raw) = &sends[0];
    let message = mail_parser::MessageParser::default().parse(raw).expect("a message");
    let (text, html) = (message.body_text(0).unwrap().to_string(), message.body_html(0).unwrap().to_string());
    assert!(!text.contains("site.test") && !html.contains("site.test"), "{text}\n{html}");
    assert!(text.contains(&format!("mailto:{}", setup.sender)) && html.contains("href=\"mailto:"), "{html}");
    assert!(text.contains(&format!("{}/unsubscribe/", appliance.base)), "the unsubscribe link stays: {text}");
    let clicks = paths(&text, &base, "c");
    assert_eq!((clicks.len(), paths(&html, &base, "c")), (1, clicks.clone()), "one link, the same in both parts");
    let pixel = paths(&html, &base, "o").pop().expect("a pixel");
    assert!(html.trim_end().ends_with("border:0\">"), "the pixel ends the HTML: {html}");

    // Within seconds of delivery: a scanner's click. Then, a minute later, a browser, a HEAD,
    // Google's image proxy and curl.
    let (status, head, _) = request(appliance, "GET", &track, &clicks[0], Some(FIREFOX));
    assert_eq!((status, location(&head).as_deref()), (302, Some(SITE)), "{head}");
    appliance.advance_clock(60);
    let (status, head, body) = request(appliance, "GET", &track, &pixel, Some(FIREFOX));
    assert_eq!((status, body.len()), (200, 43));
    assert!(head.contains("content-type: image/gif") && head.contains("no-store"), "{head}");
    assert_eq!(request(appliance, "HEAD", &track, &pixel, Some(FIREFOX)).0, 200);
    let proxy = "Mozilla/5.0 (Windows NT 5.1; rv:11.0) Gecko Firefox/11.0 (via ggpht.com GoogleImageProxy)";
    assert_eq!(request(appliance, "GET", &track, &pixel, Some(proxy)).0, 200);
    let (status, head, _) = request(appliance, "GET", &track, &clicks[0], Some(FIREFOX));
    assert_eq!((status, location(&head).as_deref()), (302, Some(SITE)));
    let with_url = format!("{}?url=https%3A%2F%2Fevil.test%2F", clicks[0]);
    assert_eq!(location(&request(appliance, "GET", &track, &with_url, Some("curl/8.5.0")).1).as_deref(), Some(SITE));

    let db = appliance.data_dir().join("inboxgrove.db");
    let sender_id: i64 =
        open(&db).query_row("SELECT id FROM mailboxes WHERE address = ?1", [&setup.sender], |r| r.get(0)).unwrap();
    let got = hits(&db);
    let seen: Vec<(&str, &str, bool)> = got.iter().map(|h| (h.0.as_str(), h.4.as_str(), h.5)).collect();
    assert_eq!(
        seen,
        [
            ("clicked", SITE, true),
            ("opened", FIREFOX, false),
            ("opened", FIREFOX, true),
            ("opened", proxy, true),
            ("clicked", SITE, false),
            ("clicked", SITE, true),
        ]
    );
    for hit in &got {
        assert_eq!((&hit.1, &hit.2, hit.3), (message_id, lead, sender_id), "{hit:?}");
    }

    // Refused without a redirect: a tampered token, another message's position that was never
    // stored (a token changed to name it fails its MAC), and an open token as a click.
    let token = clicks[0].trim_start_matches("/t/c/");
    for (index, _) in token.char_indices().step_by(17) {
        let mut tampered = token.to_string().into_bytes();
        tampered[index] = if tampered[index] == b'A' { b'B' } else { b'A' };
        let path = format!("/t/c/{}", String::from_utf8(tampered).unwrap());
        let (status, head, _) = request(appliance, "GET", &track, &path, Some(FIREFOX));
        assert_eq!((status, location(&head)), (404, None), "{path}");
    }
    let open_as_click = pixel.replace("/t/o/", "/t/c/");
    assert_eq!(location(&request(appliance, "GET", &track, &open_as_click, Some(FIREFOX)).1), None);
    assert_eq!(request(appliance, "GET", &track, "/t/c/aHR0cHM6Ly9ldmlsLnRlc3Qv", Some(FIREFOX)).0, 404);
    assert_eq!(hits(&db).len(), got.len(), "refusals record nothing");

    // The tracking host serves tracking and unsubscribe, never the admin UI.
    for path in ["/", "/login", "/w/1/domains", "/healthz"] {
        let (status, _, body) = request(appliance, "GET", &track, path, Some(FIREFOX));
        assert_eq!(status, 404, "{path}");
        assert!(!String::from_utf8_lossy(&body).contains("name=\"password\""), "{path}");
    }
    let unsubscribe = text.split(&format!("{}/unsubscribe/", appliance.base)).nth(1).unwrap();
    let unsubscribe: String =
        unsubscribe.chars().take_while(|c| c.is_ascii_alphanumeric() || "-_".contains(*c)).collect();
    assert_eq!(request(appliance, "GET", &track, &format!("/unsubscribe/{unsubscribe}"), Some(FIREFOX)).0, 200);
    let admin = appliance.base.trim_start_matches("http://");
    assert_eq!(request(appliance, "GET", admin, "/login", Some(FIREFOX)).0, 200, "the admin UI on the base URL");

    // The event log and its command line know the new kinds.
    let listed = run_cli(&appliance.data_dir(), &["events", "list", "--kind", "clicked", "--json"], None);
    assert_eq!(listed.lines().count(), 3, "{listed}");
}
