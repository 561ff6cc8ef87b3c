//! What every handler shares.

use std::sync::{Arc, Mutex};

use tokio::sync::Notify;

use crate::api::alerts::AlertsRuntime;
use crate::api::calls::bridge::Placed;
use crate::api::live::Hub;
use crate::api::metrics::Metrics;
use crate::api::ratelimit::RateLimiter;
use crate::api::resources::voices::VoiceSamples;
use crate::api::validate::DenyList;
use crate::config::Config;
use crate::engine::Engine;
use crate::reports::Reports;
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
    /// Per-organization request limits (all of an org's keys together);
    /// locked after `limiter` when both are held.
    pub org_limiter: Arc<Mutex<RateLimiter>>,
    /// Numbers calls may not be placed to.
    pub deny: Arc<DenyList>,
    /// Calls placed through the API, for the bridge to announce as queued.
    pub placed: Arc<Placed>,
    /// Wakes the webhook deliverer when an event was queued (it also
    /// polls, so a missed wake-up only delays a delivery).
    pub webhook_wake: Arc<Notify>,
    /// The dialling queue's dispatcher on this node.
    pub outbound: Arc<crate::api::calls::dispatch::OutboundRuntime>,
    /// Phone alerts: the scheduler's wake-up and this node's alert calls.
    pub alerts: Arc<AlertsRuntime>,
    /// Voice samples made for `GET /v1/voices/{id}/sample`.
    pub voice_samples: Arc<VoiceSamples>,
    /// After-call reports: their bounded background work and the mailer.
    pub reports: Arc<Reports>,
}

/// Most API keys (and, separately, organizations) whose buckets are
/// remembered at once; beyond it the idlest are forgotten.
const LIMITER_CAPACITY: usize = 100_000;

impl AppState {
    /// State over `store` and `engine`, with the rate limits and deny list
    /// of `config.api`.
    pub fn new(config: Arc<Config>, store: Store, engine: Option<Engine>) -> AppState {
        let api = &config.api;
        let limiter = RateLimiter::new(api.rate_per_sec, api.burst, LIMITER_CAPACITY);
        let org_limiter = RateLimiter::new(api.org_rate_per_sec, api.org_burst, LIMITER_CAPACITY);
        let deny = match &api.deny_prefixes {
            Some(prefixes) => DenyList::new(prefixes.iter().cloned()),
            None => DenyList::default(),
        };
        AppState {
            store,
            engine,
            hub: Hub::new(),
            metrics: Arc::new(Metrics::default()),
            limiter: Arc::new(Mutex::new(limiter)),
            org_limiter: Arc::new(Mutex::new(org_limiter)),
            deny: Arc::new(deny),
            placed: Arc::new(Placed::default()),
            webhook_wake: Arc::new(Notify::new()),
            outbound: Arc::default(),
            alerts: Arc::new(AlertsRuntime::default()),
            voice_samples: Arc::default(),
            reports: Arc::new(Reports::new(&config.notify)),
            config,
        }
    }
}
