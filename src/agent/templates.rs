//! Prompt templates for AI numbers and calls (`GET /v1/prompt-templates`):
//! system prompts and greetings written for real small businesses, with
//! `[UPPER_SNAKE]` placeholders for the owner to fill in.
//!
//! The texts live in `templates.toml` beside this file, compiled in and
//! parsed once. The phone rules every prompt needs (short sentences, one
//! question at a time, spell names back, never invent prices, emergencies)
//! are written once there and appended here to each template of their
//! direction, so a template's `system_prompt` is complete and can be used
//! as an agent's prompt as it is. A template's placeholders are read from
//! its text, so the list cannot drift from the prompt.

use std::collections::BTreeMap;
use std::sync::LazyLock;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};

/// The template texts.
const SOURCE: &str = include_str!("templates.toml");

/// Which way the calls a template is for go.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Direction {
    /// Calls to the business's number.
    Inbound,
    /// Calls the agent places.
    Outbound,
}

impl Direction {
    /// The name as the API spells it.
    pub fn as_str(self) -> &'static str {
        match self {
            Direction::Inbound => "inbound",
            Direction::Outbound => "outbound",
        }
    }
}

/// The kind of value a report field holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum FieldType {
    /// Free text.
    String,
    /// A phone number as the caller gave it.
    Phone,
    /// Yes or no.
    Boolean,
    /// One of the field's `values`.
    Enum,
}

/// One piece of structured data a call's report should capture.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ReportField {
    /// Field name, `lower_snake`.
    pub name: String,
    /// The kind of value.
    #[serde(rename = "type")]
    pub kind: FieldType,
    /// What it holds, for the extraction model and for people.
    pub description: String,
    /// The allowed values of an `enum` field.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub values: Option<Vec<String>>,
}

/// A placeholder a template uses, and what to put there.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct Placeholder {
    /// As it appears in the text, brackets included (`[BUSINESS_NAME]`).
    pub token: String,
    /// What to replace it with.
    pub description: String,
}

/// A prompt template, ready to serve.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Template {
    /// Slug (`receptionist`, `lead-qualifier`, …).
    pub id: String,
    /// Display name.
    pub name: String,
    /// Inbound or outbound calls.
    pub direction: Direction,
    /// What it does.
    pub description: String,
    /// The kind of business it was written for.
    pub example: String,
    /// The whole system prompt, phone rules included.
    pub system_prompt: String,
    /// What the agent says first.
    pub first_message: String,
    /// Every placeholder in the prompt and first message, in order of
    /// first appearance.
    pub placeholders: Vec<Placeholder>,
    /// A sensible call length limit for this kind of call.
    pub max_duration_secs: u32,
    /// What a report of such a call should capture.
    pub report_fields: Vec<ReportField>,
}

impl Template {
    /// [`Template::report_fields`] as a JSON Schema object, the shape an
    /// agent's `model.structured_data_schema` takes.
    pub fn structured_data_schema(&self) -> Value {
        let mut props = Map::new();
        for f in &self.report_fields {
            let mut p = match f.kind {
                FieldType::String | FieldType::Phone => json!({"type": "string"}),
                FieldType::Boolean => json!({"type": "boolean"}),
                FieldType::Enum => {
                    json!({"type": "string", "enum": f.values.clone().unwrap_or_default()})
                }
            };
            p["description"] = Value::String(f.description.clone());
            props.insert(f.name.clone(), p);
        }
        json!({"type": "object", "properties": props})
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Source {
    phone_rules: PhoneRules,
    placeholders: BTreeMap<String, String>,
    template: Vec<RawTemplate>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct PhoneRules {
    inbound: String,
    outbound: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawTemplate {
    id: String,
    name: String,
    direction: Direction,
    description: String,
    example: String,
    max_duration_secs: u32,
    first_message: String,
    system_prompt: String,
    #[serde(default)]
    report_fields: Vec<ReportField>,
}

/// Why the template file is not acceptable.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("templates.toml: {0}")]
pub struct TemplateError(String);

static TEMPLATES: LazyLock<Vec<Template>> = LazyLock::new(|| {
    // The file is compiled in and checked by the unit tests, so a failure
    // here is a build that skipped them.
    parse(SOURCE).expect("the compiled-in templates parse")
});

/// Every template, inbound first, in the file's order.
pub fn all() -> &'static [Template] {
    &TEMPLATES
}

/// The template `id`.
pub fn get(id: &str) -> Option<&'static Template> {
    all().iter().find(|t| t.id == id)
}

/// Parses and checks a template file.
fn parse(source: &str) -> Result<Vec<Template>, TemplateError> {
    let src: Source = toml::from_str(source).map_err(|e| TemplateError(e.to_string()))?;
    let mut out: Vec<Template> = Vec::with_capacity(src.template.len());
    for raw in src.template {
        let err = |m: String| TemplateError(format!("template {}: {m}", raw.id));
        if !is_slug(&raw.id) {
            return Err(err("id must be a lower-case slug".into()));
        }
        if out.iter().any(|t| t.id == raw.id) {
            return Err(err("id is used twice".into()));
        }
        let rules = match raw.direction {
            Direction::Inbound => &src.phone_rules.inbound,
            Direction::Outbound => &src.phone_rules.outbound,
        };
        let system_prompt = format!("{}\n\n{}", raw.system_prompt.trim(), rules.trim());
        let first_message = raw.first_message.trim().to_owned();
        let mut tokens = placeholders(&system_prompt).map_err(err)?;
        for t in placeholders(&first_message).map_err(err)? {
            if !tokens.contains(&t) {
                tokens.push(t);
            }
        }
        let mut list = Vec::with_capacity(tokens.len());
        for name in tokens {
            let description = src
                .placeholders
                .get(&name)
                .ok_or_else(|| err(format!("placeholder [{name}] is not described")))?;
            list.push(Placeholder {
                token: format!("[{name}]"),
                description: description.clone(),
            });
        }
        for f in &raw.report_fields {
            let snake = !f.name.is_empty()
                && f.name
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_');
            if !snake {
                return Err(err(format!("report field {:?} is not lower_snake", f.name)));
            }
            if (f.kind == FieldType::Enum) != f.values.as_ref().is_some_and(|v| !v.is_empty()) {
                return Err(err(format!(
                    "report field {}: values are given for enum fields only",
                    f.name
                )));
            }
            if f.description.contains('[') {
                return Err(err(format!("report field {}: brackets", f.name)));
            }
        }
        out.push(Template {
            id: raw.id,
            name: raw.name.trim().to_owned(),
            direction: raw.direction,
            description: raw.description.trim().to_owned(),
            example: raw.example.trim().to_owned(),
            system_prompt,
            first_message,
            placeholders: list,
            max_duration_secs: raw.max_duration_secs,
            report_fields: raw.report_fields,
        });
    }
    Ok(out)
}

fn is_slug(s: &str) -> bool {
    !s.is_empty()
        && !s.starts_with('-')
        && !s.ends_with('-')
        && s.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
}

/// The placeholder names in `text`, in order of first appearance, or why
/// its brackets are not all `[UPPER_SNAKE]` pairs.
pub fn placeholders(text: &str) -> Result<Vec<String>, String> {
    let mut names: Vec<String> = Vec::new();
    let mut rest = text;
    while let Some(i) = rest.find(['[', ']']) {
        if rest.as_bytes()[i] == b']' {
            return Err(format!("a ']' without '[' near {:?}", excerpt(rest, i)));
        }
        let after = &rest[i + 1..];
        let Some(end) = after
            .find(['[', ']'])
            .filter(|&e| after.as_bytes()[e] == b']')
        else {
            return Err(format!("a '[' without ']' near {:?}", excerpt(rest, i)));
        };
        let name = &after[..end];
        let upper_snake = name.starts_with(|c: char| c.is_ascii_uppercase())
            && !name.ends_with('_')
            && name
                .bytes()
                .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit() || b == b'_');
        if !upper_snake {
            return Err(format!("[{name}] is not an [UPPER_SNAKE] placeholder"));
        }
        if !names.iter().any(|n| n == name) {
            names.push(name.to_owned());
        }
        rest = &after[end + 1..];
    }
    Ok(names)
}

fn excerpt(s: &str, at: usize) -> String {
    s[at..].chars().take(30).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::agent::model::AgentModel;
    use crate::api::resources::agents::{LONG, SHORT};

    #[test]
    fn every_template_parses_and_fits_the_agent_limits() {
        let all = parse(SOURCE).unwrap();
        assert!(all.len() >= 8, "{}", all.len());
        for t in &all {
            assert!(!t.placeholders.is_empty(), "{} has no placeholders", t.id);
            assert!(t.name.chars().count() <= SHORT, "{}", t.id);
            for text in [&t.system_prompt, &t.first_message] {
                let n = text.chars().count();
                assert!(n > 0 && n <= LONG, "{}: {n} characters", t.id);
                // Balanced [UPPER_SNAKE] placeholders only.
                placeholders(text).unwrap();
            }
            // At least a minute to be useful; within what an agent takes.
            let secs = i64::from(t.max_duration_secs);
            let max = crate::api::resources::agents::MAX_DURATION_SECS;
            assert!((60..=max).contains(&secs), "{}: {secs}", t.id);
            assert!(!t.report_fields.is_empty(), "{}", t.id);
            // The derived schema is one an agent's model accepts.
            let model = json!({"structured_data_schema": t.structured_data_schema()});
            AgentModel::parse(&model).unwrap();
            // The rules every phone prompt needs came along.
            for must in ["one question at a time", "[EMERGENCY_NUMBER]", "end_call"] {
                assert!(t.system_prompt.contains(must), "{}: {must}", t.id);
            }
        }
    }

    #[test]
    fn the_issue_s_templates_are_all_there() {
        let ids = |d: Direction| -> Vec<&str> {
            all()
                .iter()
                .filter(|t| t.direction == d)
                .map(|t| t.id.as_str())
                .collect()
        };
        assert_eq!(
            ids(Direction::Inbound),
            [
                "receptionist",
                "lead-qualifier",
                "appointment-booker",
                "customer-support",
                "call-screener"
            ]
        );
        assert_eq!(
            ids(Direction::Outbound),
            [
                "appointment-booker-outbound",
                "information-request",
                "callback-confirmation"
            ]
        );
        assert_eq!(get("receptionist").unwrap().name, "Receptionist");
        assert!(get("nope").is_none());
    }

    #[test]
    fn placeholders_are_read_from_the_text() {
        let t = get("receptionist").unwrap();
        let tokens: Vec<&str> = t.placeholders.iter().map(|p| p.token.as_str()).collect();
        for want in [
            "[BUSINESS_NAME]",
            "[HOURS]",
            "[SERVICES]",
            "[EMERGENCY_NUMBER]",
        ] {
            assert!(tokens.contains(&want), "{tokens:?}");
        }
        // Each once, in order of appearance, and every one in the text.
        assert_eq!(tokens[0], "[BUSINESS_NAME]");
        let mut sorted = tokens.clone();
        sorted.sort_unstable();
        sorted.dedup();
        assert_eq!(sorted.len(), tokens.len());
        for p in &t.placeholders {
            assert!(
                t.system_prompt.contains(&p.token) || t.first_message.contains(&p.token),
                "{}",
                p.token
            );
            assert!(!p.description.is_empty());
        }
        // Outbound rules bring their own.
        let o = get("callback-confirmation").unwrap();
        assert!(
            o.placeholders
                .iter()
                .any(|p| p.token == "[CALLBACK_NUMBER]")
        );
    }

    #[test]
    fn brackets_must_be_balanced_upper_snake() {
        assert_eq!(
            placeholders("Hi [A] and [B_2], [A] again").unwrap(),
            ["A", "B_2"]
        );
        assert_eq!(placeholders("no brackets").unwrap(), Vec::<String>::new());
        for bad in [
            "[lower]",
            "[UNCLOSED",
            "CLOSED]",
            "[A [B]]",
            "[]",
            "[_X]",
            "[X_]",
            "[TWO WORDS]",
            "[X-Y]",
        ] {
            assert!(placeholders(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn a_bad_file_is_refused_with_the_template_named() {
        let base = r#"
            [phone_rules]
            inbound = "Rules [EMERGENCY_NUMBER]."
            outbound = "Rules."
            [placeholders]
            EMERGENCY_NUMBER = "e"
            [[template]]
            id = "x"
            name = "X"
            direction = "inbound"
            description = "d"
            example = "e"
            max_duration_secs = 60
            first_message = "Hi."
        "#;
        let ok = format!("{base}system_prompt = \"Be nice.\"");
        let t = &parse(&ok).unwrap()[0];
        assert_eq!(t.placeholders[0].token, "[EMERGENCY_NUMBER]");
        let undescribed = format!("{base}system_prompt = \"[OWNER] is out.\"");
        let e = parse(&undescribed).unwrap_err().to_string();
        assert!(e.contains("template x") && e.contains("[OWNER]"), "{e}");
        let unbalanced = format!("{base}system_prompt = \"[OWNER is out.\"");
        assert!(parse(&unbalanced).is_err());
    }

    #[test]
    fn the_schema_follows_the_report_fields() {
        let t = get("call-screener").unwrap();
        let s = t.structured_data_schema();
        assert_eq!(s["type"], "object");
        assert_eq!(s["properties"]["transferred"]["type"], "boolean");
        assert_eq!(s["properties"]["category"]["enum"][0], "vip");
        assert_eq!(s["properties"]["callback_number"]["type"], "string");
    }
}
