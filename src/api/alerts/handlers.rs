//! `/v1/alerts`: raise an alert, read it with its deliveries and history,
//! list alerts, acknowledge one.

use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::Value;
use utoipa::ToSchema;

use super::announce::announce;
use super::drive::{drive, policy};
use super::view::{AlertOut, HistoryOut};
use crate::alerts::escalation::{Escalation, Input, Severity, Status};
use crate::api::error::FieldError;
use crate::api::extract::{JsonBody, QueryParams, idempotency_key};
use crate::api::page::{List, ListParams, list_schema};
use crate::api::resources::{listed, not_found};
use crate::api::validate::{Problems, e164};
use crate::api::{ApiError, AppState, Caller};
use crate::store::{AlertFilter, NewAlert};
use crate::store::{StoreError, now_ms};

const WHAT: &str = "alert";
/// Alert types and their default delay before the first call, seconds.
pub const ALERT_TYPES: [(&str, i64); 5] = [
    ("approval", 300),
    ("task_failure", 120),
    ("threshold", 600),
    ("reminder", 300),
    ("other", 0),
];
/// Acknowledgement sources the API accepts (`dtmf` is the keypad's own).
pub const ACK_SOURCES: [&str; 3] = ["api", "chat", "manual"];
/// Largest `metadata`, serialized.
const METADATA_MAX: usize = 16 * 1024;
const HOUR_MS: i64 = 3_600_000;

list_schema!(AlertList, AlertOut);

/// The routes of `/v1/alerts`.
pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/alerts", get(list).post(create))
        .route("/alerts/{id}", get(read))
        .route("/alerts/{id}/acknowledge", post(acknowledge))
}

/// A new alert.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateAlert {
    /// What it is about, 1 to 500 characters; spoken first.
    pub title: String,
    /// `normal` (default; also `low`, `urgent`) or `critical` (also
    /// `persistent_critical`). Critical alerts call during quiet hours.
    pub severity: Option<String>,
    /// More detail, up to 2000 characters; spoken after the title.
    pub message: Option<String>,
    /// `approval` (first call after 300 s), `task_failure` (120 s),
    /// `threshold` (600 s), `reminder` (300 s) or `other` (0 s, the
    /// default).
    pub alert_type: Option<String>,
    /// Seconds before the first call, 0 to 3600: the time to acknowledge
    /// in chat first. Overrides the type's default.
    pub delay_seconds: Option<i64>,
    /// A verified phone of the organization (E.164); its primary phone
    /// when absent.
    pub phone_number: Option<String>,
    /// Minutes until it expires unacknowledged, 1 to 1440; 60 for normal
    /// alerts and 30 for critical ones by default.
    pub expires_in_minutes: Option<i64>,
    /// Any JSON object, returned as given.
    #[schema(value_type = Option<Object>)]
    pub metadata: Option<Value>,
    /// Idempotency key: a repeat returns the alert it created (200).
    pub client_id: Option<String>,
    /// Alias of `client_id`.
    pub idempotency_key: Option<String>,
}

/// An acknowledgement.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Acknowledge {
    /// `api` (default), `chat` or `manual`.
    pub ack_source: Option<String>,
}

fn severity_of(v: &str) -> Option<Severity> {
    match v {
        "normal" | "low" | "urgent" => Some(Severity::Normal),
        "critical" | "persistent_critical" => Some(Severity::Critical),
        _ => None,
    }
}

fn severity_name(s: Severity) -> &'static str {
    match s {
        Severity::Normal => "normal",
        Severity::Critical => "critical",
    }
}

/// The checked request.
struct Checked {
    severity: Severity,
    alert_type: &'static str,
    delay_seconds: i64,
    expires_in_minutes: i64,
    client_id: Option<String>,
}

fn check(body: &CreateAlert, headers: &HeaderMap) -> Result<Checked, ApiError> {
    let mut p = Problems::default();
    let client_id = idempotency_key(
        headers,
        body.client_id.as_ref(),
        body.idempotency_key.as_ref(),
        &mut p.0,
    );
    if body.title.trim().is_empty() || body.title.chars().count() > 500 {
        p.add("title", "must be 1 to 500 characters");
    }
    if body
        .message
        .as_ref()
        .is_some_and(|m| m.chars().count() > 2000)
    {
        p.add("message", "must be at most 2000 characters");
    }
    let severity = match body.severity.as_deref() {
        None => Severity::Normal,
        Some(v) => severity_of(v).unwrap_or_else(|| {
            p.add(
                "severity",
                "must be normal, critical, low, urgent or persistent_critical",
            );
            Severity::Normal
        }),
    };
    let (alert_type, type_delay) = match body.alert_type.as_deref() {
        None => ("other", 0),
        Some(v) => ALERT_TYPES
            .iter()
            .find(|(name, _)| *name == v)
            .copied()
            .unwrap_or_else(|| {
                p.add(
                    "alert_type",
                    "must be approval, task_failure, threshold, reminder or other",
                );
                ("other", 0)
            }),
    };
    let delay_seconds = body.delay_seconds.unwrap_or(type_delay);
    if !(0..=3600).contains(&delay_seconds) {
        p.add("delay_seconds", "must be 0 to 3600");
    }
    let expires_in_minutes = body.expires_in_minutes.unwrap_or(match severity {
        Severity::Normal => 60,
        Severity::Critical => 30,
    });
    if !(1..=1440).contains(&expires_in_minutes) {
        p.add("expires_in_minutes", "must be 1 to 1440");
    }
    if let Some(m) = &body.metadata {
        if !m.is_object() {
            p.add("metadata", "must be a JSON object");
        } else if m.to_string().len() > METADATA_MAX {
            p.add("metadata", format!("must be at most {METADATA_MAX} bytes"));
        }
    }
    if let Some(n) = &body.phone_number
        && let Err(e) = e164("phone_number", n)
    {
        p.0.push(e);
    }
    p.finish()?;
    Ok(Checked {
        severity,
        alert_type,
        delay_seconds,
        expires_in_minutes,
        client_id,
    })
}

/// The verified phone an alert goes to.
async fn phone_for(
    state: &AppState,
    org_id: &str,
    number: Option<&str>,
) -> Result<String, ApiError> {
    let refuse = |msg: &str| ApiError::Validation(vec![FieldError::body("phone_number", msg)]);
    let phone = match number {
        Some(n) => {
            let n = e164("phone_number", n).map_err(|e| ApiError::Validation(vec![e]))?;
            state.store.verified_phone(org_id, &n).await?.ok_or_else(|| {
                refuse("not a verified phone of this organization; add and verify it with POST /v1/phones")
            })?
        }
        None => state
            .store
            .primary_phone(org_id)
            .await?
            .filter(|p| p.verified_at.is_some())
            .ok_or_else(|| {
                refuse("required: the organization has no verified primary phone (POST /v1/phones)")
            })?,
    };
    Ok(phone.id)
}

/// The start of the current calendar month (UTC), unix ms.
fn month_start(now: i64) -> i64 {
    let tz = jiff::tz::TimeZone::UTC;
    jiff::Timestamp::from_millisecond(now)
        .ok()
        .and_then(|t| {
            t.to_zoned(tz.clone())
                .date()
                .first_of_month()
                .to_zoned(tz)
                .ok()
        })
        .map_or(now, |z| z.timestamp().as_millisecond())
}

/// Refuses the alert when the organization or the key is over its hourly
/// rate or the month's quota.
async fn check_limits(
    state: &AppState,
    caller: &Caller,
    policy: &crate::alerts::policy::AlertPolicy,
    now: i64,
) -> Result<(), ApiError> {
    let since = now - HOUR_MS;
    let limits = [
        (None, policy.rate_limit_per_hour),
        (Some(caller.key_id.as_str()), policy.key_rate_limit_per_hour),
    ];
    for (key, limit) in limits {
        let (n, oldest) = state
            .store
            .count_alerts_since(&caller.org_id, key, since)
            .await?;
        if n >= i64::from(limit) {
            // A slot frees when the oldest alert of the hour leaves it.
            let wait = oldest.map_or(HOUR_MS, |o| o + HOUR_MS - now).max(1000);
            return Err(ApiError::RateLimited(std::time::Duration::from_millis(
                wait as u64,
            )));
        }
    }
    if let Some(quota) = policy.monthly_quota {
        let used = state
            .store
            .count_billable_alerts_since(&caller.org_id, month_start(now))
            .await?;
        if used >= i64::from(quota) {
            return Err(ApiError::Forbidden(format!(
                "the organization's monthly alert quota ({quota}) is used up"
            )));
        }
    }
    Ok(())
}

/// Raises an alert: the phone is called after its delay, and again on the
/// retry schedule, until it is acknowledged or expires.
#[utoipa::path(
    post, path = "/v1/alerts", tag = "alerts",
    request_body = CreateAlert,
    params(("Idempotency-Key" = Option<String>, Header, description = "Same as `client_id`")),
    responses(
        (status = 201, description = "Raised", body = AlertOut),
        (status = 200, description = "An earlier request with this `client_id` raised it", body = AlertOut),
        (status = 403, description = "Emergency stop on, or the monthly quota used up", body = crate::api::error::ErrorBody),
        (status = 409, description = "The voice channel is off: no delivery path", body = crate::api::error::ErrorBody),
        (status = 422, description = "A field is invalid, or the phone is not verified", body = crate::api::error::ValidationErrorBody),
        (status = 429, description = "Over the hourly alert limit (Retry-After)", body = crate::api::error::ErrorBody),
    )
)]
pub async fn create(
    State(state): State<AppState>,
    caller: Caller,
    headers: HeaderMap,
    JsonBody(body): JsonBody<CreateAlert>,
) -> Result<(StatusCode, Json<AlertOut>), ApiError> {
    let checked = check(&body, &headers)?;
    let policy = policy(&state, &caller.org_id).await?;
    if policy.emergency_stop {
        return Err(ApiError::Forbidden(
            "the organization's emergency stop is on: no alerts are sent".into(),
        ));
    }
    if !policy.voice_enabled {
        return Err(ApiError::Conflict(
            "the organization's voice channel is off, so an alert has no way to reach anyone"
                .into(),
        ));
    }
    let phone_id = phone_for(&state, &caller.org_id, body.phone_number.as_deref()).await?;
    let now = now_ms();
    if let Some(c) = &checked.client_id
        && let Some(existing) = state.store.alert_by_client_id(&caller.org_id, c).await?
    {
        return Ok((StatusCode::OK, Json(existing.into())));
    }
    check_limits(&state, &caller, &policy, now).await?;
    let mut escalation = Escalation::new(
        checked.severity,
        checked.delay_seconds * 1000,
        now + checked.expires_in_minutes * 60_000,
    );
    // Due at once: the scheduler takes the first step.
    escalation.next_at = Some(now);
    let new = NewAlert {
        key_id: Some(caller.key_id.clone()),
        title: body.title.trim().to_owned(),
        message: body
            .message
            .map(|m| m.trim().to_owned())
            .filter(|m| !m.is_empty()),
        severity: severity_name(checked.severity).to_owned(),
        alert_type: checked.alert_type.to_owned(),
        delay_seconds: checked.delay_seconds,
        phone_id,
        escalation,
        metadata: body.metadata,
        client_id: checked.client_id,
        created_at: now,
    };
    let (alert, created) = state.store.create_alert(&caller.org_id, &new).await?;
    if !created {
        return Ok((StatusCode::OK, Json(alert.into())));
    }
    announce(&state, &alert, "alert.created").await;
    state.alerts.due.notify_one();
    Ok((StatusCode::CREATED, Json(alert.into())))
}

/// One alert with its deliveries and status history, as of one step:
/// read again when a step was stored while they were read, so the status,
/// the history and the deliveries always agree.
async fn full(state: &AppState, org_id: &str, id: &str) -> Result<AlertOut, ApiError> {
    let read = || async {
        state
            .store
            .get_alert(org_id, id)
            .await
            .map_err(not_found(WHAT))
    };
    let mut alert = read().await?;
    let mut tries = 0;
    let (alert, deliveries, history) = loop {
        let deliveries = state.store.alert_deliveries(&alert.id).await?;
        let history = state.store.alert_events(&alert.id).await?;
        let after = read().await?;
        tries += 1;
        if after.escalation_step == alert.escalation_step || tries == 5 {
            break (after, deliveries, history);
        }
        alert = after;
    };
    let mut out = AlertOut::from(alert);
    out.deliveries = Some(deliveries.into_iter().map(Into::into).collect());
    out.history = Some(
        history
            .into_iter()
            .map(|(from, to, at, detail)| HistoryOut {
                from,
                to,
                at,
                detail,
            })
            .collect(),
    );
    Ok(out)
}

/// Reads one alert, with every call attempt and status change.
#[utoipa::path(
    get, path = "/v1/alerts/{id}", tag = "alerts",
    params(("id" = String, Path, description = "Alert id")),
    responses(
        (status = 200, description = "The alert", body = AlertOut),
        (status = 404, description = "No such alert", body = crate::api::error::ErrorBody),
    )
)]
pub async fn read(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<AlertOut>, ApiError> {
    Ok(Json(full(&state, &caller.org_id, &id).await?))
}

const STATUSES: [&str; 7] = [
    "created",
    "waiting_for_primary_ack",
    "escalating_call",
    "snoozed",
    "acknowledged",
    "expired",
    "failed",
];

/// Lists the organization's alerts, newest first.
#[utoipa::path(
    get, path = "/v1/alerts", tag = "alerts",
    params(
        ListParams,
        ("status" = Option<String>, Query, description = "Only alerts in this status"),
        ("severity" = Option<String>, Query, description = "Only `normal` or only `critical` alerts"),
        ("alert_type" = Option<String>, Query, description = "Only alerts of this type"),
        ("phone_id" = Option<String>, Query, description = "Only alerts to this phone"),
    ),
    responses(
        (status = 200, description = "A page of alerts", body = AlertList),
        (status = 422, description = "Bad query parameter", body = crate::api::error::ValidationErrorBody),
    )
)]
pub async fn list(
    State(state): State<AppState>,
    caller: Caller,
    query: QueryParams,
) -> Result<Json<List<AlertOut>>, ApiError> {
    let status = query.choice("status", &STATUSES)?.map(|s| {
        serde_json::from_value::<Status>(Value::String(s.into())).expect("a listed status")
    });
    let types: Vec<&'static str> = ALERT_TYPES.iter().map(|(t, _)| *t).collect();
    let filter = AlertFilter {
        status,
        severity: query
            .choice("severity", &["normal", "critical"])?
            .map(str::to_owned),
        alert_type: query.choice("alert_type", &types)?.map(str::to_owned),
        phone_id: query.text("phone_id").map(str::to_owned),
    };
    listed(
        state
            .store
            .list_alerts(&caller.org_id, &filter, &query.page()?),
    )
    .await
}

/// Acknowledges an alert: escalation stops at once, and a call in
/// progress is hung up. An alert already final is returned unchanged.
#[utoipa::path(
    post, path = "/v1/alerts/{id}/acknowledge", tag = "alerts",
    params(("id" = String, Path, description = "Alert id")),
    request_body = Acknowledge,
    responses(
        (status = 200, description = "The alert after the acknowledgement", body = AlertOut),
        (status = 404, description = "No such alert", body = crate::api::error::ErrorBody),
        (status = 422, description = "Unknown ack_source", body = crate::api::error::ValidationErrorBody),
    )
)]
pub async fn acknowledge(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    JsonBody(body): JsonBody<Acknowledge>,
) -> Result<Json<AlertOut>, ApiError> {
    let via = body.ack_source.unwrap_or_else(|| "api".into());
    if !ACK_SOURCES.contains(&via.as_str()) {
        return Err(ApiError::Validation(vec![FieldError::body(
            "ack_source",
            format!("must be one of {}", ACK_SOURCES.join(", ")),
        )]));
    }
    drive(&state, &caller.org_id, &id, Input::Acknowledged { via })
        .await
        .map_err(not_found(WHAT))?;
    Ok(Json(full(&state, &caller.org_id, &id).await?))
}

/// Stops every alert of `org_id` still escalating (the emergency stop was
/// turned on, or the voice channel off); how many were stopped.
pub async fn stop_all(state: &AppState, org_id: &str, reason: &str) -> Result<usize, StoreError> {
    let open = state.store.open_alerts(org_id).await?;
    let n = open.len();
    for alert in open {
        let input = Input::Stopped {
            reason: reason.to_owned(),
        };
        drive(state, org_id, &alert.id, input).await?;
    }
    Ok(n)
}
