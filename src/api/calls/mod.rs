//! Calls: placing, following (`/v1/ws`), controlling and reading them.
//!
//! * `POST /v1/calls` validates, records the call (idempotent on
//!   `client_id`) and has the engine place it under the same id.
//! * [`bridge`] turns the engine's call events into the stored record,
//!   live WebSocket events and webhook deliveries.
//! * [`ws`] serves `GET /v1/ws`; [`webhooks`] delivers the outbox;
//!   [`numbers`] keeps the engine's number table in step with the
//!   database, and [`contacts`] its table of blocked callers.
//!
//! A call whose request names an agent (`agent_id`) or gives one something
//! to do (`system_prompt`, `first_message`, `objective`) runs the voice
//! agent once answered. Any other call is connected to a consumer that
//! takes the callee's audio and plays nothing: the callee hears silence,
//! and the call lasts until either side (or `max_duration_secs`, or
//! `POST /v1/calls/{id}/hangup`) ends it.

pub mod batch;
pub mod bridge;
pub mod contacts;
pub mod dispatch;
pub mod dnc;
pub mod lifecycle;
pub mod numbers;
pub mod objective;
pub mod webhooks;
pub mod ws;

use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;

use axum::body::{Body, Bytes};
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use super::error::{ApiError, FieldError};
use super::extract::{JsonBody, idempotency_key};
use super::{AppState, Caller, validate};
use crate::call::{CallCommand, CallDirection, CommandError};
use crate::engine::PlaceError;
use crate::store::{
    Call, CallFilter, CallStatus, CallUpdate, NewCall, PageRequest, StoreError, TranscriptEntry,
};

/// The routes of this part of `/v1`.
pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/calls", post(create_call).get(list_calls))
        .route("/calls/{id}", get(get_call).delete(cancel_call))
        .route("/calls/batch", post(batch::create))
        .route("/calls/batch/{id}", get(batch::read).delete(batch::cancel))
        .route("/calls/{id}/hangup", post(hangup_call))
        .route("/calls/{id}/transcript", get(get_transcript))
        .route("/calls/{id}/recording", get(get_recording))
        .route("/ws", get(ws::upgrade))
        .merge(dnc::routes())
}

/// Longest call a request may ask for: four hours.
pub const MAX_DURATION_SECS: u64 = 4 * 3600;

/// The body of `POST /v1/calls`.
#[derive(Debug, Clone, Default, Deserialize, utoipa::ToSchema)]
pub struct CreateCallRequest {
    /// E.164 number, or a `sip:` URI (called directly, without a trunk).
    pub to: Option<String>,
    /// Caller: a number id of the organization (`num_…`) or an E.164
    /// number; a number's trunk places the call.
    pub from: Option<String>,
    /// The agent that runs the call.
    pub agent_id: Option<String>,
    /// Inline agent instructions (override the agent's).
    pub system_prompt: Option<String>,
    /// What the call should achieve.
    pub objective: Option<String>,
    /// What the agent says first.
    pub first_message: Option<String>,
    /// Voice name of the speech engine.
    pub voice: Option<String>,
    /// Language tag (`en-US`).
    pub language: Option<String>,
    /// Hang up after this long connected.
    pub max_duration_secs: Option<u64>,
    /// Record the call.
    #[serde(default)]
    pub record: bool,
    /// The client's own key-value pairs, returned with the call.
    #[serde(default)]
    pub metadata: BTreeMap<String, String>,
    /// Where this call's events are also POSTed, signed.
    pub webhook_url: Option<String>,
    /// Idempotency key: a retry with the same one returns the same call.
    pub client_id: Option<String>,
    /// Alias of `client_id`.
    pub idempotency_key: Option<String>,
    /// Agent calls: screen who answers before the agent speaks, and on an
    /// answering machine `leave_message` (wait for the beep, say
    /// `voicemail_message`, hang up) or `hang_up`. The verdict comes as
    /// the `call.answered_by` event; a machine's call ends with outcome
    /// `voicemail`. Unset: no screening, the agent speaks at once.
    pub on_voicemail: Option<crate::engine::screening::OnVoicemail>,
    /// Said after the beep with `on_voicemail: leave_message` (required
    /// then), at most 1000 characters.
    pub voicemail_message: Option<String>,
    /// Background the agent may use (at most 4000 characters).
    pub context: Option<String>,
    /// Hard constraints the agent must follow (at most 20, each up to 500
    /// characters).
    pub behavior_rules: Option<Vec<String>>,
    /// The strategy (`GET /v1/playbooks`); classified from the objective
    /// when unset.
    pub playbook_id: Option<String>,
    /// Who the agent calls as (`GET /v1/personas`).
    pub persona_id: Option<String>,
    /// What to collect into `structured_data`: a JSON schema, or a map of
    /// field → type (`string`, `number`, `integer`, `boolean`, `date`,
    /// `time`, `datetime`, `string[]`); inferred from the objective when
    /// unset.
    #[schema(value_type = Option<Object>)]
    pub extraction_schema: Option<Value>,
    /// What happened on an earlier call, for the agent to pick up from.
    pub previous_call_context: Option<String>,
    /// Hang up after this long connected, 1 to 120 minutes.
    pub max_duration_minutes: Option<u64>,
    /// Dial no earlier than this (unix ms or RFC 3339); the call is
    /// `scheduled` until then.
    #[schema(value_type = Option<String>)]
    pub schedule_at: Option<crate::outbound::when::When>,
    /// When and how often to try again; without it a call is tried once
    /// (and a voicemail three times with `on_voicemail: retry`).
    pub retry_policy: Option<crate::outbound::policy::RetryPolicySpec>,
    /// Fill unset fields from the calling number's saved outbound
    /// defaults (`PUT /v1/numbers/{id}/outbound-defaults`).
    #[serde(default)]
    pub use_saved_agent: bool,
    /// How long each attempt rings before it counts as `no_answer`, 5 to
    /// 300 seconds (the engine's default when unset).
    pub ring_timeout_secs: Option<u64>,
}

/// One transcript line as the API shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct TranscriptLine {
    /// Position, from 1.
    pub seq: i64,
    /// Who spoke (`caller`, `agent`…).
    pub speaker: String,
    /// What was said.
    pub text: String,
    /// Start offset in the call, ms.
    pub start_ms: Option<i64>,
    /// End offset in the call, ms.
    pub end_ms: Option<i64>,
    /// The speaker (the agent) was cut off by the caller; `text` is what
    /// was heard.
    pub interrupted: bool,
}

impl From<TranscriptEntry> for TranscriptLine {
    fn from(e: TranscriptEntry) -> Self {
        TranscriptLine {
            seq: e.seq,
            speaker: e.speaker,
            text: e.text,
            start_ms: e.start_ms,
            end_ms: e.end_ms,
            interrupted: e.interrupted,
        }
    }
}

/// A call as the API shows it. Times are unix milliseconds.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct CallView {
    /// `call_` and 24 hex digits; also the engine's id of the call.
    pub id: String,
    /// `inbound` or `outbound`.
    #[schema(value_type = String)]
    pub direction: CallDirection,
    /// queued, ringing, in_progress, completed, busy, no_answer, failed or
    /// canceled.
    #[schema(value_type = String)]
    pub status: CallStatus,
    /// Caller.
    pub from: String,
    /// Callee.
    pub to: String,
    /// The organization's number involved.
    pub number_id: Option<String>,
    /// The agent of the call.
    pub agent_id: Option<String>,
    /// The contact the call was with: the caller of an inbound call, the
    /// callee of an outbound one (`GET /v1/contacts/{id}`).
    pub contact_id: Option<String>,
    /// When the call was created.
    pub created_at: i64,
    /// When it was answered.
    pub answered_at: Option<i64>,
    /// When it ended.
    pub ended_at: Option<i64>,
    /// Time connected, ms (0 for unanswered calls), once ended.
    pub duration_ms: Option<i64>,
    /// Time connected in whole seconds, rounded up, once ended.
    pub duration_secs: Option<i64>,
    /// Who hung up: `callee`, `caller`, `api`, `max_duration`, `hotline`,
    /// `system`.
    pub hangup_by: Option<String>,
    /// Why the call ended, in words.
    pub hangup_cause: Option<String>,
    /// The final SIP status, when there was one.
    pub sip_code: Option<i64>,
    /// The SIP Call-ID, to match carrier records.
    pub sip_call_id: Option<String>,
    /// What was said; left out of lists.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub transcript: Option<Vec<TranscriptLine>>,
    /// Post-call summary.
    pub summary: Option<String>,
    /// Post-call outcome label.
    pub outcome: Option<String>,
    /// Data the agent collected.
    #[schema(value_type = Option<Object>)]
    pub structured_data: Option<Value>,
    /// The voice agent's timings per turn, in ms: `stt_ms` (end of the
    /// caller's speech to the final transcript), `llm_first_token_ms`,
    /// `tts_first_audio_ms`, `voice_to_voice_ms` (end of speech to the
    /// first agent audio) and `server_ms` (Hotline's own share).
    #[schema(value_type = Option<Vec<Object>>)]
    pub turn_metrics: Option<Value>,
    /// Where the WAV is, when the call was recorded.
    pub recording_url: Option<String>,
    /// The client's key-value pairs.
    pub metadata: BTreeMap<String, String>,
    /// Inline agent instructions.
    pub system_prompt: Option<String>,
    /// The call's objective.
    pub objective: Option<String>,
    /// The agent's first words.
    pub first_message: Option<String>,
    /// Voice.
    pub voice: Option<String>,
    /// Language.
    pub language: Option<String>,
    /// Connected-time limit.
    pub max_duration_secs: Option<u64>,
    /// Whether the call is recorded.
    pub record: bool,
    /// The call's own webhook.
    pub webhook_url: Option<String>,
    /// The signing secret of the call's own webhook: only in the answer to
    /// `POST /v1/calls`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub webhook_secret: Option<String>,
    /// The idempotency key.
    pub client_id: Option<String>,
    /// Attempts started so far.
    pub attempts: i64,
    /// When the call is next dialled (scheduled, retry_scheduled,
    /// needs_follow_up and queued calls), unix ms.
    pub next_attempt_at: Option<i64>,
    /// The batch it belongs to.
    pub batch_id: Option<String>,
    /// Background for the agent.
    pub context: Option<String>,
    /// Hard constraints the agent follows.
    pub behavior_rules: Option<Vec<String>>,
    /// The playbook the call follows (given, or classified from the
    /// objective).
    pub playbook_id: Option<String>,
    /// The caller identity.
    pub persona_id: Option<String>,
    /// What the call extracts into `structured_data` (a JSON schema).
    #[schema(value_type = Option<Object>)]
    pub extraction_schema: Option<Value>,
    /// The retry policy as given.
    #[schema(value_type = Option<Object>)]
    pub retry_policy: Option<Value>,
    /// `leave_message`, `hang_up` or `retry`.
    pub on_voicemail: Option<String>,
    /// Said after the beep.
    pub voicemail_message: Option<String>,
    /// What the call cost: connected time over every attempt, the
    /// billable minutes, attempts, and the agent's turns.
    #[schema(value_type = Object)]
    pub cost_breakdown: Value,
    /// Each attempt, in order; only in `GET /v1/calls/{id}`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub attempt_history: Option<Vec<crate::store::CallAttempt>>,
}

impl CallView {
    /// The API's view of a stored call.
    pub fn new(call: Call, transcript: Option<Vec<TranscriptEntry>>) -> CallView {
        let req = &call.request;
        let text = |k: &str| req.get(k).and_then(Value::as_str).map(str::to_owned);
        let cost = cost_breakdown(
            call.duration_ms.unwrap_or(0) + call.prior_connected_ms,
            call.attempts,
            call.turn_metrics.as_ref(),
        );
        CallView {
            recording_url: call
                .recording_path
                .as_ref()
                .map(|_| format!("/v1/calls/{}/recording", call.id)),
            id: call.id.to_string(),
            direction: call.direction,
            status: call.status,
            from: call.from,
            to: call.to,
            number_id: call.number_id,
            agent_id: call.agent_id,
            contact_id: call.contact_id,
            created_at: call.created_at,
            answered_at: call.answered_at,
            ended_at: call.ended_at,
            duration_ms: call.duration_ms,
            duration_secs: call.duration_ms.map(|ms| (ms + 999) / 1000),
            hangup_by: call.hangup_by,
            hangup_cause: call.hangup_reason,
            sip_code: call.sip_code,
            sip_call_id: call.sip_call_id,
            transcript: transcript.map(|t| t.into_iter().map(TranscriptLine::from).collect()),
            summary: call.summary,
            outcome: call.outcome,
            structured_data: call.structured_data,
            turn_metrics: call.turn_metrics,
            metadata: call.metadata,
            system_prompt: text("system_prompt"),
            objective: text("objective"),
            first_message: text("first_message"),
            voice: text("voice"),
            language: text("language"),
            max_duration_secs: req.get("max_duration_secs").and_then(Value::as_u64),
            record: req.get("record").and_then(Value::as_bool).unwrap_or(false),
            webhook_url: call.webhook_url,
            webhook_secret: None,
            client_id: call.client_id,
            attempts: call.attempts,
            next_attempt_at: call.next_attempt_at,
            batch_id: call.batch_id,
            context: text("context"),
            behavior_rules: req
                .get("behavior_rules")
                .and_then(|v| serde_json::from_value(v.clone()).ok()),
            playbook_id: text("playbook_id"),
            persona_id: text("persona_id"),
            extraction_schema: req.get("extraction_schema").cloned(),
            retry_policy: req.get("retry_policy").cloned(),
            on_voicemail: text("on_voicemail"),
            voicemail_message: text("voicemail_message"),
            cost_breakdown: cost,
            attempt_history: None,
        }
    }
}

/// `cost_breakdown`: what is known of a call's cost. Telephony is billed
/// per started minute of connected time (as `GET /v1/usage` counts);
/// the speech and language engines are counted in agent turns, since the
/// local engines cost nothing per call and hosted ones bill by usage the
/// provider reports.
fn cost_breakdown(connected_ms: i64, attempts: i64, turns: Option<&Value>) -> Value {
    let turns = turns.and_then(Value::as_array).map_or(0, Vec::len);
    json!({
        "telephony": {
            "connected_ms": connected_ms,
            "billable_minutes": (connected_ms.max(0) + 59_999) / 60_000,
            "attempts": attempts,
        },
        "agent": {"turns": turns},
    })
}

crate::api::page::list_schema!(CallList, CallView);

fn not_found(e: StoreError) -> ApiError {
    match e {
        StoreError::NotFound => ApiError::NotFound("call"),
        other => other.into(),
    }
}

/// Text limits of the inline agent settings, in bytes.
const TEXT_LIMITS: [(&str, usize); 5] = [
    ("system_prompt", 20_000),
    ("objective", 8_000),
    ("first_message", 2_000),
    ("voice", 100),
    ("language", 35),
];

/// What a valid request places.
struct Plan {
    to: String,
    caller_id: Option<String>,
    number_id: Option<String>,
    trunk: Option<String>,
}

/// Whether `to` is a SIP URI we can call directly.
fn sip_uri(to: &str) -> Option<Result<String, FieldError>> {
    let t = to.trim();
    if !(t.starts_with("sip:") || t.starts_with("sips:")) {
        return None;
    }
    let ok = t.len() <= 256
        && rsip::Uri::try_from(t).is_ok_and(|u| !u.host_with_port.to_string().is_empty());
    Some(if ok {
        Ok(t.to_owned())
    } else {
        Err(FieldError::body("to", "not a valid sip: URI"))
    })
}

async fn plan_call(
    state: &AppState,
    org_id: &str,
    req: &CreateCallRequest,
    errors: &mut Vec<FieldError>,
) -> Result<Option<Plan>, ApiError> {
    let to = match req.to.as_deref().map(str::trim) {
        None | Some("") => {
            errors.push(FieldError::body("to", "field required"));
            None
        }
        Some(to) => match sip_uri(to) {
            Some(r) => r.map_err(|e| errors.push(e)).ok(),
            None => validate::callable("to", to, &state.deny)
                .map_err(|e| errors.push(e))
                .ok(),
        },
    };
    let (mut caller_id, mut number_id, mut number_trunk) = (None, None, None);
    if let Some(from) = req.from.as_deref().map(str::trim).filter(|f| !f.is_empty()) {
        if from.starts_with("num_") {
            match state.store.get_number(org_id, from).await {
                Ok(n) => {
                    caller_id = Some(n.e164);
                    number_id = Some(n.id);
                    number_trunk = n.trunk;
                }
                Err(StoreError::NotFound) => {
                    errors.push(FieldError::body("from", "no such number"))
                }
                Err(e) => return Err(e.into()),
            }
        } else {
            match validate::e164("from", from) {
                Ok(e164) => {
                    match state.store.get_number_by_e164(&e164).await {
                        // The org's own number: its trunk places the call.
                        Ok(n) if n.org_id == org_id => {
                            number_id = Some(n.id);
                            number_trunk = n.trunk;
                        }
                        Ok(_) | Err(StoreError::NotFound) => {}
                        Err(e) => return Err(e.into()),
                    }
                    caller_id = Some(e164);
                }
                Err(e) => errors.push(FieldError::body(
                    "from",
                    format!("must be a number id (num_…) or {}", e.msg),
                )),
            }
        }
    }
    let Some(to) = to else { return Ok(None) };
    let trunks = &state.config.trunks;
    let trunk = if to.starts_with("sip") {
        // A SIP URI names its own destination: no trunk.
        None
    } else if let Some(t) = number_trunk {
        if !trunks.iter().any(|c| c.name == t) {
            errors.push(FieldError::body(
                "from",
                format!("the number's trunk {t:?} is not configured"),
            ));
        }
        Some(t)
    } else if trunks.len() == 1 {
        Some(trunks[0].name.clone())
    } else if trunks.is_empty() {
        errors.push(FieldError::body(
            "to",
            "no SIP trunk is configured to reach phone numbers; call a sip: URI or configure a trunk",
        ));
        None
    } else {
        errors.push(FieldError::body(
            "from",
            "several trunks are configured: give a number (with a trunk) to call from",
        ));
        None
    };
    Ok(Some(Plan {
        to,
        caller_id,
        number_id,
        trunk,
    }))
}

/// Longest `voicemail_message`, in characters.
const VOICEMAIL_MESSAGE_MAX: usize = 1000;

/// `on_voicemail` and `voicemail_message`: checked, and kept in the
/// call's stored request.
fn check_voicemail(
    req: &CreateCallRequest,
    request: &mut serde_json::Map<String, Value>,
    errors: &mut Vec<FieldError>,
) {
    use crate::engine::screening::OnVoicemail;
    if let Some(m) = &req.voicemail_message {
        if m.trim().is_empty() || m.chars().count() > VOICEMAIL_MESSAGE_MAX {
            errors.push(FieldError::body(
                "voicemail_message",
                format!("must be 1 to {VOICEMAIL_MESSAGE_MAX} characters"),
            ));
        }
        request.insert("voicemail_message".into(), json!(m));
    }
    let Some(on) = req.on_voicemail else { return };
    if !wants_agent(req) {
        errors.push(FieldError::body(
            "on_voicemail",
            "only for agent calls (give agent_id, system_prompt, first_message or objective)",
        ));
    }
    if on == OnVoicemail::LeaveMessage && req.voicemail_message.is_none() {
        errors.push(FieldError::body(
            "voicemail_message",
            "required when on_voicemail is leave_message",
        ));
    }
    request.insert("on_voicemail".into(), json!(on));
}

fn wants_agent(req: &CreateCallRequest) -> bool {
    req.agent_id.is_some()
        || req.system_prompt.is_some()
        || req.first_message.is_some()
        || req.objective.is_some()
        || req.playbook_id.is_some()
        || req.persona_id.is_some()
}

fn place_error(e: PlaceError) -> ApiError {
    match e {
        PlaceError::UnknownTrunk(t) => {
            ApiError::field("from", format!("the trunk {t:?} is not configured"))
        }
        PlaceError::BadTarget(_) => ApiError::field("to", e.to_string()),
        PlaceError::Resolve(_) => ApiError::field("to", e.to_string()),
        PlaceError::Refused(r) => ApiError::Unavailable {
            detail: format!("cannot place calls now: {r}"),
            retry_after: Some(std::time::Duration::from_secs(match r {
                crate::call::Refusal::Draining => 30,
                crate::call::Refusal::Full => 5,
            })),
        },
        PlaceError::NoPorts => ApiError::Unavailable {
            detail: "cannot place calls now: no media port free".into(),
            retry_after: Some(std::time::Duration::from_secs(5)),
        },
    }
}

/// A checked `POST /v1/calls` request, ready to store.
pub(crate) struct PreparedCall {
    /// The row.
    pub new: NewCall,
    /// `queued` or `scheduled`.
    pub status: CallStatus,
}

/// Checks a request (every field at fault in one 422) and makes the call
/// it asks for; nothing is stored yet.
pub(crate) async fn prepare_call(
    state: &AppState,
    org: &str,
    mut req: CreateCallRequest,
    client_id: Option<String>,
) -> Result<PreparedCall, ApiError> {
    let mut errors = Vec::new();
    objective::apply_saved_defaults(state, org, &mut req, &mut errors).await?;
    let plan = plan_call(state, org, &req, &mut errors).await?;
    if let Some(plan) = &plan
        && let Some(e164) = crate::engine::blocked::caller_e164(&plan.to, None)
        && let Some(entry) = state.store.dnc_entry(org, &e164).await?
    {
        errors.push(FieldError::body(
            "to",
            format!(
                "{e164} is on the organization's do-not-call list (since {}, {})",
                entry.created_at, entry.source
            ),
        ));
    }
    if let Some(agent) = &req.agent_id {
        match state.store.get_agent(org, agent).await {
            Ok(_) => {}
            Err(StoreError::NotFound) => errors.push(FieldError::body("agent_id", "no such agent")),
            Err(e) => return Err(e.into()),
        }
    }
    let inline = [
        &req.system_prompt,
        &req.objective,
        &req.first_message,
        &req.voice,
        &req.language,
    ];
    let mut request = serde_json::Map::new();
    for ((field, max), value) in TEXT_LIMITS.iter().zip(inline) {
        if let Some(v) = value {
            if v.len() > *max {
                errors.push(FieldError::body(field, format!("at most {max} bytes")));
            }
            request.insert((*field).to_owned(), json!(v));
        }
    }
    check_voicemail(&req, &mut request, &mut errors);
    if let Some(secs) = req.max_duration_secs {
        if !(1..=MAX_DURATION_SECS).contains(&secs) {
            errors.push(FieldError::body(
                "max_duration_secs",
                format!("must be 1 to {MAX_DURATION_SECS}"),
            ));
        }
        request.insert("max_duration_secs".into(), json!(secs));
    }
    if let Some(secs) = req.ring_timeout_secs {
        if !(5..=300).contains(&secs) {
            errors.push(FieldError::body("ring_timeout_secs", "must be 5 to 300"));
        }
        request.insert("ring_timeout_secs".into(), json!(secs));
    }
    request.insert("record".into(), json!(req.record));
    request.insert("agent".into(), json!(wants_agent(&req)));
    if let Err(e) = validate::metadata("metadata", &req.metadata) {
        errors.extend(e);
    }
    if let Some(url) = &req.webhook_url
        && let Err(StoreError::Invalid(_, msg)) = crate::store::check_url("webhook_url", url)
    {
        errors.push(FieldError::body("webhook_url", msg));
    }
    let to = plan.as_ref().map_or("", |p| p.to.as_str()).to_owned();
    objective::plan_objective(state, org, &to, &req, &mut request, &mut errors).await?;
    let now = crate::store::now_ms();
    let first = objective::first_attempt(&req, now, &mut request, &mut errors);
    let (plan, (status, due)) = match (plan, first) {
        (Some(p), Some(f)) if errors.is_empty() => (p, f),
        _ => return Err(ApiError::Validation(errors)),
    };
    if let Some(t) = &plan.trunk {
        request.insert("trunk".into(), json!(t));
    }
    if let Some(c) = &plan.caller_id {
        request.insert("caller_id".into(), json!(c));
    }
    // The caller ID the engine will use: the request's, else the trunk's,
    // else the engine's default.
    let caller_id = plan
        .caller_id
        .clone()
        .or_else(|| {
            let trunk = plan.trunk.as_ref()?;
            state
                .config
                .trunks
                .iter()
                .find(|t| t.name == *trunk)?
                .caller_id
                .clone()
        })
        .unwrap_or_else(|| "hotline".into());
    let new = NewCall {
        id: None,
        number_id: plan.number_id.clone(),
        agent_id: req.agent_id.clone(),
        metadata: req.metadata.clone(),
        request: Value::Object(request),
        webhook_url: req.webhook_url.clone(),
        client_id,
        status,
        next_attempt_at: Some(due),
        ..NewCall::new(CallDirection::Outbound, caller_id, plan.to.clone())
    };
    Ok(PreparedCall { new, status })
}

/// `POST /v1/calls`: 201 with the new call, or 200 with the call an
/// earlier request with the same `client_id` created.
#[utoipa::path(
    post, path = "/v1/calls", tag = "calls",
    request_body = CreateCallRequest,
    params(("Idempotency-Key" = Option<String>, Header, description = "Same as `client_id`")),
    responses(
        (status = 201, description = "Placed", body = CallView),
        (status = 200, description = "An earlier request with this `client_id` placed it", body = CallView),
        (status = 422, description = "A field is invalid", body = crate::api::error::ValidationErrorBody),
        (status = 503, description = "Draining or at the call limit (Retry-After)", body = crate::api::error::ErrorBody),
    )
)]
pub async fn create_call(
    State(state): State<AppState>,
    caller: Caller,
    headers: HeaderMap,
    JsonBody(req): JsonBody<CreateCallRequest>,
) -> Result<Response, ApiError> {
    let mut errors = Vec::new();
    let org = caller.org_id.as_str();
    let client_id = idempotency_key(
        &headers,
        req.client_id.as_ref(),
        req.idempotency_key.as_ref(),
        &mut errors,
    );
    if !errors.is_empty() {
        return Err(ApiError::Validation(errors));
    }
    let PreparedCall { new, status } = prepare_call(&state, org, req, client_id).await?;
    let now = crate::store::now_ms();
    let Some(engine) = state.engine.clone() else {
        return Err(ApiError::Unavailable {
            detail: "the call engine is not running".into(),
            retry_after: None,
        });
    };
    if new.request.get("agent") == Some(&json!(true)) && engine.agents().is_none() {
        return Err(ApiError::Unavailable {
            detail: "the voice agent is not running in this server".into(),
            retry_after: None,
        });
    }
    let (call, created) = state.store.create_call(org, &new).await?;
    if !created {
        let secret = match &call.webhook_url {
            Some(_) => state
                .store
                .call_webhook(org, call.id.as_str())
                .await?
                .map(|w| w.secret),
            None => None,
        };
        let transcript = state.store.list_transcript(org, call.id.as_str()).await?;
        let mut view = CallView::new(call, Some(transcript));
        view.webhook_secret = secret;
        return Ok((StatusCode::OK, Json(view)).into_response());
    }
    let call_id = call.id.clone();
    let discard = |why: ApiError| {
        let state = state.clone();
        let org = org.to_owned();
        let id = call_id.clone();
        async move {
            // Nothing went out: forget the call, so that a retry with the
            // same client_id places it afresh.
            if let Err(e) = state.store.discard_call(&org, id.as_str()).await {
                tracing::warn!(call = %id, error = %e, "cannot discard a call that was not placed");
            }
            why
        }
    };
    let mut secret = None;
    if let Some(url) = &call.webhook_url {
        match state
            .store
            .create_call_webhook(org, call.id.as_str(), url)
            .await
        {
            Ok(w) => secret = Some(w.secret),
            Err(e) => return Err(discard(e.into()).await),
        }
    }
    lifecycle::announce_queued(&state, &call).await;
    let mut current = call;
    if status == CallStatus::Queued {
        // Dialled at once when the organization's limits allow; else the
        // dispatcher dials it in turn.
        let limits = dispatch::limits(&state, org).await?;
        if let crate::store::Claim::Claimed(claimed) = state
            .store
            .claim_call(org, Some(current.id.as_str()), now, limits)
            .await?
        {
            match dispatch::dial(&state, &engine, &claimed).await {
                Ok(()) => current = *claimed,
                Err(dispatch::DialError::Place(e)) => return Err(discard(place_error(e)).await),
                Err(dispatch::DialError::DoNotCall) => {
                    return Err(discard(ApiError::field(
                        "to",
                        "on the organization's do-not-call list",
                    ))
                    .await);
                }
            }
        }
    }
    state.outbound.wake.notify_one();
    let mut view = CallView::new(current, Some(Vec::new()));
    view.webhook_secret = secret;
    Ok((StatusCode::CREATED, Json(view)).into_response())
}

/// `GET /v1/calls/{id}`: the call with its transcript.
#[utoipa::path(
    get, path = "/v1/calls/{id}", tag = "calls",
    params(("id" = String, Path, description = "Call id")),
    responses(
        (status = 200, description = "The call, with its transcript", body = CallView),
        (status = 404, description = "No such call", body = crate::api::error::ErrorBody),
    )
)]
pub async fn get_call(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<CallView>, ApiError> {
    let call = state
        .store
        .get_call(&caller.org_id, &id)
        .await
        .map_err(not_found)?;
    let transcript = state.store.list_transcript(&caller.org_id, &id).await?;
    let attempts = state.store.call_attempts(&id).await?;
    let mut view = CallView::new(call, Some(transcript));
    view.attempt_history = Some(attempts);
    Ok(Json(view))
}

/// `DELETE /v1/calls/{id}`: cancels a call that waits to be dialled
/// (queued, scheduled, retry_scheduled, needs_follow_up); 409 once an
/// attempt is under way (hang it up instead) or the call is over.
#[utoipa::path(
    delete, path = "/v1/calls/{id}", tag = "calls",
    params(("id" = String, Path, description = "Call id")),
    responses(
        (status = 200, description = "Canceled", body = CallView),
        (status = 404, description = "No such call", body = crate::api::error::ErrorBody),
        (status = 409, description = "The call is live or over", body = crate::api::error::ErrorBody),
    )
)]
pub async fn cancel_call(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<CallView>, ApiError> {
    match state
        .store
        .cancel_waiting_call(&caller.org_id, &id, "canceled through the API")
        .await
    {
        Ok(call) => {
            lifecycle::announce_ended(&state, &call).await;
            Ok(Json(CallView::new(call, None)))
        }
        Err(StoreError::Conflict("live")) => Err(ApiError::Conflict(
            "the call is live: end it with POST /v1/calls/{id}/hangup".into(),
        )),
        Err(StoreError::Conflict(_)) => Err(ApiError::Conflict("the call is over".into())),
        Err(e) => Err(not_found(e)),
    }
}

fn parse_query(q: &HashMap<String, String>) -> Result<(CallFilter, PageRequest), ApiError> {
    let mut errors = Vec::new();
    let mut filter = CallFilter::default();
    let mut page = PageRequest::default();
    let int = |name: &str, errors: &mut Vec<FieldError>| {
        q.get(name).and_then(|v| match v.parse::<i64>() {
            Ok(n) => Some(n),
            Err(_) => {
                errors.push(FieldError::query(name, "must be unix milliseconds"));
                None
            }
        })
    };
    for (k, v) in q {
        match k.as_str() {
            "status" => match v.parse::<CallStatus>() {
                Ok(s) => filter.status = Some(s),
                Err(_) => errors.push(FieldError::query(
                    "status",
                    format!(
                        "must be one of {}",
                        CallStatus::ALL.map(CallStatus::as_str).join(", ")
                    ),
                )),
            },
            "direction" => match v.as_str() {
                "inbound" => filter.direction = Some(CallDirection::Inbound),
                "outbound" => filter.direction = Some(CallDirection::Outbound),
                _ => errors.push(FieldError::query(
                    "direction",
                    "must be inbound or outbound",
                )),
            },
            "number_id" => filter.number_id = Some(v.clone()),
            "agent_id" => filter.agent_id = Some(v.clone()),
            "contact_id" => filter.contact_id = Some(v.clone()),
            "limit" => match v.parse::<u32>() {
                Ok(n) => page.limit = Some(n),
                Err(_) => errors.push(FieldError::query("limit", "must be a whole number")),
            },
            "cursor" => page.cursor = Some(v.clone()),
            // Checked below; other parameters are ignored, as most APIs do.
            _ => {}
        }
    }
    filter.created_after = int("created_after", &mut errors);
    filter.created_before = int("created_before", &mut errors);
    if errors.is_empty() {
        Ok((filter, page))
    } else {
        Err(ApiError::Validation(errors))
    }
}

/// `GET /v1/calls`: the organization's calls, newest first, filtered by
/// `status`, `number_id`, `agent_id`, `contact_id`, `direction`, `created_after` and
/// `created_before` (unix ms), `limit` and `cursor` paged.
#[utoipa::path(
    get, path = "/v1/calls", tag = "calls",
    params(
        crate::api::page::ListParams,
        ("status" = Option<String>, Query, description = "queued, ringing, in_progress, completed, busy, no_answer, failed or canceled"),
        ("number_id" = Option<String>, Query, description = "Calls of this number"),
        ("agent_id" = Option<String>, Query, description = "Calls of this agent"),
        ("contact_id" = Option<String>, Query, description = "Calls with this contact"),
        ("direction" = Option<String>, Query, description = "inbound or outbound"),
        ("created_after" = Option<i64>, Query, description = "Unix ms, inclusive"),
        ("created_before" = Option<i64>, Query, description = "Unix ms, exclusive"),
    ),
    responses(
        (status = 200, description = "A page of calls", body = CallList),
        (status = 422, description = "Bad filter or paging parameter", body = crate::api::error::ValidationErrorBody),
    )
)]
pub async fn list_calls(
    State(state): State<AppState>,
    caller: Caller,
    Query(q): Query<HashMap<String, String>>,
) -> Result<Json<crate::api::page::List<CallView>>, ApiError> {
    let (filter, page) = parse_query(&q)?;
    let page = state
        .store
        .list_calls(&caller.org_id, &filter, &page)
        .await
        .map_err(crate::api::page::page_error)?;
    Ok(Json(crate::api::page::List {
        data: page
            .items
            .into_iter()
            .map(|c| CallView::new(c, None))
            .collect(),
        next_cursor: page.next_cursor,
    }))
}

/// `POST /v1/calls/{id}/hangup`: 202 while the call is being ended (BYE
/// when answered, CANCEL while ringing); 409 if it is over already.
#[utoipa::path(
    post, path = "/v1/calls/{id}/hangup", tag = "calls",
    params(("id" = String, Path, description = "Call id")),
    responses(
        (status = 202, description = "Hanging up (or canceling a ringing call)", body = CallView),
        (status = 404, description = "No such call", body = crate::api::error::ErrorBody),
        (status = 409, description = "The call has already ended", body = crate::api::error::ErrorBody),
    )
)]
pub async fn hangup_call(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<(StatusCode, Json<CallView>), ApiError> {
    let call = state
        .store
        .get_call(&caller.org_id, &id)
        .await
        .map_err(not_found)?;
    if call.status.is_terminal() {
        return Err(ApiError::Conflict(format!(
            "call has already ended ({})",
            call.status
        )));
    }
    let live = state
        .engine
        .as_ref()
        .and_then(|e| e.registry().get(&call.id));
    let by_api = CallUpdate {
        hangup_by: Some("api".into()),
        ..CallUpdate::default()
    };
    let call = match live {
        Some(handle) => {
            // Recorded first, so the bridge finds who hung up when the
            // call's end arrives.
            let call = state
                .store
                .update_call(&caller.org_id, &id, &by_api)
                .await?;
            match handle.command(CallCommand::Hangup) {
                Ok(()) | Err(CommandError::Ended) => call,
                Err(CommandError::Busy) => {
                    return Err(ApiError::Unavailable {
                        detail: "the call is busy; try again".into(),
                        retry_after: Some(std::time::Duration::from_secs(1)),
                    });
                }
            }
        }
        None => {
            // Not live in this process (never placed, or left over from
            // before a restart): close the record.
            let status = if call.status == CallStatus::InProgress {
                CallStatus::Completed
            } else {
                CallStatus::Canceled
            };
            let update = CallUpdate {
                hangup_reason: Some("hung up through the API".into()),
                ..CallUpdate {
                    hangup_by: by_api.hangup_by.clone(),
                    ..CallUpdate::ended(status, crate::store::now_ms())
                }
            };
            match state.store.update_call(&caller.org_id, &id, &update).await {
                Ok(c) => c,
                Err(StoreError::Conflict(_)) => {
                    return Err(ApiError::Conflict("call has already ended".into()));
                }
                Err(e) => return Err(e.into()),
            }
        }
    };
    Ok((StatusCode::ACCEPTED, Json(CallView::new(call, None))))
}

/// The body of `GET /v1/calls/{id}/transcript`.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct TranscriptView {
    /// The call.
    pub call_id: String,
    /// Lines in order.
    pub transcript: Vec<TranscriptLine>,
}

/// `GET /v1/calls/{id}/transcript`.
#[utoipa::path(
    get, path = "/v1/calls/{id}/transcript", tag = "calls",
    params(("id" = String, Path, description = "Call id")),
    responses(
        (status = 200, description = "What was said, in order", body = TranscriptView),
        (status = 404, description = "No such call", body = crate::api::error::ErrorBody),
    )
)]
pub async fn get_transcript(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<TranscriptView>, ApiError> {
    let lines = state
        .store
        .list_transcript(&caller.org_id, &id)
        .await
        .map_err(not_found)?;
    Ok(Json(TranscriptView {
        call_id: id,
        transcript: lines.into_iter().map(TranscriptLine::from).collect(),
    }))
}

/// `GET /v1/calls/{id}/recording`: the WAV, streamed; 404 until the call
/// has a recording.
#[utoipa::path(
    get, path = "/v1/calls/{id}/recording", tag = "calls",
    params(("id" = String, Path, description = "Call id")),
    responses(
        (status = 200, description = "The recording", content_type = "audio/wav", body = Vec<u8>),
        (status = 404, description = "No such call, or not recorded", body = crate::api::error::ErrorBody),
    )
)]
pub async fn get_recording(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let call = state
        .store
        .get_call(&caller.org_id, &id)
        .await
        .map_err(not_found)?;
    let Some(path) = call.recording_path else {
        return Err(ApiError::NotFound("recording"));
    };
    let mut path = PathBuf::from(path);
    if path.is_relative() {
        path = state.config.data_dir.join(path);
    }
    let file = match tokio::fs::File::open(&path).await {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Err(ApiError::NotFound("recording"));
        }
        Err(e) => return Err(ApiError::Internal(format!("{}: {e}", path.display()))),
    };
    let len = file
        .metadata()
        .await
        .map_err(|e| ApiError::Internal(e.to_string()))?
        .len();
    // Streamed in chunks: a long call's WAV is tens of megabytes.
    let stream = futures_util::stream::unfold(file, |mut f| async move {
        use tokio::io::AsyncReadExt;
        let mut buf = vec![0u8; 64 * 1024];
        match f.read(&mut buf).await {
            Ok(0) => None,
            Ok(n) => {
                buf.truncate(n);
                Some((Ok::<_, std::io::Error>(Bytes::from(buf)), f))
            }
            Err(e) => Some((Err(e), f)),
        }
    });
    Ok((
        [
            (header::CONTENT_TYPE, "audio/wav".to_owned()),
            (header::CONTENT_LENGTH, len.to_string()),
            (
                header::CONTENT_DISPOSITION,
                format!("attachment; filename=\"{id}.wav\""),
            ),
        ],
        Body::from_stream(stream),
    )
        .into_response())
}
