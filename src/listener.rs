//! What every TCP listener of the appliance shares (SMTP and IMAP): the accept loop (accept until
//! shutdown, cap concurrent sessions with a semaphore: a connection over the cap is handed to
//! `refuse`; run each session as its own supervised task), and the bounded write of a session's
//! queued output.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Semaphore;

use crate::app::App;

/// Accepts on `listener` until shutdown. `serve` runs each session; `refuse` answers a
/// connection that arrives while `sessions` has no permit left.
pub async fn accept_until_shutdown<S, SF, R, RF>(
    app: App,
    name: &'static str,
    listener: TcpListener,
    sessions: Arc<Semaphore>,
    serve: S,
    refuse: R,
) -> anyhow::Result<()>
where
    S: Fn(TcpStream, SocketAddr) -> SF,
    SF: Future<Output = anyhow::Result<()>> + Send + 'static,
    R: Fn(TcpStream, SocketAddr) -> RF,
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
        let Ok(permit) = sessions.clone().try_acquire_owned() else {
            tokio::spawn(refuse(tcp, peer));
            continue;
        };
        let session = serve(tcp, peer);
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
