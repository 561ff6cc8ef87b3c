//! An agent's `model` object: which brain, speech engines and
//! conversation settings it runs with, over the server's defaults.
//!
//! ```json
//! {"provider": "openai", "model": "gpt-4o-mini", "base_url": "http://localhost:11434/v1",
//!  "stt": "whisper", "tts": "piper", "endpoint_silence_ms": 700,
//!  "structured_data_schema": {"type": "object", "properties": {…}}}
//! {"provider": "flow", "flow": "receptionist"}
//! {"provider": "flow", "flow": {"start": "greet", "nodes": […]}}
//! ```

use serde::Deserialize;
use serde_json::Value;

use super::flow;

/// Which brain an agent runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum BrainKind {
    /// An LLM when one is configured (a key or a base URL), else a flow.
    Auto,
    /// The offline flow engine.
    Flow,
    /// An OpenAI-compatible LLM.
    Openai,
    /// The OpenAI Realtime API: speech to speech for the whole call, so
    /// `stt` and `tts` do not apply (`model`, `base_url` and `api_key` do).
    #[serde(rename = "openai-realtime")]
    OpenaiRealtime,
}

/// Which speech-to-text an agent runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum SttKind {
    /// Embedded Whisper.
    Whisper,
    /// OpenAI transcriptions over HTTP.
    Openai,
    /// OpenAI's realtime transcription WebSocket.
    OpenaiRealtime,
    /// Deepgram streaming.
    Deepgram,
}

/// Which text-to-speech an agent runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TtsKind {
    /// Embedded Piper voice (espeak-ng when the voice is missing).
    Piper,
    /// espeak-ng.
    Espeak,
    /// OpenAI speech.
    Openai,
    /// ElevenLabs streaming.
    Elevenlabs,
}

impl TtsKind {
    /// The name as configuration and agents spell it.
    pub fn as_str(self) -> &'static str {
        match self {
            TtsKind::Piper => "piper",
            TtsKind::Espeak => "espeak",
            TtsKind::Openai => "openai",
            TtsKind::Elevenlabs => "elevenlabs",
        }
    }
}

/// Parses a kind name as the configuration spells it.
pub fn kind<T: for<'de> Deserialize<'de>>(name: &str) -> Option<T> {
    serde_json::from_value(Value::String(name.to_ascii_lowercase())).ok()
}

/// The parsed `model` object; every field falls back to the server's
/// configuration.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AgentModel {
    /// The brain.
    pub provider: Option<BrainKind>,
    /// A flow: a built-in's name (`demo`, `receptionist`) or a
    /// definition (docs/flows.md).
    pub flow: Option<Value>,
    /// The LLM's model name.
    pub model: Option<String>,
    /// The LLM's API base (OpenAI-compatible servers).
    pub base_url: Option<String>,
    /// The LLM's key (bring your own key); the server's when unset.
    pub api_key: Option<String>,
    /// Sampling temperature.
    pub temperature: Option<f32>,
    /// Speech-to-text.
    pub stt: Option<SttKind>,
    /// Text-to-speech.
    pub tts: Option<TtsKind>,
    /// Silence that ends the caller's turn, in ms.
    pub endpoint_silence_ms: Option<u64>,
    /// Whether callers can interrupt the greeting.
    pub greeting_interruptible: Option<bool>,
    /// Whether backchannels ("mm-hmm", "okay") said over the agent let it
    /// go on instead of interrupting it.
    pub backchannels: Option<bool>,
    /// Record this agent's calls.
    pub record: Option<bool>,
    /// JSON Schema of the data to extract after each call (LLM brains).
    pub structured_data_schema: Option<Value>,
}

/// Built-in flows an agent may name.
pub const BUILTIN_FLOWS: [&str; 2] = ["demo", "receptionist"];

impl AgentModel {
    /// Parses `value`, or lists its problems as (path, message), paths
    /// starting at `model`.
    pub fn parse(value: &Value) -> Result<AgentModel, Vec<(String, String)>> {
        let mut problems = Vec::new();
        let model: AgentModel = match serde_json::from_value(value.clone()) {
            Ok(m) => m,
            Err(e) => {
                let msg = e.to_string();
                // serde names the field in its message; the path is the
                // field when it can be found, else the whole object.
                let field = ["unknown field `", "unknown variant `"]
                    .iter()
                    .find_map(|p| msg.strip_prefix(p))
                    .and_then(|_| {
                        value.as_object()?.iter().find_map(|(k, v)| {
                            let alone =
                                Value::Object([(k.clone(), v.clone())].into_iter().collect());
                            serde_json::from_value::<AgentModel>(alone)
                                .is_err()
                                .then(|| k.clone())
                        })
                    });
                let path = field.map_or_else(|| "model".to_owned(), |f| format!("model.{f}"));
                return Err(vec![(path, msg)]);
            }
        };
        if let Some(ms) = model.endpoint_silence_ms
            && !(200..=5000).contains(&ms)
        {
            problems.push((
                "model.endpoint_silence_ms".into(),
                "must be between 200 and 5000".into(),
            ));
        }
        if let Some(t) = model.temperature
            && !(0.0..=2.0).contains(&t)
        {
            problems.push(("model.temperature".into(), "must be between 0 and 2".into()));
        }
        if let Some(url) = &model.base_url
            && !(url.starts_with("http://") || url.starts_with("https://"))
        {
            problems.push(("model.base_url".into(), "must be an http(s) URL".into()));
        }
        if let Some(s) = &model.structured_data_schema
            && !s.is_object()
        {
            problems.push((
                "model.structured_data_schema".into(),
                "must be a JSON Schema object".into(),
            ));
        }
        match &model.flow {
            None | Some(Value::Null) => {}
            Some(Value::String(name)) => {
                if !BUILTIN_FLOWS.contains(&name.as_str()) {
                    problems.push((
                        "model.flow".into(),
                        format!("unknown built-in flow; one of {}", BUILTIN_FLOWS.join(", ")),
                    ));
                }
            }
            Some(def) => {
                let as_flow = serde_json::json!({"provider": "flow", "flow": def});
                for issue in flow::check_model(&as_flow) {
                    problems.push((format!("model.{}", issue.path), issue.message));
                }
            }
        }
        if problems.is_empty() {
            Ok(model)
        } else {
            Err(problems)
        }
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;
    use serde_json::{Map, json};

    use super::*;

    const KEYS: &[&str] = &[
        "provider",
        "flow",
        "model",
        "base_url",
        "api_key",
        "temperature",
        "stt",
        "tts",
        "endpoint_silence_ms",
        "greeting_interruptible",
        "record",
        "structured_data_schema",
        "start",
        "nodes",
        "id",
        "type",
        "x",
    ];
    const WORDS: &[&str] = &[
        "flow",
        "openai",
        "auto",
        "whisper",
        "deepgram",
        "openai-realtime",
        "piper",
        "espeak",
        "elevenlabs",
        "demo",
        "receptionist",
        "http://h/v1",
        "say",
    ];

    fn json_ish() -> impl Strategy<Value = Value> {
        let leaf = prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::Bool),
            any::<i64>().prop_map(Value::from),
            (-1e4f64..1e4).prop_map(|f| json!(f)),
            prop::sample::select(WORDS).prop_map(|s| json!(s)),
            "\\PC{0,8}".prop_map(Value::String),
        ];
        leaf.prop_recursive(4, 64, 8, |inner| {
            prop_oneof![
                prop::collection::vec(inner.clone(), 0..5).prop_map(Value::Array),
                prop::collection::vec((prop::sample::select(KEYS), inner), 0..8).prop_map(|kv| {
                    Value::Object(
                        kv.into_iter()
                            .map(|(k, v)| (k.to_owned(), v))
                            .collect::<Map<_, _>>(),
                    )
                }),
            ]
        })
    }

    proptest! {
        /// Any JSON an API client sends is parsed or refused with problems
        /// that name a field under `model`; never a panic.
        #[test]
        fn any_value_parses_or_names_its_problems(v in json_ish()) {
            match AgentModel::parse(&v) {
                Ok(_) => prop_assert!(v.is_object()),
                Err(problems) => {
                    prop_assert!(!problems.is_empty());
                    for (path, msg) in problems {
                        prop_assert!(path == "model" || path.starts_with("model."), "{path}");
                        prop_assert!(!msg.is_empty());
                    }
                }
            }
        }
    }

    #[test]
    fn the_empty_object_takes_every_default() {
        assert_eq!(
            AgentModel::parse(&json!({})).unwrap(),
            AgentModel::default()
        );
    }

    #[test]
    fn backchannels_can_be_turned_off() {
        let m = AgentModel::parse(&json!({"backchannels": false})).unwrap();
        assert_eq!(m.backchannels, Some(false));
        assert!(AgentModel::parse(&json!({"backchannels": "no"})).is_err());
    }

    #[test]
    fn kinds_parse_as_configured() {
        let m = AgentModel::parse(&json!({"provider": "openai", "stt": "openai-realtime",
            "tts": "elevenlabs", "flow": "receptionist"}))
        .unwrap();
        assert_eq!(m.provider, Some(BrainKind::Openai));
        assert_eq!(m.stt, Some(SttKind::OpenaiRealtime));
        assert_eq!(m.tts, Some(TtsKind::Elevenlabs));
        assert_eq!(kind::<SttKind>("Whisper"), Some(SttKind::Whisper));
        for t in [
            TtsKind::Piper,
            TtsKind::Espeak,
            TtsKind::Openai,
            TtsKind::Elevenlabs,
        ] {
            assert_eq!(kind::<TtsKind>(t.as_str()), Some(t));
        }
        assert_eq!(kind::<BrainKind>("gpt"), None);
        assert_eq!(
            kind::<BrainKind>("OpenAI-Realtime"),
            Some(BrainKind::OpenaiRealtime)
        );
        let m = AgentModel::parse(&json!({"provider": "openai-realtime", "model": "gpt-realtime"}))
            .unwrap();
        assert_eq!(m.provider, Some(BrainKind::OpenaiRealtime));
    }

    #[test]
    fn problems_name_their_field() {
        let e = AgentModel::parse(&json!({"stt": "vosk"})).unwrap_err();
        assert_eq!(e[0].0, "model.stt");
        let e = AgentModel::parse(&json!({"colour": 1})).unwrap_err();
        assert_eq!(e[0].0, "model.colour");
        let e =
            AgentModel::parse(&json!({"endpoint_silence_ms": 10, "flow": "opera"})).unwrap_err();
        let paths: Vec<&str> = e.iter().map(|(p, _)| p.as_str()).collect();
        assert_eq!(paths, ["model.endpoint_silence_ms", "model.flow"]);
        let e = AgentModel::parse(
            &json!({"flow": {"start": "a", "nodes": [{"id": "a", "type": "shout"}]}}),
        )
        .unwrap_err();
        assert_eq!(e[0].0, "model.flow.nodes.0.type");
    }
}
