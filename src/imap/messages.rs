//! Commands that add or remove messages: APPEND, COPY, MOVE (RFC 6851), EXPUNGE, UID EXPUNGE
//! and CLOSE, with the UIDPLUS response codes (RFC 4315: APPENDUID, COPYUID).
//!
//! Each is one store transaction. MOVE copies and removes in that one transaction, then tells the
//! client `* OK [COPYUID ...]` followed by an EXPUNGE for each moved message, as RFC 6851 §4.3
//! orders. Messages named by a set that have vanished meanwhile are skipped, not an error.

use std::num::NonZeroU32;

use imap_codec::imap_types::core::Tag;
use imap_codec::imap_types::datetime::DateTime;
use imap_codec::imap_types::extensions::binary::LiteralOrLiteral8;
use imap_codec::imap_types::extensions::uidplus::{UidElement, UidSet};
use imap_codec::imap_types::flag::Flag;
use imap_codec::imap_types::mailbox::Mailbox;
use imap_codec::imap_types::response::{Code, Data, Response, StatusKind};
use imap_codec::imap_types::sequence::SequenceSet;

use super::connection::End;
use super::fetch::stored_flags;
use super::selected::refused_keyword;
use super::session::Session;
use crate::error::Error;
use crate::mailstore::imap_ops::{self, Copied};

/// A UID set in compact form (`1:3,7`), or `None` when empty.
pub fn uid_set(uids: &[i64]) -> Option<UidSet> {
    let mut elements: Vec<UidElement> = Vec::new();
    let mut sorted: Vec<u32> = uids.iter().filter_map(|&uid| u32::try_from(uid).ok()).collect();
    sorted.sort_unstable();
    sorted.dedup();
    let mut iter = sorted.into_iter().filter_map(NonZeroU32::new).peekable();
    while let Some(start) = iter.next() {
        let mut end = start;
        while let Some(&next) = iter.peek() {
            if next.get() != end.get() + 1 {
                break;
            }
            end = next;
            iter.next();
        }
        elements.push(if start == end { UidElement::Single(start) } else { UidElement::Range(start, end) });
    }
    elements.try_into().ok().map(UidSet)
}

/// COPYUID for a copy or move, when anything was copied.
fn copy_uid_code(uid_validity: i64, copied: &[Copied]) -> Option<Code<'static>> {
    let source = uid_set(&copied.iter().map(|c| c.source_uid).collect::<Vec<_>>())?;
    let destination = uid_set(&copied.iter().map(|c| c.target_uid).collect::<Vec<_>>())?;
    let uid_validity = NonZeroU32::new(u32::try_from(uid_validity).ok()?)?;
    Some(Code::CopyUid { uid_validity, source, destination })
}

impl Session {
    /// APPEND.
    pub(super) async fn append(
        &mut self,
        tag: &Tag<'static>,
        mailbox: &Mailbox<'_>,
        flags: &[Flag<'_>],
        date: Option<&DateTime>,
        message: &LiteralOrLiteral8<'_>,
    ) -> Result<(), End> {
        let raw = match message {
            LiteralOrLiteral8::Literal(literal) => literal.data().to_vec(),
            LiteralOrLiteral8::Literal8(literal) => literal.data.to_vec(),
        };
        if u32::try_from(raw.len()).map_or(true, |size| size > self.max_message) {
            self.no(tag, Some(Code::TooBig), "Message too large");
            return Ok(());
        }
        if refused_keyword(flags) {
            self.bad(tag, "NIL is not a valid keyword");
            return Ok(());
        }
        let Some(name) = self.folder_name(tag, mailbox) else { return Ok(()) };
        let folder = match self.find_folder(&name).await {
            Ok(Some(folder)) => folder,
            Ok(None) => {
                self.no(tag, Some(Code::TryCreate), "No such folder");
                return Ok(());
            }
            Err(e) => return self.internal_error(tag, &e),
        };
        let flags = stored_flags(flags);
        let received_at = date.map_or_else(|| self.app.clock.unix(), |d| d.as_ref().timestamp());
        let target = folder.clone();
        let appended = self.app.store.write(move |tx| imap_ops::append(tx, &target, &raw, &flags, received_at)).await;
        let appended = match appended {
            Ok(appended) => appended,
            Err(e) => return self.internal_error(tag, &e),
        };
        self.notify_change();
        self.refresh(true).await?;
        let code = match (
            u32::try_from(folder.uid_validity).ok().and_then(NonZeroU32::new),
            u32::try_from(appended.uid).ok().and_then(NonZeroU32::new),
        ) {
            (Some(uid_validity), Some(uid)) => Some(Code::AppendUid { uid_validity, uid }),
            _ => None,
        };
        self.ok(tag, code, "APPEND completed");
        Ok(())
    }

    /// COPY and MOVE (and their UID forms).
    pub(super) async fn copy(
        &mut self,
        tag: &Tag<'static>,
        set: &SequenceSet,
        mailbox: &Mailbox<'_>,
        uid: bool,
        moving: bool,
    ) -> Result<(), End> {
        let Some(selected) = &self.selected else { return Ok(()) };
        if moving && selected.read_only {
            self.no(tag, None, "The folder is read-only");
            return Ok(());
        }
        let source = selected.folder.id;
        let uids = selected.uids_at(&selected.resolve(set, uid));
        let Some(name) = self.folder_name(tag, mailbox) else { return Ok(()) };
        let target = match self.find_folder(&name).await {
            Ok(Some(folder)) => folder,
            Ok(None) => {
                self.no(tag, Some(Code::TryCreate), "No such folder");
                return Ok(());
            }
            Err(e) => return self.internal_error(tag, &e),
        };
        let target_id = target.id;
        let copied = self
            .app
            .store
            .write(move |tx| {
                let copied = imap_ops::copy(tx, source, target_id, &uids)?;
                if moving {
                    let moved: Vec<i64> = copied.iter().map(|c| c.source_uid).collect();
                    imap_ops::remove(tx, source, &moved)?;
                }
                Ok::<_, Error>(copied)
            })
            .await;
        let copied = match copied {
            Ok(copied) => copied,
            Err(e) => return self.internal_error(tag, &e),
        };
        self.notify_change();
        let code = copy_uid_code(target.uid_validity, &copied);
        if !moving {
            self.refresh(uid).await?;
            self.ok(tag, code, "COPY completed");
            return Ok(());
        }
        if code.is_some() {
            self.untagged(StatusKind::Ok, code, "Moved");
        }
        let moved: Vec<i64> = copied.iter().map(|c| c.source_uid).collect();
        self.send_expunges(&moved);
        self.refresh(true).await?;
        self.ok(tag, None, "MOVE completed");
        Ok(())
    }

    /// EXPUNGE (`only` None) and UID EXPUNGE.
    pub(super) async fn expunge(&mut self, tag: &Tag<'static>, only: Option<&SequenceSet>) -> Result<(), End> {
        let Some(selected) = &self.selected else { return Ok(()) };
        if selected.read_only {
            self.no(tag, None, "The folder is read-only");
            return Ok(());
        }
        let folder_id = selected.folder.id;
        let allowed = only.map(|set| selected.uids_at(&selected.resolve(set, true)));
        let removed = self.app.store.write(move |tx| imap_ops::expunge(tx, folder_id, allowed.as_deref())).await;
        let removed = match removed {
            Ok(removed) => removed,
            Err(e) => return self.internal_error(tag, &e.into()),
        };
        if !removed.is_empty() {
            self.notify_change();
        }
        self.send_expunges(&removed);
        self.refresh(true).await?;
        self.ok(tag, None, "EXPUNGE completed");
        Ok(())
    }

    /// CLOSE: removes `\Deleted` messages silently (read-write only) and deselects.
    pub(super) async fn close(&mut self, tag: &Tag<'static>) -> Result<(), End> {
        let Some(selected) = self.selected.take() else { return Ok(()) };
        if !selected.read_only {
            let folder_id = selected.folder.id;
            match self.app.store.write(move |tx| imap_ops::expunge(tx, folder_id, None)).await {
                Ok(removed) if !removed.is_empty() => self.notify_change(),
                Ok(_) => {}
                Err(e) => return self.internal_error(tag, &e.into()),
            }
        }
        self.ok(tag, None, "CLOSE completed");
        Ok(())
    }

    /// Removes messages this session removed from its view, sending their EXPUNGE responses.
    fn send_expunges(&mut self, uids: &[i64]) {
        let Some(selected) = &mut self.selected else { return };
        for seq in selected.remove_uids(uids) {
            if let Some(seq) = NonZeroU32::new(seq) {
                self.conn.send(&Response::Data(Data::Expunge(seq)));
            }
        }
    }

    /// Tells other sessions of this mailbox (IDLE) that its mail changed.
    pub(super) fn notify_change(&self) {
        if let Some(user) = &self.user {
            self.app.mail_changes.notify(user.mailbox_id);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uid_sets_are_compact() {
        let set = uid_set(&[7, 1, 2, 3, 9, 3]).unwrap();
        let shown: Vec<String> = set
            .0
            .as_ref()
            .iter()
            .map(|e| match e {
                UidElement::Single(n) => n.to_string(),
                UidElement::Range(a, b) => format!("{a}:{b}"),
            })
            .collect();
        assert_eq!(shown, ["1:3", "7", "9"]);
        assert!(uid_set(&[]).is_none());
    }
}
