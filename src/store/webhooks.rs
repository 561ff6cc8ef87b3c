//! Webhook subscriptions and the durable outbox of deliveries.
//!
//! An event becomes one delivery row per matching webhook, in the same
//! transaction, before anyone tries to send it; a worker claims due rows
//! with a lease, sends them, and records the result. A worker that dies
//! mid-send leaves its rows in flight until the lease runs out, after which
//! they are due again: deliveries are at least once.

use std::time::Duration;

use serde::{Deserialize, Serialize};
use serde_json::Value;
use sqlx::Row;
use sqlx::any::AnyRow;

use super::{
    Page, PageRequest, Result, Sql, Store, StoreError, check_text, check_url, decode_err, json_col,
    new_id, now_ms, page_of, paginate, random_hex32, write_err,
};

/// What every webhook signing secret starts with.
pub const WEBHOOK_SECRET_PREFIX: &str = "whsec_";
/// Most event types one webhook may filter on.
const MAX_EVENT_FILTERS: usize = 50;
/// The event `POST /v1/webhooks/test` sends: it reaches every webhook
/// whatever its filter, since its point is to check the endpoint.
pub const TEST_EVENT: &str = "webhook.test";

/// A webhook subscription.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Webhook {
    /// `whk_` and 24 hex digits.
    pub id: String,
    /// Owning org.
    pub org_id: String,
    /// Where events are POSTed.
    pub url: String,
    /// Event types sent; empty means all.
    pub events: Vec<String>,
    /// HMAC signing secret (`whsec_…`).
    pub secret: String,
    /// Creation time, unix ms.
    pub created_at: i64,
}

impl Webhook {
    /// Whether this webhook wants events of `event_type`. A filter entry
    /// ending in `.*` matches a family (`alert.*` matches `alert.fired`);
    /// [`TEST_EVENT`] matches every webhook. [`PARTIAL_EVENT`] goes only
    /// to webhooks that name it: it comes many times a second while a
    /// caller speaks and is stale a moment later, so an empty filter
    /// ("everything") does not take it.
    pub fn wants(&self, event_type: &str) -> bool {
        if event_type == PARTIAL_EVENT {
            return self.events.iter().any(|e| e == PARTIAL_EVENT);
        }
        event_type == TEST_EVENT
            || self.events.is_empty()
            || self.events.iter().any(|e| {
                e == event_type
                    || e.strip_suffix(".*").is_some_and(|family| {
                        event_type
                            .strip_prefix(family)
                            .is_some_and(|rest| rest.len() > 1 && rest.starts_with('.'))
                    })
            })
    }
}

/// Partial transcripts; see [`Webhook::wants`].
pub const PARTIAL_EVENT: &str = "transcript.partial";

/// What [`Store::create_webhook`] needs.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct NewWebhook {
    /// See [`Webhook::url`].
    pub url: String,
    /// See [`Webhook::events`].
    #[serde(default)]
    pub events: Vec<String>,
}

/// Where a delivery is in the outbox.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DeliveryStatus {
    /// Waiting for `next_attempt_at`.
    Pending,
    /// Claimed by a worker until its lease ends.
    InFlight,
    /// The endpoint accepted it.
    Delivered,
    /// Given up on.
    Failed,
}

impl DeliveryStatus {
    fn as_str(self) -> &'static str {
        match self {
            DeliveryStatus::Pending => "pending",
            DeliveryStatus::InFlight => "in_flight",
            DeliveryStatus::Delivered => "delivered",
            DeliveryStatus::Failed => "failed",
        }
    }

    fn parse(s: &str) -> Option<DeliveryStatus> {
        [
            DeliveryStatus::Pending,
            DeliveryStatus::InFlight,
            DeliveryStatus::Delivered,
            DeliveryStatus::Failed,
        ]
        .into_iter()
        .find(|d| d.as_str() == s)
    }
}

/// One event on its way to one webhook.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct WebhookDelivery {
    /// `dlv_` and 24 hex digits.
    pub id: String,
    /// The webhook it goes to.
    pub webhook_id: String,
    /// Owning org.
    pub org_id: String,
    /// Event type (`call.completed`, …).
    pub event_type: String,
    /// The event body.
    pub payload: Value,
    /// Sends started so far (a claim counts as one).
    pub attempts: i64,
    /// When it is next due, unix ms.
    pub next_attempt_at: i64,
    /// Outbox state.
    pub status: DeliveryStatus,
    /// Why the last attempt failed.
    pub last_error: Option<String>,
    /// HTTP status of the last attempt.
    pub last_status_code: Option<i64>,
    /// When the event was enqueued, unix ms.
    pub created_at: i64,
    /// When the endpoint accepted it, unix ms.
    pub delivered_at: Option<i64>,
}

/// A delivery a worker has claimed, with what it needs to send it.
#[derive(Debug, Clone, PartialEq)]
pub struct ClaimedDelivery {
    /// The delivery as claimed (status in flight, attempts counted).
    pub delivery: WebhookDelivery,
    /// The webhook's URL now.
    pub url: String,
    /// The webhook's signing secret now (rotation applies to retries).
    pub secret: String,
}

const WEBHOOK_COLS: &str = "id, org_id, url, events, secret, created_at";
const DELIVERY_COLS: &str = "id, webhook_id, org_id, event_type, payload, attempts, \
     next_attempt_at, status, last_error, last_status_code, created_at, delivered_at";

fn webhook_from_row(row: &AnyRow) -> Result<Webhook> {
    let events: String = row.try_get("events")?;
    Ok(Webhook {
        id: row.try_get("id")?,
        org_id: row.try_get("org_id")?,
        url: row.try_get("url")?,
        events: serde_json::from_str(&events).map_err(|e| decode_err("events", e))?,
        secret: row.try_get("secret")?,
        created_at: row.try_get("created_at")?,
    })
}

/// An unknown delivery status in the database.
#[derive(Debug, thiserror::Error)]
#[error("unknown delivery status {0:?}")]
struct UnknownDeliveryStatus(String);

fn delivery_from_row(row: &AnyRow) -> Result<WebhookDelivery> {
    let status: String = row.try_get("status")?;
    Ok(WebhookDelivery {
        id: row.try_get("id")?,
        webhook_id: row.try_get("webhook_id")?,
        org_id: row.try_get("org_id")?,
        event_type: row.try_get("event_type")?,
        payload: json_col(row, "payload")?,
        attempts: row.try_get("attempts")?,
        next_attempt_at: row.try_get("next_attempt_at")?,
        status: DeliveryStatus::parse(&status)
            .ok_or_else(|| decode_err("status", UnknownDeliveryStatus(status.clone())))?,
        last_error: row.try_get("last_error")?,
        last_status_code: row.try_get("last_status_code")?,
        created_at: row.try_get("created_at")?,
        delivered_at: row.try_get("delivered_at")?,
    })
}

fn check_event_type(field: &'static str, event_type: &str) -> Result<()> {
    check_text(field, event_type, 100)?;
    if event_type
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'_')
    {
        Ok(())
    } else {
        Err(StoreError::Invalid(
            field,
            "letters, digits, '.' and '_' only".into(),
        ))
    }
}

/// Errors are kept short: they are for people reading the delivery log.
fn clip(error: &str) -> String {
    error.chars().take(1000).collect()
}

impl Store {
    /// Subscribes `org_id` to events at `new.url`, with a fresh secret.
    pub async fn create_webhook(&self, org_id: &str, new: &NewWebhook) -> Result<Webhook> {
        check_url("url", &new.url)?;
        if new.events.len() > MAX_EVENT_FILTERS {
            return Err(StoreError::Invalid(
                "events",
                format!("at most {MAX_EVENT_FILTERS} event types"),
            ));
        }
        for e in &new.events {
            check_event_type("events", e.strip_suffix(".*").unwrap_or(e))?;
        }
        let events = serde_json::to_string(&new.events).map_err(|e| decode_err("events", e))?;
        let row = Sql::new(&format!("INSERT INTO webhooks ({WEBHOOK_COLS}) VALUES ("))
            .text(new_id("whk"))
            .push(", ")
            .text(org_id.to_owned())
            .push(", ")
            .text(new.url.clone())
            .push(", ")
            .text(events)
            .push(", ")
            .text(format!("{WEBHOOK_SECRET_PREFIX}{}", random_hex32()))
            .push(", ")
            .int(now_ms())
            .push(") RETURNING ")
            .push(WEBHOOK_COLS)
            .fetch_optional(&self.pool)
            .await
            .map_err(|e| write_err(e, "id", "org_id"))?
            .ok_or(StoreError::NotFound)?;
        webhook_from_row(&row)
    }

    /// One of the org's webhooks.
    pub async fn get_webhook(&self, org_id: &str, id: &str) -> Result<Webhook> {
        let row = Sql::new(&format!(
            "SELECT {WEBHOOK_COLS} FROM webhooks WHERE call_id IS NULL AND org_id = "
        ))
        .text(org_id.to_owned())
        .push(" AND id = ")
        .text(id.to_owned())
        .fetch_optional(&self.pool)
        .await?
        .ok_or(StoreError::NotFound)?;
        webhook_from_row(&row)
    }

    /// The org's webhooks, newest first.
    pub async fn list_webhooks(&self, org_id: &str, page: &PageRequest) -> Result<Page<Webhook>> {
        let mut sql = Sql::new(&format!(
            "SELECT {WEBHOOK_COLS} FROM webhooks WHERE call_id IS NULL AND org_id = "
        ));
        sql.text(org_id.to_owned());
        let limit = paginate(&mut sql, page)?;
        let rows = sql.fetch_all(&self.pool).await?;
        let hooks = rows
            .iter()
            .map(webhook_from_row)
            .collect::<Result<Vec<_>>>()?;
        Ok(page_of(hooks, limit, |w| (w.created_at, &w.id)))
    }

    /// Deletes a webhook and its undelivered deliveries.
    pub async fn delete_webhook(&self, org_id: &str, id: &str) -> Result<()> {
        let n = Sql::new("DELETE FROM webhooks WHERE call_id IS NULL AND org_id = ")
            .text(org_id.to_owned())
            .push(" AND id = ")
            .text(id.to_owned())
            .execute(&self.pool)
            .await?;
        if n == 0 {
            return Err(StoreError::NotFound);
        }
        Ok(())
    }

    /// Replaces a webhook's signing secret and returns the webhook.
    pub async fn rotate_webhook_secret(&self, org_id: &str, id: &str) -> Result<Webhook> {
        let row = Sql::new("UPDATE webhooks SET secret = ")
            .text(format!("{WEBHOOK_SECRET_PREFIX}{}", random_hex32()))
            .push(" WHERE call_id IS NULL AND org_id = ")
            .text(org_id.to_owned())
            .push(" AND id = ")
            .text(id.to_owned())
            .push(" RETURNING ")
            .push(WEBHOOK_COLS)
            .fetch_optional(&self.pool)
            .await?
            .ok_or(StoreError::NotFound)?;
        webhook_from_row(&row)
    }

    /// Queues an event for every webhook of `org_id` whose filter matches,
    /// all or none, due now. Returns the deliveries created. Per-call
    /// webhooks ([`Store::create_call_webhook`]) are not included: call
    /// events go through [`Store::enqueue_call_event`].
    pub async fn enqueue_event(
        &self,
        org_id: &str,
        event_type: &str,
        payload: &Value,
    ) -> Result<Vec<WebhookDelivery>> {
        self.enqueue(org_id, None, event_type, payload).await
    }

    /// Queues an event of call `call_id` for the org's webhooks whose
    /// filter matches and for the call's own webhook, if it has one.
    pub async fn enqueue_call_event(
        &self,
        org_id: &str,
        call_id: &str,
        event_type: &str,
        payload: &Value,
    ) -> Result<Vec<WebhookDelivery>> {
        self.enqueue(org_id, Some(call_id), event_type, payload)
            .await
    }

    /// A webhook that receives every event of one call only (the
    /// `webhook_url` of `POST /v1/calls`), with a signing secret of its
    /// own. It is not listed with the org's webhooks.
    pub async fn create_call_webhook(
        &self,
        org_id: &str,
        call_id: &str,
        url: &str,
    ) -> Result<Webhook> {
        check_url("webhook_url", url)?;
        let row = Sql::new(&format!(
            "INSERT INTO webhooks ({WEBHOOK_COLS}, call_id) VALUES ("
        ))
        .text(new_id("whk"))
        .push(", ")
        .text(org_id.to_owned())
        .push(", ")
        .text(url.to_owned())
        .push(", '[]', ")
        .text(format!("{WEBHOOK_SECRET_PREFIX}{}", random_hex32()))
        .push(", ")
        .int(now_ms())
        .push(", ")
        .text(call_id.to_owned())
        .push(") RETURNING ")
        .push(WEBHOOK_COLS)
        .fetch_optional(&self.pool)
        .await
        .map_err(|e| write_err(e, "id", "org_id"))?
        .ok_or(StoreError::NotFound)?;
        webhook_from_row(&row)
    }

    /// The webhook of one call, if `POST /v1/calls` gave it a URL.
    pub async fn call_webhook(&self, org_id: &str, call_id: &str) -> Result<Option<Webhook>> {
        Sql::new(&format!(
            "SELECT {WEBHOOK_COLS} FROM webhooks WHERE org_id = "
        ))
        .text(org_id.to_owned())
        .push(" AND call_id = ")
        .text(call_id.to_owned())
        .fetch_optional(&self.pool)
        .await?
        .as_ref()
        .map(webhook_from_row)
        .transpose()
    }

    async fn enqueue(
        &self,
        org_id: &str,
        call_id: Option<&str>,
        event_type: &str,
        payload: &Value,
    ) -> Result<Vec<WebhookDelivery>> {
        check_event_type("event_type", event_type)?;
        let mut select = Sql::new(&format!(
            "SELECT {WEBHOOK_COLS} FROM webhooks WHERE org_id = "
        ));
        select.text(org_id.to_owned());
        match call_id {
            Some(c) => {
                select
                    .push(" AND (call_id IS NULL OR call_id = ")
                    .text(c.to_owned())
                    .push(")");
            }
            None => {
                select.push(" AND call_id IS NULL");
            }
        }
        let rows = select.fetch_all(&self.pool).await?;
        let hooks: Vec<Webhook> = rows
            .iter()
            .map(webhook_from_row)
            .collect::<Result<Vec<_>>>()?
            .into_iter()
            .filter(|w| w.wants(event_type))
            .collect();
        if hooks.is_empty() {
            return Ok(Vec::new());
        }
        let now = now_ms();
        let payload = payload.to_string();
        let mut out = Vec::with_capacity(hooks.len());
        // One transaction: an event reaches all its webhooks' queues or
        // none (a webhook deleted meanwhile fails the foreign key, and the
        // event is then retried by the caller as a whole).
        let mut tx = self.pool.begin().await?;
        for hook in &hooks {
            let row = Sql::new(&format!(
                "INSERT INTO webhook_deliveries ({DELIVERY_COLS}) VALUES ("
            ))
            .text(new_id("dlv"))
            .push(", ")
            .text(hook.id.clone())
            .push(", ")
            .text(org_id.to_owned())
            .push(", ")
            .text(event_type.to_owned())
            .push(", ")
            .text(payload.clone())
            .push(", 0, ")
            .int(now)
            .push(", 'pending', NULL, NULL, ")
            .int(now)
            .push(", NULL) RETURNING ")
            .push(DELIVERY_COLS)
            .fetch_optional(&mut *tx)
            .await
            .map_err(|e| write_err(e, "id", "webhook_id"))?
            .ok_or(StoreError::NotFound)?;
            out.push(delivery_from_row(&row)?);
        }
        tx.commit().await?;
        Ok(out)
    }

    /// Claims up to `limit` deliveries due at `now` (pending and due, or in
    /// flight with an expired lease) for `lease`, across all orgs: this is
    /// the delivery worker's entry point. Two workers never get the same
    /// delivery while its lease lasts.
    pub async fn claim_due(
        &self,
        now: i64,
        limit: u32,
        lease: Duration,
    ) -> Result<Vec<ClaimedDelivery>> {
        if limit == 0 {
            return Ok(Vec::new());
        }
        let lease_ms = i64::try_from(lease.as_millis()).unwrap_or(i64::MAX / 2);
        // The outer WHERE repeats the claimable condition: on Postgres a
        // concurrent claimer that locked the same row first makes this
        // statement re-check the updated row and skip it; on SQLite writers
        // are serialised anyway.
        let due = |sql: &mut Sql| {
            sql.push("((status = 'pending' AND next_attempt_at <= ")
                .int(now)
                .push(") OR (status = 'in_flight' AND lease_until <= ")
                .int(now)
                .push("))");
        };
        let mut sql =
            Sql::new("UPDATE webhook_deliveries SET status = 'in_flight', lease_until = ");
        sql.int(now.saturating_add(lease_ms)).push(
            ", attempts = attempts + 1 WHERE id IN (SELECT id FROM webhook_deliveries WHERE ",
        );
        due(&mut sql);
        sql.push(" ORDER BY next_attempt_at, id LIMIT ")
            .int(i64::from(limit))
            .push(") AND ");
        due(&mut sql);
        sql.push(" RETURNING ").push(DELIVERY_COLS);
        let rows = sql.fetch_all(&self.pool).await?;
        let mut claimed = Vec::with_capacity(rows.len());
        for row in &rows {
            let delivery = delivery_from_row(row)?;
            let hook = Sql::new("SELECT url, secret FROM webhooks WHERE id = ")
                .text(delivery.webhook_id.clone())
                .fetch_optional(&self.pool)
                .await?;
            // The webhook was deleted after the claim; its deliveries went
            // with it by cascade, so there is nothing to send.
            let Some(hook) = hook else { continue };
            claimed.push(ClaimedDelivery {
                url: hook.try_get("url")?,
                secret: hook.try_get("secret")?,
                delivery,
            });
        }
        claimed.sort_by(|a, b| {
            (a.delivery.next_attempt_at, &a.delivery.id)
                .cmp(&(b.delivery.next_attempt_at, &b.delivery.id))
        });
        Ok(claimed)
    }

    /// Finishes a claimed delivery. Only the current claim may: a worker
    /// whose lease ran out and was re-claimed gets
    /// [`StoreError::Conflict`]`("lease")`.
    async fn finish_delivery(
        &self,
        claimed: &WebhookDelivery,
        set: Sql,
    ) -> Result<WebhookDelivery> {
        let mut sql = set;
        sql.push(" WHERE status = 'in_flight' AND org_id = ")
            .text(claimed.org_id.clone())
            .push(" AND id = ")
            .text(claimed.id.clone())
            .push(" AND attempts = ")
            .int(claimed.attempts)
            .push(" RETURNING ")
            .push(DELIVERY_COLS);
        match sql.fetch_optional(&self.pool).await? {
            Some(row) => delivery_from_row(&row),
            None => {
                self.get_delivery(&claimed.org_id, &claimed.id).await?;
                Err(StoreError::Conflict("lease"))
            }
        }
    }

    /// Records that the endpoint accepted a claimed delivery.
    pub async fn mark_delivered(
        &self,
        claimed: &WebhookDelivery,
        status_code: i64,
    ) -> Result<WebhookDelivery> {
        let mut sql = Sql::new(
            "UPDATE webhook_deliveries SET status = 'delivered', lease_until = NULL, last_error = NULL, last_status_code = ",
        );
        sql.int(status_code).push(", delivered_at = ").int(now_ms());
        self.finish_delivery(claimed, sql).await
    }

    /// Records a failed attempt and makes the delivery due again at
    /// `next_attempt_at`.
    pub async fn mark_retry(
        &self,
        claimed: &WebhookDelivery,
        next_attempt_at: i64,
        error: &str,
        status_code: Option<i64>,
    ) -> Result<WebhookDelivery> {
        let mut sql = Sql::new(
            "UPDATE webhook_deliveries SET status = 'pending', lease_until = NULL, next_attempt_at = ",
        );
        sql.int(next_attempt_at)
            .push(", last_error = ")
            .text(clip(error))
            .push(", last_status_code = ")
            .int(status_code);
        self.finish_delivery(claimed, sql).await
    }

    /// Records a failed attempt and gives up on the delivery.
    pub async fn mark_failed(
        &self,
        claimed: &WebhookDelivery,
        error: &str,
        status_code: Option<i64>,
    ) -> Result<WebhookDelivery> {
        let mut sql = Sql::new(
            "UPDATE webhook_deliveries SET status = 'failed', lease_until = NULL, last_error = ",
        );
        sql.text(clip(error))
            .push(", last_status_code = ")
            .int(status_code);
        self.finish_delivery(claimed, sql).await
    }

    /// Deliveries still to be made (pending or in flight), across all
    /// orgs: the outbox depth for `/metrics`.
    pub async fn count_pending_deliveries(&self) -> Result<u64> {
        let row = Sql::new(
            "SELECT COUNT(*) AS n FROM webhook_deliveries WHERE status IN ('pending', 'in_flight')",
        )
        .fetch_optional(&self.pool)
        .await?
        .ok_or(StoreError::NotFound)?;
        let n: i64 = row.try_get("n")?;
        Ok(u64::try_from(n).unwrap_or(0))
    }

    /// One of the org's deliveries.
    pub async fn get_delivery(&self, org_id: &str, id: &str) -> Result<WebhookDelivery> {
        let row = Sql::new(&format!(
            "SELECT {DELIVERY_COLS} FROM webhook_deliveries WHERE org_id = "
        ))
        .text(org_id.to_owned())
        .push(" AND id = ")
        .text(id.to_owned())
        .fetch_optional(&self.pool)
        .await?
        .ok_or(StoreError::NotFound)?;
        delivery_from_row(&row)
    }

    /// The org's deliveries, optionally of one webhook, newest first.
    pub async fn list_deliveries(
        &self,
        org_id: &str,
        webhook_id: Option<&str>,
        page: &PageRequest,
    ) -> Result<Page<WebhookDelivery>> {
        let mut sql = Sql::new(&format!(
            "SELECT {DELIVERY_COLS} FROM webhook_deliveries WHERE org_id = "
        ));
        sql.text(org_id.to_owned());
        if let Some(w) = webhook_id {
            sql.push(" AND webhook_id = ").text(w.to_owned());
        }
        let limit = paginate(&mut sql, page)?;
        let rows = sql.fetch_all(&self.pool).await?;
        let items = rows
            .iter()
            .map(delivery_from_row)
            .collect::<Result<Vec<_>>>()?;
        Ok(page_of(items, limit, |d| (d.created_at, &d.id)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn event_filters() {
        let mut w = Webhook {
            id: "whk_1".into(),
            org_id: "org_1".into(),
            url: "https://x".into(),
            events: vec![],
            secret: "whsec_x".into(),
            created_at: 0,
        };
        assert!(w.wants("call.completed"));
        // Partials only by name.
        assert!(!w.wants(PARTIAL_EVENT));
        w.events = vec!["transcript.partial".into()];
        assert!(w.wants(PARTIAL_EVENT));
        assert!(!w.wants("transcript.final"));
        w.events = vec!["call.completed".into(), "alert.*".into()];
        assert!(w.wants("call.completed"));
        assert!(!w.wants("call.started"));
        assert!(w.wants("alert.fired"));
        assert!(!w.wants("alert."));
        assert!(!w.wants("alerts.fired"));
        assert!(!w.wants("alert"));
        assert!(w.wants(TEST_EVENT));
        assert!(check_event_type("e", "call.completed").is_ok());
        assert!(check_event_type("e", "call completed").is_err());
        assert!(check_event_type("e", "").is_err());
    }

    #[test]
    fn delivery_status_names() {
        for s in ["pending", "in_flight", "delivered", "failed"] {
            assert_eq!(DeliveryStatus::parse(s).unwrap().as_str(), s);
        }
        assert!(DeliveryStatus::parse("sent").is_none());
    }
}
