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

#[path = "support/front.rs"]
mod front;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use axum::http::HeaderMap;
use axum::routing::post;
use front::{FOLLOW_UP, Front, MARIA, VOICEMAIL_FOLLOW_UP, serve, until};
use hotline::api::signing;
use peers::sipp::{Offer, Scenario};
use serde_json::{Value, json};
use support::db::TestDb;
use support::smtp::decoded;

/// The receptionist's number.
const DID: &str = "+14155550180";
/// What the CRM knows of Maria (the fast context webhook's answer).
const CRM_BLOCK: &str = "CRM: Maria has a Gold service contract, account 4471.";

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

/// A call to the receptionist that it ends itself.
async fn call_receptionist(front: &Front, words: &str, before: usize) -> String {
    front
        .call(DID, Scenario::uac_wait_bye(45_000), 7.0, words, before)
        .await
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
    let first = call_receptionist(
            &front,
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
    let _second = call_receptionist(
        &front,
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
