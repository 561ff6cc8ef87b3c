//! `GET/PATCH /v1/settings`: the organization's own settings. Today its
//! keys for cloud speech and language providers ("bring your own key"):
//! an organization's agents use them unless the agent carries its own, and
//! the server's keys are the fallback. Keys are write-only: reads show
//! whether one is set, never the key.

use axum::extract::State;
use axum::routing::get;
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::{Map, Value, json};
use utoipa::ToSchema;

use crate::api::extract::JsonBody;
use crate::api::validate::Problems;
use crate::api::{ApiError, AppState, Caller};

/// Providers an organization may hold a key for.
pub const PROVIDERS: [&str; 3] = ["openai", "deepgram", "elevenlabs"];
/// Longest key accepted.
const KEY_MAX: usize = 512;
/// What a set key reads as.
const SET: &str = "********";

/// The routes of `/v1/settings`.
pub fn routes() -> Router<AppState> {
    Router::new().route("/settings", get(read).patch(update))
}

/// The settings as shown.
#[derive(Debug, serde::Serialize, ToSchema)]
pub struct SettingsOut {
    /// Provider → `"********"` when a key is set, `null` when not.
    #[schema(value_type = Object)]
    pub provider_keys: Value,
}

/// A change to the settings: only what is sent changes.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateSettings {
    /// Provider (`openai`, `deepgram`, `elevenlabs`) → its key, or `null`
    /// to remove it.
    #[schema(value_type = Option<Object>)]
    pub provider_keys: Option<Map<String, Value>>,
}

fn shown(settings: &Value) -> SettingsOut {
    let keys = settings.get("provider_keys");
    let mut out = Map::new();
    for p in PROVIDERS {
        let set = keys
            .and_then(|k| k.get(p))
            .and_then(Value::as_str)
            .is_some();
        out.insert(p.into(), if set { json!(SET) } else { Value::Null });
    }
    SettingsOut {
        provider_keys: Value::Object(out),
    }
}

/// The organization's settings.
#[utoipa::path(
    get, path = "/v1/settings", tag = "settings",
    responses((status = 200, description = "The settings", body = SettingsOut))
)]
pub async fn read(
    State(state): State<AppState>,
    caller: Caller,
) -> Result<Json<SettingsOut>, ApiError> {
    let settings = state.store.org_settings(&caller.org_id).await?;
    Ok(Json(shown(&settings)))
}

/// Changes the organization's settings.
#[utoipa::path(
    patch, path = "/v1/settings", tag = "settings",
    request_body = UpdateSettings,
    responses(
        (status = 200, description = "The settings after the change", body = SettingsOut),
        (status = 422, description = "A field is invalid", body = crate::api::error::ValidationErrorBody),
    )
)]
pub async fn update(
    State(state): State<AppState>,
    caller: Caller,
    JsonBody(body): JsonBody<UpdateSettings>,
) -> Result<Json<SettingsOut>, ApiError> {
    let mut p = Problems::default();
    if let Some(keys) = &body.provider_keys {
        for (name, value) in keys {
            let field = format!("provider_keys.{name}");
            if !PROVIDERS.contains(&name.as_str()) {
                p.add(
                    &field,
                    format!("unknown provider; one of {}", PROVIDERS.join(", ")),
                );
                continue;
            }
            match value {
                Value::Null => {}
                Value::String(k) if k == SET => {
                    p.add(
                        &field,
                        "give the key itself; it is not shown after it is saved",
                    );
                }
                Value::String(k) if !k.trim().is_empty() && k.len() <= KEY_MAX => {}
                _ => p.add(
                    &field,
                    format!("must be a key of 1 to {KEY_MAX} bytes, or null"),
                ),
            }
        }
    }
    p.finish()?;
    let mut settings = state.store.org_settings(&caller.org_id).await?;
    if let Some(keys) = body.provider_keys {
        let stored = settings
            .as_object_mut()
            .expect("settings are an object")
            .entry("provider_keys")
            .or_insert_with(|| json!({}));
        if !stored.is_object() {
            *stored = json!({});
        }
        let stored = stored.as_object_mut().expect("just made an object");
        for (name, value) in keys {
            match value {
                Value::String(k) => {
                    stored.insert(name, Value::String(k.trim().to_owned()));
                }
                _ => {
                    stored.remove(&name);
                }
            }
        }
    }
    state
        .store
        .set_org_settings(&caller.org_id, &settings)
        .await?;
    Ok(Json(shown(&settings)))
}
