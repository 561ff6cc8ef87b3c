//! Per-20 ms-frame cost of every media stage, and of the whole receive
//! chain. Results and the machine they ran on go in `benches/RESULTS.md`.
//!
//! Run: `scripts/bench` (or `cargo bench --bench media -- <filter>`).
//!
//! The input is a synthetic voiced signal (a 140 Hz glottal-like harmonic
//! series with three formant peaks, syllable-rate amplitude modulation and
//! a noise floor). It exercises the same code paths as speech, without the
//! bench depending on external tools.

use std::hint::black_box;
use std::time::{Duration, Instant};

use bytes::Bytes;
use criterion::{Criterion, criterion_group, criterion_main};
use hotline_media::codec::opus::{OpusConfig, OpusDecoder, OpusEncoder};
use hotline_media::codec::{self, AudioDecoder, AudioEncoder, CodecKind};
use hotline_media::dtmf::DtmfDetector;
use hotline_media::jitter::{JitterBuffer, JitterConfig, JitterPacket, Pop};
use hotline_media::receive::{ReceiveChain, ReceiveConfig};
use hotline_media::resample::Resampler;
use hotline_media::rtp::{RtpPacket, RtpPacketBuilder};
use hotline_media::vad::{Vad, VadConfig};

/// `seconds` of voice-like audio at `rate`.
fn voice(rate: u32, seconds: f64) -> Vec<i16> {
    let n = (f64::from(rate) * seconds) as usize;
    let mut seed = 0x2545_f491_4f6c_dd1d_u64;
    let formants = [(700.0, 1.0), (1220.0, 0.5), (2600.0, 0.25)];
    (0..n)
        .map(|i| {
            let t = i as f64 / f64::from(rate);
            let mut v = 0.0;
            let mut h = 140.0;
            while h < f64::from(rate) / 2.0 - 200.0 && h < 3800.0 {
                let gain: f64 = formants
                    .iter()
                    .map(|(f, g)| g / (1.0 + ((h - f) / 150.0_f64).powi(2)))
                    .sum();
                v += gain * (2.0 * std::f64::consts::PI * h * t).sin();
                h += 140.0;
            }
            let envelope = 0.55 + 0.45 * (2.0 * std::f64::consts::PI * 4.0 * t).sin();
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            let noise = (seed >> 40) as f64 / (1u64 << 24) as f64 - 0.5;
            (v * envelope * 4000.0 + noise * 60.0) as i16
        })
        .collect()
}

fn frames(pcm: &[i16], rate: u32) -> Vec<Vec<i16>> {
    pcm.chunks_exact(rate as usize / 50)
        .map(<[i16]>::to_vec)
        .collect()
}

fn rtp(c: &mut Criterion) {
    let payload = [0x55u8; 160];
    let mut buf = Vec::with_capacity(256);
    let builder = RtpPacketBuilder {
        marker: false,
        payload_type: 0,
        sequence: 1,
        timestamp: 160,
        ssrc: 0xdead_beef,
        csrcs: &[],
        extension: None,
        padding: 0,
        payload: &payload,
    };
    builder.write_to(&mut buf).unwrap();
    let packet = buf.clone();
    let mut g = c.benchmark_group("rtp");
    g.bench_function("parse", |b| {
        b.iter(|| {
            let p = RtpPacket::parse(black_box(&packet)).unwrap();
            black_box(p.payload().len())
        })
    });
    g.bench_function("serialize", |b| {
        b.iter(|| {
            buf.clear();
            black_box(&builder).write_to(&mut buf).unwrap();
            black_box(buf.len())
        })
    });
    g.finish();
}

fn g711(c: &mut Criterion) {
    let pcm = voice(8000, 1.0);
    let frame = &pcm[..160];
    let mut g = c.benchmark_group("g711");
    for kind in [CodecKind::Pcmu, CodecKind::Pcma] {
        let mut enc = codec::encoder(kind, 8000).unwrap();
        let mut dec = codec::decoder(kind, 8000).unwrap();
        let mut bytes = Vec::with_capacity(160);
        let mut out = Vec::with_capacity(160);
        enc.encode(frame, &mut bytes).unwrap();
        let name = kind.encoding_name();
        g.bench_function(format!("{name}_encode_20ms"), |b| {
            b.iter(|| {
                bytes.clear();
                enc.encode(black_box(frame), &mut bytes).unwrap()
            })
        });
        let payload = bytes.clone();
        g.bench_function(format!("{name}_decode_20ms"), |b| {
            b.iter(|| {
                out.clear();
                dec.decode(black_box(&payload), &mut out).unwrap()
            })
        });
        g.bench_function(format!("{name}_conceal_20ms"), |b| {
            // Alternate a good frame and a loss so every conceal starts a
            // fresh erasure (the expensive pitch search).
            b.iter(|| {
                out.clear();
                dec.decode(&payload, &mut out).unwrap();
                dec.conceal(160, &mut out).unwrap()
            })
        });
    }
    g.finish();
}

fn opus(c: &mut Criterion) {
    let mut g = c.benchmark_group("opus");
    for rate in [8000, 16000, 48000] {
        let pcm = voice(rate, 2.0);
        let fr = frames(&pcm, rate);
        let mut enc = OpusEncoder::new(rate, OpusConfig::default()).unwrap();
        let mut dec = OpusDecoder::new(rate).unwrap();
        let mut packets = Vec::new();
        for f in &fr {
            let mut p = Vec::new();
            enc.encode(f, &mut p).unwrap();
            packets.push(p);
        }
        let mut bytes = Vec::with_capacity(4000);
        let mut i = 0;
        g.bench_function(format!("encode_{}k_c5_20ms", rate / 1000), |b| {
            b.iter(|| {
                bytes.clear();
                i = (i + 1) % fr.len();
                enc.encode(black_box(&fr[i]), &mut bytes).unwrap()
            })
        });
        let mut out = Vec::with_capacity(rate as usize / 50);
        g.bench_function(format!("decode_{}k_20ms", rate / 1000), |b| {
            b.iter(|| {
                out.clear();
                i = (i + 1) % packets.len();
                dec.decode(black_box(&packets[i]), &mut out).unwrap()
            })
        });
    }
    g.finish();
}

fn resample(c: &mut Criterion) {
    let mut g = c.benchmark_group("resample");
    let rates = [8000, 16000, 24000, 48000];
    let mut pairs: Vec<(u32, u32)> = rates
        .iter()
        .flat_map(|&a| rates.iter().filter(move |&&b| b != a).map(move |&b| (a, b)))
        .collect();
    pairs.extend([(22050, 8000), (22050, 16000), (22050, 48000)]);
    for (from, to) in pairs {
        let pcm = voice(from, 1.0);
        let fr = frames(&pcm, from);
        let mut r = Resampler::new(from, to).unwrap();
        let mut out = Vec::with_capacity(to as usize / 50);
        let mut i = 0;
        g.bench_function(format!("{from}_to_{to}_20ms"), |b| {
            b.iter(|| {
                out.clear();
                i = (i + 1) % fr.len();
                r.process(black_box(&fr[i]), &mut out).unwrap();
            })
        });
    }
    // 1,000 resamplers used in turn, as 500 calls with one each way do: each
    // frame finds its resampler's state out of cache. This is where per-call
    // FFT plans cost 2.5x their warm figure; the half-band path shares one
    // coefficient table. 24 kHz (rubato FFT) is the reference.
    for (from, to) in [(8000, 16000), (16000, 8000), (8000, 24000), (24000, 8000)] {
        let pcm = voice(from, 1.0);
        let fr = frames(&pcm, from);
        let mut rs: Vec<Resampler> = (0..1000)
            .map(|_| Resampler::new(from, to).unwrap())
            .collect();
        let mut out = Vec::with_capacity(to as usize / 50);
        let mut i = 0;
        g.bench_function(format!("{from}_to_{to}_20ms_1000_instances"), |b| {
            b.iter(|| {
                out.clear();
                i += 1;
                let r = &mut rs[i % 1000];
                r.process(black_box(&fr[i % fr.len()]), &mut out).unwrap();
            })
        });
    }
    g.finish();
}

fn jitter(c: &mut Criterion) {
    let mut jb = JitterBuffer::new(JitterConfig::default()).unwrap();
    let payload = Bytes::from_static(&[0xffu8; 160]);
    let t0 = Instant::now();
    let mut n: u32 = 0;
    c.bench_function("jitter/push_pop_20ms", |b| {
        b.iter(|| {
            // A steady stream with a 2-frame wobble in arrival times.
            let arrival = t0 + Duration::from_millis(u64::from(n) * 20 + u64::from(n % 3) * 7);
            jb.push(
                JitterPacket {
                    seq: n as u16,
                    timestamp: n.wrapping_mul(160),
                    ssrc: 1,
                    marker: n == 0,
                    payload: payload.clone(),
                },
                arrival,
            );
            let now = t0 + Duration::from_millis(u64::from(n) * 20);
            n = n.wrapping_add(1);
            black_box(matches!(jb.pop(now), Pop::Frame { .. }))
        })
    });
}

fn dtmf(c: &mut Criterion) {
    let mut g = c.benchmark_group("dtmf");
    for rate in [8000, 16000] {
        let pcm = voice(rate, 2.0);
        let fr = frames(&pcm, rate);
        let mut det = DtmfDetector::new(rate).unwrap();
        let mut events = Vec::with_capacity(8);
        let mut i = 0;
        g.bench_function(format!("goertzel_{}k_20ms", rate / 1000), |b| {
            b.iter(|| {
                events.clear();
                i = (i + 1) % fr.len();
                det.process(black_box(&fr[i]), &mut events);
            })
        });
    }
    g.finish();
}

fn vad(c: &mut Criterion) {
    let mut g = c.benchmark_group("vad");
    for rate in [8000, 16000] {
        let pcm = voice(rate, 2.0);
        let fr = frames(&pcm, rate);
        let mut v = Vad::new(VadConfig::new(rate, 20)).unwrap();
        let (mut frames_out, mut events) = (Vec::with_capacity(4), Vec::with_capacity(4));
        let mut i = 0;
        g.bench_function(format!("{}k_20ms", rate / 1000), |b| {
            b.iter(|| {
                frames_out.clear();
                events.clear();
                i = (i + 1) % fr.len();
                v.process(black_box(&fr[i]), &mut frames_out, &mut events);
            })
        });
    }
    g.finish();
}

/// A minute of RTP for `kind`, as datagrams, one per 20 ms.
fn rtp_stream(kind: CodecKind, pt: u8, rate: u32) -> Vec<Bytes> {
    let pcm = voice(rate, 60.0);
    let mut enc = codec::encoder(kind, rate).unwrap();
    let step = kind.rtp_clock_rate() / 50;
    frames(&pcm, rate)
        .iter()
        .enumerate()
        .map(|(n, f)| {
            let mut payload = Vec::new();
            enc.encode(f, &mut payload).unwrap();
            let mut buf = Vec::new();
            RtpPacketBuilder {
                marker: n == 0,
                payload_type: pt,
                sequence: n as u16,
                timestamp: (n as u32).wrapping_mul(step),
                ssrc: 0x0bad_cafe,
                csrcs: &[],
                extension: None,
                padding: 0,
                payload: &payload,
            }
            .write_to(&mut buf)
            .unwrap();
            Bytes::from(buf)
        })
        .collect()
}

fn receive_chain(c: &mut Criterion) {
    let mut g = c.benchmark_group("receive_chain");
    for (name, kind, pt, rate) in [
        ("pcmu_to_16k_dtmf_vad_20ms", CodecKind::Pcmu, 0u8, 8000u32),
        ("opus16k_dtmf_vad_20ms", CodecKind::Opus, 111, 16000),
    ] {
        let stream = rtp_stream(kind, pt, rate);
        let mut chain =
            ReceiveChain::new(ReceiveConfig::new(kind, pt).with_telephone_event(101)).unwrap();
        let (mut out, mut events) = (Vec::with_capacity(320), Vec::with_capacity(8));
        let t0 = Instant::now();
        let mut n = 0usize;
        g.bench_function(name, |b| {
            b.iter(|| {
                let now = t0 + Duration::from_millis(n as u64 * 20);
                let _ = chain.push_rtp(stream[n % stream.len()].clone(), now);
                events.clear();
                chain.pull(now, &mut out, &mut events);
                n += 1;
                black_box(out.len())
            })
        });
    }
    g.finish();
}

/// One G.711 <-> Opus 16 kHz transcoded call, both directions, per 20 ms:
/// PCMU decode, 8 -> 16 kHz, Opus encode; Opus decode, 16 -> 8 kHz, PCMU
/// encode. This is what an Opus WebRTC leg bridged to a G.711 trunk costs.
fn transcode(c: &mut Criterion) {
    let pcm8 = voice(8000, 2.0);
    let pcm16 = voice(16000, 2.0);
    let fr8 = frames(&pcm8, 8000);
    let fr16 = frames(&pcm16, 16000);
    let mut ulaw_enc = codec::encoder(CodecKind::Pcmu, 8000).unwrap();
    let mut ulaw_dec = codec::decoder(CodecKind::Pcmu, 8000).unwrap();
    let mut opus_enc = OpusEncoder::new(16000, OpusConfig::default()).unwrap();
    let mut opus_dec = OpusDecoder::new(16000).unwrap();
    let mut up = Resampler::new(8000, 16000).unwrap();
    let mut down = Resampler::new(16000, 8000).unwrap();
    let ulaw: Vec<Vec<u8>> = fr8
        .iter()
        .map(|f| {
            let mut p = Vec::new();
            ulaw_enc.encode(f, &mut p).unwrap();
            p
        })
        .collect();
    let opus: Vec<Vec<u8>> = fr16
        .iter()
        .map(|f| {
            let mut p = Vec::new();
            opus_enc.encode(f, &mut p).unwrap();
            p
        })
        .collect();
    let (mut a, mut b16, mut bytes) = (
        Vec::with_capacity(320),
        Vec::with_capacity(320),
        Vec::with_capacity(4000),
    );
    let mut i = 0;
    c.bench_function("transcode/pcmu_opus16k_c5_both_ways_20ms", |b| {
        b.iter(|| {
            i = (i + 1) % ulaw.len().min(opus.len());
            a.clear();
            b16.clear();
            bytes.clear();
            ulaw_dec.decode(&ulaw[i], &mut a).unwrap();
            up.process(&a, &mut b16).unwrap();
            opus_enc.encode(&b16, &mut bytes).unwrap();
            a.clear();
            b16.clear();
            opus_dec.decode(&opus[i], &mut b16).unwrap();
            down.process(&b16, &mut a).unwrap();
            bytes.clear();
            ulaw_enc.encode(&a, &mut bytes).unwrap();
            black_box(bytes.len())
        })
    });
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .sample_size(40)
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2));
    targets = rtp, g711, opus, resample, jitter, dtmf, vad, receive_chain, transcode
}
criterion_main!(benches);
