//! Campaigns: create, edit, preview, start, pause and watch them.

use axum::Router;

use crate::app::App;

/// This area's routes.
pub fn routes() -> Router<App> {
    Router::new()
}
