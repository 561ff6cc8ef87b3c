//! Agents, numbers, webhooks, API keys and usage: the configuration side
//! of the API.
//!
//! Conventions shared by these endpoints (the helpers for them are in
//! [`super::page`], [`super::extract`] and [`super::validate`], for every
//! `/v1` endpoint to use):
//!
//! - Every list answers `{"data": [...], "next_cursor": "..." | null}`,
//!   newest first; pass `next_cursor` back as `?cursor=` for the next page,
//!   with `?limit=` from 1 to 100 (20 by default).
//! - Timestamps are unix milliseconds (UTC).
//! - Request bodies refuse unknown fields, so a misspelt field is a 422
//!   rather than silently ignored.
//! - PATCH changes only the fields sent: an absent field is left as it
//!   is, `null` clears a field that may be empty.
//! - Another organization's resource answers 404, like a missing one.

pub mod agents;
pub mod keys;
pub mod numbers;
pub mod usage;
pub mod webhooks;

use axum::Router;

use super::AppState;

/// The routes of this part of `/v1`.
pub fn routes() -> Router<AppState> {
    Router::new()
        .merge(agents::routes())
        .merge(numbers::routes())
        .merge(webhooks::routes())
        .merge(keys::routes())
        .merge(usage::routes())
}
