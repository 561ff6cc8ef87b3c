//! The checks on a node's fields, each turning a field of the definition
//! into its checked form or reporting why it cannot be.

use std::collections::{HashMap, HashSet};

use serde_json::Value;

use super::def::{CaseDef, ChoiceDef, Expect, HandlerDef, NodeDef};
use super::issue::Issue;
use super::limits::{
    DEFAULT_RETRIES, MAX_CHOICES, MAX_DIGITS, MAX_KEYWORD, MAX_KEYWORDS, MAX_RETRIES, MAX_TEXT,
    MAX_TEXT_CAPTURE,
};
use super::matcher::{Listener, phrase};
use super::nodes::{Capture, Case, Choices, Handler, Retry, SetValue};
use super::template::{SLOT_NAME_MAX, Template, valid_slot_name};

/// The state of one compilation: the problems so far, and what the
/// nodes refer to.
pub(super) struct Cx {
    pub issues: Vec<Issue>,
    pub ids: HashMap<String, usize>,
    pub slots: HashSet<String>,
}

impl Cx {
    pub fn issue(&mut self, path: impl Into<String>, message: impl Into<String>) {
        self.issues.push(Issue::new(path, message));
    }

    /// A reference to a node.
    pub fn node_ref(&mut self, path: &str, id: &str) -> Option<usize> {
        if id.is_empty() {
            self.issue(path, "must name a node");
            return None;
        }
        match self.ids.get(id) {
            Some(&i) => Some(i),
            None => {
                self.issue(path, format!("unknown node \"{}\"", clip(id)));
                None
            }
        }
    }

    /// A required reference (absence was reported with the other
    /// required fields).
    pub fn opt_ref(&mut self, path: &str, id: Option<&String>) -> Option<usize> {
        id.and_then(|id| self.node_ref(path, id))
    }

    /// A text to say or to use as data.
    pub fn text(&mut self, path: &str, text: Option<&String>) -> Option<Template> {
        let text = text?;
        if text.trim().is_empty() {
            self.issue(path, "must not be empty");
            return None;
        }
        if text.chars().count() > MAX_TEXT {
            self.issue(path, format!("must be at most {MAX_TEXT} characters"));
            return None;
        }
        let t = match Template::parse(text) {
            Ok(t) => t,
            Err(e) => {
                self.issue(path, e);
                return None;
            }
        };
        let unknown: Vec<String> = t
            .slots()
            .filter(|s| !self.slots.contains(*s))
            .map(str::to_owned)
            .collect();
        for s in unknown {
            self.issue(path, format!("uses {{{s}}}, but no node sets slot \"{s}\""));
        }
        Some(t)
    }

    /// A slot a node fills or reads.
    pub fn slot_name(&mut self, path: &str, slot: Option<&String>) -> Option<String> {
        let slot = slot?;
        if valid_slot_name(slot) {
            Some(slot.clone())
        } else {
            self.issue(
                path,
                format!(
                    "\"{}\" is not a slot name: use lowercase letters, digits and _, starting with a letter or _, at most {SLOT_NAME_MAX}",
                    clip(slot)
                ),
            );
            None
        }
    }
}

/// A user-supplied string cut short for an error message.
pub(super) fn clip(s: &str) -> String {
    if s.chars().count() > 40 {
        let head: String = s.chars().take(40).collect();
        format!("{head}…")
    } else {
        s.to_owned()
    }
}

/// A length limit within `1..=max`, `default` when absent.
pub(super) fn length(
    cx: &mut Cx,
    path: &str,
    value: Option<u32>,
    default: u32,
    max: u32,
) -> Option<u32> {
    let v = value.unwrap_or(default);
    if (1..=max).contains(&v) {
        Some(v)
    } else {
        cx.issue(path, format!("must be between 1 and {max}"));
        None
    }
}

/// What a `capture` takes.
pub(super) fn capture(cx: &mut Cx, i: usize, n: &NodeDef, expect: Expect) -> Option<Capture> {
    let at = |field: &str| format!("flow.nodes.{i}.{field}");
    Some(match expect {
        Expect::Text => Capture::Text {
            max: length(cx, &at("max_length"), n.max_length, 500, MAX_TEXT_CAPTURE)? as usize,
        },
        Expect::Digits => {
            let min = length(cx, &at("min_length"), n.min_length, 1, MAX_DIGITS);
            let max = length(cx, &at("max_length"), n.max_length, 20, MAX_DIGITS);
            let (min, max) = (min?, max?);
            if min > max {
                cx.issue(
                    at("min_length"),
                    format!("must be at most max_length ({max})"),
                );
                return None;
            }
            Capture::Digits {
                min: min as usize,
                max: max as usize,
            }
        }
        Expect::Number => {
            if let (Some(lo), Some(hi)) = (n.min, n.max)
                && lo > hi
            {
                cx.issue(at("min"), format!("must be at most max ({hi})"));
                return None;
            }
            Capture::Number {
                min: n.min,
                max: n.max,
            }
        }
        Expect::Phone => {
            if let Some(cc) = &n.country_code {
                let ok = (1..=3).contains(&cc.len())
                    && cc.bytes().all(|b| b.is_ascii_digit())
                    && !cc.starts_with('0');
                if !ok {
                    cx.issue(
                        at("country_code"),
                        "must be a country calling code of 1 to 3 digits (1, 44, 353)",
                    );
                    return None;
                }
            }
            Capture::Phone {
                country_code: n.country_code.clone(),
            }
        }
        Expect::YesNo => Capture::YesNo,
        Expect::Name => Capture::Name,
    })
}

/// Retries and failure handlers; `needs` names the handler that must say
/// where to go when the retries run out (if the other does not).
pub(super) fn retry(cx: &mut Cx, i: usize, n: &NodeDef, needs: &str) -> Option<Retry> {
    let at = |field: &str| format!("flow.nodes.{i}.{field}");
    let retries = n.retries.unwrap_or(DEFAULT_RETRIES);
    if retries > MAX_RETRIES {
        cx.issue(at("retries"), format!("must be at most {MAX_RETRIES}"));
    }
    let empty = HandlerDef::default();
    let no_input = n.no_input.as_ref().unwrap_or(&empty);
    let no_match = n.no_match.as_ref().unwrap_or(&empty);
    let handler = |cx: &mut Cx, name: &str, h: &HandlerDef| {
        let reprompt = cx.text(&at(&format!("{name}.reprompt")), h.reprompt.as_ref());
        let next = cx.opt_ref(&at(&format!("{name}.next")), h.next.as_ref());
        let ok =
            (h.reprompt.is_none() || reprompt.is_some()) && (h.next.is_none() || next.is_some());
        (reprompt, next, ok)
    };
    let (in_reprompt, in_next, in_ok) = handler(cx, "no_input", no_input);
    let (match_reprompt, match_next, match_ok) = handler(cx, "no_match", no_match);
    if no_input.next.is_none() && no_match.next.is_none() {
        cx.issue(
            at(needs),
            "needs a next: where the call goes when the retries run out (no_input and no_match share it when only one has it)",
        );
        return None;
    }
    if !(in_ok && match_ok) || retries > MAX_RETRIES {
        return None;
    }
    let in_give_up = in_next.or(match_next)?;
    let match_give_up = match_next.or(in_next)?;
    Some(Retry {
        retries,
        no_input: Handler {
            reprompt: in_reprompt,
            give_up: in_give_up,
        },
        no_match: Handler {
            reprompt: match_reprompt,
            give_up: match_give_up,
        },
    })
}

/// Whether `d` is a DTMF string to send.
pub(super) fn valid_dtmf_string(d: &str) -> bool {
    (1..=32).contains(&d.len())
        && d.bytes()
            .all(|b| b.is_ascii_digit() || matches!(b, b'*' | b'#' | b'A'..=b'D'))
}

/// The choices of an `ask`.
pub(super) fn choices(cx: &mut Cx, i: usize, defs: &[ChoiceDef]) -> Option<Choices> {
    let path = format!("flow.nodes.{i}.choices");
    if defs.is_empty() {
        cx.issue(&path, "must have at least one choice");
        return None;
    }
    if defs.len() > MAX_CHOICES {
        cx.issue(&path, format!("must have at most {MAX_CHOICES} choices"));
        return None;
    }
    let mut out = Choices {
        listeners: Vec::with_capacity(defs.len()),
        next: Vec::with_capacity(defs.len()),
    };
    let mut ok = true;
    let mut phrases: Vec<(Vec<String>, usize)> = Vec::new();
    let mut keys: Vec<(String, usize)> = Vec::new();
    let mut intents = Vec::new();
    for (j, c) in defs.iter().enumerate() {
        let at = format!("{path}.{j}");
        if c.keywords.is_empty() && c.dtmf.is_none() && c.intent.is_none() {
            cx.issue(
                &at,
                "listens for nothing: give it keywords, dtmf or an intent",
            );
            ok = false;
        }
        if c.keywords.len() > MAX_KEYWORDS {
            cx.issue(
                format!("{at}.keywords"),
                format!("must have at most {MAX_KEYWORDS} keywords"),
            );
            ok = false;
        }
        for (k, kw) in c.keywords.iter().enumerate().take(MAX_KEYWORDS) {
            let kpath = format!("{at}.keywords.{k}");
            if kw.chars().count() > MAX_KEYWORD {
                cx.issue(kpath, format!("must be at most {MAX_KEYWORD} characters"));
                ok = false;
                continue;
            }
            let p = phrase(kw);
            if p.is_empty() {
                cx.issue(kpath, "has no words to listen for");
                ok = false;
                continue;
            }
            match phrases.iter().find(|(q, _)| *q == p) {
                Some((_, other)) if *other != j => {
                    cx.issue(
                        kpath,
                        format!("\"{}\" is also a keyword of choice {other}", clip(kw)),
                    );
                    ok = false;
                }
                _ => phrases.push((p, j)),
            }
        }
        if let Some(d) = &c.dtmf {
            let valid = (1..=8).contains(&d.len())
                && d.bytes()
                    .all(|b| b.is_ascii_digit() || matches!(b, b'*' | b'A'..=b'D'));
            if !valid {
                cx.issue(
                    format!("{at}.dtmf"),
                    "must be 1 to 8 keys from 0-9, * and A-D (# ends what the caller keys)",
                );
                ok = false;
            } else if let Some((other_d, other)) = keys
                .iter()
                .find(|(o, _)| o.starts_with(d.as_str()) || d.starts_with(o.as_str()))
            {
                let why = if other_d == d {
                    format!("\"{d}\" is also the dtmf of choice {other}")
                } else {
                    format!(
                        "\"{d}\" and choice {other}'s \"{other_d}\" begin alike: the shorter would always be taken first"
                    )
                };
                cx.issue(format!("{at}.dtmf"), why);
                ok = false;
            } else {
                keys.push((d.clone(), j));
            }
        }
        if let Some(intent) = c.intent {
            if let Some((_, other)) = intents.iter().find(|(x, _)| *x == intent) {
                cx.issue(
                    format!("{at}.intent"),
                    format!("is also the intent of choice {other}"),
                );
                ok = false;
            } else {
                intents.push((intent, j));
            }
        }
        let next = cx.node_ref(&format!("{at}.next"), &c.next);
        if let Some(next) = next {
            out.listeners
                .push(Listener::new(&c.keywords, c.dtmf.as_deref(), c.intent));
            out.next.push(next);
        } else {
            ok = false;
        }
    }
    ok.then_some(out)
}

/// Whether a JSON value is a scalar a slot can be compared with.
fn scalar(v: &Value) -> bool {
    matches!(v, Value::String(_) | Value::Bool(_)) || v.as_i64().is_some()
}

/// The cases of a `branch`.
pub(super) fn cases(cx: &mut Cx, i: usize, defs: &[CaseDef]) -> Option<Vec<Case>> {
    let path = format!("flow.nodes.{i}.cases");
    if defs.is_empty() {
        cx.issue(&path, "must have at least one case");
        return None;
    }
    if defs.len() > MAX_CHOICES {
        cx.issue(&path, format!("must have at most {MAX_CHOICES} cases"));
        return None;
    }
    let mut out = Vec::with_capacity(defs.len());
    let mut ok = true;
    for (k, c) in defs.iter().enumerate() {
        let at = format!("{path}.{k}");
        let slot = if c.slot.is_empty() {
            cx.issue(format!("{at}.slot"), "required");
            None
        } else {
            cx.slot_name(&format!("{at}.slot"), Some(&c.slot))
        };
        if let Some(s) = &slot
            && !cx.slots.contains(s)
        {
            cx.issue(format!("{at}.slot"), format!("no node sets slot \"{s}\""));
            ok = false;
        }
        let tests = [
            c.equals.is_some(),
            c.one_of.is_some(),
            c.is_set.is_some(),
            c.min.is_some(),
            c.max.is_some(),
        ];
        if !tests.contains(&true) {
            cx.issue(
                &at,
                "tests nothing: give it equals, one_of, is_set, min or max",
            );
            ok = false;
        }
        if let Some(v) = &c.equals
            && !scalar(v)
        {
            cx.issue(
                format!("{at}.equals"),
                "must be text, a whole number or true/false",
            );
            ok = false;
        }
        if let Some(list) = &c.one_of {
            if list.is_empty() || list.len() > MAX_KEYWORDS {
                cx.issue(
                    format!("{at}.one_of"),
                    format!("must have 1 to {MAX_KEYWORDS} values"),
                );
                ok = false;
            }
            for (m, v) in list.iter().enumerate() {
                if !scalar(v) {
                    cx.issue(
                        format!("{at}.one_of.{m}"),
                        "must be text, a whole number or true/false",
                    );
                    ok = false;
                }
            }
        }
        if let (Some(lo), Some(hi)) = (c.min, c.max)
            && lo > hi
        {
            cx.issue(format!("{at}.min"), format!("must be at most max ({hi})"));
            ok = false;
        }
        let next = cx.node_ref(&format!("{at}.next"), &c.next);
        if let (Some(slot), Some(next)) = (slot, next) {
            out.push(Case {
                slot,
                equals: c.equals.clone(),
                one_of: c.one_of.clone(),
                is_set: c.is_set,
                min: c.min,
                max: c.max,
                next,
            });
        } else {
            ok = false;
        }
    }
    ok.then_some(out)
}

/// The value of a `set`.
pub(super) fn set_value(cx: &mut Cx, path: &str, value: Option<&Value>) -> Option<SetValue> {
    match value? {
        Value::Null => Some(SetValue::Clear),
        Value::Bool(b) => Some(SetValue::Bool(*b)),
        Value::String(s) => {
            // An empty text is a way to clear a slot too; "" is allowed.
            if s.is_empty() {
                return Some(SetValue::Clear);
            }
            cx.text(path, Some(s)).map(SetValue::Text)
        }
        v => match v.as_i64() {
            Some(n) => Some(SetValue::Number(n)),
            None => {
                cx.issue(path, "must be text, a whole number, true/false or null");
                None
            }
        },
    }
}
