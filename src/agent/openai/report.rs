//! One JSON answer from an OpenAI-compatible chat model, constrained by a
//! JSON schema (`response_format: json_schema`): what the after-call
//! report's extraction asks for (see [`crate::reports`], which checks the
//! answer, since a server may treat the schema as a hint).
//!
//! The request, its timeouts and its retries (rate limits, server errors,
//! broken connections) are the summary's; the answer's text is returned
//! as is, fences stripped.

use std::sync::Arc;
use std::time::Duration;

use async_openai::types::chat::{
    ChatCompletionRequestMessage, ChatCompletionRequestSystemMessage,
    ChatCompletionRequestSystemMessageContent, ChatCompletionRequestUserMessage,
    ChatCompletionRequestUserMessageContent, CreateChatCompletionRequest, ResponseFormat,
    ResponseFormatJsonSchema,
};
use serde::Deserialize;
use serde_json::Value;
use tokio::time::{Instant, timeout_at};

use super::http::{self, timeout_failure};
use super::llm::{ChatEndpoint, ErrorNote, OpenAiConfig, library_failure};
use crate::agent::provider::ProviderError;

const NAME: &str = "openai";

/// Asks an OpenAI-compatible model for JSON of a given shape.
#[derive(Clone)]
pub struct OpenAiJson {
    endpoint: Arc<ChatEndpoint>,
}

impl std::fmt::Debug for OpenAiJson {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OpenAiJson")
            .field("config", &self.endpoint.config)
            .finish()
    }
}

/// One request: instructions, the material, and the answer's schema.
#[derive(Debug, Clone, Copy)]
pub struct JsonRequest<'a> {
    /// The system message.
    pub instructions: &'a str,
    /// The user message (the transcript, and anything else to read).
    pub input: &'a str,
    /// The schema's name (`[a-zA-Z0-9_-]`).
    pub name: &'a str,
    /// The JSON Schema of the answer.
    pub schema: &'a Value,
}

impl OpenAiJson {
    /// A client with these settings (`total_timeout_ms` bounds each
    /// request, retries included).
    pub fn new(config: OpenAiConfig) -> Result<Self, ProviderError> {
        Ok(OpenAiJson {
            endpoint: Arc::new(ChatEndpoint::new(config)?),
        })
    }

    /// The model's answer: its text, without Markdown fences. Not parsed:
    /// the caller checks it.
    pub async fn complete(&self, request: &JsonRequest<'_>) -> Result<String, ProviderError> {
        let chat = self.chat_request(request);
        let config = &self.endpoint.config;
        let total = Duration::from_millis(config.total_timeout_ms);
        let deadline = Instant::now() + total;
        let policy = self.endpoint.policy();
        let mut retries = 0;
        loop {
            let note = ErrorNote::default();
            let client = self.endpoint.client(&note);
            let sent =
                timeout_at(deadline, client.chat().create_byot::<_, Completion>(&chat)).await;
            let failure = match sent {
                Ok(Ok(completion)) => return read_completion(completion),
                Ok(Err(e)) => library_failure(e, &note),
                Err(_) => timeout_failure(NAME, "report", total),
            };
            match policy.delay(&failure, retries, deadline) {
                Some(wait) => {
                    tokio::time::sleep(wait).await;
                    retries += 1;
                }
                None => return Err(failure.error),
            }
        }
    }

    fn chat_request(&self, request: &JsonRequest<'_>) -> CreateChatCompletionRequest {
        let mut body = CreateChatCompletionRequest {
            model: self.endpoint.config.model.clone(),
            messages: vec![
                ChatCompletionRequestMessage::System(ChatCompletionRequestSystemMessage {
                    content: ChatCompletionRequestSystemMessageContent::Text(
                        request.instructions.to_owned(),
                    ),
                    name: None,
                }),
                ChatCompletionRequestMessage::User(ChatCompletionRequestUserMessage {
                    content: ChatCompletionRequestUserMessageContent::Text(
                        request.input.to_owned(),
                    ),
                    name: None,
                }),
            ],
            temperature: self.endpoint.config.temperature,
            stream: Some(false),
            response_format: Some(ResponseFormat::JsonSchema {
                json_schema: ResponseFormatJsonSchema {
                    name: request.name.to_owned(),
                    description: None,
                    schema: request.schema.clone(),
                    strict: None,
                },
            }),
            ..Default::default()
        };
        self.endpoint.limit_tokens(&mut body);
        body
    }
}

#[derive(Debug, Default, Deserialize)]
struct Completion {
    #[serde(default)]
    choices: Vec<CompletionChoice>,
}

#[derive(Debug, Default, Deserialize)]
struct CompletionChoice {
    #[serde(default)]
    message: CompletionMessage,
    #[serde(default)]
    finish_reason: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
struct CompletionMessage {
    #[serde(default)]
    content: Option<String>,
    #[serde(default)]
    refusal: Option<String>,
}

fn read_completion(completion: Completion) -> Result<String, ProviderError> {
    let choice = completion
        .choices
        .into_iter()
        .next()
        .ok_or_else(|| ProviderError::new(NAME, "report: the response has no choices", true))?;
    if let Some(refusal) = choice.message.refusal.filter(|r| !r.is_empty()) {
        return Err(ProviderError::new(
            NAME,
            format!("report: the model refused: {}", http::shorten(&refusal)),
            false,
        ));
    }
    if choice.finish_reason.as_deref() == Some("length") {
        return Err(ProviderError::new(
            NAME,
            "report: the answer was cut off at max_tokens",
            true,
        ));
    }
    Ok(super::summary::strip_fences(&choice.message.content.unwrap_or_default()).to_owned())
}
