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
//! | `ai`      | answered by the voice agent: the number's `agent_id`, else the server's default agent, with the inline settings (`system_prompt`, `first_message`, `voice`, `language`, `max_duration_secs` (600 by default), `record`, `transfer_number`) over its own; `language` adds the reply-language directive to the prompt |
//! | `flow`    | as `ai`, with the offline flow `flow` as the brain              |
//! | `forward` | `forward_to` called (through the number's `trunk`, else the only configured one); the caller hears ringing (183 with ringback when `early_media`), is answered only when the target answers, then both are bridged; busy → 486, no answer within `sip.ring_timeout_secs` → 480 (see [`crate::engine::forward`]) |
//! | `off`     | the `fallback`: `reject` (`reject_status`, 480), `forward`, `play` (the closed message, then hang up); 404 without one |
//!
//! `ai` and `flow` calls get their caller context as `context_source`
//! says (see [`crate::inbound::context`]).
//!
//! With `business_hours` (and a mode other than `off`) the route is
//! [`NumberAction::Scheduled`]: admission picks the mode's action while
//! open and the `after_hours` one (`message`, `ai`, `forward`,
//! `voicemail`) otherwise, as each call arrives.
//!
//! A `prompt` must be a relative path under the data directory (no `..`):
//! an API key must not make the server read arbitrary files. Anything else
//! plays the beep, with a warning.

use std::path::{Component, PathBuf};
use std::time::Duration;

use tracing::warn;

use crate::api::AppState;
use crate::api::resources::inbound::{
    AfterHours, DEFAULT_AFTER_HOURS_MESSAGE, DEFAULT_CLOSED_MESSAGE, DEFAULT_MAX_DURATION_SECS,
    DEFAULT_REJECT_STATUS, DEFAULT_VOICEMAIL_MESSAGE, DEFAULT_VOICEMAIL_SECS, Fallback,
    InboundConfig, InboundMode,
};
use crate::config::{NumberAgent, NumberConfig, NumberMode};
use crate::engine::announce::Announcement;
use crate::engine::numbers::Scheduled;
use crate::engine::{Engine, NumberAction, NumberRoute};
use crate::inbound::context::{
    ContextPlan, ContextSource, ContextWebhook, DEFAULT_WEBHOOK_TIMEOUT_MS,
};
use crate::inbound::language::ReplyLanguage;
use crate::store::{Number, Store, StoreError};

/// A prompt path an API client may name: relative, without `..`.
fn safe_path(number: &str, raw: Option<&str>) -> Option<PathBuf> {
    let raw = raw?;
    let path = PathBuf::from(raw);
    let safe = !raw.is_empty()
        && path
            .components()
            .all(|c| matches!(c, Component::Normal(_) | Component::CurDir));
    if safe {
        Some(path)
    } else {
        warn!(
            number,
            prompt = raw,
            "prompt must be a relative path under the data directory; using the beep"
        );
        None
    }
}

/// Told to the agent of an `ai` number after hours.
const AFTER_HOURS_NOTE: &str = "Note: the business is closed right now (outside its business \
     hours). Tell the caller so, help with what you can, and offer to take a message for a \
     call back.";

/// The number's voice agent, with the inbound settings over its agent's.
fn agent_of(number: &Number, c: &InboundConfig) -> NumberAgent {
    let language = c.language.as_deref().and_then(ReplyLanguage::parse);
    NumberAgent {
        org_id: number.org_id.clone(),
        agent_id: number.agent_id.clone(),
        system_prompt: c.system_prompt.clone(),
        first_message: c.first_message.clone(),
        voice: c.voice.clone(),
        language: language.as_ref().and_then(ReplyLanguage::speech_tag),
        max_duration_secs: Some(u64::from(
            c.max_duration_secs.unwrap_or(DEFAULT_MAX_DURATION_SECS),
        )),
        record: c.record,
        transfer_number: c.transfer_number.clone(),
        flow: (c.mode == InboundMode::Flow)
            .then(|| c.flow.clone())
            .flatten(),
        instructions: language.iter().map(ReplyLanguage::directive).collect(),
        context: context_plan(number, c),
    }
}

/// How the number's AI calls get their caller context; none for `none`.
fn context_plan(number: &Number, c: &InboundConfig) -> Option<ContextPlan> {
    let source = c.context_source.unwrap_or_default();
    (source != ContextSource::None).then(|| ContextPlan {
        source,
        webhook: c.context_webhook_url.as_ref().map(|url| ContextWebhook {
            url: url.clone(),
            // The API makes one with every URL.
            secret: c.context_webhook_secret.clone().unwrap_or_default(),
            timeout: Duration::from_millis(u64::from(
                c.context_webhook_timeout_ms
                    .unwrap_or(DEFAULT_WEBHOOK_TIMEOUT_MS),
            )),
        }),
        number_id: number.id.clone(),
        number: number.e164.clone(),
    })
}

fn forward_to(number: &Number, base: &NumberConfig, to: Option<&str>) -> NumberAction {
    match to {
        // The API refuses both; a row written otherwise must not dial
        // itself over and over.
        None => NumberAction::Refuse {
            status: 480,
            reason: "number forwards without a target".into(),
        },
        Some(to) if crate::config::forward_target(&number.e164, to).is_err() => {
            NumberAction::Refuse {
                status: 482,
                reason: format!("forward target {to:?} is not usable"),
            }
        }
        Some(to) => NumberAction::Answer(NumberConfig {
            mode: NumberMode::Forward,
            forward_to: Some(to.to_owned()),
            ..base.clone()
        }),
    }
}

fn announce(base: &NumberConfig, c: &InboundConfig, a: Announcement) -> NumberAction {
    let language = c.language.as_deref().and_then(ReplyLanguage::parse);
    NumberAction::Answer(NumberConfig {
        mode: NumberMode::Announce,
        announce: Some(Announcement {
            voice: c.voice.clone(),
            language: language.as_ref().and_then(ReplyLanguage::speech_tag),
            ..a
        }),
        ..base.clone()
    })
}

/// What a call gets while the number is open (or has no hours).
fn open_action(number: &Number, base: &NumberConfig, c: &InboundConfig) -> NumberAction {
    match c.mode {
        InboundMode::Echo => NumberAction::Answer(base.clone()),
        InboundMode::Play => NumberAction::Answer(NumberConfig {
            mode: NumberMode::Play,
            prompt: safe_path(&number.e164, c.prompt.as_deref()),
            max_digits: c
                .max_digits
                .map_or(base.max_digits, |d| d.clamp(1, 64) as usize),
            digit_timeout_secs: c
                .digit_timeout_secs
                .map_or(base.digit_timeout_secs, |d| u64::from(d.clamp(1, 60))),
            ..base.clone()
        }),
        InboundMode::Ai | InboundMode::Flow => NumberAction::Answer(NumberConfig {
            mode: NumberMode::Agent,
            agent: Some(agent_of(number, c)),
            ..base.clone()
        }),
        InboundMode::Forward => forward_to(number, base, c.forward_to.as_deref()),
        InboundMode::Off => match c.fallback {
            None => NumberAction::Refuse {
                status: 404,
                reason: "number is off".into(),
            },
            Some(Fallback::Reject) => NumberAction::Refuse {
                status: c.reject_status.unwrap_or(DEFAULT_REJECT_STATUS),
                reason: "inbound AI is off: the fallback rejects".into(),
            },
            Some(Fallback::Forward) => forward_to(number, base, c.fallback_forward_to.as_deref()),
            Some(Fallback::Play) => {
                let prompt = safe_path(&number.e164, c.closed_prompt.as_deref());
                let text = match (&prompt, &c.closed_message) {
                    (Some(_), _) => None,
                    (None, Some(m)) => Some(m.clone()),
                    (None, None) => Some(DEFAULT_CLOSED_MESSAGE.to_owned()),
                };
                announce(
                    base,
                    c,
                    Announcement {
                        text,
                        prompt,
                        ..Announcement::default()
                    },
                )
            }
        },
    }
}

/// What a call gets after hours.
fn closed_action(number: &Number, base: &NumberConfig, c: &InboundConfig) -> NumberAction {
    match c.after_hours.unwrap_or(AfterHours::Message) {
        AfterHours::Ai if number.agent_id.is_some() || c.system_prompt.is_some() => {
            let mut agent = agent_of(number, c);
            if let Some(m) = &c.after_hours_message {
                agent.first_message = Some(m.clone());
            }
            agent.instructions.push(AFTER_HOURS_NOTE.to_owned());
            NumberAction::Answer(NumberConfig {
                mode: NumberMode::Agent,
                agent: Some(agent),
                ..base.clone()
            })
        }
        // No agent to run: the message instead.
        AfterHours::Ai | AfterHours::Message => announce(
            base,
            c,
            Announcement {
                text: Some(
                    c.after_hours_message
                        .clone()
                        .unwrap_or_else(|| DEFAULT_AFTER_HOURS_MESSAGE.to_owned()),
                ),
                ..Announcement::default()
            },
        ),
        AfterHours::Voicemail => announce(
            base,
            c,
            Announcement {
                text: Some(
                    c.after_hours_message
                        .clone()
                        .unwrap_or_else(|| DEFAULT_VOICEMAIL_MESSAGE.to_owned()),
                ),
                voicemail_secs: Some(c.voicemail_max_secs.unwrap_or(DEFAULT_VOICEMAIL_SECS)),
                ..Announcement::default()
            },
        ),
        AfterHours::Forward => forward_to(number, base, c.after_hours_forward_to.as_deref()),
    }
}

/// How the engine routes a stored number.
pub fn route_for(number: &Number) -> NumberRoute {
    let route = |action| NumberRoute {
        number_id: number.id.clone(),
        org_id: number.org_id.clone(),
        e164: number.e164.clone(),
        trunk: number.trunk.clone(),
        action,
    };
    let c: InboundConfig = match serde_json::from_value(number.inbound.clone()) {
        Ok(c) => c,
        Err(e) => {
            warn!(number = %number.e164, error = %e, "inbound settings unreadable; refusing calls");
            return route(NumberAction::Refuse {
                status: 404,
                reason: "inbound settings unreadable".into(),
            });
        }
    };
    let base = NumberConfig {
        number: number.e164.clone(),
        trunk: number.trunk.clone(),
        ring_secs: u64::from(c.ring_secs.unwrap_or(0).min(60)),
        early_media: c.early_media.unwrap_or(false),
        ..NumberConfig::echo_demo()
    };
    let open = open_action(number, &base, &c);
    // Business hours apply to a number that takes calls; one that is off
    // is off at all hours.
    let hours = c
        .business_hours
        .as_ref()
        .filter(|_| c.mode != InboundMode::Off)
        .and_then(|h| match h.compile() {
            Ok(s) => Some(s),
            Err(problems) => {
                warn!(number = %number.e164, ?problems, "business hours unreadable; always open");
                None
            }
        });
    route(match hours {
        Some(hours) => NumberAction::Scheduled(Box::new(Scheduled {
            hours,
            open,
            closed: closed_action(number, &base, &c),
        })),
        None => open,
    })
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
    use serde_json::{Value, json};

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

    fn answer(action: NumberAction) -> NumberConfig {
        match action {
            NumberAction::Answer(n) => n,
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn inline_ai_settings_reach_the_agent_request() {
        let r = route_for(&number(json!({"mode": "ai",
            "system_prompt": "You answer for Acme.", "voice": "en-us",
            "language": "de", "max_duration_secs": 120, "record": true,
            "transfer_number": "+14155550199"})));
        let n = answer(r.action);
        let app = crate::engine::app::CallApp::for_number(&n).unwrap();
        let crate::engine::app::CallApp::Agent(req) = app else {
            panic!("{app:?}")
        };
        assert_eq!(req.org_id.as_deref(), Some("org_1"));
        assert_eq!(req.system_prompt.as_deref(), Some("You answer for Acme."));
        assert_eq!(req.voice.as_deref(), Some("en-us"));
        assert_eq!(req.language.as_deref(), Some("de"));
        assert_eq!(req.max_duration, Some(std::time::Duration::from_secs(120)));
        assert_eq!(req.record, Some(true));
        assert_eq!(req.transfer_number.as_deref(), Some("+14155550199"));
        assert_eq!(req.instructions, ["Always reply in German."]);
        // Callers are remembered by default.
        let plan = req.context.unwrap();
        assert_eq!(plan.source, ContextSource::Memory);
        assert_eq!(
            (plan.number_id.as_str(), plan.number.as_str()),
            ("num_1", "+14155550100")
        );
        assert_eq!(plan.webhook, None);
        // A webhook, and no context at all.
        let n = answer(
            route_for(&number(json!({"mode": "ai", "system_prompt": "x",
                "context_source": "merge", "context_webhook_url": "https://crm.example.com/ctx",
                "context_webhook_secret": "whsec_0123456789abcdef"})))
            .action,
        );
        let plan = n.agent.unwrap().context.unwrap();
        let hook = plan.webhook.unwrap();
        assert_eq!(plan.source, ContextSource::Merge);
        assert_eq!(hook.url, "https://crm.example.com/ctx");
        assert_eq!(hook.secret, "whsec_0123456789abcdef");
        assert_eq!(hook.timeout, Duration::from_millis(1200));
        let n = answer(
            route_for(&number(
                json!({"mode": "ai", "system_prompt": "x", "context_source": "none"}),
            ))
            .action,
        );
        assert_eq!(n.agent.unwrap().context, None);
        // The default limit, and `auto`: no speech language, a directive.
        let n = answer(
            route_for(&number(
                json!({"mode": "ai", "system_prompt": "x", "language": "auto"}),
            ))
            .action,
        );
        let agent = n.agent.unwrap();
        assert_eq!(agent.max_duration_secs, Some(600));
        assert_eq!(agent.language, None);
        assert!(agent.instructions[0].contains("language the caller speaks"));
        // A flow number runs its flow.
        let n = answer(route_for(&number(json!({"mode": "flow", "flow": "receptionist"}))).action);
        assert_eq!(n.agent.unwrap().flow, Some(json!("receptionist")));
    }

    #[test]
    fn a_number_that_is_off_takes_its_fallback() {
        let refused = |v: Value| match route_for(&number(v)).action {
            NumberAction::Refuse { status, .. } => status,
            other => panic!("{other:?}"),
        };
        assert_eq!(refused(json!({"mode": "off"})), 404);
        assert_eq!(refused(json!({"mode": "off", "fallback": "reject"})), 480);
        assert_eq!(
            refused(json!({"mode": "off", "fallback": "reject", "reject_status": 503})),
            503
        );
        let n = answer(
            route_for(&number(json!({"mode": "off", "fallback": "forward",
                "fallback_forward_to": "+14155550123", "system_prompt": "kept"})))
            .action,
        );
        assert_eq!(n.mode, NumberMode::Forward);
        assert_eq!(n.forward_to.as_deref(), Some("+14155550123"));
        let n = answer(
            route_for(&number(
                json!({"mode": "off", "fallback": "play", "closed_message": "Closed."}),
            ))
            .action,
        );
        assert_eq!(n.mode, NumberMode::Announce);
        let a = n.announce.unwrap();
        assert_eq!(a.text.as_deref(), Some("Closed."));
        assert_eq!(a.voicemail_secs, None);
    }

    #[test]
    fn business_hours_pick_the_after_hours_action_when_the_call_arrives() {
        let hours = json!({"timezone": "Europe/Berlin", "weekly": {"mon": [["09:00", "17:00"]]}});
        let monday_10 = "2026-01-05T09:00:00Z".parse::<jiff::Timestamp>().unwrap();
        let monday_20 = "2026-01-05T19:00:00Z".parse::<jiff::Timestamp>().unwrap();
        let base = json!({"mode": "ai", "system_prompt": "Front desk.", "first_message": "Hi!",
            "business_hours": hours});
        let with = |extra: Value| {
            let mut v = base.clone();
            v.as_object_mut()
                .unwrap()
                .extend(extra.as_object().unwrap().clone());
            route_for(&number(v)).action
        };
        // Open: the agent as configured.
        let n = answer(with(json!({})).at(monday_10));
        assert_eq!(n.agent.unwrap().first_message.as_deref(), Some("Hi!"));
        // Closed, default `message`: spoken, no agent.
        let n = answer(with(json!({"after_hours_message": "We open at nine."})).at(monday_20));
        assert_eq!(n.mode, NumberMode::Announce);
        assert_eq!(
            n.announce.unwrap().text.as_deref(),
            Some("We open at nine.")
        );
        // `ai`: the same agent, greeting with the message, told it is closed.
        let n = answer(
            with(json!({"after_hours": "ai", "after_hours_message": "We're closed, but I can help."}))
                .at(monday_20),
        );
        let agent = n.agent.unwrap();
        assert_eq!(agent.system_prompt.as_deref(), Some("Front desk."));
        assert_eq!(
            agent.first_message.as_deref(),
            Some("We're closed, but I can help.")
        );
        assert!(
            agent
                .instructions
                .iter()
                .any(|i| i.contains("closed right now"))
        );
        // `voicemail` and `forward`.
        let n = answer(
            with(json!({"after_hours": "voicemail", "voicemail_max_secs": 30})).at(monday_20),
        );
        assert_eq!(n.announce.unwrap().voicemail_secs, Some(30));
        let n = answer(
            with(json!({"after_hours": "forward", "after_hours_forward_to": "+14155550123"}))
                .at(monday_20),
        );
        assert_eq!(n.mode, NumberMode::Forward);
        assert_eq!(n.forward_to.as_deref(), Some("+14155550123"));
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
