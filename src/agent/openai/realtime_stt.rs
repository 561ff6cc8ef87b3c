//! The realtime transcription WebSocket
//! (`wss://…/v1/realtime?intent=transcription`), one connection per
//! utterance.
//!
//! The caller's 16 kHz audio is resampled to the 24 kHz PCM16 the API
//! takes and appended (`input_audio_buffer.append`, base64) while the
//! caller speaks; when the utterance ends the buffer is committed and the
//! final text is whatever the committed items were transcribed to.
//!
//! With partials asked for (and `partial_pause_ms` set), the server's voice
//! detection commits a piece at each pause, so pieces are transcribed
//! while the caller goes on and `…transcription.delta` events become
//! partials. The final text joins the pieces in the order they were
//! committed.
//!
//! Audio that arrives while the connection opens is kept (up to
//! `max_utterance_ms`) and sent once it is up.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use base64::Engine as _;
use futures_util::{SinkExt, StreamExt};
use hotline_media::resample::Resampler;
use serde_json::{Value, json};
use tokio::sync::mpsc;
use tokio::time::{Instant, sleep_until};
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::handshake::client::Request;
use tokio_tungstenite::tungstenite::http::HeaderValue;
use tokio_tungstenite::tungstenite::{self, Message as WsMessage};

use super::http::{self, timeout_failure};
use super::stt::{NAME, RealtimeProtocol, Shared};
use super::ws::{self, Ws};
use crate::agent::provider::{ProviderError, STT_RATE, SttEvent, SttOptions, Transcript};

/// The API's input rate.
pub(crate) const REALTIME_RATE: u32 = 24_000;

/// Samples of 24 kHz audio per append: 100 ms, few enough messages and
/// soon enough for partials.
const APPEND_SAMPLES: usize = REALTIME_RATE as usize / 10;

/// The 16 kHz input cut into the 20 ms frames the resampler takes, and
/// the 24 kHz output waiting to be sent.
pub(crate) struct Upsampler {
    resampler: Resampler,
    input: Vec<i16>,
    output: Vec<i16>,
}

impl Upsampler {
    pub fn new() -> Result<Self, ProviderError> {
        let resampler = Resampler::new(STT_RATE, REALTIME_RATE)
            .map_err(|e| ProviderError::new(NAME, format!("resampler: {e}"), false))?;
        Ok(Upsampler {
            input: Vec::with_capacity(resampler.input_frame_len()),
            output: Vec::new(),
            resampler,
        })
    }

    /// Adds 16 kHz samples of any count.
    pub fn push(&mut self, mut samples: &[i16]) -> Result<(), ProviderError> {
        let frame = self.resampler.input_frame_len();
        while !samples.is_empty() {
            let take = (frame - self.input.len()).min(samples.len());
            self.input.extend_from_slice(&samples[..take]);
            samples = &samples[take..];
            if self.input.len() == frame {
                self.process()?;
            }
        }
        Ok(())
    }

    /// Pads the last partial frame with silence and drains the filter.
    pub fn finish(&mut self) -> Result<(), ProviderError> {
        if !self.input.is_empty() {
            self.input.resize(self.resampler.input_frame_len(), 0);
            self.process()?;
        }
        self.resampler
            .flush(&mut self.output)
            .map_err(|e| ProviderError::new(NAME, format!("resampler: {e}"), false))
    }

    fn process(&mut self) -> Result<(), ProviderError> {
        let r = self.resampler.process(&self.input, &mut self.output);
        self.input.clear();
        r.map_err(|e| ProviderError::new(NAME, format!("resampler: {e}"), false))
    }

    /// The next `size` samples of output, or with `last` whatever is
    /// left.
    pub fn take(&mut self, size: usize, last: bool) -> Option<Vec<i16>> {
        if self.output.len() >= size.max(1) {
            return Some(self.output.drain(..size.max(1)).collect());
        }
        (last && !self.output.is_empty()).then(|| std::mem::take(&mut self.output))
    }
}

pub(crate) fn append_message(samples: &[i16]) -> String {
    let bytes: Vec<u8> = samples.iter().flat_map(|s| s.to_le_bytes()).collect();
    json!({
        "type": "input_audio_buffer.append",
        "audio": base64::engine::general_purpose::STANDARD.encode(bytes),
    })
    .to_string()
}

/// The session settings message of either protocol version.
pub(crate) fn session_update(
    protocol: RealtimeProtocol,
    model: &str,
    language: Option<&str>,
    prompt: Option<&str>,
    pause_ms: Option<u32>,
) -> Value {
    let mut transcription = json!({ "model": model });
    if let Some(l) = language {
        transcription["language"] = json!(l);
    }
    if let Some(p) = prompt.filter(|p| !p.trim().is_empty()) {
        transcription["prompt"] = json!(p);
    }
    let turn_detection = match pause_ms {
        Some(ms) => json!({
            "type": "server_vad",
            "silence_duration_ms": ms,
            "prefix_padding_ms": 300,
            "threshold": 0.5,
        }),
        None => Value::Null,
    };
    match protocol {
        RealtimeProtocol::Ga => json!({
            "type": "session.update",
            "session": {
                "type": "transcription",
                "audio": { "input": {
                    "format": { "type": "audio/pcm", "rate": REALTIME_RATE },
                    "transcription": transcription,
                    "turn_detection": turn_detection,
                }},
            },
        }),
        RealtimeProtocol::Beta => json!({
            "type": "transcription_session.update",
            "session": {
                "input_audio_format": "pcm16",
                "input_audio_transcription": transcription,
                "turn_detection": turn_detection,
            },
        }),
    }
}

/// The pieces of one utterance, in commit order.
#[derive(Debug, Default)]
pub(crate) struct Pieces {
    order: Vec<String>,
    text: HashMap<String, String>,
    done: HashMap<String, bool>,
}

impl Pieces {
    fn slot(&mut self, item: &str) -> &mut String {
        if !self.text.contains_key(item) {
            self.order.push(item.to_owned());
            self.done.insert(item.to_owned(), false);
        }
        self.text.entry(item.to_owned()).or_default()
    }

    pub fn committed(&mut self, item: &str) {
        self.slot(item);
    }

    pub fn delta(&mut self, item: &str, delta: &str) {
        if !self.done.get(item).copied().unwrap_or(false) {
            self.slot(item).push_str(delta);
        }
    }

    pub fn completed(&mut self, item: &str, transcript: &str) {
        *self.slot(item) = transcript.to_owned();
        self.done.insert(item.to_owned(), true);
    }

    pub fn all_done(&self) -> bool {
        self.done.values().all(|d| *d)
    }

    pub fn joined(&self) -> String {
        self.order
            .iter()
            .map(|i| self.text[i].trim())
            .filter(|t| !t.is_empty())
            .collect::<Vec<_>>()
            .join(" ")
    }
}

/// Runs one utterance's recognition.
pub(crate) async fn run(
    shared: Arc<Shared>,
    options: SttOptions,
    mut audio_rx: mpsc::Receiver<Vec<i16>>,
    tx: mpsc::Sender<SttEvent>,
) {
    let request = match realtime_request(&shared) {
        Ok(r) => r,
        Err(e) => {
            let _ = tx.send(SttEvent::Error(e)).await;
            return;
        }
    };
    let config = &shared.config;
    let timeout = Duration::from_millis(config.connect_timeout_ms);
    let deadline = Instant::now() + timeout * (config.max_retries + 1);
    let connect = ws::connect(NAME, &request, timeout, shared.policy(), deadline);
    let max = shared.max_samples();
    let Some(opened) =
        ws::open_while_buffering(connect, &mut audio_rx, &tx, max, || shared.too_long()).await
    else {
        return;
    };
    let mut session = Session {
        shared: &shared,
        partials: options.partials,
        tx: &tx,
        samples: 0,
        pieces: Pieces::default(),
    };
    let result = session
        .drive(
            opened.ws,
            &options,
            opened.pending,
            opened.audio_done,
            audio_rx,
        )
        .await;
    if let Err(Some(e)) = result {
        let _ = tx.send(SttEvent::Error(e)).await;
    }
}

/// The handshake request: the URL, the key, and the beta header when the
/// beta protocol is spoken.
fn realtime_request(shared: &Shared) -> Result<Request, ProviderError> {
    let mut request = shared
        .realtime_url
        .as_str()
        .into_client_request()
        .map_err(|e| ProviderError::new(NAME, format!("realtime URL: {e}"), false))?;
    let headers = request.headers_mut();
    if let Some(key) = &shared.key {
        let value = HeaderValue::from_str(&format!("Bearer {key}")).map_err(|_| {
            ProviderError::new(NAME, "the API key is not a valid header value", false)
        })?;
        headers.insert("authorization", value);
    }
    if shared.config.realtime_protocol == RealtimeProtocol::Beta {
        headers.insert("openai-beta", HeaderValue::from_static("realtime=v1"));
    }
    Ok(request)
}

/// Where the final commit stands.
#[derive(Debug, Default)]
struct CommitState {
    /// Voice detection was on, so `committed` events of its own may come
    /// before our commit's: only those after the last update's
    /// acknowledgement count.
    needs_ack: bool,
    updates_sent: u32,
    updates_acked: u32,
    /// The commit went out.
    sent: bool,
    /// The server committed it (or found nothing left to commit).
    answered: bool,
}

impl CommitState {
    /// The next `committed` event is the answer to our commit.
    fn armed(&self) -> bool {
        self.sent && (!self.needs_ack || self.updates_acked >= self.updates_sent)
    }
}

struct Session<'a> {
    shared: &'a Shared,
    partials: bool,
    tx: &'a mpsc::Sender<SttEvent>,
    /// 16 kHz samples received, for the transcript's times.
    samples: u64,
    pieces: Pieces,
}

/// `Err(None)`: cancelled, nothing to report.
type Step = Result<(), Option<ProviderError>>;

fn ws_error(e: tungstenite::Error) -> Option<ProviderError> {
    Some(ProviderError::new(
        NAME,
        format!("realtime connection broke: {e}"),
        true,
    ))
}

impl Session<'_> {
    async fn drive(
        &mut self,
        ws: Ws,
        options: &SttOptions,
        pending: Vec<i16>,
        mut audio_done: bool,
        mut audio_rx: mpsc::Receiver<Vec<i16>>,
    ) -> Step {
        let (mut sink, mut stream) = ws.split();
        let config = &self.shared.config;
        let language = self.shared.language(options);
        let pause = if self.partials {
            config.partial_pause_ms
        } else {
            None
        };
        let update = session_update(
            config.realtime_protocol,
            &config.model,
            language.as_deref(),
            config.prompt.as_deref(),
            pause,
        );
        sink.send(WsMessage::text(update.to_string()))
            .await
            .map_err(ws_error)?;
        let mut commit = CommitState {
            updates_sent: 1,
            ..Default::default()
        };

        let max = self.shared.max_samples() as u64;
        let mut up = Upsampler::new().map_err(Some)?;
        self.samples = pending.len() as u64;
        up.push(&pending).map_err(Some)?;
        if audio_done {
            up.finish().map_err(Some)?;
        }
        let mut appended = 0usize;
        // Set once the commit is sent: the deadline for the text runs from it.
        let mut committed_at: Option<Instant> = None;
        let response_timeout = Duration::from_millis(config.response_timeout_ms);
        loop {
            while let Some(chunk) = up.take(APPEND_SAMPLES, audio_done) {
                appended += chunk.len();
                sink.send(WsMessage::text(append_message(&chunk)))
                    .await
                    .map_err(ws_error)?;
            }
            if audio_done && committed_at.is_none() {
                if appended == 0 {
                    let _ = sink.send(WsMessage::Close(None)).await;
                    return self.finish().await;
                }
                if pause.is_some() {
                    // Voice detection off first: the `committed` events it
                    // caused all come before the update's acknowledgement,
                    // so the next one after it answers our commit.
                    let off = session_update(
                        config.realtime_protocol,
                        &config.model,
                        language.as_deref(),
                        config.prompt.as_deref(),
                        None,
                    );
                    sink.send(WsMessage::text(off.to_string()))
                        .await
                        .map_err(ws_error)?;
                    commit.updates_sent += 1;
                    commit.needs_ack = true;
                }
                let message = json!({"type": "input_audio_buffer.commit"}).to_string();
                sink.send(WsMessage::text(message))
                    .await
                    .map_err(ws_error)?;
                commit.sent = true;
                committed_at = Some(Instant::now());
            }
            if commit.answered && self.pieces.all_done() {
                let _ = sink.send(WsMessage::Close(None)).await;
                return self.finish().await;
            }
            let deadline = committed_at.map(|t| t + response_timeout);
            tokio::select! {
                _ = self.tx.closed() => {
                    let _ = sink.send(WsMessage::Close(None)).await;
                    return Err(None);
                }
                _ = sleep_until(deadline.unwrap_or_else(Instant::now)), if deadline.is_some() => {
                    let _ = sink.send(WsMessage::Close(None)).await;
                    return Err(Some(timeout_failure(NAME, "realtime transcription", response_timeout).error));
                }
                frame = audio_rx.recv(), if !audio_done => match frame {
                    Some(f) => {
                        self.samples += f.len() as u64;
                        if self.samples > max {
                            return Err(Some(self.shared.too_long()));
                        }
                        up.push(&f).map_err(Some)?;
                    }
                    None => {
                        audio_done = true;
                        up.finish().map_err(Some)?;
                    }
                },
                message = stream.next() => match message {
                    Some(Ok(WsMessage::Text(text))) => {
                        let event: Value = serde_json::from_str(text.as_str()).map_err(|e| {
                            Some(ProviderError::new(NAME, format!("realtime: malformed event ({e})"), true))
                        })?;
                        self.on_event(&event, &mut commit).await?;
                    }
                    Some(Ok(WsMessage::Close(frame))) => {
                        let why = ws::close_reason(frame);
                        return Err(Some(ProviderError::new(
                            NAME,
                            format!("realtime: the server closed the connection{why}"),
                            true,
                        )));
                    }
                    Some(Ok(_)) => {}
                    Some(Err(e)) => return Err(ws_error(e)),
                    None => {
                        return Err(Some(ProviderError::new(NAME, "realtime: the connection ended", true)));
                    }
                },
            }
        }
    }

    /// Handles one server event.
    async fn on_event(&mut self, event: &Value, commit: &mut CommitState) -> Step {
        let kind = event
            .get("type")
            .and_then(Value::as_str)
            .unwrap_or_default();
        let item = event
            .get("item_id")
            .and_then(Value::as_str)
            .unwrap_or_default();
        match kind {
            "session.updated" | "transcription_session.updated" => commit.updates_acked += 1,
            "input_audio_buffer.committed" => {
                self.pieces.committed(item);
                if commit.armed() {
                    commit.answered = true;
                }
            }
            "conversation.item.input_audio_transcription.delta" => {
                let delta = event
                    .get("delta")
                    .and_then(Value::as_str)
                    .unwrap_or_default();
                self.pieces.delta(item, delta);
                self.partial().await?;
            }
            "conversation.item.input_audio_transcription.completed" => {
                let text = event
                    .get("transcript")
                    .and_then(Value::as_str)
                    .unwrap_or_default();
                self.pieces.completed(item, text);
                self.partial().await?;
            }
            "conversation.item.input_audio_transcription.failed" => {
                let why = event
                    .pointer("/error/message")
                    .and_then(Value::as_str)
                    .unwrap_or("no reason given");
                return Err(Some(ProviderError::new(
                    NAME,
                    format!("realtime: transcription failed: {why}"),
                    true,
                )));
            }
            "error" => {
                let code = event
                    .pointer("/error/code")
                    .and_then(Value::as_str)
                    .unwrap_or_default();
                // Voice detection already committed everything: our commit
                // found the buffer empty, which is an answer too.
                if commit.armed() && code == "input_audio_buffer_commit_empty" {
                    commit.answered = true;
                    return Ok(());
                }
                let message = event
                    .pointer("/error/message")
                    .and_then(Value::as_str)
                    .unwrap_or("unknown error");
                let retryable = !matches!(
                    event.pointer("/error/type").and_then(Value::as_str),
                    Some("invalid_request_error")
                );
                return Err(Some(ProviderError::new(
                    NAME,
                    format!("realtime error: {}", http::shorten(message)),
                    retryable,
                )));
            }
            _ => {}
        }
        Ok(())
    }

    async fn partial(&mut self) -> Result<(), Option<ProviderError>> {
        if !self.partials {
            return Ok(());
        }
        let text = self.pieces.joined();
        let end_ms = self.samples * 1000 / u64::from(STT_RATE);
        self.tx
            .send(SttEvent::Partial(Transcript {
                text,
                start_ms: 0,
                end_ms,
            }))
            .await
            .map_err(|_| None)
    }

    async fn finish(&mut self) -> Step {
        let end_ms = self.samples * 1000 / u64::from(STT_RATE);
        self.tx
            .send(SttEvent::Final(Transcript {
                text: self.pieces.joined(),
                start_ms: 0,
                end_ms,
            }))
            .await
            .map_err(|_| None)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Sign changes between samples well clear of zero, so that the
    /// filter's faint ringing before the tone starts does not count.
    fn crossings(samples: &[i16]) -> usize {
        let mut last = 0i16;
        let mut n = 0;
        for &s in samples.iter().filter(|s| s.unsigned_abs() > 1000) {
            if last != 0 && (s < 0) != (last < 0) {
                n += 1;
            }
            last = s;
        }
        n
    }

    #[test]
    fn upsampling_turns_any_frame_sizes_into_24k() {
        let mut up = Upsampler::new().unwrap();
        // One second of a 440 Hz tone in uneven frames.
        let tone: Vec<i16> = (0..16_000)
            .map(|i| {
                (8000.0 * (2.0 * std::f64::consts::PI * 440.0 * i as f64 / 16_000.0).sin()) as i16
            })
            .collect();
        let mut out = Vec::new();
        for chunk in tone[..15_900].chunks(317) {
            up.push(chunk).unwrap();
            while let Some(piece) = up.take(2400, false) {
                assert_eq!(piece.len(), 2400);
                out.extend(piece);
            }
        }
        up.push(&tone[15_900..]).unwrap();
        up.finish().unwrap();
        out.extend(up.take(2400, true).unwrap());
        out.extend(up.take(2400, true).unwrap_or_default());
        // 50 frames, plus the flushed tail.
        assert_eq!(out.len(), 51 * 480);
        let crossings = crossings(&out);
        assert!((870..=890).contains(&crossings), "{crossings}");
        assert!(up.take(2400, true).is_none());
    }

    #[test]
    fn pieces_join_in_commit_order() {
        let mut p = Pieces::default();
        p.committed("a");
        p.delta("a", "Hel");
        p.delta("a", "lo");
        p.committed("b");
        p.delta("b", "there");
        assert_eq!(p.joined(), "Hello there");
        assert!(!p.all_done());
        p.completed("b", "there.");
        p.completed("a", "Hello,");
        p.delta("a", "late");
        assert!(p.all_done());
        assert_eq!(p.joined(), "Hello, there.");
    }

    #[test]
    fn session_updates_of_both_protocols() {
        let ga = session_update(
            RealtimeProtocol::Ga,
            "gpt-4o-transcribe",
            Some("en"),
            None,
            None,
        );
        assert_eq!(ga["type"], "session.update");
        assert_eq!(ga["session"]["type"], "transcription");
        assert_eq!(
            ga["session"]["audio"]["input"]["format"],
            json!({"type": "audio/pcm", "rate": 24000})
        );
        assert_eq!(
            ga["session"]["audio"]["input"]["transcription"],
            json!({"model": "gpt-4o-transcribe", "language": "en"})
        );
        assert_eq!(
            ga["session"]["audio"]["input"]["turn_detection"],
            Value::Null
        );
        let beta = session_update(
            RealtimeProtocol::Beta,
            "m",
            None,
            Some("Hotline"),
            Some(400),
        );
        assert_eq!(beta["type"], "transcription_session.update");
        assert_eq!(beta["session"]["input_audio_format"], "pcm16");
        assert_eq!(
            beta["session"]["input_audio_transcription"],
            json!({"model": "m", "prompt": "Hotline"})
        );
        assert_eq!(
            beta["session"]["turn_detection"]["silence_duration_ms"],
            400
        );
    }
}
