//! Answering-machine detection: did a person or a machine answer an
//! outbound call, and when did the machine's beep sound?
//!
//! Sans-IO: [`Amd`] takes the callee's audio (8 or 16 kHz mono PCM, any
//! chunk length) from the moment of the answer, and its clock is the
//! number of samples seen; nothing reads a clock or a socket.
//!
//! # How it decides
//!
//! People answer with a short word or two ("Hello?", "Smith speaking")
//! and then wait for the caller; a greeting recording talks on. So, on
//! the [`Vad`]'s per-frame speech decisions, the callee's *greeting* runs
//! from their first word to their last, pauses shorter than
//! `after_greeting_silence` included:
//!
//! - **Human** when the line then stays quiet for `after_greeting_silence`
//!   (the callee is waiting) and the greeting was shorter than
//!   `max_greeting` (and at least `min_word`, so a click is nobody).
//! - **Machine** when the greeting runs past `max_greeting`, or when a beep
//!   (below) sounds first.
//! - **Unknown** when nobody speaks within `initial_silence`, or nothing
//!   was decided by `total_analysis`.
//!
//! While a tone is sounding nothing is decided: a short greeting ("Hi,
//! it's Mike, leave a message") followed by its beep would otherwise look
//! like a person who said a few words and waited.
//!
//! Twilio's defaults are a 2.4 s speech threshold, 1.2 s of end silence
//! and a 5 s silence timeout; the defaults here are tighter (a 2 s
//! greeting, 0.8 s of silence) so that both verdicts come within about
//! 2.5 s of the first word. `benches/amd.rs` measures the accuracy and the
//! decision time on the labelled set in `fixtures/amd/`.
//!
//! # The beep
//!
//! After a machine verdict the caller waits for the beep to leave a
//! message. A beep is a steady tone: frames whose above-noise power sits
//! almost all in one or two spectral peaks ([`Features::tonality`]),
//! loud over the floor, whose strongest peak stays within one bin for
//! `beep_min` and lies in 300–3000 Hz. It is reported once
//! ([`AmdEvent::Beep`]) with where it ended, which is when to start
//! talking. A greeting that ends with no beep is reported too
//! ([`AmdEvent::GreetingEnded`], after `after_greeting_silence` of quiet
//! following a machine verdict), so the caller can speak anyway.

use std::time::Duration;

use crate::vad::{Vad, VadConfig, VadError, VadFrame};

/// Analysis frames, ms.
const FRAME_MS: u32 = 20;
/// Lowest and highest beep frequency, Hz.
const BEEP_HZ: (f32, f32) = (300.0, 3000.0);
/// Width of one spectral bin of the VAD's analysis, Hz.
const BIN_HZ: f32 = 31.25;
/// A frame is tone-like above this share of power in its two peaks.
const TONALITY: f32 = 0.85;
/// ...and this far over the noise floor, dB.
const TONE_SNR_DB: f32 = 6.0;

/// What answered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// A person.
    Human,
    /// An answering machine or voicemail greeting.
    Machine,
    /// Could not tell (silence, or no decision in time).
    Unknown,
}

impl Verdict {
    /// `human`, `machine` or `unknown`.
    pub fn as_str(self) -> &'static str {
        match self {
            Verdict::Human => "human",
            Verdict::Machine => "machine",
            Verdict::Unknown => "unknown",
        }
    }
}

/// A verdict, when it was reached and why.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Decision {
    /// What answered.
    pub verdict: Verdict,
    /// Audio time from the answer to the decision.
    pub at: Duration,
    /// Which rule decided: `silence_after_greeting`, `long_greeting`,
    /// `beep`, `no_speech` or `timeout`.
    pub reason: &'static str,
}

/// What the detector found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AmdEvent {
    /// The verdict (once).
    Decided(Decision),
    /// A machine's beep ended at this audio time (once).
    Beep {
        /// Where the beep started.
        start: Duration,
        /// Where it ended: the moment to start a message.
        end: Duration,
        /// Its frequency, Hz (to the VAD's 31.25 Hz bins).
        hz: u32,
    },
    /// After a machine verdict, the greeting went quiet for
    /// `after_greeting_silence` without a beep (once).
    GreetingEnded {
        /// Where the quiet began.
        at: Duration,
    },
}

/// The detector's thresholds.
#[derive(Debug, Clone, PartialEq)]
pub struct AmdConfig {
    /// Input rate: 8000 or 16000 Hz.
    pub sample_rate: u32,
    /// No speech for this long after the answer: `unknown`.
    pub initial_silence: Duration,
    /// A greeting this long, without a pause for the caller: machine.
    pub max_greeting: Duration,
    /// Quiet this long after the callee spoke: they are waiting, human.
    pub after_greeting_silence: Duration,
    /// A greeting shorter than this is not one (a click, a breath).
    pub min_word: Duration,
    /// No verdict by then: `unknown`.
    pub total_analysis: Duration,
    /// A tone this long is a beep.
    pub beep_min: Duration,
    /// Listen for the beep this long after the verdict.
    pub beep_window: Duration,
}

impl AmdConfig {
    /// The defaults for input at `sample_rate`.
    pub fn new(sample_rate: u32) -> Self {
        AmdConfig {
            sample_rate,
            initial_silence: Duration::from_millis(3500),
            max_greeting: Duration::from_millis(2000),
            after_greeting_silence: Duration::from_millis(800),
            min_word: Duration::from_millis(100),
            total_analysis: Duration::from_millis(5000),
            beep_min: Duration::from_millis(120),
            beep_window: Duration::from_secs(30),
        }
    }
}

/// Where the analysis stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    /// Listening for the verdict.
    Deciding,
    /// A machine: listening for the beep.
    AwaitingBeep,
    /// Nothing more to report.
    Done,
}

/// See the module documentation.
pub struct Amd {
    config: AmdConfig,
    vad: Vad,
    frames: Vec<VadFrame>,
    events: Vec<crate::vad::VadEvent>,
    phase: Phase,
    machine_at: Duration,
    /// Where the greeting's first speech frame started.
    first_speech: Option<Duration>,
    /// Where the last speech frame ended.
    last_speech: Option<Duration>,
    /// A tone in progress: (start, bin, frames).
    tone: Option<(Duration, u16, u32)>,
    greeting_end_reported: bool,
}

impl std::fmt::Debug for Amd {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Amd")
            .field("phase", &self.phase)
            .finish_non_exhaustive()
    }
}

impl Amd {
    /// A detector for a call answered at audio time zero.
    pub fn new(config: AmdConfig) -> Result<Self, VadError> {
        let vad = Vad::new(VadConfig::new(config.sample_rate, FRAME_MS))?;
        Ok(Amd {
            config,
            vad,
            frames: Vec::with_capacity(16),
            events: Vec::with_capacity(4),
            phase: Phase::Deciding,
            machine_at: Duration::ZERO,
            first_speech: None,
            last_speech: None,
            tone: None,
            greeting_end_reported: false,
        })
    }

    /// Whether nothing more will be reported.
    pub fn done(&self) -> bool {
        self.phase == Phase::Done
    }

    /// Feeds the callee's audio; what it concluded goes to `out`.
    pub fn push(&mut self, samples: &[i16], out: &mut Vec<AmdEvent>) {
        if self.phase == Phase::Done {
            return;
        }
        self.frames.clear();
        self.events.clear();
        self.vad
            .process(samples, &mut self.frames, &mut self.events);
        let frames = std::mem::take(&mut self.frames);
        for f in &frames {
            self.frame(f, out);
            if self.phase == Phase::Done {
                break;
            }
        }
        self.frames = frames;
    }

    fn frame(&mut self, f: &VadFrame, out: &mut Vec<AmdEvent>) {
        let frame = Duration::from_millis(u64::from(FRAME_MS));
        let end = f.start + frame;
        let beep = self.tone(f, end);
        match self.phase {
            Phase::Deciding => {
                if let Some((start, end, hz)) = beep {
                    // A beep before any greeting: a machine that is
                    // already recording.
                    self.decide(Verdict::Machine, end, "beep", out);
                    out.push(AmdEvent::Beep { start, end, hz });
                    self.phase = Phase::Done;
                    return;
                }
                self.speech(f.speech && !self.in_tone(), f.start, end);
                self.judge(end, out);
            }
            Phase::AwaitingBeep => {
                if let Some((start, end, hz)) = beep {
                    out.push(AmdEvent::Beep { start, end, hz });
                    self.phase = Phase::Done;
                    return;
                }
                self.speech(f.speech && !self.in_tone(), f.start, end);
                let quiet_since = self.last_speech.unwrap_or(self.machine_at);
                if !self.greeting_end_reported
                    && self.tone.is_none()
                    && end.saturating_sub(quiet_since) >= self.config.after_greeting_silence
                {
                    self.greeting_end_reported = true;
                    out.push(AmdEvent::GreetingEnded { at: quiet_since });
                }
                if self.greeting_end_reported && self.tone.is_none() {
                    // Voicemail systems beep right after the greeting; a
                    // long quiet means there is none coming.
                    if end.saturating_sub(quiet_since) >= self.config.after_greeting_silence * 4 {
                        self.phase = Phase::Done;
                    }
                }
                if end.saturating_sub(self.machine_at) >= self.config.beep_window {
                    self.phase = Phase::Done;
                }
            }
            Phase::Done => {}
        }
    }

    fn in_tone(&self) -> bool {
        self.tone.is_some()
    }

    /// Follows tones; returns a beep (start, end, Hz) when one ends.
    fn tone(&mut self, f: &VadFrame, end: Duration) -> Option<(Duration, Duration, u32)> {
        let ft = &f.features;
        let bin = ft.peaks[0];
        let hz = f32::from(bin) * BIN_HZ;
        let tonal = ft.tonality >= TONALITY
            && ft.top_snr_db >= TONE_SNR_DB
            && (BEEP_HZ.0..=BEEP_HZ.1).contains(&hz);
        let min_frames = (self.config.beep_min.as_millis() as u32).div_ceil(FRAME_MS);
        match self.tone {
            Some((start, b, n)) if tonal && bin.abs_diff(b) <= 1 => {
                self.tone = Some((start, b, n + 1));
                None
            }
            Some((start, b, n)) => {
                self.tone = tonal.then_some((f.start, bin, 1));
                (n >= min_frames).then(|| {
                    (
                        start,
                        end - Duration::from_millis(u64::from(FRAME_MS)),
                        (f32::from(b) * BIN_HZ) as u32,
                    )
                })
            }
            None => {
                self.tone = tonal.then_some((f.start, bin, 1));
                None
            }
        }
    }

    /// Follows the greeting from one frame's speech decision.
    fn speech(&mut self, speech: bool, start: Duration, end: Duration) {
        if !speech {
            return;
        }
        match self.last_speech {
            // A click and then quiet is nobody: the greeting starts again.
            Some(last)
                if start.saturating_sub(last) >= self.config.after_greeting_silence
                    && self
                        .first_speech
                        .is_some_and(|f| last.saturating_sub(f) < self.config.min_word) =>
            {
                self.first_speech = Some(start);
            }
            _ => {
                self.first_speech.get_or_insert(start);
            }
        }
        self.last_speech = Some(end);
    }

    fn judge(&mut self, now: Duration, out: &mut Vec<AmdEvent>) {
        let c = &self.config;
        let greeting = self
            .first_speech
            .zip(self.last_speech)
            .map(|(f, l)| l.saturating_sub(f));
        if self.tone.is_some() && now < c.total_analysis {
            // A beep may be sounding: wait for it to end.
        } else if greeting.is_some_and(|g| g >= c.max_greeting) {
            self.decide(Verdict::Machine, now, "long_greeting", out);
        } else if let (Some(g), Some(last)) = (greeting, self.last_speech)
            && g >= c.min_word
            && now.saturating_sub(last) >= c.after_greeting_silence
        {
            self.decide(Verdict::Human, now, "silence_after_greeting", out);
        } else if greeting.is_none_or(|g| g < c.min_word) && now >= c.initial_silence {
            self.decide(Verdict::Unknown, now, "no_speech", out);
        } else if now >= c.total_analysis {
            self.decide(Verdict::Unknown, now, "timeout", out);
        }
    }

    fn decide(
        &mut self,
        verdict: Verdict,
        at: Duration,
        reason: &'static str,
        out: &mut Vec<AmdEvent>,
    ) {
        out.push(AmdEvent::Decided(Decision {
            verdict,
            at,
            reason,
        }));
        self.phase = if verdict == Verdict::Machine {
            self.machine_at = at;
            Phase::AwaitingBeep
        } else {
            Phase::Done
        };
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `ms` of quiet line noise at 8 kHz.
    fn hiss(ms: u64, seed: &mut u64) -> Vec<i16> {
        (0..ms * 8)
            .map(|_| {
                *seed = seed
                    .wrapping_mul(6364136223846793005)
                    .wrapping_add(1442695040888963407);
                ((*seed >> 33) % 21) as i16 - 10
            })
            .collect()
    }

    fn tone(hz: f64, ms: u64) -> Vec<i16> {
        (0..ms * 8)
            .map(|i| (6000.0 * (2.0 * std::f64::consts::PI * hz * i as f64 / 8000.0).sin()) as i16)
            .collect()
    }

    fn run(pcm: &[i16]) -> Vec<AmdEvent> {
        let mut amd = Amd::new(AmdConfig::new(8000)).unwrap();
        let mut out = Vec::new();
        for chunk in pcm.chunks(137) {
            amd.push(chunk, &mut out);
        }
        out
    }

    #[test]
    fn nobody_speaking_is_unknown_at_the_initial_silence() {
        let mut seed = 1;
        let events = run(&hiss(6000, &mut seed));
        let [AmdEvent::Decided(d)] = events.as_slice() else {
            panic!("{events:?}")
        };
        assert_eq!((d.verdict, d.reason), (Verdict::Unknown, "no_speech"));
        assert_eq!(d.at, AmdConfig::new(8000).initial_silence);
    }

    #[test]
    fn a_beep_before_any_word_is_a_machine_and_is_placed() {
        let mut seed = 2;
        let mut pcm = hiss(600, &mut seed);
        pcm.extend(tone(1000.0, 400));
        pcm.extend(hiss(1000, &mut seed));
        let events = run(&pcm);
        let AmdEvent::Decided(d) = events[0] else {
            panic!("{events:?}")
        };
        assert_eq!((d.verdict, d.reason), (Verdict::Machine, "beep"));
        let AmdEvent::Beep { start, end, hz } = events[1] else {
            panic!("{events:?}")
        };
        assert!((950..=1050).contains(&hz), "{hz} Hz");
        // To the 20 ms frame, give or take the analysis window.
        let ms = |d: Duration| d.as_millis() as i64;
        assert!((ms(start) - 600).abs() <= 60, "{start:?}");
        assert!((ms(end) - 1000).abs() <= 60, "{end:?}");
        assert_eq!(events.len(), 2);
    }

    #[test]
    fn a_click_of_tone_is_no_beep_and_the_detector_stops_when_done() {
        let mut seed = 3;
        let mut pcm = hiss(600, &mut seed);
        pcm.extend(tone(1000.0, 60));
        pcm.extend(hiss(5000, &mut seed));
        let events = run(&pcm);
        assert!(
            !events.iter().any(|e| matches!(e, AmdEvent::Beep { .. })),
            "{events:?}"
        );
        let mut amd = Amd::new(AmdConfig::new(8000)).unwrap();
        let mut out = Vec::new();
        amd.push(&pcm, &mut out);
        assert!(amd.done());
        amd.push(&tone(1000.0, 500), &mut out);
        assert_eq!(out.len(), 1, "nothing after the verdict: {out:?}");
    }
}
