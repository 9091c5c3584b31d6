//! Bounces: one classification for a permanent failure, whether the receiving server refused the
//! recipient during delivery or a DSN reports the failure later, and the one writer of what a
//! bounce changes (the queue row, the suppression list, the `bounced` event).
//!
//! The class comes from the enhanced status code (RFC 3463), falling back to the basic reply
//! code and the reply text when no enhanced code was given:
//!
//! | status                           | class     | meaning                                      |
//! |----------------------------------|-----------|----------------------------------------------|
//! | x.1.7, x.1.8                     | `policy`  | our sender address was refused               |
//! | x.1.x (x.1.1, x.1.2, x.1.10 ...) | `hard`    | no such mailbox / domain, null MX            |
//! | x.2.1                            | `hard`    | mailbox disabled                             |
//! | x.2.x (x.2.2 full ...)           | `soft`    | mailbox full, message too big for it         |
//! | x.3.x, x.4.x, x.5.x              | `soft`    | system, network, protocol trouble            |
//! | x.6.x                            | `content` | the content was refused                      |
//! | x.7.x with block words           | `block`   | IP/domain on a blocklist, reputation         |
//! | x.7.x                            | `policy`  | not authorized, authentication, policy       |
//! | any, with rate words             | `rate`    | sending too fast                             |
//!
//! A `hard` reply to `MAIL FROM` speaks about our sender, not the recipient: `policy`. A DSN's
//! `Diagnostic-Code` ("smtp; 554 5.7.1 blocked using ...") gives the reply code and text, so a
//! refusal reads the same whichever way it arrives.
//!
//! Effects ([`record`]), in the caller's transaction: the row becomes `bounced` with the class
//! and the reply (only from the status the caller expects it in: `in_flight` for a refusal
//! during delivery, `delivered` for a late DSN; a row found elsewhere is left alone and nothing
//! is recorded, so a DSN for a row already bounced is not counted twice); a `bounced` event; and
//! for `hard` bounces a suppression entry, only for an address the workspace has sent to (a
//! forged DSN cannot put arbitrary addresses on the list).

use rusqlite::{Connection, OptionalExtension, Transaction};
use serde::Serialize;

use crate::error::Result;
use crate::events::{self, Kind, NewEvent};
use crate::mta::QueueStatus;
use crate::suppression::{self, Reason};

/// The kind of a permanent failure (see the module doc's table).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum BounceClass {
    Hard,
    Soft,
    Policy,
    Block,
    Content,
    Rate,
}

impl BounceClass {
    pub const ALL: [BounceClass; 6] = [
        BounceClass::Hard,
        BounceClass::Soft,
        BounceClass::Policy,
        BounceClass::Block,
        BounceClass::Content,
        BounceClass::Rate,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            BounceClass::Hard => "hard",
            BounceClass::Soft => "soft",
            BounceClass::Policy => "policy",
            BounceClass::Block => "block",
            BounceClass::Content => "content",
            BounceClass::Rate => "rate",
        }
    }
}

crate::store::names::stored_name!(BounceClass, "class");

/// A permanent failure as a server stated it.
#[derive(Debug, Clone, Copy)]
pub struct Failure<'a> {
    /// The basic reply code, when there was a reply.
    pub code: Option<u16>,
    /// The enhanced status code ("5.7.1"); "" when none was given.
    pub status: &'a str,
    /// The reply text.
    pub text: &'a str,
    /// The reply refused our sender (`MAIL FROM`), not the recipient.
    pub about_sender: bool,
}

const BLOCK_WORDS: &[&str] =
    &["block", "blacklist", "denylist", "spamhaus", "spamcop", "barracuda", "reputation", "rbl", "listed"];
const RATE_WORDS: &[&str] = &["rate limit", "ratelimit", "too many", "rate of", "throttl", "too fast"];
const NO_MAILBOX_WORDS: &[&str] = &[
    "user unknown",
    "unknown user",
    "no such user",
    "no such mailbox",
    "does not exist",
    "mailbox unavailable",
    "invalid recipient",
    "recipient not found",
];

/// The class of a permanent failure (see the module doc).
pub fn classify(failure: &Failure<'_>) -> BounceClass {
    let text = failure.text.to_lowercase();
    let has = |words: &[&str]| words.iter().any(|w| text.contains(w));
    let class = if has(RATE_WORDS) {
        BounceClass::Rate
    } else {
        match status_parts(failure.status) {
            Some((_, 1, 7 | 8)) => BounceClass::Policy,
            Some((_, 1, _)) | Some((_, 2, 1)) => BounceClass::Hard,
            Some((_, 2..=5, _)) => BounceClass::Soft,
            Some((_, 6, _)) => BounceClass::Content,
            Some((_, 7, _)) if has(BLOCK_WORDS) => BounceClass::Block,
            Some((_, 7, _)) => BounceClass::Policy,
            Some(_) => BounceClass::Soft,
            None => class_without_status(failure.code, &has),
        }
    };
    if class == BounceClass::Hard && failure.about_sender { BounceClass::Policy } else { class }
}

fn class_without_status(code: Option<u16>, has: &dyn Fn(&[&str]) -> bool) -> BounceClass {
    if has(BLOCK_WORDS) {
        BounceClass::Block
    } else if matches!(code, Some(550 | 551 | 553)) && has(NO_MAILBOX_WORDS) {
        BounceClass::Hard
    } else if code == Some(554) {
        BounceClass::Policy
    } else {
        BounceClass::Soft
    }
}

/// "5.7.1" → (5, 7, 1).
fn status_parts(status: &str) -> Option<(u16, u16, u16)> {
    let mut parts = status.split('.').map(|p| p.parse::<u16>().ok());
    match (parts.next(), parts.next(), parts.next(), parts.next()) {
        (Some(Some(class)), Some(Some(subject)), Some(Some(detail)), None) => Some((class, subject, detail)),
        _ => None,
    }
}

/// The reply code and the text of a DSN's `Diagnostic-Code` ("smtp; 554 5.7.1 blocked" gives
/// 554 and "5.7.1 blocked"); a diagnostic of another type gives no code and its text.
pub fn diagnostic_reply(diagnostic: &str) -> (Option<u16>, &str) {
    let (kind, text) = diagnostic.split_once(';').unwrap_or(("", diagnostic));
    let text = text.trim();
    if !kind.trim().eq_ignore_ascii_case("smtp") {
        return (None, text);
    }
    let code = text.get(..3).and_then(|code| code.parse::<u16>().ok()).filter(|code| (200..600).contains(code));
    match code {
        Some(code) => (Some(code), text[3..].trim_start_matches(['-', ' '])),
        None => (None, text),
    }
}

/// One recipient's permanent failure, to be recorded.
#[derive(Debug, Clone)]
pub struct Bounce<'a> {
    pub workspace_id: i64,
    /// The sending mailbox (the event's mailbox).
    pub mailbox_id: Option<i64>,
    /// The queue row of the recipient, when known.
    pub queue_id: Option<i64>,
    /// The status the row must be in to become `bounced`; `None` leaves the row as it is.
    pub row_from: Option<QueueStatus>,
    pub recipient: &'a str,
    pub class: BounceClass,
    pub code: Option<u16>,
    /// The enhanced status code to record ("5.1.1").
    pub status: &'a str,
    /// The reply as people read it, stored on the row.
    pub reply: &'a str,
    /// The event's detail (the reply, and where it came from).
    pub detail: &'a str,
}

/// Records a bounce (see the module doc). Returns false when the row was not in `row_from`
/// (nothing was recorded).
pub fn record(tx: &Transaction, bounce: &Bounce<'_>, now: i64) -> Result<bool> {
    if let (Some(id), Some(from)) = (bounce.queue_id, bounce.row_from) {
        let changed = tx
            .prepare_cached(
                "UPDATE queue SET status = 'bounced', bounce_class = ?3, attempts = attempts + (status = 'in_flight'), \
                 lease_until = NULL, last_code = coalesce(?4, last_code), last_status = ?5, last_reply = ?6, \
                 updated_at = ?7 WHERE id = ?1 AND status = ?2",
            )?
            .execute((id, from, bounce.class, bounce.code, bounce.status, bounce.reply, now))?;
        if changed == 0 {
            return Ok(false);
        }
    }
    let event = NewEvent {
        mailbox_id: bounce.mailbox_id,
        queue_id: bounce.queue_id,
        class: Some(bounce.class),
        detail: bounce.detail,
        ..NewEvent::new(bounce.workspace_id, Kind::Bounced, bounce.recipient)
    };
    events::record(tx, &event, now)?;
    if bounce.class == BounceClass::Hard
        && (bounce.queue_id.is_some() || sent_to(tx, bounce.workspace_id, bounce.recipient)?)
    {
        suppression::add(tx, bounce.workspace_id, bounce.recipient, Reason::HardBounce, bounce.reply, now)?;
    }
    Ok(true)
}

/// Whether the workspace has ever sent to `address`.
pub fn sent_to(conn: &Connection, workspace_id: i64, address: &str) -> rusqlite::Result<bool> {
    Ok(conn
        .prepare_cached("SELECT 1 FROM queue WHERE workspace_id = ?1 AND recipient = ?2 COLLATE NOCASE LIMIT 1")?
        .query_row((workspace_id, address), |_| Ok(()))
        .optional()?
        .is_some())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn class(code: u16, status: &str, text: &str) -> BounceClass {
        classify(&Failure { code: Some(code), status, text, about_sender: false })
    }

    #[test]
    fn the_classification_table() {
        let cases = [
            (550, "5.1.1", "no such user", BounceClass::Hard),
            (550, "5.1.2", "no such domain", BounceClass::Hard),
            (556, "5.1.10", "null MX", BounceClass::Hard),
            (550, "5.2.1", "mailbox disabled", BounceClass::Hard),
            (552, "5.2.2", "mailbox full", BounceClass::Soft),
            (554, "5.3.4", "message too big for system", BounceClass::Soft),
            (554, "5.6.0", "message content rejected", BounceClass::Content),
            (550, "5.7.1", "delivery not authorized", BounceClass::Policy),
            (554, "5.7.1", "client host blocked using zen.spamhaus.org", BounceClass::Block),
            (550, "5.7.1", "IP reputation too low", BounceClass::Block),
            (550, "5.7.28", "unusual rate of unsolicited mail", BounceClass::Rate),
            (553, "5.1.8", "sender domain not found", BounceClass::Policy),
            (550, "", "user unknown", BounceClass::Hard),
            (554, "", "transaction failed", BounceClass::Policy),
            (550, "", "rejected: listed at bl.example", BounceClass::Block),
            (552, "", "too big", BounceClass::Soft),
            (550, "4.4.7", "gave up", BounceClass::Soft),
        ];
        for (code, status, text, expected) in cases {
            assert_eq!(class(code, status, text), expected, "{code} {status} {text}");
        }
    }

    #[test]
    fn a_hard_reply_to_mail_from_is_about_the_sender() {
        let failure = Failure { code: Some(550), status: "5.1.1", text: "sender unknown", about_sender: true };
        assert_eq!(classify(&failure), BounceClass::Policy);
    }

    #[test]
    fn diagnostics_give_the_reply() {
        assert_eq!(diagnostic_reply("smtp; 554 5.7.1 blocked"), (Some(554), "5.7.1 blocked"));
        assert_eq!(diagnostic_reply("SMTP;550-5.1.1 gone"), (Some(550), "5.1.1 gone"));
        assert_eq!(diagnostic_reply("x-unix; no such file"), (None, "no such file"));
        assert_eq!(diagnostic_reply("smtp; later"), (None, "later"));
        assert_eq!(diagnostic_reply(""), (None, ""));
    }
}
