//! SIP INFO DTMF bodies and REFER/NOTIFY blind-transfer helpers, on bodies
//! and messages in the shapes Asterisk, FreeSWITCH and Cisco send.

use std::time::Duration;

use hotline_sip::message::{
    self, DtmfInfo, DtmfInfoError, EventHeader, ReferError, SipFrag, SubscriptionState,
    TransferStatus, dtmf_info_from_request, dtmf_relay_body, parse_dtmf_info, parse_refer_notify,
    parse_sipfrag, refer_headers, refer_to_number, refer_to_uri, set_dtmf_info_body,
};
use proptest::prelude::*;

fn request(bytes: &str) -> rsip::Request {
    match message::parse(bytes.as_bytes()).expect("fixture parses") {
        rsip::SipMessage::Request(r) => r,
        rsip::SipMessage::Response(_) => panic!("fixture is a request"),
    }
}

fn info(digit: char, ms: u64) -> DtmfInfo {
    DtmfInfo {
        digit,
        duration: Some(Duration::from_millis(ms)),
    }
}

// ---- INFO DTMF ----

#[test]
fn cisco_and_asterisk_dtmf_relay() {
    // Cisco / Asterisk: CRLF, exact case.
    assert_eq!(
        parse_dtmf_info("application/dtmf-relay", b"Signal=5\r\nDuration=160\r\n"),
        Ok(info('5', 160))
    );
    // Asterisk sends `Signal=#` and FreeSWITCH spaces after `=`.
    assert_eq!(
        parse_dtmf_info("application/dtmf-relay", b"Signal= #\r\nDuration= 250\r\n"),
        Ok(info('#', 250))
    );
    // Lower-case keys, LF only, no trailing newline, parameters on the type.
    assert_eq!(
        parse_dtmf_info(
            "Application/DTMF-Relay; charset=utf-8",
            b"signal=*\nduration=100"
        ),
        Ok(info('*', 100))
    );
    // RFC 4733 event codes for * and # from some gateways, lower-case a.
    assert_eq!(
        parse_dtmf_info("application/dtmf-relay", b"Signal=10\r\nDuration=80\r\n"),
        Ok(info('*', 80))
    );
    assert_eq!(
        parse_dtmf_info("application/dtmf-relay", b"Signal=11\r\n"),
        Ok(DtmfInfo {
            digit: '#',
            duration: None
        })
    );
    assert_eq!(
        parse_dtmf_info("application/dtmf-relay", b"Signal=a\r\nDuration=160\r\n"),
        Ok(info('A', 160))
    );
    // Unknown keys are skipped; a broken Duration does not lose the digit.
    assert_eq!(
        parse_dtmf_info(
            "application/dtmf-relay",
            b"Foo=bar\r\nSignal=0\r\nDuration=long\r\n"
        ),
        Ok(DtmfInfo {
            digit: '0',
            duration: None
        })
    );
}

#[test]
fn bare_application_dtmf() {
    assert_eq!(
        parse_dtmf_info("application/dtmf", b"7"),
        Ok(DtmfInfo {
            digit: '7',
            duration: None
        })
    );
    assert_eq!(
        parse_dtmf_info("application/dtmf", b" d\r\n"),
        Ok(DtmfInfo {
            digit: 'D',
            duration: None
        })
    );
    // Bare digit under the dtmf-relay type.
    assert_eq!(
        parse_dtmf_info("application/dtmf-relay", b"#\r\n"),
        Ok(DtmfInfo {
            digit: '#',
            duration: None
        })
    );
    // dtmf-relay form under the plain type.
    assert_eq!(
        parse_dtmf_info("application/dtmf", b"Signal=9\r\nDuration=200\r\n"),
        Ok(info('9', 200))
    );
}

#[test]
fn dtmf_errors() {
    assert!(matches!(
        parse_dtmf_info("application/media_control+xml", b"<xml/>"),
        Err(DtmfInfoError::UnsupportedContentType(t)) if t == "application/media_control+xml"
    ));
    assert_eq!(
        parse_dtmf_info("application/dtmf-relay", b"Duration=160\r\n"),
        Err(DtmfInfoError::MissingSignal)
    );
    assert_eq!(
        parse_dtmf_info("application/dtmf", b"\r\n"),
        Err(DtmfInfoError::MissingSignal)
    );
    assert_eq!(
        parse_dtmf_info("application/dtmf-relay", b"Signal=16\r\n"),
        Err(DtmfInfoError::InvalidSignal("16".into()))
    );
    assert_eq!(
        parse_dtmf_info("application/dtmf-relay", b"Signal=E\r\n"),
        Err(DtmfInfoError::InvalidSignal("E".into()))
    );
    assert_eq!(
        parse_dtmf_info("application/dtmf-relay", b"Signal=\xff\r\n"),
        Err(DtmfInfoError::NotText)
    );
    assert_eq!(
        parse_dtmf_info("application/dtmf-relay", &[b'a'; 2000]),
        Err(DtmfInfoError::BodyTooLarge(2000))
    );
}

#[test]
fn info_request_from_asterisk() {
    let raw = "INFO sip:hotline@10.0.0.2:5060 SIP/2.0\r\n\
Via: SIP/2.0/UDP 10.0.0.1:5060;branch=z9hG4bK5a1c2d3e;rport\r\n\
Max-Forwards: 70\r\n\
From: <sip:+4930123456@10.0.0.1>;tag=as58f4201b\r\n\
To: <sip:hotline@10.0.0.2>;tag=abc123\r\n\
Contact: <sip:+4930123456@10.0.0.1:5060>\r\n\
Call-ID: 3848276298220188511@10.0.0.1\r\n\
CSeq: 103 INFO\r\n\
User-Agent: Asterisk PBX 18.10.0\r\n\
Content-Type: application/dtmf-relay\r\n\
Content-Length: 24\r\n\
\r\n\
Signal=1\r\n\
Duration=100\r\n";
    let req = request(raw);
    assert_eq!(dtmf_info_from_request(&req), Ok(info('1', 100)));

    // Compact `c:` Content-Type, as some Cisco gear sends.
    let raw = raw.replace("Content-Type:", "c:");
    assert_eq!(dtmf_info_from_request(&request(&raw)), Ok(info('1', 100)));
}

#[test]
fn builds_dtmf_relay_bodies_that_parse_back() {
    assert_eq!(
        dtmf_relay_body('5', Duration::from_millis(160)).unwrap(),
        b"Signal=5\r\nDuration=160\r\n"
    );
    assert_eq!(
        dtmf_relay_body('b', Duration::from_millis(90)).unwrap(),
        b"Signal=B\r\nDuration=90\r\n"
    );
    assert_eq!(
        dtmf_relay_body('x', Duration::from_millis(90)),
        Err(DtmfInfoError::InvalidSignal("x".into()))
    );
    for d in "0123456789*#ABCD".chars() {
        let body = dtmf_relay_body(d, Duration::from_millis(250)).unwrap();
        assert_eq!(
            parse_dtmf_info("application/dtmf-relay", &body),
            Ok(info(d, 250))
        );
    }

    let mut req = rsip::Request {
        method: rsip::Method::Info,
        uri: rsip::Uri::try_from("sip:bob@example.com").unwrap(),
        version: rsip::Version::V2,
        headers: Default::default(),
        body: Vec::new(),
    };
    set_dtmf_info_body(&mut req, '#', Duration::from_millis(120)).unwrap();
    let text = req.to_string();
    assert!(text.contains("Content-Type: application/dtmf-relay\r\n"));
    assert!(text.contains("Content-Length: 24\r\n"));
    assert!(text.ends_with("\r\n\r\nSignal=#\r\nDuration=120\r\n"));
    assert_eq!(dtmf_info_from_request(&req), Ok(info('#', 120)));
}

// ---- REFER ----

#[test]
fn refer_to_values() {
    assert_eq!(
        refer_to_uri("sip:bob@example.com").unwrap(),
        "<sip:bob@example.com>"
    );
    assert_eq!(
        refer_to_uri("<sips:queue@pbx.example.com;transport=tls>").unwrap(),
        "<sips:queue@pbx.example.com;transport=tls>"
    );
    assert_eq!(
        refer_to_uri("tel:+4930123456").unwrap(),
        "<tel:+4930123456>"
    );
    for bad in [
        "bob@example.com",
        "http://x",
        "sip:",
        "sip:a b@c",
        "sip:a@b>\r\nX: y",
        "",
    ] {
        assert!(
            matches!(refer_to_uri(bad), Err(ReferError::InvalidUri(_))),
            "{bad:?}"
        );
    }

    assert_eq!(
        refer_to_number("+49 30 123456", "carrier.example").unwrap(),
        "<sip:+4930123456@carrier.example;user=phone>"
    );
    assert_eq!(
        refer_to_number("0044 20 7946 0000", "10.0.0.1:5060").unwrap(),
        "<sip:+442079460000@10.0.0.1:5060;user=phone>"
    );
    assert!(matches!(
        refer_to_number("030123456", "carrier.example"),
        Err(ReferError::InvalidNumber(_))
    ));
    assert!(matches!(
        refer_to_number("+4930123456", "bad domain"),
        Err(ReferError::InvalidDomain(_))
    ));
    assert!(matches!(
        refer_to_number("+4930123456", ""),
        Err(ReferError::InvalidDomain(_))
    ));
}

#[test]
fn refer_headers_serialize_into_a_request() {
    let headers = refer_headers(
        "sip:+4930123456@carrier.example;user=phone",
        Some("sip:hotline@10.0.0.2"),
    )
    .unwrap();
    let mut req = rsip::Request {
        method: rsip::Method::Refer,
        uri: rsip::Uri::try_from("sip:caller@10.0.0.1").unwrap(),
        version: rsip::Version::V2,
        headers: Default::default(),
        body: Vec::new(),
    };
    for h in headers {
        req.headers.push(h);
    }
    let text = req.to_string();
    assert!(text.contains("Refer-To: <sip:+4930123456@carrier.example;user=phone>\r\n"));
    assert!(text.contains("Referred-By: <sip:hotline@10.0.0.2>\r\n"));

    assert_eq!(refer_headers("sip:bob@example.com", None).unwrap().len(), 1);
    assert!(matches!(
        refer_headers("sip:bob@example.com", Some("nope")),
        Err(ReferError::InvalidUri(_))
    ));
}

// ---- NOTIFY ----

#[test]
fn event_and_subscription_state_headers() {
    assert_eq!(
        EventHeader::parse("refer;id=93809824"),
        Some(EventHeader {
            package: "refer".into(),
            id: Some("93809824".into())
        })
    );
    assert_eq!(
        EventHeader::parse("Refer ; id = 7").unwrap().refer_cseq(),
        Some(7)
    );
    assert_eq!(EventHeader::parse("refer").unwrap().id, None);
    assert_eq!(EventHeader::parse(" ;id=1"), None);

    assert_eq!(
        SubscriptionState::parse("active;expires=60"),
        Ok(SubscriptionState::Active { expires: Some(60) })
    );
    assert_eq!(
        SubscriptionState::parse("pending"),
        Ok(SubscriptionState::Pending { expires: None })
    );
    let t = SubscriptionState::parse("terminated;reason=noresource").unwrap();
    assert_eq!(
        t,
        SubscriptionState::Terminated {
            reason: Some("noresource".into()),
            retry_after: None
        }
    );
    assert!(t.is_terminated());
    assert_eq!(
        SubscriptionState::parse("Terminated; reason=Timeout; retry-after=30"),
        Ok(SubscriptionState::Terminated {
            reason: Some("timeout".into()),
            retry_after: Some(30)
        })
    );
    assert_eq!(
        SubscriptionState::parse("waiting"),
        Ok(SubscriptionState::Other("waiting".into()))
    );
    assert!(matches!(
        SubscriptionState::parse(";expires=3"),
        Err(ReferError::InvalidSubscriptionState(_))
    ));
}

#[test]
fn sipfrag_bodies() {
    let frag = |code, reason: &str| SipFrag {
        code,
        reason: reason.into(),
    };
    // Asterisk: status line only, CRLF, sometimes no final newline.
    assert_eq!(
        parse_sipfrag(b"SIP/2.0 100 Trying\r\n"),
        Ok(frag(100, "Trying"))
    );
    assert_eq!(parse_sipfrag(b"SIP/2.0 200 OK"), Ok(frag(200, "OK")));
    // FreeSWITCH: LF, trailing headers are ignored.
    assert_eq!(
        parse_sipfrag(b"SIP/2.0 180 Ringing\nContact: <sip:bob@10.0.0.3>\n"),
        Ok(frag(180, "Ringing"))
    );
    // Cisco: full response head in the fragment.
    let cisco = b"SIP/2.0 486 Busy here\r\nVia: SIP/2.0/UDP 10.0.0.4:5060;branch=z9hG4bK1\r\nFrom: <sip:a@b>;tag=1\r\nTo: <sip:c@d>;tag=2\r\nCall-ID: x@y\r\nCSeq: 101 INVITE\r\nContent-Length: 0\r\n\r\n";
    let f = parse_sipfrag(cisco).unwrap();
    assert_eq!(f, frag(486, "Busy here"));
    assert!(f.is_final() && !f.is_success());
    // Liberal forms: leading blank lines, extra spaces, lower case, no reason.
    assert_eq!(
        parse_sipfrag(b"\r\nsip/2.0   183   Session Progress  \r\n"),
        Ok(frag(183, "Session Progress"))
    );
    assert_eq!(parse_sipfrag(b"SIP/2.0 503"), Ok(frag(503, "")));
    assert!(!frag(180, "").is_final());
    assert!(frag(200, "").is_success());

    for bad in [
        &b""[..],
        b"\r\n\r\n",
        b"INVITE sip:bob@example.com SIP/2.0\r\n",
        b"SIP/2.0 99 Low\r\n",
        b"SIP/2.0 700 High\r\n",
        b"SIP/2.0 2000 OK\r\n",
        b"SIP/2.0 OK\r\n",
        b"SIP/1.0 200 OK\r\n",
    ] {
        assert!(
            matches!(parse_sipfrag(bad), Err(ReferError::InvalidSipFrag(_))),
            "{:?}",
            String::from_utf8_lossy(bad)
        );
    }
}

fn notify(event: &str, state: &str, content_type: Option<&str>, body: &str) -> String {
    let ct = content_type
        .map(|c| format!("Content-Type: {c}\r\n"))
        .unwrap_or_default();
    format!(
        "NOTIFY sip:hotline@10.0.0.2:5060 SIP/2.0\r\n\
Via: SIP/2.0/UDP 10.0.0.1:5060;branch=z9hG4bK0a1b2c3d;rport\r\n\
Max-Forwards: 70\r\n\
From: <sip:caller@10.0.0.1>;tag=as1\r\n\
To: <sip:hotline@10.0.0.2>;tag=hl1\r\n\
Contact: <sip:caller@10.0.0.1:5060>\r\n\
Call-ID: c1@10.0.0.1\r\n\
CSeq: 104 NOTIFY\r\n\
{event}\
Subscription-State: {state}\r\n\
{ct}\
Content-Length: {}\r\n\
\r\n\
{body}",
        body.len()
    )
}

#[test]
fn asterisk_transfer_sequence() {
    let ev = "Event: refer;id=3\r\n";
    let ct = Some("message/sipfrag;version=2.0");
    let trying = request(&notify(ev, "active", ct, "SIP/2.0 100 Trying\r\n"));
    let n = parse_refer_notify(&trying).unwrap();
    assert_eq!(n.id.as_deref(), Some("3"));
    assert_eq!(n.state, SubscriptionState::Active { expires: None });
    assert!(matches!(
        n.status,
        TransferStatus::Progressing(SipFrag { code: 100, .. })
    ));

    let ringing = request(&notify(
        ev,
        "active;expires=60",
        ct,
        "SIP/2.0 180 Ringing\r\n",
    ));
    assert!(matches!(
        parse_refer_notify(&ringing).unwrap().status,
        TransferStatus::Progressing(SipFrag { code: 180, .. })
    ));

    let ok = request(&notify(
        ev,
        "terminated;reason=noresource",
        ct,
        "SIP/2.0 200 OK\r\n",
    ));
    let n = parse_refer_notify(&ok).unwrap();
    assert!(n.state.is_terminated());
    assert_eq!(
        n.status,
        TransferStatus::Succeeded(SipFrag {
            code: 200,
            reason: "OK".into()
        })
    );
}

#[test]
fn freeswitch_and_cisco_notifies() {
    // FreeSWITCH: compact `o:` Event, LF body, busy destination.
    let raw = notify(
        "o: refer;id=21\r\n",
        "terminated;reason=noresource",
        Some("message/sipfrag"),
        "SIP/2.0 486 Busy Here\n",
    );
    let n = parse_refer_notify(&request(&raw)).unwrap();
    assert_eq!(n.id.as_deref(), Some("21"));
    assert!(matches!(
        n.status,
        TransferStatus::Failed(SipFrag { code: 486, .. })
    ));

    // Cisco: the subscription is ended while the new call is still ringing.
    let raw = notify(
        "Event: refer\r\n",
        "terminated;reason=noresource",
        Some("message/sipfrag"),
        "SIP/2.0 180 Ringing\r\n",
    );
    let n = parse_refer_notify(&request(&raw)).unwrap();
    assert_eq!(n.id, None);
    assert_eq!(
        n.status,
        TransferStatus::Ended(Some(SipFrag {
            code: 180,
            reason: "Ringing".into()
        }))
    );

    // Terminating NOTIFY without a body.
    let raw = notify(
        "Event: refer;id=5\r\n",
        "terminated;reason=timeout",
        None,
        "",
    );
    assert_eq!(
        parse_refer_notify(&request(&raw)).unwrap().status,
        TransferStatus::Ended(None)
    );
}

#[test]
fn notify_errors() {
    let frag = "SIP/2.0 200 OK\r\n";
    let ct = Some("message/sipfrag");
    let no_event = request(&notify("", "active", ct, frag));
    assert_eq!(
        parse_refer_notify(&no_event),
        Err(ReferError::MissingHeader("Event"))
    );
    let presence = request(&notify("Event: presence\r\n", "active", ct, frag));
    assert_eq!(
        parse_refer_notify(&presence),
        Err(ReferError::NotReferEvent("presence".into()))
    );
    let wrong_type = request(&notify(
        "Event: refer\r\n",
        "active",
        Some("application/pidf+xml"),
        frag,
    ));
    assert_eq!(
        parse_refer_notify(&wrong_type),
        Err(ReferError::UnsupportedContentType(
            "application/pidf+xml".into()
        ))
    );
    let empty_active = request(&notify("Event: refer\r\n", "active", None, ""));
    assert!(matches!(
        parse_refer_notify(&empty_active),
        Err(ReferError::InvalidSipFrag(_))
    ));
    let no_state = request(
        &notify("Event: refer\r\n", "active", ct, frag)
            .replace("Subscription-State: active\r\n", ""),
    );
    assert_eq!(
        parse_refer_notify(&no_state),
        Err(ReferError::MissingHeader("Subscription-State"))
    );
}

// ---- never panic ----

proptest! {
    #[test]
    fn dtmf_parser_never_panics(ct in "\\PC{0,40}", body in proptest::collection::vec(any::<u8>(), 0..200)) {
        let _ = parse_dtmf_info(&ct, &body);
        let _ = parse_dtmf_info("application/dtmf-relay", &body);
        let _ = parse_dtmf_info("application/dtmf", &body);
    }

    #[test]
    fn dtmf_relay_like_text_never_panics(body in "(?i)(signal|duration|x)? *= *[0-9a-z*# ]{0,4}(\r?\n(signal|duration) *=[0-9#*]{0,6}){0,3}") {
        if let Ok(d) = parse_dtmf_info("application/dtmf-relay", body.as_bytes()) {
            prop_assert!("0123456789*#ABCD".contains(d.digit));
        }
    }

    #[test]
    fn sipfrag_parser_never_panics(body in proptest::collection::vec(any::<u8>(), 0..300)) {
        if let Ok(f) = parse_sipfrag(&body) {
            prop_assert!((100..=699).contains(&f.code));
        }
    }

    #[test]
    fn sipfrag_like_text_never_panics(code in 0u32..1000, reason in "\\PC{0,30}", sep in "( |\t|  )") {
        let body = format!("SIP/2.0{sep}{code}{sep}{reason}\r\n");
        let r = parse_sipfrag(body.as_bytes());
        prop_assert_eq!(r.is_ok(), (100..=699).contains(&code));
    }

    #[test]
    fn header_parsers_never_panic(v in "\\PC{0,60}") {
        let _ = EventHeader::parse(&v);
        let _ = SubscriptionState::parse(&v);
        let _ = refer_to_uri(&v);
        let _ = refer_to_number(&v, &v);
        let _ = refer_headers(&v, Some(&v));
    }

    #[test]
    fn refer_to_uri_output_is_one_clean_name_addr(v in "\\PC{0,60}") {
        if let Ok(s) = refer_to_uri(&v) {
            prop_assert!(s.starts_with('<') && s.ends_with('>'));
            prop_assert!(!s[1..s.len() - 1].contains(['<', '>', '\r', '\n', ' ']));
        }
    }
}
