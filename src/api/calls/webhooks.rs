//! The webhook delivery worker: claims due deliveries from the durable
//! outbox ([`Store::claim_due`]), POSTs each event's JSON signed with the
//! webhook's secret (`X-Hotline-Signature`, `X-Hotline-Timestamp`, see
//! [`signing`](crate::api::signing)), and records the result:
//!
//! * 2xx: delivered;
//! * 410 Gone: failed at once (the receiver asks for no more);
//! * anything else (another status, a timeout, a refused connection):
//!   retried after the next step of the backoff schedule, with jitter, and
//!   failed once the schedule is used up.
//!
//! A delivery is claimed with a lease longer than the request timeout; if
//! the process dies mid-send, the lease runs out and another worker (or
//! the next process) sends it again: deliveries are at least once, and
//! receivers de-duplicate on `X-Hotline-Delivery`. Redirects are not
//! followed: a webhook URL is where events go, not a hop.

use std::sync::{Arc, Once};
use std::time::Duration;

use tokio::sync::{Notify, Semaphore, watch};
use tracing::{debug, warn};

use crate::api::metrics::Metrics;
use crate::api::signing;
use crate::store::{ClaimedDelivery, Store, StoreError, now_ms};

/// The default retry schedule: the wait before each retry.
pub const DEFAULT_BACKOFF: [Duration; 8] = [
    Duration::from_secs(10),
    Duration::from_secs(30),
    Duration::from_secs(120),
    Duration::from_secs(600),
    Duration::from_secs(1800),
    Duration::from_secs(3600),
    Duration::from_secs(3 * 3600),
    Duration::from_secs(6 * 3600),
];

/// Header naming the delivery, for receivers to de-duplicate.
pub const DELIVERY_HEADER: &str = "X-Hotline-Delivery";
/// Header naming the event type.
pub const EVENT_HEADER: &str = "X-Hotline-Event";

/// How the worker delivers.
#[derive(Debug, Clone, PartialEq)]
pub struct DeliveryConfig {
    /// Requests in flight at once.
    pub concurrency: usize,
    /// Deliveries claimed per round trip to the database.
    pub batch: u32,
    /// How long a claim lasts; must exceed `timeout`.
    pub lease: Duration,
    /// Whole-request timeout.
    pub timeout: Duration,
    /// How often the outbox is checked when nothing wakes the worker
    /// (retries come due this way).
    pub poll: Duration,
    /// Wait before retry n (the n-th entry); after the last, failed.
    pub backoff: Vec<Duration>,
    /// Each wait is scaled by a random factor in `1 ± jitter`, so that
    /// retries of many deliveries to one receiver spread out.
    pub jitter: f64,
}

impl Default for DeliveryConfig {
    fn default() -> Self {
        DeliveryConfig {
            concurrency: 8,
            batch: 32,
            lease: Duration::from_secs(60),
            timeout: Duration::from_secs(10),
            poll: Duration::from_secs(1),
            backoff: DEFAULT_BACKOFF.to_vec(),
            jitter: 0.2,
        }
    }
}

impl DeliveryConfig {
    /// The wait before the retry that follows attempt `attempts` (1 for the
    /// first), or `None` when the schedule is used up.
    pub fn retry_after(&self, attempts: i64) -> Option<Duration> {
        let i = usize::try_from(attempts.max(1) - 1).ok()?;
        let base = *self.backoff.get(i)?;
        let j = self.jitter.clamp(0.0, 1.0);
        let factor = if j > 0.0 {
            1.0 + rand::random_range(-j..=j)
        } else {
            1.0
        };
        Some(base.mul_f64(factor))
    }
}

/// What one attempt came to.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Attempt {
    Delivered(u16),
    Gone,
    Failed(Option<u16>, String),
}

fn install_crypto() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        // One provider for the whole process; an error means another part
        // installed one first, which serves as well.
        let _ = rustls::crypto::ring::default_provider().install_default();
    });
}

/// The worker.
#[derive(Clone)]
pub struct Deliverer {
    store: Store,
    config: DeliveryConfig,
    client: reqwest::Client,
    metrics: Arc<Metrics>,
}

impl Deliverer {
    /// A worker over `store`'s outbox.
    pub fn new(
        store: Store,
        config: DeliveryConfig,
        metrics: Arc<Metrics>,
    ) -> anyhow::Result<Deliverer> {
        install_crypto();
        let client = reqwest::Client::builder()
            .timeout(config.timeout)
            .connect_timeout(config.timeout)
            .redirect(reqwest::redirect::Policy::none())
            .user_agent(concat!("hotline-webhooks/", env!("CARGO_PKG_VERSION")))
            .build()?;
        Ok(Deliverer {
            store,
            config,
            client,
            metrics,
        })
    }

    /// Runs until `stop` turns true: claims due deliveries whenever `wake`
    /// is notified or every `poll`, and sends them with bounded
    /// concurrency. On stop, sends in progress get `timeout` to finish;
    /// anything unfinished is sent again after a restart.
    pub fn spawn(
        self,
        wake: Arc<Notify>,
        mut stop: watch::Receiver<bool>,
    ) -> tokio::task::JoinHandle<()> {
        tokio::spawn(async move {
            let slots = Arc::new(Semaphore::new(self.config.concurrency.max(1)));
            loop {
                if *stop.borrow() {
                    break;
                }
                let free = slots.available_permits() as u32;
                let want = free.min(self.config.batch.max(1));
                let claimed = if want == 0 {
                    Vec::new()
                } else {
                    match self
                        .store
                        .claim_due(now_ms(), want, self.config.lease)
                        .await
                    {
                        Ok(c) => c,
                        Err(e) => {
                            warn!(error = %e, "cannot read the webhook outbox");
                            Vec::new()
                        }
                    }
                };
                let full_batch = want > 0 && claimed.len() as u32 == want;
                for d in claimed {
                    let Ok(permit) = slots.clone().acquire_owned().await else {
                        break;
                    };
                    let me = self.clone();
                    tokio::spawn(async move {
                        me.deliver(d).await;
                        drop(permit);
                    });
                }
                if full_batch {
                    // There may be more due right now.
                    continue;
                }
                tokio::select! {
                    _ = wake.notified() => {}
                    _ = tokio::time::sleep(self.config.poll) => {}
                    _ = stop.wait_for(|s| *s) => break,
                }
            }
            let all = self.config.concurrency.max(1) as u32;
            let _ = tokio::time::timeout(self.config.timeout, slots.acquire_many(all)).await;
        })
    }

    async fn attempt(&self, d: &ClaimedDelivery) -> Attempt {
        let body = match serde_json::to_vec(&d.delivery.payload) {
            Ok(b) => b,
            Err(e) => return Attempt::Failed(None, e.to_string()),
        };
        let ts = now_ms() / 1000;
        let signature = signing::sign(&d.secret, ts, &body);
        let sent = self
            .client
            .post(&d.url)
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .header(signing::SIGNATURE_HEADER, signature)
            .header(signing::TIMESTAMP_HEADER, ts.to_string())
            .header(EVENT_HEADER, &d.delivery.event_type)
            .header(DELIVERY_HEADER, &d.delivery.id)
            .body(body)
            .send()
            .await;
        match sent {
            Ok(res) => {
                let code = res.status().as_u16();
                if res.status().is_success() {
                    Attempt::Delivered(code)
                } else if code == 410 {
                    Attempt::Gone
                } else {
                    Attempt::Failed(Some(code), format!("HTTP {code}"))
                }
            }
            Err(e) => {
                let why = if e.is_timeout() {
                    format!("timed out after {:?}", self.config.timeout)
                } else if e.is_connect() {
                    "cannot connect".to_owned()
                } else {
                    "request failed".to_owned()
                };
                // The source chain says what went wrong at the socket.
                let mut detail = why;
                let mut source = std::error::Error::source(&e);
                while let Some(s) = source {
                    detail.push_str(": ");
                    detail.push_str(&s.to_string());
                    source = s.source();
                }
                Attempt::Failed(None, detail)
            }
        }
    }

    /// Sends one claimed delivery and records what happened.
    pub async fn deliver(&self, d: ClaimedDelivery) {
        let attempt = self.attempt(&d).await;
        let store = &self.store;
        let (result, recorded) = match &attempt {
            Attempt::Delivered(code) => (
                "delivered",
                store.mark_delivered(&d.delivery, i64::from(*code)).await,
            ),
            Attempt::Gone => (
                "failed",
                store
                    .mark_failed(
                        &d.delivery,
                        "410 Gone: the receiver asked for no more deliveries",
                        Some(410),
                    )
                    .await,
            ),
            Attempt::Failed(code, why) => {
                let code = code.map(i64::from);
                match self.config.retry_after(d.delivery.attempts) {
                    Some(wait) => {
                        let at = now_ms() + i64::try_from(wait.as_millis()).unwrap_or(i64::MAX / 2);
                        ("retry", store.mark_retry(&d.delivery, at, why, code).await)
                    }
                    None => ("failed", store.mark_failed(&d.delivery, why, code).await),
                }
            }
        };
        self.metrics.webhook_deliveries.inc(&[("result", result)]);
        match recorded {
            Ok(_) => debug!(delivery = %d.delivery.id, result, "webhook attempt recorded"),
            Err(StoreError::Conflict(_)) => {
                debug!(delivery = %d.delivery.id, "lease expired during the attempt; another claim owns it");
            }
            Err(e) => {
                warn!(delivery = %d.delivery.id, error = %e, "cannot record a webhook attempt")
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_follows_the_schedule_then_stops() {
        let c = DeliveryConfig {
            jitter: 0.0,
            ..DeliveryConfig::default()
        };
        assert_eq!(c.retry_after(1), Some(Duration::from_secs(10)));
        assert_eq!(c.retry_after(2), Some(Duration::from_secs(30)));
        assert_eq!(c.retry_after(8), Some(Duration::from_secs(6 * 3600)));
        assert_eq!(c.retry_after(9), None);
        let j = DeliveryConfig::default();
        for _ in 0..100 {
            let w = j.retry_after(1).unwrap();
            assert!(
                w >= Duration::from_secs(8) && w <= Duration::from_secs(12),
                "{w:?}"
            );
        }
    }
}
