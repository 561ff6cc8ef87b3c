//! The organization's do-not-call list: `GET/POST /v1/dnc`,
//! `GET/DELETE /v1/dnc/{number}`. Numbers get on it when a callee asks
//! (the agent's `mark_do_not_call`) or through the API; `POST /v1/calls`
//! answers 422 for them and queued calls to them are not dialled.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::routing::get;
use axum::{Json, Router};
use serde::Deserialize;

use crate::api::error::ApiError;
use crate::api::extract::{JsonBody, QueryParams};
use crate::api::page::{List, ListParams};
use crate::api::{AppState, Caller, validate};
use crate::store::{DncEntry, StoreError};

/// The routes of `/v1/dnc`.
pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/dnc", get(list).post(add))
        .route("/dnc/{number}", get(read).delete(remove))
}

crate::api::page::list_schema!(DncList, DncEntry);

/// The body of `POST /v1/dnc`.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AddDnc {
    /// E.164 number.
    pub number: String,
    /// Why, at most 500 characters.
    pub reason: Option<String>,
}

fn number(field: &str, raw: &str) -> Result<String, ApiError> {
    validate::e164(field, raw.trim()).map_err(|e| ApiError::field(field, e.msg))
}

/// Adds a number: 201, or 200 when it was on the list already.
#[utoipa::path(
    post, path = "/v1/dnc", tag = "calls",
    request_body = AddDnc,
    responses(
        (status = 201, description = "Added", body = DncEntry),
        (status = 200, description = "Already on the list", body = DncEntry),
        (status = 422, description = "Not an E.164 number", body = crate::api::error::ValidationErrorBody),
    )
)]
pub async fn add(
    State(state): State<AppState>,
    caller: Caller,
    JsonBody(body): JsonBody<AddDnc>,
) -> Result<(StatusCode, Json<DncEntry>), ApiError> {
    let e164 = number("number", &body.number)?;
    if body
        .reason
        .as_ref()
        .is_some_and(|r| r.chars().count() > 500)
    {
        return Err(ApiError::field("reason", "at most 500 characters"));
    }
    let added = state
        .store
        .add_dnc(&caller.org_id, &e164, "api", None, body.reason.as_deref())
        .await?;
    let entry = state
        .store
        .dnc_entry(&caller.org_id, &e164)
        .await?
        .ok_or(ApiError::NotFound("number"))?;
    let status = if added {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    Ok((status, Json(entry)))
}

/// The list, newest first.
#[utoipa::path(
    get, path = "/v1/dnc", tag = "calls",
    params(ListParams),
    responses((status = 200, description = "A page of numbers", body = DncList))
)]
pub async fn list(
    State(state): State<AppState>,
    caller: Caller,
    query: QueryParams,
) -> Result<Json<List<DncEntry>>, ApiError> {
    crate::api::resources::listed(state.store.list_dnc(&caller.org_id, &query.page()?)).await
}

/// Whether a number is on the list: 200 with its entry, or 404.
#[utoipa::path(
    get, path = "/v1/dnc/{number}", tag = "calls",
    params(("number" = String, Path, description = "E.164 number")),
    responses(
        (status = 200, description = "On the list", body = DncEntry),
        (status = 404, description = "Not on the list", body = crate::api::error::ErrorBody),
    )
)]
pub async fn read(
    State(state): State<AppState>,
    caller: Caller,
    Path(raw): Path<String>,
) -> Result<Json<DncEntry>, ApiError> {
    let e164 = number("number", &raw)?;
    state
        .store
        .dnc_entry(&caller.org_id, &e164)
        .await?
        .map(Json)
        .ok_or(ApiError::NotFound("number"))
}

/// Takes a number off the list.
#[utoipa::path(
    delete, path = "/v1/dnc/{number}", tag = "calls",
    params(("number" = String, Path, description = "E.164 number")),
    responses(
        (status = 204, description = "Removed"),
        (status = 404, description = "Not on the list", body = crate::api::error::ErrorBody),
    )
)]
pub async fn remove(
    State(state): State<AppState>,
    caller: Caller,
    Path(raw): Path<String>,
) -> Result<StatusCode, ApiError> {
    let e164 = number("number", &raw)?;
    match state.store.remove_dnc(&caller.org_id, &e164).await {
        Ok(()) => Ok(StatusCode::NO_CONTENT),
        Err(StoreError::NotFound) => Err(ApiError::NotFound("number")),
        Err(e) => Err(e.into()),
    }
}
