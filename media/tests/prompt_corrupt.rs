//! Damaged, truncated, hostile and unsupported prompt files must give a
//! clear error (or, for damage a player would ride over, the audio that
//! survives), never a panic.

mod support;

use std::path::PathBuf;
use std::time::Duration;

use hotline_media::prompt::{PromptError, PromptOptions, decode_bytes};
use proptest::prelude::*;
use support::Noise;

fn read(name: &str) -> Vec<u8> {
    let p = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../fixtures/prompts")
        .join(name);
    std::fs::read(&p).unwrap_or_else(|e| panic!("{name}: {e}"))
}

const FILES: &[&str] = &[
    "thank_you_16k.wav",
    "thank_you_8k_ulaw.wav",
    "thank_you_8k_alaw.wav",
    "thank_you_8k_f32.wav",
    "thank_you_11k_s24.wav",
    "thank_you_22k.flac",
    "thank_you_48k.flac",
    "thank_you_16k.ogg",
    "thank_you_22k.mp3",
    "thank_you_44k_stereo.ogg",
    "thank_you_44k_stereo.mp3",
];

/// Deterministic xorshift so failures reproduce.
/// Decodes and checks the invariants that hold whatever the input: an
/// error, or mono audio at the requested rate no longer than the limit.
fn decode_any(bytes: &[u8], ext: Option<&str>) -> Result<usize, PromptError> {
    let mut opts = PromptOptions::new(8_000).max_duration(Duration::from_secs(30));
    if let Some(e) = ext {
        opts = opts.extension(e);
    }
    let p = decode_bytes(bytes, &opts)?;
    assert_eq!(p.rate, 8_000);
    assert!(!p.samples.is_empty());
    assert!(p.samples.len() <= 30 * 8_000 + 8_000);
    Ok(p.samples.len())
}

#[test]
fn truncation_anywhere_never_panics() {
    for &name in FILES {
        let bytes = read(name);
        let ext = name.rsplit('.').next();
        let full = decode_any(&bytes, ext).unwrap();
        let mut cuts: Vec<usize> = (0..64).collect();
        cuts.extend((1..120).map(|k| k * bytes.len() / 120));
        for cut in cuts {
            match decode_any(&bytes[..cut], ext) {
                // Whatever survives is never more than the whole file.
                Ok(len) => assert!(len <= full + 8, "{name} cut at {cut}: {len} > {full}"),
                Err(e) => assert!(!e.to_string().is_empty()),
            }
        }
        // Cut before the audio starts: nothing to play, so an error.
        assert!(decode_any(&bytes[..12], ext).is_err(), "{name}");
    }
}

#[test]
fn truncated_pcm_wav_keeps_what_is_there() {
    // A WAV cut in the middle of its data chunk plays what it has, as any
    // player would, instead of failing the whole prompt.
    let bytes = read("thank_you_16k.wav");
    let half = decode_any(&bytes[..bytes.len() / 2], Some("wav")).unwrap();
    let full = decode_any(&bytes, Some("wav")).unwrap();
    let ratio = half as f64 / full as f64;
    assert!((0.45..0.55).contains(&ratio), "{half} of {full}");
}

#[test]
fn random_byte_corruption_never_panics() {
    let mut rng = Noise::new(0x9E37_79B9_7F4A_7C15);
    for &name in FILES {
        let original = read(name);
        let ext = name.rsplit('.').next();
        for round in 0..200 {
            let mut bytes = original.clone();
            // Early rounds hit the headers, later ones anywhere.
            let span = if round < 100 {
                bytes.len().min(256)
            } else {
                bytes.len()
            };
            for _ in 0..1 + rng.below(16) {
                let i = rng.below(span);
                bytes[i] = rng.next_u64() as u8;
            }
            let _ = decode_any(&bytes, ext);
            let _ = decode_any(&bytes, None);
        }
    }
}

#[test]
fn garbage_is_an_unknown_format() {
    let mut rng = Noise::new(12345);
    for len in [0, 1, 4, 100, 5_000] {
        let junk: Vec<u8> = (0..len).map(|_| rng.next_u64() as u8).collect();
        assert!(
            matches!(decode_any(&junk, None), Err(PromptError::UnknownFormat(_))),
            "{len} random bytes"
        );
    }
    let text = b"<html><body>404 Not Found</body></html>";
    assert!(matches!(
        decode_any(text, Some("mp3")),
        Err(PromptError::UnknownFormat(_))
    ));
}

/// A canonical 44-byte WAV header.
fn wav_header(format_tag: u16, channels: u16, rate: u32, bits: u16, data_len: u32) -> Vec<u8> {
    let block = channels.wrapping_mul(bits.div_ceil(8));
    let mut h = Vec::new();
    h.extend_from_slice(b"RIFF");
    h.extend_from_slice(&(36 + data_len).to_le_bytes());
    h.extend_from_slice(b"WAVEfmt ");
    h.extend_from_slice(&16u32.to_le_bytes());
    h.extend_from_slice(&format_tag.to_le_bytes());
    h.extend_from_slice(&channels.to_le_bytes());
    h.extend_from_slice(&rate.to_le_bytes());
    h.extend_from_slice(&rate.wrapping_mul(u32::from(block)).to_le_bytes());
    h.extend_from_slice(&block.to_le_bytes());
    h.extend_from_slice(&bits.to_le_bytes());
    h.extend_from_slice(b"data");
    h.extend_from_slice(&data_len.to_le_bytes());
    h
}

#[test]
fn hand_made_wavs() {
    // Valid: 100 ms of a constant at 8 kHz, 16-bit.
    let mut ok = wav_header(1, 1, 8_000, 16, 1_600);
    ok.extend(std::iter::repeat_n(1_000i16.to_le_bytes(), 800).flatten());
    let p = decode_bytes(&ok, &PromptOptions::new(8_000)).unwrap();
    assert_eq!(p.samples, vec![1_000; 800]);

    // Header only: no audio at all.
    let empty = wav_header(1, 1, 8_000, 16, 0);
    assert!(matches!(
        decode_bytes(&empty, &PromptOptions::new(8_000)),
        Err(PromptError::Empty)
    ));

    // A codec that is not built in (0x0055 is MP3-in-WAV, 0x1234 unknown).
    for tag in [0x0055, 0x1234] {
        let mut odd = wav_header(tag, 1, 8_000, 16, 1_600);
        odd.extend(vec![0; 1_600]);
        let err = decode_bytes(&odd, &PromptOptions::new(8_000)).unwrap_err();
        assert!(
            matches!(
                err,
                PromptError::Unsupported(_) | PromptError::UnknownFormat(_)
            ),
            "tag {tag:#x}: {err}"
        );
    }

    // Nonsense fields: zero channels, zero rate, zero bits.
    for (ch, rate, bits) in [
        (0, 8_000, 16),
        (1, 0, 16),
        (1, 8_000, 0),
        (u16::MAX, 8_000, 16),
    ] {
        let mut bad = wav_header(1, ch, rate, bits, 1_600);
        bad.extend(vec![0; 1_600]);
        assert!(
            decode_bytes(&bad, &PromptOptions::new(8_000)).is_err(),
            "{ch} channels, {rate} Hz, {bits} bits"
        );
    }
}

#[test]
fn length_limit_is_enforced() {
    let bytes = read("thank_you_22k.flac");
    let opts = PromptOptions::new(8_000).max_duration(Duration::from_secs(1));
    assert!(matches!(
        decode_bytes(&bytes, &opts),
        Err(PromptError::TooLong(d)) if d == Duration::from_secs(1)
    ));
    let opts = PromptOptions::new(8_000).max_duration(Duration::from_secs(2));
    assert!(decode_bytes(&bytes, &opts).is_ok());
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    /// Random bodies behind each container's magic: the parsers get past
    /// format detection and chew on nonsense.
    #[test]
    fn random_bodies_behind_real_magic_never_panic(
        magic in 0usize..5,
        body in proptest::collection::vec(any::<u8>(), 0..4_000),
    ) {
        let mut bytes = match magic {
            0 => wav_header(1, 1, 8_000, 16, body.len() as u32),
            1 => b"fLaC".to_vec(),
            2 => b"OggS\0\x02".to_vec(),
            3 => b"ID3\x03\0\0\0\0\0\0".to_vec(),
            _ => vec![0xFF, 0xFB, 0x90, 0x64],
        };
        bytes.extend_from_slice(&body);
        let _ = decode_any(&bytes, None);
    }

    /// A real file with a random run of bytes overwritten.
    #[test]
    fn overwritten_runs_never_panic(
        file in 0usize..FILES.len(),
        at in 0.0f64..1.0,
        run in proptest::collection::vec(any::<u8>(), 1..64),
    ) {
        let mut bytes = read(FILES[file]);
        let start = ((bytes.len() - 1) as f64 * at) as usize;
        for (i, b) in run.iter().enumerate() {
            if let Some(slot) = bytes.get_mut(start + i) {
                *slot = *b;
            }
        }
        let _ = decode_any(&bytes, None);
    }
}
