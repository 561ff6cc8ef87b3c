//! The per-call pipeline: caller audio → VAD and turn-taking → STT → brain
//! → sentences → TTS → the line, with barge-in and an echo guard.
//!
//! The decisions live in sans-IO pieces that take time as an argument
//! ([`turns::TurnManager`], [`echo::EchoGuard`],
//! [`sentences::SentenceSplitter`], [`playout::Playout`]); [`call::run`] is
//! the thin async driver that feeds them. [`onset`] lets Silero veto
//! barge-ins on noise; [`backchannel`] lets "mm-hmm" pause rather than end
//! a reply. [`recording`] records the call as heard; [`tool_rounds`] runs
//! the brain's HTTP tools within a reply; [`transfer`] waits for the
//! outcome of `transfer_call`.

pub mod backchannel;
pub mod call;
pub mod echo;
pub mod onset;
pub mod playout;
pub mod recording;
pub mod sentences;
pub mod tool_rounds;
pub mod transfer;
pub mod turns;

pub use call::{
    AgentReport, AgentSpec, CallControl, Greeting, GreetingCache, Line, TurnMetrics, ready_opening,
    run,
};
pub use recording::RecordingReport;
pub use turns::{TurnAction, TurnConfig, TurnManager};
