//! API key authentication: `Authorization: Bearer <key>` or
//! `X-API-Key: <key>` (the two conventions of the hosted products, so their
//! clients work unchanged), or `?token=` for browser WebSockets, which
//! cannot set headers. The rate limits are charged here too, per key and
//! per organization.

use std::time::Instant;

use axum::extract::{FromRef, FromRequestParts};
use axum::http::request::Parts;

use super::error::ApiError;
use super::state::AppState;

/// The organization a request acts for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Caller {
    /// The key's organization: every query is scoped to it.
    pub org_id: String,
    /// The key used.
    pub key_id: String,
}

fn key_from(parts: &Parts) -> Option<String> {
    let header = |name: &str| {
        parts
            .headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::trim)
            .filter(|v| !v.is_empty())
    };
    if let Some(v) = header("authorization") {
        let (scheme, rest) = v.split_once(' ')?;
        return scheme
            .eq_ignore_ascii_case("bearer")
            .then(|| rest.trim().to_owned());
    }
    if let Some(v) = header("x-api-key") {
        return Some(v.to_owned());
    }
    let query = parts.uri.query()?;
    query.split('&').find_map(|pair| {
        let (k, v) = pair.split_once('=')?;
        (k == "token" && !v.is_empty()).then(|| v.to_owned())
    })
}

/// Takes one request from the key's bucket and one from the org's, or
/// neither: a request refused by one limit does not use up the other. The
/// wait is the longer of the two.
fn charge(
    state: &AppState,
    org_id: &str,
    key_id: &str,
    now: Instant,
) -> Result<(), std::time::Duration> {
    // Always key, then org: the one lock order there is.
    let mut keys = state.limiter.lock().unwrap_or_else(|e| e.into_inner());
    let mut orgs = state.org_limiter.lock().unwrap_or_else(|e| e.into_inner());
    match (keys.peek(key_id, now), orgs.peek(org_id, now)) {
        (Ok(()), Ok(())) => {
            keys.check(key_id, now)?;
            orgs.check(org_id, now)
        }
        (Err(a), Err(b)) => Err(a.max(b)),
        (Err(w), Ok(())) | (Ok(()), Err(w)) => Err(w),
    }
}

impl<S> FromRequestParts<S> for Caller
where
    S: Send + Sync,
    AppState: FromRef<S>,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let state = AppState::from_ref(state);
        let key = key_from(parts).ok_or(ApiError::Unauthorized)?;
        let (org_id, key_id) = state
            .store
            .authenticate(&key)
            .await
            .map_err(|e| ApiError::Internal(e.to_string()))?
            .ok_or(ApiError::Unauthorized)?;
        charge(&state, &org_id, &key_id, Instant::now()).map_err(ApiError::RateLimited)?;
        Ok(Caller { org_id, key_id })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::Request;

    fn parts(req: Request<()>) -> Parts {
        req.into_parts().0
    }

    #[test]
    fn keys_come_from_bearer_x_api_key_or_token() {
        let p = parts(
            Request::get("/v1/calls")
                .header("Authorization", "Bearer hl_live_abc")
                .body(())
                .unwrap(),
        );
        assert_eq!(key_from(&p).as_deref(), Some("hl_live_abc"));
        let p = parts(
            Request::get("/v1/calls")
                .header("X-API-Key", "hl_live_def")
                .body(())
                .unwrap(),
        );
        assert_eq!(key_from(&p).as_deref(), Some("hl_live_def"));
        let p = parts(
            Request::get("/v1/ws?call_id=c&token=hl_live_ghi")
                .body(())
                .unwrap(),
        );
        assert_eq!(key_from(&p).as_deref(), Some("hl_live_ghi"));
        let p = parts(
            Request::get("/v1/calls")
                .header("Authorization", "Basic dXNlcjpwdw==")
                .body(())
                .unwrap(),
        );
        assert_eq!(key_from(&p), None);
        assert_eq!(
            key_from(&parts(Request::get("/v1/calls").body(()).unwrap())),
            None
        );
    }
}
