//! `/v1/numbers/{id}/outbound-defaults`: a number's saved outbound call
//! settings (see [`crate::playbooks::defaults`]). GET reads them (every
//! field null when none are saved), PUT replaces them whole, DELETE
//! forgets them.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::routing::get;
use axum::{Json, Router};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::ToSchema;

use super::inbound::check_voice;
use super::not_found;
use super::personas::check_language;
use super::playbooks::{no_such, schema_field};
use crate::api::extract::JsonBody;
use crate::api::validate::Problems;
use crate::api::{ApiError, AppState, Caller};
use crate::playbooks::{OutboundDefaults, SavedOutboundDefaults, VoicemailAction, builtin};
use crate::store::{Store, StoreError};

/// What a missing number is called in a 404.
const WHAT: &str = "number";

/// The routes of `/v1/numbers/{id}/outbound-defaults`.
pub fn routes() -> Router<AppState> {
    Router::new().route(
        "/numbers/{id}/outbound-defaults",
        get(read).put(replace).delete(remove),
    )
}

/// `PUT /v1/numbers/{id}/outbound-defaults`: the whole set; every field
/// is optional and what is not sent is not set.
#[derive(Debug, Clone, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct OutboundDefaultsIn {
    /// An agent of the organization.
    #[serde(default)]
    pub agent_id: Option<String>,
    /// A built-in playbook id (`reservation`) or one of the organization's.
    #[serde(default)]
    pub playbook_id: Option<String>,
    /// A persona of the organization.
    #[serde(default)]
    pub persona_id: Option<String>,
    /// What calls should achieve, up to 2000 characters.
    #[serde(default)]
    pub objective: Option<String>,
    /// Background the agent may use, up to 10 000 characters.
    #[serde(default)]
    pub context: Option<String>,
    /// Up to 20 rules of up to 500 characters.
    #[serde(default)]
    pub behavior_rules: Option<Vec<String>>,
    /// A whole system prompt, instead of one composed from the playbook.
    #[serde(default)]
    pub system_prompt: Option<String>,
    /// What the agent says first, up to 2000 characters.
    #[serde(default)]
    pub first_message: Option<String>,
    /// A voice id of `GET /v1/voices`.
    #[serde(default)]
    pub voice: Option<String>,
    /// BCP 47 language tag.
    #[serde(default)]
    pub language: Option<String>,
    /// On an answering machine: `leave_message` (needs
    /// `voicemail_message`), `hang_up` or `retry`.
    #[serde(default)]
    pub on_voicemail: Option<VoicemailAction>,
    /// Said after the beep, up to 1000 characters.
    #[serde(default)]
    pub voicemail_message: Option<String>,
    /// Hang up after this many minutes, 1 to 120.
    #[serde(default)]
    pub max_duration_minutes: Option<i64>,
    /// What to capture: a JSON Schema object or a map of field to type.
    #[serde(default)]
    #[schema(value_type = Option<Object>)]
    pub extraction_schema: Option<Value>,
    /// How failed calls are retried: a JSON object, kept as sent (up to
    /// 4096 bytes) for the call queue.
    #[serde(default)]
    #[schema(value_type = Option<Object>)]
    pub retry_policy: Option<Value>,
    /// Record the calls.
    #[serde(default)]
    pub record: Option<bool>,
}

/// A number's outbound defaults as the API shows them; unset fields are
/// null.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct OutboundDefaultsOut {
    /// The number.
    pub number_id: String,
    /// An agent of the organization.
    pub agent_id: Option<String>,
    /// A built-in or custom playbook.
    pub playbook_id: Option<String>,
    /// A persona of the organization.
    pub persona_id: Option<String>,
    /// What calls should achieve.
    pub objective: Option<String>,
    /// Background the agent may use.
    pub context: Option<String>,
    /// Rules the calls keep.
    pub behavior_rules: Option<Vec<String>>,
    /// A whole system prompt.
    pub system_prompt: Option<String>,
    /// What the agent says first.
    pub first_message: Option<String>,
    /// Voice id.
    pub voice: Option<String>,
    /// BCP 47 language tag.
    pub language: Option<String>,
    /// What to do on an answering machine.
    pub on_voicemail: Option<VoicemailAction>,
    /// Said after the beep.
    pub voicemail_message: Option<String>,
    /// Hang up after this many minutes.
    pub max_duration_minutes: Option<i64>,
    /// What to capture, as a JSON Schema object.
    #[schema(value_type = Option<Object>)]
    pub extraction_schema: Option<Value>,
    /// How failed calls are retried.
    #[schema(value_type = Option<Object>)]
    pub retry_policy: Option<Value>,
    /// Record the calls.
    pub record: Option<bool>,
    /// Last change, unix ms; null when none are saved.
    pub updated_at: Option<i64>,
}

impl OutboundDefaultsOut {
    fn of(number_id: String, saved: Option<SavedOutboundDefaults>) -> OutboundDefaultsOut {
        let (d, updated_at) = match saved {
            Some(s) => (s.defaults, Some(s.updated_at)),
            None => (OutboundDefaults::default(), None),
        };
        OutboundDefaultsOut {
            number_id,
            agent_id: d.agent_id,
            playbook_id: d.playbook_id,
            persona_id: d.persona_id,
            objective: d.objective,
            context: d.context,
            behavior_rules: d.behavior_rules,
            system_prompt: d.system_prompt,
            first_message: d.first_message,
            voice: d.voice,
            language: d.language,
            on_voicemail: d.on_voicemail,
            voicemail_message: d.voicemail_message,
            max_duration_minutes: d.max_duration_minutes,
            extraction_schema: d.extraction_schema,
            retry_policy: d.retry_policy,
            record: d.record,
            updated_at,
        }
    }
}

/// Whether the organization has what `field` names; a problem on `field`
/// when it does not.
async fn check_exists(
    p: &mut Problems,
    store: &Store,
    org_id: &str,
    field: &'static str,
    id: Option<&str>,
) -> Result<(), ApiError> {
    let Some(id) = id else { return Ok(()) };
    let found = match field {
        "agent_id" => store.get_agent(org_id, id).await.map(|_| ()),
        "playbook_id" if builtin::is_builtin(id) => Ok(()),
        "playbook_id" => store.get_playbook(org_id, id).await.map(|_| ()),
        _ => store.get_persona(org_id, id).await.map(|_| ()),
    };
    match found {
        Ok(()) => Ok(()),
        Err(StoreError::NotFound) => {
            p.add(field, no_such(field));
            Ok(())
        }
        Err(e) => Err(e.into()),
    }
}

async fn number_exists(state: &AppState, org_id: &str, id: &str) -> Result<(), ApiError> {
    state
        .store
        .get_number(org_id, id)
        .await
        .map(|_| ())
        .map_err(not_found(WHAT))
}

/// Reads a number's outbound defaults.
#[utoipa::path(
    get, path = "/v1/numbers/{id}/outbound-defaults", tag = "numbers",
    params(("id" = String, Path, description = "Number id")),
    responses(
        (status = 200, description = "The defaults (all null when none are saved)", body = OutboundDefaultsOut),
        (status = 404, description = "No such number", body = crate::api::error::ErrorBody),
    )
)]
pub async fn read(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<OutboundDefaultsOut>, ApiError> {
    number_exists(&state, &caller.org_id, &id).await?;
    let saved = state.store.outbound_defaults(&caller.org_id, &id).await?;
    Ok(Json(OutboundDefaultsOut::of(id, saved)))
}

/// Replaces a number's outbound defaults with those sent.
#[utoipa::path(
    put, path = "/v1/numbers/{id}/outbound-defaults", tag = "numbers",
    params(("id" = String, Path, description = "Number id")),
    request_body = OutboundDefaultsIn,
    responses(
        (status = 200, description = "The defaults as saved", body = OutboundDefaultsOut),
        (status = 404, description = "No such number", body = crate::api::error::ErrorBody),
        (status = 422, description = "A field is invalid, or an id names nothing of the organization", body = crate::api::error::ValidationErrorBody),
    )
)]
pub async fn replace(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    JsonBody(body): JsonBody<OutboundDefaultsIn>,
) -> Result<Json<OutboundDefaultsOut>, ApiError> {
    number_exists(&state, &caller.org_id, &id).await?;
    let mut p = Problems::default();
    let extraction_schema = body
        .extraction_schema
        .and_then(|s| schema_field(&mut p, "extraction_schema", &s));
    let defaults = OutboundDefaults {
        agent_id: body.agent_id,
        playbook_id: body.playbook_id,
        persona_id: body.persona_id,
        objective: body.objective,
        context: body.context,
        behavior_rules: body.behavior_rules.map(crate::playbooks::trim_rules),
        system_prompt: body.system_prompt,
        first_message: body.first_message,
        voice: body.voice,
        language: body.language,
        on_voicemail: body.on_voicemail,
        voicemail_message: body.voicemail_message,
        max_duration_minutes: body.max_duration_minutes,
        extraction_schema,
        retry_policy: body.retry_policy,
        record: body.record,
    };
    for (field, msg) in defaults.check() {
        p.add(&field, msg);
    }
    let store = &state.store;
    let org = caller.org_id.as_str();
    check_exists(&mut p, store, org, "agent_id", defaults.agent_id.as_deref()).await?;
    check_exists(
        &mut p,
        store,
        org,
        "playbook_id",
        defaults.playbook_id.as_deref(),
    )
    .await?;
    check_exists(
        &mut p,
        store,
        org,
        "persona_id",
        defaults.persona_id.as_deref(),
    )
    .await?;
    check_language(&mut p, "language", defaults.language.as_deref());
    check_voice(&mut p, &state, org, "voice", defaults.voice.as_deref()).await?;
    p.finish()?;
    let saved = state
        .store
        .set_outbound_defaults(org, &id, &defaults)
        .await
        .map_err(not_found(WHAT))?;
    Ok(Json(OutboundDefaultsOut::of(id, Some(saved))))
}

/// Forgets a number's outbound defaults (204 also when none were saved).
#[utoipa::path(
    delete, path = "/v1/numbers/{id}/outbound-defaults", tag = "numbers",
    params(("id" = String, Path, description = "Number id")),
    responses(
        (status = 204, description = "Forgotten"),
        (status = 404, description = "No such number", body = crate::api::error::ErrorBody),
    )
)]
pub async fn remove(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    number_exists(&state, &caller.org_id, &id).await?;
    state
        .store
        .delete_outbound_defaults(&caller.org_id, &id)
        .await?;
    Ok(StatusCode::NO_CONTENT)
}
