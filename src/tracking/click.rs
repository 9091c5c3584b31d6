//! The click redirect: `GET|HEAD /t/c/{token}` answers `302 Found` to the link the token names
//! and records a `clicked` event ([`hits::click`]). The target is never taken from the request:
//! the links of each tracked send are stored (`tracked_links`, by send and position) in the
//! transaction that records the send, and the token (signed, see [`token`]) only names a send
//! and a position. A token that does not verify, names no stored link, or is another
//! workspace's on a tracking host is a 404 page; nothing is ever redirected to a URL that was
//! not in that message.

use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use rusqlite::{Connection, OptionalExtension, Transaction};

use crate::app::App;
use crate::error::Error;
use crate::tracking::hits::{self, Hit};
use crate::tracking::open::NO_STORE;
use crate::tracking::token::{self, Target};
use crate::web::WebResult;

/// `GET|HEAD /t/c/{token}`.
pub async fn redirect(
    State(app): State<App>,
    method: Method,
    headers: HeaderMap,
    uri: Uri,
    Path(token): Path<String>,
) -> WebResult {
    let Some(target @ Target::Click { .. }) = token::verify(&app.keys, &token) else {
        return Err(Error::NotFound.into());
    };
    let hit = Hit::from_request(&method, &headers, &uri);
    let now = app.clock.unix();
    let url = app.store.write(move |tx| hits::click(tx, &target, &hit, now)).await?;
    Ok(found(&url)?)
}

fn found(url: &str) -> Result<Response, Error> {
    let location = HeaderValue::from_str(&location(url))
        .map_err(|_| Error::Internal(format!("a stored link is not a valid Location: {url}")))?;
    Ok((
        StatusCode::FOUND,
        [(header::LOCATION, location)],
        [(header::CACHE_CONTROL, NO_STORE), (header::REFERRER_POLICY, "no-referrer")],
    )
        .into_response())
}

/// A URL as a `Location` value: bytes outside visible ASCII percent-encoded.
fn location(url: &str) -> String {
    let mut out = String::with_capacity(url.len());
    for byte in url.bytes() {
        if byte.is_ascii_graphic() {
            out.push(char::from(byte));
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

/// Stores the links of a send (by position, as [`crate::tracking::rewrite`] collected them), in
/// the transaction that records the send.
pub fn record_links(tx: &Transaction, send_id: i64, links: &[String]) -> rusqlite::Result<()> {
    let mut insert = tx.prepare_cached("INSERT INTO tracked_links (send_id, position, url) VALUES (?1, ?2, ?3)")?;
    for (position, url) in links.iter().enumerate() {
        insert.execute((send_id, i64::try_from(position).unwrap_or(i64::MAX), url))?;
    }
    Ok(())
}

/// The link stored at `position` of a send.
pub fn stored_link(conn: &Connection, send_id: i64, position: u32) -> rusqlite::Result<Option<String>> {
    conn.prepare_cached("SELECT url FROM tracked_links WHERE send_id = ?1 AND position = ?2")?
        .query_row((send_id, position), |row| row.get(0))
        .optional()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn locations_are_visible_ascii() {
        assert_eq!(location("https://a.test/x?b=1&c=2#f"), "https://a.test/x?b=1&c=2#f");
        assert_eq!(location("https://a.test/ü x"), "https://a.test/%C3%BC%20x");
    }
}
