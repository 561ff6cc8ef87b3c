//! RFC 4733 sender and receiver end to end through real RTP packets: the
//! packet sequence of a default-paced digit, segmentation of a 10 s event at
//! 8 kHz, and digit recovery over a lossy, duplicating, reordering network.

mod support;

use hotline_media::dtmf::Digit;
use hotline_media::dtmf::rfc4733::{
    EndReason, EventReceiver, EventReport, EventSender, SenderConfig, TelephoneEvent,
};
use hotline_media::rtp::{RtpPacket, RtpPacketBuilder};
use support::Noise;

const PT: u8 = 101;

/// Runs the sender from `start`, one call per 20 ms, and returns serialized
/// RTP packets with the tick they were sent on.
fn send(sender: &mut EventSender, start: u32, seq0: u16) -> Vec<(u32, Vec<u8>)> {
    let mut out = Vec::new();
    let mut seq = seq0;
    for k in 0..100_000u32 {
        if sender.is_idle() {
            break;
        }
        if let Some(p) = sender.next_packet(start.wrapping_add(k * 160)) {
            let mut buf = Vec::new();
            RtpPacketBuilder {
                marker: p.marker,
                payload_type: PT,
                sequence: seq,
                timestamp: p.timestamp,
                ssrc: 0x1234_5678,
                payload: &p.payload,
                ..Default::default()
            }
            .write_to(&mut buf)
            .unwrap();
            seq = seq.wrapping_add(1);
            out.push((k, buf));
        }
    }
    out
}

fn decode(buf: &[u8]) -> (bool, u32, TelephoneEvent) {
    let p = RtpPacket::parse(buf).unwrap();
    assert_eq!(p.payload_type(), PT);
    (
        p.marker(),
        p.timestamp(),
        TelephoneEvent::decode(p.payload()).unwrap(),
    )
}

#[test]
fn default_pacing_packet_by_packet() {
    // 8 kHz, 20 ms packets, 50 ms updates: a 120 ms '9'.
    let mut s = EventSender::new(SenderConfig::default()).unwrap();
    s.start_digit(Digit::D9, 48_000, 960).unwrap();
    let pkts = send(&mut s, 48_000, 100);
    let got: Vec<_> = pkts
        .iter()
        .map(|(k, b)| {
            let (m, ts, e) = decode(b);
            (*k, m, ts, e.event, e.end, e.volume, e.duration)
        })
        .collect();
    assert_eq!(
        got,
        vec![
            (0, true, 48_000, 9, false, 10, 160),
            (3, false, 48_000, 9, false, 10, 640),
            (5, false, 48_000, 9, true, 10, 960),
            (8, false, 48_000, 9, true, 10, 960),
            (11, false, 48_000, 9, true, 10, 960),
        ]
    );
    // Consecutive sequence numbers, whatever the gaps in time.
    let seqs: Vec<_> = pkts
        .iter()
        .map(|(_, b)| RtpPacket::parse(b).unwrap().sequence())
        .collect();
    assert_eq!(seqs, vec![100, 101, 102, 103, 104]);
}

#[test]
fn ten_second_event_at_8khz_is_two_segments() {
    let mut s = EventSender::new(SenderConfig::default()).unwrap();
    s.start_digit(Digit::D0, 0, 80_000).unwrap();
    let pkts: Vec<_> = send(&mut s, 0, 0)
        .into_iter()
        .map(|(k, b)| (k, decode(&b)))
        .collect();
    // Segment 1 at timestamp 0: starts with the marker, updates every third
    // tick (60 ms >= 50 ms), durations growing by 480.
    let seg1: Vec<_> = pkts.iter().filter(|p| p.1.1 == 0).collect();
    let seg2: Vec<_> = pkts.iter().filter(|p| p.1.1 == 65_535).collect();
    assert_eq!(seg1.len() + seg2.len(), pkts.len());
    assert!(seg1[0].1.0, "first packet carries the marker");
    assert_eq!(pkts.iter().filter(|p| p.1.0).count(), 1);
    let updates1: Vec<_> = seg1.iter().filter(|p| p.1.2.duration < 0xffff).collect();
    for (i, p) in updates1.iter().enumerate() {
        assert_eq!(p.0, 3 * i as u32);
        assert_eq!(u32::from(p.1.2.duration), 160 + 480 * i as u32);
        assert!(!p.1.2.end);
    }
    // The last update is 65440 at tick 408 (pos 65440 < 65535); the
    // segment's final packet goes at tick 409 and is repeated 50+ ms apart,
    // all without the E bit.
    assert_eq!(updates1.last().unwrap().1.2.duration, 160 + 480 * 136);
    let finals1: Vec<_> = seg1.iter().filter(|p| p.1.2.duration == 0xffff).collect();
    assert_eq!(
        finals1.iter().map(|p| p.0).collect::<Vec<_>>(),
        vec![409, 412, 415]
    );
    assert!(finals1.iter().all(|p| !p.1.2.end));
    // Segment 2 at timestamp 65535: first packet on tick 416 covers
    // (417 * 160) - 65535 = 1185 units, no marker; ends at 80000 total with
    // three E packets of 14465.
    assert_eq!(seg2[0].0, 416);
    assert_eq!(seg2[0].1.2.duration, 1185);
    assert!(!seg2[0].1.0);
    let finals2: Vec<_> = seg2.iter().filter(|p| p.1.2.end).collect();
    assert_eq!(finals2.len(), 3);
    assert!(finals2.iter().all(|p| p.1.2.duration == 14_465));
    assert_eq!(finals2[0].0, 499);
    assert_eq!(65_535 + 14_465, 80_000);
    let mut prev = 0;
    for p in &seg2[..seg2.len() - 3] {
        assert!(p.1.2.duration > prev && !p.1.2.end);
        prev = p.1.2.duration;
    }
}

/// Deterministic xorshift so the network's misbehaviour is reproducible.
/// True with probability `percent` %.
fn chance(rng: &mut Noise, percent: usize) -> bool {
    rng.below(100) < percent
}

#[test]
fn digits_survive_a_bad_network() {
    let digits = "0123456789*#ABCD";
    let mut ends_recovered_without_e_bit = 0;
    for seed in 1..=40u64 {
        let mut rng = Noise::new(seed.wrapping_mul(0x9e37_79b9_7f4a_7c15));
        let mut s = EventSender::new(SenderConfig::default()).unwrap();
        // Digits of 100 ms with 100 ms gaps: one every 200 ms (1600 units).
        let mut wire: Vec<(u32, Vec<u8>)> = Vec::new();
        for (i, d) in digits.chars().enumerate() {
            let start = 8000 + 1600 * i as u32;
            s.start_digit(Digit::from_char(d).unwrap(), start, 800)
                .unwrap();
            for (k, b) in send(&mut s, start, 0) {
                let sent_at = start + k * 160;
                // 10 % loss, 10 % duplication, up to 60 ms extra delay; in
                // every fourth run all three end packets of digit '5' and
                // of the last digit are lost.
                let end_lost = seed % 4 == 0 && (i == 5 || i == digits.len() - 1);
                if chance(&mut rng, 10) || (end_lost && decode(&b).2.end) {
                    continue;
                }
                let copies = if chance(&mut rng, 10) { 2 } else { 1 };
                for _ in 0..copies {
                    let delay = (rng.next_u64() % 480) as u32;
                    wire.push((sent_at + delay, b.clone()));
                }
            }
        }
        wire.sort_by_key(|w| w.0);
        let mut r = EventReceiver::new(8000);
        let mut starts = String::new();
        let mut ends = Vec::new();
        let mut handle = |rep: EventReport, starts: &mut String| match rep {
            EventReport::Start { .. } => starts.push(rep.digit().unwrap().to_char()),
            EventReport::End {
                duration, reason, ..
            } => ends.push((rep.digit().unwrap(), duration, reason)),
        };
        for (at, b) in &wire {
            let p = RtpPacket::parse(b).unwrap();
            for rep in r.on_rtp(&p, *at).unwrap() {
                handle(rep, &mut starts);
            }
            if let Some(rep) = r.poll(*at) {
                handle(rep, &mut starts);
            }
        }
        if let Some(rep) = r.poll(u32::MAX / 2) {
            handle(rep, &mut starts);
        }
        // A digit whose every packet was lost cannot be recovered; with 10 %
        // loss of 5 packets that happens with odds of 1e-5 per digit, so
        // every digit appears exactly once, in order.
        assert_eq!(starts, digits, "seed {seed}");
        assert_eq!(ends.len(), digits.len(), "seed {seed}");
        for (d, duration, reason) in &ends {
            match reason {
                EndReason::EndBit => assert_eq!(*duration, 800, "seed {seed} digit {d}"),
                _ => {
                    assert!(*duration >= 160 && *duration < 800, "seed {seed}");
                    ends_recovered_without_e_bit += 1;
                }
            }
        }
    }
    // The lost-end paths (superseded and timeout) were exercised.
    assert!(ends_recovered_without_e_bit >= 20);
}
