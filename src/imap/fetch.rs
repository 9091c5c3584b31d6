//! FETCH and STORE (and their UID forms) on the selected folder.
//!
//! FETCH loads messages in batches of [`BATCH`] and streams each response as it is built, so a
//! `FETCH 1:* BODY[]` over a large folder never holds more than one batch. A message that has
//! vanished since the client last heard (moved or expunged by another session) simply yields no
//! response; a STORE on one changes nothing, reports nothing and is no error (the message is
//! marked vanished in the view; its EXPUNGE follows at the next sync that may send one). A
//! non-peek body fetch in a read-write folder sets `\Seen` (one write per batch) and reports
//! the new FLAGS with the data. Flags are changed from what the store holds in the writing
//! transaction, not from the session's view (another session may have changed them since it
//! was told), so no other session's change is undone. A STORE that brings a keyword the client
//! was not told of sends FLAGS and PERMANENTFLAGS first (see [`super::selected`]); one that
//! gives `NIL` is `BAD`.

use std::num::NonZeroU32;

use imap_codec::imap_types::IntoStatic;
use imap_codec::imap_types::core::{Literal, NString, Tag};
use imap_codec::imap_types::datetime::DateTime;
use imap_codec::imap_types::fetch::{MacroOrMessageDataItemNames, MessageDataItem, MessageDataItemName};
use imap_codec::imap_types::flag::{Flag, FlagFetch, StoreResponse, StoreType};
use imap_codec::imap_types::response::{Data, Response};
use imap_codec::imap_types::sequence::SequenceSet;

use super::connection::End;
use super::mime::Parsed;
use super::selected::{apply_store, fetch_flags, flags_string, has_flag, refused_keyword, seq_of};
use super::session::Session;
use crate::mailstore::imap_ops::{self, FlagChange, MessageBody};

/// Messages loaded per round trip to the store.
const BATCH: usize = 50;

/// A literal holding `bytes` (a NUL byte, which no IMAP string may hold, becomes a space).
pub fn literal(bytes: Vec<u8>) -> Literal<'static> {
    let clean =
        if bytes.contains(&0) { bytes.into_iter().map(|b| if b == 0 { b' ' } else { b }).collect() } else { bytes };
    Literal::unvalidated(clean)
}

/// Whether an item needs the message body.
fn needs_body(name: &MessageDataItemName<'_>) -> bool {
    !matches!(
        name,
        MessageDataItemName::Flags
            | MessageDataItemName::Uid
            | MessageDataItemName::InternalDate
            | MessageDataItemName::Rfc822Size
    )
}

/// Whether fetching an item sets `\Seen` (RFC 3501 §6.4.5).
fn marks_seen(name: &MessageDataItemName<'_>) -> bool {
    matches!(
        name,
        MessageDataItemName::BodyExt { peek: false, .. }
            | MessageDataItemName::Rfc822
            | MessageDataItemName::Rfc822Text
    )
}

/// The FETCH item names, macros expanded, with UID first for UID FETCH.
fn item_names(items: &MacroOrMessageDataItemNames<'_>, uid: bool) -> Vec<MessageDataItemName<'static>> {
    let mut names: Vec<MessageDataItemName<'static>> = match items {
        MacroOrMessageDataItemNames::Macro(m) => m.expand().into_iter().map(IntoStatic::into_static).collect(),
        MacroOrMessageDataItemNames::MessageDataItemNames(list) => {
            list.iter().cloned().map(IntoStatic::into_static).collect()
        }
    };
    if uid && !names.contains(&MessageDataItemName::Uid) {
        names.insert(0, MessageDataItemName::Uid);
    }
    names
}

impl Session {
    /// FETCH / UID FETCH.
    pub(super) async fn fetch(
        &mut self,
        tag: &Tag<'static>,
        set: &SequenceSet,
        items: &MacroOrMessageDataItemNames<'_>,
        uid: bool,
    ) -> Result<(), End> {
        let mut names = item_names(items, uid);
        if names
            .iter()
            .any(|n| matches!(n, MessageDataItemName::Binary { .. } | MessageDataItemName::BinarySize { .. }))
        {
            self.bad(tag, "BINARY is not supported");
            return Ok(());
        }
        let Some(selected) = &self.selected else { return Ok(()) };
        let (folder_id, read_only) = (selected.folder.id, selected.read_only);
        let positions = selected.resolve(set, uid);
        let with_body = names.iter().any(needs_body);
        let sets_seen = !read_only && names.iter().any(marks_seen);
        if sets_seen && !names.contains(&MessageDataItemName::Flags) {
            names.push(MessageDataItemName::Flags);
        }
        for batch in positions.chunks(BATCH) {
            let uids = self.selected.as_ref().map(|s| s.uids_at(batch)).unwrap_or_default();
            let loaded =
                match self.app.store.read(move |conn| imap_ops::bodies(conn, folder_id, &uids, with_body)).await {
                    Ok(loaded) => loaded,
                    Err(e) => return self.internal_error(tag, &e.into()),
                };
            if sets_seen {
                self.mark_seen(&loaded).await;
            }
            for message in &loaded {
                self.send_fetch(&names, message)?;
                self.conn.flush_if_large().await?;
            }
        }
        self.refresh(uid).await?;
        self.ok(tag, None, "FETCH completed");
        Ok(())
    }

    /// Sets `\Seen` on the messages of a batch that lack it (in the store and the session).
    async fn mark_seen(&mut self, loaded: &[MessageBody]) {
        let Some(selected) = &self.selected else { return };
        let folder_id = selected.folder.id;
        let unseen: Vec<i64> = loaded
            .iter()
            .filter(|message| {
                selected.messages.iter().any(|k| i64::from(k.uid) == message.uid && !has_flag(&k.flags, "\\Seen"))
            })
            .map(|message| message.uid)
            .collect();
        if unseen.is_empty() {
            return;
        }
        let add_seen = |flags: &str| apply_store(flags, &StoreType::Add, &[Flag::Seen]);
        match self.app.store.write(move |tx| imap_ops::update_flags(tx, folder_id, &unseen, add_seen)).await {
            // The FETCH shows the flags, so the view takes them whole.
            Ok(changes) => self.apply_own_flag_changes(&changes, false),
            Err(e) => tracing::warn!(error = %e, "imap: could not set \\Seen"),
        }
    }

    /// Records the flags a change of this session left, so the next sync does not report them
    /// again. When the client is told nothing (`silent`), a message whose flags another session
    /// had changed meanwhile keeps what the client last heard, so the next sync reports it.
    fn apply_own_flag_changes(&mut self, changes: &[FlagChange], silent: bool) {
        if let Some(selected) = &mut self.selected {
            for change in changes {
                if let Some(known) = selected.messages.iter_mut().find(|k| i64::from(k.uid) == change.uid)
                    && (!silent || known.flags == change.before)
                {
                    known.flags.clone_from(&change.after);
                }
            }
        }
        if changes.iter().any(|change| change.before != change.after) {
            self.notify_change();
        }
    }

    /// Builds and queues one message's FETCH response.
    fn send_fetch(&mut self, names: &[MessageDataItemName<'static>], message: &MessageBody) -> Result<(), End> {
        let Some(selected) = &self.selected else { return Ok(()) };
        let Some(position) = selected.messages.iter().position(|k| i64::from(k.uid) == message.uid) else {
            return Ok(());
        };
        let known = &selected.messages[position];
        let items = message_items(names, message, &fetch_flags(&known.flags, known.recent));
        let Ok(items) = items.try_into() else { return Ok(()) };
        let Some(seq) = NonZeroU32::new(seq_of(position)) else { return Ok(()) };
        self.conn.send(&Response::Data(Data::Fetch { seq, items }));
        Ok(())
    }

    /// STORE / UID STORE.
    pub(super) async fn store(
        &mut self,
        tag: &Tag<'static>,
        set: &SequenceSet,
        kind: &StoreType,
        response: &StoreResponse,
        given: &[Flag<'_>],
        uid: bool,
    ) -> Result<(), End> {
        let Some(selected) = &self.selected else { return Ok(()) };
        if selected.read_only {
            self.no(tag, None, "The folder is read-only");
            return Ok(());
        }
        if refused_keyword(given) {
            self.bad(tag, "NIL is not a valid keyword");
            return Ok(());
        }
        let folder_id = selected.folder.id;
        let positions = selected.resolve(set, uid);
        let uids = selected.uids_at(&positions);
        if !uids.is_empty() {
            let (kind, given) = (*kind, given.iter().cloned().map(IntoStatic::into_static).collect::<Vec<_>>());
            let written = uids.clone();
            let change = move |flags: &str| apply_store(flags, &kind, &given);
            match self.app.store.write(move |tx| imap_ops::update_flags(tx, folder_id, &written, change)).await {
                Ok(changes) => {
                    let gone: Vec<i64> = uids.into_iter().filter(|u| !changes.iter().any(|c| c.uid == *u)).collect();
                    self.apply_own_flag_changes(&changes, *response == StoreResponse::Silent);
                    if let Some(selected) = &mut self.selected {
                        selected.mark_vanished(&gone);
                    }
                    self.announce_new_keywords();
                }
                Err(e) => return self.internal_error(tag, &e.into()),
            }
        }
        if *response == StoreResponse::Answer {
            self.send_flags(&positions, uid);
        }
        self.refresh(uid).await?;
        self.ok(tag, None, "STORE completed");
        Ok(())
    }

    /// `* n FETCH (FLAGS (...))` (with UID for UID commands) for these positions.
    pub(super) fn send_flags(&mut self, positions: &[usize], uid: bool) {
        let Some(selected) = &self.selected else { return };
        let mut responses = Vec::new();
        for &position in positions {
            let Some(known) = selected.messages.get(position).filter(|known| !known.vanished) else { continue };
            let mut items = Vec::new();
            if uid && let Some(value) = NonZeroU32::new(known.uid) {
                items.push(MessageDataItem::Uid(value));
            }
            items.push(MessageDataItem::Flags(fetch_flags(&known.flags, known.recent)));
            if let (Some(seq), Ok(items)) = (NonZeroU32::new(seq_of(position)), items.try_into()) {
                responses.push(Response::Data(Data::Fetch { seq, items }));
            }
        }
        for response in &responses {
            self.conn.send(response);
        }
    }
}

/// The FETCH items for one message, `flags` being what FLAGS shows.
fn message_items(
    names: &[MessageDataItemName<'static>],
    message: &MessageBody,
    flags: &[FlagFetch<'static>],
) -> Vec<MessageDataItem<'static>> {
    let parsed = names.iter().any(needs_body).then(|| Parsed::parse(&message.raw));
    let mut items = Vec::with_capacity(names.len());
    for name in names {
        let item = match (name, &parsed) {
            (MessageDataItemName::Uid, _) => match u32::try_from(message.uid).ok().and_then(NonZeroU32::new) {
                Some(uid) => MessageDataItem::Uid(uid),
                None => continue,
            },
            (MessageDataItemName::Flags, _) => MessageDataItem::Flags(flags.to_vec()),
            (MessageDataItemName::InternalDate, _) => MessageDataItem::InternalDate(internal_date(message.received_at)),
            (MessageDataItemName::Rfc822Size, _) => {
                MessageDataItem::Rfc822Size(u32::try_from(message.size).unwrap_or(u32::MAX))
            }
            (MessageDataItemName::Envelope, Some(parsed)) => MessageDataItem::Envelope(parsed.envelope()),
            (MessageDataItemName::BodyStructure, Some(parsed)) => {
                MessageDataItem::BodyStructure(parsed.body_structure(true))
            }
            (MessageDataItemName::Body, Some(parsed)) => MessageDataItem::Body(parsed.body_structure(false)),
            (MessageDataItemName::Rfc822, Some(parsed)) => MessageDataItem::Rfc822(bytes(parsed.raw())),
            (MessageDataItemName::Rfc822Header, Some(parsed)) => MessageDataItem::Rfc822Header(bytes(parsed.header())),
            (MessageDataItemName::Rfc822Text, Some(parsed)) => MessageDataItem::Rfc822Text(bytes(parsed.text())),
            (MessageDataItemName::BodyExt { section, partial, .. }, Some(parsed)) => {
                let data = parsed.section(section.as_ref()).map(|found| match partial {
                    Some((origin, length)) => window(&found, *origin, *length),
                    None => found.into_owned(),
                });
                MessageDataItem::BodyExt {
                    section: section.clone(),
                    origin: partial.map(|(origin, _)| origin),
                    data: data.map_or(NString::NIL, |data| NString::from(literal(data))),
                }
            }
            _ => continue,
        };
        items.push(item);
    }
    items
}

/// `<origin.length>` of a section: the bytes there are from `origin`, at most `length`.
fn window(data: &[u8], origin: u32, length: NonZeroU32) -> Vec<u8> {
    let start = usize::try_from(origin).unwrap_or(usize::MAX).min(data.len());
    let end = start.saturating_add(usize::try_from(length.get()).unwrap_or(usize::MAX)).min(data.len());
    data[start..end].to_vec()
}

fn bytes(data: &[u8]) -> NString<'static> {
    NString::from(literal(data.to_vec()))
}

/// INTERNALDATE from unix seconds (UTC).
pub fn internal_date(unix: i64) -> DateTime {
    let when = chrono::DateTime::from_timestamp(unix, 0).unwrap_or_default().fixed_offset();
    DateTime::try_from(when).unwrap_or_else(|_| DateTime::unvalidated(chrono::DateTime::UNIX_EPOCH.fixed_offset()))
}

/// The stored flags for new flags given by a client (APPEND).
pub fn stored_flags(given: &[Flag<'_>]) -> String {
    flags_string(given)
}

#[cfg(test)]
mod tests {
    use imap_codec::ResponseCodec;
    use imap_codec::encode::Encoder;

    use super::*;

    fn encoded(items: Vec<MessageDataItem<'static>>) -> String {
        let response =
            Response::Data(Data::Fetch { seq: NonZeroU32::new(1).unwrap(), items: items.try_into().unwrap() });
        String::from_utf8(ResponseCodec::default().encode(&response).dump()).unwrap()
    }

    #[test]
    fn items_are_built_and_encoded() {
        let message = MessageBody {
            uid: 7,
            flags: "\\Seen".into(),
            size: 34,
            received_at: 0,
            raw: b"Subject: hi\r\nFrom: a@b.test\r\n\r\nhello\r\n".to_vec(),
        };
        let names = vec![
            MessageDataItemName::Uid,
            MessageDataItemName::Flags,
            MessageDataItemName::InternalDate,
            MessageDataItemName::BodyExt { section: None, partial: Some((0, NonZeroU32::new(7).unwrap())), peek: true },
        ];
        let text = encoded(message_items(&names, &message, &fetch_flags(&message.flags, true)));
        assert_eq!(
            text,
            "* 1 FETCH (UID 7 FLAGS (\\Seen \\Recent) INTERNALDATE \"01-Jan-1970 00:00:00 +0000\" BODY[]<0> {7}\r\nSubject)\r\n"
        );
        let structure = encoded(message_items(&[MessageDataItemName::BodyStructure], &message, &[]));
        assert!(
            structure.contains("(\"TEXT\" \"PLAIN\" (\"CHARSET\" \"US-ASCII\") NIL NIL \"7BIT\" 7 1"),
            "{structure}"
        );
        let envelope = encoded(message_items(&[MessageDataItemName::Envelope], &message, &[]));
        assert!(envelope.contains("ENVELOPE (NIL \"hi\" ((NIL NIL \"a\" \"b.test\"))"), "{envelope}");
        assert_eq!(window(b"abcdef", 4, NonZeroU32::new(10).unwrap()), b"ef");
        assert_eq!(window(b"abc", 9, NonZeroU32::new(1).unwrap()), b"");
    }
}
