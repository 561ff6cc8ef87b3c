//! Inbound numbers as a front desk: when a number is open
//! ([`hours`]), which language its agent replies in ([`language`]) and
//! what its prompt learns about the caller before the call ([`context`]).
//! The settings themselves are a number's `inbound` JSON, edited through
//! `/v1/numbers/{id}/inbound-config` (see
//! [`crate::api::resources::inbound`]) and turned into engine routes by
//! [`crate::api::calls::numbers::route_for`].

pub mod context;
pub mod hours;
pub mod language;
