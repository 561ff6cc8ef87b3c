//! Test signals and the measurements the tests make on them.

use std::f64::consts::TAU;

/// `n` samples of a sine at `freq` Hz and peak `amp`, rounded to 16 bits.
pub fn sine(freq: f64, rate: u32, n: usize, amp: f64) -> Vec<i16> {
    sine_at_phase(freq, rate, n, amp, 0.0)
}

/// [`sine`] starting at `phase` radians.
pub fn sine_at_phase(freq: f64, rate: u32, n: usize, amp: f64, phase: f64) -> Vec<i16> {
    (0..n)
        .map(|i| (amp * (TAU * freq * i as f64 / f64::from(rate) + phase).sin()).round() as i16)
        .collect()
}

/// Peak amplitude of the `freq` component of `x` (Goertzel over the whole
/// slice; exact for a tone with a whole number of cycles).
pub fn goertzel_amplitude(x: &[i16], freq: f64, rate: f64) -> f64 {
    let w = TAU * freq / rate;
    let coeff = 2.0 * w.cos();
    let (mut s1, mut s2) = (0.0f64, 0.0f64);
    for &v in x {
        let s0 = f64::from(v) + coeff * s1 - s2;
        s2 = s1;
        s1 = s0;
    }
    let power = s1 * s1 + s2 * s2 - coeff * s1 * s2;
    2.0 * power.max(0.0).sqrt() / x.len() as f64
}

/// Largest absolute difference between neighbouring samples: a click
/// shows up as a step far above what the signal's own slope allows.
pub fn max_step(x: &[i16]) -> i32 {
    x.windows(2)
        .map(|w| (i32::from(w[1]) - i32::from(w[0])).abs())
        .max()
        .unwrap_or(0)
}

/// Root mean square (0 for an empty slice).
pub fn rms(x: &[i16]) -> f64 {
    (x.iter().map(|&s| f64::from(s).powi(2)).sum::<f64>() / x.len().max(1) as f64).sqrt()
}

/// Normalised correlation of `a` and `b` over their common length.
pub fn corr(a: &[i16], b: &[i16]) -> f64 {
    let n = a.len().min(b.len());
    let (a, b) = (&a[..n], &b[..n]);
    let ab: f64 = a
        .iter()
        .zip(b)
        .map(|(&x, &y)| f64::from(x) * f64::from(y))
        .sum();
    let aa: f64 = a.iter().map(|&x| f64::from(x).powi(2)).sum();
    let bb: f64 = b.iter().map(|&y| f64::from(y).powi(2)).sum();
    ab / (aa * bb).sqrt().max(1.0)
}

/// Sign changes (zero counts as positive).
pub fn zero_crossings(x: &[i16]) -> usize {
    x.windows(2).filter(|w| (w[0] < 0) != (w[1] < 0)).count()
}
