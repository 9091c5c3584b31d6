//! The open pixel: `GET|HEAD /t/o/{token}` answers a 1x1 transparent GIF that no cache may
//! keep (every load reaches us), and records an `opened` event for the send the token names
//! ([`hits::open`]). A token that does not verify (or is not an open token) is a 404. The pixel
//! is only in mail with an HTML part: a plain-text message cannot load an image, so its opens
//! are not seen.

use axum::extract::{Path, State};
use axum::http::{HeaderMap, Method, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};

use crate::app::App;
use crate::error::Error;
use crate::tracking::hits::{self, Hit};
use crate::tracking::token::{self, Target};
use crate::web::WebResult;

/// A 1x1 transparent GIF (GIF89a, one transparent palette entry).
pub const PIXEL: [u8; 43] = [
    0x47, 0x49, 0x46, 0x38, 0x39, 0x61, 0x01, 0x00, 0x01, 0x00, 0x80, 0x00, 0x00, 0x00, 0x00, 0x00, 0xff, 0xff, 0xff,
    0x21, 0xf9, 0x04, 0x01, 0x00, 0x00, 0x00, 0x00, 0x2c, 0x00, 0x00, 0x00, 0x00, 0x01, 0x00, 0x01, 0x00, 0x00, 0x02,
    0x02, 0x44, 0x01, 0x00, 0x3b,
];

/// The cache headers of every tracking answer: never stored, so each open or click reaches us.
pub const NO_STORE: &str = "no-store, no-cache, must-revalidate, max-age=0";

/// `GET|HEAD /t/o/{token}`.
pub async fn pixel(
    State(app): State<App>,
    method: Method,
    headers: HeaderMap,
    uri: Uri,
    Path(token): Path<String>,
) -> WebResult {
    let Some(target @ Target::Open { .. }) = token::verify(&app.keys, &token) else {
        return Err(Error::NotFound.into());
    };
    let hit = Hit::from_request(&method, &headers, &uri);
    let now = app.clock.unix();
    app.store.write(move |tx| hits::open(tx, &target, &hit, now)).await?;
    Ok(gif())
}

fn gif() -> Response {
    (
        StatusCode::OK,
        [
            (header::CONTENT_TYPE, "image/gif"),
            (header::CACHE_CONTROL, NO_STORE),
            (header::PRAGMA, "no-cache"),
            (header::EXPIRES, "0"),
        ],
        PIXEL.as_slice(),
    )
        .into_response()
}
