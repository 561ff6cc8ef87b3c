//! Phones and alerts as the API shows them.

use serde::Serialize;
use serde_json::Value;
use utoipa::ToSchema;

use crate::store::{Alert, AlertDelivery, Phone};

/// A phone alerts may call.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct PhoneOut {
    /// `phn_…`.
    pub id: String,
    /// E.164.
    pub phone_number: String,
    /// A label for people.
    pub label: Option<String>,
    /// The organization's primary phone: alerts without a `phone_number`
    /// call it.
    pub is_primary: bool,
    /// Whether its code was confirmed; only verified phones are called.
    pub verified: bool,
    /// When it was verified (unix ms).
    pub verified_at: Option<i64>,
    /// Creation time (unix ms).
    pub created_at: i64,
}

impl From<Phone> for PhoneOut {
    fn from(p: Phone) -> Self {
        PhoneOut {
            id: p.id,
            phone_number: p.e164,
            label: p.label,
            is_primary: p.is_primary,
            verified: p.verified_at.is_some(),
            verified_at: p.verified_at,
            created_at: p.created_at,
        }
    }
}

/// One attempt to reach the phone.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct DeliveryOut {
    /// `adl_…`.
    pub id: String,
    /// 1 for the first call, 2 for the first retry…
    pub attempt: i64,
    /// `voice`.
    pub channel: String,
    /// `calling`, `acknowledged`, `snoozed`, `no_key` (answered, no key),
    /// `no_answer`, `busy`, `failed`, `canceled`.
    pub status: String,
    /// The number called.
    pub to_number: String,
    /// Hotline's id of the call.
    pub call_id: Option<String>,
    /// The SIP Call-ID, to match carrier records.
    pub sip_call_id: Option<String>,
    /// What went wrong.
    pub error: Option<String>,
    /// Start (unix ms).
    pub started_at: i64,
    /// End (unix ms).
    pub ended_at: Option<i64>,
}

impl From<AlertDelivery> for DeliveryOut {
    fn from(d: AlertDelivery) -> Self {
        DeliveryOut {
            id: d.id,
            attempt: d.attempt,
            channel: d.channel,
            status: d.status,
            to_number: d.to_number,
            call_id: d.call_id,
            sip_call_id: d.sip_call_id,
            error: d.error,
            started_at: d.started_at,
            ended_at: d.ended_at,
        }
    }
}

/// One status change.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct HistoryOut {
    /// Before.
    pub from: String,
    /// After (equal to `from` for a note, such as a call held for quiet
    /// hours).
    pub to: String,
    /// When (unix ms).
    pub at: i64,
    /// Why, when there is more to say.
    pub detail: Option<String>,
}

/// An alert.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct AlertOut {
    /// `alt_…`.
    pub id: String,
    /// `created`, `waiting_for_primary_ack`, `escalating_call`, `snoozed`,
    /// `acknowledged`, `expired` or `failed`.
    pub status: String,
    /// `normal` or `critical`.
    pub severity: String,
    /// `approval`, `task_failure`, `threshold`, `reminder` or `other`.
    pub alert_type: String,
    /// What it is about.
    pub title: String,
    /// More detail (spoken after the title).
    pub message: Option<String>,
    /// The phone called.
    pub phone_number: String,
    /// Its id.
    pub phone_id: String,
    /// Wait before the first call, seconds.
    pub delay_seconds: i64,
    /// Calls placed so far.
    pub escalation_step: u32,
    /// When the next call is due (unix ms), while one is planned.
    pub next_attempt_at: Option<i64>,
    /// Creation time (unix ms).
    pub created_at: i64,
    /// When it expires unacknowledged (unix ms).
    pub expires_at: i64,
    /// When it was acknowledged (unix ms).
    pub acknowledged_at: Option<i64>,
    /// `dtmf`, `api`, `chat` or `manual`.
    pub acknowledged_via: Option<String>,
    /// Why it failed.
    pub failure_reason: Option<String>,
    /// The client's JSON object.
    #[schema(value_type = Option<Object>)]
    pub metadata: Option<Value>,
    /// The idempotency key it was created with.
    pub client_id: Option<String>,
    /// Last change (unix ms).
    pub updated_at: i64,
    /// Every call attempt (on reads of one alert).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub deliveries: Option<Vec<DeliveryOut>>,
    /// Every status change (on reads of one alert).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub history: Option<Vec<HistoryOut>>,
}

impl From<Alert> for AlertOut {
    fn from(a: Alert) -> Self {
        let e = a.escalation;
        AlertOut {
            id: a.id,
            status: e.status.as_str().to_owned(),
            severity: a.severity,
            alert_type: a.alert_type,
            title: a.title,
            message: a.message,
            phone_number: a.to_number,
            phone_id: a.phone_id,
            delay_seconds: a.delay_seconds,
            escalation_step: e.attempts,
            next_attempt_at: e.next_at.filter(|_| !e.calling && !e.status.is_final()),
            created_at: a.created_at,
            expires_at: a.expires_at,
            acknowledged_at: e.acknowledged_at,
            acknowledged_via: e.acknowledged_via,
            failure_reason: e.failure,
            metadata: a.metadata,
            client_id: a.client_id,
            updated_at: a.updated_at,
            deliveries: None,
            history: None,
        }
    }
}
