//! Batches: `POST /v1/calls/batch` places up to 1000 calls that share
//! defaults, `GET /v1/calls/batch/{id}` counts them by status and lists
//! them, `DELETE` cancels what has not been dialled. The calls are
//! ordinary calls with a `batch_id`: the dispatcher dials them under the
//! organization's limits and the batch's own `max_concurrent`, fairly
//! with every other organization's calls. `batch.completed` fires once
//! none of them can change any more.

use std::collections::{BTreeMap, HashMap, HashSet};

use axum::Json;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use tracing::warn;

use super::{CreateCallRequest, lifecycle, prepare_call};
use crate::api::error::{ApiError, FieldError};
use crate::api::extract::{JsonBody, idempotency_key};
use crate::api::live::LiveEvent;
use crate::api::{AppState, Caller, validate};
use crate::store::{Batch, NewBatch, StoreError, now_ms};

/// Most targets in one batch.
pub const MAX_TARGETS: usize = 1000;

/// One call of a batch: who, and what differs from the defaults.
#[derive(Debug, Clone, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct BatchTarget {
    /// E.164 number or `sip:` URI.
    pub to: String,
    /// This call's objective, replacing the default one.
    pub objective: Option<String>,
    /// This call's context, replacing the default one.
    pub context: Option<String>,
    /// Deduplication key: a target whose client_id the organization has
    /// used already is the call made for it then.
    pub client_id: Option<String>,
    /// Merged over the defaults' metadata.
    #[serde(default)]
    pub metadata: BTreeMap<String, String>,
}

/// The body of `POST /v1/calls/batch`.
#[derive(Debug, Clone, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateBatchRequest {
    /// A label.
    pub name: Option<String>,
    /// 1 to 1000 calls.
    pub targets: Vec<BatchTarget>,
    /// What every call gets unless its target says otherwise: any field
    /// of `POST /v1/calls` but `to` and `client_id`.
    #[serde(default)]
    pub defaults: Option<CreateCallRequest>,
    /// Calls of this batch up at once (at most the organization's
    /// `max_concurrent_calls`, which is the default).
    pub max_concurrent: Option<u32>,
    /// Idempotency key of the batch itself.
    pub client_id: Option<String>,
    /// The client's key-value pairs.
    #[serde(default)]
    pub metadata: BTreeMap<String, String>,
}

/// One call of a batch as its summary lists it.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct BatchCall {
    /// The call.
    pub id: String,
    /// Callee.
    pub to: String,
    /// The call's status.
    pub status: String,
    /// Attempts started.
    pub attempts: i64,
    /// achieved, partial, not_achieved, voicemail…
    pub outcome: Option<String>,
    /// The call's summary.
    pub summary: Option<String>,
    /// What the call collected.
    #[schema(value_type = Option<Object>)]
    pub structured_data: Option<Value>,
    /// The target's client_id.
    pub client_id: Option<String>,
    /// When it is next dialled.
    pub next_attempt_at: Option<i64>,
}

/// A batch as the API shows it.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct BatchView {
    /// `bat_` and 24 hex digits.
    pub id: String,
    /// The label.
    pub name: Option<String>,
    /// running, completed or canceled.
    pub status: String,
    /// Calls of the batch up at once.
    pub max_concurrent: i64,
    /// Targets given.
    pub total: i64,
    /// Calls by status.
    #[schema(value_type = Object)]
    pub counts: BTreeMap<String, i64>,
    /// The calls, oldest first.
    pub calls: Vec<BatchCall>,
    /// The client's key-value pairs.
    pub metadata: BTreeMap<String, String>,
    /// The batch's idempotency key.
    pub client_id: Option<String>,
    /// Unix ms.
    pub created_at: i64,
    /// When its last call was settled.
    pub completed_at: Option<i64>,
}

async fn view(state: &AppState, batch: Batch) -> Result<BatchView, ApiError> {
    let counts = state.store.batch_counts(&batch.id).await?;
    let calls = state
        .store
        .batch_calls(&batch.org_id, &batch.id, MAX_TARGETS as u32)
        .await?
        .into_iter()
        .map(|c| BatchCall {
            id: c.id.to_string(),
            to: c.to,
            status: c.status.as_str().to_owned(),
            attempts: c.attempts,
            outcome: c.outcome,
            summary: c.summary,
            structured_data: c.structured_data,
            client_id: c.client_id,
            next_attempt_at: c.next_attempt_at,
        })
        .collect();
    Ok(BatchView {
        id: batch.id,
        name: batch.name,
        status: batch.status,
        max_concurrent: batch.max_concurrent,
        total: batch.total,
        counts,
        calls,
        metadata: batch.metadata,
        client_id: batch.client_id,
        created_at: batch.created_at,
        completed_at: batch.completed_at,
    })
}

fn prefixed(i: usize, e: ApiError) -> Result<Vec<FieldError>, ApiError> {
    match e {
        ApiError::Validation(errors) => Ok(errors
            .into_iter()
            .map(|mut f| {
                // `["body", "to"]` → `["body", "targets", i, "to"]`.
                f.loc.splice(1..1, ["targets".to_owned(), i.to_string()]);
                f
            })
            .collect()),
        other => Err(other),
    }
}

/// `POST /v1/calls/batch`: 201 with the batch, or 200 with the batch an
/// earlier request with the same `client_id` made.
#[utoipa::path(
    post, path = "/v1/calls/batch", tag = "calls",
    request_body = CreateBatchRequest,
    responses(
        (status = 201, description = "Queued", body = BatchView),
        (status = 200, description = "An earlier request with this client_id made it", body = BatchView),
        (status = 422, description = "A field is invalid (targets.N.field for a target's)", body = crate::api::error::ValidationErrorBody),
    )
)]
pub async fn create(
    State(state): State<AppState>,
    caller: Caller,
    headers: HeaderMap,
    JsonBody(body): JsonBody<CreateBatchRequest>,
) -> Result<Response, ApiError> {
    let org = caller.org_id.as_str();
    let mut errors = Vec::new();
    let client_id = idempotency_key(&headers, body.client_id.as_ref(), None, &mut errors);
    if body.targets.is_empty() || body.targets.len() > MAX_TARGETS {
        errors.push(FieldError::body(
            "targets",
            format!("1 to {MAX_TARGETS} targets"),
        ));
    }
    let defaults = body.defaults.clone().unwrap_or_default();
    if defaults.to.is_some() || defaults.client_id.is_some() || defaults.idempotency_key.is_some() {
        errors.push(FieldError::body(
            "defaults",
            "to and client_id belong to each target",
        ));
    }
    if defaults.schedule_at.is_none() && defaults.use_saved_agent && defaults.from.is_none() {
        errors.push(FieldError::body(
            "defaults.from",
            "required with use_saved_agent",
        ));
    }
    let org_limit = super::dispatch::limits(&state, org).await?.max_concurrent;
    let max_concurrent = body.max_concurrent.unwrap_or(org_limit);
    if !(1..=org_limit).contains(&max_concurrent) {
        errors.push(FieldError::body(
            "max_concurrent",
            format!("must be 1 to the organization's max_concurrent_calls ({org_limit})"),
        ));
    }
    if let Err(e) = validate::metadata("metadata", &body.metadata) {
        errors.extend(e);
    }
    if let Some(n) = &body.name
        && (n.trim().is_empty() || n.chars().count() > 200)
    {
        errors.push(FieldError::body("name", "1 to 200 characters"));
    }
    if !errors.is_empty() {
        return Err(ApiError::Validation(errors));
    }
    // The same objective is classified once for the whole batch.
    let mut classified: HashMap<String, String> = HashMap::new();
    let mut seen: HashSet<String> = HashSet::new();
    let mut prepared = Vec::new();
    for (i, t) in body.targets.iter().enumerate() {
        if let Some(c) = &t.client_id
            && !seen.insert(c.clone())
        {
            // The same target twice in one batch: one call.
            continue;
        }
        let mut req = defaults.clone();
        req.to = Some(t.to.clone());
        req.client_id = t.client_id.clone();
        if t.objective.is_some() {
            req.objective = t.objective.clone();
        }
        if t.context.is_some() {
            req.context = t.context.clone();
        }
        req.metadata.extend(t.metadata.clone());
        if req.playbook_id.is_none()
            && req.system_prompt.is_none()
            && let Some(o) = &req.objective
            && o.chars().count() <= super::objective::OBJECTIVE_MAX
        {
            let id = match classified.get(o) {
                Some(id) => id.clone(),
                None => {
                    let c = crate::api::resources::playbooks::classify_objective(&state, org, o)
                        .await?;
                    classified.insert(o.clone(), c.playbook_id.clone());
                    c.playbook_id
                }
            };
            req.playbook_id = Some(id);
        }
        let client = req.client_id.clone();
        match prepare_call(&state, org, req, client).await {
            Ok(p) => prepared.push(p),
            Err(e) => errors.extend(prefixed(i, e)?),
        }
    }
    if !errors.is_empty() {
        return Err(ApiError::Validation(errors));
    }
    let Some(engine) = state.engine.as_ref() else {
        return Err(ApiError::Unavailable {
            detail: "the call engine is not running".into(),
            retry_after: None,
        });
    };
    let agent = prepared
        .iter()
        .any(|p| p.new.request.get("agent") == Some(&json!(true)));
    if agent && engine.agents().is_none() {
        return Err(ApiError::Unavailable {
            detail: "the voice agent is not running in this server".into(),
            retry_after: None,
        });
    }
    let new = NewBatch {
        name: body.name.clone(),
        max_concurrent: i64::from(max_concurrent),
        total: body.targets.len() as i64,
        defaults: recorded_defaults(&body),
        metadata: body.metadata.clone(),
        client_id,
    };
    let (batch, created) = state.store.create_batch(org, &new).await?;
    if !created {
        return Ok((StatusCode::OK, Json(view(&state, batch).await?)).into_response());
    }
    for mut p in prepared {
        p.new.batch_id = Some(batch.id.clone());
        let (call, created) = match state.store.create_call(org, &p.new).await {
            Ok(c) => c,
            Err(e) => {
                warn!(batch = %batch.id, error = %e, "cannot record a batch call");
                continue;
            }
        };
        if !created {
            continue;
        }
        if let Some(url) = &call.webhook_url
            && let Err(e) = state
                .store
                .create_call_webhook(org, call.id.as_str(), url)
                .await
        {
            warn!(call = %call.id, error = %e, "cannot create a batch call's webhook");
        }
        lifecycle::announce_queued(&state, &call).await;
    }
    state.outbound.wake.notify_one();
    Ok((StatusCode::CREATED, Json(view(&state, batch).await?)).into_response())
}

/// The main defaults, kept with the batch for the record.
fn recorded_defaults(body: &CreateBatchRequest) -> Value {
    body.defaults
        .as_ref()
        .map(|d| {
            json!({
                "objective": d.objective, "context": d.context, "from": d.from,
                "agent_id": d.agent_id, "playbook_id": d.playbook_id,
                "persona_id": d.persona_id, "on_voicemail": d.on_voicemail,
                "retry_policy": d.retry_policy, "extraction_schema": d.extraction_schema,
            })
        })
        .unwrap_or_else(|| json!({}))
}

/// `GET /v1/calls/batch/{id}`.
#[utoipa::path(
    get, path = "/v1/calls/batch/{id}", tag = "calls",
    params(("id" = String, Path, description = "Batch id")),
    responses(
        (status = 200, description = "The batch, its counts and its calls", body = BatchView),
        (status = 404, description = "No such batch", body = crate::api::error::ErrorBody),
    )
)]
pub async fn read(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<BatchView>, ApiError> {
    let batch = state
        .store
        .get_batch(&caller.org_id, &id)
        .await
        .map_err(missing)?;
    Ok(Json(view(&state, batch).await?))
}

fn missing(e: StoreError) -> ApiError {
    match e {
        StoreError::NotFound => ApiError::NotFound("batch"),
        other => other.into(),
    }
}

/// `DELETE /v1/calls/batch/{id}`: cancels the calls not yet dialled
/// (calls under way finish); the batch as it is then.
#[utoipa::path(
    delete, path = "/v1/calls/batch/{id}", tag = "calls",
    params(("id" = String, Path, description = "Batch id")),
    responses(
        (status = 200, description = "Canceled what was waiting", body = BatchView),
        (status = 404, description = "No such batch", body = crate::api::error::ErrorBody),
    )
)]
pub async fn cancel(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<BatchView>, ApiError> {
    let canceled = state
        .store
        .cancel_batch(&caller.org_id, &id)
        .await
        .map_err(missing)?;
    for call in &canceled {
        lifecycle::announce_ended(&state, call).await;
    }
    settle(&state, &id).await;
    let batch = state.store.get_batch(&caller.org_id, &id).await?;
    Ok(Json(view(&state, batch).await?))
}

/// Announces `batch.completed` once, when the last of the batch's calls
/// is settled (a no-op before, and after).
pub async fn settle(state: &AppState, batch_id: &str) {
    let batch = match state.store.settle_batch(batch_id).await {
        Ok(Some(b)) => b,
        Ok(None) => return,
        Err(e) => {
            warn!(batch = batch_id, error = %e, "cannot settle a batch");
            return;
        }
    };
    let counts = state
        .store
        .batch_counts(&batch.id)
        .await
        .unwrap_or_default();
    let data = json!({"batch_id": batch.id, "status": batch.status, "total": batch.total,
        "counts": counts, "completed_at": batch.completed_at});
    let timestamp = now_ms();
    state.hub.publish(LiveEvent {
        event_type: "batch.completed".into(),
        call_id: String::new(),
        alert_id: None,
        sequence: 0,
        timestamp,
        payload: data.clone(),
        org_id: batch.org_id.clone(),
        number_id: None,
        batch_id: Some(batch.id.clone()),
    });
    let body = json!({"event_type": "batch.completed", "batch_id": batch.id,
        "timestamp": timestamp, "data": data});
    match state
        .store
        .enqueue_event(&batch.org_id, "batch.completed", &body)
        .await
    {
        Ok(d) if d.is_empty() => {}
        Ok(_) => state.webhook_wake.notify_one(),
        Err(e) => warn!(batch = %batch.id, error = %e, "cannot queue batch.completed"),
    }
}
