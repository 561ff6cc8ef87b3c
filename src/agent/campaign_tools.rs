//! The tools of an outbound call with an objective: `schedule_callback`
//! (the callee asked to be called back) and `mark_do_not_call` (the
//! callee asked never to be called again). Both answer at once and
//! publish an event the call's record acts on (the callback becomes a
//! scheduled attempt, the number goes on the do-not-call list).

use serde_json::{Value, json};

use super::provider::{ToolCall, ToolSpec};
use super::tools::run::ToolResult;
use crate::call::CallEvent;

/// `schedule_callback`.
pub const CALLBACK: &str = "schedule_callback";
/// `mark_do_not_call`.
pub const DO_NOT_CALL: &str = "mark_do_not_call";

/// Furthest ahead a callback may be, ms (30 days).
const MAX_AHEAD_MS: i64 = 30 * 86_400_000;

/// The two tools, for the model.
pub fn tools() -> Vec<ToolSpec> {
    vec![
        ToolSpec {
            name: CALLBACK.into(),
            description: "The person asked to be called back later. Give the time they named, \
                          as an RFC 3339 time with its offset (2026-11-26T15:00:00-05:00) or as \
                          'in N minutes' / 'in N hours'. Call it before saying goodbye."
                .into(),
            parameters: json!({
                "type": "object",
                "properties": {
                    "when": {"type": "string", "description": "RFC 3339 time, or 'in 2 hours'"},
                    "reason": {"type": "string"}
                },
                "required": ["when"]
            }),
        },
        ToolSpec {
            name: DO_NOT_CALL.into(),
            description: "The person asked not to be called again. Call it, apologise briefly, \
                          say goodbye and end the call."
                .into(),
            parameters: json!({
                "type": "object",
                "properties": {"reason": {"type": "string"}}
            }),
        },
    ]
}

/// Whether `name` is one of these tools.
pub fn is_campaign_tool(name: &str) -> bool {
    name == CALLBACK || name == DO_NOT_CALL
}

/// `when` as unix ms, relative to `now_ms`: RFC 3339, or `in N
/// minutes|hours|days`.
pub fn parse_when(when: &str, now_ms: i64) -> Option<i64> {
    let w = when.trim();
    if let Ok(t) = w.parse::<jiff::Timestamp>() {
        return Some(t.as_millisecond());
    }
    let lower = w.to_ascii_lowercase();
    let rest = lower.strip_prefix("in ")?;
    let mut parts = rest.split_whitespace();
    let n: f64 = match parts.next()? {
        "a" | "an" | "one" => 1.0,
        "two" => 2.0,
        "half" => 0.5,
        n => n.parse().ok()?,
    };
    let unit = parts.next()?.trim_end_matches('s');
    let ms = match unit {
        "minute" | "min" => 60_000.0,
        "hour" | "hr" => 3_600_000.0,
        "day" => 86_400_000.0,
        _ => return None,
    };
    if !(n.is_finite() && n >= 0.0) {
        return None;
    }
    Some(now_ms.saturating_add((n * ms).round() as i64))
}

/// What a campaign tool call does: the event to publish (if it was
/// valid) and the answer for the model.
pub fn handle(tc: &ToolCall, now_ms: i64) -> (Option<CallEvent>, ToolResult) {
    let ok = |v: Value| ToolResult {
        content: v.to_string(),
        ok: true,
    };
    let reason = tc
        .arguments
        .get("reason")
        .and_then(Value::as_str)
        .map(|r| r.chars().take(500).collect::<String>());
    match tc.name.as_str() {
        CALLBACK => {
            let Some(when) = tc.arguments.get("when").and_then(Value::as_str) else {
                return (None, ToolResult::error("give `when`"));
            };
            match parse_when(when, now_ms) {
                Some(at) if at <= now_ms.saturating_add(MAX_AHEAD_MS) => {
                    let at = at.max(now_ms);
                    let event = CallEvent::CallbackRequested {
                        at_ms: at,
                        when: when.chars().take(100).collect(),
                    };
                    let iso = jiff::Timestamp::from_millisecond(at)
                        .map(|t| t.to_string())
                        .unwrap_or_default();
                    (Some(event), ok(json!({"scheduled": true, "at": iso})))
                }
                Some(_) => (
                    None,
                    ToolResult::error("a callback can be at most 30 days ahead"),
                ),
                None => (
                    None,
                    ToolResult::error(
                        "`when` must be an RFC 3339 time with offset or 'in N minutes/hours/days'",
                    ),
                ),
            }
        }
        DO_NOT_CALL => (
            Some(CallEvent::DoNotCall { reason }),
            ok(json!({"do_not_call": true})),
        ),
        _ => (None, ToolResult::error("not a campaign tool")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tc(name: &str, args: Value) -> ToolCall {
        ToolCall {
            id: "1".into(),
            name: name.into(),
            arguments: args,
        }
    }

    #[test]
    fn times_the_model_gives() {
        let now = 1_000_000;
        assert_eq!(parse_when("in 2 hours", now), Some(now + 7_200_000));
        assert_eq!(parse_when("In 30 minutes", now), Some(now + 1_800_000));
        assert_eq!(parse_when("in a day", now), Some(now + 86_400_000));
        assert_eq!(parse_when("1970-01-01T01:00:00+01:00", now), Some(0));
        assert_eq!(parse_when("tomorrow-ish", now), None);
        assert_eq!(parse_when("in 3 fortnights", now), None);
    }

    #[test]
    fn callbacks_and_do_not_call() {
        let now = 1_000_000;
        let (ev, r) = handle(&tc(CALLBACK, json!({"when": "in 1 hour"})), now);
        assert!(r.ok);
        assert_eq!(
            ev,
            Some(CallEvent::CallbackRequested {
                at_ms: now + 3_600_000,
                when: "in 1 hour".into()
            })
        );
        // A time in the past means as soon as possible.
        let (ev, _) = handle(&tc(CALLBACK, json!({"when": "1970-01-01T00:00:00Z"})), now);
        assert!(matches!(ev, Some(CallEvent::CallbackRequested { at_ms, .. }) if at_ms == now));
        let (ev, r) = handle(&tc(CALLBACK, json!({"when": "in 90 days"})), now);
        assert!(ev.is_none() && !r.ok);
        let (ev, r) = handle(&tc(CALLBACK, json!({})), now);
        assert!(ev.is_none() && !r.ok);
        let (ev, r) = handle(&tc(DO_NOT_CALL, json!({"reason": "not interested"})), now);
        assert!(r.ok);
        assert_eq!(
            ev,
            Some(CallEvent::DoNotCall {
                reason: Some("not interested".into())
            })
        );
    }
}
