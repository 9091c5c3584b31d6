//! One IMAP client connection's bytes: the stream (plaintext, upgraded in place by STARTTLS, or
//! TLS from the start), the input split into whole messages — a command line with its literals —
//! by imap-codec's `Fragmentizer`, and buffered output flushed before every read.
//!
//! Literals are never trusted: one announced larger than the limit is refused before the client
//! sends it (`NO [TOOBIG]`, synchronizing) or swallowed without being kept (`LITERAL+`); a command
//! line longer than [`MAX_LINE`] ends the connection; and a command that stops arriving midway (a
//! literal shorter than announced) times out after [`PARTIAL_TIMEOUT`], so a lying client holds
//! nothing for long.

use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use imap_codec::ResponseCodec;
use imap_codec::encode::Encoder;
use imap_codec::fragmentizer::{FragmentInfo, Fragmentizer, LiteralAnnouncement};
use imap_codec::imap_types::core::LiteralMode;
use imap_codec::imap_types::response::Response;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, ReadBuf};
use tokio::net::TcpStream;
use tokio::sync::watch;
use tokio_rustls::server::TlsStream;

/// The longest command line (without its literals) that is accepted.
pub const MAX_LINE: usize = 64 * 1024;
/// How long a command may take to arrive once it has begun (a lying literal ends here).
pub const PARTIAL_TIMEOUT: Duration = Duration::from_secs(20);
const READ_CHUNK: usize = 64 * 1024;
/// Output is sent as soon as this much is buffered (a large FETCH is streamed, not built whole).
pub const FLUSH_AT: usize = 256 * 1024;

/// Why a connection ended.
#[derive(Debug, thiserror::Error)]
pub enum End {
    #[error("the client closed the connection")]
    ClientClosed,
    #[error("the client was idle too long")]
    IdleTimeout,
    #[error("the client stopped sending in the middle of a command")]
    Stalled,
    #[error("a command line was too long")]
    LineTooLong,
    #[error("the appliance is shutting down")]
    Shutdown,
    #[error("the session was ended by the server")]
    Closed,
    #[error("i/o error: {0}")]
    Io(#[from] std::io::Error),
}

/// The transport: plaintext TCP or TLS.
pub enum Stream {
    Plain(TcpStream),
    Tls(Box<TlsStream<TcpStream>>),
    /// Only while STARTTLS swaps the stream.
    Taken,
}

impl AsyncRead for Stream {
    fn poll_read(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<std::io::Result<()>> {
        match self.get_mut() {
            Stream::Plain(tcp) => Pin::new(tcp).poll_read(cx, buf),
            Stream::Tls(tls) => Pin::new(tls.as_mut()).poll_read(cx, buf),
            Stream::Taken => Poll::Ready(Err(std::io::ErrorKind::NotConnected.into())),
        }
    }
}

impl AsyncWrite for Stream {
    fn poll_write(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<std::io::Result<usize>> {
        match self.get_mut() {
            Stream::Plain(tcp) => Pin::new(tcp).poll_write(cx, buf),
            Stream::Tls(tls) => Pin::new(tls.as_mut()).poll_write(cx, buf),
            Stream::Taken => Poll::Ready(Err(std::io::ErrorKind::NotConnected.into())),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        match self.get_mut() {
            Stream::Plain(tcp) => Pin::new(tcp).poll_flush(cx),
            Stream::Tls(tls) => Pin::new(tls.as_mut()).poll_flush(cx),
            Stream::Taken => Poll::Ready(Ok(())),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        match self.get_mut() {
            Stream::Plain(tcp) => Pin::new(tcp).poll_shutdown(cx),
            Stream::Tls(tls) => Pin::new(tls.as_mut()).poll_shutdown(cx),
            Stream::Taken => Poll::Ready(Ok(())),
        }
    }
}

/// What the input produced.
pub enum Incoming {
    /// A complete message: a command (or an AUTHENTICATE line, or IDLE's DONE) with its literals.
    Message(Vec<u8>),
    /// A message whose (non-synchronizing) literal was too large and was discarded; `tag` is its
    /// tag if one was readable. (A too-large synchronizing literal is refused before the client
    /// sends it, and the connection simply goes on with the next command.)
    TooBig { tag: Option<String> },
}

/// A connection: stream, input fragmentizer, output buffer.
pub struct Connection {
    pub stream: Stream,
    fragmentizer: Fragmentizer,
    output: Vec<u8>,
    read_buffer: Box<[u8]>,
    shutdown: watch::Receiver<bool>,
    max_literal: u32,
    /// Where the current line started in the current message.
    line_start: usize,
    /// Whether the next fragment is a literal's data.
    in_literal: bool,
    /// Whether the current message was refused (too large); it is discarded when complete.
    refused: bool,
    /// Bytes read since the current message began (bounded even when the fragmentizer drops them).
    message_received: usize,
}

impl Connection {
    /// `max_literal`: the largest literal (APPEND message) accepted.
    pub fn new(stream: Stream, shutdown: watch::Receiver<bool>, max_literal: u32) -> Connection {
        Connection {
            stream,
            // The line limit plus one literal (and a second line) fits.
            fragmentizer: Fragmentizer::new(max_literal.saturating_add(u32::try_from(2 * MAX_LINE).unwrap_or(0))),
            output: Vec::new(),
            read_buffer: vec![0; READ_CHUNK].into_boxed_slice(),
            shutdown,
            max_literal,
            line_start: 0,
            in_literal: false,
            refused: false,
            message_received: 0,
        }
    }

    /// Queues raw response bytes.
    pub fn write_raw(&mut self, bytes: &[u8]) {
        self.output.extend_from_slice(bytes);
    }

    /// Queues an encoded response.
    pub fn send(&mut self, response: &Response<'_>) {
        let encoded = ResponseCodec::default().encode(response).dump();
        self.output.extend_from_slice(&encoded);
    }

    /// Sends the queued output.
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

    /// Sends the output once enough is buffered (call between the parts of a long response).
    pub async fn flush_if_large(&mut self) -> Result<(), End> {
        if self.output.len() >= FLUSH_AT { self.flush().await } else { Ok(()) }
    }

    /// Whether part of a message has arrived (so the short timeout applies).
    fn message_in_progress(&self) -> bool {
        self.in_literal || !self.fragmentizer.message_bytes().is_empty()
    }

    /// The next complete message, reading as needed; between messages the client may stay
    /// silent for `idle`.
    pub async fn next_message(&mut self, idle: Duration) -> Result<Incoming, End> {
        loop {
            match self.fragmentizer.progress() {
                Some(FragmentInfo::Line { start, end, announcement, .. }) => {
                    if end.saturating_sub(start) > MAX_LINE {
                        return Err(End::LineTooLong);
                    }
                    self.line_start = end;
                    match announcement {
                        Some(literal) => self.announce_literal(literal).await?,
                        None => return Ok(self.take_message()),
                    }
                }
                Some(FragmentInfo::Literal { end, .. }) => {
                    self.line_start = end;
                    self.in_literal = false;
                }
                None => {
                    let line_length = self.fragmentizer.message_bytes().len().saturating_sub(self.line_start);
                    if !self.in_literal && line_length > MAX_LINE {
                        return Err(End::LineTooLong);
                    }
                    let timeout = if self.message_in_progress() { PARTIAL_TIMEOUT } else { idle };
                    self.read_more(timeout).await?;
                }
            }
        }
    }

    /// A literal was announced: agree (`+`), or refuse one that is too large.
    async fn announce_literal(&mut self, literal: LiteralAnnouncement) -> Result<(), End> {
        if literal.length <= self.max_literal {
            self.in_literal = true;
            if literal.mode == LiteralMode::Sync {
                self.write_raw(b"+ Ready for literal data\r\n");
                self.flush().await?;
            }
            return Ok(());
        }
        let tag = self.fragmentizer.decode_tag().map(|tag| tag.inner().to_string());
        match (literal.mode, &tag) {
            (LiteralMode::Sync, Some(tag)) => {
                // The client waits for our `+`: it gets the refusal instead and sends no data.
                self.write_raw(format!("{tag} NO [TOOBIG] Literal too large\r\n").as_bytes());
                self.fragmentizer.skip_message();
                self.line_start = 0;
                self.message_received = 0;
            }
            _ => {
                // LITERAL+ (or no readable tag): the data follows regardless; swallow it.
                self.in_literal = true;
                self.refused = true;
                self.fragmentizer.poison_message();
            }
        }
        Ok(())
    }

    fn take_message(&mut self) -> Incoming {
        self.line_start = 0;
        self.in_literal = false;
        self.message_received = 0;
        if std::mem::take(&mut self.refused) {
            let tag = self.fragmentizer.decode_tag().map(|tag| tag.inner().to_string());
            return Incoming::TooBig { tag };
        }
        Incoming::Message(self.fragmentizer.message_bytes().to_vec())
    }

    /// Sends the queued output, then reads more input into the fragmentizer.
    pub async fn read_more(&mut self, timeout: Duration) -> Result<(), End> {
        self.flush().await?;
        let read = {
            let Connection { stream, read_buffer, shutdown, .. } = self;
            if *shutdown.borrow() {
                return Err(End::Shutdown);
            }
            tokio::select! {
                read = tokio::time::timeout(timeout, stream.read(read_buffer)) => read,
                _ = shutdown.wait_for(|stopping| *stopping) => return Err(End::Shutdown),
            }
        };
        let count = match read {
            Err(_) if self.message_in_progress() => return Err(End::Stalled),
            Err(_) => return Err(End::IdleTimeout),
            Ok(Err(e)) => return Err(End::Io(e)),
            Ok(Ok(0)) => return Err(End::ClientClosed),
            Ok(Ok(count)) => count,
        };
        self.message_received = self.message_received.saturating_add(count);
        let ceiling = usize::try_from(self.max_literal).unwrap_or(usize::MAX).saturating_add(4 * MAX_LINE);
        if self.message_received > ceiling {
            return Err(End::LineTooLong);
        }
        self.fragmentizer.enqueue_bytes(&self.read_buffer[..count]);
        Ok(())
    }

    /// Reads input without waiting for a whole message (IDLE watches the socket and the mail
    /// store at once); cancel-safe.
    pub async fn readable(&mut self) -> Result<(), End> {
        self.read_more(Duration::from_secs(24 * 3600)).await
    }

    /// Takes the complete message buffered so far, if any (after [`Connection::readable`]).
    pub fn buffered_message(&mut self) -> Option<Vec<u8>> {
        loop {
            match self.fragmentizer.progress()? {
                FragmentInfo::Line { announcement: None, .. } => {
                    return match self.take_message() {
                        Incoming::Message(bytes) => Some(bytes),
                        Incoming::TooBig { .. } => Some(Vec::new()),
                    };
                }
                FragmentInfo::Line { end, .. } => {
                    // No literal belongs after IDLE; let the decoder reject the message.
                    self.line_start = end;
                    self.in_literal = true;
                    self.fragmentizer.poison_message();
                }
                FragmentInfo::Literal { end, .. } => {
                    self.line_start = end;
                    self.in_literal = false;
                }
            }
        }
    }

    /// Drops buffered input: after STARTTLS nothing sent in plaintext may count as a command.
    pub fn discard_input(&mut self) {
        self.fragmentizer =
            Fragmentizer::new(self.max_literal.saturating_add(u32::try_from(2 * MAX_LINE).unwrap_or(0)));
        self.line_start = 0;
        self.in_literal = false;
        self.refused = false;
        self.message_received = 0;
    }

    /// Best effort: sends the last output and closes the stream, then reads (and drops) what
    /// the client still sends for a moment, so that closing with unread input does not reset
    /// the connection before the client has read our last words.
    pub async fn close(&mut self) {
        let _ = self.flush().await;
        let _ = tokio::time::timeout(Duration::from_secs(5), self.stream.shutdown()).await;
        let drain = async {
            while let Ok(count) = self.stream.read(&mut self.read_buffer).await {
                if count == 0 {
                    break;
                }
            }
        };
        let _ = tokio::time::timeout(Duration::from_secs(2), drain).await;
    }
}
