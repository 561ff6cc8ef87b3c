//! The REGISTER client against scripted registrars, faster than realtime:
//! time is `t0 + Duration`.

use hotline_sip::auth::{
    ChallengeKind, Credentials, DigestServer, RejectReason, ServerConfig, Verification,
};
use hotline_sip::message;
use hotline_sip::register::{
    BACKOFF_BASE, BACKOFF_CAP, Registration, RegistrationConfig, RegistrationState, granted_expires,
};
use proptest::prelude::*;
use rsip::headers::UntypedHeader;
use rsip::{Header, Method, Request, Response};
use std::time::{Duration, Instant};

const CONTACT: &str = "sip:hotline@192.0.2.10:5060";

fn config() -> RegistrationConfig {
    let mut c = RegistrationConfig::new(
        "sip:carrier.example.net",
        "15551234567@carrier.example.net",
        CONTACT,
        "SIP/2.0/UDP 192.0.2.10:5060;rport",
    );
    c.jitter_seed = 7;
    c
}

fn secs(s: u64) -> Duration {
    Duration::from_secs(s)
}

/// Sends the request "over the wire": serialised and parsed back, so what
/// the client builds is also what a peer would read.
fn wire(req: Request) -> Request {
    match message::parse(req.to_string().as_bytes()) {
        Ok(rsip::SipMessage::Request(r)) => r,
        other => panic!("REGISTER does not round-trip: {other:?}"),
    }
}

fn poll(reg: &mut Registration, now: Instant) -> Request {
    wire(reg.poll_request(now).expect("a REGISTER is due"))
}

fn reply(req: &Request, code: u16, extra: Vec<Header>) -> Response {
    let mut r = message::response(req, code, None, Some("regtag"));
    for h in extra {
        r.headers.push(h);
    }
    r
}

fn values(req: &Request, pick: fn(&Header) -> Option<String>) -> Vec<String> {
    req.headers.iter().filter_map(pick).collect()
}

fn contact(req: &Request) -> String {
    values(req, |h| match h {
        Header::Contact(c) => Some(c.value().to_owned()),
        _ => None,
    })
    .join(",")
}

fn expires(req: &Request) -> String {
    values(req, |h| match h {
        Header::Expires(c) => Some(c.value().to_owned()),
        _ => None,
    })
    .join(",")
}

fn from(req: &Request) -> String {
    values(req, |h| match h {
        Header::From(c) => Some(c.value().to_owned()),
        _ => None,
    })
    .join(",")
}

fn to(req: &Request) -> String {
    values(req, |h| match h {
        Header::To(c) => Some(c.value().to_owned()),
        _ => None,
    })
    .join(",")
}

fn cseq(req: &Request) -> u32 {
    let (n, m) = message::cseq(req).expect("CSeq");
    assert_eq!(m, Method::Register);
    n
}

fn ok_with_contact(req: &Request, exp: u32) -> Response {
    reply(
        req,
        200,
        vec![rsip::headers::Contact::new(format!("<{CONTACT}>;expires={exp}")).into()],
    )
}

#[test]
fn happy_path_then_refresh_at_half_time() {
    let t0 = Instant::now();
    let mut reg = Registration::new(config(), t0).unwrap();
    assert_eq!(reg.poll_timeout(), Some(t0));
    let r1 = poll(&mut reg, t0);
    assert_eq!(r1.method, Method::Register);
    assert_eq!(r1.uri.to_string(), "sip:carrier.example.net");
    assert_eq!(cseq(&r1), 1);
    assert_eq!(message::call_id(&r1), Some(reg.call_id()));
    let from_tag = message::from_tag(&r1).expect("From tag");
    assert!(from(&r1).starts_with("<sip:15551234567@carrier.example.net>"));
    assert_eq!(to(&r1), "<sip:15551234567@carrier.example.net>");
    assert_eq!(message::to_tag(&r1), None);
    assert_eq!(contact(&r1), format!("<{CONTACT}>;expires=3600"));
    assert_eq!(expires(&r1), "3600");
    let b1 = message::top_via_branch(&r1).unwrap();
    assert!(b1.starts_with("z9hG4bK"));
    assert_eq!(reg.state(), RegistrationState::Registering);

    // One transaction at a time.
    assert!(reg.poll_request(t0).is_none());
    assert_eq!(reg.poll_timeout(), None);

    // A provisional response and a stray one change nothing.
    assert!(reg.on_response(&reply(&r1, 100, vec![]), t0));
    let mut stray = ok_with_contact(&r1, 3600);
    stray.headers.retain(|h| !matches!(h, Header::CSeq(_)));
    stray
        .headers
        .push(rsip::headers::CSeq::new("99 REGISTER").into());
    assert!(!reg.on_response(&stray, t0));
    assert_eq!(reg.state(), RegistrationState::Registering);

    let t1 = t0 + secs(1);
    assert!(reg.on_response(&ok_with_contact(&r1, 3600), t1));
    assert_eq!(
        reg.state(),
        RegistrationState::Registered {
            until: t1 + secs(3600)
        }
    );
    assert_eq!(reg.poll_timeout(), Some(t1 + secs(1800)));
    assert!(reg.poll_request(t1 + secs(1799)).is_none());

    let r2 = poll(&mut reg, t1 + secs(1800));
    assert_eq!(cseq(&r2), 2);
    assert_eq!(message::call_id(&r2), Some(reg.call_id()));
    assert_eq!(message::from_tag(&r2), Some(from_tag));
    assert_ne!(message::top_via_branch(&r2).unwrap(), b1);
    // Still bound while the refresh is under way.
    assert!(matches!(reg.state(), RegistrationState::Registered { .. }));
    let t2 = t1 + secs(1801);
    assert!(reg.on_response(&ok_with_contact(&r2, 3600), t2));
    assert_eq!(
        reg.state(),
        RegistrationState::Registered {
            until: t2 + secs(3600)
        }
    );
}

#[test]
fn registrar_grants_shorter_expiry() {
    let t0 = Instant::now();
    let mut reg = Registration::new(config(), t0).unwrap();
    let r1 = poll(&mut reg, t0);
    // Another device's binding and the Expires header must not win over
    // our Contact's own expires; the registrar reformats our URI.
    let resp = reply(
        &r1,
        200,
        vec![
            rsip::headers::Contact::new(
                "<sip:desk@198.51.100.7>;expires=999, <SIP:hotline@192.0.2.10;transport=udp>;expires=60",
            )
            .into(),
            rsip::headers::Expires::new("3600").into(),
        ],
    );
    assert!(reg.on_response(&resp, t0));
    assert_eq!(
        reg.state(),
        RegistrationState::Registered {
            until: t0 + secs(60)
        }
    );
    assert_eq!(reg.poll_timeout(), Some(t0 + secs(30)));

    // Only an Expires header.
    let r2 = poll(&mut reg, t0 + secs(30));
    let resp = reply(&r2, 200, vec![rsip::headers::Expires::new("120").into()]);
    assert!(reg.on_response(&resp, t0 + secs(30)));
    assert_eq!(reg.poll_timeout(), Some(t0 + secs(90)));

    // Very short: refreshed 5 s before expiry, not at half-time.
    let r3 = poll(&mut reg, t0 + secs(90));
    assert!(reg.on_response(&ok_with_contact(&r3, 8), t0 + secs(90)));
    assert_eq!(
        reg.state(),
        RegistrationState::Registered {
            until: t0 + secs(98)
        }
    );
    assert_eq!(reg.poll_timeout(), Some(t0 + secs(93)));
    // The request keeps asking for what was configured.
    assert_eq!(expires(&poll(&mut reg, t0 + secs(93))), "3600");
}

fn registrar(now: Instant) -> DigestServer {
    let mut s = DigestServer::new(ServerConfig::new("carrier.example.net"), b"secret", now);
    s.add_user("15551234567", "s3cret");
    s
}

fn challenge(server: &DigestServer, req: &Request, now: Instant) -> Response {
    reply(
        req,
        401,
        server.challenge_headers(ChallengeKind::Www, now, false),
    )
}

#[test]
fn digest_challenge_answered_and_verified_on_every_refresh() {
    let t0 = Instant::now();
    let mut server = registrar(t0);
    let mut cfg = config();
    cfg.credentials = Some(Credentials {
        username: "15551234567".into(),
        password: "s3cret".into(),
    });
    let mut reg = Registration::new(cfg, t0).unwrap();
    let mut now = t0;
    let mut expected_cseq = 1;
    for round in 0..3 {
        let r = poll(&mut reg, now);
        assert_eq!(cseq(&r), expected_cseq);
        assert_eq!(
            server.verify(&r, ChallengeKind::Www, now),
            Verification::Rejected(RejectReason::NoCredentials)
        );
        assert!(reg.on_response(&challenge(&server, &r, now), now));
        // The answer is ready at once.
        assert_eq!(reg.poll_timeout(), Some(now));
        let answer = poll(&mut reg, now);
        assert_eq!(cseq(&answer), expected_cseq + 1);
        assert_eq!(message::call_id(&answer), message::call_id(&r));
        assert_eq!(message::from_tag(&answer), message::from_tag(&r));
        assert_ne!(
            message::top_via_branch(&answer),
            message::top_via_branch(&r)
        );
        assert_eq!(
            server.verify(&answer, ChallengeKind::Www, now),
            Verification::Authorized {
                username: "15551234567".into()
            },
            "round {round}"
        );
        assert!(reg.on_response(&ok_with_contact(&answer, 600), now));
        assert_eq!(
            reg.state(),
            RegistrationState::Registered {
                until: now + secs(600)
            }
        );
        now += secs(300);
        assert_eq!(reg.poll_timeout(), Some(now));
        expected_cseq += 2;
    }
}

#[test]
fn wrong_password_gives_up_after_one_answer() {
    let t0 = Instant::now();
    let mut server = registrar(t0);
    let mut cfg = config();
    cfg.credentials = Some(Credentials {
        username: "15551234567".into(),
        password: "wrong".into(),
    });
    let mut reg = Registration::new(cfg, t0).unwrap();
    let r = poll(&mut reg, t0);
    assert!(reg.on_response(&challenge(&server, &r, t0), t0));
    let answer = poll(&mut reg, t0);
    assert_eq!(
        server.verify(&answer, ChallengeKind::Www, t0),
        Verification::Rejected(RejectReason::BadResponse)
    );
    assert!(reg.on_response(&challenge(&server, &answer, t0), t0));
    assert_eq!(
        reg.state(),
        RegistrationState::Failed {
            code: 401,
            retry_at: None
        }
    );
    assert_eq!(reg.poll_timeout(), None);
    assert!(reg.poll_request(t0 + secs(86_400)).is_none());

    // Fixed credentials restart it.
    reg.register(
        Some(Credentials {
            username: "15551234567".into(),
            password: "s3cret".into(),
        }),
        t0 + secs(10),
    );
    let r = poll(&mut reg, t0 + secs(10));
    assert!(reg.on_response(&challenge(&server, &r, t0 + secs(10)), t0 + secs(10)));
    let answer = poll(&mut reg, t0 + secs(10));
    assert!(matches!(
        server.verify(&answer, ChallengeKind::Www, t0 + secs(10)),
        Verification::Authorized { .. }
    ));
}

#[test]
fn challenge_without_credentials_gives_up() {
    let t0 = Instant::now();
    let server = registrar(t0);
    let mut reg = Registration::new(config(), t0).unwrap();
    let r = poll(&mut reg, t0);
    let mut resp = reply(
        &r,
        407,
        server.challenge_headers(ChallengeKind::Proxy, t0, false),
    );
    resp.status_code = rsip::StatusCode::Other(407, "Proxy Authentication Required".into());
    assert!(reg.on_response(&resp, t0));
    assert_eq!(
        reg.state(),
        RegistrationState::Failed {
            code: 407,
            retry_at: None
        }
    );
}

#[test]
fn interval_too_brief_retries_with_min_expires() {
    let t0 = Instant::now();
    let mut cfg = config();
    cfg.expires = 60;
    let mut reg = Registration::new(cfg, t0).unwrap();
    let r1 = poll(&mut reg, t0);
    assert_eq!(expires(&r1), "60");
    let too_brief = reply(
        &r1,
        423,
        vec![rsip::headers::MinExpires::new("1800").into()],
    );
    assert!(reg.on_response(&too_brief, t0));
    assert_eq!(reg.asked_expires(), 1800);
    let r2 = poll(&mut reg, t0);
    assert_eq!(cseq(&r2), 2);
    assert_eq!(expires(&r2), "1800");
    assert_eq!(contact(&r2), format!("<{CONTACT}>;expires=1800"));
    assert!(reg.on_response(&ok_with_contact(&r2, 1800), t0));
    assert_eq!(
        reg.state(),
        RegistrationState::Registered {
            until: t0 + secs(1800)
        }
    );

    // A 423 that does not raise the interval (or lacks Min-Expires) is a
    // failure, not a loop.
    let r3 = poll(&mut reg, t0 + secs(900));
    let again = reply(
        &r3,
        423,
        vec![rsip::headers::MinExpires::new("1800").into()],
    );
    assert!(reg.on_response(&again, t0 + secs(900)));
    assert!(matches!(
        reg.state(),
        RegistrationState::Failed {
            code: 423,
            retry_at: Some(_)
        }
    ));
    assert!(reg.poll_request(t0 + secs(901)).is_none());
}

/// Drives `n` failures (alternating 503s and timeouts) and returns the
/// delays between them.
fn failure_delays(seed: u64, n: usize) -> Vec<Duration> {
    let t0 = Instant::now();
    let mut cfg = config();
    cfg.jitter_seed = seed;
    let mut reg = Registration::new(cfg, t0).unwrap();
    let mut now = t0;
    let mut delays = Vec::new();
    for i in 0..n {
        let r = poll(&mut reg, now);
        if i % 2 == 0 {
            assert!(reg.on_response(&reply(&r, 503, vec![]), now));
        } else {
            reg.on_timeout(now);
        }
        let RegistrationState::Failed {
            code,
            retry_at: Some(at),
        } = reg.state()
        else {
            panic!("not backing off: {:?}", reg.state());
        };
        assert_eq!(code, if i % 2 == 0 { 503 } else { 408 });
        assert_eq!(reg.poll_timeout(), Some(at));
        assert!(reg.poll_request(at - Duration::from_millis(1)).is_none());
        delays.push(at - now);
        now = at;
    }
    delays
}

#[test]
fn failures_back_off_exponentially_with_jitter() {
    let delays = failure_delays(7, 9);
    let nominal = [30u64, 60, 120, 240, 480, 900, 900, 900, 900];
    for (d, n) in delays.iter().zip(nominal) {
        let n = secs(n);
        assert!(*d <= n && *d >= n * 4 / 5, "{d:?} outside [0.8, 1]·{n:?}");
    }
    assert!(
        delays
            .iter()
            .all(|d| *d <= BACKOFF_CAP && *d >= BACKOFF_BASE * 4 / 5)
    );
    // Deterministic per seed, different across seeds.
    assert_eq!(delays, failure_delays(7, 9));
    assert_ne!(delays, failure_delays(8, 9));
}

#[test]
fn success_resets_back_off_and_retry_after_is_honoured() {
    let t0 = Instant::now();
    let mut reg = Registration::new(config(), t0).unwrap();
    let mut now = t0;
    for _ in 0..3 {
        let r = poll(&mut reg, now);
        reg.on_timeout(now);
        now = reg.poll_timeout().unwrap();
        drop(r);
    }
    let r = poll(&mut reg, now);
    assert!(reg.on_response(&ok_with_contact(&r, 3600), now));
    let now = now + secs(1800);
    let r = poll(&mut reg, now);
    assert!(reg.on_response(&reply(&r, 500, vec![]), now));
    let at = reg.poll_timeout().unwrap();
    assert!(
        at - now <= BACKOFF_BASE,
        "back-off not reset: {:?}",
        at - now
    );

    let r = poll(&mut reg, at);
    let busy = reply(
        &r,
        503,
        vec![rsip::headers::RetryAfter::new("300 (maintenance)").into()],
    );
    assert!(reg.on_response(&busy, at));
    assert_eq!(reg.poll_timeout(), Some(at + secs(300)));
}

#[test]
fn unregister_sends_expires_zero() {
    let t0 = Instant::now();
    let mut reg = Registration::new(config(), t0).unwrap();
    let r1 = poll(&mut reg, t0);
    assert!(reg.on_response(&ok_with_contact(&r1, 3600), t0));
    reg.unregister();
    assert_eq!(reg.poll_timeout(), Some(t0));
    let now = t0 + secs(5);
    let r2 = poll(&mut reg, now);
    assert_eq!(cseq(&r2), 2);
    assert_eq!(message::call_id(&r2), message::call_id(&r1));
    assert_eq!(contact(&r2), format!("<{CONTACT}>;expires=0"));
    assert_eq!(expires(&r2), "0");
    assert!(reg.on_response(&reply(&r2, 200, vec![]), now));
    assert_eq!(reg.state(), RegistrationState::Unregistered);
    assert_eq!(reg.poll_timeout(), None);
    assert!(reg.poll_request(now + secs(86_400)).is_none());
}

#[test]
fn unregister_waits_for_the_register_under_way_and_answers_challenges() {
    let t0 = Instant::now();
    let mut server = registrar(t0);
    let mut cfg = config();
    cfg.credentials = Some(Credentials {
        username: "15551234567".into(),
        password: "s3cret".into(),
    });
    let mut reg = Registration::new(cfg, t0).unwrap();
    let r1 = poll(&mut reg, t0);
    reg.unregister();
    assert!(reg.poll_request(t0).is_none());
    assert!(reg.on_response(&ok_with_contact(&r1, 3600), t0));
    let r2 = poll(&mut reg, t0);
    assert_eq!(expires(&r2), "0");
    assert!(reg.on_response(&challenge(&server, &r2, t0), t0));
    let r3 = poll(&mut reg, t0);
    assert_eq!(expires(&r3), "0");
    assert!(matches!(
        server.verify(&r3, ChallengeKind::Www, t0),
        Verification::Authorized { .. }
    ));
    assert!(reg.on_response(&reply(&r3, 200, vec![]), t0));
    assert_eq!(reg.state(), RegistrationState::Unregistered);

    // Before anything was sent, unregister just stops.
    let mut idle = Registration::new(config(), t0).unwrap();
    idle.unregister();
    assert_eq!(idle.poll_timeout(), None);
    assert!(idle.poll_request(t0 + secs(60)).is_none());
}

#[test]
fn outbound_proxy_adds_a_loose_route() {
    let t0 = Instant::now();
    let mut cfg = config();
    cfg.outbound_proxy = Some("sip:proxy.example.net:5070".into());
    let mut reg = Registration::new(cfg, t0).unwrap();
    assert_eq!(reg.next_hop(), "sip:proxy.example.net:5070");
    let r = poll(&mut reg, t0);
    assert_eq!(r.uri.to_string(), "sip:carrier.example.net");
    let routes = values(&r, |h| match h {
        Header::Route(c) => Some(c.value().to_owned()),
        _ => None,
    });
    assert_eq!(routes, vec!["<sip:proxy.example.net:5070;lr>".to_string()]);
}

#[test]
fn invalid_registrar_is_an_error() {
    let mut cfg = config();
    cfg.registrar = "not a uri at all".into();
    assert!(Registration::new(cfg, Instant::now()).is_err());
}

proptest! {
    #[test]
    fn arbitrary_response_headers_never_panic(
        code in prop::sample::select(vec![200u16, 401, 407, 423, 503]),
        contact_v in ".{0,80}",
        expires_v in ".{0,20}",
        min_v in ".{0,20}",
        retry_v in ".{0,20}",
        auth_v in ".{0,80}",
    ) {
        let t0 = Instant::now();
        let mut cfg = config();
        cfg.credentials = Some(Credentials { username: "u".into(), password: "p".into() });
        let mut reg = Registration::new(cfg, t0).unwrap();
        let r = reg.poll_request(t0).unwrap();
        let resp = reply(&r, code, vec![
            rsip::headers::Contact::new(contact_v).into(),
            rsip::headers::Expires::new(expires_v).into(),
            rsip::headers::MinExpires::new(min_v).into(),
            rsip::headers::RetryAfter::new(retry_v).into(),
            rsip::headers::WwwAuthenticate::new(auth_v.clone()).into(),
            rsip::headers::ProxyAuthenticate::new(auth_v).into(),
        ]);
        let _ = granted_expires(&resp, CONTACT);
        prop_assert!(reg.on_response(&resp, t0));
        // Whatever happened, the client either waits, is done, or has a
        // request ready; it never spins on an empty schedule.
        if let Some(at) = reg.poll_timeout() {
            prop_assert!(at >= t0);
            let _ = reg.poll_request(at);
        }
    }
}

#[test]
fn failed_refresh_with_pending_unregister_still_removes_and_failed_unregister_stops() {
    let t0 = Instant::now();
    let mut reg = Registration::new(config(), t0).unwrap();
    let r1 = poll(&mut reg, t0);
    assert!(reg.on_response(&ok_with_contact(&r1, 60), t0));
    let r2 = poll(&mut reg, t0 + secs(30));
    reg.unregister();
    assert!(reg.on_response(&reply(&r2, 500, vec![]), t0 + secs(30)));
    // The old binding may still stand: the removal goes out at once.
    let r3 = poll(&mut reg, t0 + secs(30));
    assert_eq!(expires(&r3), "0");
    reg.on_timeout(t0 + secs(62));
    assert_eq!(
        reg.state(),
        RegistrationState::Failed {
            code: 408,
            retry_at: None
        }
    );
    assert_eq!(reg.poll_timeout(), None);
}
