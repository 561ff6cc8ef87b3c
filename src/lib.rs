//! # hotline
//!
//! The Hotline server: call tasks, the agent pipeline and the control plane,
//! built on [`hotline_media`] (audio, no I/O) and [`hotline_sip`] (signalling).
//! The binary in `main.rs` is a thin CLI over [`server::run`].
// The one exception is `rtp::runtime`'s two scheduling syscalls, which no
// safe wrapper in the dependency tree offers.
#![deny(unsafe_code)]
#![warn(missing_docs)]

pub mod agent;
pub mod alerts;
pub mod api;
pub mod call;
pub mod cidr;
pub mod config;
pub mod engine;
pub mod http;
pub mod inbound;
pub mod memory;
pub mod outbound;
pub mod playbooks;
pub mod reports;
pub mod routing;
pub mod rtp;
pub mod server;
pub mod store;
pub mod telemetry;

/// This build's version, as reported by `/healthz` and `--version`.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");
