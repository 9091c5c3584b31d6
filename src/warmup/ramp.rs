//! The warmup ramp: how many warmup messages a mailbox sends on each day of its warmup, and how
//! many campaign messages it may send while it is still ramping.
//!
//! A [`Curve`] is three numbers a workspace sets: the volume of day 1 (`start`, default 2), the
//! volume it grows to (`target`, default 40) and the day it gets there (`ramp_days`, default 14).
//! Between them the volume grows linearly and is rounded to the nearest whole message:
//!
//! ```text
//! volume(day) = start + (target - start) * (day - 1) / (ramp_days - 1)     for 1 <= day <= ramp_days
//! volume(day) = target                                                      for day > ramp_days
//! ```
//!
//! so the default curve sends 2, 5, 8, 11, 14, 17, 20, 22, 25, 28, 31, 34, 37, 40 and then holds
//! at 40. Day 1 is the day (in the workspace's time zone) the mailbox was enrolled.
//!
//! The same curve caps a new mailbox's campaign volume during its first weeks: on a ramp day the
//! campaign sends of the day may not pass that day's volume ([`campaign_allowance`]); once the ramp
//! is over only the mailbox's daily limit applies. Warmup, campaign and submitted mail together
//! always stay within the daily limit, which `mta::admit` counts.

use chrono::NaiveDate;

use crate::error::{Error, Result};

/// The largest ramp length a workspace may set, in days.
pub const MAX_RAMP_DAYS: i64 = 90;
/// The largest daily warmup volume a workspace may set.
pub const MAX_VOLUME: i64 = 500;

/// A workspace's warmup curve.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct Curve {
    /// Warmup messages on day 1.
    pub start: i64,
    /// Warmup messages per day once the ramp is over.
    pub target: i64,
    /// The day the ramp reaches `target`.
    pub ramp_days: i64,
}

impl Default for Curve {
    fn default() -> Self {
        Curve { start: 2, target: 40, ramp_days: 14 }
    }
}

impl Curve {
    /// A curve from a settings form or the command line, checked.
    pub fn new(start: i64, target: i64, ramp_days: i64) -> Result<Curve> {
        if !(1..=MAX_VOLUME).contains(&start) {
            return Err(Error::invalid("warmup_start", format!("Day 1 sends between 1 and {MAX_VOLUME} messages.")));
        }
        if !(start..=MAX_VOLUME).contains(&target) {
            return Err(Error::invalid(
                "warmup_target",
                format!("The volume to grow to is between day 1's volume ({start}) and {MAX_VOLUME}."),
            ));
        }
        if !(1..=MAX_RAMP_DAYS).contains(&ramp_days) {
            return Err(Error::invalid("warmup_days", format!("The ramp lasts between 1 and {MAX_RAMP_DAYS} days.")));
        }
        Ok(Curve { start, target, ramp_days })
    }

    /// The warmup volume of `day` (1 = the day of enrolment; 0 or less: nothing yet).
    #[must_use]
    pub fn volume(&self, day: i64) -> i64 {
        if day < 1 {
            return 0;
        }
        if day >= self.ramp_days || self.ramp_days <= 1 {
            return if day >= self.ramp_days { self.target } else { self.start };
        }
        let span = self.ramp_days - 1;
        let grown = (self.target - self.start) * (day - 1);
        // Round half up, in integers: (2 * grown + span) / (2 * span).
        self.start + (2 * grown + span) / (2 * span)
    }

    /// Whether `day` is still on the ramp (the volume has not reached the target yet).
    #[must_use]
    pub fn ramping(&self, day: i64) -> bool {
        day < self.ramp_days
    }
}

/// The day of warmup `today` is for a mailbox enrolled on `enrolled` (both local dates): 1 on the
/// day of enrolment.
#[must_use]
pub fn day_number(enrolled: NaiveDate, today: NaiveDate) -> i64 {
    (today - enrolled).num_days() + 1
}

/// How many campaign messages a mailbox on warmup day `day` may send today, given those it sent
/// already: `None` when the ramp no longer caps it (only the daily limit does).
#[must_use]
pub fn campaign_allowance(curve: &Curve, day: i64, campaign_sent_today: i64) -> Option<i64> {
    curve.ramping(day).then(|| (curve.volume(day) - campaign_sent_today).max(0))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_default_curve_grows_from_2_to_40_by_day_14_then_holds() {
        let curve = Curve::default();
        let days: Vec<i64> = (1..=16).map(|day| curve.volume(day)).collect();
        assert_eq!(days, vec![2, 5, 8, 11, 14, 17, 20, 22, 25, 28, 31, 34, 37, 40, 40, 40]);
        assert_eq!(curve.volume(0), 0);
        assert_eq!(curve.volume(-3), 0);
        assert!(curve.ramping(13) && !curve.ramping(14));
    }

    #[test]
    fn other_curves_reach_their_target_on_their_last_day() {
        let flat = Curve::new(10, 10, 5).unwrap();
        assert_eq!((1..=6).map(|d| flat.volume(d)).collect::<Vec<_>>(), vec![10; 6]);
        let one_day = Curve::new(3, 30, 1).unwrap();
        assert_eq!((one_day.volume(1), one_day.volume(2)), (30, 30));
        let two_days = Curve::new(4, 9, 2).unwrap();
        assert_eq!((two_days.volume(1), two_days.volume(2), two_days.volume(3)), (4, 9, 9));
        let long = Curve::new(1, 100, 30).unwrap();
        let volumes: Vec<i64> = (1..=30).map(|d| long.volume(d)).collect();
        assert!(volumes.windows(2).all(|w| w[0] <= w[1]), "never shrinks: {volumes:?}");
        assert_eq!((volumes[0], volumes[29]), (1, 100));
    }

    #[test]
    fn curves_out_of_range_are_refused_with_the_field_named() {
        for (start, target, days, field) in [
            (0, 40, 14, "warmup_start"),
            (10, 5, 14, "warmup_target"),
            (2, 40, 0, "warmup_days"),
            (2, 501, 14, "warmup_target"),
        ] {
            match Curve::new(start, target, days) {
                Err(Error::Invalid { field: Some(named), .. }) => assert_eq!(named, field, "{start} {target} {days}"),
                other => panic!("{start} {target} {days}: {other:?}"),
            }
        }
    }

    #[test]
    fn days_count_from_enrolment_and_campaigns_are_capped_while_ramping() {
        let enrolled = NaiveDate::from_ymd_opt(2026, 12, 30).unwrap();
        assert_eq!(day_number(enrolled, enrolled), 1);
        assert_eq!(day_number(enrolled, NaiveDate::from_ymd_opt(2027, 1, 2).unwrap()), 4);
        let curve = Curve::default();
        assert_eq!(campaign_allowance(&curve, 1, 0), Some(2));
        assert_eq!(campaign_allowance(&curve, 1, 5), Some(0));
        assert_eq!(campaign_allowance(&curve, 4, 3), Some(8));
        assert_eq!(campaign_allowance(&curve, 14, 100), None);
    }
}
