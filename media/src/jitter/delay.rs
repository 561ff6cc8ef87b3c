//! Sliding-window transit statistics: the minimum transit and the 95th
//! percentile of each packet's delay above it.

use std::collections::VecDeque;

/// A bounded window of `(arrival, transit)` samples, both in microseconds.
///
/// The window is bounded twice: by age (samples older than `span` relative to
/// the newest arrival fall out) and by count (a fixed ring, allocated once).
/// Both statistics are recomputed on every push; with a few hundred samples a
/// linear scan plus one `select_nth_unstable` costs far less than decoding the
/// packet, and it keeps the estimator exact and easy to reason about.
#[derive(Debug)]
pub(super) struct DelayWindow {
    samples: VecDeque<(i64, i64)>,
    scratch: Vec<i64>,
    capacity: usize,
    span_us: i64,
    min: Option<i64>,
    p95: i64,
}

impl DelayWindow {
    pub(super) fn new(capacity: usize, span_us: i64) -> Self {
        Self {
            samples: VecDeque::with_capacity(capacity),
            scratch: Vec::with_capacity(capacity),
            capacity,
            span_us,
            min: None,
            p95: 0,
        }
    }

    /// Records one packet and refreshes the statistics.
    pub(super) fn push(&mut self, arrival_us: i64, transit_us: i64) {
        while let Some(&(oldest, _)) = self.samples.front() {
            if arrival_us.saturating_sub(oldest) > self.span_us
                || self.samples.len() >= self.capacity
            {
                self.samples.pop_front();
            } else {
                break;
            }
        }
        self.samples.push_back((arrival_us, transit_us));
        self.recompute();
    }

    /// Forgets everything (a new stream has an unrelated timestamp base).
    pub(super) fn clear(&mut self) {
        self.samples.clear();
        self.min = None;
        self.p95 = 0;
    }

    /// Smallest transit in the window: the reference "fastest packet".
    pub(super) fn min(&self) -> Option<i64> {
        self.min
    }

    /// 95th percentile of `transit - min` over the window.
    pub(super) fn p95(&self) -> i64 {
        self.p95
    }

    /// Allocated sizes, to check that the hot path never grows them.
    #[cfg(test)]
    pub(super) fn allocated(&self) -> (usize, usize) {
        (self.samples.capacity(), self.scratch.capacity())
    }

    fn recompute(&mut self) {
        let Some(min) = self.samples.iter().map(|&(_, t)| t).min() else {
            self.min = None;
            self.p95 = 0;
            return;
        };
        self.scratch.clear();
        self.scratch
            .extend(self.samples.iter().map(|&(_, t)| t - min));
        // Nearest-rank percentile: the smallest value with at least 95% of
        // the samples at or below it.
        let rank = (self.scratch.len() * 95).div_ceil(100).max(1) - 1;
        let (_, &mut p95, _) = self.scratch.select_nth_unstable(rank);
        self.min = Some(min);
        self.p95 = p95;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn p95_of_a_uniform_ramp() {
        let mut w = DelayWindow::new(1000, 10_000_000);
        for i in 0..100 {
            // transit 1000 + i ms, arrivals 20 ms apart
            w.push(i * 20_000, 1_000_000 + i * 1000);
        }
        assert_eq!(w.min(), Some(1_000_000));
        assert_eq!(w.p95(), 94_000);
    }

    #[test]
    fn old_samples_expire_by_age_and_count() {
        let mut w = DelayWindow::new(10, 1_000_000);
        w.push(0, 5);
        w.push(1, 500);
        assert_eq!(w.min(), Some(5));
        // 2 s later both are older than the 1 s span.
        w.push(2_000_000, 100);
        assert_eq!(w.min(), Some(100));
        assert_eq!(w.p95(), 0);
        for i in 0..20 {
            w.push(2_000_000 + i, 1000 + i);
        }
        assert_eq!(w.min(), Some(1010), "only the last 10 samples are kept");
        assert_eq!(w.p95(), 9);
    }

    #[test]
    fn clear_forgets_the_reference() {
        let mut w = DelayWindow::new(4, 1_000_000);
        w.push(0, 7);
        w.clear();
        assert_eq!(w.min(), None);
    }
}
