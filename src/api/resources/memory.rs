//! A contact's memory over the API: its facts and their timeline, the
//! owner's edits (which always win), and the context its next call
//! starts with.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::routing::get;
use axum::{Json, Router};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::not_found;
use crate::api::error::FieldError;
use crate::api::extract::JsonBody;
use crate::api::{ApiError, AppState, Caller};
use crate::memory::facts::{Candidate, Fact, Source, TimelineEntry, slot_key};
use crate::store::now_ms;

const WHAT: &str = "contact";
/// Longest value the owner may set.
const VALUE_MAX: usize = 500;

/// The routes of a contact's memory.
pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/contacts/{id}/memory", get(read))
        .route(
            "/contacts/{id}/memory/{slot}",
            axum::routing::put(set).delete(reject),
        )
        .route("/contacts/{id}/next-call-context", get(context))
}

/// A contact's memory.
#[derive(Debug, Serialize, ToSchema)]
pub struct MemoryOut {
    /// The active fact of each slot.
    #[schema(value_type = Vec<Object>)]
    pub facts: Vec<Fact>,
    /// Every decision, oldest first: `added`, `corroborated`,
    /// `superseded` (with the value replaced) or `rejected` (with why).
    #[schema(value_type = Vec<Object>)]
    pub timeline: Vec<TimelineEntry>,
}

/// The owner's value for a slot.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SetFact {
    /// The value; the same value as the active fact approves it.
    pub value: String,
}

/// What the next call is told.
#[derive(Debug, Serialize, ToSchema)]
pub struct NextCallContext {
    /// A short paragraph; empty for a caller Hotline knows nothing about.
    pub context: String,
}

async fn memory(state: &AppState, org: &str, id: &str) -> Result<MemoryOut, ApiError> {
    let (facts, timeline) = state
        .store
        .contact_memory(org, id)
        .await
        .map_err(not_found(WHAT))?;
    Ok(MemoryOut { facts, timeline })
}

/// The contact's facts and their timeline.
#[utoipa::path(
    get, path = "/v1/contacts/{id}/memory", tag = "contacts",
    params(("id" = String, Path, description = "Contact id")),
    responses(
        (status = 200, description = "The memory", body = MemoryOut),
        (status = 404, description = "No such contact", body = crate::api::error::ErrorBody),
    )
)]
pub async fn read(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<MemoryOut>, ApiError> {
    Ok(Json(memory(&state, &caller.org_id, &id).await?))
}

fn slot_of(slot: &str) -> Result<String, ApiError> {
    slot_key(slot).ok_or_else(|| {
        ApiError::Validation(vec![FieldError {
            loc: vec!["path".into(), "slot".into()],
            msg: "must contain a letter or digit".into(),
        }])
    })
}

/// The owner sets a slot (or approves its value by sending the same): it
/// wins over anything a call extracted, now and later.
#[utoipa::path(
    put, path = "/v1/contacts/{id}/memory/{slot}", tag = "contacts",
    params(
        ("id" = String, Path, description = "Contact id"),
        ("slot" = String, Path, description = "The slot: name, company, preference…"),
    ),
    request_body = SetFact,
    responses(
        (status = 200, description = "The memory after the change", body = MemoryOut),
        (status = 404, description = "No such contact", body = crate::api::error::ErrorBody),
        (status = 422, description = "A field is invalid", body = crate::api::error::ValidationErrorBody),
    )
)]
pub async fn set(
    State(state): State<AppState>,
    caller: Caller,
    Path((id, slot)): Path<(String, String)>,
    JsonBody(body): JsonBody<SetFact>,
) -> Result<Json<MemoryOut>, ApiError> {
    let slot = slot_of(&slot)?;
    let value = body.value.trim();
    if value.is_empty() || value.chars().count() > VALUE_MAX {
        return Err(ApiError::Validation(vec![FieldError::body(
            "value",
            format!("must be 1 to {VALUE_MAX} characters"),
        )]));
    }
    let owner = Candidate {
        slot,
        value: value.to_owned(),
        confidence: 1.0,
        source: Source::Owner,
    };
    state
        .store
        .remember(&caller.org_id, &id, &[owner], now_ms())
        .await
        .map_err(not_found(WHAT))?;
    Ok(Json(memory(&state, &caller.org_id, &id).await?))
}

/// The owner rejects a slot's fact: the slot is empty again (a later call
/// may fill it).
#[utoipa::path(
    delete, path = "/v1/contacts/{id}/memory/{slot}", tag = "contacts",
    params(
        ("id" = String, Path, description = "Contact id"),
        ("slot" = String, Path, description = "The slot"),
    ),
    responses(
        (status = 204, description = "Rejected"),
        (status = 404, description = "No such contact, or nothing in the slot", body = crate::api::error::ErrorBody),
    )
)]
pub async fn reject(
    State(state): State<AppState>,
    caller: Caller,
    Path((id, slot)): Path<(String, String)>,
) -> Result<StatusCode, ApiError> {
    let slot = slot_of(&slot)?;
    state
        .store
        .forget_fact(&caller.org_id, &id, &slot, now_ms())
        .await
        .map_err(not_found("fact"))?;
    Ok(StatusCode::NO_CONTENT)
}

/// The paragraph the contact's next call starts with: name, calls so far,
/// known facts, the last call and its open follow-ups.
#[utoipa::path(
    get, path = "/v1/contacts/{id}/next-call-context", tag = "contacts",
    params(("id" = String, Path, description = "Contact id")),
    responses(
        (status = 200, description = "The context", body = NextCallContext),
        (status = 404, description = "No such contact", body = crate::api::error::ErrorBody),
    )
)]
pub async fn context(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<NextCallContext>, ApiError> {
    let context = crate::memory::context::load(&state.store, &caller.org_id, &id, None)
        .await
        .map_err(not_found(WHAT))?;
    Ok(Json(NextCallContext { context }))
}
