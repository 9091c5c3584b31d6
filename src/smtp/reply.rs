//! SMTP replies: a three-digit code, an optional enhanced status code (RFC 3463) and text.
//! Policies and the engine build replies only here, at the edge; the text never carries CR or LF
//! of its own (a `\n` in the text makes a multi-line reply, each line with the same codes).

use std::fmt;

/// One reply to the client.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reply {
    pub code: u16,
    /// The enhanced status code `class.subject.detail`; `None` for 220, 221, 334 and 354.
    pub status: Option<[u8; 3]>,
    pub text: String,
}

impl Reply {
    /// A reply with an enhanced status code.
    pub fn new(code: u16, status: [u8; 3], text: impl Into<String>) -> Reply {
        Reply { code, status: Some(status), text: text.into() }
    }

    /// A reply without an enhanced status code (greeting, 334 challenges, 354).
    pub fn plain(code: u16, text: impl Into<String>) -> Reply {
        Reply { code, status: None, text: text.into() }
    }

    /// 2xx or 3xx.
    pub fn is_positive(&self) -> bool {
        self.code < 400
    }

    /// 4xx: the client may try again later.
    pub fn is_transient(&self) -> bool {
        (400..500).contains(&self.code)
    }

    /// Appends the reply, CRLF-terminated, to `out`.
    pub fn write_to(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(self.to_string().as_bytes());
    }

    pub fn ok(text: impl Into<String>) -> Reply {
        Reply::new(250, [2, 0, 0], text)
    }

    /// 503 5.5.1: a command out of sequence.
    pub fn bad_sequence(text: impl Into<String>) -> Reply {
        Reply::new(503, [5, 5, 1], text)
    }

    /// 451 4.3.0: something failed on our side; the client should try again.
    pub fn temporary_failure() -> Reply {
        Reply::new(451, [4, 3, 0], "Temporary failure on the server; try again later")
    }
}

impl fmt::Display for Reply {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let lines: Vec<&str> = self.text.split('\n').map(|line| line.trim_end_matches('\r')).collect();
        for (index, line) in lines.iter().enumerate() {
            let separator = if index + 1 == lines.len() { ' ' } else { '-' };
            let line: String = line.chars().filter(|c| !c.is_control()).collect();
            match self.status {
                Some([class, subject, detail]) => {
                    write!(f, "{}{separator}{class}.{subject}.{detail} {line}\r\n", self.code)?
                }
                None => write!(f, "{}{separator}{line}\r\n", self.code)?,
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replies_format_with_and_without_enhanced_codes() {
        assert_eq!(
            Reply::new(535, [5, 7, 8], "Authentication failed").to_string(),
            "535 5.7.8 Authentication failed\r\n"
        );
        assert_eq!(Reply::plain(354, "Go ahead").to_string(), "354 Go ahead\r\n");
        assert_eq!(Reply::plain(334, "").to_string(), "334 \r\n");
    }

    #[test]
    fn multi_line_text_becomes_a_multi_line_reply_and_controls_are_dropped() {
        let reply = Reply::new(452, [4, 7, 0], "first\nsecond\r\u{7}");
        assert_eq!(reply.to_string(), "452-4.7.0 first\r\n452 4.7.0 second\r\n");
        assert!(reply.is_transient() && !reply.is_positive());
    }
}
