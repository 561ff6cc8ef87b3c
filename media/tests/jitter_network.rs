//! Jitter buffer against simulated networks: deterministic (seeded xorshift),
//! time as arithmetic on one base `Instant`, a playout clock popping every
//! 20 ms. Every scenario also checks the output stream's invariants
//! (`check_output`) and the buffer's packet accounting.

use std::collections::{HashMap, HashSet};
use std::time::{Duration, Instant};

use bytes::Bytes;
use hotline_media::jitter::{
    Discontinuity, JitterBuffer, JitterConfig, JitterPacket, JitterStats, Pop,
};

const RATE: u32 = 8000;
const STEP: u32 = 160;
const TICK_US: i64 = 20_000;
/// The playout tick runs at an arbitrary phase to the sender.
const FIRST_TICK_US: i64 = 7_300;

/// xorshift64* — deterministic, no dependency.
struct Rng(u64);

impl Rng {
    fn new(seed: u64) -> Self {
        Self(seed.max(1))
    }
    fn next_u64(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    fn uniform(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }
    fn chance(&mut self, p: f64) -> bool {
        self.uniform() < p
    }
}

#[derive(Clone, Debug)]
struct Sent {
    seq: u16,
    ts: u32,
    ssrc: u32,
    marker: bool,
    send_us: i64,
}

#[derive(Clone, Debug)]
struct Delivery {
    at_us: i64,
    id: usize,
}

/// `n` packets of `step` samples; `clock` > 1 means the sender's clock runs
/// fast (packets come more often than their duration says).
fn sender(n: usize, seq0: u16, ts0: u32, ssrc: u32, step: u32, clock: f64) -> Vec<Sent> {
    let step_us = f64::from(step) * 1e6 / f64::from(RATE);
    (0..n)
        .map(|i| Sent {
            seq: seq0.wrapping_add(i as u16),
            ts: ts0.wrapping_add(step.wrapping_mul(i as u32)),
            ssrc,
            marker: i == 0,
            send_us: (i as f64 * step_us / clock) as i64,
        })
        .collect()
}

/// Runs packets through `network`, which returns each packet's one-way
/// delays (empty: lost; two: duplicated).
fn deliver(sent: &[Sent], mut network: impl FnMut(usize, &Sent) -> Vec<i64>) -> Vec<Delivery> {
    let mut out: Vec<Delivery> = Vec::new();
    for (id, s) in sent.iter().enumerate() {
        for delay in network(id, s) {
            out.push(Delivery {
                at_us: s.send_us + delay,
                id,
            });
        }
    }
    out.sort_by_key(|d| d.at_us);
    out
}

struct Run {
    sent: Vec<Sent>,
    deliveries: Vec<Delivery>,
    /// Every pop with its time.
    outs: Vec<(i64, Pop)>,
    /// Stats sampled once a second.
    trace: Vec<(i64, JitterStats)>,
    stats: JitterStats,
}

/// Drives the buffer like a call task: a 20 ms playout tick that decodes
/// until it has 20 ms of audio (packets of `step` samples).
fn run(config: JitterConfig, sent: Vec<Sent>, deliveries: Vec<Delivery>, end_us: i64) -> Run {
    run_with_step(config, sent, deliveries, end_us, STEP)
}

fn run_with_step(
    config: JitterConfig,
    sent: Vec<Sent>,
    mut deliveries: Vec<Delivery>,
    end_us: i64,
    step: u32,
) -> Run {
    let last_tick = FIRST_TICK_US + (end_us - FIRST_TICK_US) / TICK_US * TICK_US;
    deliveries.retain(|d| d.at_us <= last_tick);
    let base = Instant::now();
    let at = |us: i64| base + Duration::from_micros(us as u64);
    let mut jb = JitterBuffer::new(config).unwrap();
    let mut outs = Vec::new();
    let mut trace = Vec::new();
    let mut next = 0;
    let mut fifo: i64 = 0;
    let mut t = FIRST_TICK_US;
    while t <= end_us {
        while next < deliveries.len() && deliveries[next].at_us <= t {
            let d = &deliveries[next];
            let s = &sent[d.id];
            let packet = JitterPacket {
                seq: s.seq,
                timestamp: s.ts,
                ssrc: s.ssrc,
                marker: s.marker,
                payload: Bytes::from(d.id.to_be_bytes().to_vec()),
            };
            jb.push(packet, at(d.at_us));
            next += 1;
        }
        fifo -= i64::from(STEP);
        while fifo < 0 {
            let pop = jb.pop(at(t));
            match &pop {
                Pop::Frame { .. } => fifo += i64::from(step),
                Pop::Lost { samples, .. } => fifo += i64::from(*samples),
                Pop::Waiting | Pop::Empty => fifo = 0,
            }
            outs.push((t, pop));
        }
        if t % 1_000_000 < TICK_US {
            trace.push((t, jb.stats()));
        }
        t += TICK_US;
    }
    let stats = jb.stats();
    Run {
        sent,
        deliveries,
        outs,
        trace,
        stats,
    }
}

fn payload_id(payload: &Bytes) -> usize {
    usize::from_be_bytes(payload[..].try_into().unwrap())
}

fn ts_after(a: u32, b: u32) -> i64 {
    i64::from(a.wrapping_sub(b) as i32)
}

/// Output invariants every scenario must hold:
/// - timestamps never go backwards and never skip without a `Lost`, except
///   at a frame that declares a discontinuity (resync, resumed, dropped);
/// - the payload handed out is the packet with that seq/timestamp;
/// - every delivered packet that was not played arrived after playout had
///   passed its timestamp, or was dropped on purpose (counted);
/// - packet accounting adds up.
///
/// Returns the played packet ids in output order.
fn check_output(r: &Run, step: u32) -> Vec<usize> {
    let mut expected: Option<(u32, u32)> = None; // (ssrc, next ts)
    let mut played = Vec::new();
    let mut frontier: HashMap<u32, u32> = HashMap::new();
    let mut passed_at: Vec<(i64, u32, u32)> = Vec::new(); // (time, ssrc, frontier ts)
    let mut lost = 0u64;
    let mut concealed = 0u64;
    // After concealment runs out the buffer goes quiet but its playout clock
    // keeps running, one frame per pop: (ssrc, ts of that clock).
    let mut quiet_clock: Option<(u32, u32)> = None;
    let mut last_was_lost = false;
    for (t, pop) in &r.outs {
        if !matches!(pop, Pop::Waiting | Pop::Empty) {
            quiet_clock = None;
        }
        match pop {
            Pop::Frame {
                payload,
                timestamp,
                seq,
                ssrc,
                discontinuity,
                ..
            } => {
                let id = payload_id(payload);
                let s = &r.sent[id];
                assert_eq!(
                    (s.seq, s.ts, s.ssrc),
                    (*seq, *timestamp, *ssrc),
                    "payload mismatch"
                );
                match (expected, discontinuity) {
                    (_, Some(Discontinuity::Resync)) | (None, _) => {}
                    (Some((es, _)), _) if es != *ssrc => {
                        panic!("ssrc changed without a resync at {t}: {pop:?}")
                    }
                    (Some((_, ets)), None) => assert_eq!(
                        *timestamp, ets,
                        "timestamp skipped without Lost at t={t}: {pop:?}"
                    ),
                    (Some((_, ets)), Some(_)) => assert!(
                        ts_after(*timestamp, ets) > 0,
                        "discontinuity must move forward at t={t}: {pop:?} expected {ets}"
                    ),
                }
                expected = Some((*ssrc, timestamp.wrapping_add(step)));
                played.push(id);
                let f = frontier.entry(*ssrc).or_insert(*timestamp);
                if ts_after(*timestamp, *f) > 0 {
                    *f = *timestamp;
                }
                passed_at.push((*t, *ssrc, *f));
            }
            Pop::Lost {
                timestamp,
                ssrc,
                samples,
                stretch,
            } => {
                concealed += 1;
                let (es, ets) = expected.expect("Lost before any frame");
                assert_eq!((*ssrc, *timestamp), (es, ets), "Lost out of place at t={t}");
                assert!(*samples > 0);
                if !stretch {
                    lost += 1;
                    last_was_lost = true;
                    expected = Some((es, ets.wrapping_add(*samples)));
                    let f = frontier.entry(*ssrc).or_insert(*timestamp);
                    if ts_after(*timestamp, *f) > 0 {
                        *f = *timestamp;
                    }
                    passed_at.push((*t, *ssrc, *f));
                }
            }
            Pop::Waiting | Pop::Empty => {
                if let (true, Some((es, ets))) = (last_was_lost, expected) {
                    // Each quiet pop plays one frame of silence from `ets` on.
                    let clock = quiet_clock.get_or_insert((es, ets));
                    clock.1 = clock.1.wrapping_add(step);
                    passed_at.push((*t, clock.0, clock.1.wrapping_sub(1)));
                }
            }
        }
        if matches!(pop, Pop::Frame { .. }) {
            last_was_lost = false;
        }
    }
    assert_eq!(r.stats.lost, lost);
    assert_eq!(r.stats.concealed, concealed);
    assert_eq!(r.stats.played, played.len() as u64);

    // Played in order: sequence numbers strictly increase within an SSRC.
    for w in played.windows(2) {
        let (a, b) = (&r.sent[w[0]], &r.sent[w[1]]);
        if a.ssrc == b.ssrc {
            assert!(
                (b.seq.wrapping_sub(a.seq) as i16) > 0,
                "out of order: {a:?} then {b:?}"
            );
        }
    }

    // Unplayed deliveries: late (playout passed them first) or dropped.
    let played_set: HashSet<usize> = played.iter().copied().collect();
    let mut seen = HashSet::new();
    let mut unexplained = 0u64;
    for d in &r.deliveries {
        if !seen.insert(d.id) || played_set.contains(&d.id) {
            continue;
        }
        let s = &r.sent[d.id];
        let late = passed_at
            .iter()
            .take_while(|(t, _, _)| *t < d.at_us)
            .any(|(_, ssrc, f)| *ssrc == s.ssrc && ts_after(*f, s.ts) >= 0);
        if !late {
            unexplained += 1;
        }
    }
    let tail = r.stats.buffered_packets as u64;
    assert!(
        unexplained <= r.stats.dropped + r.stats.discarded + tail,
        "{unexplained} packets neither played, late nor dropped: {:?}",
        r.stats
    );

    let s = &r.stats;
    let accounted = s.played + s.late + s.duplicate + s.dropped + s.discarded + tail;
    assert!(
        s.received == accounted || s.received == accounted + 1,
        "accounting: {s:?}"
    );
    assert_eq!(s.received, r.deliveries.len() as u64);
    played
}

/// Network-lost packets whose timestamp playout reached must come out as
/// `Lost` (or be jumped over by a declared discontinuity).
fn check_losses_concealed(r: &Run) -> usize {
    let delivered: HashSet<usize> = r.deliveries.iter().map(|d| d.id).collect();
    let lost_ts: HashSet<(u32, u32)> = r
        .outs
        .iter()
        .filter_map(|(_, p)| match p {
            Pop::Lost {
                timestamp,
                ssrc,
                stretch: false,
                ..
            } => Some((*ssrc, *timestamp)),
            _ => None,
        })
        .collect();
    // Timestamp spans jumped by discontinuities.
    let mut jumps = Vec::new();
    let mut prev: Option<(u32, u32)> = None;
    for (_, p) in &r.outs {
        if let Pop::Frame {
            timestamp,
            ssrc,
            discontinuity,
            ..
        } = p
        {
            if let (Some((ps, pt)), Some(_)) = (prev, discontinuity)
                && ps == *ssrc
            {
                jumps.push((*ssrc, pt, *timestamp));
            }
            prev = Some((*ssrc, *timestamp));
        }
    }
    let last_played = prev.map(|(_, t)| t);
    let first_played = r.outs.iter().find_map(|(_, p)| match p {
        Pop::Frame { timestamp, .. } => Some(*timestamp),
        _ => None,
    });
    let mut checked = 0;
    for (id, s) in r.sent.iter().enumerate() {
        if delivered.contains(&id) {
            continue;
        }
        let (Some(first), Some(last)) = (first_played, last_played) else {
            continue;
        };
        if ts_after(s.ts, first) <= 0 || ts_after(s.ts, last) >= 0 {
            continue;
        }
        checked += 1;
        let jumped = jumps
            .iter()
            .any(|&(ssrc, a, b)| ssrc == s.ssrc && ts_after(s.ts, a) > 0 && ts_after(b, s.ts) > 0);
        assert!(
            lost_ts.contains(&(s.ssrc, s.ts)) || jumped,
            "network loss of {s:?} was not concealed"
        );
    }
    checked
}

/// Concealment after the last frame: the stream ended, the buffer conceals
/// up to `max_concealment` before going quiet.
fn trailing_lost(r: &Run) -> u64 {
    let last_frame = r
        .outs
        .iter()
        .rposition(|(_, p)| matches!(p, Pop::Frame { .. }))
        .unwrap();
    let n = r.outs[last_frame..]
        .iter()
        .filter(|(_, p)| matches!(p, Pop::Lost { stretch: false, .. }))
        .count() as u64;
    assert!(n <= 10, "concealed {n} frames after the end of the stream");
    n
}

/// `Lost { stretch: true }` outputs.
fn stretches(r: &Run) -> u64 {
    r.stats.concealed - r.stats.lost
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

/// Mean time played packets waited, measured from outside the buffer.
fn measured_wait_ms(r: &Run, from_us: i64) -> f64 {
    let arrival: HashMap<usize, i64> = r.deliveries.iter().rev().map(|d| (d.id, d.at_us)).collect();
    let waits: Vec<i64> = r
        .outs
        .iter()
        .filter(|(t, _)| *t >= from_us)
        .filter_map(|(t, p)| match p {
            Pop::Frame { payload, .. } => Some(t - arrival[&payload_id(payload)]),
            _ => None,
        })
        .collect();
    waits.iter().sum::<i64>() as f64 / waits.len() as f64 / 1000.0
}

fn uniform_jitter(rng: &mut Rng, base_us: i64, jitter_us: i64) -> i64 {
    base_us + (rng.uniform() * jitter_us as f64) as i64
}

#[test]
fn clean_network_settles_at_the_minimum_delay() {
    let sent = sender(1500, 1000, 5000, 0xC1EA, STEP, 1.0);
    let deliveries = deliver(&sent, |_, _| vec![30_000]);
    let r = run(JitterConfig::default(), sent, deliveries, 30_000_000);
    check_output(&r, STEP);
    let s = r.stats;
    assert_eq!(
        (s.lost, s.late, s.concealed, s.duplicate),
        (0, 0, 0, 0),
        "{s:?}"
    );
    assert_eq!(s.target_delay, JitterConfig::default().min_delay);
    // Start at the 60 ms initial target, then shrink to the 20 ms minimum by
    // dropping a frame at a time.
    assert!(s.dropped >= 1 && s.dropped <= 3, "{s:?}");
    assert!(ms(s.buffered_delay) <= 50.0, "{s:?}");
    assert!(measured_wait_ms(&r, 10_000_000) <= 50.0);
    assert_eq!(
        s.played + s.dropped + s.buffered_packets as u64,
        r.deliveries.len() as u64
    );
}

#[test]
fn random_loss_and_40ms_jitter() {
    let mut rng = Rng::new(0x5EED_0001);
    let n = 3000; // one minute
    let sent = sender(n, 40_000, 123_456, 0xAB, STEP, 1.0);
    let deliveries = deliver(&sent, |_, _| {
        if rng.chance(0.05) {
            vec![]
        } else {
            vec![uniform_jitter(&mut rng, 25_000, 40_000)]
        }
    });
    let net_lost = n - deliveries.len();
    let r = run(JitterConfig::default(), sent, deliveries, 61_000_000);
    check_output(&r, STEP);
    let concealed_losses = check_losses_concealed(&r);
    assert!(
        concealed_losses + 5 >= net_lost,
        "{concealed_losses} of {net_lost}"
    );
    let s = r.stats;

    // The p95 target settles near the 40 ms of jitter, second half of the run.
    for (t, st) in r.trace.iter().filter(|(t, _)| *t > 30_000_000) {
        let target = ms(st.target_delay);
        assert!((30.0..=48.0).contains(&target), "target {target} ms at {t}");
        assert!(ms(st.buffered_delay) <= target + 30.0 + 1.0, "{st:?}");
    }
    assert!(ms(s.mean_buffered_delay) <= 80.0, "{s:?}");
    assert!(measured_wait_ms(&r, 0) <= 80.0);
    // Around 5% of the packets come later than the p95 target.
    let late = s.late as f64 / s.received as f64;
    assert!(late <= 0.07, "late fraction {late}: {s:?}");
    let lost = (s.lost - trailing_lost(&r)) as usize;
    assert!(
        lost >= net_lost && lost <= net_lost + s.late as usize,
        "{net_lost} {s:?}"
    );
}

#[test]
fn bursty_gilbert_elliott_loss() {
    let mut rng = Rng::new(0x6E11);
    let n = 3000;
    let sent = sender(n, 7, 0, 0x6E, STEP, 1.0);
    // Good state: 0.5% loss; bad state: 70% loss; mean burst ~4 packets.
    let mut bad = false;
    let deliveries = deliver(&sent, |_, _| {
        bad = if bad {
            !rng.chance(0.25)
        } else {
            rng.chance(0.02)
        };
        let p = if bad { 0.7 } else { 0.005 };
        if rng.chance(p) {
            vec![]
        } else {
            vec![uniform_jitter(&mut rng, 40_000, 20_000)]
        }
    });
    let net_lost = n - deliveries.len();
    assert!(
        net_lost > 100,
        "the model should lose in bursts: {net_lost}"
    );
    let r = run(JitterConfig::default(), sent, deliveries, 61_000_000);
    check_output(&r, STEP);
    check_losses_concealed(&r);

    // Concealment never runs longer than max_concealment (200 ms) plus one
    // frame of stretch.
    let mut run_len = 0;
    for (_, p) in &r.outs {
        run_len = if matches!(p, Pop::Lost { .. }) {
            run_len + 1
        } else {
            0
        };
        assert!(run_len <= 11, "concealed {run_len} frames in a row");
    }
    let s = r.stats;
    assert!(ms(s.mean_buffered_delay) <= 60.0, "{s:?}");
    let lost = (s.lost - trailing_lost(&r)) as usize;
    assert!(lost <= net_lost + s.late as usize, "{net_lost} {s:?}");
}

#[test]
fn reordered_packets_are_played_in_order() {
    let mut rng = Rng::new(0x0DE2);
    let n = 1500;
    let sent = sender(n, 100, 0, 0x0D, STEP, 1.0);
    // 15% of the packets are held 25-35 ms, behind the next one or two.
    let deliveries = deliver(&sent, |_, _| {
        let extra = if rng.chance(0.15) {
            25_000 + (rng.uniform() * 10_000.0) as i64
        } else {
            0
        };
        vec![20_000 + extra]
    });
    let r = run(JitterConfig::default(), sent, deliveries, 31_000_000);
    let played = check_output(&r, STEP);
    let s = r.stats;
    assert!(s.reordered > 150, "{s:?}");
    // The buffer grows to absorb them: apart from the first seconds, every
    // packet plays.
    assert_eq!(
        s.lost - trailing_lost(&r),
        s.late,
        "only late packets may be concealed: {s:?}"
    );
    assert!(s.late <= 10, "{s:?}");
    let ids: Vec<usize> = played.iter().copied().filter(|&id| id >= 500).collect();
    let expect: Vec<usize> = (500..500 + ids.len()).collect();
    assert_eq!(
        ids, expect,
        "after warm-up every packet is played, in order"
    );
}

#[test]
fn duplicates_are_dropped_and_counted() {
    let mut rng = Rng::new(0xD0D0);
    let n = 1500;
    let sent = sender(n, 0, 0, 0xD, STEP, 1.0);
    let mut copies = 0;
    let deliveries = deliver(&sent, |_, _| {
        let d = uniform_jitter(&mut rng, 20_000, 20_000);
        if rng.chance(0.1) {
            copies += 1;
            vec![d, d + (rng.uniform() * 100_000.0) as i64]
        } else {
            vec![d]
        }
    });
    let r = run(JitterConfig::default(), sent, deliveries, 31_000_000);
    let played = check_output(&r, STEP);
    let s = r.stats;
    assert_eq!(s.duplicate, copies, "{s:?}");
    let unique: HashSet<usize> = played.iter().copied().collect();
    assert_eq!(unique.len(), played.len(), "a packet was played twice");
}

#[test]
fn sequence_and_timestamp_rollover_with_loss() {
    let mut rng = Rng::new(0x2011);
    let n = 500;
    // Both counters wrap within the first few seconds.
    let sent = sender(n, 65_500, u32::MAX - 60 * STEP, 0x2011, STEP, 1.0);
    let deliveries = deliver(&sent, |_, _| {
        if rng.chance(0.05) {
            vec![]
        } else {
            vec![uniform_jitter(&mut rng, 30_000, 30_000)]
        }
    });
    let net_lost = n - deliveries.len();
    let r = run(JitterConfig::default(), sent, deliveries, 10_500_000);
    let played = check_output(&r, STEP);
    check_losses_concealed(&r);
    let s = r.stats;
    assert_eq!(s.resets, 0, "rollover must not look like a jump: {s:?}");
    let seqs: Vec<u16> = played.iter().map(|&id| r.sent[id].seq).collect();
    assert!(seqs.contains(&65_535) || seqs.contains(&0));
    assert!(
        played.len() + net_lost + s.late as usize + s.dropped as usize >= n - 5,
        "{s:?}"
    );
}

#[test]
fn ssrc_change_mid_stream() {
    let mut rng = Rng::new(0x55C);
    let mut sent = sender(500, 10, 1000, 0xAAAA, STEP, 1.0);
    // At 10 s a new source takes over with unrelated counters.
    let mut second = sender(500, 40_000, 3_000_000_000, 0xBBBB, STEP, 1.0);
    for s in &mut second {
        s.send_us += 10_000_000;
    }
    sent.extend(second);
    let deliveries = deliver(&sent, |_, _| vec![uniform_jitter(&mut rng, 30_000, 20_000)]);
    let r = run(JitterConfig::default(), sent, deliveries, 20_500_000);
    check_output(&r, STEP);
    let s = r.stats;
    assert_eq!(s.resets, 1, "{s:?}");

    let first_new = r
        .outs
        .iter()
        .position(|(_, p)| matches!(p, Pop::Frame { ssrc: 0xBBBB, .. }))
        .unwrap();
    let (t_new, pop) = &r.outs[first_new];
    assert!(
        matches!(
            pop,
            Pop::Frame {
                discontinuity: Some(Discontinuity::Resync),
                ..
            }
        ),
        "{pop:?}"
    );
    assert!(
        !r.outs[first_new..]
            .iter()
            .any(|(_, p)| matches!(p, Pop::Frame { ssrc: 0xAAAA, .. })),
        "old stream played after the new one"
    );
    // Re-buffering costs about one target delay, not a burst of concealment.
    assert!(
        *t_new < 10_000_000 + 150_000,
        "new stream started at {t_new}"
    );
    let concealed_between = r.outs[..first_new]
        .iter()
        .filter(|(t, p)| *t >= 9_900_000 && matches!(p, Pop::Lost { .. }))
        .count();
    assert!(concealed_between <= 3, "{concealed_between}");
    // The new stream plays every packet once it runs.
    let new_played = r.outs[first_new..]
        .iter()
        .filter(|(_, p)| matches!(p, Pop::Frame { .. }))
        .count();
    assert!(new_played >= 490, "{new_played}");
}

#[test]
fn one_second_stall_then_burst() {
    let mut rng = Rng::new(0x57A11);
    let n = 1500;
    let sent = sender(n, 500, 0, 0x57, STEP, 1.0);
    // Packets sent during [10 s, 11 s) are held by the network and released
    // together at 11 s, in order, 0.1 ms apart.
    let deliveries = deliver(&sent, |id, s| {
        let normal = uniform_jitter(&mut rng, 30_000, 20_000);
        if (10_000_000..11_000_000).contains(&s.send_us) {
            vec![11_030_000 + (id as i64 - 500) * 100 - s.send_us]
        } else {
            vec![normal]
        }
    });
    let r = run(JitterConfig::default(), sent, deliveries, 30_500_000);
    check_output(&r, STEP);
    let s = r.stats;

    // Concealment is bounded, then silence until the stream comes back.
    let during: Vec<&Pop> = r
        .outs
        .iter()
        .filter(|(t, _)| (10_000_000..11_030_000).contains(t))
        .map(|(_, p)| p)
        .collect();
    let concealed = during
        .iter()
        .filter(|p| matches!(p, Pop::Lost { .. }))
        .count();
    assert!((5..=11).contains(&concealed), "{concealed}");
    assert!(during.iter().filter(|p| matches!(p, Pop::Empty)).count() >= 30);
    // The backlog is dropped, playout resumes near the live edge.
    assert!(s.late >= 35, "{s:?}");
    let resumed = r
        .outs
        .iter()
        .find(|(t, p)| *t > 10_500_000 && matches!(p, Pop::Frame { .. }))
        .unwrap();
    assert!(
        matches!(
            resumed.1,
            Pop::Frame {
                discontinuity: Some(Discontinuity::Resumed),
                ..
            }
        ),
        "{resumed:?}"
    );
    assert!(resumed.0 < 11_150_000, "resumed at {}", resumed.0);
    // And the stall did not leave a big buffer behind.
    for (t, st) in r.trace.iter().filter(|(t, _)| *t > 13_000_000) {
        assert!(ms(st.target_delay) <= 60.0, "{t}: {st:?}");
        assert!(ms(st.buffered_delay) <= 90.0, "{t}: {st:?}");
    }
}

fn drift(clock: f64, seed: u64) -> Run {
    let mut rng = Rng::new(seed);
    let n = 3000;
    let sent = sender(n, 0, 0, 0xD1F7, STEP, clock);
    let deliveries = deliver(&sent, |_, _| vec![uniform_jitter(&mut rng, 30_000, 10_000)]);
    let r = run(JitterConfig::default(), sent, deliveries, 59_500_000);
    check_output(&r, STEP);
    for (t, st) in r.trace.iter().filter(|(t, _)| *t > 5_000_000) {
        let d = ms(st.buffered_delay);
        assert!((10.0..=80.0).contains(&d), "buffered {d} ms at {t}: {st:?}");
        assert!(st.buffered_packets <= 5, "{st:?}");
    }
    assert!(measured_wait_ms(&r, 30_000_000) <= 60.0);
    r
}

#[test]
fn sender_clock_half_a_percent_fast() {
    let r = drift(1.005, 0xFA57);
    let s = r.stats;
    // 0.5% of a minute is 300 ms: about 15 frames must go.
    assert!((10..=25).contains(&s.dropped), "{s:?}");
    assert!(stretches(&r) <= 5, "{s:?}");
    assert!(s.late * 100 <= s.received * 3, "{s:?}");
}

#[test]
fn sender_clock_half_a_percent_slow() {
    let r = drift(1.0 / 1.005, 0x5104);
    let s = r.stats;
    // About 15 frames must be added.
    assert!((10..=25).contains(&stretches(&r)), "{s:?}");
    assert!(s.dropped <= 5, "{s:?}");
    assert!(s.late * 100 <= s.received * 3, "{s:?}");
}

fn ptime(step: u32) {
    let mut rng = Rng::new(u64::from(step));
    let step_us = i64::from(step) * 1_000_000 / i64::from(RATE);
    let n = (20_000_000 / step_us) as usize;
    let sent = sender(n, 9, 0, step, step, 1.0);
    let deliveries = deliver(&sent, |_, _| {
        if rng.chance(0.03) {
            vec![]
        } else {
            vec![uniform_jitter(&mut rng, 20_000, 30_000)]
        }
    });
    let r = run_with_step(JitterConfig::default(), sent, deliveries, 20_500_000, step);
    check_output(&r, step);
    check_losses_concealed(&r);
    for w in r.outs.iter().filter_map(|(_, p)| match p {
        Pop::Lost {
            samples,
            stretch: false,
            ..
        } => Some(*samples),
        _ => None,
    }) {
        assert_eq!(w, step, "a lost packet conceals one packet's duration");
    }
    let s = r.stats;
    assert!(ms(s.mean_buffered_delay) <= 80.0, "{s:?}");
    for (t, st) in r.trace.iter().filter(|(t, _)| *t > 5_000_000) {
        assert!(ms(st.buffered_delay) <= 100.0, "{t}: {st:?}");
    }
    assert!(s.dropped <= 6, "{s:?}");
}

#[test]
fn ten_ms_packets_with_a_20ms_playout_clock() {
    ptime(80);
}

#[test]
fn thirty_ms_packets_with_a_20ms_playout_clock() {
    ptime(240);
}

#[test]
fn talkspurts_with_silence_suppression() {
    let mut rng = Rng::new(0x7A1C);
    // 1 s talkspurts separated by 400 ms or 2 s of silence (no packets, the
    // timestamps keep running, marker on each talkspurt start).
    let mut sent = Vec::new();
    let mut seq = 0u16;
    let mut t_us = 0i64;
    for spurt in 0..12 {
        for i in 0..50 {
            sent.push(Sent {
                seq,
                ts: (t_us * 8 / 1000) as u32,
                ssrc: 0x7A,
                marker: i == 0,
                send_us: t_us,
            });
            seq = seq.wrapping_add(1);
            t_us += 20_000;
        }
        t_us += if spurt % 2 == 0 { 400_000 } else { 2_000_000 };
    }
    let deliveries = deliver(&sent, |_, _| vec![uniform_jitter(&mut rng, 30_000, 30_000)]);
    let end = t_us + 500_000;
    let r = run(JitterConfig::default(), sent, deliveries, end);
    let played = check_output(&r, STEP);
    let s = r.stats;
    // The buffer cannot tell silence from loss when a talkspurt ends, so it
    // conceals up to max_concealment (10 frames) there, and no more.
    assert!(s.lost <= 11 * 11 + s.late, "{s:?}");
    // Every talkspurt after the first starts with a `Resumed` frame that is
    // the marker packet.
    let starts: Vec<&Pop> = r
        .outs
        .iter()
        .map(|(_, p)| p)
        .filter(|p| matches!(p, Pop::Frame { marker: true, .. }))
        .collect();
    assert_eq!(starts.len(), 12);
    for p in &starts[1..] {
        assert!(
            matches!(
                p,
                Pop::Frame {
                    discontinuity: Some(Discontinuity::Resumed),
                    ..
                }
            ),
            "{p:?}"
        );
    }
    assert!(played.len() >= 590, "{}", played.len());
    assert!(ms(s.mean_buffered_delay) <= 80.0, "{s:?}");
}

#[test]
fn target_follows_a_change_in_jitter_fast_up_and_slowly_down() {
    let mut rng = Rng::new(0x57EB);
    let n = 3000;
    let sent = sender(n, 0, 0, 0x57EB, STEP, 1.0);
    // 10 ms of jitter, 100 ms between 20 s and 40 s, then 10 ms again.
    let deliveries = deliver(&sent, |_, s| {
        let j = if (20_000_000..40_000_000).contains(&s.send_us) {
            100_000
        } else {
            10_000
        };
        vec![uniform_jitter(&mut rng, 30_000, j)]
    });
    let r = run(JitterConfig::default(), sent, deliveries, 60_500_000);
    check_output(&r, STEP);
    let target_at = |t: i64| {
        let (_, st) = r.trace.iter().find(|(at, _)| *at >= t).unwrap();
        ms(st.target_delay)
    };
    assert!(target_at(19_000_000) <= 30.0, "{}", target_at(19_000_000));
    // Up within a second or two of the change...
    assert!(target_at(22_000_000) >= 80.0, "{}", target_at(22_000_000));
    assert!(target_at(39_000_000) >= 85.0, "{}", target_at(39_000_000));
    // ...down gently: still well above the floor one second after the change,
    // near it ten seconds later.
    assert!(target_at(41_500_000) >= 60.0, "{}", target_at(41_500_000));
    assert!(target_at(55_000_000) <= 30.0, "{}", target_at(55_000_000));
    // During the rough stretch playout kept up with the p95 promise.
    let late = r
        .trace
        .iter()
        .find(|(t, _)| *t >= 39_000_000)
        .unwrap()
        .1
        .late
        - r.trace
            .iter()
            .find(|(t, _)| *t >= 23_000_000)
            .unwrap()
            .1
            .late;
    assert!(late <= 8 * 16 * 50 / 100, "{late} late packets in 16 s");
    for (t, st) in r.trace.iter().filter(|(t, _)| *t >= 50_000_000) {
        assert!(ms(st.buffered_delay) <= 60.0, "{t}: {st:?}");
    }
}
