//! Campaign throughput: importing leads and the engine tick.
//!
//! 1. **Import**: a 100,000-row CSV (7 standard columns and a custom one) imported by the release
//!    binary (`inboxgrove leads import FILE --list Bench --no-mx-check --json`) into a fresh data
//!    dir; wall time and the process's peak resident memory (VmHWM, sampled every few
//!    milliseconds until it exits). Targets: under 10 s and 100 MB.
//! 2. **Tick**: in process, a campaign with 1,000,000 stored (lead, step) states of which 1,000
//!    are due, 20 mailboxes on an RSA-2048 DKIM domain. It times the due-work half of a tick
//!    alone (`engine::due_work`: the due rows, their windows, rotation; target under 100 ms),
//!    then one whole tick that renders, signs, admits, enqueues and records the 1,000 sends
//!    (target under 2 s), then a tick with nothing due. The delivery workers are not running, so
//!    the queued mail stays queued.
//!
//! Run with `cargo bench --bench campaigns`. `cargo test --all-targets` also runs this binary
//! (harness = false) without `--bench`: then it only says so and exits.

#[path = "../tests/common/mod.rs"]
mod common;

use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use inboxgrove::app::App;
use inboxgrove::auth::Actor;
use inboxgrove::campaign::campaigns::{self, DelayUnit, NewCampaign, NewStep, NewVariant, Settings};
use inboxgrove::campaign::engine;
use inboxgrove::config::Config;
use inboxgrove::mta::enqueue::SignerCache;
use inboxgrove::workspaces::{Access, Role, Workspace};

const IMPORT_ROWS: usize = 100_000;
const STATES: i64 = 1_000_000;
const DUE: i64 = 1_000;
const MAILBOXES: usize = 20;

fn main() {
    if !std::env::args().any(|a| a == "--bench") {
        println!("campaigns: a benchmark; run it with `cargo bench --bench campaigns`");
        return;
    }
    import_bench();
    tick_bench();
}

fn cli(data: &Path, args: &[&str], stdin: Option<&str>) -> String {
    let out = common::cli(data, args, stdin);
    assert!(out.status.success(), "{args:?}: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).expect("utf-8")
}

fn import_bench() {
    let dir = tempfile::tempdir().expect("temp dir");
    let data = dir.path().join("data");
    cli(&data, &["admin", "create", "--email", "admin@bench.test"], Some(common::PASSWORD));
    let file = dir.path().join("leads.csv");
    let mut csv = String::from("Email,First Name,Last Name,Company,Title,Website,Time Zone,Plan\n");
    for i in 0..IMPORT_ROWS {
        csv.push_str(&format!(
            "lead{i}@company{}.test,First{i},Last{i},\"Company {i}, Inc\",Head of Sales,https://company{}.test,\
             Europe/Berlin,tier-{}\n",
            i % 5000,
            i % 5000,
            i % 3
        ));
    }
    std::fs::write(&file, csv).expect("write the CSV");
    let started = Instant::now();
    let mut child = Command::new(common::BIN)
        .args(["leads", "import"])
        .arg(&file)
        .args(["--list", "Bench", "--no-mx-check", "--json", "--data"])
        .arg(&data)
        .env_remove("INBOXGROVE_MASTER_KEY")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run the import");
    let status_file = format!("/proc/{}/status", child.id());
    let mut peak_kib = 0;
    while child.try_wait().expect("wait").is_none() {
        if let Some(kib) = vm_hwm_kib(&status_file) {
            peak_kib = peak_kib.max(kib);
        }
        std::thread::sleep(Duration::from_millis(2));
    }
    let elapsed = started.elapsed();
    let output = child.wait_with_output().expect("import output");
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    let report: serde_json::Value = serde_json::from_slice(&output.stdout).expect("the JSON report");
    assert_eq!(report["imported"].as_u64(), Some(IMPORT_ROWS as u64), "{report}");
    let seconds = elapsed.as_secs_f64();
    println!(
        "import: {IMPORT_ROWS} rows in {seconds:.2} s ({:.0} rows/s), target < 10 s",
        IMPORT_ROWS as f64 / seconds
    );
    println!("import: peak resident memory {:.1} MiB (VmHWM), target < 100 MB", peak_kib as f64 / 1024.0);
}

/// The high-water mark of a process's resident memory, in KiB.
fn vm_hwm_kib(status_file: &str) -> Option<u64> {
    let status = std::fs::read_to_string(status_file).ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

fn tick_bench() {
    let dir = tempfile::tempdir().expect("temp dir");
    let data = dir.path().join("data");
    cli(&data, &["admin", "create", "--email", "admin@bench.test"], Some(common::PASSWORD));
    cli(&data, &["domain", "add", "grove-bench.test"], None);
    let count = MAILBOXES.to_string();
    let created = cli(
        &data,
        &["mailbox", "create", "--domain", "grove-bench.test", "--count", &count, "--daily-limit", "10000"],
        None,
    );
    let pool: Vec<String> =
        created.lines().skip(1).filter_map(|l| l.split_once(',')).map(|(a, _)| a.to_string()).collect();
    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    runtime.block_on(async move {
        let config = Config::load(None, Some(&data)).expect("config");
        let app = App::open(config).await.expect("open the data dir");
        let seeded = Instant::now();
        let campaign = seed(&app, pool).await;
        println!("tick: seeded {STATES} lead states in {:.1} s", seeded.elapsed().as_secs_f64());
        let found = app.clock.unix();
        let mut timings = Vec::new();
        for _ in 0..5 {
            let c = campaign.clone();
            let started = Instant::now();
            let due = app
                .store
                .read(move |conn| engine::due_work(conn, &c, found, usize::try_from(DUE).unwrap()))
                .await
                .expect("due work");
            timings.push(started.elapsed());
            assert_eq!(due, usize::try_from(DUE).unwrap());
        }
        let cold = timings[0];
        timings.sort();
        println!(
            "tick: finding {DUE} due sends among {STATES} states: {:.1} ms (median of 5; first run {:.1} ms), target < 100 ms",
            ms(timings[2]),
            ms(cold)
        );
        let signers = Arc::new(SignerCache::default());
        let started = Instant::now();
        let sent = engine::tick(&app, &signers).await.expect("tick");
        let elapsed = started.elapsed();
        assert_eq!(sent, usize::try_from(DUE).unwrap());
        println!("tick: a tick that sends {sent} messages (render, DKIM, admit, enqueue, record): {:.0} ms, target < 2000 ms", ms(elapsed));
        let started = Instant::now();
        let sent = engine::tick(&app, &signers).await.expect("tick");
        assert_eq!(sent, 0);
        println!("tick: a tick with nothing due among {STATES} states: {:.1} ms", ms(started.elapsed()));
    });
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

/// A running campaign over the pool with [`STATES`] leads, [`DUE`] of them due now.
async fn seed(app: &App, pool: Vec<String>) -> campaigns::Campaign {
    let now = app.clock.unix();
    app.store
        .write(move |tx| {
            tx.execute("INSERT INTO lead_lists (workspace_id, name, created_at) VALUES (1, 'Bench', 0)", [])?;
            tx.execute(
                "INSERT INTO leads (workspace_id, email, first_name, company, time_zone, created_at, updated_at) \
                 WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < ?1) \
                 SELECT 1, 'lead' || i || '@dest' || (i % 100) || '.test', 'Lead' || i, 'Company ' || i, 'UTC', 0, 0 FROM n",
                [STATES],
            )?;
            let access = Access {
                workspace: Workspace { id: 1, name: "bench".into(), role: Role::Owner },
                actor: Actor::cli(),
            };
            let step = |subject: &str, delay| NewStep {
                delay,
                delay_unit: DelayUnit::Days,
                new_thread: false,
                variants: vec![NewVariant {
                    subject: subject.into(),
                    body: "{Hi|Hello} {{first_name|there}},\n\nA short note about {{company}}.\n\nBest".into(),
                    html: String::new(),
                    weight: 1,
                }],
            };
            let campaign = NewCampaign {
                settings: Settings {
                    name: "Bench".into(),
                    time_zone: chrono_tz::Tz::UTC,
                    days: [true; 7],
                    window_start: 0,
                    window_end: 1440,
                    use_lead_time_zone: true,
                    start_date: String::new(),
                    daily_cap: 0,
                    min_gap_seconds: 0,
                    jitter_seconds: 0,
                    stop_on_reply: true,
                    stop_company_on_reply: false,
                    track_opens: false,
                    track_clicks: false,
                    unsubscribe_footer: false,
                },
                mailboxes: pool,
                lists: vec!["Bench".into()],
                steps: vec![step("{Quick|Short} question for {{company}}", 0), step("", 3), step("", 3)],
            };
            let id = campaigns::create(tx, &access, &campaign, now)?;
            tx.execute("UPDATE campaigns SET status = 'active', started_at = ?2 WHERE id = ?1", (id, now))?;
            tx.execute(
                "INSERT INTO campaign_leads (campaign_id, lead_id, status, steps_done, due_at, updated_at) \
                 SELECT ?1, id, 'active', 0, CASE WHEN id <= ?2 THEN ?3 - 60 ELSE ?3 + 30 * 86400 END, ?3 FROM leads",
                (id, DUE, now),
            )?;
            Ok::<_, inboxgrove::error::Error>(campaigns::by_id(tx, id)?.expect("the campaign"))
        })
        .await
        .expect("seed")
}
