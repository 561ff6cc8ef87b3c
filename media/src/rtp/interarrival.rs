//! Interarrival jitter of RFC 3550 §6.4.1 and Appendix A.8.
//!
//! Both the RTP timestamp and the arrival time are in RTP timestamp units of
//! the payload's clock; the caller converts its arrival `Instant`s with
//! [`rtp_units`] or [`rtp_units_between`] so this code never reads a clock.

use std::time::{Duration, Instant};

/// Converts a duration to RTP timestamp units of a `clock_rate` Hz clock,
/// truncating, and wrapping like the 32-bit RTP timestamp does.
pub fn rtp_units(d: Duration, clock_rate: u32) -> u32 {
    (d.as_nanos() * u128::from(clock_rate) / 1_000_000_000) as u32
}

/// Arrival time of `arrival` in RTP units since `epoch`, for feeding
/// [`JitterEstimator::update`]. Only differences matter, so any fixed epoch
/// (such as the first packet's arrival) works. Earlier-than-epoch arrivals
/// count as the epoch.
pub fn rtp_units_between(epoch: Instant, arrival: Instant, clock_rate: u32) -> u32 {
    rtp_units(arrival.saturating_duration_since(epoch), clock_rate)
}

/// Converts RTP timestamp units back to a duration.
pub fn units_to_duration(units: f64, clock_rate: u32) -> Duration {
    if clock_rate == 0 || !units.is_finite() || units <= 0.0 {
        return Duration::ZERO;
    }
    Duration::from_secs_f64(units / f64::from(clock_rate))
}

/// Running interarrival jitter estimate for one source.
#[derive(Debug, Clone, Default)]
pub struct JitterEstimator {
    prev_transit: Option<u32>,
    jitter: f64,
}

impl JitterEstimator {
    /// An estimator with no packets seen.
    pub fn new() -> Self {
        Self::default()
    }

    /// Folds in one packet: `J += (|D| − J) / 16`, where D is the change in
    /// relative transit time (arrival − RTP timestamp) from the previous
    /// packet. Returns the new estimate in timestamp units.
    pub fn update(&mut self, rtp_timestamp: u32, arrival: u32) -> f64 {
        // Both clocks wrap at 2^32, so transit and its difference are taken
        // modulo 2^32 and read as signed: only the difference is meaningful.
        let transit = arrival.wrapping_sub(rtp_timestamp);
        if let Some(prev) = self.prev_transit {
            let d = f64::from((transit.wrapping_sub(prev) as i32).unsigned_abs());
            self.jitter += (d - self.jitter) / 16.0;
        }
        self.prev_transit = Some(transit);
        self.jitter
    }

    /// The estimate in timestamp units, as an exact running value.
    pub fn jitter(&self) -> f64 {
        self.jitter
    }

    /// The estimate truncated to whole units, as the RTCP report block
    /// carries it.
    pub fn report_value(&self) -> u32 {
        self.jitter as u32
    }

    /// Forgets the source (for an SSRC change).
    pub fn reset(&mut self) {
        *self = Self::default();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn first_packet_only_sets_transit() {
        let mut j = JitterEstimator::new();
        assert_eq!(j.update(1000, 5000), 0.0);
        assert_eq!(j.jitter(), 0.0);
    }

    #[test]
    fn constant_transit_has_no_jitter() {
        let mut j = JitterEstimator::new();
        for i in 0..50u32 {
            j.update(i * 160, 7 + i * 160);
        }
        assert_eq!(j.jitter(), 0.0);
        assert_eq!(j.report_value(), 0);
    }

    #[test]
    fn hand_computed_sequence() {
        // Packets every 160 units; arrivals offset by 0, +32, -16, +48, +48.
        // Transit: 0, 32, -16, 48, 48 -> |D| = 32, 48, 64, 0.
        // J1 = 32/16 = 2
        // J2 = 2 + (48 - 2)/16 = 4.875
        // J3 = 4.875 + (64 - 4.875)/16 = 8.5703125
        // J4 = 8.5703125 + (0 - 8.5703125)/16 = 8.03466796875
        let offsets = [0i64, 32, -16, 48, 48];
        let expected = [0.0, 2.0, 4.875, 8.5703125, 8.03466796875];
        let mut j = JitterEstimator::new();
        for (i, (off, want)) in offsets.iter().zip(expected).enumerate() {
            let ts = i as u32 * 160;
            let arrival = (1_000_000 + i64::from(ts as i32) + off) as u32;
            assert_eq!(j.update(ts, arrival), want, "packet {i}");
        }
        assert_eq!(j.report_value(), 8);
    }

    #[test]
    fn wrapping_clocks_do_not_spike() {
        let mut j = JitterEstimator::new();
        j.update(u32::MAX - 100, u32::MAX - 50);
        // Both wrap; transit stays 50.
        j.update(59, 109);
        assert_eq!(j.jitter(), 0.0);
        // Arrival 10 units early after the wrap: |D| = 10.
        j.update(219, 259);
        assert_eq!(j.jitter(), 10.0 / 16.0);
    }

    #[test]
    fn reset_forgets_transit() {
        let mut j = JitterEstimator::new();
        j.update(0, 0);
        j.update(160, 400);
        assert!(j.jitter() > 0.0);
        j.reset();
        assert_eq!(j.update(0, 999_999), 0.0);
    }

    #[test]
    fn unit_conversions() {
        assert_eq!(rtp_units(Duration::from_millis(20), 8000), 160);
        assert_eq!(rtp_units(Duration::from_millis(20), 48000), 960);
        assert_eq!(rtp_units(Duration::from_nanos(124_999), 8000), 0);
        assert_eq!(rtp_units(Duration::from_nanos(125_000), 8000), 1);
        // 2^32 units at 8 kHz wrap to 0.
        assert_eq!(rtp_units(Duration::from_secs(536_870_912), 8000), 0);
        let t0 = Instant::now();
        let t1 = t0 + Duration::from_millis(60);
        assert_eq!(rtp_units_between(t0, t1, 8000), 480);
        assert_eq!(rtp_units_between(t1, t0, 8000), 0);
        assert_eq!(units_to_duration(80.0, 8000), Duration::from_millis(10));
        assert_eq!(units_to_duration(-1.0, 8000), Duration::ZERO);
        assert_eq!(units_to_duration(1.0, 0), Duration::ZERO);
    }
}
