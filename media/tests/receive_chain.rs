//! The whole receive chain on simulated networks with real speech: RTP in,
//! 16 kHz audio, digits and speech events out.

mod support;

use std::time::{Duration, Instant};

use bytes::Bytes;
use hotline_media::codec::{self, CodecKind};
use hotline_media::dtmf::rfc4733::{EventSender, SenderConfig};
use hotline_media::dtmf::{Digit, ToneParams, render_sequence};
use hotline_media::receive::{
    DigitSource, InbandDtmf, PushError, ReceiveChain, ReceiveConfig, ReceiveEvent,
};
use hotline_media::rtp::RtpPacketBuilder;
use support::Noise;

const TE_PT: u8 = 101;
const TICK: Duration = Duration::from_millis(20);

/// What the far end sends, tick by tick.
struct Sender {
    codec: CodecKind,
    encoder: Box<dyn codec::AudioEncoder + Send>,
    events: EventSender,
    ssrc: u32,
    seq: u16,
    ts: u32,
    ts_step: u32,
    digits_at: Vec<(usize, Digit, u32)>,
}

impl Sender {
    fn new(codec: CodecKind, rate: u32, ssrc: u32) -> Self {
        let clock = codec.rtp_clock_rate();
        Sender {
            codec,
            encoder: codec::encoder(codec, rate).unwrap(),
            events: EventSender::new(SenderConfig::for_clock(clock, 20)).unwrap(),
            ssrc,
            seq: 65_500, // exercise rollover
            ts: 4_000_000_000,
            ts_step: clock / 50,
            digits_at: Vec::new(),
        }
    }

    fn packet(&mut self, pt: u8, marker: bool, ts: u32, payload: &[u8]) -> Bytes {
        let mut buf = Vec::new();
        RtpPacketBuilder {
            marker,
            payload_type: pt,
            sequence: self.seq,
            timestamp: ts,
            ssrc: self.ssrc,
            csrcs: &[],
            extension: None,
            padding: 0,
            payload,
        }
        .write_to(&mut buf)
        .unwrap();
        self.seq = self.seq.wrapping_add(1);
        Bytes::from(buf)
    }

    /// Encodes `pcm` 20 ms at a time; returns (send tick, datagram) pairs.
    fn stream(&mut self, pcm: &[i16]) -> Vec<(usize, Bytes)> {
        let frame = self.encoder.frame_samples();
        let mut out = Vec::new();
        for (tick, chunk) in pcm.chunks(frame).enumerate() {
            let mut samples = chunk.to_vec();
            samples.resize(frame, 0);
            for &(at, digit, dur) in &self.digits_at {
                if at == tick {
                    self.events.start(digit.event_code(), self.ts, dur).unwrap();
                }
            }
            if let Some(ev) = self.events.next_packet(self.ts) {
                let p = self.packet(TE_PT, ev.marker, ev.timestamp, &ev.payload);
                out.push((tick, p));
            }
            let mut payload = Vec::new();
            self.encoder.encode(&samples, &mut payload).unwrap();
            let pt = self.codec.static_payload_type().unwrap_or(111);
            let ts = self.ts;
            let p = self.packet(pt, tick == 0, ts, &payload);
            out.push((tick, p));
            self.ts = self.ts.wrapping_add(self.ts_step);
        }
        out
    }
}

/// A network with uniform delay jitter and random loss.
struct Network {
    rng: Noise,
    base_delay: Duration,
    jitter: Duration,
    loss: f64,
}

impl Network {
    fn new(seed: u64, base_ms: u64, jitter_ms: u64, loss: f64) -> Self {
        Network {
            rng: Noise::new(seed),
            base_delay: Duration::from_millis(base_ms),
            jitter: Duration::from_millis(jitter_ms),
            loss,
        }
    }
}

struct Received {
    audio: Vec<i16>,
    events: Vec<ReceiveEvent>,
}

fn run(
    chain: &mut ReceiveChain,
    sent: Vec<(usize, Bytes)>,
    net: &mut Network,
    extra_ticks: usize,
) -> Received {
    let t0 = Instant::now();
    let mut arrivals: Vec<(Instant, Bytes)> = Vec::new();
    let last_tick = sent.last().map_or(0, |s| s.0);
    for (tick, datagram) in sent {
        if (net.rng.uniform() + 1.0) / 2.0 < net.loss {
            continue;
        }
        let jitter = net.jitter.mul_f64((net.rng.uniform() + 1.0) / 2.0);
        arrivals.push((t0 + TICK * tick as u32 + net.base_delay + jitter, datagram));
    }
    arrivals.sort_by_key(|a| a.0);
    let mut next = arrivals.into_iter().peekable();
    let mut audio = Vec::new();
    let mut events = Vec::new();
    let mut frame = Vec::new();
    for tick in 0..=last_tick + extra_ticks {
        let now = t0 + TICK * tick as u32;
        while let Some((_, d)) = next.next_if(|(at, _)| *at <= now) {
            chain.push_rtp(d, now).unwrap();
        }
        chain.pull(now, &mut frame, &mut events);
        assert_eq!(
            frame.len(),
            chain.frame_len(),
            "every pull yields exactly 20 ms"
        );
        audio.extend_from_slice(&frame);
    }
    Received { audio, events }
}

fn digits(events: &[ReceiveEvent]) -> Vec<(Digit, DigitSource, Option<Duration>)> {
    events
        .iter()
        .filter_map(|e| match e {
            ReceiveEvent::Digit(d) => Some((d.digit, d.source, d.duration)),
            ReceiveEvent::Speech(_) => None,
        })
        .collect()
}

/// The digits whose start was reported, with their source.
fn starts(events: &[ReceiveEvent]) -> Vec<(Digit, DigitSource)> {
    digits(events)
        .into_iter()
        .filter(|x| x.2.is_none())
        .map(|x| (x.0, x.1))
        .collect()
}

fn speech_events(events: &[ReceiveEvent]) -> Vec<(bool, Duration)> {
    events
        .iter()
        .filter_map(|e| match e {
            ReceiveEvent::Speech(v) => Some((v.is_start(), v.at())),
            ReceiveEvent::Digit(_) => None,
        })
        .collect()
}

fn silence(ms: usize, rate: usize) -> Vec<i16> {
    vec![0; ms * rate / 1000]
}

fn rms(x: &[i16]) -> f64 {
    (x.iter().map(|&s| f64::from(s).powi(2)).sum::<f64>() / x.len().max(1) as f64).sqrt()
}

fn parse(s: &str) -> Vec<Digit> {
    s.chars().map(|c| Digit::from_char(c).unwrap()).collect()
}

#[test]
fn pcmu_speech_and_rfc4733_digits_over_a_lossy_network() {
    let speech = support::speech("en-us", 160, support::CORPUS[0], 8000);
    // 1 s silence, speech, 1.5 s silence with digits, 1 s silence. The
    // sender also leaves the tones in the audio, as some gateways do.
    // espeak pads its output with silence: find where the voice is.
    let voiced = |x: &i16| x.unsigned_abs() > 300;
    let first = speech.iter().position(voiced).unwrap();
    let last = speech.iter().rposition(voiced).unwrap();
    let mut pcm = silence(1000, 8000);
    let at = |i: usize| Duration::from_secs_f64((8000 + i) as f64 / 8000.0);
    let (onset, speech_end) = (at(first), at(last));
    pcm.extend_from_slice(&speech);
    pcm.extend(silence(500, 8000));
    let digit_tick = pcm.len() / 160;
    let mut tones = Vec::new();
    render_sequence(
        8000,
        "12#",
        ToneParams::default(),
        Duration::from_millis(100),
        Duration::from_millis(200),
        &mut tones,
    )
    .unwrap();
    pcm.extend_from_slice(&tones);
    pcm.extend(silence(1000, 8000));

    let mut sender = Sender::new(CodecKind::Pcmu, 8000, 0x1234_5678);
    sender.digits_at = parse("12#")
        .into_iter()
        .enumerate()
        .map(|(i, d)| (digit_tick + i * 15, d, 800))
        .collect();
    let sent = sender.stream(&pcm);

    let mut chain =
        ReceiveChain::new(ReceiveConfig::new(CodecKind::Pcmu, 0).with_telephone_event(TE_PT))
            .unwrap();
    let mut net = Network::new(7, 30, 40, 0.03);
    let got = run(&mut chain, sent, &mut net, 50);

    // Each digit once, from RFC 4733, although the tones were in the audio
    // too; with 3% loss the redundant end packets still close each digit.
    let d = digits(&got.events);
    let starts = starts(&got.events);
    assert_eq!(
        starts,
        parse("12#")
            .into_iter()
            .map(|d| (d, DigitSource::Rfc4733))
            .collect::<Vec<_>>(),
        "{d:?}"
    );
    for (digit, _, duration) in d.iter().filter(|x| x.2.is_some()) {
        assert_eq!(duration.unwrap(), Duration::from_millis(100), "{digit}");
    }

    // One utterance, starting at the speech onset plus the playout delay.
    let s = speech_events(&got.events);
    assert_eq!(s.len(), 2, "{s:?}");
    let (started, start_at) = s[0];
    let (ended, end_at) = s[1];
    assert!(started && !ended);
    let playout = chain.jitter_stats().mean_buffered_delay + Duration::from_millis(30);
    assert!(
        start_at >= onset && start_at <= onset + playout + Duration::from_millis(150),
        "speech start at {start_at:?}, onset {onset:?}"
    );
    assert!(
        end_at >= speech_end - Duration::from_millis(200)
            && end_at <= speech_end + playout + Duration::from_millis(250),
        "speech end at {end_at:?}, true end {speech_end:?}"
    );

    // The audio came through: level similar to the source at 16 kHz.
    let loud = rms(&speech);
    let out_rms = rms(&got.audio[32_000..32_000 + speech.len() * 2]);
    assert!(
        out_rms > loud * 0.7 && out_rms < loud * 1.3,
        "{out_rms} vs {loud}"
    );
    let stats = chain.stats();
    assert_eq!(
        stats.malformed + stats.unknown_payload_type + stats.decode_errors,
        0
    );
    assert!(chain.jitter_stats().lost > 0, "the network dropped packets");
    assert_eq!(
        chain.rtp_stats().sequence().cycles(),
        1,
        "sequence rolled over"
    );
}

#[test]
fn inband_digits_are_detected_when_rfc4733_is_not_negotiated() {
    let mut pcm = silence(300, 8000);
    render_sequence(
        8000,
        "159*",
        ToneParams::level(-15.0),
        Duration::from_millis(80),
        Duration::from_millis(120),
        &mut pcm,
    )
    .unwrap();
    pcm.extend(silence(500, 8000));
    let mut sender = Sender::new(CodecKind::Pcma, 8000, 42);
    let sent = sender.stream(&pcm);
    let mut chain = ReceiveChain::new(ReceiveConfig::new(CodecKind::Pcma, 8)).unwrap();
    let mut net = Network::new(3, 10, 20, 0.0);
    let got = run(&mut chain, sent, &mut net, 20);
    let starts = starts(&got.events);
    assert_eq!(
        starts,
        parse("159*")
            .into_iter()
            .map(|d| (d, DigitSource::InBand))
            .collect::<Vec<_>>()
    );
    // Tones are not speech.
    assert!(
        speech_events(&got.events).is_empty(),
        "{:?}",
        speech_events(&got.events)
    );
}

#[test]
fn inband_detection_stops_once_the_peer_uses_rfc4733_unless_told_otherwise() {
    let mut pcm = silence(200, 8000);
    let tick = pcm.len() / 160;
    render_sequence(
        8000,
        "7",
        ToneParams::default(),
        Duration::from_millis(100),
        Duration::from_millis(100),
        &mut pcm,
    )
    .unwrap();
    pcm.extend(silence(400, 8000));
    let tick2 = pcm.len() / 160;
    render_sequence(
        8000,
        "8",
        ToneParams::default(),
        Duration::from_millis(100),
        Duration::from_millis(100),
        &mut pcm,
    )
    .unwrap();
    pcm.extend(silence(600, 8000));

    for (mode, expected) in [
        (
            InbandDtmf::Auto,
            vec![
                (Digit::D7, DigitSource::Rfc4733),
                (Digit::D8, DigitSource::Rfc4733),
            ],
        ),
        (
            InbandDtmf::Always,
            vec![
                (Digit::D7, DigitSource::Rfc4733),
                (Digit::D8, DigitSource::Rfc4733),
            ],
        ),
        (
            InbandDtmf::Off,
            vec![
                (Digit::D7, DigitSource::Rfc4733),
                (Digit::D8, DigitSource::Rfc4733),
            ],
        ),
    ] {
        let mut sender = Sender::new(CodecKind::Pcmu, 8000, 9);
        sender.digits_at = vec![(tick, Digit::D7, 800), (tick2, Digit::D8, 800)];
        let sent = sender.stream(&pcm);
        let mut config = ReceiveConfig::new(CodecKind::Pcmu, 0).with_telephone_event(TE_PT);
        config.inband_dtmf = mode;
        let mut chain = ReceiveChain::new(config).unwrap();
        let mut net = Network::new(11, 5, 0, 0.0);
        let got = run(&mut chain, sent, &mut net, 20);
        let d = digits(&got.events);
        let starts = starts(&got.events);
        assert_eq!(starts, expected, "{mode:?}: {d:?}");
        // Ends pair with starts: nothing half-suppressed.
        assert_eq!(
            d.iter().filter(|x| x.2.is_some()).count(),
            expected.len(),
            "{mode:?}: {d:?}"
        );
        if mode == InbandDtmf::Always {
            assert_eq!(
                chain.stats().digits_deduplicated,
                2,
                "the tones were heard and dropped"
            );
        }
    }
}

#[test]
fn opus_at_16k_round_trips_speech() {
    let speech = support::speech("en-gb", 160, support::CORPUS[3], 16000);
    let mut pcm = silence(500, 16000);
    pcm.extend_from_slice(&speech);
    pcm.extend(silence(800, 16000));
    let mut sender = Sender::new(CodecKind::Opus, 16000, 77);
    let sent = sender.stream(&pcm);
    let mut chain = ReceiveChain::new(ReceiveConfig::new(CodecKind::Opus, 111)).unwrap();
    let mut net = Network::new(5, 20, 30, 0.0);
    let got = run(&mut chain, sent, &mut net, 40);
    // Find the playout delay by cross-correlation, then compare.
    let src = &pcm[8000..8000 + 16000];
    let (mut best, mut lag) = (f64::MIN, 0);
    for l in 0..4000 {
        let out = &got.audio[8000 + l..8000 + l + 16000];
        let c: f64 = src
            .iter()
            .zip(out)
            .map(|(&a, &b)| f64::from(a) * f64::from(b))
            .sum();
        if c > best {
            best = c;
            lag = l;
        }
    }
    let out = &got.audio[8000 + lag..8000 + lag + 16000];
    let norm = (src.iter().map(|&a| f64::from(a).powi(2)).sum::<f64>()
        * out.iter().map(|&b| f64::from(b).powi(2)).sum::<f64>())
    .sqrt();
    assert!(
        best / norm > 0.85,
        "correlation {} at lag {lag}",
        best / norm
    );
    assert!(lag < 16 * 200, "playout delay {} ms", lag / 16);
    let s = speech_events(&got.events);
    assert_eq!(s.len(), 2, "{s:?}");
}

#[test]
fn garbage_rtcp_and_foreign_payload_types_are_refused_without_harm() {
    let mut chain =
        ReceiveChain::new(ReceiveConfig::new(CodecKind::Pcmu, 0).with_telephone_event(TE_PT))
            .unwrap();
    let t0 = Instant::now();
    let mut rng = Noise::new(99);
    let mut refused = 0;
    for i in 0..500 {
        let len = (rng.uniform().abs() * 200.0) as usize;
        let bytes: Vec<u8> = (0..len)
            .map(|_| (rng.uniform() * 128.0 + 128.0) as u8)
            .collect();
        if chain
            .push_rtp(Bytes::from(bytes), t0 + Duration::from_millis(i))
            .is_err()
        {
            refused += 1;
        }
    }
    assert!(refused > 400, "random bytes are mostly not RTP: {refused}");
    // An RTCP receiver report on the RTP port.
    let rr = Bytes::from_static(&[0x80, 201, 0, 1, 0, 0, 0, 1]);
    assert_eq!(chain.push_rtp(rr, t0), Err(PushError::Rtcp));
    let mut sender = Sender::new(CodecKind::Pcma, 8000, 1);
    let (_, foreign) = sender.stream(&silence(20, 8000)).remove(0);
    assert_eq!(
        chain.push_rtp(foreign, t0),
        Err(PushError::UnknownPayloadType(8))
    );
    let (mut frame, mut events) = (Vec::new(), Vec::new());
    for i in 0..10 {
        chain.pull(t0 + TICK * i, &mut frame, &mut events);
        assert_eq!(frame.len(), 320);
    }
    assert!(chain.stats().malformed > 0);
    assert!(chain.stats().unknown_payload_type >= 1);
}

#[test]
fn a_new_ssrc_mid_call_keeps_the_audio_flowing() {
    let tone: Vec<i16> = (0..8000 * 2)
        .map(|i| (8000.0 * (i as f64 * 0.3).sin()) as i16)
        .collect();
    let mut a = Sender::new(CodecKind::Pcmu, 8000, 1000);
    let mut b = Sender::new(CodecKind::Pcmu, 8000, 2000);
    b.seq = 10;
    b.ts = 123;
    let mut sent = a.stream(&tone[..8000]);
    sent.extend(
        b.stream(&tone[8000..])
            .into_iter()
            .map(|(t, d)| (t + 50, d)),
    );
    let mut chain = ReceiveChain::new(ReceiveConfig::new(CodecKind::Pcmu, 0)).unwrap();
    let mut net = Network::new(1, 10, 10, 0.0);
    let got = run(&mut chain, sent, &mut net, 10);
    // The last half second (from the second source) is loud.
    let tail = &got.audio[got.audio.len() - 16000..got.audio.len() - 4000];
    assert!(rms(tail) > 3000.0, "rms {}", rms(tail));
    assert_eq!(chain.rtp_stats().source_changes(), 1);
}
