//! Static files embedded in the binary, served under a content-hashed URL with a long cache life.

use axum::Router;
use axum::extract::Path;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;

use crate::app::App;

struct Asset {
    name: &'static str,
    content_type: &'static str,
    body: &'static str,
}

const ASSETS: &[Asset] = &[
    Asset { name: "app.css", content_type: "text/css; charset=utf-8", body: include_str!("../../static/app.css") },
    Asset { name: "app.js", content_type: "text/javascript; charset=utf-8", body: include_str!("../../static/app.js") },
];

/// The URL of an asset, carrying a hash of its content so browsers can cache it forever.
pub fn url(name: &str) -> String {
    let asset = ASSETS.iter().find(|a| a.name == name).expect("known asset");
    let digest = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, asset.body.as_bytes());
    let short: String = digest.as_ref()[..6].iter().map(|b| format!("{b:02x}")).collect();
    format!("/static/{short}/{name}")
}

pub fn routes() -> Router<App> {
    Router::new().route("/static/{hash}/{name}", get(serve))
}

async fn serve(Path((_hash, name)): Path<(String, String)>) -> Response {
    match ASSETS.iter().find(|a| a.name == name) {
        Some(asset) => (
            [
                (header::CONTENT_TYPE, asset.content_type),
                (header::CACHE_CONTROL, "public, max-age=31536000, immutable"),
            ],
            asset.body,
        )
            .into_response(),
        None => StatusCode::NOT_FOUND.into_response(),
    }
}
