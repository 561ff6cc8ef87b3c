//! A cheap check of a JSON value against the shape a JSON Schema gives:
//! `type`, `enum`, `const`, `properties`, `required`,
//! `additionalProperties: false`, `items` and `anyOf`/`oneOf` (as "one of
//! them matches"). Everything else (`$ref`, formats, ranges, patterns) is
//! left unchecked: the point is to catch a model that ignored the shape,
//! not to be a full validator.

use serde_json::Value;

/// `Ok` when `value` has the shape `schema` asks for, else where and how
/// it differs (`$.items[2].price: expected number, got string`).
pub(crate) fn check(value: &Value, schema: &Value) -> Result<(), String> {
    check_at(value, schema, "$")
}

fn check_at(value: &Value, schema: &Value, path: &str) -> Result<(), String> {
    let schema = match schema {
        Value::Bool(true) => return Ok(()),
        Value::Bool(false) => return Err(format!("{path}: no value is allowed here")),
        Value::Object(o) => o,
        _ => return Ok(()),
    };
    if let Some(t) = schema.get("type") {
        let allowed: Vec<&str> = match t {
            Value::String(s) => vec![s.as_str()],
            Value::Array(a) => a.iter().filter_map(Value::as_str).collect(),
            _ => vec![],
        };
        if !allowed.is_empty() && !allowed.iter().any(|t| has_type(value, t)) {
            return Err(format!(
                "{path}: expected {}, got {}",
                allowed.join(" or "),
                type_name(value)
            ));
        }
    }
    if let Some(Value::Array(options)) = schema.get("enum")
        && !options.contains(value)
    {
        return Err(format!(
            "{path}: {value} is not one of {}",
            Value::Array(options.clone())
        ));
    }
    if let Some(c) = schema.get("const")
        && c != value
    {
        return Err(format!("{path}: expected {c}, got {value}"));
    }
    for key in ["anyOf", "oneOf"] {
        if let Some(Value::Array(options)) = schema.get(key)
            && !options.is_empty()
            && !options.iter().any(|o| check_at(value, o, path).is_ok())
        {
            return Err(format!("{path}: matches none of the {key} alternatives"));
        }
    }
    match value {
        Value::Object(fields) => {
            if let Some(Value::Array(required)) = schema.get("required") {
                for name in required.iter().filter_map(Value::as_str) {
                    if !fields.contains_key(name) {
                        return Err(format!("{path}: missing required field \"{name}\""));
                    }
                }
            }
            let properties = schema.get("properties").and_then(Value::as_object);
            for (name, v) in fields {
                let child = format!("{path}.{name}");
                match properties.and_then(|p| p.get(name)) {
                    Some(s) => check_at(v, s, &child)?,
                    None => match schema.get("additionalProperties") {
                        Some(Value::Bool(false)) => {
                            return Err(format!("{path}: unexpected field \"{name}\""));
                        }
                        Some(s @ Value::Object(_)) => check_at(v, s, &child)?,
                        _ => {}
                    },
                }
            }
        }
        Value::Array(items) => {
            if let Some(s) = schema.get("items") {
                for (i, v) in items.iter().enumerate() {
                    check_at(v, s, &format!("{path}[{i}]"))?;
                }
            }
        }
        _ => {}
    }
    Ok(())
}

fn has_type(value: &Value, t: &str) -> bool {
    match t {
        "object" => value.is_object(),
        "array" => value.is_array(),
        "string" => value.is_string(),
        "boolean" => value.is_boolean(),
        "null" => value.is_null(),
        "number" => value.is_number(),
        "integer" => {
            value.as_i64().is_some()
                || value.as_u64().is_some()
                || value.as_f64().is_some_and(|f| f.fract() == 0.0)
        }
        // An unknown type name is the schema's problem, not the value's.
        _ => true,
    }
}

fn type_name(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn booking() -> Value {
        json!({
            "type": "object",
            "properties": {
                "name": {"type": "string"},
                "party": {"type": "integer"},
                "when": {"type": ["string", "null"]},
                "kind": {"enum": ["dinner", "lunch"]},
                "tags": {"type": "array", "items": {"type": "string"}},
                "contact": {"anyOf": [{"type": "string"}, {"type": "object",
                    "properties": {"phone": {"type": "string"}}, "required": ["phone"]}]}
            },
            "required": ["name", "party"],
            "additionalProperties": false
        })
    }

    #[test]
    fn a_value_of_the_right_shape_passes() {
        let v = json!({"name": "Ada", "party": 4.0, "when": null, "kind": "dinner",
                       "tags": ["vip"], "contact": {"phone": "+33"}});
        assert_eq!(check(&v, &booking()), Ok(()));
        assert_eq!(check(&json!(1), &json!(true)), Ok(()));
    }

    #[test]
    fn each_difference_is_named_with_its_path() {
        let cases = [
            (json!([]), "$: expected object, got array"),
            (
                json!({"name": "Ada"}),
                "$: missing required field \"party\"",
            ),
            (
                json!({"name": "Ada", "party": 2.5}),
                "$.party: expected integer, got number",
            ),
            (
                json!({"name": "Ada", "party": 2, "x": 1}),
                "$: unexpected field \"x\"",
            ),
            (
                json!({"name": "Ada", "party": 2, "kind": "brunch"}),
                "$.kind: \"brunch\" is not one of [\"dinner\",\"lunch\"]",
            ),
            (
                json!({"name": "Ada", "party": 2, "tags": ["a", 3]}),
                "$.tags[1]: expected string, got number",
            ),
            (
                json!({"name": "Ada", "party": 2, "contact": {}}),
                "$.contact: matches none of the anyOf alternatives",
            ),
        ];
        for (value, want) in cases {
            assert_eq!(check(&value, &booking()), Err(want.to_owned()), "{value}");
        }
    }
}
