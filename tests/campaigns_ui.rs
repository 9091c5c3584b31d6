//! The Campaigns area over HTTP against the real binary, on the injected clock. Two mailboxes
//! of the appliance send; six other mailboxes of it are the leads, so every send is delivered
//! locally at once and the numbers move without any outside peer.
//!
//! Shown: the empty list; the create form refusing mistakes beside their fields with what was
//! typed (422), and its "Add step" and "Add variant" buttons re-rendering it with one block more;
//! the preview rendering a step for a lead as the engine will (a follow-up's `Re:` subject), and
//! warning about a variable the lead lacks and unbalanced spintax; a test send queued for the
//! typed address (and a daily limit refusing one, on the form); start, the counts moving once the
//! clock moves, pause and resume; an edit of the active campaign that appends a step: the leads
//! that got step 1 get steps 2 and 3 and nobody gets step 1 twice, and a sent step cannot be
//! removed; the per-step and per-variant table; the per-lead CSV; a viewer who reads but cannot
//! edit, start or send; and another workspace's campaign answering 404.

mod common;

use std::collections::BTreeMap;

use common::mail_rig::{open, run_cli, wait_until};
use common::{Appliance, Browser, Page, select_attr, select_text};
use serde_json::Value;

const OWNER: &str = "owner@grove.test";
const DOMAIN: &str = "grove.test";

fn workspace_of(url: &str) -> i64 {
    url.split("/w/").nth(1).and_then(|rest| rest.split('/').next()).and_then(|id| id.parse().ok()).expect("ws url")
}

fn campaign_of(url: &str) -> i64 {
    url.split("/campaigns/").nth(1).and_then(|r| r.split(['/', '?']).next()).and_then(|id| id.parse().ok()).expect("id")
}

/// Moves the clock by `seconds` and waits until the campaign engine finished a tick after it.
fn step_clock(appliance: &Appliance, seconds: i64) -> i64 {
    let now = appliance.advance_clock(seconds);
    let url = appliance.url("/_test/campaign-tick");
    wait_until("a campaign tick", || {
        let ticked: i64 = blocking_get(&url)?.trim().parse().ok()?;
        (ticked >= now).then_some(())
    });
    now
}

/// A GET over a plain TCP connection.
fn blocking_get(url: &str) -> Option<String> {
    use std::io::{Read, Write};
    let rest = url.strip_prefix("http://")?;
    let (address, path) = rest.split_once('/').map_or((rest, "/".to_string()), |(a, p)| (a, format!("/{p}")));
    let mut stream = std::net::TcpStream::connect(address).ok()?;
    write!(stream, "GET {path} HTTP/1.1\r\nHost: {address}\r\nConnection: close\r\n\r\n").ok()?;
    let mut response = String::new();
    stream.read_to_string(&mut response).ok()?;
    response.starts_with("HTTP/1.1 200").then(|| response.rsplit("\r\n\r\n").next().unwrap_or_default().to_string())
}

/// The appliance on the injected clock with its owner signed in, two sending mailboxes and six
/// leads (mailboxes of the appliance too) in the list "Prospects"; the last lead has no company.
async fn setup() -> (Appliance, Browser, i64, Vec<String>, Vec<String>) {
    let appliance = Appliance::start_with(tempfile::tempdir().expect("temp dir"), &[("INBOXGROVE_TEST_CLOCK", "1")]);
    let owner = appliance.setup_admin(OWNER).await;
    let ws = workspace_of(&owner.get("/").await.url);
    let data = appliance.data_dir();
    run_cli(&data, &["domain", "add", DOMAIN], None);
    let created =
        run_cli(&data, &["mailbox", "create", "--domain", DOMAIN, "--count", "8", "--daily-limit", "15"], None);
    let addresses: Vec<String> =
        created.lines().skip(1).filter_map(|l| l.split_once(',')).map(|(a, _)| a.to_string()).collect();
    let (senders, leads) = (addresses[..2].to_vec(), addresses[2..].to_vec());
    let mut csv = String::from("email,first_name,company\n");
    for (i, lead) in leads.iter().enumerate() {
        let company = if i == leads.len() - 1 { String::new() } else { format!("Co {i}") };
        csv.push_str(&format!("{lead},Lead{i},{company}\n"));
    }
    let file = appliance.dir.path().join("leads.csv");
    std::fs::write(&file, csv).unwrap();
    run_cli(&data, &["leads", "import", file.to_str().unwrap(), "--list", "Prospects", "--no-mx-check"], None);
    (appliance, owner, ws, senders, leads)
}

/// The create form's fields for a campaign from `senders` to "Prospects": a first step with
/// variants A and B, and a follow-up 2 days later with an unbalanced brace and `{{company}}`.
fn campaign_fields(senders: &[String]) -> Vec<(String, String)> {
    let mut fields: Vec<(String, String)> = vec![("name".into(), "Winter outreach".into())];
    fields.extend(senders.iter().map(|s| ("mailbox".to_string(), s.clone())));
    let rest = [
        ("list", "Prospects"),
        ("time_zone", "UTC"),
        ("start", "00:00"),
        ("end", "24:00"),
        ("use_lead_time_zone", "on"),
        ("daily_cap", "0"),
        ("min_gap_seconds", "0"),
        ("jitter_seconds", "0"),
        ("stop_on_reply", "on"),
        ("unsubscribe", "header"),
        ("steps", "2"),
        ("step0_delay", "0"),
        ("step0_unit", "days"),
        ("step0_variants", "2"),
        ("step0_v0_subject", "Quick question, {{first_name}}"),
        ("step0_v0_body", "Hi {{first_name}}, how is {{company|your team}}?"),
        ("step0_v0_weight", "1"),
        ("step0_v1_subject", "A thought for {{first_name}}"),
        ("step0_v1_body", "Hello {{first_name}}, one idea for {{company|you}}."),
        ("step0_v1_weight", "1"),
        ("step1_delay", "2"),
        ("step1_unit", "days"),
        ("step1_variants", "1"),
        ("step1_v0_subject", ""),
        ("step1_v0_body", "Following up for {{company}}. {Best|Cheers"),
        ("step1_v0_weight", "1"),
    ];
    fields.extend(rest.iter().map(|(k, v)| (k.to_string(), v.to_string())));
    for day in ["mon", "tue", "wed", "thu", "fri", "sat", "sun"] {
        fields.push(("day".into(), day.into()));
    }
    fields
}

fn refs(fields: &[(String, String)]) -> Vec<(&str, &str)> {
    fields.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect()
}

fn with(fields: &[(String, String)], changes: &[(&str, &str)]) -> Vec<(String, String)> {
    let mut out: Vec<(String, String)> =
        fields.iter().filter(|(k, _)| !changes.iter().any(|(c, _)| c == k)).cloned().collect();
    out.extend(changes.iter().filter(|(_, v)| !v.is_empty()).map(|(k, v)| (k.to_string(), v.to_string())));
    out
}

fn value(page: &Page, id: &str) -> String {
    select_attr(&page.body, &format!("#{id}"), "value").into_iter().next().unwrap_or_default()
}

fn figure(page: &Page, id: &str) -> String {
    select_text(&page.body, &format!("#{id} .value")).into_iter().next().unwrap_or_default()
}

fn campaign_leads(appliance: &Appliance, id: i64) -> Vec<Value> {
    let out = appliance.cli(&["campaign", "leads", &id.to_string(), "--json"], None);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).lines().map(|l| serde_json::from_str(l).expect("a JSON line")).collect()
}

/// Creates the campaign through the form, checking its mistakes and buttons on the way.
async fn create_through_the_form(owner: &Browser, ws: i64, senders: &[String]) -> i64 {
    let list = owner.get(&format!("/w/{ws}/campaigns")).await;
    assert_eq!(list.status, 200, "{}", list.body);
    assert_eq!(select_text(&list.body, "#campaigns-empty"), ["No campaigns yet. Create one"]);
    let url = format!("/w/{ws}/campaigns/new");
    let form = owner.get(&url).await;
    assert_eq!(form.status, 200, "{}", form.body);
    assert_eq!(value(&form, "time_zone"), "UTC", "the workspace's zone");
    assert_eq!(select_attr(&form.body, "#use_lead_time_zone", "checked").len(), 1, "on by default");
    assert_eq!(select_attr(&form.body, "#stop_on_reply", "checked").len(), 1, "on by default");
    assert!(select_attr(&form.body, "#track_opens", "checked").is_empty(), "off by default");
    let offered = select_attr(&form.body, "input[name=mailbox]", "value");
    assert_eq!(offered.len(), 8, "every mailbox but the role mailbox: {offered:?}");
    assert!(!offered.iter().any(|m| m.starts_with("postmaster@")));
    assert_eq!(select_text(&form.body, "#no-postal-address a"), ["Add the postal address in the workspace settings"]);

    let good = campaign_fields(senders);
    // Mistakes: no mailbox, a time that is none, a first step without a body.
    let bad = with(&good, &[("mailbox", ""), ("end", "25:00"), ("step0_v0_body", "")]);
    let refused = owner.post_form(&url, &form.body, &refs(&bad)).await;
    assert_eq!(refused.status, 422, "{}", refused.body);
    assert_eq!(select_text(&refused.body, "#mailboxes-error"), ["Choose at least one mailbox to send from."]);
    assert_eq!(select_text(&refused.body, "#end-error"), ["\"25:00\" is not a time of day such as 09:00."]);
    assert_eq!(select_text(&refused.body, "#step0_v0_body-error"), ["Write the message."]);
    assert_eq!(value(&refused, "name"), "Winter outreach", "typed values kept");
    assert_eq!(value(&refused, "end"), "25:00");
    assert_eq!(select_text(&refused.body, "#step1_v0_body"), ["Following up for {{company}}. {Best|Cheers"]);
    assert!(select_text(&refused.body, "#name-error").is_empty());

    // "Add step" and "Add variant" re-render with one block more, keeping what was typed.
    let added = owner.post_form(&url, &form.body, &refs(&with(&good, &[("action", "add_step")]))).await;
    assert_eq!(added.status, 200, "{}", added.body);
    assert_eq!(select_attr(&added.body, "fieldset.step", "id"), ["step0", "step1", "step2"]);
    assert_eq!(value(&added, "step2_delay"), "3");
    assert_eq!(value(&added, "step0_v1_subject"), "A thought for {{first_name}}");
    let more = owner.post_form(&url, &form.body, &refs(&with(&good, &[("action", "add_variant:1")]))).await;
    assert_eq!(select_attr(&more.body, "#step1 .variant", "id"), ["step1_v0", "step1_v1"]);
    assert_eq!(select_text(&more.body, "#step1_v0_body"), ["Following up for {{company}}. {Best|Cheers"]);
    let fewer = owner.post_form(&url, &form.body, &refs(&with(&good, &[("action", "remove_variant:0:0")]))).await;
    assert_eq!(value(&fewer, "step0_v0_subject"), "A thought for {{first_name}}");

    let created = owner.post_form(&url, &form.body, &refs(&with(&good, &[("action", "save")]))).await;
    assert_eq!(created.status, 200, "{}", created.body);
    assert!(created.url.contains("done=created"), "{}", created.url);
    assert_eq!(select_text(&created.body, "#campaign-status"), ["Draft"]);
    campaign_of(&created.url)
}

#[tokio::test]
async fn campaigns_are_created_previewed_test_sent_started_edited_and_measured_through_the_ui() {
    let (appliance, owner, ws, senders, leads) = setup().await;
    let id = create_through_the_form(&owner, ws, &senders).await;
    let page_url = format!("/w/{ws}/campaigns/{id}");
    let db = open(&appliance.data_dir().join("inboxgrove.db"));

    // The preview: step 2 for the lead without a company.
    let last: i64 = db.query_row("SELECT id FROM leads WHERE email = ?1", [&leads[5]], |r| r.get(0)).unwrap();
    let preview = owner.get(&format!("{page_url}/preview?step=2&lead={last}")).await;
    assert_eq!(preview.status, 200, "{}", preview.body);
    let text = select_text(&preview.body, "#preview-text").remove(0);
    assert!(text.starts_with("Following up for ."), "the lead has no company: {text}");
    assert!(select_text(&preview.body, "#preview-subject")[0].starts_with("Re: "), "a follow-up in the thread");
    assert_eq!(select_attr(&preview.body, "#preview-warnings li[data-missing]", "data-missing"), ["company"]);
    let warnings = select_text(&preview.body, "#preview-warnings li[data-warning]");
    assert!(warnings.iter().any(|w| w.contains('{')), "unbalanced spintax: {warnings:?}");
    assert_eq!(select_attr(&preview.body, "#preview-lead option[selected]", "value"), [last.to_string()]);
    let first = owner.get(&format!("{page_url}/preview")).await;
    let subject = select_text(&first.body, "#preview-subject").remove(0);
    assert!(subject.starts_with("Quick question, Lead") || subject.starts_with("A thought for Lead"), "{subject}");
    assert!(select_attr(&first.body, "#preview-warnings", "id").is_empty(), "nothing to warn about");
    let search = owner.get(&format!("{page_url}/preview?q={}", &leads[3][..8])).await;
    assert_eq!(select_text(&search.body, "#preview-lead option"), [leads[3].clone()]);

    // A test send: queued for the typed address, counted against the mailbox's limit.
    let sent = owner
        .post_form(&format!("{page_url}/test-send"), &first.body, &[("to", "tester@example.test"), ("step", "1")])
        .await;
    assert_eq!(sent.status, 200, "{}", sent.body);
    assert!(select_text(&sent.body, "#test-sent")[0].contains("tester@example.test"), "{}", sent.body);
    let (queued, subject): (i64, String) = db
        .query_row(
            "SELECT count(*), max(m.subject) FROM queue q JOIN messages m ON m.id = q.message_id \
             WHERE q.recipient = 'tester@example.test'",
            [],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .unwrap();
    assert_eq!(queued, 1);
    assert!(subject.starts_with("[Test] "), "{subject}");
    let bad = owner.post_form(&format!("{page_url}/test-send"), &first.body, &[("to", "not an address")]).await;
    assert_eq!(bad.status, 422);
    assert_eq!(value(&bad, "test-to"), "not an address");
    let mailbox: i64 =
        db.query_row("SELECT id FROM mailboxes WHERE address = ?1", [&senders[1]], |r| r.get(0)).unwrap();
    run_cli(&appliance.data_dir(), &["mailbox", "set", &senders[1], "--daily-limit", "0"], None);
    let limited = owner
        .post_form(
            &format!("{page_url}/test-send"),
            &first.body,
            &[("to", "second-tester@example.test"), ("mailbox", &mailbox.to_string())],
        )
        .await;
    assert_eq!(limited.status, 422, "{}", limited.body);
    let error = select_text(&limited.body, "#test-to-error");
    assert!(error[0].starts_with("Not sent: daily limit of 0 messages reached"), "{error:?}");
    run_cli(&appliance.data_dir(), &["mailbox", "set", &senders[1], "--daily-limit", "15"], None);

    // Start: the counts move once the clock does.
    let page = owner.get(&page_url).await;
    let started = owner.post_form(&format!("{page_url}/start"), &page.body, &[]).await;
    assert_eq!(select_text(&started.body, "#campaign-status"), ["Active"], "{}", started.body);
    step_clock(&appliance, 60);
    let mut moved = owner.get(&page_url).await;
    for _ in 0..50 {
        if figure(&moved, "figure-delivered") == "6" {
            break;
        }
        step_clock(&appliance, 1);
        moved = owner.get(&page_url).await;
    }
    assert_eq!((figure(&moved, "figure-leads"), figure(&moved, "figure-sent")), ("6".into(), "6".into()));
    assert_eq!(figure(&moved, "figure-delivered"), "6", "delivered locally");
    assert_eq!(select_attr(&moved.body, "#not-sending li", "data-reason"), ["no_lead_due"]);
    assert!(
        select_text(&moved.body, "#forecast")[0].contains("6 sends left"),
        "{:?}",
        select_text(&moved.body, "#forecast")
    );

    // Pause and resume.
    let paused = owner.post_form(&format!("{page_url}/pause"), &moved.body, &[]).await;
    assert_eq!(select_text(&paused.body, "#campaign-status"), ["Paused"]);
    assert_eq!(select_attr(&paused.body, "#not-sending li", "data-reason"), ["not_active"]);
    let resumed = owner.post_form(&format!("{page_url}/resume"), &paused.body, &[]).await;
    assert_eq!(select_text(&resumed.body, "#campaign-status"), ["Active"]);

    edit_the_active_campaign(&appliance, &owner, ws, id, &senders).await;

    // Two days later step 2, a day after it step 3; nobody got a step twice.
    step_clock(&appliance, 2 * 86_400 + 60);
    step_clock(&appliance, 86_400 + 60);
    let leads_json = campaign_leads(&appliance, id);
    assert_eq!(leads_json.len(), 6);
    for lead in &leads_json {
        let steps: Vec<i64> = lead["sends"].as_array().unwrap().iter().map(|s| s["step"].as_i64().unwrap()).collect();
        assert_eq!(steps, [1, 2, 3], "{lead}");
        assert_eq!(lead["status"], "finished", "{lead}");
    }
    let mut per_step = owner.get(&page_url).await;
    for _ in 0..100 {
        if figure(&per_step, "figure-delivered") == "18" {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        per_step = owner.get(&page_url).await;
    }
    assert_eq!(figure(&per_step, "figure-sent"), "18");
    check_step_table(&per_step);
    check_csv(&owner, &page_url, &leads).await;
    html_and_footer_preview(&appliance, &owner, ws, &senders).await;
    viewer_and_other_workspace(&appliance, &owner, ws, id).await;
}

/// Edits the active campaign: a sent step cannot be removed; appending step 3 is saved.
async fn edit_the_active_campaign(appliance: &Appliance, owner: &Browser, ws: i64, id: i64, senders: &[String]) {
    let url = format!("/w/{ws}/campaigns/{id}/edit");
    let form = owner.get(&url).await;
    assert_eq!(form.status, 200, "{}", form.body);
    assert_eq!(select_attr(&form.body, "#edit-warning", "id").len(), 1);
    assert!(select_attr(&form.body, "#remove-step-0", "id").is_empty(), "step 1 was sent: no remove button");
    assert_eq!(select_attr(&form.body, "#remove-step-1", "id").len(), 1, "step 2 was not");
    assert_eq!(value(&form, "step0_v0_subject"), "Quick question, {{first_name}}");
    let fields = campaign_fields(senders);
    let removing = owner.post_form(&url, &form.body, &refs(&with(&fields, &[("action", "remove_step:0")]))).await;
    assert_eq!(removing.status, 422, "{}", removing.body);
    assert!(select_text(&removing.body, "#steps-error")[0].contains("Step 1 was already sent to 6 leads"));
    let three = with(
        &fields,
        &[
            ("steps", "3"),
            ("step2_delay", "1"),
            ("step2_unit", "days"),
            ("step2_variants", "1"),
            ("step2_v0_body", "Last one from me."),
            ("step2_v0_weight", "1"),
            ("action", "save"),
        ],
    );
    let saved = owner.post_form(&url, &form.body, &refs(&three)).await;
    assert_eq!(saved.status, 200, "{}", saved.body);
    assert_eq!(select_text(&saved.body, "#campaign-notice"), ["Campaign saved."]);
    assert_eq!(select_attr(&saved.body, "#step-stats tr.step-total", "data-step"), ["1", "2", "3"]);
    let conn = open(&appliance.data_dir().join("inboxgrove.db"));
    let first_steps: i64 = conn
        .query_row(
            "SELECT count(*) FROM campaign_sends s JOIN campaign_steps st ON st.id = s.step_id \
             WHERE s.campaign_id = ?1 AND st.position = 1",
            [id],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(first_steps, 6);
}

/// The per-step and per-variant table: 6 sent and delivered a step, variants adding up.
fn check_step_table(page: &Page) {
    let cells = |selector: &str| -> Vec<String> {
        select_text(&page.body, selector)
            .into_iter()
            .map(|c| c.split_whitespace().next().unwrap_or("").to_string())
            .collect()
    };
    for step in 1..=3 {
        // Queued, sent, delivered, bounced, opened, clicked, replied, unsubscribed.
        let row = cells(&format!("#step-stats tr.step-total[data-step='{step}'] td.num"));
        assert_eq!(row, ["0", "6", "6", "0", "0", "0", "0", "0"], "step {step}");
    }
    let a = cells("#step-stats tr.variant[data-step='1'][data-variant='A'] td.num");
    let b = cells("#step-stats tr.variant[data-step='1'][data-variant='B'] td.num");
    let (a, b): (i64, i64) = (a[1].parse().unwrap(), b[1].parse().unwrap());
    assert_eq!(a + b, 6, "the variants add up to the step");
    assert!(select_text(&page.body, "#step-stats tr.step-total[data-step='1'] td.num")[2].contains("100.0%"));
}

/// The per-lead CSV parses, one row per lead with its three steps.
async fn check_csv(owner: &Browser, page_url: &str, leads: &[String]) {
    let csv = owner.get(&format!("{page_url}/leads.csv")).await;
    assert_eq!(csv.status, 200);
    assert!(csv.content_type.starts_with("text/csv"), "{}", csv.content_type);
    assert!(
        csv.disposition.contains("campaign-") && csv.disposition.contains("winter-outreach"),
        "{}",
        csv.disposition
    );
    let mut reader = csv::Reader::from_reader(csv.body.as_bytes());
    let header: Vec<String> = reader.headers().unwrap().iter().map(str::to_string).collect();
    assert_eq!(
        &header[..8],
        ["email", "first_name", "last_name", "company", "status", "stop_reason", "steps_sent", "last_sent_at"]
    );
    let rows: Vec<BTreeMap<String, String>> =
        reader.records().map(|r| header.iter().cloned().zip(r.unwrap().iter().map(str::to_string)).collect()).collect();
    assert_eq!(rows.len(), leads.len());
    for row in &rows {
        assert!(leads.contains(&row["email"]), "{row:?}");
        assert_eq!((row["status"].as_str(), row["steps_sent"].as_str()), ("finished", "3"), "{row:?}");
        assert!(chrono::DateTime::parse_from_rfc3339(&row["last_sent_at"]).is_ok(), "{row:?}");
        assert_eq!((row["delivered"].as_str(), row["replied"].as_str()), ("yes", "no"), "{row:?}");
    }
}

/// A campaign from a file with an HTML part and the footer: the preview shows the HTML in a
/// sandboxed frame and the footer with the workspace's postal address.
async fn html_and_footer_preview(appliance: &Appliance, owner: &Browser, ws: i64, senders: &[String]) {
    let data = appliance.data_dir();
    run_cli(&data, &["workspace", "set", "Acme Outreach", "--postal-address", "1 Main Street\nSpringfield"], None);
    let file = appliance.dir.path().join("html.toml");
    let toml = format!(
        "name = \"HTML\"\nmailboxes = [\"{}\"]\nlists = [\"Prospects\"]\nunsubscribe = \"footer\"\n\n[[steps]]\n\
         subject = \"Hi\"\nbody = \"Plain {{{{first_name}}}}\"\nhtml = \"<p onclick=\\\"x()\\\">Hi <b>{{{{first_name}}}}</b></p>\"\n",
        senders[0]
    );
    std::fs::write(&file, toml).unwrap();
    let id = run_cli(&data, &["campaign", "create", "--file", file.to_str().unwrap()], None).trim().to_string();
    let preview = owner.get(&format!("/w/{ws}/campaigns/{id}/preview")).await;
    assert_eq!(preview.status, 200, "{}", preview.body);
    assert_eq!(select_attr(&preview.body, "#preview-html", "sandbox"), [""]);
    let srcdoc = select_attr(&preview.body, "#preview-html", "srcdoc").remove(0);
    assert!(srcdoc.starts_with("<p onclick=\"x()\">Hi <b>Lead"), "{srcdoc}");
    let attribute = preview.body.split("srcdoc=\"").nth(1).unwrap_or_default().split('"').next().unwrap_or_default();
    assert!(attribute.starts_with("&#60;p onclick=&#34;x()&#34;&#62;"), "escaped in the attribute: {attribute}");
    let text = select_text(&preview.body, "#preview-text").remove(0);
    assert!(text.starts_with("Plain Lead") && text.contains("--\n1 Main Street\nSpringfield"), "{text}");
}

/// A viewer reads the campaign but has no buttons and is refused every change; another
/// workspace's id answers 404.
async fn viewer_and_other_workspace(appliance: &Appliance, owner: &Browser, ws: i64, id: i64) {
    let members = owner.get(&format!("/w/{ws}/members")).await;
    let invited = owner
        .post_form(&format!("/w/{ws}/members"), &members.body, &[("email", "viewer@grove.test"), ("role", "viewer")])
        .await;
    let link = select_text(&invited.body, "#invite-link").pop().expect("an invite link");
    let viewer = appliance.browser();
    let form = viewer.get(&link).await;
    let joined = viewer.post_form(&link, &form.body, &[("password", "a viewer's long password")]).await;
    assert!(joined.url.contains("/w/"), "{}", joined.body);
    let page_url = format!("/w/{ws}/campaigns/{id}");
    let page = viewer.get(&page_url).await;
    assert_eq!(page.status, 200);
    assert!(select_attr(&page.body, "#pause-campaign, #edit-campaign", "id").is_empty(), "no buttons");
    assert_eq!(viewer.get(&format!("{page_url}/edit")).await.status, 403);
    assert_eq!(viewer.get(&format!("/w/{ws}/campaigns/new")).await.status, 403);
    assert_eq!(viewer.post_form(&format!("{page_url}/edit"), &page.body, &[("name", "Mine")]).await.status, 403);
    assert_eq!(viewer.post_form(&format!("{page_url}/start"), &page.body, &[]).await.status, 403);
    let preview = viewer.get(&format!("{page_url}/preview")).await;
    assert_eq!(preview.status, 200);
    assert!(select_attr(&preview.body, "#test-send", "id").is_empty(), "no test send for a viewer");
    assert_eq!(viewer.post_form(&format!("{page_url}/test-send"), &page.body, &[("to", "x@y.test")]).await.status, 403);
    assert_eq!(viewer.get(&format!("{page_url}/leads.csv")).await.status, 200, "reading is allowed");

    let workspaces = owner.get("/workspaces").await;
    let other = owner.post_form("/workspaces", &workspaces.body, &[("name", "Other Agency")]).await;
    let other_ws = workspace_of(&other.url);
    for path in ["", "/edit", "/preview", "/leads.csv"] {
        let response = owner.get(&format!("/w/{other_ws}/campaigns/{id}{path}")).await;
        assert_eq!(response.status, 404, "{path}");
    }
    let start = owner.post_form(&format!("/w/{other_ws}/campaigns/{id}/pause"), &other.body, &[]).await;
    assert_eq!(start.status, 404);
    let list = owner.get(&format!("/w/{other_ws}/campaigns")).await;
    assert_eq!(select_text(&list.body, "#campaigns-empty"), ["No campaigns yet. Create one"]);
}
