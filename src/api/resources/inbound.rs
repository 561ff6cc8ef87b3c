//! `/v1/numbers/{id}/inbound-config`: how a number answers inbound calls,
//! read and written on its own.
//!
//! - `GET` reads the configuration (unset settings shown with their
//!   defaults);
//! - `PUT` replaces it whole: fields not sent get their defaults, and the
//!   result is validated as a whole;
//! - `PATCH` changes only the fields sent and keeps the rest (changing the
//!   voice keeps the prompt); `null` clears an optional field;
//! - `DELETE` turns inbound AI off: `mode` becomes `off` and calls take
//!   the number's `fallback`. The AI settings stay stored, so a later
//!   `PATCH {"mode": "ai"}` turns it back on as it was.
//!
//! Storage: everything but `agent_id` and `label` is the number's
//! `inbound` JSON (the same object `PATCH /v1/numbers/{id}` writes as
//! `inbound`, a superset of it); `agent_id` and `label` are the number's
//! own columns, so `GET /v1/numbers?agent_id=` still finds it. Business
//! hours, the after-hours behaviour and the fallback are fields of the
//! same JSON object:
//!
//! ```json
//! {"mode": "ai", "system_prompt": "You are the front desk of …",
//!  "voice": "en-us", "language": "de", "max_duration_secs": 600,
//!  "business_hours": {"timezone": "Europe/Berlin",
//!                     "weekly": {"mon": [["09:00", "17:00"]]},
//!                     "holidays": ["2026-12-25"]},
//!  "after_hours": "voicemail", "after_hours_message": "We are closed…",
//!  "fallback": "reject", "reject_status": 480}
//! ```
//!
//! How the engine runs it is [`crate::api::calls::numbers::route_for`].

use axum::extract::{Path, State};
use axum::routing::get;
use axum::{Json, Router};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use utoipa::ToSchema;

use super::not_found;
use crate::api::extract::parse_body;
use crate::api::validate::{DenyList, Problems, callable};
use crate::api::{ApiError, AppState, Caller};
use crate::engine::announce::MAX_VOICEMAIL_SECS;
use crate::inbound::context::{ContextSource, DEFAULT_WEBHOOK_TIMEOUT_MS, WEBHOOK_TIMEOUT_RANGE};
use crate::inbound::hours::BusinessHours;
use crate::inbound::language::ReplyLanguage;
use crate::store::{Number, NumberUpdate, StoreError};

/// What a missing one is called in a 404.
const WHAT: &str = "number";
/// Longest label or voice name, in characters.
const SHORT: usize = super::agents::SHORT;
/// Longest prompt or message, in characters.
const LONG: usize = super::agents::LONG;
/// Longest ring before answering.
const MAX_RING_SECS: u32 = 120;
/// Most digits a `play` number collects.
const MAX_DIGITS: u32 = 64;
/// Longest wait for a digit.
const MAX_DIGIT_TIMEOUT_SECS: u32 = 60;
/// Shortest pre-call webhook secret, in characters.
const MIN_SECRET: usize = 16;
/// Longest pre-call webhook secret, in characters.
const MAX_SECRET: usize = 256;
/// An inbound AI call's length limit unless one is set.
pub const DEFAULT_MAX_DURATION_SECS: u32 = 600;
/// The range `max_duration_secs` may take.
pub const MAX_DURATION_RANGE: std::ops::RangeInclusive<u32> = 30..=7200;
/// A voicemail's length unless `voicemail_max_secs` is set.
pub const DEFAULT_VOICEMAIL_SECS: u32 = 120;
/// What a `reject` fallback answers unless `reject_status` is set.
pub const DEFAULT_REJECT_STATUS: u16 = 480;
/// Said after hours (`message`, `voicemail`) when no message is set.
pub const DEFAULT_AFTER_HOURS_MESSAGE: &str =
    "Thank you for calling. We are closed right now. Please call again during our business hours.";
/// Said after hours before the voicemail beep when no message is set.
pub const DEFAULT_VOICEMAIL_MESSAGE: &str =
    "Thank you for calling. We are closed right now. Please leave a message after the tone.";
/// Said by a closed number (`fallback: play`) when no message is set.
pub const DEFAULT_CLOSED_MESSAGE: &str =
    "Thank you for calling. This line is not taking calls right now. Goodbye.";

/// The routes of `/v1/numbers/{id}/inbound-config`.
pub fn routes() -> Router<AppState> {
    Router::new().route(
        "/numbers/{id}/inbound-config",
        get(read).put(replace).patch(update).delete(turn_off),
    )
}

/// How an inbound call to a number is handled.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum InboundMode {
    /// The voice agent talks to the caller: the number's `agent_id`, or
    /// the inline `system_prompt` (one of them is required), with the
    /// settings below over the agent's.
    Ai,
    /// The offline flow engine talks to the caller: `flow` is a built-in
    /// flow's name (`receptionist`, `demo`) or a flow definition.
    Flow,
    /// Audio is sent back as received: a line test.
    Echo,
    /// A prompt is played and DTMF digits collected.
    Play,
    /// The call is forwarded to `forward_to`.
    Forward,
    /// Inbound calls are not handled: they get the `fallback` (404 when no
    /// fallback is set).
    #[default]
    Off,
}

/// What calls get outside business hours.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum AfterHours {
    /// The same agent answers, greeting with `after_hours_message` and
    /// told that the business is closed.
    Ai,
    /// `after_hours_message` is spoken, then the call ends.
    Message,
    /// The call is forwarded to `after_hours_forward_to`.
    Forward,
    /// `after_hours_message` is spoken, then the caller is recorded for
    /// up to `voicemail_max_secs`; the recording (and its transcript, when
    /// the server has speech-to-text) is stored on the call.
    Voicemail,
}

/// What calls get while inbound AI is off (`mode: off`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Fallback {
    /// Forwarded to `fallback_forward_to`.
    Forward,
    /// `closed_message` spoken (or `closed_prompt` played), then the call
    /// ends.
    Play,
    /// Refused with `reject_status` (480 by default).
    Reject,
}

/// A number's inbound handling: the mode and its settings. The settings
/// of `echo`, `play` and `forward` are refused in other modes, so a typo
/// cannot hide; the AI settings may stay while the number is in another
/// mode (turning AI off keeps them).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct InboundConfig {
    /// What the number does.
    pub mode: InboundMode,
    /// Ring for this long (0 to 120 s) before answering.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ring_secs: Option<u32>,
    /// While ringing, send early media (183 with ringback) instead of 180.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub early_media: Option<bool>,
    /// `play`: the prompt file, relative to the data directory; a beep if
    /// unset.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prompt: Option<String>,
    /// `play`: stop collecting after this many digits (1 to 64) or `#`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_digits: Option<u32>,
    /// `play`: stop collecting after this long without a digit (1 to 60 s).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub digit_timeout_secs: Option<u32>,
    /// `forward`: the E.164 number calls are sent to (through the
    /// number's trunk), never the number itself. The caller is answered
    /// only when it answers, and gets 486 when it is busy, 480 when it
    /// does not answer.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub forward_to: Option<String>,
    /// `ai`: the instructions, replacing the agent's (required without an
    /// `agent_id`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub system_prompt: Option<String>,
    /// `flow`: a built-in flow's name or a flow definition (as an agent's
    /// `model.flow`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Object>)]
    pub flow: Option<Value>,
    /// Said when the call is answered, replacing the agent's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub first_message: Option<String>,
    /// TTS voice: an id from `GET /v1/voices`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub voice: Option<String>,
    /// `auto` (reply in the caller's language) or an ISO 639-1 code with
    /// an optional region (`de`, `pt-BR`). At call time "Always reply in
    /// German." (or the `auto` equivalent) is appended to the prompt the
    /// brain gets; the stored prompt is unchanged.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub language: Option<String>,
    /// Hang up after this long, 30 to 7200 s (600 when unset).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_duration_secs: Option<u32>,
    /// Record AI calls (stereo WAV; off when unset).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub record: Option<bool>,
    /// Where the agent's `transfer_call` sends the caller (E.164, not on
    /// the deny list), replacing the agent's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub transfer_number: Option<String>,
    /// `ai`, `flow`: what the prompt learns about the caller before the
    /// call: `none`, `memory` (what Hotline remembers of them: the
    /// default), `webhook` (the pre-call webhook's `context_block`) or
    /// `merge` (both, memory first). The stored prompt is unchanged.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub context_source: Option<ContextSource>,
    /// The pre-call webhook, required by `webhook` and `merge`: a signed
    /// `POST` with the call, the caller and what Hotline knows of them,
    /// when an AI call connects. Its reply's `context_block` is appended
    /// to the prompt; a slow or failing webhook is skipped.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub context_webhook_url: Option<String>,
    /// The HMAC key of the pre-call webhook's `X-Hotline-Signature` (16 to
    /// 256 characters); made (`whsec_…`) when a URL is set without one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub context_webhook_secret: Option<String>,
    /// How long the pre-call webhook may take, 100 to 5000 ms (1200 when
    /// unset); the call goes on without its context after that.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub context_webhook_timeout_ms: Option<u32>,
    /// When the business is open; always open when unset.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub business_hours: Option<BusinessHours>,
    /// What calls get outside business hours (`message` when unset).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub after_hours: Option<AfterHours>,
    /// The after-hours (and voicemail) message: spoken by `message` and
    /// `voicemail`, the greeting of `ai`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub after_hours_message: Option<String>,
    /// `after_hours: forward`: where calls go (E.164).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub after_hours_forward_to: Option<String>,
    /// `after_hours: voicemail`: the longest message, 10 to 300 s (120
    /// when unset).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub voicemail_max_secs: Option<u32>,
    /// What calls get in mode `off` (after `DELETE`): `reject` with
    /// `reject_status` when unset after a `DELETE`, 404 for a number that
    /// was created off.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fallback: Option<Fallback>,
    /// `fallback: forward`: where calls go (E.164).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fallback_forward_to: Option<String>,
    /// `fallback: play`: the text spoken.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub closed_message: Option<String>,
    /// `fallback: play`: a prompt file (relative to the data directory)
    /// played instead of `closed_message`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub closed_prompt: Option<String>,
    /// `fallback: reject`: the SIP status, 400 to 699 (480 when unset).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reject_status: Option<u16>,
}

fn in_range<T: PartialOrd + std::fmt::Display + Copy>(
    p: &mut Problems,
    field: &str,
    value: Option<T>,
    range: std::ops::RangeInclusive<T>,
) {
    if let Some(v) = value
        && !range.contains(&v)
    {
        p.add(
            field,
            format!("must be between {} and {}", range.start(), range.end()),
        );
    }
}

/// A relative path under the data directory, no `..`: an API key must not
/// make the server read arbitrary files.
fn relative_path(p: &mut Problems, field: &str, value: Option<&str>) {
    let Some(v) = value else { return };
    p.text(field, v, 1024);
    let ok = std::path::Path::new(v).components().all(|c| {
        matches!(
            c,
            std::path::Component::Normal(_) | std::path::Component::CurDir
        )
    });
    if !ok {
        p.add(
            field,
            "must be a relative path under the data directory, without ..",
        );
    }
}

impl InboundConfig {
    /// Inbound calls refused.
    pub fn off() -> InboundConfig {
        InboundConfig::default()
    }

    /// Checks the whole configuration, reporting problems at `prefix` and
    /// the field (`inbound.` under `/v1/numbers`, nothing under
    /// `/inbound-config`). Canonicalises the phone numbers, which must
    /// not be `own` (the number itself: a forwarding loop). Whether an
    /// `ai` number has an agent or a prompt, and whether the voice exists,
    /// are the caller's to check (they need the store).
    pub fn check(&mut self, p: &mut Problems, deny: &DenyList, own: &str, prefix: &str) {
        let at = |field: &str| format!("{prefix}{field}");
        let only = |p: &mut Problems, field: &str, set: bool, mode: &str| {
            if set {
                p.add(&at(field), format!("only for mode {mode}"));
            }
        };
        in_range(p, &at("ring_secs"), self.ring_secs, 0..=MAX_RING_SECS);
        if self.mode == InboundMode::Play {
            p.opt_text(&at("prompt"), self.prompt.as_deref(), 1024);
            in_range(p, &at("max_digits"), self.max_digits, 1..=MAX_DIGITS);
            in_range(
                p,
                &at("digit_timeout_secs"),
                self.digit_timeout_secs,
                1..=MAX_DIGIT_TIMEOUT_SECS,
            );
        } else {
            only(p, "prompt", self.prompt.is_some(), "play");
            only(p, "max_digits", self.max_digits.is_some(), "play");
            only(
                p,
                "digit_timeout_secs",
                self.digit_timeout_secs.is_some(),
                "play",
            );
        }
        let phone = |p: &mut Problems, field: &str, value: &mut Option<String>| {
            if let Some(n) = value.as_deref() {
                match callable(&at(field), n, deny) {
                    Ok(n) if n == own => p.add(
                        &at(field),
                        "must not be the number itself (a forwarding loop)",
                    ),
                    Ok(n) => *value = Some(n),
                    Err(e) => p.0.push(e),
                }
            }
        };
        if self.mode == InboundMode::Forward {
            if self.forward_to.is_none() {
                p.add(&at("forward_to"), "required for mode forward");
            }
            phone(p, "forward_to", &mut self.forward_to);
        } else {
            only(p, "forward_to", self.forward_to.is_some(), "forward");
        }
        // The AI settings.
        p.opt_text(&at("system_prompt"), self.system_prompt.as_deref(), LONG);
        p.opt_text(&at("first_message"), self.first_message.as_deref(), LONG);
        p.opt_text(&at("voice"), self.voice.as_deref(), SHORT);
        if let Some(l) = &self.language {
            match ReplyLanguage::parse(l) {
                Some(lang) => self.language = Some(lang.tag()),
                None => p.add(
                    &at("language"),
                    "must be auto or an ISO 639-1 code, optionally with a region (de, pt-BR)",
                ),
            }
        }
        in_range(
            p,
            &at("max_duration_secs"),
            self.max_duration_secs,
            MAX_DURATION_RANGE,
        );
        if let Some(t) = self.transfer_number.as_deref() {
            match callable(&at("transfer_number"), t, deny) {
                Ok(n) => self.transfer_number = Some(n),
                Err(e) => p.0.push(e),
            }
        }
        match (&self.flow, self.mode) {
            (None, InboundMode::Flow) => p.add(
                &at("flow"),
                "required for mode flow: a built-in flow's name or a definition",
            ),
            (Some(flow), _) => {
                let model = serde_json::json!({"provider": "flow", "flow": flow});
                if let Err(issues) = crate::agent::model::AgentModel::parse(&model) {
                    for (path, msg) in issues {
                        let path = path.strip_prefix("model.").unwrap_or(&path);
                        p.add(&at(path), msg);
                    }
                }
            }
            (None, _) => {}
        }
        self.check_context(p, prefix);
        // After hours.
        if let Some(hours) = &self.business_hours
            && let Err(problems) = hours.compile()
        {
            for (path, msg) in problems {
                p.add(&at(&format!("business_hours.{path}")), msg);
            }
        }
        p.opt_text(
            &at("after_hours_message"),
            self.after_hours_message.as_deref(),
            LONG,
        );
        if self.after_hours == Some(AfterHours::Forward) && self.after_hours_forward_to.is_none() {
            p.add(
                &at("after_hours_forward_to"),
                "required when after_hours is forward",
            );
        }
        phone(
            p,
            "after_hours_forward_to",
            &mut self.after_hours_forward_to,
        );
        in_range(
            p,
            &at("voicemail_max_secs"),
            self.voicemail_max_secs,
            10..=MAX_VOICEMAIL_SECS,
        );
        // The fallback.
        if self.fallback == Some(Fallback::Forward) && self.fallback_forward_to.is_none() {
            p.add(
                &at("fallback_forward_to"),
                "required when fallback is forward",
            );
        }
        phone(p, "fallback_forward_to", &mut self.fallback_forward_to);
        p.opt_text(&at("closed_message"), self.closed_message.as_deref(), LONG);
        relative_path(p, &at("closed_prompt"), self.closed_prompt.as_deref());
        in_range(p, &at("reject_status"), self.reject_status, 400..=699);
    }

    /// The caller context settings; a webhook without a secret gets one.
    fn check_context(&mut self, p: &mut Problems, prefix: &str) {
        let at = |field: &str| format!("{prefix}{field}");
        let source = self.context_source.unwrap_or_default();
        match &self.context_webhook_url {
            Some(url) => p.http_url(&at("context_webhook_url"), url),
            None if source.webhook() => p.add(
                &at("context_webhook_url"),
                "required when context_source is webhook or merge",
            ),
            None => {}
        }
        if let Some(secret) = &self.context_webhook_secret {
            let n = secret.chars().count();
            if !(MIN_SECRET..=MAX_SECRET).contains(&n) || secret.trim() != secret {
                p.add(
                    &at("context_webhook_secret"),
                    format!(
                        "must be {MIN_SECRET} to {MAX_SECRET} characters, without surrounding spaces"
                    ),
                );
            }
        } else if self.context_webhook_url.is_some() {
            self.context_webhook_secret = Some(format!(
                "{}{}",
                crate::store::WEBHOOK_SECRET_PREFIX,
                crate::store::random_hex32()
            ));
        }
        in_range(
            p,
            &at("context_webhook_timeout_ms"),
            self.context_webhook_timeout_ms,
            WEBHOOK_TIMEOUT_RANGE,
        );
    }

    /// The stored form.
    pub fn to_value(&self) -> Value {
        serde_json::to_value(self).expect("inbound config serializes")
    }
}

/// Checks that `voice` is one of the organization's catalogue voices
/// (`GET /v1/voices`).
pub(crate) async fn check_voice(
    p: &mut Problems,
    state: &AppState,
    org_id: &str,
    field: &str,
    voice: Option<&str>,
) -> Result<(), ApiError> {
    let Some(voice) = voice else { return Ok(()) };
    if voice.trim().is_empty() {
        return Ok(()); // reported as empty by `check`
    }
    let keys = state
        .store
        .org_settings(org_id)
        .await?
        .get("provider_keys")
        .cloned();
    let voices = super::voices::catalog(state, keys.as_ref()).await?;
    if !voices.iter().any(|v| v.id == voice) {
        p.add(
            field,
            format!("{voice:?} is not a voice of this server (see GET /v1/voices)"),
        );
    }
    Ok(())
}

/// The `ai` rule: an agent or a prompt to run.
pub(crate) fn check_ai(
    p: &mut Problems,
    inbound: &InboundConfig,
    agent_id: Option<&str>,
    field: &str,
) {
    if inbound.mode == InboundMode::Ai && agent_id.is_none() && inbound.system_prompt.is_none() {
        p.add(
            field,
            "required when inbound.mode is ai (or give inbound.system_prompt)",
        );
    }
}

/// A number's inbound configuration as the API shows it: the stored
/// settings with the defaults of the unset ones that have one.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct InboundConfigOut {
    /// The number (`num_…`).
    pub number_id: String,
    /// The number in E.164.
    pub e164: String,
    /// The agent `ai` calls run (the number's `agent_id`).
    pub agent_id: Option<String>,
    /// The number's label.
    pub label: Option<String>,
    /// The settings.
    #[serde(flatten)]
    pub config: InboundConfig,
}

impl InboundConfigOut {
    fn of(number: Number) -> InboundConfigOut {
        let mut config: InboundConfig =
            serde_json::from_value(number.inbound.clone()).unwrap_or_default();
        config.max_duration_secs = config.max_duration_secs.or(Some(DEFAULT_MAX_DURATION_SECS));
        config.record = config.record.or(Some(false));
        config.context_source = config.context_source.or(Some(ContextSource::Memory));
        if config.context_webhook_url.is_some() {
            config.context_webhook_timeout_ms = config
                .context_webhook_timeout_ms
                .or(Some(DEFAULT_WEBHOOK_TIMEOUT_MS));
        }
        if config.business_hours.is_some() {
            config.after_hours = config.after_hours.or(Some(AfterHours::Message));
        }
        InboundConfigOut {
            number_id: number.id,
            e164: number.e164,
            agent_id: number.agent_id,
            label: number.label,
            config,
        }
    }
}

/// The body of `PUT` and `PATCH`: the settings, and the number's
/// `agent_id` and `label`. (For the API description; bodies are read as
/// JSON objects so that `PATCH` can tell an absent field from `null`.)
#[derive(Debug, Clone, Deserialize, ToSchema)]
pub struct InboundConfigIn {
    /// An agent of the organization; `null` clears it.
    pub agent_id: Option<String>,
    /// The number's label; `null` clears it.
    pub label: Option<String>,
    /// The settings (`mode` is required by `PUT`).
    #[serde(flatten)]
    pub config: InboundConfig,
}

/// The two columns a body may set beside the JSON: absent (`None`),
/// cleared (`Some(None)`) or set.
struct Columns {
    agent_id: Option<Option<String>>,
    label: Option<Option<String>>,
}

/// Splits `agent_id` and `label` off a body object.
fn columns(p: &mut Problems, body: &mut Map<String, Value>) -> Columns {
    let mut take = |p: &mut Problems, key: &str| match body.remove(key) {
        None => None,
        Some(Value::Null) => Some(None),
        Some(Value::String(s)) => Some(Some(s)),
        Some(_) => {
            p.add(key, "must be a string or null");
            None
        }
    };
    Columns {
        agent_id: take(p, "agent_id"),
        label: take(p, "label"),
    }
}

fn object(value: Value) -> Result<Map<String, Value>, ApiError> {
    match value {
        Value::Object(m) => Ok(m),
        _ => Err(ApiError::Validation(vec![crate::api::error::FieldError {
            loc: vec!["body".into()],
            msg: "must be a JSON object".into(),
        }])),
    }
}

/// Validates and stores `config` with `cols` over `current`.
async fn save(
    state: &AppState,
    caller: &Caller,
    current: &Number,
    mut p: Problems,
    config: Option<InboundConfig>,
    cols: Columns,
) -> Result<Json<InboundConfigOut>, ApiError> {
    let Some(mut config) = config else {
        // The body did not parse: its problems are all there is to say.
        return Err(ApiError::Validation(p.0));
    };
    config.check(&mut p, &state.deny, &current.e164, "");
    if let Some(Some(l)) = &cols.label {
        p.text("label", l, SHORT);
    }
    if let Some(Some(a)) = &cols.agent_id {
        match state.store.get_agent(&caller.org_id, a).await {
            Ok(_) => {}
            Err(StoreError::NotFound) => p.add("agent_id", "no such agent"),
            Err(e) => return Err(e.into()),
        }
    }
    let agent_after = match &cols.agent_id {
        Some(a) => a.clone(),
        None => current.agent_id.clone(),
    };
    check_ai(&mut p, &config, agent_after.as_deref(), "agent_id");
    check_voice(
        &mut p,
        state,
        &caller.org_id,
        "voice",
        config.voice.as_deref(),
    )
    .await?;
    p.finish()?;
    let update = NumberUpdate {
        label: cols.label,
        trunk: None,
        agent_id: cols.agent_id,
        inbound: Some(config.to_value()),
    };
    let number = state
        .store
        .update_number(&caller.org_id, &current.id, &update)
        .await
        .map_err(not_found(WHAT))?;
    // The next call follows the new settings.
    crate::api::calls::numbers::number_changed(state, &number);
    Ok(Json(InboundConfigOut::of(number)))
}

/// Parses a settings object, collecting its problem.
fn parse_config(p: &mut Problems, settings: Map<String, Value>) -> Option<InboundConfig> {
    let bytes = serde_json::to_vec(&Value::Object(settings)).expect("JSON serializes");
    match parse_body::<InboundConfig>(&bytes) {
        Ok(c) => Some(c),
        Err(ApiError::Validation(errors)) => {
            p.0.extend(errors);
            None
        }
        Err(_) => None,
    }
}

async fn current(state: &AppState, caller: &Caller, id: &str) -> Result<Number, ApiError> {
    state
        .store
        .get_number(&caller.org_id, id)
        .await
        .map_err(not_found(WHAT))
}

/// Reads a number's inbound configuration.
#[utoipa::path(
    get, path = "/v1/numbers/{id}/inbound-config", tag = "numbers",
    params(("id" = String, Path, description = "Number id")),
    responses(
        (status = 200, description = "The configuration", body = InboundConfigOut),
        (status = 404, description = "No such number", body = crate::api::error::ErrorBody),
    )
)]
pub async fn read(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<InboundConfigOut>, ApiError> {
    Ok(Json(InboundConfigOut::of(
        current(&state, &caller, &id).await?,
    )))
}

/// Replaces a number's inbound configuration: fields not sent get their
/// defaults (`agent_id` and `label` are left as they are unless sent).
#[utoipa::path(
    put, path = "/v1/numbers/{id}/inbound-config", tag = "numbers",
    params(("id" = String, Path, description = "Number id")),
    request_body = InboundConfigIn,
    responses(
        (status = 200, description = "The configuration as stored", body = InboundConfigOut),
        (status = 404, description = "No such number", body = crate::api::error::ErrorBody),
        (status = 422, description = "A field is invalid", body = crate::api::error::ValidationErrorBody),
    )
)]
pub async fn replace(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    crate::api::extract::JsonBody(body): crate::api::extract::JsonBody<Value>,
) -> Result<Json<InboundConfigOut>, ApiError> {
    let number = current(&state, &caller, &id).await?;
    let mut body = object(body)?;
    let mut p = Problems::default();
    let cols = columns(&mut p, &mut body);
    let config = parse_config(&mut p, body);
    save(&state, &caller, &number, p, config, cols).await
}

/// Changes only the fields sent; `null` clears an optional field (`mode`
/// cannot be cleared). `business_hours` is replaced as a whole.
#[utoipa::path(
    patch, path = "/v1/numbers/{id}/inbound-config", tag = "numbers",
    params(("id" = String, Path, description = "Number id")),
    request_body = InboundConfigIn,
    responses(
        (status = 200, description = "The configuration as stored", body = InboundConfigOut),
        (status = 404, description = "No such number", body = crate::api::error::ErrorBody),
        (status = 422, description = "A field is invalid", body = crate::api::error::ValidationErrorBody),
    )
)]
pub async fn update(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    crate::api::extract::JsonBody(body): crate::api::extract::JsonBody<Value>,
) -> Result<Json<InboundConfigOut>, ApiError> {
    let number = current(&state, &caller, &id).await?;
    let mut body = object(body)?;
    let mut p = Problems::default();
    let cols = columns(&mut p, &mut body);
    let mut merged = match &number.inbound {
        Value::Object(m) => m.clone(),
        _ => Map::new(),
    };
    for (k, v) in body {
        if v.is_null() && k == "mode" {
            // Kept, so that this is the only problem reported for it.
            p.add("mode", "may not be null");
        } else if v.is_null() {
            merged.remove(&k);
        } else {
            merged.insert(k, v);
        }
    }
    let config = parse_config(&mut p, merged);
    save(&state, &caller, &number, p, config, cols).await
}

/// Turns inbound AI off: `mode` becomes `off` and calls get the fallback
/// (`reject` with 480 when none is set). The AI settings are kept.
#[utoipa::path(
    delete, path = "/v1/numbers/{id}/inbound-config", tag = "numbers",
    params(("id" = String, Path, description = "Number id")),
    responses(
        (status = 200, description = "The configuration, now off", body = InboundConfigOut),
        (status = 404, description = "No such number", body = crate::api::error::ErrorBody),
    )
)]
pub async fn turn_off(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<InboundConfigOut>, ApiError> {
    let number = current(&state, &caller, &id).await?;
    let mut config: InboundConfig =
        serde_json::from_value(number.inbound.clone()).unwrap_or_default();
    config.mode = InboundMode::Off;
    // The other modes' settings would be refused in mode off.
    config.prompt = None;
    config.max_digits = None;
    config.digit_timeout_secs = None;
    config.forward_to = None;
    config.fallback = config.fallback.or(Some(Fallback::Reject));
    let update = NumberUpdate {
        label: None,
        trunk: None,
        agent_id: None,
        inbound: Some(config.to_value()),
    };
    let number = state
        .store
        .update_number(&caller.org_id, &number.id, &update)
        .await
        .map_err(not_found(WHAT))?;
    crate::api::calls::numbers::number_changed(&state, &number);
    Ok(Json(InboundConfigOut::of(number)))
}
