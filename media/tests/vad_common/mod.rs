//! Test signals for the VAD tests: noises, tones, DTMF, speech placement.
//! Included by the `vad_*` tests as a module.
#![allow(dead_code, unused_imports)]

#[path = "../support/mod.rs"]
mod support;

pub use support::{CORPUS, Noise, VOICES, corpus, speech};

use hotline_media::dtmf::Digit;
use hotline_media::vad::{Vad, VadConfig, VadEvent, VadFrame};
use std::f64::consts::PI;
use std::time::Duration;

pub use hotline_media::level::DBM0_PEAK;
use hotline_media::level::dbm0_to_peak;

/// RMS of a signal at `dbm0` (a sine at that level has this RMS).
pub fn rms_for(dbm0: f64) -> f64 {
    DBM0_PEAK / 2f64.sqrt() * 10f64.powf(dbm0 / 20.0)
}

pub fn rms(x: &[f64]) -> f64 {
    (x.iter().map(|v| v * v).sum::<f64>() / x.len().max(1) as f64).sqrt()
}

fn scaled(mut x: Vec<f64>, dbm0: f64) -> Vec<f64> {
    let g = rms_for(dbm0) / rms(&x).max(1e-12);
    x.iter_mut().for_each(|v| *v *= g);
    x
}

pub fn white(seed: u64, n: usize, dbm0: f64) -> Vec<f64> {
    let mut g = Noise::new(seed);
    scaled((0..n).map(|_| g.gaussian()).collect(), dbm0)
}

/// Pink-ish noise: three one-pole low-passes of white noise summed (−3 dB
/// per octave over roughly 100–3000 Hz), like hiss on an analogue line.
pub fn pink(seed: u64, n: usize, rate: u32, dbm0: f64) -> Vec<f64> {
    let mut g = Noise::new(seed);
    let poles: Vec<f64> = [100.0, 600.0, 3000.0]
        .iter()
        .map(|f| (-2.0 * PI * f / rate as f64).exp())
        .collect();
    let mut st = [0.0f64; 3];
    let x = (0..n)
        .map(|_| {
            let w = g.gaussian();
            let mut s = 0.0;
            for (i, a) in poles.iter().enumerate() {
                st[i] = a * st[i] + (1.0 - a) * w;
                s += st[i] * (1.0 / (1.0 - a)).sqrt();
            }
            s
        })
        .collect();
    scaled(x, dbm0)
}

/// Brown noise (−6 dB per octave above ~20 Hz): leaky integrated white.
pub fn brown(seed: u64, n: usize, rate: u32, dbm0: f64) -> Vec<f64> {
    let mut g = Noise::new(seed);
    let a = (-2.0 * PI * 20.0 / rate as f64).exp();
    let mut s = 0.0;
    scaled(
        (0..n)
            .map(|_| {
                s = a * s + g.gaussian();
                s
            })
            .collect(),
        dbm0,
    )
}

/// Mains hum: `mains` Hz and its harmonics up to 1 kHz, odd ones strongest
/// (a saturating transformer), at `dbm0` total.
pub fn hum(n: usize, rate: u32, mains: f64, dbm0: f64) -> Vec<f64> {
    let x = (0..n)
        .map(|i| {
            let t = i as f64 / rate as f64;
            (1..=(1000.0 / mains) as usize)
                .map(|h| {
                    let a = if h % 2 == 1 {
                        1.0 / h as f64
                    } else {
                        0.3 / h as f64
                    };
                    a * (2.0 * PI * mains * h as f64 * t + h as f64).sin()
                })
                .sum::<f64>()
        })
        .collect();
    scaled(x, dbm0)
}

/// Comfort noise as an RFC 3389 receiver plays it: low-level noise shaped by
/// a short all-pole filter (here a fixed 2-pole spectral tilt), whose level
/// is updated by a SID frame every ~400 ms, wandering ±3 dB around
/// `base_dbm0`, and interpolated over 20 ms.
pub fn comfort_noise(seed: u64, n: usize, rate: u32, base_dbm0: f64) -> Vec<f64> {
    let mut g = Noise::new(seed);
    let mut lvl = Noise::new(seed ^ 0x5eed);
    let (a1, a2) = (1.2, -0.45);
    let (mut y1, mut y2) = (0.0, 0.0);
    let shaped: Vec<f64> = (0..n)
        .map(|_| {
            let y = g.gaussian() + a1 * y1 + a2 * y2;
            y2 = y1;
            y1 = y;
            y
        })
        .collect();
    let unit = rms(&shaped);
    let sid = rate as usize * 2 / 5;
    let ramp = rate as usize / 50;
    let mut cur = rms_for(base_dbm0);
    let mut target = cur;
    shaped
        .iter()
        .enumerate()
        .map(|(i, v)| {
            if i % sid == 0 {
                target = rms_for(base_dbm0 + 3.0 * lvl.uniform());
            }
            let step = (target - cur) / ramp as f64;
            if (target - cur).abs() > step.abs() {
                cur += step;
            } else {
                cur = target;
            }
            v / unit * cur
        })
        .collect()
}

/// A sum of sines, each at `dbm0`.
pub fn tones(n: usize, rate: u32, freqs: &[f64], dbm0: f64) -> Vec<f64> {
    let a = dbm0_to_peak(dbm0);
    (0..n)
        .map(|i| {
            let t = i as f64 / rate as f64;
            freqs.iter().map(|f| a * (2.0 * PI * f * t).sin()).sum()
        })
        .collect()
}

/// The DTMF pair of a digit (Q.23).
pub fn dtmf_pair(digit: char) -> [f64; 2] {
    let d = Digit::from_char(digit).unwrap_or_else(|| panic!("not a DTMF digit: {digit}"));
    let (lo, hi) = d.frequencies();
    [lo, hi]
}

/// All 16 digits, over and over, with tone and gap lengths cycling through
/// 50–200 ms and levels through −3…−24 dBm0 per tone, for `secs` seconds.
/// Edges are hard (worst case for spectral leakage).
pub fn dtmf_sequence(rate: u32, secs: f64) -> Vec<f64> {
    let digits: Vec<char> = "123A456B789C*0#D".chars().collect();
    let lens = [50.0, 80.0, 120.0, 200.0, 65.0, 150.0];
    let gaps = [50.0, 100.0, 200.0, 70.0];
    let levels = [-3.0, -6.0, -10.0, -14.0, -18.0, -21.0, -24.0];
    let total = (secs * rate as f64) as usize;
    let mut out = Vec::with_capacity(total);
    let mut i = 0;
    while out.len() < total {
        let d = digits[i % digits.len()];
        let len = (lens[i % lens.len()] * rate as f64 / 1000.0) as usize;
        let gap = (gaps[i % gaps.len()] * rate as f64 / 1000.0) as usize;
        // Twist: the low tone 2 dB below the high one, as Q.24 allows.
        let lvl = levels[i % levels.len()];
        let [lo, hi] = dtmf_pair(d);
        out.extend(tones(len, rate, &[lo], lvl - 2.0));
        let start = out.len() - len;
        for (j, v) in tones(len, rate, &[hi], lvl).into_iter().enumerate() {
            out[start + j] += v;
        }
        out.extend(std::iter::repeat_n(0.0, gap));
        i += 1;
    }
    out.truncate(total);
    out
}

/// Adds `b` into `a` starting at `at`.
pub fn mix_into(a: &mut [f64], b: &[f64], at: usize) {
    for (x, y) in a[at..].iter_mut().zip(b) {
        *x += y;
    }
}

pub fn to_i16(x: &[f64]) -> Vec<i16> {
    x.iter()
        .map(|v| v.round().clamp(-32768.0, 32767.0) as i16)
        .collect()
}

/// Active speech region of a clean utterance: first and last sample of the
/// 5 ms blocks within 35 dB of the loudest block (so leading/trailing
/// silence espeak adds does not count).
pub fn active_region(x: &[i16], rate: u32) -> (usize, usize) {
    let b = rate as usize / 200;
    let e: Vec<f64> = x
        .chunks(b)
        .map(|c| c.iter().map(|&v| (v as f64).powi(2)).sum::<f64>() / c.len() as f64)
        .collect();
    let max = e.iter().cloned().fold(0.0, f64::max);
    let thr = max * 10f64.powf(-3.5);
    let first = e.iter().position(|&v| v > thr).unwrap();
    let last = e.iter().rposition(|&v| v > thr).unwrap();
    (first * b, ((last + 1) * b).min(x.len()))
}

/// Active speech level (mean power over the 5 ms blocks within 30 dB of the
/// loudest), as an RMS value; a simplified ITU-T P.56.
pub fn active_rms(x: &[f64], rate: u32) -> f64 {
    let b = rate as usize / 200;
    let e: Vec<f64> = x
        .chunks(b)
        .map(|c| c.iter().map(|v| v * v).sum::<f64>() / c.len() as f64)
        .collect();
    let max = e.iter().cloned().fold(0.0, f64::max);
    let act: Vec<f64> = e.into_iter().filter(|&v| v > max * 1e-3).collect();
    (act.iter().sum::<f64>() / act.len() as f64).sqrt()
}

/// Speech scaled to an active level of `dbm0`.
pub fn speech_at(x: &[i16], rate: u32, dbm0: f64) -> Vec<f64> {
    let f: Vec<f64> = x.iter().map(|&v| v as f64).collect();
    let g = rms_for(dbm0) / active_rms(&f, rate);
    f.iter().map(|v| v * g).collect()
}

/// Runs a whole signal through a fresh detector in chunks of `chunk`
/// samples (any size), returning frames and events, with the end of stream
/// closed by `finish`.
pub fn run(cfg: VadConfig, x: &[i16], chunk: usize) -> (Vec<VadFrame>, Vec<VadEvent>) {
    let mut vad = Vad::new(cfg).unwrap();
    let mut frames = Vec::new();
    let mut events = Vec::new();
    for c in x.chunks(chunk.max(1)) {
        vad.process(c, &mut frames, &mut events);
    }
    events.extend(vad.finish());
    (frames, events)
}

pub fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

pub fn starts(events: &[VadEvent]) -> Vec<&VadEvent> {
    events.iter().filter(|e| e.is_start()).collect()
}

pub fn secs(rate: u32, s: f64) -> usize {
    (s * rate as f64) as usize
}
