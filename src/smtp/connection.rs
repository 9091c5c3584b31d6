//! One client connection's bytes: buffered input split into lines by us (so a line's length is
//! enforced exactly and a parser error can never run into the next line), buffered replies
//! flushed whenever the engine needs more input (so pipelined commands are answered in one
//! write, in order, once the input buffer is drained), an idle timeout on every read (and a
//! [`Connection::deadline`] the session may set: a client that must act by then is cut off), a
//! timeout on every write, and the appliance's shutdown signal.

use std::time::Duration;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::sync::watch;

use super::reply::Reply;

/// The longest command line, CRLF included (smtp-proto's own limit).
pub const MAX_LINE: usize = smtp_proto::request::receiver::MAX_LINE_LENGTH;
/// How long a client may stay silent.
pub const IDLE_TIMEOUT: Duration = Duration::from_secs(5 * 60);
const READ_CHUNK: usize = 64 * 1024;

/// Why a connection ended without QUIT.
#[derive(Debug, thiserror::Error)]
pub enum End {
    #[error("the client closed the connection")]
    ClientClosed,
    #[error("the client was idle too long")]
    IdleTimeout,
    #[error("the client did not send a command or sign in in time")]
    Deadline,
    #[error("the appliance is shutting down")]
    Shutdown,
    #[error("the session was ended by the server")]
    Refused,
    #[error("i/o error: {0}")]
    Io(#[from] std::io::Error),
}

/// One line from the client.
pub enum Line {
    /// A complete line, with its line ending.
    Complete(Vec<u8>),
    /// A line longer than [`MAX_LINE`]; it was discarded up to its end.
    TooLong,
}

/// A stream with its input and output buffers.
pub struct Connection<S> {
    pub stream: S,
    /// Bytes received and not yet processed.
    pub input: Vec<u8>,
    output: Vec<u8>,
    read_buffer: Box<[u8]>,
    discarding_line: bool,
    shutdown: watch::Receiver<bool>,
    /// When the client must have done what the session waits for (its first command, AUTH).
    pub deadline: Option<tokio::time::Instant>,
}

impl<S: AsyncRead + AsyncWrite + Unpin> Connection<S> {
    pub fn new(stream: S, shutdown: watch::Receiver<bool>) -> Connection<S> {
        Connection {
            stream,
            input: Vec::new(),
            output: Vec::new(),
            read_buffer: vec![0; READ_CHUNK].into_boxed_slice(),
            discarding_line: false,
            shutdown,
            deadline: None,
        }
    }

    /// Queues a reply; it is sent before the next read.
    pub fn reply(&mut self, reply: &Reply) {
        reply.write_to(&mut self.output);
    }

    /// Sends the queued replies.
    pub async fn flush(&mut self) -> Result<(), End> {
        if self.output.is_empty() {
            return Ok(());
        }
        let output = std::mem::take(&mut self.output);
        crate::listener::write_within(&mut self.stream, &output).await.map_err(|failure| match failure {
            crate::listener::WriteFailure::Io(e) => End::Io(e),
            crate::listener::WriteFailure::TimedOut => End::IdleTimeout,
        })
    }

    /// Sends the queued replies, then waits for more input (appended to `input`).
    pub async fn fill(&mut self) -> Result<(), End> {
        self.flush().await?;
        if *self.shutdown.borrow() {
            return Err(End::Shutdown);
        }
        let Connection { stream, read_buffer, shutdown, input, deadline, .. } = self;
        let idle_until = tokio::time::Instant::now() + IDLE_TIMEOUT;
        let until = deadline.map_or(idle_until, |deadline| deadline.min(idle_until));
        let read = tokio::select! {
            read = tokio::time::timeout_at(until, stream.read(read_buffer)) => read,
            _ = shutdown.wait_for(|stopping| *stopping) => return Err(End::Shutdown),
        };
        match read {
            Err(_) if until < idle_until => Err(End::Deadline),
            Err(_) => Err(End::IdleTimeout),
            Ok(Err(e)) => Err(End::Io(e)),
            Ok(Ok(0)) => Err(End::ClientClosed),
            Ok(Ok(n)) => {
                input.extend_from_slice(&read_buffer[..n]);
                Ok(())
            }
        }
    }

    /// The next line, reading as needed. An over-long line is reported once, when it ends.
    pub async fn next_line(&mut self) -> Result<Line, End> {
        loop {
            if let Some(end) = self.input.iter().position(|&b| b == b'\n') {
                let line: Vec<u8> = self.input.drain(..=end).collect();
                if std::mem::take(&mut self.discarding_line) || line.len() > MAX_LINE {
                    return Ok(Line::TooLong);
                }
                return Ok(Line::Complete(line));
            }
            if self.input.len() > MAX_LINE {
                self.input.clear();
                self.discarding_line = true;
            }
            self.fill().await?;
        }
    }

    /// Drops buffered input: after STARTTLS, nothing sent in plaintext may count as a command.
    pub fn discard_input(&mut self) {
        self.input.clear();
        self.discarding_line = false;
    }

    /// Best effort: sends a last reply and closes the stream.
    pub async fn close_with(&mut self, reply: &Reply) {
        self.reply(reply);
        let _ = self.flush().await;
        let _ = tokio::time::timeout(Duration::from_secs(5), self.stream.shutdown()).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn lines_are_split_and_over_long_lines_reported_once() {
        let (client, server) = tokio::io::duplex(1 << 20);
        let (_tx, shutdown) = watch::channel(false);
        let mut conn = Connection::new(server, shutdown);
        let mut client = client;
        let long = vec![b'x'; MAX_LINE * 3];
        client.write_all(b"NOOP\r\nEHLO a").await.unwrap();
        client.write_all(b"\r\n").await.unwrap();
        client.write_all(&long).await.unwrap();
        client.write_all(b"\r\nQUIT\r\n").await.unwrap();
        let mut seen = Vec::new();
        for _ in 0..4 {
            seen.push(match conn.next_line().await.unwrap() {
                Line::Complete(line) => String::from_utf8(line).unwrap(),
                Line::TooLong => "<too long>".into(),
            });
        }
        assert_eq!(seen, ["NOOP\r\n", "EHLO a\r\n", "<too long>", "QUIT\r\n"]);
    }

    #[tokio::test]
    async fn replies_are_flushed_before_reading_and_eof_ends() {
        let (mut client, server) = tokio::io::duplex(1 << 16);
        let (_tx, shutdown) = watch::channel(false);
        let mut conn = Connection::new(server, shutdown);
        conn.reply(&Reply::ok("one"));
        conn.reply(&Reply::ok("two"));
        client.shutdown().await.unwrap();
        assert!(matches!(conn.fill().await, Err(End::ClientClosed)));
        drop(conn);
        let mut received = String::new();
        client.read_to_string(&mut received).await.unwrap();
        assert_eq!(received, "250 2.0.0 one\r\n250 2.0.0 two\r\n");
    }
}
