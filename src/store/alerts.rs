//! Phone alerts: verified phones, alerts with their escalation state,
//! delivery attempts and status changes.
//!
//! Scheduling is durable: an alert's next wake-up (`next_at`) is a column,
//! and workers [`claim`](Store::claim_due_alerts) due alerts with a lease,
//! then save each step only over the state it was computed from
//! ([`Store::save_escalation`] checks `escalation_step`), so two workers
//! or a restarted one never act twice on one step.

use serde::Serialize;
use serde_json::Value;
use sha2::{Digest, Sha256};
use sqlx::Row;
use sqlx::any::AnyRow;

use super::numbers::check_e164;
use super::{
    Page, PageRequest, Result, Sql, Store, StoreError, check_opt_text, check_text, hex,
    is_unique_violation, new_id, now_ms, opt_json_col, page_of, paginate, write_err,
};
use crate::alerts::escalation::{Escalation, Status};

/// Wrong guesses of a verification code before a new call is needed.
pub const MAX_CODE_ATTEMPTS: i64 = 5;

/// A phone an organization's alerts may call.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Phone {
    /// `phn_` and 24 hex digits.
    pub id: String,
    /// Owning org.
    pub org_id: String,
    /// E.164.
    pub e164: String,
    /// A label for people.
    pub label: Option<String>,
    /// The organization's primary phone (one at most).
    pub is_primary: bool,
    /// When the code was confirmed; alerts call only verified phones.
    pub verified_at: Option<i64>,
    /// Creation time.
    pub created_at: i64,
}

const PHONE_COLS: &str = "id, org_id, e164, label, is_primary, verified_at, created_at";

fn phone_from_row(row: &AnyRow) -> Result<Phone> {
    Ok(Phone {
        id: row.try_get("id")?,
        org_id: row.try_get("org_id")?,
        e164: row.try_get("e164")?,
        label: row.try_get("label")?,
        is_primary: row.try_get::<i64, _>("is_primary")? != 0,
        verified_at: row.try_get("verified_at")?,
        created_at: row.try_get("created_at")?,
    })
}

fn code_hash(phone_id: &str, code: &str) -> String {
    // The id salts the hash: equal codes of two phones differ at rest.
    hex(&Sha256::digest(format!("{phone_id}:{code}").as_bytes()))
}

/// Why a verification code was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CodeRefusal {
    /// Not the code spoken.
    Wrong,
    /// No code is pending, or it expired.
    Expired,
    /// Too many wrong guesses: place a new verification call.
    TooManyAttempts,
}

/// A stored alert.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Alert {
    /// `alt_` and 24 hex digits.
    pub id: String,
    /// Owning org.
    pub org_id: String,
    /// The API key that raised it.
    pub key_id: Option<String>,
    /// What it is about (spoken).
    pub title: String,
    /// More (spoken).
    pub message: Option<String>,
    /// `normal` or `critical`.
    pub severity: String,
    /// `approval`, `task_failure`, `threshold`, `reminder` or `other`.
    pub alert_type: String,
    /// Wait before the first call, seconds.
    pub delay_seconds: i64,
    /// The phone called.
    pub phone_id: String,
    /// Its number.
    pub to_number: String,
    /// Its escalation state.
    pub escalation: Escalation,
    /// Steps stored so far.
    pub escalation_step: i64,
    /// The client's JSON.
    pub metadata: Option<Value>,
    /// Idempotency key.
    pub client_id: Option<String>,
    /// Creation time.
    pub created_at: i64,
    /// Expiry.
    pub expires_at: i64,
    /// Last change.
    pub updated_at: i64,
}

/// Which alerts [`Store::list_alerts`] returns; `None` fields do not
/// filter.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AlertFilter {
    /// In this status.
    pub status: Option<Status>,
    /// Of this severity (`normal`, `critical`).
    pub severity: Option<String>,
    /// Of this type.
    pub alert_type: Option<String>,
    /// To this phone.
    pub phone_id: Option<String>,
}

/// What [`Store::create_alert`] needs.
#[derive(Debug, Clone, PartialEq)]
pub struct NewAlert {
    /// See [`Alert::key_id`].
    pub key_id: Option<String>,
    /// See [`Alert::title`].
    pub title: String,
    /// See [`Alert::message`].
    pub message: Option<String>,
    /// See [`Alert::severity`].
    pub severity: String,
    /// See [`Alert::alert_type`].
    pub alert_type: String,
    /// See [`Alert::delay_seconds`].
    pub delay_seconds: i64,
    /// A verified phone of the org.
    pub phone_id: String,
    /// The initial state ([`Escalation::new`] stepped with `Created`).
    pub escalation: Escalation,
    /// See [`Alert::metadata`].
    pub metadata: Option<Value>,
    /// See [`Alert::client_id`].
    pub client_id: Option<String>,
    /// Creation time.
    pub created_at: i64,
}

const ALERT_COLS: &str = "id, org_id, key_id, title, message, severity, alert_type, \
     delay_seconds, phone_id, to_number, escalation, escalation_step, metadata, client_id, \
     created_at, expires_at, updated_at";

fn alert_from_row(row: &AnyRow) -> Result<Alert> {
    let escalation: String = row.try_get("escalation")?;
    Ok(Alert {
        id: row.try_get("id")?,
        org_id: row.try_get("org_id")?,
        key_id: row.try_get("key_id")?,
        title: row.try_get("title")?,
        message: row.try_get("message")?,
        severity: row.try_get("severity")?,
        alert_type: row.try_get("alert_type")?,
        delay_seconds: row.try_get("delay_seconds")?,
        phone_id: row.try_get("phone_id")?,
        to_number: row.try_get("to_number")?,
        escalation: serde_json::from_str(&escalation)
            .map_err(|e| super::decode_err("escalation", e))?,
        escalation_step: row.try_get("escalation_step")?,
        metadata: opt_json_col(row, "metadata")?,
        client_id: row.try_get("client_id")?,
        created_at: row.try_get("created_at")?,
        expires_at: row.try_get("expires_at")?,
        updated_at: row.try_get("updated_at")?,
    })
}

/// One attempt to reach the phone.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AlertDelivery {
    /// `adl_` and 24 hex digits.
    pub id: String,
    /// The alert.
    pub alert_id: String,
    /// 1-based.
    pub attempt: i64,
    /// `voice`.
    pub channel: String,
    /// `calling`, `acknowledged`, `snoozed`, `unanswered`, `failed`,
    /// `canceled`.
    pub status: String,
    /// Number called.
    pub to_number: String,
    /// Hotline's call id.
    pub call_id: Option<String>,
    /// The SIP Call-ID.
    pub sip_call_id: Option<String>,
    /// What went wrong.
    pub error: Option<String>,
    /// Start.
    pub started_at: i64,
    /// End.
    pub ended_at: Option<i64>,
}

const DELIVERY_COLS: &str = "id, alert_id, attempt, channel, status, to_number, call_id, sip_call_id, error, started_at, ended_at";

fn delivery_from_row(row: &AnyRow) -> Result<AlertDelivery> {
    Ok(AlertDelivery {
        id: row.try_get("id")?,
        alert_id: row.try_get("alert_id")?,
        attempt: row.try_get("attempt")?,
        channel: row.try_get("channel")?,
        status: row.try_get("status")?,
        to_number: row.try_get("to_number")?,
        call_id: row.try_get("call_id")?,
        sip_call_id: row.try_get("sip_call_id")?,
        error: row.try_get("error")?,
        started_at: row.try_get("started_at")?,
        ended_at: row.try_get("ended_at")?,
    })
}

impl Store {
    /// Adds an unverified phone; the first of an org is its primary.
    pub async fn create_phone(
        &self,
        org_id: &str,
        e164: &str,
        label: Option<&str>,
    ) -> Result<Phone> {
        check_e164("e164", e164)?;
        check_opt_text("label", label, 200)?;
        let has_primary = Sql::new("SELECT id FROM phones WHERE is_primary = 1 AND org_id = ")
            .text(org_id.to_owned())
            .fetch_optional(&self.pool)
            .await?
            .is_some();
        let row = Sql::new(&format!("INSERT INTO phones ({PHONE_COLS}) VALUES ("))
            .text(new_id("phn"))
            .push(", ")
            .text(org_id.to_owned())
            .push(", ")
            .text(e164.to_owned())
            .push(", ")
            .text(label.map(str::to_owned))
            .push(", ")
            .int(i64::from(!has_primary))
            .push(", NULL, ")
            .int(now_ms())
            .push(") RETURNING ")
            .push(PHONE_COLS)
            .fetch_optional(&self.pool)
            .await
            .map_err(|e| write_err(e, "e164", "org_id"))?
            .ok_or(StoreError::NotFound)?;
        phone_from_row(&row)
    }

    /// One of the org's phones.
    pub async fn get_phone(&self, org_id: &str, id: &str) -> Result<Phone> {
        let row = Sql::new(&format!("SELECT {PHONE_COLS} FROM phones WHERE org_id = "))
            .text(org_id.to_owned())
            .push(" AND id = ")
            .text(id.to_owned())
            .fetch_optional(&self.pool)
            .await?
            .ok_or(StoreError::NotFound)?;
        phone_from_row(&row)
    }

    /// The org's verified phone with this number, if any.
    pub async fn verified_phone(&self, org_id: &str, e164: &str) -> Result<Option<Phone>> {
        let row = Sql::new(&format!("SELECT {PHONE_COLS} FROM phones WHERE org_id = "))
            .text(org_id.to_owned())
            .push(" AND e164 = ")
            .text(e164.to_owned())
            .push(" AND verified_at IS NOT NULL")
            .fetch_optional(&self.pool)
            .await?;
        row.as_ref().map(phone_from_row).transpose()
    }

    /// The org's primary phone, if it has one.
    pub async fn primary_phone(&self, org_id: &str) -> Result<Option<Phone>> {
        let row = Sql::new(&format!(
            "SELECT {PHONE_COLS} FROM phones WHERE is_primary = 1 AND org_id = "
        ))
        .text(org_id.to_owned())
        .fetch_optional(&self.pool)
        .await?;
        row.as_ref().map(phone_from_row).transpose()
    }

    /// The org's phones, newest first.
    pub async fn list_phones(&self, org_id: &str, page: &PageRequest) -> Result<Page<Phone>> {
        let mut sql = Sql::new(&format!("SELECT {PHONE_COLS} FROM phones WHERE org_id = "));
        sql.text(org_id.to_owned());
        let limit = paginate(&mut sql, page)?;
        let rows = sql.fetch_all(&self.pool).await?;
        let phones = rows
            .iter()
            .map(phone_from_row)
            .collect::<Result<Vec<_>>>()?;
        Ok(page_of(phones, limit, |p| (p.created_at, &p.id)))
    }

    /// Makes `id` the org's primary phone (and no other).
    pub async fn set_primary_phone(&self, org_id: &str, id: &str) -> Result<Phone> {
        let phone = self.get_phone(org_id, id).await?;
        let mut tx = self.pool.begin().await?;
        Sql::new("UPDATE phones SET is_primary = 0 WHERE org_id = ")
            .text(org_id.to_owned())
            .execute(&mut *tx)
            .await?;
        Sql::new("UPDATE phones SET is_primary = 1 WHERE id = ")
            .text(phone.id.clone())
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        self.get_phone(org_id, id).await
    }

    /// Stores a new verification code (its hash) valid until `expires_at`,
    /// resetting the wrong guesses.
    pub async fn set_phone_code(
        &self,
        org_id: &str,
        id: &str,
        code: &str,
        expires_at: i64,
    ) -> Result<()> {
        let done = Sql::new("UPDATE phones SET code_hash = ")
            .text(code_hash(id, code))
            .push(", code_expires_at = ")
            .int(expires_at)
            .push(", code_attempts = 0 WHERE org_id = ")
            .text(org_id.to_owned())
            .push(" AND id = ")
            .text(id.to_owned())
            .push(" RETURNING id")
            .fetch_optional(&self.pool)
            .await?;
        done.map(|_| ()).ok_or(StoreError::NotFound)
    }

    /// Checks `code` at `now`: the phone becomes verified, or the refusal
    /// says why (a wrong guess counts).
    pub async fn verify_phone(
        &self,
        org_id: &str,
        id: &str,
        code: &str,
        now: i64,
    ) -> Result<std::result::Result<Phone, CodeRefusal>> {
        let row = Sql::new(
            "SELECT code_hash, code_expires_at, code_attempts FROM phones WHERE org_id = ",
        )
        .text(org_id.to_owned())
        .push(" AND id = ")
        .text(id.to_owned())
        .fetch_optional(&self.pool)
        .await?
        .ok_or(StoreError::NotFound)?;
        let hash: Option<String> = row.try_get("code_hash")?;
        let expires: Option<i64> = row.try_get("code_expires_at")?;
        let attempts: i64 = row.try_get("code_attempts")?;
        let Some(hash) = hash.filter(|_| expires.is_some_and(|e| now < e)) else {
            return Ok(Err(CodeRefusal::Expired));
        };
        if attempts >= MAX_CODE_ATTEMPTS {
            return Ok(Err(CodeRefusal::TooManyAttempts));
        }
        if code_hash(id, code.trim()) != hash {
            Sql::new("UPDATE phones SET code_attempts = code_attempts + 1 WHERE id = ")
                .text(id.to_owned())
                .execute(&self.pool)
                .await?;
            return Ok(Err(CodeRefusal::Wrong));
        }
        Sql::new("UPDATE phones SET code_hash = NULL, code_expires_at = NULL, verified_at = ")
            .int(now)
            .push(" WHERE id = ")
            .text(id.to_owned())
            .execute(&self.pool)
            .await?;
        self.get_phone(org_id, id).await.map(Ok)
    }

    /// Creates an alert, or returns the one an earlier request with the same
    /// `client_id` created (`false`), race-safe through the unique key.
    pub async fn create_alert(&self, org_id: &str, new: &NewAlert) -> Result<(Alert, bool)> {
        check_text("title", &new.title, 500)?;
        check_opt_text("message", new.message.as_deref(), 2000)?;
        if let Some(c) = &new.client_id
            && let Some(existing) = self.alert_by_client_id(org_id, c).await?
        {
            return Ok((existing, false));
        }
        let phone = self
            .get_phone(org_id, &new.phone_id)
            .await
            .map_err(|e| match e {
                StoreError::NotFound => StoreError::Invalid("phone_id", "no such phone".into()),
                e => e,
            })?;
        if phone.verified_at.is_none() {
            return Err(StoreError::Invalid("phone_number", "not verified".into()));
        }
        let e = &new.escalation;
        let inserted = Sql::new(&format!(
            "INSERT INTO alerts ({ALERT_COLS}, status, next_at) VALUES ("
        ))
        .text(new_id("alt"))
        .push(", ")
        .text(org_id.to_owned())
        .push(", ")
        .text(new.key_id.clone())
        .push(", ")
        .text(new.title.clone())
        .push(", ")
        .text(new.message.clone())
        .push(", ")
        .text(new.severity.clone())
        .push(", ")
        .text(new.alert_type.clone())
        .push(", ")
        .int(new.delay_seconds)
        .push(", ")
        .text(phone.id.clone())
        .push(", ")
        .text(phone.e164.clone())
        .push(", ")
        .text(serde_json::to_string(e).expect("the state serializes"))
        .push(", 0, ")
        .text(new.metadata.as_ref().map(Value::to_string))
        .push(", ")
        .text(new.client_id.clone())
        .push(", ")
        .int(new.created_at)
        .push(", ")
        .int(e.expires_at)
        .push(", ")
        .int(new.created_at)
        .push(", ")
        .text(e.status.as_str().to_owned())
        .push(", ")
        .int(e.next_at)
        .push(") RETURNING ")
        .push(ALERT_COLS)
        .fetch_optional(&self.pool)
        .await;
        match inserted {
            Ok(Some(row)) => Ok((alert_from_row(&row)?, true)),
            Ok(None) => Err(StoreError::NotFound),
            Err(e) if is_unique_violation(&e) => match &new.client_id {
                Some(c) => self
                    .alert_by_client_id(org_id, c)
                    .await?
                    .map(|a| (a, false))
                    .ok_or(StoreError::Conflict("client_id")),
                None => Err(StoreError::Conflict("id")),
            },
            Err(e) => Err(e.into()),
        }
    }

    /// The org's alert created with idempotency key `client_id`, if any.
    pub async fn alert_by_client_id(&self, org_id: &str, client_id: &str) -> Result<Option<Alert>> {
        let row = Sql::new(&format!("SELECT {ALERT_COLS} FROM alerts WHERE org_id = "))
            .text(org_id.to_owned())
            .push(" AND client_id = ")
            .text(client_id.to_owned())
            .fetch_optional(&self.pool)
            .await?;
        row.as_ref().map(alert_from_row).transpose()
    }

    /// One of the org's alerts.
    pub async fn get_alert(&self, org_id: &str, id: &str) -> Result<Alert> {
        let row = Sql::new(&format!("SELECT {ALERT_COLS} FROM alerts WHERE org_id = "))
            .text(org_id.to_owned())
            .push(" AND id = ")
            .text(id.to_owned())
            .fetch_optional(&self.pool)
            .await?
            .ok_or(StoreError::NotFound)?;
        alert_from_row(&row)
    }

    /// The org's alerts that pass `filter`, newest first.
    pub async fn list_alerts(
        &self,
        org_id: &str,
        filter: &AlertFilter,
        page: &PageRequest,
    ) -> Result<Page<Alert>> {
        let mut sql = Sql::new(&format!("SELECT {ALERT_COLS} FROM alerts WHERE org_id = "));
        sql.text(org_id.to_owned());
        if let Some(s) = filter.status {
            sql.push(" AND status = ").text(s.as_str().to_owned());
        }
        for (col, value) in [
            ("severity", &filter.severity),
            ("alert_type", &filter.alert_type),
            ("phone_id", &filter.phone_id),
        ] {
            if let Some(v) = value {
                sql.push(&format!(" AND {col} = ")).text(v.clone());
            }
        }
        let limit = paginate(&mut sql, page)?;
        let rows = sql.fetch_all(&self.pool).await?;
        let alerts = rows
            .iter()
            .map(alert_from_row)
            .collect::<Result<Vec<_>>>()?;
        Ok(page_of(alerts, limit, |a| (a.created_at, &a.id)))
    }

    /// Alerts whose wake-up is due at `now` and that no live lease holds,
    /// leased to the caller for `lease_ms`, across all orgs (the
    /// scheduler's entry point). Two workers never get the same alert while
    /// a lease lasts.
    pub async fn claim_due_alerts(
        &self,
        now: i64,
        limit: u32,
        lease_ms: i64,
    ) -> Result<Vec<Alert>> {
        if limit == 0 {
            return Ok(Vec::new());
        }
        // As the webhook outbox: the outer WHERE repeats the condition, so a
        // concurrent claimer on Postgres re-checks the row it waited for and
        // skips it; SQLite serialises writers.
        let due = |sql: &mut Sql| {
            sql.push("(next_at IS NOT NULL AND next_at <= ")
                .int(now)
                .push(" AND (lease_until IS NULL OR lease_until <= ")
                .int(now)
                .push("))");
        };
        let mut sql = Sql::new("UPDATE alerts SET lease_until = ");
        sql.int(now.saturating_add(lease_ms))
            .push(" WHERE id IN (SELECT id FROM alerts WHERE ");
        due(&mut sql);
        sql.push(" ORDER BY next_at, id LIMIT ")
            .int(i64::from(limit))
            .push(") AND ");
        due(&mut sql);
        sql.push(" RETURNING ").push(ALERT_COLS);
        let rows = sql.fetch_all(&self.pool).await?;
        rows.iter().map(alert_from_row).collect()
    }

    /// Saves the state after a step, over step `from_step` only, with the
    /// status changes it made; releases the lease. `false` when another
    /// step was saved first (the caller's step is stale and must not act).
    pub async fn save_escalation(
        &self,
        alert: &Alert,
        from_step: i64,
        state: &Escalation,
        transitions: &[(Status, Status, Option<String>)],
        now: i64,
    ) -> Result<bool> {
        let mut tx = self.pool.begin().await?;
        let saved = Sql::new("UPDATE alerts SET escalation = ")
            .text(serde_json::to_string(state).expect("the state serializes"))
            .push(", status = ")
            .text(state.status.as_str().to_owned())
            .push(", next_at = ")
            .int(state.next_at)
            .push(", acknowledged_at = ")
            .int(state.acknowledged_at)
            .push(", acknowledged_via = ")
            .text(state.acknowledged_via.clone())
            .push(", lease_until = NULL, updated_at = ")
            .int(now)
            .push(", escalation_step = escalation_step + 1 WHERE id = ")
            .text(alert.id.clone())
            .push(" AND escalation_step = ")
            .int(from_step)
            .push(" RETURNING id")
            .fetch_optional(&mut *tx)
            .await?;
        if saved.is_none() {
            return Ok(false);
        }
        let seq_row = Sql::new("SELECT COUNT(*) AS n FROM alert_events WHERE alert_id = ")
            .text(alert.id.clone())
            .fetch_optional(&mut *tx)
            .await?
            .ok_or(StoreError::NotFound)?;
        let mut seq: i64 = seq_row.try_get("n")?;
        for (from, to, detail) in transitions {
            seq += 1;
            Sql::new("INSERT INTO alert_events (alert_id, seq, from_status, to_status, at, detail) VALUES (")
                .text(alert.id.clone())
                .push(", ")
                .int(seq)
                .push(", ")
                .text(from.as_str().to_owned())
                .push(", ")
                .text(to.as_str().to_owned())
                .push(", ")
                .int(now)
                .push(", ")
                .text(detail.clone())
                .push(")")
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await?;
        Ok(true)
    }

    /// The status changes of an alert, in order: (from, to, at, detail).
    pub async fn alert_events(
        &self,
        alert_id: &str,
    ) -> Result<Vec<(String, String, i64, Option<String>)>> {
        let rows = Sql::new(
            "SELECT from_status, to_status, at, detail FROM alert_events WHERE alert_id = ",
        )
        .text(alert_id.to_owned())
        .push(" ORDER BY seq")
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                Ok((
                    r.try_get("from_status")?,
                    r.try_get("to_status")?,
                    r.try_get("at")?,
                    r.try_get("detail")?,
                ))
            })
            .collect()
    }

    /// Records the start of delivery attempt `attempt`.
    pub async fn start_alert_delivery(
        &self,
        alert: &Alert,
        attempt: i64,
        now: i64,
    ) -> Result<AlertDelivery> {
        let row = Sql::new(&format!(
            "INSERT INTO alert_deliveries ({DELIVERY_COLS}) VALUES ("
        ))
        .text(new_id("adl"))
        .push(", ")
        .text(alert.id.clone())
        .push(", ")
        .int(attempt)
        .push(", 'voice', 'calling', ")
        .text(alert.to_number.clone())
        .push(", NULL, NULL, NULL, ")
        .int(now)
        .push(", NULL) RETURNING ")
        .push(DELIVERY_COLS)
        .fetch_optional(&self.pool)
        .await?
        .ok_or(StoreError::NotFound)?;
        delivery_from_row(&row)
    }

    /// Records what became of a delivery attempt (its call ids once known,
    /// its end).
    pub async fn update_alert_delivery(&self, d: &AlertDelivery) -> Result<()> {
        Sql::new("UPDATE alert_deliveries SET status = ")
            .text(d.status.clone())
            .push(", call_id = ")
            .text(d.call_id.clone())
            .push(", sip_call_id = ")
            .text(d.sip_call_id.clone())
            .push(", error = ")
            .text(d.error.clone())
            .push(", ended_at = ")
            .int(d.ended_at)
            .push(" WHERE id = ")
            .text(d.id.clone())
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// An alert's delivery attempts, in order.
    pub async fn alert_deliveries(&self, alert_id: &str) -> Result<Vec<AlertDelivery>> {
        let rows = Sql::new(&format!(
            "SELECT {DELIVERY_COLS} FROM alert_deliveries WHERE alert_id = "
        ))
        .text(alert_id.to_owned())
        .push(" ORDER BY attempt, started_at")
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(delivery_from_row).collect()
    }
    /// Alerts created since `since` by the org (or by one of its keys):
    /// how many, and when the oldest of them was created.
    pub async fn count_alerts_since(
        &self,
        org_id: &str,
        key_id: Option<&str>,
        since: i64,
    ) -> Result<(i64, Option<i64>)> {
        let mut sql =
            Sql::new("SELECT COUNT(*) AS n, MIN(created_at) AS oldest FROM alerts WHERE org_id = ");
        sql.text(org_id.to_owned())
            .push(" AND created_at >= ")
            .int(since);
        if let Some(k) = key_id {
            sql.push(" AND key_id = ").text(k.to_owned());
        }
        let row = sql
            .fetch_optional(&self.pool)
            .await?
            .ok_or(StoreError::NotFound)?;
        Ok((row.try_get("n")?, row.try_get("oldest")?))
    }

    /// Alerts created since `since` that count against the monthly quota:
    /// all but those acknowledged before any call was placed.
    pub async fn count_billable_alerts_since(&self, org_id: &str, since: i64) -> Result<i64> {
        let row = Sql::new("SELECT COUNT(*) AS n FROM alerts a WHERE a.org_id = ")
            .text(org_id.to_owned())
            .push(" AND a.created_at >= ")
            .int(since)
            .push(
                " AND NOT (a.status = 'acknowledged' AND NOT EXISTS \
                 (SELECT 1 FROM alert_deliveries d WHERE d.alert_id = a.id))",
            )
            .fetch_optional(&self.pool)
            .await?
            .ok_or(StoreError::NotFound)?;
        Ok(row.try_get("n")?)
    }

    /// The org's alerts that are not final yet, oldest first.
    pub async fn open_alerts(&self, org_id: &str) -> Result<Vec<Alert>> {
        let rows = Sql::new(&format!("SELECT {ALERT_COLS} FROM alerts WHERE org_id = "))
            .text(org_id.to_owned())
            .push(
                " AND status NOT IN ('acknowledged', 'expired', 'failed') ORDER BY created_at, id",
            )
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(alert_from_row).collect()
    }
}
