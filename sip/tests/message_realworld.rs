//! Real-world messages from `fixtures/sip/` parse; malformed ones get a 400
//! (or 501) or are dropped, as RFC 3261 §8.2.6 allows.

use hotline_sip::message::{self, ParseError};
use rsip::headers::UntypedHeader;
use rsip::prelude::*;
use std::net::SocketAddr;
use std::path::PathBuf;

fn fixtures() -> Vec<(String, Vec<u8>)> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../fixtures/sip");
    let mut out: Vec<_> = std::fs::read_dir(&dir)
        .expect("fixtures/sip exists")
        .filter_map(|e| e.ok())
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "sip"))
        .map(|p| {
            let name = p.file_name().unwrap().to_string_lossy().into_owned();
            (name, std::fs::read(&p).unwrap())
        })
        .collect();
    out.sort();
    out
}

fn fixture(name: &str) -> Vec<u8> {
    fixtures()
        .into_iter()
        .find(|(n, _)| n == name)
        .unwrap_or_else(|| panic!("fixture {name}"))
        .1
}

fn request(name: &str) -> rsip::Request {
    match message::parse(&fixture(name)).unwrap() {
        rsip::SipMessage::Request(r) => r,
        other => panic!("{name} is not a request: {other}"),
    }
}

#[test]
fn every_fixture_parses() {
    let all = fixtures();
    assert!(all.len() >= 15, "seed corpus has {} messages", all.len());
    for (name, bytes) in all {
        let msg = message::parse(&bytes).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert!(message::call_id(&msg).is_some(), "{name}");
        assert!(message::top_via_branch(&msg).is_some(), "{name}");
        assert!(message::method(&msg).is_some(), "{name}");
        assert!(message::cseq(&msg).is_some(), "{name}");
    }
}

#[test]
fn sipp_invite_fields_and_body() {
    let r = request("sipp_invite.sip");
    assert_eq!(r.method, rsip::Method::Invite);
    assert_eq!(message::request_user(&r), Some("service"));
    assert_eq!(message::from_tag(&r).as_deref(), Some("4711SIPpTag001"));
    assert_eq!(message::to_tag(&r), None);
    assert_eq!(message::cseq(&r), Some((1, rsip::Method::Invite)));
    assert_eq!(
        message::top_via_branch(&r).as_deref(),
        Some("z9hG4bK-4711-1-0")
    );
    assert!(r.body.starts_with(b"v=0\r\n"));
    assert!(r.body.ends_with(b"a=rtpmap:0 PCMU/8000\r\n"));
}

#[test]
fn baresip_invite_e164_user() {
    let r = request("baresip_invite.sip");
    assert_eq!(message::request_user(&r), Some("+15551234567"));
    assert_eq!(
        message::normalize_e164(message::request_user(&r).unwrap(), None).as_deref(),
        Some("15551234567")
    );
    assert!(String::from_utf8_lossy(&r.body).contains("opus/48000/2"));
}

#[test]
fn compact_forms_are_expanded() {
    let r = request("compact_invite.sip");
    assert_eq!(
        message::call_id(&r),
        Some("a84b4c76e66710@pc33.atlanta.example.com")
    );
    assert_eq!(message::from_tag(&r).as_deref(), Some("1928301774"));
    assert_eq!(
        r.to_header().unwrap().value(),
        "Bob <sip:bob@biloxi.example.com>"
    );
    assert!(r.contact_header().is_ok());
    assert!(
        r.headers
            .iter()
            .any(|h| matches!(h, rsip::Header::ContentType(c) if c.value() == "application/sdp"))
    );
    assert_eq!(
        message::top_via_branch(&r).as_deref(),
        Some("z9hG4bKnashds8")
    );
    assert!(!r.body.is_empty());
}

#[test]
fn folded_headers_are_joined() {
    let r = request("folded_headers.sip");
    assert_eq!(
        message::top_via_branch(&r).as_deref(),
        Some("z9hG4bKfolded")
    );
    assert_eq!(message::from_tag(&r).as_deref(), Some("f01d"));
    let subject = r
        .headers
        .iter()
        .find_map(|h| match h {
            rsip::Header::Subject(s) => Some(s.value().to_string()),
            _ => None,
        })
        .unwrap();
    assert_eq!(
        subject,
        "I know you're there, pick up the phone and talk to me!"
    );
}

#[test]
fn multiple_vias_in_one_line_are_split_in_order() {
    let r = request("multi_via.sip");
    let vias: Vec<_> = r
        .headers
        .iter()
        .filter_map(|h| match h {
            rsip::Header::Via(v) => Some(message::ViaInfo::parse(v.value()).unwrap()),
            _ => None,
        })
        .collect();
    assert_eq!(vias.len(), 3);
    assert_eq!(vias[0].host, "proxy2.example.com");
    assert_eq!(vias[1].host, "proxy1.example.com");
    assert_eq!(vias[2].rport(), Some(5060));
    // A response copies all three, in order.
    let resp = message::response(&r, 200, None, Some("x"));
    let resp_vias: Vec<_> = resp
        .headers
        .iter()
        .filter_map(|h| match h {
            rsip::Header::Via(v) => Some(v.value().to_string()),
            _ => None,
        })
        .collect();
    assert_eq!(resp_vias.len(), 3);
    assert!(resp_vias[0].contains("proxy2"));
}

#[test]
fn ipv6_via_and_rport() {
    let mut r = request("ipv6_via.sip");
    let via = message::top_via(&r).unwrap();
    assert_eq!(via.host, "2001:db8::9:1");
    assert_eq!(via.port, Some(5060));
    let source: SocketAddr = "[2001:db8::9:1]:40000".parse().unwrap();
    assert!(message::apply_received(&mut r, source));
    let via = message::top_via(&r).unwrap();
    // rport was requested, so received is added even though the host matches.
    assert_eq!(via.received(), Some(source.ip()));
    assert_eq!(via.rport(), Some(40000));
    let resp = message::response(&r, 200, None, Some("t"));
    assert_eq!(message::response_destination(&resp), Some(source));
}

#[test]
fn weird_but_legal_spacing() {
    let r = request("weird_spacing.sip");
    assert_eq!(r.method, rsip::Method::Invite);
    assert_eq!(message::cseq(&r), Some((9, rsip::Method::Invite)));
    assert_eq!(message::call_id(&r), Some("wsinv.ndaksdj@192.0.2.1"));
    let via = message::top_via(&r).unwrap();
    assert_eq!(via.host, "192.0.2.2");
    assert_eq!(via.branch(), Some("390skdjuw"));
    let vias = r
        .headers
        .iter()
        .filter(|h| matches!(h, rsip::Header::Via(_)))
        .count();
    assert_eq!(vias, 3);
    assert_eq!(r.body.len(), 129);
}

#[test]
fn responses_parse() {
    let m = message::parse(&fixture("challenge_401.sip")).unwrap();
    let rsip::SipMessage::Response(resp) = &m else {
        panic!("not a response")
    };
    assert_eq!(resp.status_code.code(), 401);
    assert_eq!(message::method(&m), Some(rsip::Method::Register));
    assert!(resp.www_authenticate_header().is_some());
    assert_eq!(
        message::response_destination(resp),
        Some("198.51.100.20:5060".parse().unwrap())
    );
    let m = message::parse(&fixture("trying_100.sip")).unwrap();
    let rsip::SipMessage::Response(resp) = &m else {
        panic!("not a response")
    };
    assert_eq!(
        message::response_destination(resp),
        Some("198.51.100.9:40123".parse().unwrap())
    );
}

#[test]
fn apply_received_rules() {
    // Host differs from source and no rport: received only.
    let mut r = request("sipp_invite.sip");
    message::apply_received(&mut r, "10.9.8.7:5061".parse().unwrap());
    let via = message::top_via(&r).unwrap();
    assert_eq!(via.received(), Some("10.9.8.7".parse().unwrap()));
    assert_eq!(via.param("rport"), None);
    // Host equals source and no rport: untouched.
    let mut r = request("sipp_invite.sip");
    let before = r.to_string();
    message::apply_received(&mut r, "127.0.1.1:5061".parse().unwrap());
    assert_eq!(r.to_string(), before);
    // Domain sent-by without received gives no destination (no DNS here).
    let r = request("compact_invite.sip");
    let resp = message::response(&r, 200, None, None);
    assert_eq!(message::response_destination(&resp), None);
}

#[test]
fn response_construction() {
    let r = request("baresip_invite.sip");
    let mut resp = message::response(&r, 486, Some("Busy Here"), Some("abc"));
    assert_eq!(resp.status_code.code(), 486);
    assert_eq!(message::to_tag(&resp).as_deref(), Some("abc"));
    assert_eq!(message::from_tag(&resp), message::from_tag(&r));
    assert_eq!(message::call_id(&resp), message::call_id(&r));
    assert_eq!(message::cseq(&resp), message::cseq(&r));
    message::set_contact(&mut resp, "sip:hotline@203.0.113.5:5060");
    message::set_body(&mut resp, "application/sdp", b"v=0\r\n".to_vec());
    message::set_to_tag(&mut resp, "other");
    assert_eq!(
        message::to_tag(&resp).as_deref(),
        Some("abc"),
        "tag is not replaced"
    );
    let text = resp.to_string();
    assert!(text.starts_with("SIP/2.0 486 Busy Here\r\n"), "{text}");
    assert!(text.contains("Server: Hotline/"));
    assert!(text.contains("Contact: <sip:hotline@203.0.113.5:5060>"));
    assert!(text.contains("Content-Length: 5"));
    // What we send parses back.
    let back = message::parse(text.as_bytes()).unwrap();
    assert_eq!(back.body(), b"v=0\r\n");
}

#[test]
fn default_reason_phrases_are_rfc_text() {
    let r = request("sipp_invite.sip");
    let text = message::response(&r, 183, None, Some("t")).to_string();
    assert!(
        text.starts_with("SIP/2.0 183 Session Progress\r\n"),
        "{text}"
    );
    let text = message::response(&r, 100, None, None).to_string();
    assert!(text.starts_with("SIP/2.0 100 Trying\r\n"));
    assert_eq!(
        message::to_tag(&message::response(&r, 100, None, None)),
        None
    );
}

#[test]
fn identifiers() {
    let b = message::new_branch();
    assert!(b.starts_with("z9hG4bK") && b.len() > 7 + 8);
    assert_ne!(message::new_branch(), b);
    assert_ne!(message::new_tag(), message::new_tag());
    assert!(message::new_call_id("h.example").ends_with("@h.example"));
}

fn replace(name: &str, from: &str, to: &str) -> Vec<u8> {
    let s = String::from_utf8(fixture(name)).unwrap();
    assert!(s.contains(from), "{from}");
    s.replacen(from, to, 1).into_bytes()
}

fn assert_400(bytes: &[u8], expect: ParseError) {
    let err = message::parse(bytes).unwrap_err();
    assert_eq!(err, expect);
    let reply = message::reject(bytes, err.status_code(), &err.to_string()).expect("answerable");
    // The reply copies the request's (possibly broken) CSeq verbatim, so
    // read it with rsip alone rather than our strict checks.
    let reply = rsip::SipMessage::try_from(&reply[..]).expect("our 400 is well-formed");
    let rsip::SipMessage::Response(resp) = reply else {
        panic!("not a response")
    };
    assert_eq!(resp.status_code.code(), err.status_code());
    assert!(message::to_tag(&resp).is_some());
    let text = resp.to_string();
    assert!(text.contains("Warning: 399 hotline \""), "{text}");
}

#[test]
fn malformed_requests_get_400() {
    assert_400(
        &replace("sipp_invite.sip", "CSeq: 1 INVITE", "CSeq: 1 BYE"),
        ParseError::CSeqMismatch {
            request: "INVITE".into(),
            cseq: "BYE".into(),
        },
    );
    assert_400(
        &replace("sipp_invite.sip", "CSeq: 1 INVITE", "CSeq: x INVITE"),
        ParseError::BadHeader("CSeq"),
    );
    let s = String::from_utf8(fixture("sipp_invite.sip")).unwrap();
    let truncated = &s.as_bytes()[..s.len() - 10];
    assert_400(
        truncated,
        ParseError::BodyTruncated {
            declared: 129,
            present: 119,
        },
    );
    assert_400(
        &replace(
            "options.sip",
            "Accept: application/sdp",
            "this is no header",
        ),
        ParseError::BadHeaderLine,
    );
    assert_400(
        &replace(
            "options.sip",
            "Via: SIP/2.0/UDP 198.51.100.7:5060;",
            "Via: SIP/2.0/UDP 198.51.100.7:99999;",
        ),
        ParseError::BadHeader("Via"),
    );
    assert_400(
        &replace(
            "options.sip",
            "Content-Length: 0",
            "Content-Length: 0\r\nContent-Length: 5",
        ),
        ParseError::BadHeader("Content-Length"),
    );
}

#[test]
fn unknown_method_gets_501() {
    let bytes = replace("options.sip", "OPTIONS", "FROBNICATE");
    let bytes = String::from_utf8(bytes)
        .unwrap()
        .replace("102 OPTIONS", "102 FROBNICATE");
    assert_400(
        bytes.as_bytes(),
        ParseError::UnsupportedMethod("FROBNICATE".into()),
    );
}

#[test]
fn unanswerable_messages_are_dropped() {
    // No Call-ID: cannot address a response.
    let no_call_id = replace(
        "options.sip",
        "Call-ID: 3c26700d4a0d8f1a@198.51.100.7\r\n",
        "",
    );
    assert_eq!(
        message::parse(&no_call_id).unwrap_err(),
        ParseError::MissingHeader("Call-ID")
    );
    assert_eq!(message::bad_request(&no_call_id, "missing Call-ID"), None);
    // A malformed ACK is never answered (§17.2.3).
    let ack = replace("ack.sip", "CSeq: 1 ACK", "CSeq: 1 INVITE");
    assert!(message::parse(&ack).is_err());
    assert_eq!(message::bad_request(&ack, "bad"), None);
    // A malformed response is dropped.
    let resp = replace("ringing_180.sip", "CSeq: 101 INVITE", "CSeq: banana");
    assert!(message::parse(&resp).is_err());
    assert_eq!(message::bad_request(&resp, "bad"), None);
    // Garbage.
    assert_eq!(
        message::parse(b"hello\r\n\r\n").unwrap_err(),
        ParseError::BadStartLine
    );
    assert_eq!(message::bad_request(b"hello\r\n\r\n", "bad"), None);
    assert_eq!(message::parse(b"").unwrap_err(), ParseError::Unterminated);
    // Oversize.
    let big = vec![b'a'; message::MAX_MESSAGE_SIZE + 1];
    assert_eq!(
        message::parse(&big).unwrap_err(),
        ParseError::TooLarge(big.len())
    );
}

#[test]
fn udp_body_longer_than_content_length_is_truncated() {
    let mut bytes = fixture("sipp_invite.sip");
    bytes.extend_from_slice(b"trailing junk");
    let m = message::parse(&bytes).unwrap();
    assert!(m.body().ends_with(b"PCMU/8000\r\n"));
}

#[test]
fn missing_max_forwards_is_accepted() {
    let m = message::parse(&replace("options.sip", "Max-Forwards: 70\r\n", "")).unwrap();
    assert!(m.max_forwards_header().is_err());
}

#[test]
fn bare_lf_line_endings_are_accepted() {
    let s = String::from_utf8(fixture("register.sip"))
        .unwrap()
        .replace("\r\n", "\n");
    let m = message::parse(s.as_bytes()).unwrap();
    assert_eq!(message::cseq(&m), Some((1, rsip::Method::Register)));
}

/// Known limitation: rsip 0.4 splits URI host and port at the first `:`,
/// so an IPv6 Request-URI cannot be represented; such a request is
/// answered with a 400 rather than mis-parsed.
#[test]
fn ipv6_request_uri_is_refused_cleanly() {
    let b = replace(
        "ipv6_via.sip",
        "OPTIONS sip:hotline@example.com SIP/2.0",
        "OPTIONS sip:hotline@[2001:db8::1]:5060 SIP/2.0",
    );
    let err = message::parse(&b).unwrap_err();
    assert!(matches!(err, ParseError::Rsip(_)), "{err:?}");
    assert!(message::bad_request(&b, &err.to_string()).is_some());
}
