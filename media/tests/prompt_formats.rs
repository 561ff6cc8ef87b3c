//! Every prompt fixture (fixtures/prompts, made by make.sh from one espeak-ng
//! utterance) decodes to mono at 8, 16 and 48 kHz with the right length and
//! matches the 16-bit WAV reference.

use std::path::PathBuf;

use hotline_media::prompt::{Prompt, PromptOptions, decode_bytes, decode_reader};

fn dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../fixtures/prompts")
}

fn read(name: &str) -> Vec<u8> {
    std::fs::read(dir().join(name)).unwrap_or_else(|e| panic!("{name}: {e}"))
}

fn number(name: &str) -> f64 {
    String::from_utf8(read(name))
        .unwrap()
        .trim()
        .parse()
        .unwrap()
}

/// Duration of the utterance as sox reported it when make.sh ran.
fn source_seconds() -> f64 {
    number("source_samples.txt") / number("source_rate.txt")
}

fn decode(name: &str, rate: u32) -> Prompt {
    let ext = name.rsplit('.').next().unwrap();
    decode_bytes(&read(name), &PromptOptions::new(rate).extension(ext))
        .unwrap_or_else(|e| panic!("{name} at {rate} Hz: {e}"))
}

/// (file, source rate, source channels, lossless)
const FIXTURES: &[(&str, u32, usize, bool)] = &[
    ("thank_you_16k.wav", 16_000, 1, true),
    ("thank_you_8k_ulaw.wav", 8_000, 1, false),
    ("thank_you_8k_alaw.wav", 8_000, 1, false),
    ("thank_you_8k_f32.wav", 8_000, 1, true),
    ("thank_you_11k_s24.wav", 11_025, 1, true),
    ("thank_you_22k.flac", 22_050, 1, true),
    ("thank_you_48k.flac", 48_000, 1, true),
    ("thank_you_16k.ogg", 16_000, 1, false),
    ("thank_you_22k.mp3", 22_050, 1, false),
    ("thank_you_44k_stereo.ogg", 44_100, 2, false),
    ("thank_you_44k_stereo.mp3", 44_100, 2, false),
];

const TARGETS: [u32; 3] = [8_000, 16_000, 48_000];

/// Best normalised cross-correlation of `a` against `b` over lags up to
/// `max_lag` samples, and the lag where it occurs (positive: `a` is late).
fn best_correlation(a: &[i16], b: &[i16], max_lag: isize) -> (f64, isize) {
    let mut best = (f64::MIN, 0);
    for lag in -max_lag..=max_lag {
        let (mut ab, mut aa, mut bb) = (0.0, 0.0, 0.0);
        for (i, &y) in b.iter().enumerate() {
            let j = i as isize + lag;
            if j < 0 || j as usize >= a.len() {
                continue;
            }
            let x = f64::from(a[j as usize]);
            let y = f64::from(y);
            ab += x * y;
            aa += x * x;
            bb += y * y;
        }
        let r = ab / (aa * bb).sqrt();
        if r > best.0 {
            best = (r, lag);
        }
    }
    best
}

/// Least-squares gain of `a` relative to `b`.
fn gain(a: &[i16], b: &[i16]) -> f64 {
    let ab: f64 = a
        .iter()
        .zip(b)
        .map(|(&x, &y)| f64::from(x) * f64::from(y))
        .sum();
    let bb: f64 = b.iter().map(|&y| f64::from(y).powi(2)).sum();
    ab / bb
}

/// Signal-to-difference ratio in dB of `a` against `b` (after `gain`).
fn snr(a: &[i16], b: &[i16], g: f64) -> f64 {
    let sig: f64 = b.iter().map(|&y| (g * f64::from(y)).powi(2)).sum();
    let err: f64 = a
        .iter()
        .zip(b)
        .map(|(&x, &y)| (f64::from(x) - g * f64::from(y)).powi(2))
        .sum();
    10.0 * (sig / err.max(1e-9)).log10()
}

#[test]
fn wav_reference_decodes_bit_exact() {
    // The 16-bit WAV at its own rate must come out exactly as stored.
    let bytes = read("thank_you_16k.wav");
    let data = bytes
        .windows(4)
        .position(|w| w == b"data")
        .expect("data chunk");
    let len = u32::from_le_bytes(bytes[data + 4..data + 8].try_into().unwrap()) as usize;
    let pcm: Vec<i16> = bytes[data + 8..data + 8 + len]
        .chunks_exact(2)
        .map(|b| i16::from_le_bytes([b[0], b[1]]))
        .collect();
    let p = decode("thank_you_16k.wav", 16_000);
    assert_eq!(p.samples, pcm);
    assert_eq!(
        (p.rate, p.source_rate, p.source_channels),
        (16_000, 16_000, 1)
    );
}

/// What sox decodes `name` to, as 16-bit mono at the file's own rate.
fn sox_decode(name: &str) -> Vec<i16> {
    let out = std::process::Command::new("sox")
        .args(["-R", "-D"])
        .arg(dir().join(name))
        .args([
            "-t",
            "raw",
            "-e",
            "signed-integer",
            "-b",
            "16",
            "-c",
            "1",
            "-",
        ])
        .output()
        .expect("sox is installed (scripts/deps)");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
        .chunks_exact(2)
        .map(|b| i16::from_le_bytes([b[0], b[1]]))
        .collect()
}

#[test]
fn lossless_formats_at_their_own_rate_match_sox() {
    // No resampling involved: the decoders must agree with sox's to the
    // last bit, or to 1 LSB where a wider format (24-bit, float) is
    // rounded to 16 bits and the two round differently.
    for &(name, src_rate, channels, _) in FIXTURES {
        if channels != 1 || name.ends_with(".ogg") || name.ends_with(".mp3") {
            continue;
        }
        let ours = decode(name, src_rate).samples;
        let theirs = sox_decode(name);
        assert_eq!(ours.len(), theirs.len(), "{name}");
        let max_diff = ours
            .iter()
            .zip(&theirs)
            .map(|(&a, &b)| (i32::from(a) - i32::from(b)).abs())
            .max()
            .unwrap();
        let allowed = if name.contains("s24") || name.contains("f32") {
            1
        } else {
            0
        };
        assert!(
            max_diff <= allowed,
            "{name}: differs from sox by up to {max_diff}"
        );
    }
}

#[test]
fn every_format_decodes_to_the_right_length_at_every_target_rate() {
    let secs = source_seconds();
    for &(name, src_rate, channels, _) in FIXTURES {
        for rate in TARGETS {
            let p = decode(name, rate);
            assert_eq!(p.rate, rate);
            assert_eq!(p.source_rate, src_rate, "{name}");
            assert_eq!(p.source_channels, channels, "{name}");
            let got = p.samples.len() as f64 / f64::from(rate);
            // sox rounds the length to whole samples at each rate it
            // writes, so allow a couple of source samples plus 1 ms.
            let tol = 0.001 + 2.0 / f64::from(src_rate);
            assert!(
                (got - secs).abs() <= tol,
                "{name} at {rate} Hz: {got:.5} s, sox says {secs:.5} s"
            );
            assert!((p.duration().as_secs_f64() - got).abs() < 1e-6);
        }
    }
}

#[test]
fn every_format_matches_the_wav_reference() {
    for rate in TARGETS {
        let reference = decode("thank_you_16k.wav", rate).samples;
        for &(name, _, channels, lossless) in FIXTURES {
            let p = decode(name, rate);
            // Lossy decoders and sox's encoders may shift by a few samples;
            // search ±5 ms.
            let max_lag = rate as isize / 200;
            let (corr, lag) = best_correlation(&p.samples, &reference, max_lag);
            let n = reference.len().min(p.samples.len());
            let g = gain(&p.samples[..n], &reference[..n]);
            // The stereo files carry the speech at full level on the left
            // and half level on the right: the average is 0.75.
            let expect_gain = if channels == 2 { 0.75 } else { 1.0 };
            if lossless {
                // Lossless sources differ from the reference only by sox's
                // and rubato's resampling filters and 16-bit rounding; at
                // 8 kHz both filters pass the whole band.
                assert_eq!(lag, 0, "{name} at {rate} Hz: shifted by {lag}");
                // 0.995 rather than higher: an 8 kHz source played at 16 or
                // 48 kHz lacks the 4-8 kHz the reference has.
                assert!(corr > 0.995, "{name} at {rate} Hz: correlation {corr:.5}");
                assert!((g - 1.0).abs() < 0.01, "{name} at {rate} Hz: gain {g:.4}");
                // At 8 kHz every source carries the whole band, so the only
                // difference left is sox's and rubato's filters near 4 kHz.
                // (Above, the 8 kHz sources lack what the reference has.)
                if rate == 8_000 {
                    let s = snr(&p.samples[..n], &reference[..n], g);
                    assert!(s > 30.0, "{name} at {rate} Hz: SNR {s:.1} dB");
                }
            } else {
                assert!(
                    lag.abs() <= rate as isize / 1000,
                    "{name} at {rate} Hz: shifted by {lag}"
                );
                assert!(corr >= 0.9, "{name} at {rate} Hz: correlation {corr:.4}");
                // MP3 at these bitrates comes out about 5 % quieter; a wrong
                // downmix (one channel: 1.0, the sum: 1.5) is far outside.
                assert!(
                    (g - expect_gain).abs() < 0.08 * expect_gain,
                    "{name} at {rate} Hz: gain {g:.3}, expected {expect_gain}"
                );
            }
        }
    }
}

#[test]
fn reader_and_bytes_give_the_same_result() {
    for &(name, ..) in FIXTURES {
        let opts = PromptOptions::new(16_000);
        let from_bytes = decode_bytes(&read(name), &opts).unwrap();
        let file = std::fs::File::open(dir().join(name)).unwrap();
        let from_file = decode_reader(file, &opts).unwrap();
        assert_eq!(from_bytes, from_file, "{name}");
        let from_cursor = decode_reader(std::io::Cursor::new(read(name)), &opts).unwrap();
        assert_eq!(from_bytes, from_cursor, "{name}");
    }
}

#[test]
fn extension_hint_is_optional_and_a_wrong_one_does_not_mislead() {
    for &(name, ..) in FIXTURES {
        let hinted = decode(name, 8_000);
        let bare = decode_bytes(&read(name), &PromptOptions::new(8_000)).unwrap();
        assert_eq!(hinted, bare, "{name} without hint");
        let wrong = if name.ends_with(".mp3") { "wav" } else { "mp3" };
        let misled =
            decode_bytes(&read(name), &PromptOptions::new(8_000).extension(wrong)).unwrap();
        assert_eq!(hinted, misled, "{name} with hint {wrong}");
    }
}

#[test]
fn odd_target_rates_work() {
    // Rates nobody would pick for a call still convert correctly.
    let secs = source_seconds();
    for rate in [11_025, 22_050, 44_100, 32_000, 12_345] {
        let p = decode("thank_you_22k.flac", rate);
        let got = p.samples.len() as f64 / f64::from(rate);
        assert!(
            (got - secs).abs() < 0.001 + 1.0 / 22_050.0,
            "{rate} Hz: {got}"
        );
    }
}
