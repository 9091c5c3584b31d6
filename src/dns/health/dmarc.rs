//! DMARC record parsing and its status.
//!
//! The record is `v=DMARC1` followed by `tag=value` pairs separated by `;`. The appliance signs
//! every message with `d=DOMAIN` and the From address is in DOMAIN, so DKIM alignment passes in
//! both relaxed and strict mode: any record that parses with a valid `p=` can pass for our mail.
//! `p=none` only monitors, so it is a warn with a fix to tighten it once reports are clean.

use super::{CheckResult, Status};

/// The tags of a DMARC record, or why it does not parse.
pub fn parse(record: &str) -> Result<Vec<(String, String)>, String> {
    let mut tags = Vec::new();
    for part in record.split(';').map(str::trim).filter(|p| !p.is_empty()) {
        let (tag, value) = part.split_once('=').ok_or_else(|| format!("\"{part}\" is not tag=value"))?;
        tags.push((tag.trim().to_ascii_lowercase(), value.trim().to_string()));
    }
    match tags.first() {
        Some((tag, value)) if tag == "v" && value == "DMARC1" => Ok(tags),
        _ => Err("the record does not start with v=DMARC1".to_string()),
    }
}

/// The `dmarc` check's result for `record` (the text found at `_dmarc.DOMAIN`), or `None` found.
pub fn decide(domain: &str, record: Option<&str>) -> CheckResult {
    let expected = "a v=DMARC1 record with p=quarantine or p=reject".to_string();
    let result = |status, found: String, fix: &str| CheckResult {
        name: "dmarc",
        status,
        found,
        expected: expected.clone(),
        fix: fix.to_string(),
    };
    let Some(record) = record else {
        let fix = format!("Publish a TXT record at _dmarc.{domain} such as \"v=DMARC1; p=quarantine\".");
        return result(Status::Fail, "no DMARC record".to_string(), &fix);
    };
    let tags = match parse(record) {
        Ok(tags) => tags,
        Err(why) => return result(Status::Fail, format!("{record} ({why})"), "Replace the record with a valid one."),
    };
    let policy = tags.iter().find(|(tag, _)| tag == "p").map(|(_, v)| v.to_ascii_lowercase());
    match policy.as_deref() {
        Some("quarantine" | "reject") => result(Status::Pass, record.to_string(), ""),
        Some("none") => result(
            Status::Warn,
            record.to_string(),
            "p=none only monitors; change it to p=quarantine once the reports show your mail passing.",
        ),
        _ => result(Status::Fail, record.to_string(), "Add p=quarantine or p=reject to the record."),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_tags() {
        let tags = parse("v=DMARC1; p=reject; adkim=s").unwrap();
        assert_eq!(tags[1], ("p".to_string(), "reject".to_string()));
        assert!(parse("p=reject; v=DMARC1").is_err());
        assert!(parse("v=DMARC1; nonsense").is_err());
    }

    #[test]
    fn decides_the_status() {
        assert_eq!(decide("a.test", Some("v=DMARC1; p=reject")).status, Status::Pass);
        assert_eq!(decide("a.test", Some("v=DMARC1; p=quarantine; adkim=s")).status, Status::Pass);
        let none = decide("a.test", Some("v=DMARC1; p=none"));
        assert_eq!(none.status, Status::Warn);
        assert!(none.fix.contains("p=quarantine"));
        let missing = decide("a.test", None);
        assert_eq!(missing.status, Status::Fail);
        assert!(missing.fix.contains("_dmarc.a.test"));
        assert_eq!(decide("a.test", Some("v=DMARC1")).status, Status::Fail);
        assert_eq!(decide("a.test", Some("v=spf1 -all")).status, Status::Fail);
    }
}
