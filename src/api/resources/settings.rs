//! `GET/PATCH /v1/settings`: the organization's own settings. Today its
//! keys for cloud speech and language providers ("bring your own key"):
//! an organization's agents use them unless the agent carries its own, and
//! the server's keys are the fallback. Keys are write-only: reads show
//! whether one is set, never the key. And its alert policy: quiet hours,
//! the voice channel, the emergency stop, retries, rate limits and the
//! monthly quota. And who gets the after-call report emails
//! (`notify_email`).

use axum::extract::State;
use axum::routing::get;
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::{Map, Value, json};
use utoipa::ToSchema;

use crate::alerts::policy::AlertPolicy;
use crate::api::alerts::handlers::stop_all;
use crate::api::alerts::scheduler::stop_reason;
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
    /// The alert policy in effect: the server's defaults, overridden by
    /// what the organization set.
    pub alerts: AlertPolicy,
    /// Who gets the after-call report emails; `null`: the server's
    /// `[notify.email]` `to`.
    pub notify_email: Option<Vec<String>>,
    /// Outbound dialling limits in effect: calls up at once and calls
    /// started per second (the server's `[outbound]` unless set).
    pub outbound: crate::outbound::settings::OutboundLimits,
}

/// A change to the settings: only what is sent changes.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateSettings {
    /// Provider (`openai`, `deepgram`, `elevenlabs`) → its key, or `null`
    /// to remove it.
    #[schema(value_type = Option<Object>)]
    pub provider_keys: Option<Map<String, Value>>,
    /// Alert policy fields to change (see `alerts` in the answer); `null`
    /// for a field returns it to the server's default. Turning
    /// `emergency_stop` on (or `voice_enabled` off) stops every alert
    /// still escalating.
    #[schema(value_type = Option<Object>)]
    pub alerts: Option<Map<String, Value>>,
    /// Addresses for the after-call report emails (a list, or one
    /// address), replacing the server's default recipients; `null` or `[]`
    /// goes back to them.
    #[serde(default, deserialize_with = "crate::api::extract::present")]
    #[schema(value_type = Option<Vec<String>>)]
    pub notify_email: Option<Option<Value>>,
    /// `max_concurrent_calls` (1–1000) and `calls_per_second` (up to
    /// 100); `null` for a field returns it to the server's default.
    #[schema(value_type = Option<Object>)]
    pub outbound: Option<Map<String, Value>>,
}

/// Most report email recipients an organization names.
const MAX_NOTIFY_EMAILS: usize = 10;

/// The recipients a `notify_email` change names (`None`: back to the
/// server's), or the problems with it.
fn notify_emails(value: &Option<Value>, p: &mut Problems) -> Option<Vec<String>> {
    let list: Vec<Value> = match value {
        None | Some(Value::Null) => return None,
        Some(Value::String(s)) => vec![Value::String(s.clone())],
        Some(Value::Array(a)) => a.clone(),
        Some(_) => {
            p.add("notify_email", "must be an email address or a list of them");
            return None;
        }
    };
    if list.len() > MAX_NOTIFY_EMAILS {
        p.add(
            "notify_email",
            format!("at most {MAX_NOTIFY_EMAILS} addresses"),
        );
    }
    let mut out = Vec::new();
    for (i, v) in list.iter().enumerate() {
        match v.as_str().map(str::trim) {
            Some(a) if a.len() <= 254 && a.parse::<lettre::message::Mailbox>().is_ok() => {
                out.push(a.to_owned());
            }
            _ => p.add(&format!("notify_email.{i}"), "not an email address"),
        }
    }
    (!out.is_empty()).then_some(out)
}

fn shown(state: &AppState, settings: &Value) -> SettingsOut {
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
        alerts: AlertPolicy::effective(&state.config.alerts.policy, settings.get("alerts")),
        outbound: state.config.outbound.effective(settings.get("outbound")),
        notify_email: settings
            .get("notify_email")
            .and_then(Value::as_array)
            .map(|l| {
                l.iter()
                    .filter_map(Value::as_str)
                    .map(str::to_owned)
                    .collect()
            }),
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
    Ok(Json(shown(&state, &settings)))
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
    let notify = body.notify_email.as_ref().map(|v| notify_emails(v, &mut p));
    let mut settings = state.store.org_settings(&caller.org_id).await?;
    let before = AlertPolicy::effective(&state.config.alerts.policy, settings.get("alerts"));
    let alerts = body
        .alerts
        .as_ref()
        .map(|changes| alert_changes(&state, &settings, changes, &mut p));
    if let Some(changes) = &body.outbound {
        for (field, msg) in crate::outbound::settings::OutboundLimits::check_changes(changes) {
            p.add(&format!("outbound.{field}"), msg);
        }
    }
    p.finish()?;
    if let Some(changes) = body.outbound {
        let m = settings.as_object_mut().expect("settings are an object");
        let stored = m.entry("outbound").or_insert_with(|| json!({}));
        if !stored.is_object() {
            *stored = json!({});
        }
        let stored = stored.as_object_mut().expect("just made an object");
        for (name, value) in changes {
            if value.is_null() {
                stored.remove(&name);
            } else {
                stored.insert(name, value);
            }
        }
    }
    if let Some(stored) = alerts {
        settings
            .as_object_mut()
            .expect("settings are an object")
            .insert("alerts".into(), stored);
    }
    if let Some(notify) = notify {
        let m = settings.as_object_mut().expect("settings are an object");
        match notify {
            Some(list) => {
                m.insert("notify_email".into(), json!(list));
            }
            None => {
                m.remove("notify_email");
            }
        }
    }
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
    let after = shown(&state, &settings);
    if let Some(reason) = stop_reason(&after.alerts)
        && stop_reason(&before).is_none()
    {
        let stopped = stop_all(&state, &caller.org_id, &reason).await?;
        tracing::info!(org = %caller.org_id, stopped, "alerts stopped by the organization's policy");
    }
    Ok(Json(after))
}

/// The organization's stored alert overrides after `changes` (a field set
/// to `null` goes back to the server default), checked as a whole.
fn alert_changes(
    state: &AppState,
    settings: &Value,
    changes: &Map<String, Value>,
    p: &mut Problems,
) -> Value {
    let mut stored = match settings.get("alerts") {
        Some(Value::Object(m)) => m.clone(),
        _ => Map::new(),
    };
    for (name, value) in changes {
        if value.is_null() {
            stored.remove(name);
        } else {
            stored.insert(name.clone(), value.clone());
        }
    }
    // Merged over the defaults and parsed strictly: an unknown field or a
    // wrong type is the client's mistake, not something to skip.
    let mut merged =
        serde_json::to_value(&state.config.alerts.policy).expect("the policy serializes");
    merged
        .as_object_mut()
        .expect("the policy is an object")
        .extend(stored.clone());
    match serde_json::from_value::<AlertPolicy>(merged) {
        Ok(policy) => {
            for (field, msg) in policy.check() {
                p.add(&format!("alerts.{field}"), msg);
            }
        }
        Err(e) => p.add("alerts", e.to_string()),
    }
    Value::Object(stored)
}
