//! Delivering one claimed batch: rows of one destination domain, grouped by message.
//!
//! 1. Route: the smarthost, or the domain's MX hosts (`route.rs`). A routing failure is every
//!    row's reply (a null MX or NXDOMAIN bounces them all at once; SERVFAIL defers them).
//! 2. Split the messages by egress address (the stable pick by sending domain; one group when
//!    no source addresses are configured) and open one connection per group (`session.rs`).
//!    A connection that cannot be opened gives its failure to every row of the group.
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
use super::route::{self, Target};
use super::session::{self, Egress, Security, Session, Settings};

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
    let targets = match route(worker, &batch.domain).await {
        Ok(targets) => targets,
        Err(reply) => {
            for job in jobs {
                fail_job(worker, job, &reply).await?;
            }
            return Ok(());
        }
    };
    for (egress, jobs) in by_egress(&worker.source_ips, jobs) {
        over_one_connection(worker, &batch.domain, &targets, egress, jobs).await?;
    }
    Ok(())
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

async fn route(worker: &Worker, domain: &str) -> Result<Vec<Target>, Reply> {
    let config = &worker.app.config.delivery;
    if config.smarthost.is_empty() {
        route::direct(&worker.app.resolver, domain, config.mx_port).await
    } else {
        route::smarthost(&worker.app.resolver, &config.smarthost).await
    }
}

/// Groups jobs by egress pick, keyed by the sending domain (one group without source addresses).
fn by_egress(source_ips: &[IpAddr], jobs: Vec<Job>) -> Vec<(Egress, Vec<Job>)> {
    let mut groups: Vec<(Egress, Vec<Job>)> = Vec::new();
    for job in jobs {
        let sending_domain = job.envelope.mail_from.rsplit_once('@').map(|(_, d)| d).unwrap_or_default();
        let egress = Egress::pick(source_ips, sending_domain);
        match groups.iter_mut().find(|(e, _)| *e == egress) {
            Some((_, group)) => group.push(job),
            None => groups.push((egress, vec![job])),
        }
    }
    groups
}

fn security(worker: &Worker, domain: &str) -> Security {
    let config = &worker.app.config.delivery;
    if config.smarthost.is_empty() {
        let fallback = config.limits_for(domain).tls_fallback_plaintext.unwrap_or(config.tls_fallback_plaintext);
        Security::Opportunistic { fallback_plaintext: fallback }
    } else {
        let credentials = (!config.smarthost_user.is_empty())
            .then(|| Credentials::new(config.smarthost_user.clone(), config.smarthost_password.clone()));
        Security::Smarthost { credentials }
    }
}

async fn over_one_connection(
    worker: &Worker,
    domain: &str,
    targets: &[Target],
    egress: Egress,
    jobs: Vec<Job>,
) -> Result<(), Error> {
    let settings = Settings {
        hostname: &worker.app.config.hostname,
        timeout: worker.timeout,
        egress,
        connectors: &worker.connectors,
        security: security(worker, domain),
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
