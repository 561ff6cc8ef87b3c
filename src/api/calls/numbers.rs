//! Numbers in the database drive the call engine without a restart: the
//! engine keeps a table of them ([`crate::engine::NumberTable`]) that is
//! loaded at start ([`load_all`]) and updated after every write through
//! the API ([`number_changed`], [`number_removed`]). Admission reads the
//! table synchronously; no INVITE waits on the database.
//!
//! How a number's `inbound` settings map to what a call gets:
//!
//! | `mode`    | the call                                                       |
//! |-----------|----------------------------------------------------------------|
//! | `echo`    | answered, audio echoed (`ring_secs`, `early_media` apply)      |
//! | `play`    | answered, `prompt` played, digits collected (`max_digits`, `digit_timeout_secs`) |
//! | `ai`      | answered by the voice agent: the number's `agent_id`, else the server's default agent |
//! | `forward` | `forward_to` called (through the number's `trunk`, else the only configured one); the caller hears ringing (183 with ringback when `early_media`), is answered only when the target answers, then both are bridged; busy → 486, no answer within `sip.ring_timeout_secs` → 480 (see [`crate::engine::forward`]) |
//! | `off`     | 404 Not Found                                                  |
//!
//! A `prompt` must be a relative path under the data directory (no `..`):
//! an API key must not make the server read arbitrary files. Anything else
//! plays the beep, with a warning.

use std::path::{Component, PathBuf};

use serde_json::Value;
use tracing::warn;

use crate::api::AppState;
use crate::config::{NumberAgent, NumberConfig, NumberMode};
use crate::engine::{Engine, NumberAction, NumberRoute};
use crate::store::{Number, Store, StoreError};

fn uint(inbound: &Value, key: &str) -> Option<u64> {
    inbound.get(key).and_then(Value::as_u64)
}

/// A prompt path an API client may name: relative, without `..`.
fn safe_prompt(number: &Number) -> Option<PathBuf> {
    let raw = number.inbound.get("prompt").and_then(Value::as_str)?;
    let path = PathBuf::from(raw);
    let safe = !raw.is_empty()
        && path
            .components()
            .all(|c| matches!(c, Component::Normal(_) | Component::CurDir));
    if safe {
        Some(path)
    } else {
        warn!(number = %number.e164, prompt = raw, "prompt must be a relative path under the data directory; using the beep");
        None
    }
}

/// How the engine routes a stored number.
pub fn route_for(number: &Number) -> NumberRoute {
    let mode = number
        .inbound
        .get("mode")
        .and_then(Value::as_str)
        .unwrap_or("off");
    let base = NumberConfig {
        number: number.e164.clone(),
        trunk: number.trunk.clone(),
        ring_secs: uint(&number.inbound, "ring_secs").unwrap_or(0).min(60),
        early_media: number
            .inbound
            .get("early_media")
            .and_then(Value::as_bool)
            .unwrap_or(false),
        ..NumberConfig::echo_demo()
    };
    let action = match mode {
        "echo" => NumberAction::Answer(base),
        "play" => NumberAction::Answer(NumberConfig {
            mode: NumberMode::Play,
            prompt: safe_prompt(number),
            max_digits: uint(&number.inbound, "max_digits")
                .map_or(base.max_digits, |d| d.clamp(1, 64) as usize),
            digit_timeout_secs: uint(&number.inbound, "digit_timeout_secs")
                .map_or(base.digit_timeout_secs, |d| d.clamp(1, 60)),
            ..base
        }),
        "ai" => NumberAction::Answer(NumberConfig {
            mode: NumberMode::Agent,
            agent: Some(NumberAgent {
                org_id: number.org_id.clone(),
                agent_id: number.agent_id.clone(),
            }),
            ..base
        }),
        "forward" => match number.inbound.get("forward_to").and_then(Value::as_str) {
            // The API refuses both; a row written otherwise must not dial
            // itself over and over.
            None => NumberAction::Refuse {
                status: 480,
                reason: "number is in forward mode without forward_to".into(),
            },
            Some(to) if crate::config::forward_target(&number.e164, to).is_err() => {
                NumberAction::Refuse {
                    status: 482,
                    reason: format!("forward_to {to:?} is not a usable target"),
                }
            }
            Some(to) => NumberAction::Answer(NumberConfig {
                mode: NumberMode::Forward,
                forward_to: Some(to.to_owned()),
                ..base
            }),
        },
        _ => NumberAction::Refuse {
            status: 404,
            reason: "number is off".into(),
        },
    };
    NumberRoute {
        number_id: number.id.clone(),
        org_id: number.org_id.clone(),
        e164: number.e164.clone(),
        trunk: number.trunk.clone(),
        action,
    }
}

/// Loads every stored number into the engine's table (at start), and the
/// blocked callers their calls decline ([`super::contacts::load_blocked`]).
/// Returns how many numbers there are.
pub async fn load_all(store: &Store, engine: &Engine) -> Result<usize, StoreError> {
    let numbers = store.all_numbers().await?;
    let n = numbers.len();
    engine.numbers().replace_all(numbers.iter().map(route_for));
    super::contacts::load_blocked(store, engine).await?;
    Ok(n)
}

/// Call after a number was created or updated through the API: the next
/// inbound call to it follows its new settings.
pub fn number_changed(state: &AppState, number: &Number) {
    if let Some(engine) = &state.engine {
        engine.set_number(route_for(number));
    }
}

/// Call after a number was deleted through the API, with its E.164.
pub fn number_removed(state: &AppState, e164: &str) {
    if let Some(engine) = &state.engine {
        engine.remove_number(e164);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn number(inbound: Value) -> Number {
        Number {
            id: "num_1".into(),
            org_id: "org_1".into(),
            e164: "+14155550100".into(),
            label: None,
            trunk: Some("carrier".into()),
            agent_id: None,
            inbound,
            created_at: 0,
            updated_at: 0,
        }
    }

    #[test]
    fn modes_map_to_engine_actions() {
        let r = route_for(&number(json!({"mode": "echo", "ring_secs": 2})));
        assert_eq!(r.org_id, "org_1");
        assert_eq!(r.trunk.as_deref(), Some("carrier"));
        match r.action {
            NumberAction::Answer(n) => {
                assert_eq!(n.mode, NumberMode::Echo);
                assert_eq!(n.ring_secs, 2);
            }
            other => panic!("{other:?}"),
        }
        let r = route_for(&number(
            json!({"mode": "play", "prompt": "prompts/hi.wav", "max_digits": 4}),
        ));
        match r.action {
            NumberAction::Answer(n) => {
                assert_eq!(n.mode, NumberMode::Play);
                assert_eq!(n.prompt, Some(PathBuf::from("prompts/hi.wav")));
                assert_eq!(n.max_digits, 4);
            }
            other => panic!("{other:?}"),
        }
        let mut ai = number(json!({"mode": "ai"}));
        ai.agent_id = Some("agt_1".into());
        match route_for(&ai).action {
            NumberAction::Answer(n) => {
                assert_eq!(n.mode, NumberMode::Agent);
                let agent = n.agent.unwrap();
                assert_eq!(
                    (agent.org_id.as_str(), agent.agent_id.as_deref()),
                    ("org_1", Some("agt_1"))
                );
            }
            other => panic!("{other:?}"),
        }
        match route_for(&number(json!({"mode": "off"}))).action {
            NumberAction::Refuse { status, .. } => assert_eq!(status, 404),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn forward_numbers_are_answered_by_forwarding() {
        let r = route_for(&number(
            json!({"mode": "forward", "forward_to": "+14155550123", "early_media": true}),
        ));
        match r.action {
            NumberAction::Answer(n) => {
                assert_eq!(n.mode, NumberMode::Forward);
                assert_eq!(n.forward_to.as_deref(), Some("+14155550123"));
                assert!(n.early_media);
                // Forwarded calls go out through the number's trunk.
                assert_eq!(n.trunk.as_deref(), Some("carrier"));
            }
            other => panic!("{other:?}"),
        }
        // Rows the API would not have written: no target, or itself.
        for (inbound, status) in [
            (json!({"mode": "forward"}), 480),
            (
                json!({"mode": "forward", "forward_to": "+14155550100"}),
                482,
            ),
        ] {
            match route_for(&number(inbound.clone())).action {
                NumberAction::Refuse { status: s, .. } => assert_eq!(s, status, "{inbound}"),
                other => panic!("{inbound}: {other:?}"),
            }
        }
    }

    #[test]
    fn prompts_outside_the_data_directory_are_refused() {
        for bad in ["/etc/passwd", "../secret.wav", "a/../../b.wav", ""] {
            let r = route_for(&number(json!({"mode": "play", "prompt": bad})));
            match r.action {
                NumberAction::Answer(n) => assert_eq!(n.prompt, None, "{bad}"),
                other => panic!("{other:?}"),
            }
        }
    }
}
