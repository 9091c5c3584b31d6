//! The selected folder as one session sees it: the list of messages whose position is the
//! sequence number, kept consistent within the session (RFC 3501 §2.3.1.2).
//!
//! The list changes only when the session tells the client: [`Selected::sync`] compares it with
//! the store and yields the untagged responses in a valid order — `EXPUNGE` from the highest
//! sequence number down (so each number is still right when it is sent), flag changes as
//! `FETCH (FLAGS ...)`, then one `EXISTS` for new messages. While EXPUNGE may not be sent
//! (during FETCH, STORE and SEARCH by sequence number) vanished messages stay in the list,
//! marked, and fetching them yields nothing.
//!
//! `\Recent` (RFC 3501 §2.3.2) is decided once per message, when the session first learns of
//! it: the message is recent here when its UID is above the folder's `recent_claimed_uid` mark
//! as it stood before this session claimed it ([`Selected::settle_recent`]). The flag lives only
//! in this view (it is never stored with the message's flags, and clients cannot set it).
//!
//! Keywords (RFC 3501 §2.3.2, flags without a backslash): the view remembers which ones the
//! client was told of in FLAGS and PERMANENTFLAGS — at SELECT, every keyword the folder's
//! messages carry. [`Selected::learn_keywords`] adds those that appeared since (a STORE, an
//! APPEND, another session's change); the session then sends both lists again before any FETCH
//! shows the new keyword (§7.2.6). `NIL` is refused as a keyword ([`refused_keyword`]): it reads
//! as the nil value in IMAP syntax, and Dovecot and Cyrus refuse it too.

use std::collections::HashMap;

use imap_codec::imap_types::IntoStatic;
use imap_codec::imap_types::flag::{Flag, FlagFetch, StoreType};
use imap_codec::imap_types::sequence::{SeqOrUid, Sequence, SequenceSet};

use crate::mailstore::imap_ops::{Folder, MessageFlags};

/// One message in the session's view.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Known {
    pub uid: u32,
    pub flags: String,
    /// Gone from the store, not yet reported with EXPUNGE.
    pub vanished: bool,
    /// `\Recent` in this session.
    pub recent: bool,
}

/// What the client must be told after a sync.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Update {
    Expunge(u32),
    Flags { seq: u32, uid: u32, flags: String, recent: bool },
    Exists(u32),
}

/// The selected folder.
#[derive(Debug, Clone)]
pub struct Selected {
    pub folder: Folder,
    pub read_only: bool,
    pub messages: Vec<Known>,
    /// The folder's `uid_next` when last looked at (IDLE polls it).
    pub uid_next: i64,
    /// The highest UID whose `\Recent` state is decided (see [`Selected::settle_recent`]).
    pub recent_decided: u32,
    /// The keywords the client was told of in FLAGS and PERMANENTFLAGS, in the order learned.
    pub keywords: Vec<String>,
}

impl Selected {
    /// A fresh view of a folder's messages.
    pub fn new(folder: Folder, read_only: bool, listed: Vec<MessageFlags>) -> Selected {
        let messages = listed
            .into_iter()
            .filter_map(|m| {
                Some(Known { uid: u32::try_from(m.uid).ok()?, flags: m.flags, vanished: false, recent: false })
            })
            .collect();
        let mut selected = Selected {
            uid_next: folder.uid_next,
            folder,
            read_only,
            messages,
            recent_decided: 0,
            keywords: Vec::new(),
        };
        selected.learn_keywords();
        selected
    }

    /// Adds the keywords the view's messages carry that [`Selected::keywords`] lacks; returns
    /// whether there were any (FLAGS and PERMANENTFLAGS must then be sent again).
    pub fn learn_keywords(&mut self) -> bool {
        let before = self.keywords.len();
        for known in &self.messages {
            for keyword in keywords(&known.flags) {
                if !self.keywords.iter().any(|have| have.eq_ignore_ascii_case(keyword)) {
                    self.keywords.push(keyword.to_string());
                }
            }
        }
        self.keywords.len() != before
    }

    /// The highest UID in the view (0 when empty).
    pub fn highest_uid(&self) -> u32 {
        self.messages.last().map_or(0, |m| m.uid)
    }

    /// Whether messages arrived whose `\Recent` state is not decided yet.
    pub fn has_undecided_recent(&self) -> bool {
        self.highest_uid() > self.recent_decided
    }

    /// Decides `\Recent` for the messages not decided yet: recent when their UID is above
    /// `claimed_before` (the folder's mark before this session claimed them, or the mark as it
    /// stands for a read-only session, which claims nothing).
    pub fn settle_recent(&mut self, claimed_before: i64) {
        let decided = self.recent_decided;
        for known in self.messages.iter_mut().filter(|known| known.uid > decided) {
            known.recent = i64::from(known.uid) > claimed_before;
        }
        self.recent_decided = self.recent_decided.max(self.highest_uid());
    }

    /// How many messages of the view are `\Recent` (the RECENT response).
    pub fn recent_count(&self) -> u32 {
        u32::try_from(self.messages.iter().filter(|known| known.recent).count()).unwrap_or(u32::MAX)
    }

    /// The number of messages the client knows of.
    pub fn exists(&self) -> u32 {
        u32::try_from(self.messages.len()).unwrap_or(u32::MAX)
    }

    /// Brings the view up to date with `current` (the store's list, by UID).
    pub fn sync(&mut self, current: &[MessageFlags], allow_expunge: bool) -> Vec<Update> {
        let now: HashMap<u32, &str> =
            current.iter().filter_map(|m| Some((u32::try_from(m.uid).ok()?, m.flags.as_str()))).collect();
        let mut updates = Vec::new();
        for known in &mut self.messages {
            if !now.contains_key(&known.uid) {
                known.vanished = true;
            }
        }
        if allow_expunge {
            for index in (0..self.messages.len()).rev() {
                if self.messages[index].vanished {
                    self.messages.remove(index);
                    updates.push(Update::Expunge(seq_of(index)));
                }
            }
        }
        for (index, known) in self.messages.iter_mut().enumerate() {
            if let Some(&flags) = now.get(&known.uid)
                && flags != known.flags
            {
                known.flags = flags.to_string();
                let (seq, uid, flags, recent) = (seq_of(index), known.uid, known.flags.clone(), known.recent);
                updates.push(Update::Flags { seq, uid, flags, recent });
            }
        }
        let highest = self.messages.last().map_or(0, |m| m.uid);
        let before = self.messages.len();
        for message in current {
            if let Ok(uid) = u32::try_from(message.uid)
                && uid > highest
            {
                self.messages.push(Known { uid, flags: message.flags.clone(), vanished: false, recent: false });
            }
        }
        if self.messages.len() != before {
            updates.push(Update::Exists(self.exists()));
        }
        updates
    }

    /// Marks messages found gone from the store (a STORE that changed nothing there) as
    /// vanished: they get no more responses, and their EXPUNGE waits for the next sync.
    pub fn mark_vanished(&mut self, uids: &[i64]) {
        for known in self.messages.iter_mut().filter(|known| uids.contains(&i64::from(known.uid))) {
            known.vanished = true;
        }
    }

    /// Removes messages this session expunged itself; returns the EXPUNGE sequence numbers in
    /// the order they must be sent.
    pub fn remove_uids(&mut self, uids: &[i64]) -> Vec<u32> {
        let mut sent = Vec::new();
        for index in (0..self.messages.len()).rev() {
            if uids.contains(&i64::from(self.messages[index].uid)) {
                self.messages.remove(index);
                sent.push(seq_of(index));
            }
        }
        sent
    }

    /// The positions (0-based) a sequence set or UID set names, in order, without vanished
    /// messages. Numbers beyond the folder name nothing (no error).
    pub fn resolve(&self, set: &SequenceSet, uid: bool) -> Vec<usize> {
        let largest = if uid { self.messages.last().map_or(0, |m| m.uid) } else { self.exists() };
        if largest == 0 {
            return Vec::new();
        }
        let ranges = ranges(set, largest);
        self.messages
            .iter()
            .enumerate()
            .filter(|(index, known)| {
                let number = if uid { known.uid } else { seq_of(*index) };
                !known.vanished && ranges.iter().any(|(low, high)| (*low..=*high).contains(&number))
            })
            .map(|(index, _)| index)
            .collect()
    }

    /// The UIDs at these positions.
    pub fn uids_at(&self, positions: &[usize]) -> Vec<i64> {
        positions.iter().filter_map(|&i| self.messages.get(i)).map(|m| i64::from(m.uid)).collect()
    }
}

/// The 1-based sequence number of a position.
pub fn seq_of(index: usize) -> u32 {
    u32::try_from(index + 1).unwrap_or(u32::MAX)
}

/// Whether `number` is in a set, `*` being `largest` (SEARCH).
pub fn in_set(set: &SequenceSet, number: u32, largest: u32) -> bool {
    largest > 0 && ranges(set, largest).iter().any(|(low, high)| (*low..=*high).contains(&number))
}

/// The inclusive ranges of a set, `*` being `largest`.
fn ranges(set: &SequenceSet, largest: u32) -> Vec<(u32, u32)> {
    let value = |v: &SeqOrUid| match v {
        SeqOrUid::Value(n) => n.get(),
        SeqOrUid::Asterisk => largest,
    };
    set.0
        .as_ref()
        .iter()
        .map(|sequence| match sequence {
            Sequence::Single(v) => (value(v), value(v)),
            Sequence::Range(a, b) => (value(a).min(value(b)), value(a).max(value(b))),
        })
        .collect()
}

/// Parses a stored flag string.
pub fn parse_flags(stored: &str) -> Vec<Flag<'static>> {
    stored.split_whitespace().filter_map(|word| Flag::try_from(word).ok().map(IntoStatic::into_static)).collect()
}

/// The flags a FETCH shows: the stored ones, and `\Recent` when the session has it so.
pub fn fetch_flags(stored: &str, recent: bool) -> Vec<FlagFetch<'static>> {
    let mut flags: Vec<FlagFetch<'static>> = parse_flags(stored).into_iter().map(FlagFetch::from).collect();
    if recent {
        flags.push(FlagFetch::Recent);
    }
    flags
}

/// The stored form of flags: IMAP spelling, each once (case-insensitively), in order, without
/// `\Recent` (which belongs to sessions, not to the message; clients cannot set it).
pub fn flags_string(flags: &[Flag<'_>]) -> String {
    let mut seen: Vec<String> = Vec::new();
    for flag in flags {
        let text = flag.to_string();
        if text.eq_ignore_ascii_case("\\Recent") {
            continue;
        }
        if !seen.iter().any(|have| have.eq_ignore_ascii_case(&text)) {
            seen.push(text);
        }
    }
    seen.join(" ")
}

/// The flags after a STORE of `kind` with `given` on `stored`.
pub fn apply_store(stored: &str, kind: &StoreType, given: &[Flag<'_>]) -> String {
    let current = parse_flags(stored);
    let same = |a: &Flag<'_>, b: &Flag<'_>| a.to_string().eq_ignore_ascii_case(&b.to_string());
    let next: Vec<Flag<'_>> = match kind {
        StoreType::Replace => given.to_vec(),
        StoreType::Add => current.iter().cloned().chain(given.iter().cloned()).collect(),
        StoreType::Remove => current.into_iter().filter(|have| !given.iter().any(|g| same(have, g))).collect(),
    };
    flags_string(&next)
}

/// The keywords (flags without a backslash) of a stored flag string.
pub fn keywords(stored: &str) -> impl Iterator<Item = &str> {
    stored.split_whitespace().filter(|flag| !flag.starts_with('\\'))
}

/// Whether flags a client gave hold a keyword that is refused: `NIL`, in any case.
pub fn refused_keyword(given: &[Flag<'_>]) -> bool {
    given.iter().any(|flag| matches!(flag, Flag::Keyword(atom) if atom.as_ref().eq_ignore_ascii_case("NIL")))
}

/// Whether a stored flag string has a flag (case-insensitively).
pub fn has_flag(stored: &str, flag: &str) -> bool {
    stored.split_whitespace().any(|have| have.eq_ignore_ascii_case(flag))
}

#[cfg(test)]
mod tests {
    use std::num::NonZeroU32;

    use super::*;

    fn folder() -> Folder {
        Folder { id: 1, name: "INBOX".into(), special_use: None, uid_validity: 1, uid_next: 10 }
    }

    fn listed(uids: &[(i64, &str)]) -> Vec<MessageFlags> {
        uids.iter().map(|(uid, flags)| MessageFlags { uid: *uid, flags: (*flags).into() }).collect()
    }

    #[test]
    fn sync_reports_expunges_descending_then_flags_then_exists() {
        let mut view = Selected::new(folder(), false, listed(&[(2, ""), (4, ""), (6, ""), (8, "")]));
        let now = listed(&[(4, "\\Seen"), (8, ""), (9, "")]);
        assert_eq!(
            view.sync(&now, false),
            [Update::Flags { seq: 2, uid: 4, flags: "\\Seen".into(), recent: false }, Update::Exists(5)]
        );
        let one = SequenceSet::try_from("1:*").unwrap();
        assert_eq!(view.resolve(&one, false), [1, 3, 4], "vanished messages are skipped");
        assert_eq!(view.sync(&now, true), [Update::Expunge(3), Update::Expunge(1)]);
        assert_eq!(view.uids_at(&view.resolve(&one, false)), [4, 8, 9]);
        let uids = SequenceSet::try_from("5:*").unwrap();
        assert_eq!(view.uids_at(&view.resolve(&uids, true)), [8, 9]);
        let beyond = SequenceSet::try_from("20:*").unwrap();
        assert_eq!(view.uids_at(&view.resolve(&beyond, true)), [9], "n:* always includes the highest UID");
        assert_eq!(view.remove_uids(&[4, 9]), [3, 1]);
        assert_eq!(NonZeroU32::new(view.exists()).map(NonZeroU32::get), Some(1));
    }

    #[test]
    fn flags_are_stored_once_and_stores_apply() {
        let seen = [Flag::Seen, Flag::try_from("$Label").unwrap(), Flag::Seen];
        assert_eq!(flags_string(&seen), "\\Seen $Label");
        assert_eq!(apply_store("\\Seen", &StoreType::Add, &[Flag::Flagged]), "\\Seen \\Flagged");
        assert_eq!(apply_store("\\Seen \\Flagged", &StoreType::Remove, &[Flag::Seen]), "\\Flagged");
        assert_eq!(apply_store("\\Seen", &StoreType::Replace, &[]), "");
        assert!(has_flag("\\Seen \\Deleted", "\\deleted"));
        let recent = Flag::try_from("\\Recent").unwrap();
        assert_eq!(flags_string(&[recent.clone(), Flag::Seen]), "\\Seen", "\\Recent is never stored");
        assert_eq!(apply_store("", &StoreType::Add, &[recent]), "");
        assert_eq!(fetch_flags("\\Seen", true), [FlagFetch::Flag(Flag::Seen), FlagFetch::Recent]);
    }

    #[test]
    fn keywords_in_use_are_announced_once_and_new_ones_learned() {
        let mut view = Selected::new(folder(), false, listed(&[(1, "\\Seen $Label1"), (2, "$label1 Later")]));
        assert_eq!(view.keywords, ["$Label1", "Later"], "the folder's keywords, each once, no system flags");
        assert!(!view.learn_keywords());
        view.sync(&listed(&[(1, "\\Seen $Label1"), (2, "Later"), (3, "\\Flagged")]), true);
        assert!(!view.learn_keywords(), "flags and new mail without a new keyword");
        view.sync(&listed(&[(1, "\\Seen $Label1 Urgent"), (2, "Later"), (3, "")]), true);
        assert!(view.learn_keywords());
        assert_eq!(view.keywords, ["$Label1", "Later", "Urgent"]);
        let nil = |text: &str| refused_keyword(&[Flag::Seen, Flag::try_from(text).unwrap()]);
        assert!(nil("NIL") && nil("nil") && nil("Nil"));
        assert!(!nil("NILS") && !nil("$Label1"));
    }

    #[test]
    fn recent_is_decided_once_per_message() {
        let mut view = Selected::new(folder(), false, listed(&[(1, ""), (2, ""), (3, "")]));
        view.settle_recent(1);
        assert_eq!(view.messages.iter().map(|m| m.recent).collect::<Vec<_>>(), [false, true, true]);
        assert_eq!(view.recent_count(), 2);
        assert!(!view.has_undecided_recent());
        view.sync(&listed(&[(1, ""), (2, ""), (3, ""), (4, ""), (5, "")]), true);
        assert!(view.has_undecided_recent());
        view.settle_recent(4);
        assert_eq!(view.messages.iter().map(|m| m.recent).collect::<Vec<_>>(), [false, true, true, false, true]);
        view.sync(&listed(&[(1, ""), (5, "")]), true);
        assert_eq!(view.recent_count(), 1);
    }
}
