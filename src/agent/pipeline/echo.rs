//! The echo guard: tells the caller's own speech from the agent's voice
//! coming back down the line (a speakerphone, a hybrid with poor return
//! loss), so the agent never interrupts itself.
//!
//! It works on 20 ms frame levels, not samples: the reference is the level
//! of each frame the agent sent, placed at the time it plays. A caller
//! frame counts as the caller's voice only when it is louder than the
//! loudest reference frame of the last [`ECHO_TAIL`] (the echo path's
//! delay) times the echo gain, plus a margin. The echo gain is learnt per
//! call: it starts at −9 dB (a little below the classic Geigel assumption
//! of 6 dB hybrid loss, so that with the margin a −10 dB speakerphone echo
//! is covered from the first frame). Once the agent has talked for longer
//! than the echo tail, it becomes the highest caller-to-reference ratio of
//! the last half second of frames that were not the caller, so on a clean
//! line a quiet caller can interrupt within a third of a second of the
//! agent starting, and on an echoing line the echo stays below the bar.
//! Sans-IO: times come in as arguments.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

/// How far above the expected echo a caller frame must be to count as
/// the caller, unless configured otherwise.
pub const DEFAULT_ECHO_MARGIN_DB: f32 = 6.0;

/// How far back an echo of the agent's audio may arrive.
pub const ECHO_TAIL: Duration = Duration::from_millis(320);

/// The echo gain assumed before anything is learnt (−9 dB, in amplitude).
const INITIAL_GAIN: f32 = 0.35;
/// The lowest echo gain the guard assumes (−40 dB).
const FLOOR_GAIN: f32 = 0.01;
/// Observations (20 ms frames with the agent talking) the learnt gain is
/// the highest of.
const WINDOW: usize = 25;
/// Observations needed before the learnt gain replaces the initial one:
/// the echo tail, so any echo has had time to arrive.
const WARM_UP: u32 = (ECHO_TAIL.as_millis() / 20) as u32;
/// Reference frames quieter than this (RMS, of 32768) are silence: they
/// neither gate the caller nor teach the guard anything.
const REFERENCE_SILENCE: f32 = 100.0;

/// See the module documentation.
#[derive(Debug, Clone)]
pub struct EchoGuard {
    /// (plays at, RMS) of recent agent frames, oldest first.
    reference: VecDeque<(Instant, f32)>,
    /// Recent caller-to-reference ratios of frames that were not the
    /// caller.
    ratios: VecDeque<f32>,
    observed: u32,
    margin: f32,
}

impl EchoGuard {
    /// A guard that wants the caller `margin_db` above the expected echo.
    pub fn new(margin_db: f32) -> Self {
        EchoGuard {
            reference: VecDeque::with_capacity(64),
            ratios: VecDeque::with_capacity(WINDOW),
            observed: 0,
            margin: 10f32.powf(margin_db.max(0.0) / 20.0),
        }
    }

    /// An agent frame of level `rms` that starts playing at `plays_at`.
    pub fn agent_frame(&mut self, plays_at: Instant, rms: f32) {
        self.reference.push_back((plays_at, rms));
        while self.reference.len() > 256 {
            self.reference.pop_front();
        }
    }

    /// The level of echo to expect in a caller frame received at `at`.
    pub fn expected_echo(&self, at: Instant) -> f32 {
        self.loudest_reference(at) * self.gain()
    }

    /// Whether a caller frame of level `rms` received at `at` is louder
    /// than the agent's echo could be; also learns from frames that are not.
    pub fn is_caller(&mut self, at: Instant, rms: f32) -> bool {
        let reference = self.loudest_reference(at);
        self.forget_before(at);
        if reference < REFERENCE_SILENCE {
            return true;
        }
        let threshold = reference * self.gain() * self.margin;
        if rms > threshold {
            return true;
        }
        // Below the threshold: this may be echo, so it teaches the guard
        // the line's echo gain (a caller quieter than that could not have
        // interrupted anyway).
        if self.ratios.len() == WINDOW {
            self.ratios.pop_front();
        }
        self.ratios.push_back(rms / reference);
        self.observed = self.observed.saturating_add(1);
        false
    }

    /// The current echo-gain estimate (amplitude ratio).
    pub fn gain(&self) -> f32 {
        let learnt = self.ratios.iter().copied().fold(0.0, f32::max);
        if self.observed < WARM_UP {
            learnt.max(INITIAL_GAIN)
        } else {
            learnt.clamp(FLOOR_GAIN, 1.0)
        }
    }

    fn loudest_reference(&self, at: Instant) -> f32 {
        let from = at.checked_sub(ECHO_TAIL).unwrap_or(at);
        self.reference
            .iter()
            .filter(|(t, _)| *t >= from && *t <= at)
            .map(|&(_, r)| r)
            .fold(0.0, f32::max)
    }

    fn forget_before(&mut self, at: Instant) {
        let from = at.checked_sub(ECHO_TAIL).unwrap_or(at);
        while self.reference.front().is_some_and(|(t, _)| *t < from) {
            self.reference.pop_front();
        }
    }
}

/// RMS level of a frame (0–32768).
pub fn rms(frame: &[i16]) -> f32 {
    if frame.is_empty() {
        return 0.0;
    }
    let sum: f64 = frame.iter().map(|&s| f64::from(s) * f64::from(s)).sum();
    (sum / frame.len() as f64).sqrt() as f32
}

#[cfg(test)]
mod tests {
    use super::*;

    const F: Duration = Duration::from_millis(20);

    /// The agent sends `frames` frames at `level`; the line returns each
    /// one `delay` later at `echo_gain`. Returns how many returned frames
    /// the guard took for the caller.
    fn run(
        guard: &mut EchoGuard,
        t0: Instant,
        frames: u32,
        level: f32,
        echo_gain: f32,
        delay: Duration,
    ) -> u32 {
        let mut callers = 0;
        for i in 0..frames {
            let t = t0 + F * i;
            guard.agent_frame(t, level);
            if F * i >= delay && guard.is_caller(t, level * echo_gain) {
                callers += 1;
            }
        }
        callers
    }

    #[test]
    fn echo_at_minus_10_db_is_never_the_caller() {
        let t0 = Instant::now();
        let mut g = EchoGuard::new(6.0);
        let callers = run(&mut g, t0, 500, 6000.0, 0.316, Duration::from_millis(100));
        assert_eq!(callers, 0);
        // It learnt roughly the line's echo gain.
        assert!((0.3..0.5).contains(&g.gain()), "{}", g.gain());
    }

    #[test]
    fn a_loud_caller_over_the_agent_is_the_caller() {
        let t0 = Instant::now();
        let mut g = EchoGuard::new(6.0);
        run(&mut g, t0, 100, 6000.0, 0.316, Duration::from_millis(100));
        let t = t0 + F * 100;
        g.agent_frame(t, 6000.0);
        assert!(g.is_caller(t, 6000.0));
    }

    #[test]
    fn on_a_clean_line_a_quieter_caller_can_interrupt_after_the_guard_learns() {
        let t0 = Instant::now();
        let mut g = EchoGuard::new(6.0);
        // No echo: the caller's line is near-silent while the agent talks.
        run(&mut g, t0, 200, 6000.0, 0.005, Duration::from_millis(60));
        assert!(g.gain() < 0.05, "{}", g.gain());
        let t = t0 + F * 200;
        g.agent_frame(t, 6000.0);
        // Caller 12 dB below the agent.
        assert!(g.is_caller(t, 1500.0));
    }

    #[test]
    fn without_agent_audio_everything_is_the_caller() {
        let t0 = Instant::now();
        let mut g = EchoGuard::new(6.0);
        assert!(g.is_caller(t0, 50.0));
        g.agent_frame(t0, 6000.0);
        // Once the reference is older than the echo tail, it no longer gates.
        assert!(g.is_caller(t0 + ECHO_TAIL + F, 500.0));
    }

    #[test]
    fn rms_of_a_full_scale_square_wave() {
        assert_eq!(rms(&[]), 0.0);
        let r = rms(&[i16::MAX, i16::MIN + 1, i16::MAX, i16::MIN + 1]);
        assert!((r - 32767.0).abs() < 0.5);
    }
}
