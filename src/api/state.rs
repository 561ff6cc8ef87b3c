//! What every handler shares.

use std::sync::{Arc, Mutex};

use crate::api::live::Hub;
use crate::api::metrics::Metrics;
use crate::api::ratelimit::RateLimiter;
use crate::api::validate::DenyList;
use crate::config::Config;
use crate::engine::Engine;
use crate::store::Store;

/// The control plane's shared state, cheap to clone into handlers.
#[derive(Clone)]
pub struct AppState {
    /// The effective configuration.
    pub config: Arc<Config>,
    /// Durable state.
    pub store: Store,
    /// The call engine, for placing and controlling calls; `None` in tests
    /// of the API alone.
    pub engine: Option<Engine>,
    /// Live events for WebSocket subscribers.
    pub hub: Arc<Hub>,
    /// Prometheus metrics.
    pub metrics: Arc<Metrics>,
    /// Per-key request limits. The lock is held for one map update, never
    /// across an `.await`.
    pub limiter: Arc<Mutex<RateLimiter>>,
    /// Numbers calls may not be placed to.
    pub deny: Arc<DenyList>,
}

/// Requests a second per API key on average.
pub const RATE_PER_SEC: f64 = 20.0;
/// Burst allowance per API key.
pub const RATE_BURST: u32 = 100;

impl AppState {
    /// State over `store` and `engine` with default limits.
    pub fn new(config: Arc<Config>, store: Store, engine: Option<Engine>) -> AppState {
        AppState {
            config,
            store,
            engine,
            hub: Hub::new(),
            metrics: Arc::new(Metrics::default()),
            limiter: Arc::new(Mutex::new(RateLimiter::new(
                RATE_PER_SEC,
                RATE_BURST,
                100_000,
            ))),
            deny: Arc::new(DenyList::default()),
        }
    }
}
