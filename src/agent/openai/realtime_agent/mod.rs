//! A whole call through the OpenAI Realtime API (speech to speech over one
//! WebSocket), as an alternative to the STT → brain → TTS pipeline, with
//! the same contract as [`crate::agent::pipeline::run`]: the caller's
//! frames in, the agent's frames on the [`Line`], transcript and speaking
//! events through [`CallControl`], the conversation in the
//! [`AgentReport`].
//!
//! * The caller's 16 kHz audio is resampled to 24 kHz and appended as it
//!   comes; the server's voice detection ends turns and starts replies.
//! * Reply audio (faster than real time) is resampled to 16 kHz frames and
//!   handed to the line only as fast as its bounded queue takes them; up
//!   to `max_buffer_ms` waits here, past that the socket is not read.
//! * Barge-in is the agent's own (the session sets `interrupt_response`
//!   off): when the server hears the caller start speaking over
//!   interruptible speech, the line is flushed, the reply cancelled, and
//!   its items truncated to the audio actually played, which also cuts the
//!   transcript line (by proportion: the API does not align words to
//!   audio).
//! * Tools: `end_call` and `transfer_call` act once the speech has played,
//!   `send_dtmf` at once; HTTP tools run and their answers go back to the
//!   model, which is asked to go on.
//! * The echo guard ([`EchoGuard`], as the pipeline's): a caller frame no
//!   louder than the agent's own voice coming back on the line could be
//!   goes up as silence, so the server's voice detection never hears the
//!   agent and cuts it off (the recording keeps the line as it was).
//! * Silence: when nobody has spoken for `silence_reprompt` (the agent
//!   done, the caller quiet), the model says the next reprompt word for
//!   word; after the last one, the goodbye, and the call ends.
//! * Keys the caller presses reach the model as a user message.
//! * At the time limit the model says `time_up` and the call ends.
//! * If the API cannot be reached (or fails twice running) the call hears
//!   the apology through a local voice, if one is given, and is hung up;
//!   the reason is the report's last message.

mod config;
mod protocol;
mod speech;

use std::collections::{HashMap, HashSet};
use std::time::Duration;

use base64::Engine as _;
use futures_util::stream::SplitStream;
use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio::sync::{broadcast, mpsc};
use tokio::time::{Instant, sleep_until};
use tokio_tungstenite::tungstenite::Message as WsMessage;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::handshake::client::Request;
use tokio_tungstenite::tungstenite::http::HeaderValue;
use tracing::{debug, info, warn};

pub use config::{REALTIME_URL, RealtimeAgentConfig, RealtimeSetup, TurnDetectionKind};

use super::http::{self, RetryPolicy};
use super::realtime_stt::{Upsampler, append_message};
use super::stt::RealtimeProtocol;
use super::ws::{self, Ws};
use crate::agent::pipeline::call::builtin_tools;
use crate::agent::pipeline::echo::{DEFAULT_ECHO_MARGIN_DB, EchoGuard, rms};
use crate::agent::pipeline::playout::FrameMaker;
use crate::agent::pipeline::recording::Recording;
use crate::agent::pipeline::tool_rounds::ToolRunner;
use crate::agent::pipeline::{AgentReport, CallControl, Line, TurnMetrics};
use crate::agent::provider::{CallInfo, Message, ToolCall, TtsEvent, TtsOptions};
use crate::agent::tools::ToolResult;
use crate::call::{CallEvent, TranscriptLine};
use crate::rtp::PTIME;
use protocol::{SessionSettings, event_kind};
use speech::{After, Speech};

/// The provider's name in logs and events.
pub const NAME: &str = "openai-realtime";

/// 24 kHz samples per append: 40 ms, so the server hears the caller
/// start speaking soon, without a message per 20 ms frame.
const APPEND_SAMPLES: usize = 960;
/// Client events waiting for the socket. Appends beyond it are dropped
/// (counted) rather than queued behind a stalled connection.
const OUT_CAPACITY: usize = 256;
/// Digits end a keypad entry after this long without another (or at `#`).
const DIGIT_GAP: Duration = Duration::from_millis(1500);
/// Time the goodbye at the time limit may take before the call is ended
/// regardless.
const GOODBYE_GRACE: Duration = Duration::from_secs(20);
/// Longest the local apology may take.
const APOLOGY_LIMIT: Duration = Duration::from_secs(15);
/// Longest wait for room on a stalled connection.
const SEND_TIMEOUT: Duration = Duration::from_secs(5);
/// Failed replies in a row after which the API is given up on.
const MAX_FAILED_REPLIES: u32 = 2;

/// Runs the agent on a call through the Realtime API until the call
/// ends. `frames` is the caller's 16 kHz audio; `events` the call's event
/// stream (digits, the end). The same contract as
/// [`crate::agent::pipeline::run`].
pub async fn run_realtime<L: Line, C: CallControl>(
    config: RealtimeAgentConfig,
    setup: RealtimeSetup,
    call: CallInfo,
    mut frames: mpsc::Receiver<Vec<i16>>,
    line: L,
    control: C,
    mut events: broadcast::Receiver<CallEvent>,
) -> AgentReport {
    let start = Instant::now();
    let mut recording = setup.recording.clone().map(Recording::start);
    let ws = match request(&config) {
        Err(e) => Err(e),
        Ok(request) => {
            let timeout = Duration::from_millis(config.connect_timeout_ms);
            let policy = RetryPolicy {
                max_retries: config.max_retries,
                max_delay: Duration::from_millis(config.max_retry_delay_ms),
            };
            let deadline = start + timeout * (config.max_retries + 1);
            let connect = ws::connect(NAME, &request, timeout, policy, deadline);
            tokio::pin!(connect);
            // The caller's audio before the session exists is not needed
            // (the agent has not spoken), but it is taken so the line's
            // queue never backs up, and recorded.
            loop {
                tokio::select! {
                    r = &mut connect => break r.map_err(|f| f.error.message),
                    f = frames.recv() => match f {
                        Some(f) => {
                            if let Some(r) = recording.as_mut() {
                                r.caller(start.elapsed(), &f);
                            }
                        }
                        None => return finish(AgentReport::default(), Vec::new(), recording, &line).await,
                    },
                    ev = events.recv() => if call_over(&ev) {
                        return finish(AgentReport::default(), Vec::new(), recording, &line).await;
                    },
                }
            }
        }
    };
    let ws = match ws {
        Ok(ws) => ws,
        Err(reason) => {
            warn!(call = %call.call_id, %reason, "agent: cannot reach the realtime API");
            let mut messages = Vec::new();
            give_up(
                &setup,
                &reason,
                &line,
                &control,
                &mut recording,
                start,
                &mut messages,
            )
            .await;
            return finish(AgentReport::default(), messages, recording, &line).await;
        }
    };
    let (mut sink, stream) = ws.split();
    let (out, mut out_rx) = mpsc::channel::<String>(OUT_CAPACITY);
    let writer = tokio::spawn(async move {
        while let Some(m) = out_rx.recv().await {
            if sink.send(WsMessage::text(m)).await.is_err() {
                return;
            }
        }
        let _ = sink.send(WsMessage::Close(None)).await;
    });
    let mut session = match Session::new(&config, &setup, &call, &line, &control, out, start) {
        Ok(s) => s,
        Err(reason) => {
            let mut messages = Vec::new();
            give_up(
                &setup,
                &reason,
                &line,
                &control,
                &mut recording,
                start,
                &mut messages,
            )
            .await;
            return finish(AgentReport::default(), messages, recording, &line).await;
        }
    };
    session.recording = recording;
    session.run(stream, frames, events).await;
    // Dropping the session drops its sender: the writer sends what is
    // queued and closes the socket.
    let (report, messages, recording) = session.into_parts();
    // The writer closes the socket once its queue is sent; a server that
    // does not read any more is not waited for.
    let _ = tokio::time::timeout(Duration::from_secs(2), writer).await;
    finish(report, messages, recording, &line).await
}

/// The handshake: the URL with `?model=`, the key, and the beta header
/// when the beta protocol is spoken.
fn request(config: &RealtimeAgentConfig) -> Result<Request, String> {
    config.check().map_err(|(k, m)| format!("{k} {m}"))?;
    let mut url =
        reqwest::Url::parse(config.url.trim()).map_err(|e| format!("realtime URL: {e}"))?;
    url.query_pairs_mut().append_pair("model", &config.model);
    let mut request = url
        .as_str()
        .into_client_request()
        .map_err(|e| format!("realtime URL: {e}"))?;
    let headers = request.headers_mut();
    if let Some(key) = http::resolve_api_key(config.api_key.as_deref()) {
        let value = HeaderValue::from_str(&format!("Bearer {key}"))
            .map_err(|_| "the API key is not a valid header value".to_owned())?;
        headers.insert("authorization", value);
    }
    if config.protocol == RealtimeProtocol::Beta {
        headers.insert("openai-beta", HeaderValue::from_static("realtime=v1"));
    }
    Ok(request)
}

fn call_over(ev: &Result<CallEvent, broadcast::error::RecvError>) -> bool {
    matches!(
        ev,
        Ok(CallEvent::Ended(_)) | Err(broadcast::error::RecvError::Closed)
    )
}

async fn finish<L: Line>(
    mut report: AgentReport,
    messages: Vec<Message>,
    recording: Option<Recording>,
    line: &L,
) -> AgentReport {
    // Caller turns that were never transcribed leave no line.
    report.messages = messages
        .into_iter()
        .filter(|m| !matches!(m, Message::User { text } if text.trim().is_empty()))
        .collect();
    if let Some(r) = recording {
        let in_queue = line.sink().max_capacity() - line.sink().capacity();
        report.recording = Some(r.finish(in_queue).await);
    }
    report
}

/// The API is unusable: the reason goes into the conversation, the
/// caller hears the apology (through the local voice, if there is one)
/// and the call is hung up.
async fn give_up<L: Line, C: CallControl>(
    setup: &RealtimeSetup,
    reason: &str,
    line: &L,
    control: &C,
    recording: &mut Option<Recording>,
    start: Instant,
    messages: &mut Vec<Message>,
) {
    messages.push(Message::Event {
        text: format!("the voice agent failed: {reason}"),
    });
    if let Some(tts) = &setup.apology_tts {
        let said = tokio::time::timeout(
            APOLOGY_LIMIT,
            say_locally(tts.as_ref(), &setup.apology, line, recording, start),
        )
        .await;
        match said {
            Ok(Ok(())) => {}
            Ok(Err(e)) => warn!(error = %e, "agent: the apology could not be synthesized"),
            Err(_) => warn!("agent: the apology took too long"),
        }
    }
    control.hangup();
}

/// Speaks `text` through a local TTS onto the line and waits for it to
/// play.
async fn say_locally<L: Line>(
    tts: &dyn crate::agent::provider::Tts,
    text: &str,
    line: &L,
    recording: &mut Option<Recording>,
    start: Instant,
) -> Result<(), String> {
    let stream = tts.start(&TtsOptions::default());
    stream
        .text
        .send(text.to_owned())
        .await
        .map_err(|_| format!("{} stopped", tts.name()))?;
    drop(stream.text);
    let mut audio = stream.audio;
    let mut maker = FrameMaker::new();
    let max = line.sink().max_capacity();
    let mut frames = Vec::new();
    let mut done = false;
    while !done {
        match audio.recv().await {
            Some(TtsEvent::Audio { segment, chunk }) => maker.push(segment, &chunk, &mut frames)?,
            Some(TtsEvent::SegmentDone { .. }) => {}
            Some(TtsEvent::Error(e)) => return Err(e.to_string()),
            None => {
                maker.finish(&mut frames);
                done = true;
            }
        }
        for (_, f) in frames.drain(..) {
            let queued = max - line.sink().capacity();
            if let Some(r) = recording.as_mut() {
                r.agent_queued(start.elapsed() + PTIME * queued as u32, &f);
            }
            line.sink()
                .send(f)
                .await
                .map_err(|_| "the line is gone".to_owned())?;
        }
    }
    while line.sink().capacity() < max {
        tokio::time::sleep(PTIME).await;
    }
    Ok(())
}

/// What a response the agent asked for is for.
#[derive(Debug, Clone)]
struct Ask {
    interruptible: bool,
    after: After,
}

/// The caller's side of one turn, by input item.
#[derive(Debug, Default)]
struct CallerTurn {
    start_ms: u64,
    end_ms: u64,
    text: String,
    /// Its place in the conversation, once committed.
    message: Option<usize>,
}

/// Why the loop stopped.
enum Stop {
    /// The call ended or the agent hung up.
    Done,
    /// The API failed for good.
    Failed(String),
}

struct Session<'a, L: Line, C: CallControl> {
    setup: &'a RealtimeSetup,
    call: &'a CallInfo,
    line: &'a L,
    control: &'a C,
    out: mpsc::Sender<String>,
    start: Instant,
    report: AgentReport,
    messages: Vec<Message>,
    recording: Option<Recording>,
    up: Upsampler,
    max_buffer_frames: usize,
    runner: ToolRunner,
    // The agent's side.
    speech: Option<Speech>,
    /// The response being generated.
    active: Option<String>,
    /// Responses asked for and not yet created, with what they are for.
    asked: Vec<Ask>,
    /// `response.create` event ids, to trace an error to one.
    ask_ids: Vec<String>,
    /// Responses asked for before the caller cut in: cancelled when they
    /// show up.
    stale: usize,
    /// Cancelled responses, whose late audio is dropped.
    discard: HashSet<String>,
    next_event: u64,
    failed_replies: u32,
    tools_running: usize,
    tool_rounds: usize,
    tool_tx: mpsc::Sender<(String, ToolResult)>,
    tool_rx: mpsc::Receiver<(String, ToolResult)>,
    // The caller's side.
    /// Tells the caller from the agent's own voice coming back on the
    /// line: frames that are only echo go to the server as silence, so
    /// its voice detection never hears the agent interrupt itself.
    echo: EchoGuard,
    caller: HashMap<String, CallerTurn>,
    /// When the caller's last turn ended (the server's `speech_stopped`).
    eos: Option<Instant>,
    /// When the reply to it sent its first audio.
    first_audio: Option<Instant>,
    digits: String,
    digits_deadline: Option<Instant>,
    /// Since when nobody has been speaking (the agent done, the caller
    /// silent, nothing asked of the model): the reprompt timer.
    quiet_since: Option<Instant>,
    /// The caller is speaking (between the server's speech events).
    caller_speaking: bool,
    /// Reprompts said since the caller last spoke.
    reprompted: usize,
    // The time limit.
    deadline_at: Option<Instant>,
    ending: bool,
    goodbye_owed: bool,
    hard_stop: Option<Instant>,
}

impl<'a, L: Line, C: CallControl> Session<'a, L, C> {
    fn new(
        config: &'a RealtimeAgentConfig,
        setup: &'a RealtimeSetup,
        call: &'a CallInfo,
        line: &'a L,
        control: &'a C,
        out: mpsc::Sender<String>,
        start: Instant,
    ) -> Result<Self, String> {
        let up = Upsampler::new().map_err(|e| e.message)?;
        let (tool_tx, tool_rx) = mpsc::channel(16);
        let mut tools = setup.tools.clone();
        tools.extend(setup.http_tools.iter().map(|t| t.spec.clone()));
        tools.extend(builtin_tools());
        let voice = setup.voice.as_deref().unwrap_or(&config.voice);
        let update = protocol::session_update(&SessionSettings {
            config,
            instructions: &setup.instructions,
            voice,
            language: setup.language.as_deref(),
            tools: &tools,
        });
        // The first events cannot find the queue full.
        out.try_send(update.to_string())
            .map_err(|_| "the connection closed at once".to_owned())?;
        let mut s = Session {
            setup,
            call,
            line,
            control,
            out,
            start,
            report: AgentReport::default(),
            messages: Vec::new(),
            recording: None,
            up,
            max_buffer_frames: (config.max_buffer_ms / PTIME.as_millis() as u64) as usize,
            runner: ToolRunner::new(&setup.http_tools, &call.call_id),
            speech: None,
            active: None,
            asked: Vec::new(),
            ask_ids: Vec::new(),
            stale: 0,
            discard: HashSet::new(),
            next_event: 0,
            failed_replies: 0,
            tools_running: 0,
            tool_rounds: 0,
            tool_tx,
            tool_rx,
            echo: EchoGuard::new(DEFAULT_ECHO_MARGIN_DB),
            caller: HashMap::new(),
            eos: None,
            first_audio: None,
            digits: String::new(),
            digits_deadline: None,
            // Silent from the start: a caller who never speaks is reprompted.
            quiet_since: Some(start),
            caller_speaking: false,
            reprompted: 0,
            deadline_at: setup.max_duration.map(|d| start + d),
            ending: false,
            goodbye_owed: false,
            hard_stop: None,
        };
        if let Some(text) = setup.first_message.clone().filter(|t| !t.trim().is_empty()) {
            let ask = Ask {
                interruptible: setup.greeting_interruptible,
                after: After::Listen,
            };
            s.try_ask(Some(&text), ask)?;
        }
        Ok(s)
    }

    fn into_parts(self) -> (AgentReport, Vec<Message>, Option<Recording>) {
        (self.report, self.messages, self.recording)
    }

    fn ms(&self, t: Instant) -> u64 {
        t.saturating_duration_since(self.start).as_millis() as u64
    }

    fn in_queue(&self) -> usize {
        self.line.sink().max_capacity() - self.line.sink().capacity()
    }

    /// Queues a client event; `Err` when the connection is gone or has
    /// stalled.
    async fn send(&self, event: Value) -> Result<(), String> {
        match tokio::time::timeout(SEND_TIMEOUT, self.out.send(event.to_string())).await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(_)) => Err("the realtime connection closed".to_owned()),
            Err(_) => Err("the realtime connection stalled".to_owned()),
        }
    }

    fn event_id(&mut self) -> String {
        self.next_event += 1;
        format!("hotline_{}", self.next_event)
    }

    fn try_ask(&mut self, say: Option<&str>, ask: Ask) -> Result<(), String> {
        let id = self.event_id();
        self.out
            .try_send(protocol::response_create(&id, say).to_string())
            .map_err(|_| "the connection closed at once".to_owned())?;
        self.ask_ids.push(id);
        self.asked.push(ask);
        Ok(())
    }

    /// Asks for a reply (`say`: exactly these words).
    async fn ask(&mut self, say: Option<&str>, ask: Ask) -> Result<(), String> {
        let id = self.event_id();
        self.send(protocol::response_create(&id, say)).await?;
        self.ask_ids.push(id);
        self.asked.push(ask);
        Ok(())
    }

    async fn run(
        &mut self,
        mut stream: SplitStream<Ws>,
        mut frames: mpsc::Receiver<Vec<i16>>,
        mut events: broadcast::Receiver<CallEvent>,
    ) {
        let stop = loop {
            let now = Instant::now();
            self.feed_line(now);
            if let Some(r) = self.recording.as_mut() {
                r.line_queue(self.line.sink().max_capacity() - self.line.sink().capacity());
            }
            match self.speech_over(now).await {
                Ok(true) => break Stop::Done,
                Ok(false) => {}
                Err(e) => break Stop::Failed(e),
            }
            let draining = self
                .speech
                .as_ref()
                .is_some_and(|s| !s.pending.is_empty() || s.queued > 0);
            let buffered = self.speech.as_ref().map_or(0, |s| s.pending.len());
            let timer = [
                self.digits_deadline,
                self.deadline_at.filter(|_| !self.ending),
                self.hard_stop,
                self.reprompt_at(),
            ]
            .into_iter()
            .flatten()
            .min();
            let step: Result<bool, String> = tokio::select! {
                frame = frames.recv() => match frame {
                    Some(f) => self.caller_frame(f),
                    None => Ok(true),
                },
                message = stream.next(), if buffered < self.max_buffer_frames => match message {
                    Some(Ok(WsMessage::Text(text))) => match serde_json::from_str::<Value>(text.as_str()) {
                        Ok(event) => self.on_event(&event).await,
                        Err(e) => Err(format!("malformed event ({e})")),
                    },
                    Some(Ok(WsMessage::Close(frame))) => {
                        Err(format!("the server closed the connection{}", ws::close_reason(frame)))
                    }
                    Some(Ok(_)) => Ok(false),
                    Some(Err(e)) => Err(format!("the connection broke: {e}")),
                    None => Err("the connection ended".to_owned()),
                },
                result = self.tool_rx.recv() => match result {
                    Some((call_id, result)) => self.tool_answered(&call_id, result).await,
                    None => Ok(false),
                },
                ev = events.recv() => match ev {
                    Ok(CallEvent::Dtmf { digit, .. }) => self.key(digit).await,
                    other => Ok(call_over(&other)),
                },
                _ = sleep_until(timer.unwrap_or(now)), if timer.is_some() => self.on_timer().await,
                // Wakes the loop to move frames to the line as it drains.
                _ = tokio::time::sleep(PTIME), if draining => Ok(false),
            };
            match step {
                Ok(true) => break Stop::Done,
                Ok(false) => {}
                Err(e) => break Stop::Failed(e),
            }
        };
        if let Stop::Done = stop
            && let Some(s) = self.speech.take()
            && s.started
        {
            // The call ended while the agent spoke: the conversation keeps
            // what was heard.
            let played = s.queued.saturating_sub(self.in_queue());
            let (heard, _) = s.heard(played);
            let start_ms = s.start_ms;
            let end = self.ms(Instant::now());
            self.record_speech(s, heard, start_ms, end, true);
        }
        if let Stop::Failed(reason) = stop {
            warn!(call = %self.call.call_id, %reason, "agent: the realtime API failed");
            if let Some(s) = self.speech.take() {
                self.interrupt(s).await;
            }
            let mut messages = std::mem::take(&mut self.messages);
            give_up(
                self.setup,
                &reason,
                self.line,
                self.control,
                &mut self.recording,
                self.start,
                &mut messages,
            )
            .await;
            self.messages = messages;
        }
    }

    /// Moves converted frames to the line while it has room.
    fn feed_line(&mut self, now: Instant) {
        let max = self.line.sink().max_capacity();
        let Some(s) = self.speech.as_mut() else {
            return;
        };
        while !s.pending.is_empty() {
            let Ok(permit) = self.line.sink().try_reserve() else {
                break;
            };
            let (_, frame) = s.pending.pop_front().expect("checked non-empty");
            let queued_ahead = max - self.line.sink().capacity();
            let plays_at = now + PTIME * queued_ahead as u32;
            if let Some(r) = self.recording.as_mut() {
                r.agent_queued(plays_at - self.start, &frame);
            }
            self.echo.agent_frame(plays_at.into_std(), rms(&frame));
            permit.send(frame);
            s.queued += 1;
            if !s.started {
                s.started = true;
                s.start_ms = now.saturating_duration_since(self.start).as_millis() as u64;
                self.control
                    .publish(CallEvent::AgentSpeaking { speaking: true });
                if let Some(eos) = self.eos.take() {
                    let total = now.saturating_duration_since(eos).as_millis() as u64;
                    // One model hears, thinks and speaks: its time is the
                    // wait for its first audio, the rest is Hotline's.
                    let model = self
                        .first_audio
                        .take()
                        .map(|t| t.saturating_duration_since(eos).as_millis() as u64);
                    let m = TurnMetrics {
                        llm_first_token_ms: model,
                        voice_to_voice_ms: Some(total),
                        server_ms: model.map(|m| total.saturating_sub(m)),
                        ..TurnMetrics::default()
                    };
                    self.report.turns.push(m.clone());
                    self.control.publish(CallEvent::AgentTurn(m));
                }
            }
        }
    }

    /// Ends the speech once everything it asked for has come and played;
    /// `Ok(true)` when the agent hung up.
    async fn speech_over(&mut self, now: Instant) -> Result<bool, String> {
        let over = self.speech.as_ref().is_some_and(|s| {
            s.pending.is_empty()
                && self.active.is_none()
                && self.asked.is_empty()
                && self.tools_running == 0
                && self.in_queue() == 0
        });
        if !over {
            return Ok(false);
        }
        let s = self.speech.take().expect("checked");
        let text = s.full_text();
        if s.started {
            self.control
                .publish(CallEvent::AgentSpeaking { speaking: false });
        }
        let (start_ms, after) = (s.start_ms, s.after.clone());
        self.record_speech(s, text, start_ms, self.ms(now), false);
        match after {
            After::Listen if self.goodbye_owed => {
                self.goodbye_owed = false;
                self.say_goodbye().await?;
            }
            After::Listen => self.quiet_since = Some(now),
            After::Hangup => {
                self.control.hangup();
                return Ok(true);
            }
            After::Transfer(target) => self.control.transfer(&target),
        }
        Ok(false)
    }

    /// The conversation's and the transcript's record of a speech.
    fn record_speech(
        &mut self,
        s: Speech,
        text: String,
        start_ms: u64,
        end: u64,
        interrupted: bool,
    ) {
        if !text.is_empty() || interrupted {
            self.control.publish(CallEvent::Transcript(TranscriptLine {
                speaker: "agent",
                text: text.clone(),
                is_final: true,
                start_ms,
                end_ms: end.max(start_ms),
                interrupted,
            }));
        }
        self.messages.extend(s.into_messages(text, interrupted));
    }

    /// Stops the agent mid-speech: the line drops what is queued, the
    /// reply is cancelled and cut, at the server, to what was played, and
    /// recorded as heard.
    async fn interrupt(&mut self, s: Speech) -> String {
        let in_queue = self.in_queue();
        let played = s.queued.saturating_sub(in_queue);
        self.line.flush().await;
        if let Some(r) = self.recording.as_mut() {
            r.line_flushed(in_queue);
        }
        if let Some(id) = self.active.take() {
            let _ = self.send(protocol::response_cancel()).await;
            self.discard.insert(id);
        }
        // Replies already asked for answer a moment that has passed.
        self.stale = self.asked.len();
        let (heard, cuts) = s.heard(played);
        for cut in &cuts {
            let _ = self
                .send(protocol::truncate(&cut.item_id, cut.audio_end_ms))
                .await;
        }
        if s.started {
            self.control
                .publish(CallEvent::AgentSpeaking { speaking: false });
        }
        let start_ms = s.start_ms;
        let end = self.ms(Instant::now());
        self.record_speech(s, heard.clone(), start_ms, end, true);
        heard
    }

    /// When the silence reprompt is due: nobody speaking, nothing on its
    /// way from the model, and not ending.
    fn reprompt_at(&self) -> Option<Instant> {
        let idle = self.speech.is_none()
            && self.active.is_none()
            && self.asked.is_empty()
            && self.tools_running == 0
            && !self.caller_speaking
            && !self.ending;
        match (self.quiet_since, self.setup.silence_reprompt) {
            (Some(since), Some(after)) if idle => Some(since + after),
            _ => None,
        }
    }

    /// The caller has been silent: the next reprompt, or after the last
    /// one the goodbye and the end of the call.
    async fn reprompt(&mut self) -> Result<(), String> {
        let silent = self.setup.silence_reprompt.map_or(0, |d| d.as_secs());
        if let Some(text) = self.setup.reprompts.get(self.reprompted).cloned() {
            self.reprompted += 1;
            info!(call = %self.call.call_id, silent_secs = silent, n = self.reprompted, "agent: reprompting a silent caller");
            let ask = Ask {
                interruptible: true,
                after: After::Listen,
            };
            return self.ask(Some(&text), ask).await;
        }
        info!(call = %self.call.call_id, silent_secs = silent, "agent: the caller stayed silent; saying goodbye");
        self.ending = true;
        self.hard_stop = Some(Instant::now() + GOODBYE_GRACE);
        let text = self.setup.goodbye.clone();
        let ask = Ask {
            interruptible: false,
            after: After::Hangup,
        };
        self.ask(Some(&text), ask).await
    }

    /// Says `time_up`, then hangs up.
    async fn say_goodbye(&mut self) -> Result<(), String> {
        info!(call = %self.call.call_id, "agent: maximum duration reached");
        if self.active.is_some() {
            // A reply not yet heard makes way for the goodbye.
            self.send(protocol::response_cancel()).await?;
            self.discard.extend(self.active.take());
        }
        self.stale = self.asked.len();
        self.hard_stop = Some(Instant::now() + GOODBYE_GRACE);
        let text = self.setup.time_up.clone();
        let ask = Ask {
            interruptible: false,
            after: After::Hangup,
        };
        self.ask(Some(&text), ask).await
    }

    fn caller_frame(&mut self, mut frame: Vec<i16>) -> Result<bool, String> {
        if let Some(r) = self.recording.as_mut() {
            r.caller(self.start.elapsed(), &frame);
        }
        if !self.echo.is_caller(std::time::Instant::now(), rms(&frame)) {
            // Nothing louder than the agent's own echo: the server hears
            // silence (the recording keeps the line as it was).
            frame.iter_mut().for_each(|s| *s = 0);
            self.report.echo_frames_muted += 1;
        }
        self.up.push(&frame).map_err(|e| e.message)?;
        while let Some(chunk) = self.up.take(APPEND_SAMPLES, false) {
            match self.out.try_send(append_message(&chunk)) {
                Ok(()) => {}
                Err(mpsc::error::TrySendError::Full(_)) => self.report.stt_frames_dropped += 1,
                Err(mpsc::error::TrySendError::Closed(_)) => {
                    return Err("the realtime connection closed".into());
                }
            }
        }
        Ok(false)
    }

    async fn key(&mut self, digit: char) -> Result<bool, String> {
        // A key press interrupts the agent like speech does.
        if self
            .speech
            .as_ref()
            .is_some_and(|s| s.started && s.interruptible)
        {
            let s = self.speech.take().expect("checked");
            self.interrupt(s).await;
        }
        if digit == '#' {
            self.digits_deadline = Some(Instant::now());
        } else {
            self.digits.push(digit);
            self.digits_deadline = Some(Instant::now() + DIGIT_GAP);
        }
        Ok(false)
    }

    async fn on_timer(&mut self) -> Result<bool, String> {
        let now = Instant::now();
        if self.hard_stop.is_some_and(|t| t <= now) {
            warn!(call = %self.call.call_id, "agent: the goodbye did not finish; hanging up");
            if let Some(s) = self.speech.take() {
                self.interrupt(s).await;
            }
            self.control.hangup();
            return Ok(true);
        }
        if self.reprompt_at().is_some_and(|t| t <= now) {
            self.quiet_since = None;
            self.reprompt().await?;
        }
        if self.deadline_at.is_some_and(|t| t <= now) && !self.ending {
            self.ending = true;
            // Speech being heard is finished first; the goodbye follows.
            if self.speech.as_ref().is_some_and(|s| s.started) {
                self.goodbye_owed = true;
                self.hard_stop = Some(now + GOODBYE_GRACE * 2);
            } else {
                self.speech = None;
                self.say_goodbye().await?;
            }
        }
        if self.digits_deadline.is_some_and(|t| t <= now) {
            // Speech that cannot be interrupted is heard out first.
            if self.speech.as_ref().is_some_and(|s| s.started) {
                self.digits_deadline = Some(now + PTIME * 10);
                return Ok(false);
            }
            self.digits_deadline = None;
            let digits = std::mem::take(&mut self.digits);
            if !digits.is_empty() && !self.ending {
                let spaced: Vec<String> = digits.chars().map(String::from).collect();
                let text = format!("The caller pressed {} on the keypad.", spaced.join(" "));
                self.messages.push(Message::Dtmf { digits });
                if self.active.is_some() {
                    self.send(protocol::response_cancel()).await?;
                    self.discard.extend(self.active.take());
                    self.speech = None;
                }
                self.send(protocol::user_text(&text)).await?;
                let ask = Ask {
                    interruptible: true,
                    after: After::Listen,
                };
                self.ask(None, ask).await?;
            }
        }
        Ok(false)
    }

    /// Handles one server event; `Ok(true)` ends the call.
    async fn on_event(&mut self, event: &Value) -> Result<bool, String> {
        let str_of = |k: &str| event.get(k).and_then(Value::as_str).unwrap_or_default();
        let u64_of = |k: &str| event.get(k).and_then(Value::as_u64).unwrap_or_default();
        let item = str_of("item_id");
        match event_kind(event) {
            "input_audio_buffer.speech_started" => {
                self.caller_speaking = true;
                self.quiet_since = None;
                self.reprompted = 0;
                let turn = self.caller.entry(item.to_owned()).or_default();
                turn.start_ms = u64_of("audio_start_ms");
                self.tool_rounds = 0;
                match self.speech.as_ref() {
                    Some(s) if s.started && s.interruptible => {
                        let s = self.speech.take().expect("checked");
                        let heard = self.interrupt(s).await;
                        info!(call = %self.call.call_id, %heard, "agent: caller barged in");
                        if self.ending {
                            self.say_goodbye().await?;
                        }
                    }
                    // A reply not yet heard is stale: the caller has more
                    // to say.
                    Some(s) if !s.started && s.interruptible && !self.ending => {
                        self.speech = None;
                        if let Some(id) = self.active.take() {
                            self.send(protocol::response_cancel()).await?;
                            self.discard.insert(id);
                        }
                        self.stale = self.asked.len();
                    }
                    _ => {}
                }
            }
            "input_audio_buffer.speech_stopped" => {
                self.caller_speaking = false;
                self.caller.entry(item.to_owned()).or_default().end_ms = u64_of("audio_end_ms");
                self.eos = Some(Instant::now());
                self.first_audio = None;
            }
            "input_audio_buffer.committed" => {
                let turn = self.caller.entry(item.to_owned()).or_default();
                if turn.message.is_none() {
                    turn.message = Some(self.messages.len());
                    self.messages.push(Message::User {
                        text: turn.text.clone(),
                    });
                }
            }
            "conversation.item.input_audio_transcription.delta" => {
                let turn = self.caller.entry(item.to_owned()).or_default();
                turn.text.push_str(str_of("delta"));
                let line = TranscriptLine {
                    speaker: "caller",
                    text: turn.text.trim().to_owned(),
                    is_final: false,
                    start_ms: turn.start_ms,
                    end_ms: turn.end_ms.max(turn.start_ms),
                    interrupted: false,
                };
                self.control.publish(CallEvent::Transcript(line));
            }
            "conversation.item.input_audio_transcription.completed" => {
                let turn = self.caller.remove(item).unwrap_or_default();
                let text = str_of("transcript").trim().to_owned();
                if let Some(Message::User { text: t }) =
                    turn.message.and_then(|n| self.messages.get_mut(n))
                {
                    t.clone_from(&text);
                } else {
                    self.messages.push(Message::User { text: text.clone() });
                }
                if !text.is_empty() {
                    self.control.publish(CallEvent::Transcript(TranscriptLine {
                        speaker: "caller",
                        text,
                        is_final: true,
                        start_ms: turn.start_ms,
                        end_ms: turn.end_ms.max(turn.start_ms),
                        interrupted: false,
                    }));
                }
            }
            "conversation.item.input_audio_transcription.failed" => {
                self.caller.remove(item);
                let why = event
                    .pointer("/error/message")
                    .and_then(Value::as_str)
                    .unwrap_or("no reason given");
                warn!(call = %self.call.call_id, why, "agent: the caller's words could not be transcribed");
            }
            "response.created" => {
                let id = event
                    .pointer("/response/id")
                    .and_then(Value::as_str)
                    .unwrap_or_default()
                    .to_owned();
                let ours = !self.asked.is_empty();
                let ask = if ours {
                    self.ask_ids.remove(0);
                    Some(self.asked.remove(0))
                } else {
                    None
                };
                // Stale asks, and the server's own replies while the
                // goodbye is said, are cancelled.
                let stale = ours && self.stale > 0;
                if stale {
                    self.stale -= 1;
                }
                if stale || (!ours && self.ending) || self.active.is_some() {
                    self.send(protocol::response_cancel()).await?;
                    self.discard.insert(id);
                    return Ok(false);
                }
                self.active = Some(id);
                let ask = ask.unwrap_or(Ask {
                    interruptible: true,
                    after: After::Listen,
                });
                match self.speech.as_mut() {
                    Some(s) => {
                        if ask.after != After::Listen {
                            s.after = ask.after;
                        }
                        s.interruptible &= ask.interruptible;
                    }
                    None => {
                        self.speech = Some(Speech::new(ask.interruptible, ask.after));
                    }
                }
            }
            "response.output_audio.delta" => {
                if self.discard.contains(str_of("response_id")) {
                    return Ok(false);
                }
                let bytes = base64::engine::general_purpose::STANDARD
                    .decode(str_of("delta"))
                    .map_err(|e| format!("audio that is not base64 ({e})"))?;
                let samples: Vec<i16> = bytes
                    .chunks_exact(2)
                    .map(|p| i16::from_le_bytes([p[0], p[1]]))
                    .collect();
                if self.eos.is_some() && self.first_audio.is_none() {
                    self.first_audio = Some(Instant::now());
                }
                let s = self
                    .speech
                    .get_or_insert_with(|| Speech::new(true, After::Listen));
                if let Err(e) = s.audio(item, samples) {
                    warn!(call = %self.call.call_id, error = %e, "agent: unusable realtime audio");
                }
            }
            "response.output_audio_transcript.delta" => {
                if let Some(s) = self.speech.as_mut()
                    && !self.discard.contains(str_of("response_id"))
                {
                    s.transcript_delta(item, str_of("delta"));
                }
            }
            "response.output_audio_transcript.done" => {
                if let Some(s) = self.speech.as_mut()
                    && !self.discard.contains(str_of("response_id"))
                {
                    s.transcript_done(item, str_of("transcript"));
                }
            }
            "response.done" => return self.response_done(event).await,
            "error" => {
                let code = event
                    .pointer("/error/code")
                    .and_then(Value::as_str)
                    .unwrap_or_default();
                let message = event
                    .pointer("/error/message")
                    .and_then(Value::as_str)
                    .unwrap_or("unknown error");
                let about = event
                    .pointer("/error/event_id")
                    .and_then(Value::as_str)
                    .unwrap_or_default();
                if let Some(n) = self.ask_ids.iter().position(|i| i == about) {
                    // That reply will never come.
                    self.ask_ids.remove(n);
                    self.asked.remove(n);
                    self.stale = self.stale.min(self.asked.len());
                }
                // A cancel that came after the reply ended is harmless.
                if code != "response_cancel_not_active" {
                    warn!(call = %self.call.call_id, code, error = %http::shorten(message), "agent: realtime API error");
                }
            }
            kind => debug!(call = %self.call.call_id, kind, "agent: realtime event"),
        }
        Ok(false)
    }

    /// A response is complete: its audio's tail is flushed, its tool calls
    /// are acted on.
    async fn response_done(&mut self, event: &Value) -> Result<bool, String> {
        let response = event.get("response").cloned().unwrap_or_default();
        let id = response
            .get("id")
            .and_then(Value::as_str)
            .unwrap_or_default();
        if self.discard.remove(id) {
            return Ok(false);
        }
        if self.active.as_deref() == Some(id) {
            self.active = None;
        }
        let status = response
            .get("status")
            .and_then(Value::as_str)
            .unwrap_or_default();
        if status == "failed" {
            let why = response
                .pointer("/status_details/error/message")
                .and_then(Value::as_str)
                .unwrap_or("no reason given");
            warn!(call = %self.call.call_id, why, "agent: a realtime reply failed");
            self.failed_replies += 1;
            if self.failed_replies >= MAX_FAILED_REPLIES {
                return Err(format!("replies keep failing: {why}"));
            }
        } else {
            self.failed_replies = 0;
        }
        let Some(s) = self.speech.as_mut() else {
            return Ok(false);
        };
        s.audio_done();
        let output = response
            .get("output")
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default();
        let mut go_on = false;
        for item in output {
            if item.get("type").and_then(Value::as_str) != Some("function_call")
                || item.get("status").and_then(Value::as_str) == Some("incomplete")
            {
                continue;
            }
            let field = |k: &str| item.get(k).and_then(Value::as_str).unwrap_or_default();
            let arguments = serde_json::from_str::<Value>(field("arguments"))
                .ok()
                .filter(Value::is_object)
                .unwrap_or_else(|| json!({}));
            let tc = ToolCall {
                id: field("call_id").to_owned(),
                name: field("name").to_owned(),
                arguments,
            };
            if let Some(result) = self.tool_call(&tc) {
                go_on |= !result.ok
                    || !matches!(tc.name.as_str(), "end_call" | "transfer_call" | "send_dtmf");
                self.send(protocol::function_output(&tc.id, &result.content))
                    .await?;
                if let Some(s) = self.speech.as_mut() {
                    s.tool_results.push(Message::Tool {
                        call_id: tc.id.clone(),
                        content: result.content,
                    });
                }
            }
            if let Some(s) = self.speech.as_mut() {
                s.tool_calls.push(tc);
            }
        }
        // `send_dtmf` needs no words: the menu's next prompt is what the
        // model waits for. A failed call tool is explained to the caller.
        if go_on && self.tools_running == 0 {
            self.follow_up().await?;
        }
        Ok(false)
    }

    /// Acts on a tool call; the result to give the model at once, `None`
    /// for an HTTP tool (its answer comes later).
    fn tool_call(&mut self, tc: &ToolCall) -> Option<ToolResult> {
        let ok = |v: Value| ToolResult {
            content: v.to_string(),
            ok: true,
        };
        let s = self.speech.as_mut()?;
        match tc.name.as_str() {
            "end_call" => {
                s.after = After::Hangup;
                Some(ok(json!({"ok": true})))
            }
            "transfer_call" => {
                let named = tc.arguments.get("number").and_then(Value::as_str);
                match self.setup.transfer_to.as_deref().or(named) {
                    Some(n) => {
                        s.after = After::Transfer(n.to_owned());
                        Some(ok(json!({"ok": true})))
                    }
                    None => Some(ToolResult::error("no number to transfer to")),
                }
            }
            "send_dtmf" => match tc.arguments.get("digits").and_then(Value::as_str) {
                Some(d) => {
                    self.control.send_dtmf(d);
                    Some(ok(json!({"sent": d})))
                }
                None => Some(ToolResult::error("no digits given")),
            },
            name if crate::agent::campaign_tools::is_campaign_tool(name)
                && self.setup.tools.iter().any(|t| t.name == name) =>
            {
                let (event, result) =
                    crate::agent::campaign_tools::handle(tc, crate::store::now_ms());
                if let Some(event) = event {
                    self.control.publish(event);
                }
                Some(result)
            }
            name if self.runner.has(name) => {
                if self.tool_rounds >= self.setup.max_tool_rounds {
                    return Some(ToolResult::error("too many tool calls for one turn"));
                }
                let tool = self
                    .setup
                    .http_tools
                    .iter()
                    .find(|t| t.spec.name == name)?
                    .clone();
                let (tx, call_id, tc) =
                    (self.tool_tx.clone(), self.call.call_id.clone(), tc.clone());
                self.tools_running += 1;
                tokio::spawn(async move {
                    let result = tokio::select! {
                        r = crate::agent::tools::run::call_tool(&tool, &call_id, &tc) => r,
                        // The call ended: nobody wants the answer.
                        _ = tx.closed() => return,
                    };
                    let _ = tx.send((tc.id, result)).await;
                });
                None
            }
            name => {
                warn!(call = %self.call.call_id, tool = name, "agent: the model called an unknown tool");
                Some(ToolResult::error(format!("unknown tool {name}")))
            }
        }
    }

    async fn tool_answered(&mut self, call_id: &str, result: ToolResult) -> Result<bool, String> {
        self.tools_running = self.tools_running.saturating_sub(1);
        self.send(protocol::function_output(call_id, &result.content))
            .await?;
        let message = Message::Tool {
            call_id: call_id.to_owned(),
            content: result.content,
        };
        match self.speech.as_mut() {
            Some(s) => s.tool_results.push(message),
            None => self.messages.push(message),
        }
        if self.tools_running == 0 {
            self.follow_up().await?;
        }
        Ok(false)
    }

    /// Asks the model to go on after tool results.
    async fn follow_up(&mut self) -> Result<(), String> {
        if self.ending || self.tool_rounds >= self.setup.max_tool_rounds {
            return Ok(());
        }
        self.tool_rounds += 1;
        let ask = Ask {
            interruptible: true,
            after: After::Listen,
        };
        self.ask(None, ask).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_handshake_names_the_model_and_carries_the_key() {
        let config = RealtimeAgentConfig {
            url: "ws://127.0.0.1:9/v1/realtime".into(),
            api_key: Some("sk-rt".into()),
            protocol: RealtimeProtocol::Beta,
            ..RealtimeAgentConfig::default()
        };
        let r = request(&config).unwrap();
        assert_eq!(r.uri().query(), Some("model=gpt-realtime"));
        assert_eq!(r.headers()["authorization"], "Bearer sk-rt");
        assert_eq!(r.headers()["openai-beta"], "realtime=v1");
        let bad = RealtimeAgentConfig {
            url: "http://x".into(),
            ..config
        };
        assert!(request(&bad).unwrap_err().contains("url"));
    }
}
