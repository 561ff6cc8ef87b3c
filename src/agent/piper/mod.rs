//! Piper: natural-sounding offline voices (VITS models trained on espeak-ng
//! phonemes), run in-process by sherpa-onnx.
//!
//! Text becomes phonemes through the `espeak-ng` command line
//! ([`phonemize`]), phonemes become audio on a bounded pool of blocking
//! threads, and audio leaves in short chunks. Each segment is cut into
//! sentences (and a long sentence at its clauses, see [`split`]); the
//! next piece is synthesized while the previous one plays.
//!
//! The model and libraries are installed by `scripts/models`
//! (`scripts/models.d/piper.sh`): the voice under
//! `<models_dir>/piper/<voice>/`, the sherpa-onnx runtime under
//! `<models_dir>/sherpa-onnx/lib/`.

mod phonemize;
mod split;
mod voice;

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, Weak};

use serde::{Deserialize, Serialize};
use tokio::sync::{Semaphore, mpsc};

use super::provider::{
    PcmChunk, ProviderError, STREAM_CAPACITY, Tts, TtsEvent, TtsOptions, TtsStream,
};
use voice::{Voice, VoiceFiles};

/// The name in logs, metrics and [`ProviderError`]s.
const NAME: &str = "piper";

/// Settings of the Piper voice.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct PiperConfig {
    /// Where `scripts/models` installed the models; the voice is read from
    /// `<models_dir>/piper/<voice>/`.
    pub models_dir: PathBuf,
    /// The voice: a directory name under `<models_dir>/piper/`.
    pub voice: String,
    /// Speaking pace, as a multiple of the voice's own phoneme durations:
    /// above 1 is slower, below 1 faster (0.5 to 2).
    pub length_scale: f32,
    /// Silence put between two sentences, in milliseconds.
    pub sentence_pause_ms: u32,
    /// Syntheses running at once, across all calls; further pieces wait
    /// their turn. Each takes one core (times `threads`) while it runs.
    pub max_concurrent: usize,
    /// ONNX Runtime threads per synthesis. The voice's session is shared by
    /// every call, so with more than one thread concurrent syntheses share
    /// the same helper threads.
    pub threads: usize,
    /// Length of the audio chunks sent, in milliseconds (10 to 200).
    pub chunk_ms: u32,
    /// Longest first piece of a segment, in characters: nothing of the
    /// segment plays before it is synthesized, so a longer first sentence
    /// is cut at a clause boundary (about 60 characters take 0.8 s on one
    /// core).
    pub first_piece_chars: usize,
    /// Longest piece of text synthesized in one pass, in characters: a
    /// longer sentence is cut at its clauses (or between words); the next
    /// piece is synthesized while the previous one plays.
    pub max_piece_chars: usize,
    /// The espeak-ng program that turns text into phonemes.
    pub espeak_ng: PathBuf,
}

impl Default for PiperConfig {
    fn default() -> Self {
        PiperConfig {
            models_dir: PathBuf::from("data/models"),
            voice: "en_US-joe-medium".into(),
            length_scale: 1.0,
            sentence_pause_ms: 200,
            max_concurrent: 2,
            threads: 1,
            chunk_ms: 40,
            first_piece_chars: 60,
            max_piece_chars: 160,
            espeak_ng: PathBuf::from("espeak-ng"),
        }
    }
}

/// Why the Piper voice cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum PiperError {
    /// A file of the voice is not installed.
    #[error("{0} is missing: run scripts/models to install the Piper voice")]
    Missing(PathBuf),
    /// The model has not been through `scripts/models`' preparation.
    #[error("{0} lacks the metadata sherpa-onnx needs: run scripts/models to prepare it")]
    NotPrepared(PathBuf),
    /// The voice setting is not a plain directory name.
    #[error("invalid Piper voice name {0:?}")]
    BadVoiceName(String),
    /// A file of the voice is malformed or describes an unsupported voice.
    #[error("{0}: {1}")]
    BadVoice(PathBuf, String),
    /// A file of the voice cannot be read.
    #[error("{0}: {1}")]
    Io(PathBuf, #[source] std::io::Error),
    /// sherpa-onnx refused the model (its reason is on stderr).
    #[error("sherpa-onnx could not load {0}")]
    Load(PathBuf),
    /// A setting is out of range.
    #[error("invalid Piper setting: {0}")]
    Config(String),
    /// espeak-ng failed.
    #[error("espeak-ng: {0}")]
    Espeak(String),
    /// The model returned no audio.
    #[error("sherpa-onnx produced no audio")]
    Synthesis,
}

/// What [`PiperTts`] has been doing, for metrics and tests.
#[derive(Debug, Default)]
struct Stats {
    in_flight: AtomicUsize,
    pieces: AtomicU64,
}

/// Decrements the in-flight count however synthesis ends.
struct InFlight<'a>(&'a Stats);

impl<'a> InFlight<'a> {
    fn enter(stats: &'a Stats) -> Self {
        stats.in_flight.fetch_add(1, Ordering::Relaxed);
        InFlight(stats)
    }
}

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        self.0.in_flight.fetch_sub(1, Ordering::Relaxed);
        self.0.pieces.fetch_add(1, Ordering::Relaxed);
    }
}

/// Everything a synthesis stream needs, shared by all of them.
#[derive(Debug)]
struct Shared {
    voice: Arc<Voice>,
    permits: Arc<Semaphore>,
    espeak: PathBuf,
    chunk_len: usize,
    pause_len: usize,
    first_piece_chars: usize,
    max_piece_chars: usize,
    stats: Stats,
    /// Set once a stream asked for another voice and was told so in the
    /// log: every turn of every call would repeat it.
    warned_voice: AtomicBool,
}

/// Text-to-speech with a Piper voice. Cheap to clone; every clone (and
/// every [`PiperTts`] of the same voice and settings in the process) shares
/// one loaded model.
#[derive(Debug, Clone)]
pub struct PiperTts {
    shared: Arc<Shared>,
}

/// Voices loaded in this process, so that a second [`PiperTts`] for the
/// same voice reuses the first one's model.
type VoiceKey = (VoiceFiles, u32, usize);
static LOADED: Mutex<Vec<(VoiceKey, Weak<Voice>)>> = Mutex::new(Vec::new());

fn load_voice(
    files: VoiceFiles,
    length_scale: f32,
    threads: usize,
) -> Result<Arc<Voice>, PiperError> {
    let key = (files, length_scale.to_bits(), threads);
    // Held while loading, so that two callers do not load the same voice
    // twice; this is a blocking start-up path, never an async one.
    let mut loaded = LOADED.lock().unwrap_or_else(|e| e.into_inner());
    loaded.retain(|(_, v)| v.strong_count() > 0);
    if let Some(voice) = loaded
        .iter()
        .find(|(k, _)| *k == key)
        .and_then(|(_, v)| v.upgrade())
    {
        return Ok(voice);
    }
    let voice = Arc::new(Voice::load(&key.0, length_scale, threads)?);
    loaded.push((key, Arc::downgrade(&voice)));
    Ok(voice)
}

impl PiperTts {
    /// Loads the voice `config` names. Blocks while ONNX Runtime builds its
    /// session (about a second): call it at start-up or from
    /// `spawn_blocking`.
    pub fn new(config: &PiperConfig) -> Result<PiperTts, PiperError> {
        if !(0.5..=2.0).contains(&config.length_scale) {
            return Err(PiperError::Config(format!(
                "length_scale {} is outside 0.5..=2",
                config.length_scale
            )));
        }
        if !(10..=200).contains(&config.chunk_ms) {
            return Err(PiperError::Config(format!(
                "chunk_ms {} is outside 10..=200",
                config.chunk_ms
            )));
        }
        if config.max_concurrent == 0 || config.threads == 0 || config.threads > 64 {
            return Err(PiperError::Config(
                "max_concurrent and threads must be at least 1 (threads at most 64)".into(),
            ));
        }
        if config.max_piece_chars < 20 {
            return Err(PiperError::Config(
                "max_piece_chars must be at least 20".into(),
            ));
        }
        if config.sentence_pause_ms > 2_000 {
            return Err(PiperError::Config(
                "sentence_pause_ms is at most 2000".into(),
            ));
        }
        check_espeak(&config.espeak_ng)?;
        let files = VoiceFiles::find(&config.models_dir, &config.voice)?;
        let voice = load_voice(files, config.length_scale, config.threads)?;
        let ms = |ms: u32| voice.sample_rate as usize * ms as usize / 1000;
        Ok(PiperTts {
            shared: Arc::new(Shared {
                permits: Arc::new(Semaphore::new(config.max_concurrent)),
                espeak: config.espeak_ng.clone(),
                chunk_len: ms(config.chunk_ms).max(1),
                pause_len: ms(config.sentence_pause_ms),
                first_piece_chars: config.first_piece_chars,
                max_piece_chars: config.max_piece_chars,
                stats: Stats::default(),
                warned_voice: AtomicBool::new(false),
                voice,
            }),
        })
    }

    /// The rate of the audio this voice produces (22,050 Hz for a medium
    /// voice).
    pub fn sample_rate(&self) -> u32 {
        self.shared.voice.sample_rate
    }

    /// The loaded voice's name.
    pub fn voice(&self) -> &str {
        &self.shared.voice.name
    }

    /// Syntheses running right now (on the pool) for this `PiperTts` and
    /// its clones.
    pub fn in_flight(&self) -> usize {
        self.shared.stats.in_flight.load(Ordering::Relaxed)
    }

    /// Pieces of text synthesized so far (sentences, or parts of long
    /// ones).
    pub fn pieces_synthesized(&self) -> u64 {
        self.shared.stats.pieces.load(Ordering::Relaxed)
    }
}

/// Whether the files of the voice `config` names are installed (the
/// runtime is not loaded to find out).
pub fn installed(config: &PiperConfig) -> bool {
    VoiceFiles::find(&config.models_dir, &config.voice).is_ok()
}

/// Fails unless `espeak_ng` runs: without it there are no phonemes.
fn check_espeak(espeak_ng: &Path) -> Result<(), PiperError> {
    let out = std::process::Command::new(espeak_ng)
        .arg("--version")
        .stdin(std::process::Stdio::null())
        .output()
        .map_err(|e| PiperError::Espeak(format!("cannot run {}: {e}", espeak_ng.display())))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(PiperError::Espeak(format!(
            "{} --version failed ({})",
            espeak_ng.display(),
            out.status
        )))
    }
}

impl Tts for PiperTts {
    fn start(&self, options: &TtsOptions) -> TtsStream {
        if let Some(v) = &options.voice
            && *v != self.shared.voice.name
            && !self.shared.warned_voice.swap(true, Ordering::Relaxed)
        {
            tracing::warn!(
                requested = %v,
                voice = %self.shared.voice.name,
                "piper: only the configured voice is loaded; speaking with it"
            );
        }
        let (text_tx, text_rx) = mpsc::channel(STREAM_CAPACITY);
        let (tx, rx) = mpsc::channel(STREAM_CAPACITY);
        tokio::spawn(deliver(self.shared.clone(), text_rx, tx));
        TtsStream {
            text: text_tx,
            audio: rx,
        }
    }

    fn name(&self) -> &str {
        NAME
    }
}

/// What the synthesis task hands to the delivery task.
enum Spoken {
    /// One piece of `segment`, whole.
    Audio { segment: usize, samples: Vec<i16> },
    /// `segment` is complete.
    Done { segment: usize },
    /// Synthesis failed; nothing follows.
    Failed(ProviderError),
}

/// Aborts the synthesis task when delivery ends, however it ends.
struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// Cuts synthesized pieces into chunks onto `tx`. Synthesis runs in a task
/// of its own one piece ahead (the channel between them holds one piece),
/// so the next piece is being made while this one is delivered and played.
async fn deliver(shared: Arc<Shared>, text: mpsc::Receiver<String>, tx: mpsc::Sender<TtsEvent>) {
    let (pieces_tx, mut pieces) = mpsc::channel(1);
    let chunk_len = shared.chunk_len;
    let rate = shared.voice.sample_rate;
    let _synthesis = AbortOnDrop(tokio::spawn(synthesize(shared, text, pieces_tx)));
    loop {
        let piece = tokio::select! {
            p = pieces.recv() => p,
            _ = tx.closed() => return,
        };
        let event = match piece {
            None => return,
            Some(Spoken::Done { segment }) => TtsEvent::SegmentDone { segment },
            Some(Spoken::Failed(e)) => {
                let _ = tx.send(TtsEvent::Error(e)).await;
                return;
            }
            Some(Spoken::Audio { segment, samples }) => {
                for chunk in samples.chunks(chunk_len) {
                    let chunk = PcmChunk {
                        rate,
                        samples: chunk.to_vec(),
                    };
                    if tx.send(TtsEvent::Audio { segment, chunk }).await.is_err() {
                        return;
                    }
                }
                continue;
            }
        };
        if tx.send(event).await.is_err() {
            return;
        }
    }
}

/// Speaks each segment of `text`, piece by piece, into `out`.
async fn synthesize(
    shared: Arc<Shared>,
    mut text: mpsc::Receiver<String>,
    out: mpsc::Sender<Spoken>,
) {
    let fail = |e: PiperError| Spoken::Failed(ProviderError::new(NAME, e.to_string(), false));
    let mut segment = 0;
    let mut spoke = false;
    loop {
        let segment_text = tokio::select! {
            t = text.recv() => t,
            _ = out.closed() => return,
        };
        let Some(segment_text) = segment_text else {
            return;
        };
        for piece in split::units(
            &segment_text,
            shared.first_piece_chars,
            shared.max_piece_chars,
        ) {
            let phonemes = match phonemize::phonemize(
                &shared.espeak,
                &shared.voice.espeak_voice,
                &piece,
            )
            .await
            {
                Ok(p) => p,
                Err(e) => {
                    let _ = out.send(fail(e)).await;
                    return;
                }
            };
            let phonemes: Vec<char> = phonemes
                .chars()
                .filter(|&c| shared.voice.knows(c))
                .collect();
            if !phonemes.iter().any(|c| c.is_alphanumeric()) {
                // Nothing pronounceable (symbols espeak-ng has no reading
                // for): no audio, and no error either.
                continue;
            }
            let permit = tokio::select! {
                p = shared.permits.clone().acquire_owned() => p.expect("the semaphore is never closed"),
                _ = out.closed() => return,
            };
            let job = shared.clone();
            // Holds the permit until the inference is over, even when this
            // stream is cancelled meanwhile: the pool stays bounded.
            let samples = tokio::task::spawn_blocking(move || {
                let _permit = permit;
                let _in_flight = InFlight::enter(&job.stats);
                job.voice.synthesize(&phonemes)
            })
            .await;
            let samples = match samples {
                Ok(Ok(s)) => s,
                Ok(Err(e)) => {
                    let _ = out.send(fail(e)).await;
                    return;
                }
                Err(e) => {
                    let _ = out
                        .send(Spoken::Failed(ProviderError::new(
                            NAME,
                            format!("synthesis task failed: {e}"),
                            false,
                        )))
                        .await;
                    return;
                }
            };
            let pause = if piece.starts_sentence && spoke {
                shared.pause_len
            } else {
                0
            };
            let mut pcm = vec![0i16; pause];
            pcm.extend(samples.iter().map(|&x| to_i16(x)));
            spoke = true;
            if out
                .send(Spoken::Audio {
                    segment,
                    samples: pcm,
                })
                .await
                .is_err()
            {
                return;
            }
        }
        if out.send(Spoken::Done { segment }).await.is_err() {
            return;
        }
        segment += 1;
    }
}

fn to_i16(x: f32) -> i16 {
    // NaN becomes 0 through the saturating cast.
    (x.clamp(-1.0, 1.0) * 32767.0).round() as i16
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn samples_convert_with_clipping() {
        assert_eq!(to_i16(0.0), 0);
        assert_eq!(to_i16(1.0), 32767);
        assert_eq!(to_i16(-1.0), -32767);
        assert_eq!(to_i16(3.0), 32767);
        assert_eq!(to_i16(-3.0), -32767);
        assert_eq!(to_i16(f32::NAN), 0);
        assert_eq!(to_i16(0.5), 16384);
    }

    #[test]
    fn config_round_trips_and_rejects_unknown_fields() {
        let c = PiperConfig::default();
        let s = toml::to_string(&c).unwrap();
        let back: PiperConfig = toml::from_str(&s).unwrap();
        assert_eq!(back, c);
        let partial: PiperConfig = toml::from_str("threads = 2").unwrap();
        assert_eq!(partial.threads, 2);
        assert_eq!(partial.voice, "en_US-joe-medium");
        assert!(toml::from_str::<PiperConfig>("thread = 2").is_err());
    }

    #[test]
    fn out_of_range_settings_are_refused_before_loading() {
        let bad = [
            PiperConfig {
                length_scale: 0.0,
                ..Default::default()
            },
            PiperConfig {
                chunk_ms: 5,
                ..Default::default()
            },
            PiperConfig {
                max_concurrent: 0,
                ..Default::default()
            },
            PiperConfig {
                threads: 0,
                ..Default::default()
            },
            PiperConfig {
                max_piece_chars: 3,
                ..Default::default()
            },
        ];
        for c in bad {
            assert!(
                matches!(PiperTts::new(&c), Err(PiperError::Config(_))),
                "{c:?}"
            );
        }
    }

    /// Every phoneme espeak-ng writes for English text must be one the
    /// voice was trained on; anything else would be dropped silently.
    #[tokio::test]
    async fn espeak_phonemes_map_onto_the_voice_tokens() {
        let dir = std::env::var_os("HOTLINE_MODELS_DIR")
            .map(PathBuf::from)
            .unwrap_or_else(|| PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/data/models")));
        let tokens = dir.join("piper/en_US-joe-medium/tokens.txt");
        assert!(
            tokens.is_file(),
            "{} is missing: run scripts/models",
            tokens.display()
        );
        let known = voice::read_tokens(&tokens).unwrap();
        let text = "Hello there, how are you? I'm fine; thanks! The café's naïve résumé \
                    costs 1,234.56 euros on 3/4/2025 at 10:30 am: Zürich, São Paulo, \
                    Kraków and Reykjavík. Why? Because (mostly) it's thorough, rhythmic \
                    and measured... Queue, quay, key; judge, church, sing, vision, \
                    yes, whether, loch, bottle, button, hour, lure, air, ire, oil.";
        let mut seen = std::collections::BTreeSet::new();
        for unit in split::units(text, 60, 160) {
            let p = phonemize::phonemize(Path::new("espeak-ng"), "en-us", &unit)
                .await
                .unwrap();
            seen.extend(p.chars());
        }
        let unknown: Vec<char> = seen
            .iter()
            .copied()
            .filter(|c| !known.contains(c))
            .collect();
        assert!(unknown.is_empty(), "phonemes without a token: {unknown:?}");
        // Stress, length and the clause terminators all reach the model.
        for c in ['ˈ', 'ˌ', 'ː', ',', '.', '?', '!', ';', ':', ' '] {
            assert!(seen.contains(&c), "{c:?} never produced");
        }
    }

    #[test]
    fn a_missing_model_names_scripts_models() {
        let dir = tempfile::tempdir().unwrap();
        let c = PiperConfig {
            models_dir: dir.path().to_path_buf(),
            ..Default::default()
        };
        let err = PiperTts::new(&c).unwrap_err();
        assert!(matches!(err, PiperError::Missing(_)), "{err}");
        assert!(err.to_string().contains("scripts/models"), "{err}");
    }
}
