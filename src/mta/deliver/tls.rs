//! TLS for outbound SMTP.
//!
//! To recipients' MX hosts TLS is *opportunistic* (RFC 3207 as MTAs practise it without DANE or
//! MTA-STS): when the server offers STARTTLS we encrypt, but we do NOT verify its certificate.
//! MX host certificates are very often self-signed, expired or issued for another name, and an
//! MTA that refused them would fall back to plaintext anyway, which protects nothing more. So the
//! certificate is accepted as is; the handshake signatures are still checked, so the session key
//! belongs to whoever presented the certificate. This protects against passive eavesdropping,
//! not against an active attacker. (DANE or MTA-STS would add verification per domain later.)
//!
//! To a relay (smarthost), which receives our credentials, the certificate IS verified: against
//! the platform's trust store, or against the certificates of its `smarthost_tls_ca` file (a
//! private CA, or the relay's own self-signed certificate).

use std::collections::HashMap;
use std::sync::Arc;

use rustls::DigitallySignedStruct;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::{WebPkiSupportedAlgorithms, aws_lc_rs};
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use tokio_rustls::TlsConnector;

/// The two connectors outbound delivery uses.
#[derive(Clone)]
pub struct Connectors {
    /// For MX hosts: encrypts, accepts any certificate.
    pub opportunistic: TlsConnector,
    /// For relays: verifies the certificate; `None` if the platform verifier failed.
    pub verified: Option<TlsConnector>,
    /// For relays with a `smarthost_tls_ca` file: verifies against its certificates, by path. A
    /// file that cannot be read any more (it was checked at start) has no entry.
    pub private: HashMap<String, TlsConnector>,
}

impl Connectors {
    /// The connectors, with one verifying against each of the `ca_files`.
    pub fn new<'a>(ca_files: impl IntoIterator<Item = &'a str>) -> Result<Connectors, rustls::Error> {
        let verified = match mail_send::smtp::tls::build_tls_connector(false) {
            Ok(connector) => Some(connector),
            Err(reason) => {
                tracing::warn!(%reason, "no certificate verifier: smarthost delivery will be deferred");
                None
            }
        };
        let mut private = HashMap::new();
        for path in ca_files {
            match crate::config::read_ca_file(path) {
                Ok(certs) => {
                    private.insert(path.to_string(), trusting(certs)?);
                }
                Err(reason) => tracing::warn!(%reason, "a relay's CA file: its delivery will be deferred"),
            }
        }
        Ok(Connectors { opportunistic: opportunistic()?, verified, private })
    }
}

/// A client configuration that verifies server certificates against `certs` alone.
fn trusting(certs: Vec<CertificateDer<'static>>) -> Result<TlsConnector, rustls::Error> {
    let mut roots = rustls::RootCertStore::empty();
    for cert in certs {
        roots.add(cert)?;
    }
    let config = rustls::ClientConfig::builder_with_provider(Arc::new(aws_lc_rs::default_provider()))
        .with_safe_default_protocol_versions()?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(TlsConnector::from(Arc::new(config)))
}

/// A client configuration that accepts any server certificate (see the module doc). The load
/// generator uses it too: appliances start with a self-signed certificate.
pub fn opportunistic() -> Result<TlsConnector, rustls::Error> {
    let provider = Arc::new(aws_lc_rs::default_provider());
    let verifier = AnyCertificate { algorithms: provider.signature_verification_algorithms };
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(verifier))
        .with_no_client_auth();
    Ok(TlsConnector::from(Arc::new(config)))
}

/// Accepts every certificate, but checks handshake signatures with the provider's algorithms.
#[derive(Debug)]
struct AnyCertificate {
    algorithms: WebPkiSupportedAlgorithms,
}

impl ServerCertVerifier for AnyCertificate {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        self.algorithms.supported_schemes()
    }
}
