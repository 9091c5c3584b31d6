//! Warmup messages as sent: plain text, From and To with names, a fresh Message-ID at the
//! sender's domain, and the warmup mark ([`super::marker`]). A reply answers in the same thread:
//! `Re: ` plus the subject, In-Reply-To the message answered, References the thread so far.

use mail_builder::MessageBuilder;
use mail_builder::headers::date::Date;
use mail_builder::headers::raw::Raw;

use super::marker;
use crate::crypto::{MasterKey, random_token};

/// One party of a warmup message.
#[derive(Debug, Clone)]
pub struct Party {
    pub address: String,
    pub display_name: String,
}

/// What a reply answers.
#[derive(Debug, Clone)]
pub struct Answering {
    /// The Message-ID answered (without angle brackets).
    pub message_id: String,
    /// The thread's References before it (oldest first, without angle brackets).
    pub references: Vec<String>,
    pub subject: String,
}

/// What a warmup message says, between whom.
#[derive(Debug, Clone)]
pub struct Draft {
    pub from: Party,
    pub to: Party,
    pub subject: String,
    pub body: String,
    /// Set for a reply: the subject becomes `Re: ` plus the answered subject.
    pub answering: Option<Answering>,
}

/// A built message.
#[derive(Debug, Clone)]
pub struct Built {
    pub raw: Vec<u8>,
    /// Without angle brackets.
    pub message_id: String,
}

/// Builds a warmup message (or, with `answering`, a reply) of `workspace_id`.
#[must_use]
pub fn build(keys: &MasterKey, workspace_id: i64, draft: &Draft, now: i64) -> Built {
    let Draft { from, to, subject, body, answering } = draft;
    let domain = from.address.rsplit_once('@').map_or("localhost", |(_, domain)| domain);
    let message_id = format!("{}@{domain}", random_token());
    let subject = match answering {
        Some(answering) => reply_subject(&answering.subject),
        None => subject.clone(),
    };
    let mut message = MessageBuilder::new()
        .from((from.display_name.clone(), from.address.clone()))
        .to((to.display_name.clone(), to.address.clone()))
        .subject(subject)
        .date(Date::new(now))
        .message_id(message_id.clone())
        .header(marker::HEADER, Raw::new(marker::value(keys, workspace_id, &message_id)))
        .text_body(body.replace('\n', "\r\n"));
    if let Some(answering) = answering {
        let mut references = answering.references.clone();
        if !references.contains(&answering.message_id) {
            references.push(answering.message_id.clone());
        }
        message = message.in_reply_to(answering.message_id.clone()).references(references);
    }
    Built { raw: message.write_to_vec().unwrap_or_default(), message_id }
}

/// `Re: SUBJECT`, without piling up `Re:`s.
#[must_use]
pub fn reply_subject(subject: &str) -> String {
    let trimmed = subject.trim();
    if trimmed.get(..3).is_some_and(|head| head.eq_ignore_ascii_case("re:")) {
        trimmed.to_owned()
    } else {
        format!("Re: {trimmed}")
    }
}

#[cfg(test)]
mod tests {
    use mail_parser::{HeaderValue, MessageParser};

    use super::*;

    fn party(address: &str, name: &str) -> Party {
        Party { address: address.into(), display_name: name.into() }
    }

    #[test]
    fn a_reply_is_threaded_and_marked() {
        let keys = MasterKey::from_bytes(&[1; 32]);
        let ana = party("ana@a.test", "Ana Lima");
        let ben = party("ben@b.test", "Ben Ode");
        let draft = |from: &Party, to: &Party, subject: &str, body: &str, answering| Draft {
            from: from.clone(),
            to: to.clone(),
            subject: subject.into(),
            body: body.into(),
            answering,
        };
        let first =
            build(&keys, 9, &draft(&ana, &ben, "Lunch plans", "Hi Ben,\n\nHow about Friday?\n", None), 1_800_000_000);
        let answering =
            Answering { message_id: first.message_id.clone(), references: vec![], subject: "Lunch plans".into() };
        let reply = build(&keys, 9, &draft(&ben, &ana, "", "Sounds good.\n", Some(answering)), 1_800_000_600);
        let parsed = MessageParser::default().parse(&reply.raw).unwrap();
        assert_eq!(parsed.subject(), Some("Re: Lunch plans"));
        assert_eq!(parsed.in_reply_to().as_text(), Some(first.message_id.as_str()));
        assert!(matches!(parsed.references(), HeaderValue::Text(id) if id == &first.message_id));
        assert!(reply.message_id.ends_with("@b.test"));
        let mark = parsed.header_raw(marker::HEADER).unwrap().trim();
        assert!(marker::verify(&keys, 9, &reply.message_id, mark));
        assert_eq!(parsed.body_text(0).unwrap().trim(), "Sounds good.");
        assert_eq!(reply_subject("RE: Lunch"), "RE: Lunch");
    }
}
