//! From the definition to a checked flow: every field a node's type
//! needs, nothing it does not use, every reference resolved to an index,
//! every text parsed, every keyword normalised. The checks and the
//! translation are one pass, so a flow that validates is exactly a flow
//! that runs.

use std::collections::{HashMap, HashSet};

use serde_json::Value;

use super::checks::{
    Cx, capture, cases, choices, clip, length, retry, set_value, valid_dtmf_string,
};
use super::def::{FlowDef, NodeDef, NodeType, Outcome};
use super::fields::{EXPECTS, allowed, expect_name, present, required};
use super::graph;
use super::issue::{Issue, parse};
use super::limits::{MAX_MESSAGE, MAX_NODES};
use super::nodes::Node;
use super::slots::e164;
use super::template::{Template, valid_slot_name};

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

/// Whether an id is usable: 1 to 64 letters, digits, `_` or `-`.
fn valid_id(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= 64
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
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
