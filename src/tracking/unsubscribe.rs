//! List-Unsubscribe (RFC 2369) with one-click unsubscribe (RFC 8058): the signed tokens that go
//! into the headers, recording an unsubscribe, and the workspace setting that turns it on.
//!
//! A token is stateless: `base64url(payload || mac)` where payload is
//! `"{workspace}:{mailbox or 0}:{recipient}"` and mac is the first 16 bytes of
//! HMAC-SHA256(payload) under a key derived from the master key for this one purpose. Nothing is
//! stored per message; a token stays valid as long as the master key does. 128 bits of MAC keep
//! tokens short enough for the `mailto:unsubscribe+TOKEN@domain` form.

use aws_lc_rs::hmac;
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use rusqlite::{Connection, Transaction};

use crate::app::App;
use crate::audit;
use crate::crypto::MasterKey;
use crate::error::{Error, Result};
use crate::events::{self, Kind, NewEvent};
use crate::suppression::{self, Reason};
use crate::workspaces::{Access, Role};

const KEY_LABEL: &str = "list-unsubscribe-token";
const MAC_LEN: usize = 16;
const MAILTO_MAC_LEN: usize = 10;
/// The local part prefix of mailto unsubscribe addresses.
pub const MAILTO_PREFIX: &str = "unsubscribe+";

/// Who a token unsubscribes: a recipient of a workspace (and the mailbox that wrote to them).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Subscriber {
    pub workspace_id: i64,
    pub mailbox_id: Option<i64>,
    pub recipient: String,
}

fn mac(keys: &MasterKey, payload: &[u8]) -> [u8; MAC_LEN] {
    let key = hmac::Key::new(hmac::HMAC_SHA256, &keys.derive_key(KEY_LABEL));
    let tag = hmac::sign(&key, payload);
    let mut out = [0u8; MAC_LEN];
    out.copy_from_slice(&tag.as_ref()[..MAC_LEN]);
    out
}

/// The token for a recipient of `workspace_id` written to by `mailbox_id`.
pub fn token(keys: &MasterKey, workspace_id: i64, mailbox_id: Option<i64>, recipient: &str) -> String {
    let payload = format!("{workspace_id}:{}:{}", mailbox_id.unwrap_or(0), recipient.trim().to_lowercase());
    let mut bytes = payload.into_bytes();
    let tag = mac(keys, &bytes);
    bytes.extend_from_slice(&tag);
    URL_SAFE_NO_PAD.encode(bytes)
}

/// The mailto unsubscribe address's local part for a recipient (see the module doc).
pub fn mailto_local_part(keys: &MasterKey, workspace_id: i64, mailbox_id: Option<i64>, recipient: &str) -> String {
    let mailbox = mailbox_id.unwrap_or(0);
    let tag = mailto_mac(keys, workspace_id, mailbox, recipient);
    format!("{MAILTO_PREFIX}{workspace_id}-{mailbox}-{tag}")
}

fn mailto_mac(keys: &MasterKey, workspace_id: i64, mailbox: i64, recipient: &str) -> String {
    let payload = format!("mailto:{workspace_id}:{mailbox}:{}", recipient.trim().to_lowercase());
    mac(keys, payload.as_bytes())[..MAILTO_MAC_LEN].iter().map(|b| format!("{b:02x}")).collect()
}

/// Reads a mailto unsubscribe address's local part, as sent by `sender`; `None` when the local
/// part is not one, or its MAC does not match that sender.
pub fn verify_mailto(keys: &MasterKey, local_part: &str, sender: &str) -> Option<Subscriber> {
    let prefix = local_part.get(..MAILTO_PREFIX.len())?;
    if !prefix.eq_ignore_ascii_case(MAILTO_PREFIX) {
        return None;
    }
    let rest = &local_part[MAILTO_PREFIX.len()..];
    let mut fields = rest.splitn(3, '-');
    let workspace_id: i64 = fields.next()?.parse().ok()?;
    let mailbox: i64 = fields.next()?.parse().ok()?;
    let tag = fields.next()?.to_ascii_lowercase();
    let expected = mailto_mac(keys, workspace_id, mailbox, sender);
    aws_lc_rs::constant_time::verify_slices_are_equal(expected.as_bytes(), tag.as_bytes()).ok()?;
    let recipient = sender.trim().to_lowercase();
    Some(Subscriber { workspace_id, mailbox_id: (mailbox != 0).then_some(mailbox), recipient })
}

/// Checks a token's MAC and reads it; `None` for anything forged, truncated or malformed.
pub fn verify(keys: &MasterKey, token: &str) -> Option<Subscriber> {
    let bytes = URL_SAFE_NO_PAD.decode(token.trim()).ok()?;
    let split = bytes.len().checked_sub(MAC_LEN)?;
    let (payload, tag) = bytes.split_at(split);
    aws_lc_rs::constant_time::verify_slices_are_equal(&mac(keys, payload), tag).ok()?;
    let text = std::str::from_utf8(payload).ok()?;
    let mut fields = text.splitn(3, ':');
    let workspace_id: i64 = fields.next()?.parse().ok()?;
    let mailbox_id: i64 = fields.next()?.parse().ok()?;
    let recipient = fields.next()?.to_string();
    if !recipient.contains('@') {
        return None;
    }
    Some(Subscriber { workspace_id, mailbox_id: (mailbox_id != 0).then_some(mailbox_id), recipient })
}

/// The `List-Unsubscribe` and `List-Unsubscribe-Post` header lines (CRLF-terminated) for one
/// recipient: the HTTPS link (with `token`) when the appliance has a base URL, and the mailto
/// address when there is one. The Post header (one-click) only accompanies an HTTP(S) link, as
/// RFC 8058 asks. Empty when neither form is available.
pub fn headers(base_url: &str, token: &str, mailto: Option<&str>) -> String {
    let mut uris = Vec::new();
    if !base_url.is_empty() {
        uris.push(format!("<{base_url}/unsubscribe/{token}>"));
    }
    if let Some(address) = mailto {
        uris.push(format!("<mailto:{address}?subject=unsubscribe>"));
    }
    if uris.is_empty() {
        return String::new();
    }
    let mut out = format!("List-Unsubscribe: {}\r\n", uris.join(",\r\n "));
    if !base_url.is_empty() {
        out.push_str("List-Unsubscribe-Post: List-Unsubscribe=One-Click\r\n");
    }
    out
}

/// Whether a workspace adds List-Unsubscribe headers.
pub fn enabled(conn: &Connection, workspace_id: i64) -> rusqlite::Result<bool> {
    crate::workspaces::list_unsubscribe(conn, workspace_id)
}

/// Turns the List-Unsubscribe headers on or off for the workspace (owners and admins), audited.
pub async fn set_enabled(app: &App, access: &Access, enabled: bool) -> Result<()> {
    access.workspace.role.require(Role::Admin)?;
    let (workspace, actor, now) = (access.workspace.id, access.actor.clone(), app.clock.unix());
    app.store
        .write(move |tx| {
            crate::workspaces::set_list_unsubscribe(tx, workspace, enabled)?;
            let detail = if enabled { "on" } else { "off" };
            audit::record(
                tx,
                Some(workspace),
                &actor,
                "settings.list_unsubscribe",
                "List-Unsubscribe headers",
                detail,
                now,
            )?;
            Ok::<_, Error>(())
        })
        .await
}

/// What an unsubscribe did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unsubscribed {
    pub recipient: String,
    /// False when the address was already on the suppression list (nothing changed).
    pub newly: bool,
}

/// Records an unsubscribe for a token: the address joins the workspace's suppression list and an
/// `unsubscribed` event is written, once. Idempotent; a bad token (or one of a workspace that
/// no longer exists) is `NotFound`.
pub async fn unsubscribe(app: &App, token: &str, how: &'static str) -> Result<Unsubscribed> {
    let subscriber = verify(&app.keys, token).ok_or(Error::NotFound)?;
    let now = app.clock.unix();
    app.store.write(move |tx| record(tx, &subscriber, how, now)).await
}

/// [`unsubscribe`] inside a transaction, for a verified subscriber.
pub fn record(tx: &Transaction, subscriber: &Subscriber, how: &str, now: i64) -> Result<Unsubscribed> {
    let workspace = subscriber.workspace_id;
    if !crate::workspaces::exists(tx, workspace)? {
        return Err(Error::NotFound);
    }
    let mailbox_id = match subscriber.mailbox_id {
        Some(id) if crate::mailbox::belongs_to(tx, workspace, id)? => Some(id),
        _ => None,
    };
    let newly = suppression::add(tx, workspace, &subscriber.recipient, Reason::Unsubscribe, how, now)?;
    if newly {
        let event =
            NewEvent { mailbox_id, detail: how, ..NewEvent::new(workspace, Kind::Unsubscribed, &subscriber.recipient) };
        events::record(tx, &event, now)?;
    }
    Ok(Unsubscribed { recipient: subscriber.recipient.clone(), newly })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keys() -> MasterKey {
        MasterKey::from_bytes(&[3; 32])
    }

    #[test]
    fn tokens_round_trip_and_resist_tampering() {
        let keys = keys();
        let token = token(&keys, 7, Some(12), "Bob@Example.NET");
        assert!(token.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'), "{token}");
        let subscriber = verify(&keys, &token).expect("valid");
        assert_eq!(
            subscriber,
            Subscriber { workspace_id: 7, mailbox_id: Some(12), recipient: "bob@example.net".into() }
        );
        assert_eq!(verify(&keys, &super::token(&keys, 1, None, "a@b.c")).unwrap().mailbox_id, None);

        // Another master key, a flipped character, a truncation, garbage: all refused.
        assert_eq!(verify(&MasterKey::from_bytes(&[4; 32]), &token), None);
        let mut flipped = token.clone().into_bytes();
        flipped[2] = if flipped[2] == b'A' { b'B' } else { b'A' };
        assert_eq!(verify(&keys, &String::from_utf8(flipped).unwrap()), None);
        assert_eq!(verify(&keys, &token[..token.len() - 2]), None);
        assert_eq!(verify(&keys, "not a token"), None);
        assert_eq!(verify(&keys, ""), None);
        // A forged payload with a MAC computed under a different purpose's key is refused.
        let other = hmac::Key::new(hmac::HMAC_SHA256, &keys.derive_key("something-else"));
        let mut forged = b"7:12:eve@example.net".to_vec();
        forged.extend_from_slice(&hmac::sign(&other, &forged.clone()).as_ref()[..MAC_LEN]);
        assert_eq!(verify(&keys, &URL_SAFE_NO_PAD.encode(forged)), None);
    }

    #[test]
    fn derived_keys_differ_by_label_and_master_key() {
        let keys = keys();
        assert_eq!(keys.derive_key("a"), keys.derive_key("a"));
        assert_ne!(keys.derive_key("a"), keys.derive_key("b"));
        assert_ne!(keys.derive_key("a"), MasterKey::from_bytes(&[4; 32]).derive_key("a"));
    }

    #[test]
    fn headers_name_both_uris_and_one_click_only_with_https() {
        let both = headers("https://grove.test", "TOK", Some("unsubscribe+1-2-ab@a.test"));
        assert_eq!(
            both,
            "List-Unsubscribe: <https://grove.test/unsubscribe/TOK>,\r\n <mailto:unsubscribe+1-2-ab@a.test?subject=unsubscribe>\r\n\
             List-Unsubscribe-Post: List-Unsubscribe=One-Click\r\n"
        );
        assert_eq!(headers("", "T", Some("u@a.test")), "List-Unsubscribe: <mailto:u@a.test?subject=unsubscribe>\r\n");
        assert_eq!(headers("", "T", None), "");
    }

    #[test]
    fn mailto_addresses_are_short_and_bound_to_the_recipient() {
        let keys = keys();
        let long = format!("{}@{}.example", "a".repeat(64), "b".repeat(60));
        let local = mailto_local_part(&keys, 123_456, Some(7_890_123), &long);
        assert!(local.len() <= 64 && local.starts_with("unsubscribe+123456-7890123-"), "{local}");
        let subscriber = verify_mailto(&keys, &local, &long.to_uppercase()).expect("the recipient's own address");
        assert_eq!(subscriber, Subscriber { workspace_id: 123_456, mailbox_id: Some(7_890_123), recipient: long });
        assert_eq!(verify_mailto(&keys, &local.to_uppercase(), "Bob@x.test"), None, "another sender");
        let bob = mailto_local_part(&keys, 1, None, "bob@x.test");
        assert_eq!(verify_mailto(&keys, &bob.to_uppercase(), "BOB@x.test").unwrap().mailbox_id, None);
        assert_eq!(verify_mailto(&MasterKey::from_bytes(&[4; 32]), &bob, "bob@x.test"), None);
        assert_eq!(verify_mailto(&keys, "unsubscribe+1-0", "bob@x.test"), None);
        assert_eq!(verify_mailto(&keys, "sales", "bob@x.test"), None);
    }

    #[tokio::test]
    async fn recording_suppresses_once_and_refuses_unknown_workspaces() {
        let (_dir, store) = crate::store::open_temp();
        store
            .write(|tx| {
                tx.execute("INSERT INTO workspaces (id, name, created_at) VALUES (1, 'w', 0)", [])?;
                let who = Subscriber { workspace_id: 1, mailbox_id: Some(99), recipient: "bob@x.test".into() };
                assert!(record(tx, &who, "one-click", 5)?.newly);
                assert!(!record(tx, &who, "one-click", 6)?.newly);
                assert_eq!(suppression::reason(tx, 1, "bob@x.test")?.as_deref(), Some("unsubscribe"));
                let events = events::list(tx, 1, None, 10)?;
                assert_eq!(events.len(), 1);
                assert_eq!((events[0].kind.as_str(), events[0].mailbox_id), ("unsubscribed", None));
                let elsewhere = Subscriber { workspace_id: 2, ..who };
                assert!(matches!(record(tx, &elsewhere, "x", 7), Err(Error::NotFound)));
                Ok::<_, Error>(())
            })
            .await
            .unwrap();
    }
}
