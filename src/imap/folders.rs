//! Folder commands: SELECT/EXAMINE, LIST/LSUB (with SPECIAL-USE attributes, RFC 6154), STATUS,
//! CREATE, DELETE, RENAME.
//!
//! Folder names are kept as the client sends them (modified UTF-7 stays encoded); the hierarchy
//! delimiter is `/`. LIST patterns: `*` matches anything, `%` anything but the delimiter, and
//! `INBOX` matches in any case. Every folder counts as subscribed, so LSUB lists what LIST lists
//! and SUBSCRIBE/UNSUBSCRIBE simply succeed.

use std::borrow::Cow;

use imap_codec::imap_types::core::{Atom, QuotedChar, Tag};
use imap_codec::imap_types::flag::{Flag, FlagNameAttribute, FlagPerm};
use imap_codec::imap_types::mailbox::{ListMailbox, Mailbox};
use imap_codec::imap_types::response::{Code, Data, Response, StatusKind};
use imap_codec::imap_types::status::{StatusDataItem, StatusDataItemName};

use super::connection::End;
use super::selected::{Selected, has_flag};
use super::session::{Session, code};
use crate::error::Error;
use crate::mailstore::imap_ops::{self, Folder, FolderCounts};

/// The hierarchy delimiter.
pub const DELIMITER: char = '/';

/// A mailbox name as text.
pub fn mailbox_name(mailbox: &Mailbox<'_>) -> String {
    match mailbox {
        Mailbox::Inbox => "INBOX".to_string(),
        Mailbox::Other(other) => String::from_utf8_lossy(other.as_ref()).into_owned(),
    }
}

/// The name as a response mailbox.
fn response_mailbox(name: &str) -> Option<Mailbox<'static>> {
    Mailbox::try_from(name.to_string()).ok()
}

/// Whether a folder name matches a LIST pattern.
pub fn pattern_matches(pattern: &str, name: &str) -> bool {
    let pattern: Vec<char> = pattern.chars().collect();
    let name: Vec<char> = name.chars().collect();
    matches_from(&pattern, &name)
}

fn matches_from(pattern: &[char], name: &[char]) -> bool {
    match pattern.split_first() {
        None => name.is_empty(),
        Some(('*', rest)) => (0..=name.len()).any(|skip| matches_from(rest, &name[skip..])),
        Some(('%', rest)) => {
            let limit = name.iter().position(|&c| c == DELIMITER).unwrap_or(name.len());
            (0..=limit).any(|skip| matches_from(rest, &name[skip..]))
        }
        Some((&c, rest)) => name.first() == Some(&c) && matches_from(rest, &name[1..]),
    }
}

/// The LIST attributes of a folder: children, and its SPECIAL-USE attribute.
fn attributes(folder: &Folder, all: &[Folder]) -> Vec<FlagNameAttribute<'static>> {
    let prefix = format!("{}{DELIMITER}", folder.name);
    let children = all.iter().any(|other| other.name.starts_with(&prefix));
    let mut names = vec![if children { "HasChildren" } else { "HasNoChildren" }.to_string()];
    if let Some(special) = &folder.special_use {
        names.push(special.trim_start_matches('\\').to_string());
    }
    names.into_iter().filter_map(|name| Atom::try_from(name).ok().map(FlagNameAttribute::from)).collect()
}

fn system_flags() -> Vec<Flag<'static>> {
    vec![Flag::Answered, Flag::Flagged, Flag::Deleted, Flag::Seen, Flag::Draft]
}

impl Session {
    fn mailbox_id(&self) -> i64 {
        self.user.as_ref().map_or(0, |user| user.mailbox_id)
    }

    /// Looks up a folder of the logged-in mailbox.
    pub(super) async fn find_folder(&mut self, name: &str) -> Result<Option<Folder>, Error> {
        let (mailbox_id, name) = (self.mailbox_id(), name.to_string());
        self.app.store.read(move |conn| imap_ops::folder(conn, mailbox_id, &name)).await.map_err(Error::from)
    }

    /// SELECT (`read_only` false) and EXAMINE.
    pub(super) async fn select(
        &mut self,
        tag: &Tag<'static>,
        mailbox: &Mailbox<'_>,
        read_only: bool,
    ) -> Result<(), End> {
        self.selected = None;
        let name = mailbox_name(mailbox);
        let folder = match self.find_folder(&name).await {
            Ok(Some(folder)) => folder,
            Ok(None) => {
                self.no(tag, Some(code("NONEXISTENT")), "No such folder");
                return Ok(());
            }
            Err(e) => return self.internal_error(tag, &e),
        };
        let folder_id = folder.id;
        let listed = match self.app.store.read(move |conn| imap_ops::message_flags(conn, folder_id)).await {
            Ok(listed) => listed,
            Err(e) => return self.internal_error(tag, &e.into()),
        };
        let selected = Selected::new(folder, read_only, listed);
        self.send_selection(&selected);
        self.selected = Some(selected);
        let (access, done) =
            if read_only { (Code::ReadOnly, "EXAMINE completed") } else { (Code::ReadWrite, "SELECT completed") };
        self.ok(tag, Some(access), done);
        Ok(())
    }

    /// The untagged responses SELECT and EXAMINE send (RFC 3501 §6.3.1).
    fn send_selection(&mut self, selected: &Selected) {
        self.conn.send(&Response::Data(Data::Flags(system_flags())));
        let mut permanent: Vec<FlagPerm<'static>> = system_flags().into_iter().map(FlagPerm::from).collect();
        permanent.push(FlagPerm::Asterisk);
        let permanent = if selected.read_only { Vec::new() } else { permanent };
        self.untagged(StatusKind::Ok, Some(Code::PermanentFlags(permanent)), "Flags permitted");
        self.conn.send(&Response::Data(Data::Exists(selected.exists())));
        self.conn.send(&Response::Data(Data::Recent(0)));
        if let Some(first) = selected.messages.iter().position(|m| !has_flag(&m.flags, "\\Seen"))
            && let Ok(code) = Code::unseen(super::selected::seq_of(first))
        {
            self.untagged(StatusKind::Ok, Some(code), "First unseen");
        }
        if let Ok(code) = Code::uidvalidity(u32::try_from(selected.folder.uid_validity).unwrap_or(1)) {
            self.untagged(StatusKind::Ok, Some(code), "UIDs valid");
        }
        if let Ok(code) = Code::uidnext(u32::try_from(selected.folder.uid_next).unwrap_or(1)) {
            self.untagged(StatusKind::Ok, Some(code), "Predicted next UID");
        }
    }

    /// LIST and LSUB.
    pub(super) async fn list(
        &mut self,
        tag: &Tag<'static>,
        reference: &Mailbox<'_>,
        pattern: &ListMailbox<'_>,
        lsub: bool,
    ) -> Result<(), End> {
        let pattern = match pattern {
            ListMailbox::Token(token) => String::from_utf8_lossy(token.as_ref()).into_owned(),
            ListMailbox::String(string) => String::from_utf8_lossy(&string.clone().into_inner()).into_owned(),
        };
        let reference = match reference {
            Mailbox::Inbox => "INBOX".to_string(),
            other => mailbox_name(other),
        };
        let done = if lsub { "LSUB completed" } else { "LIST completed" };
        if pattern.is_empty() && !lsub {
            // The delimiter query (RFC 3501 §6.3.8).
            self.conn.write_raw(b"* LIST (\\Noselect) \"/\" \"\"\r\n");
            self.ok(tag, None, done);
            return Ok(());
        }
        let mailbox_id = self.mailbox_id();
        let all = match self.app.store.read(move |conn| imap_ops::folders(conn, mailbox_id)).await {
            Ok(all) => all,
            Err(e) => return self.internal_error(tag, &e.into()),
        };
        let full = format!("{reference}{pattern}");
        for folder in &all {
            let matched = pattern_matches(&full, &folder.name)
                || (folder.name == "INBOX" && pattern_matches(&full.to_ascii_uppercase(), "INBOX"));
            if !matched {
                continue;
            }
            let Some(mailbox) = response_mailbox(&folder.name) else { continue };
            let items = attributes(folder, &all);
            let delimiter = QuotedChar::try_from(DELIMITER).ok();
            let data =
                if lsub { Data::Lsub { items, delimiter, mailbox } } else { Data::List { items, delimiter, mailbox } };
            self.conn.send(&Response::Data(data));
        }
        self.ok(tag, None, done);
        Ok(())
    }

    /// STATUS.
    pub(super) async fn status(
        &mut self,
        tag: &Tag<'static>,
        mailbox: &Mailbox<'_>,
        names: &[StatusDataItemName],
    ) -> Result<(), End> {
        let folder = match self.find_folder(&mailbox_name(mailbox)).await {
            Ok(Some(folder)) => folder,
            Ok(None) => {
                self.no(tag, Some(code("NONEXISTENT")), "No such folder");
                return Ok(());
            }
            Err(e) => return self.internal_error(tag, &e),
        };
        let folder_id = folder.id;
        let counts = match self.app.store.read(move |conn| imap_ops::counts(conn, folder_id)).await {
            Ok(counts) => counts,
            Err(e) => return self.internal_error(tag, &e.into()),
        };
        let items = status_items(names, &folder, counts);
        let Some(mailbox) = response_mailbox(&folder.name) else { return Ok(()) };
        self.conn.send(&Response::Data(Data::Status { mailbox, items: Cow::Owned(items) }));
        self.ok(tag, None, "STATUS completed");
        Ok(())
    }

    /// CREATE.
    pub(super) async fn create(&mut self, tag: &Tag<'static>, mailbox: &Mailbox<'_>) -> Result<(), End> {
        let name = mailbox_name(mailbox).trim_end_matches(DELIMITER).to_string();
        if name.is_empty() || name.split(DELIMITER).any(str::is_empty) {
            self.no(tag, Some(code("CANNOT")), "That is not a valid folder name");
            return Ok(());
        }
        let (mailbox_id, now) = (self.mailbox_id(), self.app.clock.unix());
        let created = self.app.store.write(move |tx| imap_ops::create_folder(tx, mailbox_id, &name, now)).await;
        self.folder_change_done(tag, created.map(|_| ()), "CREATE completed")
    }

    /// DELETE.
    pub(super) async fn delete(&mut self, tag: &Tag<'static>, mailbox: &Mailbox<'_>) -> Result<(), End> {
        let name = mailbox_name(mailbox);
        if self.selected.as_ref().is_some_and(|s| s.folder.name == imap_ops::canonical_name(&name)) {
            self.selected = None;
        }
        let mailbox_id = self.mailbox_id();
        let deleted = self.app.store.write(move |tx| imap_ops::delete_folder(tx, mailbox_id, &name)).await;
        self.folder_change_done(tag, deleted, "DELETE completed")
    }

    /// RENAME.
    pub(super) async fn rename(&mut self, tag: &Tag<'static>, from: &Mailbox<'_>, to: &Mailbox<'_>) -> Result<(), End> {
        let (from, to) = (mailbox_name(from), mailbox_name(to).trim_end_matches(DELIMITER).to_string());
        if to.is_empty() {
            self.no(tag, Some(code("CANNOT")), "That is not a valid folder name");
            return Ok(());
        }
        let mailbox_id = self.mailbox_id();
        let (old, new) = (from.clone(), to.clone());
        let renamed = self.app.store.write(move |tx| imap_ops::rename_folder(tx, mailbox_id, &old, &new)).await;
        if renamed.is_ok()
            && let Some(selected) = &mut self.selected
            && selected.folder.name == from
        {
            selected.folder.name = to;
        }
        self.folder_change_done(tag, renamed, "RENAME completed")
    }

    /// The tagged answer to CREATE, DELETE or RENAME.
    fn folder_change_done(&mut self, tag: &Tag<'static>, result: Result<(), Error>, done: &str) -> Result<(), End> {
        match result {
            Ok(()) => {
                if let Some(user) = &self.user {
                    self.app.mail_changes.notify(user.mailbox_id);
                }
                self.ok(tag, None, done);
                Ok(())
            }
            Err(Error::NotFound) => {
                self.no(tag, Some(code("NONEXISTENT")), "No such folder");
                Ok(())
            }
            Err(Error::Conflict(text)) => {
                self.no(tag, Some(code("ALREADYEXISTS")), &text);
                Ok(())
            }
            Err(Error::Invalid { message, .. }) => {
                self.no(tag, Some(code("CANNOT")), &message);
                Ok(())
            }
            Err(e) => self.internal_error(tag, &e),
        }
    }
}

/// The STATUS items asked for.
fn status_items(names: &[StatusDataItemName], folder: &Folder, counts: FolderCounts) -> Vec<StatusDataItem> {
    let count = |n: i64| u32::try_from(n).unwrap_or(u32::MAX);
    let nonzero = |n: i64| std::num::NonZeroU32::new(count(n)).unwrap_or(std::num::NonZeroU32::MIN);
    names
        .iter()
        .filter_map(|name| match name {
            StatusDataItemName::Messages => Some(StatusDataItem::Messages(count(counts.messages))),
            StatusDataItemName::Recent => Some(StatusDataItem::Recent(0)),
            StatusDataItemName::UidNext => Some(StatusDataItem::UidNext(nonzero(folder.uid_next))),
            StatusDataItemName::UidValidity => Some(StatusDataItem::UidValidity(nonzero(folder.uid_validity))),
            StatusDataItemName::Unseen => Some(StatusDataItem::Unseen(count(counts.unseen))),
            _ => None,
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn list_patterns_follow_rfc3501() {
        assert!(pattern_matches("*", "Projects/2026"));
        assert!(pattern_matches("%", "Spam"));
        assert!(!pattern_matches("%", "Projects/2026"));
        assert!(pattern_matches("Projects/%", "Projects/2026"));
        assert!(pattern_matches("S*", "Sent") && !pattern_matches("S*", "Trash"));
        assert!(pattern_matches("INBOX", "INBOX") && !pattern_matches("", "INBOX"));
    }

    #[test]
    fn special_use_folders_carry_their_attribute() {
        let folder = |name: &str, special: Option<&str>| Folder {
            id: 1,
            name: name.into(),
            special_use: special.map(str::to_string),
            uid_validity: 1,
            uid_next: 1,
        };
        let all = [folder("Spam", Some("\\Junk")), folder("A", None), folder("A/B", None)];
        let shown = |f: &Folder| attributes(f, &all).iter().map(ToString::to_string).collect::<Vec<_>>();
        assert_eq!(shown(&all[0]), ["\\HasNoChildren", "\\Junk"]);
        assert_eq!(shown(&all[1]), ["\\HasChildren"]);
    }
}
