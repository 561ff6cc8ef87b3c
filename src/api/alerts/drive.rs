//! Feeding an alert's escalation: load it, step the state machine, store
//! the new state over the one it was computed from, then act. Storing
//! comes first: a step whose save loses a race (another node, an
//! acknowledgement through the API) is dropped before it places a call or
//! announces anything, so every step happens exactly once.

use tracing::{info, warn};

use super::announce::announce;
use super::calls;
use crate::alerts::escalation::{Action, Input, Status};
use crate::alerts::policy::AlertPolicy;
use crate::api::AppState;
use crate::store::Alert;
use crate::store::{StoreError, now_ms};

/// Attempts at storing a step before giving up: each failed attempt means
/// another step was stored meanwhile, which is rare and short-lived.
const MAX_RACES: usize = 8;

/// The organization's alert policy in effect.
pub async fn policy(state: &AppState, org_id: &str) -> Result<AlertPolicy, StoreError> {
    let settings = state.store.org_settings(org_id).await?;
    Ok(AlertPolicy::effective(
        &state.config.alerts.policy,
        settings.get("alerts"),
    ))
}

/// Applies `input` to alert `alert_id` of `org_id` now, retrying when
/// another step is stored first; the alert as stored afterwards.
pub async fn drive(
    state: &AppState,
    org_id: &str,
    alert_id: &str,
    input: Input,
) -> Result<Alert, StoreError> {
    let policy = policy(state, org_id).await?;
    for _ in 0..MAX_RACES {
        let alert = state.store.get_alert(org_id, alert_id).await?;
        if alert.escalation.status.is_final() {
            // Nothing changes a final alert; not even its update time.
            return Ok(alert);
        }
        if let Some(after) = step(state, &policy, alert, input.clone()).await? {
            return Ok(after);
        }
    }
    warn!(
        alert = alert_id,
        ?input,
        "alert: gave up storing a step after repeated races"
    );
    Err(StoreError::Conflict("escalation_step"))
}

/// One attempt: `None` when another step was stored first (nothing was
/// done; the caller may reload and retry).
pub(crate) async fn step(
    state: &AppState,
    policy: &AlertPolicy,
    alert: Alert,
    input: Input,
) -> Result<Option<Alert>, StoreError> {
    let now = now_ms();
    let mut next = alert.escalation.clone();
    let retry = policy.retry(state.config.alerts.base_retry());
    let quiet = policy.quiet_window();
    let actions = next.step(input, now, retry, quiet.as_ref());
    let records: Vec<(Status, Status, Option<String>)> = actions
        .iter()
        .filter_map(|a| match *a {
            Action::Transition { from, to } => Some((from, to, detail(&next, to))),
            Action::HeldForQuietHours { until } => Some((
                next.status,
                next.status,
                Some(format!("held for quiet hours until {}", iso(until))),
            )),
            _ => None,
        })
        .collect();
    if !state
        .store
        .save_escalation(&alert, alert.escalation_step, &next, &records, now)
        .await?
    {
        return Ok(None);
    }
    let after = Alert {
        escalation: next,
        escalation_step: alert.escalation_step + 1,
        updated_at: now,
        ..alert
    };
    for action in actions {
        match action {
            Action::Transition { to, .. } => {
                info!(alert = %after.id, status = to.as_str(), "alert status");
                announce(state, &after, &format!("alert.{}", to.as_str())).await;
            }
            Action::PlaceCall { attempt } => calls::spawn_alert_call(state, &after, attempt),
            Action::HangUp => {
                state.alerts.hang_up(&after.id);
            }
            Action::HeldForQuietHours { until } => {
                info!(alert = %after.id, until = %iso(until), "alert call held for quiet hours");
            }
        }
    }
    Ok(Some(after))
}

/// What the history says about a change to `to`.
fn detail(state: &crate::alerts::escalation::Escalation, to: Status) -> Option<String> {
    match to {
        Status::Acknowledged => state.acknowledged_via.as_ref().map(|v| format!("via {v}")),
        Status::Failed => state.failure.clone(),
        Status::Snoozed => state.next_at.map(|t| format!("next call at {}", iso(t))),
        _ => None,
    }
}

fn iso(ms: i64) -> String {
    jiff::Timestamp::from_millisecond(ms).map_or_else(|_| ms.to_string(), |t| t.to_string())
}
