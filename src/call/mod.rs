//! Calls: one tokio task per call owns all of its state; everything else
//! talks to it through a [`CallHandle`] (commands in, events out), found in
//! the [`CallRegistry`].
//!
//! This module holds the call API's types. The SIP side creates the task
//! for each admitted inbound INVITE or outbound request; the number's mode
//! (`echo`, `play`, later the AI agent) decides what the task does with the
//! audio.

mod collect;
mod merge;
mod outcome;
mod record;
mod registry;

pub use collect::{CollectEnd, Collected, DigitCollector};
pub use merge::DigitMerger;
pub use outcome::{Hangup, Outcome, Party, default_reason};
pub use record::CallRecord;
pub use registry::{CallRegistry, CallSlot, Refusal};

use std::fmt;
use std::sync::Arc;
use std::time::SystemTime;

use serde::Serialize;
use tokio::sync::{broadcast, mpsc};

/// Commands queued to a call before the sender has to wait; commands are
/// rare (hang up, transfer, DTMF), so a small bound is plenty.
pub const COMMAND_QUEUE: usize = 32;

/// Events buffered per subscriber; a subscriber that falls further behind
/// loses the oldest events (it is told how many), never stalls the call.
pub const EVENT_BUFFER: usize = 256;

/// A call's identifier, unique within the server.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(transparent)]
pub struct CallId(String);

impl CallId {
    /// A new random identifier (`call_` and 24 hex digits).
    pub fn random() -> CallId {
        CallId(format!("call_{:024x}", rand::random::<u128>() >> 32))
    }

    /// The identifier as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl From<String> for CallId {
    fn from(s: String) -> Self {
        CallId(s)
    }
}

impl fmt::Display for CallId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Which way a call was set up.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum CallDirection {
    /// A carrier or phone called Hotline.
    Inbound,
    /// Hotline placed the call.
    Outbound,
}

/// Where a DTMF digit came from. Digits from every source are merged into
/// one de-duplicated stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum DigitSource {
    /// RFC 4733 telephone-event packets.
    Rfc4733,
    /// SIP INFO with `application/dtmf-relay`.
    SipInfo,
    /// Tones detected in the audio.
    InBand,
}

/// What a call asks of its task.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CallCommand {
    /// Hang up (BYE when answered, CANCEL or a final response before).
    Hangup,
    /// Blind transfer to `target` (a SIP URI or E.164 number) with REFER.
    Transfer {
        /// Where to send the caller.
        target: String,
    },
    /// Send digits as RFC 4733 events.
    SendDtmf {
        /// Digits `0-9*#A-D`.
        digits: String,
    },
    /// Stop whatever is playing, with a short fade.
    StopAudio,
    /// The call's audio now runs to and from call `with`: the bridge a
    /// transfer falls back on when REFER is refused (see
    /// `engine::transfer`), or a `forward` number's call and the call to
    /// its target (see `engine::forward`). Ending either call ends the
    /// other, and the call that asked for the transfer ends as
    /// [`Outcome::Transferred`].
    Bridged {
        /// The other call of the bridge.
        with: CallId,
    },
}

/// What a call reports.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum CallEvent {
    /// The far end is ringing (180/183).
    Ringing,
    /// The call was answered.
    Answered,
    /// A DTMF digit, once, whichever way it arrived.
    Dtmf {
        /// The digit.
        digit: char,
        /// How it arrived.
        source: DigitSource,
    },
    /// The outcome of a transfer request (from the REFER's NOTIFYs).
    TransferStatus {
        /// The SIP status in the last `message/sipfrag` NOTIFY.
        sip_code: u16,
    },
    /// A transfer failed for good: REFER was refused and the call Hotline
    /// placed to the target instead was not answered (or REFER reported
    /// the target's own refusal). The call goes on as before.
    TransferFailed {
        /// The SIP status that ended the attempt (486 busy, 480 or 408 no
        /// answer, 503 when the call could not even be placed…).
        sip_code: u16,
        /// `busy`, `no_answer` or `failed`.
        reason: String,
    },
    /// The call is bridged to call `with` (a transfer's fallback, or a
    /// forwarded call and the call to its target): what each side says
    /// reaches the other.
    Bridged {
        /// The other call.
        with: CallId,
    },
    /// An inbound call to a `forward` number: Hotline placed call `leg` to
    /// `to` and answers this one only if that one answers (then
    /// [`CallEvent::Bridged`] follows).
    Forwarding {
        /// The forward target: E.164 or a `sip:` URI.
        to: String,
        /// The call to the target.
        leg: CallId,
    },
    /// The caller finished entering digits at a `play` number's prompt.
    DigitsCollected {
        /// The digits, without the terminating `#`.
        digits: String,
    },
    /// The far end put the call on hold, or took it off.
    Hold {
        /// Whether the call is now held.
        held: bool,
    },
    /// A line of the voice agent's transcript: partial while the caller
    /// is still speaking, then final.
    Transcript(TranscriptLine),
    /// The voice agent started or stopped speaking.
    AgentSpeaking {
        /// True when it started.
        speaking: bool,
    },
    /// The voice agent took the call, with these engines.
    AgentStarted {
        /// Speech-to-text.
        stt: String,
        /// The brain.
        brain: String,
        /// Text-to-speech.
        tts: String,
    },
    /// The voice agent's timings for one turn.
    AgentTurn(crate::agent::TurnMetrics),
    /// A closed number took a voicemail: the caller is being recorded for
    /// up to `max_secs`. Its conclusion ([`CallEvent::AgentResult`], with
    /// the recording and its transcript) follows the call's end.
    Voicemail {
        /// The longest the caller may speak.
        max_secs: u32,
    },
    /// Who answered an outbound agent call asked to screen for voicemail
    /// (`on_voicemail`): `human`, `machine` or `unknown`, decided this long
    /// after the answer, by which rule (see [`hotline_media::amd`]).
    AnsweredBy {
        /// `human`, `machine` or `unknown`.
        answered_by: &'static str,
        /// The rule that decided.
        reason: &'static str,
        /// Audio time from the answer to the decision, ms.
        after_ms: u64,
    },
    /// The callee asked to be called back (the agent's
    /// `schedule_callback`).
    CallbackRequested {
        /// When, unix ms.
        at_ms: i64,
        /// The time as the agent gave it.
        when: String,
    },
    /// The callee asked never to be called again (the agent's
    /// `mark_do_not_call`).
    DoNotCall {
        /// Why, as the agent put it.
        reason: Option<String>,
    },
    /// The call ended; the last event of every call, except for the
    /// registry-wide stream of an agent call, where [`AgentResult`]
    /// follows once the call has been concluded.
    ///
    /// [`AgentResult`]: CallEvent::AgentResult
    Ended(Box<CallRecord>),
    /// What the voice agent concluded (summary, outcome, captured data),
    /// after the call ended.
    AgentResult(Box<crate::agent::service::AgentResult>),
}

/// One utterance of a call's transcript.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TranscriptLine {
    /// `caller` or `agent`.
    pub speaker: &'static str,
    /// The words (for the agent: the words the caller heard).
    pub text: String,
    /// False for a partial result that a later line replaces.
    pub is_final: bool,
    /// Start, in ms from the answer.
    pub start_ms: u64,
    /// End, in ms from the answer.
    pub end_ms: u64,
    /// The agent was cut off by the caller.
    pub interrupted: bool,
}

/// Fixed facts about a call, shared by its handle's clones.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CallInfo {
    /// The call's identifier.
    pub id: CallId,
    /// Inbound or outbound.
    pub direction: CallDirection,
    /// The caller (From user or URI).
    pub from: String,
    /// The callee (dialled number or URI).
    pub to: String,
    /// When the call task was created.
    #[serde(with = "unix_ms")]
    pub created: SystemTime,
}

/// How the control plane reaches a live call.
#[derive(Debug, Clone)]
pub struct CallHandle {
    /// The call's identifier.
    pub id: CallId,
    /// Fixed facts about the call.
    pub info: Arc<CallInfo>,
    commands: mpsc::Sender<CallCommand>,
    events: broadcast::Sender<CallEvent>,
}

/// The call task's ends of its handle's channels.
#[derive(Debug)]
pub struct CallEndpoints {
    /// Commands from the control plane.
    pub commands: mpsc::Receiver<CallCommand>,
    /// Where the task publishes events.
    pub events: broadcast::Sender<CallEvent>,
}

/// Why a command did not reach a call.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum CommandError {
    /// The call has ended.
    #[error("call has ended")]
    Ended,
    /// The call's command queue is full.
    #[error("call is busy, try again")]
    Busy,
}

impl CallHandle {
    /// A handle and the task's ends of its channels.
    pub fn new(
        id: CallId,
        direction: CallDirection,
        from: String,
        to: String,
    ) -> (CallHandle, CallEndpoints) {
        let (cmd_tx, cmd_rx) = mpsc::channel(COMMAND_QUEUE);
        let (ev_tx, _) = broadcast::channel(EVENT_BUFFER);
        let info = Arc::new(CallInfo {
            id: id.clone(),
            direction,
            from,
            to,
            created: SystemTime::now(),
        });
        (
            CallHandle {
                id,
                info,
                commands: cmd_tx,
                events: ev_tx.clone(),
            },
            CallEndpoints {
                commands: cmd_rx,
                events: ev_tx,
            },
        )
    }

    /// Queues a command without waiting.
    pub fn command(&self, cmd: CallCommand) -> Result<(), CommandError> {
        self.commands.try_send(cmd).map_err(|e| match e {
            mpsc::error::TrySendError::Full(_) => CommandError::Busy,
            mpsc::error::TrySendError::Closed(_) => CommandError::Ended,
        })
    }

    /// Subscribes to the call's events from now on.
    pub fn subscribe(&self) -> broadcast::Receiver<CallEvent> {
        self.events.subscribe()
    }
}

mod unix_ms {
    use std::time::{SystemTime, UNIX_EPOCH};

    pub fn serialize<S: serde::Serializer>(t: &SystemTime, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_u64(millis(t))
    }

    fn millis(t: &SystemTime) -> u64 {
        t.duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_millis() as u64)
    }

    pub mod option {
        use std::time::SystemTime;

        pub fn serialize<S: serde::Serializer>(
            t: &Option<SystemTime>,
            s: S,
        ) -> Result<S::Ok, S::Error> {
            match t {
                Some(t) => s.serialize_some(&super::millis(t)),
                None => s.serialize_none(),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn commands_and_events_flow_without_blocking() {
        let (handle, mut ends) = CallHandle::new(
            CallId::random(),
            CallDirection::Outbound,
            "+1".into(),
            "+2".into(),
        );
        assert!(handle.id.as_str().starts_with("call_") && handle.id.as_str().len() == 29);
        let mut events = handle.subscribe();
        handle
            .command(CallCommand::SendDtmf {
                digits: "12".into(),
            })
            .unwrap();
        assert_eq!(
            ends.commands.recv().await,
            Some(CallCommand::SendDtmf {
                digits: "12".into()
            })
        );
        for _ in 0..COMMAND_QUEUE {
            handle.command(CallCommand::Hangup).unwrap();
        }
        assert_eq!(handle.command(CallCommand::Hangup), Err(CommandError::Busy));

        ends.events.send(CallEvent::Answered).unwrap();
        assert_eq!(events.recv().await.unwrap(), CallEvent::Answered);
        // A slow subscriber loses old events instead of stalling the call.
        for _ in 0..EVENT_BUFFER + 10 {
            ends.events.send(CallEvent::Ringing).unwrap();
        }
        assert!(matches!(
            events.recv().await,
            Err(broadcast::error::RecvError::Lagged(10))
        ));

        drop(ends);
        assert_eq!(
            handle.command(CallCommand::Hangup),
            Err(CommandError::Ended)
        );
        let json = serde_json::to_value(CallEvent::Dtmf {
            digit: '5',
            source: DigitSource::Rfc4733,
        })
        .unwrap();
        assert_eq!(
            json,
            serde_json::json!({"type": "dtmf", "digit": "5", "source": "rfc4733"})
        );
    }
}
