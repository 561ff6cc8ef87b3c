//! Alert events: `alert.created` and `alert.<status>` for every status
//! change, live to WebSocket subscribers and queued for the
//! organization's webhooks (`alert.*` or the event's own name in their
//! filter). A webhook body is `{"event_type", "alert_id", "timestamp",
//! "data"}`, where `data` is the alert as `GET /v1/alerts/{id}` shows it
//! without its deliveries.

use serde_json::json;
use tracing::warn;

use super::view::AlertOut;
use crate::api::AppState;
use crate::api::live::LiveEvent;
use crate::store::Alert;
use crate::store::now_ms;

/// Announces `event_type` (`alert.created`, `alert.acknowledged`, …) of
/// `alert`, as it is now.
pub async fn announce(state: &AppState, alert: &Alert, event_type: &str) {
    let data = serde_json::to_value(AlertOut::from(alert.clone())).expect("the view serializes");
    let timestamp = now_ms();
    state.hub.publish(LiveEvent {
        event_type: event_type.to_owned(),
        call_id: String::new(),
        alert_id: Some(alert.id.clone()),
        sequence: 0,
        timestamp,
        payload: data.clone(),
        org_id: alert.org_id.clone(),
        number_id: None,
        batch_id: None,
    });
    if alert.escalation.status.is_final() {
        state.hub.call_ended(&alert.id);
    }
    let body = json!({
        "event_type": event_type,
        "alert_id": alert.id,
        "timestamp": timestamp,
        "data": data,
    });
    match state
        .store
        .enqueue_event(&alert.org_id, event_type, &body)
        .await
    {
        Ok(d) if d.is_empty() => {}
        Ok(_) => state.webhook_wake.notify_one(),
        Err(e) => warn!(alert = %alert.id, event_type, error = %e, "cannot queue an alert webhook"),
    }
}
