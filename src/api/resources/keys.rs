//! `/v1/api-keys`: the organization's API keys. A key's plaintext is
//! returned once, by create; lists show its prefix, name and use.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::routing::{delete, get};
use axum::{Json, Router};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::{listed, not_found};
use crate::api::extract::{JsonBody, QueryParams};
use crate::api::page::{List, ListParams, list_schema};
use crate::api::validate::Problems;
use crate::api::{ApiError, AppState, Caller};
use crate::store::ApiKey;

/// Longest key name.
const NAME_MAX: usize = 200;

/// The routes of `/v1/api-keys`.
pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/api-keys", get(list).post(create))
        .route("/api-keys/{id}", delete(revoke))
}

/// An API key as listed: never the key itself.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct ApiKeyOut {
    /// `key_` and 24 hex digits.
    pub id: String,
    /// A label chosen at creation.
    pub name: String,
    /// The key's first characters (`hl_live_` and 4 more), to recognise it.
    pub prefix: String,
    /// Creation time, unix ms.
    pub created_at: i64,
    /// Last use (to the minute), unix ms.
    pub last_used_at: Option<i64>,
    /// When it was revoked; a revoked key authenticates nothing.
    pub revoked_at: Option<i64>,
    /// The key itself: only in the answer to create, never again.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub key: Option<String>,
}

impl From<ApiKey> for ApiKeyOut {
    fn from(k: ApiKey) -> Self {
        ApiKeyOut {
            id: k.id,
            name: k.name,
            prefix: k.prefix,
            created_at: k.created_at,
            last_used_at: k.last_used_at,
            revoked_at: k.revoked_at,
            key: None,
        }
    }
}

list_schema!(ApiKeyList, ApiKeyOut);

/// `POST /v1/api-keys`.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateApiKey {
    /// A label, 1 to 200 characters (`"ci"`, `"crm integration"`).
    pub name: String,
}

/// Creates a key for the caller's organization; `key` is shown only here.
#[utoipa::path(
    post, path = "/v1/api-keys", tag = "api-keys",
    request_body = CreateApiKey,
    responses(
        (status = 201, description = "Created; store `key` now, it is not shown again", body = ApiKeyOut),
        (status = 422, description = "A field is invalid", body = crate::api::error::ValidationErrorBody),
    )
)]
pub async fn create(
    State(state): State<AppState>,
    caller: Caller,
    JsonBody(body): JsonBody<CreateApiKey>,
) -> Result<(StatusCode, Json<ApiKeyOut>), ApiError> {
    let mut p = Problems::default();
    p.text("name", &body.name, NAME_MAX);
    p.finish()?;
    let created = state
        .store
        .create_api_key(&caller.org_id, body.name.trim())
        .await?;
    let mut out = ApiKeyOut::from(created.key);
    out.key = Some(created.plaintext);
    Ok((StatusCode::CREATED, Json(out)))
}

/// Lists the organization's keys, revoked ones included, newest first.
#[utoipa::path(
    get, path = "/v1/api-keys", tag = "api-keys",
    params(ListParams),
    responses(
        (status = 200, description = "A page of keys", body = ApiKeyList),
        (status = 422, description = "Bad paging parameter", body = crate::api::error::ValidationErrorBody),
    )
)]
pub async fn list(
    State(state): State<AppState>,
    caller: Caller,
    query: QueryParams,
) -> Result<Json<List<ApiKeyOut>>, ApiError> {
    listed(state.store.list_api_keys(&caller.org_id, &query.page()?)).await
}

/// Revokes a key: it authenticates nothing from now on. Revoking a revoked
/// key is a no-op. A key may revoke itself.
#[utoipa::path(
    delete, path = "/v1/api-keys/{id}", tag = "api-keys",
    params(("id" = String, Path, description = "Key id")),
    responses(
        (status = 204, description = "Revoked"),
        (status = 404, description = "No such key", body = crate::api::error::ErrorBody),
    )
)]
pub async fn revoke(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    state
        .store
        .revoke_api_key(&caller.org_id, &id)
        .await
        .map_err(not_found("API key"))?;
    Ok(StatusCode::NO_CONTENT)
}
