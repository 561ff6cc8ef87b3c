//! The bounds on a flow, so that a definition from the API cannot make a
//! call, or the checks, do unbounded work.

/// Most nodes in a flow.
pub const MAX_NODES: usize = 500;
/// Longest text, prompt or reprompt, in characters.
pub const MAX_TEXT: usize = 4_000;
/// Most choices of an `ask`, or cases of a `branch`.
pub const MAX_CHOICES: usize = 32;
/// Most keywords of one choice.
pub const MAX_KEYWORDS: usize = 64;
/// Longest keyword, in characters.
pub const MAX_KEYWORD: usize = 200;
/// Most retries of a listening node.
pub const MAX_RETRIES: u32 = 10;
/// Retries when a node does not say.
pub const DEFAULT_RETRIES: u32 = 2;
/// Most digits a `capture` of digits takes.
pub const MAX_DIGITS: u32 = 32;
/// Longest `capture` of text, in characters.
pub const MAX_TEXT_CAPTURE: u32 = 2_000;
/// Longest message, in characters.
pub const MAX_MESSAGE: u32 = 10_000;
