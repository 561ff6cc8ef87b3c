//! The registry of live calls: call ID → handle, with admission control.
//!
//! A call task gets a [`CallSlot`] when it is admitted and holds it for its
//! whole life; dropping the slot removes the call from the registry. The
//! count of calls therefore cannot drift, whichever way a task ends. The
//! control plane finds calls here and talks to them only through their
//! handles.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use dashmap::DashMap;
use tokio::sync::broadcast;

use super::{CallEvent, CallHandle, CallId};

/// Events buffered for each subscriber of every call's events; a slower
/// subscriber loses the oldest (and is told), never stalls a call.
pub const BUS_BUFFER: usize = 4096;

/// Why a new call was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    /// The server is shutting down: answer 503 with Retry-After.
    #[error("server is draining for shutdown")]
    Draining,
    /// `sip.max_calls` calls are live: answer 503.
    #[error("call limit reached")]
    Full,
}

#[derive(Debug)]
struct Inner {
    calls: DashMap<CallId, CallHandle>,
    admitted: AtomicUsize,
    max_calls: usize,
    draining: AtomicBool,
    bus: broadcast::Sender<(CallId, CallEvent)>,
}

/// Live calls, shared by the SIP side, the call tasks and the control plane.
#[derive(Debug, Clone)]
pub struct CallRegistry {
    inner: Arc<Inner>,
}

impl CallRegistry {
    /// A registry admitting at most `max_calls` calls at once.
    pub fn new(max_calls: usize) -> CallRegistry {
        CallRegistry {
            inner: Arc::new(Inner {
                calls: DashMap::new(),
                admitted: AtomicUsize::new(0),
                max_calls,
                draining: AtomicBool::new(false),
                bus: broadcast::channel(BUS_BUFFER).0,
            }),
        }
    }

    /// Admits a new call, or says why not. Race-free: the limit holds
    /// however many tasks admit at once.
    pub fn admit(&self, handle: CallHandle) -> Result<CallSlot, Refusal> {
        if self.inner.draining.load(Ordering::Acquire) {
            return Err(Refusal::Draining);
        }
        let max = self.inner.max_calls;
        self.inner
            .admitted
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
                (n < max).then_some(n + 1)
            })
            .map_err(|_| Refusal::Full)?;
        let id = handle.id.clone();
        self.inner.calls.insert(id.clone(), handle);
        Ok(CallSlot {
            registry: self.clone(),
            id,
        })
    }

    /// The handle of a live call.
    pub fn get(&self, id: &CallId) -> Option<CallHandle> {
        self.inner.calls.get(id).map(|h| h.clone())
    }

    /// Handles of every live call (a snapshot).
    pub fn handles(&self) -> Vec<CallHandle> {
        self.inner.calls.iter().map(|e| e.value().clone()).collect()
    }

    /// Number of live calls.
    pub fn len(&self) -> usize {
        self.inner.admitted.load(Ordering::Acquire)
    }

    /// Whether no call is live.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Every call's events from now on, tagged with the call: what live
    /// event streams (WebSocket, webhooks, tests) follow.
    pub fn subscribe_all(&self) -> broadcast::Receiver<(CallId, CallEvent)> {
        self.inner.bus.subscribe()
    }

    /// Publishes a call's event on the registry-wide stream.
    pub fn publish(&self, id: &CallId, event: CallEvent) {
        let _ = self.inner.bus.send((id.clone(), event));
    }

    /// Stops admitting calls; live calls continue.
    pub fn start_draining(&self) {
        self.inner.draining.store(true, Ordering::Release);
    }

    /// Whether [`start_draining`](Self::start_draining) was called.
    pub fn is_draining(&self) -> bool {
        self.inner.draining.load(Ordering::Acquire)
    }
}

/// A live call's place in the registry; dropping it removes the call.
#[derive(Debug)]
#[must_use = "dropping the slot ends the call's registration"]
pub struct CallSlot {
    registry: CallRegistry,
    id: CallId,
}

impl CallSlot {
    /// The call this slot belongs to.
    pub fn id(&self) -> &CallId {
        &self.id
    }
}

impl Drop for CallSlot {
    fn drop(&mut self) {
        self.registry.inner.calls.remove(&self.id);
        self.registry.inner.admitted.fetch_sub(1, Ordering::AcqRel);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::call::{CallDirection, CallHandle};

    fn handle(n: usize) -> CallHandle {
        CallHandle::new(
            CallId::from(format!("call_{n}")),
            CallDirection::Inbound,
            "from".into(),
            "to".into(),
        )
        .0
    }

    #[test]
    fn admission_is_limited_and_slots_free_on_drop() {
        let r = CallRegistry::new(2);
        let a = r.admit(handle(1)).unwrap();
        let b = r.admit(handle(2)).unwrap();
        assert_eq!(r.admit(handle(3)).unwrap_err(), Refusal::Full);
        assert_eq!(r.len(), 2);
        assert!(r.get(a.id()).is_some());
        drop(a);
        assert_eq!(r.len(), 1);
        assert!(r.get(&CallId::from("call_1".to_string())).is_none());
        let _c = r.admit(handle(3)).unwrap();
        r.start_draining();
        drop(b);
        assert_eq!(r.admit(handle(4)).unwrap_err(), Refusal::Draining);
        assert_eq!(r.handles().len(), 1);
    }

    #[test]
    fn the_limit_holds_under_concurrent_admission() {
        let r = CallRegistry::new(50);
        let slots = std::sync::Mutex::new(Vec::new());
        std::thread::scope(|s| {
            for t in 0..8 {
                let (r, slots) = (&r, &slots);
                s.spawn(move || {
                    for i in 0..100 {
                        if let Ok(slot) = r.admit(handle(t * 1000 + i)) {
                            slots.lock().unwrap().push(slot);
                        }
                    }
                });
            }
        });
        assert_eq!(slots.lock().unwrap().len(), 50);
        assert_eq!(r.len(), 50);
        slots.lock().unwrap().clear();
        assert!(r.is_empty());
    }
}
