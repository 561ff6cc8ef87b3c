//! The configuration side of the HTTP API (agents, numbers, webhooks, API
//! keys, usage) and the operator endpoints (/readyz, /metrics,
//! /openapi.json, /docs), in process, on SQLite and on Postgres: every
//! endpoint, and every error path (401, 404 across organizations, 409, 422
//! with the exact field location, 429 with Retry-After).

use std::collections::HashSet;
use std::sync::Arc;

use axum::body::Body;
use axum::http::{HeaderMap, Method, Request, StatusCode};
use hotline::api::AppState;
use hotline::call::CallDirection;
use hotline::config::Config;
use hotline::store::{CallStatus, CallUpdate, NewCall, now_ms};
use serde_json::{Value, json};
use tower::ServiceExt;

mod support;

use support::api::{Api, Reply};

/// Sends a request to a router over `state` (a configuration of the test's
/// own on the API's database), with `headers`.
async fn send_via(
    state: &AppState,
    headers: &[(&str, &str)],
    method: Method,
    path: &str,
    body: Option<Value>,
) -> Reply {
    let mut req = Request::builder().method(method).uri(path);
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    let req = match body {
        Some(b) => req
            .header("content-type", "application/json")
            .body(Body::from(b.to_string())),
        None => req.body(Body::empty()),
    }
    .unwrap();
    let res = hotline::http::router(state.clone())
        .oneshot(req)
        .await
        .unwrap();
    let status = res.status();
    let headers: HeaderMap = res.headers().clone();
    let bytes = axum::body::to_bytes(res.into_body(), 16 << 20)
        .await
        .unwrap();
    let json = if bytes.is_empty() {
        Value::Null
    } else {
        serde_json::from_slice(&bytes)
            .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&bytes).into_owned()))
    };
    Reply {
        status,
        headers,
        json,
    }
}

/// A state on the API's database with `toml` as its configuration.
fn state_with(api: &Api, toml: &str) -> AppState {
    let config: Config = toml::from_str(toml).unwrap();
    config.validate().unwrap();
    AppState::new(Arc::new(config), api.db.store.clone(), None)
}

fn bearer(key: &str) -> String {
    format!("Bearer {key}")
}

/// Asserts a 422 whose (first) problem is at `loc`.
#[track_caller]
fn assert_422(r: &Reply, loc: &[&str]) {
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{:?}", r.json);
    let locs: Vec<Vec<String>> = r.json["detail"]
        .as_array()
        .unwrap_or_else(|| panic!("detail is not a list: {}", r.json))
        .iter()
        .map(|e| {
            assert!(e["msg"].as_str().is_some_and(|m| !m.is_empty()), "{e}");
            serde_json::from_value(e["loc"].clone()).unwrap()
        })
        .collect();
    assert!(
        locs.iter().any(|l| l == loc),
        "no problem at {loc:?}: {}",
        r.json
    );
}

#[track_caller]
fn assert_404(r: &Reply) {
    assert_eq!(r.status, StatusCode::NOT_FOUND, "{:?}", r.json);
    assert!(
        r.json["detail"]
            .as_str()
            .is_some_and(|d| d.ends_with("not found")),
        "{}",
        r.json
    );
}

fn agent_body(name: &str) -> Value {
    json!({"name": name, "system_prompt": "You are a helpful receptionist."})
}

async fn new_agent(api: &Api, name: &str) -> String {
    let r = api
        .send(Method::POST, "/v1/agents", Some(agent_body(name)))
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.json);
    r.json["id"].as_str().unwrap().to_owned()
}

async fn auth_failures(api: &Api) {
    // No key, a malformed key, an unknown key.
    for key in [None, Some("hl_live_nope"), Some("sk_something")] {
        let r = api.send_as(key, Method::GET, "/v1/agents", None).await;
        assert_eq!(r.status, StatusCode::UNAUTHORIZED, "{key:?}");
        assert_eq!(r.json, json!({"detail": "missing or invalid API key"}));
        assert_eq!(r.headers["www-authenticate"], "Bearer");
    }
    // X-API-Key works like Bearer.
    let r = send_via(
        &api.state,
        &[("x-api-key", &api.key)],
        Method::GET,
        "/v1/agents",
        None,
    )
    .await;
    assert_eq!(r.status, StatusCode::OK);
    // A revoked key stops working at once.
    let r = api
        .send(Method::POST, "/v1/api-keys", Some(json!({"name": "temp"})))
        .await;
    assert_eq!(r.status, StatusCode::CREATED);
    let (id, key) = (
        r.json["id"].as_str().unwrap().to_owned(),
        r.json["key"].as_str().unwrap().to_owned(),
    );
    let r = api
        .send_as(Some(&key), Method::GET, "/v1/agents", None)
        .await;
    assert_eq!(r.status, StatusCode::OK);
    let r = api
        .send(Method::DELETE, &format!("/v1/api-keys/{id}"), None)
        .await;
    assert_eq!(r.status, StatusCode::NO_CONTENT);
    let r = api
        .send_as(Some(&key), Method::GET, "/v1/agents", None)
        .await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    // Every /v1 endpoint refuses a request without a key.
    for (method, path) in v1_routes() {
        let path = path
            .replace("{id}", "x")
            .replace("{e164}", "x")
            .replace("{slot}", "name");
        let r = api.send_as(None, method.clone(), &path, None).await;
        assert_eq!(r.status, StatusCode::UNAUTHORIZED, "{method} {path}");
    }
}

async fn agents_crud(api: &Api) {
    let r = api
        .send(
            Method::POST,
            "/v1/agents",
            Some(json!({
                "name": "  Reception  ",
                "system_prompt": "Answer the phone.",
                "first_message": "Hello!",
                "voice": "alloy",
                "language": "en-US",
                "model": {"provider": "openai", "model": "gpt-4o-mini", "temperature": 0.3},
                "tools": [{"type": "http", "name": "order_status",
                    "description": "Looks up an order.", "url": "https://crm.example/orders",
                    "secret": "s3cret"}],
                "voicemail_message": "Call us back.",
                "transfer_number": "+1 (415) 555-0100",
                "max_duration_secs": 600
            })),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.json);
    let agent = r.json.clone();
    let id = agent["id"].as_str().unwrap();
    assert!(id.starts_with("agt_"));
    assert_eq!(agent["name"], "Reception");
    assert_eq!(agent["transfer_number"], "+14155550100");
    assert_eq!(agent["model"]["temperature"], 0.3);
    assert!(agent.get("org_id").is_none());
    // A tool's signing secret is write-only.
    assert_eq!(agent["tools"][0]["name"], "order_status");
    assert_eq!(agent["tools"][0]["secret"], "********");

    let r = api
        .send(Method::GET, &format!("/v1/agents/{id}"), None)
        .await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.json, agent);

    // PATCH changes only what is sent.
    let r = api
        .send(
            Method::PATCH,
            &format!("/v1/agents/{id}"),
            Some(json!({"name": "Front desk"})),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.json);
    assert_eq!(r.json["name"], "Front desk");
    for field in [
        "system_prompt",
        "first_message",
        "voice",
        "language",
        "model",
        "tools",
        "voicemail_message",
        "transfer_number",
        "max_duration_secs",
        "created_at",
    ] {
        assert_eq!(r.json[field], agent[field], "{field}");
    }
    // null clears an optional field; absent leaves it.
    let r = api
        .send(
            Method::PATCH,
            &format!("/v1/agents/{id}"),
            Some(json!({"first_message": null, "max_duration_secs": null, "voice": "verse"})),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.json);
    assert_eq!(r.json["first_message"], Value::Null);
    assert_eq!(r.json["max_duration_secs"], Value::Null);
    assert_eq!(r.json["voice"], "verse");
    assert_eq!(r.json["language"], "en-US");
    assert_eq!(r.json["name"], "Front desk");
    // An empty PATCH changes nothing.
    let before = r.json.clone();
    let r = api
        .send(Method::PATCH, &format!("/v1/agents/{id}"), Some(json!({})))
        .await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.json["name"], before["name"]);
    assert_eq!(r.json["voice"], before["voice"]);

    // PATCH errors: null where a value is needed, unknown fields, bad values.
    let path = format!("/v1/agents/{id}");
    for (body, loc) in [
        (json!({"name": null}), vec!["body", "name"]),
        (
            json!({"system_prompt": null}),
            vec!["body", "system_prompt"],
        ),
        (json!({"model": null}), vec!["body", "model"]),
        (json!({"nmae": "x"}), vec!["body", "nmae"]),
        (json!({"name": ""}), vec!["body", "name"]),
        (json!({"language": "not a tag"}), vec!["body", "language"]),
        (
            json!({"max_duration_secs": 86_401}),
            vec!["body", "max_duration_secs"],
        ),
        (
            json!({"transfer_number": "0800"}),
            vec!["body", "transfer_number"],
        ),
        (json!({"tools": {}}), vec!["body", "tools"]),
        (json!({"name": 7}), vec!["body", "name"]),
    ] {
        let r = api.send(Method::PATCH, &path, Some(body.clone())).await;
        assert_422(&r, &loc);
    }
    let r = api.send(Method::GET, &path, None).await;
    assert_eq!(
        r.json["name"], "Front desk",
        "a refused PATCH changed nothing"
    );

    let r = api.send(Method::DELETE, &path, None).await;
    assert_eq!(r.status, StatusCode::NO_CONTENT);
    assert_404(&api.send(Method::GET, &path, None).await);
    assert_404(&api.send(Method::DELETE, &path, None).await);
    assert_404(
        &api.send(Method::PATCH, &path, Some(json!({"name": "x"})))
            .await,
    );
}

async fn agent_validation(api: &Api) {
    let long = "x".repeat(201);
    for (body, loc) in [
        (
            json!({"name": "", "system_prompt": "p"}),
            vec!["body", "name"],
        ),
        (
            json!({"name": "   ", "system_prompt": "p"}),
            vec!["body", "name"],
        ),
        (
            json!({"name": long, "system_prompt": "p"}),
            vec!["body", "name"],
        ),
        (json!({"name": "a"}), vec!["body", "system_prompt"]),
        (json!({"system_prompt": "p"}), vec!["body", "name"]),
        (
            json!({"name": "a", "system_prompt": "p", "language": "english!"}),
            vec!["body", "language"],
        ),
        (
            json!({"name": "a", "system_prompt": "p", "max_duration_secs": 0}),
            vec!["body", "max_duration_secs"],
        ),
        (
            json!({"name": "a", "system_prompt": "p", "transfer_number": "4155550100"}),
            vec!["body", "transfer_number"],
        ),
        // Emergency numbers are refused for transfers too.
        (
            json!({"name": "a", "system_prompt": "p", "transfer_number": "+1911"}),
            vec!["body", "transfer_number"],
        ),
        (
            json!({"name": "a", "system_prompt": "p", "transfer_number": "+19005550100"}),
            vec!["body", "transfer_number"],
        ),
        (
            json!({"name": "a", "system_prompt": "p", "tools": [1]}),
            vec!["body", "tools", "0"],
        ),
        (
            json!({"name": "a", "system_prompt": "p",
                "tools": [{"type": "http", "name": "end_call", "description": "d", "url": "https://x.example"}]}),
            vec!["body", "tools", "0", "name"],
        ),
        (
            json!({"name": "a", "system_prompt": "p", "model": {"stt": "vosk"}}),
            vec!["body", "model", "stt"],
        ),
        (
            json!({"name": "a", "system_prompt": "p", "model": []}),
            vec!["body", "model"],
        ),
        (
            json!({"name": "a", "system_prompt": "p", "colour": "red"}),
            vec!["body", "colour"],
        ),
    ] {
        let r = api
            .send(Method::POST, "/v1/agents", Some(body.clone()))
            .await;
        assert_422(&r, &loc);
    }
    // Several problems are reported together.
    let r = api
        .send(
            Method::POST,
            "/v1/agents",
            Some(json!({"name": "", "system_prompt": "", "max_duration_secs": -1})),
        )
        .await;
    assert_422(&r, &["body", "name"]);
    assert_422(&r, &["body", "system_prompt"]);
    assert_422(&r, &["body", "max_duration_secs"]);
    // Not JSON at all.
    let r = send_via(
        &api.state,
        &[("authorization", &bearer(&api.key))],
        Method::POST,
        "/v1/agents",
        Some(Value::String("oops".into())),
    )
    .await;
    assert_422(&r, &["body"]);
    // Nothing was created by any of these.
    let r = api.send(Method::GET, "/v1/agents", None).await;
    assert_eq!(r.json["data"], json!([]));

    // `api.deny_prefixes` replaces the built-in deny list.
    let state = state_with(api, "[api]\ndeny_prefixes = [\"+1415\"]\n");
    let auth = bearer(&api.key);
    let create = |number: &str| {
        let state = state.clone();
        let auth = auth.clone();
        let body = json!({"name": "a", "system_prompt": "p", "transfer_number": number});
        async move {
            send_via(
                &state,
                &[("authorization", &auth)],
                Method::POST,
                "/v1/agents",
                Some(body),
            )
            .await
        }
    };
    assert_422(&create("+14155550100").await, &["body", "transfer_number"]);
    assert_eq!(create("+19115550100").await.status, StatusCode::CREATED);
}

async fn cross_org_isolation(api: &Api) {
    let other = api.other_org_key("globex").await;
    let agent = new_agent(api, "mine").await;
    let r = api
        .send(
            Method::POST,
            "/v1/numbers",
            Some(json!({"e164": "+14155550111", "agent_id": agent})),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.json);
    let number = r.json["id"].as_str().unwrap().to_owned();
    let r = api
        .send(
            Method::POST,
            "/v1/webhooks",
            Some(json!({"url": "http://127.0.0.1:9/hook"})),
        )
        .await;
    let webhook = r.json["id"].as_str().unwrap().to_owned();
    let keys = api.send(Method::GET, "/v1/api-keys", None).await;
    let key_id = keys.json["data"][0]["id"].as_str().unwrap().to_owned();

    let o = Some(other.as_str());
    for (method, path, body) in [
        (Method::GET, format!("/v1/agents/{agent}"), None),
        (
            Method::PATCH,
            format!("/v1/agents/{agent}"),
            Some(json!({"name": "stolen"})),
        ),
        (Method::DELETE, format!("/v1/agents/{agent}"), None),
        (Method::GET, format!("/v1/numbers/{number}"), None),
        (
            Method::PATCH,
            format!("/v1/numbers/{number}"),
            Some(json!({"label": "stolen"})),
        ),
        (Method::DELETE, format!("/v1/numbers/{number}"), None),
        (Method::GET, format!("/v1/webhooks/{webhook}"), None),
        (Method::DELETE, format!("/v1/webhooks/{webhook}"), None),
        (
            Method::POST,
            format!("/v1/webhooks/{webhook}/rotate-secret"),
            None,
        ),
        (
            Method::GET,
            format!("/v1/webhooks/{webhook}/deliveries"),
            None,
        ),
        (Method::DELETE, format!("/v1/api-keys/{key_id}"), None),
    ] {
        let r = api.send_as(o, method.clone(), &path, body).await;
        assert_404(&r);
    }
    // Lists show only the caller's own.
    for path in ["/v1/agents", "/v1/numbers", "/v1/webhooks"] {
        let r = api.send_as(o, Method::GET, path, None).await;
        assert_eq!(r.json["data"], json!([]), "{path}");
    }
    let r = api.send_as(o, Method::GET, "/v1/api-keys", None).await;
    assert_eq!(r.json["data"].as_array().unwrap().len(), 1);
    assert_ne!(r.json["data"][0]["id"], key_id.as_str());
    // Another org's agent cannot be attached to a number.
    let r = api
        .send_as(
            o,
            Method::POST,
            "/v1/numbers",
            Some(json!({"e164": "+14155550122", "agent_id": agent})),
        )
        .await;
    assert_422(&r, &["body", "agent_id"]);
    // The test event goes to the caller's webhooks only.
    let r = api
        .send_as(o, Method::POST, "/v1/webhooks/test", None)
        .await;
    assert_eq!(r.status, StatusCode::ACCEPTED);
    assert_eq!(r.json["deliveries"], json!([]));
    // Everything of the first org is untouched.
    let r = api
        .send(Method::GET, &format!("/v1/agents/{agent}"), None)
        .await;
    assert_eq!(r.json["name"], "mine");
    let r = api
        .send(Method::GET, &format!("/v1/numbers/{number}"), None)
        .await;
    assert_eq!(r.json["label"], Value::Null);
    let r = api.send(Method::GET, "/v1/agents", None).await;
    assert_eq!(r.status, StatusCode::OK, "the first org's key still works");
}

async fn pagination(api: &Api) {
    let mut created = HashSet::new();
    for i in 0..45 {
        created.insert(new_agent(api, &format!("agent {i}")).await);
    }
    let mut seen = Vec::new();
    let mut pages = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let path = match &cursor {
            Some(c) => format!("/v1/agents?limit=20&cursor={c}"),
            None => "/v1/agents?limit=20".to_owned(),
        };
        let r = api.send(Method::GET, &path, None).await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.json);
        let data = r.json["data"].as_array().unwrap();
        pages.push(data.len());
        let mut last_created = i64::MAX;
        for a in data {
            // Newest first.
            let at = a["created_at"].as_i64().unwrap();
            assert!(at <= last_created);
            last_created = at;
            seen.push(a["id"].as_str().unwrap().to_owned());
        }
        match r.json["next_cursor"].as_str() {
            Some(c) => cursor = Some(c.to_owned()),
            None => {
                assert_eq!(r.json["next_cursor"], Value::Null);
                break;
            }
        }
    }
    assert_eq!(pages, [20, 20, 5]);
    let unique: HashSet<String> = seen.iter().cloned().collect();
    assert_eq!(unique.len(), 45, "no duplicates");
    assert_eq!(unique, created);
    // The default page is 20.
    let r = api.send(Method::GET, "/v1/agents", None).await;
    assert_eq!(r.json["data"].as_array().unwrap().len(), 20);
    // Paging parameters are checked on every list.
    for list in ["/v1/agents", "/v1/numbers", "/v1/webhooks", "/v1/api-keys"] {
        for bad in ["0", "101", "ten", "-1", "1.5"] {
            let r = api
                .send(Method::GET, &format!("{list}?limit={bad}"), None)
                .await;
            assert_422(&r, &["query", "limit"]);
        }
        let r = api
            .send(Method::GET, &format!("{list}?cursor=not-a-cursor"), None)
            .await;
        assert_422(&r, &["query", "cursor"]);
        let r = api
            .send(Method::GET, &format!("{list}?limit=100"), None)
            .await;
        assert_eq!(r.status, StatusCode::OK);
    }
}

const TRUNKS: &str = r#"
[[trunks]]
name = "carrier"
host = "127.0.0.1:5080"
[[trunks]]
name = "backup"
host = "127.0.0.1:5081"
"#;

async fn numbers_crud(api: &Api) {
    let state = state_with(api, TRUNKS);
    let auth = bearer(&api.key);
    let h = [("authorization", auth.as_str())];
    let send = |method: Method, path: String, body: Option<Value>| {
        let state = state.clone();
        async move { send_via(&state, &h, method, &path, body).await }
    };
    let agent = new_agent(api, "inbound").await;

    let r = send(
        Method::POST,
        "/v1/numbers".into(),
        Some(json!({
            "e164": "+1 (415) 555-0100",
            "label": "Main line",
            "trunk": "carrier",
            "agent_id": agent,
        })),
    )
    .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.json);
    let number = r.json.clone();
    let id = number["id"].as_str().unwrap().to_owned();
    assert!(id.starts_with("num_"));
    assert_eq!(number["e164"], "+14155550100");
    assert_eq!(number["trunk"], "carrier");
    assert_eq!(number["agent_id"], agent.as_str());
    // An agent and no inbound config: the agent answers.
    assert_eq!(number["inbound"], json!({"mode": "ai"}));

    // A DID belongs to one number, in any org.
    let r = send(
        Method::POST,
        "/v1/numbers".into(),
        Some(json!({"e164": "+14155550100"})),
    )
    .await;
    assert_eq!(r.status, StatusCode::CONFLICT, "{}", r.json);
    assert!(r.json["detail"].as_str().unwrap().contains("e164"));
    let other = api.other_org_key("initech").await;
    let r = api
        .send_as(
            Some(&other),
            Method::POST,
            "/v1/numbers",
            Some(json!({"e164": "+14155550100"})),
        )
        .await;
    assert_eq!(r.status, StatusCode::CONFLICT);

    // Creation errors, each at its field.
    for (body, loc) in [
        (json!({"e164": "4155550100"}), vec!["body", "e164"]),
        (json!({"e164": "+0123456"}), vec!["body", "e164"]),
        (json!({}), vec!["body", "e164"]),
        (
            json!({"e164": "+14155550101", "trunk": "nope"}),
            vec!["body", "trunk"],
        ),
        (
            json!({"e164": "+14155550101", "agent_id": "agt_000000000000000000000000"}),
            vec!["body", "agent_id"],
        ),
        (
            json!({"e164": "+14155550101", "inbound": {"mode": "dance"}}),
            vec!["body", "inbound", "mode"],
        ),
        (
            json!({"e164": "+14155550101", "inbound": {"mode": "ai"}}),
            vec!["body", "agent_id"],
        ),
        (
            json!({"e164": "+14155550101", "inbound": {"mode": "forward"}}),
            vec!["body", "inbound", "forward_to"],
        ),
        (
            json!({"e164": "+14155550101", "inbound": {"mode": "forward", "forward_to": "+1911"}}),
            vec!["body", "inbound", "forward_to"],
        ),
        (
            json!({"e164": "+14155550101", "inbound": {"mode": "forward", "forward_to": "+1 415 555 0101"}}),
            vec!["body", "inbound", "forward_to"],
        ),
        (
            json!({"e164": "+14155550101", "inbound": {"mode": "echo", "prompt": "a.wav"}}),
            vec!["body", "inbound", "prompt"],
        ),
        (
            json!({"e164": "+14155550101", "inbound": {"mode": "play", "max_digits": 0}}),
            vec!["body", "inbound", "max_digits"],
        ),
        (
            json!({"e164": "+14155550101", "inbound": {"mode": "play", "volume": 3}}),
            vec!["body", "inbound", "volume"],
        ),
        (
            json!({"e164": "+14155550101", "label": ""}),
            vec!["body", "label"],
        ),
    ] {
        let r = send(Method::POST, "/v1/numbers".into(), Some(body.clone())).await;
        assert_422(&r, &loc);
    }

    // Other modes with their settings.
    let r = send(
        Method::POST,
        "/v1/numbers".into(),
        Some(json!({
            "e164": "+442079460958",
            "inbound": {"mode": "play", "prompt": "prompts/hi.wav", "max_digits": 4,
                        "digit_timeout_secs": 3, "ring_secs": 2}
        })),
    )
    .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.json);
    assert_eq!(r.json["inbound"]["max_digits"], 4);
    assert_eq!(r.json["agent_id"], Value::Null);
    let play = r.json["id"].as_str().unwrap().to_owned();
    let r = send(
        Method::POST,
        "/v1/numbers".into(),
        Some(json!({"e164": "+14155550177", "inbound": {"mode": "forward", "forward_to": "+1 415 555 0199"}})),
    )
    .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.json);
    assert_eq!(r.json["inbound"]["forward_to"], "+14155550199");
    let r = send(
        Method::POST,
        "/v1/numbers".into(),
        Some(json!({"e164": "+14155550178"})),
    )
    .await;
    assert_eq!(r.json["inbound"], json!({"mode": "off"}));

    // List, and filter by agent.
    let r = send(Method::GET, "/v1/numbers".into(), None).await;
    assert_eq!(r.json["data"].as_array().unwrap().len(), 4);
    let r = send(Method::GET, format!("/v1/numbers?agent_id={agent}"), None).await;
    let ids: Vec<&str> = r.json["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, [id.as_str()]);
    let r = send(Method::GET, "/v1/numbers?agent_id=agt_none".into(), None).await;
    assert_eq!(r.json["data"], json!([]));

    // PATCH: only what is sent; null clears.
    let path = format!("/v1/numbers/{id}");
    let r = send(
        Method::PATCH,
        path.clone(),
        Some(json!({"label": null, "trunk": "backup"})),
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.json);
    assert_eq!(r.json["label"], Value::Null);
    assert_eq!(r.json["trunk"], "backup");
    assert_eq!(r.json["agent_id"], agent.as_str());
    assert_eq!(r.json["inbound"], json!({"mode": "ai"}));
    let r = send(
        Method::PATCH,
        path.clone(),
        Some(json!({"inbound": {"mode": "echo"}})),
    )
    .await;
    assert_eq!(r.json["inbound"], json!({"mode": "echo"}));
    assert_eq!(r.json["agent_id"], agent.as_str());
    let r = send(Method::GET, path.clone(), None).await;
    assert_eq!(r.json["inbound"], json!({"mode": "echo"}), "persisted");

    for (body, loc) in [
        (json!({"e164": "+14155550999"}), vec!["body", "e164"]),
        (json!({"trunk": "nope"}), vec!["body", "trunk"]),
        (json!({"inbound": null}), vec!["body", "inbound"]),
        (
            json!({"agent_id": "agt_000000000000000000000000"}),
            vec!["body", "agent_id"],
        ),
        // `ai` needs an agent, whether the mode or the agent changes.
        (
            json!({"inbound": {"mode": "ai"}, "agent_id": null}),
            vec!["body", "agent_id"],
        ),
    ] {
        let r = send(Method::PATCH, path.clone(), Some(body.clone())).await;
        assert_422(&r, &loc);
    }
    let r = send(
        Method::PATCH,
        format!("/v1/numbers/{play}"),
        Some(json!({"inbound": {"mode": "ai"}})),
    )
    .await;
    assert_422(&r, &["body", "agent_id"]);
    let r = send(
        Method::PATCH,
        path.clone(),
        Some(json!({"inbound": {"mode": "ai"}})),
    )
    .await;
    assert_eq!(r.status, StatusCode::OK);
    let r = send(Method::PATCH, path.clone(), Some(json!({"agent_id": null}))).await;
    assert_422(&r, &["body", "agent_id"]);

    let r = send(Method::DELETE, path.clone(), None).await;
    assert_eq!(r.status, StatusCode::NO_CONTENT);
    assert_404(&send(Method::GET, path.clone(), None).await);
    assert_404(&send(Method::PATCH, path.clone(), Some(json!({"label": "x"}))).await);
    assert_404(&send(Method::DELETE, path.clone(), None).await);
    // The DID is free again.
    let r = send(
        Method::POST,
        "/v1/numbers".into(),
        Some(json!({"e164": "+14155550100"})),
    )
    .await;
    assert_eq!(r.status, StatusCode::CREATED);
}

async fn webhooks(api: &Api) {
    for (body, loc) in [
        (json!({"url": "ftp://example.com/x"}), vec!["body", "url"]),
        (json!({"url": "https://"}), vec!["body", "url"]),
        (json!({"url": "hooks.example.com"}), vec!["body", "url"]),
        (json!({}), vec!["body", "url"]),
        (
            json!({"url": "https://example.com/h", "events": ["call.status", "call.exploded"]}),
            vec!["body", "events", "1"],
        ),
        (
            json!({"url": "https://example.com/h", "events": "call.status"}),
            vec!["body", "events"],
        ),
    ] {
        let r = api
            .send(Method::POST, "/v1/webhooks", Some(body.clone()))
            .await;
        assert_422(&r, &loc);
    }

    let r = api
        .send(
            Method::POST,
            "/v1/webhooks",
            Some(json!({"url": "http://127.0.0.1:9/all"})),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.json);
    let all = r.json["id"].as_str().unwrap().to_owned();
    let secret = r.json["secret"].as_str().unwrap().to_owned();
    assert!(secret.starts_with("whsec_"), "{secret}");
    assert_eq!(r.json["events"], json!([]));
    let r = api
        .send(
            Method::POST,
            "/v1/webhooks",
            Some(json!({"url": "https://127.0.0.1:9/calls",
                        "events": ["call.completed", "alert.*", "call.completed"]})),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.json);
    assert_eq!(r.json["events"], json!(["call.completed", "alert.*"]));
    let filtered = r.json["id"].as_str().unwrap().to_owned();

    // The secret is never shown again by reads and lists.
    let r = api.send(Method::GET, "/v1/webhooks", None).await;
    assert_eq!(r.json["data"].as_array().unwrap().len(), 2);
    for w in r.json["data"].as_array().unwrap() {
        assert!(w.get("secret").is_none(), "{w}");
    }
    let r = api
        .send(Method::GET, &format!("/v1/webhooks/{all}"), None)
        .await;
    assert_eq!(r.status, StatusCode::OK);
    assert!(r.json.get("secret").is_none());
    assert_eq!(r.json["url"], "http://127.0.0.1:9/all");

    // Rotation shows the new secret, once.
    let r = api
        .send(
            Method::POST,
            &format!("/v1/webhooks/{all}/rotate-secret"),
            None,
        )
        .await;
    assert_eq!(r.status, StatusCode::OK);
    let rotated = r.json["secret"].as_str().unwrap();
    assert!(rotated.starts_with("whsec_") && rotated != secret);
    let stored = api.db.store.get_webhook(&api.org_id, &all).await.unwrap();
    assert_eq!(stored.secret, rotated);

    // The test event is queued for every webhook, whatever its filter.
    let r = api.send(Method::POST, "/v1/webhooks/test", None).await;
    assert_eq!(r.status, StatusCode::ACCEPTED, "{}", r.json);
    assert_eq!(r.json["event_type"], "webhook.test");
    let mut to: Vec<&str> = r.json["deliveries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["webhook_id"].as_str().unwrap())
        .collect();
    to.sort();
    let mut expected = vec![all.as_str(), filtered.as_str()];
    expected.sort();
    assert_eq!(to, expected);

    // Deliveries: status, attempts, last error.
    let r = api
        .send(
            Method::GET,
            &format!("/v1/webhooks/{filtered}/deliveries"),
            None,
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.json);
    let d = &r.json["data"][0];
    assert_eq!(r.json["data"].as_array().unwrap().len(), 1);
    assert_eq!(d["status"], "pending");
    assert_eq!(d["attempts"], 0);
    assert_eq!(d["last_error"], Value::Null);
    assert_eq!(d["event_type"], "webhook.test");
    assert_eq!(r.json["next_cursor"], Value::Null);
    // A failed attempt shows up with its error.
    let claimed = api
        .db
        .store
        .claim_due(now_ms() + 1, 10, std::time::Duration::from_secs(30))
        .await
        .unwrap();
    let mine = claimed
        .iter()
        .find(|c| c.delivery.webhook_id == filtered)
        .unwrap();
    api.db
        .store
        .mark_retry(
            &mine.delivery,
            now_ms() + 60_000,
            "connection refused",
            Some(502),
        )
        .await
        .unwrap();
    let r = api
        .send(
            Method::GET,
            &format!("/v1/webhooks/{filtered}/deliveries?limit=1"),
            None,
        )
        .await;
    let d = &r.json["data"][0];
    assert_eq!(d["attempts"], 1);
    assert_eq!(d["last_error"], "connection refused");
    assert_eq!(d["last_status_code"], 502);
    let r = api
        .send(
            Method::GET,
            &format!("/v1/webhooks/{filtered}/deliveries?limit=0"),
            None,
        )
        .await;
    assert_422(&r, &["query", "limit"]);

    // Delete.
    let r = api
        .send(Method::DELETE, &format!("/v1/webhooks/{all}"), None)
        .await;
    assert_eq!(r.status, StatusCode::NO_CONTENT);
    for (method, path) in [
        (Method::GET, format!("/v1/webhooks/{all}")),
        (Method::DELETE, format!("/v1/webhooks/{all}")),
        (Method::POST, format!("/v1/webhooks/{all}/rotate-secret")),
        (Method::GET, format!("/v1/webhooks/{all}/deliveries")),
    ] {
        assert_404(&api.send(method, &path, None).await);
    }
    let r = api.send(Method::POST, "/v1/webhooks/test", None).await;
    assert_eq!(r.json["deliveries"].as_array().unwrap().len(), 1);
}

async fn api_keys(api: &Api) {
    let r = api
        .send(Method::POST, "/v1/api-keys", Some(json!({"name": "ci"})))
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.json);
    let key = r.json["key"].as_str().unwrap().to_owned();
    let id = r.json["id"].as_str().unwrap().to_owned();
    assert!(key.starts_with("hl_live_"));
    assert!(key.starts_with(r.json["prefix"].as_str().unwrap()));
    assert_eq!(r.json["last_used_at"], Value::Null);
    // The new key works and is the same org's.
    let agent = new_agent(api, "shared").await;
    let r = api
        .send_as(
            Some(&key),
            Method::GET,
            &format!("/v1/agents/{agent}"),
            None,
        )
        .await;
    assert_eq!(r.status, StatusCode::OK);
    // Lists never show a key.
    let r = api.send(Method::GET, "/v1/api-keys", None).await;
    let data = r.json["data"].as_array().unwrap();
    assert_eq!(data.len(), 2);
    for k in data {
        assert!(k.get("key").is_none(), "{k}");
        assert!(k["prefix"].as_str().unwrap().starts_with("hl_live_"));
        assert!(k["created_at"].as_i64().is_some());
    }
    let ci = data.iter().find(|k| k["id"] == id.as_str()).unwrap();
    assert_eq!(ci["name"], "ci");
    assert!(ci["last_used_at"].as_i64().is_some(), "used above: {ci}");

    for (body, loc) in [
        (json!({"name": ""}), vec!["body", "name"]),
        (json!({}), vec!["body", "name"]),
        (json!({"name": "x".repeat(201)}), vec!["body", "name"]),
        (json!({"name": "a", "org": "x"}), vec!["body", "org"]),
    ] {
        let r = api.send(Method::POST, "/v1/api-keys", Some(body)).await;
        assert_422(&r, &loc);
    }

    let r = api
        .send(Method::DELETE, &format!("/v1/api-keys/{id}"), None)
        .await;
    assert_eq!(r.status, StatusCode::NO_CONTENT);
    // Again: still gone, still fine.
    let r = api
        .send(Method::DELETE, &format!("/v1/api-keys/{id}"), None)
        .await;
    assert_eq!(r.status, StatusCode::NO_CONTENT);
    let r = api.send(Method::GET, "/v1/api-keys", None).await;
    let ci = r.json["data"]
        .as_array()
        .unwrap()
        .iter()
        .find(|k| k["id"] == id.as_str())
        .unwrap()
        .clone();
    assert!(ci["revoked_at"].as_i64().is_some());
    let r = api
        .send_as(Some(&key), Method::GET, "/v1/agents", None)
        .await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    assert_404(
        &api.send(
            Method::DELETE,
            "/v1/api-keys/key_000000000000000000000000",
            None,
        )
        .await,
    );
}

async fn usage(api: &Api) {
    let store = &api.db.store;
    // Two outbound calls (65 s and 10 s connected) and one inbound that
    // was never answered.
    for (direction, connected_ms) in [
        (CallDirection::Outbound, Some(65_000)),
        (CallDirection::Outbound, Some(10_000)),
        (CallDirection::Inbound, None),
    ] {
        let (call, _) = store
            .create_call(
                &api.org_id,
                &NewCall::new(direction, "+14155550100", "+14155550101"),
            )
            .await
            .unwrap();
        let now = now_ms();
        if let Some(ms) = connected_ms {
            store
                .update_call(
                    &api.org_id,
                    call.id.as_str(),
                    &CallUpdate::answered(now - ms),
                )
                .await
                .unwrap();
            store
                .update_call(
                    &api.org_id,
                    call.id.as_str(),
                    &CallUpdate::ended(CallStatus::Completed, now),
                )
                .await
                .unwrap();
        } else {
            store
                .update_call(
                    &api.org_id,
                    call.id.as_str(),
                    &CallUpdate::ended(CallStatus::NoAnswer, now),
                )
                .await
                .unwrap();
        }
    }
    let r = api.send(Method::GET, "/v1/usage", None).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.json);
    assert_eq!(r.json["period"], "day");
    assert_eq!(r.json["total_calls"], 3);
    // 65 s rounds up to 2 minutes, 10 s to 1.
    assert_eq!(r.json["total_minutes"], 3);
    let rows = r.json["data"].as_array().unwrap();
    let row = |dir: &str| {
        rows.iter()
            .find(|r| r["direction"] == dir)
            .unwrap_or_else(|| panic!("no {dir} row: {rows:?}"))
            .clone()
    };
    assert_eq!(row("outbound")["calls"], 2);
    assert_eq!(row("outbound")["minutes"], 3);
    assert_eq!(row("outbound")["duration_ms"], 75_000);
    assert_eq!(row("inbound")["calls"], 1);
    assert_eq!(row("inbound")["minutes"], 0);
    let day = row("outbound")["period"].as_str().unwrap().to_owned();
    assert_eq!(day.len(), "YYYY-MM-DD".len());

    let r = api.send(Method::GET, "/v1/usage?period=month", None).await;
    assert_eq!(r.json["period"], "month");
    assert_eq!(r.json["total_calls"], 3);
    assert_eq!(r.json["data"][0]["period"], &day[..7]);

    // A range that ends before the calls sees none.
    let r = api
        .send(
            Method::GET,
            "/v1/usage?created_after=0&created_before=1000",
            None,
        )
        .await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.json["data"], json!([]));
    assert_eq!(r.json["total_calls"], 0);
    // Another org sees none of them.
    let other = api.other_org_key("hooli").await;
    let r = api
        .send_as(Some(&other), Method::GET, "/v1/usage", None)
        .await;
    assert_eq!(r.json["total_calls"], 0);

    for (query, loc) in [
        ("period=year", "period"),
        ("created_after=yesterday", "created_after"),
        ("created_before=1.5", "created_before"),
        ("created_after=2000&created_before=1000", "created_before"),
    ] {
        let r = api
            .send(Method::GET, &format!("/v1/usage?{query}"), None)
            .await;
        assert_422(&r, &["query", loc]);
    }
}

async fn rate_limits(api: &Api) {
    let state = state_with(
        api,
        "[api]\nrate_per_sec = 0.01\nburst = 2\norg_rate_per_sec = 0.01\norg_burst = 3\n",
    );
    let second = api
        .db
        .store
        .create_api_key(&api.org_id, "second")
        .await
        .unwrap()
        .plaintext;
    let other = api.other_org_key("umbrella").await;
    let get = |key: String| {
        let state = state.clone();
        async move {
            let auth = bearer(&key);
            send_via(
                &state,
                &[("authorization", &auth)],
                Method::GET,
                "/v1/agents",
                None,
            )
            .await
        }
    };
    // The key's burst is 2.
    for _ in 0..2 {
        assert_eq!(get(api.key.clone()).await.status, StatusCode::OK);
    }
    let r = get(api.key.clone()).await;
    assert_eq!(r.status, StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(r.json, json!({"detail": "rate limit exceeded"}));
    let retry: u64 = r.headers["retry-after"].to_str().unwrap().parse().unwrap();
    // One token at 0.01/s takes 100 s.
    assert!((1..=100).contains(&retry), "{retry}");
    // Another key of the org has its own bucket, but the org's (3) is
    // shared: one more request, then 429.
    assert_eq!(get(second.clone()).await.status, StatusCode::OK);
    let r = get(second.clone()).await;
    assert_eq!(r.status, StatusCode::TOO_MANY_REQUESTS);
    assert!(r.headers.contains_key("retry-after"));
    // A refused request does not use up the other bucket: the first key is
    // still refused, the second key has one token left but the org none.
    assert_eq!(get(second).await.status, StatusCode::TOO_MANY_REQUESTS);
    // Another organization is unaffected.
    assert_eq!(get(other).await.status, StatusCode::OK);
    // A bad key is refused as such, not rate limited.
    let r = get("hl_live_unknown".into()).await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    // Operator endpoints are not rate limited.
    for _ in 0..5 {
        let r = send_via(&state, &[], Method::GET, "/healthz", None).await;
        assert_eq!(r.status, StatusCode::OK);
    }
}

async fn readiness_and_metrics(api: &Api) {
    let r = api.send_as(None, Method::GET, "/healthz", None).await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.json["status"], "ok");
    let r = api.send_as(None, Method::GET, "/readyz", None).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.json);
    assert_eq!(r.json["status"], "ready");

    // Traffic to record: a templated route, a 404, an unmatched path, and
    // a queued webhook delivery.
    let agent = new_agent(api, "m").await;
    api.send(Method::GET, &format!("/v1/agents/{agent}"), None)
        .await;
    api.send(Method::GET, "/v1/agents/agt_nope", None).await;
    api.send(Method::GET, "/no/such/path", None).await;
    api.send(
        Method::POST,
        "/v1/webhooks",
        Some(json!({"url": "http://127.0.0.1:9/h"})),
    )
    .await;
    api.send(Method::POST, "/v1/webhooks/test", None).await;
    let _sub = api.state.hub.subscribe(&api.org_id, Default::default());

    let r = api.send_as(None, Method::GET, "/metrics", None).await;
    assert_eq!(r.status, StatusCode::OK);
    assert!(
        r.headers["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/plain; version=0.0.4")
    );
    let text = r.json.as_str().unwrap();
    assert!(text.contains("hotline_live_calls 0\n"), "{text}");
    assert!(text.contains("hotline_ws_subscribers 1\n"), "{text}");
    assert!(text.contains("hotline_webhook_pending 1\n"), "{text}");
    let count = |route: &str, class: &str| -> u64 {
        let prefix = format!(
            "hotline_http_request_duration_seconds_count{{route=\"{route}\",status=\"{class}\"}} "
        );
        text.lines()
            .find_map(|l| l.strip_prefix(&prefix))
            .map_or(0, |v| v.parse().unwrap())
    };
    assert_eq!(count("/v1/agents/{id}", "2xx"), 1, "{text}");
    assert_eq!(count("/v1/agents/{id}", "4xx"), 1, "{text}");
    assert_eq!(count("/v1/agents", "2xx"), 1, "{text}");
    assert_eq!(count("unmatched", "4xx"), 1, "{text}");
    assert!(!text.contains("agt_nope") && !text.contains(&agent));
    for line in text.lines().filter(|l| !l.starts_with('#')) {
        let (_, v) = line.rsplit_once(' ').unwrap();
        assert!(v.parse::<f64>().is_ok(), "{line}");
    }

    // With the database gone, /readyz says so and /metrics still answers.
    api.db.store.close().await;
    let r = api.send_as(None, Method::GET, "/readyz", None).await;
    assert_eq!(r.status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(r.json, json!({"detail": "database unreachable"}));
    assert!(r.headers.contains_key("retry-after"));
    let r = api.send_as(None, Method::GET, "/metrics", None).await;
    assert_eq!(r.status, StatusCode::OK);
    assert!(!r.json.as_str().unwrap().contains("hotline_webhook_pending"));
}

/// Every `/v1` route of this part of the API, as the OpenAPI document
/// names it.
fn v1_routes() -> Vec<(Method, &'static str)> {
    vec![
        (Method::POST, "/v1/agents"),
        (Method::GET, "/v1/agents"),
        (Method::GET, "/v1/agents/{id}"),
        (Method::PATCH, "/v1/agents/{id}"),
        (Method::DELETE, "/v1/agents/{id}"),
        (Method::POST, "/v1/numbers"),
        (Method::GET, "/v1/numbers"),
        (Method::GET, "/v1/numbers/{id}"),
        (Method::PATCH, "/v1/numbers/{id}"),
        (Method::DELETE, "/v1/numbers/{id}"),
        (Method::GET, "/v1/numbers/{id}/inbound-config"),
        (Method::PUT, "/v1/numbers/{id}/inbound-config"),
        (Method::PATCH, "/v1/numbers/{id}/inbound-config"),
        (Method::DELETE, "/v1/numbers/{id}/inbound-config"),
        (Method::GET, "/v1/contacts"),
        (Method::GET, "/v1/contacts/{id}"),
        (Method::GET, "/v1/contacts/by-phone/{e164}"),
        (Method::PATCH, "/v1/contacts/{id}"),
        (Method::DELETE, "/v1/contacts/{id}"),
        (Method::POST, "/v1/webhooks"),
        (Method::GET, "/v1/webhooks"),
        (Method::GET, "/v1/webhooks/{id}"),
        (Method::DELETE, "/v1/webhooks/{id}"),
        (Method::POST, "/v1/webhooks/{id}/rotate-secret"),
        (Method::POST, "/v1/webhooks/test"),
        (Method::GET, "/v1/webhooks/{id}/deliveries"),
        (Method::GET, "/v1/api-keys"),
        (Method::POST, "/v1/api-keys"),
        (Method::DELETE, "/v1/api-keys/{id}"),
        (Method::GET, "/v1/usage"),
        (Method::GET, "/v1/settings"),
        (Method::PATCH, "/v1/settings"),
        (Method::GET, "/v1/prompt-templates"),
        (Method::GET, "/v1/prompt-templates/{id}"),
        (Method::GET, "/v1/voices"),
        (Method::GET, "/v1/voices/{id}/sample"),
        (Method::POST, "/v1/calls"),
        (Method::GET, "/v1/calls"),
        (Method::GET, "/v1/calls/{id}"),
        (Method::DELETE, "/v1/calls/{id}"),
        (Method::POST, "/v1/calls/batch"),
        (Method::GET, "/v1/calls/batch/{id}"),
        (Method::DELETE, "/v1/calls/batch/{id}"),
        (Method::POST, "/v1/dnc"),
        (Method::GET, "/v1/dnc"),
        (Method::GET, "/v1/dnc/{number}"),
        (Method::DELETE, "/v1/dnc/{number}"),
        (Method::POST, "/v1/calls/{id}/hangup"),
        (Method::GET, "/v1/calls/{id}/transcript"),
        (Method::GET, "/v1/calls/{id}/recording"),
        (Method::GET, "/v1/calls/{id}/report"),
        (Method::GET, "/v1/reports"),
        (Method::POST, "/v1/phones"),
        (Method::GET, "/v1/phones"),
        (Method::GET, "/v1/phones/{id}"),
        (Method::POST, "/v1/phones/{id}/verify"),
        (Method::POST, "/v1/phones/{id}/verification"),
        (Method::POST, "/v1/phones/{id}/primary"),
        (Method::POST, "/v1/alerts"),
        (Method::GET, "/v1/alerts"),
        (Method::GET, "/v1/alerts/{id}"),
        (Method::POST, "/v1/alerts/{id}/acknowledge"),
        (Method::GET, "/v1/tools/openai"),
        (Method::GET, "/v1/contacts/{id}/memory"),
        (Method::PUT, "/v1/contacts/{id}/memory/{slot}"),
        (Method::DELETE, "/v1/contacts/{id}/memory/{slot}"),
        (Method::GET, "/v1/contacts/{id}/next-call-context"),
        (Method::POST, "/v1/playbooks"),
        (Method::GET, "/v1/playbooks"),
        (Method::GET, "/v1/playbooks/{id}"),
        (Method::PATCH, "/v1/playbooks/{id}"),
        (Method::DELETE, "/v1/playbooks/{id}"),
        (Method::POST, "/v1/playbooks/classify"),
        (Method::POST, "/v1/personas"),
        (Method::GET, "/v1/personas"),
        (Method::GET, "/v1/personas/{id}"),
        (Method::PATCH, "/v1/personas/{id}"),
        (Method::DELETE, "/v1/personas/{id}"),
        (Method::GET, "/v1/numbers/{id}/outbound-defaults"),
        (Method::PUT, "/v1/numbers/{id}/outbound-defaults"),
        (Method::DELETE, "/v1/numbers/{id}/outbound-defaults"),
    ]
}

async fn openapi_and_docs(api: &Api) {
    let r = api.send_as(None, Method::GET, "/openapi.json", None).await;
    assert_eq!(r.status, StatusCode::OK);
    let doc = &r.json;
    assert!(doc["openapi"].as_str().unwrap().starts_with("3."), "{doc}");
    assert_eq!(doc["info"]["title"], "Hotline API");
    let scheme = &doc["components"]["securitySchemes"]["bearer"];
    assert_eq!(scheme["type"], "http");
    assert_eq!(scheme["scheme"], "bearer");
    let schemas = doc["components"]["schemas"].as_object().unwrap();
    for name in [
        "AgentOut",
        "CreateAgent",
        "UpdateAgent",
        "NumberOut",
        "InboundConfig",
        "ContactOut",
        "ContactList",
        "UpdateContact",
        "WebhookOut",
        "DeliveryList",
        "ApiKeyOut",
        "UsageReport",
        "ErrorBody",
    ] {
        assert!(schemas.contains_key(name), "schema {name} missing");
    }
    // Every $ref points at a schema that exists.
    fn refs(v: &Value, out: &mut Vec<String>) {
        match v {
            Value::Object(m) => {
                if let Some(Value::String(r)) = m.get("$ref") {
                    out.push(r.clone());
                }
                m.values().for_each(|v| refs(v, out));
            }
            Value::Array(a) => a.iter().for_each(|v| refs(v, out)),
            _ => {}
        }
    }
    let mut all = Vec::new();
    refs(doc, &mut all);
    assert!(!all.is_empty());
    for r in all {
        let name = r.strip_prefix("#/components/schemas/").unwrap();
        assert!(schemas.contains_key(name), "dangling {r}");
    }
    // Every registered route is documented, needs the key, and exists.
    let mut routes = v1_routes();
    routes.extend([
        (Method::GET, "/healthz"),
        (Method::GET, "/readyz"),
        (Method::GET, "/metrics"),
    ]);
    for (method, path) in &routes {
        let op = &doc["paths"][*path][method.as_str().to_ascii_lowercase()];
        assert!(op.is_object(), "{method} {path} is not documented");
        assert!(op["responses"].is_object(), "{method} {path}");
        if path.starts_with("/v1/") {
            assert_eq!(op["security"][0]["bearer"], json!([]), "{method} {path}");
            assert!(op["responses"]["401"].is_object(), "{method} {path}");
            assert!(op["responses"]["429"].is_object(), "{method} {path}");
        }
        // The route answers (a JSON 404 for an unknown id is the handler's;
        // an unrouted path would get an empty 404 or a 405).
        let r = api
            .send(
                method.clone(),
                &path
                    .replace("{id}", "x")
                    .replace("{e164}", "x")
                    .replace("{slot}", "name"),
                Some(json!({})),
            )
            .await;
        assert_ne!(r.status, StatusCode::METHOD_NOT_ALLOWED, "{method} {path}");
        if r.status == StatusCode::NOT_FOUND {
            assert!(
                r.json["detail"].is_string(),
                "{method} {path} is not routed"
            );
        }
    }
    let documented: usize = doc["paths"]
        .as_object()
        .unwrap()
        .values()
        .map(|item| item.as_object().unwrap().len())
        .sum();
    assert_eq!(documented, routes.len(), "undocumented or stale operations");

    let r = api.send_as(None, Method::GET, "/docs", None).await;
    assert_eq!(r.status, StatusCode::OK);
    assert!(
        r.headers["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/html")
    );
    let csp = r.headers["content-security-policy"].to_str().unwrap();
    assert!(csp.contains("connect-src 'self'"), "{csp}");
    let html = r.json.as_str().unwrap();
    assert!(html.starts_with("<!doctype html>"));
    assert!(html.contains("fetch(\"/openapi.json\")"));
    // Self-contained: nothing is loaded from elsewhere.
    for outside in ["<script src", "<link", "http://", "https://", "@import"] {
        assert!(!html.contains(outside), "docs page refers to {outside}");
    }
}

api_on_both!(
    auth_failures,
    agents_crud,
    agent_validation,
    cross_org_isolation,
    pagination,
    numbers_crud,
    webhooks,
    api_keys,
    usage,
    rate_limits,
    readiness_and_metrics,
    openapi_and_docs,
    oversized_bodies,
    org_settings,
);

/// Sends `body` raw to a router over `state`, with the API's key, declaring
/// its length or (as a chunked upload would) not.
async fn send_raw(
    api: &Api,
    state: &AppState,
    method: Method,
    path: &str,
    body: Vec<u8>,
    declare_length: bool,
) -> Reply {
    let mut req = Request::builder()
        .method(method)
        .uri(path)
        .header("authorization", bearer(&api.key))
        .header("content-type", "application/json");
    let body = if declare_length {
        req = req.header("content-length", body.len().to_string());
        Body::from(body)
    } else {
        // A stream of unknown length: only reading it finds it too long.
        let chunks: Vec<Result<Vec<u8>, std::io::Error>> =
            body.chunks(512).map(|c| Ok(c.to_vec())).collect();
        Body::from_stream(futures_util::stream::iter(chunks))
    };
    let res = hotline::http::router(state.clone())
        .oneshot(req.body(body).unwrap())
        .await
        .unwrap();
    let status = res.status();
    let headers = res.headers().clone();
    let bytes = axum::body::to_bytes(res.into_body(), 1 << 20)
        .await
        .unwrap();
    Reply {
        status,
        headers,
        json: serde_json::from_slice(&bytes)
            .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&bytes).into_owned())),
    }
}

/// A JSON object of exactly `len` bytes: `{"name":"xxx…"}`.
fn json_of_len(len: usize) -> Vec<u8> {
    let pad = len - r#"{"name":""}"#.len();
    format!(r#"{{"name":"{}"}}"#, "x".repeat(pad)).into_bytes()
}

async fn oversized_bodies(api: &Api) {
    let limit = 4096;
    let state = state_with(api, &format!("[api]\nmax_body_bytes = {limit}\n"));
    let agent = api
        .send(Method::POST, "/v1/agents", Some(agent_body("Ann")))
        .await;
    assert_eq!(agent.status, StatusCode::CREATED, "{}", agent.json);
    let agent_id = agent.json["id"].as_str().unwrap();
    let number = api
        .send(
            Method::POST,
            "/v1/numbers",
            Some(json!({"e164": "+14155550177"})),
        )
        .await;
    assert_eq!(number.status, StatusCode::CREATED, "{}", number.json);
    let number_id = number.json["id"].as_str().unwrap();
    let hook = api
        .send(
            Method::POST,
            "/v1/webhooks",
            Some(json!({"url": "https://example.com/hook"})),
        )
        .await;
    assert_eq!(hook.status, StatusCode::CREATED, "{}", hook.json);
    let hook_id = hook.json["id"].as_str().unwrap();
    let routes = [
        (Method::POST, "/v1/agents".to_owned()),
        (Method::PATCH, format!("/v1/agents/{agent_id}")),
        (Method::POST, "/v1/numbers".to_owned()),
        (Method::PATCH, format!("/v1/numbers/{number_id}")),
        (Method::POST, "/v1/webhooks".to_owned()),
        (Method::POST, "/v1/webhooks/test".to_owned()),
        (
            Method::POST,
            format!("/v1/webhooks/{hook_id}/rotate-secret"),
        ),
        (Method::POST, "/v1/api-keys".to_owned()),
        (Method::POST, "/v1/calls".to_owned()),
        (
            Method::POST,
            "/v1/calls/call_000000000000000000000000/hangup".to_owned(),
        ),
    ];
    let detail = format!("request body is larger than the limit of {limit} bytes");
    for (method, path) in &routes {
        for declared in [true, false] {
            let r = send_raw(
                api,
                &state,
                method.clone(),
                path,
                json_of_len(limit + 1),
                declared,
            )
            .await;
            // A handler that takes no body never reads it, so it cannot find
            // an undeclared length too long; a declared one is refused.
            let takes_no_body = ["/hangup", "/rotate-secret", "/webhooks/test"]
                .iter()
                .any(|end| path.ends_with(end));
            if !declared && takes_no_body {
                assert_ne!(r.status, StatusCode::PAYLOAD_TOO_LARGE, "{method} {path}");
                continue;
            }
            assert_eq!(
                r.status,
                StatusCode::PAYLOAD_TOO_LARGE,
                "{method} {path} (length declared: {declared}): {}",
                r.json
            );
            assert_eq!(r.json, json!({ "detail": detail }), "{method} {path}");
            assert!(
                r.headers["content-type"]
                    .to_str()
                    .unwrap()
                    .starts_with("application/json")
            );
        }
    }
    // At the limit, a body is read and judged on its content.
    for declared in [true, false] {
        let r = send_raw(
            api,
            &state,
            Method::POST,
            "/v1/agents",
            json_of_len(limit),
            declared,
        )
        .await;
        assert_422(&r, &["body", "system_prompt"]);
    }
    // The default limit is 1 MiB.
    assert_eq!(
        Config::default().api.max_body_bytes,
        hotline::config::DEFAULT_MAX_BODY_BYTES
    );
    let r = send_raw(
        api,
        &api.state,
        Method::POST,
        "/v1/agents",
        json_of_len((1 << 20) + 1),
        false,
    )
    .await;
    assert_eq!(r.status, StatusCode::PAYLOAD_TOO_LARGE, "{}", r.json);
    assert_eq!(
        r.json["detail"],
        "request body is larger than the limit of 1048576 bytes"
    );
}

/// `GET/PATCH /v1/settings`: provider keys are write-only, merge per
/// provider, are removed with null, and are checked.
async fn org_settings(api: &Api) {
    let r = api.send(Method::GET, "/v1/settings", None).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.json);
    assert_eq!(
        r.json["provider_keys"],
        json!({"openai": null, "deepgram": null, "elevenlabs": null})
    );
    let r = api
        .send(
            Method::PATCH,
            "/v1/settings",
            Some(json!({"provider_keys": {"openai": "sk-acme", "deepgram": "dg-1"}})),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.json);
    assert_eq!(r.json["provider_keys"]["openai"], "********");
    assert_eq!(r.json["provider_keys"]["deepgram"], "********");
    assert!(!r.json.to_string().contains("sk-acme"));
    // Only what is sent changes; null removes.
    let r = api
        .send(
            Method::PATCH,
            "/v1/settings",
            Some(json!({"provider_keys": {"deepgram": null}})),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.json["provider_keys"]["openai"], "********");
    assert_eq!(r.json["provider_keys"]["deepgram"], Value::Null);
    let stored = api.db.store.org_settings(&api.org_id).await.unwrap();
    assert_eq!(stored["provider_keys"], json!({"openai": "sk-acme"}));
    // Another organization sees none of it.
    let other = api.other_org_key("other").await;
    let r = api
        .send_as(Some(&other), Method::GET, "/v1/settings", None)
        .await;
    assert_eq!(r.json["provider_keys"]["openai"], Value::Null);
    for (body, loc) in [
        (json!({"provider_keys": {"watson": "k"}}), "watson"),
        (json!({"provider_keys": {"openai": "********"}}), "openai"),
        (json!({"provider_keys": {"openai": ""}}), "openai"),
        (json!({"provider_keys": {"openai": 5}}), "openai"),
    ] {
        let r = api
            .send(Method::PATCH, "/v1/settings", Some(body.clone()))
            .await;
        assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
        assert_eq!(
            r.json["detail"][0]["loc"],
            json!(["body", "provider_keys", loc]),
            "{}",
            r.json
        );
    }
    let r = api
        .send(Method::PATCH, "/v1/settings", Some(json!({"colour": 1})))
        .await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", r.json);
}
