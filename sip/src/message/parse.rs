//! Turning bytes from the network into an `rsip::SipMessage`, with the
//! checks RFC 3261 asks of a receiver before anything looks at the message.

use super::scan::{RawHead, head_end, scan_head};
use super::via::ViaInfo;

/// The largest message we accept, head and body. RFC 3261 §18.1.1 keeps
/// UDP requests near the path MTU; 64 KiB is the UDP datagram limit and
/// far above any real signalling message.
pub const MAX_MESSAGE_SIZE: usize = 64 * 1024;

/// Why a message was rejected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ParseError {
    /// More than [`MAX_MESSAGE_SIZE`] bytes.
    #[error("message of {0} bytes exceeds the size limit")]
    TooLarge(usize),
    /// No blank line ends the header section.
    #[error("header section is not terminated by an empty line")]
    Unterminated,
    /// The head is not UTF-8 (RFC 3261 §7.3 header text is UTF-8).
    #[error("header section is not valid UTF-8")]
    NotUtf8,
    /// The first line is neither a Request-Line nor a Status-Line.
    #[error("malformed start line")]
    BadStartLine,
    /// A method rsip does not know (answer 501, §8.2.1).
    #[error("unsupported method {0}")]
    UnsupportedMethod(String),
    /// A line in the header section is not `name: value`.
    #[error("malformed header line")]
    BadHeaderLine,
    /// A mandatory header (§8.1.1) is missing.
    #[error("missing {0} header")]
    MissingHeader(&'static str),
    /// A mandatory header is present but unreadable.
    #[error("malformed {0} header")]
    BadHeader(&'static str),
    /// The CSeq method is not the Request-Line method (§8.2.2 implies it).
    #[error("CSeq method {cseq} does not match request method {request}")]
    CSeqMismatch {
        /// The Request-Line method.
        request: String,
        /// The CSeq method.
        cseq: String,
    },
    /// Content-Length declares more body than the message carries (§18.3).
    #[error("Content-Length {declared} exceeds the {present} body bytes present")]
    BodyTruncated {
        /// The declared length.
        declared: usize,
        /// The bytes present after the head.
        present: usize,
    },
    /// rsip rejected the canonicalised message.
    #[error("unparseable message: {0}")]
    Rsip(String),
}

impl ParseError {
    /// The status a server should answer a request failing this way with:
    /// 513 for oversize (§21.5.12), 501 for unknown methods (§21.5.2),
    /// otherwise 400 (§8.2.6).
    pub fn status_code(&self) -> u16 {
        match self {
            ParseError::TooLarge(_) => 513,
            ParseError::UnsupportedMethod(_) => 501,
            _ => 400,
        }
    }
}

/// The headers every request and response must carry (§8.1.1, §8.2.6);
/// Max-Forwards is also mandatory in requests but absent ones are treated
/// as 70 by the layers above, as many UAs omit it on in-dialog requests.
const MANDATORY: [&str; 5] = ["Via", "From", "To", "Call-ID", "CSeq"];

/// Parses one message (a whole UDP datagram or one framed TCP message).
///
/// Liberal in layout: tolerates leading CRLFs, bare-LF line ends, folded
/// lines, compact header names, comma-joined Via/Contact/Route values and
/// odd whitespace, all canonicalised before rsip sees them. Strict in
/// content: Via, From, To, Call-ID and CSeq must be present and readable,
/// the top Via must be a valid via-parm, the CSeq method must match a
/// request's method, and Content-Length must not exceed the body present.
/// A body longer than Content-Length is truncated to it (§18.3: the excess
/// of a UDP datagram is discarded); a missing Content-Length means the body
/// runs to the end of the bytes (§18.3 for UDP; the TCP framer always
/// supplies it). Never panics.
pub fn parse(bytes: &[u8]) -> Result<rsip::SipMessage, ParseError> {
    if bytes.len() > MAX_MESSAGE_SIZE {
        return Err(ParseError::TooLarge(bytes.len()));
    }
    let (head_len, body_start) = head_end(bytes).ok_or(ParseError::Unterminated)?;
    let head = std::str::from_utf8(&bytes[..head_len]).map_err(|_| ParseError::NotUtf8)?;
    let raw = scan_head(head);
    if raw.bad_lines > 0 {
        return Err(ParseError::BadHeaderLine);
    }
    let start_line = canonical_start_line(&raw)?;
    check_mandatory(&raw, &start_line)?;
    let body = &bytes[body_start..];
    let body = match content_length(&raw)? {
        Some(declared) if declared > body.len() => {
            return Err(ParseError::BodyTruncated {
                declared,
                present: body.len(),
            });
        }
        Some(declared) => &body[..declared],
        None => body,
    };

    let mut canonical = Vec::with_capacity(bytes.len() + 64);
    canonical.extend_from_slice(start_line.text.as_bytes());
    canonical.extend_from_slice(b"\r\n");
    for h in &raw.headers {
        // rsip stores the value untyped; a CR/LF cannot survive scanning.
        canonical.extend_from_slice(h.name.as_bytes());
        canonical.extend_from_slice(b": ");
        canonical.extend_from_slice(h.value.as_bytes());
        canonical.extend_from_slice(b"\r\n");
    }
    canonical.extend_from_slice(b"\r\n");
    canonical.extend_from_slice(body);
    rsip_parse(&canonical)
}

/// rsip behind a panic guard: rsip is not audited for panics on hostile
/// input, and a panic here would take down the socket loop.
fn rsip_parse(bytes: &[u8]) -> Result<rsip::SipMessage, ParseError> {
    match std::panic::catch_unwind(|| rsip::SipMessage::try_from(bytes)) {
        Ok(Ok(msg)) => Ok(msg),
        Ok(Err(e)) => Err(ParseError::Rsip(e.to_string())),
        Err(_) => {
            tracing::error!("rsip panicked while parsing a message");
            Err(ParseError::Rsip("parser panic".into()))
        }
    }
}

pub(crate) struct StartLine {
    pub text: String,
    /// The method, for requests.
    pub method: Option<String>,
}

/// Rebuilds the start line with single spaces (§7.1, §7.2), checking its
/// shape so rsip's stricter tokenizer gets something it reads.
fn canonical_start_line(raw: &RawHead) -> Result<StartLine, ParseError> {
    let line = raw.start_line.as_str();
    if let Some(rest) = strip_prefix_ci(line, "SIP/2.0") {
        if !rest.starts_with([' ', '\t']) {
            return Err(ParseError::BadStartLine);
        }
        let rest = rest.trim_start();
        let (code, reason) = match rest.split_once([' ', '\t']) {
            Some((c, r)) => (c, r.trim()),
            None => (rest, ""),
        };
        if code.len() != 3 || !code.bytes().all(|b| b.is_ascii_digit()) || code.starts_with('0') {
            return Err(ParseError::BadStartLine);
        }
        let reason = if reason.is_empty() { "Unknown" } else { reason };
        return Ok(StartLine {
            text: format!("SIP/2.0 {code} {reason}"),
            method: None,
        });
    }
    let parts: Vec<&str> = line.split_whitespace().collect();
    let [method, uri, version] = parts[..] else {
        return Err(ParseError::BadStartLine);
    };
    if !version.eq_ignore_ascii_case("SIP/2.0") || !method.bytes().all(super::scan::is_token_char) {
        return Err(ParseError::BadStartLine);
    }
    if method.parse::<rsip::Method>().is_err() {
        return Err(ParseError::UnsupportedMethod(method.to_string()));
    }
    Ok(StartLine {
        text: format!("{method} {uri} SIP/2.0"),
        method: Some(method.to_string()),
    })
}

fn strip_prefix_ci<'a>(s: &'a str, prefix: &str) -> Option<&'a str> {
    let head = s.get(..prefix.len())?;
    head.eq_ignore_ascii_case(prefix)
        .then(|| &s[prefix.len()..])
}

fn check_mandatory(raw: &RawHead, start: &StartLine) -> Result<(), ParseError> {
    for name in MANDATORY {
        match raw.first(name) {
            None => return Err(ParseError::MissingHeader(name)),
            Some("") => return Err(ParseError::BadHeader(name)),
            Some(_) => {}
        }
    }
    if raw.all("Via").any(|v| ViaInfo::parse(v).is_none()) {
        return Err(ParseError::BadHeader("Via"));
    }
    let (_, cseq_method) =
        parse_cseq(raw.first("CSeq").unwrap_or("")).ok_or(ParseError::BadHeader("CSeq"))?;
    if let Some(method) = &start.method {
        // Methods are case-sensitive (§7.1), so compare exactly.
        if method != cseq_method {
            return Err(ParseError::CSeqMismatch {
                request: method.clone(),
                cseq: cseq_method.to_string(),
            });
        }
    }
    if cseq_method.parse::<rsip::Method>().is_err() {
        return Err(ParseError::BadHeader("CSeq"));
    }
    Ok(())
}

/// Splits a CSeq value (§20.16) into its number and method token: exactly
/// two whitespace-separated words, the first a `u32`. The shape only; the
/// receiver checks of [`parse`] (31-bit number, token method) are on top.
pub fn cseq_parts(value: &str) -> Option<(u32, &str)> {
    let mut it = value.split_whitespace();
    let num: u32 = it.next()?.parse().ok()?;
    let method = it.next()?;
    if it.next().is_some() {
        return None;
    }
    Some((num, method))
}

/// Reads `CSeq: <number> <method>` (§20.16): the number must fit in 31 bits.
pub(crate) fn parse_cseq(value: &str) -> Option<(u32, &str)> {
    let (num, method) = cseq_parts(value)?;
    if num >= 1 << 31 || !method.bytes().all(super::scan::is_token_char) {
        return None;
    }
    Some((num, method))
}

/// The declared Content-Length; several headers must agree.
fn content_length(raw: &RawHead) -> Result<Option<usize>, ParseError> {
    let mut found = None;
    for v in raw.all("Content-Length") {
        let n: usize = v
            .trim()
            .parse()
            .map_err(|_| ParseError::BadHeader("Content-Length"))?;
        if found.is_some_and(|f| f != n) {
            return Err(ParseError::BadHeader("Content-Length"));
        }
        found = Some(n);
    }
    Ok(found)
}
