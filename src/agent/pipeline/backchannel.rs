//! Backchannels: "mm-hmm", "yeah", "okay" said over the agent are a
//! listener's signals, not turns. The agent cannot know the words until
//! the recognizer has them, long after the 150 ms in which it must stop
//! for a real interruption, so it stops as for any barge-in but keeps the
//! interrupted reply paused; when the caller's words turn out to be only a
//! backchannel, it resumes from a little before where it stopped instead
//! of answering them.
//!
//! What is recorded for a resumed reply: the caller's backchannel is a
//! final caller line of the transcript (as said, with its times), but not
//! a turn of the brain's conversation, which never answers it. The agent's
//! reply stays one line and one assistant message, whole and not
//! interrupted, from its first frame to its real end, so the caller's line
//! falls inside its span; `agent.speaking` goes false at the pause and true
//! at the resume. An utterance with no words at all (a cough that Silero
//! let through) resumes the reply too. Anything else ends it as any
//! barge-in does: cut to what was heard, interrupted, before the caller's
//! words go to the brain.
//!
//! Sans-IO: [`Backchannels`] says whether a final transcript is one, and
//! [`Handed`] keeps copies of the frames handed to the line so that those
//! the flush threw away can be played again.

use std::collections::{HashSet, VecDeque};
use std::time::Duration;

use super::echo::rms;

/// The default backchannels.
pub const DEFAULT_WORDS: [&str; 10] = [
    "mm-hmm", "mhm", "uh-huh", "yeah", "yes", "okay", "ok", "right", "sure", "i see",
];

/// Most words one backchannel utterance may have ("okay, yeah, sure").
const MAX_WORDS: usize = 4;

/// Longest phrase of the list, in words, that is matched as one.
const MAX_PHRASE_WORDS: usize = 3;

/// Which caller utterances spoken over the agent do not interrupt it.
#[derive(Debug, Clone, PartialEq)]
pub struct Backchannels {
    /// Whether backchannels let the agent go on; when off, every
    /// utterance over the agent interrupts it.
    pub enabled: bool,
    /// Words and short phrases that are backchannels, matched without case
    /// or punctuation ("Mm-hmm." and "mm hmm" are "mm-hmm"). An utterance
    /// made only of these (up to four words) is one.
    pub words: Vec<String>,
    /// A longer utterance is never a backchannel.
    pub max_length: Duration,
}

impl Default for Backchannels {
    fn default() -> Self {
        Backchannels {
            enabled: true,
            words: DEFAULT_WORDS.iter().map(|w| (*w).to_owned()).collect(),
            max_length: Duration::from_millis(1200),
        }
    }
}

impl Backchannels {
    /// Whether the caller's utterance, `text` as recognized, lasting
    /// `length`, is only a backchannel.
    pub fn matches(&self, text: &str, length: Duration) -> bool {
        if !self.enabled || length > self.max_length {
            return false;
        }
        let known: HashSet<String> = self.words.iter().map(|w| tokens(w).concat()).collect();
        let words = tokens(text);
        if words.is_empty() || words.len() > MAX_WORDS {
            return false;
        }
        // Greedy from the left, the longest phrase first: "uh huh" and
        // "uh-huh", "i see" are one entry each.
        let mut i = 0;
        'words: while i < words.len() {
            for k in (1..=MAX_PHRASE_WORDS.min(words.len() - i)).rev() {
                if known.contains(&words[i..i + k].concat()) {
                    i += k;
                    continue 'words;
                }
            }
            return false;
        }
        true
    }
}

/// Lower-case words of `text`: hyphens join ("mm-hmm" is "mmhmm"),
/// other punctuation separates.
fn tokens(text: &str) -> Vec<String> {
    let cleaned: String = text
        .chars()
        .filter(|c| *c != '-')
        .map(|c| {
            if c.is_alphanumeric() || c == '\'' {
                c.to_ascii_lowercase()
            } else {
                ' '
            }
        })
        .collect();
    cleaned.split_whitespace().map(str::to_owned).collect()
}

/// Frames searched back from the cut for a pause between words.
const MAX_BACK_FRAMES: usize = 20;

/// How far a resume backs up when no pause is found.
const DEFAULT_BACK_FRAMES: usize = 10;

/// A frame at most this share of the loudest one around it (−12 dB) is a
/// pause between words.
const PAUSE_RATIO: f32 = 0.25;

/// Copies of the latest frames of a reply handed to the line: as many as
/// the line's queue may hold unplayed, and enough before them to back up
/// to a word's start (about 45 KB for a 50-frame queue).
#[derive(Debug, Clone, Default)]
pub struct Handed {
    frames: VecDeque<Vec<i16>>,
}

impl Handed {
    /// A frame was handed to a line whose queue holds `line_capacity`.
    pub fn push(&mut self, frame: &[i16], line_capacity: usize) {
        while self.frames.len() >= line_capacity + MAX_BACK_FRAMES {
            self.frames.pop_front();
        }
        self.frames.push_back(frame.to_vec());
    }

    /// The line was flushed with the last `in_queue` handed frames still
    /// unplayed. Returns the frames to play again on resume: those, and
    /// the played ones back to the last pause between words (about a word,
    /// at most 400 ms; 200 ms when the audio has no pause). They leave
    /// the history, as they will be handed again.
    pub fn rewind(&mut self, in_queue: usize) -> Vec<Vec<i16>> {
        let cut = self.frames.len().saturating_sub(in_queue);
        let levels: Vec<f32> = self.frames.iter().take(cut).map(|f| rms(f)).collect();
        let from = resume_point(&levels);
        self.frames.drain(from..).collect()
    }
}

/// Where to resume in frames whose levels are `levels`, the last of which
/// played when the agent stopped: the latest pause within
/// [`MAX_BACK_FRAMES`], or [`DEFAULT_BACK_FRAMES`] back without one.
fn resume_point(levels: &[f32]) -> usize {
    let start = levels.len().saturating_sub(MAX_BACK_FRAMES);
    let window = &levels[start..];
    let loudest = window.iter().copied().fold(0f32, f32::max);
    match window.iter().rposition(|l| *l <= loudest * PAUSE_RATIO) {
        Some(i) => start + i,
        None => levels.len().saturating_sub(DEFAULT_BACK_FRAMES),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn short() -> Duration {
        Duration::from_millis(500)
    }

    #[test]
    fn backchannels_match_without_case_or_punctuation() {
        let b = Backchannels::default();
        for text in [
            "Okay.",
            " okay",
            "OK!",
            "Mm-hmm.",
            "mm hmm",
            "Mmhmm",
            "Uh-huh.",
            "uh huh",
            "Yeah, yeah.",
            "Okay, I see.",
            "Right, sure.",
            "Yes.",
        ] {
            assert!(b.matches(text, short()), "{text:?}");
        }
        for text in [
            "",
            "...",
            "Okay, but what about the price?",
            "Yeah, no.",
            "Wait",
            "I see what you mean",
            "Yes yes yes yes yes",
            "Sure thing",
        ] {
            assert!(!b.matches(text, short()), "{text:?}");
        }
    }

    #[test]
    fn a_long_utterance_or_the_setting_off_is_never_a_backchannel() {
        let mut b = Backchannels::default();
        assert!(!b.matches("okay", Duration::from_millis(1300)));
        assert!(b.matches("okay", Duration::from_millis(1200)));
        b.enabled = false;
        assert!(!b.matches("okay", short()));
    }

    #[test]
    fn the_list_is_configurable() {
        let b = Backchannels {
            words: vec!["d'accord".into(), "très bien".into()],
            ..Backchannels::default()
        };
        assert!(b.matches("D'accord.", short()));
        assert!(b.matches("Très bien", short()));
        assert!(!b.matches("okay", short()));
    }

    fn frame(level: i16) -> Vec<i16> {
        vec![level; 320]
    }

    #[test]
    fn a_rewind_returns_the_unplayed_frames_from_the_last_pause() {
        let mut h = Handed::default();
        // Words of 6 loud frames with a quiet frame between them; each
        // frame's level tells which it is.
        let levels: Vec<i16> = (0..40)
            .map(|i| if i % 7 == 6 { 10 } else { 1000 + i })
            .collect();
        for l in &levels {
            h.push(&frame(*l), 10);
        }
        // The history keeps frames 10..40. The last 5 were still queued,
        // so frame 34 played last, and it is a pause: the replay starts
        // there.
        let again = h.rewind(5);
        let got: Vec<i16> = again.iter().map(|f| f[0]).collect();
        assert_eq!(got, levels[34..]);
        assert_eq!(h.frames.len(), 34 - 10);
        // Cut in the middle of a word: back to the pause before it.
        let mut h = Handed::default();
        for l in &levels {
            h.push(&frame(*l), 10);
        }
        let got: Vec<i16> = h.rewind(8).iter().map(|f| f[0]).collect();
        assert_eq!(got, levels[27..]);
    }

    #[test]
    fn without_a_pause_a_rewind_backs_up_a_fixed_stretch() {
        let mut h = Handed::default();
        for _ in 0..100 {
            h.push(&frame(3000), 50);
        }
        let again = h.rewind(12);
        assert_eq!(again.len(), 12 + DEFAULT_BACK_FRAMES);
        // Fewer played frames than that: from the first kept.
        let mut h = Handed::default();
        for _ in 0..6 {
            h.push(&frame(3000), 50);
        }
        assert_eq!(h.rewind(2).len(), 6);
    }

    #[test]
    fn the_history_is_bounded() {
        let mut h = Handed::default();
        for i in 0..1000 {
            h.push(&frame(i), 5);
        }
        assert_eq!(h.frames.len(), 5 + MAX_BACK_FRAMES);
        assert_eq!(h.frames.back().unwrap()[0], 999);
        assert!(Handed::default().rewind(0).is_empty());
    }
}
