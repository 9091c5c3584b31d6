//! DKIM keys: generating a key pair, the TXT record that publishes it, and
//! the signing key the outbound MTA uses.
//!
//! Each sending domain gets its own key. The selector is dated —
//! `ig` + `YYYYMMDD` + `r` (RSA) or `e` (Ed25519), e.g. `ig20261123r` — so a
//! rotated key never collides with the one still published, and an RSA and an
//! Ed25519 key made on the same day differ. The DNS `p=` value is the base64
//! SubjectPublicKeyInfo DER for RSA-2048 (RFC 6376) and the raw 32-byte public
//! key for Ed25519 (RFC 8463). Private keys are kept as PKCS#8 DER.
//!
//! Signing goes through `mail-auth`, which already has an enum holding either
//! key kind ([`mail_auth::common::crypto::DkimKey`]); [`SigningKey`] wraps it
//! and adds a one-call [`SigningKey::sign`] with InboxGrove's header list and
//! relaxed/relaxed canonicalization.

use std::fmt;
use std::str::FromStr;

use aws_lc_rs::encoding::{AsDer as _, Pkcs8V1Der, PublicKeyX509Der};
use aws_lc_rs::rsa::{KeyPair as RsaKeyPair, KeySize};
use aws_lc_rs::signature::{Ed25519KeyPair, KeyPair as _};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use chrono::{Datelike as _, NaiveDate};
use mail_auth::common::crypto::{self as ma_crypto, Ed25519Key, RsaKey, Sha256};
use mail_auth::common::headers::{HeaderWriter as _, Writable};
use mail_auth::dkim::{Canonicalization, DkimSigner};
use rustls::pki_types::{PrivateKeyDer, PrivatePkcs8KeyDer};

/// Largest single TXT character-string, in bytes (RFC 1035 §3.3.14).
pub const TXT_STRING_MAX: usize = 255;

/// The headers every outgoing message is signed over (absent ones are
/// "over-signed", so they cannot be added later without breaking the signature).
pub const SIGNED_HEADERS: [&str; 13] = [
    "From",
    "To",
    "Cc",
    "Subject",
    "Date",
    "Message-ID",
    "MIME-Version",
    "Content-Type",
    "Reply-To",
    "In-Reply-To",
    "References",
    "List-Unsubscribe",
    "List-Unsubscribe-Post",
];

/// Why a DKIM key could not be made, read or used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DkimError {
    /// The key type named by the user is not one we support.
    #[error("“{0}” is not a DKIM key type; choose “rsa” or “ed25519”")]
    UnknownAlgorithm(String),
    /// The crypto library failed to generate a key.
    #[error("A new {0} DKIM key could not be generated; please try again")]
    Generate(&'static str),
    /// A stored private key could not be loaded.
    #[error("The stored {0} DKIM private key could not be read; generate a new key for this domain")]
    InvalidPrivateKey(&'static str),
    /// The message has no `From` header, which DKIM must always sign.
    #[error("The message has no From header, so it cannot be DKIM-signed")]
    MissingFrom,
    /// Signing a message failed.
    #[error("The message could not be DKIM-signed: {0}")]
    Sign(String),
}

/// The kind of DKIM key.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DkimAlgorithm {
    /// RSA-2048 with SHA-256; understood by every receiver.
    #[default]
    Rsa,
    /// Ed25519 with SHA-256 (RFC 8463); small, but not yet checked by every receiver.
    Ed25519,
}

impl DkimAlgorithm {
    /// The name used in the DNS `k=` tag, in forms and in storage: `rsa` or `ed25519`.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Rsa => "rsa",
            Self::Ed25519 => "ed25519",
        }
    }

    /// The letter that ends a selector: `r` or `e`.
    fn selector_suffix(self) -> char {
        match self {
            Self::Rsa => 'r',
            Self::Ed25519 => 'e',
        }
    }
}

impl fmt::Display for DkimAlgorithm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for DkimAlgorithm {
    type Err = DkimError;

    /// Accepts `rsa` or `ed25519`, ignoring case and surrounding spaces.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let word = s.trim();
        [Self::Rsa, Self::Ed25519]
            .into_iter()
            .find(|a| a.as_str().eq_ignore_ascii_case(word))
            .ok_or_else(|| DkimError::UnknownAlgorithm(word.to_owned()))
    }
}

/// A freshly generated DKIM key pair.
#[derive(Clone, PartialEq, Eq)]
pub struct DkimKey {
    /// RSA or Ed25519.
    pub algorithm: DkimAlgorithm,
    /// The selector, e.g. `ig20261123r`; the record lives at `SELECTOR._domainkey.DOMAIN`.
    pub selector: String,
    /// The private key, PKCS#8 DER. Secret.
    pub private_pkcs8_der: Vec<u8>,
    /// The `p=` value: base64 SPKI DER (RSA) or base64 raw 32-byte key (Ed25519).
    pub public_key_b64: String,
}

impl fmt::Debug for DkimKey {
    /// Never prints the private key.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DkimKey")
            .field("algorithm", &self.algorithm)
            .field("selector", &self.selector)
            .field("private_pkcs8_der", &"<redacted>")
            .field("public_key_b64", &self.public_key_b64)
            .finish()
    }
}

impl DkimKey {
    /// The TXT record value to publish, e.g. `v=DKIM1; k=rsa; p=MIIB…`.
    #[must_use]
    pub fn txt_value(&self) -> String {
        txt_value(self.algorithm, &self.public_key_b64)
    }
}

/// The TXT record value for a public key: `v=DKIM1; k=ALG; p=KEY`.
#[must_use]
pub fn txt_value(algorithm: DkimAlgorithm, public_key_b64: &str) -> String {
    format!("v=DKIM1; k={}; p={public_key_b64}", algorithm.as_str())
}

/// The dated selector for a key made on `today`: `ig` + `YYYYMMDD` + `r`/`e`.
#[must_use]
pub fn selector_for(algorithm: DkimAlgorithm, today: NaiveDate) -> String {
    format!("ig{:04}{:02}{:02}{}", today.year(), today.month(), today.day(), algorithm.selector_suffix())
}

/// Generates a new key pair: RSA-2048 or Ed25519, with a selector dated `today`.
///
/// # Errors
/// [`DkimError::Generate`] if the crypto library fails.
pub fn generate(algorithm: DkimAlgorithm, today: NaiveDate) -> Result<DkimKey, DkimError> {
    let (private_pkcs8_der, public_der) = match algorithm {
        DkimAlgorithm::Rsa => generate_rsa()?,
        DkimAlgorithm::Ed25519 => generate_ed25519()?,
    };
    Ok(DkimKey {
        algorithm,
        selector: selector_for(algorithm, today),
        private_pkcs8_der,
        public_key_b64: BASE64.encode(public_der),
    })
}

/// RSA-2048: returns (PKCS#8 DER, SubjectPublicKeyInfo DER).
fn generate_rsa() -> Result<(Vec<u8>, Vec<u8>), DkimError> {
    let fail = |_| DkimError::Generate("RSA");
    let pair = RsaKeyPair::generate(KeySize::Rsa2048).map_err(fail)?;
    let pkcs8: Pkcs8V1Der = pair.as_der().map_err(fail)?;
    let spki: PublicKeyX509Der = pair.public_key().as_der().map_err(fail)?;
    Ok((pkcs8.as_ref().to_vec(), spki.as_ref().to_vec()))
}

/// Ed25519: returns (PKCS#8 DER, raw 32-byte public key).
fn generate_ed25519() -> Result<(Vec<u8>, Vec<u8>), DkimError> {
    let fail = |_| DkimError::Generate("Ed25519");
    let rng = aws_lc_rs::rand::SystemRandom::new();
    let pkcs8 = Ed25519KeyPair::generate_pkcs8(&rng).map_err(fail)?;
    let pair = Ed25519KeyPair::from_pkcs8(pkcs8.as_ref()).map_err(|_| DkimError::Generate("Ed25519"))?;
    Ok((pkcs8.as_ref().to_vec(), pair.public_key().as_ref().to_vec()))
}

/// Splits a TXT value into character-strings of at most 255 bytes each,
/// never inside a UTF-8 character. An empty value gives one empty string.
#[must_use]
pub fn split_txt(value: &str) -> Vec<String> {
    let mut pieces = Vec::new();
    let mut rest = value;
    while rest.len() > TXT_STRING_MAX {
        let cut = (1..=TXT_STRING_MAX).rev().find(|&i| rest.is_char_boundary(i)).unwrap_or(rest.len());
        let (head, tail) = rest.split_at(cut);
        pieces.push(head.to_owned());
        rest = tail;
    }
    pieces.push(rest.to_owned());
    pieces
}

/// A private key loaded for signing, either kind. Implements `mail-auth`'s
/// [`SigningKey`](mail_auth::common::crypto::SigningKey) trait (also by
/// reference), so it can go straight into [`DkimSigner::from_key`].
pub struct SigningKey(ma_crypto::DkimKey);

/// Loads a PKCS#8 DER private key of the given kind for signing.
///
/// # Errors
/// [`DkimError::InvalidPrivateKey`] if the bytes are not a key of that kind.
pub fn signing_key(algorithm: DkimAlgorithm, pkcs8_der: &[u8]) -> Result<SigningKey, DkimError> {
    let inner = match algorithm {
        DkimAlgorithm::Rsa => RsaKey::<Sha256>::from_key_der(PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(pkcs8_der)))
            .map(ma_crypto::DkimKey::Rsa)
            .map_err(|_| DkimError::InvalidPrivateKey("RSA"))?,
        DkimAlgorithm::Ed25519 => Ed25519Key::from_pkcs8_der(pkcs8_der)
            .map(ma_crypto::DkimKey::Ed25519)
            .map_err(|_| DkimError::InvalidPrivateKey("Ed25519"))?,
    };
    Ok(SigningKey(inner))
}

impl SigningKey {
    /// Which kind of key this is.
    #[must_use]
    pub fn algorithm(&self) -> DkimAlgorithm {
        match self.0 {
            ma_crypto::DkimKey::Rsa(_) => DkimAlgorithm::Rsa,
            ma_crypto::DkimKey::Ed25519(_) => DkimAlgorithm::Ed25519,
        }
    }

    /// The underlying `mail-auth` key.
    #[must_use]
    pub fn into_inner(self) -> ma_crypto::DkimKey {
        self.0
    }

    /// Signs `message` (the complete RFC 5322 message, CRLF line endings) for
    /// `domain` with `selector`, over [`SIGNED_HEADERS`], relaxed/relaxed.
    /// Returns the `DKIM-Signature: …\r\n` header to put in front of the message.
    ///
    /// # Errors
    /// [`DkimError::MissingFrom`] if the message has no `From` header (RFC 6376
    /// §5.4 requires signing it); [`DkimError::Sign`] if the crypto library fails.
    pub fn sign(&self, domain: &str, selector: &str, message: &[u8]) -> Result<String, DkimError> {
        if !has_from_header(message) {
            return Err(DkimError::MissingFrom);
        }
        let signature = DkimSigner::from_key(self)
            .domain(domain)
            .selector(selector)
            .headers(SIGNED_HEADERS)
            .header_canonicalization(Canonicalization::Relaxed)
            .body_canonicalization(Canonicalization::Relaxed)
            .sign(message)
            .map_err(|e| DkimError::Sign(e.to_string()))?;
        Ok(signature.to_header())
    }
}

/// Whether the header section (up to the first empty line) has a `From:` field.
fn has_from_header(message: &[u8]) -> bool {
    message
        .split(|&b| b == b'\n')
        .map(|line| line.strip_suffix(b"\r").unwrap_or(line))
        .take_while(|line| !line.is_empty())
        .filter(|line| !line.starts_with(b" ") && !line.starts_with(b"\t"))
        .filter_map(|line| line.iter().position(|&b| b == b':').map(|colon| &line[..colon]))
        .any(|name| name.trim_ascii().eq_ignore_ascii_case(b"from"))
}

impl fmt::Debug for SigningKey {
    /// Never prints the private key.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("SigningKey").field(&self.algorithm()).finish()
    }
}

impl ma_crypto::SigningKey for SigningKey {
    type Hasher = Sha256;

    fn sign(&self, input: impl Writable) -> mail_auth::Result<Vec<u8>> {
        self.0.sign(input)
    }

    fn algorithm(&self) -> ma_crypto::Algorithm {
        self.0.algorithm()
    }
}

impl ma_crypto::SigningKey for &SigningKey {
    type Hasher = Sha256;

    fn sign(&self, input: impl Writable) -> mail_auth::Result<Vec<u8>> {
        self.0.sign(input)
    }

    fn algorithm(&self) -> ma_crypto::Algorithm {
        self.0.algorithm()
    }
}

/// DKIM verification without a network, for tests: mail-auth with a resolver pointed at a closed
/// port, so a result can only come from the key records given, pre-filled in its TXT cache.
#[cfg(test)]
pub(crate) mod offline {
    use std::collections::HashMap;
    use std::net::{IpAddr, Ipv4Addr};
    use std::sync::Mutex;
    use std::time::{Duration, Instant};

    use mail_auth::common::parse::TxtRecordParser as _;
    use mail_auth::common::verify::DomainKey;
    use mail_auth::hickory_resolver::config::{NameServerConfig, ResolverConfig, ResolverOpts};
    use mail_auth::{AuthenticatedMessage, DkimResult, MessageAuthenticator, Parameters, ResolverCache, Txt};

    /// The results of the DKIM signatures of `raw`, with `records` as (TXT name, value).
    pub async fn verify(raw: &[u8], records: &[(String, String)]) -> Vec<DkimResult> {
        let cache = TxtCache::default();
        for (name, value) in records {
            let record = DomainKey::parse(value.as_bytes()).expect("record parses");
            cache.insert(name.clone().into_boxed_str(), record.into(), Instant::now() + Duration::from_secs(3600));
        }
        let mut ns = NameServerConfig::udp_and_tcp(IpAddr::V4(Ipv4Addr::LOCALHOST));
        for conn in &mut ns.connections {
            conn.port = 9;
        }
        let mut opts = ResolverOpts::default();
        opts.timeout = Duration::from_millis(200);
        opts.attempts = 1;
        let auth = MessageAuthenticator::new(ResolverConfig::from_name_servers(vec![ns]), opts).expect("resolver");
        let message = AuthenticatedMessage::parse(raw).expect("message parses");
        let outputs = auth.verify_dkim(Parameters::new(&message).with_txt_cache(&cache)).await;
        outputs.iter().map(|o| o.result().clone()).collect()
    }

    /// A TXT cache for mail-auth, pre-filled so verification needs no network.
    #[derive(Default)]
    struct TxtCache(Mutex<HashMap<Box<str>, Txt>>);

    impl ResolverCache<Box<str>, Txt> for TxtCache {
        fn get<Q>(&self, name: &Q) -> Option<Txt>
        where
            Box<str>: std::borrow::Borrow<Q>,
            Q: std::hash::Hash + Eq + ?Sized,
        {
            self.0.lock().ok()?.get(name).cloned()
        }

        fn remove<Q>(&self, name: &Q) -> Option<Txt>
        where
            Box<str>: std::borrow::Borrow<Q>,
            Q: std::hash::Hash + Eq + ?Sized,
        {
            self.0.lock().ok()?.remove(name)
        }

        fn insert(&self, key: Box<str>, value: Txt, _valid_until: Instant) {
            if let Ok(mut map) = self.0.lock() {
                map.insert(key, value);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use mail_auth::DkimResult;

    fn day() -> NaiveDate {
        NaiveDate::from_ymd_opt(2026, 11, 23).expect("valid date")
    }

    fn p_bytes(key: &DkimKey) -> Vec<u8> {
        BASE64.decode(&key.public_key_b64).expect("p= is base64")
    }

    #[test]
    fn algorithm_names_and_parsing() {
        assert_eq!(DkimAlgorithm::default(), DkimAlgorithm::Rsa);
        assert_eq!(DkimAlgorithm::Rsa.as_str(), "rsa");
        assert_eq!(DkimAlgorithm::Ed25519.to_string(), "ed25519");
        assert_eq!("RSA".parse::<DkimAlgorithm>(), Ok(DkimAlgorithm::Rsa));
        assert_eq!(" Ed25519 ".parse::<DkimAlgorithm>(), Ok(DkimAlgorithm::Ed25519));
        let err = "dsa".parse::<DkimAlgorithm>().expect_err("dsa is refused");
        assert_eq!(err.to_string(), "“dsa” is not a DKIM key type; choose “rsa” or “ed25519”");
    }

    #[test]
    fn selectors_are_dated_and_differ_by_kind() {
        assert_eq!(selector_for(DkimAlgorithm::Rsa, day()), "ig20261123r");
        assert_eq!(selector_for(DkimAlgorithm::Ed25519, day()), "ig20261123e");
        let early = NaiveDate::from_ymd_opt(2027, 1, 5).expect("valid date");
        assert_eq!(selector_for(DkimAlgorithm::Rsa, early), "ig20270105r");
    }

    #[test]
    fn rsa_key_generates_with_spki_public_key() {
        let key = generate(DkimAlgorithm::Rsa, day()).expect("RSA key");
        assert_eq!(key.selector, "ig20261123r");
        assert_eq!(p_bytes(&key).len(), 294);
        assert!(key.txt_value().starts_with("v=DKIM1; k=rsa; p=MIIBIjANBgkqhkiG9w0BAQEFAAOCAQ8AMIIBCgKCAQEA"));
        assert!(!format!("{key:?}").contains(&format!("{:?}", key.private_pkcs8_der)));
    }

    #[test]
    fn ed25519_key_generates_with_raw_public_key() {
        let key = generate(DkimAlgorithm::Ed25519, day()).expect("Ed25519 key");
        assert_eq!(key.selector, "ig20261123e");
        assert_eq!(p_bytes(&key).len(), 32);
        assert_eq!(key.txt_value(), format!("v=DKIM1; k=ed25519; p={}", key.public_key_b64));
    }

    #[test]
    fn split_txt_keeps_pieces_within_255_bytes() {
        let key = generate(DkimAlgorithm::Rsa, day()).expect("RSA key");
        let value = key.txt_value();
        assert!(value.len() > 400);
        let pieces = split_txt(&value);
        assert_eq!(pieces.len(), 2);
        assert!(pieces.iter().all(|p| p.len() <= TXT_STRING_MAX));
        assert_eq!(pieces.concat(), value);
    }

    #[test]
    fn split_txt_edge_cases() {
        assert_eq!(split_txt(""), vec![String::new()]);
        assert_eq!(split_txt(&"a".repeat(255)).len(), 1);
        assert_eq!(split_txt(&"a".repeat(256)).len(), 2);
        let wide = "é".repeat(200); // 400 bytes, two bytes per char
        let pieces = split_txt(&wide);
        assert!(pieces.iter().all(|p| p.len() <= TXT_STRING_MAX));
        assert_eq!(pieces.concat(), wide);
    }

    #[test]
    fn signing_key_rejects_wrong_bytes_and_wrong_kind() {
        let ed = generate(DkimAlgorithm::Ed25519, day()).expect("Ed25519 key");
        assert!(matches!(signing_key(DkimAlgorithm::Rsa, b"junk"), Err(DkimError::InvalidPrivateKey("RSA"))));
        assert!(matches!(
            signing_key(DkimAlgorithm::Rsa, &ed.private_pkcs8_der),
            Err(DkimError::InvalidPrivateKey("RSA"))
        ));
        let key = signing_key(DkimAlgorithm::Ed25519, &ed.private_pkcs8_der).expect("loads");
        assert_eq!(key.algorithm(), DkimAlgorithm::Ed25519);
    }

    const MESSAGE: &str = concat!(
        "From: Alice <alice@example.com>\r\n",
        "To: bob@example.net\r\n",
        "Subject: Quick question\r\n",
        "Date: Mon, 23 Nov 2026 10:00:00 +0000\r\n",
        "Message-ID: <1@example.com>\r\n",
        "MIME-Version: 1.0\r\n",
        "Content-Type: text/plain; charset=utf-8\r\n",
        "\r\n",
        "Hi Bob,\r\n\r\nDo you have five minutes this week?\r\n"
    );

    async fn sign_and_verify(algorithm: DkimAlgorithm) -> (String, DkimResult) {
        let key = generate(algorithm, day()).expect("key");
        let signer = signing_key(algorithm, &key.private_pkcs8_der).expect("loads");
        let header = signer.sign("example.com", &key.selector, MESSAGE.as_bytes()).expect("signs");
        let signed = format!("{header}{MESSAGE}");

        // What a resolver would hand back: the ≤255-byte pieces joined.
        let published = split_txt(&key.txt_value()).concat();
        let name = format!("{}._domainkey.example.com.", key.selector);
        let results = offline::verify(signed.as_bytes(), &[(name, published)]).await;
        assert_eq!(results.len(), 1);
        (header, results[0].clone())
    }

    #[tokio::test]
    async fn rsa_signature_verifies_with_mail_auth() {
        let (header, result) = sign_and_verify(DkimAlgorithm::Rsa).await;
        assert_eq!(result, DkimResult::Pass, "{header}");
        assert!(header.starts_with("DKIM-Signature: v=1; a=rsa-sha256; s=ig20261123r; d=example.com;"));
        assert!(header.contains("c=relaxed/relaxed"));
        assert!(header.ends_with("\r\n"));
    }

    #[tokio::test]
    async fn ed25519_signature_verifies_with_mail_auth() {
        let (header, result) = sign_and_verify(DkimAlgorithm::Ed25519).await;
        assert_eq!(result, DkimResult::Pass, "{header}");
        assert!(header.starts_with("DKIM-Signature: v=1; a=ed25519-sha256; s=ig20261123e;"));
    }

    #[tokio::test]
    async fn tampered_message_fails_verification() {
        let key = generate(DkimAlgorithm::Ed25519, day()).expect("key");
        let signer = signing_key(DkimAlgorithm::Ed25519, &key.private_pkcs8_der).expect("loads");
        let header = signer.sign("example.com", &key.selector, MESSAGE.as_bytes()).expect("signs");
        let tampered = format!("{header}{}", MESSAGE.replace("Quick question", "Urgent"));
        let name = format!("{}._domainkey.example.com.", key.selector);
        let results = offline::verify(tampered.as_bytes(), &[(name, key.txt_value())]).await;
        assert!(matches!(results[0], DkimResult::Fail(_)));
    }

    #[test]
    fn signing_without_a_from_header_is_an_error() {
        let key = generate(DkimAlgorithm::Ed25519, day()).expect("key");
        let signer = signing_key(DkimAlgorithm::Ed25519, &key.private_pkcs8_der).expect("loads");
        let no_from = b"To: bob@example.net\r\nX-Other: 1\r\n\r\nFrom: in the body\r\n";
        assert_eq!(signer.sign("example.com", &key.selector, no_from), Err(DkimError::MissingFrom));
        let folded = b"To: bob@example.net,\r\n From: not a header\r\n\r\nbody\r\n";
        assert_eq!(signer.sign("example.com", &key.selector, folded), Err(DkimError::MissingFrom));
        assert!(signer.sign("example.com", &key.selector, b"from : a@example.com\n\nbody\n").is_ok());
    }
}
