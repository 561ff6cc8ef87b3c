//! The interpreter: one call's position in a flow, moved on by each turn
//! of the conversation.
//!
//! Each turn reads the messages added since the last one: what the
//! caller said (`User`), keyed (`Dtmf`), an `Event` (silence), tool
//! results, and the flow's own previous reply as the pipeline recorded it
//! (`Assistant`, possibly `interrupted`). The flow then runs from where
//! it stands until it needs the caller again (a prompt), a tool's result,
//! or the call ends, and returns what to say and which tools to call.
//!
//! Barge-in needs no special case: a reply always ends with the prompt of
//! the node that is now listening (or with the end of the call), so
//! whatever the caller said over it answers that prompt, which is what
//! the caller was answering. A reply cut off before its tool call went
//! out (the goodbye before `end_call`, say) is sent again.

use std::collections::BTreeMap;
use std::sync::Arc;

use serde_json::{Value, json};

use super::capture::{Verdict, capture};
use super::compile::Flow;
use super::def::Outcome;
use super::matcher::{Keyed, match_dtmf, match_speech};
use super::nodes::{Case, Node, Retry, SetValue};
use super::normalize::clean_text;
use super::slots::{SlotValue, e164};
use super::template::Template;
use super::turn::{Input, MAX_KEYED, Reply, tool_failed};
use crate::agent::provider::{BrainOutcome, CallInfo, Conversation, Message, ToolCall};

/// How many times a tool call cut off by barge-in is sent again before
/// the flow stops insisting.
const MAX_REISSUE: u32 = 2;

/// What the flow does after a tool result.
#[derive(Debug, Clone)]
enum After {
    /// `send_dtmf`: carry on here.
    Next(usize),
    /// `transfer_call`: the call is over when it works.
    Transfer {
        outcome: Outcome,
        on_failure: Option<usize>,
    },
}

#[derive(Debug, Clone)]
enum State {
    /// Nothing said yet.
    Start,
    /// Waiting for the caller at a listening node, after `failures` no
    /// inputs or no matches.
    Listen { node: usize, failures: u32 },
    /// Waiting for the result of `call`, made by `node` after saying
    /// `said`.
    Tool {
        node: usize,
        call: ToolCall,
        said: Vec<String>,
        after: After,
    },
    /// The flow is over; `call` (`end_call`) is how it ended, `settled`
    /// once the pipeline has it.
    Ended {
        node: usize,
        outcome: Outcome,
        call: Option<ToolCall>,
        said: Vec<String>,
        settled: bool,
    },
}

/// One call's run through a flow.
#[derive(Debug)]
pub(super) struct Engine {
    flow: Arc<Flow>,
    call: CallInfo,
    slots: BTreeMap<String, SlotValue>,
    /// What the caller said that filled each slot taken from speech.
    quotes: BTreeMap<String, String>,
    /// The caller has filled a slot (an unfinished call is `partial`).
    captured: bool,
    state: State,
    /// Messages of the conversation already read, and the last of them
    /// (to notice a history the pipeline has trimmed).
    seen: usize,
    last_seen: Option<Message>,
    tool_seq: u64,
    /// Keys pressed at the current listening node so far.
    keyed: String,
    reissued: u32,
}

impl Engine {
    pub fn new(flow: Arc<Flow>, call: CallInfo) -> Self {
        Engine {
            flow,
            call,
            slots: BTreeMap::new(),
            quotes: BTreeMap::new(),
            captured: false,
            state: State::Start,
            seen: 0,
            last_seen: None,
            tool_seq: 0,
            keyed: String::new(),
            reissued: 0,
        }
    }

    /// The messages added since the last turn. Should the pipeline have
    /// trimmed its history, the flow reads from its own last reply on.
    fn new_messages<'c>(&self, conversation: &'c Conversation) -> &'c [Message] {
        let all = &conversation.messages;
        let last = self.seen.checked_sub(1).and_then(|i| all.get(i));
        let same_history = last == self.last_seen.as_ref();
        match all.get(self.seen..) {
            Some(new) if same_history => new,
            _ => {
                let from = all
                    .iter()
                    .rposition(|m| matches!(m, Message::Assistant { .. }))
                    .unwrap_or(0);
                &all[from..]
            }
        }
    }

    /// Takes one turn.
    pub fn turn(&mut self, conversation: &Conversation) -> Reply {
        let input = Input::read(self.new_messages(conversation));
        self.seen = conversation.messages.len();
        self.last_seen = conversation.messages.last().cloned();
        let mut out = Reply::default();
        match std::mem::replace(&mut self.state, State::Start) {
            State::Start => {
                let start = self.flow.start;
                self.run(start, &mut out);
            }
            State::Listen { node, failures } => self.listen(node, failures, &input, &mut out),
            State::Tool {
                node,
                call,
                said,
                after,
            } => self.await_tool(node, call, said, after, &input, &mut out),
            State::Ended {
                node,
                outcome,
                call,
                said,
                settled,
            } => {
                let settled = settled
                    || call
                        .as_ref()
                        .is_none_or(|c| input.result(&c.id).is_some() || input.issued(&c.id));
                let call = match call {
                    Some(c) if !settled && self.reissued < MAX_REISSUE => {
                        // The goodbye was cut off before end_call went out.
                        self.reissued += 1;
                        out.texts.extend(said.iter().cloned());
                        let c = self.tool_call(&c.name, c.arguments.clone());
                        out.tools.push(c.clone());
                        Some(c)
                    }
                    other => other,
                };
                self.state = State::Ended {
                    node,
                    outcome,
                    call,
                    said,
                    settled,
                };
            }
        }
        out
    }

    /// What the call came to so far.
    pub fn outcome(&self) -> BrainOutcome {
        let progress = if self.captured {
            Outcome::Partial
        } else {
            Outcome::NotAchieved
        };
        let (outcome, node) = match &self.state {
            State::Start => (Outcome::NotAchieved, self.flow.start),
            State::Listen { node, .. } => (progress, *node),
            State::Tool {
                node,
                after: After::Transfer { outcome, .. },
                ..
            } => (*outcome, *node),
            State::Tool { node, .. } => (progress, *node),
            State::Ended { node, outcome, .. } => (*outcome, *node),
        };
        let data = self
            .slots
            .iter()
            .map(|(k, v)| (k.clone(), v.to_json()))
            .collect::<serde_json::Map<_, _>>();
        BrainOutcome {
            outcome: outcome.as_str().to_owned(),
            end_state: self.flow.ids.get(node).cloned().unwrap_or_default(),
            data: Value::Object(data),
            quotes: self
                .quotes
                .iter()
                .filter(|(k, _)| self.slots.contains_key(*k))
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect(),
        }
    }

    fn tool_call(&mut self, name: &str, arguments: Value) -> ToolCall {
        self.tool_seq += 1;
        ToolCall {
            id: format!("flow_{}", self.tool_seq),
            name: name.to_owned(),
            arguments,
        }
    }

    fn speak(&self, t: &Template) -> String {
        t.render(&self.slots, &self.call, true)
    }

    fn data(&self, t: &Template) -> String {
        t.render(&self.slots, &self.call, false)
    }

    /// Runs from node `from` until the flow needs the caller or a tool.
    fn run(&mut self, from: usize, out: &mut Reply) {
        let flow = Arc::clone(&self.flow);
        let mut at = from;
        // Checked flows have no loop without a listening node, so a run
        // visits each node at most once; the bound is for safety only.
        for _ in 0..=flow.nodes.len() {
            let Some(node) = flow.nodes.get(at) else {
                break;
            };
            match node {
                Node::Say { text, next } => {
                    out.say(self.speak(text));
                    at = *next;
                }
                Node::Goto { next } => at = *next,
                Node::Set { slot, value, next } => {
                    self.set(slot, value);
                    at = *next;
                }
                Node::Branch { cases, default } => {
                    at = cases
                        .iter()
                        .find(|c| self.holds(c))
                        .map_or(*default, |c| c.next);
                }
                Node::Ask { prompt, .. }
                | Node::Capture { prompt, .. }
                | Node::Message { prompt, .. } => {
                    out.say(self.speak(prompt));
                    self.keyed.clear();
                    self.state = State::Listen {
                        node: at,
                        failures: 0,
                    };
                    return;
                }
                Node::Dtmf { digits, next } => {
                    let keys: String = self
                        .data(digits)
                        .chars()
                        .map(|c| c.to_ascii_uppercase())
                        .filter(|c| c.is_ascii_digit() || matches!(c, '*' | '#' | 'A'..='D'))
                        .take(32)
                        .collect();
                    if keys.is_empty() {
                        // A slot that held no keys: nothing to send.
                        at = *next;
                        continue;
                    }
                    let call = self.tool_call("send_dtmf", json!({ "digits": keys }));
                    out.tools.push(call.clone());
                    self.state = State::Tool {
                        node: at,
                        call,
                        said: Vec::new(),
                        after: After::Next(*next),
                    };
                    return;
                }
                Node::Transfer {
                    text,
                    number,
                    outcome,
                    on_failure,
                } => {
                    let said: Vec<String> = text.iter().map(|t| self.speak(t)).collect();
                    for s in &said {
                        out.say(s.clone());
                    }
                    match e164(&self.data(number)) {
                        Some(n) => {
                            let call = self.tool_call("transfer_call", json!({ "number": n }));
                            out.tools.push(call.clone());
                            self.state = State::Tool {
                                node: at,
                                call,
                                said,
                                after: After::Transfer {
                                    outcome: *outcome,
                                    on_failure: *on_failure,
                                },
                            };
                        }
                        None => {
                            tracing::debug!(
                                node = %flow.ids[at],
                                "flow: transfer number is not E.164"
                            );
                            self.transfer_failed(at, *on_failure, out);
                        }
                    }
                    return;
                }
                Node::Hangup { text, outcome } => {
                    let said: Vec<String> = text.iter().map(|t| self.speak(t)).collect();
                    for s in &said {
                        out.say(s.clone());
                    }
                    let call = self.tool_call("end_call", json!({}));
                    out.tools.push(call.clone());
                    self.state = State::Ended {
                        node: at,
                        outcome: *outcome,
                        call: Some(call),
                        said,
                        settled: false,
                    };
                    return;
                }
            }
        }
        out.error = Some(format!(
            "flow loops at node \"{}\" without listening",
            flow.ids.get(at).map_or("?", String::as_str)
        ));
        self.state = State::Ended {
            node: at.min(flow.nodes.len().saturating_sub(1)),
            outcome: Outcome::NotAchieved,
            call: None,
            said: Vec::new(),
            settled: true,
        };
    }

    /// A transfer that could not be made: `on_failure`, or the end of the
    /// call.
    fn transfer_failed(&mut self, node: usize, on_failure: Option<usize>, out: &mut Reply) {
        match on_failure {
            Some(next) => self.run(next, out),
            None => {
                let call = self.tool_call("end_call", json!({}));
                out.tools.push(call.clone());
                self.state = State::Ended {
                    node,
                    outcome: Outcome::NotAchieved,
                    call: Some(call),
                    said: Vec::new(),
                    settled: false,
                };
            }
        }
    }

    fn await_tool(
        &mut self,
        node: usize,
        call: ToolCall,
        said: Vec<String>,
        after: After,
        input: &Input,
        out: &mut Reply,
    ) {
        if let Some(result) = input.result(&call.id) {
            match after {
                After::Next(next) => self.run(next, out),
                After::Transfer {
                    on_failure,
                    outcome,
                } => {
                    if tool_failed(result) {
                        self.transfer_failed(node, on_failure, out);
                    } else {
                        self.state = State::Ended {
                            node,
                            outcome,
                            call: None,
                            said,
                            settled: true,
                        };
                    }
                }
            }
            return;
        }
        let issued = input.issued(&call.id);
        match after {
            // The keys went out and the conversation moved on without a
            // result: carry on rather than stall.
            After::Next(next) if issued && input.caller => self.run(next, out),
            _ if issued || self.reissued >= MAX_REISSUE => {
                self.state = State::Tool {
                    node,
                    call,
                    said,
                    after,
                };
            }
            _ => {
                // Cut off before the call went out: make it again.
                self.reissued += 1;
                out.texts.extend(said.iter().cloned());
                let call = self.tool_call(&call.name, call.arguments.clone());
                out.tools.push(call.clone());
                self.state = State::Tool {
                    node,
                    call,
                    said,
                    after,
                };
            }
        }
    }

    fn set(&mut self, slot: &str, value: &SetValue) {
        // A value the flow sets was not said by anyone.
        self.quotes.remove(slot);
        let v = match value {
            SetValue::Clear => None,
            SetValue::Number(n) => Some(SlotValue::Number(*n)),
            SetValue::Bool(b) => Some(SlotValue::Bool(*b)),
            // `{phone}` alone copies the value and its kind.
            SetValue::Text(t) => match t.single_slot() {
                Some(from) => self.slots.get(from).cloned(),
                None => Some(SlotValue::Text(self.data(t))),
            },
        };
        match v {
            Some(v) => self.slots.insert(slot.to_owned(), v),
            None => self.slots.remove(slot),
        };
    }

    fn holds(&self, case: &Case) -> bool {
        let v = self.slots.get(&case.slot);
        let number = v.and_then(SlotValue::as_number);
        case.is_set.is_none_or(|want| v.is_some() == want)
            && case
                .equals
                .as_ref()
                .is_none_or(|e| v.is_some_and(|v| v.equals(e)))
            && case
                .one_of
                .as_ref()
                .is_none_or(|l| v.is_some_and(|v| l.iter().any(|e| v.equals(e))))
            && case.min.is_none_or(|m| number.is_some_and(|n| n >= m))
            && case.max.is_none_or(|m| number.is_some_and(|n| n <= m))
    }

    fn listen(&mut self, at: usize, failures: u32, input: &Input, out: &mut Reply) {
        if !input.caller && !input.results.is_empty() {
            // Only tool results: nothing for this question.
            self.state = State::Listen { node: at, failures };
            return;
        }
        let room = MAX_KEYED.saturating_sub(self.keyed.len());
        self.keyed.extend(input.dtmf.chars().take(room));
        let flow = Arc::clone(&self.flow);
        let Some(node) = flow.nodes.get(at) else {
            out.error = Some(format!("flow has no node {at}"));
            self.state = State::Ended {
                node: flow.start,
                outcome: Outcome::NotAchieved,
                call: None,
                said: Vec::new(),
                settled: true,
            };
            return;
        };
        let (verdict, prompt, retry) = match node {
            Node::Ask {
                prompt,
                choices,
                retry,
            } => {
                let verdict = if !self.keyed.is_empty() {
                    match match_dtmf(&choices.listeners, &self.keyed) {
                        Keyed::Choice(i) => choices
                            .next
                            .get(i)
                            .map_or(Verdict::NoMatch, |n| Verdict::Go(*n)),
                        Keyed::Partial if !input.dtmf.is_empty() => Verdict::Wait,
                        Keyed::Partial | Keyed::None => Verdict::NoMatch,
                    }
                } else if input.speech.is_empty() {
                    Verdict::NoInput
                } else {
                    match match_speech(&choices.listeners, &input.speech())
                        .and_then(|i| choices.next.get(i))
                    {
                        Some(n) => Verdict::Go(*n),
                        None => Verdict::NoMatch,
                    }
                };
                (verdict, prompt, retry)
            }
            Node::Capture {
                prompt,
                expect,
                next,
                retry,
                ..
            } => (
                capture(&self.keyed, &self.call, expect, *next, input),
                prompt,
                retry,
            ),
            Node::Message {
                prompt,
                max,
                next,
                retry,
                ..
            } => {
                let verdict = if !input.speech.is_empty() {
                    let text = clean_text(&input.speech(), *max);
                    if text.is_empty() {
                        Verdict::NoMatch
                    } else {
                        Verdict::Fill(SlotValue::Text(text), *next)
                    }
                } else if !self.keyed.is_empty() {
                    Verdict::NoMatch
                } else {
                    Verdict::NoInput
                };
                (verdict, prompt, retry)
            }
            _ => {
                // Only listening nodes are ever listened at.
                self.run(at, out);
                return;
            }
        };
        match verdict {
            Verdict::Wait => self.state = State::Listen { node: at, failures },
            Verdict::Go(next) => {
                self.keyed.clear();
                self.run(next, out);
            }
            Verdict::Fill(value, next) => {
                // Keyed digits win over speech (see `capture`); only a
                // spoken answer has words to quote.
                let spoken = self.keyed.is_empty() && !input.speech.is_empty();
                self.keyed.clear();
                if let Some(slot) = slot_of(node) {
                    if spoken {
                        self.quotes.insert(slot.to_owned(), input.speech());
                    } else {
                        self.quotes.remove(slot);
                    }
                    self.slots.insert(slot.to_owned(), value);
                    self.captured = true;
                }
                self.run(next, out);
            }
            Verdict::NoInput | Verdict::NoMatch => {
                self.keyed.clear();
                let no_input = matches!(verdict, Verdict::NoInput);
                self.failed(at, failures + 1, no_input, prompt, retry, out);
            }
        }
    }

    /// Asks again, or gives up once the retries are used.
    fn failed(
        &mut self,
        at: usize,
        failures: u32,
        no_input: bool,
        prompt: &Template,
        retry: &Retry,
        out: &mut Reply,
    ) {
        let handler = if no_input {
            &retry.no_input
        } else {
            &retry.no_match
        };
        if failures > retry.retries {
            self.run(handler.give_up, out);
        } else {
            out.say(self.speak(handler.reprompt.as_ref().unwrap_or(prompt)));
            self.state = State::Listen { node: at, failures };
        }
    }
}

/// The slot a listening node fills.
fn slot_of(node: &Node) -> Option<&str> {
    match node {
        Node::Capture { slot, .. } | Node::Message { slot, .. } => Some(slot),
        _ => None,
    }
}
