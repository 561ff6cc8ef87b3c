//! Blocked callers: per organization, the E.164 numbers whose inbound calls
//! to its stored numbers are declined (`603 Decline`) before they are
//! answered. The control plane keeps this table in sync with the contacts
//! in the database (loaded at start, changed after every API write);
//! admission reads it synchronously, so no INVITE waits on the database.

use std::collections::HashSet;
use std::sync::Arc;

use dashmap::DashMap;

/// The hang-up reason of a call declined because its caller is blocked:
/// the call record says so.
pub const BLOCKED_REASON: &str = "blocked contact";

/// The SIP status a blocked caller gets: the callee declines, politely and
/// for good (RFC 3261 §21.6.2: do not retry elsewhere).
pub const BLOCKED_STATUS: u16 = 603;

/// The blocked-caller table, shared by the engine and the control plane.
#[derive(Debug, Clone, Default)]
pub struct BlockedCallers {
    by_org: Arc<DashMap<String, HashSet<String>>>,
}

impl BlockedCallers {
    /// Blocks (`blocked`) or unblocks `e164` for `org_id`.
    pub fn set(&self, org_id: &str, e164: &str, blocked: bool) {
        if blocked {
            self.by_org
                .entry(org_id.to_owned())
                .or_default()
                .insert(e164.to_owned());
        } else {
            // `remove_if` takes the shard lock once: an org whose last
            // number is unblocked leaves no empty set behind.
            if let Some(mut set) = self.by_org.get_mut(org_id) {
                set.remove(e164);
            }
            self.by_org.remove_if(org_id, |_, set| set.is_empty());
        }
    }

    /// Whether `e164` is blocked in `org_id`.
    pub fn is_blocked(&self, org_id: &str, e164: &str) -> bool {
        self.by_org
            .get(org_id)
            .is_some_and(|set| set.contains(e164))
    }

    /// Replaces the whole table (a load from the database).
    pub fn replace_all(&self, entries: impl IntoIterator<Item = (String, String)>) {
        let mut fresh: std::collections::HashMap<String, HashSet<String>> = Default::default();
        for (org, e164) in entries {
            fresh.entry(org).or_default().insert(e164);
        }
        self.by_org.retain(|org, _| fresh.contains_key(org));
        for (org, set) in fresh {
            self.by_org.insert(org, set);
        }
    }

    /// How many numbers are blocked, over every organization.
    pub fn len(&self) -> usize {
        self.by_org.iter().map(|e| e.value().len()).sum()
    }

    /// Whether nobody is blocked.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// The caller's number as contacts key it: the From user in E.164, read
/// the way dialled numbers are (`+`, `00`, `011`, or national digits with
/// `default_country_code`), or `None` for anonymous and other caller IDs
/// that are not phone numbers (those callers are nobody's contact).
pub fn caller_e164(from_user: &str, default_country_code: Option<&str>) -> Option<String> {
    let digits = hotline_sip::message::normalize_e164(from_user, default_country_code)?;
    // E.164 country codes never start with 0.
    (!digits.starts_with('0')).then(|| format!("+{digits}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn block_unblock_and_reload() {
        let t = BlockedCallers::default();
        t.set("org_1", "+14155550100", true);
        t.set("org_1", "+14155550101", true);
        t.set("org_2", "+14155550100", true);
        assert!(t.is_blocked("org_1", "+14155550100"));
        assert!(!t.is_blocked("org_1", "+14155550199"));
        assert!(!t.is_blocked("org_3", "+14155550100"));
        assert_eq!(t.len(), 3);
        t.set("org_2", "+14155550100", false);
        assert!(!t.is_blocked("org_2", "+14155550100"));
        assert!(t.is_blocked("org_1", "+14155550100"), "per organization");
        t.set("org_2", "+14155550100", false);
        t.replace_all([("org_3".to_owned(), "+442071234567".to_owned())]);
        assert!(!t.is_blocked("org_1", "+14155550100"));
        assert!(t.is_blocked("org_3", "+442071234567"));
        assert_eq!(t.len(), 1);
    }

    #[test]
    fn callers_are_read_as_e164() {
        assert_eq!(
            caller_e164("+14155550100", None).as_deref(),
            Some("+14155550100")
        );
        assert_eq!(
            caller_e164("004420 7123 4567", None).as_deref(),
            Some("+442071234567")
        );
        assert_eq!(
            caller_e164("4155550100", Some("1")).as_deref(),
            Some("+14155550100")
        );
        for nobody in ["anonymous", "sipp", "", "+123", "4155550100", "+0123456789"] {
            assert_eq!(caller_e164(nobody, None), None, "{nobody:?}");
        }
    }
}
