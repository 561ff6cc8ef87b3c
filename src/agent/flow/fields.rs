//! Which fields each node type reads and which it needs.

use super::def::{Expect, NodeDef, NodeType};

/// The fields of a node that are set, by their JSON names.
pub(super) fn present(n: &NodeDef) -> Vec<&'static str> {
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
pub(super) fn allowed(kind: NodeType, expect: Expect) -> &'static [&'static str] {
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
pub(super) const EXPECTS: [Expect; 6] = [
    Expect::Text,
    Expect::Digits,
    Expect::YesNo,
    Expect::Number,
    Expect::Phone,
    Expect::Name,
];

/// The fields a node of type `kind` cannot do without.
pub(super) fn required(kind: NodeType) -> &'static [&'static str] {
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

/// How an error message names a kind of capture.
pub(super) fn expect_name(e: Expect) -> &'static str {
    match e {
        Expect::Text => "text",
        Expect::Digits => "digits",
        Expect::YesNo => "yes_no",
        Expect::Number => "a number",
        Expect::Phone => "a phone number",
        Expect::Name => "a name",
    }
}
