//! The engine's deadlines, on the real session code over loopback TCP, with tokio's clock paused
//! (it jumps to the next timer whenever nothing else can run), so half a minute passes at once.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpListener;

use super::session::{Engine, FIRST_COMMAND_TIMEOUT, Security};
use super::submission::{LOGIN_DEADLINE, Submission};
use crate::app::App;
use crate::config::Config;
use crate::listener::Limiter;
use crate::listener::testing::until_closed;

/// An appliance on a temporary data dir, and a submission engine listening on loopback.
async fn engine() -> (tempfile::TempDir, SocketAddr) {
    let dir = tempfile::tempdir().expect("temp dir");
    let config = Config { data_dir: dir.path().to_path_buf(), ..Default::default() };
    crate::tls::ensure_certificate(&config, crate::clock::Clock::default().unix()).expect("certificate");
    let app = App::open(config).await.expect("open app");
    let tls = tokio_rustls::TlsAcceptor::from(crate::tls::server_config(&app.config).expect("tls"));
    let engine = Arc::new(Engine::new(&app, Submission::new(app.clone()), tls));
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let at = listener.local_addr().expect("address");
    let slots = Limiter::new(10);
    tokio::spawn(async move {
        loop {
            let (tcp, peer) = listener.accept().await.expect("accept");
            let slot = slots.take(peer.ip()).expect("a slot");
            tokio::spawn(engine.clone().serve(tcp, peer, Security::StartTls, slot));
        }
    });
    (dir, at)
}

#[tokio::test(start_paused = true)]
async fn a_silent_client_is_cut_off_after_the_first_command_timeout() {
    let (_dir, at) = engine().await;
    let (lines, after) = until_closed(at, &[]).await;
    assert!(lines[0].starts_with("220 "), "{lines:?}");
    assert!(lines.last().is_some_and(|l| l.starts_with("421 4.4.2 ") && l.contains("Too slow")), "{lines:?}");
    assert!(after >= FIRST_COMMAND_TIMEOUT && after < FIRST_COMMAND_TIMEOUT + Duration::from_secs(5), "{after:?}");
}

#[tokio::test(start_paused = true)]
async fn a_client_that_talks_but_never_signs_in_is_cut_off_at_the_login_deadline() {
    let (_dir, at) = engine().await;
    let chatter: Vec<(&'static str, Duration)> = [("EHLO client.test", Duration::ZERO)]
        .into_iter()
        .chain(std::iter::repeat_n(("NOOP", Duration::from_secs(20)), 5))
        .collect();
    let (lines, after) = until_closed(at, &chatter).await;
    assert!(lines.iter().filter(|l| l.starts_with("250 2.0.0 OK")).count() >= 2, "NOOPs were answered: {lines:?}");
    assert!(lines.last().is_some_and(|l| l.starts_with("421 4.4.2 ")), "{lines:?}");
    assert!(after >= LOGIN_DEADLINE && after < LOGIN_DEADLINE + Duration::from_secs(5), "{after:?}");
}
