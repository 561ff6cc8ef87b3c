//! The 8 ↔ 16 kHz half-band path through the public `Resampler`: the
//! quality bar it must meet for telephony.
//!
//! * passband 0–3.4 kHz flat within 0.1 dB;
//! * images (8 → 16 kHz) and aliases (16 → 8 kHz) that land in the
//!   0–3.4 kHz band at 8 kHz, i.e. that come from 4.6–8 kHz, at least 60 dB
//!   down (the filter is designed for 70);
//! * the reported delay is the delay, to the sample;
//! * real speech survives 8 → 16 → 8 kHz.

mod support;

use hotline_media::resample::{Resampler, frame_len};
use support::signal::{corr, goertzel_amplitude, rms, sine};

const AMP: f64 = 16_000.0;

fn stream(r: &mut Resampler, input: &[i16]) -> Vec<i16> {
    let mut out = Vec::new();
    for frame in input.chunks_exact(r.input_frame_len()) {
        r.process(frame, &mut out).unwrap();
    }
    out
}

/// One second of steady output, after 100 ms for the filter to fill.
fn steady(out: &[i16], rate: u32) -> &[i16] {
    let skip = rate as usize / 10;
    &out[skip..skip + rate as usize]
}

fn db(ratio: f64) -> f64 {
    20.0 * ratio.log10()
}

/// Tones through `from -> to`, 1.2 s each (a whole number of frames).
fn tone_through(freq: f64, from: u32, to: u32) -> Vec<i16> {
    let input = sine(freq, from, 60 * frame_len(from), AMP);
    stream(&mut Resampler::new(from, to).unwrap(), &input)
}

fn passband() -> impl Iterator<Item = f64> {
    (1..=34)
        .map(|k| f64::from(k) * 100.0)
        .chain([50.0, 3_350.0])
}

#[test]
fn passband_is_flat_within_a_tenth_of_a_db() {
    for (from, to) in [(8_000, 16_000), (16_000, 8_000)] {
        let mut worst = 0.0f64;
        for freq in passband() {
            let out = tone_through(freq, from, to);
            let gain = db(goertzel_amplitude(steady(&out, to), freq, f64::from(to)) / AMP);
            worst = worst.max(gain.abs());
        }
        eprintln!("{from}->{to}: passband ripple {worst:.4} dB");
        assert!(worst <= 0.1, "{from}->{to}: passband ripple {worst:.4} dB");
    }
}

#[test]
fn images_of_in_band_tones_are_60_db_down_when_upsampling() {
    // A tone at f Hz at 8 kHz has its first image at 8000 - f after
    // zero-stuffing to 16 kHz; for f up to 3.4 kHz that is 4.6 kHz or more.
    let mut least = f64::INFINITY;
    for freq in passband() {
        let out = tone_through(freq, 8_000, 16_000);
        let y = steady(&out, 16_000);
        let tone = goertzel_amplitude(y, freq, 16_000.0);
        let image = goertzel_amplitude(y, 8_000.0 - freq, 16_000.0);
        let atten = db(tone / image.max(1e-9));
        assert!(atten >= 60.0, "{freq} Hz: image only {atten:.1} dB down");
        least = least.min(atten);
    }
    eprintln!("8000->16000: images at least {least:.1} dB down");
}

#[test]
fn tones_that_would_alias_into_the_band_are_60_db_down_when_downsampling() {
    // From 4.6 to 8 kHz at 16 kHz everything folds into 0-3.4 kHz at 8 kHz.
    // Whatever comes out (alias, rounding, anything) must be 60 dB below
    // the input tone.
    let freqs = (46..80).map(|k| f64::from(k) * 100.0).chain([7_950.0]);
    let mut least = f64::INFINITY;
    for freq in freqs {
        let out = tone_through(freq, 16_000, 8_000);
        let y = steady(&out, 8_000);
        let atten = db(AMP / std::f64::consts::SQRT_2 / rms(y).max(1e-9));
        assert!(atten >= 60.0, "{freq} Hz: only {atten:.1} dB down");
        least = least.min(atten);
    }
    eprintln!("16000->8000: aliases at least {least:.1} dB down");
}

#[test]
fn a_click_comes_out_exactly_at_the_reported_delay() {
    // Upsampling copies each input sample to an even output position, and
    // downsampling passes an even input sample through the centre tap alone,
    // so the delay can be checked to the sample and the value bit for bit.
    let mut up = Resampler::new(8_000, 16_000).unwrap();
    let d = up.delay_samples();
    for at in [0, 159, 160, 161, 300] {
        up.reset();
        let mut input = vec![0i16; 5 * 160];
        input[at] = 12_345;
        let out = stream(&mut up, &input);
        assert_eq!(out[2 * at + d], 12_345, "8->16 click at {at}");
        // Its neighbours are the interpolation, smaller than the click.
        assert!(out[2 * at + d - 1].abs() < 12_345 && out[2 * at + d + 1].abs() < 12_345);
    }
    let mut down = Resampler::new(16_000, 8_000).unwrap();
    let d = down.delay_samples();
    for at in [0, 318, 320, 322, 600] {
        down.reset();
        let mut input = vec![0i16; 5 * 320];
        input[at] = 12_346;
        let out = stream(&mut down, &input);
        for (n, &y) in out.iter().enumerate() {
            // Only the centre tap lands on an even sample.
            let want = if n == at / 2 + d { 6_173 } else { 0 };
            assert_eq!(y, want, "16->8 click at {at}, output {n}");
        }
    }
}

#[test]
fn flush_then_reuse_matches_a_fresh_resampler() {
    let input: Vec<i16> = sine(1_234.0, 8_000, 3 * 160, AMP);
    let mut r = Resampler::new(8_000, 16_000).unwrap();
    let mut out = stream(&mut r, &input);
    r.flush(&mut out).unwrap();
    assert_eq!(out.len(), 4 * 320);
    let again = stream(&mut r, &input);
    assert_eq!(
        again,
        stream(&mut Resampler::new(8_000, 16_000).unwrap(), &input)
    );
}

#[test]
fn speech_survives_a_round_trip() {
    for voice in ["en-us", "en-us+f3"] {
        let mut speech = support::corpus(voice, 8_000);
        speech.truncate(speech.len() / 160 * 160);
        let mut up = Resampler::new(8_000, 16_000).unwrap();
        let mut down = Resampler::new(16_000, 8_000).unwrap();
        let wide = stream(&mut up, &speech);
        let back = stream(&mut down, &wide);
        assert_eq!(back.len(), speech.len());
        // The two delays are whole 8 kHz samples, so the round trip lines
        // up exactly.
        let delay = (up.delay() + down.delay()).as_micros() as usize / 125;
        assert_eq!(delay, 31);
        let c = corr(&speech[..speech.len() - delay], &back[delay..]);
        eprintln!("{voice}: round trip correlates {c:.5}");
        assert!(c > 0.99, "{voice}: round trip correlates {c:.5}");
    }
}
