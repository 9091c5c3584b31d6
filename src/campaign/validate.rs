//! Is this lead's address worth sending to? The checks an imported row goes through.
//!
//! A row is skipped for one [`SkipReason`]. The offline checks live here and run in this
//! order ([`check_offline`]):
//!
//! 1. **Syntax** ([`normalize`]). The input is trimmed, a surrounding `Name <addr>` or a
//!    `mailto:` prefix is removed, and the address must have exactly one `@`. The local part
//!    is 1–64 characters of the RFC 5322 dot-atom set (letters, digits and
//!    ``!#$%&'*+-/=?^_`{|}~``, with dots only between other characters); quoted local parts and
//!    non-ASCII local parts are refused. The domain has no trailing dot and must pass
//!    [`crate::dns::name::normalize_domain`]: IDNA (UTS-46) conversion to lowercase ASCII
//!    punycode, at least two labels of 1–63 letters, digits and hyphens not starting or ending
//!    with a hyphen, and a top-level label that is not all digits. The whole normalized address
//!    (local part lowercased) is at most 254 characters.
//! 2. **Role address** ([`is_role`]): the local part, up to any `+tag`, is one of a shipped
//!    list of shared mailboxes such as `info` or `sales`.
//! 3. **Disposable domain** ([`is_disposable`]): the domain or one of its parent domains is in
//!    `disposable_domains.txt`, compiled into the binary and parsed once on first use.
//!
//! `duplicate`, `suppressed` and `no_mx` need the store or the resolver, so the caller decides
//! them after these checks.

use std::collections::HashSet;
use std::sync::LazyLock;

use crate::dns::name::normalize_domain;

/// Longest local part (RFC 5321 §4.5.3.1.1).
const MAX_LOCAL_LEN: usize = 64;
/// Longest address accepted, local part, `@` and domain together.
const MAX_ADDRESS_LEN: usize = 254;

/// Local parts of shared mailboxes that no single person reads as their own.
const ROLE_LOCAL_PARTS: [&str; 33] = [
    "info",
    "sales",
    "admin",
    "support",
    "contact",
    "hello",
    "office",
    "billing",
    "accounts",
    "noreply",
    "no-reply",
    "postmaster",
    "abuse",
    "webmaster",
    "hostmaster",
    "marketing",
    "team",
    "jobs",
    "careers",
    "hr",
    "help",
    "enquiries",
    "inquiries",
    "press",
    "media",
    "privacy",
    "legal",
    "security",
    "newsletter",
    "mail",
    "root",
    "service",
    "orders",
];

/// The shipped disposable-domain list, parsed on first use.
static DISPOSABLE_DOMAINS: LazyLock<HashSet<&'static str>> =
    LazyLock::new(|| parse_domain_list(include_str!("disposable_domains.txt")));

/// Why a row is skipped. The codes are a stable contract (stored and shown in exports):
/// `invalid_syntax`, `duplicate`, `suppressed`, `role_address`, `disposable`, `no_mx`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum SkipReason {
    /// Not a syntactically valid address.
    InvalidSyntax,
    /// The same address appears earlier in the file.
    Duplicate,
    /// The address is on the suppression list.
    Suppressed,
    /// A shared role mailbox such as `info@`.
    RoleAddress,
    /// A throwaway-address service.
    Disposable,
    /// The domain publishes no mail server.
    NoMx,
}

impl SkipReason {
    /// Every reason, in the order the report page lists them.
    pub const ALL: [SkipReason; 6] = [
        SkipReason::InvalidSyntax,
        SkipReason::Duplicate,
        SkipReason::Suppressed,
        SkipReason::RoleAddress,
        SkipReason::Disposable,
        SkipReason::NoMx,
    ];

    /// The stable code, as serialized.
    #[must_use]
    pub fn code(self) -> &'static str {
        match self {
            SkipReason::InvalidSyntax => "invalid_syntax",
            SkipReason::Duplicate => "duplicate",
            SkipReason::Suppressed => "suppressed",
            SkipReason::RoleAddress => "role_address",
            SkipReason::Disposable => "disposable",
            SkipReason::NoMx => "no_mx",
        }
    }

    /// The reason whose [`code`](Self::code) is `code`.
    #[must_use]
    pub fn from_code(code: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|reason| reason.code() == code)
    }

    /// Plain words for the import report.
    #[must_use]
    pub fn describe(self) -> &'static str {
        match self {
            SkipReason::InvalidSyntax => "Not a valid email address",
            SkipReason::Duplicate => "Appears earlier in the file",
            SkipReason::Suppressed => "On the suppression list",
            SkipReason::RoleAddress => "A role address (info@, sales@...)",
            SkipReason::Disposable => "A disposable email domain",
            SkipReason::NoMx => "The domain has no mail server (no MX)",
        }
    }
}

/// Normalizes and checks the syntax of an address (see the module doc); returns it with the
/// local part lowercased and the domain in lowercase ASCII (punycode).
///
/// # Errors
/// [`SkipReason::InvalidSyntax`] for anything that is not a usable address.
pub fn normalize(input: &str) -> Result<String, SkipReason> {
    let (local, domain) = unwrap_address(input).split_once('@').ok_or(SkipReason::InvalidSyntax)?;
    check_local_part(local)?;
    let domain = normalize_mail_domain(domain)?;
    let address = format!("{}@{domain}", local.to_ascii_lowercase());
    if address.len() > MAX_ADDRESS_LEN {
        return Err(SkipReason::InvalidSyntax);
    }
    Ok(address)
}

/// Whether the local part, up to any `+tag` and ignoring case, is a role mailbox.
#[must_use]
pub fn is_role(address: &str) -> bool {
    let local = address.rsplit_once('@').map_or(address, |(local, _)| local);
    let base = local.split_once('+').map_or(local, |(base, _)| base);
    ROLE_LOCAL_PARTS.iter().any(|role| role.eq_ignore_ascii_case(base))
}

/// Whether `domain` (ASCII form) or one of its parent domains is a disposable-address service.
#[must_use]
pub fn is_disposable(domain: &str) -> bool {
    let domain = domain.trim().trim_end_matches('.').to_ascii_lowercase();
    let mut candidate = domain.as_str();
    loop {
        if DISPOSABLE_DOMAINS.contains(candidate) {
            return true;
        }
        match candidate.split_once('.') {
            Some((_, parent)) => candidate = parent,
            None => return false,
        }
    }
}

/// The checks that need no network or store, in order: syntax, role, disposable. Returns the
/// normalized address.
///
/// # Errors
/// The first [`SkipReason`] that applies.
pub fn check_offline(input: &str) -> Result<String, SkipReason> {
    let address = normalize(input)?;
    if is_role(&address) {
        return Err(SkipReason::RoleAddress);
    }
    if is_disposable(domain_of(&address)) {
        return Err(SkipReason::Disposable);
    }
    Ok(address)
}

/// The part of an address after its last `@`; empty when there is none.
#[must_use]
pub fn domain_of(address: &str) -> &str {
    address.rsplit_once('@').map_or("", |(_, domain)| domain)
}

/// Removes surrounding whitespace, a `Name <…>` wrapper and a `mailto:` prefix (with any
/// `?subject=…` query).
fn unwrap_address(input: &str) -> &str {
    let trimmed = input.trim();
    let inner = trimmed
        .strip_suffix('>')
        .and_then(|rest| rest.rfind('<').map(|open| &rest[open + 1..]))
        .map_or(trimmed, str::trim);
    match inner.get(..7) {
        Some(scheme) if scheme.eq_ignore_ascii_case("mailto:") => {
            let target = &inner[7..];
            target.split_once('?').map_or(target, |(address, _)| address).trim()
        }
        _ => inner,
    }
}

/// Checks a local part against the dot-atom rules.
fn check_local_part(local: &str) -> Result<(), SkipReason> {
    let valid = (1..=MAX_LOCAL_LEN).contains(&local.len())
        && local.bytes().all(|b| b == b'.' || is_atext(b))
        && !local.starts_with('.')
        && !local.ends_with('.')
        && !local.contains("..");
    if valid { Ok(()) } else { Err(SkipReason::InvalidSyntax) }
}

/// Whether `byte` is an RFC 5322 `atext` character.
fn is_atext(byte: u8) -> bool {
    byte.is_ascii_alphanumeric() || b"!#$%&'*+-/=?^_`{|}~".contains(&byte)
}

/// Converts the domain to its ASCII form, refusing a trailing dot and any whitespace (which
/// the shared domain check would otherwise trim or strip).
fn normalize_mail_domain(domain: &str) -> Result<String, SkipReason> {
    if domain.is_empty() || domain.ends_with('.') || domain.contains(char::is_whitespace) || domain.contains('@') {
        return Err(SkipReason::InvalidSyntax);
    }
    normalize_domain(domain).map_err(|_| SkipReason::InvalidSyntax)
}

/// The domains of a list file: one per line, blank lines and `#` comments ignored.
fn parse_domain_list(text: &'static str) -> HashSet<&'static str> {
    text.lines()
        .map(|line| line.split_once('#').map_or(line, |(before, _)| before).trim())
        .filter(|line| !line.is_empty())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn invalid(input: &str) {
        assert_eq!(normalize(input), Err(SkipReason::InvalidSyntax), "{input:?} was accepted");
    }

    #[test]
    fn normalizes_good_addresses() {
        assert_eq!(normalize("  Bob.Smith@Example.COM "), Ok("bob.smith@example.com".into()));
        assert_eq!(normalize("Bob <bob@x.com>"), Ok("bob@x.com".into()));
        assert_eq!(normalize("\"Smith, Bob\" < Bob@X.com >"), Ok("bob@x.com".into()));
        assert_eq!(normalize("<bob@x.com>"), Ok("bob@x.com".into()));
        assert_eq!(normalize("MAILTO:bob@x.com?subject=Hi"), Ok("bob@x.com".into()));
        assert_eq!(normalize("o'brien+tag_1{x}@sub.example.co.uk"), Ok("o'brien+tag_1{x}@sub.example.co.uk".into()));
    }

    #[test]
    fn converts_international_domains_to_punycode() {
        assert_eq!(normalize("anna@bücher.example"), Ok("anna@xn--bcher-kva.example".into()));
        assert_eq!(normalize("ANNA@MÜNCHEN.DE"), Ok("anna@xn--mnchen-3ya.de".into()));
        invalid("anna@xn--a.com");
    }

    #[test]
    fn refuses_bad_structure() {
        for input in ["", "   ", "bob", "bob@", "@x.com", "bob@@x.com", "a@b@x.com", "Bob <>", "mailto:"] {
            invalid(input);
        }
    }

    #[test]
    fn refuses_bad_local_parts() {
        for input in
            [".bob@x.com", "bob.@x.com", "bo..b@x.com", "\"bob\"@x.com", "bo b@x.com", "bøb@x.com", "a(b)@x.com"]
        {
            invalid(input);
        }
        let local64 = "a".repeat(64);
        assert_eq!(normalize(&format!("{local64}@x.com")), Ok(format!("{local64}@x.com")));
        invalid(&format!("{}@x.com", "a".repeat(65)));
    }

    #[test]
    fn refuses_bad_domains() {
        for input in [
            "bob@x.com.",
            "bob@x..com",
            "bob@.x.com",
            "bob@localhost",
            "bob@x.123",
            "bob@1.2.3.4",
            "bob@[1.2.3.4]",
            "bob@-x.com",
            "bob@x-.com",
            "bob@x_y.com",
            "bob@x .com",
            "bob@ x.com",
        ] {
            invalid(input);
        }
        invalid(&format!("bob@{}.com", "a".repeat(64)));
    }

    #[test]
    fn limits_the_whole_address_to_254_characters() {
        let domain = [&"a".repeat(63), &"b".repeat(63), &"c".repeat(63), "com"].join(".");
        let fits = format!("{}@{}", "x".repeat(254 - 1 - domain.len()), domain);
        assert_eq!(fits.len(), 254);
        assert_eq!(normalize(&fits), Ok(fits.clone()));
        invalid(&format!("x{fits}"));
    }

    #[test]
    fn recognizes_role_addresses_with_and_without_tags() {
        assert!(is_role("info@x.com"));
        assert!(is_role("Sales+Leads@x.com"));
        assert!(is_role("no-reply@x.com"));
        assert!(is_role("support"));
        assert!(!is_role("information@x.com"));
        assert!(!is_role("bob+info@x.com"));
        assert!(!is_role("ann@info.com"));
    }

    #[test]
    fn recognizes_disposable_domains_and_their_subdomains() {
        assert!(is_disposable("mailinator.com"));
        assert!(is_disposable("Mailinator.COM."));
        assert!(is_disposable("eu.mailinator.com"));
        assert!(is_disposable("yopmail.com"));
        assert!(!is_disposable("notmailinator.example"));
        assert!(!is_disposable("gmail.com"));
        assert!(!is_disposable("com"));
        assert!(!is_disposable(""));
    }

    #[test]
    fn disposable_list_is_clean_and_large_enough() {
        assert!(DISPOSABLE_DOMAINS.len() >= 150, "only {} domains", DISPOSABLE_DOMAINS.len());
        for domain in DISPOSABLE_DOMAINS.iter() {
            assert_eq!(normalize_domain(domain).as_deref(), Ok(*domain), "{domain:?} is not a normalized domain");
        }
        for required in ["guerrillamail.com", "10minutemail.com", "temp-mail.org", "sharklasers.com", "maildrop.cc"] {
            assert!(DISPOSABLE_DOMAINS.contains(required), "{required} is missing");
        }
    }

    #[test]
    fn parses_comments_and_blank_lines() {
        let list = parse_domain_list("# heading\n\nexample.com\n  spaced.example  # note\n");
        assert_eq!(list, HashSet::from(["example.com", "spaced.example"]));
    }

    #[test]
    fn offline_checks_run_in_order() {
        assert_eq!(check_offline("Ann <Ann@Acme.com>"), Ok("ann@acme.com".into()));
        assert_eq!(check_offline("not an address"), Err(SkipReason::InvalidSyntax));
        assert_eq!(check_offline("info@mailinator.com"), Err(SkipReason::RoleAddress));
        assert_eq!(check_offline("ann@mailinator.com"), Err(SkipReason::Disposable));
    }

    #[test]
    fn domain_of_takes_the_part_after_the_last_at() {
        assert_eq!(domain_of("ann@acme.com"), "acme.com");
        assert_eq!(domain_of("ann"), "");
    }

    #[test]
    fn codes_are_stable_and_match_serde() {
        let codes: Vec<&str> = SkipReason::ALL.iter().map(|r| r.code()).collect();
        assert_eq!(codes, ["invalid_syntax", "duplicate", "suppressed", "role_address", "disposable", "no_mx"]);
        for reason in SkipReason::ALL {
            assert_eq!(serde_json::to_string(&reason).unwrap(), format!("\"{}\"", reason.code()));
            assert_eq!(SkipReason::from_code(reason.code()), Some(reason));
            assert!(reason.describe().starts_with(|c: char| c.is_uppercase()));
        }
        assert_eq!(SkipReason::from_code("nope"), None);
    }
}
