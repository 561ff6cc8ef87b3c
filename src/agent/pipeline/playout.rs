//! The agent's side of the line: turning TTS audio into 20 ms frames at
//! 16 kHz, and knowing which words the caller has heard once some of those
//! frames have played.

use hotline_media::resample::Resampler;

use crate::agent::provider::PcmChunk;
use crate::rtp::{FRAME_SAMPLES, PCM_RATE};

/// Converts TTS chunks (any rate, any size) into 20 ms frames at
/// [`PCM_RATE`], each tagged with the text segment it speaks.
#[derive(Debug, Default)]
pub struct FrameMaker {
    resampler: Option<Resampler>,
    /// Input not yet a whole 20 ms frame, at the resampler's input rate.
    pending: Vec<i16>,
    /// Output not yet a whole frame.
    out: Vec<i16>,
    segment: usize,
}

impl FrameMaker {
    /// An empty converter.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds a chunk of `segment`; appends the frames it completes.
    /// A chunk at a rate the resampler cannot take is dropped with an error.
    pub fn push(
        &mut self,
        segment: usize,
        chunk: &PcmChunk,
        frames: &mut Vec<(usize, Vec<i16>)>,
    ) -> Result<(), String> {
        if self.resampler.as_ref().map(Resampler::in_rate) != Some(chunk.rate) {
            // A new rate: whatever was pending at the old one is finished
            // first, so nothing is lost or played at the wrong speed.
            self.finish(frames);
            let r = Resampler::new(chunk.rate, PCM_RATE)
                .map_err(|e| format!("TTS audio at {} Hz: {e}", chunk.rate))?;
            self.resampler = Some(r);
        }
        self.segment = segment;
        self.pending.extend_from_slice(&chunk.samples);
        let Some(r) = self.resampler.as_mut() else {
            return Ok(());
        };
        let n = r.input_frame_len();
        let mut used = 0;
        while self.pending.len() - used >= n {
            r.process(&self.pending[used..used + n], &mut self.out)
                .map_err(|e| e.to_string())?;
            used += n;
        }
        self.pending.drain(..used);
        self.emit(frames, false);
        Ok(())
    }

    /// The end of the stream: pads and flushes what is left.
    pub fn finish(&mut self, frames: &mut Vec<(usize, Vec<i16>)>) {
        if let Some(r) = self.resampler.as_mut() {
            if !self.pending.is_empty() {
                self.pending.resize(r.input_frame_len(), 0);
                let _ = r.process(&self.pending, &mut self.out);
                self.pending.clear();
            }
            let _ = r.flush(&mut self.out);
        }
        self.emit(frames, true);
    }

    fn emit(&mut self, frames: &mut Vec<(usize, Vec<i16>)>, last: bool) {
        let mut chunks = self.out.chunks_exact(FRAME_SAMPLES);
        for f in &mut chunks {
            frames.push((self.segment, f.to_vec()));
        }
        let rest = chunks.remainder().to_vec();
        self.out.clear();
        if last && rest.iter().any(|&s| s != 0) {
            let mut f = rest;
            f.resize(FRAME_SAMPLES, 0);
            frames.push((self.segment, f));
        } else if !last {
            self.out = rest;
        }
    }
}

/// What one reply has queued for playing, segment by segment, and so which
/// of its words were heard after a given number of frames.
#[derive(Debug, Default, Clone)]
pub struct Playout {
    /// Text and frame count of each segment, in order.
    segments: Vec<(String, usize)>,
}

impl Playout {
    /// An empty reply.
    pub fn new() -> Self {
        Self::default()
    }

    /// Segment `index` has text `text` (called when it is sent to TTS).
    pub fn segment_text(&mut self, index: usize, text: &str) {
        if self.segments.len() <= index {
            self.segments.resize(index + 1, (String::new(), 0));
        }
        self.segments[index].0 = text.to_owned();
    }

    /// One more frame of `segment` was queued.
    pub fn frame(&mut self, segment: usize) {
        if self.segments.len() <= segment {
            self.segments.resize(segment + 1, (String::new(), 0));
        }
        self.segments[segment].1 += 1;
    }

    /// All of the reply's text.
    pub fn full_text(&self) -> String {
        join(self.segments.iter().map(|(t, _)| t.as_str()))
    }

    /// The words heard once `played` frames have played: whole segments,
    /// then the share of the current one's words that its played frames
    /// cover, rounded down (a word cut off in the middle was not heard).
    pub fn heard(&self, played: usize) -> String {
        let mut left = played;
        let mut parts: Vec<String> = Vec::new();
        for (text, frames) in &self.segments {
            if left >= *frames && *frames > 0 {
                parts.push(text.clone());
                left -= frames;
                continue;
            }
            if left > 0 && *frames > 0 {
                let words: Vec<&str> = text.split_whitespace().collect();
                let n = words.len() * left / frames;
                if n > 0 {
                    parts.push(words[..n].join(" "));
                }
            }
            break;
        }
        join(parts.iter().map(String::as_str))
    }
}

fn join<'a>(parts: impl Iterator<Item = &'a str>) -> String {
    parts
        .filter(|p| !p.trim().is_empty())
        .collect::<Vec<_>>()
        .join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chunks_of_any_size_and_rate_become_whole_frames() {
        let mut m = FrameMaker::new();
        let mut frames = vec![];
        // 22.05 kHz, 1 s in odd chunks.
        let mut left = 22_050;
        while left > 0 {
            let n = left.min(1234);
            let chunk = PcmChunk {
                rate: 22_050,
                samples: vec![1000; n],
            };
            m.push(0, &chunk, &mut frames).unwrap();
            left -= n;
        }
        m.push(
            1,
            &PcmChunk {
                rate: 16_000,
                samples: vec![1000; 800],
            },
            &mut frames,
        )
        .unwrap();
        m.finish(&mut frames);
        assert!(frames.iter().all(|(_, f)| f.len() == FRAME_SAMPLES));
        let seg0 = frames.iter().filter(|(s, _)| *s == 0).count();
        let seg1 = frames.iter().filter(|(s, _)| *s == 1).count();
        // One second is 50 frames (plus the filter's tail); 50 ms is 2.5.
        assert!((50..=52).contains(&seg0), "{seg0}");
        assert_eq!(seg1, 3);
    }

    #[test]
    fn an_unusable_rate_is_an_error() {
        let mut m = FrameMaker::new();
        let chunk = PcmChunk {
            rate: 12_345,
            samples: vec![0; 100],
        };
        assert!(m.push(0, &chunk, &mut vec![]).is_err());
    }

    #[test]
    fn heard_text_follows_the_frames_played() {
        let mut p = Playout::new();
        p.segment_text(0, "Hello there.");
        p.segment_text(1, "I can help you with your order today.");
        for _ in 0..20 {
            p.frame(0);
        }
        for _ in 0..80 {
            p.frame(1);
        }
        assert_eq!(p.heard(0), "");
        assert_eq!(p.heard(10), "Hello");
        assert_eq!(p.heard(20), "Hello there.");
        // Half of the second segment's 8 words.
        assert_eq!(p.heard(60), "Hello there. I can help you");
        assert_eq!(p.heard(1000), p.full_text());
        assert_eq!(
            p.full_text(),
            "Hello there. I can help you with your order today."
        );
    }
}
