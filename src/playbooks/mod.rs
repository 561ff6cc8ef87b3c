//! Playbooks and personas: how an outbound AI call goes about its
//! objective, and who the agent says it is.
//!
//! - A [`Playbook`] is a reusable strategy for a kind of call (booking a
//!   table, asking for a price, negotiating, complaining…): the approach,
//!   behaviour rules, tone, what to capture and what success means. Nine
//!   built-ins ship with the server ([`builtin`]); organizations write
//!   their own or fork a built-in (`/v1/playbooks`).
//! - A [`Persona`] is a reusable caller identity: the name the agent gives,
//!   the company and role it calls for, its voice, language and standing
//!   rules (`/v1/personas`).
//! - [`OutboundDefaults`] are a number's saved settings for the calls it
//!   places (`/v1/numbers/{id}/outbound-defaults`).
//! - [`compose`] turns a playbook, a persona and one call's brief into the
//!   agent's system prompt and the schema of what to extract;
//!   [`classify()`] picks the playbook that fits an objective.
//!
//! The checks here are shared by the API (which reports every problem as
//! a 422 naming the field) and the store (which refuses the first).

pub mod builtin;
pub mod classify;
pub mod compose;
pub mod defaults;
pub mod personas;
pub mod schema;

use serde::Serialize;
use serde_json::Value;

pub use classify::{Classification, ClassifyMethod, classify, classify_keywords, classify_llm};
pub use compose::{
    CallBrief, MAX_PROMPT_CHARS, ResolveError, compose_prompt, effective_schema, infer_schema,
    resolve,
};
pub use defaults::{OutboundDefaults, SavedOutboundDefaults, VoicemailAction};
pub use personas::{NewPersona, Persona, PersonaUpdate};
pub use schema::normalize_schema;

/// Prefix of custom playbook ids (`pb_` and 24 hex digits).
pub const PLAYBOOK_ID_PREFIX: &str = "pb";
/// Longest playbook or persona name, in characters.
pub const NAME_MAX: usize = 200;
/// Longest playbook description, in characters.
pub const DESCRIPTION_MAX: usize = 1_000;
/// Longest strategy, in characters: it goes into every call's prompt
/// whole, so it is bounded to leave room for the rest.
pub const STRATEGY_MAX: usize = 1_000;
/// Longest voice tone, in characters.
pub const VOICE_TONE_MAX: usize = 150;
/// Longest success criteria, in characters.
pub const SUCCESS_CRITERIA_MAX: usize = 400;
/// Most behaviour rules of a playbook, persona or call.
pub const MAX_RULES: usize = 20;
/// Longest behaviour rule, in characters.
pub const RULE_MAX: usize = 500;

/// A playbook: a built-in or one of an organization's own.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Playbook {
    /// A built-in's slug (`reservation`) or `pb_` and 24 hex digits.
    pub id: String,
    /// Owning org; `None` for built-ins.
    pub org_id: Option<String>,
    /// Whether it ships with the server (and is read-only).
    pub builtin: bool,
    /// Display name.
    pub name: String,
    /// What kind of call it is for.
    pub description: Option<String>,
    /// How the agent goes about the call.
    pub strategy: String,
    /// Rules the agent must follow on such calls.
    pub behavior_rules: Vec<String>,
    /// What to capture, as a normalized JSON Schema object.
    pub extraction_schema: Option<Value>,
    /// How the agent should sound.
    pub voice_tone: Option<String>,
    /// When the call counts as a success.
    pub success_criteria: Option<String>,
    /// The playbook this one was copied from.
    pub forked_from: Option<String>,
    /// Creation time, unix ms; `None` for built-ins.
    pub created_at: Option<i64>,
    /// Last change, unix ms; `None` for built-ins.
    pub updated_at: Option<i64>,
}

/// What a new custom playbook holds (the API has filled in what a fork
/// copies, and normalized the schema).
#[derive(Debug, Clone, PartialEq)]
pub struct NewPlaybook {
    /// See [`Playbook::name`].
    pub name: String,
    /// See [`Playbook::description`].
    pub description: Option<String>,
    /// See [`Playbook::strategy`].
    pub strategy: String,
    /// See [`Playbook::behavior_rules`].
    pub behavior_rules: Vec<String>,
    /// See [`Playbook::extraction_schema`].
    pub extraction_schema: Option<Value>,
    /// See [`Playbook::voice_tone`].
    pub voice_tone: Option<String>,
    /// See [`Playbook::success_criteria`].
    pub success_criteria: Option<String>,
    /// See [`Playbook::forked_from`].
    pub forked_from: Option<String>,
}

/// A partial update: only fields that are `Some` change; `Some(None)`
/// clears an optional field.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct PlaybookUpdate {
    /// New name.
    pub name: Option<String>,
    /// New or cleared description.
    pub description: Option<Option<String>>,
    /// New strategy.
    pub strategy: Option<String>,
    /// New rules (replacing the list).
    pub behavior_rules: Option<Vec<String>>,
    /// New (normalized) or cleared schema.
    pub extraction_schema: Option<Option<Value>>,
    /// New or cleared tone.
    pub voice_tone: Option<Option<String>>,
    /// New or cleared success criteria.
    pub success_criteria: Option<Option<String>>,
}

/// Problems as `(field path, message)`, paths dotted (`behavior_rules.2`).
pub type Problems = Vec<(String, String)>;

/// A required text: not blank, at most `max` characters.
pub fn check_text(problems: &mut Problems, field: &str, value: &str, max: usize) {
    if value.trim().is_empty() {
        problems.push((field.to_owned(), "must not be empty".to_owned()));
    } else if value.chars().count() > max {
        problems.push((
            field.to_owned(),
            format!("must be at most {max} characters"),
        ));
    }
}

/// An optional text: when given, as [`check_text`].
pub fn check_opt_text(problems: &mut Problems, field: &str, value: Option<&str>, max: usize) {
    if let Some(v) = value {
        check_text(problems, field, v, max);
    }
}

/// A list of behaviour rules: at most [`MAX_RULES`], each a non-blank
/// text of at most [`RULE_MAX`] characters.
pub fn check_rules(problems: &mut Problems, field: &str, rules: &[String]) {
    if rules.len() > MAX_RULES {
        problems.push((
            field.to_owned(),
            format!("at most {MAX_RULES} rules are allowed"),
        ));
    }
    for (i, rule) in rules.iter().enumerate() {
        check_text(problems, &format!("{field}.{i}"), rule, RULE_MAX);
    }
}

/// An extraction schema that is already normalized ([`normalize_schema`]
/// returns it unchanged).
pub fn check_normalized_schema(problems: &mut Problems, field: &str, schema: Option<&Value>) {
    if let Some(s) = schema {
        match normalize_schema(s) {
            Ok(n) if &n == s => {}
            Ok(_) => problems.push((field.to_owned(), "is not normalized".to_owned())),
            Err(e) => problems.push((field.to_owned(), e)),
        }
    }
}

/// Rules as stored: each trimmed.
pub fn trim_rules(rules: Vec<String>) -> Vec<String> {
    rules.into_iter().map(|r| r.trim().to_owned()).collect()
}

impl NewPlaybook {
    /// Every problem with it.
    pub fn check(&self) -> Problems {
        let mut p = Problems::new();
        check_text(&mut p, "name", &self.name, NAME_MAX);
        check_opt_text(
            &mut p,
            "description",
            self.description.as_deref(),
            DESCRIPTION_MAX,
        );
        check_text(&mut p, "strategy", &self.strategy, STRATEGY_MAX);
        check_rules(&mut p, "behavior_rules", &self.behavior_rules);
        check_normalized_schema(&mut p, "extraction_schema", self.extraction_schema.as_ref());
        check_opt_text(
            &mut p,
            "voice_tone",
            self.voice_tone.as_deref(),
            VOICE_TONE_MAX,
        );
        check_opt_text(
            &mut p,
            "success_criteria",
            self.success_criteria.as_deref(),
            SUCCESS_CRITERIA_MAX,
        );
        p
    }

    /// A new playbook with the fields of `source` (a fork's starting point).
    pub fn copy_of(source: &Playbook) -> NewPlaybook {
        NewPlaybook {
            name: source.name.clone(),
            description: source.description.clone(),
            strategy: source.strategy.clone(),
            behavior_rules: source.behavior_rules.clone(),
            extraction_schema: source.extraction_schema.clone(),
            voice_tone: source.voice_tone.clone(),
            success_criteria: source.success_criteria.clone(),
            forked_from: Some(source.id.clone()),
        }
    }
}

impl PlaybookUpdate {
    /// Every problem with it.
    pub fn check(&self) -> Problems {
        let mut p = Problems::new();
        if let Some(v) = &self.name {
            check_text(&mut p, "name", v, NAME_MAX);
        }
        if let Some(v) = &self.description {
            check_opt_text(&mut p, "description", v.as_deref(), DESCRIPTION_MAX);
        }
        if let Some(v) = &self.strategy {
            check_text(&mut p, "strategy", v, STRATEGY_MAX);
        }
        if let Some(v) = &self.behavior_rules {
            check_rules(&mut p, "behavior_rules", v);
        }
        if let Some(v) = &self.extraction_schema {
            check_normalized_schema(&mut p, "extraction_schema", v.as_ref());
        }
        if let Some(v) = &self.voice_tone {
            check_opt_text(&mut p, "voice_tone", v.as_deref(), VOICE_TONE_MAX);
        }
        if let Some(v) = &self.success_criteria {
            check_opt_text(
                &mut p,
                "success_criteria",
                v.as_deref(),
                SUCCESS_CRITERIA_MAX,
            );
        }
        p
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn new() -> NewPlaybook {
        NewPlaybook {
            name: "Quotes".into(),
            description: None,
            strategy: "Ask for a written quote.".into(),
            behavior_rules: vec!["Never agree to a price.".into()],
            extraction_schema: Some(normalize_schema(&json!({"price": "number"})).unwrap()),
            voice_tone: Some("brisk".into()),
            success_criteria: None,
            forked_from: None,
        }
    }

    #[test]
    fn a_good_playbook_has_no_problems() {
        assert!(new().check().is_empty());
        assert!(PlaybookUpdate::default().check().is_empty());
    }

    #[test]
    fn problems_name_their_field() {
        let mut p = new();
        p.name = " ".into();
        p.strategy = "x".repeat(STRATEGY_MAX + 1);
        p.behavior_rules = vec!["ok".into(), String::new(), "y".repeat(RULE_MAX + 1)];
        p.extraction_schema = Some(json!({"price": "number"}));
        p.voice_tone = Some(String::new());
        let fields: Vec<String> = p.check().into_iter().map(|(f, _)| f).collect();
        assert_eq!(
            fields,
            [
                "name",
                "strategy",
                "behavior_rules.1",
                "behavior_rules.2",
                "extraction_schema",
                "voice_tone"
            ]
        );
        let too_many = PlaybookUpdate {
            behavior_rules: Some(vec!["r".into(); MAX_RULES + 1]),
            success_criteria: Some(Some("s".repeat(SUCCESS_CRITERIA_MAX + 1))),
            ..PlaybookUpdate::default()
        };
        let fields: Vec<String> = too_many.check().into_iter().map(|(f, _)| f).collect();
        assert_eq!(fields, ["behavior_rules", "success_criteria"]);
    }

    #[test]
    fn a_copy_remembers_its_source() {
        let b = builtin::get("negotiation").unwrap();
        let c = NewPlaybook::copy_of(b);
        assert_eq!(c.forked_from.as_deref(), Some("negotiation"));
        assert_eq!(c.strategy, b.strategy);
        assert!(c.check().is_empty(), "{:?}", c.check());
    }
}
