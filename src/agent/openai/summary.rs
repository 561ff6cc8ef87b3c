//! After the call: a summary, how the call went against its objective, and
//! the data the agent was asked to capture, from the same kind of
//! OpenAI-compatible endpoint as the brain.
//!
//! One non-streaming request with a JSON-schema response format (OpenAI,
//! vLLM, Ollama and llama.cpp all constrain the output to it). The answer
//! is still checked here, since a server may treat the schema as a hint:
//! a reply of the wrong shape is an error that says what was wrong, never
//! a record with made-up fields.

use std::sync::Arc;
use std::time::Duration;

use async_openai::types::chat::{
    ChatCompletionRequestMessage, ChatCompletionRequestSystemMessage,
    ChatCompletionRequestSystemMessageContent, ChatCompletionRequestUserMessage,
    ChatCompletionRequestUserMessageContent, CreateChatCompletionRequest, ResponseFormat,
    ResponseFormatJsonSchema,
};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use tokio::time::{Instant, timeout_at};

use super::http::{self, timeout_failure};
use super::llm::{ChatEndpoint, ErrorNote, OpenAiConfig, library_failure};
use super::schema;
use crate::agent::provider::{Message, ProviderError};

const NAME: &str = "openai";

/// How far the call got toward its objective.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    /// The objective was met.
    Achieved,
    /// Some of it was.
    Partial,
    /// None of it was.
    NotAchieved,
}

impl Outcome {
    /// The name stored in the call record (`achieved`, `partial`,
    /// `not_achieved`).
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Achieved => "achieved",
            Outcome::Partial => "partial",
            Outcome::NotAchieved => "not_achieved",
        }
    }
}

/// What the model made of a call.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CallSummary {
    /// A few sentences on what happened.
    pub summary: String,
    /// Present exactly when an objective was given.
    pub outcome: Option<Outcome>,
    /// Present exactly when a schema was given, and of its shape.
    pub structured_data: Option<Value>,
}

/// What to summarize.
#[derive(Debug, Clone, Copy, Default)]
pub struct SummaryRequest<'a> {
    /// The conversation, as the brain saw it.
    pub transcript: &'a [Message],
    /// What the call was meant to achieve, if anything.
    pub objective: Option<&'a str>,
    /// JSON Schema of the data to extract, if any.
    pub schema: Option<&'a Value>,
}

/// Summarizes finished calls with an OpenAI-compatible model.
#[derive(Clone)]
pub struct OpenAiSummarizer {
    endpoint: Arc<ChatEndpoint>,
}

impl std::fmt::Debug for OpenAiSummarizer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OpenAiSummarizer")
            .field("config", &self.endpoint.config)
            .finish()
    }
}

/// Longest transcript line kept: a tool result can be a large JSON blob
/// that says little about the call.
const MAX_LINE: usize = 2_000;

impl OpenAiSummarizer {
    /// A summarizer with these settings (its own model, key and timeouts;
    /// `total_timeout_ms` bounds each summary, retries included).
    pub fn new(config: OpenAiConfig) -> Result<Self, ProviderError> {
        Ok(OpenAiSummarizer {
            endpoint: Arc::new(ChatEndpoint::new(config)?),
        })
    }

    /// Asks for the summary and checks its shape.
    pub async fn summarize(
        &self,
        request: &SummaryRequest<'_>,
    ) -> Result<CallSummary, ProviderError> {
        if let Some(s) = request.schema
            && !s.is_object()
        {
            return Err(ProviderError::new(
                NAME,
                "the data schema must be a JSON object",
                false,
            ));
        }
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
                Ok(Ok(completion)) => return read_completion(completion, request),
                Ok(Err(e)) => library_failure(e, &note),
                Err(_) => timeout_failure(NAME, "summary", total),
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

    fn chat_request(&self, request: &SummaryRequest<'_>) -> CreateChatCompletionRequest {
        let mut instructions = String::from(
            "You write the record of a phone call between a caller and an AI voice agent. \
             Read the transcript and answer with one JSON object only.\n\
             - \"summary\": two to four plain sentences on what happened and what was agreed.\n",
        );
        if let Some(objective) = request.objective {
            instructions.push_str(&format!(
                "- \"outcome\": \"achieved\" if the call met its objective, \"partial\" if it \
                 met part of it, \"not_achieved\" otherwise. The objective: {objective}\n"
            ));
        }
        if request.schema.is_some() {
            instructions.push_str(
                "- \"structured_data\": the data the call captured, following its schema \
                 exactly; use null where the schema allows it and the call did not say.\n",
            );
        }
        let mut request_body = CreateChatCompletionRequest {
            model: self.endpoint.config.model.clone(),
            messages: vec![
                ChatCompletionRequestMessage::System(ChatCompletionRequestSystemMessage {
                    content: ChatCompletionRequestSystemMessageContent::Text(instructions),
                    name: None,
                }),
                ChatCompletionRequestMessage::User(ChatCompletionRequestUserMessage {
                    content: ChatCompletionRequestUserMessageContent::Text(render_transcript(
                        request.transcript,
                    )),
                    name: None,
                }),
            ],
            temperature: self.endpoint.config.temperature,
            stream: Some(false),
            response_format: Some(ResponseFormat::JsonSchema {
                json_schema: ResponseFormatJsonSchema {
                    name: "call_summary".into(),
                    description: Some("The record of one phone call".into()),
                    schema: response_schema(request),
                    // User schemas rarely meet strict mode's rules (every
                    // field required, no open objects).
                    strict: None,
                },
            }),
            ..Default::default()
        };
        self.endpoint.limit_tokens(&mut request_body);
        request_body
    }
}

/// The schema of the whole answer.
fn response_schema(request: &SummaryRequest<'_>) -> Value {
    let mut properties = serde_json::Map::new();
    let mut required = vec![json!("summary")];
    properties.insert("summary".into(), json!({"type": "string"}));
    if request.objective.is_some() {
        properties.insert(
            "outcome".into(),
            json!({"type": "string", "enum": ["achieved", "partial", "not_achieved"]}),
        );
        required.push(json!("outcome"));
    }
    if let Some(schema) = request.schema {
        properties.insert("structured_data".into(), schema.clone());
        required.push(json!("structured_data"));
    }
    json!({
        "type": "object",
        "properties": properties,
        "required": required,
        "additionalProperties": false
    })
}

/// The transcript as the model reads it: one line per turn.
pub(crate) fn render_transcript(messages: &[Message]) -> String {
    let mut out = String::new();
    let mut line = |s: String| {
        out.push_str(&http_shorten(&s));
        out.push('\n');
    };
    for m in messages {
        match m {
            Message::User { text } => line(format!("Caller: {text}")),
            Message::Dtmf { digits } => line(format!("Caller pressed keys: {digits}")),
            Message::Assistant {
                text,
                interrupted,
                tool_calls,
            } => {
                if !text.is_empty() {
                    let cut = if *interrupted {
                        " [cut off by the caller]"
                    } else {
                        ""
                    };
                    line(format!("Agent: {text}{cut}"));
                }
                for call in tool_calls {
                    line(format!("Agent used tool {}({})", call.name, call.arguments));
                }
            }
            Message::Tool { content, .. } => line(format!("Tool result: {content}")),
            Message::Event { text } => line(format!("[{text}]")),
        }
    }
    if out.is_empty() {
        out.push_str("(The call had no conversation.)\n");
    }
    out
}

fn http_shorten(s: &str) -> String {
    if s.chars().count() <= MAX_LINE {
        s.to_owned()
    } else {
        let mut t: String = s.chars().take(MAX_LINE).collect();
        t.push('…');
        t
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

fn invalid(message: impl Into<String>) -> ProviderError {
    // A model that produced the wrong shape may well get it right on a
    // second try.
    ProviderError::new(NAME, format!("summary: {}", message.into()), true)
}

fn read_completion(
    completion: Completion,
    request: &SummaryRequest<'_>,
) -> Result<CallSummary, ProviderError> {
    let choice = completion
        .choices
        .into_iter()
        .next()
        .ok_or_else(|| invalid("the response has no choices"))?;
    if let Some(refusal) = choice.message.refusal.filter(|r| !r.is_empty()) {
        return Err(ProviderError::new(
            NAME,
            format!("summary: the model refused: {}", http::shorten(&refusal)),
            false,
        ));
    }
    let content = choice.message.content.unwrap_or_default();
    if choice.finish_reason.as_deref() == Some("length") {
        return Err(invalid("the answer was cut off at max_tokens"));
    }
    parse_answer(&content, request)
}

/// The answer's JSON, checked against what was asked.
pub(crate) fn parse_answer(
    content: &str,
    request: &SummaryRequest<'_>,
) -> Result<CallSummary, ProviderError> {
    let text = strip_fences(content);
    let answer: Value = serde_json::from_str(text).map_err(|e| {
        invalid(format!(
            "the answer is not JSON ({e}): {}",
            http::shorten(text)
        ))
    })?;
    let Value::Object(mut answer) = answer else {
        return Err(invalid("the answer is not a JSON object"));
    };
    let summary = match answer.remove("summary") {
        Some(Value::String(s)) if !s.trim().is_empty() => s.trim().to_owned(),
        Some(Value::String(_)) => return Err(invalid("\"summary\" is empty")),
        Some(other) => return Err(invalid(format!("\"summary\" is not a string: {other}"))),
        None => return Err(invalid("the answer has no \"summary\"")),
    };
    let outcome = match request.objective {
        None => None,
        Some(_) => match answer.remove("outcome") {
            Some(v) => Some(serde_json::from_value::<Outcome>(v.clone()).map_err(|_| {
                invalid(format!(
                    "\"outcome\" is {v}, not one of achieved, partial, not_achieved"
                ))
            })?),
            None => return Err(invalid("the answer has no \"outcome\"")),
        },
    };
    let structured_data = match request.schema {
        None => None,
        Some(s) => {
            let data = answer
                .remove("structured_data")
                .ok_or_else(|| invalid("the answer has no \"structured_data\""))?;
            schema::check(&data, s).map_err(|e| {
                invalid(format!("\"structured_data\" does not fit its schema: {e}"))
            })?;
            Some(data)
        }
    };
    Ok(CallSummary {
        summary,
        outcome,
        structured_data,
    })
}

/// Some models wrap JSON in a Markdown fence even when asked not to.
pub(crate) fn strip_fences(s: &str) -> &str {
    let t = s.trim();
    let Some(rest) = t.strip_prefix("```") else {
        return t;
    };
    let body = rest.split_once('\n').map_or("", |(_, b)| b);
    body.trim_end().strip_suffix("```").unwrap_or(body).trim()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::agent::provider::ToolCall;

    fn schema() -> Value {
        json!({"type": "object", "properties": {"party": {"type": "integer"}},
               "required": ["party"], "additionalProperties": false})
    }

    #[test]
    fn answers_are_checked_against_what_was_asked() {
        let s = schema();
        let full = SummaryRequest {
            transcript: &[],
            objective: Some("book a table"),
            schema: Some(&s),
        };
        let ok = parse_answer(
            "```json\n{\"summary\": \" Booked. \", \"outcome\": \"partial\", \"structured_data\": {\"party\": 4}}\n```",
            &full,
        )
        .unwrap();
        assert_eq!(
            ok,
            CallSummary {
                summary: "Booked.".into(),
                outcome: Some(Outcome::Partial),
                structured_data: Some(json!({"party": 4})),
            }
        );
        let bare = SummaryRequest::default();
        let ok = parse_answer(r#"{"summary": "Hi.", "outcome": "achieved"}"#, &bare).unwrap();
        assert_eq!((ok.outcome, ok.structured_data), (None, None));

        for (answer, want) in [
            ("not json", "the answer is not JSON"),
            ("[1]", "not a JSON object"),
            (r#"{"outcome": "achieved"}"#, "no \"summary\""),
            (
                r#"{"summary": "x", "structured_data": {"party": 4}}"#,
                "no \"outcome\"",
            ),
            (
                r#"{"summary": "x", "outcome": "done", "structured_data": {}}"#,
                "\"outcome\" is \"done\"",
            ),
            (
                r#"{"summary": "x", "outcome": "achieved"}"#,
                "no \"structured_data\"",
            ),
            (
                r#"{"summary": "x", "outcome": "achieved", "structured_data": {"party": "four"}}"#,
                "does not fit its schema: $.party: expected integer, got string",
            ),
        ] {
            let e = parse_answer(answer, &full).unwrap_err();
            assert!(e.message.contains(want), "{answer}: {e}");
        }
    }

    #[test]
    fn the_response_schema_has_only_what_was_asked() {
        let s = schema();
        let v = response_schema(&SummaryRequest {
            transcript: &[],
            objective: Some("x"),
            schema: Some(&s),
        });
        assert_eq!(
            v["required"],
            json!(["summary", "outcome", "structured_data"])
        );
        assert_eq!(v["properties"]["structured_data"], s);
        let v = response_schema(&SummaryRequest::default());
        assert_eq!(v["required"], json!(["summary"]));
        assert!(v["properties"].get("outcome").is_none());
    }

    #[test]
    fn transcript_renders_one_line_per_turn() {
        let t = render_transcript(&[
            Message::User { text: "Hi".into() },
            Message::Assistant {
                text: "Hello, how".into(),
                interrupted: true,
                tool_calls: vec![ToolCall {
                    id: "1".into(),
                    name: "lookup".into(),
                    arguments: json!({"a": 1}),
                }],
            },
            Message::Tool {
                call_id: "1".into(),
                content: "ok".into(),
            },
            Message::Dtmf { digits: "5".into() },
            Message::Event {
                text: "caller hung up".into(),
            },
        ]);
        assert_eq!(
            t,
            "Caller: Hi\nAgent: Hello, how [cut off by the caller]\nAgent used tool lookup({\"a\":1})\n\
             Tool result: ok\nCaller pressed keys: 5\n[caller hung up]\n"
        );
    }
}
