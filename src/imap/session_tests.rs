//! The session's deadlines, on the real session code over loopback TCP, with tokio's clock
//! paused (it jumps to the next timer whenever nothing else can run).

use std::net::SocketAddr;
use std::time::Duration;

use tokio::net::TcpListener;

use super::session::{FIRST_COMMAND_TIMEOUT, LOGIN_DEADLINE};
use super::{Listening, Security};
use crate::app::App;
use crate::config::Config;
use crate::listener::Limiter;
use crate::listener::testing::until_closed;

/// An appliance on a temporary data dir, and an IMAP listener (STARTTLS) on loopback.
async fn listener() -> (tempfile::TempDir, SocketAddr) {
    let dir = tempfile::tempdir().expect("temp dir");
    let config = Config { data_dir: dir.path().to_path_buf(), ..Default::default() };
    crate::tls::ensure_certificate(&config, crate::clock::Clock::default().unix()).expect("certificate");
    let app = App::open(config).await.expect("open app");
    let tls = tokio_rustls::TlsAcceptor::from(crate::tls::server_config(&app.config).expect("tls"));
    let listening = Listening {
        tls,
        security: Security::StartTls,
        signed_in: Limiter::new(10),
        idle_recheck: Some(super::IDLE_RECHECK),
    };
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let at = listener.local_addr().expect("address");
    let slots = Limiter::new(10);
    tokio::spawn(async move {
        loop {
            let (tcp, peer) = listener.accept().await.expect("accept");
            let slot = slots.take(peer.ip()).expect("a slot");
            tokio::spawn(super::session::serve(app.clone(), listening.clone(), tcp, peer, slot));
        }
    });
    (dir, at)
}

#[test]
fn the_idle_recheck_is_set_in_seconds_and_zero_turns_it_off() {
    use super::{IDLE_RECHECK, idle_recheck_from};
    assert_eq!(idle_recheck_from(None), Some(IDLE_RECHECK));
    assert_eq!(idle_recheck_from(Some("2.5")), Some(Duration::from_millis(2500)));
    assert_eq!(idle_recheck_from(Some("0")), None);
    assert_eq!(idle_recheck_from(Some("soon")), Some(IDLE_RECHECK), "not a number: the default");
    assert_eq!(idle_recheck_from(Some("-1")), Some(IDLE_RECHECK));
}

#[tokio::test(start_paused = true)]
async fn a_silent_client_is_cut_off_after_the_first_command_timeout() {
    let (_dir, at) = listener().await;
    let (lines, after) = until_closed(at, &[]).await;
    assert!(lines[0].starts_with("* OK"), "{lines:?}");
    assert!(lines.last().is_some_and(|l| l.starts_with("* BYE")), "{lines:?}");
    assert!(after >= FIRST_COMMAND_TIMEOUT && after < FIRST_COMMAND_TIMEOUT + Duration::from_secs(5), "{after:?}");
}

#[tokio::test(start_paused = true)]
async fn a_client_that_talks_but_never_logs_in_is_cut_off_at_the_login_deadline() {
    let (_dir, at) = listener().await;
    let chatter = vec![("a NOOP", Duration::from_secs(20)); 5];
    let (lines, after) = until_closed(at, &chatter).await;
    assert!(lines.iter().filter(|l| l.starts_with("a OK")).count() >= 2, "NOOPs were answered: {lines:?}");
    assert!(lines.last().is_some_and(|l| l.starts_with("* BYE")), "{lines:?}");
    assert!(after >= LOGIN_DEADLINE && after < LOGIN_DEADLINE + Duration::from_secs(5), "{after:?}");
}
