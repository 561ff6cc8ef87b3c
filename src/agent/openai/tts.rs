//! [`OpenAiTts`]: speech from `POST {base_url}/audio/speech` as raw PCM
//! (`response_format: "pcm"`, 16-bit little-endian mono, 24 kHz from
//! OpenAI), read as it streams in.
//!
//! One request per text segment. Audio goes out in segment order, each
//! chunk as soon as it arrives; meanwhile the next `lookahead` segments'
//! requests are already running, each into a small bounded buffer, so the
//! next sentence is ready when this one ends without fetching the whole
//! reply ahead (a barge-in would waste it).
//!
//! The endpoint takes no language: the model speaks the text's own, so
//! [`TtsOptions::language`] is not used.

use std::sync::Arc;
use std::time::Duration;

use futures_util::StreamExt;
use serde::{Deserialize, Serialize};
use serde_json::json;
use tokio::time::{Instant, timeout_at};

use super::http::{
    self, Failure, OPENAI_BASE_URL, RetryPolicy, error_code, error_message, status_failure,
    timeout_failure, transport_failure,
};
use super::segments::{self, PcmDecoder, SegmentTx};
use crate::agent::provider::{ProviderError, Tts, TtsOptions, TtsStream};

const NAME: &str = "openai";

/// Longest error body read.
const MAX_ERROR_BODY: usize = 16 * 1024;

/// Settings of [`OpenAiTts`].
#[derive(Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct OpenAiTtsConfig {
    /// API base, up to and including `/v1` (any server with OpenAI's
    /// speech endpoint and raw PCM output).
    pub base_url: String,
    /// API key; `OPENAI_API_KEY` when unset. Never serialized.
    #[serde(skip_serializing)]
    pub api_key: Option<String>,
    /// Model (`gpt-4o-mini-tts`, `tts-1`).
    pub model: String,
    /// Voice when the stream's options name none (`alloy`, `coral`, …).
    pub voice: String,
    /// How to speak (tone, pace), for models that take instructions.
    pub instructions: Option<String>,
    /// Speaking rate, 0.25–4.0; the server's default when unset.
    pub speed: Option<f32>,
    /// Rate of the PCM the server returns: 24 kHz for OpenAI.
    pub sample_rate: u32,
    /// Segments whose requests may run while an earlier one plays.
    pub lookahead: usize,
    /// Time allowed to open the connection.
    pub connect_timeout_ms: u64,
    /// Time allowed from a segment's request to its first audio.
    pub first_audio_timeout_ms: u64,
    /// Longest silence within a segment's audio stream.
    pub idle_timeout_ms: u64,
    /// Attempts after the first, on a 429, a 5xx or a connection failure,
    /// before the segment's first audio.
    pub max_retries: u32,
    /// Longest wait before a retry.
    pub max_retry_delay_ms: u64,
}

impl Default for OpenAiTtsConfig {
    fn default() -> Self {
        OpenAiTtsConfig {
            base_url: OPENAI_BASE_URL.to_owned(),
            api_key: None,
            model: "gpt-4o-mini-tts".to_owned(),
            voice: "alloy".to_owned(),
            instructions: None,
            speed: None,
            sample_rate: 24_000,
            lookahead: 1,
            connect_timeout_ms: 5_000,
            first_audio_timeout_ms: 10_000,
            idle_timeout_ms: 10_000,
            max_retries: 2,
            max_retry_delay_ms: 2_000,
        }
    }
}

impl std::fmt::Debug for OpenAiTtsConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OpenAiTtsConfig")
            .field("base_url", &self.base_url)
            .field("api_key", &self.api_key.as_ref().map(|_| "<redacted>"))
            .field("model", &self.model)
            .field("voice", &self.voice)
            .field("instructions", &self.instructions)
            .field("speed", &self.speed)
            .field("sample_rate", &self.sample_rate)
            .field("lookahead", &self.lookahead)
            .finish_non_exhaustive()
    }
}

struct Shared {
    config: OpenAiTtsConfig,
    url: String,
    key: Option<String>,
    http: reqwest::Client,
}

/// Text-to-speech over OpenAI's speech endpoint.
#[derive(Clone)]
pub struct OpenAiTts {
    shared: Arc<Shared>,
}

impl std::fmt::Debug for OpenAiTts {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OpenAiTts")
            .field("config", &self.shared.config)
            .finish()
    }
}

impl OpenAiTts {
    /// A TTS with these settings.
    pub fn new(config: OpenAiTtsConfig) -> Result<Self, ProviderError> {
        if config.model.trim().is_empty() || config.voice.trim().is_empty() {
            return Err(ProviderError::new(
                NAME,
                "TTS needs a model and a voice",
                false,
            ));
        }
        if !(8_000..=48_000).contains(&config.sample_rate) {
            return Err(ProviderError::new(
                NAME,
                format!("unsupported TTS sample_rate {}", config.sample_rate),
                false,
            ));
        }
        let http = http::http_client(NAME, Duration::from_millis(config.connect_timeout_ms))?;
        Ok(OpenAiTts {
            shared: Arc::new(Shared {
                url: format!("{}/audio/speech", http::normalize_base(&config.base_url)),
                key: http::resolve_api_key(config.api_key.as_deref()),
                config,
                http,
            }),
        })
    }
}

impl Tts for OpenAiTts {
    fn start(&self, options: &TtsOptions) -> TtsStream {
        let voice = options
            .voice
            .clone()
            .filter(|v| !v.trim().is_empty())
            .unwrap_or_else(|| self.shared.config.voice.clone());
        let shared = self.shared.clone();
        let config = &self.shared.config;
        segments::start(config.sample_rate, config.lookahead, move |text, tx| {
            fetch(shared.clone(), text, voice.clone(), tx)
        })
    }

    fn name(&self) -> &str {
        NAME
    }
}

/// One segment: request, retries before the first audio, then the stream.
async fn fetch(shared: Arc<Shared>, text: String, voice: String, tx: SegmentTx) {
    let config = &shared.config;
    let policy = RetryPolicy {
        max_retries: config.max_retries,
        max_delay: Duration::from_millis(config.max_retry_delay_ms),
    };
    let first_audio = Duration::from_millis(config.first_audio_timeout_ms);
    let mut body = json!({
        "model": config.model,
        "input": text,
        "voice": voice,
        "response_format": "pcm",
    });
    if let Some(i) = config
        .instructions
        .as_ref()
        .filter(|i| !i.trim().is_empty())
    {
        body["instructions"] = json!(i);
    }
    if let Some(s) = config.speed {
        body["speed"] = json!(s);
    }
    let mut retries = 0;
    // Retries share the first attempt's deadline for audio to start.
    let deadline = Instant::now() + first_audio * (config.max_retries + 1);
    loop {
        let failure = match stream_once(&shared, &body, &tx).await {
            Ok(()) | Err(None) => return,
            Err(Some((failure, true))) => {
                let _ = tx.send(Err(failure.error)).await;
                return;
            }
            Err(Some((failure, false))) => failure,
        };
        match policy.delay(&failure, retries, deadline) {
            Some(wait) => {
                tracing::debug!(provider = NAME, error = %failure.error, "retrying speech request");
                tokio::select! {
                    _ = tokio::time::sleep(wait) => {}
                    _ = tx.closed() => return,
                }
                retries += 1;
            }
            None => {
                let _ = tx.send(Err(failure.error)).await;
                return;
            }
        }
    }
}

/// `Err(None)`: cancelled. `Err(Some((failure, forwarded)))`: failed,
/// after audio went out or not.
async fn stream_once(
    shared: &Shared,
    body: &serde_json::Value,
    tx: &SegmentTx,
) -> Result<(), Option<(Failure, bool)>> {
    let config = &shared.config;
    let first_audio = Duration::from_millis(config.first_audio_timeout_ms);
    let idle = Duration::from_millis(config.idle_timeout_ms);
    let first_deadline = Instant::now() + first_audio;
    let mut request = shared.http.post(&shared.url).json(body);
    if let Some(key) = &shared.key {
        request = request.bearer_auth(key);
    }
    let response = tokio::select! {
        _ = tx.closed() => return Err(None),
        r = timeout_at(first_deadline, request.send()) => match r {
            Ok(Ok(r)) => r,
            Ok(Err(e)) => return Err(Some((transport_failure(NAME, "speech", &e), false))),
            Err(_) => return Err(Some((timeout_failure(NAME, "first audio", first_audio), false))),
        },
    };
    if !response.status().is_success() {
        let failure = read_error(response, first_deadline).await;
        return Err(Some((failure, false)));
    }
    let mut bytes = response.bytes_stream();
    let mut decoder = PcmDecoder::default();
    let mut forwarded = false;
    loop {
        let until = if forwarded {
            Instant::now() + idle
        } else {
            first_deadline
        };
        let next = tokio::select! {
            _ = tx.closed() => return Err(None),
            next = timeout_at(until, bytes.next()) => next,
        };
        match next {
            Ok(Some(Ok(chunk))) => {
                let samples = decoder.push(&chunk);
                if samples.is_empty() {
                    continue;
                }
                forwarded = true;
                if tx.send(Ok(samples)).await.is_err() {
                    return Err(None);
                }
            }
            Ok(Some(Err(e))) => {
                return Err(Some((transport_failure(NAME, "speech", &e), forwarded)));
            }
            Ok(None) => break,
            Err(_) if forwarded => {
                return Err(Some((
                    timeout_failure(NAME, "speech stream (no data)", idle),
                    true,
                )));
            }
            Err(_) => {
                return Err(Some((
                    timeout_failure(NAME, "first audio", first_audio),
                    false,
                )));
            }
        }
    }
    if !forwarded {
        let e = ProviderError::new(NAME, "speech: the server returned no audio", true);
        return Err(Some((Failure::fatal(e), false)));
    }
    if decoder.has_carry() {
        tracing::debug!(
            provider = NAME,
            "speech ended mid-sample; last byte dropped"
        );
    }
    Ok(())
}

/// The failure an error response describes, reading at most
/// [`MAX_ERROR_BODY`] of it.
pub(crate) async fn read_error(response: reqwest::Response, deadline: Instant) -> Failure {
    let status = response.status().as_u16();
    let retry_after = http::retry_after(response.headers());
    let mut body = Vec::new();
    let mut stream = response.bytes_stream();
    while body.len() < MAX_ERROR_BODY {
        match timeout_at(deadline, stream.next()).await {
            Ok(Some(Ok(chunk))) => body.extend_from_slice(&chunk),
            _ => break,
        }
    }
    body.truncate(MAX_ERROR_BODY);
    let code = error_code(&body);
    status_failure(
        NAME,
        status,
        &error_message(&body),
        code.as_deref(),
        retry_after,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn config_rejects_what_cannot_work() {
        let bad_rate = OpenAiTtsConfig {
            sample_rate: 5,
            ..Default::default()
        };
        assert!(OpenAiTts::new(bad_rate).is_err());
        let no_voice = OpenAiTtsConfig {
            voice: String::new(),
            ..Default::default()
        };
        assert!(OpenAiTts::new(no_voice).is_err());
        let c = OpenAiTtsConfig {
            api_key: Some("sk-hidden".into()),
            ..Default::default()
        };
        assert!(!format!("{c:?}").contains("sk-hidden"));
    }
}
