//! The alerts API without a phone line: verified phones, validation,
//! policy (emergency stop, voice channel, rate limits, quota), idempotency,
//! acknowledgement during the delay, events, the tool definition and
//! isolation. The scheduler runs; with no call engine, a call it would
//! place is recorded as a failed delivery, which these tests check never
//! happens where it must not. Every test runs on SQLite and, when
//! `HOTLINE_TEST_POSTGRES` is set, on Postgres.

mod support;

use std::time::{Duration, Instant};

use axum::http::{Method, StatusCode};
use serde_json::{Value, json};
use support::api::{Api, Reply};
use tokio::sync::watch;

api_on_both!(
    phones_are_verified_by_the_code_read_out,
    alerts_are_validated,
    acknowledged_during_the_delay_places_no_call,
    the_emergency_stop_and_the_voice_channel,
    rate_limits_and_the_monthly_quota,
    creation_is_idempotent,
    policy_settings_are_validated,
    the_openai_tool_definition,
    another_organization_sees_nothing,
    two_nodes_never_take_the_same_step,
);

/// Every code is this one in these tests.
const CODE: &str = "135790";
const PHONE: &str = "+15550002222";

fn known_codes(api: &Api) {
    *api.state.alerts.codes.lock().unwrap() = || CODE.to_owned();
}

/// Runs the scheduler for the test; stops when dropped.
fn scheduler(api: &Api) -> watch::Sender<bool> {
    let (stop, stopped) = watch::channel(false);
    hotline::api::alerts::scheduler::spawn(api.state.clone(), stopped);
    stop
}

async fn post(api: &Api, path: &str, body: Value) -> Reply {
    api.send(Method::POST, path, Some(body)).await
}

/// Adds `number` and verifies it; its id.
async fn verified_phone(api: &Api, number: &str) -> String {
    known_codes(api);
    let r = post(api, "/v1/phones", json!({"phone_number": number})).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.json);
    let id = r.json["id"].as_str().unwrap().to_owned();
    let r = post(
        api,
        &format!("/v1/phones/{id}/verify"),
        json!({"code": CODE}),
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.json);
    id
}

fn loc(r: &Reply) -> Value {
    r.json["detail"][0]["loc"].clone()
}

async fn phones_are_verified_by_the_code_read_out(api: &Api) {
    known_codes(api);
    let r = post(
        api,
        "/v1/phones",
        json!({"phone_number": PHONE, "label": "on call"}),
    )
    .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.json);
    assert_eq!(r.json["verified"], false);
    assert_eq!(r.json["is_primary"], true);
    assert_eq!(r.json["label"], "on call");
    assert!(r.json["code_expires_at"].as_i64().unwrap() > r.json["created_at"].as_i64().unwrap());
    let first = r.json["id"].as_str().unwrap().to_owned();
    // An unverified phone cannot be alerted.
    let r = post(
        api,
        "/v1/alerts",
        json!({"title": "x", "phone_number": PHONE}),
    )
    .await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(loc(&r), json!(["body", "phone_number"]));
    // Wrong, malformed, then right.
    let verify = format!("/v1/phones/{first}/verify");
    let r = post(api, &verify, json!({"code": "000000"})).await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(r.json["detail"][0]["msg"], "wrong code");
    let r = post(api, &verify, json!({"code": "12ab"})).await;
    assert_eq!(loc(&r), json!(["body", "code"]));
    let r = post(api, &verify, json!({"code": CODE})).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.json);
    assert_eq!(r.json["verified"], true);
    // The code is spent; a verified phone needs no new one.
    let r = post(api, &verify, json!({"code": CODE})).await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
    let r = post(api, &format!("/v1/phones/{first}/verification"), json!({})).await;
    assert_eq!(r.status, StatusCode::CONFLICT);
    // The same number twice is a conflict; a bad one names the field.
    let r = post(api, "/v1/phones", json!({"phone_number": PHONE})).await;
    assert_eq!(r.status, StatusCode::CONFLICT, "{}", r.json);
    let r = post(api, "/v1/phones", json!({"phone_number": "5550100"})).await;
    assert_eq!(loc(&r), json!(["body", "phone_number"]));
    // Too many wrong codes need a new call, whose code then works.
    let r = post(api, "/v1/phones", json!({"phone_number": "+15550003333"})).await;
    let second = r.json["id"].as_str().unwrap().to_owned();
    assert_eq!(r.json["is_primary"], false);
    let verify = format!("/v1/phones/{second}/verify");
    for _ in 0..5 {
        post(api, &verify, json!({"code": "999999"})).await;
    }
    let r = post(api, &verify, json!({"code": CODE})).await;
    assert!(
        r.json["detail"][0]["msg"]
            .as_str()
            .unwrap()
            .contains("wrong codes"),
        "{}",
        r.json
    );
    // Only a verified phone can be primary.
    let r = post(api, &format!("/v1/phones/{second}/primary"), json!({})).await;
    assert_eq!(r.status, StatusCode::CONFLICT);
    let r = post(api, &format!("/v1/phones/{second}/verification"), json!({})).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.json);
    let r = post(api, &verify, json!({"code": CODE})).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.json);
    let r = post(api, &format!("/v1/phones/{second}/primary"), json!({})).await;
    assert_eq!(r.json["is_primary"], true);
    let r = api
        .send(Method::GET, &format!("/v1/phones/{first}"), None)
        .await;
    assert_eq!(r.json["is_primary"], false);
    let r = api.send(Method::GET, "/v1/phones", None).await;
    assert_eq!(r.json["data"].as_array().unwrap().len(), 2);
    let r = api.send(Method::GET, "/v1/phones/phn_nope", None).await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
}

async fn alerts_are_validated(api: &Api) {
    // No verified phone yet: the primary is required.
    let r = post(api, "/v1/alerts", json!({"title": "Deploy"})).await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", r.json);
    assert_eq!(loc(&r), json!(["body", "phone_number"]));
    verified_phone(api, PHONE).await;
    let long = "x".repeat(501);
    for (body, field) in [
        (json!({}), "title"),
        (json!({"title": ""}), "title"),
        (json!({"title": long}), "title"),
        (
            json!({"title": "t", "message": "m".repeat(2001)}),
            "message",
        ),
        (json!({"title": "t", "severity": "high"}), "severity"),
        (json!({"title": "t", "alert_type": "pager"}), "alert_type"),
        (
            json!({"title": "t", "delay_seconds": 3601}),
            "delay_seconds",
        ),
        (json!({"title": "t", "delay_seconds": -1}), "delay_seconds"),
        (
            json!({"title": "t", "expires_in_minutes": 0}),
            "expires_in_minutes",
        ),
        (
            json!({"title": "t", "expires_in_minutes": 1441}),
            "expires_in_minutes",
        ),
        (json!({"title": "t", "metadata": [1]}), "metadata"),
        (json!({"title": "t", "phone_number": "555"}), "phone_number"),
        (
            json!({"title": "t", "phone_number": "+15559990000"}),
            "phone_number",
        ),
        (json!({"title": "t", "colour": "red"}), "colour"),
    ] {
        let r = post(api, "/v1/alerts", body.clone()).await;
        assert_eq!(
            r.status,
            StatusCode::UNPROCESSABLE_ENTITY,
            "{body}: {}",
            r.json
        );
        assert!(r.json.to_string().contains(field), "{body}: {}", r.json);
    }
    // Aliases and defaults.
    let r = post(
        api,
        "/v1/alerts",
        json!({"title": "Approve release 42", "severity": "low", "alert_type": "approval", "metadata": {"pr": 42}}),
    )
    .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.json);
    assert_eq!(r.json["severity"], "normal");
    assert_eq!(r.json["delay_seconds"], 300);
    assert_eq!(r.json["phone_number"], PHONE);
    assert_eq!(r.json["metadata"], json!({"pr": 42}));
    let created = r.json["created_at"].as_i64().unwrap();
    assert_eq!(
        r.json["expires_at"].as_i64().unwrap() - created,
        60 * 60_000
    );
    let r = post(
        api,
        "/v1/alerts",
        json!({"title": "Database down", "severity": "persistent_critical", "alert_type": "threshold", "delay_seconds": 5}),
    )
    .await;
    assert_eq!(r.json["severity"], "critical");
    assert_eq!(r.json["delay_seconds"], 5);
    let created = r.json["created_at"].as_i64().unwrap();
    assert_eq!(
        r.json["expires_at"].as_i64().unwrap() - created,
        30 * 60_000
    );
    // Listing, by status.
    let r = api
        .send(Method::GET, "/v1/alerts?status=created", None)
        .await;
    assert_eq!(r.json["data"].as_array().unwrap().len(), 2, "{}", r.json);
    let r = api.send(Method::GET, "/v1/alerts?status=bogus", None).await;
    assert_eq!(loc(&r), json!(["query", "status"]));
    let r = api
        .send(
            Method::GET,
            "/v1/alerts?severity=critical&alert_type=threshold",
            None,
        )
        .await;
    let titles: Vec<&str> = r.json["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["title"].as_str().unwrap())
        .collect();
    assert_eq!(titles, ["Database down"]);
    let r = api
        .send(Method::GET, "/v1/alerts?alert_type=approval", None)
        .await;
    assert_eq!(r.json["data"][0]["title"], "Approve release 42");
    let r = api
        .send(Method::GET, "/v1/alerts?severity=loud", None)
        .await;
    assert_eq!(loc(&r), json!(["query", "severity"]));
}

async fn until(api: &Api, id: &str, done: impl Fn(&Value) -> bool) -> Value {
    let start = Instant::now();
    loop {
        let r = api
            .send(Method::GET, &format!("/v1/alerts/{id}"), None)
            .await;
        if done(&r.json) {
            return r.json;
        }
        assert!(start.elapsed() < Duration::from_secs(30), "{:#}", r.json);
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn acknowledged_during_the_delay_places_no_call(api: &Api) {
    verified_phone(api, PHONE).await;
    let hook = post(
        api,
        "/v1/webhooks",
        json!({"url": "http://127.0.0.1:9/hook", "events": ["alert.*"]}),
    )
    .await;
    assert_eq!(hook.status, StatusCode::CREATED, "{}", hook.json);
    let hook = hook.json["id"].as_str().unwrap().to_owned();
    let _stop = scheduler(api);
    let r = post(
        api,
        "/v1/alerts",
        json!({"title": "Can I merge?", "alert_type": "approval", "delay_seconds": 2}),
    )
    .await;
    let id = r.json["id"].as_str().unwrap().to_owned();
    until(api, &id, |a| a["status"] == "waiting_for_primary_ack").await;
    let r = post(
        api,
        &format!("/v1/alerts/{id}/acknowledge"),
        json!({"ack_source": "chat"}),
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.json);
    assert_eq!(r.json["status"], "acknowledged");
    // Past the delay: still no call.
    tokio::time::sleep(Duration::from_millis(2500)).await;
    let a = until(api, &id, |_| true).await;
    assert_eq!(a["status"], "acknowledged");
    assert_eq!(a["acknowledged_via"], "chat");
    assert_eq!(a["deliveries"], json!([]));
    assert_eq!(a["escalation_step"], 0);
    let history: Vec<(&str, &str)> = a["history"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| (h["from"].as_str().unwrap(), h["to"].as_str().unwrap()))
        .collect();
    assert_eq!(
        history,
        [
            ("created", "waiting_for_primary_ack"),
            ("waiting_for_primary_ack", "acknowledged")
        ]
    );
    // Each change was queued for the webhook, in order.
    let r = api
        .send(
            Method::GET,
            &format!("/v1/webhooks/{hook}/deliveries"),
            None,
        )
        .await;
    let mut kinds: Vec<&str> = r.json["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["event_type"].as_str().unwrap())
        .collect();
    kinds.reverse();
    assert_eq!(
        kinds,
        [
            "alert.created",
            "alert.waiting_for_primary_ack",
            "alert.acknowledged"
        ]
    );
    // An unknown source is refused.
    let r = post(
        api,
        &format!("/v1/alerts/{id}/acknowledge"),
        json!({"ack_source": "pigeon"}),
    )
    .await;
    assert_eq!(loc(&r), json!(["body", "ack_source"]));
}

async fn the_emergency_stop_and_the_voice_channel(api: &Api) {
    verified_phone(api, PHONE).await;
    let r = post(
        api,
        "/v1/alerts",
        json!({"title": "Later", "delay_seconds": 600}),
    )
    .await;
    let waiting = r.json["id"].as_str().unwrap().to_owned();
    let _stop = scheduler(api);
    until(api, &waiting, |a| a["status"] == "waiting_for_primary_ack").await;
    let r = api
        .send(
            Method::PATCH,
            "/v1/settings",
            Some(json!({"alerts": {"emergency_stop": true}})),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.json);
    assert_eq!(r.json["alerts"]["emergency_stop"], true);
    // The waiting alert stopped at once.
    let a = until(api, &waiting, |_| true).await;
    assert_eq!(a["status"], "failed");
    assert!(
        a["failure_reason"]
            .as_str()
            .unwrap()
            .contains("emergency stop"),
        "{a}"
    );
    let r = post(api, "/v1/alerts", json!({"title": "Now"})).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN, "{}", r.json);
    // Back on; then with the voice channel off there is no delivery path.
    let r = api
        .send(
            Method::PATCH,
            "/v1/settings",
            Some(json!({"alerts": {"emergency_stop": null, "voice_enabled": false}})),
        )
        .await;
    assert_eq!(r.json["alerts"]["emergency_stop"], false);
    let r = post(api, "/v1/alerts", json!({"title": "Now"})).await;
    assert_eq!(r.status, StatusCode::CONFLICT, "{}", r.json);
    api.send(
        Method::PATCH,
        "/v1/settings",
        Some(json!({"alerts": {"voice_enabled": true}})),
    )
    .await;
    let r = post(
        api,
        "/v1/alerts",
        json!({"title": "Now", "delay_seconds": 600}),
    )
    .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.json);
}

async fn rate_limits_and_the_monthly_quota(api: &Api) {
    verified_phone(api, PHONE).await;
    let r = api
        .send(
            Method::PATCH,
            "/v1/settings",
            Some(json!({"alerts": {"rate_limit_per_hour": 3, "key_rate_limit_per_hour": 2}})),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.json);
    let alert = json!({"title": "t", "delay_seconds": 600});
    for _ in 0..2 {
        assert_eq!(
            post(api, "/v1/alerts", alert.clone()).await.status,
            StatusCode::CREATED
        );
    }
    // The key's limit.
    let r = post(api, "/v1/alerts", alert.clone()).await;
    assert_eq!(r.status, StatusCode::TOO_MANY_REQUESTS, "{}", r.json);
    let wait: u64 = r.headers["retry-after"].to_str().unwrap().parse().unwrap();
    assert!((3500..=3600).contains(&wait), "{wait}");
    // Another key of the organization has its own, until the org's.
    let other = api
        .db
        .store
        .create_api_key(&api.org_id, "second")
        .await
        .unwrap()
        .plaintext;
    let send = |body: Value| api.send_as(Some(&other), Method::POST, "/v1/alerts", Some(body));
    assert_eq!(send(alert.clone()).await.status, StatusCode::CREATED);
    assert_eq!(
        send(alert.clone()).await.status,
        StatusCode::TOO_MANY_REQUESTS
    );

    // The quota: an alert acknowledged before its call does not count.
    let r = api
        .send(
            Method::PATCH,
            "/v1/settings",
            Some(json!({"alerts": {"rate_limit_per_hour": 100, "key_rate_limit_per_hour": 100, "monthly_quota": 4}})),
        )
        .await;
    assert_eq!(r.json["alerts"]["monthly_quota"], 4);
    let r = post(api, "/v1/alerts", alert.clone()).await;
    assert_eq!(r.status, StatusCode::CREATED);
    let r = post(api, "/v1/alerts", alert.clone()).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN, "{}", r.json);
    assert!(r.json["detail"].as_str().unwrap().contains("quota"));
    let id = api.send(Method::GET, "/v1/alerts?limit=1", None).await.json["data"][0]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    post(
        api,
        &format!("/v1/alerts/{id}/acknowledge"),
        json!({"ack_source": "chat"}),
    )
    .await;
    assert_eq!(
        post(api, "/v1/alerts", alert).await.status,
        StatusCode::CREATED
    );
}

async fn creation_is_idempotent(api: &Api) {
    verified_phone(api, PHONE).await;
    let body = json!({"title": "Job 7 failed", "client_id": "job-7", "delay_seconds": 600});
    let first = post(api, "/v1/alerts", body.clone()).await;
    assert_eq!(first.status, StatusCode::CREATED);
    let again = post(api, "/v1/alerts", body).await;
    assert_eq!(again.status, StatusCode::OK);
    assert_eq!(again.json["id"], first.json["id"]);
    let r = post(
        api,
        "/v1/alerts",
        json!({"title": "Job 7 failed", "idempotency_key": "job-7", "delay_seconds": 600}),
    )
    .await;
    assert_eq!(r.json["id"], first.json["id"]);
    let r = post(
        api,
        "/v1/alerts",
        json!({"title": "t", "client_id": "a", "idempotency_key": "b"}),
    )
    .await;
    assert_eq!(loc(&r), json!(["body", "idempotency_key"]));
    // Concurrent repeats make one alert.
    let body = json!({"title": "Job 8 failed", "client_id": "job-8", "delay_seconds": 600});
    let replies =
        futures_util::future::join_all((0..4).map(|_| post(api, "/v1/alerts", body.clone()))).await;
    let ids: std::collections::HashSet<String> = replies
        .iter()
        .map(|r| r.json["id"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(ids.len(), 1);
    let created = replies
        .iter()
        .filter(|r| r.status == StatusCode::CREATED)
        .count();
    assert_eq!(created, 1);
}

async fn policy_settings_are_validated(api: &Api) {
    let r = api.send(Method::GET, "/v1/settings", None).await;
    let p = &r.json["alerts"];
    assert_eq!(p["retry_interval_secs"], 120);
    assert_eq!(p["max_retries"], 3);
    assert_eq!(p["rate_limit_per_hour"], 20);
    assert_eq!(p["key_rate_limit_per_hour"], 10);
    assert_eq!(p["voice_enabled"], true);
    assert_eq!(p["quiet_hours"], Value::Null);
    for (alerts, field) in [
        (
            json!({"retry_interval_secs": 0}),
            json!(["body", "alerts", "retry_interval_secs"]),
        ),
        (
            json!({"max_retries": 11}),
            json!(["body", "alerts", "max_retries"]),
        ),
        (
            json!({"quiet_hours": {"start": "22:00", "end": "07:00", "timezone": "Mars/Olympus"}}),
            json!(["body", "alerts", "quiet_hours", "timezone"]),
        ),
        (json!({"colour": 1}), json!(["body", "alerts"])),
        (json!({"max_retries": "many"}), json!(["body", "alerts"])),
    ] {
        let r = api
            .send(
                Method::PATCH,
                "/v1/settings",
                Some(json!({ "alerts": alerts })),
            )
            .await;
        assert_eq!(
            r.status,
            StatusCode::UNPROCESSABLE_ENTITY,
            "{alerts}: {}",
            r.json
        );
        assert_eq!(loc(&r), field, "{}", r.json);
    }
    let quiet = json!({"start": "22:00", "end": "07:00", "timezone": "Europe/Berlin"});
    let r = api
        .send(
            Method::PATCH,
            "/v1/settings",
            Some(json!({"alerts": {"quiet_hours": quiet, "max_retries": 5}})),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.json);
    assert_eq!(r.json["alerts"]["quiet_hours"], quiet);
    // Only what is sent changes; null is the default again.
    let r = api
        .send(
            Method::PATCH,
            "/v1/settings",
            Some(json!({"alerts": {"max_retries": null}})),
        )
        .await;
    assert_eq!(r.json["alerts"]["max_retries"], 3);
    assert_eq!(r.json["alerts"]["quiet_hours"], quiet);
    let stored = api.db.store.org_settings(&api.org_id).await.unwrap();
    assert_eq!(stored["alerts"], json!({"quiet_hours": quiet}));
}

async fn the_openai_tool_definition(api: &Api) {
    let r = api.send(Method::GET, "/v1/tools/openai", None).await;
    assert_eq!(r.status, StatusCode::OK);
    let tools = r.json["tools"].as_array().unwrap();
    let raise = &tools[0];
    assert_eq!(raise["type"], "function");
    assert_eq!(raise["function"]["name"], "raise_alert");
    let params = &raise["function"]["parameters"];
    assert_eq!(params["required"], json!(["title"]));
    assert_eq!(
        params["properties"]["alert_type"]["enum"],
        json!(["approval", "task_failure", "threshold", "reminder", "other"])
    );
    assert_eq!(params["properties"]["title"]["maxLength"], 500);
    assert_eq!(tools[1]["function"]["name"], "acknowledge_alert");
    // Every property the tool offers is a field POST /v1/alerts takes.
    verified_phone(api, PHONE).await;
    let mut body = serde_json::Map::new();
    for name in params["properties"].as_object().unwrap().keys() {
        let v = match name.as_str() {
            "title" | "message" => json!("Disk full"),
            "severity" => json!("critical"),
            "alert_type" => json!("threshold"),
            "delay_seconds" => json!(600),
            "phone_number" => json!(PHONE),
            "expires_in_minutes" => json!(30),
            "metadata" => json!({"host": "db1"}),
            "client_id" => json!("tool-1"),
            other => panic!("unexpected tool property {other}"),
        };
        body.insert(name.clone(), v);
    }
    let r = post(api, "/v1/alerts", Value::Object(body)).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.json);
}

async fn another_organization_sees_nothing(api: &Api) {
    let phone = verified_phone(api, PHONE).await;
    let r = post(
        api,
        "/v1/alerts",
        json!({"title": "Ours", "delay_seconds": 600}),
    )
    .await;
    let id = r.json["id"].as_str().unwrap().to_owned();
    let other = api.other_org_key("other").await;
    for (method, path) in [
        (Method::GET, format!("/v1/alerts/{id}")),
        (Method::POST, format!("/v1/alerts/{id}/acknowledge")),
        (Method::GET, format!("/v1/phones/{phone}")),
        (Method::POST, format!("/v1/phones/{phone}/verify")),
        (Method::POST, format!("/v1/phones/{phone}/primary")),
    ] {
        let body = if path.ends_with("/verify") {
            Some(json!({"code": CODE}))
        } else {
            (method == Method::POST).then(|| json!({}))
        };
        let r = api.send_as(Some(&other), method.clone(), &path, body).await;
        assert_eq!(
            r.status,
            StatusCode::NOT_FOUND,
            "{method} {path}: {}",
            r.json
        );
    }
    let r = api
        .send_as(Some(&other), Method::GET, "/v1/alerts", None)
        .await;
    assert_eq!(r.json["data"], json!([]));
    // Our phone is not theirs to alert.
    let r = api
        .send_as(
            Some(&other),
            Method::POST,
            "/v1/alerts",
            Some(json!({"title": "x", "phone_number": PHONE})),
        )
        .await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
    let a = api
        .send(Method::GET, &format!("/v1/alerts/{id}"), None)
        .await;
    assert_eq!(a.json["status"], "created");
}

async fn two_nodes_never_take_the_same_step(api: &Api) {
    verified_phone(api, PHONE).await;
    let r = api
        .send(
            Method::PATCH,
            "/v1/settings",
            Some(json!({"alerts": {"retry_interval_secs": 1, "max_retries": 4}})),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.json);
    // Three nodes on one database: each its own state and scheduler (no
    // call engine, so every call fails at once and is retried).
    let nodes: Vec<_> = (0..3)
        .map(|_| {
            let mut config = (*api.state.config).clone();
            config.alerts.poll_ms = 20;
            let state = hotline::api::AppState::new(
                std::sync::Arc::new(config),
                api.db.store.clone(),
                None,
            );
            let (stop, stopped) = watch::channel(false);
            hotline::api::alerts::scheduler::spawn(state, stopped);
            stop
        })
        .collect();
    let mut ids = Vec::new();
    for i in 0..3 {
        let r = post(api, "/v1/alerts", json!({"title": format!("Alert {i}")})).await;
        ids.push(r.json["id"].as_str().unwrap().to_owned());
    }
    for id in &ids {
        let a = until(api, id, |a| a["status"] == "failed").await;
        let attempts: Vec<i64> = a["deliveries"]
            .as_array()
            .unwrap()
            .iter()
            .map(|d| d["attempt"].as_i64().unwrap())
            .collect();
        assert_eq!(attempts, [1, 2, 3, 4, 5], "{a:#}");
        assert!(
            a["deliveries"][0]["error"]
                .as_str()
                .unwrap()
                .contains("no call engine"),
            "{a:#}"
        );
        let to: Vec<&str> = a["history"]
            .as_array()
            .unwrap()
            .iter()
            .map(|h| h["to"].as_str().unwrap())
            .collect();
        assert_eq!(to, ["escalating_call", "failed"], "{a:#}");
    }
    drop(nodes);
}
