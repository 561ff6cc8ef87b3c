//! `/v1/phones`: the numbers alerts may call. Adding one places a call
//! that reads out a 6-digit code; the number is verified once the code
//! comes back through `POST /v1/phones/{id}/verify`. An alert never calls
//! a number that is not verified, so an API key cannot make Hotline ring
//! a stranger's phone over and over.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::calls::spawn_verification_call;
use super::view::PhoneOut;
use crate::api::error::FieldError;
use crate::api::extract::{JsonBody, QueryParams};
use crate::api::page::{List, ListParams, list_schema};
use crate::api::resources::{found, listed, not_found};
use crate::api::validate::{Problems, callable};
use crate::api::{ApiError, AppState, Caller};
use crate::store::now_ms;
use crate::store::{CodeRefusal, MAX_CODE_ATTEMPTS, Phone};

const WHAT: &str = "phone";

list_schema!(PhoneList, PhoneOut);

/// The routes of `/v1/phones`.
pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/phones", get(list).post(create))
        .route("/phones/{id}", get(read))
        .route("/phones/{id}/verify", post(verify))
        .route("/phones/{id}/verification", post(resend))
        .route("/phones/{id}/primary", post(make_primary))
}

/// A random 6-digit code.
pub fn random_code() -> String {
    format!("{:06}", rand::random_range(0..1_000_000u32))
}

/// A phone to add.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreatePhone {
    /// E.164; Hotline calls it at once with a verification code.
    pub phone_number: String,
    /// A label for people, up to 200 characters.
    pub label: Option<String>,
}

/// A verification code heard on the call.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct VerifyPhone {
    /// The 6 digits.
    pub code: String,
}

/// A phone, and the verification call just placed.
#[derive(Debug, Serialize, ToSchema)]
pub struct PhoneCreated {
    /// The phone.
    #[serde(flatten)]
    pub phone: PhoneOut,
    /// When the code read out on the call stops being accepted (unix ms).
    pub code_expires_at: i64,
}

/// Stores a new code for `phone` and calls it with the code.
async fn send_code(state: &AppState, phone: &Phone) -> Result<i64, ApiError> {
    let code = state.alerts.new_code();
    let expires = now_ms() + (state.config.alerts.code_ttl_secs * 1000) as i64;
    state
        .store
        .set_phone_code(&phone.org_id, &phone.id, &code, expires)
        .await?;
    spawn_verification_call(state, &phone.id, &phone.e164, &code);
    Ok(expires)
}

/// Adds a phone and calls it with a verification code.
#[utoipa::path(
    post, path = "/v1/phones", tag = "phones",
    request_body = CreatePhone,
    responses(
        (status = 201, description = "Added; the verification call is being placed", body = PhoneCreated),
        (status = 409, description = "The organization already has this number", body = crate::api::error::ErrorBody),
        (status = 422, description = "A field is invalid", body = crate::api::error::ValidationErrorBody),
    )
)]
pub async fn create(
    State(state): State<AppState>,
    caller: Caller,
    JsonBody(body): JsonBody<CreatePhone>,
) -> Result<(StatusCode, Json<PhoneCreated>), ApiError> {
    let mut p = Problems::default();
    let number = match callable("phone_number", &body.phone_number, &state.deny) {
        Ok(n) if n.starts_with('+') => n,
        Ok(_) => {
            p.add("phone_number", "must be E.164");
            String::new()
        }
        Err(e) => {
            p.0.push(e);
            String::new()
        }
    };
    p.opt_text("label", body.label.as_deref(), 200);
    p.finish()?;
    let phone = state
        .store
        .create_phone(&caller.org_id, &number, body.label.as_deref())
        .await?;
    let code_expires_at = send_code(&state, &phone).await?;
    Ok((
        StatusCode::CREATED,
        Json(PhoneCreated {
            phone: phone.into(),
            code_expires_at,
        }),
    ))
}

/// Lists the organization's phones, newest first.
#[utoipa::path(
    get, path = "/v1/phones", tag = "phones",
    params(ListParams),
    responses(
        (status = 200, description = "A page of phones", body = PhoneList),
        (status = 422, description = "Bad query parameter", body = crate::api::error::ValidationErrorBody),
    )
)]
pub async fn list(
    State(state): State<AppState>,
    caller: Caller,
    query: QueryParams,
) -> Result<Json<List<PhoneOut>>, ApiError> {
    listed(state.store.list_phones(&caller.org_id, &query.page()?)).await
}

/// Reads one phone.
#[utoipa::path(
    get, path = "/v1/phones/{id}", tag = "phones",
    params(("id" = String, Path, description = "Phone id")),
    responses(
        (status = 200, description = "The phone", body = PhoneOut),
        (status = 404, description = "No such phone", body = crate::api::error::ErrorBody),
    )
)]
pub async fn read(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<PhoneOut>, ApiError> {
    found(WHAT, state.store.get_phone(&caller.org_id, &id)).await
}

/// Confirms the code read out on the verification call.
#[utoipa::path(
    post, path = "/v1/phones/{id}/verify", tag = "phones",
    params(("id" = String, Path, description = "Phone id")),
    request_body = VerifyPhone,
    responses(
        (status = 200, description = "Verified", body = PhoneOut),
        (status = 404, description = "No such phone", body = crate::api::error::ErrorBody),
        (status = 422, description = "Wrong or expired code, or too many wrong codes", body = crate::api::error::ValidationErrorBody),
    )
)]
pub async fn verify(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    JsonBody(body): JsonBody<VerifyPhone>,
) -> Result<Json<PhoneOut>, ApiError> {
    let code = body.code.trim();
    if code.len() != 6 || !code.bytes().all(|b| b.is_ascii_digit()) {
        return Err(ApiError::Validation(vec![FieldError::body(
            "code",
            "must be the 6 digits read out on the call",
        )]));
    }
    let verdict = state
        .store
        .verify_phone(&caller.org_id, &id, code, now_ms())
        .await
        .map_err(not_found(WHAT))?;
    let msg = match verdict {
        Ok(phone) => return Ok(Json(phone.into())),
        Err(CodeRefusal::Wrong) => "wrong code".to_owned(),
        Err(CodeRefusal::Expired) => {
            "no code is pending or it expired; request a new call with POST /v1/phones/{id}/verification".to_owned()
        }
        Err(CodeRefusal::TooManyAttempts) => format!(
            "{MAX_CODE_ATTEMPTS} wrong codes; request a new call with POST /v1/phones/{{id}}/verification"
        ),
    };
    Err(ApiError::Validation(vec![FieldError::body("code", msg)]))
}

/// Places a new verification call with a new code (the old one stops
/// working).
#[utoipa::path(
    post, path = "/v1/phones/{id}/verification", tag = "phones",
    params(("id" = String, Path, description = "Phone id")),
    responses(
        (status = 200, description = "The call is being placed", body = PhoneCreated),
        (status = 404, description = "No such phone", body = crate::api::error::ErrorBody),
        (status = 409, description = "Already verified", body = crate::api::error::ErrorBody),
    )
)]
pub async fn resend(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<PhoneCreated>, ApiError> {
    let phone = state
        .store
        .get_phone(&caller.org_id, &id)
        .await
        .map_err(not_found(WHAT))?;
    if phone.verified_at.is_some() {
        return Err(ApiError::Conflict("the phone is already verified".into()));
    }
    let code_expires_at = send_code(&state, &phone).await?;
    Ok(Json(PhoneCreated {
        phone: phone.into(),
        code_expires_at,
    }))
}

/// Makes a verified phone the organization's primary one: alerts without
/// a `phone_number` call it.
#[utoipa::path(
    post, path = "/v1/phones/{id}/primary", tag = "phones",
    params(("id" = String, Path, description = "Phone id")),
    responses(
        (status = 200, description = "The new primary phone", body = PhoneOut),
        (status = 404, description = "No such phone", body = crate::api::error::ErrorBody),
        (status = 409, description = "Not verified yet", body = crate::api::error::ErrorBody),
    )
)]
pub async fn make_primary(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<PhoneOut>, ApiError> {
    let phone = state
        .store
        .get_phone(&caller.org_id, &id)
        .await
        .map_err(not_found(WHAT))?;
    if phone.verified_at.is_none() {
        return Err(ApiError::Conflict(
            "only a verified phone can be primary".into(),
        ));
    }
    found(WHAT, state.store.set_primary_phone(&caller.org_id, &id)).await
}
