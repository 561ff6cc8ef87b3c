//! [`OpenAiStt`]: speech-to-text over OpenAI's transcription APIs, in one
//! of two ways.
//!
//! * `http` (the default): the utterance is collected, and when it ends it
//!   goes as one WAV file to `POST {base_url}/audio/transcriptions`
//!   (multipart). Simple, and served by OpenAI and by self-hosted
//!   Whisper servers alike; no partials.
//! * `realtime`: the audio streams over the realtime transcription
//!   WebSocket while the caller speaks, so the text is ready sooner after
//!   the utterance ends, and partials arrive on the way.

use std::sync::Arc;
use std::time::Duration;

use hotline_media::wav::{WavSpec, encode_wav};
use serde::{Deserialize, Serialize};
use tokio::sync::mpsc;
use tokio::time::{Instant, timeout_at};

use super::http::{
    self, Failure, OPENAI_BASE_URL, RetryPolicy, timeout_failure, transport_failure,
};
use super::tts::read_error;
use crate::agent::provider::{
    ProviderError, STREAM_CAPACITY, STT_RATE, Stt, SttEvent, SttOptions, SttStream, Transcript,
};

pub(crate) const NAME: &str = "openai";

/// Shortest audio sent for transcription: OpenAI refuses less than
/// 100 ms, and there are no words in it anyway.
const MIN_SAMPLES: usize = STT_RATE as usize / 10;

/// How the audio reaches the service.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SttTransport {
    /// One `/audio/transcriptions` request per utterance.
    #[default]
    Http,
    /// The realtime transcription WebSocket, with partials.
    Realtime,
}

/// Which version of the realtime protocol the server speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RealtimeProtocol {
    /// The generally available API: `session.update` with a session of
    /// type `transcription`.
    #[default]
    Ga,
    /// The beta API (`OpenAI-Beta: realtime=v1`):
    /// `transcription_session.update`.
    Beta,
}

/// Settings of [`OpenAiStt`].
#[derive(Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct OpenAiSttConfig {
    /// API base, up to and including `/v1`.
    pub base_url: String,
    /// API key; `OPENAI_API_KEY` when unset. Never serialized.
    #[serde(skip_serializing)]
    pub api_key: Option<String>,
    /// Transcription model (`gpt-4o-mini-transcribe`, `gpt-4o-transcribe`,
    /// `whisper-1`, or a self-hosted server's name).
    pub model: String,
    /// Language when the stream's options name none (ISO 639-1, `en`);
    /// detected by the model when unset.
    pub language: Option<String>,
    /// Words to expect (names, jargon), passed to the model as a prompt.
    pub prompt: Option<String>,
    /// `http` or `realtime`.
    pub transport: SttTransport,
    /// WebSocket URL of the realtime API; derived from `base_url`
    /// (`wss://…/v1/realtime?intent=transcription`) when unset.
    pub realtime_url: Option<String>,
    /// `ga` or `beta`, for the realtime transport.
    pub realtime_protocol: RealtimeProtocol,
    /// Realtime transport with partials asked for: the server's voice
    /// detection cuts the utterance at pauses this long, and each piece is
    /// transcribed while the caller goes on. Unset: one piece, transcribed
    /// when the utterance ends.
    pub partial_pause_ms: Option<u32>,
    /// Longest utterance accepted; longer ones fail (a bound on memory).
    pub max_utterance_ms: u64,
    /// Time allowed to open the connection.
    pub connect_timeout_ms: u64,
    /// Time allowed from the end of the utterance to its final text,
    /// retries included.
    pub response_timeout_ms: u64,
    /// Attempts after the first, on a 429, a 5xx or a connection failure.
    pub max_retries: u32,
    /// Longest wait before a retry.
    pub max_retry_delay_ms: u64,
}

impl Default for OpenAiSttConfig {
    fn default() -> Self {
        OpenAiSttConfig {
            base_url: OPENAI_BASE_URL.to_owned(),
            api_key: None,
            model: "gpt-4o-mini-transcribe".to_owned(),
            language: None,
            prompt: None,
            transport: SttTransport::Http,
            realtime_url: None,
            realtime_protocol: RealtimeProtocol::Ga,
            partial_pause_ms: Some(400),
            max_utterance_ms: 60_000,
            connect_timeout_ms: 5_000,
            response_timeout_ms: 10_000,
            max_retries: 2,
            max_retry_delay_ms: 2_000,
        }
    }
}

impl std::fmt::Debug for OpenAiSttConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OpenAiSttConfig")
            .field("base_url", &self.base_url)
            .field("api_key", &self.api_key.as_ref().map(|_| "<redacted>"))
            .field("model", &self.model)
            .field("language", &self.language)
            .field("transport", &self.transport)
            .field("realtime_url", &self.realtime_url)
            .field("realtime_protocol", &self.realtime_protocol)
            .finish_non_exhaustive()
    }
}

pub(crate) struct Shared {
    pub config: OpenAiSttConfig,
    pub key: Option<String>,
    pub http: reqwest::Client,
    pub transcriptions_url: String,
    pub realtime_url: String,
}

impl Shared {
    pub fn policy(&self) -> RetryPolicy {
        RetryPolicy {
            max_retries: self.config.max_retries,
            max_delay: Duration::from_millis(self.config.max_retry_delay_ms),
        }
    }

    /// The language to ask for, as the two-letter code OpenAI expects
    /// (`en-US` → `en`).
    pub fn language(&self, options: &SttOptions) -> Option<String> {
        options
            .language
            .as_deref()
            .or(self.config.language.as_deref())
            .map(|l| {
                l.split(['-', '_'])
                    .next()
                    .unwrap_or(l)
                    .trim()
                    .to_ascii_lowercase()
            })
            .filter(|l| !l.is_empty())
    }

    pub fn max_samples(&self) -> usize {
        (self
            .config
            .max_utterance_ms
            .saturating_mul(u64::from(STT_RATE))
            / 1000) as usize
    }

    pub fn too_long(&self) -> ProviderError {
        ProviderError::new(
            NAME,
            format!(
                "utterance longer than max_utterance_ms ({} ms)",
                self.config.max_utterance_ms
            ),
            false,
        )
    }
}

/// Speech-to-text over OpenAI's transcription APIs.
#[derive(Clone)]
pub struct OpenAiStt {
    shared: Arc<Shared>,
}

impl std::fmt::Debug for OpenAiStt {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OpenAiStt")
            .field("config", &self.shared.config)
            .finish()
    }
}

/// `wss://host/v1/realtime?intent=transcription` from `https://host/v1`.
fn derive_realtime_url(base: &str) -> String {
    let ws = if let Some(rest) = base.strip_prefix("https://") {
        format!("wss://{rest}")
    } else if let Some(rest) = base.strip_prefix("http://") {
        format!("ws://{rest}")
    } else {
        base.to_owned()
    };
    format!("{ws}/realtime?intent=transcription")
}

impl OpenAiStt {
    /// An STT with these settings.
    pub fn new(config: OpenAiSttConfig) -> Result<Self, ProviderError> {
        if config.model.trim().is_empty() {
            return Err(ProviderError::new(NAME, "STT needs a model", false));
        }
        let base = http::normalize_base(&config.base_url);
        let realtime_url = match config.realtime_url.as_deref().map(str::trim) {
            Some(u) if !u.is_empty() => {
                if u.contains("intent=") {
                    u.to_owned()
                } else if u.contains('?') {
                    format!("{u}&intent=transcription")
                } else {
                    format!("{u}?intent=transcription")
                }
            }
            _ => derive_realtime_url(&base),
        };
        let http = http::http_client(NAME, Duration::from_millis(config.connect_timeout_ms))?;
        Ok(OpenAiStt {
            shared: Arc::new(Shared {
                key: http::resolve_api_key(config.api_key.as_deref()),
                transcriptions_url: format!("{base}/audio/transcriptions"),
                realtime_url,
                config,
                http,
            }),
        })
    }
}

impl Stt for OpenAiStt {
    fn start(&self, options: &SttOptions) -> SttStream {
        let (audio_tx, audio_rx) = mpsc::channel(STREAM_CAPACITY);
        let (tx, rx) = mpsc::channel(STREAM_CAPACITY);
        let shared = self.shared.clone();
        match shared.config.transport {
            SttTransport::Http => {
                tokio::spawn(transcribe_utterance(shared, options.clone(), audio_rx, tx));
            }
            SttTransport::Realtime => {
                tokio::spawn(super::realtime_stt::run(
                    shared,
                    options.clone(),
                    audio_rx,
                    tx,
                ));
            }
        }
        SttStream {
            audio: audio_tx,
            events: rx,
        }
    }

    fn name(&self) -> &str {
        NAME
    }
}

/// The HTTP transport: collect, then one request.
async fn transcribe_utterance(
    shared: Arc<Shared>,
    options: SttOptions,
    mut audio_rx: mpsc::Receiver<Vec<i16>>,
    tx: mpsc::Sender<SttEvent>,
) {
    let max = shared.max_samples();
    let mut samples: Vec<i16> = Vec::new();
    loop {
        let frame = tokio::select! {
            _ = tx.closed() => return,
            frame = audio_rx.recv() => frame,
        };
        match frame {
            Some(f) if samples.len() + f.len() > max => {
                let _ = tx.send(SttEvent::Error(shared.too_long())).await;
                return;
            }
            Some(f) => samples.extend_from_slice(&f),
            None => break,
        }
    }
    let end_ms = samples.len() as u64 * 1000 / u64::from(STT_RATE);
    let text = if samples.len() < MIN_SAMPLES {
        String::new()
    } else {
        let result = tokio::select! {
            _ = tx.closed() => return,
            r = request_with_retries(&shared, &options, &samples) => r,
        };
        match result {
            Ok(text) => text,
            Err(e) => {
                let _ = tx.send(SttEvent::Error(e)).await;
                return;
            }
        }
    };
    let _ = tx
        .send(SttEvent::Final(Transcript {
            text,
            start_ms: 0,
            end_ms,
        }))
        .await;
}

async fn request_with_retries(
    shared: &Shared,
    options: &SttOptions,
    samples: &[i16],
) -> Result<String, ProviderError> {
    let wav = encode_wav(WavSpec::mono(STT_RATE), samples)
        .map_err(|e| ProviderError::new(NAME, format!("WAV encoding: {e}"), false))?;
    let total = Duration::from_millis(shared.config.response_timeout_ms);
    let deadline = Instant::now() + total;
    let policy = shared.policy();
    let mut retries = 0;
    loop {
        let failure =
            match timeout_at(deadline, request_once(shared, options, &wav, deadline)).await {
                Ok(Ok(text)) => return Ok(text),
                Ok(Err(f)) => f,
                Err(_) => timeout_failure(NAME, "transcription", total),
            };
        match policy.delay(&failure, retries, deadline) {
            Some(wait) => {
                tracing::debug!(provider = NAME, error = %failure.error, "retrying transcription");
                tokio::time::sleep(wait).await;
                retries += 1;
            }
            None => return Err(failure.error),
        }
    }
}

#[derive(Deserialize)]
struct TranscriptionJson {
    text: String,
}

async fn request_once(
    shared: &Shared,
    options: &SttOptions,
    wav: &[u8],
    deadline: Instant,
) -> Result<String, Failure> {
    let file = reqwest::multipart::Part::bytes(wav.to_vec())
        .file_name("utterance.wav")
        .mime_str("audio/wav")
        .map_err(|e| Failure::fatal(ProviderError::new(NAME, e.to_string(), false)))?;
    let mut form = reqwest::multipart::Form::new()
        .part("file", file)
        .text("model", shared.config.model.clone())
        .text("response_format", "json");
    if let Some(language) = shared.language(options) {
        form = form.text("language", language);
    }
    if let Some(prompt) = shared
        .config
        .prompt
        .as_ref()
        .filter(|p| !p.trim().is_empty())
    {
        form = form.text("prompt", prompt.clone());
    }
    let mut request = shared.http.post(&shared.transcriptions_url).multipart(form);
    if let Some(key) = &shared.key {
        request = request.bearer_auth(key);
    }
    let response = request
        .send()
        .await
        .map_err(|e| transport_failure(NAME, "transcription", &e))?;
    if !response.status().is_success() {
        return Err(read_error(response, deadline).await);
    }
    let body = response
        .bytes()
        .await
        .map_err(|e| transport_failure(NAME, "transcription", &e))?;
    let parsed: TranscriptionJson = serde_json::from_slice(&body).map_err(|e| {
        Failure::fatal(ProviderError::new(
            NAME,
            format!(
                "malformed transcription ({e}): {}",
                http::shorten(&String::from_utf8_lossy(&body))
            ),
            true,
        ))
    })?;
    Ok(parsed.text.trim().to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn realtime_url_follows_the_base() {
        assert_eq!(
            derive_realtime_url("https://api.openai.com/v1"),
            "wss://api.openai.com/v1/realtime?intent=transcription"
        );
        assert_eq!(
            derive_realtime_url("http://127.0.0.1:9/v1"),
            "ws://127.0.0.1:9/v1/realtime?intent=transcription"
        );
        let stt = OpenAiStt::new(OpenAiSttConfig {
            realtime_url: Some("wss://proxy/realtime?x=1".into()),
            ..Default::default()
        })
        .unwrap();
        assert_eq!(
            stt.shared.realtime_url,
            "wss://proxy/realtime?x=1&intent=transcription"
        );
    }

    #[test]
    fn language_tags_become_iso_639_1() {
        let stt = OpenAiStt::new(OpenAiSttConfig {
            language: Some("fr".into()),
            ..Default::default()
        })
        .unwrap();
        let with = |l: Option<&str>| SttOptions {
            language: l.map(str::to_owned),
            partials: false,
        };
        assert_eq!(
            stt.shared.language(&with(Some("en-US"))).as_deref(),
            Some("en")
        );
        assert_eq!(stt.shared.language(&with(None)).as_deref(), Some("fr"));
        assert_eq!(stt.shared.max_samples(), 60 * 16_000);
    }
}
