//! Identifiers we generate, and accessors for the ones we read.

use super::parse::parse_cseq;
use super::scan::header_param;
use super::via::top_via;
use rand::Rng;
use rsip::headers::UntypedHeader;
use rsip::prelude::*;

/// The RFC 3261 §8.1.1.7 magic cookie every branch we generate starts with.
pub const BRANCH_COOKIE: &str = "z9hG4bK";

fn random_token(len: usize) -> String {
    const ALPHABET: &[u8] = b"abcdefghijklmnopqrstuvwxyz0123456789";
    let mut rng = rand::rng();
    (0..len)
        .map(|_| ALPHABET[rng.random_range(0..ALPHABET.len())] as char)
        .collect()
}

/// A new Via branch: the magic cookie plus 16 random characters (~82 bits,
/// §8.1.1.7 wants branches unique across space and time).
pub fn new_branch() -> String {
    format!("{BRANCH_COOKIE}{}", random_token(16))
}

/// A new From/To tag (§19.3: at least 32 bits of randomness; this has ~62).
pub fn new_tag() -> String {
    random_token(12)
}

/// A new Call-ID, `random@host` (§8.1.1.4).
pub fn new_call_id(host: &str) -> String {
    format!("{}@{}", random_token(20), host)
}

/// The branch of the top Via.
pub fn top_via_branch<H: HasHeaders>(msg: &H) -> Option<String> {
    top_via(msg)?.branch().map(str::to_string)
}

/// The top Via's sent-by `(host, port)` (host without IPv6 brackets).
pub fn sent_by<H: HasHeaders>(msg: &H) -> Option<(String, Option<u16>)> {
    let v = top_via(msg)?;
    Some((v.host, v.port))
}

/// The method a message belongs to: a request's own, a response's CSeq
/// method (§8.1.3.3 matches responses by it).
pub fn method(msg: &rsip::SipMessage) -> Option<rsip::Method> {
    match msg {
        rsip::SipMessage::Request(r) => Some(r.method),
        rsip::SipMessage::Response(r) => cseq(r).map(|(_, m)| m),
    }
}

/// The CSeq `(number, method)`.
pub fn cseq<H: HasHeaders>(msg: &H) -> Option<(u32, rsip::Method)> {
    let v = header_value(msg, |h| match h {
        rsip::Header::CSeq(c) => Some(c.value()),
        _ => None,
    })?;
    let (n, m) = parse_cseq(v)?;
    Some((n, m.parse().ok()?))
}

fn header_value<'a, H: HasHeaders>(
    msg: &'a H,
    pick: impl Fn(&'a rsip::Header) -> Option<&'a str>,
) -> Option<&'a str> {
    msg.headers().iter().find_map(pick)
}

/// The From tag.
pub fn from_tag<H: HasHeaders>(msg: &H) -> Option<String> {
    let v = header_value(msg, |h| match h {
        rsip::Header::From(f) => Some(f.value()),
        _ => None,
    })?;
    header_param(v, "tag").flatten()
}

/// The To tag.
pub fn to_tag<H: HasHeaders>(msg: &H) -> Option<String> {
    let v = header_value(msg, |h| match h {
        rsip::Header::To(t) => Some(t.value()),
        _ => None,
    })?;
    header_param(v, "tag").flatten()
}

/// The Call-ID.
pub fn call_id<H: HasHeaders>(msg: &H) -> Option<&str> {
    header_value(msg, |h| match h {
        rsip::Header::CallId(c) => Some(c.value()),
        _ => None,
    })
}

/// The user part of the Request-URI (the dialled number on a trunk).
pub fn request_user(request: &rsip::Request) -> Option<&str> {
    request.uri.user()
}
