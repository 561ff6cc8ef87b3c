//! The OpenAI-compatible providers against a local server that speaks the
//! real wire protocols: SSE `chat.completion.chunk` streams, error statuses,
//! streamed PCM speech, multipart transcription and the realtime
//! transcription WebSocket. Nothing leaves 127.0.0.1.

use std::collections::HashMap;
use std::time::Duration;

use hotline::agent::openai::{
    CallSummary, DeepgramConfig, DeepgramStt, ElevenLabsConfig, ElevenLabsTts, OpenAiBrain,
    OpenAiConfig, OpenAiStt, OpenAiSttConfig, OpenAiSummarizer, OpenAiTts, OpenAiTtsConfig,
    Outcome, RealtimeProtocol, SttTransport, SummaryRequest,
};
use hotline::agent::{
    Brain, BrainEvent, CallInfo, Conversation, Message, Stt, SttEvent, SttOptions, SttStream,
    ToolCall, ToolSpec, Transcript, Tts, TtsEvent, TtsOptions, TtsStream,
};
use serde_json::{Value, json};
use tokio::sync::mpsc;

use mock::{Reply, Server};

/// Generous bound for anything that should happen promptly; a test that
/// hits it has failed, it never measures speed.
const PATIENCE: Duration = Duration::from_secs(20);

#[path = "support/llm.rs"]
mod mock;

// ------------------------------------------------------------- brain ---

fn chunk(delta: Value, finish: Option<&str>) -> Value {
    json!({
        "id": "chatcmpl-1", "object": "chat.completion.chunk", "created": 1_700_000_000,
        "model": "test-model", "system_fingerprint": null,
        "choices": [{"index": 0, "delta": delta, "logprobs": null, "finish_reason": finish}]
    })
}

/// An SSE body of `events` and `[DONE]`, cut into `piece`-byte writes so
/// that events straddle reads.
fn sse(events: &[Value], piece: usize) -> Vec<Vec<u8>> {
    let mut body = String::new();
    for e in events {
        body.push_str(&format!("data: {e}\n\n"));
    }
    body.push_str("data: [DONE]\n\n");
    body.into_bytes()
        .chunks(piece)
        .map(<[u8]>::to_vec)
        .collect()
}

fn sse_reply(events: &[Value]) -> Reply {
    Reply::Stream {
        content_type: "text/event-stream",
        pieces: sse(events, 37),
        gap: Duration::ZERO,
        stall: false,
    }
}

fn brain_config(server: &Server) -> OpenAiConfig {
    OpenAiConfig {
        base_url: server.base(),
        api_key: Some("sk-test-123".into()),
        model: "test-model".into(),
        temperature: Some(0.3),
        max_tokens: Some(150),
        connect_timeout_ms: 2_000,
        first_token_timeout_ms: 5_000,
        idle_timeout_ms: 5_000,
        total_timeout_ms: 15_000,
        max_retries: 2,
        max_retry_delay_ms: 2_000,
        ..Default::default()
    }
}

async fn collect(mut rx: mpsc::Receiver<BrainEvent>) -> Vec<BrainEvent> {
    let mut out = Vec::new();
    loop {
        match tokio::time::timeout(PATIENCE, rx.recv()).await {
            Ok(Some(ev)) => out.push(ev),
            Ok(None) => return out,
            Err(_) => panic!("reply stream neither ended nor progressed; so far {out:?}"),
        }
    }
}

fn hello() -> Conversation {
    Conversation {
        system: "You are a phone agent.".into(),
        messages: vec![Message::User {
            text: "Hello?".into(),
        }],
        tools: vec![],
    }
}

fn assert_error(events: &[BrainEvent], retryable: bool, needle: &str) {
    match events {
        [BrainEvent::Error(e)] => {
            assert_eq!(e.provider, "openai");
            assert_eq!(e.retryable, retryable, "{e}");
            assert!(e.message.contains(needle), "{e}");
            assert!(!e.message.contains("sk-test-123"), "{e}");
        }
        other => panic!("expected one error, got {other:?}"),
    }
}

#[tokio::test]
async fn brain_streams_text_and_reassembles_tool_calls() {
    let server = Server::start().await;
    server.push(sse_reply(&[
        chunk(json!({"role": "assistant", "content": ""}), None),
        chunk(json!({"content": "Let me "}), None),
        chunk(json!({"content": "check that."}), None),
        chunk(
            json!({"tool_calls": [{"index": 0, "id": "call_abc", "type": "function",
                    "function": {"name": "lookup_booking", "arguments": ""}}]}),
            None,
        ),
        chunk(
            json!({"tool_calls": [{"index": 0, "function": {"arguments": "{\"name\": \"Ad"}}]}),
            None,
        ),
        chunk(
            json!({"tool_calls": [{"index": 1, "id": "call_def", "type": "function",
                    "function": {"name": "note", "arguments": "{\"text\":"}}]}),
            None,
        ),
        chunk(
            json!({"tool_calls": [{"index": 0, "function": {"arguments": "a\", \"day\": 3}"}}]}),
            None,
        ),
        chunk(
            json!({"tool_calls": [{"index": 1, "function": {"arguments": "\"vip\"}"}}]}),
            None,
        ),
        chunk(json!({}), Some("tool_calls")),
        // The usage chunk some servers send last: no choices.
        json!({"id": "chatcmpl-1", "object": "chat.completion.chunk", "created": 1,
               "model": "test-model", "choices": [],
               "usage": {"prompt_tokens": 9, "completion_tokens": 12, "total_tokens": 21}}),
    ]));
    let brain = OpenAiBrain::new(brain_config(&server)).unwrap();
    assert_eq!(brain.name(), "openai");
    let mut session = brain.start_call(&CallInfo::default());
    let conversation = Conversation {
        system: "You are a booking agent.".into(),
        messages: vec![
            Message::User {
                text: "I booked for Ada.".into(),
            },
            Message::Assistant {
                text: "Great, which".into(),
                interrupted: true,
                tool_calls: vec![],
            },
            Message::User {
                text: "Check it please.".into(),
            },
            Message::Assistant {
                text: String::new(),
                interrupted: false,
                tool_calls: vec![ToolCall {
                    id: "call_0".into(),
                    name: "lookup_booking".into(),
                    arguments: json!({"name": "Ada"}),
                }],
            },
            Message::Tool {
                call_id: "call_0".into(),
                content: "{\"found\":false}".into(),
            },
            Message::Dtmf {
                digits: "12#".into(),
            },
        ],
        tools: vec![ToolSpec {
            name: "lookup_booking".into(),
            description: "Finds a booking".into(),
            parameters: json!({"type": "object", "properties": {"name": {"type": "string"}},
                               "required": ["name"]}),
        }],
    };
    let events = collect(session.respond(&conversation)).await;
    assert_eq!(
        events,
        vec![
            BrainEvent::Text("Let me ".into()),
            BrainEvent::Text("check that.".into()),
            BrainEvent::ToolCall(ToolCall {
                id: "call_abc".into(),
                name: "lookup_booking".into(),
                arguments: json!({"name": "Ada", "day": 3}),
            }),
            BrainEvent::ToolCall(ToolCall {
                id: "call_def".into(),
                name: "note".into(),
                arguments: json!({"text": "vip"}),
            }),
            BrainEvent::Done,
        ]
    );

    let requests = server.requests();
    assert_eq!(requests.len(), 1);
    let r = &requests[0];
    assert_eq!(
        (r.method.as_str(), r.path.as_str()),
        ("POST", "/v1/chat/completions")
    );
    assert_eq!(r.header("authorization"), Some("Bearer sk-test-123"));
    let body = r.json();
    assert_eq!(body["model"], "test-model");
    assert_eq!(body["stream"], true);
    assert!((body["temperature"].as_f64().unwrap() - 0.3).abs() < 1e-6);
    // Not OpenAI's own API: the limit goes in the field everyone reads.
    assert_eq!(body["max_tokens"], 150);
    assert!(body.get("max_completion_tokens").is_none());
    assert_eq!(
        body["messages"],
        json!([
            {"role": "system", "content": "You are a booking agent."},
            {"role": "user", "content": "I booked for Ada."},
            {"role": "assistant", "content": "Great, which"},
            {"role": "user", "content": "Check it please."},
            {"role": "assistant", "tool_calls": [{"id": "call_0", "type": "function",
                "function": {"name": "lookup_booking", "arguments": "{\"name\":\"Ada\"}"}}]},
            {"role": "tool", "tool_call_id": "call_0", "content": "{\"found\":false}"},
            {"role": "user", "content": "[The caller pressed on the keypad: 12#]"}
        ])
    );
    assert_eq!(
        body["tools"],
        json!([{"type": "function", "function": {
            "name": "lookup_booking", "description": "Finds a booking",
            "parameters": {"type": "object", "properties": {"name": {"type": "string"}},
                           "required": ["name"]}}}])
    );
}

#[tokio::test]
async fn brain_retries_rate_limits_and_server_errors_before_the_first_token() {
    let server = Server::start().await;
    server.push(Reply::Status {
        status: 429,
        headers: vec![
            ("content-type", "application/json".into()),
            ("retry-after", "1".into()),
        ],
        body: json!({"error": {"message": "Rate limit reached", "type": "requests",
                                "code": "rate_limit_exceeded", "param": null}})
        .to_string(),
    });
    server.push(Reply::Status {
        status: 500,
        headers: vec![],
        body: "<html>oops</html>".into(),
    });
    server.push(sse_reply(&[chunk(json!({"content": "Hi!"}), Some("stop"))]));
    let brain = OpenAiBrain::new(brain_config(&server)).unwrap();
    let started = tokio::time::Instant::now();
    let events = collect(brain.start_call(&CallInfo::default()).respond(&hello())).await;
    assert_eq!(
        events,
        vec![BrainEvent::Text("Hi!".into()), BrainEvent::Done]
    );
    assert_eq!(server.requests().len(), 3);
    // The 429's Retry-After was honoured.
    assert!(started.elapsed() >= Duration::from_secs(1));
}

#[tokio::test]
async fn brain_gives_up_on_retries_it_cannot_afford() {
    let server = Server::start().await;
    // Asked to wait longer than the ceiling: no retry, a retryable error.
    server.push(Reply::Status {
        status: 429,
        headers: vec![("retry-after", "30".into())],
        body: json!({"error": {"message": "Slow down", "type": "requests", "code": null,
                                "param": null}})
        .to_string(),
    });
    let brain = OpenAiBrain::new(brain_config(&server)).unwrap();
    let events = collect(brain.start_call(&CallInfo::default()).respond(&hello())).await;
    assert_error(&events, true, "rate limited (HTTP 429): Slow down");
    assert_eq!(server.requests().len(), 1);

    // Out of quota is a 429 that no wait fixes.
    server.push(Reply::error(
        429,
        json!({"error": {"message": "You exceeded your current quota", "type": "insufficient_quota",
                         "code": "insufficient_quota", "param": null}}),
    ));
    let events = collect(brain.start_call(&CallInfo::default()).respond(&hello())).await;
    assert_error(&events, false, "out of quota");
    assert_eq!(server.requests().len(), 2);

    // Server errors until the retries run out.
    for _ in 0..3 {
        server.push(Reply::error(503, json!({"error": "overloaded"})));
    }
    let events = collect(brain.start_call(&CallInfo::default()).respond(&hello())).await;
    assert_error(&events, true, "server error (HTTP 503): overloaded");
    assert_eq!(server.requests().len(), 5);
}

#[tokio::test]
async fn brain_reports_auth_and_not_found_clearly_without_retrying() {
    let server = Server::start().await;
    server.push(Reply::error(
        401,
        json!({"error": {"message": "Incorrect API key provided: sk-tes***123.",
                         "type": "invalid_request_error", "code": "invalid_api_key", "param": null}}),
    ));
    // Ollama's error shape.
    server.push(Reply::error(
        404,
        json!({"error": "model \"test-model\" not found, try pulling it first"}),
    ));
    let brain = OpenAiBrain::new(brain_config(&server)).unwrap();
    let events = collect(brain.start_call(&CallInfo::default()).respond(&hello())).await;
    assert_error(&events, false, "authentication failed");
    let events = collect(brain.start_call(&CallInfo::default()).respond(&hello())).await;
    assert_error(
        &events,
        false,
        "not found (check base_url and model) (HTTP 404): model \"test-model\" not found",
    );
    assert_eq!(server.requests().len(), 2);
}

#[tokio::test]
async fn brain_retries_connection_failures_then_reports_them() {
    // A port nobody listens on.
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let config = OpenAiConfig {
        base_url: format!("http://127.0.0.1:{port}/v1"),
        max_retries: 1,
        ..OpenAiConfig::default()
    };
    let brain = OpenAiBrain::new(config).unwrap();
    let events = collect(brain.start_call(&CallInfo::default()).respond(&hello())).await;
    assert_error(&events, true, "could not connect");
}

#[tokio::test]
async fn brain_times_out_a_stalled_stream() {
    let server = Server::start().await;
    let config = OpenAiConfig {
        first_token_timeout_ms: 400,
        idle_timeout_ms: 400,
        ..brain_config(&server)
    };
    let brain = OpenAiBrain::new(config).unwrap();

    // Headers and a role-only chunk, then nothing: no first token.
    server.push(Reply::Stream {
        content_type: "text/event-stream",
        pieces: vec![
            format!("data: {}\n\n", chunk(json!({"role": "assistant"}), None)).into_bytes(),
        ],
        gap: Duration::ZERO,
        stall: true,
    });
    let events = collect(brain.start_call(&CallInfo::default()).respond(&hello())).await;
    assert_error(&events, true, "first token timed out after 400 ms");
    server.wait_closed().await;

    // Text, then silence: reported, never retried (the caller heard it).
    server.push(Reply::Stream {
        content_type: "text/event-stream",
        pieces: vec![
            format!("data: {}\n\n", chunk(json!({"content": "Well,"}), None)).into_bytes(),
        ],
        gap: Duration::ZERO,
        stall: true,
    });
    let events = collect(brain.start_call(&CallInfo::default()).respond(&hello())).await;
    assert_eq!(events[0], BrainEvent::Text("Well,".into()));
    assert_error(&events[1..], true, "no data");
    server.wait_closed().await;
    assert_eq!(server.requests().len(), 2);
}

#[tokio::test]
async fn brain_retries_a_stream_that_fails_before_its_first_token() {
    let server = Server::start().await;
    server.push(sse_reply(&[
        json!({"error": {"message": "The server had an error", "type": "server_error"}}),
    ]));
    server.push(sse_reply(&[chunk(
        json!({"content": "Recovered."}),
        Some("stop"),
    )]));
    let brain = OpenAiBrain::new(brain_config(&server)).unwrap();
    let events = collect(brain.start_call(&CallInfo::default()).respond(&hello())).await;
    assert_eq!(
        events,
        vec![BrainEvent::Text("Recovered.".into()), BrainEvent::Done]
    );
    assert_eq!(server.requests().len(), 2);
}

#[tokio::test]
async fn dropping_the_reply_receiver_closes_the_connection() {
    let server = Server::start().await;
    server.push(Reply::Stream {
        content_type: "text/event-stream",
        pieces: vec![
            format!(
                "data: {}\n\n",
                chunk(json!({"content": "A long story"}), None)
            )
            .into_bytes(),
        ],
        gap: Duration::ZERO,
        stall: true,
    });
    let brain = OpenAiBrain::new(brain_config(&server)).unwrap();
    let mut rx = brain.start_call(&CallInfo::default()).respond(&hello());
    assert_eq!(
        rx.recv().await,
        Some(BrainEvent::Text("A long story".into()))
    );
    drop(rx);
    server.wait_closed().await;
}

#[tokio::test]
async fn brain_speaks_bad_tool_arguments_as_an_error() {
    let server = Server::start().await;
    server.push(sse_reply(&[
        chunk(
            json!({"tool_calls": [{"index": 0, "id": "c", "function": {"name": "f", "arguments": "{\"a\": "}}]}),
            None,
        ),
        chunk(json!({}), Some("length")),
    ]));
    let brain = OpenAiBrain::new(brain_config(&server)).unwrap();
    let events = collect(brain.start_call(&CallInfo::default()).respond(&hello())).await;
    assert_error(
        &events,
        true,
        "tool call 0 (f): arguments are not valid JSON",
    );
}

// ----------------------------------------------------------- summary ---

fn completion(content: &str) -> Value {
    json!({
        "id": "chatcmpl-2", "object": "chat.completion", "created": 1_700_000_000,
        "model": "test-model",
        "choices": [{"index": 0, "finish_reason": "stop", "logprobs": null,
                     "message": {"role": "assistant", "content": content, "refusal": null}}],
        "usage": {"prompt_tokens": 100, "completion_tokens": 30, "total_tokens": 130}
    })
}

#[tokio::test]
async fn summary_asks_for_a_json_schema_and_checks_the_answer() {
    let server = Server::start().await;
    let summarizer = OpenAiSummarizer::new(brain_config(&server)).unwrap();
    let data_schema = json!({
        "type": "object",
        "properties": {"name": {"type": "string"}, "party": {"type": "integer"}},
        "required": ["name", "party"]
    });
    let transcript = [
        Message::User {
            text: "A table for four, name of Ada.".into(),
        },
        Message::Assistant {
            text: "Booked for four, Ada.".into(),
            interrupted: false,
            tool_calls: vec![],
        },
    ];
    let request = SummaryRequest {
        transcript: &transcript,
        objective: Some("Book a table"),
        schema: Some(&data_schema),
    };
    server.push(Reply::json(completion(
        &json!({"summary": "Ada booked a table for four.", "outcome": "achieved",
                "structured_data": {"name": "Ada", "party": 4}})
        .to_string(),
    )));
    let summary = summarizer.summarize(&request).await.unwrap();
    assert_eq!(
        summary,
        CallSummary {
            summary: "Ada booked a table for four.".into(),
            outcome: Some(Outcome::Achieved),
            structured_data: Some(json!({"name": "Ada", "party": 4})),
        }
    );
    let r = &server.requests()[0];
    assert_eq!(r.path, "/v1/chat/completions");
    assert_eq!(r.header("authorization"), Some("Bearer sk-test-123"));
    let body = r.json();
    assert_eq!(body["model"], "test-model");
    assert_eq!(body["stream"], false);
    assert_eq!(body["response_format"]["type"], "json_schema");
    let schema = &body["response_format"]["json_schema"]["schema"];
    assert_eq!(schema["properties"]["structured_data"], data_schema);
    assert_eq!(
        schema["properties"]["outcome"]["enum"],
        json!(["achieved", "partial", "not_achieved"])
    );
    assert!(
        body["messages"][0]["content"]
            .as_str()
            .unwrap()
            .contains("Book a table")
    );
    assert_eq!(
        body["messages"][1]["content"],
        "Caller: A table for four, name of Ada.\nAgent: Booked for four, Ada.\n"
    );

    // A model that ignored the shape: a clear error, no record.
    server.push(Reply::json(completion(
        &json!({"summary": "Booked.", "outcome": "achieved", "structured_data": {"name": "Ada"}})
            .to_string(),
    )));
    let e = summarizer.summarize(&request).await.unwrap_err();
    assert!(
        e.message
            .contains("does not fit its schema: $: missing required field \"party\""),
        "{e}"
    );

    // Failures before an answer are retried like the brain's.
    server.push(Reply::error(502, json!({"error": "bad gateway"})));
    server.push(Reply::json(completion(r#"{"summary": "Short call."}"#)));
    let bare = SummaryRequest {
        transcript: &transcript,
        ..Default::default()
    };
    let summary = summarizer.summarize(&bare).await.unwrap();
    assert_eq!(summary.summary, "Short call.");
    assert_eq!((summary.outcome, summary.structured_data), (None, None));
    let body = server.requests()[3].json();
    assert_eq!(
        body["response_format"]["json_schema"]["schema"]["required"],
        json!(["summary"])
    );
    assert_eq!(server.requests().len(), 4);
}

// --------------------------------------------------------------- TTS ---

fn tts_config(server: &Server) -> OpenAiTtsConfig {
    OpenAiTtsConfig {
        base_url: server.base(),
        api_key: Some("sk-tts".into()),
        model: "gpt-4o-mini-tts".into(),
        voice: "coral".into(),
        max_retry_delay_ms: 1_000,
        ..Default::default()
    }
}

/// `n` samples of a ramp that starts at `from`, as little-endian bytes cut
/// into the odd sizes of `cuts` (cycled).
fn pcm_pieces(from: i16, n: usize, cuts: &[usize]) -> (Vec<i16>, Vec<Vec<u8>>) {
    let samples: Vec<i16> = (0..n).map(|i| from.wrapping_add((i * 37) as i16)).collect();
    let bytes: Vec<u8> = samples.iter().flat_map(|s| s.to_le_bytes()).collect();
    let mut pieces = Vec::new();
    let mut at = 0;
    for cut in cuts.iter().cycle() {
        if at >= bytes.len() {
            break;
        }
        let end = (at + cut).min(bytes.len());
        pieces.push(bytes[at..end].to_vec());
        at = end;
    }
    (samples, pieces)
}

fn pcm_reply(pieces: Vec<Vec<u8>>, gap: Duration, stall: bool) -> Reply {
    Reply::Stream {
        content_type: "application/octet-stream",
        pieces,
        gap,
        stall,
    }
}

async fn next_tts(audio: &mut mpsc::Receiver<TtsEvent>) -> Option<TtsEvent> {
    tokio::time::timeout(PATIENCE, audio.recv())
        .await
        .expect("TTS stream stalled")
}

#[tokio::test]
async fn tts_streams_pcm_in_segment_order_across_odd_chunk_boundaries() {
    let server = Server::start().await;
    let (first, first_pieces) = pcm_pieces(-1000, 2_400, &[333, 1, 1001, 7, 64]);
    let (second, second_pieces) = pcm_pieces(500, 1_201, &[999, 2, 5]);
    server.push(pcm_reply(first_pieces, Duration::from_millis(5), false));
    server.push(pcm_reply(second_pieces, Duration::ZERO, false));
    let tts = OpenAiTts::new(OpenAiTtsConfig {
        instructions: Some("Warm and calm.".into()),
        ..tts_config(&server)
    })
    .unwrap();
    assert_eq!(tts.name(), "openai");
    let TtsStream { text, mut audio } = tts.start(&TtsOptions::default());
    text.send("Hello there.".into()).await.unwrap();
    text.send("   ".into()).await.unwrap();
    text.send("How can I help?".into()).await.unwrap();
    drop(text);

    let mut got: [Vec<i16>; 3] = Default::default();
    let mut order = Vec::new();
    while let Some(ev) = next_tts(&mut audio).await {
        match ev {
            TtsEvent::Audio { segment, chunk } => {
                assert_eq!(chunk.rate, 24_000);
                assert!(!chunk.samples.is_empty());
                assert!(
                    !order.contains(&("done", segment)),
                    "audio after its SegmentDone"
                );
                got[segment].extend(chunk.samples);
            }
            TtsEvent::SegmentDone { segment } => order.push(("done", segment)),
            TtsEvent::Error(e) => panic!("{e}"),
        }
    }
    assert_eq!(order, [("done", 0), ("done", 1), ("done", 2)]);
    assert_eq!(got[0], first);
    assert!(got[1].is_empty());
    assert_eq!(got[2], second);

    let requests = server.requests();
    assert_eq!(requests.len(), 2, "the blank segment needs no request");
    assert_eq!(requests[0].path, "/v1/audio/speech");
    assert_eq!(requests[0].header("authorization"), Some("Bearer sk-tts"));
    assert_eq!(
        requests[0].json(),
        json!({"model": "gpt-4o-mini-tts", "input": "Hello there.", "voice": "coral",
               "response_format": "pcm", "instructions": "Warm and calm."})
    );
    assert_eq!(requests[1].json()["input"], "How can I help?");
}

#[tokio::test]
async fn tts_fetches_a_bounded_lookahead_and_cancels_on_drop() {
    let server = Server::start().await;
    let (_, pieces) = pcm_pieces(0, 480, &[960]);
    // Segment 0 plays one chunk, then its stream hangs open.
    server.push(pcm_reply(pieces.clone(), Duration::ZERO, true));
    server.push(pcm_reply(pieces.clone(), Duration::ZERO, true));
    server.push(pcm_reply(pieces, Duration::ZERO, true));
    let tts = OpenAiTts::new(tts_config(&server)).unwrap();
    let TtsStream { text, mut audio } = tts.start(&TtsOptions {
        voice: Some("verse".into()),
        language: None,
    });
    for s in ["One.", "Two.", "Three."] {
        text.send(s.into()).await.unwrap();
    }
    match next_tts(&mut audio).await {
        Some(TtsEvent::Audio { segment: 0, chunk }) => assert_eq!(chunk.samples.len(), 480),
        other => panic!("{other:?}"),
    }
    // The next segment's request runs while segment 0 plays…
    let waited = tokio::time::Instant::now();
    while server.requests().len() < 2 {
        assert!(waited.elapsed() < PATIENCE, "segment 1 was never requested");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    // …but not the one after it (lookahead 1).
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(server.requests().len(), 2);
    assert_eq!(server.requests()[1].json()["voice"], "verse");
    drop(audio);
    // Both open responses are abandoned.
    server.wait_closed().await;
    server.wait_closed().await;
}

#[tokio::test]
async fn tts_retries_before_audio_and_reports_what_it_cannot_fix() {
    let server = Server::start().await;
    let (samples, pieces) = pcm_pieces(7, 100, &[51]);
    server.push(Reply::Status {
        status: 429,
        headers: vec![("retry-after-ms", "50".into())],
        body: json!({"error": {"message": "busy", "type": "requests", "code": null}}).to_string(),
    });
    server.push(pcm_reply(pieces, Duration::ZERO, false));
    server.push(Reply::error(
        400,
        json!({"error": {"message": "Invalid voice 'nope'", "type": "invalid_request_error",
                         "code": null}}),
    ));
    let tts = OpenAiTts::new(tts_config(&server)).unwrap();
    let TtsStream { text, mut audio } = tts.start(&TtsOptions::default());
    text.send("First.".into()).await.unwrap();
    let mut got = Vec::new();
    loop {
        match next_tts(&mut audio).await {
            Some(TtsEvent::Audio { segment: 0, chunk }) => got.extend(chunk.samples),
            Some(TtsEvent::SegmentDone { segment: 0 }) => break,
            other => panic!("{other:?}"),
        }
    }
    assert_eq!(got, samples);
    // Sent only now, so that the script's replies go to the right segment.
    text.send("Second.".into()).await.unwrap();
    drop(text);
    match next_tts(&mut audio).await {
        Some(TtsEvent::Error(e)) => {
            assert!(!e.retryable);
            assert!(
                e.message
                    .contains("request rejected (HTTP 400): Invalid voice 'nope'"),
                "{e}"
            );
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(next_tts(&mut audio).await, None);
    assert_eq!(server.requests().len(), 3);
}

// --------------------------------------------------------------- STT ---

fn stt_config(base: String) -> OpenAiSttConfig {
    OpenAiSttConfig {
        base_url: base,
        api_key: Some("sk-stt".into()),
        model: "gpt-4o-mini-transcribe".into(),
        language: Some("en".into()),
        max_retry_delay_ms: 1_000,
        ..Default::default()
    }
}

/// A 440 Hz tone at 16 kHz.
fn tone(samples: usize) -> Vec<i16> {
    (0..samples)
        .map(|i| (8000.0 * (2.0 * std::f64::consts::PI * 440.0 * i as f64 / 16_000.0).sin()) as i16)
        .collect()
}

async fn send_utterance(audio: mpsc::Sender<Vec<i16>>, samples: &[i16]) {
    for frame in samples.chunks(320) {
        audio.send(frame.to_vec()).await.unwrap();
    }
}

async fn next_stt(events: &mut mpsc::Receiver<SttEvent>) -> Option<SttEvent> {
    tokio::time::timeout(PATIENCE, events.recv())
        .await
        .expect("STT stream stalled")
}

/// A form part: filename, content type, bytes.
type Part = (Option<String>, Option<String>, Vec<u8>);

/// The parts of a multipart/form-data body: name → (filename, content
/// type, bytes).
fn multipart(content_type: &str, body: &[u8]) -> HashMap<String, Part> {
    let boundary = content_type
        .split("boundary=")
        .nth(1)
        .expect("multipart boundary")
        .trim_matches('"');
    let delimiter = format!("--{boundary}").into_bytes();
    let mut parts = HashMap::new();
    let mut rest = body;
    while let Some(at) = find(rest, &delimiter) {
        rest = &rest[at + delimiter.len()..];
        if rest.starts_with(b"--") {
            break;
        }
        let head_end = find(rest, b"\r\n\r\n").expect("part headers");
        let head = String::from_utf8_lossy(&rest[..head_end]).to_string();
        let content = &rest[head_end + 4..];
        let end = find(content, &delimiter).expect("part end");
        let value = content[..end - 2].to_vec(); // the CRLF before the delimiter
        let field = |key: &str| {
            head.split(';')
                .find_map(|p| p.trim().strip_prefix(&format!("{key}=\"")))
                .map(|v| v.split('"').next().unwrap().to_owned())
        };
        let ctype = head.lines().find_map(|l| {
            l.to_ascii_lowercase()
                .strip_prefix("content-type:")
                .map(|v| v.trim().to_owned())
        });
        parts.insert(
            field("name").expect("part name"),
            (field("filename"), ctype, value),
        );
        rest = &content[end..];
    }
    parts
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

#[tokio::test]
async fn stt_posts_each_utterance_as_wav_and_returns_the_text() {
    let server = Server::start().await;
    server.push(Reply::json(
        json!({"text": " Hello there. ", "usage": {"type": "duration", "seconds": 1}}),
    ));
    let stt = OpenAiStt::new(stt_config(server.base())).unwrap();
    assert_eq!(stt.name(), "openai");
    let utterance = tone(16_000);
    let SttStream { audio, mut events } = stt.start(&SttOptions {
        language: Some("en-GB".into()),
        partials: true,
    });
    send_utterance(audio, &utterance).await;
    assert_eq!(
        next_stt(&mut events).await,
        Some(SttEvent::Final(Transcript {
            text: "Hello there.".into(),
            start_ms: 0,
            end_ms: 1000,
        }))
    );
    assert_eq!(next_stt(&mut events).await, None);

    let r = &server.requests()[0];
    assert_eq!(
        (r.method.as_str(), r.path.as_str()),
        ("POST", "/v1/audio/transcriptions")
    );
    assert_eq!(r.header("authorization"), Some("Bearer sk-stt"));
    let parts = multipart(r.header("content-type").unwrap(), &r.body);
    assert_eq!(parts["model"].2, b"gpt-4o-mini-transcribe");
    assert_eq!(parts["language"].2, b"en");
    assert_eq!(parts["response_format"].2, b"json");
    let (filename, ctype, wav) = &parts["file"];
    assert_eq!(filename.as_deref(), Some("utterance.wav"));
    assert_eq!(ctype.as_deref(), Some("audio/wav"));
    let wav = hotline_media::wav::read_wav(wav).unwrap();
    assert_eq!((wav.format.sample_rate, wav.format.channels), (16_000, 1));
    assert_eq!(wav.to_mono(), utterance);

    // Too short to hold a word: no request at all.
    let SttStream { audio, mut events } = stt.start(&SttOptions::default());
    send_utterance(audio, &tone(800)).await;
    match next_stt(&mut events).await {
        Some(SttEvent::Final(t)) => assert_eq!((t.text.as_str(), t.end_ms), ("", 50)),
        other => panic!("{other:?}"),
    }
    assert_eq!(server.requests().len(), 1);
}

#[tokio::test]
async fn stt_retries_server_errors_and_reports_rejections() {
    let server = Server::start().await;
    server.push(Reply::error(
        503,
        json!({"error": {"message": "overloaded", "type": "server_error"}}),
    ));
    server.push(Reply::json(json!({"text": "Second time lucky."})));
    server.push(Reply::error(
        400,
        json!({"error": {"message": "Audio file might be corrupted", "type": "invalid_request_error",
                         "code": "invalid_value"}}),
    ));
    let stt = OpenAiStt::new(stt_config(server.base())).unwrap();
    let SttStream { audio, mut events } = stt.start(&SttOptions::default());
    send_utterance(audio, &tone(8_000)).await;
    match next_stt(&mut events).await {
        Some(SttEvent::Final(t)) => assert_eq!(t.text, "Second time lucky."),
        other => panic!("{other:?}"),
    }
    let SttStream { audio, mut events } = stt.start(&SttOptions::default());
    send_utterance(audio, &tone(8_000)).await;
    match next_stt(&mut events).await {
        Some(SttEvent::Error(e)) => {
            assert!(!e.retryable);
            assert!(
                e.message
                    .contains("HTTP 400): Audio file might be corrupted"),
                "{e}"
            );
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(server.requests().len(), 3);
}

mod realtime {
    //! A fake realtime transcription server. Each committed piece is
    //! "transcribed" as `heard N` (N = 24 kHz samples in it), streamed as
    //! two deltas and a completion. With voice detection asked for, the
    //! first 0.5 s is committed on its own, as a pause would.

    use std::sync::{Arc, Mutex};

    use axum::Router;
    use axum::extract::ws::{Message, WebSocket, WebSocketUpgrade};
    use axum::extract::{RawQuery, State};
    use axum::http::HeaderMap;
    use axum::response::{IntoResponse, Response};
    use axum::routing::get;
    use base64::Engine as _;
    use serde_json::{Value, json};

    #[derive(Debug, Default, Clone)]
    pub struct Seen {
        pub query: Option<String>,
        pub authorization: Option<String>,
        pub beta: Option<String>,
        pub updates: Vec<Value>,
        pub samples: Vec<i16>,
        pub commits: usize,
        pub closed: bool,
    }

    pub type Log = Arc<Mutex<Vec<Seen>>>;

    pub fn router(log: Log) -> Router {
        Router::new()
            .route("/v1/realtime", get(upgrade))
            .with_state(log)
    }

    async fn upgrade(
        ws: WebSocketUpgrade,
        headers: HeaderMap,
        RawQuery(query): RawQuery,
        State(log): State<Log>,
    ) -> Response {
        let header = |n: &str| {
            headers
                .get(n)
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned)
        };
        if header("authorization").as_deref() != Some("Bearer sk-stt") {
            let body = json!({"error": {"message": "Incorrect API key provided", "type": "invalid_request_error",
                                        "code": "invalid_api_key"}});
            return (axum::http::StatusCode::UNAUTHORIZED, body.to_string()).into_response();
        }
        let index = {
            let mut log = log.lock().unwrap();
            log.push(Seen {
                query,
                authorization: header("authorization"),
                beta: header("openai-beta"),
                ..Default::default()
            });
            log.len() - 1
        };
        ws.on_upgrade(move |socket| session(socket, log, index))
    }

    async fn send(socket: &mut WebSocket, v: Value) -> bool {
        socket
            .send(Message::Text(v.to_string().into()))
            .await
            .is_ok()
    }

    /// Commits `buffered` as item `n`, then transcribes it.
    async fn transcribe(socket: &mut WebSocket, n: usize, buffered: usize) -> bool {
        let item = format!("item_{n}");
        let text = format!("heard {buffered}");
        let (a, b) = text.split_at(3);
        send(
            socket,
            json!({"type": "input_audio_buffer.committed", "item_id": item,
                            "previous_item_id": null}),
        )
        .await
            && send(
                socket,
                json!({"type": "conversation.item.input_audio_transcription.delta",
                                   "item_id": item, "content_index": 0, "delta": a}),
            )
            .await
            && send(
                socket,
                json!({"type": "conversation.item.input_audio_transcription.delta",
                                   "item_id": item, "content_index": 0, "delta": b}),
            )
            .await
            && send(
                socket,
                json!({"type": "conversation.item.input_audio_transcription.completed",
                                   "item_id": item, "content_index": 0, "transcript": text}),
            )
            .await
    }

    async fn session(mut socket: WebSocket, log: Log, index: usize) {
        let _ = send(&mut socket, json!({"type": "session.created"})).await;
        let mut vad = false;
        let mut buffered = 0usize;
        let mut items = 0usize;
        while let Some(Ok(message)) = socket.recv().await {
            let Message::Text(text) = message else {
                if let Message::Close(_) = message {
                    break;
                }
                continue;
            };
            let event: Value = serde_json::from_str(text.as_str()).unwrap();
            match event["type"].as_str().unwrap() {
                "session.update" | "transcription_session.update" => {
                    vad = !event
                        .pointer("/session/turn_detection")
                        .unwrap_or(&Value::Null)
                        .is_null()
                        || !event
                            .pointer("/session/audio/input/turn_detection")
                            .unwrap_or(&Value::Null)
                            .is_null();
                    let first = {
                        let mut log = log.lock().unwrap();
                        log[index].updates.push(event.clone());
                        log[index].updates.len() == 1
                    };
                    // Like some compatible servers, no acknowledgement of a
                    // plain first update (no voice detection to switch).
                    if vad || !first {
                        let _ = send(&mut socket, json!({"type": "session.updated"})).await;
                    }
                }
                "input_audio_buffer.append" => {
                    let bytes = base64::engine::general_purpose::STANDARD
                        .decode(event["audio"].as_str().unwrap())
                        .unwrap();
                    let samples: Vec<i16> = bytes
                        .chunks_exact(2)
                        .map(|p| i16::from_le_bytes([p[0], p[1]]))
                        .collect();
                    buffered += samples.len();
                    log.lock().unwrap()[index].samples.extend(samples);
                    if vad && items == 0 && buffered >= 12_000 {
                        if !transcribe(&mut socket, items, buffered).await {
                            return;
                        }
                        items += 1;
                        buffered = 0;
                    }
                }
                "input_audio_buffer.commit" => {
                    log.lock().unwrap()[index].commits += 1;
                    if buffered == 0 {
                        let _ = send(&mut socket, json!({"type": "error", "event_id": "e1", "error": {
                            "type": "invalid_request_error", "code": "input_audio_buffer_commit_empty",
                            "message": "Error committing input audio buffer: buffer too small."}})).await;
                        continue;
                    }
                    if !transcribe(&mut socket, items, buffered).await {
                        return;
                    }
                    items += 1;
                    buffered = 0;
                }
                other => panic!("unexpected client event {other}"),
            }
        }
        log.lock().unwrap()[index].closed = true;
    }
}

fn realtime_stt(server: &Server, protocol: RealtimeProtocol) -> OpenAiStt {
    OpenAiStt::new(OpenAiSttConfig {
        transport: SttTransport::Realtime,
        realtime_protocol: protocol,
        model: "gpt-4o-transcribe".into(),
        ..stt_config(server.base())
    })
    .unwrap()
}

async fn wait_for(what: &str, mut done: impl FnMut() -> bool) {
    let start = tokio::time::Instant::now();
    while !done() {
        assert!(start.elapsed() < PATIENCE, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

#[tokio::test]
async fn realtime_stt_streams_24k_audio_and_commits_at_the_end() {
    let log = realtime::Log::default();
    let server = Server::start_with(realtime::router(log.clone())).await;
    let stt = realtime_stt(&server, RealtimeProtocol::Ga);
    let SttStream { audio, mut events } = stt.start(&SttOptions::default());
    send_utterance(audio, &tone(16_000)).await;
    // One second at 16 kHz: 50 frames, the resampler's flushed frame.
    let sent = 51 * 480;
    assert_eq!(
        next_stt(&mut events).await,
        Some(SttEvent::Final(Transcript {
            text: format!("heard {sent}"),
            start_ms: 0,
            end_ms: 1000,
        }))
    );
    assert_eq!(next_stt(&mut events).await, None);
    wait_for("the socket to close", || log.lock().unwrap()[0].closed).await;

    let seen = log.lock().unwrap()[0].clone();
    assert_eq!(seen.query.as_deref(), Some("intent=transcription"));
    assert_eq!(seen.authorization.as_deref(), Some("Bearer sk-stt"));
    assert_eq!(seen.beta, None);
    assert_eq!(seen.updates.len(), 1);
    assert_eq!(
        seen.updates[0],
        json!({"type": "session.update", "session": {"type": "transcription", "audio": {"input": {
            "format": {"type": "audio/pcm", "rate": 24000},
            "transcription": {"model": "gpt-4o-transcribe", "language": "en"},
            "turn_detection": null}}}})
    );
    assert_eq!(seen.commits, 1);
    assert_eq!(seen.samples.len(), sent);
    // Still a 440 Hz tone at the new rate: 880 zero crossings a second.
    let mut last = 0i16;
    let mut crossings = 0;
    for &s in seen.samples.iter().filter(|s| s.unsigned_abs() > 1000) {
        crossings += usize::from(last != 0 && (s < 0) != (last < 0));
        last = s;
    }
    assert!((870..=890).contains(&crossings), "{crossings}");
}

#[tokio::test]
async fn realtime_stt_beta_protocol_with_partials_at_pauses() {
    let log = realtime::Log::default();
    let server = Server::start_with(realtime::router(log.clone())).await;
    let stt = realtime_stt(&server, RealtimeProtocol::Beta);
    let SttStream { audio, mut events } = stt.start(&SttOptions {
        language: None,
        partials: true,
    });
    let feeder = tokio::spawn(async move { send_utterance(audio, &tone(24_000)).await });
    let mut partials = Vec::new();
    let last = loop {
        match next_stt(&mut events).await {
            Some(SttEvent::Partial(t)) => partials.push(t.text),
            Some(SttEvent::Final(t)) => break t,
            other => panic!("{other:?}"),
        }
    };
    feeder.await.unwrap();
    // The server committed 0.5 s on its own (12,000 samples, sent in
    // 100 ms appends), the rest at the end: 76 frames at 24 kHz in all.
    let rest = 76 * 480 - 12_000;
    assert_eq!(last.text, format!("heard 12000 heard {rest}"));
    assert_eq!(last.end_ms, 1500);
    assert_eq!(partials[..3], ["hea", "heard 12000", "heard 12000"]);
    assert_eq!(partials.last().unwrap(), &last.text);

    let seen = log.lock().unwrap()[0].clone();
    assert_eq!(seen.beta.as_deref(), Some("realtime=v1"));
    let update = &seen.updates[0];
    assert_eq!(update["type"], "transcription_session.update");
    assert_eq!(update["session"]["input_audio_format"], "pcm16");
    assert_eq!(
        update["session"]["input_audio_transcription"],
        json!({"model": "gpt-4o-transcribe", "language": "en"})
    );
    assert_eq!(update["session"]["turn_detection"]["type"], "server_vad");
    assert_eq!(
        update["session"]["turn_detection"]["silence_duration_ms"],
        400
    );
    // Voice detection goes off before the final commit, so that the
    // commit's answer cannot be mistaken for a pause's.
    assert_eq!(seen.updates.len(), 2);
    assert_eq!(seen.updates[1]["session"]["turn_detection"], Value::Null);
    assert_eq!(seen.commits, 1);
}

#[tokio::test]
async fn realtime_stt_reports_a_refused_handshake_and_closes_on_drop() {
    let log = realtime::Log::default();
    let server = Server::start_with(realtime::router(log.clone())).await;
    let stt = OpenAiStt::new(OpenAiSttConfig {
        api_key: Some("sk-wrong".into()),
        transport: SttTransport::Realtime,
        ..stt_config(server.base())
    })
    .unwrap();
    let SttStream { audio, mut events } = stt.start(&SttOptions::default());
    send_utterance(audio, &tone(3_200)).await;
    match next_stt(&mut events).await {
        Some(SttEvent::Error(e)) => {
            assert!(!e.retryable);
            assert!(e.message.contains("authentication failed"), "{e}");
            assert!(!e.message.contains("sk-wrong"), "{e}");
        }
        other => panic!("{other:?}"),
    }

    // Dropping the events ends the session and its socket mid-utterance.
    let stt = realtime_stt(&server, RealtimeProtocol::Ga);
    let SttStream { audio, events } = stt.start(&SttOptions::default());
    send_utterance(audio.clone(), &tone(3_200)).await;
    wait_for("audio to reach the server", || {
        log.lock()
            .unwrap()
            .first()
            .is_some_and(|s| !s.samples.is_empty())
    })
    .await;
    drop(events);
    wait_for("the socket to close", || log.lock().unwrap()[0].closed).await;
    assert_eq!(log.lock().unwrap()[0].commits, 0);
    drop(audio);
}

// ---------------------------------------------------------- Deepgram ---

mod deepgram {
    //! A fake Deepgram `listen` endpoint: for each full second of audio an
    //! interim then a final result `second N`; on `CloseStream` a final
    //! `tail M` (M = samples left), metadata, and a normal close.

    use std::sync::{Arc, Mutex};

    use axum::Router;
    use axum::extract::ws::{CloseFrame, Message, WebSocket, WebSocketUpgrade};
    use axum::extract::{RawQuery, State};
    use axum::http::{HeaderMap, StatusCode};
    use axum::response::{IntoResponse, Response};
    use axum::routing::get;
    use serde_json::{Value, json};

    #[derive(Debug, Default, Clone)]
    pub struct Seen {
        pub query: Option<String>,
        pub samples: usize,
        pub close_stream: bool,
        pub closed: bool,
    }

    pub type Log = Arc<Mutex<Vec<Seen>>>;

    pub fn router(log: Log) -> Router {
        Router::new()
            .route("/v1/listen", get(upgrade))
            .with_state(log)
    }

    async fn upgrade(
        ws: WebSocketUpgrade,
        headers: HeaderMap,
        RawQuery(query): RawQuery,
        State(log): State<Log>,
    ) -> Response {
        if headers.get("authorization").and_then(|v| v.to_str().ok()) != Some("Token dg-key") {
            let body = json!({"err_code": "INVALID_AUTH", "err_msg": "Invalid credentials.",
                              "request_id": "r1"});
            return (StatusCode::UNAUTHORIZED, body.to_string()).into_response();
        }
        let index = {
            let mut log = log.lock().unwrap();
            log.push(Seen {
                query,
                ..Default::default()
            });
            log.len() - 1
        };
        ws.on_upgrade(move |socket| session(socket, log, index))
    }

    fn result(text: &str, is_final: bool) -> Message {
        let v = json!({"type": "Results", "channel_index": [0, 1], "duration": 1.0, "start": 0.0,
                       "is_final": is_final, "speech_final": is_final,
                       "channel": {"alternatives": [{"transcript": text, "confidence": 0.98,
                                                     "words": []}]}});
        Message::Text(v.to_string().into())
    }

    async fn session(mut socket: WebSocket, log: Log, index: usize) {
        let mut second = 0;
        let mut left = 0usize;
        while let Some(Ok(message)) = socket.recv().await {
            match message {
                Message::Binary(bytes) => {
                    assert_eq!(bytes.len() % 2, 0);
                    left += bytes.len() / 2;
                    log.lock().unwrap()[index].samples += bytes.len() / 2;
                    if left >= 16_000 {
                        left -= 16_000;
                        second += 1;
                        let _ = socket.send(result("sec", false)).await;
                        let _ = socket.send(result(&format!("second {second}"), true)).await;
                    }
                }
                Message::Text(text) => {
                    let v: Value = serde_json::from_str(text.as_str()).unwrap();
                    assert_eq!(v["type"], "CloseStream");
                    log.lock().unwrap()[index].close_stream = true;
                    let _ = socket.send(result(&format!("tail {left}"), true)).await;
                    let metadata = json!({"type": "Metadata", "request_id": "r1", "duration": 2.5});
                    let _ = socket
                        .send(Message::Text(metadata.to_string().into()))
                        .await;
                    let _ = socket
                        .send(Message::Close(Some(CloseFrame {
                            code: 1000,
                            reason: "".into(),
                        })))
                        .await;
                    break;
                }
                Message::Close(_) => break,
                _ => {}
            }
        }
        log.lock().unwrap()[index].closed = true;
    }
}

fn deepgram_stt(server: &Server, key: &str) -> DeepgramStt {
    DeepgramStt::new(DeepgramConfig {
        url: format!("ws://{}/v1/listen", server.addr),
        api_key: Some(key.into()),
        language: Some("en".into()),
        ..Default::default()
    })
    .unwrap()
}

#[tokio::test]
async fn deepgram_streams_pcm_and_joins_its_final_results() {
    let log = deepgram::Log::default();
    let server = Server::start_with(deepgram::router(log.clone())).await;
    let stt = deepgram_stt(&server, "dg-key");
    assert_eq!(stt.name(), "deepgram");
    let SttStream { audio, mut events } = stt.start(&SttOptions {
        language: None,
        partials: true,
    });
    let feeder = tokio::spawn(async move { send_utterance(audio, &tone(40_000)).await });
    let mut partials = Vec::new();
    let last = loop {
        match next_stt(&mut events).await {
            Some(SttEvent::Partial(t)) => partials.push(t.text),
            Some(SttEvent::Final(t)) => break t,
            other => panic!("{other:?}"),
        }
    };
    feeder.await.unwrap();
    assert_eq!(
        last,
        Transcript {
            text: "second 1 second 2 tail 8000".into(),
            start_ms: 0,
            end_ms: 2500,
        }
    );
    assert_eq!(
        partials,
        [
            "sec",
            "second 1",
            "second 1 sec",
            "second 1 second 2",
            "second 1 second 2 tail 8000"
        ]
    );
    assert_eq!(next_stt(&mut events).await, None);
    let seen = log.lock().unwrap()[0].clone();
    assert_eq!(
        seen.query.as_deref(),
        Some(
            "model=nova-3&encoding=linear16&sample_rate=16000&channels=1&interim_results=true\
             &punctuate=true&smart_format=true&language=en"
        )
    );
    assert_eq!(seen.samples, 40_000);
    assert!(seen.close_stream);
}

#[tokio::test]
async fn deepgram_reports_bad_credentials_and_closes_on_drop() {
    let log = deepgram::Log::default();
    let server = Server::start_with(deepgram::router(log.clone())).await;
    let SttStream { audio, mut events } =
        deepgram_stt(&server, "wrong").start(&SttOptions::default());
    send_utterance(audio, &tone(1_600)).await;
    match next_stt(&mut events).await {
        Some(SttEvent::Error(e)) => {
            assert_eq!(e.provider, "deepgram");
            assert!(!e.retryable);
            assert!(
                e.message.contains(
                    "authentication failed (check the API key) (HTTP 401): Invalid credentials."
                ),
                "{e}"
            );
        }
        other => panic!("{other:?}"),
    }

    let SttStream { audio, events } = deepgram_stt(&server, "dg-key").start(&SttOptions::default());
    send_utterance(audio.clone(), &tone(3_200)).await;
    wait_for("audio to reach the server", || {
        log.lock().unwrap().first().is_some_and(|s| s.samples > 0)
    })
    .await;
    drop(events);
    wait_for("the socket to close", || log.lock().unwrap()[0].closed).await;
    assert!(!log.lock().unwrap()[0].close_stream);
    drop(audio);
}

// -------------------------------------------------------- ElevenLabs ---

mod elevenlabs {
    //! A fake ElevenLabs `stream-input` endpoint: after the end-of-input
    //! message it speaks the text as `100 × characters` samples of a ramp,
    //! in three base64 chunks cut at odd byte counts, then `isFinal`.

    use std::sync::{Arc, Mutex};

    use axum::Router;
    use axum::extract::ws::{Message, WebSocket, WebSocketUpgrade};
    use axum::extract::{Path, RawQuery, State};
    use axum::http::{HeaderMap, StatusCode};
    use axum::response::{IntoResponse, Response};
    use axum::routing::get;
    use base64::Engine as _;
    use serde_json::{Value, json};

    #[derive(Debug, Default, Clone)]
    pub struct Seen {
        pub voice: String,
        pub query: Option<String>,
        pub messages: Vec<Value>,
    }

    pub type Log = Arc<Mutex<Vec<Seen>>>;

    pub fn router(log: Log) -> Router {
        Router::new()
            .route("/v1/text-to-speech/{voice}/stream-input", get(upgrade))
            .with_state(log)
    }

    /// What the fake speaks for `text`.
    pub fn speech(text: &str) -> Vec<i16> {
        (0..text.chars().count() * 100)
            .map(|i| (i as i16).wrapping_mul(97))
            .collect()
    }

    async fn upgrade(
        ws: WebSocketUpgrade,
        Path(voice): Path<String>,
        headers: HeaderMap,
        RawQuery(query): RawQuery,
        State(log): State<Log>,
    ) -> Response {
        if headers.get("xi-api-key").and_then(|v| v.to_str().ok()) != Some("xi-key") {
            let body =
                json!({"detail": {"status": "invalid_api_key", "message": "Invalid API key"}});
            return (StatusCode::UNAUTHORIZED, body.to_string()).into_response();
        }
        let index = {
            let mut log = log.lock().unwrap();
            log.push(Seen {
                voice,
                query,
                ..Default::default()
            });
            log.len() - 1
        };
        ws.on_upgrade(move |socket| session(socket, log, index))
    }

    async fn session(mut socket: WebSocket, log: Log, index: usize) {
        let mut text = String::new();
        while let Some(Ok(Message::Text(t))) = socket.recv().await {
            let v: Value = serde_json::from_str(t.as_str()).unwrap();
            log.lock().unwrap()[index].messages.push(v.clone());
            let chunk = v["text"].as_str().unwrap().to_owned();
            if !chunk.is_empty() {
                text.push_str(&chunk);
                continue;
            }
            let bytes: Vec<u8> = speech(text.trim())
                .iter()
                .flat_map(|s| s.to_le_bytes())
                .collect();
            let cuts = [(bytes.len() / 3) | 1, bytes.len() / 3 * 2 + 1, bytes.len()];
            let mut at = 0;
            for cut in cuts {
                let audio = base64::engine::general_purpose::STANDARD.encode(&bytes[at..cut]);
                at = cut;
                let m = json!({"audio": audio, "isFinal": false, "normalizedAlignment": null});
                if socket
                    .send(Message::Text(m.to_string().into()))
                    .await
                    .is_err()
                {
                    return;
                }
            }
            let _ = socket
                .send(Message::Text(json!({"isFinal": true}).to_string().into()))
                .await;
            break;
        }
    }
}

#[tokio::test]
async fn elevenlabs_speaks_each_segment_over_its_own_socket() {
    let log = elevenlabs::Log::default();
    let server = Server::start_with(elevenlabs::router(log.clone())).await;
    let tts = ElevenLabsTts::new(ElevenLabsConfig {
        url: format!("ws://{}/v1", server.addr),
        api_key: Some("xi-key".into()),
        speed: Some(1.1),
        ..Default::default()
    })
    .unwrap();
    assert_eq!(tts.name(), "elevenlabs");
    let TtsStream { text, mut audio } = tts.start(&TtsOptions {
        voice: Some("voice-x".into()),
        language: None,
    });
    let segments = ["Hello there.", "How can I help?"];
    for s in segments {
        text.send(s.into()).await.unwrap();
    }
    drop(text);
    let mut got: [Vec<i16>; 2] = Default::default();
    let mut done = Vec::new();
    while let Some(ev) = next_tts(&mut audio).await {
        match ev {
            TtsEvent::Audio { segment, chunk } => {
                assert_eq!(chunk.rate, 16_000);
                assert!(!done.contains(&segment));
                got[segment].extend(chunk.samples);
            }
            TtsEvent::SegmentDone { segment } => done.push(segment),
            TtsEvent::Error(e) => panic!("{e}"),
        }
    }
    assert_eq!(done, [0, 1]);
    assert_eq!(got[0], elevenlabs::speech(segments[0]));
    assert_eq!(got[1], elevenlabs::speech(segments[1]));

    let seen = log.lock().unwrap().clone();
    assert_eq!(seen.len(), 2);
    assert_eq!(seen[0].voice, "voice-x");
    assert_eq!(
        seen[0].query.as_deref(),
        Some("model_id=eleven_flash_v2_5&output_format=pcm_16000")
    );
    assert_eq!(
        seen[0].messages,
        [
            json!({"text": " ", "voice_settings": {"speed": 1.100000023841858}}),
            json!({"text": "Hello there. "}),
            json!({"text": ""}),
        ]
    );
    assert_eq!(seen[1].messages[1], json!({"text": "How can I help? "}));
}

#[tokio::test]
async fn elevenlabs_reports_a_refused_key() {
    let log = elevenlabs::Log::default();
    let server = Server::start_with(elevenlabs::router(log)).await;
    let tts = ElevenLabsTts::new(ElevenLabsConfig {
        url: format!("ws://{}/v1", server.addr),
        api_key: Some("nope".into()),
        ..Default::default()
    })
    .unwrap();
    let TtsStream { text, mut audio } = tts.start(&TtsOptions::default());
    text.send("Hi.".into()).await.unwrap();
    match next_tts(&mut audio).await {
        Some(TtsEvent::Error(e)) => {
            assert_eq!(e.provider, "elevenlabs");
            assert!(!e.retryable);
            assert!(e.message.contains("HTTP 401"), "{e}");
            assert!(e.message.contains("Invalid API key"), "{e}");
        }
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn brain_says_so_when_the_server_does_not_stream() {
    let server = Server::start().await;
    // A full completion where a stream was asked for.
    server.push(Reply::json(completion("Hello.")));
    let brain = OpenAiBrain::new(brain_config(&server)).unwrap();
    let events = collect(brain.start_call(&CallInfo::default()).respond(&hello())).await;
    assert_error(&events, false, "no stream chunks");
}

#[tokio::test]
async fn stt_abandons_its_request_when_the_events_are_dropped() {
    let server = Server::start().await;
    // Headers, then a body that never comes.
    server.push(Reply::Stream {
        content_type: "application/json",
        pieces: vec![b"{\"text\":".to_vec()],
        gap: Duration::ZERO,
        stall: true,
    });
    let stt = OpenAiStt::new(stt_config(server.base())).unwrap();
    let SttStream { audio, events } = stt.start(&SttOptions::default());
    send_utterance(audio, &tone(8_000)).await;
    wait_for("the request", || server.requests().len() == 1).await;
    drop(events);
    server.wait_closed().await;
}
