//! SEARCH and UID SEARCH: every criterion of RFC 3501 §6.4.4 evaluated over the session's view
//! of the selected folder.
//!
//! Criteria on flags, sequence numbers and UIDs need nothing from the store; dates and sizes need
//! each message's row; header and text criteria parse the message (loaded in batches). Text
//! matches are case-insensitive substring matches, against the raw header value and its decoded
//! form (so both `=?utf-8?...` and the words it encodes are found); BODY and TEXT look at the raw
//! body and at each text part decoded (transfer encoding and charset undone). RECENT, NEW and OLD follow the session's `\Recent` flags.

use imap_codec::imap_types::core::{AString, Charset, Tag, Vec1};
use imap_codec::imap_types::response::{Code, Data, Response};
use imap_codec::imap_types::search::SearchKey;

use super::connection::End;
use super::mime::Parsed;
use super::selected::{has_flag, in_set, seq_of};
use super::session::Session;
use crate::mailstore::imap_ops::{self, MessageBody};

/// Messages loaded per round trip to the store.
const BATCH: usize = 200;

/// One message as the criteria see it.
pub struct Candidate<'a> {
    pub seq: u32,
    pub uid: u32,
    pub flags: &'a str,
    /// `\Recent` in this session.
    pub recent: bool,
    pub message: &'a MessageBody,
    pub parsed: Option<&'a Parsed<'a>>,
}

/// The largest sequence number and UID, for `*` in sets.
#[derive(Debug, Clone, Copy)]
pub struct Largest {
    pub seq: u32,
    pub uid: u32,
}

/// Whether a criterion reads headers or bodies.
pub fn needs_message(key: &SearchKey<'_>) -> bool {
    match key {
        SearchKey::And(keys) => keys.as_ref().iter().any(needs_message),
        SearchKey::Not(key) => needs_message(key),
        SearchKey::Or(a, b) => needs_message(a) || needs_message(b),
        SearchKey::Bcc(_)
        | SearchKey::Body(_)
        | SearchKey::Cc(_)
        | SearchKey::From(_)
        | SearchKey::Header(..)
        | SearchKey::SentBefore(_)
        | SearchKey::SentOn(_)
        | SearchKey::SentSince(_)
        | SearchKey::Subject(_)
        | SearchKey::Text(_)
        | SearchKey::To(_) => true,
        _ => false,
    }
}

/// Whether a message matches a criterion.
pub fn matches(key: &SearchKey<'_>, candidate: &Candidate<'_>, largest: Largest) -> bool {
    let flag = |name: &str| has_flag(candidate.flags, name);
    match key {
        SearchKey::And(keys) => keys.as_ref().iter().all(|k| matches(k, candidate, largest)),
        SearchKey::Not(key) => !matches(key, candidate, largest),
        SearchKey::Or(a, b) => matches(a, candidate, largest) || matches(b, candidate, largest),
        SearchKey::SequenceSet(set) => in_set(set, candidate.seq, largest.seq),
        SearchKey::Uid(set) => in_set(set, candidate.uid, largest.uid),
        SearchKey::All => true,
        SearchKey::Recent => candidate.recent,
        SearchKey::New => candidate.recent && !flag("\\Seen"),
        SearchKey::Old => !candidate.recent,
        SearchKey::Answered => flag("\\Answered"),
        SearchKey::Deleted => flag("\\Deleted"),
        SearchKey::Draft => flag("\\Draft"),
        SearchKey::Flagged => flag("\\Flagged"),
        SearchKey::Seen => flag("\\Seen"),
        SearchKey::Unanswered => !flag("\\Answered"),
        SearchKey::Undeleted => !flag("\\Deleted"),
        SearchKey::Undraft => !flag("\\Draft"),
        SearchKey::Unflagged => !flag("\\Flagged"),
        SearchKey::Unseen => !flag("\\Seen"),
        SearchKey::Keyword(atom) => flag(atom.inner()),
        SearchKey::Unkeyword(atom) => !flag(atom.inner()),
        SearchKey::Larger(size) => candidate.message.size > i64::from(*size),
        SearchKey::Smaller(size) => candidate.message.size < i64::from(*size),
        SearchKey::Before(date) => internal_date(candidate) < Some(*date.as_ref()),
        SearchKey::On(date) => internal_date(candidate) == Some(*date.as_ref()),
        SearchKey::Since(date) => internal_date(candidate) >= Some(*date.as_ref()),
        SearchKey::SentBefore(date) => sent_date(candidate).is_some_and(|d| d < *date.as_ref()),
        SearchKey::SentOn(date) => sent_date(candidate) == Some(*date.as_ref()),
        SearchKey::SentSince(date) => sent_date(candidate).is_some_and(|d| d >= *date.as_ref()),
        SearchKey::From(text) => header_contains(candidate, "From", text),
        SearchKey::To(text) => header_contains(candidate, "To", text),
        SearchKey::Cc(text) => header_contains(candidate, "Cc", text),
        SearchKey::Bcc(text) => header_contains(candidate, "Bcc", text),
        SearchKey::Subject(text) => header_contains(candidate, "Subject", text),
        SearchKey::Header(name, text) => header_contains(candidate, &lossy(name), text),
        SearchKey::Body(text) => body_contains(candidate, text),
        SearchKey::Text(text) => {
            body_contains(candidate, text)
                || candidate.parsed.is_some_and(|p| contains(&String::from_utf8_lossy(p.header()), &lossy(text)))
        }
        #[allow(unreachable_patterns)]
        _ => false,
    }
}

fn lossy(text: &AString<'_>) -> String {
    String::from_utf8_lossy(text.as_ref()).into_owned()
}

/// Case-insensitive substring test; the empty needle is in everything.
fn contains(haystack: &str, needle: &str) -> bool {
    needle.is_empty() || haystack.to_lowercase().contains(&needle.to_lowercase())
}

fn internal_date(candidate: &Candidate<'_>) -> Option<chrono::NaiveDate> {
    chrono::DateTime::from_timestamp(candidate.message.received_at, 0).map(|d| d.date_naive())
}

fn sent_date(candidate: &Candidate<'_>) -> Option<chrono::NaiveDate> {
    candidate.parsed?.sent_date()
}

/// Whether a header (any occurrence) contains the text, raw or decoded. A missing header never
/// matches, not even the empty string.
fn header_contains(candidate: &Candidate<'_>, name: &str, text: &AString<'_>) -> bool {
    let Some(parsed) = candidate.parsed else { return false };
    let needle = lossy(text);
    let values = parsed.raw_values(name);
    if values.is_empty() {
        return false;
    }
    values.iter().any(|value| contains(value, &needle))
        || parsed.decoded_header(name).is_some_and(|decoded| contains(&decoded, &needle))
}

/// Whether the body contains the text, raw or in a decoded text part (so UTF-8 words are found
/// in quoted-printable and base64 parts too).
fn body_contains(candidate: &Candidate<'_>, text: &AString<'_>) -> bool {
    let Some(parsed) = candidate.parsed else { return false };
    let needle = lossy(text);
    contains(&String::from_utf8_lossy(parsed.text()), &needle)
        || parsed.decoded_texts().iter().any(|decoded| contains(decoded, &needle))
}

/// Whether SEARCH can read text in this charset (UTF-8 and its subset US-ASCII).
fn charset_supported(charset: Option<&Charset<'_>>) -> bool {
    charset.is_none_or(|charset| {
        let name = match charset {
            Charset::Atom(atom) => atom.inner().to_string(),
            Charset::Quoted(quoted) => quoted.inner().to_string(),
        };
        name.eq_ignore_ascii_case("UTF-8") || name.eq_ignore_ascii_case("US-ASCII")
    })
}

impl Session {
    /// SEARCH / UID SEARCH.
    pub(super) async fn search(
        &mut self,
        tag: &Tag<'static>,
        charset: Option<&Charset<'_>>,
        criteria: &Vec1<SearchKey<'_>>,
        uid: bool,
    ) -> Result<(), End> {
        if !charset_supported(charset) {
            let code = Code::BadCharset {
                allowed: vec![
                    Charset::try_from("UTF-8")
                        .unwrap_or(Charset::Atom(imap_codec::imap_types::core::Atom::unvalidated("UTF-8"))),
                ],
            };
            self.no(tag, Some(code), "Only UTF-8 searches are supported");
            return Ok(());
        }
        let Some(selected) = &self.selected else { return Ok(()) };
        let key = SearchKey::And(criteria.clone());
        let with_body = needs_message(&key);
        let folder_id = selected.folder.id;
        let largest = Largest { seq: selected.exists(), uid: selected.messages.last().map_or(0, |m| m.uid) };
        let live: Vec<(u32, u32, String, bool)> = selected
            .messages
            .iter()
            .enumerate()
            .filter(|(_, known)| !known.vanished)
            .map(|(index, known)| (seq_of(index), known.uid, known.flags.clone(), known.recent))
            .collect();
        let mut found = Vec::new();
        for batch in live.chunks(BATCH) {
            let uids: Vec<i64> = batch.iter().map(|(_, uid, _, _)| i64::from(*uid)).collect();
            let loaded =
                match self.app.store.read(move |conn| imap_ops::bodies(conn, folder_id, &uids, with_body)).await {
                    Ok(loaded) => loaded,
                    Err(e) => return self.internal_error(tag, &e.into()),
                };
            for message in &loaded {
                let Some((seq, uid_value, flags, recent)) =
                    batch.iter().find(|(_, u, _, _)| i64::from(*u) == message.uid)
                else {
                    continue;
                };
                let parsed = with_body.then(|| Parsed::parse(&message.raw));
                let (seq, uid_value, recent) = (*seq, *uid_value, *recent);
                let candidate = Candidate { seq, uid: uid_value, flags, recent, message, parsed: parsed.as_ref() };
                if matches(&key, &candidate, largest) {
                    found.push(if uid { uid_value } else { seq });
                }
            }
        }
        let numbers = found.into_iter().filter_map(std::num::NonZeroU32::new).collect();
        self.conn.send(&Response::Data(Data::Search(numbers)));
        self.refresh(uid).await?;
        self.ok(tag, None, "SEARCH completed");
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use imap_codec::imap_types::datetime::NaiveDate;
    use imap_codec::imap_types::sequence::SequenceSet;

    use super::*;

    fn message(raw: &[u8]) -> MessageBody {
        MessageBody { uid: 5, flags: String::new(), size: 100, received_at: 1_700_000_000, raw: raw.to_vec() }
    }

    fn check(key: SearchKey<'_>, raw: &[u8], flags: &str) -> bool {
        let message = message(raw);
        let parsed = Parsed::parse(&message.raw);
        let recent = flags.contains("\\Recent");
        let candidate = Candidate { seq: 2, uid: 5, flags, recent, message: &message, parsed: Some(&parsed) };
        matches(&key, &candidate, Largest { seq: 3, uid: 9 })
    }

    fn text(value: &str) -> AString<'_> {
        AString::try_from(value).unwrap()
    }

    #[test]
    fn criteria_match_as_rfc3501_says() {
        let raw = b"From: =?utf-8?q?Zo=C3=AB?= <zoe@a.test>\r\nSubject: Quarterly plan\r\nX-Tag: warm\r\n\
            Date: Tue, 14 Nov 2023 10:00:00 +0000\r\n\r\nSee the numbers.\r\n";
        assert!(check(SearchKey::From(text("zoe@A.test")), raw, ""));
        assert!(check(SearchKey::From(text("zoë")), raw, ""), "decoded display names match");
        assert!(check(SearchKey::Subject(text("quarterly")), raw, ""));
        assert!(!check(SearchKey::To(text("")), raw, ""), "a missing header never matches");
        assert!(check(SearchKey::Header(text("x-tag"), text("WARM")), raw, ""));
        assert!(check(SearchKey::Body(text("numbers")), raw, ""));
        assert!(check(SearchKey::Text(text("x-tag")), raw, ""));
        assert!(check(SearchKey::Unseen, raw, "\\Flagged"));
        assert!(!check(SearchKey::Not(Box::new(SearchKey::Flagged)), raw, "\\Flagged"));
        assert!(check(SearchKey::Or(Box::new(SearchKey::Seen), Box::new(SearchKey::Flagged)), raw, "\\Flagged"));
        assert!(check(SearchKey::Uid(SequenceSet::try_from("4:*").unwrap()), raw, ""));
        assert!(!check(SearchKey::SequenceSet(SequenceSet::try_from("3").unwrap()), raw, ""));
        let day = |y, m, d| NaiveDate::try_from(chrono::NaiveDate::from_ymd_opt(y, m, d).unwrap()).unwrap();
        assert!(check(SearchKey::Since(day(2023, 11, 14)), raw, ""));
        assert!(check(SearchKey::On(day(2023, 11, 14)), raw, ""));
        assert!(!check(SearchKey::Before(day(2023, 11, 14)), raw, ""));
        assert!(check(SearchKey::SentOn(day(2023, 11, 14)), raw, ""));
        assert!(check(SearchKey::Larger(99), raw, "") && !check(SearchKey::Smaller(100), raw, ""));
        let encoded = b"Subject: =?utf-8?q?Gr=C3=BC=C3=9Fe?=\r\nContent-Type: text/plain; charset=utf-8\r\n\
            Content-Transfer-Encoding: quoted-printable\r\n\r\nViele Gr=C3=BC=C3=9Fe aus K=C3=B6ln\r\n";
        assert!(check(SearchKey::Subject(text("GRÜßE")), encoded, ""));
        assert!(check(SearchKey::Body(text("grüße aus köln")), encoded, ""), "decoded quoted-printable");
        assert!(check(SearchKey::Text(text("Köln")), encoded, ""));
        assert!(!check(SearchKey::Body(text("Zürich")), encoded, ""));
        assert!(check(SearchKey::Recent, raw, "\\Recent") && !check(SearchKey::Recent, raw, ""));
        assert!(check(SearchKey::New, raw, "\\Recent") && !check(SearchKey::New, raw, "\\Recent \\Seen"));
        assert!(check(SearchKey::Old, raw, "\\Seen") && !check(SearchKey::Old, raw, "\\Recent"));
    }
}
