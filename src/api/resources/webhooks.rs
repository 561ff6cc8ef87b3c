//! `/v1/webhooks`: where events are POSTed, signed with a per-webhook
//! secret (`X-Hotline-Signature`, see [`crate::api::signing`]). The secret
//! is shown when the webhook is created and when it is rotated, never in
//! reads or lists.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use utoipa::ToSchema;

use super::{found, listed, not_found};
use crate::api::extract::{JsonBody, QueryParams};
use crate::api::page::{List, ListParams, list_schema};
use crate::api::validate::Problems;
use crate::api::{ApiError, AppState, Caller};
use crate::store::{DeliveryStatus, NewWebhook, TEST_EVENT, Webhook, WebhookDelivery, now_ms};

/// What a missing one is called in a 404.
const WHAT: &str = "webhook";

/// Event types a webhook may filter on. `alert.*` stands for every alert
/// event; a specific `alert.<name>` is accepted too.
pub const EVENT_TYPES: &[&str] = &[
    "call.status",
    "call.completed",
    "call.report.ready",
    "call.answered_by",
    "call.queued",
    "call.attempting",
    "call.attempt_failed",
    "call.exhausted",
    "call.callback_requested",
    "call.dnc_requested",
    "batch.completed",
    "transcript.partial",
    "transcript.final",
    "dtmf",
    "alert.*",
];

/// Most event types in one filter.
const MAX_EVENTS: usize = 50;

/// The routes of `/v1/webhooks`.
pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/webhooks", get(list).post(create))
        .route("/webhooks/test", post(test))
        .route("/webhooks/{id}", get(read).delete(remove))
        .route("/webhooks/{id}/rotate-secret", post(rotate_secret))
        .route("/webhooks/{id}/deliveries", get(deliveries))
}

/// A webhook as the API shows it.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct WebhookOut {
    /// `whk_` and 24 hex digits.
    pub id: String,
    /// Where events are POSTed.
    pub url: String,
    /// Event types sent; empty means all.
    pub events: Vec<String>,
    /// The signing secret (`whsec_…`): only in the answers to create and
    /// rotate-secret.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub secret: Option<String>,
    /// Creation time, unix ms.
    pub created_at: i64,
}

impl WebhookOut {
    fn without_secret(w: Webhook) -> WebhookOut {
        WebhookOut {
            id: w.id,
            url: w.url,
            events: w.events,
            secret: None,
            created_at: w.created_at,
        }
    }

    fn with_secret(w: Webhook) -> WebhookOut {
        let secret = Some(w.secret.clone());
        WebhookOut {
            secret,
            ..WebhookOut::without_secret(w)
        }
    }
}

impl From<Webhook> for WebhookOut {
    /// Lists and reads never show the secret.
    fn from(w: Webhook) -> Self {
        WebhookOut::without_secret(w)
    }
}

list_schema!(WebhookList, WebhookOut);

/// One event on its way to one webhook.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct DeliveryOut {
    /// `dlv_` and 24 hex digits.
    pub id: String,
    /// The webhook it goes to.
    pub webhook_id: String,
    /// Event type.
    pub event_type: String,
    /// The event body.
    #[schema(value_type = Object)]
    pub payload: Value,
    /// `pending`, `in_flight`, `delivered` or `failed`.
    #[schema(value_type = String)]
    pub status: DeliveryStatus,
    /// Sends started so far.
    pub attempts: i64,
    /// When it is next due, unix ms.
    pub next_attempt_at: i64,
    /// Why the last attempt failed.
    pub last_error: Option<String>,
    /// HTTP status the endpoint last answered.
    pub last_status_code: Option<i64>,
    /// When the event was queued, unix ms.
    pub created_at: i64,
    /// When the endpoint accepted it, unix ms.
    pub delivered_at: Option<i64>,
}

impl From<WebhookDelivery> for DeliveryOut {
    fn from(d: WebhookDelivery) -> Self {
        DeliveryOut {
            id: d.id,
            webhook_id: d.webhook_id,
            event_type: d.event_type,
            payload: d.payload,
            status: d.status,
            attempts: d.attempts,
            next_attempt_at: d.next_attempt_at,
            last_error: d.last_error,
            last_status_code: d.last_status_code,
            created_at: d.created_at,
            delivered_at: d.delivered_at,
        }
    }
}

list_schema!(DeliveryList, DeliveryOut);

/// `POST /v1/webhooks`.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateWebhook {
    /// An absolute `http://` or `https://` URL.
    pub url: String,
    /// Event types to send (see the list in the description of
    /// `events`); empty or omitted means all.
    #[serde(default)]
    pub events: Vec<String>,
}

/// The answer to `POST /v1/webhooks/test`.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct TestQueued {
    /// The event type sent: `webhook.test`.
    pub event_type: String,
    /// One queued delivery per webhook of the organization.
    pub deliveries: Vec<DeliveryOut>,
}

/// Whether `event` may appear in a webhook's filter.
pub fn is_known_event(event: &str) -> bool {
    EVENT_TYPES.contains(&event)
        || event.strip_prefix("alert.").is_some_and(|name| {
            !name.is_empty()
                && name.len() <= 64
                && name
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'.')
        })
}

/// Registers a webhook and returns it with its signing secret.
#[utoipa::path(
    post, path = "/v1/webhooks", tag = "webhooks",
    request_body = CreateWebhook,
    responses(
        (status = 201, description = "Created; `secret` is shown only now", body = WebhookOut),
        (status = 422, description = "A field is invalid", body = crate::api::error::ValidationErrorBody),
    )
)]
pub async fn create(
    State(state): State<AppState>,
    caller: Caller,
    JsonBody(body): JsonBody<CreateWebhook>,
) -> Result<(StatusCode, Json<WebhookOut>), ApiError> {
    let mut p = Problems::default();
    p.http_url("url", &body.url);
    if body.events.len() > MAX_EVENTS {
        p.add("events", format!("at most {MAX_EVENTS} event types"));
    }
    for (i, e) in body.events.iter().enumerate() {
        if !is_known_event(e) {
            p.add(
                &format!("events.{i}"),
                format!("unknown event type; one of {}", EVENT_TYPES.join(", ")),
            );
        }
    }
    p.finish()?;
    let mut events = body.events;
    let mut seen = std::collections::HashSet::new();
    events.retain(|e| seen.insert(e.clone()));
    let hook = state
        .store
        .create_webhook(
            &caller.org_id,
            &NewWebhook {
                url: body.url,
                events,
            },
        )
        .await?;
    Ok((StatusCode::CREATED, Json(WebhookOut::with_secret(hook))))
}

/// Lists the organization's webhooks, newest first (without secrets).
#[utoipa::path(
    get, path = "/v1/webhooks", tag = "webhooks",
    params(ListParams),
    responses(
        (status = 200, description = "A page of webhooks", body = WebhookList),
        (status = 422, description = "Bad paging parameter", body = crate::api::error::ValidationErrorBody),
    )
)]
pub async fn list(
    State(state): State<AppState>,
    caller: Caller,
    query: QueryParams,
) -> Result<Json<List<WebhookOut>>, ApiError> {
    listed(state.store.list_webhooks(&caller.org_id, &query.page()?)).await
}

/// Reads one webhook (without its secret).
#[utoipa::path(
    get, path = "/v1/webhooks/{id}", tag = "webhooks",
    params(("id" = String, Path, description = "Webhook id")),
    responses(
        (status = 200, description = "The webhook", body = WebhookOut),
        (status = 404, description = "No such webhook", body = crate::api::error::ErrorBody),
    )
)]
pub async fn read(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<WebhookOut>, ApiError> {
    found(WHAT, state.store.get_webhook(&caller.org_id, &id)).await
}

/// Deletes a webhook and its undelivered events.
#[utoipa::path(
    delete, path = "/v1/webhooks/{id}", tag = "webhooks",
    params(("id" = String, Path, description = "Webhook id")),
    responses(
        (status = 204, description = "Deleted"),
        (status = 404, description = "No such webhook", body = crate::api::error::ErrorBody),
    )
)]
pub async fn remove(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    state
        .store
        .delete_webhook(&caller.org_id, &id)
        .await
        .map_err(not_found(WHAT))?;
    Ok(StatusCode::NO_CONTENT)
}

/// Replaces the signing secret and returns the new one. Deliveries not yet
/// sent, retries included, are signed with the new secret.
#[utoipa::path(
    post, path = "/v1/webhooks/{id}/rotate-secret", tag = "webhooks",
    params(("id" = String, Path, description = "Webhook id")),
    responses(
        (status = 200, description = "The webhook with its new `secret`", body = WebhookOut),
        (status = 404, description = "No such webhook", body = crate::api::error::ErrorBody),
    )
)]
pub async fn rotate_secret(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<WebhookOut>, ApiError> {
    let hook = state
        .store
        .rotate_webhook_secret(&caller.org_id, &id)
        .await
        .map_err(not_found(WHAT))?;
    Ok(Json(WebhookOut::with_secret(hook)))
}

/// Queues a `webhook.test` event to every webhook of the organization,
/// whatever its filter; follow it with the deliveries endpoint.
#[utoipa::path(
    post, path = "/v1/webhooks/test", tag = "webhooks",
    responses(
        (status = 202, description = "Queued", body = TestQueued),
    )
)]
pub async fn test(
    State(state): State<AppState>,
    caller: Caller,
) -> Result<(StatusCode, Json<TestQueued>), ApiError> {
    let payload = json!({
        "message": "test event from Hotline",
        "requested_at": now_ms(),
    });
    let queued = state
        .store
        .enqueue_event(&caller.org_id, TEST_EVENT, &payload)
        .await?;
    Ok((
        StatusCode::ACCEPTED,
        Json(TestQueued {
            event_type: TEST_EVENT.to_owned(),
            deliveries: queued.into_iter().map(DeliveryOut::from).collect(),
        }),
    ))
}

/// Lists a webhook's deliveries, newest first: status, attempts and the
/// last error of each.
#[utoipa::path(
    get, path = "/v1/webhooks/{id}/deliveries", tag = "webhooks",
    params(("id" = String, Path, description = "Webhook id"), ListParams),
    responses(
        (status = 200, description = "A page of deliveries", body = DeliveryList),
        (status = 404, description = "No such webhook", body = crate::api::error::ErrorBody),
        (status = 422, description = "Bad paging parameter", body = crate::api::error::ValidationErrorBody),
    )
)]
pub async fn deliveries(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    query: QueryParams,
) -> Result<Json<List<DeliveryOut>>, ApiError> {
    let page = query.page()?;
    state
        .store
        .get_webhook(&caller.org_id, &id)
        .await
        .map_err(not_found(WHAT))?;
    listed(
        state
            .store
            .list_deliveries(&caller.org_id, Some(&id), &page),
    )
    .await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn event_filters_are_the_known_types() {
        for ok in EVENT_TYPES
            .iter()
            .copied()
            .chain(["alert.fired", "alert.disk_full"])
        {
            assert!(is_known_event(ok), "{ok}");
        }
        for bad in [
            "call.started",
            "alert.",
            "alerts.x",
            "*",
            "",
            "alert.a b",
            TEST_EVENT,
        ] {
            assert!(!is_known_event(bad), "{bad}");
        }
    }
}
