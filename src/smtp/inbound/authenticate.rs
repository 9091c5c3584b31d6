//! Sender authentication of inbound mail: SPF (HELO, then MAIL FROM), DKIM and DMARC, verified
//! with mail-auth through the appliance's one configurable resolver, and the
//! `Authentication-Results` header (RFC 8601) that records them.
//!
//! DMARC enforcement: a message that fails DMARC (neither an aligned SPF pass nor an aligned DKIM
//! pass, with a record published) is refused when the author domain's policy is `reject` and filed
//! to Spam when it is `quarantine` ([`ENFORCE_DMARC`]; a temporary DNS error never refuses).
//! ARC is not evaluated: mail-auth 0.13.3 keeps it behind its `arc` feature, which this build
//! does not enable.
//!
//! Forged results: `Authentication-Results` fields already in the message that claim to come from
//! this host (their authserv-id is our host name) are removed before ours is added (RFC 8601 §5).

use std::net::IpAddr;
use std::time::Duration;

use mail_auth::dkim::DkimError;
use mail_auth::dmarc::Policy;
use mail_auth::dmarc::verify::DmarcParameters;
use mail_auth::spf::verify::SpfParameters;
use mail_auth::{AuthenticatedMessage, AuthenticationResults, DkimOutput, DkimResult, DmarcResult};

use crate::app::App;

/// Whether DMARC `reject` and `quarantine` policies are applied (a candidate for a config key,
/// `[smtp] inbound_dmarc_enforce`).
pub const ENFORCE_DMARC: bool = true;

/// How long all lookups of one message may take together.
const VERIFY_TIMEOUT: Duration = Duration::from_secs(30);

/// What to do with the message, as DMARC says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Disposition {
    /// Deliver to the INBOX.
    Accept,
    /// Deliver to Spam.
    Quarantine,
    /// Refuse; the author domain is named.
    Reject(String),
}

/// The outcome of authentication.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verdict {
    /// The `Authentication-Results: ...\r\n` header field to prepend.
    pub header: String,
    pub disposition: Disposition,
}

/// The SMTP facts authentication needs.
#[derive(Debug, Clone, Copy)]
pub struct Envelope<'a> {
    pub ip: IpAddr,
    pub helo: &'a str,
    /// "" for the null reverse-path.
    pub mail_from: &'a str,
}

/// Verifies SPF, DKIM and DMARC (see the module doc); gives up after [`VERIFY_TIMEOUT`] (slow
/// or dead nameservers) and then accepts with no result.
pub async fn verify(app: &App, envelope: Envelope<'_>, raw: &[u8]) -> Verdict {
    match tokio::time::timeout(VERIFY_TIMEOUT, verify_all(app, envelope, raw)).await {
        Ok(verdict) => verdict,
        Err(_) => {
            tracing::warn!(peer = %envelope.ip, "sender authentication timed out");
            Verdict {
                header: format!("Authentication-Results: {}; none (DNS lookups timed out)\r\n", app.config.hostname),
                disposition: Disposition::Accept,
            }
        }
    }
}

async fn verify_all(app: &App, envelope: Envelope<'_>, raw: &[u8]) -> Verdict {
    let hostname = app.config.hostname.as_str();
    let Some(authenticator) = app.resolver.authenticator() else {
        return Verdict {
            header: format!("Authentication-Results: {hostname}; none\r\n"),
            disposition: Disposition::Accept,
        };
    };
    let spf =
        authenticator.verify_spf(SpfParameters::verify(envelope.ip, envelope.helo, hostname, envelope.mail_from)).await;
    let spf_part = part(
        hostname,
        AuthenticationResults::new(hostname).with_spf_mailfrom_result(
            &spf,
            envelope.ip,
            envelope.mail_from,
            envelope.helo,
        ),
    );
    let Some(message) = AuthenticatedMessage::parse(raw) else {
        let header = format!("Authentication-Results: {hostname}{spf_part};\r\n\tdkim=none;\r\n\tdmarc=none\r\n");
        return Verdict { header, disposition: Disposition::Accept };
    };
    let dkim = authenticator.verify_dkim(&message).await;
    let mail_from_domain = match envelope.mail_from.rsplit_once('@') {
        Some((_, domain)) => domain,
        None => envelope.helo,
    };
    let dmarc = authenticator.verify_dmarc(DmarcParameters::new(&message, &dkim, mail_from_domain, &spf)).await;
    let header_from = message.from.first().map(String::as_str).unwrap_or_default();
    let dkim_part = if dkim.is_empty() {
        ";\r\n\tdkim=none".to_string()
    } else {
        let reported = reported_dkim(&dkim);
        part(hostname, AuthenticationResults::new(hostname).with_dkim_results(&reported, header_from))
    };
    let dmarc_part = part(hostname, AuthenticationResults::new(hostname).with_dmarc_result(&dmarc));
    let failed = matches!(dmarc.result(), DmarcResult::Fail(_));
    let disposition = match (ENFORCE_DMARC && failed, dmarc.policy()) {
        (true, Policy::Reject) => Disposition::Reject(dmarc.domain().to_string()),
        (true, Policy::Quarantine) => Disposition::Quarantine,
        _ => Disposition::Accept,
    };
    let header = format!("Authentication-Results: {hostname}{spf_part}{dkim_part}{dmarc_part}\r\n");
    Verdict { header, disposition }
}

/// One method's results as mail-auth writes them (";\r\n\tmethod=result ..."), without the
/// authserv-id, so the header always names spf, dkim and dmarc in that order (`dkim=none` when
/// the message has no signature, which mail-auth would leave out).
fn part(hostname: &str, results: AuthenticationResults<'_>) -> String {
    results.to_string().strip_prefix(hostname).unwrap_or_default().to_string()
}

/// DKIM results as reported: mail-auth calls a body hash mismatch `neutral`; RFC 6376 §6.1.3
/// makes it a PERMFAIL of a signature that was checked, reported here as `fail`.
fn reported_dkim<'x>(outputs: &'x [DkimOutput<'x>]) -> Vec<DkimOutput<'x>> {
    outputs
        .iter()
        .map(|output| match (output.result(), output.signature()) {
            (DkimResult::Neutral(error @ mail_auth::Error::Dkim(DkimError::FailedBodyHashMatch)), Some(signature)) => {
                DkimOutput::fail(error.clone()).with_signature(signature)
            }
            _ => output.clone(),
        })
        .collect()
}

/// The message without `Authentication-Results` fields whose authserv-id is `hostname`.
pub fn without_forged_results(raw: &[u8], hostname: &str) -> Vec<u8> {
    let header_end = find(raw, b"\r\n\r\n").map_or(raw.len(), |at| at + 2);
    let (header, body) = raw.split_at(header_end);
    let mut out = Vec::with_capacity(raw.len());
    let mut skipping = false;
    for line in header.split_inclusive(|&b| b == b'\n') {
        let continuation = line.first().is_some_and(|b| *b == b' ' || *b == b'\t');
        if !continuation {
            skipping = claims_our_results(line, hostname);
        }
        if !skipping {
            out.extend_from_slice(line);
        }
    }
    out.extend_from_slice(body);
    out
}

/// Whether a header field's first line is an Authentication-Results of `hostname`.
fn claims_our_results(line: &[u8], hostname: &str) -> bool {
    let text = String::from_utf8_lossy(line);
    let Some((name, value)) = text.split_once(':') else { return false };
    if !name.trim().eq_ignore_ascii_case("Authentication-Results") {
        return false;
    }
    let authserv_id = value.split(';').next().unwrap_or_default();
    let authserv_id = authserv_id.split_whitespace().next().unwrap_or_default();
    authserv_id.eq_ignore_ascii_case(hostname)
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|window| window == needle)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn forged_results_of_this_host_are_removed_and_others_kept() {
        let raw = b"Authentication-Results: MAIL.grove.test;\r\n\tdkim=pass header.d=evil.test\r\n\
                    Authentication-Results: mx.other.test; spf=pass\r\nSubject: hi\r\n\r\n\
                    Authentication-Results: mail.grove.test; in the body stays\r\n";
        let cleaned = String::from_utf8(without_forged_results(raw, "mail.grove.test")).unwrap();
        assert_eq!(
            cleaned,
            "Authentication-Results: mx.other.test; spf=pass\r\nSubject: hi\r\n\r\n\
             Authentication-Results: mail.grove.test; in the body stays\r\n"
        );
    }
}
