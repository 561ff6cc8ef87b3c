//! Contacts end to end, with real sipp peers on 127.0.0.1 and the whole
//! server in process (engine, store, bridge, HTTP): inbound calls to a
//! stored number create and count the caller's contact, a blocked caller
//! is declined with 603 before answer and the record says why, unblocking
//! lets the next call through, anonymous callers are nobody's contact, and
//! an outbound API call counts as a call with its callee. Every test runs
//! on SQLite and, when `HOTLINE_TEST_POSTGRES` is set, on Postgres.

mod peers;
mod support;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::http::StatusCode;
use hotline::api::AppState;
use hotline::api::calls::{bridge, numbers};
use hotline::call::CallRegistry;
use hotline::config::{Config, SipListen, SipTransport, TrunkConfig};
use hotline::engine::Engine;
use hotline::store::NewNumber;
use peers::sipp::{Offer, Scenario, SippRun};
use serde_json::{Value, json};
use support::db::TestDb;
use tokio::sync::{Notify, watch};

const WAIT: Duration = Duration::from_secs(20);
/// The organization's stored number.
const DID: &str = "+14155550142";
/// The caller.
const ALICE: &str = "+14155550100";

/// A whole server in process: engine, store, bridge and HTTP on 127.0.0.1.
struct Env {
    db: TestDb,
    state: AppState,
    http: SocketAddr,
    key: String,
    client: reqwest::Client,
    stop: watch::Sender<bool>,
}

impl Env {
    /// A server on `db`, with a trunk whose far end is `trunk` if given.
    async fn start(db: TestDb, trunk: Option<SocketAddr>) -> Env {
        let _ = rustls::crypto::ring::default_provider().install_default();
        let dir = tempfile::tempdir().unwrap().keep();
        let addr: SocketAddr = (peers::LOOPBACK, peers::ports::free_port()).into();
        let mut config = Config {
            data_dir: dir,
            ..Config::default()
        };
        config.sip.listen = vec![
            SipListen::new(SipTransport::Udp, addr),
            SipListen::new(SipTransport::Tcp, addr),
        ];
        // Away from the peers' ports and the SIP tests' RTP range.
        config.rtp.port_min = 45000;
        config.rtp.port_max = 49999;
        config.rtp.bind_ip = peers::LOOPBACK.into();
        config.sip.drain_secs = 1;
        if let Some(at) = trunk {
            config.trunks.push(TrunkConfig {
                name: "carrier".into(),
                host: at.to_string(),
                transport: SipTransport::Udp,
                username: None,
                password: None,
                realm: None,
                register: false,
                inbound_ips: Vec::new(),
                inbound_auth: false,
                codecs: vec!["PCMU".into()],
                caller_id: Some("+14155550999".into()),
                outbound_proxy: None,
                register_expires_secs: 3600,
            });
        }
        config.validate().unwrap();
        let config = Arc::new(config);
        let registry = CallRegistry::new(config.sip.max_calls);
        let engine = Engine::start(config.clone(), registry.clone())
            .await
            .unwrap();
        let store = db.store.clone();
        let org = store.ensure_org("acme").await.unwrap();
        let key = store.create_api_key(&org.id, "test").await.unwrap();
        // The number is in the database before the engine's tables load,
        // as after a restart.
        store
            .create_number(
                &org.id,
                &NewNumber {
                    e164: DID.into(),
                    label: None,
                    trunk: None,
                    agent_id: None,
                    inbound: json!({"mode": "echo"}),
                },
            )
            .await
            .unwrap();
        numbers::load_all(&store, &engine).await.unwrap();
        let state = AppState::new(config, store.clone(), Some(engine));
        let (stop, stopped) = watch::channel(false);
        hotline::api::calls::dispatch::spawn(
            state.clone(),
            state.engine.clone().unwrap(),
            stopped.clone(),
        );
        bridge::spawn(state.clone(), registry, Arc::new(Notify::new()), stopped);
        let listener = tokio::net::TcpListener::bind((peers::LOOPBACK, 0))
            .await
            .unwrap();
        let http = listener.local_addr().unwrap();
        let router = hotline::http::router(state.clone());
        tokio::spawn(async move { axum::serve(listener, router).await });
        Env {
            db,
            state,
            http,
            key: key.plaintext,
            client: reqwest::Client::new(),
            stop,
        }
    }

    async fn send(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<Value>,
    ) -> (StatusCode, Value) {
        let mut req = self
            .client
            .request(method, format!("http://{}{path}", self.http))
            .header("authorization", format!("Bearer {}", self.key));
        if let Some(b) = body {
            req = req
                .header("content-type", "application/json")
                .body(b.to_string());
        }
        let res = req.send().await.unwrap();
        let status = StatusCode::from_u16(res.status().as_u16()).unwrap();
        let bytes = res.bytes().await.unwrap();
        (
            status,
            serde_json::from_slice(&bytes).unwrap_or(Value::Null),
        )
    }

    async fn get(&self, path: &str) -> (StatusCode, Value) {
        self.send(reqwest::Method::GET, path, None).await
    }

    fn sip(&self) -> SocketAddr {
        self.state
            .engine
            .as_ref()
            .unwrap()
            .local_addr(hotline_sip::transport::Transport::Udp)
            .unwrap()
    }

    /// Calls the stored number from `caller` with `scenario` and checks
    /// that sipp saw what the scenario expects.
    fn call_from(&self, caller: &str, scenario: Scenario) {
        let mut run = SippRun::uac(scenario.caller_id(caller), self.sip());
        run.service = DID.into();
        run.timeout = WAIT;
        let r = tokio::task::block_in_place(|| run.spawn().unwrap().wait().unwrap());
        assert!(r.all_ok(), "{}", r.diagnostics());
    }

    /// The inbound calls to the number, newest first, once there are `n`
    /// and all have ended.
    async fn ended_inbound_calls(&self, n: usize) -> Vec<Value> {
        let until = tokio::time::Instant::now() + WAIT;
        loop {
            let (s, list) = self.get("/v1/calls?direction=inbound&limit=100").await;
            assert_eq!(s, StatusCode::OK, "{list}");
            let calls = list["data"].as_array().unwrap().clone();
            let ended = calls.iter().all(|c| !c["ended_at"].is_null());
            if calls.len() >= n && ended {
                assert_eq!(calls.len(), n, "{list}");
                return calls;
            }
            assert!(tokio::time::Instant::now() < until, "timed out: {list}");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    async fn contact_by_phone(&self, e164: &str) -> (StatusCode, Value) {
        let encoded = e164.replace('+', "%2B");
        self.get(&format!("/v1/contacts/by-phone/{encoded}")).await
    }

    async fn finish(self) {
        let _ = self.stop.send(true);
        if let Some(e) = &self.state.engine {
            e.drain(Duration::from_millis(100)).await;
        }
        self.db.cleanup().await;
    }
}

/// Runs `fn(TestDb)` on SQLite and on Postgres (when configured).
macro_rules! on_both {
    ($($name:ident),* $(,)?) => {$(
        mod $name {
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn sqlite() {
                super::$name(super::support::db::TestDb::sqlite().await).await;
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn postgres() {
                if let Some(db) = super::support::db::TestDb::postgres(stringify!($name)).await {
                    super::$name(db).await;
                }
            }
        }
    )*};
}

on_both!(
    callers_become_contacts_and_blocked_ones_are_declined,
    an_outbound_api_call_counts_with_its_callee,
);

async fn callers_become_contacts_and_blocked_ones_are_declined(db: TestDb) {
    let env = Env::start(db, None).await;
    let answered = || Scenario::uac_offer(Offer::PcmuDtmf, 300);

    // First call: the contact is created and linked to the call.
    let before = hotline::store::now_ms();
    env.call_from(ALICE, answered());
    let calls = env.ended_inbound_calls(1).await;
    assert_eq!(calls[0]["status"], "completed", "{}", calls[0]);
    let (s, contact) = env.contact_by_phone(ALICE).await;
    assert_eq!(s, StatusCode::OK, "{contact}");
    let id = contact["id"].as_str().unwrap().to_owned();
    assert_eq!(contact["call_count"], 1);
    assert_eq!(contact["blocked"], false);
    let first_seen = contact["last_seen_at"].as_i64().unwrap();
    assert!(
        (before..=calls[0]["ended_at"].as_i64().unwrap()).contains(&first_seen),
        "last seen during the call: {contact}"
    );
    assert_eq!(calls[0]["contact_id"], id.as_str());
    let (_, call) = env
        .get(&format!("/v1/calls/{}", calls[0]["id"].as_str().unwrap()))
        .await;
    assert_eq!(call["contact_id"], id.as_str(), "{call}");

    // Second call from the same caller ID: the same contact, counted.
    env.call_from(ALICE, answered());
    let calls = env.ended_inbound_calls(2).await;
    let (_, contact) = env.contact_by_phone(ALICE).await;
    assert_eq!(contact["id"], id.as_str());
    assert_eq!(contact["call_count"], 2);
    assert!(contact["last_seen_at"].as_i64().unwrap() >= first_seen);
    assert_eq!(calls[0]["contact_id"], id.as_str());

    // Blocked through the API: the next call is declined before answer.
    let (s, blocked) = env
        .send(
            reqwest::Method::PATCH,
            &format!("/v1/contacts/{id}"),
            Some(json!({"blocked": true, "display_name": "Alice"})),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{blocked}");
    assert_eq!(blocked["blocked"], true);
    env.call_from(ALICE, Scenario::uac_expect_status(603));
    let calls = env.ended_inbound_calls(3).await;
    let declined = &calls[0];
    assert_eq!(declined["status"], "failed", "{declined}");
    assert_eq!(declined["sip_code"], 603);
    assert_eq!(declined["hangup_cause"], "blocked contact");
    assert_eq!(declined["hangup_by"], "hotline");
    assert_eq!(declined["answered_at"], Value::Null);
    assert_eq!(declined["duration_ms"], 0);
    assert_eq!(declined["contact_id"], id.as_str(), "the attempt is linked");
    let (_, contact) = env.contact_by_phone(ALICE).await;
    assert_eq!(
        contact["call_count"], 2,
        "a declined call is not a call with the contact"
    );
    let (_, theirs) = env.get(&format!("/v1/calls?contact_id={id}")).await;
    let statuses: Vec<&str> = theirs["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["status"].as_str().unwrap())
        .collect();
    assert_eq!(statuses, ["failed", "completed", "completed"], "{theirs}");

    // Blocking is per caller: another caller still gets through, and an
    // anonymous one too, without becoming a contact.
    env.call_from("+14155550177", answered());
    env.call_from("anonymous", answered());
    let calls = env.ended_inbound_calls(5).await;
    assert!(calls[..2].iter().all(|c| c["status"] == "completed"));
    assert_eq!(calls[0]["contact_id"], Value::Null, "{}", calls[0]);
    let (_, list) = env.get("/v1/contacts").await;
    let numbers: Vec<&str> = list["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["phone_number"].as_str().unwrap())
        .collect();
    assert_eq!(numbers, ["+14155550177", ALICE], "{list}");

    // Unblocked: answered again, and counted.
    let (s, _) = env
        .send(
            reqwest::Method::PATCH,
            &format!("/v1/contacts/{id}"),
            Some(json!({"blocked": false})),
        )
        .await;
    assert_eq!(s, StatusCode::OK);
    env.call_from(ALICE, answered());
    let calls = env.ended_inbound_calls(6).await;
    assert_eq!(calls[0]["status"], "completed");
    let (_, contact) = env.contact_by_phone(ALICE).await;
    assert_eq!(contact["call_count"], 3);

    // Blocked again, then forgotten: forgetting unblocks (the number is
    // nobody's contact any more), and the next call starts a new contact.
    env.send(
        reqwest::Method::PATCH,
        &format!("/v1/contacts/{id}"),
        Some(json!({"blocked": true})),
    )
    .await;
    let (s, _) = env
        .send(reqwest::Method::DELETE, &format!("/v1/contacts/{id}"), None)
        .await;
    assert_eq!(s, StatusCode::NO_CONTENT);
    env.call_from(ALICE, answered());
    env.ended_inbound_calls(7).await;
    let (_, fresh) = env.contact_by_phone(ALICE).await;
    assert_ne!(fresh["id"], id.as_str());
    assert_eq!(fresh["call_count"], 1);
    assert_eq!(fresh["display_name"], Value::Null);
    env.finish().await;
}

async fn an_outbound_api_call_counts_with_its_callee(db: TestDb) {
    let mut uas = SippRun::uas(Scenario::uas_answer(None, 500))
        .spawn()
        .unwrap();
    tokio::task::block_in_place(|| uas.wait_ready(Duration::from_secs(5)).unwrap());
    let env = Env::start(db, Some(uas.sip_addr())).await;
    let callee = "+14155550188";
    let (s, created) = env
        .send(
            reqwest::Method::POST,
            "/v1/calls",
            Some(json!({"to": callee})),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{created}");
    let call_id = created["id"].as_str().unwrap().to_owned();
    let until = tokio::time::Instant::now() + WAIT;
    let call = loop {
        let (_, call) = env.get(&format!("/v1/calls/{call_id}")).await;
        if !call["ended_at"].is_null() && !call["contact_id"].is_null() {
            break call;
        }
        assert!(tokio::time::Instant::now() < until, "timed out: {call}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert_eq!(call["status"], "completed", "{call}");
    let (s, contact) = env.contact_by_phone(callee).await;
    assert_eq!(s, StatusCode::OK, "{contact}");
    assert_eq!(contact["call_count"], 1);
    assert_eq!(call["contact_id"], contact["id"]);
    let r = tokio::task::block_in_place(|| uas.wait().unwrap());
    assert!(r.all_ok(), "{}", r.diagnostics());
    env.finish().await;
}
