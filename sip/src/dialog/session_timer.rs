//! RFC 4028 session timers as data and pure functions: the
//! `Session-Expires` and `Min-SE` headers, who refreshes, when, and what
//! to do on `422 Session Interval Too Small`. The call engine owns the
//! timers; this module only tells it the deadlines.

use super::headers::{Name, first, values};
use std::time::{Duration, Instant};

/// RFC 4028 §4: no session interval may be below 90 seconds.
pub const MIN_SE_FLOOR: u32 = 90;

/// Which side sends the refreshes (RFC 4028 §4).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refresher {
    /// The UAC of the refreshing transaction.
    Uac,
    /// The UAS of the refreshing transaction.
    Uas,
}

/// A `Session-Expires` value: `delta-seconds [;refresher=uac|uas]`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SessionExpires {
    /// Session interval in seconds.
    pub interval: u32,
    /// Who refreshes; absent in requests that leave the choice to the UAS.
    pub refresher: Option<Refresher>,
}

impl SessionExpires {
    /// Parses a header value; unknown parameters are ignored and an
    /// unknown refresher value counts as absent (liberal).
    pub fn parse(value: &str) -> Option<Self> {
        let mut parts = value.split(';');
        let interval = parts.next()?.trim().parse::<u32>().ok()?;
        let refresher = parts.find_map(|p| {
            let (k, v) = p.split_once('=')?;
            if !k.trim().eq_ignore_ascii_case("refresher") {
                return None;
            }
            let v = v.trim();
            if v.eq_ignore_ascii_case("uac") {
                Some(Refresher::Uac)
            } else if v.eq_ignore_ascii_case("uas") {
                Some(Refresher::Uas)
            } else {
                None
            }
        });
        Some(Self {
            interval,
            refresher,
        })
    }

    /// The header value as sent.
    pub fn value(&self) -> String {
        match self.refresher {
            Some(Refresher::Uac) => format!("{};refresher=uac", self.interval),
            Some(Refresher::Uas) => format!("{};refresher=uas", self.interval),
            None => self.interval.to_string(),
        }
    }

    /// As an rsip header (rsip has no typed Session-Expires).
    pub fn header(&self) -> rsip::Header {
        rsip::Header::Other("Session-Expires".into(), self.value())
    }

    /// The Session-Expires of a message (full or compact `x` form).
    pub fn find(headers: &rsip::Headers) -> Option<Self> {
        first(headers, Name::SessionExpires).and_then(Self::parse)
    }
}

/// The `Min-SE` of a message, if present and numeric.
pub fn find_min_se(headers: &rsip::Headers) -> Option<u32> {
    first(headers, Name::MinSe)?
        .split(';')
        .next()?
        .trim()
        .parse()
        .ok()
}

/// A `Min-SE` header.
pub fn min_se_header(seconds: u32) -> rsip::Header {
    rsip::Header::Other("Min-SE".into(), seconds.to_string())
}

/// Whether `Supported` lists `timer` (RFC 4028 §3).
pub fn supports_timer(headers: &rsip::Headers) -> bool {
    values(headers, Name::Supported)
        .into_iter()
        .flat_map(|v| v.split(','))
        .any(|t| t.trim().eq_ignore_ascii_case("timer"))
}

/// What the UAS does with a session-timer request (RFC 4028 §9).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UasDecision {
    /// Answer `422` with this `Min-SE`: the asked interval is too short.
    Reject {
        /// Our minimum, for the `Min-SE` header of the 422.
        min_se: u32,
    },
    /// Accept; put `session_expires` (if any) in the 2xx, and
    /// `Require: timer` when `require_timer`.
    Accept {
        /// The Session-Expires for the 2xx; `None`: no session timer.
        session_expires: Option<SessionExpires>,
        /// Whether the 2xx must carry `Require: timer`.
        require_timer: bool,
    },
}

/// Decides, as UAS, the session timer for a request carrying `headers`.
/// `local_min_se` is our smallest acceptable interval (raised to 90 s);
/// `preferred` is the interval we want when the UAC asked for none.
/// When the UAC leaves the refresher open, it refreshes if it supports
/// timers, else we do (RFC 4028 §9).
pub fn uas_decide(
    headers: &rsip::Headers,
    local_min_se: u32,
    preferred: Option<u32>,
) -> UasDecision {
    let local_min_se = local_min_se.max(MIN_SE_FLOOR);
    let uac_supports = supports_timer(headers);
    let request_min = find_min_se(headers).unwrap_or(0).max(MIN_SE_FLOOR);
    let (interval, asked_refresher) = match SessionExpires::find(headers) {
        Some(se) if se.interval < local_min_se => {
            return UasDecision::Reject {
                min_se: local_min_se,
            };
        }
        Some(se) => (se.interval, se.refresher),
        None => match preferred {
            Some(p) => (p.max(local_min_se).max(request_min), None),
            None => {
                return UasDecision::Accept {
                    session_expires: None,
                    require_timer: false,
                };
            }
        },
    };
    let refresher = match (uac_supports, asked_refresher) {
        (true, Some(r)) => r,
        (true, None) => Refresher::Uac,
        // A UAC that does not support timers cannot refresh.
        (false, _) => Refresher::Uas,
    };
    UasDecision::Accept {
        session_expires: Some(SessionExpires {
            interval,
            refresher: Some(refresher),
        }),
        require_timer: uac_supports,
    }
}

/// A running session timer, from our point of view.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SessionTimer {
    /// The negotiated interval.
    pub interval: Duration,
    /// Whether we send the refreshes (otherwise we watch for them).
    pub we_refresh: bool,
}

impl SessionTimer {
    /// The timer after a 2xx we sent as UAS with `se`.
    pub fn as_uas(se: SessionExpires) -> Self {
        Self {
            interval: Duration::from_secs(u64::from(se.interval)),
            we_refresh: se.refresher != Some(Refresher::Uac),
        }
    }

    /// The timer after a 2xx we received as UAC (RFC 4028 §7.2): none if
    /// the 2xx lacks Session-Expires. A 2xx without `refresher` breaks §9;
    /// we then refresh ourselves, which is always harmless.
    pub fn as_uac(response_headers: &rsip::Headers) -> Option<Self> {
        let se = SessionExpires::find(response_headers)?;
        Some(Self {
            interval: Duration::from_secs(u64::from(se.interval)),
            we_refresh: se.refresher != Some(Refresher::Uas),
        })
    }

    /// When to send the refresh, if we are the refresher: half the
    /// interval after the session was last refreshed (RFC 4028 §10).
    pub fn refresh_at(&self, refreshed_at: Instant) -> Option<Instant> {
        self.we_refresh.then(|| refreshed_at + self.interval / 2)
    }

    /// When to give up and send BYE if no refresh arrived, if the peer
    /// refreshes: the interval minus min(32 s, interval/3) (RFC 4028 §10).
    pub fn expires_at(&self, refreshed_at: Instant) -> Option<Instant> {
        (!self.we_refresh).then(|| {
            let margin = (self.interval / 3).min(Duration::from_secs(32));
            refreshed_at + self.interval - margin
        })
    }
}

/// The Session-Expires to retry with after a `422` (RFC 4028 §7.3): the
/// response's Min-SE if it is above what we asked; `None` when the 422 is
/// unusable (no Min-SE, or not higher), so the caller gives up instead of
/// looping.
pub fn retry_after_422(asked: u32, response_headers: &rsip::Headers) -> Option<u32> {
    let min_se = find_min_se(response_headers)?;
    (min_se > asked).then_some(min_se.max(MIN_SE_FLOOR))
}
