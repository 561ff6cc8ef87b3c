//! Business hours: the days and the daily window, in the callee's time
//! zone, when a campaign may dial. Pure: the time is an argument.

use jiff::civil::{Time, Weekday};
use jiff::tz::TimeZone;
use jiff::{Timestamp, ToSpan};
use serde::{Deserialize, Serialize};

use crate::alerts::quiet::hhmm;

/// A window such as Monday to Friday, 09:00–17:00 in `America/Chicago`,
/// as the API takes it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BusinessHoursSpec {
    /// Opening, `HH:MM` local time; 09:00 when unset.
    #[serde(default)]
    pub start: Option<String>,
    /// Closing, `HH:MM` local time, after `start`; 17:00 when unset.
    #[serde(default)]
    pub end: Option<String>,
    /// Open days, `mon` … `sun`; Monday to Friday when unset.
    #[serde(default)]
    pub days: Option<Vec<String>>,
}

/// A checked business-hours window.
#[derive(Debug, Clone)]
pub struct BusinessHours {
    start: Time,
    end: Time,
    /// Open days, Monday first.
    days: [bool; 7],
    tz: TimeZone,
}

const DAY_NAMES: [&str; 7] = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"];

fn day_index(w: Weekday) -> usize {
    usize::try_from(w.to_monday_zero_offset()).unwrap_or(0)
}

impl BusinessHours {
    /// The window of `spec` in `timezone`, or the field at fault (relative
    /// to the spec, or `timezone`) and why.
    pub fn new(
        spec: &BusinessHoursSpec,
        timezone: &str,
    ) -> Result<BusinessHours, (String, String)> {
        let start = hhmm("start", spec.start.as_deref().unwrap_or("09:00"))?;
        let end = hhmm("end", spec.end.as_deref().unwrap_or("17:00"))?;
        if end <= start {
            return Err((
                "end".into(),
                "must be later than start (business hours do not span midnight)".into(),
            ));
        }
        let mut days = [false; 7];
        match &spec.days {
            None => days[..5].fill(true),
            Some(list) => {
                if list.is_empty() {
                    return Err(("days".into(), "must name at least one day".into()));
                }
                for d in list {
                    let i = DAY_NAMES
                        .iter()
                        .position(|n| n.eq_ignore_ascii_case(d.trim()))
                        .ok_or_else(|| {
                            ("days".to_owned(), format!("{d:?} is not one of mon … sun"))
                        })?;
                    days[i] = true;
                }
            }
        }
        let tz = TimeZone::get(timezone).map_err(|_| {
            (
                "timezone".to_owned(),
                "must be an IANA time zone such as America/New_York".to_owned(),
            )
        })?;
        Ok(BusinessHours {
            start,
            end,
            days,
            tz,
        })
    }

    /// Whether `at_ms` (unix ms) is within business hours.
    pub fn is_open(&self, at_ms: i64) -> bool {
        let Ok(ts) = Timestamp::from_millisecond(at_ms) else {
            return false;
        };
        let z = ts.to_zoned(self.tz.clone());
        let t = z.time();
        self.days[day_index(z.weekday())] && self.start <= t && t < self.end
    }

    /// The first moment at or after `at_ms` within business hours: `at_ms`
    /// itself when open, else the next opening. Daylight-saving gaps
    /// resolve the way jiff's "compatible" disambiguation does.
    pub fn next_open(&self, at_ms: i64) -> i64 {
        if self.is_open(at_ms) {
            return at_ms;
        }
        let Ok(ts) = Timestamp::from_millisecond(at_ms) else {
            return at_ms;
        };
        let now = ts.to_zoned(self.tz.clone());
        let mut date = now.date();
        // At most a week ahead: some day of the week is open.
        for _ in 0..8 {
            if self.days[day_index(date.weekday())] {
                let opening = date.to_datetime(self.start);
                if let Ok(z) = opening.to_zoned(self.tz.clone()) {
                    let ms = z.timestamp().as_millisecond();
                    if ms >= at_ms {
                        return ms;
                    }
                }
            }
            date = match date.checked_add(1.day()) {
                Ok(d) => d,
                Err(_) => return at_ms,
            };
        }
        at_ms
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(s: &str) -> i64 {
        s.parse::<Timestamp>().unwrap().as_millisecond()
    }

    fn ny() -> BusinessHours {
        BusinessHours::new(
            &BusinessHoursSpec {
                start: Some("09:00".into()),
                end: Some("17:00".into()),
                days: None,
            },
            "America/New_York",
        )
        .unwrap()
    }

    #[test]
    fn open_hours_are_local_weekdays() {
        let h = ny();
        // Wednesday 2026-11-25 15:00 UTC = 10:00 in New York (UTC-5).
        assert!(h.is_open(ms("2026-11-25T15:00:00Z")));
        assert_eq!(
            h.next_open(ms("2026-11-25T15:00:00Z")),
            ms("2026-11-25T15:00:00Z")
        );
        // 13:59 UTC = 08:59 local: opens at 09:00 local the same day.
        assert_eq!(
            h.next_open(ms("2026-11-25T13:59:00Z")),
            ms("2026-11-25T14:00:00Z")
        );
        // 22:00 UTC = 17:00 local: closed, opens tomorrow.
        assert!(!h.is_open(ms("2026-11-25T22:00:00Z")));
        assert_eq!(
            h.next_open(ms("2026-11-25T22:00:00Z")),
            ms("2026-11-26T14:00:00Z")
        );
        // Friday evening waits for Monday.
        assert_eq!(
            h.next_open(ms("2026-11-27T23:00:00Z")),
            ms("2026-11-30T14:00:00Z")
        );
        // Saturday noon too.
        assert_eq!(
            h.next_open(ms("2026-11-28T17:00:00Z")),
            ms("2026-11-30T14:00:00Z")
        );
    }

    #[test]
    fn named_days_and_summer_time() {
        let h = BusinessHours::new(
            &BusinessHoursSpec {
                start: Some("10:30".into()),
                end: Some("12:00".into()),
                days: Some(vec!["sat".into(), "Sun".into()]),
            },
            "Europe/Berlin",
        )
        .unwrap();
        // Wednesday 2026-07-01: next Saturday 10:30 CEST = 08:30 UTC.
        assert_eq!(
            h.next_open(ms("2026-07-01T09:00:00Z")),
            ms("2026-07-04T08:30:00Z")
        );
        assert!(h.is_open(ms("2026-07-05T09:59:00Z")));
        assert!(!h.is_open(ms("2026-07-05T10:00:00Z")));
    }

    #[test]
    fn bad_specs_name_their_field() {
        let spec = |s: &str, e: &str, days: Option<Vec<&str>>| BusinessHoursSpec {
            start: Some(s.into()),
            end: Some(e.into()),
            days: days.map(|d| d.into_iter().map(str::to_owned).collect()),
        };
        let err = |s: BusinessHoursSpec, tz: &str| BusinessHours::new(&s, tz).unwrap_err().0;
        assert_eq!(err(spec("9:00", "17:00", None), "UTC"), "start");
        assert_eq!(err(spec("17:00", "09:00", None), "UTC"), "end");
        assert_eq!(err(spec("09:00", "17:00", Some(vec![])), "UTC"), "days");
        assert_eq!(
            err(spec("09:00", "17:00", Some(vec!["funday"])), "UTC"),
            "days"
        );
        assert_eq!(err(spec("09:00", "17:00", None), "Mars/Base"), "timezone");
    }
}
