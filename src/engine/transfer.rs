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
//! 3. **Bridge.** Once the target answers, the two calls are joined by
//!    [`super::bridge`] (shared with `forward` numbers): the caller's
//!    frames through the [`FrameSwitch`] the agent's audio already passed
//!    through, the target's by a pump, both bounded and dropping rather
//!    than waiting; digits relayed as RFC 4733 events; both calls told
//!    ([`CallCommand::Bridged`]); the agent's pipeline sees
//!    [`CallEvent::Bridged`] and ends. Either call's end hangs up the
//!    other.
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

use tokio::sync::broadcast;
use tracing::info;

use super::Ctx;
use super::bridge::{self, Dial, Progress, Side};
use super::leg::{ringback, ringback_region};
use crate::call::{CallCommand, CallEvent, CallHandle, Hangup, Outcome};
use crate::rtp::MediaHandle;

pub use super::bridge::{BRIDGE_MAX_QUEUED, FrameSwitch, NoRoute, fallback_trunk};

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

/// The word [`CallEvent::TransferFailed`] carries for an outcome.
pub fn failure_reason(outcome: Outcome) -> &'static str {
    match outcome {
        Outcome::Busy => "busy",
        Outcome::NoAnswer | Outcome::Canceled => "no_answer",
        _ => "failed",
    }
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
    let dial = Dial {
        target: job.target.clone(),
        trunk: job.trunk.clone(),
        // The trunk's caller ID: carriers refuse calls from numbers that
        // are not the customer's, and the caller's own number usually is not.
        from: None,
        max_forwards: 70,
    };
    let mut dialing = match bridge::dial(job.ctx.clone(), dial).await {
        Ok(d) => d,
        Err(u) => {
            job.fail(u.sip_code, failure_reason(u.outcome));
            return;
        }
    };
    let region = ringback_region(job.ctx.config.sip.default_country_code.as_deref());
    let ringing = tokio::spawn(ringback(job.media.clone(), region));
    let answered = loop {
        tokio::select! {
            p = dialing.progress() => match p {
                Progress::Ringing => {}
                Progress::Answered(audio) => break Ok(audio),
                Progress::Failed(u) => break Err(u),
            },
            ev = caller_events.recv() => match ev {
                Ok(CallEvent::Ended(_)) | Err(broadcast::error::RecvError::Closed) => {
                    // The caller gave up while the target rang.
                    ringing.abort();
                    dialing.abandon();
                    return;
                }
                _ => {}
            },
        }
    };
    ringing.abort();
    let _ = job.media.flush_with_fade().await;
    let audio = match answered {
        Ok(a) => a,
        Err(u) => {
            job.fail(u.sip_code, failure_reason(u.outcome));
            return;
        }
    };
    // Answered: the agent hands over to the bridge.
    job.switch.switch(audio.media.pcm_sink());
    job.bridged.store(true, Ordering::Release);
    let caller = Side {
        handle: job.handle.clone(),
        events: caller_events,
        media: job.media.clone(),
        // Already on their way through the switch.
        frames: None,
    };
    let target = Side {
        handle: audio.handle,
        events: dialing.events,
        media: audio.media,
        frames: Some(audio.frames),
    };
    let with = target.handle.id.clone();
    if bridge::join(caller, target) {
        info!(call = %job.handle.id, %with, "transfer bridged");
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
    fn failures_are_named_for_the_brain() {
        assert_eq!(failure_reason(Outcome::Busy), "busy");
        assert_eq!(failure_reason(Outcome::NoAnswer), "no_answer");
        assert_eq!(failure_reason(Outcome::Failed), "failed");
    }
}
