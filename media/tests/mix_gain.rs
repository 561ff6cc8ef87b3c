//! Mixing and gain: saturation, soft limiting, per-input gain accuracy.

mod support;

use hotline_media::mix::{
    Limit, MixInput, apply_gain, db_to_gain, gain_to_db, mix, mix_into, mix2, saturate,
};
use support::signal::{goertzel_amplitude, sine};

#[test]
fn db_conversions() {
    assert_eq!(db_to_gain(0.0), 1.0);
    assert!((db_to_gain(-6.0206) - 0.5).abs() < 1e-4);
    assert!((db_to_gain(20.0) - 10.0).abs() < 1e-4);
    assert_eq!(db_to_gain(f32::NEG_INFINITY), 0.0);
    for db in [-40.0f32, -12.5, 0.0, 3.0, 18.0] {
        assert!((gain_to_db(db_to_gain(db)) - db).abs() < 1e-4);
    }
}

#[test]
fn gain_is_accurate_to_a_hundredth_of_a_db() {
    for db in [-40.0f32, -20.0, -6.0, -3.0, -0.5, 0.5, 3.0, 6.0, 12.0, 24.0] {
        // Loud input for cuts, quiet for boosts: neither clips nor drowns
        // in rounding.
        let amp = if db < 0.0 { 30_000.0 } else { 1_000.0 };
        let x = sine(1000.0, 8000, 8000, amp);
        let base = goertzel_amplitude(&x, 1000.0, 8000.0);
        let mut y = x.clone();
        apply_gain(&mut y, db);
        let got = 20.0 * (goertzel_amplitude(&y, 1000.0, 8000.0) / base).log10();
        assert!((got - f64::from(db)).abs() < 0.01, "{db}: {got}");
    }
    let x = sine(1000.0, 8000, 800, 32_000.0);
    let mut y = x.clone();
    apply_gain(&mut y, 0.0);
    assert_eq!(y, x, "0 dB is bit-exact");
}

#[test]
fn gain_saturates_instead_of_wrapping() {
    let mut x = vec![30_000i16, -30_000, 20_000, -20_000, 100];
    apply_gain(&mut x, 6.0);
    assert_eq!(x, vec![32_767, -32_768, 32_767, -32_768, 200]);
}

#[test]
fn mixing_saturates_at_full_scale() {
    let a = vec![30_000i16, -30_000, 16_000, -1, i16::MAX, i16::MIN];
    let b = vec![30_000i16, -30_000, 16_000, 1, i16::MAX, i16::MIN];
    let mut out = vec![0i16; 6];
    mix2(&a, &b, &mut out);
    assert_eq!(out, vec![32_767, -32_768, 32_000, 0, 32_767, -32_768]);
    mix(
        &[MixInput::new(&a), MixInput::new(&b)],
        &mut out,
        Limit::Saturate,
    );
    assert_eq!(out, vec![32_767, -32_768, 32_000, 0, 32_767, -32_768]);
    let mut acc = a.clone();
    mix_into(&mut acc, &b, 0.0);
    assert_eq!(acc, vec![32_767, -32_768, 32_000, 0, 32_767, -32_768]);
}

#[test]
fn soft_limit_keeps_quiet_mixes_exact_and_loud_ones_unclipped() {
    let quiet_a = sine(440.0, 8000, 800, 8000.0);
    let quiet_b = sine(1000.0, 8000, 800, 8000.0);
    let mut hard = vec![0i16; 800];
    let mut soft = vec![0i16; 800];
    let inputs = [MixInput::new(&quiet_a), MixInput::new(&quiet_b)];
    mix(&inputs, &mut hard, Limit::Saturate);
    mix(&inputs, &mut soft, Limit::Soft);
    assert_eq!(hard, soft, "below the knee the limiter is transparent");

    let loud_a = sine(440.0, 8000, 800, 30_000.0);
    let loud_b = sine(440.0, 8000, 800, 30_000.0);
    let inputs = [MixInput::new(&loud_a), MixInput::new(&loud_b)];
    mix(&inputs, &mut hard, Limit::Saturate);
    mix(&inputs, &mut soft, Limit::Soft);
    let pinned = |x: &[i16]| x.iter().filter(|&&s| s == 32_767 || s == -32_768).count();
    assert!(pinned(&hard) > 100, "hard clipping flattens the peaks");
    assert_eq!(pinned(&soft), 0, "soft limiting never sits on the rails");
    // The soft-limited wave keeps its shape: same sign, monotone mapping.
    for (h, s) in hard.iter().zip(&soft) {
        assert_eq!(h.signum(), s.signum());
    }
}

#[test]
fn per_input_gains_are_applied_independently() {
    let a = sine(500.0, 8000, 8000, 10_000.0);
    let b = sine(1500.0, 8000, 8000, 10_000.0);
    let c = sine(2500.0, 8000, 8000, 10_000.0);
    let mut out = vec![0i16; 8000];
    mix(
        &[
            MixInput::with_gain(&a, 0.0),
            MixInput::with_gain(&b, -6.0),
            MixInput::with_gain(&c, -20.0),
        ],
        &mut out,
        Limit::Saturate,
    );
    for (f, db) in [(500.0, 0.0), (1500.0, -6.0), (2500.0, -20.0)] {
        let amp = goertzel_amplitude(&out, f, 8000.0);
        let got = 20.0 * (amp / 10_000.0).log10();
        assert!((got - db).abs() < 0.01, "{f} Hz: {got} dB");
    }
}

#[test]
fn mixing_sums_exactly_and_treats_short_inputs_as_silence() {
    let a: Vec<i16> = (0..160).map(|i| i * 3).collect();
    let b: Vec<i16> = (0..100).map(|i| -i).collect();
    let mut out = vec![1234i16; 160];
    mix(
        &[MixInput::new(&a), MixInput::new(&b)],
        &mut out,
        Limit::Saturate,
    );
    for i in 0..160 {
        let want = a[i] + if i < 100 { b[i] } else { 0 };
        assert_eq!(out[i], want);
    }
    // No inputs: silence.
    mix(&[], &mut out, Limit::Soft);
    assert!(out.iter().all(|&s| s == 0));
}

#[test]
fn many_inputs_sum_before_limiting() {
    // 20 inputs (more than one internal group): ten +3000 and ten −3000
    // cancel exactly, even though partial sums exceed full scale.
    let pos = vec![3000i16; 50];
    let neg = vec![-3000i16; 50];
    let mut inputs: Vec<MixInput> = Vec::new();
    for _ in 0..10 {
        inputs.push(MixInput::new(&pos));
    }
    for _ in 0..10 {
        inputs.push(MixInput::new(&neg));
    }
    let mut out = vec![0i16; 50];
    mix(&inputs, &mut out, Limit::Saturate);
    // The first group of 16 is 10·3000 − 6·3000 = 12 000, within range,
    // then the last four bring it to zero.
    assert!(out.iter().all(|&s| s == 0), "{:?}", &out[..4]);
    // Interleaved, every partial sum stays small.
    let mut inputs = Vec::new();
    for _ in 0..10 {
        inputs.push(MixInput::new(&pos));
        inputs.push(MixInput::new(&neg));
    }
    mix(&inputs, &mut out, Limit::Saturate);
    assert!(out.iter().all(|&s| s == 0));
}

#[test]
fn saturate_rounds_to_nearest() {
    assert_eq!(saturate(1.4), 1);
    assert_eq!(saturate(1.6), 2);
    assert_eq!(saturate(-1.6), -2);
    assert_eq!(saturate(1e6), 32_767);
    assert_eq!(saturate(-1e6), -32_768);
    assert_eq!(saturate(f32::NAN), 0);
}
