//! Inbound numbers as a front desk: when a number is open
//! ([`hours`]) and which language its agent replies in ([`language`]).
//! The settings themselves are a number's `inbound` JSON, edited through
//! `/v1/numbers/{id}/inbound-config` (see
//! [`crate::api::resources::inbound`]) and turned into engine routes by
//! [`crate::api::calls::numbers::route_for`].

pub mod hours;
pub mod language;
