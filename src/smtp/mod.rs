//! SMTP: one session engine (smtp-proto parsing, TLS, pipelining) with two policies, submission and inbound.
//!
//! [`session::Engine`] runs the dialogue and consults a [`policy::Policy`] at each step;
//! [`submission::Submission`] is the policy of the submission ports and [`inbound::Inbound`] the
//! policy of the MX. [`start`] binds the listeners from `[smtp] inbound` (the MX, STARTTLS
//! offered), `[smtp] submission` (STARTTLS) and `[smtp] submissions` (implicit TLS) and runs an
//! accept loop for each until shutdown (`listener`): every connection is its own supervised task;
//! at most [`MAX_SESSIONS`] run at once per policy, and one client address holds at most
//! `listener::UNAUTHENTICATED_PER_ADDRESS` submission sessions that have not signed in, or
//! `listener::INBOUND_PER_ADDRESS` inbound sessions; others get 421 and are closed.

pub mod connection;
pub mod data;
pub mod inbound;
pub mod policy;
pub mod reply;
pub mod session;
#[cfg(test)]
mod session_tests;
pub mod submission;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use tokio::io::AsyncWriteExt;
use tokio::net::{TcpListener, TcpStream};
use tokio_rustls::TlsAcceptor;

use crate::app::App;
use crate::listener::{Busy, Limits};
use policy::Policy;
use session::{Engine, Security};
use submission::Submission;

/// The most SMTP sessions open at once, per policy.
pub const MAX_SESSIONS: usize = 500;

/// Binds the inbound and submission listeners (printing where they listen) and starts their accept loops.
/// A bind failure fails startup, naming the config key. `tls` is the listeners' shared
/// certificate (see [`crate::tls::Certificates`]).
pub async fn start(app: &App, tls: Arc<rustls::ServerConfig>) -> anyhow::Result<()> {
    let tls = TlsAcceptor::from(tls);
    let starttls = bind(&app.config.smtp.submission, "smtp.submission").await?;
    let implicit = bind(&app.config.smtp.submissions, "smtp.submissions").await?;
    let inbound = bind(&app.config.smtp.inbound, "smtp.inbound").await?;
    let inbound_at = inbound.local_addr()?;
    let (starttls_at, implicit_at) = (starttls.local_addr()?, implicit.local_addr()?);
    tracing::info!(starttls = %starttls_at, implicit_tls = %implicit_at, "SMTP submission listening");
    println!("SMTP submission on {starttls_at} (STARTTLS)");
    println!("SMTP submissions on {implicit_at} (implicit TLS)");
    tracing::info!(inbound = %inbound_at, "SMTP inbound (MX) listening");
    println!("SMTP inbound on {inbound_at}");
    let inbound_engine = Arc::new(Engine::new(app, inbound::Inbound::new(app.clone()), tls.clone()));
    let inbound_limits = Limits::new(MAX_SESSIONS, crate::listener::INBOUND_PER_ADDRESS);
    spawn_listener(app, "smtp inbound listener", inbound_engine, inbound, Security::StartTls, inbound_limits);
    let engine = Arc::new(Engine::new(app, Submission::new(app.clone()), tls));
    let limits = Limits::new(MAX_SESSIONS, crate::listener::UNAUTHENTICATED_PER_ADDRESS);
    spawn_listener(app, "smtp submission listener", engine.clone(), starttls, Security::StartTls, limits.clone());
    spawn_listener(app, "smtp submissions listener", engine, implicit, Security::Implicit, limits);
    Ok(())
}

/// Binds a listen address from the configuration; the error names the config key.
pub async fn bind(address: &str, key: &str) -> anyhow::Result<TcpListener> {
    TcpListener::bind(address).await.with_context(|| format!("Cannot listen on {address} ({key})"))
}

/// Runs `engine` on `listener` until shutdown, as a supervised task; `limits` caps its sessions
/// (shared with any listener given the same limits).
pub fn spawn_listener<P: Policy>(
    app: &App,
    name: &'static str,
    engine: Arc<Engine<P>>,
    listener: TcpListener,
    security: Security,
    limits: Limits,
) {
    app.spawn_supervised(name, accept_loop(app.clone(), engine, listener, security, limits));
}

/// Accepts connections until shutdown; each runs as its own supervised task.
async fn accept_loop<P: Policy>(
    app: App,
    engine: Arc<Engine<P>>,
    listener: TcpListener,
    security: Security,
    limits: Limits,
) -> anyhow::Result<()> {
    let serve = move |tcp, peer, slot| {
        let engine = engine.clone();
        async move { engine.serve(tcp, peer, security, slot).await }
    };
    let refuse = move |tcp, peer, busy| refuse_busy(tcp, peer, security, busy);
    crate::listener::accept_until_shutdown(app, "smtp session", listener, limits, serve, refuse).await
}

/// Too many sessions: a plaintext client is told why; a TLS client is simply closed.
async fn refuse_busy(mut tcp: TcpStream, peer: SocketAddr, security: Security, busy: Busy) {
    let (status, text) = match busy {
        Busy::Address => {
            tracing::debug!(%peer, "too many SMTP sessions from one address; connection refused");
            ([4, 7, 0], "Too many connections from your address, try again later")
        }
        Busy::Full => {
            tracing::warn!(%peer, "too many SMTP sessions; connection refused");
            ([4, 3, 2], "Too many connections, try again later")
        }
    };
    if security == Security::StartTls {
        let reply = reply::Reply::new(421, status, text);
        let _ = tokio::time::timeout(Duration::from_secs(5), tcp.write_all(reply.to_string().as_bytes())).await;
    }
}
