//! The one configurable DNS resolver (DESIGN invariant 8): every lookup the appliance makes goes
//! through it, so tests point it at a DNS server on loopback.
//!
//! It is hickory's tokio resolver (the single hickory version in the tree, the one mail-auth
//! re-exports), asking the `[dns] nameservers` ("ip:port", over UDP then TCP) or, when that list
//! is empty, the system's resolver configuration. Lookups answer typed errors, because delivery
//! must tell a domain that does not exist (permanent) from a server that failed (temporary):
//!
//! - NXDOMAIN → [`LookupError::NoSuchDomain`];
//! - an answer without records of the type (NODATA) → [`LookupError::NoRecords`];
//! - SERVFAIL, REFUSED, timeouts and network errors → [`LookupError::Temporary`].
//!
//! Names are looked up fully qualified (a trailing dot is added), so no search domain applies.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use mail_auth::MessageAuthenticator;
use mail_auth::hickory_resolver::config::{ConnectionConfig, NameServerConfig, ResolverConfig, ResolverOpts};
use mail_auth::hickory_resolver::net::NetError;
use mail_auth::hickory_resolver::net::runtime::TokioRuntimeProvider;
use mail_auth::hickory_resolver::proto::rr::{Name, RData, RecordType};
use mail_auth::hickory_resolver::{TokioResolver, system_conf};

use crate::config::DnsConfig;

/// Why a lookup gave no answer.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LookupError {
    /// NXDOMAIN: the name does not exist.
    #[error("{0}: no such domain")]
    NoSuchDomain(String),
    /// The name exists but has no records of the type asked for.
    #[error("{0}: no {1} records")]
    NoRecords(String, &'static str),
    /// The name is not a valid domain name.
    #[error("{0}: not a valid domain name")]
    InvalidName(String),
    /// A server failure, timeout or network error: try again later.
    #[error("{0}: DNS lookup failed temporarily ({1})")]
    Temporary(String, String),
}

/// One MX record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mx {
    pub preference: u16,
    /// The exchange host, lowercased, without the trailing dot; empty for the root (`.`).
    pub exchange: String,
}

/// The resolver; cheap to clone (clones share the cache).
#[derive(Clone)]
pub struct Resolver {
    /// The resolver, or why there is none (every lookup then fails temporarily with that reason).
    inner: Arc<Result<MessageAuthenticator, String>>,
}

impl Resolver {
    /// Builds the resolver from `[dns] nameservers` (already validated as `ip:port`), or from the
    /// system configuration when the list is empty. An unreadable system configuration does not
    /// stop the appliance: lookups then fail temporarily and say why.
    pub fn from_config(config: &DnsConfig) -> Resolver {
        let inner = match build(config) {
            Ok(resolver) => Ok(MessageAuthenticator(resolver)),
            Err(reason) => {
                tracing::warn!(%reason, "no DNS resolver: lookups will fail until [dns] nameservers is set");
                Err(reason)
            }
        };
        Resolver { inner: Arc::new(inner) }
    }

    /// mail-auth's authenticator over this same resolver (DKIM, SPF, DMARC verification).
    pub fn authenticator(&self) -> Option<&MessageAuthenticator> {
        self.inner.as_ref().as_ref().ok()
    }

    /// The MX records of `domain`, most preferred (lowest preference) first.
    pub async fn mx(&self, domain: &str) -> Result<Vec<Mx>, LookupError> {
        let records = self.lookup(domain, RecordType::MX).await?;
        let mut mx: Vec<Mx> = records
            .into_iter()
            .filter_map(|data| match data {
                RData::MX(mx) => Some(Mx { preference: mx.preference, exchange: name_text(&mx.exchange) }),
                _ => None,
            })
            .collect();
        mx.sort_by_key(|m| m.preference);
        Ok(mx)
    }

    /// The IPv4 addresses of `host`.
    pub async fn ipv4(&self, host: &str) -> Result<Vec<IpAddr>, LookupError> {
        let records = self.lookup(host, RecordType::A).await?;
        Ok(records
            .into_iter()
            .filter_map(|data| match data {
                RData::A(a) => Some(IpAddr::V4(a.0)),
                _ => None,
            })
            .collect())
    }

    /// The IPv6 addresses of `host`.
    pub async fn ipv6(&self, host: &str) -> Result<Vec<IpAddr>, LookupError> {
        let records = self.lookup(host, RecordType::AAAA).await?;
        Ok(records
            .into_iter()
            .filter_map(|data| match data {
                RData::AAAA(aaaa) => Some(IpAddr::V6(aaaa.0)),
                _ => None,
            })
            .collect())
    }

    /// The IPv4 then IPv6 addresses of `host`. `NoRecords` only when it has neither;
    /// `NoSuchDomain` when the name does not exist.
    pub async fn addresses(&self, host: &str) -> Result<Vec<IpAddr>, LookupError> {
        let v4 = self.ipv4(host).await;
        if let Err(LookupError::NoSuchDomain(_)) = v4 {
            return v4;
        }
        let v6 = self.ipv6(host).await;
        let mut found = Vec::new();
        let mut temporary = None;
        for result in [v4, v6] {
            match result {
                Ok(addresses) => found.extend(addresses),
                Err(e @ LookupError::Temporary(..)) => temporary = Some(e),
                Err(_) => {}
            }
        }
        match temporary {
            _ if !found.is_empty() => Ok(found),
            Some(e) => Err(e),
            None => Err(LookupError::NoRecords(host.to_string(), "A/AAAA")),
        }
    }

    /// The TXT records of `name`, each one's strings joined.
    pub async fn txt(&self, name: &str) -> Result<Vec<String>, LookupError> {
        let records = self.lookup(name, RecordType::TXT).await?;
        Ok(records
            .into_iter()
            .filter_map(|data| match data {
                RData::TXT(txt) => Some(txt.txt_data.iter().map(|part| String::from_utf8_lossy(part)).collect()),
                _ => None,
            })
            .collect())
    }

    async fn lookup(&self, name: &str, kind: RecordType) -> Result<Vec<RData>, LookupError> {
        let resolver = match &*self.inner {
            Ok(authenticator) => &authenticator.0,
            Err(reason) => return Err(LookupError::Temporary(name.to_string(), reason.clone())),
        };
        let fqdn = Name::from_utf8(format!("{}.", name.trim_end_matches('.')))
            .map_err(|_| LookupError::InvalidName(name.to_string()))?;
        match resolver.lookup(fqdn, kind).await {
            Ok(lookup) => {
                let found: Vec<RData> =
                    lookup.answers().iter().filter(|r| r.record_type() == kind).map(|r| r.data.clone()).collect();
                if found.is_empty() {
                    Err(LookupError::NoRecords(name.to_string(), record_label(kind)))
                } else {
                    Ok(found)
                }
            }
            Err(e) => Err(classify(name, kind, &e)),
        }
    }
}

fn build(config: &DnsConfig) -> Result<TokioResolver, String> {
    let (resolver_config, options) = if config.nameservers.is_empty() {
        system_conf::read_system_conf().map_err(|e| format!("cannot read the system DNS configuration: {e}"))?
    } else {
        (explicit_config(&config.nameservers)?, ResolverOpts::default())
    };
    let mut options = options;
    // Delivery and verification want fresh answers more than a big cache; records change in
    // tests (key rotation, MX moves) and in real life.
    options.cache_size = 1024;
    TokioResolver::builder_with_config(resolver_config, TokioRuntimeProvider::default())
        .with_options(options)
        .build()
        .map_err(|e| format!("cannot build the DNS resolver: {e}"))
}

/// A resolver configuration asking exactly these `ip:port` servers, UDP first then TCP.
fn explicit_config(nameservers: &[String]) -> Result<ResolverConfig, String> {
    let mut servers = Vec::with_capacity(nameservers.len());
    for text in nameservers {
        let address: SocketAddr = text.parse().map_err(|_| format!("\"{text}\" is not an ip:port address"))?;
        let mut udp = ConnectionConfig::udp();
        udp.port = address.port();
        let mut tcp = ConnectionConfig::tcp();
        tcp.port = address.port();
        servers.push(NameServerConfig::new(address.ip(), true, vec![udp, tcp]));
    }
    Ok(ResolverConfig::from_name_servers(servers))
}

fn classify(name: &str, kind: RecordType, error: &NetError) -> LookupError {
    if error.is_nx_domain() {
        LookupError::NoSuchDomain(name.to_string())
    } else if error.is_no_records_found() {
        LookupError::NoRecords(name.to_string(), record_label(kind))
    } else {
        LookupError::Temporary(name.to_string(), error.to_string())
    }
}

fn record_label(kind: RecordType) -> &'static str {
    match kind {
        RecordType::MX => "MX",
        RecordType::A => "A",
        RecordType::AAAA => "AAAA",
        RecordType::TXT => "TXT",
        _ => "matching",
    }
}

/// A domain name as text: lowercase, no trailing dot (the root is the empty string).
fn name_text(name: &Name) -> String {
    name.to_ascii().trim_end_matches('.').to_ascii_lowercase()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn explicit_nameservers_keep_their_port() {
        let config = explicit_config(&["127.0.0.1:5353".into()]).unwrap();
        let server = &config.name_servers()[0];
        assert_eq!(server.ip, "127.0.0.1".parse::<IpAddr>().unwrap());
        assert!(server.connections.iter().all(|c| c.port == 5353));
        assert_eq!(server.connections.len(), 2);
    }

    #[test]
    fn the_root_name_is_empty_text() {
        assert_eq!(name_text(&Name::root()), "");
        assert_eq!(name_text(&Name::from_ascii("MX.Dest.Test.").unwrap()), "mx.dest.test");
    }
}
