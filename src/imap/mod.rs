//! IMAP4rev1 (RFC 3501) over the mail store, with the extensions mail clients and sending tools
//! rely on: UIDPLUS, MOVE, SPECIAL-USE, IDLE, LITERAL+, ENABLE, NAMESPACE, ID, UNSELECT, SASL-IR.
//!
//! Parsing and serializing are imap-codec's (its `Fragmentizer` splits the byte stream into
//! commands with their literals, `CommandCodec` decodes them, `ResponseCodec` encodes answers);
//! this module holds the state machine ([`session`]) and the semantics. [`start`] binds
//! `[imap] listen` (STARTTLS) and `[imap] listen_tls` (implicit TLS) and runs an accept loop for
//! each until shutdown (`listener`): every connection is its own supervised task; at most
//! [`MAX_SESSIONS`] run at once, one client address holds at most
//! `listener::UNAUTHENTICATED_PER_ADDRESS` that have not logged in, and one mailbox at most
//! [`SESSIONS_PER_MAILBOX_ADDRESS`] from one address (others get `* BYE`, or `NO [LIMIT]` at
//! login).

pub mod connection;
pub mod fetch;
pub mod folders;
pub mod login;
pub mod messages;
pub mod mime;
pub mod mutf7;
pub mod search;
pub mod selected;
pub mod session;
#[cfg(test)]
mod session_tests;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::io::AsyncWriteExt;
use tokio::net::{TcpListener, TcpStream};
use tokio_rustls::TlsAcceptor;

use crate::app::App;
use crate::listener::{Busy, Limiter, Limits};

/// The most IMAP sessions open at once (both listeners together).
pub const MAX_SESSIONS: usize = 1000;
/// Logged-in sessions one mailbox may hold from one client address (Dovecot's
/// `mail_max_userip_connections`).
pub const SESSIONS_PER_MAILBOX_ADDRESS: usize = 20;

/// How a listener's connections begin.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Security {
    /// Plaintext, upgraded with STARTTLS.
    StartTls,
    /// TLS from the first byte.
    Implicit,
}

/// Binds the IMAP listeners (printing where they listen) and starts their accept loops. A bind
/// failure fails startup, naming the config key. `tls` is the listeners' shared certificate
/// (see [`crate::tls::Certificates`]).
pub async fn start(app: &App, tls: Arc<rustls::ServerConfig>) -> anyhow::Result<()> {
    let tls = TlsAcceptor::from(tls);
    let starttls = crate::smtp::bind(&app.config.imap.listen, "imap.listen").await?;
    let implicit = crate::smtp::bind(&app.config.imap.listen_tls, "imap.listen_tls").await?;
    let (starttls_at, implicit_at) = (starttls.local_addr()?, implicit.local_addr()?);
    tracing::info!(starttls = %starttls_at, implicit_tls = %implicit_at, "IMAP listening");
    println!("IMAP on {starttls_at} (STARTTLS)");
    println!("IMAPS on {implicit_at} (implicit TLS)");
    let limits = Limits::new(MAX_SESSIONS, crate::listener::UNAUTHENTICATED_PER_ADDRESS);
    let signed_in = Limiter::new(SESSIONS_PER_MAILBOX_ADDRESS);
    let idle_recheck = idle_recheck_from(std::env::var(IDLE_RECHECK_ENV).ok().as_deref());
    if idle_recheck != Some(IDLE_RECHECK) {
        tracing::warn!(?idle_recheck, "{IDLE_RECHECK_ENV} changes how often IDLE re-checks the folder (tests only)");
    }
    let loop_for = |listener, security| {
        let context = Listening { tls: tls.clone(), security, signed_in: signed_in.clone(), idle_recheck };
        accept_loop(app.clone(), context, listener, limits.clone())
    };
    app.spawn_supervised("imap listener", loop_for(starttls, Security::StartTls));
    app.spawn_supervised("imaps listener", loop_for(implicit, Security::Implicit));
    Ok(())
}

/// What every session of one listener is given.
#[derive(Clone)]
pub struct Listening {
    pub tls: TlsAcceptor,
    pub security: Security,
    /// Logged-in sessions per mailbox and client address (both listeners together).
    pub signed_in: Arc<Limiter<(i64, std::net::IpAddr)>>,
    /// How often IDLE re-checks the selected folder without a change signal; `None`: never.
    pub idle_recheck: Option<Duration>,
}

/// How often IDLE re-checks the selected folder's `uid_next` for deliveries that sent no
/// change signal.
pub const IDLE_RECHECK: Duration = Duration::from_millis(500);

/// The environment variable that sets that period in seconds (`0`: never), so tests can prove
/// that IDLE is woken by the change signal alone. Not a configuration key.
pub const IDLE_RECHECK_ENV: &str = "INBOXGROVE_IDLE_RECHECK_SECS";

/// The IDLE re-check period for a value of [`IDLE_RECHECK_ENV`]: [`IDLE_RECHECK`] when unset or
/// not a number of seconds, `None` for zero.
pub fn idle_recheck_from(value: Option<&str>) -> Option<Duration> {
    let Some(seconds) = value.and_then(|v| v.trim().parse::<f64>().ok()).filter(|s| s.is_finite() && *s >= 0.0) else {
        return Some(IDLE_RECHECK);
    };
    (seconds > 0.0).then(|| Duration::from_secs_f64(seconds.min(86_400.0)))
}

/// Accepts connections until shutdown; each runs as its own supervised task.
async fn accept_loop(app: App, listening: Listening, listener: TcpListener, limits: Limits) -> anyhow::Result<()> {
    let session_app = app.clone();
    let security = listening.security;
    let serve = move |tcp, peer, slot| {
        let (app, listening) = (session_app.clone(), listening.clone());
        async move {
            session::serve(app, listening, tcp, peer, slot).await;
            Ok(())
        }
    };
    let refuse = move |tcp, peer, busy| refuse_busy(tcp, peer, security, busy);
    crate::listener::accept_until_shutdown(app, "imap session", listener, limits, serve, refuse).await
}

/// Too many sessions: a plaintext client is told why; a TLS client is simply closed.
async fn refuse_busy(mut tcp: TcpStream, peer: SocketAddr, security: Security, busy: Busy) {
    let bye: &[u8] = match busy {
        Busy::Address => {
            tracing::debug!(%peer, "too many IMAP sessions from one address; connection refused");
            b"* BYE Too many connections from your address, try again later\r\n"
        }
        Busy::Full => {
            tracing::warn!(%peer, "too many IMAP sessions; connection refused");
            b"* BYE Too many connections, try again later\r\n"
        }
    };
    if security == Security::StartTls {
        let _ = tokio::time::timeout(Duration::from_secs(5), tcp.write_all(bye)).await;
    }
}
