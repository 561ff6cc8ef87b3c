//! The server's `[alerts]` settings: how alert calls are placed and
//! scheduled, and the policy organizations get unless they set their own.

use serde::{Deserialize, Serialize};

use super::escalation::Retry;
use super::policy::AlertPolicy;

/// `[alerts]` in the configuration file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AlertsConfig {
    /// Trunk for calls to phone numbers; unset: the only configured trunk.
    pub trunk: Option<String>,
    /// Caller ID of alert calls; unset: the trunk's own.
    pub caller_id: Option<String>,
    /// How long an alert call rings before it counts as unanswered.
    pub ring_secs: u64,
    /// How often the scheduler looks for due alerts, ms (it is also woken
    /// at once by new alerts).
    pub poll_ms: u64,
    /// How long a claimed alert is held by one node while it takes its
    /// step.
    pub lease_secs: u64,
    /// A call whose end is not reported within this long (the node placing
    /// it died) counts as unanswered.
    pub call_timeout_secs: u64,
    /// The length of one snooze "minute", ms: 60 000 in production,
    /// shorter in tests.
    pub snooze_minute_ms: u64,
    /// How long a phone verification code stays valid.
    pub code_ttl_secs: u64,
    /// The policy of organizations that set none.
    pub policy: AlertPolicy,
}

impl Default for AlertsConfig {
    fn default() -> Self {
        AlertsConfig {
            trunk: None,
            caller_id: None,
            ring_secs: 30,
            poll_ms: 1000,
            lease_secs: 60,
            call_timeout_secs: 300,
            snooze_minute_ms: 60_000,
            code_ttl_secs: 600,
            policy: AlertPolicy::default(),
        }
    }
}

impl AlertsConfig {
    /// Checks the settings: `(field, message)` at fault.
    pub fn check(&self, trunks: &[&str]) -> Result<(), (String, String)> {
        if let Some(t) = &self.trunk
            && !trunks.contains(&t.as_str())
        {
            return Err((
                "alerts.trunk".into(),
                format!("no trunk named {t:?} is configured"),
            ));
        }
        for (field, v, min) in [
            ("alerts.ring_secs", self.ring_secs, 1),
            ("alerts.poll_ms", self.poll_ms, 10),
            ("alerts.lease_secs", self.lease_secs, 1),
            ("alerts.snooze_minute_ms", self.snooze_minute_ms, 1),
            ("alerts.code_ttl_secs", self.code_ttl_secs, 30),
        ] {
            if v < min {
                return Err((field.into(), format!("must be at least {min}")));
            }
        }
        // The watchdog must outlast the longest alert call, or a slow call
        // would be taken for a lost one and the phone called twice.
        let longest = self.ring_secs + 180;
        if self.call_timeout_secs < longest {
            return Err((
                "alerts.call_timeout_secs".into(),
                format!("must be at least ring_secs + 180 ({longest})"),
            ));
        }
        if let Some((field, msg)) = self.policy.check().into_iter().next() {
            return Err((format!("alerts.policy.{field}"), msg));
        }
        Ok(())
    }

    /// The escalation timing before an organization's policy applies.
    pub fn base_retry(&self) -> Retry {
        Retry {
            call_timeout_ms: (self.call_timeout_secs * 1000) as i64,
            snooze_minute_ms: self.snooze_minute_ms as i64,
            ..Retry::default()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_pass_and_mistakes_name_their_field() {
        assert_eq!(AlertsConfig::default().check(&[]), Ok(()));
        let c = AlertsConfig {
            trunk: Some("carrier".into()),
            ..AlertsConfig::default()
        };
        assert_eq!(c.check(&["carrier"]), Ok(()));
        assert_eq!(c.check(&[]).unwrap_err().0, "alerts.trunk");
        let c = AlertsConfig {
            call_timeout_secs: 60,
            ..AlertsConfig::default()
        };
        assert_eq!(c.check(&[]).unwrap_err().0, "alerts.call_timeout_secs");
        let mut c = AlertsConfig::default();
        c.policy.max_retries = 99;
        assert_eq!(c.check(&[]).unwrap_err().0, "alerts.policy.max_retries");
    }
}
