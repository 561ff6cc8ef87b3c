//! Opus through the codec traits: round trips at 8, 16 and 48 kHz, packet
//! sizes, libopus concealment, in-band FEC and hostile payloads.

mod support;

use hotline_media::codec::{
    AudioDecoder, AudioEncoder, CodecError, CodecKind, OpusConfig, OpusDecoder, OpusEncoder,
    decoder,
};
use hotline_media::level::dbm0_to_peak;
use support::signal::{self, corr, rms, zero_crossings};

const RATES: [u32; 3] = [8000, 16_000, 48_000];

/// A −10 dBm0 sine.
fn sine(freq: f64, rate: u32, len: usize) -> Vec<i16> {
    signal::sine(freq, rate, len, dbm0_to_peak(-10.0))
}

/// The codec delay: the lag (up to 20 ms) at which the decoded signal best
/// matches the input, and the correlation there.
fn align(input: &[i16], decoded: &[i16], rate: u32) -> (usize, f64) {
    (0..rate as usize / 50)
        .map(|lag| (lag, corr(input, &decoded[lag..])))
        .max_by(|a, b| a.1.total_cmp(&b.1))
        .unwrap()
}

/// Encodes `pcm` in 20 ms frames; returns the packets.
fn encode_all(enc: &mut dyn AudioEncoder, pcm: &[i16]) -> Vec<Vec<u8>> {
    let frame = enc.frame_samples();
    pcm.chunks_exact(frame)
        .map(|f| {
            let mut p = Vec::new();
            let n = enc.encode(f, &mut p).unwrap();
            assert_eq!(n, p.len());
            p
        })
        .collect()
}

fn decode_all(dec: &mut dyn AudioDecoder, packets: &[Vec<u8>]) -> Vec<i16> {
    let mut out = Vec::new();
    for p in packets {
        let n = dec.decode(p, &mut out).unwrap();
        assert_eq!(n, dec.frame_samples());
    }
    out
}

#[test]
fn sine_round_trip_keeps_frequency_and_level() {
    for rate in RATES {
        for freq in [300.0, 1000.0, 2500.0] {
            let input = sine(freq, rate, rate as usize);
            let mut enc = OpusEncoder::new(rate, OpusConfig::default()).unwrap();
            let mut dec = decoder(CodecKind::Opus, rate).unwrap();
            let out = decode_all(dec.as_mut(), &encode_all(&mut enc, &input));
            assert_eq!(out.len(), input.len());
            // A sine's delay is ambiguous by whole periods, so search only
            // ±0.25 ms around the encoder's look-ahead, which the speech test
            // confirms is the codec delay. Skip the encoder's start-up.
            let skip = rate as usize / 5;
            let near = rate as usize / 4000;
            let la = enc.lookahead();
            let c = (la - near..=la + near)
                .map(|lag| corr(&input[skip..], &out[lag + skip..]))
                .fold(f64::NEG_INFINITY, f64::max);
            assert!(c > 0.95, "{rate} Hz {freq} Hz: correlation {c:.3}");
            // Skip the encoder's start-up; compare the steady state.
            let steady = &out[rate as usize / 5..];
            let level_db = 20.0 * (rms(steady) / rms(&input)).log10();
            assert!(
                level_db.abs() < 1.0,
                "{rate} Hz {freq} Hz: level {level_db:.2} dB"
            );
            let expect = 2.0 * freq * steady.len() as f64 / rate as f64;
            let got = zero_crossings(steady) as f64;
            assert!(
                (got - expect).abs() <= 0.01 * expect + 2.0,
                "{rate} Hz {freq} Hz: {got} zero crossings, expected {expect}"
            );
        }
    }
}

#[test]
fn speech_round_trip_keeps_the_waveform() {
    for rate in RATES {
        let input: Vec<i16> = support::CORPUS[..2]
            .iter()
            .flat_map(|t| support::speech("en-us", 160, t, rate))
            .collect();
        let mut enc = OpusEncoder::new(rate, OpusConfig::default()).unwrap();
        let mut dec = OpusDecoder::new(rate).unwrap();
        let packets = encode_all(&mut enc, &input);
        let out = decode_all(&mut dec, &packets);
        let (lag, c) = align(&input, &out, rate);
        println!("{rate} Hz speech: delay {lag}, correlation {c:.3}");
        // The delay is the encoder's look-ahead (the decoder adds none).
        assert!(
            (lag as i64 - enc.lookahead() as i64).abs() <= 4,
            "{rate} Hz: delay {lag}, look-ahead {}",
            enc.lookahead()
        );
        assert!(c > 0.8, "{rate} Hz: correlation {c:.3}");
        let n = input.len() - lag;
        let level_db = 20.0 * (rms(&out[lag..]) / rms(&input[..n])).log10();
        assert!(level_db.abs() < 1.5, "{rate} Hz: level {level_db:.2} dB");
    }
}

#[test]
fn packets_stay_within_the_size_bound() {
    let speech = support::speech("en-gb", 160, support::CORPUS[0], 48_000);
    for rate in RATES {
        let input: Vec<i16> = speech
            .iter()
            .step_by((48_000 / rate) as usize)
            .copied()
            .collect();
        for bitrate in [12_000u32, 24_000, 64_000] {
            // CBR: every 20 ms packet carries exactly bitrate × 20 ms.
            let cbr = OpusConfig {
                bitrate,
                vbr: false,
                ..OpusConfig::default()
            };
            let mut enc = OpusEncoder::new(rate, cbr).unwrap();
            for p in encode_all(&mut enc, &input) {
                assert_eq!(p.len(), bitrate as usize / 400, "{rate} Hz CBR {bitrate}");
            }
            // VBR: one frame is at most 1275 bytes (RFC 6716 §3.2.1) and the
            // average follows the target.
            let vbr = OpusConfig {
                bitrate,
                ..OpusConfig::default()
            };
            let mut enc = OpusEncoder::new(rate, vbr).unwrap();
            let packets = encode_all(&mut enc, &input);
            assert!(packets.iter().all(|p| !p.is_empty() && p.len() <= 1275));
            let mean = packets.iter().map(Vec::len).sum::<usize>() as f64 / packets.len() as f64;
            let target = bitrate as f64 / 400.0;
            assert!(
                mean < 1.3 * target && mean > 0.3 * target,
                "{rate} Hz VBR {bitrate}: mean {mean:.1} bytes, target {target}"
            );
        }
    }
}

#[test]
fn dtx_sends_tiny_packets_in_silence() {
    let cfg = OpusConfig {
        dtx: true,
        ..OpusConfig::default()
    };
    let mut enc = OpusEncoder::new(16_000, cfg).unwrap();
    let silence = vec![0i16; 320];
    let mut sizes = Vec::new();
    let mut dtx = false;
    for _ in 0..50 {
        let mut p = Vec::new();
        sizes.push(enc.encode(&silence, &mut p).unwrap());
        dtx |= enc.in_dtx();
    }
    assert!(dtx, "encoder never entered DTX");
    // Once in DTX only a comfort-noise update every 400 ms is a real
    // packet; the rest are 1-2 byte placeholders that need not be sent.
    let real = sizes[10..].iter().filter(|&&s| s > 2).count();
    assert!(real <= 3, "{sizes:?}");
    assert!(
        sizes[10..].iter().filter(|&&s| s <= 2).count() >= 35,
        "{sizes:?}"
    );
    // Without DTX silence still costs real packets.
    let mut plain = OpusEncoder::new(16_000, OpusConfig::default()).unwrap();
    let mut p = Vec::new();
    for _ in 0..50 {
        p.clear();
        plain.encode(&silence, &mut p).unwrap();
    }
    assert!(!plain.in_dtx());
    assert!(p.len() > 2);
}

#[test]
fn concealment_is_audible_and_bounded() {
    for rate in RATES {
        let frame = rate as usize / 50;
        let input = sine(440.0, rate, rate as usize);
        let mut enc = OpusEncoder::new(rate, OpusConfig::default()).unwrap();
        let packets = encode_all(&mut enc, &input);
        let mut dec = OpusDecoder::new(rate).unwrap();
        let mut out = decode_all(&mut dec, &packets[..25]);
        let before = rms(&out[out.len() - frame..]);
        let start = out.len();
        assert_eq!(dec.conceal(frame, &mut out), Ok(frame));
        let plc = &out[start..];
        let level = rms(plc);
        assert!(
            level > 0.3 * before && level < 2.0 * before,
            "{rate} Hz: concealed rms {level:.0} vs {before:.0} before"
        );
        let peak = plc.iter().map(|s| s.unsigned_abs()).max().unwrap();
        assert!(
            peak as f64 <= 2.0 * dbm0_to_peak(-10.0),
            "{rate} Hz: peak {peak}"
        );
        // A steady tone is continued as a tone of the same frequency.
        let expect = 2.0 * 440.0 * frame as f64 / rate as f64;
        let got = zero_crossings(plc) as f64;
        assert!(
            (got - expect).abs() <= 2.0,
            "{rate} Hz: {got} crossings vs {expect}"
        );
        // A long loss fades out rather than buzzing on.
        let mut long = Vec::new();
        for _ in 0..25 {
            dec.conceal(frame, &mut long).unwrap();
        }
        assert!(rms(&long[long.len() - frame..]) < 0.1 * before);
        // And decoding resumes normally.
        let mut after = Vec::new();
        assert_eq!(dec.decode(&packets[26], &mut after), Ok(frame));
    }
}

#[test]
fn concealment_takes_any_multiple_of_2_5_ms() {
    let mut dec = OpusDecoder::new(48_000).unwrap();
    let mut out = Vec::new();
    for ms10 in [25usize, 50, 100, 200, 400, 600, 1200] {
        let n = 48 * ms10 / 10;
        out.clear();
        assert_eq!(dec.conceal(n, &mut out), Ok(n));
        assert_eq!(out.len(), n);
    }
    assert_eq!(dec.conceal(0, &mut out), Ok(0));
    assert_eq!(
        dec.conceal(121, &mut out),
        Err(CodecError::FrameSize {
            samples: 121,
            rate: 48_000
        })
    );
}

/// Mean squared error between two equal-length slices.
fn mse(a: &[i16], b: &[i16]) -> f64 {
    a.iter()
        .zip(b)
        .map(|(&x, &y)| (x as f64 - y as f64).powi(2))
        .sum::<f64>()
        / a.len() as f64
}

#[test]
fn inband_fec_recovers_lost_packets_better_than_concealment() {
    for rate in RATES {
        let frame = rate as usize / 50;
        let input: Vec<i16> = support::CORPUS[..3]
            .iter()
            .flat_map(|t| support::speech("en-us+m7", 150, t, rate))
            .collect();
        let cfg = OpusConfig {
            bitrate: 32_000,
            inband_fec: true,
            expected_loss_percent: 20,
            ..OpusConfig::default()
        };
        let mut enc = OpusEncoder::new(rate, cfg).unwrap();
        let packets = encode_all(&mut enc, &input);
        let clean = decode_all(&mut OpusDecoder::new(rate).unwrap(), &packets);

        // Lose every 7th packet; recover once with FEC, once with PLC.
        let lost = |i: usize| i % 7 == 3;
        let mut with_fec = Vec::new();
        let mut with_plc = Vec::new();
        let mut fec_dec = OpusDecoder::new(rate).unwrap();
        let mut plc_dec = OpusDecoder::new(rate).unwrap();
        for (i, p) in packets.iter().enumerate() {
            if lost(i) {
                let next = packets.get(i + 1).map_or(&[][..], |n| &n[..]);
                assert_eq!(fec_dec.decode_fec(next, frame, &mut with_fec), Ok(frame));
                plc_dec.conceal(frame, &mut with_plc).unwrap();
            } else {
                fec_dec.decode(p, &mut with_fec).unwrap();
                plc_dec.decode(p, &mut with_plc).unwrap();
            }
        }
        let (mut e_fec, mut e_plc, mut e_sig) = (0.0, 0.0, 0.0);
        for i in (0..packets.len()).filter(|&i| lost(i)) {
            let r = i * frame..(i + 1) * frame;
            e_fec += mse(&clean[r.clone()], &with_fec[r.clone()]);
            e_plc += mse(&clean[r.clone()], &with_plc[r.clone()]);
            e_sig += rms(&clean[r]).powi(2);
        }
        let snr_fec = 10.0 * (e_sig / e_fec).log10();
        let snr_plc = 10.0 * (e_sig / e_plc).log10();
        println!("{rate} Hz: FEC {snr_fec:.2} dB, PLC {snr_plc:.2} dB");
        assert!(
            snr_fec > snr_plc + 3.0,
            "{rate} Hz: FEC {snr_fec:.2} dB vs PLC {snr_plc:.2} dB"
        );
        assert!(snr_fec > 3.0, "{rate} Hz: FEC {snr_fec:.2} dB");
    }
}

#[test]
fn fec_without_redundancy_falls_back_to_concealment() {
    let rate = 16_000;
    let input = support::speech("en-us", 160, support::CORPUS[1], rate);
    let cfg = OpusConfig {
        inband_fec: false,
        ..OpusConfig::default()
    };
    let packets = encode_all(&mut OpusEncoder::new(rate, cfg).unwrap(), &input);
    let mut a = OpusDecoder::new(rate).unwrap();
    let mut b = OpusDecoder::new(rate).unwrap();
    let mut out_a = decode_all(&mut a, &packets[..40]);
    let mut out_b = decode_all(&mut b, &packets[..40]);
    a.decode_fec(&packets[41], 320, &mut out_a).unwrap();
    b.conceal(320, &mut out_b).unwrap();
    assert_eq!(out_a, out_b);
    // An empty "next packet" means there is none: plain concealment.
    let mut c = OpusDecoder::new(rate).unwrap();
    let mut out_c = decode_all(&mut c, &packets[..40]);
    c.decode_fec(&[], 320, &mut out_c).unwrap();
    assert_eq!(out_c, out_b);
}

#[test]
fn malformed_packets_are_errors_not_panics() {
    let mut too_long = vec![0x00u8];
    too_long.extend(std::iter::repeat_n(0xAA, 1276));
    let invalid: [&[u8]; 5] = [
        // Code 3 (arbitrary frame count) with a count of zero.
        &[0x03, 0x00],
        // Code 1 (two equal frames) with an odd number of bytes to split.
        &[0x01, 0x10, 0x20, 0x30],
        // Code 2 (two frames) whose first frame length runs past the end.
        &[0x02, 0xFB, 0x00],
        // Code 3 asking for 49 frames of 60 ms: over the 120 ms limit.
        &[0x1B, 0x31, 0x00],
        // A single frame longer than 1275 bytes.
        &too_long,
    ];
    for rate in RATES {
        let mut dec = OpusDecoder::new(rate).unwrap();
        let mut out = vec![5i16; 3];
        for p in invalid {
            let err = dec.decode(p, &mut out).unwrap_err();
            assert!(
                matches!(
                    err,
                    CodecError::Opus {
                        code: opus::ErrorCode::InvalidPacket,
                        ..
                    }
                ),
                "{p:02x?}: {err}"
            );
            assert_eq!(out, [5, 5, 5], "nothing appended on error");
            // Only the TOC and frame count are read here, so some of these
            // pass; it must not panic either way.
            let _ = dec.payload_samples(p);
            assert!(dec.decode_fec(p, rate as usize / 50, &mut out).is_err());
        }
        // The decoder still works afterwards.
        let good = encode_all(
            &mut OpusEncoder::new(rate, OpusConfig::default()).unwrap(),
            &sine(500.0, rate, rate as usize / 10),
        );
        assert_eq!(dec.decode(&good[0], &mut out), Ok(rate as usize / 50));
    }
}

#[test]
fn random_garbage_never_panics() {
    let mut noise = support::Noise::new(0xBAD5EED);
    for rate in RATES {
        let mut dec = OpusDecoder::new(rate).unwrap();
        let mut out = Vec::new();
        let (mut ok, mut err) = (0, 0);
        for _ in 0..2000 {
            let len = ((noise.uniform() + 1.0) * 200.0) as usize + 1;
            let bytes: Vec<u8> = (0..len)
                .map(|_| ((noise.uniform() + 1.0) * 128.0) as u8)
                .collect();
            out.clear();
            match dec.decode(&bytes, &mut out) {
                Ok(n) => {
                    ok += 1;
                    assert_eq!(n, out.len());
                    assert!(n <= rate as usize * 120 / 1000);
                }
                Err(_) => {
                    err += 1;
                    assert!(out.is_empty());
                }
            }
        }
        // Opus' framing is lenient, so plenty of noise parses; the rest
        // must have been reported.
        assert!(ok > 0 && err > 0, "{rate} Hz: {ok} ok, {err} errors");
    }
}
