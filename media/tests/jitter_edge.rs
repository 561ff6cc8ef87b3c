//! Jitter buffer edge cases, driven packet by packet: start-up, late and
//! stray packets, jumps, a stopped stream, overflow, bad configs, and a
//! property test that arbitrary input never breaks it.

use std::time::{Duration, Instant};

use bytes::Bytes;
use hotline_media::jitter::{
    Discontinuity, JitterBuffer, JitterConfig, JitterError, JitterPacket, Pop,
};
use proptest::prelude::*;

const STEP: u32 = 160;

fn packet(ssrc: u32, seq: u16, timestamp: u32) -> JitterPacket {
    JitterPacket {
        seq,
        timestamp,
        ssrc,
        marker: false,
        payload: Bytes::copy_from_slice(&seq.to_be_bytes()),
    }
}

/// A sender on a perfect 20 ms clock with a fixed 30 ms network, and a 20 ms
/// playout tick 5 ms after each arrival.
struct Line {
    base: Instant,
    jb: JitterBuffer,
    tick: i64,
}

impl Line {
    fn new() -> Self {
        Self {
            base: Instant::now(),
            // A fixed target, so that these short scenarios play every packet.
            jb: JitterBuffer::new(JitterConfig {
                min_delay: Duration::from_millis(60),
                ..JitterConfig::default()
            })
            .unwrap(),
            tick: 0,
        }
    }
    fn at(&self, ms: i64) -> Instant {
        self.base + Duration::from_millis(ms as u64)
    }
    /// Pushes packet `i` of a stream (seq `seq0 + i`, timestamp `ts0 + 160 i`)
    /// at its arrival time.
    fn push(&mut self, ssrc: u32, seq: u16, ts: u32, arrival_ms: i64) {
        let at = self.at(arrival_ms);
        self.jb.push(packet(ssrc, seq, ts), at);
    }
    fn pop(&mut self) -> Pop {
        let at = self.at(self.tick);
        self.tick += 20;
        self.jb.pop(at)
    }
    /// Sends packets `range` (index i arrives at 30 + 20 i ms) interleaved
    /// with the playout ticks; returns all pops.
    fn stream(&mut self, ssrc: u32, seq0: u16, ts0: u32, range: std::ops::Range<u32>) -> Vec<Pop> {
        let mut out = Vec::new();
        for i in range {
            let arrival = 30 + 20 * i64::from(i);
            while self.tick <= arrival - 5 {
                out.push(self.pop());
            }
            self.push(
                ssrc,
                seq0.wrapping_add(i as u16),
                ts0.wrapping_add(STEP * i),
                arrival,
            );
        }
        out
    }
}

fn frames(pops: &[Pop]) -> Vec<u16> {
    pops.iter()
        .filter_map(|p| match p {
            Pop::Frame { seq, .. } => Some(*seq),
            _ => None,
        })
        .collect()
}

fn count_lost(pops: &[Pop]) -> usize {
    pops.iter()
        .filter(|p| matches!(p, Pop::Lost { .. }))
        .count()
}

#[test]
fn empty_then_waiting_then_resync_frame() {
    let mut l = Line::new();
    assert_eq!(l.jb.pop(l.base), Pop::Empty, "nothing pushed yet");
    l.push(1, 10, 800, 0);
    // The initial target is 60 ms: three ticks of pre-roll.
    let pops: Vec<Pop> = (0..4).map(|_| l.pop()).collect();
    assert_eq!(pops[..3], [Pop::Waiting, Pop::Waiting, Pop::Waiting]);
    match &pops[3] {
        Pop::Frame {
            seq: 10,
            timestamp: 800,
            ssrc: 1,
            discontinuity,
            payload,
            ..
        } => {
            assert_eq!(*discontinuity, Some(Discontinuity::Resync));
            assert_eq!(&payload[..], &10u16.to_be_bytes());
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(l.jb.stats().buffered_delay, Duration::from_millis(60));
}

#[test]
fn a_packet_arriving_after_its_slot_was_concealed_is_dropped() {
    let mut l = Line::new();
    let mut pops = l.stream(1, 0, 0, 0..5);
    // Packet 5 is held up; 6.. arrive normally.
    pops.extend(l.stream(1, 0, 0, 6..16));
    let lost_at = pops
        .iter()
        .position(|p| matches!(p, Pop::Lost { timestamp, .. } if *timestamp == 5 * STEP));
    assert!(lost_at.is_some(), "{pops:?}");
    // Far too late now.
    l.push(1, 5, 5 * STEP, l.tick);
    let late_before = l.jb.stats().late;
    l.push(1, 5, 5 * STEP, l.tick); // and a copy of it
    pops.extend((0..20).map(|_| l.pop()));
    let s = l.jb.stats();
    assert_eq!((late_before, s.late, s.duplicate), (1, 1, 1), "{s:?}");
    assert!(!frames(&pops).contains(&5));
    let played = frames(&pops);
    assert!(played.windows(2).all(|w| w[0] < w[1]), "{played:?}");
}

#[test]
fn a_reordered_packet_within_its_time_is_played_in_order() {
    let mut l = Line::new();
    let mut pops = l.stream(1, 0, 0, 0..10);
    // 11 arrives before 10, both before their turn.
    l.push(1, 11, 11 * STEP, 30 + 20 * 10);
    l.push(1, 10, 10 * STEP, 30 + 20 * 10 + 5);
    pops.extend(l.stream(1, 0, 0, 12..20));
    pops.extend((0..5).map(|_| l.pop()));
    assert_eq!(frames(&pops), (0..20).collect::<Vec<u16>>());
    assert_eq!(l.jb.stats().reordered, 1);
    let last_frame = pops
        .iter()
        .rposition(|p| matches!(p, Pop::Frame { .. }))
        .unwrap();
    assert_eq!(count_lost(&pops[..last_frame]), 0);
}

#[test]
fn a_stray_packet_from_another_source_is_ignored() {
    let mut l = Line::new();
    let mut pops = l.stream(1, 0, 0, 0..10);
    l.push(0xBAD, 777, 123_456, 30 + 20 * 10 - 1);
    pops.extend(l.stream(1, 0, 0, 10..20));
    pops.extend((0..5).map(|_| l.pop()));
    let s = l.jb.stats();
    assert_eq!((s.resets, s.discarded), (0, 1), "{s:?}");
    assert_eq!(frames(&pops), (0..20).collect::<Vec<u16>>());
}

#[test]
fn a_timestamp_jump_resyncs_instead_of_concealing_the_gap() {
    let mut l = Line::new();
    let mut pops = l.stream(1, 0, 0, 0..50);
    // Sequence continues, timestamps jump ten minutes ahead.
    let jump = 8000 * 600;
    pops.extend(l.stream(1, 0, jump, 50..100));
    pops.extend((0..5).map(|_| l.pop()));
    let s = l.jb.stats();
    assert_eq!(s.resets, 1, "{s:?}");
    assert!(count_lost(&pops) <= 3, "{}", count_lost(&pops));
    assert!(frames(&pops).len() >= 95, "{s:?}");
    let resync = pops.iter().find_map(|p| match p {
        Pop::Frame {
            discontinuity: Some(Discontinuity::Resync),
            timestamp,
            ..
        } if *timestamp > 1000 => Some(*timestamp),
        _ => None,
    });
    assert_eq!(resync, Some(jump + 50 * STEP));
}

#[test]
fn timestamps_going_backwards_resync() {
    let mut l = Line::new();
    let mut pops = l.stream(1, 0, 8000 * 100, 0..50);
    pops.extend(l.stream(1, 0, 8000 * 10, 50..100));
    pops.extend((0..5).map(|_| l.pop()));
    let s = l.jb.stats();
    assert_eq!(s.resets, 1, "{s:?}");
    assert!(frames(&pops).len() >= 95, "{s:?}");
}

#[test]
fn a_sequence_jump_resyncs() {
    let mut l = Line::new();
    let mut pops = l.stream(1, 0, 0, 0..50);
    pops.extend(l.stream(1, 20_000, 0, 50..100));
    pops.extend((0..5).map(|_| l.pop()));
    let s = l.jb.stats();
    assert_eq!(s.resets, 1, "{s:?}");
    assert!(frames(&pops).len() >= 95, "{s:?}");
    assert!(count_lost(&pops) <= 3);
}

#[test]
fn a_stopped_stream_conceals_briefly_then_goes_quiet_and_can_resume() {
    let mut l = Line::new();
    let mut pops = l.stream(1, 0, 0, 0..50);
    let quiet: Vec<Pop> = (0..500).map(|_| l.pop()).collect();
    // At most 200 ms of concealment, plus one frame of stretch.
    assert!(
        (1..=11).contains(&count_lost(&quiet)),
        "{}",
        count_lost(&quiet)
    );
    assert!(quiet[20..].iter().all(|p| *p == Pop::Empty));
    assert_eq!(l.jb.stats().buffered_delay, Duration::ZERO);
    // The sender resumes (hold released) with timestamps that kept running.
    pops.extend(quiet);
    let resumed = l.stream(1, 0, 0, 550..600);
    match resumed.iter().find(|p| matches!(p, Pop::Frame { .. })) {
        Some(Pop::Frame {
            seq: 550,
            discontinuity: Some(Discontinuity::Resumed),
            ..
        }) => {}
        other => panic!("{other:?}"),
    }
    assert_eq!(count_lost(&resumed), 0);
    assert_eq!(l.jb.stats().resets, 0);
}

#[test]
fn timestamps_frozen_during_a_hold_recover_within_a_window() {
    let mut l = Line::new();
    l.stream(1, 0, 0, 0..50);
    let _quiet: Vec<Pop> = (0..500).map(|_| l.pop()).collect();
    // After 10 s the sender goes on where it stopped: sequence and timestamps
    // continue from packet 50 although 10 s have passed.
    let mut pops = Vec::new();
    for i in 0..300u32 {
        let arrival = 10_000 + 30 + 20 * i64::from(i);
        while l.tick <= arrival - 5 {
            pops.push(l.pop());
        }
        l.push(1, 50 + i as u16, (50 + i) * STEP, arrival);
    }
    let first = pops
        .iter()
        .position(|p| matches!(p, Pop::Frame { .. }))
        .unwrap();
    // Playout comes back within the 3 s statistics window.
    assert!(first * 20 <= 3_200, "resumed after {} ms", first * 20);
    assert!(matches!(
        pops[first],
        Pop::Frame {
            discontinuity: Some(Discontinuity::Resync),
            ..
        }
    ));
    assert_eq!(l.jb.stats().resets, 1);
    let played = frames(&pops);
    assert!(played.len() >= 130, "{}", played.len());
    assert!(played.windows(2).all(|w| w[0] < w[1]));
}

#[test]
fn capacity_bounds_the_queue() {
    let base = Instant::now();
    let config = JitterConfig {
        capacity: 8,
        ..JitterConfig::default()
    };
    let mut jb = JitterBuffer::new(config).unwrap();
    for i in 0..40u16 {
        jb.push(packet(1, i, u32::from(i) * STEP), base);
        assert!(jb.stats().buffered_packets <= 8);
    }
    let s = jb.stats();
    assert_eq!((s.buffered_packets, s.discarded), (8, 32), "{s:?}");
    // What is left is the newest, and it plays in order.
    let mut seqs = Vec::new();
    for k in 0..20 {
        if let Pop::Frame { seq, .. } = jb.pop(base + Duration::from_millis(20 * k)) {
            seqs.push(seq);
        }
    }
    assert!(
        !seqs.is_empty() && seqs.iter().all(|&s| s >= 32),
        "{seqs:?}"
    );
    assert!(seqs.windows(2).all(|w| w[0] < w[1]));
}

#[test]
fn bad_configs_are_rejected() {
    let ok = JitterConfig::default();
    assert!(JitterBuffer::new(ok.clone()).is_ok());
    assert_eq!(ok.samples_per_frame(), 160);
    assert_eq!(
        JitterConfig::with_clock_rate(48_000).samples_per_frame(),
        960
    );
    let bad = [
        JitterConfig {
            clock_rate: 0,
            ..ok.clone()
        },
        JitterConfig {
            frame: Duration::ZERO,
            ..ok.clone()
        },
        JitterConfig {
            min_delay: Duration::from_millis(100),
            ..ok.clone()
        },
        JitterConfig {
            initial_delay: Duration::from_secs(1),
            ..ok.clone()
        },
        JitterConfig {
            capacity: 0,
            ..ok.clone()
        },
        JitterConfig {
            window: Duration::ZERO,
            ..ok.clone()
        },
        JitterConfig {
            max_delay: Duration::from_secs(60),
            ..ok.clone()
        },
    ];
    for config in bad {
        let err = JitterBuffer::new(config.clone()).unwrap_err();
        assert!(matches!(err, JitterError::InvalidConfig(_)), "{config:?}");
        assert!(err.to_string().starts_with("invalid jitter buffer config"));
    }
}

#[derive(Debug, Clone)]
enum Op {
    Push {
        ssrc: u32,
        seq: u16,
        ts: u32,
        marker: bool,
        dt_ms: u16,
    },
    Pop {
        dt_ms: u16,
    },
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        (
            0..3u32,
            any::<u16>(),
            any::<u32>(),
            any::<bool>(),
            0..100u16
        )
            .prop_map(|(ssrc, seq, ts, marker, dt_ms)| Op::Push {
                ssrc,
                seq,
                ts,
                marker,
                dt_ms
            }),
        // Packets of one plausible stream, across both wraparounds, in
        // random order and timing.
        (0..400u16, 0..100u16).prop_map(|(i, dt_ms)| Op::Push {
            ssrc: 7,
            seq: 65_000u16.wrapping_add(i),
            ts: (u32::MAX - 30 * STEP).wrapping_add(u32::from(i) * STEP),
            marker: false,
            dt_ms,
        }),
        (0..60u16).prop_map(|dt_ms| Op::Pop { dt_ms }),
    ]
}

proptest! {
    /// Whatever arrives, in whatever order and timing: no panic, the queue
    /// stays bounded, every packet is accounted for, and within one SSRC
    /// the output never goes backwards unless it declares a resync.
    #[test]
    fn arbitrary_input_never_breaks_the_buffer(ops in proptest::collection::vec(op(), 1..400)) {
        let config = JitterConfig { capacity: 16, ..JitterConfig::default() };
        let mut jb = JitterBuffer::new(config).unwrap();
        let base = Instant::now();
        let mut now = base;
        let mut last: Option<(u32, u32)> = None;
        for op in ops {
            match op {
                Op::Push { ssrc, seq, ts, marker, dt_ms } => {
                    // Arrivals may be slightly out of order with the pops.
                    let at = now + Duration::from_millis(u64::from(dt_ms % 40));
                    jb.push(JitterPacket { seq, timestamp: ts, ssrc, marker, payload: Bytes::new() }, at);
                }
                Op::Pop { dt_ms } => {
                    now += Duration::from_millis(u64::from(dt_ms));
                    let out = jb.pop(now);
                    let (ssrc, ts, resync) = match out {
                        Pop::Frame { ssrc, timestamp, discontinuity, .. } => {
                            (ssrc, timestamp, discontinuity == Some(Discontinuity::Resync))
                        }
                        Pop::Lost { ssrc, timestamp, .. } => (ssrc, timestamp, false),
                        Pop::Waiting | Pop::Empty => continue,
                    };
                    if let Some((ls, lt)) = last
                        && ls == ssrc
                        && !resync
                    {
                        prop_assert!(ts.wrapping_sub(lt) as i32 >= 0, "{lt} then {ts}");
                    }
                    last = Some((ssrc, ts));
                }
            }
            let s = jb.stats();
            prop_assert!(s.buffered_packets <= 16);
            let accounted = s.played + s.late + s.duplicate + s.dropped + s.discarded
                + s.buffered_packets as u64;
            prop_assert!(s.received == accounted || s.received == accounted + 1, "{s:?}");
        }
    }
}
