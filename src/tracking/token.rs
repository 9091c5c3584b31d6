//! The signed tokens in tracking URLs. A token is stateless: `base64url(payload || mac)` where
//! payload is `"o:{workspace}:{message_id}"` for the open pixel or
//! `"c:{workspace}:{position}:{message_id}"` for the link at `position` of a message, and mac is
//! the first 16 bytes of HMAC-SHA256(payload) under a key derived from the master key for this
//! one purpose (label [`KEY_LABEL`]). The message is named by our Message-ID (without angle
//! brackets), which the message carries before its `campaign_sends` row exists. The kind is part
//! of what is signed, so an open token never passes for a click token; a changed character, a
//! truncation or another master key fails the MAC.

use aws_lc_rs::hmac;
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;

use crate::crypto::MasterKey;

/// The derivation label of the tracking key (see [`MasterKey::derive_key`]).
pub const KEY_LABEL: &str = "tracking-token";
const MAC_LEN: usize = 16;

/// What a verified token names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    /// The open pixel of a message.
    Open { workspace_id: i64, message_id: String },
    /// The link at `position` (from 0) of a message.
    Click { workspace_id: i64, message_id: String, position: u32 },
}

impl Target {
    pub fn workspace_id(&self) -> i64 {
        match self {
            Target::Open { workspace_id, .. } | Target::Click { workspace_id, .. } => *workspace_id,
        }
    }

    pub fn message_id(&self) -> &str {
        match self {
            Target::Open { message_id, .. } | Target::Click { message_id, .. } => message_id,
        }
    }

    fn payload(&self) -> String {
        match self {
            Target::Open { workspace_id, message_id } => format!("o:{workspace_id}:{message_id}"),
            Target::Click { workspace_id, message_id, position } => format!("c:{workspace_id}:{position}:{message_id}"),
        }
    }
}

fn mac(keys: &MasterKey, payload: &[u8]) -> [u8; MAC_LEN] {
    let key = hmac::Key::new(hmac::HMAC_SHA256, &keys.derive_key(KEY_LABEL));
    let tag = hmac::sign(&key, payload);
    let mut out = [0u8; MAC_LEN];
    out.copy_from_slice(&tag.as_ref()[..MAC_LEN]);
    out
}

/// The token for `target`.
pub fn sign(keys: &MasterKey, target: &Target) -> String {
    let mut bytes = target.payload().into_bytes();
    let tag = mac(keys, &bytes);
    bytes.extend_from_slice(&tag);
    URL_SAFE_NO_PAD.encode(bytes)
}

/// Checks a token's MAC and reads it; `None` for anything forged, truncated or malformed.
pub fn verify(keys: &MasterKey, token: &str) -> Option<Target> {
    let bytes = URL_SAFE_NO_PAD.decode(token.trim()).ok()?;
    let split = bytes.len().checked_sub(MAC_LEN)?;
    let (payload, tag) = bytes.split_at(split);
    aws_lc_rs::constant_time::verify_slices_are_equal(&mac(keys, payload), tag).ok()?;
    let text = std::str::from_utf8(payload).ok()?;
    let (kind, rest) = text.split_once(':')?;
    let (workspace, rest) = rest.split_once(':')?;
    let workspace_id: i64 = workspace.parse().ok()?;
    let target = match kind {
        "o" => Target::Open { workspace_id, message_id: rest.to_string() },
        "c" => {
            let (position, message_id) = rest.split_once(':')?;
            Target::Click { workspace_id, message_id: message_id.to_string(), position: position.parse().ok()? }
        }
        _ => return None,
    };
    target.message_id().contains('@').then_some(target)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keys() -> MasterKey {
        MasterKey::from_bytes(&[5; 32])
    }

    fn click() -> Target {
        Target::Click { workspace_id: 3, message_id: "AbC-_1@grove.test".into(), position: 7 }
    }

    #[test]
    fn tokens_round_trip_in_url_safe_characters() {
        let keys = keys();
        for target in [click(), Target::Open { workspace_id: 1, message_id: "x@y.test".into() }] {
            let token = sign(&keys, &target);
            assert!(token.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'), "{token}");
            assert_eq!(verify(&keys, &token), Some(target));
        }
    }

    #[test]
    fn tampered_truncated_foreign_and_retyped_tokens_are_refused() {
        let keys = keys();
        let token = sign(&keys, &click());
        for index in [0, 5, token.len() / 2, token.len() - 1] {
            let mut changed = token.clone().into_bytes();
            changed[index] = if changed[index] == b'A' { b'B' } else { b'A' };
            assert_eq!(verify(&keys, &String::from_utf8(changed).unwrap()), None, "changed at {index}");
        }
        assert_eq!(verify(&keys, &token[..token.len() - 1]), None);
        assert_eq!(verify(&keys, &token[1..]), None);
        assert_eq!(verify(&MasterKey::from_bytes(&[6; 32]), &token), None, "another master key");
        assert_eq!(verify(&keys, ""), None);
        assert_eq!(verify(&keys, "not a token"), None);
        // Another position or workspace signed under another purpose's key (the unsubscribe key).
        let other = hmac::Key::new(hmac::HMAC_SHA256, &keys.derive_key("list-unsubscribe-token"));
        let mut forged = b"c:3:0:AbC-_1@grove.test".to_vec();
        forged.extend_from_slice(&hmac::sign(&other, &forged.clone()).as_ref()[..MAC_LEN]);
        assert_eq!(verify(&keys, &URL_SAFE_NO_PAD.encode(forged)), None);
        // A validly signed payload of an unknown kind, or without a Message-ID, is refused too.
        for payload in ["x:3:AbC@grove.test", "o:3:no-at-sign", "c:3:x:a@b.test", "o:w:a@b.test"] {
            let mut bytes = payload.as_bytes().to_vec();
            bytes.extend_from_slice(&mac(&keys, payload.as_bytes()));
            assert_eq!(verify(&keys, &URL_SAFE_NO_PAD.encode(bytes)), None, "{payload}");
        }
    }
}
