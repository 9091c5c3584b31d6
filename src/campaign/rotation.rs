//! Which mailbox sends a lead's next step. The rule:
//! - a follow-up goes from the mailbox that sent the lead's first step (the thread stays with
//!   one sender), whether or not that mailbox is still in the pool; if it cannot send now, the
//!   follow-up waits for it;
//! - a first step goes from the pool mailbox with the most capacity left today (its daily limit
//!   minus what it sent today, campaigns and everything else counted by `mta::admit`), skipping
//!   paused mailboxes, role mailboxes and mailboxes still inside their minimum gap; ties go to
//!   the lowest id, so the choice is reproducible.
//!
//! The minimum gap between two campaign sends of one mailbox is `min_gap_seconds` plus a jitter
//! in [0, jitter_seconds) drawn from the time of the mailbox's last send, so the pace looks
//! human and stays the same whichever process computes it.

use rusqlite::Connection;

use crate::campaign::templates;
use crate::mailbox::create::may_send;
use crate::mta::admit;

/// A mailbox's sending state during one tick.
#[derive(Debug, Clone)]
pub struct Sender {
    pub id: i64,
    pub address: String,
    pub display_name: String,
    pub first_name: String,
    pub last_name: String,
    pub may_send: bool,
    /// Sends left today.
    pub remaining: i64,
    /// The earliest time of its next campaign send.
    pub free_at: i64,
}

/// Why no mailbox can send now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unavailable {
    /// Paused (or deleted).
    Paused,
    /// At its daily limit.
    AtLimit,
    /// Inside its minimum gap.
    Gap,
}

/// The jitter of a mailbox's gap after its send at `last` (see the module doc).
pub fn jitter(mailbox: i64, last: i64, jitter_seconds: u32) -> i64 {
    if jitter_seconds == 0 {
        return 0;
    }
    let draw = templates::seed(&[mailbox, last]) % u64::from(jitter_seconds);
    i64::try_from(draw).unwrap_or(0)
}

/// Loads a mailbox's state now; `None` when it no longer exists.
pub fn load(
    conn: &Connection,
    mailbox: i64,
    gap: u32,
    jitter_seconds: u32,
    now: i64,
) -> rusqlite::Result<Option<Sender>> {
    let row = conn
        .prepare_cached(
            "SELECT address, display_name, first_name, last_name, status, role, \
             (SELECT max(sent_at) FROM campaign_sends WHERE mailbox_id = mailboxes.id) FROM mailboxes WHERE id = ?1",
        )?
        .query_row([mailbox], |row| {
            let status: String = row.get(4)?;
            let role: bool = row.get(5)?;
            let last: Option<i64> = row.get(6)?;
            Ok((row.get(0)?, row.get(1)?, row.get(2)?, row.get(3)?, status, role, last))
        });
    let (address, display_name, first_name, last_name, status, role, last) = match row {
        Ok(row) => row,
        Err(rusqlite::Error::QueryReturnedNoRows) => return Ok(None),
        Err(e) => return Err(e),
    };
    let (sent, limit) = match admit::sent_today(conn, mailbox, now) {
        Ok(counts) => counts,
        Err(admit::AdmitError::Store(e)) => return Err(e),
        Err(admit::AdmitError::Refused(_)) => return Ok(None),
    };
    let status = status.parse().unwrap_or(crate::mailbox::Status::Paused);
    let free_at = last.map_or(i64::MIN, |last| last + i64::from(gap) + jitter(mailbox, last, jitter_seconds));
    Ok(Some(Sender {
        id: mailbox,
        address,
        display_name,
        first_name,
        last_name,
        may_send: may_send(status) && !role,
        remaining: limit - sent,
        free_at,
    }))
}

impl Sender {
    /// Whether it can send now, and if not why.
    pub fn check(&self, now: i64) -> Result<(), Unavailable> {
        if !self.may_send {
            Err(Unavailable::Paused)
        } else if self.remaining <= 0 {
            Err(Unavailable::AtLimit)
        } else if self.free_at > now {
            Err(Unavailable::Gap)
        } else {
            Ok(())
        }
    }

    /// Counts a planned send at `now`.
    pub fn take(&mut self, now: i64, gap: u32, jitter_seconds: u32) {
        self.remaining -= 1;
        self.free_at = now + i64::from(gap) + jitter(self.id, now, jitter_seconds);
    }
}

/// The pool mailbox for a first step (see the module doc), or why there is none: the most
/// telling reason among the mailboxes (at limit over gap over paused).
pub fn pick(pool: &[Sender], now: i64) -> Result<usize, Unavailable> {
    let mut best: Option<usize> = None;
    let mut why = Unavailable::Paused;
    for (index, sender) in pool.iter().enumerate() {
        match sender.check(now) {
            Ok(()) => {
                if best.is_none_or(|b| sender.remaining > pool[b].remaining) {
                    best = Some(index);
                }
            }
            Err(Unavailable::AtLimit) => why = Unavailable::AtLimit,
            Err(Unavailable::Gap) if why != Unavailable::AtLimit => why = Unavailable::Gap,
            Err(_) => {}
        }
    }
    best.ok_or(why)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sender(id: i64, remaining: i64, may_send: bool, free_at: i64) -> Sender {
        Sender {
            id,
            address: format!("m{id}@x.test"),
            display_name: String::new(),
            first_name: String::new(),
            last_name: String::new(),
            may_send,
            remaining,
            free_at,
        }
    }

    #[test]
    fn the_mailbox_with_most_capacity_left_sends_and_paused_ones_never() {
        let mut pool =
            vec![sender(1, 5, true, 0), sender(2, 9, false, 0), sender(3, 7, true, 0), sender(4, 7, true, 0)];
        assert_eq!(pick(&pool, 100), Ok(2), "most left; a tie goes to the first");
        pool[2].take(100, 60, 0);
        assert_eq!(pick(&pool, 100), Ok(3), "the one just used waits out its gap");
        pool[3].take(100, 60, 0);
        assert_eq!(pick(&pool, 100), Ok(0));
        pool[0].remaining = 0;
        assert_eq!(pick(&pool, 100), Err(Unavailable::AtLimit));
        assert_eq!(pick(&pool, 160), Ok(2), "the gap is over");
        assert_eq!(pick(&[sender(1, 3, true, 500)], 100), Err(Unavailable::Gap));
        assert_eq!(pick(&[sender(1, 3, false, 0)], 100), Err(Unavailable::Paused));
    }

    #[test]
    fn jitter_stays_below_its_bound_and_varies() {
        let draws: Vec<i64> = (0..100).map(|last| jitter(1, last, 30)).collect();
        assert!(draws.iter().all(|d| (0..30).contains(d)));
        assert!(draws.iter().collect::<std::collections::HashSet<_>>().len() > 10);
        assert_eq!(jitter(1, 5, 0), 0);
    }
}
