//! [`OpenAiBrain`]: an LLM behind the chat-completions API, streamed.
//!
//! Any server that speaks `POST {base_url}/chat/completions` with
//! `"stream": true` works: OpenAI, Ollama, vLLM, llama.cpp's server. Text
//! deltas are forwarded as they arrive, so TTS can start on the first
//! sentence; tool calls are forwarded whole once the reply is complete.
//!
//! An attempt that fails before anything was forwarded (a 429, a 5xx, a
//! connection that could not be made or broke) is tried again after a
//! short, bounded wait. After the first text has gone out a retry would
//! make the caller hear the start twice, so a failure is reported instead.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_openai::Client;
use async_openai::config::OpenAIConfig;
use async_openai::error::{OpenAIError, StreamError};
use async_openai::middleware::HttpRequestFactory;
use async_openai::types::chat::CreateChatCompletionRequest;
use futures_util::StreamExt;
use serde::{Deserialize, Serialize};
use tokio::sync::mpsc;
use tokio::time::{Instant, timeout_at};

use super::http::{
    self, Failure, OPENAI_BASE_URL, RetryPolicy, error_code, error_message, status_failure,
    timeout_failure, transport_failure,
};
use super::messages::{chat_messages, chat_tools};
use super::tool_calls::{ToolCallAccumulator, ToolCallDelta};
use crate::agent::provider::{
    Brain, BrainEvent, BrainSession, CallInfo, Conversation, ProviderError, STREAM_CAPACITY,
};

/// Name in logs, metrics and [`ProviderError::provider`].
const NAME: &str = "openai";

/// Which request field carries [`OpenAiConfig::max_tokens`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MaxTokensField {
    /// `max_completion_tokens` for OpenAI's own API (its reasoning models
    /// reject the old field), `max_tokens` for every other server.
    #[default]
    Auto,
    /// Always `max_tokens`.
    MaxTokens,
    /// Always `max_completion_tokens`.
    MaxCompletionTokens,
}

/// One agent's LLM settings. Bring your own key: it is read from here or
/// from `OPENAI_API_KEY`, and is never logged or written back out.
#[derive(Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct OpenAiConfig {
    /// API base, up to and including `/v1`: `https://api.openai.com/v1`,
    /// Ollama's `http://localhost:11434/v1`, vLLM's or llama.cpp's
    /// `http://host:port/v1`.
    pub base_url: String,
    /// API key, sent as a bearer token. Unset: `OPENAI_API_KEY`, else no
    /// key (self-hosted servers usually need none). Never serialized.
    #[serde(skip_serializing)]
    pub api_key: Option<String>,
    /// Model name as the server knows it (`gpt-4o-mini`, `llama3.1:8b`).
    pub model: String,
    /// Sampling temperature; the server's default when unset (some
    /// reasoning models accept no other).
    pub temperature: Option<f32>,
    /// Longest reply in tokens; the server's default when unset.
    pub max_tokens: Option<u32>,
    /// Which request field carries `max_tokens`.
    pub max_tokens_field: MaxTokensField,
    /// Time allowed to open the TCP (and TLS) connection.
    pub connect_timeout_ms: u64,
    /// Time allowed from sending the request to the first text or tool-call
    /// delta (a cold self-hosted model may need a while to load).
    pub first_token_timeout_ms: u64,
    /// Longest silence between two chunks once the reply has started.
    pub idle_timeout_ms: u64,
    /// Time allowed for the whole reply, retries included.
    pub total_timeout_ms: u64,
    /// Attempts after the first, made only on a 429, a 5xx or a connection
    /// failure, and only before any text was forwarded.
    pub max_retries: u32,
    /// Longest wait before a retry; a server asking (`Retry-After`) for
    /// more gets no retry, since the caller is waiting on the line.
    pub max_retry_delay_ms: u64,
}

impl Default for OpenAiConfig {
    fn default() -> Self {
        OpenAiConfig {
            base_url: OPENAI_BASE_URL.to_owned(),
            api_key: None,
            model: "gpt-4o-mini".to_owned(),
            temperature: None,
            max_tokens: None,
            max_tokens_field: MaxTokensField::Auto,
            connect_timeout_ms: 5_000,
            first_token_timeout_ms: 15_000,
            idle_timeout_ms: 15_000,
            total_timeout_ms: 60_000,
            max_retries: 2,
            max_retry_delay_ms: 4_000,
        }
    }
}

impl std::fmt::Debug for OpenAiConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OpenAiConfig")
            .field("base_url", &self.base_url)
            .field("api_key", &self.api_key.as_ref().map(|_| "<redacted>"))
            .field("model", &self.model)
            .field("temperature", &self.temperature)
            .field("max_tokens", &self.max_tokens)
            .field("max_tokens_field", &self.max_tokens_field)
            .field("connect_timeout_ms", &self.connect_timeout_ms)
            .field("first_token_timeout_ms", &self.first_token_timeout_ms)
            .field("idle_timeout_ms", &self.idle_timeout_ms)
            .field("total_timeout_ms", &self.total_timeout_ms)
            .field("max_retries", &self.max_retries)
            .field("max_retry_delay_ms", &self.max_retry_delay_ms)
            .finish()
    }
}

/// What the brain and the summarizer share: the settings, the resolved
/// key and one connection pool.
pub(crate) struct ChatEndpoint {
    pub config: OpenAiConfig,
    client_config: OpenAIConfig,
    http: reqwest::Client,
}

impl ChatEndpoint {
    pub fn new(config: OpenAiConfig) -> Result<Self, ProviderError> {
        if config.model.trim().is_empty() {
            return Err(ProviderError::new(NAME, "no model configured", false));
        }
        let key = http::resolve_api_key(config.api_key.as_deref()).unwrap_or_default();
        // Everything explicit: the library's environment defaults
        // (OPENAI_BASE_URL, OPENAI_ORG_ID, …) must not override the agent's.
        let client_config = OpenAIConfig::new()
            .with_api_base(http::normalize_base(&config.base_url))
            .with_api_key(key)
            .with_org_id("")
            .with_project_id("");
        let http = http::http_client(NAME, Duration::from_millis(config.connect_timeout_ms))?;
        Ok(ChatEndpoint {
            config,
            client_config,
            http,
        })
    }

    /// A client whose transport does no retrying of its own (ours is
    /// bounded for a live call) and notes the status and `Retry-After` of
    /// an error response, which the library's error type drops.
    pub fn client(&self, last_error: &ErrorNote) -> Client<OpenAIConfig> {
        let http = self.http.clone();
        let note = last_error.clone();
        let transport = tower::service_fn(move |factory: HttpRequestFactory| {
            let http = http.clone();
            let note = note.clone();
            async move {
                let request = factory.build().await?;
                let response = http.execute(request).await.map_err(OpenAIError::Reqwest)?;
                if !response.status().is_success() {
                    note.set(
                        response.status().as_u16(),
                        http::retry_after(response.headers()),
                    );
                }
                Ok::<_, OpenAIError>(response)
            }
        });
        Client::build(self.http.clone(), self.client_config.clone()).with_http_service(transport)
    }

    pub fn policy(&self) -> RetryPolicy {
        RetryPolicy {
            max_retries: self.config.max_retries,
            max_delay: Duration::from_millis(self.config.max_retry_delay_ms),
        }
    }

    /// Sets the reply-length limit in the field the server expects.
    #[allow(deprecated)] // `max_tokens`: deprecated by OpenAI, the one others read.
    pub fn limit_tokens(&self, request: &mut CreateChatCompletionRequest) {
        let Some(n) = self.config.max_tokens else {
            return;
        };
        let completion = match self.config.max_tokens_field {
            MaxTokensField::MaxTokens => false,
            MaxTokensField::MaxCompletionTokens => true,
            MaxTokensField::Auto => http::normalize_base(&self.config.base_url)
                .to_ascii_lowercase()
                .starts_with(OPENAI_BASE_URL),
        };
        if completion {
            request.max_completion_tokens = Some(n);
        } else {
            request.max_tokens = Some(n);
        }
    }
}

/// The status and `Retry-After` of the last error response of one attempt.
#[derive(Clone, Default)]
pub(crate) struct ErrorNote(Arc<Mutex<Option<Noted>>>);

/// An error response's status and `Retry-After`.
type Noted = (u16, Option<Duration>);

impl ErrorNote {
    fn set(&self, status: u16, retry_after: Option<Duration>) {
        *self.0.lock().unwrap_or_else(|e| e.into_inner()) = Some((status, retry_after));
    }

    fn get(&self) -> Option<Noted> {
        *self.0.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// A library error as a failure, with the status noted by the transport.
pub(crate) fn library_failure(e: OpenAIError, note: &ErrorNote) -> Failure {
    let noted = note.get();
    let retry_after = noted.and_then(|(_, r)| r);
    match e {
        OpenAIError::ApiError(api) => {
            let code = api
                .api_error
                .code
                .as_deref()
                .or(api.api_error.r#type.as_deref());
            status_failure(
                NAME,
                api.status_code.as_u16(),
                &error_message(api.api_error.message.as_bytes()),
                code,
                retry_after,
            )
        }
        OpenAIError::Reqwest(e) => transport_failure(NAME, "chat completion", &e),
        // An error body that is not OpenAI's shape (Ollama, a proxy).
        OpenAIError::JSONDeserialize(_, body) if noted.is_some() => {
            let (status, _) = noted.unwrap_or_default();
            let code = error_code(body.as_bytes());
            status_failure(
                NAME,
                status,
                &error_message(body.as_bytes()),
                code.as_deref(),
                retry_after,
            )
        }
        OpenAIError::JSONDeserialize(e, body) => Failure::fatal(ProviderError::new(
            NAME,
            format!("malformed response ({e}): {}", http::shorten(&body)),
            true,
        )),
        OpenAIError::StreamError(e) => {
            let what = match *e {
                StreamError::EventStream(m) => m,
                StreamError::UnknownEvent(ev) => format!("unexpected event {:?}", ev.event),
            };
            Failure {
                error: ProviderError::new(NAME, format!("stream broke: {what}"), true),
                auto_retry: true,
                retry_after: None,
            }
        }
        other => Failure::fatal(ProviderError::new(NAME, other.to_string(), false)),
    }
}

/// An LLM brain over an OpenAI-compatible chat-completions endpoint.
#[derive(Clone)]
pub struct OpenAiBrain {
    endpoint: Arc<ChatEndpoint>,
}

impl std::fmt::Debug for OpenAiBrain {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OpenAiBrain")
            .field("config", &self.endpoint.config)
            .finish()
    }
}

impl OpenAiBrain {
    /// A brain with these settings. Fails without a model, or when the
    /// HTTP client cannot be built.
    pub fn new(config: OpenAiConfig) -> Result<Self, ProviderError> {
        Ok(OpenAiBrain {
            endpoint: Arc::new(ChatEndpoint::new(config)?),
        })
    }

    /// The settings in use.
    pub fn config(&self) -> &OpenAiConfig {
        &self.endpoint.config
    }
}

impl Brain for OpenAiBrain {
    fn start_call(&self, _call: &CallInfo) -> Box<dyn BrainSession> {
        Box::new(OpenAiSession {
            endpoint: self.endpoint.clone(),
        })
    }

    fn name(&self) -> &str {
        NAME
    }
}

/// One call's LLM: stateless, each reply sees the whole conversation.
struct OpenAiSession {
    endpoint: Arc<ChatEndpoint>,
}

impl BrainSession for OpenAiSession {
    fn respond(&mut self, conversation: &Conversation) -> mpsc::Receiver<BrainEvent> {
        let (tx, rx) = mpsc::channel(STREAM_CAPACITY);
        let endpoint = self.endpoint.clone();
        let mut request = CreateChatCompletionRequest {
            model: endpoint.config.model.clone(),
            messages: chat_messages(conversation),
            tools: chat_tools(&conversation.tools),
            temperature: endpoint.config.temperature,
            stream: Some(true),
            ..Default::default()
        };
        endpoint.limit_tokens(&mut request);
        tokio::spawn(reply(endpoint, request, tx));
        rx
    }
}

/// A stream chunk, read leniently: servers differ in the fields they add,
/// omit or type loosely, and only these matter here.
#[derive(Debug, Default, Deserialize)]
struct Chunk {
    #[serde(default)]
    choices: Vec<ChunkChoice>,
    /// Some servers report a failure mid-stream as a chunk of its own.
    #[serde(default)]
    error: Option<serde_json::Value>,
}

#[derive(Debug, Default, Deserialize)]
struct ChunkChoice {
    #[serde(default)]
    index: u32,
    #[serde(default)]
    delta: Delta,
}

#[derive(Debug, Default, Deserialize)]
struct Delta {
    #[serde(default)]
    content: Option<String>,
    #[serde(default)]
    refusal: Option<String>,
    #[serde(default)]
    tool_calls: Option<Vec<ToolCallDelta>>,
}

/// How an attempt ended short of a complete reply.
enum Stop {
    /// The receiver was dropped.
    Cancelled,
    /// It failed; `forwarded` tells whether any text had gone out.
    Failed { failure: Failure, forwarded: bool },
}

async fn reply(
    endpoint: Arc<ChatEndpoint>,
    request: CreateChatCompletionRequest,
    tx: mpsc::Sender<BrainEvent>,
) {
    let config = &endpoint.config;
    let deadline = Instant::now() + Duration::from_millis(config.total_timeout_ms);
    let policy = endpoint.policy();
    let mut retries = 0;
    loop {
        let (failure, forwarded) = match attempt(&endpoint, &request, &tx, deadline).await {
            Ok(()) | Err(Stop::Cancelled) => return,
            Err(Stop::Failed { failure, forwarded }) => (failure, forwarded),
        };
        if !forwarded && let Some(wait) = policy.delay(&failure, retries, deadline) {
            tracing::debug!(
                provider = NAME,
                error = %failure.error,
                wait_ms = wait.as_millis() as u64,
                "retrying chat completion"
            );
            tokio::select! {
                _ = tokio::time::sleep(wait) => {}
                _ = tx.closed() => return,
            }
            retries += 1;
            continue;
        }
        let _ = tx.send(BrainEvent::Error(failure.error)).await;
        return;
    }
}

/// One request: streams the reply into `tx`, then its tool calls and
/// `Done`.
async fn attempt(
    endpoint: &ChatEndpoint,
    request: &CreateChatCompletionRequest,
    tx: &mpsc::Sender<BrainEvent>,
    deadline: Instant,
) -> Result<(), Stop> {
    let config = &endpoint.config;
    let first_token = Duration::from_millis(config.first_token_timeout_ms);
    let idle = Duration::from_millis(config.idle_timeout_ms);
    let first_deadline = (Instant::now() + first_token).min(deadline);
    let note = ErrorNote::default();
    let client = endpoint.client(&note);
    let fail = |failure, forwarded| Err(Stop::Failed { failure, forwarded });

    let chat = client.chat();
    let open = chat.create_stream_byot::<_, Chunk>(request);
    let mut stream = tokio::select! {
        biased;
        _ = tx.closed() => return Err(Stop::Cancelled),
        opened = timeout_at(first_deadline, open) => match opened {
            Ok(Ok(stream)) => stream,
            Ok(Err(e)) => return fail(library_failure(e, &note), false),
            Err(_) => return fail(first_token_timeout(first_deadline, deadline, first_token), false),
        },
    };

    let mut forwarded = false;
    let mut started = false;
    let mut chunks = 0usize;
    let mut calls = ToolCallAccumulator::default();
    loop {
        let wait_until = if started {
            (Instant::now() + idle).min(deadline)
        } else {
            first_deadline
        };
        // Dropping `stream` (on return) makes the library's reader task
        // drop the response, which closes the connection.
        let next = tokio::select! {
            biased;
            _ = tx.closed() => return Err(Stop::Cancelled),
            next = timeout_at(wait_until, stream.next()) => next,
        };
        let chunk = match next {
            Ok(Some(Ok(chunk))) => chunk,
            Ok(Some(Err(e))) => return fail(library_failure(e, &note), forwarded),
            Ok(None) => break,
            Err(_) if !started => {
                return fail(
                    first_token_timeout(first_deadline, deadline, first_token),
                    false,
                );
            }
            Err(_) if Instant::now() >= deadline => {
                let total = Duration::from_millis(config.total_timeout_ms);
                return fail(timeout_failure(NAME, "reply", total), forwarded);
            }
            Err(_) => return fail(timeout_failure(NAME, "stream (no data)", idle), forwarded),
        };
        chunks += 1;
        if let Some(error) = chunk.error {
            let message = error_message(error.to_string().as_bytes());
            let failure = Failure {
                error: ProviderError::new(
                    NAME,
                    format!("server error mid-stream: {message}"),
                    true,
                ),
                auto_retry: true,
                retry_after: None,
            };
            return fail(failure, forwarded);
        }
        for choice in chunk.choices.into_iter().filter(|c| c.index == 0) {
            let delta = choice.delta;
            for text in [delta.content, delta.refusal].into_iter().flatten() {
                if text.is_empty() {
                    continue;
                }
                started = true;
                forwarded = true;
                if tx.send(BrainEvent::Text(text)).await.is_err() {
                    return Err(Stop::Cancelled);
                }
            }
            for call in delta.tool_calls.into_iter().flatten() {
                started = true;
                calls.push(call);
            }
        }
    }
    drop(stream);
    if chunks == 0 {
        // A server that ignored `"stream": true` answers with one JSON body,
        // which holds no SSE events: say so rather than reply with silence.
        let e = ProviderError::new(
            NAME,
            "the response held no stream chunks (does the server support \"stream\": true?)",
            false,
        );
        return Err(Stop::Failed {
            failure: Failure::fatal(e),
            forwarded: false,
        });
    }

    let calls = calls.finish().map_err(|m| Stop::Failed {
        failure: Failure::fatal(ProviderError::new(NAME, m, true)),
        forwarded,
    })?;
    for call in calls {
        if tx.send(BrainEvent::ToolCall(call)).await.is_err() {
            return Err(Stop::Cancelled);
        }
    }
    let _ = tx.send(BrainEvent::Done).await;
    Ok(())
}

/// The first-token deadline passed; it is the total one when that came
/// first.
fn first_token_timeout(first: Instant, total: Instant, allowed: Duration) -> Failure {
    if first >= total {
        timeout_failure(NAME, "reply", allowed)
    } else {
        timeout_failure(NAME, "first token", allowed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn config_debug_hides_the_key_and_serialization_drops_it() {
        let config = OpenAiConfig {
            api_key: Some("sk-secret".into()),
            ..Default::default()
        };
        assert!(!format!("{config:?}").contains("sk-secret"));
        let toml = toml::to_string(&config).unwrap();
        assert!(!toml.contains("sk-secret"));
        let back: OpenAiConfig = toml::from_str(&toml).unwrap();
        assert_eq!(back.model, "gpt-4o-mini");
        assert!(toml::from_str::<OpenAiConfig>("modle = 'x'").is_err());
    }

    #[test]
    #[allow(deprecated)]
    fn token_limit_goes_in_the_field_the_server_reads() {
        let mut config = OpenAiConfig {
            max_tokens: Some(200),
            ..Default::default()
        };
        let check = |config: &OpenAiConfig| {
            let endpoint = ChatEndpoint::new(config.clone()).unwrap();
            let mut request = CreateChatCompletionRequest::default();
            endpoint.limit_tokens(&mut request);
            (request.max_tokens, request.max_completion_tokens)
        };
        assert_eq!(check(&config), (None, Some(200)));
        config.base_url = "http://localhost:11434/v1/".into();
        assert_eq!(check(&config), (Some(200), None));
        config.max_tokens_field = MaxTokensField::MaxCompletionTokens;
        assert_eq!(check(&config), (None, Some(200)));
        config.max_tokens = None;
        assert_eq!(check(&config), (None, None));
    }

    #[test]
    fn an_empty_model_is_refused() {
        let config = OpenAiConfig {
            model: " ".into(),
            ..Default::default()
        };
        assert!(OpenAiBrain::new(config).is_err());
    }
}
