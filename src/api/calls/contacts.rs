//! Blocked contacts drive the call engine without a restart: the engine
//! keeps a table of blocked callers per organization
//! ([`crate::engine::BlockedCallers`]), loaded at start with the numbers
//! ([`super::numbers::load_all`] calls [`load_blocked`]) and updated after
//! every API write ([`contact_changed`], [`contact_removed`]). Admission
//! reads it synchronously; no INVITE waits on the database.
//!
//! A blocked caller's call to one of the organization's stored numbers is
//! declined with `603 Decline` before it is answered: no audio, no agent.
//! It is still recorded (a failed inbound call, SIP code 603, hang-up
//! cause "blocked contact", linked to the contact), but it does not count
//! as a call with the contact: `call_count` and `last_seen_at` stay.

use crate::api::AppState;
use crate::engine::Engine;
use crate::store::{Contact, Store, StoreError};

/// Loads every blocked contact into the engine's table (at start).
/// Returns how many there are.
pub async fn load_blocked(store: &Store, engine: &Engine) -> Result<usize, StoreError> {
    let blocked = store.blocked_numbers().await?;
    let n = blocked.len();
    engine.blocked().replace_all(blocked);
    Ok(n)
}

/// Call after a contact was changed through the API: its next call is
/// declined or let through as it now says.
pub fn contact_changed(state: &AppState, contact: &Contact) {
    if let Some(engine) = &state.engine {
        engine
            .blocked()
            .set(&contact.org_id, &contact.phone_number, contact.blocked);
    }
}

/// Call after a contact was forgotten: it is blocked no more.
pub fn contact_removed(state: &AppState, org_id: &str, e164: &str) {
    if let Some(engine) = &state.engine {
        engine.blocked().set(org_id, e164, false);
    }
}
