//! The control plane's HTTP API under `/v1`: conventions shared by every
//! endpoint (errors, validation, rate limits) and webhook signing.

pub mod alerts;
pub mod auth;
pub mod calls;
pub mod error;
pub mod extract;
pub mod live;
pub mod metrics;
pub mod openapi;
pub mod page;
pub mod ratelimit;
pub mod resources;
pub mod signing;
pub mod state;
pub mod validate;

pub use auth::Caller;
pub use error::{ApiError, FieldError};
pub use state::AppState;

/// Everything under `/v1`.
pub fn routes() -> axum::Router<AppState> {
    axum::Router::new()
        .merge(resources::routes())
        .merge(calls::routes())
        .merge(alerts::routes())
}
