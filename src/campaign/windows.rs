//! Send windows and follow-up delays, reckoned in each lead's IANA time zone.
//!
//! Every instant is Unix seconds (`i64`) taken from the injected clock; this module never reads
//! the system clock. A [`Window`] is a set of weekdays plus `[start, end)` minutes after local
//! midnight. It is open at an instant when the wall clock of its zone at that instant shows an
//! enabled weekday and a minute `m` with `start <= m < end`. The wall clock is what decides, so
//! daylight-saving changes fall out of that one rule:
//!
//! - **Spring forward (gap).** Wall-clock times inside the gap never happen, so they are never
//!   open: a 02:00–03:00 window on the day New York jumps from 02:00 to 03:00 is closed all day.
//!   A window whose start falls in the gap opens at the first instant after the jump, when the
//!   clock already shows a time inside the window (03:00 for a 02:30–04:00 window).
//! - **Fall back (fold).** The repeated hour is shown twice, and is open both times when it lies
//!   inside the window.
//!
//! [`Window::next_open`] and [`Window::closes_at`] walk from event to event instead of minute by
//! minute. Between two changes of the zone's UTC offset the wall clock runs with real time, so an
//! open period can only begin where the clock shows the window's start on an enabled day, or
//! where the offset changes; it can only end where the clock shows the window's end, or where the
//! offset changes. Each step takes the earlier of the next such boundary and the next offset
//! change (found per day by comparing the offsets at both ends of the day and bisecting when they
//! differ), then asks [`Window::is_open`] there. A valid window is found within eight local dates;
//! a step costs a fixed number of offset look-ups, about twenty for a day with a change.
//!
//! A wall-clock time is turned back into an instant with "first instant showing it": the earlier
//! of the two in a fold, and the end of the gap when a gap skips it. [`due_after`] uses the same
//! rule, so a follow-up "3 days later" goes out at the same local time across a change, and
//! [`next_local_midnight`] gives 01:00 on a day whose midnight is skipped.

use chrono::{
    DateTime, Datelike, Days, LocalResult, NaiveDate, NaiveDateTime, NaiveTime, Offset, TimeDelta, TimeZone, Timelike,
    Utc, Weekday,
};
use chrono_tz::Tz;

/// Minutes in a day; also the largest `end` a window can have (24:00).
const MINUTES_PER_DAY: u32 = 1440;
const SECONDS_PER_HOUR: i64 = 3600;
const SECONDS_PER_DAY: i64 = 86_400;
/// Half-width of the bracket searched around a wall-clock time for the instant showing it; wider
/// than any UTC offset (they stay within ±26 hours).
const OFFSET_BRACKET_SECONDS: i64 = 2 * SECONDS_PER_DAY;
/// Instants are clamped into chrono's range, with a week to spare for offsets and date steps.
const EARLIEST_INSTANT: i64 = DateTime::<Utc>::MIN_UTC.timestamp() + 7 * SECONDS_PER_DAY;
const LATEST_INSTANT: i64 = DateTime::<Utc>::MAX_UTC.timestamp() - 7 * SECONDS_PER_DAY;
/// Dates after today looked at for the next window start: any enabled weekday is among them.
const DATES_AHEAD: u64 = 7;
/// Upper bound on the steps of one walk; a week of starts, ends and offset changes needs far fewer.
const MAX_STEPS: usize = 64;
/// Short (stored) and long names of the days of the week, Monday first.
const DAY_NAMES: [(&str, &str); 7] = [
    ("mon", "monday"),
    ("tue", "tuesday"),
    ("wed", "wednesday"),
    ("thu", "thursday"),
    ("fri", "friday"),
    ("sat", "saturday"),
    ("sun", "sunday"),
];

/// Why a day list, a time of day, a time zone or a window was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WindowError {
    /// A day name that is not one of mon..sun or monday..sunday.
    #[error("\"{0}\" is not a day of the week such as mon or monday.")]
    UnknownDay(String),
    /// A time of day that is not `H:MM` or `HH:MM` between 00:00 and 24:00.
    #[error("\"{0}\" is not a time of day such as 09:00.")]
    BadClock(String),
    /// A name that is not an IANA time zone.
    #[error("\"{0}\" is not a time zone such as Europe/Berlin or America/New_York.")]
    UnknownZone(String),
    /// A window with no day of the week.
    #[error("Choose at least one day of the week for the send window.")]
    NoDays,
    /// A window whose start is not before its end, or that ends after 24:00.
    #[error(
        "A send window must start before it ends and end by 24:00, so {} to {} is not one.",
        format_clock(*start),
        format_clock(*end)
    )]
    BadHours {
        /// Minutes after midnight the window was to open.
        start: u32,
        /// Minutes after midnight the window was to close.
        end: u32,
    },
}

/// A weekly send window: days of the week and [start, end) minutes after local midnight, in a zone.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Window {
    /// The time zone whose wall clock the window follows.
    pub zone: Tz,
    /// Enabled days, index 0 = Monday.
    pub days: [bool; 7],
    /// Opening minute after local midnight (inclusive), 0..1440.
    pub start: u32,
    /// Closing minute after local midnight (exclusive), up to 1440 (24:00).
    pub end: u32,
}

impl Window {
    /// A window that can open: at least one day, and `start` before `end`, which is at most 24:00.
    pub fn new(zone: Tz, days: [bool; 7], start: u32, end: u32) -> Result<Window, WindowError> {
        if !days.contains(&true) {
            return Err(WindowError::NoDays);
        }
        if start >= end || end > MINUTES_PER_DAY {
            return Err(WindowError::BadHours { start, end });
        }
        Ok(Window { zone, days, start, end })
    }

    /// Whether the window is ever open: some day is enabled and `start` comes before `end`.
    pub fn can_open(&self) -> bool {
        self.days.contains(&true) && self.start < self.end_minute()
    }

    /// Whether the window is open at `at`.
    pub fn is_open(&self, at: i64) -> bool {
        self.is_open_at_wall_time(wall_clock(at, self.zone))
    }

    /// The first instant >= at when the window is open (at itself when open); None when the window
    /// can never open (no days, or start >= end).
    pub fn next_open(&self, at: i64) -> Option<i64> {
        if !self.can_open() {
            return None;
        }
        let mut candidate = at;
        for _ in 0..MAX_STEPS {
            if self.is_open(candidate) {
                return Some(candidate);
            }
            let start = self.next_start_after(candidate)?;
            candidate = first_offset_change(candidate, start, self.zone).unwrap_or(start);
        }
        None
    }

    /// When the open period containing `at` closes (None if closed at `at`).
    ///
    /// Consecutive days that run into each other (a window ending at 24:00 followed by one
    /// starting at 00:00) make one period. A window open around the clock every day never
    /// closes, and gives None too.
    pub fn closes_at(&self, at: i64) -> Option<i64> {
        if !self.is_open(at) || self.is_always_open() {
            return None;
        }
        let mut open_at = at;
        for _ in 0..MAX_STEPS {
            let end = self.next_end_after(open_at)?;
            let next = first_offset_change(open_at, end, self.zone).unwrap_or(end);
            if !self.is_open(next) {
                return Some(next);
            }
            open_at = next;
        }
        None
    }

    /// The same days and hours, in another time zone.
    pub fn with_zone(&self, zone: Tz) -> Window {
        Window { zone, ..self.clone() }
    }

    /// `end`, capped at 24:00.
    fn end_minute(&self) -> u32 {
        self.end.min(MINUTES_PER_DAY)
    }

    fn is_always_open(&self) -> bool {
        self.days.iter().all(|enabled| *enabled) && self.start == 0 && self.end >= MINUTES_PER_DAY
    }

    fn is_enabled(&self, date: NaiveDate) -> bool {
        self.days[weekday_index(date.weekday())]
    }

    fn is_open_at_wall_time(&self, wall: NaiveDateTime) -> bool {
        let minute = minute_of_day(wall);
        self.is_enabled(wall.date()) && self.start <= minute && minute < self.end_minute()
    }

    /// The first instant after `after` at which the wall clock shows the window's start on an
    /// enabled day (or at which a gap skipping that start ends).
    fn next_start_after(&self, after: i64) -> Option<i64> {
        let today = wall_clock(after, self.zone).date();
        (0..=DATES_AHEAD)
            .filter_map(|ahead| today.checked_add_days(Days::new(ahead)))
            .filter(|date| self.is_enabled(*date))
            .find_map(|date| first_showing_after(at_minute(date, self.start)?, self.zone, after))
    }

    /// The first instant after `after` at which the wall clock shows the end of the window of
    /// the local day `after` falls on.
    fn next_end_after(&self, after: i64) -> Option<i64> {
        let today = wall_clock(after, self.zone).date();
        first_showing_after(at_minute(today, self.end_minute())?, self.zone, after)
    }
}

/// How long a campaign step waits after the previous send.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Delay {
    /// Calendar days, keeping the local wall-clock time.
    Days(u32),
    /// Monday-to-Friday days, keeping the local wall-clock time.
    BusinessDays(u32),
    /// Exact hours of elapsed time.
    Hours(u32),
}

/// When a step with this delay becomes due after the previous send at `from`, in `zone`.
///
/// - `Hours` adds exact hours of elapsed time.
/// - `Days` adds calendar days keeping the local wall-clock time, so a follow-up 3 days later is
///   at the same local hour even across a daylight-saving change. If that local time does not
///   exist (a gap), it moves forward to the first valid instant; if it happens twice (a fold),
///   it takes the earlier.
/// - `BusinessDays` does the same but counts only Monday to Friday, skipping Saturdays and
///   Sundays: Friday plus one is Monday.
///
/// A delay of zero days gives `from` itself.
pub fn due_after(from: i64, delay: Delay, zone: Tz) -> i64 {
    match delay {
        Delay::Hours(hours) => from.saturating_add(i64::from(hours) * SECONDS_PER_HOUR),
        Delay::Days(days) => same_wall_time_on(from, zone, |date| date.checked_add_days(Days::new(u64::from(days))))
            .unwrap_or_else(|| from.saturating_add(i64::from(days) * SECONDS_PER_DAY)),
        Delay::BusinessDays(days) => same_wall_time_on(from, zone, |date| add_business_days(date, days))
            .unwrap_or_else(|| from.saturating_add(i64::from(days) * SECONDS_PER_DAY)),
    }
}

/// The start of the next local day (local midnight) after `at` in `zone`, as Unix seconds (for
/// "try again tomorrow").
///
/// When a gap skips midnight, the day starts where the gap ends (01:00 local, say).
pub fn next_local_midnight(at: i64, zone: Tz) -> i64 {
    let today = wall_clock(at, zone).date();
    today
        .succ_opt()
        .and_then(|tomorrow| first_showing_after(tomorrow.and_time(NaiveTime::MIN), zone, at))
        .unwrap_or_else(|| at.saturating_add(SECONDS_PER_DAY))
}

/// The Unix range [start, end) of the local day of `at` in `zone` (see [`local_day`] for its
/// YYYY-MM-DD name). It is 23 or 25 hours long on days of a daylight-saving change.
pub fn local_day_range(at: i64, zone: Tz) -> (i64, i64) {
    let today = wall_clock(at, zone).date();
    let start = first_showing(today.and_time(NaiveTime::MIN), zone).filter(|start| *start <= at).unwrap_or(at);
    (start, next_local_midnight(at, zone))
}

/// The local day of `at` in `zone`, as YYYY-MM-DD.
pub fn local_day(at: i64, zone: Tz) -> String {
    wall_clock(at, zone).date().format("%Y-%m-%d").to_string()
}

/// Parses day names ("mon".."sun" or "monday".."sunday", any case) into enabled days, Monday first.
pub fn parse_days(list: &[String]) -> Result<[bool; 7], WindowError> {
    parse_day_names(list.iter().map(String::as_str))
}

/// Parses the stored form written by [`days_to_string`], such as "mon,tue,wed"; "" is no days.
pub fn parse_days_str(stored: &str) -> Result<[bool; 7], WindowError> {
    parse_day_names(stored.split(',').filter(|name| !name.trim().is_empty()))
}

/// The stored form of enabled days: short names, Monday first, comma-separated ("mon,tue,wed").
pub fn days_to_string(days: &[bool; 7]) -> String {
    DAY_NAMES
        .iter()
        .zip(days)
        .filter(|(_, enabled)| **enabled)
        .map(|((short, _), _)| *short)
        .collect::<Vec<_>>()
        .join(",")
}

/// Parses a time of day `HH:MM` (or `H:MM`) into minutes after midnight: "09:00" is 540, and
/// "24:00" (1440) is accepted as the end of a window.
pub fn parse_clock(text: &str) -> Result<u32, WindowError> {
    let text = text.trim();
    clock_minutes(text).ok_or_else(|| WindowError::BadClock(text.to_string()))
}

/// Formats minutes after midnight as `HH:MM`: 540 is "09:00", 1440 is "24:00".
pub fn format_clock(minutes: u32) -> String {
    format!("{:02}:{:02}", minutes / 60, minutes % 60)
}

/// Parses an IANA time zone name such as "Europe/Berlin".
pub fn parse_zone(name: &str) -> Result<Tz, WindowError> {
    let name = name.trim();
    name.parse::<Tz>().map_err(|_| WindowError::UnknownZone(name.to_string()))
}

fn parse_day_names<'a>(names: impl IntoIterator<Item = &'a str>) -> Result<[bool; 7], WindowError> {
    let mut days = [false; 7];
    for name in names {
        days[day_index(name)?] = true;
    }
    Ok(days)
}

fn day_index(name: &str) -> Result<usize, WindowError> {
    let name = name.trim();
    let lower = name.to_ascii_lowercase();
    DAY_NAMES
        .iter()
        .position(|(short, long)| lower == *short || lower == *long)
        .ok_or_else(|| WindowError::UnknownDay(name.to_string()))
}

fn clock_minutes(text: &str) -> Option<u32> {
    let (hours, minutes) = text.split_once(':')?;
    let digits = |part: &str, lengths: std::ops::RangeInclusive<usize>| {
        lengths.contains(&part.len()) && part.bytes().all(|byte| byte.is_ascii_digit())
    };
    if !digits(hours, 1..=2) || !digits(minutes, 2..=2) {
        return None;
    }
    let hours: u32 = hours.parse().ok()?;
    let minutes: u32 = minutes.parse().ok()?;
    let total = hours * 60 + minutes;
    (minutes < 60 && total <= MINUTES_PER_DAY).then_some(total)
}

fn weekday_index(weekday: Weekday) -> usize {
    match weekday {
        Weekday::Mon => 0,
        Weekday::Tue => 1,
        Weekday::Wed => 2,
        Weekday::Thu => 3,
        Weekday::Fri => 4,
        Weekday::Sat => 5,
        Weekday::Sun => 6,
    }
}

fn is_weekend(date: NaiveDate) -> bool {
    matches!(date.weekday(), Weekday::Sat | Weekday::Sun)
}

/// `count` Monday-to-Friday days after `date`. A weekend start counts from the Friday before
/// it, so Saturday plus one business day is Monday.
fn add_business_days(date: NaiveDate, count: u32) -> Option<NaiveDate> {
    if count == 0 {
        return Some(date);
    }
    let mut day = date;
    while is_weekend(day) {
        day = day.pred_opt()?;
    }
    day = day.checked_add_days(Days::new(u64::from(count / 5) * 7))?;
    for _ in 0..count % 5 {
        day = day.succ_opt()?;
        while is_weekend(day) {
            day = day.succ_opt()?;
        }
    }
    Some(day)
}

/// The first instant showing `from`'s local time of day on the date `shift` moves its local
/// date to; `from` itself when the date does not move.
fn same_wall_time_on(from: i64, zone: Tz, shift: impl FnOnce(NaiveDate) -> Option<NaiveDate>) -> Option<i64> {
    let wall = wall_clock(from, zone);
    let date = shift(wall.date())?;
    if date == wall.date() {
        return Some(from);
    }
    first_showing(date.and_time(wall.time()), zone)
}

/// The wall-clock date and time `zone` shows at `at`.
fn wall_clock(at: i64, zone: Tz) -> NaiveDateTime {
    utc(at).with_timezone(&zone).naive_local()
}

/// `at` as a UTC date-time, clamped into the range chrono can shift by any offset.
fn utc(at: i64) -> DateTime<Utc> {
    DateTime::from_timestamp(at.clamp(EARLIEST_INSTANT, LATEST_INSTANT), 0).unwrap_or_default()
}

/// The UTC offset of `zone` at `at`, in seconds.
fn offset_at(at: i64, zone: Tz) -> i64 {
    i64::from(zone.offset_from_utc_datetime(&utc(at).naive_utc()).fix().local_minus_utc())
}

/// The wall clock at `at` on the scale of [`NaiveDateTime::and_utc`] timestamps, so that it can
/// be compared with a wall-clock time.
fn wall_seconds(at: i64, zone: Tz) -> i64 {
    at.saturating_add(offset_at(at, zone))
}

fn minute_of_day(wall: NaiveDateTime) -> u32 {
    wall.hour() * 60 + wall.minute()
}

/// `minute` minutes after the midnight starting `date` (1440 is the next midnight).
fn at_minute(date: NaiveDate, minute: u32) -> Option<NaiveDateTime> {
    date.and_time(NaiveTime::MIN).checked_add_signed(TimeDelta::minutes(i64::from(minute)))
}

/// The instants at which `zone` shows `wall`: one, two (earlier first) in a fold, none in a gap.
fn showings(wall: NaiveDateTime, zone: Tz) -> LocalResult<i64> {
    zone.from_local_datetime(&wall).map(|shown| shown.timestamp())
}

/// The first instant showing `wall`, or the end of the gap that skips it.
fn first_showing(wall: NaiveDateTime, zone: Tz) -> Option<i64> {
    match showings(wall, zone) {
        LocalResult::Single(at) | LocalResult::Ambiguous(at, _) => Some(at),
        LocalResult::None => gap_end(wall, zone),
    }
}

/// Like [`first_showing`], but the first such instant strictly after `after`.
fn first_showing_after(wall: NaiveDateTime, zone: Tz, after: i64) -> Option<i64> {
    let candidates = match showings(wall, zone) {
        LocalResult::Single(at) => [Some(at), None],
        LocalResult::Ambiguous(earlier, later) => [Some(earlier), Some(later)],
        LocalResult::None => [gap_end(wall, zone), None],
    };
    candidates.into_iter().flatten().find(|at| *at > after)
}

/// The first instant after the gap that skips `wall`: where the clock jumps over it.
///
/// Bisects a bracket wider than any UTC offset, keeping the clock before `wall` at `low` and at
/// or past it at `high`. As `wall` is never shown, the clock jumps over it between the final
/// `low` and `high`, one second apart.
fn gap_end(wall: NaiveDateTime, zone: Tz) -> Option<i64> {
    let target = wall.and_utc().timestamp();
    let mut low = target.checked_sub(OFFSET_BRACKET_SECONDS)?;
    let mut high = target.checked_add(OFFSET_BRACKET_SECONDS)?;
    if wall_seconds(low, zone) >= target || wall_seconds(high, zone) < target {
        return None;
    }
    while high - low > 1 {
        let middle = low + (high - low) / 2;
        if wall_seconds(middle, zone) < target {
            low = middle;
        } else {
            high = middle;
        }
    }
    Some(high)
}

/// The first instant in (from, to] at which `zone`'s UTC offset changes, looked for one day at
/// a time (a zone changes its offset at most once a day).
fn first_offset_change(from: i64, to: i64, zone: Tz) -> Option<i64> {
    let mut day_start = from;
    while day_start < to {
        let day_end = day_start.saturating_add(SECONDS_PER_DAY).min(to);
        if let Some(change) = offset_change_within(day_start, day_end, zone) {
            return Some(change);
        }
        day_start = day_end;
    }
    None
}

/// When the offsets at `low` and `high` differ, the instant in (low, high] where the offset
/// changes, by bisection.
fn offset_change_within(mut low: i64, mut high: i64, zone: Tz) -> Option<i64> {
    let before = offset_at(low, zone);
    if offset_at(high, zone) == before {
        return None;
    }
    while high - low > 1 {
        let middle = low + (high - low) / 2;
        if offset_at(middle, zone) == before {
            low = middle;
        } else {
            high = middle;
        }
    }
    Some(high)
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono_tz::{America, Asia, Europe};

    const WEEKDAYS: [bool; 7] = [true, true, true, true, true, false, false];
    const EVERY_DAY: [bool; 7] = [true; 7];

    /// Unix seconds of a UTC date-time.
    fn utc_at(year: i32, month: u32, day: u32, hour: u32, minute: u32) -> i64 {
        Utc.with_ymd_and_hms(year, month, day, hour, minute, 0).single().map(|t| t.timestamp()).unwrap_or_default()
    }

    /// Unix seconds of a local date-time that occurs exactly once in `zone`.
    fn local_at(zone: Tz, year: i32, month: u32, day: u32, hour: u32, minute: u32) -> i64 {
        match zone.with_ymd_and_hms(year, month, day, hour, minute, 0) {
            LocalResult::Single(t) => t.timestamp(),
            other => panic!("{year}-{month}-{day} {hour}:{minute} in {zone} is {other:?}"),
        }
    }

    fn window(zone: Tz, days: [bool; 7], start: &str, end: &str) -> Window {
        let (start, end) = (parse_clock(start).unwrap(), parse_clock(end).unwrap());
        Window::new(zone, days, start, end).unwrap()
    }

    fn office_hours(zone: Tz) -> Window {
        window(zone, WEEKDAYS, "09:00", "17:00")
    }

    #[test]
    fn start_is_inclusive_and_end_exclusive() {
        let berlin = office_hours(Europe::Berlin);
        // 2026-06-01 is a Monday.
        let nine = local_at(Europe::Berlin, 2026, 6, 1, 9, 0);
        let five = local_at(Europe::Berlin, 2026, 6, 1, 17, 0);
        assert!(!berlin.is_open(nine - 1));
        assert!(berlin.is_open(nine));
        assert!(berlin.is_open(five - 1));
        assert!(!berlin.is_open(five));
    }

    #[test]
    fn weekends_are_skipped() {
        let berlin = office_hours(Europe::Berlin);
        assert!(!berlin.is_open(local_at(Europe::Berlin, 2026, 6, 6, 12, 0)));
        assert!(!berlin.is_open(local_at(Europe::Berlin, 2026, 6, 7, 12, 0)));
        assert!(berlin.is_open(local_at(Europe::Berlin, 2026, 6, 5, 12, 0)));
    }

    #[test]
    fn next_open_crosses_the_weekend() {
        let berlin = office_hours(Europe::Berlin);
        let friday_close = local_at(Europe::Berlin, 2026, 6, 5, 17, 0);
        let monday_nine = local_at(Europe::Berlin, 2026, 6, 8, 9, 0);
        assert_eq!(berlin.next_open(friday_close), Some(monday_nine));
        assert_eq!(berlin.next_open(local_at(Europe::Berlin, 2026, 6, 7, 23, 59)), Some(monday_nine));
        assert_eq!(berlin.next_open(local_at(Europe::Berlin, 2026, 6, 8, 7, 0)), Some(monday_nine));
        assert_eq!(berlin.next_open(monday_nine + 60), Some(monday_nine + 60));
    }

    #[test]
    fn closes_at_the_end_of_the_open_period() {
        let berlin = office_hours(Europe::Berlin);
        let monday_ten = local_at(Europe::Berlin, 2026, 6, 1, 10, 0);
        assert_eq!(berlin.closes_at(monday_ten), Some(local_at(Europe::Berlin, 2026, 6, 1, 17, 0)));
        assert_eq!(berlin.closes_at(local_at(Europe::Berlin, 2026, 6, 1, 18, 0)), None);

        let whole_weekdays = window(Europe::Berlin, WEEKDAYS, "00:00", "24:00");
        assert_eq!(whole_weekdays.closes_at(monday_ten), Some(local_at(Europe::Berlin, 2026, 6, 6, 0, 0)));
        let always = window(Europe::Berlin, EVERY_DAY, "00:00", "24:00");
        assert_eq!(always.closes_at(monday_ten), None);
        assert_eq!(always.next_open(monday_ten), Some(monday_ten));
    }

    #[test]
    fn the_same_instant_differs_by_zone() {
        // Monday 10:00 in Tokyo is Sunday 18:00 in Los Angeles.
        let instant = utc_at(2026, 6, 1, 1, 0);
        let tokyo = office_hours(Asia::Tokyo);
        let los_angeles = tokyo.with_zone(America::Los_Angeles);
        assert!(tokyo.is_open(instant));
        assert!(!los_angeles.is_open(instant));
        assert_eq!(los_angeles.next_open(instant), Some(local_at(America::Los_Angeles, 2026, 6, 1, 9, 0)));
        assert_eq!(tokyo.closes_at(instant), Some(local_at(Asia::Tokyo, 2026, 6, 1, 17, 0)));
    }

    #[test]
    fn new_york_spring_forward_gap_is_never_open() {
        // 2026-03-08: 02:00 EST (07:00 UTC) jumps to 03:00 EDT.
        let jump = utc_at(2026, 3, 8, 7, 0);
        let gap_hour = window(America::New_York, EVERY_DAY, "02:00", "03:00");
        assert!(!gap_hour.is_open(jump - 1));
        assert!(!gap_hour.is_open(jump));
        let midnight = local_at(America::New_York, 2026, 3, 8, 0, 0);
        assert_eq!(gap_hour.next_open(midnight), Some(local_at(America::New_York, 2026, 3, 9, 2, 0)));

        let half_in_gap = window(America::New_York, EVERY_DAY, "02:30", "04:00");
        assert_eq!(half_in_gap.next_open(midnight), Some(jump));
        assert_eq!(half_in_gap.closes_at(jump), Some(jump + SECONDS_PER_HOUR));

        let ends_in_gap = window(America::New_York, EVERY_DAY, "01:00", "02:30");
        assert_eq!(ends_in_gap.closes_at(jump - 1800), Some(jump));
    }

    #[test]
    fn new_york_fall_back_hour_is_open_both_times() {
        // 2026-11-01: 02:00 EDT (06:00 UTC) falls back to 01:00 EST.
        let fall = utc_at(2026, 11, 1, 6, 0);
        let repeated = window(America::New_York, EVERY_DAY, "01:00", "02:00");
        assert!(repeated.is_open(fall - 1800));
        assert!(repeated.is_open(fall + 1800));
        assert_eq!(repeated.closes_at(fall - 1800), Some(fall + SECONDS_PER_HOUR));

        let first_half = window(America::New_York, EVERY_DAY, "00:30", "01:30");
        assert_eq!(first_half.closes_at(fall - 3600), Some(fall - 1800));
        assert!(!first_half.is_open(fall - 900));
        assert_eq!(first_half.next_open(fall - 900), Some(fall));
        assert_eq!(first_half.closes_at(fall), Some(fall + 1800));
    }

    #[test]
    fn berlin_spring_forward_and_fall_back() {
        // 2026-03-29: 02:00 CET (01:00 UTC) jumps to 03:00 CEST.
        let jump = utc_at(2026, 3, 29, 1, 0);
        let gap_hour = window(Europe::Berlin, EVERY_DAY, "02:00", "03:00");
        assert!(!gap_hour.is_open(jump - 1));
        assert!(!gap_hour.is_open(jump));
        let half_in_gap = window(Europe::Berlin, EVERY_DAY, "02:30", "04:00");
        assert_eq!(half_in_gap.next_open(local_at(Europe::Berlin, 2026, 3, 29, 0, 0)), Some(jump));

        // 2026-10-25: 03:00 CEST (01:00 UTC) falls back to 02:00 CET.
        let fall = utc_at(2026, 10, 25, 1, 0);
        assert!(gap_hour.is_open(fall - 1800));
        assert!(gap_hour.is_open(fall + 1800));
        assert_eq!(gap_hour.closes_at(fall - 1800), Some(fall + SECONDS_PER_HOUR));
        assert_eq!(gap_hour.next_open(utc_at(2026, 10, 24, 23, 0)), Some(fall - SECONDS_PER_HOUR));
    }

    /// The answers of a minute-by-minute scan, to check the event walk against.
    fn scanned_next_open(window: &Window, at: i64) -> Option<i64> {
        (0..9 * 1440).map(|minute| at + minute * 60).find(|t| window.is_open(*t))
    }

    fn scanned_closes_at(window: &Window, at: i64) -> Option<i64> {
        if !window.is_open(at) {
            return None;
        }
        (1..9 * 1440).map(|minute| at + minute * 60).find(|t| !window.is_open(*t))
    }

    #[test]
    fn the_walk_agrees_with_a_minute_scan_around_dst_changes() {
        let changes = [
            (America::New_York, utc_at(2026, 3, 8, 7, 0)),
            (America::New_York, utc_at(2026, 11, 1, 6, 0)),
            (Europe::Berlin, utc_at(2026, 3, 29, 1, 0)),
            (Europe::Berlin, utc_at(2026, 10, 25, 1, 0)),
            (America::Santiago, utc_at(2026, 9, 6, 4, 0)),
            (chrono_tz::Australia::Lord_Howe, utc_at(2026, 4, 4, 15, 0)),
        ];
        let hours = [
            ("00:00", "01:00"),
            ("00:30", "01:30"),
            ("01:00", "02:00"),
            ("01:45", "02:15"),
            ("02:00", "03:00"),
            ("02:30", "04:00"),
            ("23:00", "24:00"),
        ];
        let days = [EVERY_DAY, [false, false, false, false, false, false, true]];
        for (zone, change) in changes {
            for (start, end) in hours {
                for enabled in days {
                    let window = window(zone, enabled, start, end);
                    for step in -20..20 {
                        let at = change + step * 1800 + 60 * (step % 3);
                        let context = format!("{zone} {start}-{end} {enabled:?} at {at}");
                        assert_eq!(window.next_open(at), scanned_next_open(&window, at), "next_open {context}");
                        assert_eq!(window.closes_at(at), scanned_closes_at(&window, at), "closes_at {context}");
                    }
                }
            }
        }
    }

    #[test]
    fn days_delay_keeps_the_local_time_across_dst() {
        let friday = local_at(America::New_York, 2026, 3, 6, 9, 30);
        let monday = local_at(America::New_York, 2026, 3, 9, 9, 30);
        assert_eq!(due_after(friday, Delay::Days(3), America::New_York), monday);
        assert_eq!(monday - friday, 3 * SECONDS_PER_DAY - SECONDS_PER_HOUR);

        let before_fall = local_at(Europe::Berlin, 2026, 10, 23, 9, 30);
        let after_fall = local_at(Europe::Berlin, 2026, 10, 26, 9, 30);
        assert_eq!(due_after(before_fall, Delay::Days(3), Europe::Berlin), after_fall);
        assert_eq!(after_fall - before_fall, 3 * SECONDS_PER_DAY + SECONDS_PER_HOUR);
        assert_eq!(due_after(before_fall, Delay::Days(0), Europe::Berlin), before_fall);
    }

    #[test]
    fn days_delay_into_a_gap_or_a_fold() {
        // 02:30 does not exist on 2026-03-08 in New York: the first valid instant is 03:00 EDT.
        let day_before = local_at(America::New_York, 2026, 3, 7, 2, 30);
        assert_eq!(due_after(day_before, Delay::Days(1), America::New_York), utc_at(2026, 3, 8, 7, 0));
        // 01:30 happens twice on 2026-11-01: the earlier is 01:30 EDT (05:30 UTC).
        let day_before = local_at(America::New_York, 2026, 10, 31, 1, 30);
        assert_eq!(due_after(day_before, Delay::Days(1), America::New_York), utc_at(2026, 11, 1, 5, 30));
    }

    #[test]
    fn business_days_skip_the_weekend() {
        let zone = Europe::Berlin;
        let friday = local_at(zone, 2026, 6, 5, 10, 15);
        assert_eq!(due_after(friday, Delay::BusinessDays(1), zone), local_at(zone, 2026, 6, 8, 10, 15));
        assert_eq!(due_after(friday, Delay::BusinessDays(2), zone), local_at(zone, 2026, 6, 9, 10, 15));
        assert_eq!(due_after(friday, Delay::BusinessDays(5), zone), local_at(zone, 2026, 6, 12, 10, 15));
        assert_eq!(due_after(friday, Delay::BusinessDays(6), zone), local_at(zone, 2026, 6, 15, 10, 15));
        let saturday = local_at(zone, 2026, 6, 6, 10, 15);
        assert_eq!(due_after(saturday, Delay::BusinessDays(1), zone), local_at(zone, 2026, 6, 8, 10, 15));
        assert_eq!(due_after(saturday, Delay::BusinessDays(0), zone), saturday);
        let wednesday = local_at(zone, 2026, 6, 3, 10, 15);
        assert_eq!(due_after(wednesday, Delay::BusinessDays(2), zone), local_at(zone, 2026, 6, 5, 10, 15));
        assert_eq!(due_after(wednesday, Delay::BusinessDays(3), zone), local_at(zone, 2026, 6, 8, 10, 15));
    }

    #[test]
    fn hours_delay_is_exact_elapsed_time() {
        let before_jump = local_at(America::New_York, 2026, 3, 8, 1, 30);
        let later = due_after(before_jump, Delay::Hours(1), America::New_York);
        assert_eq!(later, before_jump + SECONDS_PER_HOUR);
        assert_eq!(later, local_at(America::New_York, 2026, 3, 8, 3, 30));
    }

    #[test]
    fn next_local_midnight_on_short_and_long_days() {
        let spring = local_at(America::New_York, 2026, 3, 8, 0, 30);
        let next = local_at(America::New_York, 2026, 3, 9, 0, 0);
        assert_eq!(next_local_midnight(spring, America::New_York), next);
        let (start, end) = local_day_range(spring + 12 * SECONDS_PER_HOUR, America::New_York);
        assert_eq!((start, end), (local_at(America::New_York, 2026, 3, 8, 0, 0), next));
        assert_eq!(end - start, 23 * SECONDS_PER_HOUR);

        let (start, end) = local_day_range(utc_at(2026, 10, 25, 12, 0), Europe::Berlin);
        assert_eq!(start, local_at(Europe::Berlin, 2026, 10, 25, 0, 0));
        assert_eq!(end - start, 25 * SECONDS_PER_HOUR);
        assert_eq!(local_day(utc_at(2026, 10, 25, 23, 30), Europe::Berlin), "2026-10-26");

        // Chile springs forward at midnight: 2026-09-06 starts at 01:00 local (04:00 UTC).
        let saturday_noon = local_at(America::Santiago, 2026, 9, 5, 12, 0);
        assert_eq!(next_local_midnight(saturday_noon, America::Santiago), utc_at(2026, 9, 6, 4, 0));
    }

    #[test]
    fn a_window_that_never_opens_gives_none() {
        let noon = utc_at(2026, 6, 1, 12, 0);
        let no_days = Window { zone: Europe::Berlin, days: [false; 7], start: 540, end: 1020 };
        assert_eq!(no_days.next_open(noon), None);
        let backwards = Window { zone: Europe::Berlin, days: EVERY_DAY, start: 1020, end: 540 };
        assert_eq!(backwards.next_open(noon), None);
        assert!(!backwards.is_open(noon));
        let empty = Window { zone: Europe::Berlin, days: EVERY_DAY, start: 540, end: 540 };
        assert_eq!(empty.next_open(noon), None);
        assert_eq!(empty.closes_at(noon), None);
    }

    #[test]
    fn new_refuses_windows_that_cannot_open() {
        assert_eq!(Window::new(Europe::Berlin, [false; 7], 540, 1020), Err(WindowError::NoDays));
        let backwards = Window::new(Europe::Berlin, WEEKDAYS, 1020, 540).unwrap_err();
        assert_eq!(
            backwards.to_string(),
            "A send window must start before it ends and end by 24:00, so 17:00 to 09:00 is not one."
        );
        assert!(Window::new(Europe::Berlin, WEEKDAYS, 540, 1441).is_err());
    }

    #[test]
    fn parse_days_accepts_short_and_long_names() {
        let names: Vec<String> = ["Mon", "tuesday", "FRI", " sun "].iter().map(|name| name.to_string()).collect();
        let days = parse_days(&names).unwrap();
        assert_eq!(days, [true, true, false, false, true, false, true]);
        assert_eq!(days_to_string(&days), "mon,tue,fri,sun");
        assert_eq!(parse_days_str("mon,tue,fri,sun"), Ok(days));
        assert_eq!(parse_days_str("mon, tue"), Ok([true, true, false, false, false, false, false]));
        assert_eq!(parse_days_str(""), Ok([false; 7]));
        assert_eq!(days_to_string(&[false; 7]), "");
    }

    #[test]
    fn parse_days_names_the_bad_value() {
        let names = vec!["mon".to_string(), "Funday".to_string()];
        let error = parse_days(&names).unwrap_err();
        assert_eq!(error, WindowError::UnknownDay("Funday".to_string()));
        assert_eq!(error.to_string(), "\"Funday\" is not a day of the week such as mon or monday.");
        assert!(parse_days_str("mon,,tuesdy").is_err());
    }

    #[test]
    fn parse_clock_reads_hours_and_minutes() {
        assert_eq!(parse_clock("09:00"), Ok(540));
        assert_eq!(parse_clock("9:00"), Ok(540));
        assert_eq!(parse_clock("00:00"), Ok(0));
        assert_eq!(parse_clock("23:59"), Ok(1439));
        assert_eq!(parse_clock("24:00"), Ok(1440));
        assert_eq!(format_clock(540), "09:00");
        assert_eq!(format_clock(1440), "24:00");
        assert_eq!(format_clock(0), "00:00");
    }

    #[test]
    fn parse_clock_refuses_other_text() {
        for bad in ["9:5", "25:00", "24:01", "12:60", "", "09", "ab:cd", "+9:00", "09:00:00", "009:00", "٠٩:00"] {
            assert_eq!(parse_clock(bad), Err(WindowError::BadClock(bad.to_string())), "{bad:?}");
        }
        assert_eq!(parse_clock("25:00").unwrap_err().to_string(), "\"25:00\" is not a time of day such as 09:00.");
    }

    #[test]
    fn parse_zone_names_the_bad_value() {
        assert_eq!(parse_zone("Europe/Berlin"), Ok(Europe::Berlin));
        assert_eq!(parse_zone("Mars/Olympus"), Err(WindowError::UnknownZone("Mars/Olympus".to_string())));
    }
}
