//! The OpenAI Realtime agent ([`run_realtime`]) on a simulated line,
//! against a local WebSocket server (tokio-tungstenite, 127.0.0.1) that
//! speaks the Realtime protocol's events: it takes the session update and
//! the caller's appended audio, reports the caller's speech and its
//! transcription, and streams replies (24 kHz tone audio with transcript
//! deltas, function calls).
//!
//! Real time: the line plays one queued frame per 20 ms, as the RTP
//! session does, and records what it played and when; the caller sends a
//! quiet 300 Hz tone, frame by frame.

mod peers;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use base64::Engine as _;
use futures_util::stream::SplitSink;
use futures_util::{SinkExt, StreamExt};
use hotline::agent::openai::RealtimeProtocol;
use hotline::agent::openai::realtime_agent::{RealtimeAgentConfig, RealtimeSetup, run_realtime};
use hotline::agent::pipeline::{AgentReport, CallControl, Line};
use hotline::agent::provider::{CallInfo, Message, ToolCall};
use hotline::agent::scripted::ScriptedTts;
use hotline::call::{CallEvent, DigitSource, TranscriptLine};
use serde_json::{Value, json};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{broadcast, mpsc, oneshot};
use tokio::time::Instant;
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::Message as WsMessage;
use tokio_tungstenite::tungstenite::handshake::server::{ErrorResponse, Request, Response};

/// Generous bound for anything that should happen promptly; a test that
/// hits it has failed, it never measures speed.
const PATIENCE: Duration = Duration::from_secs(20);
const FRAME: Duration = Duration::from_millis(20);
const KEY: &str = "sk-realtime-test";

// ------------------------------------------------------------ server ---

/// What the server received.
#[derive(Debug, Default)]
struct Seen {
    query: Option<String>,
    authorization: Option<String>,
    beta: Option<String>,
    /// Every client event but the appends, in order.
    events: Vec<Value>,
    /// The appended audio (24 kHz).
    samples: Vec<i16>,
    closed: bool,
}

type Log = Arc<Mutex<Seen>>;

/// The server's side of the one connection a test makes.
struct Conn {
    sink: SplitSink<WebSocketStream<TcpStream>, WsMessage>,
    log: Log,
    beta: bool,
}

impl Conn {
    async fn send(&mut self, v: Value) {
        let _ = self.sink.send(WsMessage::text(v.to_string())).await;
    }

    /// Waits until `done` holds for what was received.
    async fn until(&self, what: &str, done: impl Fn(&Seen) -> bool) {
        let start = Instant::now();
        while !done(&self.log.lock().unwrap()) {
            assert!(
                start.elapsed() < PATIENCE,
                "server: timed out waiting for {what}"
            );
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }

    async fn until_event(&self, kind: &str, n: usize) -> Value {
        self.until(kind, |s| count(&s.events, kind) >= n).await;
        of(&self.log.lock().unwrap().events, kind)[n - 1].clone()
    }

    fn name(&self, ga: &'static str) -> &'static str {
        if !self.beta {
            return ga;
        }
        match ga {
            "response.output_audio.delta" => "response.audio.delta",
            "response.output_audio.done" => "response.audio.done",
            "response.output_audio_transcript.delta" => "response.audio_transcript.delta",
            "response.output_audio_transcript.done" => "response.audio_transcript.done",
            other => other,
        }
    }

    /// The caller said `text` (item `item`), between `from` and `to` ms.
    async fn caller_says(&mut self, item: &str, text: &str, from: u64, to: u64) {
        self.send(
            json!({"type": "input_audio_buffer.speech_started", "item_id": item,
                         "audio_start_ms": from}),
        )
        .await;
        self.send(
            json!({"type": "input_audio_buffer.speech_stopped", "item_id": item,
                         "audio_end_ms": to}),
        )
        .await;
        self.send(
            json!({"type": "input_audio_buffer.committed", "item_id": item,
                         "previous_item_id": null}),
        )
        .await;
        let (a, b) = text.split_at(text.len() / 2);
        for d in [a, b] {
            self.send(
                json!({"type": "conversation.item.input_audio_transcription.delta",
                             "item_id": item, "content_index": 0, "delta": d}),
            )
            .await;
        }
        self.send(
            json!({"type": "conversation.item.input_audio_transcription.completed",
                         "item_id": item, "content_index": 0, "transcript": text}),
        )
        .await;
    }

    /// Streams a reply: `audio_ms` of a 440 Hz tone in 100 ms deltas (one
    /// every `pace`, or all at once), the transcript's words spread over
    /// them, then (with `done`) `response.done` with the function call.
    async fn reply(&mut self, r: &Reply<'_>) {
        let (id, item) = (r.id, r.item);
        self.send(json!({"type": "response.created",
                         "response": {"id": id, "object": "realtime.response", "status": "in_progress"}}))
            .await;
        self.send(
            json!({"type": "response.output_item.added", "response_id": id, "output_index": 0,
                         "item": {"id": item, "type": "message", "role": "assistant"}}),
        )
        .await;
        let chunks = r.audio_ms / 100;
        let words: Vec<&str> = r.transcript.split_whitespace().collect();
        let mut said = 0;
        for n in 0..chunks {
            let audio = tone_24k(n * 2400, 2400);
            let bytes: Vec<u8> = audio.iter().flat_map(|s| s.to_le_bytes()).collect();
            let delta = base64::engine::general_purpose::STANDARD.encode(bytes);
            let kind = self.name("response.output_audio.delta");
            self.send(json!({"type": kind, "response_id": id, "item_id": item,
                             "output_index": 0, "content_index": 0, "delta": delta}))
                .await;
            // The transcript keeps pace with the audio.
            let due = words.len() * (n + 1) / chunks;
            while said < due {
                let sep = if said == 0 { "" } else { " " };
                let kind = self.name("response.output_audio_transcript.delta");
                self.send(json!({"type": kind, "response_id": id, "item_id": item,
                                 "output_index": 0, "content_index": 0,
                                 "delta": format!("{sep}{}", words[said])}))
                    .await;
                said += 1;
            }
            if let Some(p) = r.pace {
                tokio::time::sleep(p).await;
            }
        }
        if !r.done {
            return;
        }
        let kind = self.name("response.output_audio_transcript.done");
        self.send(
            json!({"type": kind, "response_id": id, "item_id": item, "output_index": 0,
                         "content_index": 0, "transcript": r.transcript}),
        )
        .await;
        self.done(id, item, "completed", r.call.clone()).await;
    }

    async fn done(
        &mut self,
        id: &str,
        item: &str,
        status: &str,
        call: Option<(&str, &str, Value)>,
    ) {
        let mut output = vec![json!({"id": item, "type": "message", "role": "assistant",
                                     "status": status})];
        if let Some((call_id, name, args)) = call {
            output.push(
                json!({"id": format!("fc_{call_id}"), "type": "function_call",
                               "status": "completed", "call_id": call_id, "name": name,
                               "arguments": args.to_string()}),
            );
        }
        self.send(json!({"type": "response.done",
                         "response": {"id": id, "status": status, "output": output}}))
            .await;
    }
}

struct Reply<'a> {
    id: &'a str,
    item: &'a str,
    audio_ms: usize,
    transcript: &'a str,
    pace: Option<Duration>,
    done: bool,
    call: Option<(&'a str, &'a str, Value)>,
}

fn count(events: &[Value], kind: &str) -> usize {
    of(events, kind).len()
}

fn of<'a>(events: &'a [Value], kind: &str) -> Vec<&'a Value> {
    events.iter().filter(|e| e["type"] == kind).collect()
}

/// A 440 Hz tone at 24 kHz, from sample `from`.
fn tone_24k(from: usize, n: usize) -> Vec<i16> {
    (from..from + n)
        .map(|i| (8000.0 * (2.0 * std::f64::consts::PI * 440.0 * i as f64 / 24_000.0).sin()) as i16)
        .collect()
}

/// Starts the server; `refuse` turns the handshake away with a 401.
async fn server(refuse: bool) -> (String, Log, oneshot::Receiver<Conn>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("ws://{}/v1/realtime", listener.local_addr().unwrap());
    let log = Log::default();
    let (tx, rx) = oneshot::channel();
    let server_log = log.clone();
    tokio::spawn(async move {
        let (socket, _) = listener.accept().await.unwrap();
        let header_log = server_log.clone();
        // The signature is tungstenite's handshake `Callback`.
        #[allow(clippy::result_large_err)]
        let callback = move |req: &Request, resp: Response| -> Result<Response, ErrorResponse> {
            let header = |n: &str| {
                req.headers()
                    .get(n)
                    .and_then(|v| v.to_str().ok())
                    .map(str::to_owned)
            };
            let mut seen = header_log.lock().unwrap();
            seen.query = req.uri().query().map(str::to_owned);
            seen.authorization = header("authorization");
            seen.beta = header("openai-beta");
            if refuse {
                let body = json!({"error": {"message": "Incorrect API key provided",
                    "type": "invalid_request_error", "code": "invalid_api_key"}});
                let mut r = ErrorResponse::new(Some(body.to_string()));
                *r.status_mut() = tokio_tungstenite::tungstenite::http::StatusCode::UNAUTHORIZED;
                return Err(r);
            }
            Ok(resp)
        };
        let Ok(ws) = tokio_tungstenite::accept_hdr_async(socket, callback).await else {
            return;
        };
        let beta = server_log.lock().unwrap().beta.is_some();
        let (mut sink, mut stream) = ws.split();
        let _ = sink
            .send(WsMessage::text(
                json!({"type": "session.created"}).to_string(),
            ))
            .await;
        let _ = tx.send(Conn {
            sink,
            log: server_log.clone(),
            beta,
        });
        while let Some(Ok(message)) = stream.next().await {
            let WsMessage::Text(text) = message else {
                if let WsMessage::Close(_) = message {
                    break;
                }
                continue;
            };
            let event: Value = serde_json::from_str(text.as_str()).unwrap();
            let mut seen = server_log.lock().unwrap();
            if event["type"] == "input_audio_buffer.append" {
                let bytes = base64::engine::general_purpose::STANDARD
                    .decode(event["audio"].as_str().unwrap())
                    .unwrap();
                seen.samples.extend(
                    bytes
                        .chunks_exact(2)
                        .map(|p| i16::from_le_bytes([p[0], p[1]])),
                );
            } else {
                seen.events.push(event);
            }
        }
        server_log.lock().unwrap().closed = true;
    });
    (url, log, rx)
}

// -------------------------------------------------------------- line ---

#[derive(Default)]
struct Played {
    /// (time, frame) of each frame the line played.
    frames: Vec<(Instant, Vec<i16>)>,
    /// Times the agent flushed the line.
    flushes: Vec<Instant>,
}

struct SimLine {
    sink: mpsc::Sender<Vec<i16>>,
    queue: Arc<Mutex<mpsc::Receiver<Vec<i16>>>>,
    played: Arc<Mutex<Played>>,
}

impl Line for SimLine {
    fn sink(&self) -> &mpsc::Sender<Vec<i16>> {
        &self.sink
    }

    async fn flush(&self) {
        let mut q = self.queue.lock().unwrap();
        while q.try_recv().is_ok() {}
        self.played.lock().unwrap().flushes.push(Instant::now());
    }
}

#[derive(Clone, Default)]
struct Recorder {
    events: Arc<Mutex<Vec<(Instant, CallEvent)>>>,
    commands: Arc<Mutex<Vec<(Instant, String)>>>,
}

impl CallControl for Recorder {
    fn hangup(&self) {
        self.command("hangup".into());
    }
    fn transfer(&self, target: &str) {
        self.command(format!("transfer {target}"));
    }
    fn send_dtmf(&self, digits: &str) {
        self.command(format!("dtmf {digits}"));
    }
    fn publish(&self, event: CallEvent) {
        self.events.lock().unwrap().push((Instant::now(), event));
    }
}

impl Recorder {
    fn command(&self, c: String) {
        self.commands.lock().unwrap().push((Instant::now(), c));
    }

    fn commands(&self) -> Vec<String> {
        let c = self.commands.lock().unwrap();
        c.iter().map(|(_, c)| c.clone()).collect()
    }

    fn transcript(&self, finals: bool) -> Vec<TranscriptLine> {
        self.events
            .lock()
            .unwrap()
            .iter()
            .filter_map(|(_, e)| match e {
                CallEvent::Transcript(l) if l.is_final == finals => Some(l.clone()),
                _ => None,
            })
            .collect()
    }

    fn speaking(&self) -> Vec<bool> {
        self.events
            .lock()
            .unwrap()
            .iter()
            .filter_map(|(_, e)| match e {
                CallEvent::AgentSpeaking { speaking } => Some(*speaking),
                _ => None,
            })
            .collect()
    }
}

fn loud(f: &[i16]) -> bool {
    peers::audio::rms(f) > peers::audio::NON_SILENT_RMS
}

/// Sign changes between samples clear of zero.
fn crossings(samples: &[i16]) -> usize {
    let mut last = 0i16;
    let mut n = 0;
    for &s in samples.iter().filter(|s| s.unsigned_abs() > 300) {
        n += usize::from(last != 0 && (s < 0) != (last < 0));
        last = s;
    }
    n
}

struct Run {
    report: AgentReport,
    recorder: Recorder,
    played: Played,
    /// Caller samples sent (16 kHz).
    sent: usize,
}

/// The simulated caller: a 300 Hz tone of `amplitude` (0 for silence),
/// and the line's echo of the agent at `echo_gain` (0 for none), three
/// frames late.
#[derive(Clone, Copy)]
struct Sim {
    amplitude: f64,
    echo_gain: f32,
}

impl Default for Sim {
    fn default() -> Self {
        Sim {
            amplitude: 2000.0,
            echo_gain: 0.0,
        }
    }
}

/// Runs the agent on a simulated call of at most `total`, with key
/// presses at the given times.
async fn call(
    config: RealtimeAgentConfig,
    setup: RealtimeSetup,
    total: Duration,
    digits: Vec<(Duration, char)>,
) -> Run {
    call_with(config, setup, total, digits, Sim::default()).await
}

/// [`call`] with the caller and line of `sim`.
async fn call_with(
    config: RealtimeAgentConfig,
    setup: RealtimeSetup,
    total: Duration,
    digits: Vec<(Duration, char)>,
    sim: Sim,
) -> Run {
    let (sink, queue) = mpsc::channel::<Vec<i16>>(50);
    let queue = Arc::new(Mutex::new(queue));
    let played = Arc::new(Mutex::new(Played::default()));
    let line = SimLine {
        sink,
        queue: queue.clone(),
        played: played.clone(),
    };
    let recorder = Recorder::default();
    let (frames_tx, frames_rx) = mpsc::channel(50);
    let (events_tx, events_rx) = broadcast::channel(64);
    let sent = Arc::new(Mutex::new(0usize));
    let sim_sent = sent.clone();
    let sim_played = played.clone();
    let sim = tokio::spawn(async move {
        let t0 = Instant::now();
        let mut tick = tokio::time::interval_at(t0 + FRAME, FRAME);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
        let mut digits = digits.into_iter().peekable();
        let mut n = 0usize;
        let mut echo: std::collections::VecDeque<Vec<i16>> = std::collections::VecDeque::new();
        loop {
            tick.tick().await;
            let now = Instant::now();
            if now - t0 >= total {
                break;
            }
            let out = queue.lock().unwrap().try_recv().ok();
            echo.push_back(out.clone().unwrap_or_else(|| vec![0; 320]));
            if let Some(f) = out {
                sim_played.lock().unwrap().frames.push((now, f));
            }
            // The caller: a quiet 300 Hz tone, plus the agent's echo.
            let back = if echo.len() > 3 {
                echo.pop_front().unwrap()
            } else {
                vec![0; 320]
            };
            let frame: Vec<i16> = (n * 320..(n + 1) * 320)
                .zip(back)
                .map(|(i, e)| {
                    let caller = sim.amplitude
                        * (2.0 * std::f64::consts::PI * 300.0 * i as f64 / 16_000.0).sin();
                    (caller + f64::from(e) * f64::from(sim.echo_gain)) as i16
                })
                .collect();
            n += 1;
            if frames_tx.send(frame).await.is_err() {
                break;
            }
            *sim_sent.lock().unwrap() += 320;
            while let Some((at, d)) = digits.peek() {
                if now - t0 < *at {
                    break;
                }
                let _ = events_tx.send(CallEvent::Dtmf {
                    digit: *d,
                    source: DigitSource::Rfc4733,
                });
                digits.next();
            }
        }
    });
    let info = CallInfo {
        call_id: "call_rt".into(),
        from: "+14155550100".into(),
        to: "agent".into(),
        direction: "inbound".into(),
    };
    let report = tokio::time::timeout(
        total + PATIENCE,
        run_realtime(
            config,
            setup,
            info,
            frames_rx,
            line,
            recorder.clone(),
            events_rx,
        ),
    )
    .await
    .expect("the agent ends with the call");
    sim.abort();
    let played = std::mem::take(&mut *played.lock().unwrap());
    let sent = *sent.lock().unwrap();
    Run {
        report,
        recorder,
        played,
        sent,
    }
}

fn config(url: String) -> RealtimeAgentConfig {
    RealtimeAgentConfig {
        url,
        api_key: Some(KEY.into()),
        model: "gpt-realtime-test".into(),
        max_retries: 0,
        ..RealtimeAgentConfig::default()
    }
}

// ------------------------------------------------------------- tests ---

#[tokio::test]
async fn greets_answers_and_hangs_up_after_end_call() {
    let (url, log, conn) = server(false).await;
    let script = tokio::spawn(async move {
        let mut c = conn.await.unwrap();
        c.until_event("session.update", 1).await;
        let create = c.until_event("response.create", 1).await;
        let instructions = create["response"]["instructions"]
            .as_str()
            .unwrap_or_default();
        assert!(instructions.contains("Hello! How can I help?"), "{create}");
        c.reply(&Reply {
            id: "resp_1",
            item: "item_a1",
            audio_ms: 1000,
            transcript: "Hello! How can I help?",
            pace: None,
            done: true,
            call: None,
        })
        .await;
        // The caller speaks once the greeting has played.
        c.until("2 s of caller audio", |s| s.samples.len() >= 48_000)
            .await;
        c.caller_says("in_1", "I'd like a table.", 1200, 1900).await;
        c.reply(&Reply {
            id: "resp_2",
            item: "item_a2",
            audio_ms: 800,
            transcript: "Goodbye then!",
            pace: None,
            done: true,
            call: Some(("call_1", "end_call", json!({}))),
        })
        .await;
        c.until("the socket to close", |s| s.closed).await;
    });
    let mut setup = RealtimeSetup::new("You take restaurant bookings.");
    setup.first_message = Some("Hello! How can I help?".into());
    setup.voice = Some("cedar".into());
    let dir = tempfile::tempdir().unwrap();
    setup.recording = Some(dir.path().join("call.wav"));
    let run = call(config(url), setup, Duration::from_secs(15), vec![]).await;
    script.await.unwrap();
    let seen = log.lock().unwrap();

    // The handshake and the session.
    assert_eq!(seen.query.as_deref(), Some("model=gpt-realtime-test"));
    assert_eq!(
        seen.authorization.as_deref(),
        Some("Bearer sk-realtime-test")
    );
    assert_eq!(seen.beta, None);
    let update = &seen.events[0];
    assert_eq!(update["type"], "session.update");
    let s = &update["session"];
    assert_eq!(s["type"], "realtime");
    assert_eq!(s["instructions"], "You take restaurant bookings.");
    assert_eq!(s["audio"]["output"]["voice"], "cedar");
    assert_eq!(s["audio"]["input"]["format"]["rate"], 24_000);
    assert_eq!(s["audio"]["input"]["turn_detection"]["type"], "server_vad");
    assert_eq!(
        s["audio"]["input"]["transcription"]["model"],
        "gpt-4o-mini-transcribe"
    );
    let tools: Vec<&str> = s["tools"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["name"].as_str().unwrap())
        .collect();
    assert_eq!(tools, ["end_call", "transfer_call", "send_dtmf"]);

    // The caller's audio went up at 24 kHz, still a 300 Hz tone.
    let secs = seen.samples.len() as f64 / 24_000.0;
    let sent_secs = run.sent as f64 / 16_000.0;
    assert!(
        (secs - sent_secs).abs() < 0.1,
        "{secs} s appended for {sent_secs} s sent"
    );
    // While the agent spoke the quiet caller was no louder than an echo
    // of it would be: those frames went up as silence.
    let zeros = |c: &[i16]| c.iter().filter(|s| **s == 0).count();
    // Chunks wholly the caller's (the sine rounds to 0 at a few samples
    // near its zero crossings, not at dozens), and chunks wholly muted.
    let live: Vec<&[i16]> = seen.samples.chunks(480).filter(|c| zeros(c) < 24).collect();
    let muted = seen
        .samples
        .chunks(480)
        .filter(|c| zeros(c) == c.len())
        .count();
    assert!(run.report.echo_frames_muted > 0);
    assert!(
        muted.abs_diff(run.report.echo_frames_muted as usize) <= 4,
        "{muted} silent 20 ms chunks, {} frames muted",
        run.report.echo_frames_muted
    );
    let live_secs = live.len() as f64 * 0.02;
    let per_sec = crossings(&live.concat()) as f64 / live_secs;
    assert!((580.0..=620.0).contains(&per_sec), "{per_sec} crossings/s");

    // The agent's audio reached the line as 20 ms frames at 16 kHz: the
    // 440 Hz tone, 1.8 s of it.
    let loud: Vec<&(Instant, Vec<i16>)> =
        run.played.frames.iter().filter(|(_, f)| loud(f)).collect();
    assert!(
        (88..=92).contains(&loud.len()),
        "{} loud frames",
        loud.len()
    );
    assert!(run.played.frames.iter().all(|(_, f)| f.len() == 320));
    let mid = &loud[20].1;
    assert!((16..=19).contains(&crossings(mid)), "{}", crossings(mid));
    assert!(run.played.flushes.is_empty());

    // Transcripts: finals for both sides, partials for the caller.
    let finals: Vec<(&str, String, bool)> = run
        .recorder
        .transcript(true)
        .into_iter()
        .map(|l| (l.speaker, l.text, l.interrupted))
        .collect();
    assert_eq!(
        finals,
        [
            ("agent", "Hello! How can I help?".to_owned(), false),
            ("caller", "I'd like a table.".to_owned(), false),
            ("agent", "Goodbye then!".to_owned(), false),
        ]
    );
    let caller = &run.recorder.transcript(true)[1];
    assert_eq!((caller.start_ms, caller.end_ms), (1200, 1900));
    let partials = run.recorder.transcript(false);
    assert_eq!(partials.last().unwrap().text, "I'd like a table.");
    assert_eq!(run.recorder.speaking(), [true, false, true, false]);

    // end_call: hung up once the goodbye had played, and nothing asked
    // of the model after it.
    assert_eq!(run.recorder.commands(), ["hangup"]);
    let hung_up = run.recorder.commands.lock().unwrap()[0].0;
    assert!(hung_up >= loud.last().unwrap().0);
    let outputs = of(&seen.events, "conversation.item.create");
    assert_eq!(outputs.len(), 1);
    assert_eq!(outputs[0]["item"]["type"], "function_call_output");
    assert_eq!(outputs[0]["item"]["call_id"], "call_1");
    assert_eq!(count(&seen.events, "response.create"), 1);
    assert!(seen.closed);

    // The conversation, for the summary.
    assert_eq!(
        run.report.messages,
        [
            Message::Assistant {
                text: "Hello! How can I help?".into(),
                interrupted: false,
                tool_calls: vec![],
            },
            Message::User {
                text: "I'd like a table.".into()
            },
            Message::Assistant {
                text: "Goodbye then!".into(),
                interrupted: false,
                tool_calls: vec![ToolCall {
                    id: "call_1".into(),
                    name: "end_call".into(),
                    arguments: json!({}),
                }],
            },
            Message::Tool {
                call_id: "call_1".into(),
                content: r#"{"ok":true}"#.into(),
            },
        ]
    );
    assert_eq!(run.report.turns.len(), 1);
    // The turn's time: the model's wait for its first audio, and what
    // Hotline added on top.
    let turn = &run.report.turns[0];
    let (v2v, model, server) = (
        turn.voice_to_voice_ms.unwrap(),
        turn.llm_first_token_ms.unwrap(),
        turn.server_ms.unwrap(),
    );
    assert_eq!(model + server, v2v, "{turn:?}");
    assert_eq!((turn.stt_ms, turn.tts_first_audio_ms), (None, None));

    // Recorded as heard: stereo, the agent's tone on the right.
    let rec = run.report.recording.as_ref().expect("recorded");
    assert_eq!(rec.error, None);
    let wav = hotline_media::wav::read_wav(&std::fs::read(&rec.path).unwrap()).unwrap();
    assert_eq!((wav.format.sample_rate, wav.format.channels), (16_000, 2));
    let right = wav.channel(1);
    let agent_secs = peers::audio::active_fraction(&right, 16_000) * right.len() as f64 / 16_000.0;
    assert!(
        (1.6..=2.0).contains(&agent_secs),
        "{agent_secs} s of agent audio"
    );
}

/// The agent's own voice coming back on the line at −10 dB reaches the
/// server as silence, so its voice detection cannot hear the agent and
/// interrupt it; a caller louder than that echo goes up as spoken.
#[tokio::test]
async fn its_own_echo_goes_up_as_silence_and_a_louder_caller_does_not() {
    for (amplitude, caller_heard) in [(0.0, false), (8000.0, true)] {
        let (url, log, conn) = server(false).await;
        let script = tokio::spawn(async move {
            let mut c = conn.await.unwrap();
            c.until_event("session.update", 1).await;
            c.caller_says("in_1", "Tell me a story.", 100, 500).await;
            let reply = Reply {
                id: "resp_1",
                item: "item_s",
                audio_ms: 3000,
                transcript: "Once upon a time there was a dragon.",
                pace: None,
                done: true,
                call: None,
            };
            c.reply(&reply).await;
        });
        let sim = Sim {
            amplitude,
            echo_gain: 0.316,
        };
        let setup = RealtimeSetup::new("Tell stories.");
        let run = call_with(config(url), setup, Duration::from_secs(4), vec![], sim).await;
        script.await.unwrap();
        let seen = log.lock().unwrap();
        let agent = run.played.frames.iter().filter(|(_, f)| loud(f)).count();
        assert!(agent > 100, "{agent} loud agent frames");
        if caller_heard {
            assert_eq!(run.report.echo_frames_muted, 0);
            let per_sec = crossings(&seen.samples) as f64 / (seen.samples.len() as f64 / 24_000.0);
            assert!((580.0..=620.0).contains(&per_sec), "{per_sec} crossings/s");
        } else {
            // Every echo frame muted, and nothing else was on the line.
            assert!(
                run.report.echo_frames_muted as usize >= agent,
                "{} muted, {agent} agent frames",
                run.report.echo_frames_muted
            );
            assert!(
                seen.samples.iter().all(|s| *s == 0),
                "the server heard echo"
            );
        }
    }
}

/// A caller who says nothing is reprompted after the silence, then told
/// goodbye and hung up on, each said by the model word for word.
#[tokio::test]
async fn a_silent_caller_is_reprompted_then_hung_up_on() {
    let (url, log, conn) = server(false).await;
    let script = tokio::spawn(async move {
        let mut c = conn.await.unwrap();
        c.until_event("session.update", 1).await;
        for (n, id, words) in [
            (1, "resp_1", "Are you still there?"),
            (2, "resp_2", "It seems we got disconnected. Goodbye."),
        ] {
            let create = c.until_event("response.create", n).await;
            let instructions = create["response"]["instructions"].as_str().unwrap();
            assert!(instructions.contains(words), "{create}");
            let item = format!("item_{n}");
            let reply = Reply {
                id,
                item: &item,
                audio_ms: 600,
                transcript: words,
                pace: None,
                done: true,
                call: None,
            };
            c.reply(&reply).await;
        }
    });
    let mut setup = RealtimeSetup::new("Answer the phone.");
    setup.silence_reprompt = Some(Duration::from_millis(800));
    let sim = Sim {
        amplitude: 0.0,
        echo_gain: 0.0,
    };
    let run = call_with(config(url), setup, Duration::from_secs(8), vec![], sim).await;
    script.await.unwrap();
    assert_eq!(run.recorder.commands(), ["hangup"]);
    let said: Vec<String> = run
        .recorder
        .transcript(true)
        .into_iter()
        .map(|l| l.text)
        .collect();
    assert_eq!(
        said,
        [
            "Are you still there?",
            "It seems we got disconnected. Goodbye."
        ]
    );
    // Nothing was asked of the model but the two.
    assert_eq!(count(&log.lock().unwrap().events, "response.create"), 2);
}

#[tokio::test]
async fn barge_in_flushes_cancels_and_truncates_to_what_was_played() {
    let (url, log, conn) = server(false).await;
    let story = "Once upon a time there was a small dragon who lived \
                 in a cave by the sea and loved to sing";
    let script = tokio::spawn(async move {
        let mut c = conn.await.unwrap();
        c.until_event("session.update", 1).await;
        c.until("caller audio", |s| s.samples.len() >= 12_000).await;
        c.caller_says("in_1", "Tell me a story.", 100, 500).await;
        // Eight seconds of story at twice real time, still streaming
        // when the caller cuts in two seconds later.
        let reply = Reply {
            id: "resp_1",
            item: "item_s",
            audio_ms: 8000,
            transcript: story,
            pace: Some(Duration::from_millis(50)),
            done: false,
            call: None,
        };
        let barge = async {
            tokio::time::sleep(Duration::from_secs(2)).await;
        };
        let mut sent_barge = false;
        tokio::select! {
            () = c.reply(&reply) => {},
            () = barge => sent_barge = true,
        }
        assert!(sent_barge, "the reply finished before the barge-in");
        c.send(
            json!({"type": "input_audio_buffer.speech_started", "item_id": "in_2",
                      "audio_start_ms": 2600}),
        )
        .await;
        c.until_event("response.cancel", 1).await;
        // Audio already on its way when the cancel arrived.
        let late = tone_24k(0, 2400);
        let bytes: Vec<u8> = late.iter().flat_map(|s| s.to_le_bytes()).collect();
        c.send(
            json!({"type": "response.output_audio.delta", "response_id": "resp_1",
                      "item_id": "item_s", "output_index": 0, "content_index": 0,
                      "delta": base64::engine::general_purpose::STANDARD.encode(bytes)}),
        )
        .await;
        c.done("resp_1", "item_s", "cancelled", None).await;
        c.until_event("conversation.item.truncate", 1).await;
    });
    let setup = RealtimeSetup::new("Tell stories.");
    let run = call(config(url), setup, Duration::from_secs(5), vec![]).await;
    script.await.unwrap();
    let seen = log.lock().unwrap();

    // The line was flushed once, and nothing played after it.
    assert_eq!(run.played.flushes.len(), 1);
    let flushed = run.played.flushes[0];
    let loud_before = run
        .played
        .frames
        .iter()
        .filter(|(t, f)| *t <= flushed && loud(f))
        .count();
    let loud_after = run
        .played
        .frames
        .iter()
        .filter(|(t, f)| *t > flushed && loud(f))
        .count();
    assert_eq!(loud_after, 0);
    assert!(loud_before >= 50, "{loud_before} frames played");

    // Cancelled, then cut to what was played.
    let kinds: Vec<&str> = seen
        .events
        .iter()
        .map(|e| e["type"].as_str().unwrap())
        .collect();
    let cancel = kinds.iter().position(|k| *k == "response.cancel").unwrap();
    let truncate = kinds
        .iter()
        .position(|k| *k == "conversation.item.truncate")
        .unwrap();
    assert!(cancel < truncate, "{kinds:?}");
    let t = &seen.events[truncate];
    assert_eq!(t["item_id"], "item_s");
    assert_eq!(t["content_index"], 0);
    let end_ms = t["audio_end_ms"].as_u64().unwrap();
    let played_ms = loud_before as u64 * 20;
    assert!(
        end_ms.abs_diff(played_ms) <= 100,
        "truncated at {end_ms} ms, {played_ms} ms played"
    );

    // The transcript line says what was heard, and that it was cut.
    let agent: Vec<TranscriptLine> = run
        .recorder
        .transcript(true)
        .into_iter()
        .filter(|l| l.speaker == "agent")
        .collect();
    assert_eq!(agent.len(), 1);
    assert!(agent[0].interrupted);
    let heard = &agent[0].text;
    let n = heard.split_whitespace().count();
    assert!((1..10).contains(&n), "{heard:?}");
    let full: Vec<&str> = story.split_whitespace().collect();
    assert_eq!(heard, &full[..n].join(" "));
    assert_eq!(run.recorder.speaking(), [true, false]);
    assert_eq!(
        run.report.messages,
        [
            Message::User {
                text: "Tell me a story.".into()
            },
            Message::Assistant {
                text: heard.clone(),
                interrupted: true,
                tool_calls: vec![],
            },
        ]
    );
    // The call ended with the line: no hangup of the agent's own.
    assert!(run.recorder.commands().is_empty());
}

#[tokio::test]
async fn beta_protocol_keys_send_dtmf_and_the_time_limit() {
    let (url, log, conn) = server(false).await;
    let script = tokio::spawn(async move {
        let mut c = conn.await.unwrap();
        let update = c.until_event("session.update", 1).await;
        assert_eq!(update["session"]["input_audio_format"], "pcm16");
        assert_eq!(update["session"]["voice"], "marin");
        let item = c.until_event("conversation.item.create", 1).await;
        assert_eq!(
            item["item"]["content"][0]["text"],
            "The caller pressed 1 on the keypad."
        );
        c.until_event("response.create", 1).await;
        c.reply(&Reply {
            id: "resp_1",
            item: "item_1",
            audio_ms: 600,
            transcript: "Connecting you to sales.",
            pace: None,
            done: true,
            call: Some(("c_dtmf", "send_dtmf", json!({"digits": "42"}))),
        })
        .await;
        // The time limit: the goodbye is asked for.
        let bye = c.until_event("response.create", 2).await;
        let instructions = bye["response"]["instructions"].as_str().unwrap_or_default();
        assert!(instructions.contains("Time is up. Goodbye."), "{bye}");
        c.reply(&Reply {
            id: "resp_2",
            item: "item_2",
            audio_ms: 800,
            transcript: "Time is up. Goodbye.",
            pace: None,
            done: true,
            call: None,
        })
        .await;
        c.until("the socket to close", |s| s.closed).await;
    });
    let mut setup = RealtimeSetup::new("Route callers.");
    setup.max_duration = Some(Duration::from_secs(3));
    setup.time_up = "Time is up. Goodbye.".into();
    let config = RealtimeAgentConfig {
        protocol: RealtimeProtocol::Beta,
        ..config(url)
    };
    let digits = vec![
        (Duration::from_millis(400), '1'),
        (Duration::from_millis(500), '#'),
    ];
    let run = call(config, setup, Duration::from_secs(12), digits).await;
    script.await.unwrap();
    let seen = log.lock().unwrap();
    assert_eq!(seen.beta.as_deref(), Some("realtime=v1"));

    assert_eq!(run.recorder.commands(), ["dtmf 42", "hangup"]);
    let outputs: Vec<&Value> = of(&seen.events, "conversation.item.create")
        .into_iter()
        .filter(|e| e["item"]["type"] == "function_call_output")
        .collect();
    assert_eq!(outputs.len(), 1);
    assert_eq!(outputs[0]["item"]["call_id"], "c_dtmf");
    // No words asked for after the keys: the next menu is awaited.
    assert_eq!(count(&seen.events, "response.create"), 2);
    let loud = run.played.frames.iter().filter(|(_, f)| loud(f)).count();
    assert!((68..=72).contains(&loud), "{loud} loud frames");
    let agent: Vec<String> = run
        .recorder
        .transcript(true)
        .into_iter()
        .map(|l| l.text)
        .collect();
    assert_eq!(agent, ["Connecting you to sales.", "Time is up. Goodbye."]);
    assert_eq!(
        run.report.messages,
        [
            Message::Dtmf { digits: "1".into() },
            Message::Assistant {
                text: "Connecting you to sales.".into(),
                interrupted: false,
                tool_calls: vec![ToolCall {
                    id: "c_dtmf".into(),
                    name: "send_dtmf".into(),
                    arguments: json!({"digits": "42"}),
                }],
            },
            Message::Tool {
                call_id: "c_dtmf".into(),
                content: r#"{"sent":"42"}"#.into(),
            },
            Message::Assistant {
                text: "Time is up. Goodbye.".into(),
                interrupted: false,
                tool_calls: vec![],
            },
        ]
    );
}

#[tokio::test]
async fn a_refused_connection_is_apologized_for_and_hung_up() {
    let (url, log, _conn) = server(true).await;
    let mut setup = RealtimeSetup::new("Help.");
    setup.apology = "Sorry, try later.".into();
    setup.apology_tts = Some(Arc::new(ScriptedTts {
        per_char: Duration::from_millis(20),
        ..ScriptedTts::default()
    }));
    let run = call(config(url), setup, Duration::from_secs(10), vec![]).await;
    assert_eq!(
        log.lock().unwrap().authorization.as_deref(),
        Some("Bearer sk-realtime-test")
    );
    // "Sorry, try later." is 17 characters: 340 ms of tone.
    let loud: Vec<Instant> = run
        .played
        .frames
        .iter()
        .filter(|(_, f)| loud(f))
        .map(|(t, _)| *t)
        .collect();
    assert!(
        (15..=19).contains(&loud.len()),
        "{} loud frames",
        loud.len()
    );
    assert_eq!(run.recorder.commands(), ["hangup"]);
    let hung_up = run.recorder.commands.lock().unwrap()[0].0;
    assert!(hung_up >= *loud.last().unwrap());
    let [Message::Event { text }] = run.report.messages.as_slice() else {
        panic!("{:?}", run.report.messages);
    };
    assert!(text.contains("authentication failed"), "{text}");
}
