//! Leads: import (with a column-mapping step), list, search, edit and erase.

use axum::Router;

use crate::app::App;

/// This area's routes.
pub fn routes() -> Router<App> {
    Router::new()
}
