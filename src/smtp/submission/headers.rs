//! The authenticated mailbox sends only as itself: the message must have exactly one From
//! header holding exactly one address, that address must be the mailbox's, and a Sender header
//! (if any) must name the mailbox too. Parsed with mail-parser; compared case-insensitively.

use mail_parser::{Address, HeaderName, MessageParser};

use crate::smtp::reply::Reply;

/// What is wrong with a message's sender headers.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum HeaderProblem {
    #[error("the message has no From header")]
    NoFrom,
    #[error("the message has more than one From header")]
    SeveralFrom,
    #[error("the From header must be {expected} (the authenticated mailbox), not {found}")]
    ForeignFrom { expected: String, found: String },
    #[error("the Sender header must be {expected} (the authenticated mailbox), not {found}")]
    ForeignSender { expected: String, found: String },
}

impl HeaderProblem {
    pub fn reply(&self) -> Reply {
        match self {
            HeaderProblem::NoFrom | HeaderProblem::SeveralFrom => Reply::new(550, [5, 6, 0], self.to_string()),
            HeaderProblem::ForeignFrom { .. } | HeaderProblem::ForeignSender { .. } => {
                Reply::new(550, [5, 7, 1], self.to_string())
            }
        }
    }
}

/// Checks that `raw` claims to come from `address` only.
pub fn check_sender(raw: &[u8], address: &str) -> Result<(), HeaderProblem> {
    let message = MessageParser::default().parse_headers(raw).ok_or(HeaderProblem::NoFrom)?;
    match message.headers().iter().filter(|h| h.name == HeaderName::From).count() {
        0 => return Err(HeaderProblem::NoFrom),
        1 => {}
        _ => return Err(HeaderProblem::SeveralFrom),
    }
    let from = addresses(message.from());
    if from.len() != 1 || !from[0].eq_ignore_ascii_case(address) {
        let found = if from.is_empty() { "an unreadable address".to_string() } else { from.join(", ") };
        return Err(HeaderProblem::ForeignFrom { expected: address.to_string(), found });
    }
    if message.headers().iter().any(|h| h.name == HeaderName::Sender) {
        let sender = addresses(message.sender());
        if sender.len() != 1 || !sender[0].eq_ignore_ascii_case(address) {
            return Err(HeaderProblem::ForeignSender { expected: address.to_string(), found: sender.join(", ") });
        }
    }
    Ok(())
}

fn addresses(header: Option<&Address<'_>>) -> Vec<String> {
    header.map(|a| a.iter().filter_map(|addr| addr.address()).map(str::to_string).collect()).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    const BOB: &str = "bob@x.test";

    #[test]
    fn the_mailbox_s_own_address_passes_in_any_case_and_with_a_display_name() {
        assert_eq!(check_sender(b"From: \"Bob B\" <Bob@X.test>\r\nSubject: hi\r\n\r\nbody\r\n", BOB), Ok(()));
        assert_eq!(check_sender(b"From: bob@x.test\r\nSender: bob@x.test\r\n\r\nbody\r\n", BOB), Ok(()));
    }

    #[test]
    fn other_senders_are_refused_with_5_7_1() {
        let foreign = check_sender(b"From: Alice <alice@x.test>\r\n\r\nbody\r\n", BOB).unwrap_err();
        assert_eq!(foreign.reply().status, Some([5, 7, 1]));
        assert!(foreign.to_string().contains("alice@x.test"));
        assert!(check_sender(b"From: bob@x.test, alice@x.test\r\n\r\nx\r\n", BOB).is_err());
        assert!(matches!(
            check_sender(b"From: bob@x.test\r\nSender: alice@x.test\r\n\r\nx\r\n", BOB),
            Err(HeaderProblem::ForeignSender { .. })
        ));
    }

    #[test]
    fn missing_or_repeated_from_headers_are_refused_with_5_6_0() {
        assert_eq!(check_sender(b"Subject: no from\r\n\r\nbody\r\n", BOB), Err(HeaderProblem::NoFrom));
        assert_eq!(check_sender(b"", BOB), Err(HeaderProblem::NoFrom));
        let twice = check_sender(b"From: bob@x.test\r\nFrom: alice@x.test\r\n\r\nx\r\n", BOB).unwrap_err();
        assert_eq!(twice, HeaderProblem::SeveralFrom);
        assert_eq!(twice.reply().status, Some([5, 6, 0]));
    }
}
