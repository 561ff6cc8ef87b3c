//! Voice activity detection for phone audio, with start/stop hysteresis.
//!
//! [`Vad`] takes 8 or 16 kHz mono PCM in chunks of any length, decides every
//! 10 or 20 ms frame ([`VadFrame`]: probability, decision, features) and
//! turns the decisions into utterances ([`VadEvent::SpeechStart`] /
//! [`VadEvent::SpeechEnd`]), each placed where speech really began or ended
//! and carrying how long after that point it was confirmed. Positions are
//! sample counts since the stream start turned into [`Duration`]s; nothing
//! reads a clock. After construction nothing allocates.
//!
//! # What a frame is judged on
//!
//! Phone lines carry more than voices: hiss whose level jumps when a trunk
//! is switched, comfort noise from DTX, mains hum, DTMF, test tones and
//! ringback. Energy alone cannot tell any of these from a talker, so the
//! detector asks what a voice is *like* relative to the line's own noise:
//!
//! 1. **Analysis.** 16 kHz input is halved by a half-band FIR (everything
//!    that matters is in 80–4000 Hz, and one calibrated pipeline is better
//!    than two). Each frame takes a 256-point FFT of the last 32 ms at
//!    8 kHz (periodic Hann; 31.25 Hz bins resolve harmonics of voices down
//!    to ~70 Hz), and the power spectrum in dBm0.
//! 2. **Noise floor per bin, by minimum statistics** (see `noise.rs`): the
//!    minimum of the smoothed spectrum over a 1.6 s window, bias-corrected.
//!    It follows stationary noise down at once and up within 1.6 s, with no
//!    feedback from the speech decision (a floor that only adapts "in
//!    silence" locks up the first time it mistakes noise for speech). Until
//!    the window has filled, the running mean stands in; a bin may not sit
//!    below half its neighbours' floor, so one unlucky periodogram value
//!    cannot punch a hole that reads as structure.
//! 3. **Whitening.** Every feature works on the a-posteriori SNR per bin,
//!    power over floor. Stationary noise of *any* colour or level then looks
//!    alike — independent exponential bins around 1 — so brown noise, hum
//!    (its lines are in the floor) and comfort noise stop looking special.
//! 4. **Features** (the [`Features`] of each frame):
//!    - *SNR* of the two best of six WebRTC-like sub-bands (80–250, 250–500,
//!      500–1k, 1–2k, 2–3k, 3–3.8 kHz): speech concentrates in a few bands,
//!      coloured noise buries the rest.
//!    - *Flatness* of the whitened spectrum: noise, however loud and even
//!      right after a level step, whitens to e^−γ ≈ 0.56 (measured ≥ 0.44 on
//!      white, pink, brown and comfort noise once settled); harmonics and
//!      formants over noise-level valleys score 0.0–0.3.
//!    - *Periodicity*: the autocorrelation of the above-noise spectrum at
//!      pitch lags 70–400 Hz, corrected for the window's own autocorrelation
//!      and normalised by the whole power so that residual noise dilutes it.
//!      Noise stays ≤ 0.37; voiced speech is 0.5–1.
//!    - *Tonality*: share of the above-noise power in the two strongest
//!      peaks (±2 bins). DTMF, a 1 kHz test tone or ringback leave < 1 %
//!      outside (−20 dB and below, −30 dB typical); voices leave > 3 % even
//!      when a high voice puts most of its power in two harmonics.
//!    - *Stationarity*: similarity of the above-noise spectrum with the one
//!      120 ms earlier. Running speech keeps moving (≤ 0.91 for 99 % of loud
//!      frames over six voices); hum, tones and machinery sit at 1.0 — and
//!      are caught by this long before the floor has absorbed them.
//! 5. **Probability** = loudness gate (two best bands 6 dB over the floor
//!    give ½) × voice evidence (a logistic of periodicity and flatness
//!    traded against each other, centred just beyond everything measured on
//!    noise, so either can carry a frame at low SNR) × (1 − tone) ×
//!    (1 − steady). Frames below `min_level_dbm0` (default −55 dBm0) are
//!    never speech. A frame is speech when the probability reaches
//!    `threshold` (default 0.5; see [`Aggressiveness`]). Tones also erase the
//!    speech flag of the frames that led into them (their window straddled
//!    the tone's edge and was smeared) and claim the frames of their fade-out
//!    whose peaks sit where the tone was.
//!
//! A frame that stands out of the noise with spectral shape but without
//! voicing (a fricative, a plosive burst) is *energetic*: it never counts as
//! speech on its own, but it fills the start window, and the start and end
//! of an utterance are extended over adjacent energetic frames.
//!
//! # Hysteresis
//!
//! - **Start**: the last `start_ms` (default 200 ms) of frames must begin
//!   with a speech frame, be at least half speech, and contain no more than
//!   `start_tolerance_ms` (default 60 ms) of frames that are neither speech
//!   nor energetic. The event is then back-dated to the first frame of the
//!   run (and further, up to `max_backdate_ms`, over energetic frames just
//!   before it), so `at` is the onset and `latency` is the confirmation
//!   delay (≈ `start_ms`).
//! - **End**: `stop_ms` (default 600 ms, 500–800 typical) of consecutive
//!   non-speech frames end the utterance; `at` is the end of its last speech
//!   frame, extended over trailing energetic frames. A pause shorter than
//!   `stop_ms` never ends an utterance.
//! - **Minimum length**: with `min_speech_ms`, an utterance is announced only
//!   once it has lasted that long and is dropped silently if it ends sooner.
//!
//! Presets follow OpenAI's `server_vad` ([`VadConfig::openai_server_vad`])
//! and Pipecat's `VADParams` ([`VadConfig::pipecat`]).
//!
//! # Limits
//!
//! The floor needs up to 1.6 s to climb after the line noise steps up; in
//! that time only the whitened-flatness and periodicity tests keep noise out
//! (they do for the 10–15 dB steps tested). A sound that is structured but
//! neither voiced, tonal nor steady (music, babble, a TV) is speech to this
//! detector. At 5 dB SNR a short first word may be lost and the start come
//! one word late. The 16 kHz path's decimator delays everything by ~1.4 ms,
//! which is not compensated.

mod analysis;
mod decimate;
mod hysteresis;
mod noise;

use std::time::Duration;

use analysis::Analyzer;
pub use analysis::Features;
use decimate::HalfBand;
use hysteresis::{Frames, Hysteresis, Transition};

/// Why a [`VadConfig`] was refused.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum VadError {
    /// Only 8 000 and 16 000 Hz are supported.
    #[error("unsupported sample rate {0} Hz (use 8000 or 16000)")]
    UnsupportedRate(u32),
    /// Only 10 and 20 ms frames are supported.
    #[error("unsupported frame length {0} ms (use 10 or 20)")]
    UnsupportedFrame(u32),
    /// A setting is out of its range; the text names it.
    #[error("invalid VAD setting: {0}")]
    Invalid(&'static str),
}

/// Preset thresholds, named after WebRTC's VAD modes: the higher, the more
/// evidence a frame needs before it counts as speech.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Aggressiveness {
    /// Misses the least speech; lets through the most noise.
    Quality,
    /// Default balance.
    Normal,
    /// For noisy lines.
    Aggressive,
    /// Only clear, voiced speech counts.
    VeryAggressive,
}

impl Aggressiveness {
    /// The speech-probability threshold this mode stands for.
    pub fn threshold(self) -> f32 {
        match self {
            Aggressiveness::Quality => 0.3,
            Aggressiveness::Normal => 0.5,
            Aggressiveness::Aggressive => 0.7,
            Aggressiveness::VeryAggressive => 0.85,
        }
    }
}

/// Settings of a [`Vad`]. Build with [`VadConfig::new`] or a preset and
/// adjust fields; [`Vad::new`] checks them.
#[derive(Debug, Clone, PartialEq)]
pub struct VadConfig {
    /// Input rate: 8000 or 16000 Hz.
    pub sample_rate: u32,
    /// Decision granularity: 10 or 20 ms.
    pub frame_ms: u32,
    /// A frame is speech when its probability is at least this (0–1).
    pub threshold: f32,
    /// Speech must fill (most of) this long a window to start an
    /// utterance: it opens with a speech frame and is at least half speech,
    /// the rest unvoiced-but-energetic or within the tolerance below.
    /// Default 200 ms.
    pub start_ms: u32,
    /// Non-speech allowed inside the start window (short dips between
    /// syllables). Default 60 ms.
    pub start_tolerance_ms: u32,
    /// This much continuous non-speech ends an utterance. Default 600 ms.
    pub stop_ms: u32,
    /// An utterance is announced only once it has lasted this long (pauses
    /// shorter than `stop_ms` included); shorter ones are dropped silently.
    /// Default 0: the start window alone decides.
    pub min_speech_ms: u32,
    /// How far before the start window the start may be back-dated over
    /// frames that stood out of the noise without being voiced (a weak
    /// onset, an initial "s" or "f"). Default 300 ms.
    pub max_backdate_ms: u32,
    /// Frames quieter than this (dBm0, 94–3800 Hz) are never speech.
    /// Default −55 dBm0: below comfort-noise levels people talk at, well
    /// above idle-channel noise.
    pub min_level_dbm0: f32,
}

impl VadConfig {
    /// Defaults for `sample_rate` and `frame_ms`: threshold 0.5, start after
    /// 200 ms, stop after 600 ms.
    pub fn new(sample_rate: u32, frame_ms: u32) -> Self {
        VadConfig {
            sample_rate,
            frame_ms,
            threshold: Aggressiveness::Normal.threshold(),
            start_ms: 200,
            start_tolerance_ms: 60,
            stop_ms: 600,
            min_speech_ms: 0,
            max_backdate_ms: 300,
            min_level_dbm0: -55.0,
        }
    }

    /// OpenAI Realtime `server_vad` defaults: threshold 0.5, 500 ms of
    /// silence ends a turn (its 300 ms `prefix_padding_ms` is audio the
    /// caller keeps before the start, not a detector setting).
    pub fn openai_server_vad(sample_rate: u32) -> Self {
        VadConfig {
            stop_ms: 500,
            ..VadConfig::new(sample_rate, 20)
        }
    }

    /// Pipecat `VADParams` defaults: confidence 0.7, start after 0.2 s,
    /// stop after 0.8 s.
    pub fn pipecat(sample_rate: u32) -> Self {
        VadConfig {
            threshold: 0.7,
            stop_ms: 800,
            ..VadConfig::new(sample_rate, 20)
        }
    }

    /// Sets the threshold from a preset mode.
    pub fn with_aggressiveness(mut self, mode: Aggressiveness) -> Self {
        self.threshold = mode.threshold();
        self
    }

    fn validate(&self) -> Result<(), VadError> {
        if self.sample_rate != 8000 && self.sample_rate != 16000 {
            return Err(VadError::UnsupportedRate(self.sample_rate));
        }
        if self.frame_ms != 10 && self.frame_ms != 20 {
            return Err(VadError::UnsupportedFrame(self.frame_ms));
        }
        if !(0.0..=1.0).contains(&self.threshold) {
            return Err(VadError::Invalid("threshold must be within 0..=1"));
        }
        if self.start_ms < self.frame_ms || self.start_ms > 5000 {
            return Err(VadError::Invalid("start_ms must be one frame to 5000 ms"));
        }
        if self.start_tolerance_ms >= self.start_ms {
            return Err(VadError::Invalid(
                "start_tolerance_ms must be below start_ms",
            ));
        }
        if self.stop_ms < self.frame_ms || self.stop_ms > 10_000 {
            return Err(VadError::Invalid("stop_ms must be one frame to 10 000 ms"));
        }
        if self.min_speech_ms > 60_000 || self.max_backdate_ms > 5000 {
            return Err(VadError::Invalid(
                "min_speech_ms or max_backdate_ms too large",
            ));
        }
        if !self.min_level_dbm0.is_finite() {
            return Err(VadError::Invalid("min_level_dbm0 must be finite"));
        }
        Ok(())
    }
}

/// An utterance boundary. Positions are measured from the start of the
/// stream (the first sample given after [`Vad::new`] or [`Vad::reset`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VadEvent {
    /// Speech started at `at` (the first frame of the run, not the moment it
    /// was confirmed); it was confirmed `latency` later.
    SpeechStart {
        /// Where speech began.
        at: Duration,
        /// How long after `at` the start was confirmed.
        latency: Duration,
    },
    /// Speech ended at `at` (the end of its last speech frame); it was
    /// confirmed `latency` later, after `stop_ms` of silence.
    SpeechEnd {
        /// Where speech ended.
        at: Duration,
        /// How long after `at` the end was confirmed.
        latency: Duration,
    },
}

impl VadEvent {
    /// Where the boundary lies in the stream.
    pub fn at(&self) -> Duration {
        match *self {
            VadEvent::SpeechStart { at, .. } | VadEvent::SpeechEnd { at, .. } => at,
        }
    }

    /// How long after [`VadEvent::at`] the boundary was confirmed.
    pub fn latency(&self) -> Duration {
        match *self {
            VadEvent::SpeechStart { latency, .. } | VadEvent::SpeechEnd { latency, .. } => latency,
        }
    }

    /// The stream position at which the event was emitted.
    pub fn confirmed_at(&self) -> Duration {
        self.at() + self.latency()
    }

    /// True for [`VadEvent::SpeechStart`].
    pub fn is_start(&self) -> bool {
        matches!(self, VadEvent::SpeechStart { .. })
    }
}

/// The verdict on one frame.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct VadFrame {
    /// Where the frame starts in the stream.
    pub start: Duration,
    /// Speech probability, 0–1.
    pub probability: f32,
    /// `probability >= threshold`.
    pub speech: bool,
    /// Inside an announced utterance after this frame (between a
    /// `SpeechStart` and its `SpeechEnd`).
    pub speaking: bool,
    /// The measurements the probability was made from.
    pub features: Features,
}

fn sigmoid(x: f32) -> f32 {
    1.0 / (1.0 + (-x).exp())
}

/// Largest frame at the 8 kHz analysis rate (20 ms).
const MAX_HOP: usize = 160;

/// A streaming voice activity detector. See the module documentation.
pub struct Vad {
    cfg: VadConfig,
    /// Frame length at the 8 kHz analysis rate.
    hop: usize,
    decimator: Option<HalfBand>,
    pending: [f32; MAX_HOP],
    fill: usize,
    analyzer: Analyzer,
    hysteresis: Hysteresis,
    frames: u64,
    /// Frames left during which a frame whose peaks match `tone_peaks`
    /// still counts as the tail of a tone.
    tone_hold: u32,
    tone_peaks: [u16; 2],
    /// Previous frame was (or continued) a tone.
    prev_tonal: bool,
    /// Previous frame was a steady (unchanging) sound.
    prev_steady: bool,
}

impl Vad {
    /// A detector for a new stream.
    pub fn new(cfg: VadConfig) -> Result<Self, VadError> {
        cfg.validate()?;
        let frame = |ms: u32| ms.div_ceil(cfg.frame_ms) as usize;
        let start = frame(cfg.start_ms);
        let frames = Frames {
            start,
            min_voiced: start.div_ceil(2),
            tolerance: (cfg.start_tolerance_ms / cfg.frame_ms) as usize,
            stop: frame(cfg.stop_ms),
            min_speech: frame(cfg.min_speech_ms),
            backdate: (cfg.max_backdate_ms / cfg.frame_ms) as usize,
        };
        Ok(Vad {
            hop: (8 * cfg.frame_ms) as usize,
            decimator: (cfg.sample_rate == 16000).then(HalfBand::new),
            pending: [0.0; MAX_HOP],
            fill: 0,
            analyzer: Analyzer::new(cfg.frame_ms),
            hysteresis: Hysteresis::new(frames),
            frames: 0,
            tone_hold: 0,
            tone_peaks: [0; 2],
            prev_tonal: false,
            prev_steady: false,
            cfg,
        })
    }

    /// The settings in use.
    pub fn config(&self) -> &VadConfig {
        &self.cfg
    }

    /// Forgets everything about the stream (noise floor, partial frame,
    /// utterance state); positions count from zero again.
    pub fn reset(&mut self) {
        if let Some(d) = &mut self.decimator {
            d.reset();
        }
        self.fill = 0;
        self.analyzer.reset();
        self.hysteresis.reset();
        self.frames = 0;
        self.tone_hold = 0;
        self.prev_tonal = false;
        self.prev_steady = false;
    }

    /// True while inside an announced utterance.
    pub fn is_speaking(&self) -> bool {
        self.hysteresis.speaking()
    }

    /// Stream position up to which frames have been decided.
    pub fn position(&self) -> Duration {
        self.frame_start(self.frames)
    }

    fn frame_start(&self, frame: u64) -> Duration {
        let samples = frame * (self.cfg.sample_rate / 1000 * self.cfg.frame_ms) as u64;
        let rate = self.cfg.sample_rate as u64;
        Duration::from_secs(samples / rate)
            + Duration::from_nanos((samples % rate) * 1_000_000_000 / rate)
    }

    /// Feeds samples of any length. Every completed frame appends a
    /// [`VadFrame`] to `frames` and possibly a [`VadEvent`] to `events`;
    /// neither is cleared first. A partial frame is kept for the next call.
    /// Does not allocate unless the output vectors must grow.
    pub fn process(
        &mut self,
        samples: &[i16],
        frames: &mut Vec<VadFrame>,
        events: &mut Vec<VadEvent>,
    ) {
        for &s in samples {
            let x = s as f32;
            let y = match &mut self.decimator {
                Some(d) => match d.push(x) {
                    Some(y) => y,
                    None => continue,
                },
                None => x,
            };
            self.pending[self.fill] = y;
            self.fill += 1;
            if self.fill == self.hop {
                self.fill = 0;
                let (frame, event) = self.decide_frame();
                frames.push(frame);
                if let Some(e) = event {
                    events.push(e);
                }
            }
        }
    }

    /// Ends the stream: if an utterance is open, returns its `SpeechEnd` at
    /// the end of its last speech frame. The detector is then reset.
    pub fn finish(&mut self) -> Option<VadEvent> {
        let end = self.hysteresis.close().map(|last| {
            let at = self.frame_start(last + 1);
            VadEvent::SpeechEnd {
                at,
                latency: self.position().saturating_sub(at),
            }
        });
        self.reset();
        end
    }

    fn decide_frame(&mut self) -> (VadFrame, Option<VadEvent>) {
        let hop = self.hop;
        let features = self.analyzer.analyze(&self.pending[..hop]);
        let (probability, energetic, retract) = self.score(&features);
        let speech = probability >= self.cfg.threshold;
        let start = self.frame_start(self.frames);
        self.frames += 1;
        if retract > 0 {
            // The frames that led into a tone or a steady sound saw only its
            // onset and could pass for a voice; now that it has shown what
            // it is, they are taken back.
            self.hysteresis.retract(retract);
        }
        let event = self.hysteresis.push(speech, energetic).map(|t| match t {
            Transition::Start { first, confirmed } => {
                let at = self.frame_start(first);
                VadEvent::SpeechStart {
                    at,
                    latency: self.frame_start(confirmed + 1) - at,
                }
            }
            Transition::End { last, confirmed } => {
                let at = self.frame_start(last + 1);
                VadEvent::SpeechEnd {
                    at,
                    latency: self.frame_start(confirmed + 1) - at,
                }
            }
        });
        let frame = VadFrame {
            start,
            probability,
            speech,
            speaking: self.hysteresis.speaking(),
            features,
        };
        (frame, event)
    }

    /// Frames whose 32 ms window straddles a tone edge.
    fn tone_edge_frames(&self) -> usize {
        (40 / self.cfg.frame_ms) as usize
    }

    /// Speech probability of a frame; whether it stands out of the noise
    /// with some spectral structure (voiced or not: used to fill the start
    /// window, back-date starts and extend ends); and how many earlier
    /// frames to take back because a tone or steady sound began.
    fn score(&mut self, f: &Features) -> (f32, bool, usize) {
        let audible = f.level_db >= self.cfg.min_level_dbm0 && f.top_snr_db > 6.0;
        // A pure or dual tone leaves < 1 % of its above-noise power outside
        // its two main lobes (residual ≤ −20 dB, −30 dB typical for DTMF);
        // voices leave more than 3 % (≥ −15 dB even for high-pitched voices
        // whose power sits in two harmonics).
        let resid_db = 10.0 * (1.0 - f.tonality).max(1e-6).log10();
        let mut tone = if audible {
            ((-14.0 - resid_db) / 6.0).clamp(0.0, 1.0)
        } else {
            0.0
        };
        let matches =
            |a: [u16; 2], b: [u16; 2]| a.iter().any(|&x| b.iter().any(|&y| x.abs_diff(y) <= 1));
        if tone >= 1.0 {
            self.tone_hold = self.tone_edge_frames() as u32;
            self.tone_peaks = f.peaks;
        } else if self.tone_hold > 0 {
            // The fade-out of a tone: its window still holds the tone's end,
            // smeared; it is recognised by peaks where the tone was.
            self.tone_hold -= 1;
            if audible && matches(self.tone_peaks, f.peaks) {
                tone = 1.0;
            }
        }
        let tonal = tone >= 1.0;
        // Running speech never holds one spectrum for 120 ms (measured
        // stationarity ≤ 0.91 for 99 % of loud speech frames, all voices);
        // hum, tones and machinery sit at 1.0.
        let steady = if audible {
            ((f.stationarity - 0.88) / 0.06).clamp(0.0, 1.0)
        } else {
            0.0
        };
        let mut retract = 0;
        if tonal && !self.prev_tonal {
            retract = self.tone_edge_frames();
        }
        if steady >= 1.0 && !self.prev_steady {
            retract = retract.max((analysis::STATIONARY_MS / self.cfg.frame_ms) as usize + 1);
        }
        self.prev_tonal = tonal;
        self.prev_steady = steady >= 1.0;
        if f.level_db < self.cfg.min_level_dbm0 {
            return (0.0, false, retract);
        }
        // Unvoiced speech (fricatives) is not flat once whitened: its power
        // sits in a few bands, so the best bands stand well above the
        // broadband SNR. A noise that merely got louder rises everywhere
        // alike (best-two-band SNR exceeds the broadband one by only the
        // ~1.5 dB of picking the maximum).
        let shaped = f.flatness < 0.4 || f.top_snr_db - f.snr_db > 3.5;
        let energetic = f.top_snr_db > 6.5 && shaped && !tonal && steady < 0.5;
        // The voice evidence: periodicity (voicing) and a peaky whitened
        // spectrum (harmonics, formants), traded against each other so that
        // either can carry a frame at low SNR. Centres sit above everything
        // measured on settled noise (periodicity ≤ 0.37, flatness ≥ 0.44).
        let shape = 10.0 * (f.periodicity - 0.36) + 12.0 * (0.48 - f.flatness);
        // And it must stand out of the noise: the two best bands 6 dB over
        // the floor give one half.
        let loud = sigmoid(0.6 * (f.top_snr_db - 6.0));
        let p = loud * sigmoid(shape) * (1.0 - tone) * (1.0 - steady);
        (p, energetic, retract)
    }
}
