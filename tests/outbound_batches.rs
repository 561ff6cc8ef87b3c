//! Batches end to end: the whole server in process dials a sipp UAS for
//! every target. A batch of 50 with `max_concurrent: 5` never has more
//! than 5 calls up (measured from the attempts' own start and end
//! times), deduplicates its targets by client_id, is idempotent on its
//! own client_id and ends with `batch.completed`. A server restarted in
//! the middle of a batch loses no call and dials none twice. Runs on
//! SQLite and, when `HOTLINE_TEST_POSTGRES` is set, on Postgres.

mod peers;
mod support;

#[path = "support/front.rs"]
mod front;

use std::time::Duration;

use front::{Front, PATIENCE};
use peers::sipp::{Scenario, SippRun};
use reqwest::Method;
use serde_json::{Value, json};
use support::db::TestDb;

/// Polls the batch until `f` holds.
async fn until_batch(front: &Front, id: &str, f: impl Fn(&Value) -> bool) -> Value {
    let deadline = tokio::time::Instant::now() + PATIENCE * 3;
    loop {
        let (_, b) = front.get(&format!("/v1/calls/batch/{id}")).await;
        if f(&b) {
            return b;
        }
        assert!(tokio::time::Instant::now() < deadline, "{b:#}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Every attempt of the batch's calls: (started, ended).
async fn attempts(front: &Front, batch: &Value) -> Vec<(i64, i64)> {
    let mut out = Vec::new();
    for c in batch["calls"].as_array().unwrap() {
        let (_, call) = front
            .get(&format!("/v1/calls/{}", c["id"].as_str().unwrap()))
            .await;
        for a in call["attempt_history"].as_array().unwrap() {
            out.push((
                a["started_at"].as_i64().unwrap(),
                a["ended_at"].as_i64().unwrap(),
            ));
        }
    }
    out
}

/// Most attempts under way at one moment.
fn max_overlap(spans: &[(i64, i64)]) -> usize {
    let mut edges: Vec<(i64, i32)> = spans
        .iter()
        .flat_map(|(s, e)| [(*s, 1), (*e, -1)])
        .collect();
    // An end and a start at the same millisecond do not overlap.
    edges.sort();
    let (mut now, mut most) = (0i32, 0i32);
    for (_, d) in edges {
        now += d;
        most = most.max(now);
    }
    most as usize
}

fn uas(calls: u32, hold_ms: u64) -> peers::sipp::Sipp {
    let mut run = SippRun::uas(Scenario::uas_answer(None, hold_ms));
    run.calls = calls;
    run.limit = calls;
    run.timeout = PATIENCE * 3;
    let mut uas = tokio::task::block_in_place(|| run.spawn().unwrap());
    tokio::task::block_in_place(|| uas.wait_ready(Duration::from_secs(10)).unwrap());
    uas
}

async fn a_batch_of_50_keeps_to_its_concurrency(db: TestDb) {
    let uas = uas(50, 1500);
    let front = Front::start_with(db, |c| {
        c.outbound.calls_per_second = 50.0;
        c.outbound.max_concurrent_calls = 10;
    })
    .await;
    // A webhook that never answers still records what was sent to it.
    front
        .send(
            Method::POST,
            "/v1/webhooks",
            Some(json!({"url": "http://127.0.0.1:9/hook", "events": ["batch.completed"]})),
        )
        .await;
    let mut targets: Vec<Value> = (0..50)
        .map(
            |i| json!({"to": format!("sip:t{i}@{}", uas.sip_addr()), "client_id": format!("t{i}")}),
        )
        .collect();
    // The same target twice is one call.
    targets.push(json!({"to": format!("sip:t0@{}", uas.sip_addr()), "client_id": "t0"}));
    let body = json!({"name": "spring survey", "targets": targets, "max_concurrent": 5,
        "client_id": "survey-1", "defaults": {"max_duration_secs": 30}});
    let (status, batch) = front
        .request(Method::POST, "/v1/calls/batch", Some(body.clone()))
        .await;
    assert_eq!(status, 201, "{batch:#}");
    let id = batch["id"].as_str().unwrap().to_owned();
    assert_eq!(batch["calls"].as_array().unwrap().len(), 50);
    // The same request again is the same batch.
    let (status, again) = front
        .request(Method::POST, "/v1/calls/batch", Some(body))
        .await;
    assert_eq!(status, 200, "{again:#}");
    assert_eq!(again["id"], id.as_str());

    let done = until_batch(&front, &id, |b| b["status"] == "completed").await;
    assert_eq!(done["counts"], json!({"completed": 50}), "{done:#}");
    assert!(done["completed_at"].is_i64());
    let spans = attempts(&front, &done).await;
    assert_eq!(spans.len(), 50, "one attempt per call");
    let most = max_overlap(&spans);
    assert!(most <= 5, "{most} calls up at once");
    assert!(most >= 2, "the batch ran calls side by side ({most})");
    // batch.completed went to the webhook.
    let (_, hooks) = front.get("/v1/webhooks").await;
    let hook = hooks["data"][0]["id"].as_str().unwrap().to_owned();
    let deadline = tokio::time::Instant::now() + PATIENCE;
    loop {
        let (_, d) = front.get(&format!("/v1/webhooks/{hook}/deliveries")).await;
        let kinds: Vec<&str> = d["data"]
            .as_array()
            .unwrap()
            .iter()
            .filter_map(|x| x["event_type"].as_str())
            .collect();
        if kinds == ["batch.completed"] {
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "{d:#}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let result = tokio::task::block_in_place(|| uas.wait().unwrap());
    assert!(result.all_ok(), "{}", result.diagnostics());
    front.finish().await;
}

async fn a_restart_in_the_middle_loses_and_repeats_nothing(db: TestDb) {
    let uas = uas(10, 2000);
    let tweak = |c: &mut hotline::config::Config| {
        c.outbound.calls_per_second = 50.0;
        c.outbound.max_concurrent_calls = 2;
    };
    let front = Front::start_with(db, tweak).await;
    let targets: Vec<Value> = (0..10)
        .map(
            |i| json!({"to": format!("sip:r{i}@{}", uas.sip_addr()), "client_id": format!("r{i}")}),
        )
        .collect();
    let batch = front
        .send(
            Method::POST,
            "/v1/calls/batch",
            Some(json!({"targets": targets, "max_concurrent": 2})),
        )
        .await;
    let id = batch["id"].as_str().unwrap().to_owned();
    // Stopped once a few calls are through and the rest wait.
    until_batch(&front, &id, |b| {
        b["counts"]["completed"].as_i64().unwrap_or(0) >= 3
    })
    .await;
    let db = front.stop().await;
    let front = Front::start_with(db, tweak).await;
    let done = until_batch(&front, &id, |b| b["status"] == "completed").await;
    let calls = done["calls"].as_array().unwrap();
    assert_eq!(calls.len(), 10, "{done:#}");
    // Every target ended, and every INVITE sipp answered is one attempt.
    assert!(calls.iter().all(|c| c["status"] == "completed"), "{done:#}");
    let spans = attempts(&front, &done).await;
    assert_eq!(spans.len(), 10, "{done:#}");
    assert!(max_overlap(&spans) <= 2);
    let result = tokio::task::block_in_place(|| uas.wait().unwrap());
    assert!(result.all_ok(), "{}", result.diagnostics());
    front.finish().await;
}

use support::both_databases;

both_databases!(a_batch_of_50_keeps_to_its_concurrency, "batch50");
both_databases!(
    a_restart_in_the_middle_loses_and_repeats_nothing,
    "batchrestart"
);

/// The README's example, scaled to three shops: each is a sipp UAS whose
/// media says its price; the batch's summary has each call's outcome and
/// the price it was quoted. One call at a time: the speech engines of
/// this 2-core machine are shared with the rest of the suite.
async fn the_readmes_price_survey_returns_structured_results(db: TestDb) {
    // Amounts espeak says and Whisper writes back reliably at 8 kHz
    // ("one hundred and twenty" can split across two lines, and "forty"
    // came back as words that are no number).
    let prices = [60, 90, 75];
    let mut shops = Vec::new();
    for p in prices {
        let line = format!("The price is {p} dollars.");
        // Said twice, as a person repeats what was not heard.
        let wav = peers::media::script_wav(&[(4.0, line.as_str()), (4.0, line.as_str())]).unwrap();
        let script = peers::media::read_pcm(&wav).unwrap().1;
        let talker =
            peers::talker::Talker::start(peers::talker::TalkerConfig { script, echo: None })
                .unwrap();
        let mut run = SippRun::uas(Scenario::uas_answer(Some(talker.port()), 40_000));
        run.timeout = PATIENCE * 2;
        let mut uas = tokio::task::block_in_place(|| run.spawn().unwrap());
        tokio::task::block_in_place(|| uas.wait_ready(Duration::from_secs(10)).unwrap());
        shops.push((talker, uas));
    }
    let front = Front::start(db).await;
    let targets: Vec<Value> = shops
        .iter()
        .enumerate()
        .map(|(i, (_, uas))| {
            json!({"to": format!("sip:shop@{}", uas.sip_addr()), "client_id": format!("shop-{i}")})
        })
        .collect();
    let batch = front
        .send(
            Method::POST,
            "/v1/calls/batch",
            Some(
                json!({"name": "bike service prices", "max_concurrent": 1, "targets": targets,
                "defaults": {
                    "objective": "Find out the price of a full bicycle service",
                    "first_message": "Hi, how much is a full bicycle service?",
                    "extraction_schema": {"price": "number", "currency": "string"},
                    "retry_policy": {"max_attempts": 2, "backoff_minutes": [0.05]}}}),
            ),
        )
        .await;
    let id = batch["id"].as_str().unwrap().to_owned();
    let done = until_batch(&front, &id, |b| {
        b["status"] == "completed"
            && b["calls"]
                .as_array()
                .unwrap()
                .iter()
                .all(|c| c["outcome"].is_string())
    })
    .await;
    assert_eq!(done["counts"], json!({"completed": 3}), "{done:#}");
    // What the model extracted is what the callee was heard to say; and
    // speech recognition, whose segmentation varies on a loaded machine,
    // got the exact price for most shops.
    let mut exact = 0;
    for (i, call) in done["calls"].as_array().unwrap().iter().enumerate() {
        assert_eq!(call["outcome"], "achieved", "{done:#}");
        assert_eq!(call["structured_data"]["currency"], "USD", "{done:#}");
        let quoted = call["structured_data"]["price"].as_f64();
        let (_, full) = front
            .get(&format!("/v1/calls/{}", call["id"].as_str().unwrap()))
            .await;
        let heard: String = full["transcript"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|l| l["speaker"] != "agent")
            .map(|l| format!("{}\n", l["text"].as_str().unwrap()))
            .collect();
        assert!(quoted.is_some(), "{heard}");
        assert_eq!(quoted, front::quoted_amount(&heard), "{heard}");
        exact += usize::from(quoted == Some(f64::from(prices[i])));
    }
    assert!(exact >= 2, "{exact} of 3 prices heard exactly: {done:#}");
    // The agent ran with the price-inquiry playbook's prompt.
    let first = &front.llm.chats()[0];
    assert!(
        first["messages"][0]["content"]
            .as_str()
            .unwrap()
            .contains("full bicycle service")
    );
    for (talker, uas) in shops {
        let result = tokio::task::block_in_place(|| uas.wait().unwrap());
        assert!(result.all_ok(), "{}", result.diagnostics());
        drop(talker.finish());
    }
    front.finish().await;
}

both_databases!(
    the_readmes_price_survey_returns_structured_results,
    "pricesurvey"
);
