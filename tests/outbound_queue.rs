//! The durable outbound queue end to end: the whole server in process
//! dials real sipp peers. Retries follow the policy's backoff (fractions
//! of a minute here) until the attempts are exhausted; scheduled calls
//! and business hours hold a call back, and a waiting call can be
//! canceled while a live one cannot; a callee who asks not to be called
//! again goes on the do-not-call list, and a later call to them is
//! refused. Runs on SQLite and, when `HOTLINE_TEST_POSTGRES` is set, on
//! Postgres.

mod peers;
mod support;

#[path = "support/front.rs"]
mod front;

use std::time::Duration;

use front::{Front, PATIENCE};
use hotline::config::TrunkConfig;
use peers::sipp::{Scenario, SippRun};
use peers::talker::{Talker, TalkerConfig};
use reqwest::Method;
use serde_json::{Value, json};
use support::db::TestDb;

/// The fields a 422 names.
fn fields(e: &Value) -> Vec<String> {
    e["detail"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| {
            let loc: Vec<&str> = d["loc"].as_array().unwrap()[1..]
                .iter()
                .map(|p| p.as_str().unwrap())
                .collect();
            loc.join(".")
        })
        .collect()
}

/// Polls the call until `f` holds.
async fn until_call(front: &Front, id: &str, f: impl Fn(&Value) -> bool) -> Value {
    let deadline = tokio::time::Instant::now() + PATIENCE;
    loop {
        let (_, call) = front.get(&format!("/v1/calls/{id}")).await;
        if f(&call) {
            return call;
        }
        assert!(tokio::time::Instant::now() < deadline, "{call:#}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn busy_callee_is_retried_with_backoff_until_exhausted(db: TestDb) {
    let mut run = SippRun::uas(Scenario::from_fixture("uas_status.xml").var("STATUS", 486));
    run.calls = 3;
    run.timeout = PATIENCE;
    let mut busy = tokio::task::block_in_place(|| run.spawn().unwrap());
    tokio::task::block_in_place(|| busy.wait_ready(Duration::from_secs(10)).unwrap());
    let front = Front::start(db).await;
    // Waits of 1.2 s, then 2.4 s: a minute is a minute, fractions work.
    let placed = front
        .send(
            Method::POST,
            "/v1/calls",
            Some(json!({"to": format!("sip:shop@{}", busy.sip_addr()),
                "retry_policy": {"max_attempts": 3, "backoff_minutes": [0.02, 0.04]}})),
        )
        .await;
    let id = placed["id"].as_str().unwrap().to_owned();
    let call = until_call(&front, &id, |c| c["status"] == "exhausted").await;
    assert_eq!(call["attempts"], 3, "{call:#}");
    assert!(call["next_attempt_at"].is_null());
    let history = call["attempt_history"].as_array().unwrap();
    assert_eq!(history.len(), 3, "{call:#}");
    for (i, a) in history.iter().enumerate() {
        assert_eq!(a["attempt"], i + 1);
        assert_eq!(a["status"], "busy", "{call:#}");
        assert_eq!(a["sip_code"], 486);
    }
    // Each retry waited at least its backoff after the attempt before.
    let gap = |i: usize| {
        history[i + 1]["started_at"].as_i64().unwrap() - history[i]["ended_at"].as_i64().unwrap()
    };
    assert!(gap(0) >= 1200, "first wait {} ms", gap(0));
    assert!(gap(1) >= 2400, "second wait {} ms", gap(1));
    assert_eq!(call["cost_breakdown"]["telephony"]["attempts"], 3);
    assert_eq!(call["cost_breakdown"]["telephony"]["billable_minutes"], 0);
    let result = tokio::task::block_in_place(|| busy.wait().unwrap());
    assert!(result.all_ok(), "{}", result.diagnostics());
    front.finish().await;
}

/// `HH:MM` `hours` from now (UTC), and its unix ms.
fn utc_in(hours: i64) -> (String, i64) {
    let now = jiff::Timestamp::now();
    let at = now
        .checked_add(jiff::SignedDuration::from_hours(hours))
        .unwrap();
    let z = at.to_zoned(jiff::tz::TimeZone::UTC);
    let hhmm = format!("{:02}:{:02}", z.hour(), z.minute());
    let start = z
        .date()
        .to_datetime(jiff::civil::Time::new(z.hour(), z.minute(), 0, 0).unwrap())
        .to_zoned(jiff::tz::TimeZone::UTC)
        .unwrap()
        .timestamp()
        .as_millisecond();
    (hhmm, start)
}

async fn scheduled_and_after_hours_calls_wait_and_can_be_canceled(db: TestDb) {
    let mut run = SippRun::uas(Scenario::uas_answer(None, 8_000));
    run.timeout = PATIENCE;
    let mut uas = tokio::task::block_in_place(|| run.spawn().unwrap());
    tokio::task::block_in_place(|| uas.wait_ready(Duration::from_secs(10)).unwrap());
    let front = Front::start(db).await;
    let to = format!("sip:desk@{}", uas.sip_addr());

    // Scheduled an hour ahead.
    let at = hotline::store::now_ms() + 3_600_000;
    let s = front
        .send(
            Method::POST,
            "/v1/calls",
            Some(json!({"to": to, "schedule_at": at, "client_id": "later"})),
        )
        .await;
    assert_eq!(s["status"], "scheduled", "{s:#}");
    assert_eq!(s["next_attempt_at"], at);
    // The same client_id is the same call.
    let again = front
        .send(
            Method::POST,
            "/v1/calls",
            Some(json!({"to": to, "schedule_at": at, "client_id": "later"})),
        )
        .await;
    assert_eq!(again["id"], s["id"]);

    // Business hours that open two hours from now (UTC, every day): the
    // first attempt waits for the opening.
    let (open, open_ms) = utc_in(2);
    let (close, _) = utc_in(3);
    let days = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"];
    let body = json!({"to": to, "retry_policy": {"business_hours_only": true,
        "timezone": "UTC", "business_hours": {"start": open, "end": close, "days": days}}});
    let (status, h) = front.request(Method::POST, "/v1/calls", Some(body)).await;
    if close > open {
        assert_eq!(status, 201, "{h:#}");
        assert_eq!(h["status"], "scheduled", "{h:#}");
        assert_eq!(h["next_attempt_at"], open_ms, "{h:#}");
        let (status, c) = front
            .request(
                Method::DELETE,
                &format!("/v1/calls/{}", h["id"].as_str().unwrap()),
                None,
            )
            .await;
        assert_eq!(status, 200, "{c:#}");
        assert_eq!(c["status"], "canceled");
    } else {
        // Around midnight the window would span it: refused by name.
        assert_eq!(status, 422, "{h:#}");
        assert_eq!(fields(&h), ["retry_policy.business_hours.end"], "{h:#}");
    }

    // Canceled while scheduled; a second cancel is a conflict.
    let path = format!("/v1/calls/{}", s["id"].as_str().unwrap());
    let (status, c) = front.request(Method::DELETE, &path, None).await;
    assert_eq!(status, 200, "{c:#}");
    assert_eq!(c["status"], "canceled");
    assert_eq!(c["hangup_by"], "api");
    let (status, _) = front.request(Method::DELETE, &path, None).await;
    assert_eq!(status, 409);

    // A live call cannot be canceled, only hung up.
    let live = front
        .send(Method::POST, "/v1/calls", Some(json!({"to": to})))
        .await;
    let id = live["id"].as_str().unwrap().to_owned();
    until_call(&front, &id, |c| c["status"] == "in_progress").await;
    let (status, c) = front
        .request(Method::DELETE, &format!("/v1/calls/{id}"), None)
        .await;
    assert_eq!(status, 409, "{c:#}");
    front
        .send(
            Method::POST,
            &format!("/v1/calls/{id}/hangup"),
            Some(json!({})),
        )
        .await;
    let call = until_call(&front, &id, |c| c["status"] == "completed").await;
    assert_eq!(call["attempts"], 1);
    // Bad fields are named.
    let (status, e) = front
        .request(
            Method::POST,
            "/v1/calls",
            Some(json!({"to": to, "schedule_at": "next tuesday",
                "retry_policy": {"max_attempts": 11}})),
        )
        .await;
    assert_eq!(status, 422);
    let named = fields(&e);
    assert!(
        named.contains(&"retry_policy.max_attempts".to_owned()),
        "{e:#}"
    );
    assert!(named.contains(&"schedule_at".to_owned()), "{e:#}");
    let result = tokio::task::block_in_place(|| uas.wait().unwrap());
    assert!(result.all_ok(), "{}", result.diagnostics());
    front.finish().await;
}

const CALLEE: &str = "+14155550199";

async fn a_callee_who_asks_not_to_be_called_goes_on_the_list(db: TestDb) {
    // Said twice: the first may overlap a greeting that starts late on
    // a loaded machine (the engines load on the first call).
    let line = "Please do not call me again.";
    let wav = peers::media::script_wav(&[(3.5, line), (7.0, line)]).unwrap();
    let script = peers::media::read_pcm(&wav).unwrap().1;
    let talker = Talker::start(TalkerConfig { script, echo: None }).unwrap();
    let mut run = SippRun::uas(Scenario::uas_answer(Some(talker.port()), 30_000));
    run.timeout = PATIENCE;
    let mut uas = tokio::task::block_in_place(|| run.spawn().unwrap());
    tokio::task::block_in_place(|| uas.wait_ready(Duration::from_secs(10)).unwrap());
    let trunk = uas.sip_addr().to_string();
    let front = Front::start_with(db, |c| {
        c.trunks.push(TrunkConfig::new("carrier", &trunk));
    })
    .await;
    *front.llm.tool.lock().unwrap() = Some((
        "mark_do_not_call".into(),
        json!({"reason": "asked not to be called again"}),
    ));
    let placed = front
        .send(
            Method::POST,
            "/v1/calls",
            Some(json!({"to": CALLEE, "from": "+14155550100",
                "objective": "Ask whether the shop repairs bicycles",
                "first_message": "Hi, I am an assistant calling about bicycle repairs.",
                "retry_policy": {"max_attempts": 3, "backoff_minutes": [0.01]}})),
        )
        .await;
    assert!(placed["playbook_id"].as_str().is_some(), "{placed:#}");
    let id = placed["id"].as_str().unwrap().to_owned();
    let call = until_call(&front, &id, |c| {
        c["status"] == "completed" && !c["ended_at"].is_null()
    })
    .await;
    // Completed, not retried: the callee answered and said no.
    assert_eq!(call["attempts"], 1, "{call:#}");
    let (status, entry) = front.get(&format!("/v1/dnc/{CALLEE}")).await;
    assert_eq!(status, 200, "{entry:#}");
    assert_eq!(entry["source"], "callee_request");
    assert_eq!(entry["call_id"], id.as_str());
    // The agent's prompt was composed for the objective, with the tools.
    let chats = front.llm.chats();
    let first = &chats[0];
    let tools = first["tools"].to_string();
    assert!(tools.contains("mark_do_not_call") && tools.contains("schedule_callback"));
    assert!(
        first["messages"][0]["content"]
            .as_str()
            .unwrap()
            .contains("bicycles")
    );

    // A later call to them is refused, naming the field.
    let (status, e) = front
        .request(
            Method::POST,
            "/v1/calls",
            Some(json!({"to": CALLEE, "from": "+14155550100", "objective": "Try again"})),
        )
        .await;
    assert_eq!(status, 422, "{e:#}");
    assert!(e.to_string().contains("do-not-call"), "{e:#}");
    // Taken off the list, they may be called again.
    let (status, _) = front
        .request(Method::DELETE, &format!("/v1/dnc/{CALLEE}"), None)
        .await;
    assert_eq!(status, 204);
    let (status, _) = front.get(&format!("/v1/dnc/{CALLEE}")).await;
    assert_eq!(status, 404);
    let result = tokio::task::block_in_place(|| uas.wait().unwrap());
    assert!(result.all_ok(), "{}", result.diagnostics());
    drop(talker.finish());
    front.finish().await;
}

async fn unanswered_calls_are_retried_until_exhausted(db: TestDb) {
    let mut run = SippRun::uas(Scenario::from_fixture("uas_ring_cancel.xml"));
    run.calls = 2;
    run.timeout = PATIENCE;
    let mut ringing = tokio::task::block_in_place(|| run.spawn().unwrap());
    tokio::task::block_in_place(|| ringing.wait_ready(Duration::from_secs(10)).unwrap());
    let front = Front::start(db).await;
    let placed = front
        .send(
            Method::POST,
            "/v1/calls",
            Some(json!({"to": format!("sip:nobody@{}", ringing.sip_addr()),
                "ring_timeout_secs": 5,
                "retry_policy": {"max_attempts": 2, "backoff_minutes": [0.01]}})),
        )
        .await;
    let id = placed["id"].as_str().unwrap().to_owned();
    let call = until_call(&front, &id, |c| c["status"] == "exhausted").await;
    let history = call["attempt_history"].as_array().unwrap();
    assert_eq!(history.len(), 2, "{call:#}");
    assert!(
        history.iter().all(|a| a["status"] == "no_answer"),
        "{call:#}"
    );
    // Each attempt rang for its timeout before it was given up.
    for a in history {
        let rang = a["ended_at"].as_i64().unwrap() - a["started_at"].as_i64().unwrap();
        assert!(rang >= 5000, "rang {rang} ms");
    }
    let result = tokio::task::block_in_place(|| ringing.wait().unwrap());
    assert!(result.all_ok(), "{}", result.diagnostics());
    front.finish().await;
}

/// Starts a sipp UAS answering with `script` (8 kHz) as its media.
fn answering(script: Vec<i16>) -> (Talker, peers::sipp::Sipp) {
    let talker = Talker::start(TalkerConfig { script, echo: None }).unwrap();
    let mut run = SippRun::uas(Scenario::uas_answer(Some(talker.port()), 30_000));
    run.timeout = PATIENCE;
    let mut uas = tokio::task::block_in_place(|| run.spawn().unwrap());
    tokio::task::block_in_place(|| uas.wait_ready(Duration::from_secs(10)).unwrap());
    (talker, uas)
}

async fn a_machine_or_a_callback_request_puts_the_call_back_in_the_queue(db: TestDb) {
    let front = Front::start(db).await;

    // An answering machine, with `on_voicemail: retry`: hung up on, and
    // dialled again after the backoff.
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/amd");
    let wav = std::fs::read(dir.join("machine_01_piper.wav")).unwrap();
    let greeting = hotline_media::wav::read_wav(&wav).unwrap().samples;
    let (machine_talker, machine) = answering(greeting);
    let placed = front
        .send(
            Method::POST,
            "/v1/calls",
            Some(json!({"to": format!("sip:shop@{}", machine.sip_addr()),
                "objective": "Ask whether the shop is open on Sunday",
                "first_message": "Hello, are you open on Sunday?",
                "on_voicemail": "retry",
                "retry_policy": {"backoff_minutes": [60]}})),
        )
        .await;
    let id = placed["id"].as_str().unwrap().to_owned();
    let call = until_call(&front, &id, |c| c["status"] == "retry_scheduled").await;
    let history = call["attempt_history"].as_array().unwrap();
    assert_eq!(history[0]["status"], "voicemail", "{call:#}");
    assert_eq!(history[0]["answered_by"], "machine", "{call:#}");
    let due = call["next_attempt_at"].as_i64().unwrap();
    let ended = history[0]["ended_at"].as_i64().unwrap();
    assert!(due >= ended + 3_600_000, "{call:#}");
    // Nobody wants the retry after all.
    let (status, c) = front
        .request(Method::DELETE, &format!("/v1/calls/{id}"), None)
        .await;
    assert_eq!(
        (status, c["status"].as_str()),
        (200, Some("canceled")),
        "{c:#}"
    );
    let result = tokio::task::block_in_place(|| machine.wait().unwrap());
    assert!(result.all_ok(), "{}", result.diagnostics());
    drop(machine_talker.finish());

    // A person who asks to be called back in an hour: needs_follow_up,
    // due then.
    *front.llm.tool.lock().unwrap() =
        Some(("schedule_callback".into(), json!({"when": "in 1 hour"})));
    let line = "I am busy, call me back in an hour.";
    let wav = peers::media::script_wav(&[(3.5, line), (7.0, line)]).unwrap();
    let (person_talker, person) = answering(peers::media::read_pcm(&wav).unwrap().1);
    let before = hotline::store::now_ms();
    let placed = front
        .send(
            Method::POST,
            "/v1/calls",
            Some(json!({"to": format!("sip:owner@{}", person.sip_addr()),
                "objective": "Ask whether the shop is open on Sunday",
                "first_message": "Hello, are you open on Sunday?"})),
        )
        .await;
    let id = placed["id"].as_str().unwrap().to_owned();
    let call = until_call(&front, &id, |c| c["status"] == "needs_follow_up").await;
    let due = call["next_attempt_at"].as_i64().unwrap();
    assert!(
        (before + 3_600_000..before + 3_700_000).contains(&due),
        "due {due}, asked at {before}: {call:#}"
    );
    assert_eq!(
        call["attempt_history"][0]["status"], "completed",
        "{call:#}"
    );
    let (status, _) = front
        .request(Method::DELETE, &format!("/v1/calls/{id}"), None)
        .await;
    assert_eq!(status, 200);
    let result = tokio::task::block_in_place(|| person.wait().unwrap());
    assert!(result.all_ok(), "{}", result.diagnostics());
    drop(person_talker.finish());
    front.finish().await;
}

use support::both_databases;

both_databases!(
    busy_callee_is_retried_with_backoff_until_exhausted,
    "retries"
);
both_databases!(
    scheduled_and_after_hours_calls_wait_and_can_be_canceled,
    "schedule"
);
both_databases!(a_callee_who_asks_not_to_be_called_goes_on_the_list, "dnc");
both_databases!(unanswered_calls_are_retried_until_exhausted, "noanswer");
both_databases!(
    a_machine_or_a_callback_request_puts_the_call_back_in_the_queue,
    "requeue"
);
