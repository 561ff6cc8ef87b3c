//! Request rate limits: a token bucket per name (an API key, or an
//! organization), so one runaway client gets 429s while the others are
//! served. Sans-IO: the caller passes the time, so tests run without
//! sleeping.

use std::collections::HashMap;
use std::time::{Duration, Instant};

/// Token buckets by key, with bounded memory.
#[derive(Debug)]
pub struct RateLimiter {
    per_sec: f64,
    burst: f64,
    capacity: usize,
    buckets: HashMap<String, Bucket>,
}

#[derive(Debug, Clone, Copy)]
struct Bucket {
    tokens: f64,
    at: Instant,
}

impl RateLimiter {
    /// `per_sec` requests a second on average, bursts of up to `burst`,
    /// for at most `capacity` keys at once (keys idle longest are forgotten
    /// first; forgetting one only gives it a full bucket again).
    pub fn new(per_sec: f64, burst: u32, capacity: usize) -> Self {
        RateLimiter {
            per_sec: per_sec.max(0.001),
            burst: f64::from(burst.max(1)),
            capacity: capacity.max(1),
            buckets: HashMap::new(),
        }
    }

    /// Takes one request for `key` at `now`: `Err` carries how long until
    /// one would be allowed.
    pub fn check(&mut self, key: &str, now: Instant) -> Result<(), Duration> {
        if !self.buckets.contains_key(key) && self.buckets.len() >= self.capacity {
            self.evict(now);
        }
        let (per_sec, burst) = (self.per_sec, self.burst);
        let b = self.buckets.entry(key.to_owned()).or_insert(Bucket {
            tokens: burst,
            at: now,
        });
        let elapsed = now.saturating_duration_since(b.at).as_secs_f64();
        b.tokens = (b.tokens + elapsed * per_sec).min(burst);
        b.at = now.max(b.at);
        if b.tokens >= 1.0 {
            b.tokens -= 1.0;
            Ok(())
        } else {
            Err(Duration::from_secs_f64((1.0 - b.tokens) / per_sec))
        }
    }

    /// Whether `check` would let a request for `key` through at `now`,
    /// without taking anything: when two limits apply (key and
    /// organization), both are asked first so that a request refused by
    /// one does not use up the other.
    pub fn peek(&self, key: &str, now: Instant) -> Result<(), Duration> {
        let tokens = self.buckets.get(key).map_or(self.burst, |b| {
            (b.tokens + now.saturating_duration_since(b.at).as_secs_f64() * self.per_sec)
                .min(self.burst)
        });
        if tokens >= 1.0 {
            Ok(())
        } else {
            Err(Duration::from_secs_f64((1.0 - tokens) / self.per_sec))
        }
    }

    fn evict(&mut self, now: Instant) {
        // Full buckets carry no state worth keeping; else drop the oldest.
        let (per_sec, burst) = (self.per_sec, self.burst);
        self.buckets.retain(|_, b| {
            b.tokens + now.saturating_duration_since(b.at).as_secs_f64() * per_sec < burst
        });
        if self.buckets.len() >= self.capacity
            && let Some(k) = self
                .buckets
                .iter()
                .min_by_key(|(_, b)| b.at)
                .map(|(k, _)| k.clone())
        {
            self.buckets.remove(&k);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bursts_then_refills_at_the_rate() {
        let t = Instant::now();
        let mut rl = RateLimiter::new(10.0, 3, 100);
        for _ in 0..3 {
            assert!(rl.check("a", t).is_ok());
        }
        let wait = rl.check("a", t).unwrap_err();
        assert!((wait.as_secs_f64() - 0.1).abs() < 1e-9, "{wait:?}");
        // Another key is not affected.
        assert!(rl.check("b", t).is_ok());
        // 100 ms later one more request fits, not two.
        assert!(rl.check("a", t + Duration::from_millis(100)).is_ok());
        assert!(rl.check("a", t + Duration::from_millis(100)).is_err());
        // Long idle: back to a full burst, never more.
        let later = t + Duration::from_secs(60);
        for _ in 0..3 {
            assert!(rl.check("a", later).is_ok());
        }
        assert!(rl.check("a", later).is_err());
    }

    #[test]
    fn peek_takes_nothing() {
        let t = Instant::now();
        let mut rl = RateLimiter::new(1.0, 2, 100);
        for _ in 0..5 {
            assert!(rl.peek("a", t).is_ok());
        }
        assert!(rl.check("a", t).is_ok());
        assert!(rl.check("a", t).is_ok());
        let wait = rl.peek("a", t).unwrap_err();
        assert_eq!(rl.check("a", t).unwrap_err(), wait);
        assert!(rl.peek("a", t + Duration::from_secs(1)).is_ok());
    }

    #[test]
    fn memory_stays_bounded() {
        let t = Instant::now();
        let mut rl = RateLimiter::new(1.0, 1, 10);
        for i in 0..1000 {
            let _ = rl.check(&format!("k{i}"), t + Duration::from_millis(i));
        }
        assert!(rl.buckets.len() <= 10);
    }
}
