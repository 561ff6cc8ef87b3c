//! Texts with slots in them: `Thanks, {name}.`
//!
//! `{slot}` is a slot's value, `{call.from}`, `{call.to}`, `{call.id}`
//! and `{call.direction}` are the call's, `{{` and `}}` are braces. A slot
//! not filled yet reads as nothing. In speech a phone number reads digit
//! by digit; in data (a transfer number, a `set`) it is E.164.

use std::collections::BTreeMap;

use super::slots::{SlotValue, e164, spoken_phone};
use crate::agent::provider::CallInfo;

/// Longest slot name.
pub(super) const SLOT_NAME_MAX: usize = 64;

/// Whether `name` can name a slot: a lowercase letter or `_`, then
/// lowercase letters, digits or `_`, at most 64 in all.
pub(super) fn valid_slot_name(name: &str) -> bool {
    let mut bytes = name.bytes();
    bytes
        .next()
        .is_some_and(|b| b.is_ascii_lowercase() || b == b'_')
        && bytes.all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
        && name.len() <= SLOT_NAME_MAX
}

/// A call variable.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum CallVar {
    From,
    To,
    Id,
    Direction,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Part {
    Lit(String),
    Slot(String),
    Call(CallVar),
}

/// A parsed text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Template {
    parts: Vec<Part>,
}

impl Template {
    /// Parses `text`, or says what is wrong with it.
    pub fn parse(text: &str) -> Result<Template, String> {
        let mut parts = Vec::new();
        let mut lit = String::new();
        let mut chars = text.chars().peekable();
        while let Some(c) = chars.next() {
            match c {
                '{' if chars.peek() == Some(&'{') => {
                    chars.next();
                    lit.push('{');
                }
                '}' if chars.peek() == Some(&'}') => {
                    chars.next();
                    lit.push('}');
                }
                '}' => return Err("has a } without a { (write }} for a brace)".into()),
                '{' => {
                    let mut name = String::new();
                    loop {
                        match chars.next() {
                            Some('}') => break,
                            Some('{') | None => {
                                return Err(
                                    "has a { that is not closed (write {{ for a brace)".into()
                                );
                            }
                            Some(c) => name.push(c),
                        }
                    }
                    let name = name.trim();
                    let part = match name.strip_prefix("call.") {
                        Some("from") => Part::Call(CallVar::From),
                        Some("to") => Part::Call(CallVar::To),
                        Some("id") => Part::Call(CallVar::Id),
                        Some("direction") => Part::Call(CallVar::Direction),
                        Some(other) => {
                            return Err(format!(
                                "uses {{call.{other}}}: the call variables are call.from, call.to, call.id and call.direction"
                            ));
                        }
                        None if valid_slot_name(name) => Part::Slot(name.to_owned()),
                        None if name.is_empty() => return Err("has an empty {}".into()),
                        None => {
                            return Err(format!(
                                "uses {{{name}}}: slot names are lowercase letters, digits and _, starting with a letter or _"
                            ));
                        }
                    };
                    if !lit.is_empty() {
                        parts.push(Part::Lit(std::mem::take(&mut lit)));
                    }
                    parts.push(part);
                }
                c => lit.push(c),
            }
        }
        if !lit.is_empty() {
            parts.push(Part::Lit(lit));
        }
        Ok(Template { parts })
    }

    /// `text` as it is, braces and all.
    pub fn plain(text: &str) -> Template {
        Template {
            parts: vec![Part::Lit(text.to_owned())],
        }
    }

    /// The slots the text reads.
    pub fn slots(&self) -> impl Iterator<Item = &str> {
        self.parts.iter().filter_map(|p| match p {
            Part::Slot(s) => Some(s.as_str()),
            _ => None,
        })
    }

    /// The text, when it reads nothing.
    pub fn literal(&self) -> Option<String> {
        let mut out = String::new();
        for p in &self.parts {
            match p {
                Part::Lit(s) => out.push_str(s),
                _ => return None,
            }
        }
        Some(out)
    }

    /// The slot, when the text is exactly one `{slot}`.
    pub fn single_slot(&self) -> Option<&str> {
        match self.parts.as_slice() {
            [Part::Slot(s)] => Some(s),
            _ => None,
        }
    }

    /// The text with the values in: spoken for speech, raw for data.
    pub fn render(
        &self,
        slots: &BTreeMap<String, SlotValue>,
        call: &CallInfo,
        spoken: bool,
    ) -> String {
        let mut out = String::new();
        for p in &self.parts {
            match p {
                // "Your message is: {message}." with a message that ends
                // in its own full stop says one, not two.
                Part::Lit(s) if spoken && out.ends_with(['.', '!', '?', '…']) => {
                    out.push_str(s.strip_prefix('.').unwrap_or(s));
                }
                Part::Lit(s) => out.push_str(s),
                Part::Slot(name) => {
                    if let Some(v) = slots.get(name) {
                        out.push_str(&if spoken { v.spoken() } else { v.raw() });
                    }
                }
                Part::Call(var) => {
                    let value = match var {
                        CallVar::From => &call.from,
                        CallVar::To => &call.to,
                        CallVar::Id => &call.call_id,
                        CallVar::Direction => &call.direction,
                    };
                    let phone = matches!(var, CallVar::From | CallVar::To);
                    match e164(value) {
                        Some(n) if spoken && phone => out.push_str(&spoken_phone(&n)),
                        _ => out.push_str(value),
                    }
                }
            }
        }
        out
    }
}

/// `text` with its braces doubled, so that it reads as written.
pub fn escape(text: &str) -> String {
    text.replace('{', "{{").replace('}', "}}")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn slots() -> BTreeMap<String, SlotValue> {
        let mut m = BTreeMap::new();
        m.insert("name".into(), SlotValue::Text("Ada".into()));
        m.insert("phone".into(), SlotValue::Phone("+14155550100".into()));
        m
    }

    #[test]
    fn renders_slots_call_variables_and_braces() {
        let call = CallInfo {
            call_id: "c1".into(),
            from: "+442079460958".into(),
            to: "alice".into(),
            direction: "inbound".into(),
        };
        let t =
            Template::parse("Hi {name}, {{sic}} {phone} {missing}from {call.from} to {call.to}")
                .unwrap();
        assert_eq!(
            t.render(&slots(), &call, true),
            "Hi Ada, {sic} 1, 4 1 5, 5 5 5, 0 1 0 0 from 4 4, 2 0 7, 9 4 6, 0 9 5 8 to alice"
        );
        assert_eq!(
            t.render(&slots(), &call, false),
            "Hi Ada, {sic} +14155550100 from +442079460958 to alice"
        );
        assert_eq!(t.slots().collect::<Vec<_>>(), ["name", "phone", "missing"]);
        let mut s = slots();
        s.insert("msg".into(), SlotValue::Text("Call me.".into()));
        let t = Template::parse("It says: {msg}. OK? {name}.").unwrap();
        assert_eq!(t.render(&s, &call, true), "It says: Call me. OK? Ada.");
        assert_eq!(t.literal(), None);
        assert_eq!(
            Template::parse("{phone}").unwrap().single_slot(),
            Some("phone")
        );
        assert_eq!(
            Template::parse("a {{b}}").unwrap().literal().as_deref(),
            Some("a {b}")
        );
    }

    #[test]
    fn bad_templates_say_why() {
        for (t, want) in [
            ("Hi {name", "not closed"),
            ("Hi name}", "without a {"),
            ("Hi {}", "empty"),
            ("Hi {Name}", "slot names are lowercase"),
            ("Hi {call.caller}", "call variables"),
            ("Hi {a{b}}", "not closed"),
        ] {
            let e = Template::parse(t).unwrap_err();
            assert!(e.contains(want), "{t}: {e}");
        }
    }

    #[test]
    fn escape_reads_as_written() {
        let text = "Server {db} is down }{";
        let t = Template::parse(&escape(text)).unwrap();
        assert_eq!(t.literal().as_deref(), Some(text));
    }

    #[test]
    fn slot_names() {
        assert!(valid_slot_name("name"));
        assert!(valid_slot_name("_x1"));
        assert!(!valid_slot_name("1x"));
        assert!(!valid_slot_name("Name"));
        assert!(!valid_slot_name(""));
        assert!(!valid_slot_name("a.b"));
        assert!(!valid_slot_name(&"a".repeat(65)));
    }
}
