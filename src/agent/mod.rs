//! The voice agent: on every call that asks for one, the caller's audio
//! goes to speech-to-text, each finished turn goes to the brain (an LLM or
//! an offline flow), and the reply is streamed through text-to-speech back
//! onto the call, with barge-in and turn-taking in between.
//!
//! * [`provider`]: the three provider traits ([`Stt`], [`Brain`], [`Tts`]).
//! * [`scripted`]: deterministic providers for tests and benches.
//! * [`pipeline`]: the per-call task (turn-taking, barge-in, echo guard,
//!   streaming from the brain through TTS to the line).
//! * [`flow`]: the offline brain, a flow engine (IVR scripts).
//! * [`openai`]: OpenAI-compatible cloud and self-hosted providers (and
//!   Deepgram STT, ElevenLabs TTS).
//! * [`piper`]: offline TTS with a natural Piper voice (sherpa-onnx).
//! * [`espeak`]: offline TTS with espeak-ng, and [`espeak::local_tts`],
//!   which picks Piper or falls back to espeak-ng.
//! * [`silero`]: Silero VAD, which confirms that an onset is speech.
//! * [`tools`]: HTTP tools an agent declares for its brain (validation,
//!   signed requests).
//! * [`whisper`]: embedded offline speech-to-text (Whisper through whisper.cpp).
//! * [`templates`]: prompt templates for real businesses' phone agents.
//! * [`voices`]: the catalogue of voices the server can speak with.

pub mod campaign_tools;
pub mod espeak;
pub mod flow;
pub mod model;
pub mod openai;
pub mod pipeline;
pub mod piper;
pub mod provider;
pub mod scripted;
pub mod service;
pub mod settings;
pub mod silero;
pub mod templates;
pub mod tools;
pub mod voices;
pub mod whisper;

pub use pipeline::{AgentSpec, TurnMetrics};

pub use provider::{
    Brain, BrainEvent, BrainOutcome, BrainSession, CallInfo, Conversation, Message, PcmChunk,
    ProviderError, STT_RATE, Stt, SttEvent, SttOptions, SttStream, ToolCall, ToolSpec, Transcript,
    Tts, TtsEvent, TtsOptions, TtsStream,
};
