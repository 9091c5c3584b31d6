//! The accept loop every TCP listener of the appliance shares (SMTP and IMAP): accept until
//! shutdown, cap concurrent sessions with a semaphore (a connection over the cap is handed to
//! `refuse`), and run each session as its own supervised task.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

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
