//! The catalogues of the API, in process, on SQLite and on Postgres: the
//! prompt templates (`/v1/prompt-templates`) and the voices this server
//! can speak with (`/v1/voices`), whose samples are synthesized for real
//! by the local engines and by a local OpenAI-compatible speech server.

use std::sync::{Arc, Mutex};

use axum::body::{Body, Bytes};
use axum::http::{HeaderMap, Method, Request, StatusCode};
use hotline::api::AppState;
use hotline::config::Config;
use serde_json::{Value, json};
use tower::ServiceExt;

mod support;

use support::api::Api;

/// What a request got back, body as bytes.
struct Raw {
    status: StatusCode,
    headers: HeaderMap,
    body: Bytes,
}

impl Raw {
    fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or(Value::Null)
    }
}

/// Sends a request with `key` to a router over `state`.
async fn send(state: &AppState, key: &str, method: Method, path: &str, body: Option<Value>) -> Raw {
    let req = Request::builder()
        .method(method)
        .uri(path)
        .header("authorization", format!("Bearer {key}"));
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
    let headers = res.headers().clone();
    let body = axum::body::to_bytes(res.into_body(), 16 << 20)
        .await
        .unwrap();
    Raw {
        status,
        headers,
        body,
    }
}

async fn get(state: &AppState, key: &str, path: &str) -> Raw {
    send(state, key, Method::GET, path, None).await
}

/// A state on the API's database with `toml` as its configuration.
fn state_with(api: &Api, toml: &str) -> AppState {
    let config: Config = toml::from_str(toml).unwrap();
    config.validate().unwrap();
    AppState::new(Arc::new(config), api.db.store.clone(), None)
}

/// True when the environment gives the server a key of its own, so a
/// cloud's voices are listed whatever the test configures.
fn env_key(name: &str) -> bool {
    std::env::var(name).is_ok_and(|k| !k.trim().is_empty())
}

fn ids(list: &Raw) -> Vec<String> {
    list.json()["data"]
        .as_array()
        .unwrap_or_else(|| panic!("not a list: {}", list.json()))
        .iter()
        .map(|v| v["id"].as_str().unwrap().to_owned())
        .collect()
}

/// Checks a sample is a mono 16-bit WAV of plausible speech length that
/// is not silent, and returns its rate.
#[track_caller]
fn assert_speech_wav(r: &Raw) -> u32 {
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.json());
    assert_eq!(r.headers["content-type"], "audio/wav");
    assert_eq!(&r.body[..4], b"RIFF");
    assert_eq!(&r.body[8..12], b"WAVE");
    let wav = hotline_media::wav::read_wav(&r.body).unwrap();
    assert_eq!(wav.format.channels, 1);
    assert_eq!(wav.format.bits_per_sample, 16);
    let secs = wav.duration_secs();
    assert!((1.0..=20.0).contains(&secs), "{secs} s");
    let samples = wav.to_mono();
    let rms =
        (samples.iter().map(|&s| f64::from(s).powi(2)).sum::<f64>() / samples.len() as f64).sqrt();
    assert!(rms > 300.0, "silent sample: rms {rms}");
    wav.format.sample_rate
}

// ------------------------------------------------------------ templates --

async fn templates_list_filter_and_read(api: &Api) {
    let s = &api.state;
    let all = get(s, &api.key, "/v1/prompt-templates").await;
    assert_eq!(all.status, StatusCode::OK);
    assert_eq!(all.json()["next_cursor"], Value::Null);
    assert_eq!(
        ids(&all),
        [
            "receptionist",
            "lead-qualifier",
            "appointment-booker",
            "customer-support",
            "call-screener",
            "appointment-booker-outbound",
            "information-request",
            "callback-confirmation",
        ]
    );
    let inbound = get(s, &api.key, "/v1/prompt-templates?direction=inbound").await;
    assert_eq!(ids(&inbound).len(), 5);
    let outbound = get(s, &api.key, "/v1/prompt-templates?direction=outbound").await;
    assert_eq!(
        ids(&outbound),
        [
            "appointment-booker-outbound",
            "information-request",
            "callback-confirmation"
        ]
    );
    for t in outbound.json()["data"].as_array().unwrap() {
        assert_eq!(t["direction"], "outbound");
    }
    let bad = get(s, &api.key, "/v1/prompt-templates?direction=sideways").await;
    assert_eq!(bad.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(
        bad.json()["detail"][0]["loc"],
        json!(["query", "direction"])
    );

    let one = get(s, &api.key, "/v1/prompt-templates/receptionist").await;
    assert_eq!(one.status, StatusCode::OK);
    let t = one.json();
    assert_eq!(t["name"], "Receptionist");
    assert_eq!(t["direction"], "inbound");
    let prompt = t["system_prompt"].as_str().unwrap();
    for p in t["placeholders"].as_array().unwrap() {
        let token = p["token"].as_str().unwrap();
        assert!(
            prompt.contains(token) || t["first_message"].as_str().unwrap().contains(token),
            "{token}"
        );
    }
    let tokens: Vec<&str> = t["placeholders"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["token"].as_str().unwrap())
        .collect();
    assert!(tokens.contains(&"[BUSINESS_NAME]") && tokens.contains(&"[HOURS]"));
    assert!(t["max_duration_secs"].as_u64().unwrap() >= 60);
    assert!(!t["report_fields"].as_array().unwrap().is_empty());
    assert_eq!(t["structured_data_schema"]["type"], "object");

    let missing = get(s, &api.key, "/v1/prompt-templates/karaoke-host").await;
    assert_eq!(missing.status, StatusCode::NOT_FOUND);
    assert_eq!(missing.json()["detail"], "prompt template not found");
    // The key is needed like everywhere under /v1.
    let anon = api
        .send_as(None, Method::GET, "/v1/prompt-templates", None)
        .await;
    assert_eq!(anon.status, StatusCode::UNAUTHORIZED);
}

/// Every template, as it is, makes an agent: its prompt, greeting,
/// recommended voice, duration and report schema pass validation.
async fn templates_are_usable_as_agents(api: &Api) {
    let s = &api.state;
    let all = get(s, &api.key, "/v1/prompt-templates").await.json();
    let voices = ids(&get(s, &api.key, "/v1/voices").await);
    for t in all["data"].as_array().unwrap() {
        let voice = t["recommended_voice"].as_str().unwrap();
        assert!(
            voices.iter().any(|v| v == voice),
            "{voice} not in {voices:?}"
        );
        let r = send(
            s,
            &api.key,
            Method::POST,
            "/v1/agents",
            Some(json!({
                "name": t["name"],
                "system_prompt": t["system_prompt"],
                "first_message": t["first_message"],
                "voice": voice,
                "max_duration_secs": t["max_duration_secs"],
                "model": {"structured_data_schema": t["structured_data_schema"]},
            })),
        )
        .await;
        assert_eq!(r.status, StatusCode::CREATED, "{}: {}", t["id"], r.json());
        assert_eq!(r.json()["system_prompt"], t["system_prompt"]);
    }
}

// --------------------------------------------------------------- voices --

async fn local_voices_and_their_samples(api: &Api) {
    let s = &api.state;
    let list = get(s, &api.key, "/v1/voices").await;
    assert_eq!(list.status, StatusCode::OK);
    let body = list.json();
    let voices = body["data"].as_array().unwrap();
    // The embedded voice first (scripts/models installed it here), then
    // espeak-ng's.
    let joe = &voices[0];
    assert_eq!(joe["id"], "en_US-joe-medium");
    assert_eq!(joe["provider"], "piper");
    assert_eq!(joe["language"], "en-US");
    assert_eq!(joe["sample_url"], "/v1/voices/en_US-joe-medium/sample");
    let us = voices.iter().find(|v| v["id"] == "en-us").expect("en-us");
    assert_eq!(us["provider"], "espeak");
    assert_eq!(us["gender"], "male");
    let female = voices.iter().find(|v| v["id"] == "en-us+f3").unwrap();
    assert_eq!(female["gender"], "female");
    for v in voices {
        for field in ["id", "name", "provider", "language", "sample_url"] {
            assert!(v[field].as_str().is_some_and(|x| !x.is_empty()), "{v}");
        }
    }
    if !env_key("OPENAI_API_KEY") {
        assert!(voices.iter().all(|v| v["provider"] != "openai"), "{body}");
    }
    if !env_key("ELEVENLABS_API_KEY") {
        assert!(voices.iter().all(|v| v["provider"] != "elevenlabs"));
    }

    // Filters.
    let espeak = get(s, &api.key, "/v1/voices?provider=espeak").await;
    assert!(ids(&espeak).contains(&"en-us".to_owned()));
    assert!(!ids(&espeak).contains(&"en_US-joe-medium".to_owned()));
    let french = get(s, &api.key, "/v1/voices?language=fr").await;
    assert_eq!(ids(&french), ["fr-fr"]);
    let bad = get(s, &api.key, "/v1/voices?provider=sam").await;
    assert_eq!(bad.status, StatusCode::UNPROCESSABLE_ENTITY);

    // The embedded voice speaks; the second request is the cached WAV.
    let first = get(s, &api.key, "/v1/voices/en_US-joe-medium/sample").await;
    assert_eq!(assert_speech_wav(&first), 22_050);
    let again = get(s, &api.key, "/v1/voices/en_US-joe-medium/sample").await;
    assert_eq!(again.body, first.body);
    assert_eq!(api.state.voice_samples.len(), 1);
    // A variant of espeak-ng, through its URL as listed ('+' and all).
    let url = female["sample_url"].as_str().unwrap();
    assert_speech_wav(&get(s, &api.key, url).await);

    let unknown = get(s, &api.key, "/v1/voices/hal-9000/sample").await;
    assert_eq!(unknown.status, StatusCode::NOT_FOUND);
    assert_eq!(unknown.json()["detail"], "voice not found");
    // A cloud voice the server has no key for is not this server's.
    if !env_key("OPENAI_API_KEY") {
        let coral = get(s, &api.key, "/v1/voices/coral/sample").await;
        assert_eq!(coral.status, StatusCode::NOT_FOUND);
    }

    // Every listed id is a voice an agent accepts.
    for id in ids(&list) {
        let r = send(
            s,
            &api.key,
            Method::POST,
            "/v1/agents",
            Some(json!({"name": "v", "system_prompt": "Be brief.", "voice": id})),
        )
        .await;
        assert_eq!(r.status, StatusCode::CREATED, "{id}: {}", r.json());
        assert_eq!(r.json()["voice"], id.as_str());
    }
}

/// A local OpenAI-compatible speech endpoint: raw 24 kHz PCM of a tone
/// for every request, and the requests it got.
async fn speech_server() -> (String, Arc<Mutex<Vec<Value>>>) {
    let seen: Arc<Mutex<Vec<Value>>> = Arc::default();
    let log = seen.clone();
    let app = axum::Router::new().route(
        "/v1/audio/speech",
        axum::routing::post(move |axum::Json(body): axum::Json<Value>| {
            let log = log.clone();
            async move {
                log.lock().unwrap().push(body);
                // 1.5 s of 440 Hz at 24 kHz, little-endian 16-bit.
                let pcm: Vec<u8> = (0..36_000)
                    .flat_map(|i| {
                        let t = f64::from(i) / 24_000.0;
                        let s = (8000.0 * (2.0 * std::f64::consts::PI * 440.0 * t).sin()) as i16;
                        s.to_le_bytes()
                    })
                    .collect();
                ([("content-type", "application/octet-stream")], pcm)
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (format!("http://{addr}/v1"), seen)
}

/// A TCP port on 127.0.0.1 that refuses connections.
fn closed_port() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    l.local_addr().unwrap().port()
}

async fn server_keys_list_cloud_voices(api: &Api) {
    let (base, seen) = speech_server().await;
    let state = state_with(
        api,
        &format!(
            r#"
            [agent.openai_tts]
            base_url = "{base}"
            api_key = "sk-test"
            max_retries = 0
            [agent.elevenlabs]
            api_key = "xi-test"
            url = "ws://127.0.0.1:{}/v1"
            "#,
            closed_port()
        ),
    );
    let list = get(&state, &api.key, "/v1/voices").await;
    let all = ids(&list);
    for id in [
        "en_US-joe-medium",
        "en-us",
        "coral",
        "alloy",
        "21m00Tcm4TlvDq8ikWAM",
    ] {
        assert!(all.iter().any(|v| v == id), "{id} not in {all:?}");
    }
    let rachel = list.json()["data"]
        .as_array()
        .unwrap()
        .iter()
        .find(|v| v["id"] == "21m00Tcm4TlvDq8ikWAM")
        .cloned()
        .unwrap();
    assert_eq!(rachel["name"], "Rachel");
    assert_eq!(rachel["provider"], "elevenlabs");

    // An OpenAI voice's sample comes from the (local) speech endpoint,
    // asked for that voice.
    let coral = get(&state, &api.key, "/v1/voices/coral/sample").await;
    assert_eq!(assert_speech_wav(&coral), 24_000);
    let asked = seen.lock().unwrap().clone();
    assert_eq!(asked.len(), 1);
    assert_eq!(asked[0]["voice"], "coral");
    assert_eq!(asked[0]["response_format"], "pcm");

    // A provider that cannot be reached is the gateway's failure.
    let down = get(&state, &api.key, "/v1/voices/21m00Tcm4TlvDq8ikWAM/sample").await;
    assert_eq!(down.status, StatusCode::BAD_GATEWAY, "{:?}", down.json());
    let detail = down.json()["detail"].as_str().unwrap().to_owned();
    assert!(detail.contains("elevenlabs"), "{detail}");
}

async fn an_org_key_lists_its_cloud_for_that_org_only(api: &Api) {
    if env_key("ELEVENLABS_API_KEY") {
        return;
    }
    // ElevenLabs pointed at a closed local port: nothing leaves the host.
    let state = state_with(
        api,
        &format!(
            "[agent.elevenlabs]\nurl = \"ws://127.0.0.1:{}/v1\"\nmax_retries = 0\n",
            closed_port()
        ),
    );
    let before = ids(&get(&state, &api.key, "/v1/voices?provider=elevenlabs").await);
    assert!(before.is_empty(), "{before:?}");
    let r = send(
        &state,
        &api.key,
        Method::PATCH,
        "/v1/settings",
        Some(json!({"provider_keys": {"elevenlabs": "xi-org-key"}})),
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.json());
    let after = ids(&get(&state, &api.key, "/v1/voices?provider=elevenlabs").await);
    assert!(
        after.contains(&"21m00Tcm4TlvDq8ikWAM".to_owned()),
        "{after:?}"
    );
    // Another organization has no key, so no such voices, and no sample.
    let other = api.other_org_key("globex").await;
    assert!(ids(&get(&state, &other, "/v1/voices?provider=elevenlabs").await).is_empty());
    let theirs = get(&state, &other, "/v1/voices/21m00Tcm4TlvDq8ikWAM/sample").await;
    assert_eq!(theirs.status, StatusCode::NOT_FOUND);
    // Ours is tried, with our key, and the failure is reported.
    let ours = get(&state, &api.key, "/v1/voices/21m00Tcm4TlvDq8ikWAM/sample").await;
    assert_eq!(ours.status, StatusCode::BAD_GATEWAY, "{:?}", ours.json());
    assert!(
        ours.json()["detail"]
            .as_str()
            .unwrap()
            .starts_with("voice 21m00Tcm4TlvDq8ikWAM: ")
    );
    // Removing the key removes the voices.
    send(
        &state,
        &api.key,
        Method::PATCH,
        "/v1/settings",
        Some(json!({"provider_keys": {"elevenlabs": null}})),
    )
    .await;
    assert!(ids(&get(&state, &api.key, "/v1/voices?provider=elevenlabs").await).is_empty());
}

api_on_both!(
    templates_list_filter_and_read,
    templates_are_usable_as_agents,
    local_voices_and_their_samples,
    server_keys_list_cloud_voices,
    an_org_key_lists_its_cloud_for_that_org_only,
);
