//! SPF record parsing and the RFC 7208 section 4.6.4 lookup count.
//!
//! A domain must publish exactly one `v=spf1` TXT record. Evaluating it may cost at most ten DNS
//! lookups: each `include`, `a`, `mx`, `ptr` and `exists` mechanism and the `redirect` modifier
//! count one. The count is recursive: an `include` or `redirect` target's own record adds its
//! terms. The walk is a work list of domains (no recursion), stops once the limit is exceeded,
//! and a target whose record cannot be fetched counts only its own lookup.

use std::future::Future;

use crate::dns::resolver::{LookupError, Resolver};

/// The most DNS lookups an SPF evaluation may cost (RFC 7208 4.6.4).
pub const MAX_LOOKUPS: u32 = 10;

/// Where the lookup count reads TXT records from.
pub trait TxtSource {
    /// The TXT records at `name`.
    fn txt(&self, name: &str) -> impl Future<Output = Result<Vec<String>, LookupError>>;
}

impl TxtSource for Resolver {
    async fn txt(&self, name: &str) -> Result<Vec<String>, LookupError> {
        Resolver::txt(self, name).await
    }
}

/// The records among `txts` that are SPF records (`v=spf1` alone or followed by a space).
pub fn spf_records(txts: &[String]) -> Vec<&str> {
    txts.iter()
        .map(String::as_str)
        .filter(|txt| {
            let lower = txt.trim_start().to_ascii_lowercase();
            lower == "v=spf1" || lower.starts_with("v=spf1 ")
        })
        .collect()
}

/// One term of a record that costs a DNS lookup.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LookupTerm {
    /// `include:DOMAIN`: costs one and adds DOMAIN's record.
    Include(String),
    /// `redirect=DOMAIN`: costs one and adds DOMAIN's record.
    Redirect(String),
    /// `a`, `mx`, `ptr` or `exists`: costs one.
    Other,
}

/// The terms of `record` that cost a lookup, in order.
pub fn lookup_terms(record: &str) -> Vec<LookupTerm> {
    record.split_whitespace().skip(1).filter_map(lookup_term).collect()
}

fn lookup_term(term: &str) -> Option<LookupTerm> {
    let lower = term.to_ascii_lowercase();
    if let Some(target) = lower.strip_prefix("redirect=") {
        return Some(LookupTerm::Redirect(target.to_string()));
    }
    let mechanism = lower.trim_start_matches(['+', '-', '~', '?']);
    let name = mechanism.split([':', '/']).next().unwrap_or("");
    match name {
        "include" => Some(LookupTerm::Include(mechanism.split_once(':').map(|(_, d)| d.to_string())?)),
        "a" | "mx" | "ptr" | "exists" => Some(LookupTerm::Other),
        _ => None,
    }
}

/// The qualifier of the record's `all` mechanism (`+`, `-`, `~` or `?`), if it has one.
pub fn all_qualifier(record: &str) -> Option<char> {
    record.split_whitespace().skip(1).find_map(|term| {
        let lower = term.to_ascii_lowercase();
        match lower.as_str() {
            "all" | "+all" => Some('+'),
            "-all" => Some('-'),
            "~all" => Some('~'),
            "?all" => Some('?'),
            _ => None,
        }
    })
}

/// How many lookups evaluating `record` costs, following includes and redirects; the count stops
/// just past [`MAX_LOOKUPS`]. A temporary failure fetching a target is returned as an error, since
/// the count is then unknown.
pub async fn count_lookups(source: &impl TxtSource, record: &str) -> Result<u32, LookupError> {
    let mut pending = vec![record.to_string()];
    let mut count = 0;
    while let Some(current) = pending.pop() {
        for term in lookup_terms(&current) {
            count += 1;
            if count > MAX_LOOKUPS {
                return Ok(count);
            }
            let (LookupTerm::Include(target) | LookupTerm::Redirect(target)) = term else { continue };
            match source.txt(&target).await {
                Ok(txts) => pending.extend(spf_records(&txts).first().map(|r| r.to_string())),
                Err(e @ LookupError::Temporary(..)) => return Err(e),
                Err(_) => {}
            }
        }
    }
    Ok(count)
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;

    struct Zone(HashMap<&'static str, &'static str>);

    impl TxtSource for Zone {
        async fn txt(&self, name: &str) -> Result<Vec<String>, LookupError> {
            match self.0.get(name) {
                Some(record) => Ok(vec![record.to_string()]),
                None => Err(LookupError::NoSuchDomain(name.to_string())),
            }
        }
    }

    #[test]
    fn finds_only_spf_records() {
        let txts = vec!["v=spf1 -all".to_string(), "google-site=x".to_string(), "v=spf10".to_string()];
        assert_eq!(spf_records(&txts), vec!["v=spf1 -all"]);
    }

    #[test]
    fn lists_terms_that_cost_lookups() {
        let terms = lookup_terms("v=spf1 ip4:1.2.3.4 a mx/24 ~ptr exists:x.test include:i.test redirect=r.test -all");
        assert_eq!(
            terms,
            vec![
                LookupTerm::Other,
                LookupTerm::Other,
                LookupTerm::Other,
                LookupTerm::Other,
                LookupTerm::Include("i.test".into()),
                LookupTerm::Redirect("r.test".into()),
            ]
        );
    }

    #[test]
    fn reads_the_all_qualifier() {
        assert_eq!(all_qualifier("v=spf1 ip4:1.2.3.4 -all"), Some('-'));
        assert_eq!(all_qualifier("v=spf1 ip4:1.2.3.4 ~all"), Some('~'));
        assert_eq!(all_qualifier("v=spf1 all"), Some('+'));
        assert_eq!(all_qualifier("v=spf1 ip4:1.2.3.4"), None);
    }

    #[tokio::test]
    async fn counts_nested_includes() {
        let zone = Zone(HashMap::from([
            ("one.test", "v=spf1 a mx include:two.test -all"),
            ("two.test", "v=spf1 a a a include:three.test -all"),
            ("three.test", "v=spf1 mx mx mx -all"),
        ]));
        // include one (1) + a mx (2) + include two (1) + a a a (3) + include three (1) + mx mx mx (3)
        assert_eq!(count_lookups(&zone, "v=spf1 include:one.test -all").await.unwrap(), 11);
        assert_eq!(count_lookups(&zone, "v=spf1 include:two.test -all").await.unwrap(), 8);
        assert_eq!(count_lookups(&zone, "v=spf1 ip4:1.2.3.4 -all").await.unwrap(), 0);
    }

    #[tokio::test]
    async fn a_missing_target_counts_only_its_own_lookup() {
        let zone = Zone(HashMap::new());
        assert_eq!(count_lookups(&zone, "v=spf1 include:gone.test redirect=gone.test").await.unwrap(), 2);
    }

    #[tokio::test]
    async fn a_loop_stops_past_the_limit() {
        let zone = Zone(HashMap::from([("loop.test", "v=spf1 include:loop.test -all")]));
        assert_eq!(count_lookups(&zone, "v=spf1 include:loop.test").await.unwrap(), MAX_LOOKUPS + 1);
    }
}
