//! What Hotline remembers about a caller across calls (issue 7): at most
//! one active fact per slot (name, company, preference…), every change
//! kept in a timeline, and the owner always wins.
//!
//! * [`facts`]: the rules deciding what a new fact does to the slot it
//!   names (pure: the time and the facts are arguments).
//! * [`context`]: the paragraph a returning caller's next call starts with.

pub mod context;
pub mod facts;
