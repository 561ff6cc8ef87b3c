//! Blind transfer with REFER (RFC 3515): the headers of an outgoing REFER,
//! and reading the NOTIFYs the transferee sends back about the new call.
//!
//! The REFER itself is an in-dialog request built by the dialog layer; this
//! module supplies its `Refer-To` and `Referred-By` (RFC 3892) headers. The
//! progress reports are NOTIFYs of the implicit `refer` subscription
//! (RFC 3515 §2.4.4) whose `message/sipfrag` body (RFC 3420) holds the
//! status line of the new call.

use rsip::headers::UntypedHeader;

use super::e164::normalize_e164;
use super::scan::params_lookup;

/// The content type of a NOTIFY body reporting transfer progress
/// (RFC 3515 §2.4.5).
pub const SIPFRAG_CONTENT_TYPE: &str = "message/sipfrag";

/// Bodies longer than this are not a status-line fragment worth reading;
/// some servers copy headers into the sipfrag, but never kilobytes.
const MAX_SIPFRAG: usize = 8192;

/// Why a transfer header or NOTIFY could not be built or read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ReferError {
    /// The Refer-To / Referred-By target is not a `sip:`, `sips:` or `tel:`
    /// URI, or holds characters that would break the header.
    #[error("invalid transfer target URI {0:?}")]
    InvalidUri(String),
    /// The number is not an international E.164 number.
    #[error("not an E.164 number: {0:?}")]
    InvalidNumber(String),
    /// The domain is empty or holds characters not allowed in a host.
    #[error("invalid domain {0:?}")]
    InvalidDomain(String),
    /// A header the NOTIFY must carry (RFC 6665 §8.2.1/§8.2.3) is absent.
    #[error("missing {0} header")]
    MissingHeader(&'static str),
    /// The Event header names another package than `refer`.
    #[error("event package {0:?} is not refer")]
    NotReferEvent(String),
    /// The Subscription-State value has no state.
    #[error("invalid Subscription-State {0:?}")]
    InvalidSubscriptionState(String),
    /// The NOTIFY body is not `message/sipfrag`.
    #[error("unsupported NOTIFY content type {0:?}")]
    UnsupportedContentType(String),
    /// The sipfrag body does not start with a SIP status line.
    #[error("invalid sipfrag: {0}")]
    InvalidSipFrag(&'static str),
}

fn clip(s: &str) -> String {
    s.chars().take(64).collect()
}

/// Checks a URI we put between `<>`: a scheme we can transfer to, and no
/// character that would end the name-addr or the header line.
fn checked_uri(uri: &str) -> Result<&str, ReferError> {
    let u = uri.trim();
    let u = u
        .strip_prefix('<')
        .and_then(|u| u.strip_suffix('>'))
        .unwrap_or(u);
    let scheme_ok = ["sip:", "sips:", "tel:"]
        .iter()
        .any(|s| u.get(..s.len()).is_some_and(|p| p.eq_ignore_ascii_case(s)) && u.len() > s.len());
    let chars_ok = u
        .bytes()
        .all(|b| b.is_ascii_graphic() && !matches!(b, b'<' | b'>' | b'"'));
    if scheme_ok && chars_ok {
        Ok(u)
    } else {
        Err(ReferError::InvalidUri(clip(uri)))
    }
}

/// A `Refer-To` value for a SIP/SIPS/tel URI: `<sip:bob@example.com>`.
/// The URI is always enclosed in `<>` because RFC 3515 §2.1 (via RFC 3261
/// §20) requires it when the URI carries parameters or headers, and
/// enclosing is always allowed. Surrounding `<>` in the input are accepted.
pub fn refer_to_uri(uri: &str) -> Result<String, ReferError> {
    Ok(format!("<{}>", checked_uri(uri)?))
}

/// A `Refer-To` value for a phone number reached through `domain`:
/// `<sip:+4930123456@carrier.example;user=phone>`. `number` must be in an
/// international form [`normalize_e164`] accepts without a default
/// country (`+…`, `00…`, `011…`); the URI carries it as a global number
/// with `user=phone` (RFC 3261 §19.1.1, RFC 3966 §5.1.4).
pub fn refer_to_number(number: &str, domain: &str) -> Result<String, ReferError> {
    let digits =
        normalize_e164(number, None).ok_or_else(|| ReferError::InvalidNumber(clip(number)))?;
    let d = domain.trim();
    let domain_ok = !d.is_empty()
        && d.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b':' | b'[' | b']'));
    if !domain_ok {
        return Err(ReferError::InvalidDomain(clip(domain)));
    }
    Ok(format!("<sip:+{digits}@{d};user=phone>"))
}

/// The headers of an outgoing blind-transfer REFER: `Refer-To` (a value
/// from [`refer_to_uri`] or [`refer_to_number`]) and, when given, a
/// `Referred-By: <uri>` naming the transferor (RFC 3892 §3), which
/// carriers use for the new call's identity and billing.
pub fn refer_headers(
    refer_to: &str,
    referred_by: Option<&str>,
) -> Result<Vec<rsip::Header>, ReferError> {
    let refer_to = refer_to_uri(refer_to)?;
    let mut out = vec![rsip::Header::Other("Refer-To".into(), refer_to)];
    if let Some(by) = referred_by {
        out.push(rsip::Header::Other(
            "Referred-By".into(),
            format!("<{}>", checked_uri(by)?),
        ));
    }
    Ok(out)
}

/// An Event header (RFC 6665 §8.2.1): the package and its `id`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EventHeader {
    /// The event package, lower case (`refer`).
    pub package: String,
    /// The `id` parameter. For `refer` it is the CSeq number of the REFER
    /// that created the subscription (RFC 3515 §2.4.6), which tells
    /// several transfers in one dialog apart.
    pub id: Option<String>,
}

impl EventHeader {
    /// Reads an Event header value such as `refer;id=93809824`.
    pub fn parse(value: &str) -> Option<EventHeader> {
        let (package, params) = match value.find(';') {
            Some(i) => (&value[..i], &value[i..]),
            None => (value, ""),
        };
        let package = package.trim();
        if package.is_empty() {
            return None;
        }
        Some(EventHeader {
            package: package.to_ascii_lowercase(),
            id: params_lookup(params, "id").flatten(),
        })
    }

    /// The `id` as the REFER's CSeq number, when it is one.
    pub fn refer_cseq(&self) -> Option<u32> {
        self.id.as_deref()?.parse().ok()
    }
}

/// The state of a subscription, from a Subscription-State header
/// (RFC 6665 §8.2.3, §4.1.3).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SubscriptionState {
    /// The subscription runs; `expires` seconds left when given.
    Active {
        /// The `expires` parameter.
        expires: Option<u32>,
    },
    /// Not yet authorized; for `refer` this is rare but allowed.
    Pending {
        /// The `expires` parameter.
        expires: Option<u32>,
    },
    /// No more NOTIFYs will come (RFC 6665 §4.1.3). For `refer`, the
    /// transferee ends the subscription after the final sipfrag
    /// (RFC 3515 §2.4.7), Asterisk with `reason=noresource`.
    Terminated {
        /// The `reason` parameter, lower case (`noresource`, `timeout`,
        /// `rejected`, `deactivated`, `probation`, `giveup`, `invariant`).
        reason: Option<String>,
        /// The `retry-after` parameter in seconds.
        retry_after: Option<u32>,
    },
    /// A state this implementation does not know; RFC 6665 §8.2.3 says to
    /// treat it like `active` unless it is `terminated`, so the caller
    /// should keep listening.
    Other(String),
}

impl SubscriptionState {
    /// Reads a Subscription-State value such as
    /// `terminated;reason=noresource`.
    pub fn parse(value: &str) -> Result<SubscriptionState, ReferError> {
        let (state, params) = match value.find(';') {
            Some(i) => (&value[..i], &value[i..]),
            None => (value, ""),
        };
        let state = state.trim().to_ascii_lowercase();
        let num = |name| {
            params_lookup(params, name)
                .flatten()
                .and_then(|v| v.parse::<u32>().ok())
        };
        Ok(match state.as_str() {
            "" => return Err(ReferError::InvalidSubscriptionState(clip(value))),
            "active" => SubscriptionState::Active {
                expires: num("expires"),
            },
            "pending" => SubscriptionState::Pending {
                expires: num("expires"),
            },
            "terminated" => SubscriptionState::Terminated {
                reason: params_lookup(params, "reason")
                    .flatten()
                    .map(|r| r.to_ascii_lowercase()),
                retry_after: num("retry-after"),
            },
            _ => SubscriptionState::Other(clip(&state)),
        })
    }

    /// Whether no further NOTIFY will come.
    pub fn is_terminated(&self) -> bool {
        matches!(self, SubscriptionState::Terminated { .. })
    }
}

/// The status line of a `message/sipfrag` body (RFC 3420), as a REFER
/// NOTIFY carries it (RFC 3515 §2.4.5).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SipFrag {
    /// The status code of the transferred call, 100-699.
    pub code: u16,
    /// The reason phrase, possibly empty.
    pub reason: String,
}

impl SipFrag {
    /// Whether the transferred call got a final response (≥ 200): the
    /// transfer has succeeded (2xx) or failed, and no further progress
    /// will be reported (RFC 3515 §2.4.5).
    pub fn is_final(&self) -> bool {
        self.code >= 200
    }

    /// Whether the transfer succeeded: the new call was answered (2xx).
    pub fn is_success(&self) -> bool {
        (200..300).contains(&self.code)
    }
}

/// Parses a `message/sipfrag` body: its first non-empty line must be a
/// status line `SIP/2.0 <code> <reason>`. Liberal: any line ending,
/// leading blank lines, extra whitespace, lower-case `sip/2.0`, an empty
/// reason, and any header lines after the status line (ignored).
pub fn parse_sipfrag(body: &[u8]) -> Result<SipFrag, ReferError> {
    if body.len() > MAX_SIPFRAG {
        return Err(ReferError::InvalidSipFrag("body too large"));
    }
    let text = String::from_utf8_lossy(body);
    let line = text
        .lines()
        .map(str::trim)
        .find(|l| !l.is_empty())
        .ok_or(ReferError::InvalidSipFrag("empty body"))?;
    let mut parts = line.splitn(2, [' ', '\t']);
    let version = parts.next().unwrap_or("");
    if !version.eq_ignore_ascii_case("SIP/2.0") {
        return Err(ReferError::InvalidSipFrag("not a SIP/2.0 status line"));
    }
    let rest = parts.next().unwrap_or("").trim_start();
    let (code, reason) = match rest.find([' ', '\t']) {
        Some(i) => (&rest[..i], rest[i..].trim()),
        None => (rest, ""),
    };
    let code = code
        .parse::<u16>()
        .ok()
        .filter(|c| (100..=699).contains(c) && code.len() == 3)
        .ok_or(ReferError::InvalidSipFrag("status code is not 100-699"))?;
    Ok(SipFrag {
        code,
        reason: reason
            .chars()
            .filter(|c| !c.is_control())
            .take(128)
            .collect(),
    })
}

/// Where a blind transfer stands after a NOTIFY.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TransferStatus {
    /// The new call is being set up (1xx); more NOTIFYs will follow.
    Progressing(SipFrag),
    /// The new call was answered (2xx): the transferor can hang up.
    Succeeded(SipFrag),
    /// The new call failed (3xx-6xx): the transferor still has the call.
    Failed(SipFrag),
    /// The subscription ended before a final status was reported
    /// (e.g. `terminated;reason=noresource` with a 1xx or no body): the
    /// outcome will not be known. Carries the last status, if any.
    Ended(Option<SipFrag>),
}

/// What one NOTIFY of a `refer` subscription says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReferNotify {
    /// The Event header's `id` (the REFER's CSeq, RFC 3515 §2.4.6).
    pub id: Option<String>,
    /// The subscription state.
    pub state: SubscriptionState,
    /// The transfer's status from the sipfrag body.
    pub status: TransferStatus,
}

fn header<'a>(request: &'a rsip::Request, name: &str) -> Option<&'a str> {
    request.headers.iter().find_map(|h| match h {
        rsip::Header::Event(e) if name == "Event" => Some(e.value()),
        rsip::Header::SubscriptionState(s) if name == "Subscription-State" => Some(s.value()),
        rsip::Header::ContentType(c) if name == "Content-Type" => Some(c.value()),
        rsip::Header::Other(n, v) if n.eq_ignore_ascii_case(name) => Some(v.as_str()),
        _ => None,
    })
}

/// Reads a NOTIFY of a `refer` subscription: the Event must be `refer`
/// (RFC 3515 §2.4.4) and Subscription-State present (RFC 6665 §8.2.3).
/// The body, when present, must be `message/sipfrag` (a missing
/// Content-Type is tolerated since the `refer` package allows no other
/// type). An empty body is only accepted on a terminating NOTIFY, where
/// it gives [`TransferStatus::Ended`].
pub fn parse_refer_notify(notify: &rsip::Request) -> Result<ReferNotify, ReferError> {
    let event = header(notify, "Event").ok_or(ReferError::MissingHeader("Event"))?;
    let event = EventHeader::parse(event).ok_or(ReferError::MissingHeader("Event"))?;
    if event.package != "refer" {
        return Err(ReferError::NotReferEvent(clip(&event.package)));
    }
    let state = SubscriptionState::parse(
        header(notify, "Subscription-State")
            .ok_or(ReferError::MissingHeader("Subscription-State"))?,
    )?;
    let frag = if notify.body.iter().all(u8::is_ascii_whitespace) {
        None
    } else {
        if let Some(ct) = header(notify, "Content-Type") {
            let mt = ct.split(';').next().unwrap_or("").trim();
            if !mt.eq_ignore_ascii_case(SIPFRAG_CONTENT_TYPE) {
                return Err(ReferError::UnsupportedContentType(clip(mt)));
            }
        }
        Some(parse_sipfrag(&notify.body)?)
    };
    let status = match frag {
        Some(f) if f.is_success() => TransferStatus::Succeeded(f),
        Some(f) if f.is_final() => TransferStatus::Failed(f),
        f if state.is_terminated() => TransferStatus::Ended(f),
        Some(f) => TransferStatus::Progressing(f),
        None => return Err(ReferError::InvalidSipFrag("empty body")),
    };
    Ok(ReferNotify {
        id: event.id,
        state,
        status,
    })
}
