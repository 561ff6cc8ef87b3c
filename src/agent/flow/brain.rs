//! The flow as a [`Brain`]: one [`Engine`] per call.

use std::sync::Arc;

use serde_json::Value;
use tokio::sync::mpsc;

use super::builtin;
use super::compile::Flow;
use super::engine::Engine;
use super::issue::Issue;
use crate::agent::provider::{
    Brain, BrainEvent, BrainOutcome, BrainSession, CallInfo, Conversation,
};

/// A brain that runs a flow: no model, no network, no GPU.
#[derive(Debug, Clone)]
pub struct FlowBrain {
    flow: Arc<Flow>,
}

impl FlowBrain {
    /// A brain for `flow`.
    pub fn new(flow: Flow) -> Self {
        FlowBrain {
            flow: Arc::new(flow),
        }
    }

    /// A brain for an agent's `model` object (`{"provider": "flow",
    /// "flow": {…}}`); paths in the issues start at `flow`.
    pub fn from_model(model: &Value) -> Result<Self, Vec<Issue>> {
        match model.get("flow") {
            Some(v) if !v.is_null() => Flow::from_json(v).map(FlowBrain::new),
            _ => Err(vec![Issue::new("flow", "required: the flow definition")]),
        }
    }

    /// The demo agent ([`builtin::demo`]).
    pub fn demo() -> Self {
        // The built-in flows are checked by the tests; should one ever
        // fail, a flow that only hangs up keeps the call sane.
        match Flow::new(builtin::demo()) {
            Ok(f) => FlowBrain::new(f),
            Err(issues) => {
                tracing::error!(?issues, "the built-in demo flow does not validate");
                FlowBrain::new(fallback())
            }
        }
    }

    /// The flow this brain runs.
    pub fn flow(&self) -> &Flow {
        &self.flow
    }
}

/// A flow that apologises and hangs up.
fn fallback() -> Flow {
    Flow::hang_up("Sorry, this line is not available. Goodbye.")
}

impl Brain for FlowBrain {
    fn start_call(&self, call: &CallInfo) -> Box<dyn BrainSession> {
        Box::new(FlowSession {
            engine: Engine::new(Arc::clone(&self.flow), call.clone()),
        })
    }

    fn name(&self) -> &str {
        "flow"
    }
}

/// One call's run through a flow.
#[derive(Debug)]
pub struct FlowSession {
    engine: Engine,
}

impl BrainSession for FlowSession {
    fn respond(&mut self, conversation: &Conversation) -> mpsc::Receiver<BrainEvent> {
        // The reply is computed at once (matching words is microseconds
        // of work), so it goes out through a channel sized to hold it:
        // bounded, nothing to spawn, nothing left running if the
        // receiver is dropped.
        let events = self.engine.turn(conversation).into_events();
        let (tx, rx) = mpsc::channel(events.len().max(1));
        for ev in events {
            if tx.try_send(ev).is_err() {
                break;
            }
        }
        rx
    }

    fn outcome(&self) -> Option<BrainOutcome> {
        Some(self.engine.outcome())
    }
}
