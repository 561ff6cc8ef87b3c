//! The nine playbooks that ship with the server (`builtin.toml` beside
//! this file, compiled in and parsed once). They are read-only: an
//! organization that wants another version forks one.

use std::sync::LazyLock;

use serde::Deserialize;

use super::Playbook;
use super::schema::{SIMPLE_TYPES, field_schema, object_schema};

/// The catalogue's text.
const SOURCE: &str = include_str!("builtin.toml");

/// The built-in ids, in the catalogue's order.
pub const IDS: [&str; 9] = [
    "reservation",
    "price_inquiry",
    "negotiation",
    "information_gather",
    "scheduling",
    "cold_outreach",
    "complaint",
    "follow_up",
    "general",
];

/// The playbook used when none is named and none is chosen.
pub const GENERAL: &str = "general";

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Source {
    playbook: Vec<RawPlaybook>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawPlaybook {
    id: String,
    name: String,
    description: String,
    voice_tone: String,
    strategy: String,
    behavior_rules: Vec<String>,
    success_criteria: String,
    field: Vec<RawField>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawField {
    name: String,
    #[serde(rename = "type")]
    kind: String,
    description: String,
}

static BUILTINS: LazyLock<Vec<Playbook>> = LazyLock::new(|| {
    // Compiled in and checked by the unit tests, so a failure here is a
    // build that skipped them.
    parse(SOURCE).expect("the compiled-in playbooks parse")
});

/// Every built-in, in the catalogue's order.
pub fn all() -> &'static [Playbook] {
    &BUILTINS
}

/// The built-in `id`.
pub fn get(id: &str) -> Option<&'static Playbook> {
    all().iter().find(|p| p.id == id)
}

/// The [`GENERAL`] playbook.
pub fn general() -> &'static Playbook {
    // The unit tests check that the catalogue has it.
    get(GENERAL).expect("the built-in catalogue has the general playbook")
}

/// Whether `id` names a built-in.
pub fn is_builtin(id: &str) -> bool {
    IDS.contains(&id)
}

fn parse(source: &str) -> Result<Vec<Playbook>, String> {
    let src: Source = toml::from_str(source).map_err(|e| format!("builtin.toml: {e}"))?;
    let mut out = Vec::with_capacity(src.playbook.len());
    for raw in src.playbook {
        let err = |m: String| format!("builtin.toml: playbook {}: {m}", raw.id);
        let mut fields = Vec::with_capacity(raw.field.len());
        for f in &raw.field {
            let schema = field_schema(&f.kind, Some(&f.description)).ok_or_else(|| {
                err(format!(
                    "field {}: unknown type {:?} (one of {})",
                    f.name,
                    f.kind,
                    SIMPLE_TYPES.join(", ")
                ))
            })?;
            fields.push((f.name.clone(), schema));
        }
        let playbook = Playbook {
            id: raw.id.clone(),
            org_id: None,
            builtin: true,
            name: raw.name.trim().to_owned(),
            description: Some(raw.description.trim().to_owned()),
            strategy: raw.strategy.trim().to_owned(),
            behavior_rules: raw
                .behavior_rules
                .iter()
                .map(|r| r.trim().to_owned())
                .collect(),
            extraction_schema: Some(object_schema(fields)),
            voice_tone: Some(raw.voice_tone.trim().to_owned()),
            success_criteria: Some(raw.success_criteria.trim().to_owned()),
            forked_from: None,
            created_at: None,
            updated_at: None,
        };
        let problems = super::NewPlaybook::copy_of(&playbook).check();
        if let Some((field, msg)) = problems.first() {
            return Err(err(format!("{field} {msg}")));
        }
        out.push(playbook);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_nine_parse_in_order_and_fit_the_limits() {
        let all = parse(SOURCE).unwrap();
        let ids: Vec<&str> = all.iter().map(|p| p.id.as_str()).collect();
        assert_eq!(ids, IDS);
        for p in &all {
            assert!(p.builtin && p.org_id.is_none());
            assert!(!p.behavior_rules.is_empty(), "{}", p.id);
            let schema = p.extraction_schema.as_ref().unwrap();
            // Normalized, so it goes through the same checks as a custom one.
            assert_eq!(
                &super::super::normalize_schema(schema).unwrap(),
                schema,
                "{}",
                p.id
            );
            assert!(
                schema["properties"].get("notes").is_some(),
                "{} captures no notes",
                p.id
            );
            // Each speaks of what it is for, not of the shared manners
            // compose adds to every prompt.
            assert!(!p.strategy.contains("end_call"), "{}", p.id);
        }
        assert!(is_builtin("general") && !is_builtin("pb_0123"));
        assert_eq!(get(GENERAL).unwrap().name, "General");
    }

    #[test]
    fn the_issue_s_fields_are_there() {
        let props = |id: &str| -> Vec<String> {
            get(id).unwrap().extraction_schema.as_ref().unwrap()["properties"]
                .as_object()
                .unwrap()
                .keys()
                .cloned()
                .collect()
        };
        for want in ["item", "price", "currency", "price_includes", "valid_until"] {
            assert!(props("price_inquiry").contains(&want.to_owned()), "{want}");
        }
        for want in [
            "confirmed",
            "date",
            "time",
            "party_size",
            "name_on_booking",
            "confirmation_number",
        ] {
            assert!(props("reservation").contains(&want.to_owned()), "{want}");
        }
        let s = get("reservation")
            .unwrap()
            .extraction_schema
            .clone()
            .unwrap();
        assert_eq!(s["properties"]["party_size"]["type"][0], "integer");
        assert_eq!(s["properties"]["date"]["format"], "date");
    }

    #[test]
    fn a_bad_catalogue_is_refused_naming_the_playbook() {
        let bad = r#"
            [[playbook]]
            id = "x"
            name = "X"
            description = "d"
            voice_tone = "t"
            strategy = "s"
            behavior_rules = []
            success_criteria = "c"
            [[playbook.field]]
            name = "price"
            type = "money"
            description = "d"
        "#;
        let e = parse(bad).unwrap_err();
        assert!(e.contains("playbook x") && e.contains("money"), "{e}");
        let empty_strategy = bad.replace("\"s\"", "\"  \"").replace("money", "number");
        let e = parse(&empty_strategy).unwrap_err();
        assert!(e.contains("strategy must not be empty"), "{e}");
    }
}
