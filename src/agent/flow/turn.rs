//! What goes into a turn (the messages since the last one) and what comes
//! out (words, tool calls, then `Done`).

use serde_json::Value;

use super::normalize::{has_words, strip_annotations};
use super::sentences::sentences;
use crate::agent::provider::{BrainEvent, Message, ProviderError, ToolCall};

/// Most keys held while waiting for the rest of an entry.
pub(super) const MAX_KEYED: usize = 64;

/// What one turn says and does.
#[derive(Debug, Default, Clone, PartialEq)]
pub(super) struct Reply {
    /// Texts to say, in order.
    pub texts: Vec<String>,
    /// Tool calls, after the texts.
    pub tools: Vec<ToolCall>,
    /// The flow could not go on.
    pub error: Option<String>,
}

impl Reply {
    pub fn say(&mut self, text: String) {
        if !text.trim().is_empty() {
            self.texts.push(text);
        }
    }

    /// The events of a reply stream: one `Text` per sentence (with the
    /// space before the next), the tool calls, then `Done`.
    pub fn into_events(self) -> Vec<BrainEvent> {
        let all: Vec<String> = self.texts.iter().flat_map(|t| sentences(t)).collect();
        let n = all.len();
        let mut events: Vec<BrainEvent> = all
            .into_iter()
            .enumerate()
            .map(|(i, s)| BrainEvent::Text(if i + 1 < n { format!("{s} ") } else { s }))
            .collect();
        events.extend(self.tools.into_iter().map(BrainEvent::ToolCall));
        events.push(match self.error {
            Some(e) => BrainEvent::Error(ProviderError::new("flow", e, false)),
            None => BrainEvent::Done,
        });
        events
    }
}

/// What the turn's new messages hold.
#[derive(Debug, Default)]
pub(super) struct Input<'a> {
    /// Transcripts with words in them, in order, without annotations.
    pub speech: Vec<String>,
    /// Keys pressed, in order.
    pub dtmf: String,
    /// The caller side did something: spoke (even nothing STT could
    /// read), keyed, or an event such as silence was reported.
    pub caller: bool,
    /// Tool results by call id.
    pub results: Vec<(&'a str, &'a str)>,
    /// Ids of tool calls the pipeline recorded as made.
    pub issued: Vec<&'a str>,
}

impl<'a> Input<'a> {
    pub fn read(messages: &'a [Message]) -> Self {
        let mut input = Input::default();
        for m in messages {
            match m {
                Message::User { text } => {
                    input.caller = true;
                    let text = strip_annotations(text);
                    if has_words(&text) {
                        input.speech.push(text);
                    }
                }
                Message::Dtmf { digits } => {
                    input.caller = true;
                    let room = MAX_KEYED.saturating_sub(input.dtmf.len());
                    input.dtmf.extend(
                        digits
                            .chars()
                            .map(|c| c.to_ascii_uppercase())
                            .filter(|c| c.is_ascii_digit() || matches!(c, '*' | '#' | 'A'..='D'))
                            .take(room),
                    );
                }
                Message::Event { .. } => input.caller = true,
                Message::Tool { call_id, content } => input.results.push((call_id, content)),
                Message::Assistant { tool_calls, .. } => {
                    input
                        .issued
                        .extend(tool_calls.iter().map(|c| c.id.as_str()));
                }
            }
        }
        input
    }

    pub fn speech(&self) -> String {
        self.speech.join(" ")
    }

    pub fn result(&self, id: &str) -> Option<&'a str> {
        self.results.iter().find(|(c, _)| *c == id).map(|(_, r)| *r)
    }

    pub fn issued(&self, id: &str) -> bool {
        self.issued.contains(&id)
    }
}

/// Whether a tool result reports a failure: a JSON object with `ok` or
/// `success` false, a non-null `error`, or a `status` of `failed`,
/// `error`, `busy`, `no_answer` or `rejected`; `false`; or text starting
/// with "error" or "fail".
pub(super) fn tool_failed(content: &str) -> bool {
    match serde_json::from_str::<Value>(content) {
        Ok(Value::Object(m)) => {
            let flag_false = |k: &str| m.get(k).and_then(Value::as_bool) == Some(false);
            let error = m
                .get("error")
                .is_some_and(|e| !e.is_null() && *e != Value::Bool(false));
            let status = m.get("status").and_then(Value::as_str).is_some_and(|s| {
                matches!(
                    s.to_ascii_lowercase().as_str(),
                    "failed" | "error" | "busy" | "no_answer" | "rejected"
                )
            });
            flag_false("ok") || flag_false("success") || error || status
        }
        Ok(Value::Bool(b)) => !b,
        Ok(_) => false,
        Err(_) => {
            let t = content.trim_start().to_ascii_lowercase();
            t.starts_with("error") || t.starts_with("fail")
        }
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn tool_failures() {
        for f in [
            r#"{"ok": false}"#,
            r#"{"error": "busy"}"#,
            r#"{"status": "no_answer"}"#,
            r#"{"success": false}"#,
            "false",
            "Error: no route",
            "failed to transfer",
        ] {
            assert!(tool_failed(f), "{f}");
        }
        for ok in [
            r#"{"ok": true}"#,
            r#"{"status": "transferred"}"#,
            r#"{"error": null}"#,
            "ok",
            "",
            "true",
        ] {
            assert!(!tool_failed(ok), "{ok}");
        }
    }

    #[test]
    fn replies_stream_sentence_by_sentence() {
        let reply = Reply {
            texts: vec!["Hello! Welcome.".into(), "Name?".into()],
            tools: vec![ToolCall {
                id: "t".into(),
                name: "end_call".into(),
                arguments: json!({}),
            }],
            error: None,
        };
        let ev = reply.into_events();
        assert_eq!(
            ev[..3],
            [
                BrainEvent::Text("Hello! ".into()),
                BrainEvent::Text("Welcome. ".into()),
                BrainEvent::Text("Name?".into()),
            ]
        );
        assert!(matches!(&ev[3], BrainEvent::ToolCall(c) if c.name == "end_call"));
        assert_eq!(ev[4], BrainEvent::Done);
        assert_eq!(ev.len(), 5);
    }
}
