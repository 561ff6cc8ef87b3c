//! A moment as the API takes it: unix milliseconds or an RFC 3339 time.

use serde::{Deserialize, Serialize};

/// `schedule_at`, `expires_at`: unix ms, or RFC 3339 with an offset
/// (`2026-11-25T15:00:00-05:00`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum When {
    /// Unix milliseconds.
    Millis(i64),
    /// RFC 3339.
    Text(String),
}

impl When {
    /// Unix ms, or why the text is not a time.
    pub fn millis(&self) -> Result<i64, &'static str> {
        match self {
            When::Millis(ms) if *ms >= 0 => Ok(*ms),
            When::Millis(_) => Err("must not be before 1970"),
            When::Text(s) => s
                .trim()
                .parse::<jiff::Timestamp>()
                .map(|t| t.as_millisecond())
                .map_err(|_| {
                    "must be unix milliseconds or an RFC 3339 time with an offset, e.g. 2026-11-25T15:00:00Z"
                }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn both_forms() {
        assert_eq!(When::Millis(5).millis(), Ok(5));
        assert_eq!(
            When::Text("1970-01-01T00:00:01+00:00".into()).millis(),
            Ok(1000)
        );
        assert!(When::Text("2026-11-25 15:00".into()).millis().is_err());
        assert!(When::Millis(-1).millis().is_err());
    }
}
