//! Checks on received audio: level, non-silence, duration, and whether it
//! is the audio that was sent (envelope cross-correlation).

use std::path::Path;

/// Mono samples and their rate, from a WAV file (via `hotline_media::wav`).
pub fn read_wav(path: &Path) -> anyhow::Result<(u32, Vec<i16>)> {
    super::media::read_pcm(path)
}

/// RMS level relative to full scale (0.0–1.0). Empty input is 0.
pub fn rms(samples: &[i16]) -> f64 {
    if samples.is_empty() {
        return 0.0;
    }
    let sum: f64 = samples.iter().map(|&s| f64::from(s) * f64::from(s)).sum();
    (sum / samples.len() as f64).sqrt() / 32768.0
}

/// Speech and tones sit well above 0.01 RMS; silence and comfort noise below.
pub const NON_SILENT_RMS: f64 = 0.01;

/// Is the audio louder than [`NON_SILENT_RMS`]?
pub fn is_non_silent(samples: &[i16]) -> bool {
    rms(samples) > NON_SILENT_RMS
}

/// Seconds of audio.
pub fn duration_secs(samples: &[i16], rate: u32) -> f64 {
    samples.len() as f64 / f64::from(rate)
}

/// Fraction of 20 ms windows louder than [`NON_SILENT_RMS`].
pub fn active_fraction(samples: &[i16], rate: u32) -> f64 {
    let w = (rate / 50).max(1) as usize;
    let windows: Vec<&[i16]> = samples.chunks(w).collect();
    if windows.is_empty() {
        return 0.0;
    }
    windows.iter().filter(|c| is_non_silent(c)).count() as f64 / windows.len() as f64
}

/// RMS envelope in 10 ms windows: codecs, resampling and small clock
/// drift change samples but keep the envelope, so envelopes are what
/// [`correlate`] compares.
pub fn envelope(samples: &[i16], rate: u32) -> Vec<f64> {
    let w = (rate / 100).max(1) as usize;
    samples.chunks(w).map(rms).collect()
}

/// Best alignment of `received` against `sent`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Correlation {
    /// Pearson correlation of the envelopes at the best lag (−1..1).
    pub coefficient: f64,
    /// How much later `received` is than `sent`, in ms (negative = earlier).
    pub lag_ms: i64,
}

/// Normalised cross-correlation of the 10 ms envelopes of two signals over
/// lags up to ±`max_lag_ms`, with at least half of the shorter envelope
/// overlapping. Speech compared with itself through G.711 scores > 0.9;
/// unrelated speech or noise scores far lower.
pub fn correlate(
    sent: &[i16],
    sent_rate: u32,
    received: &[i16],
    received_rate: u32,
    max_lag_ms: u32,
) -> Correlation {
    let a = envelope(sent, sent_rate);
    let b = envelope(received, received_rate);
    let max_lag = (max_lag_ms / 10) as i64;
    let min_overlap = (a.len().min(b.len()) / 2).max(1);
    let mut best = Correlation {
        coefficient: f64::MIN,
        lag_ms: 0,
    };
    for lag in -max_lag..=max_lag {
        // received[i + lag] against sent[i]
        let pairs: Vec<(f64, f64)> = (0..a.len() as i64)
            .filter_map(|i| {
                let j = i + lag;
                (j >= 0 && (j as usize) < b.len()).then(|| (a[i as usize], b[j as usize]))
            })
            .collect();
        if pairs.len() < min_overlap {
            continue;
        }
        let c = pearson(&pairs);
        if c > best.coefficient {
            best = Correlation {
                coefficient: c,
                lag_ms: lag * 10,
            };
        }
    }
    if best.coefficient == f64::MIN {
        best.coefficient = 0.0;
    }
    best
}

fn pearson(pairs: &[(f64, f64)]) -> f64 {
    let n = pairs.len() as f64;
    let (ma, mb) = pairs
        .iter()
        .fold((0.0, 0.0), |(x, y), (a, b)| (x + a, y + b));
    let (ma, mb) = (ma / n, mb / n);
    let (mut cov, mut va, mut vb) = (0.0, 0.0, 0.0);
    for (a, b) in pairs {
        cov += (a - ma) * (b - mb);
        va += (a - ma) * (a - ma);
        vb += (b - mb) * (b - mb);
    }
    if va <= 0.0 || vb <= 0.0 {
        0.0
    } else {
        cov / (va * vb).sqrt()
    }
}
