//! Phone alerts end to end: raised through `POST /v1/alerts`, scheduled by
//! the alert scheduler, called through the engine and a trunk to a real
//! phone on 127.0.0.1 (sipp answering as the user's phone, keys as RFC 4733
//! events from a pcap or in-band tones from our RTP peer), and followed
//! through the API, the live events and the stored history. Every test
//! runs on SQLite and, when `HOTLINE_TEST_POSTGRES` is set, on Postgres.

mod peers;
mod support;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::http::{Method, StatusCode};
use hotline::api::AppState;
use hotline::api::live::Filter;
use hotline::call::CallRegistry;
use hotline::config::{Config, SipListen, SipTransport, TrunkConfig};
use hotline::engine::Engine;
use hotline_media::dtmf::{ToneParams, render_sequence};
use peers::sipp::{Scenario, Sipp, SippRun};
use peers::talker::{Talker, TalkerConfig};
use serde_json::{Value, json};
use support::api::{Api, Reply};
use support::db::TestDb;
use tokio::sync::watch;

const PHONE: &str = "+15550001111";
/// One snooze "minute" in these tests.
const SNOOZE_MINUTE_MS: u64 = 400;

/// Engine, API and alert scheduler in-process; alert calls leave through
/// trunk `phones` to `phone` (a sipp UAS).
struct Env {
    api: Api,
    stop: watch::Sender<bool>,
}

impl Env {
    async fn start(db: TestDb, phone: SocketAddr) -> Env {
        let _ = rustls::crypto::ring::default_provider().install_default();
        let addr: SocketAddr = (peers::LOOPBACK, peers::ports::free_port()).into();
        let mut config = Config {
            data_dir: tempfile::tempdir().unwrap().keep(),
            ..Config::default()
        };
        config.sip.listen = vec![SipListen::new(SipTransport::Udp, addr)];
        config.rtp.port_min = 45000;
        config.rtp.port_max = 49999;
        config.rtp.bind_ip = peers::LOOPBACK.into();
        config.sip.drain_secs = 1;
        config.trunks = vec![TrunkConfig {
            codecs: vec!["PCMU".into()],
            caller_id: Some("+14155550100".into()),
            ..TrunkConfig::new("phones", &phone.to_string())
        }];
        // espeak-ng speaks at once; the embedded voice would load a model.
        config.providers.tts.kind = "espeak".into();
        config.alerts.poll_ms = 50;
        config.alerts.ring_secs = 5;
        config.alerts.call_timeout_secs = 185;
        config.alerts.snooze_minute_ms = SNOOZE_MINUTE_MS;
        config.validate().unwrap();
        let config = Arc::new(config);
        let registry = CallRegistry::new(config.sip.max_calls);
        let engine = Engine::start(config.clone(), registry).await.unwrap();
        engine.set_agents(hotline::agent::service::AgentService::new(
            &config,
            Some(db.store.clone()),
        ));
        let state = AppState::new(config, db.store.clone(), Some(engine));
        let (stop, stopped) = watch::channel(false);
        hotline::api::alerts::scheduler::spawn(state.clone(), stopped);
        let org = db.store.ensure_org("acme").await.unwrap();
        let key = db.store.create_api_key(&org.id, "test").await.unwrap();
        // A verified phone, as POST /v1/phones and the code would leave it.
        let phone = db.store.create_phone(&org.id, PHONE, None).await.unwrap();
        db.store
            .set_phone_code(&org.id, &phone.id, "246810", i64::MAX)
            .await
            .unwrap();
        db.store
            .verify_phone(&org.id, &phone.id, "246810", 0)
            .await
            .unwrap()
            .unwrap();
        Env {
            api: Api {
                db,
                state,
                org_id: org.id,
                key: key.plaintext,
            },
            stop,
        }
    }

    async fn send(&self, method: Method, path: &str, body: Option<Value>) -> Reply {
        self.api.send(method, path, body).await
    }

    async fn policy(&self, alerts: Value) {
        let r = self
            .send(
                Method::PATCH,
                "/v1/settings",
                Some(json!({ "alerts": alerts })),
            )
            .await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.json);
    }

    async fn raise(&self, body: Value) -> String {
        let r = self.send(Method::POST, "/v1/alerts", Some(body)).await;
        assert_eq!(r.status, StatusCode::CREATED, "{}", r.json);
        r.json["id"].as_str().unwrap().to_owned()
    }

    async fn alert(&self, id: &str) -> Value {
        let r = self
            .send(Method::GET, &format!("/v1/alerts/{id}"), None)
            .await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.json);
        r.json
    }

    /// Polls the alert until `done` holds (bounded).
    async fn until(&self, id: &str, what: &str, done: impl Fn(&Value) -> bool) -> Value {
        let start = Instant::now();
        loop {
            let a = self.alert(id).await;
            if done(&a) {
                return a;
            }
            assert!(
                start.elapsed() < Duration::from_secs(60),
                "alert never {what}: {a:#}"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    async fn finish(self) {
        let _ = self.stop.send(true);
        if let Some(e) = &self.api.state.engine {
            e.drain(Duration::from_millis(500)).await;
        }
        self.api.db.cleanup().await;
    }
}

/// Runs `$name(db)` on SQLite and on Postgres (when configured).
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
    zero_acknowledges_and_the_phone_hears_the_alert,
    one_snoozes_and_the_phone_is_called_again,
    a_custom_snooze_keyed_in_band,
    unanswered_calls_retry_until_they_fail,
    quiet_hours_hold_normal_alerts_and_critical_ones_call,
    acknowledging_through_the_api_hangs_up_the_ringing_phone,
    adding_a_phone_calls_it_with_a_spoken_code,
);

/// A phone that answers `calls` calls, each playing a greeting and
/// then `digits` as RFC 4733 events.
fn keying_phone(digits: &str, calls: u32) -> Sipp {
    let pcap = peers::pcap::speech_dtmf_pcap("Hello?", digits).unwrap();
    let mut run = SippRun::uas(Scenario::uas_answer(None, 30_000).play_pcap(&pcap));
    run.calls = calls;
    run.timeout = Duration::from_secs(60);
    let mut uas = run.spawn().unwrap();
    tokio::task::block_in_place(|| uas.wait_ready(Duration::from_secs(5)).unwrap());
    uas
}

fn kinds(events: &mut hotline::api::live::Subscription) -> Vec<String> {
    let mut out = Vec::new();
    while let Ok(e) = events.events.try_recv() {
        out.push(e.event_type.clone());
    }
    out
}

async fn zero_acknowledges_and_the_phone_hears_the_alert(db: TestDb) {
    let phone = keying_phone("0", 1);
    let env = Env::start(db, phone.sip_addr()).await;
    let mut live = env
        .api
        .state
        .hub
        .subscribe(&env.api.org_id, Filter::default());
    let id = env
        .raise(json!({"title": "Deploy needs approval", "message": "Release 42 is waiting.", "severity": "urgent"}))
        .await;
    let a = env
        .until(&id, "acknowledged", |a| a["status"] == "acknowledged")
        .await;
    assert_eq!(a["acknowledged_via"], "dtmf");
    assert_eq!(a["severity"], "normal");
    assert_eq!(a["escalation_step"], 1);
    let d = &a["deliveries"][0];
    assert_eq!(d["status"], "acknowledged", "{a:#}");
    assert_eq!(d["to_number"], PHONE);
    assert!(d["sip_call_id"].as_str().is_some_and(|s| !s.is_empty()));
    let history: Vec<&str> = a["history"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| h["to"].as_str().unwrap())
        .collect();
    assert_eq!(history, ["escalating_call", "acknowledged"]);
    let phone = tokio::task::block_in_place(|| phone.wait().unwrap());
    assert!(phone.all_ok(), "{}", phone.diagnostics());
    assert_eq!(
        kinds(&mut live),
        [
            "alert.created",
            "alert.escalating_call",
            "alert.acknowledged"
        ]
    );
    env.finish().await;
}

async fn one_snoozes_and_the_phone_is_called_again(db: TestDb) {
    let phone = keying_phone("1", 2);
    let env = Env::start(db, phone.sip_addr()).await;
    let id = env.raise(json!({"title": "Disk almost full"})).await;
    let snoozed = env
        .until(&id, "snoozed", |a| a["status"] == "snoozed")
        .await;
    // 1 snoozes for 5 minutes.
    let next = snoozed["next_attempt_at"].as_i64().unwrap();
    let ended = snoozed["deliveries"][0]["ended_at"]
        .as_i64()
        .unwrap_or(next);
    assert!(next - ended >= 4 * SNOOZE_MINUTE_MS as i64, "{snoozed:#}");
    // After the snooze, the second call (snoozed again by the phone).
    let again = env
        .until(&id, "called twice", |a| {
            a["deliveries"].as_array().unwrap().len() == 2
                && a["deliveries"][1]["status"] == "snoozed"
        })
        .await;
    assert_eq!(again["escalation_step"], 2);
    assert!(again["deliveries"][1]["started_at"].as_i64().unwrap() >= next);
    let r = env
        .send(
            Method::POST,
            &format!("/v1/alerts/{id}/acknowledge"),
            Some(json!({"ack_source": "chat"})),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.json);
    assert_eq!(r.json["status"], "acknowledged");
    assert_eq!(r.json["acknowledged_via"], "chat");
    // A second acknowledgement changes nothing.
    let r2 = env
        .send(Method::POST, &format!("/v1/alerts/{id}/acknowledge"), None)
        .await;
    assert_eq!(r2.json["acknowledged_via"], "chat");
    assert_eq!(r2.json["acknowledged_at"], r.json["acknowledged_at"]);
    assert_eq!(r2.json["updated_at"], r.json["updated_at"]);
    let phone = tokio::task::block_in_place(|| phone.wait().unwrap());
    assert!(phone.all_ok(), "{}", phone.diagnostics());
    env.finish().await;
}

async fn a_custom_snooze_keyed_in_band(db: TestDb) {
    // In-band tones 3 s into the call, over the alert's speech.
    let mut script = vec![0i16; 8000 * 3];
    render_sequence(
        8000,
        "15#",
        ToneParams::default(),
        Duration::from_millis(100),
        Duration::from_millis(100),
        &mut script,
    )
    .unwrap();
    let talker = Talker::start(TalkerConfig { script, echo: None }).unwrap();
    let mut uas = SippRun::uas(Scenario::uas_answer(Some(talker.port()), 30_000))
        .spawn()
        .unwrap();
    tokio::task::block_in_place(|| uas.wait_ready(Duration::from_secs(5)).unwrap());
    let env = Env::start(db, uas.sip_addr()).await;
    let id = env
        .raise(json!({"title": "Nightly backup failed", "alert_type": "task_failure", "delay_seconds": 0}))
        .await;
    let a = env
        .until(&id, "snoozed", |a| a["status"] == "snoozed")
        .await;
    assert_eq!(a["alert_type"], "task_failure");
    let next = a["next_attempt_at"].as_i64().unwrap();
    let ended = a["deliveries"][0]["ended_at"].as_i64().unwrap();
    let minutes = (next - ended) as f64 / SNOOZE_MINUTE_MS as f64;
    assert!((14.0..=15.5).contains(&minutes), "{minutes} minutes: {a:#}");
    let uas = tokio::task::block_in_place(|| uas.wait().unwrap());
    assert!(uas.all_ok(), "{}", uas.diagnostics());
    // The phone heard speech: seconds of it.
    let talk = talker.finish();
    let loud = talk
        .heard
        .iter()
        .filter(|h| h.rms > peers::audio::NON_SILENT_RMS)
        .count();
    assert!(loud > 100, "{loud} loud packets");
    env.finish().await;
}

async fn unanswered_calls_retry_until_they_fail(db: TestDb) {
    let mut run = SippRun::uas(Scenario::from_fixture("uas_status.xml").var("STATUS", 486));
    run.calls = 2;
    let mut busy = run.spawn().unwrap();
    tokio::task::block_in_place(|| busy.wait_ready(Duration::from_secs(5)).unwrap());
    let env = Env::start(db, busy.sip_addr()).await;
    env.policy(json!({"retry_interval_secs": 1, "max_retries": 1}))
        .await;
    let id = env
        .raise(json!({"title": "Threshold crossed", "severity": "critical"}))
        .await;
    let a = env.until(&id, "failed", |a| a["status"] == "failed").await;
    let deliveries = a["deliveries"].as_array().unwrap();
    assert_eq!(deliveries.len(), 2, "{a:#}");
    for (i, d) in deliveries.iter().enumerate() {
        assert_eq!(d["attempt"], i + 1);
        assert_eq!(d["status"], "busy", "{a:#}");
        assert!(d["error"].as_str().unwrap().starts_with("486"), "{a:#}");
    }
    // The retry came after the interval.
    let gap =
        deliveries[1]["started_at"].as_i64().unwrap() - deliveries[0]["ended_at"].as_i64().unwrap();
    assert!(gap >= 1000, "{gap} ms");
    assert_eq!(a["failure_reason"], "no answer after 2 calls");
    let busy = tokio::task::block_in_place(|| busy.wait().unwrap());
    assert_eq!(busy.count_received("INVITE sip:", "INVITE"), 2);
    env.finish().await;
}

async fn quiet_hours_hold_normal_alerts_and_critical_ones_call(db: TestDb) {
    let phone = keying_phone("0", 1);
    let env = Env::start(db, phone.sip_addr()).await;
    // A window around now, in UTC.
    let now = jiff::Timestamp::now().to_zoned(jiff::tz::TimeZone::UTC);
    let hhmm = |z: jiff::Zoned| format!("{:02}:{:02}", z.hour(), z.minute());
    let start = hhmm(now.checked_sub(jiff::Span::new().hours(1)).unwrap());
    let end = hhmm(now.checked_add(jiff::Span::new().hours(1)).unwrap());
    env.policy(json!({"quiet_hours": {"start": start, "end": end, "timezone": "UTC"}}))
        .await;
    let normal = env.raise(json!({"title": "Weekly report ready"})).await;
    let held = env
        .until(&normal, "held", |a| {
            a["history"].as_array().unwrap().iter().any(|h| {
                h["detail"]
                    .as_str()
                    .is_some_and(|d| d.starts_with("held for quiet hours"))
            })
        })
        .await;
    assert_eq!(held["escalation_step"], 0);
    assert!(
        held["next_attempt_at"].as_i64().unwrap()
            > held["created_at"].as_i64().unwrap() + 30 * 60_000,
        "window {start}-{end} UTC: {held:#}"
    );
    let critical = env
        .raise(json!({"title": "Database down", "severity": "persistent_critical"}))
        .await;
    let a = env
        .until(&critical, "acknowledged", |a| a["status"] == "acknowledged")
        .await;
    assert_eq!(a["severity"], "critical");
    // The normal alert still has not called.
    assert!(
        env.alert(&normal).await["deliveries"]
            .as_array()
            .unwrap()
            .is_empty()
    );
    let phone = tokio::task::block_in_place(|| phone.wait().unwrap());
    assert_eq!(phone.count_received("INVITE sip:", "INVITE"), 1);
    env.finish().await;
}

async fn acknowledging_through_the_api_hangs_up_the_ringing_phone(db: TestDb) {
    // A phone that rings (180) and never answers.
    let mut run = SippRun::uas(Scenario::from_fixture("uas_ring_cancel.xml"));
    run.timeout = Duration::from_secs(30);
    let mut ringing = run.spawn().unwrap();
    tokio::task::block_in_place(|| ringing.wait_ready(Duration::from_secs(5)).unwrap());
    let env = Env::start(db, ringing.sip_addr()).await;
    let id = env.raise(json!({"title": "Approve the deploy"})).await;
    env.until(&id, "calling", |a| {
        a["deliveries"].as_array().is_some_and(|d| !d.is_empty())
    })
    .await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let r = env
        .send(
            Method::POST,
            &format!("/v1/alerts/{id}/acknowledge"),
            Some(json!({"ack_source": "manual"})),
        )
        .await;
    assert_eq!(r.json["status"], "acknowledged", "{}", r.json);
    let a = env
        .until(&id, "call ended", |a| {
            a["deliveries"][0]["ended_at"].is_i64()
        })
        .await;
    assert_eq!(a["acknowledged_via"], "manual");
    let ringing = tokio::task::block_in_place(|| ringing.wait().unwrap());
    assert_eq!(
        ringing.count_received("CANCEL sip:", "CANCEL"),
        1,
        "{}",
        ringing.diagnostics()
    );
    assert_eq!(a["escalation_step"], 1);
    env.finish().await;
}

async fn adding_a_phone_calls_it_with_a_spoken_code(db: TestDb) {
    let talker = Talker::start(TalkerConfig {
        script: vec![0i16; 8000],
        echo: None,
    })
    .unwrap();
    let mut uas = SippRun::uas(Scenario::uas_answer(Some(talker.port()), 30_000))
        .spawn()
        .unwrap();
    tokio::task::block_in_place(|| uas.wait_ready(Duration::from_secs(5)).unwrap());
    let env = Env::start(db, uas.sip_addr()).await;
    *env.api.state.alerts.codes.lock().unwrap() = || "407193".to_owned();
    let r = env
        .send(
            Method::POST,
            "/v1/phones",
            Some(json!({"phone_number": "+15550009999", "label": "backup"})),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.json);
    let id = r.json["id"].as_str().unwrap().to_owned();
    // The code is read out twice and the call ends.
    let uas = tokio::task::block_in_place(|| uas.wait().unwrap());
    assert!(uas.all_ok(), "{}", uas.diagnostics());
    assert_eq!(uas.count_received("BYE sip:", "BYE"), 1);
    let talk = talker.finish();
    let loud = talk
        .heard
        .iter()
        .filter(|h| h.rms > peers::audio::NON_SILENT_RMS)
        .count();
    // Two readings of six digits: several seconds of speech.
    assert!(loud > 200, "{loud} loud packets");
    let r = env
        .send(
            Method::POST,
            &format!("/v1/phones/{id}/verify"),
            Some(json!({"code": "407193"})),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.json);
    assert_eq!(r.json["verified"], true);
    env.finish().await;
}
