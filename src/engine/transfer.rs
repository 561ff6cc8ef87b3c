//! The voice agent's transfer: SIP REFER first, and a bridge when REFER
//! does not work.
//!
//! 1. **REFER.** The call task sends REFER (RFC 3515) and reports its
//!    response and the NOTIFYs as [`CallEvent::TransferStatus`]. A 2xx
//!    sipfrag means the caller is with the target: the call task ends the
//!    call as [`Outcome::Transferred`](crate::call::Outcome::Transferred)
//!    and nothing else happens here. [`ReferWatch`] decides what the codes
//!    mean.
//! 2. **Fallback.** When the peer refuses REFER (a final response ≥ 300:
//!    405, 501, 603…, a timeout, a transport error) or the transferee
//!    reports a failure of its own (a sipfrag ≥ 300 that is not the
//!    target's answer), Hotline calls the target itself, with the same
//!    rules as an API call ([`fallback_trunk`]: a `sip:` URI directly, a
//!    number through the call's trunk or the only configured one). While
//!    that call rings the caller hears ringback from
//!    [`hotline_media::tones`] (the plan of `sip.default_country_code`).
//! 3. **Bridge.** Once the target answers, each leg's 16 kHz frames go into
//!    the other leg's play queue: the caller's through the
//!    [`FrameSwitch`] the agent's audio already passed through, the
//!    target's by a forwarding task. Both are bounded and drop rather than
//!    wait, and a queue already holding [`BRIDGE_MAX_QUEUED`] frames takes
//!    no more, so a stall can never build up latency. Digits are relayed
//!    as RFC 4733 events. Both calls are told ([`CallCommand::Bridged`]);
//!    the agent's pipeline sees [`CallEvent::Bridged`] and ends. Either
//!    call's end hangs up the other.
//! 4. **Failure.** When the target does not answer (busy, no answer,
//!    refused, or the call cannot be placed), ringback stops, the call
//!    stays with the agent, and [`CallEvent::TransferFailed`] carries the
//!    SIP code: the pipeline turns it into the `transfer_call` tool's
//!    result and asks the brain again.
//!
//! **Records.** The target's call is a call of its own (its own id, SIP
//! dialog, times and hang-up), placed like an API call; the two records
//! link to each other through [`CallRecord::bridged_with`]. The
//! transferred call ends as `Transferred`, the target's as an ordinary
//! outbound call.
//!
//! [`CallRecord::bridged_with`]: crate::call::CallRecord::bridged_with

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use tokio::sync::{broadcast, mpsc, watch};
use tracing::{info, warn};

use super::Ctx;
use super::app::CallApp;
use super::leg::{OutboundCall, PlaceError, place, ringback, ringback_region};
use crate::call::{CallCommand, CallEvent, CallHandle, CallRecord, Hangup, Outcome};
use crate::rtp::MediaHandle;

/// Frames a bridged leg's play queue may hold before the bridge drops
/// instead of adding: 100 ms. Both sessions run on this machine's clock,
/// so the queue stays near one frame; the cap only matters after a stall.
pub const BRIDGE_MAX_QUEUED: usize = 5;

/// How long REFER may go without any answer before the fallback: the
/// REFER transaction itself times out (and reports 408) after 64·T1 =
/// 32 s, so this only catches a peer that accepts REFER and never sends
/// the NOTIFY RFC 3515 §2.4.4 requires.
const REFER_QUIET: Duration = Duration::from_secs(40);

/// What a REFER's progress means for the transfer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReferVerdict {
    /// Still under way.
    Pending,
    /// The caller reached the target: the call leaves Hotline.
    Referred,
    /// REFER did not work: Hotline calls the target itself.
    Fallback {
        /// What REFER got.
        sip_code: u16,
    },
    /// The target itself refused (busy, declined, no answer): calling it
    /// again would get the same answer.
    Failed {
        /// The target's answer.
        sip_code: u16,
    },
}

/// Follows one REFER's statuses (sans-IO: the caller passes the time).
#[derive(Debug, Clone)]
pub struct ReferWatch {
    sent: Instant,
    /// The transferee reported progress (a NOTIFY with a 1xx sipfrag): a
    /// failure after it comes from the transferee's own call.
    notified: bool,
    /// How long a REFER under way may take in all.
    patience: Duration,
}

impl ReferWatch {
    /// A REFER sent at `now`; once the transferee reports progress it has
    /// `patience` (from `now`) to report the end.
    pub fn new(now: Instant, patience: Duration) -> Self {
        ReferWatch {
            sent: now,
            notified: false,
            patience: patience.max(REFER_QUIET),
        }
    }

    /// A [`CallEvent::TransferStatus`] code.
    pub fn on_status(&mut self, sip_code: u16) -> ReferVerdict {
        match sip_code {
            100..=199 => {
                self.notified = true;
                ReferVerdict::Pending
            }
            200..=299 => ReferVerdict::Referred,
            // The call task refuses a second REFER while one is under way:
            // that one's outcome is still to come, and a bridge now would
            // race it.
            491 => ReferVerdict::Failed { sip_code },
            c if self.notified && target_refused(c) => ReferVerdict::Failed { sip_code: c },
            c if c >= 300 => ReferVerdict::Fallback { sip_code: c },
            // A code no status can have (0, 1xx below 100): wait for more.
            _ => ReferVerdict::Pending,
        }
    }

    /// When [`on_timeout`](Self::on_timeout) applies.
    pub fn deadline(&self) -> Instant {
        self.sent
            + if self.notified {
                self.patience
            } else {
                REFER_QUIET
            }
    }

    /// The verdict at `now`, past the deadline or not.
    pub fn on_timeout(&self, now: Instant) -> ReferVerdict {
        if now < self.deadline() {
            ReferVerdict::Pending
        } else if self.notified {
            // The transferee is (or was) calling the target and never said
            // how it went: a call of our own could ring the target twice.
            ReferVerdict::Failed { sip_code: 408 }
        } else {
            ReferVerdict::Fallback { sip_code: 408 }
        }
    }
}

/// Whether a sipfrag status is the target's own answer to the
/// transferee's call (RFC 3261 §21: busy, gone, declined, unreachable):
/// failures a call from Hotline would get too. Others (403, 488, 5xx) are
/// more likely the transferee's trouble, which a call of ours avoids.
fn target_refused(code: u16) -> bool {
    matches!(
        code,
        404 | 408 | 410 | 480 | 484 | 486 | 487 | 600 | 603 | 604
    )
}

/// Why the target cannot be called.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NoRoute {
    /// A number, but no trunk to call it through.
    #[error("no trunk is configured to call numbers")]
    NoTrunk,
    /// A number, and several trunks with none of them the call's.
    #[error("several trunks are configured and the call has none")]
    Ambiguous,
}

/// The trunk the fallback call goes through: none for a `sip:` URI (called
/// directly), else the call's own trunk, else the only configured one —
/// the rules of `POST /v1/calls`.
pub fn fallback_trunk(
    target: &str,
    call_trunk: Option<&str>,
    trunks: &[&str],
) -> Result<Option<String>, NoRoute> {
    if target.starts_with("sip:") || target.starts_with("sips:") {
        return Ok(None);
    }
    match (call_trunk, trunks) {
        (Some(t), _) if trunks.contains(&t) => Ok(Some(t.to_owned())),
        (_, [only]) => Ok(Some((*only).to_owned())),
        (_, []) => Err(NoRoute::NoTrunk),
        _ => Err(NoRoute::Ambiguous),
    }
}

/// The word [`CallEvent::TransferFailed`] carries for an outcome.
pub fn failure_reason(outcome: Outcome) -> &'static str {
    match outcome {
        Outcome::Busy => "busy",
        Outcome::NoAnswer | Outcome::Canceled => "no_answer",
        _ => "failed",
    }
}

/// The SIP code and reason of a target call that ended unanswered.
fn unanswered(record: &CallRecord) -> (u16, &'static str) {
    (
        record.hangup.sip_code.unwrap_or(500),
        failure_reason(record.hangup.outcome),
    )
}

/// The SIP code of a call that could not even be placed.
fn place_error_code(e: &PlaceError) -> u16 {
    match e {
        PlaceError::BadTarget(_) => 484,
        PlaceError::UnknownTrunk(_)
        | PlaceError::Resolve(_)
        | PlaceError::Refused(_)
        | PlaceError::NoPorts => 503,
    }
}

/// Where a call's received frames go: to the voice agent first, to the
/// other leg of a bridge after [`switch`](Self::switch). A relay task
/// moves each frame on as it arrives, dropping it (never waiting) when the
/// destination is full; it ends with the call's media.
#[derive(Debug)]
pub struct FrameSwitch {
    to: watch::Sender<Destination>,
}

#[derive(Debug, Clone)]
struct Destination {
    tx: mpsc::Sender<Vec<i16>>,
    /// Frames the destination may hold before this one is dropped.
    max_queued: usize,
}

impl FrameSwitch {
    /// Starts relaying `from` to `to`. Must be called inside a runtime.
    pub fn start(from: mpsc::Receiver<Vec<i16>>, to: mpsc::Sender<Vec<i16>>) -> FrameSwitch {
        let max_queued = to.max_capacity();
        let (tx, rx) = watch::channel(Destination { tx: to, max_queued });
        tokio::spawn(relay(from, rx));
        FrameSwitch { to: tx }
    }

    /// Sends the frames to a bridged leg's play queue from now on.
    pub fn switch(&self, to: mpsc::Sender<Vec<i16>>) {
        let _ = self.to.send(Destination {
            tx: to,
            max_queued: BRIDGE_MAX_QUEUED,
        });
    }
}

async fn relay(mut from: mpsc::Receiver<Vec<i16>>, mut to: watch::Receiver<Destination>) {
    let mut dest = to.borrow_and_update().clone();
    let mut switch_gone = false;
    while let Some(frame) = from.recv().await {
        if !switch_gone {
            // Once the switch is dropped its last value stands: read it
            // one final time.
            let changed = to.has_changed().unwrap_or_else(|_| {
                switch_gone = true;
                true
            });
            if changed {
                dest = to.borrow_and_update().clone();
            }
        }
        offer(&dest.tx, frame, dest.max_queued);
    }
}

/// Queues `frame` unless `to` already holds `max_queued` frames or is
/// full; false once `to` is closed.
fn offer(to: &mpsc::Sender<Vec<i16>>, frame: Vec<i16>, max_queued: usize) -> bool {
    if to.max_capacity() - to.capacity() >= max_queued {
        return !to.is_closed();
    }
    !matches!(
        to.try_send(frame),
        Err(mpsc::error::TrySendError::Closed(_))
    )
}

/// Everything a transfer needs of its call.
pub(crate) struct TransferJob {
    pub ctx: Arc<Ctx>,
    pub handle: CallHandle,
    pub publish: broadcast::Sender<CallEvent>,
    pub media: MediaHandle,
    pub switch: Arc<FrameSwitch>,
    pub trunk: Option<String>,
    pub target: String,
    /// Set once the bridge is up.
    pub bridged: Arc<AtomicBool>,
}

impl TransferJob {
    /// Tells the call (and its agent) that the transfer failed.
    fn fail(&self, sip_code: u16, reason: &str) {
        info!(call = %self.handle.id, sip_code, reason, "transfer failed");
        let event = CallEvent::TransferFailed {
            sip_code,
            reason: reason.to_owned(),
        };
        self.ctx.registry.publish(&self.handle.id, event.clone());
        let _ = self.publish.send(event);
    }
}

/// Runs a transfer to its end: REFER, then the bridge if REFER fails.
pub(crate) async fn run(job: TransferJob) {
    // Subscribed before REFER goes out, so no status can be missed.
    let mut events = job.handle.subscribe();
    let target = job.target.clone();
    if job
        .handle
        .command(CallCommand::Transfer {
            target: target.clone(),
        })
        .is_err()
    {
        return;
    }
    let ring = Duration::from_secs(job.ctx.config.sip.ring_timeout_secs);
    let mut watch = ReferWatch::new(Instant::now(), ring + REFER_QUIET);
    let verdict = loop {
        let deadline = watch.deadline();
        tokio::select! {
            ev = events.recv() => match ev {
                Ok(CallEvent::TransferStatus { sip_code }) => match watch.on_status(sip_code) {
                    ReferVerdict::Pending => {}
                    v => break v,
                },
                Ok(CallEvent::Ended(_)) | Err(broadcast::error::RecvError::Closed) => return,
                _ => {}
            },
            () = tokio::time::sleep_until(deadline.into()) => match watch.on_timeout(Instant::now()) {
                ReferVerdict::Pending => {}
                v => break v,
            },
        }
    };
    match verdict {
        // The call task ends the call as transferred.
        ReferVerdict::Referred | ReferVerdict::Pending => {}
        ReferVerdict::Failed { sip_code } => {
            let outcome = Hangup::from_final_response(Some(sip_code), "", false).outcome;
            job.fail(sip_code, failure_reason(outcome));
        }
        ReferVerdict::Fallback { sip_code } => {
            info!(call = %job.handle.id, sip_code, %target, "REFER did not work; calling the target to bridge");
            bridge(job, events).await;
        }
    }
}

/// Calls the target and bridges it to the call once answered.
async fn bridge(job: TransferJob, mut caller_events: broadcast::Receiver<CallEvent>) {
    let names: Vec<&str> = job
        .ctx
        .config
        .trunks
        .iter()
        .map(|t| t.name.as_str())
        .collect();
    let trunk = match fallback_trunk(&job.target, job.trunk.as_deref(), &names) {
        Ok(t) => t,
        Err(e) => {
            warn!(call = %job.handle.id, target = %job.target, error = %e, "cannot call the transfer target");
            job.fail(503, "failed");
            return;
        }
    };
    let (tx, mut answered) = mpsc::channel(1);
    let call = OutboundCall {
        id: None,
        trunk,
        to: job.target.clone(),
        // The trunk's caller ID: carriers refuse calls from numbers that
        // are not the customer's, and the caller's own number usually is not.
        from: None,
        app: CallApp::Stream(tx),
        ring_timeout: None,
    };
    let leg = match place(job.ctx.clone(), call).await {
        Ok(h) => h,
        Err(e) => {
            warn!(call = %job.handle.id, error = %e, "cannot call the transfer target");
            job.fail(place_error_code(&e), "failed");
            return;
        }
    };
    let mut leg_events = leg.subscribe();
    let region = ringback_region(job.ctx.config.sip.default_country_code.as_deref());
    let ringing = tokio::spawn(ringback(job.media.clone(), region));
    let mut failure = None;
    let audio = loop {
        tokio::select! {
            a = answered.recv() => break a,
            ev = leg_events.recv() => match ev {
                Ok(CallEvent::Ended(r)) => {
                    failure = Some(unanswered(&r));
                    break None;
                }
                Err(broadcast::error::RecvError::Closed) => break None,
                _ => {}
            },
            ev = caller_events.recv() => match ev {
                Ok(CallEvent::Ended(_)) | Err(broadcast::error::RecvError::Closed) => {
                    // The caller gave up while the target rang.
                    ringing.abort();
                    let _ = leg.command(CallCommand::Hangup);
                    return;
                }
                _ => {}
            },
        }
    };
    ringing.abort();
    let _ = job.media.flush_with_fade().await;
    let Some(audio) = audio else {
        if failure.is_none() {
            // The call's end closes the audio channel right after its
            // `Ended`: read that for the code.
            let wait = async {
                loop {
                    match leg_events.recv().await {
                        Ok(CallEvent::Ended(r)) => break Some(unanswered(&r)),
                        Err(broadcast::error::RecvError::Closed) => break None,
                        _ => {}
                    }
                }
            };
            failure = tokio::time::timeout(Duration::from_secs(1), wait)
                .await
                .ok()
                .flatten();
        }
        let (code, reason) = failure.unwrap_or((500, "failed"));
        job.fail(code, reason);
        return;
    };
    // Answered: the agent hands over to the bridge.
    job.switch.switch(audio.media.pcm_sink());
    job.bridged.store(true, Ordering::Release);
    let _ = leg.command(CallCommand::Bridged {
        with: job.handle.id.clone(),
    });
    if job
        .handle
        .command(CallCommand::Bridged {
            with: leg.id.clone(),
        })
        .is_err()
    {
        let _ = leg.command(CallCommand::Hangup);
        return;
    }
    info!(call = %job.handle.id, with = %leg.id, "transfer bridged");
    tokio::spawn(forward(audio.frames, job.media.pcm_sink()));
    tokio::spawn(watch_bridge(job.handle, caller_events, leg, leg_events));
}

/// The target's frames into the caller's play queue.
async fn forward(mut from: mpsc::Receiver<Vec<i16>>, to: mpsc::Sender<Vec<i16>>) {
    while let Some(frame) = from.recv().await {
        if !offer(&to, frame, BRIDGE_MAX_QUEUED) {
            break;
        }
    }
}

/// Relays digits between the bridged calls and ends each with the other.
/// The call tasks hang up their partner too; this covers a call that
/// ended before it learned it was bridged.
async fn watch_bridge(
    a: CallHandle,
    mut a_events: broadcast::Receiver<CallEvent>,
    b: CallHandle,
    mut b_events: broadcast::Receiver<CallEvent>,
) {
    loop {
        let (ev, other) = tokio::select! {
            ev = a_events.recv() => (ev, &b),
            ev = b_events.recv() => (ev, &a),
        };
        match ev {
            Ok(CallEvent::Dtmf { digit, .. }) => {
                let _ = other.command(CallCommand::SendDtmf {
                    digits: digit.to_string(),
                });
            }
            Ok(CallEvent::Ended(_)) | Err(broadcast::error::RecvError::Closed) => {
                let _ = other.command(CallCommand::Hangup);
                return;
            }
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_refused_refer_falls_back_and_a_notified_success_transfers() {
        let t0 = Instant::now();
        for code in [405, 501, 603, 408, 503, 400] {
            let mut w = ReferWatch::new(t0, Duration::from_secs(90));
            assert_eq!(
                w.on_status(code),
                ReferVerdict::Fallback { sip_code: code },
                "{code}"
            );
        }
        let mut w = ReferWatch::new(t0, Duration::from_secs(90));
        assert_eq!(w.on_status(100), ReferVerdict::Pending);
        assert_eq!(w.on_status(180), ReferVerdict::Pending);
        assert_eq!(w.on_status(200), ReferVerdict::Referred);
        assert_eq!(
            ReferWatch::new(t0, Duration::ZERO).on_status(491),
            ReferVerdict::Failed { sip_code: 491 }
        );
    }

    #[test]
    fn after_progress_the_targets_refusal_is_final_and_the_transferees_is_not() {
        let t0 = Instant::now();
        for code in [486, 600, 603, 480, 404, 487] {
            let mut w = ReferWatch::new(t0, Duration::from_secs(90));
            w.on_status(100);
            assert_eq!(w.on_status(code), ReferVerdict::Failed { sip_code: code });
        }
        for code in [403, 488, 500, 503] {
            let mut w = ReferWatch::new(t0, Duration::from_secs(90));
            w.on_status(100);
            assert_eq!(w.on_status(code), ReferVerdict::Fallback { sip_code: code });
        }
        // A status that is not one is ignored.
        assert_eq!(
            ReferWatch::new(t0, Duration::ZERO).on_status(0),
            ReferVerdict::Pending
        );
    }

    #[test]
    fn silence_falls_back_and_a_stalled_transfer_fails() {
        let t0 = Instant::now();
        let w = ReferWatch::new(t0, Duration::from_secs(90));
        assert_eq!(w.deadline(), t0 + REFER_QUIET);
        assert_eq!(
            w.on_timeout(t0 + Duration::from_secs(39)),
            ReferVerdict::Pending
        );
        assert_eq!(
            w.on_timeout(t0 + REFER_QUIET),
            ReferVerdict::Fallback { sip_code: 408 }
        );
        let mut w = ReferWatch::new(t0, Duration::from_secs(90));
        w.on_status(100);
        assert_eq!(w.deadline(), t0 + Duration::from_secs(90));
        assert_eq!(
            w.on_timeout(t0 + Duration::from_secs(60)),
            ReferVerdict::Pending
        );
        assert_eq!(
            w.on_timeout(t0 + Duration::from_secs(90)),
            ReferVerdict::Failed { sip_code: 408 }
        );
        // Patience never ends before the quiet limit.
        let w = ReferWatch::new(t0, Duration::from_secs(1));
        assert_eq!(w.patience, REFER_QUIET);
    }

    #[test]
    fn the_fallback_call_takes_the_api_calls_trunk_rules() {
        let one = ["carrier"];
        let two = ["a", "b"];
        assert_eq!(
            fallback_trunk("sip:bob@127.0.0.1:5070", None, &two),
            Ok(None)
        );
        assert_eq!(
            fallback_trunk("sips:bob@example.com", Some("a"), &two),
            Ok(None)
        );
        assert_eq!(
            fallback_trunk("+14155550123", Some("b"), &two),
            Ok(Some("b".into()))
        );
        assert_eq!(
            fallback_trunk("+14155550123", None, &one),
            Ok(Some("carrier".into()))
        );
        // A trunk the configuration no longer has is not used.
        assert_eq!(
            fallback_trunk("+14155550123", Some("gone"), &one),
            Ok(Some("carrier".into()))
        );
        assert_eq!(
            fallback_trunk("+14155550123", None, &[]),
            Err(NoRoute::NoTrunk)
        );
        assert_eq!(
            fallback_trunk("+14155550123", None, &two),
            Err(NoRoute::Ambiguous)
        );
    }

    #[test]
    fn failures_are_named_for_the_brain() {
        assert_eq!(failure_reason(Outcome::Busy), "busy");
        assert_eq!(failure_reason(Outcome::NoAnswer), "no_answer");
        assert_eq!(failure_reason(Outcome::Failed), "failed");
        assert_eq!(place_error_code(&PlaceError::NoPorts), 503);
        assert_eq!(place_error_code(&PlaceError::BadTarget("x".into())), 484);
    }

    #[tokio::test]
    async fn the_switch_moves_frames_and_a_full_bridge_drops_instead_of_waiting() {
        let (caller_tx, caller_rx) = mpsc::channel(64);
        let (agent_tx, mut agent_rx) = mpsc::channel(50);
        let switch = FrameSwitch::start(caller_rx, agent_tx);
        caller_tx.send(vec![1; 320]).await.unwrap();
        assert_eq!(agent_rx.recv().await, Some(vec![1; 320]));

        let (leg_tx, mut leg_rx) = mpsc::channel(50);
        switch.switch(leg_tx.clone());
        // Nobody reads the leg's queue: it fills to the bridge's cap only.
        for i in 0..20 {
            caller_tx.send(vec![i; 320]).await.unwrap();
        }
        drop(caller_tx);
        drop(switch);
        drop(leg_tx);
        // The relay ends with the caller's audio, and with it the last
        // sender of the leg's queue.
        let got = tokio::time::timeout(Duration::from_secs(5), async {
            let mut got = Vec::new();
            while let Some(f) = leg_rx.recv().await {
                got.push(f[0]);
            }
            got
        })
        .await
        .expect("the relay ends with the caller's audio");
        assert_eq!(got, (0..BRIDGE_MAX_QUEUED as i16).collect::<Vec<_>>());
        // The agent got nothing after the switch.
        assert!(agent_rx.recv().await.is_none());
    }
}
