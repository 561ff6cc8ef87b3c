//! Phone alerts over the API (issue 6): `/v1/phones` (verified numbers),
//! `/v1/alerts` (raise, read, acknowledge), `/v1/tools/openai` (the
//! function-tool definition for agents), and the scheduler that calls.
//!
//! The lifecycle itself is the sans-IO [`crate::alerts::escalation`]
//! machine. Everything here feeds it inputs ([`drive`]), stores its state
//! with optimistic concurrency, and carries out what it asks for: place a
//! call ([`calls`]), hang one up, announce a status change ([`announce`]).
//! Nothing about an alert's schedule lives only in memory: a restarted
//! node, or another node on the same Postgres, picks up where this one
//! left off ([`scheduler`]).

pub mod announce;
pub mod calls;
pub mod drive;
pub mod handlers;
pub mod phones;
pub mod scheduler;
pub mod tools;
pub mod view;

use std::collections::HashMap;
use std::sync::Mutex;

use axum::Router;
use tokio::sync::Notify;

use super::AppState;
use crate::call::{CallCommand, CallHandle};

/// This node's share of alert work: what wakes the scheduler, and the
/// alert calls it has in progress (to hang one up when its alert is
/// acknowledged elsewhere).
pub struct AlertsRuntime {
    /// Wakes the scheduler: an alert became due now.
    pub due: Notify,
    /// Alert id → its call in progress on this node. The lock is held for
    /// one map operation, never across an `.await`.
    calls: Mutex<HashMap<String, CallHandle>>,
    /// Makes phone verification codes; tests install a known one.
    pub codes: Mutex<fn() -> String>,
}

impl Default for AlertsRuntime {
    fn default() -> Self {
        AlertsRuntime {
            due: Notify::new(),
            calls: Mutex::new(HashMap::new()),
            codes: Mutex::new(phones::random_code),
        }
    }
}

impl std::fmt::Debug for AlertsRuntime {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AlertsRuntime")
            .field("calls", &self.lock().len())
            .finish_non_exhaustive()
    }
}

impl AlertsRuntime {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, CallHandle>> {
        self.calls.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Remembers `alert_id`'s call in progress.
    pub(crate) fn calling(&self, alert_id: &str, handle: CallHandle) {
        self.lock().insert(alert_id.to_owned(), handle);
    }

    /// Forgets `alert_id`'s call (it ended).
    pub(crate) fn call_over(&self, alert_id: &str) {
        self.lock().remove(alert_id);
    }

    /// Hangs up `alert_id`'s call if this node has one; whether it did.
    pub fn hang_up(&self, alert_id: &str) -> bool {
        let handle = self.lock().get(alert_id).cloned();
        handle.is_some_and(|h| h.command(CallCommand::Hangup).is_ok())
    }

    /// A new verification code.
    pub fn new_code(&self) -> String {
        (self.codes.lock().unwrap_or_else(|e| e.into_inner()))()
    }
}

/// The routes of `/v1/phones`, `/v1/alerts` and `/v1/tools`.
pub fn routes() -> Router<AppState> {
    Router::new()
        .merge(phones::routes())
        .merge(handlers::routes())
        .merge(tools::routes())
}
