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

use super::analysis::BINS;

/// Number of sub-windows the minimum search is split into.
const SUBWINDOWS: usize = 8;
/// Length of one sub-window; 8 × 200 ms = 1.6 s search window.
const SUBWINDOW_MS: u32 = 200;
/// Time constant of the periodogram smoothing in front of the minimum.
const SMOOTH_MS: f32 = 40.0;
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
    started: bool,
    /// Frames seen, for the bias ramp below (capped).
    seen: u32,
    window_frames: u32,
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
            started: false,
            seen: 0,
            window_frames: (SUBWINDOW_MS / frame_ms).max(1) * SUBWINDOWS as u32,
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
        self.started = false;
        self.seen = 0;
    }

    /// The current estimate of the mean noise power per bin.
    pub(crate) fn noise(&self) -> &[f32; BINS] {
        &self.noise
    }

    /// Folds one frame's power spectrum into the tracker.
    pub(crate) fn update(&mut self, power: &[f32; BINS]) {
        if !self.started {
            // Start from the first frame rather than from zero: a line that
            // opens with hum or hiss is noise from its first frame on.
            self.smoothed = *power;
            self.started = true;
        }
        // The minimum over only a few frames sits near the mean, not below
        // it, so the bias correction grows from 1 to its full value as the
        // search window fills.
        self.seen = (self.seen + 1).min(self.window_frames);
        let bias = 1.0 + (BIAS - 1.0) * self.seen as f32 / self.window_frames as f32;
        let a = self.alpha;
        for k in 0..BINS {
            let s = a * self.smoothed[k] + (1.0 - a) * power[k];
            self.smoothed[k] = s;
            if s < self.current_min[k] {
                self.current_min[k] = s;
            }
            let m = self.current_min[k].min(self.window_min[k]);
            self.noise[k] = (m * bias).max(FLOOR);
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
