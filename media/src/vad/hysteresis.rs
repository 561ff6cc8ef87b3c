//! Turning per-frame decisions into utterances: start and stop hysteresis,
//! back-dating, minimum duration. Works in frame indices only; the caller
//! turns them into stream positions.

/// The frame was judged speech.
const SPEECH: u8 = 1;
/// The frame stood clearly out of the noise (voiced or not).
const ENERGETIC: u8 = 2;

/// Hysteresis settings, in frames.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Frames {
    /// Start window length.
    pub start: usize,
    /// Frames that are neither speech nor energetic allowed inside the
    /// start window.
    pub tolerance: usize,
    /// Speech (voiced) frames needed inside the start window; the rest may
    /// be energetic but unvoiced (fricatives, plosives, breathy onsets).
    pub min_voiced: usize,
    /// Consecutive non-speech frames that end an utterance.
    pub stop: usize,
    /// Minimum utterance length before it is announced.
    pub min_speech: usize,
    /// How far back the start may be moved over energetic frames.
    pub backdate: usize,
}

/// An utterance boundary, in frame indices.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Transition {
    /// Speech began at the start of frame `first`; confirmed at the end of
    /// frame `confirmed`.
    Start { first: u64, confirmed: u64 },
    /// Speech ended at the end of frame `last`; confirmed at the end of frame
    /// `confirmed`.
    End { last: u64, confirmed: u64 },
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum State {
    Silence,
    /// The start window is satisfied but the utterance is still shorter than
    /// the minimum duration.
    Pending,
    Speaking,
}

pub(crate) struct Hysteresis {
    cfg: Frames,
    /// Flags of the most recent frames, indexed by frame % len.
    ring: Vec<u8>,
    /// Index of the next frame.
    frame: u64,
    state: State,
    first: u64,
    last_speech: u64,
    silence_run: usize,
}

impl Hysteresis {
    pub(crate) fn new(cfg: Frames) -> Self {
        // Long enough for the start window plus back-dating, and for the
        // end extension, which walks forward from a frame `stop` old.
        let len = (cfg.start + cfg.backdate).max(cfg.stop) + 2;
        let len = len.next_power_of_two();
        Hysteresis {
            cfg,
            ring: vec![0; len],
            frame: 0,
            state: State::Silence,
            first: 0,
            last_speech: 0,
            silence_run: 0,
        }
    }

    pub(crate) fn reset(&mut self) {
        self.ring.iter_mut().for_each(|f| *f = 0);
        self.frame = 0;
        self.state = State::Silence;
        self.first = 0;
        self.last_speech = 0;
        self.silence_run = 0;
    }

    /// True while inside an announced utterance.
    pub(crate) fn speaking(&self) -> bool {
        self.state == State::Speaking
    }

    fn flags(&self, frame: u64) -> u8 {
        self.ring[(frame % self.ring.len() as u64) as usize]
    }

    /// Feeds the decision for the next frame.
    pub(crate) fn push(&mut self, speech: bool, energetic: bool) -> Option<Transition> {
        let now = self.frame;
        self.frame += 1;
        let len = self.ring.len() as u64;
        self.ring[(now % len) as usize] =
            if speech { SPEECH } else { 0 } | if energetic { ENERGETIC } else { 0 };

        match self.state {
            State::Silence => {
                let start = self.cfg.start as u64;
                if now + 1 < start {
                    return None;
                }
                let oldest = now + 1 - start;
                if self.flags(oldest) & SPEECH == 0 {
                    return None;
                }
                let (mut voiced, mut active) = (0, 0);
                for f in oldest..=now {
                    let flags = self.flags(f);
                    voiced += usize::from(flags & SPEECH != 0);
                    active += usize::from(flags != 0);
                }
                if voiced < self.cfg.min_voiced || active + self.cfg.tolerance < self.cfg.start {
                    return None;
                }
                // Back-date over the speech or energetic frames that lead up
                // to the window: weak onsets and initial unvoiced sounds are
                // part of the utterance even if they did not count as speech.
                let limit = oldest.saturating_sub(self.cfg.backdate as u64);
                let mut first = oldest;
                while first > limit && self.flags(first - 1) & (SPEECH | ENERGETIC) != 0 {
                    first -= 1;
                }
                self.first = first;
                self.last_speech = now;
                self.silence_run = 0;
                self.state = State::Pending;
                self.check_min_length(now)
            }
            State::Pending | State::Speaking => {
                if speech {
                    self.silence_run = 0;
                    self.last_speech = now;
                } else {
                    // Unvoiced or noisy frames never hold an utterance open
                    // (noise would keep it open forever); trailing ones only
                    // extend the reported end below.
                    self.silence_run += 1;
                }
                if self.silence_run >= self.cfg.stop {
                    let was = self.state;
                    self.state = State::Silence;
                    let mut last = self.last_speech;
                    while last < now && self.flags(last + 1) & ENERGETIC != 0 {
                        last += 1;
                    }
                    return (was == State::Speaking).then_some(Transition::End {
                        last,
                        confirmed: now,
                    });
                }
                if self.state == State::Pending {
                    return self.check_min_length(now);
                }
                None
            }
        }
    }

    /// Takes back the speech flag of the `n` frames before the newest one,
    /// when a later look shows they were the fade-in of a tone. Only before
    /// an utterance is confirmed: announced events are never revoked.
    pub(crate) fn retract(&mut self, n: usize) {
        if self.state != State::Silence {
            return;
        }
        let len = self.ring.len() as u64;
        let newest = self.frame.saturating_sub(1);
        for f in newest.saturating_sub(n as u64)..newest {
            self.ring[(f % len) as usize] &= !SPEECH;
        }
    }

    /// Closes an open utterance at the end of the stream, returning its last
    /// speech frame.
    pub(crate) fn close(&mut self) -> Option<u64> {
        let was = self.state;
        self.state = State::Silence;
        (was == State::Speaking).then_some(self.last_speech)
    }

    fn check_min_length(&mut self, now: u64) -> Option<Transition> {
        if self.last_speech + 1 - self.first >= self.cfg.min_speech as u64 {
            self.state = State::Speaking;
            Some(Transition::Start {
                first: self.first,
                confirmed: now,
            })
        } else {
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(cfg: Frames, pattern: &str) -> Vec<Transition> {
        let mut h = Hysteresis::new(cfg);
        pattern
            .chars()
            .filter_map(|c| h.push(c == 'S', c == 'e'))
            .collect()
    }

    const CFG: Frames = Frames {
        start: 5,
        tolerance: 1,
        min_voiced: 3,
        stop: 4,
        min_speech: 0,
        backdate: 3,
    };

    #[test]
    fn start_is_back_dated_to_the_run_and_end_to_the_last_speech() {
        let t = run(CFG, "....SSSSS.....");
        assert_eq!(
            t,
            vec![
                Transition::Start {
                    first: 4,
                    confirmed: 8
                },
                Transition::End {
                    last: 8,
                    confirmed: 12
                }
            ]
        );
    }

    #[test]
    fn tolerates_a_gap_in_the_start_window_but_not_two() {
        assert_eq!(run(CFG, "..SS.SS......").len(), 2);
        assert!(run(CFG, "..S.S.S.S.S.S.S").is_empty());
    }

    #[test]
    fn unvoiced_frames_count_towards_the_start_but_not_alone() {
        assert_eq!(
            run(CFG, "..SSSee....")[0],
            Transition::Start {
                first: 2,
                confirmed: 6
            }
        );
        assert!(run(CFG, "..Seeee.....").is_empty());
        assert!(run(CFG, "..eeeeeeeeee").is_empty());
    }

    #[test]
    fn energetic_frames_extend_both_ends() {
        let t = run(CFG, "..eeSSSSSee......");
        assert_eq!(
            t,
            vec![
                Transition::Start {
                    first: 2,
                    confirmed: 8
                },
                Transition::End {
                    last: 10,
                    confirmed: 12
                }
            ]
        );
    }

    #[test]
    fn a_short_pause_does_not_end_and_min_length_holds_back_the_start() {
        assert_eq!(run(CFG, "SSSSS...SSSS.......").len(), 2);
        let long = Frames {
            min_speech: 12,
            ..CFG
        };
        assert!(run(long, "SSSSSSS........").is_empty());
        let t = run(long, "SSSSSSS..SSSS.......");
        assert_eq!(
            t[0],
            Transition::Start {
                first: 0,
                confirmed: 11
            }
        );
    }
}
