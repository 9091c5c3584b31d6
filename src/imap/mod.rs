//! IMAP4rev1 (RFC 3501) over the mail store, with the extensions mail clients and sending tools
//! rely on: UIDPLUS, MOVE, SPECIAL-USE, IDLE, LITERAL+, ENABLE, NAMESPACE, ID, UNSELECT, SASL-IR.
//!
//! Parsing and serializing are imap-codec's (its `Fragmentizer` splits the byte stream into
//! commands with their literals, `CommandCodec` decodes them, `ResponseCodec` encodes answers);
//! this module holds the state machine ([`session`]) and the semantics. [`start`] binds
//! `[imap] listen` (STARTTLS) and `[imap] listen_tls` (implicit TLS) and runs an accept loop for
//! each until shutdown: every connection is its own supervised task, and at most
//! [`MAX_SESSIONS`] run at once (others get `* BYE` and are closed).

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

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::io::AsyncWriteExt;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Semaphore;
use tokio_rustls::TlsAcceptor;

use crate::app::App;

/// The most IMAP sessions open at once (both listeners together).
pub const MAX_SESSIONS: usize = 1000;

/// How a listener's connections begin.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Security {
    /// Plaintext, upgraded with STARTTLS.
    StartTls,
    /// TLS from the first byte.
    Implicit,
}

/// Binds the IMAP listeners (printing where they listen) and starts their accept loops. A bind
/// failure fails startup, naming the config key.
pub async fn start(app: &App) -> anyhow::Result<()> {
    let tls = TlsAcceptor::from(crate::tls::server_config(&app.config)?);
    let starttls = crate::smtp::bind(&app.config.imap.listen, "imap.listen").await?;
    let implicit = crate::smtp::bind(&app.config.imap.listen_tls, "imap.listen_tls").await?;
    let (starttls_at, implicit_at) = (starttls.local_addr()?, implicit.local_addr()?);
    tracing::info!(starttls = %starttls_at, implicit_tls = %implicit_at, "IMAP listening");
    println!("IMAP on {starttls_at} (STARTTLS)");
    println!("IMAPS on {implicit_at} (implicit TLS)");
    let sessions = Arc::new(Semaphore::new(MAX_SESSIONS));
    let loop_for = |listener, security| accept_loop(app.clone(), tls.clone(), listener, security, sessions.clone());
    app.spawn_supervised("imap listener", loop_for(starttls, Security::StartTls));
    app.spawn_supervised("imaps listener", loop_for(implicit, Security::Implicit));
    Ok(())
}

/// Accepts connections until shutdown; each runs as its own supervised task.
async fn accept_loop(
    app: App,
    tls: TlsAcceptor,
    listener: TcpListener,
    security: Security,
    sessions: Arc<Semaphore>,
) -> anyhow::Result<()> {
    let session_app = app.clone();
    let serve = move |tcp, peer| {
        let (app, tls) = (session_app.clone(), tls.clone());
        async move {
            session::serve(app, tls, tcp, peer, security).await;
            Ok(())
        }
    };
    let refuse = move |tcp, peer| refuse_busy(tcp, peer, security);
    crate::listener::accept_until_shutdown(app, "imap session", listener, sessions, serve, refuse).await
}

/// Too many sessions: a plaintext client is told so; a TLS client is simply closed.
async fn refuse_busy(mut tcp: TcpStream, peer: SocketAddr, security: Security) {
    tracing::warn!(%peer, "too many IMAP sessions; connection refused");
    if security == Security::StartTls {
        let bye = b"* BYE Too many connections, try again later\r\n";
        let _ = tokio::time::timeout(Duration::from_secs(5), tcp.write_all(bye)).await;
    }
}
