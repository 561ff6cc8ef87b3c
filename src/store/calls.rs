//! Calls, their transcripts, and usage totals.

use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};
use serde_json::Value;
use sqlx::Row;
use sqlx::any::AnyRow;

use super::{
    Page, PageRequest, Result, Sql, Store, StoreError, check_opt_text, check_text, check_url,
    decode_err, is_unique_violation, json_col, now_ms, opt_json_col, page_of, paginate, write_err,
};
use crate::call::{CallDirection, CallId};

/// Where a call is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CallStatus {
    /// Accepted, waiting to be dialled as soon as the organization's
    /// limits allow.
    Queued,
    /// Waiting for its `schedule_at` (or business hours).
    Scheduled,
    /// Claimed by a dispatcher: the INVITE is going out.
    Dialing,
    /// Alerting.
    Ringing,
    /// Answered and connected.
    InProgress,
    /// Answered, then hung up.
    Completed,
    /// An answering machine answered (the message was left, or not).
    Voicemail,
    /// The far end was busy.
    Busy,
    /// Nobody answered in time.
    NoAnswer,
    /// An attempt failed; the next one is due at `next_attempt_at`.
    RetryScheduled,
    /// The callee asked to be called back: due at `next_attempt_at`.
    NeedsFollowUp,
    /// Every attempt the retry policy allowed failed.
    Exhausted,
    /// Could not be set up.
    Failed,
    /// Withdrawn before it was answered.
    Canceled,
}

impl CallStatus {
    /// Every status.
    pub const ALL: [CallStatus; 14] = [
        CallStatus::Queued,
        CallStatus::Scheduled,
        CallStatus::Dialing,
        CallStatus::Ringing,
        CallStatus::InProgress,
        CallStatus::Completed,
        CallStatus::Voicemail,
        CallStatus::Busy,
        CallStatus::NoAnswer,
        CallStatus::RetryScheduled,
        CallStatus::NeedsFollowUp,
        CallStatus::Exhausted,
        CallStatus::Failed,
        CallStatus::Canceled,
    ];

    /// The statuses of calls waiting in the dialling queue.
    pub const WAITING: [CallStatus; 4] = [
        CallStatus::Queued,
        CallStatus::Scheduled,
        CallStatus::RetryScheduled,
        CallStatus::NeedsFollowUp,
    ];

    /// The statuses of a call with an attempt under way.
    pub const LIVE: [CallStatus; 3] = [
        CallStatus::Dialing,
        CallStatus::Ringing,
        CallStatus::InProgress,
    ];

    /// The name stored and shown in the API.
    pub fn as_str(self) -> &'static str {
        match self {
            CallStatus::Queued => "queued",
            CallStatus::Scheduled => "scheduled",
            CallStatus::Dialing => "dialing",
            CallStatus::Ringing => "ringing",
            CallStatus::InProgress => "in_progress",
            CallStatus::Completed => "completed",
            CallStatus::Voicemail => "voicemail",
            CallStatus::Busy => "busy",
            CallStatus::NoAnswer => "no_answer",
            CallStatus::RetryScheduled => "retry_scheduled",
            CallStatus::NeedsFollowUp => "needs_follow_up",
            CallStatus::Exhausted => "exhausted",
            CallStatus::Failed => "failed",
            CallStatus::Canceled => "canceled",
        }
    }

    /// Whether the call is over; a final status never changes.
    pub fn is_terminal(self) -> bool {
        !self.is_waiting() && !self.is_live()
    }

    /// Whether the call waits in the dialling queue.
    pub fn is_waiting(self) -> bool {
        CallStatus::WAITING.contains(&self)
    }

    /// Whether an attempt is under way.
    pub fn is_live(self) -> bool {
        CallStatus::LIVE.contains(&self)
    }
}

/// `('a', 'b', …)`: statuses as an SQL list.
pub(crate) fn status_list(statuses: &[CallStatus]) -> String {
    let names: Vec<String> = statuses
        .iter()
        .map(|s| format!("'{}'", s.as_str()))
        .collect();
    format!("({})", names.join(", "))
}

impl fmt::Display for CallStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// An unknown call status name.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown call status {0:?}")]
pub struct UnknownStatus(String);

impl FromStr for CallStatus {
    type Err = UnknownStatus;
    fn from_str(s: &str) -> Result<Self, UnknownStatus> {
        CallStatus::ALL
            .into_iter()
            .find(|st| st.as_str() == s)
            .ok_or_else(|| UnknownStatus(s.to_owned()))
    }
}

fn direction_str(d: CallDirection) -> &'static str {
    match d {
        CallDirection::Inbound => "inbound",
        CallDirection::Outbound => "outbound",
    }
}

/// An unknown call direction name.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown call direction {0:?}")]
struct UnknownDirection(String);

fn parse_direction(s: &str) -> Result<CallDirection, UnknownDirection> {
    match s {
        "inbound" => Ok(CallDirection::Inbound),
        "outbound" => Ok(CallDirection::Outbound),
        other => Err(UnknownDirection(other.to_owned())),
    }
}

/// A stored call.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Call {
    /// `call_` and 24 hex digits.
    pub id: CallId,
    /// Owning org.
    pub org_id: String,
    /// Inbound or outbound.
    pub direction: CallDirection,
    /// Caller.
    pub from: String,
    /// Callee.
    pub to: String,
    /// The org's number involved, if any.
    pub number_id: Option<String>,
    /// The agent that ran the call, if any.
    pub agent_id: Option<String>,
    /// The contact the call was with (the caller of an inbound call, the
    /// callee of an outbound one), when the number is one.
    pub contact_id: Option<String>,
    /// Current status.
    pub status: CallStatus,
    /// Creation time, unix ms.
    pub created_at: i64,
    /// When it was answered, unix ms.
    pub answered_at: Option<i64>,
    /// When it ended, unix ms.
    pub ended_at: Option<i64>,
    /// Time connected (answer to end); 0 for unanswered calls.
    pub duration_ms: Option<i64>,
    /// Which side hung up (`caller`, `agent`, `system`, …).
    pub hangup_by: Option<String>,
    /// Why it ended, in words.
    pub hangup_reason: Option<String>,
    /// Final SIP response code, for failed calls.
    pub sip_code: Option<i64>,
    /// The SIP Call-ID, to correlate with carrier logs.
    pub sip_call_id: Option<String>,
    /// Post-call summary.
    pub summary: Option<String>,
    /// Post-call outcome label.
    pub outcome: Option<String>,
    /// Data the agent collected.
    pub structured_data: Option<Value>,
    /// The voice agent's per-turn timings (a JSON array of objects).
    pub turn_metrics: Option<Value>,
    /// Where the recording file is.
    pub recording_path: Option<String>,
    /// The client's own key-value pairs.
    pub metadata: BTreeMap<String, String>,
    /// Inline call settings from the request (prompt, objective, voice, …).
    pub request: Value,
    /// Per-call webhook URL.
    pub webhook_url: Option<String>,
    /// The client's idempotency key.
    pub client_id: Option<String>,
    /// Attempts started so far.
    pub attempts: i64,
    /// When a waiting call is due, unix ms.
    pub next_attempt_at: Option<i64>,
    /// The batch the call belongs to.
    pub batch_id: Option<String>,
    /// Connected time of earlier attempts, ms (billed with this one's).
    pub prior_connected_ms: i64,
}

/// What [`Store::create_call`] needs.
#[derive(Debug, Clone, PartialEq)]
pub struct NewCall {
    /// The id to use; a fresh one if `None` (the engine may have one already).
    pub id: Option<CallId>,
    /// Inbound or outbound.
    pub direction: CallDirection,
    /// Caller.
    pub from: String,
    /// Callee.
    pub to: String,
    /// See [`Call::number_id`].
    pub number_id: Option<String>,
    /// See [`Call::agent_id`].
    pub agent_id: Option<String>,
    /// See [`Call::contact_id`].
    pub contact_id: Option<String>,
    /// Initial status.
    pub status: CallStatus,
    /// See [`Call::metadata`].
    pub metadata: BTreeMap<String, String>,
    /// See [`Call::request`]; a JSON object.
    pub request: Value,
    /// See [`Call::webhook_url`].
    pub webhook_url: Option<String>,
    /// Idempotency key: a second create with the same one returns the first
    /// call.
    pub client_id: Option<String>,
    /// When a waiting call is due (queued and scheduled calls).
    pub next_attempt_at: Option<i64>,
    /// See [`Call::batch_id`].
    pub batch_id: Option<String>,
}

impl NewCall {
    /// A call between `from` and `to`, queued (outbound) or ringing
    /// (inbound), with nothing else set.
    pub fn new(
        direction: CallDirection,
        from: impl Into<String>,
        to: impl Into<String>,
    ) -> NewCall {
        NewCall {
            id: None,
            direction,
            from: from.into(),
            to: to.into(),
            number_id: None,
            agent_id: None,
            contact_id: None,
            status: match direction {
                CallDirection::Inbound => CallStatus::Ringing,
                CallDirection::Outbound => CallStatus::Queued,
            },
            metadata: BTreeMap::new(),
            request: Value::Object(Default::default()),
            webhook_url: None,
            client_id: None,
            next_attempt_at: None,
            batch_id: None,
        }
    }
}

/// Changes to a call as its events happen: only fields that are `Some`
/// change.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct CallUpdate {
    /// New status; a call whose status is final refuses another one.
    pub status: Option<CallStatus>,
    /// Answer time, unix ms.
    pub answered_at: Option<i64>,
    /// End time, unix ms; also sets `duration_ms` from the answer time.
    pub ended_at: Option<i64>,
    /// See [`Call::hangup_by`].
    pub hangup_by: Option<String>,
    /// See [`Call::hangup_reason`].
    pub hangup_reason: Option<String>,
    /// See [`Call::sip_code`].
    pub sip_code: Option<i64>,
    /// See [`Call::sip_call_id`].
    pub sip_call_id: Option<String>,
    /// See [`Call::summary`].
    pub summary: Option<String>,
    /// See [`Call::outcome`].
    pub outcome: Option<String>,
    /// See [`Call::structured_data`].
    pub structured_data: Option<Value>,
    /// See [`Call::turn_metrics`].
    pub turn_metrics: Option<Value>,
    /// See [`Call::recording_path`].
    pub recording_path: Option<String>,
    /// See [`Call::agent_id`].
    pub agent_id: Option<String>,
}

impl CallUpdate {
    /// Only a status change.
    pub fn status(status: CallStatus) -> CallUpdate {
        CallUpdate {
            status: Some(status),
            ..CallUpdate::default()
        }
    }

    /// Answered at `at`: in progress.
    pub fn answered(at: i64) -> CallUpdate {
        CallUpdate {
            status: Some(CallStatus::InProgress),
            answered_at: Some(at),
            ..CallUpdate::default()
        }
    }

    /// Ended at `at` with a final `status`.
    pub fn ended(status: CallStatus, at: i64) -> CallUpdate {
        CallUpdate {
            status: Some(status),
            ended_at: Some(at),
            ..CallUpdate::default()
        }
    }
}

/// Which calls a list returns.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CallFilter {
    /// Only calls with this status.
    pub status: Option<CallStatus>,
    /// Only calls on this number.
    pub number_id: Option<String>,
    /// Only calls run by this agent.
    pub agent_id: Option<String>,
    /// Only calls with this contact.
    pub contact_id: Option<String>,
    /// Only calls this way.
    pub direction: Option<CallDirection>,
    /// Only calls created at or after this time, unix ms.
    pub created_after: Option<i64>,
    /// Only calls created before this time, unix ms.
    pub created_before: Option<i64>,
}

/// One line of a call's transcript.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TranscriptEntry {
    /// The call.
    pub call_id: CallId,
    /// Position in the transcript, from 1, with no gaps.
    pub seq: i64,
    /// Who spoke (`caller`, `agent`, …).
    pub speaker: String,
    /// What was said.
    pub text: String,
    /// Start offset in the call, ms.
    pub start_ms: Option<i64>,
    /// End offset in the call, ms.
    pub end_ms: Option<i64>,
    /// The speaker (the agent) was cut off by the caller.
    pub interrupted: bool,
    /// When it was written, unix ms.
    pub created_at: i64,
}

/// What [`Store::append_transcript`] needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewTranscriptEntry {
    /// Who spoke.
    pub speaker: String,
    /// What was said.
    pub text: String,
    /// Start offset in the call, ms.
    pub start_ms: Option<i64>,
    /// End offset in the call, ms.
    pub end_ms: Option<i64>,
    /// The speaker was cut off by the caller.
    pub interrupted: bool,
}

/// Granularity of usage totals (UTC calendar).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum UsagePeriod {
    /// `YYYY-MM-DD` buckets.
    Day,
    /// `YYYY-MM` buckets.
    Month,
}

/// Which usage to total.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UsageQuery {
    /// Bucket size.
    pub period: UsagePeriod,
    /// Calls created at or after this time, unix ms.
    pub created_after: i64,
    /// Calls created before this time, unix ms.
    pub created_before: i64,
}

/// Totals for one period and direction.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct UsageRow {
    /// `YYYY-MM-DD` or `YYYY-MM` (UTC).
    pub period: String,
    /// Inbound or outbound.
    pub direction: CallDirection,
    /// Calls created.
    pub calls: i64,
    /// Connected time.
    pub duration_ms: i64,
    /// Billable minutes: each call's connected time rounded up to a minute.
    pub minutes: i64,
}

pub(crate) const CALL_COLS: &str = "id, org_id, direction, from_addr, to_addr, number_id, agent_id, contact_id, status, \
     created_at, answered_at, ended_at, duration_ms, hangup_by, hangup_reason, sip_code, \
     sip_call_id, summary, outcome, structured_data, turn_metrics, recording_path, metadata, \
     request, webhook_url, client_id, attempts, next_attempt_at, batch_id, prior_connected_ms";

pub(crate) const TERMINAL_SQL: &str =
    "('completed', 'voicemail', 'busy', 'no_answer', 'exhausted', 'failed', 'canceled')";

pub(crate) fn call_from_row(row: &AnyRow) -> Result<Call> {
    let direction: String = row.try_get("direction")?;
    let status: String = row.try_get("status")?;
    let metadata: String = row.try_get("metadata")?;
    Ok(Call {
        id: CallId::from(row.try_get::<String, _>("id")?),
        org_id: row.try_get("org_id")?,
        direction: parse_direction(&direction).map_err(|e| decode_err("direction", e))?,
        from: row.try_get("from_addr")?,
        to: row.try_get("to_addr")?,
        number_id: row.try_get("number_id")?,
        agent_id: row.try_get("agent_id")?,
        contact_id: row.try_get("contact_id")?,
        status: status.parse().map_err(|e| decode_err("status", e))?,
        created_at: row.try_get("created_at")?,
        answered_at: row.try_get("answered_at")?,
        ended_at: row.try_get("ended_at")?,
        duration_ms: row.try_get("duration_ms")?,
        hangup_by: row.try_get("hangup_by")?,
        hangup_reason: row.try_get("hangup_reason")?,
        sip_code: row.try_get("sip_code")?,
        sip_call_id: row.try_get("sip_call_id")?,
        summary: row.try_get("summary")?,
        outcome: row.try_get("outcome")?,
        structured_data: opt_json_col(row, "structured_data")?,
        turn_metrics: opt_json_col(row, "turn_metrics")?,
        recording_path: row.try_get("recording_path")?,
        metadata: serde_json::from_str(&metadata).map_err(|e| decode_err("metadata", e))?,
        request: json_col(row, "request")?,
        webhook_url: row.try_get("webhook_url")?,
        client_id: row.try_get("client_id")?,
        attempts: row.try_get("attempts")?,
        next_attempt_at: row.try_get("next_attempt_at")?,
        batch_id: row.try_get("batch_id")?,
        prior_connected_ms: row.try_get("prior_connected_ms")?,
    })
}

fn entry_from_row(row: &AnyRow) -> Result<TranscriptEntry> {
    Ok(TranscriptEntry {
        call_id: CallId::from(row.try_get::<String, _>("call_id")?),
        seq: row.try_get("seq")?,
        speaker: row.try_get("speaker")?,
        text: row.try_get("text")?,
        start_ms: row.try_get("start_ms")?,
        end_ms: row.try_get("end_ms")?,
        interrupted: row.try_get::<i64, _>("interrupted")? != 0,
        created_at: row.try_get("created_at")?,
    })
}

fn check_new_call(new: &NewCall) -> Result<()> {
    check_text("from", &new.from, 256)?;
    check_text("to", &new.to, 256)?;
    check_opt_text("client_id", new.client_id.as_deref(), 255)?;
    if let Some(url) = &new.webhook_url {
        check_url("webhook_url", url)?;
    }
    if !new.request.is_object() {
        return Err(StoreError::Invalid(
            "request",
            "must be a JSON object".into(),
        ));
    }
    if new.metadata.len() > 50
        || new
            .metadata
            .iter()
            .any(|(k, v)| k.is_empty() || k.len() > 64 || v.len() > 1024)
    {
        return Err(StoreError::Invalid(
            "metadata",
            "at most 50 pairs, keys of 1 to 64 bytes, values up to 1024 bytes".into(),
        ));
    }
    Ok(())
}

const MS_PER_DAY: i64 = 86_400_000;

/// (year, month, day) of a count of days since 1970-01-01, proleptic
/// Gregorian (Howard Hinnant's `civil_from_days`).
pub(crate) fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

fn period_label(period: UsagePeriod, day: i64) -> String {
    let (y, m, d) = civil_from_days(day);
    match period {
        UsagePeriod::Day => format!("{y:04}-{m:02}-{d:02}"),
        UsagePeriod::Month => format!("{y:04}-{m:02}"),
    }
}

impl Store {
    /// Records a new call in `org_id`. Returns the call and whether it was
    /// created: when `client_id` repeats, the existing call comes back with
    /// `false`. Race-safe: concurrent creates with one `client_id` collide
    /// on a unique constraint, and the losers read the winner's row.
    pub async fn create_call(&self, org_id: &str, new: &NewCall) -> Result<(Call, bool)> {
        check_new_call(new)?;
        if let Some(client_id) = &new.client_id
            && let Some(existing) = self.call_by_client_id(org_id, client_id).await?
        {
            return Ok((existing, false));
        }
        let id = new.id.clone().unwrap_or_else(CallId::random);
        let metadata =
            serde_json::to_string(&new.metadata).map_err(|e| decode_err("metadata", e))?;
        let inserted = Sql::new(
            "INSERT INTO calls (id, org_id, direction, from_addr, to_addr, number_id, agent_id, \
             contact_id, status, created_at, metadata, request, webhook_url, client_id, \
             next_attempt_at, batch_id) VALUES (",
        )
        .text(id.as_str().to_owned())
        .push(", ")
        .text(org_id.to_owned())
        .push(", ")
        .text(direction_str(new.direction).to_owned())
        .push(", ")
        .text(new.from.clone())
        .push(", ")
        .text(new.to.clone())
        .push(", ")
        .text(new.number_id.clone())
        .push(", ")
        .text(new.agent_id.clone())
        .push(", ")
        .text(new.contact_id.clone())
        .push(", ")
        .text(new.status.as_str().to_owned())
        .push(", ")
        .int(now_ms())
        .push(", ")
        .text(metadata)
        .push(", ")
        .text(new.request.to_string())
        .push(", ")
        .text(new.webhook_url.clone())
        .push(", ")
        .text(new.client_id.clone())
        .push(", ")
        .int(new.next_attempt_at)
        .push(", ")
        .text(new.batch_id.clone())
        .push(") RETURNING ")
        .push(CALL_COLS)
        .fetch_optional(&self.pool)
        .await;
        match inserted {
            Ok(Some(row)) => Ok((call_from_row(&row)?, true)),
            Ok(None) => Err(StoreError::NotFound),
            Err(e) if is_unique_violation(&e) => {
                // Either another create with this client_id won the race,
                // or the caller reused a call id.
                if let Some(client_id) = &new.client_id
                    && let Some(existing) = self.call_by_client_id(org_id, client_id).await?
                {
                    return Ok((existing, false));
                }
                Err(StoreError::Conflict("id"))
            }
            Err(e) => Err(write_err(e, "id", "org_id")),
        }
    }

    async fn call_by_client_id(&self, org_id: &str, client_id: &str) -> Result<Option<Call>> {
        Sql::new(&format!("SELECT {CALL_COLS} FROM calls WHERE org_id = "))
            .text(org_id.to_owned())
            .push(" AND client_id = ")
            .text(client_id.to_owned())
            .fetch_optional(&self.pool)
            .await?
            .as_ref()
            .map(call_from_row)
            .transpose()
    }

    /// One of the org's calls.
    pub async fn get_call(&self, org_id: &str, id: &str) -> Result<Call> {
        let row = Sql::new(&format!("SELECT {CALL_COLS} FROM calls WHERE org_id = "))
            .text(org_id.to_owned())
            .push(" AND id = ")
            .text(id.to_owned())
            .fetch_optional(&self.pool)
            .await?
            .ok_or(StoreError::NotFound)?;
        call_from_row(&row)
    }

    /// A call by id in any org: for the call engine's event bridge, which
    /// learns of calls by id and must find whose they are. Never answer an
    /// API request with it.
    pub async fn find_call(&self, id: &str) -> Result<Option<Call>> {
        Sql::new(&format!("SELECT {CALL_COLS} FROM calls WHERE id = "))
            .text(id.to_owned())
            .fetch_optional(&self.pool)
            .await?
            .as_ref()
            .map(call_from_row)
            .transpose()
    }

    /// Deletes a call that never started (the engine refused to place it),
    /// with its per-call webhook, so that a retry with the same
    /// `client_id` places it afresh. Only calls not yet dialled (queued,
    /// or claimed for their first attempt) can be discarded.
    pub async fn discard_call(&self, org_id: &str, id: &str) -> Result<()> {
        let mut tx = self.pool.begin().await?;
        Sql::new("DELETE FROM webhooks WHERE org_id = ")
            .text(org_id.to_owned())
            .push(" AND call_id = ")
            .text(id.to_owned())
            .execute(&mut *tx)
            .await?;
        Sql::new(
            "DELETE FROM call_attempts WHERE call_id IN (SELECT id FROM calls WHERE org_id = ",
        )
        .text(org_id.to_owned())
        .push(" AND id = ")
        .text(id.to_owned())
        .push(" AND status IN ('queued', 'dialing') AND attempts <= 1)")
        .execute(&mut *tx)
        .await?;
        let n = Sql::new("DELETE FROM calls WHERE org_id = ")
            .text(org_id.to_owned())
            .push(" AND id = ")
            .text(id.to_owned())
            .push(" AND status IN ('queued', 'dialing') AND attempts <= 1")
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        if n == 0 {
            return Err(StoreError::NotFound);
        }
        Ok(())
    }

    /// Marks every call with an attempt under way as failed, ended now,
    /// with `reason`: at start-up, calls left live by a previous process
    /// cannot be live any more (calls do not survive a restart). Calls
    /// waiting in the dialling queue stay there. Returns how many calls
    /// were closed.
    pub async fn fail_unfinished_calls(&self, reason: &str) -> Result<u64> {
        let now = now_ms();
        let n =
            Sql::new("UPDATE calls SET status = 'failed', hangup_by = 'system', hangup_reason = ")
                .text(reason.to_owned())
                .push(", ended_at = ")
                .int(now)
                .push(", duration_ms = CASE WHEN answered_at IS NULL THEN 0 WHEN ")
                .int(now)
                .push(" < answered_at THEN 0 ELSE ")
                .int(now)
                .push(" - answered_at END WHERE status IN ")
                .push(&status_list(&CallStatus::LIVE))
                .execute(&self.pool)
                .await?;
        Ok(n)
    }

    /// The org's calls matching `filter`, newest first.
    pub async fn list_calls(
        &self,
        org_id: &str,
        filter: &CallFilter,
        page: &PageRequest,
    ) -> Result<Page<Call>> {
        let mut sql = Sql::new(&format!("SELECT {CALL_COLS} FROM calls WHERE org_id = "));
        sql.text(org_id.to_owned());
        if let Some(s) = filter.status {
            sql.push(" AND status = ").text(s.as_str().to_owned());
        }
        if let Some(v) = &filter.number_id {
            sql.push(" AND number_id = ").text(v.clone());
        }
        if let Some(v) = &filter.agent_id {
            sql.push(" AND agent_id = ").text(v.clone());
        }
        if let Some(v) = &filter.contact_id {
            sql.push(" AND contact_id = ").text(v.clone());
        }
        if let Some(d) = filter.direction {
            sql.push(" AND direction = ")
                .text(direction_str(d).to_owned());
        }
        if let Some(t) = filter.created_after {
            sql.push(" AND created_at >= ").int(t);
        }
        if let Some(t) = filter.created_before {
            sql.push(" AND created_at < ").int(t);
        }
        let limit = paginate(&mut sql, page)?;
        let rows = sql.fetch_all(&self.pool).await?;
        let calls = rows.iter().map(call_from_row).collect::<Result<Vec<_>>>()?;
        Ok(page_of(calls, limit, |c| (c.created_at, c.id.as_str())))
    }

    /// Applies `update` to a call and returns it as stored.
    /// [`StoreError::Conflict`]`("status")` if the call already has a
    /// different final status: late events cannot reopen a finished call.
    pub async fn update_call(&self, org_id: &str, id: &str, update: &CallUpdate) -> Result<Call> {
        check_opt_text("hangup_by", update.hangup_by.as_deref(), 64)?;
        check_opt_text("hangup_reason", update.hangup_reason.as_deref(), 1024)?;
        check_opt_text("sip_call_id", update.sip_call_id.as_deref(), 1024)?;
        check_opt_text("outcome", update.outcome.as_deref(), 256)?;
        check_opt_text("recording_path", update.recording_path.as_deref(), 4096)?;
        if let Some(code) = update.sip_code
            && !(100..=699).contains(&code)
        {
            return Err(StoreError::Invalid("sip_code", "must be 100 to 699".into()));
        }
        // Every SET item starts with ", "; the id = id no-op keeps the
        // statement valid when the update is empty.
        let mut sql = Sql::new("UPDATE calls SET id = id");
        let texts: [(&str, &Option<String>); 7] = [
            ("hangup_by", &update.hangup_by),
            ("hangup_reason", &update.hangup_reason),
            ("sip_call_id", &update.sip_call_id),
            ("summary", &update.summary),
            ("outcome", &update.outcome),
            ("recording_path", &update.recording_path),
            ("agent_id", &update.agent_id),
        ];
        for (col, value) in texts {
            if let Some(v) = value {
                sql.push(", ").push(col).push(" = ").text(v.clone());
            }
        }
        if let Some(s) = update.status {
            sql.push(", status = ").text(s.as_str().to_owned());
        }
        if let Some(v) = update.sip_code {
            sql.push(", sip_code = ").int(v);
        }
        if let Some(v) = &update.structured_data {
            sql.push(", structured_data = ").text(v.to_string());
        }
        if let Some(v) = &update.turn_metrics {
            sql.push(", turn_metrics = ").text(v.to_string());
        }
        if let Some(at) = update.answered_at {
            sql.push(", answered_at = ").int(at);
        }
        if let Some(end) = update.ended_at {
            sql.push(", ended_at = ").int(end);
            // SET expressions see the old row, so an answer time given in
            // this same update is used directly.
            match update.answered_at {
                Some(answered) => {
                    sql.push(", duration_ms = ").int((end - answered).max(0));
                }
                None => {
                    sql.push(", duration_ms = CASE WHEN answered_at IS NULL THEN 0 WHEN ")
                        .int(end)
                        .push(" < answered_at THEN 0 ELSE ")
                        .int(end)
                        .push(" - answered_at END");
                }
            }
        }
        sql.push(" WHERE org_id = ")
            .text(org_id.to_owned())
            .push(" AND id = ")
            .text(id.to_owned());
        if let Some(s) = update.status {
            sql.push(" AND (status NOT IN ")
                .push(TERMINAL_SQL)
                .push(" OR status = ")
                .text(s.as_str().to_owned())
                .push(")");
        }
        sql.push(" RETURNING ").push(CALL_COLS);
        match sql.fetch_optional(&self.pool).await? {
            Some(row) => call_from_row(&row),
            None => {
                // Tell a missing call from one whose status is final.
                self.get_call(org_id, id).await?;
                Err(StoreError::Conflict("status"))
            }
        }
    }

    /// Appends one transcript line to a call, immediately and durably, and
    /// returns it with its sequence number.
    pub async fn append_transcript(
        &self,
        org_id: &str,
        call_id: &str,
        entry: &NewTranscriptEntry,
    ) -> Result<TranscriptEntry> {
        check_text("speaker", &entry.speaker, 64)?;
        if entry.text.len() > 100_000 {
            return Err(StoreError::Invalid("text", "too long".into()));
        }
        let mut tx = self.pool.begin().await?;
        // Bumping the call's counter both checks that the call is this
        // org's and row-locks it, so concurrent appends get distinct,
        // gapless numbers.
        let seq_row =
            Sql::new("UPDATE calls SET transcript_seq = transcript_seq + 1 WHERE org_id = ")
                .text(org_id.to_owned())
                .push(" AND id = ")
                .text(call_id.to_owned())
                .push(" RETURNING transcript_seq")
                .fetch_optional(&mut *tx)
                .await?
                .ok_or(StoreError::NotFound)?;
        let seq: i64 = seq_row.try_get("transcript_seq")?;
        let row = Sql::new(
            "INSERT INTO transcript_entries (call_id, seq, speaker, text, start_ms, end_ms, interrupted, created_at) VALUES (",
        )
        .text(call_id.to_owned())
        .push(", ")
        .int(seq)
        .push(", ")
        .text(entry.speaker.clone())
        .push(", ")
        .text(entry.text.clone())
        .push(", ")
        .int(entry.start_ms)
        .push(", ")
        .int(entry.end_ms)
        .push(", ")
        .int(i64::from(entry.interrupted))
        .push(", ")
        .int(now_ms())
        .push(") RETURNING call_id, seq, speaker, text, start_ms, end_ms, interrupted, created_at")
        .fetch_optional(&mut *tx)
        .await?
        .ok_or(StoreError::NotFound)?;
        tx.commit().await?;
        entry_from_row(&row)
    }

    /// A call's transcript in order.
    pub async fn list_transcript(
        &self,
        org_id: &str,
        call_id: &str,
    ) -> Result<Vec<TranscriptEntry>> {
        // Scoping: the call must be this org's; an unknown call is not
        // found rather than an empty transcript.
        self.get_call(org_id, call_id).await?;
        let rows = Sql::new(
            "SELECT call_id, seq, speaker, text, start_ms, end_ms, interrupted, created_at \
             FROM transcript_entries WHERE call_id = ",
        )
        .text(call_id.to_owned())
        .push(" ORDER BY seq")
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(entry_from_row).collect()
    }

    /// Calls and minutes per period and direction, for calls created in
    /// the query's range, oldest period first.
    pub async fn usage(&self, org_id: &str, query: &UsageQuery) -> Result<Vec<UsageRow>> {
        if query.created_before <= query.created_after {
            return Err(StoreError::Invalid(
                "created_before",
                "must be after created_after".into(),
            ));
        }
        // Days are bucketed in SQL (integer division works alike on both
        // backends); months are folded from days here, since calendar
        // functions differ between SQLite and Postgres.
        let rows = Sql::new(
            "SELECT created_at / 86400000 AS day, direction, COUNT(*) AS calls, \
             CAST(COALESCE(SUM(COALESCE(duration_ms, 0) + prior_connected_ms), 0) AS BIGINT) AS duration_ms, \
             CAST(COALESCE(SUM((COALESCE(duration_ms, 0) + prior_connected_ms + 59999) / 60000), 0) AS BIGINT) AS minutes \
             FROM calls WHERE org_id = ",
        )
        .text(org_id.to_owned())
        .push(" AND created_at >= ")
        .int(query.created_after)
        .push(" AND created_at < ")
        .int(query.created_before)
        .push(" GROUP BY created_at / 86400000, direction")
        .fetch_all(&self.pool)
        .await?;
        let mut totals: BTreeMap<(String, &'static str), UsageRow> = BTreeMap::new();
        for row in &rows {
            let day: i64 = row.try_get("day")?;
            let direction: String = row.try_get("direction")?;
            let direction = parse_direction(&direction).map_err(|e| decode_err("direction", e))?;
            let period = period_label(query.period, day);
            let total = totals
                .entry((period.clone(), direction_str(direction)))
                .or_insert(UsageRow {
                    period,
                    direction,
                    calls: 0,
                    duration_ms: 0,
                    minutes: 0,
                });
            total.calls += row.try_get::<i64, _>("calls")?;
            total.duration_ms += row.try_get::<i64, _>("duration_ms")?;
            total.minutes += row.try_get::<i64, _>("minutes")?;
        }
        Ok(totals.into_values().collect())
    }
}

/// Start of the UTC day containing `ms`, for callers building usage ranges.
pub fn day_start_ms(ms: i64) -> i64 {
    ms.div_euclid(MS_PER_DAY) * MS_PER_DAY
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn civil_dates() {
        assert_eq!(civil_from_days(0), (1970, 1, 1));
        assert_eq!(civil_from_days(-1), (1969, 12, 31));
        // 2000-02-29 (leap day in a century divisible by 400).
        assert_eq!(civil_from_days(11_016), (2000, 2, 29));
        // 2024-03-01 00:00 UTC is 1709251200 s.
        assert_eq!(civil_from_days(1_709_251_200 / 86_400), (2024, 3, 1));
        assert_eq!(period_label(UsagePeriod::Month, 19_783), "2024-03");
        assert_eq!(period_label(UsagePeriod::Day, 19_783), "2024-03-01");
    }

    #[test]
    fn status_names_round_trip() {
        for s in CallStatus::ALL {
            assert_eq!(s.as_str().parse::<CallStatus>().unwrap(), s);
            assert_eq!(
                serde_json::to_value(s).unwrap(),
                Value::String(s.as_str().into())
            );
        }
        assert!("done".parse::<CallStatus>().is_err());
        assert_eq!(
            CallStatus::ALL.iter().filter(|s| s.is_terminal()).count(),
            7
        );
        let terminal: Vec<CallStatus> = CallStatus::ALL
            .into_iter()
            .filter(|s| s.is_terminal())
            .collect();
        assert_eq!(status_list(&terminal), TERMINAL_SQL);
    }

    #[test]
    fn day_start() {
        assert_eq!(day_start_ms(MS_PER_DAY + 5), MS_PER_DAY);
        assert_eq!(day_start_ms(-1), -MS_PER_DAY);
    }
}
