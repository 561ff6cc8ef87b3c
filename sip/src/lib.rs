//! # hotline-sip
//!
//! Hotline's SIP stack. The protocol lives in sans-IO state machines that
//! take messages and the current time as arguments and return what to send
//! and when to wake up, in the manner of quinn-proto and str0m; the
//! [`transport`] module is the thin tokio driver that does the I/O.
//!
//! | module | job |
//! |---|---|
//! | [`message`] | parsing (through `rsip`), 400 for malformed requests, building responses, TCP framing, `received`/`rport` |
//! | [`transaction`] | RFC 3261 §17 client/server INVITE and non-INVITE transactions, timers A–K, merged-request detection |
//! | [`dialog`] | RFC 3261 §12 dialogs: tags, CSeq, route sets, target refresh, in-dialog requests |
//! | [`sdp`] | SDP parsing and RFC 3264 offer/answer for PCMU, PCMA, Opus and telephone-event |
//! | [`register`] | RFC 3261 §10 REGISTER client: bindings, refresh, digest challenges, 423, back-off |
//! | [`auth`] | digest authentication (RFC 8760: MD5 and SHA-256), as client and as server |
//! | [`transport`] | UDP and TCP listeners and connections (tokio) |
#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod auth;
pub mod dialog;
pub mod message;
pub mod register;
pub mod sdp;
pub mod transaction;
pub mod transport;

/// The User-Agent / Server header value Hotline sends.
pub const USER_AGENT: &str = concat!("Hotline/", env!("CARGO_PKG_VERSION"));
