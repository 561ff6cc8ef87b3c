//! HTTP tools an agent declares for its brain: each is a JSON object in
//! the agent's `tools` array,
//!
//! ```json
//! {"type": "http", "name": "lookup_order", "description": "Finds an order.",
//!  "parameters": {"type": "object", "properties": {"number": {"type": "string"}}},
//!  "url": "https://example.com/tools/order", "timeout_ms": 5000, "secret": "…"}
//! ```
//!
//! [`parse_tools`] turns the array into [`HttpTool`]s (the [`ToolSpec`]
//! offered to the brain and what running it takes), and [`check_tools`]
//! lists what is wrong with one, by field path (`tools.0.url`), for the
//! API's 422s. Running a tool is in [`run`].

pub mod run;

use std::collections::HashSet;
use std::fmt;
use std::time::Duration;

use serde_json::{Map, Value, json};

use crate::agent::provider::ToolSpec;

pub use run::{MAX_RESPONSE_BYTES, ToolResult};

/// Names of the built-in call tools, which a declared tool may not take.
pub const RESERVED_NAMES: [&str; 3] = ["end_call", "transfer_call", "send_dtmf"];
/// Bounds of `timeout_ms`: long enough for a real lookup, short enough
/// that a caller is not left in silence.
pub const TIMEOUT_MS: std::ops::RangeInclusive<u64> = 100..=30_000;
/// `timeout_ms` when the declaration leaves it out.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_millis(5_000);
/// Most tools one agent may declare: each one's schema is sent to the
/// model on every turn.
pub const MAX_TOOLS: usize = 32;

const MAX_DESCRIPTION: usize = 1_024;
const MAX_URL: usize = 2_048;
const MAX_SECRET: usize = 256;
/// A schema is sent to the model on every turn; a huge one is a mistake.
const MAX_PARAMETERS_BYTES: usize = 16 * 1024;
const FIELDS: [&str; 7] = [
    "type",
    "name",
    "description",
    "parameters",
    "url",
    "timeout_ms",
    "secret",
];

/// One declared HTTP tool, ready to run.
#[derive(Clone, PartialEq)]
pub struct HttpTool {
    /// What the brain is offered.
    pub spec: ToolSpec,
    /// Where the call is POSTed (http or https).
    pub url: reqwest::Url,
    /// The whole request, from connecting to the last byte of the answer.
    pub timeout: Duration,
    /// The HMAC key the request is signed with; unsigned when `None`.
    secret: Option<String>,
}

impl fmt::Debug for HttpTool {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // The secret stays out of logs.
        f.debug_struct("HttpTool")
            .field("name", &self.spec.name)
            .field("url", &self.url.as_str())
            .field("timeout", &self.timeout)
            .field("signed", &self.secret.is_some())
            .finish()
    }
}

impl HttpTool {
    /// The key requests are signed with, if any.
    pub fn secret(&self) -> Option<&str> {
        self.secret.as_deref()
    }
}

/// What is wrong with a declaration: (field path, message) pairs, e.g.
/// `("tools.0.url", "must be an absolute http:// or https:// URL")`.
pub type Problems = Vec<(String, String)>;

/// Lists what is wrong with an agent's `tools` value (empty when it is
/// fine), with paths rooted at `tools`.
pub fn check_tools(value: &Value) -> Problems {
    match parse_tools(value, None) {
        Ok(_) => Vec::new(),
        Err(p) => p,
    }
}

/// Parses an agent's `tools` array. A tool without its own `secret` is
/// signed with `default_secret` (the organization's or agent's signing
/// secret), and sent unsigned when both are absent.
pub fn parse_tools(value: &Value, default_secret: Option<&str>) -> Result<Vec<HttpTool>, Problems> {
    let mut problems = Problems::new();
    let Some(items) = value.as_array() else {
        return Err(vec![("tools".into(), "must be a JSON array".into())]);
    };
    if items.len() > MAX_TOOLS {
        problems.push((
            "tools".into(),
            format!("must have at most {MAX_TOOLS} tools"),
        ));
    }
    let mut tools = Vec::new();
    let mut names = HashSet::new();
    for (i, item) in items.iter().enumerate() {
        let path = format!("tools.{i}");
        if let Some(tool) = parse_one(&path, item, default_secret, &mut problems) {
            if !names.insert(tool.spec.name.clone()) {
                problems.push((
                    format!("{path}.name"),
                    "is already used by another tool".into(),
                ));
            }
            tools.push(tool);
        }
    }
    if problems.is_empty() {
        Ok(tools)
    } else {
        Err(problems)
    }
}

fn parse_one(
    path: &str,
    item: &Value,
    default_secret: Option<&str>,
    problems: &mut Problems,
) -> Option<HttpTool> {
    let Some(obj) = item.as_object() else {
        problems.push((path.to_owned(), "must be a JSON object".into()));
        return None;
    };
    let before = problems.len();
    let mut bad = |field: &str, msg: &str| problems.push((format!("{path}.{field}"), msg.into()));
    for key in obj.keys() {
        if !FIELDS.contains(&key.as_str()) {
            bad(key, "is not a tool field");
        }
    }
    if obj.get("type").and_then(Value::as_str) != Some("http") {
        bad("type", "must be \"http\"");
    }
    let name = obj.get("name").and_then(Value::as_str).unwrap_or("");
    if !valid_name(name) {
        bad("name", "must be 1 to 64 letters, digits, '_' or '-'");
    } else if RESERVED_NAMES.contains(&name) {
        bad("name", "is the name of a built-in tool");
    }
    let description = match obj.get("description") {
        Some(Value::String(d)) if !d.trim().is_empty() && d.chars().count() <= MAX_DESCRIPTION => {
            d.trim().to_owned()
        }
        _ => {
            bad(
                "description",
                &format!("must be a non-empty string of at most {MAX_DESCRIPTION} characters"),
            );
            String::new()
        }
    };
    let parameters = match obj.get("parameters") {
        None => json!({"type": "object", "properties": {}}),
        Some(Value::Object(schema)) => {
            if schema.get("type").is_some_and(|t| t != "object") {
                bad(
                    "parameters.type",
                    "must be \"object\": arguments are an object",
                );
            }
            if Value::Object(schema.clone()).to_string().len() > MAX_PARAMETERS_BYTES {
                bad(
                    "parameters",
                    &format!("must be at most {MAX_PARAMETERS_BYTES} bytes of JSON"),
                );
            }
            let mut schema: Map<String, Value> = schema.clone();
            schema
                .entry("type")
                .or_insert_with(|| Value::String("object".into()));
            Value::Object(schema)
        }
        Some(_) => {
            bad("parameters", "must be a JSON Schema object");
            Value::Null
        }
    };
    let url = match obj.get("url").and_then(Value::as_str).map(check_url) {
        Some(Ok(u)) => Some(u),
        Some(Err(msg)) => {
            bad("url", msg);
            None
        }
        None => {
            bad("url", "must be an absolute http:// or https:// URL");
            None
        }
    };
    let timeout = match obj.get("timeout_ms") {
        None => DEFAULT_TIMEOUT,
        Some(v) => match v.as_u64().filter(|ms| TIMEOUT_MS.contains(ms)) {
            Some(ms) => Duration::from_millis(ms),
            None => {
                bad(
                    "timeout_ms",
                    &format!(
                        "must be an integer from {} to {}",
                        TIMEOUT_MS.start(),
                        TIMEOUT_MS.end()
                    ),
                );
                DEFAULT_TIMEOUT
            }
        },
    };
    let secret = match obj.get("secret") {
        None => default_secret.map(str::to_owned),
        Some(Value::String(s)) if !s.is_empty() && s.len() <= MAX_SECRET => Some(s.clone()),
        Some(_) => {
            bad(
                "secret",
                &format!("must be a non-empty string of at most {MAX_SECRET} bytes"),
            );
            None
        }
    };
    if problems.len() > before {
        return None;
    }
    Some(HttpTool {
        spec: ToolSpec {
            name: name.to_owned(),
            description,
            parameters,
        },
        url: url?,
        timeout,
        secret,
    })
}

fn valid_name(name: &str) -> bool {
    (1..=64).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}

fn check_url(raw: &str) -> Result<reqwest::Url, &'static str> {
    const ABSOLUTE: &str = "must be an absolute http:// or https:// URL";
    if raw.len() > MAX_URL {
        return Err("must be at most 2048 characters");
    }
    let url = reqwest::Url::parse(raw).map_err(|_| ABSOLUTE)?;
    if !matches!(url.scheme(), "http" | "https") || url.host_str().is_none_or(str::is_empty) {
        return Err(ABSOLUTE);
    }
    // Credentials in the URL would end up in logs; the signature is the
    // way a tool knows the request is Hotline's.
    if !url.username().is_empty() || url.password().is_some() {
        return Err("must not carry a user name or password");
    }
    Ok(url)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tool() -> Value {
        json!({
            "type": "http",
            "name": "lookup_order",
            "description": "Finds an order by its number.",
            "parameters": {"type": "object", "properties": {"number": {"type": "string"}}, "required": ["number"]},
            "url": "https://tools.example.com/order?v=1",
            "timeout_ms": 2500
        })
    }

    fn paths(p: &Problems) -> Vec<&str> {
        p.iter().map(|(path, _)| path.as_str()).collect()
    }

    #[test]
    fn a_full_declaration_parses() {
        let tools = parse_tools(&json!([tool()]), Some("whsec_org")).unwrap();
        assert_eq!(tools.len(), 1);
        let t = &tools[0];
        assert_eq!(t.spec.name, "lookup_order");
        assert_eq!(t.spec.description, "Finds an order by its number.");
        assert_eq!(t.spec.parameters["required"], json!(["number"]));
        assert_eq!(t.url.as_str(), "https://tools.example.com/order?v=1");
        assert_eq!(t.timeout, Duration::from_millis(2500));
        // No secret of its own: the default one signs it.
        assert_eq!(t.secret(), Some("whsec_org"));
        assert!(check_tools(&json!([tool()])).is_empty());
        assert!(check_tools(&json!([])).is_empty());
    }

    #[test]
    fn defaults_and_its_own_secret() {
        let mut t = tool();
        let o = t.as_object_mut().unwrap();
        o.remove("parameters");
        o.remove("timeout_ms");
        o.insert("secret".into(), json!("tool_secret"));
        o.insert("url".into(), json!("http://127.0.0.1:8080/hook"));
        let tools = parse_tools(&json!([t]), Some("whsec_org")).unwrap();
        assert_eq!(tools[0].timeout, DEFAULT_TIMEOUT);
        assert_eq!(tools[0].secret(), Some("tool_secret"));
        assert_eq!(tools[0].spec.parameters["type"], "object");
        // Neither secret: unsigned.
        let mut t = tool();
        t.as_object_mut().unwrap().remove("secret");
        assert_eq!(parse_tools(&json!([t]), None).unwrap()[0].secret(), None);
        // The secret never shows in Debug output.
        let mut t = tool();
        t["secret"] = json!("s3cr3t");
        let dbg = format!("{:?}", parse_tools(&json!([t]), None).unwrap());
        assert!(!dbg.contains("s3cr3t"), "{dbg}");
    }

    #[test]
    fn each_bad_field_is_named_by_its_path() {
        let cases: Vec<(Value, &str)> = vec![
            (json!({"type": "grpc"}), "tools.0.type"),
            (json!({"name": ""}), "tools.0.name"),
            (json!({"name": "has space"}), "tools.0.name"),
            (json!({"name": "x".repeat(65)}), "tools.0.name"),
            (json!({"name": "end_call"}), "tools.0.name"),
            (json!({"name": "transfer_call"}), "tools.0.name"),
            (json!({"name": "send_dtmf"}), "tools.0.name"),
            (json!({"description": " "}), "tools.0.description"),
            (json!({"description": 3}), "tools.0.description"),
            (json!({"parameters": []}), "tools.0.parameters"),
            (
                json!({"parameters": {"type": "string"}}),
                "tools.0.parameters.type",
            ),
            (json!({"url": "ftp://example.com/x"}), "tools.0.url"),
            (json!({"url": "file:///etc/passwd"}), "tools.0.url"),
            (json!({"url": "example.com/x"}), "tools.0.url"),
            (
                json!({"url": "https://user:pw@example.com/"}),
                "tools.0.url",
            ),
            (json!({"url": 5}), "tools.0.url"),
            (json!({"timeout_ms": 50}), "tools.0.timeout_ms"),
            (json!({"timeout_ms": 30_001}), "tools.0.timeout_ms"),
            (json!({"timeout_ms": "5000"}), "tools.0.timeout_ms"),
            (json!({"secret": ""}), "tools.0.secret"),
            (json!({"secret": 7}), "tools.0.secret"),
            (json!({"method": "GET"}), "tools.0.method"),
        ];
        for (patch, want) in cases {
            let mut t = tool();
            for (k, v) in patch.as_object().unwrap() {
                t[k] = v.clone();
            }
            let problems = check_tools(&json!([t]));
            assert_eq!(paths(&problems), [want], "{patch}: {problems:?}");
        }
        // Missing required fields.
        for field in ["type", "name", "description", "url"] {
            let mut t = tool();
            t.as_object_mut().unwrap().remove(field);
            let problems = check_tools(&json!([t]));
            assert_eq!(paths(&problems), [format!("tools.0.{field}")], "{field}");
        }
    }

    #[test]
    fn the_array_itself_is_checked() {
        assert_eq!(paths(&check_tools(&json!({}))), ["tools"]);
        assert_eq!(paths(&check_tools(&json!([1, tool()]))), ["tools.0"]);
        // Names are unique; the second use is the problem.
        let p = check_tools(&json!([tool(), tool()]));
        assert_eq!(paths(&p), ["tools.1.name"]);
        let many: Vec<Value> = (0..=MAX_TOOLS)
            .map(|i| {
                let mut t = tool();
                t["name"] = json!(format!("t{i}"));
                t
            })
            .collect();
        assert_eq!(paths(&check_tools(&Value::Array(many))), ["tools"]);
        // Several problems in one tool are all reported.
        let p = check_tools(&json!([{"type": "http"}]));
        assert_eq!(
            paths(&p),
            ["tools.0.name", "tools.0.description", "tools.0.url"]
        );
    }
}
