//! A warmup sender's day: to whom its warmup messages go and when.
//!
//! Recipients are the other members of the pool on other domains (a message between two
//! mailboxes of one domain builds no reputation); a member's "domain" is its own domain's name or,
//! for an outside account, the domain of its address. The day's recipients go round the eligible
//! members in an order shuffled for the day, so they are spread evenly and each recipient gets at
//! most one more message than any other.
//!
//! Times are drawn uniformly at random over the time the sender's window is still open on the day
//! (from the later of the day's start and `from`, to the day's end), then sorted. The open
//! periods come from [`Window`] (DST-correct); the draw maps a uniform offset into the sum of the
//! periods' lengths, so a window split by a closed stretch gets messages in proportion to each
//! part's length. A day with no open time left plans nothing.
//!
//! The draw is deterministic for a seed (see [`super::corpus::seed`]), so a plan made again after a
//! restart is the same plan.

use super::draw::Draw;
use crate::campaign::windows::Window;

/// Upper bound on open periods looked at in one day (a window opens at most twice a day, around
/// a daylight-saving change).
const MAX_PERIODS: usize = 8;

/// A pool member, as the planner sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Member {
    pub mailbox_id: i64,
    /// The domain its reputation is built for: its own domain, or its address's domain.
    pub domain: String,
}

/// One planned warmup message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Planned {
    pub recipient: i64,
    /// Unix seconds.
    pub due_at: i64,
}

/// The members `sender` may send warmup mail to: everyone on another domain.
#[must_use]
pub fn eligible<'a>(sender: &Member, pool: &'a [Member]) -> Vec<&'a Member> {
    pool.iter()
        .filter(|m| m.mailbox_id != sender.mailbox_id && !m.domain.eq_ignore_ascii_case(&sender.domain))
        .collect()
}

/// The open periods `[start, end)` of `window` between `from` and `until`.
#[must_use]
pub fn open_periods(window: &Window, from: i64, until: i64) -> Vec<(i64, i64)> {
    let mut periods = Vec::new();
    let mut at = from;
    while at < until && periods.len() < MAX_PERIODS {
        let Some(open) = window.next_open(at).filter(|open| *open < until) else {
            break;
        };
        let close = window.closes_at(open).map_or(until, |close| close.min(until));
        if close <= open {
            break;
        }
        periods.push((open, close));
        at = close;
    }
    periods
}

/// The day's plan for `sender`: `count` messages to the eligible members of `pool`, at times in
/// `periods` (see the module doc), drawn from `seed`.
#[must_use]
pub fn plan_day(sender: &Member, pool: &[Member], count: i64, periods: &[(i64, i64)], seed: u64) -> Vec<Planned> {
    let recipients = eligible(sender, pool);
    let open_total: i64 = periods.iter().map(|(start, end)| end - start).sum();
    if recipients.is_empty() || open_total <= 0 || count <= 0 {
        return Vec::new();
    }
    let mut draw = Draw::new(seed);
    let order = draw.shuffled(recipients.len());
    let mut offsets: Vec<i64> = (0..count).map(|_| draw.below(open_total)).collect();
    offsets.sort_unstable();
    offsets
        .into_iter()
        .zip(order.into_iter().cycle())
        .filter_map(|(offset, pick)| {
            Some(Planned { recipient: recipients.get(pick)?.mailbox_id, due_at: instant_at(periods, offset)? })
        })
        .collect()
}

/// The instant `offset` seconds into the concatenated periods.
fn instant_at(periods: &[(i64, i64)], mut offset: i64) -> Option<i64> {
    for (start, end) in periods {
        let length = end - start;
        if offset < length {
            return Some(start + offset);
        }
        offset -= length;
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono_tz::Tz;
    use std::collections::HashMap;

    /// 2026-12-07 00:00 UTC, a Monday.
    const MONDAY: i64 = 1_796_601_600;

    fn pool() -> Vec<Member> {
        [(1, "a.test"), (2, "a.test"), (3, "b.test"), (4, "b.test"), (5, "c.test"), (6, "gmail.com")]
            .into_iter()
            .map(|(mailbox_id, domain)| Member { mailbox_id, domain: domain.into() })
            .collect()
    }

    fn office_hours(zone: Tz) -> Window {
        Window::new(zone, [true; 7], 8 * 60, 18 * 60).unwrap()
    }

    #[test]
    fn recipients_are_on_other_domains_and_spread_evenly() {
        let pool = pool();
        let periods = open_periods(&office_hours(Tz::UTC), MONDAY, MONDAY + 86_400);
        let plan = plan_day(&pool[0], &pool, 10, &periods, 42);
        assert_eq!(plan.len(), 10);
        let mut per_recipient: HashMap<i64, usize> = HashMap::new();
        for planned in &plan {
            assert!(planned.recipient > 2, "not to itself nor to its own domain: {plan:?}");
            *per_recipient.entry(planned.recipient).or_default() += 1;
        }
        assert_eq!(per_recipient.len(), 4);
        assert!(per_recipient.values().all(|n| (2..=3).contains(n)), "{per_recipient:?}");
        assert_eq!(plan, plan_day(&pool[0], &pool, 10, &periods, 42), "the same seed, the same plan");
        assert!(plan.windows(2).all(|w| w[0].due_at <= w[1].due_at), "in time order");
    }

    #[test]
    fn times_fall_inside_the_window_and_after_from() {
        let pool = pool();
        let zone = Tz::America__New_York;
        let window = office_hours(zone);
        let noon_utc = MONDAY + 12 * 3600; // 07:00 in New York
        let late_start = MONDAY + 20 * 3600; // 15:00 in New York
        let periods = open_periods(&window, late_start, MONDAY + 29 * 3600);
        assert_eq!(periods, vec![(late_start, MONDAY + 23 * 3600)], "until 18:00 local");
        let plan = plan_day(&pool[2], &pool, 40, &periods, 7);
        assert_eq!(plan.len(), 40);
        assert!(plan.iter().all(|p| window.is_open(p.due_at) && p.due_at >= late_start), "{plan:?}");
        assert!(open_periods(&window, MONDAY + 23 * 3600, MONDAY + 29 * 3600).is_empty(), "closed for the day");
        assert!(plan_day(&pool[2], &pool, 5, &[], 7).is_empty(), "no time left: nothing planned");
        assert!(!window.is_open(noon_utc));
    }

    #[test]
    fn a_pool_without_other_domains_plans_nothing() {
        let lonely =
            vec![Member { mailbox_id: 1, domain: "a.test".into() }, Member { mailbox_id: 2, domain: "A.TEST".into() }];
        let periods = [(MONDAY, MONDAY + 3600)];
        assert!(plan_day(&lonely[0], &lonely, 3, &periods, 1).is_empty());
        assert!(plan_day(&pool()[0], &pool(), 0, &periods, 1).is_empty());
    }

    #[test]
    fn offsets_map_across_split_periods() {
        let periods = [(100, 110), (200, 205)];
        assert_eq!(instant_at(&periods, 0), Some(100));
        assert_eq!(instant_at(&periods, 9), Some(109));
        assert_eq!(instant_at(&periods, 10), Some(200));
        assert_eq!(instant_at(&periods, 14), Some(204));
        assert_eq!(instant_at(&periods, 15), None);
    }
}
