//! Calls: placing, following (`/v1/ws`), controlling and reading them.

use axum::Router;

use super::AppState;

/// The routes of this part of `/v1`.
pub fn routes() -> Router<AppState> {
    Router::new()
}
