//! Recording opens and clicks: one event per request, in one transaction with the lookups it
//! needs. The token names the workspace and our Message-ID; the send is found by that
//! Message-ID in that workspace's campaigns, and the event gets the send's Message-ID, the
//! lead's address as its peer, the sending mailbox, the detail (the user agent for an open, the
//! URL for a click) and the machine flag ([`machine`]). A request on a tracking host must carry a
//! token of that host's workspace.

use axum::http::{HeaderMap, Method, Uri, header};
use rusqlite::{Connection, OptionalExtension, Transaction};

use crate::error::{Error, Result};
use crate::events::{self, Kind, NewEvent};
use crate::tracking::host;
use crate::tracking::machine;
use crate::tracking::token::Target;

/// User agents are kept up to this many characters.
const MAX_AGENT_LEN: usize = 500;

/// What a tracking request was, as far as recording it goes.
#[derive(Debug, Clone)]
pub struct Hit {
    pub method: Method,
    pub user_agent: String,
    /// The request's host (from `Host`, else the URI), lowercase without port.
    pub host: Option<String>,
}

impl Hit {
    pub fn from_request(method: &Method, headers: &HeaderMap, uri: &Uri) -> Hit {
        let user_agent = headers.get(header::USER_AGENT).and_then(|v| v.to_str().ok()).unwrap_or_default();
        Hit {
            method: method.clone(),
            user_agent: user_agent.chars().take(MAX_AGENT_LEN).collect(),
            host: request_host(headers, uri),
        }
    }
}

/// The host a request was made to: its `Host` header, else its URI's authority.
pub fn request_host(headers: &HeaderMap, uri: &Uri) -> Option<String> {
    let named = headers.get(header::HOST).and_then(|v| v.to_str().ok()).or_else(|| uri.authority().map(|a| a.as_str()));
    named.and_then(host::host_of_authority)
}

/// The campaign send a Message-ID names in a workspace.
struct Send {
    id: i64,
    mailbox_id: Option<i64>,
    lead: String,
}

fn find_send(conn: &Connection, workspace: i64, message_id: &str) -> rusqlite::Result<Option<Send>> {
    conn.prepare_cached(
        "SELECT s.id, s.mailbox_id, l.email FROM campaign_sends s JOIN campaigns c ON c.id = s.campaign_id \
         JOIN leads l ON l.id = s.lead_id WHERE s.message_id = ?1 AND c.workspace_id = ?2",
    )?
    .query_row((message_id, workspace), |row| Ok(Send { id: row.get(0)?, mailbox_id: row.get(1)?, lead: row.get(2)? }))
    .optional()
}

/// When the message was first delivered; `None` before that.
fn delivered_at(conn: &Connection, workspace: i64, message_id: &str) -> rusqlite::Result<Option<i64>> {
    conn.prepare_cached("SELECT min(at) FROM events WHERE message_id = ?1 AND kind = ?2 AND workspace_id = ?3")?
        .query_row((message_id, Kind::Delivered, workspace), |row| row.get(0))
}

/// Refuses a token of another workspace on a tracking host.
fn check_host(conn: &Connection, target: &Target, hit: &Hit) -> Result<()> {
    let Some(name) = hit.host.as_deref() else { return Ok(()) };
    match host::workspace_of(conn, name)? {
        Some(workspace) if workspace != target.workspace_id() => Err(Error::NotFound),
        _ => Ok(()),
    }
}

fn record(tx: &Transaction, target: &Target, send: &Send, kind: Kind, detail: &str, hit: &Hit, now: i64) -> Result<()> {
    let (workspace, message_id) = (target.workspace_id(), target.message_id());
    let delivered = delivered_at(tx, workspace, message_id)?;
    let is_machine = machine::is_machine(&hit.method, &hit.user_agent, delivered, now);
    let event =
        NewEvent { mailbox_id: send.mailbox_id, message_id, detail, ..NewEvent::new(workspace, kind, &send.lead) };
    events::record_flagged(tx, &event, is_machine, now)?;
    Ok(())
}

/// Records an open of the message an open token names; returns whether it named a send (a
/// send since removed records nothing). `NotFound` on another workspace's tracking host.
pub fn open(tx: &Transaction, target: &Target, hit: &Hit, now: i64) -> Result<bool> {
    check_host(tx, target, hit)?;
    let Some(send) = find_send(tx, target.workspace_id(), target.message_id())? else { return Ok(false) };
    record(tx, target, &send, Kind::Opened, &hit.user_agent, hit, now)?;
    Ok(true)
}

/// Records a click of a click token and returns the URL to send the visitor to: the link stored
/// at the token's position for that send when the message was sent, never anything from the
/// request. `NotFound` when there is no such send or link, or on another workspace's tracking host.
pub fn click(tx: &Transaction, target: &Target, hit: &Hit, now: i64) -> Result<String> {
    let Target::Click { position, .. } = target else { return Err(Error::NotFound) };
    check_host(tx, target, hit)?;
    let send = find_send(tx, target.workspace_id(), target.message_id())?.ok_or(Error::NotFound)?;
    let url = crate::tracking::click::stored_link(tx, send.id, *position)?.ok_or(Error::NotFound)?;
    record(tx, target, &send, Kind::Clicked, &url, hit, now)?;
    Ok(url)
}
