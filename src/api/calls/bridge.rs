//! From the call engine to the control plane: one task follows every
//! call's events ([`CallRegistry::subscribe_all`]) and, per event, updates
//! the stored call, publishes live events to WebSocket subscribers and
//! queues webhook deliveries.
//!
//! It never slows a call: the registry's stream is a broadcast, so a
//! bridge that falls behind (a slow database) loses the oldest events
//! rather than holding anything up. It then logs, closes the records of
//! calls that ended meanwhile, and carries on.
//!
//! Which calls are recorded: those created through `POST /v1/calls` (the
//! engine's call id is the stored id), inbound calls to numbers in the
//! database (recorded under the number's organization), and the calls a
//! `forward` number's calls place to its target (outbound, same
//! organization and number, `request.forwarded_from` naming the inbound
//! call). Calls to numbers of the configuration file belong to no
//! organization and are not.
//!
//! Contacts: an inbound call to a stored number from an E.164 caller ID
//! counts as a call with the caller's contact (created on first contact),
//! and an API call to an E.164 number with the callee's; the record keeps
//! the `contact_id`. A call the engine declined because its caller is
//! blocked is linked to the contact without counting
//! (see [`super::contacts`]).
//!
//! Webhook events: `call.status` at every status change (from `queued`
//! on), `call.completed` with the whole call at its end, `dtmf` per digit;
//! an agent call's report is started (`pending`) at its end and made after
//! `call.completed`, which announces `call.report.ready`
//! ([`crate::reports`]).
//! Live events add `dtmf.collected`, `call.hold`, `call.transfer` and
//! `call.forward` (`dialing` with the target and `leg_call_id`, then
//! `bridged` with `bridged_with`).
//!
//! `queued` is announced here too, not by `POST /v1/calls`, so that one
//! task orders every status of a call: the API tells the bridge of a call
//! it handed to the engine ([`Placed`]), and whichever arrives first, that
//! word or the engine's first event of the call, has the bridge announce
//! `queued` before anything else of it.
//!
//! Times in the events are the stored ones: the payloads are built from
//! the record as the store returns it, and an answer time, once stored,
//! is kept at the call's end, so that a live event and
//! `GET /v1/calls/{id}` agree exactly.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde_json::{Value, json};
use tokio::sync::{Notify, broadcast, mpsc, watch};
use tracing::{debug, info, warn};

use super::CallView;
use crate::agent::service::AgentResult;
use crate::api::AppState;
use crate::api::live::LiveEvent;
use crate::call::{
    CallCommand, CallDirection, CallEvent, CallId, CallRecord, CallRegistry, Outcome, Party,
    TranscriptLine,
};
use crate::engine::blocked::{BLOCKED_REASON, BLOCKED_STATUS, caller_e164};
use crate::outbound::policy::{AttemptOutcome, Next, RetryPolicy, call_policy};
use crate::reports::{ReportJob, Reports};
use crate::store::AttemptEnd;
use crate::store::{Call, CallStatus, CallUpdate, NewCall, NewTranscriptEntry, StoreError, now_ms};

/// Placed calls waiting for the bridge to announce them: a burst of API
/// calls beyond this is announced at each call's first engine event.
pub const PLACED_QUEUE: usize = 1024;

/// The way from `POST /v1/calls` to the bridge: the ids of calls handed to
/// the engine, for the bridge to announce as `queued`.
#[derive(Debug)]
pub struct Placed {
    tx: mpsc::Sender<CallId>,
    rx: Mutex<Option<mpsc::Receiver<CallId>>>,
}

impl Default for Placed {
    fn default() -> Self {
        let (tx, rx) = mpsc::channel(PLACED_QUEUE);
        Placed {
            tx,
            rx: Mutex::new(Some(rx)),
        }
    }
}

impl Placed {
    /// Tells the bridge that call `id` was handed to the engine. Never
    /// waits: when the queue is full (or no bridge runs) the word is
    /// dropped, and the bridge announces the call at its first engine
    /// event instead.
    pub fn announce(&self, id: &CallId) {
        if self.tx.try_send(id.clone()).is_err() {
            debug!(call = %id, "placed-call queue full; queued is announced at the first event");
        }
    }

    /// The receiving end, for the one bridge that runs.
    fn take(&self) -> Option<mpsc::Receiver<CallId>> {
        self.rx.lock().unwrap_or_else(|e| e.into_inner()).take()
    }
}

/// What the bridge knows of a call it records.
#[derive(Debug, Clone)]
struct Tracked {
    org_id: String,
    number_id: Option<String>,
    direction: CallDirection,
    from: String,
    to: String,
    status: CallStatus,
    /// The stored answer time: the one every event of the call carries.
    answered_at: Option<i64>,
    max_duration: Option<Duration>,
    /// The voice agent runs the call: `call.completed` waits for its
    /// conclusion ([`CallEvent::AgentResult`]).
    agent: bool,
    /// A forwarded call or the call to its target: its bridge is a
    /// `call.forward` event, not a transfer's.
    forwarded: bool,
    /// A voicemail's longest length, seconds: its transcription takes
    /// about as long, so the conclusion is waited for that much longer.
    voicemail_secs: u32,
    /// An API call's attempt under way (from 1), and what follows it:
    /// `None` for calls that are not retried (inbound calls, forwards).
    attempt: Option<(i64, Arc<RetryPolicy>)>,
    /// The batch the call belongs to.
    batch_id: Option<String>,
    /// The screening's verdict on who answered.
    answered_by: Option<&'static str>,
    /// The callee asked to be called back at this time (unix ms).
    callback_at: Option<i64>,
    /// The callee asked never to be called again.
    do_not_call: bool,
}

/// A call the bridge has seen: recorded, or nobody's.
#[derive(Debug, Clone)]
enum Seen {
    Ours(Box<Tracked>),
    Foreign,
}

/// Whether the engine declined the call because its caller is blocked.
fn is_declined_as_blocked(record: &CallRecord) -> bool {
    record.answered.is_none()
        && record.hangup.outcome == Outcome::Failed
        && record.hangup.sip_code == Some(BLOCKED_STATUS)
        && record.hangup.reason == BLOCKED_REASON
}

/// The status a finished call is recorded with.
pub fn final_status(record: &CallRecord) -> CallStatus {
    match record.hangup.outcome {
        Outcome::Completed | Outcome::Transferred => CallStatus::Completed,
        // The line went dead on an answered call: it did take place.
        Outcome::MediaTimeout if record.answered.is_some() => CallStatus::Completed,
        Outcome::MediaTimeout | Outcome::Failed => CallStatus::Failed,
        Outcome::Busy => CallStatus::Busy,
        Outcome::NoAnswer => CallStatus::NoAnswer,
        Outcome::Canceled => CallStatus::Canceled,
    }
}

fn ms(t: SystemTime) -> i64 {
    t.duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

/// Starts the bridge: subscribes at once (no event of a call placed after
/// this returns is missed), then runs until `stop` turns true, after
/// which it handles the events already queued and ends. `wake` is
/// notified whenever webhook deliveries were queued.
pub fn spawn(
    state: AppState,
    registry: CallRegistry,
    wake: Arc<Notify>,
    mut stop: watch::Receiver<bool>,
) -> tokio::task::JoinHandle<()> {
    let events = registry.subscribe_all();
    let mut placed = state.placed.take();
    let mut bridge = Bridge::new(state, registry, wake);
    tokio::spawn(async move {
        bridge.close_leftovers().await;
        let mut events = events;
        loop {
            let overdue = bridge.next_conclusion_deadline();
            // The stop signal's guard is not `Send`: it must not live
            // across the steps' awaits, so the steps run outside `select!`.
            let got = tokio::select! {
                got = events.recv() => Step::Event(got),
                Some(id) = next_placed(&mut placed) => Step::Placed(id),
                _ = stop.wait_for(|s| *s) => break,
                () = sleep_until_opt(overdue) => Step::Overdue,
            };
            match got {
                Step::Event(Ok((id, event))) => bridge.handle(id, event).await,
                Step::Event(Err(broadcast::error::RecvError::Lagged(n))) => bridge.lagged(n).await,
                Step::Event(Err(broadcast::error::RecvError::Closed)) => return,
                Step::Placed(id) => bridge.placed(id).await,
                Step::Overdue => bridge.conclude_overdue().await,
            }
        }
        // Shutting down: what is queued still belongs in the records.
        while let Some(id) = placed.as_mut().and_then(|p| p.try_recv().ok()) {
            bridge.placed(id).await;
        }
        loop {
            match events.try_recv() {
                Ok((id, event)) => bridge.handle(id, event).await,
                Err(broadcast::error::TryRecvError::Lagged(n)) => bridge.lagged(n).await,
                Err(_) => break,
            }
        }
        // Agent calls still being concluded are reported as they are.
        bridge.conclude_all().await;
    })
}

/// What woke the bridge.
enum Step {
    Event(Result<(CallId, CallEvent), broadcast::error::RecvError>),
    Placed(CallId),
    Overdue,
}

/// The next placed call; pending for ever without a receiver (another
/// bridge took it), so that `select!` leaves this branch alone.
async fn next_placed(placed: &mut Option<mpsc::Receiver<CallId>>) -> Option<CallId> {
    match placed {
        Some(rx) => rx.recv().await,
        None => std::future::pending().await,
    }
}

/// The bridge's state and its steps. [`spawn`] runs it on the registry's
/// stream; the steps are public so that tests can drive it one event at a
/// time (a lost stretch of events included) without racing a task.
pub struct Bridge {
    state: AppState,
    registry: CallRegistry,
    wake: Arc<Notify>,
    calls: HashMap<CallId, Seen>,
    /// Agent calls that ended and wait for the agent's conclusion before
    /// `call.completed`, until a deadline.
    concluding: HashMap<CallId, (Box<Tracked>, tokio::time::Instant)>,
}

/// How long `call.completed` waits for an agent call's conclusion (the
/// after-call summary is bounded well below it).
const CONCLUSION_WAIT: Duration = Duration::from_secs(60);

async fn sleep_until_opt(at: Option<tokio::time::Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}

impl Bridge {
    /// A bridge recording into `state`'s store and hub, looking calls up in
    /// `registry`; `wake` is notified when webhook deliveries were queued.
    pub fn new(state: AppState, registry: CallRegistry, wake: Arc<Notify>) -> Bridge {
        Bridge {
            state,
            registry,
            wake,
            calls: HashMap::new(),
            concluding: HashMap::new(),
        }
    }

    /// Calls left unfinished by an earlier process cannot be live now.
    async fn close_leftovers(&self) {
        super::dispatch::recover_interrupted(&self.state).await;
        match self
            .state
            .store
            .fail_unfinished_calls("server restarted while the call was in progress")
            .await
        {
            Ok(0) => {}
            Ok(n) => info!(calls = n, "closed call records left open by a previous run"),
            Err(e) => warn!(error = %e, "cannot close call records left open by a previous run"),
        }
        self.state.outbound.recovered.send_replace(true);
        match self
            .state
            .store
            .fail_unfinished_reports("server restarted while the report was being made")
            .await
        {
            Ok(0) => {}
            Ok(n) => info!(
                reports = n,
                "failed call reports left unfinished by a previous run"
            ),
            Err(e) => warn!(error = %e, "cannot fail call reports left by a previous run"),
        }
    }

    /// Recovers after losing `n` events (the registry's stream lagged):
    /// the records of calls followed so far that are no longer live are
    /// closed, since their ends were among the lost events.
    pub async fn lagged(&mut self, n: u64) {
        warn!(
            events = n,
            "call event bridge fell behind and lost events; closing the records of calls that ended meanwhile"
        );
        let gone: Vec<CallId> = self
            .calls
            .keys()
            .filter(|id| self.registry.get(id).is_none())
            .cloned()
            .collect();
        for id in gone {
            let Some(Seen::Ours(t)) = self.calls.remove(&id) else {
                continue;
            };
            let status = if t.status == CallStatus::InProgress {
                CallStatus::Completed
            } else {
                CallStatus::Failed
            };
            let update = CallUpdate {
                hangup_reason: Some("call ended; its final events were lost".into()),
                ..CallUpdate::ended(status, now_ms())
            };
            if self.finish(&id, &t, &update).await {
                self.complete(&id, &t).await;
            }
        }
    }

    /// `POST /v1/calls` handed call `id` to the engine: announces it as
    /// `queued`, unless the bridge follows it already (its first engine
    /// event came first and announced it) or it is over.
    pub async fn placed(&mut self, id: CallId) {
        if self.calls.contains_key(&id) {
            return;
        }
        match self.state.store.find_call(id.as_str()).await {
            Ok(Some(call)) if call.status == CallStatus::Queued => {
                self.adopt(&id, call).await;
            }
            Ok(_) => {}
            Err(e) => warn!(call = %id, error = %e, "cannot look up a placed call's record"),
        }
    }

    /// Records and announces one engine event of call `id`.
    pub async fn handle(&mut self, id: CallId, event: CallEvent) {
        // Every agent call counts, recorded or not.
        if let CallEvent::AgentTurn(m) = &event {
            self.state.metrics.agent_turn(m);
        }
        if let CallEvent::AgentResult(result) = event {
            self.concluded(&id, Some(*result)).await;
            return;
        }
        let Some(mut t) = self.track(&id, &event).await else {
            if matches!(event, CallEvent::Ended(_)) {
                self.calls.remove(&id);
            }
            return;
        };
        match event {
            CallEvent::Ringing => {
                self.set_status(&id, &mut t, CallUpdate::status(CallStatus::Ringing))
                    .await;
            }
            CallEvent::Answered => {
                // Stamped once, here: this stored time is the one the live
                // event, the webhooks and the record carry from now on.
                self.set_status(&id, &mut t, CallUpdate::answered(now_ms()))
                    .await;
                if let Some(limit) = t.max_duration {
                    self.limit_duration(&id, &t, limit);
                }
            }
            CallEvent::Dtmf { digit, source } => {
                let payload = json!({"digit": digit.to_string(), "source": source});
                self.publish(&id, &t, "dtmf", payload.clone());
                self.webhook(&id, &t, "dtmf", payload).await;
            }
            CallEvent::DigitsCollected { digits } => {
                self.publish(&id, &t, "dtmf.collected", json!({ "digits": digits }));
            }
            CallEvent::Hold { held } => {
                self.publish(&id, &t, "call.hold", json!({ "held": held }));
            }
            CallEvent::TransferStatus { sip_code } => {
                self.publish(&id, &t, "call.transfer", json!({ "sip_code": sip_code }));
            }
            CallEvent::TransferFailed { sip_code, reason } => {
                let payload = json!({"status": "failed", "sip_code": sip_code, "reason": reason});
                self.publish(&id, &t, "call.transfer", payload);
            }
            CallEvent::Bridged { with } => {
                let payload = json!({"status": "bridged", "bridged_with": with});
                let kind = if t.forwarded {
                    "call.forward"
                } else {
                    "call.transfer"
                };
                self.publish(&id, &t, kind, payload);
            }
            CallEvent::Forwarding { to, leg } => {
                t.forwarded = true;
                let payload = json!({"status": "dialing", "to": to, "leg_call_id": leg});
                self.publish(&id, &t, "call.forward", payload);
                self.record_forward_leg(&id, &t, &to, &leg).await;
            }
            CallEvent::Transcript(line) => self.transcript(&id, &t, line).await,
            CallEvent::AgentSpeaking { speaking } => {
                let kind = if speaking {
                    "agent.speaking.started"
                } else {
                    "agent.speaking.stopped"
                };
                self.publish(&id, &t, kind, json!({}));
            }
            CallEvent::AgentTurn(metrics) => {
                self.publish(&id, &t, "agent.turn", json!(metrics));
            }
            CallEvent::AgentStarted { stt, brain, tts } => {
                t.agent = true;
                self.publish(
                    &id,
                    &t,
                    "agent.started",
                    json!({"stt": stt, "brain": brain, "tts": tts}),
                );
            }
            CallEvent::Voicemail { max_secs } => {
                // Concluded like an agent call: the recording and its
                // transcript are stored before `call.completed`.
                t.agent = true;
                t.voicemail_secs = max_secs;
                self.publish(&id, &t, "voicemail.started", json!({"max_secs": max_secs}));
            }
            CallEvent::AnsweredBy {
                answered_by,
                reason,
                after_ms,
            } => {
                t.answered_by = Some(answered_by);
                let payload = json!({"answered_by": answered_by, "reason": reason,
                    "after_ms": after_ms});
                self.publish(&id, &t, "call.answered_by", payload.clone());
                self.webhook(&id, &t, "call.answered_by", payload).await;
            }
            CallEvent::CallbackRequested { at_ms, when } => {
                t.callback_at = Some(at_ms);
                let payload = json!({"callback_at": at_ms, "when": when});
                self.publish(&id, &t, "call.callback_requested", payload.clone());
                self.webhook(&id, &t, "call.callback_requested", payload)
                    .await;
            }
            CallEvent::DoNotCall { reason } => {
                t.do_not_call = true;
                self.do_not_call(&id, &t, reason).await;
            }
            // Handled before tracking.
            CallEvent::AgentResult(_) => {}
            CallEvent::Ended(record) => {
                self.calls.remove(&id);
                let hangup_by = match (record.hangup.by, t.direction) {
                    (Party::Remote, CallDirection::Outbound) => "callee",
                    (Party::Remote, CallDirection::Inbound) => "caller",
                    (Party::Local, _) => "hotline",
                };
                let answered_at = t.answered_at.or(record.answered.map(ms));
                let attempt_status = match t.answered_by {
                    Some("machine") => CallStatus::Voicemail,
                    _ => final_status(&record),
                };
                let sip_code = record
                    .hangup
                    .sip_code
                    .map(i64::from)
                    .filter(|c| (100..=699).contains(c));
                let mut status = attempt_status;
                if let Some((attempt, policy)) = &t.attempt {
                    let end = AttemptEnd {
                        status: attempt_status.as_str().to_owned(),
                        answered_by: t.answered_by.map(str::to_owned),
                        sip_code,
                        hangup_reason: Some(record.hangup.reason.clone()),
                        answered_at,
                        ended_at: ms(record.ended),
                    };
                    match self.next_attempt(&id, &t, *attempt, policy, &end).await {
                        Some(final_status) => status = final_status,
                        // Back in the queue: this attempt is over, the
                        // call is not.
                        None => return,
                    }
                }
                let update = CallUpdate {
                    // The answer time already stored (and announced) stays;
                    // the engine's own is used only when the answer was
                    // not seen (its event lost).
                    answered_at,
                    hangup_by: Some(hangup_by.into()),
                    hangup_reason: Some(record.hangup.reason.clone()),
                    sip_code,
                    sip_call_id: Some(record.sip_call_id.clone()).filter(|s| !s.is_empty()),
                    ..CallUpdate::ended(status, ms(record.ended))
                };
                if self.finish(&id, &t, &update).await {
                    self.state.outbound.wake.notify_one();
                    if status == CallStatus::Exhausted {
                        let data = json!({"attempts": t.attempt.as_ref().map(|a| a.0),
                            "last_status": attempt_status, "batch_id": t.batch_id});
                        self.publish(&id, &t, "call.exhausted", data.clone());
                        self.webhook(&id, &t, "call.exhausted", data).await;
                    }
                    if t.agent {
                        self.start_report(&id, &t).await;
                        let deadline = tokio::time::Instant::now()
                            + CONCLUSION_WAIT
                            + Duration::from_secs(u64::from(t.voicemail_secs));
                        self.concluding.insert(id, (Box::new(t), deadline));
                    } else {
                        self.complete(&id, &t).await;
                    }
                }
                return;
            }
        }
        self.calls.insert(id, Seen::Ours(Box::new(t)));
    }

    /// The call's tracking entry, recording it first if it is an inbound
    /// call to a stored number; `None` for calls that are nobody's.
    async fn track(&mut self, id: &CallId, event: &CallEvent) -> Option<Tracked> {
        match self.calls.get(id) {
            Some(Seen::Ours(t)) => return Some((**t).clone()),
            Some(Seen::Foreign) => return None,
            None => {}
        }
        let store = &self.state.store;
        let found = match store.find_call(id.as_str()).await {
            Ok(found) => found,
            Err(e) => {
                warn!(call = %id, error = %e, "cannot look up a call's record; its event is not recorded");
                return None;
            }
        };
        if let Some(call) = found {
            return Some(self.adopt(id, call).await);
        }
        // Not placed through the API: an inbound call, maybe to a stored
        // number. Its facts come from the live handle or, if it is gone
        // already, from its final record.
        let (direction, from, to) = match (event, self.registry.get(id)) {
            (CallEvent::Ended(r), _) => (r.direction, r.from.clone(), r.to.clone()),
            (_, Some(h)) => (h.info.direction, h.info.from.clone(), h.info.to.clone()),
            (_, None) => return None,
        };
        let number = if direction == CallDirection::Inbound {
            match store.get_number_by_e164(&to).await {
                Ok(n) => Some(n),
                Err(StoreError::NotFound) => None,
                Err(e) => {
                    warn!(call = %id, error = %e, "cannot look up the number of an inbound call");
                    return None;
                }
            }
        } else {
            None
        };
        let Some(number) = number else {
            self.calls.insert(id.clone(), Seen::Foreign);
            return None;
        };
        let declined = matches!(event, CallEvent::Ended(r) if is_declined_as_blocked(r));
        let contact_id = self
            .inbound_contact(id, &number.org_id, &from, declined)
            .await;
        let new = NewCall {
            id: Some(id.clone()),
            number_id: Some(number.id.clone()),
            agent_id: number.agent_id.clone(),
            contact_id,
            ..NewCall::new(direction, from.clone(), to.clone())
        };
        if let Err(e) = store.create_call(&number.org_id, &new).await {
            warn!(call = %id, error = %e, "cannot record an inbound call");
            self.calls.insert(id.clone(), Seen::Foreign);
            return None;
        }
        let t = Tracked {
            org_id: number.org_id,
            number_id: Some(number.id),
            direction,
            from,
            to,
            status: new.status,
            answered_at: None,
            max_duration: None,
            agent: false,
            forwarded: false,
            voicemail_secs: 0,
            attempt: None,
            batch_id: None,
            answered_by: None,
            callback_at: None,
            do_not_call: false,
        };
        self.calls
            .insert(id.clone(), Seen::Ours(Box::new(t.clone())));
        let payload = self.status_payload(&t, None);
        self.publish(id, &t, "call.status", payload.clone());
        self.webhook(id, &t, "call.status", payload).await;
        Some(t)
    }

    /// The contact of an inbound call's caller, when the caller ID is a
    /// phone number: created on first contact, and the call counted; a
    /// call declined because the caller is blocked is linked to the
    /// contact but not counted. `None` for anonymous callers, or when the
    /// database fails (the call is recorded all the same).
    async fn inbound_contact(
        &self,
        id: &CallId,
        org_id: &str,
        from: &str,
        declined: bool,
    ) -> Option<String> {
        let e164 = caller_e164(from, self.state.config.sip.default_country_code.as_deref())?;
        let store = &self.state.store;
        let found = if declined {
            store.get_contact_by_phone(org_id, &e164).await
        } else {
            store.touch_contact(org_id, &e164, now_ms()).await
        };
        match found {
            Ok(c) => Some(c.id),
            // Forgotten between the INVITE and now.
            Err(StoreError::NotFound) => None,
            Err(e) => {
                warn!(call = %id, error = %e, "cannot record the caller as a contact");
                None
            }
        }
    }

    /// An outbound API call counts as a call with its callee's contact
    /// (created on first contact) when the callee is a phone number.
    async fn outbound_contact(&self, id: &CallId, call: &Call) {
        let Some(e164) = caller_e164(&call.to, None) else {
            return;
        };
        let store = &self.state.store;
        let linked = match store.touch_contact(&call.org_id, &e164, now_ms()).await {
            Ok(c) => {
                store
                    .set_call_contact(&call.org_id, id.as_str(), &c.id)
                    .await
            }
            Err(e) => Err(e),
        };
        if let Err(e) = linked {
            warn!(call = %id, error = %e, "cannot record the callee as a contact");
        }
    }

    /// Records the call a `forward` number's call placed to its target,
    /// under the same organization and number, as an outbound call whose
    /// `request` names the forwarded call; its own events follow it from
    /// here. Nothing if the call was seen already (its end overtook this).
    async fn record_forward_leg(&mut self, id: &CallId, t: &Tracked, to: &str, leg: &CallId) {
        if self.calls.contains_key(leg) {
            return;
        }
        let from = self
            .registry
            .get(leg)
            .map(|h| h.info.from.clone())
            .unwrap_or_default();
        let new = NewCall {
            id: Some(leg.clone()),
            number_id: t.number_id.clone(),
            request: json!({ "forwarded_from": id }),
            ..NewCall::new(CallDirection::Outbound, from.clone(), to)
        };
        if let Err(e) = self.state.store.create_call(&t.org_id, &new).await {
            warn!(call = %leg, error = %e, "cannot record a forward's call to its target");
            self.calls.insert(leg.clone(), Seen::Foreign);
            return;
        }
        let lt = Tracked {
            org_id: t.org_id.clone(),
            number_id: t.number_id.clone(),
            direction: CallDirection::Outbound,
            from,
            to: to.to_owned(),
            status: new.status,
            answered_at: None,
            max_duration: None,
            agent: false,
            forwarded: true,
            voicemail_secs: 0,
            attempt: None,
            batch_id: None,
            answered_by: None,
            callback_at: None,
            do_not_call: false,
        };
        self.calls
            .insert(leg.clone(), Seen::Ours(Box::new(lt.clone())));
        let payload = self.status_payload(&lt, None);
        self.publish(leg, &lt, "call.status", payload.clone());
        self.webhook(leg, &lt, "call.status", payload).await;
    }

    /// Starts following a stored call, announcing it as `queued` if it is
    /// (nothing of it was announced yet: the bridge follows each call once).
    async fn adopt(&mut self, id: &CallId, call: Call) -> Tracked {
        let t = Tracked {
            max_duration: call
                .request
                .get("max_duration_secs")
                .and_then(Value::as_u64)
                .map(Duration::from_secs),
            org_id: call.org_id.clone(),
            number_id: call.number_id.clone(),
            direction: call.direction,
            from: call.from.clone(),
            to: call.to.clone(),
            status: call.status,
            answered_at: call.answered_at,
            agent: false,
            forwarded: false,
            voicemail_secs: 0,
            attempt: (call.direction == CallDirection::Outbound
                && call.request.get("forwarded_from").is_none())
            .then(|| (call.attempts.max(1), Arc::new(call_policy(&call.request)))),
            batch_id: call.batch_id.clone(),
            answered_by: None,
            callback_at: None,
            do_not_call: false,
        };
        self.calls
            .insert(id.clone(), Seen::Ours(Box::new(t.clone())));
        if matches!(t.status, CallStatus::Queued | CallStatus::Dialing) {
            // Placed (through the API or by the dispatcher), and seen here
            // for the first time in this attempt.
            if call.direction == CallDirection::Outbound && call.contact_id.is_none() {
                self.outbound_contact(id, &call).await;
            }
            let attempt = call.attempts;
            let view = CallView::new(call, None);
            let payload = self.status_payload(&t, Some(&view));
            self.publish(id, &t, "call.status", payload.clone());
            self.webhook(id, &t, "call.status", payload).await;
            if t.status == CallStatus::Dialing {
                let data = json!({"attempt": attempt, "to": t.to, "batch_id": t.batch_id});
                self.publish(id, &t, "call.attempting", data.clone());
                self.webhook(id, &t, "call.attempting", data).await;
            }
        }
        t
    }

    fn status_payload(&self, t: &Tracked, view: Option<&CallView>) -> Value {
        let mut p = json!({
            "status": t.status,
            "direction": t.direction,
            "from": t.from,
            "to": t.to,
            "number_id": t.number_id,
        });
        if let Some(v) = view {
            super::lifecycle::add_view_fields(&mut p, v);
        }
        p
    }

    /// Applies a non-final status change and announces it, unless the
    /// call already has that status (or a final one).
    async fn set_status(&mut self, id: &CallId, t: &mut Tracked, update: CallUpdate) {
        let Some(status) = update.status else { return };
        if t.status == status || t.status.is_terminal() {
            return;
        }
        match self
            .state
            .store
            .update_call(&t.org_id, id.as_str(), &update)
            .await
        {
            Ok(call) => {
                t.status = call.status;
                t.answered_at = call.answered_at;
                let view = CallView::new(call, None);
                let payload = self.status_payload(t, Some(&view));
                self.publish(id, t, "call.status", payload.clone());
                self.webhook(id, t, "call.status", payload).await;
            }
            Err(StoreError::Conflict(_)) => {
                debug!(call = %id, "status change after the call's end ignored");
            }
            Err(e) => warn!(call = %id, error = %e, "cannot record a call's status"),
        }
    }

    /// Records a call's end and announces its final `call.status`; false
    /// when there was nothing to record (already closed, or the database
    /// failed), and then nothing more is announced.
    async fn finish(&mut self, id: &CallId, t: &Tracked, update: &CallUpdate) -> bool {
        let store = &self.state.store;
        let mut update = update.clone();
        // Whoever asked for the hang-up on our side (the API, the duration
        // limit) said so in the record already, and maybe why; keep that
        // rather than the engine's "local hang up".
        if update.hangup_by.as_deref() == Some("hotline")
            && let Ok(current) = store.get_call(&t.org_id, id.as_str()).await
            && current.hangup_by.is_some()
        {
            update.hangup_by = None;
            if current.hangup_reason.is_some() {
                update.hangup_reason = None;
            }
        }
        let call = match store.update_call(&t.org_id, id.as_str(), &update).await {
            Ok(call) => call,
            Err(StoreError::Conflict(_)) => {
                debug!(call = %id, "call already closed");
                self.state.hub.call_ended(id.as_str());
                return false;
            }
            Err(e) => {
                warn!(call = %id, error = %e, "cannot record a call's end");
                self.state.hub.call_ended(id.as_str());
                return false;
            }
        };
        let direction = match call.direction {
            CallDirection::Inbound => "inbound",
            CallDirection::Outbound => "outbound",
        };
        self.state
            .metrics
            .calls
            .inc(&[("status", call.status.as_str()), ("direction", direction)]);
        let transcript = store
            .list_transcript(&t.org_id, id.as_str())
            .await
            .unwrap_or_default();
        let view = CallView::new(call, Some(transcript));
        let t = Tracked {
            status: view.status,
            ..t.clone()
        };
        let payload = self.status_payload(&t, Some(&view));
        self.publish(id, &t, "call.status", payload.clone());
        self.webhook(id, &t, "call.status", payload).await;
        true
    }

    /// Announces `call.completed` with the whole call, as stored now.
    async fn complete(&mut self, id: &CallId, t: &Tracked) {
        let store = &self.state.store;
        let call = match store.get_call(&t.org_id, id.as_str()).await {
            Ok(call) => call,
            Err(e) => {
                warn!(call = %id, error = %e, "cannot read a finished call; no call.completed");
                self.state.hub.call_ended(id.as_str());
                return;
            }
        };
        let transcript = store
            .list_transcript(&t.org_id, id.as_str())
            .await
            .unwrap_or_default();
        let view = CallView::new(call, Some(transcript));
        let t = Tracked {
            status: view.status,
            ..t.clone()
        };
        let full = serde_json::to_value(&view).unwrap_or(Value::Null);
        self.publish(id, &t, "call.completed", full.clone());
        self.webhook(id, &t, "call.completed", full).await;
        self.state.hub.call_ended(id.as_str());
        if let Some(batch) = &t.batch_id {
            super::batch::settle(&self.state, batch).await;
        }
    }

    /// An agent call ended: its report is pending from now on (see
    /// [`crate::reports`]).
    async fn start_report(&self, id: &CallId, t: &Tracked) {
        let store = &self.state.store;
        let contact = match store.get_call(&t.org_id, id.as_str()).await {
            Ok(call) => call.contact_id,
            Err(e) => {
                warn!(call = %id, error = %e, "cannot read an agent call to start its report");
                None
            }
        };
        if let Err(e) = store
            .start_report(&t.org_id, id.as_str(), contact.as_deref())
            .await
        {
            warn!(call = %id, error = %e, "cannot start an agent call's report");
        }
    }

    /// An agent call's conclusion arrived (or its wait ran out: `None`):
    /// store it, then announce `call.completed`, then have the call's
    /// report made in the background.
    async fn concluded(&mut self, id: &CallId, result: Option<AgentResult>) {
        let Some((t, _)) = self.concluding.remove(id) else {
            return;
        };
        let job = ReportJob {
            org_id: t.org_id.clone(),
            call_id: id.to_string(),
            slots: result.as_ref().and_then(|r| r.structured_data.clone()),
            quotes: result
                .as_ref()
                .map(|r| r.slot_quotes.clone())
                .unwrap_or_default(),
        };
        if let Some(r) = result {
            if let Some(e) = &r.error {
                warn!(call = %id, error = %e, "no after-call summary");
            }
            if let Some(line) = voicemail_line(&r) {
                // The caller's message is the call's transcript, and what
                // its report is made from.
                self.transcript(id, &t, line).await;
            }
            let update = CallUpdate {
                summary: r.summary,
                outcome: r.outcome,
                structured_data: r.structured_data,
                recording_path: r.recording_path,
                turn_metrics: (!r.turns.is_empty()).then(|| json!(r.turns)),
                ..CallUpdate::default()
            };
            if let Err(e) = self
                .state
                .store
                .update_call(&t.org_id, id.as_str(), &update)
                .await
            {
                warn!(call = %id, error = %e, "cannot record an agent call's conclusion");
            }
        } else {
            warn!(call = %id, "the agent's conclusion never came; reporting the call without it");
        }
        self.complete(id, &t).await;
        Reports::spawn(&self.state, job);
    }

    fn next_conclusion_deadline(&self) -> Option<tokio::time::Instant> {
        self.concluding.values().map(|(_, at)| *at).min()
    }

    async fn conclude_overdue(&mut self) {
        let now = tokio::time::Instant::now();
        let overdue: Vec<CallId> = self
            .concluding
            .iter()
            .filter(|(_, (_, at))| *at <= now)
            .map(|(id, _)| id.clone())
            .collect();
        for id in overdue {
            self.concluded(&id, None).await;
        }
    }

    async fn conclude_all(&mut self) {
        let ids: Vec<CallId> = self.concluding.keys().cloned().collect();
        for id in ids {
            self.concluded(&id, None).await;
        }
    }

    /// Partial lines go to live subscribers only; final lines are stored
    /// as they happen, then published and sent to webhooks.
    async fn transcript(&self, id: &CallId, t: &Tracked, line: TranscriptLine) {
        let mut payload = json!({
            "speaker": line.speaker,
            "text": line.text,
            "start_ms": line.start_ms,
            "end_ms": line.end_ms,
            "interrupted": line.interrupted,
        });
        if !line.is_final {
            // Live subscribers and the webhooks that ask for partials by
            // name (see `Webhook::wants`).
            self.publish(id, t, "transcript.partial", payload.clone());
            self.webhook(id, t, "transcript.partial", payload).await;
            return;
        }
        let entry = NewTranscriptEntry {
            speaker: line.speaker.to_owned(),
            text: line.text,
            start_ms: i64::try_from(line.start_ms).ok(),
            end_ms: i64::try_from(line.end_ms).ok(),
            interrupted: line.interrupted,
        };
        match self
            .state
            .store
            .append_transcript(&t.org_id, id.as_str(), &entry)
            .await
        {
            Ok(stored) => payload["seq"] = json!(stored.seq),
            Err(e) => warn!(call = %id, error = %e, "cannot store a transcript line"),
        }
        self.publish(id, t, "transcript.final", payload.clone());
        self.webhook(id, t, "transcript.final", payload).await;
    }

    fn publish(&self, id: &CallId, t: &Tracked, event_type: &str, payload: Value) {
        self.state.hub.publish(LiveEvent {
            event_type: event_type.into(),
            call_id: id.to_string(),
            alert_id: None,
            sequence: 0,
            timestamp: now_ms(),
            payload,
            org_id: t.org_id.clone(),
            number_id: t.number_id.clone(),
            batch_id: t.batch_id.clone(),
        });
    }

    /// Queues a webhook event: `{"event_type", "call_id", "timestamp",
    /// "data"}`, for the org's webhooks and the call's own.
    async fn webhook(&self, id: &CallId, t: &Tracked, event_type: &str, data: Value) {
        let body = json!({
            "event_type": event_type,
            "call_id": id,
            "timestamp": now_ms(),
            "data": data,
        });
        match self
            .state
            .store
            .enqueue_call_event(&t.org_id, id.as_str(), event_type, &body)
            .await
        {
            Ok(d) if d.is_empty() => {}
            Ok(_) => self.wake.notify_one(),
            Err(e) => warn!(call = %id, event_type, error = %e, "cannot queue a webhook event"),
        }
    }

    /// Attempt `attempt` of an API call ended as `end`: records it and
    /// applies the retry policy. `None` when the call went back to the
    /// queue (retry_scheduled, needs_follow_up; announced here), else
    /// the status the call ends with.
    async fn next_attempt(
        &mut self,
        id: &CallId,
        t: &Tracked,
        attempt: i64,
        policy: &RetryPolicy,
        end: &AttemptEnd,
    ) -> Option<CallStatus> {
        let store = &self.state.store;
        if let Err(e) = store.end_attempt(id.as_str(), attempt, end).await {
            warn!(call = %id, attempt, error = %e, "cannot record the end of an attempt");
        }
        let attempt_status: CallStatus = end.status.parse().unwrap_or(CallStatus::Failed);
        let outcome = match (t.do_not_call, t.callback_at, attempt_status) {
            (true, _, _) => AttemptOutcome::Completed,
            (false, Some(at), _) => AttemptOutcome::Callback { at },
            (false, None, CallStatus::Voicemail) => AttemptOutcome::Voicemail,
            (false, None, CallStatus::NoAnswer) => AttemptOutcome::NoAnswer,
            (false, None, CallStatus::Busy) => AttemptOutcome::Busy,
            (false, None, CallStatus::Failed) => AttemptOutcome::Failed,
            (false, None, CallStatus::Canceled) => AttemptOutcome::Canceled,
            (false, None, _) => AttemptOutcome::Completed,
        };
        let attempts = u32::try_from(attempt).unwrap_or(u32::MAX);
        let (status, at) = match policy.after_attempt(attempts, outcome, now_ms()) {
            Next::Done => return Some(attempt_status),
            Next::Exhausted => return Some(CallStatus::Exhausted),
            Next::Retry { at } => (CallStatus::RetryScheduled, at),
            Next::FollowUp { at } => (CallStatus::NeedsFollowUp, at),
        };
        let call = match store
            .requeue_call(&t.org_id, id.as_str(), status, at, end)
            .await
        {
            Ok(call) => call,
            Err(e) => {
                // Closed meanwhile (a lost race with the API): it ends
                // as this attempt did.
                warn!(call = %id, error = %e, "cannot put a call back in the queue");
                return Some(attempt_status);
            }
        };
        info!(call = %id, attempt, status = status.as_str(), next_attempt_at = at, "call requeued");
        let t = Tracked {
            status,
            answered_at: None,
            ..t.clone()
        };
        let view = CallView::new(call, None);
        let mut payload = self.status_payload(&t, Some(&view));
        let last = json!({"attempt": attempt, "status": attempt_status, "sip_code": end.sip_code,
            "answered_by": end.answered_by});
        payload["last_attempt"] = last.clone();
        self.publish(id, &t, "call.status", payload.clone());
        self.webhook(id, &t, "call.status", payload).await;
        if status == CallStatus::RetryScheduled {
            let mut data = last;
            data["next_attempt_at"] = json!(at);
            data["batch_id"] = json!(t.batch_id);
            self.publish(id, &t, "call.attempt_failed", data.clone());
            self.webhook(id, &t, "call.attempt_failed", data).await;
        }
        self.state.outbound.wake.notify_one();
        None
    }

    /// The callee asked never to be called again: their number goes on
    /// the organization's do-not-call list, and `call.dnc_requested`
    /// says so.
    async fn do_not_call(&self, id: &CallId, t: &Tracked, reason: Option<String>) {
        let party = match t.direction {
            CallDirection::Outbound => &t.to,
            CallDirection::Inbound => &t.from,
        };
        let cc = self.state.config.sip.default_country_code.as_deref();
        let Some(e164) = caller_e164(party, cc) else {
            warn!(call = %id, "do-not-call asked on a call to no phone number; nothing to list");
            return;
        };
        let added = match self
            .state
            .store
            .add_dnc(
                &t.org_id,
                &e164,
                "callee_request",
                Some(id.as_str()),
                reason.as_deref(),
            )
            .await
        {
            Ok(added) => added,
            Err(e) => {
                warn!(call = %id, error = %e, "cannot add a number to the do-not-call list");
                return;
            }
        };
        info!(call = %id, number = %e164, "number added to the do-not-call list");
        let payload = json!({"number": e164, "reason": reason, "newly_added": added});
        self.publish(id, t, "call.dnc_requested", payload.clone());
        self.webhook(id, t, "call.dnc_requested", payload).await;
    }

    /// Hangs the call up once it has been connected for `limit`.
    fn limit_duration(&self, id: &CallId, t: &Tracked, limit: Duration) {
        let registry = self.registry.clone();
        let store = self.state.store.clone();
        let (id, org) = (id.clone(), t.org_id.clone());
        tokio::spawn(async move {
            tokio::time::sleep(limit).await;
            let Some(handle) = registry.get(&id) else {
                return;
            };
            let by = CallUpdate {
                hangup_by: Some("max_duration".into()),
                hangup_reason: Some("max_duration_secs reached".into()),
                ..CallUpdate::default()
            };
            if let Err(e) = store.update_call(&org, id.as_str(), &by).await {
                debug!(call = %id, error = %e, "cannot note the duration limit");
            }
            let _ = handle.command(CallCommand::Hangup);
        });
    }
}

/// A voicemail's words as the caller's transcript line: transcribed after
/// the call, they arrive with its conclusion.
fn voicemail_line(r: &AgentResult) -> Option<TranscriptLine> {
    let vm = r.structured_data.as_ref()?.get("voicemail")?;
    let text = vm.get("transcript")?.as_str()?.trim();
    (!text.is_empty()).then(|| TranscriptLine {
        speaker: "caller",
        text: text.to_owned(),
        is_final: true,
        start_ms: 0,
        end_ms: vm.get("duration_ms").and_then(Value::as_u64).unwrap_or(0),
        interrupted: false,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::call::Hangup;

    fn record(outcome: Outcome, answered: bool) -> CallRecord {
        let now = SystemTime::now();
        CallRecord {
            id: CallId::random(),
            direction: CallDirection::Outbound,
            from: "a".into(),
            to: "b".into(),
            started: now,
            answered: answered.then_some(now),
            ended: now,
            hangup: Hangup {
                outcome,
                by: Party::Remote,
                sip_code: None,
                reason: String::new(),
            },
            sip_call_id: String::new(),
            bridged_with: None,
        }
    }

    #[test]
    fn outcomes_map_to_final_statuses() {
        let cases = [
            (Outcome::Completed, true, CallStatus::Completed),
            (Outcome::Transferred, true, CallStatus::Completed),
            (Outcome::MediaTimeout, true, CallStatus::Completed),
            (Outcome::MediaTimeout, false, CallStatus::Failed),
            (Outcome::Busy, false, CallStatus::Busy),
            (Outcome::NoAnswer, false, CallStatus::NoAnswer),
            (Outcome::Canceled, false, CallStatus::Canceled),
            (Outcome::Failed, false, CallStatus::Failed),
        ];
        for (outcome, answered, status) in cases {
            assert_eq!(
                final_status(&record(outcome, answered)),
                status,
                "{outcome:?}"
            );
        }
    }
}
