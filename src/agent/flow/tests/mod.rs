//! Conversation, validation and property tests of the flow engine.
//!
//! Conversation tests play the pipeline: they call `respond` with a
//! conversation that grows the way the pipeline grows it (the reply as an
//! `Assistant` message, then what the caller said, keyed or did not do),
//! and check the exact words, tool calls and outcome.

mod alert;
mod demo;
mod engine;
mod props;
mod receptionist;
mod validation;

use serde_json::{Value, json};

use super::{Flow, FlowBrain, FlowDef};
use crate::agent::provider::{
    Brain, BrainEvent, BrainOutcome, BrainSession, CallInfo, Conversation, Message, ToolCall,
};

/// The caller's number in the tests.
const CALLER: &str = "+14155550123";

/// One reply, as the pipeline would receive it.
#[derive(Debug, Clone, PartialEq)]
struct Turn {
    /// The `Text` events, in order.
    texts: Vec<String>,
    /// The tool calls, in order.
    tools: Vec<ToolCall>,
}

impl Turn {
    /// Everything said, as one string.
    fn text(&self) -> String {
        self.texts.concat()
    }

    /// The tool calls as `(name, arguments)`.
    fn calls(&self) -> Vec<(&str, &Value)> {
        self.tools
            .iter()
            .map(|c| (c.name.as_str(), &c.arguments))
            .collect()
    }

    /// Asserts the reply said `text` and made no tool call.
    #[track_caller]
    fn says(&self, text: &str) {
        assert_eq!(self.text(), text);
        assert!(
            self.tools.is_empty(),
            "unexpected tool calls: {:?}",
            self.tools
        );
    }

    /// Asserts the reply said `text` and hung up.
    #[track_caller]
    fn hangs_up(&self, text: &str) {
        assert_eq!(self.text(), text);
        assert_eq!(self.calls(), [("end_call", &json!({}))]);
    }

    /// Asserts the reply was empty (still listening, or nothing to do).
    #[track_caller]
    fn silent(&self) {
        assert_eq!(*self, Turn::default_empty());
    }

    fn default_empty() -> Turn {
        Turn {
            texts: Vec::new(),
            tools: Vec::new(),
        }
    }
}

/// A call driven through a flow.
struct Call {
    session: Box<dyn BrainSession>,
    conv: Conversation,
}

impl Call {
    fn new(def: FlowDef) -> Call {
        Call::from(
            def,
            CallInfo {
                call_id: "call_1".into(),
                from: CALLER.into(),
                to: "+14155550199".into(),
                direction: "inbound".into(),
            },
        )
    }

    fn from(def: FlowDef, info: CallInfo) -> Call {
        let flow = match Flow::new(def) {
            Ok(f) => f,
            Err(issues) => panic!("the flow does not validate: {issues:?}"),
        };
        let brain = FlowBrain::new(flow);
        assert_eq!(brain.name(), "flow");
        Call {
            session: brain.start_call(&info),
            conv: Conversation::default(),
        }
    }

    /// Asks for a reply, reads it to the end as the pipeline does, and
    /// records it in the conversation.
    async fn reply(&mut self) -> Turn {
        let mut rx = self.session.respond(&self.conv);
        let mut turn = Turn::default_empty();
        let mut done = false;
        while let Some(ev) = rx.recv().await {
            assert!(!done, "event after Done: {ev:?}");
            match ev {
                BrainEvent::Text(t) => {
                    assert!(!t.trim().is_empty(), "empty text event");
                    turn.texts.push(t);
                }
                BrainEvent::ToolCall(c) => turn.tools.push(c),
                BrainEvent::Done => done = true,
                BrainEvent::Error(e) => panic!("flow error: {e}"),
            }
        }
        assert!(done, "the reply did not end with Done");
        self.conv.messages.push(Message::Assistant {
            text: turn.text(),
            interrupted: false,
            tool_calls: turn.tools.clone(),
        });
        turn
    }

    /// The caller says `text` (a final transcript).
    fn user(&mut self, text: &str) -> &mut Self {
        self.conv.messages.push(Message::User { text: text.into() });
        self
    }

    /// The caller keys `digits`.
    fn dtmf(&mut self, digits: &str) -> &mut Self {
        self.conv.messages.push(Message::Dtmf {
            digits: digits.into(),
        });
        self
    }

    /// The caller says nothing for a while.
    fn silence(&mut self) -> &mut Self {
        self.conv.messages.push(Message::Event {
            text: "The caller has been silent for 8 s.".into(),
        });
        self
    }

    /// The caller cut the last reply short after `heard`, before its
    /// tool calls went out.
    fn barge_in(&mut self, heard: &str) -> &mut Self {
        let last = self
            .conv
            .messages
            .iter_mut()
            .rev()
            .find(|m| matches!(m, Message::Assistant { .. }));
        match last {
            Some(Message::Assistant {
                text,
                interrupted,
                tool_calls,
            }) => {
                assert!(
                    text.starts_with(heard),
                    "{text:?} does not start with {heard:?}"
                );
                *text = heard.into();
                *interrupted = true;
                tool_calls.clear();
            }
            _ => panic!("no reply to interrupt"),
        }
        self
    }

    /// The pipeline reports the result of tool call `id`.
    fn result(&mut self, id: &str, content: &str) -> &mut Self {
        self.conv.messages.push(Message::Tool {
            call_id: id.into(),
            content: content.into(),
        });
        self
    }

    fn outcome(&self) -> BrainOutcome {
        self.session
            .outcome()
            .expect("a flow always has an outcome")
    }

    /// Asserts the outcome, end state and captured slots.
    #[track_caller]
    fn ends(&self, outcome: &str, end_state: &str, data: Value) {
        let o = self.outcome();
        assert_eq!(
            (o.outcome.as_str(), o.end_state.as_str(), &o.data),
            (outcome, end_state, &data)
        );
    }
}
