//! Domain name validation for the domains a user adds to InboxGrove.
//!
//! A sending domain is typed into a web form, so it arrives with stray spaces,
//! capital letters, a trailing dot copied from a zone file, a pasted URL or an
//! email address. [`normalize_domain`] turns acceptable input into the one
//! canonical form stored everywhere else (lowercase ASCII, internationalized
//! labels in their `xn--` punycode form per IDNA/UTS-46, no trailing dot) and
//! rejects everything else with a message the user can act on.
//!
//! The rule, after trimming and removing one trailing dot: at most 253
//! characters, at least two labels, every label 1–63 characters of
//! `[a-z0-9-]` that neither starts nor ends with `-`, and a top-level label
//! that is not all digits. IP addresses, wildcards, underscores, spaces,
//! email addresses and URLs are refused.

use std::net::{IpAddr, Ipv6Addr};

use idna::AsciiDenyList;

/// Longest domain name, in ASCII characters, without the trailing dot (RFC 1035).
const MAX_NAME_LEN: usize = 253;
/// Longest single label (RFC 1035).
const MAX_LABEL_LEN: usize = 63;

/// Why a domain name typed by the user was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DomainNameError {
    /// Nothing was entered.
    #[error("Enter a domain name, such as example.com")]
    Empty,
    /// The user pasted a web address.
    #[error("“{0}” is a web address; enter just the domain, such as example.com, without “https://”")]
    Url(String),
    /// The user entered an email address.
    #[error("“{input}” is an email address; enter just the domain after the @, such as {domain}")]
    EmailAddress {
        /// What the user typed.
        input: String,
        /// The part after the last `@`, offered as a suggestion.
        domain: String,
    },
    /// Whitespace inside the name.
    #[error("“{0}” contains a space")]
    Space(String),
    /// An IPv4 or IPv6 address instead of a name.
    #[error("“{0}” is an IP address; enter a domain name, such as example.com")]
    IpAddress(String),
    /// A `*` wildcard.
    #[error("“{0}” contains a wildcard (*); enter one specific domain, such as example.com")]
    Wildcard(String),
    /// An underscore, which is never valid in a host or mail domain.
    #[error("“{0}” contains an underscore (_), which is not allowed in a domain name")]
    Underscore(String),
    /// Some other ASCII character outside letters, digits, `-` and `.`.
    #[error("“{input}” contains “{ch}”, which is not allowed in a domain name")]
    InvalidCharacter {
        /// What the user typed.
        input: String,
        /// The first offending character.
        ch: char,
    },
    /// International characters that cannot be converted to punycode.
    #[error("“{0}” is not a valid international domain name")]
    Idna(String),
    /// Longer than 253 characters once converted to ASCII.
    #[error("“{0}” is too long; a domain name can have at most 253 characters")]
    TooLong(String),
    /// Two dots in a row, or a leading dot.
    #[error("“{0}” has an empty part between two dots")]
    EmptyLabel(String),
    /// Only one label, such as `localhost`.
    #[error("“{0}” needs at least two parts separated by a dot, such as example.com")]
    SingleLabel(String),
    /// One label longer than 63 characters.
    #[error("“{label}” in “{input}” is too long; each part of a domain name can have at most 63 characters")]
    LabelTooLong {
        /// What the user typed.
        input: String,
        /// The label that is too long.
        label: String,
    },
    /// A label that starts or ends with a hyphen.
    #[error("“{label}” in “{input}” starts or ends with a hyphen, which is not allowed")]
    Hyphen {
        /// What the user typed.
        input: String,
        /// The label at fault.
        label: String,
    },
    /// A top-level label made only of digits.
    #[error("“{input}” ends in “{tld}”, which is only digits; the last part must be a real ending, such as com")]
    NumericTld {
        /// What the user typed.
        input: String,
        /// The top-level label.
        tld: String,
    },
}

/// Checks a domain name typed by a user and returns its canonical form:
/// lowercase ASCII (punycode for international names), no trailing dot.
///
/// # Errors
/// Returns a [`DomainNameError`] whose message tells the user what to fix.
pub fn normalize_domain(input: &str) -> Result<String, DomainNameError> {
    let trimmed = input.trim();
    if trimmed.is_empty() {
        return Err(DomainNameError::Empty);
    }
    check_not_url_or_email(trimmed)?;
    let name = trimmed.strip_suffix('.').unwrap_or(trimmed);
    check_not_ip(name)?;
    check_ascii_characters(name)?;
    let ascii = to_ascii(name)?;
    check_structure(name, &ascii)?;
    Ok(ascii)
}

/// Returns the Unicode form of an ASCII (punycode) domain for showing to
/// people, e.g. `xn--bcher-kva.example` → `bücher.example`. Falls back to the
/// input unchanged when it cannot be decoded.
#[must_use]
pub fn display_domain(ascii: &str) -> String {
    match idna::domain_to_unicode(ascii) {
        (unicode, Ok(())) => unicode,
        (_, Err(_)) => ascii.to_owned(),
    }
}

/// Refuses pasted URLs and email addresses with a message that says so.
fn check_not_url_or_email(input: &str) -> Result<(), DomainNameError> {
    let lower = input.to_ascii_lowercase();
    if lower.contains("://") || lower.starts_with("mailto:") {
        return Err(DomainNameError::Url(input.to_owned()));
    }
    if let Some((_, domain)) = input.rsplit_once('@') {
        return Err(DomainNameError::EmailAddress { input: input.to_owned(), domain: domain.trim().to_owned() });
    }
    if input.chars().any(char::is_whitespace) {
        return Err(DomainNameError::Space(input.to_owned()));
    }
    Ok(())
}

/// Refuses IPv4 and IPv6 literals, with or without `[brackets]`.
fn check_not_ip(name: &str) -> Result<(), DomainNameError> {
    let unbracketed = name.strip_prefix('[').and_then(|n| n.strip_suffix(']'));
    let is_ip = name.parse::<IpAddr>().is_ok() || unbracketed.is_some_and(|n| n.parse::<Ipv6Addr>().is_ok());
    if is_ip {
        return Err(DomainNameError::IpAddress(name.to_owned()));
    }
    Ok(())
}

/// Refuses ASCII characters that never belong in a domain name; non-ASCII
/// characters are left for the IDNA conversion to judge.
fn check_ascii_characters(name: &str) -> Result<(), DomainNameError> {
    let bad = name.chars().find(|c| c.is_ascii() && !(c.is_ascii_alphanumeric() || *c == '-' || *c == '.'));
    match bad {
        None => Ok(()),
        Some('*') => Err(DomainNameError::Wildcard(name.to_owned())),
        Some('_') => Err(DomainNameError::Underscore(name.to_owned())),
        Some(ch) => Err(DomainNameError::InvalidCharacter { input: name.to_owned(), ch }),
    }
}

/// Converts to lowercase ASCII, applying IDNA (UTS-46) mapping and punycode.
fn to_ascii(name: &str) -> Result<String, DomainNameError> {
    idna::domain_to_ascii_cow(name.as_bytes(), AsciiDenyList::STD3)
        .map(|cow| cow.to_ascii_lowercase())
        .map_err(|_| DomainNameError::Idna(name.to_owned()))
}

/// Checks lengths, label count, label characters and the top-level label.
fn check_structure(input: &str, ascii: &str) -> Result<(), DomainNameError> {
    if ascii.len() > MAX_NAME_LEN {
        return Err(DomainNameError::TooLong(input.to_owned()));
    }
    let labels: Vec<&str> = ascii.split('.').collect();
    if labels.iter().any(|l| l.is_empty()) {
        return Err(DomainNameError::EmptyLabel(input.to_owned()));
    }
    if labels.len() < 2 {
        return Err(DomainNameError::SingleLabel(input.to_owned()));
    }
    for label in &labels {
        check_label(input, label)?;
    }
    check_tld(input, labels.last().copied().unwrap_or_default())
}

/// Checks one non-empty ASCII label.
fn check_label(input: &str, label: &str) -> Result<(), DomainNameError> {
    if label.len() > MAX_LABEL_LEN {
        return Err(DomainNameError::LabelTooLong { input: input.to_owned(), label: label.to_owned() });
    }
    if let Some(ch) = label.chars().find(|c| !(c.is_ascii_lowercase() || c.is_ascii_digit() || *c == '-')) {
        return Err(DomainNameError::InvalidCharacter { input: input.to_owned(), ch });
    }
    if label.starts_with('-') || label.ends_with('-') {
        return Err(DomainNameError::Hyphen { input: input.to_owned(), label: label.to_owned() });
    }
    Ok(())
}

/// The top-level label may not be all digits (that would look like an IP address).
fn check_tld(input: &str, tld: &str) -> Result<(), DomainNameError> {
    if tld.chars().all(|c| c.is_ascii_digit()) {
        return Err(DomainNameError::NumericTld { input: input.to_owned(), tld: tld.to_owned() });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ok(input: &str) -> String {
        match normalize_domain(input) {
            Ok(name) => name,
            Err(err) => panic!("{input:?} was refused: {err}"),
        }
    }

    fn err(input: &str) -> DomainNameError {
        match normalize_domain(input) {
            Ok(name) => panic!("{input:?} was accepted as {name:?}"),
            Err(err) => err,
        }
    }

    #[test]
    fn trims_lowercases_and_strips_trailing_dot() {
        assert_eq!(ok("Example.COM."), "example.com");
        assert_eq!(ok("  mail.Example.org  "), "mail.example.org");
        assert_eq!(ok("a-b.c0.io"), "a-b.c0.io");
    }

    #[test]
    fn converts_international_names_to_punycode() {
        assert_eq!(ok("bücher.example"), "xn--bcher-kva.example");
        assert_eq!(ok("münchen.de"), "xn--mnchen-3ya.de");
        assert_eq!(ok("MÜNCHEN.DE"), "xn--mnchen-3ya.de");
        assert_eq!(ok("xn--mnchen-3ya.de"), "xn--mnchen-3ya.de");
    }

    #[test]
    fn display_domain_round_trips() {
        assert_eq!(display_domain("xn--bcher-kva.example"), "bücher.example");
        assert_eq!(display_domain("example.com"), "example.com");
        assert_eq!(display_domain("xn--zz"), "xn--zz");
    }

    #[test]
    fn rejects_empty() {
        assert_eq!(err(""), DomainNameError::Empty);
        assert_eq!(err("   "), DomainNameError::Empty);
    }

    #[test]
    fn rejects_single_label() {
        assert!(matches!(err("localhost"), DomainNameError::SingleLabel(_)));
        assert!(matches!(err("com."), DomainNameError::SingleLabel(_)));
    }

    #[test]
    fn rejects_spaces_with_the_example_message() {
        let e = err("exa mple.com");
        assert_eq!(e, DomainNameError::Space("exa mple.com".into()));
        assert_eq!(e.to_string(), "“exa mple.com” contains a space");
    }

    #[test]
    fn rejects_hyphen_at_label_edges() {
        assert!(matches!(err("-bad.com"), DomainNameError::Hyphen { .. }));
        assert!(matches!(err("bad-.com"), DomainNameError::Hyphen { .. }));
    }

    #[test]
    fn rejects_empty_labels() {
        assert!(matches!(err("a..b"), DomainNameError::EmptyLabel(_)));
        assert!(matches!(err(".example.com"), DomainNameError::EmptyLabel(_)));
        assert!(matches!(err("example.com.."), DomainNameError::EmptyLabel(_)));
    }

    #[test]
    fn rejects_ip_addresses() {
        assert!(matches!(err("192.168.1.1"), DomainNameError::IpAddress(_)));
        assert!(matches!(err("2001:db8::1"), DomainNameError::IpAddress(_)));
        assert!(matches!(err("[2001:db8::1]"), DomainNameError::IpAddress(_)));
        assert!(matches!(err("1.2.3"), DomainNameError::NumericTld { .. }));
    }

    #[test]
    fn rejects_urls_with_a_specific_message() {
        let e = err("https://x.com");
        assert!(matches!(e, DomainNameError::Url(_)));
        assert!(e.to_string().contains("https://"));
        assert!(matches!(err("HTTP://x.com/path"), DomainNameError::Url(_)));
    }

    #[test]
    fn rejects_email_addresses_and_suggests_the_domain() {
        let e = err("bob@x.com");
        assert_eq!(e, DomainNameError::EmailAddress { input: "bob@x.com".into(), domain: "x.com".into() });
        assert!(e.to_string().contains("such as x.com"));
    }

    #[test]
    fn rejects_long_labels_and_names() {
        let label63 = "a".repeat(63);
        assert_eq!(ok(&format!("{label63}.com")), format!("{label63}.com"));
        assert!(matches!(err(&format!("{}.com", "a".repeat(64))), DomainNameError::LabelTooLong { .. }));
        let long = ["a".repeat(60), "b".repeat(60), "c".repeat(60), "d".repeat(60), "com".into()].join(".");
        assert_eq!(long.len(), 247);
        assert_eq!(ok(&long), long);
        let too_long = format!("{}.{long}", "e".repeat(10));
        assert!(matches!(err(&too_long), DomainNameError::TooLong(_)));
    }

    #[test]
    fn rejects_wildcards_underscores_and_other_characters() {
        assert!(matches!(err("*.x.com"), DomainNameError::Wildcard(_)));
        assert!(matches!(err("_dmarc.x.com"), DomainNameError::Underscore(_)));
        assert!(matches!(err("x.com/path"), DomainNameError::InvalidCharacter { ch: '/', .. }));
        assert!(matches!(err("x.com:25"), DomainNameError::InvalidCharacter { ch: ':', .. }));
    }

    #[test]
    fn rejects_invalid_international_names() {
        assert!(matches!(err("xn--a.com"), DomainNameError::Idna(_)));
    }
}
