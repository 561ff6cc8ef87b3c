//! The WAV reader must never panic, whatever bytes it is given: arbitrary
//! input, valid files cut at every offset, and valid files with corrupted
//! header fields.

use hotline_media::wav::{SampleFormat, WavSpec, encode_wav, read_wav};
use proptest::prelude::*;

fn valid_files() -> Vec<Vec<u8>> {
    let samples: Vec<i16> = (0..37).map(|i| (i * 997 - 16000) as i16).collect();
    let mut files = vec![
        encode_wav(WavSpec::mono(8000), &samples).unwrap(),
        encode_wav(WavSpec::stereo(16000), &samples[..36]).unwrap(),
        encode_wav(
            WavSpec {
                sample_rate: 8000,
                channels: 1,
                format: SampleFormat::MuLaw,
            },
            &samples,
        )
        .unwrap(),
    ];
    // An extensible 24-bit stereo file with a LIST chunk and an odd chunk.
    let mut f = Vec::new();
    f.extend_from_slice(b"RIFF\0\0\0\0WAVE");
    f.extend_from_slice(b"fmt \x28\0\0\0");
    f.extend_from_slice(&0xFFFEu16.to_le_bytes());
    f.extend_from_slice(&2u16.to_le_bytes());
    f.extend_from_slice(&8000u32.to_le_bytes());
    f.extend_from_slice(&48000u32.to_le_bytes());
    f.extend_from_slice(&6u16.to_le_bytes());
    f.extend_from_slice(&24u16.to_le_bytes());
    f.extend_from_slice(&22u16.to_le_bytes());
    f.extend_from_slice(&24u16.to_le_bytes());
    f.extend_from_slice(&3u32.to_le_bytes());
    f.extend_from_slice(&[
        1, 0, 0, 0, 0, 0, 0x10, 0, 0x80, 0, 0, 0xAA, 0, 0x38, 0x9B, 0x71,
    ]);
    f.extend_from_slice(b"LIST\x05\0\0\0INFOx\0");
    f.extend_from_slice(b"data\x0c\0\0\0");
    f.extend_from_slice(&[1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12]);
    let n = f.len() as u32 - 8;
    f[4..8].copy_from_slice(&n.to_le_bytes());
    assert_eq!(read_wav(&f).unwrap().samples.len(), 4);
    files.push(f);
    files
}

#[test]
fn truncation_at_every_offset_never_panics() {
    for file in valid_files() {
        let full = read_wav(&file).unwrap();
        for cut in 0..file.len() {
            match read_wav(&file[..cut]) {
                Ok(w) => {
                    // Whatever is returned is a prefix of the real audio.
                    assert!(w.samples.len() <= full.samples.len());
                    assert_eq!(w.samples[..], full.samples[..w.samples.len()]);
                    assert_eq!(w.format, full.format);
                    assert!(w.truncated || w.samples.len() == full.samples.len());
                }
                Err(e) => {
                    // Every error renders to a message.
                    assert!(!e.to_string().is_empty());
                }
            }
        }
    }
}

#[test]
fn every_single_byte_corruption_of_the_header_is_handled() {
    for file in valid_files() {
        for at in 0..file.len().min(80) {
            for v in [0u8, 1, 0x7F, 0x80, 0xFF] {
                let mut f = file.clone();
                f[at] = v;
                let _ = read_wav(&f);
            }
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
        let _ = read_wav(&bytes);
    }

    #[test]
    fn arbitrary_bytes_after_a_riff_header_never_panic(
        body in proptest::collection::vec(any::<u8>(), 0..512),
        size in any::<u32>(),
    ) {
        let mut f = b"RIFF".to_vec();
        f.extend_from_slice(&size.to_le_bytes());
        f.extend_from_slice(b"WAVE");
        f.extend_from_slice(&body);
        let _ = read_wav(&f);
    }

    #[test]
    fn structured_garbage_never_panics(
        tag in prop_oneof![Just(1u16), Just(3), Just(6), Just(7), Just(0xFFFE), any::<u16>()],
        channels in any::<u16>(),
        rate in any::<u32>(),
        align in any::<u16>(),
        bits in any::<u16>(),
        ext in proptest::collection::vec(any::<u8>(), 0..30),
        data_size in any::<u32>(),
        data in proptest::collection::vec(any::<u8>(), 0..256),
    ) {
        let mut fmt = Vec::new();
        fmt.extend_from_slice(&tag.to_le_bytes());
        fmt.extend_from_slice(&channels.to_le_bytes());
        fmt.extend_from_slice(&rate.to_le_bytes());
        fmt.extend_from_slice(&0u32.to_le_bytes());
        fmt.extend_from_slice(&align.to_le_bytes());
        fmt.extend_from_slice(&bits.to_le_bytes());
        fmt.extend_from_slice(&ext);
        let mut f = b"RIFF\xff\xff\xff\xffWAVEfmt ".to_vec();
        f.extend_from_slice(&(fmt.len() as u32).to_le_bytes());
        f.extend_from_slice(&fmt);
        if fmt.len() % 2 == 1 { f.push(0); }
        f.extend_from_slice(b"data");
        f.extend_from_slice(&data_size.to_le_bytes());
        f.extend_from_slice(&data);
        if let Ok(w) = read_wav(&f) {
            prop_assert!(w.format.channels > 0);
            prop_assert_eq!(w.samples.len() % usize::from(w.format.channels), 0);
        }
    }

    #[test]
    fn round_trip_arbitrary_pcm(
        samples in proptest::collection::vec(any::<i16>(), 0..2000),
        stereo in any::<bool>(),
        rate in 1u32..200_000,
    ) {
        let spec = if stereo { WavSpec::stereo(rate) } else { WavSpec::mono(rate) };
        let mut s = samples;
        if stereo && s.len() % 2 == 1 { s.pop(); }
        let w = read_wav(&encode_wav(spec, &s).unwrap()).unwrap();
        prop_assert_eq!(w.samples, s);
        prop_assert_eq!(w.format.sample_rate, rate);
    }
}
