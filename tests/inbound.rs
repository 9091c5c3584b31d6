//! Inbound mail end to end: the real binary as the MX of its domains, driven by real peers.
//!
//! - swaks to the inbound port: a local mailbox (also `user+tag@`, and `postmaster@` at the role mailbox) gets 250 and
//!   the message is in its INBOX with `Authentication-Results` and `Received` headers; an unknown
//!   local user gets 550 5.1.1, another domain 554 5.7.1 (never a relay), an oversize message 552;
//!   EHLO offers STARTTLS and no AUTH, and AUTH is refused.
//! - DMARC through Knot: a failing message from a `p=reject` domain is refused with 550 5.7.1, one
//!   from a `p=quarantine` domain lands in Spam, and one from 127.0.0.1 whose domain's SPF
//!   authorizes it gets `spf=pass` and `dmarc=pass`.
//! - DKIM: a message the appliance signed (submitted to an external address and captured at a
//!   Postfix MX) comes back through that Postfix, relayed to the inbound port, as `dkim=pass`
//!   and `dmarc=pass`; the same message with its body changed gets `dkim=fail`.
//! - Classification: a reply to a submitted message is linked to it (`reply`), an out-of-office
//!   answer is an `auto_reply`, a removal request suppresses the sender, an ARF report is a
//!   `complaint` with suppression, and a real Postfix DSN (its error transport refusing a
//!   recipient after accepting the message) turns the delivered queue row into a hard bounce.
//!
//! - Aliases and catch-all: Postfix delivers mail for an alias with two targets in one
//!   transaction (one 250) and each target's INBOX gets one copy; a catch-all takes unknown users,
//!   a mailbox's own address still beats it, and without one unknown users get 550 5.1.1. The
//!   alias page adds, refuses (with the typed input kept), removes, and answers 404 to another
//!   workspace.
//! - `[smtp] inbound_dmarc_enforce = false` files `p=reject` failures to Spam instead.
//! - ARC: a chain sealed by dkimpy's `arc_sign` is `arc=pass`, the same message changed after
//!   sealing `arc=fail`, none `arc=none`; a trusted sealer (`[smtp] arc_trusted_sealers`) rescues
//!   a DMARC `p=reject` failure, an untrusted one does not.
//! - Bad input: a 50 MB message against the default 25 MB limit gets 552 5.3.4 and stores
//!   nothing; malformed MIME (broken boundaries, bad base64, a header without a colon, NUL bytes,
//!   8-bit garbage in headers, 200 nested multiparts, no header) is stored whole and fetched over
//!   IMAP (ENVELOPE, BODYSTRUCTURE, BODY[]) byte for byte; BDAT (not advertised) is refused.
//! - An IMAP client in IDLE is woken at once by inbound mail and by mail from another local
//!   mailbox, through the change signal alone (the appliance runs with IDLE's periodic re-check
//!   off).
//!
//! Postfix reaches the appliance through its transport table (`grove.test` → the inbound port):
//! it cannot ask the tests' DNS server, which listens on a port of its own.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use common::cli;
use common::mail_rig::*;
use common::peers::{Dns, PostfixMx, Zone};

#[test]
fn the_mx_accepts_mail_for_local_mailboxes_only() {
    // Knot answers at once for names it does not serve; a dead resolver would make every
    // SPF/DKIM/DMARC lookup wait for its timeout.
    if !(common::have_peer("swaks") && Dns::available()) {
        return;
    }
    let dns = Dns::start(&base_zones());
    let rig = Rig::start(Some(&dns), None);
    let inbound = rig.inbound();
    let (ann, first) = (rig.address(0).to_string(), rig.mailbox_id(0));

    let (ok, log) = swaks(&[
        "--server",
        &inbound,
        "--tls",
        "--from",
        "lead@example.net",
        "--to",
        &ann,
        "--header",
        "Subject: Hello there",
    ]);
    assert!(ok && log.contains("250 2.0.0 Message accepted"), "STARTTLS delivery to a mailbox:\n{log}");
    let inbox = rig.folder(first, "INBOX");
    assert_eq!(inbox.len(), 1, "the message is in the INBOX");
    let results = header_values(&inbox[0].body, "Authentication-Results");
    assert_eq!(results.len(), 1, "{}", inbox[0].body);
    assert!(results[0].starts_with("mail.grove.test; spf="), "{results:?}");
    assert!(results[0].contains("; dkim=none; arc=none smtp.remote-ip=127.0.0.1; dmarc="), "{results:?}");
    let received = header_values(&inbox[0].body, "Received");
    assert!(received[0].contains("by mail.grove.test (InboxGrove) with ESMTPS"), "{received:?}");
    assert!(inbox[0].body.contains("Subject: Hello there"));

    let replies = dialogue(&inbound, &["EHLO client.test", "AUTH PLAIN AGFubgBzZWNyZXQ=", "QUIT"]);
    assert!(
        replies[1].contains("STARTTLS") && !replies[1].contains("AUTH"),
        "EHLO offers STARTTLS, no AUTH: {replies:?}"
    );
    assert!(replies[2].starts_with("502 5.5.1"), "AUTH is refused: {replies:?}");

    let local_part = ann.split_once('@').expect("address").0;
    for to in [format!("{local_part}+campaign-7@{DOMAIN}"), format!("postmaster@{DOMAIN}")] {
        let (ok, log) = swaks(&["--server", &inbound, "--from", "lead@example.net", "--to", &to]);
        assert!(ok, "{to} is accepted:\n{log}");
    }
    let first_of_domain = rig.mailboxes.iter().map(|m| m.2).min().expect("mailboxes");
    assert_eq!(first_of_domain, first, "mailboxes are listed in creation order");
    assert_eq!(rig.folder(first, "INBOX").len(), 2, "plus-addressing reaches the mailbox");
    let postmaster: i64 = open(&rig.db)
        .query_row("SELECT id FROM mailboxes WHERE address = ?1 AND role = 1", [format!("postmaster@{DOMAIN}")], |r| {
            r.get(0)
        })
        .expect("the domain's role mailbox");
    assert_eq!(rig.folder(postmaster, "INBOX").len(), 1, "postmaster@ reaches the dedicated role mailbox");

    let refusals = [
        (format!("nobody@{DOMAIN}"), "550 5.1.1"),
        ("someone@elsewhere.test".to_string(), "554 5.7.1"),
        (format!("someone@{DOMAIN}.evil.test"), "554 5.7.1"),
    ];
    for (to, code) in refusals {
        let (ok, log) = swaks(&["--server", &inbound, "--from", "lead@example.net", "--to", &to]);
        assert!(!ok && log.contains(&format!("<** {code}")), "{to} must get {code}:\n{log}");
    }

    let big = "x".repeat(100);
    let body = vec![big.as_str(); MAX_MESSAGE_SIZE / 100 + 100].join("\r\n");
    let (ok, log) = send_raw(&inbound, "lead@example.net", &ann, &format!("Subject: big\r\n\r\n{body}\r\n"));
    assert!(!ok && log.contains("<** 552 5.3.4"), "oversize must get 552:\n{}", &log[log.len().saturating_sub(2000)..]);
    assert_eq!(rig.folder(first, "INBOX").len(), 2, "nothing more was stored");
    assert!(rig.events("reply").is_empty(), "mail from strangers is stored, not counted as replies");
}

#[test]
fn dmarc_reject_is_refused_and_quarantine_goes_to_spam() {
    if !(common::have_peer("swaks") && Dns::available()) {
        return;
    }
    let dns = Dns::start(&base_zones());
    let rig = Rig::start(Some(&dns), None);
    let (ann, first) = (rig.address(0).to_string(), rig.mailbox_id(0));

    let (ok, log) = swaks(&["--server", &rig.inbound(), "--from", "ceo@strict.test", "--to", &ann]);
    assert!(!ok && log.contains("<** 550 5.7.1"), "p=reject failure must be refused:\n{log}");

    let (ok, log) = swaks(&["--server", &rig.inbound(), "--from", "ceo@quarantine.test", "--to", &ann]);
    assert!(ok, "p=quarantine failure is accepted:\n{log}");
    assert!(rig.folder(first, "INBOX").is_empty(), "nothing in the INBOX");
    let spam = rig.folder(first, "Spam");
    assert_eq!(spam.len(), 1, "filed to Spam");
    let results = header_values(&spam[0].body, "Authentication-Results").join(" ");
    for expected in ["spf=fail", "dmarc=fail", "header.from=quarantine.test", "policy.dmarc=quarantine"] {
        assert!(results.contains(expected), "missing {expected}: {results}");
    }

    // A domain whose SPF authorizes 127.0.0.1 passes SPF, and so DMARC (aligned, strict), even
    // under p=reject and without a DKIM signature.
    let (ok, log) = swaks(&["--server", &rig.inbound(), "--from", "ceo@partner.test", "--to", &ann]);
    assert!(ok, "an SPF pass is accepted:\n{log}");
    let inbox = rig.folder(first, "INBOX");
    assert_eq!(inbox.len(), 1, "filed to the INBOX");
    let results = header_values(&inbox[0].body, "Authentication-Results").join(" ");
    for expected in
        ["spf=pass (", "smtp.mailfrom=ceo@partner.test;", "dkim=none", "dmarc=pass", "header.from=partner.test"]
    {
        assert!(results.contains(expected), "missing {expected}: {results}");
    }
}

#[test]
fn appliance_signed_mail_verifies_through_postfix_and_a_forged_copy_fails() {
    let Some((_dns, mx, rig)) = postfix_rig(&[]) else {
        return;
    };
    let (bob, second) = (rig.address(1).to_string(), rig.mailbox_id(1));

    rig.submit_and_deliver(0, "user@dest.test", "Signed for the round trip");
    let captured = mx.wait_for(1, WAIT);
    let signed = String::from_utf8_lossy(&captured[0]).replace("\r\n", "\n").replace('\n', "\r\n");
    assert!(signed.contains("DKIM-Signature:") && signed.contains("d=grove.test"), "signed:\n{signed}");

    // Back through Postfix, which relays it to the inbound port.
    let (ok, log) = send_raw(&format!("127.0.0.2:{}", mx.port), "user@dest.test", &bob, &signed);
    assert!(ok, "Postfix accepts the message for {bob}:\n{log}");
    let inbox = rig.wait_for_mail(second, "INBOX", 1);
    let received = header_values(&inbox[0].body, "Received");
    assert!(
        received[0].starts_with("from mx.peer.test ") && received[1].contains("by mx.peer.test (Postfix)"),
        "{received:?}"
    );
    let results = header_values(&inbox[0].body, "Authentication-Results");
    assert_eq!(results.len(), 1, "exactly our Authentication-Results:\n{}", inbox[0].body);
    assert!(
        results[0].contains("dkim=pass") && results[0].contains("header.d=grove.test"),
        "{results:?}\n{mx_log}",
        mx_log = mx.log()
    );
    assert!(results[0].contains("dmarc=pass"), "{results:?}");

    let forged = signed.replacen("a short note from", "a LONG note from", 1);
    assert_ne!(forged, signed, "the body changed");
    let (ok, log) = send_raw(&rig.inbound(), "user@dest.test", &bob, &forged);
    assert!(ok, "{log}");
    let inbox = rig.folder(second, "INBOX");
    assert_eq!(inbox.len(), 2);
    let results = header_values(&inbox[1].body, "Authentication-Results").join(" ");
    assert!(results.contains("dkim=fail") && !results.contains("dkim=pass"), "{results}");
}

#[test]
fn replies_auto_replies_complaints_and_bounces_are_classified() {
    let Some((_dns, mx, rig)) = postfix_rig(&[("gone.test", "5.1.1 mailbox unavailable")]) else {
        return;
    };
    let inbound = rig.inbound();
    let (ann, first) = (rig.address(0).to_string(), rig.mailbox_id(0));

    // A reply, linked to the submitted message by In-Reply-To.
    let (lead_row, lead_id) = rig.submit_and_deliver(0, "lead@dest.test", "Quick question");
    let sent = rig.messages_row(&lead_id);
    let reply = format!(
        "From: Lead <lead@dest.test>\r\nTo: <{ann}>\r\nSubject: Re: Quick question\r\n\
         Message-ID: <reply-1@dest.test>\r\nIn-Reply-To: <{lead_id}>\r\nReferences: <{lead_id}>\r\n\r\n\
         Sounds interesting, call me on Tuesday.\r\n\r\nOn Mon, Ann <{ann}> wrote:\r\n> Hello\r\n"
    );
    assert!(send_raw(&inbound, "lead@dest.test", &ann, &reply).0);
    let inbox = rig.folder(first, "INBOX");
    let stored = inbox.last().expect("the reply");
    assert_eq!((stored.answers_message, stored.classification.as_str()), (Some(sent), "personal"));
    assert_eq!(rig.events("reply"), [("lead@dest.test".to_string(), Some(lead_row), "Re: Quick question".to_string())]);

    // An out-of-office answer.
    let away = format!(
        "From: Lead <lead@dest.test>\r\nTo: <{ann}>\r\nSubject: Automatic reply: Quick question\r\n\
         Auto-Submitted: auto-replied\r\nIn-Reply-To: <{lead_id}>\r\n\r\nI am out of the office until Monday.\r\n"
    );
    assert!(send_raw(&inbound, "lead@dest.test", &ann, &away).0);
    let stored = rig.folder(first, "INBOX").pop().expect("the auto-reply");
    assert_eq!(stored.classification, "auto_reply");
    assert_eq!(stored.thread_id, inbox.last().and_then(|reply| reply.thread_id), "same thread as the reply");
    assert_eq!(rig.events("auto_reply").len(), 1);
    assert_eq!(rig.events("reply").len(), 1, "an auto-reply is no reply");

    // A removal request.
    let (_, other_id) = rig.submit_and_deliver(0, "busy@dest.test", "Intro");
    let removal = format!(
        "From: <busy@dest.test>\r\nTo: <{ann}>\r\nSubject: Re: Intro\r\nIn-Reply-To: <{other_id}>\r\n\r\n\
         Please take me off your list.\r\n"
    );
    assert!(send_raw(&inbound, "busy@dest.test", &ann, &removal).0);
    assert_eq!(rig.events("unsubscribe_request").len(), 1);
    assert_eq!(rig.suppression("busy@dest.test").as_deref(), Some("reply"));

    // An ARF complaint about a delivered message, sent to abuse@.
    let (complained_row, complained_id) = rig.submit_and_deliver(0, "annoyed@dest.test", "Still interested?");
    let arf = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/arf/abuse.eml"))
        .expect("the ARF fixture")
        .replace("annoyed@example.net", "annoyed@dest.test")
        .replace("z9y8x7w6v5@mail.grove.test", &complained_id)
        .replace("ann@grove.test", &ann);
    assert!(send_raw(&inbound, "feedback@fbl.example.net", &format!("abuse@{DOMAIN}"), &arf).0);
    assert_eq!(
        rig.events("complaint").iter().map(|(to, row, _)| (to.as_str(), *row)).collect::<Vec<_>>(),
        [("annoyed@dest.test", Some(complained_row))]
    );
    assert_eq!(rig.suppression("annoyed@dest.test").as_deref(), Some("complaint"));

    // Postfix accepts mail for gone.test, then its error transport bounces it: a real Postfix DSN
    // comes back to the sending mailbox through the inbound port.
    let (lost_row, _) = rig.submit_and_deliver(0, "lost@gone.test", "Are you there?");
    let (status, class) = rig.wait_for_status(lost_row, "bounced");
    assert_eq!((status.as_str(), class.as_deref()), ("bounced", Some("hard")), "a late hard bounce");
    let bounces = rig.events("bounced");
    assert_eq!(
        bounces.len(),
        1,
        "{bounces:?}; queue row events: {:?}; Postfix log:\n{}",
        rig.row_events(lost_row),
        mx.log()
    );
    assert_eq!((bounces[0].0.as_str(), bounces[0].1), ("lost@gone.test", Some(lost_row)));
    assert!(bounces[0].2.starts_with("hard 5.1.1"), "{bounces:?}");
    assert_eq!(rig.suppression("lost@gone.test").as_deref(), Some("hard_bounce"));
    let dsn = rig.folder(first, "INBOX").pop().expect("the DSN");
    assert_eq!(dsn.classification, "dsn");
    assert!(dsn.body.contains("Undelivered Mail Returned to Sender"), "a Postfix DSN:\n{}", dsn.body);
    assert_eq!(rig.queue_row(lead_row).0, "delivered", "other rows are untouched");
}

/// A 5.7.1 refusal that names a blocklist is `block` whether Postfix refuses the recipient while
/// the appliance delivers, or accepts the message and later sends a DSN with the same refusal;
/// either way it is no hard bounce and suppresses nobody.
#[test]
fn a_5_7_1_refusal_has_the_same_class_during_delivery_and_in_a_later_dsn() {
    let refusal = "5.7.1 Service unavailable; client host blocked using zen.spamhaus.org";
    let Some((_dns, mx, rig)) = postfix_rig(&[("listed.test", refusal)]) else {
        return;
    };
    let (live_row, _) = rig.submit_and_deliver(0, "blocked@dest.test", "Refused at RCPT");
    let live = rig.wait_for_status(live_row, "bounced");
    let (late_row, _) = rig.submit_and_deliver(0, "lead@listed.test", "Refused after the queue");
    let late = rig.wait_for_status(late_row, "bounced");
    assert_eq!(live, ("bounced".to_string(), Some("block".to_string())), "during delivery; log:\n{}", mx.log());
    assert_eq!(late, live, "in the DSN, as during delivery; log:\n{}", mx.log());
    let events = rig.events("bounced");
    assert_eq!(events.iter().map(|e| e.1).collect::<Vec<_>>(), [Some(live_row), Some(late_row)], "{events:?}");
    assert!(events[1].2.contains("5.7.1"), "{events:?}");
    for address in ["blocked@dest.test", "lead@listed.test"] {
        assert_eq!(rig.suppression(address), None, "a block is no hard bounce: {address}");
    }
    let dsn = rig.folder(rig.mailbox_id(0), "INBOX").into_iter().filter(|m| m.classification == "dsn").count();
    assert_eq!(dsn, 2, "a DSN for each: ours for the live refusal, Postfix's for the later one");
}

/// The Postfix log lines of deliveries to `to` that the next hop accepted.
fn postfix_sent_to(mx: &PostfixMx, to: &str) -> Vec<String> {
    mx.log()
        .lines()
        .filter(|l| l.contains(&format!("to=<{to}>")) && l.contains("status=sent"))
        .map(str::to_string)
        .collect()
}

#[test]
fn aliases_deliver_once_to_each_target_and_the_catch_all_takes_unknown_users() {
    let Some((_dns, mx, rig)) = postfix_rig(&[]) else {
        return;
    };
    let data = rig.appliance.data_dir();
    let inbound = rig.inbound();
    let (ann, bob) = (rig.address(0).to_string(), rig.address(1).to_string());
    let (ann_id, bob_id) = (rig.mailbox_id(0), rig.mailbox_id(1));
    let sales = format!("sales@{DOMAIN}");

    run_cli(&data, &["alias", "add", &sales, "--to", &format!("{ann}, {bob}")], None);
    let listed = run_cli(&data, &["alias", "list", "--domain", DOMAIN], None);
    let expected_targets = {
        let mut both = [ann.clone(), bob.clone()];
        both.sort();
        both.join(",")
    };
    assert_eq!(listed.trim(), format!("{sales}\t{expected_targets}"), "alias list");
    let refused = cli(&data, &["alias", "add", &ann, "--to", &bob], None);
    assert!(!refused.status.success(), "an alias cannot shadow a mailbox");
    assert!(String::from_utf8_lossy(&refused.stderr).contains("is a mailbox"), "{refused:?}");

    // Through Postfix: one RCPT, one 250, one stored copy in each target's INBOX.
    let message = "From: Lead <lead@dest.test>\r\nTo: <sales@grove.test>\r\nSubject: Pricing\r\n\
                   Message-ID: <alias-1@dest.test>\r\n\r\nWhat does it cost?\r\n";
    let (ok, log) = send_raw(&format!("127.0.0.2:{}", mx.port), "lead@dest.test", &sales, message);
    assert!(ok, "Postfix accepts mail for the alias:\n{log}");
    let ann_inbox = rig.wait_for_mail(ann_id, "INBOX", 1);
    let bob_inbox = rig.wait_for_mail(bob_id, "INBOX", 1);
    assert!(ann_inbox[0].body.contains("Subject: Pricing") && bob_inbox[0].body.contains("Subject: Pricing"));
    let sent = wait_until("Postfix's delivery record", || Some(postfix_sent_to(&mx, &sales)).filter(|l| !l.is_empty()));
    assert_eq!(sent.len(), 1, "one transaction to the appliance: {sent:?}");
    assert!(sent[0].contains("250 2.0.0 Message accepted"), "{sent:?}");
    assert_eq!((rig.folder(ann_id, "INBOX").len(), rig.folder(bob_id, "INBOX").len()), (1, 1), "one copy each");

    // The alias and one of its targets in one transaction: still one copy per mailbox.
    let (ok, log) = swaks(&["--server", &inbound, "--from", "lead@dest.test", "--to", &format!("{sales},{ann}")]);
    assert!(ok, "{log}");
    assert_eq!((rig.folder(ann_id, "INBOX").len(), rig.folder(bob_id, "INBOX").len()), (2, 2));

    // No catch-all: unknown users are refused.
    let nobody = format!("nobody@{DOMAIN}");
    let (ok, log) = swaks(&["--server", &inbound, "--from", "lead@dest.test", "--to", &nobody]);
    assert!(!ok && log.contains("<** 550 5.1.1"), "{log}");

    // A catch-all takes unknown users; a mailbox's own address still reaches the mailbox.
    run_cli(&data, &["alias", "catch-all", DOMAIN, &bob], None);
    let (ok, log) = swaks(&["--server", &inbound, "--from", "lead@dest.test", "--to", &nobody]);
    assert!(ok, "the catch-all accepts:\n{log}");
    let bob_inbox = rig.folder(bob_id, "INBOX");
    assert_eq!(bob_inbox.len(), 3);
    assert!(bob_inbox[2].body.contains(&format!("To: {nobody}")), "{}", bob_inbox[2].body);
    let (ok, log) = swaks(&["--server", &inbound, "--from", "lead@dest.test", "--to", &ann]);
    assert!(ok, "{log}");
    assert_eq!(
        (rig.folder(ann_id, "INBOX").len(), rig.folder(bob_id, "INBOX").len()),
        (3, 3),
        "mailbox beats catch-all"
    );
    let (ok, log) = swaks(&["--server", &inbound, "--from", "lead@dest.test", "--to", "someone@elsewhere.test"]);
    assert!(!ok && log.contains("<** 554 5.7.1"), "a catch-all is no relay:\n{log}");

    // Removing both: back to 550.
    run_cli(&data, &["alias", "catch-all", DOMAIN, "none"], None);
    run_cli(&data, &["alias", "remove", &sales], None);
    for to in [&nobody, &sales] {
        let (ok, log) = swaks(&["--server", &inbound, "--from", "lead@dest.test", "--to", to]);
        assert!(!ok && log.contains("<** 550 5.1.1"), "{to}:\n{log}");
    }
    let audited: Vec<String> = open(&rig.db)
        .prepare("SELECT action FROM audit_log WHERE action LIKE 'alias.%' OR action = 'domain.catch_all' ORDER BY id")
        .and_then(|mut s| s.query_map([], |r| r.get(0))?.collect())
        .expect("audit");
    assert_eq!(audited, ["alias.add", "domain.catch_all", "domain.catch_all", "alias.remove"]);
}

#[tokio::test]
async fn the_alias_page_adds_refuses_with_the_input_kept_removes_and_walls_off_workspaces() {
    let rig = Rig::start(None, None);
    let browser = sign_in(&rig).await;
    let (ann, bob) = (rig.address(0).to_string(), rig.address(1).to_string());
    let domain: i64 = open(&rig.db).query_row("SELECT id FROM domains", [], |r| r.get(0)).expect("domain");
    let page_url = format!("/w/1/domains/{domain}/aliases");
    let shown = browser.get(&format!("/w/1/domains/{domain}")).await;
    assert!(shown.body.contains(&page_url), "the domain page links the alias page");

    let page = browser.get(&page_url).await;
    assert_eq!(page.status, 200, "{}", page.body);
    assert!(page.body.contains(&format!("postmaster@{DOMAIN}")) && page.body.contains(&ann), "role addresses shown");
    let added =
        browser.post_form(&page_url, &page.body, &[("local_part", "Sales"), ("to", &format!("{ann},{bob}"))]).await;
    assert_eq!(added.status, 200, "{}", added.body);
    assert!(added.body.contains(&format!("sales@{DOMAIN}")), "listed: {}", added.body);

    // Refusals re-render with the error and the typed input.
    let ann_local = ann.split('@').next().expect("local part").to_string();
    for (local_part, to, error) in [
        ("sales", bob.as_str(), "already an alias"),
        (ann_local.as_str(), bob.as_str(), "is a mailbox"),
        ("support", "stranger@elsewhere.test", "not a mailbox of this workspace"),
        ("bad+tag", bob.as_str(), "cannot be an alias"),
        ("", bob.as_str(), "Enter an alias."),
    ] {
        let refused = browser.post_form(&page_url, &page.body, &[("local_part", local_part), ("to", to)]).await;
        assert_eq!(refused.status, 422, "{local_part}: {}", refused.body);
        let errors = common::select_text(&refused.body, "#alias-error");
        assert!(errors.first().is_some_and(|e| e.contains(error) && !e.contains('`')), "{local_part}: {errors:?}");
        assert_eq!(common::select_attr(&refused.body, "input[name=local_part]", "value"), [local_part]);
        assert_eq!(common::select_attr(&refused.body, "input[name=to]", "value"), [to]);
    }
    let refused =
        browser.post_form(&format!("/w/1/domains/{domain}/catch-all"), &page.body, &[("mailbox", "x@y.test")]).await;
    assert_eq!(refused.status, 422);
    assert_eq!(common::select_attr(&refused.body, "input[name=mailbox]", "value"), ["x@y.test"]);
    let set = browser.post_form(&format!("/w/1/domains/{domain}/catch-all"), &page.body, &[("mailbox", &bob)]).await;
    assert_eq!(common::select_text(&set.body, "#catch-all-current"), [bob.as_str()]);

    // A second workspace with a mailbox of its own: not a target here, and it cannot see ours.
    let home = browser.get("/workspaces").await;
    let other = browser.post_form("/workspaces", &home.body, &[("name", "Other")]).await;
    let ws2: i64 =
        other.url.split("/w/").nth(1).and_then(|r| r.split('/').next()).and_then(|id| id.parse().ok()).expect("ws");
    let form = browser.get(&format!("/w/{ws2}/domains")).await;
    let added = browser
        .post_form(&format!("/w/{ws2}/domains"), &form.body, &[("name", "other.test"), ("dkim", "ed25519")])
        .await;
    let create = common::select_attr(&added.body, "form[action$='/mailboxes']", "action").remove(0);
    let issued = browser.post_form(&create, &added.body, &[("count", "1")]).await;
    assert_eq!(issued.status, 200, "{}", issued.body);
    let foreign: String = open(&rig.db)
        .query_row("SELECT address FROM mailboxes WHERE workspace_id = ?1 AND role = 0", [ws2], |r| r.get(0))
        .expect("the other workspace's mailbox");
    let refused = browser.post_form(&page_url, &page.body, &[("local_part", "partners"), ("to", &foreign)]).await;
    assert_eq!(refused.status, 422, "another workspace's mailbox is no target");
    let alias: i64 = open(&rig.db).query_row("SELECT id FROM aliases", [], |r| r.get(0)).expect("alias");
    assert_eq!(browser.get(&format!("/w/{ws2}/domains/{domain}/aliases")).await.status, 404);
    let remove = format!("/w/{ws2}/domains/{domain}/aliases/{alias}/remove");
    assert_eq!(browser.post_form(&remove, &page.body, &[]).await.status, 404);

    let page = browser.get(&page_url).await;
    let action = common::select_attr(&page.body, "#aliases form", "action").remove(0);
    let removed = browser.post_form(&action, &page.body, &[]).await;
    assert_eq!(removed.status, 200);
    assert!(!removed.body.contains(&format!("<code>sales@{DOMAIN}</code>")), "removed: {}", removed.body);
    let audited: i64 = open(&rig.db)
        .query_row(
            "SELECT count(*) FROM audit_log WHERE action IN ('alias.add', 'alias.remove', 'domain.catch_all')",
            [],
            |r| r.get(0),
        )
        .expect("audit");
    assert_eq!(audited, 3);
}

#[test]
fn dmarc_reject_failures_go_to_spam_when_enforcement_is_off() {
    if !(common::have_peer("swaks") && Dns::available()) {
        return;
    }
    let dns = Dns::start(&base_zones());
    let rig = Rig::start_with(Some(&dns), None, &[("INBOXGROVE_SMTP__INBOUND_DMARC_ENFORCE", "false")]);
    let (ann, first) = (rig.address(0).to_string(), rig.mailbox_id(0));
    for from in ["ceo@strict.test", "ceo@quarantine.test"] {
        let (ok, log) = swaks(&["--server", &rig.inbound(), "--from", from, "--to", &ann]);
        assert!(ok, "{from}: accepted when enforcement is off:\n{log}");
    }
    assert!(rig.folder(first, "INBOX").is_empty(), "nothing in the INBOX");
    let spam = rig.folder(first, "Spam");
    assert_eq!(spam.len(), 2, "both filed to Spam");
    let results = header_values(&spam[0].body, "Authentication-Results").join(" ");
    for expected in ["spf=fail", "dmarc=fail", "header.from=strict.test", "policy.dmarc=reject"] {
        assert!(results.contains(expected), "missing {expected}: {results}");
    }
}

/// An RSA key for an ARC sealer: (PKCS#1 PEM file, the DNS key record's `p=` value).
fn sealer_key(dir: &Path) -> (PathBuf, String) {
    let key = dir.join("sealer.pem");
    let status = Command::new("openssl")
        .args(["genrsa", "-traditional", "-out"])
        .arg(&key)
        .arg("2048")
        .stderr(std::process::Stdio::null())
        .status()
        .expect("openssl genrsa");
    assert!(status.success(), "openssl genrsa");
    let public = Command::new("openssl")
        .args(["rsa", "-pubout", "-outform", "DER", "-in"])
        .arg(&key)
        .output()
        .expect("openssl rsa");
    assert!(public.status.success(), "openssl rsa -pubout");
    use base64::Engine;
    (key, base64::engine::general_purpose::STANDARD.encode(public.stdout))
}

/// The message with an ARC set added by dkimpy's `arc_sign` for `domain` (selector `arc`),
/// sealing the `Authentication-Results` of `domain` the message carries.
fn arc_seal(raw: &str, domain: &str, key: &Path) -> String {
    const SEAL: &str = "import sys, dkim\n\
        msg = sys.stdin.buffer.read()\n\
        key = open(sys.argv[3], 'rb').read()\n\
        heads = [b'from', b'to', b'subject', b'date', b'message-id']\n\
        sig = dkim.arc_sign(msg, sys.argv[2].encode(), sys.argv[1].encode(), key, sys.argv[1].encode(), include_headers=heads)\n\
        assert sig, 'dkimpy made no ARC set'\n\
        sys.stdout.buffer.write(b''.join(sig) + msg)\n";
    use std::io::Write;
    let python = common::peers::venv_python().expect("the peer venv");
    let mut child = Command::new(python)
        .args(["-c", SEAL, domain, "arc"])
        .arg(key)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("run dkimpy");
    child.stdin.take().expect("stdin").write_all(raw.as_bytes()).expect("write the message");
    let output = child.wait_with_output().expect("dkimpy output");
    assert!(output.status.success(), "arc_sign: {}", String::from_utf8_lossy(&output.stderr));
    String::from_utf8(output.stdout).expect("utf-8").replace("\r\n", "\n").replace('\n', "\r\n")
}

#[test]
fn arc_chains_are_verified_and_a_trusted_sealer_rescues_a_dmarc_failure() {
    if !(common::have_peer("swaks")
        && common::have_peer("openssl")
        && Dns::available()
        && common::peers::dkim_available())
    {
        return;
    }
    let keys = tempfile::tempdir().expect("key dir");
    let (key, public) = sealer_key(keys.path());
    let mut zones = base_zones();
    for sealer in ["lists.test", "other-list.test"] {
        let record = common::peers::txt_record("arc._domainkey", &format!("v=DKIM1; k=rsa; p={public}"));
        zones.push(Zone { name: sealer.into(), records: vec![record] });
    }
    let dns = Dns::start(&zones);
    let rig = Rig::start_with(Some(&dns), None, &[("INBOXGROVE_SMTP__ARC_TRUSTED_SEALERS", "[\"Lists.test\"]")]);
    let (ann, first) = (rig.address(0).to_string(), rig.mailbox_id(0));
    let message = |from: &str, sealer: &str, id: &str| {
        format!(
            "Authentication-Results: {sealer}; spf=pass smtp.mailfrom={from}; dkim=none\r\n\
             From: <{from}>\r\nTo: <{ann}>\r\nSubject: Through the list\r\nDate: Mon, 23 Nov 2026 04:00:00 +0000\r\n\
             Message-ID: <{id}@{sealer}>\r\n\r\nPosted to the list.\r\n"
        )
    };
    let results_of = |stored: &Stored| header_values(&stored.body, "Authentication-Results")[0].clone();

    // A chain from a sealer with no DMARC at stake: arc=pass.
    let sealed = arc_seal(&message("member@lists.test", "lists.test", "a1"), "lists.test", &key);
    assert!(sealed.starts_with("ARC-Seal:") || sealed.contains("\r\nARC-Seal:"), "{sealed}");
    let (ok, log) = send_raw(&rig.inbound(), "bounce@lists.test", &ann, &sealed);
    assert!(ok, "{log}");
    let inbox = rig.folder(first, "INBOX");
    assert!(results_of(&inbox[0]).contains("arc=pass"), "{}", inbox[0].body);

    // The same message with its body changed on the way: arc=fail.
    let tampered = sealed.replacen("Posted to the list.", "Posted to the list, then changed.", 1);
    let (ok, log) = send_raw(&rig.inbound(), "bounce@lists.test", &ann, &tampered);
    assert!(ok, "{log}");
    let inbox = rig.folder(first, "INBOX");
    let results = results_of(&inbox[1]);
    assert!(results.contains("arc=fail") && !results.contains("arc=pass"), "{results}");

    // A message without ARC headers: arc=none.
    let (ok, log) =
        send_raw(&rig.inbound(), "member@lists.test", &ann, &message("member@lists.test", "lists.test", "a3"));
    assert!(ok, "{log}");
    assert!(results_of(&rig.folder(first, "INBOX")[2]).contains("arc=none"));

    // A p=reject author relayed by a list: a trusted sealer's passing chain rescues it...
    let sealed = arc_seal(&message("ceo@strict.test", "lists.test", "a4"), "lists.test", &key);
    let (ok, log) = send_raw(&rig.inbound(), "bounce@lists.test", &ann, &sealed);
    assert!(ok, "a trusted sealer's chain overrides the DMARC failure:\n{log}");
    let inbox = rig.folder(first, "INBOX");
    let results = results_of(&inbox[3]);
    assert!(results.contains("arc=pass") && results.contains("dmarc=fail"), "{results}");
    // ...an untrusted sealer's does not.
    let sealed = arc_seal(&message("ceo@strict.test", "other-list.test", "a5"), "other-list.test", &key);
    let (ok, log) = send_raw(&rig.inbound(), "bounce@other-list.test", &ann, &sealed);
    assert!(!ok && log.contains("<** 550 5.7.1"), "an untrusted sealer changes nothing:\n{log}");
    assert_eq!(rig.folder(first, "INBOX").len(), 4);
}

/// One SMTP transaction on a raw socket with `data` sent as is (dot-stuffed): the replies to
/// EHLO, MAIL, RCPT, DATA and the final dot (the last one `None` when the server hung up).
fn send_bytes(server: &str, to: &str, data: &[u8]) -> Vec<String> {
    use std::io::{BufRead, BufReader, Write};
    let stream = std::net::TcpStream::connect(server).expect("connect to the inbound port");
    stream.set_read_timeout(Some(WAIT)).expect("read timeout");
    stream.set_write_timeout(Some(WAIT)).expect("write timeout");
    let mut reader = BufReader::new(stream.try_clone().expect("clone stream"));
    let mut writer = stream;
    let mut read_reply = || {
        let mut reply = String::new();
        loop {
            let mut line = String::new();
            if reader.read_line(&mut line).unwrap_or(0) == 0 {
                return reply;
            }
            reply.push_str(&line);
            if line.len() < 4 || line.as_bytes()[3] != b'-' {
                return reply;
            }
        }
    };
    let mut replies = vec![read_reply()];
    for command in [
        "EHLO client.test".to_string(),
        "MAIL FROM:<lead@example.net>".into(),
        format!("RCPT TO:<{to}>"),
        "DATA".into(),
    ] {
        writer.write_all(format!("{command}\r\n").as_bytes()).expect("send a command");
        replies.push(read_reply());
    }
    let mut stuffed = Vec::with_capacity(data.len() + 16);
    for line in data.split_inclusive(|&b| b == b'\n') {
        if line.first() == Some(&b'.') {
            stuffed.push(b'.');
        }
        stuffed.extend_from_slice(line);
    }
    stuffed.extend_from_slice(b".\r\n");
    let _ = writer.write_all(&stuffed);
    replies.push(read_reply());
    let _ = writer.write_all(b"QUIT\r\n");
    replies
}

/// The raw bodies stored in a mailbox's INBOX, oldest first.
fn inbox_bytes(rig: &Rig, mailbox_id: i64) -> Vec<Vec<u8>> {
    open(&rig.db)
        .prepare(
            "SELECT m.body FROM mail m JOIN folders f ON f.id = m.folder_id \
             WHERE f.mailbox_id = ?1 AND f.name = 'INBOX' ORDER BY m.id",
        )
        .and_then(|mut s| s.query_map([mailbox_id], |r| r.get(0))?.collect())
        .expect("inbox bodies")
}

fn mail_rows(rig: &Rig) -> i64 {
    open(&rig.db).query_row("SELECT count(*) FROM mail", [], |r| r.get(0)).expect("count mail")
}

/// Fetches every INBOX message of a mailbox over IMAP (implicit TLS) with Python's imaplib:
/// FLAGS, UID, RFC822.SIZE, ENVELOPE and BODYSTRUCTURE, then BODY.PEEK[] on its own (imaplib
/// splits a response at every literal, and an ENVELOPE may hold some); returns the BODY[] sizes.
fn imap_fetch_all(rig: &Rig, index: usize) -> Vec<usize> {
    const FETCH: &str = "import imaplib, ssl, sys\n\
        m = imaplib.IMAP4_SSL(sys.argv[1], 2993, ssl_context=ssl._create_unverified_context(), timeout=30)\n\
        m.login(sys.argv[2], sys.argv[3])\n\
        typ, data = m.select('INBOX')\n\
        assert typ == 'OK', data\n\
        for i in range(1, int(data[0]) + 1):\n\
        \x20   typ, d = m.fetch(str(i), '(FLAGS UID RFC822.SIZE ENVELOPE BODYSTRUCTURE)')\n\
        \x20   assert typ == 'OK' and d[0], (i, typ, d)\n\
        \x20   typ, d = m.fetch(str(i), '(BODY.PEEK[])')\n\
        \x20   assert typ == 'OK' and isinstance(d[0], tuple), (i, typ, d)\n\
        \x20   print(len(d[0][1]), repr(d[0][0]))\n\
        m.logout()\n";
    let (address, password, _) = &rig.mailboxes[index];
    let output = Command::new("python3")
        .args(["-c", FETCH, &rig.appliance.mail_ip.to_string(), address, password])
        .output()
        .expect("run imaplib");
    assert!(
        output.status.success(),
        "imaplib FETCH failed:\n{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    let text = String::from_utf8_lossy(&output.stdout).into_owned();
    println!("imaplib:\n{text}");
    text.lines().map(|l| l.split_whitespace().next().and_then(|n| n.parse().ok()).expect("a size")).collect()
}

#[test]
fn a_50_mb_message_gets_552_and_nothing_is_stored() {
    // A live DNS server: with a dead one every SPF/DKIM/DMARC lookup waits for its timeout.
    if !Dns::available() {
        return;
    }
    let dns = Dns::start(&base_zones());
    let rig = Rig::start_with(Some(&dns), None, &[("INBOXGROVE_SMTP__MAX_MESSAGE_SIZE", "26214400")]);
    let ann = rig.address(0).to_string();
    let before = mail_rows(&rig);
    let ehlo = dialogue(&rig.inbound(), &["EHLO client.test", "QUIT"]);
    assert!(ehlo[1].contains("SIZE 26214400"), "the default limit is advertised: {ehlo:?}");
    // 50 MB in lines of 1000 bytes, written as fast as the server reads (bounded by WAIT per write).
    let line = format!("{}\r\n", "y".repeat(998));
    let lines = 50 * 1024 * 1024 / line.len() + 1;
    let mut message = b"Subject: huge\r\n\r\n".to_vec();
    message.reserve(lines * line.len());
    for _ in 0..lines {
        message.extend_from_slice(line.as_bytes());
    }
    assert!(message.len() > 50 * 1024 * 1024);
    let started = Instant::now();
    let replies = send_bytes(&rig.inbound(), &ann, &message);
    assert!(replies[4].starts_with("354"), "{replies:?}");
    assert!(replies[5].starts_with("552 5.3.4"), "oversize must get 552 5.3.4: {replies:?}");
    assert!(started.elapsed() < Duration::from_secs(120), "bounded: {:?}", started.elapsed());
    assert_eq!(mail_rows(&rig), before, "nothing stored");
    let replies = send_bytes(&rig.inbound(), &ann, b"Subject: after\r\n\r\nstill alive\r\n");
    assert!(replies[5].starts_with("250"), "the server still works: {replies:?}");
}

#[test]
fn malformed_mime_is_stored_whole_and_readable_over_imap() {
    if !Dns::available() {
        return;
    }
    let dns = Dns::start(&base_zones());
    let rig = Rig::start(Some(&dns), None);
    let (ann, first) = (rig.address(0).to_string(), rig.mailbox_id(0));
    let mut deep = b"Subject: deep\r\nContent-Type: multipart/mixed; boundary=\"b0\"\r\n\r\n".to_vec();
    for level in 1..200 {
        deep.extend_from_slice(
            format!("--b{}\r\nContent-Type: multipart/mixed; boundary=\"b{level}\"\r\n\r\n", level - 1).as_bytes(),
        );
    }
    deep.extend_from_slice(b"--b199\r\nContent-Type: text/plain\r\n\r\nbottom\r\n");
    let samples: Vec<(&str, Vec<u8>)> = vec![
        (
            "broken boundaries",
            b"Subject: broken\r\nMIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=\"abc\"\r\n\r\n\
              --xyz\r\nContent-Type: text/plain\r\n\r\nnot the declared boundary\r\n--abc\r\nContent-Type: text/html\r\n\r\n\
              <p>never closed\r\n"
                .to_vec(),
        ),
        (
            "bad base64",
            b"Subject: b64\r\nMIME-Version: 1.0\r\nContent-Type: application/pdf; name=x.pdf\r\n\
              Content-Transfer-Encoding: base64\r\n\r\n!!!this is *not* base64@@@\r\n====\r\n"
                .to_vec(),
        ),
        ("header without colon", b"Subject: nocolon\r\nThis header line has no colon\r\nFrom: a@b.test\r\n\r\nbody\r\n".to_vec()),
        ("NUL bytes", b"Subject: nul\0byte\r\nX-Nul: a\0b\r\n\r\nbody with \0 a NUL\r\n".to_vec()),
        (
            "8-bit garbage in headers",
            b"Subject: \xff\xfe\x80 garbage \xc3\x28\r\nFrom: \xe9\xe8 <x@y.test>\r\nContent-Type: text/plain; charset=\"\xff\"\r\n\r\n\xfe\xff body\r\n"
                .to_vec(),
        ),
        ("200 nested multiparts", deep),
        ("no header at all", b"just a line of text\r\n".to_vec()),
    ];
    let mut accepted = Vec::new();
    for (what, data) in &samples {
        let before = mail_rows(&rig);
        let replies = send_bytes(&rig.inbound(), &ann, data);
        let last = replies.last().expect("a reply");
        if last.starts_with("250") {
            let stored = inbox_bytes(&rig, first).pop().expect("stored");
            assert!(stored.ends_with(data), "{what}: stored whole");
            accepted.push(stored.len());
        } else {
            assert!(last.starts_with('5'), "{what}: accepted or refused for good: {replies:?}");
            assert_eq!(mail_rows(&rig), before, "{what}: nothing stored");
        }
    }
    assert!(!accepted.is_empty(), "some of the samples are accepted");
    assert_eq!(inbox_bytes(&rig, first).len(), accepted.len(), "one row per accepted message");
    assert_eq!(imap_fetch_all(&rig, 0), accepted, "every stored message is fetched whole over IMAP");

    // BDAT is not advertised: refused, and the session goes on.
    let replies = dialogue(&rig.inbound(), &["EHLO client.test", "BDAT 0 LAST", "NOOP", "QUIT"]);
    assert!(!replies[1].contains("CHUNKING"), "{replies:?}");
    assert!(replies[2].starts_with("502 5.5.1") && replies[3].starts_with("250"), "{replies:?}");
}

#[test]
fn idle_wakes_at_once_for_inbound_and_local_mail() {
    if !Dns::available() {
        return;
    }
    // imaplib IDLEs on INBOX; smtplib delivers (inbound port, then a local mailbox through the
    // submission port); the time from the 250 to the untagged EXISTS is printed per message.
    const IDLE: &str = "import imaplib, smtplib, ssl, sys, time\n\
        host, user, pw, inbound, sub, sender, spw = sys.argv[1:8]\n\
        ctx = ssl._create_unverified_context()\n\
        m = imaplib.IMAP4_SSL(host, 2993, ssl_context=ctx, timeout=30)\n\
        m.login(user, pw)\n\
        m.select('INBOX')\n\
        def wait_exists():\n\
        \x20   while True:\n\
        \x20       line = m.readline()\n\
        \x20       assert line, 'connection closed'\n\
        \x20       if line.endswith(b'EXISTS\\r\\n'): return\n\
        def idle(send):\n\
        \x20   tag = m._new_tag()\n\
        \x20   m.send(tag + b' IDLE\\r\\n')\n\
        \x20   assert m.readline().startswith(b'+'), 'no continuation'\n\
        \x20   send()\n\
        \x20   sent = time.monotonic()\n\
        \x20   wait_exists()\n\
        \x20   print(time.monotonic() - sent, flush=True)\n\
        \x20   m.send(b'DONE\\r\\n')\n\
        \x20   while not m.readline().startswith(tag): pass\n\
        ih, ip = inbound.rsplit(':', 1)\n\
        sh, sp = sub.rsplit(':', 1)\n\
        msg = 'Subject: ping\\r\\n\\r\\nhello\\r\\n'\n\
        for i in range(5):\n\
        \x20   idle(lambda: smtplib.SMTP(ih, int(ip), timeout=30).sendmail('lead@example.net', [user], msg))\n\
        def local():\n\
        \x20   s = smtplib.SMTP(sh, int(sp), timeout=30)\n\
        \x20   s.starttls(context=ctx)\n\
        \x20   s.login(sender, spw)\n\
        \x20   s.sendmail(sender, [user], 'From: ' + sender + '\\r\\n' + msg)\n\
        \x20   s.quit()\n\
        for i in range(5):\n\
        \x20   idle(local)\n\
        m.logout()\n";
    let dns = Dns::start(&base_zones());
    // IDLE's periodic re-check is off: only the change signal can wake the client.
    let rig = Rig::start_with(Some(&dns), None, &[("INBOXGROVE_IDLE_RECHECK_SECS", "0")]);
    let (user, password, _) = &rig.mailboxes[0];
    let (sender, sender_password, _) = &rig.mailboxes[1];
    let mut child = Command::new("python3")
        .args(["-c", IDLE, &rig.appliance.mail_ip.to_string(), user, password, &rig.inbound()])
        .args([&rig.appliance.smtp_submission, sender, sender_password])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("run imaplib");
    let started = Instant::now();
    while child.try_wait().expect("wait").is_none() {
        if started.elapsed() > Duration::from_secs(120) {
            let _ = child.kill();
            panic!("the IDLE client did not finish");
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let output = child.wait_with_output().expect("output");
    let text = String::from_utf8_lossy(&output.stdout).into_owned();
    assert!(output.status.success(), "{text}{}", String::from_utf8_lossy(&output.stderr));
    let waits: Vec<f64> = text.lines().map(|l| l.trim().parse().expect("seconds")).collect();
    println!("IDLE waits (s): {waits:?}");
    assert_eq!(waits.len(), 10, "{text}");
    // With the periodic re-check off, every wake is the change signal's.
    assert!(waits[..5].iter().all(|w| *w < 0.3), "inbound mail wakes IDLE at once: {waits:?}");
    assert!(waits[5..].iter().all(|w| *w < 0.3), "local submission wakes IDLE at once: {waits:?}");
}

/// The mailto form of List-Unsubscribe: the recipient's provider mails
/// `unsubscribe+…@grove.test` from the recipient's address. The appliance accepts it, stores it
/// nowhere and suppresses exactly that recipient; the same address used by anyone else, or a made-up
/// one, changes nothing.
#[test]
fn a_mailto_unsubscribe_from_the_recipient_suppresses_them() {
    let Some((_dns, mx, rig)) = postfix_rig(&[]) else {
        return;
    };
    open(&rig.db).execute("UPDATE workspaces SET list_unsubscribe = 1", []).expect("turn List-Unsubscribe on");
    rig.submit_and_deliver(0, "lead@dest.test", "A short note");
    let delivered = mx.wait_for(1, WAIT);
    // Postfix's mailbox file has LF line ends.
    let raw = String::from_utf8_lossy(delivered.last().expect("the delivered message")).replace('\n', "\r\n");
    let header = header_values(&raw, "List-Unsubscribe").join(" ");
    let start = header.find("<mailto:").unwrap_or_else(|| panic!("a mailto URI in {raw}")) + "<mailto:".len();
    let uri = &header[start..start + header[start..].find('>').expect("end of the URI")];
    let address = uri.split('?').next().expect("the address");
    let local = address.strip_suffix(&format!("@{DOMAIN}")).expect("an address on the From domain");
    assert!(local.starts_with("unsubscribe+") && local.len() <= 64, "{address}");
    let stored_before = mail_rows(&rig);
    let request = format!("From: <lead@dest.test>\r\nTo: <{address}>\r\nSubject: unsubscribe\r\n\r\nunsubscribe\r\n");
    let from_eve = request.replace("lead@dest.test", "eve@dest.test");
    let made_up = format!("unsubscribe+1-1-{}@{DOMAIN}", "0".repeat(20));

    // Someone else using the address, and a made-up address: accepted, nothing changes.
    let (sent, output) = send_raw(&rig.inbound(), "eve@dest.test", address, &from_eve);
    assert!(sent, "{output}");
    let (sent, output) = send_raw(&rig.inbound(), "lead@dest.test", &made_up, &request);
    assert!(sent, "{output}");
    assert_eq!(rig.suppression("lead@dest.test"), None);
    assert_eq!(rig.suppression("eve@dest.test"), None);

    // The recipient's own request: suppressed once, stored nowhere.
    for _ in 0..2 {
        let (sent, output) = send_raw(&rig.inbound(), "lead@dest.test", address, &request);
        assert!(sent, "{output}");
    }
    assert_eq!(rig.suppression("lead@dest.test").as_deref(), Some("unsubscribe"));
    assert_eq!(rig.events("unsubscribed").len(), 1, "{:?}", rig.events("unsubscribed"));
    assert_eq!(mail_rows(&rig), stored_before, "an unsubscribe request is not mail for a mailbox");
}
