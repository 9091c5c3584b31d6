//! Delivery: workers that claim due queue rows, find MX hosts, talk SMTP to them, and record the outcome.
//!
//! One scheduler task per appliance ([`start`]). At start it puts rows left `in_flight` by a
//! crash back in the queue. Then, in a loop:
//! 1. it registers for a wakeup *before* looking at the queue, so a notify that arrives while it
//!    is busy (mail queued, the test clock moved, a batch finished) is never lost;
//! 2. for each destination domain with due rows, while a connection permit is free (the global
//!    `delivery.concurrency` and the domain's `connections`), it claims a batch of up to
//!    [`queue::BATCH`] rows of that domain and spawns a task that delivers it over one connection
//!    (`batch.rs`); the task holds the permit until it ends. A task whose batch was full claims
//!    the next batch of the same domain itself (at most [`BATCHES_PER_PERMIT`] in a row), so a
//!    long queue for one destination keeps its connections busy without a round per batch;
//! 3. it sleeps until the next row is due (from the database, at most [`TICK`]), a wakeup, a
//!    batch finishing, or shutdown. Rounds are spaced by at least [`MIN_PAUSE`] and by ten times
//!    the last round's duration (a round reads every due row), so a stream of wakeups (one per
//!    submitted message) costs the scheduler at most about a tenth of its time.
//!
//! Every batch task is watched: whether it succeeds, fails or panics, rows it left `in_flight`
//! go back to the queue afterwards (after [`FAILED_BATCH_PAUSE`], so a failing batch cannot
//! spin). Times come from `app.clock`, so tests move time instead of sleeping.
//!
//! The parts: `route.rs` (routes, relays, MX), `session.rs` (SMTP, STARTTLS, AUTH, egress),
//! `extensions.rs` (SIZE, 8BITMIME, SMTPUTF8), `egress.rs` (source addresses),
//! `tls.rs` (opportunistic TLS), `classify.rs` (replies, bounce classes, retry schedule),
//! `limits.rs` (connections, per-minute), `queue.rs` (the SQL), `record.rs` (outcomes, events,
//! suppression, DSNs).

mod batch;
pub mod classify;
mod egress;
mod extensions;
mod limits;
mod queue;
mod record;
pub mod route;
mod session;
#[cfg(test)]
mod session_tests;
mod tls;

pub use tls::opportunistic as any_certificate_connector;

use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use tokio::sync::Notify;

use crate::app::App;
use crate::error::Error;

use batch::Batch;
use limits::{Limits, Permit};

/// The longest the scheduler sleeps without looking at the queue.
pub const TICK: Duration = Duration::from_secs(5);
/// How long rows of a batch that failed or panicked wait before they are tried again.
pub const FAILED_BATCH_PAUSE: i64 = 60;
/// How long the scheduler pauses after a database error before trying again.
const ERROR_PAUSE: Duration = Duration::from_secs(5);
/// Shortest sleep between rounds, so a race can never make the loop spin.
const MIN_PAUSE: Duration = Duration::from_millis(50);
/// The most destination domains looked at per round.
const DOMAINS_PER_ROUND: usize = 1000;
/// The most batches one task delivers before giving its permit back to the scheduler.
pub const BATCHES_PER_PERMIT: usize = 20;
/// The longest wait between rounds imposed by a slow round.
const MAX_ROUND_GAP: Duration = Duration::from_secs(1);

/// Starts the delivery scheduler (supervised; it stops on shutdown).
pub fn start(app: &App) -> anyhow::Result<()> {
    let worker = Arc::new(Worker::new(app).context("Cannot set up outbound TLS")?);
    warn_of_unmatched_routes(app)?;
    app.spawn_supervised("delivery", worker.run());
    Ok(())
}

/// A route naming a workspace that does not exist never matches: said at start, so a typo in
/// the config does not silently send that workspace's mail another way.
fn warn_of_unmatched_routes(app: &App) -> anyhow::Result<()> {
    let routes: Vec<&str> =
        app.config.delivery.routes.iter().map(|r| r.workspace.as_str()).filter(|w| !w.is_empty()).collect();
    if routes.is_empty() {
        return Ok(());
    }
    let workspaces: Vec<(i64, String)> = app.store.read_quick(|conn| {
        conn.prepare("SELECT id, name FROM workspaces")?
            .query_map([], |row| Ok((row.get(0)?, row.get(1)?)))?
            .collect::<rusqlite::Result<_>>()
    })?;
    for wanted in routes {
        if !workspaces.iter().any(|(id, name)| route::names_workspace(wanted, *id, name)) {
            tracing::warn!(
                workspace = wanted,
                "a [[delivery.routes]] entry names no existing workspace; it matches nothing"
            );
        }
    }
    Ok(())
}

/// The scheduler and what its batch tasks share.
pub(crate) struct Worker {
    app: App,
    limits: Limits,
    connectors: tls::Connectors,
    /// Source addresses for egress (`delivery.source_ips`, validated at config load).
    source_ips: Vec<IpAddr>,
    /// "domain address" pairs whose stale egress assignment was already warned about.
    warned_sources: std::sync::Mutex<std::collections::HashSet<String>>,
    timeout: Duration,
    /// Notified when a batch task ends (its permit is free again).
    finished: Notify,
}

impl Worker {
    fn new(app: &App) -> Result<Worker, rustls::Error> {
        let config = &app.config.delivery;
        let timeout_seconds = u64::try_from(config.timeout_seconds()).unwrap_or(120).max(1);
        Ok(Worker {
            app: app.clone(),
            limits: Limits::new(config),
            connectors: tls::Connectors::new(
                std::iter::once(config.relay.smarthost_tls_ca.as_str())
                    .chain(config.routes.iter().map(|route| route.relay.smarthost_tls_ca.as_str()))
                    .filter(|path| !path.is_empty()),
            )?,
            source_ips: config.source_ips.iter().filter_map(|ip| ip.parse().ok()).collect(),
            warned_sources: std::sync::Mutex::default(),
            timeout: Duration::from_secs(timeout_seconds),
            finished: Notify::new(),
        })
    }

    /// The lease a claim takes: informative (leases are only reclaimed at start), generous.
    fn lease_seconds(&self) -> i64 {
        i64::try_from(self.timeout.as_secs()).unwrap_or(120).saturating_mul(5)
    }

    async fn run(self: Arc<Self>) -> anyhow::Result<()> {
        let now = self.app.clock.unix();
        let recovered = self.app.store.write(move |tx| queue::recover_in_flight(tx, now)).await?;
        if recovered > 0 {
            tracing::warn!(rows = recovered, "queue rows left in flight by the last run are queued again");
        }
        let mut gap = Duration::ZERO;
        let mut last_round: Option<std::time::Instant> = None;
        loop {
            if let Some(wait) = last_round.and_then(|at| gap.checked_sub(at.elapsed())) {
                tokio::select! {
                    _ = tokio::time::sleep(wait) => {}
                    _ = self.app.shutting_down() => break,
                }
            }
            let wakeup = self.app.wakeup.notified();
            tokio::pin!(wakeup);
            wakeup.as_mut().enable();
            if *self.app.shutdown.borrow() {
                break;
            }
            let started = std::time::Instant::now();
            let round = self.round().await;
            gap = started.elapsed().saturating_mul(10).clamp(MIN_PAUSE, MAX_ROUND_GAP);
            last_round = Some(started);
            let pause = match round {
                Ok(pause) => pause,
                Err(e) => {
                    tracing::error!(error = %e, "delivery round failed");
                    ERROR_PAUSE
                }
            };
            tokio::select! {
                _ = &mut wakeup => {}
                _ = self.finished.notified() => {}
                _ = tokio::time::sleep(pause) => {}
                _ = self.app.shutting_down() => break,
            }
        }
        tracing::debug!("delivery scheduler stopped");
        Ok(())
    }

    /// Dispatches what can go now; returns how long to sleep.
    async fn round(self: &Arc<Self>) -> Result<Duration, Error> {
        let now = self.app.clock.unix();
        let domains = self.app.store.read(move |conn| queue::due_domains(conn, now, DOMAINS_PER_ROUND)).await?;
        let mut blocked = false;
        'domains: for domain in domains {
            loop {
                let Some(permit) = self.limits.try_connection(&domain) else {
                    blocked = true;
                    if self.limits.any_connection_free() {
                        break;
                    }
                    break 'domains;
                };
                let (claim_domain, lease_until) = (domain.clone(), now + self.lease_seconds());
                let rows = self
                    .app
                    .store
                    .write(move |tx| queue::claim(tx, &claim_domain, now, lease_until, queue::BATCH))
                    .await?;
                if rows.is_empty() {
                    break;
                }
                let full = rows.len() == queue::BATCH;
                self.spawn_batch(Batch { domain: domain.clone(), rows }, permit);
                if !full {
                    break;
                }
            }
        }
        let next_due = self.app.store.read(queue::next_due).await?;
        Ok(pause(now, next_due, blocked))
    }

    /// Runs a batch (and the batches that follow it, see the module doc) in its own task, watched.
    fn spawn_batch(self: &Arc<Self>, batch: Batch, permit: Permit) {
        let current = Arc::new(std::sync::Mutex::new(batch.rows.iter().map(|row| row.id).collect::<Vec<i64>>()));
        let domain = batch.domain.clone();
        let worker = self.clone();
        let claimed = current.clone();
        let task = tokio::spawn(async move { worker.deliver_in_turn(batch, &claimed).await });
        let worker = self.clone();
        tokio::spawn(async move {
            match task.await {
                Ok(Ok(())) => {}
                Ok(Err(e)) => tracing::error!(%domain, error = %e, "delivery batch failed"),
                Err(e) => tracing::error!(%domain, error = %e, "delivery batch panicked"),
            }
            let ids = std::mem::take(&mut *current.lock().unwrap_or_else(|e| e.into_inner()));
            let now = worker.app.clock.unix();
            let due = now + FAILED_BATCH_PAUSE;
            match worker.app.store.write(move |tx| queue::release(tx, &ids, due, now)).await {
                Ok(0) => {}
                Ok(rows) => tracing::warn!(%domain, rows, "rows of an unfinished batch are queued again"),
                Err(e) => tracing::error!(%domain, error = %e, "cannot put unfinished rows back in the queue"),
            }
            drop(permit);
            worker.finished.notify_one();
        });
    }
}

impl Worker {
    /// Delivers `batch`, then, while batches come full and the appliance runs, claims and
    /// delivers the next one of the same domain. `current` holds the ids of the batch in hand,
    /// for the watcher to put back if the task fails.
    async fn deliver_in_turn(&self, mut batch: Batch, current: &std::sync::Mutex<Vec<i64>>) -> Result<(), Error> {
        for _ in 1..BATCHES_PER_PERMIT {
            let (domain, full) = (batch.domain.clone(), batch.rows.len() == queue::BATCH);
            batch::deliver(self, batch).await?;
            if !full || *self.app.shutdown.borrow() {
                return Ok(());
            }
            let now = self.app.clock.unix();
            let (claim_domain, lease_until) = (domain.clone(), now + self.lease_seconds());
            let rows =
                self.app.store.write(move |tx| queue::claim(tx, &claim_domain, now, lease_until, queue::BATCH)).await?;
            if rows.is_empty() {
                return Ok(());
            }
            *current.lock().unwrap_or_else(|e| e.into_inner()) = rows.iter().map(|row| row.id).collect();
            batch = Batch { domain, rows };
        }
        batch::deliver(self, batch).await
    }
}

/// How long to sleep: until the next row is due (at most [`TICK`]); a full [`TICK`] when due rows
/// wait for a connection permit (a finishing batch wakes the scheduler sooner).
fn pause(now: i64, next_due: Option<i64>, blocked: bool) -> Duration {
    let until_due = match next_due {
        None => TICK,
        Some(at) if at <= now && blocked => TICK,
        Some(at) => Duration::from_secs(u64::try_from(at.saturating_sub(now)).unwrap_or(0)),
    };
    until_due.clamp(MIN_PAUSE, TICK)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_scheduler_sleeps_until_the_next_due_row_at_most_a_tick() {
        assert_eq!(pause(100, None, false), TICK);
        assert_eq!(pause(100, Some(103), false), Duration::from_secs(3));
        assert_eq!(pause(100, Some(10_000), false), TICK);
        assert_eq!(pause(100, Some(90), false), MIN_PAUSE);
        assert_eq!(pause(100, Some(90), true), TICK);
    }
}
