//! The AI receptionist end to end, the way its owner uses it: the whole
//! server (`hotline::server::run`) in process on a fresh database, set up
//! through the HTTP API from the receptionist template, and called twice
//! by a real SIP caller (sipp, with an RTP talker speaking espeak-ng
//! speech) from the same caller ID. A local OpenAI-compatible server
//! plays the LLM (the conversation and the after-call extraction), a
//! local SMTP sink takes the owner's email, and a local receiver takes
//! the report webhook and answers the pre-call context webhook.
//!
//! The first call's pre-call webhook is too slow, and the call goes on
//! with the static prompt (it fails open). Its report is emailed and
//! sent as `call.report.ready`, and fills the caller's memory. The second
//! call's prompt, as the LLM server sees it, has the caller's name and
//! open follow-up from the first call, and the CRM's `context_block` from
//! the (now fast) webhook. After hours, a voicemail is recorded,
//! transcribed, reported and emailed the same way. Runs on SQLite and,
//! when `HOTLINE_TEST_POSTGRES` is set, on Postgres.

mod peers;
mod support;

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use hotline::api::signing;
use hotline::config::{Config, SipListen, SipTransport};
use peers::sipp::{Offer, Scenario, SippRun};
use serde_json::{Value, json};
use support::db::TestDb;
use support::smtp::{SmtpSink, decoded, email_config};

/// The receptionist's number.
const DID: &str = "+14155550180";
/// The caller, both times.
const MARIA: &str = "+14155550123";
/// Generous bound for what should happen promptly; reaching it fails
/// the test, it never measures speed.
const PATIENCE: Duration = Duration::from_secs(60);
/// What the CRM knows of Maria (the fast context webhook's answer).
const CRM_BLOCK: &str = "CRM: Maria has a Gold service contract, account 4471.";
/// The follow-up the first call's report leaves open.
const FOLLOW_UP: &str = "Call Maria back tomorrow morning about the leaking water heater";

/// The follow-up the voicemail's report leaves open.
const VOICEMAIL_FOLLOW_UP: &str = "Call Maria back on Monday about the blocked kitchen sink";

// ------------------------------------------------------------ the LLM ---

/// Requests the LLM server was sent, in order.
#[derive(Clone, Default)]
struct Llm {
    requests: Arc<Mutex<Vec<Value>>>,
}

impl Llm {
    /// The streamed chat requests: one per agent turn.
    fn chats(&self) -> Vec<Value> {
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
        // The agent's own after-call summary.
        return completion(&json!({"summary": "A caller reported a leak."}).to_string());
    }
    let mut body = chunk(json!({"role": "assistant", "content": ""}), None);
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

// ------------------------------------------------- the owner's systems ---

/// A request the owner's systems received: signature, timestamp, body.
#[derive(Debug, Clone)]
struct Received {
    signature: String,
    timestamp: i64,
    body: Vec<u8>,
}

impl Received {
    fn of(headers: &HeaderMap, body: &Bytes) -> Received {
        let header = |n: &str| {
            headers
                .get(n)
                .and_then(|v| v.to_str().ok())
                .unwrap_or_default()
                .to_owned()
        };
        Received {
            signature: header(signing::SIGNATURE_HEADER),
            timestamp: header(signing::TIMESTAMP_HEADER).parse().unwrap_or(0),
            body: body.to_vec(),
        }
    }

    fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap()
    }

    fn signed_with(&self, secret: &str) -> bool {
        let now = jiff::Timestamp::now().as_second();
        signing::verify(
            secret,
            &self.signature,
            self.timestamp,
            &self.body,
            now,
            600,
        )
    }
}

/// The owner's web server: `/hooks` takes Hotline's webhooks,
/// `/context/slow` and `/context/crm` answer the pre-call webhook (the
/// first after three seconds, too late).
#[derive(Clone, Default)]
struct Owner {
    hooks: Arc<Mutex<Vec<Received>>>,
    context: Arc<Mutex<Vec<Received>>>,
}

impl Owner {
    fn router(&self) -> Router {
        let hooks = self.hooks.clone();
        let slow = self.context.clone();
        let crm = self.context.clone();
        Router::new()
            .route(
                "/hooks",
                post(move |h: HeaderMap, b: Bytes| async move {
                    hooks.lock().unwrap().push(Received::of(&h, &b));
                    "ok"
                }),
            )
            .route(
                "/context/slow",
                post(move |h: HeaderMap, b: Bytes| async move {
                    slow.lock().unwrap().push(Received::of(&h, &b));
                    tokio::time::sleep(Duration::from_secs(3)).await;
                    axum::Json(json!({"context_block": "TOO LATE"}))
                }),
            )
            .route(
                "/context/crm",
                post(move |h: HeaderMap, b: Bytes| async move {
                    crm.lock().unwrap().push(Received::of(&h, &b));
                    axum::Json(json!({"context_block": CRM_BLOCK}))
                }),
            )
    }
}

async fn serve(router: Router) -> SocketAddr {
    let listener = tokio::net::TcpListener::bind((peers::LOOPBACK, 0))
        .await
        .unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, router).await });
    addr
}

// --------------------------------------------------------- the server ---

struct Front {
    db: TestDb,
    /// The LLM server the agent and the reports use.
    llm: Llm,
    /// Where the owner's email goes.
    sink: SmtpSink,
    http: SocketAddr,
    sip: SocketAddr,
    key: String,
    client: reqwest::Client,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    server: tokio::task::JoinHandle<anyhow::Result<()>>,
}

impl Front {
    /// The whole server on `db`, with its own LLM server and SMTP sink.
    async fn start(db: TestDb) -> Front {
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

    fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.http)
    }

    async fn send(&self, method: reqwest::Method, path: &str, body: Option<Value>) -> Value {
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

    async fn get(&self, path: &str) -> (u16, Value) {
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
    async fn call(
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

    /// A call to the receptionist that it ends itself.
    async fn call_receptionist(&self, words: &str, before: usize) -> String {
        self.call(DID, Scenario::uac_wait_bye(45_000), 7.0, words, before)
            .await
    }

    /// The call's report once it is ready and its email is no longer
    /// pending.
    async fn report(&self, call: &str) -> Value {
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

    async fn finish(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        let _ = tokio::time::timeout(PATIENCE, &mut self.server).await;
        self.db.cleanup().await;
    }
}

/// Waits until `f` holds.
async fn until(what: &str, mut f: impl FnMut() -> bool) {
    let deadline = tokio::time::Instant::now() + PATIENCE;
    while !f() {
        assert!(tokio::time::Instant::now() < deadline, "{what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

// ----------------------------------------------------------- the test ---

async fn a_second_call_is_answered_with_what_the_first_taught(db: TestDb) {
    let owner = Owner::default();
    let owner_addr = serve(owner.router()).await;
    let front = Front::start(db).await;
    let (llm, sink) = (&front.llm, &front.sink);

    // The owner's setup: the report webhook, and the receptionist
    // template filled in on a number, with a pre-call webhook.
    let hook = front
        .send(
            reqwest::Method::POST,
            "/v1/webhooks",
            Some(json!({"url": format!("http://{owner_addr}/hooks"),
                "events": ["call.report.ready"]})),
        )
        .await;
    let hook_secret = hook["secret"].as_str().unwrap().to_owned();
    let templates = front
        .send(reqwest::Method::GET, "/v1/prompt-templates", None)
        .await;
    let template = templates["data"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["id"] == "receptionist")
        .expect("a receptionist template")
        .clone();
    let fill = |text: &str| {
        let mut out = text.to_owned();
        for p in template["placeholders"].as_array().unwrap() {
            let token = p["token"].as_str().unwrap();
            let value = match token {
                "[BUSINESS_NAME]" => "Acme Plumbing",
                "[EMERGENCY_NUMBER]" => "911",
                "[HOURS]" => "Monday to Friday, 8 am to 6 pm",
                _ => "on request",
            };
            out = out.replace(token, value);
        }
        out
    };
    let prompt = fill(template["system_prompt"].as_str().unwrap());
    let greeting = fill(template["first_message"].as_str().unwrap());
    assert!(!prompt.contains('['), "{prompt}");
    let number = front
        .send(
            reqwest::Method::POST,
            "/v1/numbers",
            Some(json!({"e164": DID, "label": "Front desk"})),
        )
        .await;
    let config_path = format!(
        "/v1/numbers/{}/inbound-config",
        number["id"].as_str().unwrap()
    );
    let config = front
        .send(
            reqwest::Method::PUT,
            &config_path,
            Some(
                json!({"mode": "ai", "system_prompt": prompt, "first_message": greeting,
                "voice": template["recommended_voice"], "context_source": "merge",
                "context_webhook_url": format!("http://{owner_addr}/context/slow"),
                "context_webhook_timeout_ms": 400}),
            ),
        )
        .await;
    let context_secret = config["context_webhook_secret"]
        .as_str()
        .unwrap()
        .to_owned();

    // First call: a stranger, and a pre-call webhook too slow to wait for.
    let first = front
        .call_receptionist(
            "Hi, this is Maria Lopez. Our water heater is leaking. Please call me back tomorrow morning.",
            0,
        )
        .await;
    let chats = llm.chats();
    assert!(!chats.is_empty(), "the agent asked the LLM");
    let system = chats[0]["messages"][0]["content"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(system.starts_with(&prompt), "{system}");
    assert!(!system.contains("Returning caller"), "a stranger: {system}");
    assert!(!system.contains("TOO LATE"), "fails open: {system}");
    let asked = owner.context.lock().unwrap().clone();
    assert_eq!(asked.len(), 1, "the slow webhook was asked");
    assert!(asked[0].signed_with(&context_secret));
    assert_eq!(asked[0].json()["event"], "call.context_request");
    assert_eq!(asked[0].json()["caller"], MARIA, "{}", asked[0].json());
    assert_eq!(asked[0].json()["to"], DID);

    // After it: the report, its email and its webhook.
    let report = front.report(&first).await;
    assert_eq!(report["caller_name"], "Maria Lopez", "{report}");
    assert_eq!(report["email_status"], "sent", "{report}");
    assert_eq!(
        report["follow_ups"][0]["text"], FOLLOW_UP,
        "its quote is the caller's words: {report}"
    );
    let mail = sink.mails();
    assert_eq!(mail.len(), 1);
    let text = decoded(&mail[0].data);
    assert!(
        text.contains("Maria Lopez") && text.contains(MARIA),
        "{text}"
    );
    until("the report webhook", || {
        !owner.hooks.lock().unwrap().is_empty()
    })
    .await;
    let delivered = owner.hooks.lock().unwrap()[0].clone();
    assert!(delivered.signed_with(&hook_secret));
    let event = delivered.json();
    assert_eq!(event["event_type"], "call.report.ready", "{event}");
    assert_eq!(event["call_id"], first.as_str(), "{event}");
    assert_eq!(event["data"]["caller_name"], "Maria Lopez", "{event}");
    let contact = front
        .send(
            reqwest::Method::GET,
            &format!("/v1/contacts/by-phone/{}", MARIA.replace('+', "%2B")),
            None,
        )
        .await;
    let contact_id = contact["id"].as_str().unwrap().to_owned();

    // The CRM answers in time now; a PATCH of the URL keeps the prompt.
    let patched = front
        .send(
            reqwest::Method::PATCH,
            &config_path,
            Some(
                json!({"context_webhook_url": format!("http://{owner_addr}/context/crm"),
                "context_webhook_timeout_ms": 1200}),
            ),
        )
        .await;
    assert_eq!(patched["system_prompt"], prompt.as_str());
    assert_eq!(patched["context_webhook_secret"], context_secret.as_str());

    // Second call: the receptionist knows Maria.
    let before = llm.chats().len();
    let _second = front
        .call_receptionist(
            "Hello again, it's Maria. Any news about the water heater?",
            1,
        )
        .await;
    let chats = llm.chats();
    assert!(chats.len() > before, "the agent asked the LLM again");
    let system = chats[before]["messages"][0]["content"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(system.starts_with(&prompt), "{system}");
    assert!(system.contains("Maria Lopez"), "the name: {system}");
    assert!(system.contains(FOLLOW_UP), "the follow-up: {system}");
    assert!(system.contains(CRM_BLOCK), "the CRM's block: {system}");
    let memory_at = system.find("Maria Lopez").unwrap();
    assert!(
        memory_at < system.find(CRM_BLOCK).unwrap(),
        "memory comes first: {system}"
    );
    let asked = owner.context.lock().unwrap().clone();
    assert_eq!(asked.len(), 2);
    assert!(asked[1].signed_with(&context_secret));
    assert_eq!(asked[1].json()["contact"]["id"], contact_id.as_str());
    // What the API says the next call starts with is what this one got.
    let next = front
        .send(
            reqwest::Method::GET,
            &format!("/v1/contacts/{contact_id}/next-call-context"),
            None,
        )
        .await;
    assert!(
        next["context"].as_str().unwrap().contains("Maria Lopez"),
        "{next}"
    );
    front.finish().await;
}

/// After hours with `after_hours: voicemail`: the caller hears the
/// message and the beep and leaves a message, which is recorded,
/// transcribed, put in the call's transcript after the message, reported
/// and emailed like an AI call.
async fn an_after_hours_voicemail_is_transcribed_reported_and_emailed(db: TestDb) {
    let front = Front::start(db).await;
    let (llm, sink) = (&front.llm, &front.sink);
    let number = front
        .send(
            reqwest::Method::POST,
            "/v1/numbers",
            Some(json!({"e164": DID})),
        )
        .await;
    let today = jiff::Timestamp::now()
        .to_zoned(jiff::tz::TimeZone::get("America/New_York").unwrap())
        .date();
    let every_day: serde_json::Map<String, Value> =
        ["mon", "tue", "wed", "thu", "fri", "sat", "sun"]
            .iter()
            .map(|d| (d.to_string(), json!([["00:00", "24:00"]])))
            .collect();
    let message = "Acme Plumbing is closed today. Please leave a message after the tone.";
    front
        .send(
            reqwest::Method::PUT,
            &format!(
                "/v1/numbers/{}/inbound-config",
                number["id"].as_str().unwrap()
            ),
            Some(
                json!({"mode": "ai", "system_prompt": "You are the front desk of Acme Plumbing.",
                "business_hours": {"timezone": "America/New_York", "weekly": every_day,
                    // Today and tomorrow: closed now, even at midnight.
                    "holidays": [today.to_string(), today.tomorrow().unwrap().to_string()]},
                "after_hours": "voicemail", "after_hours_message": message,
                "voicemail_max_secs": 30}),
            ),
        )
        .await;

    // The caller speaks after the message and the beep, then hangs up.
    let id = front
        .call(
            DID,
            Scenario::uac_offer(Offer::PcmuDtmf, 17_000),
            7.0,
            "Hi, this is Maria Lopez. The kitchen sink is blocked. Please call me back on Monday.",
            0,
        )
        .await;
    assert!(llm.chats().is_empty(), "no agent after hours");
    // The report is made once the call is concluded.
    let report = front.report(&id).await;
    let call = front
        .send(reqwest::Method::GET, &format!("/v1/calls/{id}"), None)
        .await;
    let voicemail = &call["structured_data"]["voicemail"];
    let words = voicemail["transcript"]
        .as_str()
        .unwrap_or_default()
        .to_lowercase();
    assert!(words.contains("sink"), "transcribed: {call}");
    assert!(voicemail["duration_ms"].as_u64().unwrap() > 3000, "{call}");
    assert!(call["recording_url"].is_string(), "{call}");
    // The message, then the caller's words, in the call's transcript.
    let lines: Vec<(String, String)> = call["transcript"]
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
    assert_eq!(lines.len(), 2, "{call}");
    assert_eq!(lines[0], ("agent".to_owned(), message.to_lowercase()));
    assert_eq!(lines[1], ("caller".to_owned(), words.clone()));
    // The report is the model's reading of the message, and the owner is
    // emailed.
    assert_eq!(report["caller_name"], "Maria Lopez", "{report}");
    assert_eq!(
        report["follow_ups"][0]["text"], VOICEMAIL_FOLLOW_UP,
        "{report}"
    );
    assert_eq!(report["email_status"], "sent", "{report}");
    let mail = sink.mails();
    assert_eq!(mail.len(), 1);
    assert!(decoded(&mail[0].data).contains("Maria Lopez"));
    front.finish().await;
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
    a_second_call_is_answered_with_what_the_first_taught,
    an_after_hours_voicemail_is_transcribed_reported_and_emailed,
);
