//! Threading: linking a received message to the message it answers, and grouping a mailbox's
//! conversation with one correspondent into a thread (`threads`, `mail.thread_id`).
//!
//! The algorithm, for a message just stored in a mailbox:
//! 1. The Message-IDs it names — `In-Reply-To` first, then `References` from the newest (last)
//!    to the oldest — are looked up, in that order, among the messages this appliance sent
//!    from the workspace (`messages.message_id`, the receiving mailbox's own first) and among the
//!    mail stored in the mailbox (`mail.message_id`). The first hit is what it answers.
//! 2. Without a hit, the subject decides: the subject with its reply and forward prefixes
//!    (Re:, AW:, Fwd:, WG:, TR:, RV:, SV:, Antw:...) removed, compared case-insensitively, against
//!    the last 50 messages the mailbox sent to the sender's address; then against the mailbox's
//!    threads with that correspondent.
//! 3. The thread is the answered mail's thread, else the thread started by the answered sent
//!    message (`threads.root_message`), else the subject's thread, else a new one.

use rusqlite::{Connection, OptionalExtension, Transaction};

use crate::error::Result;

/// How many of a mailbox's latest messages to a correspondent the subject fallback compares.
const SUBJECT_FALLBACK_LIMIT: i64 = 50;

/// Prefixes mail programs put before the subject of replies and forwards, in several languages.
const SUBJECT_PREFIXES: [&str; 16] =
    ["re", "aw", "antw", "antwort", "sv", "vs", "r", "ris", "rif", "fwd", "fw", "wg", "tr", "rv", "enc", "doorst"];

/// What threading needs to know about a message.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ThreadFacts {
    /// The message's own Message-ID (without angle brackets), "" when absent.
    pub message_id: String,
    /// The `In-Reply-To` ids.
    pub in_reply_to: Vec<String>,
    /// The `References` ids, oldest first.
    pub references: Vec<String>,
    pub subject: String,
    /// The From address, lowercased.
    pub from: String,
}

impl ThreadFacts {
    /// Reads the facts from a raw message's header.
    pub fn read(raw: &[u8]) -> ThreadFacts {
        let Some(message) = mail_parser::MessageParser::default().parse_headers(raw) else {
            return ThreadFacts::default();
        };
        let ids = |value: &mail_parser::HeaderValue<'_>| -> Vec<String> {
            match value {
                mail_parser::HeaderValue::Text(id) => vec![id.to_string()],
                mail_parser::HeaderValue::TextList(ids) => ids.iter().map(|id| id.to_string()).collect(),
                _ => Vec::new(),
            }
        };
        ThreadFacts {
            message_id: message.message_id().unwrap_or_default().to_string(),
            in_reply_to: ids(message.in_reply_to()),
            references: ids(message.references()),
            subject: message.subject().unwrap_or_default().to_string(),
            from: message
                .from()
                .and_then(|from| from.first())
                .and_then(|addr| addr.address())
                .map(|address| address.trim().to_lowercase())
                .unwrap_or_default(),
        }
    }

    /// The ids to try, in order: In-Reply-To, then References newest first; no repeats.
    fn candidate_ids(&self) -> Vec<&str> {
        let mut ids: Vec<&str> = Vec::new();
        for id in self.in_reply_to.iter().chain(self.references.iter().rev()) {
            let id = id.trim();
            if !id.is_empty() && !ids.contains(&id) {
                ids.push(id);
            }
        }
        ids
    }
}

/// How a stored message was linked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Link {
    pub thread_id: i64,
    /// The message this appliance sent (`messages.id`) that it answers.
    pub answers_message: Option<i64>,
    /// The stored mail (`mail.id`) that it answers.
    pub answers_mail: Option<i64>,
}

/// The subject without reply/forward prefixes, lowercased, whitespace collapsed.
pub fn normalize_subject(subject: &str) -> String {
    let mut rest = subject.trim();
    while let Some((prefix, after)) = rest.split_once(':') {
        let word = prefix.trim().to_lowercase();
        // "Re[2]", "Re(2)" and "Fwd 2" count too.
        let word = word.trim_end_matches(|c: char| c.is_ascii_digit() || "[]() ".contains(c));
        if !SUBJECT_PREFIXES.contains(&word) {
            break;
        }
        rest = after.trim_start();
    }
    rest.split_whitespace().collect::<Vec<_>>().join(" ").to_lowercase()
}

/// Links the stored mail row `mail_id` of `mailbox_id` (see the module doc) and records the link.
pub fn link(
    tx: &Transaction,
    workspace_id: i64,
    mailbox_id: i64,
    mail_id: i64,
    facts: &ThreadFacts,
    now: i64,
) -> Result<Link> {
    let (mut answers_message, mut answers_mail) = (None, None);
    for id in facts.candidate_ids() {
        answers_message = sent_message_by_id(tx, workspace_id, mailbox_id, id)?;
        answers_mail = stored_mail_by_id(tx, mailbox_id, id, mail_id)?;
        if answers_message.is_some() || answers_mail.is_some() {
            break;
        }
    }
    let subject = normalize_subject(&facts.subject);
    if answers_message.is_none() && answers_mail.is_none() && !subject.is_empty() && !facts.from.is_empty() {
        answers_message = sent_message_by_subject(tx, workspace_id, mailbox_id, &facts.from, &subject)?;
    }
    let thread_id = match choose_thread(tx, mailbox_id, answers_message, answers_mail, &facts.from, &subject)? {
        Some(thread) => thread,
        None => new_thread(tx, mailbox_id, &subject, &facts.from, answers_message, now)?,
    };
    tx.prepare_cached(
        "UPDATE mail SET thread_id = ?1, in_reply_to = ?2, answers_message = ?3, answers_mail = ?4 WHERE id = ?5",
    )?
    .execute((
        thread_id,
        facts.in_reply_to.first().map_or("", String::as_str),
        answers_message,
        answers_mail,
        mail_id,
    ))?;
    if let Some(answered) = answers_mail {
        tx.prepare_cached("UPDATE mail SET thread_id = ?1 WHERE id = ?2 AND thread_id IS NULL")?
            .execute((thread_id, answered))?;
    }
    tx.prepare_cached("UPDATE threads SET updated_at = ?1 WHERE id = ?2")?.execute((now, thread_id))?;
    Ok(Link { thread_id, answers_message, answers_mail })
}

/// A message the workspace sent with this Message-ID, the mailbox's own first.
fn sent_message_by_id(conn: &Connection, workspace_id: i64, mailbox_id: i64, id: &str) -> Result<Option<i64>> {
    Ok(conn
        .prepare_cached(
            "SELECT id FROM messages WHERE workspace_id = ?1 AND message_id = ?2 \
             ORDER BY (mailbox_id IS ?3) DESC, id DESC LIMIT 1",
        )?
        .query_row((workspace_id, id, mailbox_id), |row| row.get(0))
        .optional()?)
}

/// Mail stored in the mailbox with this Message-ID (other than the new row itself).
fn stored_mail_by_id(conn: &Connection, mailbox_id: i64, id: &str, except: i64) -> Result<Option<i64>> {
    Ok(conn
        .prepare_cached(
            "SELECT m.id FROM mail m JOIN folders f ON f.id = m.folder_id \
             WHERE f.mailbox_id = ?1 AND m.message_id = ?2 AND m.id != ?3 ORDER BY m.id DESC LIMIT 1",
        )?
        .query_row((mailbox_id, id, except), |row| row.get(0))
        .optional()?)
}

/// The latest message the mailbox sent to `correspondent` whose subject normalizes to `subject`.
fn sent_message_by_subject(
    conn: &Connection,
    workspace_id: i64,
    mailbox_id: i64,
    correspondent: &str,
    subject: &str,
) -> Result<Option<i64>> {
    let mut stmt = conn.prepare_cached(
        "SELECT DISTINCT m.id, m.subject FROM queue q JOIN messages m ON m.id = q.message_id \
         WHERE q.workspace_id = ?1 AND q.recipient = ?2 COLLATE NOCASE AND q.mailbox_id = ?3 \
         ORDER BY m.id DESC LIMIT ?4",
    )?;
    let rows = stmt.query_map((workspace_id, correspondent, mailbox_id, SUBJECT_FALLBACK_LIMIT), |row| {
        Ok((row.get::<_, i64>(0)?, row.get::<_, String>(1)?))
    })?;
    for row in rows {
        let (id, sent_subject) = row?;
        if normalize_subject(&sent_subject) == subject {
            return Ok(Some(id));
        }
    }
    Ok(None)
}

/// The existing thread the message belongs to, if any (module doc, step 3).
fn choose_thread(
    conn: &Connection,
    mailbox_id: i64,
    answers_message: Option<i64>,
    answers_mail: Option<i64>,
    correspondent: &str,
    subject: &str,
) -> Result<Option<i64>> {
    if let Some(mail) = answers_mail {
        let thread: Option<i64> =
            conn.prepare_cached("SELECT thread_id FROM mail WHERE id = ?1")?.query_row([mail], |row| row.get(0))?;
        if thread.is_some() {
            return Ok(thread);
        }
    }
    if let Some(message) = answers_message {
        let thread = conn
            .prepare_cached("SELECT id FROM threads WHERE mailbox_id = ?1 AND root_message = ?2 ORDER BY id LIMIT 1")?
            .query_row((mailbox_id, message), |row| row.get(0))
            .optional()?;
        if thread.is_some() {
            return Ok(thread);
        }
    }
    if answers_message.is_none() && answers_mail.is_none() && !subject.is_empty() && !correspondent.is_empty() {
        return Ok(conn
            .prepare_cached(
                "SELECT id FROM threads WHERE mailbox_id = ?1 AND correspondent = ?2 AND subject = ?3 \
                 ORDER BY updated_at DESC, id DESC LIMIT 1",
            )?
            .query_row((mailbox_id, correspondent, subject), |row| row.get(0))
            .optional()?);
    }
    Ok(None)
}

fn new_thread(
    tx: &Transaction,
    mailbox_id: i64,
    subject: &str,
    correspondent: &str,
    root_message: Option<i64>,
    now: i64,
) -> Result<i64> {
    tx.prepare_cached(
        "INSERT INTO threads (mailbox_id, subject, correspondent, root_message, created_at, updated_at) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?5)",
    )?
    .execute((mailbox_id, subject, correspondent, root_message, now))?;
    Ok(tx.last_insert_rowid())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mailstore::{Announcer, deliver};

    #[test]
    fn subjects_lose_their_prefixes() {
        assert_eq!(normalize_subject("Re: AW: Fwd:  Quick   question"), "quick question");
        assert_eq!(normalize_subject("RE[2]: Intro"), "intro");
        assert_eq!(normalize_subject("WG: TR: RV: Angebot"), "angebot");
        assert_eq!(normalize_subject("Meeting: Tuesday"), "meeting: tuesday");
        assert_eq!(normalize_subject("Re:"), "");
    }

    #[test]
    fn facts_are_read_from_the_header() {
        let facts = ThreadFacts::read(
            b"From: Lead <Lead@Example.NET>\r\nMessage-ID: <r1@example.net>\r\nIn-Reply-To: <s1@grove.test>\r\n\
              References: <s0@grove.test> <s1@grove.test>\r\nSubject: Re: Intro\r\n\r\nbody",
        );
        assert_eq!(facts.message_id, "r1@example.net");
        assert_eq!(facts.from, "lead@example.net");
        assert_eq!(facts.candidate_ids(), ["s1@grove.test", "s0@grove.test"]);
    }

    /// Stores `raw` in mailbox 1 and links it; returns (mail id, link).
    fn store(tx: &Transaction, raw: &str, now: i64) -> Result<(i64, Link)> {
        let (folder, uid) = deliver(tx, &Announcer::silent(), 1, "INBOX", raw.as_bytes(), now)?;
        let id: i64 =
            tx.query_row("SELECT id FROM mail WHERE folder_id = ?1 AND uid = ?2", (folder, uid), |row| row.get(0))?;
        let link = link(tx, 1, 1, id, &ThreadFacts::read(raw.as_bytes()), now)?;
        Ok((id, link))
    }

    #[tokio::test]
    async fn replies_link_by_id_then_by_subject_and_share_a_thread() {
        let (_dir, store_) = crate::store::open_temp();
        store_
            .write(|tx| {
                crate::mailstore::tests::seed_mailbox(tx)?;
                tx.execute_batch(
                    "INSERT INTO messages (id, workspace_id, mailbox_id, mail_from, message_id, subject, size, body, created_at)
                       VALUES (7, 1, 1, 'ann@a.test', 'sent-1@a.test', 'Quick question', 1, x'00', 0),
                              (8, 1, 1, 'ann@a.test', 'sent-2@a.test', 'Pricing', 1, x'00', 0);
                     INSERT INTO queue (message_id, workspace_id, mailbox_id, recipient, domain, next_attempt_at, created_at, updated_at)
                       VALUES (7, 1, 1, 'lead@example.net', 'example.net', 0, 0, 0),
                              (8, 1, 1, 'Other@Example.net', 'example.net', 0, 0, 0);",
                )?;
                let by_id = "From: lead@example.net\r\nMessage-ID: <r1@example.net>\r\nIn-Reply-To: <sent-1@a.test>\r\n\
                             Subject: Re: Quick question\r\n\r\nyes";
                let (first, link1) = store(tx, by_id, 10)?;
                assert_eq!((link1.answers_message, link1.answers_mail), (Some(7), None));

                let follow_up = "From: lead@example.net\r\nMessage-ID: <r2@example.net>\r\n\
                                 References: <sent-1@a.test> <r1@example.net>\r\nSubject: Re: Quick question\r\n\r\nalso";
                let (_, link2) = store(tx, follow_up, 11)?;
                assert_eq!((link2.answers_message, link2.answers_mail), (None, Some(first)));
                assert_eq!(link2.thread_id, link1.thread_id, "same conversation, same thread");

                let by_subject = "From: other@example.net\r\nSubject: AW: Pricing\r\n\r\nnein";
                let (_, link3) = store(tx, by_subject, 12)?;
                assert_eq!(link3.answers_message, Some(8), "subject + correspondent fallback");
                assert_ne!(link3.thread_id, link1.thread_id);

                let unrelated = "From: stranger@example.org\r\nSubject: Hello\r\n\r\nhi";
                let (_, link4) = store(tx, unrelated, 13)?;
                assert_eq!((link4.answers_message, link4.answers_mail), (None, None));
                let stored: (Option<i64>, String) = tx.query_row(
                    "SELECT answers_message, in_reply_to FROM mail WHERE id = ?1",
                    [first],
                    |row| Ok((row.get(0)?, row.get(1)?)),
                )?;
                assert_eq!(stored, (Some(7), "sent-1@a.test".to_string()));
                Ok::<_, crate::error::Error>(())
            })
            .await
            .unwrap();
    }
}
