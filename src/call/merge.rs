//! One de-duplicated stream of digits from SIP INFO and the media path.
//!
//! The receive chain already merges RFC 4733 events with in-band tones.
//! Some gateways also send each key press as SIP INFO, so the same digit
//! arrives twice by different roads. A digit is dropped when the same
//! digit came by another road within [`WINDOW`]. Sans-IO: the caller
//! passes the time.

use std::time::{Duration, Instant};

use super::DigitSource;

/// How far apart the two reports of one key press may be. INFO travels
/// by signalling and RTP by media, so they are less aligned than the
/// media path's own sources.
pub const WINDOW: Duration = Duration::from_millis(500);

/// Remembers the last digit reported.
#[derive(Debug, Clone, Default)]
pub struct DigitMerger {
    last: Option<(char, DigitSource, Instant)>,
}

/// SIP INFO vs. the media path: digits from the same road are never
/// duplicates of one another.
fn road(s: DigitSource) -> bool {
    matches!(s, DigitSource::SipInfo)
}

impl DigitMerger {
    /// A merger that has seen nothing.
    pub fn new() -> Self {
        Self::default()
    }

    /// Whether `digit` from `source` at `now` is new (report it) or the
    /// other road's copy of the last one (drop it).
    pub fn accept(&mut self, digit: char, source: DigitSource, now: Instant) -> bool {
        let duplicate = self.last.is_some_and(|(d, s, at)| {
            d == digit && road(s) != road(source) && now.saturating_duration_since(at) <= WINDOW
        });
        if !duplicate {
            self.last = Some((digit, source, now));
        }
        !duplicate
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn drops_the_other_roads_copy_only() {
        let t = Instant::now();
        let ms = Duration::from_millis;
        let mut m = DigitMerger::new();
        assert!(m.accept('1', DigitSource::Rfc4733, t));
        assert!(!m.accept('1', DigitSource::SipInfo, t + ms(120)));
        // The same road twice is two presses.
        assert!(m.accept('2', DigitSource::SipInfo, t + ms(300)));
        assert!(m.accept('2', DigitSource::SipInfo, t + ms(400)));
        assert!(!m.accept('2', DigitSource::InBand, t + ms(450)));
        // Too late to be the same press.
        assert!(m.accept('2', DigitSource::Rfc4733, t + ms(1500)));
        // Another digit is always new.
        assert!(m.accept('3', DigitSource::SipInfo, t + ms(1510)));
    }
}
