//! The agent's call task: the thin async driver around the sans-IO turn
//! manager. It owns the call's conversation, runs the caller's frames
//! through the VAD and the turn manager, opens and closes recognitions,
//! asks the brain, streams sentences to TTS and TTS audio to the line, and
//! acts on barge-in, silence, digits and the brain's tool calls.
//!
//! Nothing here waits on a slow party while holding up another: caller
//! frames are taken as they come (a recognition that cannot keep up loses
//! frames, counted), agent audio goes to the line only as fast as the
//! line's bounded queue takes it, and the brain and TTS are read only when
//! there is room for what they produce.

use std::collections::VecDeque;
use std::future::Future;
use std::path::PathBuf;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use hotline_media::vad::{Vad, VadConfig, VadEvent, VadFrame};
use serde::Serialize;
use serde_json::json;
use tokio::sync::{broadcast, mpsc};
use tokio::time::{Instant, sleep_until};
use tracing::{debug, info, warn};

use super::backchannel::{Backchannels, Handed};
use super::echo::rms;
use super::onset::{heard_speech, onset_audio};
use super::playout::{FrameMaker, Playout};
use super::recording::{Recording, RecordingReport};
use super::sentences::SentenceSplitter;
use super::tool_rounds::{ToolRounds, ToolRunner};
use super::transfer::{PendingTransfer, Settled};
use super::turns::{TurnAction, TurnConfig, TurnManager};
use crate::agent::ProviderError;
use crate::agent::provider::{
    Brain, BrainEvent, BrainOutcome, BrainSession, CallInfo, Conversation, Message, Stt, SttEvent,
    SttOptions, ToolCall, ToolSpec, Tts, TtsEvent, TtsOptions,
};
use crate::agent::silero::{SpeechConfirmer, to_f32};
use crate::agent::tools::HttpTool;
use crate::call::{CallEvent, TranscriptLine};
use crate::rtp::{FRAME_SAMPLES, PCM_RATE, PTIME};

/// Caller audio kept from before an utterance's confirmed start, so the
/// recognition hears its first syllable.
const PREROLL: Duration = Duration::from_millis(400);
/// Agent frames converted but not yet queued on the line: bounds how far
/// TTS may run ahead of playback inside the call task.
const MAX_PENDING_FRAMES: usize = 25;
/// Digits end a keypad turn after this long without another (or at `#`).
const DIGIT_GAP: Duration = Duration::from_millis(1500);
/// Silences a leading brain (a flow) may answer beyond `reprompts` before
/// the pipeline says goodbye itself.
const MAX_BRAIN_REPROMPTS: usize = 3;

/// Everything an agent call needs besides the call itself.
#[derive(Clone)]
pub struct AgentSpec {
    /// Speech-to-text.
    pub stt: Arc<dyn Stt>,
    /// The brain.
    pub brain: Arc<dyn Brain>,
    /// Text-to-speech.
    pub tts: Arc<dyn Tts>,
    /// Instructions for the brain.
    pub system_prompt: String,
    /// Said as soon as the call is answered; the agent waits for the caller
    /// when unset.
    pub first_message: Option<String>,
    /// Whether the brain leads the conversation (a flow): without a first
    /// message it speaks first, as soon as the call is answered, and the
    /// caller's silences go to it (a flow has its own no-input prompts)
    /// rather than to `reprompts`.
    pub brain_leads: bool,
    /// Whether the caller can interrupt the greeting.
    pub greeting_interruptible: bool,
    /// Tools offered to the brain (the built-in call tools are added).
    pub tools: Vec<ToolSpec>,
    /// HTTP tools the brain may call (offered with `tools`); see
    /// [`crate::agent::tools`].
    pub http_tools: Vec<HttpTool>,
    /// Tool rounds (tool calls, results, the brain asked again) one reply
    /// may take, so a model looping on tools cannot run forever.
    pub max_tool_rounds: usize,
    /// Said if the brain fails after calling a tool, or runs out of tool
    /// rounds without an answer.
    pub tool_failure: String,
    /// Where to record the call (stereo WAV, caller left, agent right);
    /// not recorded when unset.
    pub recording: Option<PathBuf>,
    /// Turn-taking.
    pub turns: TurnConfig,
    /// Silence that ends the caller's turn.
    pub endpoint_silence: Duration,
    /// Said on the first silences; one element per reprompt.
    pub reprompts: Vec<String>,
    /// Said before hanging up on a silent caller.
    pub goodbye: String,
    /// Said before hanging up at the time limit.
    pub time_up: String,
    /// Said if the brain fails.
    pub apology: String,
    /// The call is ended (gracefully) after this long.
    pub max_duration: Option<Duration>,
    /// STT and TTS language.
    pub language: Option<String>,
    /// TTS voice.
    pub voice: Option<String>,
    /// Where `transfer_call` sends the caller (the agent's transfer
    /// number); the number the brain names is used only when unset.
    pub transfer_to: Option<String>,
    /// Pre-synthesized greetings.
    pub greetings: Arc<GreetingCache>,
    /// Silero, which must hear speech in the caller's sound before it
    /// interrupts the agent (see [`super::onset`]); without it, any loud
    /// voiced sound of `turns.barge_in_min` does.
    pub confirmer: Option<Arc<SpeechConfirmer>>,
    /// Caller words over the agent that do not interrupt it (see
    /// [`super::backchannel`]).
    pub backchannels: Backchannels,
}

impl std::fmt::Debug for AgentSpec {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AgentSpec")
            .field("stt", &self.stt.name())
            .field("brain", &self.brain.name())
            .field("tts", &self.tts.name())
            .field("first_message", &self.first_message)
            .finish_non_exhaustive()
    }
}

impl AgentSpec {
    /// A spec with the defaults for everything but the providers.
    pub fn new(stt: Arc<dyn Stt>, brain: Arc<dyn Brain>, tts: Arc<dyn Tts>) -> Self {
        AgentSpec {
            stt,
            brain,
            tts,
            system_prompt: String::new(),
            first_message: None,
            brain_leads: false,
            greeting_interruptible: true,
            tools: Vec::new(),
            http_tools: Vec::new(),
            max_tool_rounds: 3,
            tool_failure: "Sorry, I couldn't get that information right now.".into(),
            recording: None,
            turns: TurnConfig::default(),
            endpoint_silence: Duration::from_millis(600),
            reprompts: vec!["Are you still there?".into()],
            goodbye: "It seems we got disconnected. Goodbye.".into(),
            time_up: "I'm sorry, we've reached the time limit for this call. Goodbye.".into(),
            apology: "Sorry, I'm having trouble right now. Please call again later.".into(),
            max_duration: None,
            language: None,
            voice: None,
            transfer_to: None,
            greetings: Arc::default(),
            confirmer: None,
            backchannels: Backchannels::default(),
        }
    }
}

/// Greetings synthesized ahead of calls, as 16 kHz frames, by TTS, voice
/// and text. Bounded: the oldest entry goes when it is full.
#[derive(Debug, Default)]
pub struct GreetingCache {
    entries: std::sync::Mutex<VecDeque<(String, Greeting)>>,
}

/// A synthesized greeting: 20 ms frames at [`PCM_RATE`].
pub type Greeting = Arc<[Vec<i16>]>;

/// How many greetings the cache keeps.
const GREETING_CACHE_SIZE: usize = 64;

impl GreetingCache {
    fn key(tts: &dyn Tts, voice: Option<&str>, text: &str) -> String {
        format!("{}\u{1}{}\u{1}{text}", tts.name(), voice.unwrap_or(""))
    }

    /// The frames of a greeting, if synthesized already.
    pub fn get(&self, tts: &dyn Tts, voice: Option<&str>, text: &str) -> Option<Greeting> {
        let key = Self::key(tts, voice, text);
        let entries = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        entries
            .iter()
            .find(|(k, _)| *k == key)
            .map(|(_, f)| f.clone())
    }

    /// Synthesizes `text` (unless cached) and keeps it.
    pub async fn warm(
        &self,
        tts: &dyn Tts,
        voice: Option<&str>,
        language: Option<&str>,
        text: &str,
    ) -> Result<Greeting, String> {
        if let Some(f) = self.get(tts, voice, text) {
            return Ok(f);
        }
        let options = TtsOptions {
            voice: voice.map(str::to_owned),
            language: language.map(str::to_owned),
        };
        let stream = tts.start(&options);
        let mut splitter = SentenceSplitter::new();
        let mut sentences = splitter.push(text);
        sentences.extend(splitter.finish());
        for s in sentences {
            stream
                .text
                .send(s)
                .await
                .map_err(|_| format!("{} stopped", tts.name()))?;
        }
        drop(stream.text);
        let mut audio = stream.audio;
        let mut maker = FrameMaker::new();
        let mut frames = Vec::new();
        while let Some(ev) = audio.recv().await {
            match ev {
                TtsEvent::Audio { segment, chunk } => maker.push(segment, &chunk, &mut frames)?,
                TtsEvent::SegmentDone { .. } => {}
                TtsEvent::Error(e) => return Err(e.to_string()),
            }
        }
        maker.finish(&mut frames);
        let frames: Greeting = frames.into_iter().map(|(_, f)| f).collect();
        let key = Self::key(tts, voice, text);
        let mut entries = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        if entries.len() >= GREETING_CACHE_SIZE {
            entries.pop_front();
        }
        entries.push_back((key, frames.clone()));
        Ok(frames)
    }
}

/// The opening words of a brain that answers at once (a flow), so they
/// can be synthesized into the [`GreetingCache`] ahead of calls; `None`
/// for a brain that takes time to answer (an LLM) or opens with a tool.
/// Must be called inside a tokio runtime.
pub fn ready_opening(brain: &dyn Brain, call: &CallInfo) -> Option<String> {
    let mut session = brain.start_call(call);
    let mut rx = session.respond(&Conversation::default());
    let mut text = String::new();
    loop {
        match rx.try_recv() {
            Ok(BrainEvent::Text(t)) => text.push_str(&t),
            Ok(BrainEvent::Done) | Err(mpsc::error::TryRecvError::Disconnected) => break,
            Ok(BrainEvent::ToolCall(_) | BrainEvent::Error(_))
            | Err(mpsc::error::TryRecvError::Empty) => return None,
        }
    }
    (!text.trim().is_empty()).then_some(text)
}

/// One turn's timings, in ms (`None` when the step did not happen).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct TurnMetrics {
    /// End of the caller's speech → final transcript.
    pub stt_ms: Option<u64>,
    /// Request to the brain → its first text (the Realtime agent: end of
    /// the caller's speech → the model's first audio, its whole time).
    pub llm_first_token_ms: Option<u64>,
    /// First sentence sent to TTS → its first audio.
    pub tts_first_audio_ms: Option<u64>,
    /// End of the caller's speech → first agent frame queued on the line.
    pub voice_to_voice_ms: Option<u64>,
    /// Of that, the time not spent waiting for STT, the brain or TTS.
    pub server_ms: Option<u64>,
}

/// How the call side of the agent is reached: hang up, transfer, send
/// digits, and publish events. The engine's call handle implements it; tests
/// use a recorder.
pub trait CallControl: Send + 'static {
    /// Ends the call.
    fn hangup(&self);
    /// Transfers the call (REFER, with a bridge when REFER is refused).
    /// The agent waits for the outcome on the call's events:
    /// [`CallEvent::TransferFailed`], [`CallEvent::Bridged`], a 2xx
    /// [`CallEvent::TransferStatus`] or the call's end (see
    /// [`super::transfer`]).
    fn transfer(&self, target: &str);
    /// Sends RFC 4733 digits.
    fn send_dtmf(&self, digits: &str);
    /// Publishes an event on the call's stream.
    fn publish(&self, event: CallEvent);
}

/// The agent's audio path to the line.
pub trait Line: Send + 'static {
    /// The line's bounded queue of 20 ms frames at [`PCM_RATE`].
    fn sink(&self) -> &mpsc::Sender<Vec<i16>>;
    /// Drops what is queued and fades out what is playing.
    fn flush(&self) -> impl std::future::Future<Output = ()> + Send;
}

/// What the agent knew when the call ended.
#[derive(Debug, Clone, Default)]
pub struct AgentReport {
    /// The conversation, as heard.
    pub messages: Vec<Message>,
    /// The brain's conclusion (a flow's end state), if it keeps one.
    pub outcome: Option<BrainOutcome>,
    /// Per-turn timings.
    pub turns: Vec<TurnMetrics>,
    /// Caller frames a slow recognition could not take.
    pub stt_frames_dropped: u64,
    /// Caller frames the Realtime agent sent as silence because they were
    /// no louder than its own echo.
    pub echo_frames_muted: u64,
    /// The call's recording, when it was recorded.
    pub recording: Option<RecordingReport>,
}

/// After the current speech has played.
#[derive(Debug, Clone, PartialEq)]
enum After {
    Listen,
    Hangup,
    Transfer(String),
}

/// One thing the agent is saying: a reply from the brain or fixed text.
struct Speech {
    brain: Option<mpsc::Receiver<BrainEvent>>,
    tts_text: Option<mpsc::Sender<String>>,
    tts_audio: Option<mpsc::Receiver<TtsEvent>>,
    splitter: SentenceSplitter,
    segments_sent: usize,
    playout: Playout,
    maker: FrameMaker,
    pending: VecDeque<(usize, Vec<i16>)>,
    /// Frames handed to the line before a pause that the caller did not
    /// hear (or heard the end of a word of), to hand again on resuming.
    replay: VecDeque<Vec<i16>>,
    /// Copies of the frames handed to the line, kept for a resume when
    /// backchannels are on.
    handed: Handed,
    /// Frames handed to the line.
    queued: usize,
    started: bool,
    interruptible: bool,
    after: After,
    tool_calls: Vec<ToolCall>,
    /// HTTP tools running for this reply, and the rounds already answered.
    tools: ToolRounds,
    /// Timings.
    asked_at: Instant,
    first_text_at: Option<Instant>,
    first_tts_at: Option<Instant>,
    first_audio_at: Option<Instant>,
    /// Whether this reply answers a caller turn (it then gets metrics).
    eos: Option<(Instant, Instant)>,
    /// Offset of its first frame from the call's start.
    start_ms: u64,
}

impl Speech {
    fn new(
        brain: Option<mpsc::Receiver<BrainEvent>>,
        tts: &dyn Tts,
        options: &TtsOptions,
        now: Instant,
    ) -> Self {
        let stream = tts.start(options);
        let mut s = Self::empty(now);
        s.brain = brain;
        s.tts_text = Some(stream.text);
        s.tts_audio = Some(stream.audio);
        s
    }

    /// Fixed frames (a cached greeting): no brain, no TTS.
    fn cached(text: &str, frames: &[Vec<i16>], now: Instant) -> Self {
        let mut s = Self::empty(now);
        s.playout.segment_text(0, text);
        s.segments_sent = 1;
        s.pending = frames.iter().map(|f| (0, f.clone())).collect();
        s
    }

    fn empty(now: Instant) -> Self {
        Speech {
            brain: None,
            tts_text: None,
            tts_audio: None,
            splitter: SentenceSplitter::new(),
            segments_sent: 0,
            playout: Playout::new(),
            maker: FrameMaker::new(),
            pending: VecDeque::new(),
            replay: VecDeque::new(),
            handed: Handed::default(),
            queued: 0,
            started: false,
            interruptible: true,
            after: After::Listen,
            tool_calls: Vec::new(),
            tools: ToolRounds::default(),
            asked_at: now,
            first_text_at: None,
            first_tts_at: None,
            first_audio_at: None,
            eos: None,
            start_ms: 0,
        }
    }

    fn say(&mut self, text: &str, now: Instant) {
        self.tools.said(text);
        for s in self.splitter.push(text) {
            self.send_segment(s, now);
        }
    }

    fn end_text(&mut self, now: Instant) {
        self.flush_text(now);
        self.tts_text = None;
    }

    /// Sends what the splitter holds, leaving TTS open for more.
    fn flush_text(&mut self, now: Instant) {
        if let Some(rest) = self.splitter.finish() {
            self.send_segment(rest, now);
        }
    }

    fn send_segment(&mut self, text: String, now: Instant) {
        let Some(tx) = &self.tts_text else { return };
        self.playout.segment_text(self.segments_sent, &text);
        self.segments_sent += 1;
        self.first_tts_at.get_or_insert(now);
        // A reply is a handful of sentences and the channel holds 64: a full
        // channel means TTS has stalled, and the sentence is lost (logged).
        if tx.try_send(text).is_err() {
            warn!("TTS is not taking text; a sentence of the reply is dropped");
        }
    }

    /// Nothing more will come from the brain or TTS, and all frames are out.
    fn produced_all(&self) -> bool {
        self.brain.is_none() && self.tts_audio.is_none() && !self.has_frames()
    }

    fn has_frames(&self) -> bool {
        !self.pending.is_empty() || !self.replay.is_empty()
    }

    /// The next frame for the line: first those to play again after a
    /// pause, then new ones (with their segment).
    fn next_frame(&mut self) -> Option<(Option<usize>, Vec<i16>)> {
        if let Some(f) = self.replay.pop_front() {
            return Some((None, f));
        }
        self.pending.pop_front().map(|(seg, f)| (Some(seg), f))
    }
}

/// A reply stopped by a barge-in, kept until the caller's words say
/// whether it goes on (a backchannel) or is over.
struct Paused {
    speech: Speech,
    /// What the caller heard of it.
    heard: String,
    /// When it stopped, from the call's start.
    cut_ms: u64,
    /// Utterances the caller started since.
    utterances: u32,
}

/// Runs the agent on a call until the call ends. `frames` is the caller's
/// audio; `events` the call's event stream (digits, the end).
pub async fn run<L: Line, C: CallControl>(
    spec: AgentSpec,
    call: CallInfo,
    mut frames: mpsc::Receiver<Vec<i16>>,
    line: L,
    control: C,
    mut events: broadcast::Receiver<CallEvent>,
) -> AgentReport {
    let start = Instant::now();
    let mut vad = match Vad::new(VadConfig {
        stop_ms: spec.endpoint_silence.as_millis().clamp(100, 5000) as u32,
        ..VadConfig::new(PCM_RATE, PTIME.as_millis() as u32)
    }) {
        Ok(v) => v,
        Err(e) => {
            warn!(call = %call.call_id, error = %e, "agent: bad VAD settings; hanging up");
            control.hangup();
            return AgentReport::default();
        }
    };
    let mut turns = TurnManager::new(spec.turns.clone(), start.into_std());
    if spec.confirmer.is_some() {
        turns.check_onsets();
    }
    let mut session: Box<dyn BrainSession> = spec.brain.start_call(&call);
    let tts_options = TtsOptions {
        voice: spec.voice.clone(),
        language: spec.language.clone(),
    };
    let stt_options = SttOptions {
        language: spec.language.clone(),
        partials: true,
    };
    let mut tools = spec.tools.clone();
    tools.extend(spec.http_tools.iter().map(|t| t.spec.clone()));
    tools.extend(builtin_tools());
    let runner = ToolRunner::new(&spec.http_tools, &call.call_id);
    let mut conversation = Conversation {
        system: spec.system_prompt.clone(),
        messages: Vec::new(),
        tools,
    };
    let mut report = AgentReport::default();
    let mut recording = spec.recording.clone().map(Recording::start);

    // Caller side.
    let mut preroll: VecDeque<(Instant, Vec<i16>)> = VecDeque::new();
    let mut stt_audio: Option<mpsc::Sender<Vec<i16>>> = None;
    let mut stt_events: Option<mpsc::Receiver<SttEvent>> = None;
    let mut utterance_start_ms = 0u64;
    let mut eos: Option<Instant> = None;
    let mut vad_frames: Vec<VadFrame> = Vec::new();
    let mut vad_events: Vec<VadEvent> = Vec::new();
    let mut actions: Vec<TurnAction> = Vec::new();
    let mut digits = String::new();
    let mut digits_deadline: Option<Instant> = None;
    let mut check: Option<SpeechCheck> = None;
    // Agent side.
    let mut speech: Option<Speech> = None;
    let mut paused: Option<Paused> = None;
    // A `transfer_call` waiting for its outcome: the agent is quiet.
    let mut transfer: Option<PendingTransfer> = None;
    let max_capacity = line.sink().max_capacity();
    let ms = |t: Instant| t.saturating_duration_since(start).as_millis() as u64;
    let mut ending = false;
    let deadline_at = spec.max_duration.map(|d| start + d);
    let mut deadline_spoken = false;

    if let Some(text) = spec.first_message.clone().filter(|t| !t.trim().is_empty()) {
        let now = Instant::now();
        let mut s = match spec
            .greetings
            .get(spec.tts.as_ref(), spec.voice.as_deref(), &text)
        {
            Some(frames) => Speech::cached(&text, &frames, now),
            None => {
                let mut s = Speech::new(None, spec.tts.as_ref(), &tts_options, now);
                s.say(&text, now);
                s.end_text(now);
                s
            }
        };
        s.interruptible = spec.greeting_interruptible;
        speech = Some(s);
    } else if spec.brain_leads {
        let now = Instant::now();
        let mut s = opening(&spec, session.respond(&conversation), &tts_options, now);
        for tc in std::mem::take(&mut s.tool_calls) {
            on_tool_call(&mut s, tc, &spec, &control, &call, &runner);
        }
        s.interruptible = spec.greeting_interruptible;
        speech = Some(s);
    } else {
        // Waiting for the caller: silence counts from the answer.
        turns.set_reply_pending(false, start.into_std());
    }

    loop {
        let now = Instant::now();
        // Something else is being said: a paused reply is over.
        if speech.is_some()
            && let Some(p) = paused.take()
        {
            settle(p, &mut conversation, &control);
        }
        // Agent audio: move converted frames to the line while it has room.
        if let Some(s) = speech.as_mut() {
            while s.has_frames() {
                let Ok(permit) = line.sink().try_reserve() else {
                    break;
                };
                let (segment, frame) = s.next_frame().expect("checked non-empty");
                let queued_ahead = max_capacity - line.sink().capacity();
                let plays_at = now + PTIME * queued_ahead as u32;
                turns.agent_frame(plays_at.into_std(), rms(&frame));
                if let Some(r) = recording.as_mut() {
                    r.agent_queued(plays_at - start, &frame);
                }
                // A frame played again was counted the first time.
                if let Some(segment) = segment {
                    s.playout.frame(segment);
                }
                if spec.backchannels.enabled {
                    s.handed.push(&frame, max_capacity);
                }
                permit.send(frame);
                s.queued += 1;
                if !s.started {
                    s.started = true;
                    s.first_audio_at = Some(now);
                    s.start_ms = ms(now);
                    turns.agent_started(s.interruptible);
                    control.publish(CallEvent::AgentSpeaking { speaking: true });
                    if let Some((eos_at, final_at)) = s.eos {
                        report.turns.push(metrics(s, eos_at, final_at, now));
                        control.publish(CallEvent::AgentTurn(
                            report.turns.last().cloned().unwrap_or_default(),
                        ));
                    }
                }
            }
        }
        if let Some(r) = recording.as_mut() {
            r.line_queue(max_capacity - line.sink().capacity());
        }
        // Agent audio finished playing?
        if let Some(s) = speech.as_ref()
            && s.produced_all()
            && line.sink().capacity() == max_capacity
        {
            let s = speech.take().expect("checked some");
            let text = s.playout.full_text();
            if s.started {
                turns.agent_finished(now.into_std());
                control.publish(CallEvent::AgentSpeaking { speaking: false });
            }
            turns.set_reply_pending(false, now.into_std());
            let messages = s.tools.into_messages(&text, false, s.tool_calls);
            finish_speech(
                &mut conversation,
                &control,
                s.start_ms,
                ms(now),
                &text,
                false,
                messages,
            );
            match s.after {
                // The time limit came while the agent was talking: the
                // goodbye follows what it was saying.
                After::Listen if ending => {
                    speech = Some(fixed(
                        &spec,
                        &tts_options,
                        &spec.time_up,
                        now,
                        After::Hangup,
                    ));
                }
                After::Listen => {}
                After::Hangup => {
                    control.hangup();
                    break;
                }
                After::Transfer(target) => {
                    transfer = PendingTransfer::start(&mut conversation);
                    // What the caller says while the transfer is under
                    // way is not a turn: a recognition started is dropped.
                    stt_audio = None;
                    stt_events = None;
                    control.transfer(&target);
                }
            }
        }
        let draining = speech
            .as_ref()
            .is_some_and(|s| s.has_frames() || s.queued > 0);
        let timer = [
            turns.next_deadline().map(Instant::from_std),
            digits_deadline,
            deadline_at.filter(|_| !deadline_spoken),
        ]
        .into_iter()
        .flatten()
        .min()
        .filter(|_| transfer.is_none());

        tokio::select! {
            frame = frames.recv() => {
                let Some(frame) = frame else { break };
                let at = Instant::now();
                if let Some(r) = recording.as_mut() {
                    r.caller(at - start, &frame);
                }
                if transfer.is_some() {
                    continue;
                }
                vad_frames.clear();
                vad_events.clear();
                vad.process(&frame, &mut vad_frames, &mut vad_events);
                let speechy = vad_frames.iter().any(|f| f.speech);
                let level = rms(&frame);
                actions.clear();
                turns.caller_frame(at.into_std(), speechy, level, vad_events.first().copied(), &mut actions);
                preroll.push_back((at, frame));
                while preroll.front().is_some_and(|(t, _)| at.saturating_duration_since(*t) > PREROLL) {
                    preroll.pop_front();
                }
                if let Some(tx) = &stt_audio {
                    let (_, f) = preroll.back().expect("just pushed");
                    if tx.try_send(f.clone()).is_err() {
                        report.stt_frames_dropped += 1;
                    }
                }
            }
            heard = next_check(&mut check) => {
                let c = check.take().expect("it answered");
                turns.speech_checked(c.run, c.upto, heard, Instant::now().into_std(), &mut actions);
            }
            ev = next_stt(&mut stt_events) => match ev {
                Some(SttEvent::Partial(t)) => control.publish(CallEvent::Transcript(TranscriptLine {
                    speaker: "caller",
                    text: t.text,
                    is_final: false,
                    start_ms: utterance_start_ms + t.start_ms,
                    end_ms: utterance_start_ms + t.end_ms,
                    interrupted: false,
                })),
                Some(SttEvent::Final(t)) => {
                    stt_events = None;
                    let final_at = Instant::now();
                    let text = t.text.trim().to_owned();
                    // Over a paused reply, a backchannel (or no words at
                    // all: a cough Silero let through) lets it go on;
                    // anything else ends it.
                    let length = eos.map_or(Duration::MAX, |e| Duration::from_millis(ms(e).saturating_sub(utterance_start_ms)));
                    let goes_on = paused.is_some() && speech.is_none()
                        && (text.is_empty() || spec.backchannels.matches(&text, length));
                    if !goes_on && let Some(p) = paused.take() {
                        settle(p, &mut conversation, &control);
                    }
                    if text.is_empty() && !goes_on {
                        debug!(call = %call.call_id, "agent: an utterance with no words");
                        turns.set_reply_pending(false, final_at.into_std());
                        continue;
                    }
                    if !text.is_empty() {
                        control.publish(CallEvent::Transcript(TranscriptLine {
                            speaker: "caller",
                            text: text.clone(),
                            is_final: true,
                            start_ms: utterance_start_ms + t.start_ms,
                            end_ms: utterance_start_ms + t.end_ms.max(t.start_ms),
                            interrupted: false,
                        }));
                    }
                    if goes_on && let Some(p) = paused.take() {
                        info!(call = %call.call_id, said = %text, "agent: a backchannel; the reply goes on");
                        eos = None;
                        speech = Some(resume(p, &mut turns, &control, final_at));
                        continue;
                    }
                    push_user(&mut conversation, &text);
                    let mut s = Speech::new(Some(session.respond(&conversation)), spec.tts.as_ref(), &tts_options, final_at);
                    s.eos = Some((eos.take().unwrap_or(final_at), final_at));
                    speech = Some(s);
                }
                Some(SttEvent::Error(e)) => {
                    warn!(call = %call.call_id, error = %e, "agent: speech recognition failed for an utterance");
                    stt_events = None;
                    if let Some(p) = paused.take() {
                        settle(p, &mut conversation, &control);
                    }
                    turns.set_reply_pending(false, Instant::now().into_std());
                }
                None => {
                    stt_events = None;
                    if let Some(p) = paused.take() {
                        settle(p, &mut conversation, &control);
                    }
                    turns.set_reply_pending(false, Instant::now().into_std());
                }
            },
            produced = next_produced(&mut speech) => match produced {
                Produced::Brain(ev) => {
                    let now = Instant::now();
                    let s = speech.as_mut().expect("produced by it");
                    match ev {
                        Some(BrainEvent::Text(t)) => {
                            s.first_text_at.get_or_insert(now);
                            s.say(&t, now);
                        }
                        Some(BrainEvent::ToolCall(tc)) => {
                            s.first_text_at.get_or_insert(now);
                            on_tool_call(s, tc, &spec, &control, &call, &runner);
                        }
                        Some(BrainEvent::Done) | None => {
                            s.brain = None;
                            if s.tools.in_round() {
                                // The answer comes after the tools'.
                                s.flush_text(now);
                                ask_again(s, session.as_mut(), &conversation, &spec, now);
                            } else {
                                s.end_text(now);
                            }
                        }
                        Some(BrainEvent::Error(e)) => {
                            warn!(call = %call.call_id, error = %e, "agent: the brain failed");
                            s.brain = None;
                            if s.tools.rounds() > 0 || s.tools.in_round() {
                                let line = spec.tool_failure.clone();
                                s.say(&line, now);
                            } else if s.segments_sent == 0 {
                                let apology = spec.apology.clone();
                                s.say(&apology, now);
                            }
                            s.end_text(now);
                        }
                    }
                }
                Produced::ToolResult => {
                    let s = speech.as_mut().expect("produced by it");
                    ask_again(s, session.as_mut(), &conversation, &spec, Instant::now());
                }
                Produced::Tts(ev) => {
                    let s = speech.as_mut().expect("produced by it");
                    match ev {
                        Some(TtsEvent::Audio { segment, chunk }) => {
                            let mut out = Vec::new();
                            if let Err(e) = s.maker.push(segment, &chunk, &mut out) {
                                warn!(call = %call.call_id, error = %e, "agent: unusable TTS audio");
                            }
                            s.pending.extend(out);
                        }
                        Some(TtsEvent::SegmentDone { .. }) => {}
                        Some(TtsEvent::Error(e)) => {
                            warn!(call = %call.call_id, error = %e, "agent: speech synthesis failed");
                            s.tts_audio = None;
                            s.brain = None;
                        }
                        None => {
                            let mut out = Vec::new();
                            s.maker.finish(&mut out);
                            s.pending.extend(out);
                            s.tts_audio = None;
                        }
                    }
                }
            },
            ev = events.recv() => match ev {
                Ok(ev) if transfer.is_some() && !matches!(ev, CallEvent::Ended(_)) => {
                    let settled = transfer.as_ref().and_then(|t| t.on_event(&ev, &mut conversation));
                    match settled {
                        Some(Settled::Failed) => {
                            transfer = None;
                            info!(call = %call.call_id, "agent: the transfer failed; the call goes on");
                            let now = Instant::now();
                            turns.set_reply_pending(true, now.into_std());
                            speech = Some(Speech::new(Some(session.respond(&conversation)), spec.tts.as_ref(), &tts_options, now));
                        }
                        Some(Settled::Handed) => break,
                        None => {}
                    }
                }
                Ok(CallEvent::Dtmf { digit, .. }) => {
                    if let Some(p) = paused.take() {
                        settle(p, &mut conversation, &control);
                    }
                    // A key press interrupts the agent like speech does, and
                    // a reply not yet started is stale: the keys come next.
                    if speech.as_ref().is_some_and(|s| s.started && s.interruptible) {
                        let s = speech.take().expect("checked");
                        interrupt(s, &line, &control, &mut conversation, &mut recording, ms(Instant::now())).await;
                        turns.agent_finished(Instant::now().into_std());
                    } else if speech.as_ref().is_some_and(|s| !s.started && s.after == After::Listen) {
                        speech = None;
                        turns.set_reply_pending(false, Instant::now().into_std());
                    }
                    if digit == '#' {
                        digits_deadline = Some(Instant::now());
                    } else {
                        digits.push(digit);
                        digits_deadline = Some(Instant::now() + DIGIT_GAP);
                    }
                }
                Ok(CallEvent::Ended(_)) | Err(broadcast::error::RecvError::Closed) => break,
                _ => {}
            },
            _ = sleep_until(timer.unwrap_or(now + Duration::from_secs(3600))), if timer.is_some() => {
                let now = Instant::now();
                turns.poll_onsets(now.into_std(), &mut actions);
                if digits_deadline.is_some_and(|d| d <= now) {
                    digits_deadline = None;
                    // Keys are never lost: while the agent says something
                    // that cannot be cut, they wait for it to finish.
                    if !digits.is_empty() && speech.as_ref().is_some_and(|s| s.started) {
                        digits_deadline = Some(now + PTIME * 10);
                    } else if !digits.is_empty() {
                        let d = std::mem::take(&mut digits);
                        conversation.messages.push(Message::Dtmf { digits: d });
                        turns.set_reply_pending(true, now.into_std());
                        speech = Some(Speech::new(Some(session.respond(&conversation)), spec.tts.as_ref(), &tts_options, now));
                    }
                }
                if deadline_at.is_some_and(|d| d <= now) && !deadline_spoken {
                    deadline_spoken = true;
                    ending = true;
                    info!(call = %call.call_id, "agent: maximum duration reached");
                    if speech.as_ref().is_none_or(|s| !s.started) {
                        speech = Some(fixed(&spec, &tts_options, &spec.time_up, now, After::Hangup));
                    }
                }
                if let Some(TurnAction::Silence { count }) = turns.poll(now.into_std()) {
                    let n = count as usize;
                    if speech.is_none() {
                        // A leading brain gets the silence as an event, with
                        // the fixed goodbye as a backstop should it never end
                        // the call.
                        if spec.brain_leads && n <= spec.reprompts.len() + MAX_BRAIN_REPROMPTS {
                            conversation.messages.push(Message::Event { text: format!("the caller has been silent for {} s", spec.turns.silence_reprompt.as_secs()) });
                            turns.set_reply_pending(true, now.into_std());
                            speech = Some(Speech::new(Some(session.respond(&conversation)), spec.tts.as_ref(), &tts_options, now));
                        } else if !spec.brain_leads && n <= spec.reprompts.len() {
                            conversation.messages.push(Message::Event { text: format!("the caller has been silent for {} s", spec.turns.silence_reprompt.as_secs()) });
                            speech = Some(fixed(&spec, &tts_options, &spec.reprompts[n - 1], now, After::Listen));
                        } else {
                            info!(call = %call.call_id, "agent: the caller stayed silent; hanging up");
                            speech = Some(fixed(&spec, &tts_options, &spec.goodbye, now, After::Hangup));
                        }
                    }
                }
            }
            // Wakes the loop to move frames to the line as it drains.
            _ = tokio::time::sleep(PTIME), if draining => {}
        }
        // What the turn manager decided, whichever branch ran.
        for action in actions.drain(..) {
            match action {
                TurnAction::BargeIn { at } => {
                    let Some(s) = speech.take() else { continue };
                    let cut_ms = ms(Instant::from_std(at));
                    turns.set_reply_pending(false, at);
                    if spec.backchannels.enabled && !ending {
                        let p = pause(s, &line, &control, &mut recording, cut_ms).await;
                        info!(call = %call.call_id, heard = %p.heard, "agent: caller barged in; the reply is paused");
                        paused = Some(p);
                    } else {
                        let heard = interrupt(
                            s,
                            &line,
                            &control,
                            &mut conversation,
                            &mut recording,
                            cut_ms,
                        )
                        .await;
                        info!(call = %call.call_id, heard = %heard, "agent: caller barged in");
                        if ending {
                            let time_up = &spec.time_up;
                            speech = Some(fixed(
                                &spec,
                                &tts_options,
                                time_up,
                                Instant::now(),
                                After::Hangup,
                            ));
                        }
                    }
                }
                TurnAction::UtteranceStarted { at } => {
                    let at = Instant::from_std(at);
                    // A reply still being thought about is stale now:
                    // the caller has more to say.
                    if speech.as_ref().is_some_and(|s| !s.started) {
                        speech = None;
                        turns.set_reply_pending(false, at.into_std());
                    }
                    // The caller went on after the utterance that paused
                    // the agent: not a backchannel.
                    if let Some(p) = paused.as_mut() {
                        p.utterances += 1;
                        if p.utterances > 1
                            && let Some(p) = paused.take()
                        {
                            settle(p, &mut conversation, &control);
                        }
                    }
                    let stream = spec.stt.start(&stt_options);
                    for (t, f) in &preroll {
                        if *t + PTIME > at && stream.audio.try_send(f.clone()).is_err() {
                            report.stt_frames_dropped += 1;
                        }
                    }
                    utterance_start_ms = ms(at);
                    stt_audio = Some(stream.audio);
                    stt_events = Some(stream.events);
                }
                TurnAction::UtteranceEnded { at, .. } => {
                    stt_audio = None;
                    eos = Some(Instant::from_std(at));
                    turns.set_reply_pending(true, at);
                }
                TurnAction::CheckSpeech { run, upto } => {
                    if let Some(c) = &spec.confirmer {
                        check = Some(SpeechCheck::start(c, &preroll, run, upto));
                    }
                }
                TurnAction::Silence { .. } => {}
            }
        }
    }
    if let Some(p) = paused.take() {
        settle(p, &mut conversation, &control);
    }
    finish(report, conversation, session.outcome(), recording, &line).await
}

async fn finish<L: Line>(
    mut report: AgentReport,
    conversation: Conversation,
    outcome: Option<BrainOutcome>,
    recording: Option<Recording>,
    line: &L,
) -> AgentReport {
    report.messages = conversation.messages;
    report.outcome = outcome;
    if let Some(r) = recording {
        // What is still queued on the line when the call ends is not heard.
        let in_queue = line.sink().max_capacity() - line.sink().capacity();
        report.recording = Some(r.finish(in_queue).await);
    }
    report
}

fn fixed(spec: &AgentSpec, options: &TtsOptions, text: &str, now: Instant, after: After) -> Speech {
    let mut s = Speech::new(None, spec.tts.as_ref(), options, now);
    s.say(text, now);
    s.end_text(now);
    // A goodbye is said in full: the call ends after it either way.
    s.interruptible = after == After::Listen;
    s.after = after;
    s
}

/// Acts on a tool call of the brain: `end_call` and `transfer_call` wait
/// for the speech to play out, `send_dtmf` goes at once.
fn on_tool_call<C: CallControl>(
    s: &mut Speech,
    tc: ToolCall,
    spec: &AgentSpec,
    control: &C,
    call: &CallInfo,
    runner: &ToolRunner,
) {
    match tc.name.as_str() {
        "end_call" => s.after = After::Hangup,
        "transfer_call" => {
            let named = tc.arguments.get("number").and_then(|v| v.as_str());
            match spec.transfer_to.as_deref().or(named) {
                Some(n) => s.after = After::Transfer(n.to_owned()),
                None => warn!(call = %call.call_id, "agent: transfer_call without a number"),
            }
        }
        "send_dtmf" => {
            if let Some(d) = tc.arguments.get("digits").and_then(|v| v.as_str()) {
                control.send_dtmf(d);
            }
        }
        name if crate::agent::campaign_tools::is_campaign_tool(name)
            && spec.tools.iter().any(|t| t.name == name) =>
        {
            let (event, result) = crate::agent::campaign_tools::handle(&tc, crate::store::now_ms());
            if let Some(event) = event {
                control.publish(event);
            }
            s.tools.answered(&tc, result);
        }
        name => {
            if !runner.has(name) {
                warn!(call = %call.call_id, tool = name, "agent: the brain called an unknown tool");
            }
            // The brain hears the result (an error for an unknown tool).
            s.tools.start(runner, &tc, spec.max_tool_rounds);
        }
    }
    s.tool_calls.push(tc);
}

/// Asks the brain again once a tool round is complete: its stream has
/// ended and every tool has answered. The words said so far keep playing
/// and the answer follows them on the same TTS stream. Past
/// `max_tool_rounds`, or with nothing to ask, the reply ends here (with
/// the fixed `tool_failure` line if nothing was said after the tools).
fn ask_again(
    s: &mut Speech,
    session: &mut dyn BrainSession,
    conversation: &Conversation,
    spec: &AgentSpec,
    now: Instant,
) {
    // A reply already ended (the brain failed) takes no more text.
    if s.brain.is_some() || s.tts_text.is_none() || !s.tools.in_round() || !s.tools.results_ready()
    {
        return;
    }
    if s.tools.rounds() >= spec.max_tool_rounds {
        // The results stay with the reply's last tool calls.
        if !s.tools.said_since_round() {
            let line = spec.tool_failure.clone();
            s.say(&line, now);
        }
        s.end_text(now);
        return;
    }
    s.tools.close_round(std::mem::take(&mut s.tool_calls));
    let mut asked = conversation.clone();
    asked.messages.extend(s.tools.messages());
    s.brain = Some(session.respond(&asked));
}

/// The brain's opening reply. A brain that answers at once (a flow)
/// has all of it ready: when its words are in the greeting cache the
/// pre-synthesized frames play and TTS is skipped. Otherwise the reply
/// streams like any other; tool calls already read are left in
/// `tool_calls` for the caller to act on.
fn opening(
    spec: &AgentSpec,
    mut rx: mpsc::Receiver<BrainEvent>,
    options: &TtsOptions,
    now: Instant,
) -> Speech {
    let mut ready = Vec::new();
    let mut complete = false;
    loop {
        match rx.try_recv() {
            Ok(ev) => {
                let last = matches!(ev, BrainEvent::Done | BrainEvent::Error(_));
                ready.push(ev);
                if last {
                    complete = true;
                    break;
                }
            }
            Err(mpsc::error::TryRecvError::Disconnected) => {
                complete = true;
                break;
            }
            Err(mpsc::error::TryRecvError::Empty) => break,
        }
    }
    // A reply that calls an HTTP tool goes on after the tool's answer, so
    // it takes the streaming path.
    let builtin = builtin_tools();
    let only_builtin = |e: &BrainEvent| match e {
        BrainEvent::ToolCall(tc) => builtin.iter().any(|b| b.name == tc.name),
        BrainEvent::Error(_) => false,
        _ => true,
    };
    if complete && ready.iter().all(only_builtin) {
        let text: String = ready
            .iter()
            .filter_map(|e| match e {
                BrainEvent::Text(t) => Some(t.as_str()),
                _ => None,
            })
            .collect();
        let cached = spec
            .greetings
            .get(spec.tts.as_ref(), spec.voice.as_deref(), &text);
        let mut s = match cached {
            Some(frames) => Speech::cached(&text, &frames, now),
            None => {
                let mut s = Speech::new(None, spec.tts.as_ref(), options, now);
                s.say(&text, now);
                s.end_text(now);
                s
            }
        };
        s.first_text_at = Some(now);
        s.tool_calls = ready
            .into_iter()
            .filter_map(|e| match e {
                BrainEvent::ToolCall(tc) => Some(tc),
                _ => None,
            })
            .collect();
        return s;
    }
    // Still streaming: what was read goes first, then the rest, through a
    // channel of the same kind the brain gave.
    let (tx, replay) = mpsc::channel(ready.len() + 16);
    for ev in ready {
        let _ = tx.try_send(ev);
    }
    if !complete {
        tokio::spawn(async move {
            while let Some(ev) = rx.recv().await {
                if tx.send(ev).await.is_err() {
                    break;
                }
            }
        });
    }
    Speech::new(Some(replay), spec.tts.as_ref(), options, now)
}

fn metrics(s: &Speech, eos: Instant, final_at: Instant, first_frame: Instant) -> TurnMetrics {
    let d = |a: Instant, b: Instant| b.saturating_duration_since(a).as_millis() as u64;
    let stt = d(eos, final_at);
    let llm = s.first_text_at.map(|t| d(s.asked_at, t));
    let tts = match (s.first_tts_at, s.first_audio_at) {
        (Some(a), Some(b)) => Some(d(a, b)),
        _ => None,
    };
    let total = d(eos, first_frame);
    let providers = stt + llm.unwrap_or(0) + tts.unwrap_or(0);
    TurnMetrics {
        stt_ms: Some(stt),
        llm_first_token_ms: llm,
        tts_first_audio_ms: tts,
        voice_to_voice_ms: Some(total),
        server_ms: Some(total.saturating_sub(providers)),
    }
}

/// Stops the agent mid-speech: the line drops what is queued and fades
/// out, and the reply is recorded as far as the caller heard it, which it
/// returns.
async fn interrupt<L: Line, C: CallControl>(
    s: Speech,
    line: &L,
    control: &C,
    conversation: &mut Conversation,
    recording: &mut Option<Recording>,
    end_ms: u64,
) -> String {
    let p = pause(s, line, control, recording, end_ms).await;
    let heard = p.heard.clone();
    settle(p, conversation, control);
    heard
}

/// Stops the agent mid-speech as [`interrupt`] does, but keeps the reply:
/// what the caller did not hear of it (from the last pause between words
/// before the cut, when backchannels keep copies) is ready to play again.
async fn pause<L: Line, C: CallControl>(
    mut s: Speech,
    line: &L,
    control: &C,
    recording: &mut Option<Recording>,
    cut_ms: u64,
) -> Paused {
    // Frames still in the line's queue were never heard.
    let in_queue = line.sink().max_capacity() - line.sink().capacity();
    let played = s.queued.saturating_sub(in_queue);
    line.flush().await;
    if let Some(r) = recording.as_mut() {
        r.line_flushed(in_queue);
    }
    let heard = s.playout.heard(played);
    control.publish(CallEvent::AgentSpeaking { speaking: false });
    let again = s.handed.rewind(in_queue);
    s.queued = s.queued.saturating_sub(again.len());
    for f in again.into_iter().rev() {
        s.replay.push_front(f);
    }
    Paused {
        speech: s,
        heard,
        cut_ms,
        utterances: 0,
    }
}

/// A paused reply is over: it is recorded as far as the caller heard it,
/// interrupted.
fn settle<C: CallControl>(p: Paused, conversation: &mut Conversation, control: &C) {
    let s = p.speech;
    let messages = s.tools.into_messages(&p.heard, true, s.tool_calls);
    finish_speech(
        conversation,
        control,
        s.start_ms,
        p.cut_ms,
        &p.heard,
        true,
        messages,
    );
}

/// The caller only said a backchannel: the paused reply goes on. It is
/// recorded when it ends, whole and not interrupted, like any other.
fn resume<C: CallControl>(p: Paused, turns: &mut TurnManager, control: &C, now: Instant) -> Speech {
    let s = p.speech;
    turns.agent_started(s.interruptible);
    turns.set_reply_pending(false, now.into_std());
    control.publish(CallEvent::AgentSpeaking { speaking: true });
    s
}

/// Records what the agent said (as heard) in the conversation (its
/// `messages`: the reply, with its tool rounds) and the transcript.
fn finish_speech<C: CallControl>(
    conversation: &mut Conversation,
    control: &C,
    start_ms: u64,
    end_ms: u64,
    text: &str,
    interrupted: bool,
    messages: Vec<Message>,
) {
    if messages.is_empty() {
        return;
    }
    conversation.messages.extend(messages);
    if !text.is_empty() || interrupted {
        control.publish(CallEvent::Transcript(TranscriptLine {
            speaker: "agent",
            text: text.to_owned(),
            is_final: true,
            start_ms,
            end_ms: end_ms.max(start_ms),
            interrupted,
        }));
    }
}

/// Appends the caller's words, merging them with the previous user
/// message when the agent has not answered it (the caller paused, then
/// went on).
fn push_user(conversation: &mut Conversation, text: &str) {
    if let Some(Message::User { text: prev }) = conversation.messages.last_mut() {
        prev.push(' ');
        prev.push_str(text);
        return;
    }
    conversation.messages.push(Message::User {
        text: text.to_owned(),
    });
}

/// A Silero check of a barge-in run, in flight.
struct SpeechCheck {
    run: std::time::Instant,
    upto: std::time::Instant,
    /// Where the run starts in the audio checked.
    run_at: usize,
    probabilities: Pin<Box<dyn Future<Output = Result<Vec<f32>, ProviderError>> + Send>>,
}

impl SpeechCheck {
    fn start(
        confirmer: &Arc<SpeechConfirmer>,
        preroll: &VecDeque<(Instant, Vec<i16>)>,
        run: std::time::Instant,
        upto: std::time::Instant,
    ) -> Self {
        let frames = preroll.iter().map(|(t, f)| (t.into_std(), f.as_slice()));
        let (audio, run_at) = onset_audio(frames, run, upto);
        let samples = to_f32(&audio);
        let c = confirmer.clone();
        SpeechCheck {
            run,
            upto,
            run_at,
            probabilities: Box::pin(async move { c.probabilities(samples).await }),
        }
    }
}

/// Silero's answer to the check in flight: whether it heard speech, or
/// `None` if it could not say.
async fn next_check(check: &mut Option<SpeechCheck>) -> Option<bool> {
    let Some(c) = check.as_mut() else {
        return std::future::pending().await;
    };
    match c.probabilities.as_mut().await {
        Ok(p) => Some(heard_speech(&p, c.run_at)),
        Err(e) => {
            debug!(error = %e, "agent: a barge-in speech check failed");
            None
        }
    }
}

async fn next_stt(events: &mut Option<mpsc::Receiver<SttEvent>>) -> Option<SttEvent> {
    match events {
        Some(rx) => rx.recv().await,
        None => std::future::pending().await,
    }
}

/// Output of the brain, of TTS or of a tool, whichever comes first; TTS
/// is read only while there is room for its frames.
enum Produced {
    Brain(Option<BrainEvent>),
    Tts(Option<TtsEvent>),
    /// A tool of the reply answered.
    ToolResult,
}

async fn next_produced(speech: &mut Option<Speech>) -> Produced {
    let Some(s) = speech.as_mut() else {
        return std::future::pending().await;
    };
    let room = s.pending.len() < MAX_PENDING_FRAMES;
    let (brain, tts) = (s.brain.as_mut(), s.tts_audio.as_mut().filter(|_| room));
    tokio::select! {
        ev = recv_or_pending(brain) => Produced::Brain(ev),
        ev = recv_or_pending(tts) => Produced::Tts(ev),
        () = s.tools.next_result() => Produced::ToolResult,
    }
}

async fn recv_or_pending<T>(rx: Option<&mut mpsc::Receiver<T>>) -> Option<T> {
    match rx {
        Some(rx) => rx.recv().await,
        None => std::future::pending().await,
    }
}

/// The tools every agent has.
pub fn builtin_tools() -> Vec<ToolSpec> {
    vec![
        ToolSpec {
            name: "end_call".into(),
            description: "Hang up once you have said goodbye.".into(),
            parameters: json!({"type": "object", "properties": {}}),
        },
        ToolSpec {
            name: "transfer_call".into(),
            description: "Transfer the caller to a person at the given number.".into(),
            parameters: json!({
                "type": "object",
                "properties": {"number": {"type": "string", "description": "E.164 number or SIP URI"}},
                "required": ["number"]
            }),
        },
        ToolSpec {
            name: "send_dtmf".into(),
            description: "Press keys on the phone keypad, e.g. to navigate a phone menu.".into(),
            parameters: json!({
                "type": "object",
                "properties": {"digits": {"type": "string", "pattern": "^[0-9*#A-D]+$"}},
                "required": ["digits"]
            }),
        },
    ]
}

// Frames are 20 ms at 16 kHz everywhere in the pipeline.
const _: () = assert!(FRAME_SAMPLES == 320);
