//! Who a request comes from: the TCP peer, unless that peer is one of `[http] trusted_proxies`;
//! then the `X-Forwarded-For` header is read from the right (the entry the nearest proxy
//! appended) and the first address that is not itself a trusted proxy is the client. Entries a
//! client wrote itself sit further left and are never reached while a trusted proxy appended
//! after them, so a client cannot choose the address it is throttled under. A header that
//! cannot be read leaves the proxy's own address.

use std::net::{IpAddr, SocketAddr};

use axum::extract::{ConnectInfo, FromRequestParts};
use axum::http::request::Parts;

use crate::app::App;

/// The client's address (see the module doc).
pub struct ClientIp(pub IpAddr);

impl FromRequestParts<App> for ClientIp {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, app: &App) -> Result<Self, Self::Rejection> {
        let peer = parts
            .extensions
            .get::<ConnectInfo<SocketAddr>>()
            .map_or(IpAddr::from([127, 0, 0, 1]), |ConnectInfo(peer)| peer.ip());
        let trusted: Vec<IpAddr> = app.config.http.trusted_proxies.iter().filter_map(|ip| ip.parse().ok()).collect();
        let forwarded: Vec<&str> =
            parts.headers.get_all("x-forwarded-for").iter().filter_map(|value| value.to_str().ok()).collect();
        Ok(ClientIp(client_ip(peer, &forwarded, &trusted)))
    }
}

/// The rule of the module doc; `forwarded` holds the X-Forwarded-For header lines in order.
pub fn client_ip(peer: IpAddr, forwarded: &[&str], trusted: &[IpAddr]) -> IpAddr {
    let mut client = peer;
    if !trusted.contains(&peer) {
        return client;
    }
    let entries = forwarded.iter().flat_map(|line| line.split(',')).map(str::trim).collect::<Vec<_>>();
    for entry in entries.into_iter().rev() {
        let Some(ip) = parse_entry(entry) else { return client };
        client = ip;
        if !trusted.contains(&ip) {
            break;
        }
    }
    client
}

/// "203.0.113.7", "2001:db8::1", "[2001:db8::1]:443" or "203.0.113.7:5000".
fn parse_entry(entry: &str) -> Option<IpAddr> {
    entry.parse().ok().or_else(|| entry.parse::<SocketAddr>().ok().map(|addr| addr.ip()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(text: &str) -> IpAddr {
        text.parse().unwrap()
    }

    #[test]
    fn the_header_counts_only_behind_a_trusted_proxy_and_only_up_to_the_first_stranger() {
        let proxy = [ip("127.0.0.1")];
        let behind = |lines: &[&str]| client_ip(ip("127.0.0.1"), lines, &proxy);
        assert_eq!(client_ip(ip("198.51.100.9"), &["203.0.113.7"], &proxy), ip("198.51.100.9"), "not a proxy");
        assert_eq!(client_ip(ip("127.0.0.1"), &["203.0.113.7"], &[]), ip("127.0.0.1"), "no proxies configured");
        assert_eq!(behind(&[]), ip("127.0.0.1"));
        assert_eq!(behind(&["203.0.113.7"]), ip("203.0.113.7"));
        assert_eq!(behind(&["6.6.6.6, 203.0.113.7"]), ip("203.0.113.7"), "what the client wrote is ignored");
        assert_eq!(behind(&["6.6.6.6", "203.0.113.7"]), ip("203.0.113.7"), "several header lines");
        assert_eq!(behind(&["203.0.113.7, 127.0.0.1"]), ip("203.0.113.7"), "a chain of trusted proxies");
        assert_eq!(behind(&["[2001:db8::1]:443"]), ip("2001:db8::1"));
        assert_eq!(behind(&["203.0.113.7:5000"]), ip("203.0.113.7"));
        assert_eq!(behind(&["6.6.6.6, garbage"]), ip("127.0.0.1"), "an unreadable entry stops the walk");
    }
}
