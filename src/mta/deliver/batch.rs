//! Delivering one claimed batch: rows of one destination domain, grouped by message.
//!
//! 1. Split the messages by the way they leave (a domain route, a workspace route, the
//!    smarthost, or direct: `route::choose`) and by egress address (the sending domain's assigned
//!    address, else the stable pick; one group when no source addresses are configured). Messages
//!    of different groups never share a connection.
//! 2. Per group, find the addresses (the relay's, or the destination's MX hosts, looked up once
//!    per batch) and open one connection (`session.rs`). A routing failure is every row's reply
//!    (a null MX or NXDOMAIN bounces them all at once; SERVFAIL defers them), and so is a
//!    connection that cannot be opened.
//! 3. Over the connection, one message at a time: recipients over the domain's per-minute limit
//!    are postponed (no attempt counted), the others get MAIL / RCPT / DATA, and the replies
//!    are recorded (`record.rs`) by a task of their own while the next message is sent; the
//!    batch ends only once every record is committed (so the worker never puts back a row
//!    whose outcome is on its way to the database).
//! 4. If the connection breaks, or the appliance is stopping, the messages not yet tried go
//!    back to the queue as they were, due at once.

use std::collections::BTreeMap;
use std::net::IpAddr;

use mail_send::Credentials;
use tokio::task::JoinSet;

use crate::error::Error;

use super::Worker;
use super::classify::Reply;
use super::queue::{self, Claimed, Envelope};
use super::record;
use super::route::{self, Target, Via};
use super::session::{self, Egress, Security, Session, Settings, Trust};

/// Rows of one destination domain, claimed together.
#[derive(Debug)]
pub struct Batch {
    pub domain: String,
    pub rows: Vec<Claimed>,
}

/// One message and the rows (recipients) of it in the batch.
#[derive(Debug)]
struct Job {
    envelope: Envelope,
    rows: Vec<Claimed>,
}

/// Delivers a batch (see the module doc).
pub async fn deliver(worker: &Worker, batch: Batch) -> Result<(), Error> {
    let jobs = jobs(worker, batch.rows).await?;
    let mut direct: Option<Result<Vec<Target>, Reply>> = None;
    for ((via, egress), jobs) in groups(worker, jobs) {
        let targets = match (via, &direct) {
            (Via::Direct, Some(found)) => found.clone(),
            (Via::Direct, None) => {
                let config = &worker.app.config.delivery;
                let found = route::direct(&worker.app.resolver, &batch.domain, config.mx_port).await;
                direct = Some(found.clone());
                found
            }
            (via, _) => relay_targets(worker, via).await,
        };
        match targets {
            Ok(targets) => over_one_connection(worker, &batch.domain, &targets, via, egress, jobs).await?,
            Err(reply) => {
                for job in jobs {
                    fail_job(worker, job, &reply).await?;
                }
            }
        }
    }
    Ok(())
}

async fn relay_targets(worker: &Worker, via: Via) -> Result<Vec<Target>, Reply> {
    match route::relay(&worker.app.config.delivery, via) {
        Some(relay) => route::smarthost(&worker.app.resolver, relay.address).await,
        None => Err(Reply::local("4.3.5", "the delivery route is gone from the configuration")),
    }
}

/// Groups jobs by way out and egress address, in a stable order.
fn groups(worker: &Worker, jobs: Vec<Job>) -> BTreeMap<(Via, Egress), Vec<Job>> {
    let config = &worker.app.config.delivery;
    let mut groups: BTreeMap<(Via, Egress), Vec<Job>> = BTreeMap::new();
    for job in jobs {
        let envelope = &job.envelope;
        let sending_domain = envelope.mail_from.rsplit_once('@').map(|(_, d)| d).unwrap_or_default();
        let via = route::choose(config, envelope.workspace_id, &envelope.workspace_name, sending_domain);
        let assigned = assigned_source(worker, sending_domain, envelope.source_ip.as_deref());
        let egress = Egress::assigned_or_pick(&worker.source_ips, sending_domain, assigned);
        groups.entry((via, egress)).or_default().push(job);
    }
    groups
}

/// The sending domain's assigned egress address, if it is still one of `delivery.source_ips`;
/// otherwise `None` (automatic), with a warning logged once per domain and address.
fn assigned_source(worker: &Worker, sending_domain: &str, stored: Option<&str>) -> Option<IpAddr> {
    let stored = stored?;
    let ip = stored.parse::<IpAddr>().ok().filter(|ip| worker.source_ips.contains(ip));
    if ip.is_none() {
        let key = format!("{sending_domain} {stored}");
        let mut warned = worker.warned_sources.lock().unwrap_or_else(|e| e.into_inner());
        if warned.insert(key) {
            tracing::warn!(
                domain = %sending_domain,
                source_ip = %stored,
                "the domain's egress address is not in delivery.source_ips; using the automatic pick"
            );
        }
    }
    ip
}

/// Groups rows by message, with each message's envelope. Rows whose message is gone are left
/// for the worker's release (they vanish with their message anyway).
async fn jobs(worker: &Worker, rows: Vec<Claimed>) -> Result<Vec<Job>, Error> {
    let mut message_ids: Vec<i64> = rows.iter().map(|r| r.message_id).collect();
    message_ids.dedup();
    let envelopes = worker.app.store.read(move |conn| queue::envelopes(conn, &message_ids)).await?;
    let mut by_message: BTreeMap<i64, Job> = BTreeMap::new();
    for row in rows {
        let Some(envelope) = envelopes.iter().find(|e| e.id == row.message_id) else { continue };
        by_message
            .entry(row.message_id)
            .or_insert_with(|| Job { envelope: envelope.clone(), rows: Vec::new() })
            .rows
            .push(row);
    }
    Ok(by_message.into_values().collect())
}

fn security(worker: &Worker, domain: &str, via: Via) -> Security {
    let config = &worker.app.config.delivery;
    match route::relay(config, via) {
        None => {
            let fallback = config.limits_for(domain).tls_fallback_plaintext.unwrap_or(config.tls_fallback_plaintext);
            Security::Opportunistic { fallback_plaintext: fallback }
        }
        Some(relay) => {
            let credentials =
                (!relay.user.is_empty()).then(|| Credentials::new(relay.user.to_string(), relay.password.to_string()));
            let trust = match (relay.verify, relay.ca) {
                (false, _) => Trust::Any,
                (true, "") => Trust::Platform,
                (true, ca) => Trust::Ca(ca.to_string()),
            };
            Security::Smarthost { credentials, tls: relay.tls, trust }
        }
    }
}

async fn over_one_connection(
    worker: &Worker,
    domain: &str,
    targets: &[Target],
    via: Via,
    egress: Egress,
    jobs: Vec<Job>,
) -> Result<(), Error> {
    let settings = Settings {
        hostname: &worker.app.config.hostname,
        timeout: worker.timeout,
        egress,
        connectors: &worker.connectors,
        security: security(worker, domain, via),
    };
    let mut session = match session::connect(targets, &settings).await {
        Ok(session) => session,
        Err(reply) => {
            for job in jobs {
                fail_job(worker, job, &reply).await?;
            }
            return Ok(());
        }
    };
    let mut recording = JoinSet::new();
    let mut jobs = jobs.into_iter();
    let mut sent = Ok(());
    while let Some(job) = jobs.next() {
        if !session.usable() || *worker.app.shutdown.borrow() {
            let untried: Vec<i64> = std::iter::once(job).chain(jobs).flat_map(|j| j.rows).map(|r| r.id).collect();
            let now = worker.app.clock.unix();
            let released = worker.app.store.write(move |tx| queue::release(tx, &untried, now, now)).await;
            sent = released.map(|_| ()).map_err(Error::from);
            break;
        }
        if let Err(e) = send_job(worker, domain, &mut session, job, &mut recording).await {
            sent = Err(e);
            break;
        }
    }
    session.close().await;
    let mut recorded = Ok(());
    while let Some(done) = recording.join_next().await {
        match done {
            Ok(Ok(())) => {}
            Ok(Err(e)) => recorded = Err(e),
            Err(e) => recorded = Err(Error::Internal(format!("recording a delivery failed: {e}"))),
        }
    }
    sent.and(recorded)
}

/// Sends one message to its rows that the per-minute limit allows; its replies are recorded by
/// a task added to `recording`.
async fn send_job(
    worker: &Worker,
    domain: &str,
    session: &mut Session,
    job: Job,
    recording: &mut JoinSet<Result<(), Error>>,
) -> Result<(), Error> {
    let now = worker.app.clock.unix();
    let mut allowed = Vec::with_capacity(job.rows.len());
    let mut postponed = Vec::new();
    for row in job.rows {
        match worker.limits.take_send(domain, now) {
            Ok(()) => allowed.push(row),
            Err(until) => postponed.push((row.id, until)),
        }
    }
    if !postponed.is_empty() {
        worker
            .app
            .store
            .write(move |tx| {
                for (id, until) in postponed {
                    queue::postpone(tx, id, until, now)?;
                }
                Ok::<_, rusqlite::Error>(())
            })
            .await?;
    }
    if allowed.is_empty() {
        return Ok(());
    }
    let message_id = job.envelope.id;
    let Some(body) = worker.app.store.read_quick(|conn| queue::body(conn, message_id))? else {
        return Ok(()); // deleted meanwhile; its rows went with it
    };
    let recipients: Vec<String> = allowed.iter().map(|r| r.recipient.clone()).collect();
    let replies = session.send(&job.envelope.mail_from, &recipients, &body).await;
    let outcomes = allowed.into_iter().zip(replies).collect();
    let (app, mail_from, note) = (worker.app.clone(), job.envelope.mail_from, session.security_note());
    recording.spawn(async move { record::record(&app, &mail_from, outcomes, note).await });
    Ok(())
}

/// Gives every row of a job the same failure.
async fn fail_job(worker: &Worker, job: Job, reply: &Reply) -> Result<(), Error> {
    let outcomes = job.rows.into_iter().map(|row| (row, reply.clone())).collect();
    record::record(&worker.app, &job.envelope.mail_from, outcomes, None).await
}
