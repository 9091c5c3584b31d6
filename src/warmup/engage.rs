//! The receiving side of warmup: what a pool member does with warmup mail, like a person would.
//!
//! The mail store's one way in (`mailstore::receive`) recognises warmup mail by its mark
//! ([`super::marker`], checked against the receiving workspace) and, instead of classifying it
//! as a reply, files it read (`\Seen`) in the member's own `Warmup` folder (so it never shows in
//! INBOX, the reply inbox or campaign statistics) and calls [`received`], in the same
//! transaction, which:
//! - records the placement: `spam` when the message landed in Spam/Junk (and was moved out), else
//!   `inbox` (the sender's placement figures are these rows);
//! - for a first message (not itself a reply) between two members, decides from the Message-ID
//!   whether to answer (the workspace's `warmup_reply_percent`, default 30%) and, if so, plans a
//!   reply in the same thread (`Re:`, In-Reply-To, References) 10 to 60 minutes later, which the
//!   engine sends like any warmup message. Replies are not answered again.
//!
//! Outside accounts engage over their own IMAP; their poller calls [`received`] with where it
//! found the message.

use rusqlite::Transaction;

use super::corpus::{self, Corpus};
use super::draw::Draw;
use super::members;
use crate::campaign::windows;
use crate::error::Result;
use crate::mailstore::thread::ThreadFacts;

/// The folder warmup mail is filed in.
pub const FOLDER: &str = "Warmup";
/// The earliest and latest delay of a reply, in seconds.
const REPLY_DELAY: (i64, i64) = (10 * 60, 60 * 60);

/// Where a warmup message landed before it was filed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Placement {
    Inbox,
    Spam,
}

impl Placement {
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Placement::Inbox => "inbox",
            Placement::Spam => "spam",
        }
    }
}

/// Records a warmup message received by `mailbox_id` and plans its answer (see the module doc).
pub fn received(
    tx: &Transaction,
    workspace_id: i64,
    mailbox_id: i64,
    facts: &ThreadFacts,
    placement: Placement,
    now: i64,
) -> Result<()> {
    let settings = members::settings(tx, workspace_id)?;
    let sender = crate::mailbox::id_in_workspace(tx, workspace_id, &facts.from)?;
    let day = windows::local_day(now, settings.time_zone);
    let added = tx
        .prepare_cached(
            "INSERT INTO warmup_received (workspace_id, mailbox_id, sender_id, message_id, day, placement, received_at) \
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7) ON CONFLICT (mailbox_id, message_id) DO NOTHING",
        )?
        .execute((workspace_id, mailbox_id, sender, &facts.message_id, &day, placement.as_str(), now))?;
    let Some(sender) = sender else {
        return Ok(());
    };
    let first_message = facts.in_reply_to.is_empty() && facts.references.is_empty();
    if added == 0 || !first_message || !members::is_member(tx, mailbox_id)? || !members::is_member(tx, sender)? {
        return Ok(());
    }
    let mut draw = Draw::new(corpus::seed(&[b"reply", facts.message_id.as_bytes()]));
    if draw.below(100) >= settings.reply_percent {
        return Ok(());
    }
    let due_at = now + REPLY_DELAY.0 + draw.below(REPLY_DELAY.1 - REPLY_DELAY.0);
    let to = super::engine::first_name(tx, sender)?;
    let from = super::engine::first_name(tx, mailbox_id)?;
    let body = Corpus::embedded().reply(draw.next_u64(), &to, &from);
    tx.prepare_cached(
        "INSERT INTO warmup_sends (workspace_id, sender_id, recipient_id, day, seq, kind, subject, body, answers, \
         refs, due_at) VALUES (?1, ?2, ?3, ?4, 0, 'reply', ?5, ?6, ?7, ?8, ?9) ON CONFLICT DO NOTHING",
    )?
    .execute((
        workspace_id,
        mailbox_id,
        sender,
        windows::local_day(due_at, settings.time_zone),
        &facts.subject,
        &body,
        &facts.message_id,
        facts.references.join(" "),
        due_at,
    ))?;
    Ok(())
}
