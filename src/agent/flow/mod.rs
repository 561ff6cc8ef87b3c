//! The offline brain: a flow engine, a declarative IVR script per agent
//! or number.
//!
//! A flow is a set of nodes (say, ask, capture, message, branch, set,
//! dtmf, transfer, hangup, goto) with ids and a start node, written in
//! JSON inside an agent's `model` (`{"provider": "flow", "flow": {…}}`);
//! `docs/flows.md` describes the format. [`validate`] reports every
//! problem with its path (`flow.nodes.3.next`); [`Flow`] is a checked
//! flow and [`FlowBrain`] runs one as a [`Brain`](super::Brain), no model
//! needed: an AI receptionist that takes a name and a message, or a phone
//! alert that waits for "press 1", work fully offline.
//!
//! Matching is built for real STT output: case, punctuation and filler
//! words are ignored, numbers are read from words or digits ("one two
//! three", "oh" for zero, "twenty three"), yes and no come in their
//! everyday forms ("yeah", "sure", "no thanks"), and every question takes
//! keys as well as speech.
//!
//! * [`def`]: the definition's serde types.
//! * [`validate`], [`Issue`]: the checks, with paths for API errors.
//! * [`FlowBrain`]: the interpreter as a brain.
//! * [`builtin`]: the demo agent, a receptionist and a phone alert.
//! * [`limits`]: the bounds on a flow's size.
//! * [`FlowConfig`]: the flow for agents that have none.

mod brain;
pub mod builtin;
mod capture;
mod checks;
mod compile;
mod config;
pub mod def;
mod engine;
mod fields;
mod graph;
mod issue;
pub mod limits;
mod matcher;
mod nodes;
mod normalize;
mod numbers;
mod sentences;
mod slots;
mod template;
mod turn;
mod yesno;

#[cfg(test)]
mod tests;

pub use brain::{FlowBrain, FlowSession};
pub use compile::{Flow, validate};
pub use config::{FlowConfig, FlowConfigError};
pub use def::FlowDef;
pub use issue::{Issue, check_model, parse};
pub use template::escape;
