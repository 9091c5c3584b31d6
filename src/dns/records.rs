//! The DNS records a user must publish for a sending domain, and the same
//! records as a BIND zone-file snippet.
//!
//! For a domain InboxGrove sends from, the user publishes, in this order:
//! an MX pointing at this server's hostname; an SPF TXT authorising this
//! server's public IPs (or, if none are known, its hostname's A/AAAA); the
//! DKIM TXT at `SELECTOR._domainkey.DOMAIN`; a monitoring-only DMARC TXT at
//! `_dmarc.DOMAIN` whose aggregate reports come back to the domain itself;
//! and a `track.DOMAIN` CNAME for open/click tracking links.
//!
//! TXT values longer than 255 bytes are carried as several character-strings
//! (RFC 1035 §3.3.14), which receivers concatenate. The zone snippet writes
//! every owner name and target as an absolute name with a trailing dot, with a
//! TTL of 3600, and quotes and escapes TXT strings so a real DNS server loads it.

use std::fmt::Write as _;
use std::net::IpAddr;

use super::dkim::split_txt;

/// The TTL written into the zone snippet, in seconds.
pub const ZONE_TTL: u32 = 3600;
/// The MX preference we suggest.
pub const MX_PRIORITY: u16 = 10;
/// The label of the tracking host under the sending domain.
pub const TRACKING_LABEL: &str = "track";

/// One record the user must create at their DNS host.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct DnsRecord {
    /// `"MX"`, `"TXT"` or `"CNAME"`.
    pub kind: &'static str,
    /// The owner name as a fully-qualified name without the trailing dot.
    pub name: String,
    /// What to paste into a DNS provider's value field (unquoted, no trailing dot).
    pub value: String,
    /// For TXT: the value cut into character-strings of at most 255 bytes; empty otherwise.
    pub txt_strings: Vec<String>,
    /// For MX: the preference.
    pub priority: Option<u16>,
    /// `"SPF"`, `"DKIM"`, `"DMARC"`, `"MX"` or `"Tracking"`.
    pub purpose: &'static str,
    /// One sentence on why the record is needed.
    pub note: String,
}

impl DnsRecord {
    /// The owner name relative to `domain`, as most DNS providers' forms want
    /// it: `@` for the domain itself, `_dmarc` for `_dmarc.DOMAIN`, and the
    /// full name when it is outside `domain`.
    #[must_use]
    pub fn relative_name(&self, domain: &str) -> String {
        let domain = domain.trim_end_matches('.');
        if self.name.eq_ignore_ascii_case(domain) {
            return "@".to_owned();
        }
        let cut = self.name.len().checked_sub(domain.len() + 1);
        match cut {
            Some(cut)
                if self.name.is_char_boundary(cut) && self.name[cut..].eq_ignore_ascii_case(&format!(".{domain}")) =>
            {
                self.name[..cut].to_owned()
            }
            _ => self.name.clone(),
        }
    }

    fn txt(name: String, value: String, purpose: &'static str, note: String) -> Self {
        let txt_strings = split_txt(&value);
        Self { kind: "TXT", name, value, txt_strings, priority: None, purpose, note }
    }
}

/// What [`expected_records`] needs to know; all names already normalized
/// (see [`super::name::normalize_domain`]).
#[derive(Debug, Clone, Copy)]
pub struct RecordInputs<'a> {
    /// The sending domain, e.g. `example.com`.
    pub domain: &'a str,
    /// This server's hostname, e.g. `mail.example.net`.
    pub hostname: &'a str,
    /// This server's public IPv4/IPv6 addresses, as text.
    pub public_ips: &'a [String],
    /// The DKIM selector, e.g. `ig20261123r`.
    pub dkim_selector: &'a str,
    /// The DKIM TXT value, e.g. `v=DKIM1; k=rsa; p=…`.
    pub dkim_txt: &'a str,
}

/// The records to publish, in order: MX, SPF, DKIM, DMARC, tracking CNAME.
#[must_use]
pub fn expected_records(inputs: &RecordInputs) -> Vec<DnsRecord> {
    let domain = inputs.domain.trim_end_matches('.');
    let hostname = inputs.hostname.trim_end_matches('.');
    vec![
        mx_record(domain, hostname),
        spf_record(domain, hostname, inputs.public_ips),
        dkim_record(domain, inputs.dkim_selector, inputs.dkim_txt),
        dmarc_record(domain),
        tracking_record(domain, hostname),
    ]
}

fn mx_record(domain: &str, hostname: &str) -> DnsRecord {
    DnsRecord {
        kind: "MX",
        name: domain.to_owned(),
        value: hostname.to_owned(),
        txt_strings: Vec::new(),
        priority: Some(MX_PRIORITY),
        purpose: "MX",
        note: format!("Delivers replies and bounces for {domain} to this server, {hostname}."),
    }
}

fn spf_record(domain: &str, hostname: &str, public_ips: &[String]) -> DnsRecord {
    let note =
        format!("Tells receivers this server may send mail for {domain}, so your messages are not treated as forged.");
    DnsRecord::txt(domain.to_owned(), spf_value(hostname, public_ips), "SPF", note)
}

/// `v=spf1 ip4:… ip6:… ~all`, IPv4 first; entries that are not IP addresses
/// are skipped, and with none left the hostname's own addresses are used
/// (`v=spf1 a:HOSTNAME ~all`).
#[must_use]
pub fn spf_value(hostname: &str, public_ips: &[String]) -> String {
    let mut ips: Vec<IpAddr> = Vec::new();
    for ip in public_ips.iter().filter_map(|s| parse_ip(s)) {
        if !ips.contains(&ip) {
            ips.push(ip);
        }
    }
    if ips.is_empty() {
        return format!("v=spf1 a:{} ~all", hostname.trim_end_matches('.'));
    }
    ips.sort_by_key(IpAddr::is_ipv6);
    let mechanisms: Vec<String> = ips.iter().map(spf_mechanism).collect();
    format!("v=spf1 {} ~all", mechanisms.join(" "))
}

/// Parses one address; an IPv4-mapped IPv6 address counts as IPv4.
fn parse_ip(text: &str) -> Option<IpAddr> {
    let ip: IpAddr = text.trim().parse().ok()?;
    Some(match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        IpAddr::V4(_) => ip,
    })
}

fn spf_mechanism(ip: &IpAddr) -> String {
    match ip {
        IpAddr::V4(v4) => format!("ip4:{v4}"),
        IpAddr::V6(v6) => format!("ip6:{v6}"),
    }
}

fn dkim_record(domain: &str, selector: &str, dkim_txt: &str) -> DnsRecord {
    let note = "Publishes the public key receivers use to check the DKIM signature on every message you send.";
    DnsRecord::txt(format!("{selector}._domainkey.{domain}"), dkim_txt.to_owned(), "DKIM", note.to_owned())
}

fn dmarc_record(domain: &str) -> DnsRecord {
    let value = format!("v=DMARC1; p=none; rua=mailto:dmarc-reports@{domain}; adkim=r; aspf=r; pct=100");
    let note = format!(
        "Asks receivers to send daily reports on mail claiming to be from {domain} without rejecting any of it (p=none)."
    );
    DnsRecord::txt(format!("_dmarc.{domain}"), value, "DMARC", note)
}

fn tracking_record(domain: &str, hostname: &str) -> DnsRecord {
    DnsRecord {
        kind: "CNAME",
        name: format!("{TRACKING_LABEL}.{domain}"),
        value: hostname.to_owned(),
        txt_strings: Vec::new(),
        priority: None,
        purpose: "Tracking",
        note: format!(
            "Lets open and click tracking links use your own domain, {TRACKING_LABEL}.{domain}, instead of this server's name."
        ),
    }
}

/// A BIND zone-file snippet for `records`: a comment header, `$ORIGIN`,
/// `$TTL 3600`, then each record (preceded by a comment with its purpose)
/// with an absolute owner name and TTL 3600.
#[must_use]
pub fn bind_zone(domain: &str, records: &[DnsRecord]) -> String {
    let origin = absolute(domain);
    let mut out = String::new();
    let _ = writeln!(out, "; DNS records for {origin} generated by InboxGrove.");
    let _ = writeln!(out, "; Add them to the zone at your DNS host and keep its existing SOA and NS records.");
    let _ = writeln!(out, "$ORIGIN {origin}");
    let _ = writeln!(out, "$TTL {ZONE_TTL}");
    for record in records {
        out.push('\n');
        let _ = writeln!(out, "; {}: {}", record.purpose, single_line(&record.note));
        let _ = writeln!(out, "{}\t{ZONE_TTL}\tIN\t{}\t{}", absolute(&record.name), record.kind, rdata(record));
    }
    out
}

/// `name.` — exactly one trailing dot.
fn absolute(name: &str) -> String {
    format!("{}.", name.trim().trim_end_matches('.'))
}

/// Comments must stay on one line.
fn single_line(text: &str) -> String {
    text.split(['\r', '\n']).filter(|s| !s.is_empty()).collect::<Vec<_>>().join(" ")
}

/// The record data in zone-file syntax.
fn rdata(record: &DnsRecord) -> String {
    match record.kind {
        "MX" => format!("{} {}", record.priority.unwrap_or(MX_PRIORITY), absolute(&record.value)),
        "CNAME" => absolute(&record.value),
        "TXT" => txt_rdata(record),
        _ => record.value.clone(),
    }
}

/// One or more quoted strings, each at most 255 bytes before escaping,
/// separated by spaces on one line. (Not wrapped in parentheses: some zone
/// parsers, such as hickory-dns's, do not accept quoted strings inside them.)
fn txt_rdata(record: &DnsRecord) -> String {
    let sources: Vec<String> =
        if record.txt_strings.is_empty() { vec![record.value.clone()] } else { record.txt_strings.clone() };
    let quoted: Vec<String> = sources.iter().flat_map(|s| split_txt(s)).map(|s| quote_txt(&s)).collect();
    quoted.join(" ")
}

/// Quotes one character-string: `"` and `\` are backslash-escaped; control
/// characters and non-ASCII bytes become `\DDD`.
fn quote_txt(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for byte in s.bytes() {
        match byte {
            b'"' | b'\\' => {
                out.push('\\');
                out.push(char::from(byte));
            }
            0x20..=0x7e => out.push(char::from(byte)),
            _ => {
                let _ = write!(out, "\\{byte:03}");
            }
        }
    }
    out.push('"');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    use hickory_resolver::proto::rr::{Name, RData, RecordType};
    use hickory_resolver::proto::serialize::txt::Parser;

    const DKIM_SHORT: &str = "v=DKIM1; k=ed25519; p=11qYAYKxCrfVS/7TyWQHOg7hcvPapiMlrwIaaPcHURo=";

    fn rsa_like_dkim() -> String {
        format!("v=DKIM1; k=rsa; p=MIIBIjANBgkqhkiG9w0BAQEFAAOCAQ8AMIIBCgKCAQEA{}IDAQAB", "x".repeat(330))
    }

    fn inputs<'a>(ips: &'a [String], dkim_txt: &'a str) -> RecordInputs<'a> {
        RecordInputs {
            domain: "example.com",
            hostname: "mail.example.net",
            public_ips: ips,
            dkim_selector: "ig20261123r",
            dkim_txt,
        }
    }

    fn ips() -> Vec<String> {
        vec!["2001:db8::25".into(), "203.0.113.7".into()]
    }

    #[test]
    fn records_for_an_example_domain() {
        let ips = ips();
        let records = expected_records(&inputs(&ips, DKIM_SHORT));
        let summary: Vec<(&str, &str, &str, &str)> =
            records.iter().map(|r| (r.purpose, r.kind, r.name.as_str(), r.value.as_str())).collect();
        assert_eq!(
            summary,
            vec![
                ("MX", "MX", "example.com", "mail.example.net"),
                ("SPF", "TXT", "example.com", "v=spf1 ip4:203.0.113.7 ip6:2001:db8::25 ~all"),
                ("DKIM", "TXT", "ig20261123r._domainkey.example.com", DKIM_SHORT),
                (
                    "DMARC",
                    "TXT",
                    "_dmarc.example.com",
                    "v=DMARC1; p=none; rua=mailto:dmarc-reports@example.com; adkim=r; aspf=r; pct=100"
                ),
                ("Tracking", "CNAME", "track.example.com", "mail.example.net"),
            ]
        );
        assert_eq!(records[0].priority, Some(10));
        assert!(records[1..].iter().all(|r| r.priority.is_none()));
        assert_eq!(records[2].txt_strings, vec![DKIM_SHORT.to_owned()]);
        assert!(records[0].txt_strings.is_empty());
        assert!(records.iter().all(|r| r.note.ends_with('.')));
    }

    #[test]
    fn relative_names_for_provider_forms() {
        let records = expected_records(&inputs(&[], DKIM_SHORT));
        let names: Vec<String> = records.iter().map(|r| r.relative_name("example.com")).collect();
        assert_eq!(names, vec!["@", "@", "ig20261123r._domainkey", "_dmarc", "track"]);
        assert_eq!(records[3].relative_name("other.org"), "_dmarc.example.com");
        assert_eq!(records[4].relative_name("ample.com"), "track.example.com");
    }

    #[test]
    fn spf_with_ipv4_and_ipv6() {
        let list = vec![
            "2001:db8::25".to_owned(),
            " 203.0.113.7 ".to_owned(),
            "203.0.113.7".to_owned(),
            "::ffff:198.51.100.1".to_owned(),
            "not-an-ip".to_owned(),
        ];
        assert_eq!(
            spf_value("mail.example.net", &list),
            "v=spf1 ip4:203.0.113.7 ip4:198.51.100.1 ip6:2001:db8::25 ~all"
        );
    }

    #[test]
    fn spf_without_ips_uses_the_hostname() {
        assert_eq!(spf_value("mail.example.net", &[]), "v=spf1 a:mail.example.net ~all");
        assert_eq!(spf_value("mail.example.net.", &["junk".to_owned()]), "v=spf1 a:mail.example.net ~all");
        let records = expected_records(&inputs(&[], DKIM_SHORT));
        assert_eq!(records[1].value, "v=spf1 a:mail.example.net ~all");
    }

    #[test]
    fn zone_uses_absolute_names_and_ttl() {
        let ips = ips();
        let zone = bind_zone("example.com", &expected_records(&inputs(&ips, DKIM_SHORT)));
        assert!(zone.starts_with("; DNS records for example.com."));
        assert!(zone.contains("$ORIGIN example.com.\n"));
        assert!(zone.contains("example.com.\t3600\tIN\tMX\t10 mail.example.net.\n"));
        assert!(zone.contains("example.com.\t3600\tIN\tTXT\t\"v=spf1 ip4:203.0.113.7 ip6:2001:db8::25 ~all\"\n"));
        assert!(zone.contains(&format!("ig20261123r._domainkey.example.com.\t3600\tIN\tTXT\t\"{DKIM_SHORT}\"\n")));
        assert!(zone.contains("_dmarc.example.com.\t3600\tIN\tTXT\t\"v=DMARC1; p=none;"));
        assert!(zone.contains("track.example.com.\t3600\tIN\tCNAME\tmail.example.net.\n"));
    }

    #[test]
    fn zone_splits_long_rsa_txt_into_255_byte_strings() {
        let dkim = rsa_like_dkim();
        assert!(dkim.len() > 255 && dkim.len() <= 510);
        let zone = bind_zone("example.com", &expected_records(&inputs(&[], &dkim)));
        let line_start = zone.find("ig20261123r._domainkey").expect("DKIM line");
        let rest = &zone[line_start..];
        let line = rest.lines().next().expect("one line");
        let strings: Vec<&str> = line.split('"').skip(1).step_by(2).collect();
        assert_eq!(strings.len(), 2, "{line}");
        assert!(strings.iter().all(|s| s.len() <= 255));
        assert_eq!(strings.concat(), dkim);
        assert!(line.ends_with("IDAQAB\""));
        assert!(line.contains("\" \""));
    }

    #[test]
    fn txt_strings_are_quoted_and_escaped() {
        assert_eq!(quote_txt(r#"say "hi" \ bye"#), r#""say \"hi\" \\ bye""#);
        assert_eq!(quote_txt("tab\there"), "\"tab\\009here\"");
        assert_eq!(quote_txt("é"), "\"\\195\\169\"");
        let record = DnsRecord::txt("x.example.com".into(), "a\"b".into(), "SPF", "Test.\nSecond line.".into());
        let zone = bind_zone("example.com.", &[record]);
        assert!(zone.contains("x.example.com.\t3600\tIN\tTXT\t\"a\\\"b\"\n"));
        assert!(zone.contains("; SPF: Test. Second line.\n"));
    }

    #[test]
    fn oversized_txt_strings_are_resplit_in_the_zone() {
        let mut record = DnsRecord::txt("x.example.com".into(), "a".repeat(300), "DKIM", "Test.".into());
        record.txt_strings = vec!["a".repeat(300)];
        assert_eq!(txt_rdata(&record).matches('"').count(), 4);
    }

    /// Parses the snippet with hickory-dns's zone-file parser (the one its
    /// authoritative server loads zones with) and checks every record.
    #[test]
    fn zone_loads_in_hickory_parser() {
        let ips = ips();
        let dkim = rsa_like_dkim();
        let records = expected_records(&inputs(&ips, &dkim));
        let zone = with_soa_and_ns(&bind_zone("example.com", &records));
        let (origin, sets) = match Parser::new(zone.as_str(), None, None).parse() {
            Ok(parsed) => parsed,
            Err(err) => panic!("zone did not parse: {err}\n{zone}"),
        };
        assert_eq!(origin, Name::from_ascii("example.com.").expect("name"));
        for record in &records {
            let name = Name::from_ascii(absolute(&record.name)).expect("name");
            let rtype: RecordType = record.kind.parse().expect("type");
            let set = sets
                .iter()
                .find(|(key, _)| Name::from(key.name.clone()) == name && key.record_type == rtype)
                .map(|(_, set)| set)
                .unwrap_or_else(|| panic!("{} {} missing", record.name, record.kind));
            let parsed = set.records_without_rrsigs().next().expect("one record");
            assert_eq!(parsed.ttl, ZONE_TTL);
            check_rdata(record, &parsed.data);
        }
    }

    fn check_rdata(record: &DnsRecord, data: &RData) {
        match data {
            RData::MX(mx) => {
                assert_eq!(mx.preference, 10);
                assert_eq!(mx.exchange.to_ascii(), absolute(&record.value));
            }
            RData::CNAME(cname) => assert_eq!(cname.0.to_ascii(), absolute(&record.value)),
            RData::TXT(txt) => {
                assert!(txt.txt_data.iter().all(|s| s.len() <= 255));
                assert_eq!(txt.txt_data.concat(), record.value.as_bytes());
            }
            other => panic!("unexpected {other:?}"),
        }
    }

    fn with_soa_and_ns(snippet: &str) -> String {
        format!(
            "$ORIGIN example.com.\n$TTL 3600\n\
             @ IN SOA ns1.example.com. hostmaster.example.com. ( 2026112301 7200 3600 1209600 3600 )\n\
             @ IN NS ns1.example.com.\n\
             ns1 IN A 192.0.2.53\n\
             mail.example.net. IN A 192.0.2.25\n\
             {snippet}"
        )
    }

    /// Runs `named-checkzone` (BIND; `tests/run` installs bind9-utils) or `kzonecheck` (Knot) on
    /// the snippet. Without either it says why it skipped, or fails under
    /// `INBOXGROVE_REQUIRE_PEERS=1`.
    #[test]
    fn zone_passes_a_real_dns_server_checker() {
        let Some(checker) = ["named-checkzone", "kzonecheck"].into_iter().find(|bin| on_path(bin)) else {
            assert!(
                !std::env::var("INBOXGROVE_REQUIRE_PEERS").is_ok_and(|v| v == "1"),
                "named-checkzone (bind9-utils) or kzonecheck is required but neither is installed"
            );
            println!("SKIPPED: neither named-checkzone (bind9-utils) nor kzonecheck (knot) is installed");
            return;
        };
        let dkim = rsa_like_dkim();
        let ips = ips();
        let zone = with_soa_and_ns(&bind_zone("example.com", &expected_records(&inputs(&ips, &dkim))));
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("example.com.zone");
        std::fs::write(&path, zone).expect("write zone");
        let mut cmd = std::process::Command::new(checker);
        if checker == "kzonecheck" {
            cmd.arg("-o").arg("example.com").arg(&path);
        } else {
            cmd.arg("example.com").arg(&path);
        }
        let output = cmd.output().expect("run checker");
        assert!(
            output.status.success(),
            "{checker} failed:\n{}{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
    }

    fn on_path(bin: &str) -> bool {
        std::env::var_os("PATH").is_some_and(|paths| std::env::split_paths(&paths).any(|dir| dir.join(bin).is_file()))
    }
}
