//! Per-frame spectral analysis: one 256-point FFT of the last 32 ms at
//! 8 kHz, the noise floor, and the features the decision is made from.
// Several per-bin arrays are walked in step; an index reads clearer here
// than zipped iterators.
#![allow(clippy::needless_range_loop)]

use std::sync::Arc;

use rustfft::num_complex::Complex;
use rustfft::{Fft, FftPlanner};

use super::noise::{FLOOR, NoiseFloor};

/// FFT length: 32 ms at 8 kHz, so harmonics of voices down to ~70 Hz are
/// resolved (bin spacing 31.25 Hz, Hann main lobe ±2 bins).
pub(crate) const N: usize = 256;
/// One-sided spectrum length.
pub(crate) const BINS: usize = N / 2 + 1;
/// Analysed range, bins 3..122 = 94–3800 Hz: below that is hum and DC, above
/// it the channel filter of most phone lines.
const LO: usize = 3;
const HI: usize = 122;
/// WebRTC-like sub-bands (80–250, 250–500, 500–1000, 1000–2000, 2000–3000,
/// 3000–3800 Hz) as bin ranges.
pub(crate) const BANDS: [(usize, usize); 6] =
    [(LO, 8), (8, 16), (16, 32), (32, 64), (64, 96), (96, HI)];
/// Pitch lags in samples at 8 kHz: 400 Hz down to 70 Hz. 50/60 Hz hum (lags
/// 160/133) lies outside on purpose.
const LAG_MIN: usize = 20;
const LAG_MAX: usize = 114;
/// How far back `stationarity` looks: longer than any steady vowel of
/// running speech, short enough to catch a hum or tone before the floor
/// absorbs it.
pub(crate) const STATIONARY_MS: u32 = 120;
/// 0 dBm0 is a sine of peak [`crate::level::DBM0_PEAK`]; samples are scaled
/// by this so that spectrum powers read directly in dBm0.
const DBM0_PEAK: f32 = crate::level::DBM0_PEAK as f32;

/// What one frame looks like to the decision.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Features {
    /// Power in 94–3800 Hz, dBm0.
    pub level_db: f32,
    /// Power in 94–3800 Hz over the noise floor, dB.
    pub snr_db: f32,
    /// Mean of the two best sub-band SNRs, dB (speech is concentrated in a
    /// few bands; coloured noise buries the others).
    pub top_snr_db: f32,
    /// Periodic share of the frame's power (0–1): the normalised
    /// autocorrelation of the above-noise spectrum at the best pitch lag,
    /// diluted by the noise that is left. High for voiced speech (and tones).
    pub periodicity: f32,
    /// Share of the above-noise power inside the two strongest spectral
    /// peaks (±2 bins each), 0–1. A single or dual tone (DTMF, test tone,
    /// ringback) puts ~all its power there; a voice spreads it over its
    /// harmonics and formants.
    pub tonality: f32,
    /// Spectral flatness (geometric over arithmetic mean) of the whitened
    /// spectrum, 0–1. Noise of any colour and level, including a noise that
    /// just got louder than the floor, whitens to independent exponential
    /// bins whose flatness is e^−γ ≈ 0.56; speech and tones are peaky
    /// (harmonics and formants over noise-level valleys) and score low.
    pub flatness: f32,
    /// Cosine similarity (0–1) of the above-noise spectrum (square-root
    /// compressed) with the one ~120 ms earlier. A voice keeps changing
    /// pitch and formants; hum, tones and machinery do not. Only sounds
    /// that were already above the floor 120 ms ago can score high.
    pub stationarity: f32,
    /// Bins (31.25 Hz apart) of the two strongest above-noise peaks, to
    /// follow a tone from frame to frame.
    pub peaks: [u16; 2],
}

impl Features {
    /// What a frame of silence (or one before the window has filled) looks
    /// like.
    pub const SILENT: Features = Features {
        level_db: -120.0,
        snr_db: 0.0,
        top_snr_db: 0.0,
        periodicity: 0.0,
        tonality: 0.0,
        flatness: 1.0,
        stationarity: 0.0,
        peaks: [0, 0],
    };
}

/// The FFT front end with its noise floor.
pub(crate) struct Analyzer {
    window: [f32; N],
    history: [f32; N],
    fft: Arc<dyn Fft<f32>>,
    ifft: Arc<dyn Fft<f32>>,
    buf: Vec<Complex<f32>>,
    scratch: Vec<Complex<f32>>,
    power: [f32; BINS],
    excess: [f32; BINS],
    scale: f32,
    lag_gain: [f32; LAG_MAX + 1],
    noise: NoiseFloor,
    /// Samples seen since reset, capped at N: until the window is full its
    /// spectrum is that of a fade-in, which must not seed the noise floor.
    filled: usize,
    /// Compressed above-noise spectra of the last `lag` frames (ring).
    past: Vec<[f32; BINS]>,
    past_pos: usize,
}

impl Analyzer {
    pub(crate) fn new(frame_ms: u32) -> Self {
        let mut planner = FftPlanner::<f32>::new();
        let fft = planner.plan_fft_forward(N);
        let ifft = planner.plan_fft_inverse(N);
        let scratch_len = fft
            .get_inplace_scratch_len()
            .max(ifft.get_inplace_scratch_len());
        let mut window = [0f32; N];
        let mut wsum2 = 0.0f64;
        for (n, w) in window.iter_mut().enumerate() {
            // Periodic Hann: its spectrum is exactly three bins wide, which
            // makes the lag envelope below exact.
            let v = 0.5 - 0.5 * (2.0 * std::f64::consts::PI * n as f64 / N as f64).cos();
            *w = v as f32;
            wsum2 += v * v;
        }
        // Parseval: a one-sided bin k carries 2|X_k|²/(N Σw²) of the mean
        // square; the extra 2 turns mean square of x/22706 into dBm0.
        let scale = (4.0 / (N as f64 * wsum2)) as f32;
        // The autocorrelation read off a windowed power spectrum is the true
        // one times the window's own (circular) autocorrelation, which for a
        // periodic Hann is (2 + cos 2πτ/N)/3. Dividing it out makes a steady
        // periodic signal score ~1 at every lag.
        let mut lag_gain = [0f32; LAG_MAX + 1];
        for (tau, g) in lag_gain.iter_mut().enumerate() {
            let env = (2.0 + (2.0 * std::f64::consts::PI * tau as f64 / N as f64).cos()) / 3.0;
            // Capped at 2 (lags ≤ 64, pitch ≥ 125 Hz, fully corrected):
            // beyond that the correction would mostly amplify the random
            // autocorrelation of noise that rose above the floor.
            *g = (1.0 / env).min(2.0) as f32;
        }
        Analyzer {
            window,
            history: [0.0; N],
            fft,
            ifft,
            buf: vec![Complex::new(0.0, 0.0); N],
            scratch: vec![Complex::new(0.0, 0.0); scratch_len],
            power: [0.0; BINS],
            excess: [0.0; BINS],
            scale,
            lag_gain,
            noise: NoiseFloor::new(frame_ms),
            filled: 0,
            past: vec![[0.0; BINS]; (STATIONARY_MS / frame_ms).max(1) as usize],
            past_pos: 0,
        }
    }

    pub(crate) fn reset(&mut self) {
        self.history = [0.0; N];
        self.noise.reset();
        self.filled = 0;
        self.past.iter_mut().for_each(|p| *p = [0.0; BINS]);
        self.past_pos = 0;
    }

    /// Analyses the newest frame (8 kHz samples, raw i16 scale).
    pub(crate) fn analyze(&mut self, frame: &[f32]) -> Features {
        let hop = frame.len().min(N);
        self.history.copy_within(hop.., 0);
        self.history[N - hop..].copy_from_slice(&frame[frame.len() - hop..]);
        self.filled = (self.filled + hop).min(N);
        if self.filled < N {
            return Features::SILENT;
        }

        for ((b, &x), &w) in self.buf.iter_mut().zip(&self.history).zip(&self.window) {
            *b = Complex::new(x * (w / DBM0_PEAK), 0.0);
        }
        self.fft
            .process_with_scratch(&mut self.buf, &mut self.scratch);
        for (p, c) in self.power.iter_mut().zip(&self.buf) {
            *p = c.norm_sqr() * self.scale;
        }
        self.noise.update(&self.power);
        let noise = self.noise.noise();

        // Everything below works on the a-posteriori SNR per bin, i.e. the
        // spectrum whitened by the noise floor: stationary noise of any
        // colour then looks the same (≈ 1 in every bin), so brown noise or
        // a resonant comfort noise cannot pass its few loud low bins off as
        // a harmonic or a tone.
        let mut total = 0f32;
        let mut total_noise = 0f32;
        let mut total_ratio = 0f32;
        let mut total_excess = 0f32;
        let mut log_sum = 0f32;
        self.excess = [0.0; BINS];
        for k in LO..HI {
            total += self.power[k];
            total_noise += noise[k];
            let ratio = self.power[k] / noise[k];
            total_ratio += ratio;
            log_sum += ratio.max(1e-3).ln();
            let e = (ratio - 1.0).max(0.0);
            self.excess[k] = e;
            total_excess += e;
        }
        let level_db = 10.0 * total.max(FLOOR).log10();
        let flatness =
            ((log_sum / (HI - LO) as f32).exp() / (total_ratio / (HI - LO) as f32)).min(1.0);
        let snr_db = 10.0 * (total.max(FLOOR) / total_noise).log10();

        let mut best = [f32::NEG_INFINITY; 2];
        for &(lo, hi) in &BANDS {
            let p: f32 = self.power[lo..hi].iter().sum();
            let n: f32 = noise[lo..hi].iter().sum();
            let s = 10.0 * (p.max(FLOOR) / n).log10();
            if s > best[0] {
                best[1] = best[0];
                best[0] = s;
            } else if s > best[1] {
                best[1] = s;
            }
        }
        let top_snr_db = 0.5 * (best[0] + best[1]);

        let (tonality, peaks) = self.tonality(total_excess);
        let periodicity = self.periodicity(total_ratio);
        let stationarity = self.stationarity();

        Features {
            level_db,
            snr_db,
            top_snr_db,
            periodicity,
            tonality,
            flatness,
            stationarity,
            peaks,
        }
    }

    fn stationarity(&mut self) -> f32 {
        let len = self.past.len();
        let old = &mut self.past[self.past_pos];
        self.past_pos = (self.past_pos + 1) % len;
        let (mut dot, mut a2, mut b2) = (0f32, 0f32, 0f32);
        for k in LO..HI {
            let a = self.excess[k].sqrt();
            let b = old[k];
            dot += a * b;
            a2 += a * a;
            b2 += b * b;
            old[k] = a;
        }
        if a2 <= FLOOR || b2 <= FLOOR {
            return 0.0;
        }
        (dot / (a2 * b2).sqrt()).clamp(0.0, 1.0)
    }

    fn tonality(&self, total_excess: f32) -> (f32, [u16; 2]) {
        if total_excess <= FLOOR {
            return (0.0, [0, 0]);
        }
        let e = &self.excess;
        let peak = |skip: Option<usize>| -> usize {
            let mut best = LO;
            let mut best_v = -1.0;
            for (k, &v) in e.iter().enumerate().take(HI).skip(LO) {
                if skip.is_some_and(|p| k.abs_diff(p) <= 4) {
                    continue;
                }
                if v > best_v {
                    best_v = v;
                    best = k;
                }
            }
            best
        };
        let lobe = |p: usize| -> f32 { e[p.saturating_sub(2)..(p + 3).min(BINS)].iter().sum() };
        let p1 = peak(None);
        let p2 = peak(Some(p1));
        let t = ((lobe(p1) + lobe(p2)) / total_excess).min(1.0);
        (t, [p1 as u16, p2 as u16])
    }

    fn periodicity(&mut self, total: f32) -> f32 {
        if total <= FLOOR {
            return 0.0;
        }
        // Autocorrelation of the above-noise spectrum (inverse FFT of a
        // real, even spectrum is real). Stationary noise, hum included, has
        // been subtracted, so only what stands out of the noise can look
        // periodic; normalising by the whole power (not just the excess)
        // lets the remaining noise dilute the score as it should.
        for c in self.buf.iter_mut() {
            *c = Complex::new(0.0, 0.0);
        }
        for k in LO..HI {
            let v = Complex::new(self.excess[k], 0.0);
            self.buf[k] = v;
            self.buf[N - k] = v;
        }
        self.ifft
            .process_with_scratch(&mut self.buf, &mut self.scratch);
        let mut best = 0f32;
        for tau in LAG_MIN..=LAG_MAX {
            let r = self.buf[tau].re * self.lag_gain[tau];
            if r > best {
                best = r;
            }
        }
        (best / (2.0 * total)).clamp(0.0, 1.0)
    }
}
