//! Long stretches of what a phone line carries besides speech — hiss, line
//! noise that changes level, comfort noise, hum, DTMF, test tones and
//! ringback — never start an utterance.

#[path = "vad_common/mod.rs"]
mod signals;

use hotline_media::vad::{Vad, VadConfig, VadError, VadEvent};
use signals::*;

const LONG_S: f64 = 32.0;

/// Runs `x` through every rate/frame combination it was built for and
/// returns the events (8 kHz signals are only run at 8 kHz and vice versa).
fn events(x: &[f64], rate: u32, frame_ms: u32) -> Vec<VadEvent> {
    run(VadConfig::new(rate, frame_ms), &to_i16(x), 333).1
}

fn assert_silent(label: &str, x: &[f64], rate: u32) {
    for frame_ms in [10, 20] {
        let e = events(x, rate, frame_ms);
        assert!(e.is_empty(), "{label} @ {rate} Hz, {frame_ms} ms: {e:?}");
    }
}

#[test]
fn white_noise_at_any_level() {
    for &rate in &[8000, 16000] {
        let n = secs(rate, LONG_S);
        for (i, level) in [-60.0, -45.0, -30.0, -20.0].into_iter().enumerate() {
            assert_silent(
                &format!("white {level} dBm0"),
                &white(i as u64 + 1, n, level),
                rate,
            );
        }
    }
}

#[test]
fn line_noise_that_steps_up_and_down_by_10_to_15_db() {
    // Pink and brown hiss alternating between a quiet and a loud level every
    // 4 s (+15, then +10 dB). The floor needs up to one minimum-search window
    // (1.6 s) to climb after a step up; the spectral-shape test alone keeps
    // the detector quiet meanwhile, so no event is allowed anywhere, not only
    // after the adaptation time.
    for &rate in &[8000, 16000] {
        let n = secs(rate, LONG_S);
        let seg = secs(rate, 4.0);
        for (name, quiet, loud) in [
            ("pink", pink(3, n, rate, -55.0), pink(4, n, rate, -40.0)),
            ("brown", brown(5, n, rate, -50.0), brown(6, n, rate, -40.0)),
            ("white", white(7, n, -60.0), white(8, n, -45.0)),
        ] {
            let x: Vec<f64> = (0..n)
                .map(|i| {
                    if (i / seg).is_multiple_of(2) {
                        quiet[i]
                    } else {
                        loud[i]
                    }
                })
                .collect();
            assert_silent(&format!("{name} steps"), &x, rate);
        }
    }
}

#[test]
fn comfort_noise_from_minus_60_to_minus_40_dbm0() {
    for &rate in &[8000, 16000] {
        let n = secs(rate, LONG_S);
        for (i, level) in [-60.0, -50.0, -40.0].into_iter().enumerate() {
            assert_silent(
                &format!("comfort noise {level} dBm0"),
                &comfort_noise(i as u64 + 11, n, rate, level),
                rate,
            );
        }
        // Comfort noise that alternates with silence (a DTX stream whose
        // SID frames start and stop), levels stepping by ±3 dB.
        let mut x = comfort_noise(21, n, rate, -45.0);
        let seg = secs(rate, 2.5);
        for (i, v) in x.iter_mut().enumerate() {
            if (i / seg) % 3 == 2 {
                *v *= 0.05;
            }
        }
        assert_silent("gated comfort noise", &x, rate);
    }
}

#[test]
fn mains_hum_50_and_60_hz_with_harmonics() {
    for &rate in &[8000, 16000] {
        let n = secs(rate, LONG_S);
        for mains in [50.0, 60.0] {
            for level in [-40.0, -25.0] {
                let mut x = hum(n, rate, mains, level);
                mix_into(&mut x, &white(31, n, -65.0), 0);
                assert_silent(&format!("{mains} Hz hum at {level}"), &x, rate);
            }
            // Hum that comes and goes (a bad ground switching in).
            let mut x = hum(n, rate, mains, -30.0);
            let seg = secs(rate, 3.0);
            for (i, v) in x.iter_mut().enumerate() {
                if (i / seg) % 2 == 1 {
                    *v = 0.0;
                }
            }
            mix_into(&mut x, &white(32, n, -65.0), 0);
            assert_silent(&format!("{mains} Hz hum switching"), &x, rate);
        }
    }
}

#[test]
fn dtmf_digit_sequences() {
    for &rate in &[8000, 16000] {
        let n = secs(rate, LONG_S);
        let mut x = dtmf_sequence(rate, LONG_S);
        mix_into(&mut x, &white(41, n, -65.0), 0);
        assert_silent("dtmf over idle noise", &x, rate);
        // The same keys over line noise 30 dB below the tones' weakest.
        let mut x = dtmf_sequence(rate, LONG_S);
        mix_into(&mut x, &pink(42, n, rate, -55.0), 0);
        assert_silent("dtmf over line noise", &x, rate);
    }
}

#[test]
fn test_tone_and_ringback() {
    for &rate in &[8000, 16000] {
        let n = secs(rate, LONG_S);
        let idle = white(51, n, -65.0);
        // Continuous 1004 Hz digital milliwatt and a 1 kHz tone at −10 dBm0.
        for (f, level) in [(1004.0, 0.0), (1000.0, -10.0)] {
            let mut x = tones(n, rate, &[f], level);
            mix_into(&mut x, &idle, 0);
            assert_silent(&format!("{f} Hz at {level}"), &x, rate);
        }
        // 1 kHz bursts: 1 s on, 1 s off.
        let mut x = tones(n, rate, &[1000.0], -10.0);
        let s = secs(rate, 1.0);
        for (i, v) in x.iter_mut().enumerate() {
            if (i / s) % 2 == 1 {
                *v = 0.0;
            }
        }
        mix_into(&mut x, &idle, 0);
        assert_silent("1 kHz bursts", &x, rate);
        // North American ringback: 440 + 480 Hz at −19 dBm0, 2 s on, 4 s
        // off; and the UK cadence 400 + 450 Hz, 0.4 on 0.2 off 0.4 on 2 off.
        let mut x = tones(n, rate, &[440.0, 480.0], -19.0);
        let s = secs(rate, 2.0);
        for (i, v) in x.iter_mut().enumerate() {
            if !(i / s).is_multiple_of(3) {
                *v = 0.0;
            }
        }
        mix_into(&mut x, &idle, 0);
        assert_silent("US ringback", &x, rate);
        let mut x = tones(n, rate, &[400.0, 450.0], -19.0);
        let cycle = secs(rate, 3.0);
        let (a, b, c) = (secs(rate, 0.4), secs(rate, 0.6), secs(rate, 1.0));
        for (i, v) in x.iter_mut().enumerate() {
            let t = i % cycle;
            if !(t < a || (b..c).contains(&t)) {
                *v = 0.0;
            }
        }
        mix_into(&mut x, &idle, 0);
        assert_silent("UK ringback", &x, rate);
    }
}

#[test]
fn speech_after_tones_and_noise_is_still_found() {
    // The rejections above must not come from a detector that is deaf:
    // the same line with a sentence after the noise and tones finds it.
    let rate = 8000;
    let sp = speech("en-us", 160, CORPUS[4], rate);
    let (a, b) = active_region(&sp, rate);
    let sp = speech_at(&sp[a..b], rate, -20.0);
    let n = secs(rate, 12.0) + sp.len() + secs(rate, 2.0);
    let mut x = pink(61, n, rate, -45.0);
    mix_into(&mut x, &dtmf_sequence(rate, 5.0), secs(rate, 1.0));
    mix_into(
        &mut x,
        &tones(secs(rate, 2.0), rate, &[440.0, 480.0], -19.0),
        secs(rate, 7.0),
    );
    mix_into(&mut x, &sp, secs(rate, 12.0));
    for frame_ms in [10, 20] {
        let e = events(&x, rate, frame_ms);
        assert_eq!(e.len(), 2, "{frame_ms} ms: {e:?}");
        assert!((ms(e[0].at()) - 12_000.0).abs() <= 60.0, "{e:?}");
    }
}

#[test]
fn digital_silence_and_garbage_never_panic() {
    for &rate in &[8000, 16000] {
        let zeros = vec![0i16; secs(rate, 5.0)];
        let (frames, events) = run(VadConfig::new(rate, 20), &zeros, 160);
        assert!(events.is_empty());
        assert!(frames.iter().all(|f| f.probability == 0.0));
        // Full-scale square wave and extreme values.
        let square: Vec<i16> = (0..secs(rate, 5.0))
            .map(|i| if (i / 7) % 2 == 0 { i16::MAX } else { i16::MIN })
            .collect();
        let (frames, _) = run(VadConfig::new(rate, 10), &square, 1);
        assert!(frames.iter().all(|f| f.probability.is_finite()));
        let mut g = Noise::new(77);
        let garbage: Vec<i16> = (0..secs(rate, 5.0))
            .map(|_| (g.uniform() * 32768.0) as i16)
            .collect();
        let (frames, _) = run(VadConfig::new(rate, 20), &garbage, 1000);
        assert!(frames.iter().all(|f| (0.0..=1.0).contains(&f.probability)));
    }
}

#[test]
fn invalid_configs_are_refused() {
    assert_eq!(
        Vad::new(VadConfig::new(44100, 20)).err(),
        Some(VadError::UnsupportedRate(44100))
    );
    assert_eq!(
        Vad::new(VadConfig::new(8000, 30)).err(),
        Some(VadError::UnsupportedFrame(30))
    );
    for cfg in [
        VadConfig {
            threshold: 1.5,
            ..VadConfig::new(8000, 20)
        },
        VadConfig {
            threshold: f32::NAN,
            ..VadConfig::new(8000, 20)
        },
        VadConfig {
            start_tolerance_ms: 200,
            ..VadConfig::new(8000, 20)
        },
        VadConfig {
            stop_ms: 0,
            ..VadConfig::new(8000, 20)
        },
    ] {
        assert!(matches!(Vad::new(cfg), Err(VadError::Invalid(_))));
    }
}
