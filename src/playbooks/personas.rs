//! Personas: a reusable caller identity for outbound calls — the name the
//! agent introduces itself with, the company and role it calls for, its
//! voice and language, and rules it always keeps.

use serde::Serialize;

use super::{NAME_MAX, Problems, check_opt_text, check_rules, check_text};

/// Prefix of persona ids (`per_` and 24 hex digits).
pub const PERSONA_ID_PREFIX: &str = "per";
/// Longest caller name, in characters.
pub const CALLER_NAME_MAX: usize = 100;
/// Longest company or role, in characters.
pub const COMPANY_MAX: usize = 200;
/// Longest voice id, in characters.
pub const VOICE_MAX: usize = 200;
/// Longest language tag (RFC 5646 §4.4.1).
pub const LANGUAGE_MAX: usize = 35;

/// A stored persona.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Persona {
    /// `per_` and 24 hex digits.
    pub id: String,
    /// Owning org.
    pub org_id: String,
    /// A label for people (`Front office – Alex`).
    pub name: String,
    /// How the agent introduces itself (`Alex`).
    pub caller_name: String,
    /// Who the agent calls for (`Rivera Plumbing`).
    pub company: Option<String>,
    /// The agent's role there (`office manager`).
    pub role: Option<String>,
    /// Voice id (`GET /v1/voices`).
    pub voice: Option<String>,
    /// BCP 47 language tag.
    pub language: Option<String>,
    /// Rules the agent keeps on every call as this persona.
    pub default_rules: Vec<String>,
    /// Creation time, unix ms.
    pub created_at: i64,
    /// Last change, unix ms.
    pub updated_at: i64,
}

/// What a new persona holds.
#[derive(Debug, Clone, PartialEq)]
pub struct NewPersona {
    /// See [`Persona::name`].
    pub name: String,
    /// See [`Persona::caller_name`].
    pub caller_name: String,
    /// See [`Persona::company`].
    pub company: Option<String>,
    /// See [`Persona::role`].
    pub role: Option<String>,
    /// See [`Persona::voice`].
    pub voice: Option<String>,
    /// See [`Persona::language`].
    pub language: Option<String>,
    /// See [`Persona::default_rules`].
    pub default_rules: Vec<String>,
}

/// A partial update: only fields that are `Some` change; `Some(None)`
/// clears an optional field.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct PersonaUpdate {
    /// New label.
    pub name: Option<String>,
    /// New caller name.
    pub caller_name: Option<String>,
    /// New or cleared company.
    pub company: Option<Option<String>>,
    /// New or cleared role.
    pub role: Option<Option<String>>,
    /// New or cleared voice.
    pub voice: Option<Option<String>>,
    /// New or cleared language.
    pub language: Option<Option<String>>,
    /// New rules (replacing the list).
    pub default_rules: Option<Vec<String>>,
}

impl NewPersona {
    /// Every problem with its lengths and rules (the voice and language
    /// are checked against the server by the API).
    pub fn check(&self) -> Problems {
        let mut p = Problems::new();
        check_text(&mut p, "name", &self.name, NAME_MAX);
        check_text(&mut p, "caller_name", &self.caller_name, CALLER_NAME_MAX);
        check_opt_text(&mut p, "company", self.company.as_deref(), COMPANY_MAX);
        check_opt_text(&mut p, "role", self.role.as_deref(), COMPANY_MAX);
        check_opt_text(&mut p, "voice", self.voice.as_deref(), VOICE_MAX);
        check_opt_text(&mut p, "language", self.language.as_deref(), LANGUAGE_MAX);
        check_rules(&mut p, "default_rules", &self.default_rules);
        p
    }
}

impl PersonaUpdate {
    /// Every problem with the fields it sets.
    pub fn check(&self) -> Problems {
        let mut p = Problems::new();
        if let Some(v) = &self.name {
            check_text(&mut p, "name", v, NAME_MAX);
        }
        if let Some(v) = &self.caller_name {
            check_text(&mut p, "caller_name", v, CALLER_NAME_MAX);
        }
        let optional = [
            ("company", &self.company, COMPANY_MAX),
            ("role", &self.role, COMPANY_MAX),
            ("voice", &self.voice, VOICE_MAX),
            ("language", &self.language, LANGUAGE_MAX),
        ];
        for (field, value, max) in optional {
            if let Some(v) = value {
                check_opt_text(&mut p, field, v.as_deref(), max);
            }
        }
        if let Some(v) = &self.default_rules {
            check_rules(&mut p, "default_rules", v);
        }
        p
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn persona_checks_name_their_field() {
        let ok = NewPersona {
            name: "Alex at Rivera".into(),
            caller_name: "Alex".into(),
            company: Some("Rivera Plumbing".into()),
            role: None,
            voice: None,
            language: Some("en-US".into()),
            default_rules: vec!["Never quote prices.".into()],
        };
        assert!(ok.check().is_empty());
        let bad = NewPersona {
            caller_name: "x".repeat(CALLER_NAME_MAX + 1),
            role: Some(" ".into()),
            default_rules: vec![String::new()],
            ..ok
        };
        let fields: Vec<String> = bad.check().into_iter().map(|(f, _)| f).collect();
        assert_eq!(fields, ["caller_name", "role", "default_rules.0"]);
        let update = PersonaUpdate {
            company: Some(Some(String::new())),
            default_rules: Some(vec!["r".into(); 21]),
            ..PersonaUpdate::default()
        };
        let fields: Vec<String> = update.check().into_iter().map(|(f, _)| f).collect();
        assert_eq!(fields, ["company", "default_rules"]);
        assert!(PersonaUpdate::default().check().is_empty());
    }
}
