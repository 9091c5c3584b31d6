//! In-process tests of `session.rs` against a small SMTP server on loopback: opportunistic
//! STARTTLS with a self-signed certificate, the plaintext fallback after a failed handshake (and
//! the deferral when fallback is off), per-recipient refusals, RSET between messages on one
//! connection, PIPELINING (against a server that answers nothing before DATA), and the
//! smarthost's verified TLS and AUTH. (Real peers — Postfix, aiosmtpd — are
//! exercised by tests/delivery.rs.)

use std::net::IpAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rustls::ServerConfig;
use rustls::crypto::aws_lc_rs;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncWrite, AsyncWriteExt, BufReader};
use tokio::net::TcpListener;
use tokio_rustls::TlsAcceptor;

use crate::config::SmarthostTls;

use super::classify::Severity;
use super::route::Target;
use super::session::{Egress, Security, Settings, Trust, connect};
use super::tls::Connectors;

/// How the test server answers STARTTLS.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Tls {
    /// A real handshake with a self-signed certificate.
    SelfSigned,
    /// "220", then garbage instead of a handshake.
    Broken,
    /// Like `SelfSigned`, then PIPELINING offered, and no reply to RSET, MAIL or RCPT sent
    /// before DATA arrives (a client that waits for each reply would hang).
    Pipelining,
}

/// What the server saw: one line per command, prefixed "tls " once encrypted.
type Transcript = Arc<Mutex<Vec<String>>>;

/// Starts the server with a fresh certificate; returns its target and transcript.
async fn server(tls: Tls) -> (Target, Transcript) {
    server_with(tls, certificate()).await
}

/// Starts the server with `certificate`; returns its target and transcript.
async fn server_with(tls: Tls, certificate: rcgen::CertifiedKey<rcgen::KeyPair>) -> (Target, Transcript) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let transcript: Transcript = Arc::default();
    let acceptor = TlsAcceptor::from(server_config(certificate));
    let seen = transcript.clone();
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            let (seen, acceptor) = (seen.clone(), acceptor.clone());
            tokio::spawn(async move {
                let mut reader = BufReader::new(stream);
                reader.get_mut().write_all(b"220 mx.tls.test ESMTP\r\n").await.unwrap();
                if dialogue(&mut reader, &seen, "", true, false).await == Some(()) {
                    let mut stream = reader.into_inner();
                    stream.write_all(b"220 go ahead\r\n").await.unwrap();
                    if tls == Tls::Broken {
                        let _ = stream.write_all(b"this is not TLS\r\n").await;
                        return;
                    }
                    let Ok(encrypted) = acceptor.accept(stream).await else { return };
                    let pipelining = tls == Tls::Pipelining;
                    dialogue(&mut BufReader::new(encrypted), &seen, "tls ", false, pipelining).await;
                }
            });
        }
    });
    let target = Target { host: "mx.tls.test".into(), ip: "127.0.0.1".parse::<IpAddr>().unwrap(), port };
    (target, transcript)
}

/// Answers commands until QUIT, EOF or (returning `Some`) STARTTLS.
async fn dialogue<S: AsyncRead + AsyncWrite + Unpin>(
    reader: &mut BufReader<S>,
    seen: &Transcript,
    prefix: &str,
    offer_tls: bool,
    pipelining: bool,
) -> Option<()> {
    let mut line = String::new();
    let mut held: Vec<u8> = Vec::new();
    loop {
        line.clear();
        if reader.read_line(&mut line).await.unwrap_or(0) == 0 {
            return None;
        }
        let command = line.trim_end().to_string();
        seen.lock().unwrap().push(format!("{prefix}{command}"));
        let upper = command.to_ascii_uppercase();
        let reply: &[u8] = if upper.starts_with("EHLO") {
            if offer_tls {
                b"250-mx.tls.test\r\n250 STARTTLS\r\n"
            } else if pipelining {
                b"250-mx.tls.test\r\n250-PIPELINING\r\n250 AUTH PLAIN\r\n"
            } else {
                b"250-mx.tls.test\r\n250 AUTH PLAIN\r\n"
            }
        } else if upper.starts_with("AUTH ") {
            b"235 2.7.0 authenticated\r\n"
        } else if upper == "STARTTLS" {
            return Some(());
        } else if upper.starts_with("RCPT TO:<NOBODY@") {
            b"550 5.1.1 no such user\r\n"
        } else if upper == "DATA" {
            held.extend_from_slice(b"354 go on\r\n");
            reader.get_mut().write_all(&std::mem::take(&mut held)).await.ok()?;
            let mut body = String::new();
            while body != ".\r\n" {
                body.clear();
                if reader.read_line(&mut body).await.ok()? == 0 {
                    return None;
                }
            }
            b"250 2.0.0 queued\r\n"
        } else if upper == "QUIT" {
            let _ = reader.get_mut().write_all(b"221 bye\r\n").await;
            return None;
        } else {
            b"250 2.0.0 ok\r\n"
        };
        let envelope = ["RSET", "MAIL", "RCPT"].iter().any(|c| upper.starts_with(c));
        if pipelining && envelope {
            held.extend_from_slice(reply);
            continue;
        }
        reader.get_mut().write_all(reply).await.ok()?;
    }
}

fn certificate() -> rcgen::CertifiedKey<rcgen::KeyPair> {
    rcgen::generate_simple_self_signed(vec!["mx.tls.test".to_string()]).unwrap()
}

fn server_config(certified: rcgen::CertifiedKey<rcgen::KeyPair>) -> Arc<ServerConfig> {
    let cert = CertificateDer::from(certified.cert.der().to_vec());
    let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(certified.signing_key.serialize_der()));
    let config = ServerConfig::builder_with_provider(Arc::new(aws_lc_rs::default_provider()))
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(vec![cert], key)
        .unwrap();
    Arc::new(config)
}

fn settings(connectors: &Connectors, fallback_plaintext: bool) -> Settings<'_> {
    Settings {
        hostname: "mail.grove.test",
        timeout: Duration::from_secs(5),
        egress: Egress::default(),
        connectors,
        security: Security::Opportunistic { fallback_plaintext },
    }
}

#[tokio::test]
async fn opportunistic_tls_accepts_a_self_signed_certificate() {
    let connectors = Connectors::new([]).unwrap();
    let (target, transcript) = server(Tls::SelfSigned).await;
    let mut session = connect(&[target], &settings(&connectors, false)).await.expect("a TLS session");
    assert_eq!(session.security_note(), None, "encrypted, nothing to note");
    let replies = session
        .send("ann@grove.test", &["bob@tls.test".into(), "nobody@tls.test".into()], b"Subject: hi\r\n\r\nhi\r\n")
        .await;
    assert_eq!(replies[0].describe(), "250 2.0.0 queued");
    assert_eq!(
        (replies[1].describe().as_str(), replies[1].severity()),
        ("550 5.1.1 no such user", Severity::Permanent)
    );
    let again = session.send("ann@grove.test", &["carl@tls.test".into()], b"Subject: two\r\n\r\n2\r\n").await;
    assert_eq!(again[0].severity(), Severity::Success);
    assert!(session.usable());
    session.close().await;

    let seen = transcript.lock().unwrap().clone();
    let after_tls: Vec<&str> = seen.iter().filter_map(|l| l.strip_prefix("tls ")).collect();
    assert_eq!(
        after_tls,
        [
            "EHLO mail.grove.test",
            "MAIL FROM:<ann@grove.test>",
            "RCPT TO:<bob@tls.test>",
            "RCPT TO:<nobody@tls.test>",
            "DATA",
            "RSET",
            "MAIL FROM:<ann@grove.test>",
            "RCPT TO:<carl@tls.test>",
            "DATA",
            "QUIT",
        ],
        "{seen:?}"
    );
}

#[tokio::test]
async fn with_pipelining_the_envelope_goes_in_one_write_and_replies_are_matched() {
    let connectors = Connectors::new([]).unwrap();
    let (target, transcript) = server(Tls::Pipelining).await;
    let mut session = connect(&[target], &settings(&connectors, false)).await.expect("a TLS session");
    let replies = session
        .send("ann@grove.test", &["bob@tls.test".into(), "nobody@tls.test".into()], b"Subject: hi\r\n\r\nhi\r\n")
        .await;
    assert_eq!(replies[0].describe(), "250 2.0.0 queued");
    assert_eq!(replies[1].describe(), "550 5.1.1 no such user");
    let again = session.send("ann@grove.test", &["carl@tls.test".into()], b"Subject: two\r\n\r\n2\r\n").await;
    assert_eq!(again[0].describe(), "250 2.0.0 queued");
    assert!(session.usable());

    // This server says 354 even when no recipient was accepted: nothing is sent, the session ends.
    let none = session.send("ann@grove.test", &["nobody@tls.test".into()], b"Subject: 3\r\n\r\n3\r\n").await;
    assert_eq!(none[0].describe(), "550 5.1.1 no such user");
    assert!(!session.usable());
    session.close().await;

    let seen = transcript.lock().unwrap().clone();
    let after_tls: Vec<&str> = seen.iter().filter_map(|l| l.strip_prefix("tls ")).collect();
    assert_eq!(
        after_tls,
        [
            "EHLO mail.grove.test",
            "MAIL FROM:<ann@grove.test>",
            "RCPT TO:<bob@tls.test>",
            "RCPT TO:<nobody@tls.test>",
            "DATA",
            "RSET",
            "MAIL FROM:<ann@grove.test>",
            "RCPT TO:<carl@tls.test>",
            "DATA",
            "RSET",
            "MAIL FROM:<ann@grove.test>",
            "RCPT TO:<nobody@tls.test>",
            "DATA",
        ],
        "{seen:?}"
    );
}

#[tokio::test]
async fn a_failed_handshake_falls_back_to_plaintext_when_allowed() {
    let connectors = Connectors::new([]).unwrap();
    let (target, transcript) = server(Tls::Broken).await;
    let mut session = connect(&[target], &settings(&connectors, true)).await.expect("a plaintext session");
    let note = session.security_note().expect("the fallback is noted");
    assert!(note.contains("STARTTLS with mx.tls.test [127.0.0.1] failed") && note.contains("without TLS"), "{note}");
    let replies = session.send("ann@grove.test", &["bob@tls.test".into()], b"Subject: hi\r\n\r\nhi\r\n").await;
    assert_eq!(replies[0].severity(), Severity::Success);
    session.close().await;
    let seen = transcript.lock().unwrap().clone();
    assert_eq!(seen.iter().filter(|l| *l == "STARTTLS").count(), 1, "the second connection skips STARTTLS: {seen:?}");
    assert!(seen.contains(&"MAIL FROM:<ann@grove.test>".to_string()), "{seen:?}");
}

#[tokio::test]
async fn a_failed_handshake_defers_when_fallback_is_off() {
    let connectors = Connectors::new([]).unwrap();
    let (target, transcript) = server(Tls::Broken).await;
    let Err(reply) = connect(&[target], &settings(&connectors, false)).await else {
        panic!("no session without TLS when fallback is off");
    };
    assert_eq!((reply.status.as_str(), reply.severity()), ("4.7.5", Severity::Temporary), "{reply:?}");
    assert!(!transcript.lock().unwrap().iter().any(|l| l.starts_with("MAIL")));
}

#[tokio::test]
async fn a_refused_connection_is_temporary_and_the_next_target_is_tried() {
    let connectors = Connectors::new([]).unwrap();
    let closed = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let dead = Target {
        host: "dead.tls.test".into(),
        ip: "127.0.0.1".parse().unwrap(),
        port: closed.local_addr().unwrap().port(),
    };
    drop(closed);
    let Err(reply) = connect(std::slice::from_ref(&dead), &settings(&connectors, true)).await else {
        panic!("nothing listens there");
    };
    assert_eq!((reply.status.as_str(), reply.severity()), ("4.4.1", Severity::Temporary), "{reply:?}");
    let (alive, _) = server(Tls::SelfSigned).await;
    let session = connect(&[dead, alive], &settings(&connectors, true)).await.expect("the second target");
    session.close().await;
}

fn smarthost(connectors: &Connectors) -> Settings<'_> {
    let credentials = Some(mail_send::Credentials::new("relay-user".to_string(), "relay-pass".to_string()));
    Settings {
        security: Security::Smarthost { credentials, tls: SmarthostTls::Starttls, trust: Trust::Platform },
        ..settings(connectors, true)
    }
}

#[tokio::test]
async fn the_smarthost_needs_a_certificate_it_can_verify() {
    let connectors = Connectors::new([]).unwrap();
    let (target, transcript) = server(Tls::SelfSigned).await;
    let Err(reply) = connect(&[target], &smarthost(&connectors)).await else {
        panic!("an unverifiable smarthost certificate was accepted");
    };
    assert_eq!((reply.status.as_str(), reply.severity()), ("4.7.5", Severity::Temporary), "{reply:?}");
    assert!(!transcript.lock().unwrap().iter().any(|l| l.contains("AUTH")), "no credentials sent");
}

#[tokio::test]
async fn the_smarthost_gets_credentials_only_over_verified_tls() {
    // The relay's self-signed certificate is the one trusted, from a `smarthost_tls_ca` file.
    let certified = certificate();
    let dir = tempfile::tempdir().unwrap();
    let ca = dir.path().join("relay-ca.pem").to_string_lossy().into_owned();
    std::fs::write(&ca, certified.cert.pem()).unwrap();
    let connectors = Connectors::new([ca.as_str()]).unwrap();
    let mut settings = smarthost(&connectors);
    if let Security::Smarthost { trust, .. } = &mut settings.security {
        *trust = Trust::Ca(ca.clone());
    }
    let (target, transcript) = server_with(Tls::SelfSigned, certified).await;
    let session = connect(&[target], &settings).await.expect("an authenticated session");
    assert_eq!(session.security_note(), None);
    session.close().await;
    let seen = transcript.lock().unwrap().clone();
    // AUTH PLAIN of "\0relay-user\0relay-pass", after the handshake only.
    assert!(seen.contains(&"tls AUTH PLAIN AHJlbGF5LXVzZXIAcmVsYXktcGFzcw==".to_string()), "{seen:?}");
    assert!(!seen.iter().any(|l| l.starts_with("AUTH")), "{seen:?}");
}
