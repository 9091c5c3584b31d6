//! The mark that tells a receiving pool member a message is warmup mail: a header,
//! [`HEADER`], whose value is a MAC over the workspace and the message's Message-ID under a key
//! derived from the master key for this one purpose. A member files a message as warmup only
//! when the MAC checks, so a stranger cannot copy the header to have mail hidden from the reply
//! inbox, and a message forwarded with a new Message-ID loses the mark.

use aws_lc_rs::hmac;
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;

use crate::crypto::MasterKey;

/// The header carrying the mark.
pub const HEADER: &str = "X-InboxGrove-Warmup";
/// The derivation label of the marking key (see [`MasterKey::derive_key`]).
const KEY_LABEL: &str = "warmup-marker";
const MAC_LEN: usize = 16;

fn mac(keys: &MasterKey, workspace_id: i64, message_id: &str) -> Vec<u8> {
    let key = hmac::Key::new(hmac::HMAC_SHA256, &keys.derive_key(KEY_LABEL));
    let payload = format!("{workspace_id}:{}", bare(message_id));
    hmac::sign(&key, payload.as_bytes()).as_ref()[..MAC_LEN].to_vec()
}

/// A Message-ID without angle brackets or surrounding space.
fn bare(message_id: &str) -> &str {
    message_id.trim().trim_start_matches('<').trim_end_matches('>')
}

/// The header value marking the message `message_id` of `workspace_id` as warmup mail.
#[must_use]
pub fn value(keys: &MasterKey, workspace_id: i64, message_id: &str) -> String {
    URL_SAFE_NO_PAD.encode(mac(keys, workspace_id, message_id))
}

/// Whether `header_value` is the warmup mark of `message_id` for `workspace_id`.
#[must_use]
pub fn verify(keys: &MasterKey, workspace_id: i64, message_id: &str, header_value: &str) -> bool {
    let Ok(tag) = URL_SAFE_NO_PAD.decode(header_value.trim()) else {
        return false;
    };
    aws_lc_rs::constant_time::verify_slices_are_equal(&mac(keys, workspace_id, message_id), &tag).is_ok()
}

/// Whether a raw message's header carries a warmup mark at all (unchecked: for filing our own
/// sent copies, which we marked).
#[must_use]
pub fn is_marked(raw: &[u8]) -> bool {
    mail_parser::MessageParser::default().parse_headers(raw).is_some_and(|m| m.header_raw(HEADER).is_some())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_mark_checks_only_for_its_message_and_workspace() {
        let keys = MasterKey::from_bytes(&[7; 32]);
        let mark = value(&keys, 3, "<abc@grove.test>");
        assert!(verify(&keys, 3, "abc@grove.test", &mark), "brackets do not matter");
        assert!(verify(&keys, 3, " <abc@grove.test> ", &format!(" {mark} ")));
        assert!(!verify(&keys, 4, "<abc@grove.test>", &mark), "another workspace");
        assert!(!verify(&keys, 3, "<abd@grove.test>", &mark), "another message");
        assert!(!verify(&MasterKey::from_bytes(&[8; 32]), 3, "<abc@grove.test>", &mark), "another key");
        assert!(!verify(&keys, 3, "<abc@grove.test>", "not base64 !"));
        assert!(!verify(&keys, 3, "<abc@grove.test>", &mark[..mark.len() - 2]));
    }
}
