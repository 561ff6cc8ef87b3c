//! After-call reports end to end, on SQLite and Postgres: an AI call's end
//! is driven into the bridge event by event (as the engine publishes
//! them), a local OpenAI-compatible server plays the extraction model, a
//! local SMTP sink written here receives the owner's email, and the
//! webhook outbox is read back.

mod support;

#[allow(dead_code)]
#[path = "support/llm.rs"]
mod llm;

use std::sync::Arc;
use std::time::Duration;

use axum::http::{Method, StatusCode};
use hotline::agent::service::AgentResult;
use hotline::api::AppState;
use hotline::api::calls::bridge::Bridge;
use hotline::call::{
    CallDirection, CallEvent, CallId, CallRecord, CallRegistry, Hangup, Outcome, Party,
    TranscriptLine,
};
use hotline::config::Config;
use hotline::store::{NewCall, NewWebhook};
use serde_json::{Value, json};
use tokio::sync::Notify;

use llm::{Reply, Server};
use support::api::Api;
use support::smtp::{SmtpSink, decoded, email_config};

/// Generous bound for background work that should finish promptly; a
/// test that reaches it has failed, it never measures speed.
const PATIENCE: Duration = Duration::from_secs(30);

// -------------------------------------------------------------- setup ---

/// The API over `config` (the org and key of [`Api::on`] kept).
fn with_config(api: &mut Api, config: Config) {
    api.state = AppState::new(Arc::new(config), api.db.store.clone(), None);
}

fn bridge_of(api: &Api) -> Bridge {
    Bridge::new(
        api.state.clone(),
        CallRegistry::new(10),
        Arc::new(Notify::new()),
    )
}

fn line(speaker: &'static str, text: &str) -> CallEvent {
    CallEvent::Transcript(TranscriptLine {
        speaker,
        text: text.into(),
        is_final: true,
        start_ms: 0,
        end_ms: 0,
        interrupted: false,
    })
}

/// An outbound AI call to `to` placed through the API, answered, with
/// this conversation, then ended; its report is pending afterwards and
/// until the agent's conclusion is handed to the bridge.
async fn ended_ai_call(
    api: &Api,
    bridge: &mut Bridge,
    to: &str,
    lines: &[(&'static str, &str)],
) -> CallId {
    let id = CallId::random();
    let new = NewCall {
        id: Some(id.clone()),
        ..NewCall::new(CallDirection::Outbound, "+14155550199", to)
    };
    api.db.store.create_call(&api.org_id, &new).await.unwrap();
    bridge.placed(id.clone()).await;
    bridge
        .handle(
            id.clone(),
            CallEvent::AgentStarted {
                stt: "whisper".into(),
                brain: "test".into(),
                tts: "piper".into(),
            },
        )
        .await;
    bridge.handle(id.clone(), CallEvent::Answered).await;
    for (who, text) in lines {
        bridge.handle(id.clone(), line(who, text)).await;
    }
    let now = std::time::SystemTime::now();
    let ended = CallEvent::Ended(Box::new(CallRecord {
        id: id.clone(),
        direction: CallDirection::Outbound,
        from: "+14155550199".into(),
        to: to.into(),
        started: now - Duration::from_secs(60),
        answered: Some(now - Duration::from_secs(59)),
        ended: now,
        hangup: Hangup {
            outcome: Outcome::Completed,
            by: Party::Remote,
            sip_code: None,
            reason: "BYE".into(),
        },
        sip_call_id: "sip-call".into(),
        bridged_with: None,
    }));
    bridge.handle(id.clone(), ended).await;
    id
}

async fn conclude(bridge: &mut Bridge, id: &CallId, result: AgentResult) {
    bridge
        .handle(id.clone(), CallEvent::AgentResult(Box::new(result)))
        .await;
}

/// Reads the call's report until it is no longer pending.
async fn wait_report(api: &Api, id: &CallId) -> Value {
    let path = format!("/v1/calls/{id}/report");
    let deadline = tokio::time::Instant::now() + PATIENCE;
    loop {
        let r = api.send(Method::GET, &path, None).await;
        match r.status {
            StatusCode::ACCEPTED => assert_eq!(r.json, json!({"status": "pending"})),
            StatusCode::OK => return r.json,
            other => panic!("report of {id}: {other} {}", r.json),
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the report of {id} stayed pending"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Reads the call's report until its email is no longer pending.
async fn wait_email_status(api: &Api, id: &CallId) -> Value {
    let deadline = tokio::time::Instant::now() + PATIENCE;
    loop {
        let r = wait_report(api, id).await;
        // `none` until the email step starts, just after the report is
        // ready (it also files the report's facts in the caller's memory).
        if r["email_status"] != "pending" && r["email_status"] != "none" {
            return r;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the email of {id} stayed pending"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

fn completion(content: &str) -> Value {
    json!({
        "id": "chatcmpl-r", "object": "chat.completion", "created": 1_700_000_000,
        "model": "test-model",
        "choices": [{"index": 0, "finish_reason": "stop", "logprobs": null,
                     "message": {"role": "assistant", "content": content, "refusal": null}}],
        "usage": {"prompt_tokens": 100, "completion_tokens": 80, "total_tokens": 180}
    })
}

const LEAK_CALL: &[(&str, &str)] = &[
    ("agent", "Thanks for calling Acme Plumbing, how can I help?"),
    (
        "caller",
        "Hi, this is Ada Lovelace. My kitchen sink is leaking all over the floor.",
    ),
    ("caller", "Can someone call me back before noon tomorrow?"),
    (
        "agent",
        "I'll have a plumber call you back before noon tomorrow.",
    ),
];

fn leak_extraction() -> Value {
    json!({
        "summary": "Ada Lovelace reported a kitchen sink leaking onto the floor and asked for a call back before noon tomorrow.",
        "caller_name": "Ada Lovelace",
        "intent": "service_request",
        "urgency": "high",
        "callback_by": "2025-03-02T12:00:00Z",
        "spam": false,
        "facts": [
            {"slot": "name", "value": "Ada Lovelace", "confidence": 0.97,
             "quote": "Hi, this is Ada Lovelace."},
            {"slot": "problem", "value": "kitchen sink leaking", "confidence": 0.9,
             "quote": "My kitchen sink is leaking all over the floor."},
            // Never said: dropped.
            {"slot": "address", "value": "12 Main Street", "confidence": 0.8,
             "quote": "I live at 12 Main Street."}
        ],
        "commitments": [
            {"text": "A plumber calls Ada back before noon tomorrow",
             "quote": "I'll have a plumber call you back before noon tomorrow."}
        ],
        "follow_ups": [
            {"text": "Call Ada back before noon tomorrow",
             "quote": "Can someone call me back before noon tomorrow?"}
        ]
    })
}

// -------------------------------------------------------------- tests ---

async fn an_ai_call_is_reported_announced_and_emailed(api: &mut Api) {
    let server = Server::start().await;
    let sink = SmtpSink::default();
    let port = sink.start().await;
    let mut config = Config::default();
    config.agent.openai.base_url = server.base();
    config.agent.openai.api_key = Some("sk-test-reports".into());
    config.agent.openai.model = "test-model".into();
    config.agent.openai.max_retries = 0;
    config.notify.email = Some(email_config(port));
    with_config(api, config);
    let api: &Api = api;
    let hook = api
        .db
        .store
        .create_webhook(
            &api.org_id,
            &NewWebhook {
                url: "http://127.0.0.1:9/hook".into(),
                events: vec!["call.report.ready".into()],
            },
        )
        .await
        .unwrap();
    let mut bridge = bridge_of(api);

    // A call that had no agent has no report.
    let plain = CallId::random();
    let new = NewCall {
        id: Some(plain.clone()),
        ..NewCall::new(CallDirection::Outbound, "+14155550199", "+14155550111")
    };
    api.db.store.create_call(&api.org_id, &new).await.unwrap();
    bridge.placed(plain.clone()).await;
    let r = api
        .send(Method::GET, &format!("/v1/calls/{plain}/report"), None)
        .await;
    assert_eq!(r.status, StatusCode::NOT_FOUND, "{}", r.json);
    let r = api
        .send(Method::GET, "/v1/calls/call_nope/report", None)
        .await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);

    // The model first answers with the wrong shape, then properly.
    server.push(Reply::json(completion(
        &json!({"summary": "Leak.", "intent": "plumbing"}).to_string(),
    )));
    server.push(Reply::json(completion(&leak_extraction().to_string())));
    let id = ended_ai_call(api, &mut bridge, "+14155550123", LEAK_CALL).await;
    let r = api
        .send(Method::GET, &format!("/v1/calls/{id}/report"), None)
        .await;
    assert_eq!(r.status, StatusCode::ACCEPTED, "{}", r.json);
    assert_eq!(r.json, json!({"status": "pending"}));
    conclude(&mut bridge, &id, AgentResult::default()).await;

    let report = wait_email_status(api, &id).await;
    assert_eq!(report["status"], "ready", "{report}");
    assert_eq!(report["extractor"], "llm");
    assert_eq!(report["call_id"], id.as_str());
    assert_eq!(report["caller_name"], "Ada Lovelace");
    // The report's facts are in the caller's memory.
    let contact = report["contact_id"].as_str().expect("a contact");
    let r = api
        .send(Method::GET, &format!("/v1/contacts/{contact}/memory"), None)
        .await;
    let name = r.json["facts"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["slot"] == "name")
        .cloned()
        .unwrap_or_else(|| panic!("{}", r.json));
    assert_eq!(name["value"], "Ada Lovelace");
    assert_eq!(name["source"]["call_id"], id.as_str());
    assert_eq!(report["intent"], "service_request");
    assert_eq!(report["urgency"], "high");
    assert_eq!(report["callback_by"], "2025-03-02T12:00:00Z");
    assert_eq!(report["spam"], false);
    let slots: Vec<&str> = report["facts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["slot"].as_str().unwrap())
        .collect();
    assert_eq!(slots, ["name", "problem"], "the unquoted fact is dropped");
    assert_eq!(report["dropped"], 1);
    assert_eq!(
        report["facts"][0]["quote"], "Hi, this is Ada Lovelace.",
        "{report}"
    );
    assert_eq!(report["commitments"].as_array().unwrap().len(), 1);
    assert_eq!(
        report["follow_ups"][0]["text"],
        "Call Ada back before noon tomorrow"
    );
    let contact_id = report["contact_id"].as_str().expect("the callee's contact");
    assert_eq!(report["email_status"], "sent", "{report}");

    // The model was asked for a JSON schema, with the transcript, and
    // asked again after the bad answer, saying what was wrong.
    let requests = server.requests();
    assert_eq!(requests.len(), 2);
    let first = requests[0].json();
    assert_eq!(requests[0].path, "/v1/chat/completions");
    assert_eq!(
        requests[0].header("authorization"),
        Some("Bearer sk-test-reports")
    );
    assert_eq!(first["response_format"]["type"], "json_schema");
    assert_eq!(
        first["response_format"]["json_schema"]["name"],
        "call_report"
    );
    let input = first["messages"][1]["content"].as_str().unwrap();
    assert!(
        input.contains("Caller: Can someone call me back before noon tomorrow?\n"),
        "{input}"
    );
    let again = requests[1].json()["messages"][1]["content"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(
        again.contains("Your previous answer was rejected: wrong shape"),
        "{again}"
    );

    // `call.report.ready` is queued for the webhook, with the report.
    let deliveries = api
        .send(
            Method::GET,
            &format!("/v1/webhooks/{}/deliveries", hook.id),
            None,
        )
        .await;
    assert_eq!(deliveries.status, StatusCode::OK);
    let ready: Vec<&Value> = deliveries.json["data"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|d| d["event_type"] == "call.report.ready")
        .collect();
    assert_eq!(ready.len(), 1, "{}", deliveries.json);
    let body = &ready[0]["payload"];
    assert_eq!(body["event_type"], "call.report.ready");
    assert_eq!(body["call_id"], id.as_str());
    assert_eq!(body["data"]["intent"], "service_request");
    assert_eq!(body["data"]["facts"].as_array().unwrap().len(), 2);

    // The owner's email.
    let mails = sink.mails();
    assert_eq!(mails.len(), 1);
    let mail = &mails[0];
    assert_eq!(mail.from, "<hotline@example.com>");
    assert_eq!(mail.to, ["<owner@example.com>"]);
    let data = &decoded(&mail.data);
    for want in [
        "Subject: URGENT: Call from Ada Lovelace (+14155550123): Service request",
        "To: owner@example.com",
        "Caller:        Ada Lovelace",
        "Phone:         +14155550123",
        "Wanted:        Service request",
        "Urgency:       high",
        "Call back by:  2025-03-02T12:00:00Z",
        "Ada Lovelace reported a kitchen sink leaking",
        &format!("Call: {id}"),
        &format!("Report: https://hotline.example.com/v1/calls/{id}/report"),
    ] {
        assert!(data.contains(want), "{want:?} not in the email:\n{data}");
    }

    // The organization names its own recipient.
    let r = api
        .send(
            Method::PATCH,
            "/v1/settings",
            Some(json!({"notify_email": ["desk@example.com"]})),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.json);
    assert_eq!(r.json["notify_email"], json!(["desk@example.com"]));
    let r = api
        .send(
            Method::PATCH,
            "/v1/settings",
            Some(json!({"notify_email": "not an address"})),
        )
        .await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);

    // A spam call: a report, and no email.
    let mut spam = leak_extraction();
    spam["summary"] = json!("A robocall offering an extended car warranty.");
    spam["caller_name"] = Value::Null;
    spam["intent"] = json!("spam");
    spam["urgency"] = json!("low");
    spam["callback_by"] = Value::Null;
    spam["spam"] = json!(true);
    spam["facts"] = json!([]);
    spam["commitments"] = json!([]);
    spam["follow_ups"] = json!([]);
    server.push(Reply::json(completion(&spam.to_string())));
    let robo = ended_ai_call(
        api,
        &mut bridge,
        "+14155550177",
        &[(
            "caller",
            "This is a message about your car's extended warranty.",
        )],
    )
    .await;
    conclude(&mut bridge, &robo, AgentResult::default()).await;
    let report = wait_email_status(api, &robo).await;
    assert_eq!(report["status"], "ready");
    assert_eq!(
        (report["spam"].clone(), report["intent"].clone()),
        (json!(true), json!("spam"))
    );
    assert_eq!(report["email_status"], "skipped");
    assert_eq!(sink.mails().len(), 1, "a spam call is not emailed");

    // A third call goes to the organization's recipient.
    server.push(Reply::json(completion(&leak_extraction().to_string())));
    let again = ended_ai_call(api, &mut bridge, "+14155550123", LEAK_CALL).await;
    conclude(&mut bridge, &again, AgentResult::default()).await;
    let report = wait_email_status(api, &again).await;
    assert_eq!(report["email_status"], "sent", "{report}");
    assert_eq!(sink.mails()[1].to, ["<desk@example.com>"]);

    // The list and its filters.
    let list = |q: &str| {
        let path = format!("/v1/reports{q}");
        async move { api.send(Method::GET, &path, None).await }
    };
    let all = list("").await;
    assert_eq!(all.status, StatusCode::OK);
    let ids: Vec<&str> = all.json["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["call_id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, [again.as_str(), robo.as_str(), id.as_str()]);
    let spam_only = list("?spam=true").await;
    assert_eq!(spam_only.json["data"].as_array().unwrap().len(), 1);
    assert_eq!(spam_only.json["data"][0]["call_id"], robo.as_str());
    let service = list("?intent=service_request&urgency=high").await;
    assert_eq!(service.json["data"].as_array().unwrap().len(), 2);
    let theirs = list(&format!("?contact_id={contact_id}")).await;
    assert_eq!(theirs.json["data"].as_array().unwrap().len(), 2);
    let paged = list("?limit=2").await;
    assert_eq!(paged.json["data"].as_array().unwrap().len(), 2);
    let cursor = paged.json["next_cursor"].as_str().unwrap().to_owned();
    let rest = list(&format!("?limit=2&cursor={cursor}")).await;
    assert_eq!(rest.json["data"][0]["call_id"], id.as_str());
    assert_eq!(rest.json["next_cursor"], Value::Null);
    let future = list(&format!(
        "?created_after={}",
        hotline::store::now_ms() + 60_000
    ))
    .await;
    assert_eq!(future.json["data"], json!([]));
    let bad = list("?urgency=urgent&spam=maybe").await;
    assert_eq!(bad.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(
        bad.json["detail"].as_array().unwrap().len(),
        2,
        "{}",
        bad.json
    );

    // Another organization sees none of it.
    let other = api.other_org_key("other").await;
    let r = api
        .send_as(
            Some(&other),
            Method::GET,
            &format!("/v1/calls/{id}/report"),
            None,
        )
        .await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);

    // Forgetting the contact deletes their reports.
    let r = api
        .send(Method::DELETE, &format!("/v1/contacts/{contact_id}"), None)
        .await;
    assert_eq!(r.status, StatusCode::NO_CONTENT);
    let r = api
        .send(Method::GET, &format!("/v1/calls/{id}/report"), None)
        .await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    assert_eq!(list("").await.json["data"].as_array().unwrap().len(), 1);
}

async fn offline_a_flow_report_is_made_from_the_slots(api: &mut Api) {
    // No LLM configured (and no email): the flow's report.
    with_config(api, Config::default());
    let api: &Api = api;
    let mut bridge = bridge_of(api);
    let id = ended_ai_call(
        api,
        &mut bridge,
        "+14155550155",
        &[
            ("agent", "Thanks for calling. Who am I speaking with?"),
            ("caller", "Grace Hopper"),
            ("agent", "What message should I pass on?"),
            ("caller", "Please ask Bob to call me about the invoice"),
        ],
    )
    .await;
    let r = api
        .send(Method::GET, &format!("/v1/calls/{id}/report"), None)
        .await;
    assert_eq!(r.status, StatusCode::ACCEPTED);
    let result = AgentResult {
        outcome: Some("achieved".into()),
        structured_data: Some(json!({
            "name": "Grace Hopper",
            "message": "Please ask Bob to call me about the invoice"
        })),
        slot_quotes: [
            ("name".to_owned(), "Grace Hopper".to_owned()),
            (
                "message".to_owned(),
                "Please ask Bob to call me about the invoice".to_owned(),
            ),
        ]
        .into(),
        ..AgentResult::default()
    };
    conclude(&mut bridge, &id, result).await;
    let report = wait_report(api, &id).await;
    assert_eq!(report["status"], "ready", "{report}");
    assert_eq!(report["extractor"], "flow");
    assert_eq!(report["intent"], "other");
    assert_eq!(report["urgency"], Value::Null);
    assert_eq!(report["callback_by"], Value::Null);
    assert_eq!(report["caller_name"], "Grace Hopper");
    assert_eq!(report["summary"], "The caller said: \"Grace Hopper\"");
    let mut facts: Vec<(String, String)> = report["facts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| {
            (
                f["slot"].as_str().unwrap().to_owned(),
                f["quote"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    facts.sort();
    assert_eq!(
        facts,
        [
            (
                "message".to_owned(),
                "Please ask Bob to call me about the invoice".to_owned()
            ),
            ("name".to_owned(), "Grace Hopper".to_owned()),
        ]
    );
    assert_eq!(report["email_status"], "none");
    let list = api
        .send(Method::GET, "/v1/reports?intent=other", None)
        .await;
    assert_eq!(list.json["data"].as_array().unwrap().len(), 1);
}

macro_rules! on_both {
    ($($name:ident),* $(,)?) => {$(
        mod $name {
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn sqlite() {
                let mut api = super::support::api::Api::on(super::support::db::TestDb::sqlite().await).await;
                super::$name(&mut api).await;
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn postgres() {
                if let Some(db) = super::support::db::TestDb::postgres(stringify!($name)).await {
                    let mut api = super::support::api::Api::on(db).await;
                    super::$name(&mut api).await;
                    api.db.cleanup().await;
                }
            }
        }
    )*};
}

on_both!(
    an_ai_call_is_reported_announced_and_emailed,
    offline_a_flow_report_is_made_from_the_slots,
);
