//! A checked flow's nodes: references resolved to indices, texts parsed,
//! keywords normalised, limits settled.

use serde_json::Value;

use super::def::Outcome;
use super::matcher::Listener;
use super::template::Template;

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
