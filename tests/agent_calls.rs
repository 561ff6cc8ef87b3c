//! The voice agent on real calls: baresip calls Hotline's AI number over
//! SIP on 127.0.0.1 and plays espeak-ng speech; the agent runs the local
//! engines (Whisper, the flow engine, Piper) on the call's RTP. The tests
//! check what a caller and an operator would: the caller hears speech,
//! the transcript has the caller's words, and the call ends the way the
//! conversation says.

mod peers;
mod support;

use std::time::Duration;

use hotline::agent::service::AgentService;
use hotline::call::{CallEvent, TranscriptLine};
use peers::audio;
use peers::baresip::{Baresip, BaresipConfig};
use peers::hotline::Hotline;
use peers::sipp::{Offer, Scenario, SippRun};
use peers::talker::{Talker, TalkerConfig};

/// Starts Hotline with the voice agent installed and warmed up (models
/// loaded, greeting synthesized), as the server does at start-up.
fn hotline_with_agent(edit: impl FnOnce(&mut hotline::config::Config)) -> Hotline {
    let models = std::path::PathBuf::from(
        std::env::var("HOTLINE_MODELS_DIR")
            .unwrap_or_else(|_| concat!(env!("CARGO_MANIFEST_DIR"), "/data/models").to_owned()),
    );
    assert!(
        models.join("whisper").exists(),
        "no models in {}: run scripts/models",
        models.display()
    );
    // The server's log, shown with a failing test's output.
    let _ = tracing_subscriber::fmt()
        .with_env_filter("info,whisper_rs=warn")
        .with_test_writer()
        .try_init();
    let mut config = None;
    let h = Hotline::start(|c| {
        c.agent.models_dir = Some(models);
        edit(c);
        config = Some(c.clone());
    });
    let agents = AgentService::new(&config.expect("configured"), None);
    h.engine.set_agents(agents.clone());
    h.rt.block_on(agents.warm_up());
    h
}

fn transcript(h: &Hotline) -> Vec<TranscriptLine> {
    h.events(|e| matches!(e, CallEvent::Transcript(l) if l.is_final))
        .into_iter()
        .filter_map(|e| match e {
            CallEvent::Transcript(l) => Some(l),
            _ => None,
        })
        .collect()
}

#[test]
fn the_demo_agent_takes_a_message_from_a_baresip_caller() {
    let mut h = hotline_with_agent(|_| {});
    // The agent opens with about four seconds of greeting and question;
    // the caller answers after it, then leaves a message.
    let source = peers::media::script_wav(&[
        (6.0, "My name is John."),
        (4.0, "Please call me back tomorrow morning."),
    ])
    .unwrap();
    let mut b = Baresip::start(&BaresipConfig {
        user: "caller".into(),
        source_wav: Some(source),
        pad_secs: 30,
        max_lifetime: Duration::from_secs(90),
        ..Default::default()
    })
    .unwrap();
    let sip = h.sip_addr();
    b.dial(&format!("sip:agent@127.0.0.1:{}", sip.port()))
        .unwrap();
    b.wait_event("CALL_ESTABLISHED", Duration::from_secs(10))
        .unwrap();
    let concluded = h.wait_for(Duration::from_secs(75), |seen| {
        seen.iter()
            .any(|(_, e)| matches!(e, CallEvent::AgentResult(_)))
    });
    b.wait_event("CALL_CLOSED", Duration::from_secs(10))
        .unwrap();
    let received = b.received_wav();
    let log = b.log();
    b.quit().unwrap();
    let lines = transcript(&h);
    assert!(
        concluded,
        "no conclusion; transcript: {lines:#?}\nbaresip: {log}"
    );

    // The agent spoke first, heard the name, took the message and said
    // goodbye; the agent (not the caller) hung up.
    let said: Vec<(&str, String)> = lines
        .iter()
        .map(|l| (l.speaker, l.text.to_lowercase()))
        .collect();
    assert_eq!(said[0].0, "agent", "{said:#?}");
    assert!(said[0].1.contains("demo agent"), "{said:#?}");
    let caller: Vec<&String> = said
        .iter()
        .filter(|(s, _)| *s == "caller")
        .map(|(_, t)| t)
        .collect();
    assert!(caller.iter().any(|t| t.contains("john")), "{said:#?}");
    assert!(caller.iter().any(|t| t.contains("tomorrow")), "{said:#?}");
    assert!(
        said.last()
            .is_some_and(|(s, t)| *s == "agent" && t.contains("goodbye")),
        "{said:#?}"
    );
    let result = h
        .events(|e| matches!(e, CallEvent::AgentResult(_)))
        .into_iter()
        .find_map(|e| match e {
            CallEvent::AgentResult(r) => Some(r),
            _ => None,
        })
        .unwrap();
    assert_eq!(result.outcome.as_deref(), Some("achieved"), "{result:?}");
    let data = result.structured_data.unwrap();
    assert_eq!(
        data["name"].as_str().map(str::to_lowercase).as_deref(),
        Some("john")
    );
    assert!(
        data["message"]
            .as_str()
            .is_some_and(|m| m.to_lowercase().contains("tomorrow")),
        "{data}"
    );
    let records = h.records();
    assert_eq!(records.len(), 1);
    assert_eq!(records[0].hangup.by, hotline::call::Party::Local);
    // Each turn was measured.
    let turns = h.events(|e| matches!(e, CallEvent::AgentTurn(_)));
    assert!(turns.len() >= 2, "{turns:?}");

    // What the caller heard is speech: several seconds of it.
    let received = received.expect("baresip recorded the call");
    let (rate, pcm) = audio::read_wav(&received).unwrap();
    assert!(audio::is_non_silent(&pcm));
    let heard = audio::active_fraction(&pcm, rate) * audio::duration_secs(&pcm, rate);
    assert!(heard > 4.0, "the caller heard {heard:.1} s of speech");
}

/// A local OpenAI-compatible server: streamed chat completions (SSE) with
/// a reply and an `end_call` tool call, and the after-call summary.
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
        /// The `Authorization` header of each request.
        pub auth: Arc<Mutex<Vec<String>>>,
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
        headers: axum::http::HeaderMap,
        body: Bytes,
    ) -> Response {
        let auth = headers
            .get("authorization")
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_owned();
        llm.auth.lock().unwrap().push(auth);
        let request: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
        llm.requests.lock().unwrap().push(request.clone());
        if request["stream"] != json!(true) {
            // The after-call summary: one JSON answer of the asked shape.
            let content = json!({"summary": "The caller needed help with an order."}).to_string();
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
        for piece in ["Sure, I've noted ", "your order question. ", "Goodbye!"] {
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

#[test]
fn an_llm_agent_streams_its_reply_and_ends_the_call_with_a_tool() {
    let server = llm::Llm::default();
    let base = llm::start(server.clone());
    let mut h = hotline_with_agent(|c| {
        c.providers.llm.kind = "openai".into();
        c.agent.openai.base_url = base;
        c.agent.openai.api_key = Some("sk-test".into());
        c.agent.openai.model = "test-model".into();
    });
    let source = peers::media::script_wav(&[(5.0, "I need help with my order.")]).unwrap();
    let mut b = Baresip::start(&BaresipConfig {
        user: "caller".into(),
        source_wav: Some(source),
        pad_secs: 30,
        max_lifetime: Duration::from_secs(60),
        ..Default::default()
    })
    .unwrap();
    b.dial(&format!("sip:agent@127.0.0.1:{}", h.sip_addr().port()))
        .unwrap();
    b.wait_event("CALL_ESTABLISHED", Duration::from_secs(10))
        .unwrap();
    let concluded = h.wait_for(Duration::from_secs(50), |seen| {
        seen.iter()
            .any(|(_, e)| matches!(e, CallEvent::AgentResult(_)))
    });
    b.wait_event("CALL_CLOSED", Duration::from_secs(10))
        .unwrap();
    let received = b.received_wav();
    b.quit().unwrap();
    let lines = transcript(&h);
    assert!(concluded, "no conclusion; transcript: {lines:#?}");

    let said: Vec<(&str, String)> = lines
        .iter()
        .map(|l| (l.speaker, l.text.to_lowercase()))
        .collect();
    assert_eq!(said[0].0, "agent", "{said:#?}");
    assert!(said[0].1.contains("how can i help"), "{said:#?}");
    assert!(
        said.iter()
            .any(|(s, t)| *s == "caller" && t.contains("order")),
        "{said:#?}"
    );
    // The streamed reply was said in full, then the tool hung up.
    assert_eq!(
        said.last().map(|(s, t)| (*s, t.as_str())),
        Some(("agent", "sure, i've noted your order question. goodbye!")),
        "{said:#?}"
    );
    assert_eq!(h.records()[0].hangup.by, hotline::call::Party::Local);
    // The model saw the greeting and the caller's words, and was offered
    // the call tools.
    let requests = server.requests.lock().unwrap().clone();
    let chat = requests
        .iter()
        .find(|r| r["stream"] == true)
        .expect("a streamed chat request");
    let messages = chat["messages"].to_string().to_lowercase();
    assert!(
        messages.contains("how can i help") && messages.contains("order"),
        "{messages}"
    );
    assert!(chat["tools"].to_string().contains("end_call"), "{chat}");
    // After the call: the summary from the same server.
    let result = h
        .events(|e| matches!(e, CallEvent::AgentResult(_)))
        .into_iter()
        .find_map(|e| match e {
            CallEvent::AgentResult(r) => Some(r),
            _ => None,
        })
        .unwrap();
    assert_eq!(
        result.summary.as_deref(),
        Some("The caller needed help with an order."),
        "{result:?}"
    );
    let received = received.expect("baresip recorded the call");
    let (rate, pcm) = audio::read_wav(&received).unwrap();
    let heard = audio::active_fraction(&pcm, rate) * audio::duration_secs(&pcm, rate);
    assert!(heard > 3.0, "the caller heard {heard:.1} s of speech");
}

/// 8 kHz audio: each part is a pause (seconds) and then `text` spoken.
fn script(parts: &[(f64, &str)]) -> Vec<i16> {
    let wav = peers::media::script_wav(parts).unwrap();
    peers::media::read_pcm(&wav).unwrap().1
}

/// Calls `sip:agent@` with sipp for the signalling and `talker` for the
/// audio, holding the call `hold` after the answer; returns the events.
fn call_agent(h: &mut Hotline, talker: &Talker, hold: Duration) -> peers::sipp::SippResult {
    let mut run = SippRun::uac(
        Scenario::uac_offer(Offer::PcmuDtmf, hold.as_millis() as u64).sdp_port(talker.port()),
        h.sip_addr(),
    );
    run.service = "agent".into();
    let uac = run.spawn().unwrap();
    let done = h.wait_for(hold + Duration::from_secs(20), |seen| {
        seen.iter()
            .any(|(_, e)| matches!(e, CallEvent::AgentResult(_)))
    });
    let uac = uac.wait().unwrap();
    assert!(done, "the agent call did not conclude");
    uac
}

#[test]
fn the_caller_cuts_the_greeting_short_and_the_agent_stops_at_once() {
    let mut h = hotline_with_agent(|_| {});
    // The greeting lasts about five seconds; the caller talks over it
    // after one.
    let caller = script(&[(1.0, "Hold on, I want to speak to a person please.")]);
    let talker = Talker::start(TalkerConfig {
        script: caller.clone(),
        echo: None,
    })
    .unwrap();
    let uac = call_agent(&mut h, &talker, Duration::from_secs(9));
    let talk = talker.finish();
    assert!(uac.all_ok(), "{}", uac.diagnostics());

    let onset = talk.onset(&caller, peers::audio::NON_SILENT_RMS).unwrap();
    let stopped = talk
        .stopped_after(onset, 15)
        .expect("the agent went quiet after the caller started");
    let took = stopped.saturating_sub(onset);
    eprintln!(
        "barge-in: caller onset at {onset:?}, agent's last loud packet at {stopped:?} ({took:?} later)"
    );
    // The greeting had seconds left: it stopped well before its end (the
    // bench measures the figure itself).
    assert!(took < Duration::from_millis(1000), "{took:?}");
    let lines = transcript(&h);
    let first = &lines[0];
    assert_eq!(first.speaker, "agent");
    assert!(first.interrupted, "{lines:#?}");
    let full = "Hello! You've reached the Hotline demo agent. May I have your name, please?";
    assert!(first.text.len() < full.len(), "{lines:#?}");
    assert!(
        full.starts_with(first.text.trim_end_matches(['.', ','])),
        "{lines:#?}"
    );
}

#[test]
fn the_agents_own_echo_at_minus_10_db_does_not_interrupt_it() {
    let mut h = hotline_with_agent(|_| {});
    // A silent caller on a line that echoes the agent back at −10 dB, 60
    // ms late.
    let talker = Talker::start(TalkerConfig {
        script: Vec::new(),
        echo: Some((0.316, 3)),
    })
    .unwrap();
    let uac = call_agent(&mut h, &talker, Duration::from_secs(7));
    let talk = talker.finish();
    assert!(uac.all_ok(), "{}", uac.diagnostics());
    let lines = transcript(&h);
    assert!(!lines.is_empty());
    assert!(lines.iter().all(|l| !l.interrupted), "{lines:#?}");
    assert_eq!(
        lines[0].text,
        "Hello! You've reached the Hotline demo agent. May I have your name, please?"
    );
    // The echo did reach the server (the peer sent the agent's audio back).
    assert!(
        talk.heard
            .iter()
            .filter(|h| h.rms > peers::audio::NON_SILENT_RMS)
            .count()
            > 100
    );
    let flushes = h.events(|e| matches!(e, CallEvent::AgentSpeaking { speaking: false }));
    assert!(flushes.len() <= 1, "{flushes:?}");
}

/// A menu flow: key 1 transfers to sales, key 2 says goodbye.
const MENU_FLOW: &str = r#"{"start": "menu", "nodes": [
  {"id": "menu", "type": "ask", "prompt": "Press 1 for sales, or 2 to end the call.",
   "choices": [{"keywords": ["sales"], "dtmf": "1", "next": "to_sales"},
               {"keywords": ["goodbye"], "dtmf": "2", "next": "bye"}],
   "no_match": {"reprompt": "Sorry, press 1 for sales, or 2 to end the call.", "next": "bye"}},
  {"id": "to_sales", "type": "transfer", "text": "Putting you through to sales.",
   "number": "+14155550123", "outcome": "achieved"},
  {"id": "bye", "type": "hangup", "text": "Goodbye!", "outcome": "not_achieved"}
]}"#;

#[test]
fn a_key_press_picks_a_menu_choice_and_the_agent_transfers_with_refer() {
    let flow = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(flow.path(), MENU_FLOW).unwrap();
    let mut h = hotline_with_agent(|c| c.agent.flow.file = Some(flow.path().to_owned()));
    // The caller says a word that picks nothing, then presses 1 (RFC 4733).
    let pcap = peers::pcap::speech_dtmf_pcap("Let me see.", "1").unwrap();
    let mut run = SippRun::uac(
        Scenario::uac_transfer(r"\+14155550123", 30_000).play_pcap(&pcap),
        h.sip_addr(),
    );
    run.service = "agent".into();
    run.timeout = Duration::from_secs(45);
    let uac = run.spawn().unwrap();
    let done = h.wait_for(Duration::from_secs(45), |seen| {
        seen.iter()
            .any(|(_, e)| matches!(e, CallEvent::AgentResult(_)))
    });
    let uac = uac.wait().unwrap();
    let lines = transcript(&h);
    assert!(done, "{lines:#?}");
    assert!(uac.all_ok(), "{lines:#?}\n{}", uac.diagnostics());
    let digits: String = h
        .events(|e| matches!(e, CallEvent::Dtmf { .. }))
        .into_iter()
        .filter_map(|e| match e {
            CallEvent::Dtmf { digit, .. } => Some(digit),
            _ => None,
        })
        .collect();
    assert_eq!(digits, "1");
    assert!(
        lines
            .iter()
            .any(|l| l.speaker == "agent" && l.text == "Putting you through to sales."),
        "{lines:#?}"
    );
    let records = h.records();
    assert_eq!(
        records[0].hangup.outcome,
        hotline::call::Outcome::Transferred
    );
}

#[test]
fn a_silent_caller_is_reprompted_then_the_agent_hangs_up() {
    let mut h = hotline_with_agent(|c| c.agent.silence_reprompt_secs = 2);
    let talker = Talker::start(TalkerConfig::default()).unwrap();
    let uac = {
        let mut run = SippRun::uac(
            Scenario::uac_wait_bye(60_000).sdp_port(talker.port()),
            h.sip_addr(),
        );
        run.service = "agent".into();
        run.timeout = Duration::from_secs(75);
        run.spawn().unwrap()
    };
    let done = h.wait_for(Duration::from_secs(70), |seen| {
        seen.iter()
            .any(|(_, e)| matches!(e, CallEvent::AgentResult(_)))
    });
    let uac = uac.wait().unwrap();
    drop(talker);
    let lines = transcript(&h);
    assert!(done, "{lines:#?}");
    assert!(uac.all_ok(), "{}", uac.diagnostics());
    // The flow's own no-input prompts, then its goodbye; the agent hung up.
    assert!(lines.iter().all(|l| l.speaker == "agent"), "{lines:#?}");
    assert!(
        lines
            .iter()
            .any(|l| l.text.contains("didn't hear anything")),
        "{lines:#?}"
    );
    assert!(lines.last().unwrap().text.contains("Goodbye"), "{lines:#?}");
    assert_eq!(h.records()[0].hangup.by, hotline::call::Party::Local);
}

#[test]
fn the_time_limit_ends_the_call_with_a_goodbye() {
    let mut h = hotline_with_agent(|c| c.agent.max_duration_secs = 10);
    // A caller who keeps talking, so silence never ends the call.
    let talker = Talker::start(TalkerConfig {
        script: script(&[
            (6.0, "My name is John."),
            (
                3.0,
                "I would like to leave a very long message about many things.",
            ),
        ]),
        echo: None,
    })
    .unwrap();
    let uac = {
        let mut run = SippRun::uac(
            Scenario::uac_wait_bye(40_000).sdp_port(talker.port()),
            h.sip_addr(),
        );
        run.service = "agent".into();
        run.timeout = Duration::from_secs(50);
        run.spawn().unwrap()
    };
    let done = h.wait_for(Duration::from_secs(45), |seen| {
        seen.iter()
            .any(|(_, e)| matches!(e, CallEvent::AgentResult(_)))
    });
    let uac = uac.wait().unwrap();
    drop(talker);
    let lines = transcript(&h);
    assert!(done, "{lines:#?}");
    assert!(uac.all_ok(), "{}", uac.diagnostics());
    let last = lines.iter().rev().find(|l| l.speaker == "agent").unwrap();
    assert!(last.text.contains("time limit"), "{lines:#?}");
    let r = &h.records()[0];
    assert_eq!(r.hangup.by, hotline::call::Party::Local);
    let answered = r.answered.unwrap();
    let lasted = r.ended.duration_since(answered).unwrap();
    assert!(lasted >= Duration::from_secs(10), "{lasted:?}");
}

/// Bring your own key: an organization's OpenAI key (`PATCH /v1/settings`)
/// is what its agents' LLM requests carry, unless the agent has its own;
/// the server's key is the fallback.
#[test]
fn an_organizations_own_key_reaches_its_agents_llm() {
    let server = llm::Llm::default();
    let base = llm::start(server.clone());
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let db = support::db::TestDb::sqlite().await;
        let org = db.store.ensure_org("acme").await.unwrap();
        db.store
            .set_org_settings(
                &org.id,
                &serde_json::json!({"provider_keys": {"openai": "sk-acme"}}),
            )
            .await
            .unwrap();
        let agent = |key: Option<&str>| hotline::store::NewAgent {
            name: "a".into(),
            system_prompt: "Help.".into(),
            first_message: None,
            voice: None,
            language: None,
            model: match key {
                Some(k) => serde_json::json!({"provider": "openai", "api_key": k}),
                None => serde_json::json!({"provider": "openai"}),
            },
            tools: serde_json::json!([]),
            voicemail_message: None,
            transfer_number: None,
            max_duration_secs: None,
        };
        let plain = db.store.create_agent(&org.id, &agent(None)).await.unwrap();
        let own = db
            .store
            .create_agent(&org.id, &agent(Some("sk-agent")))
            .await
            .unwrap();
        let mut config = hotline::config::Config::default();
        config.agent.openai.base_url = base;
        config.agent.openai.api_key = Some("sk-server".into());
        config.providers.stt.kind = "openai".into();
        config.providers.tts.kind = "espeak".into();
        let service = AgentService::new(&config, Some(db.store.clone()));
        for (agent_id, org_id) in [(&plain.id, Some(&org.id)), (&own.id, Some(&org.id))] {
            let request = hotline::agent::service::AgentRequest {
                org_id: org_id.cloned(),
                agent_id: Some(agent_id.clone()),
                ..Default::default()
            };
            let prepared = service
                .prepare(&request, &hotline::agent::provider::CallInfo::default())
                .await
                .unwrap();
            let mut session = prepared
                .pipeline()
                .expect("a pipeline agent")
                .brain
                .start_call(&hotline::agent::provider::CallInfo::default());
            let conversation = hotline::agent::provider::Conversation {
                system: "Help.".into(),
                messages: vec![hotline::agent::provider::Message::User { text: "Hi".into() }],
                tools: Vec::new(),
            };
            let mut rx = session.respond(&conversation);
            while rx.recv().await.is_some() {}
        }
        // The server's own agent (no organization) uses the server's key.
        let prepared = service
            .prepare(
                &hotline::agent::service::AgentRequest {
                    system_prompt: Some("Help.".into()),
                    ..Default::default()
                },
                &hotline::agent::provider::CallInfo::default(),
            )
            .await
            .unwrap();
        let mut session = prepared
            .pipeline()
            .expect("a pipeline agent")
            .brain
            .start_call(&hotline::agent::provider::CallInfo::default());
        let conversation = hotline::agent::provider::Conversation {
            system: "Help.".into(),
            messages: vec![hotline::agent::provider::Message::User { text: "Hi".into() }],
            tools: Vec::new(),
        };
        let mut rx = session.respond(&conversation);
        while rx.recv().await.is_some() {}
    });
    let auth = server.auth.lock().unwrap().clone();
    assert_eq!(
        auth,
        ["Bearer sk-acme", "Bearer sk-agent", "Bearer sk-server"],
        "organization key, agent key, server key"
    );
}
