//! Announcing what happens to a call outside the engine: it was queued
//! or scheduled (`POST /v1/calls`, a batch), canceled while waiting, or
//! could not be dialled. The engine's own events are announced by the
//! [`super::bridge`]; both use the same payloads.

use serde_json::{Value, json};
use tracing::warn;

use super::CallView;
use crate::api::AppState;
use crate::api::live::LiveEvent;
use crate::store::{Call, now_ms};

/// The fields of `call.status` a stored call adds to the status itself.
pub fn add_view_fields(p: &mut Value, v: &CallView) {
    p["answered_at"] = json!(v.answered_at);
    p["attempts"] = json!(v.attempts);
    p["next_attempt_at"] = json!(v.next_attempt_at);
    if v.batch_id.is_some() {
        p["batch_id"] = json!(v.batch_id);
    }
    if v.status.is_terminal() {
        p["ended_at"] = json!(v.ended_at);
        p["duration_ms"] = json!(v.duration_ms);
        p["hangup_by"] = json!(v.hangup_by);
        p["hangup_cause"] = json!(v.hangup_cause);
        p["sip_code"] = json!(v.sip_code);
    }
}

/// `call.status` for `call` as stored now.
pub fn status_payload(call: &Call) -> Value {
    let view = CallView::new(call.clone(), None);
    let mut p = json!({
        "status": view.status,
        "direction": view.direction,
        "from": view.from,
        "to": view.to,
        "number_id": view.number_id,
    });
    add_view_fields(&mut p, &view);
    p
}

/// Publishes `event_type` of `call` live and queues it for webhooks (the
/// organization's and the call's own).
pub async fn announce(state: &AppState, call: &Call, event_type: &str, data: Value) {
    let timestamp = now_ms();
    state.hub.publish(LiveEvent {
        event_type: event_type.to_owned(),
        call_id: call.id.to_string(),
        alert_id: None,
        sequence: 0,
        timestamp,
        payload: data.clone(),
        org_id: call.org_id.clone(),
        number_id: call.number_id.clone(),
        batch_id: call.batch_id.clone(),
    });
    let body = json!({
        "event_type": event_type,
        "call_id": call.id,
        "timestamp": timestamp,
        "data": data,
    });
    match state
        .store
        .enqueue_call_event(&call.org_id, call.id.as_str(), event_type, &body)
        .await
    {
        Ok(d) if d.is_empty() => {}
        Ok(_) => state.webhook_wake.notify_one(),
        Err(e) => warn!(call = %call.id, event_type, error = %e, "cannot queue a webhook event"),
    }
}

/// A call waiting in the queue: `call.status` (queued or scheduled) and
/// `call.queued`.
pub async fn announce_queued(state: &AppState, call: &Call) {
    announce(state, call, "call.status", status_payload(call)).await;
    let data = json!({
        "status": call.status,
        "to": call.to,
        "next_attempt_at": call.next_attempt_at,
        "batch_id": call.batch_id,
    });
    announce(state, call, "call.queued", data).await;
}

/// A call that ended without the engine (canceled while waiting, refused
/// before dialling): its final `call.status`, then `call.completed` with
/// the whole call.
pub async fn announce_ended(state: &AppState, call: &Call) {
    announce(state, call, "call.status", status_payload(call)).await;
    let full =
        serde_json::to_value(CallView::new(call.clone(), Some(Vec::new()))).unwrap_or(Value::Null);
    announce(state, call, "call.completed", full).await;
    state.hub.call_ended(call.id.as_str());
    state.outbound.wake.notify_one();
    if let Some(batch) = &call.batch_id {
        super::batch::settle(state, batch).await;
    }
}
