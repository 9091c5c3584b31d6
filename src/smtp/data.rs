//! Receiving the message after DATA, safely.
//!
//! smtp-proto's `DataReceiver` ends the message at CRLF "." CRLF only and undoes dot-stuffing,
//! but it passes bare LF and bare CR through as message bytes. Other servers (and the MX hosts
//! we relay to) may end a message at `LF . LF`, `LF . CRLF` or `CR . CR`, so a message carrying
//! those sequences can smuggle a second message past us (SMTP smuggling). The rule here: every
//! LF must follow a CR and every CR must precede an LF. A message breaking it is refused, and
//! as soon as a line holding only "." ends in any way the exchange stops there and the
//! connection is closed, because the client's idea of where the message ended may differ from
//! ours; nothing of such a message is ever passed on.
//!
//! Also enforced: the size limit (the rest is read and discarded, then 552) and RFC 5322's
//! 998-octet line limit (longer lines would be split by relays, breaking the DKIM signature).

use smtp_proto::request::receiver::{DataReceiver, DummyDataReceiver};

/// The longest line RFC 5322 allows, without its CRLF.
pub const MAX_MESSAGE_LINE: usize = 998;

/// The CRLF that ended the DATA command: the message starts after it, so a first line of "."
/// is the end of an empty message.
const START: &[u8] = b"\r\n";

/// How a message ended.
#[derive(Debug, PartialEq, Eq)]
pub enum DataEnd {
    /// The message: dot-stuffing undone, ending in CRLF (or empty).
    Message(Vec<u8>),
    /// Larger than the limit; its bytes were discarded.
    TooBig,
    /// A line longer than [`MAX_MESSAGE_LINE`].
    LineTooLong,
    /// A bare LF or CR: refused, and the connection must close.
    BareLineEnding,
}

/// Collects one message from the bytes that follow a DATA command.
pub struct DataCollector {
    mode: Mode,
    body: Vec<u8>,
    max_size: usize,
    too_big: bool,
    guard: LineEndingGuard,
}

enum Mode {
    Keep(DataReceiver),
    Discard(DummyDataReceiver),
}

impl DataCollector {
    pub fn new(max_size: usize) -> DataCollector {
        let mut receiver = DataReceiver::new();
        let mut body = Vec::new();
        receiver.ingest(&mut START.iter(), &mut body);
        DataCollector { mode: Mode::Keep(receiver), body, max_size, too_big: false, guard: LineEndingGuard::new() }
    }

    /// Takes from `input` what belongs to the message. Returns how many bytes were consumed
    /// (the rest are the client's next commands) and, once the message ended, how.
    pub fn ingest(&mut self, input: &[u8]) -> (usize, Option<DataEnd>) {
        let mut bytes = input.iter();
        let done = match &mut self.mode {
            Mode::Keep(receiver) => receiver.ingest(&mut bytes, &mut self.body),
            Mode::Discard(receiver) => receiver.ingest(&mut bytes),
        };
        let consumed = input.len() - bytes.as_slice().len();
        self.guard.scan(&input[..consumed]);
        self.discard_when_too_big();
        if self.guard.bare_line_ending && (done || self.guard.saw_dot_line) {
            return (consumed, Some(DataEnd::BareLineEnding));
        }
        if !done {
            return (consumed, None);
        }
        let end = if self.too_big {
            DataEnd::TooBig
        } else if self.guard.long_line {
            DataEnd::LineTooLong
        } else {
            DataEnd::Message(self.body.split_off(START.len()))
        };
        (consumed, Some(end))
    }

    fn discard_when_too_big(&mut self) {
        if let Mode::Keep(receiver) = &self.mode
            && self.body.len() > self.max_size + START.len()
        {
            self.mode = Mode::Discard(DummyDataReceiver::new_data(receiver));
            self.body = Vec::new();
            self.too_big = true;
        }
    }
}

/// Watches the raw bytes (before dot-unstuffing) for bare CR or LF, over-long lines and lines
/// holding only "." however they end.
struct LineEndingGuard {
    before_previous: u8,
    previous: u8,
    line_length: usize,
    bare_line_ending: bool,
    long_line: bool,
    saw_dot_line: bool,
}

impl LineEndingGuard {
    fn new() -> LineEndingGuard {
        LineEndingGuard {
            before_previous: START[0],
            previous: START[1],
            line_length: 0,
            bare_line_ending: false,
            long_line: false,
            saw_dot_line: false,
        }
    }

    fn scan(&mut self, bytes: &[u8]) {
        for &byte in bytes {
            let is_break = |b: u8| b == b'\r' || b == b'\n';
            if (self.previous == b'\r' && byte != b'\n') || (byte == b'\n' && self.previous != b'\r') {
                self.bare_line_ending = true;
            }
            if is_break(byte) && self.previous == b'.' && is_break(self.before_previous) {
                self.saw_dot_line = true;
            }
            if is_break(byte) {
                self.line_length = 0;
            } else {
                self.line_length += 1;
                self.long_line |= self.line_length > MAX_MESSAGE_LINE;
            }
            self.before_previous = self.previous;
            self.previous = byte;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn collect(chunks: &[&[u8]], max: usize) -> (DataEnd, Vec<u8>) {
        let mut collector = DataCollector::new(max);
        for (index, chunk) in chunks.iter().enumerate() {
            let (consumed, end) = collector.ingest(chunk);
            if let Some(end) = end {
                let mut rest = chunk[consumed..].to_vec();
                for later in &chunks[index + 1..] {
                    rest.extend_from_slice(later);
                }
                return (end, rest);
            }
            assert_eq!(consumed, chunk.len(), "everything is consumed until the end");
        }
        panic!("the message did not end");
    }

    #[test]
    fn a_message_ends_at_crlf_dot_crlf_and_dot_stuffing_is_undone() {
        let (end, rest) = collect(&[b"Subject: hi\r\n\r\n..leading dot\r\nbody\r\n.\r\nQUIT\r\n"], 1000);
        assert_eq!(end, DataEnd::Message(b"Subject: hi\r\n\r\n.leading dot\r\nbody\r\n".to_vec()));
        assert_eq!(rest, b"QUIT\r\n", "pipelined commands after the message are kept");
    }

    #[test]
    fn the_end_may_be_split_across_reads_and_an_empty_message_ends_at_once() {
        let (end, _) = collect(&[b"Subject: hi\r\n\r\nbody\r", b"\n", b".", b"\r", b"\n"], 1000);
        assert_eq!(end, DataEnd::Message(b"Subject: hi\r\n\r\nbody\r\n".to_vec()));
        let (empty, rest) = collect(&[b".\r\nRSET\r\n"], 1000);
        assert_eq!(empty, DataEnd::Message(Vec::new()));
        assert_eq!(rest, b"RSET\r\n");
    }

    #[test]
    fn smuggling_sequences_are_refused_never_passed_on() {
        for smuggled in [
            &b"Subject: a\r\n\r\nx\n.\r\nMAIL FROM:<evil@x.test>\r\n"[..],
            b"Subject: a\r\n\r\nx\r\n.\nMAIL FROM:<evil@x.test>\r\n",
            b"Subject: a\r\n\r\nx\r.\rMAIL FROM:<evil@x.test>\r\n",
            b"Subject: a\r\n\r\nx\n.\nMAIL FROM:<evil@x.test>\r\n",
            b"Subject: a\r\n\r\nbare\nlf only\r\n.\r\n",
            b"Subject: a\r\n\r\nbare\rcr only\r\n.\r\n",
        ] {
            let (end, _) = collect(&[smuggled], 1000);
            assert_eq!(end, DataEnd::BareLineEnding, "{:?}", String::from_utf8_lossy(smuggled));
        }
    }

    #[test]
    fn oversize_messages_are_discarded_up_to_their_end() {
        let big = [b"0123456789\r\n".repeat(20).as_slice(), b".\r\nNOOP\r\n"].concat();
        let (end, rest) = collect(&[&big[..100], &big[100..]], 50);
        assert_eq!(end, DataEnd::TooBig);
        assert_eq!(rest, b"NOOP\r\n");
    }

    #[test]
    fn lines_longer_than_998_octets_are_refused() {
        let long = [b"Subject: a\r\n\r\n".as_slice(), &[b'x'; 999], b"\r\n.\r\n"].concat();
        assert_eq!(collect(&[&long], 10_000).0, DataEnd::LineTooLong);
        let fits = [b"Subject: a\r\n\r\n".as_slice(), &[b'x'; 998], b"\r\n.\r\n"].concat();
        assert!(matches!(collect(&[&fits], 10_000).0, DataEnd::Message(_)));
    }
}
