//! SASL, the one parser for SMTP AUTH (RFC 4954) and IMAP AUTHENTICATE (RFC 3501 §6.2.2): the
//! PLAIN (RFC 4616) and LOGIN mechanisms. PLAIN carries `authzid NUL authcid NUL password` in
//! one response; an authorization identity other than the authentication identity (compared
//! case-insensitively, as addresses are) is acting for someone else and is refused. LOGIN asks
//! for the user name, then the password, one response each. On the wire each response is a
//! base64 line ([`decode_response`]): `*` cancels, `=` stands for an empty initial response.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;

/// The prompts LOGIN sends (base64 of "Username:" and "Password:").
pub const LOGIN_USERNAME_PROMPT: &str = "VXNlcm5hbWU6";
pub const LOGIN_PASSWORD_PROMPT: &str = "UGFzc3dvcmQ6";

/// What the client claims to be.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Credentials {
    pub username: String,
    pub password: String,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SaslError {
    #[error("the client cancelled the exchange")]
    Cancelled,
    #[error("the response is not valid base64 of the expected form")]
    Malformed,
    #[error("acting for another identity is not allowed")]
    ProxyRefused,
}

/// What a client line means in the middle of an exchange: `*` cancels.
pub fn decode_response(line: &str) -> Result<Vec<u8>, SaslError> {
    let line = line.trim();
    match line {
        "*" => Err(SaslError::Cancelled),
        "=" | "" => Ok(Vec::new()),
        _ => STANDARD.decode(line).map_err(|_| SaslError::Malformed),
    }
}

/// Decodes a PLAIN response (already base64-decoded).
pub fn parse_plain(response: &[u8]) -> Result<Credentials, SaslError> {
    let mut parts = response.split(|&b| b == 0);
    let (Some(authzid), Some(authcid), Some(password), None) = (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(SaslError::Malformed);
    };
    let text = |bytes: &[u8]| String::from_utf8(bytes.to_vec()).map_err(|_| SaslError::Malformed);
    let (authzid, username, password) = (text(authzid)?, text(authcid)?, text(password)?);
    if username.is_empty() {
        return Err(SaslError::Malformed);
    }
    if !authzid.is_empty() && !authzid.trim().eq_ignore_ascii_case(username.trim()) {
        return Err(SaslError::ProxyRefused);
    }
    Ok(Credentials { username, password })
}

/// Decodes one LOGIN step (a user name or a password) from its base64-decoded bytes.
pub fn parse_login_field(response: &[u8]) -> Result<String, SaslError> {
    String::from_utf8(response.to_vec()).map_err(|_| SaslError::Malformed)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn b64(bytes: &[u8]) -> String {
        STANDARD.encode(bytes)
    }

    #[test]
    fn plain_decodes_with_and_without_authzid() {
        let plain = decode_response(&b64(b"\0bob@x.test\0secret pw")).unwrap();
        assert_eq!(
            parse_plain(&plain).unwrap(),
            Credentials { username: "bob@x.test".into(), password: "secret pw".into() }
        );
        let same = decode_response(&b64(b"bob@x.test\0bob@x.test\0pw")).unwrap();
        assert_eq!(parse_plain(&same).unwrap().username, "bob@x.test");
        let cased = decode_response(&b64(b"Bob@X.test\0bob@x.test\0pw")).unwrap();
        assert_eq!(parse_plain(&cased).unwrap().username, "bob@x.test", "addresses compare case-insensitively");
    }

    #[test]
    fn plain_refuses_proxying_and_malformed_input() {
        let proxy = decode_response(&b64(b"alice@x.test\0bob@x.test\0pw")).unwrap();
        assert_eq!(parse_plain(&proxy), Err(SaslError::ProxyRefused));
        assert_eq!(parse_plain(b"no nuls"), Err(SaslError::Malformed));
        assert_eq!(parse_plain(b"\0\0pw"), Err(SaslError::Malformed));
        assert_eq!(parse_plain(b"a\0b\0c\0d"), Err(SaslError::Malformed));
        assert_eq!(decode_response("!!!"), Err(SaslError::Malformed));
    }

    #[test]
    fn star_cancels_and_equals_is_empty() {
        assert_eq!(decode_response("*"), Err(SaslError::Cancelled));
        assert_eq!(decode_response("="), Ok(Vec::new()));
        assert_eq!(parse_login_field(&decode_response(&b64(b"bob@x.test")).unwrap()).unwrap(), "bob@x.test");
        assert_eq!(STANDARD.decode(LOGIN_USERNAME_PROMPT).unwrap(), b"Username:");
        assert_eq!(STANDARD.decode(LOGIN_PASSWORD_PROMPT).unwrap(), b"Password:");
    }
}
