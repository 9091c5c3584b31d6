//! The TLS certificate for SMTP, IMAP (and the UI if served directly): the configured PEM files,
//! or a self-signed certificate for `hostname` generated in the data dir on first start.

use std::path::PathBuf;
use std::sync::Arc;

use rustls::ServerConfig;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};

use crate::config::Config;

#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("cannot read {path}: {reason}")]
    Read { path: PathBuf, reason: String },
    #[error("cannot generate a self-signed certificate: {0}")]
    Generate(String),
    #[error("cannot write {path}: {source}")]
    Write { path: PathBuf, source: std::io::Error },
    #[error("the certificate and key do not form a usable TLS configuration: {0}")]
    Config(String),
}

/// Where the certificate and key are: configured, or the self-signed pair in the data dir.
pub fn paths(config: &Config) -> (PathBuf, PathBuf) {
    match (&config.tls.cert, &config.tls.key) {
        (Some(cert), Some(key)) => (cert.clone(), key.clone()),
        _ => (config.data_dir.join("tls/cert.pem"), config.data_dir.join("tls/key.pem")),
    }
}

/// Generates the self-signed certificate when no certificate is configured and none exists yet.
pub fn ensure_certificate(config: &Config) -> Result<(), TlsError> {
    let (cert_path, key_path) = paths(config);
    if config.tls.cert.is_some() || cert_path.exists() {
        return Ok(());
    }
    let mut names = vec![config.hostname.clone()];
    if config.hostname != "localhost" {
        names.push("localhost".into());
    }
    let certified = rcgen::generate_simple_self_signed(names).map_err(|e| TlsError::Generate(e.to_string()))?;
    crate::crypto::write_private_file(&key_path, certified.signing_key.serialize_pem().as_bytes())
        .map_err(|source| TlsError::Write { path: key_path.clone(), source })?;
    std::fs::write(&cert_path, certified.cert.pem()).map_err(|source| TlsError::Write { path: cert_path, source })
}

/// The rustls server configuration from the certificate and key.
pub fn server_config(config: &Config) -> Result<Arc<ServerConfig>, TlsError> {
    let (cert_path, key_path) = paths(config);
    let read = |path: &PathBuf, e: &dyn std::fmt::Display| TlsError::Read { path: path.clone(), reason: e.to_string() };
    let certs = CertificateDer::pem_file_iter(&cert_path)
        .map_err(|e| read(&cert_path, &e))?
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| read(&cert_path, &e))?;
    let key = PrivateKeyDer::from_pem_file(&key_path).map_err(|e| read(&key_path, &e))?;
    let server = ServerConfig::builder()
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .map_err(|e| TlsError::Config(e.to_string()))?;
    Ok(Arc::new(server))
}
