//! What every TCP listener of the appliance shares (SMTP and IMAP): the accept loop, the limits
//! on connections, and the bounded write of a session's queued output.
//!
//! The accept loop accepts until shutdown and runs each session as its own supervised task. As
//! Postfix's anvil and Dovecot's login processes do, one client address cannot starve the others:
//! a connection is first counted against its address ([`Limiter`]: at most
//! [`UNAUTHENTICATED_PER_ADDRESS`] sessions of an address that have not signed in, per listener
//! group), then against the listener's cap on sessions (a semaphore). A connection over either
//! is handed to `refuse`, which says why and closes it. A session that signs in gives its
//! address slot back and takes one for its mailbox and address instead (limited per mailbox and
//! address, as Dovecot's `mail_max_userip_connections`, never per address alone: a sequencer holds
//! hundreds of signed-in connections for hundreds of mailboxes from one address).

use std::collections::HashMap;
use std::hash::Hash;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::{AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Semaphore;

use crate::app::App;

/// Sessions of one client address that have not signed in, per listener group.
pub const UNAUTHENTICATED_PER_ADDRESS: usize = 100;
/// Sessions of one address on the inbound MX (where nobody signs in).
pub const INBOUND_PER_ADDRESS: usize = 50;

/// Counts what is held per key (a client address, or a mailbox and address) and refuses more
/// than `limit`.
#[derive(Debug)]
pub struct Limiter<K: Hash + Eq> {
    counts: Mutex<HashMap<K, usize>>,
    limit: usize,
}

/// One slot of a [`Limiter`], given back when dropped.
#[derive(Debug)]
pub struct Slot<K: Hash + Eq + Clone> {
    limiter: Arc<Limiter<K>>,
    key: K,
}

impl<K: Hash + Eq + Clone> Limiter<K> {
    pub fn new(limit: usize) -> Arc<Limiter<K>> {
        Arc::new(Limiter { counts: Mutex::default(), limit })
    }

    /// A slot for `key`, or `None` when `key` holds `limit` already.
    pub fn take(self: &Arc<Self>, key: K) -> Option<Slot<K>> {
        let mut counts = self.counts.lock().unwrap_or_else(|e| e.into_inner());
        let count = counts.entry(key.clone()).or_insert(0);
        if *count >= self.limit {
            return None;
        }
        *count += 1;
        Some(Slot { limiter: self.clone(), key })
    }

    /// How many slots `key` holds.
    pub fn held(&self, key: &K) -> usize {
        self.counts.lock().unwrap_or_else(|e| e.into_inner()).get(key).copied().unwrap_or(0)
    }
}

impl<K: Hash + Eq + Clone> Drop for Slot<K> {
    fn drop(&mut self) {
        let mut counts = self.limiter.counts.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(count) = counts.get_mut(&self.key) {
            *count -= 1;
            if *count == 0 {
                counts.remove(&self.key);
            }
        }
    }
}

/// Why a connection is refused at once.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Busy {
    /// Its address holds as many sessions as it may.
    Address,
    /// The listener holds as many sessions as it may.
    Full,
}

/// What an accept loop limits.
#[derive(Clone)]
pub struct Limits {
    /// The listener group's sessions.
    pub sessions: Arc<Semaphore>,
    /// The sessions per client address that have not signed in.
    pub per_address: Arc<Limiter<IpAddr>>,
}

impl Limits {
    pub fn new(sessions: usize, per_address: usize) -> Limits {
        Limits { sessions: Arc::new(Semaphore::new(sessions)), per_address: Limiter::new(per_address) }
    }
}

/// Accepts on `listener` until shutdown. `serve` runs each session with its address slot;
/// `refuse` answers a connection over the limits (see the module doc).
pub async fn accept_until_shutdown<S, SF, R, RF>(
    app: App,
    name: &'static str,
    listener: TcpListener,
    limits: Limits,
    serve: S,
    refuse: R,
) -> anyhow::Result<()>
where
    S: Fn(TcpStream, SocketAddr, Slot<IpAddr>) -> SF,
    SF: Future<Output = anyhow::Result<()>> + Send + 'static,
    R: Fn(TcpStream, SocketAddr, Busy) -> RF,
    RF: Future<Output = ()> + Send + 'static,
{
    loop {
        let (tcp, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(e) => {
                    // Out of file descriptors and the like: wait instead of spinning.
                    tracing::warn!(listener = name, error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            },
            _ = app.shutting_down() => return Ok(()),
        };
        let Some(slot) = limits.per_address.take(peer.ip()) else {
            tokio::spawn(refuse(tcp, peer, Busy::Address));
            continue;
        };
        let Ok(permit) = limits.sessions.clone().try_acquire_owned() else {
            tokio::spawn(refuse(tcp, peer, Busy::Full));
            continue;
        };
        let session = serve(tcp, peer, slot);
        app.spawn_supervised(name, async move {
            let _permit = permit;
            session.await
        });
    }
}

/// The longest a client may take to read what a session sends it.
pub const WRITE_TIMEOUT: Duration = Duration::from_secs(60);

/// Why a session's output could not be sent.
#[derive(Debug)]
pub enum WriteFailure {
    Io(std::io::Error),
    /// The client stopped reading for [`WRITE_TIMEOUT`].
    TimedOut,
}

/// Writes and flushes `output`, giving up after [`WRITE_TIMEOUT`] so that a client that stops
/// reading cannot hold its session (and its permit) forever.
pub async fn write_within<S: AsyncWrite + Unpin>(stream: &mut S, output: &[u8]) -> Result<(), WriteFailure> {
    let write = async {
        stream.write_all(output).await?;
        stream.flush().await
    };
    match tokio::time::timeout(WRITE_TIMEOUT, write).await {
        Ok(result) => result.map_err(WriteFailure::Io),
        Err(_) => Err(WriteFailure::TimedOut),
    }
}

#[cfg(test)]
pub mod testing {
    //! A client for tests of the listeners' timeouts.

    use std::net::SocketAddr;
    use std::time::Duration;

    use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
    use tokio::net::TcpStream;
    use tokio::time::Instant;

    /// The lines the server sends while the client sends `commands` (each after its pause), until
    /// the server closes; and when it closed.
    pub async fn until_closed(at: SocketAddr, commands: &[(&'static str, Duration)]) -> (Vec<String>, Duration) {
        let started = Instant::now();
        let tcp = TcpStream::connect(at).await.expect("connect");
        let (read, mut write) = tcp.into_split();
        let commands = commands.to_vec();
        tokio::spawn(async move {
            for (command, after) in commands {
                tokio::time::sleep(after).await;
                if write.write_all(format!("{command}\r\n").as_bytes()).await.is_err() {
                    break; // the server has closed the connection
                }
            }
            std::future::pending::<()>().await;
        });
        let mut lines = Vec::new();
        let mut reader = BufReader::new(read).lines();
        while let Ok(Some(line)) = reader.next_line().await {
            lines.push(line);
        }
        (lines, started.elapsed())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slots_are_counted_per_key_and_given_back_when_dropped() {
        let limiter = Limiter::new(2);
        let (one, two) = (IpAddr::from([127, 0, 0, 1]), IpAddr::from([127, 0, 0, 2]));
        let first = limiter.take(one).expect("first");
        let _second = limiter.take(one).expect("second");
        assert!(limiter.take(one).is_none(), "the third is refused");
        assert!(limiter.take(two).is_some(), "another key has its own count");
        drop(first);
        assert_eq!(limiter.held(&one), 1);
        assert!(limiter.take(one).is_some(), "a slot given back can be taken again");
    }
}
