//! From the definition to a checked flow: every field a node's type
//! needs, nothing it does not use, every reference resolved to an index,
//! every text parsed, every keyword normalised. The checks and the
//! translation are one pass, so a flow that validates is exactly a flow
//! that runs.

use std::collections::{HashMap, HashSet};

use serde_json::Value;

use super::def::{CaseDef, ChoiceDef, Expect, FlowDef, HandlerDef, NodeDef, NodeType, Outcome};
use super::graph;
use super::issue::{Issue, parse};
use super::matcher::{Listener, phrase};
use super::slots::e164;
use super::template::{SLOT_NAME_MAX, Template, valid_slot_name};

/// Most nodes in a flow.
pub const MAX_NODES: usize = 500;
/// Longest text, prompt or reprompt, in characters.
pub const MAX_TEXT: usize = 4_000;
/// Most choices of an `ask`, or cases of a `branch`.
pub const MAX_CHOICES: usize = 32;
/// Most keywords of one choice.
pub const MAX_KEYWORDS: usize = 64;
/// Longest keyword, in characters.
const MAX_KEYWORD: usize = 200;
/// Most retries of a listening node.
pub const MAX_RETRIES: u32 = 10;
/// Retries when a node does not say.
pub const DEFAULT_RETRIES: u32 = 2;
/// Most digits a `capture` of digits takes.
const MAX_DIGITS: u32 = 32;
/// Longest `capture` of text, in characters.
const MAX_TEXT_CAPTURE: u32 = 2_000;
/// Longest message, in characters.
const MAX_MESSAGE: u32 = 10_000;

/// A listening node's retries and where it gives up.
#[derive(Debug, Clone)]
pub(super) struct Retry {
    pub retries: u32,
    pub no_input: Handler,
    pub no_match: Handler,
}

/// One of a listening node's failure handlers.
#[derive(Debug, Clone)]
pub(super) struct Handler {
    pub reprompt: Option<Template>,
    /// Where the call goes when the retries run out.
    pub give_up: usize,
}

/// What a `capture` takes, with its limits.
#[derive(Debug, Clone)]
pub(super) enum Capture {
    Text { max: usize },
    Digits { min: usize, max: usize },
    YesNo,
    Number { min: Option<i64>, max: Option<i64> },
    Phone { country_code: Option<String> },
    Name,
}

/// An `ask` node's choices: what each listens for, and where it goes.
#[derive(Debug, Clone)]
pub(super) struct Choices {
    pub listeners: Vec<Listener>,
    pub next: Vec<usize>,
}

#[derive(Debug, Clone)]
pub(super) struct Case {
    pub slot: String,
    pub equals: Option<Value>,
    pub one_of: Option<Vec<Value>>,
    pub is_set: Option<bool>,
    pub min: Option<i64>,
    pub max: Option<i64>,
    pub next: usize,
}

#[derive(Debug, Clone)]
pub(super) enum SetValue {
    Text(Template),
    Number(i64),
    Bool(bool),
    Clear,
}

/// A checked node; references are indices into [`Flow::nodes`].
#[derive(Debug, Clone)]
pub(super) enum Node {
    Say {
        text: Template,
        next: usize,
    },
    Ask {
        prompt: Template,
        choices: Choices,
        retry: Retry,
    },
    Capture {
        prompt: Template,
        slot: String,
        expect: Capture,
        next: usize,
        retry: Retry,
    },
    Message {
        prompt: Template,
        slot: String,
        max: usize,
        next: usize,
        retry: Retry,
    },
    Branch {
        cases: Vec<Case>,
        default: usize,
    },
    Set {
        slot: String,
        value: SetValue,
        next: usize,
    },
    Dtmf {
        digits: Template,
        next: usize,
    },
    Transfer {
        text: Option<Template>,
        number: Template,
        outcome: Outcome,
        on_failure: Option<usize>,
    },
    Hangup {
        text: Option<Template>,
        outcome: Outcome,
    },
    Goto {
        next: usize,
    },
}

/// A checked flow, ready to run. Built by [`Flow::new`] or
/// [`Flow::from_json`], which refuse a definition with any
/// [`Issue`].
#[derive(Debug, Clone)]
pub struct Flow {
    def: FlowDef,
    pub(super) nodes: Vec<Node>,
    pub(super) ids: Vec<String>,
    pub(super) start: usize,
}

impl Flow {
    /// Checks `def` and prepares it to run.
    pub fn new(def: FlowDef) -> Result<Flow, Vec<Issue>> {
        let (nodes, start) = compile(&def)?;
        let ids = def.nodes.iter().map(|n| n.id.clone()).collect();
        Ok(Flow {
            def,
            nodes,
            ids,
            start,
        })
    }

    /// Reads and checks a definition in JSON (the value of `model.flow`).
    pub fn from_json(value: &Value) -> Result<Flow, Vec<Issue>> {
        Flow::new(parse(value)?)
    }

    /// The definition this flow was built from.
    pub fn definition(&self) -> &FlowDef {
        &self.def
    }

    /// A flow that says `text` and hangs up (`not_achieved`), built
    /// without the checks it cannot fail: what runs should a built-in
    /// flow ever be refused.
    pub(super) fn hang_up(text: &str) -> Flow {
        let def = FlowDef {
            start: "bye".into(),
            nodes: vec![NodeDef::hangup(
                "bye",
                Some(&super::template::escape(text)),
                Outcome::NotAchieved,
            )],
        };
        Flow {
            def,
            nodes: vec![Node::Hangup {
                text: Some(Template::plain(text)),
                outcome: Outcome::NotAchieved,
            }],
            ids: vec!["bye".into()],
            start: 0,
        }
    }

    /// The numbers the flow may transfer to that are written in it (not
    /// read from a slot), with their paths, so that the API can hold them
    /// to its deny list.
    pub fn transfer_numbers(&self) -> Vec<(String, String)> {
        self.def
            .nodes
            .iter()
            .enumerate()
            .filter(|(_, n)| n.kind == Some(NodeType::Transfer))
            .filter_map(|(i, n)| {
                let t = Template::parse(n.number.as_deref()?).ok()?;
                Some((format!("flow.nodes.{i}.number"), t.literal()?))
            })
            .collect()
    }
}

/// Every problem with `def`; empty when it is a flow that runs.
///
/// Unreachable nodes are errors, not warnings: the API has no channel for
/// warnings, and a node nothing leads to is nearly always a misspelt
/// reference whose intended target is the orphan.
pub fn validate(def: &FlowDef) -> Vec<Issue> {
    compile(def).err().unwrap_or_default()
}

/// The fields of a node that are set, by their JSON names.
fn present(n: &NodeDef) -> Vec<&'static str> {
    let fields = [
        ("text", n.text.is_some()),
        ("prompt", n.prompt.is_some()),
        ("next", n.next.is_some()),
        ("choices", n.choices.is_some()),
        ("slot", n.slot.is_some()),
        ("expect", n.expect.is_some()),
        ("min_length", n.min_length.is_some()),
        ("max_length", n.max_length.is_some()),
        ("min", n.min.is_some()),
        ("max", n.max.is_some()),
        ("country_code", n.country_code.is_some()),
        ("retries", n.retries.is_some()),
        ("no_input", n.no_input.is_some()),
        ("no_match", n.no_match.is_some()),
        ("value", n.value.is_some()),
        ("cases", n.cases.is_some()),
        ("default", n.default.is_some()),
        ("number", n.number.is_some()),
        ("on_failure", n.on_failure.is_some()),
        ("digits", n.digits.is_some()),
        ("outcome", n.outcome.is_some()),
    ];
    fields
        .into_iter()
        .filter_map(|(name, set)| set.then_some(name))
        .collect()
}

/// The fields a node of type `kind` reads.
fn allowed(kind: NodeType, expect: Expect) -> &'static [&'static str] {
    match kind {
        NodeType::Say => &["text", "next"],
        NodeType::Ask => &["prompt", "choices", "retries", "no_input", "no_match"],
        NodeType::Capture => match expect {
            Expect::Text => &[
                "prompt",
                "slot",
                "expect",
                "next",
                "max_length",
                "retries",
                "no_input",
                "no_match",
            ],
            Expect::Digits => &[
                "prompt",
                "slot",
                "expect",
                "next",
                "min_length",
                "max_length",
                "retries",
                "no_input",
                "no_match",
            ],
            Expect::Number => &[
                "prompt", "slot", "expect", "next", "min", "max", "retries", "no_input", "no_match",
            ],
            Expect::Phone => &[
                "prompt",
                "slot",
                "expect",
                "next",
                "country_code",
                "retries",
                "no_input",
                "no_match",
            ],
            Expect::YesNo | Expect::Name => &[
                "prompt", "slot", "expect", "next", "retries", "no_input", "no_match",
            ],
        },
        NodeType::Message => &[
            "prompt",
            "slot",
            "next",
            "max_length",
            "retries",
            "no_input",
            "no_match",
        ],
        NodeType::Branch => &["cases", "default"],
        NodeType::Set => &["slot", "value", "next"],
        NodeType::Dtmf => &["digits", "next"],
        NodeType::Transfer => &["text", "number", "outcome", "on_failure"],
        NodeType::Hangup => &["text", "outcome"],
        NodeType::Goto => &["next"],
    }
}

/// Every kind of capture, for telling "never used by a capture" from
/// "not used by this kind of capture".
const EXPECTS: [Expect; 6] = [
    Expect::Text,
    Expect::Digits,
    Expect::YesNo,
    Expect::Number,
    Expect::Phone,
    Expect::Name,
];

/// The fields a node of type `kind` cannot do without.
fn required(kind: NodeType) -> &'static [&'static str] {
    match kind {
        NodeType::Say => &["text", "next"],
        NodeType::Ask => &["prompt", "choices"],
        NodeType::Capture | NodeType::Message => &["prompt", "slot", "next"],
        NodeType::Branch => &["cases", "default"],
        NodeType::Set => &["slot", "value", "next"],
        NodeType::Dtmf => &["digits", "next"],
        NodeType::Transfer => &["number", "outcome"],
        NodeType::Hangup => &["outcome"],
        NodeType::Goto => &["next"],
    }
}

/// Whether an id is usable: 1 to 64 letters, digits, `_` or `-`.
fn valid_id(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= 64
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}

/// The state of one compilation: the problems so far, and what the
/// nodes refer to.
struct Cx {
    issues: Vec<Issue>,
    ids: HashMap<String, usize>,
    slots: HashSet<String>,
}

impl Cx {
    fn issue(&mut self, path: impl Into<String>, message: impl Into<String>) {
        self.issues.push(Issue::new(path, message));
    }

    /// A reference to a node.
    fn node_ref(&mut self, path: &str, id: &str) -> Option<usize> {
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
    fn opt_ref(&mut self, path: &str, id: Option<&String>) -> Option<usize> {
        id.and_then(|id| self.node_ref(path, id))
    }

    /// A text to say or to use as data.
    fn text(&mut self, path: &str, text: Option<&String>) -> Option<Template> {
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
    fn slot_name(&mut self, path: &str, slot: Option<&String>) -> Option<String> {
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
fn clip(s: &str) -> String {
    if s.chars().count() > 40 {
        let head: String = s.chars().take(40).collect();
        format!("{head}…")
    } else {
        s.to_owned()
    }
}

/// Checks and translates `def`.
fn compile(def: &FlowDef) -> Result<(Vec<Node>, usize), Vec<Issue>> {
    let mut cx = Cx {
        issues: Vec::new(),
        ids: HashMap::new(),
        slots: HashSet::new(),
    };
    if def.nodes.is_empty() {
        cx.issue("flow.nodes", "must have at least one node");
    }
    if def.nodes.len() > MAX_NODES {
        cx.issue("flow.nodes", format!("must have at most {MAX_NODES} nodes"));
        return Err(cx.issues);
    }
    for (i, n) in def.nodes.iter().enumerate() {
        let path = format!("flow.nodes.{i}.id");
        if n.id.is_empty() {
            cx.issue(path, "required");
        } else if !valid_id(&n.id) {
            cx.issue(
                path,
                format!(
                    "\"{}\" is not a node id: use 1 to 64 letters, digits, _ or -",
                    clip(&n.id)
                ),
            );
        } else if let Some(first) = cx.ids.get(&n.id) {
            cx.issue(path, format!("\"{}\" is also the id of node {first}", n.id));
        } else {
            cx.ids.insert(n.id.clone(), i);
        }
        let fills_slot = matches!(
            n.kind,
            Some(NodeType::Capture | NodeType::Message | NodeType::Set)
        );
        if fills_slot
            && let Some(s) = &n.slot
            && valid_slot_name(s)
        {
            cx.slots.insert(s.clone());
        }
    }
    let start = if def.start.is_empty() {
        cx.issue("flow.start", "required: the id of the first node");
        None
    } else {
        cx.node_ref("flow.start", &def.start)
    };
    let mut nodes = Vec::with_capacity(def.nodes.len());
    for (i, n) in def.nodes.iter().enumerate() {
        nodes.push(node(&mut cx, i, n));
    }
    graph::check(&mut cx.issues, def, &cx.ids, start);
    match (cx.issues.is_empty(), start) {
        (true, Some(start)) => {
            let nodes: Option<Vec<Node>> = nodes.into_iter().collect();
            match nodes {
                Some(nodes) => Ok((nodes, start)),
                None => Err(vec![Issue::new("flow", "could not be compiled")]),
            }
        }
        _ => Err(cx.issues),
    }
}

/// Checks and translates node `i`.
fn node(cx: &mut Cx, i: usize, n: &NodeDef) -> Option<Node> {
    let at = |field: &str| format!("flow.nodes.{i}.{field}");
    let Some(kind) = n.kind else {
        cx.issue(at("type"), "required");
        return None;
    };
    let expect = n.expect.unwrap_or_default();
    let reads = allowed(kind, expect);
    for field in present(n) {
        if !reads.contains(&field) {
            let some_capture = EXPECTS
                .iter()
                .any(|e| allowed(NodeType::Capture, *e).contains(&field));
            let why = if kind == NodeType::Capture && some_capture {
                format!("is not used when a capture expects {}", expect_name(expect))
            } else {
                format!("is not used by a {} node", kind.as_str())
            };
            cx.issue(at(field), why);
        }
    }
    let present = present(n);
    let mut missing = false;
    for field in required(kind) {
        if !present.contains(field) {
            cx.issue(at(field), format!("required for a {} node", kind.as_str()));
            missing = true;
        }
    }
    let next = cx.opt_ref(&at("next"), n.next.as_ref());
    let node = match kind {
        NodeType::Say => Node::Say {
            text: cx.text(&at("text"), n.text.as_ref())?,
            next: next?,
        },
        NodeType::Goto => Node::Goto { next: next? },
        NodeType::Ask => {
            let prompt = cx.text(&at("prompt"), n.prompt.as_ref());
            let choices = choices(cx, i, n.choices.as_deref().unwrap_or_default());
            let retry = retry(cx, i, n, "no_match");
            Node::Ask {
                prompt: prompt?,
                choices: choices?,
                retry: retry?,
            }
        }
        NodeType::Capture => {
            let prompt = cx.text(&at("prompt"), n.prompt.as_ref());
            let slot = cx.slot_name(&at("slot"), n.slot.as_ref());
            let expect = capture(cx, i, n, expect);
            let retry = retry(cx, i, n, "no_match");
            Node::Capture {
                prompt: prompt?,
                slot: slot?,
                expect: expect?,
                next: next?,
                retry: retry?,
            }
        }
        NodeType::Message => {
            let prompt = cx.text(&at("prompt"), n.prompt.as_ref());
            let slot = cx.slot_name(&at("slot"), n.slot.as_ref());
            let max = length(cx, &at("max_length"), n.max_length, 2_000, MAX_MESSAGE);
            let retry = retry(cx, i, n, "no_input");
            Node::Message {
                prompt: prompt?,
                slot: slot?,
                max: max? as usize,
                next: next?,
                retry: retry?,
            }
        }
        NodeType::Branch => {
            let cases = cases(cx, i, n.cases.as_deref().unwrap_or_default());
            let default = cx.opt_ref(&at("default"), n.default.as_ref());
            Node::Branch {
                cases: cases?,
                default: default?,
            }
        }
        NodeType::Set => {
            let slot = cx.slot_name(&at("slot"), n.slot.as_ref());
            let value = set_value(cx, &at("value"), n.value.as_ref());
            Node::Set {
                slot: slot?,
                value: value?,
                next: next?,
            }
        }
        NodeType::Dtmf => {
            let digits = cx.text(&at("digits"), n.digits.as_ref());
            if let Some(lit) = digits.as_ref().and_then(Template::literal)
                && !valid_dtmf_string(&lit)
            {
                cx.issue(at("digits"), "must be 1 to 32 keys from 0-9, *, # and A-D");
            }
            Node::Dtmf {
                digits: digits?,
                next: next?,
            }
        }
        NodeType::Transfer => {
            let text = cx.text(&at("text"), n.text.as_ref());
            let number = cx.text(&at("number"), n.number.as_ref());
            if let Some(lit) = number.as_ref().and_then(Template::literal)
                && e164(&lit).is_none()
            {
                cx.issue(
                    at("number"),
                    "must be an E.164 number such as +14155550100, or a {slot} that holds one",
                );
            }
            let on_failure = cx.opt_ref(&at("on_failure"), n.on_failure.as_ref());
            if n.on_failure.is_some() && on_failure.is_none() {
                return None;
            }
            if n.text.is_some() && text.is_none() {
                return None;
            }
            Node::Transfer {
                text,
                number: number?,
                outcome: n.outcome?,
                on_failure,
            }
        }
        NodeType::Hangup => {
            let text = cx.text(&at("text"), n.text.as_ref());
            if n.text.is_some() && text.is_none() {
                return None;
            }
            Node::Hangup {
                text,
                outcome: n.outcome?,
            }
        }
    };
    (!missing).then_some(node)
}

fn expect_name(e: Expect) -> &'static str {
    match e {
        Expect::Text => "text",
        Expect::Digits => "digits",
        Expect::YesNo => "yes_no",
        Expect::Number => "a number",
        Expect::Phone => "a phone number",
        Expect::Name => "a name",
    }
}

/// A length limit within `1..=max`, `default` when absent.
fn length(cx: &mut Cx, path: &str, value: Option<u32>, default: u32, max: u32) -> Option<u32> {
    let v = value.unwrap_or(default);
    if (1..=max).contains(&v) {
        Some(v)
    } else {
        cx.issue(path, format!("must be between 1 and {max}"));
        None
    }
}

/// What a `capture` takes.
fn capture(cx: &mut Cx, i: usize, n: &NodeDef, expect: Expect) -> Option<Capture> {
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
fn retry(cx: &mut Cx, i: usize, n: &NodeDef, needs: &str) -> Option<Retry> {
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
fn valid_dtmf_string(d: &str) -> bool {
    (1..=32).contains(&d.len())
        && d.bytes()
            .all(|b| b.is_ascii_digit() || matches!(b, b'*' | b'#' | b'A'..=b'D'))
}

/// The choices of an `ask`.
fn choices(cx: &mut Cx, i: usize, defs: &[ChoiceDef]) -> Option<Choices> {
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
fn cases(cx: &mut Cx, i: usize, defs: &[CaseDef]) -> Option<Vec<Case>> {
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
fn set_value(cx: &mut Cx, path: &str, value: Option<&Value>) -> Option<SetValue> {
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
