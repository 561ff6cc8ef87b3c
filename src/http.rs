//! The HTTP control plane. Routes read like a table of contents; handlers
//! stay small.
//!
//! Besides the API under `/v1`: `/healthz` (the process answers),
//! `/readyz` (the database answers too), `/metrics` (Prometheus),
//! `/openapi.json` (the API described) and `/docs` (that description as a
//! page). These need no key: they are for operators and tools, and carry
//! no tenant's data.

use std::time::Instant;

use axum::extract::{DefaultBodyLimit, MatchedPath, Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{Html, IntoResponse, Response};
use axum::{Json, Router, routing::get};
use serde::Serialize;
use utoipa::ToSchema;

use crate::api::extract::BodyLimit;
use crate::api::metrics::Gauges;
use crate::api::{ApiError, AppState};

/// Liveness report served at `GET /healthz`.
#[derive(Debug, Serialize, ToSchema)]
pub struct Health {
    /// Always `ok` while the process can answer.
    pub status: &'static str,
    /// Server version.
    pub version: &'static str,
}

/// Route label for requests no route matched: one series for all of them,
/// so scanners probing random paths cannot blow up the metric's
/// cardinality.
pub const UNMATCHED_ROUTE: &str = "unmatched";

/// Builds the router with every route the server exposes.
pub fn router(state: AppState) -> Router {
    Router::new()
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics))
        .route("/openapi.json", get(openapi_json))
        .route("/docs", get(docs))
        .nest("/v1", crate::api::routes())
        // Extractors stop reading a body at the limit; `limit_body` refuses
        // a declared length over it before any handler runs.
        .layer(DefaultBodyLimit::max(state.config.api.max_body_bytes))
        .layer(middleware::from_fn_with_state(state.clone(), limit_body))
        .layer(middleware::from_fn_with_state(
            state.clone(),
            record_latency,
        ))
        .with_state(state)
}

/// Refuses a request whose `Content-Length` is over `api.max_body_bytes`
/// with 413 in the API's error format (axum's own answer is plain text),
/// without reading the body, and hands the limit to the body extractors
/// ([`BodyLimit`]) for bodies sent without a length.
async fn limit_body(State(state): State<AppState>, mut req: Request, next: Next) -> Response {
    let limit = state.config.api.max_body_bytes;
    let declared = req
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok());
    if declared.is_some_and(|n| n > limit as u64) {
        return ApiError::PayloadTooLarge(limit).into_response();
    }
    req.extensions_mut().insert(BodyLimit(limit));
    next.run(req).await
}

/// Records each request's latency under its route template
/// (`/v1/agents/{id}`), never the raw path, so ids do not make series.
async fn record_latency(State(state): State<AppState>, req: Request, next: Next) -> Response {
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map_or_else(|| UNMATCHED_ROUTE.to_owned(), |m| m.as_str().to_owned());
    let started = Instant::now();
    let response = next.run(req).await;
    state.metrics.http.observe(
        &[
            ("route", &route),
            ("status", &format!("{}xx", response.status().as_u16() / 100)),
        ],
        started.elapsed(),
    );
    response
}

/// Liveness: the process answers.
#[utoipa::path(
    get, path = "/healthz", tag = "operations",
    responses((status = 200, description = "Alive", body = Health))
)]
pub async fn healthz() -> Json<Health> {
    Json(Health {
        status: "ok",
        version: crate::VERSION,
    })
}

/// Readiness: the database answers a query.
#[utoipa::path(
    get, path = "/readyz", tag = "operations",
    responses(
        (status = 200, description = "Ready", body = Health),
        (status = 503, description = "The database is unreachable", body = crate::api::error::ErrorBody),
    )
)]
pub async fn readyz(State(state): State<AppState>) -> Result<Json<Health>, ApiError> {
    if let Err(e) = state.store.ping().await {
        tracing::warn!(error = %e, "not ready: database unreachable");
        return Err(ApiError::Unavailable {
            detail: "database unreachable".into(),
            retry_after: Some(std::time::Duration::from_secs(5)),
        });
    }
    Ok(Json(Health {
        status: "ready",
        version: crate::VERSION,
    }))
}

/// Prometheus metrics in the text format: live calls, calls by status,
/// HTTP latency, webhook deliveries and the outbox, WebSocket subscribers.
#[utoipa::path(
    get, path = "/metrics", tag = "operations",
    responses((status = 200, description = "Prometheus text exposition", body = String, content_type = "text/plain"))
)]
pub async fn metrics(State(state): State<AppState>) -> Response {
    // An unreachable database leaves the outbox gauge out rather than
    // failing the scrape: the other metrics matter most exactly then.
    let webhook_pending = match state.store.count_pending_deliveries().await {
        Ok(n) => Some(n),
        Err(e) => {
            tracing::warn!(error = %e, "metrics: cannot count pending webhook deliveries");
            None
        }
    };
    let gauges = Gauges {
        live_calls: state.engine.as_ref().map_or(0, |e| e.registry().len()),
        ws_subscribers: state.hub.subscribers(),
        webhook_pending,
    };
    let mut response = state.metrics.render(gauges).into_response();
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"),
    );
    response
}

async fn openapi_json() -> Json<serde_json::Value> {
    Json(crate::api::openapi::document())
}

/// The API reference page: self-contained (no script or style from
/// elsewhere), it renders `/openapi.json` in the browser.
const DOCS_PAGE: &str = include_str!("api/docs.html");

async fn docs() -> impl IntoResponse {
    (
        StatusCode::OK,
        [(
            header::CONTENT_SECURITY_POLICY,
            // The page may only talk to this server.
            "default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; connect-src 'self'",
        )],
        Html(DOCS_PAGE),
    )
}
