//! The words of warmup mail: natural subjects, bodies and replies built from a corpus shipped in
//! the binary (`corpus.txt`), so warmup traffic reads like people writing to each other and no
//! two messages of a sender's day are alike.
//!
//! The corpus has sections of interchangeable pieces (`[subject]`, `[greeting]`, `[opener]`,
//! `[middle]`, `[closing]`, `[signoff]`, `[reply]`); `{to}` and `{from}` stand for the first
//! names of the recipient and the sender. A message is one piece of each section, chosen by a
//! small deterministic generator ([`Draw`]) from a seed, so a plan recomputed after a restart
//! writes the same words. [`Corpus::compose_distinct`] draws a day's messages for one sender: the
//! subjects in an order shuffled for the day, and a body drawn again (with the next seed)
//! whenever it repeats one already drawn that day. The shipped corpus has forty subjects and
//! millions of bodies, so a day of up to forty messages repeats neither.

use std::collections::HashSet;

use super::draw::Draw;

const CORPUS: &str = include_str!("corpus.txt");
/// Draws per message before a repeated body is accepted (only a tiny custom corpus gets here).
const DRAWS: usize = 64;

/// A warmup message's words.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Words {
    pub subject: String,
    /// Plain text, lines separated by `\n`.
    pub body: String,
}

/// The parsed corpus.
#[derive(Debug, Clone)]
pub struct Corpus {
    subjects: Vec<String>,
    greetings: Vec<String>,
    openers: Vec<String>,
    middles: Vec<String>,
    closings: Vec<String>,
    signoffs: Vec<String>,
    replies: Vec<String>,
}

impl Corpus {
    /// The corpus shipped in the binary.
    #[must_use]
    pub fn embedded() -> Corpus {
        Corpus::parse(CORPUS)
    }

    fn parse(text: &str) -> Corpus {
        let mut corpus = Corpus {
            subjects: Vec::new(),
            greetings: Vec::new(),
            openers: Vec::new(),
            middles: Vec::new(),
            closings: Vec::new(),
            signoffs: Vec::new(),
            replies: Vec::new(),
        };
        let mut section = "";
        for line in text.lines().map(str::trim) {
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            if let Some(name) = line.strip_prefix('[').and_then(|rest| rest.strip_suffix(']')) {
                section = name;
                continue;
            }
            let pieces = match section {
                "subject" => &mut corpus.subjects,
                "greeting" => &mut corpus.greetings,
                "opener" => &mut corpus.openers,
                "middle" => &mut corpus.middles,
                "closing" => &mut corpus.closings,
                "signoff" => &mut corpus.signoffs,
                "reply" => &mut corpus.replies,
                _ => continue,
            };
            pieces.push(line.to_owned());
        }
        corpus
    }

    /// One message from `seed`, from `from` (the sender's first name) to `to`.
    #[must_use]
    pub fn compose(&self, seed: u64, to: &str, from: &str) -> Words {
        let mut draw = Draw::new(seed);
        let subject = pick(&self.subjects, &mut draw);
        let greeting = pick(&self.greetings, &mut draw);
        let opener = pick(&self.openers, &mut draw);
        let middle = pick(&self.middles, &mut draw);
        let second = pick(&self.middles, &mut draw);
        let closing = pick(&self.closings, &mut draw);
        let signoff = pick(&self.signoffs, &mut draw);
        let paragraph = if second == middle || draw.next_u64().is_multiple_of(3) {
            middle.to_owned()
        } else {
            format!("{middle} {second}")
        };
        let body = format!("{greeting}\n\n{opener} {paragraph}\n\n{closing}\n\n{signoff}\n{{from}}\n");
        Words { subject: fill(subject, to, from), body: fill(&body, to, from) }
    }

    /// `count` messages of one sender's day, none alike (see the module doc); `names(i)` gives
    /// the recipient's and the sender's first names of message `i`. Subjects go through the
    /// corpus's subjects in an order shuffled for the day, so they repeat only past their number;
    /// a body that repeats one of the day is drawn again.
    #[must_use]
    pub fn compose_distinct<'a>(
        &self,
        day_seed: u64,
        count: usize,
        names: impl Fn(usize) -> (&'a str, &'a str),
    ) -> Vec<Words> {
        let mut seeds = Draw::new(day_seed);
        let subjects = seeds.shuffled(self.subjects.len());
        let mut bodies = HashSet::new();
        let mut messages = Vec::with_capacity(count);
        for index in 0..count {
            let (to, from) = names(index);
            let mut words = self.compose(seeds.next_u64(), to, from);
            for _ in 0..DRAWS {
                if !bodies.contains(&words.body) {
                    break;
                }
                words = self.compose(seeds.next_u64(), to, from);
            }
            if let Some(subject) = subjects.get(index % subjects.len().max(1)).and_then(|&i| self.subjects.get(i)) {
                words.subject = fill(subject, to, from);
            }
            bodies.insert(words.body.clone());
            messages.push(words);
        }
        messages
    }

    /// A short reply's text from `from` to `to`, from `seed`.
    #[must_use]
    pub fn reply(&self, seed: u64, to: &str, from: &str) -> String {
        let mut draw = Draw::new(seed);
        let line = pick(&self.replies, &mut draw);
        let signoff = pick(&self.signoffs, &mut draw);
        fill(&format!("{line}\n\n{signoff}\n{{from}}\n"), to, from)
    }
}

fn pick<'a>(pieces: &'a [String], draw: &mut Draw) -> &'a str {
    pieces.get(draw.index(pieces.len())).map_or("", String::as_str)
}

fn fill(text: &str, to: &str, from: &str) -> String {
    text.replace("{to}", to).replace("{from}", from)
}

/// A seed from the parts that name a draw (e.g. the mailbox id, the day and the purpose).
#[must_use]
pub fn seed(parts: &[&[u8]]) -> u64 {
    let mut context = aws_lc_rs::digest::Context::new(&aws_lc_rs::digest::SHA256);
    for part in parts {
        context.update(&u64::try_from(part.len()).unwrap_or(u64::MAX).to_le_bytes());
        context.update(part);
    }
    let digest = context.finish();
    let mut first = [0u8; 8];
    first.copy_from_slice(&digest.as_ref()[..8]);
    u64::from_le_bytes(first)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_embedded_corpus_has_every_section() {
        let corpus = Corpus::embedded();
        for (name, pieces) in [
            ("subject", &corpus.subjects),
            ("greeting", &corpus.greetings),
            ("opener", &corpus.openers),
            ("middle", &corpus.middles),
            ("closing", &corpus.closings),
            ("signoff", &corpus.signoffs),
            ("reply", &corpus.replies),
        ] {
            assert!(pieces.len() >= 8, "{name}: {}", pieces.len());
        }
        assert!(corpus.subjects.len() >= 40);
    }

    #[test]
    fn a_message_names_both_people_and_is_the_same_for_the_same_seed() {
        let corpus = Corpus::embedded();
        let words = corpus.compose(7, "Ana", "Ben");
        assert_eq!(words, corpus.compose(7, "Ana", "Ben"));
        assert!(words.body.contains("Ana"), "{}", words.body);
        assert!(words.body.trim_end().ends_with("Ben"), "{}", words.body);
        assert!(!words.body.contains('{') && !words.subject.contains('{'));
        assert_ne!(words, corpus.compose(8, "Ana", "Ben"));
        let reply = corpus.reply(3, "Ben", "Ana");
        assert!(reply.trim_end().ends_with("Ana") && !reply.contains('{'), "{reply}");
    }

    #[test]
    fn a_day_of_forty_has_no_two_subjects_or_bodies_alike() {
        let corpus = Corpus::embedded();
        for day in 0..20u64 {
            let messages = corpus.compose_distinct(seed(&[b"mailbox 1", &day.to_le_bytes()]), 40, |_| ("Ana", "Ben"));
            let subjects: HashSet<&str> = messages.iter().map(|m| m.subject.as_str()).collect();
            let bodies: HashSet<&str> = messages.iter().map(|m| m.body.as_str()).collect();
            assert_eq!((subjects.len(), bodies.len()), (40, 40), "day {day}");
        }
    }

    #[test]
    fn a_tiny_corpus_still_gives_distinct_bodies_as_far_as_it_can() {
        let corpus = Corpus::parse(
            "[subject]\nHi\n[greeting]\nHi {to},\n[opener]\nA.\nB.\n[middle]\nC.\nD.\n[closing]\nE.\n[signoff]\nF,\n",
        );
        let messages = corpus.compose_distinct(1, 3, |_| ("Ana", "Ben"));
        let bodies: HashSet<&str> = messages.iter().map(|m| m.body.as_str()).collect();
        assert_eq!(bodies.len(), 3);
        assert!(messages.iter().all(|m| m.subject == "Hi"));
    }

    #[test]
    fn seeds_depend_on_every_part_and_its_boundaries() {
        assert_eq!(seed(&[b"a", b"b"]), seed(&[b"a", b"b"]));
        assert_ne!(seed(&[b"a", b"b"]), seed(&[b"ab"]));
        assert_ne!(seed(&[b"a", b"b"]), seed(&[b"a", b"c"]));
    }
}
