//! Digest authentication: published vectors, an independent SIP
//! computation, client↔server round trips and the refusal paths.

use hotline_sip::auth::{
    Algorithm, AuthError, Challenge, ChallengeKind, Credentials, DigestClient, DigestInput,
    DigestParams, DigestServer, Qop, QopInputs, RejectReason, ServerConfig, Verification,
    compute_response, select_challenges,
};
use md5::Md5;
use proptest::prelude::*;
use rsip::Header;
use rsip::headers::UntypedHeader;
use sha2::{Digest, Sha256};
use std::time::{Duration, Instant};

fn input<'a>(alg: Algorithm, realm: &'a str, nonce: &'a str, cnonce: &'a str) -> DigestInput<'a> {
    DigestInput {
        algorithm: alg,
        username: "Mufasa",
        realm,
        password: "Circle Of Life",
        method: "GET",
        uri: "/dir/index.html",
        nonce,
        qop: Some(QopInputs {
            qop: Qop::Auth,
            nc: 1,
            cnonce,
        }),
        body: b"",
    }
}

#[test]
fn rfc2617_section_3_5_md5_vector() {
    let i = input(
        Algorithm::Md5,
        "testrealm@host.com",
        "dcd98b7102dd2f0e8b11d0f600bfb0c093",
        "0a4f113b",
    );
    assert_eq!(compute_response(&i), "6629fae49393a05397450978507c4ef1");
}

#[test]
fn rfc7616_section_3_9_1_md5_and_sha256_vectors() {
    let nonce = "7ypf/xlj9XXwfDPEoM4URrv/xwf94BcCAzFZH4GiTo0v";
    let cnonce = "f2/wE4q74E6zIJEtWaHKaf5wv/H5QzzpXusqGemxURZJ";
    let mut md5 = input(Algorithm::Md5, "http-auth@example.org", nonce, cnonce);
    md5.password = "Circle of Life";
    assert_eq!(compute_response(&md5), "8ca523f5e9506fed4657c9700eebdbec");
    let sha = DigestInput {
        algorithm: Algorithm::Sha256,
        ..md5
    };
    assert_eq!(
        compute_response(&sha),
        "753927fa0e85d155564e2e272a28d1802ca10daf4496794697cf8db5856cb6c1"
    );
}

fn md5_hex(s: &str) -> String {
    Md5::digest(s.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}
fn sha256_hex(s: &str) -> String {
    Sha256::digest(s.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

const INVITE: &str = "INVITE sip:+15551234567@carrier.example.net SIP/2.0\r\n\
Via: SIP/2.0/UDP 192.0.2.10:5060;branch=z9hG4bKorig1;rport\r\n\
Max-Forwards: 70\r\n\
From: \"Hotline\" <sip:hotline@pbx.example.com>;tag=fromtag1\r\n\
To: <sip:+15551234567@carrier.example.net>\r\n\
Call-ID: a84b4c76e66710@pbx.example.com\r\n\
CSeq: 1 INVITE\r\n\
Contact: <sip:hotline@192.0.2.10:5060>\r\n\
Content-Length: 0\r\n\r\n";

fn invite() -> rsip::Request {
    rsip::Request::try_from(INVITE).expect("test INVITE parses")
}

fn challenge_response(kind: u16, headers: &[&str]) -> rsip::Response {
    let name = if kind == 401 {
        "WWW-Authenticate"
    } else {
        "Proxy-Authenticate"
    };
    let reason = if kind == 401 {
        "Unauthorized"
    } else {
        "Proxy Authentication Required"
    };
    let mut text = format!(
        "SIP/2.0 {kind} {reason}\r\n\
Via: SIP/2.0/UDP 192.0.2.10:5060;branch=z9hG4bKorig1;rport=5060\r\n\
From: \"Hotline\" <sip:hotline@pbx.example.com>;tag=fromtag1\r\n\
To: <sip:+15551234567@carrier.example.net>;tag=srv99\r\n\
Call-ID: a84b4c76e66710@pbx.example.com\r\n\
CSeq: 1 INVITE\r\n"
    );
    for h in headers {
        text.push_str(&format!("{name}: {h}\r\n"));
    }
    text.push_str("Content-Length: 0\r\n\r\n");
    rsip::Response::try_from(text.as_str()).expect("test response parses")
}

fn header_values(req: &rsip::Request, pick: fn(&Header) -> Option<&str>) -> Vec<&str> {
    req.headers.iter().filter_map(pick).collect()
}

fn authorization(h: &Header) -> Option<&str> {
    match h {
        Header::Authorization(a) => Some(a.value()),
        _ => None,
    }
}
fn proxy_authorization(h: &Header) -> Option<&str> {
    match h {
        Header::ProxyAuthorization(a) => Some(a.value()),
        _ => None,
    }
}

fn creds(user: &str, pass: &str) -> Credentials {
    Credentials {
        username: user.into(),
        password: pass.into(),
    }
}

#[test]
fn sip_invite_answer_matches_an_independent_computation() {
    let resp = challenge_response(
        407,
        &[
            r#"Digest realm="carrier.example.net", nonce="4f2a9c1e", opaque="xyz", qop="auth", algorithm=MD5"#,
        ],
    );
    let mut client = DigestClient::new(creds("trunk01", "s3cr3t"));
    let challenges = select_challenges(&resp).unwrap();
    let value = client.authorization_with_cnonce(
        &challenges[0],
        &rsip::Method::Invite,
        "sip:+15551234567@carrier.example.net",
        b"",
        "abc123",
    );
    let ha1 = md5_hex("trunk01:carrier.example.net:s3cr3t");
    let ha2 = md5_hex("INVITE:sip:+15551234567@carrier.example.net");
    let expected = md5_hex(&format!("{ha1}:4f2a9c1e:00000001:abc123:auth:{ha2}"));
    let p = DigestParams::parse(&value).unwrap();
    assert_eq!(p.get("response"), Some(expected.as_str()));
    assert_eq!(p.get("username"), Some("trunk01"));
    assert_eq!(p.get("uri"), Some("sip:+15551234567@carrier.example.net"));
    assert_eq!(p.get("nc"), Some("00000001"));
    assert_eq!(p.get("qop"), Some("auth"));
    assert_eq!(p.get("opaque"), Some("xyz"));
    assert_eq!(p.get("algorithm"), Some("MD5"));
    // qop, nc and algorithm are tokens, never quoted (RFC 3261 §25.1).
    assert!(value.contains("qop=auth,") && value.contains("nc=00000001"));

    // The same nonce again counts up.
    let again = client.authorization_with_cnonce(
        &challenges[0],
        &rsip::Method::Invite,
        "sip:+15551234567@carrier.example.net",
        b"",
        "abc123",
    );
    assert_eq!(
        DigestParams::parse(&again).unwrap().get("nc"),
        Some("00000002")
    );
}

#[test]
fn sip_sha256_sess_and_legacy_no_qop_match_independent_computations() {
    let sess = Challenge::parse(
        r#"Digest realm="r.example", nonce="n1", qop="auth", algorithm=SHA-256-sess"#,
        ChallengeKind::Www,
    )
    .unwrap();
    let mut client = DigestClient::new(creds("alice", "pw"));
    let v = client.authorization_with_cnonce(
        &sess,
        &rsip::Method::Register,
        "sip:r.example",
        b"",
        "cn",
    );
    let ha1 = sha256_hex(&format!("{}:n1:cn", sha256_hex("alice:r.example:pw")));
    let ha2 = sha256_hex("REGISTER:sip:r.example");
    let expected = sha256_hex(&format!("{ha1}:n1:00000001:cn:auth:{ha2}"));
    assert_eq!(
        DigestParams::parse(&v).unwrap().get("response"),
        Some(expected.as_str())
    );

    let legacy = Challenge::parse(
        r#"Digest realm="r.example", nonce="n2""#,
        ChallengeKind::Www,
    )
    .unwrap();
    assert_eq!(legacy.algorithm, Algorithm::Md5);
    let v = client.authorization_with_cnonce(
        &legacy,
        &rsip::Method::Register,
        "sip:r.example",
        b"",
        "cn",
    );
    let expected = md5_hex(&format!(
        "{}:n2:{}",
        md5_hex("alice:r.example:pw"),
        md5_hex("REGISTER:sip:r.example")
    ));
    let p = DigestParams::parse(&v).unwrap();
    assert_eq!(p.get("response"), Some(expected.as_str()));
    assert_eq!(p.get("nc"), None);
    assert_eq!(p.get("cnonce"), None);
}

#[test]
fn strongest_algorithm_is_picked_per_realm() {
    let resp = challenge_response(
        401,
        &[
            r#"Digest realm="a.example", nonce="n-md5", algorithm=MD5, qop="auth""#,
            r#"Digest realm="a.example", nonce="n-512", algorithm=SHA-512-256, qop="auth""#,
            r#"Digest realm="a.example", nonce="n-sha", algorithm=SHA-256, qop="auth""#,
            r#"Basic realm="a.example""#,
            r#"Digest realm="b.example", nonce="n-b", qop="auth""#,
        ],
    );
    let chosen = select_challenges(&resp).unwrap();
    assert_eq!(chosen.len(), 2);
    assert_eq!(chosen[0].realm, "a.example");
    assert_eq!(chosen[0].algorithm, Algorithm::Sha256);
    assert_eq!(chosen[0].nonce, "n-sha");
    assert_eq!(chosen[1].algorithm, Algorithm::Md5);
    assert_eq!(
        select_challenges(&challenge_response(401, &[r#"Basic realm="x""#])),
        Err(AuthError::UnsupportedScheme("Basic".into()))
    );
}

#[test]
fn resent_request_keeps_dialog_identifiers_and_bumps_cseq() {
    let req = invite();
    let resp = challenge_response(
        407,
        &[r#"Digest realm="carrier.example.net", nonce="abc", qop="auth""#],
    );
    let mut client = DigestClient::new(creds("trunk01", "s3cr3t"));
    let out = client.authenticate(&req, &resp).unwrap();
    let text = out.to_string();
    assert!(text.contains("CSeq: 2 INVITE"), "{text}");
    assert!(text.contains("Call-ID: a84b4c76e66710@pbx.example.com"));
    assert!(text.contains(";tag=fromtag1"));
    assert!(!text.contains("z9hG4bKorig1"), "branch must change: {text}");
    assert!(text.contains(";branch=z9hG4bK"));
    assert!(text.contains(";rport"), "other Via params kept: {text}");
    assert_eq!(out.uri, req.uri);
    let found = header_values(&out, proxy_authorization);
    assert_eq!(found.len(), 1);
    assert!(header_values(&out, authorization).is_empty());
    // Round-trips through the wire format.
    let reparsed = rsip::Request::try_from(text.as_str()).unwrap();
    assert_eq!(header_values(&reparsed, proxy_authorization), found);
}

#[test]
fn loop_guard_gives_up_on_a_second_non_stale_challenge() {
    let resp = challenge_response(401, &[r#"Digest realm="r", nonce="n1", qop="auth""#]);
    let mut client = DigestClient::new(creds("u", "wrong"));
    let second = client.authenticate(&invite(), &resp).unwrap();
    let resp2 = challenge_response(401, &[r#"Digest realm="r", nonce="n2", qop="auth""#]);
    assert_eq!(
        client.authenticate(&second, &resp2),
        Err(AuthError::Rejected { realm: "r".into() })
    );
    // stale=true is answered again, a bounded number of times.
    let stale = challenge_response(
        401,
        &[r#"Digest realm="r", nonce="n3", qop="auth", stale=TRUE"#],
    );
    let third = client.authenticate(&second, &stale).unwrap();
    assert_eq!(
        header_values(&third, authorization).len(),
        1,
        "old answer replaced"
    );
    let fourth = client.authenticate(&third, &stale).unwrap();
    assert_eq!(
        client.authenticate(&fourth, &stale),
        Err(AuthError::Rejected { realm: "r".into() })
    );
}

#[test]
fn proxy_credentials_survive_a_later_401() {
    let mut client = DigestClient::new(creds("u", "p"));
    let after_407 = client
        .authenticate(
            &invite(),
            &challenge_response(407, &[r#"Digest realm="proxy", nonce="p1", qop="auth""#]),
        )
        .unwrap();
    let after_401 = client
        .authenticate(
            &after_407,
            &challenge_response(401, &[r#"Digest realm="uas", nonce="u1", qop="auth""#]),
        )
        .unwrap();
    assert_eq!(header_values(&after_401, proxy_authorization).len(), 1);
    assert_eq!(header_values(&after_401, authorization).len(), 1);
    assert!(after_401.to_string().contains("CSeq: 3 INVITE"));
}

fn server(now: Instant) -> DigestServer {
    let mut s = DigestServer::new(
        ServerConfig::new("hotline.example.com"),
        b"test secret",
        now,
    );
    s.add_user("alice", "wonderland");
    s
}

fn register() -> rsip::Request {
    rsip::Request::try_from(
        "REGISTER sip:hotline.example.com SIP/2.0\r\n\
Via: SIP/2.0/UDP 198.51.100.7:5060;branch=z9hG4bKreg1\r\n\
Max-Forwards: 70\r\n\
From: <sip:alice@hotline.example.com>;tag=r1\r\n\
To: <sip:alice@hotline.example.com>\r\n\
Call-ID: reg-1@198.51.100.7\r\n\
CSeq: 1 REGISTER\r\n\
Contact: <sip:alice@198.51.100.7:5060>\r\n\
Expires: 3600\r\n\
Content-Length: 0\r\n\r\n",
    )
    .unwrap()
}

fn challenge_from(server: &DigestServer, now: Instant, stale: bool) -> rsip::Response {
    let mut resp = challenge_response(401, &[]);
    for h in server.challenge_headers(ChallengeKind::Www, now, stale) {
        resp.headers.push(h);
    }
    resp
}

fn with_authorization(value: String) -> rsip::Request {
    let mut r = register();
    r.headers
        .push(rsip::headers::Authorization::new(value).into());
    r
}

#[test]
fn round_trip_client_server_prefers_sha256() {
    let t0 = Instant::now();
    let mut srv = server(t0);
    let req = register();
    assert_eq!(
        srv.verify(&req, ChallengeKind::Www, t0),
        Verification::Rejected(RejectReason::NoCredentials)
    );
    let resp = challenge_from(&srv, t0, false);
    let mut client = DigestClient::new(creds("alice", "wonderland"));
    let retry = client.authenticate(&req, &resp).unwrap();
    let found = header_values(&retry, authorization);
    assert!(found[0].contains("algorithm=SHA-256"), "{}", found[0]);
    let t1 = t0 + Duration::from_secs(2);
    assert_eq!(
        srv.verify(&retry, ChallengeKind::Www, t1),
        Verification::Authorized {
            username: "alice".into()
        }
    );
    // Replaying the same request (same nc) is refused.
    assert_eq!(
        srv.verify(&retry, ChallengeKind::Www, t1),
        Verification::Rejected(RejectReason::Replay)
    );
    // The next request on the same nonce (nc 2) is accepted.
    let challenge = &select_challenges(&resp).unwrap()[0];
    let next = with_authorization(client.authorization(
        challenge,
        &rsip::Method::Register,
        "sip:hotline.example.com",
        b"",
    ));
    assert!(
        DigestParams::parse(header_values(&next, authorization)[0])
            .unwrap()
            .get("nc")
            .is_some_and(|nc| nc == "00000002")
    );
    assert!(matches!(
        srv.verify(&next, ChallengeKind::Www, t1),
        Verification::Authorized { .. }
    ));
}

#[test]
fn md5_only_client_and_md5_server() {
    let t0 = Instant::now();
    let mut cfg = ServerConfig::new("hotline.example.com");
    cfg.algorithms = vec![Algorithm::Md5];
    let mut srv = DigestServer::new(cfg, b"k", t0);
    srv.add_user("alice", "wonderland");
    let resp = challenge_from(&srv, t0, false);
    let retry = DigestClient::new(creds("alice", "wonderland"))
        .authenticate(&register(), &resp)
        .unwrap();
    assert!(header_values(&retry, authorization)[0].contains("algorithm=MD5"));
    assert!(matches!(
        srv.verify(&retry, ChallengeKind::Www, t0),
        Verification::Authorized { .. }
    ));
    // An algorithm the server did not offer is refused even if the math is right.
    let mut sha_only = DigestServer::new(
        ServerConfig {
            algorithms: vec![Algorithm::Sha256],
            ..ServerConfig::new("hotline.example.com")
        },
        b"k",
        t0,
    );
    sha_only.add_user("alice", "wonderland");
    assert_eq!(
        sha_only.verify(&retry, ChallengeKind::Www, t0),
        Verification::Rejected(RejectReason::AlgorithmNotAllowed)
    );
}

#[test]
fn expired_nonce_with_right_password_is_stale_wrong_password_is_not() {
    let t0 = Instant::now();
    let mut srv = server(t0);
    let resp = challenge_from(&srv, t0, false);
    let good = DigestClient::new(creds("alice", "wonderland"))
        .authenticate(&register(), &resp)
        .unwrap();
    let bad = DigestClient::new(creds("alice", "looking-glass"))
        .authenticate(&register(), &resp)
        .unwrap();
    let later = t0 + Duration::from_secs(301);
    assert_eq!(
        srv.verify(&good, ChallengeKind::Www, later),
        Verification::Stale
    );
    assert_eq!(
        srv.verify(&bad, ChallengeKind::Www, later),
        Verification::Rejected(RejectReason::BadResponse)
    );
    assert_eq!(
        srv.verify(&bad, ChallengeKind::Www, t0),
        Verification::Rejected(RejectReason::BadResponse)
    );
    // The stale challenge says so, and the client answers it.
    let stale = challenge_from(&srv, later, true);
    assert!(select_challenges(&stale).unwrap()[0].stale);
    let mut client = DigestClient::new(creds("alice", "wonderland"));
    let again = client.authenticate(&good, &stale).unwrap();
    assert!(matches!(
        srv.verify(&again, ChallengeKind::Www, later),
        Verification::Authorized { .. }
    ));
}

#[test]
fn forged_nonce_unknown_user_and_uri_mismatch_are_refused() {
    let t0 = Instant::now();
    let mut srv = server(t0);
    // A nonce from another server (other secret) with the right password: stale.
    let other = DigestServer::new(ServerConfig::new("hotline.example.com"), b"other", t0);
    let resp = challenge_from(&other, t0, false);
    let mut alice = DigestClient::new(creds("alice", "wonderland"));
    let req = alice.authenticate(&register(), &resp).unwrap();
    assert_eq!(
        srv.verify(&req, ChallengeKind::Www, t0),
        Verification::Stale
    );

    let resp = challenge_from(&srv, t0, false);
    let mallory = DigestClient::new(creds("mallory", "x"))
        .authenticate(&register(), &resp)
        .unwrap();
    assert_eq!(
        srv.verify(&mallory, ChallengeKind::Www, t0),
        Verification::Rejected(RejectReason::UnknownUser)
    );

    let mut moved = alice.authenticate(&register(), &resp).unwrap();
    moved.uri = rsip::Uri::try_from("sip:elsewhere.example.com").unwrap();
    assert_eq!(
        srv.verify(&moved, ChallengeKind::Www, t0),
        Verification::Rejected(RejectReason::UriMismatch)
    );
    // Credentials in the other header kind are not ours.
    assert_eq!(
        srv.verify(&moved, ChallengeKind::Proxy, t0),
        Verification::Rejected(RejectReason::NoCredentials)
    );
}

#[test]
fn nc_window_accepts_reordering_once_and_memory_stays_bounded() {
    let t0 = Instant::now();
    let mut cfg = ServerConfig::new("hotline.example.com");
    cfg.max_tracked_nonces = 4;
    let mut srv = DigestServer::new(cfg, b"k", t0);
    srv.add_user("alice", "wonderland");
    let mut client = DigestClient::new(creds("alice", "wonderland"));
    let resp = challenge_from(&srv, t0, false);
    let challenge = select_challenges(&resp).unwrap()[0].clone();
    let reqs: Vec<_> = (0..3)
        .map(|_| {
            with_authorization(client.authorization(
                &challenge,
                &rsip::Method::Register,
                "sip:hotline.example.com",
                b"",
            ))
        })
        .collect();
    // nc 3 arrives before 1 and 2: each is accepted once.
    for i in [2, 0, 1] {
        assert!(matches!(
            srv.verify(&reqs[i], ChallengeKind::Www, t0),
            Verification::Authorized { .. }
        ));
    }
    for r in &reqs {
        assert_eq!(
            srv.verify(r, ChallengeKind::Www, t0),
            Verification::Rejected(RejectReason::Replay)
        );
    }
    // Many nonces in use: tracked state stays bounded, and once the first
    // nonce is evicted its old requests are still not accepted.
    for s in 1..=10u64 {
        let t = t0 + Duration::from_secs(s);
        let c = select_challenges(&challenge_from(&srv, t, false)).unwrap()[0].clone();
        let r = with_authorization(client.authorization(
            &c,
            &rsip::Method::Register,
            "sip:hotline.example.com",
            b"",
        ));
        assert!(matches!(
            srv.verify(&r, ChallengeKind::Www, t),
            Verification::Authorized { .. }
        ));
        assert!(srv.tracked_nonces() <= 4);
    }
    assert_eq!(
        srv.verify(&reqs[0], ChallengeKind::Www, t0 + Duration::from_secs(11)),
        Verification::Stale
    );
}

#[test]
fn no_qop_answers_follow_the_config() {
    let t0 = Instant::now();
    let legacy_challenge = |srv: &DigestServer| {
        let nonce = srv.nonce(t0);
        Challenge::parse(
            &format!(r#"Digest realm="hotline.example.com", nonce="{nonce}", algorithm=MD5"#),
            ChallengeKind::Www,
        )
        .unwrap()
    };
    let mut strict = server(t0);
    let mut client = DigestClient::new(creds("alice", "wonderland"));
    let c = legacy_challenge(&strict);
    let req = with_authorization(client.authorization(
        &c,
        &rsip::Method::Register,
        "sip:hotline.example.com",
        b"",
    ));
    assert_eq!(
        strict.verify(&req, ChallengeKind::Www, t0),
        Verification::Rejected(RejectReason::QopNotAllowed)
    );
    let mut cfg = ServerConfig::new("hotline.example.com");
    cfg.algorithms = vec![Algorithm::Md5];
    cfg.allow_no_qop = true;
    let mut legacy = DigestServer::new(cfg, b"test secret", t0);
    legacy.add_user("alice", "wonderland");
    assert!(matches!(
        legacy.verify(&req, ChallengeKind::Www, t0),
        Verification::Authorized { .. }
    ));
}

#[test]
fn parser_handles_escapes_case_and_spacing() {
    let p = DigestParams::parse(
        "digest  REALM = \"a \\\"quoted\\\" realm\" ,, Nonce=abc,qop=\"auth,auth-int\"  ,stale=FALSE",
    )
    .unwrap();
    assert_eq!(p.get("realm"), Some("a \"quoted\" realm"));
    assert_eq!(p.get("nonce"), Some("abc"));
    let c = Challenge::parse(
        "Digest realm=\"x\", nonce=\"y\", qop=\"auth-int, auth\", algorithm=sha-256",
        ChallengeKind::Proxy,
    )
    .unwrap();
    assert_eq!(c.algorithm, Algorithm::Sha256);
    assert_eq!(c.chosen_qop(), Some(Qop::Auth));
    assert!(!c.stale);
    assert!(DigestParams::parse("Digest realm=\"unterminated").is_err());
    assert!(DigestParams::parse("Digest realm").is_err());
    assert_eq!(
        Challenge::parse("Digest realm=\"x\"", ChallengeKind::Www),
        Err(AuthError::MissingParam("nonce"))
    );
    assert_eq!(
        Challenge::parse(
            "Digest realm=\"x\", nonce=\"y\", qop=\"auth-conf\"",
            ChallengeKind::Www
        ),
        Err(AuthError::UnsupportedQop)
    );
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn challenge_parsing_never_panics(s in ".{0,200}") {
        let _ = DigestParams::parse(&s);
        let _ = Challenge::parse(&s, ChallengeKind::Www);
        let _ = Challenge::parse(&format!("Digest {s}"), ChallengeKind::Proxy);
    }

    #[test]
    fn structured_garbage_never_panics(
        parts in proptest::collection::vec(
            ("[a-zA-Z=\" ,\\\\-]{0,12}", "[a-zA-Z0-9=\" ,\\\\/:@.-]{0,20}"), 0..8)
    ) {
        let body: Vec<String> = parts.iter().map(|(k, v)| format!("{k}={v}")).collect();
        let _ = Challenge::parse(&format!("Digest {}", body.join(",")), ChallengeKind::Www);
    }

    #[test]
    fn server_verify_never_panics_on_garbage_credentials(s in "[^\r\n]{0,200}", nc in "[0-9a-fA-Fx]{0,12}") {
        let t0 = Instant::now();
        let mut srv = server(t0);
        let nonce = srv.nonce(t0);
        for value in [
            s.clone(),
            format!("Digest {s}"),
            format!(r#"Digest username="alice", realm="hotline.example.com", nonce="{nonce}", uri="sip:hotline.example.com", response="{s}", qop=auth, nc={nc}, cnonce="c""#),
            format!(r#"Digest username="alice", realm="hotline.example.com", nonce="{s}", uri="{s}", response="00", algorithm={s}"#),
        ] {
            let v = srv.verify(&with_authorization(value), ChallengeKind::Www, t0);
            let authorized = matches!(v, Verification::Authorized { .. });
            prop_assert!(!authorized, "garbage authorized");
        }
    }
}
