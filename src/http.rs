//! The HTTP control plane. Routes read like a table of contents; handlers
//! stay small.

use axum::{Json, Router, routing::get};
use serde::Serialize;

/// Liveness report served at `GET /healthz`.
#[derive(Debug, Serialize)]
pub struct Health {
    /// Always `ok` while the process can answer.
    pub status: &'static str,
    /// Server version.
    pub version: &'static str,
}

/// Builds the router with every route the server exposes.
pub fn router(state: crate::api::AppState) -> Router {
    Router::new()
        .route("/healthz", get(healthz))
        .nest("/v1", crate::api::routes())
        .with_state(state)
}

async fn healthz() -> Json<Health> {
    Json(Health {
        status: "ok",
        version: crate::VERSION,
    })
}
