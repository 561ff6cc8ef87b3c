//! Objective-driven outbound calls at scale (issue 8): when to dial, what
//! to do after each attempt, and who must never be called.
//!
//! * [`policy`]: a call's retry policy and the decision after each
//!   attempt (sans-IO: times are arguments).
//! * [`hours`]: business hours in the callee's time zone.
//! * [`when`]: moments as the API takes them.
//! * [`settings`]: `[outbound]`, and organizations' dialling limits.
//!
//! The durable queue is the `calls` table itself (`next_attempt_at`,
//! leases, per-organization gates; see [`crate::store`]); the dispatcher
//! that claims due calls and the API are in [`crate::api::calls`].

pub mod hours;
pub mod policy;
pub mod settings;
pub mod when;
