//! What the agent is saying: the audio items of one or more responses (a
//! reply, and its follow-up after a tool), their transcripts, the frames
//! waiting for the line, and, once some have played, what the caller
//! heard.
//!
//! The API does not say which word each piece of audio speaks, so what
//! was heard of an item is estimated by proportion: the share of its
//! transcript (so far) that its played frames are of its audio (so far),
//! rounded down to whole words.

use std::collections::VecDeque;

use crate::agent::pipeline::playout::FrameMaker;
use crate::agent::provider::{Message, PcmChunk, ToolCall};
use crate::rtp::PTIME;

use super::super::realtime_stt::REALTIME_RATE;

/// After the speech has played.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum After {
    Listen,
    Hangup,
    Transfer(String),
}

/// One assistant audio item.
#[derive(Debug, Default)]
pub(crate) struct Item {
    pub id: String,
    pub transcript: String,
    /// 20 ms frames made from its audio.
    pub frames: usize,
}

/// Where an interruption cut an item.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct Cut {
    pub item_id: String,
    /// Audio of the item that played.
    pub audio_end_ms: u64,
}

pub(crate) struct Speech {
    pub items: Vec<Item>,
    maker: FrameMaker,
    /// Frames (tagged with their item) not yet on the line.
    pub pending: VecDeque<(usize, Vec<i16>)>,
    /// Frames handed to the line.
    pub queued: usize,
    pub started: bool,
    pub start_ms: u64,
    pub interruptible: bool,
    pub after: After,
    pub tool_calls: Vec<ToolCall>,
    /// Results of the tool calls, as the conversation records them.
    pub tool_results: Vec<Message>,
}

impl Speech {
    pub fn new(interruptible: bool, after: After) -> Self {
        Speech {
            items: Vec::new(),
            maker: FrameMaker::new(),
            pending: VecDeque::new(),
            queued: 0,
            started: false,
            start_ms: 0,
            interruptible,
            after,
            tool_calls: Vec::new(),
            tool_results: Vec::new(),
        }
    }

    fn item(&mut self, id: &str) -> usize {
        match self.items.iter().position(|i| i.id == id) {
            Some(n) => n,
            None => {
                self.items.push(Item {
                    id: id.to_owned(),
                    ..Item::default()
                });
                self.items.len() - 1
            }
        }
    }

    /// Audio of item `id` at the API's rate.
    pub fn audio(&mut self, id: &str, samples: Vec<i16>) -> Result<(), String> {
        let n = self.item(id);
        let chunk = PcmChunk {
            rate: REALTIME_RATE,
            samples,
        };
        let mut out = Vec::new();
        let r = self.maker.push(n, &chunk, &mut out);
        self.take_frames(out);
        r
    }

    /// The end of a response's audio: the resampler's tail becomes frames.
    pub fn audio_done(&mut self) {
        let mut out = Vec::new();
        self.maker.finish(&mut out);
        self.take_frames(out);
    }

    fn take_frames(&mut self, frames: Vec<(usize, Vec<i16>)>) {
        for (n, f) in frames {
            if let Some(item) = self.items.get_mut(n) {
                item.frames += 1;
            }
            self.pending.push_back((n, f));
        }
    }

    pub fn transcript_delta(&mut self, id: &str, delta: &str) {
        let n = self.item(id);
        self.items[n].transcript.push_str(delta);
    }

    pub fn transcript_done(&mut self, id: &str, text: &str) {
        let n = self.item(id);
        self.items[n].transcript = text.to_owned();
    }

    /// Everything said.
    pub fn full_text(&self) -> String {
        join(self.items.iter().map(|i| i.transcript.trim().to_owned()))
    }

    /// What was heard after `played` frames, and where each item was cut
    /// (items not reached are cut at 0, so the model forgets them too).
    pub fn heard(&self, played: usize) -> (String, Vec<Cut>) {
        let mut left = played;
        let mut parts = Vec::new();
        let mut cuts = Vec::new();
        for item in &self.items {
            if left >= item.frames && item.frames > 0 {
                parts.push(item.transcript.trim().to_owned());
                left -= item.frames;
                continue;
            }
            if item.frames > 0 || !item.transcript.is_empty() {
                let words: Vec<&str> = item.transcript.split_whitespace().collect();
                // No audio yet: none of its words were heard.
                let n = (words.len() * left).checked_div(item.frames).unwrap_or(0);
                parts.push(words[..n].join(" "));
                cuts.push(Cut {
                    item_id: item.id.clone(),
                    audio_end_ms: left as u64 * PTIME.as_millis() as u64,
                });
                left = 0;
            }
        }
        (join(parts.into_iter()), cuts)
    }

    /// The conversation's record of this speech.
    pub fn into_messages(self, text: String, interrupted: bool) -> Vec<Message> {
        if text.is_empty() && self.tool_calls.is_empty() && !interrupted {
            return Vec::new();
        }
        let mut m = vec![Message::Assistant {
            text,
            interrupted,
            tool_calls: self.tool_calls,
        }];
        m.extend(self.tool_results);
        m
    }
}

fn join(parts: impl Iterator<Item = String>) -> String {
    parts
        .filter(|p| !p.is_empty())
        .collect::<Vec<_>>()
        .join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tone(ms: usize) -> Vec<i16> {
        (0..ms * 24)
            .map(|i| (8000.0 * (i as f64 * 0.1).sin()) as i16)
            .collect()
    }

    #[test]
    fn audio_becomes_16k_frames_per_item() {
        let mut s = Speech::new(true, After::Listen);
        s.audio("a", tone(1000)).unwrap();
        s.audio_done();
        assert_eq!(s.items[0].frames, s.pending.len());
        // One second, give or take the resampler's tail frame.
        assert!((50..=51).contains(&s.pending.len()), "{}", s.pending.len());
        assert!(s.pending.iter().all(|(_, f)| f.len() == 320));
    }

    #[test]
    fn heard_text_follows_the_share_played() {
        let mut s = Speech::new(true, After::Listen);
        s.items = vec![
            Item {
                id: "a".into(),
                transcript: "One two three four.".into(),
                frames: 40,
            },
            Item {
                id: "b".into(),
                transcript: "Five six seven eight".into(),
                frames: 100,
            },
            Item {
                id: "c".into(),
                transcript: "Nine".into(),
                frames: 0,
            },
        ];
        let (text, cuts) = s.heard(10);
        assert_eq!(text, "One");
        assert_eq!(
            cuts[0],
            Cut {
                item_id: "a".into(),
                audio_end_ms: 200
            }
        );
        assert_eq!(cuts.len(), 3);
        assert_eq!(cuts[1].audio_end_ms, 0);
        let (text, cuts) = s.heard(40 + 50);
        assert_eq!(text, "One two three four. Five six");
        assert_eq!(cuts[0].item_id, "b");
        assert_eq!(cuts[0].audio_end_ms, 1000);
        assert_eq!(
            s.full_text(),
            "One two three four. Five six seven eight Nine"
        );
    }
}
