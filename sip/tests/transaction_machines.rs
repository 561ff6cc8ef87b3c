//! The four transaction machines and the layer driven directly, one input at
//! a time, with exact RFC 3261 Table 4 / RFC 6026 timer values.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use hotline_sip::message;
use hotline_sip::transaction::{
    ClientInvite, ClientInviteState, ClientNonInvite, ClientNonInviteState, Config, Destination,
    Input, LayerEvent, ServerInvite, ServerInviteState, ServerNonInvite, ServerNonInviteState,
    Timers, TransactionEvent, TransactionKey, TransactionLayer, TryingPolicy, build_ack,
    build_cancel,
};
use proptest::prelude::*;
use rsip::headers::UntypedHeader;
use rsip::prelude::*;
use rsip::{Request, Response, SipMessage};

const T1: Duration = Duration::from_millis(500);
const T2: Duration = Duration::from_secs(4);
const T4: Duration = Duration::from_secs(5);

fn peer() -> SocketAddr {
    "192.0.2.7:5060".parse().unwrap()
}
fn udp() -> Destination {
    Destination::udp(peer())
}
fn tcp() -> Destination {
    Destination::reliable(peer(), rsip::Transport::Tcp, Some(1))
}

fn request_with(method: &str, branch: &str, extra: &str) -> Request {
    let text = format!(
        "{method} sip:bob@192.0.2.7 SIP/2.0\r\n\
         Via: SIP/2.0/UDP 198.51.100.1:5060;branch={branch}\r\n\
         Max-Forwards: 70\r\n\
         Route: <sip:proxy.example.com;lr>\r\n\
         From: <sip:alice@example.com>;tag=abc\r\n\
         To: <sip:bob@example.com>\r\n\
         Call-ID: cid-1\r\n\
         CSeq: 5 {method}\r\n\
         {extra}Content-Length: 0\r\n\r\n"
    );
    match SipMessage::try_from(text).unwrap() {
        SipMessage::Request(r) => r,
        _ => unreachable!(),
    }
}

fn request(method: &str, branch: &str) -> Request {
    request_with(method, branch, "")
}

fn resp(req: &Request, code: u16) -> Response {
    message::response(req, code, None, Some("srv"))
}

fn codes_sent(transmits: &[SipMessage]) -> Vec<String> {
    transmits
        .iter()
        .map(|m| match m {
            SipMessage::Request(r) => r.method.to_string(),
            SipMessage::Response(r) => r.status_code.code().to_string(),
        })
        .collect()
}

macro_rules! drain {
    ($tx:expr) => {{
        let mut v = Vec::new();
        while let Some(t) = $tx.poll_transmit() {
            v.push(t.message);
        }
        v
    }};
}

macro_rules! events {
    ($tx:expr) => {{
        let mut v = Vec::new();
        while let Some(e) = $tx.poll_event() {
            v.push(e);
        }
        v
    }};
}

#[test]
fn client_invite_timer_a_b_follow_configured_t1() {
    let now = Instant::now();
    let timers = Timers {
        t1: Duration::from_millis(100),
        ..Timers::default()
    };
    let mut tx = ClientInvite::new(request("INVITE", "z9hG4bK1"), udp(), timers, now);
    assert_eq!(codes_sent(&drain!(tx)), vec!["INVITE"]);
    let mut fired = Vec::new();
    let mut last = now;
    for _ in 0..20 {
        let Some(at) = tx.poll_timeout() else { break };
        tx.handle(Input::Timeout, at);
        last = at;
        if !drain!(tx).is_empty() {
            fired.push(at - now);
        }
    }
    let ms = |v: u64| Duration::from_millis(v);
    assert_eq!(
        fired,
        vec![ms(100), ms(300), ms(700), ms(1500), ms(3100), ms(6300)]
    );
    // Timer B = 64·T1 = 6.4 s.
    assert_eq!(last - now, ms(6400));
    assert_eq!(tx.state(), ClientInviteState::Terminated);
    let ev = events!(tx);
    assert!(matches!(&ev[0], TransactionEvent::Timeout(r) if r.status_code.code() == 408));
}

#[test]
fn client_invite_builds_ack_with_route_and_absorbs_final_retransmissions() {
    let now = Instant::now();
    let invite = request("INVITE", "z9hG4bK2");
    let mut tx = ClientInvite::new(invite.clone(), udp(), Timers::default(), now);
    drain!(tx);
    let busy = resp(&invite, 486);
    tx.handle(Input::Message(busy.clone().into()), now + T1);
    let sent = drain!(tx);
    assert_eq!(sent.len(), 1);
    let SipMessage::Request(ack) = &sent[0] else {
        panic!()
    };
    assert_eq!(ack, &build_ack(&invite, &busy).unwrap());
    assert_eq!(
        ack.route_header().unwrap().value(),
        "<sip:proxy.example.com;lr>"
    );
    assert_eq!(
        ack.to_header().unwrap().tag().unwrap().unwrap().to_string(),
        "srv"
    );
    assert_eq!(ack.uri, invite.uri);
    assert_eq!(tx.state(), ClientInviteState::Completed);
    assert_eq!(tx.poll_timeout(), Some(now + T1 + Duration::from_secs(32)));
    // A retransmitted 486: ACK again, TU not told again.
    events!(tx);
    tx.handle(Input::Message(busy.into()), now + 2 * T1);
    assert_eq!(codes_sent(&drain!(tx)), vec!["ACK"]);
    assert!(events!(tx).is_empty());
}

#[test]
fn client_invite_accepted_passes_2xx_retransmissions_to_tu_for_timer_m() {
    let now = Instant::now();
    let invite = request("INVITE", "z9hG4bK3");
    let mut tx = ClientInvite::new(invite.clone(), udp(), Timers::default(), now);
    drain!(tx);
    let ok = resp(&invite, 200);
    tx.handle(Input::Message(ok.clone().into()), now + T1);
    assert_eq!(tx.state(), ClientInviteState::Accepted);
    // The transaction doesn't ACK a 2xx: the TU does (§13.2.2.4).
    assert!(drain!(tx).is_empty());
    assert_eq!(tx.poll_timeout(), Some(now + T1 + 64 * T1));
    tx.handle(Input::Message(ok.into()), now + 2 * T1);
    let ev = events!(tx);
    assert_eq!(ev.len(), 2);
    assert!(
        ev.iter()
            .all(|e| matches!(e, TransactionEvent::Response(r) if r.status_code.code() == 200))
    );
    tx.handle(Input::Timeout, now + T1 + 64 * T1);
    assert_eq!(tx.state(), ClientInviteState::Terminated);
}

#[test]
fn client_invite_reliable_has_only_timer_b_and_zero_timer_d() {
    let now = Instant::now();
    let invite = request("INVITE", "z9hG4bK4");
    let mut tx = ClientInvite::new(invite.clone(), tcp(), Timers::default(), now);
    drain!(tx);
    assert_eq!(tx.poll_timeout(), Some(now + 64 * T1));
    tx.handle(Input::Message(resp(&invite, 603).into()), now + T1);
    assert_eq!(codes_sent(&drain!(tx)), vec!["ACK"]);
    assert_eq!(tx.state(), ClientInviteState::Terminated);
    assert_eq!(tx.poll_timeout(), None);
}

#[test]
fn client_non_invite_timer_e_goes_to_t2_in_proceeding() {
    let now = Instant::now();
    let req = request("BYE", "z9hG4bK5");
    let mut tx = ClientNonInvite::new(req.clone(), udp(), Timers::default(), now);
    drain!(tx);
    assert_eq!(tx.poll_timeout(), Some(now + T1));
    tx.handle(Input::Timeout, now + T1);
    assert_eq!(codes_sent(&drain!(tx)), vec!["BYE"]);
    assert_eq!(tx.poll_timeout(), Some(now + 3 * T1));
    tx.handle(Input::Message(resp(&req, 100).into()), now + T1 + T1 / 5);
    assert_eq!(tx.state(), ClientNonInviteState::Proceeding);
    tx.handle(Input::Timeout, now + 3 * T1);
    drain!(tx);
    // In Proceeding, E fires every T2.
    assert_eq!(tx.poll_timeout(), Some(now + 3 * T1 + T2));
    tx.handle(Input::Message(resp(&req, 200).into()), now + 4 * T1);
    assert_eq!(tx.state(), ClientNonInviteState::Completed);
    assert_eq!(tx.poll_timeout(), Some(now + 4 * T1 + T4));
}

#[test]
fn client_non_invite_reliable_has_only_timer_f_and_zero_timer_k() {
    let now = Instant::now();
    let req = request("OPTIONS", "z9hG4bK6");
    let mut tx = ClientNonInvite::new(req.clone(), tcp(), Timers::default(), now);
    drain!(tx);
    assert_eq!(tx.poll_timeout(), Some(now + 64 * T1));
    tx.handle(Input::Message(resp(&req, 200).into()), now + T1);
    assert_eq!(tx.state(), ClientNonInviteState::Terminated);
    let ev = events!(tx);
    assert_eq!(ev.last(), Some(&TransactionEvent::Terminated));
}

#[test]
fn server_invite_trying_policies() {
    let now = Instant::now();
    let invite = request("INVITE", "z9hG4bK7");
    let mut tx = ServerInvite::new(
        invite.clone(),
        udp(),
        Timers::default(),
        TryingPolicy::Immediately,
        now,
    );
    assert_eq!(codes_sent(&drain!(tx)), vec!["100"]);
    assert!(matches!(
        events!(tx).as_slice(),
        [TransactionEvent::Request(_)]
    ));

    let mut tx = ServerInvite::new(
        invite.clone(),
        udp(),
        Timers::default(),
        TryingPolicy::Never,
        now,
    );
    assert!(drain!(tx).is_empty());
    assert_eq!(tx.poll_timeout(), None);

    let delay = Duration::from_millis(200);
    let mut tx = ServerInvite::new(
        invite.clone(),
        udp(),
        Timers::default(),
        TryingPolicy::After(delay),
        now,
    );
    assert_eq!(tx.poll_timeout(), Some(now + delay));
    // The TU answered in time: no 100.
    tx.handle(Input::Respond(resp(&invite, 180)), now + delay / 2);
    assert_eq!(codes_sent(&drain!(tx)), vec!["180"]);
    assert_eq!(tx.poll_timeout(), None);
    // A retransmitted INVITE gets the 180 again and is not re-delivered.
    events!(tx);
    tx.handle(Input::Message(invite.into()), now + T1);
    assert_eq!(codes_sent(&drain!(tx)), vec!["180"]);
    assert!(events!(tx).is_empty());
}

#[test]
fn server_invite_accepted_absorbs_invites_and_hands_matching_ack_to_tu() {
    let now = Instant::now();
    let invite = request("INVITE", "z9hG4bK8");
    let mut tx = ServerInvite::new(
        invite.clone(),
        udp(),
        Timers::default(),
        TryingPolicy::Never,
        now,
    );
    events!(tx);
    tx.handle(Input::Respond(resp(&invite, 200)), now);
    assert_eq!(tx.state(), ServerInviteState::Accepted);
    assert_eq!(codes_sent(&drain!(tx)), vec!["200"]);
    assert_eq!(tx.poll_timeout(), Some(now + 64 * T1));
    tx.handle(Input::Message(invite.clone().into()), now + T1);
    assert!(drain!(tx).is_empty());
    assert!(events!(tx).is_empty());
    // The TU's own 2xx retransmission passes through.
    tx.handle(Input::Respond(resp(&invite, 200)), now + T1);
    assert_eq!(codes_sent(&drain!(tx)), vec!["200"]);
    let ack = request("ACK", "z9hG4bK8");
    tx.handle(Input::Message(ack.into()), now + 2 * T1);
    assert!(matches!(
        events!(tx).as_slice(),
        [TransactionEvent::AckFor2xx(_)]
    ));
    tx.handle(Input::Timeout, now + 64 * T1);
    assert_eq!(tx.state(), ServerInviteState::Terminated);
}

#[test]
fn server_invite_reliable_has_no_timer_g_and_zero_timer_i() {
    let now = Instant::now();
    let invite = request("INVITE", "z9hG4bK9");
    let mut tx = ServerInvite::new(
        invite.clone(),
        tcp(),
        Timers::default(),
        TryingPolicy::Never,
        now,
    );
    tx.handle(Input::Respond(resp(&invite, 486)), now);
    assert_eq!(tx.state(), ServerInviteState::Completed);
    // Only Timer H.
    assert_eq!(tx.poll_timeout(), Some(now + 64 * T1));
    tx.handle(Input::Message(request("ACK", "z9hG4bK9").into()), now + T1);
    assert_eq!(tx.state(), ServerInviteState::Terminated);
}

#[test]
fn server_invite_ack_in_completed_confirms_and_timer_i_is_t4() {
    let now = Instant::now();
    let invite = request("INVITE", "z9hG4bK10");
    let mut tx = ServerInvite::new(
        invite.clone(),
        udp(),
        Timers::default(),
        TryingPolicy::Never,
        now,
    );
    tx.handle(Input::Respond(resp(&invite, 480)), now);
    assert_eq!(tx.poll_timeout(), Some(now + T1));
    tx.handle(
        Input::Message(request("ACK", "z9hG4bK10").into()),
        now + T1 / 2,
    );
    assert_eq!(tx.state(), ServerInviteState::Confirmed);
    assert_eq!(tx.poll_timeout(), Some(now + T1 / 2 + T4));
    drain!(tx);
    tx.handle(Input::Message(request("ACK", "z9hG4bK10").into()), now + T1);
    assert!(drain!(tx).is_empty());
}

#[test]
fn server_non_invite_states_and_timer_j() {
    let now = Instant::now();
    let req = request("REGISTER", "z9hG4bK11");
    let mut tx = ServerNonInvite::new(req.clone(), udp(), Timers::default());
    assert!(matches!(
        events!(tx).as_slice(),
        [TransactionEvent::Request(_)]
    ));
    // Retransmission in Trying: absorbed without response.
    tx.handle(Input::Message(req.clone().into()), now);
    assert!(drain!(tx).is_empty());
    tx.handle(Input::Respond(resp(&req, 100)), now);
    assert_eq!(tx.state(), ServerNonInviteState::Proceeding);
    drain!(tx);
    tx.handle(Input::Message(req.clone().into()), now + T1);
    assert_eq!(codes_sent(&drain!(tx)), vec!["100"]);
    tx.handle(Input::Respond(resp(&req, 200)), now + T1);
    assert_eq!(tx.poll_timeout(), Some(now + T1 + 64 * T1));
    drain!(tx);
    tx.handle(Input::Message(req.clone().into()), now + 2 * T1);
    assert_eq!(codes_sent(&drain!(tx)), vec!["200"]);
    assert!(events!(tx).is_empty());

    let mut tx = ServerNonInvite::new(req.clone(), tcp(), Timers::default());
    tx.handle(Input::Respond(resp(&req, 200)), now);
    assert_eq!(tx.state(), ServerNonInviteState::Terminated);
}

#[test]
fn transport_error_is_reported_and_terminates() {
    let now = Instant::now();
    let mut layer = TransactionLayer::new(Config::default());
    let key = layer
        .send_request(request("INVITE", "z9hG4bK12"), udp(), now)
        .unwrap();
    layer.transport_error(&key, now);
    let mut ev = Vec::new();
    while let Some(e) = layer.poll_event() {
        ev.push(e);
    }
    assert_eq!(
        ev,
        vec![
            LayerEvent::Transaction {
                key: key.clone(),
                event: TransactionEvent::TransportError
            },
            LayerEvent::Transaction {
                key,
                event: TransactionEvent::Terminated
            },
        ]
    );
    assert!(layer.is_empty());
}

#[test]
fn full_table_answers_503_without_state() {
    let now = Instant::now();
    let mut layer = TransactionLayer::new(Config {
        max_server_transactions: 1,
        ..Config::default()
    });
    layer.handle_incoming(request("OPTIONS", "z9hG4bK13").into(), udp(), now);
    while layer.poll_transmit().is_some() {}
    layer.handle_incoming(request("OPTIONS", "z9hG4bK14").into(), udp(), now);
    let t = layer.poll_transmit().unwrap();
    let SipMessage::Response(r) = t.message else {
        panic!()
    };
    assert_eq!(r.status_code.code(), 503);
    // Built by message::response: the RFC 3261 §21 phrase, not rsip's
    // variant name ("503 ServiceUnavailable").
    assert!(
        r.to_string()
            .starts_with("SIP/2.0 503 Service Unavailable\r\n"),
        "{r}"
    );
    assert!(r.headers.iter().any(|h| h.to_string() == "Retry-After: 5"));
    assert_eq!(layer.len(), 1);
}

#[test]
fn rfc2543_requests_without_cookie_still_match_retransmissions_and_ack() {
    let now = Instant::now();
    let mut layer = TransactionLayer::new(Config {
        trying: TryingPolicy::Never,
        ..Config::default()
    });
    let invite = request("INVITE", "oldstyle1");
    layer.handle_incoming(invite.clone().into(), udp(), now);
    let key = match layer.poll_event() {
        Some(LayerEvent::Transaction {
            key,
            event: TransactionEvent::Request(_),
        }) => key,
        other => panic!("{other:?}"),
    };
    layer.respond(&key, resp(&invite, 404), now).unwrap();
    assert!(layer.poll_transmit().is_some());
    // Retransmission: the 404 again, nothing new for the TU.
    layer.handle_incoming(invite.clone().into(), udp(), now + T1 / 4);
    assert!(layer.poll_transmit().is_some());
    assert_eq!(layer.poll_event(), None);
    // The ACK matches the INVITE transaction even with no cookie.
    layer.handle_incoming(request("ACK", "oldstyle1").into(), udp(), now + T1 / 2);
    assert_eq!(
        layer.server_invite_state(&key),
        Some(ServerInviteState::Confirmed)
    );
    assert_eq!(layer.poll_event(), None);
}

#[test]
fn cancel_copies_invite_identity() {
    let invite = request("INVITE", "z9hG4bK15");
    let cancel = build_cancel(&invite).unwrap();
    assert_eq!(cancel.uri, invite.uri);
    assert_eq!(cancel.via_header().unwrap(), invite.via_header().unwrap());
    assert_eq!(cancel.to_header().unwrap(), invite.to_header().unwrap());
    assert_eq!(cancel.cseq_header().unwrap().value(), "5 CANCEL");
    assert_eq!(
        cancel.route_header().unwrap().value(),
        "<sip:proxy.example.com;lr>"
    );
}

#[test]
fn send_request_adds_missing_branch() {
    let now = Instant::now();
    let mut layer = TransactionLayer::new(Config::default());
    let text = "OPTIONS sip:bob@192.0.2.7 SIP/2.0\r\nVia: SIP/2.0/UDP 198.51.100.1:5060\r\nFrom: <sip:a@b>;tag=1\r\nTo: <sip:b@c>\r\nCall-ID: x\r\nCSeq: 1 OPTIONS\r\nContent-Length: 0\r\n\r\n";
    let SipMessage::Request(req) = SipMessage::try_from(text).unwrap() else {
        panic!()
    };
    let key = layer.send_request(req, udp(), now).unwrap();
    assert!(key.branch.starts_with("z9hG4bK"));
    let SipMessage::Request(sent) = layer.poll_transmit().unwrap().message else {
        panic!()
    };
    let branch = sent
        .via_header()
        .unwrap()
        .typed()
        .unwrap()
        .branch()
        .unwrap()
        .to_string();
    assert_eq!(branch, key.branch);
}

#[test]
fn server_key_reads_the_top_via_like_message_does() {
    let key = TransactionKey::server(&request("INVITE", "z9hG4bKk1")).unwrap();
    assert_eq!(key.branch, "z9hG4bKk1");
    assert_eq!(key.sent_by, "198.51.100.1:5060");
    assert_eq!(key.method, "INVITE");
    // An IPv6 sent-by (RFC 5118), which rsip's typed Via cannot read.
    let text = "INVITE sip:bob@192.0.2.7 SIP/2.0\r\nVia: SIP/2.0/UDP [2001:DB8::1]:5062;branch=z9hG4bKv6\r\nFrom: <sip:a@b>;tag=1\r\nTo: <sip:b@c>\r\nCall-ID: x\r\nCSeq: 1 INVITE\r\nContent-Length: 0\r\n\r\n";
    let SipMessage::Request(req) = SipMessage::try_from(text).unwrap() else {
        panic!()
    };
    let key = TransactionKey::server(&req).unwrap();
    assert_eq!(key.branch, "z9hG4bKv6");
    assert_eq!(key.sent_by, "[2001:db8::1]:5062");
    let ack = TransactionKey::server_with_method(&req, rsip::Method::Ack).unwrap();
    assert_eq!(ack.method, "INVITE");
    assert_eq!(ack.branch, key.branch);
}

// Requests and responses with headers missing or mangled, fed to a layer in
// any order: never a panic.
proptest! {
    #[test]
    fn layer_never_panics_on_mangled_messages(
        drops in prop::collection::vec(any::<bool>(), 9),
        method in prop::sample::select(vec!["INVITE", "ACK", "CANCEL", "BYE", "OPTIONS"]),
        code in 100u16..700,
        as_response in any::<bool>(),
        branch in "[a-zA-Z0-9]{0,12}",
    ) {
        let lines = [
            format!("Via: SIP/2.0/UDP 198.51.100.1:5060;branch={branch}"),
            format!("Via: SIP/2.0/UDP 198.51.100.9:5060;branch=z9hG4bK{branch}"),
            "From: <sip:alice@example.com>;tag=abc".to_string(),
            "To: <sip:bob@example.com>".to_string(),
            "Call-ID: cid-1".to_string(),
            format!("CSeq: 5 {method}"),
            "Max-Forwards: 70".to_string(),
            "Route: <sip:proxy.example.com;lr>".to_string(),
            "Contact: <sip:alice@198.51.100.1>".to_string(),
        ];
        let headers: String = lines
            .iter()
            .zip(&drops)
            .filter(|(_, d)| !**d)
            .map(|(l, _)| format!("{l}\r\n"))
            .collect();
        let start = if as_response {
            format!("SIP/2.0 {code} Whatever")
        } else {
            format!("{method} sip:bob@192.0.2.7 SIP/2.0")
        };
        let text = format!("{start}\r\n{headers}Content-Length: 0\r\n\r\n");
        if let Ok(msg) = SipMessage::try_from(text) {
            let now = Instant::now();
            let mut layer = TransactionLayer::new(Config::default());
            if let Ok(key) = layer.send_request(request("INVITE", &format!("z9hG4bK{branch}")), udp(), now) {
                let _ = layer.cancel(&key, now);
            }
            for i in 0..3u32 {
                layer.handle_incoming(msg.clone(), udp(), now + T1 * i);
                layer.handle_timeout(now + T1 * i);
                while layer.poll_transmit().is_some() {}
                while layer.poll_event().is_some() {}
            }
            if let Some(at) = layer.poll_timeout() {
                layer.handle_timeout(at);
            }
        }
    }
}

#[test]
fn layer_multiplexes_timers_and_collects_terminated_transactions() {
    let now = Instant::now();
    let mut layer = TransactionLayer::new(Config::default());
    let a = layer
        .send_request(request("OPTIONS", "z9hG4bKm1"), udp(), now)
        .unwrap();
    let later = now + Duration::from_millis(100);
    let b = layer
        .send_request(request("OPTIONS", "z9hG4bKm2"), tcp(), later)
        .unwrap();
    // a: Timer E at T1; b (TCP): only Timer F.
    assert_eq!(layer.poll_timeout(), Some(now + T1));
    let mut fired = 0;
    while let Some(at) = layer.poll_timeout() {
        assert!(fired < 100, "timers never ran out");
        layer.handle_timeout(at);
        fired += 1;
    }
    // a times out at 64·T1, b at 100 ms + 64·T1; both gone afterwards.
    let mut ends = Vec::new();
    while let Some(e) = layer.poll_event() {
        if let LayerEvent::Transaction {
            key,
            event: TransactionEvent::Timeout(_),
        } = e
        {
            ends.push(key);
        }
    }
    assert_eq!(ends, vec![a, b]);
    assert!(layer.is_empty());
    // 10 Timer E firings for a, then F for a and F for b.
    assert_eq!(fired, 12);
}

#[test]
fn ack_matches_invite_and_cancel_gets_its_own_key() {
    use hotline_sip::transaction::TransactionKey;
    let invite = TransactionKey::server(&request("INVITE", "z9hG4bKk")).unwrap();
    let ack = TransactionKey::server(&request("ACK", "z9hG4bKk")).unwrap();
    let cancel = TransactionKey::server(&request("CANCEL", "z9hG4bKk")).unwrap();
    assert_eq!(invite, ack);
    assert_ne!(invite, cancel);
    let other_sender = request_with("INVITE", "z9hG4bKk", "")
        .to_string()
        .replace("198.51.100.1:5060", "198.51.100.2:5060");
    let SipMessage::Request(other) = SipMessage::try_from(other_sender).unwrap() else {
        panic!()
    };
    assert_ne!(TransactionKey::server(&other).unwrap(), invite);
}

#[test]
fn cancelled_invite_without_final_gives_up_after_64_t1() {
    let now = Instant::now();
    let mut layer = TransactionLayer::new(Config::default());
    let invite = request("INVITE", "z9hG4bKc9");
    let key = layer.send_request(invite.clone(), udp(), now).unwrap();
    layer.handle_incoming(resp(&invite, 180).into(), udp(), now + T1 / 5);
    let at = now + Duration::from_secs(1);
    let cancel = layer.cancel(&key, at).unwrap().unwrap();
    assert_eq!(cancel.method, "CANCEL");
    // The UAS answers neither the CANCEL nor the INVITE: both give up
    // together, 64·T1 after the CANCEL (Timer F; §9.1).
    let mut last = at;
    for _ in 0..100 {
        let Some(t) = layer.poll_timeout() else { break };
        layer.handle_timeout(t);
        last = t;
    }
    assert_eq!(last, at + 64 * T1);
    let mut timeouts = Vec::new();
    while let Some(e) = layer.poll_event() {
        if let LayerEvent::Transaction {
            key,
            event: TransactionEvent::Timeout(r),
        } = e
        {
            timeouts.push((key.method.clone(), r.status_code.code()));
        }
    }
    assert_eq!(
        timeouts,
        vec![("INVITE".to_string(), 408), ("CANCEL".to_string(), 408)]
    );
    assert!(layer.is_empty());
}
