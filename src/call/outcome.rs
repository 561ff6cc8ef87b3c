//! How a call ended: who hung up, why, and the SIP codes involved, mapped
//! to the outcomes applications act on (busy, no answer, failed…).

use serde::Serialize;

/// Which side ended the call.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Party {
    /// The far end: the caller on inbound calls, the callee on outbound.
    Remote,
    /// Hotline: an API command, a number's logic, a timeout or shutdown.
    Local,
}

/// Why a call ended, in application terms.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    /// The call was answered and later hung up normally.
    Completed,
    /// The callee was busy (486, 600).
    Busy,
    /// Nobody answered: 408, 480, 487 to our own CANCEL, or the ring timeout.
    NoAnswer,
    /// The caller gave up before we answered (CANCEL on an inbound call).
    Canceled,
    /// Rejected or failed for another reason; the SIP code says which.
    Failed,
    /// No RTP arrived for the inactivity timeout: the line is dead.
    MediaTimeout,
    /// A blind transfer succeeded and the call left Hotline.
    Transferred,
}

/// What ended a call, precisely.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Hangup {
    /// The application-level outcome.
    pub outcome: Outcome,
    /// Which side ended it.
    pub by: Party,
    /// The final SIP status of the INVITE, when the call was not answered,
    /// or the status we answered with.
    pub sip_code: Option<u16>,
    /// A human-readable reason: the SIP reason phrase, or what Hotline did.
    pub reason: String,
}

impl Hangup {
    /// The outcome of an outbound INVITE that got final status `code`, or
    /// none at all (`None`: timeout or transport failure, treated as 408).
    pub fn from_final_response(code: Option<u16>, reason: &str, we_canceled: bool) -> Hangup {
        let outcome = match code {
            None | Some(408 | 480) => Outcome::NoAnswer,
            Some(487) if we_canceled => Outcome::NoAnswer,
            Some(486 | 600) => Outcome::Busy,
            Some(c) if (200..300).contains(&c) => Outcome::Completed,
            Some(_) => Outcome::Failed,
        };
        Hangup {
            outcome,
            // The callee's side answered with the failure, unless we gave up.
            by: if we_canceled || code.is_none() {
                Party::Local
            } else {
                Party::Remote
            },
            sip_code: Some(code.unwrap_or(408)),
            reason: if reason.is_empty() {
                code.map_or("Request Timeout".into(), |c| default_reason(c).into())
            } else {
                reason.into()
            },
        }
    }

    /// A normal end of an answered call by `by`.
    pub fn bye(by: Party) -> Hangup {
        Hangup {
            outcome: Outcome::Completed,
            by,
            sip_code: None,
            reason: match by {
                Party::Remote => "remote hung up".into(),
                Party::Local => "local hang up".into(),
            },
        }
    }
}

/// The standard reason phrase of a SIP status code (RFC 3261 §21 and the
/// common extensions), for records and responses.
pub fn default_reason(code: u16) -> &'static str {
    match code {
        100 => "Trying",
        180 => "Ringing",
        181 => "Call Is Being Forwarded",
        182 => "Queued",
        183 => "Session Progress",
        200 => "OK",
        202 => "Accepted",
        400 => "Bad Request",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        407 => "Proxy Authentication Required",
        408 => "Request Timeout",
        415 => "Unsupported Media Type",
        420 => "Bad Extension",
        422 => "Session Interval Too Small",
        480 => "Temporarily Unavailable",
        481 => "Call/Transaction Does Not Exist",
        482 => "Loop Detected",
        483 => "Too Many Hops",
        486 => "Busy Here",
        487 => "Request Terminated",
        488 => "Not Acceptable Here",
        491 => "Request Pending",
        500 => "Server Internal Error",
        501 => "Not Implemented",
        502 => "Bad Gateway",
        503 => "Service Unavailable",
        504 => "Server Time-out",
        600 => "Busy Everywhere",
        603 => "Decline",
        604 => "Does Not Exist Anywhere",
        606 => "Not Acceptable",
        c if (100..200).contains(&c) => "Provisional",
        c if (200..300).contains(&c) => "Success",
        c if (300..400).contains(&c) => "Redirection",
        c if (400..500).contains(&c) => "Client Error",
        c if (500..600).contains(&c) => "Server Error",
        _ => "Global Failure",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn final_responses_map_to_outcomes() {
        let o = |code, canceled| Hangup::from_final_response(code, "", canceled).outcome;
        assert_eq!(o(Some(486), false), Outcome::Busy);
        assert_eq!(o(Some(600), false), Outcome::Busy);
        assert_eq!(o(Some(408), false), Outcome::NoAnswer);
        assert_eq!(o(Some(480), false), Outcome::NoAnswer);
        assert_eq!(o(Some(487), true), Outcome::NoAnswer);
        assert_eq!(
            o(Some(487), false),
            Outcome::Failed,
            "487 we did not ask for"
        );
        assert_eq!(o(None, false), Outcome::NoAnswer);
        assert_eq!(o(Some(403), false), Outcome::Failed);
        assert_eq!(o(Some(503), false), Outcome::Failed);
        assert_eq!(o(Some(603), false), Outcome::Failed);
    }

    #[test]
    fn codes_and_reasons_are_kept() {
        let h = Hangup::from_final_response(Some(503), "Trunk Overloaded", false);
        assert_eq!(
            (h.sip_code, h.reason.as_str(), h.by),
            (Some(503), "Trunk Overloaded", Party::Remote)
        );
        let h = Hangup::from_final_response(Some(404), "", false);
        assert_eq!(h.reason, "Not Found");
        let h = Hangup::from_final_response(None, "", false);
        assert_eq!(
            (h.sip_code, h.by, h.reason.as_str()),
            (Some(408), Party::Local, "Request Timeout")
        );
        assert_eq!(default_reason(499), "Client Error");
    }
}
