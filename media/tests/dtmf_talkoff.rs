//! Talk-off (no digits from speech or music) and talk-down (digits still
//! found under speech) of the DTMF detector, on real synthesized speech:
//! every voice of `support::VOICES` speaking the whole `support::CORPUS`
//! (about ten minutes in all), at 8 kHz and 16 kHz.

mod support;

use support::corpus;

use hotline_media::dtmf::{Digit, DtmfDetector, DtmfEvent, DtmfGenerator, ToneParams};
use hotline_media::level::{DBM0_PEAK, dbm0_to_peak};

const RATES: [u32; 2] = [8000, 16000];

/// RMS of a 0 dBm0 sine.
const DBM0_RMS: f64 = DBM0_PEAK / std::f64::consts::SQRT_2;

/// Digits started by the detector over `x`, fed in 20 ms frames, with their
/// onset positions.
fn detect(rate: u32, x: &[i16]) -> Vec<(Digit, u64)> {
    let mut det = DtmfDetector::new(rate).unwrap();
    let mut ev = Vec::with_capacity(16);
    let mut starts = Vec::new();
    for frame in x.chunks(rate as usize / 50) {
        det.process(frame, &mut ev);
        for e in ev.drain(..) {
            if let DtmfEvent::DigitStart { digit, at } = e {
                starts.push((digit, at));
            }
        }
    }
    starts
}

/// RMS over the samples louder than −50 dBm0 (the "active" level, so that
/// pauses between sentences do not lower it).
fn active_rms(x: &[i16]) -> f64 {
    let floor = dbm0_to_peak(-50.0);
    let (mut sum, mut n) = (0.0, 0usize);
    for &s in x {
        let v = f64::from(s);
        if v.abs() > floor {
            sum += v * v;
            n += 1;
        }
    }
    (sum / n.max(1) as f64).sqrt()
}

/// `x` scaled so its active level is `dbm0`, saturating.
fn at_level(x: &[i16], dbm0: f64) -> Vec<i16> {
    let g = DBM0_RMS * 10f64.powf(dbm0 / 20.0) / active_rms(x);
    x.iter()
        .map(|&s| (f64::from(s) * g).round().clamp(-32768.0, 32767.0) as i16)
        .collect()
}

fn add_noise(x: &mut [i16], rms: f64, seed: u64) {
    let mut n = support::Noise::new(seed);
    for s in x {
        *s = (f64::from(*s) + rms * n.gaussian())
            .round()
            .clamp(-32768.0, 32767.0) as i16;
    }
}

#[test]
fn no_digits_from_speech() {
    let mut total_s = 0.0;
    let mut false_digits = Vec::new();
    for rate in RATES {
        for (i, voice) in support::VOICES.iter().enumerate() {
            let speech = corpus(voice, rate);
            total_s += speech.len() as f64 / f64::from(rate);
            // As synthesized (peaks near full scale), at a typical −20 dBm0
            // active level, hot at −8 dBm0 (clipping a little), and with
            // line noise 30 dB below the speech.
            let mut noisy = at_level(&speech, -20.0);
            add_noise(
                &mut noisy,
                DBM0_RMS * 10f64.powf(-50.0 / 20.0),
                7 + i as u64,
            );
            for (what, x) in [
                ("as is", speech.clone()),
                ("-20 dBm0", at_level(&speech, -20.0)),
                ("-8 dBm0", at_level(&speech, -8.0)),
                ("-20 dBm0 + noise", noisy),
            ] {
                let got = detect(rate, &x);
                if !got.is_empty() {
                    false_digits.push(format!("{rate} Hz {voice} {what}: {got:?}"));
                }
            }
        }
    }
    println!(
        "talk-off: {:.0} s of speech per condition (4 conditions), {} false detections",
        total_s,
        false_digits.len()
    );
    assert!(total_s > 500.0, "corpus unexpectedly short: {total_s} s");
    assert!(
        false_digits.is_empty(),
        "false digits:\n{}",
        false_digits.join("\n")
    );
}

/// A deterministic "music" signal: two- and three-note chords on the
/// equal-tempered scale with harmonic-rich timbres (1/k harmonics) and
/// decaying envelopes, plus some pure-sine flute-like single notes.
fn music(rate: u32, seconds: f64, seed: u64) -> Vec<i16> {
    let mut rng = support::Noise::new(seed);
    let n = (seconds * f64::from(rate)) as usize;
    let mut out = vec![0f64; n];
    let mut t = 0usize;
    while t < n {
        let len = ((0.12 + 0.3 * (rng.uniform() + 1.0) / 2.0) * f64::from(rate)) as usize;
        let voices = 1 + ((rng.uniform() + 1.0) * 1.5) as usize;
        let harmonics = if rng.uniform() > 0.0 { 8 } else { 1 };
        for _ in 0..voices {
            let semitone = (rng.uniform() * 18.0).round();
            let f0 = 440.0 * 2f64.powf(semitone / 12.0);
            for k in 1..=harmonics {
                let f = f0 * k as f64;
                if f >= f64::from(rate) / 2.0 {
                    break;
                }
                let a = 4000.0 / k as f64;
                for i in 0..len.min(n - t) {
                    let env = (-(i as f64) / (0.2 * f64::from(rate))).exp();
                    out[t + i] +=
                        a * env * (std::f64::consts::TAU * f * i as f64 / f64::from(rate)).sin();
                }
            }
        }
        t += len;
    }
    out.iter()
        .map(|v| v.round().clamp(-32768.0, 32767.0) as i16)
        .collect()
}

#[test]
fn no_digits_from_harmonic_music() {
    for rate in RATES {
        let x = music(rate, 120.0, 42);
        let got = detect(rate, &x);
        println!("music {rate} Hz: {} false digits in 120 s", got.len());
        assert!(got.is_empty(), "{rate} Hz: {got:?}");
    }
}

/// Digits 80 ms on, keyed every 600 ms over speech (a caller keying while
/// the agent talks, echo included), for several digit-to-speech ratios.
/// Reports the fraction found at the right place and fails on any wrong
/// digit.
#[test]
fn digits_over_speech() {
    // (speech active level, digit level per tone, least fraction found)
    for (speech_dbm0, digit_dbm0, min_frac) in [
        (-20.0, -10.0, 0.97),
        (-15.0, -15.0, 0.75),
        (-15.0, -20.0, 0.5),
    ] {
        for rate in RATES {
            let (mut keyed, mut found, mut wrong) = (0usize, 0usize, 0usize);
            for (i, voice) in support::VOICES.iter().enumerate() {
                let mut x = at_level(&corpus(voice, rate), speech_dbm0);
                let every = rate as usize * 6 / 10;
                let on = rate as usize * 8 / 100;
                let mut placed = Vec::new();
                let mut pos = every / 2;
                let mut k = i;
                while pos + on < x.len() {
                    let d = Digit::ALL[k % 16];
                    k += 5;
                    let p = ToneParams::level(digit_dbm0);
                    let mut g = DtmfGenerator::new(rate, d, p).unwrap();
                    g.add_to(&mut x[pos..pos + on]);
                    placed.push((d, pos as u64));
                    pos += every;
                }
                let got = detect(rate, &x);
                keyed += placed.len();
                // Speech over the first milliseconds of a tone can delay its
                // confirmation; a start anywhere within the tone counts.
                let tol = u64::from(rate) / 50; // 20 ms
                for &(d, at) in &got {
                    match placed
                        .iter()
                        .find(|p| at + tol >= p.1 && at <= p.1 + on as u64)
                    {
                        Some(p) if p.0 == d => found += 1,
                        other => {
                            wrong += 1;
                            println!("{rate} Hz {voice}: got {d} at {at}, keyed {other:?}");
                        }
                    }
                }
            }
            let frac = found as f64 / keyed as f64;
            println!(
                "talk-down {rate} Hz, speech {speech_dbm0} dBm0, digits {digit_dbm0} dBm0/tone: \
                 {found}/{keyed} found ({:.1} %), {wrong} wrong or extra",
                frac * 100.0
            );
            assert_eq!(wrong, 0, "{rate} Hz: wrong digits over speech");
            assert!(
                frac >= min_frac,
                "{rate} Hz: only {:.1} % found",
                frac * 100.0
            );
        }
    }
}
