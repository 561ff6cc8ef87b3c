//! The Realtime API's client events, in either protocol version, and the
//! names of the server events that differ between them.

use serde_json::{Value, json};

use super::super::realtime_stt::REALTIME_RATE;
use super::super::stt::RealtimeProtocol;
use super::config::{RealtimeAgentConfig, TurnDetectionKind};
use crate::agent::provider::ToolSpec;

/// A server event's type under its GA name: the beta names of the events
/// the agent reads are mapped to the GA ones, so one handler serves both.
pub(crate) fn event_kind(event: &Value) -> &str {
    let kind = event
        .get("type")
        .and_then(Value::as_str)
        .unwrap_or_default();
    match kind {
        "response.audio.delta" => "response.output_audio.delta",
        "response.audio.done" => "response.output_audio.done",
        "response.audio_transcript.delta" => "response.output_audio_transcript.delta",
        "response.audio_transcript.done" => "response.output_audio_transcript.done",
        "conversation.item.created" => "conversation.item.added",
        other => other,
    }
}

/// What the session is told: everything but the audio itself.
pub(crate) struct SessionSettings<'a> {
    pub config: &'a RealtimeAgentConfig,
    pub instructions: &'a str,
    pub voice: &'a str,
    pub language: Option<&'a str>,
    pub tools: &'a [ToolSpec],
}

/// The `session.update` that starts a call.
pub(crate) fn session_update(s: &SessionSettings<'_>) -> Value {
    let c = s.config;
    // The agent interrupts itself (it knows what was played, and whether
    // this speech may be interrupted); the server only creates replies.
    let turn_detection = match c.turn_detection {
        TurnDetectionKind::ServerVad => json!({
            "type": "server_vad",
            "threshold": c.vad_threshold,
            "prefix_padding_ms": c.prefix_padding_ms,
            "silence_duration_ms": c.silence_duration_ms,
            "create_response": true,
            "interrupt_response": false,
        }),
        TurnDetectionKind::SemanticVad => json!({
            "type": "semantic_vad",
            "eagerness": c.eagerness,
            "create_response": true,
            "interrupt_response": false,
        }),
    };
    let transcription = (!c.transcription_model.trim().is_empty()).then(|| {
        let mut t = json!({ "model": c.transcription_model });
        if let Some(l) = s.language.and_then(two_letters) {
            t["language"] = json!(l);
        }
        t
    });
    let tools: Vec<Value> = s
        .tools
        .iter()
        .map(|t| {
            json!({
                "type": "function",
                "name": t.name,
                "description": t.description,
                "parameters": t.parameters,
            })
        })
        .collect();
    match c.protocol {
        RealtimeProtocol::Ga => json!({
            "type": "session.update",
            "session": {
                "type": "realtime",
                "model": c.model,
                "output_modalities": ["audio"],
                "instructions": s.instructions,
                "audio": {
                    "input": {
                        "format": { "type": "audio/pcm", "rate": REALTIME_RATE },
                        "transcription": transcription,
                        "turn_detection": turn_detection,
                    },
                    "output": {
                        "format": { "type": "audio/pcm", "rate": REALTIME_RATE },
                        "voice": s.voice,
                    },
                },
                "tools": tools,
                "tool_choice": "auto",
            },
        }),
        RealtimeProtocol::Beta => json!({
            "type": "session.update",
            "session": {
                "modalities": ["audio", "text"],
                "instructions": s.instructions,
                "voice": s.voice,
                "input_audio_format": "pcm16",
                "output_audio_format": "pcm16",
                "input_audio_transcription": transcription,
                "turn_detection": turn_detection,
                "tools": tools,
                "tool_choice": "auto",
            },
        }),
    }
}

/// `en-US` → `en`: the transcription models take ISO 639-1.
fn two_letters(language: &str) -> Option<String> {
    let l = language
        .split(['-', '_'])
        .next()?
        .trim()
        .to_ascii_lowercase();
    (!l.is_empty()).then_some(l)
}

/// Asks for a reply, with `event_id` so an error can be traced to it;
/// with `say`, a reply that speaks exactly that text (a greeting, a
/// goodbye), without tools.
pub(crate) fn response_create(event_id: &str, say: Option<&str>) -> Value {
    match say {
        None => json!({"type": "response.create", "event_id": event_id}),
        Some(text) => json!({
            "type": "response.create",
            "event_id": event_id,
            "response": {
                "instructions": format!(
                    "Say exactly the following to the caller, word for word, and nothing else: \"{text}\""
                ),
                "tool_choice": "none",
            },
        }),
    }
}

/// Stops the reply being generated.
pub(crate) fn response_cancel() -> Value {
    json!({"type": "response.cancel"})
}

/// Cuts an assistant item's audio (and so its text in the model's
/// context) to what the caller heard.
pub(crate) fn truncate(item_id: &str, audio_end_ms: u64) -> Value {
    json!({
        "type": "conversation.item.truncate",
        "item_id": item_id,
        "content_index": 0,
        "audio_end_ms": audio_end_ms,
    })
}

/// Something the caller did that is not speech (keys pressed), as a user
/// message.
pub(crate) fn user_text(text: &str) -> Value {
    json!({
        "type": "conversation.item.create",
        "item": {
            "type": "message",
            "role": "user",
            "content": [{"type": "input_text", "text": text}],
        },
    })
}

/// The result of a function call.
pub(crate) fn function_output(call_id: &str, output: &str) -> Value {
    json!({
        "type": "conversation.item.create",
        "item": {
            "type": "function_call_output",
            "call_id": call_id,
            "output": output,
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(config: &RealtimeAgentConfig) -> Value {
        let tools = [ToolSpec {
            name: "end_call".into(),
            description: "Hang up".into(),
            parameters: json!({"type": "object", "properties": {}}),
        }];
        session_update(&SessionSettings {
            config,
            instructions: "Be brief.",
            voice: "cedar",
            language: Some("en-GB"),
            tools: &tools,
        })
    }

    #[test]
    fn ga_and_beta_session_updates() {
        let ga = settings(&RealtimeAgentConfig::default());
        let s = &ga["session"];
        assert_eq!(s["type"], "realtime");
        assert_eq!(s["model"], "gpt-realtime");
        assert_eq!(s["instructions"], "Be brief.");
        assert_eq!(s["audio"]["output"]["voice"], "cedar");
        assert_eq!(s["audio"]["input"]["format"]["rate"], 24_000);
        assert_eq!(
            s["audio"]["input"]["transcription"],
            json!({"model": "gpt-4o-mini-transcribe", "language": "en"})
        );
        let td = &s["audio"]["input"]["turn_detection"];
        assert_eq!(td["type"], "server_vad");
        assert_eq!(td["silence_duration_ms"], 500);
        assert_eq!(td["interrupt_response"], false);
        assert_eq!(s["tools"][0]["type"], "function");
        assert_eq!(s["tools"][0]["name"], "end_call");

        let beta = settings(&RealtimeAgentConfig {
            protocol: RealtimeProtocol::Beta,
            turn_detection: TurnDetectionKind::SemanticVad,
            transcription_model: String::new(),
            ..RealtimeAgentConfig::default()
        });
        let s = &beta["session"];
        assert_eq!(s["voice"], "cedar");
        assert_eq!(s["input_audio_format"], "pcm16");
        assert_eq!(s["input_audio_transcription"], Value::Null);
        assert_eq!(s["turn_detection"]["type"], "semantic_vad");
        assert_eq!(s["turn_detection"]["eagerness"], "auto");
    }

    #[test]
    fn beta_event_names_map_to_ga() {
        for (beta, ga) in [
            ("response.audio.delta", "response.output_audio.delta"),
            (
                "response.audio_transcript.done",
                "response.output_audio_transcript.done",
            ),
            ("response.done", "response.done"),
        ] {
            assert_eq!(event_kind(&json!({"type": beta})), ga);
        }
        assert_eq!(event_kind(&json!({})), "");
    }

    #[test]
    fn a_fixed_line_is_asked_for_without_tools() {
        let r = response_create("e1", Some("Goodbye."));
        assert_eq!(r["event_id"], "e1");
        assert!(
            r["response"]["instructions"]
                .as_str()
                .unwrap()
                .contains("\"Goodbye.\"")
        );
        assert_eq!(r["response"]["tool_choice"], "none");
        assert_eq!(response_create("e2", None)["response"], Value::Null);
    }
}
