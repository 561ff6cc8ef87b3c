//! After-call reports: one per AI call, created `pending` when the call
//! ends and filled in (`ready`) or given up on (`failed`) by the
//! background extraction (see [`crate::reports`]). The email sent about a
//! report records how it went in `email_status`.

use serde::{Deserialize, Serialize};
use sqlx::Row;
use sqlx::any::AnyRow;
use utoipa::ToSchema;

use super::{
    Page, PageRequest, Result, Sql, Store, StoreError, decode_err, new_id, now_ms, page_of,
    paginate, write_err,
};

/// What a caller wanted, as a report classifies it.
pub const INTENTS: [&str; 7] = [
    "service_request",
    "quote_request",
    "scheduling",
    "complaint",
    "spam",
    "general_inquiry",
    "other",
];

/// How soon the owner should act.
pub const URGENCIES: [&str; 3] = ["high", "medium", "low"];

/// Where a report is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ReportStatus {
    /// The call is over and the report is being made.
    Pending,
    /// Made.
    Ready,
    /// Could not be made; `error` says why.
    Failed,
}

impl ReportStatus {
    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            ReportStatus::Pending => "pending",
            ReportStatus::Ready => "ready",
            ReportStatus::Failed => "failed",
        }
    }

    fn parse(s: &str) -> Result<ReportStatus> {
        match s {
            "pending" => Ok(ReportStatus::Pending),
            "ready" => Ok(ReportStatus::Ready),
            "failed" => Ok(ReportStatus::Failed),
            other => Err(StoreError::Invalid(
                "status",
                format!("unknown report status {other:?}"),
            )),
        }
    }
}

/// How the report's email went.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum EmailStatus {
    /// No email: none is configured, or nobody to send it to (or the
    /// report is not ready).
    None,
    /// Not sent on purpose: the call was flagged as spam.
    Skipped,
    /// Being sent (retries included).
    Pending,
    /// The SMTP server accepted it.
    Sent,
    /// Every attempt failed; `email_error` says why.
    Failed,
}

impl EmailStatus {
    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            EmailStatus::None => "none",
            EmailStatus::Skipped => "skipped",
            EmailStatus::Pending => "pending",
            EmailStatus::Sent => "sent",
            EmailStatus::Failed => "failed",
        }
    }

    fn parse(s: &str) -> Result<EmailStatus> {
        match s {
            "none" => Ok(EmailStatus::None),
            "skipped" => Ok(EmailStatus::Skipped),
            "pending" => Ok(EmailStatus::Pending),
            "sent" => Ok(EmailStatus::Sent),
            "failed" => Ok(EmailStatus::Failed),
            other => Err(StoreError::Invalid(
                "email_status",
                format!("unknown email status {other:?}"),
            )),
        }
    }
}

/// Something learnt about the caller, with the transcript sentence that
/// supports it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct ReportFact {
    /// What it is about: `name`, `company`, `address`, `preference`…
    pub slot: String,
    /// The value, as text.
    pub value: String,
    /// How sure the extractor is, 0 to 1.
    pub confidence: f64,
    /// The transcript sentence that supports it; `null` only for a flow's
    /// slot filled from the keypad (no spoken sentence to quote).
    pub quote: Option<String>,
}

/// A commitment the agent made, or a follow-up left open, with the
/// transcript sentence that supports it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct ReportItem {
    /// What it is, in a short sentence.
    pub text: String,
    /// The transcript sentence that supports it.
    pub quote: String,
}

/// What an extraction found: the body of a ready report.
#[derive(Debug, Clone, PartialEq, Default, Serialize)]
pub struct ReportContent {
    /// `llm` or `flow`.
    pub extractor: String,
    /// A few sentences on the call.
    pub summary: String,
    /// What the caller said their name is.
    pub caller_name: Option<String>,
    /// One of [`INTENTS`].
    pub intent: String,
    /// One of [`URGENCIES`]; unknown for a flow report.
    pub urgency: Option<String>,
    /// When the caller wants to be called back (ISO 8601).
    pub callback_by: Option<String>,
    /// The call was spam (no email is sent about it).
    pub spam: bool,
    /// What was learnt.
    pub facts: Vec<ReportFact>,
    /// What the agent promised.
    pub commitments: Vec<ReportItem>,
    /// What is left to do.
    pub follow_ups: Vec<ReportItem>,
    /// Items dropped because their quote is not in the transcript.
    pub dropped: i64,
}

/// A stored report.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct CallReport {
    /// `rpt_` and 24 hex digits.
    pub id: String,
    /// Owning org.
    #[serde(skip)]
    pub org_id: String,
    /// The call it is about.
    pub call_id: String,
    /// The call's contact, if it had one.
    pub contact_id: Option<String>,
    /// `pending`, `ready` or `failed`.
    pub status: ReportStatus,
    /// Why it failed.
    pub error: Option<String>,
    /// `llm` (extracted by the language model) or `flow` (put together
    /// from the flow's captured slots and the transcript, offline).
    pub extractor: Option<String>,
    /// A few sentences on the call (a flow report: the caller's first
    /// words).
    pub summary: Option<String>,
    /// What the caller said their name is.
    pub caller_name: Option<String>,
    /// `service_request`, `quote_request`, `scheduling`, `complaint`,
    /// `spam`, `general_inquiry` or `other`.
    pub intent: Option<String>,
    /// `high`, `medium` or `low`.
    pub urgency: Option<String>,
    /// When the caller wants to be called back (ISO 8601), if they said.
    pub callback_by: Option<String>,
    /// Flagged as spam: not emailed.
    pub spam: bool,
    /// What was learnt, each with its supporting quote.
    pub facts: Vec<ReportFact>,
    /// What the agent promised.
    pub commitments: Vec<ReportItem>,
    /// What is left to do.
    pub follow_ups: Vec<ReportItem>,
    /// Items the extractor gave whose quote is not in the transcript,
    /// dropped.
    pub dropped: i64,
    /// `none`, `skipped` (spam), `pending`, `sent` or `failed`.
    pub email_status: EmailStatus,
    /// Why the email failed.
    pub email_error: Option<String>,
    /// When the call ended and the report was started, unix ms.
    pub created_at: i64,
    /// Last change, unix ms.
    pub updated_at: i64,
    /// When it became ready (or failed), unix ms.
    pub ready_at: Option<i64>,
}

/// Which reports a list returns.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ReportFilter {
    /// Only this intent.
    pub intent: Option<String>,
    /// Only this urgency.
    pub urgency: Option<String>,
    /// Only spam (or only not spam).
    pub spam: Option<bool>,
    /// Only this contact's.
    pub contact_id: Option<String>,
    /// Created at or after, unix ms.
    pub created_after: Option<i64>,
    /// Created before, unix ms.
    pub created_before: Option<i64>,
}

const REPORT_COLS: &str = "id, org_id, call_id, contact_id, status, error, extractor, summary, \
     caller_name, intent, urgency, callback_by, spam, facts, commitments, follow_ups, dropped, \
     email_status, email_error, created_at, updated_at, ready_at";

fn json_list<T: serde::de::DeserializeOwned>(row: &AnyRow, col: &str) -> Result<Vec<T>> {
    let text: String = row.try_get(col)?;
    serde_json::from_str(&text).map_err(|e| decode_err(col, e))
}

fn report_from_row(row: &AnyRow) -> Result<CallReport> {
    let status: String = row.try_get("status")?;
    let email: String = row.try_get("email_status")?;
    Ok(CallReport {
        id: row.try_get("id")?,
        org_id: row.try_get("org_id")?,
        call_id: row.try_get("call_id")?,
        contact_id: row.try_get("contact_id")?,
        status: ReportStatus::parse(&status)?,
        error: row.try_get("error")?,
        extractor: row.try_get("extractor")?,
        summary: row.try_get("summary")?,
        caller_name: row.try_get("caller_name")?,
        intent: row.try_get("intent")?,
        urgency: row.try_get("urgency")?,
        callback_by: row.try_get("callback_by")?,
        spam: row.try_get::<i64, _>("spam")? != 0,
        facts: json_list(row, "facts")?,
        commitments: json_list(row, "commitments")?,
        follow_ups: json_list(row, "follow_ups")?,
        dropped: row.try_get("dropped")?,
        email_status: EmailStatus::parse(&email)?,
        email_error: row.try_get("email_error")?,
        created_at: row.try_get("created_at")?,
        updated_at: row.try_get("updated_at")?,
        ready_at: row.try_get("ready_at")?,
    })
}

fn to_json<T: Serialize>(col: &str, value: &T) -> Result<String> {
    serde_json::to_string(value).map_err(|e| decode_err(col, e))
}

impl Store {
    /// Starts the report of a call that just ended: `pending`. A call has
    /// one report; starting it again returns the one there is.
    pub async fn start_report(
        &self,
        org_id: &str,
        call_id: &str,
        contact_id: Option<&str>,
    ) -> Result<CallReport> {
        let now = now_ms();
        let inserted = Sql::new(&format!(
            "INSERT INTO call_reports ({REPORT_COLS}) VALUES ("
        ))
        .text(new_id("rpt"))
        .push(", ")
        .text(org_id.to_owned())
        .push(", ")
        .text(call_id.to_owned())
        .push(", ")
        .text(contact_id.map(str::to_owned))
        .push(
            ", 'pending', NULL, NULL, NULL, NULL, NULL, NULL, NULL, 0, '[]', '[]', '[]', 0, \
                 'none', NULL, ",
        )
        .int(now)
        .push(", ")
        .int(now)
        .push(", NULL) ON CONFLICT (call_id) DO NOTHING RETURNING ")
        .push(REPORT_COLS)
        .fetch_optional(&self.pool)
        .await
        .map_err(|e| write_err(e, "call_id", "call_id"))?;
        match inserted {
            Some(row) => report_from_row(&row),
            None => self.get_call_report(org_id, call_id).await,
        }
    }

    /// The report of one of the org's calls.
    pub async fn get_call_report(&self, org_id: &str, call_id: &str) -> Result<CallReport> {
        let row = Sql::new(&format!(
            "SELECT {REPORT_COLS} FROM call_reports WHERE org_id = "
        ))
        .text(org_id.to_owned())
        .push(" AND call_id = ")
        .text(call_id.to_owned())
        .fetch_optional(&self.pool)
        .await?
        .ok_or(StoreError::NotFound)?;
        report_from_row(&row)
    }

    /// A pending report made: `ready`, with what was found. Conflict if
    /// it is not pending (it failed meanwhile, or was made already).
    pub async fn finish_report(
        &self,
        org_id: &str,
        call_id: &str,
        content: &ReportContent,
    ) -> Result<CallReport> {
        let now = now_ms();
        let row = Sql::new("UPDATE call_reports SET status = 'ready', error = NULL, extractor = ")
            .text(content.extractor.clone())
            .push(", summary = ")
            .text(content.summary.clone())
            .push(", caller_name = ")
            .text(content.caller_name.clone())
            .push(", intent = ")
            .text(content.intent.clone())
            .push(", urgency = ")
            .text(content.urgency.clone())
            .push(", callback_by = ")
            .text(content.callback_by.clone())
            .push(", spam = ")
            .int(i64::from(content.spam))
            .push(", facts = ")
            .text(to_json("facts", &content.facts)?)
            .push(", commitments = ")
            .text(to_json("commitments", &content.commitments)?)
            .push(", follow_ups = ")
            .text(to_json("follow_ups", &content.follow_ups)?)
            .push(", dropped = ")
            .int(content.dropped)
            .push(", updated_at = ")
            .int(now)
            .push(", ready_at = ")
            .int(now)
            .push(" WHERE org_id = ")
            .text(org_id.to_owned())
            .push(" AND call_id = ")
            .text(call_id.to_owned())
            .push(" AND status = 'pending' RETURNING ")
            .push(REPORT_COLS)
            .fetch_optional(&self.pool)
            .await?;
        match row {
            Some(row) => report_from_row(&row),
            None => {
                // Tell a missing report from one that is no longer pending.
                self.get_call_report(org_id, call_id).await?;
                Err(StoreError::Conflict("status"))
            }
        }
    }

    /// A pending report that could not be made: `failed`, with why.
    pub async fn fail_report(&self, org_id: &str, call_id: &str, error: &str) -> Result<()> {
        let now = now_ms();
        let n = Sql::new("UPDATE call_reports SET status = 'failed', error = ")
            .text(error.to_owned())
            .push(", updated_at = ")
            .int(now)
            .push(", ready_at = ")
            .int(now)
            .push(" WHERE org_id = ")
            .text(org_id.to_owned())
            .push(" AND call_id = ")
            .text(call_id.to_owned())
            .push(" AND status = 'pending'")
            .execute(&self.pool)
            .await?;
        if n == 0 {
            return Err(StoreError::NotFound);
        }
        Ok(())
    }

    /// Records how the report's email went.
    pub async fn set_report_email(
        &self,
        org_id: &str,
        call_id: &str,
        status: EmailStatus,
        error: Option<&str>,
    ) -> Result<()> {
        let n = Sql::new("UPDATE call_reports SET email_status = ")
            .text(status.as_str().to_owned())
            .push(", email_error = ")
            .text(error.map(str::to_owned))
            .push(", updated_at = ")
            .int(now_ms())
            .push(" WHERE org_id = ")
            .text(org_id.to_owned())
            .push(" AND call_id = ")
            .text(call_id.to_owned())
            .execute(&self.pool)
            .await?;
        if n == 0 {
            return Err(StoreError::NotFound);
        }
        Ok(())
    }

    /// Reports (and report emails) a previous run left unfinished are
    /// failed: the work died with that process. Unscoped. Returns how
    /// many reports were failed.
    pub async fn fail_unfinished_reports(&self, error: &str) -> Result<u64> {
        let now = now_ms();
        let n = Sql::new("UPDATE call_reports SET status = 'failed', error = ")
            .text(error.to_owned())
            .push(", updated_at = ")
            .int(now)
            .push(", ready_at = ")
            .int(now)
            .push(" WHERE status = 'pending'")
            .execute(&self.pool)
            .await?;
        Sql::new("UPDATE call_reports SET email_status = 'failed', email_error = ")
            .text(error.to_owned())
            .push(" WHERE email_status = 'pending'")
            .execute(&self.pool)
            .await?;
        Ok(n)
    }

    /// The org's reports matching `filter`, newest first.
    pub async fn list_reports(
        &self,
        org_id: &str,
        filter: &ReportFilter,
        page: &PageRequest,
    ) -> Result<Page<CallReport>> {
        let mut sql = Sql::new(&format!(
            "SELECT {REPORT_COLS} FROM call_reports WHERE org_id = "
        ));
        sql.text(org_id.to_owned());
        if let Some(v) = &filter.intent {
            sql.push(" AND intent = ").text(v.clone());
        }
        if let Some(v) = &filter.urgency {
            sql.push(" AND urgency = ").text(v.clone());
        }
        if let Some(v) = filter.spam {
            sql.push(" AND spam = ").int(i64::from(v));
        }
        if let Some(v) = &filter.contact_id {
            sql.push(" AND contact_id = ").text(v.clone());
        }
        if let Some(v) = filter.created_after {
            sql.push(" AND created_at >= ").int(v);
        }
        if let Some(v) = filter.created_before {
            sql.push(" AND created_at < ").int(v);
        }
        let limit = paginate(&mut sql, page)?;
        let rows = sql.fetch_all(&self.pool).await?;
        let reports = rows
            .iter()
            .map(report_from_row)
            .collect::<Result<Vec<_>>>()?;
        Ok(page_of(reports, limit, |r| (r.created_at, &r.id)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_round_trip_through_their_names() {
        for s in [
            ReportStatus::Pending,
            ReportStatus::Ready,
            ReportStatus::Failed,
        ] {
            assert_eq!(ReportStatus::parse(s.as_str()).unwrap(), s);
        }
        for s in [
            EmailStatus::None,
            EmailStatus::Skipped,
            EmailStatus::Pending,
            EmailStatus::Sent,
            EmailStatus::Failed,
        ] {
            assert_eq!(EmailStatus::parse(s.as_str()).unwrap(), s);
        }
        assert!(ReportStatus::parse("done").is_err());
        assert!(EmailStatus::parse("bounced").is_err());
    }
}
