//! The inbound side of a `forward` number (see [`crate::engine::forward`]):
//! the call to the target while the caller waits unanswered, and the
//! bridge once both are answered.

use hotline_sip::message;
use hotline_sip::sdp::SessionDescription;
use hotline_sip::transaction::TransactionKey;
use rsip::headers::UntypedHeader;
use rsip::{Header, Request};
use tokio::sync::{broadcast, mpsc};
use tracing::{info, warn};

use super::Leg;
use crate::call::{CallCommand, CallEvent, Hangup, Outcome, Party, default_reason};
use crate::config::{NumberConfig, NumberMode};
use crate::engine::app::CallAudio;
use crate::engine::bridge::{self, Dial, HangUpOnDrop, Progress, Side, Unanswered};
use crate::engine::numbers::NumberAction;
use crate::engine::{Ctx, ToLeg, forward};

/// A forward whose target answered: what the bridge needs once the caller
/// is answered too.
pub(crate) struct Forwarded {
    /// The target's call: hung up if the bridge never comes up (this is
    /// dropped unused when answering the caller fails).
    target: HangUpOnDrop,
    events: broadcast::Receiver<CallEvent>,
    audio: CallAudio,
}

/// The forward target of `number` if it is one of this server's `forward`
/// numbers: the run-time table first (it overrides the file), then the
/// configuration file.
fn forward_target_of(ctx: &Ctx, number: &str) -> Option<String> {
    let forward = |n: &NumberConfig| {
        (n.mode == NumberMode::Forward)
            .then(|| n.forward_to.clone())
            .flatten()
    };
    if number.starts_with('+')
        && let Some(route) = ctx.numbers.get(number)
    {
        return match route.action.now() {
            NumberAction::Answer(n) => forward(&n),
            NumberAction::Refuse { .. } | NumberAction::Scheduled(_) => None,
        };
    }
    let bare = number.trim_start_matches('+');
    ctx.config
        .numbers
        .iter()
        .find(|n| n.number.trim_start_matches('+') == bare)
        .and_then(forward)
}

impl Leg {
    /// Calls the number's target and waits, unanswered, for it to answer:
    /// ringing (or early media) while it rings, the target's refusal as a
    /// matching final response, a CANCEL passed on. `Err` carries how the
    /// call ended.
    pub(super) async fn forward(
        &mut self,
        key: &TransactionKey,
        invite: &Request,
        to_tag: &str,
        number: &NumberConfig,
        early_answer: Option<&SessionDescription>,
    ) -> Result<Forwarded, Hangup> {
        let Some(target) = number.forward_to.clone() else {
            warn!(call = %self.handle.id, number = %number.number, "forward number without a target");
            return Err(self
                .refuse(
                    key,
                    invite,
                    to_tag,
                    480,
                    Vec::new(),
                    "forward without a target",
                )
                .await);
        };
        let ctx = self.ctx.clone();
        if forward::loops(&number.number, &target, |n| forward_target_of(&ctx, n)) {
            warn!(call = %self.handle.id, number = %number.number, to = %target, "forwarding loop through this server's numbers");
            return Err(self
                .refuse(key, invite, to_tag, 482, Vec::new(), "forwarding loop")
                .await);
        }
        let received = invite.headers.iter().find_map(|h| match h {
            Header::MaxForwards(m) => Some(m.value().to_owned()),
            Header::Other(n, v) if n.eq_ignore_ascii_case("max-forwards") => Some(v.clone()),
            _ => None,
        });
        let Some(max_forwards) = forward::hops_left(received.as_deref()) else {
            return Err(self
                .refuse(key, invite, to_tag, 483, Vec::new(), "too many hops")
                .await);
        };
        let dial = Dial {
            target: target.clone(),
            // The number's trunk, else the one the call came in on, else
            // the only configured one.
            trunk: number.trunk.clone().or_else(|| self.trunk.clone()),
            from: forward::caller_id(&target, &self.handle.info.from, &self.handle.info.to),
            max_forwards,
        };
        let mut dialing = match bridge::dial(self.ctx.clone(), dial).await {
            Ok(d) => d,
            Err(u) => return Err(self.forward_failed(key, invite, to_tag, &target, u).await),
        };
        info!(call = %self.handle.id, to = %target, leg = %dialing.leg.id, "forwarding");
        self.emit(CallEvent::Forwarding {
            to: target.clone(),
            leg: dialing.leg.id.clone(),
        });
        let mut ringback = None;
        let mut rang = false;
        let result = loop {
            tokio::select! {
                p = dialing.progress() => match p {
                    Progress::Ringing if !rang => {
                        rang = true;
                        ringback = self.send_ringing(key, invite, to_tag, early_answer).await;
                    }
                    Progress::Ringing => {}
                    Progress::Answered(audio) => break Ok(audio),
                    Progress::Failed(u) => break Err(u),
                },
                msg = self.rx.recv() => match msg {
                    Some(ToLeg::Cancelled) | None => {
                        dialing.abandon();
                        self.stop_ringback(ringback).await;
                        let r = message::response(invite, 487, None, Some(to_tag));
                        self.respond(key, r).await;
                        return Err(Hangup {
                            outcome: Outcome::Canceled,
                            by: Party::Remote,
                            sip_code: Some(487),
                            reason: "caller canceled".into(),
                        });
                    }
                    Some(_) => {}
                },
                cmd = self.commands.recv() => {
                    if matches!(cmd, Some(CallCommand::Hangup) | None) {
                        dialing.abandon();
                        self.stop_ringback(ringback).await;
                        return Err(self
                            .refuse(key, invite, to_tag, 603, Vec::new(), "declined before answer")
                            .await);
                    }
                }
            }
        };
        self.stop_ringback(ringback).await;
        match result {
            Ok(audio) => {
                info!(call = %self.handle.id, leg = %dialing.leg.id, "forward target answered");
                self.forwarded_to = Some(target);
                Ok(Forwarded {
                    target: HangUpOnDrop::new(dialing.leg),
                    events: dialing.events,
                    audio,
                })
            }
            Err(u) => Err(self.forward_failed(key, invite, to_tag, &target, u).await),
        }
    }

    /// Refuses the caller the way the target refused Hotline.
    async fn forward_failed(
        &self,
        key: &TransactionKey,
        invite: &Request,
        to_tag: &str,
        target: &str,
        u: Unanswered,
    ) -> Hangup {
        let status = forward::refusal_status(u);
        let reason = format!(
            "forward to {target} failed: {} {}",
            u.sip_code,
            default_reason(u.sip_code)
        );
        let mut hangup = self
            .refuse(key, invite, to_tag, status, Vec::new(), &reason)
            .await;
        hangup.outcome = match u.outcome {
            Outcome::Busy => Outcome::Busy,
            Outcome::NoAnswer | Outcome::Canceled => Outcome::NoAnswer,
            _ => Outcome::Failed,
        };
        hangup
    }
}

/// Bridges a forwarded call to its answered target once the call's own
/// audio is handed over (at the answer; with a late offer, at the ACK).
pub(crate) async fn bridge(target: Forwarded, mut own: mpsc::Receiver<CallAudio>) {
    // The call ended before its audio started: dropping `target` hangs up
    // the target's call.
    let Some(me) = own.recv().await else { return };
    let Forwarded {
        target,
        events,
        audio,
    } = target;
    let Some(handle) = target.disarm() else {
        return;
    };
    let id = me.handle.id.clone();
    let with = handle.id.clone();
    let target = Side {
        handle,
        events,
        media: audio.media,
        frames: Some(audio.frames),
    };
    if bridge::join(Side::of(me), target) {
        info!(call = %id, %with, "forward bridged");
    }
}
