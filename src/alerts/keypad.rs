//! What the person on an alert call keyed: `0` acknowledges, `1` snoozes
//! for the default time, and a number from 2 to 120 followed by `#`
//! snoozes that many minutes. Sans-IO: digits and the time go in, a
//! decision comes out.
//!
//! `1` is also how "15#" or "120#" begin, so after a lone `1` the keypad
//! waits a moment for more keys before deciding it meant the default
//! snooze.

use std::time::{Duration, Instant};

/// Minutes a lone `1` snoozes for.
pub const DEFAULT_SNOOZE_MINUTES: u32 = 5;
/// Longest custom snooze.
pub const MAX_SNOOZE_MINUTES: u32 = 120;
/// How long a lone `1` waits for a second key.
const AFTER_ONE: Duration = Duration::from_millis(1500);
/// How long a started number waits for its next key or `#`.
const BETWEEN_KEYS: Duration = Duration::from_secs(5);

/// What the keys meant.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    /// `0`.
    Acknowledge,
    /// Snooze this many minutes.
    Snooze(u32),
    /// Keys that mean nothing (say so, prompt again).
    Invalid,
}

/// The keys of one prompt.
#[derive(Debug, Clone, Default)]
pub struct Keypad {
    digits: String,
    deadline: Option<Instant>,
}

impl Keypad {
    /// A keypad with nothing keyed.
    pub fn new() -> Self {
        Keypad::default()
    }

    /// Whether a number is being keyed (the prompt should stop talking).
    pub fn pending(&self) -> bool {
        !self.digits.is_empty()
    }

    /// When [`poll`](Self::poll) must be called if no key comes.
    pub fn deadline(&self) -> Option<Instant> {
        self.deadline
    }

    /// A key at `now`; a decision when the keys so far make one.
    pub fn key(&mut self, digit: char, now: Instant) -> Option<Decision> {
        match digit {
            '0' if self.digits.is_empty() => Some(Decision::Acknowledge),
            '#' => {
                let keyed = std::mem::take(&mut self.digits);
                self.deadline = None;
                Some(match keyed.parse::<u32>() {
                    // "1#" is the lone 1 confirmed.
                    Ok(1) => Decision::Snooze(DEFAULT_SNOOZE_MINUTES),
                    Ok(n) if (2..=MAX_SNOOZE_MINUTES).contains(&n) => Decision::Snooze(n),
                    _ => Decision::Invalid,
                })
            }
            d if d.is_ascii_digit() => {
                self.digits.push(d);
                if self.digits.len() > 3 {
                    self.digits.clear();
                    self.deadline = None;
                    return Some(Decision::Invalid);
                }
                let wait = if self.digits == "1" {
                    AFTER_ONE
                } else {
                    BETWEEN_KEYS
                };
                self.deadline = Some(now + wait);
                None
            }
            // `*` and A-D mean nothing here.
            _ => {
                self.digits.clear();
                self.deadline = None;
                Some(Decision::Invalid)
            }
        }
    }

    /// The time passed: a lone `1` becomes the default snooze; an
    /// unfinished number is invalid.
    pub fn poll(&mut self, now: Instant) -> Option<Decision> {
        if self.deadline.is_none_or(|d| now < d) {
            return None;
        }
        self.deadline = None;
        let keyed = std::mem::take(&mut self.digits);
        Some(if keyed == "1" {
            Decision::Snooze(DEFAULT_SNOOZE_MINUTES)
        } else {
            Decision::Invalid
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keys(s: &str) -> (Option<Decision>, Keypad, Instant) {
        let t0 = Instant::now();
        let mut k = Keypad::new();
        let mut last = None;
        for (i, c) in s.chars().enumerate() {
            last = k.key(c, t0 + Duration::from_millis(300 * i as u64));
        }
        (last, k, t0)
    }

    #[test]
    fn zero_acknowledges_at_once() {
        assert_eq!(keys("0").0, Some(Decision::Acknowledge));
    }

    #[test]
    fn a_lone_one_snoozes_by_default_after_a_moment() {
        let (d, mut k, t0) = keys("1");
        assert_eq!(d, None);
        assert!(k.pending());
        assert_eq!(k.poll(t0 + Duration::from_millis(1000)), None);
        assert_eq!(
            k.poll(t0 + AFTER_ONE),
            Some(Decision::Snooze(DEFAULT_SNOOZE_MINUTES))
        );
        assert_eq!(keys("1#").0, Some(Decision::Snooze(DEFAULT_SNOOZE_MINUTES)));
    }

    #[test]
    fn numbers_then_pound_snooze_that_long() {
        assert_eq!(keys("15#").0, Some(Decision::Snooze(15)));
        assert_eq!(keys("2#").0, Some(Decision::Snooze(2)));
        assert_eq!(keys("120#").0, Some(Decision::Snooze(120)));
        assert_eq!(keys("121#").0, Some(Decision::Invalid));
        assert_eq!(keys("1234").0, Some(Decision::Invalid));
        assert_eq!(keys("#").0, Some(Decision::Invalid));
        assert_eq!(keys("*").0, Some(Decision::Invalid));
        // "10#": a zero inside a number is a digit, not an acknowledgement.
        assert_eq!(keys("10#").0, Some(Decision::Snooze(10)));
    }

    #[test]
    fn an_unfinished_number_times_out_as_invalid() {
        let (d, mut k, t0) = keys("15");
        assert_eq!(d, None);
        assert_eq!(
            k.poll(t0 + Duration::from_millis(300) + BETWEEN_KEYS),
            Some(Decision::Invalid)
        );
        assert!(!k.pending());
    }
}
