//! Collecting a string of DTMF digits, as IVR prompts do: up to a maximum
//! count, ended early by `#` or by a pause. Sans-IO: the caller passes the
//! time and asks when to wake up.

use std::time::{Duration, Instant};

/// Why collection ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CollectEnd {
    /// The caller pressed `#` (not included in the digits).
    Terminator,
    /// The maximum number of digits arrived.
    MaxDigits,
    /// No digit arrived within the inter-digit timeout.
    Timeout,
}

/// A finished collection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Collected {
    /// The digits, in order, without the terminator.
    pub digits: String,
    /// Why it ended.
    pub end: CollectEnd,
}

/// Gathers digits until `#`, `max` digits, or `timeout` without a digit
/// (counted from `start`, then from each digit).
#[derive(Debug, Clone)]
pub struct DigitCollector {
    max: usize,
    timeout: Duration,
    digits: String,
    last: Instant,
    done: Option<CollectEnd>,
}

impl DigitCollector {
    /// Starts collecting at `now`.
    pub fn new(max: usize, timeout: Duration, now: Instant) -> Self {
        DigitCollector {
            max: max.max(1),
            timeout,
            digits: String::with_capacity(max.min(64)),
            last: now,
            done: None,
        }
    }

    /// Takes a digit received at `now`; returns the result when this digit
    /// finished the collection.
    pub fn push(&mut self, digit: char, now: Instant) -> Option<Collected> {
        if self.done.is_some() {
            return None;
        }
        if let Some(end) = self.expired(now) {
            return Some(self.finish(end));
        }
        self.last = now;
        if digit == '#' {
            return Some(self.finish(CollectEnd::Terminator));
        }
        self.digits.push(digit);
        (self.digits.len() >= self.max).then(|| self.finish(CollectEnd::MaxDigits))
    }

    /// When the collection times out if no digit arrives.
    pub fn deadline(&self) -> Option<Instant> {
        self.done.is_none().then_some(self.last + self.timeout)
    }

    /// Ends the collection if it has timed out by `now`.
    pub fn poll(&mut self, now: Instant) -> Option<Collected> {
        if self.done.is_some() {
            return None;
        }
        self.expired(now).map(|end| self.finish(end))
    }

    fn expired(&self, now: Instant) -> Option<CollectEnd> {
        (now.saturating_duration_since(self.last) >= self.timeout).then_some(CollectEnd::Timeout)
    }

    fn finish(&mut self, end: CollectEnd) -> Collected {
        self.done = Some(end);
        Collected {
            digits: std::mem::take(&mut self.digits),
            end,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: Duration = Duration::from_secs(1);

    #[test]
    fn ends_on_terminator_max_or_timeout() {
        let t0 = Instant::now();
        let mut c = DigitCollector::new(16, 5 * S, t0);
        assert_eq!(c.push('1', t0 + S), None);
        assert_eq!(c.push('2', t0 + 2 * S), None);
        assert_eq!(
            c.push('#', t0 + 3 * S),
            Some(Collected {
                digits: "12".into(),
                end: CollectEnd::Terminator
            })
        );
        assert_eq!(
            c.push('3', t0 + 4 * S),
            None,
            "finished collections ignore digits"
        );
        assert_eq!(c.deadline(), None);

        let mut c = DigitCollector::new(3, 5 * S, t0);
        c.push('1', t0);
        c.push('*', t0);
        assert_eq!(
            c.push('9', t0),
            Some(Collected {
                digits: "1*9".into(),
                end: CollectEnd::MaxDigits
            })
        );

        let mut c = DigitCollector::new(16, 5 * S, t0);
        c.push('4', t0 + 2 * S);
        assert_eq!(
            c.deadline(),
            Some(t0 + 7 * S),
            "the timeout restarts at each digit"
        );
        assert_eq!(c.poll(t0 + 6 * S), None);
        assert_eq!(
            c.poll(t0 + 7 * S),
            Some(Collected {
                digits: "4".into(),
                end: CollectEnd::Timeout
            })
        );
        assert_eq!(c.poll(t0 + 8 * S), None);
    }

    #[test]
    fn a_digit_after_the_timeout_closes_the_old_collection() {
        let t0 = Instant::now();
        let mut c = DigitCollector::new(16, 5 * S, t0);
        c.push('1', t0);
        assert_eq!(
            c.push('2', t0 + 6 * S),
            Some(Collected {
                digits: "1".into(),
                end: CollectEnd::Timeout
            })
        );
    }
}
