//! A client and a server transaction layer talking over a simulated UDP
//! network (in-memory queue, seeded loss, delays) in virtual time: each step
//! jumps to the earliest of the two layers' `poll_timeout`, the next packet
//! arrival and the next scripted TU action. Every message crosses the
//! "wire" as text and is parsed back, as it would be on a socket.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use hotline_sip::message::{self, new_branch, new_tag};
use hotline_sip::transaction::{
    ClientInviteState, Config, Destination, LayerEvent, TransactionEvent, TransactionKey,
    TransactionLayer, TryingPolicy, build_ack,
};
use proptest::prelude::*;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use rsip::headers::{Header, UntypedHeader};
use rsip::param::{Branch, Param};
use rsip::prelude::*;
use rsip::{Method, Request, Response, SipMessage};

const MS: Duration = Duration::from_millis(1);
const T1: Duration = Duration::from_millis(500);
const T2: Duration = Duration::from_secs(4);

fn client_addr() -> SocketAddr {
    "10.0.0.1:5060".parse().unwrap()
}
fn server_addr() -> SocketAddr {
    "10.0.0.2:5060".parse().unwrap()
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Side {
    Client,
    Server,
}

/// Builds an out-of-dialog request as a UA would put it on the wire.
fn request(method: &str, call_id: &str, from_tag: &str, cseq: u32, branch: &str) -> Request {
    let text = format!(
        "{method} sip:bob@10.0.0.2:5060 SIP/2.0\r\n\
         Via: SIP/2.0/UDP 10.0.0.1:5060;branch={branch}\r\n\
         Max-Forwards: 70\r\n\
         From: <sip:alice@10.0.0.1>;tag={from_tag}\r\n\
         To: <sip:bob@10.0.0.2>\r\n\
         Call-ID: {call_id}\r\n\
         CSeq: {cseq} {method}\r\n\
         Contact: <sip:alice@10.0.0.1:5060>\r\n\
         Content-Length: 0\r\n\r\n"
    );
    match SipMessage::try_from(text).expect("test request parses") {
        SipMessage::Request(r) => r,
        SipMessage::Response(_) => unreachable!(),
    }
}

/// "INVITE", "ACK", "180 INVITE", "200 CANCEL": enough to tell messages
/// apart on the wire.
fn label(msg: &SipMessage) -> String {
    match msg {
        SipMessage::Request(r) => r.method.to_string(),
        SipMessage::Response(r) => format!(
            "{} {}",
            r.status_code.code(),
            r.cseq_header().unwrap().method().unwrap()
        ),
    }
}

#[derive(Debug, Clone)]
enum Action {
    /// Server TU answers a request.
    Respond {
        key: TransactionKey,
        response: Response,
    },
    /// Server TU retransmits its 2xx (§13.3.1.4) until the ACK arrives.
    Retransmit2xx {
        key: TransactionKey,
        response: Response,
        interval: Duration,
        started: Instant,
    },
    /// Client TU cancels an INVITE.
    Cancel { key: TransactionKey },
}

/// What the server TU does with a new request: responses at delays after
/// the request arrives.
#[derive(Debug, Clone)]
struct ServerScript {
    invite: Vec<(Duration, u16)>,
    non_invite: Vec<(Duration, u16)>,
    retransmit_2xx: bool,
}

impl Default for ServerScript {
    fn default() -> Self {
        ServerScript {
            invite: vec![(Duration::ZERO, 180), (Duration::from_secs(1), 200)],
            non_invite: vec![(Duration::ZERO, 200)],
            retransmit_2xx: true,
        }
    }
}

#[derive(Debug, Clone)]
struct WireRecord {
    at: Duration,
    from: Side,
    label: String,
    dropped: bool,
    message: SipMessage,
}

struct Packet {
    at: Instant,
    seq: u64,
    to: Side,
    text: String,
}

type DropRule = Box<dyn FnMut(Side, &SipMessage) -> bool>;

struct Sim {
    base: Instant,
    now: Instant,
    client: TransactionLayer,
    server: TransactionLayer,
    net: Vec<Packet>,
    seq: u64,
    rng: StdRng,
    loss: f64,
    delay: (Duration, Duration),
    drop_rule: DropRule,
    actions: Vec<(Instant, Action)>,
    script: ServerScript,
    wire: Vec<WireRecord>,
    client_events: Vec<(Duration, LayerEvent)>,
    server_events: Vec<(Duration, LayerEvent)>,
    /// (Call-ID, CSeq, method) → how often the server TU got the request.
    delivered: HashMap<(String, u32, String), usize>,
    acked_call_ids: Vec<String>,
    tu_2xx_sends: usize,
    to_tags: HashMap<TransactionKey, String>,
    client_invites: HashMap<TransactionKey, Request>,
}

impl Sim {
    fn new(client: Config, server: Config, script: ServerScript) -> Self {
        let base = Instant::now();
        Sim {
            base,
            now: base,
            client: TransactionLayer::new(client),
            server: TransactionLayer::new(server),
            net: Vec::new(),
            seq: 0,
            rng: StdRng::seed_from_u64(0),
            loss: 0.0,
            delay: (10 * MS, 10 * MS),
            drop_rule: Box::new(|_, _| false),
            actions: Vec::new(),
            script,
            wire: Vec::new(),
            client_events: Vec::new(),
            server_events: Vec::new(),
            delivered: HashMap::new(),
            acked_call_ids: Vec::new(),
            tu_2xx_sends: 0,
            to_tags: HashMap::new(),
            client_invites: HashMap::new(),
        }
    }

    fn elapsed(&self) -> Duration {
        self.now - self.base
    }

    fn send(&mut self, req: Request) -> TransactionKey {
        let is_invite = req.method == Method::Invite;
        let key = self
            .client
            .send_request(req.clone(), Destination::udp(server_addr()), self.now)
            .expect("send_request");
        if is_invite {
            self.client_invites.insert(key.clone(), req);
        }
        self.pump();
        key
    }

    fn schedule(&mut self, after: Duration, action: Action) {
        self.actions.push((self.now + after, action));
    }

    /// Moves transmits onto the wire and hands events to the scripted TUs
    /// until both layers are quiet.
    fn pump(&mut self) {
        for _ in 0..10_000 {
            let mut busy = false;
            while let Some(t) = self.client.poll_transmit() {
                busy = true;
                self.put_on_wire(Side::Client, t.message);
            }
            while let Some(t) = self.server.poll_transmit() {
                busy = true;
                self.put_on_wire(Side::Server, t.message);
            }
            while let Some(e) = self.client.poll_event() {
                busy = true;
                self.client_tu(e);
            }
            while let Some(e) = self.server.poll_event() {
                busy = true;
                self.server_tu(e);
            }
            if !busy {
                return;
            }
        }
        panic!("layers never went quiet");
    }

    fn put_on_wire(&mut self, from: Side, msg: SipMessage) {
        let lost = (self.drop_rule)(from, &msg) || self.rng.random_bool(self.loss);
        self.wire.push(WireRecord {
            at: self.elapsed(),
            from,
            label: label(&msg),
            dropped: lost,
            message: msg.clone(),
        });
        if lost {
            return;
        }
        let (lo, hi) = self.delay;
        let delay = if hi > lo {
            lo + (hi - lo).mul_f64(self.rng.random::<f64>())
        } else {
            lo
        };
        self.seq += 1;
        self.net.push(Packet {
            at: self.now + delay,
            seq: self.seq,
            to: match from {
                Side::Client => Side::Server,
                Side::Server => Side::Client,
            },
            text: msg.to_string(),
        });
    }

    fn client_tu(&mut self, event: LayerEvent) {
        if let LayerEvent::Transaction {
            key,
            event: TransactionEvent::Response(resp),
        } = &event
        {
            // §13.2.2.4: the UAC core ACKs every 2xx itself, with a new
            // branch, outside the transaction.
            if (200..300).contains(&resp.status_code.code())
                && let Some(invite) = self.client_invites.get(key)
            {
                let mut ack = build_ack(invite, resp).unwrap();
                set_branch(&mut ack, &new_branch());
                self.client
                    .send_stateless(SipMessage::Request(ack), Destination::udp(server_addr()));
            }
        }
        self.client_events.push((self.elapsed(), event));
    }

    fn server_tu(&mut self, event: LayerEvent) {
        match &event {
            LayerEvent::Transaction {
                key,
                event: TransactionEvent::Request(req),
            } => {
                let id = (
                    req.call_id_header().unwrap().value().to_string(),
                    req.cseq_header().unwrap().seq().unwrap(),
                    req.method.to_string(),
                );
                *self.delivered.entry(id).or_default() += 1;
                let tag = new_tag();
                self.to_tags.insert(key.clone(), tag.clone());
                let plan = if req.method == Method::Invite {
                    self.script.invite.clone()
                } else {
                    self.script.non_invite.clone()
                };
                for (after, code) in plan {
                    let response = message::response(req, code, None, Some(&tag));
                    self.schedule(
                        after,
                        Action::Respond {
                            key: key.clone(),
                            response,
                        },
                    );
                }
            }
            LayerEvent::Cancelled { invite, .. } => {
                let req = self
                    .server_events
                    .iter()
                    .find_map(|(_, e)| match e {
                        LayerEvent::Transaction {
                            key,
                            event: TransactionEvent::Request(r),
                        } if key == invite => Some(r.clone()),
                        _ => None,
                    })
                    .expect("cancelled INVITE was delivered");
                let tag = self.to_tags.get(invite).cloned();
                let response = message::response(&req, 487, None, tag.as_deref());
                self.actions
                    .retain(|(_, a)| !matches!(a, Action::Respond { key, .. } if key == invite));
                self.schedule(
                    Duration::ZERO,
                    Action::Respond {
                        key: invite.clone(),
                        response,
                    },
                );
            }
            LayerEvent::Ack { request, .. } => {
                self.acked_call_ids
                    .push(request.call_id_header().unwrap().value().to_string());
            }
            _ => {}
        }
        self.server_events.push((self.elapsed(), event));
    }

    fn run_action(&mut self, action: Action) {
        match action {
            Action::Respond { key, response } => {
                let is_2xx = (200..300).contains(&response.status_code.code());
                let is_invite = key.method == "INVITE";
                if self
                    .server
                    .respond(&key, response.clone(), self.now)
                    .is_ok()
                    && is_2xx
                    && is_invite
                {
                    self.tu_2xx_sends += 1;
                    if self.script.retransmit_2xx {
                        self.schedule(
                            T1,
                            Action::Retransmit2xx {
                                key,
                                response,
                                interval: T1,
                                started: self.now,
                            },
                        );
                    }
                }
            }
            Action::Retransmit2xx {
                key,
                response,
                interval,
                started,
            } => {
                let call_id = response.call_id_header().unwrap().value().to_string();
                if self.acked_call_ids.contains(&call_id) || self.now - started >= 64 * T1 {
                    return;
                }
                if self
                    .server
                    .respond(&key, response.clone(), self.now)
                    .is_ok()
                {
                    self.tu_2xx_sends += 1;
                    let next = (interval * 2).min(T2);
                    self.schedule(
                        next,
                        Action::Retransmit2xx {
                            key,
                            response,
                            interval: next,
                            started,
                        },
                    );
                }
            }
            Action::Cancel { key } => {
                self.client.cancel(&key, self.now).expect("cancel");
            }
        }
    }

    /// Runs until nothing is left to do or `limit` of virtual time passed.
    fn run(&mut self, limit: Duration) {
        let end = self.base + limit;
        for _ in 0..100_000 {
            self.pump();
            let next = [
                self.client.poll_timeout(),
                self.server.poll_timeout(),
                self.net.iter().map(|p| p.at).min(),
                self.actions.iter().map(|(at, _)| *at).min(),
            ]
            .into_iter()
            .flatten()
            .min();
            let Some(next) = next else { return };
            if next > end {
                return;
            }
            self.now = self.now.max(next);
            let now = self.now;
            // Packets in arrival order.
            let mut due: Vec<Packet> = Vec::new();
            let mut i = 0;
            while i < self.net.len() {
                if self.net[i].at <= now {
                    due.push(self.net.swap_remove(i));
                } else {
                    i += 1;
                }
            }
            due.sort_by_key(|p| (p.at, p.seq));
            for p in due {
                let msg = SipMessage::try_from(p.text.as_str()).expect("wire text parses");
                match p.to {
                    Side::Server => {
                        self.server
                            .handle_incoming(msg, Destination::udp(client_addr()), now)
                    }
                    Side::Client => {
                        self.client
                            .handle_incoming(msg, Destination::udp(server_addr()), now)
                    }
                }
                self.pump();
            }
            if self.client.poll_timeout().is_some_and(|t| t <= now) {
                self.client.handle_timeout(now);
            }
            if self.server.poll_timeout().is_some_and(|t| t <= now) {
                self.server.handle_timeout(now);
            }
            self.pump();
            let mut ready = Vec::new();
            self.actions.retain(|(at, a)| {
                if *at <= now {
                    ready.push((*at, a.clone()));
                    false
                } else {
                    true
                }
            });
            ready.sort_by_key(|(at, _)| *at);
            for (_, a) in ready {
                self.run_action(a);
                self.pump();
            }
        }
        panic!("simulation did not settle");
    }

    /// Times (since start) at which `from` put `label` on the wire.
    fn sent(&self, from: Side, label: &str) -> Vec<Duration> {
        self.wire
            .iter()
            .filter(|w| w.from == from && w.label == label)
            .map(|w| w.at)
            .collect()
    }

    fn events_of(
        events: &[(Duration, LayerEvent)],
        key: &TransactionKey,
    ) -> Vec<(Duration, TransactionEvent)> {
        events
            .iter()
            .filter_map(|(at, e)| match e {
                LayerEvent::Transaction { key: k, event } if k == key => Some((*at, event.clone())),
                _ => None,
            })
            .collect()
    }

    fn client_events_of(&self, key: &TransactionKey) -> Vec<(Duration, TransactionEvent)> {
        Self::events_of(&self.client_events, key)
    }

    fn terminated_at(events: &[(Duration, TransactionEvent)]) -> Option<Duration> {
        events
            .iter()
            .find(|(_, e)| *e == TransactionEvent::Terminated)
            .map(|(at, _)| *at)
    }

    fn server_request_keys(&self, method: &str) -> Vec<TransactionKey> {
        self.server_events
            .iter()
            .filter_map(|(_, e)| match e {
                LayerEvent::Transaction {
                    key,
                    event: TransactionEvent::Request(r),
                } if r.method.to_string() == method => Some(key.clone()),
                _ => None,
            })
            .collect()
    }
}

fn set_branch(req: &mut Request, branch: &str) {
    let via = req.via_header().unwrap().typed().unwrap();
    let mut via = via;
    via.params.retain(|p| !matches!(p, Param::Branch(_)));
    via.params.push(Param::Branch(Branch::new(branch)));
    let via: rsip::headers::Via = via.into();
    if let Some(h) = req.headers.iter_mut().find(|h| matches!(h, Header::Via(_))) {
        *h = Header::Via(via);
    }
}

fn codes(events: &[(Duration, TransactionEvent)]) -> Vec<u16> {
    events
        .iter()
        .filter_map(|(_, e)| match e {
            TransactionEvent::Response(r) => Some(r.status_code.code()),
            _ => None,
        })
        .collect()
}

fn secs(ms: u64) -> Duration {
    Duration::from_millis(ms)
}

fn trying_immediately() -> Config {
    Config {
        trying: TryingPolicy::Immediately,
        ..Config::default()
    }
}

#[test]
fn invite_200_recovers_from_lost_first_response_by_timer_a() {
    let script = ServerScript {
        invite: vec![(secs(2000), 180), (secs(3000), 200)],
        ..ServerScript::default()
    };
    let mut sim = Sim::new(Config::default(), trying_immediately(), script);
    let mut first_response = true;
    sim.drop_rule = Box::new(move |from, _| {
        let drop = from == Side::Server && first_response;
        if from == Side::Server {
            first_response = false;
        }
        drop
    });
    let key = sim.send(request("INVITE", "call-a", "ft1", 1, "z9hG4bKa1"));
    sim.run(Duration::from_secs(120));

    // Timer A: the INVITE again at T1; the resent 100 then stops Timer A.
    assert_eq!(sim.sent(Side::Client, "INVITE"), vec![secs(0), secs(500)]);
    assert_eq!(
        sim.sent(Side::Server, "100 INVITE"),
        vec![secs(10), secs(510)]
    );
    assert_eq!(sim.sent(Side::Server, "180 INVITE"), vec![secs(2010)]);
    assert_eq!(sim.sent(Side::Server, "200 INVITE"), vec![secs(3010)]);
    assert_eq!(sim.sent(Side::Client, "ACK"), vec![secs(3020)]);
    let events = sim.client_events_of(&key);
    assert_eq!(codes(&events), vec![100, 180, 200]);
    // RFC 6026 Timer M = 64·T1 after the 2xx; the server's Timer L likewise.
    assert_eq!(Sim::terminated_at(&events), Some(secs(3020) + 64 * T1));
    let skey = sim.server_request_keys("INVITE").pop().unwrap();
    let sevents = Sim::events_of(&sim.server_events, &skey);
    assert_eq!(Sim::terminated_at(&sevents), Some(secs(3010) + 64 * T1));
    assert_eq!(sim.acked_call_ids, vec!["call-a".to_string()]);
    assert!(sim.client.is_empty() && sim.server.is_empty());
}

#[test]
fn trying_sent_after_200ms_when_tu_is_slow() {
    let script = ServerScript {
        invite: vec![(secs(1000), 486)],
        ..ServerScript::default()
    };
    let mut sim = Sim::new(Config::default(), Config::default(), script);
    sim.send(request("INVITE", "call-t", "ft", 1, "z9hG4bKt1"));
    sim.run(Duration::from_secs(60));
    assert_eq!(sim.sent(Side::Server, "100 INVITE"), vec![secs(210)]);
    // The 100 stopped Timer A before its first firing at 500 ms.
    assert_eq!(sim.sent(Side::Client, "INVITE"), vec![secs(0)]);
}

#[test]
fn non_2xx_final_is_acked_by_the_transaction_and_retransmissions_absorbed() {
    let script = ServerScript {
        invite: vec![(Duration::ZERO, 486)],
        ..ServerScript::default()
    };
    let server_cfg = Config {
        trying: TryingPolicy::Never,
        ..Config::default()
    };
    let mut sim = Sim::new(Config::default(), server_cfg, script);
    let mut first_ack = true;
    sim.drop_rule = Box::new(move |from, msg| {
        if from == Side::Client && label(msg) == "ACK" && first_ack {
            first_ack = false;
            return true;
        }
        false
    });
    let key = sim.send(request("INVITE", "call-b", "ft2", 1, "z9hG4bKb1"));
    sim.run(Duration::from_secs(120));

    // Timer G retransmits the 486 at T1; the client answers it with the ACK
    // again and does not bother the TU twice.
    assert_eq!(
        sim.sent(Side::Server, "486 INVITE"),
        vec![secs(10), secs(510)]
    );
    assert_eq!(sim.sent(Side::Client, "ACK"), vec![secs(20), secs(520)]);
    let events = sim.client_events_of(&key);
    assert_eq!(codes(&events), vec![486]);
    // Timer D = 32 s on UDP.
    assert_eq!(
        Sim::terminated_at(&events),
        Some(secs(20) + Duration::from_secs(32))
    );
    // Confirmed at 530 ms, Timer I = T4 = 5 s.
    let skey = sim.server_request_keys("INVITE").pop().unwrap();
    let sevents = Sim::events_of(&sim.server_events, &skey);
    assert_eq!(
        Sim::terminated_at(&sevents),
        Some(secs(530) + Duration::from_secs(5))
    );
    assert!(
        !sevents
            .iter()
            .any(|(_, e)| *e == TransactionEvent::AckTimeout)
    );
    // The ACK for a non-2xx belongs to the transaction, not the TU.
    assert!(sim.acked_call_ids.is_empty());

    // §17.1.1.3: the ACK carries the INVITE's Request-URI, Call-ID, From,
    // CSeq number and branch, and the To (with tag) of the 486.
    let ack = sim.wire.iter().find(|w| w.label == "ACK").unwrap();
    assert!(ack.dropped);
    let busy = sim
        .wire
        .iter()
        .find(|w| w.label == "486 INVITE")
        .map(|w| w.message.clone())
        .unwrap();
    let (SipMessage::Request(ack), SipMessage::Response(busy)) = (&ack.message, busy) else {
        panic!("unexpected messages");
    };
    assert_eq!(ack.uri.to_string(), "sip:bob@10.0.0.2:5060");
    assert_eq!(
        ack.via_header()
            .unwrap()
            .typed()
            .unwrap()
            .branch()
            .unwrap()
            .to_string(),
        "z9hG4bKb1"
    );
    assert_eq!(ack.call_id_header().unwrap().value(), "call-b");
    assert_eq!(ack.cseq_header().unwrap().value(), "1 ACK");
    assert_eq!(
        ack.from_header()
            .unwrap()
            .tag()
            .unwrap()
            .unwrap()
            .to_string(),
        "ft2"
    );
    assert_eq!(ack.to_header().unwrap(), busy.to_header().unwrap());
    assert!(busy.to_header().unwrap().tag().unwrap().is_some());
}

#[test]
fn timer_g_doubles_to_t2_and_timer_h_gives_up_without_ack() {
    let script = ServerScript {
        invite: vec![(Duration::ZERO, 503)],
        ..ServerScript::default()
    };
    let server_cfg = Config {
        trying: TryingPolicy::Never,
        ..Config::default()
    };
    let mut sim = Sim::new(Config::default(), server_cfg, script);
    sim.drop_rule = Box::new(|from, msg| from == Side::Client && label(msg) == "ACK");
    sim.send(request("INVITE", "call-g", "ftg", 1, "z9hG4bKg1"));
    sim.run(Duration::from_secs(120));

    // G: T1, 2T1, 4T1, then capped at T2, until H = 64·T1 after the 503.
    let expected: Vec<Duration> = [
        0u64, 500, 1500, 3500, 7500, 11500, 15500, 19500, 23500, 27500, 31500,
    ]
    .iter()
    .map(|ms| secs(10 + ms))
    .collect();
    assert_eq!(sim.sent(Side::Server, "503 INVITE"), expected);
    let skey = sim.server_request_keys("INVITE").pop().unwrap();
    let sevents = Sim::events_of(&sim.server_events, &skey);
    let h = sevents
        .iter()
        .find(|(_, e)| *e == TransactionEvent::AckTimeout)
        .map(|(at, _)| *at);
    assert_eq!(h, Some(secs(10) + 64 * T1));
}

#[test]
fn timer_b_times_out_an_unanswered_invite_with_408() {
    let mut sim = Sim::new(
        Config::default(),
        Config::default(),
        ServerScript::default(),
    );
    sim.drop_rule = Box::new(|from, _| from == Side::Client);
    let key = sim.send(request("INVITE", "call-c", "ft3", 1, "z9hG4bKc1"));
    sim.run(Duration::from_secs(120));

    // Timer A doubles without cap: 0.5, 1, 2, 4, 8, 16 s intervals.
    let expected: Vec<Duration> = [0u64, 500, 1500, 3500, 7500, 15500, 31500]
        .iter()
        .map(|ms| secs(*ms))
        .collect();
    assert_eq!(sim.sent(Side::Client, "INVITE"), expected);
    let events = sim.client_events_of(&key);
    assert_eq!(events.len(), 2, "{events:?}");
    match &events[0] {
        (at, TransactionEvent::Timeout(r)) => {
            assert_eq!(*at, 64 * T1);
            assert_eq!(r.status_code.code(), 408);
            assert_eq!(r.call_id_header().unwrap().value(), "call-c");
        }
        other => panic!("expected timeout, got {other:?}"),
    }
    assert_eq!(events[1], (64 * T1, TransactionEvent::Terminated));
    assert!(sim.client.is_empty());
}

#[test]
fn non_invite_timer_e_doubles_to_t2_and_timer_f_times_out() {
    let mut sim = Sim::new(
        Config::default(),
        Config::default(),
        ServerScript::default(),
    );
    sim.drop_rule = Box::new(|from, _| from == Side::Client);
    let key = sim.send(request("OPTIONS", "call-d", "ft4", 1, "z9hG4bKd1"));
    sim.run(Duration::from_secs(120));
    let expected: Vec<Duration> = [
        0u64, 500, 1500, 3500, 7500, 11500, 15500, 19500, 23500, 27500, 31500,
    ]
    .iter()
    .map(|ms| secs(*ms))
    .collect();
    assert_eq!(sim.sent(Side::Client, "OPTIONS"), expected);
    let events = sim.client_events_of(&key);
    assert!(
        matches!(&events[0], (at, TransactionEvent::Timeout(r)) if *at == 64 * T1 && r.status_code.code() == 408)
    );
    assert_eq!(Sim::terminated_at(&events), Some(64 * T1));
}

#[test]
fn non_invite_with_loss_recovers_and_server_absorbs_retransmissions() {
    let mut sim = Sim::new(
        Config::default(),
        Config::default(),
        ServerScript::default(),
    );
    let mut dropped_request = false;
    let mut dropped_response = false;
    sim.drop_rule = Box::new(move |from, _| match from {
        Side::Client if !dropped_request => {
            dropped_request = true;
            true
        }
        Side::Server if !dropped_response => {
            dropped_response = true;
            true
        }
        _ => false,
    });
    let key = sim.send(request("REGISTER", "call-e", "ft5", 7, "z9hG4bKe1"));
    sim.run(Duration::from_secs(120));
    assert_eq!(
        sim.sent(Side::Client, "REGISTER"),
        vec![secs(0), secs(500), secs(1500)]
    );
    // The TU answered once; the transaction repeated its final response.
    assert_eq!(
        sim.sent(Side::Server, "200 REGISTER"),
        vec![secs(510), secs(1510)]
    );
    assert_eq!(
        sim.delivered[&("call-e".to_string(), 7, "REGISTER".to_string())],
        1
    );
    let events = sim.client_events_of(&key);
    assert_eq!(codes(&events), vec![200]);
    // Timer K = T4 on UDP; server Timer J = 64·T1 after its final.
    assert_eq!(
        Sim::terminated_at(&events),
        Some(secs(1520) + Duration::from_secs(5))
    );
    let skey = sim.server_request_keys("REGISTER").pop().unwrap();
    let sevents = Sim::events_of(&sim.server_events, &skey);
    assert_eq!(Sim::terminated_at(&sevents), Some(secs(510) + 64 * T1));
}

#[test]
fn cancel_gets_200_then_invite_gets_487_and_ack() {
    let script = ServerScript {
        invite: vec![(Duration::ZERO, 180), (Duration::from_secs(30), 200)],
        ..ServerScript::default()
    };
    let mut sim = Sim::new(Config::default(), trying_immediately(), script);
    let key = sim.send(request("INVITE", "call-f", "ft6", 1, "z9hG4bKf1"));
    sim.schedule(Duration::from_secs(1), Action::Cancel { key: key.clone() });
    sim.run(Duration::from_secs(120));

    assert_eq!(sim.sent(Side::Client, "CANCEL"), vec![secs(1000)]);
    assert_eq!(sim.sent(Side::Server, "200 CANCEL"), vec![secs(1010)]);
    assert_eq!(sim.sent(Side::Server, "487 INVITE"), vec![secs(1010)]);
    assert_eq!(sim.sent(Side::Client, "ACK"), vec![secs(1020)]);
    assert!(sim.sent(Side::Server, "200 INVITE").is_empty());
    assert_eq!(codes(&sim.client_events_of(&key)), vec![100, 180, 487]);
    let cancels: Vec<_> = sim
        .server_events
        .iter()
        .filter(|(_, e)| matches!(e, LayerEvent::Cancelled { .. }))
        .collect();
    assert_eq!(cancels.len(), 1);
    // The CANCEL's own client transaction got the 200.
    let cancel_key = sim
        .client_events
        .iter()
        .find_map(|(_, e)| match e {
            LayerEvent::Transaction {
                key,
                event: TransactionEvent::Response(r),
            } if key.method == "CANCEL" => Some((key.clone(), r.status_code.code())),
            _ => None,
        })
        .unwrap();
    assert_eq!(cancel_key.1, 200);
    assert!(sim.client.is_empty() && sim.server.is_empty());
}

#[test]
fn cancel_before_any_provisional_waits_for_one() {
    let script = ServerScript {
        invite: vec![
            (Duration::from_secs(2), 180),
            (Duration::from_secs(30), 200),
        ],
        ..ServerScript::default()
    };
    let server_cfg = Config {
        trying: TryingPolicy::Never,
        ..Config::default()
    };
    let mut sim = Sim::new(Config::default(), server_cfg, script);
    let key = sim.send(request("INVITE", "call-h", "ft8", 1, "z9hG4bKh1"));
    sim.schedule(
        Duration::from_millis(100),
        Action::Cancel { key: key.clone() },
    );
    sim.run(Duration::from_secs(120));
    // §9.1: no CANCEL until the 180 arrives at 2.01 s.
    assert_eq!(sim.sent(Side::Client, "CANCEL"), vec![secs(2020)]);
    assert_eq!(codes(&sim.client_events_of(&key)), vec![180, 487]);
}

#[test]
fn cancel_matching_nothing_gets_481() {
    let mut sim = Sim::new(
        Config::default(),
        Config::default(),
        ServerScript::default(),
    );
    let key = sim.send(request("CANCEL", "call-i", "ft9", 1, "z9hG4bKnone"));
    sim.run(Duration::from_secs(60));
    assert_eq!(codes(&sim.client_events_of(&key)), vec![481]);
    assert!(sim.server_request_keys("CANCEL").is_empty());
}

#[test]
fn merged_request_gets_482_and_reaches_the_tu_once() {
    let script = ServerScript {
        invite: vec![(Duration::ZERO, 180), (Duration::from_secs(5), 200)],
        ..ServerScript::default()
    };
    let mut sim = Sim::new(Config::default(), trying_immediately(), script);
    let first = sim.send(request("INVITE", "call-m", "ftm", 1, "z9hG4bKm1"));
    sim.run(Duration::from_secs(1));
    // The same request forked back to us along another path: new branch.
    let second = sim.send(request("INVITE", "call-m", "ftm", 1, "z9hG4bKm2"));
    sim.run(Duration::from_secs(120));

    assert_eq!(
        sim.delivered[&("call-m".to_string(), 1, "INVITE".to_string())],
        1
    );
    assert_eq!(codes(&sim.client_events_of(&second)), vec![482]);
    assert_eq!(codes(&sim.client_events_of(&first)), vec![100, 180, 200]);
    let rejected: Vec<u16> = sim
        .server_events
        .iter()
        .filter_map(|(_, e)| match e {
            LayerEvent::Rejected { status, .. } => Some(*status),
            _ => None,
        })
        .collect();
    assert_eq!(rejected, vec![482]);
    // One ACK for the 482 (transaction) and one for the 200 (TU).
    assert_eq!(sim.sent(Side::Client, "ACK").len(), 2);
}

#[test]
fn retransmitted_invite_after_2xx_is_absorbed_in_accepted() {
    let script = ServerScript {
        invite: vec![(Duration::ZERO, 200)],
        ..ServerScript::default()
    };
    let server_cfg = Config {
        trying: TryingPolicy::Never,
        ..Config::default()
    };
    let mut sim = Sim::new(Config::default(), server_cfg, script);
    let mut dropped = false;
    sim.drop_rule = Box::new(move |from, _| {
        if from == Side::Server && !dropped {
            dropped = true;
            return true;
        }
        false
    });
    let key = sim.send(request("INVITE", "call-j", "ftj", 1, "z9hG4bKj1"));
    sim.run(Duration::from_secs(120));

    // Timer A resent the INVITE; the server transaction in Accepted neither
    // re-delivered it nor answered it: every 2xx on the wire is the TU's.
    assert_eq!(sim.sent(Side::Client, "INVITE"), vec![secs(0), secs(500)]);
    assert_eq!(
        sim.delivered[&("call-j".to_string(), 1, "INVITE".to_string())],
        1
    );
    assert_eq!(sim.sent(Side::Server, "200 INVITE").len(), sim.tu_2xx_sends);
    assert_eq!(
        sim.sent(Side::Server, "200 INVITE"),
        vec![secs(10), secs(510)]
    );
    assert_eq!(codes(&sim.client_events_of(&key)), vec![200]);
    assert_eq!(sim.acked_call_ids, vec!["call-j".to_string()]);
}

#[test]
fn reliable_transport_has_no_retransmissions_and_zero_wait_timers() {
    let mut layer = TransactionLayer::new(Config::default());
    let now = Instant::now();
    let tcp = Destination::reliable(server_addr(), rsip::Transport::Tcp, Some(7));
    let key = layer
        .send_request(request("INVITE", "call-k", "ftk", 1, "z9hG4bKk1"), tcp, now)
        .unwrap();
    let first = layer.poll_transmit().unwrap();
    assert_eq!(first.destination, tcp);
    // No Timer A: only B.
    assert_eq!(layer.poll_timeout(), Some(now + 64 * T1));
    let invite = match first.message {
        SipMessage::Request(r) => r,
        _ => unreachable!(),
    };
    let busy = message::response(&invite, 486, None, Some("x"));
    layer.handle_incoming(SipMessage::Response(busy), tcp, now + T1);
    assert!(matches!(
        layer.poll_transmit().map(|t| label(&t.message)).as_deref(),
        Some("ACK")
    ));
    // Timer D = 0: terminated at once.
    assert!(!layer.contains(&key));
    assert_eq!(layer.client_invite_state(&key), None::<ClientInviteState>);
    assert_eq!(layer.poll_timeout(), None);
}

// Under any loss and delay pattern: no panic, every client transaction ends
// within 64·T1 (the latest a final response can arrive, since the server side
// stops retransmitting then) plus the longest wait state (Timer M = 64·T1),
// and the server TU never sees the same request twice.
proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]
    #[test]
    fn random_loss_never_panics_and_everything_terminates(
        seed in any::<u64>(),
        loss in 0.0f64..0.25,
        max_delay_ms in 0u64..300,
        final_code in prop::sample::select(vec![200u16, 486, 603]),
        ringing in any::<bool>(),
        non_invites in 0usize..3,
    ) {
        let mut invite_plan = Vec::new();
        if ringing {
            invite_plan.push((Duration::from_millis(50), 180));
        }
        invite_plan.push((Duration::from_millis(400), final_code));
        let script = ServerScript {
            invite: invite_plan,
            non_invite: vec![(Duration::from_millis(20), 200)],
            retransmit_2xx: true,
        };
        let mut sim = Sim::new(Config::default(), Config::default(), script);
        sim.rng = StdRng::seed_from_u64(seed);
        sim.loss = loss;
        sim.delay = (Duration::ZERO, Duration::from_millis(max_delay_ms));
        let mut keys = vec![sim.send(request("INVITE", "p-inv", "pt", 1, &new_branch()))];
        for i in 0..non_invites {
            keys.push(sim.send(request("OPTIONS", &format!("p-opt-{i}"), "pt", 1, &new_branch())));
        }
        sim.run(Duration::from_secs(600));
        let bound = 64 * T1 + 64 * T1 + Duration::from_millis(max_delay_ms);
        for key in &keys {
            let events = sim.client_events_of(key);
            let end = Sim::terminated_at(&events);
            prop_assert!(end.is_some_and(|t| t <= bound), "{key:?} ended at {end:?}");
        }
        for (id, n) in &sim.delivered {
            prop_assert_eq!(*n, 1, "{:?} delivered {} times", id, n);
        }
        prop_assert!(sim.client.is_empty());
        prop_assert!(sim.server.is_empty());
    }
}
