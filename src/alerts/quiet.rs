//! Quiet hours: a daily window, in an organization's own time zone, when
//! normal alerts place no calls. Pure: the time is an argument.

use jiff::civil::Time;
use jiff::tz::TimeZone;
use jiff::{Timestamp, ToSpan};
use serde::{Deserialize, Serialize};

/// A daily window such as 22:00–07:00 in `Europe/Berlin`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct QuietHours {
    /// Start, `HH:MM` local time.
    pub start: String,
    /// End, `HH:MM` local time; before `start` when the window spans
    /// midnight.
    pub end: String,
    /// IANA time zone name.
    pub timezone: String,
}

/// A checked [`QuietHours`].
#[derive(Debug, Clone)]
pub struct Window {
    start: Time,
    end: Time,
    tz: TimeZone,
}

/// Parses `HH:MM` (24-hour).
pub(crate) fn hhmm(field: &str, v: &str) -> Result<Time, (String, String)> {
    let bad = || {
        (
            field.to_owned(),
            "must be HH:MM (24-hour), e.g. 22:00".to_owned(),
        )
    };
    let (h, m) = v.split_once(':').ok_or_else(bad)?;
    if h.len() != 2 || m.len() != 2 {
        return Err(bad());
    }
    let (h, m): (i8, i8) = (h.parse().map_err(|_| bad())?, m.parse().map_err(|_| bad())?);
    Time::new(h, m, 0, 0).map_err(|_| bad())
}

impl QuietHours {
    /// The window, or the field at fault and why.
    pub fn window(&self) -> Result<Window, (String, String)> {
        let start = hhmm("start", &self.start)?;
        let end = hhmm("end", &self.end)?;
        if start == end {
            return Err(("end".into(), "must differ from start".into()));
        }
        let tz = TimeZone::get(&self.timezone).map_err(|_| {
            (
                "timezone".to_owned(),
                "must be an IANA time zone such as Europe/Berlin".to_owned(),
            )
        })?;
        Ok(Window { start, end, tz })
    }
}

impl Window {
    /// Whether `at_ms` (unix ms) falls in the window.
    pub fn contains(&self, at_ms: i64) -> bool {
        let Ok(ts) = Timestamp::from_millisecond(at_ms) else {
            return false;
        };
        let t = ts.to_zoned(self.tz.clone()).time();
        if self.start < self.end {
            self.start <= t && t < self.end
        } else {
            t >= self.start || t < self.end
        }
    }

    /// When the window that holds `at_ms` ends (unix ms); `at_ms` itself
    /// when it is outside the window. Daylight-saving gaps and folds
    /// resolve the way jiff's "compatible" disambiguation does.
    pub fn ends_after(&self, at_ms: i64) -> i64 {
        if !self.contains(at_ms) {
            return at_ms;
        }
        let Ok(ts) = Timestamp::from_millisecond(at_ms) else {
            return at_ms;
        };
        let zoned = ts.to_zoned(self.tz.clone());
        let today = zoned.date().to_datetime(self.end);
        // The end is today unless it is earlier in the day than now (the
        // window started yesterday evening... or spans midnight).
        let end = if zoned.time() < self.end {
            today
        } else {
            match today.checked_add(1.day()) {
                Ok(d) => d,
                Err(_) => return at_ms,
            }
        };
        match end.to_zoned(self.tz.clone()) {
            Ok(z) => z.timestamp().as_millisecond(),
            Err(_) => at_ms,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(s: &str) -> i64 {
        s.parse::<Timestamp>().unwrap().as_millisecond()
    }

    fn berlin(start: &str, end: &str) -> Window {
        QuietHours {
            start: start.into(),
            end: end.into(),
            timezone: "Europe/Berlin".into(),
        }
        .window()
        .unwrap()
    }

    #[test]
    fn a_window_over_midnight_in_local_time() {
        let w = berlin("22:00", "07:00");
        // 21:30 UTC is 22:30 in Berlin in winter (UTC+1).
        assert!(w.contains(ms("2026-11-24T21:30:00Z")));
        assert!(!w.contains(ms("2026-11-24T20:30:00Z")));
        // 05:59 UTC = 06:59 local: still quiet; 06:00 UTC = 07:00: over.
        assert!(w.contains(ms("2026-11-25T05:59:00Z")));
        assert!(!w.contains(ms("2026-11-25T06:00:00Z")));
        assert_eq!(
            w.ends_after(ms("2026-11-24T21:30:00Z")),
            ms("2026-11-25T06:00:00Z")
        );
        assert_eq!(
            w.ends_after(ms("2026-11-25T02:00:00Z")),
            ms("2026-11-25T06:00:00Z")
        );
        // Outside: now.
        assert_eq!(
            w.ends_after(ms("2026-11-24T12:00:00Z")),
            ms("2026-11-24T12:00:00Z")
        );
    }

    #[test]
    fn a_daytime_window_and_summer_time() {
        let w = berlin("12:00", "13:00");
        // In July Berlin is UTC+2.
        assert!(w.contains(ms("2026-07-01T10:30:00Z")));
        assert_eq!(
            w.ends_after(ms("2026-07-01T10:30:00Z")),
            ms("2026-07-01T11:00:00Z")
        );
        assert!(!w.contains(ms("2026-07-01T11:00:00Z")));
    }

    #[test]
    fn a_window_ending_at_midnight() {
        let utc = |start: &str, end: &str| {
            QuietHours {
                start: start.into(),
                end: end.into(),
                timezone: "UTC".into(),
            }
            .window()
            .unwrap()
        };
        let w = utc("22:00", "00:00");
        for at in [
            "2026-11-24T22:00:00Z",
            "2026-11-24T23:00:30Z",
            "2026-11-24T23:59:59Z",
        ] {
            assert!(w.contains(ms(at)), "{at}");
            assert_eq!(w.ends_after(ms(at)), ms("2026-11-25T00:00:00Z"), "{at}");
        }
        assert!(!w.contains(ms("2026-11-25T00:00:00Z")));
        let w = utc("00:00", "01:00");
        assert!(w.contains(ms("2026-11-25T00:00:00Z")));
        assert_eq!(
            w.ends_after(ms("2026-11-25T00:30:00Z")),
            ms("2026-11-25T01:00:00Z")
        );
    }

    #[test]
    fn bad_settings_name_their_field() {
        let q = |s: &str, e: &str, tz: &str| QuietHours {
            start: s.into(),
            end: e.into(),
            timezone: tz.into(),
        };
        assert_eq!(q("25:00", "07:00", "UTC").window().unwrap_err().0, "start");
        assert_eq!(q("22:00", "7:00", "UTC").window().unwrap_err().0, "end");
        assert_eq!(q("22:00", "22:00", "UTC").window().unwrap_err().0, "end");
        assert_eq!(
            q("22:00", "07:00", "Mars/Olympus").window().unwrap_err().0,
            "timezone"
        );
    }
}
