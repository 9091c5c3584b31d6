//! Local parts that look like real people's: `emma.walker@`, `ewalker@`, `emma@`.
//!
//! Two lists ship inside the binary (`first_names.txt`, `last_names.txt`: lowercase ASCII, one
//! name a line). For each mailbox a first and a last name are drawn at random, then one of seven
//! patterns, weighted towards the most common corporate form `first.last`. A candidate is drawn
//! again when it is already taken on the domain, already handed out in this batch, or reads as
//! something rude where two names meet (`twatson`, `emilf`: see [`UNFORTUNATE_FRAGMENTS`]), or
//! is a role address (`postmaster`, `abuse`, `dmarc-reports`: those belong to role mail).
//!
//! Each person gets 500 tries with letters only; only when all of them collide does the generator
//! fall back to a two-digit suffix (`emma.walker42`) for another 500 tries, and only then does it
//! give up with [`NamesError::Exhausted`]. The lists give over 300,000 distinct letters-only local
//! parts, so a batch of 500 on a domain that already has thousands of mailboxes never comes near
//! the fallback.

use std::borrow::Cow;
use std::collections::HashSet;

use crate::crypto::random_below;

/// Letters-only tries per person before digits are allowed.
const PLAIN_ATTEMPTS: usize = 500;
/// Tries per person with a two-digit suffix before giving up.
const SUFFIX_ATTEMPTS: usize = 500;
/// The longest local part RFC 5321 allows.
const MAX_LOCAL_PART: usize = 64;

/// Strings no generated local part may contain, wherever they come from (`t` + `watson`).
pub const UNFORTUNATE_FRAGMENTS: &[&str] = &[
    "anal", "bitch", "cock", "cum", "cunt", "dick", "fag", "fuck", "hoe", "jizz", "milf", "nazi", "nigg", "piss",
    "porn", "rape", "shit", "slut", "tits", "twat", "wank", "whore",
];

const FIRST_NAMES: &str = include_str!("first_names.txt");
const LAST_NAMES: &str = include_str!("last_names.txt");

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum NamesError {
    #[error(
        "Could not find enough unused name-based addresses on this domain; \
         ask for fewer mailboxes or choose the addresses yourself."
    )]
    Exhausted,
}

/// A generated mailbox owner.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Person {
    /// Capitalized, e.g. "Emma".
    pub first_name: String,
    /// Capitalized, e.g. "Walker".
    pub last_name: String,
    /// Lowercase local part, e.g. "emma.walker".
    pub local_part: String,
    /// "First Last", e.g. "Emma Walker".
    pub display_name: String,
}

/// How a local part is built from a first and a last name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Pattern {
    /// `emma.walker`
    FirstDotLast,
    /// `emma`
    First,
    /// `emmaw`
    FirstInitial,
    /// `ewalker`
    InitialLast,
    /// `emma_walker`
    FirstUnderscoreLast,
    /// `emmawalker`
    FirstLast,
    /// `emma.w`
    FirstDotInitial,
}

/// Each pattern with its relative weight; `first.last` is by far the most common in companies.
const PATTERN_WEIGHTS: [(Pattern, u32); 7] = [
    (Pattern::FirstDotLast, 36),
    (Pattern::First, 10),
    (Pattern::FirstInitial, 12),
    (Pattern::InitialLast, 14),
    (Pattern::FirstUnderscoreLast, 8),
    (Pattern::FirstLast, 12),
    (Pattern::FirstDotInitial, 8),
];

impl Pattern {
    /// The local part this pattern makes of two lowercase names.
    fn render(self, first: &str, last: &str) -> String {
        let initial = &last[..1];
        match self {
            Pattern::FirstDotLast => format!("{first}.{last}"),
            Pattern::First => first.to_owned(),
            Pattern::FirstInitial => format!("{first}{initial}"),
            Pattern::InitialLast => format!("{}{last}", &first[..1]),
            Pattern::FirstUnderscoreLast => format!("{first}_{last}"),
            Pattern::FirstLast => format!("{first}{last}"),
            Pattern::FirstDotInitial => format!("{first}.{initial}"),
        }
    }

    /// A pattern drawn according to [`PATTERN_WEIGHTS`].
    fn random() -> Pattern {
        let total: u32 = PATTERN_WEIGHTS.iter().map(|(_, weight)| weight).sum();
        let mut ticket = random_below(total);
        for (pattern, weight) in PATTERN_WEIGHTS {
            if ticket < weight {
                return pattern;
            }
            ticket -= weight;
        }
        Pattern::FirstDotLast
    }
}

/// The two name lists a generator draws from.
struct NameLists<'a> {
    first: Vec<&'a str>,
    last: Vec<&'a str>,
}

impl NameLists<'static> {
    /// The lists shipped in the binary.
    fn embedded() -> Self {
        NameLists { first: parse_list(FIRST_NAMES), last: parse_list(LAST_NAMES) }
    }
}

/// One name per non-empty line.
fn parse_list(text: &str) -> Vec<&str> {
    text.lines().map(str::trim).filter(|line| !line.is_empty()).collect()
}

/// A uniformly random element of a non-empty list.
fn pick<'a>(list: &[&'a str]) -> &'a str {
    let bound = u32::try_from(list.len()).expect("name lists are small");
    let index = usize::try_from(random_below(bound)).expect("a u32 fits in usize");
    list[index]
}

/// "emma" → "Emma".
fn capitalize(name: &str) -> String {
    let mut chars = name.chars();
    match chars.next() {
        Some(first) => first.to_ascii_uppercase().to_string() + chars.as_str(),
        None => String::new(),
    }
}

/// `taken` as lowercase, copied only when some entry is not lowercase already.
fn lowercase_set(taken: &HashSet<String>) -> Cow<'_, HashSet<String>> {
    if taken.iter().any(|local| local.bytes().any(|b| b.is_ascii_uppercase())) {
        Cow::Owned(taken.iter().map(|local| local.to_ascii_lowercase()).collect())
    } else {
        Cow::Borrowed(taken)
    }
}

/// Builds the person for a name pair and a finished local part.
fn person(first: &str, last: &str, local_part: String) -> Person {
    let first_name = capitalize(first);
    let last_name = capitalize(last);
    let display_name = format!("{first_name} {last_name}");
    Person { first_name, last_name, local_part, display_name }
}

/// `count` people whose local parts differ from each other and from `taken` (the local parts
/// already used on the domain). Local parts contain only `a-z`, at most one `.` or `_`, and
/// digits only as the last resort described in the module documentation.
pub fn generate_people(count: usize, taken: &HashSet<String>) -> Result<Vec<Person>, NamesError> {
    generate_from(&NameLists::embedded(), count, taken)
}

/// [`generate_people`] over any pair of lists.
fn generate_from(lists: &NameLists<'_>, count: usize, taken: &HashSet<String>) -> Result<Vec<Person>, NamesError> {
    let taken = lowercase_set(taken);
    let mut used: HashSet<String> = HashSet::with_capacity(count);
    let mut people = Vec::with_capacity(count);
    for _ in 0..count {
        let found = try_plain(lists, &taken, &used).or_else(|| try_suffixed(lists, &taken, &used));
        let found = found.ok_or(NamesError::Exhausted)?;
        used.insert(found.local_part.clone());
        people.push(found);
    }
    Ok(people)
}

/// Whether `candidate` may be handed out.
fn is_free(candidate: &str, taken: &HashSet<String>, used: &HashSet<String>) -> bool {
    candidate.len() <= MAX_LOCAL_PART
        && !taken.contains(candidate)
        && !used.contains(candidate)
        && !UNFORTUNATE_FRAGMENTS.iter().any(|fragment| candidate.contains(fragment))
        && !super::resolve::ROLE_LOCAL_PARTS.contains(&candidate)
}

/// A letters-only person, or None after [`PLAIN_ATTEMPTS`] collisions.
fn try_plain(lists: &NameLists<'_>, taken: &HashSet<String>, used: &HashSet<String>) -> Option<Person> {
    (0..PLAIN_ATTEMPTS).find_map(|_| {
        let (first, last) = (pick(&lists.first), pick(&lists.last));
        let candidate = Pattern::random().render(first, last);
        is_free(&candidate, taken, used).then(|| person(first, last, candidate))
    })
}

/// A person whose local part ends in two digits (10–99), or None after [`SUFFIX_ATTEMPTS`].
fn try_suffixed(lists: &NameLists<'_>, taken: &HashSet<String>, used: &HashSet<String>) -> Option<Person> {
    (0..SUFFIX_ATTEMPTS).find_map(|_| {
        let (first, last) = (pick(&lists.first), pick(&lists.last));
        let candidate = format!("{}{}", Pattern::random().render(first, last), 10 + random_below(90));
        is_free(&candidate, taken, used).then(|| person(first, last, candidate))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const ALL_PATTERNS: [Pattern; 7] = [
        Pattern::FirstDotLast,
        Pattern::First,
        Pattern::FirstInitial,
        Pattern::InitialLast,
        Pattern::FirstUnderscoreLast,
        Pattern::FirstLast,
        Pattern::FirstDotInitial,
    ];

    /// `^[a-z]+([._][a-z]+)?$` without a regex engine.
    fn is_plain_local_part(local: &str) -> bool {
        let mut parts = local.split(['.', '_']);
        let head = parts.next().unwrap_or_default();
        let tail = parts.next();
        let letters = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_lowercase());
        letters(head) && tail.is_none_or(letters) && parts.next().is_none()
    }

    fn pattern_of(person: &Person) -> Option<Pattern> {
        let (first, last) = (person.first_name.to_ascii_lowercase(), person.last_name.to_ascii_lowercase());
        ALL_PATTERNS.into_iter().find(|p| p.render(&first, &last) == person.local_part)
    }

    #[test]
    fn embedded_lists_are_clean() {
        for (name, text, min) in [("first", FIRST_NAMES, 300), ("last", LAST_NAMES, 300)] {
            let list = parse_list(text);
            assert!(list.len() >= min, "{name} list has only {} names", list.len());
            let unique: HashSet<_> = list.iter().collect();
            assert_eq!(unique.len(), list.len(), "{name} list has duplicates");
            for entry in list {
                assert!(entry.bytes().all(|b| b.is_ascii_lowercase()), "{name} list: {entry:?}");
            }
        }
    }

    #[test]
    fn five_hundred_distinct_plain_people() {
        let people = generate_people(500, &HashSet::new()).unwrap();
        assert_eq!(people.len(), 500);
        let locals: HashSet<_> = people.iter().map(|p| p.local_part.as_str()).collect();
        assert_eq!(locals.len(), 500);
        for person in &people {
            assert!(is_plain_local_part(&person.local_part), "{:?}", person.local_part);
            assert!(person.local_part.len() <= MAX_LOCAL_PART);
        }
    }

    #[test]
    fn never_hands_out_a_taken_local_part() {
        let taken: HashSet<String> =
            generate_people(3000, &HashSet::new()).unwrap().into_iter().map(|p| p.local_part).collect();
        let mut taken_with_every_first_name = taken.clone();
        taken_with_every_first_name.extend(parse_list(FIRST_NAMES).into_iter().map(str::to_owned));
        let people = generate_people(500, &taken_with_every_first_name).unwrap();
        assert_eq!(people.len(), 500);
        for person in &people {
            assert!(!taken_with_every_first_name.contains(&person.local_part), "{}", person.local_part);
            assert!(is_plain_local_part(&person.local_part));
        }
    }

    #[test]
    fn taken_is_compared_case_insensitively() {
        let lists = NameLists { first: vec!["ann"], last: vec!["lee"] };
        let taken: HashSet<String> =
            ["Ann.Lee", "ANN", "annl", "alee", "ann_lee", "annlee"].into_iter().map(str::to_owned).collect();
        let people = generate_from(&lists, 1, &taken).unwrap();
        assert_eq!(people[0].local_part, "ann.l");
    }

    #[test]
    fn rude_joins_are_never_handed_out() {
        let lists = NameLists { first: vec!["thomas", "emil"], last: vec!["watson", "fisher"] };
        for person in generate_from(&lists, 10, &HashSet::new()).unwrap() {
            for fragment in UNFORTUNATE_FRAGMENTS {
                assert!(!person.local_part.contains(fragment), "{}", person.local_part);
            }
        }
        for person in generate_people(500, &HashSet::new()).unwrap() {
            assert!(!UNFORTUNATE_FRAGMENTS.iter().any(|f| person.local_part.contains(f)), "{}", person.local_part);
        }
    }

    #[test]
    fn role_local_parts_are_never_handed_out() {
        let lists = NameLists { first: vec!["postmaster", "abuse"], last: vec!["lee"] };
        let people = generate_from(&lists, 40, &HashSet::new()).unwrap();
        assert_eq!(people.len(), 40);
        for person in people {
            assert!(
                !crate::mailbox::resolve::ROLE_LOCAL_PARTS.contains(&person.local_part.as_str()),
                "{}",
                person.local_part
            );
        }
    }

    #[test]
    fn display_names_are_capitalized() {
        for person in generate_people(200, &HashSet::new()).unwrap() {
            assert_eq!(person.display_name, format!("{} {}", person.first_name, person.last_name));
            for name in [&person.first_name, &person.last_name] {
                let mut chars = name.chars();
                assert!(chars.next().is_some_and(|c| c.is_ascii_uppercase()), "{name}");
                assert!(chars.all(|c| c.is_ascii_lowercase()), "{name}");
            }
        }
    }

    #[test]
    fn every_pattern_appears_and_first_dot_last_leads() {
        let people = generate_people(500, &HashSet::new()).unwrap();
        let mut counts = std::collections::HashMap::new();
        for person in &people {
            *counts.entry(pattern_of(person).expect("a known pattern")).or_insert(0) += 1;
        }
        for pattern in ALL_PATTERNS {
            assert!(counts.contains_key(&pattern), "{pattern:?} never appeared: {counts:?}");
        }
        let top = counts.iter().max_by_key(|(_, n)| **n).map(|(p, _)| *p);
        assert_eq!(top, Some(Pattern::FirstDotLast), "{counts:?}");
    }

    #[test]
    fn digits_only_when_letters_run_out() {
        let lists = NameLists { first: vec!["ann"], last: vec!["lee"] };
        let people = generate_from(&lists, 9, &HashSet::new()).unwrap();
        let (plain, suffixed): (Vec<_>, Vec<_>) = people.iter().partition(|p| is_plain_local_part(&p.local_part));
        assert_eq!(plain.len(), 7, "all seven patterns are used before any digit");
        for person in suffixed {
            let digits = &person.local_part[person.local_part.len() - 2..];
            assert!(digits.bytes().all(|b| b.is_ascii_digit()), "{}", person.local_part);
        }
    }

    #[test]
    fn gives_up_when_nothing_is_left() {
        let lists = NameLists { first: vec!["ann"], last: vec!["lee"] };
        assert_eq!(generate_from(&lists, 10_000, &HashSet::new()), Err(NamesError::Exhausted));
    }

    #[test]
    fn zero_people_is_fine() {
        assert!(generate_people(0, &HashSet::new()).unwrap().is_empty());
    }
}
