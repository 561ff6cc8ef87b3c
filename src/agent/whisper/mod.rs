//! Embedded offline speech-to-text: Whisper through whisper.cpp
//! (`whisper-rs`), on the CPU, with no network and no runtime download.
//!
//! One [`WhisperStt`] loads the model once and starts a fixed pool of
//! inference threads ([`WhisperConfig::concurrency`], each running
//! [`WhisperConfig::threads`] whisper.cpp threads). Every stream is one
//! utterance: its 16 kHz audio is gathered (up to
//! [`WhisperConfig::max_utterance_secs`]; what comes after is not
//! transcribed), and when the audio sender is dropped one
//! [`SttEvent::Final`](super::SttEvent::Final) is sent and the stream
//! closes. With [`SttOptions::partials`] the growing audio is transcribed
//! about every [`WhisperConfig::partial_interval_ms`], but only when a
//! worker is idle and no final is waiting: partials are skipped, never
//! queued, so they cannot delay anyone's final.
//!
//! Whisper writes text over silence and noise ("Thank you.", "you"). Three
//! guards keep that out: Silero VAD runs on the utterance first and whisper
//! is skipped when it hears no speech (the text is then empty); whisper's
//! blank and non-speech tokens are suppressed; and segments whose
//! no-speech probability is above [`WhisperConfig::no_speech_threshold`]
//! are dropped.
//!
//! By default the encoder runs on a window fitted to the utterance (at
//! least about 5 s) rather than whisper's fixed 30 s
//! ([`WhisperConfig::fit_audio_ctx`]): the encoder is most of the cost, so
//! a short turn is transcribed several times faster.
//!
//! Dropping a stream's events receiver cancels it: a final that has not
//! started is never started, and a running inference stops at its next
//! step.

mod pool;
mod stream;
mod text;

use std::path::PathBuf;
use std::sync::Arc;

use serde::{Deserialize, Serialize};
use tokio::sync::mpsc;

use self::pool::{DecodeSettings, Gate, Pool};
use self::stream::StreamSettings;
use super::provider::{
    ProviderError, STREAM_CAPACITY, STT_RATE, Stt, SttEvent, SttOptions, SttStream,
};

/// The provider name ([`Stt::name`]).
const NAME: &str = "whisper";

/// Settings of the embedded Whisper STT.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct WhisperConfig {
    /// Directory of the local models (`scripts/models` installs them there).
    pub models_dir: PathBuf,
    /// The Whisper model (whisper.cpp ggml file), relative to `models_dir`
    /// (or absolute).
    pub model: PathBuf,
    /// Language when a stream asks for none (BCP 47; only the primary
    /// subtag is used). English-only models accept only `en`.
    pub language: String,
    /// Inferences that may run at once (0 counts as 1). Each has a thread
    /// and a whisper state of its own; streams beyond it wait for their
    /// final, and their partials are skipped.
    pub concurrency: usize,
    /// whisper.cpp threads per inference (0 counts as 1). One was the
    /// stable choice on a 2-core host; raise it only with idle cores to
    /// spare.
    pub threads: usize,
    /// Longest utterance transcribed, in seconds; audio beyond it is
    /// dropped (and logged) and the final covers the first part only.
    pub max_utterance_secs: u32,
    /// New audio between two partials, in milliseconds.
    pub partial_interval_ms: u32,
    /// Segments whose no-speech probability is above this are dropped
    /// (0–1; 1 keeps everything).
    pub no_speech_threshold: f32,
    /// Run Silero VAD on an utterance before whisper and return empty
    /// text, without running whisper, when it hears no speech.
    pub speech_gate: bool,
    /// The Silero model for the speech gate, relative to `models_dir` (or
    /// absolute).
    pub vad_model: PathBuf,
    /// Run whisper's encoder on a window fitted to the utterance (at
    /// least about 5 s) instead of its fixed 30 s. The encoder is most of
    /// the cost, so short turns come back 4–10 times sooner; the text was
    /// the same in our tests (`false` restores whisper's stock behaviour).
    pub fit_audio_ctx: bool,
}

impl Default for WhisperConfig {
    fn default() -> Self {
        WhisperConfig {
            models_dir: PathBuf::from("data/models"),
            model: PathBuf::from("whisper/ggml-tiny.en-q8_0.bin"),
            language: "en".into(),
            concurrency: 1,
            threads: 1,
            max_utterance_secs: 30,
            partial_interval_ms: 1000,
            no_speech_threshold: 0.6,
            speech_gate: true,
            vad_model: PathBuf::from("silero/ggml-silero-v6.2.0.bin"),
            fit_audio_ctx: true,
        }
    }
}

impl WhisperConfig {
    /// Where the Whisper model file is.
    pub fn model_path(&self) -> PathBuf {
        self.models_dir.join(&self.model)
    }

    /// Where the Silero model file is.
    pub fn vad_model_path(&self) -> PathBuf {
        self.models_dir.join(&self.vad_model)
    }
}

/// The speech gate's rule. Lower than the confirmer's: the gate only has
/// to tell "some voice somewhere" from "no voice at all".
const GATE: Gate = Gate {
    threshold: 0.35,
    min_speech_ms: 64,
};

/// Embedded Whisper speech-to-text. Cheap to clone; clones share the
/// model and the pool.
#[derive(Clone)]
pub struct WhisperStt {
    pool: Arc<Pool>,
    config: Arc<WhisperConfig>,
}

impl std::fmt::Debug for WhisperStt {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WhisperStt")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

impl WhisperStt {
    /// Loads the model (shared with every other `WhisperStt` on the same
    /// file in this process) and starts the inference threads. Blocks for
    /// the load (about a tenth of a second for tiny): call it at startup or
    /// from a blocking task. Fails with a message naming `scripts/models`
    /// when a model file is missing.
    pub fn new(config: &WhisperConfig) -> Result<Self, ProviderError> {
        let invalid = |m: String| Err(ProviderError::new(NAME, m, false));
        if config.max_utterance_secs == 0 {
            return invalid("max_utterance_secs must be at least 1".into());
        }
        if config.partial_interval_ms < 200 {
            return invalid("partial_interval_ms must be at least 200".into());
        }
        if !(0.0..=1.0).contains(&config.no_speech_threshold) {
            return invalid(format!(
                "no_speech_threshold {} is not within 0..1",
                config.no_speech_threshold
            ));
        }
        let vad_path = config.vad_model_path();
        let pool = Pool::start(
            &config.model_path(),
            config.speech_gate.then_some(vad_path.as_path()),
            config.concurrency,
            DecodeSettings {
                threads: config.threads,
                no_speech_threshold: config.no_speech_threshold,
                fit_audio_ctx: config.fit_audio_ctx,
            },
        )?;
        let stt = WhisperStt {
            pool,
            config: Arc::new(config.clone()),
        };
        stt.language(None)?;
        Ok(stt)
    }

    /// The whisper language code for a stream asking for `requested`.
    fn language(&self, requested: Option<&str>) -> Result<&'static str, ProviderError> {
        let tag = requested.unwrap_or(&self.config.language);
        let primary = tag
            .split(['-', '_'])
            .next()
            .unwrap_or_default()
            .to_ascii_lowercase();
        let Some(code) = whisper_rs::get_lang_id(&primary).and_then(whisper_rs::get_lang_str)
        else {
            return Err(ProviderError::new(
                NAME,
                format!("unknown language {tag:?}"),
                false,
            ));
        };
        if code != "en" && !self.pool.multilingual() {
            return Err(ProviderError::new(
                NAME,
                format!(
                    "the Whisper model {} is English-only and cannot transcribe {tag:?}",
                    self.config.model.display()
                ),
                false,
            ));
        }
        Ok(code)
    }
}

/// What a [`WhisperStt`]'s workers have done since it started (all
/// clones share them). For metrics and tests.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct WhisperStats {
    /// Whisper inferences started (partials and finals).
    pub runs: u64,
    /// Jobs that produced text (possibly empty).
    pub completed: u64,
    /// Jobs stopped before or while running because nobody would read
    /// the result.
    pub cancelled: u64,
    /// Jobs answered with empty text because Silero heard no speech;
    /// whisper did not run.
    pub no_speech: u64,
    /// Jobs that failed.
    pub failed: u64,
    /// Inferences running now.
    pub running: u64,
}

impl WhisperStt {
    /// The workers' counters.
    pub fn stats(&self) -> WhisperStats {
        use std::sync::atomic::Ordering::Relaxed;
        let c = self.pool.stats();
        WhisperStats {
            runs: c.runs.load(Relaxed),
            completed: c.completed.load(Relaxed),
            cancelled: c.cancelled.load(Relaxed),
            no_speech: c.no_speech.load(Relaxed),
            failed: c.failed.load(Relaxed),
            running: c.running.load(Relaxed),
        }
    }
}

impl Stt for WhisperStt {
    fn start(&self, options: &SttOptions) -> SttStream {
        let (audio_tx, audio_rx) = mpsc::channel::<Vec<i16>>(STREAM_CAPACITY);
        let (tx, rx) = mpsc::channel(STREAM_CAPACITY);
        match self.language(options.language.as_deref()) {
            Ok(language) => {
                let rate = STT_RATE as usize;
                let settings = StreamSettings {
                    language,
                    partials: options.partials,
                    partial_every: rate * self.config.partial_interval_ms as usize / 1000,
                    max_samples: rate * self.config.max_utterance_secs as usize,
                    gate: self.config.speech_gate.then_some(GATE),
                };
                tokio::spawn(stream::run(self.pool.clone(), settings, audio_rx, tx));
            }
            Err(e) => {
                // The stream ends at once; its audio sender fails on send.
                drop(audio_rx);
                tokio::spawn(async move {
                    let _ = tx.send(SttEvent::Error(e)).await;
                });
            }
        }
        SttStream {
            audio: audio_tx,
            events: rx,
        }
    }

    fn name(&self) -> &str {
        NAME
    }
}
