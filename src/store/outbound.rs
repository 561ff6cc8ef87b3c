//! The dialling queue: waiting calls claimed under their organization's
//! dial gate, each attempt's record, the do-not-call list, and batches.
//!
//! A claim runs in one transaction that first locks the organization's
//! row in `dial_gates` (an UPDATE, so Postgres takes a row lock and
//! SQLite its write lock), then counts the organization's live calls and
//! moves one due call to `dialing`. Two nodes sharing Postgres therefore
//! never exceed a concurrency limit, never break the calls-per-second
//! spacing, and never claim the same attempt.

use serde::Serialize;
use sqlx::Row;
use sqlx::any::AnyRow;

use super::calls::{CALL_COLS, call_from_row, status_list};
use super::{Call, CallStatus, Page, PageRequest, Result, Sql, Store, StoreError, now_ms};
use super::{page_of, paginate};

/// An organization's dialling limits.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct DialLimits {
    /// Calls up (dialing, ringing or in progress) at once.
    pub max_concurrent: u32,
    /// Shortest spacing between two dials, ms (1000 / calls per second).
    pub min_interval_ms: i64,
}

/// What [`Store::claim_call`] got.
#[derive(Debug, Clone, PartialEq)]
pub enum Claim {
    /// This call is now `dialing`, its attempt counted and recorded.
    Claimed(Box<Call>),
    /// The organization may dial again at this time (unix ms).
    Paced(i64),
    /// The organization (or every due call's batch) is at its limit.
    Full,
    /// Nothing of the organization is due.
    Empty,
}

/// How an attempt ended, for [`Store::end_attempt`].
#[derive(Debug, Clone, Default, PartialEq)]
pub struct AttemptEnd {
    /// The attempt's own outcome (`completed`, `voicemail`, `busy`, …).
    pub status: String,
    /// `human`, `machine` or `unknown` when screened.
    pub answered_by: Option<String>,
    /// The final SIP status.
    pub sip_code: Option<i64>,
    /// Why it ended, in words.
    pub hangup_reason: Option<String>,
    /// Unix ms.
    pub answered_at: Option<i64>,
    /// Unix ms.
    pub ended_at: i64,
}

/// One attempt at a call.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct CallAttempt {
    /// From 1.
    pub attempt: i64,
    /// `dialing` while under way, then its outcome: completed, voicemail,
    /// no_answer, busy, failed or canceled.
    pub status: String,
    /// Who answered, when screened.
    pub answered_by: Option<String>,
    /// The final SIP status.
    pub sip_code: Option<i64>,
    /// Why it ended.
    pub hangup_reason: Option<String>,
    /// When it was dialled, unix ms.
    pub started_at: i64,
    /// When it was answered.
    pub answered_at: Option<i64>,
    /// When it ended.
    pub ended_at: Option<i64>,
}

/// A number on an organization's do-not-call list.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct DncEntry {
    /// E.164.
    pub e164: String,
    /// `callee_request` (the callee asked during a call) or `api`.
    pub source: String,
    /// The call in which the callee asked.
    pub call_id: Option<String>,
    /// Why, in words.
    pub reason: Option<String>,
    /// Unix ms.
    pub created_at: i64,
}

fn attempt_from_row(row: &AnyRow) -> Result<CallAttempt> {
    Ok(CallAttempt {
        attempt: row.try_get("attempt")?,
        status: row.try_get("status")?,
        answered_by: row.try_get("answered_by")?,
        sip_code: row.try_get("sip_code")?,
        hangup_reason: row.try_get("hangup_reason")?,
        started_at: row.try_get("started_at")?,
        answered_at: row.try_get("answered_at")?,
        ended_at: row.try_get("ended_at")?,
    })
}

fn dnc_from_row(row: &AnyRow) -> Result<DncEntry> {
    Ok(DncEntry {
        e164: row.try_get("e164")?,
        source: row.try_get("source")?,
        call_id: row.try_get("call_id")?,
        reason: row.try_get("reason")?,
        created_at: row.try_get("created_at")?,
    })
}

/// `AND <a due, waiting call whose batch has room>` for `calls` rows.
fn push_claimable(sql: &mut Sql, now: i64) {
    let live = status_list(&CallStatus::LIVE);
    sql.push(" AND status IN ")
        .push(&status_list(&CallStatus::WAITING))
        .push(" AND next_attempt_at IS NOT NULL AND next_attempt_at <= ")
        .int(now)
        .push(" AND (batch_id IS NULL OR (SELECT COUNT(*) FROM calls l WHERE l.batch_id = calls.batch_id AND l.status IN ")
        .push(&live)
        .push(") < (SELECT b.max_concurrent FROM call_batches b WHERE b.id = calls.batch_id))");
}

impl Store {
    /// Claims a due call of `org_id` (call `only`, when given) at `now`
    /// within `limits`: see the module docs.
    pub async fn claim_call(
        &self,
        org_id: &str,
        only: Option<&str>,
        now: i64,
        limits: DialLimits,
    ) -> Result<Claim> {
        let mut tx = self.pool.begin().await?;
        Sql::new("INSERT INTO dial_gates (org_id, next_dial_at) VALUES (")
            .text(org_id.to_owned())
            .push(", 0) ON CONFLICT (org_id) DO NOTHING")
            .execute(&mut *tx)
            .await?;
        let gate = Sql::new("UPDATE dial_gates SET next_dial_at = next_dial_at WHERE org_id = ")
            .text(org_id.to_owned())
            .push(" RETURNING next_dial_at")
            .fetch_optional(&mut *tx)
            .await?
            .ok_or(StoreError::NotFound)?;
        let next_dial_at: i64 = gate.try_get("next_dial_at")?;
        if next_dial_at > now {
            return Ok(Claim::Paced(next_dial_at));
        }
        // The attempt starts once the gate is held: waiting for it (the
        // pool, another node's claim) must not date the attempt earlier
        // than the count of live calls it was admitted on.
        let started = now.max(now_ms());
        let live = Sql::new("SELECT COUNT(*) AS n FROM calls WHERE org_id = ")
            .text(org_id.to_owned())
            .push(" AND status IN ")
            .push(&status_list(&CallStatus::LIVE))
            .fetch_optional(&mut *tx)
            .await?
            .ok_or(StoreError::NotFound)?;
        let live: i64 = live.try_get("n")?;
        if live >= i64::from(limits.max_concurrent) {
            return Ok(Claim::Full);
        }
        let mut pick = Sql::new("SELECT id FROM calls WHERE org_id = ");
        pick.text(org_id.to_owned());
        if let Some(id) = only {
            pick.push(" AND id = ").text(id.to_owned());
        }
        push_claimable(&mut pick, now);
        pick.push(" ORDER BY next_attempt_at, created_at, id LIMIT 1");
        let Some(row) = pick.fetch_optional(&mut *tx).await? else {
            // Due calls whose batches are all full count as full.
            let mut any = Sql::new("SELECT id FROM calls WHERE org_id = ");
            any.text(org_id.to_owned());
            if let Some(id) = only {
                any.push(" AND id = ").text(id.to_owned());
            }
            any.push(" AND status IN ")
                .push(&status_list(&CallStatus::WAITING))
                .push(" AND next_attempt_at <= ")
                .int(now)
                .push(" LIMIT 1");
            let waiting = any.fetch_optional(&mut *tx).await?.is_some();
            return Ok(if waiting { Claim::Full } else { Claim::Empty });
        };
        let id: String = row.try_get("id")?;
        let mut claim = Sql::new(
            "UPDATE calls SET status = 'dialing', attempts = attempts + 1, \
             next_attempt_at = NULL WHERE id = ",
        );
        claim
            .text(id.clone())
            .push(" AND status IN ")
            .push(&status_list(&CallStatus::WAITING))
            .push(" RETURNING ")
            .push(CALL_COLS);
        let Some(row) = claim.fetch_optional(&mut *tx).await? else {
            return Ok(Claim::Empty);
        };
        let call = call_from_row(&row)?;
        Sql::new("INSERT INTO call_attempts (call_id, attempt, status, started_at) VALUES (")
            .text(id)
            .push(", ")
            .int(call.attempts)
            .push(", 'dialing', ")
            .int(started)
            .push(")")
            .execute(&mut *tx)
            .await?;
        Sql::new("UPDATE dial_gates SET next_dial_at = ")
            .int(started.saturating_add(limits.min_interval_ms))
            .push(" WHERE org_id = ")
            .text(org_id.to_owned())
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(Claim::Claimed(Box::new(call)))
    }

    /// Gives a claimed call back to the queue, due at `at`, as if it had
    /// not been claimed: the engine could not place it (draining, full).
    pub async fn release_claim(&self, org_id: &str, id: &str, at: i64) -> Result<()> {
        let mut tx = self.pool.begin().await?;
        let row = Sql::new(
            "UPDATE calls SET status = CASE WHEN attempts > 1 THEN 'retry_scheduled' ELSE 'queued' END, \
             attempts = attempts - 1, next_attempt_at = ",
        )
        .int(at)
        .push(" WHERE org_id = ")
        .text(org_id.to_owned())
        .push(" AND id = ")
        .text(id.to_owned())
        .push(" AND status = 'dialing' RETURNING attempts")
        .fetch_optional(&mut *tx)
        .await?
        .ok_or(StoreError::Conflict("status"))?;
        let attempts: i64 = row.try_get("attempts")?;
        Sql::new("DELETE FROM call_attempts WHERE call_id = ")
            .text(id.to_owned())
            .push(" AND attempt = ")
            .int(attempts + 1)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(())
    }

    /// Organizations with calls due at `now`, oldest due first.
    pub async fn orgs_with_due_calls(&self, now: i64, limit: u32) -> Result<Vec<String>> {
        let rows =
            Sql::new("SELECT org_id, MIN(next_attempt_at) AS due FROM calls WHERE status IN ")
                .push(&status_list(&CallStatus::WAITING))
                .push(" AND next_attempt_at <= ")
                .int(now)
                .push(" GROUP BY org_id ORDER BY due, org_id LIMIT ")
                .int(i64::from(limit))
                .fetch_all(&self.pool)
                .await?;
        rows.iter()
            .map(|r| r.try_get::<String, _>("org_id").map_err(Into::into))
            .collect()
    }

    /// When the next waiting call is due, unix ms.
    pub async fn next_call_due(&self) -> Result<Option<i64>> {
        let row = Sql::new("SELECT MIN(next_attempt_at) AS due FROM calls WHERE status IN ")
            .push(&status_list(&CallStatus::WAITING))
            .fetch_optional(&self.pool)
            .await?;
        Ok(match row {
            Some(r) => r.try_get::<Option<i64>, _>("due")?,
            None => None,
        })
    }

    /// Closes the record of attempt `attempt` of call `id`.
    pub async fn end_attempt(&self, id: &str, attempt: i64, end: &AttemptEnd) -> Result<()> {
        Sql::new("UPDATE call_attempts SET status = ")
            .text(end.status.clone())
            .push(", answered_by = ")
            .text(end.answered_by.clone())
            .push(", sip_code = ")
            .int(end.sip_code)
            .push(", hangup_reason = ")
            .text(end.hangup_reason.clone())
            .push(", answered_at = ")
            .int(end.answered_at)
            .push(", ended_at = ")
            .int(end.ended_at)
            .push(" WHERE call_id = ")
            .text(id.to_owned())
            .push(" AND attempt = ")
            .int(attempt)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// The attempts at a call, in order.
    pub async fn call_attempts(&self, id: &str) -> Result<Vec<CallAttempt>> {
        let rows = Sql::new(
            "SELECT attempt, status, answered_by, sip_code, hangup_reason, started_at, \
             answered_at, ended_at FROM call_attempts WHERE call_id = ",
        )
        .text(id.to_owned())
        .push(" ORDER BY attempt")
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(attempt_from_row).collect()
    }

    /// Puts a call whose attempt just ended back in the queue as `status`
    /// (retry_scheduled or needs_follow_up), due at `at`; the attempt's
    /// connected time moves to `prior_connected_ms`. Only from a live
    /// status.
    pub async fn requeue_call(
        &self,
        org_id: &str,
        id: &str,
        status: CallStatus,
        at: i64,
        end: &AttemptEnd,
    ) -> Result<Call> {
        let connected = end.answered_at.map_or(0, |a| (end.ended_at - a).max(0));
        let row = Sql::new("UPDATE calls SET status = ")
            .text(status.as_str().to_owned())
            .push(", next_attempt_at = ")
            .int(at)
            .push(", prior_connected_ms = prior_connected_ms + ")
            .int(connected)
            .push(", answered_at = NULL, ended_at = NULL, duration_ms = NULL, hangup_reason = ")
            .text(end.hangup_reason.clone())
            .push(", sip_code = ")
            .int(end.sip_code)
            .push(" WHERE org_id = ")
            .text(org_id.to_owned())
            .push(" AND id = ")
            .text(id.to_owned())
            .push(" AND status IN ")
            .push(&status_list(&CallStatus::LIVE))
            .push(" RETURNING ")
            .push(CALL_COLS)
            .fetch_optional(&self.pool)
            .await?;
        match row {
            Some(r) => call_from_row(&r),
            None => {
                self.get_call(org_id, id).await?;
                Err(StoreError::Conflict("status"))
            }
        }
    }

    /// Cancels a call still waiting in the queue. `Conflict("live")` when
    /// an attempt is under way, `Conflict("status")` when it is over.
    pub async fn cancel_waiting_call(&self, org_id: &str, id: &str, reason: &str) -> Result<Call> {
        let now = now_ms();
        let row = Sql::new(
            "UPDATE calls SET status = 'canceled', next_attempt_at = NULL, hangup_by = 'api', \
             duration_ms = 0, hangup_reason = ",
        )
        .text(reason.to_owned())
        .push(", ended_at = ")
        .int(now)
        .push(" WHERE org_id = ")
        .text(org_id.to_owned())
        .push(" AND id = ")
        .text(id.to_owned())
        .push(" AND status IN ")
        .push(&status_list(&CallStatus::WAITING))
        .push(" RETURNING ")
        .push(CALL_COLS)
        .fetch_optional(&self.pool)
        .await?;
        match row {
            Some(r) => call_from_row(&r),
            None => {
                let call = self.get_call(org_id, id).await?;
                Err(StoreError::Conflict(if call.status.is_live() {
                    "live"
                } else {
                    "status"
                }))
            }
        }
    }

    /// Outbound calls with an attempt under way: at start-up, those a
    /// previous process left (their attempts died with it).
    pub async fn live_outbound_calls(&self) -> Result<Vec<Call>> {
        let rows = Sql::new(&format!(
            "SELECT {CALL_COLS} FROM calls WHERE direction = 'outbound' AND status IN "
        ))
        .push(&status_list(&CallStatus::LIVE))
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(call_from_row).collect()
    }

    /// Adds `e164` to the organization's do-not-call list (kept as it was
    /// when it is there already); whether it was added.
    pub async fn add_dnc(
        &self,
        org_id: &str,
        e164: &str,
        source: &str,
        call_id: Option<&str>,
        reason: Option<&str>,
    ) -> Result<bool> {
        let n = Sql::new(
            "INSERT INTO dnc_numbers (org_id, e164, source, call_id, reason, created_at) VALUES (",
        )
        .text(org_id.to_owned())
        .push(", ")
        .text(e164.to_owned())
        .push(", ")
        .text(source.to_owned())
        .push(", ")
        .text(call_id.map(str::to_owned))
        .push(", ")
        .text(reason.map(str::to_owned))
        .push(", ")
        .int(now_ms())
        .push(") ON CONFLICT (org_id, e164) DO NOTHING")
        .execute(&self.pool)
        .await?;
        Ok(n > 0)
    }

    /// The list entry of `e164`, if the organization must not call it.
    pub async fn dnc_entry(&self, org_id: &str, e164: &str) -> Result<Option<DncEntry>> {
        Sql::new(
            "SELECT e164, source, call_id, reason, created_at FROM dnc_numbers WHERE org_id = ",
        )
        .text(org_id.to_owned())
        .push(" AND e164 = ")
        .text(e164.to_owned())
        .fetch_optional(&self.pool)
        .await?
        .as_ref()
        .map(dnc_from_row)
        .transpose()
    }

    /// Takes `e164` off the list; `NotFound` if it was not on it.
    pub async fn remove_dnc(&self, org_id: &str, e164: &str) -> Result<()> {
        let n = Sql::new("DELETE FROM dnc_numbers WHERE org_id = ")
            .text(org_id.to_owned())
            .push(" AND e164 = ")
            .text(e164.to_owned())
            .execute(&self.pool)
            .await?;
        if n == 0 {
            return Err(StoreError::NotFound);
        }
        Ok(())
    }

    /// The organization's do-not-call list, newest first.
    pub async fn list_dnc(&self, org_id: &str, page: &PageRequest) -> Result<Page<DncEntry>> {
        // The pagination keys on `id`: here the number is the id.
        let mut sql = Sql::new(
            "SELECT * FROM (SELECT e164, source, call_id, reason, created_at, e164 AS id \
             FROM dnc_numbers WHERE org_id = ",
        );
        sql.text(org_id.to_owned()).push(") d WHERE 1 = 1");
        let limit = paginate(&mut sql, page)?;
        let rows = sql.fetch_all(&self.pool).await?;
        let items = rows.iter().map(dnc_from_row).collect::<Result<Vec<_>>>()?;
        Ok(page_of(items, limit, |e| (e.created_at, e.e164.as_str())))
    }
}
