//! A whole Hotline in process for end-to-end tests: the server
//! (`hotline::server::run`) on a test database, with its own
//! OpenAI-compatible LLM server (streamed conversation replies that end
//! the call, and after-call extractions that quote the caller) and SMTP
//! sink, driven over HTTP and called by sipp with an RTP talker.
//! Included by `tests/receptionist_calls.rs` and
//! `tests/voicemail_screening.rs`, whose crates have `mod peers` and
//! `mod support`.

#![allow(dead_code)]

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use hotline::config::{Config, SipListen, SipTransport};
use serde_json::{Value, json};

use crate::peers;
use crate::peers::sipp::{Scenario, SippRun};
use crate::support::db::TestDb;
use crate::support::smtp::{SmtpSink, email_config};

/// The caller of inbound calls, and the callee's contact of outbound ones.
pub const MARIA: &str = "+14155550123";
/// Generous bound for what should happen promptly; reaching it fails
/// the test, it never measures speed.
pub const PATIENCE: Duration = Duration::from_secs(60);
/// The follow-up a report of a call about a leaking water heater leaves.
pub const FOLLOW_UP: &str = "Call Maria back tomorrow morning about the leaking water heater";
/// The follow-up a report of a call about a blocked sink leaves.
pub const VOICEMAIL_FOLLOW_UP: &str = "Call Maria back on Monday about the blocked kitchen sink";

// ------------------------------------------------------------ the LLM ---

/// Requests the LLM server was sent, in order.
#[derive(Clone, Default)]
pub struct Llm {
    pub requests: Arc<Mutex<Vec<Value>>>,
    /// A tool the agent's first reply calls (name, arguments) instead of
    /// `end_call`; the reply after its result says goodbye as usual.
    pub tool: Arc<Mutex<Option<(String, Value)>>>,
}

impl Llm {
    /// The streamed chat requests: one per agent turn.
    pub fn chats(&self) -> Vec<Value> {
        self.requests
            .lock()
            .unwrap()
            .iter()
            .filter(|r| r["stream"] == true)
            .cloned()
            .collect()
    }
}

fn chunk(delta: Value, finish: Option<&str>) -> String {
    let c = json!({
        "id": "chatcmpl-1", "object": "chat.completion.chunk", "created": 1_700_000_000,
        "model": "test-model",
        "choices": [{"index": 0, "delta": delta, "logprobs": null, "finish_reason": finish}]
    });
    format!("data: {c}\n\n")
}

fn completion(content: &str) -> Response {
    axum::Json(json!({
        "id": "chatcmpl-2", "object": "chat.completion", "created": 1_700_000_000,
        "model": "test-model",
        "choices": [{"index": 0, "finish_reason": "stop", "logprobs": null,
            "message": {"role": "assistant", "content": content, "refusal": null}}],
        "usage": {"prompt_tokens": 100, "completion_tokens": 50, "total_tokens": 150}
    }))
    .into_response()
}

/// The extraction a model would make of the first call. Its quotes are
/// the caller's lines as transcribed (whatever speech recognition made
/// of them), since unquoted memory is dropped.
fn extraction(request: &Value) -> String {
    let text = request["messages"].to_string();
    let caller: Vec<String> = text
        .split("Caller: ")
        .skip(1)
        .map(|l| l.split("\\n").next().unwrap_or_default().to_owned())
        .filter(|l| !l.trim().is_empty())
        .collect();
    let find = |words: &[&str]| {
        caller
            .iter()
            .find(|l| words.iter().any(|w| l.to_lowercase().contains(w)))
            .or(caller.first())
            .cloned()
            .unwrap_or_default()
    };
    let named = find(&["maria", "lopez", "this is"]);
    let asked = find(&["call me", "back", "tomorrow", "monday"]);
    let follow_up = if text.to_lowercase().contains("sink") {
        VOICEMAIL_FOLLOW_UP
    } else {
        FOLLOW_UP
    };
    json!({
        "summary": "Maria Lopez reported a leaking water heater and asked for a call back tomorrow morning.",
        "caller_name": "Maria Lopez",
        "intent": "service_request",
        "urgency": "high",
        "callback_by": null,
        "spam": false,
        "facts": [{"slot": "name", "value": "Maria Lopez", "confidence": 0.95, "quote": named}],
        "commitments": [],
        "follow_ups": [{"text": follow_up, "quote": asked}]
    })
    .to_string()
}

/// The amount quoted in `text`, in digits ("$40") or in words
/// ("forty"), as a model reading a transcript would take it: the callee
/// says it twice, and a repetition that speech recognition clipped or
/// misheard loses its leading words and comes out smaller ("$5.00" for
/// "75 dollars"), so the largest amount heard is the quote.
pub fn quoted_amount(text: &str) -> Option<f64> {
    const TENS: [(&str, f64); 8] = [
        ("twenty", 20.0),
        ("thirty", 30.0),
        ("forty", 40.0),
        ("fifty", 50.0),
        ("sixty", 60.0),
        ("seventy", 70.0),
        ("eighty", 80.0),
        ("ninety", 90.0),
    ];
    text.to_lowercase()
        .split(|c: char| !c.is_ascii_alphanumeric() && c != '.')
        .filter_map(|w| {
            let w = w.trim_matches('.');
            w.parse::<f64>()
                .ok()
                .or_else(|| TENS.iter().find(|(t, _)| *t == w).map(|(_, v)| *v))
        })
        .fold(None, |most: Option<f64>, n| {
            Some(most.map_or(n, |m| m.max(n)))
        })
}

/// The after-call summary a model would write: with an objective, the
/// outcome; with a schema, its fields, the price being the amount the
/// callee quoted ([`quoted_amount`]).
fn summary(request: &Value) -> Value {
    let schema = &request["response_format"]["json_schema"]["schema"]["properties"];
    let mut answer = json!({"summary": "A caller reported a leak."});
    if schema.get("outcome").is_some() {
        answer["outcome"] = json!("achieved");
    }
    if let Some(data) = schema.get("structured_data") {
        let transcript = request["messages"][1]["content"]
            .as_str()
            .unwrap_or_default();
        let price = quoted_amount(transcript);
        let mut out = serde_json::Map::new();
        for (field, spec) in data["properties"].as_object().into_iter().flatten() {
            let v = match (field.as_str(), spec["type"].to_string()) {
                ("price", _) => json!(price),
                ("currency", _) => json!("USD"),
                (_, t) if t.contains("boolean") => json!(true),
                _ => Value::Null,
            };
            out.insert(field.clone(), v);
        }
        answer["structured_data"] = Value::Object(out);
        answer["summary"] = json!(format!("The shop quoted {price:?} for a full service."));
    }
    answer
}

async fn completions(
    axum::extract::State(llm): axum::extract::State<Llm>,
    body: Bytes,
) -> Response {
    let request: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    llm.requests.lock().unwrap().push(request.clone());
    if request["stream"] != json!(true) {
        if request["response_format"]["json_schema"]["name"] == "call_report" {
            return completion(&extraction(&request));
        }
        if request["response_format"]["json_schema"]["name"] == "call_summary" {
            return completion(&summary(&request).to_string());
        }
        // The agent's own after-call summary.
        return completion(&json!({"summary": "A caller reported a leak."}).to_string());
    }
    let mut body = chunk(json!({"role": "assistant", "content": ""}), None);
    let answered = request["messages"]
        .to_string()
        .contains("\"role\":\"tool\"");
    let scripted = llm.tool.lock().unwrap().clone().filter(|_| !answered);
    if let Some((name, args)) = scripted {
        body.push_str(&chunk(json!({"content": "I understand. "}), None));
        body.push_str(&chunk(
            json!({"tool_calls": [{"index": 0, "id": "call_t", "type": "function",
                "function": {"name": name, "arguments": args.to_string()}}]}),
            None,
        ));
        body.push_str(&chunk(json!({}), Some("tool_calls")));
        body.push_str("data: [DONE]\n\n");
        return ([("content-type", "text/event-stream")], body).into_response();
    }
    for piece in [
        "Thank you, I have noted it. ",
        "Someone will call you back. Goodbye!",
    ] {
        body.push_str(&chunk(json!({"content": piece}), None));
    }
    body.push_str(&chunk(
        json!({"tool_calls": [{"index": 0, "id": "call_1", "type": "function",
            "function": {"name": "end_call", "arguments": "{}"}}]}),
        None,
    ));
    body.push_str(&chunk(json!({}), Some("tool_calls")));
    body.push_str("data: [DONE]\n\n");
    ([("content-type", "text/event-stream")], body).into_response()
}

pub async fn serve(router: Router) -> SocketAddr {
    let listener = tokio::net::TcpListener::bind((peers::LOOPBACK, 0))
        .await
        .unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, router).await });
    addr
}

// --------------------------------------------------------- the server ---

pub struct Front {
    pub db: TestDb,
    /// The LLM server the agent and the reports use.
    pub llm: Llm,
    /// Where the owner's email goes.
    pub sink: SmtpSink,
    pub http: SocketAddr,
    pub sip: SocketAddr,
    key: String,
    client: reqwest::Client,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    server: tokio::task::JoinHandle<anyhow::Result<()>>,
}

impl Front {
    /// The whole server on `db`, with its own LLM server and SMTP sink.
    pub async fn start(db: TestDb) -> Front {
        Front::start_with(db, |_| {}).await
    }

    /// As [`Front::start`], with `tweak` applied to the configuration.
    pub async fn start_with(db: TestDb, tweak: impl FnOnce(&mut Config)) -> Front {
        let _ = rustls::crypto::ring::default_provider().install_default();
        let llm = Llm::default();
        let llm_addr = serve(
            Router::new()
                .route("/v1/chat/completions", post(completions))
                .with_state(llm.clone()),
        )
        .await;
        let sink = SmtpSink::default();
        let smtp = sink.start().await;
        // The server's log, shown with a failing test's output.
        let _ = tracing_subscriber::fmt()
            .with_env_filter("info,whisper_rs=warn,sqlx=warn")
            .with_test_writer()
            .try_init();
        let http: SocketAddr = (peers::LOOPBACK, peers::ports::free_port()).into();
        let sip: SocketAddr = (peers::LOOPBACK, peers::ports::free_port()).into();
        let mut config = Config {
            data_dir: tempfile::tempdir().unwrap().keep(),
            ..Config::default()
        };
        config.http.listen = http;
        config.sip.listen = vec![SipListen::new(SipTransport::Udp, sip)];
        config.sip.drain_secs = 1;
        config.rtp.port_min = 45000;
        config.rtp.port_max = 49999;
        config.rtp.bind_ip = peers::LOOPBACK.into();
        config.database.url = Some(db.url.clone());
        config.agent.models_dir = Some(
            std::env::var("HOTLINE_MODELS_DIR")
                .unwrap_or_else(|_| concat!(env!("CARGO_MANIFEST_DIR"), "/data/models").to_owned())
                .into(),
        );
        config.providers.llm.kind = "openai".into();
        config.agent.openai.base_url = format!("http://{llm_addr}/v1");
        config.agent.openai.api_key = Some("sk-test".into());
        config.agent.openai.model = "test-model".into();
        config.notify.email = Some(email_config(smtp));
        tweak(&mut config);
        config.validate().unwrap();
        let org = db.store.ensure_org("acme").await.unwrap();
        let key = db.store.create_api_key(&org.id, "owner").await.unwrap();
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let server = tokio::spawn(hotline::server::run(config, async {
            let _ = stopped.await;
        }));
        let front = Front {
            db,
            llm,
            sink,
            http,
            sip,
            key: key.plaintext,
            client: reqwest::Client::new(),
            stop: Some(stop),
            server,
        };
        let deadline = tokio::time::Instant::now() + PATIENCE;
        while front
            .client
            .get(front.url("/healthz"))
            .send()
            .await
            .is_err()
        {
            assert!(tokio::time::Instant::now() < deadline, "no HTTP");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        front
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.http)
    }

    pub async fn send(&self, method: reqwest::Method, path: &str, body: Option<Value>) -> Value {
        let mut req = self
            .client
            .request(method.clone(), self.url(path))
            .bearer_auth(&self.key);
        if let Some(b) = body {
            req = req.json(&b);
        }
        let res = req.send().await.unwrap();
        let status = res.status();
        let json: Value = res.json().await.unwrap_or(Value::Null);
        assert!(status.is_success(), "{method} {path}: {status} {json}");
        json
    }

    /// Any request: its status and body, whatever they are.
    pub async fn request(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<Value>,
    ) -> (u16, Value) {
        let mut req = self
            .client
            .request(method, self.url(path))
            .bearer_auth(&self.key);
        if let Some(b) = body {
            req = req.json(&b);
        }
        let res = req.send().await.unwrap();
        let status = res.status().as_u16();
        (status, res.json().await.unwrap_or(Value::Null))
    }

    pub async fn get(&self, path: &str) -> (u16, Value) {
        let res = self
            .client
            .get(self.url(path))
            .bearer_auth(&self.key)
            .send()
            .await
            .unwrap();
        let status = res.status().as_u16();
        (status, res.json().await.unwrap_or(Value::Null))
    }

    /// Maria calls `number`, holding the call as `scenario` says, and
    /// says `words` after `pause` seconds; returns the call's id once the
    /// call has ended and `before` calls were there already.
    pub async fn call(
        &self,
        number: &str,
        scenario: Scenario,
        pause: f64,
        words: &str,
        before: usize,
    ) -> String {
        let wav = peers::media::script_wav(&[(pause, words)]).unwrap();
        let script = peers::media::read_pcm(&wav).unwrap().1;
        let talker =
            peers::talker::Talker::start(peers::talker::TalkerConfig { script, echo: None })
                .unwrap();
        let mut run = SippRun::uac(scenario.sdp_port(talker.port()).caller_id(MARIA), self.sip);
        run.service = number.into();
        run.timeout = PATIENCE;
        let uac = tokio::task::block_in_place(|| run.spawn().unwrap().wait().unwrap());
        let talk = talker.finish();
        assert!(uac.all_ok(), "{}", uac.diagnostics());
        assert!(
            peers::audio::is_non_silent(&talk.pcm),
            "the caller heard the number"
        );
        let deadline = tokio::time::Instant::now() + PATIENCE;
        loop {
            let (_, list) = self.get("/v1/calls?direction=inbound&limit=10").await;
            let calls = list["data"].as_array().cloned().unwrap_or_default();
            if calls.len() > before && calls.iter().all(|c| !c["ended_at"].is_null()) {
                return calls[0]["id"].as_str().unwrap().to_owned();
            }
            assert!(tokio::time::Instant::now() < deadline, "{list}");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// The call's report once it is ready and its email is no longer
    /// pending.
    pub async fn report(&self, call: &str) -> Value {
        let deadline = tokio::time::Instant::now() + PATIENCE;
        loop {
            let (status, r) = self.get(&format!("/v1/calls/{call}/report")).await;
            assert!(status == 200 || status == 202, "{status} {r}");
            if status == 200
                && r["status"] == "ready"
                && r["email_status"] != "pending"
                && r["email_status"] != "none"
            {
                return r;
            }
            assert!(r["status"] != "failed", "{r}");
            assert!(tokio::time::Instant::now() < deadline, "{r}");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Stops the server (as SIGTERM would) and hands back its database,
    /// for a server started again on it.
    pub async fn stop(mut self) -> TestDb {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        let _ = tokio::time::timeout(PATIENCE, &mut self.server).await;
        self.db
    }

    pub async fn finish(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        let _ = tokio::time::timeout(PATIENCE, &mut self.server).await;
        self.db.cleanup().await;
    }
}

/// Waits until `f` holds.
pub async fn until(what: &str, mut f: impl FnMut() -> bool) {
    let deadline = tokio::time::Instant::now() + PATIENCE;
    while !f() {
        assert!(tokio::time::Instant::now() < deadline, "{what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
