//! The WAV reader and writer cross-checked against sox, a third-party
//! implementation: files we write must be described correctly by `soxi` and
//! decoded by sox to our samples; files sox writes in every format we
//! support must decode to what sox itself decodes them to.

use hotline_media::wav::{
    Encoding, SampleFormat, WavSpec, WavWriter, encode_wav, read_wav, read_wav_from,
};
use std::path::{Path, PathBuf};
use std::process::Command;

fn tmp(name: &str) -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("wav_sox");
    std::fs::create_dir_all(&dir).unwrap();
    dir.join(name)
}

fn run(cmd: &mut Command) -> String {
    let out = cmd
        .output()
        .unwrap_or_else(|e| panic!("cannot run {cmd:?}: {e}; run scripts/deps to install sox"));
    assert!(
        out.status.success(),
        "{cmd:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

fn soxi(flag: &str, path: &Path) -> String {
    run(Command::new("soxi").arg(flag).arg(path))
        .trim()
        .to_string()
}

/// sox's own decode of `path` to 16-bit signed raw, without dither.
fn sox_decode(path: &Path) -> Vec<i16> {
    let raw = tmp(&format!(
        "{}.raw",
        path.file_name().unwrap().to_string_lossy()
    ));
    run(Command::new("sox")
        .arg("-D")
        .arg(path)
        .args(["-t", "raw", "-e", "signed-integer", "-b", "16", "-L"])
        .arg(&raw));
    std::fs::read(&raw)
        .unwrap()
        .chunks_exact(2)
        .map(|b| i16::from_le_bytes([b[0], b[1]]))
        .collect()
}

/// A deterministic test signal using the whole 16-bit range: a sweep with
/// noise, plus the extremes.
fn signal(n: usize, seed: u32) -> Vec<i16> {
    let mut x = seed.wrapping_mul(2_654_435_761).max(1);
    let mut v: Vec<i16> = (0..n)
        .map(|i| {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            let t = i as f64 / n as f64;
            let sweep = (std::f64::consts::TAU * (100.0 + 3000.0 * t) * i as f64 / 8000.0).sin();
            let noise = f64::from(x % 2001) - 1000.0;
            (sweep * 30000.0 + noise).clamp(-32768.0, 32767.0) as i16
        })
        .collect();
    if n >= 4 {
        v[0] = i16::MIN;
        v[1] = i16::MAX;
        v[2] = 0;
        v[3] = -1;
    }
    v
}

#[test]
fn round_trip_mono_and_stereo_in_memory() {
    for (channels, rate) in [(1u16, 8000u32), (2, 8000), (1, 16000), (2, 48000)] {
        for n in [0usize, 1, 160 * channels as usize, 48_000] {
            let n = n - n % channels as usize;
            let samples = signal(n, n as u32 + 7);
            let spec = WavSpec {
                sample_rate: rate,
                channels,
                format: SampleFormat::Pcm16,
            };
            let bytes = encode_wav(spec, &samples).unwrap();
            assert_eq!(bytes.len(), 44 + 2 * n);
            let w = read_wav(&bytes).unwrap();
            assert_eq!(w.samples, samples);
            assert_eq!(w.format.channels, channels);
            assert_eq!(w.format.sample_rate, rate);
            assert_eq!(w.format.bits_per_sample, 16);
            assert_eq!(w.format.encoding, Encoding::Pcm);
            assert!(!w.truncated);
            assert_eq!(w.frames(), n / channels as usize);
        }
    }
}

#[test]
fn files_we_write_are_read_by_sox() {
    for (channels, rate, format, enc_name) in [
        (1u16, 8000u32, SampleFormat::Pcm16, "Signed Integer PCM"),
        (2, 8000, SampleFormat::Pcm16, "Signed Integer PCM"),
        (2, 44_100, SampleFormat::Pcm16, "Signed Integer PCM"),
        (1, 8000, SampleFormat::MuLaw, "u-law"),
        (2, 8000, SampleFormat::ALaw, "A-law"),
    ] {
        // An odd frame count, so G.711 files need their pad byte.
        let frames = 8001usize;
        let samples = signal(frames * channels as usize, rate + u32::from(channels));
        let path = tmp(&format!("ours_{channels}_{rate}_{format:?}.wav"));
        let file = std::fs::File::create(&path).unwrap();
        let mut w = WavWriter::new(
            std::io::BufWriter::new(file),
            WavSpec {
                sample_rate: rate,
                channels,
                format,
            },
        )
        .unwrap();
        // Streamed in 20 ms frames, the way a call writes.
        for chunk in samples.chunks(160 * channels as usize) {
            w.write_samples(chunk).unwrap();
        }
        assert_eq!(w.frames_written(), frames as u64);
        w.finish().unwrap();

        assert_eq!(soxi("-r", &path), rate.to_string());
        assert_eq!(soxi("-c", &path), channels.to_string());
        assert_eq!(soxi("-s", &path), frames.to_string(), "{path:?}");
        assert_eq!(soxi("-e", &path), enc_name);
        let bits = if format == SampleFormat::Pcm16 { 16 } else { 8 };
        assert_eq!(soxi("-b", &path), bits.to_string());
        assert_eq!(soxi("-t", &path), "wav");

        let ours = read_wav_from(std::fs::File::open(&path).unwrap()).unwrap();
        let theirs = sox_decode(&path);
        assert_eq!(ours.samples, theirs, "{path:?}");
        if format == SampleFormat::Pcm16 {
            assert_eq!(ours.samples, samples);
        } else {
            // G.711 is lossy: within half a top-segment step.
            for (a, b) in ours.samples.iter().zip(&samples) {
                assert!((i32::from(*a) - i32::from(*b)).abs() <= 1024, "{a} vs {b}");
            }
        }
    }
}

#[test]
fn files_sox_writes_decode_like_sox_decodes_them() {
    let source = tmp("source.wav");
    let samples = signal(2 * 4001, 99);
    std::fs::write(
        &source,
        encode_wav(WavSpec::stereo(8000), &samples).unwrap(),
    )
    .unwrap();

    // (sox output options, expected encoding, container bits, extensible)
    let cases: &[(&[&str], Encoding, u16, bool, u16)] = &[
        (&["-b", "8"], Encoding::Pcm, 8, false, 2),
        (&["-b", "16"], Encoding::Pcm, 16, false, 2),
        (&["-b", "24"], Encoding::Pcm, 24, true, 2),
        (
            &["-b", "32", "-e", "signed-integer"],
            Encoding::Pcm,
            32,
            true,
            2,
        ),
        (
            &["-b", "32", "-e", "floating-point"],
            Encoding::Float,
            32,
            false,
            2,
        ),
        (
            &["-b", "64", "-e", "floating-point"],
            Encoding::Float,
            64,
            false,
            2,
        ),
        (&["-e", "u-law"], Encoding::MuLaw, 8, false, 2),
        (&["-e", "a-law"], Encoding::ALaw, 8, false, 2),
        (&["-c", "1", "-e", "u-law"], Encoding::MuLaw, 8, false, 1),
        (
            &["-c", "1", "-b", "16", "-r", "16000"],
            Encoding::Pcm,
            16,
            false,
            1,
        ),
        // Three channels force WAVE_FORMAT_EXTENSIBLE even at 16 bits.
        (&["-c", "3", "-b", "16"], Encoding::Pcm, 16, true, 3),
    ];
    for (i, (opts, enc, bits, ext, ch)) in cases.iter().enumerate() {
        let path = tmp(&format!("sox_{i}.wav"));
        run(Command::new("sox")
            .arg("-D")
            .arg(&source)
            .args(*opts)
            .arg(&path));
        let bytes = std::fs::read(&path).unwrap();
        let w = read_wav(&bytes).unwrap_or_else(|e| panic!("{opts:?}: {e}"));
        assert_eq!(w.format.encoding, *enc, "{opts:?}");
        assert_eq!(w.format.bits_per_sample, *bits, "{opts:?}");
        assert_eq!(w.format.extensible, *ext, "{opts:?}");
        assert_eq!(w.format.channels, *ch, "{opts:?}");
        assert!(!w.truncated, "{opts:?}");
        let theirs = sox_decode(&path);
        assert_eq!(w.samples.len(), theirs.len(), "{opts:?}");
        // Float rounding ties may differ by one LSB; everything else exact.
        let tol = if *enc == Encoding::Float { 1 } else { 0 };
        for (k, (a, b)) in w.samples.iter().zip(&theirs).enumerate() {
            assert!(
                (i32::from(*a) - i32::from(*b)).abs() <= tol,
                "{opts:?} sample {k}: ours {a}, sox {b}"
            );
        }
        // Lossless containers reproduce the 16-bit source exactly.
        if *ch == 2 && (*bits > 16 || (*bits == 16 && *enc == Encoding::Pcm)) {
            assert_eq!(w.samples, samples, "{opts:?}");
        }
    }
}
