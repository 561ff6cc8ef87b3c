//! The [`Conversation`] as chat-completion messages and tools.
//!
//! Lines the caller produced (speech, keypad digits, call events) are user
//! messages, and consecutive ones are merged: strict chat templates
//! (Mistral's, Gemma's, as served by vLLM or llama.cpp) reject two user
//! turns in a row or a system message after the first, and the model reads
//! one merged turn the same way. An assistant turn carries exactly what the
//! caller heard, so after a barge-in the model knows where it was cut off;
//! a turn the caller heard nothing of, and that called no tool, is left out.
//!
//! OpenAI rejects a tool call with no result after it, and a result with no
//! call before it (a turn cut short between the two can leave either). Such
//! halves are left out rather than failing the whole reply.

use std::collections::HashSet;

use async_openai::types::chat::{
    ChatCompletionMessageToolCall, ChatCompletionMessageToolCalls,
    ChatCompletionRequestAssistantMessage, ChatCompletionRequestAssistantMessageContent,
    ChatCompletionRequestMessage, ChatCompletionRequestSystemMessage,
    ChatCompletionRequestSystemMessageContent, ChatCompletionRequestToolMessage,
    ChatCompletionRequestToolMessageContent, ChatCompletionRequestUserMessage,
    ChatCompletionRequestUserMessageContent, ChatCompletionTool, ChatCompletionTools, FunctionCall,
    FunctionObject,
};

use crate::agent::provider::{Conversation, Message, ToolCall, ToolSpec};

/// How keypad input reads to the model.
pub(crate) fn dtmf_line(digits: &str) -> String {
    format!("[The caller pressed on the keypad: {digits}]")
}

/// How a call event reads to the model.
pub(crate) fn event_line(text: &str) -> String {
    format!("[Call event: {text}]")
}

/// The messages of one request: the instructions, then the conversation.
pub(crate) fn chat_messages(conversation: &Conversation) -> Vec<ChatCompletionRequestMessage> {
    let mut out = Vec::with_capacity(conversation.messages.len() + 1);
    if !conversation.system.trim().is_empty() {
        out.push(ChatCompletionRequestMessage::System(
            ChatCompletionRequestSystemMessage {
                content: ChatCompletionRequestSystemMessageContent::Text(
                    conversation.system.clone(),
                ),
                name: None,
            },
        ));
    }
    let answered: HashSet<&str> = conversation
        .messages
        .iter()
        .filter_map(|m| match m {
            Message::Tool { call_id, .. } => Some(call_id.as_str()),
            _ => None,
        })
        .collect();
    let mut called: HashSet<&str> = HashSet::new();
    // Caller lines waiting to become one user message.
    let mut pending: Vec<String> = Vec::new();
    let flush = |pending: &mut Vec<String>, out: &mut Vec<ChatCompletionRequestMessage>| {
        if !pending.is_empty() {
            out.push(ChatCompletionRequestMessage::User(
                ChatCompletionRequestUserMessage {
                    content: ChatCompletionRequestUserMessageContent::Text(pending.join("\n")),
                    name: None,
                },
            ));
            pending.clear();
        }
    };
    for message in &conversation.messages {
        match message {
            Message::User { text } => {
                if !text.trim().is_empty() {
                    pending.push(text.clone());
                }
            }
            Message::Dtmf { digits } => pending.push(dtmf_line(digits)),
            Message::Event { text } => pending.push(event_line(text)),
            Message::Assistant {
                text, tool_calls, ..
            } => {
                let tool_calls: Vec<&ToolCall> = tool_calls
                    .iter()
                    .filter(|c| answered.contains(c.id.as_str()))
                    .collect();
                if text.trim().is_empty() && tool_calls.is_empty() {
                    continue;
                }
                called.extend(tool_calls.iter().map(|c| c.id.as_str()));
                flush(&mut pending, &mut out);
                out.push(assistant_message(text, &tool_calls));
            }
            Message::Tool { call_id, .. } if !called.contains(call_id.as_str()) => {
                tracing::debug!(call_id, "tool result without its call left out");
            }
            Message::Tool { call_id, content } => {
                flush(&mut pending, &mut out);
                out.push(ChatCompletionRequestMessage::Tool(
                    ChatCompletionRequestToolMessage {
                        content: ChatCompletionRequestToolMessageContent::Text(content.clone()),
                        tool_call_id: call_id.clone(),
                    },
                ));
            }
        }
    }
    flush(&mut pending, &mut out);
    out
}

#[allow(deprecated)] // `function_call`, which the struct literal must name.
fn assistant_message(text: &str, tool_calls: &[&ToolCall]) -> ChatCompletionRequestMessage {
    let content = (!text.trim().is_empty())
        .then(|| ChatCompletionRequestAssistantMessageContent::Text(text.to_owned()));
    let tool_calls = (!tool_calls.is_empty()).then(|| {
        tool_calls
            .iter()
            .map(|call| {
                ChatCompletionMessageToolCalls::Function(ChatCompletionMessageToolCall {
                    id: call.id.clone(),
                    function: FunctionCall {
                        name: call.name.clone(),
                        // The wire format carries arguments as a JSON string.
                        arguments: call.arguments.to_string(),
                    },
                })
            })
            .collect()
    });
    ChatCompletionRequestMessage::Assistant(ChatCompletionRequestAssistantMessage {
        content,
        refusal: None,
        name: None,
        audio: None,
        tool_calls,
        function_call: None,
    })
}

/// The tools offered, as function tools.
pub(crate) fn chat_tools(tools: &[ToolSpec]) -> Option<Vec<ChatCompletionTools>> {
    if tools.is_empty() {
        return None;
    }
    Some(
        tools
            .iter()
            .map(|t| {
                ChatCompletionTools::Function(ChatCompletionTool {
                    function: FunctionObject {
                        name: t.name.clone(),
                        description: (!t.description.is_empty()).then(|| t.description.clone()),
                        parameters: Some(t.parameters.clone()),
                        strict: None,
                    },
                })
            })
            .collect(),
    )
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn conversation_maps_onto_chat_roles() {
        let conversation = Conversation {
            system: "Be brief.".into(),
            messages: vec![
                Message::User {
                    text: "Hi, I need a table.".into(),
                },
                Message::Assistant {
                    text: "Sure, for how".into(),
                    interrupted: true,
                    tool_calls: vec![],
                },
                Message::User {
                    text: "Four people.".into(),
                },
                Message::Dtmf {
                    digits: "4#".into(),
                },
                Message::Assistant {
                    text: String::new(),
                    interrupted: false,
                    tool_calls: vec![ToolCall {
                        id: "call_1".into(),
                        name: "book".into(),
                        arguments: json!({"people": 4}),
                    }],
                },
                Message::Tool {
                    call_id: "call_1".into(),
                    content: r#"{"ok":true}"#.into(),
                },
                Message::Assistant {
                    text: String::new(),
                    interrupted: true,
                    tool_calls: vec![],
                },
                Message::Event {
                    text: "the caller has been silent for 8 s".into(),
                },
            ],
            tools: vec![],
        };
        let v = serde_json::to_value(chat_messages(&conversation)).unwrap();
        assert_eq!(
            v,
            json!([
                {"role": "system", "content": "Be brief."},
                {"role": "user", "content": "Hi, I need a table."},
                {"role": "assistant", "content": "Sure, for how"},
                {"role": "user", "content": "Four people.\n[The caller pressed on the keypad: 4#]"},
                {"role": "assistant", "tool_calls": [
                    {"type": "function", "id": "call_1",
                     "function": {"name": "book", "arguments": "{\"people\":4}"}}
                ]},
                {"role": "tool", "tool_call_id": "call_1", "content": "{\"ok\":true}"},
                {"role": "user", "content": "[Call event: the caller has been silent for 8 s]"}
            ])
        );
    }

    #[test]
    fn unmatched_tool_calls_and_results_are_left_out() {
        let call = |id: &str| ToolCall {
            id: id.into(),
            name: "f".into(),
            arguments: json!({}),
        };
        let conversation = Conversation {
            system: String::new(),
            messages: vec![
                Message::Tool {
                    call_id: "early".into(),
                    content: "x".into(),
                },
                Message::Assistant {
                    text: "One moment.".into(),
                    interrupted: true,
                    tool_calls: vec![call("a"), call("b")],
                },
                Message::Tool {
                    call_id: "a".into(),
                    content: "ok".into(),
                },
                Message::Assistant {
                    text: String::new(),
                    interrupted: true,
                    tool_calls: vec![call("c")],
                },
                Message::Tool {
                    call_id: "early".into(),
                    content: "y".into(),
                },
            ],
            tools: vec![],
        };
        let v = serde_json::to_value(chat_messages(&conversation)).unwrap();
        assert_eq!(
            v,
            json!([
                {"role": "assistant", "content": "One moment.", "tool_calls": [
                    {"type": "function", "id": "a", "function": {"name": "f", "arguments": "{}"}}
                ]},
                {"role": "tool", "tool_call_id": "a", "content": "ok"}
            ])
        );
    }

    #[test]
    fn tools_become_function_tools() {
        let tools = [ToolSpec {
            name: "transfer".into(),
            description: "Transfer the call".into(),
            parameters: json!({"type": "object", "properties": {"to": {"type": "string"}}}),
        }];
        let v = serde_json::to_value(chat_tools(&tools)).unwrap();
        assert_eq!(
            v,
            json!([{"type": "function", "function": {
                "name": "transfer", "description": "Transfer the call",
                "parameters": {"type": "object", "properties": {"to": {"type": "string"}}}
            }}])
        );
        assert!(chat_tools(&[]).is_none());
    }
}
