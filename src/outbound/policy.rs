//! An outbound call's retry policy and what happens after each attempt.
//! Pure: times are arguments (unix ms), so the policy is tested on an
//! accelerated clock; the dispatcher and the call bridge apply it.

use serde::{Deserialize, Serialize};

use super::hours::{BusinessHours, BusinessHoursSpec};
use super::when::When;

/// Most attempts a policy may ask for.
pub const MAX_ATTEMPTS: u32 = 10;
/// Attempts when the policy does not say.
pub const DEFAULT_ATTEMPTS: u32 = 3;
/// Minutes between attempts when the policy does not say: 15 after the
/// first, 120 after each later one.
pub const DEFAULT_BACKOFF: [f64; 2] = [15.0, 120.0];
/// Longest single wait, minutes (a week).
const MAX_BACKOFF_MINUTES: f64 = 7.0 * 24.0 * 60.0;

/// What one outcome of an attempt does, as the API takes it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct OutcomeRuleSpec {
    /// Whether this outcome is retried.
    pub retry: bool,
    /// This outcome's own waits, minutes; the policy's otherwise.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub backoff_minutes: Option<Vec<f64>>,
}

/// Per-outcome rules. Unset: `no_answer` and `busy` are retried, a
/// `failed` call is not, and `voicemail` is retried only with
/// `on_voicemail: retry`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct OutcomeRulesSpec {
    /// Nobody answered.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub no_answer: Option<OutcomeRuleSpec>,
    /// The line was busy.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub busy: Option<OutcomeRuleSpec>,
    /// An answering machine answered.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub voicemail: Option<OutcomeRuleSpec>,
    /// The call could not be set up (an error from the carrier).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub failed: Option<OutcomeRuleSpec>,
}

/// `retry_policy` on `POST /v1/calls`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RetryPolicySpec {
    /// Attempts in all, 1 to 10 (3 when unset).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_attempts: Option<u32>,
    /// Minutes to wait after attempt 1, 2, …; the last repeats
    /// (`[15, 120]` when unset). Fractions are allowed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub backoff_minutes: Option<Vec<f64>>,
    /// Dial only within `business_hours` in `timezone`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub business_hours_only: Option<bool>,
    /// IANA time zone of the callee (required with `business_hours_only`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timezone: Option<String>,
    /// The window; Monday to Friday 09:00–17:00 when unset.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Object>)]
    pub business_hours: Option<BusinessHoursSpec>,
    /// Per-outcome rules.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub outcomes: Option<OutcomeRulesSpec>,
    /// No attempt starts after this (unix ms or RFC 3339).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<String>)]
    pub expires_at: Option<When>,
}

/// What an attempt came to, as the policy sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AttemptOutcome {
    /// Somebody answered and the call ran its course.
    Completed,
    /// An answering machine answered.
    Voicemail,
    /// Nobody answered.
    NoAnswer,
    /// Busy.
    Busy,
    /// Could not be set up.
    Failed,
    /// Withdrawn (through the API) before it was answered.
    Canceled,
    /// The callee asked to be called back at this time (unix ms).
    Callback {
        /// When.
        at: i64,
    },
    /// The server stopped while the attempt was live.
    Interrupted,
}

/// What follows an attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Next {
    /// Dial again at `at` (a failed attempt).
    Retry {
        /// Unix ms.
        at: i64,
    },
    /// Call back at `at`, as the callee asked.
    FollowUp {
        /// Unix ms.
        at: i64,
    },
    /// A retryable outcome with no attempt left (or none before the
    /// policy expires).
    Exhausted,
    /// The outcome stands.
    Done,
}

#[derive(Debug, Clone, PartialEq)]
struct Rule {
    retry: bool,
    backoff: Option<Vec<f64>>,
}

/// A checked retry policy.
#[derive(Debug, Clone)]
pub struct RetryPolicy {
    max_attempts: u32,
    backoff: Vec<f64>,
    hours: Option<BusinessHours>,
    no_answer: Rule,
    busy: Rule,
    voicemail: Rule,
    failed: Rule,
    expires_at: Option<i64>,
}

/// A field of the policy at fault (its path below `retry_policy`) and
/// why.
pub type PolicyError = (String, String);

fn check_backoff(path: &str, b: &[f64]) -> Result<(), PolicyError> {
    if b.is_empty() || b.len() > MAX_ATTEMPTS as usize {
        return Err((path.into(), format!("must hold 1 to {MAX_ATTEMPTS} waits")));
    }
    if b.iter()
        .any(|m| !m.is_finite() || *m < 0.0 || *m > MAX_BACKOFF_MINUTES)
    {
        return Err((
            path.into(),
            format!("each wait must be 0 to {MAX_BACKOFF_MINUTES} minutes"),
        ));
    }
    Ok(())
}

fn rule(
    path: &str,
    spec: Option<&OutcomeRuleSpec>,
    default_retry: bool,
) -> Result<Rule, PolicyError> {
    let Some(spec) = spec else {
        return Ok(Rule {
            retry: default_retry,
            backoff: None,
        });
    };
    if let Some(b) = &spec.backoff_minutes {
        check_backoff(&format!("{path}.backoff_minutes"), b)?;
    }
    Ok(Rule {
        retry: spec.retry,
        backoff: spec.backoff_minutes.clone(),
    })
}

impl RetryPolicy {
    /// The policy of a call with no `retry_policy`: one attempt; a
    /// voicemail is retried (three attempts in all) only with
    /// `on_voicemail: retry`.
    pub fn single(voicemail_retry: bool) -> RetryPolicy {
        let off = || {
            Some(OutcomeRuleSpec {
                retry: false,
                backoff_minutes: None,
            })
        };
        let spec = RetryPolicySpec {
            max_attempts: Some(if voicemail_retry { DEFAULT_ATTEMPTS } else { 1 }),
            outcomes: Some(OutcomeRulesSpec {
                no_answer: off(),
                busy: off(),
                ..OutcomeRulesSpec::default()
            }),
            ..RetryPolicySpec::default()
        };
        RetryPolicy::new(&spec, voicemail_retry).expect("the default policy is valid")
    }

    /// Checks `spec`; `voicemail_retry` is `on_voicemail: retry`, which
    /// makes a voicemail retryable whatever `outcomes.voicemail` says.
    pub fn new(spec: &RetryPolicySpec, voicemail_retry: bool) -> Result<RetryPolicy, PolicyError> {
        let max_attempts = spec.max_attempts.unwrap_or(DEFAULT_ATTEMPTS);
        if !(1..=MAX_ATTEMPTS).contains(&max_attempts) {
            return Err((
                "max_attempts".into(),
                format!("must be 1 to {MAX_ATTEMPTS}"),
            ));
        }
        let backoff = spec
            .backoff_minutes
            .clone()
            .unwrap_or_else(|| DEFAULT_BACKOFF.to_vec());
        check_backoff("backoff_minutes", &backoff)?;
        let hours = match (spec.business_hours_only.unwrap_or(false), &spec.timezone) {
            (false, _) => {
                if spec.business_hours.is_some() {
                    return Err((
                        "business_hours_only".into(),
                        "must be true when business_hours is given".into(),
                    ));
                }
                None
            }
            (true, None) => {
                return Err((
                    "timezone".into(),
                    "required with business_hours_only (the callee's IANA time zone)".into(),
                ));
            }
            (true, Some(tz)) => {
                let window = spec.business_hours.clone().unwrap_or(BusinessHoursSpec {
                    start: None,
                    end: None,
                    days: None,
                });
                Some(BusinessHours::new(&window, tz).map_err(|(f, m)| {
                    let path = if f == "timezone" {
                        f
                    } else {
                        format!("business_hours.{f}")
                    };
                    (path, m)
                })?)
            }
        };
        let outcomes = spec.outcomes.clone().unwrap_or_default();
        let mut voicemail = rule(
            "outcomes.voicemail",
            outcomes.voicemail.as_ref(),
            voicemail_retry,
        )?;
        voicemail.retry |= voicemail_retry;
        let expires_at = match &spec.expires_at {
            Some(w) => Some(
                w.millis()
                    .map_err(|m| ("expires_at".to_owned(), m.to_owned()))?,
            ),
            None => None,
        };
        Ok(RetryPolicy {
            max_attempts,
            backoff,
            hours,
            no_answer: rule("outcomes.no_answer", outcomes.no_answer.as_ref(), true)?,
            busy: rule("outcomes.busy", outcomes.busy.as_ref(), true)?,
            voicemail,
            failed: rule("outcomes.failed", outcomes.failed.as_ref(), false)?,
            expires_at,
        })
    }

    /// Attempts in all.
    pub fn max_attempts(&self) -> u32 {
        self.max_attempts
    }

    /// When the policy stops, unix ms.
    pub fn expires_at(&self) -> Option<i64> {
        self.expires_at
    }

    /// The first moment at or after `at` when an attempt may start, or
    /// `None` when the policy expires first.
    pub fn dial_time(&self, at: i64) -> Option<i64> {
        let at = match &self.hours {
            Some(h) => h.next_open(at),
            None => at,
        };
        match self.expires_at {
            Some(end) if at > end => None,
            _ => Some(at),
        }
    }

    /// What follows attempt number `attempt` (from 1) ending with
    /// `outcome` at `now`.
    pub fn after_attempt(&self, attempt: u32, outcome: AttemptOutcome, now: i64) -> Next {
        let rule = match outcome {
            AttemptOutcome::Completed | AttemptOutcome::Canceled => return Next::Done,
            AttemptOutcome::Callback { at } => {
                // A callback is what the callee asked for, not a failure:
                // it does not need an attempt left, only time. Business
                // hours still hold (the callee's own words win over them
                // only when they name a time inside them).
                return match self.dial_time(at.max(now)) {
                    Some(at) => Next::FollowUp { at },
                    None => Next::Done,
                };
            }
            AttemptOutcome::Voicemail => &self.voicemail,
            AttemptOutcome::NoAnswer => &self.no_answer,
            AttemptOutcome::Busy => &self.busy,
            AttemptOutcome::Failed => &self.failed,
            // The attempt was cut short by us, not by the callee: it is
            // always worth another, if one is left.
            AttemptOutcome::Interrupted => &Rule {
                retry: true,
                backoff: Some(vec![0.0]),
            },
        };
        if !rule.retry {
            return Next::Done;
        }
        if attempt >= self.max_attempts {
            return Next::Exhausted;
        }
        let waits = rule.backoff.as_deref().unwrap_or(&self.backoff);
        let i = (attempt as usize).saturating_sub(1).min(waits.len() - 1);
        let wait_ms = (waits[i] * 60_000.0).round() as i64;
        match self.dial_time(now.saturating_add(wait_ms)) {
            Some(at) => Next::Retry { at },
            None => Next::Exhausted,
        }
    }
}

/// The policy a call was placed with, from its stored request
/// (`retry_policy`, `on_voicemail`); a policy that no longer parses (an
/// older version's) is read as none.
pub fn call_policy(request: &serde_json::Value) -> RetryPolicy {
    let voicemail_retry = request
        .get("on_voicemail")
        .and_then(serde_json::Value::as_str)
        == Some("retry");
    request
        .get("retry_policy")
        .and_then(|p| serde_json::from_value::<RetryPolicySpec>(p.clone()).ok())
        .and_then(|spec| RetryPolicy::new(&spec, voicemail_retry).ok())
        .unwrap_or_else(|| RetryPolicy::single(voicemail_retry))
}

#[cfg(test)]
mod tests {
    use super::*;

    const MIN: i64 = 60_000;

    fn policy(json: serde_json::Value) -> RetryPolicy {
        let spec: RetryPolicySpec = serde_json::from_value(json).unwrap();
        RetryPolicy::new(&spec, false).unwrap()
    }

    fn ms(s: &str) -> i64 {
        s.parse::<jiff::Timestamp>().unwrap().as_millisecond()
    }

    #[test]
    fn backoff_then_exhaustion_on_an_accelerated_clock() {
        let p = policy(serde_json::json!({}));
        let mut now = 1_000_000;
        // Attempt 1 no answer: 15 min; attempt 2 busy: 120 min; attempt 3
        // no answer: nothing left.
        assert_eq!(
            p.after_attempt(1, AttemptOutcome::NoAnswer, now),
            Next::Retry { at: now + 15 * MIN }
        );
        now += 15 * MIN;
        assert_eq!(
            p.after_attempt(2, AttemptOutcome::Busy, now),
            Next::Retry {
                at: now + 120 * MIN
            }
        );
        now += 120 * MIN;
        assert_eq!(
            p.after_attempt(3, AttemptOutcome::NoAnswer, now),
            Next::Exhausted
        );
        // The last wait repeats for longer policies.
        let p = policy(serde_json::json!({"max_attempts": 5, "backoff_minutes": [1, 2]}));
        assert_eq!(
            p.after_attempt(4, AttemptOutcome::NoAnswer, 0),
            Next::Retry { at: 2 * MIN }
        );
    }

    #[test]
    fn outcomes_that_stand() {
        let p = policy(serde_json::json!({}));
        assert_eq!(p.after_attempt(1, AttemptOutcome::Completed, 0), Next::Done);
        assert_eq!(p.after_attempt(1, AttemptOutcome::Canceled, 0), Next::Done);
        assert_eq!(p.after_attempt(1, AttemptOutcome::Failed, 0), Next::Done);
        // Voicemail only with on_voicemail: retry.
        assert_eq!(p.after_attempt(1, AttemptOutcome::Voicemail, 0), Next::Done);
        let spec = RetryPolicySpec::default();
        let vm = RetryPolicy::new(&spec, true).unwrap();
        assert_eq!(
            vm.after_attempt(1, AttemptOutcome::Voicemail, 0),
            Next::Retry { at: 15 * MIN }
        );
        // Without a policy: one attempt, except voicemail retries.
        let single = RetryPolicy::single(false);
        assert_eq!(
            single.after_attempt(1, AttemptOutcome::NoAnswer, 0),
            Next::Done
        );
        assert_eq!(
            single.after_attempt(1, AttemptOutcome::Voicemail, 0),
            Next::Done
        );
        let single = RetryPolicy::single(true);
        assert_eq!(single.after_attempt(1, AttemptOutcome::Busy, 0), Next::Done);
        assert!(matches!(
            single.after_attempt(1, AttemptOutcome::Voicemail, 0),
            Next::Retry { .. }
        ));
    }

    #[test]
    fn per_outcome_rules() {
        let p = policy(serde_json::json!({
            "outcomes": {
                "busy": {"retry": true, "backoff_minutes": [0.5]},
                "no_answer": {"retry": false},
                "failed": {"retry": true}
            }
        }));
        assert_eq!(
            p.after_attempt(1, AttemptOutcome::Busy, 0),
            Next::Retry { at: 30_000 }
        );
        assert_eq!(p.after_attempt(1, AttemptOutcome::NoAnswer, 0), Next::Done);
        assert_eq!(
            p.after_attempt(1, AttemptOutcome::Failed, 0),
            Next::Retry { at: 15 * MIN }
        );
    }

    #[test]
    fn business_hours_defer_and_expiry_exhausts() {
        let p = policy(serde_json::json!({
            "business_hours_only": true,
            "timezone": "America/New_York",
            "expires_at": "2026-11-27T00:00:00Z",
        }));
        // Wednesday 21:50 UTC = 16:50 local; 15 minutes later it is closed,
        // so the retry waits for Thursday 09:00 local.
        let now = ms("2026-11-25T21:50:00Z");
        assert_eq!(
            p.after_attempt(1, AttemptOutcome::NoAnswer, now),
            Next::Retry {
                at: ms("2026-11-26T14:00:00Z")
            }
        );
        // Thursday evening: Friday morning is past the expiry.
        let now = ms("2026-11-26T21:55:00Z");
        assert_eq!(
            p.after_attempt(2, AttemptOutcome::NoAnswer, now),
            Next::Exhausted
        );
        assert_eq!(p.dial_time(ms("2026-11-26T23:00:00Z")), None);
        assert_eq!(
            p.dial_time(ms("2026-11-26T03:00:00Z")),
            Some(ms("2026-11-26T14:00:00Z"))
        );
    }

    #[test]
    fn callbacks_need_time_not_attempts() {
        let p = policy(serde_json::json!({"max_attempts": 1}));
        assert_eq!(
            p.after_attempt(1, AttemptOutcome::Callback { at: 5 * MIN }, 0),
            Next::FollowUp { at: 5 * MIN }
        );
        // A time in the past means now.
        assert_eq!(
            p.after_attempt(1, AttemptOutcome::Callback { at: 0 }, 7),
            Next::FollowUp { at: 7 }
        );
        let p = policy(serde_json::json!({"expires_at": 1000}));
        assert_eq!(
            p.after_attempt(1, AttemptOutcome::Callback { at: 2000 }, 0),
            Next::Done
        );
        // An interrupted attempt is retried at once while attempts last.
        let p = policy(serde_json::json!({"max_attempts": 2}));
        assert_eq!(
            p.after_attempt(1, AttemptOutcome::Interrupted, 9),
            Next::Retry { at: 9 }
        );
        assert_eq!(
            p.after_attempt(2, AttemptOutcome::Interrupted, 9),
            Next::Exhausted
        );
    }

    #[test]
    fn bad_policies_name_their_field() {
        let err = |json: serde_json::Value| {
            let spec: RetryPolicySpec = serde_json::from_value(json).unwrap();
            RetryPolicy::new(&spec, false).unwrap_err().0
        };
        assert_eq!(err(serde_json::json!({"max_attempts": 0})), "max_attempts");
        assert_eq!(err(serde_json::json!({"max_attempts": 11})), "max_attempts");
        assert_eq!(
            err(serde_json::json!({"backoff_minutes": []})),
            "backoff_minutes"
        );
        assert_eq!(
            err(serde_json::json!({"backoff_minutes": [-1]})),
            "backoff_minutes"
        );
        assert_eq!(
            err(serde_json::json!({"business_hours_only": true})),
            "timezone"
        );
        assert_eq!(
            err(serde_json::json!({"business_hours_only": true, "timezone": "Nowhere/City"})),
            "timezone"
        );
        assert_eq!(
            err(
                serde_json::json!({"business_hours_only": true, "timezone": "UTC",
                "business_hours": {"start": "18:00", "end": "09:00"}})
            ),
            "business_hours.end"
        );
        assert_eq!(
            err(serde_json::json!({"business_hours": {"start": "09:00"}})),
            "business_hours_only"
        );
        assert_eq!(
            err(
                serde_json::json!({"outcomes": {"busy": {"retry": true, "backoff_minutes": [1e9]}}})
            ),
            "outcomes.busy.backoff_minutes"
        );
        assert_eq!(
            err(serde_json::json!({"expires_at": "tomorrow"})),
            "expires_at"
        );
    }
}
