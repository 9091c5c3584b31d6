//! Secrets at rest: AES-256-GCM under a 32-byte master key kept outside the database, either in
//! `INBOXGROVE_MASTER_KEY` (64 hex digits) or in `master.key` in the data dir, created on first
//! start. A sealed value is `nonce (12 bytes) || ciphertext || tag`. A check value sealed at first
//! start lets the appliance refuse to run under a different key instead of serving garbage.
//!
//! Also the random tokens used for sessions, links and passwords.

use std::io::Write;
use std::path::Path;

use aws_lc_rs::aead::{AES_256_GCM, Aad, LessSafeKey, NONCE_LEN, Nonce, UnboundKey};
use aws_lc_rs::{digest, hmac};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;

const KEY_FILE: &str = "master.key";
const CHECK_PLAINTEXT: &[u8] = b"inboxgrove master key check v1";

#[derive(Debug, thiserror::Error)]
pub enum CryptoError {
    #[error("INBOXGROVE_MASTER_KEY must be 64 hexadecimal digits")]
    BadEnvKey,
    #[error("The master key file {0} is not 64 hexadecimal digits")]
    BadKeyFile(String),
    #[error("Cannot read or create the master key file {path}: {source}")]
    KeyFile { path: String, source: std::io::Error },
    #[error(
        "The master key does not match this database (it was created with another key); \
         set INBOXGROVE_MASTER_KEY or restore master.key in the data dir"
    )]
    WrongKey,
    #[error(
        "The database exists but its master key is missing: restore master.key in the data dir or set INBOXGROVE_MASTER_KEY"
    )]
    MissingKey,
    #[error("A sealed value could not be opened")]
    Open,
}

/// The key that seals every secret stored in the database.
pub struct MasterKey {
    key: LessSafeKey,
    /// HMAC-SHA256 keyed with the master key, for [`MasterKey::derive_key`].
    derivation: hmac::Key,
}

impl MasterKey {
    /// Builds a key from its 32 raw bytes.
    pub fn from_bytes(bytes: &[u8; 32]) -> MasterKey {
        let unbound = UnboundKey::new(&AES_256_GCM, bytes).expect("32 bytes is an AES-256 key");
        MasterKey { key: LessSafeKey::new(unbound), derivation: hmac::Key::new(hmac::HMAC_SHA256, bytes) }
    }

    /// A 32-byte key for one purpose (`label`, e.g. "unsubscribe-token"), derived from the master
    /// key as HMAC-SHA256(master, "inboxgrove derived key v1: " || label): independent keys per
    /// label, none revealing the master key or each other.
    pub fn derive_key(&self, label: &str) -> [u8; 32] {
        let mut input = b"inboxgrove derived key v1: ".to_vec();
        input.extend_from_slice(label.as_bytes());
        let tag = hmac::sign(&self.derivation, &input);
        let mut key = [0u8; 32];
        key.copy_from_slice(tag.as_ref());
        key
    }

    /// Finds the master key: the environment first, then the key file. When neither exists and
    /// `may_create` (a new database), a fresh key file is written with mode 0600.
    pub fn load(data_dir: &Path, env_value: Option<&str>, may_create: bool) -> Result<MasterKey, CryptoError> {
        if let Some(value) = env_value {
            return parse_hex_key(value.trim()).map(|k| Self::from_bytes(&k)).ok_or(CryptoError::BadEnvKey);
        }
        let path = data_dir.join(KEY_FILE);
        let shown = path.display().to_string();
        match std::fs::read_to_string(&path) {
            Ok(text) => parse_hex_key(text.trim()).map(|k| Self::from_bytes(&k)).ok_or(CryptoError::BadKeyFile(shown)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound && may_create => {
                let mut bytes = [0u8; 32];
                fill_random(&mut bytes);
                write_private_file(&path, hex(&bytes).as_bytes())
                    .map_err(|source| CryptoError::KeyFile { path: shown, source })?;
                Ok(Self::from_bytes(&bytes))
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Err(CryptoError::MissingKey),
            Err(source) => Err(CryptoError::KeyFile { path: shown, source }),
        }
    }

    /// Seals `plaintext`; `context` binds the value to its use (e.g. "dkim") so values cannot be swapped.
    pub fn seal(&self, context: &str, plaintext: &[u8]) -> Vec<u8> {
        let mut nonce = [0u8; NONCE_LEN];
        fill_random(&mut nonce);
        let mut out = Vec::with_capacity(NONCE_LEN + plaintext.len() + 16);
        out.extend_from_slice(&nonce);
        let mut body = plaintext.to_vec();
        self.key
            .seal_in_place_append_tag(Nonce::assume_unique_for_key(nonce), Aad::from(context.as_bytes()), &mut body)
            .expect("AES-GCM sealing does not fail for in-memory buffers");
        out.extend_from_slice(&body);
        out
    }

    /// Opens a value made by [`MasterKey::seal`] with the same context.
    pub fn open(&self, context: &str, sealed: &[u8]) -> Result<Vec<u8>, CryptoError> {
        if sealed.len() < NONCE_LEN + 16 {
            return Err(CryptoError::Open);
        }
        let (nonce, body) = sealed.split_at(NONCE_LEN);
        let nonce = Nonce::try_assume_unique_for_key(nonce).map_err(|_| CryptoError::Open)?;
        let mut body = body.to_vec();
        let plain =
            self.key.open_in_place(nonce, Aad::from(context.as_bytes()), &mut body).map_err(|_| CryptoError::Open)?;
        Ok(plain.to_vec())
    }

    /// A value to store beside the data, proving later that the same key is in use.
    pub fn check_value(&self) -> String {
        URL_SAFE_NO_PAD.encode(self.seal("master-key-check", CHECK_PLAINTEXT))
    }

    /// Verifies a value made by [`MasterKey::check_value`].
    pub fn verify_check_value(&self, stored: &str) -> Result<(), CryptoError> {
        let sealed = URL_SAFE_NO_PAD.decode(stored).map_err(|_| CryptoError::WrongKey)?;
        match self.open("master-key-check", &sealed) {
            Ok(plain) if plain == CHECK_PLAINTEXT => Ok(()),
            _ => Err(CryptoError::WrongKey),
        }
    }
}

/// Fills `buf` from the operating system's secure random source.
pub fn fill_random(buf: &mut [u8]) {
    aws_lc_rs::rand::fill(buf).expect("the system random source is available");
}

/// A uniformly random number in `0..bound` (`bound > 0`).
pub fn random_below(bound: u32) -> u32 {
    assert!(bound > 0);
    // Rejection sampling keeps the distribution uniform.
    let zone = u32::MAX - (u32::MAX % bound);
    loop {
        let mut bytes = [0u8; 4];
        fill_random(&mut bytes);
        let value = u32::from_le_bytes(bytes);
        if value < zone {
            return value % bound;
        }
    }
}

/// A URL-safe random token carrying 256 bits.
pub fn random_token() -> String {
    let mut bytes = [0u8; 32];
    fill_random(&mut bytes);
    URL_SAFE_NO_PAD.encode(bytes)
}

/// The SHA-256 of a token, hex encoded: what the database keeps instead of the token.
pub fn token_hash(token: &str) -> String {
    hex(digest::digest(&digest::SHA256, token.as_bytes()).as_ref())
}

/// Constant-time equality for secrets.
pub fn same_secret(a: &str, b: &str) -> bool {
    a.len() == b.len() && a.bytes().zip(b.bytes()).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn parse_hex_key(text: &str) -> Option<[u8; 32]> {
    if text.len() != 64 || !text.is_ascii() {
        return None;
    }
    let mut key = [0u8; 32];
    for (i, byte) in key.iter_mut().enumerate() {
        *byte = u8::from_str_radix(&text[2 * i..2 * i + 2], 16).ok()?;
    }
    Some(key)
}

/// Writes a file readable only by its owner.
pub fn write_private_file(path: &Path, contents: &[u8]) -> std::io::Result<()> {
    use std::os::unix::fs::OpenOptionsExt;
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    let mut file = std::fs::OpenOptions::new().write(true).create_new(true).mode(0o600).open(path)?;
    file.write_all(contents)?;
    file.sync_all()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sealed_values_open_only_with_the_same_key_and_context() {
        let key = MasterKey::from_bytes(&[7; 32]);
        let other = MasterKey::from_bytes(&[8; 32]);
        let sealed = key.seal("dkim", b"secret");
        assert_eq!(key.open("dkim", &sealed).unwrap(), b"secret");
        assert!(key.open("batch", &sealed).is_err());
        assert!(other.open("dkim", &sealed).is_err());
        assert!(key.open("dkim", &sealed[..10]).is_err());
    }

    #[test]
    fn check_value_detects_a_wrong_key() {
        let key = MasterKey::from_bytes(&[1; 32]);
        let check = key.check_value();
        assert!(key.verify_check_value(&check).is_ok());
        assert!(matches!(MasterKey::from_bytes(&[2; 32]).verify_check_value(&check), Err(CryptoError::WrongKey)));
    }

    #[test]
    fn key_file_is_created_once_and_reloaded() {
        let dir = tempfile::tempdir().unwrap();
        assert!(matches!(MasterKey::load(dir.path(), None, false), Err(CryptoError::MissingKey)));
        let key = MasterKey::load(dir.path(), None, true).unwrap();
        let again = MasterKey::load(dir.path(), None, false).unwrap();
        assert_eq!(again.open("x", &key.seal("x", b"v")).unwrap(), b"v");
        assert!(matches!(MasterKey::load(dir.path(), Some("zz"), false), Err(CryptoError::BadEnvKey)));
    }

    #[test]
    fn random_below_stays_in_range() {
        assert!((0..1000).all(|_| random_below(7) < 7));
    }
}
