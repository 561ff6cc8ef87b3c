//! The per-call pipeline: caller audio → VAD and turn-taking → STT → brain
//! → sentences → TTS → the line, with barge-in and an echo guard.
//!
//! The decisions live in sans-IO pieces that take time as an argument
//! ([`turns::TurnManager`], [`echo::EchoGuard`],
//! [`sentences::SentenceSplitter`], [`playout::Playout`]); [`call::run`] is
//! the thin async driver that feeds them.

pub mod call;
pub mod echo;
pub mod playout;
pub mod sentences;
pub mod turns;

pub use call::{
    AgentReport, AgentSpec, CallControl, GreetingCache, Line, TurnMetrics, ready_opening, run,
};
pub use turns::{TurnAction, TurnConfig, TurnManager};
