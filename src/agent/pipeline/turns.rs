//! Turn-taking: who has the floor, when the caller's turn ends, when the
//! caller interrupts the agent, and when the line has been silent too long.
//!
//! Sans-IO, in the str0m style: the call task feeds it every caller frame
//! (with the VAD's decisions and the frame's level), every agent frame it
//! queues, and the agent's start and stop, each with the time, and acts on
//! the [`TurnAction`]s it returns. It never reads a clock, so tests drive it
//! through a whole conversation in microseconds.

use std::time::{Duration, Instant};

use hotline_media::vad::VadEvent;

use super::echo::EchoGuard;
use super::onset::{OnsetGate, Step};

/// How long one caller frame lasts.
const FRAME: Duration = Duration::from_millis(20);

/// A frame at least this loud (RMS of 32768, about −40 dBFS) and above
/// the expected echo counts towards a barge-in even when the VAD does not
/// call it speech: the VAD only hears voicing, and a word that starts with
/// "s" or "f" is 100 ms old before its first voiced frame.
const ONSET_RMS: f32 = 330.0;

/// Quiet frames (60 ms) a barge-in run may contain and still count from
/// its start.
const BARGE_GAP_FRAMES: u32 = 3;

/// Turn-taking settings.
#[derive(Debug, Clone, PartialEq)]
pub struct TurnConfig {
    /// Caller speech (beyond the echo guard) that interrupts the agent.
    pub barge_in_min: Duration,
    /// An utterance is cut (and its turn ends) after this long.
    pub max_utterance: Duration,
    /// Silence after the agent finished speaking before a reprompt.
    pub silence_reprompt: Duration,
    /// How far the caller must be above the expected echo, in dB.
    pub echo_margin_db: f32,
    /// With speech checks on ([`TurnManager::check_onsets`]), how long a
    /// barge-in that is due waits for Silero's answer before it goes
    /// ahead without it.
    pub confirm_timeout: Duration,
}

impl Default for TurnConfig {
    fn default() -> Self {
        TurnConfig {
            barge_in_min: Duration::from_millis(100),
            max_utterance: Duration::from_secs(30),
            silence_reprompt: Duration::from_secs(8),
            echo_margin_db: super::echo::DEFAULT_ECHO_MARGIN_DB,
            confirm_timeout: Duration::from_millis(30),
        }
    }
}

/// What the call task must do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TurnAction {
    /// The caller started speaking at `at`: open a recognition and send it
    /// the audio from `at` on.
    UtteranceStarted {
        /// When the speech started (back-dated by the VAD).
        at: Instant,
    },
    /// The caller's turn is over: close the recognition's audio.
    UtteranceEnded {
        /// When that was decided (the end-of-speech decision).
        at: Instant,
        /// True when it was cut at [`TurnConfig::max_utterance`].
        forced: bool,
    },
    /// The caller is talking over the agent: stop its audio now.
    BargeIn {
        /// When the caller's interrupting speech started.
        at: Instant,
    },
    /// Nobody has spoken for [`TurnConfig::silence_reprompt`] since the
    /// agent finished; `count` is how many times in a row.
    Silence {
        /// 1 for the first silence, 2 for the next, …
        count: u32,
    },
    /// Ask Silero whether the caller's sound over the agent is speech
    /// (only with [`TurnManager::check_onsets`]), and report the answer to
    /// [`TurnManager::speech_checked`].
    CheckSpeech {
        /// The first frame of the run.
        run: Instant,
        /// Its latest frame: the audio to judge ends there.
        upto: Instant,
    },
}

/// See the module documentation.
#[derive(Debug, Clone)]
pub struct TurnManager {
    config: TurnConfig,
    echo: EchoGuard,
    agent_speaking: bool,
    interruptible: bool,
    /// Start of the open utterance.
    utterance: Option<Instant>,
    /// Start of the current run of caller sound over the agent.
    barge_run: Option<Instant>,
    /// Whether that run has had a voiced (VAD speech) frame.
    barge_voiced: bool,
    /// Quiet frames inside the current run.
    barge_gap: u32,
    /// Silero's checks of the run, when it has a say.
    onsets: Option<OnsetGate>,
    /// Waiting for the brain: no silence timer.
    reply_pending: bool,
    /// When the silence timer started.
    quiet_since: Instant,
    silences: u32,
}

impl TurnManager {
    /// A manager for a call that starts at `now`.
    pub fn new(config: TurnConfig, now: Instant) -> Self {
        TurnManager {
            echo: EchoGuard::new(config.echo_margin_db),
            config,
            agent_speaking: false,
            interruptible: true,
            utterance: None,
            barge_run: None,
            barge_voiced: false,
            barge_gap: 0,
            onsets: None,
            reply_pending: false,
            quiet_since: now,
            silences: 0,
        }
    }

    /// One caller frame received at `at`: whether the VAD classed it as
    /// speech, its RMS level, and the VAD's utterance event if it had one.
    pub fn caller_frame(
        &mut self,
        at: Instant,
        speech: bool,
        rms: f32,
        vad: Option<VadEvent>,
        out: &mut Vec<TurnAction>,
    ) {
        // Every frame goes through the guard, speech or not: frames that
        // are not the caller teach it the line's echo level.
        let beyond_echo = self.echo.is_caller(at, rms);
        let caller = speech && beyond_echo;
        if self.agent_speaking {
            let onset = beyond_echo && rms >= ONSET_RMS;
            let active = self.interruptible && (caller || onset);
            if !active {
                // A stop consonant ("k" in "excuse") is a short silence
                // inside a word: the run survives it, as the VAD's own
                // start window does.
                self.barge_gap += 1;
                if !self.interruptible || self.barge_gap > BARGE_GAP_FRAMES {
                    self.end_run();
                }
            } else {
                self.barge_gap = 0;
                let start = *self.barge_run.get_or_insert(at);
                self.barge_voiced |= caller;
                // Most noise is never voiced: a barge-in needs both the
                // length and a voiced frame, and Silero's word when it
                // has one.
                let min = self.config.barge_in_min;
                let ready = self.barge_voiced && at + FRAME - start >= min;
                let step = match self.onsets.as_mut() {
                    Some(gate) => gate.frame(start, at, ready, min),
                    None if ready => Step::BargeIn,
                    None => Step::Wait,
                };
                self.act(start, step, out);
            }
        }
        match vad {
            // While the agent talks, the VAD cannot tell the caller from
            // the agent's echo; only a barge-in (echo-guarded) opens an
            // utterance then.
            Some(VadEvent::SpeechStart { latency, .. })
                if !self.agent_speaking && self.utterance.is_none() =>
            {
                let start = (at + FRAME).checked_sub(latency).unwrap_or(at);
                self.open(start, out);
            }
            Some(VadEvent::SpeechEnd { .. }) if self.utterance.is_some() => {
                self.close(at, false, out);
            }
            _ => {}
        }
        if let Some(start) = self.utterance
            && at + FRAME - start >= self.config.max_utterance
        {
            self.close(at, true, out);
        }
    }

    /// Has every barge-in run checked by Silero ([`TurnAction::CheckSpeech`])
    /// before it may interrupt the agent.
    pub fn check_onsets(&mut self) {
        self.onsets = Some(OnsetGate::new(self.config.confirm_timeout));
    }

    /// Silero's answer to [`TurnAction::CheckSpeech`] `{ run, upto }`:
    /// `Some(true)` if it heard speech, `None` if the check failed; `now`
    /// is when it came.
    pub fn speech_checked(
        &mut self,
        run: Instant,
        upto: Instant,
        heard: Option<bool>,
        now: Instant,
        out: &mut Vec<TurnAction>,
    ) {
        let Some(gate) = self.onsets.as_mut() else {
            return;
        };
        if !self.agent_speaking || self.barge_run != Some(run) {
            return;
        }
        let step = gate.checked(run, upto, heard, now);
        self.act(run, step, out);
    }

    /// Timers of the barge-in checks: call at (or after)
    /// [`next_deadline`](Self::next_deadline), with [`poll`](Self::poll).
    pub fn poll_onsets(&mut self, now: Instant, out: &mut Vec<TurnAction>) {
        let (Some(gate), Some(run)) = (self.onsets.as_mut(), self.barge_run) else {
            return;
        };
        let step = gate.poll(now);
        self.act(run, step, out);
    }

    fn act(&mut self, start: Instant, step: Step, out: &mut Vec<TurnAction>) {
        match step {
            Step::BargeIn => {
                self.end_run();
                self.agent_speaking = false;
                out.push(TurnAction::BargeIn { at: start });
                if self.utterance.is_none() {
                    self.open(start, out);
                }
            }
            Step::Check(upto) => out.push(TurnAction::CheckSpeech { run: start, upto }),
            Step::Wait => {}
        }
    }

    fn end_run(&mut self) {
        self.barge_run = None;
        self.barge_voiced = false;
        if let Some(gate) = self.onsets.as_mut() {
            gate.reset();
        }
    }

    /// An agent frame of level `rms` queued to play at `plays_at`.
    pub fn agent_frame(&mut self, plays_at: Instant, rms: f32) {
        self.echo.agent_frame(plays_at, rms);
    }

    /// The agent started speaking; `interruptible` is false for a greeting
    /// that must be heard out.
    pub fn agent_started(&mut self, interruptible: bool) {
        self.agent_speaking = true;
        self.interruptible = interruptible;
        self.end_run();
    }

    /// The agent's audio finished playing at `at` (not interrupted).
    pub fn agent_finished(&mut self, at: Instant) {
        self.agent_speaking = false;
        self.end_run();
        self.quiet_since = at;
    }

    /// Whether the agent has the floor.
    pub fn agent_speaking(&self) -> bool {
        self.agent_speaking
    }

    /// Whether the caller's utterance is open.
    pub fn caller_speaking(&self) -> bool {
        self.utterance.is_some()
    }

    /// The brain is (or is no longer) working on a reply: silence then is
    /// the agent's, not the caller's.
    pub fn set_reply_pending(&mut self, pending: bool, now: Instant) {
        self.reply_pending = pending;
        if !pending {
            self.quiet_since = now;
        }
    }

    /// When [`poll`](Self::poll) or [`poll_onsets`](Self::poll_onsets)
    /// next has something to say.
    pub fn next_deadline(&self) -> Option<Instant> {
        let onset = self.onsets.as_ref().and_then(OnsetGate::deadline);
        match (self.silence_deadline(), onset) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    fn silence_deadline(&self) -> Option<Instant> {
        self.silence_clock_running()
            .then(|| self.quiet_since + self.config.silence_reprompt)
    }

    /// The silence timer: call at (or after)
    /// [`next_deadline`](Self::next_deadline).
    pub fn poll(&mut self, now: Instant) -> Option<TurnAction> {
        let deadline = self.silence_deadline()?;
        if now < deadline {
            return None;
        }
        self.silences += 1;
        self.quiet_since = now;
        Some(TurnAction::Silence {
            count: self.silences,
        })
    }

    /// The echo guard's current estimate of the line's echo gain.
    pub fn echo_gain(&self) -> f32 {
        self.echo.gain()
    }

    fn silence_clock_running(&self) -> bool {
        !self.agent_speaking && self.utterance.is_none() && !self.reply_pending
    }

    fn open(&mut self, at: Instant, out: &mut Vec<TurnAction>) {
        self.utterance = Some(at);
        self.silences = 0;
        out.push(TurnAction::UtteranceStarted { at });
    }

    fn close(&mut self, at: Instant, forced: bool, out: &mut Vec<TurnAction>) {
        self.utterance = None;
        self.quiet_since = at;
        out.push(TurnAction::UtteranceEnded { at, forced });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Line {
        tm: TurnManager,
        t0: Instant,
        frame: u32,
        actions: Vec<(u32, TurnAction)>,
    }

    impl Line {
        fn new() -> Self {
            let t0 = Instant::now();
            Line {
                tm: TurnManager::new(TurnConfig::default(), t0),
                t0,
                frame: 0,
                actions: vec![],
            }
        }

        fn now(&self) -> Instant {
            self.t0 + FRAME * self.frame
        }

        /// `n` frames; the agent sends `agent_rms` (0: silent) and the
        /// caller's side carries `caller_rms` with `speech` per the VAD.
        fn frames(&mut self, n: u32, agent_rms: f32, caller_rms: f32, speech: bool) {
            for _ in 0..n {
                self.step(agent_rms, caller_rms, speech, None);
            }
        }

        fn step(&mut self, agent_rms: f32, caller_rms: f32, speech: bool, vad: Option<VadEvent>) {
            let now = self.now();
            if agent_rms > 0.0 {
                self.tm.agent_frame(now, agent_rms);
            }
            let mut out = vec![];
            self.tm.caller_frame(now, speech, caller_rms, vad, &mut out);
            if let Some(a) = self.tm.poll(now) {
                out.push(a);
            }
            self.actions
                .extend(out.into_iter().map(|a| (self.frame, a)));
            self.frame += 1;
        }

        /// Silero answers the check asked on the last frame, 2 ms later.
        fn answer(&mut self, heard: Option<bool>) {
            let Some((frame, TurnAction::CheckSpeech { run, upto })) = self.actions.last().copied()
            else {
                return;
            };
            if frame + 1 != self.frame {
                return;
            }
            let mut out = vec![];
            let now = upto + Duration::from_millis(2);
            self.tm.speech_checked(run, upto, heard, now, &mut out);
            self.actions.extend(out.into_iter().map(|a| (frame, a)));
        }

        fn kinds(&self) -> Vec<&'static str> {
            self.actions
                .iter()
                .map(|(_, a)| match a {
                    TurnAction::UtteranceStarted { .. } => "start",
                    TurnAction::UtteranceEnded { forced: false, .. } => "end",
                    TurnAction::UtteranceEnded { forced: true, .. } => "cut",
                    TurnAction::BargeIn { .. } => "barge",
                    TurnAction::Silence { .. } => "silence",
                    TurnAction::CheckSpeech { .. } => "check",
                })
                .collect()
        }
    }

    fn start(latency_ms: u64) -> Option<VadEvent> {
        Some(VadEvent::SpeechStart {
            at: Duration::ZERO,
            latency: Duration::from_millis(latency_ms),
        })
    }

    fn end() -> Option<VadEvent> {
        Some(VadEvent::SpeechEnd {
            at: Duration::ZERO,
            latency: Duration::ZERO,
        })
    }

    #[test]
    fn a_caller_turn_opens_back_dated_and_closes_on_the_vads_end() {
        let mut l = Line::new();
        l.frames(10, 0.0, 50.0, false);
        l.frames(9, 0.0, 3000.0, true);
        l.step(0.0, 3000.0, true, start(200));
        l.frames(30, 0.0, 50.0, false);
        l.step(0.0, 50.0, false, end());
        assert_eq!(l.kinds(), ["start", "end"]);
        // Frame 19 confirmed the start 200 ms after it began: frame 10.
        assert_eq!(
            l.actions[0].1,
            TurnAction::UtteranceStarted {
                at: l.t0 + FRAME * 10
            }
        );
    }

    #[test]
    fn the_caller_interrupts_the_agent_after_the_minimum() {
        let mut l = Line::new();
        l.tm.agent_started(true);
        l.frames(50, 6000.0, 20.0, false);
        let speech_from = l.frame;
        l.frames(10, 6000.0, 5000.0, true);
        assert_eq!(l.kinds(), ["barge", "start"]);
        let (frame, action) = l.actions[0];
        // 100 ms of speech: the fifth frame decides.
        assert_eq!(frame, speech_from + 4);
        assert_eq!(
            action,
            TurnAction::BargeIn {
                at: l.t0 + FRAME * speech_from
            }
        );
        assert!(!l.tm.agent_speaking());
        assert!(l.tm.caller_speaking());
    }

    #[test]
    fn a_short_stop_inside_a_word_does_not_restart_the_count() {
        let mut l = Line::new();
        l.tm.agent_started(true);
        l.frames(50, 6000.0, 20.0, false);
        let speech_from = l.frame;
        // "Ex" - 40 ms of closure - "cuse".
        l.frames(2, 6000.0, 5000.0, true);
        l.frames(2, 6000.0, 20.0, false);
        l.frames(10, 6000.0, 5000.0, true);
        let (frame, action) = l.actions[0];
        assert_eq!(
            action,
            TurnAction::BargeIn {
                at: l.t0 + FRAME * speech_from
            }
        );
        assert_eq!(frame, speech_from + 4);
        // A longer pause does restart it.
        let mut l = Line::new();
        l.tm.agent_started(true);
        l.frames(50, 6000.0, 20.0, false);
        l.frames(2, 6000.0, 5000.0, true);
        l.frames(5, 6000.0, 20.0, false);
        let again = l.frame;
        l.frames(10, 6000.0, 5000.0, true);
        assert_eq!(
            l.actions[0].1,
            TurnAction::BargeIn {
                at: l.t0 + FRAME * again
            }
        );
    }

    #[test]
    fn with_speech_checks_noise_is_held_and_speech_is_not_delayed() {
        let mut l = Line::new();
        l.tm.check_onsets();
        l.tm.agent_started(true);
        l.frames(50, 6000.0, 20.0, false);
        // A door slam: loud, and voiced to the VAD; Silero hears no speech
        // in it however long it lasts.
        for _ in 0..15 {
            l.step(6000.0, 9000.0, true, None);
            l.answer(Some(false));
        }
        assert!(l.kinds().iter().all(|k| *k == "check"), "{:?}", l.kinds());
        assert_eq!(l.kinds().len(), 13);
        assert!(l.tm.agent_speaking());
        assert!(!l.tm.caller_speaking());
        l.frames(5, 6000.0, 20.0, false);
        l.actions.clear();
        // Speech: heard by the first check, so the barge-in comes on the
        // frame that completes 100 ms, as without Silero.
        let speech_from = l.frame;
        for _ in 0..6 {
            l.step(6000.0, 5000.0, true, None);
            l.answer(Some(true));
        }
        assert_eq!(l.kinds(), ["check", "barge", "start"]);
        assert_eq!(
            l.actions[1],
            (
                speech_from + 4,
                TurnAction::BargeIn {
                    at: l.t0 + FRAME * speech_from
                }
            )
        );
    }

    #[test]
    fn a_check_that_does_not_answer_in_time_lets_the_barge_in_through() {
        let mut l = Line::new();
        l.tm.check_onsets();
        l.tm.agent_started(true);
        l.frames(50, 6000.0, 20.0, false);
        let speech_from = l.frame;
        // Silero never answers.
        l.frames(5, 6000.0, 5000.0, true);
        assert_eq!(l.kinds(), ["check"]);
        let due = l.t0 + FRAME * (speech_from + 4);
        assert_eq!(l.tm.next_deadline(), Some(due + Duration::from_millis(30)));
        let mut out = vec![];
        l.tm.poll_onsets(due + Duration::from_millis(29), &mut out);
        assert!(out.is_empty());
        l.tm.poll_onsets(due + Duration::from_millis(30), &mut out);
        assert_eq!(
            out,
            [
                TurnAction::BargeIn {
                    at: l.t0 + FRAME * speech_from
                },
                TurnAction::UtteranceStarted {
                    at: l.t0 + FRAME * speech_from
                }
            ]
        );
        assert!(!l.tm.agent_speaking());
        assert_eq!(l.tm.next_deadline(), None);
    }

    #[test]
    fn the_agents_own_echo_never_interrupts_it() {
        let mut l = Line::new();
        l.tm.agent_started(true);
        // The line returns the agent's audio at -10 dB, 100 ms later, and
        // the VAD takes it for speech (it is speech) and even starts an
        // utterance.
        let mut levels = std::collections::VecDeque::from(vec![0.0; 5]);
        for i in 0..500 {
            let agent = if (i / 25) % 2 == 0 { 6000.0 } else { 300.0 };
            levels.push_back(agent);
            let echoed = levels.pop_front().unwrap() * 0.316;
            let vad = (i == 30).then(|| start(200)).flatten();
            l.step(agent, echoed, echoed > 500.0, vad);
        }
        assert!(l.kinds().is_empty(), "{:?}", l.kinds());
        assert!(l.tm.agent_speaking());
    }

    #[test]
    fn a_greeting_that_must_be_heard_out_is_not_interrupted() {
        let mut l = Line::new();
        l.tm.agent_started(false);
        l.frames(50, 6000.0, 9000.0, true);
        assert!(l.kinds().is_empty());
        l.tm.agent_finished(l.now());
        l.step(0.0, 9000.0, true, start(200));
        assert_eq!(l.kinds(), ["start"]);
    }

    #[test]
    fn silence_after_the_agent_reprompts_and_counts() {
        let mut l = Line::new();
        l.tm.agent_started(true);
        l.frames(10, 6000.0, 10.0, false);
        l.tm.agent_finished(l.now());
        let finished = l.frame;
        l.frames(401, 0.0, 10.0, false);
        assert_eq!(l.kinds(), ["silence"]);
        // 8 s = 400 frames after the agent finished.
        assert_eq!(l.actions[0].0, finished + 400);
        l.tm.agent_started(true);
        l.frames(10, 6000.0, 10.0, false);
        l.tm.agent_finished(l.now());
        l.frames(401, 0.0, 10.0, false);
        assert_eq!(l.actions[1].1, TurnAction::Silence { count: 2 });
        // Speech resets the count.
        l.step(0.0, 3000.0, true, start(200));
        l.step(0.0, 30.0, false, end());
        l.frames(401, 0.0, 10.0, false);
        assert_eq!(
            l.actions.last().unwrap().1,
            TurnAction::Silence { count: 1 }
        );
    }

    #[test]
    fn no_silence_timer_while_the_brain_thinks() {
        let mut l = Line::new();
        l.tm.set_reply_pending(true, l.now());
        l.frames(1000, 0.0, 10.0, false);
        assert!(l.kinds().is_empty());
        assert_eq!(l.tm.next_deadline(), None);
    }

    #[test]
    fn a_monologue_is_cut_at_the_maximum() {
        let mut l = Line::new();
        l.step(0.0, 3000.0, true, start(0));
        l.frames(1600, 0.0, 3000.0, true);
        assert_eq!(l.kinds(), ["start", "cut"]);
        // Confirmed with no latency at the end of frame 0; cut 30 s later.
        assert_eq!(l.actions[1].0, 1500);
    }
}
