//! The server's `[outbound]` settings: how the dialling queue runs, and
//! the limits organizations get unless they set their own
//! (`PATCH /v1/settings` `outbound`).

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::store::DialLimits;

/// Highest concurrency an organization may set.
pub const MAX_CONCURRENT_LIMIT: u32 = 1000;
/// Highest pace an organization may set, calls per second.
pub const MAX_CPS: f64 = 100.0;

/// `[outbound]` in the configuration file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct OutboundConfig {
    /// How often the dispatcher looks for due calls, ms (it is also woken
    /// by new calls and ended ones).
    pub poll_ms: u64,
    /// Calls an organization has up at once, unless it sets its own.
    pub max_concurrent_calls: u32,
    /// Calls an organization starts per second, unless it sets its own.
    pub calls_per_second: f64,
    /// How long a call the engine could not take now (draining, full, no
    /// media port) waits before it is tried again, seconds.
    pub requeue_secs: u64,
}

impl Default for OutboundConfig {
    fn default() -> Self {
        OutboundConfig {
            poll_ms: 500,
            max_concurrent_calls: 10,
            calls_per_second: 5.0,
            requeue_secs: 5,
        }
    }
}

/// An organization's limits as `PATCH /v1/settings` takes and shows them.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct OutboundLimits {
    /// Calls up (dialing, ringing, in progress) at once.
    pub max_concurrent_calls: u32,
    /// Calls started per second.
    pub calls_per_second: f64,
}

impl OutboundConfig {
    /// Checks the settings: `(field, message)` at fault.
    pub fn check(&self) -> Result<(), (String, String)> {
        if !(1..=MAX_CONCURRENT_LIMIT).contains(&self.max_concurrent_calls) {
            return Err((
                "outbound.max_concurrent_calls".into(),
                format!("must be 1 to {MAX_CONCURRENT_LIMIT}"),
            ));
        }
        if !(self.calls_per_second > 0.0 && self.calls_per_second <= MAX_CPS) {
            return Err((
                "outbound.calls_per_second".into(),
                format!("must be above 0 and at most {MAX_CPS}"),
            ));
        }
        if self.poll_ms == 0 {
            return Err(("outbound.poll_ms".into(), "must be above 0".into()));
        }
        Ok(())
    }

    /// The limits of an organization whose stored settings hold
    /// `outbound` (unset fields are the server's).
    pub fn effective(&self, org: Option<&Value>) -> OutboundLimits {
        let max_concurrent_calls = org
            .and_then(|o| o.get("max_concurrent_calls"))
            .and_then(Value::as_u64)
            .and_then(|n| u32::try_from(n).ok())
            .unwrap_or(self.max_concurrent_calls);
        let calls_per_second = org
            .and_then(|o| o.get("calls_per_second"))
            .and_then(Value::as_f64)
            .unwrap_or(self.calls_per_second);
        OutboundLimits {
            max_concurrent_calls,
            calls_per_second,
        }
    }
}

impl OutboundLimits {
    /// As the queue applies them.
    pub fn dial_limits(&self) -> DialLimits {
        DialLimits {
            max_concurrent: self.max_concurrent_calls.max(1),
            min_interval_ms: (1000.0 / self.calls_per_second.max(0.001)).round() as i64,
        }
    }

    /// Checks changes to an organization's limits: `(field, message)`
    /// problems, field names relative to `outbound`.
    pub fn check_changes(changes: &serde_json::Map<String, Value>) -> Vec<(String, String)> {
        let mut problems = Vec::new();
        for (k, v) in changes {
            match k.as_str() {
                "max_concurrent_calls" => {
                    let ok = v.is_null()
                        || v.as_u64()
                            .is_some_and(|n| (1..=u64::from(MAX_CONCURRENT_LIMIT)).contains(&n));
                    if !ok {
                        problems.push((
                            k.clone(),
                            format!("must be 1 to {MAX_CONCURRENT_LIMIT}, or null"),
                        ));
                    }
                }
                "calls_per_second" => {
                    let ok = v.is_null() || v.as_f64().is_some_and(|c| c > 0.0 && c <= MAX_CPS);
                    if !ok {
                        problems.push((
                            k.clone(),
                            format!("must be above 0 and at most {MAX_CPS}, or null"),
                        ));
                    }
                }
                _ => problems.push((
                    k.clone(),
                    "unknown field; max_concurrent_calls or calls_per_second".into(),
                )),
            }
        }
        problems
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn org_values_override_the_server() {
        let c = OutboundConfig::default();
        assert_eq!(c.effective(None).max_concurrent_calls, 10);
        let o = json!({"max_concurrent_calls": 5, "calls_per_second": 2.0});
        let l = c.effective(Some(&o));
        assert_eq!(l.max_concurrent_calls, 5);
        assert_eq!(l.dial_limits().min_interval_ms, 500);
        let bad = json!({"max_concurrent_calls": 0, "calls_per_second": 1000, "x": 1});
        let p = OutboundLimits::check_changes(bad.as_object().unwrap());
        assert_eq!(p.len(), 3);
    }
}
