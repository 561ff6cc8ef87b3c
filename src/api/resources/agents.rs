//! `/v1/agents`: the prompt, voice and model settings AI calls run with.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::routing::get;
use axum::{Json, Router};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::ToSchema;

use super::{found, listed, not_found};
use crate::api::extract::{JsonBody, QueryParams, present};
use crate::api::page::{List, ListParams, list_schema};
use crate::api::validate::{DenyList, Problems, callable, not_null};
use crate::api::{ApiError, AppState, Caller};
use crate::store::{Agent, AgentUpdate, NewAgent};

/// What a missing one is called in a 404.
const WHAT: &str = "agent";

/// Longest name, voice name or similar short field, in characters.
pub const SHORT: usize = 200;
/// Longest prompt or message, in characters.
pub const LONG: usize = 100_000;
/// Longest language tag (RFC 5646 §4.4.1 recommends supporting 35).
const LANGUAGE_MAX: usize = 35;
/// Longest call an agent may be configured for: a day.
pub const MAX_DURATION_SECS: i64 = 86_400;

/// The routes of `/v1/agents`.
pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/agents", get(list).post(create))
        .route("/agents/{id}", get(read).patch(update).delete(remove))
}

/// An agent as the API shows it.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct AgentOut {
    /// `agt_` and 24 hex digits.
    pub id: String,
    /// Display name.
    pub name: String,
    /// The system prompt.
    pub system_prompt: String,
    /// Said when the call connects; the agent waits for the caller if null.
    pub first_message: Option<String>,
    /// Text-to-speech voice name.
    pub voice: Option<String>,
    /// BCP 47 language tag (`en-US`) for speech recognition and synthesis.
    pub language: Option<String>,
    /// Provider and model settings (`{"provider": "openai", "model": "…",
    /// "temperature": 0.7}`).
    #[schema(value_type = Object)]
    pub model: Value,
    /// Tool definitions the agent may call.
    #[schema(value_type = Vec<Object>)]
    pub tools: Value,
    /// Left as a message when the call reaches voicemail.
    pub voicemail_message: Option<String>,
    /// Where the `transfer` tool sends the caller (E.164).
    pub transfer_number: Option<String>,
    /// Hang up after this many seconds.
    pub max_duration_secs: Option<i64>,
    /// Creation time, unix ms.
    pub created_at: i64,
    /// Last change, unix ms.
    pub updated_at: i64,
}

impl From<Agent> for AgentOut {
    fn from(a: Agent) -> Self {
        AgentOut {
            id: a.id,
            name: a.name,
            system_prompt: a.system_prompt,
            first_message: a.first_message,
            voice: a.voice,
            language: a.language,
            model: a.model,
            tools: redact_tools(a.tools),
            voicemail_message: a.voicemail_message,
            transfer_number: a.transfer_number,
            max_duration_secs: a.max_duration_secs,
            created_at: a.created_at,
            updated_at: a.updated_at,
        }
    }
}

list_schema!(AgentList, AgentOut);

/// `POST /v1/agents`.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateAgent {
    /// Display name, 1 to 200 characters.
    pub name: String,
    /// The system prompt, 1 to 100 000 characters.
    pub system_prompt: String,
    /// Said when the call connects.
    #[serde(default)]
    pub first_message: Option<String>,
    /// Text-to-speech voice name.
    #[serde(default)]
    pub voice: Option<String>,
    /// BCP 47 language tag (`en`, `en-US`, `pt-BR`).
    #[serde(default)]
    pub language: Option<String>,
    /// Provider and model settings, a JSON object (`{}` if omitted).
    #[serde(default)]
    #[schema(value_type = Option<Object>)]
    pub model: Option<Value>,
    /// Tool definitions, an array of objects (`[]` if omitted).
    #[serde(default)]
    #[schema(value_type = Option<Vec<Object>>)]
    pub tools: Option<Value>,
    /// Left as a message when the call reaches voicemail.
    #[serde(default)]
    pub voicemail_message: Option<String>,
    /// E.164 number the `transfer` tool sends the caller to.
    #[serde(default)]
    pub transfer_number: Option<String>,
    /// Hang up after this many seconds, 1 to 86 400.
    #[serde(default)]
    pub max_duration_secs: Option<i64>,
}

/// `PATCH /v1/agents/{id}`: only the fields sent change; `null` clears an
/// optional field.
#[derive(Debug, Clone, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateAgent {
    /// New name (not null).
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<String>)]
    pub name: Option<Option<String>>,
    /// New system prompt (not null).
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<String>)]
    pub system_prompt: Option<Option<String>>,
    /// New or cleared first message.
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<String>)]
    pub first_message: Option<Option<String>>,
    /// New or cleared voice.
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<String>)]
    pub voice: Option<Option<String>>,
    /// New or cleared language tag.
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<String>)]
    pub language: Option<Option<String>>,
    /// New model settings, replacing the whole object (not null).
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<Object>)]
    pub model: Option<Option<Value>>,
    /// New tools, replacing the whole array (not null).
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<Vec<Object>>)]
    pub tools: Option<Option<Value>>,
    /// New or cleared voicemail message.
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<String>)]
    pub voicemail_message: Option<Option<String>>,
    /// New or cleared transfer number.
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<String>)]
    pub transfer_number: Option<Option<String>>,
    /// New or cleared duration limit.
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<i64>)]
    pub max_duration_secs: Option<Option<i64>>,
}

/// Whether `tag` looks like a BCP 47 language tag: a 2-3 letter (or 4-8
/// letter, registered) primary language, then subtags of 1 to 8 letters or
/// digits. Only the shape is checked; speech engines decide what they
/// support.
pub fn is_language_tag(tag: &str) -> bool {
    let mut parts = tag.split('-');
    let primary = parts.next().unwrap_or("");
    let primary_ok = (2..=8).contains(&primary.len())
        && primary.len() != 4
        && primary.bytes().all(|b| b.is_ascii_alphabetic());
    primary_ok
        && tag.len() <= LANGUAGE_MAX
        && parts.all(|p| (1..=8).contains(&p.len()) && p.bytes().all(|b| b.is_ascii_alphanumeric()))
}

fn check_language(p: &mut Problems, value: &str) {
    if !is_language_tag(value) {
        p.add("language", "must be a BCP 47 language tag such as en-US");
    }
}

fn check_model(p: &mut Problems, value: &Value) {
    if !value.is_object() {
        p.add("model", "must be a JSON object");
        return;
    }
    if let Err(problems) = crate::agent::model::AgentModel::parse(value) {
        for (path, msg) in problems {
            p.add(&path, msg);
        }
    }
}

/// Synthesizes the agent's greeting in the background, so its first call
/// does not wait for TTS.
fn warm(state: &AppState, agent: &crate::store::Agent) {
    if let Some(agents) = state.engine.as_ref().and_then(|e| e.agents()) {
        let agent = agent.clone();
        tokio::spawn(async move { agents.warm_agent(&agent).await });
    }
}

fn check_tools(p: &mut Problems, value: &Value) {
    for (path, msg) in crate::agent::tools::check_tools(value) {
        p.add(&path, msg);
    }
    // Secrets are write-only: a client that sends back what it was shown
    // would otherwise sign with the placeholder.
    if let Some(tools) = value.as_array() {
        for (i, t) in tools.iter().enumerate() {
            if t.get("secret").and_then(Value::as_str) == Some(REDACTED) {
                p.add(
                    &format!("tools.{i}.secret"),
                    "give the secret itself; it is not shown after it is saved",
                );
            }
        }
    }
}

/// What a tool's `secret` reads as in responses.
const REDACTED: &str = "********";

/// `tools` as shown to clients: every `secret` replaced.
fn redact_tools(mut tools: Value) -> Value {
    if let Some(list) = tools.as_array_mut() {
        for t in list {
            if let Some(secret) = t.get_mut("secret") {
                *secret = Value::String(REDACTED.into());
            }
        }
    }
    tools
}

fn check_duration(p: &mut Problems, secs: i64) {
    if !(1..=MAX_DURATION_SECS).contains(&secs) {
        p.add(
            "max_duration_secs",
            format!("must be between 1 and {MAX_DURATION_SECS}"),
        );
    }
}

/// The transfer number in canonical E.164, or a problem: the `transfer`
/// tool places a call, so the deny list applies.
fn check_transfer(p: &mut Problems, value: &str, deny: &DenyList) -> Option<String> {
    match callable("transfer_number", value, deny) {
        Ok(n) => Some(n),
        Err(e) => {
            p.0.push(e);
            None
        }
    }
}

impl CreateAgent {
    fn validate(self, deny: &DenyList) -> Result<NewAgent, ApiError> {
        let mut p = Problems::default();
        p.text("name", &self.name, SHORT);
        p.text("system_prompt", &self.system_prompt, LONG);
        p.opt_text("first_message", self.first_message.as_deref(), LONG);
        p.opt_text("voice", self.voice.as_deref(), SHORT);
        if let Some(l) = &self.language {
            check_language(&mut p, l);
        }
        let model = self
            .model
            .unwrap_or_else(|| Value::Object(Default::default()));
        check_model(&mut p, &model);
        let tools = self.tools.unwrap_or_else(|| Value::Array(Vec::new()));
        check_tools(&mut p, &tools);
        p.opt_text("voicemail_message", self.voicemail_message.as_deref(), LONG);
        let transfer_number = self
            .transfer_number
            .as_deref()
            .and_then(|t| check_transfer(&mut p, t, deny));
        if let Some(s) = self.max_duration_secs {
            check_duration(&mut p, s);
        }
        p.finish()?;
        Ok(NewAgent {
            name: self.name.trim().to_owned(),
            system_prompt: self.system_prompt,
            first_message: self.first_message,
            voice: self.voice,
            language: self.language,
            model,
            tools,
            voicemail_message: self.voicemail_message,
            transfer_number,
            max_duration_secs: self.max_duration_secs,
        })
    }
}

impl UpdateAgent {
    fn validate(self, deny: &DenyList) -> Result<AgentUpdate, ApiError> {
        let mut p = Problems::default();
        let name = not_null(&mut p, "name", self.name);
        if let Some(n) = &name {
            p.text("name", n, SHORT);
        }
        let system_prompt = not_null(&mut p, "system_prompt", self.system_prompt);
        if let Some(s) = &system_prompt {
            p.text("system_prompt", s, LONG);
        }
        if let Some(Some(v)) = &self.first_message {
            p.text("first_message", v, LONG);
        }
        if let Some(Some(v)) = &self.voice {
            p.text("voice", v, SHORT);
        }
        if let Some(Some(v)) = &self.language {
            check_language(&mut p, v);
        }
        let model = not_null(&mut p, "model", self.model);
        if let Some(m) = &model {
            check_model(&mut p, m);
        }
        let tools = not_null(&mut p, "tools", self.tools);
        if let Some(t) = &tools {
            check_tools(&mut p, t);
        }
        if let Some(Some(v)) = &self.voicemail_message {
            p.text("voicemail_message", v, LONG);
        }
        let transfer_number = match self.transfer_number {
            Some(Some(t)) => check_transfer(&mut p, &t, deny).map(Some),
            other => other,
        };
        if let Some(Some(s)) = self.max_duration_secs {
            check_duration(&mut p, s);
        }
        p.finish()?;
        Ok(AgentUpdate {
            name: name.map(|n| n.trim().to_owned()),
            system_prompt,
            first_message: self.first_message,
            voice: self.voice,
            language: self.language,
            model,
            tools,
            voicemail_message: self.voicemail_message,
            transfer_number,
            max_duration_secs: self.max_duration_secs,
        })
    }
}

/// Creates an agent.
#[utoipa::path(
    post, path = "/v1/agents", tag = "agents",
    request_body = CreateAgent,
    responses(
        (status = 201, description = "Created", body = AgentOut),
        (status = 422, description = "A field is invalid", body = crate::api::error::ValidationErrorBody),
    )
)]
pub async fn create(
    State(state): State<AppState>,
    caller: Caller,
    JsonBody(body): JsonBody<CreateAgent>,
) -> Result<(StatusCode, Json<AgentOut>), ApiError> {
    let new = body.validate(&state.deny)?;
    let agent = state.store.create_agent(&caller.org_id, &new).await?;
    warm(&state, &agent);
    Ok((StatusCode::CREATED, Json(agent.into())))
}

/// Lists the organization's agents, newest first.
#[utoipa::path(
    get, path = "/v1/agents", tag = "agents",
    params(ListParams),
    responses(
        (status = 200, description = "A page of agents", body = AgentList),
        (status = 422, description = "Bad paging parameter", body = crate::api::error::ValidationErrorBody),
    )
)]
pub async fn list(
    State(state): State<AppState>,
    caller: Caller,
    query: QueryParams,
) -> Result<Json<List<AgentOut>>, ApiError> {
    listed(state.store.list_agents(&caller.org_id, &query.page()?)).await
}

/// Reads one agent.
#[utoipa::path(
    get, path = "/v1/agents/{id}", tag = "agents",
    params(("id" = String, Path, description = "Agent id")),
    responses(
        (status = 200, description = "The agent", body = AgentOut),
        (status = 404, description = "No such agent", body = crate::api::error::ErrorBody),
    )
)]
pub async fn read(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<AgentOut>, ApiError> {
    found(WHAT, state.store.get_agent(&caller.org_id, &id)).await
}

/// Changes the fields sent.
#[utoipa::path(
    patch, path = "/v1/agents/{id}", tag = "agents",
    params(("id" = String, Path, description = "Agent id")),
    request_body = UpdateAgent,
    responses(
        (status = 200, description = "The agent as updated", body = AgentOut),
        (status = 404, description = "No such agent", body = crate::api::error::ErrorBody),
        (status = 422, description = "A field is invalid", body = crate::api::error::ValidationErrorBody),
    )
)]
pub async fn update(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    JsonBody(body): JsonBody<UpdateAgent>,
) -> Result<Json<AgentOut>, ApiError> {
    let update = body.validate(&state.deny)?;
    let agent = state
        .store
        .update_agent(&caller.org_id, &id, &update)
        .await
        .map_err(not_found(WHAT))?;
    warm(&state, &agent);
    Ok(Json(agent.into()))
}

/// Deletes an agent; numbers that used it are left without one.
#[utoipa::path(
    delete, path = "/v1/agents/{id}", tag = "agents",
    params(("id" = String, Path, description = "Agent id")),
    responses(
        (status = 204, description = "Deleted"),
        (status = 404, description = "No such agent", body = crate::api::error::ErrorBody),
    )
)]
pub async fn remove(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    state
        .store
        .delete_agent(&caller.org_id, &id)
        .await
        .map_err(not_found(WHAT))?;
    Ok(StatusCode::NO_CONTENT)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn language_tags() {
        for ok in ["en", "en-US", "pt-BR", "zh-Hant-TW", "es-419", "yue"] {
            assert!(is_language_tag(ok), "{ok}");
        }
        for bad in [
            "",
            "e",
            "english!",
            "en_US",
            "en-",
            "1234",
            "en-toolongsubtag",
            "engl",
        ] {
            assert!(!is_language_tag(bad), "{bad}");
        }
    }
}
