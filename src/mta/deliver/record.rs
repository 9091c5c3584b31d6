//! Recording what an attempt did to each recipient of one message, in one write transaction:
//! the queue row (status, attempts, last code / status / reply, next attempt) and an event
//! (`delivered`, `deferred`, `expired`, with the reply text); a permanent failure is recorded by
//! `mta::bounce` (row, class, `bounced` event, suppression of hard bounces); and — for
//! recipients that bounced or expired — a DSN to the sending
//! mailbox, queued in the same transaction through `mta::enqueue` (a local mailbox gets it in its
//! INBOX at once). Messages from the null reverse-path (DSNs themselves) never get a DSN.

use crate::app::App;
use crate::error::Error;
use crate::events::{self, Kind, NewEvent};
use crate::mta::bounce::{self, Bounce, BounceClass};
use crate::mta::dsn::{self, DsnAction, DsnRecipient};
use crate::mta::{self, Outgoing, Prepared, QueueStatus};

use super::classify::{self, Reply, Retry, Severity};
use super::queue::{self, Claimed, Finish};

/// The enhanced status reported for a recipient whose retries ran out (RFC 3463 X.4.7).
const EXPIRED_STATUS: &str = "4.4.7";

/// What happens to one recipient.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    Delivered,
    Deferred(i64),
    Bounced(BounceClass),
    Expired,
}

impl Verdict {
    fn status(&self) -> QueueStatus {
        match self {
            Verdict::Delivered => QueueStatus::Delivered,
            Verdict::Deferred(_) => QueueStatus::Deferred,
            Verdict::Bounced(_) => QueueStatus::Bounced,
            Verdict::Expired => QueueStatus::Expired,
        }
    }

    fn kind(&self) -> Kind {
        match self {
            Verdict::Delivered => Kind::Delivered,
            Verdict::Deferred(_) => Kind::Deferred,
            Verdict::Bounced(_) => Kind::Bounced,
            Verdict::Expired => Kind::Expired,
        }
    }
}

/// The verdict for `row` after `reply` at `now`.
pub fn verdict(app: &App, row: &Claimed, reply: &Reply, now: i64) -> Verdict {
    let config = &app.config.delivery;
    match reply.severity() {
        Severity::Success => Verdict::Delivered,
        Severity::Permanent => Verdict::Bounced(classify::bounce_class(reply)),
        Severity::Temporary => {
            let attempt = row.attempts + 1;
            match classify::after_temporary_failure(
                &config.retry_seconds(),
                attempt,
                row.created_at,
                config.max_age_seconds(),
                now,
            ) {
                Retry::At(at) => Verdict::Deferred(at),
                Retry::Expired => Verdict::Expired,
            }
        }
    }
}

/// Records the outcomes of one message's recipients. `mail_from` is the message's envelope
/// sender; `note` is added to every event's detail (a plaintext fallback, say).
pub async fn record(
    app: &App,
    mail_from: &str,
    outcomes: Vec<(Claimed, Reply)>,
    note: Option<String>,
) -> Result<(), Error> {
    if outcomes.is_empty() {
        return Ok(());
    }
    let now = app.clock.unix();
    let decided: Vec<(Claimed, Reply, Verdict)> = outcomes
        .into_iter()
        .map(|(row, reply)| {
            let verdict = verdict(app, &row, &reply, now);
            (row, reply, verdict)
        })
        .collect();
    let notice = match dsn_recipients(&decided) {
        failed if failed.is_empty() || mail_from.is_empty() => None,
        failed => prepare_dsn(app, mail_from, &decided[0].0, &failed, now).await,
    };
    app.store
        .write(move |tx| {
            for (row, reply, verdict) in &decided {
                apply(tx, row, reply, verdict, note.as_deref(), now)?;
            }
            if let Some(prepared) = &notice {
                mta::enqueue(tx, prepared, now)?;
            }
            Ok::<_, Error>(())
        })
        .await
}

/// One row's update and event (a bounce: `mta::bounce`'s row update, event and suppression).
fn apply(
    tx: &rusqlite::Transaction,
    row: &Claimed,
    reply: &Reply,
    verdict: &Verdict,
    note: Option<&str>,
    now: i64,
) -> Result<(), Error> {
    let mut detail = match verdict {
        Verdict::Expired => format!("gave up after {} attempts; last reply: {}", row.attempts + 1, reply.describe()),
        _ => reply.describe(),
    };
    if let Some(remote) = &reply.remote_mta {
        detail.push_str(&format!(" (from {remote})"));
    }
    if let Some(note) = note {
        detail.push_str(&format!("; {note}"));
    }
    if let Verdict::Bounced(class) = verdict {
        let bounce = Bounce {
            workspace_id: row.workspace_id,
            mailbox_id: row.mailbox_id,
            queue_id: Some(row.id),
            row_from: Some(QueueStatus::InFlight),
            recipient: &row.recipient,
            class: *class,
            code: reply.code,
            status: &reply.effective_status(),
            reply: &reply.describe(),
            detail: &detail,
        };
        bounce::record(tx, &bounce, now)?;
        return Ok(());
    }
    let next_attempt_at = match verdict {
        Verdict::Deferred(at) => Some(*at),
        _ => None,
    };
    let finish = Finish { status: verdict.status(), next_attempt_at, reply };
    if !queue::finish(tx, row.id, &finish, now)? {
        return Ok(()); // no longer in flight
    }
    let event = NewEvent {
        mailbox_id: row.mailbox_id,
        queue_id: Some(row.id),
        detail: &detail,
        ..NewEvent::new(row.workspace_id, verdict.kind(), &row.recipient)
    };
    events::record(tx, &event, now)?;
    Ok(())
}

/// The DSN lines for the recipients that bounced or expired.
fn dsn_recipients(decided: &[(Claimed, Reply, Verdict)]) -> Vec<DsnRecipient> {
    decided
        .iter()
        .filter_map(|(row, reply, verdict)| {
            let status = match verdict {
                Verdict::Bounced(_) => reply.effective_status(),
                Verdict::Expired => EXPIRED_STATUS.to_string(),
                Verdict::Delivered | Verdict::Deferred(_) => return None,
            };
            Some(DsnRecipient {
                recipient: row.recipient.clone(),
                action: DsnAction::Failed,
                status,
                diagnostic: reply.diagnostic(),
                remote_mta: reply.remote_mta.as_ref().map(|r| r.split(" [").next().unwrap_or(r).to_string()),
            })
        })
        .collect()
}

/// Builds and prepares the DSN to the sending mailbox (or the envelope sender when the mailbox
/// is gone). A failure here is logged: the bounce is still recorded, without a notice.
async fn prepare_dsn(app: &App, mail_from: &str, row: &Claimed, failed: &[DsnRecipient], now: i64) -> Option<Prepared> {
    let (message_id, mailbox_id) = (row.message_id, row.mailbox_id);
    let loaded = app
        .store
        .read(move |conn| {
            let body = queue::body(conn, message_id)?;
            let mailbox = match mailbox_id {
                Some(id) => crate::mailbox::address_of(conn, id)?,
                None => None,
            };
            Ok::<_, rusqlite::Error>((body, mailbox))
        })
        .await;
    let (body, mailbox) = match loaded {
        Ok((Some(body), mailbox)) => (body, mailbox),
        Ok((None, _)) => return None,
        Err(e) => {
            tracing::error!(error = %e, "cannot load a bounced message for its DSN");
            return None;
        }
    };
    let sender = mailbox.unwrap_or_else(|| mail_from.to_string());
    let raw = dsn::build(&app.config.hostname, &body, &sender, failed, now);
    let outgoing = Outgoing {
        workspace_id: row.workspace_id,
        mailbox_id: row.mailbox_id,
        mail_from: String::new(),
        recipients: vec![sender],
        raw,
        trace: String::new(),
    };
    match mta::prepare(app, outgoing).await {
        Ok(prepared) => Some(prepared),
        Err(e) => {
            tracing::error!(error = %e, "cannot prepare a DSN");
            None
        }
    }
}
