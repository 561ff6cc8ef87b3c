//! Call-progress tones: ringback, busy, congestion (reorder), the recording
//! beep and special information tones (SIT).
//!
//! A tone is described by a [`ToneSpec`]: a cadence of [`Segment`]s, each
//! either silent or a sum of sines at given levels, played once or repeated.
//! A [`ToneGenerator`] renders a spec at any sample rate into frames the
//! caller supplies. The generator keeps its own sample position and oscillator
//! phases, so the output does not depend on how the caller slices it into
//! frames: 160-sample frames and one large buffer give identical samples.
//!
//! Every on/off edge is shaped with a raised-cosine ramp (3 ms by default)
//! because a hard switch of a sine is an audible click and spreads energy
//! across the band (where it can also trip DTMF and VAD detectors on the far
//! end).
//!
//! Levels are in dBm0 as defined in [`crate::level`]: 0 dBm0 is a sine of
//! peak amplitude 22 706 in 16-bit PCM (G.711's digital milliwatt).

use thiserror::Error;

pub use crate::level::{DBM0_PEAK, dbm0_to_peak, peak_to_dbm0};

/// Default edge ramp: long enough to keep the spectrum splatter of an edge
/// well below the tone (2 ms is the usual minimum), short enough not to blur
/// cadences such as the UK double ring.
pub const DEFAULT_RAMP_MS: f64 = 3.0;

/// Why a [`ToneSpec`] cannot be rendered.
#[derive(Debug, Clone, PartialEq, Error)]
pub enum ToneError {
    /// The sample rate was zero.
    #[error("sample rate must be positive")]
    ZeroSampleRate,
    /// A spec needs at least one segment.
    #[error("tone has no segments")]
    NoSegments,
    /// A repeating cadence must last at least one sample per cycle, or the
    /// generator would never advance.
    #[error("repeating cadence has zero length at {sample_rate} Hz")]
    EmptyCycle {
        /// The rate the cadence was rendered at.
        sample_rate: u32,
    },
    /// A frequency is not in (0, Nyquist): it would alias.
    #[error("frequency {freq_hz} Hz is outside (0, {nyquist} Hz)")]
    BadFrequency {
        /// The offending frequency.
        freq_hz: f64,
        /// Half the sample rate.
        nyquist: f64,
    },
    /// A level or ramp is NaN or infinite, or a ramp is negative.
    #[error("invalid {what}: {value}")]
    BadValue {
        /// Which parameter.
        what: &'static str,
        /// Its value.
        value: f64,
    },
}

/// Regional tone plans. The cadences are the national ones (ANSI T1.401 for
/// the US, BT SIN 350 for the UK, ETSI ES 201 970 / ITU-T E.180 for most of
/// continental Europe).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Region {
    /// North America: precise tone plan (350/440/480/620 Hz).
    Us,
    /// United Kingdom: 400 Hz family.
    Uk,
    /// Continental Europe / ITU-T E.180 recommendation: 425 Hz.
    Eu,
}

/// One sinusoidal component of a tone.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Sine {
    /// Frequency in Hz.
    pub freq_hz: f64,
    /// Level of this component alone, in dBm0.
    pub level_dbm0: f64,
}

impl Sine {
    /// A component at `freq_hz` and `level_dbm0`.
    pub const fn new(freq_hz: f64, level_dbm0: f64) -> Self {
        Self {
            freq_hz,
            level_dbm0,
        }
    }
}

/// One step of a cadence: `sines` summed for `duration_ms`, or silence when
/// `sines` is empty.
#[derive(Debug, Clone, PartialEq)]
pub struct Segment {
    /// Nominal duration. Segment boundaries are placed at the cumulative
    /// duration rounded to the nearest sample, so long cadences do not drift
    /// at rates where a segment is not a whole number of samples.
    pub duration_ms: f64,
    /// The components; empty for an off period.
    pub sines: Vec<Sine>,
}

impl Segment {
    /// An on period of the given components.
    pub fn on(duration_ms: f64, sines: &[Sine]) -> Self {
        Self {
            duration_ms,
            sines: sines.to_vec(),
        }
    }

    /// An off period.
    pub fn off(duration_ms: f64) -> Self {
        Self {
            duration_ms,
            sines: Vec::new(),
        }
    }
}

/// A complete tone: cadence, repetition and edge shaping.
#[derive(Debug, Clone, PartialEq)]
pub struct ToneSpec {
    /// The cadence, in order.
    pub segments: Vec<Segment>,
    /// Loop the cadence forever (ringback, busy) or play it once (beep).
    pub repeat: bool,
    /// Length of the raised-cosine ramp on each on/off edge. It is taken
    /// inside the on period, so an on period of N samples starts and ends
    /// with exactly N non-silent samples. Shortened to half the on period
    /// when the period is shorter than two ramps.
    pub ramp_ms: f64,
}

/// Default per-component level of the ringback, busy and congestion tones
/// (ANSI T1.401 ringback is −19 dBm0 per component; most plans sit between
/// −13 and −19 dBm0).
pub const DEFAULT_TONE_DBM0: f64 = -19.0;

/// Default level of single-frequency European tones and the beep.
pub const DEFAULT_SINGLE_DBM0: f64 = -13.0;

impl ToneSpec {
    /// A repeating tone from `segments` with the default ramp.
    pub fn repeating(segments: Vec<Segment>) -> Self {
        Self {
            segments,
            repeat: true,
            ramp_ms: DEFAULT_RAMP_MS,
        }
    }

    /// A tone from `segments` played once, with the default ramp.
    pub fn once(segments: Vec<Segment>) -> Self {
        Self {
            segments,
            repeat: false,
            ramp_ms: DEFAULT_RAMP_MS,
        }
    }

    /// A steady tone (no cadence), e.g. dial tone.
    pub fn continuous(sines: &[Sine]) -> Self {
        // One long on-segment repeated; the ramp only matters at the very
        // start, because consecutive on-segments are joined seamlessly.
        Self::repeating(vec![Segment::on(1000.0, sines)])
    }

    /// Ringback (the caller hears the far end ringing).
    ///
    /// * US: 440 + 480 Hz, 2 s on, 4 s off.
    /// * UK: 400 + 450 Hz, 0.4 s on, 0.2 s off, 0.4 s on, 2 s off.
    /// * EU/ITU: 425 Hz, 1 s on, 4 s off.
    pub fn ringback(region: Region) -> Self {
        match region {
            Region::Us => {
                let s = [
                    Sine::new(440.0, DEFAULT_TONE_DBM0),
                    Sine::new(480.0, DEFAULT_TONE_DBM0),
                ];
                Self::repeating(vec![Segment::on(2000.0, &s), Segment::off(4000.0)])
            }
            Region::Uk => {
                let s = [
                    Sine::new(400.0, DEFAULT_TONE_DBM0),
                    Sine::new(450.0, DEFAULT_TONE_DBM0),
                ];
                Self::repeating(vec![
                    Segment::on(400.0, &s),
                    Segment::off(200.0),
                    Segment::on(400.0, &s),
                    Segment::off(2000.0),
                ])
            }
            Region::Eu => {
                let s = [Sine::new(425.0, DEFAULT_SINGLE_DBM0)];
                Self::repeating(vec![Segment::on(1000.0, &s), Segment::off(4000.0)])
            }
        }
    }

    /// Busy (the called party is busy).
    ///
    /// * US: 480 + 620 Hz, 0.5 s on, 0.5 s off.
    /// * UK: 400 Hz, 0.375 s on, 0.375 s off.
    /// * EU/ITU: 425 Hz, 0.5 s on, 0.5 s off.
    pub fn busy(region: Region) -> Self {
        match region {
            Region::Us => Self::on_off(
                &[
                    Sine::new(480.0, DEFAULT_TONE_DBM0),
                    Sine::new(620.0, DEFAULT_TONE_DBM0),
                ],
                500.0,
                500.0,
            ),
            Region::Uk => Self::on_off(&[Sine::new(400.0, DEFAULT_SINGLE_DBM0)], 375.0, 375.0),
            Region::Eu => Self::on_off(&[Sine::new(425.0, DEFAULT_SINGLE_DBM0)], 500.0, 500.0),
        }
    }

    /// Congestion / reorder (the network cannot complete the call).
    ///
    /// * US (reorder): 480 + 620 Hz, 0.25 s on, 0.25 s off.
    /// * UK: 400 Hz, 0.4 s on, 0.35 s off, 0.225 s on, 0.525 s off.
    /// * EU/ITU: 425 Hz, 0.25 s on, 0.25 s off (ETSI ES 201 970 congestion).
    pub fn congestion(region: Region) -> Self {
        match region {
            Region::Us => Self::on_off(
                &[
                    Sine::new(480.0, DEFAULT_TONE_DBM0),
                    Sine::new(620.0, DEFAULT_TONE_DBM0),
                ],
                250.0,
                250.0,
            ),
            Region::Uk => {
                let s = [Sine::new(400.0, DEFAULT_SINGLE_DBM0)];
                Self::repeating(vec![
                    Segment::on(400.0, &s),
                    Segment::off(350.0),
                    Segment::on(225.0, &s),
                    Segment::off(525.0),
                ])
            }
            Region::Eu => Self::on_off(&[Sine::new(425.0, DEFAULT_SINGLE_DBM0)], 250.0, 250.0),
        }
    }

    /// The beep played before voicemail or recording starts: 1 kHz for
    /// 200 ms at −13 dBm0, once.
    pub fn beep() -> Self {
        Self::beep_with(1000.0, 200.0, DEFAULT_SINGLE_DBM0)
    }

    /// A single beep of the given frequency, duration and level, played once.
    pub fn beep_with(freq_hz: f64, duration_ms: f64, level_dbm0: f64) -> Self {
        Self::once(vec![Segment::on(
            duration_ms,
            &[Sine::new(freq_hz, level_dbm0)],
        )])
    }

    /// Special information tone, played once: three rising tones.
    ///
    /// * [`Region::Us`]: the Telcordia "intercept" sequence, 913.8 Hz
    ///   (274 ms), 1370.6 Hz (274 ms), 1776.7 Hz (380 ms), which the
    ///   autodialers of the far end recognise.
    /// * Otherwise ITU-T E.180 §6: 950, 1400, 1800 Hz, 330 ms each, followed
    ///   by 1 s of silence (repeat the spec for the recommended loop).
    ///
    /// Each tone is ramped on its own edges, so there is a short dip (two
    /// ramps) between consecutive tones rather than an abrupt frequency jump.
    pub fn sit(region: Region) -> Self {
        let l = DEFAULT_TONE_DBM0;
        match region {
            Region::Us => Self::once(vec![
                Segment::on(274.0, &[Sine::new(913.8, l)]),
                Segment::on(274.0, &[Sine::new(1370.6, l)]),
                Segment::on(380.0, &[Sine::new(1776.7, l)]),
            ]),
            Region::Uk | Region::Eu => Self::once(vec![
                Segment::on(330.0, &[Sine::new(950.0, l)]),
                Segment::on(330.0, &[Sine::new(1400.0, l)]),
                Segment::on(330.0, &[Sine::new(1800.0, l)]),
                Segment::off(1000.0),
            ]),
        }
    }

    fn on_off(sines: &[Sine], on_ms: f64, off_ms: f64) -> Self {
        Self::repeating(vec![Segment::on(on_ms, sines), Segment::off(off_ms)])
    }

    /// The same tone with every component at `level_dbm0`.
    pub fn with_level(mut self, level_dbm0: f64) -> Self {
        for seg in &mut self.segments {
            for s in &mut seg.sines {
                s.level_dbm0 = level_dbm0;
            }
        }
        self
    }

    /// The same tone with a different edge ramp.
    pub fn with_ramp_ms(mut self, ramp_ms: f64) -> Self {
        self.ramp_ms = ramp_ms;
        self
    }

    /// The same cadence played once or looped.
    pub fn with_repeat(mut self, repeat: bool) -> Self {
        self.repeat = repeat;
        self
    }
}

/// A segment prepared for one sample rate.
#[derive(Debug, Clone)]
struct Prepared {
    len: u64,
    /// Ramp length at each edge, in samples (0 for silence).
    ramp: usize,
    /// Ramp at the start of the segment (false when the previous segment is
    /// an identical on-segment, so a continuous tone is not chopped up).
    ramp_in: bool,
    /// Ramp at the end (false when the next segment continues the tone).
    ramp_out: bool,
    /// (phase increment in cycles per sample, peak amplitude) per component.
    osc: Vec<(f64, f64)>,
    /// Index of the first oscillator phase in the generator's phase table.
    phase_base: usize,
}

/// Renders a [`ToneSpec`] at one sample rate, frame by frame.
///
/// ```
/// use hotline_media::tones::{Region, ToneGenerator, ToneSpec};
/// let mut g = ToneGenerator::new(&ToneSpec::ringback(Region::Us), 8000).unwrap();
/// let mut frame = [0i16; 160];
/// g.fill(&mut frame);
/// assert_eq!(g.position(), 160);
/// ```
#[derive(Debug, Clone)]
pub struct ToneGenerator {
    segs: Vec<Prepared>,
    repeat: bool,
    /// Oscillator phases in cycles, one per component of every segment.
    phases: Vec<f64>,
    seg: usize,
    seg_off: u64,
    /// Whether the current segment ramps in: normally its own `ramp_in`, but
    /// always true for the very first segment, where the tone starts from
    /// silence even if the cadence loops seamlessly.
    ramp_in_now: bool,
    position: u64,
    finished: bool,
    sample_rate: u32,
}

impl ToneGenerator {
    /// Prepares `spec` for `sample_rate` Hz. Allocates; do this once per call.
    pub fn new(spec: &ToneSpec, sample_rate: u32) -> Result<Self, ToneError> {
        if sample_rate == 0 {
            return Err(ToneError::ZeroSampleRate);
        }
        if spec.segments.is_empty() {
            return Err(ToneError::NoSegments);
        }
        if !spec.ramp_ms.is_finite() || spec.ramp_ms < 0.0 {
            return Err(ToneError::BadValue {
                what: "ramp_ms",
                value: spec.ramp_ms,
            });
        }
        let rate = f64::from(sample_rate);
        let nyquist = rate / 2.0;
        let ramp_nominal = (spec.ramp_ms * rate / 1000.0).round() as usize;

        let mut segs = Vec::with_capacity(spec.segments.len());
        let mut cum_ms = 0.0f64;
        let mut prev_boundary = 0u64;
        let mut phase_count = 0usize;
        for seg in &spec.segments {
            if !seg.duration_ms.is_finite() || seg.duration_ms < 0.0 {
                return Err(ToneError::BadValue {
                    what: "duration_ms",
                    value: seg.duration_ms,
                });
            }
            cum_ms += seg.duration_ms;
            let boundary = (cum_ms * rate / 1000.0).round() as u64;
            let len = boundary - prev_boundary;
            prev_boundary = boundary;
            let mut osc = Vec::with_capacity(seg.sines.len());
            for s in &seg.sines {
                if !(s.freq_hz > 0.0 && s.freq_hz < nyquist) {
                    return Err(ToneError::BadFrequency {
                        freq_hz: s.freq_hz,
                        nyquist,
                    });
                }
                if !s.level_dbm0.is_finite() {
                    return Err(ToneError::BadValue {
                        what: "level_dbm0",
                        value: s.level_dbm0,
                    });
                }
                osc.push((s.freq_hz / rate, dbm0_to_peak(s.level_dbm0)));
            }
            let ramp = if osc.is_empty() {
                0
            } else {
                ramp_nominal.min((len / 2) as usize)
            };
            segs.push(Prepared {
                len,
                ramp,
                ramp_in: true,
                ramp_out: true,
                osc,
                phase_base: phase_count,
            });
            phase_count += seg.sines.len();
        }
        if spec.repeat && prev_boundary == 0 {
            return Err(ToneError::EmptyCycle { sample_rate });
        }

        // Identical adjacent on-segments (and the wrap-around of a looped
        // steady tone) form one continuous tone: no ramps between them, and
        // they share oscillator phases so the sine runs on unbroken.
        let n = segs.len();
        for i in 0..n {
            let next = if i + 1 < n {
                Some(i + 1)
            } else if spec.repeat {
                Some(0)
            } else {
                None
            };
            if let Some(j) = next
                && !spec.segments[i].sines.is_empty()
                && spec.segments[i].sines == spec.segments[j].sines
                && segs[i].len > 0
                && segs[j].len > 0
            {
                segs[i].ramp_out = false;
                segs[j].ramp_in = false;
                segs[j].phase_base = segs[i].phase_base;
            }
        }
        let mut g = Self {
            segs,
            repeat: spec.repeat,
            phases: vec![0.0; phase_count],
            seg: 0,
            seg_off: 0,
            ramp_in_now: true,
            position: 0,
            finished: false,
            sample_rate,
        };
        g.rewind();
        Ok(g)
    }

    /// The sample rate the generator renders at.
    pub fn sample_rate(&self) -> u32 {
        self.sample_rate
    }

    /// Samples produced since creation or the last [`reset`](Self::reset).
    pub fn position(&self) -> u64 {
        self.position
    }

    /// True once a non-repeating tone has played out (further output is
    /// silence). Never true for a repeating tone.
    pub fn is_finished(&self) -> bool {
        self.finished
    }

    /// Length of one pass through the cadence, in samples.
    pub fn cycle_len(&self) -> u64 {
        self.segs.iter().map(|s| s.len).sum()
    }

    /// Restarts the cadence from its first sample.
    pub fn reset(&mut self) {
        self.rewind();
    }

    /// Overwrites `out` with the next `out.len()` samples of the tone.
    /// Returns how many of them belong to the tone (less than `out.len()`
    /// only when a non-repeating tone ends inside this frame; the rest is
    /// silence). Never allocates.
    pub fn fill(&mut self, out: &mut [i16]) -> usize {
        let start = self.position;
        let mut done = 0;
        while done < out.len() {
            if self.finished {
                out[done..].fill(0);
                break;
            }
            let seg = &self.segs[self.seg];
            let left = seg.len - self.seg_off;
            let n = (out.len() - done).min(usize::try_from(left).unwrap_or(usize::MAX));
            let chunk = &mut out[done..done + n];
            if seg.osc.is_empty() {
                chunk.fill(0);
            } else {
                self.render(chunk);
            }
            done += n;
            self.seg_off += n as u64;
            if self.seg_off == self.segs[self.seg].len {
                self.advance_segment();
            }
        }
        self.position = start + out.len() as u64;
        if self.finished {
            // Samples after the end of a one-shot tone are not part of it.
            let end = self.cycle_len();
            usize::try_from(end.saturating_sub(start))
                .unwrap_or(usize::MAX)
                .min(out.len())
        } else {
            out.len()
        }
    }

    fn render(&mut self, chunk: &mut [i16]) {
        let seg = &self.segs[self.seg];
        let phases = &mut self.phases[seg.phase_base..seg.phase_base + seg.osc.len()];
        let len = seg.len;
        let ramp = seg.ramp as u64;
        let ramp_in = self.ramp_in_now;
        for (i, out) in chunk.iter_mut().enumerate() {
            let k = self.seg_off + i as u64;
            let mut acc = 0.0;
            for ((inc, amp), ph) in seg.osc.iter().zip(phases.iter_mut()) {
                // Cosine, so a burst's first sample is not forced to zero and
                // the on period is visible from its first sample.
                acc += amp * (std::f64::consts::TAU * *ph).cos();
                *ph += inc;
                if *ph >= 1.0 {
                    *ph -= 1.0;
                }
            }
            let env = if ramp_in && k < ramp {
                raised_cosine(k, ramp)
            } else if seg.ramp_out && len - 1 - k < ramp {
                raised_cosine(len - 1 - k, ramp)
            } else {
                1.0
            };
            *out = (acc * env).round().clamp(-32768.0, 32767.0) as i16;
        }
    }

    fn advance_segment(&mut self) {
        self.seg_off = 0;
        // Zero-length segments (a 0 ms entry, or rounding at very low rates)
        // are stepped over. `new` rejects a repeating cadence of zero total
        // length, so this loop ends.
        loop {
            self.seg += 1;
            if self.seg == self.segs.len() {
                if self.repeat {
                    self.seg = 0;
                } else {
                    self.finished = true;
                    self.seg = self.segs.len() - 1;
                    return;
                }
            }
            if self.segs[self.seg].len > 0 {
                break;
            }
        }
        let s = &self.segs[self.seg];
        self.ramp_in_now = s.ramp_in;
        if s.ramp_in {
            // A fresh burst starts from zero phase, so every burst of a
            // cadence is identical (the ramp makes the restart inaudible).
            let base = s.phase_base;
            self.phases[base..base + s.osc.len()].fill(0.0);
        }
    }

    /// Positions the generator on the first sample of the cadence.
    fn rewind(&mut self) {
        self.phases.iter_mut().for_each(|p| *p = 0.0);
        self.seg_off = 0;
        self.position = 0;
        self.finished = false;
        self.seg = 0;
        if self.segs.iter().all(|s| s.len == 0) {
            // Only possible for a one-shot (a repeating one is rejected).
            self.finished = true;
        } else if self.segs[0].len == 0 {
            // Step forward from the end of the last segment, as a loop would.
            self.seg = self.segs.len() - 1;
            let repeat = std::mem::replace(&mut self.repeat, true);
            self.advance_segment();
            self.repeat = repeat;
        }
        self.ramp_in_now = true;
    }
}

/// Gain at sample `k` of a rising raised-cosine ramp of `ramp` samples.
/// Evaluated at sample centres, so the rise and fall are mirror images and
/// the ramp never multiplies by exactly 0 or 1.
fn raised_cosine(k: u64, ramp: u64) -> f64 {
    let x = (k as f64 + 0.5) / ramp as f64;
    0.5 - 0.5 * (std::f64::consts::PI * x).cos()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rejects_aliasing_frequency() {
        let spec = ToneSpec::beep_with(5000.0, 100.0, -10.0);
        assert!(matches!(
            ToneGenerator::new(&spec, 8000),
            Err(ToneError::BadFrequency { .. })
        ));
        assert!(ToneGenerator::new(&spec, 16000).is_ok());
    }

    #[test]
    fn rejects_degenerate_specs() {
        assert_eq!(
            ToneGenerator::new(&ToneSpec::beep(), 0).unwrap_err(),
            ToneError::ZeroSampleRate
        );
        assert_eq!(
            ToneGenerator::new(&ToneSpec::repeating(vec![]), 8000).unwrap_err(),
            ToneError::NoSegments
        );
        assert!(matches!(
            ToneGenerator::new(&ToneSpec::repeating(vec![Segment::off(0.0)]), 8000),
            Err(ToneError::EmptyCycle { .. })
        ));
        assert!(matches!(
            ToneGenerator::new(&ToneSpec::beep().with_level(f64::NAN), 8000),
            Err(ToneError::BadValue { .. })
        ));
    }

    #[test]
    fn one_shot_reports_tone_length_then_silence() {
        let mut g = ToneGenerator::new(&ToneSpec::beep(), 8000).unwrap();
        let mut buf = vec![7i16; 1000];
        assert_eq!(g.fill(&mut buf[..]), 1000);
        assert_eq!(g.fill(&mut buf[..]), 600);
        assert!(g.is_finished());
        assert!(buf[600..].iter().all(|&s| s == 0));
        assert_eq!(g.fill(&mut buf[..]), 0);
        assert!(buf.iter().all(|&s| s == 0));
        g.reset();
        assert!(!g.is_finished());
        assert_eq!(g.fill(&mut buf[..]), 1000);
    }

    #[test]
    fn continuous_tone_has_no_dips_between_segments() {
        let mut g =
            ToneGenerator::new(&ToneSpec::continuous(&[Sine::new(400.0, -10.0)]), 8000).unwrap();
        let mut buf = vec![0i16; 8000 * 3];
        g.fill(&mut buf);
        // After the initial ramp every 20-sample window (one 400 Hz period)
        // reaches the full peak, including across the 1 s segment joins.
        let peak = dbm0_to_peak(-10.0);
        for w in buf[100..].chunks(20) {
            let m = w.iter().map(|s| s.unsigned_abs()).max().unwrap() as f64;
            assert!((m - peak).abs() < peak * 0.02, "{m} vs {peak}");
        }
    }
}
