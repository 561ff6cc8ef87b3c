//! The RTCP transmission interval (RFC 3550 §6.3, Appendix A.7) and a
//! scheduler with timer reconsideration (§6.3.3, §6.3.6).

use std::time::{Duration, Instant};

/// e − 3/2: compensates for timer reconsideration converging below the
/// intended average (RFC 3550 §6.3.1, A.7).
const COMPENSATION: f64 = std::f64::consts::E - 1.5;

/// Inputs of the interval computation.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct IntervalConfig {
    /// Session bandwidth in bits per second (the `b=AS` value, or the
    /// codec's bitrate with IP/UDP/RTP overhead: ~80 kbit/s for G.711).
    pub session_bandwidth_bps: f64,
    /// Share of the session bandwidth for RTCP (§6.2: 5 %).
    pub rtcp_fraction: f64,
    /// The minimum interval (§6.2: 5 s).
    pub min_interval: Duration,
    /// Scale the minimum to 360 / session bandwidth in kbit/s (§6.2's
    /// reduced minimum), still halved for the first report.
    pub reduced_minimum: bool,
}

impl Default for IntervalConfig {
    /// G.711 with headers, 5 %, 5 s minimum, no reduced minimum.
    fn default() -> Self {
        IntervalConfig {
            session_bandwidth_bps: 80_000.0,
            rtcp_fraction: 0.05,
            min_interval: Duration::from_secs(5),
            reduced_minimum: false,
        }
    }
}

/// The deterministic RTCP interval of RFC 3550 Appendix A.7, before
/// randomization, in seconds. `avg_rtcp_size` is in octets (with UDP/IP
/// headers), `members` and `senders` count this participant too.
pub fn rtcp_interval(
    config: &IntervalConfig,
    members: u32,
    senders: u32,
    we_sent: bool,
    avg_rtcp_size: f64,
    initial: bool,
) -> f64 {
    // Senders share a quarter of the RTCP bandwidth when they are a quarter
    // or less of the members (§6.2).
    const SENDER_FRACTION: f64 = 0.25;
    let mut tmin = config.min_interval.as_secs_f64();
    if config.reduced_minimum && config.session_bandwidth_bps > 0.0 {
        tmin = tmin.min(360.0 / (config.session_bandwidth_bps / 1000.0));
    }
    if initial {
        tmin /= 2.0;
    }
    let rtcp_bw = (config.session_bandwidth_bps * config.rtcp_fraction / 8.0).max(1.0);
    let members = members.max(1);
    let mut n = f64::from(members);
    let mut bw = rtcp_bw;
    if senders > 0 && f64::from(senders) <= f64::from(members) * SENDER_FRACTION {
        if we_sent {
            bw *= SENDER_FRACTION;
            n = f64::from(senders);
        } else {
            bw *= 1.0 - SENDER_FRACTION;
            n -= f64::from(senders);
        }
    }
    let t = avg_rtcp_size.max(1.0) * n / bw;
    t.max(tmin)
}

/// When the next RTCP report is due, for a session with one remote party
/// by default (`members` = 2).
///
/// Call [`poll`](Self::poll) when [`next_due`](Self::next_due) has passed:
/// it applies reconsideration and says whether to send now; after sending,
/// call [`on_sent`](Self::on_sent) with the compound's size. Randomness (the
/// 0.5–1.5 factor of §6.3.1) comes from a seeded generator so tests are
/// reproducible; seed it from a random source in production.
#[derive(Debug, Clone)]
pub struct ReportScheduler {
    config: IntervalConfig,
    members: u32,
    senders: u32,
    we_sent: bool,
    avg_rtcp_size: f64,
    initial: bool,
    last_sent: Instant,
    next: Instant,
    rng: u64,
}

/// UDP + IPv4 header octets added to every packet in the average (§6.2).
const LOWER_LAYER_OVERHEAD: usize = 28;

impl ReportScheduler {
    /// A scheduler starting at `now`; the first report is due after half
    /// the minimum interval, randomized.
    pub fn new(config: IntervalConfig, now: Instant, seed: u64) -> Self {
        let mut s = ReportScheduler {
            config,
            members: 2,
            senders: 1,
            we_sent: false,
            // A receiver report with one block and an SDES CNAME.
            avg_rtcp_size: 100.0,
            initial: true,
            last_sent: now,
            next: now,
            // xorshift64* needs a non-zero state.
            rng: seed | 1,
        };
        s.next = now + s.randomized_interval();
        s
    }

    fn random_factor(&mut self) -> f64 {
        let mut x = self.rng;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.rng = x;
        let r = x.wrapping_mul(0x2545_f491_4f6c_dd1d) >> 11;
        0.5 + r as f64 / (1u64 << 53) as f64
    }

    fn randomized_interval(&mut self) -> Duration {
        let t = rtcp_interval(
            &self.config,
            self.members,
            self.senders,
            self.we_sent,
            self.avg_rtcp_size,
            self.initial,
        );
        Duration::from_secs_f64(t * self.random_factor() / COMPENSATION)
    }

    /// When the next report is due.
    pub fn next_due(&self) -> Instant {
        self.next
    }

    /// Whether to send a report at `now`. With timer reconsideration
    /// (§6.3.6) an expired timer is re-evaluated against the current state
    /// and pushed back if the new interval has not passed yet.
    pub fn poll(&mut self, now: Instant) -> bool {
        if now < self.next {
            return false;
        }
        let t = self.randomized_interval();
        let due = self.last_sent + t;
        if due <= now {
            true
        } else {
            self.next = due;
            false
        }
    }

    /// Records a report of `size` octets (RTCP only; UDP/IP headers are
    /// added here) sent at `now` and schedules the next one.
    pub fn on_sent(&mut self, now: Instant, size: usize) {
        self.update_avg(size);
        self.initial = false;
        self.last_sent = now;
        self.next = now + self.randomized_interval();
    }

    /// Records a received compound packet of `size` octets (§6.3.3).
    pub fn on_received(&mut self, size: usize) {
        self.update_avg(size);
    }

    fn update_avg(&mut self, size: usize) {
        let size = (size + LOWER_LAYER_OVERHEAD) as f64;
        self.avg_rtcp_size = size / 16.0 + self.avg_rtcp_size * 15.0 / 16.0;
    }

    /// Whether this participant sent RTP since the previous report.
    pub fn set_we_sent(&mut self, we_sent: bool) {
        self.we_sent = we_sent;
    }

    /// Sets the member and sender counts (this participant included).
    pub fn set_members(&mut self, members: u32, senders: u32) {
        self.members = members.max(1);
        self.senders = senders.min(self.members);
    }

    /// The average compound packet size with headers, in octets.
    pub fn avg_rtcp_size(&self) -> f64 {
        self.avg_rtcp_size
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn minimum_applies_to_small_sessions() {
        let c = IntervalConfig::default();
        assert_eq!(rtcp_interval(&c, 2, 1, true, 100.0, false), 5.0);
        assert_eq!(rtcp_interval(&c, 2, 1, true, 100.0, true), 2.5);
    }

    #[test]
    fn large_sessions_scale_with_members() {
        let c = IntervalConfig::default();
        // 4000 members, 5 % of 80 kbit/s = 500 B/s, 100 B each, no senders.
        let t = rtcp_interval(&c, 4000, 0, false, 100.0, false);
        assert!((t - 800.0).abs() < 1e-9, "{t}");
        // Few senders share a quarter of the bandwidth among themselves.
        let t = rtcp_interval(&c, 4000, 10, true, 100.0, false);
        assert!((t - 8.0).abs() < 1e-9, "{t}");
        let t = rtcp_interval(&c, 4000, 10, false, 100.0, false);
        assert!((t - 3990.0 * 100.0 / 375.0).abs() < 1e-9, "{t}");
    }

    #[test]
    fn reduced_minimum() {
        let c = IntervalConfig {
            reduced_minimum: true,
            ..Default::default()
        };
        // 360 / 80 kbit/s = 4.5 s.
        assert!((rtcp_interval(&c, 2, 1, true, 100.0, false) - 4.5).abs() < 1e-9);
    }

    #[test]
    fn scheduled_intervals_are_randomized_within_bounds() {
        let base = Instant::now();
        let mut s = ReportScheduler::new(IntervalConfig::default(), base, 42);
        let first = s.next_due() - base;
        let lo = 2.5 * 0.5 / COMPENSATION;
        let hi = 2.5 * 1.5 / COMPENSATION;
        assert!((lo..=hi).contains(&first.as_secs_f64()), "{first:?}");
        let mut now = base;
        let mut distinct = std::collections::BTreeSet::new();
        let mut sent = 0;
        for _ in 0..2000 {
            now += Duration::from_millis(20);
            if s.poll(now) {
                let gap = now - s.last_sent;
                if sent > 0 {
                    let g = gap.as_secs_f64();
                    assert!(g >= 5.0 * 0.5 / COMPENSATION - 0.02, "{g}");
                    assert!(g <= 5.0 * 1.5 / COMPENSATION + 0.02, "{g}");
                    distinct.insert(gap.as_millis());
                }
                s.on_sent(now, 80);
                sent += 1;
            }
        }
        // 40 s of reports every 2–6 s.
        assert!((7..=20).contains(&sent), "{sent}");
        assert!(distinct.len() > 3, "not randomized: {distinct:?}");
    }

    #[test]
    fn poll_before_due_is_false() {
        let base = Instant::now();
        let mut s = ReportScheduler::new(IntervalConfig::default(), base, 1);
        assert!(!s.poll(base));
        assert!(!s.poll(s.next_due() - Duration::from_millis(1)));
    }

    #[test]
    fn average_size_tracks_packets() {
        let base = Instant::now();
        let mut s = ReportScheduler::new(IntervalConfig::default(), base, 1);
        for _ in 0..200 {
            s.on_received(172);
        }
        assert!((s.avg_rtcp_size() - 200.0).abs() < 1.0);
    }
}
