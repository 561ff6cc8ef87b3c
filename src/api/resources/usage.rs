//! `GET /v1/usage`: calls and minutes by period and direction. A report,
//! not a list: it has no pages.

use axum::extract::State;
use axum::routing::get;
use axum::{Json, Router};
use serde::Serialize;
use utoipa::{IntoParams, ToSchema};

use crate::api::error::FieldError;
use crate::api::extract::QueryParams;
use crate::api::{ApiError, AppState, Caller};
use crate::call::CallDirection;
use crate::store::{UsagePeriod, UsageQuery, UsageRow, day_start_ms, now_ms};

const DAY_MS: i64 = 86_400_000;

/// The routes of `/v1/usage`.
pub fn routes() -> Router<AppState> {
    Router::new().route("/usage", get(usage))
}

/// Query parameters of `GET /v1/usage`.
#[derive(Debug, IntoParams)]
#[into_params(parameter_in = Query)]
#[allow(dead_code)]
pub struct UsageParams {
    /// `day` (default) or `month`, in UTC.
    pub period: Option<String>,
    /// Calls created at or after this time, unix ms. Default: the start of
    /// the UTC day 29 days before `created_before` for `day`, 365 days
    /// before for `month`.
    pub created_after: Option<i64>,
    /// Calls created before this time, unix ms. Default: now.
    pub created_before: Option<i64>,
}

/// Totals for one period and direction.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct UsageRowOut {
    /// `YYYY-MM-DD` or `YYYY-MM` (UTC).
    pub period: String,
    /// `inbound` or `outbound`.
    #[schema(value_type = String)]
    pub direction: CallDirection,
    /// Calls created.
    pub calls: i64,
    /// Billable minutes: each call's connected time rounded up to a minute.
    pub minutes: i64,
    /// Connected time, ms.
    pub duration_ms: i64,
}

impl From<UsageRow> for UsageRowOut {
    fn from(r: UsageRow) -> Self {
        UsageRowOut {
            period: r.period,
            direction: r.direction,
            calls: r.calls,
            minutes: r.minutes,
            duration_ms: r.duration_ms,
        }
    }
}

/// The usage report.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct UsageReport {
    /// `day` or `month`.
    pub period: String,
    /// Start of the range, unix ms (inclusive).
    pub created_after: i64,
    /// End of the range, unix ms (exclusive).
    pub created_before: i64,
    /// One row per period and direction that had calls, oldest first.
    pub data: Vec<UsageRowOut>,
    /// Calls in the whole range.
    pub total_calls: i64,
    /// Minutes in the whole range.
    pub total_minutes: i64,
}

/// Calls and minutes by period and direction.
#[utoipa::path(
    get, path = "/v1/usage", tag = "usage",
    params(UsageParams),
    responses(
        (status = 200, description = "The report", body = UsageReport),
        (status = 422, description = "Bad query parameter", body = crate::api::error::ValidationErrorBody),
    )
)]
pub async fn usage(
    State(state): State<AppState>,
    caller: Caller,
    query: QueryParams,
) -> Result<Json<UsageReport>, ApiError> {
    let period_name = query.choice("period", &["day", "month"])?.unwrap_or("day");
    let period = if period_name == "month" {
        UsagePeriod::Month
    } else {
        UsagePeriod::Day
    };
    let created_before = query.int("created_before")?.unwrap_or_else(now_ms);
    let created_after = query.int("created_after")?.unwrap_or_else(|| {
        let days = if period == UsagePeriod::Month {
            365
        } else {
            29
        };
        day_start_ms(created_before) - days * DAY_MS
    });
    if created_before <= created_after {
        return Err(ApiError::Validation(vec![FieldError::query(
            "created_before",
            "must be after created_after",
        )]));
    }
    let rows = state
        .store
        .usage(
            &caller.org_id,
            &UsageQuery {
                period,
                created_after,
                created_before,
            },
        )
        .await?;
    let data: Vec<UsageRowOut> = rows.into_iter().map(UsageRowOut::from).collect();
    Ok(Json(UsageReport {
        period: period_name.to_owned(),
        created_after,
        created_before,
        total_calls: data.iter().map(|r| r.calls).sum(),
        total_minutes: data.iter().map(|r| r.minutes).sum(),
        data,
    }))
}
