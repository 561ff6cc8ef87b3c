//! What `POST /v1/calls` adds for calls with an objective: saved
//! defaults of the calling number, the objective's fields, the playbook
//! and persona that make the agent's prompt, the extraction schema, the
//! retry policy and when the first attempt is due. Each field at fault
//! is named in the 422.

use serde_json::{Map, Value, json};

use super::CreateCallRequest;
use crate::api::AppState;
use crate::api::error::{ApiError, FieldError};
use crate::engine::screening::OnVoicemail;
use crate::outbound::policy::RetryPolicy;
use crate::playbooks::{self, CallBrief, VoicemailAction};
use crate::store::{CallStatus, StoreError};

/// Longest objective, in characters.
pub const OBJECTIVE_MAX: usize = 2000;
/// Longest context and previous-call context, in characters.
pub const CONTEXT_MAX: usize = 4000;
/// Most behaviour rules.
pub const RULES_MAX: usize = 20;
/// Longest behaviour rule, in characters.
pub const RULE_MAX: usize = 500;
/// Longest call a `max_duration_minutes` may ask for.
pub const MAX_MINUTES: u64 = 120;
/// Furthest ahead a call may be scheduled, ms (a year).
const MAX_SCHEDULE_AHEAD_MS: i64 = 366 * 86_400_000;

/// Fills what the request leaves unset from the calling number's saved
/// outbound defaults (`use_saved_agent`); the request's own values win.
pub async fn apply_saved_defaults(
    state: &AppState,
    org_id: &str,
    req: &mut CreateCallRequest,
    errors: &mut Vec<FieldError>,
) -> Result<(), ApiError> {
    if !req.use_saved_agent {
        return Ok(());
    }
    let from = req.from.as_deref().map(str::trim).unwrap_or("");
    let number = if from.starts_with("num_") {
        state.store.get_number(org_id, from).await
    } else {
        match crate::api::validate::e164("from", from) {
            Ok(e164) => state.store.get_number_by_e164(&e164).await,
            Err(_) => Err(StoreError::NotFound),
        }
    };
    let number = match number {
        Ok(n) if n.org_id == org_id => n,
        Ok(_) | Err(StoreError::NotFound) => {
            errors.push(FieldError::body(
                "use_saved_agent",
                "needs `from`: one of the organization's numbers",
            ));
            return Ok(());
        }
        Err(e) => return Err(e.into()),
    };
    let Some(saved) = state.store.outbound_defaults(org_id, &number.id).await? else {
        errors.push(FieldError::body(
            "use_saved_agent",
            format!("the number {} has no saved outbound defaults", number.id),
        ));
        return Ok(());
    };
    let d = saved.defaults;
    fill(&mut req.agent_id, d.agent_id);
    fill(&mut req.playbook_id, d.playbook_id);
    fill(&mut req.persona_id, d.persona_id);
    fill(&mut req.objective, d.objective);
    fill(&mut req.context, d.context);
    fill(&mut req.behavior_rules, d.behavior_rules);
    fill(&mut req.system_prompt, d.system_prompt);
    fill(&mut req.first_message, d.first_message);
    fill(&mut req.voice, d.voice);
    fill(&mut req.language, d.language);
    fill(
        &mut req.on_voicemail,
        d.on_voicemail.map(|a| match a {
            VoicemailAction::LeaveMessage => OnVoicemail::LeaveMessage,
            VoicemailAction::HangUp => OnVoicemail::HangUp,
            VoicemailAction::Retry => OnVoicemail::Retry,
        }),
    );
    fill(&mut req.voicemail_message, d.voicemail_message);
    if req.max_duration_secs.is_none() {
        fill(
            &mut req.max_duration_minutes,
            d.max_duration_minutes.and_then(|m| u64::try_from(m).ok()),
        );
    }
    fill(&mut req.extraction_schema, d.extraction_schema);
    if req.retry_policy.is_none()
        && let Some(p) = d.retry_policy
    {
        match serde_json::from_value(p) {
            Ok(p) => req.retry_policy = Some(p),
            Err(e) => errors.push(FieldError::body(
                "use_saved_agent",
                format!("the saved retry_policy is not valid: {e}"),
            )),
        }
    }
    if !req.record {
        req.record = d.record.unwrap_or(false);
    }
    Ok(())
}

fn fill<T>(slot: &mut Option<T>, saved: Option<T>) {
    if slot.is_none() {
        *slot = saved;
    }
}

fn chars(field: &str, v: &str, max: usize, errors: &mut Vec<FieldError>) {
    if v.trim().is_empty() || v.chars().count() > max {
        errors.push(FieldError::body(
            field,
            format!("must be 1 to {max} characters"),
        ));
    }
}

/// Checks the objective's fields and, for an agent call with an
/// objective, a playbook or a persona, resolves them into the prompt the
/// agent runs with (`agent_prompt`, unless the request gives its own
/// `system_prompt`) and the schema the summary extracts. Everything goes
/// into the stored `request`.
pub async fn plan_objective(
    state: &AppState,
    org_id: &str,
    to: &str,
    req: &CreateCallRequest,
    request: &mut Map<String, Value>,
    errors: &mut Vec<FieldError>,
) -> Result<(), ApiError> {
    if let Some(o) = &req.objective {
        chars("objective", o, OBJECTIVE_MAX, errors);
    }
    for (field, v) in [
        ("context", &req.context),
        ("previous_call_context", &req.previous_call_context),
    ] {
        if let Some(v) = v {
            chars(field, v, CONTEXT_MAX, errors);
            request.insert(field.into(), json!(v));
        }
    }
    let rules = req.behavior_rules.clone().unwrap_or_default();
    if rules.len() > RULES_MAX {
        errors.push(FieldError::body(
            "behavior_rules",
            format!("at most {RULES_MAX} rules"),
        ));
    }
    for (i, r) in rules.iter().enumerate() {
        chars(&format!("behavior_rules.{i}"), r, RULE_MAX, errors);
    }
    if req.behavior_rules.is_some() {
        request.insert("behavior_rules".into(), json!(rules));
    }
    let schema = match &req.extraction_schema {
        Some(s) => match playbooks::normalize_schema(s) {
            Ok(n) => Some(n),
            Err(m) => {
                errors.push(FieldError::body("extraction_schema", m));
                None
            }
        },
        None => None,
    };
    if let Some(m) = req.max_duration_minutes {
        if !(1..=MAX_MINUTES).contains(&m) {
            errors.push(FieldError::body(
                "max_duration_minutes",
                format!("must be 1 to {MAX_MINUTES}"),
            ));
        }
        if req.max_duration_secs.is_some() {
            errors.push(FieldError::body(
                "max_duration_minutes",
                "give max_duration_minutes or max_duration_secs, not both",
            ));
        }
        request.insert("max_duration_secs".into(), json!(m * 60));
    }
    let objective_call = req.objective.is_some()
        || req.playbook_id.is_some()
        || req.persona_id.is_some()
        || req.context.is_some()
        || req.behavior_rules.is_some();
    if !objective_call {
        if let Some(s) = schema {
            request.insert("extraction_schema".into(), s);
        }
        return Ok(());
    }
    if req.objective.is_none() && req.system_prompt.is_none() && req.agent_id.is_none() {
        errors.push(FieldError::body(
            "objective",
            "required with playbook_id, persona_id, context or behavior_rules",
        ));
    }
    // The playbook: given, else classified from the objective.
    let playbook_id = match (&req.playbook_id, &req.objective) {
        (Some(id), _) => Some(id.clone()),
        (None, Some(o)) if errors.is_empty() => {
            let c = crate::api::resources::playbooks::classify_objective(state, org_id, o).await?;
            request.insert("playbook_method".into(), json!(c.method));
            Some(c.playbook_id)
        }
        (None, _) => None,
    };
    let resolved = match playbooks::resolve(
        &state.store,
        org_id,
        playbook_id.as_deref(),
        req.persona_id.as_deref(),
    )
    .await
    {
        Ok(r) => Some(r),
        Err(playbooks::compose::ResolveError::NotFound(field)) => {
            errors.push(FieldError::body(field, "no such id in the organization"));
            None
        }
        Err(playbooks::compose::ResolveError::Store(e)) => return Err(e.into()),
    };
    let Some((playbook, persona)) = resolved else {
        return Ok(());
    };
    request.insert("playbook_id".into(), json!(playbook.id));
    if let Some(p) = &persona {
        request.insert("persona_id".into(), json!(p.id));
    }
    let brief = CallBrief {
        objective: req.objective.as_deref(),
        context: req.context.as_deref(),
        behavior_rules: &rules,
        previous_call_context: req.previous_call_context.as_deref(),
        to,
        extraction_schema: schema.as_ref(),
    };
    request.insert(
        "agent_prompt".into(),
        json!(playbooks::compose_prompt(
            &playbook,
            persona.as_ref(),
            &brief
        )),
    );
    request.insert(
        "extraction_schema".into(),
        playbooks::effective_schema(&playbook, schema.as_ref(), req.objective.as_deref()),
    );
    // The persona's voice and language, unless the call names its own.
    if let Some(p) = &persona {
        if req.voice.is_none()
            && let Some(v) = &p.voice
        {
            request.insert("voice".into(), json!(v));
        }
        if req.language.is_none()
            && let Some(l) = &p.language
        {
            request.insert("language".into(), json!(l));
        }
    }
    request.insert("campaign".into(), json!(true));
    Ok(())
}

/// The retry policy (kept in `request` as given) and when the first
/// attempt is due: `(status, due)`, `queued` now or `scheduled` later.
pub fn first_attempt(
    req: &CreateCallRequest,
    now: i64,
    request: &mut Map<String, Value>,
    errors: &mut Vec<FieldError>,
) -> Option<(CallStatus, i64)> {
    let voicemail_retry = req.on_voicemail == Some(OnVoicemail::Retry);
    let policy = match &req.retry_policy {
        Some(spec) => match RetryPolicy::new(spec, voicemail_retry) {
            Ok(p) => {
                request.insert("retry_policy".into(), json!(spec));
                Some(p)
            }
            Err((path, msg)) => {
                errors.push(FieldError::body(&format!("retry_policy.{path}"), msg));
                None
            }
        },
        None => Some(RetryPolicy::single(voicemail_retry)),
    };
    let at = match &req.schedule_at {
        Some(w) => match w.millis() {
            Ok(at) if at > now + MAX_SCHEDULE_AHEAD_MS => {
                errors.push(FieldError::body(
                    "schedule_at",
                    "must be within a year from now",
                ));
                None
            }
            Ok(at) => {
                request.insert("schedule_at".into(), json!(at));
                Some(at.max(now))
            }
            Err(m) => {
                errors.push(FieldError::body("schedule_at", m));
                None
            }
        },
        None => Some(now),
    };
    let (policy, at) = (policy?, at?);
    let Some(due) = policy.dial_time(at) else {
        errors.push(FieldError::body(
            "retry_policy.expires_at",
            "the policy expires before the first attempt could start",
        ));
        return None;
    };
    let status = if due > now {
        CallStatus::Scheduled
    } else {
        CallStatus::Queued
    };
    Some((status, due))
}
