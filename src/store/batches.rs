//! Batches of outbound calls: one row per batch, its calls carry
//! `batch_id`. A batch is `running` until none of its calls can change
//! any more, then `completed` (or stays `canceled` when it was canceled),
//! stamped once with `completed_at`.

use std::collections::BTreeMap;

use serde_json::Value;
use sqlx::Row;
use sqlx::any::AnyRow;

use super::calls::{CALL_COLS, TERMINAL_SQL, call_from_row, status_list};
use super::{Call, CallStatus, Result, Sql, Store, StoreError, decode_err, is_unique_violation};
use super::{new_id, now_ms, write_err};

/// A stored batch.
#[derive(Debug, Clone, PartialEq)]
pub struct Batch {
    /// `bat_` and 24 hex digits.
    pub id: String,
    /// Owning org.
    pub org_id: String,
    /// The client's label.
    pub name: Option<String>,
    /// `running`, `completed` or `canceled`.
    pub status: String,
    /// Calls of the batch up at once.
    pub max_concurrent: i64,
    /// Targets given.
    pub total: i64,
    /// The shared defaults, as sent.
    pub defaults: Value,
    /// The client's key-value pairs.
    pub metadata: BTreeMap<String, String>,
    /// Idempotency key.
    pub client_id: Option<String>,
    /// Unix ms.
    pub created_at: i64,
    /// When its last call was settled.
    pub completed_at: Option<i64>,
}

/// What [`Store::create_batch`] needs.
#[derive(Debug, Clone, PartialEq)]
pub struct NewBatch {
    /// See [`Batch::name`].
    pub name: Option<String>,
    /// See [`Batch::max_concurrent`].
    pub max_concurrent: i64,
    /// See [`Batch::total`].
    pub total: i64,
    /// See [`Batch::defaults`].
    pub defaults: Value,
    /// See [`Batch::metadata`].
    pub metadata: BTreeMap<String, String>,
    /// See [`Batch::client_id`].
    pub client_id: Option<String>,
}

const BATCH_COLS: &str = "id, org_id, name, status, max_concurrent, total, defaults, metadata, \
     client_id, created_at, completed_at";

fn batch_from_row(row: &AnyRow) -> Result<Batch> {
    let defaults: String = row.try_get("defaults")?;
    let metadata: String = row.try_get("metadata")?;
    Ok(Batch {
        id: row.try_get("id")?,
        org_id: row.try_get("org_id")?,
        name: row.try_get("name")?,
        status: row.try_get("status")?,
        max_concurrent: row.try_get("max_concurrent")?,
        total: row.try_get("total")?,
        defaults: serde_json::from_str(&defaults).map_err(|e| decode_err("defaults", e))?,
        metadata: serde_json::from_str(&metadata).map_err(|e| decode_err("metadata", e))?,
        client_id: row.try_get("client_id")?,
        created_at: row.try_get("created_at")?,
        completed_at: row.try_get("completed_at")?,
    })
}

impl Store {
    /// Records a batch; with a `client_id` seen before, the earlier batch
    /// and `false`.
    pub async fn create_batch(&self, org_id: &str, new: &NewBatch) -> Result<(Batch, bool)> {
        if let Some(c) = &new.client_id
            && let Some(b) = self.batch_by_client_id(org_id, c).await?
        {
            return Ok((b, false));
        }
        let metadata =
            serde_json::to_string(&new.metadata).map_err(|e| decode_err("metadata", e))?;
        let row = Sql::new(&format!("INSERT INTO call_batches ({BATCH_COLS}) VALUES ("))
            .text(new_id("bat"))
            .push(", ")
            .text(org_id.to_owned())
            .push(", ")
            .text(new.name.clone())
            .push(", 'running', ")
            .int(new.max_concurrent)
            .push(", ")
            .int(new.total)
            .push(", ")
            .text(new.defaults.to_string())
            .push(", ")
            .text(metadata)
            .push(", ")
            .text(new.client_id.clone())
            .push(", ")
            .int(now_ms())
            .push(", NULL) RETURNING ")
            .push(BATCH_COLS)
            .fetch_optional(&self.pool)
            .await;
        match row {
            Ok(Some(r)) => Ok((batch_from_row(&r)?, true)),
            Ok(None) => Err(StoreError::NotFound),
            Err(e) if is_unique_violation(&e) => {
                if let Some(c) = &new.client_id
                    && let Some(b) = self.batch_by_client_id(org_id, c).await?
                {
                    return Ok((b, false));
                }
                Err(StoreError::Conflict("id"))
            }
            Err(e) => Err(write_err(e, "id", "org_id")),
        }
    }

    async fn batch_by_client_id(&self, org_id: &str, client_id: &str) -> Result<Option<Batch>> {
        Sql::new(&format!(
            "SELECT {BATCH_COLS} FROM call_batches WHERE org_id = "
        ))
        .text(org_id.to_owned())
        .push(" AND client_id = ")
        .text(client_id.to_owned())
        .fetch_optional(&self.pool)
        .await?
        .as_ref()
        .map(batch_from_row)
        .transpose()
    }

    /// One of the org's batches.
    pub async fn get_batch(&self, org_id: &str, id: &str) -> Result<Batch> {
        let row = Sql::new(&format!(
            "SELECT {BATCH_COLS} FROM call_batches WHERE org_id = "
        ))
        .text(org_id.to_owned())
        .push(" AND id = ")
        .text(id.to_owned())
        .fetch_optional(&self.pool)
        .await?
        .ok_or(StoreError::NotFound)?;
        batch_from_row(&row)
    }

    /// How many of the batch's calls have each status.
    pub async fn batch_counts(&self, batch_id: &str) -> Result<BTreeMap<String, i64>> {
        let rows = Sql::new("SELECT status, COUNT(*) AS n FROM calls WHERE batch_id = ")
            .text(batch_id.to_owned())
            .push(" GROUP BY status")
            .fetch_all(&self.pool)
            .await?;
        let mut out = BTreeMap::new();
        for r in &rows {
            out.insert(r.try_get::<String, _>("status")?, r.try_get::<i64, _>("n")?);
        }
        Ok(out)
    }

    /// The batch's calls, oldest first (at most `limit`).
    pub async fn batch_calls(&self, org_id: &str, batch_id: &str, limit: u32) -> Result<Vec<Call>> {
        let rows = Sql::new(&format!("SELECT {CALL_COLS} FROM calls WHERE org_id = "))
            .text(org_id.to_owned())
            .push(" AND batch_id = ")
            .text(batch_id.to_owned())
            .push(" ORDER BY created_at, id LIMIT ")
            .int(i64::from(limit))
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(call_from_row).collect()
    }

    /// Cancels what of the batch has not been dialled: its waiting calls,
    /// returned as canceled. Calls under way finish.
    pub async fn cancel_batch(&self, org_id: &str, id: &str) -> Result<Vec<Call>> {
        self.get_batch(org_id, id).await?;
        let mut tx = self.pool.begin().await?;
        Sql::new("UPDATE call_batches SET status = 'canceled' WHERE id = ")
            .text(id.to_owned())
            .push(" AND status = 'running'")
            .execute(&mut *tx)
            .await?;
        let rows = Sql::new(
            "UPDATE calls SET status = 'canceled', next_attempt_at = NULL, hangup_by = 'api', \
             duration_ms = 0, hangup_reason = 'batch canceled through the API', ended_at = ",
        )
        .int(now_ms())
        .push(" WHERE org_id = ")
        .text(org_id.to_owned())
        .push(" AND batch_id = ")
        .text(id.to_owned())
        .push(" AND status IN ")
        .push(&status_list(&CallStatus::WAITING))
        .push(" RETURNING ")
        .push(CALL_COLS)
        .fetch_all(&mut *tx)
        .await?;
        tx.commit().await?;
        rows.iter().map(call_from_row).collect()
    }

    /// Stamps the batch as settled when none of its calls can change any
    /// more; the batch the first time, `None` otherwise (not yet, or
    /// already stamped).
    pub async fn settle_batch(&self, id: &str) -> Result<Option<Batch>> {
        Sql::new(
            "UPDATE call_batches SET status = CASE WHEN status = 'canceled' THEN 'canceled' \
             ELSE 'completed' END, completed_at = ",
        )
        .int(now_ms())
        .push(" WHERE id = ")
        .text(id.to_owned())
        .push(" AND completed_at IS NULL AND NOT EXISTS (SELECT 1 FROM calls WHERE batch_id = ")
        .text(id.to_owned())
        .push(" AND status NOT IN ")
        .push(TERMINAL_SQL)
        .push(") RETURNING ")
        .push(BATCH_COLS)
        .fetch_optional(&self.pool)
        .await?
        .as_ref()
        .map(batch_from_row)
        .transpose()
    }
}
