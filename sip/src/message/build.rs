//! Building responses (RFC 3261 §8.2.6) and the 400 for messages that do
//! not parse.

use super::ident::new_tag;
use super::parse::MAX_MESSAGE_SIZE;
use super::scan::{head_end, header_param, scan_head};
use rsip::headers::UntypedHeader;
use rsip::prelude::*;

/// Builds a response to `request` per §8.2.6.2: copies every Via (in
/// order), From, To, Call-ID and CSeq, adds `to_tag` to To when To has no
/// tag yet (§8.2.6.2: a UAS adds a tag to To, except for 100 Trying), a
/// Server header and `Content-Length: 0`. With `reason`, the status line
/// carries that phrase (as `StatusCode::Other`; compare responses by
/// `status_code.code()`); without it, rsip's default phrase.
pub fn response(
    request: &rsip::Request,
    status: u16,
    reason: Option<&str>,
    to_tag: Option<&str>,
) -> rsip::Response {
    let mut headers = rsip::Headers::default();
    for h in request.headers.iter() {
        match h {
            rsip::Header::Via(_)
            | rsip::Header::From(_)
            | rsip::Header::CallId(_)
            | rsip::Header::CSeq(_) => headers.push(h.clone()),
            rsip::Header::To(to) => {
                let value = match to_tag {
                    Some(tag) if header_param(to.value(), "tag").is_none() => {
                        format!("{};tag={}", to.value(), tag)
                    }
                    _ => to.value().to_string(),
                };
                headers.push(rsip::headers::To::new(value).into());
            }
            _ => {}
        }
    }
    headers.push(rsip::headers::Server::new(crate::USER_AGENT).into());
    headers.push(rsip::headers::ContentLength::new("0").into());
    let phrase = match reason {
        Some(r) => sanitize_phrase(r),
        None => reason_phrase(status).to_string(),
    };
    let status_code = rsip::StatusCode::Other(status, phrase);
    rsip::Response {
        status_code,
        version: rsip::Version::V2,
        headers,
        body: Vec::new(),
    }
}

/// The reason phrase RFC 3261 §21 (and the RFCs that added codes) gives a
/// status code; the class name for codes it does not list.
pub fn reason_phrase(code: u16) -> &'static str {
    known_phrase(code).unwrap_or(match code / 100 {
        1 => "Session Progress",
        2 => "OK",
        3 => "Redirection",
        4 => "Request Failure",
        5 => "Server Failure",
        _ => "Global Failure",
    })
}

fn known_phrase(code: u16) -> Option<&'static str> {
    Some(match code {
        100 => "Trying",
        180 => "Ringing",
        181 => "Call Is Being Forwarded",
        182 => "Queued",
        183 => "Session Progress",
        199 => "Early Dialog Terminated",
        200 => "OK",
        202 => "Accepted",
        204 => "No Notification",
        300 => "Multiple Choices",
        301 => "Moved Permanently",
        302 => "Moved Temporarily",
        305 => "Use Proxy",
        380 => "Alternative Service",
        400 => "Bad Request",
        401 => "Unauthorized",
        402 => "Payment Required",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        406 => "Not Acceptable",
        407 => "Proxy Authentication Required",
        408 => "Request Timeout",
        410 => "Gone",
        413 => "Request Entity Too Large",
        414 => "Request-URI Too Long",
        415 => "Unsupported Media Type",
        416 => "Unsupported URI Scheme",
        420 => "Bad Extension",
        421 => "Extension Required",
        422 => "Session Interval Too Small",
        423 => "Interval Too Brief",
        480 => "Temporarily Unavailable",
        481 => "Call/Transaction Does Not Exist",
        482 => "Loop Detected",
        483 => "Too Many Hops",
        484 => "Address Incomplete",
        485 => "Ambiguous",
        486 => "Busy Here",
        487 => "Request Terminated",
        488 => "Not Acceptable Here",
        489 => "Bad Event",
        491 => "Request Pending",
        493 => "Undecipherable",
        500 => "Server Internal Error",
        501 => "Not Implemented",
        502 => "Bad Gateway",
        503 => "Service Unavailable",
        504 => "Server Time-out",
        505 => "Version Not Supported",
        513 => "Message Too Large",
        600 => "Busy Everywhere",
        603 => "Decline",
        604 => "Does Not Exist Anywhere",
        606 => "Not Acceptable",
        _ => return None,
    })
}

/// Adds `;tag=<tag>` to the To header unless it already has a tag.
pub fn set_to_tag<M: HasHeaders>(msg: &mut M, tag: &str) {
    for h in msg.headers_mut().iter_mut() {
        if let rsip::Header::To(to) = h {
            if header_param(to.value(), "tag").is_none() {
                let v = format!("{};tag={}", to.value(), tag);
                to.replace(v);
            }
            return;
        }
    }
}

/// Replaces any Contact with `Contact: <uri>` (the `<>` are added).
pub fn set_contact<M: HasHeaders>(msg: &mut M, uri: &str) {
    msg.headers_mut()
        .unique_push(rsip::headers::Contact::new(format!("<{uri}>")).into());
}

/// Messages that carry a body (rsip has `body_mut` on each type but no
/// trait for it).
pub trait HasBody: HasHeaders {
    /// The body.
    fn body_vec(&mut self) -> &mut Vec<u8>;
}
impl HasBody for rsip::Request {
    fn body_vec(&mut self) -> &mut Vec<u8> {
        &mut self.body
    }
}
impl HasBody for rsip::Response {
    fn body_vec(&mut self) -> &mut Vec<u8> {
        &mut self.body
    }
}

/// Sets the body with its Content-Type and a matching Content-Length
/// (§20.14: always sent, so the message frames on streams).
pub fn set_body<M: HasBody>(msg: &mut M, content_type: &str, body: Vec<u8>) {
    let len = body.len();
    *msg.body_vec() = body;
    let headers = msg.headers_mut();
    headers.unique_push(rsip::headers::ContentType::new(content_type).into());
    headers.unique_push(rsip::headers::ContentLength::new(len.to_string()).into());
}

/// A reason phrase or warning text cannot carry CR/LF or controls, and is
/// kept short so a hostile input cannot make our answer large.
fn sanitize_phrase(s: &str) -> String {
    let cleaned: String = s
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .take(120)
        .collect();
    let t = cleaned.trim();
    if t.is_empty() {
        "Bad Request".into()
    } else {
        t.to_string()
    }
}

/// `bad_request` with the 400 status (§8.2.6, §21.4.1).
pub fn bad_request(bytes: &[u8], reason: &str) -> Option<bytes::Bytes> {
    reject(bytes, 400, reason)
}

/// Answers a request that could not be parsed, when enough of it can be
/// read to address an answer (§8.2.6): a tolerant scan must find a
/// Request-Line that is not ACK (an ACK is never answered, §17.2.3), and
/// Via(s), From, To, Call-ID and CSeq. The response copies those, adds our
/// tag to To, a `Warning: 399 hotline "<reason>"` (§20.43) and a reason
/// phrase naming the problem. Returns `None` (drop silently) otherwise,
/// including for responses and oversize input.
pub fn reject(bytes: &[u8], status: u16, reason: &str) -> Option<bytes::Bytes> {
    if !(300..700).contains(&status) {
        return None;
    }
    let scan_len = bytes.len().min(MAX_MESSAGE_SIZE);
    let bytes = &bytes[..scan_len];
    let head_len = head_end(bytes).map(|(h, _)| h).unwrap_or(bytes.len());
    let head = String::from_utf8_lossy(&bytes[..head_len]);
    let raw = scan_head(&head);
    let mut words = raw.start_line.split_whitespace();
    let method = words.next()?;
    let _uri = words.next()?;
    let version = words.next()?;
    if !version.eq_ignore_ascii_case("SIP/2.0")
        || method.eq_ignore_ascii_case("ACK")
        || !method.bytes().all(super::scan::is_token_char)
    {
        return None;
    }
    let vias: Vec<&str> = raw.all("Via").collect();
    let from = raw.first("From")?;
    let to = raw.first("To")?;
    let call_id = raw.first("Call-ID")?;
    let cseq = raw.first("CSeq")?;
    if vias.is_empty() || [from, to, call_id, cseq].iter().any(|v| v.is_empty()) {
        return None;
    }
    let phrase = sanitize_phrase(reason);
    let warning = phrase.replace('\\', "\\\\").replace('"', "\\\"");
    let mut out = format!("SIP/2.0 {status} {phrase}\r\n");
    for v in vias {
        out.push_str(&format!("Via: {v}\r\n"));
    }
    out.push_str(&format!("From: {from}\r\n"));
    if header_param(to, "tag").is_some() {
        out.push_str(&format!("To: {to}\r\n"));
    } else {
        out.push_str(&format!("To: {to};tag={}\r\n", new_tag()));
    }
    out.push_str(&format!("Call-ID: {call_id}\r\n"));
    out.push_str(&format!("CSeq: {cseq}\r\n"));
    out.push_str(&format!("Server: {}\r\n", crate::USER_AGENT));
    out.push_str(&format!("Warning: 399 hotline \"{warning}\"\r\n"));
    out.push_str("Content-Length: 0\r\n\r\n");
    Some(bytes::Bytes::from(out))
}
