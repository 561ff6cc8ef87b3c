//! The delay a `Resampler` reports must be the delay it adds: a jitter
//! buffer, the recorder and echo handling all line streams up by it.
//!
//! Measured two ways for every rate pair: where a click comes out
//! (cross-correlation with the band-limited click, interpolated to a fraction
//! of a sample) and the phase lag of in-band sines, which gives the group
//! delay of a linear-phase filter to a tiny fraction of a sample.

use std::time::Duration;

use hotline_media::resample::{Resampler, frame_len};

const RATES: [u32; 4] = [8_000, 16_000, 24_000, 48_000];

fn pairs() -> Vec<(u32, u32)> {
    let mut v = Vec::new();
    for &a in &RATES {
        for &b in &RATES {
            if a != b {
                v.push((a, b));
            }
        }
    }
    for b in [8_000, 16_000, 48_000] {
        v.push((22_050, b));
    }
    v
}

fn stream(r: &mut Resampler, input: &[i16]) -> Vec<i16> {
    let mut out = Vec::new();
    for frame in input.chunks_exact(r.input_frame_len()) {
        r.process(frame, &mut out).unwrap();
    }
    out
}

/// Output position (fractional, in output samples) of the peak of the
/// response to a click, by parabolic interpolation around the largest sample.
fn peak_position(y: &[i16]) -> f64 {
    let (i, _) = y
        .iter()
        .enumerate()
        .max_by_key(|(_, v)| i32::from(**v).abs())
        .unwrap();
    let (a, b, c) = (f64::from(y[i - 1]), f64::from(y[i]), f64::from(y[i + 1]));
    i as f64 + 0.5 * (a - c) / (a - 2.0 * b + c)
}

/// Measures the delay (in output samples) with a click at input sample
/// `at`: the response is the filter's impulse response, symmetric about its
/// centre, so its interpolated peak is where the click lands.
fn click_delay(from: u32, to: u32, at: usize) -> f64 {
    let mut r = Resampler::new(from, to).unwrap();
    let mut input = vec![0i16; 20 * frame_len(from)];
    input[at] = 20_000;
    let out = stream(&mut r, &input);
    peak_position(&out) - at as f64 * f64::from(to) / f64::from(from)
}

/// Measures the delay (in output samples) from the phase lag of a sine at
/// `freq`, disambiguated by a coarse estimate.
fn phase_delay(from: u32, to: u32, freq: f64, coarse: f64) -> f64 {
    let mut r = Resampler::new(from, to).unwrap();
    let n_in = 100 * frame_len(from);
    let w_in = std::f64::consts::TAU * freq / f64::from(from);
    let input: Vec<i16> = (0..n_in)
        .map(|n| (16_000.0 * (w_in * n as f64).sin()).round() as i16)
        .collect();
    let out = stream(&mut r, &input);
    // Fit a·sin + b·cos over one second of steady output: phase of the
    // output sine relative to the input one.
    let w = std::f64::consts::TAU * freq / f64::from(to);
    let seg = 10 * frame_len(to)..10 * frame_len(to) + to as usize;
    let (mut s, mut c) = (0.0, 0.0);
    for i in seg {
        s += f64::from(out[i]) * (w * i as f64).sin();
        c += f64::from(out[i]) * (w * i as f64).cos();
    }
    // out[i] = A sin(w (i - d)) = A (sin(wi) cos(wd) - cos(wi) sin(wd)).
    let wd = (-c).atan2(s);
    let period = f64::from(to) / freq;
    let d = wd / w;
    d + ((coarse - d) / period).round() * period
}

#[test]
fn reported_delay_matches_the_measured_delay_for_every_pair() {
    for (from, to) in pairs() {
        let r = Resampler::new(from, to).unwrap();
        let reported = r.delay().as_secs_f64() * f64::from(to);
        assert_eq!(r.delay_samples(), reported.round() as usize);

        // Clicks at several positions in the frame, including the first and
        // last sample, so block edges are covered.
        let n = frame_len(from);
        for at in [5 * n, 5 * n + 1, 5 * n + n / 3, 6 * n - 1] {
            let measured = click_delay(from, to, at);
            assert!(
                (measured - reported).abs() < 0.25,
                "{from}->{to}: click at {at} delayed {measured:.3} output samples, reported {reported:.3}"
            );
            assert!(
                (measured - r.delay_samples() as f64).abs() <= 1.0,
                "{from}->{to}: click delayed {measured:.3}, delay_samples() {}",
                r.delay_samples()
            );
        }

        // In-band sines: the phase lag is the group delay.
        for freq in [300.0, 1_000.0, 2_500.0] {
            let measured = phase_delay(from, to, freq, reported);
            assert!(
                (measured - reported).abs() < 0.01,
                "{from}->{to}: {freq} Hz delayed {measured:.4} output samples, reported {reported:.4}"
            );
        }
    }
}

#[test]
fn delay_is_about_half_a_frame() {
    // The rubato FFT path: one block per frame, centred. 8 <-> 16 kHz use
    // the half-band filter instead (next test).
    for (from, to) in pairs() {
        if matches!((from, to), (8_000, 16_000) | (16_000, 8_000)) {
            continue;
        }
        let d = Resampler::new(from, to).unwrap().delay();
        assert!(
            d > Duration::from_micros(9_900) && d <= Duration::from_millis(10),
            "{from}->{to}: {d:?}"
        );
    }
}

#[test]
fn half_band_delay_is_a_few_milliseconds() {
    // 31 taps each side of the centre at 16 kHz, phased so the delay is a
    // whole number of samples at 8 and at 16 kHz.
    assert_eq!(
        Resampler::new(8_000, 16_000).unwrap().delay(),
        Duration::from_micros(2_000)
    );
    assert_eq!(
        Resampler::new(16_000, 8_000).unwrap().delay(),
        Duration::from_micros(1_875)
    );
}

#[test]
fn flush_releases_the_delayed_tail() {
    // A click in the last input sample is still inside the filter when the
    // input ends; one flush frame must bring it out, at the reported delay.
    for (from, to) in pairs() {
        let mut r = Resampler::new(from, to).unwrap();
        let n = frame_len(from);
        let mut input = vec![0i16; 5 * n];
        let at = 5 * n - 1;
        input[at] = 20_000;
        let mut out = stream(&mut r, &input);
        let energy_before: i64 = out.iter().map(|&v| i64::from(v).pow(2)).sum();
        r.flush(&mut out).unwrap();
        assert_eq!(out.len(), 6 * frame_len(to), "{from}->{to}");
        let energy_after: i64 = out.iter().map(|&v| i64::from(v).pow(2)).sum();
        assert!(
            energy_after > 4 * energy_before.max(1),
            "{from}->{to}: flush released nothing"
        );
        let expect =
            at as f64 * f64::from(to) / f64::from(from) + r.delay().as_secs_f64() * f64::from(to);
        let got = peak_position(&out);
        assert!(
            (got - expect).abs() < 0.25,
            "{from}->{to}: peak at {got:.2}, expected {expect:.2}"
        );

        // After a flush the resampler starts clean: silence in, silence out.
        let mut after = Vec::new();
        r.process(&vec![0; n], &mut after).unwrap();
        assert!(
            after.iter().all(|&v| v == 0),
            "{from}->{to}: old audio after flush"
        );
    }
}

#[test]
fn reset_mid_stream_drops_buffered_audio_and_keeps_alignment() {
    for (from, to) in pairs() {
        let n = frame_len(from);
        let mut r = Resampler::new(from, to).unwrap();
        let loud = vec![12_000i16; n];
        let mut out = Vec::new();
        r.process(&loud, &mut out).unwrap();
        r.reset();
        // Same click as on a fresh resampler: same output, bit for bit.
        let mut input = vec![0i16; 4 * n];
        input[n + 7] = 20_000;
        let after_reset = stream(&mut r, &input);
        let fresh = stream(&mut Resampler::new(from, to).unwrap(), &input);
        assert_eq!(after_reset, fresh, "{from}->{to}");
    }
}
