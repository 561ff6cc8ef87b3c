//! The flow definition as it is written: the JSON an agent's
//! `model.flow` holds (and a flow file), with serde types.
//!
//! Every node is one flat object whose `type` says which fields it uses.
//! Fields are optional at this level so that one pass of
//! [`validate`](super::validate) reports every problem at once with its
//! path, instead of serde stopping at the first missing field; the
//! checked, typed form is [`Flow`](super::Flow).

use serde::{Deserialize, Deserializer, Serialize};
use serde_json::Value;

/// A flow: its nodes and the one a call starts at.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FlowDef {
    /// Id of the node the call starts at.
    #[serde(default)]
    pub start: String,
    /// The nodes, in any order; ids are unique.
    #[serde(default)]
    pub nodes: Vec<NodeDef>,
}

/// What a node does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum NodeType {
    /// Say `text`, then go to `next`.
    Say,
    /// Say `prompt`, listen, and take the first of `choices` that matches.
    Ask,
    /// Say `prompt`, listen, and fill `slot` with what `expect` asks for.
    Capture,
    /// Say `prompt` and take whatever the caller says next into `slot`.
    Message,
    /// Go to the first of `cases` whose condition holds, else `default`.
    Branch,
    /// Set `slot` to `value`, then go to `next`.
    Set,
    /// Send `digits` as DTMF on the call (`send_dtmf`), then go to `next`.
    Dtmf,
    /// Say `text`, then transfer the call to `number` (`transfer_call`).
    Transfer,
    /// Say `text`, then hang up (`end_call`).
    Hangup,
    /// Go to `next`.
    Goto,
}

impl NodeType {
    /// The name used in JSON.
    pub fn as_str(self) -> &'static str {
        match self {
            NodeType::Say => "say",
            NodeType::Ask => "ask",
            NodeType::Capture => "capture",
            NodeType::Message => "message",
            NodeType::Branch => "branch",
            NodeType::Set => "set",
            NodeType::Dtmf => "dtmf",
            NodeType::Transfer => "transfer",
            NodeType::Hangup => "hangup",
            NodeType::Goto => "goto",
        }
    }

    /// Whether the node waits for the caller.
    pub fn listens(self) -> bool {
        matches!(self, NodeType::Ask | NodeType::Capture | NodeType::Message)
    }
}

/// What a `capture` node listens for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Expect {
    /// Any words (at most `max_length` characters).
    #[default]
    Text,
    /// Digits, keyed (ended by `#` or `max_length`) or spoken, between
    /// `min_length` and `max_length` of them; kept as text so that leading
    /// zeros survive.
    Digits,
    /// Yes or no, spoken or keyed (1 for yes, 2 for no); a boolean.
    YesNo,
    /// A whole number spoken as words (`twenty three`), digits (`23`) or
    /// digit by digit (`two three`), between `min` and `max`.
    Number,
    /// A phone number, kept in E.164 (`+14155550100`). Numbers said
    /// without a country code get `country_code`, or the caller's own.
    Phone,
    /// A person's name (`my name is Ada Lovelace` gives `Ada Lovelace`).
    Name,
}

/// How a call ended, as an end node declares it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    /// The call did what it was for.
    Achieved,
    /// Some of it.
    Partial,
    /// None of it.
    NotAchieved,
}

impl Outcome {
    /// The name used in JSON and call records.
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Achieved => "achieved",
            Outcome::Partial => "partial",
            Outcome::NotAchieved => "not_achieved",
        }
    }
}

/// A yes or a no.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum YesNo {
    /// Yes, yeah, sure, correct, 1 on the keypad…
    Yes,
    /// No, nope, no thanks, 2 on the keypad…
    No,
}

/// One node. Which fields apply depends on `type`; the others must be
/// absent (see `docs/flows.md` for the table).
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NodeDef {
    /// Unique id: 1 to 64 letters, digits, `_` or `-`.
    #[serde(default)]
    pub id: String,
    /// What the node does.
    #[serde(rename = "type", default, skip_serializing_if = "Option::is_none")]
    pub kind: Option<NodeType>,
    /// Words to say (`say`, `transfer`, `hangup`); may use `{slot}`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub text: Option<String>,
    /// The question (`ask`, `capture`, `message`); may use `{slot}`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prompt: Option<String>,
    /// The node after this one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next: Option<String>,
    /// The answers an `ask` node listens for, tried in order.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub choices: Option<Vec<ChoiceDef>>,
    /// The slot a `capture`, `message` or `set` node fills.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub slot: Option<String>,
    /// What a `capture` node listens for (`text` if absent).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expect: Option<Expect>,
    /// Fewest digits (`capture` of `digits`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min_length: Option<u32>,
    /// Most digits (`digits`), or most characters (`text`, `message`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_length: Option<u32>,
    /// Smallest value (`capture` of a `number`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min: Option<i64>,
    /// Largest value (`capture` of a `number`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max: Option<i64>,
    /// Country calling code for phone numbers said without one (`1`,
    /// `44`); the caller's own when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub country_code: Option<String>,
    /// How many times to ask again after no input or no match (2 if
    /// absent, at most 10) before giving up.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retries: Option<u32>,
    /// What to do when the caller says nothing.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub no_input: Option<HandlerDef>,
    /// What to do when the answer does not fit.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub no_match: Option<HandlerDef>,
    /// The value a `set` node stores: text (may use `{slot}`), a whole
    /// number, `true`/`false`, or `null` to clear the slot.
    #[serde(
        default,
        deserialize_with = "present",
        skip_serializing_if = "Option::is_none"
    )]
    pub value: Option<Value>,
    /// A `branch` node's conditions, tried in order.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cases: Option<Vec<CaseDef>>,
    /// Where a `branch` goes when no case holds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub default: Option<String>,
    /// Where a `transfer` sends the call: E.164, or `{slot}`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub number: Option<String>,
    /// Where a `transfer` goes when the transfer fails; without it the
    /// call ends as `not_achieved`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub on_failure: Option<String>,
    /// What a `dtmf` node keys (`0`-`9`, `*`, `#`, `A`-`D`); may use
    /// `{slot}`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub digits: Option<String>,
    /// How the call went when it ends here (`transfer`, `hangup`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub outcome: Option<Outcome>,
}

/// One answer an `ask` node listens for. It matches when the caller says
/// one of `keywords`, keys `dtmf` (or says its digits), or answers yes or
/// no as `intent` says.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ChoiceDef {
    /// Words or phrases, synonyms of each other (`["sales", "buy"]`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub keywords: Vec<String>,
    /// Keys that choose this answer (`1`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dtmf: Option<String>,
    /// Matches any way of saying yes (or no).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub intent: Option<YesNo>,
    /// Where the call goes on this answer.
    #[serde(default)]
    pub next: String,
}

/// What a listening node does on no input or no match.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HandlerDef {
    /// Said instead of the prompt when asking again (the prompt if
    /// absent); include the question.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reprompt: Option<String>,
    /// Where the call goes once the retries are used up; the other
    /// handler's `next` if absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next: Option<String>,
}

/// One condition of a `branch` node; all the tests given must hold.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CaseDef {
    /// The slot tested.
    #[serde(default)]
    pub slot: String,
    /// Holds when the slot equals this (text compares without regard to
    /// case; `"yes"` equals `true`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub equals: Option<Value>,
    /// Holds when the slot equals one of these.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub one_of: Option<Vec<Value>>,
    /// Holds when the slot has (`true`) or has not (`false`) been filled.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub is_set: Option<bool>,
    /// Holds when the slot is a number at least this.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min: Option<i64>,
    /// Holds when the slot is a number at most this.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max: Option<i64>,
    /// Where the call goes when the case holds.
    #[serde(default)]
    pub next: String,
}

/// Keeps an explicit `null` apart from an absent field (`set` with
/// `"value": null` clears the slot).
fn present<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Value>, D::Error> {
    Value::deserialize(d).map(Some)
}

// Constructors for flows written in Rust (the built-in ones).

impl NodeDef {
    /// An empty node of type `kind`.
    pub fn new(id: &str, kind: NodeType) -> Self {
        NodeDef {
            id: id.to_owned(),
            kind: Some(kind),
            ..NodeDef::default()
        }
    }

    /// `say` `text`, then `next`.
    pub fn say(id: &str, text: &str, next: &str) -> Self {
        NodeDef {
            text: Some(text.to_owned()),
            next: Some(next.to_owned()),
            ..NodeDef::new(id, NodeType::Say)
        }
    }

    /// `ask` `prompt`, listening for `choices`.
    pub fn ask(id: &str, prompt: &str, choices: Vec<ChoiceDef>) -> Self {
        NodeDef {
            prompt: Some(prompt.to_owned()),
            choices: Some(choices),
            ..NodeDef::new(id, NodeType::Ask)
        }
    }

    /// `capture` into `slot` what `expect` asks for, then `next`.
    pub fn capture(id: &str, prompt: &str, slot: &str, expect: Expect, next: &str) -> Self {
        NodeDef {
            prompt: Some(prompt.to_owned()),
            slot: Some(slot.to_owned()),
            expect: Some(expect),
            next: Some(next.to_owned()),
            ..NodeDef::new(id, NodeType::Capture)
        }
    }

    /// `message` into `slot`, then `next`.
    pub fn message(id: &str, prompt: &str, slot: &str, next: &str) -> Self {
        NodeDef {
            prompt: Some(prompt.to_owned()),
            slot: Some(slot.to_owned()),
            next: Some(next.to_owned()),
            ..NodeDef::new(id, NodeType::Message)
        }
    }

    /// `branch` on `cases`, else `default`.
    pub fn branch(id: &str, cases: Vec<CaseDef>, default: &str) -> Self {
        NodeDef {
            cases: Some(cases),
            default: Some(default.to_owned()),
            ..NodeDef::new(id, NodeType::Branch)
        }
    }

    /// `set` `slot` to `value`, then `next`.
    pub fn set(id: &str, slot: &str, value: Value, next: &str) -> Self {
        NodeDef {
            slot: Some(slot.to_owned()),
            value: Some(value),
            next: Some(next.to_owned()),
            ..NodeDef::new(id, NodeType::Set)
        }
    }

    /// `dtmf`: key `digits`, then `next`.
    pub fn dtmf(id: &str, digits: &str, next: &str) -> Self {
        NodeDef {
            digits: Some(digits.to_owned()),
            next: Some(next.to_owned()),
            ..NodeDef::new(id, NodeType::Dtmf)
        }
    }

    /// `transfer` to `number` after saying `text`.
    pub fn transfer(id: &str, text: Option<&str>, number: &str, outcome: Outcome) -> Self {
        NodeDef {
            text: text.map(str::to_owned),
            number: Some(number.to_owned()),
            outcome: Some(outcome),
            ..NodeDef::new(id, NodeType::Transfer)
        }
    }

    /// `hangup` after saying `text`.
    pub fn hangup(id: &str, text: Option<&str>, outcome: Outcome) -> Self {
        NodeDef {
            text: text.map(str::to_owned),
            outcome: Some(outcome),
            ..NodeDef::new(id, NodeType::Hangup)
        }
    }

    /// `goto` `next`.
    pub fn goto(id: &str, next: &str) -> Self {
        NodeDef {
            next: Some(next.to_owned()),
            ..NodeDef::new(id, NodeType::Goto)
        }
    }

    /// The same node with `retries` and the two handlers.
    pub fn retrying(mut self, retries: u32, no_input: HandlerDef, no_match: HandlerDef) -> Self {
        self.retries = Some(retries);
        self.no_input = Some(no_input);
        self.no_match = Some(no_match);
        self
    }
}

impl ChoiceDef {
    /// A choice that goes to `next`; add what it listens for.
    pub fn to(next: &str) -> Self {
        ChoiceDef {
            next: next.to_owned(),
            ..ChoiceDef::default()
        }
    }

    /// The same choice, also matched by `keywords`.
    pub fn keywords(mut self, keywords: &[&str]) -> Self {
        self.keywords
            .extend(keywords.iter().map(|k| (*k).to_owned()));
        self
    }

    /// The same choice, also chosen by keying `dtmf`.
    pub fn dtmf(mut self, dtmf: &str) -> Self {
        self.dtmf = Some(dtmf.to_owned());
        self
    }

    /// The same choice, also matched by any yes (or no).
    pub fn intent(mut self, intent: YesNo) -> Self {
        self.intent = Some(intent);
        self
    }
}

impl HandlerDef {
    /// Ask again with `reprompt`; give up to `next`.
    pub fn new(reprompt: Option<&str>, next: Option<&str>) -> Self {
        HandlerDef {
            reprompt: reprompt.map(str::to_owned),
            next: next.map(str::to_owned),
        }
    }
}

impl CaseDef {
    /// A case on `slot` that goes to `next`; add its test.
    pub fn on(slot: &str, next: &str) -> Self {
        CaseDef {
            slot: slot.to_owned(),
            next: next.to_owned(),
            ..CaseDef::default()
        }
    }
}
