//! Two calls made one conversation: what the voice agent's transfer
//! fallback ([`super::transfer`]) and `forward` numbers
//! ([`super::forward`]) share.
//!
//! 1. **Dial.** [`dial`] places the call to the target like an API call
//!    ([`fallback_trunk`]: a `sip:` URI directly, a number through the
//!    preferred trunk or the only configured one) with a
//!    [`CallApp::Stream`] application, so that its audio comes back here
//!    once it is answered. [`Dialing::progress`] reports it ringing,
//!    answered, or ended unanswered ([`Unanswered`]: the SIP code and the
//!    outcome).
//! 2. **Join.** [`join`] links two answered calls: each one's 16 kHz
//!    frames go into the other's play queue, bounded and dropping rather
//!    than waiting (a queue already holding [`BRIDGE_MAX_QUEUED`] frames
//!    takes no more, so a stall can never build up latency); digits are
//!    relayed as RFC 4733 events; both calls are told
//!    ([`CallCommand::Bridged`], which links their records through
//!    [`CallRecord::bridged_with`]); and either call's end hangs up the
//!    other.
//!
//! A caller's frames may already be on their way somewhere (the voice
//! agent's): a [`FrameSwitch`] moves them to the bridge without a gap.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{broadcast, mpsc, watch};
use tracing::warn;

use super::Ctx;
use super::app::{CallApp, CallAudio};
use super::leg::{OutboundCall, PlaceError, place_with_hops};
use crate::call::{CallCommand, CallEvent, CallHandle, CallRecord, Outcome};
use crate::rtp::MediaHandle;

/// Frames a bridged leg's play queue may hold before the bridge drops
/// instead of adding: 100 ms. Both sessions run on this machine's clock,
/// so the queue stays near one frame; the cap only matters after a stall.
pub const BRIDGE_MAX_QUEUED: usize = 5;

/// How long an unanswered call's record may take to follow the end of its
/// audio channel (the call task publishes it right after).
const RECORD_WAIT: Duration = Duration::from_secs(1);

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

/// The trunk a bridged call goes through: none for a `sip:` URI (called
/// directly), else `preferred` (the call's or the number's trunk) when it
/// is configured, else the only configured one — the rules of
/// `POST /v1/calls`.
pub fn fallback_trunk(
    target: &str,
    preferred: Option<&str>,
    trunks: &[&str],
) -> Result<Option<String>, NoRoute> {
    if target.starts_with("sip:") || target.starts_with("sips:") {
        return Ok(None);
    }
    match (preferred, trunks) {
        (Some(t), _) if trunks.contains(&t) => Ok(Some(t.to_owned())),
        (_, [only]) => Ok(Some((*only).to_owned())),
        (_, []) => Err(NoRoute::NoTrunk),
        _ => Err(NoRoute::Ambiguous),
    }
}

/// A target call that ended without being answered, or was never placed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Unanswered {
    /// The SIP status that ended it: the target's final response, 487 when
    /// Hotline gave up at the ring timeout, 503 when it could not even be
    /// placed, 484 for a target that is not callable.
    pub sip_code: u16,
    /// How it ended ([`Outcome::Busy`], [`Outcome::NoAnswer`],
    /// [`Outcome::Failed`]…).
    pub outcome: Outcome,
}

impl Unanswered {
    /// The end of a target call, from its record.
    pub fn of(record: &CallRecord) -> Unanswered {
        Unanswered {
            sip_code: record.hangup.sip_code.unwrap_or(500),
            outcome: record.hangup.outcome,
        }
    }

    /// A call that could not be placed.
    pub fn not_placed(e: &PlaceError) -> Unanswered {
        Unanswered {
            sip_code: place_error_code(e),
            outcome: Outcome::Failed,
        }
    }

    fn no_route() -> Unanswered {
        Unanswered {
            sip_code: 503,
            outcome: Outcome::Failed,
        }
    }
}

/// The SIP code of a call that could not even be placed.
pub fn place_error_code(e: &PlaceError) -> u16 {
    match e {
        PlaceError::BadTarget(_) => 484,
        PlaceError::UnknownTrunk(_)
        | PlaceError::Resolve(_)
        | PlaceError::Refused(_)
        | PlaceError::NoPorts => 503,
    }
}

/// What [`dial`] calls.
#[derive(Debug, Clone)]
pub(crate) struct Dial {
    /// E.164 through a trunk, or a `sip:` URI called directly.
    pub target: String,
    /// The trunk to prefer (see [`fallback_trunk`]).
    pub trunk: Option<String>,
    /// The caller ID; the trunk's when unset.
    pub from: Option<String>,
    /// Max-Forwards of the INVITE (RFC 3261 §8.1.1.6): a forwarded call
    /// passes on what is left of the inbound call's hops.
    pub max_forwards: u8,
}

/// A target call under way.
pub(crate) struct Dialing {
    /// The target's call.
    pub leg: CallHandle,
    /// Its events, subscribed right after it was placed.
    pub events: broadcast::Receiver<CallEvent>,
    answered: mpsc::Receiver<CallAudio>,
}

/// How a target call is getting on.
pub(crate) enum Progress {
    /// The target rings (180/183); reported once.
    Ringing,
    /// The target answered: its audio.
    Answered(CallAudio),
    /// The target call ended unanswered.
    Failed(Unanswered),
}

/// Places the call to `d.target`; `Err` when it cannot even be attempted.
pub(crate) async fn dial(ctx: Arc<Ctx>, d: Dial) -> Result<Dialing, Unanswered> {
    let names: Vec<&str> = ctx.config.trunks.iter().map(|t| t.name.as_str()).collect();
    let trunk = match fallback_trunk(&d.target, d.trunk.as_deref(), &names) {
        Ok(t) => t,
        Err(e) => {
            warn!(target = %d.target, error = %e, "cannot call the bridge target");
            return Err(Unanswered::no_route());
        }
    };
    let (tx, answered) = mpsc::channel(1);
    let call = OutboundCall {
        id: None,
        trunk,
        to: d.target,
        from: d.from,
        app: CallApp::Stream(tx),
        ring_timeout: None,
    };
    let leg = match place_with_hops(ctx, call, d.max_forwards).await {
        Ok(h) => h,
        Err(e) => {
            warn!(error = %e, "cannot call the bridge target");
            return Err(Unanswered::not_placed(&e));
        }
    };
    let events = leg.subscribe();
    Ok(Dialing {
        leg,
        events,
        answered,
    })
}

impl Dialing {
    /// The next step of the target call. Cancel-safe: a `select!` may drop
    /// it and call again.
    pub async fn progress(&mut self) -> Progress {
        loop {
            tokio::select! {
                // An answered call that ended at once has both its audio
                // and its end waiting: the answer came first.
                biased;
                audio = self.answered.recv() => return match audio {
                    Some(a) => Progress::Answered(a),
                    None => Progress::Failed(self.record().await),
                },
                ev = self.events.recv() => match ev {
                    Ok(CallEvent::Ringing) => return Progress::Ringing,
                    Ok(CallEvent::Ended(r)) => return Progress::Failed(Unanswered::of(&r)),
                    Err(broadcast::error::RecvError::Closed) => {
                        return Progress::Failed(self.record().await);
                    }
                    _ => {}
                },
            }
        }
    }

    /// The call's end, once its audio channel closed unanswered: its
    /// record follows right after.
    async fn record(&mut self) -> Unanswered {
        let wait = async {
            loop {
                match self.events.recv().await {
                    Ok(CallEvent::Ended(r)) => break Some(Unanswered::of(&r)),
                    Err(broadcast::error::RecvError::Closed) => break None,
                    _ => {}
                }
            }
        };
        tokio::time::timeout(RECORD_WAIT, wait)
            .await
            .ok()
            .flatten()
            .unwrap_or(Unanswered {
                sip_code: 500,
                outcome: Outcome::Failed,
            })
    }

    /// Gives up on the target: CANCEL while it rings, BYE if it just
    /// answered.
    pub fn abandon(&self) {
        let _ = self.leg.command(CallCommand::Hangup);
    }
}

/// One answered call of a bridge.
pub(crate) struct Side {
    /// The call.
    pub handle: CallHandle,
    /// Its events (digits, its end).
    pub events: broadcast::Receiver<CallEvent>,
    /// Its audio out.
    pub media: MediaHandle,
    /// Its received frames, for the bridge to move to the other side;
    /// `None` when they are moved already (a [`FrameSwitch`]).
    pub frames: Option<mpsc::Receiver<Vec<i16>>>,
}

impl Side {
    /// A [`CallApp::Stream`] call's side, its events subscribed now.
    pub fn of(audio: CallAudio) -> Side {
        Side {
            events: audio.handle.subscribe(),
            handle: audio.handle,
            media: audio.media,
            frames: Some(audio.frames),
        }
    }
}

/// Bridges two answered calls: tells both (their records link), moves each
/// one's frames to the other, relays digits, and ends each with the other.
/// False when `a` was gone already; `b` is hung up then.
pub(crate) fn join(a: Side, b: Side) -> bool {
    let _ = b.handle.command(CallCommand::Bridged {
        with: a.handle.id.clone(),
    });
    if a.handle
        .command(CallCommand::Bridged {
            with: b.handle.id.clone(),
        })
        .is_err()
    {
        let _ = b.handle.command(CallCommand::Hangup);
        return false;
    }
    if let Some(frames) = a.frames {
        tokio::spawn(pump(frames, b.media.pcm_sink()));
    }
    if let Some(frames) = b.frames {
        tokio::spawn(pump(frames, a.media.pcm_sink()));
    }
    tokio::spawn(watch_bridge(a.handle, a.events, b.handle, b.events));
    true
}

/// One call's frames into the other's play queue.
async fn pump(mut from: mpsc::Receiver<Vec<i16>>, to: mpsc::Sender<Vec<i16>>) {
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

/// Hangs up a call when dropped, unless [`disarm`](Self::disarm)ed: a
/// target answered for a caller that is gone before the bridge is up must
/// not stay on the line.
#[derive(Debug)]
pub(crate) struct HangUpOnDrop(Option<CallHandle>);

impl HangUpOnDrop {
    /// Guards `call`.
    pub fn new(call: CallHandle) -> Self {
        HangUpOnDrop(Some(call))
    }

    /// The call, no longer guarded.
    pub fn disarm(mut self) -> Option<CallHandle> {
        self.0.take()
    }
}

impl Drop for HangUpOnDrop {
    fn drop(&mut self) {
        if let Some(h) = self.0.take() {
            let _ = h.command(CallCommand::Hangup);
        }
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_bridged_call_takes_the_api_calls_trunk_rules() {
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
    fn calls_that_cannot_be_placed_have_a_sip_code() {
        assert_eq!(place_error_code(&PlaceError::NoPorts), 503);
        assert_eq!(place_error_code(&PlaceError::BadTarget("x".into())), 484);
        assert_eq!(
            Unanswered::not_placed(&PlaceError::UnknownTrunk("t".into())),
            Unanswered {
                sip_code: 503,
                outcome: Outcome::Failed
            }
        );
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

    #[tokio::test]
    async fn a_pump_drops_what_a_stalled_leg_cannot_take_and_ends_with_its_source() {
        let (tx, rx) = mpsc::channel(64);
        let (sink, mut out) = mpsc::channel(50);
        let task = tokio::spawn(pump(rx, sink));
        for i in 0..20 {
            tx.send(vec![i; 320]).await.unwrap();
        }
        drop(tx);
        tokio::time::timeout(Duration::from_secs(5), task)
            .await
            .expect("the pump ends with its source")
            .unwrap();
        let mut got = Vec::new();
        while let Some(f) = out.recv().await {
            got.push(f[0]);
        }
        assert_eq!(got, (0..BRIDGE_MAX_QUEUED as i16).collect::<Vec<_>>());
    }
}
