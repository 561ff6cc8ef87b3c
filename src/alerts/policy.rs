//! An organization's alert policy: quiet hours, the voice channel, the
//! emergency stop, retries, rate limits and the monthly quota. The server
//! configuration gives the defaults (`[alerts.policy]`); an organization
//! overrides any of them through `PATCH /v1/settings` (`alerts`), and
//! only what it set is stored, so a changed server default reaches every
//! organization that did not choose otherwise.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use utoipa::ToSchema;

use super::escalation::Retry;
use super::quiet::{QuietHours, Window};

/// Longest retry interval, seconds.
pub const MAX_RETRY_INTERVAL_SECS: u32 = 3600;
/// Most retries after the first call.
pub const MAX_RETRIES: u32 = 10;
/// Highest per-hour rate limit.
pub const MAX_RATE_PER_HOUR: u32 = 10_000;

/// The policy in effect for an organization.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(default, deny_unknown_fields)]
pub struct AlertPolicy {
    /// A daily window when normal alerts place no calls (critical ones
    /// still do); `null` for none.
    #[schema(value_type = Option<Object>)]
    pub quiet_hours: Option<QuietHours>,
    /// Whether alerts may call at all. With it off there is no delivery
    /// path, and creating an alert is refused.
    pub voice_enabled: bool,
    /// While on, creating an alert answers 403; turning it on stops every
    /// alert still escalating (a call in progress is hung up).
    pub emergency_stop: bool,
    /// Seconds between an unanswered call and the next.
    pub retry_interval_secs: u32,
    /// Calls after the first before the alert fails.
    pub max_retries: u32,
    /// Alerts the organization may create per hour (all keys together).
    pub rate_limit_per_hour: u32,
    /// Alerts one API key may create per hour.
    pub key_rate_limit_per_hour: u32,
    /// Alerts per calendar month (UTC) that may reach a phone; `null`:
    /// no quota. An alert acknowledged before its first call does not
    /// count.
    pub monthly_quota: Option<u32>,
}

impl Default for AlertPolicy {
    fn default() -> Self {
        AlertPolicy {
            quiet_hours: None,
            voice_enabled: true,
            emergency_stop: false,
            retry_interval_secs: 120,
            max_retries: 3,
            rate_limit_per_hour: 20,
            key_rate_limit_per_hour: 10,
            monthly_quota: None,
        }
    }
}

impl AlertPolicy {
    /// `defaults` overridden by what an organization stored (its
    /// `settings.alerts` object). A stored value that no longer parses is
    /// ignored field by field, so one bad value never disables alerts.
    pub fn effective(defaults: &AlertPolicy, stored: Option<&Value>) -> AlertPolicy {
        let Some(Value::Object(stored)) = stored else {
            return defaults.clone();
        };
        let mut policy = defaults.clone();
        for (name, value) in stored {
            let mut one = Map::new();
            one.insert(name.clone(), value.clone());
            let mut merged = serde_json::to_value(&policy).expect("the policy serializes");
            merged
                .as_object_mut()
                .expect("the policy is an object")
                .extend(one);
            if let Ok(p) = serde_json::from_value::<AlertPolicy>(merged) {
                policy = p;
            }
        }
        policy
    }

    /// Checks every field; each problem is `(field, message)`.
    pub fn check(&self) -> Vec<(String, String)> {
        let mut out = Vec::new();
        if let Some(q) = &self.quiet_hours
            && let Err((field, msg)) = q.window()
        {
            out.push((format!("quiet_hours.{field}"), msg));
        }
        if !(1..=MAX_RETRY_INTERVAL_SECS).contains(&self.retry_interval_secs) {
            out.push((
                "retry_interval_secs".into(),
                format!("must be 1 to {MAX_RETRY_INTERVAL_SECS}"),
            ));
        }
        if self.max_retries > MAX_RETRIES {
            out.push(("max_retries".into(), format!("must be 0 to {MAX_RETRIES}")));
        }
        for (field, v) in [
            ("rate_limit_per_hour", self.rate_limit_per_hour),
            ("key_rate_limit_per_hour", self.key_rate_limit_per_hour),
        ] {
            if !(1..=MAX_RATE_PER_HOUR).contains(&v) {
                out.push((field.into(), format!("must be 1 to {MAX_RATE_PER_HOUR}")));
            }
        }
        out
    }

    /// The quiet-hours window, if the policy has a valid one.
    pub fn quiet_window(&self) -> Option<Window> {
        self.quiet_hours.as_ref().and_then(|q| q.window().ok())
    }

    /// The escalation timing under this policy and the server's call
    /// limits (`base` gives those).
    pub fn retry(&self, base: Retry) -> Retry {
        Retry {
            interval_ms: i64::from(self.retry_interval_secs) * 1000,
            max_retries: self.max_retries,
            ..base
        }
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn an_organization_overrides_only_what_it_set() {
        let defaults = AlertPolicy {
            max_retries: 5,
            ..AlertPolicy::default()
        };
        let stored = json!({"retry_interval_secs": 30, "quiet_hours": {"start": "22:00", "end": "07:00", "timezone": "Europe/Berlin"}});
        let p = AlertPolicy::effective(&defaults, Some(&stored));
        assert_eq!(p.retry_interval_secs, 30);
        assert_eq!(p.max_retries, 5);
        assert!(p.quiet_window().is_some());
        assert!(p.check().is_empty());
    }

    #[test]
    fn a_bad_stored_value_falls_back_to_the_default_alone() {
        let stored = json!({"max_retries": "many", "emergency_stop": true, "unknown": 1});
        let p = AlertPolicy::effective(&AlertPolicy::default(), Some(&stored));
        assert_eq!(p.max_retries, 3);
        assert!(p.emergency_stop);
    }

    #[test]
    fn checks_name_the_field() {
        let p = AlertPolicy {
            retry_interval_secs: 0,
            max_retries: 11,
            key_rate_limit_per_hour: 0,
            quiet_hours: Some(QuietHours {
                start: "25:00".into(),
                end: "07:00".into(),
                timezone: "UTC".into(),
            }),
            ..AlertPolicy::default()
        };
        let fields: Vec<String> = p.check().into_iter().map(|(f, _)| f).collect();
        assert_eq!(
            fields,
            [
                "quiet_hours.start",
                "retry_interval_secs",
                "max_retries",
                "key_rate_limit_per_hour"
            ]
        );
    }

    #[test]
    fn the_policy_sets_the_retry_timing() {
        let base = Retry {
            snooze_minute_ms: 100,
            ..Retry::default()
        };
        let p = AlertPolicy {
            retry_interval_secs: 7,
            max_retries: 1,
            ..AlertPolicy::default()
        };
        let r = p.retry(base);
        assert_eq!(
            (r.interval_ms, r.max_retries, r.snooze_minute_ms),
            (7000, 1, 100)
        );
    }
}
