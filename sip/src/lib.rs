//! # hotline-sip
//!
//! Hotline's SIP stack. It will hold SIP messages (through `rsip`),
//! RFC 3261 transactions and dialogs, SDP offer/answer and digest
//! authentication as sans-IO state machines, with a thin tokio transport
//! driver beside them. This crate is a skeleton until the SIP issue lands.
#![forbid(unsafe_code)]
#![warn(missing_docs)]

/// The User-Agent / Server header value Hotline sends.
pub const USER_AGENT: &str = concat!("Hotline/", env!("CARGO_PKG_VERSION"));
