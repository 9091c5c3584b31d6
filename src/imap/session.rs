//! One IMAP session: the state machine of RFC 3501 §3 (not authenticated → authenticated →
//! selected → logout) over a [`Connection`], dispatching each decoded command to its handler.
//!
//! Commands arrive whole (with their literals) and are decoded by imap-codec's `CommandCodec`;
//! a command that does not decode gets `BAD` (tagged when its tag is readable), a command not
//! valid in the current state gets `BAD`, and after [`MAX_ERRORS`] of either the session ends
//! with `BYE`. Every change a command makes is one store transaction, so nothing is half stored.
//! Before each tagged completion in the selected state, [`Session::refresh`] tells the client of
//! changes made elsewhere (new mail, flags, expunges where RFC 3501 §7.4.1 allows them); new
//! mail is claimed for `\Recent` there and each EXISTS is followed by RECENT.

use std::net::{IpAddr, SocketAddr};
use std::num::NonZeroU32;
use std::sync::Arc;
use std::time::Duration;

use imap_codec::decode::Decoder;
use imap_codec::imap_types::command::{Command, CommandBody};
use imap_codec::imap_types::core::{IString, NString, QuotedChar, Tag, Text, Vec1};
use imap_codec::imap_types::extensions::namespace::Namespace;
use imap_codec::imap_types::fetch::MessageDataItem;
use imap_codec::imap_types::response::{
    Capability, Code, CodeOther, Data, Response, Status, StatusBody, StatusKind, Tagged,
};
use imap_codec::{CommandCodec, IdleDoneCodec};
use tokio::net::TcpStream;
use tokio::sync::broadcast;
use tokio_rustls::TlsAcceptor;

use super::connection::{Connection, End, Incoming, Stream};
use super::selected::{Selected, Update, fetch_flags};
use super::{Listening, Security};
use crate::app::App;
use crate::error::Error;
use crate::listener::{Limiter, Slot};
use crate::mailstore::imap_ops;

/// Protocol errors tolerated in one session.
pub const MAX_ERRORS: u32 = 10;
/// Failed logins tolerated in one session (the throttle counts across sessions).
pub const MAX_AUTH_FAILURES: u32 = 3;
/// How long a new connection may take to send its first command.
pub const FIRST_COMMAND_TIMEOUT: Duration = Duration::from_secs(30);
/// How long after connecting a client must have logged in (it is cut off then).
pub const LOGIN_DEADLINE: Duration = Duration::from_secs(60);
/// How long a logged-in client may stay silent, IDLE included (RFC 3501 §5.4: at least 30 min).
const AUTHENTICATED_IDLE: Duration = Duration::from_secs(31 * 60);
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(30);

/// The logged-in mailbox.
#[derive(Debug, Clone)]
pub struct User {
    pub mailbox_id: i64,
    pub workspace_id: i64,
    pub address: String,
}

/// One session in progress.
pub struct Session {
    pub(super) app: App,
    pub(super) conn: Connection,
    tls_acceptor: TlsAcceptor,
    pub(super) peer: SocketAddr,
    pub(super) tls: bool,
    pub(super) user: Option<User>,
    pub(super) selected: Option<Selected>,
    errors: u32,
    pub(super) auth_failures: u32,
    changes: broadcast::Receiver<i64>,
    pub(super) max_message: u32,
    /// The client address's slot, held until login.
    pub(super) address_slot: Option<Slot<IpAddr>>,
    /// The mailbox and address's slot, held once logged in.
    pub(super) mailbox_slot: Option<Slot<(i64, IpAddr)>>,
    pub(super) signed_in: Arc<Limiter<(i64, IpAddr)>>,
    connected: tokio::time::Instant,
    /// Commands received so far.
    commands: u64,
    /// How often IDLE re-checks the folder without a change signal (`None`: never).
    idle_recheck: Option<Duration>,
}

/// Whether the session goes on after a command.
pub(super) enum Flow {
    Continue,
    Logout,
}

/// What a command needs before it may run.
enum Needs {
    Nothing,
    Login,
    Selection,
}

/// Runs one connection to its end.
pub async fn serve(app: App, listening: Listening, tcp: TcpStream, peer: SocketAddr, slot: Slot<IpAddr>) {
    let _ = tcp.set_nodelay(true);
    let connected = tokio::time::Instant::now();
    let Listening { tls, security, signed_in, idle_recheck } = listening;
    let (stream, is_tls) = match security {
        Security::Implicit => match handshake(&tls, tcp).await {
            Some(stream) => (Stream::Tls(Box::new(stream)), true),
            None => return,
        },
        Security::StartTls => (Stream::Plain(tcp), false),
    };
    let max_message = u32::try_from(app.config.smtp.max_message_size).unwrap_or(u32::MAX);
    let conn = Connection::new(stream, app.shutdown.clone(), max_message);
    let changes = app.mail_changes.subscribe();
    let mut session = Session {
        app,
        conn,
        tls_acceptor: tls,
        peer,
        tls: is_tls,
        user: None,
        selected: None,
        errors: 0,
        auth_failures: 0,
        changes,
        max_message,
        address_slot: Some(slot),
        mailbox_slot: None,
        signed_in,
        connected,
        commands: 0,
        idle_recheck,
    };
    if let Err(end) = session.run().await {
        let farewell = match &end {
            End::IdleTimeout => Some("Autologout; idle for too long"),
            End::Stalled => Some("Timed out waiting for the rest of the command"),
            End::LineTooLong => Some("Command line too long"),
            End::Shutdown => Some("Server shutting down"),
            End::Closed | End::ClientClosed | End::Io(_) => None,
        };
        if let Some(text) = farewell {
            session.untagged_bye(text);
        }
        tracing::debug!(%peer, reason = %end, "imap session ended");
    }
    session.conn.close().await;
}

async fn handshake(tls: &TlsAcceptor, tcp: TcpStream) -> Option<tokio_rustls::server::TlsStream<TcpStream>> {
    match tokio::time::timeout(HANDSHAKE_TIMEOUT, tls.accept(tcp)).await {
        Ok(Ok(stream)) => Some(stream),
        Ok(Err(e)) => {
            tracing::debug!(error = %e, "imap TLS handshake failed");
            None
        }
        Err(_) => None,
    }
}

/// The next tick of IDLE's re-check, or never when it is off.
async fn recheck(poll: Option<&mut tokio::time::Interval>) {
    match poll {
        Some(poll) => {
            poll.tick().await;
        }
        None => std::future::pending().await,
    }
}

/// A response code this crate's types do not name (RFC 5530 codes and SPECIAL-USE).
pub fn code(name: &'static str) -> Code<'static> {
    Code::Other(CodeOther::unvalidated(name.as_bytes()))
}

fn text(text: &str) -> Text<'static> {
    Text::try_from(text.to_string()).unwrap_or_else(|_| Text::unvalidated("Completed"))
}

impl Session {
    /// How long the next command may take to come: long once logged in; before that, until the
    /// first-command or login deadline.
    fn idle_limit(&mut self) -> Duration {
        self.commands += 1;
        if self.user.is_some() {
            return AUTHENTICATED_IDLE;
        }
        let limit = if self.commands == 1 { FIRST_COMMAND_TIMEOUT } else { LOGIN_DEADLINE };
        (self.connected + limit).saturating_duration_since(tokio::time::Instant::now())
    }

    async fn run(&mut self) -> Result<(), End> {
        let greeting = format!("* OK [CAPABILITY {}] InboxGrove IMAP ready\r\n", self.capability_text());
        self.conn.write_raw(greeting.as_bytes());
        loop {
            let idle = self.idle_limit();
            let bytes = match self.conn.next_message(idle).await? {
                Incoming::Message(bytes) => bytes,
                Incoming::TooBig { tag } => {
                    match tag.and_then(|t| Tag::try_from(t).ok()) {
                        Some(tag) => self.no(&tag, Some(Code::TooBig), "Literal too large"),
                        None => self.untagged(StatusKind::Bad, None, "Literal too large"),
                    }
                    self.count_error()?;
                    continue;
                }
            };
            match CommandCodec::default().decode_static(&bytes) {
                Ok(([], command)) => {
                    if let Flow::Logout = self.command(command).await? {
                        return Ok(());
                    }
                }
                _ => {
                    self.syntax_error(&bytes);
                    self.count_error()?;
                }
            }
        }
    }

    /// `BAD` for input that is not a command, tagged when the tag is readable.
    fn syntax_error(&mut self, bytes: &[u8]) {
        let tag = bytes
            .split(|&b| b == b' ' || b == b'\r' || b == b'\n')
            .next()
            .and_then(|word| Tag::try_from(word.to_vec()).ok())
            .filter(|tag| tag.inner().len() <= 64 && tag.inner() != "*" && tag.inner() != "+");
        match tag {
            Some(tag) => self.bad(&tag, "Unknown command or syntax error"),
            None => self.untagged(StatusKind::Bad, None, "Unknown command or syntax error"),
        }
    }

    /// Counts a protocol error; too many end the session.
    fn count_error(&mut self) -> Result<(), End> {
        self.errors += 1;
        if self.errors >= MAX_ERRORS {
            self.untagged_bye("Too many errors");
            return Err(End::Closed);
        }
        Ok(())
    }

    fn needs(body: &CommandBody<'_>) -> Needs {
        match body {
            CommandBody::Capability
            | CommandBody::Noop
            | CommandBody::Logout
            | CommandBody::StartTLS
            | CommandBody::Login { .. }
            | CommandBody::Authenticate { .. }
            | CommandBody::Id { .. } => Needs::Nothing,
            CommandBody::Check
            | CommandBody::Close
            | CommandBody::Unselect
            | CommandBody::Expunge
            | CommandBody::ExpungeUid { .. }
            | CommandBody::Search { .. }
            | CommandBody::Fetch { .. }
            | CommandBody::Store { .. }
            | CommandBody::Copy { .. }
            | CommandBody::Move { .. } => Needs::Selection,
            _ => Needs::Login,
        }
    }

    async fn command(&mut self, command: Command<'static>) -> Result<Flow, End> {
        let Command { tag, body } = command;
        match Self::needs(&body) {
            Needs::Login | Needs::Selection if self.user.is_none() => {
                self.bad(&tag, "Log in first");
                self.count_error()?;
                return Ok(Flow::Continue);
            }
            Needs::Selection if self.selected.is_none() => {
                self.bad(&tag, "Select a folder first");
                self.count_error()?;
                return Ok(Flow::Continue);
            }
            _ => {}
        }
        self.dispatch(&tag, body).await
    }

    async fn dispatch(&mut self, tag: &Tag<'static>, body: CommandBody<'static>) -> Result<Flow, End> {
        match body {
            CommandBody::Capability => {
                let line = format!("* CAPABILITY {}\r\n", self.capability_text());
                self.conn.write_raw(line.as_bytes());
                self.ok(tag, None, "CAPABILITY completed");
            }
            CommandBody::Noop | CommandBody::Check => {
                self.refresh(true).await?;
                self.ok(tag, None, "Completed");
            }
            CommandBody::Logout => {
                self.untagged_bye("Logging out");
                self.ok(tag, None, "LOGOUT completed");
                return Ok(Flow::Logout);
            }
            CommandBody::StartTLS => self.starttls(tag).await?,
            CommandBody::Login { username, password } => {
                let password = password.declassify().as_ref().to_vec();
                self.login(tag, username.as_ref(), &password).await?;
            }
            CommandBody::Authenticate { mechanism, initial_response } => {
                let initial = initial_response.map(|r| r.declassify().to_vec());
                self.authenticate(tag, &mechanism, initial).await?;
            }
            CommandBody::Id { .. } => self.id(tag),
            CommandBody::Enable { .. } => {
                self.conn.send(&Response::Data(Data::Enabled { capabilities: Vec::new() }));
                self.ok(tag, None, "ENABLE completed");
            }
            CommandBody::Namespace => self.namespace(tag),
            CommandBody::Idle => self.idle(tag).await?,
            other => self.folder_command(tag, other).await?,
        }
        Ok(Flow::Continue)
    }

    /// Commands on folders and messages (authenticated and selected states).
    async fn folder_command(&mut self, tag: &Tag<'static>, body: CommandBody<'static>) -> Result<(), End> {
        match body {
            CommandBody::Select { mailbox, .. } => self.select(tag, &mailbox, false).await,
            CommandBody::Examine { mailbox, .. } => self.select(tag, &mailbox, true).await,
            CommandBody::List { reference, mailbox_wildcard } => {
                self.list(tag, &reference, &mailbox_wildcard, false).await
            }
            CommandBody::Lsub { reference, mailbox_wildcard } => {
                self.list(tag, &reference, &mailbox_wildcard, true).await
            }
            CommandBody::Status { mailbox, item_names } => self.status(tag, &mailbox, &item_names).await,
            CommandBody::Create { mailbox } => self.create(tag, &mailbox).await,
            CommandBody::Delete { mailbox } => self.delete(tag, &mailbox).await,
            CommandBody::Rename { from, to } => self.rename(tag, &from, &to).await,
            CommandBody::Subscribe { mailbox } => self.subscribe(tag, &mailbox, true).await,
            CommandBody::Unsubscribe { mailbox } => self.subscribe(tag, &mailbox, false).await,
            CommandBody::Append { mailbox, flags, date, message } => {
                self.append(tag, &mailbox, &flags, date.as_ref(), &message).await
            }
            CommandBody::Close => self.close(tag).await,
            CommandBody::Unselect => {
                self.selected = None;
                self.ok(tag, None, "UNSELECT completed");
                Ok(())
            }
            CommandBody::Expunge => self.expunge(tag, None).await,
            CommandBody::ExpungeUid { sequence_set } => self.expunge(tag, Some(&sequence_set)).await,
            CommandBody::Search { charset, criteria, uid } => self.search(tag, charset.as_ref(), &criteria, uid).await,
            CommandBody::Fetch { sequence_set, macro_or_item_names, uid, .. } => {
                self.fetch(tag, &sequence_set, &macro_or_item_names, uid).await
            }
            CommandBody::Store { sequence_set, kind, response, flags, uid, .. } => {
                self.store(tag, &sequence_set, &kind, &response, &flags, uid).await
            }
            CommandBody::Copy { sequence_set, mailbox, uid } => {
                self.copy(tag, &sequence_set, &mailbox, uid, false).await
            }
            CommandBody::Move { sequence_set, mailbox, uid } => {
                self.copy(tag, &sequence_set, &mailbox, uid, true).await
            }
            _ => {
                self.bad(tag, "Command not supported");
                self.count_error()
            }
        }
    }

    /// The capabilities for the current state (RFC 3501 §6.1.1, RFC 2595 LOGINDISABLED).
    pub(super) fn capability_text(&self) -> String {
        let mut caps = vec!["IMAP4rev1"];
        if self.user.is_none() {
            if self.tls {
                caps.extend(["AUTH=PLAIN", "AUTH=LOGIN", "SASL-IR"]);
            } else {
                caps.extend(["STARTTLS", "LOGINDISABLED"]);
            }
        }
        caps.extend(["LITERAL+", "ID", "ENABLE", "IDLE", "NAMESPACE", "UIDPLUS", "MOVE", "SPECIAL-USE", "UNSELECT"]);
        caps.join(" ")
    }

    /// The capability list as a response code (sent with a successful login).
    pub(super) fn capability_code(&self) -> Option<Code<'static>> {
        let caps: Vec<Capability<'static>> =
            self.capability_text().split(' ').filter_map(|cap| Capability::try_from(cap.to_string()).ok()).collect();
        Vec1::try_from(caps).ok().map(Code::Capability)
    }

    async fn starttls(&mut self, tag: &Tag<'static>) -> Result<(), End> {
        if self.tls {
            self.bad(tag, "TLS is already active");
            return self.count_error();
        }
        self.ok(tag, None, "Begin TLS negotiation now");
        self.conn.flush().await?;
        // Anything the client pipelined after STARTTLS in plaintext must not count as a command.
        self.conn.discard_input();
        let Stream::Plain(tcp) = std::mem::replace(&mut self.conn.stream, Stream::Taken) else {
            return Err(End::Closed);
        };
        match handshake(&self.tls_acceptor, tcp).await {
            Some(stream) => {
                self.conn.stream = Stream::Tls(Box::new(stream));
                self.tls = true;
                Ok(())
            }
            None => Err(End::Closed),
        }
    }

    fn id(&mut self, tag: &Tag<'static>) {
        let pair = |key: &str, value: &str| -> Option<(IString<'static>, NString<'static>)> {
            Some((IString::try_from(key.to_string()).ok()?, NString::try_from(value.to_string()).ok()?))
        };
        let parameters = [pair("name", "InboxGrove"), pair("vendor", "InboxGrove")].into_iter().flatten().collect();
        self.conn.send(&Response::Data(Data::Id { parameters: Some(parameters) }));
        self.ok(tag, None, "ID completed");
    }

    fn namespace(&mut self, tag: &Tag<'static>) {
        let personal = IString::try_from(String::new())
            .ok()
            .map(|prefix| Namespace::new(prefix, QuotedChar::try_from('/').ok()))
            .into_iter()
            .collect();
        self.conn.send(&Response::Data(Data::Namespace { personal, other: Vec::new(), shared: Vec::new() }));
        self.ok(tag, None, "NAMESPACE completed");
    }

    /// IDLE (RFC 2177): reports changes as they happen until the client sends DONE. Wakes on
    /// the mail-change signal, and polls `uid_next` every `idle_recheck` (see
    /// [`super::IDLE_RECHECK`]) for deliveries that sent none.
    async fn idle(&mut self, tag: &Tag<'static>) -> Result<(), End> {
        enum Event {
            Input(Result<(), End>),
            Changed(Option<i64>),
            Tick,
            Timeout,
        }
        self.conn.write_raw(b"+ idling\r\n");
        self.refresh(true).await?;
        let deadline = tokio::time::Instant::now() + AUTHENTICATED_IDLE;
        let mut poll = self.idle_recheck.map(tokio::time::interval);
        loop {
            if let Some(bytes) = self.conn.buffered_message() {
                match IdleDoneCodec::default().decode(&bytes) {
                    Ok(([], _)) => self.ok(tag, None, "IDLE terminated"),
                    _ => {
                        self.bad(tag, "Expected DONE");
                        self.count_error()?;
                    }
                }
                return Ok(());
            }
            self.conn.flush().await?;
            let event = tokio::select! {
                read = self.conn.readable() => Event::Input(read),
                changed = self.changes.recv() => Event::Changed(match changed {
                    Ok(mailbox_id) => Some(mailbox_id),
                    Err(broadcast::error::RecvError::Lagged(_)) => None,
                    Err(broadcast::error::RecvError::Closed) => return Err(End::Shutdown),
                }),
                () = recheck(poll.as_mut()) => Event::Tick,
                _ = tokio::time::sleep_until(deadline) => Event::Timeout,
            };
            match event {
                Event::Input(read) => read?,
                Event::Changed(mailbox_id) => {
                    let mine = self.user.as_ref().map(|u| u.mailbox_id);
                    if mailbox_id.is_none() || mailbox_id == mine {
                        self.refresh(true).await?;
                    }
                }
                Event::Tick => self.poll_uid_next().await?,
                Event::Timeout => return Err(End::IdleTimeout),
            }
        }
    }

    /// Refreshes when the selected folder's `uid_next` moved (a delivery).
    async fn poll_uid_next(&mut self) -> Result<(), End> {
        let Some(selected) = &self.selected else { return Ok(()) };
        let (folder_id, known) = (selected.folder.id, selected.uid_next);
        let current = self.app.store.read(move |conn| imap_ops::uid_next(conn, folder_id)).await;
        if matches!(current, Ok(Some(next)) if next != known) {
            self.refresh(true).await?;
        }
        Ok(())
    }

    /// Tells the client what changed in the selected folder since it last heard; EXPUNGE only
    /// when `allow_expunge` (not during FETCH, STORE, SEARCH by sequence number).
    pub(super) async fn refresh(&mut self, allow_expunge: bool) -> Result<(), End> {
        let Some(selected) = &self.selected else { return Ok(()) };
        let folder_id = selected.folder.id;
        let read = self
            .app
            .store
            .read(move |conn| {
                Ok::<_, rusqlite::Error>((
                    imap_ops::message_flags(conn, folder_id)?,
                    imap_ops::uid_next(conn, folder_id)?,
                    imap_ops::recent_mark(conn, folder_id)?,
                ))
            })
            .await;
        let (current, uid_next, mark) = match read {
            Ok(read) => read,
            Err(e) => {
                tracing::warn!(error = %e, "imap: could not refresh the selected folder");
                return Ok(());
            }
        };
        let Some(selected) = &mut self.selected else { return Ok(()) };
        if let Some(next) = uid_next {
            selected.uid_next = next;
        }
        let updates = selected.sync(&current, allow_expunge);
        self.settle_new_recent(mark).await;
        self.announce_new_keywords();
        self.send_updates(updates);
        Ok(())
    }

    /// Decides `\Recent` for messages the view gained (claiming them when read-write).
    async fn settle_new_recent(&mut self, mark: i64) {
        let Some(view) = self.selected.take_if(|view| view.has_undecided_recent()) else { return };
        let claimed = self.claim_recent(&view, mark).await;
        let view = self.selected.insert(view);
        match claimed {
            Ok(before) => view.settle_recent(before),
            Err(e) => tracing::warn!(error = %e, "imap: could not claim \\Recent"),
        }
    }

    /// Sends the untagged responses of a sync; each EXISTS is followed by RECENT.
    fn send_updates(&mut self, updates: Vec<Update>) {
        let recent = self.selected.as_ref().map_or(0, Selected::recent_count);
        for update in updates {
            let response = match update {
                Update::Expunge(seq) => NonZeroU32::new(seq).map(Data::Expunge),
                Update::Exists(count) => {
                    self.conn.send(&Response::Data(Data::Exists(count)));
                    Some(Data::Recent(recent))
                }
                Update::Flags { seq, uid, flags, recent } => {
                    let items = vec![
                        MessageDataItem::Uid(NonZeroU32::new(uid).unwrap_or(NonZeroU32::MIN)),
                        MessageDataItem::Flags(fetch_flags(&flags, recent)),
                    ];
                    match (NonZeroU32::new(seq), Vec1::try_from(items)) {
                        (Some(seq), Ok(items)) => Some(Data::Fetch { seq, items }),
                        _ => None,
                    }
                }
            };
            if let Some(data) = response {
                self.conn.send(&Response::Data(data));
            }
        }
    }

    /// Queues a tagged status.
    fn tagged(&mut self, tag: &Tag<'static>, kind: StatusKind, code: Option<Code<'static>>, message: &str) {
        let status = Status::Tagged(Tagged { tag: tag.clone(), body: StatusBody { kind, code, text: text(message) } });
        self.conn.send(&Response::Status(status));
    }

    pub(super) fn ok(&mut self, tag: &Tag<'static>, code: Option<Code<'static>>, message: &str) {
        self.tagged(tag, StatusKind::Ok, code, message);
    }

    pub(super) fn no(&mut self, tag: &Tag<'static>, code: Option<Code<'static>>, message: &str) {
        self.tagged(tag, StatusKind::No, code, message);
    }

    pub(super) fn bad(&mut self, tag: &Tag<'static>, message: &str) {
        self.tagged(tag, StatusKind::Bad, None, message);
    }

    pub(super) fn untagged(&mut self, kind: StatusKind, code: Option<Code<'static>>, message: &str) {
        let status = Status::Untagged(StatusBody { kind, code, text: text(message) });
        self.conn.send(&Response::Status(status));
    }

    pub(super) fn untagged_bye(&mut self, message: &str) {
        self.conn.send(&Response::Status(Status::Bye(imap_codec::imap_types::response::Bye {
            code: None,
            text: text(message),
        })));
    }

    /// `NO [SERVERBUG]` for a failure that is ours, logged; the session goes on.
    pub(super) fn internal_error(&mut self, tag: &Tag<'static>, error: &Error) -> Result<(), End> {
        tracing::error!(error = %error, "imap command failed internally");
        self.no(tag, Some(code("SERVERBUG")), "Internal error; try again later");
        Ok(())
    }
}
