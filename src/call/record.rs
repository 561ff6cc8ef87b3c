//! The record every call leaves behind: who, when, and how it ended.

use std::time::SystemTime;

use serde::Serialize;

use super::{CallDirection, CallId, Hangup, unix_ms};

/// A finished call, as the last event of its task reports it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CallRecord {
    /// The call's identifier.
    pub id: CallId,
    /// Inbound or outbound.
    pub direction: CallDirection,
    /// The caller.
    pub from: String,
    /// The callee.
    pub to: String,
    /// When the call task started (INVITE received or sent).
    #[serde(with = "unix_ms")]
    pub started: SystemTime,
    /// When the call was answered (200 OK sent or received).
    #[serde(with = "unix_ms::option")]
    pub answered: Option<SystemTime>,
    /// When the call ended.
    #[serde(with = "unix_ms")]
    pub ended: SystemTime,
    /// Who ended it, why, and the SIP code involved.
    pub hangup: Hangup,
    /// The SIP Call-ID, for matching the call with carrier records.
    pub sip_call_id: String,
    /// The call this one was bridged to by a transfer's fallback or a
    /// `forward` number: on the transferred (or forwarded) call, the call
    /// Hotline placed to the target, and on that call, the transferred
    /// (forwarded) one. Each keeps its own record (its own SIP dialog,
    /// times and hang-up); this field links the two.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub bridged_with: Option<CallId>,
}
