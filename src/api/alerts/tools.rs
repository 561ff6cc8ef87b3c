//! `GET /v1/tools/openai`: the OpenAI function-tool definitions an agent
//! needs to raise alerts and acknowledge them, with the JSON schema of
//! `POST /v1/alerts`, ready to put in a chat completion's `tools`.

use axum::routing::get;
use axum::{Json, Router};
use serde_json::{Value, json};

use super::handlers::{ACK_SOURCES, ALERT_TYPES};
use crate::api::{AppState, Caller};

/// The routes of `/v1/tools`.
pub fn routes() -> Router<AppState> {
    Router::new().route("/tools/openai", get(openai))
}

/// The `raise_alert` tool: arguments are the body of `POST /v1/alerts`.
pub fn raise_alert() -> Value {
    let types: Vec<&str> = ALERT_TYPES.iter().map(|(t, _)| *t).collect();
    json!({
        "type": "function",
        "function": {
            "name": "raise_alert",
            "description": "Phone the user and keep calling until they acknowledge, when chat is \
                not enough: an approval is needed, a job failed, a threshold was crossed. \
                The call speaks the title and message; the user presses 0 to acknowledge or \
                snoozes. Use delay_seconds to give the user time to answer in chat first, \
                then acknowledge the alert yourself with ack_source chat if they do.",
            "parameters": {
                "type": "object",
                "properties": {
                    "title": {"type": "string", "minLength": 1, "maxLength": 500,
                        "description": "What it is about; spoken first. Short and specific."},
                    "message": {"type": "string", "maxLength": 2000,
                        "description": "More detail, spoken after the title."},
                    "severity": {"type": "string", "enum": ["normal", "critical"],
                        "description": "critical calls even during quiet hours."},
                    "alert_type": {"type": "string", "enum": types,
                        "description": "Sets the default delay before the first call: approval 300 s, task_failure 120 s, threshold 600 s, reminder 300 s, other 0 s."},
                    "delay_seconds": {"type": "integer", "minimum": 0, "maximum": 3600,
                        "description": "Seconds to wait before calling (overrides the type's default)."},
                    "phone_number": {"type": "string", "pattern": "^\\+[1-9][0-9]{6,14}$",
                        "description": "A verified phone (E.164); the primary phone when omitted."},
                    "expires_in_minutes": {"type": "integer", "minimum": 1, "maximum": 1440,
                        "description": "Stop calling after this long (60 for normal, 30 for critical by default)."},
                    "metadata": {"type": "object", "description": "Anything to get back with the alert."},
                    "client_id": {"type": "string", "maxLength": 255,
                        "description": "Idempotency key: repeating it returns the same alert."}
                },
                "required": ["title"],
                "additionalProperties": false
            }
        }
    })
}

/// The `acknowledge_alert` tool: stops an alert's escalation.
pub fn acknowledge_alert() -> Value {
    json!({
        "type": "function",
        "function": {
            "name": "acknowledge_alert",
            "description": "Stop an alert's phone calls because the user answered (for example in chat).",
            "parameters": {
                "type": "object",
                "properties": {
                    "alert_id": {"type": "string", "description": "The id raise_alert returned."},
                    "ack_source": {"type": "string", "enum": ACK_SOURCES,
                        "description": "Where the user answered; chat when in the conversation."}
                },
                "required": ["alert_id"],
                "additionalProperties": false
            }
        }
    })
}

/// The OpenAI function-tool definitions for alerts.
#[utoipa::path(
    get, path = "/v1/tools/openai", tag = "alerts",
    responses((status = 200, description = "`{\"tools\": [...]}`: raise_alert and acknowledge_alert", body = Object))
)]
pub async fn openai(_caller: Caller) -> Json<Value> {
    Json(json!({ "tools": [raise_alert(), acknowledge_alert()] }))
}
