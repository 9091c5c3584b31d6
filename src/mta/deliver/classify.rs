//! What a reply means for a recipient: delivered, retried later, expired, or bounced (and which
//! kind of bounce). Pure functions, so the tables below are unit-tested.
//!
//! Severity comes from the basic reply code (2xx delivered, 4xx temporary, 5xx permanent);
//! failures this side of SMTP (DNS, connections) carry an enhanced status code whose class says
//! the same. A permanent failure is classified by its enhanced status code (RFC 3463), falling
//! back to the basic code and the reply text when the server sent none:
//!
//! | status                         | class     | meaning                                        |
//! |--------------------------------|-----------|------------------------------------------------|
//! | x.1.7, x.1.8                   | `policy`  | our sender address was refused                 |
//! | x.1.x (x.1.1, x.1.2, x.1.10 ...) | `hard`  | no such mailbox / domain, null MX              |
//! | x.2.1                          | `hard`    | mailbox disabled                               |
//! | x.2.x (x.2.2 full ...)         | `soft`    | mailbox full, message too big for it           |
//! | x.3.x, x.4.x, x.5.x            | `soft`    | system, network, protocol trouble              |
//! | x.6.x                          | `content` | the content was refused                        |
//! | x.7.x with block words         | `block`   | IP/domain on a blocklist, reputation           |
//! | x.7.x                          | `policy`  | not authorized, authentication, policy         |
//! | any, with rate words           | `rate`    | sending too fast                               |
//!
//! A `hard` reply to `MAIL FROM` speaks about our sender, not the recipient, so it counts as
//! `policy`. Only `hard` bounces put the recipient on the suppression list.
//!
//! Retries: after the n-th failed attempt the row waits `schedule[min(n-1, len-1)]` seconds, but
//! never past `created_at + max_age` (the last attempt happens at that moment); a temporary
//! failure at or after that moment expires the row instead.

use smtp_proto::Response;

/// Where in the exchange a reply came.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stage {
    /// Before SMTP: DNS, routing, connecting, greeting, EHLO, TLS, AUTH.
    Connect,
    MailFrom,
    RcptTo,
    Data,
}

/// A reply from a server, or one made here for a failure that had no SMTP reply.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reply {
    /// The basic reply code; `None` when the failure happened before any reply (DNS, network).
    pub code: Option<u16>,
    /// The enhanced status code ("5.1.1"); empty when the server sent none.
    pub status: String,
    /// The reply text on one line.
    pub text: String,
    /// The host that answered ("mx.dest.test [127.0.0.2]").
    pub remote_mta: Option<String>,
    pub stage: Stage,
}

/// How a reply ends (or not) a recipient's delivery.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Severity {
    Success,
    Temporary,
    Permanent,
}

/// The kind of a permanent failure, stored in `queue.bounce_class`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BounceClass {
    Hard,
    Soft,
    Policy,
    Block,
    Content,
    Rate,
}

impl BounceClass {
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

/// What happens to a row after a temporary failure.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Retry {
    /// Try again at this time.
    At(i64),
    /// Too old: give up.
    Expired,
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

impl Reply {
    /// A server's reply at `stage`.
    pub fn from_response(response: &Response<String>, remote_mta: Option<&str>, stage: Stage) -> Reply {
        let [class, subject, detail] = response.esc;
        let status = if class == 0 { String::new() } else { format!("{class}.{subject}.{detail}") };
        Reply {
            code: Some(response.code),
            status,
            text: one_line(&response.message),
            remote_mta: remote_mta.map(str::to_string),
            stage,
        }
    }

    /// A failure made here (DNS, network, TLS): `status` decides temporary (4.x.x) or permanent.
    pub fn local(status: &str, text: impl Into<String>) -> Reply {
        Reply {
            code: None,
            status: status.to_string(),
            text: one_line(&text.into()),
            remote_mta: None,
            stage: Stage::Connect,
        }
    }

    /// The same reply said by `remote_mta`.
    pub fn from_host(mut self, remote_mta: &str) -> Reply {
        self.remote_mta = Some(remote_mta.to_string());
        self
    }

    pub fn severity(&self) -> Severity {
        match self.code {
            Some(200..=299) => Severity::Success,
            Some(400..=499) => Severity::Temporary,
            Some(500..=599) => Severity::Permanent,
            Some(_) => Severity::Temporary,
            None if self.status.starts_with('5') => Severity::Permanent,
            None => Severity::Temporary,
        }
    }

    /// The reply as people read it: "550 5.1.1 no such user".
    pub fn describe(&self) -> String {
        let parts = [self.code.map(|c| c.to_string()).unwrap_or_default(), self.status.clone(), self.text.clone()];
        parts.into_iter().filter(|p| !p.is_empty()).collect::<Vec<_>>().join(" ")
    }

    /// The DSN Diagnostic-Code: "smtp; 550 5.1.1 ..." for a server's reply, the text otherwise.
    pub fn diagnostic(&self) -> String {
        match self.code {
            Some(_) => format!("smtp; {}", self.describe()),
            None => format!("x-inboxgrove; {}", self.text),
        }
    }

    /// The enhanced status to record and report, made up from the basic code when missing.
    pub fn effective_status(&self) -> String {
        if !self.status.is_empty() {
            return self.status.clone();
        }
        match self.severity() {
            Severity::Success => "2.0.0",
            Severity::Temporary => "4.0.0",
            Severity::Permanent => "5.0.0",
        }
        .to_string()
    }

    fn status_parts(&self) -> Option<(u16, u16, u16)> {
        let mut parts = self.status.split('.').map(|p| p.parse::<u16>().ok());
        match (parts.next(), parts.next(), parts.next(), parts.next()) {
            (Some(Some(class)), Some(Some(subject)), Some(Some(detail)), None) => Some((class, subject, detail)),
            _ => None,
        }
    }
}

/// The kind of a permanent failure (see the module doc's table).
pub fn bounce_class(reply: &Reply) -> BounceClass {
    let text = reply.text.to_lowercase();
    let has = |words: &[&str]| words.iter().any(|w| text.contains(w));
    let class = if has(RATE_WORDS) {
        BounceClass::Rate
    } else {
        match reply.status_parts() {
            Some((_, 1, 7 | 8)) => BounceClass::Policy,
            Some((_, 1, _)) | Some((_, 2, 1)) => BounceClass::Hard,
            Some((_, 2..=5, _)) => BounceClass::Soft,
            Some((_, 6, _)) => BounceClass::Content,
            Some((_, 7, _)) if has(BLOCK_WORDS) => BounceClass::Block,
            Some((_, 7, _)) => BounceClass::Policy,
            Some(_) => BounceClass::Soft,
            None => class_without_status(reply.code, &has),
        }
    };
    if class == BounceClass::Hard && reply.stage == Stage::MailFrom { BounceClass::Policy } else { class }
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

/// Seconds to wait after the `attempt`-th failed attempt (1-based): `schedule[min(n-1, len-1)]`.
pub fn retry_delay(schedule: &[i64], attempt: i64) -> i64 {
    let last = schedule.len().saturating_sub(1);
    let index = usize::try_from(attempt.saturating_sub(1)).unwrap_or(0).min(last);
    schedule.get(index).copied().unwrap_or(60).max(1)
}

/// When to try again after the `attempt`-th attempt failed temporarily at `now`.
pub fn after_temporary_failure(schedule: &[i64], attempt: i64, created_at: i64, max_age: i64, now: i64) -> Retry {
    let expires_at = created_at.saturating_add(max_age);
    if now >= expires_at {
        Retry::Expired
    } else {
        Retry::At(now.saturating_add(retry_delay(schedule, attempt)).min(expires_at))
    }
}

fn one_line(text: &str) -> String {
    text.split(['\r', '\n']).map(str::trim).filter(|l| !l.is_empty()).collect::<Vec<_>>().join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reply(code: u16, status: &str, text: &str) -> Reply {
        Reply { code: Some(code), status: status.into(), text: text.into(), remote_mta: None, stage: Stage::RcptTo }
    }

    #[test]
    fn severity_follows_the_basic_code() {
        assert_eq!(reply(250, "2.0.0", "ok").severity(), Severity::Success);
        assert_eq!(reply(451, "4.7.1", "try later").severity(), Severity::Temporary);
        assert_eq!(reply(550, "5.1.1", "no").severity(), Severity::Permanent);
        assert_eq!(Reply::local("5.1.10", "null MX").severity(), Severity::Permanent);
        assert_eq!(Reply::local("4.4.1", "connection refused").severity(), Severity::Temporary);
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
        ];
        for (code, status, text, class) in cases {
            assert_eq!(bounce_class(&reply(code, status, text)), class, "{code} {status} {text}");
        }
    }

    #[test]
    fn a_hard_reply_to_mail_from_is_about_the_sender() {
        let mut at_mail_from = reply(550, "5.1.1", "sender unknown");
        at_mail_from.stage = Stage::MailFrom;
        assert_eq!(bounce_class(&at_mail_from), BounceClass::Policy);
    }

    #[test]
    fn replies_describe_themselves() {
        let parsed = Reply::from_response(
            &Response { code: 550, esc: [5, 1, 1], message: "no such\r\nuser".to_string() },
            Some("mx.dest.test"),
            Stage::RcptTo,
        );
        assert_eq!(parsed.describe(), "550 5.1.1 no such user");
        assert_eq!(parsed.diagnostic(), "smtp; 550 5.1.1 no such user");
        let bare =
            Reply::from_response(&Response { code: 451, esc: [0, 0, 0], message: "later".into() }, None, Stage::Data);
        assert_eq!((bare.status.as_str(), bare.effective_status().as_str()), ("", "4.0.0"));
        assert_eq!(Reply::local("4.4.1", "refused").diagnostic(), "x-inboxgrove; refused");
    }

    #[test]
    fn retry_delays_walk_the_schedule_and_repeat_the_last() {
        let schedule = [60, 300, 900];
        let delays: Vec<i64> = (1..=5).map(|n| retry_delay(&schedule, n)).collect();
        assert_eq!(delays, [60, 300, 900, 900, 900]);
        assert_eq!(retry_delay(&[], 3), 60);
    }

    #[test]
    fn retries_stop_at_max_age() {
        let schedule = [60, 3600];
        let day = 86_400;
        assert_eq!(after_temporary_failure(&schedule, 1, 0, day, 100), Retry::At(160));
        assert_eq!(after_temporary_failure(&schedule, 2, 0, day, 1000), Retry::At(4600));
        // The last attempt happens exactly when the message expires ...
        assert_eq!(after_temporary_failure(&schedule, 9, 0, day, day - 10), Retry::At(day));
        // ... and a failure then gives up.
        assert_eq!(after_temporary_failure(&schedule, 10, 0, day, day), Retry::Expired);
    }
}
