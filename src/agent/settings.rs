//! The `[agent]` section of the configuration: conversation defaults and
//! every speech and language engine's settings. Which engines run is
//! chosen in `[providers]`; this section tunes them.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::espeak::EspeakConfig;
use super::flow::FlowConfig;
use super::openai::{
    DeepgramConfig, ElevenLabsConfig, OpenAiConfig, OpenAiSttConfig, OpenAiTtsConfig,
    RealtimeAgentConfig,
};
use super::piper::PiperConfig;
use super::silero::SileroConfig;
use super::whisper::WhisperConfig;

/// Where the engines look for models unless told otherwise: the default
/// of their own `models_dir`.
const ENGINE_DEFAULT_MODELS: &str = "data/models";

/// Conversation defaults and engine settings of the voice agent.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AgentConfig {
    /// Where `scripts/models` put the local models; `<data_dir>/models`
    /// when unset. Applies to every engine section below that leaves its
    /// own `models_dir` at the default.
    pub models_dir: Option<PathBuf>,
    /// Silence that ends the caller's turn, in ms (200–5000).
    pub endpoint_silence_ms: u64,
    /// Caller speech that interrupts the agent, in ms (40–2000).
    pub barge_in_ms: u64,
    /// Silence before "Are you still there?", in seconds (2–120).
    pub silence_reprompt_secs: u64,
    /// Longest caller utterance, in seconds; the turn ends there.
    pub max_utterance_secs: u64,
    /// Calls are ended politely after this long unless the agent or call
    /// says otherwise, in seconds.
    pub max_duration_secs: u64,
    /// Whether callers can interrupt the greeting.
    pub greeting_interruptible: bool,
    /// Whether a backchannel ("mm-hmm", "yeah", "okay") said over the
    /// agent lets it go on: it stops at once as for any interruption, and
    /// resumes when the caller's words turn out to be only that.
    pub backchannels: bool,
    /// Record agent calls (stereo WAV in `<data_dir>/recordings`) unless
    /// the call says otherwise.
    pub record: bool,
    /// The flow of the default agent (`sip:agent@…`) when the brain is a
    /// flow.
    pub flow: FlowConfig,
    /// Embedded Whisper STT.
    pub whisper: WhisperConfig,
    /// Silero VAD, which confirms barge-in onsets.
    pub silero: SileroConfig,
    /// Embedded Piper TTS.
    pub piper: PiperConfig,
    /// espeak-ng TTS (the fallback voice).
    pub espeak: EspeakConfig,
    /// OpenAI-compatible LLM (OpenAI, Ollama, vLLM, llama.cpp).
    pub openai: OpenAiConfig,
    /// OpenAI speech-to-text.
    pub openai_stt: OpenAiSttConfig,
    /// OpenAI text-to-speech.
    pub openai_tts: OpenAiTtsConfig,
    /// Deepgram streaming STT.
    pub deepgram: DeepgramConfig,
    /// ElevenLabs streaming TTS.
    pub elevenlabs: ElevenLabsConfig,
    /// The OpenAI Realtime API (speech to speech), for agents whose brain
    /// is `openai-realtime`.
    pub openai_realtime: RealtimeAgentConfig,
}

impl Default for AgentConfig {
    fn default() -> Self {
        AgentConfig {
            models_dir: None,
            endpoint_silence_ms: 600,
            barge_in_ms: 100,
            silence_reprompt_secs: 8,
            max_utterance_secs: 30,
            max_duration_secs: 1800,
            greeting_interruptible: true,
            backchannels: true,
            record: false,
            flow: FlowConfig::default(),
            whisper: WhisperConfig::default(),
            silero: SileroConfig::default(),
            piper: PiperConfig::default(),
            espeak: EspeakConfig::default(),
            openai: OpenAiConfig::default(),
            openai_stt: OpenAiSttConfig::default(),
            openai_tts: OpenAiTtsConfig::default(),
            deepgram: DeepgramConfig::default(),
            elevenlabs: ElevenLabsConfig::default(),
            openai_realtime: RealtimeAgentConfig::default(),
        }
    }
}

impl AgentConfig {
    /// The problem with these settings, as (key, message).
    pub fn check(&self) -> Result<(), (String, String)> {
        let ranges: [(&str, u64, u64, u64); 5] = [
            ("endpoint_silence_ms", self.endpoint_silence_ms, 200, 5000),
            ("barge_in_ms", self.barge_in_ms, 40, 2000),
            ("silence_reprompt_secs", self.silence_reprompt_secs, 2, 120),
            ("max_utterance_secs", self.max_utterance_secs, 2, 120),
            ("max_duration_secs", self.max_duration_secs, 10, 86_400),
        ];
        for (key, value, min, max) in ranges {
            if !(min..=max).contains(&value) {
                return Err((
                    format!("agent.{key}"),
                    format!("must be between {min} and {max}"),
                ));
            }
        }
        self.openai_realtime
            .check()
            .map_err(|(k, m)| (format!("agent.openai_realtime.{k}"), m))
    }

    /// The models directory: the configured one, else `<data_dir>/models`.
    pub fn models_dir(&self, data_dir: &Path) -> PathBuf {
        self.models_dir
            .clone()
            .unwrap_or_else(|| data_dir.join("models"))
    }

    /// These settings with `models_dir` applied to each engine that left
    /// its own at the default.
    pub fn resolved(&self, data_dir: &Path) -> AgentConfig {
        let dir = self.models_dir(data_dir);
        let mut c = self.clone();
        for d in [
            &mut c.whisper.models_dir,
            &mut c.silero.models_dir,
            &mut c.piper.models_dir,
        ] {
            if d.as_path() == Path::new(ENGINE_DEFAULT_MODELS) {
                d.clone_from(&dir);
            }
        }
        c
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn models_follow_the_data_directory_unless_set() {
        let c = AgentConfig::default().resolved(Path::new("/var/lib/hotline"));
        assert_eq!(c.whisper.models_dir, Path::new("/var/lib/hotline/models"));
        assert_eq!(c.piper.models_dir, Path::new("/var/lib/hotline/models"));
        let mut own = AgentConfig::default();
        own.piper.models_dir = PathBuf::from("/opt/voices");
        own.models_dir = Some(PathBuf::from("/opt/models"));
        let c = own.resolved(Path::new("data"));
        assert_eq!(c.whisper.models_dir, Path::new("/opt/models"));
        assert_eq!(c.piper.models_dir, Path::new("/opt/voices"));
    }

    #[test]
    fn out_of_range_values_name_their_key() {
        let c = AgentConfig {
            endpoint_silence_ms: 50,
            ..AgentConfig::default()
        };
        assert_eq!(c.check().unwrap_err().0, "agent.endpoint_silence_ms");
        assert!(AgentConfig::default().check().is_ok());
        let mut c = AgentConfig::default();
        c.openai_realtime.silence_duration_ms = 10;
        assert_eq!(
            c.check().unwrap_err().0,
            "agent.openai_realtime.silence_duration_ms"
        );
    }
}
