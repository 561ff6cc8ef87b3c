//! The rules of a contact's memory, as a pure function of the slot's
//! current fact and what was just learned.
//!
//! A fact extracted from a call either **corroborates** the slot's active
//! fact (same value: its confidence grows), **supersedes** it (a different
//! value whose confidence is clearly higher), or is **rejected** with a
//! reason (not clearly more confident, or the owner set the slot). The
//! owner's own edits always take the slot, and a slot the owner set or
//! approved is never overwritten by a call. Every decision becomes one
//! timeline entry, so the history of a slot can always be read back.

use serde::{Deserialize, Serialize};

/// How much more confident a different value must be to replace the
/// active one: extraction confidences are noisy, and a caller's name must
/// not flip back and forth between two hearings.
pub const SUPERSEDE_MARGIN: f32 = 0.15;

/// Longest slot name.
pub const SLOT_MAX: usize = 50;

/// Where a fact came from.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Source {
    /// Extracted from a call's transcript.
    Call {
        /// The call.
        call_id: String,
        /// The transcript sentence that supports it.
        quote: Option<String>,
    },
    /// Set by the owner through the API.
    Owner,
}

/// A slot's active fact.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Fact {
    /// The slot (`name`, `company`, `preference`…), normalised by
    /// [`slot_key`].
    pub slot: String,
    /// The value.
    pub value: String,
    /// 0 to 1.
    pub confidence: f32,
    /// Where it came from first.
    pub source: Source,
    /// Calls that said the same since.
    pub corroborations: u32,
    /// The owner set or approved it: calls cannot change it.
    pub owner_locked: bool,
    /// When it became active (unix ms).
    pub since: i64,
    /// When it was last confirmed (unix ms).
    pub updated_at: i64,
}

/// What was just learned about a slot.
#[derive(Debug, Clone, PartialEq)]
pub struct Candidate {
    /// The slot, as given (normalised here).
    pub slot: String,
    /// The value.
    pub value: String,
    /// 0 to 1 (clamped).
    pub confidence: f32,
    /// Where it comes from.
    pub source: Source,
}

/// What a candidate did.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "action", rename_all = "snake_case")]
pub enum Decision {
    /// The slot was empty: the candidate is its fact.
    Added,
    /// Same value as the active fact: more confidence.
    Corroborated,
    /// It replaced the active fact, whose value is kept here.
    Superseded {
        /// The value replaced.
        previous: String,
    },
    /// The active fact stays.
    Rejected {
        /// Why, for the timeline.
        reason: String,
    },
}

/// One decision about a slot, as the timeline keeps it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TimelineEntry {
    /// The slot.
    pub slot: String,
    /// The value offered.
    pub value: String,
    /// Its confidence.
    pub confidence: f32,
    /// Where it came from.
    pub source: Source,
    /// What it did.
    pub decision: Decision,
    /// When (unix ms).
    pub at: i64,
}

/// The slot's key: lower case, words joined by `_`, at most [`SLOT_MAX`]
/// bytes; `None` when nothing is left.
pub fn slot_key(slot: &str) -> Option<String> {
    let mut key = String::new();
    for word in slot
        .split(|c: char| !c.is_alphanumeric())
        .filter(|w| !w.is_empty())
    {
        if !key.is_empty() {
            key.push('_');
        }
        key.push_str(&word.to_lowercase());
    }
    while key.len() > SLOT_MAX {
        key.pop();
    }
    (!key.is_empty()).then_some(key)
}

/// Two values are the same when they differ only in case, spacing or
/// punctuation around them ("John Smith" and "john  smith.").
pub fn same_value(a: &str, b: &str) -> bool {
    let norm = |s: &str| {
        s.split_whitespace()
            .map(|w| {
                w.trim_matches(|c: char| !c.is_alphanumeric())
                    .to_lowercase()
            })
            .filter(|w| !w.is_empty())
            .collect::<Vec<_>>()
    };
    norm(a) == norm(b)
}

/// Confidence of two independent sightings of the same value.
fn combined(a: f32, b: f32) -> f32 {
    (1.0 - (1.0 - a) * (1.0 - b)).clamp(0.0, 1.0)
}

/// Applies `candidate` at `now` to the slot whose active fact is
/// `current`: the slot's fact afterwards and what happened. A candidate
/// with an empty value or slot is rejected.
pub fn decide(current: Option<&Fact>, candidate: &Candidate, now: i64) -> (Option<Fact>, Decision) {
    let reject = |reason: &str| {
        (
            current.cloned(),
            Decision::Rejected {
                reason: reason.to_owned(),
            },
        )
    };
    let Some(slot) = slot_key(&candidate.slot) else {
        return reject("the slot has no name");
    };
    let value = candidate.value.trim();
    if value.is_empty() {
        return reject("the value is empty");
    }
    let confidence = if candidate.confidence.is_finite() {
        candidate.confidence.clamp(0.0, 1.0)
    } else {
        0.0
    };
    let by_owner = candidate.source == Source::Owner;
    let fresh = Fact {
        slot,
        value: value.to_owned(),
        confidence: if by_owner { 1.0 } else { confidence },
        source: candidate.source.clone(),
        corroborations: 0,
        owner_locked: by_owner,
        since: now,
        updated_at: now,
    };
    let Some(current) = current else {
        return (Some(fresh), Decision::Added);
    };
    if same_value(&current.value, value) {
        let mut fact = current.clone();
        fact.updated_at = now;
        if by_owner {
            fact.owner_locked = true;
            fact.confidence = 1.0;
        } else {
            fact.corroborations += 1;
            fact.confidence = combined(fact.confidence, confidence);
        }
        return (Some(fact), Decision::Corroborated);
    }
    if by_owner {
        let previous = current.value.clone();
        return (Some(fresh), Decision::Superseded { previous });
    }
    if current.owner_locked {
        return reject("the owner set this slot");
    }
    if confidence >= current.confidence + SUPERSEDE_MARGIN {
        let previous = current.value.clone();
        return (Some(fresh), Decision::Superseded { previous });
    }
    reject(&format!(
        "confidence {confidence:.2} is not clearly above the current {:.2}",
        current.confidence
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn heard(slot: &str, value: &str, confidence: f32) -> Candidate {
        Candidate {
            slot: slot.into(),
            value: value.into(),
            confidence,
            source: Source::Call {
                call_id: "call_1".into(),
                quote: Some(format!("it is {value}")),
            },
        }
    }

    fn owner(slot: &str, value: &str) -> Candidate {
        Candidate {
            slot: slot.into(),
            value: value.into(),
            confidence: 0.0,
            source: Source::Owner,
        }
    }

    #[test]
    fn slots_are_normalised() {
        assert_eq!(
            slot_key(" Preferred Time! ").as_deref(),
            Some("preferred_time")
        );
        assert_eq!(slot_key("company-name").as_deref(), Some("company_name"));
        assert_eq!(slot_key("--"), None);
        assert!(slot_key(&"x".repeat(80)).unwrap().len() <= SLOT_MAX);
    }

    #[test]
    fn a_first_fact_is_added_and_the_same_value_corroborates_it() {
        let (fact, d) = decide(None, &heard("Name", "John Smith", 0.6), 10);
        assert_eq!(d, Decision::Added);
        let fact = fact.unwrap();
        assert_eq!((fact.slot.as_str(), fact.since), ("name", 10));
        let (again, d) = decide(Some(&fact), &heard("name", "john smith.", 0.5), 20);
        assert_eq!(d, Decision::Corroborated);
        let again = again.unwrap();
        assert_eq!(again.value, "John Smith");
        assert_eq!(again.corroborations, 1);
        assert!((again.confidence - 0.8).abs() < 1e-6);
        assert_eq!((again.since, again.updated_at), (10, 20));
    }

    #[test]
    fn a_different_value_needs_clearly_more_confidence() {
        let (fact, _) = decide(None, &heard("company", "Acme", 0.6), 0);
        let fact = fact.unwrap();
        let (kept, d) = decide(Some(&fact), &heard("company", "Apex", 0.7), 1);
        assert!(matches!(d, Decision::Rejected { .. }), "{d:?}");
        assert_eq!(kept.unwrap().value, "Acme");
        let (now, d) = decide(Some(&fact), &heard("company", "Apex", 0.8), 2);
        assert_eq!(
            d,
            Decision::Superseded {
                previous: "Acme".into()
            }
        );
        assert_eq!(now.unwrap().value, "Apex");
    }

    #[test]
    fn the_owner_always_wins() {
        let (fact, _) = decide(None, &heard("name", "Jon", 0.9), 0);
        let (fact, d) = decide(fact.as_ref(), &owner("name", "John"), 1);
        assert_eq!(
            d,
            Decision::Superseded {
                previous: "Jon".into()
            }
        );
        let fact = fact.unwrap();
        assert!(fact.owner_locked);
        // No call can take it back, however sure.
        let (kept, d) = decide(Some(&fact), &heard("name", "Jon", 1.0), 2);
        assert_eq!(
            d,
            Decision::Rejected {
                reason: "the owner set this slot".into()
            }
        );
        assert_eq!(kept.unwrap().value, "John");
        // The same value still corroborates.
        let (_, d) = decide(Some(&fact), &heard("name", "john", 0.4), 3);
        assert_eq!(d, Decision::Corroborated);
        // Approving a call's fact locks it.
        let (heard_fact, _) = decide(None, &heard("email", "a@b.example", 0.5), 0);
        let (approved, d) = decide(heard_fact.as_ref(), &owner("email", "a@b.example"), 5);
        assert_eq!(d, Decision::Corroborated);
        assert!(approved.unwrap().owner_locked);
    }

    #[test]
    fn empty_or_nameless_candidates_change_nothing() {
        let (fact, _) = decide(None, &heard("name", "Ann", 0.5), 0);
        for c in [heard("name", "  ", 0.9), heard("?!", "Ann", 0.9)] {
            let (kept, d) = decide(fact.as_ref(), &c, 1);
            assert!(matches!(d, Decision::Rejected { .. }));
            assert_eq!(kept, fact);
        }
        let (added, _) = decide(None, &heard("name", "Bo", f32::NAN), 0);
        assert_eq!(added.unwrap().confidence, 0.0);
    }
}
