//! Silero's say on a barge-in: loud sound over the agent (a door, a
//! cough, a dog, a knock on the handset) passes the energy VAD and the
//! echo guard, and would stop the agent mid-sentence. Before the turn
//! manager lets such a run interrupt, it asks Silero whether it heard any
//! speech in it.
//!
//! Asking costs no time on a real barge-in: the run is checked while it
//! grows (from its third frame, one check at a time, each about a
//! millisecond of CPU), so by the frame that completes
//! [`TurnConfig::barge_in_min`](super::turns::TurnConfig::barge_in_min)
//! the answer is usually in. When it is not, the barge-in waits for it,
//! but never longer than [`TurnConfig::confirm_timeout`](super::turns::TurnConfig::confirm_timeout):
//! a slow or failed check falls back to interrupting, as without Silero.
//!
//! Silero vetoes rather than confirms. Measured on espeak-ng speech and
//! synthetic noise (a door slam, a cough, barks, white noise, a buzzer;
//! 32 ms windows, the run plus 40 ms before it): 80–100 ms into a word,
//! Silero gives at least one window ≥ 0.5 for nearly every onset, but an
//! /s/ scores like noise (0.01–0.15) until the vowel ("Sorry" 0.44 at
//! 100 ms), while the door slam, cough, barks and white noise stayed at or
//! below 0.10 (the buzzer reached 0.35 and music 0.6: they are not kept
//! out). So a run in which no window of its own reaches [`HEARD`] (0.3) is
//! held, and checked again on every new frame; the first window that
//! reaches it lets the barge-in through. A word that opens with a long
//! /s/ or /f/ may still stop the agent a frame later than without Silero.
//!
//! Sans-IO: [`OnsetGate`] takes times and answers as arguments; the call
//! task runs the checks. [`onset_audio`] and [`heard_speech`] turn the
//! caller's recent frames into Silero's input and its probabilities into
//! the answer.

use std::time::{Duration, Instant};

use crate::agent::silero::WINDOW;
use crate::rtp::FRAME_SAMPLES;

/// How long one caller frame lasts.
const FRAME: Duration = Duration::from_millis(20);

/// A run is first checked once it is this long: shorter, it has no whole
/// 32 ms window of its own.
const FIRST_CHECK: Duration = Duration::from_millis(60);

/// Caller frames before the run that go to Silero with it: the network
/// keeps state from window to window and judges an onset better with a
/// little of what came before (the answer still comes from the run's own
/// windows only).
pub const LEAD_FRAMES: usize = 2;

/// A window of the run this likely to be speech lets the barge-in
/// through. Below Silero's usual 0.5: the barge-in must not wait for the
/// vowel after an /s/ ("Sorry" gave 0.44 at 100 ms, and 0.97 a frame
/// later), while the door slam, cough, barks and white noise measured
/// stayed at or below 0.10.
pub const HEARD: f32 = 0.3;

/// The most audio one check takes (10 windows); a long run is judged on
/// its latest part.
pub const MAX_CHECK: Duration = Duration::from_millis(320);

/// What the turn manager does with a frame of a barge-in run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    /// Interrupt the agent now.
    BargeIn,
    /// Ask Silero about the run up to (and including) the frame at this
    /// time.
    Check(Instant),
    /// Nothing yet.
    Wait,
}

/// The Silero checks of the current barge-in run. See the module
/// documentation.
#[derive(Debug, Clone)]
pub struct OnsetGate {
    timeout: Duration,
    /// Start of the run being judged.
    run: Option<Instant>,
    /// Silero heard speech in it (or could not say: a failed check lets
    /// the barge-in through, as if there were no Silero).
    passed: bool,
    /// When the check in flight was asked.
    asked: Option<Instant>,
    /// The latest frame a finished check covered.
    checked_to: Option<Instant>,
    /// The run's latest frame.
    last_frame: Option<Instant>,
    /// When the run became long and voiced enough to interrupt.
    due: Option<Instant>,
}

impl OnsetGate {
    /// A gate that waits at most `timeout` for a check once a barge-in is
    /// due.
    pub fn new(timeout: Duration) -> Self {
        OnsetGate {
            timeout,
            run: None,
            passed: false,
            asked: None,
            checked_to: None,
            last_frame: None,
            due: None,
        }
    }

    /// Forgets the run (it ended, or the agent stopped).
    pub fn reset(&mut self) {
        *self = OnsetGate::new(self.timeout);
    }

    /// A frame at `at` of the run that started at `run`; `ready` when the
    /// run is long and voiced enough to interrupt the agent.
    pub fn frame(&mut self, run: Instant, at: Instant, ready: bool, min: Duration) -> Step {
        if self.run != Some(run) {
            self.reset();
            self.run = Some(run);
        }
        self.last_frame = Some(at);
        if ready && self.passed {
            return Step::BargeIn;
        }
        if ready && self.due.is_none() {
            self.due = Some(at);
        }
        let long_enough = at + FRAME - run >= FIRST_CHECK.min(min);
        if !self.passed
            && self.asked.is_none()
            && long_enough
            && self.checked_to.is_none_or(|c| c < at)
        {
            self.asked = Some(at);
            return Step::Check(at);
        }
        Step::Wait
    }

    /// The answer to the check of run `run` up to `upto`: `Some(true)` if
    /// Silero heard speech, `None` if the check failed. `now` is when it
    /// came.
    pub fn checked(
        &mut self,
        run: Instant,
        upto: Instant,
        heard: Option<bool>,
        now: Instant,
    ) -> Step {
        if self.run != Some(run) || self.asked.is_none() {
            // An answer about a run that is over.
            return Step::Wait;
        }
        self.asked = None;
        self.checked_to = Some(upto);
        if heard != Some(false) {
            self.passed = true;
        }
        if self.due.is_some() && self.passed {
            return Step::BargeIn;
        }
        match self.last_frame {
            // The run has grown since: judge the newer audio.
            Some(last) if last > upto && !self.passed => {
                self.asked = Some(now);
                Step::Check(last)
            }
            _ => Step::Wait,
        }
    }

    /// When a due barge-in stops waiting for its check.
    pub fn deadline(&self) -> Option<Instant> {
        let due = self.due?;
        let asked = self.asked?;
        Some(due.max(asked) + self.timeout)
    }

    /// Timers: a check that has not answered by [`deadline`](Self::deadline)
    /// lets the barge-in through.
    pub fn poll(&mut self, now: Instant) -> Step {
        match self.deadline() {
            Some(d) if now >= d => {
                self.passed = true;
                self.asked = None;
                Step::BargeIn
            }
            _ => Step::Wait,
        }
    }
}

/// Silero's input for a check: the caller's frames (receipt time, 20 ms
/// of 16 kHz PCM; each covers the 20 ms before its time) from
/// [`LEAD_FRAMES`] before the run's first frame `run` up to the frame at
/// `upto`, at most [`MAX_CHECK`] of it, cut at the front to whole Silero
/// windows so that the last window ends with the newest sample. Returns the
/// samples and where the run starts in them.
pub fn onset_audio<'a, T: Copy + Ord + 'a>(
    frames: impl IntoIterator<Item = (T, &'a [i16])>,
    run: T,
    upto: T,
) -> (Vec<i16>, usize) {
    let picked: Vec<(T, &[i16])> = frames.into_iter().filter(|(t, _)| *t <= upto).collect();
    let first_run = picked
        .iter()
        .position(|(t, _)| *t >= run)
        .unwrap_or(picked.len());
    let max_frames = (MAX_CHECK.as_millis() / FRAME.as_millis()) as usize;
    let from = first_run
        .saturating_sub(LEAD_FRAMES)
        .max(picked.len().saturating_sub(max_frames));
    let mut samples = Vec::with_capacity((picked.len() - from) * FRAME_SAMPLES);
    let mut run_at = 0;
    for (i, (_, f)) in picked.iter().enumerate().skip(from) {
        if i == first_run {
            run_at = samples.len();
        }
        samples.extend_from_slice(f);
    }
    if first_run >= picked.len() {
        run_at = samples.len();
    }
    let cut = samples.len() % WINDOW;
    samples.drain(..cut);
    (samples, run_at.saturating_sub(cut))
}

/// Whether Silero heard speech in the run: one of the windows that lie
/// mostly inside it (the run starting at sample `run_at`) reached
/// [`HEARD`]. The windows of the lead are only context.
pub fn heard_speech(probabilities: &[f32], run_at: usize) -> bool {
    probabilities
        .iter()
        .enumerate()
        .filter(|(i, _)| i * WINDOW + WINDOW / 2 >= run_at)
        .any(|(_, p)| *p >= HEARD)
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: fn(u64) -> Duration = Duration::from_millis;

    struct Run {
        gate: OnsetGate,
        t0: Instant,
    }

    impl Run {
        fn new() -> Self {
            Run {
                gate: OnsetGate::new(MS(30)),
                t0: Instant::now(),
            }
        }
        /// Frame `k` of the run (0-based), ready from frame 4 (100 ms).
        fn frame(&mut self, k: u32) -> Step {
            let at = self.t0 + FRAME * k;
            self.gate.frame(self.t0, at, k >= 4, MS(100))
        }
        fn at(&self, k: u32) -> Instant {
            self.t0 + FRAME * k
        }
    }

    #[test]
    fn speech_heard_early_lets_the_barge_in_through_on_time() {
        let mut r = Run::new();
        assert_eq!(r.frame(0), Step::Wait);
        assert_eq!(r.frame(1), Step::Wait);
        // 60 ms: the first check.
        assert_eq!(r.frame(2), Step::Check(r.at(2)));
        // One at a time.
        assert_eq!(r.frame(3), Step::Wait);
        let (t0, at2, at3) = (r.t0, r.at(2), r.at(3));
        // It heard nothing yet; the run has grown, so the newer audio is
        // checked at once.
        assert_eq!(r.gate.checked(t0, at2, Some(false), at3), Step::Check(at3));
        assert_eq!(r.gate.checked(t0, at3, Some(true), at3), Step::Wait);
        // The frame that completes 100 ms interrupts with no wait.
        assert_eq!(r.frame(4), Step::BargeIn);
    }

    #[test]
    fn noise_is_held_while_silero_hears_no_speech() {
        let mut r = Run::new();
        let t0 = r.t0;
        for k in 0..30 {
            match r.frame(k) {
                Step::Check(upto) => {
                    assert_eq!(upto, r.at(k));
                    assert_eq!(r.gate.checked(t0, upto, Some(false), upto), Step::Wait);
                }
                Step::Wait => assert!(k < 2, "frame {k} was not checked"),
                Step::BargeIn => panic!("noise interrupted at frame {k}"),
            }
        }
        // Speech starts inside the noise: the next check lets it through.
        let at = r.at(30);
        assert_eq!(r.frame(30), Step::Check(at));
        assert_eq!(r.gate.checked(t0, at, Some(true), at), Step::BargeIn);
    }

    #[test]
    fn a_due_barge_in_waits_for_the_check_in_flight_then_falls_back() {
        let mut r = Run::new();
        let t0 = r.t0;
        r.frame(0);
        r.frame(1);
        assert_eq!(r.frame(2), Step::Check(r.at(2)));
        r.frame(3);
        assert_eq!(r.gate.deadline(), None, "not due yet");
        assert_eq!(r.frame(4), Step::Wait);
        let deadline = r.gate.deadline().unwrap();
        assert_eq!(deadline, r.at(4) + MS(30));
        assert_eq!(r.gate.poll(deadline - MS(1)), Step::Wait);
        assert_eq!(r.gate.poll(deadline), Step::BargeIn);
        // The late answer is about a run that has been acted on.
        r.gate.reset();
        assert_eq!(
            r.gate.checked(t0, r.at(2), Some(false), deadline),
            Step::Wait
        );
    }

    #[test]
    fn a_failed_check_lets_the_barge_in_through() {
        let mut r = Run::new();
        let t0 = r.t0;
        r.frame(0);
        r.frame(1);
        let Step::Check(upto) = r.frame(2) else {
            panic!()
        };
        r.frame(3);
        r.frame(4);
        assert_eq!(r.gate.checked(t0, upto, None, r.at(4)), Step::BargeIn);
    }

    #[test]
    fn an_answer_about_an_old_run_is_ignored() {
        let mut r = Run::new();
        let t0 = r.t0;
        r.frame(0);
        r.frame(1);
        r.frame(2);
        // A new run starts 200 ms later.
        let later = t0 + MS(200);
        assert_eq!(r.gate.frame(later, later, false, MS(100)), Step::Wait);
        assert_eq!(r.gate.checked(t0, r.at(2), Some(true), later), Step::Wait);
        assert_eq!(
            r.gate.frame(later, later + FRAME * 4, true, MS(100)),
            Step::Check(later + FRAME * 4)
        );
    }

    #[test]
    fn a_short_minimum_is_checked_when_it_is_reached() {
        let mut gate = OnsetGate::new(MS(30));
        let t0 = Instant::now();
        assert_eq!(gate.frame(t0, t0, false, MS(40)), Step::Wait);
        assert_eq!(
            gate.frame(t0, t0 + FRAME, true, MS(40)),
            Step::Check(t0 + FRAME)
        );
    }

    fn frames(n: usize) -> Vec<(Duration, Vec<i16>)> {
        (0..n)
            .map(|i| (FRAME * i as u32, vec![i as i16; FRAME_SAMPLES]))
            .collect()
    }

    #[test]
    fn the_audio_ends_with_the_newest_frame_in_whole_windows() {
        let all = frames(20);
        let it = || all.iter().map(|(t, f)| (*t, f.as_slice()));
        // Run from frame 10; checked up to frame 14: frames 8..=14.
        let (a, run_at) = onset_audio(it(), FRAME * 10, FRAME * 14);
        assert_eq!(a.len() % WINDOW, 0);
        assert_eq!(a.len(), 7 * FRAME_SAMPLES / WINDOW * WINDOW);
        assert_eq!(*a.last().unwrap(), 14);
        let cut = 7 * FRAME_SAMPLES % WINDOW;
        assert_eq!(run_at, 2 * FRAME_SAMPLES - cut);
        assert_eq!(a[run_at], 10);
        assert_eq!(a[run_at - 1], 9);
        // A long run: only the latest 320 ms.
        let (a, run_at) = onset_audio(it(), FRAME * 2, FRAME * 19);
        assert!(a.len() <= 16 * FRAME_SAMPLES);
        assert_eq!(*a.last().unwrap(), 19);
        assert_eq!(run_at, 0);
        // Nothing of the run yet.
        let (a, run_at) = onset_audio(it(), FRAME * 30, FRAME * 19);
        assert_eq!(run_at, a.len());
    }

    #[test]
    fn only_the_runs_own_windows_count() {
        // Four windows; the run starts 100 samples into the second.
        let run_at = WINDOW + 100;
        assert!(!heard_speech(&[0.9, 0.1, 0.1, 0.2], run_at));
        assert!(heard_speech(&[0.0, 0.1, 0.1, 0.35], run_at));
        // The second window is mostly the run's.
        assert!(heard_speech(&[0.0, 0.7, 0.1, 0.2], run_at));
        assert!(!heard_speech(&[0.0, 0.7, 0.1], 2 * WINDOW - 100));
        assert!(!heard_speech(&[], 0));
    }
}
