//! Agents, numbers, webhooks, API keys and usage: the configuration side
//! of the API.

use axum::Router;

use super::AppState;

/// The routes of this part of `/v1`.
pub fn routes() -> Router<AppState> {
    Router::new()
}
