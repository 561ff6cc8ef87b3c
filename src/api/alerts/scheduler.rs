//! The alert scheduler: claims alerts whose wake-up is due (a lease in
//! the database, so two nodes never take the same one), steps each, and
//! sleeps until the next poll or until a new alert wakes it.
//!
//! A new alert is stored as `created` and due at once; the scheduler
//! gives it its first step. Delays, retries, snoozes, quiet hours and
//! expiry are all wake-up times in the database, so a restart resumes
//! them on schedule.

use std::time::Duration;

use tokio::sync::watch;
use tokio::task::JoinHandle;
use tracing::warn;

use super::drive::{policy, step};
use crate::alerts::escalation::{Input, Status};
use crate::api::AppState;
use crate::store::Alert;
use crate::store::now_ms;

/// Alerts claimed per round.
const BATCH: u32 = 32;

/// Runs the scheduler until `stop` turns true.
pub fn spawn(state: AppState, mut stop: watch::Receiver<bool>) -> JoinHandle<()> {
    tokio::spawn(async move {
        let poll = Duration::from_millis(state.config.alerts.poll_ms);
        let lease_ms = (state.config.alerts.lease_secs * 1000) as i64;
        loop {
            if *stop.borrow() {
                return;
            }
            let claimed = match state
                .store
                .claim_due_alerts(now_ms(), BATCH, lease_ms)
                .await
            {
                Ok(c) => c,
                Err(e) => {
                    warn!(error = %e, "alert scheduler: cannot claim due alerts");
                    Vec::new()
                }
            };
            let full = claimed.len() == BATCH as usize;
            for alert in claimed {
                take_step(&state, alert).await;
            }
            if full {
                continue;
            }
            tokio::select! {
                _ = stop.changed() => {}
                () = state.alerts.due.notified() => {}
                () = tokio::time::sleep(poll) => {}
            }
        }
    })
}

/// The step a claimed alert is due for.
async fn take_step(state: &AppState, alert: Alert) {
    let policy = match policy(state, &alert.org_id).await {
        Ok(p) => p,
        Err(e) => {
            // The lease runs out and the alert is claimed again.
            warn!(alert = %alert.id, error = %e, "alert scheduler: cannot read the policy");
            return;
        }
    };
    let input = if let Some(reason) = stop_reason(&policy) {
        Input::Stopped { reason }
    } else if alert.escalation.status == Status::Created {
        Input::Created
    } else {
        Input::Due
    };
    let id = alert.id.clone();
    if let Err(e) = step(state, &policy, alert, input).await {
        warn!(alert = %id, error = %e, "alert scheduler: cannot store a step");
    }
}

/// Why the organization's alerts must stop, if they must.
pub(crate) fn stop_reason(policy: &crate::alerts::policy::AlertPolicy) -> Option<String> {
    if policy.emergency_stop {
        Some("stopped by the organization's emergency stop".into())
    } else if !policy.voice_enabled {
        Some("stopped: the organization turned the voice channel off".into())
    } else {
        None
    }
}
