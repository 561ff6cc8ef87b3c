//! After-call reports (see [`crate::reports`]): `GET
//! /v1/calls/{id}/report` for one call's, `GET /v1/reports` for the
//! organization's, filtered.
//!
//! A report exists for every AI call: `pending` from the call's end while
//! it is being made (the read answers 202 `{"status": "pending"}`), then
//! `ready` (200, the report) or `failed` (200, with `error`). A call that
//! had no agent has none (404).

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use serde_json::json;

use super::{listed, not_found};
use crate::api::error::FieldError;
use crate::api::extract::QueryParams;
use crate::api::page::{List, ListParams, list_schema};
use crate::api::{ApiError, AppState, Caller};
use crate::store::{CallReport, INTENTS, ReportFilter, ReportStatus, URGENCIES};

/// The routes of reports.
pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/calls/{id}/report", get(read))
        .route("/reports", get(list))
}

list_schema!(ReportList, CallReport);

/// The answer while a report is being made.
#[derive(Debug, serde::Serialize, utoipa::ToSchema)]
pub struct ReportPending {
    /// Always `pending`.
    pub status: ReportStatus,
}

/// The report of a call: 202 while it is being made, 200 once it is
/// ready (or failed, with `error`).
#[utoipa::path(
    get, path = "/v1/calls/{id}/report", tag = "reports",
    params(("id" = String, Path, description = "Call id")),
    responses(
        (status = 200, description = "The report, ready or failed", body = CallReport),
        (status = 202, description = "Being made; ask again shortly", body = ReportPending),
        (status = 404, description = "No such call, or the call had no agent (no report)", body = crate::api::error::ErrorBody),
    )
)]
pub async fn read(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    state
        .store
        .get_call(&caller.org_id, &id)
        .await
        .map_err(not_found("call"))?;
    let report = state
        .store
        .get_call_report(&caller.org_id, &id)
        .await
        .map_err(not_found("report"))?;
    Ok(match report.status {
        ReportStatus::Pending => {
            (StatusCode::ACCEPTED, Json(json!({"status": "pending"}))).into_response()
        }
        _ => Json(report).into_response(),
    })
}

/// The organization's reports, newest first, filtered.
#[utoipa::path(
    get, path = "/v1/reports", tag = "reports",
    params(
        ListParams,
        ("intent" = Option<String>, Query, description = "service_request, quote_request, scheduling, complaint, spam, general_inquiry or other"),
        ("urgency" = Option<String>, Query, description = "high, medium or low"),
        ("spam" = Option<bool>, Query, description = "Only spam (`true`) or only not spam (`false`)"),
        ("contact_id" = Option<String>, Query, description = "Reports of calls with this contact"),
        ("created_after" = Option<i64>, Query, description = "Unix ms, inclusive"),
        ("created_before" = Option<i64>, Query, description = "Unix ms, exclusive"),
    ),
    responses(
        (status = 200, description = "A page of reports (pending ones included)", body = ReportList),
        (status = 422, description = "Bad query parameter", body = crate::api::error::ValidationErrorBody),
    )
)]
pub async fn list(
    State(state): State<AppState>,
    caller: Caller,
    query: QueryParams,
) -> Result<Json<List<CallReport>>, ApiError> {
    let mut problems: Vec<FieldError> = Vec::new();
    let mut take = |r: Result<Option<&'static str>, ApiError>| match r {
        Ok(v) => Ok(v),
        Err(ApiError::Validation(e)) => {
            problems.extend(e);
            Ok(None)
        }
        Err(e) => Err(e),
    };
    let intent = take(query.choice("intent", &INTENTS))?;
    let urgency = take(query.choice("urgency", &URGENCIES))?;
    let spam = take(query.choice("spam", &["true", "false"]))?;
    let mut int = |name: &str| match query.int(name) {
        Ok(v) => Ok(v),
        Err(ApiError::Validation(e)) => {
            problems.extend(e);
            Ok(None)
        }
        Err(e) => Err(e),
    };
    let created_after = int("created_after")?;
    let created_before = int("created_before")?;
    let page = query.page()?;
    if !problems.is_empty() {
        return Err(ApiError::Validation(problems));
    }
    let filter = ReportFilter {
        intent: intent.map(str::to_owned),
        urgency: urgency.map(str::to_owned),
        spam: spam.map(|s| s == "true"),
        contact_id: query.text("contact_id").map(str::to_owned),
        created_after,
        created_before,
    };
    listed(state.store.list_reports(&caller.org_id, &filter, &page)).await
}
