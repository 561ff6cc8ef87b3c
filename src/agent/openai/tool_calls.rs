//! Streamed tool-call deltas put back together.
//!
//! A chat-completion stream sends each tool call in pieces: the first delta
//! of a call carries its `index`, `id` and function name, later ones only
//! the `index` and the next fragment of the JSON arguments. Several calls
//! may interleave. Compatible servers vary: Ollama sends each call whole in
//! one delta, some omit `index` (then a new `id` starts a new call), some
//! omit `id` (one is made up so the tool result can still refer to it).

use std::collections::BTreeMap;

use serde::Deserialize;
use serde_json::Value;

use crate::agent::provider::ToolCall;

/// One tool-call delta as it arrives (lenient: every field optional).
#[derive(Debug, Clone, Default, Deserialize)]
pub(crate) struct ToolCallDelta {
    #[serde(default)]
    pub index: Option<u32>,
    #[serde(default)]
    pub id: Option<String>,
    #[serde(default)]
    pub function: Option<FunctionDelta>,
}

/// The function part of a [`ToolCallDelta`].
#[derive(Debug, Clone, Default, Deserialize)]
pub(crate) struct FunctionDelta {
    #[serde(default)]
    pub name: Option<String>,
    /// Some servers send the arguments as an object rather than a string.
    #[serde(default)]
    pub arguments: Option<Value>,
}

#[derive(Debug, Default)]
struct Partial {
    id: String,
    name: String,
    arguments: String,
}

/// Collects the deltas of one reply.
#[derive(Debug, Default)]
pub(crate) struct ToolCallAccumulator {
    calls: BTreeMap<u32, Partial>,
    /// The index the last delta went to, for deltas without one.
    last: Option<u32>,
}

impl ToolCallAccumulator {
    /// Adds one delta.
    pub fn push(&mut self, delta: ToolCallDelta) {
        let id = delta.id.filter(|s| !s.is_empty());
        let index = match delta.index {
            Some(i) => i,
            None => {
                let same = match (self.last, &id) {
                    (Some(last), Some(id)) => self.calls[&last].id == *id,
                    (Some(_), None) => true,
                    (None, _) => false,
                };
                match self.last {
                    Some(last) if same => last,
                    _ => self.calls.keys().next_back().map_or(0, |k| k + 1),
                }
            }
        };
        self.last = Some(index);
        let call = self.calls.entry(index).or_default();
        if let Some(id) = id
            && call.id.is_empty()
        {
            call.id = id;
        }
        if let Some(f) = delta.function {
            if let Some(name) = f.name {
                call.name.push_str(&name);
            }
            match f.arguments {
                Some(Value::String(fragment)) => call.arguments.push_str(&fragment),
                Some(Value::Null) | None => {}
                Some(whole) => call.arguments.push_str(&whole.to_string()),
            }
        }
    }

    /// The complete calls, in index order, or why one is unusable.
    pub fn finish(self) -> Result<Vec<ToolCall>, String> {
        self.calls
            .into_iter()
            .map(|(index, p)| {
                let name = p.name.trim().to_owned();
                if name.is_empty() {
                    return Err(format!("tool call {index} has no function name"));
                }
                let arguments = parse_arguments(&p.arguments)
                    .map_err(|e| format!("tool call {index} ({name}): {e}"))?;
                let id = if p.id.is_empty() {
                    format!("call_{index}")
                } else {
                    p.id
                };
                Ok(ToolCall {
                    id,
                    name,
                    arguments,
                })
            })
            .collect()
    }
}

/// The arguments as a JSON object: empty means none, and a JSON string
/// that itself holds an object (some models encode twice) is unwrapped.
fn parse_arguments(raw: &str) -> Result<Value, String> {
    let raw = raw.trim();
    if raw.is_empty() {
        return Ok(Value::Object(Default::default()));
    }
    let value: Value = serde_json::from_str(raw).map_err(|e| {
        format!(
            "arguments are not valid JSON ({e}): {}",
            super::http::shorten(raw)
        )
    })?;
    match value {
        Value::Object(_) => Ok(value),
        Value::String(inner) => match serde_json::from_str::<Value>(&inner) {
            Ok(v @ Value::Object(_)) => Ok(v),
            _ => Err(format!(
                "arguments are not a JSON object: {}",
                super::http::shorten(raw)
            )),
        },
        _ => Err(format!(
            "arguments are not a JSON object: {}",
            super::http::shorten(raw)
        )),
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn delta(v: Value) -> ToolCallDelta {
        serde_json::from_value(v).unwrap()
    }

    #[test]
    fn interleaved_fragments_are_joined_per_index() {
        let mut acc = ToolCallAccumulator::default();
        for d in [
            json!({"index": 0, "id": "call_a", "type": "function", "function": {"name": "lookup", "arguments": ""}}),
            json!({"index": 0, "function": {"arguments": "{\"cit"}}),
            json!({"index": 1, "id": "call_b", "function": {"name": "hang_up", "arguments": "{}"}}),
            json!({"index": 0, "function": {"arguments": "y\": \"Pa"}}),
            json!({"index": 0, "function": {"arguments": "ris\"}"}}),
        ] {
            acc.push(delta(d));
        }
        let calls = acc.finish().unwrap();
        assert_eq!(
            calls,
            vec![
                ToolCall {
                    id: "call_a".into(),
                    name: "lookup".into(),
                    arguments: json!({"city": "Paris"}),
                },
                ToolCall {
                    id: "call_b".into(),
                    name: "hang_up".into(),
                    arguments: json!({}),
                },
            ]
        );
    }

    #[test]
    fn missing_index_follows_ids_and_missing_id_is_made_up() {
        let mut acc = ToolCallAccumulator::default();
        acc.push(delta(
            json!({"id": "x", "function": {"name": "a", "arguments": "{\"n\":"}}),
        ));
        acc.push(delta(json!({"function": {"arguments": "1}"}})));
        acc.push(delta(
            json!({"id": "y", "function": {"name": "b", "arguments": {"m": 2}}}),
        ));
        acc.push(delta(json!({"index": 5, "function": {"name": "c"}})));
        let calls = acc.finish().unwrap();
        assert_eq!(calls.len(), 3);
        assert_eq!(
            (calls[0].id.as_str(), &calls[0].arguments),
            ("x", &json!({"n": 1}))
        );
        assert_eq!(
            (calls[1].id.as_str(), &calls[1].arguments),
            ("y", &json!({"m": 2}))
        );
        assert_eq!(
            (calls[2].id.as_str(), calls[2].name.as_str()),
            ("call_5", "c")
        );
    }

    #[test]
    fn bad_arguments_are_reported_and_double_encoding_unwrapped() {
        assert_eq!(parse_arguments(r#""{\"a\":1}""#).unwrap(), json!({"a": 1}));
        assert!(
            parse_arguments("{\"a\":")
                .unwrap_err()
                .contains("not valid JSON")
        );
        assert!(
            parse_arguments("[1]")
                .unwrap_err()
                .contains("not a JSON object")
        );
        let mut acc = ToolCallAccumulator::default();
        acc.push(delta(json!({"index": 0, "function": {"arguments": "{}"}})));
        assert!(acc.finish().unwrap_err().contains("no function name"));
    }
}
