//! The mailbox health score: 0 to 100 from the event log over a sliding window.
//!
//! Inputs (all fractions 0..1, over the window, the mailbox as sender):
//! - delivery rate `d` = delivered / (delivered + bounced + expired)
//! - deferral rate `f` = deferred / (delivered + bounced + expired + deferred)
//! - hard bounce rate `b` = bounced / (delivered + bounced + expired)
//! - human open rate `o` = distinct messages opened by a person (`machine = 0`) / delivered
//! - warmup inbox placement `p` ([`warmup_placement`]; None until warmup reports it)
//! - reply rate `r` = replies / delivered
//! - complaint rate `c` = complaints / delivered
//!
//! Formula:
//! - delivery (40 points): `40 * d * (1 - f / 2)`
//! - engagement and placement (30 points): `30 * mean(min(o / 0.5, 1), p)` over the inputs that have
//!   data; with none (no opens tracked, no placement data) the 30 points are given in full, as "no data"
//! - replies (20 points): `20 * min(r / 0.02, 1)`
//! - bounces (10 points): `10 * (1 - min(b / 0.05, 1))`
//! - complaint penalty: minus `30 * min(c / 0.003, 1)`
//!
//! The sum is clamped to 0..100. Bands: Excellent above 95, Good 85 to 95, Fair 75 to 85, Poor below
//! 75. A mailbox with fewer than [`MIN_OUTCOMES`] finished sends in the window is "new": its score
//! is computed but labelled as such, and protection does not act on it.

use rusqlite::Connection;
use serde::Serialize;

/// Finished sends (delivered, bounced, expired) needed before the score is trusted.
pub const MIN_OUTCOMES: i64 = 20;

/// Counts from the event log for one mailbox over the window.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Counts {
    pub queued: i64,
    pub delivered: i64,
    pub bounced: i64,
    pub expired: i64,
    pub deferred: i64,
    pub human_opened: i64,
    pub replies: i64,
    pub complaints: i64,
}

/// The score's band.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum Band {
    Excellent,
    Good,
    Fair,
    Poor,
}

impl Band {
    /// The band of a score (see the module doc for the edges).
    pub fn of(score: f64) -> Band {
        if score > 95.0 {
            Band::Excellent
        } else if score >= 85.0 {
            Band::Good
        } else if score >= 75.0 {
            Band::Fair
        } else {
            Band::Poor
        }
    }

    /// The band's name as shown and in JSON.
    pub fn as_str(self) -> &'static str {
        match self {
            Band::Excellent => "excellent",
            Band::Good => "good",
            Band::Fair => "fair",
            Band::Poor => "poor",
        }
    }
}

/// The computed score with its parts.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Score {
    pub score: f64,
    pub band: Band,
    /// Fewer than [`MIN_OUTCOMES`] finished sends: not yet meaningful.
    pub new: bool,
    pub delivery_rate: f64,
    pub deferral_rate: f64,
    pub bounce_rate: f64,
    pub open_rate: Option<f64>,
    pub placement: Option<f64>,
    pub reply_rate: f64,
    pub complaint_rate: f64,
    pub delivery_points: f64,
    pub engagement_points: f64,
    pub reply_points: f64,
    pub bounce_points: f64,
    pub complaint_penalty: f64,
}

/// Warmup inbox placement (share of warmup mail that landed in the inbox) for the mailbox.
/// Warmup does not report placement yet: always None, scored as "no data".
pub fn warmup_placement(_mailbox_id: i64) -> Option<f64> {
    None
}

fn ratio(part: i64, whole: i64) -> f64 {
    if whole <= 0 {
        return 0.0;
    }
    let (part, whole) = (i32::try_from(part).unwrap_or(i32::MAX), i32::try_from(whole).unwrap_or(i32::MAX));
    (f64::from(part) / f64::from(whole)).clamp(0.0, 1.0)
}

/// Computes the score from the counts and the placement (see the module doc).
pub fn compute(counts: &Counts, placement: Option<f64>) -> Score {
    let outcomes = counts.delivered + counts.bounced + counts.expired;
    let delivery_rate = if outcomes == 0 { 1.0 } else { ratio(counts.delivered, outcomes) };
    let deferral_rate = ratio(counts.deferred, outcomes + counts.deferred);
    let bounce_rate = ratio(counts.bounced, outcomes);
    let open_rate = (counts.human_opened > 0).then(|| ratio(counts.human_opened, counts.delivered));
    let reply_rate = ratio(counts.replies, counts.delivered);
    let complaint_rate = ratio(counts.complaints, counts.delivered);
    let delivery_points = 40.0 * delivery_rate * (1.0 - deferral_rate / 2.0);
    let parts: Vec<f64> =
        [open_rate.map(|o| (o / 0.5).min(1.0)), placement.map(|p| p.clamp(0.0, 1.0))].into_iter().flatten().collect();
    let engagement = match parts.as_slice() {
        [] => 1.0,
        [one] => *one,
        [a, b, ..] => (a + b) / 2.0,
    };
    let engagement_points = 30.0 * engagement;
    let reply_points = 20.0 * (reply_rate / 0.02).min(1.0);
    let bounce_points = 10.0 * (1.0 - (bounce_rate / 0.05).min(1.0));
    let complaint_penalty = 30.0 * (complaint_rate / 0.003).min(1.0);
    let score =
        (delivery_points + engagement_points + reply_points + bounce_points - complaint_penalty).clamp(0.0, 100.0);
    Score {
        score,
        band: Band::of(score),
        new: outcomes < MIN_OUTCOMES,
        delivery_rate,
        deferral_rate,
        bounce_rate,
        open_rate,
        placement,
        reply_rate,
        complaint_rate,
        delivery_points,
        engagement_points,
        reply_points,
        bounce_points,
        complaint_penalty,
    }
}

/// The mailbox's counts from the event log since `since` (unix seconds).
pub fn counts(conn: &Connection, mailbox_id: i64, since: i64) -> rusqlite::Result<Counts> {
    conn.query_row(
        "SELECT \
           coalesce(sum(kind = 'queued'), 0), coalesce(sum(kind = 'delivered'), 0), \
           coalesce(sum(kind = 'bounced'), 0), coalesce(sum(kind = 'expired'), 0), \
           coalesce(sum(kind = 'deferred'), 0), \
           count(DISTINCT CASE WHEN kind = 'opened' AND machine = 0 THEN message_id END), \
           coalesce(sum(kind = 'reply'), 0), coalesce(sum(kind = 'complaint'), 0) \
         FROM events WHERE mailbox_id = ?1 AND at >= ?2",
        (mailbox_id, since),
        |r| {
            Ok(Counts {
                queued: r.get(0)?,
                delivered: r.get(1)?,
                bounced: r.get(2)?,
                expired: r.get(3)?,
                deferred: r.get(4)?,
                human_opened: r.get(5)?,
                replies: r.get(6)?,
                complaints: r.get(7)?,
            })
        },
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn healthy() -> Counts {
        Counts { queued: 100, delivered: 100, replies: 2, human_opened: 50, ..Counts::default() }
    }

    #[test]
    fn band_edges() {
        assert_eq!(Band::of(95.01), Band::Excellent);
        assert_eq!(Band::of(95.0), Band::Good);
        assert_eq!(Band::of(85.0), Band::Good);
        assert_eq!(Band::of(84.99), Band::Fair);
        assert_eq!(Band::of(75.0), Band::Fair);
        assert_eq!(Band::of(74.99), Band::Poor);
    }

    #[test]
    fn perfect_mailbox_scores_100() {
        let s = compute(&healthy(), None);
        assert!((s.score - 100.0).abs() < 1e-9);
        assert_eq!(s.band, Band::Excellent);
        assert!(!s.new);
    }

    #[test]
    fn each_input_moves_the_score() {
        let base = compute(&healthy(), None).score;
        let bounces = Counts { delivered: 95, bounced: 5, ..healthy() };
        assert!((compute(&bounces, None).bounce_points).abs() < 1e-9);
        assert!(compute(&bounces, None).score < base);
        let deferrals = Counts { deferred: 100, ..healthy() };
        assert!((compute(&deferrals, None).delivery_points - 30.0).abs() < 1e-9);
        let no_replies = Counts { replies: 0, ..healthy() };
        assert!((compute(&no_replies, None).score - 80.0).abs() < 1e-9);
        let complaint = Counts { complaints: 1, delivered: 1000, ..healthy() };
        assert!(compute(&complaint, None).complaint_penalty > 9.9);
        let few_opens = Counts { human_opened: 25, ..healthy() };
        assert!((compute(&few_opens, None).engagement_points - 15.0).abs() < 1e-9);
        assert!((compute(&healthy(), Some(0.5)).engagement_points - 22.5).abs() < 1e-9);
    }

    #[test]
    fn no_engagement_data_is_neutral_and_few_sends_are_new() {
        let s = compute(&Counts { delivered: 5, replies: 1, ..Counts::default() }, warmup_placement(1));
        assert_eq!(s.open_rate, None);
        assert!((s.engagement_points - 30.0).abs() < 1e-9);
        assert!(s.new);
    }
}
