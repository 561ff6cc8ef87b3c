//! Jitter buffer on simulated networks: the buffering delay it settles on
//! and what it conceals, for a minute of 20 ms G.711 packets per profile.
//! Deterministic (seeded), faster than realtime.
//!
//! Run: `cargo bench --bench jitter_sim`

use std::time::{Duration, Instant};

use bytes::Bytes;
use hotline_media::jitter::{JitterBuffer, JitterConfig, JitterPacket, Pop};

struct Rng(u64);

impl Rng {
    fn unit(&mut self) -> f64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        (self.0 >> 11) as f64 / (1u64 << 53) as f64
    }
}

struct Profile {
    name: &'static str,
    loss: f64,
    /// Probability a loss continues into the next packet (bursts).
    burst: f64,
    jitter_ms: f64,
    reorder: f64,
}

fn run(p: &Profile) {
    let packets = 3000u32; // one minute
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    let t0 = Instant::now();
    let payload = Bytes::from_static(&[0xff; 160]);
    let mut arrivals = Vec::new();
    let mut lost_prev = false;
    let mut sent_lost = 0;
    for n in 0..packets {
        let lose = if lost_prev {
            rng.unit() < p.burst
        } else {
            rng.unit() < p.loss
        };
        lost_prev = lose;
        if lose {
            sent_lost += 1;
            continue;
        }
        let mut delay = 10.0 + rng.unit() * p.jitter_ms;
        if rng.unit() < p.reorder {
            delay += 25.0;
        }
        let at = t0 + Duration::from_secs_f64((f64::from(n) * 20.0 + delay) / 1000.0);
        arrivals.push((at, n));
    }
    arrivals.sort();
    let mut jb = JitterBuffer::new(JitterConfig::default()).unwrap();
    let mut next = arrivals.into_iter().peekable();
    let (mut frames, mut lost, mut silent) = (0u64, 0u64, 0u64);
    let mut max_target = Duration::ZERO;
    for tick in 0..packets + 50 {
        let now = t0 + Duration::from_millis(u64::from(tick) * 20);
        while let Some((at, n)) = next.next_if(|(at, _)| *at <= now) {
            jb.push(
                JitterPacket {
                    seq: n as u16,
                    timestamp: n * 160,
                    ssrc: 7,
                    marker: n == 0,
                    payload: payload.clone(),
                },
                at,
            );
        }
        match jb.pop(now) {
            Pop::Frame { .. } => frames += 1,
            Pop::Lost { .. } => lost += 1,
            Pop::Waiting | Pop::Empty => silent += 1,
        }
        max_target = max_target.max(jb.stats().target_delay);
    }
    let s = jb.stats();
    println!(
        "{:<28} sent-lost {:>4.1}%  played {:>5}  concealed {:>4}  late {:>3}  silent {:>3}  target {:>5.1} ms (max {:>5.1})  mean buffering {:>5.1} ms",
        p.name,
        f64::from(sent_lost) * 100.0 / f64::from(packets),
        frames,
        lost,
        s.late,
        silent,
        s.target_delay.as_secs_f64() * 1000.0,
        max_target.as_secs_f64() * 1000.0,
        s.mean_buffered_delay.as_secs_f64() * 1000.0,
    );
}

fn main() {
    for p in [
        Profile {
            name: "clean (10 ms fixed)",
            loss: 0.0,
            burst: 0.0,
            jitter_ms: 0.0,
            reorder: 0.0,
        },
        Profile {
            name: "5% loss, 40 ms jitter",
            loss: 0.05,
            burst: 0.05,
            jitter_ms: 40.0,
            reorder: 0.0,
        },
        Profile {
            name: "5% bursty loss, 40 ms",
            loss: 0.02,
            burst: 0.6,
            jitter_ms: 40.0,
            reorder: 0.0,
        },
        Profile {
            name: "2% reorder, 20 ms jitter",
            loss: 0.0,
            burst: 0.0,
            jitter_ms: 20.0,
            reorder: 0.02,
        },
        Profile {
            name: "100 ms jitter",
            loss: 0.01,
            burst: 0.0,
            jitter_ms: 100.0,
            reorder: 0.0,
        },
    ] {
        run(&p);
    }
}
