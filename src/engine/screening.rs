//! Voicemail screening for outbound agent calls placed with
//! `on_voicemail`: before the agent says a word, answering-machine
//! detection ([`hotline_media::amd`]) listens to whoever picked up.
//!
//! - A person (or no verdict: `unknown`): the agent starts as usual, a
//!   couple of seconds late, and the callee's "Hello?" is not in its
//!   transcript.
//! - A machine: `hang_up` ends the call at once; `leave_message` waits for
//!   the beep (or for the greeting to go quiet), says `voicemail_message`
//!   in the agent's voice, and hangs up. The agent never runs, and the
//!   call's outcome is `voicemail`.
//!
//! The verdict is published as [`CallEvent::AnsweredBy`] either way.

use std::time::Duration;

use hotline_media::amd::{Amd, AmdConfig, AmdEvent, Verdict};
use serde::{Deserialize, Serialize};
use serde_json::json;
use tokio::sync::{broadcast, mpsc};
use tracing::{info, warn};

use super::Ctx;
use super::announce::{self, Announcement};
use super::app::ended;
use crate::agent::service::AgentResult;
use crate::call::{CallEvent, TranscriptLine};
use crate::rtp::{MediaHandle, PCM_RATE};

/// The longest the detector may listen before the agent starts anyway.
const MAX_SCREEN: Duration = Duration::from_secs(8);

/// What to do when a machine answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum OnVoicemail {
    /// Wait for the beep, say `voicemail_message`, hang up.
    LeaveMessage,
    /// Hang up at once.
    HangUp,
    /// Hang up at once and try again later under the call's retry policy
    /// (three attempts in all when it has none).
    Retry,
}

/// A call's screening: what to do on a machine, and what to say.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VoicemailPlan {
    /// On a machine.
    pub on_voicemail: OnVoicemail,
    /// Said after the beep (`leave_message`).
    pub message: Option<String>,
    /// The agent's voice and language for it.
    pub voice: Option<String>,
    /// The agent's language.
    pub language: Option<String>,
}

/// How the screening ended.
#[derive(Debug)]
pub(crate) enum Screened {
    /// A person, or no verdict: the agent runs.
    Agent,
    /// A machine: handled; this is the call's conclusion.
    Machine(Box<AgentResult>),
    /// The call ended while screening.
    Ended,
}

/// What the call's task gives the screening.
pub(crate) struct Line<'a> {
    pub ctx: &'a Ctx,
    pub call_id: &'a str,
    pub frames: &'a mut mpsc::Receiver<Vec<i16>>,
    pub events: &'a mut broadcast::Receiver<CallEvent>,
    pub media: &'a MediaHandle,
    pub publish: &'a (dyn Fn(CallEvent) + Sync),
}

/// Screens the answered call; see the module documentation.
pub(crate) async fn screen(line: Line<'_>, plan: &VoicemailPlan) -> Screened {
    let mut amd = match Amd::new(AmdConfig::new(PCM_RATE)) {
        Ok(a) => a,
        Err(e) => {
            warn!(call = line.call_id, error = %e, "screening: no detector; the agent starts");
            return Screened::Agent;
        }
    };
    let mut found = Vec::new();
    let deadline = tokio::time::Instant::now() + MAX_SCREEN;
    // The verdict.
    let decision = loop {
        if let Some(d) = found.iter().find_map(|e| match e {
            AmdEvent::Decided(d) => Some(*d),
            _ => None,
        }) {
            break d;
        }
        tokio::select! {
            frame = line.frames.recv() => match frame {
                Some(f) => amd.push(&f, &mut found),
                None => return Screened::Ended,
            },
            ev = line.events.recv() => if ended(&ev) { return Screened::Ended },
            () = tokio::time::sleep_until(deadline) => {
                warn!(call = line.call_id, "screening: no verdict in time; the agent starts");
                return Screened::Agent;
            }
        }
    };
    let answered_by = decision.verdict.as_str();
    info!(
        call = line.call_id,
        answered_by,
        reason = decision.reason,
        after_ms = decision.at.as_millis() as u64,
        "screening: verdict"
    );
    (line.publish)(CallEvent::AnsweredBy {
        answered_by,
        reason: decision.reason,
        after_ms: decision.at.as_millis() as u64,
    });
    if decision.verdict != Verdict::Machine {
        return Screened::Agent;
    }
    let mut result = AgentResult {
        outcome: Some("voicemail".into()),
        ..AgentResult::default()
    };
    let text = match (plan.on_voicemail, &plan.message) {
        (OnVoicemail::LeaveMessage, Some(m)) => m.clone(),
        _ => {
            result.structured_data =
                Some(json!({"answered_by": "machine", "voicemail_left": false}));
            return Screened::Machine(Box::new(result));
        }
    };
    // The beep, or the greeting going quiet; a machine that does neither
    // within the window gets the message all the same.
    let window = tokio::time::Instant::now() + Duration::from_secs(30);
    let beeped = loop {
        if found.iter().any(|e| matches!(e, AmdEvent::Beep { .. })) {
            break true;
        }
        if found
            .iter()
            .any(|e| matches!(e, AmdEvent::GreetingEnded { .. }))
            || amd.done()
        {
            break false;
        }
        tokio::select! {
            frame = line.frames.recv() => match frame {
                Some(f) => amd.push(&f, &mut found),
                None => return Screened::Ended,
            },
            ev = line.events.recv() => if ended(&ev) { return Screened::Ended },
            () = tokio::time::sleep_until(window) => break false,
        }
    };
    let frames = announce::message(
        line.ctx,
        &Announcement {
            text: Some(text.clone()),
            voice: plan.voice.clone(),
            language: plan.language.clone(),
            ..Announcement::default()
        },
    )
    .await;
    let played_ms = frames.len() as u64 * 20;
    if !announce::say(line.media, line.events, &frames).await {
        return Screened::Ended;
    }
    (line.publish)(CallEvent::Transcript(TranscriptLine {
        speaker: "agent",
        text,
        is_final: true,
        start_ms: 0,
        end_ms: played_ms,
        interrupted: false,
    }));
    info!(
        call = line.call_id,
        beeped, "screening: voicemail message left"
    );
    result.structured_data = Some(json!({
        "answered_by": "machine", "voicemail_left": true, "beep_heard": beeped,
    }));
    Screened::Machine(Box::new(result))
}
