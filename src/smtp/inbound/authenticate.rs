//! Sender authentication of inbound mail: SPF (HELO, then MAIL FROM), DKIM, ARC and DMARC,
//! verified with mail-auth through the appliance's one configurable resolver, and the
//! `Authentication-Results` header (RFC 8601) that records them (`spf`, `dkim`, `arc`, `dmarc`,
//! in that order; each `none` when there is nothing to check).
//!
//! DMARC enforcement: a message that fails DMARC (neither an aligned SPF pass nor an aligned DKIM
//! pass, with a record published) is filed to Spam when the author domain's policy is
//! `quarantine`, and refused when it is `reject` — or, with `[smtp] inbound_dmarc_enforce =
//! false`, filed to Spam too. A temporary DNS error never refuses.
//!
//! ARC (RFC 8617): the chain is verified and reported (`arc=pass|fail|none`). It changes the
//! disposition only through `[smtp] arc_trusted_sealers`: when DMARC fails but the ARC chain
//! passes and its newest seal (`ARC-Seal` `d=`) is from a listed sealer — a mailing list or
//! forwarder the operator trusts to have checked the original authentication — the message is
//! treated as if DMARC had passed (the header still says `dmarc=fail`; the log says why). An
//! empty list (the default) never lets ARC override DMARC.
//!
//! Forged results: `Authentication-Results` fields already in the message that claim to come from
//! this host (their authserv-id is our host name) are removed before ours is added (RFC 8601 §5).

use std::net::IpAddr;
use std::time::Duration;

use mail_auth::dkim::DkimError;
use mail_auth::dmarc::Policy;
use mail_auth::dmarc::verify::DmarcParameters;
use mail_auth::spf::verify::SpfParameters;
use mail_auth::{ArcOutput, AuthenticatedMessage, AuthenticationResults, DkimOutput, DkimResult, DmarcResult};

use crate::app::App;

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
        let header =
            format!("Authentication-Results: {hostname}{spf_part};\r\n\tdkim=none;\r\n\tarc=none;\r\n\tdmarc=none\r\n");
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
    let arc = authenticator.verify_arc(&message).await;
    let arc_part =
        part(hostname, AuthenticationResults::new(hostname).with_arc_result(&reported_arc(&arc), envelope.ip));
    let dmarc_part = part(hostname, AuthenticationResults::new(hostname).with_dmarc_result(&dmarc));
    let mut failed = matches!(dmarc.result(), DmarcResult::Fail(_));
    if failed && let Some(sealer) = trusted_sealer(&arc, &app.config.smtp.arc_trusted_sealers) {
        tracing::info!(peer = %envelope.ip, %sealer, domain = dmarc.domain(), "DMARC failure overridden by a trusted ARC sealer");
        failed = false;
    }
    let disposition = disposition(failed, dmarc.policy(), app.config.smtp.inbound_dmarc_enforce, dmarc.domain());
    let header = format!("Authentication-Results: {hostname}{spf_part}{dkim_part}{arc_part}{dmarc_part}\r\n");
    Verdict { header, disposition }
}

/// What a DMARC outcome does to the message (see the module doc).
fn disposition(failed: bool, policy: Policy, enforce: bool, domain: &str) -> Disposition {
    match (failed, policy) {
        (true, Policy::Reject) if enforce => Disposition::Reject(domain.to_string()),
        (true, Policy::Reject | Policy::Quarantine) => Disposition::Quarantine,
        _ => Disposition::Accept,
    }
}

/// The newest ARC sealer's domain when the chain passes and that sealer is in `trusted`.
fn trusted_sealer(arc: &ArcOutput<'_>, trusted: &[String]) -> Option<String> {
    if !matches!(arc.result(), DkimResult::Pass) {
        return None;
    }
    let sealer = arc.sets().last()?.seal.header.d.to_ascii_lowercase();
    trusted.iter().any(|t| t.trim().trim_end_matches('.').eq_ignore_ascii_case(&sealer)).then_some(sealer)
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

/// The ARC result as reported: like DKIM's, a body hash mismatch of the newest
/// ARC-Message-Signature (mail-auth's `neutral`) means the message changed after sealing: `fail`.
fn reported_arc(arc: &ArcOutput<'_>) -> ArcOutput<'static> {
    let result = match arc.result() {
        DkimResult::Neutral(error @ mail_auth::Error::Arc(mail_auth::arc::ArcError::FailedBodyHashMatch)) => {
            DkimResult::Fail(error.clone())
        }
        other => other.clone(),
    };
    ArcOutput::default().with_result(result)
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
    fn dmarc_failures_are_refused_or_filed_as_spam_as_configured() {
        let d = |failed, policy, enforce| disposition(failed, policy, enforce, "strict.test");
        assert_eq!(d(true, Policy::Reject, true), Disposition::Reject("strict.test".into()));
        assert_eq!(d(true, Policy::Reject, false), Disposition::Quarantine, "not enforced: Spam");
        assert_eq!(d(true, Policy::Quarantine, true), Disposition::Quarantine);
        assert_eq!(d(true, Policy::Quarantine, false), Disposition::Quarantine);
        assert_eq!(d(true, Policy::None, true), Disposition::Accept);
        assert_eq!(d(false, Policy::Reject, true), Disposition::Accept);
    }

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
