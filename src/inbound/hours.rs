//! Business hours of an inbound number: weekly opening ranges in the
//! business's own time zone, and holidays. Pure: the time is an argument.
//!
//! Rules, in local (wall-clock) time:
//! - a range `["09:00", "17:00"]` is open from its start up to, not
//!   including, its end; `24:00` ends at midnight;
//! - a range whose end is before its start runs overnight: Friday's
//!   `["22:00", "02:00"]` is open until 02:00 on Saturday, whatever
//!   Saturday's own ranges say;
//! - a holiday cancels the ranges that *start* on that date (including
//!   their overnight part), not the night shift that began the evening
//!   before;
//! - time is compared as wall-clock time, so a range follows daylight
//!   saving time: `09:00` is 09:00 in summer and in winter. A range that
//!   starts in the hour skipped in spring opens when the clocks jump.

use std::collections::{BTreeMap, BTreeSet};

use jiff::Timestamp;
use jiff::civil::{Date, Time, Weekday};
use jiff::tz::TimeZone;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// Most ranges per day.
pub const MAX_RANGES_PER_DAY: usize = 8;
/// Most holidays.
pub const MAX_HOLIDAYS: usize = 366;

/// The days of `weekly`, Monday first.
pub const DAYS: [&str; 7] = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"];

/// Business hours as the API takes them:
/// `{"timezone": "Europe/Berlin", "weekly": {"mon": [["09:00", "17:00"]]},
/// "holidays": ["2026-12-25"]}`. A day that is absent (or has no ranges)
/// is closed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct BusinessHours {
    /// IANA time zone name (`Europe/Berlin`, `America/New_York`).
    pub timezone: String,
    /// Opening ranges per day (`mon` … `sun`), each `["HH:MM", "HH:MM"]`.
    #[serde(default)]
    pub weekly: BTreeMap<String, Vec<Vec<String>>>,
    /// Dates (`YYYY-MM-DD`, local) on which the business is closed.
    #[serde(default)]
    pub holidays: Vec<String>,
}

/// A checked [`BusinessHours`], ready to answer "open now?".
#[derive(Debug, Clone, PartialEq)]
pub struct Schedule {
    tz: TimeZone,
    /// Monday first: (start, end) with `end` at or before `start` for an
    /// overnight range; `None` as end is midnight (`24:00`).
    days: [Vec<(Time, Option<Time>)>; 7],
    holidays: BTreeSet<Date>,
}

/// Parses `HH:MM`; `24:00` only where `end_of_day` is allowed (as `None`).
fn hhmm(v: &str, end: bool) -> Result<Option<Time>, String> {
    let bad = || "must be HH:MM (24-hour), e.g. 09:00".to_owned();
    let (h, m) = v.split_once(':').ok_or_else(bad)?;
    if h.len() != 2 || m.len() != 2 {
        return Err(bad());
    }
    let (h, m): (i8, i8) = (h.parse().map_err(|_| bad())?, m.parse().map_err(|_| bad())?);
    if h == 24 && m == 0 {
        return if end {
            Ok(None)
        } else {
            Err("a range cannot start at 24:00".into())
        };
    }
    Time::new(h, m, 0, 0).map(Some).map_err(|_| bad())
}

impl BusinessHours {
    /// The schedule, or every problem as (path relative to this object,
    /// message): `timezone`, `weekly.mon.0.1`, `holidays.2`.
    pub fn compile(&self) -> Result<Schedule, Vec<(String, String)>> {
        let mut problems = Vec::new();
        let tz = match TimeZone::get(&self.timezone) {
            Ok(tz) => Some(tz),
            Err(_) => {
                problems.push((
                    "timezone".into(),
                    "must be an IANA time zone such as Europe/Berlin".into(),
                ));
                None
            }
        };
        let mut days: [Vec<(Time, Option<Time>)>; 7] = Default::default();
        for (day, ranges) in &self.weekly {
            let Some(i) = DAYS.iter().position(|d| d == day) else {
                problems.push((
                    format!("weekly.{day}"),
                    format!("not a day; one of {}", DAYS.join(", ")),
                ));
                continue;
            };
            if ranges.len() > MAX_RANGES_PER_DAY {
                problems.push((
                    format!("weekly.{day}"),
                    format!("at most {MAX_RANGES_PER_DAY} ranges a day"),
                ));
                continue;
            }
            for (r, range) in ranges.iter().enumerate() {
                let at = format!("weekly.{day}.{r}");
                if range.len() != 2 {
                    problems.push((
                        at,
                        "must be [start, end], e.g. [\"09:00\", \"17:00\"]".into(),
                    ));
                    continue;
                }
                let start = hhmm(&range[0], false).map_err(|m| (format!("{at}.0"), m));
                let end = hhmm(&range[1], true).map_err(|m| (format!("{at}.1"), m));
                match (start, end) {
                    (Ok(Some(s)), Ok(e)) if e == Some(s) => problems.push((
                        format!("{at}.1"),
                        "must differ from the start (use 00:00 to 24:00 for the whole day)".into(),
                    )),
                    (Ok(Some(s)), Ok(e)) => days[i].push((s, e)),
                    (s, e) => {
                        problems.extend(s.err());
                        problems.extend(e.err());
                    }
                }
            }
        }
        if self.holidays.len() > MAX_HOLIDAYS {
            problems.push(("holidays".into(), format!("at most {MAX_HOLIDAYS} dates")));
        }
        let mut holidays = BTreeSet::new();
        for (i, h) in self.holidays.iter().enumerate() {
            // jiff would also take a datetime; a holiday is a date.
            match h.parse::<Date>() {
                Ok(d) if h.len() == 10 => {
                    holidays.insert(d);
                }
                _ => problems.push((format!("holidays.{i}"), "must be a date, YYYY-MM-DD".into())),
            }
        }
        match tz {
            Some(tz) if problems.is_empty() => Ok(Schedule { tz, days, holidays }),
            _ => Err(problems),
        }
    }
}

fn index(day: Weekday) -> usize {
    day.to_monday_zero_offset() as usize
}

impl Schedule {
    /// Whether the business is open at `at`.
    pub fn is_open(&self, at: Timestamp) -> bool {
        let local = at.to_zoned(self.tz.clone()).datetime();
        let (date, time) = (local.date(), local.time());
        // Today's ranges that have started and not ended (an overnight one
        // runs to midnight today).
        let today = !self.holidays.contains(&date)
            && self.days[index(date.weekday())]
                .iter()
                .any(|&(start, end)| {
                    time >= start
                        && match end {
                            None => true,
                            Some(e) if e > start => time < e,
                            // Overnight: open until midnight today.
                            Some(_) => true,
                        }
                });
        if today {
            return true;
        }
        // Yesterday's overnight ranges, in their morning part.
        let Ok(yesterday) = date.yesterday() else {
            return false;
        };
        !self.holidays.contains(&yesterday)
            && self.days[index(yesterday.weekday())]
                .iter()
                .any(|&(start, end)| matches!(end, Some(e) if e <= start && time < e))
    }

    /// The time zone the hours are in.
    pub fn timezone(&self) -> &TimeZone {
        &self.tz
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn schedule(v: serde_json::Value) -> Schedule {
        serde_json::from_value::<BusinessHours>(v)
            .unwrap()
            .compile()
            .unwrap()
    }

    fn at(s: &str) -> Timestamp {
        s.parse().unwrap()
    }

    #[test]
    fn weekday_ranges_in_the_local_zone() {
        let s = schedule(json!({"timezone": "Europe/Berlin",
            "weekly": {"mon": [["09:00", "12:00"], ["13:00", "17:00"]]}}));
        // Monday 2026-01-05; Berlin is UTC+1 in winter.
        assert!(!s.is_open(at("2026-01-05T07:59:59Z")));
        assert!(s.is_open(at("2026-01-05T08:00:00Z")));
        assert!(!s.is_open(at("2026-01-05T11:30:00Z")), "lunch");
        assert!(s.is_open(at("2026-01-05T15:59:00Z")));
        assert!(
            !s.is_open(at("2026-01-05T16:00:00Z")),
            "the end is exclusive"
        );
        // Tuesday: not listed, closed.
        assert!(!s.is_open(at("2026-01-06T09:00:00Z")));
    }

    #[test]
    fn daylight_saving_time_keeps_wall_clock_hours() {
        let s = schedule(json!({"timezone": "Europe/Berlin",
            "weekly": {"sat": [["09:00", "17:00"]], "sun": [["09:00", "17:00"]]}}));
        // Saturday 2026-03-28 is still UTC+1: 09:00 local is 08:00 UTC.
        assert!(!s.is_open(at("2026-03-28T07:30:00Z")));
        assert!(s.is_open(at("2026-03-28T08:30:00Z")));
        // Sunday 2026-03-29 is UTC+2 from 02:00: 09:00 local is 07:00 UTC.
        assert!(s.is_open(at("2026-03-29T07:30:00Z")));
        assert!(!s.is_open(at("2026-03-29T15:00:00Z")), "17:00 CEST");
        // A range starting in the skipped hour opens at the jump.
        let gap = schedule(json!({"timezone": "Europe/Berlin",
            "weekly": {"sun": [["02:30", "04:00"]]}}));
        assert!(!gap.is_open(at("2026-03-29T00:59:00Z")), "01:59 CET");
        assert!(gap.is_open(at("2026-03-29T01:00:00Z")), "03:00 CEST");
        // The repeated hour in autumn is inside a range both times.
        let fold = schedule(json!({"timezone": "Europe/Berlin",
            "weekly": {"sun": [["02:00", "03:00"]]}}));
        assert!(fold.is_open(at("2026-10-25T00:30:00Z")), "02:30 CEST");
        assert!(fold.is_open(at("2026-10-25T01:30:00Z")), "02:30 CET");
    }

    #[test]
    fn overnight_ranges_run_into_the_next_day() {
        let s = schedule(json!({"timezone": "America/New_York",
            "weekly": {"fri": [["22:00", "02:00"]], "sat": [["10:00", "24:00"]]}}));
        // Friday 2026-01-09, New York is UTC-5.
        assert!(!s.is_open(at("2026-01-10T02:59:00Z")), "21:59 Friday");
        assert!(s.is_open(at("2026-01-10T03:00:00Z")), "22:00 Friday");
        assert!(s.is_open(at("2026-01-10T06:59:00Z")), "01:59 Saturday");
        assert!(!s.is_open(at("2026-01-10T07:00:00Z")), "02:00 Saturday");
        // 24:00 is midnight: Saturday 23:59 open, Sunday 00:00 closed.
        assert!(s.is_open(at("2026-01-11T04:59:00Z")));
        assert!(!s.is_open(at("2026-01-11T05:00:00Z")));
    }

    #[test]
    fn holidays_cancel_the_ranges_that_start_on_them() {
        let s = schedule(json!({"timezone": "Europe/Berlin",
            "weekly": {"thu": [["09:00", "17:00"], ["22:00", "03:00"]],
                       "fri": [["09:00", "17:00"], ["22:00", "03:00"]]},
            "holidays": ["2026-12-25"]}));
        // Christmas Day 2026 is a Friday.
        assert!(!s.is_open(at("2026-12-25T10:00:00Z")));
        // Thursday's night shift still runs into the holiday's morning…
        assert!(s.is_open(at("2026-12-25T01:00:00Z")), "02:00 Friday");
        // …but the holiday's own night shift does not happen.
        assert!(!s.is_open(at("2026-12-25T22:00:00Z")), "23:00 Friday");
        assert!(!s.is_open(at("2026-12-26T01:00:00Z")), "02:00 Saturday");
        // The Thursday before is a normal day.
        assert!(s.is_open(at("2026-12-24T10:00:00Z")));
    }

    #[test]
    fn problems_name_the_field() {
        let bad: BusinessHours = serde_json::from_value(json!({
            "timezone": "Mars/Olympus",
            "weekly": {"mon": [["09:00", "25:00"], ["10:00"]], "funday": [], "tue": [["24:00", "10:00"], ["08:00", "08:00"]]},
            "holidays": ["2026-12-25", "25/12/2026", "2026-12-25T00:00"]
        }))
        .unwrap();
        let mut paths: Vec<String> = bad
            .compile()
            .unwrap_err()
            .into_iter()
            .map(|(p, _)| p)
            .collect();
        paths.sort();
        assert_eq!(
            paths,
            [
                "holidays.1",
                "holidays.2",
                "timezone",
                "weekly.funday",
                "weekly.mon.0.1",
                "weekly.mon.1",
                "weekly.tue.0.0",
                "weekly.tue.1.1",
            ]
        );
        // An empty week is valid: always closed (everything after hours).
        let closed = schedule(json!({"timezone": "UTC"}));
        assert!(!closed.is_open(at("2026-01-05T12:00:00Z")));
    }
}
