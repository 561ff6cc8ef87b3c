//! The three provider slots of the voice agent: speech-to-text, the brain
//! and text-to-speech.
//!
//! Each slot is a small object-safe trait whose methods start a *stream*
//! and return at once: input goes in through an `mpsc::Sender`, results
//! come out of an `mpsc::Receiver`. That keeps the traits free of async
//! methods (so they can be `Arc<dyn …>` and chosen from configuration),
//! puts each provider's work in a task or a blocking pool of its own, and
//! gives every slot the same cancellation rule: **dropping the receiver
//! cancels the work**. A provider must notice (a failed `send`, or
//! `Sender::closed`) and stop spending CPU, network or money on a turn
//! that was interrupted.
//!
//! Every channel a provider creates is bounded; a provider that produces
//! faster than the pipeline consumes waits on `send`, it never buffers
//! without limit.
//!
//! Scripted implementations for tests are in [`super::scripted`].

use std::fmt;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use tokio::sync::mpsc;

/// Sample rate of the audio STT receives: 16 kHz mono.
pub const STT_RATE: u32 = 16_000;

/// Capacity of the channels the providers create: deep enough for a
/// second of 20 ms frames, small enough that a stalled consumer is
/// noticed.
pub const STREAM_CAPACITY: usize = 64;

// ---------------------------------------------------------------- STT ---

/// What an STT stream is asked for.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct SttOptions {
    /// BCP 47 language tag (`en`, `en-US`); the provider's default when
    /// unset.
    pub language: Option<String>,
    /// Send [`SttEvent::Partial`]s while audio arrives.
    pub partials: bool,
}

/// A stretch of recognised speech. Times are from the first frame sent on
/// the stream, in milliseconds of audio (not wall-clock time).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Transcript {
    /// The words.
    pub text: String,
    /// Where the words start.
    pub start_ms: u64,
    /// Where the words end.
    pub end_ms: u64,
}

/// What an STT stream reports.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SttEvent {
    /// The best guess so far for the audio since the last final; a later
    /// partial or the final replaces it.
    Partial(Transcript),
    /// Settled text. After the audio sender is dropped the provider sends
    /// the finals still owed (possibly one with empty text) and then closes
    /// the stream.
    Final(Transcript),
    /// The provider failed; the stream closes after this.
    Error(ProviderError),
}

/// One running recognition: send 20 ms frames of [`STT_RATE`] PCM on
/// `audio`, drop it at the end of the utterance, read `events` until it
/// closes.
#[derive(Debug)]
pub struct SttStream {
    /// The caller's audio.
    pub audio: mpsc::Sender<Vec<i16>>,
    /// Partials and finals.
    pub events: mpsc::Receiver<SttEvent>,
}

/// Speech-to-text.
pub trait Stt: Send + Sync + 'static {
    /// Starts a recognition. Must be called inside a tokio runtime.
    fn start(&self, options: &SttOptions) -> SttStream;
    /// A short name for logs and metrics (`whisper`, `openai`, …).
    fn name(&self) -> &str;
}

// -------------------------------------------------------------- brain ---

/// Who said a line of the conversation.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "role", rename_all = "snake_case")]
pub enum Message {
    /// What the caller said (a final transcript).
    User {
        /// The words.
        text: String,
    },
    /// Digits the caller pressed, as a text event.
    Dtmf {
        /// The digits, in order (`0`–`9`, `*`, `#`, `A`–`D`).
        digits: String,
    },
    /// What the agent said, cut to what the caller actually heard when it
    /// was interrupted, and the tools it called in that turn.
    Assistant {
        /// The words heard.
        text: String,
        /// True when the caller cut the reply short.
        #[serde(default)]
        interrupted: bool,
        /// The tool calls of this turn, in order.
        #[serde(default)]
        tool_calls: Vec<ToolCall>,
    },
    /// The result of one tool call.
    Tool {
        /// [`ToolCall::id`] of the call this answers.
        call_id: String,
        /// The result as text (usually JSON), or a description of the
        /// failure.
        content: String,
    },
    /// Something that happened on the call that the brain should know
    /// (`the caller has been silent for 8 s`).
    Event {
        /// A short description.
        text: String,
    },
}

/// A tool the brain may call.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ToolSpec {
    /// Name, `[a-zA-Z0-9_-]{1,64}`.
    pub name: String,
    /// What it does, for the model.
    pub description: String,
    /// JSON Schema of the arguments object.
    pub parameters: serde_json::Value,
}

/// A tool call the brain made.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ToolCall {
    /// Provider-assigned id, echoed in [`Message::Tool`].
    pub id: String,
    /// [`ToolSpec::name`].
    pub name: String,
    /// The arguments (a JSON object).
    pub arguments: serde_json::Value,
}

/// Everything the brain sees for one reply.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Conversation {
    /// The agent's instructions.
    pub system: String,
    /// The conversation so far, oldest first.
    pub messages: Vec<Message>,
    /// The tools offered.
    pub tools: Vec<ToolSpec>,
}

/// What a reply stream yields.
#[derive(Debug, Clone, PartialEq)]
pub enum BrainEvent {
    /// Text to speak, as it is produced (any size: a token or a sentence).
    Text(String),
    /// A tool call; the pipeline runs it, appends the result and asks for
    /// another reply.
    ToolCall(ToolCall),
    /// The reply is complete; the stream closes after this.
    Done,
    /// The provider failed; the stream closes after this.
    Error(ProviderError),
}

/// One call's brain: it may keep state between turns (a flow's position)
/// or none (an LLM, which sees the whole conversation each time).
pub trait BrainSession: Send + 'static {
    /// Starts the reply to `conversation`. Dropping the receiver cancels
    /// it. Must be called inside a tokio runtime.
    fn respond(&mut self, conversation: &Conversation) -> mpsc::Receiver<BrainEvent>;

    /// What the session concluded so far, for the call record: a flow's
    /// end state and captured slots. Sessions without such state (an LLM)
    /// return `None`, and the pipeline asks for a summary separately.
    fn outcome(&self) -> Option<BrainOutcome> {
        None
    }
}

/// How a call went, as the brain saw it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BrainOutcome {
    /// `achieved`, `partial` or `not_achieved`.
    pub outcome: String,
    /// Where the conversation ended (a flow's node id).
    pub end_state: String,
    /// What was captured (slot name → value), a JSON object.
    pub data: serde_json::Value,
    /// For each slot filled from speech, what the caller said that filled
    /// it: the after-call report quotes it (slots keyed in have none).
    #[serde(default, skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    pub quotes: std::collections::BTreeMap<String, String>,
}

/// What a brain knows about the call it is starting on.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct CallInfo {
    /// Hotline's call id.
    pub call_id: String,
    /// The caller (E.164 or SIP user).
    pub from: String,
    /// The number called.
    pub to: String,
    /// `inbound` or `outbound`.
    pub direction: String,
}

/// The brain: an LLM, or an offline flow.
pub trait Brain: Send + Sync + 'static {
    /// A session for one call.
    fn start_call(&self, call: &CallInfo) -> Box<dyn BrainSession>;
    /// A short name for logs and metrics (`flow`, `openai`, …).
    fn name(&self) -> &str;
}

// ---------------------------------------------------------------- TTS ---

/// What a TTS stream is asked for.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct TtsOptions {
    /// Voice name; the provider's default when unset.
    pub voice: Option<String>,
    /// BCP 47 language tag.
    pub language: Option<String>,
}

/// Mono PCM at the provider's own rate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PcmChunk {
    /// Samples per second.
    pub rate: u32,
    /// The samples.
    pub samples: Vec<i16>,
}

impl PcmChunk {
    /// How long the chunk plays.
    pub fn duration(&self) -> Duration {
        if self.rate == 0 {
            return Duration::ZERO;
        }
        Duration::from_secs_f64(self.samples.len() as f64 / f64::from(self.rate))
    }
}

/// What a TTS stream yields. `segment` is the index of the text segment
/// (0 for the first `String` sent on [`TtsStream::text`], 1 for the next,
/// …) that the audio speaks, so the pipeline can tell, from how much audio
/// has played, which words the caller heard.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TtsEvent {
    /// Audio for `segment`, in order.
    Audio {
        /// The text segment spoken.
        segment: usize,
        /// The audio.
        chunk: PcmChunk,
    },
    /// All audio for `segment` has been sent.
    SegmentDone {
        /// The text segment finished.
        segment: usize,
    },
    /// The provider failed; the stream closes after this.
    Error(ProviderError),
}

/// One running synthesis: send text segments (normally one sentence each)
/// on `text`, drop it when the reply is complete, read `audio` until it
/// closes. Segments are spoken in order; a provider may start on a segment
/// before the next arrives, which is what lets the first sentence play
/// while the brain is still writing the second.
#[derive(Debug)]
pub struct TtsStream {
    /// Text segments to speak.
    pub text: mpsc::Sender<String>,
    /// Their audio.
    pub audio: mpsc::Receiver<TtsEvent>,
}

/// Text-to-speech.
pub trait Tts: Send + Sync + 'static {
    /// Starts a synthesis. Must be called inside a tokio runtime.
    fn start(&self, options: &TtsOptions) -> TtsStream;
    /// A short name for logs and metrics (`piper`, `espeak`, `openai`, …).
    fn name(&self) -> &str;
}

// ------------------------------------------------------------- errors ---

/// A provider's failure, as the pipeline and the logs see it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProviderError {
    /// The provider ([`Stt::name`], …).
    pub provider: String,
    /// What went wrong, for the log.
    pub message: String,
    /// True when trying again may work (a timeout, a 429, a 5xx).
    pub retryable: bool,
}

impl ProviderError {
    /// A failure of `provider`.
    pub fn new(provider: &str, message: impl Into<String>, retryable: bool) -> Self {
        ProviderError {
            provider: provider.to_owned(),
            message: message.into(),
            retryable,
        }
    }
}

impl fmt::Display for ProviderError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.provider, self.message)
    }
}

impl std::error::Error for ProviderError {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chunk_duration_follows_its_rate() {
        let c = PcmChunk {
            rate: 22_050,
            samples: vec![0; 22_050 / 2],
        };
        assert_eq!(c.duration(), Duration::from_millis(500));
        let empty = PcmChunk {
            rate: 0,
            samples: vec![1, 2],
        };
        assert_eq!(empty.duration(), Duration::ZERO);
    }

    #[test]
    fn messages_serialize_with_a_role_tag() {
        let m = Message::Assistant {
            text: "Hello".into(),
            interrupted: true,
            tool_calls: vec![],
        };
        let v = serde_json::to_value(&m).unwrap();
        assert_eq!(v["role"], "assistant");
        assert_eq!(v["interrupted"], true);
        let back: Message = serde_json::from_value(v).unwrap();
        assert_eq!(back, m);
    }
}
