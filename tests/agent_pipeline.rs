//! The voice agent's call task against a simulated line, with scripted
//! providers and real speech (espeak-ng) from the caller, in paused time:
//! each test is a whole conversation that runs faster than realtime and
//! the same way every time.
//!
//! The line plays the agent's queued frames one per 20 ms (as the RTP
//! session does), records what it played and when, and sends the caller's
//! audio: a script of speech and silence, plus, for the echo tests, the
//! agent's own audio coming back at a lower level.

mod peers;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use hotline::agent::pipeline::{self, AgentReport, AgentSpec, CallControl, Line};
use hotline::agent::provider::{BrainEvent, CallInfo, Message, ToolCall};
use hotline::agent::scripted::{ScriptedBrain, ScriptedStt, ScriptedTts};
use hotline::call::{CallEvent, DigitSource, TranscriptLine};
use tokio::sync::{broadcast, mpsc};
use tokio::time::Instant;

const FRAME: Duration = Duration::from_millis(20);

/// Caller audio, frame by frame.
#[derive(Clone)]
enum Say {
    Silence(Duration),
    Speech(&'static str),
}

#[derive(Default)]
struct Played {
    /// (time, rms) of each frame the line played.
    frames: Vec<(Instant, f64)>,
    /// Times the agent flushed the line.
    flushes: Vec<Instant>,
    /// When each caller speech item started.
    speech_starts: Vec<Instant>,
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
    commands: Arc<Mutex<Vec<String>>>,
}

impl CallControl for Recorder {
    fn hangup(&self) {
        self.commands.lock().unwrap().push("hangup".into());
    }
    fn transfer(&self, target: &str) {
        self.commands
            .lock()
            .unwrap()
            .push(format!("transfer {target}"));
    }
    fn send_dtmf(&self, digits: &str) {
        self.commands.lock().unwrap().push(format!("dtmf {digits}"));
    }
    fn publish(&self, event: CallEvent) {
        self.events.lock().unwrap().push((Instant::now(), event));
    }
}

impl Recorder {
    fn transcript(&self) -> Vec<TranscriptLine> {
        self.events
            .lock()
            .unwrap()
            .iter()
            .filter_map(|(_, e)| match e {
                CallEvent::Transcript(l) if l.is_final => Some(l.clone()),
                _ => None,
            })
            .collect()
    }
}

fn speech(text: &str) -> Vec<i16> {
    let wav = peers::media::speech_wav(text, 16_000).expect("espeak-ng and sox (scripts/deps)");
    peers::media::read_pcm(&wav).unwrap().1
}

fn rms(f: &[i16]) -> f64 {
    peers::audio::rms(f)
}

struct Run {
    /// When the call started.
    t0: Instant,
    report: AgentReport,
    recorder: Recorder,
    played: Played,
}

/// Runs `spec` against a caller saying `script` (then silence until
/// `total`), with the agent's audio echoed back at `echo_gain` after
/// `echo_delay` (0 for no echo). `digits` are key presses at given times.
async fn converse(
    spec: AgentSpec,
    script: Vec<Say>,
    total: Duration,
    echo_gain: f32,
    digits: Vec<(Duration, char)>,
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
    // The caller's audio, as 20 ms frames.
    let mut caller: Vec<(bool, Vec<i16>)> = Vec::new();
    for item in script {
        match item {
            Say::Silence(d) => {
                for _ in 0..(d.as_millis() / 20) {
                    caller.push((false, vec![0; 320]));
                }
            }
            Say::Speech(text) => {
                // The caller "starts speaking" at the first audible frame
                // (espeak-ng's file starts with a little silence).
                let mut started = false;
                for c in speech(text).chunks(320) {
                    let mut f = c.to_vec();
                    f.resize(320, 0);
                    let onset = !started && rms(&f) > peers::audio::NON_SILENT_RMS;
                    started |= onset;
                    caller.push((onset, f));
                }
            }
        }
    }
    let t0 = Instant::now();
    let sim_played = played.clone();
    let sim = tokio::spawn(async move {
        let mut tick = tokio::time::interval_at(t0 + FRAME, FRAME);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
        let mut echo: std::collections::VecDeque<Vec<i16>> = std::collections::VecDeque::new();
        let mut n = 0usize;
        let mut digits = digits.into_iter().peekable();
        loop {
            tick.tick().await;
            let now = Instant::now();
            if now - t0 >= total {
                break;
            }
            let out = queue.lock().unwrap().try_recv().ok();
            if let Some(f) = &out {
                sim_played.lock().unwrap().frames.push((now, rms(f)));
            }
            echo.push_back(out.unwrap_or_else(|| vec![0; 320]));
            let back = if echo.len() > 3 {
                echo.pop_front().unwrap()
            } else {
                vec![0; 320]
            };
            let (starts, mut frame) = caller.get(n).cloned().unwrap_or((false, vec![0; 320]));
            if starts {
                sim_played.lock().unwrap().speech_starts.push(now);
            }
            for (c, e) in frame.iter_mut().zip(&back) {
                *c = c.saturating_add((f32::from(*e) * echo_gain) as i16);
            }
            n += 1;
            if frames_tx.send(frame).await.is_err() {
                break;
            }
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
        // The call ends: the line goes quiet and the caller hangs up.
        drop(frames_tx);
    });
    let call = CallInfo {
        call_id: "call_test".into(),
        from: "+14155550100".into(),
        to: "agent".into(),
        direction: "inbound".into(),
    };
    let report = pipeline::run(spec, call, frames_rx, line, recorder.clone(), events_rx).await;
    sim.abort();
    let played = std::mem::take(&mut *played.lock().unwrap());
    Run {
        t0,
        report,
        recorder,
        played,
    }
}

fn spec(stt: &[&str], brain: ScriptedBrain) -> AgentSpec {
    AgentSpec::new(
        Arc::new(ScriptedStt::new(stt.to_vec(), Duration::from_millis(150))),
        Arc::new(brain),
        Arc::new(ScriptedTts {
            first_audio: Duration::from_millis(80),
            ..ScriptedTts::default()
        }),
    )
}

/// Frames above the non-silence level (RMS relative to full scale).
fn loud(frames: &[(Instant, f64)]) -> Vec<Instant> {
    frames
        .iter()
        .filter(|(_, r)| *r > peers::audio::NON_SILENT_RMS)
        .map(|(t, _)| *t)
        .collect()
}

#[tokio::test(start_paused = true)]
async fn greets_hears_the_caller_and_answers() {
    let brain = ScriptedBrain::saying(
        "Sure. What is your order number?",
        Duration::from_millis(300),
        Duration::from_millis(20),
    );
    let mut s = spec(&["I need help with my order"], brain.clone());
    s.first_message = Some("Hello, how can I help?".into());
    let run = converse(
        s,
        vec![
            Say::Silence(Duration::from_secs(3)),
            Say::Speech("I need help with my order"),
        ],
        Duration::from_secs(12),
        0.0,
        vec![],
    )
    .await;
    let lines = run.recorder.transcript();
    let said: Vec<(&str, &str, bool)> = lines
        .iter()
        .map(|l| (l.speaker, l.text.as_str(), l.interrupted))
        .collect();
    assert_eq!(
        said,
        [
            ("agent", "Hello, how can I help?", false),
            ("caller", "I need help with my order", false),
            ("agent", "Sure. What is your order number?", false),
        ]
    );
    // The brain saw the greeting and the caller's words.
    let seen = brain.seen.lock().unwrap().clone();
    assert_eq!(seen.len(), 1);
    assert!(matches!(&seen[0].messages[..], [
        Message::Assistant { text: g, interrupted: false, .. },
        Message::User { text: u },
    ] if g == "Hello, how can I help?" && u == "I need help with my order"));
    // The greeting started at once; the reply came after the caller.
    let loud = loud(&run.played.frames);
    assert!(!loud.is_empty());
    let speech_start = run.played.speech_starts[0];
    assert!(loud[0] < speech_start);
    assert!(loud.iter().any(|t| *t > speech_start));
    assert!(run.played.flushes.is_empty());
    // One turn's metrics; the providers' scripted delays are inside them.
    assert_eq!(run.report.turns.len(), 1);
    let m = &run.report.turns[0];
    assert_eq!(m.stt_ms, Some(150));
    assert_eq!(m.llm_first_token_ms, Some(300));
    assert_eq!(m.tts_first_audio_ms, Some(80));
    let v2v = m.voice_to_voice_ms.unwrap();
    assert!(v2v >= 150 + 300 + 80, "{m:?}");
    assert_eq!(m.server_ms, Some(v2v - 530));
}

#[tokio::test(start_paused = true)]
async fn the_caller_cuts_a_long_reply_short() {
    let long = "This is a long answer. It has several sentences in it. \
                The caller will not wait for all of them. Here is another one. \
                And one more sentence to be sure.";
    let brain = ScriptedBrain::saying(long, Duration::from_millis(200), Duration::ZERO);
    let s = spec(&["Tell me everything", "Stop please"], brain.clone());
    let run = converse(
        s,
        vec![
            Say::Speech("Tell me everything"),
            Say::Silence(Duration::from_millis(2600)),
            Say::Speech("Stop please"),
        ],
        Duration::from_secs(10),
        0.0,
        vec![],
    )
    .await;
    // The agent's audio stopped within 150 ms of the caller's speech.
    let barge_speech = run.played.speech_starts[1];
    assert_eq!(run.played.flushes.len(), 1, "one barge-in");
    let flushed = run.played.flushes[0];
    assert!(flushed >= barge_speech);
    assert!(
        flushed - barge_speech <= Duration::from_millis(150),
        "{:?}",
        flushed - barge_speech
    );
    assert!(
        loud(&run.played.frames)
            .iter()
            .all(|t| *t <= flushed || *t > flushed + Duration::from_millis(1500)),
        "the interrupted reply did not go on playing"
    );
    // The transcript has the truncated reply, marked interrupted.
    let lines = run.recorder.transcript();
    let reply = lines
        .iter()
        .find(|l| l.speaker == "agent")
        .expect("the agent's reply");
    assert!(reply.interrupted);
    assert!(!reply.text.is_empty());
    assert!(long.starts_with(&reply.text), "{:?}", reply.text);
    assert!(reply.text.len() < long.len());
    // The brain's next request carries the cut reply and the interruption.
    let seen = brain.seen.lock().unwrap().clone();
    assert_eq!(seen.len(), 2);
    assert!(seen[1].messages.iter().any(|m| matches!(m,
        Message::Assistant { text, interrupted: true, .. } if *text == reply.text)));
    assert!(
        matches!(seen[1].messages.last(), Some(Message::User { text }) if text == "Stop please")
    );
}

#[tokio::test(start_paused = true)]
async fn its_own_echo_does_not_interrupt_the_agent() {
    let long = "This reply comes back down the line at minus ten decibels. \
                The agent must not take it for the caller. It keeps talking to the end.";
    let brain = ScriptedBrain::saying(long, Duration::from_millis(100), Duration::ZERO);
    let s = spec(&["Hello"], brain);
    let run = converse(
        s,
        vec![Say::Speech("Hello")],
        Duration::from_secs(12),
        0.316,
        vec![],
    )
    .await;
    assert!(run.played.flushes.is_empty(), "no barge-in");
    let lines = run.recorder.transcript();
    let texts: Vec<&str> = lines.iter().map(|l| l.text.as_str()).collect();
    assert_eq!(texts, ["Hello", long]);
    assert!(!lines[1].interrupted);
}

#[tokio::test(start_paused = true)]
async fn silence_gets_a_reprompt_then_a_goodbye() {
    let brain = ScriptedBrain::saying("unused", Duration::ZERO, Duration::ZERO);
    let mut s = spec(&[], brain.clone());
    s.first_message = Some("Hi.".into());
    let run = converse(s, vec![], Duration::from_secs(30), 0.0, vec![]).await;
    let texts: Vec<String> = run
        .recorder
        .transcript()
        .into_iter()
        .map(|l| l.text)
        .collect();
    assert_eq!(
        texts,
        [
            "Hi.",
            "Are you still there?",
            "It seems we got disconnected. Goodbye."
        ]
    );
    assert_eq!(*run.recorder.commands.lock().unwrap(), ["hangup"]);
    assert!(brain.seen.lock().unwrap().is_empty());
}

#[tokio::test(start_paused = true)]
async fn end_call_hangs_up_after_the_goodbye_is_heard() {
    let brain = ScriptedBrain::new(
        vec![vec![
            BrainEvent::Text("Thanks for calling, goodbye.".into()),
            BrainEvent::ToolCall(ToolCall {
                id: "t1".into(),
                name: "end_call".into(),
                arguments: serde_json::json!({}),
            }),
        ]],
        Duration::from_millis(100),
        Duration::ZERO,
    );
    let s = spec(&["That's all, bye"], brain);
    let run = converse(
        s,
        vec![Say::Speech("That's all, bye")],
        Duration::from_secs(15),
        0.0,
        vec![],
    )
    .await;
    assert_eq!(*run.recorder.commands.lock().unwrap(), ["hangup"]);
    let last = run.recorder.transcript().pop().unwrap();
    assert_eq!(last.text, "Thanks for calling, goodbye.");
    assert!(!last.interrupted);
    assert!(
        matches!(run.report.messages.last(), Some(Message::Assistant { tool_calls, .. }) if tool_calls[0].name == "end_call")
    );
}

#[tokio::test(start_paused = true)]
async fn key_presses_reach_the_brain_as_one_turn() {
    let brain = ScriptedBrain::saying("Got it.", Duration::from_millis(50), Duration::ZERO);
    let s = spec(&[], brain.clone());
    let digits = vec![
        (Duration::from_millis(500), '1'),
        (Duration::from_millis(700), '2'),
        (Duration::from_millis(900), '3'),
        (Duration::from_millis(1100), '#'),
    ];
    let run = converse(s, vec![], Duration::from_secs(5), 0.0, digits).await;
    let seen = brain.seen.lock().unwrap().clone();
    assert_eq!(seen.len(), 1);
    assert_eq!(
        seen[0].messages,
        [Message::Dtmf {
            digits: "123".into()
        }]
    );
    assert_eq!(run.recorder.transcript().last().unwrap().text, "Got it.");
}

#[tokio::test(start_paused = true)]
async fn the_time_limit_ends_the_call_politely() {
    let brain = ScriptedBrain::saying("unused", Duration::ZERO, Duration::ZERO);
    let mut s = spec(&[], brain);
    s.max_duration = Some(Duration::from_secs(3));
    s.time_up = "We have reached the time limit. Goodbye.".into();
    let run = converse(s, vec![], Duration::from_secs(10), 0.0, vec![]).await;
    let texts: Vec<String> = run
        .recorder
        .transcript()
        .into_iter()
        .map(|l| l.text)
        .collect();
    assert_eq!(texts, ["We have reached the time limit. Goodbye."]);
    assert_eq!(*run.recorder.commands.lock().unwrap(), ["hangup"]);
    let first = loud(&run.played.frames)[0];
    assert!(first - run.t0 >= Duration::from_secs(3));
}

/// The demo flow as the brain: it speaks first, takes a name and a
/// message, says goodbye and hangs up; its outcome is the flow's.
fn flow_spec(stt: &[&str]) -> AgentSpec {
    let mut s = spec(stt, ScriptedBrain::saying("unused", FRAME, FRAME));
    s.brain = Arc::new(hotline::agent::flow::FlowBrain::demo());
    s.brain_leads = true;
    s
}

#[tokio::test(start_paused = true)]
async fn a_flow_speaks_first_and_runs_to_its_end() {
    let run = converse(
        flow_spec(&["My name is Alice", "Please call me back about the invoice"]),
        vec![
            Say::Silence(Duration::from_secs(6)),
            Say::Speech("My name is Alice"),
            Say::Silence(Duration::from_secs(4)),
            Say::Speech("Please call me back about the invoice"),
        ],
        Duration::from_secs(40),
        0.0,
        vec![],
    )
    .await;
    let said: Vec<(&str, String)> = run
        .recorder
        .transcript()
        .into_iter()
        .map(|l| (l.speaker, l.text))
        .collect();
    assert_eq!(said.len(), 5, "{said:?}");
    assert_eq!(said[0].0, "agent");
    assert!(said[0].1.contains("Hotline demo agent"), "{said:?}");
    assert!(said[0].1.contains("your name"), "{said:?}");
    assert_eq!(said[1], ("caller", "My name is Alice".into()));
    assert!(said[2].1.contains("What message"), "{said:?}");
    assert!(said[4].1.starts_with("Thank you, Alice"), "{said:?}");
    assert_eq!(*run.recorder.commands.lock().unwrap(), ["hangup"]);
    // It spoke before the caller did.
    let loud = loud(&run.played.frames);
    assert!(loud[0] < run.played.speech_starts[0]);
    let outcome = run.report.outcome.expect("a flow reports its outcome");
    assert_eq!(outcome.outcome, "achieved");
    assert_eq!(outcome.data["name"], "Alice");
}

#[tokio::test(start_paused = true)]
async fn a_cached_flow_opening_plays_without_waiting_for_tts() {
    let call = CallInfo::default();
    let uncached = converse(flow_spec(&[]), vec![], Duration::from_secs(2), 0.0, vec![]).await;
    let spec = flow_spec(&[]);
    let text = pipeline::ready_opening(spec.brain.as_ref(), &call).expect("a flow opens at once");
    assert!(text.contains("Hotline demo agent"));
    spec.greetings
        .warm(spec.tts.as_ref(), None, None, &text)
        .await
        .unwrap();
    let cached = converse(spec, vec![], Duration::from_secs(2), 0.0, vec![]).await;
    // The scripted TTS takes 80 ms to its first audio; the cached opening
    // is on the line from the first tick.
    let first = |r: &Run| loud(&r.played.frames)[0] - r.t0;
    assert!(first(&cached) <= FRAME * 2, "{:?}", first(&cached));
    assert!(
        first(&uncached) >= Duration::from_millis(80),
        "{:?}",
        first(&uncached)
    );
}

#[tokio::test(start_paused = true)]
async fn a_flow_handles_the_callers_silence_itself() {
    let run = converse(flow_spec(&[]), vec![], Duration::from_secs(90), 0.0, vec![]).await;
    let said: Vec<String> = run
        .recorder
        .transcript()
        .into_iter()
        .map(|l| l.text)
        .collect();
    // The flow's own no-input prompts, not the generic reprompt.
    assert!(
        said.iter().any(|t| t.contains("didn't hear anything")),
        "{said:?}"
    );
    assert!(
        !said.iter().any(|t| t.contains("Are you still there")),
        "{said:?}"
    );
    assert_eq!(*run.recorder.commands.lock().unwrap(), ["hangup"]);
    assert_eq!(run.report.outcome.unwrap().outcome, "not_achieved");
}
