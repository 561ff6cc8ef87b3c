//! [`DeepgramStt`]: Deepgram's streaming recognition over its `listen`
//! WebSocket.
//!
//! It lives beside the OpenAI providers because it shares their plumbing
//! (keys, retries, the WebSocket client). One connection per utterance:
//! the caller's 16 kHz PCM goes out as binary frames as it arrives (no
//! resampling: Deepgram takes the rate as a parameter), interim results
//! become partials, and when the utterance ends a `CloseStream` makes the
//! server flush its last results and close. The final text is the
//! utterance's final results, joined.

use std::sync::Arc;
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use tokio::sync::mpsc;
use tokio::time::{Instant, sleep_until};
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::handshake::client::Request;
use tokio_tungstenite::tungstenite::http::HeaderValue;
use tokio_tungstenite::tungstenite::{Bytes, Message as WsMessage};

use super::http::{self, RetryPolicy, timeout_failure};
use super::ws::{self, Ws};
use crate::agent::provider::{
    ProviderError, STREAM_CAPACITY, STT_RATE, Stt, SttEvent, SttOptions, SttStream, Transcript,
};

const NAME: &str = "deepgram";

/// Environment variable read when the config has no key.
pub const DEEPGRAM_KEY_ENV: &str = "DEEPGRAM_API_KEY";

/// Audio per binary frame when sending what was kept while connecting.
const FRAME_SAMPLES: usize = STT_RATE as usize / 10;

/// Settings of [`DeepgramStt`].
#[derive(Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DeepgramConfig {
    /// The `listen` endpoint (`wss://api.deepgram.com/v1/listen`, or a
    /// self-hosted deployment's).
    pub url: String,
    /// API key, sent as `Authorization: Token …`; `DEEPGRAM_API_KEY` when
    /// unset. Never serialized.
    #[serde(skip_serializing)]
    pub api_key: Option<String>,
    /// Model (`nova-3`, `nova-2-phonecall`, …).
    pub model: String,
    /// Language when the stream's options name none (`en`, `en-US`,
    /// `multi`); Deepgram's default when unset.
    pub language: Option<String>,
    /// Punctuation, capitals and numerals formatted.
    pub smart_format: bool,
    /// Longest utterance accepted; longer ones fail.
    pub max_utterance_ms: u64,
    /// Time allowed to open the connection.
    pub connect_timeout_ms: u64,
    /// Time allowed from the end of the utterance to its final text.
    pub response_timeout_ms: u64,
    /// Attempts after the first, on a refused (429, 5xx) or failed
    /// connection.
    pub max_retries: u32,
    /// Longest wait before a retry.
    pub max_retry_delay_ms: u64,
}

impl Default for DeepgramConfig {
    fn default() -> Self {
        DeepgramConfig {
            url: "wss://api.deepgram.com/v1/listen".to_owned(),
            api_key: None,
            model: "nova-3".to_owned(),
            language: None,
            smart_format: true,
            max_utterance_ms: 60_000,
            connect_timeout_ms: 5_000,
            response_timeout_ms: 10_000,
            max_retries: 2,
            max_retry_delay_ms: 2_000,
        }
    }
}

impl std::fmt::Debug for DeepgramConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DeepgramConfig")
            .field("url", &self.url)
            .field("api_key", &self.api_key.as_ref().map(|_| "<redacted>"))
            .field("model", &self.model)
            .field("language", &self.language)
            .finish_non_exhaustive()
    }
}

struct Shared {
    config: DeepgramConfig,
    key: Option<String>,
}

/// Streaming speech-to-text from Deepgram.
#[derive(Clone)]
pub struct DeepgramStt {
    shared: Arc<Shared>,
}

impl std::fmt::Debug for DeepgramStt {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DeepgramStt")
            .field("config", &self.shared.config)
            .finish()
    }
}

impl DeepgramStt {
    /// An STT with these settings.
    pub fn new(config: DeepgramConfig) -> Result<Self, ProviderError> {
        if config.model.trim().is_empty() {
            return Err(ProviderError::new(NAME, "Deepgram needs a model", false));
        }
        let key = http::resolve_key(config.api_key.as_deref(), DEEPGRAM_KEY_ENV);
        let stt = DeepgramStt {
            shared: Arc::new(Shared { config, key }),
        };
        // A bad URL is a configuration error: report it now, not per call.
        stt.request(&SttOptions::default())?;
        Ok(stt)
    }

    /// The handshake request: the URL with the stream's parameters, and
    /// the key.
    fn request(&self, options: &SttOptions) -> Result<Request, ProviderError> {
        let config = &self.shared.config;
        let mut query = vec![
            ("model", config.model.trim().to_owned()),
            ("encoding", "linear16".to_owned()),
            ("sample_rate", STT_RATE.to_string()),
            ("channels", "1".to_owned()),
            ("interim_results", options.partials.to_string()),
            ("punctuate", "true".to_owned()),
            ("smart_format", config.smart_format.to_string()),
        ];
        let language = options.language.as_deref().or(config.language.as_deref());
        if let Some(l) = language.map(str::trim).filter(|l| !l.is_empty()) {
            query.push(("language", l.to_owned()));
        }
        let query: Vec<String> = query
            .into_iter()
            .map(|(k, v)| format!("{k}={}", encode(&v)))
            .collect();
        let separator = if config.url.contains('?') { '&' } else { '?' };
        let url = format!("{}{separator}{}", config.url.trim(), query.join("&"));
        let mut request = url
            .into_client_request()
            .map_err(|e| ProviderError::new(NAME, format!("Deepgram URL: {e}"), false))?;
        if let Some(key) = &self.shared.key {
            let value = HeaderValue::from_str(&format!("Token {key}")).map_err(|_| {
                ProviderError::new(NAME, "the API key is not a valid header value", false)
            })?;
            request.headers_mut().insert("authorization", value);
        }
        Ok(request)
    }
}

/// Percent-encodes a query value (model and language names are plain,
/// but a config may hold anything).
fn encode(v: &str) -> String {
    v.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

impl Stt for DeepgramStt {
    fn start(&self, options: &SttOptions) -> SttStream {
        let (audio_tx, audio_rx) = mpsc::channel(STREAM_CAPACITY);
        let (tx, rx) = mpsc::channel(STREAM_CAPACITY);
        let request = self.request(options);
        let shared = self.shared.clone();
        let partials = options.partials;
        tokio::spawn(async move {
            match request {
                Ok(request) => run(shared, request, partials, audio_rx, tx).await,
                Err(e) => {
                    let _ = tx.send(SttEvent::Error(e)).await;
                }
            }
        });
        SttStream {
            audio: audio_tx,
            events: rx,
        }
    }

    fn name(&self) -> &str {
        NAME
    }
}

async fn run(
    shared: Arc<Shared>,
    request: Request,
    partials: bool,
    mut audio_rx: mpsc::Receiver<Vec<i16>>,
    tx: mpsc::Sender<SttEvent>,
) {
    let config = &shared.config;
    let max = (config.max_utterance_ms.saturating_mul(u64::from(STT_RATE)) / 1000) as usize;
    let too_long = || {
        ProviderError::new(
            NAME,
            format!(
                "utterance longer than max_utterance_ms ({} ms)",
                config.max_utterance_ms
            ),
            false,
        )
    };
    let timeout = Duration::from_millis(config.connect_timeout_ms);
    let policy = RetryPolicy {
        max_retries: config.max_retries,
        max_delay: Duration::from_millis(config.max_retry_delay_ms),
    };
    let deadline = Instant::now() + timeout * (config.max_retries + 1);
    let connect = ws::connect(NAME, &request, timeout, policy, deadline);
    let Some(opened) = ws::open_while_buffering(connect, &mut audio_rx, &tx, max, too_long).await
    else {
        return;
    };
    let mut results = Results::default();
    let outcome = drive(
        &shared,
        opened.ws,
        opened.pending,
        opened.audio_done,
        audio_rx,
        &tx,
        partials,
        &mut results,
        max,
    )
    .await;
    match outcome {
        Ok(samples) => {
            let _ = tx
                .send(SttEvent::Final(Transcript {
                    text: results.joined(),
                    start_ms: 0,
                    end_ms: samples * 1000 / u64::from(STT_RATE),
                }))
                .await;
        }
        Err(Some(e)) => {
            let _ = tx.send(SttEvent::Error(e)).await;
        }
        Err(None) => {}
    }
}

/// The utterance's results so far.
#[derive(Debug, Default)]
struct Results {
    finals: Vec<String>,
    interim: String,
}

impl Results {
    fn joined(&self) -> String {
        self.finals
            .iter()
            .map(String::as_str)
            .chain(std::iter::once(self.interim.as_str()))
            .map(str::trim)
            .filter(|t| !t.is_empty())
            .collect::<Vec<_>>()
            .join(" ")
    }

    /// Takes in one `Results` message; true when the text changed.
    fn update(&mut self, event: &Value) -> bool {
        let text = event
            .pointer("/channel/alternatives/0/transcript")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .trim()
            .to_owned();
        let before = self.joined();
        if event
            .get("is_final")
            .and_then(Value::as_bool)
            .unwrap_or(false)
        {
            self.interim.clear();
            if !text.is_empty() {
                self.finals.push(text);
            }
        } else {
            self.interim = text;
        }
        self.joined() != before
    }
}

fn pcm_frame(samples: &[i16]) -> WsMessage {
    let bytes: Vec<u8> = samples.iter().flat_map(|s| s.to_le_bytes()).collect();
    WsMessage::Binary(Bytes::from(bytes))
}

/// Streams the utterance and reads results until the server closes after
/// `CloseStream`. `Ok` holds the samples sent; `Err(None)`: cancelled.
#[allow(clippy::too_many_arguments)]
async fn drive(
    shared: &Shared,
    ws: Ws,
    pending: Vec<i16>,
    mut audio_done: bool,
    mut audio_rx: mpsc::Receiver<Vec<i16>>,
    tx: &mpsc::Sender<SttEvent>,
    partials: bool,
    results: &mut Results,
    max: usize,
) -> Result<u64, Option<ProviderError>> {
    let broke = |e: tokio_tungstenite::tungstenite::Error| {
        Some(ProviderError::new(
            NAME,
            format!("connection broke: {e}"),
            true,
        ))
    };
    let (mut sink, mut stream) = ws.split();
    for chunk in pending.chunks(FRAME_SAMPLES) {
        sink.send(pcm_frame(chunk)).await.map_err(broke)?;
    }
    let mut samples = pending.len() as u64;
    let response_timeout = Duration::from_millis(shared.config.response_timeout_ms);
    let mut closing_at: Option<Instant> = None;
    loop {
        if audio_done && closing_at.is_none() {
            let close = r#"{"type":"CloseStream"}"#;
            sink.send(WsMessage::text(close)).await.map_err(broke)?;
            closing_at = Some(Instant::now());
        }
        let deadline = closing_at.map(|t| t + response_timeout);
        tokio::select! {
            _ = tx.closed() => {
                let _ = sink.send(WsMessage::Close(None)).await;
                return Err(None);
            }
            _ = sleep_until(deadline.unwrap_or_else(Instant::now)), if deadline.is_some() => {
                let _ = sink.send(WsMessage::Close(None)).await;
                return Err(Some(timeout_failure(NAME, "final transcript", response_timeout).error));
            }
            frame = audio_rx.recv(), if !audio_done => match frame {
                Some(f) => {
                    samples += f.len() as u64;
                    if samples > max as u64 {
                        return Err(Some(ProviderError::new(
                            NAME,
                            format!("utterance longer than max_utterance_ms ({} ms)", shared.config.max_utterance_ms),
                            false,
                        )));
                    }
                    if !f.is_empty() {
                        sink.send(pcm_frame(&f)).await.map_err(broke)?;
                    }
                }
                None => audio_done = true,
            },
            message = stream.next() => match message {
                Some(Ok(WsMessage::Text(text))) => {
                    let event: Value = serde_json::from_str(text.as_str()).map_err(|e| {
                        Some(ProviderError::new(NAME, format!("malformed message ({e})"), true))
                    })?;
                    let kind = event.get("type").and_then(Value::as_str).unwrap_or_default();
                    if kind == "Results" && results.update(&event) && partials {
                        let partial = SttEvent::Partial(Transcript {
                            text: results.joined(),
                            start_ms: 0,
                            end_ms: samples * 1000 / u64::from(STT_RATE),
                        });
                        tx.send(partial).await.map_err(|_| None)?;
                    } else if kind == "Error" {
                        let what = ["description", "message", "err_msg"]
                            .iter()
                            .find_map(|k| event.get(*k).and_then(Value::as_str))
                            .unwrap_or("unknown error");
                        return Err(Some(ProviderError::new(
                            NAME,
                            format!("error: {}", http::shorten(what)),
                            true,
                        )));
                    }
                }
                // After CloseStream the server closes once the last results
                // are out: that is the end of the utterance.
                Some(Ok(WsMessage::Close(_))) | None if closing_at.is_some() => return Ok(samples),
                Some(Ok(WsMessage::Close(frame))) => {
                    return Err(Some(ProviderError::new(
                        NAME,
                        format!("the server closed the connection{}", ws::close_reason(frame)),
                        true,
                    )));
                }
                Some(Ok(_)) => {}
                Some(Err(e)) => return Err(broke(e)),
                None => {
                    return Err(Some(ProviderError::new(NAME, "the connection ended", true)));
                }
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn finals_accumulate_and_interims_replace_each_other() {
        let mut r = Results::default();
        let result = |t: &str, is_final: bool| {
            json!({"type": "Results", "is_final": is_final,
                   "channel": {"alternatives": [{"transcript": t, "confidence": 0.9}]}})
        };
        assert!(r.update(&result("hel", false)));
        assert!(r.update(&result("hello wor", false)));
        assert_eq!(r.joined(), "hello wor");
        assert!(r.update(&result("Hello world.", true)));
        assert!(!r.update(&result("", false)));
        assert!(r.update(&result("how", false)));
        assert_eq!(r.joined(), "Hello world. how");
        assert!(r.update(&result("", true)));
        assert_eq!(r.joined(), "Hello world.");
    }

    #[test]
    fn the_url_carries_the_stream_parameters() {
        let stt = DeepgramStt::new(DeepgramConfig {
            url: "ws://127.0.0.1:1/v1/listen".into(),
            api_key: Some("dg".into()),
            language: Some("en".into()),
            ..Default::default()
        })
        .unwrap();
        let r = stt
            .request(&SttOptions {
                language: Some("pt-BR".into()),
                partials: true,
            })
            .unwrap();
        assert_eq!(
            r.uri().to_string(),
            "ws://127.0.0.1:1/v1/listen?model=nova-3&encoding=linear16&sample_rate=16000\
             &channels=1&interim_results=true&punctuate=true&smart_format=true&language=pt-BR"
        );
        assert_eq!(r.headers()["authorization"], "Token dg");
        assert_eq!(encode("a b/é"), "a%20b%2F%C3%A9");
        assert!(
            DeepgramStt::new(DeepgramConfig {
                url: "not a url".into(),
                ..Default::default()
            })
            .is_err()
        );
    }
}
