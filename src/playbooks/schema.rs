//! Extraction schemas: what a call should capture, as a JSON Schema object
//! (the shape the after-call summarizer and reports take).
//!
//! People write them in one of two ways, and both are accepted:
//!
//! - a JSON Schema object (`{"type": "object", "properties": {…}}`),
//!   kept as it is once its shape is checked;
//! - a simple map of field to type, `{"price": "number", "available":
//!   "boolean"}`, where a type may also be `{"type": "number",
//!   "description": "…"}`. It is turned into a JSON Schema whose fields
//!   are all required but nullable, so a model reports `null` for what
//!   the call did not say instead of inventing a value.
//!
//! Normalizing is idempotent: a normalized schema normalizes to itself,
//! which lets the store re-check what the API already normalized.

use serde_json::{Map, Value, json};

/// Most fields a schema may have: each is a question the call has to get
/// answered, and a phone call answers a handful.
pub const MAX_FIELDS: usize = 30;
/// Longest field name, in characters.
pub const FIELD_NAME_MAX: usize = 64;
/// Longest field description in a simple map, in characters.
pub const FIELD_DESCRIPTION_MAX: usize = 300;
/// Largest schema, serialized, in bytes.
pub const SCHEMA_MAX_BYTES: usize = 16_384;

/// The type names a simple map may use.
pub const SIMPLE_TYPES: &[&str] = &[
    "string", "number", "integer", "boolean", "date", "time", "datetime", "string[]",
];

/// `value` as a JSON Schema object, or what is wrong with it (naming the
/// field at fault: `price: unknown type "money"; …`).
pub fn normalize_schema(value: &Value) -> Result<Value, String> {
    let Value::Object(map) = value else {
        return Err(
            "must be a JSON object: a JSON Schema or a map of field name to type".to_owned(),
        );
    };
    let normalized = if map.get("type").and_then(Value::as_str) == Some("object") {
        check_json_schema(map)?;
        value.clone()
    } else {
        from_simple_map(map)?
    };
    let size = normalized.to_string().len();
    if size > SCHEMA_MAX_BYTES {
        return Err(format!(
            "is {size} bytes; at most {SCHEMA_MAX_BYTES} are allowed"
        ));
    }
    Ok(normalized)
}

/// The JSON Schema of one simple-map field of type `kind` (one of
/// [`SIMPLE_TYPES`]), nullable, with `description` when given; `None` for
/// an unknown type.
pub fn field_schema(kind: &str, description: Option<&str>) -> Option<Value> {
    let (mut schema, hint) = match kind {
        "string" => (json!({"type": ["string", "null"]}), None),
        "number" => (json!({"type": ["number", "null"]}), None),
        "integer" => (json!({"type": ["integer", "null"]}), None),
        "boolean" => (json!({"type": ["boolean", "null"]}), None),
        "date" => (
            json!({"type": ["string", "null"], "format": "date"}),
            Some("a date as YYYY-MM-DD"),
        ),
        "time" => (
            json!({"type": ["string", "null"], "format": "time"}),
            Some("a time of day as HH:MM, 24-hour"),
        ),
        "datetime" => (
            json!({"type": ["string", "null"], "format": "date-time"}),
            Some("a date and time in ISO 8601"),
        ),
        "string[]" => (
            json!({"type": ["array", "null"], "items": {"type": "string"}}),
            None,
        ),
        _ => return None,
    };
    // The format hint goes into the description too: models read
    // descriptions far more reliably than `format`.
    let text = match (description.map(str::trim).filter(|d| !d.is_empty()), hint) {
        (Some(d), Some(h)) => Some(format!("{d} ({h})")),
        (Some(d), None) => Some(d.to_owned()),
        (None, Some(h)) => Some(capitalize(h)),
        (None, None) => None,
    };
    if let Some(t) = text {
        schema["description"] = Value::String(t);
    }
    Some(schema)
}

/// Builds an object schema from `(name, property schema)` pairs: every
/// field required (nullable types say "unknown") and no others.
pub(crate) fn object_schema(fields: Vec<(String, Value)>) -> Value {
    let required: Vec<Value> = fields.iter().map(|(n, _)| json!(n)).collect();
    let properties: Map<String, Value> = fields.into_iter().collect();
    json!({
        "type": "object",
        "properties": properties,
        "required": required,
        "additionalProperties": false
    })
}

/// The fields of a normalized schema with a description for each (its
/// own, else its type), in the schema's order.
pub fn describe_fields(schema: &Value) -> Vec<(String, String)> {
    let Some(props) = schema.get("properties").and_then(Value::as_object) else {
        return Vec::new();
    };
    props
        .iter()
        .map(|(name, p)| {
            let description = p
                .get("description")
                .and_then(Value::as_str)
                .map(str::trim)
                .filter(|d| !d.is_empty())
                .map(str::to_owned)
                .unwrap_or_else(|| type_words(p));
            (name.clone(), description)
        })
        .collect()
}

fn type_words(p: &Value) -> String {
    let types: Vec<&str> = match p.get("type") {
        Some(Value::String(s)) => vec![s.as_str()],
        Some(Value::Array(a)) => a
            .iter()
            .filter_map(Value::as_str)
            .filter(|t| *t != "null")
            .collect(),
        _ => Vec::new(),
    };
    match types.first() {
        Some(&"array") => "a list".to_owned(),
        Some(t) => format!("a {t}"),
        None => "a value".to_owned(),
    }
}

fn capitalize(s: &str) -> String {
    let mut c = s.chars();
    match c.next() {
        Some(first) => first.to_uppercase().chain(c).collect(),
        None => String::new(),
    }
}

fn check_name(name: &str) -> Result<(), String> {
    let ok = name.chars().count() <= FIELD_NAME_MAX
        && name
            .chars()
            .next()
            .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
    if ok {
        Ok(())
    } else {
        Err(format!(
            "{name:?} is not a field name: use letters, digits and _ (starting with a letter), \
             at most {FIELD_NAME_MAX} characters"
        ))
    }
}

fn check_count(n: usize) -> Result<(), String> {
    if n == 0 {
        Err("has no fields".to_owned())
    } else if n > MAX_FIELDS {
        Err(format!("has {n} fields; at most {MAX_FIELDS} are allowed"))
    } else {
        Ok(())
    }
}

fn check_json_schema(map: &Map<String, Value>) -> Result<(), String> {
    let Some(props) = map.get("properties") else {
        return Err("a JSON Schema needs \"properties\", the fields to capture".to_owned());
    };
    let Value::Object(props) = props else {
        return Err("\"properties\" must be an object of field name to schema".to_owned());
    };
    check_count(props.len())?;
    for (name, schema) in props {
        check_name(name)?;
        if !schema.is_object() {
            return Err(format!("{name}: its schema must be a JSON object"));
        }
    }
    match map.get("required") {
        None => {}
        Some(Value::Array(required)) => {
            for r in required {
                match r.as_str() {
                    Some(n) if props.contains_key(n) => {}
                    Some(n) => {
                        return Err(format!(
                            "\"required\" names {n:?}, which is not in \"properties\""
                        ));
                    }
                    None => return Err("\"required\" must list field names".to_owned()),
                }
            }
        }
        Some(_) => return Err("\"required\" must be an array of field names".to_owned()),
    }
    Ok(())
}

fn from_simple_map(map: &Map<String, Value>) -> Result<Value, String> {
    check_count(map.len())?;
    let mut fields = Vec::with_capacity(map.len());
    for (name, spec) in map {
        check_name(name)?;
        let (kind, description) = match spec {
            Value::String(kind) => (kind.as_str(), None),
            Value::Object(o) => {
                if let Some(extra) = o.keys().find(|k| *k != "type" && *k != "description") {
                    return Err(format!(
                        "{name}: unknown key {extra:?}; a field takes \"type\" and \"description\""
                    ));
                }
                let kind = o.get("type").and_then(Value::as_str).ok_or_else(|| {
                    format!(
                        "{name}: \"type\" is required, one of {}",
                        SIMPLE_TYPES.join(", ")
                    )
                })?;
                let description = match o.get("description") {
                    None | Some(Value::Null) => None,
                    Some(Value::String(d)) if d.chars().count() <= FIELD_DESCRIPTION_MAX => {
                        Some(d.as_str())
                    }
                    Some(Value::String(_)) => {
                        return Err(format!(
                            "{name}: the description must be at most {FIELD_DESCRIPTION_MAX} characters"
                        ));
                    }
                    Some(_) => return Err(format!("{name}: the description must be text")),
                };
                (kind, description)
            }
            _ => {
                return Err(format!(
                    "{name}: must be a type name ({}) or {{\"type\": …, \"description\": …}}",
                    SIMPLE_TYPES.join(", ")
                ));
            }
        };
        let schema = field_schema(kind.trim(), description).ok_or_else(|| {
            format!(
                "{name}: unknown type {kind:?}; use one of {}",
                SIMPLE_TYPES.join(", ")
            )
        })?;
        fields.push((name.clone(), schema));
    }
    Ok(object_schema(fields))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_simple_map_becomes_a_nullable_required_schema() {
        let s = normalize_schema(&json!({
            "price": "number",
            "available": "boolean",
            "notes": "string",
            "party": "integer",
            "day": "date",
            "at": "time",
            "when": "datetime",
            "options": "string[]",
            "currency": {"type": "string", "description": "ISO 4217 code"},
        }))
        .unwrap();
        assert_eq!(s["type"], "object");
        assert_eq!(s["additionalProperties"], false);
        assert_eq!(s["properties"]["price"]["type"], json!(["number", "null"]));
        assert_eq!(
            s["properties"]["available"]["type"],
            json!(["boolean", "null"])
        );
        assert_eq!(s["properties"]["party"]["type"], json!(["integer", "null"]));
        assert_eq!(s["properties"]["day"]["format"], "date");
        assert!(
            s["properties"]["day"]["description"]
                .as_str()
                .unwrap()
                .contains("YYYY-MM-DD")
        );
        assert_eq!(s["properties"]["at"]["format"], "time");
        assert_eq!(s["properties"]["when"]["format"], "date-time");
        assert_eq!(s["properties"]["options"]["items"]["type"], "string");
        assert_eq!(s["properties"]["currency"]["description"], "ISO 4217 code");
        let required: Vec<&str> = s["required"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_str().unwrap())
            .collect();
        assert_eq!(required.len(), 9);
        assert!(required.contains(&"price") && required.contains(&"notes"));
        // Idempotent, so the store can re-check what the API normalized.
        assert_eq!(normalize_schema(&s).unwrap(), s);
    }

    #[test]
    fn a_json_schema_is_kept_as_it_is() {
        let schema = json!({
            "type": "object",
            "properties": {"price": {"type": "number", "description": "Quoted price"}},
            "required": ["price"]
        });
        assert_eq!(normalize_schema(&schema).unwrap(), schema);
        // A field that happens to be called "type" is a simple map.
        let s = normalize_schema(&json!({"type": "string", "price": "number"})).unwrap();
        assert_eq!(s["properties"]["type"]["type"], json!(["string", "null"]));
    }

    #[test]
    fn errors_name_what_is_wrong() {
        let too_many: Map<String, Value> = (0..=MAX_FIELDS)
            .map(|i| (format!("f{i}"), json!("string")))
            .collect();
        for (bad, want) in [
            (json!("price"), "must be a JSON object"),
            (json!([]), "must be a JSON object"),
            (json!({}), "has no fields"),
            (json!({"price": "money"}), "price: unknown type \"money\""),
            (json!({"price": 3}), "price: must be a type name"),
            (
                json!({"price": {"description": "x"}}),
                "price: \"type\" is required",
            ),
            (
                json!({"price": {"type": "number", "unit": "usd"}}),
                "price: unknown key \"unit\"",
            ),
            (
                json!({"price": {"type": "number", "description": 5}}),
                "price: the description must be text",
            ),
            (
                json!({"9lives": "string"}),
                "\"9lives\" is not a field name",
            ),
            (json!({"a b": "string"}), "\"a b\" is not a field name"),
            (Value::Object(too_many), "at most 30"),
            (json!({"type": "object"}), "needs \"properties\""),
            (
                json!({"type": "object", "properties": []}),
                "\"properties\" must be an object",
            ),
            (
                json!({"type": "object", "properties": {"x": "string"}}),
                "x: its schema must be a JSON object",
            ),
            (
                json!({"type": "object", "properties": {"x": {"type": "string"}}, "required": ["y"]}),
                "names \"y\"",
            ),
            (
                json!({"type": "object", "properties": {"x": {"type": "string"}}, "required": "x"}),
                "\"required\" must be an array",
            ),
            (
                json!({"type": "object", "properties": {"x": {"type": "string", "description": "d".repeat(SCHEMA_MAX_BYTES)}}}),
                "bytes; at most",
            ),
        ] {
            let e = normalize_schema(&bad).unwrap_err();
            assert!(e.contains(want), "{bad}: {e}");
        }
    }

    #[test]
    fn fields_are_described_for_the_prompt() {
        let s = normalize_schema(&json!({
            "price": {"type": "number", "description": "The quoted price"},
            "options": "string[]",
            "open": "boolean",
        }))
        .unwrap();
        let d = describe_fields(&s);
        assert!(d.contains(&("price".to_owned(), "The quoted price".to_owned())));
        assert!(d.contains(&("options".to_owned(), "a list".to_owned())));
        assert!(d.contains(&("open".to_owned(), "a boolean".to_owned())));
        assert!(describe_fields(&json!({"type": "object"})).is_empty());
    }
}
