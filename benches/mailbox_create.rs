//! How long creating 50 mailboxes takes through the admin UI, end to end.
//!
//! Starts the real appliance (release build), completes setup, then 15 times: adds a fresh domain,
//! opens its page for the CSRF token and times the POST of the "Create 50 mailboxes" form until
//! the whole "Mailboxes created" page (50 credentials) has arrived, exactly as a browser does.
//!
//! Run with `cargo bench --bench mailbox_create`. `cargo test --all-targets` also runs this
//! binary (harness = false), without `--bench`: then it only says so and exits.

#[path = "../tests/common/mod.rs"]
mod common;

use std::time::{Duration, Instant};

const RUNS: usize = 15;
const COUNT: usize = 50;
const TARGET: &str = "target: median < 1.0 s on a 2-core machine";

fn main() {
    if !std::env::args().any(|a| a == "--bench") {
        println!("mailbox_create: a benchmark; run it with `cargo bench --bench mailbox_create`");
        return;
    }
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build().expect("tokio runtime");
    let times = runtime.block_on(run());
    report(&times);
}

async fn run() -> Vec<Duration> {
    let appliance = common::Appliance::start();
    let browser = appliance.setup_admin("bench@grove.test").await;
    let home = browser.get("/").await;
    let ws = workspace_of(&home.url);
    let mut times = Vec::with_capacity(RUNS);
    for run in 1..=RUNS {
        // A new domain each run, so the name generator never runs short of addresses.
        let domains = browser.get(&format!("/w/{ws}/domains")).await;
        let name = format!("bench-{run}.grove.test");
        let added =
            browser.post_form(&format!("/w/{ws}/domains"), &domains.body, &[("name", &name), ("dkim", "rsa")]).await;
        assert_eq!(added.status, 200, "add {name}: {}", added.body);
        let domain_id = added.url.rsplit('/').next().expect("domain id").to_string();
        assert!(domain_id.parse::<i64>().is_ok(), "landed on the domain page, got {}", added.url);

        let page = browser.get(&format!("/w/{ws}/domains/{domain_id}")).await;
        assert_eq!(page.status, 200, "{}", page.body);
        let csrf = page.csrf();
        let count = COUNT.to_string();
        let url = format!("/w/{ws}/domains/{domain_id}/mailboxes");

        let started = Instant::now();
        let created = browser.post_raw(&url, &[("csrf", &csrf), ("count", &count)]).await;
        let took = started.elapsed();

        assert_eq!(created.status, 200, "create {COUNT} mailboxes on {name}: {}", created.body);
        let rows = common::select_text(&created.body, "#credentials tbody tr");
        assert_eq!(rows.len(), COUNT, "the page lists {COUNT} credentials");
        println!("run {run:2}: {COUNT} mailboxes on {name} in {:7.1} ms", ms(took));
        times.push(took);
    }
    drop(appliance);
    times
}

/// The workspace id in a URL such as `http://127.0.0.1:1234/w/3/domains`.
fn workspace_of(url: &str) -> i64 {
    let rest = &url[url.find("/w/").unwrap_or_else(|| panic!("no workspace in {url}")) + 3..];
    rest.split('/').next().and_then(|id| id.parse().ok()).unwrap_or_else(|| panic!("no workspace id in {url}"))
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

fn report(times: &[Duration]) {
    let mut sorted = times.to_vec();
    sorted.sort();
    let median = if sorted.len() % 2 == 1 {
        sorted[sorted.len() / 2]
    } else {
        (sorted[sorted.len() / 2 - 1] + sorted[sorted.len() / 2]) / 2
    };
    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    println!();
    println!("Creating {COUNT} mailboxes through the UI ({} runs, {cores} cores):", times.len());
    println!("  median {:7.1} ms", ms(median));
    println!("  min    {:7.1} ms", ms(sorted[0]));
    println!("  max    {:7.1} ms", ms(sorted[sorted.len() - 1]));
    println!("  {TARGET}: {}", if median < Duration::from_secs(1) { "met" } else { "NOT met" });
}
