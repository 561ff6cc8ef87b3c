//! DTMF carried in SIP INFO requests (RFC 6086 INFO, body formats that are
//! de-facto standards rather than RFCs).
//!
//! Two bodies are seen on trunks:
//! - `application/dtmf-relay` (Cisco, adopted by Asterisk, FreeSWITCH,
//!   Polycom…): `Signal=5\r\nDuration=160\r\n`, Duration in milliseconds.
//! - `application/dtmf`: the bare digit, e.g. `5`.
//!
//! Devices vary in case, spacing, line endings and in writing `*`/`#` as
//! the RFC 4733 event codes `10`/`11`, so the parser is liberal; the
//! builder writes the canonical Cisco form.

use std::time::Duration;

use super::build::{HasBody, set_body};

/// Content type of the Cisco-style `Signal=`/`Duration=` body.
pub const DTMF_RELAY_CONTENT_TYPE: &str = "application/dtmf-relay";
/// Content type of the bare-digit body.
pub const DTMF_CONTENT_TYPE: &str = "application/dtmf";

/// Bodies longer than this are not DTMF: a real one is ~30 bytes, and the
/// cap keeps a hostile body from costing more than a glance.
const MAX_BODY: usize = 1024;

/// One DTMF digit received in an INFO body.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DtmfInfo {
    /// `0`-`9`, `*`, `#` or `A`-`D` (always upper case).
    pub digit: char,
    /// How long the key was pressed, when the sender said so.
    pub duration: Option<Duration>,
}

/// Why an INFO body is not a DTMF digit.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DtmfInfoError {
    /// The Content-Type is neither `application/dtmf-relay` nor
    /// `application/dtmf` (the INFO carries something else, e.g. a
    /// media-control XML body; answer 415 per RFC 6086 §4.2.2).
    #[error("unsupported content type {0:?} for DTMF")]
    UnsupportedContentType(String),
    /// The body exceeds the size any DTMF body has.
    #[error("DTMF body too large ({0} bytes)")]
    BodyTooLarge(usize),
    /// The body is not UTF-8 text.
    #[error("DTMF body is not text")]
    NotText,
    /// No `Signal=` line (dtmf-relay) or an empty body (dtmf).
    #[error("DTMF body carries no signal")]
    MissingSignal,
    /// The signal is not one of the 16 DTMF events.
    #[error("invalid DTMF signal {0:?}")]
    InvalidSignal(String),
}

/// The DTMF digit for a signal value: `0`-`9`, `*`, `#`, `A`-`D` in either
/// case, or the RFC 4733 §3.2 event codes `10`-`15` some devices send in
/// place of `*`, `#`, `A`-`D`.
fn digit_from_signal(signal: &str) -> Result<char, DtmfInfoError> {
    let s = signal.trim();
    let mut chars = s.chars();
    if let (Some(c), None) = (chars.next(), chars.clone().next()) {
        let c = c.to_ascii_uppercase();
        if c.is_ascii_digit() || matches!(c, '*' | '#' | 'A'..='D') {
            return Ok(c);
        }
    }
    match s {
        "10" => Ok('*'),
        "11" => Ok('#'),
        "12" => Ok('A'),
        "13" => Ok('B'),
        "14" => Ok('C'),
        "15" => Ok('D'),
        _ => Err(DtmfInfoError::InvalidSignal(s.chars().take(32).collect())),
    }
}

/// The media type of a Content-Type value, without parameters, lower case.
fn media_type(content_type: &str) -> String {
    content_type
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase()
}

/// Parses the body of an INFO request carrying DTMF.
///
/// `content_type` is the Content-Type header value (parameters are
/// ignored). For `application/dtmf-relay`, keys are matched case-
/// insensitively, whitespace around `=` is ignored, lines may end in CRLF
/// or LF, unknown keys are skipped; a Duration that is not a number of
/// milliseconds is dropped rather than losing the digit. For
/// `application/dtmf`, the body is the digit itself. Gateways mix the two
/// up, so either type accepts either body: a body without `=` is read as a
/// bare digit.
pub fn parse_dtmf_info(content_type: &str, body: &[u8]) -> Result<DtmfInfo, DtmfInfoError> {
    let mt = media_type(content_type);
    if mt != DTMF_RELAY_CONTENT_TYPE && mt != DTMF_CONTENT_TYPE {
        return Err(DtmfInfoError::UnsupportedContentType(
            mt.chars().take(64).collect(),
        ));
    }
    if body.len() > MAX_BODY {
        return Err(DtmfInfoError::BodyTooLarge(body.len()));
    }
    let text = std::str::from_utf8(body).map_err(|_| DtmfInfoError::NotText)?;
    if !text.contains('=') {
        let t = text.trim();
        if t.is_empty() {
            return Err(DtmfInfoError::MissingSignal);
        }
        return Ok(DtmfInfo {
            digit: digit_from_signal(t)?,
            duration: None,
        });
    }
    let mut signal = None;
    let mut duration = None;
    for line in text.lines() {
        let Some((key, value)) = line.split_once('=') else {
            continue;
        };
        let key = key.trim();
        if key.eq_ignore_ascii_case("signal") && signal.is_none() {
            signal = Some(value);
        } else if key.eq_ignore_ascii_case("duration") && duration.is_none() {
            duration = value.trim().parse::<u64>().ok().map(Duration::from_millis);
        }
    }
    let signal = signal.ok_or(DtmfInfoError::MissingSignal)?;
    Ok(DtmfInfo {
        digit: digit_from_signal(signal)?,
        duration,
    })
}

/// Parses the DTMF digit of an INFO request, reading its Content-Type
/// header (a missing one is reported as an empty unsupported type).
pub fn dtmf_info_from_request(request: &rsip::Request) -> Result<DtmfInfo, DtmfInfoError> {
    use rsip::headers::UntypedHeader;
    let ct = request
        .headers
        .iter()
        .find_map(|h| match h {
            rsip::Header::ContentType(c) => Some(c.value()),
            _ => None,
        })
        .unwrap_or("");
    parse_dtmf_info(ct, &request.body)
}

/// The `application/dtmf-relay` body for `digit` held for `duration`
/// (whole milliseconds): `Signal=5\r\nDuration=160\r\n`, the form Cisco,
/// Asterisk and FreeSWITCH all read. `digit` may be lower-case `a`-`d`;
/// anything outside the 16 DTMF events is refused.
pub fn dtmf_relay_body(digit: char, duration: Duration) -> Result<Vec<u8>, DtmfInfoError> {
    let mut buf = [0u8; 4];
    let digit = digit_from_signal(digit.encode_utf8(&mut buf))?;
    Ok(format!("Signal={digit}\r\nDuration={}\r\n", duration.as_millis()).into_bytes())
}

/// Puts a DTMF digit into an INFO request (or any message) as an
/// `application/dtmf-relay` body with matching Content-Type and
/// Content-Length.
pub fn set_dtmf_info_body<M: HasBody>(
    msg: &mut M,
    digit: char,
    duration: Duration,
) -> Result<(), DtmfInfoError> {
    let body = dtmf_relay_body(digit, duration)?;
    set_body(msg, DTMF_RELAY_CONTENT_TYPE, body);
    Ok(())
}
