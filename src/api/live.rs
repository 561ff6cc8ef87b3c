//! Live events for WebSocket subscribers: each event goes to every
//! subscriber of its organization whose filter matches, through a bounded
//! queue per subscriber. Publishing never waits: a subscriber whose queue
//! is full is cut off (its socket is then closed with
//! [`SLOW_CONSUMER_CLOSE`]) rather than slowing a call down.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use serde::Serialize;
use tokio::sync::mpsc;

/// Events queued per subscriber before it counts as too slow.
pub const SUBSCRIBER_BUFFER: usize = 512;

/// WebSocket close code for a subscriber that fell behind (a private-use
/// code, RFC 6455 §7.4.2); the client should reconnect and re-read state.
pub const SLOW_CONSUMER_CLOSE: u16 = 4008;

/// One event as subscribers see it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct LiveEvent {
    /// `call.status`, `transcript.partial`, `transcript.final`, `dtmf`,
    /// `agent.speaking`…
    pub event_type: String,
    /// The call it belongs to; empty, and not sent, for an alert's events.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub call_id: String,
    /// The alert it belongs to (`alert.*` events).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub alert_id: Option<String>,
    /// Per call (or alert), 1, 2, 3…: gaps tell a client it missed
    /// something.
    pub sequence: u64,
    /// Unix milliseconds.
    pub timestamp: i64,
    /// The event's data.
    pub payload: serde_json::Value,
    /// Not sent: who may see it.
    #[serde(skip)]
    pub org_id: String,
    /// Not sent: the number the call came in on or went out from.
    #[serde(skip)]
    pub number_id: Option<String>,
    /// The batch the call belongs to (sent, when it does).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub batch_id: Option<String>,
}

/// What a subscriber wants to see within its organization.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Filter {
    /// Only this call.
    pub call_id: Option<String>,
    /// Only calls of this number.
    pub number_id: Option<String>,
    /// Only calls of this batch (and the batch's own events).
    pub batch_id: Option<String>,
}

impl Filter {
    fn matches(&self, e: &LiveEvent) -> bool {
        self.call_id.as_ref().is_none_or(|c| *c == e.call_id)
            && self
                .number_id
                .as_ref()
                .is_none_or(|n| e.number_id.as_ref() == Some(n))
            && self
                .batch_id
                .as_ref()
                .is_none_or(|b| e.batch_id.as_ref() == Some(b))
    }
}

struct Subscriber {
    org_id: String,
    filter: Filter,
    tx: mpsc::Sender<Arc<LiveEvent>>,
    slow: Arc<AtomicBool>,
}

/// The fan-out point.
#[derive(Default)]
pub struct Hub {
    subscribers: Mutex<HashMap<u64, Subscriber>>,
    next_id: AtomicU64,
    sequences: Mutex<HashMap<String, u64>>,
    closed: AtomicBool,
}

/// A subscriber's end.
#[derive(Debug)]
pub struct Subscription {
    /// Events, in order; closed when the subscriber was cut off.
    pub events: mpsc::Receiver<Arc<LiveEvent>>,
    slow: Arc<AtomicBool>,
}

impl Subscription {
    /// Whether the hub cut this subscriber off for falling behind.
    pub fn was_too_slow(&self) -> bool {
        self.slow.load(Ordering::Acquire)
    }
}

impl Hub {
    /// An empty hub.
    pub fn new() -> Arc<Hub> {
        Arc::new(Hub::default())
    }

    /// Follows `org_id`'s events that match `filter`.
    pub fn subscribe(&self, org_id: &str, filter: Filter) -> Subscription {
        let (tx, rx) = mpsc::channel(SUBSCRIBER_BUFFER);
        let slow = Arc::new(AtomicBool::new(false));
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        if self.closed.load(Ordering::Acquire) {
            // Shutting down: the subscription ends at once (its sender is
            // dropped here).
            return Subscription { events: rx, slow };
        }
        self.lock_subscribers().insert(
            id,
            Subscriber {
                org_id: org_id.to_owned(),
                filter,
                tx,
                slow: slow.clone(),
            },
        );
        Subscription { events: rx, slow }
    }

    /// Number of live subscribers (for `/metrics`).
    pub fn subscribers(&self) -> usize {
        self.lock_subscribers().len()
    }

    /// Stamps `event` with its call's next sequence number and hands it to
    /// every matching subscriber without waiting.
    pub fn publish(&self, mut event: LiveEvent) {
        {
            let mut seqs = self.sequences.lock().unwrap_or_else(|e| e.into_inner());
            let key = match (&event.alert_id, &event.batch_id, event.call_id.is_empty()) {
                (Some(alert), _, true) => alert.clone(),
                (None, Some(batch), true) => batch.clone(),
                _ => event.call_id.clone(),
            };
            let seq = seqs.entry(key).or_insert(0);
            *seq += 1;
            event.sequence = *seq;
        }
        let event = Arc::new(event);
        let mut subs = self.lock_subscribers();
        subs.retain(|_, s| {
            if s.org_id != event.org_id || !s.filter.matches(&event) {
                return !s.tx.is_closed();
            }
            match s.tx.try_send(event.clone()) {
                Ok(()) => true,
                Err(mpsc::error::TrySendError::Full(_)) => {
                    s.slow.store(true, Ordering::Release);
                    false
                }
                Err(mpsc::error::TrySendError::Closed(_)) => false,
            }
        });
    }

    /// Ends every subscription (server shutdown): their sockets close with
    /// "going away". Later subscriptions end at once.
    pub fn close_all(&self) {
        self.closed.store(true, Ordering::Release);
        self.lock_subscribers().clear();
    }

    /// Forgets a finished call's (or final alert's) sequence counter.
    pub fn call_ended(&self, call_id: &str) {
        self.sequences
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(call_id);
    }

    fn lock_subscribers(&self) -> std::sync::MutexGuard<'_, HashMap<u64, Subscriber>> {
        self.subscribers.lock().unwrap_or_else(|e| e.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(org: &str, call: &str, number: Option<&str>) -> LiveEvent {
        LiveEvent {
            event_type: "call.status".into(),
            call_id: call.into(),
            alert_id: None,
            sequence: 0,
            timestamp: 0,
            payload: serde_json::json!({"status": "ringing"}),
            org_id: org.into(),
            number_id: number.map(Into::into),
            batch_id: None,
        }
    }

    #[tokio::test]
    async fn events_reach_matching_subscribers_of_the_same_org_in_order() {
        let hub = Hub::new();
        let mut all = hub.subscribe("org_a", Filter::default());
        let mut one_call = hub.subscribe(
            "org_a",
            Filter {
                call_id: Some("call_2".into()),
                ..Filter::default()
            },
        );
        let mut by_number = hub.subscribe(
            "org_a",
            Filter {
                number_id: Some("num_1".into()),
                ..Filter::default()
            },
        );
        let mut other_org = hub.subscribe("org_b", Filter::default());
        hub.publish(event("org_a", "call_1", Some("num_1")));
        hub.publish(event("org_a", "call_2", None));
        hub.publish(event("org_a", "call_1", Some("num_1")));
        let a: Vec<_> = (0..3)
            .map(|_| all.events.try_recv().unwrap())
            .map(|e| (e.call_id.clone(), e.sequence))
            .collect();
        assert_eq!(
            a,
            vec![
                ("call_1".into(), 1),
                ("call_2".into(), 1),
                ("call_1".into(), 2)
            ]
        );
        assert_eq!(one_call.events.try_recv().unwrap().call_id, "call_2");
        assert!(one_call.events.try_recv().is_err());
        assert_eq!(by_number.events.try_recv().unwrap().sequence, 1);
        assert_eq!(by_number.events.try_recv().unwrap().sequence, 2);
        assert!(other_org.events.try_recv().is_err(), "never another org's");
        // The org and number are not part of what is sent.
        let json = serde_json::to_value(event("org_a", "c", Some("n"))).unwrap();
        assert!(json.get("org_id").is_none() && json.get("number_id").is_none());
    }

    #[tokio::test]
    async fn a_slow_subscriber_is_cut_off_and_others_keep_going() {
        let hub = Hub::new();
        let slow = hub.subscribe("org_a", Filter::default());
        let mut fast = hub.subscribe("org_a", Filter::default());
        for i in 0..SUBSCRIBER_BUFFER + 10 {
            hub.publish(event("org_a", "call_1", None));
            assert_eq!(fast.events.recv().await.unwrap().sequence, i as u64 + 1);
        }
        assert!(slow.was_too_slow());
        assert!(!fast.was_too_slow());
        assert_eq!(hub.subscribers(), 1);
        // A subscriber that went away is forgotten at the next event.
        drop(fast);
        hub.publish(event("org_a", "call_1", None));
        assert_eq!(hub.subscribers(), 0);
    }

    #[tokio::test]
    async fn closing_ends_every_subscription_without_marking_it_slow() {
        let hub = Hub::new();
        let mut sub = hub.subscribe("org_a", Filter::default());
        hub.close_all();
        assert!(sub.events.recv().await.is_none());
        assert!(!sub.was_too_slow());
        let mut late = hub.subscribe("org_a", Filter::default());
        assert!(late.events.recv().await.is_none());
        assert_eq!(hub.subscribers(), 0);
    }
}
