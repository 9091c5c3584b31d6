//! The one credential check for mailboxes: SMTP AUTH and IMAP LOGIN / AUTHENTICATE both call
//! [`login`] with the client's address, the user name and the password.
//!
//! The password is checked against `mailboxes.password_hash` on a blocking thread; an unknown
//! address is checked against a dummy hash, so timing does not tell which addresses exist. A
//! paused mailbox signs in (it may read its mail; each protocol decides what it may do).
//!
//! Throttling slows guessing without letting a stranger lock a mailbox out (mailbox addresses
//! are public: they are the From of every cold email). As Dovecot's auth penalty does, it counts
//! failures inside [`WINDOW_SECONDS`] (on the injected clock) per client address, per account
//! and client address, and per account, and makes the next attempt wait before it is checked:
//! - from an address with [`FREE_FAILURES`] or more recent failures (or for an account with
//!   that many from the same address), each attempt waits [`penalty`]: 1 s, then doubling up
//!   to [`MAX_PENALTY`]. Attempts from one address take turns (each waits for the previous
//!   one's turn plus its own penalty), so parallel connections do not multiply the guesses: a
//!   guesser gets at most about one try a second. A turn further away than [`MAX_WAIT`] is
//!   refused at once ([`LoginError::Throttled`]), so a flood cannot hold connections waiting;
//! - the per-account count only slows ([`account_penalty`], from [`ACCOUNT_FREE_FAILURES`]
//!   failures, at most [`MAX_ACCOUNT_PENALTY`]), never blocks: the right password from another
//!   address still signs in;
//! - a client address that signed in to the account within [`TRUST_SECONDS`] keeps signing in
//!   without waiting for other addresses' failures or the account's, until it fails
//!   [`FREE_FAILURES`] times itself.
//!
//! The counts live in memory (a restart forgets them, as Dovecot's do), bounded to
//! [`MAX_ENTRIES`] keys.

use std::collections::{HashMap, VecDeque};
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::Duration;

use rusqlite::{Connection, OptionalExtension};
use tokio::time::Instant;

use super::Status;
use crate::app::App;
use crate::auth::password;
use crate::error::Error;

/// How long a failure counts.
pub const WINDOW_SECONDS: i64 = 15 * 60;
/// Failures (from one address, or of one account from one address) that cost nothing.
pub const FREE_FAILURES: usize = 3;
/// The longest wait one attempt is given.
pub const MAX_PENALTY: Duration = Duration::from_secs(15);
/// Failures of one account (from anywhere) before its attempts are slowed.
pub const ACCOUNT_FREE_FAILURES: usize = 10;
/// The longest the per-account count slows an attempt.
pub const MAX_ACCOUNT_PENALTY: Duration = Duration::from_secs(4);
/// The furthest turn an attempt may be given; further is refused at once.
pub const MAX_WAIT: Duration = Duration::from_secs(30);
/// How long a successful sign-in makes its (account, address) trusted.
pub const TRUST_SECONDS: i64 = 30 * 86_400;
/// The most keys kept per kind; past it, stale keys are dropped.
pub const MAX_ENTRIES: usize = 100_000;
/// The most failure times kept per key.
const KEPT_FAILURES: usize = 64;

/// A mailbox that signed in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Account {
    pub mailbox_id: i64,
    pub workspace_id: i64,
    pub address: String,
    pub status: Status,
}

/// Why a sign-in failed.
#[derive(Debug, thiserror::Error)]
pub enum LoginError {
    /// Wrong address or password.
    #[error("authentication credentials invalid")]
    Failed,
    /// Too many recent failures from this address: try again after this long.
    #[error("too many failed sign-ins from your address; try again in {} seconds", .0.as_secs().max(1))]
    Throttled(Duration),
    #[error(transparent)]
    Internal(#[from] Error),
}

/// Checks a mailbox's credentials from `client` (see the module doc).
pub async fn login(app: &App, client: IpAddr, username: &str, secret: &str) -> Result<Account, LoginError> {
    let address = username.trim().to_lowercase();
    let turn = app.logins.take_turn(&address, client, app.clock.unix(), Instant::now())?;
    tokio::time::sleep_until(turn).await;
    let lookup = address.clone();
    let found = app.store.read(move |conn| credentials(conn, &lookup)).await?;
    let hash = found.as_ref().map_or_else(|| password::DUMMY_HASH.to_string(), |(_, hash)| hash.clone());
    let verified = password::verify(hash, secret.to_string()).await;
    let now = app.clock.unix();
    match found {
        Some((account, _)) if verified => {
            app.logins.succeeded(&address, client, now);
            Ok(account)
        }
        _ => {
            app.logins.failed(&address, client, now);
            Err(LoginError::Failed)
        }
    }
}

/// A mailbox by address (lowercase) with its password hash.
fn credentials(conn: &Connection, address: &str) -> Result<Option<(Account, String)>, Error> {
    let row = conn
        .prepare_cached("SELECT id, workspace_id, address, status, password_hash FROM mailboxes WHERE address = ?1")?
        .query_row([address], |row| {
            Ok((
                row.get::<_, i64>(0)?,
                row.get::<_, i64>(1)?,
                row.get::<_, String>(2)?,
                row.get::<_, String>(3)?,
                row.get(4)?,
            ))
        })
        .optional()?;
    Ok(row.map(|(mailbox_id, workspace_id, address, status, hash)| {
        let status = status.parse().unwrap_or(Status::Paused);
        (Account { mailbox_id, workspace_id, address, status }, hash)
    }))
}

/// The wait after `failures` recent failures from one address: none for the first
/// [`FREE_FAILURES`], then 1 s, 2 s, 4 s ... up to [`MAX_PENALTY`].
pub fn penalty(failures: usize) -> Duration {
    match failures.checked_sub(FREE_FAILURES) {
        None => Duration::ZERO,
        Some(extra) => Duration::from_secs(1u64 << extra.min(4)).min(MAX_PENALTY),
    }
}

/// The wait after `failures` recent failures of one account from anywhere: none for the first
/// [`ACCOUNT_FREE_FAILURES`], then one more second for each ten, up to [`MAX_ACCOUNT_PENALTY`].
pub fn account_penalty(failures: usize) -> Duration {
    match failures.checked_sub(ACCOUNT_FREE_FAILURES) {
        None => Duration::ZERO,
        Some(extra) => Duration::from_secs(1 + u64::try_from(extra / 10).unwrap_or(u64::MAX)).min(MAX_ACCOUNT_PENALTY),
    }
}

/// Recent failure times of one key.
#[derive(Debug, Default)]
struct Failures {
    at: VecDeque<i64>,
}

impl Failures {
    fn count(&self, now: i64) -> usize {
        self.at.iter().filter(|&&at| at > now - WINDOW_SECONDS).count()
    }

    fn add(&mut self, now: i64) {
        if self.at.len() >= KEPT_FAILURES {
            self.at.pop_front();
        }
        self.at.push_back(now);
    }

    fn last(&self) -> i64 {
        self.at.back().copied().unwrap_or(i64::MIN)
    }
}

/// One account from one address.
#[derive(Debug, Default)]
struct Pair {
    failures: Failures,
    last_success: Option<i64>,
}

#[derive(Debug, Default)]
struct State {
    by_address: HashMap<IpAddr, Failures>,
    by_account: HashMap<String, Failures>,
    pairs: HashMap<(String, IpAddr), Pair>,
    /// When the next slowed attempt from an address may be checked.
    next_turn: HashMap<IpAddr, Instant>,
}

/// The throttle's memory, shared by every listener (`App::logins`).
#[derive(Debug, Default)]
pub struct Penalties {
    state: Mutex<State>,
}

impl Penalties {
    /// When an attempt for `account` from `client` may be checked (see the module doc).
    pub fn take_turn(&self, account: &str, client: IpAddr, now: i64, instant: Instant) -> Result<Instant, LoginError> {
        let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        let key = (account.to_string(), client);
        let pair_failures = state.pairs.get(&key).map_or(0, |pair| pair.failures.count(now));
        let trusted = state
            .pairs
            .get(&key)
            .and_then(|pair| pair.last_success)
            .is_some_and(|at| now - at <= TRUST_SECONDS && pair_failures < FREE_FAILURES);
        let wait = if trusted {
            Duration::ZERO
        } else {
            let from_address = state.by_address.get(&client).map_or(0, |f| f.count(now));
            let of_account = state.by_account.get(account).map_or(0, |f| f.count(now));
            penalty(from_address).max(penalty(pair_failures)).max(account_penalty(of_account))
        };
        if wait.is_zero() {
            return Ok(instant);
        }
        let start = state.next_turn.get(&client).copied().unwrap_or(instant).max(instant);
        let turn = start + wait;
        if turn.duration_since(instant) > MAX_WAIT {
            return Err(LoginError::Throttled(turn.duration_since(instant)));
        }
        state.next_turn.insert(client, turn);
        Ok(turn)
    }

    /// Records a failed attempt.
    pub fn failed(&self, account: &str, client: IpAddr, now: i64) {
        let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        state.prune(now);
        state.by_address.entry(client).or_default().add(now);
        state.by_account.entry(account.to_string()).or_default().add(now);
        state.pairs.entry((account.to_string(), client)).or_default().failures.add(now);
    }

    /// Records a successful sign-in: the pair is trusted and its own failures are forgotten.
    pub fn succeeded(&self, account: &str, client: IpAddr, now: i64) {
        let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        state.prune(now);
        state
            .pairs
            .insert((account.to_string(), client), Pair { failures: Failures::default(), last_success: Some(now) });
    }
}

impl State {
    /// Past [`MAX_ENTRIES`] keys of a kind, drops the keys with nothing recent.
    fn prune(&mut self, now: i64) {
        let stale = now - WINDOW_SECONDS;
        if self.by_address.len() >= MAX_ENTRIES {
            self.by_address.retain(|_, failures| failures.last() > stale);
            self.next_turn.retain(|address, _| self.by_address.contains_key(address));
        }
        if self.by_account.len() >= MAX_ENTRIES {
            self.by_account.retain(|_, failures| failures.last() > stale);
        }
        if self.pairs.len() >= MAX_ENTRIES {
            self.pairs.retain(|_, pair| {
                pair.failures.last() > stale || pair.last_success.is_some_and(|at| now - at <= TRUST_SECONDS)
            });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: i64 = 1_800_000_000;

    fn ip(last: u8) -> IpAddr {
        IpAddr::from([127, 0, 0, last])
    }

    /// How long an attempt would wait now.
    fn wait(penalties: &Penalties, account: &str, client: IpAddr, now: i64, instant: Instant) -> Duration {
        penalties.take_turn(account, client, now, instant).expect("a turn").duration_since(instant)
    }

    #[test]
    fn the_penalty_grows_after_the_free_failures() {
        let waits: Vec<u64> = (0..10).map(|n| penalty(n).as_secs()).collect();
        assert_eq!(waits, [0, 0, 0, 1, 2, 4, 8, 15, 15, 15]);
        assert_eq!(account_penalty(9), Duration::ZERO);
        assert_eq!((account_penalty(10).as_secs(), account_penalty(25).as_secs()), (1, 2));
        assert_eq!(account_penalty(10_000), MAX_ACCOUNT_PENALTY);
    }

    #[test]
    fn a_stranger_s_failures_slow_the_stranger_but_not_the_owner_elsewhere() {
        let penalties = Penalties::default();
        let start = Instant::now();
        for _ in 0..5 {
            penalties.failed("ann@a.test", ip(9), NOW);
        }
        assert_eq!(
            wait(&penalties, "ann@a.test", ip(1), NOW, start),
            Duration::ZERO,
            "another address signs in at once"
        );
        assert_eq!(wait(&penalties, "bob@a.test", ip(9), NOW, start), Duration::from_secs(4), "the guesser waits");
        assert_eq!(
            wait(&penalties, "carl@a.test", ip(9), NOW, start),
            Duration::from_secs(8),
            "parallel attempts from one address take turns"
        );
        assert_eq!(
            wait(&penalties, "ann@a.test", ip(9), NOW + WINDOW_SECONDS, start + Duration::from_secs(20)),
            Duration::ZERO,
            "failures leave the window"
        );
    }

    #[test]
    fn a_trusted_address_keeps_signing_in_and_a_flood_is_refused_at_once() {
        let penalties = Penalties::default();
        let start = Instant::now();
        penalties.succeeded("ann@a.test", ip(1), NOW);
        for _ in 0..40 {
            penalties.failed("ann@a.test", ip(9), NOW);
            penalties.failed("other@a.test", ip(1), NOW);
        }
        assert_eq!(wait(&penalties, "ann@a.test", ip(1), NOW, start), Duration::ZERO, "trusted despite its neighbours");
        assert_eq!(wait(&penalties, "ann@a.test", ip(2), NOW, start), MAX_ACCOUNT_PENALTY, "the account only slows");
        let mut refused = false;
        for _ in 0..5 {
            refused |= matches!(penalties.take_turn("x@a.test", ip(9), NOW, start), Err(LoginError::Throttled(_)));
        }
        assert!(refused, "turns further than MAX_WAIT are refused");
        for _ in 0..FREE_FAILURES {
            penalties.failed("ann@a.test", ip(1), NOW);
        }
        assert!(wait(&penalties, "ann@a.test", ip(1), NOW, start) > Duration::ZERO, "its own failures end the trust");
    }
}
