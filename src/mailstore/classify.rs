//! What an arriving message is, decided from its bytes alone (pure, so the fixtures under
//! tests/fixtures/ test it): a delivery report, a feedback (complaint) report, an automatic
//! reply, or something a person wrote — and whether that person asks to be removed.
//!
//! The checks, in order (the first that holds decides):
//! 1. **DSN** — an RFC 3464 report or an old-style bounce ([`dsn`]).
//! 2. **Feedback report** — RFC 5965 ARF (a `message/feedback-report` part), parsed by mail-auth;
//!    feedback types `abuse`, `fraud`, `virus` and `other` are complaints, `not-spam` and
//!    `auth-failure` are not.
//! 3. **Automatic reply** — RFC 3834 `Auto-Submitted` other than `no`; `X-Autoreply`,
//!    `X-Autorespond`, `X-Autoresponder`; `Precedence: auto_reply`; a null reverse-path
//!    (`MAIL FROM:<>`, which only robots use); or an out-of-office subject in one of the
//!    languages of [`phrases`].
//! 4. **Personal** — anything else. It is a removal request when the subject or the text the
//!    person wrote (quoted lines and everything from the first quote header, forwarded or
//!    original-message separator, or signature separator on are left out, so our own footer in
//!    the quote never counts) contains a removal phrase of [`phrases`].

pub mod dsn;
pub mod phrases;

use std::borrow::Cow;

use mail_auth::report::{Feedback, FeedbackType};
use mail_parser::{Message, MessageParser, MimeHeaders};

pub use dsn::{Dsn, RecipientStatus};

/// How much of a personal message's new text is searched for removal phrases.
const MAX_TEXT_SEARCHED: usize = 8 * 1024;

/// What a message is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Classification {
    /// A delivery status notification.
    Dsn(Dsn),
    /// A feedback report (RFC 5965).
    Feedback(FeedbackReport),
    /// An automatic reply (out of office, vacation, robots).
    AutoReply,
    /// Written by a person.
    Personal {
        /// The person asks to be removed from the mailing.
        removal_request: bool,
    },
}

impl Classification {
    /// The word stored with the message (`mail.classification`).
    pub fn kind(&self) -> &'static str {
        match self {
            Classification::Dsn(_) => "dsn",
            Classification::Feedback(report) if report.is_complaint() => "complaint",
            Classification::Feedback(_) => "feedback",
            Classification::AutoReply => "auto_reply",
            Classification::Personal { removal_request: true } => "unsubscribe_request",
            Classification::Personal { removal_request: false } => "personal",
        }
    }
}

/// What a feedback report says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FeedbackReport {
    /// `abuse`, `fraud`, `virus`, `other`, `not-spam` or `auth-failure`.
    pub feedback_type: &'static str,
    /// The address that complained: `Original-Rcpt-To`, else the only To of the original.
    pub complainant: Option<String>,
    /// The Message-ID (without angle brackets) of the reported message.
    pub original_message_id: Option<String>,
    pub user_agent: String,
}

impl FeedbackReport {
    /// Whether the report is a recipient's complaint (see the module doc).
    pub fn is_complaint(&self) -> bool {
        matches!(self.feedback_type, "abuse" | "fraud" | "virus" | "other")
    }
}

/// Classifies a raw message; `mail_from` is the envelope sender ("" for the null reverse-path).
pub fn classify(raw: &[u8], mail_from: &str) -> Classification {
    let Some(message) = MessageParser::default().parse(raw) else {
        return Classification::Personal { removal_request: false };
    };
    if let Some(dsn) = dsn::parse(&message) {
        return Classification::Dsn(dsn);
    }
    if let Some(report) = feedback_report(&message, raw) {
        return Classification::Feedback(report);
    }
    if mail_from.is_empty() || is_auto_reply(&message) {
        return Classification::AutoReply;
    }
    Classification::Personal { removal_request: asks_for_removal(&message) }
}

/// The feedback report, when the message is one.
fn feedback_report(message: &Message<'_>, raw: &[u8]) -> Option<FeedbackReport> {
    if !message.parts.iter().any(|part| part.is_content_type("message", "feedback-report")) {
        return None;
    }
    let feedback = Feedback::parse_rfc5322(raw).ok()?;
    let original = feedback.message().and_then(|text| MessageParser::default().parse_headers(text.as_bytes()));
    let original = original
        .or_else(|| feedback.headers().and_then(|text| MessageParser::default().parse_headers(text.as_bytes())));
    let original_to: Vec<String> = original
        .as_ref()
        .and_then(|m| m.to())
        .map(|to| to.iter().filter_map(|a| a.address()).map(clean_address).collect())
        .unwrap_or_default();
    let complainant = feedback
        .original_rcpt_to()
        .map(clean_address)
        .filter(|address| address.contains('@'))
        .or_else(|| (original_to.len() == 1).then(|| original_to[0].clone()));
    Some(FeedbackReport {
        feedback_type: feedback_type_name(feedback.feedback_type()),
        complainant,
        original_message_id: original.as_ref().and_then(|m| m.message_id()).map(str::to_string),
        user_agent: feedback.user_agent().unwrap_or_default().to_string(),
    })
}

fn feedback_type_name(kind: FeedbackType) -> &'static str {
    match kind {
        FeedbackType::Abuse => "abuse",
        FeedbackType::AuthFailure => "auth-failure",
        FeedbackType::Fraud => "fraud",
        FeedbackType::NotSpam => "not-spam",
        FeedbackType::Other => "other",
        FeedbackType::Virus => "virus",
    }
}

fn clean_address(value: &str) -> String {
    value.trim().trim_start_matches('<').trim_end_matches('>').trim().to_lowercase()
}

/// The headers and subjects of automatic replies (see the module doc).
pub fn is_auto_reply(message: &Message<'_>) -> bool {
    let header = |name: &str| message.header_raw(name).map(|v| v.trim().to_ascii_lowercase());
    let auto_submitted = header("Auto-Submitted").is_some_and(|v| !v.is_empty() && !v.starts_with("no"));
    let marked = ["X-Autoreply", "X-Autorespond", "X-Autoresponder"].iter().any(|name| header(name).is_some());
    let precedence = header("Precedence").is_some_and(|v| v == "auto_reply");
    let subject = message.subject().is_some_and(|subject| phrases::auto_reply_subject(subject).is_some());
    auto_submitted || marked || precedence || subject
}

/// Whether the subject or the person's own text asks to be removed.
fn asks_for_removal(message: &Message<'_>) -> bool {
    let subject = message.subject().unwrap_or_default();
    let body: Cow<'_, str> = message.body_text(0).unwrap_or_default();
    let text = fresh_text(&body);
    let text = match text.char_indices().nth(MAX_TEXT_SEARCHED) {
        Some((cut, _)) => &text[..cut],
        None => &text,
    };
    phrases::removal_request(subject).is_some() || phrases::removal_request(text).is_some()
}

/// The text a person wrote above (or between) the quotes: quoted lines dropped, and everything
/// from the first quote header, original-message separator or signature separator on.
pub fn fresh_text(body: &str) -> String {
    let mut kept = Vec::new();
    for line in body.lines() {
        let trimmed = line.trim();
        if starts_the_quote(trimmed) {
            break;
        }
        if !trimmed.starts_with('>') {
            kept.push(line);
        }
    }
    kept.join("\n")
}

/// A line after which only quoted or signature text follows.
fn starts_the_quote(line: &str) -> bool {
    let lower = phrases::normalize(line);
    const ATTRIBUTION_VERBS: [&str; 8] =
        ["wrote", "schrieb", "a écrit", "escribió", "ha scritto", "schreef", "escreveu", "skrev"];
    const SEPARATORS: [&str; 8] = [
        "-----original message-----",
        "----- original message -----",
        "-----ursprüngliche nachricht-----",
        "-----message d'origine-----",
        "-----mensaje original-----",
        "-----messaggio originale-----",
        "-----oorspronkelijk bericht-----",
        "-----mensagem original-----",
    ];
    line == "--"
        || lower.starts_with("---------- forwarded message")
        || (lower.ends_with(':') && ATTRIBUTION_VERBS.iter().any(|verb| lower.contains(verb)))
        || SEPARATORS.iter().any(|separator| lower.starts_with(separator))
        || (line.len() >= 10 && line.chars().all(|c| c == '_'))
        || (lower.starts_with("from:") && lower.contains('@'))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn message(headers: &str, body: &str) -> Vec<u8> {
        format!("From: Lead <lead@example.net>\r\nTo: ann@grove.test\r\n{headers}\r\n{body}").into_bytes()
    }

    #[test]
    fn every_dsn_fixture_is_a_dsn() {
        for name in ["postfix.eml", "postfix_delayed.eml", "exim.eml", "exim_plain.eml", "gmail.eml", "outlook.eml"] {
            let raw = std::fs::read(format!("{}/tests/fixtures/dsn/{name}", env!("CARGO_MANIFEST_DIR"))).unwrap();
            assert!(matches!(classify(&raw, ""), Classification::Dsn(_)), "{name}");
        }
    }

    #[test]
    fn the_arf_fixture_is_a_complaint() {
        let raw = std::fs::read(format!("{}/tests/fixtures/arf/abuse.eml", env!("CARGO_MANIFEST_DIR"))).unwrap();
        let Classification::Feedback(report) = classify(&raw, "feedback@fbl.example.net") else {
            panic!("not a feedback report")
        };
        assert!(report.is_complaint());
        assert_eq!(report.feedback_type, "abuse");
        assert_eq!(report.complainant.as_deref(), Some("annoyed@example.net"));
        assert_eq!(report.original_message_id.as_deref(), Some("z9y8x7w6v5@mail.grove.test"));
        assert_eq!(report.user_agent, "ExampleFBL/2.1");
    }

    #[test]
    fn a_redacted_complainant_falls_back_to_the_original_to() {
        let raw = std::fs::read(format!("{}/tests/fixtures/arf/abuse.eml", env!("CARGO_MANIFEST_DIR"))).unwrap();
        let text = String::from_utf8(raw).unwrap().replace("Original-Rcpt-To: <annoyed@example.net>\n", "");
        let Classification::Feedback(report) = classify(text.as_bytes(), "x@y.test") else { panic!() };
        assert_eq!(report.complainant.as_deref(), Some("annoyed@example.net"));
    }

    #[test]
    fn automatic_replies_are_recognized_by_header_subject_and_null_sender() {
        let cases = [
            ("Auto-Submitted: auto-replied\r\nSubject: Re: Intro\r\n", "lead@example.net"),
            ("Auto-Submitted: auto-generated\r\nSubject: Notice\r\n", "lead@example.net"),
            ("X-Autoreply: yes\r\nSubject: Re: Intro\r\n", "lead@example.net"),
            ("X-Autorespond: Thanks\r\nSubject: Re: Intro\r\n", "lead@example.net"),
            ("Precedence: auto_reply\r\nSubject: Re: Intro\r\n", "lead@example.net"),
            ("Subject: Out of Office: Intro\r\n", "lead@example.net"),
            ("Subject: Automatic reply: Intro\r\n", "lead@example.net"),
            ("Subject: Abwesenheitsnotiz: Intro\r\n", "lead@example.net"),
            ("Subject: =?utf-8?q?R=C3=A9ponse_automatique_=3A_Intro?=\r\n", "lead@example.net"),
            ("Subject: Respuesta automática: Intro\r\n", "lead@example.net"),
            ("Subject: Risposta automatica: Intro\r\n", "lead@example.net"),
            ("Subject: Afwezig: Intro\r\n", "lead@example.net"),
            ("Subject: Re: Intro\r\n", ""),
        ];
        for (headers, mail_from) in cases {
            assert_eq!(
                classify(&message(headers, "I am away.\r\n"), mail_from),
                Classification::AutoReply,
                "{headers}"
            );
        }
        let personal = message("Auto-Submitted: no\r\nSubject: Re: Intro\r\n", "Sure, call me.\r\n");
        assert_eq!(classify(&personal, "lead@example.net"), Classification::Personal { removal_request: false });
    }

    #[test]
    fn removal_requests_are_found_in_the_new_text_only() {
        let asks = |subject: &str, body: &str| {
            classify(&message(&format!("Subject: {subject}\r\n"), body), "lead@example.net").kind()
        };
        assert_eq!(asks("Re: Intro", "Please remove me from your list.\r\n"), "unsubscribe_request");
        assert_eq!(asks("unsubscribe", "\r\n"), "unsubscribe_request");
        assert_eq!(
            asks(
                "Re: Intro",
                "Bitte austragen.\r\n\r\nAm 23.11.2026 um 10:00 schrieb Ann <ann@grove.test>:\r\n> Hallo\r\n"
            ),
            "unsubscribe_request"
        );
        let quoted_footer = "Sounds good, Tuesday works.\r\n\r\nOn Mon, Nov 23, 2026 at 10:00 Ann <ann@grove.test> wrote:\r\n\
                             > Hi!\r\n> To unsubscribe, reply STOP.\r\n";
        assert_eq!(asks("Re: Intro", quoted_footer), "personal");
        let outlook = "Yes please.\r\n\r\n________________________________\r\nFrom: Ann <ann@grove.test>\r\n\
                       Sent: Monday\r\nunsubscribe here: https://grove.test/u/x\r\n";
        assert_eq!(asks("RE: Intro", outlook), "personal");
        assert_eq!(asks("Re: Intro", "> unsubscribe\r\nThanks, interested!\r\n"), "personal");
        let german_quote = "Danke, gerne!\r\n\r\nAm 23.11.2026 um 10:00 schrieb Ann <ann@grove.test>:\r\n\
                            Zum Abmelden hier klicken.\r\n";
        assert_eq!(asks("AW: Intro", german_quote), "personal");
    }

    #[test]
    fn fresh_text_stops_at_separators() {
        assert_eq!(fresh_text("new\n-----Original Message-----\nold"), "new");
        assert_eq!(fresh_text("neu\nLe lun. 23 nov. 2026, Ann a écrit :\n> vieux"), "neu");
        assert_eq!(fresh_text("a\n> b\nc\n--\nsig"), "a\nc");
    }
}
