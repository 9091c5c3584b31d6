//! Adaptive throttling arithmetic: recognising a "slow down" reply and the pace it leads to.
//!
//! [`is_rate_limited`] says whether a temporary (4xx) reply asks the sender to slow down: the
//! enhanced codes 4.7.0 with rate wording, 4.2.1, 4.7.28 (Gmail), 4.7.500 (Outlook), or reply text
//! saying rate limited, try again later, too many connections or messages, or throttled.
//!
//! The pace is a minimum gap in seconds between two sends from one mailbox (or egress address) to
//! one provider. It follows multiplicative decrease of the rate, stepwise increase:
//! - a rate-limit reply doubles the gap, starting at [`FIRST_GAP`] and capped at [`MAX_GAP`];
//! - every [`SUCCESSES_PER_STEP`] successes in a row halve it; a gap below [`FIRST_GAP`] becomes 0
//!   (no pacing).

/// The gap after the first rate-limit reply, in seconds.
pub const FIRST_GAP: i64 = 60;
/// The longest gap, in seconds.
pub const MAX_GAP: i64 = 3600;
/// Successes in a row that halve the gap.
pub const SUCCESSES_PER_STEP: u32 = 5;

/// Whether a reply (code and text) asks the sender to slow down. Only 4xx replies qualify.
pub fn is_rate_limited(code: u16, text: &str) -> bool {
    if !(400..500).contains(&code) {
        return false;
    }
    let text = text.to_ascii_lowercase();
    const CODES: [&str; 3] = ["4.2.1", "4.7.28", "4.7.500"];
    const WORDS: [&str; 8] = [
        "rate limit",
        "rate-limit",
        "ratelimit",
        "try again later",
        "too many connections",
        "too many messages",
        "throttl",
        "unusual rate",
    ];
    CODES.iter().any(|c| text.contains(c)) || WORDS.iter().any(|w| text.contains(w))
}

/// A pace: the current gap and the successes seen since the last change.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Pace {
    /// Minimum seconds between two sends; 0: not paced.
    pub gap: i64,
    pub successes: u32,
}

impl Pace {
    /// After a rate-limit reply: the gap doubles (from [`FIRST_GAP`], at most [`MAX_GAP`]).
    pub fn slowed(self) -> Pace {
        let gap = if self.gap < FIRST_GAP { FIRST_GAP } else { self.gap.saturating_mul(2).min(MAX_GAP) };
        Pace { gap, successes: 0 }
    }

    /// After a success: every [`SUCCESSES_PER_STEP`] in a row halve the gap.
    pub fn succeeded(self) -> Pace {
        if self.gap == 0 {
            return Pace::default();
        }
        let successes = self.successes + 1;
        if successes < SUCCESSES_PER_STEP {
            return Pace { gap: self.gap, successes };
        }
        let gap = self.gap / 2;
        Pace { gap: if gap < FIRST_GAP { 0 } else { gap }, successes: 0 }
    }

    /// The earliest time (unix seconds) the next send may start, after one at `last`.
    pub fn next_allowed(self, last: i64) -> i64 {
        last.saturating_add(self.gap)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matches_provider_throttling_replies() {
        assert!(is_rate_limited(421, "4.7.0 rate limited, try again later"));
        assert!(is_rate_limited(450, "4.2.1 The user you are trying to contact is receiving mail too quickly"));
        assert!(is_rate_limited(451, "4.7.28 Our system has detected an unusual rate of unsolicited mail"));
        assert!(is_rate_limited(451, "4.7.500 Server busy. Please try again later. (S77719) throttled"));
        assert!(is_rate_limited(421, "Too many connections from your IP"));
        assert!(!is_rate_limited(450, "4.2.0 mailbox busy"));
        assert!(!is_rate_limited(451, "4.3.0 local error in processing"));
        assert!(!is_rate_limited(550, "5.7.1 rate limited"));
    }

    #[test]
    fn slows_multiplicatively_and_recovers_stepwise() {
        let p = Pace::default().slowed();
        assert_eq!(p.gap, FIRST_GAP);
        assert_eq!(p.slowed().gap, 120);
        let mut big = p;
        for _ in 0..10 {
            big = big.slowed();
        }
        assert_eq!(big.gap, MAX_GAP);
        let mut q = Pace { gap: 240, successes: 0 };
        for _ in 0..SUCCESSES_PER_STEP - 1 {
            q = q.succeeded();
            assert_eq!(q.gap, 240);
        }
        q = q.succeeded();
        assert_eq!(q, Pace { gap: 120, successes: 0 });
        for _ in 0..2 * SUCCESSES_PER_STEP {
            q = q.succeeded();
        }
        assert_eq!(q.gap, 0);
        assert_eq!(q.slowed().successes, 0);
        assert_eq!(Pace { gap: 60, successes: 0 }.next_allowed(1000), 1060);
    }
}
