//! `/v1/numbers`: the DIDs an organization owns and what happens to calls
//! that reach them.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::routing::get;
use axum::{Json, Router};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::ToSchema;

pub use super::inbound::{InboundConfig, InboundMode};
use super::inbound::{check_ai, check_voice};
use super::{found, listed, not_found};
use crate::api::extract::{JsonBody, QueryParams, present};
use crate::api::page::{List, ListParams, list_schema};
use crate::api::validate::{Problems, e164, not_null};
use crate::api::{ApiError, AppState, Caller};
use crate::store::{NewNumber, Number, NumberFilter, NumberUpdate, StoreError};

/// What a missing one is called in a 404.
const WHAT: &str = "number";

/// Longest label or trunk name, in characters.
const SHORT: usize = 200;
/// The routes of `/v1/numbers`.
pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/numbers", get(list).post(create))
        .route("/numbers/{id}", get(read).patch(update).delete(remove))
}

/// A number as the API shows it.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct NumberOut {
    /// `num_` and 24 hex digits.
    pub id: String,
    /// The number in E.164.
    pub e164: String,
    /// A label for people.
    pub label: Option<String>,
    /// The configured SIP trunk outbound calls from this number use.
    pub trunk: Option<String>,
    /// The agent inbound `ai` calls run.
    pub agent_id: Option<String>,
    /// Inbound handling.
    #[schema(value_type = InboundConfig)]
    pub inbound: Value,
    /// Creation time, unix ms.
    pub created_at: i64,
    /// Last change, unix ms.
    pub updated_at: i64,
}

impl From<Number> for NumberOut {
    fn from(n: Number) -> Self {
        NumberOut {
            id: n.id,
            e164: n.e164,
            label: n.label,
            trunk: n.trunk,
            agent_id: n.agent_id,
            inbound: n.inbound,
            created_at: n.created_at,
            updated_at: n.updated_at,
        }
    }
}

list_schema!(NumberList, NumberOut);

/// `POST /v1/numbers`.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateNumber {
    /// The number in E.164 (`+14155550100`); unique across the server.
    pub e164: String,
    /// A label for people.
    #[serde(default)]
    pub label: Option<String>,
    /// Name of a configured SIP trunk.
    #[serde(default)]
    pub trunk: Option<String>,
    /// An agent of the organization.
    #[serde(default)]
    pub agent_id: Option<String>,
    /// Inbound handling; `{"mode": "ai"}` when an agent is given, else
    /// `{"mode": "off"}`.
    #[serde(default)]
    pub inbound: Option<InboundConfig>,
}

/// `PATCH /v1/numbers/{id}`: only the fields sent change; `null` clears
/// an optional field. The number itself cannot change.
#[derive(Debug, Clone, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateNumber {
    /// New or cleared label.
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<String>)]
    pub label: Option<Option<String>>,
    /// New or cleared trunk.
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<String>)]
    pub trunk: Option<Option<String>>,
    /// New or cleared agent.
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<String>)]
    pub agent_id: Option<Option<String>>,
    /// New inbound handling, replacing the old one (not null).
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<InboundConfig>)]
    pub inbound: Option<Option<InboundConfig>>,
}

fn check_trunk(p: &mut Problems, state: &AppState, trunk: &str) {
    if !state.config.trunks.iter().any(|t| t.name == trunk) {
        let known: Vec<&str> = state
            .config
            .trunks
            .iter()
            .map(|t| t.name.as_str())
            .collect();
        p.add(
            "trunk",
            if known.is_empty() {
                format!("no trunk named {trunk:?}: none is configured")
            } else {
                format!(
                    "no trunk named {trunk:?} (configured: {})",
                    known.join(", ")
                )
            },
        );
    }
}

async fn check_agent(
    p: &mut Problems,
    state: &AppState,
    org_id: &str,
    agent_id: &str,
) -> Result<(), ApiError> {
    match state.store.get_agent(org_id, agent_id).await {
        Ok(_) => Ok(()),
        Err(StoreError::NotFound) => {
            p.add("agent_id", "no such agent");
            Ok(())
        }
        Err(e) => Err(e.into()),
    }
}

/// Adds a number.
#[utoipa::path(
    post, path = "/v1/numbers", tag = "numbers",
    request_body = CreateNumber,
    responses(
        (status = 201, description = "Created", body = NumberOut),
        (status = 409, description = "Another number already has this E.164", body = crate::api::error::ErrorBody),
        (status = 422, description = "A field is invalid", body = crate::api::error::ValidationErrorBody),
    )
)]
pub async fn create(
    State(state): State<AppState>,
    caller: Caller,
    JsonBody(body): JsonBody<CreateNumber>,
) -> Result<(StatusCode, Json<NumberOut>), ApiError> {
    let mut p = Problems::default();
    let number = match e164("e164", &body.e164) {
        Ok(n) => n,
        Err(e) => {
            p.0.push(e);
            String::new()
        }
    };
    p.opt_text("label", body.label.as_deref(), SHORT);
    if let Some(t) = &body.trunk {
        check_trunk(&mut p, &state, t);
    }
    if let Some(a) = &body.agent_id {
        check_agent(&mut p, &state, &caller.org_id, a).await?;
    }
    let mut inbound = body.inbound.unwrap_or_else(|| InboundConfig {
        mode: if body.agent_id.is_some() {
            InboundMode::Ai
        } else {
            InboundMode::Off
        },
        ..InboundConfig::off()
    });
    inbound.check(&mut p, &state.deny, &number, "inbound.");
    check_ai(&mut p, &inbound, body.agent_id.as_deref(), "agent_id");
    check_voice(
        &mut p,
        &state,
        &caller.org_id,
        "inbound.voice",
        inbound.voice.as_deref(),
    )
    .await?;
    p.finish()?;
    let new = NewNumber {
        e164: number,
        label: body.label,
        trunk: body.trunk,
        agent_id: body.agent_id,
        inbound: inbound.to_value(),
    };
    let number = state.store.create_number(&caller.org_id, &new).await?;
    // The engine answers the DID from now on, without a restart.
    crate::api::calls::numbers::number_changed(&state, &number);
    Ok((StatusCode::CREATED, Json(number.into())))
}

/// Lists the organization's numbers, newest first.
#[utoipa::path(
    get, path = "/v1/numbers", tag = "numbers",
    params(
        ListParams,
        ("agent_id" = Option<String>, Query, description = "Only numbers routed to this agent"),
    ),
    responses(
        (status = 200, description = "A page of numbers", body = NumberList),
        (status = 422, description = "Bad query parameter", body = crate::api::error::ValidationErrorBody),
    )
)]
pub async fn list(
    State(state): State<AppState>,
    caller: Caller,
    query: QueryParams,
) -> Result<Json<List<NumberOut>>, ApiError> {
    let filter = NumberFilter {
        agent_id: query.text("agent_id").map(str::to_owned),
    };
    listed(
        state
            .store
            .list_numbers(&caller.org_id, &filter, &query.page()?),
    )
    .await
}

/// Reads one number.
#[utoipa::path(
    get, path = "/v1/numbers/{id}", tag = "numbers",
    params(("id" = String, Path, description = "Number id")),
    responses(
        (status = 200, description = "The number", body = NumberOut),
        (status = 404, description = "No such number", body = crate::api::error::ErrorBody),
    )
)]
pub async fn read(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<NumberOut>, ApiError> {
    found(WHAT, state.store.get_number(&caller.org_id, &id)).await
}

/// Changes the fields sent; the call engine answers the next call with the
/// new settings.
#[utoipa::path(
    patch, path = "/v1/numbers/{id}", tag = "numbers",
    params(("id" = String, Path, description = "Number id")),
    request_body = UpdateNumber,
    responses(
        (status = 200, description = "The number as updated", body = NumberOut),
        (status = 404, description = "No such number", body = crate::api::error::ErrorBody),
        (status = 422, description = "A field is invalid", body = crate::api::error::ValidationErrorBody),
    )
)]
pub async fn update(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    JsonBody(body): JsonBody<UpdateNumber>,
) -> Result<Json<NumberOut>, ApiError> {
    let current = state
        .store
        .get_number(&caller.org_id, &id)
        .await
        .map_err(not_found(WHAT))?;
    let mut p = Problems::default();
    if let Some(Some(l)) = &body.label {
        p.text("label", l, SHORT);
    }
    if let Some(Some(t)) = &body.trunk {
        check_trunk(&mut p, &state, t);
    }
    if let Some(Some(a)) = &body.agent_id {
        check_agent(&mut p, &state, &caller.org_id, a).await?;
    }
    let mut inbound = not_null(&mut p, "inbound", body.inbound);
    if let Some(i) = &mut inbound {
        i.check(&mut p, &state.deny, &current.e164, "inbound.");
        check_voice(
            &mut p,
            &state,
            &caller.org_id,
            "inbound.voice",
            i.voice.as_deref(),
        )
        .await?;
    }
    // The `ai`-needs-an-agent rule holds for the number as it will be.
    let agent_after = match &body.agent_id {
        Some(a) => a.clone(),
        None => current.agent_id.clone(),
    };
    let inbound_after = match &inbound {
        Some(i) => Some(i.clone()),
        None => serde_json::from_value::<InboundConfig>(current.inbound.clone()).ok(),
    };
    if let Some(i) = &inbound_after {
        check_ai(&mut p, i, agent_after.as_deref(), "agent_id");
    }
    p.finish()?;
    let update = NumberUpdate {
        label: body.label,
        trunk: body.trunk,
        agent_id: body.agent_id,
        inbound: inbound.map(|i| i.to_value()),
    };
    let number = state
        .store
        .update_number(&caller.org_id, &id, &update)
        .await
        .map_err(not_found(WHAT))?;
    crate::api::calls::numbers::number_changed(&state, &number);
    Ok(Json(number.into()))
}

/// Removes a number from the organization (its calls keep the id).
#[utoipa::path(
    delete, path = "/v1/numbers/{id}", tag = "numbers",
    params(("id" = String, Path, description = "Number id")),
    responses(
        (status = 204, description = "Deleted"),
        (status = 404, description = "No such number", body = crate::api::error::ErrorBody),
    )
)]
pub async fn remove(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    let number = state
        .store
        .get_number(&caller.org_id, &id)
        .await
        .map_err(not_found(WHAT))?;
    state
        .store
        .delete_number(&caller.org_id, &id)
        .await
        .map_err(not_found(WHAT))?;
    crate::api::calls::numbers::number_removed(&state, &number.e164);
    Ok(StatusCode::NO_CONTENT)
}
