//! Agents, numbers, contacts, after-call reports, webhooks, API keys and
//! usage, and the catalogues of prompt templates and voices: the
//! configuration side of the API.
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
pub mod contacts;
pub mod inbound;
pub mod keys;
pub mod memory;
pub mod numbers;
pub mod outbound_defaults;
pub mod personas;
pub mod playbooks;
pub mod reports;
pub mod settings;
pub mod templates;
pub mod usage;
pub mod voices;
pub mod webhooks;

use std::future::Future;

use axum::{Json, Router};

use super::page::{List, page_error};
use super::{ApiError, AppState};
use crate::store::{Page, StoreError};

/// The routes of this part of `/v1`.
pub fn routes() -> Router<AppState> {
    Router::new()
        .merge(agents::routes())
        .merge(numbers::routes())
        .merge(inbound::routes())
        .merge(contacts::routes())
        .merge(memory::routes())
        .merge(webhooks::routes())
        .merge(keys::routes())
        .merge(usage::routes())
        .merge(settings::routes())
        .merge(templates::routes())
        .merge(voices::routes())
        .merge(reports::routes())
        .merge(playbooks::routes())
        .merge(personas::routes())
        .merge(outbound_defaults::routes())
}

/// The error mapping of one resource: a missing `what` (or another
/// organization's) is the API's 404 naming it; other store errors as usual.
pub(crate) fn not_found(what: &'static str) -> impl Fn(StoreError) -> ApiError {
    move |e| match e {
        StoreError::NotFound => ApiError::NotFound(what),
        other => other.into(),
    }
}

/// The answer of every list handler: the store's page of the org's
/// resources, as the API shows them, in the list envelope; a bad cursor
/// or limit is the query's fault.
pub(crate) async fn listed<S, T: From<S>>(
    page: impl Future<Output = Result<Page<S>, StoreError>>,
) -> Result<Json<List<T>>, ApiError> {
    Ok(Json(List::from_page(page.await.map_err(page_error)?)))
}

/// The answer of every read handler: the stored resource as the API shows
/// it, or 404 naming `what`.
pub(crate) async fn found<S, T: From<S>>(
    what: &'static str,
    item: impl Future<Output = Result<S, StoreError>>,
) -> Result<Json<T>, ApiError> {
    Ok(Json(item.await.map_err(not_found(what))?.into()))
}
