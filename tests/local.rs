//! Mail between mailboxes of the appliance goes through the same core as mail from outside, over
//! the real binary with swaks and a raw TLS client:
//! - a message submitted to an alias, a plus address and a catch-all of the own domain is
//!   delivered locally (never queued for remote delivery) into the right mailboxes, with
//!   `Return-Path`, our local `Received` and the submission's `Received`;
//! - a reply (In-Reply-To) from one own mailbox to a message another sent is threaded and
//!   classified as a reply, an auto-reply as an auto-reply, with their events — exactly as the
//!   same mail arriving from outside on port 25; `inboxgrove events list --json` shows them;
//! - a recipient suppressed while a session is between RCPT and DATA is still refused at DATA
//!   (the check runs in the transaction that records the send).

mod common;

use std::net::{IpAddr, SocketAddr};

use common::mail_rig::*;
use common::peers::Dns;
use common::wire::{Wire, b64, tls_config};

/// The rig with Knot as its resolver (the inbound port verifies SPF, DKIM and DMARC through it).
fn rig() -> Option<(Dns, Rig)> {
    if !(common::have_peer("swaks") && Dns::available()) {
        return None;
    }
    let dns = Dns::start(&base_zones());
    let rig = Rig::start(Some(&dns), None);
    Some((dns, rig))
}

/// (status, local) of every queue row of `recipient`, and the kinds of their events.
fn rows_of(rig: &Rig, recipient: &str) -> Vec<(String, bool, Vec<String>)> {
    let conn = open(&rig.db);
    let mut stmt =
        conn.prepare("SELECT id, status, local FROM queue WHERE recipient = ?1 ORDER BY id").expect("select");
    let rows: Vec<(i64, String, bool)> = stmt
        .query_map([recipient], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
        .expect("query")
        .collect::<Result<_, _>>()
        .expect("rows");
    rows.into_iter()
        .map(|(id, status, local)| (status, local, rig.row_events(id).into_iter().map(|(kind, _)| kind).collect()))
        .collect()
}

#[test]
fn aliases_plus_addresses_and_the_catch_all_are_delivered_locally_with_trace_fields() {
    let Some((_dns, rig)) = rig() else { return };
    let (ann, bob) = (rig.address(0).to_string(), rig.address(1).to_string());
    let (first, second) = (rig.mailbox_id(0), rig.mailbox_id(1));
    run_cli(
        &rig.appliance.data_dir(),
        &["alias", "add", &format!("team@{DOMAIN}"), "--to", &format!("{ann},{bob}")],
        None,
    );
    run_cli(&rig.appliance.data_dir(), &["alias", "catch-all", DOMAIN, &bob], None);
    let plus = bob.replace('@', "+q3@");
    let recipients = [format!("team@{DOMAIN}"), plus, format!("whoever@{DOMAIN}")];
    for (index, to) in recipients.iter().enumerate() {
        let raw = format!("From: <{ann}>\r\nTo: <{to}>\r\nSubject: Local {index}\r\n\r\nHello.\r\n");
        rig.submit(0, to, &raw);
        assert_eq!(
            rows_of(&rig, to),
            [("delivered".to_string(), true, vec!["delivered".to_string()])],
            "{to}: delivered locally at once, never queued"
        );
    }
    let bob_inbox = rig.wait_for_mail(second, "INBOX", 3);
    let ann_inbox = rig.wait_for_mail(first, "INBOX", 1);
    assert_eq!((bob_inbox.len(), ann_inbox.len()), (3, 1), "the alias gave each target one copy");
    for stored in bob_inbox.iter().chain(&ann_inbox) {
        let fields = stored.body.split("\r\n").take(3).collect::<Vec<_>>();
        assert_eq!(fields[0], format!("Return-Path: <{ann}>"), "{}", stored.body);
        assert_eq!(fields[1], "Received: by mail.grove.test (InboxGrove) for local delivery;", "{}", stored.body);
        let received = header_values(&stored.body, "Received");
        assert_eq!(received.len(), 2, "{received:?}");
        assert!(
            received[1].starts_with("from ")
                && received[1].contains("(127.0.0.1)")
                && received[1].contains("by mail.grove.test (InboxGrove) with ESMTPSA;"),
            "the submission's own trace field: {received:?}"
        );
    }
    let subjects: Vec<String> = bob_inbox.iter().map(|m| header_values(&m.body, "Subject").join("")).collect();
    assert_eq!(subjects, ["Local 0", "Local 1", "Local 2"]);

    // The queue page counts them: three local deliveries (one row per recipient address).
    let page = tokio::runtime::Runtime::new().expect("runtime").block_on(async {
        let browser = sign_in(&rig).await;
        browser.get("/w/1/queue").await
    });
    assert_eq!(page.status, 200, "{}", page.body);
    let counts = common::select_text(&page.body, "#status-counts td[data-status=delivered]");
    assert_eq!(counts, ["3 (3 local)"], "{}", page.body);
}

/// (classification, whether it answers our message, the answer events since `events_before` with
/// their queue rows) of the newest message in a mailbox's INBOX.
type Outcome = (String, bool, Vec<(String, Option<i64>)>);

fn outcome(rig: &Rig, mailbox_id: i64, events_before: i64) -> (Outcome, Stored) {
    let stored = rig.folder(mailbox_id, "INBOX").pop().expect("a message");
    let conn = open(&rig.db);
    let mut stmt = conn
        .prepare("SELECT kind, queue_id FROM events WHERE id > ?1 AND kind IN ('reply', 'auto_reply', 'unsubscribe_request', 'complaint', 'bounced') ORDER BY id")
        .expect("select");
    let events = stmt
        .query_map([events_before], |r| Ok((r.get(0)?, r.get(1)?)))
        .expect("query")
        .collect::<Result<Vec<(String, Option<i64>)>, _>>()
        .expect("events");
    ((stored.classification.clone(), stored.answers_message.is_some(), events), stored)
}

fn last_event(rig: &Rig) -> i64 {
    open(&rig.db).query_row("SELECT coalesce(max(id), 0) FROM events", [], |r| r.get(0)).expect("max event")
}

#[test]
fn replies_and_auto_replies_between_own_mailboxes_count_exactly_as_from_outside() {
    let Some((_dns, rig)) = rig() else { return };
    let (ann, bob) = (rig.address(0).to_string(), rig.address(1).to_string());
    let first = rig.mailbox_id(0);
    let inbound = rig.inbound();
    let answer = |from: &str, subject: &str, extra: &str, id: &str, text: &str| {
        format!(
            "From: <{from}>\r\nTo: <{ann}>\r\nSubject: {subject}\r\n{extra}In-Reply-To: <{id}>\r\n\
             References: <{id}>\r\n\r\n{text}\r\n"
        )
    };
    let mut outcomes = Vec::new();
    for (peer, local) in [(bob.as_str(), true), ("lead@dest.test", false)] {
        let opening = format!("From: <{ann}>\r\nTo: <{peer}>\r\nSubject: Quick question\r\n\r\nHello!\r\n");
        let (row, id) = rig.submit(0, peer, &opening);
        for (subject, extra, text) in [
            ("Re: Quick question", "", "Sounds interesting, call me on Tuesday."),
            ("Automatic reply: Quick question", "Auto-Submitted: auto-replied\r\n", "I am away until Monday."),
        ] {
            let before = last_event(&rig);
            let raw = answer(peer, subject, extra, &id, text);
            if local {
                rig.submit(1, &ann, &raw);
            } else {
                assert!(send_raw(&inbound, peer, &ann, &raw).0, "port 25 accepts the answer");
            }
            let (mut seen, stored) = outcome(&rig, first, before);
            assert!(seen.2.iter().all(|(_, queue_id)| *queue_id == Some(row)), "events about the opening: {seen:?}");
            seen.2.iter_mut().for_each(|event| event.1 = None);
            outcomes.push((local, subject, seen, stored.thread_id));
        }
    }
    let by_path =
        |local: bool| outcomes.iter().filter(|o| o.0 == local).map(|o| (o.1, o.2.clone())).collect::<Vec<_>>();
    assert_eq!(by_path(true), by_path(false), "the same outcomes from an own mailbox and from outside");
    assert_eq!(
        by_path(true),
        [
            ("Re: Quick question", ("personal".to_string(), true, vec![("reply".to_string(), None)])),
            (
                "Automatic reply: Quick question",
                ("auto_reply".to_string(), true, vec![("auto_reply".to_string(), None)])
            ),
        ]
    );
    assert_eq!(outcomes[0].3, outcomes[1].3, "the reply and the auto-reply share a thread");

    // The event log from the command line: one JSON object a line.
    let listed = run_cli(&rig.appliance.data_dir(), &["events", "list", "--kind", "reply", "--json"], None);
    let replies: Vec<serde_json::Value> =
        listed.lines().map(|line| serde_json::from_str(line).expect("a JSON object a line")).collect();
    assert_eq!(replies.len(), 2, "{listed}");
    assert_eq!(replies[0]["kind"], "reply");
    assert_eq!(replies[0]["mailbox"], ann.as_str());
    assert_eq!(replies[0]["peer"], bob.as_str());
    assert_eq!(replies[1]["peer"], "lead@dest.test");
    assert!(replies[0]["message_id"].as_str().is_some_and(|id| id.ends_with("@mail.grove.test")), "{listed}");
    assert!(replies[0]["at"].as_i64().is_some() && replies[0].get("class").is_none(), "{listed}");
    let since = replies[1]["at"].as_i64().expect("at");
    let args = ["events", "list", "--kind", "reply", "--since", &since.to_string(), "--json"];
    let later = run_cli(&rig.appliance.data_dir(), &args, None);
    let later: Vec<serde_json::Value> = later.lines().map(|l| serde_json::from_str(l).expect("JSON")).collect();
    assert!(later.iter().all(|e| e["at"].as_i64() >= Some(since)) && later.contains(&replies[1]), "{later:?}");
    let mailbox = run_cli(&rig.appliance.data_dir(), &["events", "list", "--mailbox", &bob, "--json"], None);
    assert!(!mailbox.is_empty(), "bob's own events");
    assert!(mailbox.lines().all(|l| l.contains(&format!("\"mailbox\":\"{bob}\""))), "{mailbox}");
    let table = run_cli(&rig.appliance.data_dir(), &["events", "list", "--kind", "auto_reply"], None);
    assert!(table.starts_with("AT") && table.lines().count() == 3, "a header and two rows:\n{table}");
}

#[tokio::test]
async fn a_recipient_suppressed_between_rcpt_and_data_is_refused_at_data() {
    let Some((_dns, rig)) = rig() else { return };
    let ann = rig.address(0).to_string();
    let password = rig.mailboxes[0].1.clone();
    let (row, id) = rig.submit(
        0,
        "busy@dest.test",
        &format!("From: <{ann}>\r\nTo: <busy@dest.test>\r\nSubject: Intro\r\n\r\nHi\r\n"),
    );

    let target: SocketAddr = rig.appliance.smtp_submissions.parse().expect("the submissions address");
    let mut smtp = Wire::from(IpAddr::from([127, 0, 0, 1]), target).await.into_tls(tls_config(&rig.appliance)).await;
    assert_eq!(smtp.smtp_reply().await.0, 220);
    assert_eq!(smtp.smtp("EHLO client.test").await.0, 250);
    assert_eq!(smtp.smtp(&format!("AUTH PLAIN {}", b64(&format!("\0{ann}\0{password}")))).await.0, 235);
    assert_eq!(smtp.smtp(&format!("MAIL FROM:<{ann}>")).await.0, 250);
    assert_eq!(smtp.smtp("RCPT TO:<busy@dest.test>").await.0, 250, "not suppressed yet");

    // Meanwhile the lead answers "take me off your list" on port 25: suppressed.
    let removal = format!(
        "From: <busy@dest.test>\r\nTo: <{ann}>\r\nSubject: Re: Intro\r\nIn-Reply-To: <{id}>\r\n\r\n\
         Please take me off your list.\r\n"
    );
    assert!(send_raw(&rig.inbound(), "busy@dest.test", &ann, &removal).0);
    assert_eq!(rig.suppression("busy@dest.test").as_deref(), Some("reply"));

    assert_eq!(smtp.smtp("DATA").await.0, 354);
    smtp.send(
        "From: <ANN>\r\nTo: <busy@dest.test>\r\nSubject: Follow-up\r\n\r\nAny news?\r\n.".replace("ANN", &ann).as_str(),
    )
    .await;
    let (code, line) = smtp.smtp_reply().await;
    assert!(code == 550 && line.contains("5.7.1") && line.contains("busy@dest.test is suppressed"), "{line}");
    let rows: i64 = open(&rig.db)
        .query_row("SELECT count(*) FROM queue WHERE recipient = 'busy@dest.test'", [], |r| r.get(0))
        .expect("count");
    assert_eq!(rows, 1, "only the first message (row {row}) was ever queued");
}
