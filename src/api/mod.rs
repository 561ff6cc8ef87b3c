//! The control plane's HTTP API under `/v1`: conventions shared by every
//! endpoint (errors, validation, rate limits) and webhook signing.

pub mod error;
pub mod live;
pub mod metrics;
pub mod ratelimit;
pub mod signing;
pub mod validate;

pub use error::{ApiError, FieldError};
