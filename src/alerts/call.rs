//! What an alert call says and how it reports back. The call engine runs
//! it (`CallApp::Alert`) once the phone answers: the alert is spoken, then
//! the keypad prompt, up to three times, and the outcome goes back to the
//! scheduler through a one-shot channel. A call that is never answered
//! never runs it; the scheduler learns that from the call's end.

use std::sync::{Arc, Mutex};

use tokio::sync::oneshot;

use crate::agent::pipeline::GreetingCache;
use crate::agent::provider::Tts;

/// The keypad prompt.
pub const PROMPT: &str = "Press 0 to acknowledge, 1 to snooze for 5 minutes, or enter 2 to 120 \
     followed by pound to snooze that many minutes.";

/// How an answered alert call ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CallOutcome {
    /// 0 was pressed.
    Acknowledged,
    /// Snooze this many minutes.
    Snoozed(u32),
    /// The prompts went by without a valid key.
    NoKey,
}

/// Where the outcome goes: taken once.
pub type OutcomeSlot = Arc<Mutex<Option<oneshot::Sender<CallOutcome>>>>;

/// One alert call.
pub struct AlertCall {
    /// Spoken first: the alert's title and message.
    pub speech: String,
    /// The voice.
    pub tts: Arc<dyn Tts>,
    /// Synthesized prompts, shared by calls (the keypad prompt is the
    /// same on every call).
    pub cache: Arc<GreetingCache>,
    /// Where the outcome goes.
    pub outcome: OutcomeSlot,
    /// Whether the keypad prompt follows the speech. Without it (a
    /// verification code), the speech is said twice and the call ends.
    pub keypad: bool,
}

impl std::fmt::Debug for AlertCall {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AlertCall")
            .field("speech", &self.speech)
            .field("tts", &self.tts.name())
            .finish_non_exhaustive()
    }
}

impl AlertCall {
    /// A call speaking `speech`, and the receiver of its outcome.
    pub fn new(
        speech: String,
        tts: Arc<dyn Tts>,
        cache: Arc<GreetingCache>,
    ) -> (Arc<AlertCall>, oneshot::Receiver<CallOutcome>) {
        let (tx, rx) = oneshot::channel();
        let call = AlertCall {
            speech,
            tts,
            cache,
            outcome: Arc::new(Mutex::new(Some(tx))),
            keypad: true,
        };
        (Arc::new(call), rx)
    }

    /// A call that says `speech` twice and hangs up (no keypad): how a
    /// phone's verification code is read out.
    pub fn announcement(
        speech: String,
        tts: Arc<dyn Tts>,
        cache: Arc<GreetingCache>,
    ) -> (Arc<AlertCall>, oneshot::Receiver<CallOutcome>) {
        let (call, rx) = AlertCall::new(speech, tts, cache);
        let mut call = Arc::into_inner(call).expect("just made");
        call.keypad = false;
        (Arc::new(call), rx)
    }

    /// Reports the outcome (the first report wins).
    pub fn report(&self, outcome: CallOutcome) {
        let tx = self
            .outcome
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take();
        if let Some(tx) = tx {
            let _ = tx.send(outcome);
        }
    }
}

/// What a verification call says: the code digit by digit, so that it is
/// read as digits, not as a number.
pub fn code_speech(code: &str) -> String {
    let digits: Vec<String> = code.chars().map(String::from).collect();
    format!(
        "This is Hotline. Your verification code is: {}.",
        digits.join(", ")
    )
}

/// What is said for an alert: its title and, if it has one, its message.
pub fn speech(title: &str, message: Option<&str>) -> String {
    match message.map(str::trim).filter(|m| !m.is_empty()) {
        Some(m) => format!(
            "This is a Hotline alert. {}. {m}",
            title.trim().trim_end_matches('.')
        ),
        None => format!(
            "This is a Hotline alert. {}.",
            title.trim().trim_end_matches('.')
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_code_is_read_digit_by_digit() {
        assert_eq!(
            code_speech("407193"),
            "This is Hotline. Your verification code is: 4, 0, 7, 1, 9, 3."
        );
    }

    #[test]
    fn the_speech_reads_title_then_message() {
        assert_eq!(
            speech("Deploy needs approval.", Some(" Release 42 waits. ")),
            "This is a Hotline alert. Deploy needs approval. Release 42 waits."
        );
        assert_eq!(
            speech("Disk full", Some("")),
            "This is a Hotline alert. Disk full."
        );
    }
}
