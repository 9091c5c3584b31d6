//! What a reply means for a recipient: delivered, retried later, expired, or bounced (and which
//! kind of bounce). Pure functions, so the tables below are unit-tested.
//!
//! Severity comes from the basic reply code (2xx delivered, 4xx temporary, 5xx permanent);
//! failures this side of SMTP (DNS, connections) carry an enhanced status code whose class says
//! the same. A permanent failure's class is `mta::bounce`'s, the same as for a later DSN.
//!
//! Retries: after the n-th failed attempt the row waits `schedule[min(n-1, len-1)]` seconds, but
//! never past `created_at + max_age` (the last attempt happens at that moment); a temporary
//! failure at or after that moment expires the row instead.

use smtp_proto::Response;

use crate::mta::bounce::{self, BounceClass, Failure};

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

/// What happens to a row after a temporary failure.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Retry {
    /// Try again at this time.
    At(i64),
    /// Too old: give up.
    Expired,
}

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
}

/// The class of a permanent failure (`mta::bounce`).
pub fn bounce_class(reply: &Reply) -> BounceClass {
    bounce::classify(&Failure {
        code: reply.code,
        status: &reply.status,
        text: &reply.text,
        about_sender: reply.stage == Stage::MailFrom,
    })
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
    fn a_permanent_reply_is_classified_by_mta_bounce_with_its_stage() {
        assert_eq!(bounce_class(&reply(554, "5.7.1", "blocked using zen.spamhaus.org")), BounceClass::Block);
        let mut at_mail_from = reply(550, "5.1.1", "sender unknown");
        assert_eq!(bounce_class(&at_mail_from), BounceClass::Hard);
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
