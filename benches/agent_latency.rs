//! The voice agent's latency harness: whole calls through
//! [`hotline::agent::pipeline::run`] in real time, against a simulated
//! line that behaves like the RTP session's (a 50-frame queue drained by a
//! pacer at one frame per 20 ms on a deadline clock, with the session's
//! bounded catch-up, and a flush that fades the next frame and drops the
//! rest), and a caller who feeds 20 ms frames of espeak-ng speech and
//! silence on its own 20 ms clock and waits for the agent's replies like a
//! person would.
//!
//! Every time is taken from what the two ends see: when the caller's frames
//! are handed over (so the end of a turn's speech is known from the audio,
//! not from the pipeline) and when the line's pacer takes each agent frame
//! off the queue to send it. The pipeline's own per-turn metrics
//! ([`TurnMetrics`]) are reported beside them.
//!
//! Parts (any of them, in any order; all of them when none is named):
//! - `scripted`: scripted providers with fixed delays (STT final 150 ms
//!   after the audio ends, brain's first token 200 ms, TTS first audio
//!   120 ms): the server-added turn latency.
//! - `greeting`: from `run()` starting (the 200 OK) to the first greeting
//!   frame out, cached and synthesized, scripted TTS and Piper.
//! - `barge`: the caller talks over a long reply 1 s into it: from the
//!   caller's speech onset to the agent's last audible frame out.
//! - `local`: the real local engines (Whisper tiny.en, the demo flow,
//!   Piper), voice to voice over ≥ 20 turns, with the metrics' breakdown.
//! - `concurrency`: N simultaneous real-engine calls, N stepped up.
//!
//! Options (`key=value`): `turns=` (scripted and local turns, default 30
//! and 21), `reps=` (greeting runs per row and barge-ins, default 20),
//! `steps=1,2,4,…` (concurrency, default 1,2,4,6,8,10,12), `cap=` (seconds
//! for the whole concurrency part, default 420), `silero=off` (barge-ins
//! without the Silero check, as before it).
//!
//! Run: `cargo bench --bench agent_latency [-- PART… key=value…]`. Needs
//! the models (`scripts/models`) for `greeting`, `barge` (Silero), `local` and
//! `concurrency`, and espeak-ng and sox (`scripts/deps`) for the caller's
//! speech. Results and the machine go in `benches/RESULTS.md`.

use std::collections::HashMap;
use std::path::PathBuf;
use std::process::Command;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use hotline::agent::espeak::{EspeakConfig, local_tts};
use hotline::agent::flow::FlowBrain;
use hotline::agent::pipeline::{
    self, AgentReport, AgentSpec, CallControl, GreetingCache, Line, TurnMetrics,
};
use hotline::agent::piper::PiperConfig;
use hotline::agent::scripted::{ScriptedBrain, ScriptedStt, ScriptedTts};
use hotline::agent::silero::{SileroConfig, SpeechConfirmer};
use hotline::agent::whisper::{WhisperConfig, WhisperStt};
use hotline::agent::{BrainEvent, CallInfo, Tts};
use hotline::call::CallEvent;
use hotline_media::mix::{Curve, Fader};
use tokio::sync::{broadcast, mpsc};
use tokio::time::{Instant, MissedTickBehavior};

const FRAME: Duration = Duration::from_millis(20);
const FRAME_SAMPLES: usize = 320;
/// The RTP session's play queue (`SessionConfig::play_capacity`) and
/// received-audio queue (`pcm_capacity`): 50 frames, 1 s.
const QUEUE: usize = 50;
/// Overdue ticks the session still sends back to back
/// (`src/rtp/session/catchup.rs`).
const MAX_BURST: u32 = 2;
/// A frame is audible above this RMS (relative to full scale), the tests'
/// non-silence level.
const AUDIBLE: f64 = 0.01;
/// The providers' fixed delays in the `scripted` part.
const STT_DELAY: Duration = Duration::from_millis(150);
const LLM_DELAY: Duration = Duration::from_millis(200);
const TTS_DELAY: Duration = Duration::from_millis(120);
/// Longest any one simulated call may run.
const CALL_CAP: Duration = Duration::from_secs(120);

fn rms(f: &[i16]) -> f64 {
    if f.is_empty() {
        return 0.0;
    }
    let sum: f64 = f.iter().map(|&s| f64::from(s) * f64::from(s)).sum();
    (sum / f.len() as f64).sqrt() / 32768.0
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

// ---------------------------------------------------------------------
// The two ends of a call.

/// One tick of the line's pacer.
#[derive(Debug, Clone, Copy)]
struct Tick {
    at: Instant,
    /// RMS of the agent frame sent; `None` when the queue was empty.
    frame: Option<f64>,
}

/// What the line, the call control and the caller saw.
#[derive(Default)]
struct Shared {
    ticks: Mutex<Vec<Tick>>,
    skipped_ticks: AtomicU64,
    flushes: Mutex<Vec<Instant>>,
    fading: AtomicBool,
    events: Mutex<Vec<(Instant, CallEvent)>>,
    speaking: AtomicBool,
    /// Last time the agent started, and stopped, speaking.
    started_at: Mutex<Option<Instant>>,
    stopped_at: Mutex<Option<Instant>>,
    hung_up: AtomicBool,
}

/// The agent's side of the simulated line: the sink the pacer drains.
struct SimLine {
    sink: mpsc::Sender<Vec<i16>>,
    shared: Arc<Shared>,
}

impl Line for SimLine {
    fn sink(&self) -> &mpsc::Sender<Vec<i16>> {
        &self.sink
    }

    /// As `MediaHandle::flush_with_fade`: the session's next send tick
    /// fades its frame out over 20 ms and drops everything queued.
    async fn flush(&self) {
        self.shared.fading.store(true, Ordering::SeqCst);
        self.shared.flushes.lock().unwrap().push(Instant::now());
    }
}

/// The line's pacer: one frame per 20 ms against a deadline clock, with
/// the RTP session's bounded catch-up and fading flush. Ends when the agent
/// drops its sink.
async fn pacer(mut queue: mpsc::Receiver<Vec<i16>>, shared: Arc<Shared>, first: Instant) {
    let mut tick = tokio::time::interval_at(first, FRAME);
    tick.set_missed_tick_behavior(MissedTickBehavior::Burst);
    let mut fader = Fader::from_ms(16_000, 20.0, Curve::RaisedCosine);
    let mut skipping = 0u32;
    loop {
        let deadline = tick.tick().await;
        let now = Instant::now();
        if skipping > 0 {
            skipping -= 1;
            shared.skipped_ticks.fetch_add(1, Ordering::Relaxed);
            continue;
        }
        let overdue =
            (now.saturating_duration_since(deadline).as_nanos() / FRAME.as_nanos()) as u32;
        if overdue > MAX_BURST {
            skipping = overdue - 1;
            shared.skipped_ticks.fetch_add(1, Ordering::Relaxed);
            continue;
        }
        let frame = if shared.fading.swap(false, Ordering::SeqCst) {
            let first = queue.try_recv().ok();
            for _ in 0..QUEUE {
                if queue.try_recv().is_err() {
                    break;
                }
            }
            first.map(|mut f| {
                fader.fade_out();
                fader.process(&mut f);
                fader.open();
                f
            })
        } else {
            match queue.try_recv() {
                Ok(f) => Some(f),
                Err(mpsc::error::TryRecvError::Empty) => None,
                Err(mpsc::error::TryRecvError::Disconnected) => return,
            }
        };
        shared.ticks.lock().unwrap().push(Tick {
            at: now,
            frame: frame.as_deref().map(rms),
        });
    }
}

/// The call engine's side: hang-ups and events, recorded.
#[derive(Clone)]
struct Recorder(Arc<Shared>);

impl CallControl for Recorder {
    fn hangup(&self) {
        self.0.hung_up.store(true, Ordering::SeqCst);
    }
    fn transfer(&self, _target: &str) {}
    fn send_dtmf(&self, _digits: &str) {}
    fn publish(&self, event: CallEvent) {
        let now = Instant::now();
        if let CallEvent::AgentSpeaking { speaking } = event {
            self.0.speaking.store(speaking, Ordering::SeqCst);
            let slot = if speaking {
                &self.0.started_at
            } else {
                &self.0.stopped_at
            };
            *slot.lock().unwrap() = Some(now);
        }
        self.0.events.lock().unwrap().push((now, event));
    }
}

/// When the caller says its next line.
#[derive(Debug, Clone, Copy)]
enum Trigger {
    /// Once the agent has answered the previous line and been quiet for
    /// `gap`, or `timeout` after the previous line when no answer comes.
    Idle { gap: Duration, timeout: Duration },
    /// `after` into the agent's reply to the previous line (a barge-in),
    /// or `timeout` after the previous line.
    IntoReply { after: Duration, timeout: Duration },
}

#[derive(Clone)]
struct Utterance {
    text: String,
    pcm: Arc<Vec<i16>>,
    trigger: Trigger,
}

/// How the caller ends the call.
#[derive(Debug, Clone, Copy, PartialEq)]
enum End {
    /// After the agent's answer to the last line (or `timeout`), or when
    /// the agent hangs up.
    AfterReply { timeout: Duration },
    /// As soon as the agent's first frame has gone out (greetings).
    FirstAgentFrame,
    /// `after` the last line ends.
    After(Duration),
}

/// One line the caller said, as fed.
#[derive(Debug, Clone)]
struct Said {
    text: String,
    /// Start of the first audible frame's audio (its hand-over minus 20 ms).
    onset: Instant,
    /// Hand-over of the last audible frame: the end of the speech.
    end: Instant,
}

/// The caller: frames of speech and silence every 20 ms in real time.
async fn caller(
    frames: mpsc::Sender<Vec<i16>>,
    plan: Vec<Utterance>,
    end: End,
    shared: Arc<Shared>,
    first: Instant,
    cap: Duration,
) -> (Vec<Said>, u64) {
    let mut tick = tokio::time::interval_at(first, FRAME);
    tick.set_missed_tick_behavior(MissedTickBehavior::Burst);
    let silence = vec![0i16; FRAME_SAMPLES];
    let mut said: Vec<Said> = Vec::new();
    let mut dropped = 0u64;
    // The line being said and the position in it.
    let mut speaking: Option<(usize, usize)> = None;
    // Its entry in `said`, once it has been audible.
    let mut current: Option<usize> = None;
    let mut next = 0usize;
    let mut last_end = first;
    let mut tail_until: Option<Instant> = None;
    loop {
        tick.tick().await;
        let now = Instant::now();
        if now - first >= cap || shared.hung_up.load(Ordering::SeqCst) {
            break;
        }
        if tail_until.is_some_and(|t| now >= t) {
            break;
        }
        let agent_speaking = shared.speaking.load(Ordering::SeqCst);
        let started = *shared.started_at.lock().unwrap();
        let stopped = *shared.stopped_at.lock().unwrap();
        let answered = started.is_some_and(|s| s > last_end);
        let idle_for =
            |gap: Duration| answered && !agent_speaking && stopped.is_some_and(|s| now - s >= gap);
        if speaking.is_none() && tail_until.is_none() {
            if let Some(line) = plan.get(next) {
                let go = match line.trigger {
                    Trigger::Idle { gap, timeout } => idle_for(gap) || now - last_end >= timeout,
                    Trigger::IntoReply { after, timeout } => {
                        (answered && agent_speaking && started.is_some_and(|s| now - s >= after))
                            || now - last_end >= timeout
                    }
                };
                if go {
                    speaking = Some((next, 0));
                    next += 1;
                }
            } else {
                let done = match end {
                    End::AfterReply { timeout } => {
                        idle_for(Duration::from_millis(200)) || now - last_end >= timeout
                    }
                    End::FirstAgentFrame => shared
                        .ticks
                        .lock()
                        .unwrap()
                        .iter()
                        .any(|t| t.frame.is_some()),
                    End::After(d) => now - last_end >= d,
                };
                if done {
                    tail_until = Some(now + Duration::from_millis(100));
                }
            }
        }
        let frame = match speaking {
            Some((i, pos)) => {
                let pcm = &plan[i].pcm;
                let mut f = pcm[pos..(pos + FRAME_SAMPLES).min(pcm.len())].to_vec();
                f.resize(FRAME_SAMPLES, 0);
                if rms(&f) > AUDIBLE {
                    if current.is_none() {
                        said.push(Said {
                            text: plan[i].text.clone(),
                            onset: now - FRAME,
                            end: now,
                        });
                        current = Some(said.len() - 1);
                    }
                    if let Some(c) = current {
                        said[c].end = now;
                    }
                }
                let pos = pos + FRAME_SAMPLES;
                if pos >= pcm.len() {
                    speaking = None;
                    last_end = current.map_or(now, |c| said[c].end);
                    current = None;
                } else {
                    speaking = Some((i, pos));
                }
                f
            }
            None => silence.clone(),
        };
        match frames.try_send(frame) {
            Ok(()) => {}
            Err(mpsc::error::TrySendError::Full(_)) => dropped += 1,
            Err(mpsc::error::TrySendError::Closed(_)) => break,
        }
    }
    (said, dropped)
}

/// Everything one call produced.
struct CallRun {
    t0: Instant,
    report: AgentReport,
    ticks: Vec<Tick>,
    skipped_ticks: u64,
    flushes: Vec<Instant>,
    events: Vec<(Instant, CallEvent)>,
    said: Vec<Said>,
    caller_dropped: u64,
}

/// Runs one call: the line's pacer and the caller start first (a media
/// session exists before the answer), `run()` starts at `t0` (the 200 OK),
/// `phase` after a pacer tick.
async fn call(spec: AgentSpec, plan: Vec<Utterance>, end: End, phase: Duration) -> CallRun {
    let shared = Arc::new(Shared::default());
    let (sink, queue) = mpsc::channel(QUEUE);
    let (frames_tx, frames_rx) = mpsc::channel(QUEUE);
    let (_events_tx, events_rx) = broadcast::channel(64);
    let first = Instant::now() + FRAME;
    let pacer = tokio::spawn(pacer(queue, shared.clone(), first));
    // The caller's clock runs 10 ms off the line's, as two independent
    // clocks would.
    let caller = tokio::spawn(caller(
        frames_tx,
        plan,
        end,
        shared.clone(),
        first + Duration::from_millis(10),
        CALL_CAP,
    ));
    tokio::time::sleep_until(first + FRAME + phase).await;
    let line = SimLine {
        sink,
        shared: shared.clone(),
    };
    let info = CallInfo {
        call_id: "call_bench".into(),
        from: "+14155550100".into(),
        to: "agent".into(),
        direction: "inbound".into(),
    };
    let t0 = Instant::now();
    let report = match tokio::time::timeout(
        CALL_CAP + Duration::from_secs(5),
        pipeline::run(
            spec,
            info,
            frames_rx,
            line,
            Recorder(shared.clone()),
            events_rx,
        ),
    )
    .await
    {
        Ok(r) => r,
        Err(_) => panic!("a call ran past its {CALL_CAP:?} cap"),
    };
    let (said, caller_dropped) = match tokio::time::timeout(Duration::from_secs(5), caller).await {
        Ok(r) => r.expect("caller task"),
        Err(_) => panic!("the caller did not stop after the call ended"),
    };
    // The pacer sends what is still queued, then ends with the sink.
    let _ = tokio::time::timeout(Duration::from_secs(3), pacer).await;
    let ticks = std::mem::take(&mut *shared.ticks.lock().unwrap());
    let flushes = std::mem::take(&mut *shared.flushes.lock().unwrap());
    let events = std::mem::take(&mut *shared.events.lock().unwrap());
    CallRun {
        t0,
        report,
        ticks,
        skipped_ticks: shared.skipped_ticks.load(Ordering::Relaxed),
        flushes,
        events,
        said,
        caller_dropped,
    }
}

impl CallRun {
    /// The first agent frame (audible or any) out on the line at or after `t`.
    fn first_out(&self, t: Instant, audible: bool) -> Option<Instant> {
        self.ticks
            .iter()
            .find(|k| k.at >= t && k.frame.is_some_and(|r| !audible || r > AUDIBLE))
            .map(|k| k.at)
    }

    /// The turn metrics published between `from` and `to`, with the time
    /// they were published (when the reply's first frame was queued).
    fn turn_between(&self, from: Instant, to: Instant) -> Option<(Instant, TurnMetrics)> {
        self.events.iter().find_map(|(at, e)| match e {
            CallEvent::AgentTurn(m) if *at >= from && *at < to => Some((*at, m.clone())),
            _ => None,
        })
    }

    /// Ticks that found the queue empty while a reply was playing: between
    /// the first and the last frame sent inside each stretch the agent
    /// said it was speaking.
    fn underruns(&self) -> u64 {
        let mut n = 0;
        let mut on: Option<Instant> = None;
        for (at, e) in &self.events {
            let CallEvent::AgentSpeaking { speaking } = e else {
                continue;
            };
            match (speaking, on) {
                (true, _) => on = Some(*at),
                (false, Some(start)) => {
                    let stretch: Vec<&Tick> = self
                        .ticks
                        .iter()
                        .filter(|k| k.at >= start && k.at <= *at)
                        .collect();
                    let first = stretch.iter().position(|k| k.frame.is_some());
                    let last = stretch.iter().rposition(|k| k.frame.is_some());
                    if let (Some(a), Some(b)) = (first, last) {
                        n += stretch[a..=b].iter().filter(|k| k.frame.is_none()).count() as u64;
                    }
                    on = None;
                }
                (false, None) => {}
            }
        }
        n
    }
}

// ---------------------------------------------------------------------
// Statistics and output.

/// Nearest-rank percentile.
fn pct(v: &[f64], p: f64) -> f64 {
    let mut s = v.to_vec();
    s.sort_by(f64::total_cmp);
    let k = ((p * s.len() as f64).ceil() as usize).clamp(1, s.len());
    s[k - 1]
}

fn row(label: &str, v: &[f64]) {
    if v.is_empty() {
        println!("| {label} | 0 | – | – | – | – |");
        return;
    }
    let min = v.iter().copied().fold(f64::INFINITY, f64::min);
    let max = v.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    println!(
        "| {label} | {} | {:.1} | {:.1} | {:.1} | {:.1} |",
        v.len(),
        min,
        pct(v, 0.5),
        pct(v, 0.95),
        max
    );
}

fn header(title: &str) {
    println!("\n### {title}\n");
    println!("| measure (ms) | n | min | p50 | p95 | max |");
    println!("|---|---:|---:|---:|---:|---:|");
}

// ---------------------------------------------------------------------
// Speech and engines.

fn models_dir() -> PathBuf {
    let dir = std::env::var_os("HOTLINE_MODELS_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/data/models")));
    assert!(
        dir.join("whisper/ggml-tiny.en-q8_0.bin").is_file()
            && dir.join("piper/en_US-joe-medium").is_dir(),
        "models missing in {}: run `scripts/models`",
        dir.display()
    );
    dir
}

/// espeak-ng speech (en-us, 150 wpm) at 16 kHz, made once per text.
struct Voice {
    dir: PathBuf,
    cache: HashMap<String, Arc<Vec<i16>>>,
}

impl Voice {
    fn new() -> Self {
        let dir = std::env::temp_dir().join(format!("agent_latency_{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        Voice {
            dir,
            cache: HashMap::new(),
        }
    }

    fn say(&mut self, text: &str) -> Arc<Vec<i16>> {
        if let Some(p) = self.cache.get(text) {
            return p.clone();
        }
        let (raw, out) = (self.dir.join("raw.wav"), self.dir.join("16k.wav"));
        let ok = Command::new("espeak-ng")
            .args(["-v", "en-us", "-s", "150", "-w"])
            .arg(&raw)
            .arg(text)
            .status()
            .expect("espeak-ng (scripts/deps)");
        assert!(ok.success(), "espeak-ng failed");
        let ok = Command::new("sox")
            .arg(&raw)
            .args(["-r", "16000", "-c", "1", "-b", "16", "-e", "signed-integer"])
            .arg(&out)
            .status()
            .expect("sox (scripts/deps)");
        assert!(ok.success(), "sox failed");
        let wav = hotline_media::wav::read_wav(&std::fs::read(&out).unwrap()).unwrap();
        let pcm = Arc::new(wav.to_mono());
        self.cache.insert(text.to_owned(), pcm.clone());
        pcm
    }

    fn line(&mut self, text: &str, trigger: Trigger) -> Utterance {
        Utterance {
            text: text.to_owned(),
            pcm: self.say(text),
            trigger,
        }
    }
}

impl Drop for Voice {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

const CALLER_LINES: &[&str] = &[
    "I would like to check my order.",
    "Can you tell me your opening hours?",
    "My package has not arrived yet.",
    "I need to change my delivery address.",
    "Is the store open on Sunday?",
    "Please cancel my subscription.",
    "How much does the premium plan cost?",
    "I want to speak to someone about a refund.",
    "Can I book a table for two tonight?",
    "What is the status of my repair?",
];

const NAMES: &[&str] = &[
    "John Smith",
    "Mary Johnson",
    "Peter Brown",
    "Susan Miller",
    "David Wilson",
    "Linda Moore",
    "James Taylor",
    "Karen Anderson",
    "Robert Thomas",
    "Nancy Jackson",
];

const MESSAGES: &[&str] = &[
    "Please call me back tomorrow morning about the invoice.",
    "The delivery arrived damaged and I would like a replacement.",
    "I will be late for my appointment on Friday.",
    "Could you send me the contract by email?",
    "My internet has been down since yesterday evening.",
    "I would like to book a meeting next week.",
    "The heating in my apartment is not working.",
    "Please tell Anna that the keys are at the front desk.",
    "I found a mistake on my last bill.",
    "Call me when the parts for my car are in.",
];

const LONG_REPLY: &str = "Our opening hours are from nine in the morning to six in the evening. \
    On Saturdays we close at one in the afternoon. On Sundays and public holidays we are closed. \
    You can also reach us by email at any time. We usually answer within one working day. \
    Is there anything else I can help you with today?";

fn scripted_spec(stt_texts: Vec<String>, reply: &str) -> AgentSpec {
    AgentSpec::new(
        Arc::new(ScriptedStt::new(stt_texts, STT_DELAY)),
        // The whole reply in one event: sentences the brain is still
        // writing are the brain's time, not the server's.
        Arc::new(ScriptedBrain::new(
            vec![vec![BrainEvent::Text(reply.to_owned())]],
            LLM_DELAY,
            Duration::ZERO,
        )),
        Arc::new(ScriptedTts {
            // Piper's rate, so the agent's resampling is in the path.
            rate: 22_050,
            per_char: Duration::from_millis(30),
            first_audio: TTS_DELAY,
        }),
    )
}

struct Engines {
    stt: Arc<WhisperStt>,
    tts: Arc<dyn Tts>,
    brain: Arc<FlowBrain>,
}

impl Engines {
    /// The product's local defaults (each engine's own pool settings).
    fn load() -> Self {
        let dir = models_dir();
        let stt = WhisperStt::new(&WhisperConfig {
            models_dir: dir.clone(),
            ..WhisperConfig::default()
        })
        .unwrap_or_else(|e| panic!("{e} (run scripts/models)"));
        let tts = local_tts(
            &PiperConfig {
                models_dir: dir,
                ..PiperConfig::default()
            },
            &EspeakConfig::default(),
        );
        assert_eq!(
            tts.name(),
            "piper",
            "the Piper voice did not load (run scripts/models)"
        );
        Engines {
            stt: Arc::new(stt),
            tts,
            brain: Arc::new(FlowBrain::demo()),
        }
    }

    fn spec(&self) -> AgentSpec {
        AgentSpec::new(self.stt.clone(), self.brain.clone(), self.tts.clone())
    }
}

/// The demo flow's conversation: a hello (the flow then greets and asks
/// for a name), a name, a message (it then says goodbye and hangs up).
fn demo_plan(voice: &mut Voice, i: usize) -> Vec<Utterance> {
    let hello = [
        "Hello.",
        "Hi there.",
        "Good morning.",
        "Hello, is anyone there?",
    ];
    let first = Trigger::Idle {
        gap: Duration::from_millis(700),
        timeout: Duration::from_millis(1000),
    };
    let then = Trigger::Idle {
        gap: Duration::from_millis(700),
        timeout: Duration::from_secs(20),
    };
    vec![
        voice.line(hello[i % hello.len()], first),
        voice.line(&format!("My name is {}.", NAMES[i % NAMES.len()]), then),
        voice.line(MESSAGES[i % MESSAGES.len()], then),
    ]
}

// ---------------------------------------------------------------------
// The parts.

/// Per answered caller line: the line, the metrics, and the line's view.
struct Turn {
    said: Said,
    metrics: TurnMetrics,
    /// When the metrics were published (the first frame was queued).
    queued: Instant,
    /// First agent frame out after the end of the speech.
    out: Instant,
    /// First audible one.
    audible: Option<Instant>,
}

fn turns_of(run: &CallRun) -> (Vec<Turn>, usize) {
    let mut turns = Vec::new();
    let mut unanswered = 0;
    for (i, s) in run.said.iter().enumerate() {
        let until = run
            .said
            .get(i + 1)
            .map_or(run.t0 + Duration::from_secs(3600), |n| n.onset);
        let Some((queued, metrics)) = run.turn_between(s.end, until) else {
            unanswered += 1;
            continue;
        };
        let Some(out) = run.first_out(queued, false) else {
            unanswered += 1;
            continue;
        };
        turns.push(Turn {
            said: s.clone(),
            metrics,
            queued,
            out,
            audible: run.first_out(queued, true),
        });
    }
    (turns, unanswered)
}

fn field(turns: &[Turn], f: impl Fn(&TurnMetrics) -> Option<u64>) -> Vec<f64> {
    turns
        .iter()
        .filter_map(|t| f(&t.metrics))
        .map(|v| v as f64)
        .collect()
}

async fn scripted(voice: &mut Voice, n_turns: usize) {
    let per_call = 10;
    let mut turns = Vec::new();
    let mut unanswered = 0;
    let mut endpoint = Duration::ZERO;
    let mut call_no = 0;
    while turns.len() + unanswered < n_turns && call_no < n_turns {
        let n = per_call.min(n_turns - turns.len() - unanswered);
        let lines: Vec<&str> = (0..n)
            .map(|k| CALLER_LINES[(call_no * per_call + k) % CALLER_LINES.len()])
            .collect();
        let spec = scripted_spec(
            lines.iter().map(|s| s.to_string()).collect(),
            "Sure, I can help with that.",
        );
        endpoint = spec.endpoint_silence;
        let plan: Vec<Utterance> = lines
            .iter()
            .enumerate()
            .map(|(k, t)| {
                let timeout = if k == 0 { 1 } else { 15 };
                voice.line(
                    t,
                    Trigger::Idle {
                        gap: Duration::from_millis(500),
                        timeout: Duration::from_secs(timeout),
                    },
                )
            })
            .collect();
        let phase = Duration::from_millis((call_no as u64 * 7) % 20);
        let run = call(
            spec,
            plan,
            End::AfterReply {
                timeout: Duration::from_secs(10),
            },
            phase,
        )
        .await;
        let (t, u) = turns_of(&run);
        turns.extend(t);
        unanswered += u;
        call_no += 1;
    }
    let fixed = STT_DELAY + LLM_DELAY + TTS_DELAY;
    header(&format!(
        "Scripted providers: STT {} ms, brain {} ms, TTS {} ms; endpoint silence {} ms",
        STT_DELAY.as_millis(),
        LLM_DELAY.as_millis(),
        TTS_DELAY.as_millis(),
        endpoint.as_millis()
    ));
    row(
        "**server-added, from TurnMetrics.server_ms**",
        &field(&turns, |m| m.server_ms),
    );
    let line_v2v: Vec<f64> = turns.iter().map(|t| ms(t.out - t.said.end)).collect();
    row(
        "**server-added, from the line**: end of speech → first frame out − endpoint silence − fixed delays",
        &line_v2v
            .iter()
            .map(|v| v - ms(endpoint) - ms(fixed))
            .collect::<Vec<_>>(),
    );
    row("end of speech → first frame out (line)", &line_v2v);
    row(
        "of which: end of speech → end-of-turn decision (VAD)",
        &turns
            .iter()
            .filter_map(|t| {
                let v2v = Duration::from_millis(t.metrics.voice_to_voice_ms?);
                Some(ms(t.queued.checked_sub(v2v)? - t.said.end))
            })
            .collect::<Vec<_>>(),
    );
    row(
        "of which: TurnMetrics.voice_to_voice_ms (decision → first frame queued)",
        &field(&turns, |m| m.voice_to_voice_ms),
    );
    row(
        "of which: first frame queued → out on the line (pacer)",
        &turns
            .iter()
            .map(|t| ms(t.out - t.queued))
            .collect::<Vec<_>>(),
    );
    row("TurnMetrics.stt_ms", &field(&turns, |m| m.stt_ms));
    row(
        "TurnMetrics.llm_first_token_ms",
        &field(&turns, |m| m.llm_first_token_ms),
    );
    row(
        "TurnMetrics.tts_first_audio_ms",
        &field(&turns, |m| m.tts_first_audio_ms),
    );
    row(
        "first frame out → first audible frame out",
        &turns
            .iter()
            .filter_map(|t| Some(ms(t.audible? - t.out)))
            .collect::<Vec<_>>(),
    );
    println!(
        "\n{} turns answered, {} caller lines unanswered, {} calls.",
        turns.len(),
        unanswered,
        call_no
    );
}

async fn greeting(voice: &mut Voice, reps: usize, engines: Option<&Engines>) {
    let _ = voice;
    let text = "Hello! You've reached the Hotline demo agent.";
    header("Greeting start: run() (the 200 OK) → first greeting frame out");
    let mut rows: Vec<(String, AgentSpec)> = Vec::new();
    let scripted = scripted_spec(Vec::new(), "unused");
    rows.push((
        format!(
            "scripted TTS ({} ms to first audio), synthesized",
            TTS_DELAY.as_millis()
        ),
        scripted.clone(),
    ));
    rows.push(("scripted TTS, cached".into(), scripted));
    if let Some(e) = engines {
        rows.push(("Piper, synthesized".into(), e.spec()));
        rows.push(("Piper, cached".into(), e.spec()));
    }
    for (label, mut spec) in rows {
        spec.first_message = Some(text.into());
        if label.ends_with("cached") {
            let cache = GreetingCache::default();
            cache
                .warm(spec.tts.as_ref(), None, None, text)
                .await
                .expect("greeting synthesized");
            spec.greetings = Arc::new(cache);
        } else {
            // A warm-up call: ONNX Runtime allocates on its first run.
            call(spec.clone(), Vec::new(), End::FirstAgentFrame, FRAME / 2).await;
        }
        let mut first = Vec::new();
        let mut audible = Vec::new();
        for i in 0..reps {
            let phase = Duration::from_millis((i as u64 * 7) % 20);
            let run = call(spec.clone(), Vec::new(), End::FirstAgentFrame, phase).await;
            if let Some(t) = run.first_out(run.t0, false) {
                first.push(ms(t - run.t0));
            }
            if let Some(t) = run.first_out(run.t0, true) {
                audible.push(ms(t - run.t0));
            }
        }
        row(&format!("{label}: first frame"), &first);
        row(&format!("{label}: first audible frame"), &audible);
    }
}

async fn barge(voice: &mut Voice, reps: usize, silero: bool) {
    let mut plan = vec![voice.line(
        "Can you tell me your opening hours?",
        Trigger::Idle {
            gap: Duration::from_millis(500),
            timeout: Duration::from_secs(1),
        },
    )];
    for k in 0..reps {
        plan.push(voice.line(
            [
                "Wait, stop please.",
                "Sorry, one moment.",
                "Hold on, I have a question.",
                "No, that is not what I asked.",
                "Excuse me, can I interrupt?",
            ][k % 5],
            Trigger::IntoReply {
                after: Duration::from_secs(1),
                timeout: Duration::from_secs(15),
            },
        ));
    }
    let texts: Vec<String> = plan.iter().map(|l| l.text.clone()).collect();
    let mut spec = scripted_spec(texts, LONG_REPLY);
    // As the server runs it: Silero must hear speech in the onset.
    if silero {
        let config = SileroConfig {
            models_dir: models_dir(),
            ..SileroConfig::default()
        };
        spec.confirmer = Some(Arc::new(
            SpeechConfirmer::new(&config).expect("the Silero model loads"),
        ));
    }
    let barge_min = spec.turns.barge_in_min;
    let run = call(
        spec,
        plan,
        End::After(Duration::from_millis(500)),
        FRAME / 2,
    )
    .await;
    let mut stop = Vec::new();
    let mut decide = Vec::new();
    let mut fade = Vec::new();
    let mut missed = 0;
    let mut by_line: std::collections::BTreeMap<String, Vec<f64>> = Default::default();
    for s in run.said.iter().skip(1) {
        // Nothing of a new reply plays before the line has ended and the
        // endpoint silence (600 ms) has passed.
        let window_end = s.end + Duration::from_millis(300);
        let last = run
            .ticks
            .iter()
            .filter(|k| k.at >= s.onset && k.at <= window_end)
            .filter(|k| k.frame.is_some_and(|r| r > AUDIBLE))
            .map(|k| k.at)
            .next_back();
        let flush = run
            .flushes
            .iter()
            .copied()
            .find(|f| *f >= s.onset && *f <= window_end);
        match (last, flush) {
            (Some(l), Some(f)) => {
                by_line
                    .entry(s.text.clone())
                    .or_default()
                    .push(ms(l - s.onset));
                stop.push(ms(l - s.onset));
                decide.push(ms(f - s.onset));
                fade.push(ms(l.saturating_duration_since(f)));
            }
            (None, Some(f)) => {
                stop.push(0.0);
                decide.push(ms(f - s.onset));
            }
            _ => missed += 1,
        }
    }
    header(&format!(
        "Barge-in 1 s into a long reply (barge_in_min {} ms, Silero {})",
        barge_min.as_millis(),
        if silero { "on" } else { "off" }
    ));
    row(
        "**caller's speech onset → last audible agent frame out**",
        &stop,
    );
    row("of which: onset → barge-in decided (line flushed)", &decide);
    row("of which: flush → last audible frame out (fade)", &fade);
    for (text, v) in &by_line {
        row(&format!("onset → last audible frame, {text:?}"), v);
    }
    println!(
        "\n{} barge-ins measured, {} caller lines did not interrupt the agent, {} flushes.",
        stop.len(),
        missed,
        run.flushes.len()
    );
}

/// A few real-engine calls at once; their turns and counters.
struct Batch {
    turns: Vec<Turn>,
    unanswered: usize,
    stt_dropped: u64,
    caller_dropped: u64,
    underruns: u64,
    skipped_ticks: u64,
    heard: Vec<(String, String)>,
    wall: Duration,
}

async fn batch(engines: &Engines, voice: &mut Voice, n: usize, first_call: usize) -> Batch {
    let start = Instant::now();
    let mut handles = Vec::new();
    for k in 0..n {
        let plan = demo_plan(voice, first_call + k);
        let spec = engines.spec();
        // Calls start spread over 2 s, as independent callers would.
        let delay = Duration::from_millis(2000 * k as u64 / n.max(1) as u64);
        handles.push(tokio::spawn(async move {
            tokio::time::sleep(delay).await;
            call(
                spec,
                plan,
                End::AfterReply {
                    timeout: Duration::from_secs(20),
                },
                Duration::from_millis((k as u64 * 7) % 20),
            )
            .await
        }));
    }
    let mut b = Batch {
        turns: Vec::new(),
        unanswered: 0,
        stt_dropped: 0,
        caller_dropped: 0,
        underruns: 0,
        skipped_ticks: 0,
        heard: Vec::new(),
        wall: Duration::ZERO,
    };
    for h in handles {
        let run = h.await.expect("call task");
        let (t, u) = turns_of(&run);
        b.turns.extend(t);
        b.unanswered += u;
        b.stt_dropped += run.report.stt_frames_dropped;
        b.caller_dropped += run.caller_dropped;
        b.underruns += run.underruns();
        b.skipped_ticks += run.skipped_ticks;
        let finals: Vec<String> = run
            .events
            .iter()
            .filter_map(|(_, e)| match e {
                CallEvent::Transcript(l) if l.is_final && l.speaker == "caller" => {
                    Some(l.text.clone())
                }
                _ => None,
            })
            .collect();
        for (s, f) in run.said.iter().zip(finals) {
            b.heard.push((s.text.clone(), f));
        }
    }
    b.wall = start.elapsed();
    b
}

async fn local(engines: &Engines, voice: &mut Voice, n_turns: usize) {
    let mut all: Vec<Turn> = Vec::new();
    let mut unanswered = 0;
    let mut counters = (0u64, 0u64, 0u64, 0u64);
    let mut heard = Vec::new();
    let mut calls = 0;
    while all.len() < n_turns && calls < n_turns {
        let b = batch(engines, voice, 1, calls).await;
        all.extend(b.turns);
        unanswered += b.unanswered;
        counters.0 += b.stt_dropped;
        counters.1 += b.caller_dropped;
        counters.2 += b.underruns;
        counters.3 += b.skipped_ticks;
        heard.extend(b.heard);
        calls += 1;
    }
    let endpoint = engines.spec().endpoint_silence;
    header("Real local engines (Whisper tiny.en, demo flow, Piper), one call at a time");
    let line_v2v: Vec<f64> = all.iter().map(|t| ms(t.out - t.said.end)).collect();
    row(
        "**voice to voice: end of speech → first agent frame out (line)**",
        &line_v2v,
    );
    row(
        "end of speech → first audible agent frame out",
        &all.iter()
            .filter_map(|t| Some(ms(t.audible? - t.said.end)))
            .collect::<Vec<_>>(),
    );
    row(
        &format!(
            "voice to voice − endpoint silence ({} ms)",
            endpoint.as_millis()
        ),
        &line_v2v
            .iter()
            .map(|v| v - ms(endpoint))
            .collect::<Vec<_>>(),
    );
    row(
        "TurnMetrics.voice_to_voice_ms (decision → first frame queued)",
        &field(&all, |m| m.voice_to_voice_ms),
    );
    row("TurnMetrics.stt_ms", &field(&all, |m| m.stt_ms));
    row(
        "TurnMetrics.llm_first_token_ms",
        &field(&all, |m| m.llm_first_token_ms),
    );
    row(
        "TurnMetrics.tts_first_audio_ms",
        &field(&all, |m| m.tts_first_audio_ms),
    );
    row("TurnMetrics.server_ms", &field(&all, |m| m.server_ms));
    println!(
        "\n{} turns answered in {} calls, {} caller lines unanswered; STT frames dropped {}, \
         caller frames dropped {}, line underruns {}, pacer ticks skipped {}.",
        all.len(),
        calls,
        unanswered,
        counters.0,
        counters.1,
        counters.2,
        counters.3
    );
    println!("\nWhat Whisper heard (first 6 lines):\n");
    for (said, got) in heard.iter().take(6) {
        println!("- said {said:?}, heard {got:?}");
    }
}

async fn concurrency(engines: &Engines, voice: &mut Voice, steps: &[usize], cap: Duration) {
    let start = Instant::now();
    println!("\n### Concurrent real-engine calls (3 caller turns each, starts spread over 2 s)\n");
    println!(
        "Whisper concurrency {}, threads {}; Piper max_concurrent {}, threads {}.\n",
        WhisperConfig::default().concurrency,
        WhisperConfig::default().threads,
        PiperConfig::default().max_concurrent,
        PiperConfig::default().threads
    );
    println!(
        "| calls | turns | v2v p50 | v2v p95 | v2v max | p95 / 1-call p95 | STT p95 | TTS first audio p95 | \
         STT frames dropped | caller frames dropped | line underruns | ticks skipped | unanswered | wall |"
    );
    println!("|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|");
    let mut base: Option<f64> = None;
    let mut sustained = 0;
    let mut calls_so_far = 100;
    for &n in steps {
        // A step takes about 25 s; do not start one that cannot finish.
        if start.elapsed() + Duration::from_secs(40) > cap {
            println!("\n(stopped before {n} calls: the {cap:?} cap)");
            break;
        }
        let b = batch(engines, voice, n, calls_so_far).await;
        calls_so_far += n;
        let v2v: Vec<f64> = b.turns.iter().map(|t| ms(t.out - t.said.end)).collect();
        if v2v.is_empty() {
            println!(
                "| {n} | 0 | – | – | – | – | – | – | {} | – | – | – | – | – |",
                b.stt_dropped
            );
            break;
        }
        let p95 = pct(&v2v, 0.95);
        let base_p95 = *base.get_or_insert(p95);
        let ratio = p95 / base_p95;
        let ok = ratio <= 1.5 && b.stt_dropped == 0 && b.unanswered == 0;
        if ok {
            sustained = n;
        }
        println!(
            "| {n} | {} | {:.0} | {:.0} | {:.0} | {:.2}{} | {:.0} | {:.0} | {} | {} | {} | {} | {} | {:.0} s |",
            v2v.len(),
            pct(&v2v, 0.5),
            p95,
            pct(&v2v, 1.0),
            ratio,
            if ok { "" } else { " ✗" },
            pct(&field(&b.turns, |m| m.stt_ms), 0.95),
            pct(&field(&b.turns, |m| m.tts_first_audio_ms), 0.95),
            b.stt_dropped,
            b.caller_dropped,
            b.underruns,
            b.skipped_ticks,
            b.unanswered,
            b.wall.as_secs_f64()
        );
        if !ok && n > 1 {
            break;
        }
    }
    println!(
        "\nSustained: {sustained} calls (largest N with voice-to-voice p95 ≤ 1.5 × the single-call \
         p95, no STT frames dropped, every line answered)."
    );
}

fn main() {
    let mut parts: Vec<String> = Vec::new();
    let mut opts: HashMap<String, String> = HashMap::new();
    for a in std::env::args().skip(1) {
        if a.starts_with("--") {
            continue; // `--bench` from cargo
        }
        match a.split_once('=') {
            Some((k, v)) => {
                opts.insert(k.to_owned(), v.to_owned());
            }
            None => parts.push(a),
        }
    }
    let all = ["scripted", "greeting", "barge", "local", "concurrency"];
    if parts.is_empty() {
        parts = all.iter().map(|s| s.to_string()).collect();
    }
    for p in &parts {
        assert!(
            all.contains(&p.as_str()),
            "unknown part {p:?}; parts: {all:?}"
        );
    }
    let num = |k: &str, d: usize, max: usize| {
        opts.get(k)
            .and_then(|v| v.parse::<usize>().ok())
            .unwrap_or(d)
            .clamp(1, max)
    };
    let steps: Vec<usize> = opts
        .get("steps")
        .map(|s| {
            s.split(',')
                .filter_map(|n| n.parse().ok())
                .filter(|n| (1..=32).contains(n))
                .collect()
        })
        .unwrap_or_else(|| vec![1, 2, 4, 6, 8, 10, 12]);
    let cap = Duration::from_secs(num("cap", 420, 1800) as u64);
    let has = |p: &str| parts.iter().any(|x| x == p);

    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let mut voice = Voice::new();
    let needs_engines = has("greeting") || has("local") || has("concurrency");
    let engines = needs_engines.then(|| {
        let t = std::time::Instant::now();
        let e = Engines::load();
        println!(
            "Loaded Whisper and Piper in {:.2} s.",
            t.elapsed().as_secs_f64()
        );
        e
    });
    rt.block_on(async {
        if has("scripted") {
            scripted(&mut voice, num("turns", 30, 200)).await;
        }
        if has("greeting") {
            greeting(&mut voice, num("reps", 20, 200), engines.as_ref()).await;
        }
        if has("barge") {
            let silero = opts.get("silero").is_none_or(|v| v != "off");
            barge(&mut voice, num("reps", 20, 200), silero).await;
        }
        if let Some(e) = engines.as_ref() {
            if has("local") {
                local(e, &mut voice, num("turns", 21, 200)).await;
            }
            if has("concurrency") {
                concurrency(e, &mut voice, &steps, cap).await;
            }
        }
    });
}
