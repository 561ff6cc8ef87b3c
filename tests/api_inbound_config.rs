//! `/v1/numbers/{id}/inbound-config`: the GET/PUT/PATCH/DELETE semantics
//! and validation through the API, and end to end with a real SIP caller
//! (sipp with an RTP talker): an inline prompt reaches a local
//! OpenAI-compatible LLM with the reply-language directive, a DELETE
//! makes calls take the fallback, and outside business hours the caller
//! hears the after-hours message and the agent never starts. Every test
//! runs on SQLite and, when `HOTLINE_TEST_POSTGRES` is set, on Postgres.

mod peers;
mod support;

use std::sync::Arc;
use std::time::Duration;

use axum::http::{Method, StatusCode};
use hotline::api::AppState;
use hotline::api::calls::{bridge, numbers};
use hotline::call::{CallEvent, CallRegistry, Party};
use hotline::config::{Config, SipListen, SipTransport};
use hotline::engine::Engine;
use peers::sipp::{Scenario, SippRun};
use serde_json::{Value, json};
use support::api::Api;
use support::db::TestDb;
use tokio::sync::{Notify, watch};

const CONFIG: &str = "/inbound-config";

async fn new_number(api: &Api, e164: &str) -> String {
    let r = api
        .send(Method::POST, "/v1/numbers", Some(json!({"e164": e164})))
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{:?}", r.json);
    r.json["id"].as_str().unwrap().to_owned()
}

fn path(id: &str) -> String {
    format!("/v1/numbers/{id}{CONFIG}")
}

/// The locations of a 422's problems, as dotted paths without `body.`.
fn locations(json: &Value) -> Vec<String> {
    json["detail"]
        .as_array()
        .unwrap_or_else(|| panic!("not a 422 body: {json}"))
        .iter()
        .map(|d| {
            let loc: Vec<&str> = d["loc"]
                .as_array()
                .unwrap()
                .iter()
                .map(|s| s.as_str().unwrap())
                .collect();
            loc[1..].join(".")
        })
        .collect()
}

async fn get_put_patch_and_delete_keep_what_they_should(api: &Api) {
    let id = new_number(api, "+14155550160").await;
    // A new number: off, with the defaults shown.
    let r = api.send(Method::GET, &path(&id), None).await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.json);
    assert_eq!(r.json["mode"], "off");
    assert_eq!(r.json["number_id"], id.as_str());
    assert_eq!(r.json["e164"], "+14155550160");
    assert_eq!(r.json["max_duration_secs"], 600);
    assert_eq!(r.json["record"], false);
    assert_eq!(r.json["agent_id"], Value::Null);
    // Callers are remembered unless the number says otherwise.
    assert_eq!(r.json["context_source"], "memory");
    assert_eq!(r.json["context_webhook_url"], Value::Null);

    // PUT: the whole configuration.
    let put = json!({
        "mode": "ai", "system_prompt": "You are the front desk of Acme Plumbing.",
        "first_message": "Acme Plumbing, how can I help?", "voice": "en-us",
        "language": "DE", "max_duration_secs": 300, "record": true,
        "transfer_number": "+1 415 555 0199", "label": "Front desk",
        "business_hours": {"timezone": "Europe/Berlin",
            "weekly": {"mon": [["09:00", "17:00"]], "fri": [["22:00", "02:00"]]},
            "holidays": ["2026-12-25"]},
        "after_hours": "voicemail", "after_hours_message": "Please leave a message.",
        "voicemail_max_secs": 60
    });
    let r = api.send(Method::PUT, &path(&id), Some(put)).await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.json);
    assert_eq!(r.json["language"], "de", "canonical spelling");
    assert_eq!(r.json["transfer_number"], "+14155550199");
    assert_eq!(r.json["label"], "Front desk");
    assert_eq!(r.json["business_hours"]["weekly"]["fri"][0][1], "02:00");
    let stored = api.send(Method::GET, &path(&id), None).await.json;
    assert_eq!(stored, r.json, "GET reads what PUT stored");
    // The number shows the same settings as `inbound`, and the label.
    let n = api
        .send(Method::GET, &format!("/v1/numbers/{id}"), None)
        .await
        .json;
    assert_eq!(n["inbound"]["system_prompt"], stored["system_prompt"]);
    assert_eq!(n["label"], "Front desk");

    // PATCH the voice: the prompt (and everything else) stays.
    let r = api
        .send(Method::PATCH, &path(&id), Some(json!({"voice": "en-gb"})))
        .await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.json);
    assert_eq!(r.json["voice"], "en-gb");
    assert_eq!(
        r.json["system_prompt"],
        "You are the front desk of Acme Plumbing."
    );
    let mut expected = stored.clone();
    expected["voice"] = json!("en-gb");
    assert_eq!(r.json, expected, "only the voice changed");
    // `null` clears an optional field; `mode` cannot be cleared.
    let r = api
        .send(
            Method::PATCH,
            &path(&id),
            Some(json!({"language": null, "business_hours": null, "label": null})),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.json);
    assert!(r.json.get("language").is_none(), "{:?}", r.json);
    assert!(r.json.get("business_hours").is_none(), "{:?}", r.json);
    assert_eq!(r.json["label"], Value::Null);
    assert_eq!(
        r.json["system_prompt"],
        "You are the front desk of Acme Plumbing."
    );
    let r = api
        .send(Method::PATCH, &path(&id), Some(json!({"mode": null})))
        .await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(locations(&r.json), ["mode"]);

    // PUT again replaces the whole: what is not sent is gone.
    let r = api
        .send(
            Method::PUT,
            &path(&id),
            Some(json!({"mode": "ai", "system_prompt": "Take messages."})),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.json);
    assert!(r.json.get("voice").is_none(), "{:?}", r.json);
    assert!(r.json.get("after_hours").is_none(), "{:?}", r.json);
    assert_eq!(r.json["max_duration_secs"], 600, "back to the default");

    // A pre-call webhook gets a signing secret made for it, kept by later
    // PATCHes, with the default time limit shown.
    let r = api
        .send(
            Method::PATCH,
            &path(&id),
            Some(json!({"context_source": "merge",
                "context_webhook_url": "https://crm.example.com/hotline/context"})),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.json);
    let secret = r.json["context_webhook_secret"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(
        secret.starts_with("whsec_") && secret.len() > 30,
        "{secret}"
    );
    assert_eq!(r.json["context_webhook_timeout_ms"], 1200);
    let r = api
        .send(
            Method::PATCH,
            &path(&id),
            Some(
                json!({"context_webhook_url": "https://crm.example.com/v2/context",
                "context_webhook_timeout_ms": 800}),
            ),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.json);
    assert_eq!(r.json["context_webhook_secret"], secret.as_str());
    assert_eq!(r.json["context_source"], "merge");
    assert_eq!(r.json["system_prompt"], "Take messages.");
    let r = api
        .send(
            Method::PATCH,
            &path(&id),
            Some(
                json!({"context_source": "none", "context_webhook_url": null,
                "context_webhook_secret": null, "context_webhook_timeout_ms": null}),
            ),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.json);
    assert_eq!(r.json["context_source"], "none");
    assert!(
        r.json.get("context_webhook_secret").is_none(),
        "{:?}",
        r.json
    );

    // DELETE: AI off, calls take the fallback; the settings are kept.
    let r = api.send(Method::DELETE, &path(&id), None).await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.json);
    assert_eq!(r.json["mode"], "off");
    assert_eq!(r.json["fallback"], "reject");
    assert_eq!(r.json["system_prompt"], "Take messages.");
    // A fallback of one's own is kept by a DELETE.
    let r = api
        .send(
            Method::PATCH,
            &path(&id),
            Some(json!({"mode": "ai", "fallback": "play", "closed_message": "We are closed."})),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.json);
    assert_eq!(r.json["mode"], "ai", "back on as it was");
    assert_eq!(r.json["system_prompt"], "Take messages.");
    let r = api.send(Method::DELETE, &path(&id), None).await;
    assert_eq!(r.json["fallback"], "play");
    assert_eq!(r.json["closed_message"], "We are closed.");

    // A stored agent instead of a prompt; a flow number.
    let agent = api
        .send(
            Method::POST,
            "/v1/agents",
            Some(json!({"name": "Desk", "system_prompt": "Be kind."})),
        )
        .await
        .json;
    let r = api
        .send(
            Method::PUT,
            &path(&id),
            Some(json!({"mode": "ai", "agent_id": agent["id"], "voice": "en-us"})),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.json);
    assert_eq!(r.json["agent_id"], agent["id"]);
    let listed = api
        .send(
            Method::GET,
            &format!("/v1/numbers?agent_id={}", agent["id"].as_str().unwrap()),
            None,
        )
        .await
        .json;
    assert_eq!(listed["data"].as_array().unwrap().len(), 1);
    let r = api
        .send(
            Method::PUT,
            &path(&id),
            Some(json!({"mode": "flow", "flow": "receptionist"})),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.json);
    assert_eq!(
        r.json["agent_id"], agent["id"],
        "PUT leaves agent_id unless sent"
    );

    // The number's own PATCH keeps working, with inline AI settings too.
    let r = api
        .send(
            Method::PATCH,
            &format!("/v1/numbers/{id}"),
            Some(json!({"agent_id": null, "inbound": {"mode": "ai", "system_prompt": "Hi."}})),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.json);
    assert_eq!(
        r.json["inbound"],
        json!({"mode": "ai", "system_prompt": "Hi."})
    );
}

async fn invalid_configurations_name_the_field(api: &Api) {
    let id = new_number(api, "+14155550161").await;
    for (body, want) in [
        (
            json!({"mode": "ai", "system_prompt": "x", "business_hours": {"timezone": "Europe/Berlin",
                "weekly": {"mon": [["09:00", "25:00"]]}}}),
            vec!["business_hours.weekly.mon.0.1"],
        ),
        (
            json!({"mode": "ai", "system_prompt": "x", "business_hours": {"timezone": "Mars/Base",
                "holidays": ["soon"]}}),
            vec!["business_hours.timezone", "business_hours.holidays.0"],
        ),
        (json!({"mode": "ai"}), vec!["agent_id"]),
        (json!({"mode": "flow"}), vec!["flow"]),
        (json!({"mode": "flow", "flow": "opera"}), vec!["flow"]),
        (
            json!({"mode": "flow", "flow": {"start": "a", "nodes": [{"id": "a", "type": "shout"}]}}),
            vec!["flow.nodes.0.type"],
        ),
        (
            json!({"mode": "ai", "system_prompt": "x", "language": "xx"}),
            vec!["language"],
        ),
        (
            json!({"mode": "ai", "system_prompt": "x", "max_duration_secs": 10}),
            vec!["max_duration_secs"],
        ),
        (
            json!({"mode": "ai", "system_prompt": "x", "transfer_number": "+1911"}),
            vec!["transfer_number"],
        ),
        (
            json!({"mode": "ai", "system_prompt": "x", "voice": "no-such-voice"}),
            vec!["voice"],
        ),
        (
            json!({"mode": "ai", "system_prompt": "x", "after_hours": "forward"}),
            vec!["after_hours_forward_to"],
        ),
        (
            json!({"mode": "off", "fallback": "forward", "fallback_forward_to": "+14155550161"}),
            vec!["fallback_forward_to"],
        ),
        (
            json!({"mode": "off", "fallback": "reject", "reject_status": 200}),
            vec!["reject_status"],
        ),
        (
            json!({"mode": "off", "fallback": "play", "closed_prompt": "../etc/passwd"}),
            vec!["closed_prompt"],
        ),
        (
            json!({"mode": "ai", "system_prompt": "x", "volume": 11}),
            vec!["volume"],
        ),
        (
            json!({"mode": "ai", "system_prompt": "x", "context_source": "webhook"}),
            vec!["context_webhook_url"],
        ),
        (
            json!({"mode": "ai", "system_prompt": "x", "context_source": "merge",
                "context_webhook_url": "ftp://crm.example.com", "context_webhook_secret": "short",
                "context_webhook_timeout_ms": 60000}),
            vec![
                "context_webhook_url",
                "context_webhook_secret",
                "context_webhook_timeout_ms",
            ],
        ),
        (
            json!({"mode": "ai", "system_prompt": "x", "context_source": "everything"}),
            vec!["context_source"],
        ),
        (json!({"mode": "sing"}), vec!["mode"]),
        (json!({"system_prompt": "x"}), vec!["mode"]),
    ] {
        let r = api.send(Method::PUT, &path(&id), Some(body.clone())).await;
        assert_eq!(
            r.status,
            StatusCode::UNPROCESSABLE_ENTITY,
            "{body}: {:?}",
            r.json
        );
        assert_eq!(locations(&r.json), want, "{body}");
    }
    // A PATCH is validated with what it keeps: a bad hour in the merge.
    let r = api
        .send(
            Method::PUT,
            &path(&id),
            Some(json!({"mode": "ai", "system_prompt": "x"})),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.json);
    let r = api
        .send(
            Method::PATCH,
            &path(&id),
            Some(json!({"business_hours": {"timezone": "UTC", "weekly": {"sun": [["10:00", "10:00"]]}}})),
        )
        .await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(locations(&r.json), ["business_hours.weekly.sun.0.1"]);
    // Clearing the prompt of an `ai` number without an agent is refused.
    let r = api
        .send(
            Method::PATCH,
            &path(&id),
            Some(json!({"system_prompt": null})),
        )
        .await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(locations(&r.json), ["agent_id"]);
    // Nothing was stored by the refused requests.
    let r = api.send(Method::GET, &path(&id), None).await;
    assert_eq!(r.json["system_prompt"], "x");
    assert!(r.json.get("business_hours").is_none());
}

async fn another_organizations_number_is_not_found(api: &Api) {
    let id = new_number(api, "+14155550162").await;
    let other = api.other_org_key("globex").await;
    for method in [Method::GET, Method::PUT, Method::PATCH, Method::DELETE] {
        let body = (method == Method::PUT || method == Method::PATCH)
            .then(|| json!({"mode": "ai", "system_prompt": "Mine now."}));
        let r = api
            .send_as(Some(&other), method.clone(), &path(&id), body)
            .await;
        assert_eq!(r.status, StatusCode::NOT_FOUND, "{method}: {:?}", r.json);
        assert_eq!(r.json["detail"], "number not found");
    }
    let r = api.send(Method::GET, &path("num_missing"), None).await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    // Untouched.
    let r = api.send(Method::GET, &path(&id), None).await;
    assert_eq!(r.json["mode"], "off");
}

api_on_both!(
    get_put_patch_and_delete_keep_what_they_should,
    invalid_configurations_name_the_field,
    another_organizations_number_is_not_found,
);

/// A local OpenAI-compatible server: streamed chat completions (SSE) with
/// a reply and an `end_call` tool call; it keeps every request.
mod llm {
    use std::sync::{Arc, Mutex};

    use axum::Router;
    use axum::body::Bytes;
    use axum::response::{IntoResponse, Response};
    use axum::routing::post;
    use serde_json::{Value, json};

    #[derive(Clone, Default)]
    pub struct Llm {
        pub requests: Arc<Mutex<Vec<Value>>>,
    }

    fn chunk(delta: Value, finish: Option<&str>) -> String {
        let c = json!({
            "id": "chatcmpl-1", "object": "chat.completion.chunk", "created": 1_700_000_000,
            "model": "test-model",
            "choices": [{"index": 0, "delta": delta, "logprobs": null, "finish_reason": finish}]
        });
        format!("data: {c}\n\n")
    }

    async fn completions(
        axum::extract::State(llm): axum::extract::State<Llm>,
        body: Bytes,
    ) -> Response {
        let request: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
        llm.requests.lock().unwrap().push(request.clone());
        if request["stream"] != json!(true) {
            let content = json!({"summary": "The caller needs a plumber."}).to_string();
            return axum::Json(json!({
                "id": "chatcmpl-2", "object": "chat.completion", "created": 1_700_000_000,
                "model": "test-model",
                "choices": [{"index": 0, "finish_reason": "stop", "logprobs": null,
                    "message": {"role": "assistant", "content": content}}],
                "usage": {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2}
            }))
            .into_response();
        }
        let mut body = String::new();
        body.push_str(&chunk(json!({"role": "assistant", "content": ""}), None));
        body.push_str(&chunk(
            json!({"content": "Right, a plumber will come by. Goodbye!"}),
            None,
        ));
        body.push_str(&chunk(
            json!({"tool_calls": [{"index": 0, "id": "call_1", "type": "function",
                "function": {"name": "end_call", "arguments": "{}"}}]}),
            None,
        ));
        body.push_str(&chunk(json!({}), Some("tool_calls")));
        body.push_str("data: [DONE]\n\n");
        ([("content-type", "text/event-stream")], body).into_response()
    }

    /// Serves on 127.0.0.1 from a thread of its own; returns the API base.
    pub fn start(llm: Llm) -> String {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        listener.set_nonblocking(true).unwrap();
        std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            rt.block_on(async move {
                let app = Router::new()
                    .route("/v1/chat/completions", post(completions))
                    .with_state(llm);
                let listener = tokio::net::TcpListener::from_std(listener).unwrap();
                axum::serve(listener, app).await.unwrap();
            });
        });
        format!("http://{addr}/v1")
    }
}

/// A whole server in-process (engine, store, bridge) whose LLM is the
/// local test server; requests go straight into the router.
struct Env {
    api: Api,
    sip: std::net::SocketAddr,
    registry: CallRegistry,
    llm: llm::Llm,
    stop: watch::Sender<bool>,
}

impl Env {
    async fn start(db: TestDb) -> Env {
        let _ = rustls::crypto::ring::default_provider().install_default();
        let server = llm::Llm::default();
        let base = llm::start(server.clone());
        let dir = tempfile::tempdir().unwrap().keep();
        let addr: std::net::SocketAddr = (peers::LOOPBACK, peers::ports::free_port()).into();
        let mut config = Config {
            data_dir: dir,
            ..Config::default()
        };
        config.sip.listen = vec![SipListen::new(SipTransport::Udp, addr)];
        config.rtp.port_min = 45000;
        config.rtp.port_max = 49999;
        config.rtp.bind_ip = peers::LOOPBACK.into();
        config.sip.drain_secs = 1;
        config.agent.models_dir = Some(
            std::env::var("HOTLINE_MODELS_DIR")
                .unwrap_or_else(|_| concat!(env!("CARGO_MANIFEST_DIR"), "/data/models").to_owned())
                .into(),
        );
        config.providers.llm.kind = "openai".into();
        config.agent.openai.base_url = base;
        config.agent.openai.api_key = Some("sk-test".into());
        config.agent.openai.model = "test-model".into();
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
        hotline::api::calls::dispatch::spawn(
            state.clone(),
            state.engine.clone().unwrap(),
            stopped.clone(),
        );
        bridge::spawn(
            state.clone(),
            registry.clone(),
            Arc::new(Notify::new()),
            stopped,
        );
        let org = store.ensure_org("acme").await.unwrap();
        let key = store.create_api_key(&org.id, "test").await.unwrap();
        Env {
            api: Api {
                db,
                state,
                org_id: org.id,
                key: key.plaintext,
            },
            sip: addr,
            registry,
            llm: server,
            stop,
        }
    }

    /// Calls `number` from sipp (with `talker` as its media, if any) and
    /// returns sipp's result and the call's events, up to its conclusion
    /// (or its end, for calls that have none).
    async fn call(
        &self,
        number: &str,
        scenario: Scenario,
        conclusion: bool,
    ) -> (peers::sipp::SippResult, Vec<CallEvent>) {
        let mut events = self.registry.subscribe_all();
        let mut run = SippRun::uac(scenario, self.sip);
        run.service = number.into();
        run.timeout = Duration::from_secs(60);
        let uac = tokio::task::block_in_place(|| run.spawn().unwrap());
        let mut seen = Vec::new();
        let collect = async {
            loop {
                match events.recv().await {
                    Ok((_, e)) => {
                        let done = match &e {
                            CallEvent::AgentResult(_) => true,
                            CallEvent::Ended(_) => !conclusion,
                            _ => false,
                        };
                        seen.push(e);
                        if done {
                            break;
                        }
                    }
                    Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => {}
                    Err(_) => break,
                }
            }
        };
        let _ = tokio::time::timeout(Duration::from_secs(60), collect).await;
        let result = tokio::task::block_in_place(|| uac.wait().unwrap());
        (result, seen)
    }

    async fn finish(self) {
        let _ = self.stop.send(true);
        if let Some(e) = &self.api.state.engine {
            e.drain(Duration::from_millis(100)).await;
        }
        self.api.db.cleanup().await;
    }
}

macro_rules! e2e_on_both {
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

fn talker(parts: &[(f64, &str)]) -> peers::talker::Talker {
    let script = if parts.is_empty() {
        Vec::new()
    } else {
        let wav = peers::media::script_wav(parts).unwrap();
        peers::media::read_pcm(&wav).unwrap().1
    };
    peers::talker::Talker::start(peers::talker::TalkerConfig { script, echo: None }).unwrap()
}

/// An `ai` number with an inline prompt answers a real caller; the LLM is
/// given the stored prompt with "Always reply in English (region GB)."
/// appended, and the stored prompt is unchanged. (The language also goes
/// to speech recognition, and the local Whisper model is English-only:
/// a German number needs a multilingual or cloud STT, so the caller here
/// speaks British English.) After a DELETE the next call is
/// refused with the fallback's 480.
async fn an_inline_prompt_answers_with_the_language_directive_then_delete_falls_back(env: &Env) {
    let api = &env.api;
    let id = new_number(api, "+14155550170").await;
    let prompt = "You are the front desk of Acme Plumbing. Take the caller's request.";
    let r = api
        .send(
            Method::PUT,
            &path(&id),
            Some(json!({"mode": "ai", "system_prompt": prompt,
                "first_message": "Acme Plumbing, how can I help?", "language": "en-gb"})),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.json);

    let talker = talker(&[(6.0, "I need a plumber for a leaking pipe.")]);
    let (uac, events) = env
        .call(
            "+14155550170",
            Scenario::uac_wait_bye(40_000).sdp_port(talker.port()),
            true,
        )
        .await;
    let talk = talker.finish();
    assert!(
        uac.all_ok(),
        "{}\nevents: {events:#?}\nllm: {:#?}",
        uac.diagnostics(),
        env.llm.requests.lock().unwrap()
    );
    assert!(
        events
            .iter()
            .any(|e| matches!(e, CallEvent::AgentStarted { .. })),
        "{events:?}"
    );
    let ended = events
        .iter()
        .find_map(|e| match e {
            CallEvent::Ended(r) => Some(r.clone()),
            _ => None,
        })
        .expect("the call ended");
    assert_eq!(ended.hangup.by, Party::Local, "end_call hung up");
    assert!(
        peers::audio::is_non_silent(&talk.pcm),
        "the caller heard the agent"
    );

    // What the brain was told: the stored prompt, then the directive.
    let requests = env.llm.requests.lock().unwrap().clone();
    let chat = requests
        .iter()
        .find(|r| r["stream"] == true)
        .expect("a streamed chat request");
    let system = chat["messages"][0]["content"].as_str().unwrap_or_default();
    assert!(system.starts_with(prompt), "{system}");
    assert!(
        system.ends_with("Always reply in English (region GB)."),
        "{system}"
    );
    let said = chat["messages"].to_string().to_lowercase();
    assert!(said.contains("leaking pipe"), "the caller's words: {said}");
    // Stored as it was given.
    let r = api.send(Method::GET, &path(&id), None).await;
    assert_eq!(r.json["system_prompt"], prompt);

    // Inbound AI off: the fallback (reject, 480) answers the next call.
    let r = api.send(Method::DELETE, &path(&id), None).await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.json);
    let before = env.llm.requests.lock().unwrap().len();
    let mut run = SippRun::uac(Scenario::uac_expect_status(480), env.sip);
    run.service = "+14155550170".into();
    let refused = tokio::task::block_in_place(|| run.spawn().unwrap().wait().unwrap());
    assert!(refused.all_ok(), "{}", refused.diagnostics());
    assert_eq!(env.llm.requests.lock().unwrap().len(), before);
}

/// Outside business hours (a schedule with no opening hours today: a
/// holiday) the `message` after-hours path speaks and hangs up; the
/// agent never starts and the LLM is never asked.
async fn outside_business_hours_the_caller_hears_the_message_and_the_call_ends(env: &Env) {
    let api = &env.api;
    let id = new_number(api, "+14155550171").await;
    let today = jiff::Timestamp::now()
        .to_zoned(jiff::tz::TimeZone::get("Europe/Berlin").unwrap())
        .date();
    let tomorrow = today.tomorrow().unwrap();
    let r = api
        .send(
            Method::PUT,
            &path(&id),
            Some(json!({"mode": "ai", "system_prompt": "You are the front desk.",
                "business_hours": {"timezone": "Europe/Berlin",
                    "weekly": {"mon": [["00:00", "24:00"]], "tue": [["00:00", "24:00"]],
                        "wed": [["00:00", "24:00"]], "thu": [["00:00", "24:00"]],
                        "fri": [["00:00", "24:00"]], "sat": [["00:00", "24:00"]],
                        "sun": [["00:00", "24:00"]]},
                    // Today and tomorrow: closed now, even at midnight.
                    "holidays": [today.to_string(), tomorrow.to_string()]},
                "after_hours": "message",
                "after_hours_message": "Thank you for calling Acme. We are closed today. Please call again tomorrow."})),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.json);

    let talker = talker(&[]);
    let (uac, events) = env
        .call(
            "+14155550171",
            Scenario::uac_wait_bye(30_000).sdp_port(talker.port()),
            false,
        )
        .await;
    let talk = talker.finish();
    assert!(uac.all_ok(), "{}", uac.diagnostics());
    assert!(
        !events
            .iter()
            .any(|e| matches!(e, CallEvent::AgentStarted { .. })),
        "{events:?}"
    );
    let ended = events
        .iter()
        .find_map(|e| match e {
            CallEvent::Ended(r) => Some(r.clone()),
            _ => None,
        })
        .expect("the call ended");
    assert_eq!(ended.hangup.by, Party::Local, "Hotline hung up");
    // The message is a few seconds of speech at 8 kHz.
    let heard = peers::audio::active_fraction(&talk.pcm, 8000)
        * peers::audio::duration_secs(&talk.pcm, 8000);
    assert!(heard > 2.0, "the caller heard {heard:.1} s of speech");
    assert!(env.llm.requests.lock().unwrap().is_empty());

    // Open again (no holidays): the same number runs the agent.
    let r = api
        .send(
            Method::PATCH,
            &path(&id),
            Some(json!({"business_hours": null})),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.json);
    let route = env
        .api
        .state
        .engine
        .as_ref()
        .unwrap()
        .numbers()
        .get("+14155550171")
        .unwrap();
    assert!(
        matches!(route.action, hotline::engine::NumberAction::Answer(ref n) if n.mode == hotline::config::NumberMode::Agent),
        "{:?}",
        route.action
    );
}

e2e_on_both!(
    an_inline_prompt_answers_with_the_language_directive_then_delete_falls_back,
    outside_business_hours_the_caller_hears_the_message_and_the_call_ends,
);
