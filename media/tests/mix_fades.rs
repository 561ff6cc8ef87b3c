//! Fades and crossfades: exact length, exact zero, continuation across
//! frames, and no clicks on full-scale tones.

mod support;

use hotline_media::mix::{Crossfader, Curve, Fader, crossfade};
use support::signal::{max_step, sine_at_phase};

const CURVES: [Curve; 3] = [Curve::RaisedCosine, Curve::EqualPower, Curve::Linear];

/// Runs `x` through a fader in frames of `frame` samples, starting a
/// fade-out before sample `start`.
fn fade_out_framed(x: &[i16], len: u32, curve: Curve, start: usize, frame: usize) -> Vec<i16> {
    let mut f = Fader::new(len, curve);
    let mut out = x.to_vec();
    let mut at = 0;
    for chunk in out.chunks_mut(frame) {
        let end = at + chunk.len();
        if (at..end).contains(&start) {
            let k = start - at;
            f.process(&mut chunk[..k]);
            f.fade_out();
            f.process(&mut chunk[k..]);
        } else {
            f.process(chunk);
        }
        at = end;
    }
    out
}

#[test]
fn fade_out_length_is_exact_to_the_sample() {
    for rate in [8000u32, 16000, 48000] {
        for ms in [10.0f32, 15.0, 20.0] {
            for curve in CURVES {
                let f = Fader::from_ms(rate, ms, curve);
                let len = f.fade_len() as usize;
                assert_eq!(len, (rate as f32 * ms / 1000.0) as usize);
                let x = vec![20_000i16; 3 * len + 100];
                for start in [0usize, 1, 37, len] {
                    let y = fade_out_framed(&x, len as u32, curve, start, 160);
                    // Untouched before the fade.
                    assert!(y[..start].iter().all(|&s| s == 20_000));
                    // Non-increasing, reaching exact zero on the last
                    // sample of the fade and staying there. (The first
                    // samples of a smooth curve round back to the input.)
                    for k in start..start + len - 1 {
                        assert!(y[k + 1] <= y[k], "{curve:?} at {k}");
                    }
                    // The second-to-last sample carries gain(1), unless
                    // that rounds to zero (raised cosine at 48 kHz).
                    let penultimate = (20_000.0 * curve.gain(1, len as u32)).round() as i16;
                    assert_eq!(y[start + len - 2], penultimate, "{curve:?}");
                    assert_eq!(y[start + len - 1], 0, "{curve:?} not zero at end");
                    assert!(y[start + len..].iter().all(|&s| s == 0));
                }
            }
        }
    }
}

#[test]
fn fade_in_length_is_exact_to_the_sample() {
    for curve in CURVES {
        for len in [80u32, 120, 160, 333] {
            let mut f = Fader::new(len, curve);
            f.mute();
            let mut x = vec![-12_345i16; 1000];
            f.process(&mut x[..50]);
            assert!(x[..50].iter().all(|&s| s == 0));
            f.fade_in();
            for frame in x[50..].chunks_mut(160) {
                f.process(frame);
            }
            let end = 50 + len as usize;
            assert!(x[50] > -12_345 && x[50] <= 0);
            assert!(x[end - 1..].iter().all(|&s| s == -12_345));
            assert!(x[50..end].windows(2).all(|w| w[1] <= w[0]));
            assert!(f.is_open());
        }
    }
}

#[test]
fn fader_gain_steps_exactly_len_times() {
    // The gain itself (before rounding to samples) leaves 1 on the first
    // fade sample and reaches 0 (or 1) on exactly the len-th.
    for curve in CURVES {
        for len in [1u32, 2, 80, 160, 333] {
            let mut f = Fader::new(len, curve);
            f.fade_out();
            let mut s = [1i16];
            for k in 1..=len {
                f.process(&mut s);
                let g = f.gain();
                if k < len {
                    assert!(g > 0.0 && g < 1.0, "{curve:?} {k}/{len}: {g}");
                    assert!(f.is_fading());
                } else {
                    assert_eq!(g, 0.0);
                    assert!(f.is_muted());
                }
            }
            f.fade_in();
            for k in 1..=len {
                f.process(&mut s);
                assert_eq!(f.gain() == 1.0, k == len, "{curve:?} {k}/{len}");
            }
            assert!(f.is_open());
        }
    }
}

#[test]
fn fades_continue_across_frames_of_any_size() {
    let x = sine_at_phase(1000.0, 8000, 4000, 30_000.0, 0.3);
    for curve in CURVES {
        for len in [80u32, 120, 160] {
            for start in [0usize, 1, 159, 160, 161, 1234] {
                // Reference: one buffer, split only at the trigger.
                let whole = fade_out_framed(&x, len, curve, start, x.len());
                for frame in [1usize, 7, 80, 160, 161, 320, 1000] {
                    let framed = fade_out_framed(&x, len, curve, start, frame);
                    assert_eq!(
                        framed, whole,
                        "{curve:?} len {len} start {start} frame {frame}"
                    );
                }
            }
        }
    }
}

#[test]
fn fade_started_mid_frame_finishes_in_the_next() {
    // 20 ms fade at 8 kHz triggered at sample 100 of a 160-sample frame:
    // 60 samples fade in this frame, 100 in the next, which ends at zero.
    let mut f = Fader::from_ms(8000, 20.0, Curve::RaisedCosine);
    let mut a = [10_000i16; 160];
    f.process(&mut a[..100]);
    f.fade_out();
    f.process(&mut a[100..]);
    assert!(f.is_fading());
    assert_eq!(f.remaining(), 100);
    assert!(a[..100].iter().all(|&s| s == 10_000));
    let mut b = [10_000i16; 160];
    f.process(&mut b);
    // Fade sample 79 of 160 (the 20th of this frame) is the raised
    // cosine's midpoint: gain exactly ½.
    assert_eq!(b[19], 5_000);
    assert_eq!(b[99], 0);
    assert!(b[98] > 0);
    assert!(b[100..].iter().all(|&s| s == 0));
    assert!(f.is_muted());
    // The gain at the join is continuous: one step apart.
    let step = (i32::from(a[159]) - i32::from(b[0])).abs();
    assert!(step <= (10_000.0 * Curve::RaisedCosine.max_step(160)).ceil() as i32 + 1);
}

/// The barge-in requirement: fading a full-scale tone out (or in) never
/// makes a sample-to-sample step larger than the tone's own largest step
/// plus what the gain curve can add (`32767 · max gain step`, ≈ 1.6% of
/// full scale for a 20 ms fade at 8 kHz) plus rounding.
#[test]
fn no_clicks_on_full_scale_tones() {
    for rate in [8000u32, 16000, 48000] {
        for freq in [1000.0, 3000.0] {
            for ms in [10.0f32, 15.0, 20.0] {
                for curve in [Curve::RaisedCosine, Curve::EqualPower] {
                    for (start, phase) in [(0usize, 0.0), (37, 1.0), (160, 2.5), (333, 4.0)] {
                        let x = sine_at_phase(freq, rate, rate as usize / 5, 32_767.0, phase);
                        let input_step = max_step(&x);
                        let f = Fader::from_ms(rate, ms, curve);
                        let len = f.fade_len();
                        let slack = (32_767.0 * curve.max_step(len)).ceil() as i32 + 2;
                        let y = fade_out_framed(&x, len, curve, start, 160);
                        let a = start.saturating_sub(1);
                        let fade = &y[a..start + len as usize + 10];
                        assert!(
                            max_step(fade) <= input_step + slack,
                            "out {rate} {freq} {ms} {curve:?}: {} > {} + {}",
                            max_step(fade),
                            input_step,
                            slack
                        );
                        // Fade in over the same tone.
                        let mut g = Fader::new(len, curve);
                        g.mute();
                        let mut z = x.clone();
                        g.process(&mut z[..start]);
                        g.fade_in();
                        for fr in z[start..].chunks_mut(160) {
                            g.process(fr);
                        }
                        assert!(
                            max_step(&z[a..start + len as usize + 10]) <= input_step + slack,
                            "in {rate} {freq} {ms} {curve:?}"
                        );
                    }
                }
            }
        }
    }
}

#[test]
fn hard_mute_would_click() {
    // Cutting a full-scale 1 kHz tone at its peak steps by the full
    // amplitude, well above the bound the fades are held to.
    let x = sine_at_phase(1000.0, 8000, 800, 32_767.0, std::f64::consts::FRAC_PI_2);
    let mut y = x.clone();
    // x[400] is the crest; cut right after it.
    assert_eq!(x[400], 32_767);
    y[401..].fill(0);
    let len = 160;
    let slack = (32_767.0 * Curve::RaisedCosine.max_step(len)).ceil() as i32 + 2;
    assert!(max_step(&y) > max_step(&x) + slack);
}

#[test]
fn reversing_mid_fade_is_continuous() {
    for curve in CURVES {
        let mut f = Fader::new(160, curve);
        let mut x = vec![16_000i16; 1000];
        f.process(&mut x[..100]);
        f.fade_out();
        f.process(&mut x[100..170]);
        f.fade_in();
        f.process(&mut x[170..]);
        let bound = (16_000.0 * curve.max_step(160)).ceil() as i32 + 1;
        assert!(max_step(&x) <= bound, "{curve:?}: {}", max_step(&x));
        // Back to unity exactly 70 samples after reversing.
        assert!(x[170 + 69..].iter().all(|&s| s == 16_000), "{curve:?}");
        assert!(x[170 + 68] < 16_000);
    }
}

#[test]
fn open_fader_is_bit_exact_and_muted_is_silent() {
    let x = sine_at_phase(440.0, 8000, 500, 32_000.0, 0.0);
    let mut f = Fader::new(80, Curve::RaisedCosine);
    let mut y = x.clone();
    f.process(&mut y);
    assert_eq!(y, x);
    f.mute();
    f.process(&mut y);
    assert!(y.iter().all(|&s| s == 0));
}

#[test]
fn raised_cosine_crossfade_of_identical_streams_is_transparent() {
    let x = sine_at_phase(700.0, 8000, 480, 30_000.0, 0.5);
    for len in [80u32, 160, 480] {
        let mut cf = Crossfader::new(len, Curve::RaisedCosine);
        let mut out = vec![0i16; 480];
        for (i, fr) in out.chunks_mut(160).enumerate() {
            let s = &x[i * 160..(i + 1) * 160];
            cf.process(s, s, fr);
        }
        for (a, b) in out.iter().zip(&x) {
            assert!((i32::from(*a) - i32::from(*b)).abs() <= 1);
        }
        assert!(cf.is_done());
    }
}

#[test]
fn crossfade_moves_from_one_stream_to_the_other() {
    let a = vec![10_000i16; 320];
    let b = vec![-10_000i16; 320];
    let mut out = vec![0i16; 320];
    crossfade(&a, &b, &mut out[..160], Curve::RaisedCosine);
    // Starts at `a` (first sample one step in), ends exactly on `b`.
    assert!(out[0] > 9_990);
    assert_eq!(out[159], -10_000);
    assert!(out[..160].windows(2).all(|w| w[1] <= w[0]));
    // Midpoint: both gains ½, the two streams cancel.
    assert_eq!(out[79], 0);
    assert!(out[78] > 0 && out[80] < 0);
}

#[test]
fn equal_power_crossfade_keeps_loudness_of_unrelated_streams() {
    // Two uncorrelated tones of equal level: the output power through the
    // crossfade stays within ±0.5 dB of either tone's power.
    let a = sine_at_phase(440.0, 8000, 8000, 10_000.0, 0.0);
    let b = sine_at_phase(1130.0, 8000, 8000, 10_000.0, 0.0);
    let mut out = vec![0i16; 8000];
    let mut cf = Crossfader::new(8000, Curve::EqualPower);
    for ((fa, fb), fo) in a.chunks(160).zip(b.chunks(160)).zip(out.chunks_mut(160)) {
        cf.process(fa, fb, fo);
    }
    let power = |x: &[i16]| x.iter().map(|&s| f64::from(s).powi(2)).sum::<f64>() / x.len() as f64;
    let reference = power(&a);
    for w in out.chunks(400) {
        let db = 10.0 * (power(w) / reference).log10();
        assert!(db.abs() < 0.5, "{db}");
    }
    // A raised-cosine crossfade, by contrast, dips by about 3 dB midway.
    let mut out2 = vec![0i16; 8000];
    crossfade(&a, &b, &mut out2, Curve::RaisedCosine);
    let mid = 10.0 * (power(&out2[3800..4200]) / reference).log10();
    assert!((mid + 3.0).abs() < 0.5, "{mid}");
}
