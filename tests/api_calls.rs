//! The calls API end to end: calls placed through `POST /v1/calls` to real
//! sipp peers on 127.0.0.1, followed over the WebSocket, read back, hung
//! up; signed webhook deliveries with retries and across a restart; stored
//! numbers driving the engine. Every test runs on SQLite and, when
//! `HOTLINE_TEST_POSTGRES` is set (`scripts/test`), on Postgres.

mod peers;
mod support;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::http::{HeaderMap, StatusCode};
use futures_util::{SinkExt, StreamExt};
use hotline::api::AppState;
use hotline::api::calls::bridge::Bridge;
use hotline::api::calls::webhooks::{Deliverer, DeliveryConfig};
use hotline::api::calls::{bridge, numbers};
use hotline::api::live::{Filter, LiveEvent};
use hotline::api::signing;
use hotline::call::{
    CallDirection, CallEvent, CallHandle, CallId, CallRecord, CallRegistry, Hangup, Outcome, Party,
};
use hotline::config::{Config, SipListen, SipTransport};
use hotline::engine::Engine;
use hotline::store::{
    CallStatus, DeliveryStatus, NewCall, NewNumber, NewTranscriptEntry, NewWebhook,
};
use peers::sipp::{Offer, Scenario, SippRun};
use serde_json::{Value, json};
use support::db::TestDb;
use tokio::sync::{Notify, watch};
use tokio_tungstenite::tungstenite::Message;

const WAIT: Duration = Duration::from_secs(20);

/// A fast retry schedule, so retries happen within a test.
fn fast_delivery() -> DeliveryConfig {
    DeliveryConfig {
        lease: Duration::from_secs(5),
        timeout: Duration::from_secs(2),
        poll: Duration::from_millis(50),
        backoff: vec![Duration::from_millis(100); 3],
        jitter: 0.0,
        ..DeliveryConfig::default()
    }
}

/// A whole server in-process: engine, store, bridge, webhook worker and
/// HTTP on 127.0.0.1.
struct Env {
    db: TestDb,
    state: AppState,
    http: SocketAddr,
    key: String,
    org_id: String,
    client: reqwest::Client,
    stop: watch::Sender<bool>,
}

impl Env {
    async fn start(db: TestDb) -> Env {
        Env::start_with(db, |_| {}).await
    }

    /// As [`Env::start`], with `tweak` applied to the configuration.
    async fn start_with(db: TestDb, tweak: impl FnOnce(&mut Config)) -> Env {
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
        // Calls placed back to back are dialled at once, as the engine's
        // own answers (a refusal) are what these tests check.
        config.outbound.calls_per_second = 100.0;
        // Away from the peers' ports and the SIP tests' RTP range.
        config.rtp.port_min = 45000;
        config.rtp.port_max = 49999;
        config.rtp.bind_ip = peers::LOOPBACK.into();
        config.sip.drain_secs = 1;
        // The voice agent finds the installed models; its engines load
        // only when a test's call asks for an agent.
        config.agent.models_dir = Some(
            std::env::var("HOTLINE_MODELS_DIR")
                .unwrap_or_else(|_| concat!(env!("CARGO_MANIFEST_DIR"), "/data/models").to_owned())
                .into(),
        );
        tweak(&mut config);
        config.validate().unwrap();
        let config = Arc::new(config);
        let registry = CallRegistry::new(config.sip.max_calls);
        let engine = Engine::start(config.clone(), registry.clone())
            .await
            .unwrap();
        let store = db.store.clone();
        engine.set_agents(hotline::agent::service::AgentService::new(
            &config,
            Some(store.clone()),
        ));
        numbers::load_all(&store, &engine).await.unwrap();
        let state = AppState::new(config, store.clone(), Some(engine));
        let (stop, stopped) = watch::channel(false);
        let wake = Arc::new(Notify::new());
        hotline::api::calls::dispatch::spawn(
            state.clone(),
            state.engine.clone().unwrap(),
            stopped.clone(),
        );
        bridge::spawn(state.clone(), registry, wake.clone(), stopped.clone());
        Deliverer::new(store.clone(), fast_delivery(), state.metrics.clone())
            .unwrap()
            .spawn(wake, stopped);
        let listener = tokio::net::TcpListener::bind((peers::LOOPBACK, 0))
            .await
            .unwrap();
        let http = listener.local_addr().unwrap();
        let router = hotline::http::router(state.clone());
        tokio::spawn(async move { axum::serve(listener, router).await });
        let org = store.ensure_org("acme").await.unwrap();
        let key = store.create_api_key(&org.id, "test").await.unwrap();
        Env {
            db,
            state,
            http,
            key: key.plaintext,
            org_id: org.id,
            client: reqwest::Client::new(),
            stop,
        }
    }

    async fn send_as(
        &self,
        key: Option<&str>,
        method: reqwest::Method,
        path: &str,
        body: Option<Value>,
    ) -> (StatusCode, HeaderMap, Value) {
        let mut req = self
            .client
            .request(method, format!("http://{}{path}", self.http));
        if let Some(k) = key {
            req = req.header("authorization", format!("Bearer {k}"));
        }
        if let Some(b) = body {
            req = req
                .header("content-type", "application/json")
                .body(b.to_string());
        }
        let res = req.send().await.unwrap();
        let status = StatusCode::from_u16(res.status().as_u16()).unwrap();
        let mut headers = HeaderMap::new();
        for (k, v) in res.headers() {
            headers.insert(
                axum::http::HeaderName::from_bytes(k.as_str().as_bytes()).unwrap(),
                axum::http::HeaderValue::from_bytes(v.as_bytes()).unwrap(),
            );
        }
        let bytes = res.bytes().await.unwrap();
        let json = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
        (status, headers, json)
    }

    async fn post(&self, path: &str, body: Value) -> (StatusCode, Value) {
        let (s, _, j) = self
            .send_as(Some(&self.key), reqwest::Method::POST, path, Some(body))
            .await;
        (s, j)
    }

    async fn get(&self, path: &str) -> (StatusCode, Value) {
        let (s, _, j) = self
            .send_as(Some(&self.key), reqwest::Method::GET, path, None)
            .await;
        (s, j)
    }

    /// Polls `GET /v1/calls/{id}` until `done` holds.
    async fn wait_call(&self, id: &str, done: impl Fn(&Value) -> bool) -> Value {
        let until = tokio::time::Instant::now() + WAIT;
        loop {
            let (s, call) = self.get(&format!("/v1/calls/{id}")).await;
            assert_eq!(s, StatusCode::OK, "{call}");
            if done(&call) {
                return call;
            }
            assert!(tokio::time::Instant::now() < until, "timed out: {call}");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    async fn ws(
        &self,
        query: &str,
    ) -> tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>
    {
        let url = format!("ws://{}/v1/ws?token={}{query}", self.http, self.key);
        tokio_tungstenite::connect_async(url).await.unwrap().0
    }

    async fn finish(self) {
        let _ = self.stop.send(true);
        if let Some(e) = &self.state.engine {
            e.drain(Duration::from_millis(100)).await;
        }
        self.db.cleanup().await;
    }
}

/// Runs `fn(&Env)` on SQLite and on Postgres (when configured).
macro_rules! on_both {
    ($($name:ident),* $(,)?) => {$(
        mod $name {
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn sqlite() {
                let env = super::Env::start(super::support::db::TestDb::sqlite().await).await;
                super::$name(&env).await;
                env.finish().await;
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn postgres() {
                if let Some(db) = super::support::db::TestDb::postgres(stringify!($name)).await {
                    let env = super::Env::start(db).await;
                    super::$name(&env).await;
                    env.finish().await;
                }
            }
        }
    )*};
}

on_both!(
    a_call_placed_through_the_api_is_followed_live_and_recorded,
    hanging_up_a_ringing_call_cancels_it_and_creates_are_idempotent_under_concurrency,
    invalid_calls_are_refused_with_the_field_named,
    calls_are_isolated_listed_and_read_with_transcripts_and_recordings,
    webhooks_are_signed_and_retried_until_delivered_or_given_up,
    stored_numbers_drive_the_engine_and_inbound_calls_are_recorded,
    max_duration_secs_ends_an_answered_call,
    an_ai_number_runs_its_stored_agent_and_the_call_is_concluded,
);

api_on_both!(
    queued_is_announced_first_whichever_comes_first,
    the_stored_answer_time_is_the_one_announced,
    the_bridge_closes_calls_that_ended_while_it_lagged,
);

/// A request the receiver got: headers and body.
type Received = (HeaderMap, Vec<u8>);

/// A local webhook receiver: answers with the scripted statuses in turn
/// (200 once the script is used up) and keeps every request.
#[derive(Clone, Default)]
struct Receiver {
    script: Arc<Mutex<Vec<u16>>>,
    got: Arc<Mutex<Vec<Received>>>,
}

impl Receiver {
    async fn start(script: Vec<u16>) -> (Receiver, String) {
        let r = Receiver {
            script: Arc::new(Mutex::new(script)),
            got: Arc::default(),
        };
        let me = r.clone();
        let app = axum::Router::new().route(
            "/hook",
            axum::routing::post(move |headers: HeaderMap, body: axum::body::Bytes| {
                let me = me.clone();
                async move {
                    me.got.lock().unwrap().push((headers, body.to_vec()));
                    let mut script = me.script.lock().unwrap();
                    let code = if script.is_empty() {
                        200
                    } else {
                        script.remove(0)
                    };
                    StatusCode::from_u16(code).unwrap()
                }
            }),
        );
        let listener = tokio::net::TcpListener::bind((peers::LOOPBACK, 0))
            .await
            .unwrap();
        let url = format!("http://{}/hook", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, app).await });
        (r, url)
    }

    fn requests(&self) -> Vec<Received> {
        self.got.lock().unwrap().clone()
    }

    /// Every request's body, after checking its signature with `secret`.
    fn verified_bodies(&self, secret: &str) -> Vec<Value> {
        self.requests()
            .iter()
            .map(|(h, body)| {
                let sig = h[signing::SIGNATURE_HEADER].to_str().unwrap();
                let ts: i64 = h[signing::TIMESTAMP_HEADER]
                    .to_str()
                    .unwrap()
                    .parse()
                    .unwrap();
                let now = hotline::store::now_ms() / 1000;
                assert!(
                    signing::verify(secret, sig, ts, body, now, 300),
                    "bad signature"
                );
                serde_json::from_slice(body).unwrap()
            })
            .collect()
    }

    async fn wait_for(&self, n: usize) {
        let until = tokio::time::Instant::now() + WAIT;
        while self.got.lock().unwrap().len() < n {
            assert!(tokio::time::Instant::now() < until, "receiver got too few");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

async fn a_call_placed_through_the_api_is_followed_live_and_recorded(env: &Env) {
    let (hook, hook_url) = Receiver::start(vec![]).await;
    let mut uas = SippRun::uas(Scenario::uas_answer(None, 1000))
        .spawn()
        .unwrap();
    tokio::task::block_in_place(|| uas.wait_ready(Duration::from_secs(5)).unwrap());
    let mut ws = env.ws("").await;
    let body = json!({
        "to": format!("sip:test@{}", uas.sip_addr()),
        "from": "+14155550100",
        "voice": "alloy",
        "metadata": {"crm_id": "42"},
        "webhook_url": hook_url,
        "client_id": "order-1",
    });
    let (status, created) = env.post("/v1/calls", body.clone()).await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    let id = created["id"].as_str().unwrap().to_owned();
    assert!(id.starts_with("call_"));
    // Dialled at once: the organization is well within its limits.
    assert_eq!(created["status"], "dialing");
    assert_eq!(created["attempts"], 1);
    assert_eq!(created["direction"], "outbound");
    assert_eq!(created["metadata"]["crm_id"], "42");
    let secret = created["webhook_secret"].as_str().unwrap().to_owned();

    // The live stream: status changes in order, one sequence per call.
    let mut statuses = Vec::new();
    let mut sequences = Vec::new();
    let mut answered_event = Value::Null;
    let until = tokio::time::Instant::now() + WAIT;
    let completed_event = loop {
        let left = until.saturating_duration_since(tokio::time::Instant::now());
        let msg = tokio::time::timeout(left, ws.next())
            .await
            .expect("live events in time")
            .unwrap()
            .unwrap();
        let Message::Text(text) = msg else { continue };
        let e: Value = serde_json::from_str(&text).unwrap();
        assert_eq!(e["call_id"], id.as_str());
        assert!(e["timestamp"].as_i64().unwrap() > 0);
        sequences.push(e["sequence"].as_u64().unwrap());
        match e["event_type"].as_str().unwrap() {
            "call.status" => {
                if e["payload"]["status"] == "in_progress" {
                    answered_event = e["payload"].clone();
                }
                statuses.push(e["payload"]["status"].as_str().unwrap().to_owned());
            }
            "call.completed" => {
                assert_eq!(e["payload"]["status"], "completed");
                break e["payload"].clone();
            }
            _ => {}
        }
    };
    assert_eq!(
        statuses,
        ["queued", "dialing", "ringing", "in_progress", "completed"]
    );
    assert!(
        sequences.windows(2).all(|w| w[1] == w[0] + 1) && sequences[0] == 1,
        "{sequences:?}"
    );
    let uas = tokio::task::block_in_place(|| uas.wait().unwrap());
    assert!(uas.all_ok(), "{}", uas.diagnostics());

    let (s, call) = env.get(&format!("/v1/calls/{id}")).await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(call["status"], "completed");
    assert_eq!(call["hangup_by"], "callee");
    let created_at = call["created_at"].as_i64().unwrap();
    let answered = call["answered_at"].as_i64().unwrap();
    let ended = call["ended_at"].as_i64().unwrap();
    assert!(created_at <= answered && answered <= ended, "{call}");
    // sipp holds the call for a second before its BYE.
    assert!(call["duration_ms"].as_i64().unwrap() >= 900, "{call}");
    assert_eq!(call["duration_ms"].as_i64(), Some(ended - answered));
    assert!(call["sip_call_id"].as_str().is_some_and(|s| !s.is_empty()));
    // The live events carry the stored times, to the millisecond.
    assert_eq!(answered_event["answered_at"], call["answered_at"]);
    for field in ["answered_at", "ended_at", "duration_ms", "created_at"] {
        assert_eq!(completed_event[field], call[field], "{field}");
    }
    assert_eq!(call["voice"], "alloy");
    assert_eq!(call["transcript"], json!([]));
    assert!(
        call.get("webhook_secret").is_none(),
        "secret only at creation"
    );

    // A retry with the same client_id: the same call, 200.
    let (status, again) = env.post("/v1/calls", body).await;
    assert_eq!(status, StatusCode::OK, "{again}");
    assert_eq!(again["id"], id.as_str());
    assert_eq!(again["status"], "completed");
    assert_eq!(again["webhook_secret"], secret.as_str());

    // The call's own webhook got its events, signed with its secret.
    hook.wait_for(8).await;
    let bodies = hook.verified_bodies(&secret);
    let kinds: Vec<String> = bodies
        .iter()
        .map(|b| {
            let t = b["event_type"].as_str().unwrap();
            match t {
                "call.status" => format!("{t}:{}", b["data"]["status"].as_str().unwrap()),
                _ => t.to_owned(),
            }
        })
        .collect();
    let mut sorted = kinds.clone();
    sorted.sort();
    assert_eq!(
        sorted,
        [
            "call.attempting",
            "call.completed",
            "call.queued",
            "call.status:completed",
            "call.status:dialing",
            "call.status:in_progress",
            "call.status:queued",
            "call.status:ringing"
        ],
        "{kinds:?}"
    );
    assert!(bodies.iter().all(|b| b["call_id"] == id.as_str()));
    // It is not one of the org's webhooks.
    let hooks = env
        .db
        .store
        .list_webhooks(&env.org_id, &Default::default())
        .await
        .unwrap();
    assert!(hooks.items.is_empty());
    let (_, list) = env.get("/v1/calls?status=completed").await;
    assert_eq!(list["data"][0]["id"], id.as_str());
    assert!(list["next_cursor"].is_null());
}

async fn hanging_up_a_ringing_call_cancels_it_and_creates_are_idempotent_under_concurrency(
    env: &Env,
) {
    let mut uas = SippRun::uas(Scenario::from_fixture("uas_ring_cancel.xml"))
        .spawn()
        .unwrap();
    tokio::task::block_in_place(|| uas.wait_ready(Duration::from_secs(5)).unwrap());
    let body = json!({
        "to": format!("sip:test@{}", uas.sip_addr()),
        "idempotency_key": "retry-me",
    });
    let attempts = (0..6).map(|_| env.post("/v1/calls", body.clone()));
    let replies = futures_util::future::join_all(attempts).await;
    let created = replies
        .iter()
        .filter(|(s, _)| *s == StatusCode::CREATED)
        .count();
    assert_eq!(created, 1, "{replies:?}");
    assert!(
        replies
            .iter()
            .all(|(s, _)| *s == StatusCode::CREATED || *s == StatusCode::OK)
    );
    let id = replies[0].1["id"].as_str().unwrap().to_owned();
    assert!(replies.iter().all(|(_, c)| c["id"] == id.as_str()));
    assert_eq!(replies[0].1["client_id"], "retry-me");

    env.wait_call(&id, |c| c["status"] == "ringing").await;
    let (s, call) = env.post(&format!("/v1/calls/{id}/hangup"), json!({})).await;
    assert_eq!(s, StatusCode::ACCEPTED, "{call}");
    let call = env.wait_call(&id, |c| c["status"] != "ringing").await;
    assert_eq!(call["status"], "canceled", "{call}");
    assert_eq!(call["hangup_by"], "api");
    assert_eq!(call["answered_at"], Value::Null);
    assert_eq!(call["duration_ms"], 0);
    let (s, again) = env.post(&format!("/v1/calls/{id}/hangup"), json!({})).await;
    assert_eq!(s, StatusCode::CONFLICT, "{again}");
    assert!(again["detail"].as_str().unwrap().contains("ended"));
    let uas = tokio::task::block_in_place(|| uas.wait().unwrap());
    assert!(uas.all_ok(), "{}", uas.diagnostics());
    let (_, list) = env.get("/v1/calls").await;
    assert_eq!(list["data"].as_array().unwrap().len(), 1, "one call only");
}

async fn invalid_calls_are_refused_with_the_field_named(env: &Env) {
    let cases = [
        (json!({"to": "4155550100"}), vec!["body", "to"]),
        (json!({}), vec!["body", "to"]),
        (json!({"to": "+19115550100"}), vec!["body", "to"]),
        (json!({"to": "+19005550100"}), vec!["body", "to"]),
        (json!({"to": "sip:"}), vec!["body", "to"]),
        // No trunk is configured: phone numbers cannot be reached.
        (json!({"to": "+14155550100"}), vec!["body", "to"]),
        (
            json!({"to": "sip:a@127.0.0.1", "metadata": {"k": "x".repeat(513)}}),
            vec!["body", "metadata", "k"],
        ),
        (
            json!({"to": "sip:a@127.0.0.1", "from": "num_000000000000000000000000"}),
            vec!["body", "from"],
        ),
        (
            json!({"to": "sip:a@127.0.0.1", "from": "nope"}),
            vec!["body", "from"],
        ),
        (
            json!({"to": "sip:a@127.0.0.1", "agent_id": "agt_000000000000000000000000"}),
            vec!["body", "agent_id"],
        ),
        (
            json!({"to": "sip:a@127.0.0.1", "max_duration_secs": 0}),
            vec!["body", "max_duration_secs"],
        ),
        (
            json!({"to": "sip:a@127.0.0.1", "webhook_url": "ftp://x"}),
            vec!["body", "webhook_url"],
        ),
        (
            json!({"to": "sip:a@127.0.0.1", "client_id": "a", "idempotency_key": "b"}),
            vec!["body", "idempotency_key"],
        ),
        (json!({"to": 5}), vec!["body", "to"]),
    ];
    for (body, loc) in cases {
        let (s, reply) = env.post("/v1/calls", body.clone()).await;
        assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{body}: {reply}");
        let locs: Vec<Value> = reply["detail"]
            .as_array()
            .unwrap()
            .iter()
            .map(|d| d["loc"].clone())
            .collect();
        assert!(locs.contains(&json!(loc)), "{body}: {reply}");
    }
    // Several faults are reported together.
    let (_, reply) = env
        .post(
            "/v1/calls",
            json!({"to": "+1911", "max_duration_secs": 999999}),
        )
        .await;
    assert_eq!(reply["detail"].as_array().unwrap().len(), 2, "{reply}");
    let (s, _, _) = env
        .send_as(
            None,
            reqwest::Method::POST,
            "/v1/calls",
            Some(json!({"to": "sip:a@127.0.0.1"})),
        )
        .await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);
    let (_, list) = env.get("/v1/calls").await;
    assert_eq!(list["data"], json!([]), "nothing was created");
    let (s, reply) = env.get("/v1/calls?status=done&created_after=x").await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(reply["detail"].as_array().unwrap().len(), 2, "{reply}");
}

async fn calls_are_isolated_listed_and_read_with_transcripts_and_recordings(env: &Env) {
    let store = &env.db.store;
    let mut ids = Vec::new();
    for i in 0..5 {
        let new = NewCall {
            metadata: BTreeMap::from([("i".to_string(), i.to_string())]),
            ..NewCall::new(
                hotline::call::CallDirection::Outbound,
                "+14155550100",
                format!("+1415555020{i}"),
            )
        };
        ids.push(store.create_call(&env.org_id, &new).await.unwrap().0.id);
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    // Pages of two, newest first, until the cursor runs out.
    let mut seen = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let q = cursor
            .as_ref()
            .map_or(String::new(), |c| format!("&cursor={c}"));
        let (s, page) = env.get(&format!("/v1/calls?limit=2{q}")).await;
        assert_eq!(s, StatusCode::OK, "{page}");
        for c in page["data"].as_array().unwrap() {
            assert!(c.get("transcript").is_none(), "lists leave transcripts out");
            seen.push(c["id"].as_str().unwrap().to_owned());
        }
        match page["next_cursor"].as_str() {
            Some(c) => cursor = Some(c.to_owned()),
            None => break,
        }
    }
    let expected: Vec<String> = ids.iter().rev().map(|i| i.to_string()).collect();
    assert_eq!(seen, expected);
    let (s, _) = env.get("/v1/calls?cursor=garbage").await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY);
    let (_, q) = env.get("/v1/calls?status=queued&direction=inbound").await;
    assert_eq!(q["data"], json!([]));

    let id = ids[0].as_str();
    for (speaker, text, interrupted) in [("agent", "Hello", true), ("caller", "Hi there", false)] {
        store
            .append_transcript(
                &env.org_id,
                id,
                &NewTranscriptEntry {
                    speaker: speaker.into(),
                    text: text.into(),
                    start_ms: Some(0),
                    end_ms: Some(500),
                    interrupted,
                },
            )
            .await
            .unwrap();
    }
    let (s, t) = env.get(&format!("/v1/calls/{id}/transcript")).await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(t["transcript"][1]["speaker"], "caller");
    assert_eq!(t["transcript"][1]["seq"], 2);
    assert_eq!(t["transcript"][0]["interrupted"], true);
    assert_eq!(t["transcript"][1]["interrupted"], false);
    let (_, call) = env.get(&format!("/v1/calls/{id}")).await;
    assert_eq!(call["transcript"][0]["text"], "Hello");
    assert_eq!(call["transcript"][0]["interrupted"], true);
    assert_eq!(call["recording_url"], Value::Null);

    // Recording: 404 until there is one, then the WAV.
    let (s, _) = env.get(&format!("/v1/calls/{id}/recording")).await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    let wav = env.state.config.data_dir.join("rec.wav");
    std::fs::write(&wav, b"RIFF\x24\x00\x00\x00WAVEfmt ").unwrap();
    store
        .update_call(
            &env.org_id,
            id,
            &hotline::store::CallUpdate {
                recording_path: Some("rec.wav".into()),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    let res = env
        .client
        .get(format!("http://{}/v1/calls/{id}/recording", env.http))
        .header("x-api-key", &env.key)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status().as_u16(), 200);
    assert_eq!(res.headers()["content-type"], "audio/wav");
    assert_eq!(&res.bytes().await.unwrap()[..4], b"RIFF");
    let (_, call) = env.get(&format!("/v1/calls/{id}")).await;
    assert_eq!(call["recording_url"], format!("/v1/calls/{id}/recording"));

    // Another organization sees none of it.
    let other_org = store.ensure_org("globex").await.unwrap();
    let other = store
        .create_api_key(&other_org.id, "other")
        .await
        .unwrap()
        .plaintext;
    for (method, path) in [
        (reqwest::Method::GET, format!("/v1/calls/{id}")),
        (reqwest::Method::GET, format!("/v1/calls/{id}/transcript")),
        (reqwest::Method::GET, format!("/v1/calls/{id}/recording")),
        (reqwest::Method::POST, format!("/v1/calls/{id}/hangup")),
        (reqwest::Method::GET, format!("/v1/ws?call_id={id}")),
    ] {
        let (s, _, body) = env.send_as(Some(&other), method, &path, None).await;
        assert_eq!(s, StatusCode::NOT_FOUND, "{path}: {body}");
        assert_eq!(body["detail"], "call not found", "{path}");
    }
    let (_, _, list) = env
        .send_as(Some(&other), reqwest::Method::GET, "/v1/calls", None)
        .await;
    assert_eq!(list["data"], json!([]));
    let (s, _) = env.get("/v1/calls/call_000000000000000000000000").await;
    assert_eq!(s, StatusCode::NOT_FOUND);

    // A call that is not live (never placed here) is closed by hang-up.
    let (s, closed) = env.post(&format!("/v1/calls/{id}/hangup"), json!({})).await;
    assert_eq!(s, StatusCode::ACCEPTED);
    assert_eq!(closed["status"], "canceled");
    assert_eq!(closed["hangup_by"], "api");
}

async fn webhooks_are_signed_and_retried_until_delivered_or_given_up(env: &Env) {
    let store = &env.db.store;
    let (flaky, flaky_url) = Receiver::start(vec![500, 500]).await;
    let (gone, gone_url) = Receiver::start(vec![410]).await;
    let (broken, broken_url) = Receiver::start(vec![503; 10]).await;
    let (mut secrets, mut hook_ids) = (Vec::new(), Vec::new());
    for url in [&flaky_url, &gone_url, &broken_url] {
        let w = store
            .create_webhook(
                &env.org_id,
                &NewWebhook {
                    url: url.clone(),
                    events: vec!["call.completed".into()],
                },
            )
            .await
            .unwrap();
        secrets.push(w.secret);
        hook_ids.push(w.id);
    }
    let payload = json!({"event_type": "call.completed", "data": {"n": 1}});
    let queued = store
        .enqueue_event(&env.org_id, "call.completed", &payload)
        .await
        .unwrap();
    assert_eq!(queued.len(), 3);
    // An event nobody subscribed to queues nothing.
    let none = store
        .enqueue_event(&env.org_id, "dtmf", &json!({}))
        .await
        .unwrap();
    assert!(none.is_empty());

    let final_state = |hook: String| async move {
        let until = tokio::time::Instant::now() + WAIT;
        loop {
            let page = store
                .list_deliveries(&env.org_id, Some(&hook), &Default::default())
                .await
                .unwrap();
            let d = page.items[0].clone();
            if matches!(d.status, DeliveryStatus::Delivered | DeliveryStatus::Failed) {
                return d;
            }
            assert!(tokio::time::Instant::now() < until, "{d:?}");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    };
    let d = final_state(hook_ids[0].clone()).await;
    assert_eq!(d.status, DeliveryStatus::Delivered);
    assert_eq!(d.attempts, 3);
    assert_eq!(d.last_status_code, Some(200));
    let bodies = flaky.verified_bodies(&secrets[0]);
    assert_eq!(bodies.len(), 3);
    assert!(bodies.iter().all(|b| *b == payload));
    let reqs = flaky.requests();
    let delivery_ids: Vec<_> = reqs
        .iter()
        .map(|(h, _)| h["x-hotline-delivery"].clone())
        .collect();
    assert!(delivery_ids.iter().all(|i| *i == d.id.as_str()));
    assert_eq!(reqs[0].0["x-hotline-event"], "call.completed");

    let d = final_state(hook_ids[1].clone()).await;
    assert_eq!(d.status, DeliveryStatus::Failed);
    assert_eq!(d.attempts, 1, "410 is final");
    assert_eq!(gone.requests().len(), 1);

    // Three retries, then failed.
    let d = final_state(hook_ids[2].clone()).await;
    assert_eq!(d.status, DeliveryStatus::Failed);
    assert_eq!(d.attempts, 4);
    assert_eq!(d.last_status_code, Some(503));
    assert_eq!(broken.verified_bodies(&secrets[2]).len(), 4);
    let m = env.state.metrics.render(Default::default());
    assert!(
        m.contains("hotline_webhook_deliveries_total{result=\"retry\"}"),
        "{m}"
    );
}

async fn stored_numbers_drive_the_engine_and_inbound_calls_are_recorded(env: &Env) {
    let store = &env.db.store;
    let sip = env
        .state
        .engine
        .as_ref()
        .unwrap()
        .local_addr(hotline_sip::transport::Transport::Udp)
        .unwrap();
    let number = store
        .create_number(
            &env.org_id,
            &NewNumber {
                e164: "+14155550142".into(),
                label: None,
                trunk: None,
                agent_id: None,
                inbound: json!({"mode": "off"}),
            },
        )
        .await
        .unwrap();
    numbers::number_changed(&env.state, &number);
    let call = |scenario: Scenario| {
        let mut run = SippRun::uac(scenario, sip);
        run.service = "+14155550142".into();
        run.timeout = WAIT;
        tokio::task::block_in_place(|| run.spawn().unwrap().wait().unwrap())
    };
    let r = call(Scenario::uac_expect_status(404));
    assert!(r.all_ok(), "{}", r.diagnostics());

    // Echo from now on, without a restart; live events follow the number.
    let number = store
        .update_number(
            &env.org_id,
            &number.id,
            &hotline::store::NumberUpdate {
                inbound: Some(json!({"mode": "echo"})),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    numbers::number_changed(&env.state, &number);
    let mut ws = env.ws(&format!("&number_id={}", number.id)).await;
    let r = call(Scenario::uac_offer(Offer::PcmuDtmf, 500));
    assert!(r.all_ok(), "{}", r.diagnostics());
    let mut statuses = Vec::new();
    while statuses.last().map(String::as_str) != Some("completed") {
        let msg = tokio::time::timeout(WAIT, ws.next())
            .await
            .unwrap()
            .unwrap()
            .unwrap();
        if let Message::Text(t) = msg {
            let e: Value = serde_json::from_str(&t).unwrap();
            if e["event_type"] == "call.status" {
                statuses.push(e["payload"]["status"].as_str().unwrap().to_owned());
            }
        }
    }
    assert_eq!(statuses, ["ringing", "in_progress", "completed"]);
    let _ = ws.close(None).await;
    let (_, list) = env
        .get(&format!(
            "/v1/calls?direction=inbound&number_id={}",
            number.id
        ))
        .await;
    let calls = list["data"].as_array().unwrap();
    assert_eq!(calls.len(), 1, "{list}");
    assert_eq!(calls[0]["status"], "completed");
    assert_eq!(calls[0]["to"], "+14155550142");
    assert_eq!(calls[0]["hangup_by"], "caller");

    // Removed: back to the configuration's numbers, where it is unknown.
    numbers::number_removed(&env.state, "+14155550142");
    let r = call(Scenario::uac_expect_status(404));
    assert!(r.all_ok(), "{}", r.diagnostics());
}

/// Deliveries wait in the outbox while no worker runs (or while one died
/// holding them) and go out once a worker runs again, after a reopen of
/// the database: nothing is lost on restart.
async fn webhook_deliveries_survive_a_restart(mut db: TestDb) {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let (hook, url) = Receiver::start(vec![]).await;
    let org = db.store.ensure_org("acme").await.unwrap();
    let w = db
        .store
        .create_webhook(
            &org.id,
            &NewWebhook {
                url,
                events: vec![],
            },
        )
        .await
        .unwrap();
    db.store
        .enqueue_event(&org.id, "call.status", &json!({"n": 1}))
        .await
        .unwrap();
    db.store
        .enqueue_event(&org.id, "call.status", &json!({"n": 2}))
        .await
        .unwrap();
    // A worker claims one and dies before sending it. (Both are due at the
    // same millisecond, often: which one it takes is not fixed.)
    let claimed = db
        .store
        .claim_due(hotline::store::now_ms(), 1, Duration::from_millis(300))
        .await
        .unwrap();
    assert_eq!(claimed.len(), 1);
    let first = &claimed[0].delivery;
    db.reopen().await;
    let (stop, stopped) = watch::channel(false);
    let worker = Deliverer::new(
        db.store.clone(),
        fast_delivery(),
        Arc::new(hotline::api::metrics::Metrics::default()),
    )
    .unwrap()
    .spawn(Arc::new(Notify::new()), stopped);
    hook.wait_for(2).await;
    let mut ns: Vec<i64> = hook
        .verified_bodies(&w.secret)
        .iter()
        .map(|b| b["n"].as_i64().unwrap())
        .collect();
    ns.sort();
    assert_eq!(ns, [1, 2]);
    let _ = stop.send(true);
    worker.await.unwrap();
    let d = db.store.get_delivery(&org.id, &first.id).await.unwrap();
    assert_eq!(d.status, DeliveryStatus::Delivered);
    assert_eq!(d.attempts, 2, "the dead worker's claim counts");
    db.cleanup().await;
}

mod webhook_deliveries_survive_a_restart {
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn sqlite() {
        super::webhook_deliveries_survive_a_restart(super::support::db::TestDb::sqlite().await)
            .await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn postgres() {
        if let Some(db) =
            super::support::db::TestDb::postgres("webhook_deliveries_survive_a_restart").await
        {
            super::webhook_deliveries_survive_a_restart(db).await;
        }
    }
}

/// The WebSocket refuses bad keys and closes with "going away" when the
/// server shuts down.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn websocket_needs_a_key_and_closes_on_shutdown() {
    let env = Env::start(TestDb::sqlite().await).await;
    let bad = format!("ws://{}/v1/ws?token=hl_live_nope", env.http);
    match tokio_tungstenite::connect_async(bad).await {
        Err(tokio_tungstenite::tungstenite::Error::Http(res)) => {
            assert_eq!(res.status().as_u16(), 401)
        }
        other => panic!("{other:?}"),
    }
    let mut ws = env.ws("").await;
    ws.send(Message::Ping(vec![1].into())).await.unwrap();
    let pong = tokio::time::timeout(WAIT, ws.next())
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    assert!(matches!(pong, Message::Pong(_)), "{pong:?}");
    env.state.hub.close_all();
    let msg = tokio::time::timeout(WAIT, ws.next())
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    match msg {
        Message::Close(Some(f)) => assert_eq!(u16::from(f.code), 1001),
        other => panic!("{other:?}"),
    }
    env.finish().await;
}

async fn max_duration_secs_ends_an_answered_call(env: &Env) {
    // The peer would hold the call for a minute: only our limit ends it.
    let mut uas = SippRun::uas(Scenario::uas_answer(None, 60_000))
        .spawn()
        .unwrap();
    tokio::task::block_in_place(|| uas.wait_ready(Duration::from_secs(5)).unwrap());
    let body = json!({
        "to": format!("sip:test@{}", uas.sip_addr()),
        "max_duration_secs": 1,
    });
    let (status, created) = env.post("/v1/calls", body).await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    assert_eq!(created["max_duration_secs"], 1);
    let id = created["id"].as_str().unwrap().to_owned();
    let call = env
        .wait_call(&id, |c| {
            !["queued", "dialing", "ringing", "in_progress"]
                .contains(&c["status"].as_str().unwrap())
        })
        .await;
    assert_eq!(call["status"], "completed", "{call}");
    assert_eq!(call["hangup_by"], "max_duration", "{call}");
    assert_eq!(call["hangup_cause"], "max_duration_secs reached", "{call}");
    // The timer starts once the answer is recorded, so the call was up at
    // least the limit.
    assert!(call["duration_ms"].as_i64().unwrap() >= 1000, "{call}");
    // The peer got our BYE and answered it: it did not hang up itself.
    let uas = tokio::task::block_in_place(|| uas.wait().unwrap());
    assert!(uas.all_ok(), "{}", uas.diagnostics());
}

/// The engine refuses calls at `sip.max_calls` and while draining: 503
/// with Retry-After, and nothing is recorded.
async fn the_engine_refusing_a_call_is_a_503_with_retry_after(db: TestDb) {
    let env = Env::start_with(db, |c| c.sip.max_calls = 1).await;
    let mut uas = SippRun::uas(Scenario::from_fixture("uas_ring_cancel.xml"))
        .spawn()
        .unwrap();
    tokio::task::block_in_place(|| uas.wait_ready(Duration::from_secs(5)).unwrap());
    let to = format!("sip:test@{}", uas.sip_addr());
    let (s, first) = env.post("/v1/calls", json!({ "to": to })).await;
    assert_eq!(s, StatusCode::CREATED, "{first}");
    let id = first["id"].as_str().unwrap().to_owned();
    env.wait_call(&id, |c| c["status"] == "ringing").await;

    // The one call allowed is up: the next is refused.
    let body = json!({"to": to, "client_id": "second"});
    let (s, headers, reply) = env
        .send_as(
            Some(&env.key),
            reqwest::Method::POST,
            "/v1/calls",
            Some(body.clone()),
        )
        .await;
    assert_eq!(s, StatusCode::SERVICE_UNAVAILABLE, "{reply}");
    assert_eq!(headers["retry-after"], "5");
    assert!(
        reply["detail"].as_str().unwrap().contains("call limit"),
        "{reply}"
    );
    let (_, list) = env.get("/v1/calls").await;
    let ids: Vec<&str> = list["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, [id.as_str()], "the refused call is not recorded");

    let (s, _) = env.post(&format!("/v1/calls/{id}/hangup"), json!({})).await;
    assert_eq!(s, StatusCode::ACCEPTED);
    env.wait_call(&id, |c| c["status"] == "canceled").await;
    let uas = tokio::task::block_in_place(|| uas.wait().unwrap());
    assert!(uas.all_ok(), "{}", uas.diagnostics());

    // Draining: refused with a longer wait, whatever the room.
    env.state
        .engine
        .as_ref()
        .unwrap()
        .registry()
        .start_draining();
    let (s, headers, reply) = env
        .send_as(
            Some(&env.key),
            reqwest::Method::POST,
            "/v1/calls",
            Some(body),
        )
        .await;
    assert_eq!(s, StatusCode::SERVICE_UNAVAILABLE, "{reply}");
    assert_eq!(headers["retry-after"], "30");
    assert!(
        reply["detail"].as_str().unwrap().contains("draining"),
        "{reply}"
    );
    let (_, list) = env.get("/v1/calls").await;
    assert_eq!(list["data"].as_array().unwrap().len(), 1, "{list}");
    env.finish().await;
}

mod the_engine_refusing_a_call_is_a_503_with_retry_after {
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn sqlite() {
        super::the_engine_refusing_a_call_is_a_503_with_retry_after(
            super::support::db::TestDb::sqlite().await,
        )
        .await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn postgres() {
        if let Some(db) = super::support::db::TestDb::postgres(
            "the_engine_refusing_a_call_is_a_503_with_retry_after",
        )
        .await
        {
            super::the_engine_refusing_a_call_is_a_503_with_retry_after(db).await;
        }
    }
}

/// A bridge driven step by step, over the API's state, with a registry of
/// its own for the calls it should think live.
fn bridge_of(api: &support::api::Api) -> (Bridge, CallRegistry) {
    let registry = CallRegistry::new(10);
    let bridge = Bridge::new(api.state.clone(), registry.clone(), Arc::new(Notify::new()));
    (bridge, registry)
}

/// A call recorded as `POST /v1/calls` records it: queued.
async fn api_call(api: &support::api::Api) -> CallId {
    let id = CallId::random();
    let new = NewCall {
        id: Some(id.clone()),
        ..NewCall::new(
            CallDirection::Outbound,
            "+14155550100",
            "sip:peer@127.0.0.1",
        )
    };
    let (call, created) = api.db.store.create_call(&api.org_id, &new).await.unwrap();
    assert!(created);
    assert_eq!(call.status, CallStatus::Queued);
    id
}

/// Every live event published to `sub` so far.
fn drain_events(sub: &mut hotline::api::live::Subscription) -> Vec<Arc<LiveEvent>> {
    let mut got = Vec::new();
    while let Ok(e) = sub.events.try_recv() {
        got.push(e);
    }
    got
}

fn kinds_of(events: &[Arc<LiveEvent>], id: &CallId) -> Vec<String> {
    events
        .iter()
        .filter(|e| e.call_id == id.as_str())
        .map(|e| match e.payload["status"].as_str() {
            Some(s) if e.event_type == "call.status" => format!("status:{s}"),
            _ => e.event_type.clone(),
        })
        .collect()
}

fn ended(id: &CallId, outcome: Outcome, answered: Option<std::time::SystemTime>) -> CallEvent {
    let now = std::time::SystemTime::now();
    CallEvent::Ended(Box::new(CallRecord {
        id: id.clone(),
        direction: CallDirection::Outbound,
        from: "+14155550100".into(),
        to: "sip:peer@127.0.0.1".into(),
        started: now - Duration::from_secs(120),
        answered,
        ended: now,
        hangup: Hangup {
            outcome,
            by: Party::Remote,
            sip_code: None,
            reason: "BYE".into(),
        },
        sip_call_id: "sip-call-id".into(),
        bridged_with: None,
    }))
}

async fn queued_is_announced_first_whichever_comes_first(api: &support::api::Api) {
    let (mut bridge, _registry) = bridge_of(api);
    let mut sub = api.state.hub.subscribe(&api.org_id, Filter::default());
    let hook = api
        .db
        .store
        .create_webhook(
            &api.org_id,
            &NewWebhook {
                url: "http://127.0.0.1:9/hook".into(),
                events: vec!["call.status".into()],
            },
        )
        .await
        .unwrap();

    // The engine's first event overtakes the API's word of the placing.
    let fast = api_call(api).await;
    bridge.handle(fast.clone(), CallEvent::Ringing).await;
    bridge.placed(fast.clone()).await;
    // The usual way round.
    let slow = api_call(api).await;
    bridge.placed(slow.clone()).await;
    bridge.handle(slow.clone(), CallEvent::Ringing).await;
    bridge.placed(slow.clone()).await;
    // A call that was never placed (its record discarded) is not announced.
    bridge.placed(CallId::random()).await;

    let events = drain_events(&mut sub);
    assert_eq!(
        kinds_of(&events, &fast),
        ["status:queued", "status:ringing"]
    );
    assert_eq!(
        kinds_of(&events, &slow),
        ["status:queued", "status:ringing"]
    );
    assert_eq!(events.len(), 4, "{events:?}");
    for id in [&fast, &slow] {
        let seqs: Vec<u64> = events
            .iter()
            .filter(|e| e.call_id == id.as_str())
            .map(|e| e.sequence)
            .collect();
        assert_eq!(seqs, [1, 2]);
    }
    let queued = &events[0];
    assert_eq!(queued.payload["direction"], "outbound");
    assert_eq!(queued.payload["to"], "sip:peer@127.0.0.1");

    // The same statuses are queued for webhooks.
    let deliveries = api
        .db
        .store
        .list_deliveries(&api.org_id, Some(&hook.id), &Default::default())
        .await
        .unwrap();
    let mut got: Vec<(String, String)> = deliveries
        .items
        .iter()
        .map(|d| {
            assert_eq!(d.event_type, "call.status");
            (
                d.payload["call_id"].as_str().unwrap().to_owned(),
                d.payload["data"]["status"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    got.sort();
    let mut want: Vec<(String, String)> = [&fast, &slow]
        .iter()
        .flat_map(|id| ["queued", "ringing"].map(|s| (id.as_str().to_owned(), s.to_owned())))
        .collect();
    want.sort();
    assert_eq!(got, want);
}

async fn the_stored_answer_time_is_the_one_announced(api: &support::api::Api) {
    let (mut bridge, _registry) = bridge_of(api);
    let mut sub = api.state.hub.subscribe(&api.org_id, Filter::default());
    let id = api_call(api).await;
    bridge.placed(id.clone()).await;
    bridge.handle(id.clone(), CallEvent::Ringing).await;
    bridge.handle(id.clone(), CallEvent::Answered).await;
    // The engine's own answer time differs from the one the bridge stored
    // (it saw the answer later): the stored one must win.
    let engine_answer = std::time::SystemTime::now() - Duration::from_secs(60);
    bridge
        .handle(
            id.clone(),
            ended(&id, Outcome::Completed, Some(engine_answer)),
        )
        .await;

    let events = drain_events(&mut sub);
    assert_eq!(
        kinds_of(&events, &id),
        [
            "status:queued",
            "status:ringing",
            "status:in_progress",
            "status:completed",
            "call.completed"
        ]
    );
    let reply = api
        .send(axum::http::Method::GET, &format!("/v1/calls/{id}"), None)
        .await;
    assert_eq!(reply.status, StatusCode::OK);
    let call = reply.json;
    let answered = call["answered_at"].as_i64().unwrap();
    let ended_at = call["ended_at"].as_i64().unwrap();
    assert_eq!(events[2].payload["answered_at"], answered);
    for e in &events[3..] {
        assert_eq!(e.payload["answered_at"], answered, "{}", e.event_type);
        assert_eq!(e.payload["ended_at"], ended_at, "{}", e.event_type);
        assert_eq!(e.payload["duration_ms"], call["duration_ms"]);
    }
    assert_eq!(call["duration_ms"].as_i64(), Some(ended_at - answered));
    assert_eq!(events[4].payload["created_at"], call["created_at"]);
    assert_eq!(call["status"], "completed");
}

async fn the_bridge_closes_calls_that_ended_while_it_lagged(api: &support::api::Api) {
    let (mut bridge, registry) = bridge_of(api);
    let store = &api.db.store;
    let live = |id: &CallId| {
        let (handle, _ends) = CallHandle::new(
            id.clone(),
            CallDirection::Outbound,
            "+14155550100".into(),
            "sip:peer@127.0.0.1".into(),
        );
        registry.admit(handle).unwrap()
    };
    let (ringing, answered, still_up) = (
        api_call(api).await,
        api_call(api).await,
        api_call(api).await,
    );
    let slots = [live(&ringing), live(&answered), live(&still_up)];
    bridge.handle(ringing.clone(), CallEvent::Ringing).await;
    bridge.handle(answered.clone(), CallEvent::Answered).await;
    bridge.handle(still_up.clone(), CallEvent::Answered).await;
    let mut sub = api.state.hub.subscribe(&api.org_id, Filter::default());

    // Two calls end while the bridge is behind: their ends are lost.
    let [a, b, c] = slots;
    drop((a, b));
    bridge.lagged(42).await;

    let get = |id: CallId| async move { store.get_call(&api.org_id, id.as_str()).await.unwrap() };
    let r = get(ringing.clone()).await;
    assert_eq!(r.status, CallStatus::Failed, "never answered: {r:?}");
    assert!(r.ended_at.is_some());
    assert_eq!(r.duration_ms, Some(0));
    assert!(
        r.hangup_reason.as_deref().unwrap().contains("lost"),
        "{r:?}"
    );
    let r = get(answered.clone()).await;
    assert_eq!(r.status, CallStatus::Completed, "it was answered: {r:?}");
    let (at, end) = (r.answered_at.unwrap(), r.ended_at.unwrap());
    assert_eq!(r.duration_ms, Some(end - at));
    let r = get(still_up.clone()).await;
    assert_eq!(r.status, CallStatus::InProgress, "still live: {r:?}");
    assert_eq!(r.ended_at, None);
    let events = drain_events(&mut sub);
    assert_eq!(
        kinds_of(&events, &ringing),
        ["status:failed", "call.completed"]
    );
    assert_eq!(
        kinds_of(&events, &answered),
        ["status:completed", "call.completed"]
    );
    assert!(kinds_of(&events, &still_up).is_empty());

    // It carries on: a lost call's late end changes nothing, and the live
    // call's end is recorded as usual.
    bridge
        .handle(ringing.clone(), ended(&ringing, Outcome::Busy, None))
        .await;
    assert_eq!(get(ringing.clone()).await.status, CallStatus::Failed);
    drop(c);
    bridge
        .handle(
            still_up.clone(),
            ended(
                &still_up,
                Outcome::Completed,
                Some(std::time::SystemTime::now()),
            ),
        )
        .await;
    let r = get(still_up.clone()).await;
    assert_eq!(r.status, CallStatus::Completed);
    assert_eq!(r.hangup_by.as_deref(), Some("callee"));
    let events = drain_events(&mut sub);
    assert!(kinds_of(&events, &ringing).is_empty(), "{events:?}");
    assert_eq!(
        kinds_of(&events, &still_up),
        ["status:completed", "call.completed"]
    );
}

/// A stored agent with its own flow behind an `ai` number: a real caller
/// (sipp for SIP, our RTP peer speaking espeak-ng) gives its name; the
/// record gets the transcript as it happens, the flow's outcome and
/// captured name, the per-turn timings, and `call.completed` comes after
/// all of that.
async fn an_ai_number_runs_its_stored_agent_and_the_call_is_concluded(env: &Env) {
    let flow = json!({"start": "ask", "nodes": [
        {"id": "ask", "type": "capture", "prompt": "Hello! What is your name?",
         "slot": "name", "expect": "name", "next": "bye",
         "no_input": {"next": "bye_anyway"}, "no_match": {"next": "bye_anyway"}},
        {"id": "bye", "type": "hangup", "text": "Thanks, {name}. Goodbye!", "outcome": "achieved"},
        {"id": "bye_anyway", "type": "hangup", "text": "Goodbye!", "outcome": "not_achieved"}
    ]});
    let (status, agent) = env
        .post(
            "/v1/agents",
            json!({"name": "Front desk", "system_prompt": "Take names.",
                   "model": {"provider": "flow", "flow": flow}}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{agent}");
    let (status, number) = env
        .post(
            "/v1/numbers",
            json!({"e164": "+14155550177", "agent_id": agent["id"], "inbound": {"mode": "ai"}}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{number}");
    let mut ws = env
        .ws(&format!("&number_id={}", number["id"].as_str().unwrap()))
        .await;

    // The talker's clock starts before the call is even placed: the pause
    // covers call setup and the whole greeting with room to spare on a
    // loaded machine (an earlier answer would be a barge-in, and the
    // greeting would be cut short, as it should be).
    let speech = peers::media::script_wav(&[(7.0, "My name is John.")]).unwrap();
    let talker = peers::talker::Talker::start(peers::talker::TalkerConfig {
        script: peers::media::read_pcm(&speech).unwrap().1,
        echo: None,
    })
    .unwrap();
    let sip = env
        .state
        .engine
        .as_ref()
        .unwrap()
        .local_addr(hotline_sip::transport::Transport::Udp)
        .unwrap();
    let mut run = SippRun::uac(Scenario::uac_wait_bye(30_000).sdp_port(talker.port()), sip);
    run.service = "+14155550177".into();
    run.timeout = Duration::from_secs(40);
    let uac = tokio::task::block_in_place(|| run.spawn().unwrap());

    let mut kinds = Vec::new();
    let completed = loop {
        let msg = tokio::time::timeout(Duration::from_secs(40), ws.next())
            .await
            .expect("the call completes")
            .unwrap()
            .unwrap();
        let Message::Text(t) = msg else { continue };
        let e: Value = serde_json::from_str(&t).unwrap();
        let kind = e["event_type"].as_str().unwrap().to_owned();
        kinds.push(kind.clone());
        if kind == "call.completed" {
            break e["payload"].clone();
        }
    };
    let uac = tokio::task::block_in_place(|| uac.wait().unwrap());
    drop(talker);
    assert!(uac.all_ok(), "{}", uac.diagnostics());
    assert!(kinds.contains(&"agent.started".to_owned()), "{kinds:?}");
    assert!(kinds.contains(&"transcript.final".to_owned()), "{kinds:?}");
    assert_eq!(completed["status"], "completed", "{completed}");
    assert_eq!(completed["hangup_by"], "hotline", "{completed}");
    assert_eq!(completed["agent_id"], agent["id"]);
    assert_eq!(completed["outcome"], "achieved", "{completed}");
    assert_eq!(completed["structured_data"]["name"], "John", "{completed}");
    let turns = completed["turn_metrics"].as_array().expect("turn metrics");
    assert!(
        !turns.is_empty() && turns[0]["voice_to_voice_ms"].is_u64(),
        "{completed}"
    );
    let said: Vec<(String, String)> = completed["transcript"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| {
            (
                l["speaker"].as_str().unwrap().to_owned(),
                l["text"].as_str().unwrap().to_lowercase(),
            )
        })
        .collect();
    assert_eq!(
        said[0],
        ("agent".into(), "hello! what is your name?".into()),
        "{said:?}"
    );
    assert!(
        said.iter()
            .any(|(s, t)| s == "caller" && t.contains("john")),
        "{said:?}"
    );
    assert_eq!(said.last().unwrap().1, "thanks, john. goodbye!", "{said:?}");
    // The record reads the same afterwards.
    let (_, call) = env
        .get(&format!("/v1/calls/{}", completed["id"].as_str().unwrap()))
        .await;
    assert_eq!(call["outcome"], "achieved");
    assert_eq!(call["turn_metrics"], completed["turn_metrics"]);
}

/// A number put in `forward` mode through the API: an inbound call to it
/// makes Hotline call the target through the number's trunk (a sipp that
/// answers), both calls are recorded under the organization, linked, and
/// followed live, and the caller's BYE ends both.
async fn a_forward_number_from_the_api_bridges_and_records_both_calls(db: TestDb) {
    let mut target = SippRun::uas(Scenario::uas_answer(None, 20_000).var("ANSWER_DELAY_MS", 500))
        .spawn()
        .unwrap();
    tokio::task::block_in_place(|| target.wait_ready(Duration::from_secs(5)).unwrap());
    let trunk_at = target.sip_addr();
    let env = Env::start_with(db, |c| {
        c.trunks.push(hotline::config::TrunkConfig {
            codecs: vec!["PCMU".into()],
            ..hotline::config::TrunkConfig::new("carrier", &trunk_at.to_string())
        })
    })
    .await;
    let (s, number) = env
        .post(
            "/v1/numbers",
            json!({"e164": "+14155550143", "trunk": "carrier",
                   "inbound": {"mode": "forward", "forward_to": "+1 415 555 0123"}}),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{number}");
    let number_id = number["id"].as_str().unwrap().to_owned();
    let mut ws = env.ws(&format!("&number_id={number_id}")).await;

    let sip = env
        .state
        .engine
        .as_ref()
        .unwrap()
        .local_addr(hotline_sip::transport::Transport::Udp)
        .unwrap();
    let mut caller = SippRun::uac(Scenario::uac_offer(Offer::PcmuDtmf, 2000), sip);
    caller.service = "+14155550143".into();
    caller.timeout = WAIT;
    let caller = tokio::task::block_in_place(|| caller.spawn().unwrap().wait().unwrap());
    assert!(caller.all_ok(), "{}", caller.diagnostics());

    // Live: the forward's progress on the inbound call, and both calls'
    // statuses to their end.
    let mut forward = Vec::new();
    let mut completed = 0;
    while completed < 2 {
        let msg = tokio::time::timeout(WAIT, ws.next())
            .await
            .expect("live events")
            .unwrap()
            .unwrap();
        if let Message::Text(t) = msg {
            let e: Value = serde_json::from_str(&t).unwrap();
            match e["event_type"].as_str() {
                Some("call.forward") => forward.push(e),
                Some("call.status") if e["payload"]["status"] == "completed" => completed += 1,
                _ => {}
            }
        }
    }
    let _ = ws.close(None).await;
    let (_, list) = env.get(&format!("/v1/calls?number_id={number_id}")).await;
    let calls = list["data"].as_array().unwrap();
    assert_eq!(calls.len(), 2, "{list}");
    let find = |dir: &str| {
        calls
            .iter()
            .find(|c| c["direction"] == dir)
            .unwrap_or_else(|| panic!("no {dir} call: {list}"))
    };
    let (inbound, outbound) = (find("inbound"), find("outbound"));
    assert_eq!(inbound["status"], "completed", "{inbound}");
    assert_eq!(inbound["to"], "+14155550143");
    assert_eq!(inbound["hangup_by"], "caller");
    assert!(
        inbound["hangup_cause"]
            .as_str()
            .unwrap()
            .starts_with("forwarded to +14155550123"),
        "{inbound}"
    );
    assert_eq!(outbound["status"], "completed", "{outbound}");
    assert_eq!(outbound["to"], "+14155550123");
    assert_eq!(outbound["hangup_by"], "hotline");
    assert!(outbound["answered_at"].as_i64() <= inbound["answered_at"].as_i64());
    let stored = env
        .db
        .store
        .find_call(outbound["id"].as_str().unwrap())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(stored.request["forwarded_from"], inbound["id"]);

    let statuses: Vec<(&str, &str)> = forward
        .iter()
        .map(|e| {
            (
                e["call_id"].as_str().unwrap(),
                e["payload"]["status"].as_str().unwrap(),
            )
        })
        .collect();
    let (in_id, out_id) = (
        inbound["id"].as_str().unwrap(),
        outbound["id"].as_str().unwrap(),
    );
    assert!(statuses.contains(&(in_id, "dialing")), "{forward:?}");
    assert!(statuses.contains(&(in_id, "bridged")), "{forward:?}");
    assert!(statuses.contains(&(out_id, "bridged")), "{forward:?}");
    let dialing = forward
        .iter()
        .find(|e| e["payload"]["status"] == "dialing")
        .unwrap();
    assert_eq!(dialing["payload"]["leg_call_id"], out_id);
    assert_eq!(dialing["payload"]["to"], "+14155550123");

    let target = tokio::task::block_in_place(|| target.wait().unwrap());
    assert!(target.all_ok(), "{}", target.diagnostics());
    assert_eq!(target.count_received("BYE sip:", "BYE"), 1);
    env.finish().await;
}

mod a_forward_number_from_the_api_bridges_and_records_both_calls {
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn sqlite() {
        super::a_forward_number_from_the_api_bridges_and_records_both_calls(
            super::support::db::TestDb::sqlite().await,
        )
        .await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn postgres() {
        if let Some(db) = super::support::db::TestDb::postgres(
            "a_forward_number_from_the_api_bridges_and_records_both_calls",
        )
        .await
        {
            super::a_forward_number_from_the_api_bridges_and_records_both_calls(db).await;
        }
    }
}
