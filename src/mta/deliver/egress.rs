//! Egress: which local address a delivery connection is bound to (bind before connect).
//!
//! With `delivery.source_ips` set, a connection is bound to one of them: the address assigned to
//! the sending domain (`domains.source_ip`) for its family when it is still one of `source_ips`,
//! else a stable pick by the sending domain (64-bit FNV-1a hash of the lower-cased domain modulo
//! the addresses of the target's family), so a domain always leaves from the same address.
//! Targets of a family with no source address are skipped. Without `source_ips` nothing is bound.

use std::net::IpAddr;

/// The source addresses a connection may use (see the module doc).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord)]
pub struct Egress {
    v4: Option<IpAddr>,
    v6: Option<IpAddr>,
    /// Whether source addresses are configured at all (then a family without one is skipped).
    restricted: bool,
}

impl Egress {
    /// `assigned` for its family when it is one of `source_ips`, the stable pick otherwise.
    pub fn assigned_or_pick(source_ips: &[IpAddr], sending_domain: &str, assigned: Option<IpAddr>) -> Egress {
        let mut egress = Egress::pick(source_ips, sending_domain);
        match assigned.filter(|ip| source_ips.contains(ip)) {
            Some(ip @ IpAddr::V4(_)) => egress.v4 = Some(ip),
            Some(ip @ IpAddr::V6(_)) => egress.v6 = Some(ip),
            None => {}
        }
        egress
    }

    /// The stable pick for `sending_domain` among `source_ips`.
    pub fn pick(source_ips: &[IpAddr], sending_domain: &str) -> Egress {
        let hash = fnv1a(sending_domain.to_ascii_lowercase().as_bytes());
        let choose = |family: &dyn Fn(&IpAddr) -> bool| {
            let candidates: Vec<IpAddr> = source_ips.iter().copied().filter(|ip| family(ip)).collect();
            let len = u64::try_from(candidates.len()).ok().filter(|&n| n > 0)?;
            candidates.get(usize::try_from(hash % len).ok()?).copied()
        };
        Egress { v4: choose(&IpAddr::is_ipv4), v6: choose(&IpAddr::is_ipv6), restricted: !source_ips.is_empty() }
    }

    /// The address to bind for a connection to `target`: `Some(None)` binds nothing, `None`
    /// means no allowed source address for that family.
    pub(super) fn source_for(&self, target: IpAddr) -> Option<Option<IpAddr>> {
        let source = if target.is_ipv4() { self.v4 } else { self.v6 };
        match (source, self.restricted) {
            (Some(ip), _) => Some(Some(ip)),
            (None, false) => Some(None),
            (None, true) => None,
        }
    }
}

/// 64-bit FNV-1a: small, stable across builds and platforms.
fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |hash, &b| (hash ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn egress_is_a_stable_pick_per_sending_domain_and_family() {
        let ips: Vec<IpAddr> =
            ["192.0.2.1", "192.0.2.2", "192.0.2.3", "2001:db8::1"].iter().map(|s| s.parse().unwrap()).collect();
        let a = Egress::pick(&ips, "alpha.test");
        assert_eq!(a, Egress::pick(&ips, "ALPHA.test"), "stable and case-insensitive");
        let v4 = a.source_for("198.51.100.7".parse().unwrap()).unwrap().unwrap();
        assert!(v4.is_ipv4() && ips.contains(&v4));
        assert_eq!(a.source_for("2001:db8::25".parse().unwrap()), Some(Some(ips[3])));
        let picks: std::collections::HashSet<IpAddr> =
            (0..50).filter_map(|n| Egress::pick(&ips, &format!("d{n}.test")).v4).collect();
        assert!(picks.len() > 1, "domains spread over the addresses");
    }

    #[test]
    fn without_source_addresses_nothing_is_bound_and_families_without_one_are_skipped() {
        assert_eq!(Egress::pick(&[], "a.test").source_for("192.0.2.9".parse().unwrap()), Some(None));
        let only_v4 = Egress::pick(&["192.0.2.1".parse().unwrap()], "a.test");
        assert_eq!(only_v4.source_for("2001:db8::25".parse().unwrap()), None);
    }

    #[test]
    fn an_assigned_address_wins_for_its_family_when_configured() {
        let ips: Vec<IpAddr> = ["192.0.2.1", "192.0.2.2", "2001:db8::1"].iter().map(|s| s.parse().unwrap()).collect();
        let target: IpAddr = "198.51.100.7".parse().unwrap();
        for assigned in ["192.0.2.1", "192.0.2.2"] {
            let egress = Egress::assigned_or_pick(&ips, "alpha.test", assigned.parse().ok());
            assert_eq!(egress.source_for(target), Some(assigned.parse().ok()));
        }
        let stale = Egress::assigned_or_pick(&ips, "alpha.test", "192.0.2.99".parse().ok());
        assert_eq!(stale, Egress::pick(&ips, "alpha.test"), "an address no longer configured is ignored");
    }
}
