//! After-call reports (issue 7): when an AI call ends, a report on it is
//! made in the background and the owner is told.
//!
//! 1. The bridge starts the report (`pending`) as the agent call ends, so
//!    `GET /v1/calls/{id}/report` answers 202 from then on, and hands the
//!    work here once the agent's conclusion arrived (after
//!    `call.completed`, which never waits for the report).
//! 2. With an LLM (the agent's own, its organization's key, or the
//!    server's), the transcript is read by the model, which answers JSON
//!    of a fixed schema ([`extract::response_schema`]). The answer is
//!    checked in Rust; an invalid answer is asked for once more, with
//!    what was wrong; every fact, commitment and follow-up whose quote is
//!    not in the transcript is dropped. Without an LLM the report is the
//!    flow's slots and the caller's first words ([`extract::flow_report`],
//!    `extractor: "flow"`).
//! 3. Ready: the webhook event `call.report.ready` (data: the report) is
//!    queued, and unless the call was spam an email goes to the
//!    organization's `notify_email` (`/v1/settings`) or `[notify.email]`'s
//!    `to`, retried with backoff; `email_status` says how it went.
//!
//! Bounded: at most `notify.report_workers` extractions run at once, at
//! most `notify.max_waiting_reports` wait (beyond that a report fails at
//! once rather than queueing without end), and each is cut off after
//! `notify.report_timeout_secs`. None of it runs on a call's task.

pub mod email;
pub mod extract;

use std::collections::BTreeMap;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use lettre::message::Mailbox;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use tokio::sync::Semaphore;
use tracing::{info, warn};

use crate::agent::openai::{JsonRequest, OpenAiConfig, OpenAiJson};
use crate::agent::service::AgentService;
use crate::api::AppState;
use crate::api::live::LiveEvent;
use crate::store::{Call, CallReport, EmailStatus, ReportContent, StoreError, now_ms};
use email::{CallFacts, EmailConfig, Mailer};
use extract::{Line, Transcript};

/// The webhook (and live) event of a ready report.
pub const REPORT_READY_EVENT: &str = "call.report.ready";

/// `[notify]`: after-call reports and how the owner hears of them.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct NotifyConfig {
    /// Report emails through an SMTP server; none when unset.
    pub email: Option<EmailConfig>,
    /// Extractions running at once.
    pub report_workers: usize,
    /// Reports waiting for a worker, beyond which a report fails at once.
    pub max_waiting_reports: usize,
    /// Bound on one report's extraction (the LLM's retries included).
    pub report_timeout_secs: u64,
}

impl Default for NotifyConfig {
    fn default() -> Self {
        NotifyConfig {
            email: None,
            report_workers: 2,
            max_waiting_reports: 1_000,
            report_timeout_secs: 120,
        }
    }
}

impl NotifyConfig {
    /// What the types cannot check: `(field, problem)`.
    pub fn check(&self) -> Result<(), (String, String)> {
        if self.report_workers == 0 {
            return Err(("notify.report_workers".into(), "must be at least 1".into()));
        }
        if self.max_waiting_reports == 0 {
            return Err((
                "notify.max_waiting_reports".into(),
                "must be at least 1".into(),
            ));
        }
        if self.report_timeout_secs == 0 {
            return Err((
                "notify.report_timeout_secs".into(),
                "must be at least 1".into(),
            ));
        }
        match &self.email {
            Some(e) => e.check(),
            None => Ok(()),
        }
    }
}

/// What a report is made from, besides the stored call and transcript.
#[derive(Debug, Clone, Default)]
pub struct ReportJob {
    /// The call's organization.
    pub org_id: String,
    /// The call.
    pub call_id: String,
    /// A flow's captured slots (the agent's `structured_data`).
    pub slots: Option<Value>,
    /// What the caller said to fill each slot.
    pub quotes: BTreeMap<String, String>,
}

/// The report machinery shared by the server: its bounds, the mailer and
/// the LLM resolution.
pub struct Reports {
    workers: Arc<Semaphore>,
    waiting: Arc<Semaphore>,
    timeout: Duration,
    mailer: Option<Arc<Mailer>>,
    agents: OnceLock<Arc<AgentService>>,
}

impl std::fmt::Debug for Reports {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Reports")
            .field("mailer", &self.mailer)
            .field("timeout", &self.timeout)
            .finish_non_exhaustive()
    }
}

impl Reports {
    /// The machinery for `config` (checked at load; a mailer that cannot
    /// be built is logged and email is off).
    pub fn new(config: &NotifyConfig) -> Reports {
        let mailer = config.email.clone().and_then(|c| match Mailer::new(c) {
            Ok(m) => Some(Arc::new(m)),
            Err(e) => {
                warn!(error = %e, "notify.email: report emails are off");
                None
            }
        });
        Reports {
            workers: Arc::new(Semaphore::new(config.report_workers.max(1))),
            waiting: Arc::new(Semaphore::new(config.max_waiting_reports.max(1))),
            timeout: Duration::from_secs(config.report_timeout_secs.max(1)),
            mailer,
            agents: OnceLock::new(),
        }
    }

    /// Uses the server's voice agent to find each call's LLM (the first
    /// one installed stays). Without it, one is made from the
    /// configuration on first use.
    pub fn set_agents(&self, agents: Arc<AgentService>) {
        let _ = self.agents.set(agents);
    }

    fn agents(&self, state: &AppState) -> Arc<AgentService> {
        self.agents
            .get_or_init(|| AgentService::new(&state.config, Some(state.store.clone())))
            .clone()
    }

    /// Makes the report of a finished call in the background. Never
    /// waits: when too many reports wait already, this one fails at once.
    pub fn spawn(state: &AppState, job: ReportJob) {
        let reports = state.reports.clone();
        let Ok(waiting) = reports.waiting.clone().try_acquire_owned() else {
            warn!(call = %job.call_id, "too many reports waiting; this call's report fails");
            let store = state.store.clone();
            tokio::spawn(async move {
                let _ = store
                    .fail_report(&job.org_id, &job.call_id, "too many reports were waiting")
                    .await;
            });
            return;
        };
        let state = state.clone();
        tokio::spawn(async move {
            let _waiting = waiting;
            let made = {
                let Ok(_worker) = reports.workers.clone().acquire_owned().await else {
                    return;
                };
                tokio::time::timeout(reports.timeout, make(&state, &reports, &job)).await
            };
            let made = match made {
                Ok(Ok(made)) => made,
                Ok(Err(e)) => {
                    warn!(call = %job.call_id, error = %e, "no call report");
                    record_failure(&state, &job, &e).await;
                    return;
                }
                Err(_) => {
                    let e = format!(
                        "the extraction took longer than {} s",
                        reports.timeout.as_secs()
                    );
                    warn!(call = %job.call_id, "{e}");
                    record_failure(&state, &job, &e).await;
                    return;
                }
            };
            let (report, call) = made;
            announce(&state, &call, &report).await;
            notify_email(&state, &reports, &call, report).await;
        });
    }
}

async fn record_failure(state: &AppState, job: &ReportJob, error: &str) {
    if let Err(e) = state
        .store
        .fail_report(&job.org_id, &job.call_id, error)
        .await
    {
        warn!(call = %job.call_id, error = %e, "cannot record a failed report");
    }
}

/// Makes and stores the report: ready, or an error to record.
async fn make(
    state: &AppState,
    reports: &Reports,
    job: &ReportJob,
) -> Result<(CallReport, Call), String> {
    let store = &state.store;
    let call = store
        .get_call(&job.org_id, &job.call_id)
        .await
        .map_err(|e| format!("cannot read the call: {e}"))?;
    let lines = store
        .list_transcript(&job.org_id, &job.call_id)
        .await
        .map_err(|e| format!("cannot read the transcript: {e}"))?
        .into_iter()
        .map(|e| Line {
            speaker: e.speaker,
            text: e.text,
        })
        .collect();
    let transcript = Transcript::new(lines);
    let llm = reports
        .agents(state)
        .report_llm(&job.org_id, call.agent_id.as_deref())
        .await?;
    let content = match llm {
        // Nothing was said: there is nothing for a model to read.
        Some(config) if !transcript.is_empty() => extract_llm(config, &transcript, &call).await?,
        _ => extract::flow_report(&transcript, job.slots.as_ref(), &job.quotes),
    };
    let report = match store
        .finish_report(&job.org_id, &job.call_id, &content)
        .await
    {
        Ok(r) => r,
        // Forgotten (the contact) while it was being made: that wins.
        Err(StoreError::NotFound) => return Err("the report was deleted".into()),
        Err(e) => return Err(format!("cannot store the report: {e}")),
    };
    if let Some(contact) = &call.contact_id {
        remember(store, &job.org_id, contact, &job.call_id, &content).await;
    }
    info!(
        call = %job.call_id,
        extractor = %content.extractor,
        intent = %content.intent,
        facts = content.facts.len(),
        dropped = content.dropped,
        "call report ready"
    );
    Ok((report, call))
}

/// Files the report's facts in the caller's memory. A failure costs the
/// memory of this call, not the report.
async fn remember(
    store: &crate::store::Store,
    org_id: &str,
    contact_id: &str,
    call_id: &str,
    content: &ReportContent,
) {
    let candidates: Vec<crate::memory::facts::Candidate> = content
        .facts
        .iter()
        .map(|f| crate::memory::facts::Candidate {
            slot: f.slot.clone(),
            value: f.value.clone(),
            confidence: f.confidence as f32,
            source: crate::memory::facts::Source::Call {
                call_id: call_id.to_owned(),
                quote: f.quote.clone(),
            },
        })
        .collect();
    if candidates.is_empty() {
        return;
    }
    if let Err(e) = store
        .remember(org_id, contact_id, &candidates, crate::store::now_ms())
        .await
    {
        warn!(call = call_id, error = %e, "cannot file the report's facts in the contact's memory");
    }
}

/// Room for the whole JSON answer (the brain's reply limit is meant for
/// a spoken sentence or two).
const REPORT_MAX_TOKENS: u32 = 2_000;

async fn extract_llm(
    mut config: OpenAiConfig,
    transcript: &Transcript,
    call: &Call,
) -> Result<ReportContent, String> {
    config.max_tokens = Some(config.max_tokens.unwrap_or(0).max(REPORT_MAX_TOKENS));
    let client = OpenAiJson::new(config).map_err(|e| e.to_string())?;
    let instructions = extract::instructions();
    let schema = extract::response_schema();
    let time = call.answered_at.unwrap_or(call.created_at);
    let mut input = format!(
        "The call ({}, from {} to {}) started at {} UTC.\n\nTranscript:\n{}",
        match call.direction {
            crate::call::CallDirection::Inbound => "inbound",
            crate::call::CallDirection::Outbound => "outbound",
        },
        call.from,
        call.to,
        crate::store::format_utc(time),
        transcript.render()
    );
    let mut last = String::new();
    // An answer of the wrong shape is asked for once more, saying what
    // was wrong; a second bad answer fails the report.
    for attempt in 0..2 {
        let request = JsonRequest {
            instructions: &instructions,
            input: &input,
            name: "call_report",
            schema: &schema,
        };
        let text = client.complete(&request).await.map_err(|e| e.to_string())?;
        match extract::parse_extraction(&text) {
            Ok(ex) => return Ok(extract::ground(ex, transcript)),
            Err(e) => {
                warn!(call = %call.id, attempt, error = %e, "invalid report extraction");
                input.push_str(&format!(
                    "\n\nYour previous answer was rejected: {e}. Answer again with one JSON \
                     object that follows the schema exactly."
                ));
                last = e;
            }
        }
    }
    Err(format!("the model's answer was invalid twice: {last}"))
}

/// Queues `call.report.ready` for the organization's webhooks (and the
/// call's own) and tells live subscribers.
async fn announce(state: &AppState, call: &Call, report: &CallReport) {
    let data = serde_json::to_value(report).unwrap_or(Value::Null);
    let body = json!({
        "event_type": REPORT_READY_EVENT,
        "call_id": call.id,
        "timestamp": now_ms(),
        "data": data,
    });
    match state
        .store
        .enqueue_call_event(&call.org_id, call.id.as_str(), REPORT_READY_EVENT, &body)
        .await
    {
        Ok(d) if d.is_empty() => {}
        Ok(_) => state.webhook_wake.notify_one(),
        Err(e) => warn!(call = %call.id, error = %e, "cannot queue call.report.ready"),
    }
    state.hub.publish(LiveEvent {
        event_type: REPORT_READY_EVENT.into(),
        call_id: call.id.to_string(),
        alert_id: None,
        sequence: 0,
        timestamp: now_ms(),
        payload: data,
        org_id: call.org_id.clone(),
        number_id: call.number_id.clone(),
        batch_id: None,
    });
}

/// The organization's `notify_email` setting: addresses, or `None` when
/// it names nobody.
fn org_recipients(settings: &Value) -> Option<Vec<String>> {
    match settings.get("notify_email") {
        Some(Value::Array(list)) if !list.is_empty() => Some(
            list.iter()
                .filter_map(Value::as_str)
                .map(str::to_owned)
                .collect(),
        ),
        Some(Value::String(s)) if !s.trim().is_empty() => Some(vec![s.trim().to_owned()]),
        _ => None,
    }
}

async fn notify_email(state: &AppState, reports: &Reports, call: &Call, report: CallReport) {
    let store = &state.store;
    let set = |status: EmailStatus, error: Option<String>| async move {
        if let Err(e) = store
            .set_report_email(&call.org_id, call.id.as_str(), status, error.as_deref())
            .await
        {
            warn!(call = %call.id, error = %e, "cannot record the report email's status");
        }
    };
    if report.spam {
        set(EmailStatus::Skipped, None).await;
        return;
    }
    let Some(mailer) = &reports.mailer else {
        return;
    };
    let named = match store.org_settings(&call.org_id).await {
        Ok(s) => org_recipients(&s),
        Err(e) => {
            warn!(call = %call.id, error = %e, "cannot read the organization's settings; using notify.email.to");
            None
        }
    };
    let to = named.unwrap_or_else(|| mailer.default_to().to_vec());
    if to.is_empty() {
        return;
    }
    let to: Vec<Mailbox> = match email::parse_recipients(&to) {
        Ok(to) => to,
        Err(e) => {
            set(EmailStatus::Failed, Some(e)).await;
            return;
        }
    };
    let contact_name = match &call.contact_id {
        Some(id) => store
            .get_contact(&call.org_id, id)
            .await
            .ok()
            .and_then(|c| c.display_name),
        None => None,
    };
    let facts = CallFacts {
        id: call.id.as_str(),
        direction: call.direction,
        from: &call.from,
        to: &call.to,
        started_at: call.created_at,
        contact_name: contact_name.as_deref(),
    };
    let rendered = email::render(&report, &facts, mailer.public_url());
    set(EmailStatus::Pending, None).await;
    match mailer.send(&to, &rendered).await {
        Ok(()) => {
            info!(call = %call.id, recipients = to.len(), "report email sent");
            set(EmailStatus::Sent, None).await;
        }
        Err(e) => {
            warn!(call = %call.id, error = %e, "report email failed");
            set(EmailStatus::Failed, Some(e)).await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn org_recipients_take_a_list_or_one_address() {
        assert_eq!(
            org_recipients(&json!({"notify_email": ["a@x.io", "b@x.io"]})),
            Some(vec!["a@x.io".to_owned(), "b@x.io".to_owned()])
        );
        assert_eq!(
            org_recipients(&json!({"notify_email": " a@x.io "})),
            Some(vec!["a@x.io".to_owned()])
        );
        assert_eq!(org_recipients(&json!({"notify_email": []})), None);
        assert_eq!(org_recipients(&json!({})), None);
    }

    #[test]
    fn the_config_is_checked() {
        assert!(NotifyConfig::default().check().is_ok());
        let bad = NotifyConfig {
            report_workers: 0,
            ..NotifyConfig::default()
        };
        assert_eq!(bad.check().unwrap_err().0, "notify.report_workers");
    }
}
