//! Phone alerts that escalate until a human acknowledges them (issue 6):
//! an agent posts an alert, Hotline calls the owner's verified phone,
//! speaks it, and keeps calling on a schedule until someone acknowledges
//! it by keypad, API or chat, or it expires.
//!
//! * [`escalation`]: the lifecycle as a sans-IO state machine (time and
//!   events in, calls and wake-ups out).
//! * [`quiet`]: quiet hours in the organization's own time zone.
//! * [`keypad`]: what the person on an alert call keyed (acknowledge,
//!   snooze).
//! * [`call`]: what an alert call says and how it reports its outcome
//!   (the call engine runs it as `CallApp::Alert`).
//! * [`policy`]: an organization's alert policy (quiet hours, retries,
//!   limits, the emergency stop).
//! * [`settings`]: the server's `[alerts]` settings.
//!
//! The scheduler and the HTTP endpoints are in [`crate::api::alerts`].

pub mod call;
pub mod escalation;
pub mod keypad;
pub mod policy;
pub mod quiet;
pub mod settings;
