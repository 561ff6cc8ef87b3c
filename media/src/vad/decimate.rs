//! Halving the sample rate (16 kHz → 8 kHz) in front of the analysis.
//!
//! Everything the detector looks at lies in the telephone band (80–4000 Hz),
//! so wideband input is brought down to 8 kHz once and the rest of the
//! pipeline (FFT size, band edges, pitch lags, thresholds) exists in one
//! calibrated version only. A half-band FIR is the cheapest correct way to do
//! that: every other tap is zero, so 47 taps cost 13 multiplies per output.

/// Taps of the half-band filter (length 4m + 3, centre tap 0.5).
const TAPS: usize = 47;
/// The delay line holds two copies of the last `LINE` inputs so the newest
/// `TAPS` samples are always one contiguous slice (no wrap-around branch).
const LINE: usize = 48;

const BETA: f64 = 5.65;

/// Modified Bessel function of the first kind, order 0 (power series).
fn bessel_i0(x: f64) -> f64 {
    let mut sum = 1.0;
    let mut term = 1.0;
    let q = x * x / 4.0;
    for k in 1..40 {
        term *= q / (k * k) as f64;
        sum += term;
    }
    sum
}

/// Streaming 2:1 decimator with a windowed-sinc half-band low-pass.
#[derive(Clone)]
pub(crate) struct HalfBand {
    taps: [f32; TAPS],
    line: [f32; 2 * LINE],
    pos: usize,
    odd: bool,
}

impl HalfBand {
    pub(crate) fn new() -> Self {
        // Kaiser-windowed (β = 5.65, ≈ 60 dB) sinc with cut-off at a quarter
        // of the input rate (4 kHz): flat to ~3.4 kHz, stop band from
        // ~4.6 kHz, which keeps fricative energy at 4.6–8 kHz from folding
        // into the 3–4 kHz band.
        let mut taps = [0f32; TAPS];
        let mid = (TAPS / 2) as f64;
        let mut sum = 0.0;
        for (i, t) in taps.iter_mut().enumerate() {
            let n = i as f64 - mid;
            let sinc = if n == 0.0 {
                0.5
            } else {
                (std::f64::consts::FRAC_PI_2 * n).sin() / (std::f64::consts::PI * n)
            };
            let r = n / mid;
            let w = bessel_i0(BETA * (1.0 - r * r).sqrt()) / bessel_i0(BETA);
            let v = sinc * w;
            *t = v as f32;
            sum += v;
        }
        for t in &mut taps {
            *t /= sum as f32;
        }
        HalfBand {
            taps,
            line: [0.0; 2 * LINE],
            pos: 0,
            odd: false,
        }
    }

    pub(crate) fn reset(&mut self) {
        self.line = [0.0; 2 * LINE];
        self.pos = 0;
        self.odd = false;
    }

    /// Feeds one input sample; every second call yields an output sample.
    #[inline]
    pub(crate) fn push(&mut self, x: f32) -> Option<f32> {
        self.line[self.pos] = x;
        self.line[self.pos + LINE] = x;
        self.pos = (self.pos + 1) % LINE;
        self.odd = !self.odd;
        if self.odd {
            return None;
        }
        // Oldest sample of the newest LINE is at `pos`; the newest TAPS
        // samples start one later.
        let start = self.pos + (LINE - TAPS);
        let s = &self.line[start..start + TAPS];
        let centre = TAPS / 2;
        let mut acc = self.taps[centre] * s[centre];
        // Only odd offsets from the centre are non-zero in a half-band filter.
        let mut k = 1;
        while k <= centre {
            acc += self.taps[centre + k] * (s[centre + k] + s[centre - k]);
            k += 2;
        }
        Some(acc)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn gain(freq: f64) -> f64 {
        let mut d = HalfBand::new();
        let mut out = Vec::new();
        for n in 0..4000 {
            let x = (2.0 * std::f64::consts::PI * freq * n as f64 / 16000.0).sin();
            if let Some(y) = d.push(x as f32) {
                out.push(y as f64);
            }
        }
        let tail = &out[500..];
        (tail.iter().map(|y| y * y).sum::<f64>() / tail.len() as f64 * 2.0).sqrt()
    }

    #[test]
    fn passes_the_telephone_band_and_stops_the_upper_half() {
        for f in [100.0, 1000.0, 3000.0, 3400.0] {
            let g = gain(f);
            assert!((g - 1.0).abs() < 0.03, "{f} Hz gain {g}");
        }
        for f in [4700.0, 6000.0, 7500.0] {
            let g = gain(f);
            assert!(g < 0.01, "{f} Hz leaks {g}");
        }
    }
}
