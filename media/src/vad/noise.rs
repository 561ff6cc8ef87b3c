//! Per-bin noise floor by minimum statistics (after R. Martin, 2001).
//!
//! The floor is the minimum of the smoothed power spectrum over a sliding
//! window of about 1.6 s. Speech has gaps between syllables and words far
//! shorter than that, and in every gap (and between the harmonics of every
//! voiced frame) each bin falls back to the noise, so the minimum follows the
//! noise and not the speech, without any voice decision feeding back into it.
//! That matters: a floor that only adapts "when there is no speech" locks up
//! for good once a loud noise is mistaken for speech.
//!
//! The minimum drops at once when the noise drops, and rises at most one
//! window (≈ 1.6 s) after the noise rises. The window is kept as `SUBWINDOWS`
//! sub-window minima so the sliding minimum costs O(1) per bin and frame.
// Several per-bin arrays are walked in step; an index reads clearer here
// than zipped iterators.
#![allow(clippy::needless_range_loop)]

use super::analysis::BINS;

/// Number of sub-windows the minimum search is split into.
const SUBWINDOWS: usize = 8;
/// Length of one sub-window; 8 × 200 ms = 1.6 s search window.
const SUBWINDOW_MS: u32 = 200;
/// Time constant of the periodogram smoothing in front of the minimum. A
/// raw periodogram bin is exponentially distributed and dips to a few
/// percent of its mean every few dozen frames; the minimum of that would
/// sit far below the noise.
const SMOOTH_MS: f32 = 60.0;
/// The minimum of a smoothed periodogram under-estimates the mean noise
/// power; this factor (measured on white noise with the 40 ms smoothing
/// above, both frame lengths) brings it back to about the mean.
const BIAS: f32 = 2.0;
/// Absolute floor per bin (≈ −110 dBm0), so digital silence gives finite
/// ratios.
pub(crate) const FLOOR: f32 = 1e-11;

/// Sliding-minimum noise tracker over the spectrum bins.
#[derive(Clone)]
pub(crate) struct NoiseFloor {
    alpha: f32,
    frames_per_sub: u32,
    smoothed: [f32; BINS],
    current_min: [f32; BINS],
    sub_min: [[f32; BINS]; SUBWINDOWS],
    /// Minimum over the completed sub-windows, refreshed when one completes.
    window_min: [f32; BINS],
    sub_pos: usize,
    in_sub: u32,
    noise: [f32; BINS],
    /// Frames seen, for the bias ramp below (capped).
    seen: u32,
    window_frames: u32,
    /// Mean power per bin since the start, used while the minimum search
    /// window is still filling.
    mean: [f32; BINS],
}

impl NoiseFloor {
    pub(crate) fn new(frame_ms: u32) -> Self {
        NoiseFloor {
            alpha: (-(frame_ms as f32) / SMOOTH_MS).exp(),
            frames_per_sub: (SUBWINDOW_MS / frame_ms).max(1),
            smoothed: [0.0; BINS],
            current_min: [f32::INFINITY; BINS],
            sub_min: [[f32::INFINITY; BINS]; SUBWINDOWS],
            window_min: [f32::INFINITY; BINS],
            sub_pos: 0,
            in_sub: 0,
            noise: [FLOOR; BINS],
            seen: 0,
            window_frames: (SUBWINDOW_MS / frame_ms).max(1) * SUBWINDOWS as u32,
            mean: [0.0; BINS],
        }
    }

    pub(crate) fn reset(&mut self) {
        self.smoothed = [0.0; BINS];
        self.current_min = [f32::INFINITY; BINS];
        self.sub_min = [[f32::INFINITY; BINS]; SUBWINDOWS];
        self.window_min = [f32::INFINITY; BINS];
        self.sub_pos = 0;
        self.in_sub = 0;
        self.noise = [FLOOR; BINS];
        self.seen = 0;
        self.mean = [0.0; BINS];
    }

    /// The current estimate of the mean noise power per bin.
    pub(crate) fn noise(&self) -> &[f32; BINS] {
        &self.noise
    }

    /// Folds one frame's power spectrum into the tracker.
    pub(crate) fn update(&mut self, power: &[f32; BINS]) {
        // Until the search window has filled once, the minimum of a few
        // frames is a noisy, single-draw estimate whose per-bin scatter looks
        // like spectral structure. The running mean of all frames so far is
        // the better estimate of a stationary start; twice the full-bias
        // minimum caps it, so speech early in the stream cannot drag the
        // floor up by more than ~3 dB.
        let warming = self.seen < self.window_frames;
        self.seen += 1;
        let inv = 1.0 / self.seen as f32;
        // The smoothing starts as a plain running mean, so the first frames
        // are averaged like later ones instead of entering the minimum raw.
        let a = self.alpha.min(1.0 - inv);
        // Only once the average spans a full smoothing length may it enter
        // the minimum.
        let settled = self.seen as f32 * (1.0 - self.alpha) >= 1.0;
        for k in 0..BINS {
            let s = a * self.smoothed[k] + (1.0 - a) * power[k];
            self.smoothed[k] = s;
            if settled && s < self.current_min[k] {
                self.current_min[k] = s;
            }
            let floor = self.current_min[k].min(self.window_min[k]) * BIAS;
            self.noise[k] = if warming {
                self.mean[k] += (power[k] - self.mean[k]) * inv;
                self.mean[k].min(2.0 * floor)
            } else {
                floor
            }
            .max(FLOOR);
        }
        // A bin's minimum can come from a single unlucky periodogram value
        // (right after a step in level the smoothing has not averaged yet),
        // far below its neighbours; such holes would read as spectral
        // structure. Noise spectra are smooth, so no bin may sit below half
        // the mean of its ±2 neighbours. Spectral lines (hum) lie above
        // their neighbours and are untouched.
        let raw = self.noise;
        for k in 0..BINS {
            let lo = k.saturating_sub(2);
            let hi = (k + 3).min(BINS);
            let local: f32 = raw[lo..hi].iter().sum::<f32>() / (hi - lo) as f32;
            self.noise[k] = raw[k].max(0.5 * local);
        }
        self.in_sub += 1;
        if self.in_sub >= self.frames_per_sub {
            self.in_sub = 0;
            self.sub_min[self.sub_pos] = self.current_min;
            self.sub_pos = (self.sub_pos + 1) % SUBWINDOWS;
            self.current_min = self.smoothed;
            self.window_min = self.sub_min[0];
            for sub in &self.sub_min[1..] {
                for (w, &v) in self.window_min.iter_mut().zip(sub) {
                    *w = w.min(v);
                }
            }
        }
    }
}
