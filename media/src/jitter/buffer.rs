//! The jitter buffer state machine. The policy is described in the module
//! documentation of [`crate::jitter`].

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use super::delay::DelayWindow;
use super::{Discontinuity, JitterConfig, JitterError, JitterPacket, JitterStats, Pop};

/// RFC 3550 appendix A.1 limits for sequence-number jumps.
const MAX_DROPOUT: i64 = 3000;
const MAX_MISORDER: i64 = 100;
/// Slowest pace of delay-cutting drops inside a talkspurt.
const SHRINK_INTERVAL_US: i64 = 500_000;
/// Time constant of the target's decay.
const TARGET_DECAY_US: i64 = 2_000_000;
/// Longest timestamp step taken as one packet's duration rather than a gap.
const MAX_STEP_US: i64 = 120_000;
/// Smallest number of delay samples kept, whatever the window.
const MIN_SAMPLES: usize = 16;
/// Sequence numbers remembered behind the playout cursor, to tell a
/// duplicate of a played packet from a late one.
const HISTORY: i64 = 128;

#[derive(Debug)]
struct Entry {
    seq: i64,
    ts: i64,
    arrival_us: i64,
    packet: JitterPacket,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// No playout timeline: before the first frame, or after a resync.
    Idle,
    /// Playing or concealing.
    Playing,
    /// Concealed for too long: silent, with a virtual clock still running.
    Stopped,
}

/// What is known of the current stream.
#[derive(Debug, Clone, Copy)]
struct Stream {
    ssrc: u32,
    /// Highest extended sequence number seen, and its extended timestamp.
    seq: i64,
    ts: i64,
    /// Timestamp step between consecutive packets: one packet's duration.
    step: i64,
}

#[derive(Debug, Default, Clone, Copy)]
struct Counters {
    received: u64,
    played: u64,
    late: u64,
    duplicate: u64,
    reordered: u64,
    lost: u64,
    concealed: u64,
    dropped: u64,
    discarded: u64,
    resets: u64,
}

/// Adaptive jitter buffer for one RTP audio stream. See the [module
/// documentation](crate::jitter) for the policy.
#[derive(Debug)]
pub struct JitterBuffer {
    config: JitterConfig,
    rate: i64,
    /// One frame period in timestamp units and in microseconds.
    spf: i64,
    spf_us: i64,
    min_us: i64,
    max_us: i64,
    max_step: i64,
    conceal_limit_us: i64,
    window_us: i64,
    capacity: usize,

    /// Time origin for all microsecond values: the first arrival.
    epoch: Option<Instant>,
    stream: Option<Stream>,
    queue: VecDeque<Entry>,
    delays: DelayWindow,
    target_us: i64,
    last_record_us: Option<i64>,

    state: State,
    /// No packet of the current stream played yet; `next_seq` is meaningless.
    fresh: bool,
    /// Playout cursor: next sequence number and timestamp to hand out.
    next_seq: i64,
    next_ts: i64,
    /// Bit `i` set: sequence `next_seq - 1 - i` was played (or counted).
    handled: u128,
    conceal_run_us: i64,
    last_drop_us: Option<i64>,
    pending_drop: u32,
    /// First arrival of the current run of stale packets while stopped.
    stale_since: Option<i64>,
    /// A packet that would start a new stream, waiting for confirmation.
    candidate: Option<(JitterPacket, i64)>,

    playout_delay_us: i64,
    wait_sum_us: u64,
    counters: Counters,
}

impl JitterBuffer {
    /// Creates a buffer; fails if `config` does not validate.
    pub fn new(config: JitterConfig) -> Result<Self, JitterError> {
        config.validate()?;
        let rate = i64::from(config.clock_rate);
        let us = |d: Duration| i64::try_from(d.as_micros()).unwrap_or(i64::MAX);
        let window_us = us(config.window);
        // Enough samples for the whole window at 10 ms packets.
        let samples = usize::try_from(window_us / 10_000)
            .unwrap_or(usize::MAX)
            .max(MIN_SAMPLES);
        let spf = i64::from(config.samples_per_frame()).max(1);
        Ok(Self {
            rate,
            spf,
            spf_us: us(config.frame),
            min_us: us(config.min_delay),
            max_us: us(config.max_delay),
            max_step: (MAX_STEP_US * rate / 1_000_000).max(spf),
            conceal_limit_us: us(config.max_concealment),
            window_us,
            capacity: config.capacity,
            epoch: None,
            stream: None,
            queue: VecDeque::with_capacity(config.capacity),
            delays: DelayWindow::new(samples, window_us),
            target_us: us(config.initial_delay),
            last_record_us: None,
            state: State::Idle,
            fresh: true,
            next_seq: 0,
            next_ts: 0,
            handled: 0,
            conceal_run_us: 0,
            last_drop_us: None,
            pending_drop: 0,
            stale_since: None,
            candidate: None,
            playout_delay_us: 0,
            wait_sum_us: 0,
            counters: Counters::default(),
            config,
        })
    }

    /// The settings this buffer was built with.
    pub fn config(&self) -> &JitterConfig {
        &self.config
    }

    /// Takes in a packet that arrived at `arrival`. Packets that cannot be
    /// played (late, duplicate, stray) are dropped and counted in
    /// [`stats`](Self::stats).
    pub fn push(&mut self, packet: JitterPacket, arrival: Instant) {
        self.counters.received += 1;
        let epoch = *self.epoch.get_or_insert(arrival);
        let arrival_us = micros_since(epoch, arrival);
        match self.extend(&packet, arrival_us) {
            Some((seq, ts)) => {
                if self.candidate.take().is_some() {
                    self.counters.discarded += 1;
                }
                self.accept(packet, seq, ts, arrival_us);
            }
            None => self.probation(packet, arrival_us),
        }
    }

    /// Returns what to play for the slot starting at `now`.
    pub fn pop(&mut self, now: Instant) -> Pop {
        let Some(epoch) = self.epoch else {
            return Pop::Empty;
        };
        let now_us = micros_since(epoch, now);
        match self.state {
            State::Idle => self.pop_idle(now_us),
            State::Playing => self.pop_playing(now_us),
            State::Stopped => self.pop_stopped(now_us),
        }
    }

    /// Forgets the stream and everything buffered (counted as discarded);
    /// the next packet starts a new stream. The target delay is kept.
    pub fn reset(&mut self) {
        self.counters.discarded += self.queue.len() as u64;
        self.counters.resets += 1;
        self.queue.clear();
        self.delays.clear();
        self.stream = None;
        self.state = State::Idle;
        self.fresh = true;
        self.handled = 0;
        self.conceal_run_us = 0;
        self.pending_drop = 0;
        self.stale_since = None;
        self.last_record_us = None;
    }

    /// Current counters and delays.
    pub fn stats(&self) -> JitterStats {
        let c = &self.counters;
        let dur = |us: i64| Duration::from_micros(u64::try_from(us).unwrap_or(0));
        let mean = self.wait_sum_us.checked_div(c.played).unwrap_or(0);
        JitterStats {
            target_delay: dur(self.target_us),
            buffered_delay: if self.state == State::Playing {
                dur(self.playout_delay_us)
            } else {
                Duration::ZERO
            },
            mean_buffered_delay: Duration::from_micros(mean),
            buffered_packets: self.queue.len(),
            received: c.received,
            played: c.played,
            late: c.late,
            duplicate: c.duplicate,
            reordered: c.reordered,
            lost: c.lost,
            concealed: c.concealed,
            dropped: c.dropped,
            discarded: c.discarded,
            resets: c.resets,
        }
    }

    // ---- arrival side ----

    /// Extends sequence number and timestamp against the stream, or returns
    /// `None` if the packet does not fit it (a resync candidate).
    fn extend(&self, p: &JitterPacket, arrival_us: i64) -> Option<(i64, i64)> {
        let Some(s) = self.stream else {
            return Some((i64::from(p.seq), i64::from(p.timestamp)));
        };
        if p.ssrc != s.ssrc {
            return None;
        }
        let d = i64::from(p.seq.wrapping_sub(s.seq as u16) as i16);
        if !(-MAX_MISORDER..=MAX_DROPOUT).contains(&d) {
            return None;
        }
        let ts = s.ts + i64::from(p.timestamp.wrapping_sub(s.ts as u32) as i32);
        if d > 0 && ts < s.ts {
            return None;
        }
        if let Some(min) = self.delays.min() {
            let relative = arrival_us
                .saturating_sub(self.ts_us(ts))
                .saturating_sub(min);
            if relative < -self.max_us {
                return None;
            }
        }
        Some((s.seq + d, ts))
    }

    /// A packet that does not fit the stream resyncs only if the next one
    /// continues it; a lone stray packet is discarded.
    fn probation(&mut self, p: JitterPacket, arrival_us: i64) {
        let confirmed = self.candidate.as_ref().is_some_and(|(c, _)| {
            c.ssrc == p.ssrc
                && p.seq == c.seq.wrapping_add(1)
                && p.timestamp.wrapping_sub(c.timestamp) as i32 >= 0
        });
        if !confirmed {
            if self.candidate.replace((p, arrival_us)).is_some() {
                self.counters.discarded += 1;
            }
            return;
        }
        if let Some((first, first_arrival)) = self.candidate.take() {
            self.reset();
            for (packet, at) in [(first, first_arrival), (p, arrival_us)] {
                if let Some((seq, ts)) = self.extend(&packet, at) {
                    self.accept(packet, seq, ts, at);
                } else {
                    self.counters.discarded += 1;
                }
            }
        }
    }

    fn accept(&mut self, p: JitterPacket, seq: i64, ts: i64, arrival_us: i64) {
        let transit = arrival_us.saturating_sub(self.ts_us(ts));
        let mut reordered = false;
        match self.stream.as_mut() {
            None => {
                self.stream = Some(Stream {
                    ssrc: p.ssrc,
                    seq,
                    ts,
                    step: self.spf,
                });
            }
            Some(s) if seq > s.seq => {
                let step = ts - s.ts;
                // A marker or a long step is a talkspurt gap, not a duration.
                if seq == s.seq + 1 && !p.marker && step > 0 && step <= self.max_step {
                    s.step = step;
                }
                s.seq = seq;
                s.ts = ts;
            }
            Some(s) => reordered = seq < s.seq,
        }

        let behind = !self.fresh && seq < self.next_seq;
        // Playout moved past its timestamp while it was missing (concealed,
        // or silent after an outage).
        let passed = !behind && !self.fresh && self.state != State::Idle && ts < self.next_ts;
        if behind && self.mark_handled(seq) {
            self.counters.duplicate += 1;
            return;
        }
        if passed && self.state == State::Stopped {
            let since = *self.stale_since.get_or_insert(arrival_us);
            if arrival_us - since > self.window_us {
                // Stale for a whole window: this is no backlog, the sender's
                // timestamps fell behind (frozen during a hold). Start over
                // on them as on a new stream: output timestamps go back.
                self.state = State::Idle;
                self.fresh = true;
                self.counters.resets += 1;
            }
        }
        if behind || (passed && self.state != State::Idle) {
            self.counters.late += 1;
            self.counters.reordered += u64::from(reordered);
            // Late packets are the signal to grow; after an outage they are
            // backlog and would only inflate the statistics.
            if self.state == State::Playing {
                self.record(arrival_us, transit);
            }
            if passed && seq == self.next_seq && self.queue.front().is_none_or(|e| e.seq > seq) {
                self.advance(true);
            }
            return;
        }
        self.stale_since = None;

        let mut pos = self.queue.partition_point(|e| e.seq < seq);
        if self.queue.get(pos).is_some_and(|e| e.seq == seq) {
            self.counters.duplicate += 1;
            return;
        }
        self.counters.reordered += u64::from(reordered);
        self.record(arrival_us, transit);
        if self.queue.len() >= self.capacity {
            self.overflow();
            pos = pos.saturating_sub(1);
        }
        self.queue.insert(
            pos,
            Entry {
                seq,
                ts,
                arrival_us,
                packet: p,
            },
        );
    }

    /// Full: discard the oldest packet, and make playout skip it rather
    /// than conceal a packet it had.
    fn overflow(&mut self) {
        let Some(e) = self.queue.pop_front() else {
            return;
        };
        self.counters.discarded += 1;
        if !self.fresh && e.seq >= self.next_seq {
            self.skip_to(e.seq);
            self.advance(true);
            self.next_ts = self.next_ts.max(e.ts + self.step());
            self.pending_drop += 1;
        }
    }

    fn record(&mut self, arrival_us: i64, transit: i64) {
        self.delays.push(arrival_us, transit);
        let raw = self.delays.p95().clamp(self.min_us, self.max_us);
        if raw >= self.target_us {
            self.target_us = raw;
        } else {
            let dt = self.last_record_us.map_or(0, |t| {
                arrival_us.saturating_sub(t).clamp(0, TARGET_DECAY_US)
            });
            // Rounded up so that the target reaches the raw value.
            self.target_us -= ((self.target_us - raw) * dt + TARGET_DECAY_US - 1) / TARGET_DECAY_US;
        }
        self.last_record_us = Some(arrival_us);
    }

    // ---- playout side ----

    fn pop_idle(&mut self, now: i64) -> Pop {
        if !self.start_due(now) {
            return if self.queue.is_empty() {
                Pop::Empty
            } else {
                Pop::Waiting
            };
        }
        let disc = if self.fresh {
            Discontinuity::Resync
        } else {
            Discontinuity::Resumed
        };
        self.state = State::Playing;
        self.pending_drop = 0;
        let pop = self.play_front(now, Some(disc));
        // Only now: the cursor of a fresh stream starts at this packet.
        self.fresh = false;
        pop
    }

    fn pop_stopped(&mut self, now: i64) -> Pop {
        if self.start_due(now) {
            self.state = State::Playing;
            self.pending_drop = 0;
            return self.play_front(now, Some(Discontinuity::Resumed));
        }
        // The virtual clock keeps running so that an outage's backlog is
        // recognised as stale when it arrives.
        self.next_ts += self.spf;
        if self.queue.is_empty() {
            Pop::Empty
        } else {
            Pop::Waiting
        }
    }

    /// Whether playout may (re)start now on the head packet. Heads whose
    /// successor is due as well are dropped first: after a stall they are
    /// backlog, and playing them would keep all of it as delay.
    fn start_due(&mut self, now: i64) -> bool {
        while self.queue.len() >= 2 && self.delay_of(now, self.queue[1].ts) >= self.target_us {
            self.discard_front();
            self.counters.dropped += 1;
        }
        self.queue
            .front()
            .is_some_and(|h| self.delay_of(now, h.ts) >= self.target_us)
    }

    fn pop_playing(&mut self, now: i64) -> Pop {
        // Defensive: nothing behind the cursor may be played.
        while self.queue.front().is_some_and(|e| e.seq < self.next_seq) {
            self.queue.pop_front();
            self.counters.dropped += 1;
        }
        let d = self.delay_of(now, self.next_ts);
        let head = self.queue.front().map(|e| (e.seq, e.ts));
        let Some((seq, ts)) = head.filter(|&(seq, _)| seq == self.next_seq) else {
            if self.conceal_run_us >= self.conceal_limit_us {
                self.state = State::Stopped;
                self.conceal_run_us = 0;
                return self.pop_stopped(now);
            }
            if d < self.target_us {
                return self.stretch(d);
            }
            return self.conceal(now, d, head);
        };
        if ts - self.next_ts >= self.spf {
            // Silence between talkspurts: its length is free to change.
            if self.delay_of(now, ts) >= self.target_us {
                return self.play_front(now, Some(Discontinuity::Resumed));
            }
            return Pop::Waiting;
        }
        if d < self.target_us {
            return self.stretch(d);
        }
        let second_here = self.queue.get(1).is_some_and(|e| e.seq == seq + 1);
        let may_drop = self
            .last_drop_us
            .is_none_or(|t| now - t >= SHRINK_INTERVAL_US)
            || d > self.max_us + self.spf_us;
        if second_here && may_drop && d > self.target_us + self.spf_us * 3 / 2 {
            self.discard_front();
            self.counters.dropped += 1;
            self.pending_drop += 1;
            self.last_drop_us = Some(now);
        }
        self.play_front(now, None)
    }

    fn play_front(&mut self, now: i64, disc: Option<Discontinuity>) -> Pop {
        let Some(e) = self.discard_front() else {
            return Pop::Empty;
        };
        self.conceal_run_us = 0;
        self.playout_delay_us = self.delay_of(now, e.ts);
        self.counters.played += 1;
        self.wait_sum_us += u64::try_from(now.saturating_sub(e.arrival_us)).unwrap_or(0);
        let discontinuity = disc.or_else(|| {
            (self.pending_drop > 0).then_some(Discontinuity::Dropped {
                packets: self.pending_drop,
            })
        });
        self.pending_drop = 0;
        Pop::Frame {
            payload: e.packet.payload,
            timestamp: e.ts as u32,
            seq: e.seq as u16,
            ssrc: e.packet.ssrc,
            marker: e.packet.marker,
            discontinuity,
        }
    }

    /// Inserts one frame of concealment without consuming a slot.
    fn stretch(&mut self, d: i64) -> Pop {
        self.counters.concealed += 1;
        self.conceal_run_us += self.spf_us;
        self.playout_delay_us = d;
        Pop::Lost {
            timestamp: self.next_ts as u32,
            ssrc: self.ssrc(),
            samples: self.spf as u32,
            stretch: true,
        }
    }

    /// Gives up one packet's worth of time at the cursor. Sequence numbers
    /// are not consumed: an empty buffer may mean silence (DTX), and the next
    /// packet in sequence then still plays. A hole before a buffered packet
    /// is concealed up to that packet's timestamp.
    fn conceal(&mut self, now: i64, d: i64, head: Option<(i64, i64)>) -> Pop {
        let mut samples = self.step();
        if let Some((seq, ts)) = head {
            let room = ts - self.next_ts;
            if room <= 0 {
                self.skip_to(seq);
                return self.pop_playing(now);
            }
            samples = samples.min(room);
        }
        let timestamp = self.next_ts as u32;
        self.next_ts += samples;
        self.counters.lost += 1;
        self.counters.concealed += 1;
        self.conceal_run_us += samples * 1_000_000 / self.rate;
        self.playout_delay_us = d;
        Pop::Lost {
            timestamp,
            ssrc: self.ssrc(),
            samples: samples as u32,
            stretch: false,
        }
    }

    // ---- helpers ----

    /// Removes the head packet and moves the cursor just past it.
    fn discard_front(&mut self) -> Option<Entry> {
        let e = self.queue.pop_front()?;
        self.skip_to(e.seq);
        self.advance(true);
        self.next_ts = e.ts + self.step();
        Some(e)
    }

    /// Moves the cursor forward to `seq`; the slots passed are unhandled.
    fn skip_to(&mut self, seq: i64) {
        let k = seq.saturating_sub(self.next_seq);
        if self.fresh || k >= HISTORY {
            self.handled = 0;
            self.next_seq = seq;
        } else if k > 0 {
            self.handled <<= k;
            self.next_seq = seq;
        }
    }

    fn advance(&mut self, handled: bool) {
        self.handled = (self.handled << 1) | u128::from(handled);
        self.next_seq += 1;
    }

    /// Marks a sequence number behind the cursor as handled; returns whether
    /// it already was.
    fn mark_handled(&mut self, seq: i64) -> bool {
        let age = self.next_seq - 1 - seq;
        if !(0..HISTORY).contains(&age) {
            return false;
        }
        let bit = 1u128 << age;
        let was = self.handled & bit != 0;
        self.handled |= bit;
        was
    }

    fn step(&self) -> i64 {
        self.stream.map_or(self.spf, |s| s.step)
    }

    fn ssrc(&self) -> u32 {
        self.stream.map_or(0, |s| s.ssrc)
    }

    fn ts_us(&self, ts: i64) -> i64 {
        ts.saturating_mul(1_000_000).div_euclid(self.rate)
    }

    /// Playout delay if timestamp `ts` were played at `now`.
    fn delay_of(&self, now: i64, ts: i64) -> i64 {
        let transit = now.saturating_sub(self.ts_us(ts));
        self.delays
            .min()
            .map_or(0, |min| transit.saturating_sub(min))
    }
}

/// Signed microseconds from `epoch` to `t`.
fn micros_since(epoch: Instant, t: Instant) -> i64 {
    let us = |d: Duration| i64::try_from(d.as_micros()).unwrap_or(i64::MAX);
    match t.checked_duration_since(epoch) {
        Some(d) => us(d),
        None => -us(epoch.duration_since(t)),
    }
}

#[cfg(test)]
mod tests {
    use bytes::Bytes;

    use super::*;

    #[test]
    fn micros_since_is_signed() {
        let t = Instant::now() + Duration::from_secs(1);
        assert_eq!(micros_since(t, t + Duration::from_millis(3)), 3000);
        assert_eq!(micros_since(t, t - Duration::from_millis(3)), -3000);
    }

    #[test]
    fn history_tells_duplicates_from_late_packets() {
        let mut jb = JitterBuffer::new(JitterConfig::default()).unwrap();
        jb.fresh = false;
        jb.next_seq = 10;
        jb.advance(true); // 10 played
        jb.advance(false); // 11 concealed
        jb.skip_to(20);
        assert!(jb.mark_handled(10), "10 was played: duplicate");
        assert!(!jb.mark_handled(11), "11 was not: late");
        assert!(jb.mark_handled(11), "a second copy of 11 is a duplicate");
        assert!(!jb.mark_handled(20), "not behind the cursor");
    }

    /// The per-packet path must not allocate once built: the queue and the
    /// statistics keep the sizes they were created with.
    #[test]
    fn hot_path_keeps_its_allocations() {
        let mut jb = JitterBuffer::new(JitterConfig::default()).unwrap();
        let (queue, stats) = (jb.queue.capacity(), jb.delays.allocated());
        let base = Instant::now();
        let mut x = 1u64;
        for i in 0..5000u32 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let jitter = Duration::from_micros(x % 60_000);
            let seq = i as u16 ^ u16::from(x.is_multiple_of(7)); // some reordering
            let packet = JitterPacket {
                seq,
                timestamp: u32::from(seq) * 160,
                ssrc: 1,
                marker: false,
                payload: Bytes::from_static(b"x"),
            };
            jb.push(
                packet,
                base + Duration::from_millis(20 * u64::from(i)) + jitter,
            );
            let _ = jb.pop(base + Duration::from_millis(20 * u64::from(i) + 5));
        }
        assert!(jb.stats().played > 4000);
        assert_eq!(jb.queue.capacity(), queue);
        assert_eq!(jb.delays.allocated(), stats);
    }
}
