//! Every API error is `{"detail": ...}` with the right status, as the
//! hosted products in this market answer: a string for most errors, and
//! for validation (422) a list naming each field at fault, FastAPI-style
//! (`[{"loc": ["body", "to"], "msg": "must be E.164"}]`), which is what
//! clients written for those products already parse.

use std::time::Duration;

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use serde_json::json;

/// One field at fault in a request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FieldError {
    /// Where: `["body", "to"]`, `["query", "limit"]`, `["path", "id"]`.
    pub loc: Vec<String>,
    /// What is wrong, for a human.
    pub msg: String,
}

impl FieldError {
    /// A problem with body field `field` (dotted paths become segments:
    /// `metadata.key` → `["body", "metadata", "key"]`).
    pub fn body(field: &str, msg: impl Into<String>) -> Self {
        Self::at("body", field, msg)
    }

    /// A problem with query parameter `name`.
    pub fn query(name: &str, msg: impl Into<String>) -> Self {
        Self::at("query", name, msg)
    }

    fn at(place: &str, field: &str, msg: impl Into<String>) -> Self {
        let mut loc = vec![place.to_owned()];
        loc.extend(
            field
                .split('.')
                .filter(|s| !s.is_empty())
                .map(str::to_owned),
        );
        FieldError {
            loc,
            msg: msg.into(),
        }
    }
}

/// An error answer of the API.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ApiError {
    /// 401: no key, or a key that is unknown or revoked.
    Unauthorized,
    /// 403: the key may not do this.
    Forbidden(String),
    /// 404: no such resource in the caller's organization (also for
    /// another organization's resources, so existence does not leak).
    NotFound(&'static str),
    /// 409: the request conflicts with the resource's state.
    Conflict(String),
    /// 413: the request body is larger than the limit, in bytes.
    PayloadTooLarge(usize),
    /// 422: one or more fields are invalid.
    Validation(Vec<FieldError>),
    /// 429: too many requests; come back after this long.
    RateLimited(Duration),
    /// 502: a provider this request needed (a cloud voice) failed; the
    /// detail says how.
    BadGateway(String),
    /// 503: the server cannot take this now (draining, call limit).
    Unavailable {
        /// Why, for a human.
        detail: String,
        /// Suggested wait.
        retry_after: Option<Duration>,
    },
    /// 500: a fault of ours; the detail is logged, not sent.
    Internal(String),
}

impl ApiError {
    /// A single-field validation error on the body.
    pub fn field(field: &str, msg: impl Into<String>) -> Self {
        ApiError::Validation(vec![FieldError::body(field, msg)])
    }

    /// The HTTP status.
    pub fn status(&self) -> StatusCode {
        match self {
            ApiError::Unauthorized => StatusCode::UNAUTHORIZED,
            ApiError::Forbidden(_) => StatusCode::FORBIDDEN,
            ApiError::NotFound(_) => StatusCode::NOT_FOUND,
            ApiError::Conflict(_) => StatusCode::CONFLICT,
            ApiError::PayloadTooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            ApiError::Validation(_) => StatusCode::UNPROCESSABLE_ENTITY,
            ApiError::RateLimited(_) => StatusCode::TOO_MANY_REQUESTS,
            ApiError::BadGateway(_) => StatusCode::BAD_GATEWAY,
            ApiError::Unavailable { .. } => StatusCode::SERVICE_UNAVAILABLE,
            ApiError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    /// The JSON body.
    pub fn body(&self) -> serde_json::Value {
        match self {
            ApiError::Unauthorized => json!({"detail": "missing or invalid API key"}),
            ApiError::Forbidden(d) | ApiError::Conflict(d) | ApiError::BadGateway(d) => {
                json!({ "detail": d })
            }
            ApiError::NotFound(what) => json!({ "detail": format!("{what} not found") }),
            ApiError::PayloadTooLarge(limit) => json!({
                "detail": format!("request body is larger than the limit of {limit} bytes")
            }),
            ApiError::Validation(errors) => json!({ "detail": errors }),
            ApiError::RateLimited(_) => json!({"detail": "rate limit exceeded"}),
            ApiError::Unavailable { detail, .. } => json!({ "detail": detail }),
            ApiError::Internal(_) => json!({"detail": "internal error"}),
        }
    }
}

/// Whole seconds for `Retry-After`, never 0 (a client would retry at once).
fn retry_secs(d: Duration) -> u64 {
    d.as_secs() + u64::from(d.subsec_nanos() > 0)
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        if let ApiError::Internal(why) = &self {
            tracing::error!(error = %why, "API request failed");
        }
        let mut response = (self.status(), axum::Json(self.body())).into_response();
        let retry = match &self {
            ApiError::RateLimited(d) => Some(*d),
            ApiError::Unavailable { retry_after, .. } => *retry_after,
            _ => None,
        };
        if let Some(d) = retry
            && let Ok(v) = HeaderValue::from_str(&retry_secs(d).max(1).to_string())
        {
            response.headers_mut().insert(header::RETRY_AFTER, v);
        }
        if matches!(self, ApiError::Unauthorized) {
            response
                .headers_mut()
                .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        }
        response
    }
}

impl From<crate::store::StoreError> for ApiError {
    fn from(e: crate::store::StoreError) -> Self {
        use crate::store::StoreError;
        match e {
            StoreError::NotFound => ApiError::NotFound("resource"),
            StoreError::Conflict(field) => ApiError::Conflict(format!("{field} already exists")),
            StoreError::Invalid(field, msg) => ApiError::field(field, msg),
            StoreError::Db(e) => ApiError::Internal(e.to_string()),
        }
    }
}

/// A `{"detail": "..."}` error, as documented in the OpenAPI document.
#[derive(Debug, utoipa::ToSchema)]
#[allow(dead_code)]
pub struct ErrorBody {
    /// What went wrong.
    pub detail: String,
}

/// A field at fault, as documented in the OpenAPI document.
#[derive(Debug, utoipa::ToSchema)]
#[allow(dead_code)]
pub struct FieldErrorBody {
    /// Where: `["body", "name"]`, `["query", "limit"]`.
    pub loc: Vec<String>,
    /// What is wrong.
    pub msg: String,
}

/// A 422 answer, as documented in the OpenAPI document.
#[derive(Debug, utoipa::ToSchema)]
#[allow(dead_code)]
pub struct ValidationErrorBody {
    /// Every field at fault.
    pub detail: Vec<FieldErrorBody>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn validation_errors_name_the_field() {
        let e = ApiError::Validation(vec![
            FieldError::body("to", "must be E.164"),
            FieldError::body("metadata.color", "too long"),
            FieldError::query("limit", "must be 1-100"),
        ]);
        assert_eq!(e.status(), StatusCode::UNPROCESSABLE_ENTITY);
        assert_eq!(
            e.body(),
            json!({"detail": [
                {"loc": ["body", "to"], "msg": "must be E.164"},
                {"loc": ["body", "metadata", "color"], "msg": "too long"},
                {"loc": ["query", "limit"], "msg": "must be 1-100"},
            ]})
        );
    }

    #[test]
    fn retry_after_is_whole_seconds_rounded_up() {
        let r = ApiError::RateLimited(Duration::from_millis(1200)).into_response();
        assert_eq!(r.status(), StatusCode::TOO_MANY_REQUESTS);
        assert_eq!(r.headers()[header::RETRY_AFTER], "2");
        let r = ApiError::Unavailable {
            detail: "draining".into(),
            retry_after: Some(Duration::ZERO),
        }
        .into_response();
        assert_eq!(r.headers()[header::RETRY_AFTER], "1");
        let r = ApiError::Unauthorized.into_response();
        assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
        assert!(r.headers().contains_key(header::WWW_AUTHENTICATE));
        assert_eq!(
            ApiError::NotFound("call").body(),
            json!({"detail": "call not found"})
        );
        // Internal details stay in the log.
        assert_eq!(
            ApiError::Internal("db on fire".into()).body(),
            json!({"detail": "internal error"})
        );
    }
}
