//! Alert and verification calls: placed through the call engine with the
//! server's voice, each attempt recorded as a delivery, and an alert
//! call's end fed back to its escalation.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{broadcast, oneshot};
use tracing::{info, warn};

use super::drive::drive;
use crate::agent::espeak::EspeakTts;
use crate::agent::pipeline::GreetingCache;
use crate::agent::provider::Tts;
use crate::alerts::call::{AlertCall, CallOutcome, code_speech, speech};
use crate::alerts::escalation::{CallResult, Input};
use crate::api::AppState;
use crate::call::{CallEvent, CallRecord, Outcome};
use crate::engine::{CallApp, OutboundCall};
use crate::store::Alert;
use crate::store::now_ms;

/// The trunk that reaches `to`: none for a `sip:` URI, else
/// `alerts.trunk`, else the only trunk configured.
fn trunk_for(state: &AppState, to: &str) -> Result<Option<String>, String> {
    if to.starts_with("sip:") || to.starts_with("sips:") {
        return Ok(None);
    }
    if let Some(t) = &state.config.alerts.trunk {
        return Ok(Some(t.clone()));
    }
    match state.config.trunks.as_slice() {
        [only] => Ok(Some(only.name.clone())),
        [] => Err("no SIP trunk is configured to reach phone numbers".into()),
        _ => Err("several trunks are configured: set alerts.trunk".into()),
    }
}

/// The voice alert calls speak with.
async fn voice(state: &AppState) -> (Arc<dyn Tts>, Arc<GreetingCache>) {
    match state.engine.as_ref().and_then(|e| e.agents()) {
        Some(agents) => agents.voice().await,
        None => (
            Arc::new(EspeakTts::new(&state.config.agent.espeak)),
            Arc::default(),
        ),
    }
}

/// How a placed call ended, as far as the alert is concerned.
struct Ended {
    record: Option<CallRecord>,
    outcome: Option<CallOutcome>,
}

/// Places `call` to `to` and waits for its end (and what was keyed).
async fn run_call(
    state: &AppState,
    to: &str,
    call: Arc<AlertCall>,
    outcome: oneshot::Receiver<CallOutcome>,
    placed: impl FnOnce(&crate::call::CallHandle),
) -> Result<Ended, String> {
    let Some(engine) = &state.engine else {
        return Err("no call engine is running".into());
    };
    let trunk = trunk_for(state, to)?;
    let outbound = OutboundCall {
        id: None,
        trunk,
        to: to.to_owned(),
        from: state.config.alerts.caller_id.clone(),
        app: CallApp::Alert(call),
        ring_timeout: Some(Duration::from_secs(state.config.alerts.ring_secs)),
    };
    let handle = engine
        .place_call(outbound)
        .await
        .map_err(|e| e.to_string())?;
    let mut events = handle.subscribe();
    placed(&handle);
    let record = loop {
        match events.recv().await {
            Ok(CallEvent::Ended(r)) => break Some(*r),
            Ok(_) | Err(broadcast::error::RecvError::Lagged(_)) => {}
            Err(broadcast::error::RecvError::Closed) => break None,
        }
    };
    let mut outcome = outcome;
    Ok(Ended {
        record,
        outcome: outcome.try_recv().ok(),
    })
}

/// A delivery's status, the escalation's view of the call, and the error.
fn judge(ended: &Ended) -> (&'static str, CallResult, Option<String>) {
    match ended.outcome {
        Some(CallOutcome::Acknowledged) => ("acknowledged", CallResult::Acknowledged, None),
        Some(CallOutcome::Snoozed(minutes)) => ("snoozed", CallResult::Snoozed { minutes }, None),
        Some(CallOutcome::NoKey) => ("no_key", CallResult::Unanswered, None),
        None => {
            let Some(r) = &ended.record else {
                return (
                    "failed",
                    CallResult::Unanswered,
                    Some("the call vanished".into()),
                );
            };
            let status = match r.hangup.outcome {
                _ if r.answered.is_some() => "no_key",
                Outcome::Busy => "busy",
                Outcome::NoAnswer => "no_answer",
                _ => "failed",
            };
            let error = match r.hangup.sip_code {
                Some(code) => format!("{code} {}", r.hangup.reason),
                None => r.hangup.reason.clone(),
            };
            (status, CallResult::Unanswered, Some(error))
        }
    }
}

/// Places call `attempt` of `alert` in the background; its end steps the
/// escalation.
pub(crate) fn spawn_alert_call(state: &AppState, alert: &Alert, attempt: u32) {
    let (state, alert) = (state.clone(), alert.clone());
    tokio::spawn(async move {
        let result = alert_call(&state, &alert, attempt).await;
        state.alerts.call_over(&alert.id);
        let input = Input::CallEnded { attempt, result };
        if let Err(e) = drive(&state, &alert.org_id, &alert.id, input).await {
            warn!(alert = %alert.id, error = %e, "alert: cannot store a call's end; the watchdog will retry");
        }
    });
}

async fn alert_call(state: &AppState, alert: &Alert, attempt: u32) -> CallResult {
    let started = now_ms();
    let mut delivery = match state
        .store
        .start_alert_delivery(alert, i64::from(attempt), started)
        .await
    {
        Ok(d) => Some(d),
        Err(e) => {
            warn!(alert = %alert.id, error = %e, "alert: cannot record a delivery");
            None
        }
    };
    let (tts, cache) = voice(state).await;
    let (call, outcome) =
        AlertCall::new(speech(&alert.title, alert.message.as_deref()), tts, cache);
    let placed = |h: &crate::call::CallHandle| {
        state.alerts.calling(&alert.id, h.clone());
        if let Some(d) = delivery.as_mut() {
            d.call_id = Some(h.id.to_string());
        }
    };
    let ended = run_call(state, &alert.to_number, call, outcome, placed).await;
    let (status, result, error, sip_call_id) = match &ended {
        Ok(e) => {
            let (status, result, error) = judge(e);
            let sip = e.record.as_ref().map(|r| r.sip_call_id.clone());
            (status, result, error, sip.filter(|s| !s.is_empty()))
        }
        Err(e) => ("failed", CallResult::Unanswered, Some(e.clone()), None),
    };
    info!(alert = %alert.id, attempt, status, error = error.as_deref().unwrap_or(""), "alert call ended");
    if let Some(mut d) = delivery {
        d.status = status.to_owned();
        d.error = error;
        d.sip_call_id = sip_call_id;
        d.ended_at = Some(now_ms());
        if let Err(e) = state.store.update_alert_delivery(&d).await {
            warn!(alert = %alert.id, error = %e, "alert: cannot record a delivery's end");
        }
    }
    result
}

/// Calls `to` and reads `code` out, in the background.
pub(crate) fn spawn_verification_call(state: &AppState, phone_id: &str, to: &str, code: &str) {
    let (state, phone_id, to) = (state.clone(), phone_id.to_owned(), to.to_owned());
    let words = code_speech(code);
    tokio::spawn(async move {
        let (tts, cache) = voice(&state).await;
        let (call, outcome) = AlertCall::announcement(words, tts, cache);
        match run_call(&state, &to, call, outcome, |_| {}).await {
            Ok(Ended {
                record: Some(r), ..
            }) if r.answered.is_some() => {
                info!(phone = %phone_id, "verification code read out");
            }
            Ok(Ended { record, .. }) => {
                let reason = record.map_or_else(|| "unknown".into(), |r| r.hangup.reason);
                warn!(phone = %phone_id, reason, "verification call not answered");
            }
            Err(e) => warn!(phone = %phone_id, error = %e, "cannot place the verification call"),
        }
    });
}
