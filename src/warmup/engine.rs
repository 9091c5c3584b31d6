//! The warmup engine: a durable tick on the injected clock, like the campaign engine's.
//!
//! Each tick, in order:
//! 1. **Plan.** Every member whose local day (the workspace's time zone) has no plan yet gets one,
//!    in one write: the ramp's volume for its warmup day ([`super::ramp`]), capped at its daily
//!    limit, spread over the other members on other domains at times inside the window left
//!    today ([`super::plan`]), with words from the corpus, none alike that day
//!    ([`super::corpus`]). A day with no eligible recipient yet is planned later (a member may
//!    join); a day whose window is over plans nothing. Each plan is a `warmup_days` row plus one
//!    `warmup_sends` row per message, unique per (sender, day, seq).
//! 2. **Send.** Due rows (messages and the replies receiving members scheduled,
//!    [`super::engage`]) are built and signed outside the write, then recorded in one
//!    transaction per batch: the row is re-read (still planned, both members still in the pool),
//!    `mta::admit` counts it against the sender's daily limit with every other send, `mta::enqueue`
//!    takes it, and the row becomes `sent` with its Message-ID. A refusal that waiting cures (the
//!    per-minute rate) leaves it planned; one that stands (the daily limit, a paused mailbox)
//!    marks it `skipped` with the refusal's code. A crash before the commit leaves the row
//!    planned, after it `sent`: nothing goes out twice.

use std::sync::Arc;
use std::time::Duration;

use chrono::NaiveDate;
use rusqlite::{Connection, OptionalExtension, Transaction};

use super::corpus::{self, Corpus};
use super::members::{self, Settings};
use super::message::{self, Answering, Draft, Party};
use super::plan::{self, Member};
use super::ramp;
use crate::app::App;
use crate::campaign::windows;
use crate::error::{Error, Result};
use crate::mta::admit::{self, AdmitError};
use crate::mta::enqueue::{self, Outgoing, Prepared, SignerCache};

/// The pause between two ticks (real time).
const PAUSE: Duration = Duration::from_secs(1);
/// Due rows taken per batch.
const BATCH: usize = 100;

/// Starts the engine task.
pub fn start(app: &App) {
    let task = app.clone();
    app.spawn_supervised("warmup engine", async move { run(task).await });
}

async fn run(app: App) -> anyhow::Result<()> {
    let signers = Arc::new(SignerCache::default());
    let corpus = Arc::new(Corpus::embedded());
    loop {
        let started = app.clock.unix();
        if let Err(e) = tick(&app, &signers, &corpus).await {
            tracing::error!(error = %e, "warmup tick failed");
        }
        app.warmup.finished(started);
        tokio::select! {
            _ = tokio::time::sleep(PAUSE) => {}
            _ = app.warmup.notified() => {}
            _ = app.shutting_down() => break,
        }
    }
    Ok(())
}

/// One tick: plan the days that have none, then send what is due; returns the messages sent.
pub async fn tick(app: &App, signers: &Arc<SignerCache>, corpus: &Arc<Corpus>) -> Result<usize> {
    let now = app.clock.unix();
    let words = corpus.clone();
    app.store.write(move |tx| plan_days(tx, &words, now)).await?;
    let mut sent = 0;
    loop {
        let due = app.store.read(move |conn| due_rows(conn, now)).await?;
        if due.is_empty() {
            return Ok(sent);
        }
        let taken = due.len();
        sent += send_batch(app, signers, due, now).await?;
        if taken < BATCH {
            return Ok(sent);
        }
    }
}

/// Plans every member's day that has no plan yet (see the module doc).
fn plan_days(tx: &Transaction, corpus: &Corpus, now: i64) -> Result<()> {
    for workspace_id in members::workspaces(tx)? {
        let settings = members::settings(tx, workspace_id)?;
        let pool = members::pool(tx, workspace_id)?;
        let today = windows::local_day(now, settings.time_zone);
        for member in &pool {
            if !has_plan(tx, member.mailbox_id, &today)? {
                plan_member(tx, corpus, &settings, workspace_id, member, &pool, &today, now)?;
            }
        }
    }
    Ok(())
}

fn has_plan(conn: &Connection, mailbox_id: i64, day: &str) -> rusqlite::Result<bool> {
    conn.prepare_cached("SELECT 1 FROM warmup_days WHERE mailbox_id = ?1 AND day = ?2")?
        .query_row((mailbox_id, day), |_| Ok(()))
        .optional()
        .map(|found| found.is_some())
}

/// The warmup day number of a member today (1 = the day it was enrolled).
pub fn day_number(conn: &Connection, mailbox_id: i64, today: &str) -> Result<Option<i64>> {
    let Some(enrolment) = members::enrolment(conn, mailbox_id)? else {
        return Ok(None);
    };
    let parse = |day: &str| NaiveDate::parse_from_str(day, "%Y-%m-%d").map_err(|e| Error::Internal(e.to_string()));
    Ok(Some(ramp::day_number(parse(&enrolment.enrolled_day)?, parse(today)?)))
}

#[allow(clippy::too_many_arguments)]
fn plan_member(
    tx: &Transaction,
    corpus: &Corpus,
    settings: &Settings,
    workspace_id: i64,
    sender: &Member,
    pool: &[Member],
    today: &str,
    now: i64,
) -> Result<()> {
    let recipients = plan::eligible(sender, pool);
    if recipients.is_empty() {
        return Ok(());
    }
    let day = day_number(tx, sender.mailbox_id, today)?.unwrap_or(1);
    let daily_limit = crate::mailbox::sending(tx, sender.mailbox_id)?.map_or(0, |m| m.daily_limit);
    let target = settings.curve.volume(day);
    let count = target.min(daily_limit);
    let (_, day_end) = windows::local_day_range(now, settings.time_zone);
    let periods = plan::open_periods(&settings.window(), now, day_end);
    let seed = corpus::seed(&[&sender.mailbox_id.to_le_bytes(), today.as_bytes()]);
    let planned = plan::plan_day(sender, pool, count, &periods, seed);
    let names = first_names(tx, sender.mailbox_id, &planned)?;
    let words = corpus.compose_distinct(seed, planned.len(), |i| {
        let (to, from) = &names[i];
        (to.as_str(), from.as_str())
    });
    tx.prepare_cached(
        "INSERT INTO warmup_days (mailbox_id, day, day_number, target, planned) VALUES (?1, ?2, ?3, ?4, ?5)",
    )?
    .execute((sender.mailbox_id, today, day, target, i64::try_from(planned.len()).unwrap_or(i64::MAX)))?;
    let mut insert = tx.prepare_cached(
        "INSERT INTO warmup_sends (workspace_id, sender_id, recipient_id, day, seq, kind, subject, body, due_at) \
         VALUES (?1, ?2, ?3, ?4, ?5, 'message', ?6, ?7, ?8)",
    )?;
    for (seq, (planned, words)) in planned.iter().zip(words).enumerate() {
        let seq = i64::try_from(seq).unwrap_or(i64::MAX) + 1;
        insert.execute((
            workspace_id,
            sender.mailbox_id,
            planned.recipient,
            today,
            seq,
            &words.subject,
            &words.body,
            planned.due_at,
        ))?;
    }
    Ok(())
}

/// The (recipient, sender) first names of each planned message.
fn first_names(conn: &Connection, sender: i64, planned: &[plan::Planned]) -> Result<Vec<(String, String)>> {
    let from = first_name(conn, sender)?;
    planned.iter().map(|p| Ok((first_name(conn, p.recipient)?, from.clone()))).collect()
}

/// A mailbox's first name (its address's local part when it has none).
pub fn first_name(conn: &Connection, mailbox_id: i64) -> Result<String> {
    let (first, address): (String, String) = conn
        .prepare_cached("SELECT first_name, address FROM mailboxes WHERE id = ?1")?
        .query_row([mailbox_id], |row| Ok((row.get(0)?, row.get(1)?)))
        .optional()?
        .ok_or(Error::NotFound)?;
    Ok(if first.trim().is_empty() { address.split('@').next().unwrap_or_default().to_owned() } else { first })
}

/// A due row with what building its message needs.
#[derive(Debug, Clone)]
struct Due {
    id: i64,
    workspace_id: i64,
    sender_id: i64,
    draft: Draft,
}

fn due_rows(conn: &Connection, now: i64) -> Result<Vec<Due>> {
    let mut stmt = conn.prepare_cached(
        "SELECT s.id, s.workspace_id, s.sender_id, f.address, f.display_name, t.address, t.display_name, \
         s.subject, s.body, s.kind, s.answers, s.refs FROM warmup_sends s \
         JOIN mailboxes f ON f.id = s.sender_id JOIN mailboxes t ON t.id = s.recipient_id \
         WHERE s.status = 'planned' AND s.due_at <= ?1 ORDER BY s.due_at, s.id LIMIT ?2",
    )?;
    let rows = stmt.query_map((now, i64::try_from(BATCH).unwrap_or(100)), |row| {
        let kind: String = row.get(9)?;
        let answers: String = row.get(10)?;
        let refs: String = row.get(11)?;
        let subject: String = row.get(7)?;
        let answering = (kind == "reply").then(|| Answering {
            message_id: answers,
            references: refs.split_whitespace().map(str::to_owned).collect(),
            subject: subject.clone(),
        });
        Ok(Due {
            id: row.get(0)?,
            workspace_id: row.get(1)?,
            sender_id: row.get(2)?,
            draft: Draft {
                from: Party { address: row.get(3)?, display_name: row.get(4)? },
                to: Party { address: row.get(5)?, display_name: row.get(6)? },
                subject,
                body: row.get(8)?,
                answering,
            },
        })
    })?;
    Ok(rows.collect::<rusqlite::Result<Vec<_>>>()?)
}

/// Builds and signs the batch, then records it in one write (see the module doc).
async fn send_batch(app: &App, signers: &Arc<SignerCache>, due: Vec<Due>, now: i64) -> Result<usize> {
    let mut ready: Vec<(i64, Prepared)> = Vec::with_capacity(due.len());
    for row in due {
        let built = message::build(&app.keys, row.workspace_id, &row.draft, now);
        let outgoing = Outgoing {
            workspace_id: row.workspace_id,
            mailbox_id: Some(row.sender_id),
            mail_from: row.draft.from.address.clone(),
            recipients: vec![row.draft.to.address.clone()],
            raw: built.raw,
            trace: String::new(),
        };
        match enqueue::prepare_cached(app, signers, outgoing).await {
            Ok(prepared) => ready.push((row.id, prepared)),
            Err(e) => {
                let detail = e.to_string();
                app.store.write(move |tx| skip(tx, row.id, &detail)).await?;
            }
        }
    }
    let sent = app.store.write(move |tx| record_batch(tx, &ready, now)).await?;
    if sent > 0 {
        app.wakeup.notify_one();
    }
    Ok(sent)
}

fn record_batch(tx: &Transaction, ready: &[(i64, Prepared)], now: i64) -> Result<usize> {
    let mut sent = 0;
    for (id, prepared) in ready {
        if record_one(tx, *id, prepared, now)? {
            sent += 1;
        }
    }
    Ok(sent)
}

/// Records one send; false when it was not sent (no longer planned, left the pool, refused).
fn record_one(tx: &Transaction, id: i64, prepared: &Prepared, now: i64) -> Result<bool> {
    let still: Option<(i64, i64)> = tx
        .prepare_cached(
            "SELECT s.sender_id, s.recipient_id FROM warmup_sends s WHERE s.id = ?1 AND s.status = 'planned' \
             AND EXISTS (SELECT 1 FROM warmup_members WHERE mailbox_id = s.sender_id) \
             AND EXISTS (SELECT 1 FROM warmup_members WHERE mailbox_id = s.recipient_id)",
        )?
        .query_row([id], |row| Ok((row.get(0)?, row.get(1)?)))
        .optional()?;
    let Some((sender, _)) = still else {
        tx.prepare_cached(
            "UPDATE warmup_sends SET status = 'skipped', detail = 'left the warmup pool' \
             WHERE id = ?1 AND status = 'planned'",
        )?
        .execute([id])?;
        return Ok(false);
    };
    let recipients: Vec<&str> = prepared.recipients().collect();
    match admit::admit(tx, sender, &recipients, now) {
        Ok(()) => {}
        Err(AdmitError::Refused(refusal)) if refusal.is_temporary() && refusal.code() != "daily_limit" => {
            return Ok(false);
        }
        Err(AdmitError::Refused(refusal)) => {
            skip(tx, id, refusal.code())?;
            return Ok(false);
        }
        Err(AdmitError::Store(e)) => return Err(e.into()),
    }
    enqueue::enqueue(tx, prepared, now)?;
    tx.prepare_cached("UPDATE warmup_sends SET status = 'sent', message_id = ?2, sent_at = ?3 WHERE id = ?1")?
        .execute((id, &prepared.message_id, now))?;
    Ok(true)
}

fn skip(tx: &Transaction, id: i64, detail: &str) -> Result<()> {
    tx.prepare_cached("UPDATE warmup_sends SET status = 'skipped', detail = ?2 WHERE id = ?1 AND status = 'planned'")?
        .execute((id, detail))?;
    Ok(())
}
