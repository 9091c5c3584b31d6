//! What a server's SMTP extensions allow for one message, decided before `MAIL FROM` is sent:
//! the `MAIL FROM` parameters to use and the recipients that cannot be sent to at all.
//!
//! - SIZE (RFC 1870): when advertised, `SIZE=<bytes of the message>` goes with `MAIL FROM`; a
//!   message larger than an advertised non-zero limit is not sent and bounces at once with
//!   5.3.4 (the limit is fixed: retrying would fail the same way).
//! - 8BITMIME (RFC 6152): a message with any byte above 127 is sent with `BODY=8BITMIME` when the
//!   server advertises it. A server without it (including one that only knows HELO) gets 7-bit
//!   messages only: an 8-bit message bounces with 5.6.3 (conversion to 7 bits is not done: it
//!   would break the DKIM signature made at submission).
//! - SMTPUTF8 (RFC 6531): an envelope with a non-ASCII address is sent with `SMTPUTF8` when the
//!   server advertises it (and `BODY=8BITMIME` if the message is 8-bit). Otherwise a non-ASCII
//!   sender bounces every recipient with 5.6.7, and a non-ASCII recipient bounces with 5.6.7
//!   while the ASCII recipients of the same message are sent to.

use smtp_proto::{EXT_8BIT_MIME, EXT_SIZE, EXT_SMTP_UTF8, EhloResponse};

use super::classify::{Reply, Stage};

/// The extensions that matter to a transaction (all off after HELO).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Extensions {
    /// SIZE was advertised; `size_limit` is its value (0: no fixed limit).
    pub size: bool,
    pub size_limit: usize,
    pub eight_bit_mime: bool,
    pub smtputf8: bool,
}

impl Extensions {
    /// The extensions in an EHLO reply.
    pub fn from_ehlo(ehlo: &EhloResponse<String>) -> Extensions {
        Extensions {
            size: ehlo.has_capability(EXT_SIZE),
            size_limit: if ehlo.has_capability(EXT_SIZE) { ehlo.size } else { 0 },
            eight_bit_mime: ehlo.has_capability(EXT_8BIT_MIME),
            smtputf8: ehlo.has_capability(EXT_SMTP_UTF8),
        }
    }
}

/// The decision for one message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Plan {
    /// Send with these `MAIL FROM` parameters (" SIZE=123 BODY=8BITMIME", or empty); recipients
    /// with `Some` reply are refused here and not given to the server.
    Send { parameters: String, refused: Vec<Option<Reply>> },
    /// Send nothing: every recipient gets this reply.
    Refuse(Reply),
}

/// Decides how (and whether) a message can go to a server with `extensions`.
pub fn plan(extensions: &Extensions, mail_from: &str, recipients: &[String], body: &[u8]) -> Plan {
    let remote_limit = extensions.size_limit;
    if extensions.size && remote_limit > 0 && body.len() > remote_limit {
        let text = format!("message of {} bytes exceeds the server's fixed maximum of {remote_limit}", body.len());
        return Plan::Refuse(refusal("5.3.4", text));
    }
    let eight_bit = !body.is_ascii();
    if eight_bit && !extensions.eight_bit_mime {
        return Plan::Refuse(refusal("5.6.3", "8-bit message, and the server does not support 8BITMIME"));
    }
    let utf8_sender = !mail_from.is_ascii();
    let utf8_recipients = recipients.iter().any(|r| !r.is_ascii());
    if utf8_sender && !extensions.smtputf8 {
        return Plan::Refuse(refusal("5.6.7", "non-ASCII sender address, and the server does not support SMTPUTF8"));
    }
    let refused = recipients
        .iter()
        .map(|r| {
            (!r.is_ascii() && !extensions.smtputf8)
                .then(|| refusal("5.6.7", "non-ASCII recipient address, and the server does not support SMTPUTF8"))
        })
        .collect();
    let mut parameters = String::new();
    if extensions.size {
        parameters.push_str(&format!(" SIZE={}", body.len()));
    }
    if eight_bit {
        parameters.push_str(" BODY=8BITMIME");
    }
    if (utf8_sender || utf8_recipients) && extensions.smtputf8 {
        parameters.push_str(" SMTPUTF8");
    }
    Plan::Send { parameters, refused }
}

fn refusal(status: &str, text: impl Into<String>) -> Reply {
    Reply { stage: Stage::MailFrom, ..Reply::local(status, text) }
}

#[cfg(test)]
mod tests {
    use super::super::classify::Severity;
    use super::*;

    const ALL: Extensions = Extensions { size: true, size_limit: 1000, eight_bit_mime: true, smtputf8: true };
    const NONE: Extensions = Extensions { size: false, size_limit: 0, eight_bit_mime: false, smtputf8: false };

    fn to(addresses: &[&str]) -> Vec<String> {
        addresses.iter().map(|a| a.to_string()).collect()
    }

    fn status(plan: &Plan) -> &str {
        match plan {
            Plan::Refuse(reply) => &reply.status,
            Plan::Send { .. } => "send",
        }
    }

    #[test]
    fn parameters_follow_what_the_server_offers_and_the_message_needs() {
        let ascii = b"Subject: hi\r\n\r\nhi\r\n";
        let sent = plan(&ALL, "a@x.test", &to(&["b@y.test"]), ascii);
        assert_eq!(sent, Plan::Send { parameters: format!(" SIZE={}", ascii.len()), refused: vec![None] });
        let eight = "Subject: hi\r\n\r\nGrüße\r\n".as_bytes();
        let Plan::Send { parameters, .. } = plan(&ALL, "a@x.test", &to(&["b@y.test"]), eight) else { panic!() };
        assert_eq!(parameters, format!(" SIZE={} BODY=8BITMIME", eight.len()));
        let Plan::Send { parameters, .. } = plan(&ALL, "a@x.test", &to(&["jürgen@y.test"]), ascii) else { panic!() };
        assert!(parameters.ends_with(" SMTPUTF8"), "{parameters}");
        assert_eq!(
            plan(&NONE, "a@x.test", &to(&["b@y.test"]), ascii),
            Plan::Send { parameters: String::new(), refused: vec![None] }
        );
    }

    #[test]
    fn what_the_server_cannot_take_bounces_at_once() {
        let big = vec![b'a'; 1001];
        let too_big = plan(&ALL, "a@x.test", &to(&["b@y.test"]), &big);
        assert_eq!(status(&too_big), "5.3.4");
        let unlimited = Extensions { size_limit: 0, ..ALL };
        assert_eq!(status(&plan(&unlimited, "a@x.test", &to(&["b@y.test"]), &big)), "send");

        let eight = "Grüße".as_bytes();
        assert_eq!(status(&plan(&NONE, "a@x.test", &to(&["b@y.test"]), eight)), "5.6.3");
        assert_eq!(status(&plan(&NONE, "jürgen@x.test", &to(&["b@y.test"]), b"hi")), "5.6.7");
        let Plan::Send { refused, parameters } = plan(&NONE, "a@x.test", &to(&["b@y.test", "jürgen@y.test"]), b"hi")
        else {
            panic!("the ASCII recipient is still sent to");
        };
        assert_eq!(parameters, "");
        assert!(refused[0].is_none());
        let reply = refused[1].as_ref().expect("the UTF-8 recipient is refused");
        assert_eq!((reply.status.as_str(), reply.severity()), ("5.6.7", Severity::Permanent));
    }
}
