//! The alert call as a call application: speak the alert, then the keypad
//! prompt (up to three times), act on the keys, confirm, hang up, and
//! report the outcome ([`crate::alerts::call`]). Keys interrupt the
//! speech; they arrive as RFC 4733 events, SIP INFO or in-band tones alike
//! (the call merges them into `CallEvent::Dtmf`).

use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::broadcast;
use tracing::{info, warn};

use super::app::AppIo;
use crate::agent::pipeline::Greeting;
use crate::alerts::call::{AlertCall, CallOutcome, PROMPT};
use crate::alerts::keypad::{Decision, Keypad};
use crate::call::{CallCommand, CallEvent};
use crate::rtp::PTIME;

/// Prompts said before giving up.
const ROUNDS: usize = 3;
/// Time for a key after each prompt.
const KEY_WAIT: Duration = Duration::from_secs(6);
/// Between the two readings of an announcement.
const PAUSE: Duration = Duration::from_secs(1);

/// How a stretch of the call ended.
enum Heard {
    /// The audio played (or the wait ran out) with no decision.
    Nothing,
    /// The keys decided.
    Decided(Decision),
    /// A number is being keyed: stop talking, keep listening.
    Keying,
    /// The call is over.
    Gone,
}

/// Runs the alert call until it is decided or the prompts run out.
pub(crate) async fn run(call: Arc<AlertCall>, mut io: AppIo) {
    let id = io.handle.id.clone();
    // The caller's audio is not used; drained so the session counts no
    // drops.
    let mut pcm = std::mem::replace(&mut io.pcm, tokio::sync::mpsc::channel(1).1);
    tokio::spawn(async move { while pcm.recv().await.is_some() {} });
    let (Some(speech), Some(prompt)) =
        (synth(&call, &call.speech).await, synth(&call, PROMPT).await)
    else {
        warn!(call = %id, "alert: cannot synthesize the alert; hanging up");
        call.report(CallOutcome::NoKey);
        let _ = io.handle.command(CallCommand::Hangup);
        return;
    };
    if !call.keypad {
        announce(&call, &mut io, &speech).await;
        return;
    }
    let mut keypad = Keypad::new();
    let mut decision = None;
    'rounds: for round in 0..ROUNDS {
        let clips: &[&Greeting] = if round == 0 {
            &[&speech, &prompt]
        } else {
            &[&prompt]
        };
        for clip in clips {
            match say(&mut io, clip, &mut keypad).await {
                Heard::Nothing | Heard::Keying => {}
                Heard::Decided(d) => {
                    decision = Some(d);
                    break 'rounds;
                }
                Heard::Gone => {
                    call.report(CallOutcome::NoKey);
                    return;
                }
            }
        }
        match listen(&mut io.events, &mut keypad, Instant::now() + KEY_WAIT).await {
            Heard::Nothing | Heard::Keying => {}
            Heard::Decided(d) => {
                decision = Some(d);
                if d != Decision::Invalid {
                    break 'rounds;
                }
            }
            Heard::Gone => {
                call.report(CallOutcome::NoKey);
                return;
            }
        }
        if decision == Some(Decision::Invalid) {
            // Said before the next prompt.
            decision = None;
            if let Some(sorry) = synth(&call, "Sorry, that is not a valid choice.").await {
                let _ = say(&mut io, &sorry, &mut Keypad::new()).await;
            }
        }
    }
    let (outcome, words) = match decision {
        Some(Decision::Acknowledge) => (
            CallOutcome::Acknowledged,
            "The alert is acknowledged. Goodbye.".to_owned(),
        ),
        Some(Decision::Snooze(m)) => (
            CallOutcome::Snoozed(m),
            format!(
                "Snoozed. I will call again in {m} minute{}. Goodbye.",
                if m == 1 { "" } else { "s" }
            ),
        ),
        _ => (CallOutcome::NoKey, "Goodbye.".to_owned()),
    };
    info!(call = %id, ?outcome, "alert call decided");
    // Reported before the goodbye: the caller may hang up during it.
    call.report(outcome);
    if let Some(bye) = synth(&call, &words).await {
        let _ = say(&mut io, &bye, &mut Keypad::new()).await;
    }
    let _ = io.handle.command(CallCommand::Hangup);
}

/// Says `speech` twice, a pause between, and hangs up: keys are ignored.
async fn announce(call: &AlertCall, io: &mut AppIo, speech: &Greeting) {
    let mut deaf = Keypad::new();
    for round in 0..2 {
        if round > 0
            && matches!(
                listen(&mut io.events, &mut deaf, Instant::now() + PAUSE).await,
                Heard::Gone
            )
        {
            break;
        }
        if matches!(say(io, speech, &mut deaf).await, Heard::Gone) {
            break;
        }
    }
    call.report(CallOutcome::NoKey);
    if let Some(bye) = synth(call, "Goodbye.").await {
        let _ = say(io, &bye, &mut Keypad::new()).await;
    }
    let _ = io.handle.command(CallCommand::Hangup);
}

async fn synth(call: &AlertCall, text: &str) -> Option<Greeting> {
    match call.cache.warm(call.tts.as_ref(), None, None, text).await {
        Ok(frames) => Some(frames),
        Err(e) => {
            warn!(error = %e, "alert: speech synthesis failed");
            None
        }
    }
}

/// Plays `clip` while listening for keys; a key stops the clip.
async fn say(io: &mut AppIo, clip: &Greeting, keypad: &mut Keypad) -> Heard {
    // The session queues up to a second ahead, so the clip has played one
    // clip-length after its first frame was queued.
    let played_out = Instant::now() + PTIME * clip.len() as u32;
    for frame in clip.iter() {
        tokio::select! {
            biased;
            heard = next_key(&mut io.events, keypad) => {
                let _ = io.media.flush_with_fade().await;
                return match heard {
                    // The rest of the number comes while we are quiet.
                    Heard::Keying => listen(&mut io.events, keypad, Instant::now()).await,
                    other => other,
                };
            }
            sent = io.media.play(frame.clone()) => if sent.is_err() { return Heard::Gone },
        }
    }
    match listen(&mut io.events, keypad, played_out).await {
        Heard::Nothing | Heard::Keying => Heard::Nothing,
        // Keys while the tail played: the clip stops.
        other => {
            let _ = io.media.flush_with_fade().await;
            other
        }
    }
}

/// Listens for keys until `until`, or longer while a number is being
/// keyed.
async fn listen(
    events: &mut broadcast::Receiver<CallEvent>,
    keypad: &mut Keypad,
    until: Instant,
) -> Heard {
    loop {
        let wake = match keypad.deadline() {
            Some(d) => d.max(until),
            None => until,
        };
        tokio::select! {
            heard = next_key(events, keypad) => match heard {
                Heard::Keying => {}
                other => return other,
            },
            () = tokio::time::sleep_until(wake.into()) => {
                if let Some(d) = keypad.poll(Instant::now()) {
                    return Heard::Decided(d);
                }
                if !keypad.pending() && Instant::now() >= until {
                    return Heard::Nothing;
                }
            }
        }
    }
}

/// The next key: a decision, or the start of a number.
async fn next_key(events: &mut broadcast::Receiver<CallEvent>, keypad: &mut Keypad) -> Heard {
    loop {
        match events.recv().await {
            Ok(CallEvent::Dtmf { digit, .. }) => {
                return match keypad.key(digit, Instant::now()) {
                    Some(d) => Heard::Decided(d),
                    None => Heard::Keying,
                };
            }
            Ok(CallEvent::Ended(_)) | Err(broadcast::error::RecvError::Closed) => {
                return Heard::Gone;
            }
            _ => {}
        }
    }
}
