//! The dialling queue's driver: claims due calls (see
//! [`crate::store::Store::claim_call`] for why two nodes never dial the
//! same attempt or break a limit) and hands each to the engine.
//!
//! Fairness: every round claims at most one call per organization, so an
//! organization with a thousand queued calls does not hold up another's
//! one. A round repeats while any organization got a call; then the
//! dispatcher sleeps until the next call is due, an organization's pace
//! allows the next dial, it is woken (a new call, an ended one), or the
//! poll interval passes.
//!
//! An attempt is dialled from the call's stored request, so that a
//! scheduled call or a retry dials exactly what was asked, on any node.

use std::collections::HashSet;
use std::time::Duration;

use serde_json::Value;
use tokio::sync::{Notify, mpsc, watch};
use tokio::task::JoinHandle;
use tracing::{info, warn};

use super::lifecycle::announce_ended;
use crate::agent::service::AgentRequest;
use crate::api::AppState;
use crate::call::CallDirection;
use crate::engine::app::CallAudio;
use crate::engine::blocked::caller_e164;
use crate::engine::screening::{OnVoicemail, VoicemailPlan};
use crate::engine::{CallApp, Engine, OutboundCall, PlaceError};
use crate::outbound::policy::{AttemptOutcome, Next, call_policy};
use crate::store::{
    AttemptEnd, Call, CallStatus, CallUpdate, Claim, DialLimits, StoreError, now_ms,
};

/// Organizations looked at per round.
const ORGS_PER_ROUND: u32 = 200;
/// Most calls dialled before the dispatcher looks at the clock again.
const MAX_CLAIMS_PER_WAKE: usize = 1000;

/// This node's dispatcher: what wakes it.
#[derive(Debug)]
pub struct OutboundRuntime {
    /// Notified when a call was queued, requeued or ended.
    pub wake: Notify,
    /// Turns true once the calls a previous process left live are
    /// settled (by the bridge, at start-up): the dispatcher starts only
    /// then, so that no attempt it starts is taken for a leftover.
    pub recovered: watch::Sender<bool>,
}

impl Default for OutboundRuntime {
    fn default() -> Self {
        OutboundRuntime {
            wake: Notify::new(),
            recovered: watch::Sender::new(false),
        }
    }
}

/// The dialling limits of `org_id` now: its settings over the server's.
pub async fn limits(state: &AppState, org_id: &str) -> Result<DialLimits, StoreError> {
    let settings = state.store.org_settings(org_id).await?;
    Ok(state
        .config
        .outbound
        .effective(settings.get("outbound"))
        .dial_limits())
}

/// Why an attempt did not start.
#[derive(Debug)]
pub enum DialError {
    /// The engine refused it or failed to place it.
    Place(PlaceError),
    /// The callee is on the organization's do-not-call list.
    DoNotCall,
}

/// Whether `call.request` asks for the voice agent.
fn wants_agent(call: &Call) -> bool {
    let r = &call.request;
    r.get("agent").and_then(Value::as_bool).unwrap_or_else(|| {
        // Calls stored before the flag: what made a call an agent call then.
        call.agent_id.is_some()
            || ["system_prompt", "first_message", "objective"]
                .iter()
                .any(|k| r.get(*k).is_some())
    })
}

/// The application an attempt at `call` runs: the voice agent when the
/// request asks for one, else the silent application.
pub fn app_for(call: &Call) -> CallApp {
    if !wants_agent(call) {
        return silent_app();
    }
    let r = &call.request;
    let text = |k: &str| r.get(k).and_then(Value::as_str).map(str::to_owned);
    let on_voicemail = r
        .get("on_voicemail")
        .and_then(|v| serde_json::from_value::<OnVoicemail>(v.clone()).ok());
    CallApp::Agent(Box::new(AgentRequest {
        org_id: Some(call.org_id.clone()),
        agent_id: call.agent_id.clone(),
        // The caller's own prompt wins over the one composed from the
        // playbook, persona and objective.
        system_prompt: text("system_prompt").or_else(|| text("agent_prompt")),
        objective: text("objective"),
        first_message: text("first_message"),
        voice: text("voice"),
        language: text("language"),
        max_duration: r
            .get("max_duration_secs")
            .and_then(Value::as_u64)
            .map(Duration::from_secs),
        record: r.get("record").and_then(Value::as_bool).filter(|r| *r),
        voicemail: on_voicemail.map(|on_voicemail| VoicemailPlan {
            on_voicemail,
            message: text("voicemail_message"),
            voice: text("voice"),
            language: text("language"),
        }),
        campaign: r.get("campaign").and_then(Value::as_bool).unwrap_or(false),
        extraction_schema: r.get("extraction_schema").cloned(),
        ..AgentRequest::default()
    }))
}

/// An application that takes the answered call's audio and plays nothing,
/// keeping the call up until it is ended.
pub fn silent_app() -> CallApp {
    let (tx, mut rx) = mpsc::channel::<CallAudio>(1);
    tokio::spawn(async move {
        if let Some(mut audio) = rx.recv().await {
            // Reading the frames keeps the call's media from counting drops;
            // the loop ends when the call does.
            while audio.frames.recv().await.is_some() {}
        }
    });
    CallApp::Stream(tx)
}

/// Starts the attempt at `call` (claimed: `dialing`) on `engine`.
pub async fn dial(state: &AppState, engine: &Engine, call: &Call) -> Result<(), DialError> {
    let cc = state.config.sip.default_country_code.as_deref();
    if let Some(e164) = caller_e164(&call.to, cc)
        && state
            .store
            .dnc_entry(&call.org_id, &e164)
            .await
            .ok()
            .flatten()
            .is_some()
    {
        return Err(DialError::DoNotCall);
    }
    let app = app_for(call);
    if let CallApp::Agent(request) = &app
        && let Some(agents) = engine.agents()
    {
        // The greeting is synthesized while the call rings.
        let request = (**request).clone();
        tokio::spawn(async move { agents.warm_request(&request).await });
    }
    let r = &call.request;
    let text = |k: &str| r.get(k).and_then(Value::as_str).map(str::to_owned);
    let outbound = OutboundCall {
        id: Some(call.id.clone()),
        trunk: text("trunk"),
        to: call.to.clone(),
        from: text("caller_id"),
        app,
        ring_timeout: r
            .get("ring_timeout_secs")
            .and_then(Value::as_u64)
            .map(Duration::from_secs),
    };
    engine
        .place_call(outbound)
        .await
        .map_err(DialError::Place)?;
    // The bridge announces `dialing` first, before the engine's events.
    state.placed.announce(&call.id);
    Ok(())
}

/// Ends a claimed call that could not be dialled, with `status` and
/// `reason`, and announces it.
async fn close_claimed(state: &AppState, call: &Call, status: CallStatus, reason: String) {
    let now = now_ms();
    let end = AttemptEnd {
        status: status.as_str().to_owned(),
        hangup_reason: Some(reason.clone()),
        ended_at: now,
        ..AttemptEnd::default()
    };
    if let Err(e) = state
        .store
        .end_attempt(call.id.as_str(), call.attempts, &end)
        .await
    {
        warn!(call = %call.id, error = %e, "cannot record the end of an attempt");
    }
    let update = CallUpdate {
        hangup_by: Some("system".into()),
        hangup_reason: Some(reason),
        ..CallUpdate::ended(status, now)
    };
    match state
        .store
        .update_call(&call.org_id, call.id.as_str(), &update)
        .await
    {
        Ok(closed) => announce_ended(state, &closed).await,
        Err(e) => warn!(call = %call.id, error = %e, "cannot close a call that was not dialled"),
    }
}

/// Dials a call the dispatcher claimed; what goes wrong is recorded on
/// the call.
async fn dial_claimed(state: &AppState, engine: &Engine, call: Call) {
    match dial(state, engine, &call).await {
        Ok(()) => {}
        Err(DialError::DoNotCall) => {
            info!(call = %call.id, "not dialled: the number is on the do-not-call list");
            let reason = "the number is on the organization's do-not-call list".to_owned();
            close_claimed(state, &call, CallStatus::Canceled, reason).await;
        }
        Err(DialError::Place(e @ (PlaceError::Refused(_) | PlaceError::NoPorts))) => {
            // Not this call's fault: it waits its turn again.
            let at = now_ms() + (state.config.outbound.requeue_secs * 1000) as i64;
            warn!(call = %call.id, error = %e, "cannot dial now; the call goes back in the queue");
            if let Err(e) = state
                .store
                .release_claim(&call.org_id, call.id.as_str(), at)
                .await
            {
                warn!(call = %call.id, error = %e, "cannot put a call back in the queue");
            }
        }
        Err(DialError::Place(e)) => {
            warn!(call = %call.id, error = %e, "cannot dial a call");
            close_claimed(state, &call, CallStatus::Failed, e.to_string()).await;
        }
    }
}

/// One pass over the organizations with due calls; the time of the
/// earliest pace-limited organization's next dial, if any.
async fn round(state: &AppState, engine: &Engine) -> Option<i64> {
    let orgs = match state
        .store
        .orgs_with_due_calls(now_ms(), ORGS_PER_ROUND)
        .await
    {
        Ok(o) => o,
        Err(e) => {
            warn!(error = %e, "dispatcher: cannot look for due calls");
            return None;
        }
    };
    let mut open: Vec<(String, DialLimits)> = Vec::new();
    for org in orgs {
        match limits(state, &org).await {
            Ok(l) => open.push((org, l)),
            Err(e) => warn!(org = %org, error = %e, "dispatcher: cannot read the limits"),
        }
    }
    let mut paced: Option<i64> = None;
    let mut claims = 0;
    while !open.is_empty() && claims < MAX_CLAIMS_PER_WAKE {
        let mut done: HashSet<String> = HashSet::new();
        for (org, limits) in &open {
            match state.store.claim_call(org, None, now_ms(), *limits).await {
                Ok(Claim::Claimed(call)) => {
                    claims += 1;
                    dial_claimed(state, engine, *call).await;
                }
                Ok(Claim::Paced(at)) => {
                    paced = Some(paced.map_or(at, |p| p.min(at)));
                    done.insert(org.clone());
                }
                Ok(Claim::Full | Claim::Empty) => {
                    done.insert(org.clone());
                }
                Err(e) => {
                    warn!(org = %org, error = %e, "dispatcher: cannot claim a call");
                    done.insert(org.clone());
                }
            }
        }
        open.retain(|(org, _)| !done.contains(org));
    }
    paced
}

/// Runs the dispatcher until `stop` turns true.
pub fn spawn(state: AppState, engine: Engine, mut stop: watch::Receiver<bool>) -> JoinHandle<()> {
    tokio::spawn(async move {
        let poll = Duration::from_millis(state.config.outbound.poll_ms);
        let mut recovered = state.outbound.recovered.subscribe();
        tokio::select! {
            _ = recovered.wait_for(|r| *r) => {}
            _ = stop.wait_for(|s| *s) => return,
        }
        loop {
            if *stop.borrow() {
                return;
            }
            let paced = round(&state, &engine).await;
            let due = state.store.next_call_due().await.ok().flatten();
            let now = now_ms();
            let next = [paced, due.filter(|d| *d > now)]
                .into_iter()
                .flatten()
                .min()
                .map(|at| Duration::from_millis(u64::try_from(at - now).unwrap_or(0)));
            let wait = next.map_or(poll, |n| n.min(poll));
            tokio::select! {
                _ = stop.changed() => {}
                () = state.outbound.wake.notified() => {}
                () = tokio::time::sleep(wait) => {}
            }
        }
    })
}

/// At start-up: outbound calls a previous process left mid-attempt get
/// another attempt if their policy has one (the attempt died with the
/// process, through no fault of the callee). The rest are closed as
/// failed by the bridge.
pub async fn recover_interrupted(state: &AppState) {
    let calls = match state.store.live_outbound_calls().await {
        Ok(c) => c,
        Err(e) => {
            warn!(error = %e, "cannot look for calls interrupted by a restart");
            return;
        }
    };
    let now = now_ms();
    for call in calls {
        if call.direction != CallDirection::Outbound || call.request.get("forwarded_from").is_some()
        {
            continue;
        }
        let policy = call_policy(&call.request);
        let attempts = u32::try_from(call.attempts.max(1)).unwrap_or(u32::MAX);
        let Next::Retry { at } = policy.after_attempt(attempts, AttemptOutcome::Interrupted, now)
        else {
            continue;
        };
        let end = AttemptEnd {
            status: CallStatus::Failed.as_str().to_owned(),
            hangup_reason: Some("server restarted while the attempt was under way".into()),
            answered_at: call.answered_at,
            ended_at: now,
            ..AttemptEnd::default()
        };
        let store = &state.store;
        if let Err(e) = store
            .end_attempt(call.id.as_str(), call.attempts, &end)
            .await
        {
            warn!(call = %call.id, error = %e, "cannot record an interrupted attempt");
        }
        match store
            .requeue_call(
                &call.org_id,
                call.id.as_str(),
                CallStatus::RetryScheduled,
                at,
                &end,
            )
            .await
        {
            Ok(_) => {
                info!(call = %call.id, "attempt interrupted by a restart; the call is retried")
            }
            Err(e) => warn!(call = %call.id, error = %e, "cannot requeue an interrupted call"),
        }
    }
}
