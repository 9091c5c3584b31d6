//! Delivery limits, kept in memory by the one delivery worker:
//! - `delivery.concurrency` connections open at once over all destinations (a semaphore);
//! - per destination domain, `connections` open at once (a semaphore per domain, made on first
//!   use; 0 counts as 1) and `per_minute` messages in any 60 seconds of `app.clock` time (a
//!   sliding log of send times, at most `per_minute` long; 0 means no limit).
//!
//! A connection holds a [`Permit`] (both semaphores) for as long as it is open. A recipient over
//! the per-minute limit is not sent; the caller defers it until [`Limits::take_send`] says a
//! slot frees, without counting an attempt.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};

use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use crate::config::DeliveryConfig;

const WINDOW_SECONDS: i64 = 60;
/// Past this many remembered domains, idle ones are forgotten (a campaign touches many domains).
const PRUNE_ABOVE: usize = 10_000;

/// The right to hold one connection open to one destination.
#[derive(Debug)]
pub struct Permit {
    _global: OwnedSemaphorePermit,
    _domain: OwnedSemaphorePermit,
}

/// The limits of the running worker.
pub struct Limits {
    config: DeliveryConfig,
    global: Arc<Semaphore>,
    connections: Mutex<HashMap<String, Arc<Semaphore>>>,
    recent_sends: Mutex<HashMap<String, VecDeque<i64>>>,
}

impl Limits {
    pub fn new(config: &DeliveryConfig) -> Limits {
        Limits {
            config: config.clone(),
            global: Arc::new(Semaphore::new(config.concurrency.max(1))),
            connections: Mutex::new(HashMap::new()),
            recent_sends: Mutex::new(HashMap::new()),
        }
    }

    /// A connection permit for `domain`, if both the global and the domain's limits allow one now.
    pub fn try_connection(&self, domain: &str) -> Option<Permit> {
        let domain_semaphore = {
            let mut map = self.connections.lock().unwrap_or_else(|e| e.into_inner());
            if map.len() > PRUNE_ABOVE {
                // A semaphore nobody holds a permit of (only the map holds it) carries no state.
                map.retain(|_, semaphore| Arc::strong_count(semaphore) > 1);
            }
            map.entry(domain.to_string())
                .or_insert_with(|| Arc::new(Semaphore::new(self.config.limits_for(domain).connections.max(1))))
                .clone()
        };
        let domain_permit = domain_semaphore.try_acquire_owned().ok()?;
        let global_permit = self.global.clone().try_acquire_owned().ok()?;
        Some(Permit { _global: global_permit, _domain: domain_permit })
    }

    /// Whether any connection at all may be opened now.
    pub fn any_connection_free(&self) -> bool {
        self.global.available_permits() > 0
    }

    /// Counts one message to `domain` at `now` if the per-minute limit allows it; otherwise
    /// returns the time a slot frees.
    pub fn take_send(&self, domain: &str, now: i64) -> Result<(), i64> {
        let per_minute = usize::try_from(self.config.limits_for(domain).per_minute).unwrap_or(usize::MAX);
        if per_minute == 0 {
            return Ok(());
        }
        let mut map = self.recent_sends.lock().unwrap_or_else(|e| e.into_inner());
        if map.len() > PRUNE_ABOVE {
            map.retain(|_, log| log.back().is_some_and(|&sent| sent + WINDOW_SECONDS > now));
        }
        let log = map.entry(domain.to_string()).or_default();
        take_from_log(log, per_minute, now)
    }
}

/// The sliding-window rule on one domain's log of send times.
fn take_from_log(log: &mut VecDeque<i64>, per_minute: usize, now: i64) -> Result<(), i64> {
    while log.front().is_some_and(|&sent| sent + WINDOW_SECONDS <= now) {
        log.pop_front();
    }
    if log.len() < per_minute {
        log.push_back(now);
        Ok(())
    } else {
        Err(log.front().map_or(now + 1, |&oldest| oldest + WINDOW_SECONDS).max(now + 1))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::DestinationLimits;

    #[test]
    fn the_per_minute_window_slides() {
        let mut log = VecDeque::new();
        assert_eq!(take_from_log(&mut log, 2, 100), Ok(()));
        assert_eq!(take_from_log(&mut log, 2, 130), Ok(()));
        assert_eq!(take_from_log(&mut log, 2, 150), Err(160));
        assert_eq!(take_from_log(&mut log, 2, 160), Ok(()));
        assert_eq!(take_from_log(&mut log, 2, 170), Err(190));
    }

    #[test]
    fn connections_are_limited_per_domain_and_in_total() {
        let mut config = DeliveryConfig { concurrency: 3, ..DeliveryConfig::default() };
        config.destinations.insert(
            "slow.test".into(),
            DestinationLimits { connections: 1, per_minute: 1, tls_fallback_plaintext: None },
        );
        let limits = Limits::new(&config);
        let first = limits.try_connection("slow.test").expect("one connection");
        assert!(limits.try_connection("slow.test").is_none());
        let _others = [limits.try_connection("a.test"), limits.try_connection("a.test")];
        assert!(limits.try_connection("b.test").is_none(), "global limit of 3 reached");
        assert!(!limits.any_connection_free());
        drop(first);
        assert!(limits.try_connection("slow.test").is_some());
        assert_eq!(limits.take_send("slow.test", 10), Ok(()));
        assert_eq!(limits.take_send("slow.test", 20), Err(70));
        assert_eq!(limits.take_send("unlimited.test", 20), Ok(()));
    }
}
