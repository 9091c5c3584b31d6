//! Where mail for a domain goes: the addresses to try, in order.
//!
//! Direct delivery (RFC 5321 §5.1, RFC 7505): look up the domain's MX records through the one
//! resolver and try their hosts by preference (each host's A, then AAAA addresses), at most
//! [`MAX_ADDRESSES`] addresses in all.
//! - no MX records → the domain itself is the host (implicit MX); a domain with neither MX nor
//!   address records cannot receive mail (permanent, 5.1.2);
//! - a null MX (a single `MX 0 .`) → the domain accepts no mail: permanent at once (5.1.10);
//! - NXDOMAIN → permanent (5.1.2 no such domain);
//! - SERVFAIL, timeouts → temporary (4.4.3), and so is an MX whose hosts all fail to resolve.
//!
//! Smarthost: when `delivery.smarthost` is set, every domain goes to that one `host:port`;
//! any failure to resolve it is temporary (it is our configuration, not the recipient's).

use std::net::IpAddr;

use crate::dns::resolver::{LookupError, Mx, Resolver};

use super::classify::Reply;

/// The most addresses tried for one domain in one delivery round.
pub const MAX_ADDRESSES: usize = 10;

/// One address to connect to, and the name it was found under (for SNI and the records).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    pub host: String,
    pub ip: IpAddr,
    pub port: u16,
}

impl Target {
    /// "mx.dest.test [127.0.0.2]", as recorded in events and DSNs.
    pub fn label(&self) -> String {
        format!("{} [{}]", self.host, self.ip)
    }
}

/// What the MX lookup says about a domain.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MxPlan {
    /// Try these hosts, in this order.
    Hosts(Vec<String>),
    /// No MX: the domain itself is the host.
    Implicit,
}

/// Reads an MX answer (see the module doc). Hosts of equal preference keep the resolver's order.
pub fn plan(domain: &str, answer: Result<Vec<Mx>, LookupError>) -> Result<MxPlan, Reply> {
    match answer {
        Ok(records) => {
            let mut hosts: Vec<String> = Vec::new();
            for record in &records {
                if !record.exchange.is_empty() && !hosts.contains(&record.exchange) {
                    hosts.push(record.exchange.clone());
                }
            }
            if hosts.is_empty() {
                Err(Reply::local("5.1.10", format!("{domain} does not accept mail (null MX, RFC 7505)")))
            } else {
                Ok(MxPlan::Hosts(hosts))
            }
        }
        Err(LookupError::NoRecords(..)) => Ok(MxPlan::Implicit),
        Err(LookupError::NoSuchDomain(_)) => Err(Reply::local("5.1.2", format!("{domain}: no such domain"))),
        Err(LookupError::InvalidName(_)) => Err(Reply::local("5.1.2", format!("{domain} is not a valid domain name"))),
        Err(LookupError::Temporary(_, reason)) => {
            Err(Reply::local("4.4.3", format!("DNS lookup of the MX records of {domain} failed: {reason}")))
        }
    }
}

/// The addresses to try for `domain`, on `port`.
pub async fn direct(resolver: &Resolver, domain: &str, port: u16) -> Result<Vec<Target>, Reply> {
    match plan(domain, resolver.mx(domain).await)? {
        MxPlan::Implicit => match resolver.addresses(domain).await {
            Ok(ips) => Ok(targets(domain, ips, port)),
            Err(LookupError::Temporary(_, reason)) => {
                Err(Reply::local("4.4.3", format!("DNS lookup of {domain} failed: {reason}")))
            }
            Err(_) => Err(Reply::local("5.1.2", format!("{domain} has no MX and no address records"))),
        },
        MxPlan::Hosts(hosts) => {
            let mut found = Vec::new();
            let mut last_failure = None;
            for host in hosts {
                match resolver.addresses(&host).await {
                    Ok(ips) => found.extend(targets(&host, ips, port)),
                    Err(e) => last_failure = Some(e.to_string()),
                }
                if found.len() >= MAX_ADDRESSES {
                    break;
                }
            }
            found.truncate(MAX_ADDRESSES);
            if found.is_empty() {
                let reason = last_failure.unwrap_or_default();
                return Err(Reply::local("4.4.3", format!("no MX host of {domain} has an address: {reason}")));
            }
            Ok(found)
        }
    }
}

/// The addresses of the smarthost `host:port`.
pub async fn smarthost(resolver: &Resolver, smarthost: &str) -> Result<Vec<Target>, Reply> {
    let (host, port) = split_host_port(smarthost)
        .ok_or_else(|| Reply::local("4.3.5", format!("delivery.smarthost `{smarthost}` is not host:port")))?;
    if let Ok(ip) = host.parse::<IpAddr>() {
        return Ok(vec![Target { host: host.to_string(), ip, port }]);
    }
    match resolver.addresses(host).await {
        Ok(ips) => Ok(targets(host, ips, port)),
        Err(e) => Err(Reply::local("4.4.3", format!("the smarthost cannot be resolved: {e}"))),
    }
}

/// Splits "host:port" and "[v6]:port".
pub fn split_host_port(text: &str) -> Option<(&str, u16)> {
    let (host, port) = text.trim().rsplit_once(':')?;
    let host = host.strip_prefix('[').and_then(|h| h.strip_suffix(']')).unwrap_or(host);
    let port = port.parse().ok()?;
    (!host.is_empty()).then_some((host, port))
}

fn targets(host: &str, ips: Vec<IpAddr>, port: u16) -> Vec<Target> {
    ips.into_iter().map(|ip| Target { host: host.to_string(), ip, port }).collect()
}

#[cfg(test)]
mod tests {
    use super::super::classify::Severity;
    use super::*;

    fn mx(preference: u16, exchange: &str) -> Mx {
        Mx { preference, exchange: exchange.into() }
    }

    #[test]
    fn a_null_mx_refuses_mail_at_once() {
        let reply = plan("nullmx.test", Ok(vec![mx(0, "")])).unwrap_err();
        assert_eq!((reply.status.as_str(), reply.severity()), ("5.1.10", Severity::Permanent));
        assert!(reply.text.contains("null MX"), "{}", reply.text);
    }

    #[test]
    fn real_hosts_win_over_a_stray_root_record() {
        let answer = Ok(vec![mx(0, ""), mx(10, "mx1.dest.test"), mx(20, "mx2.dest.test"), mx(30, "mx1.dest.test")]);
        assert_eq!(plan("dest.test", answer), Ok(MxPlan::Hosts(vec!["mx1.dest.test".into(), "mx2.dest.test".into()])));
    }

    #[test]
    fn dns_failures_are_permanent_or_temporary_as_the_answer_says() {
        assert_eq!(plan("a.test", Err(LookupError::NoRecords("a.test".into(), "MX"))), Ok(MxPlan::Implicit));
        let nx = plan("gone.test", Err(LookupError::NoSuchDomain("gone.test".into()))).unwrap_err();
        assert_eq!((nx.status.as_str(), nx.severity()), ("5.1.2", Severity::Permanent));
        let servfail = plan("b.test", Err(LookupError::Temporary("b.test".into(), "SERVFAIL".into()))).unwrap_err();
        assert_eq!((servfail.status.as_str(), servfail.severity()), ("4.4.3", Severity::Temporary));
    }

    #[test]
    fn smarthost_addresses_split() {
        assert_eq!(split_host_port("relay.example:587"), Some(("relay.example", 587)));
        assert_eq!(split_host_port("[::1]:465"), Some(("::1", 465)));
        assert_eq!(split_host_port("relay.example"), None);
    }
}
