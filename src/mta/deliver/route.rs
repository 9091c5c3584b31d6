//! Where mail goes: which way a message leaves (a relay or direct), and the addresses to try.
//!
//! The way out ([`choose`]), most specific first: a `[[delivery.routes]]` entry for the envelope
//! sender's domain, then one for the message's workspace (matched by number, or by name compared
//! as a slug: "acme-outreach" names "Acme Outreach"), then `delivery.smarthost`, then direct
//! delivery. Messages that leave different ways never share a connection (the batch groups them
//! by [`Via`]).
//!
//! Direct delivery (RFC 5321 §5.1, RFC 7505): look up the domain's MX records through the one
//! resolver and try their hosts by preference, in random order among hosts of equal preference
//! (so load spreads as the publisher meant), each host's A then AAAA addresses, at most
//! [`MAX_ADDRESSES`] addresses in all.
//! - no MX records → the domain itself is the host (implicit MX); a domain with neither MX nor
//!   address records cannot receive mail (permanent, 5.1.2);
//! - a null MX (a single `MX 0 .`) → the domain accepts no mail: permanent at once (5.1.10);
//! - NXDOMAIN → permanent (5.1.2 no such domain);
//! - SERVFAIL, timeouts → temporary (4.4.3), and so is an MX whose hosts all fail to resolve.
//!
//! A relay is one `host:port`; any failure to resolve it is temporary (it is our configuration,
//! not the recipient's).

use std::net::IpAddr;

use crate::config::{DeliveryConfig, SmarthostTls};
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

/// Which way a message leaves.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Via {
    /// To the recipient domain's MX hosts.
    Direct,
    /// Through `delivery.smarthost`.
    Smarthost,
    /// Through `delivery.routes[i]`.
    Route(usize),
}

/// A relay's settings, as configured.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Relay<'a> {
    /// "host:port".
    pub address: &'a str,
    pub user: &'a str,
    pub password: &'a str,
    pub tls: SmarthostTls,
    pub verify: bool,
    /// The PEM file its certificate must chain to; empty: the platform's trust store.
    pub ca: &'a str,
}

/// The way out for a message of workspace `workspace_id` (named `workspace_name`) whose envelope
/// sender's domain is `sending_domain` (see the module doc).
pub fn choose(config: &DeliveryConfig, workspace_id: i64, workspace_name: &str, sending_domain: &str) -> Via {
    let sending_domain = sending_domain.trim_end_matches('.').to_ascii_lowercase();
    let by_domain = config.routes.iter().position(|r| !r.domain.is_empty() && r.domain == sending_domain);
    let by_workspace = || {
        config
            .routes
            .iter()
            .position(|r| !r.workspace.is_empty() && names_workspace(&r.workspace, workspace_id, workspace_name))
    };
    match by_domain.or_else(by_workspace) {
        Some(index) => Via::Route(index),
        None if !config.relay.smarthost.trim().is_empty() => Via::Smarthost,
        None => Via::Direct,
    }
}

/// Whether a route's `workspace` names this workspace: its number, or its name compared as a slug
/// (so "Acme Outreach", "acme outreach" and "acme-outreach" all name "Acme Outreach").
pub fn names_workspace(wanted: &str, id: i64, name: &str) -> bool {
    let wanted_slug = slug(wanted);
    wanted == id.to_string() || (!wanted_slug.is_empty() && wanted_slug == slug(name))
}

/// "Acme Outreach, Inc." → "acme-outreach-inc".
pub fn slug(name: &str) -> String {
    let lowered: String =
        name.chars().map(|c| if c.is_alphanumeric() { c.to_ascii_lowercase() } else { ' ' }).collect();
    lowered.split_whitespace().collect::<Vec<_>>().join("-")
}

/// The relay behind `via`; `None` for direct delivery.
pub fn relay(config: &DeliveryConfig, via: Via) -> Option<Relay<'_>> {
    let relay = match via {
        Via::Direct => return None,
        Via::Smarthost => &config.relay,
        Via::Route(index) => &config.routes.get(index)?.relay,
    };
    let (address, user, password, ca) =
        (&relay.smarthost, &relay.smarthost_user, &relay.smarthost_password, &relay.smarthost_tls_ca);
    let (tls, verify) = (relay.smarthost_tls, relay.smarthost_tls_verify);
    let port = split_host_port(address).map_or(0, |(_, port)| port);
    Some(Relay {
        address: address.trim(),
        user,
        password,
        tls: tls.unwrap_or(SmarthostTls::default_for_port(port)),
        verify,
        ca,
    })
}

/// Reads an MX answer (see the module doc). `random(n)` picks a number below `n`; it orders hosts
/// of equal preference.
pub fn plan(
    domain: &str,
    answer: Result<Vec<Mx>, LookupError>,
    random: &mut dyn FnMut(usize) -> usize,
) -> Result<MxPlan, Reply> {
    match answer {
        Ok(mut records) => {
            records.sort_by_key(|r| r.preference);
            shuffle_equal_preferences(&mut records, random);
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

/// Fisher–Yates shuffle of each run of records with the same preference (`records` is sorted).
fn shuffle_equal_preferences(records: &mut [Mx], random: &mut dyn FnMut(usize) -> usize) {
    let mut start = 0;
    while start < records.len() {
        let preference = records[start].preference;
        let end = start + records[start..].iter().take_while(|r| r.preference == preference).count();
        let run = &mut records[start..end];
        for i in (1..run.len()).rev() {
            run.swap(i, random(i + 1).min(i));
        }
        start = end;
    }
}

/// A number below `n` from the system's random source (0 if it fails, which only loses the shuffle).
pub fn system_random(n: usize) -> usize {
    let mut bytes = [0u8; 8];
    if n == 0 || aws_lc_rs::rand::fill(&mut bytes).is_err() {
        return 0;
    }
    let n64 = u64::try_from(n).unwrap_or(u64::MAX);
    usize::try_from(u64::from_le_bytes(bytes) % n64).unwrap_or(0)
}

/// The addresses to try for `domain`, on `port`.
pub async fn direct(resolver: &Resolver, domain: &str, port: u16) -> Result<Vec<Target>, Reply> {
    match plan(domain, resolver.mx(domain).await, &mut system_random)? {
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

/// The addresses of the relay `host:port`.
pub async fn smarthost(resolver: &Resolver, smarthost: &str) -> Result<Vec<Target>, Reply> {
    let (host, port) = split_host_port(smarthost)
        .ok_or_else(|| Reply::local("4.3.5", format!("the smarthost \"{smarthost}\" is not host:port")))?;
    if let Ok(ip) = host.parse::<IpAddr>() {
        return Ok(vec![Target { host: host.to_string(), ip, port }]);
    }
    match resolver.addresses(host).await {
        Ok(ips) => Ok(targets(host, ips, port)),
        Err(e) => Err(Reply::local("4.4.3", format!("the smarthost {host} cannot be resolved: {e}"))),
    }
}

pub use crate::config::split_host_port;

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

    /// A `random` that always keeps the order.
    fn first(_: usize) -> usize {
        0
    }

    fn plan(domain: &str, answer: Result<Vec<Mx>, LookupError>) -> Result<MxPlan, Reply> {
        super::plan(domain, answer, &mut |n| n - 1)
    }

    #[test]
    fn equal_preferences_come_in_every_order_and_preferences_stay_in_order() {
        let answer =
            || Ok(vec![mx(20, "c.test"), mx(10, "a.test"), mx(10, "b.test"), mx(10, "d.test"), mx(30, "z.test")]);
        let mut seen = std::collections::HashSet::new();
        for _ in 0..300 {
            let Ok(MxPlan::Hosts(hosts)) = super::plan("dest.test", answer(), &mut system_random) else {
                panic!("hosts expected");
            };
            let (tens, rest) = hosts.split_at(3);
            assert_eq!(rest, ["c.test", "z.test"], "lower preference values first: {hosts:?}");
            seen.insert(tens.to_vec());
        }
        assert_eq!(seen.len(), 6, "all 3! orders of the preference-10 hosts occur: {seen:?}");
        let Ok(MxPlan::Hosts(kept)) = super::plan("dest.test", answer(), &mut first) else { panic!() };
        assert_eq!(kept[3..], ["c.test", "z.test"]);
    }

    #[test]
    fn routes_choose_the_most_specific_way_out() {
        use crate::config::DeliveryRoute;
        let mut config = DeliveryConfig::default();
        assert_eq!(choose(&config, 1, "Acme", "acme.test"), Via::Direct);
        config.relay.smarthost = "relay.test:587".into();
        assert_eq!(choose(&config, 1, "Acme", "acme.test"), Via::Smarthost);
        let route = |workspace: &str, domain: &str, smarthost: &str| DeliveryRoute {
            workspace: workspace.into(),
            domain: domain.into(),
            relay: crate::config::RelayConfig { smarthost: smarthost.into(), ..Default::default() },
        };
        config.routes = vec![
            route("acme outreach", "", "ws.test:465"),
            route("", "mail.acme.test", "dom.test:2525"),
            route("7", "", "seven.test:587"),
        ];
        assert_eq!(choose(&config, 1, "Acme Outreach", "other.test"), Via::Route(0));
        assert_eq!(choose(&config, 1, "Acme  Outreach", "other.test"), Via::Route(0), "by slug");
        assert_eq!(choose(&config, 1, "Acme Outreach", "MAIL.acme.test"), Via::Route(1), "domain wins");
        assert_eq!(choose(&config, 2, "Beta", "mail.acme.test"), Via::Route(1));
        assert_eq!(choose(&config, 7, "Seven", "x.test"), Via::Route(2), "by number");
        assert_eq!(choose(&config, 2, "Beta", "x.test"), Via::Smarthost);
        assert_eq!(choose(&config, 2, "Beta", ""), Via::Smarthost, "a DSN has no sending domain");
        assert_eq!(slug("Acme Outreach, Inc."), "acme-outreach-inc");

        let ws = relay(&config, Via::Route(0)).unwrap();
        assert_eq!((ws.address, ws.tls, ws.verify), ("ws.test:465", SmarthostTls::Implicit, true));
        let dom = relay(&config, Via::Route(1)).unwrap();
        assert_eq!(dom.tls, SmarthostTls::Starttls, "not 465: STARTTLS");
        config.routes[1].relay.smarthost_tls = Some(SmarthostTls::None);
        assert_eq!(relay(&config, Via::Route(1)).unwrap().tls, SmarthostTls::None);
        assert_eq!(relay(&config, Via::Direct), None);
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
