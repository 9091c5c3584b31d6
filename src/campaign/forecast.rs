//! When will the last step of a campaign go out, given its pool, its caps and its window? A
//! forecast for the campaign page, not a promise: it simulates the sends day by day from now.
//!
//! # Inputs
//! - the work: every active lead's remaining steps. Its next step is due at its `due_at` (not
//!   before now); each later step is due its delay after the simulated send of the one before,
//!   as the engine reckons it ([`windows::due_after`]). A draft is forecast as if started now
//!   (every active lead of its lists, due for the first step), a paused campaign as if resumed.
//! - the capacity of a day: the sum over the pool's mailboxes that may send of what each may
//!   still send (today: its daily limit minus what it sent today, everything it sends counted;
//!   later days: its whole limit), each also bounded by how many minimum gaps (plus half the
//!   jitter, the average) fit in the day's window; then at most the campaign's daily cap (today:
//!   what is left of it).
//! - the days: local days in the campaign's zone, with the campaign's window.
//!
//! # Simplifications (said so on the page)
//! Every lead is timed in the campaign's zone, even when the campaign follows each lead's own;
//! a follow-up may go from any pool mailbox (the engine keeps the first step's mailbox); other
//! senders using the same mailboxes on later days are not foreseen; a mailbox's day is taken to
//! be the campaign's.
//!
//! # Algorithm
//! One bucket of work per day of the horizon ([`HORIZON_DAYS`]), filled in due order (the leads
//! are read by `due_at` from their index). Each day, in order: if the window opens, it sends up
//! to the day's capacity, first the backlog (work due on earlier days that did not fit), then
//! the day's bucket, each at the later of its due time and the next slot (the window's length
//! shared evenly among the day's capacity); a send's next step goes into the bucket of its due
//! day, or today's queue when it falls later today. What does not fit joins the backlog. The
//! last send is the forecast; the work left after the horizon is "later than" it. Each piece of
//! work is moved a constant number of times, so a forecast is O(leads × steps + days).

use std::collections::VecDeque;

use chrono_tz::Tz;
use rusqlite::Connection;

use crate::campaign::campaigns::{self, Campaign, CampaignStatus};
use crate::campaign::rotation;
use crate::campaign::windows::{self, Delay, Window};
use crate::error::Result;

/// Days simulated at most.
pub const HORIZON_DAYS: usize = 365;

/// One mailbox of the pool that may send.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Capacity {
    pub daily_limit: i64,
    /// What it may still send today.
    pub left_today: i64,
}

/// What the simulation works from (see the module doc).
#[derive(Debug, Clone)]
pub struct Inputs {
    pub window: Window,
    /// Each step's delay, in order.
    pub delays: Vec<Delay>,
    /// (steps done, due at) of each active lead.
    pub leads: Vec<(usize, i64)>,
    /// The pool's mailboxes that may send (paused ones left out).
    pub mailboxes: Vec<Capacity>,
    /// 0: none.
    pub daily_cap: u32,
    pub cap_left_today: i64,
    /// The average spacing of two sends of one mailbox (gap plus half the jitter); 0: none.
    pub spacing_seconds: i64,
    pub now: i64,
}

/// Why the work never goes out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Never {
    /// No mailbox of the pool may send (none, all paused, or all with a daily limit of 0).
    NoMailbox,
    /// The window never opens.
    NoWindow,
}

/// The forecast's answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// Nothing is left to send.
    Done,
    /// The last send goes out at about this instant.
    LastSend {
        at: i64,
    },
    /// Sends are still left after the horizon.
    Beyond {
        left: u64,
        horizon: i64,
    },
    Never(Never),
}

/// A campaign's forecast.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Forecast {
    pub outcome: Outcome,
    /// Sends left (remaining steps of the active leads).
    pub remaining: u64,
    /// When the next send goes, as simulated.
    pub next_send: Option<i64>,
    /// The zone the dates are given in (the campaign's).
    pub zone: Tz,
}

impl Forecast {
    /// A date for people in the campaign's zone: "Wed 9 Dec 2026".
    pub fn date(&self, at: i64) -> String {
        chrono::DateTime::from_timestamp(at, 0)
            .map(|t| t.with_timezone(&self.zone).format("%a %-d %b %Y").to_string())
            .unwrap_or_default()
    }

    /// The forecast in one sentence.
    pub fn describe(&self) -> String {
        let sends = |n: u64| if n == 1 { "1 send".to_string() } else { format!("{n} sends") };
        match self.outcome {
            Outcome::Done => "Nothing is left to send.".into(),
            Outcome::LastSend { at } => format!(
                "{} left; the last step goes out around {} ({}).",
                sends(self.remaining),
                self.date(at),
                self.zone.name()
            ),
            Outcome::Beyond { left, horizon } => format!(
                "{} left; at this pace {} are still left on {}, a year from now.",
                sends(self.remaining),
                sends(left),
                self.date(horizon)
            ),
            Outcome::Never(Never::NoMailbox) => format!(
                "{} left, but never sent: no mailbox of the pool may send (add one, resume a paused one or \
                 raise its daily limit).",
                sends(self.remaining)
            ),
            Outcome::Never(Never::NoWindow) => {
                format!("{} left, but never sent: the send window never opens.", sends(self.remaining))
            }
        }
    }

    /// A short form for a table cell: "Next Mon 7 Dec 2026, last Wed 9 Dec 2026", "Nothing
    /// left", "Never: ...".
    pub fn short(&self) -> String {
        match self.outcome {
            Outcome::Done => "Nothing left".into(),
            Outcome::LastSend { at } => match self.next_send.map(|next| self.date(next)) {
                Some(next) if next != self.date(at) => format!("Next {next}, last {}", self.date(at)),
                _ => format!("Last send {}", self.date(at)),
            },
            Outcome::Beyond { .. } => "Over a year".into(),
            Outcome::Never(_) => "Never: see the campaign".into(),
        }
    }
}

/// A piece of work: the step to send (its index) and when it is due.
#[derive(Debug, Clone, Copy)]
struct Work {
    due: i64,
    step: usize,
}

/// The local days of the horizon: [start, end) each.
fn days_from(now: i64, zone: Tz) -> Vec<(i64, i64)> {
    let mut days = Vec::with_capacity(HORIZON_DAYS);
    let mut day = windows::local_day_range(now, zone);
    for _ in 0..HORIZON_DAYS {
        days.push(day);
        day = windows::local_day_range(day.1, zone);
    }
    days
}

/// The open part of a day: [open, close), or None when the window stays shut that day.
fn open_part(window: &Window, (start, end): (i64, i64), now: i64) -> Option<(i64, i64)> {
    let open = window.next_open(start.max(now)).filter(|open| *open < end)?;
    let close = window.closes_at(open).unwrap_or(end).min(end);
    Some((open, close))
}

/// How many sends fit in an open part of `seconds` on day `day` (see the module doc).
fn day_capacity(inputs: &Inputs, day: usize, seconds: i64) -> i64 {
    let by_gap = if inputs.spacing_seconds > 0 { seconds / inputs.spacing_seconds + 1 } else { i64::MAX };
    let pool: i64 = inputs
        .mailboxes
        .iter()
        .map(|m| if day == 0 { m.left_today } else { m.daily_limit }.max(0).min(by_gap))
        .fold(0i64, i64::saturating_add);
    match (inputs.daily_cap, day) {
        (0, _) => pool,
        (_, 0) => pool.min(inputs.cap_left_today.max(0)),
        (cap, _) => pool.min(i64::from(cap)),
    }
}

/// Runs the simulation of the module doc.
pub fn simulate(inputs: &Inputs) -> Forecast {
    let steps = inputs.delays.len();
    let remaining: u64 =
        inputs.leads.iter().map(|(done, _)| u64::try_from(steps.saturating_sub(*done)).unwrap_or(0)).sum();
    let zone = inputs.window.zone;
    let answer = |outcome, next_send| Forecast { outcome, remaining, next_send, zone };
    if remaining == 0 {
        return answer(Outcome::Done, None);
    }
    if !inputs.window.can_open() {
        return answer(Outcome::Never(Never::NoWindow), None);
    }
    if inputs.mailboxes.iter().all(|m| m.daily_limit <= 0 && m.left_today <= 0) {
        return answer(Outcome::Never(Never::NoMailbox), None);
    }
    let days = days_from(inputs.now, zone);
    let day_of = |at: i64| days.partition_point(|(_, end)| *end <= at);
    let mut buckets: Vec<VecDeque<Work>> = vec![VecDeque::new(); days.len()];
    let mut left = remaining;
    for (done, due) in &inputs.leads {
        if *done < steps {
            let work = Work { due: (*due).max(inputs.now), step: *done };
            if let Some(bucket) = buckets.get_mut(day_of(work.due)) {
                bucket.push_back(work);
            }
        }
    }
    let mut backlog: VecDeque<Work> = VecDeque::new();
    let (mut last, mut next_send) = (None, None);
    for day in 0..days.len() {
        let mut today = std::mem::take(&mut buckets[day]);
        let Some((open, close)) = open_part(&inputs.window, days[day], inputs.now) else {
            backlog.append(&mut today);
            continue;
        };
        let capacity = day_capacity(inputs, day, close - open);
        let slot = (close - open) / capacity.max(1);
        let mut sent = 0;
        let mut later = VecDeque::new();
        while sent < capacity {
            let Some(work) = backlog.pop_front().or_else(|| today.pop_front()) else { break };
            if work.due >= close {
                later.push_back(work);
                continue;
            }
            let at = work.due.max(open + sent * slot).min(close - 1);
            sent += 1;
            left -= 1;
            last = Some(at);
            next_send.get_or_insert(at);
            if let Some(delay) = inputs.delays.get(work.step + 1) {
                let next = Work { due: windows::due_after(at, *delay, zone), step: work.step + 1 };
                match day_of(next.due) {
                    d if d == day => today.push_back(next),
                    d => {
                        if let Some(bucket) = buckets.get_mut(d) {
                            bucket.push_back(next);
                        }
                    }
                }
            }
        }
        backlog.append(&mut today);
        backlog.append(&mut later);
        if left == 0 {
            return answer(Outcome::LastSend { at: last.unwrap_or(open) }, next_send);
        }
    }
    let horizon = days.last().map_or(inputs.now, |(_, end)| *end);
    answer(Outcome::Beyond { left, horizon }, next_send)
}

/// The forecast of a campaign now (see the module doc for how each state is read).
pub fn forecast(conn: &Connection, campaign: &Campaign, now: i64) -> Result<Forecast> {
    let s = &campaign.settings;
    let steps = campaigns::steps(conn, campaign.id)?;
    let leads = match campaign.status {
        CampaignStatus::Completed => Vec::new(),
        CampaignStatus::Draft => {
            let first = campaigns::first_due(conn, campaign, now)?;
            let count: i64 = conn.query_row(
                "SELECT count(DISTINCT m.lead_id) FROM campaign_lists c JOIN lead_list_members m ON m.list_id = c.list_id \
                 JOIN leads l ON l.id = m.lead_id WHERE c.campaign_id = ?1 AND l.status = 'active'",
                [campaign.id],
                |row| row.get(0),
            )?;
            vec![(0, first); usize::try_from(count).unwrap_or(0)]
        }
        CampaignStatus::Active | CampaignStatus::Paused => active_leads(conn, campaign.id)?,
    };
    let mut mailboxes = Vec::new();
    for id in campaigns::pool(conn, campaign.id)? {
        let Some(sender) = rotation::load(conn, id, s.min_gap_seconds, s.jitter_seconds, now)? else { continue };
        let Some(mailbox) = crate::mailbox::sending(conn, id)? else { continue };
        if sender.may_send {
            mailboxes.push(Capacity { daily_limit: mailbox.daily_limit, left_today: sender.remaining });
        }
    }
    let (start, end) = windows::local_day_range(now, s.time_zone);
    let sent_today: i64 = conn
        .prepare_cached(
            "SELECT count(*) FROM campaign_sends WHERE campaign_id = ?1 AND sent_at >= ?2 AND sent_at < ?3",
        )?
        .query_row((campaign.id, start, end), |row| row.get(0))?;
    let inputs = Inputs {
        window: campaign.window(),
        delays: steps.iter().map(campaigns::Step::delay).collect(),
        leads,
        mailboxes,
        daily_cap: s.daily_cap,
        cap_left_today: i64::from(s.daily_cap) - sent_today,
        spacing_seconds: i64::from(s.min_gap_seconds) + i64::from(s.jitter_seconds) / 2,
        now,
    };
    Ok(simulate(&inputs))
}

/// (steps done, due at) of the campaign's active leads, by due time.
fn active_leads(conn: &Connection, campaign: i64) -> Result<Vec<(usize, i64)>> {
    let mut stmt = conn.prepare_cached(
        "SELECT steps_done, due_at FROM campaign_leads INDEXED BY campaign_leads_due \
         WHERE campaign_id = ?1 AND status = 'active' ORDER BY due_at",
    )?;
    let rows =
        stmt.query_map([campaign], |row| Ok((usize::try_from(row.get::<_, i64>(0)?).unwrap_or(0), row.get(1)?)))?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}

#[cfg(test)]
mod tests {
    use chrono::{TimeZone, Utc};

    use super::*;

    const HOUR: i64 = 3600;
    const DAY: i64 = 24 * HOUR;
    const WEEKDAYS: [bool; 7] = [true, true, true, true, true, false, false];

    /// Monday 2026-03-02 08:00 UTC.
    fn monday_morning() -> i64 {
        Utc.with_ymd_and_hms(2026, 3, 2, 8, 0, 0).unwrap().timestamp()
    }

    fn inputs(days: [bool; 7], leads: usize, delays: Vec<Delay>, limits: &[i64]) -> Inputs {
        let now = monday_morning();
        Inputs {
            window: Window { zone: Tz::UTC, days, start: 9 * 60, end: 17 * 60 },
            delays,
            leads: vec![(0, now); leads],
            mailboxes: limits.iter().map(|&l| Capacity { daily_limit: l, left_today: l }).collect(),
            daily_cap: 0,
            cap_left_today: 0,
            spacing_seconds: 0,
            now,
        }
    }

    fn last_day(forecast: &Forecast) -> String {
        match forecast.outcome {
            Outcome::LastSend { at } => forecast.date(at),
            other => panic!("expected a last send, got {other:?}"),
        }
    }

    #[test]
    fn capacity_bound_the_pool_s_limits_spread_the_work_over_days() {
        // 100 first steps, two mailboxes of 5 a day: 10 days, every day open.
        let forecast = simulate(&inputs([true; 7], 100, vec![Delay::Days(0)], &[5, 5]));
        assert_eq!(forecast.remaining, 100);
        assert_eq!(last_day(&forecast), "Wed 11 Mar 2026", "day 10 counting Monday 2 March");
        assert_eq!(forecast.next_send, Some(monday_morning() + HOUR), "at the window's opening");
        // The campaign's cap is the tighter bound: 4 a day, 3 left today.
        let mut capped = inputs([true; 7], 100, vec![Delay::Days(0)], &[5, 5]);
        (capped.daily_cap, capped.cap_left_today) = (4, 3);
        assert_eq!(last_day(&simulate(&capped)), "Fri 27 Mar 2026", "3 today, then 4 a day for 25 days");
        // Mailboxes that already sent today have less left today only.
        let mut busy = inputs([true; 7], 10, vec![Delay::Days(0)], &[5, 5]);
        busy.mailboxes[0].left_today = 0;
        assert_eq!(last_day(&simulate(&busy)), "Tue 3 Mar 2026");
    }

    #[test]
    fn the_minimum_gap_bounds_a_mailbox_within_its_window() {
        // An 8-hour window and a gap of 2 hours: 5 sends a mailbox a day, whatever its limit.
        let mut gapped = inputs([true; 7], 10, vec![Delay::Days(0)], &[100]);
        gapped.spacing_seconds = 2 * HOUR;
        assert_eq!(last_day(&simulate(&gapped)), "Tue 3 Mar 2026");
    }

    #[test]
    fn delay_bound_the_last_step_waits_out_its_delays() {
        // Plenty of capacity: step 1 on Monday, step 2 five days later, step 3 48 hours after.
        let forecast =
            simulate(&inputs([true; 7], 20, vec![Delay::Days(0), Delay::Days(5), Delay::Hours(48)], &[1000]));
        assert_eq!(forecast.remaining, 60);
        assert_eq!(last_day(&forecast), "Mon 9 Mar 2026");
        // Leads partway through: only their remaining steps count.
        let mut partway = inputs([true; 7], 0, vec![Delay::Days(0), Delay::Days(5)], &[1000]);
        partway.leads = vec![(1, monday_morning() + 2 * DAY), (2, monday_morning())];
        let forecast = simulate(&partway);
        assert_eq!(forecast.remaining, 1);
        assert_eq!(last_day(&forecast), "Wed 4 Mar 2026");
    }

    #[test]
    fn weekends_are_skipped_by_the_window_and_by_business_days() {
        // Friday 6 March: 15 first steps at 10 a day on weekdays: 10 on Friday, 5 on Monday.
        let mut friday = inputs(WEEKDAYS, 15, vec![Delay::Days(0)], &[10]);
        friday.now += 4 * DAY;
        friday.leads = vec![(0, friday.now); 15];
        assert_eq!(last_day(&simulate(&friday)), "Mon 9 Mar 2026");
        // A follow-up 1 business day after a Friday send goes on Monday.
        let mut follow_up = friday.clone();
        follow_up.leads = vec![(0, friday.now)];
        follow_up.delays = vec![Delay::Days(0), Delay::BusinessDays(1)];
        assert_eq!(last_day(&simulate(&follow_up)), "Mon 9 Mar 2026");
        // A calendar day after Friday is Saturday, outside the window: Monday again.
        follow_up.delays = vec![Delay::Days(0), Delay::Days(1)];
        assert_eq!(last_day(&simulate(&follow_up)), "Mon 9 Mar 2026");
    }

    #[test]
    fn no_capacity_or_no_window_is_never_and_no_work_is_done() {
        let paused = simulate(&inputs([true; 7], 3, vec![Delay::Days(0)], &[]));
        assert_eq!(paused.outcome, Outcome::Never(Never::NoMailbox));
        assert!(paused.describe().contains("never sent"), "{}", paused.describe());
        let zero = simulate(&inputs([true; 7], 3, vec![Delay::Days(0)], &[0]));
        assert_eq!(zero.outcome, Outcome::Never(Never::NoMailbox));
        let spread = simulate(&inputs([true; 7], 20, vec![Delay::Days(0)], &[10]));
        assert_eq!(spread.short(), "Next Mon 2 Mar 2026, last Tue 3 Mar 2026");
        let shut = simulate(&inputs([false; 7], 3, vec![Delay::Days(0)], &[10]));
        assert_eq!(shut.outcome, Outcome::Never(Never::NoWindow));
        let done = simulate(&inputs([true; 7], 0, vec![Delay::Days(0)], &[10]));
        assert_eq!((done.outcome, done.remaining), (Outcome::Done, 0));
        // A year is not enough for 1,000 sends at 1 a day.
        let slow = simulate(&inputs([true; 7], 1000, vec![Delay::Days(0)], &[1]));
        assert!(matches!(slow.outcome, Outcome::Beyond { left: 635, .. }), "{:?}", slow.outcome);
    }
}
