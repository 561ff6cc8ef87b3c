//! Cloud and self-hosted providers that speak OpenAI's wire protocols.
//!
//! * [`llm`]: [`OpenAiBrain`], streamed chat completions from OpenAI,
//!   Ollama, vLLM or llama.cpp's server, with tool calls.
//! * [`summary`]: [`OpenAiSummarizer`], the after-call summary, outcome
//!   and extracted data, checked against the schema asked for.
//! * [`report`]: [`OpenAiJson`], one schema-constrained JSON answer (the
//!   after-call report's extraction).
//! * [`tts`]: [`OpenAiTts`], speech streamed as raw PCM, one request per
//!   sentence with the next one fetched while this one plays.
//! * [`stt`]: [`OpenAiStt`], one `/audio/transcriptions` request per
//!   utterance, or the realtime transcription WebSocket with partials.
//! * [`deepgram`]: [`DeepgramStt`], Deepgram's streaming recognition,
//!   here because it shares the plumbing (keys, retries, WebSocket).
//! * [`realtime_agent`]: [`run_realtime`], a whole call through the
//!   OpenAI Realtime API (speech to speech), instead of the pipeline.
//! * [`elevenlabs`]: [`ElevenLabsTts`], ElevenLabs speech over its
//!   `stream-input` WebSocket, likewise.
//!
//! Every provider takes its own `…Config` (base URL, model, key, timeouts,
//! retries). Keys come from the config or `OPENAI_API_KEY`, and are never
//! logged or serialized.

pub mod deepgram;
pub mod elevenlabs;
mod http;
pub mod llm;
mod messages;
pub mod realtime_agent;
mod realtime_stt;
pub mod report;
mod schema;
mod segments;
pub mod stt;
pub mod summary;
mod tool_calls;
pub mod tts;
mod ws;

pub use deepgram::{DeepgramConfig, DeepgramStt};
pub use elevenlabs::{ElevenLabsConfig, ElevenLabsTts};
pub use http::{API_KEY_ENV, OPENAI_BASE_URL};
pub use llm::{MaxTokensField, OpenAiBrain, OpenAiConfig};
pub use realtime_agent::{RealtimeAgentConfig, RealtimeSetup, run_realtime};
pub use report::{JsonRequest, OpenAiJson};
pub use stt::{OpenAiStt, OpenAiSttConfig, RealtimeProtocol, SttTransport};
pub use summary::{CallSummary, OpenAiSummarizer, Outcome, SummaryRequest};
pub use tts::{OpenAiTts, OpenAiTtsConfig};
