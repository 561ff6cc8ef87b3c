//! A number's saved outbound defaults: the settings its outbound calls
//! start from (the agent, playbook, persona, objective, rules, voice,
//! voicemail handling, retry policy…), each overridable per call.
//!
//! Every field is optional: a call takes what it does not give itself
//! from here. `retry_policy` is kept as an opaque JSON object; the call
//! queue that retries calls reads and checks it.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::{Problems, check_normalized_schema, check_opt_text, check_rules};

/// Longest objective, in characters.
pub const OBJECTIVE_MAX: usize = 2_000;
/// Longest context, in characters.
pub const CONTEXT_MAX: usize = 10_000;
/// Longest system prompt, in characters (as an agent's).
pub const SYSTEM_PROMPT_MAX: usize = 100_000;
/// Longest first message, in characters.
pub const FIRST_MESSAGE_MAX: usize = 2_000;
/// Longest voicemail message, in characters (as a call's).
pub const VOICEMAIL_MESSAGE_MAX: usize = 1_000;
/// Largest retry policy, serialized, in bytes.
pub const RETRY_POLICY_MAX_BYTES: usize = 4_096;
/// The range of `max_duration_minutes`.
pub const MAX_DURATION_MINUTES: std::ops::RangeInclusive<i64> = 1..=120;

/// What an outbound call does when an answering machine picks up.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum VoicemailAction {
    /// Wait for the beep, say `voicemail_message`, hang up.
    LeaveMessage,
    /// Hang up at once.
    HangUp,
    /// Hang up and try again later, as the retry policy says.
    Retry,
}

/// A number's outbound defaults. Unset fields are left out of the JSON.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct OutboundDefaults {
    /// An agent of the organization.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub agent_id: Option<String>,
    /// A built-in playbook's id or one of the organization's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub playbook_id: Option<String>,
    /// A persona of the organization.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub persona_id: Option<String>,
    /// What calls should achieve.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub objective: Option<String>,
    /// Background the agent may use.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub context: Option<String>,
    /// Rules the calls must keep.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub behavior_rules: Option<Vec<String>>,
    /// A whole system prompt, instead of one composed from the playbook.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub system_prompt: Option<String>,
    /// What the agent says first.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub first_message: Option<String>,
    /// Voice id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub voice: Option<String>,
    /// BCP 47 language tag.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub language: Option<String>,
    /// What to do on an answering machine.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub on_voicemail: Option<VoicemailAction>,
    /// Said after the beep with `leave_message`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub voicemail_message: Option<String>,
    /// Hang up after this many minutes, 1 to 120.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_duration_minutes: Option<i64>,
    /// What to capture, as a normalized JSON Schema object.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub extraction_schema: Option<Value>,
    /// How failed calls are retried (opaque here).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retry_policy: Option<Value>,
    /// Record the calls.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub record: Option<bool>,
}

/// A number's defaults as stored.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SavedOutboundDefaults {
    /// The number they belong to.
    pub number_id: String,
    /// The settings.
    pub defaults: OutboundDefaults,
    /// Last change, unix ms.
    pub updated_at: i64,
}

impl OutboundDefaults {
    /// Every problem with it that needs no database (whether the ids
    /// exist, and the voice and language, are the API's to check).
    pub fn check(&self) -> Problems {
        let mut p = Problems::new();
        let texts = [
            ("agent_id", &self.agent_id, 100),
            ("playbook_id", &self.playbook_id, 100),
            ("persona_id", &self.persona_id, 100),
            ("objective", &self.objective, OBJECTIVE_MAX),
            ("context", &self.context, CONTEXT_MAX),
            ("system_prompt", &self.system_prompt, SYSTEM_PROMPT_MAX),
            ("first_message", &self.first_message, FIRST_MESSAGE_MAX),
            ("voice", &self.voice, super::personas::VOICE_MAX),
            ("language", &self.language, super::personas::LANGUAGE_MAX),
            (
                "voicemail_message",
                &self.voicemail_message,
                VOICEMAIL_MESSAGE_MAX,
            ),
        ];
        for (field, value, max) in texts {
            check_opt_text(&mut p, field, value.as_deref(), max);
        }
        if let Some(rules) = &self.behavior_rules {
            check_rules(&mut p, "behavior_rules", rules);
        }
        if self.on_voicemail == Some(VoicemailAction::LeaveMessage)
            && self.voicemail_message.is_none()
        {
            p.push((
                "voicemail_message".to_owned(),
                "required when on_voicemail is leave_message".to_owned(),
            ));
        }
        if let Some(m) = self.max_duration_minutes
            && !MAX_DURATION_MINUTES.contains(&m)
        {
            p.push((
                "max_duration_minutes".to_owned(),
                format!(
                    "must be between {} and {}",
                    MAX_DURATION_MINUTES.start(),
                    MAX_DURATION_MINUTES.end()
                ),
            ));
        }
        check_normalized_schema(&mut p, "extraction_schema", self.extraction_schema.as_ref());
        if let Some(r) = &self.retry_policy {
            if !r.is_object() {
                p.push((
                    "retry_policy".to_owned(),
                    "must be a JSON object".to_owned(),
                ));
            } else if r.to_string().len() > RETRY_POLICY_MAX_BYTES {
                p.push((
                    "retry_policy".to_owned(),
                    format!("must be at most {RETRY_POLICY_MAX_BYTES} bytes as JSON"),
                ));
            }
        }
        p
    }

    /// The settings other than the three references, as stored in one
    /// JSON column (the references have columns of their own).
    pub fn settings_json(&self) -> Value {
        let rest = OutboundDefaults {
            agent_id: None,
            playbook_id: None,
            persona_id: None,
            ..self.clone()
        };
        serde_json::to_value(rest).unwrap_or_else(|_| Value::Object(Default::default()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn checks_name_their_field() {
        assert!(OutboundDefaults::default().check().is_empty());
        let bad = OutboundDefaults {
            objective: Some(String::new()),
            on_voicemail: Some(VoicemailAction::LeaveMessage),
            max_duration_minutes: Some(121),
            extraction_schema: Some(json!({"price": "number"})),
            retry_policy: Some(json!([1])),
            behavior_rules: Some(vec![" ".into()]),
            ..OutboundDefaults::default()
        };
        let fields: Vec<String> = bad.check().into_iter().map(|(f, _)| f).collect();
        assert_eq!(
            fields,
            [
                "objective",
                "behavior_rules.0",
                "voicemail_message",
                "max_duration_minutes",
                "extraction_schema",
                "retry_policy"
            ]
        );
        let big = OutboundDefaults {
            retry_policy: Some(json!({"x": "y".repeat(RETRY_POLICY_MAX_BYTES)})),
            max_duration_minutes: Some(0),
            ..OutboundDefaults::default()
        };
        let fields: Vec<String> = big.check().into_iter().map(|(f, _)| f).collect();
        assert_eq!(fields, ["max_duration_minutes", "retry_policy"]);
    }

    #[test]
    fn settings_leave_out_the_references_and_unset_fields() {
        let d = OutboundDefaults {
            agent_id: Some("agt_1".into()),
            playbook_id: Some("reservation".into()),
            objective: Some("Book".into()),
            on_voicemail: Some(VoicemailAction::Retry),
            record: Some(false),
            ..OutboundDefaults::default()
        };
        assert_eq!(
            d.settings_json(),
            json!({"objective": "Book", "on_voicemail": "retry", "record": false})
        );
        let back: OutboundDefaults = serde_json::from_value(d.settings_json()).unwrap();
        assert_eq!(back.objective.as_deref(), Some("Book"));
        assert_eq!(back.agent_id, None);
    }
}
