//! An alert's escalation as a sans-IO state machine: it takes what
//! happened (the alert was created, its timer came due, a call ended, it
//! was acknowledged, the organization pulled the emergency stop) with the
//! time, and says what to do (place a call, hang one up, wake at a time)
//! and which status changes to announce. The scheduler stores the state
//! and the wake-up time in the database, so a restart resumes exactly
//! where it was.

use serde::{Deserialize, Serialize};

use super::quiet::Window;

/// Where an alert is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    /// Just created.
    Created,
    /// Waiting out its delay: the owner may acknowledge it in chat first.
    WaitingForPrimaryAck,
    /// Calling (or between calls, waiting to retry).
    EscalatingCall,
    /// The owner asked for a call later.
    Snoozed,
    /// Someone acknowledged it: final.
    Acknowledged,
    /// Its time ran out unacknowledged: final.
    Expired,
    /// Every attempt failed, or it was stopped: final.
    Failed,
}

impl Status {
    /// Whether nothing more happens to the alert.
    pub fn is_final(self) -> bool {
        matches!(
            self,
            Status::Acknowledged | Status::Expired | Status::Failed
        )
    }

    /// The name stored and shown (`waiting_for_primary_ack`, …).
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Created => "created",
            Status::WaitingForPrimaryAck => "waiting_for_primary_ack",
            Status::EscalatingCall => "escalating_call",
            Status::Snoozed => "snoozed",
            Status::Acknowledged => "acknowledged",
            Status::Expired => "expired",
            Status::Failed => "failed",
        }
    }
}

/// How urgent an alert is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Severity {
    /// Respects quiet hours.
    Normal,
    /// Calls at any hour.
    Critical,
}

/// How an alert call ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CallResult {
    /// 0 was pressed.
    Acknowledged,
    /// 1, or a number then `#`: call again in this many minutes.
    Snoozed {
        /// Minutes.
        minutes: u32,
    },
    /// No answer, busy, no key pressed, voicemail, or the call failed.
    Unanswered,
}

/// What happened.
#[derive(Debug, Clone, PartialEq)]
pub enum Input {
    /// The alert was created.
    Created,
    /// Its wake-up time came.
    Due,
    /// Call number `attempt` ended. A report of an earlier call (one the
    /// escalation already gave up on) is ignored.
    CallEnded {
        /// Which call (1-based).
        attempt: u32,
        /// How it ended.
        result: CallResult,
    },
    /// Acknowledged outside a call (`api`, `chat`, `manual`).
    Acknowledged {
        /// The source.
        via: String,
    },
    /// The organization stopped its alerts (the emergency stop, or the
    /// voice channel turned off).
    Stopped {
        /// Why, for the alert's history.
        reason: String,
    },
}

/// What to do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// The status changed (announce it, store it).
    Transition {
        /// Before.
        from: Status,
        /// After.
        to: Status,
    },
    /// Place call number `attempt` (1-based).
    PlaceCall {
        /// Which attempt.
        attempt: u32,
    },
    /// Hang up the call in progress.
    HangUp,
    /// A call was due but quiet hours hold it until `until` (unix ms).
    HeldForQuietHours {
        /// When the window ends.
        until: i64,
    },
}

/// The timing an escalation follows: the organization's retry policy
/// and the server's call limits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Retry {
    /// Between an unanswered call and the next, ms.
    pub interval_ms: i64,
    /// Calls after the first.
    pub max_retries: u32,
    /// A call whose end is not reported within this long counts as
    /// unanswered: the node placing it died with it. Longer than any alert
    /// call (ringing, the alert, three prompts).
    pub call_timeout_ms: i64,
    /// One minute of snooze, ms: 60 000 except in tests.
    pub snooze_minute_ms: i64,
}

impl Default for Retry {
    fn default() -> Self {
        Retry {
            interval_ms: 120_000,
            max_retries: 3,
            call_timeout_ms: 300_000,
            snooze_minute_ms: 60_000,
        }
    }
}

/// An alert's escalation state (stored with the alert).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Escalation {
    /// Its status.
    pub status: Status,
    /// Its urgency.
    pub severity: Severity,
    /// When it expires, unix ms.
    pub expires_at: i64,
    /// Its delay before the first call, ms.
    pub delay_ms: i64,
    /// Calls placed so far.
    pub attempts: u32,
    /// A call is in progress.
    pub calling: bool,
    /// When to wake it next (unix ms): the next call, the end of a delay,
    /// snooze or quiet hours, or, while a call is in progress, the time
    /// after which its end counts as lost; none once final.
    pub next_at: Option<i64>,
    /// How it was acknowledged.
    pub acknowledged_via: Option<String>,
    /// When it was acknowledged, unix ms.
    pub acknowledged_at: Option<i64>,
    /// Why it failed.
    pub failure: Option<String>,
}

impl Escalation {
    /// A new alert's state.
    pub fn new(severity: Severity, delay_ms: i64, expires_at: i64) -> Self {
        Escalation {
            status: Status::Created,
            severity,
            expires_at,
            delay_ms: delay_ms.max(0),
            attempts: 0,
            calling: false,
            next_at: None,
            acknowledged_via: None,
            acknowledged_at: None,
            failure: None,
        }
    }

    fn to(&mut self, status: Status, out: &mut Vec<Action>) {
        if self.status != status {
            out.push(Action::Transition {
                from: self.status,
                to: status,
            });
            self.status = status;
        }
        if status.is_final() {
            self.next_at = None;
        }
    }

    /// Applies `input` at `now` (unix ms) under the organization's retry
    /// settings and quiet hours (`None`: no quiet hours); returns what to
    /// do, in order.
    pub fn step(
        &mut self,
        input: Input,
        now: i64,
        retry: Retry,
        quiet: Option<&Window>,
    ) -> Vec<Action> {
        let mut out = Vec::new();
        if self.status.is_final() {
            return out;
        }
        match input {
            Input::Created => {
                if self.delay_ms > 0 {
                    self.to(Status::WaitingForPrimaryAck, &mut out);
                    self.next_at = Some((now + self.delay_ms).min(self.expires_at));
                } else {
                    self.to(Status::EscalatingCall, &mut out);
                    self.call(now, retry, quiet, &mut out);
                }
            }
            Input::Due => {
                if self.calling {
                    // The call's end was never reported: whoever placed it
                    // is gone, and the call with it.
                    if self.next_at.is_some_and(|t| t <= now) {
                        self.calling = false;
                        self.unanswered(now, retry, &mut out);
                    }
                } else if now >= self.expires_at {
                    self.to(Status::Expired, &mut out);
                } else if self.next_at.is_some_and(|t| t <= now) {
                    self.to(Status::EscalatingCall, &mut out);
                    self.call(now, retry, quiet, &mut out);
                }
            }
            Input::CallEnded { attempt, result } => {
                if !self.calling || attempt != self.attempts {
                    return out;
                }
                self.calling = false;
                match result {
                    CallResult::Acknowledged => {
                        self.acknowledged_via = Some("dtmf".into());
                        self.acknowledged_at = Some(now);
                        self.to(Status::Acknowledged, &mut out);
                    }
                    CallResult::Snoozed { minutes } => {
                        self.to(Status::Snoozed, &mut out);
                        self.wake(now + i64::from(minutes.max(1)) * retry.snooze_minute_ms);
                    }
                    CallResult::Unanswered => self.unanswered(now, retry, &mut out),
                }
            }
            Input::Acknowledged { via } => {
                if self.calling {
                    out.push(Action::HangUp);
                    self.calling = false;
                }
                self.acknowledged_via = Some(via);
                self.acknowledged_at = Some(now);
                self.to(Status::Acknowledged, &mut out);
            }
            Input::Stopped { reason } => {
                if self.calling {
                    out.push(Action::HangUp);
                    self.calling = false;
                }
                self.failure = Some(reason);
                self.to(Status::Failed, &mut out);
            }
        }
        out
    }

    /// The call went unanswered: retry after the interval, or fail once
    /// the retries are spent.
    fn unanswered(&mut self, now: i64, retry: Retry, out: &mut Vec<Action>) {
        if self.attempts > retry.max_retries {
            self.failure = Some(format!("no answer after {} calls", self.attempts));
            self.to(Status::Failed, out);
        } else {
            self.wake(now + retry.interval_ms);
        }
    }

    /// Sets the next wake-up, or expires when it would come too late.
    fn wake(&mut self, at: i64) {
        // Nothing would happen after the end: wake at the end at the latest.
        self.next_at = Some(at.min(self.expires_at));
    }

    /// A call is due now: place it, or hold it for quiet hours.
    fn call(&mut self, now: i64, retry: Retry, quiet: Option<&Window>, out: &mut Vec<Action>) {
        if self.severity == Severity::Normal
            && let Some(w) = quiet
            && w.contains(now)
        {
            let until = w.ends_after(now);
            out.push(Action::HeldForQuietHours { until });
            self.next_at = Some(until.min(self.expires_at));
            return;
        }
        self.attempts += 1;
        self.calling = true;
        // A watchdog, not a plan: the call's end normally comes first.
        self.next_at = Some(now + retry.call_timeout_ms);
        out.push(Action::PlaceCall {
            attempt: self.attempts,
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::alerts::quiet::QuietHours;

    const MIN: i64 = 60_000;

    fn retry() -> Retry {
        Retry::default()
    }

    fn kinds(actions: &[Action]) -> Vec<String> {
        actions
            .iter()
            .map(|a| match a {
                Action::Transition { to, .. } => format!("-> {}", to.as_str()),
                Action::PlaceCall { attempt } => format!("call {attempt}"),
                Action::HangUp => "hang up".into(),
                Action::HeldForQuietHours { .. } => "quiet".into(),
            })
            .collect()
    }

    #[test]
    fn acknowledged_on_the_first_call() {
        let mut e = Escalation::new(Severity::Normal, 0, 60 * MIN);
        let a = e.step(Input::Created, 0, retry(), None);
        assert_eq!(kinds(&a), ["-> escalating_call", "call 1"]);
        let a = e.step(
            Input::CallEnded {
                attempt: 1,
                result: CallResult::Acknowledged,
            },
            30_000,
            retry(),
            None,
        );
        assert_eq!(kinds(&a), ["-> acknowledged"]);
        assert_eq!(e.acknowledged_via.as_deref(), Some("dtmf"));
        assert_eq!(e.next_at, None);
        // Final: nothing more happens.
        assert!(e.step(Input::Due, 40_000, retry(), None).is_empty());
    }

    #[test]
    fn acknowledged_in_chat_during_the_delay_places_no_call() {
        let mut e = Escalation::new(Severity::Normal, 5 * MIN, 60 * MIN);
        let a = e.step(Input::Created, 0, retry(), None);
        assert_eq!(kinds(&a), ["-> waiting_for_primary_ack"]);
        assert_eq!(e.next_at, Some(5 * MIN));
        // Early wake-ups do nothing.
        assert!(e.step(Input::Due, MIN, retry(), None).is_empty());
        let a = e.step(
            Input::Acknowledged { via: "chat".into() },
            2 * MIN,
            retry(),
            None,
        );
        assert_eq!(kinds(&a), ["-> acknowledged"]);
        assert_eq!(e.attempts, 0);
    }

    #[test]
    fn unanswered_calls_retry_then_fail() {
        let r = Retry {
            interval_ms: 2 * MIN,
            max_retries: 2,
            ..retry()
        };
        let mut e = Escalation::new(Severity::Critical, 0, 60 * MIN);
        let mut now = 0;
        let mut log = kinds(&e.step(Input::Created, now, r, None));
        for _ in 0..3 {
            now += 30_000;
            log.extend(kinds(&e.step(
                Input::CallEnded {
                    attempt: e.attempts,
                    result: CallResult::Unanswered,
                },
                now,
                r,
                None,
            )));
            if let Some(t) = e.next_at {
                assert_eq!(t, now + 2 * MIN);
                now = t;
                log.extend(kinds(&e.step(Input::Due, now, r, None)));
            }
        }
        assert_eq!(
            log,
            [
                "-> escalating_call",
                "call 1",
                "call 2",
                "call 3",
                "-> failed"
            ]
        );
        assert_eq!(e.failure.as_deref(), Some("no answer after 3 calls"));
    }

    #[test]
    fn a_snooze_calls_again_after_it() {
        let mut e = Escalation::new(Severity::Normal, 0, 60 * MIN);
        e.step(Input::Created, 0, retry(), None);
        let a = e.step(
            Input::CallEnded {
                attempt: 1,
                result: CallResult::Snoozed { minutes: 15 },
            },
            MIN,
            retry(),
            None,
        );
        assert_eq!(kinds(&a), ["-> snoozed"]);
        assert_eq!(e.next_at, Some(16 * MIN));
        let a = e.step(Input::Due, 16 * MIN, retry(), None);
        assert_eq!(kinds(&a), ["-> escalating_call", "call 2"]);
    }

    #[test]
    fn it_expires_when_time_runs_out() {
        let mut e = Escalation::new(Severity::Normal, 0, 10 * MIN);
        e.step(Input::Created, 0, retry(), None);
        // A snooze past the end wakes it at the end, where it expires.
        e.step(
            Input::CallEnded {
                attempt: 1,
                result: CallResult::Snoozed { minutes: 30 },
            },
            MIN,
            retry(),
            None,
        );
        assert_eq!(e.next_at, Some(10 * MIN));
        let a = e.step(Input::Due, 10 * MIN, retry(), None);
        assert_eq!(kinds(&a), ["-> expired"]);
    }

    #[test]
    fn an_acknowledgement_during_a_call_hangs_it_up() {
        let mut e = Escalation::new(Severity::Normal, 0, 60 * MIN);
        e.step(Input::Created, 0, retry(), None);
        let a = e.step(
            Input::Acknowledged { via: "api".into() },
            5_000,
            retry(),
            None,
        );
        assert_eq!(kinds(&a), ["hang up", "-> acknowledged"]);
        // The call's own end comes after: ignored.
        assert!(
            e.step(
                Input::CallEnded {
                    attempt: 1,
                    result: CallResult::Unanswered,
                },
                6_000,
                retry(),
                None
            )
            .is_empty()
        );
    }

    #[test]
    fn the_emergency_stop_ends_escalation() {
        let mut e = Escalation::new(Severity::Critical, 0, 60 * MIN);
        e.step(Input::Created, 0, retry(), None);
        let stop = Input::Stopped {
            reason: "emergency stop".into(),
        };
        let a = e.step(stop, 1_000, retry(), None);
        assert_eq!(kinds(&a), ["hang up", "-> failed"]);
    }

    #[test]
    fn quiet_hours_hold_normal_alerts_and_not_critical_ones() {
        let w = QuietHours {
            start: "22:00".into(),
            end: "07:00".into(),
            timezone: "UTC".into(),
        }
        .window()
        .unwrap();
        // 23:00 UTC.
        let night = "2026-11-24T23:00:00Z"
            .parse::<jiff::Timestamp>()
            .unwrap()
            .as_millisecond();
        let morning = night + 8 * 60 * MIN;
        let mut normal = Escalation::new(Severity::Normal, 0, night + 24 * 60 * MIN);
        let a = normal.step(Input::Created, night, retry(), Some(&w));
        assert_eq!(kinds(&a), ["-> escalating_call", "quiet"]);
        assert_eq!(normal.next_at, Some(morning));
        assert_eq!(normal.attempts, 0);
        let a = normal.step(Input::Due, morning, retry(), Some(&w));
        assert_eq!(kinds(&a), ["call 1"]);
        let mut critical = Escalation::new(Severity::Critical, 0, night + 60 * MIN);
        let a = critical.step(Input::Created, night, retry(), Some(&w));
        assert_eq!(kinds(&a), ["-> escalating_call", "call 1"]);
        // A normal alert that expires before the morning expires quietly.
        let mut short = Escalation::new(Severity::Normal, 0, night + 60 * MIN);
        short.step(Input::Created, night, retry(), Some(&w));
        assert_eq!(short.next_at, Some(night + 60 * MIN));
        let a = short.step(Input::Due, night + 60 * MIN, retry(), Some(&w));
        assert_eq!(kinds(&a), ["-> expired"]);
    }

    #[test]
    fn a_call_whose_end_never_comes_counts_as_unanswered() {
        let r = retry();
        let mut e = Escalation::new(Severity::Normal, 0, 60 * MIN);
        e.step(Input::Created, 0, r, None);
        assert_eq!(e.next_at, Some(r.call_timeout_ms));
        // The call is running: an early wake-up leaves it alone.
        assert!(e.step(Input::Due, MIN, r, None).is_empty());
        assert!(e.calling);
        // Its node died: at the watchdog the next call is scheduled.
        e.step(Input::Due, r.call_timeout_ms, r, None);
        assert!(!e.calling);
        assert_eq!(e.next_at, Some(r.call_timeout_ms + r.interval_ms));
        let a = e.step(Input::Due, r.call_timeout_ms + r.interval_ms, r, None);
        assert_eq!(kinds(&a), ["call 2"]);
        // The lost call's late report changes nothing.
        let late = Input::CallEnded {
            attempt: 1,
            result: CallResult::Acknowledged,
        };
        assert!(e.step(late, 20 * MIN, r, None).is_empty());
        assert!(e.calling);
    }

    #[test]
    fn snooze_minutes_follow_the_configured_length() {
        let r = Retry {
            snooze_minute_ms: 100,
            ..retry()
        };
        let mut e = Escalation::new(Severity::Normal, 0, 60 * MIN);
        e.step(Input::Created, 0, r, None);
        let ended = Input::CallEnded {
            attempt: 1,
            result: CallResult::Snoozed { minutes: 5 },
        };
        e.step(ended, 1_000, r, None);
        assert_eq!(e.next_at, Some(1_500));
    }
}
