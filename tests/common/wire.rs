//! A raw line client for the appliance's SMTP and IMAP listeners: connects from a chosen loopback
//! address (so tests can be several clients), upgrades to TLS trusting the appliance's
//! self-signed certificate, and reads CRLF lines with a timeout.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream};
use tokio_rustls::TlsConnector;
use tokio_rustls::client::TlsStream;

use super::Appliance;

/// How long a test waits for one line.
pub const LINE_WAIT: Duration = Duration::from_secs(30);

pub fn b64(text: &str) -> String {
    BASE64.encode(text)
}

/// A TCP connection to `target` from `source` (any address of 127.0.0.0/8).
pub async fn connect_from(source: IpAddr, target: SocketAddr) -> TcpStream {
    let socket = TcpSocket::new_v4().expect("socket");
    socket.bind(SocketAddr::new(source, 0)).expect("bind the source address");
    socket.connect(target).await.unwrap_or_else(|e| panic!("connect {source} -> {target}: {e}"))
}

/// Trusts the appliance's self-signed certificate (it names the configured hostname).
pub fn tls_config(appliance: &Appliance) -> Arc<rustls::ClientConfig> {
    let pem = appliance.data_dir().join("tls/cert.pem");
    let mut roots = rustls::RootCertStore::empty();
    for cert in CertificateDer::pem_file_iter(&pem).expect("read cert.pem") {
        roots.add(cert.expect("a certificate")).expect("add the certificate");
    }
    Arc::new(rustls::ClientConfig::builder().with_root_certificates(roots).with_no_client_auth())
}

/// A stream with a read buffer.
pub struct Wire<S> {
    pub stream: S,
    buffer: Vec<u8>,
}

impl Wire<TcpStream> {
    pub async fn from(source: IpAddr, target: SocketAddr) -> Wire<TcpStream> {
        Wire { stream: connect_from(source, target).await, buffer: Vec::new() }
    }

    /// The TLS handshake (implicit TLS, or after STARTTLS).
    pub async fn into_tls(self, config: Arc<rustls::ClientConfig>) -> Wire<TlsStream<TcpStream>> {
        assert!(self.buffer.is_empty(), "nothing may follow the reply to STARTTLS");
        let name = ServerName::try_from("mail.grove.test").expect("server name");
        let stream = tokio::time::timeout(LINE_WAIT, TlsConnector::from(config).connect(name, self.stream))
            .await
            .expect("handshake in time")
            .expect("TLS handshake");
        Wire { stream, buffer: Vec::new() }
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> Wire<S> {
    pub async fn send(&mut self, line: &str) {
        self.stream.write_all(format!("{line}\r\n").as_bytes()).await.expect("write");
        self.stream.flush().await.expect("flush");
    }

    /// One CRLF line without its line end, or `None` once the server closed the stream.
    pub async fn line(&mut self) -> Option<String> {
        loop {
            if let Some(end) = self.buffer.windows(2).position(|w| w == b"\r\n") {
                let line: Vec<u8> = self.buffer.drain(..end + 2).collect();
                return Some(String::from_utf8_lossy(&line[..end]).into_owned());
            }
            let mut chunk = [0u8; 4096];
            match tokio::time::timeout(LINE_WAIT, self.stream.read(&mut chunk)).await.expect("a line in time") {
                Ok(0) | Err(_) => return None,
                Ok(n) => self.buffer.extend_from_slice(&chunk[..n]),
            }
        }
    }

    /// An SMTP reply: its code and its last line (multi-line replies are read whole).
    pub async fn smtp_reply(&mut self) -> (u16, String) {
        loop {
            let line = self.line().await.expect("an SMTP reply");
            let code = line.get(..3).and_then(|c| c.parse().ok()).unwrap_or_else(|| panic!("bad reply {line:?}"));
            if line.as_bytes().get(3) != Some(&b'-') {
                return (code, line);
            }
        }
    }

    pub async fn smtp(&mut self, line: &str) -> (u16, String) {
        self.send(line).await;
        self.smtp_reply().await
    }

    /// Sends an IMAP command and reads to its tagged completion; returns that line ("" when the
    /// server closed the connection first) and the untagged lines before it.
    pub async fn imap(&mut self, tag: &str, command: &str) -> (String, Vec<String>) {
        self.send(&format!("{tag} {command}")).await;
        self.imap_completion(tag).await
    }

    /// The lines up to `tag`'s completion (or a `+` continuation, returned as the completion).
    pub async fn imap_completion(&mut self, tag: &str) -> (String, Vec<String>) {
        let mut untagged = Vec::new();
        while let Some(line) = self.line().await {
            if line.starts_with(&format!("{tag} ")) || line.starts_with('+') {
                return (line, untagged);
            }
            untagged.push(line);
        }
        (String::new(), untagged)
    }
}

/// An IMAP quoted string.
pub fn quoted(text: &str) -> String {
    format!("\"{}\"", text.replace('\\', "\\\\").replace('"', "\\\""))
}
