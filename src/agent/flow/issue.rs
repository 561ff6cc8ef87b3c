//! Problems with a flow, each at the path of the field at fault, and the
//! entry points that read a flow from JSON.

use std::fmt;

use serde_json::Value;

use super::compile::Flow;
use super::def::FlowDef;

/// One problem with a flow definition. `path` is dotted from the agent's
/// `model` object (`flow.nodes.3.next`), so the API can put `model.` in
/// front and answer with a 422 that points at the field.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Issue {
    /// Where: `flow`, `flow.start`, `flow.nodes.3.choices.0.next`…
    pub path: String,
    /// What is wrong, for a person.
    pub message: String,
}

impl Issue {
    /// A problem at `path`.
    pub fn new(path: impl Into<String>, message: impl Into<String>) -> Self {
        Issue {
            path: path.into(),
            message: message.into(),
        }
    }

    /// The path as segments (`["flow", "nodes", "3", "next"]`).
    pub fn segments(&self) -> Vec<String> {
        self.path.split('.').map(str::to_owned).collect()
    }
}

impl fmt::Display for Issue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.path, self.message)
    }
}

/// Reads a flow definition from JSON (the value of `model.flow`), with
/// the path of the field that does not fit. serde stops at the first such
/// field; everything it accepts is then checked in full by
/// [`validate`](super::validate).
pub fn parse(value: &Value) -> Result<FlowDef, Vec<Issue>> {
    // serde would also read a struct from an array of its fields; the
    // format is objects.
    if !value.is_object() {
        return Err(vec![Issue::new("flow", "must be a JSON object")]);
    }
    if let Some(nodes) = value.get("nodes").and_then(Value::as_array) {
        let not_objects: Vec<Issue> = nodes
            .iter()
            .enumerate()
            .filter(|(_, n)| !n.is_object())
            .map(|(i, _)| Issue::new(format!("flow.nodes.{i}"), "must be a JSON object"))
            .collect();
        if !not_objects.is_empty() {
            return Err(not_objects);
        }
    }
    serde_path_to_error::deserialize(value).map_err(|e| {
        use serde_path_to_error::Segment;
        let mut path = vec!["flow".to_owned()];
        for seg in e.path().iter() {
            match seg {
                Segment::Seq { index } => path.push(index.to_string()),
                Segment::Map { key } => path.push(key.clone()),
                Segment::Enum { variant } => path.push(variant.clone()),
                Segment::Unknown => {}
            }
        }
        let mut message = e.inner().to_string();
        if let Some(rest) = message.strip_prefix("missing field `")
            && let Some(end) = rest.find('`')
        {
            path.push(rest[..end].to_owned());
            message = "required".to_owned();
        }
        vec![Issue::new(path.join("."), message)]
    })
}

/// The problems with an agent's `model` object when it asks for a flow
/// (`{"provider": "flow", "flow": {…}}`); none for other providers. The
/// paths start at `flow`.
pub fn check_model(model: &Value) -> Vec<Issue> {
    if model.get("provider").and_then(Value::as_str) != Some("flow") {
        return Vec::new();
    }
    match model.get("flow") {
        None | Some(Value::Null) => vec![Issue::new(
            "flow",
            "required when provider is flow: the flow definition",
        )],
        Some(v) => Flow::from_json(v).err().unwrap_or_default(),
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn type_errors_name_the_field() {
        let e = parse(&json!({"start": "a", "nodes": [{"id": "a", "type": "say", "retries": -1}]}))
            .unwrap_err();
        assert_eq!(e[0].path, "flow.nodes.0.retries");
        let e = parse(&json!({"start": "a", "nodes": [{"id": "a", "type": "shout"}]})).unwrap_err();
        assert_eq!(e[0].path, "flow.nodes.0.type");
        assert!(e[0].message.contains("unknown variant `shout`"), "{}", e[0]);
        let e = parse(&json!({"start": "a", "nodes": [{"id": "a", "colour": "red"}]})).unwrap_err();
        assert_eq!(e[0].path, "flow.nodes.0.colour");
        assert!(e[0].message.contains("unknown field"), "{}", e[0]);
        let e = parse(&json!({"start": "a", "nodes": [{"id": "a", "type": "ask",
            "choices": [{"keywords": "yes"}]}]}))
        .unwrap_err();
        assert_eq!(e[0].path, "flow.nodes.0.choices.0.keywords");
        let e = parse(&json!([])).unwrap_err();
        assert_eq!(e[0].path, "flow");
        let e = parse(&json!({"nodes": [{"id": "a"}, ["b", "say"]]})).unwrap_err();
        assert_eq!(e[0].path, "flow.nodes.1");
    }

    #[test]
    fn check_model_only_reads_flows() {
        assert!(check_model(&json!({"provider": "openai", "model": "x"})).is_empty());
        assert!(check_model(&json!({})).is_empty());
        let e = check_model(&json!({"provider": "flow"}));
        assert_eq!(e[0].path, "flow");
        let e = check_model(&json!({"provider": "flow", "flow": {"start": "x", "nodes": []}}));
        assert!(e.iter().any(|i| i.path == "flow.nodes"), "{e:?}");
        let ok = json!({"provider": "flow", "flow": {"start": "bye", "nodes": [
            {"id": "bye", "type": "hangup", "text": "Bye.", "outcome": "achieved"}]}});
        assert_eq!(check_model(&ok), []);
        assert_eq!(
            Issue::new("flow.nodes.3.next", "x").segments(),
            ["flow", "nodes", "3", "next"]
        );
    }
}
