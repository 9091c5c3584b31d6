//! The TLS certificate for SMTP, IMAP (and the UI if served directly): the configured PEM files
//! (`[tls] cert` and `key`), or a self-signed certificate for `hostname` kept in the data dir.
//!
//! The self-signed certificate names `hostname` (CN and subjectAltName, plus `localhost`) and is
//! valid for [`SELF_SIGNED_VALIDITY`] from the injected clock's now. It is replaced at start, and
//! by a check every [`RENEWAL_CHECK_INTERVAL`] while the appliance runs, once it expires within
//! [`RENEW_BEFORE`] or its names no longer match `hostname`. The listeners share one
//! [`Certificates`] cell as their rustls certificate resolver, so a renewed certificate is
//! presented from the next handshake on without a restart. Configured certificates are read once
//! at start and never touched.

use std::path::PathBuf;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use rustls::ServerConfig;
use rustls::crypto::{CryptoProvider, aws_lc_rs};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;

use crate::app::App;
use crate::config::Config;

/// How long a generated self-signed certificate is valid.
pub const SELF_SIGNED_VALIDITY: i64 = 365 * 24 * 3600;
/// A self-signed certificate expiring within this is replaced.
pub const RENEW_BEFORE: i64 = 30 * 24 * 3600;
/// How often the running appliance checks whether the self-signed certificate needs replacing.
pub const RENEWAL_CHECK_INTERVAL: Duration = Duration::from_secs(24 * 3600);

#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("Cannot read {path}: {reason}")]
    Read { path: PathBuf, reason: String },
    #[error("Cannot generate a self-signed certificate: {0}")]
    Generate(String),
    #[error("Cannot write {path}: {source}")]
    Write { path: PathBuf, source: std::io::Error },
    #[error("The certificate and key do not form a usable TLS configuration: {0}")]
    Config(String),
}

/// True when `[tls] cert` and `key` name the certificate (no self-signed one is made).
pub fn is_configured(config: &Config) -> bool {
    config.tls.cert.is_some() && config.tls.key.is_some()
}

/// Where the certificate and key are: configured, or the self-signed pair in the data dir.
pub fn paths(config: &Config) -> (PathBuf, PathBuf) {
    match (&config.tls.cert, &config.tls.key) {
        (Some(cert), Some(key)) => (cert.clone(), key.clone()),
        _ => (config.data_dir.join("tls/cert.pem"), config.data_dir.join("tls/key.pem")),
    }
}

/// What a user needs to recognise (pin) a certificate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CertificateInfo {
    /// The subject, e.g. `CN=mail.example.com`.
    pub subject: String,
    /// The DNS names of the subjectAltName extension.
    pub names: Vec<String>,
    /// Unix seconds.
    pub not_before: i64,
    /// Unix seconds.
    pub not_after: i64,
    /// SHA-256 of the DER certificate, as `openssl x509 -fingerprint -sha256` prints it
    /// (upper-case hex pairs joined by colons).
    pub sha256: String,
    /// Issuer and subject are the same.
    pub self_signed: bool,
}

/// Reads what identifies a DER certificate.
pub fn describe(der: &[u8]) -> Result<CertificateInfo, String> {
    let (_, cert) = x509_parser::parse_x509_certificate(der).map_err(|e| e.to_string())?;
    let names = match cert.subject_alternative_name().map_err(|e| e.to_string())? {
        Some(extension) => extension
            .value
            .general_names
            .iter()
            .filter_map(|name| match name {
                x509_parser::extensions::GeneralName::DNSName(dns) => Some(dns.to_string()),
                _ => None,
            })
            .collect(),
        None => Vec::new(),
    };
    Ok(CertificateInfo {
        subject: cert.subject().to_string(),
        names,
        not_before: cert.validity().not_before.timestamp(),
        not_after: cert.validity().not_after.timestamp(),
        sha256: fingerprint(der),
        self_signed: cert.subject().as_raw() == cert.issuer().as_raw(),
    })
}

/// The SHA-256 fingerprint of DER bytes in `AB:CD:...` form.
pub fn fingerprint(der: &[u8]) -> String {
    let digest = ::aws_lc_rs::digest::digest(&::aws_lc_rs::digest::SHA256, der);
    digest.as_ref().iter().map(|byte| format!("{byte:02X}")).collect::<Vec<_>>().join(":")
}

/// The first certificate of the PEM file the listeners use.
pub fn current(config: &Config) -> Result<CertificateInfo, TlsError> {
    let (cert_path, _) = paths(config);
    let certs = read_certificates(&cert_path)?;
    let first =
        certs.first().ok_or_else(|| TlsError::Read { path: cert_path.clone(), reason: "no certificate".into() })?;
    describe(first).map_err(|reason| TlsError::Read { path: cert_path, reason })
}

/// The names a self-signed certificate for `hostname` carries.
fn self_signed_names(hostname: &str) -> Vec<String> {
    let mut names = vec![hostname.to_string()];
    if hostname != "localhost" {
        names.push("localhost".into());
    }
    names
}

/// True when the self-signed certificate `info` should be replaced at `now`.
pub fn needs_renewal(info: &CertificateInfo, hostname: &str, now: i64) -> bool {
    let expected = format!("CN={hostname}");
    info.not_after - now < RENEW_BEFORE || info.names != self_signed_names(hostname) || info.subject != expected
}

/// Makes the self-signed certificate when no certificate is configured and the stored one is
/// missing, unreadable, due for renewal at `now`, or for another hostname. Returns true when it
/// wrote a new one.
pub fn ensure_certificate(config: &Config, now: i64) -> Result<bool, TlsError> {
    if is_configured(config) {
        return Ok(false);
    }
    let (cert_path, key_path) = paths(config);
    if let Ok(info) = current(config)
        && !needs_renewal(&info, &config.hostname, now)
        && load(config).is_ok()
    {
        return Ok(false);
    }
    let (cert_pem, key_pem) = generate(&config.hostname, now)?;
    replace_file(&key_path, key_pem.as_bytes())?;
    replace_file(&cert_path, cert_pem.as_bytes())?;
    tracing::info!(hostname = %config.hostname, path = %cert_path.display(), "self-signed certificate generated");
    Ok(true)
}

/// A self-signed certificate and its key (PEM) for `hostname`, valid from `now` for a year.
fn generate(hostname: &str, now: i64) -> Result<(String, String), TlsError> {
    let failed = |e: &dyn std::fmt::Display| TlsError::Generate(e.to_string());
    let mut params = rcgen::CertificateParams::new(self_signed_names(hostname)).map_err(|e| failed(&e))?;
    let mut subject = rcgen::DistinguishedName::new();
    subject.push(rcgen::DnType::CommonName, hostname);
    params.distinguished_name = subject;
    params.not_before = time::OffsetDateTime::from_unix_timestamp(now).map_err(|e| failed(&e))?;
    params.not_after = time::OffsetDateTime::from_unix_timestamp(now + SELF_SIGNED_VALIDITY).map_err(|e| failed(&e))?;
    let key = rcgen::KeyPair::generate().map_err(|e| failed(&e))?;
    let cert = params.self_signed(&key).map_err(|e| failed(&e))?;
    Ok((cert.pem(), key.serialize_pem()))
}

/// Writes `path` through a temporary file renamed over it, readable only by its owner.
fn replace_file(path: &std::path::Path, contents: &[u8]) -> Result<(), TlsError> {
    let failed = |source| TlsError::Write { path: path.to_path_buf(), source };
    let temporary = path.with_extension("pem.new");
    match std::fs::remove_file(&temporary) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(failed(e)),
        _ => {}
    }
    crate::crypto::write_private_file(&temporary, contents).map_err(failed)?;
    std::fs::rename(&temporary, path).map_err(failed)
}

fn read_certificates(path: &PathBuf) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let read = |e: &dyn std::fmt::Display| TlsError::Read { path: path.clone(), reason: e.to_string() };
    CertificateDer::pem_file_iter(path).map_err(|e| read(&e))?.collect::<Result<Vec<_>, _>>().map_err(|e| read(&e))
}

/// The certificate and key files as rustls's certified key.
fn load(config: &Config) -> Result<Arc<CertifiedKey>, TlsError> {
    let (cert_path, key_path) = paths(config);
    let certs = read_certificates(&cert_path)?;
    let key = PrivateKeyDer::from_pem_file(&key_path)
        .map_err(|e| TlsError::Read { path: key_path.clone(), reason: e.to_string() })?;
    let provider = CryptoProvider::get_default().cloned().unwrap_or_else(|| Arc::new(aws_lc_rs::default_provider()));
    if certs.is_empty() {
        return Err(TlsError::Config(format!("{} holds no certificate", cert_path.display())));
    }
    let certified = CertifiedKey::from_der(certs, key, &provider).map_err(|e| TlsError::Config(e.to_string()))?;
    Ok(Arc::new(certified))
}

/// The certificate the listeners present, replaceable while they run.
#[derive(Debug)]
pub struct Certificates {
    current: RwLock<Arc<CertifiedKey>>,
}

impl Certificates {
    /// Reads the certificate and key files (see [`ensure_certificate`]).
    pub fn load(config: &Config) -> Result<Arc<Certificates>, TlsError> {
        Ok(Arc::new(Certificates { current: RwLock::new(load(config)?) }))
    }

    /// A rustls server configuration presenting whatever certificate this cell holds.
    pub fn server_config(self: &Arc<Self>) -> Arc<ServerConfig> {
        Arc::new(ServerConfig::builder().with_no_client_auth().with_cert_resolver(self.clone()))
    }

    /// The certificate presented now (DER).
    pub fn presented(&self) -> CertificateDer<'static> {
        let current = self.current.read().unwrap_or_else(std::sync::PoisonError::into_inner);
        current.cert[0].clone()
    }

    /// Replaces the self-signed certificate when it is due at `now`, and presents the new one.
    /// Returns true when it was replaced.
    pub fn renew_if_due(&self, config: &Config, now: i64) -> Result<bool, TlsError> {
        if !ensure_certificate(config, now)? {
            return Ok(false);
        }
        let renewed = load(config)?;
        *self.current.write().unwrap_or_else(std::sync::PoisonError::into_inner) = renewed;
        Ok(true)
    }
}

impl ResolvesServerCert for Certificates {
    fn resolve(&self, _client_hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(self.current.read().unwrap_or_else(std::sync::PoisonError::into_inner).clone())
    }
}

/// The rustls server configuration from the certificate and key files, as they are now.
pub fn server_config(config: &Config) -> Result<Arc<ServerConfig>, TlsError> {
    Ok(Certificates::load(config)?.server_config())
}

/// Checks the self-signed certificate every [`RENEWAL_CHECK_INTERVAL`] and renews it in place
/// (nothing to do for configured certificates).
pub fn start_renewal(app: &App, certificates: Arc<Certificates>) {
    if is_configured(&app.config) {
        return;
    }
    let (config, clock, mut shutdown) = (app.config.clone(), app.clock.clone(), app.shutdown.clone());
    app.spawn_supervised("certificate renewal", async move {
        loop {
            tokio::select! {
                _ = tokio::time::sleep(RENEWAL_CHECK_INTERVAL) => {}
                _ = shutdown.changed() => return Ok(()),
            }
            match certificates.renew_if_due(&config, clock.unix()) {
                Ok(true) => tracing::info!("the renewed self-signed certificate is now presented"),
                Ok(false) => {}
                Err(e) => tracing::error!(error = %e, "renewing the self-signed certificate failed"),
            }
        }
    });
}

#[cfg(test)]
mod tests;
