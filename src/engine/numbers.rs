//! Numbers configured at run time (through the API and its database),
//! beside the ones in the configuration file. The control plane keeps this
//! table in sync; admission reads it synchronously, so the engine task
//! never waits on a database.

use std::sync::Arc;

use dashmap::DashMap;

use crate::config::NumberConfig;

/// What an inbound call to a run-time number gets.
// One per number in the table, cloned once per call: boxing the common
// variant would cost an allocation per call to save a few hundred bytes.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone, PartialEq)]
pub enum NumberAction {
    /// Answer it and run the number's application (`echo` or `play`).
    Answer(NumberConfig),
    /// Refuse it with this SIP final status, for this reason (logged).
    Refuse {
        /// 404, 480…
        status: u16,
        /// Why, for the log.
        reason: String,
    },
    /// One of two actions, by the number's business hours at the moment
    /// the call arrives.
    Scheduled(Box<Scheduled>),
}

/// A number with business hours: what calls get while it is open, and
/// after hours.
#[derive(Debug, Clone, PartialEq)]
pub struct Scheduled {
    /// When it is open.
    pub hours: crate::inbound::hours::Schedule,
    /// While open (never itself `Scheduled`).
    pub open: NumberAction,
    /// After hours and on holidays.
    pub closed: NumberAction,
}

impl NumberAction {
    /// The action for a call arriving at `at`: a scheduled number's open
    /// or after-hours one.
    pub fn at(self, at: jiff::Timestamp) -> NumberAction {
        match self {
            NumberAction::Scheduled(s) => {
                let Scheduled {
                    hours,
                    open,
                    closed,
                } = *s;
                if hours.is_open(at) { open } else { closed }.at(at)
            }
            other => other,
        }
    }

    /// The action for a call arriving now.
    pub fn now(self) -> NumberAction {
        self.at(jiff::Timestamp::now())
    }
}

/// A run-time number as the engine routes it.
#[derive(Debug, Clone, PartialEq)]
pub struct NumberRoute {
    /// The number's id in the database (`num_…`).
    pub number_id: String,
    /// The organization that owns it.
    pub org_id: String,
    /// The dialled number, E.164.
    pub e164: String,
    /// Only calls from this trunk reach it (others get 404); any source
    /// that may call in at all when unset.
    pub trunk: Option<String>,
    /// What an inbound call gets.
    pub action: NumberAction,
}

/// The run-time number table, shared by the engine and the control plane.
#[derive(Debug, Clone, Default)]
pub struct NumberTable {
    routes: Arc<DashMap<String, NumberRoute>>,
}

impl NumberTable {
    /// Adds or replaces the route of `route.e164`.
    pub fn set(&self, route: NumberRoute) {
        self.routes.insert(route.e164.clone(), route);
    }

    /// Forgets `e164`; calls to it go back to the configuration's numbers.
    pub fn remove(&self, e164: &str) {
        self.routes.remove(e164);
    }

    /// The route of a dialled number.
    pub fn get(&self, e164: &str) -> Option<NumberRoute> {
        self.routes.get(e164).map(|r| r.clone())
    }

    /// Replaces the whole table (a reload from the database).
    pub fn replace_all(&self, routes: impl IntoIterator<Item = NumberRoute>) {
        let routes: Vec<NumberRoute> = routes.into_iter().collect();
        self.routes
            .retain(|k, _| routes.iter().any(|r| r.e164 == *k));
        for r in routes {
            self.set(r);
        }
    }

    /// How many numbers are in the table.
    pub fn len(&self) -> usize {
        self.routes.len()
    }

    /// Whether the table is empty.
    pub fn is_empty(&self) -> bool {
        self.routes.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn route(e164: &str, status: u16) -> NumberRoute {
        NumberRoute {
            number_id: format!("num_{e164}"),
            org_id: "org_1".into(),
            e164: e164.into(),
            trunk: None,
            action: NumberAction::Refuse {
                status,
                reason: "test".into(),
            },
        }
    }

    #[test]
    fn set_replace_and_remove() {
        let t = NumberTable::default();
        t.set(route("+1", 404));
        t.set(route("+2", 404));
        t.set(route("+1", 480));
        assert_eq!(t.len(), 2);
        assert!(matches!(
            t.get("+1").unwrap().action,
            NumberAction::Refuse { status: 480, .. }
        ));
        t.replace_all([route("+2", 480), route("+3", 404)]);
        assert!(t.get("+1").is_none());
        assert_eq!(t.len(), 2);
        t.remove("+2");
        assert!(t.get("+2").is_none() && t.get("+3").is_some());
    }
}
