//! G.711 Appendix I style concealment on voiced synthetic signals and on
//! real (espeak-ng) speech.

mod support;

use hotline_media::codec::g711::encode_slice;
use hotline_media::codec::{AudioDecoder, G711Decoder, Law, Plc};
use support::Noise;
use support::signal::{corr, max_step, rms};

/// A voiced-speech-like harmonic tone: fundamental `f0` with eight
/// harmonics falling off at 6 dB/octave, peaking around −6 dBFS.
fn voiced(f0: f64, rate: u32, len: usize) -> Vec<i16> {
    (0..len)
        .map(|n| {
            let t = n as f64 / rate as f64;
            let v: f64 = (1..=8)
                .map(|h| {
                    (2.0 * std::f64::consts::PI * f0 * h as f64 * t + h as f64).sin() / h as f64
                })
                .sum();
            (v * 6000.0) as i16
        })
        .collect()
}

/// Runs `signal` through a concealer in 20 ms frames, losing the frames
/// for which `lost(i)` is true.
fn run_plc(signal: &[i16], rate: u32, lost: impl Fn(usize) -> bool) -> Vec<i16> {
    let frame = rate as usize / 50;
    let mut plc = Plc::new(rate).unwrap();
    let mut out = Vec::with_capacity(signal.len());
    for (i, chunk) in signal.chunks(frame).enumerate() {
        let mut buf = chunk.to_vec();
        if lost(i) {
            plc.conceal(&mut buf);
        } else {
            plc.good_frame(&mut buf);
        }
        out.extend_from_slice(&buf);
    }
    out
}

/// Normalised autocorrelation of `x` at `lag`.
fn autocorr(x: &[i16], lag: usize) -> f64 {
    corr(&x[..x.len() - lag], &x[lag..])
}

/// SNR in dB of `test` against `reference`.
fn snr(reference: &[i16], test: &[i16]) -> f64 {
    let sig: f64 = reference.iter().map(|&s| (s as f64).powi(2)).sum();
    let err: f64 = reference
        .iter()
        .zip(test)
        .map(|(&r, &t)| (r as f64 - t as f64).powi(2))
        .sum();
    10.0 * (sig / err.max(1.0)).log10()
}

const RATES: [u32; 2] = [8000, 16_000];
const PITCHES: [f64; 4] = [120.0, 150.0, 180.0, 220.0];

#[test]
fn concealment_keeps_the_pitch() {
    for rate in RATES {
        let frame = rate as usize / 50;
        for f0 in PITCHES {
            let sig = voiced(f0, rate, frame * 50);
            for lost_frames in [1usize, 2] {
                let first = 20;
                let out = run_plc(&sig, rate, |i| (first..first + lost_frames).contains(&i));
                let concealed = &out[first * frame..(first + lost_frames) * frame];
                let period = rate as f64 / f0;
                // Search 2.5 ms up to 1.5 periods: the true period must win.
                let lags = rate as usize / 400..(1.5 * period) as usize;
                let best = lags
                    .max_by(|&a, &b| autocorr(concealed, a).total_cmp(&autocorr(concealed, b)))
                    .unwrap();
                assert!(
                    (best as f64 - period).abs() <= 1.0,
                    "{rate} Hz, f0 {f0}, {lost_frames} lost: peak at {best}, period {period:.1}"
                );
                let peak = autocorr(concealed, best);
                assert!(peak > 0.9, "{rate} Hz, f0 {f0}: autocorrelation {peak:.3}");
            }
        }
    }
}

#[test]
fn concealment_has_no_clicks_at_frame_joins() {
    for rate in RATES {
        let frame = rate as usize / 50;
        for f0 in PITCHES {
            let sig = voiced(f0, rate, frame * 60);
            let limit = max_step(&sig);
            // A 20 ms loss at frame 10 and a 40 ms loss at frames 30-31.
            let lost = |i: usize| i == 10 || i == 30 || i == 31;
            let out = run_plc(&sig, rate, lost);
            for b in (1..60).map(|i| i * frame) {
                let step = (out[b] as i32 - out[b - 1] as i32).abs();
                assert!(
                    step <= limit,
                    "{rate} Hz, f0 {f0}: step {step} at sample {b} > signal's max step {limit}"
                );
            }
            // Inside the concealment and the cross-fades, blending two
            // copies of a waveform whose period is not a whole number of
            // samples can steepen it slightly, but never into a click.
            let whole = max_step(&out);
            assert!(
                whole as f64 <= 1.1 * limit as f64,
                "{rate} Hz, f0 {f0}: max step {whole} > 1.1 × {limit}"
            );
        }
    }
}

#[test]
fn concealment_decays_and_is_silent_after_60_ms() {
    for rate in RATES {
        let frame = rate as usize / 50;
        let ten_ms = frame / 2;
        for f0 in PITCHES {
            let sig = voiced(f0, rate, frame * 30);
            // Lose 100 ms: frames 10..15.
            let out = run_plc(&sig, rate, |i| (10..15).contains(&i));
            let gap = &out[10 * frame..15 * frame];
            // A 10 ms window holds a fractional number of periods, so each
            // chunk's level is judged against the same window of the
            // uninterrupted signal.
            let orig = &sig[10 * frame..15 * frame];
            let gain: Vec<f64> = gap
                .chunks(ten_ms)
                .zip(orig.chunks(ten_ms))
                .map(|(c, o)| rms(c) / rms(o))
                .collect();
            // First 10 ms at full level, then falling every 10 ms.
            assert!(
                (gain[0] - 1.0).abs() < 0.1,
                "{rate} Hz, f0 {f0}: first 10 ms at {:.2} of the signal",
                gain[0]
            );
            for k in 1..6 {
                assert!(
                    gain[k] < gain[k - 1],
                    "{rate} Hz, f0 {f0}: no decay at {k}0 ms: {gain:?}"
                );
                // The fade is linear, 20 % per 10 ms: the average gain over
                // chunk k (k ≥ 1) is 0.9 − 0.2 (k − 1).
                let expect = 0.9 - 0.2 * (k - 1) as f64;
                let got = gain[k];
                assert!(
                    (got - expect).abs() < 0.12,
                    "{rate} Hz, f0 {f0}, chunk {k}: gain {got:.2}, expected {expect:.2}"
                );
            }
            assert!(gain[5] > 0.0, "still audible just before 60 ms");
            assert!(
                gap[6 * ten_ms..].iter().all(|&s| s == 0),
                "{rate} Hz, f0 {f0}: not silent after 60 ms"
            );
            // After the gap the real signal fades back in and then is exact.
            let back = 15 * frame;
            assert_eq!(out[back + ten_ms..], sig[back + ten_ms..]);
            assert!(max_step(&out[back - 1..back + ten_ms + 1]) <= max_step(&sig));
        }
    }
}

#[test]
fn good_frames_pass_through_untouched() {
    for rate in RATES {
        let sig = voiced(150.0, rate, rate as usize);
        assert_eq!(run_plc(&sig, rate, |_| false), sig);
    }
}

#[test]
fn frame_size_does_not_change_the_result() {
    // The erasure is counted in samples, so 5 ms calls and one 40 ms call
    // must conceal identically.
    let rate = 8000;
    let sig = voiced(133.0, rate, 4000);
    let mut a = Plc::new(rate).unwrap();
    let mut b = Plc::new(rate).unwrap();
    let mut head = sig[..1600].to_vec();
    a.good_frame(&mut head.clone());
    b.good_frame(&mut head);
    let mut one = vec![0i16; 320];
    a.conceal(&mut one);
    let mut many = vec![0i16; 320];
    for c in many.chunks_mut(40) {
        b.conceal(c);
    }
    assert_eq!(one, many);
    let (mut ta, mut tb) = (sig[1920..2080].to_vec(), sig[1920..2080].to_vec());
    a.good_frame(&mut ta);
    b.good_frame(&mut tb);
    assert_eq!(ta, tb);
}

/// Loses 5 % of 20 ms frames at random and compares concealment against
/// filling the gaps with silence. The SNR counts every lost frame and the
/// frame after it, where the cross-fade acts.
fn speech_snr(
    clean: &[i16],
    rate: u32,
    seed: u64,
    conceal: impl Fn(&[bool]) -> Vec<i16>,
) -> (f64, f64) {
    let frame = rate as usize / 50;
    let frames = clean.len() / frame;
    let mut noise = Noise::new(seed);
    let lost: Vec<bool> = (0..frames).map(|_| noise.uniform() < -0.9).collect();
    let n_lost = lost.iter().filter(|&&l| l).count();
    assert!(n_lost * 100 / frames >= 3, "{n_lost} of {frames} lost");
    let concealed = conceal(&lost);
    let mut zeroed = clean[..frames * frame].to_vec();
    for (i, &l) in lost.iter().enumerate() {
        if l {
            zeroed[i * frame..(i + 1) * frame].fill(0);
        }
    }
    let mut r = Vec::new();
    let mut c = Vec::new();
    let mut z = Vec::new();
    for i in 0..frames {
        if lost[i] || (i > 0 && lost[i - 1]) {
            let s = i * frame..(i + 1) * frame;
            r.extend_from_slice(&clean[s.clone()]);
            c.extend_from_slice(&concealed[s.clone()]);
            z.extend_from_slice(&zeroed[s]);
        }
    }
    (snr(&r, &c), snr(&r, &z))
}

#[test]
fn speech_with_random_loss_beats_zero_filling() {
    for rate in RATES {
        for (k, voice) in ["en-us", "en-us+f3", "de"].into_iter().enumerate() {
            let clean: Vec<i16> = support::CORPUS[..4]
                .iter()
                .flat_map(|t| support::speech(voice, 160, t, rate))
                .collect();
            let frame = rate as usize / 50;
            let (plc, zero) = speech_snr(&clean, rate, 7 + k as u64, |lost| {
                run_plc(&clean[..lost.len() * frame], rate, |i| lost[i])
            });
            println!("{rate} Hz {voice}: PLC {plc:.2} dB, zero fill {zero:.2} dB");
            assert!(
                plc > zero,
                "{rate} Hz {voice}: PLC {plc:.2} dB vs zero {zero:.2} dB"
            );
        }
    }
}

#[test]
fn pcmu_decoder_conceals_speech_better_than_silence() {
    let rate = 8000;
    let clean_pcm = support::corpus("en-gb", rate);
    let mut bytes = Vec::new();
    encode_slice(Law::Mu, &clean_pcm, &mut bytes);
    // The reference is the loss-free decode, so only concealment is judged.
    let mut clean = Vec::new();
    let mut dec = G711Decoder::new(Law::Mu);
    for p in bytes.chunks_exact(160) {
        dec.decode(p, &mut clean).unwrap();
    }
    let (plc, zero) = speech_snr(&clean, rate, 99, |lost| {
        let mut dec = G711Decoder::new(Law::Mu);
        let mut out = Vec::new();
        for (p, &l) in bytes.chunks_exact(160).zip(lost) {
            if l {
                dec.conceal(160, &mut out).unwrap();
            } else {
                dec.decode(p, &mut out).unwrap();
            }
        }
        out
    });
    println!("PCMU: PLC {plc:.2} dB, zero fill {zero:.2} dB");
    assert!(plc > zero, "PLC {plc:.2} dB vs zero {zero:.2} dB");
}
