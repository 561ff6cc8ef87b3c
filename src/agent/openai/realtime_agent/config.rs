//! Settings of the realtime agent: the server's ([`RealtimeAgentConfig`],
//! `[agent.openai_realtime]`) and the call's ([`RealtimeSetup`]).

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::super::stt::RealtimeProtocol;
use crate::agent::provider::{ToolSpec, Tts};
use crate::agent::tools::HttpTool;

/// The OpenAI Realtime endpoint (`?model=` is added).
pub const REALTIME_URL: &str = "wss://api.openai.com/v1/realtime";

/// How the API decides that the caller has finished a turn.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TurnDetectionKind {
    /// Voice activity: the turn ends after `silence_duration_ms` of
    /// silence.
    #[default]
    ServerVad,
    /// The model judges whether the caller has finished (`eagerness`).
    SemanticVad,
}

/// Settings of the OpenAI Realtime (speech-to-speech) agent.
#[derive(Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RealtimeAgentConfig {
    /// The WebSocket endpoint, without the query (`model` is added as
    /// `?model=`).
    pub url: String,
    /// API key; `OPENAI_API_KEY` when unset. Never logged or serialized.
    #[serde(skip_serializing)]
    pub api_key: Option<String>,
    /// The realtime model.
    pub model: String,
    /// Which version of the protocol the server speaks: `ga` (the
    /// generally available API) or `beta` (`OpenAI-Beta: realtime=v1`).
    pub protocol: RealtimeProtocol,
    /// The voice; the agent's own voice setting wins.
    pub voice: String,
    /// Model that transcribes the caller for the call's transcript; empty
    /// for no caller transcript (the conversation itself does not need
    /// one).
    pub transcription_model: String,
    /// How the end of the caller's turn is detected.
    pub turn_detection: TurnDetectionKind,
    /// `server_vad`: how loud speech must be (0–1).
    pub vad_threshold: f32,
    /// `server_vad`: audio kept from before the detected start of speech,
    /// in ms.
    pub prefix_padding_ms: u32,
    /// `server_vad`: silence that ends the caller's turn, in ms.
    pub silence_duration_ms: u32,
    /// `semantic_vad`: `low`, `medium`, `high` or `auto`.
    pub eagerness: String,
    /// The agent's audio received but not yet handed to the line, in ms.
    /// The API sends audio faster than real time; past this the socket is
    /// not read until the line catches up. Its events (the caller starting
    /// to speak) then wait behind the audio, so this is set high enough
    /// that a normal reply never reaches it: it bounds memory against a
    /// runaway reply, it does not pace replies.
    pub max_buffer_ms: u64,
    /// Time allowed to open the connection.
    pub connect_timeout_ms: u64,
    /// Attempts after the first to open the connection, on a 429, a 5xx
    /// or a connection failure.
    pub max_retries: u32,
    /// Longest wait before a retry.
    pub max_retry_delay_ms: u64,
}

impl Default for RealtimeAgentConfig {
    fn default() -> Self {
        RealtimeAgentConfig {
            url: REALTIME_URL.to_owned(),
            api_key: None,
            model: "gpt-realtime".to_owned(),
            protocol: RealtimeProtocol::Ga,
            voice: "marin".to_owned(),
            transcription_model: "gpt-4o-mini-transcribe".to_owned(),
            turn_detection: TurnDetectionKind::ServerVad,
            vad_threshold: 0.5,
            prefix_padding_ms: 300,
            silence_duration_ms: 500,
            eagerness: "auto".to_owned(),
            max_buffer_ms: 30_000,
            connect_timeout_ms: 5_000,
            max_retries: 2,
            max_retry_delay_ms: 2_000,
        }
    }
}

impl std::fmt::Debug for RealtimeAgentConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RealtimeAgentConfig")
            .field("url", &self.url)
            .field("api_key", &self.api_key.as_ref().map(|_| "<redacted>"))
            .field("model", &self.model)
            .field("protocol", &self.protocol)
            .field("voice", &self.voice)
            .field("turn_detection", &self.turn_detection)
            .finish_non_exhaustive()
    }
}

impl RealtimeAgentConfig {
    /// The settings' problem, as (key under `[agent.openai_realtime]`,
    /// message).
    pub fn check(&self) -> Result<(), (String, String)> {
        let bad = |k: &str, m: &str| Err((k.to_owned(), m.to_owned()));
        if !(self.url.starts_with("ws://") || self.url.starts_with("wss://")) {
            return bad("url", "must be a ws:// or wss:// URL");
        }
        if self.model.trim().is_empty() {
            return bad("model", "must not be empty");
        }
        if !(0.0..=1.0).contains(&self.vad_threshold) {
            return bad("vad_threshold", "must be between 0 and 1");
        }
        if !(100..=5000).contains(&self.silence_duration_ms) {
            return bad("silence_duration_ms", "must be between 100 and 5000");
        }
        if !["low", "medium", "high", "auto"].contains(&self.eagerness.as_str()) {
            return bad("eagerness", "must be low, medium, high or auto");
        }
        if !(1_000..=600_000).contains(&self.max_buffer_ms) {
            return bad("max_buffer_ms", "must be between 1000 and 600000");
        }
        Ok(())
    }
}

/// What one call's realtime agent is told: the agent's instructions,
/// voice, greeting, tools and limits.
#[derive(Clone)]
pub struct RealtimeSetup {
    /// The agent's instructions.
    pub instructions: String,
    /// Voice; the config's when unset.
    pub voice: Option<String>,
    /// Language of the caller, for the transcript (`en`, `en-US`).
    pub language: Option<String>,
    /// Said (by the model, word for word) as soon as the call is
    /// answered; the agent waits for the caller when unset.
    pub first_message: Option<String>,
    /// Whether the caller can interrupt the greeting.
    pub greeting_interruptible: bool,
    /// Tools offered besides the built-in call tools
    /// ([`crate::agent::pipeline::call::builtin_tools`], always offered).
    pub tools: Vec<ToolSpec>,
    /// HTTP tools (offered too); their answers go back to the model.
    pub http_tools: Vec<HttpTool>,
    /// Tool rounds (results fed back, the model asked again) one caller
    /// turn may take.
    pub max_tool_rounds: usize,
    /// The call is ended (with `time_up` said) after this long.
    pub max_duration: Option<Duration>,
    /// Said before hanging up at the time limit.
    pub time_up: String,
    /// Nobody spoke for this long (the caller silent, the agent done): a
    /// reprompt is said, or after the last one `goodbye` and the call
    /// ends. Never when unset.
    pub silence_reprompt: Option<Duration>,
    /// Said on the first silences; one element per reprompt.
    pub reprompts: Vec<String>,
    /// Said before hanging up on a silent caller.
    pub goodbye: String,
    /// Where `transfer_call` sends the caller; the number the model names
    /// is used only when unset.
    pub transfer_to: Option<String>,
    /// Said, through `apology_tts`, when the API cannot be reached or
    /// fails for good, before hanging up.
    pub apology: String,
    /// A local voice for the apology (the API is what failed); without
    /// one the call is hung up in silence.
    pub apology_tts: Option<Arc<dyn Tts>>,
    /// Where to record the call (stereo WAV, caller left, agent right).
    pub recording: Option<PathBuf>,
}

impl std::fmt::Debug for RealtimeSetup {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RealtimeSetup")
            .field("voice", &self.voice)
            .field("first_message", &self.first_message)
            .field("tools", &self.tools.len())
            .field("http_tools", &self.http_tools.len())
            .field("max_duration", &self.max_duration)
            .field("transfer_to", &self.transfer_to)
            .field("apology_tts", &self.apology_tts.as_ref().map(|t| t.name()))
            .field("recording", &self.recording)
            .finish_non_exhaustive()
    }
}

impl RealtimeSetup {
    /// A setup with `instructions` and the defaults for everything else
    /// (the same lines as the pipeline's [`crate::agent::AgentSpec`]).
    pub fn new(instructions: impl Into<String>) -> Self {
        RealtimeSetup {
            instructions: instructions.into(),
            voice: None,
            language: None,
            first_message: None,
            greeting_interruptible: true,
            tools: Vec::new(),
            http_tools: Vec::new(),
            max_tool_rounds: 3,
            max_duration: None,
            time_up: "I'm sorry, we've reached the time limit for this call. Goodbye.".into(),
            silence_reprompt: Some(Duration::from_secs(8)),
            reprompts: vec!["Are you still there?".into()],
            goodbye: "It seems we got disconnected. Goodbye.".into(),
            transfer_to: None,
            apology: "Sorry, I'm having trouble right now. Please call again later.".into(),
            apology_tts: None,
            recording: None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_check_and_the_key_stays_out_of_output() {
        let c = RealtimeAgentConfig {
            api_key: Some("sk-secret".into()),
            ..RealtimeAgentConfig::default()
        };
        assert!(c.check().is_ok());
        assert!(!format!("{c:?}").contains("sk-secret"));
        let toml = toml::to_string(&c).unwrap();
        assert!(!toml.contains("sk-secret"), "{toml}");
        let back: RealtimeAgentConfig = toml::from_str(&toml).unwrap();
        assert_eq!(back.model, "gpt-realtime");
        let bad = RealtimeAgentConfig {
            url: "https://api.openai.com/v1/realtime".into(),
            ..RealtimeAgentConfig::default()
        };
        assert_eq!(bad.check().unwrap_err().0, "url");
        assert!(toml::from_str::<RealtimeAgentConfig>("colour = 1").is_err());
    }
}
