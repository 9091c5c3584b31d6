//! Delivery status notifications (RFC 3464): the message the MTA sends back to a sender when
//! mail to some recipients failed for good or is delayed.
//!
//! Layout (RFC 6522 multipart/report; report-type=delivery-status):
//! 1. text/plain: a few sentences for people, one line per recipient with the remote reply;
//! 2. message/delivery-status: the per-message block (Reporting-MTA, Arrival-Date when the
//!    original has a Date) and one block per recipient (Final-Recipient, Action, Status,
//!    Remote-MTA, Diagnostic-Code), separated by empty lines;
//! 3. text/rfc822-headers: the original message's header section.
//!
//! The DSN itself is sent with the null reverse-path (`MAIL FROM:<>`), so it can never cause
//! another DSN; no DSN answers a message that came from the null reverse-path.

use mail_builder::MessageBuilder;
use mail_builder::headers::content_type::ContentType;
use mail_builder::headers::date::Date;
use mail_builder::headers::raw::Raw;
use mail_builder::mime::{BodyPart, MimePart};

use crate::crypto::random_token;
use crate::mta::prepare::{split_message, to_crlf};

/// The subject of a DSN about failed recipients.
pub const FAILED_SUBJECT: &str = "Undelivered Mail Returned to Sender";

/// What happened to a recipient (RFC 3464 §2.3.3; only the two that produce a DSN here).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DsnAction {
    /// Delivery failed for good.
    Failed,
    /// Delivery is still being retried.
    Delayed,
}

impl DsnAction {
    pub fn as_str(self) -> &'static str {
        match self {
            DsnAction::Failed => "failed",
            DsnAction::Delayed => "delayed",
        }
    }
}

/// One recipient's outcome.
#[derive(Debug, Clone)]
pub struct DsnRecipient {
    pub recipient: String,
    pub action: DsnAction,
    /// The enhanced status code, e.g. "5.1.1".
    pub status: String,
    /// Typed diagnostic, e.g. "smtp; 550 5.1.1 no such user".
    pub diagnostic: String,
    /// The host that gave the reply, if one did.
    pub remote_mta: Option<String>,
}

/// Builds the DSN for `original` (the raw message as queued) to `sender`.
pub fn build(hostname: &str, original: &[u8], sender: &str, recipients: &[DsnRecipient], now: i64) -> Vec<u8> {
    let original = to_crlf(original);
    let (original_headers, _) = split_message(&original);
    let facts = mail_parser::MessageParser::default().parse_headers(original_headers);
    let original_id = facts.as_ref().and_then(|m| m.message_id()).map(str::to_string);
    let arrival = facts.as_ref().and_then(|m| m.date()).map(|date| date.to_rfc822());
    let failed = recipients.iter().any(|r| r.action == DsnAction::Failed);
    let subject = if failed { FAILED_SUBJECT } else { "Delayed Mail" };

    let report = MimePart::new(
        ContentType::new("multipart/report").attribute("report-type", "delivery-status"),
        BodyPart::Multipart(vec![
            MimePart::new(
                ContentType::new("text/plain").attribute("charset", "us-ascii"),
                human_text(hostname, recipients, failed),
            ),
            MimePart::new(
                ContentType::new("message/delivery-status"),
                BodyPart::Binary(delivery_status(hostname, arrival.as_deref(), recipients).into_bytes().into()),
            )
            .transfer_encoding("7bit"),
            MimePart::new(ContentType::new("text/rfc822-headers"), BodyPart::Binary(original_headers.to_vec().into()))
                .transfer_encoding(if original_headers.is_ascii() { "7bit" } else { "8bit" }),
        ]),
    );
    let mut message = MessageBuilder::new()
        .from(("Mail Delivery System".to_string(), format!("MAILER-DAEMON@{hostname}")))
        .to(sender)
        .subject(subject)
        .date(Date::new(now))
        .message_id(format!("{}@{hostname}", random_token()))
        .header("Auto-Submitted", Raw::new("auto-replied"));
    if let Some(id) = original_id {
        message = message.references(id);
    }
    message.body(report).write_to_vec().unwrap_or_default()
}

/// The part for people.
fn human_text(hostname: &str, recipients: &[DsnRecipient], failed: bool) -> String {
    let mut text = format!("This is the mail system at host {}.\r\n\r\n", ascii_line(hostname));
    if failed {
        text.push_str(
            "I'm sorry to have to inform you that your message could not be delivered to one or more\r\n\
             recipients. The reasons are below.\r\n\r\n",
        );
    } else {
        text.push_str(
            "Your message could not be delivered yet to the recipients below. Delivery will be retried;\r\n\
             you do not need to send it again. This is a warning only.\r\n\r\n",
        );
    }
    for recipient in recipients {
        text.push_str(&format!(
            "<{}>: {} ({})\r\n",
            ascii_line(&recipient.recipient),
            ascii_line(&recipient.diagnostic),
            recipient.action.as_str()
        ));
    }
    text
}

/// The machine-readable part (RFC 3464 §2.2 and §2.3).
fn delivery_status(hostname: &str, arrival: Option<&str>, recipients: &[DsnRecipient]) -> String {
    let mut text = format!("Reporting-MTA: dns; {}\r\n", ascii_line(hostname));
    if let Some(arrival) = arrival {
        text.push_str(&format!("Arrival-Date: {}\r\n", ascii_line(arrival)));
    }
    for recipient in recipients {
        text.push_str("\r\n");
        text.push_str(&format!("Final-Recipient: rfc822; {}\r\n", ascii_line(&recipient.recipient)));
        text.push_str(&format!("Action: {}\r\n", recipient.action.as_str()));
        text.push_str(&format!("Status: {}\r\n", ascii_line(&recipient.status)));
        if let Some(mta) = &recipient.remote_mta {
            text.push_str(&format!("Remote-MTA: dns; {}\r\n", ascii_line(mta)));
        }
        if !recipient.diagnostic.is_empty() {
            text.push_str(&format!("Diagnostic-Code: {}\r\n", ascii_line(&recipient.diagnostic)));
        }
    }
    text
}

/// One line of printable ASCII: line breaks become spaces, anything else unprintable becomes `?`
/// (the delivery-status part must be 7-bit, and a reply must not inject fields).
fn ascii_line(value: &str) -> String {
    value
        .trim()
        .chars()
        .map(|c| match c {
            '\r' | '\n' | '\t' => ' ',
            c if c.is_ascii_graphic() || c == ' ' => c,
            _ => '?',
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use mail_parser::{MessageParser, MimeHeaders as _};

    const ORIGINAL: &[u8] = b"From: Ann <ann@a.test>\r\nTo: bob@b.test\r\nSubject: Hello\r\n\
        Date: Mon, 23 Nov 2026 10:00:00 +0000\r\nMessage-ID: <orig-1@a.test>\r\n\r\nHi Bob\r\n";

    fn failed() -> DsnRecipient {
        DsnRecipient {
            recipient: "bob@b.test".into(),
            action: DsnAction::Failed,
            status: "5.1.1".into(),
            diagnostic: "smtp; 550 5.1.1 no such user\r\nInjected: yes".into(),
            remote_mta: Some("mx.b.test".into()),
        }
    }

    #[test]
    fn a_failure_report_parses_back_into_its_three_parts() {
        let raw = build("mail.grove.test", ORIGINAL, "ann@a.test", &[failed()], 1_795_000_000);
        let message = MessageParser::default().parse(&raw).expect("parses");
        assert_eq!(message.subject(), Some("Undelivered Mail Returned to Sender"));
        let from = message.from().and_then(|a| a.first()).expect("from");
        assert_eq!(from.address(), Some("MAILER-DAEMON@mail.grove.test"));
        assert_eq!(from.name(), Some("Mail Delivery System"));
        assert_eq!(message.to().and_then(|a| a.first()).and_then(|a| a.address()), Some("ann@a.test"));
        assert_eq!(message.header_raw("Auto-Submitted").map(str::trim), Some("auto-replied"));
        assert!(message.message_id().is_some_and(|id| id.ends_with("@mail.grove.test")));
        assert_eq!(message.references().as_text(), Some("orig-1@a.test"));

        let root = message.root_part().content_type().expect("content type");
        assert_eq!((root.ctype(), root.subtype()), ("multipart", Some("report")));
        assert_eq!(root.attribute("report-type"), Some("delivery-status"));

        let types: Vec<String> = message.parts[1..]
            .iter()
            .map(|p| {
                p.content_type().map(|c| format!("{}/{}", c.ctype(), c.subtype().unwrap_or(""))).unwrap_or_default()
            })
            .collect();
        assert_eq!(types, ["text/plain", "message/delivery-status", "text/rfc822-headers"]);

        let human = String::from_utf8_lossy(message.parts[1].contents()).to_string();
        assert!(human.contains("could not be delivered") && human.contains("<bob@b.test>: smtp; 550 5.1.1"), "{human}");

        let status = String::from_utf8_lossy(message.parts[2].contents()).to_string();
        let (per_message, per_recipient) = status.split_once("\r\n\r\n").expect("two blocks");
        assert!(per_message.contains("Reporting-MTA: dns; mail.grove.test"), "{status}");
        assert!(per_message.contains("Arrival-Date: Mon, 23 Nov 2026 10:00:00"), "{status}");
        for line in [
            "Final-Recipient: rfc822; bob@b.test",
            "Action: failed",
            "Status: 5.1.1",
            "Remote-MTA: dns; mx.b.test",
            "Diagnostic-Code: smtp; 550 5.1.1 no such user  Injected: yes",
        ] {
            assert!(per_recipient.lines().any(|l| l.trim_end() == line), "missing {line:?} in {status}");
        }
        assert!(!status.contains("\r\nInjected:"));

        let headers = String::from_utf8_lossy(message.parts[3].contents()).to_string();
        assert!(headers.contains("Subject: Hello") && headers.contains("Message-ID: <orig-1@a.test>"), "{headers}");
        assert!(!headers.contains("Hi Bob"));
    }

    #[test]
    fn a_delay_warning_says_so() {
        let delayed = DsnRecipient {
            action: DsnAction::Delayed,
            status: "4.4.1".into(),
            diagnostic: "smtp; 421 try later".into(),
            remote_mta: None,
            ..failed()
        };
        let raw = build("mail.grove.test", ORIGINAL, "ann@a.test", &[delayed], 1_795_000_000);
        let message = MessageParser::default().parse(&raw).expect("parses");
        assert_eq!(message.subject(), Some("Delayed Mail"));
        let status = String::from_utf8_lossy(message.parts[2].contents()).to_string();
        assert!(status.contains("Action: delayed\r\n") && !status.contains("Remote-MTA"), "{status}");
        assert!(String::from_utf8_lossy(message.parts[1].contents()).contains("warning only"));
    }
}
