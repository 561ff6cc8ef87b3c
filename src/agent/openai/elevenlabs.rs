//! [`ElevenLabsTts`]: ElevenLabs speech over its `stream-input`
//! WebSocket, as raw PCM at the call's rate.
//!
//! It lives beside the OpenAI providers because it shares their plumbing.
//! One socket per text segment: the segment goes in as one text message
//! and an end-of-stream, the audio comes back as base64 PCM chunks until
//! `isFinal`. A socket per segment keeps the mapping from audio to segment
//! exact (which the pipeline needs to know what the caller heard), and the
//! segment lookahead (shared with [`super::tts`]) opens the next segment's
//! socket while this one plays, so the handshake costs nothing after the
//! first.

use std::sync::Arc;
use std::time::Duration;

use base64::Engine as _;
use futures_util::{SinkExt, StreamExt};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use tokio::time::{Instant, timeout_at};
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::handshake::client::Request;
use tokio_tungstenite::tungstenite::http::HeaderValue;
use tokio_tungstenite::tungstenite::{self, Message as WsMessage};

use super::http::{self, RetryPolicy, timeout_failure};
use super::segments::{self, PcmDecoder, SegmentTx};
use super::ws;
use crate::agent::provider::{ProviderError, Tts, TtsOptions, TtsStream};

const NAME: &str = "elevenlabs";

/// Environment variable read when the config has no key.
pub const ELEVENLABS_KEY_ENV: &str = "ELEVENLABS_API_KEY";

/// PCM rates ElevenLabs produces (`output_format=pcm_<rate>`).
const RATES: [u32; 6] = [8_000, 16_000, 22_050, 24_000, 44_100, 48_000];

/// Settings of [`ElevenLabsTts`].
#[derive(Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ElevenLabsConfig {
    /// WebSocket API base, up to and including `/v1`.
    pub url: String,
    /// API key, sent as `xi-api-key`; `ELEVENLABS_API_KEY` when unset.
    /// Never serialized.
    #[serde(skip_serializing)]
    pub api_key: Option<String>,
    /// Voice id when the stream's options name none (the default is the
    /// premade voice "Rachel", which every account has).
    pub voice_id: String,
    /// Model (`eleven_flash_v2_5` is the fastest).
    pub model_id: String,
    /// PCM rate asked for: 8000, 16000, 22050, 24000, 44100 or 48000.
    /// 16 kHz suits telephony: less to send, and resampled to 8 kHz
    /// with the cheap half-band filter.
    pub sample_rate: u32,
    /// Voice stability, 0–1; the voice's own setting when unset.
    pub stability: Option<f32>,
    /// Similarity to the original voice, 0–1; the voice's own when unset.
    pub similarity_boost: Option<f32>,
    /// Speaking rate (0.7–1.2); the voice's own when unset.
    pub speed: Option<f32>,
    /// Segments whose sockets may open while an earlier one plays.
    pub lookahead: usize,
    /// Time allowed to open a socket.
    pub connect_timeout_ms: u64,
    /// Time allowed from a segment's text to its first audio.
    pub first_audio_timeout_ms: u64,
    /// Longest silence within a segment's audio.
    pub idle_timeout_ms: u64,
    /// Attempts after the first, on a refused (429, 5xx) or failed
    /// connection.
    pub max_retries: u32,
    /// Longest wait before a retry.
    pub max_retry_delay_ms: u64,
}

impl Default for ElevenLabsConfig {
    fn default() -> Self {
        ElevenLabsConfig {
            url: "wss://api.elevenlabs.io/v1".to_owned(),
            api_key: None,
            voice_id: "21m00Tcm4TlvDq8ikWAM".to_owned(),
            model_id: "eleven_flash_v2_5".to_owned(),
            sample_rate: 16_000,
            stability: None,
            similarity_boost: None,
            speed: None,
            lookahead: 1,
            connect_timeout_ms: 5_000,
            first_audio_timeout_ms: 10_000,
            idle_timeout_ms: 10_000,
            max_retries: 2,
            max_retry_delay_ms: 2_000,
        }
    }
}

impl std::fmt::Debug for ElevenLabsConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ElevenLabsConfig")
            .field("url", &self.url)
            .field("api_key", &self.api_key.as_ref().map(|_| "<redacted>"))
            .field("voice_id", &self.voice_id)
            .field("model_id", &self.model_id)
            .field("sample_rate", &self.sample_rate)
            .finish_non_exhaustive()
    }
}

struct Shared {
    config: ElevenLabsConfig,
    key: Option<String>,
}

/// Text-to-speech from ElevenLabs.
#[derive(Clone)]
pub struct ElevenLabsTts {
    shared: Arc<Shared>,
}

impl std::fmt::Debug for ElevenLabsTts {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ElevenLabsTts")
            .field("config", &self.shared.config)
            .finish()
    }
}

impl ElevenLabsTts {
    /// A TTS with these settings.
    pub fn new(config: ElevenLabsConfig) -> Result<Self, ProviderError> {
        if !RATES.contains(&config.sample_rate) {
            return Err(ProviderError::new(
                NAME,
                format!("sample_rate {} is not one of {RATES:?}", config.sample_rate),
                false,
            ));
        }
        if config.voice_id.trim().is_empty() || config.model_id.trim().is_empty() {
            return Err(ProviderError::new(
                NAME,
                "ElevenLabs needs a voice_id and a model_id",
                false,
            ));
        }
        let key = http::resolve_key(config.api_key.as_deref(), ELEVENLABS_KEY_ENV);
        let tts = ElevenLabsTts {
            shared: Arc::new(Shared { config, key }),
        };
        let voice = tts.shared.config.voice_id.clone();
        tts.shared.request(&voice)?;
        Ok(tts)
    }
}

impl Shared {
    fn request(&self, voice: &str) -> Result<Request, ProviderError> {
        let c = &self.config;
        let url = format!(
            "{}/text-to-speech/{}/stream-input?model_id={}&output_format=pcm_{}",
            c.url.trim().trim_end_matches('/'),
            voice.trim(),
            c.model_id.trim(),
            c.sample_rate
        );
        let mut request = url
            .into_client_request()
            .map_err(|e| ProviderError::new(NAME, format!("ElevenLabs URL: {e}"), false))?;
        if let Some(key) = &self.key {
            let value = HeaderValue::from_str(key).map_err(|_| {
                ProviderError::new(NAME, "the API key is not a valid header value", false)
            })?;
            request.headers_mut().insert("xi-api-key", value);
        }
        Ok(request)
    }

    /// The opening message: a single space, as the protocol wants, and
    /// the voice settings that are set.
    fn opening(&self) -> Value {
        let c = &self.config;
        let mut settings = serde_json::Map::new();
        for (k, v) in [
            ("stability", c.stability),
            ("similarity_boost", c.similarity_boost),
            ("speed", c.speed),
        ] {
            if let Some(v) = v {
                settings.insert(k.into(), json!(v));
            }
        }
        let mut m = json!({ "text": " " });
        if !settings.is_empty() {
            m["voice_settings"] = Value::Object(settings);
        }
        m
    }
}

impl Tts for ElevenLabsTts {
    fn start(&self, options: &TtsOptions) -> TtsStream {
        let voice = options
            .voice
            .clone()
            .filter(|v| !v.trim().is_empty())
            .unwrap_or_else(|| self.shared.config.voice_id.clone());
        let shared = self.shared.clone();
        let c = &self.shared.config;
        segments::start(c.sample_rate, c.lookahead, move |text, tx| {
            speak(shared.clone(), voice.clone(), text, tx)
        })
    }

    fn name(&self) -> &str {
        NAME
    }
}

/// One segment over one socket.
async fn speak(shared: Arc<Shared>, voice: String, text: String, tx: SegmentTx) {
    let result = tokio::select! {
        _ = tx.closed() => return,
        r = speak_inner(&shared, &voice, &text, &tx) => r,
    };
    if let Err(Some(e)) = result {
        let _ = tx.send(Err(e)).await;
    }
}

async fn speak_inner(
    shared: &Shared,
    voice: &str,
    text: &str,
    tx: &SegmentTx,
) -> Result<(), Option<ProviderError>> {
    let c = &shared.config;
    let request = shared.request(voice).map_err(Some)?;
    let timeout = Duration::from_millis(c.connect_timeout_ms);
    let policy = RetryPolicy {
        max_retries: c.max_retries,
        max_delay: Duration::from_millis(c.max_retry_delay_ms),
    };
    let deadline = Instant::now() + timeout * (c.max_retries + 1);
    let socket = ws::connect(NAME, &request, timeout, policy, deadline)
        .await
        .map_err(|f| Some(f.error))?;
    let (mut sink, mut stream) = socket.split();
    let broke = |e: tungstenite::Error| {
        Some(ProviderError::new(
            NAME,
            format!("connection broke: {e}"),
            true,
        ))
    };
    // The text ends in a space, as the protocol expects of every chunk;
    // the empty text then ends the input, which flushes it.
    for message in [
        shared.opening(),
        json!({ "text": format!("{} ", text.trim()) }),
        json!({ "text": "" }),
    ] {
        sink.send(WsMessage::text(message.to_string()))
            .await
            .map_err(broke)?;
    }
    let first_audio = Duration::from_millis(c.first_audio_timeout_ms);
    let idle = Duration::from_millis(c.idle_timeout_ms);
    let first_deadline = Instant::now() + first_audio;
    let mut decoder = PcmDecoder::default();
    let mut forwarded = false;
    loop {
        let until = if forwarded {
            Instant::now() + idle
        } else {
            first_deadline
        };
        let message = match timeout_at(until, stream.next()).await {
            Ok(m) => m,
            Err(_) if forwarded => {
                return Err(Some(
                    timeout_failure(NAME, "speech stream (no data)", idle).error,
                ));
            }
            Err(_) => {
                return Err(Some(
                    timeout_failure(NAME, "first audio", first_audio).error,
                ));
            }
        };
        let text = match message {
            Some(Ok(WsMessage::Text(t))) => t,
            Some(Ok(WsMessage::Close(frame))) => {
                return Err(Some(ProviderError::new(
                    NAME,
                    format!(
                        "the server closed the connection{}",
                        ws::close_reason(frame)
                    ),
                    true,
                )));
            }
            Some(Ok(_)) => continue,
            Some(Err(e)) => return Err(broke(e)),
            None => return Err(Some(ProviderError::new(NAME, "the connection ended", true))),
        };
        let event: Value = serde_json::from_str(text.as_str()).map_err(|e| {
            Some(ProviderError::new(
                NAME,
                format!("malformed message ({e})"),
                true,
            ))
        })?;
        if let Some(audio) = event.get("audio").and_then(Value::as_str) {
            let bytes = base64::engine::general_purpose::STANDARD
                .decode(audio)
                .map_err(|e| {
                    Some(ProviderError::new(
                        NAME,
                        format!("audio is not base64: {e}"),
                        true,
                    ))
                })?;
            let samples = decoder.push(&bytes);
            if !samples.is_empty() {
                forwarded = true;
                tx.send(Ok(samples)).await.map_err(|_| None)?;
            }
        }
        if event.get("isFinal").and_then(Value::as_bool) == Some(true) {
            let _ = sink.send(WsMessage::Close(None)).await;
            return Ok(());
        }
        let error = event.get("error").or_else(|| {
            event
                .get("message")
                .filter(|_| event.get("audio").is_none())
        });
        if let Some(error) = error.filter(|e| !e.is_null()) {
            let what = error
                .as_str()
                .map(str::to_owned)
                .unwrap_or_else(|| error.to_string());
            return Err(Some(ProviderError::new(
                NAME,
                format!("error: {}", http::shorten(&what)),
                true,
            )));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn settings_are_checked_and_the_url_built() {
        assert!(
            ElevenLabsTts::new(ElevenLabsConfig {
                sample_rate: 11_025,
                ..Default::default()
            })
            .is_err()
        );
        let tts = ElevenLabsTts::new(ElevenLabsConfig {
            api_key: Some("xi".into()),
            stability: Some(0.5),
            ..Default::default()
        })
        .unwrap();
        let r = tts.shared.request("voice1").unwrap();
        assert_eq!(
            r.uri().to_string(),
            "wss://api.elevenlabs.io/v1/text-to-speech/voice1/stream-input\
             ?model_id=eleven_flash_v2_5&output_format=pcm_16000"
        );
        assert_eq!(r.headers()["xi-api-key"], "xi");
        assert_eq!(
            tts.shared.opening(),
            json!({"text": " ", "voice_settings": {"stability": 0.5}})
        );
        assert!(!format!("{tts:?}").contains("\"xi\""));
    }
}
