//! Folder commands: SELECT/EXAMINE, LIST/LSUB (with SPECIAL-USE attributes, RFC 6154), STATUS,
//! CREATE, DELETE, RENAME, SUBSCRIBE, UNSUBSCRIBE.
//!
//! Folder names travel in modified UTF-7 ([`super::mutf7`]) and are stored decoded: every name a
//! command gives is decoded first (a name that is not valid modified UTF-7 gets `NO [CANNOT]`),
//! every name a response gives is encoded; a LIST or LSUB pattern that is not valid modified
//! UTF-7 matches no folder (`OK`, nothing listed). The hierarchy delimiter is `/`. LIST
//! patterns: `*` matches anything, `%` anything but the delimiter, and `INBOX` matches in any case.
//! Subscriptions are stored per name (see `imap_ops::subscriptions`: INBOX and the special-use
//! folders are subscribed by default); LSUB lists the subscribed names that match, with
//! `\Noselect` a name whose folder does not exist (any more) and an unsubscribed parent that
//! stands for a subscribed child where `%` stops (RFC 3501 §6.3.9).

use std::borrow::Cow;

use imap_codec::imap_types::core::{Atom, QuotedChar, Tag};
use imap_codec::imap_types::flag::{Flag, FlagNameAttribute, FlagPerm};
use imap_codec::imap_types::mailbox::{ListMailbox, Mailbox};
use imap_codec::imap_types::response::{Code, Data, Response, StatusKind};
use imap_codec::imap_types::status::{StatusDataItem, StatusDataItemName};

use super::connection::End;
use super::mutf7;
use super::selected::{Selected, has_flag, parse_flags};
use super::session::{Session, code};
use crate::error::Error;
use crate::mailstore::imap_ops::{self, Folder, FolderCounts};

/// The hierarchy delimiter.
pub const DELIMITER: char = '/';

/// The folder name a command's mailbox stands for (decoded from modified UTF-7), or `None`
/// when it is not valid modified UTF-7.
pub fn mailbox_name(mailbox: &Mailbox<'_>) -> Option<String> {
    match mailbox {
        Mailbox::Inbox => Some("INBOX".to_string()),
        Mailbox::Other(other) => std::str::from_utf8(other.as_ref()).ok().and_then(mutf7::decode),
    }
}

/// A stored folder name as a response mailbox (modified UTF-7).
fn response_mailbox(name: &str) -> Option<Mailbox<'static>> {
    Mailbox::try_from(mutf7::encode(name)).ok()
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

/// The names LSUB answers: each subscribed name that matches the pattern, and, for one that
/// does not, its nearest parent that does when that parent is not subscribed itself (RFC 3501
/// §6.3.9: `foo/bar` subscribed, `LSUB "" "%"` answers `foo`), marked `true` (`\Noselect`).
fn lsub_names(subscribed: &[String], matches: impl Fn(&str) -> bool) -> Vec<(String, bool)> {
    let mut names: Vec<(String, bool)> = Vec::new();
    for name in subscribed {
        if matches(name) {
            names.push((name.clone(), false));
            continue;
        }
        let mut parents = name.match_indices(DELIMITER).rev().map(|(at, _)| &name[..at]);
        if let Some(parent) = parents.find(|parent| matches(parent))
            && !subscribed.iter().any(|other| other == parent)
            && !names.iter().any(|(listed, _)| listed == parent)
        {
            names.push((parent.to_string(), true));
        }
    }
    names
}

fn system_flags() -> Vec<Flag<'static>> {
    vec![Flag::Answered, Flag::Flagged, Flag::Deleted, Flag::Seen, Flag::Draft]
}

impl Session {
    fn mailbox_id(&self) -> i64 {
        self.user.as_ref().map_or(0, |user| user.mailbox_id)
    }

    /// The folder name a command gives, decoded; `None` (and `NO [CANNOT]` to the client) when
    /// it is not valid modified UTF-7.
    pub(super) fn folder_name(&mut self, tag: &Tag<'static>, mailbox: &Mailbox<'_>) -> Option<String> {
        let name = mailbox_name(mailbox);
        if name.is_none() {
            self.no(tag, Some(code("CANNOT")), "The folder name is not valid modified UTF-7 (RFC 3501 section 5.1.3)");
        }
        name
    }

    /// Looks up a folder of the logged-in mailbox.
    pub(super) async fn find_folder(&mut self, name: &str) -> Result<Option<Folder>, Error> {
        let (mailbox_id, name) = (self.mailbox_id(), name.to_string());
        self.app.store.read(move |conn| imap_ops::folder(conn, mailbox_id, &name)).await.map_err(Error::from)
    }

    /// The `\Recent` mark the view's undecided messages are judged by: for a read-write view,
    /// the folder's mark before this session claimed every message it knows of (a write, unless
    /// `mark`, the mark as last read, shows nothing to claim); for a read-only one, `mark`.
    pub(super) async fn claim_recent(&mut self, selected: &Selected, mark: i64) -> Result<i64, Error> {
        let (folder_id, up_to) = (selected.folder.id, i64::from(selected.highest_uid()));
        if selected.read_only || up_to <= mark {
            return Ok(mark);
        }
        self.app.store.write(move |tx| imap_ops::claim_recent(tx, folder_id, up_to)).await.map_err(Error::from)
    }

    /// SELECT (`read_only` false) and EXAMINE.
    pub(super) async fn select(
        &mut self,
        tag: &Tag<'static>,
        mailbox: &Mailbox<'_>,
        read_only: bool,
    ) -> Result<(), End> {
        self.selected = None;
        let Some(name) = self.folder_name(tag, mailbox) else { return Ok(()) };
        let folder = match self.find_folder(&name).await {
            Ok(Some(folder)) => folder,
            Ok(None) => {
                self.no(tag, Some(code("NONEXISTENT")), "No such folder");
                return Ok(());
            }
            Err(e) => return self.internal_error(tag, &e),
        };
        let folder_id = folder.id;
        let read = self
            .app
            .store
            .read(move |conn| {
                Ok::<_, rusqlite::Error>((
                    imap_ops::message_flags(conn, folder_id)?,
                    imap_ops::recent_mark(conn, folder_id)?,
                ))
            })
            .await;
        let (listed, mark) = match read {
            Ok(read) => read,
            Err(e) => return self.internal_error(tag, &e.into()),
        };
        let mut selected = Selected::new(folder, read_only, listed);
        match self.claim_recent(&selected, mark).await {
            Ok(before) => selected.settle_recent(before),
            Err(e) => return self.internal_error(tag, &e),
        }
        self.send_selection(&selected);
        self.selected = Some(selected);
        let (access, done) =
            if read_only { (Code::ReadOnly, "EXAMINE completed") } else { (Code::ReadWrite, "SELECT completed") };
        self.ok(tag, Some(access), done);
        Ok(())
    }

    /// FLAGS and PERMANENTFLAGS: the system flags and the keywords the view knows (RFC 3501
    /// §7.2.6); a read-only view permits none.
    fn send_flag_lists(&mut self, selected: &Selected) {
        let mut flags = system_flags();
        flags.extend(parse_flags(&selected.keywords.join(" ")));
        let mut permanent: Vec<FlagPerm<'static>> = flags.iter().cloned().map(FlagPerm::from).collect();
        permanent.push(FlagPerm::Asterisk);
        let permanent = if selected.read_only { Vec::new() } else { permanent };
        self.conn.send(&Response::Data(Data::Flags(flags)));
        self.untagged(StatusKind::Ok, Some(Code::PermanentFlags(permanent)), "Flags permitted");
    }

    /// Sends FLAGS and PERMANENTFLAGS again when the view's messages carry keywords the client
    /// was not told of; before any FETCH that shows them (RFC 3501 §7.2.6).
    pub(super) fn announce_new_keywords(&mut self) {
        let Some(selected) = self.selected.take_if(|selected| selected.learn_keywords()) else { return };
        self.send_flag_lists(&selected);
        self.selected = Some(selected);
    }

    /// The untagged responses SELECT and EXAMINE send (RFC 3501 §6.3.1).
    fn send_selection(&mut self, selected: &Selected) {
        self.send_flag_lists(selected);
        self.conn.send(&Response::Data(Data::Exists(selected.exists())));
        self.conn.send(&Response::Data(Data::Recent(selected.recent_count())));
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
            ListMailbox::Token(token) => String::from_utf8(token.as_ref().to_vec()).ok(),
            ListMailbox::String(string) => String::from_utf8(string.clone().into_inner().into_owned()).ok(),
        };
        let done = if lsub { "LSUB completed" } else { "LIST completed" };
        let Some(pattern) = pattern.as_deref().and_then(mutf7::decode) else {
            // No folder name is invalid modified UTF-7, so such a pattern matches nothing.
            self.ok(tag, None, done);
            return Ok(());
        };
        let Some(reference) = self.folder_name(tag, reference) else { return Ok(()) };
        if pattern.is_empty() && !lsub {
            // The delimiter query (RFC 3501 §6.3.8).
            self.conn.write_raw(b"* LIST (\\Noselect) \"/\" \"\"\r\n");
            self.ok(tag, None, done);
            return Ok(());
        }
        let mailbox_id = self.mailbox_id();
        let read = self
            .app
            .store
            .read(move |conn| {
                let subscribed = if lsub { imap_ops::subscriptions(conn, mailbox_id)? } else { Vec::new() };
                Ok::<_, rusqlite::Error>((imap_ops::folders(conn, mailbox_id)?, subscribed))
            })
            .await;
        let (all, subscribed) = match read {
            Ok(read) => read,
            Err(e) => return self.internal_error(tag, &e.into()),
        };
        let full = format!("{reference}{pattern}");
        let matches = |name: &str| {
            pattern_matches(&full, name) || (name == "INBOX" && pattern_matches(&full.to_ascii_uppercase(), "INBOX"))
        };
        let delimiter = QuotedChar::try_from(DELIMITER).ok();
        let mut listed = Vec::new();
        if lsub {
            for (name, parent_only) in lsub_names(&subscribed, matches) {
                let items = match all.iter().find(|folder| folder.name == name) {
                    Some(folder) if !parent_only => attributes(folder, &all),
                    _ => vec![FlagNameAttribute::Noselect],
                };
                listed.extend(response_mailbox(&name).map(|mailbox| Data::Lsub { items, delimiter, mailbox }));
            }
        } else {
            for folder in all.iter().filter(|folder| matches(&folder.name)) {
                let items = attributes(folder, &all);
                listed.extend(response_mailbox(&folder.name).map(|mailbox| Data::List { items, delimiter, mailbox }));
            }
        }
        for data in listed {
            self.conn.send(&Response::Data(data));
        }
        self.ok(tag, None, done);
        Ok(())
    }

    /// SUBSCRIBE (`subscribed`) and UNSUBSCRIBE. Any valid name may be subscribed, existing or
    /// not (RFC 3501 §6.3.6 lets a server accept names of folders that do not exist).
    pub(super) async fn subscribe(
        &mut self,
        tag: &Tag<'static>,
        mailbox: &Mailbox<'_>,
        subscribed: bool,
    ) -> Result<(), End> {
        let Some(name) = self.folder_name(tag, mailbox) else { return Ok(()) };
        let name = name.trim_end_matches(DELIMITER).to_string();
        let mailbox_id = self.mailbox_id();
        let stored = self.app.store.write(move |tx| imap_ops::set_subscribed(tx, mailbox_id, &name, subscribed)).await;
        match stored {
            Ok(()) => {
                self.ok(tag, None, if subscribed { "SUBSCRIBE completed" } else { "UNSUBSCRIBE completed" });
                Ok(())
            }
            Err(e) => self.internal_error(tag, &e.into()),
        }
    }

    /// STATUS.
    pub(super) async fn status(
        &mut self,
        tag: &Tag<'static>,
        mailbox: &Mailbox<'_>,
        names: &[StatusDataItemName],
    ) -> Result<(), End> {
        let Some(name) = self.folder_name(tag, mailbox) else { return Ok(()) };
        let folder = match self.find_folder(&name).await {
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
        let Some(name) = self.folder_name(tag, mailbox) else { return Ok(()) };
        let name = name.trim_end_matches(DELIMITER).to_string();
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
        let Some(name) = self.folder_name(tag, mailbox) else { return Ok(()) };
        if self.selected.as_ref().is_some_and(|s| s.folder.name == imap_ops::canonical_name(&name)) {
            self.selected = None;
        }
        let mailbox_id = self.mailbox_id();
        let deleted = self.app.store.write(move |tx| imap_ops::delete_folder(tx, mailbox_id, &name)).await;
        self.folder_change_done(tag, deleted, "DELETE completed")
    }

    /// RENAME.
    pub(super) async fn rename(&mut self, tag: &Tag<'static>, from: &Mailbox<'_>, to: &Mailbox<'_>) -> Result<(), End> {
        let Some(from) = self.folder_name(tag, from) else { return Ok(()) };
        let Some(to) = self.folder_name(tag, to) else { return Ok(()) };
        let to = to.trim_end_matches(DELIMITER).to_string();
        if to.is_empty() || to.split(DELIMITER).any(str::is_empty) {
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
            StatusDataItemName::Recent => Some(StatusDataItem::Recent(count(counts.recent))),
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
    fn lsub_answers_unsubscribed_parents_as_noselect() {
        let subscribed: Vec<String> = ["INBOX", "Projects/2026/Q1", "Projects/2027", "Sent"].map(String::from).into();
        let listed = |pattern: &str| lsub_names(&subscribed, |name| pattern_matches(pattern, name));
        assert_eq!(listed("%"), [("INBOX".into(), false), ("Projects".into(), true), ("Sent".into(), false)]);
        assert_eq!(listed("Projects/%"), [("Projects/2026".into(), true), ("Projects/2027".into(), false)]);
        assert_eq!(listed("*").len(), 4);
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
