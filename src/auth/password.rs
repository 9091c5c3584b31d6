//! Password hashing with argon2id. People's passwords use argon2's recommended parameters
//! (19 MiB, 2 passes). Mailbox passwords are machine-generated with 110+ bits of entropy, where
//! memory hardness buys nothing; they use lighter parameters so that creating 500 mailboxes and
//! SMTP/IMAP logins at sequencer rates stay fast. Both are PHC strings; verification reads the
//! parameters from the string, so either can be checked by [`verify`].

use argon2::password_hash::{PasswordHasher, PasswordVerifier};
use argon2::{Algorithm, Argon2, Params, PasswordHash, Version};

use crate::error::{Error, Result};

/// The shortest password a person may choose.
pub const MIN_USER_PASSWORD: usize = 10;

fn hasher(m_kib: u32, passes: u32) -> Argon2<'static> {
    let params = Params::new(m_kib, passes, 1, None).expect("valid argon2 parameters");
    Argon2::new(Algorithm::Argon2id, Version::V0x13, params)
}

fn hash_with(argon: &Argon2<'_>, password: &str) -> Result<String> {
    argon
        .hash_password(password.as_bytes())
        .map(|hash| hash.to_string())
        .map_err(|e| Error::Internal(format!("password hashing failed: {e}")))
}

/// Checks a person's chosen password against the policy.
pub fn check_user_password(password: &str) -> Result<()> {
    if password.chars().count() < MIN_USER_PASSWORD {
        return Err(Error::invalid("password", format!("Use at least {MIN_USER_PASSWORD} characters.")));
    }
    if password.len() > 1024 {
        return Err(Error::invalid("password", "That password is too long."));
    }
    Ok(())
}

/// Hashes a person's password (on a blocking thread).
pub async fn hash_user_password(password: String) -> Result<String> {
    tokio::task::spawn_blocking(move || hash_with(&hasher(19 * 1024, 2), &password))
        .await
        .map_err(|e| Error::Internal(e.to_string()))?
}

/// Hashes a generated mailbox password (call from a blocking context).
pub fn hash_mailbox_password(password: &str) -> Result<String> {
    hash_with(&hasher(4 * 1024, 1), password)
}

/// Verifies a password against a stored PHC string (on a blocking thread).
pub async fn verify(hash: String, password: String) -> bool {
    tokio::task::spawn_blocking(move || verify_blocking(&hash, &password)).await.unwrap_or(false)
}

/// Verifies a password against a stored PHC string.
pub fn verify_blocking(hash: &str, password: &str) -> bool {
    match PasswordHash::new(hash) {
        Ok(parsed) => Argon2::default().verify_password(password.as_bytes(), &parsed).is_ok(),
        Err(_) => false,
    }
}

/// A hash to verify against when the account does not exist, so timing does not reveal it.
pub const DUMMY_HASH: &str =
    "$argon2id$v=19$m=19456,t=2,p=1$c29tZXNhbHRzb21lc2FsdA$0mQ1kHnHV1RCh4m0Y1jS1YQJwSAm0Ee6Jt7kq2s2HmE";

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn hashes_verify_and_reject() {
        let hash = hash_user_password("correct horse battery".into()).await.unwrap();
        assert!(hash.starts_with("$argon2id$"));
        assert!(verify(hash.clone(), "correct horse battery".into()).await);
        assert!(!verify(hash, "wrong".into()).await);
        let mailbox = hash_mailbox_password("Abc123").unwrap();
        assert!(verify_blocking(&mailbox, "Abc123"));
        assert!(!verify_blocking("not a hash", "x"));
    }

    #[test]
    fn short_passwords_are_refused() {
        assert!(check_user_password("short").is_err());
        assert!(check_user_password("long enough pw").is_ok());
    }
}

#[cfg(test)]
mod dummy_tests {
    #[test]
    fn dummy_hash_is_a_valid_phc_string() {
        assert!(argon2::PasswordHash::new(super::DUMMY_HASH).is_ok());
    }
}
