//! Delivery status notifications coming back to us: RFC 3464 reports (multipart/report with a
//! `message/delivery-status` or `message/global-delivery-status` part) as Postfix, Exim, Gmail
//! and Exchange/Outlook send them, and the older plain-text Exim bounce that only carries an
//! `X-Failed-Recipients` header.
//!
//! mail-parser finds the MIME parts; the delivery-status body is a series of header blocks
//! separated by empty lines (the first about the message, one per recipient), parsed here with
//! continuation lines unfolded. The returned original (a `message/rfc822` part, the headers of a
//! `text/rfc822-headers` part, or the text after Exim's "This is a copy of the message" line)
//! gives the original Message-ID and To/Cc; Gmail's `X-Original-Message-ID` field is the
//! fallback.
//!
//! Status: many MTAs (Exim) report a generic `5.0.0` and put the real enhanced code in the
//! Diagnostic-Code; a generic `X.0.0` (or a missing Status) is replaced by the first enhanced
//! code of the same class found in the diagnostic. Bounce class: a `failed` action is classified
//! by `mta::bounce` from the status and the reply in the diagnostic, the same classification a
//! refusal during delivery gets.

use mail_parser::{Message, MessageParser, MimeHeaders, PartType};

use crate::mta::bounce::{self, BounceClass, Failure};

/// What one report says.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Dsn {
    /// The `Reporting-MTA` (without its `dns;` type), or "" when absent.
    pub reporting_mta: String,
    /// One entry per recipient the report covers.
    pub recipients: Vec<RecipientStatus>,
    /// The Message-ID (without angle brackets) of the message the report is about.
    pub original_message_id: Option<String>,
    /// The To and Cc addresses of the returned original, lowercased.
    pub original_recipients: Vec<String>,
}

/// One recipient's block of a report.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RecipientStatus {
    /// `Final-Recipient`, lowercased, type and brackets removed.
    pub final_recipient: Option<String>,
    /// `Original-Recipient` (the address as we gave it in RCPT TO), likewise.
    pub original_recipient: Option<String>,
    /// `failed`, `delayed`, `delivered`, `relayed` or `expanded` (lowercased).
    pub action: String,
    /// The enhanced status code, refined from the diagnostic when generic (see the module doc).
    pub status: String,
    /// The `Diagnostic-Code`, unfolded (e.g. "smtp; 550 5.1.1 user unknown").
    pub diagnostic: String,
}

impl RecipientStatus {
    /// The address we sent to: the original recipient when given, else the final one.
    pub fn address(&self) -> Option<&str> {
        self.original_recipient.as_deref().or(self.final_recipient.as_deref())
    }

    /// The bounce this block reports, if it reports a failure (`mta::bounce`'s class).
    pub fn bounce_class(&self) -> Option<BounceClass> {
        if self.action != "failed" {
            return None;
        }
        let (code, text) = bounce::diagnostic_reply(&self.diagnostic);
        Some(bounce::classify(&Failure { code, status: &self.status, text, about_sender: false }))
    }
}

/// Whether the message is a delivery report of some form (see the module doc).
pub fn is_dsn(message: &Message<'_>) -> bool {
    status_part(message).is_some() || failed_recipients_header(message).is_some()
}

/// Reads the report; `None` when the message is no delivery report.
pub fn parse(message: &Message<'_>) -> Option<Dsn> {
    let mut dsn = match status_part(message) {
        Some(body) => parse_status_blocks(&String::from_utf8_lossy(body)),
        None => plain_bounce(message, &failed_recipients_header(message)?),
    };
    let (message_id, recipients) = returned_original(message);
    dsn.original_message_id = message_id.or(dsn.original_message_id);
    dsn.original_recipients = recipients;
    Some(dsn)
}

/// The body of the first delivery-status part.
fn status_part<'a>(message: &'a Message<'_>) -> Option<&'a [u8]> {
    message
        .parts
        .iter()
        .find(|part| {
            part.is_content_type("message", "delivery-status")
                || part.is_content_type("message", "global-delivery-status")
        })
        .map(|part| part.contents())
}

/// The addresses of an `X-Failed-Recipients` header, if the message has one.
fn failed_recipients_header(message: &Message<'_>) -> Option<Vec<String>> {
    let value = message.header_raw("X-Failed-Recipients")?;
    let addresses: Vec<String> = value.split(',').map(clean_address).filter(|address| address.contains('@')).collect();
    (!addresses.is_empty()).then_some(addresses)
}

/// The per-message block, then one [`RecipientStatus`] per recipient block.
fn parse_status_blocks(text: &str) -> Dsn {
    let mut dsn = Dsn::default();
    for (index, block) in blocks(text).iter().enumerate() {
        let field = |name: &str| block.iter().find(|(n, _)| n == name).map(|(_, v)| v.clone());
        let is_recipient_block = field("final-recipient").is_some() || field("original-recipient").is_some();
        if !is_recipient_block {
            if index == 0 {
                dsn.reporting_mta = field("reporting-mta").map(|v| strip_type(&v).to_string()).unwrap_or_default();
                dsn.original_message_id = field("x-original-message-id").map(|v| clean_message_id(&v));
            }
            continue;
        }
        let diagnostic = field("diagnostic-code").unwrap_or_default();
        let status = refine_status(&field("status").unwrap_or_default(), &diagnostic);
        dsn.recipients.push(RecipientStatus {
            final_recipient: field("final-recipient").map(|v| clean_address(strip_type(&v))),
            original_recipient: field("original-recipient").map(|v| clean_address(strip_type(&v))),
            action: field("action").map(|v| v.trim().to_ascii_lowercase()).unwrap_or_default(),
            status,
            diagnostic,
        });
    }
    dsn
}

/// The header blocks of a delivery-status body: (lowercased name, unfolded value) per field.
fn blocks(text: &str) -> Vec<Vec<(String, String)>> {
    let mut blocks = Vec::new();
    let mut current: Vec<(String, String)> = Vec::new();
    for line in text.lines() {
        let line = line.trim_end_matches('\r');
        if line.trim().is_empty() {
            if !current.is_empty() {
                blocks.push(std::mem::take(&mut current));
            }
        } else if line.starts_with([' ', '\t']) {
            if let Some((_, value)) = current.last_mut() {
                value.push(' ');
                value.push_str(line.trim());
            }
        } else if let Some((name, value)) = line.split_once(':') {
            current.push((name.trim().to_ascii_lowercase(), value.trim().to_string()));
        }
    }
    if !current.is_empty() {
        blocks.push(current);
    }
    blocks
}

/// An old-style bounce: the failed addresses from the header, the status from the first
/// enhanced code in the text (5.0.0 when there is none).
fn plain_bounce(message: &Message<'_>, failed: &[String]) -> Dsn {
    let text = message.body_text(0).unwrap_or_default();
    let status = first_enhanced_code(&text, '5').unwrap_or_else(|| "5.0.0".to_string());
    let diagnostic = text
        .lines()
        .map(str::trim)
        .find(|line| line.contains(&status))
        .map(|line| format!("smtp; {line}"))
        .unwrap_or_default();
    Dsn {
        recipients: failed
            .iter()
            .map(|address| RecipientStatus {
                final_recipient: Some(address.clone()),
                original_recipient: None,
                action: "failed".into(),
                status: status.clone(),
                diagnostic: diagnostic.clone(),
            })
            .collect(),
        ..Dsn::default()
    }
}

/// The returned original's Message-ID and To/Cc addresses, wherever the report carries it.
fn returned_original(message: &Message<'_>) -> (Option<String>, Vec<String>) {
    for part in message.parts.iter().skip(1) {
        let original = match &part.body {
            PartType::Message(original) => Some(original.clone()),
            PartType::Text(text) if part.is_content_type("text", "rfc822-headers") => {
                MessageParser::default().parse_headers(text.as_bytes()).map(Message::into_owned)
            }
            _ => None,
        };
        if let Some(original) = original {
            return original_facts(&original);
        }
    }
    // Exim's plain-text bounce: the copy follows a marker line in the body.
    let text = message.body_text(0).unwrap_or_default();
    if let Some(at) = text.find("This is a copy of the message") {
        let copy = text[at..].split_once('\n').map(|(_, rest)| rest.trim_start()).unwrap_or_default();
        if let Some(original) = MessageParser::default().parse_headers(copy.as_bytes()) {
            return original_facts(&original);
        }
    }
    (None, Vec::new())
}

fn original_facts(original: &Message<'_>) -> (Option<String>, Vec<String>) {
    let message_id = original.message_id().map(clean_message_id).filter(|id| !id.is_empty());
    let recipients = original
        .to()
        .into_iter()
        .chain(original.cc())
        .flat_map(|list| list.iter())
        .filter_map(|addr| addr.address())
        .map(clean_address)
        .collect();
    (message_id, recipients)
}

/// "rfc822; Bob@X" → "Bob@X" (the address type, or "dns;" of an MTA, removed).
fn strip_type(value: &str) -> &str {
    value.split_once(';').map_or(value, |(_, rest)| rest).trim()
}

/// Lowercased, without angle brackets or surrounding space.
fn clean_address(value: &str) -> String {
    value.trim().trim_start_matches('<').trim_end_matches('>').trim().to_lowercase()
}

fn clean_message_id(value: &str) -> String {
    value.trim().trim_start_matches('<').trim_end_matches('>').trim().to_string()
}

/// The status as reported, or a more specific one from the diagnostic (see the module doc).
fn refine_status(status: &str, diagnostic: &str) -> String {
    let status = status.split_whitespace().next().unwrap_or_default().to_string();
    let class = status.chars().next().filter(|c| matches!(c, '2' | '4' | '5'));
    let generic = status.is_empty() || status.ends_with(".0.0");
    if !generic {
        return status;
    }
    let wanted = class.or_else(|| diagnostic_class(diagnostic));
    match wanted.and_then(|class| first_enhanced_code(diagnostic, class)) {
        Some(found) => found,
        None => status,
    }
}

/// The class of the basic reply code in a diagnostic like "smtp; 550 ...".
fn diagnostic_class(diagnostic: &str) -> Option<char> {
    strip_type(diagnostic).chars().next().filter(|c| matches!(c, '2' | '4' | '5'))
}

/// The first enhanced status code `class.d{1,3}.d{1,3}` in `text` that stands as a word.
fn first_enhanced_code(text: &str, class: char) -> Option<String> {
    text.split(|c: char| !(c.is_ascii_digit() || c == '.'))
        .map(|word| word.trim_end_matches('.'))
        .find(|word| {
            let fields: Vec<&str> = word.split('.').collect();
            fields.len() == 3
                && fields[0].len() == 1
                && word.starts_with(class)
                && fields[1..].iter().all(|f| (1..=3).contains(&f.len()))
        })
        .map(str::to_string)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fixture(name: &str) -> Dsn {
        let path = format!("{}/tests/fixtures/dsn/{name}", env!("CARGO_MANIFEST_DIR"));
        let raw = std::fs::read(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
        let message = MessageParser::default().parse(&raw).expect("parses");
        assert!(is_dsn(&message), "{name} is a DSN");
        parse(&message).expect("a report")
    }

    /// (address, action, status, class) of each recipient block.
    fn outcomes(dsn: &Dsn) -> Vec<(&str, &str, &str, Option<BounceClass>)> {
        dsn.recipients
            .iter()
            .map(|r| (r.address().unwrap_or_default(), r.action.as_str(), r.status.as_str(), r.bounce_class()))
            .collect()
    }

    #[test]
    fn postfix() {
        let dsn = fixture("postfix.eml");
        assert_eq!(dsn.reporting_mta, "mx1.example.org");
        assert_eq!(outcomes(&dsn), [("nobody@example.org", "failed", "5.1.1", Some(BounceClass::Hard))]);
        assert!(dsn.recipients[0].diagnostic.contains("User unknown in local recipient table"));
        assert_eq!(dsn.original_message_id.as_deref(), Some("q7f3kd92ls@mail.grove.test"));
        assert_eq!(dsn.original_recipients, ["nobody@example.org"]);
    }

    #[test]
    fn postfix_delay_warning_is_no_bounce() {
        let dsn = fixture("postfix_delayed.eml");
        assert_eq!(outcomes(&dsn), [("slow@example.net", "delayed", "4.4.1", None)]);
        assert_eq!(dsn.original_message_id.as_deref(), Some("slow-1@mail.grove.test"), "from text/rfc822-headers");
    }

    #[test]
    fn exim_generic_status_is_refined_from_the_diagnostic() {
        let dsn = fixture("exim.eml");
        assert_eq!(outcomes(&dsn), [("gone@example.com", "failed", "5.1.1", Some(BounceClass::Hard))]);
        assert_eq!(dsn.original_message_id.as_deref(), Some("x81kq0vz2c@mail.grove.test"));
        assert_eq!(dsn.original_recipients, ["gone@example.com"]);
    }

    #[test]
    fn exim_plain_text_bounce() {
        let dsn = fixture("exim_plain.eml");
        assert_eq!(outcomes(&dsn), [("old.friend@example.org", "failed", "5.1.1", Some(BounceClass::Hard))]);
        assert_eq!(dsn.original_message_id.as_deref(), Some("r5t6y7u8i9@mail.grove.test"));
    }

    #[test]
    fn gmail() {
        let dsn = fixture("gmail.eml");
        assert_eq!(dsn.reporting_mta, "googlemail.com");
        assert_eq!(outcomes(&dsn), [("missing.person@example.com", "failed", "5.1.1", Some(BounceClass::Hard))]);
        assert!(dsn.recipients[0].diagnostic.contains("550 5.1.1  https://support.google.com"), "unfolded");
        assert_eq!(dsn.original_message_id.as_deref(), Some("k2m9xw1p0q@mail.grove.test"));
    }

    #[test]
    fn outlook_with_a_hard_and_a_soft_failure() {
        let dsn = fixture("outlook.eml");
        assert_eq!(
            outcomes(&dsn),
            [
                ("nobody@contoso.com", "failed", "5.1.10", Some(BounceClass::Hard)),
                ("full@contoso.com", "failed", "5.2.2", Some(BounceClass::Soft)),
            ]
        );
        assert_eq!(dsn.original_message_id.as_deref(), Some("p4w8c2n6v1@mail.grove.test"));
        assert_eq!(dsn.original_recipients, ["nobody@contoso.com", "full@contoso.com"]);
    }

    #[test]
    fn statuses_and_classes() {
        assert_eq!(refine_status("5.0.0", "smtp; 550 5.1.1 <a@b>: unknown"), "5.1.1");
        assert_eq!(refine_status("", "smtp; 554 5.7.1 blocked"), "5.7.1");
        assert_eq!(refine_status("5.0.0", "smtp; 550 no code here"), "5.0.0");
        assert_eq!(refine_status("4.4.7 (expired)", ""), "4.4.7");
        let failed =
            |status: &str| RecipientStatus { action: "failed".into(), status: status.into(), ..Default::default() };
        assert_eq!(failed("5.1.7").bounce_class(), Some(BounceClass::Policy), "our sender, not the recipient");
        assert_eq!(failed("4.4.7").bounce_class(), Some(BounceClass::Soft));
        assert_eq!(failed("5.1.2").bounce_class(), Some(BounceClass::Hard));
    }

    #[test]
    fn a_personal_message_is_no_dsn() {
        let message = MessageParser::default()
            .parse(b"From: a@b.test\r\nTo: c@d.test\r\nSubject: hi\r\n\r\nhello 5.1.1\r\n".as_slice())
            .unwrap();
        assert!(!is_dsn(&message));
        assert_eq!(parse(&message), None);
    }
}
