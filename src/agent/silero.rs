//! Speech confirmation with Silero VAD v6.2, run by whisper.cpp's ggml VAD
//! (no ONNX Runtime).
//!
//! The media layer's VAD is an energy detector: cheap enough for every
//! frame, but a door slam, a cough or a loud tone look like speech to it.
//! When it reports an onset, the pipeline hands the next few hundred
//! milliseconds to [`SpeechConfirmer::confirm`] before it treats the onset
//! as a barge-in or the start of a turn; Silero is a small neural network
//! trained to tell voice from noise, and it ignores loud noise that the
//! energy detector fires on.
//!
//! A check costs about a millisecond of CPU per 100 ms of audio. It runs on
//! a bounded pool of blocking threads, each with a Silero context of its
//! own (one checks at a time per context: the network keeps LSTM state),
//! never on the async runtime. The Whisper STT ([`super::whisper`]) uses
//! the same detector to return empty text for utterances without speech.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use serde::{Deserialize, Serialize};
use tokio::sync::Semaphore;
use whisper_rs::{WhisperVadContext, WhisperVadContextParams};

use super::provider::{ProviderError, STT_RATE};

/// The provider name in errors and logs.
const NAME: &str = "silero";

/// Samples per Silero window at 16 kHz (whisper.cpp's `n_window`): one
/// probability every 32 ms.
pub(crate) const WINDOW: usize = 512;

/// Milliseconds of audio per Silero window.
const WINDOW_MS: u32 = (WINDOW as u32 * 1000) / STT_RATE;

/// Settings of the speech confirmer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SileroConfig {
    /// Directory of the local models (`scripts/models` installs them there).
    pub models_dir: PathBuf,
    /// The Silero ggml file, relative to `models_dir` (or absolute).
    pub model: PathBuf,
    /// Probability from which a 32 ms window counts as speech (0–1).
    pub threshold: f32,
    /// Speech needs this many milliseconds of consecutive windows at or
    /// above `threshold`; shorter blips (a click, a knock) are not speech.
    pub min_speech_ms: u32,
    /// Checks that may run at once (each holds a blocking thread and a
    /// Silero context of about 1 MB while it runs); more wait their turn.
    pub concurrency: usize,
}

impl Default for SileroConfig {
    fn default() -> Self {
        SileroConfig {
            models_dir: PathBuf::from("data/models"),
            model: PathBuf::from("silero/ggml-silero-v6.2.0.bin"),
            threshold: 0.5,
            min_speech_ms: 96,
            concurrency: 2,
        }
    }
}

impl SileroConfig {
    /// Where the model file is.
    pub fn model_path(&self) -> PathBuf {
        self.models_dir.join(&self.model)
    }
}

/// What Silero made of a stretch of audio.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SpeechVerdict {
    /// True when the audio holds speech ([`SileroConfig::min_speech_ms`]
    /// of consecutive windows at or above the threshold).
    pub speech: bool,
    /// The highest speech probability of any 32 ms window (0–1).
    pub probability: f32,
    /// How much of the audio Silero took for speech, in milliseconds.
    pub speech_ms: u32,
}

impl SpeechVerdict {
    /// The verdict on per-window probabilities.
    pub(crate) fn from_probabilities(probs: &[f32], threshold: f32, min_speech_ms: u32) -> Self {
        let (mut run, mut longest, mut total) = (0u32, 0u32, 0u32);
        let mut probability = 0f32;
        for &p in probs {
            probability = probability.max(p);
            if p >= threshold {
                run += 1;
                total += 1;
                longest = longest.max(run);
            } else {
                run = 0;
            }
        }
        let min_windows = min_speech_ms.div_ceil(WINDOW_MS).max(1);
        SpeechVerdict {
            speech: longest >= min_windows,
            probability,
            speech_ms: total * WINDOW_MS,
        }
    }
}

/// Loads a Silero context with a clear error when the file is missing.
pub(crate) fn load_context(path: &Path) -> Result<WhisperVadContext, ProviderError> {
    if !path.is_file() {
        return Err(ProviderError::new(
            NAME,
            format!(
                "Silero VAD model not found at {}: run `scripts/models` to install it",
                path.display()
            ),
            false,
        ));
    }
    let Some(p) = path.to_str().filter(|p| !p.contains('\0')) else {
        return Err(ProviderError::new(
            NAME,
            format!("model path {} is not valid UTF-8", path.display()),
            false,
        ));
    };
    let mut params = WhisperVadContextParams::new();
    // A window is 512 samples through a tiny network: more threads only
    // add synchronisation.
    params.set_n_threads(1);
    params.set_use_gpu(false);
    WhisperVadContext::new(p, params).map_err(|e| {
        ProviderError::new(
            NAME,
            format!("cannot load Silero VAD model {}: {e}", path.display()),
            false,
        )
    })
}

/// Runs Silero over `samples` (16 kHz, −1..1) and returns one speech
/// probability per 32 ms window.
pub(crate) fn probabilities(
    ctx: &mut WhisperVadContext,
    samples: &[f32],
) -> Result<Vec<f32>, ProviderError> {
    if samples.is_empty() {
        return Ok(Vec::new());
    }
    ctx.detect_speech(samples)
        .map_err(|e| ProviderError::new(NAME, format!("speech detection failed: {e}"), true))?;
    Ok(ctx.probabilities().to_vec())
}

/// 16-bit PCM to the −1..1 floats whisper.cpp takes.
pub(crate) fn to_f32(samples: &[i16]) -> Vec<f32> {
    samples.iter().map(|&s| f32::from(s) / 32768.0).collect()
}

/// Tells speech from noise on short stretches of 16 kHz audio. Cheap to
/// clone; clones share the model contexts and the pool.
#[derive(Clone)]
pub struct SpeechConfirmer {
    inner: Arc<Inner>,
}

struct Inner {
    /// Idle contexts; a check takes one for its duration. There are as
    /// many as `slots` has permits, so a permit always finds one.
    contexts: Mutex<Vec<WhisperVadContext>>,
    slots: Arc<Semaphore>,
    threshold: f32,
    min_speech_ms: u32,
}

impl std::fmt::Debug for SpeechConfirmer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SpeechConfirmer")
            .field("threshold", &self.inner.threshold)
            .field("min_speech_ms", &self.inner.min_speech_ms)
            .finish_non_exhaustive()
    }
}

impl SpeechConfirmer {
    /// Loads the model (one context per concurrent check). Fails with a
    /// message naming `scripts/models` when the file is missing.
    pub fn new(config: &SileroConfig) -> Result<Self, ProviderError> {
        if !(0.0..=1.0).contains(&config.threshold) {
            return Err(ProviderError::new(
                NAME,
                format!("threshold {} is not within 0..1", config.threshold),
                false,
            ));
        }
        whisper_rs::install_logging_hooks();
        let n = config.concurrency.max(1);
        let path = config.model_path();
        let contexts = (0..n)
            .map(|_| load_context(&path))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(SpeechConfirmer {
            inner: Arc::new(Inner {
                contexts: Mutex::new(contexts),
                slots: Arc::new(Semaphore::new(n)),
                threshold: config.threshold,
                min_speech_ms: config.min_speech_ms,
            }),
        })
    }

    /// Whether `audio` (16 kHz mono, e.g. the 200–500 ms after an onset)
    /// is speech. Runs on the blocking pool; waits for a free context when
    /// all are busy. Dropping the future before it completes lets a check
    /// already started finish, but its result is discarded.
    pub async fn confirm(&self, audio: &[i16]) -> Result<SpeechVerdict, ProviderError> {
        let samples = to_f32(audio);
        let probs = self.probabilities(samples).await?;
        Ok(SpeechVerdict::from_probabilities(
            &probs,
            self.inner.threshold,
            self.inner.min_speech_ms,
        ))
    }

    /// Per-window speech probabilities (one per 32 ms) of `samples`
    /// (16 kHz, −1..1).
    pub(crate) async fn probabilities(&self, samples: Vec<f32>) -> Result<Vec<f32>, ProviderError> {
        let permit = self
            .inner
            .slots
            .clone()
            .acquire_owned()
            .await
            .map_err(|_| ProviderError::new(NAME, "confirmer closed", false))?;
        let inner = self.inner.clone();
        tokio::task::spawn_blocking(move || {
            let _permit = permit;
            let mut ctx = inner
                .contexts
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .pop()
                .ok_or_else(|| ProviderError::new(NAME, "no free Silero context", true))?;
            let result = probabilities(&mut ctx, &samples);
            inner
                .contexts
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .push(ctx);
            result
        })
        .await
        .map_err(|e| ProviderError::new(NAME, format!("speech check failed: {e}"), true))?
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_verdict_needs_a_long_enough_run_above_the_threshold() {
        // 96 ms = three windows in a row.
        let blips = [0.9, 0.1, 0.9, 0.2, 0.95, 0.0];
        let v = SpeechVerdict::from_probabilities(&blips, 0.5, 96);
        assert!(!v.speech);
        assert_eq!(v.probability, 0.95);
        assert_eq!(v.speech_ms, 3 * 32);

        let run = [0.1, 0.6, 0.7, 0.8, 0.2];
        let v = SpeechVerdict::from_probabilities(&run, 0.5, 96);
        assert!(v.speech);
        assert_eq!(v.speech_ms, 96);

        let v = SpeechVerdict::from_probabilities(&[], 0.5, 96);
        assert!(!v.speech);
        assert_eq!(v.probability, 0.0);
    }

    #[test]
    fn a_zero_minimum_still_needs_one_window() {
        assert!(!SpeechVerdict::from_probabilities(&[0.2], 0.5, 0).speech);
        assert!(SpeechVerdict::from_probabilities(&[0.5], 0.5, 0).speech);
    }

    #[test]
    fn a_missing_model_names_scripts_models() {
        let config = SileroConfig {
            models_dir: PathBuf::from("/nonexistent/models"),
            ..SileroConfig::default()
        };
        let err = SpeechConfirmer::new(&config).unwrap_err();
        assert!(err.message.contains("scripts/models"), "{err}");
        assert!(err.message.contains("/nonexistent/models/silero"), "{err}");
        assert!(!err.retryable);
    }

    #[test]
    fn a_threshold_outside_0_1_is_refused() {
        let config = SileroConfig {
            threshold: 1.5,
            ..SileroConfig::default()
        };
        assert!(SpeechConfirmer::new(&config).is_err());
    }
}
