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
    /// Any sound, 16 kHz.
    Sound(Vec<i16>),
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
        let pcm = match item {
            Say::Silence(d) => {
                for _ in 0..(d.as_millis() / 20) {
                    caller.push((false, vec![0; 320]));
                }
                continue;
            }
            Say::Speech(text) => speech(text),
            Say::Sound(pcm) => pcm,
        };
        // The caller "starts speaking" at the first audible frame
        // (espeak-ng's file starts with a little silence).
        let mut started = false;
        for c in pcm.chunks(320) {
            let mut f = c.to_vec();
            f.resize(320, 0);
            let onset = !started && rms(&f) > peers::audio::NON_SILENT_RMS;
            started |= onset;
            caller.push((onset, f));
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

// ------------------------------------------- noise and backchannels ---

/// The real Silero model (`scripts/models` installs it).
fn confirmer() -> Arc<hotline::agent::silero::SpeechConfirmer> {
    use hotline::agent::silero::{SileroConfig, SpeechConfirmer};
    let dir = std::env::var_os("HOTLINE_MODELS_DIR")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| concat!(env!("CARGO_MANIFEST_DIR"), "/data/models").into());
    let config = SileroConfig {
        models_dir: dir,
        ..SileroConfig::default()
    };
    assert!(
        config.model_path().is_file(),
        "{} is missing: run `scripts/models` (or set HOTLINE_MODELS_DIR)",
        config.model_path().display()
    );
    Arc::new(SpeechConfirmer::new(&config).expect("silero loads"))
}

/// A door slamming: a 70 Hz thump with a crack of noise, full scale,
/// dying away over about 200 ms (loud, and voiced enough for the energy
/// VAD to call parts of it speech).
fn door_slam() -> Vec<i16> {
    let mut x: u64 = 0x2545_f491_4f6c_dd1d;
    (0..8_000)
        .map(|n| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let noise = (x >> 11) as f64 / (1u64 << 53) as f64 * 2.0 - 1.0;
            let t = f64::from(n) / 16_000.0;
            let thump = (2.0 * std::f64::consts::PI * 70.0 * t).sin();
            ((0.6 * noise + 0.6 * thump) * (-t / 0.08).exp() * 30_000.0) as i16
        })
        .collect()
}

const REPLY: &str = "This is a long answer. It has several sentences in it. \
                     The caller will not wait for all of them.";

/// The caller asks, then `then` (a backchannel, a slam, an interruption)
/// 2.6 s after asking, about 1.5 s into the agent's reply.
async fn reply_with(spec: AgentSpec, then: Say) -> Run {
    converse(
        spec,
        vec![
            Say::Speech("Tell me everything"),
            Say::Silence(Duration::from_millis(2600)),
            then,
        ],
        Duration::from_secs(14),
        0.0,
        vec![],
    )
    .await
}

fn agent_said(run: &Run) -> Vec<(String, bool)> {
    run.recorder
        .transcript()
        .into_iter()
        .filter(|l| l.speaker == "agent")
        .map(|l| (l.text, l.interrupted))
        .collect()
}

#[tokio::test(start_paused = true)]
async fn silero_keeps_a_door_slam_from_interrupting_but_not_the_caller() {
    let spec_with = |confirmer: Option<_>, stt: &[&str]| {
        let brain = ScriptedBrain::saying(REPLY, Duration::from_millis(200), Duration::ZERO);
        let mut s = spec(stt, brain);
        s.confirmer = confirmer;
        s
    };
    // Without Silero the slam stops the agent: it is loud, beyond the echo
    // guard, and the energy VAD takes part of it for voice.
    let run = reply_with(
        spec_with(None, &["Tell me everything", ""]),
        Say::Sound(door_slam()),
    )
    .await;
    assert_eq!(run.played.flushes.len(), 1, "the slam is a barge-in");

    // With Silero it does not: the reply plays to its end, whole.
    let silero = confirmer();
    let run = reply_with(
        spec_with(Some(silero.clone()), &["Tell me everything", ""]),
        Say::Sound(door_slam()),
    )
    .await;
    assert!(
        run.played.flushes.is_empty(),
        "the slam interrupted the agent"
    );
    assert_eq!(agent_said(&run), [(REPLY.to_owned(), false)]);
    let slam = run.played.speech_starts[1];
    assert!(
        loud(&run.played.frames)
            .iter()
            .any(|t| *t > slam + Duration::from_secs(1)),
        "the agent went on talking"
    );

    // Speech still stops it, as fast as without Silero.
    let run = reply_with(
        spec_with(Some(silero), &["Tell me everything", "Stop please"]),
        Say::Speech("Stop please"),
    )
    .await;
    let barge = run.played.speech_starts[1];
    assert_eq!(run.played.flushes.len(), 1, "one barge-in");
    let flushed = run.played.flushes[0];
    assert!(
        flushed >= barge && flushed - barge <= Duration::from_millis(150),
        "{:?}",
        flushed - barge
    );
    let said = agent_said(&run);
    assert!(said[0].1, "{said:?}");
    assert!(REPLY.starts_with(&said[0].0) && said[0].0.len() < REPLY.len());
}

#[tokio::test(start_paused = true)]
async fn a_backchannel_pauses_the_reply_and_it_resumes_whole() {
    let brain = ScriptedBrain::saying(REPLY, Duration::from_millis(200), Duration::ZERO);
    let run = reply_with(
        spec(&["Tell me everything", "Okay."], brain.clone()),
        Say::Speech("Okay."),
    )
    .await;
    // The agent stopped within the barge-in target, as for any speech.
    let said_okay = run.played.speech_starts[1];
    assert_eq!(run.played.flushes.len(), 1);
    let flushed = run.played.flushes[0];
    assert!(flushed - said_okay <= Duration::from_millis(150));
    // Then it went on with the same reply once the words were known, and
    // was not asked to answer "okay".
    assert_eq!(brain.seen.lock().unwrap().len(), 1);
    let lines: Vec<(&str, String, bool)> = run
        .recorder
        .transcript()
        .into_iter()
        .map(|l| (l.speaker, l.text, l.interrupted))
        .collect();
    assert_eq!(
        lines,
        [
            ("caller", "Tell me everything".into(), false),
            ("caller", "Okay.".into(), false),
            ("agent", REPLY.into(), false),
        ]
    );
    // Its record covers the whole reply, around the caller's line.
    let transcript = run.recorder.transcript();
    let (okay, reply) = (&transcript[1], &transcript[2]);
    assert!(reply.start_ms < okay.start_ms && reply.end_ms > okay.end_ms);
    assert!(matches!(run.report.messages.last(),
        Some(Message::Assistant { text, interrupted: false, .. }) if text == REPLY));
    assert!(
        !run.report
            .messages
            .iter()
            .any(|m| matches!(m, Message::User { text } if text.contains("Okay")))
    );
    // Every frame of the reply played: those before the cut, and after
    // the pause all the rest (with a little of what came before it).
    let reply_frames = REPLY.chars().count() * 3; // 60 ms a character
    let loud = loud(&run.played.frames);
    let before = loud.iter().filter(|t| **t <= flushed).count();
    let resumed: Vec<&Instant> = loud.iter().filter(|t| **t > flushed + FRAME * 2).collect();
    assert!(!resumed.is_empty(), "the reply did not resume");
    assert!(
        before + resumed.len() >= reply_frames,
        "{before} + {} frames of {reply_frames}",
        resumed.len()
    );
    assert!(
        before + resumed.len() <= reply_frames + 25,
        "{before} + {} frames of {reply_frames}: backed up too far",
        resumed.len()
    );
    // It resumed after the caller's words were recognized, not before.
    assert!(*resumed[0] - flushed > Duration::from_millis(600));
}

#[tokio::test(start_paused = true)]
async fn more_than_a_backchannel_still_interrupts() {
    for (words, enabled) in [("Okay, but what about the price?", true), ("Okay.", false)] {
        let brain = ScriptedBrain::saying(REPLY, Duration::from_millis(200), Duration::ZERO);
        let mut s = spec(&["Tell me everything", words], brain.clone());
        s.backchannels.enabled = enabled;
        let say = if enabled {
            Say::Speech("Okay, but what about the price?")
        } else {
            Say::Speech("Okay.")
        };
        let run = reply_with(s, say).await;
        assert_eq!(run.played.flushes.len(), 1, "{words}");
        let said = agent_said(&run);
        // The cut reply, then the answer to the caller's words.
        assert_eq!(said.len(), 2, "{words}: {said:?}");
        assert!(said[0].1, "{words}: {said:?}");
        assert!(REPLY.starts_with(&said[0].0) && said[0].0.len() < REPLY.len());
        let seen = brain.seen.lock().unwrap().clone();
        assert_eq!(seen.len(), 2, "{words}");
        assert!(seen[1].messages.iter().any(|m| matches!(m,
            Message::Assistant { text, interrupted: true, .. } if *text == said[0].0)));
        assert!(
            matches!(seen[1].messages.last(), Some(Message::User { text }) if text == words),
            "{words}"
        );
    }
}

// ------------------------------------------------------------ HTTP tools ---
//
// These run in real time: the tool is a real HTTP server on 127.0.0.1,
// whose sockets do not follow paused time. They assert what was said and
// in what order, never how fast.

/// A tool endpoint that checks Hotline's signature, then answers `answer`
/// after `delay`.
#[derive(Clone)]
struct ToolServer {
    url: String,
    /// The bodies received, and whether each was correctly signed.
    received: Arc<Mutex<Vec<(serde_json::Value, bool)>>>,
}

const TOOL_SECRET: &str = "whsec_tool_test";

async fn tool_server(delay: Duration, answer: &'static str) -> ToolServer {
    use axum::http::{HeaderMap, StatusCode};
    use hotline::api::signing;
    let received: Arc<Mutex<Vec<(serde_json::Value, bool)>>> = Arc::default();
    let seen = received.clone();
    let app = axum::Router::new().route(
        "/tool",
        axum::routing::post(move |headers: HeaderMap, body: axum::body::Bytes| {
            let seen = seen.clone();
            async move {
                let header = |h: &str| {
                    headers
                        .get(h)
                        .and_then(|v| v.to_str().ok())
                        .unwrap_or("")
                        .to_owned()
                };
                let ts: i64 = header(signing::TIMESTAMP_HEADER).parse().unwrap_or(0);
                let now = std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .unwrap()
                    .as_secs() as i64;
                let signed = signing::verify(
                    TOOL_SECRET,
                    &header(signing::SIGNATURE_HEADER),
                    ts,
                    &body,
                    now,
                    300,
                );
                let json = serde_json::from_slice(&body).unwrap_or(serde_json::Value::Null);
                seen.lock().unwrap().push((json, signed));
                if !signed {
                    return (StatusCode::UNAUTHORIZED, "bad signature");
                }
                tokio::time::sleep(delay).await;
                (StatusCode::OK, answer)
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });
    ToolServer {
        url: format!("http://{addr}/tool"),
        received,
    }
}

fn lookup_tool(server: &ToolServer, timeout_ms: u64) -> Vec<hotline::agent::tools::HttpTool> {
    let declared = serde_json::json!([{
        "type": "http",
        "name": "lookup_order",
        "description": "Finds where an order is.",
        "parameters": {"type": "object", "properties": {"number": {"type": "string"}}},
        "url": server.url,
        "timeout_ms": timeout_ms
    }]);
    // No secret of its own: the agent's is passed in.
    hotline::agent::tools::parse_tools(&declared, Some(TOOL_SECRET)).unwrap()
}

fn lookup_call() -> BrainEvent {
    BrainEvent::ToolCall(ToolCall {
        id: "call_lookup".into(),
        name: "lookup_order".into(),
        arguments: serde_json::json!({"number": "42"}),
    })
}

fn agent_lines(run: &Run) -> Vec<(String, bool)> {
    run.recorder
        .transcript()
        .into_iter()
        .filter(|l| l.speaker == "agent")
        .map(|l| (l.text, l.interrupted))
        .collect()
}

fn last_tool_result(messages: &[Message]) -> Option<String> {
    messages.iter().rev().find_map(|m| match m {
        Message::Tool { content, .. } => Some(content.clone()),
        _ => None,
    })
}

#[tokio::test]
async fn a_tool_answer_is_fed_back_and_spoken() {
    let server = tool_server(Duration::from_millis(200), "shipped today").await;
    let brain = ScriptedBrain::new(
        vec![
            vec![BrainEvent::Text("Let me check. ".into()), lookup_call()],
            vec![BrainEvent::Text(format!(
                "Your order {}.",
                hotline::agent::scripted::TOOL_RESULT
            ))],
        ],
        Duration::from_millis(50),
        Duration::ZERO,
    );
    let mut s = spec(&["Where is my order"], brain.clone());
    s.http_tools = lookup_tool(&server, 2_000);
    let run = converse(
        s,
        vec![Say::Speech("Where is my order")],
        Duration::from_secs(8),
        0.0,
        vec![],
    )
    .await;
    // One signed request with the call, the tool and the arguments.
    let received = server.received.lock().unwrap().clone();
    assert_eq!(received.len(), 1);
    let (body, signed) = &received[0];
    assert!(signed, "the request carries a valid Hotline signature");
    assert_eq!(
        *body,
        serde_json::json!({"call_id": "call_test", "tool": "lookup_order", "arguments": {"number": "42"}})
    );
    // The brain was offered the tool, then asked again with the result
    // after the call that asked for it.
    let seen = brain.seen.lock().unwrap().clone();
    assert_eq!(seen.len(), 2);
    assert!(seen[0].tools.iter().any(|t| t.name == "lookup_order"));
    assert!(seen[0].tools.iter().any(|t| t.name == "end_call"));
    match &seen[1].messages[..] {
        [
            Message::User { .. },
            Message::Assistant {
                text, tool_calls, ..
            },
            Message::Tool { call_id, content },
        ] => {
            assert_eq!(text, "Let me check.");
            assert_eq!(tool_calls[0].id, "call_lookup");
            assert_eq!(call_id, "call_lookup");
            assert_eq!(content, "shipped today");
        }
        other => panic!("{other:?}"),
    }
    // The caller heard both parts, as one reply.
    assert_eq!(
        agent_lines(&run),
        [("Let me check. Your order shipped today.".to_owned(), false)]
    );
    // The conversation keeps the round: call, result, answer.
    let m = &run.report.messages;
    assert!(matches!(&m[m.len() - 3..], [
        Message::Assistant { text: a, tool_calls, .. },
        Message::Tool { .. },
        Message::Assistant { text: b, interrupted: false, .. },
    ] if a == "Let me check." && tool_calls.len() == 1 && b == "Your order shipped today."));
}

#[tokio::test]
async fn a_tool_that_times_out_gives_the_brain_an_error_to_answer() {
    let server = tool_server(Duration::from_millis(1_500), "too late").await;
    let brain = ScriptedBrain::new(
        vec![
            vec![lookup_call()],
            vec![BrainEvent::Text(
                "I can't look that up right now, sorry.".into(),
            )],
        ],
        Duration::from_millis(50),
        Duration::ZERO,
    );
    let mut s = spec(&["Where is my order"], brain.clone());
    s.http_tools = lookup_tool(&server, 300);
    let run = converse(
        s,
        vec![Say::Speech("Where is my order")],
        Duration::from_secs(7),
        0.0,
        vec![],
    )
    .await;
    let seen = brain.seen.lock().unwrap().clone();
    assert_eq!(seen.len(), 2);
    let result = last_tool_result(&seen[1].messages).expect("a tool result");
    let result: serde_json::Value = serde_json::from_str(&result).unwrap();
    assert!(
        result["error"]
            .as_str()
            .is_some_and(|e| e.contains("300 ms")),
        "{result}"
    );
    assert_eq!(
        agent_lines(&run),
        [("I can't look that up right now, sorry.".to_owned(), false)]
    );
}

#[tokio::test]
async fn when_the_brain_fails_after_a_tool_the_fixed_line_is_said() {
    let server = tool_server(Duration::from_millis(1_500), "too late").await;
    let brain = ScriptedBrain::new(
        vec![
            vec![lookup_call()],
            vec![BrainEvent::Error(hotline::agent::ProviderError::new(
                "scripted", "down", true,
            ))],
        ],
        Duration::from_millis(50),
        Duration::ZERO,
    );
    let mut s = spec(&["Where is my order"], brain.clone());
    s.http_tools = lookup_tool(&server, 300);
    let run = converse(
        s,
        vec![Say::Speech("Where is my order")],
        Duration::from_secs(7),
        0.0,
        vec![],
    )
    .await;
    assert_eq!(brain.seen.lock().unwrap().len(), 2);
    assert_eq!(
        agent_lines(&run),
        [(
            "Sorry, I couldn't get that information right now.".to_owned(),
            false
        )]
    );
}

#[tokio::test]
async fn a_model_looping_on_tools_is_stopped() {
    let server = tool_server(Duration::ZERO, "{\"status\": \"pending\"}").await;
    // Every reply calls the tool again.
    let brain = ScriptedBrain::new(
        vec![vec![lookup_call()]],
        Duration::from_millis(20),
        Duration::ZERO,
    );
    let mut s = spec(&["Where is my order"], brain.clone());
    s.http_tools = lookup_tool(&server, 2_000);
    s.max_tool_rounds = 2;
    let run = converse(
        s,
        vec![Say::Speech("Where is my order")],
        Duration::from_secs(7),
        0.0,
        vec![],
    )
    .await;
    // The first call and two rounds: three replies, two requests.
    assert_eq!(brain.seen.lock().unwrap().len(), 3);
    assert_eq!(server.received.lock().unwrap().len(), 2);
    assert_eq!(
        agent_lines(&run),
        [(
            "Sorry, I couldn't get that information right now.".to_owned(),
            false
        )]
    );
    // Every tool call in the record has its result.
    let m = &run.report.messages;
    let calls: Vec<&str> = m
        .iter()
        .flat_map(|m| match m {
            Message::Assistant { tool_calls, .. } => {
                tool_calls.iter().map(|c| c.id.as_str()).collect()
            }
            _ => vec![],
        })
        .collect();
    let results = m
        .iter()
        .filter(|m| matches!(m, Message::Tool { .. }))
        .count();
    assert_eq!(calls.len(), 3);
    assert_eq!(results, 3);
    assert!(last_tool_result(m).unwrap().contains("too many tool calls"));
}

#[tokio::test]
async fn a_caller_who_speaks_again_while_the_tool_runs_gets_no_stale_answer() {
    let server = tool_server(Duration::from_millis(2_500), "shipped today").await;
    let brain = ScriptedBrain::new(
        vec![
            vec![lookup_call()],
            vec![BrainEvent::Text("Okay, anything else?".into())],
            vec![BrainEvent::Text(format!(
                "Stale: {}.",
                hotline::agent::scripted::TOOL_RESULT
            ))],
        ],
        Duration::from_millis(50),
        Duration::ZERO,
    );
    let mut s = spec(&["Where is my order", "Never mind"], brain.clone());
    s.http_tools = lookup_tool(&server, 5_000);
    let run = converse(
        s,
        vec![
            Say::Speech("Where is my order"),
            Say::Silence(Duration::from_millis(1_500)),
            Say::Speech("Never mind"),
        ],
        Duration::from_secs(10),
        0.0,
        vec![],
    )
    .await;
    assert_eq!(server.received.lock().unwrap().len(), 1);
    // The brain was asked twice: for the question and for the caller's
    // next words; never with the abandoned tool's result.
    let seen = brain.seen.lock().unwrap().clone();
    assert_eq!(seen.len(), 2, "{seen:?}");
    assert!(last_tool_result(&seen[1].messages).is_none());
    assert_eq!(
        agent_lines(&run),
        [("Okay, anything else?".to_owned(), false)]
    );
}

#[tokio::test]
async fn a_barge_in_while_the_tool_runs_cancels_the_answer() {
    let server = tool_server(Duration::from_millis(4_000), "shipped today").await;
    let brain = ScriptedBrain::new(
        vec![
            vec![
                BrainEvent::Text("Let me check that for you.".into()),
                lookup_call(),
            ],
            vec![BrainEvent::Text("Okay, stopping.".into())],
            vec![BrainEvent::Text(format!(
                "Stale: {}.",
                hotline::agent::scripted::TOOL_RESULT
            ))],
        ],
        Duration::from_millis(50),
        Duration::ZERO,
    );
    let mut s = spec(&["Where is my order", "Stop"], brain.clone());
    s.http_tools = lookup_tool(&server, 6_000);
    // "Let me check that for you." is 26 characters, 1.56 s of tone; the
    // caller speaks again once it has played, while the tool still runs.
    let run = converse(
        s,
        vec![
            Say::Speech("Where is my order"),
            Say::Silence(Duration::from_millis(3_000)),
            Say::Speech("Stop"),
        ],
        Duration::from_secs(10),
        0.0,
        vec![],
    )
    .await;
    assert_eq!(run.played.flushes.len(), 1, "one barge-in");
    let seen = brain.seen.lock().unwrap().clone();
    assert_eq!(seen.len(), 2, "{seen:?}");
    // The brain hears that the tool was cancelled, not its answer.
    let result = last_tool_result(&seen[1].messages).expect("the call is answered");
    assert!(result.contains("cancelled"), "{result}");
    let lines = agent_lines(&run);
    assert_eq!(lines.len(), 2, "{lines:?}");
    assert_eq!(lines[0], ("Let me check that for you.".to_owned(), true));
    assert_eq!(lines[1].0, "Okay, stopping.");
}

// ------------------------------------------------------------- recording ---

#[tokio::test(start_paused = true)]
async fn the_recording_has_the_call_as_heard() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("recordings").join("call_test.wav");
    let long = "This is a long answer. It has several sentences in it. \
                The caller will not wait for all of them. Here is another one. \
                And one more sentence to be sure.";
    let brain = ScriptedBrain::new(
        vec![
            long.split_inclusive(' ')
                .map(|w| BrainEvent::Text(w.to_owned()))
                .collect(),
            vec![BrainEvent::Text("Okay.".into())],
        ],
        Duration::from_millis(200),
        Duration::ZERO,
    );
    let mut s = spec(&["Tell me everything", "Stop please"], brain);
    s.recording = Some(path.clone());
    let total = Duration::from_secs(10);
    let run = converse(
        s,
        vec![
            Say::Speech("Tell me everything"),
            Say::Silence(Duration::from_millis(2600)),
            Say::Speech("Stop please"),
        ],
        total,
        0.0,
        vec![],
    )
    .await;
    let report = run.report.recording.clone().expect("recorded");
    assert_eq!(report.path, path);
    assert_eq!(report.error, None);
    assert_eq!(report.frames_dropped, 0);
    let wav = hotline_media::wav::read_wav(&std::fs::read(&path).unwrap()).unwrap();
    assert_eq!(wav.format.channels, 2);
    assert_eq!(wav.format.sample_rate, 16_000);
    assert!(!wav.truncated, "the header was finalized");
    assert_eq!(report.duration_ms, wav.frames() as u64 * 1000 / 16_000);
    assert!(wav.duration_secs() > 9.0, "{}", wav.duration_secs());
    let (left, right) = (wav.channel(0), wav.channel(1));
    // 20 ms frames on the file's timeline.
    let frame_at = |ch: &[i16], t: Instant| -> f64 {
        let i = ((t - run.t0).as_millis() / 20) as usize * 320;
        ch.get(i..i + 320).map(rms).unwrap_or(0.0)
    };
    let loud_frames = |ch: &[i16], from: Instant, to: Instant| -> usize {
        let (a, b) = (
            (from - run.t0).as_millis() / 20,
            (to - run.t0).as_millis() / 20,
        );
        (a..b)
            .filter(|k| {
                let i = *k as usize * 320;
                ch.get(i..i + 320)
                    .is_some_and(|f| rms(f) > peers::audio::NON_SILENT_RMS)
            })
            .count()
    };
    let f = FRAME;
    // Left: the caller's speech where it was said, silence before it.
    let said = run.played.speech_starts[0];
    assert_eq!(loud_frames(&left, run.t0, said - f), 0);
    assert!(loud_frames(&left, said, said + 10 * f) >= 5);
    // Right: the agent's audio where the line played it, nothing else.
    let played = loud(&run.played.frames);
    assert!(!played.is_empty());
    for t in &played {
        let near = (0..3).any(|k| frame_at(&right, *t - f + k * f) > peers::audio::NON_SILENT_RMS);
        assert!(
            near,
            "agent audio played at {:?} is not in the recording",
            *t - run.t0
        );
    }
    // After the barge-in, silence until the next reply (± one frame of
    // fade), though the interrupted reply had seconds left.
    let flushed = run.played.flushes[0];
    let next = played
        .iter()
        .copied()
        .find(|t| *t > flushed + 2 * f)
        .expect("the agent answered the second turn");
    assert!(next - flushed > Duration::from_millis(500));
    assert_eq!(loud_frames(&right, flushed + 2 * f, next - f), 0);
    assert!(loud_frames(&right, flushed - 10 * f, flushed) >= 5);
    // The right channel holds as many loud frames as the line played.
    let recorded = loud_frames(&right, run.t0, run.t0 + total);
    assert!(
        recorded.abs_diff(played.len()) <= 2,
        "{recorded} recorded, {} played",
        played.len()
    );
}
