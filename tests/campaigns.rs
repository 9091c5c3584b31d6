//! Campaigns end to end over the real binary: leads imported from a CSV through the CLI (checked
//! against a real DNS server, Knot, for their MX), a 3-step campaign over 3 mailboxes on 2
//! domains sent to a real Postfix MX for two recipient domains, and the injected clock moved
//! hour by hour through 12 days (never slept through).
//!
//! Asserted at the receiving side and in `campaign leads --json`: every send falls inside the
//! window in the lead's own time zone (New York and Tokyo, 14 hours apart); no mailbox sends
//! more than its daily limit on a day; follow-ups come from the first step's mailbox, in its
//! thread (`Re:` subject, In-Reply-To and References); a lead who replies (a real reply sent to
//! the inbound port) gets no further step, nor does one who posts the one-click unsubscribe, nor
//! one whose address Postfix refuses with 550 5.1.1; every other lead gets exactly 3 messages.
//! A second test kills the appliance with SIGKILL in the middle of its ticks, several times:
//! no (lead, step) is sent twice and none is missing.

mod common;

use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::Path;
use std::time::Duration;

use chrono::{Datelike, TimeZone, Timelike};
use common::mail_rig::{open, run_cli, send_raw, wait_until};
use common::peers::{Dns, PostfixMx, Zone, free_port};
use common::{Appliance, PASSWORD};
use serde_json::Value;

const EAST: &str = "east.test";
const WEST: &str = "west.test";
const DAILY_LIMIT: i64 = 15;

/// Zones: the recipient domains (MX: Postfix on 127.0.0.2) and a domain without MX.
fn recipient_zones() -> Vec<Zone> {
    vec![
        Zone::new("test", &[]),
        Zone::new(EAST, &["@ MX 10 mx.east.test.", "mx A 127.0.0.2"]),
        Zone::new(WEST, &["@ MX 10 mx.west.test.", "mx A 127.0.0.2"]),
        Zone::new("nomx.test", &["@ A 127.0.0.9"]),
    ]
}

/// The record lines of a domain's zone, as `domain records --zone` prints them.
fn zone_of(data: &Path, domain: &str) -> Zone {
    let records = run_cli(data, &["domain", "records", domain, "--zone"], None)
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with(';') && !l.starts_with('$'))
        .map(str::to_string)
        .collect();
    Zone { name: domain.into(), records }
}

/// The appliance with two sending domains, three mailboxes (two and one) at a daily limit of
/// [`DAILY_LIMIT`], its resolver on `dns` and its MX port that of Postfix.
fn appliance(dns: &Dns, mx_port: u16) -> (Appliance, Vec<String>) {
    let dir = tempfile::tempdir().expect("temp dir");
    let data = dir.path().join("data");
    run_cli(&data, &["admin", "create", "--email", "admin@grove.test"], Some(PASSWORD));
    let mut mailboxes = Vec::new();
    for (domain, count) in [("grove.test", "2"), ("second.test", "1")] {
        run_cli(&data, &["domain", "add", domain], None);
        let created =
            run_cli(&data, &["mailbox", "create", "--domain", domain, "--count", count, "--daily-limit", "15"], None);
        mailboxes.extend(created.lines().skip(1).filter_map(|l| l.split_once(',')).map(|(a, _)| a.to_string()));
        dns.set_zone(&zone_of(&data, domain));
    }
    let env = [
        ("INBOXGROVE_TEST_CLOCK", "1".to_string()),
        ("INBOXGROVE_DNS__NAMESERVERS", format!("[\"{}\"]", dns.nameserver())),
        ("INBOXGROVE_DELIVERY__MX_PORT", mx_port.to_string()),
        ("INBOXGROVE_DELIVERY__TIMEOUT", "10s".to_string()),
    ];
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    (Appliance::start_with(dir, &env), mailboxes)
}

/// 30 leads in New York at east.test and 30 in Tokyo at west.test; lead 3 at east.test is
/// `reject@` (Postfix refuses it), then rows every check skips.
fn leads_csv() -> String {
    let mut csv = String::from("Email;First Name;Company;Time Zone;Favourite colour\r\n");
    for i in 0..30 {
        let east = if i == 3 { "reject".to_string() } else { format!("lead{i}") };
        csv.push_str(&format!("{east}@{EAST};Ann{i};East Co {i};America/New_York;blue\r\n"));
        csv.push_str(&format!("lead{i}@{WEST};Ken{i};\"West; Inc {i}\";Asia/Tokyo;red\r\n"));
    }
    csv.push_str("info@east.test;Info;East;America/New_York;x\r\n");
    csv.push_str("someone@mailinator.com;Temp;Temp;UTC;x\r\n");
    csv.push_str("lead1@east.test;Dup;Dup;America/New_York;x\r\n");
    csv.push_str("not-an-address;Bad;Bad;UTC;x\r\n");
    csv.push_str("someone@nomx.test;NoMx;NoMx;UTC;x\r\n");
    csv
}

const CAMPAIGN: &str = r#"
name = "Winter outreach"
mailboxes = [MAILBOXES]
lists = ["Prospects"]
stop_on_reply = true

[schedule]
time_zone = "UTC"
days = ["mon", "tue", "wed", "thu", "fri"]
start = "09:00"
end = "17:00"
use_lead_time_zone = true

[[steps]]
subject = "{Quick|Short} question for {{company}}"
body = "{Hi|Hello} {{first_name|there}},\n\nDo you like {{Favourite colour}}?\n\n{{sender_first_name}}"

[[steps]]
body = "Following up on my note, {{first_name}}."
delay_days = 2

[[steps]]
body = "Last one from me."
delay_days = 2
"#;

/// Moves the clock by `seconds` and waits until the campaign engine finished a tick after it.
fn step_clock(appliance: &Appliance, seconds: i64) -> i64 {
    let now = appliance.advance_clock(seconds);
    let url = appliance.url("/_test/campaign-tick");
    wait_until("a campaign tick", || {
        let ticked: i64 = reqwest::blocking_get(&url)?.trim().parse().ok()?;
        (ticked >= now).then_some(())
    });
    now
}

mod reqwest {
    /// A GET over a plain TCP connection (the tests' blocking HTTP).
    pub fn blocking_get(url: &str) -> Option<String> {
        use std::io::{Read, Write};
        let rest = url.strip_prefix("http://")?;
        let (address, path) = rest.split_once('/').map_or((rest, "/".to_string()), |(a, p)| (a, format!("/{p}")));
        let mut stream = std::net::TcpStream::connect(address).ok()?;
        write!(stream, "GET {path} HTTP/1.1\r\nHost: {address}\r\nConnection: close\r\n\r\n").ok()?;
        let mut response = String::new();
        stream.read_to_string(&mut response).ok()?;
        response.starts_with("HTTP/1.1 200").then(|| response.rsplit("\r\n\r\n").next().unwrap_or_default().to_string())
    }
}

/// The messages Postfix stored, parsed: (To address, headers by lowercased name, raw).
fn received(mx: &PostfixMx) -> Vec<(String, HashMap<String, String>)> {
    mx.messages()
        .iter()
        .map(|raw| {
            let text = String::from_utf8_lossy(raw).replace("\r\n", "\n");
            let head = text.split("\n\n").next().unwrap_or_default().replace("\n ", " ").replace("\n\t", " ");
            let mut headers = HashMap::new();
            for line in head.lines() {
                if let Some((name, value)) = line.split_once(':') {
                    headers.entry(name.trim().to_ascii_lowercase()).or_insert_with(|| value.trim().to_string());
                }
            }
            let to = headers.get("to").cloned().unwrap_or_default();
            let to = to.rsplit('<').next().unwrap_or_default().trim_end_matches('>').trim().to_lowercase();
            (to, headers)
        })
        .collect()
}

fn campaign_leads(appliance: &Appliance, id: &str) -> Vec<Value> {
    let out = appliance.cli(&["campaign", "leads", id, "--json"], None);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).lines().map(|l| serde_json::from_str(l).expect("a JSON line")).collect()
}

fn zone_of_lead(email: &str) -> chrono_tz::Tz {
    if email.ends_with(EAST) { chrono_tz::America::New_York } else { chrono_tz::Asia::Tokyo }
}

#[test]
fn a_three_step_campaign_runs_in_each_lead_s_window_and_stops_on_reply_unsubscribe_and_bounce() {
    if !(Dns::available() && PostfixMx::available()) {
        return;
    }
    let dns = Dns::start(&recipient_zones());
    let port = free_port("127.0.0.2");
    let (appliance, mailboxes) = appliance(&dns, port);
    let inbound = format!("{}:2525", appliance.mail_ip);
    let routing = common::mail_rig::routing(&inbound, &["grove.test", "second.test"], &[]);
    let mx = PostfixMx::start_with("127.0.0.2", port, &[EAST, WEST], &routing);
    let data = appliance.data_dir();

    // Import: 60 leads, and one row for each reason to skip.
    let csv = appliance.dir.path().join("leads.csv");
    std::fs::write(&csv, format!("\u{feff}{}", leads_csv())).unwrap();
    let import = |args: &[&str]| {
        let resolver = format!("[\"{}\"]", dns.nameserver());
        let out = common::cli_with_env(&data, args, None, &[("INBOXGROVE_DNS__NAMESERVERS", &resolver)]);
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8(out.stdout).unwrap()
    };
    let report = import(&["leads", "import", csv.to_str().unwrap(), "--list", "Prospects", "--json"]);
    let report: Value = serde_json::from_str(report.trim()).expect("the import report");
    assert_eq!((report["imported"].as_i64(), report["updated"].as_i64()), (Some(60), Some(0)), "{report}");
    let reasons: BTreeMap<String, String> = report["skipped"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| (s["email"].as_str().unwrap().to_string(), s["reason"].as_str().unwrap().to_string()))
        .collect();
    let expected: BTreeMap<String, String> = [
        ("info@east.test", "role_address"),
        ("someone@mailinator.com", "disposable"),
        ("lead1@east.test", "duplicate"),
        ("not-an-address", "invalid_syntax"),
        ("someone@nomx.test", "no_mx"),
    ]
    .into_iter()
    .map(|(a, b)| (a.to_string(), b.to_string()))
    .collect();
    assert_eq!(reasons, expected);
    let again = import(&["leads", "import", csv.to_str().unwrap(), "--list", "Prospects", "--json"]);
    let again: Value = serde_json::from_str(again.trim()).unwrap();
    assert_eq!((again["imported"].as_i64(), again["updated"].as_i64()), (Some(0), Some(60)), "{again}");

    // The campaign.
    let file = appliance.dir.path().join("campaign.toml");
    let pool = mailboxes.iter().map(|m| format!("\"{m}\"")).collect::<Vec<_>>().join(", ");
    std::fs::write(&file, CAMPAIGN.replace("MAILBOXES", &pool)).unwrap();
    let id = run_cli(&data, &["campaign", "create", "--file", file.to_str().unwrap()], None).trim().to_string();
    run_cli(&data, &["campaign", "start", &id], None);

    let replier = format!("lead5@{EAST}");
    let unsubscriber = format!("lead6@{WEST}");
    let rejected = format!("reject@{EAST}");
    let (mut replied, mut unsubscribed) = (false, false);
    for _ in 0..12 * 24 {
        step_clock(&appliance, 3600);
        let messages = received(&mx);
        if !replied && let Some((_, headers)) = messages.iter().find(|(to, _)| *to == replier) {
            reply(&inbound, &replier, headers);
            replied = true;
        }
        if !unsubscribed && let Some((_, headers)) = messages.iter().find(|(to, _)| *to == unsubscriber) {
            one_click(&headers["list-unsubscribe"]);
            unsubscribed = true;
        }
    }
    assert!(replied && unsubscribed);
    let mut messages = Vec::new();
    wait_until("every send delivered", || {
        messages = received(&mx);
        (messages.len() == 57 * 3 + 2).then_some(())
    });

    // What each lead received, and what the campaign recorded.
    let leads = campaign_leads(&appliance, &id);
    assert_eq!(leads.len(), 60);
    let mut per_mailbox_day: HashMap<(String, i64), i64> = HashMap::new();
    for lead in &leads {
        let email = lead["email"].as_str().unwrap();
        let sends = lead["sends"].as_array().unwrap();
        let status = lead["status"].as_str().unwrap();
        let got: Vec<&HashMap<String, String>> =
            messages.iter().filter(|(to, _)| to == email).map(|(_, h)| h).collect();
        if email == replier {
            assert_eq!((status, sends.len(), got.len()), ("replied", 1, 1), "{lead}");
        } else if email == unsubscriber {
            assert_eq!((status, sends.len(), got.len()), ("unsubscribed", 1, 1), "{lead}");
        } else if email == rejected {
            assert_eq!((status, sends.len(), got.len()), ("bounced", 1, 0), "{lead}");
        } else {
            assert_eq!((status, sends.len(), got.len()), ("finished", 3, 3), "{lead}");
            check_thread(email, sends, &got);
        }
        for send in sends {
            let at = send["at"].as_i64().unwrap();
            let local = zone_of_lead(email).timestamp_opt(at, 0).unwrap();
            let minutes = local.hour() * 60 + local.minute();
            assert!(local.weekday().number_from_monday() <= 5, "{email} got a step on a {}", local.weekday());
            assert!((9 * 60..17 * 60).contains(&minutes), "{email} got a step at {local}");
            *per_mailbox_day
                .entry((send["mailbox"].as_str().unwrap().to_string(), at.div_euclid(86_400)))
                .or_default() += 1;
        }
    }
    assert!(per_mailbox_day.values().all(|n| *n <= DAILY_LIMIT), "{per_mailbox_day:?}");
    assert!(per_mailbox_day.values().any(|n| *n == DAILY_LIMIT), "the limit was reached: {per_mailbox_day:?}");

    let show = run_cli(&data, &["campaign", "show", &id, "--json"], None);
    let show: Value = serde_json::from_str(show.trim()).unwrap();
    assert_eq!(show["status"], "completed", "{show}");
    let counts = &show["counts"];
    assert_eq!(counts["leads"], 60, "{show}");
    assert_eq!(counts["sent"], 57 * 3 + 3, "{show}");
    assert_eq!(counts["delivered"], 57 * 3 + 2, "{show}");
    assert_eq!(counts["bounced"], 1, "{show}");
    assert_eq!(counts["replied"], 1, "{show}");
    assert_eq!(counts["unsubscribed"], 1, "{show}");
    assert_eq!(show["not_sending"], serde_json::json!(["not_active"]), "{show}");
    let conn = open(&data.join("inboxgrove.db"));
    let suppressed: i64 = conn
        .query_row("SELECT count(*) FROM suppressions WHERE address IN (?1, ?2)", [&unsubscriber, &rejected], |r| {
            r.get(0)
        })
        .unwrap();
    assert_eq!(suppressed, 2);
}

/// Steps 2 and 3 come from step 1's mailbox, answer the previous message and carry the thread.
fn check_thread(email: &str, sends: &[Value], got: &[&HashMap<String, String>]) {
    let mailbox = sends[0]["mailbox"].as_str().unwrap();
    assert!(sends.iter().all(|s| s["mailbox"] == mailbox), "{email}: {sends:?}");
    let ids: Vec<String> = sends.iter().map(|s| format!("<{}>", s["message_id"].as_str().unwrap())).collect();
    let by_id: HashMap<&str, &&HashMap<String, String>> =
        got.iter().map(|h| (h.get("message-id").map(String::as_str).unwrap_or_default(), h)).collect();
    let first = by_id[ids[0].as_str()];
    assert!(first["from"].contains(mailbox), "{email}: {first:?}");
    for (n, id) in ids.iter().enumerate().skip(1) {
        let headers = by_id[id.as_str()];
        assert_eq!(headers["subject"], format!("Re: {}", first["subject"]), "{email}");
        assert_eq!(headers["in-reply-to"], ids[n - 1], "{email}");
        assert_eq!(headers["references"].split_whitespace().collect::<Vec<_>>(), ids[..n].to_vec(), "{email}");
        assert!(headers["from"].contains(mailbox), "{email}");
    }
}

/// A person's reply to the message whose headers are given, sent to the appliance's MX.
fn reply(inbound: &str, from: &str, headers: &HashMap<String, String>) {
    let mailbox = headers["from"].rsplit('<').next().unwrap().trim_end_matches('>').to_string();
    let raw = format!(
        "From: Ann <{from}>\r\nTo: <{mailbox}>\r\nSubject: Re: {}\r\nMessage-ID: <reply-1@{EAST}>\r\n\
         In-Reply-To: {id}\r\nReferences: {id}\r\nDate: Thu, 03 Dec 2026 10:00:00 +0000\r\n\r\n\
         Sounds interesting, tell me more.\r\n",
        headers["subject"],
        id = headers["message-id"],
    );
    let (ok, transcript) = send_raw(inbound, from, &mailbox, &raw);
    assert!(ok, "{transcript}");
}

/// Posts the one-click unsubscribe (RFC 8058) to the link of a List-Unsubscribe header.
fn one_click(header: &str) {
    let link = header.split(['<', '>']).find(|part| part.starts_with("http")).expect("an https link").to_string();
    let rest = link.strip_prefix("http://").unwrap();
    let (address, path) = rest.split_once('/').unwrap();
    use std::io::{Read, Write};
    let mut stream = std::net::TcpStream::connect(address).unwrap();
    let body = "List-Unsubscribe=One-Click";
    write!(
        stream,
        "POST /{path} HTTP/1.1\r\nHost: {address}\r\nContent-Type: application/x-www-form-urlencoded\r\n\
         Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
    .unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).unwrap();
    assert!(response.starts_with("HTTP/1.1 200"), "{response}");
}

#[test]
fn killed_during_ticks_the_engine_sends_every_step_once() {
    const LEADS: usize = 130;
    if !(Dns::available() && PostfixMx::available()) {
        return;
    }
    let dns = Dns::start(&recipient_zones());
    let port = free_port("127.0.0.2");
    let (mut appliance, mailboxes) = appliance(&dns, port);
    let mx = PostfixMx::start("127.0.0.2", port, &[EAST, WEST]);
    let data = appliance.data_dir();
    let csv = appliance.dir.path().join("leads.csv");
    let mut text = String::from("email,first_name,time_zone\n");
    for i in 0..LEADS {
        text.push_str(&format!("k{i}@{EAST},Kim{i},UTC\n"));
    }
    std::fs::write(&csv, text).unwrap();
    run_cli(&data, &["leads", "import", csv.to_str().unwrap(), "--list", "Prospects", "--no-mx-check"], None);
    let file = appliance.dir.path().join("campaign.toml");
    let pool = mailboxes.iter().map(|m| format!("\"{m}\"")).collect::<Vec<_>>().join(", ");
    let campaign = CAMPAIGN
        .replace("MAILBOXES", &pool)
        .replace(
            "days = [\"mon\", \"tue\", \"wed\", \"thu\", \"fri\"]",
            "days = [\"mon\", \"tue\", \"wed\", \"thu\", \"fri\", \"sat\", \"sun\"]",
        )
        .replace("start = \"09:00\"", "start = \"00:00\"")
        .replace("end = \"17:00\"", "end = \"24:00\"")
        .replace("{{Favourite colour}}", "{{first_name}}");
    std::fs::write(&file, campaign).unwrap();
    let id = run_cli(&data, &["campaign", "create", "--file", file.to_str().unwrap()], None).trim().to_string();
    run_cli(&data, &["campaign", "start", &id], None);
    // The injected clock lives in the process: after a restart it is moved to where it was.
    let mut offset = 0;
    let mut kills = 0;
    for round in 0..12 {
        offset += 12 * 3600;
        appliance.advance_clock(12 * 3600);
        // Let the engine start its tick, then kill it mid-way (the delay varies per round: the
        // due leads take two batches, and a kill lands before, between or after their commits).
        std::thread::sleep(Duration::from_millis(37 * (round % 9)));
        appliance.kill9();
        kills += 1;
        let conn = open(&data.join("inboxgrove.db"));
        let sent: i64 = conn.query_row("SELECT count(*) FROM campaign_sends", [], |r| r.get(0)).unwrap();
        println!("round {round}: {sent} steps sent when killed");
        appliance = appliance.restart();
        appliance.advance_clock(offset - 12 * 3600);
    }
    // Then let it finish in peace.
    for _ in 0..14 {
        step_clock(&appliance, 12 * 3600);
    }
    let leads = campaign_leads(&appliance, &id);
    assert_eq!(leads.len(), LEADS);
    for lead in &leads {
        let steps: Vec<i64> = lead["sends"].as_array().unwrap().iter().map(|s| s["step"].as_i64().unwrap()).collect();
        assert_eq!(steps, vec![1, 2, 3], "{lead}");
    }
    // Delivery is at least once (a kill between the MX's 250 and the commit repeats a delivery,
    // with the same Message-ID), so the wait counts distinct Message-IDs, not messages; a step
    // sent twice would be two Message-IDs.
    let distinct_ids =
        || -> HashSet<String> { received(&mx).into_iter().filter_map(|(_, h)| h.get("message-id").cloned()).collect() };
    wait_until("every send delivered", || (distinct_ids().len() >= 3 * LEADS).then_some(()));
    assert_eq!(distinct_ids().len(), 3 * LEADS, "{kills} kills");
    let conn = open(&data.join("inboxgrove.db"));
    let rows: i64 = conn
        .query_row(
            "SELECT count(*) FROM queue q JOIN messages m ON m.id = q.message_id \
             WHERE m.message_id IN (SELECT message_id FROM campaign_sends)",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(usize::try_from(rows).unwrap(), 3 * LEADS, "one queue row per (lead, step)");
}
