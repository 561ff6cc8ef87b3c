//! Scripted providers: deterministic stand-ins for any slot, with fixed,
//! known delays. Tests use them to check the pipeline's behaviour, and the
//! latency bench uses them so that what it measures is the server's own
//! time (anything beyond the scripted delays).

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::mpsc;

use super::provider::{
    Brain, BrainEvent, BrainSession, CallInfo, Conversation, Message, PcmChunk, STREAM_CAPACITY,
    Stt, SttEvent, SttOptions, SttStream, Transcript, Tts, TtsEvent, TtsOptions, TtsStream,
};

/// STT that answers each utterance with the next scripted text, `delay`
/// after the audio ends. The final's times cover the audio received.
/// When the script runs out it answers with empty text.
#[derive(Debug, Clone)]
pub struct ScriptedStt {
    texts: Arc<Mutex<VecDeque<String>>>,
    delay: Duration,
}

impl ScriptedStt {
    /// Utterances get `texts` in order.
    pub fn new<I: IntoIterator<Item = S>, S: Into<String>>(texts: I, delay: Duration) -> Self {
        ScriptedStt {
            texts: Arc::new(Mutex::new(texts.into_iter().map(Into::into).collect())),
            delay,
        }
    }
}

impl Stt for ScriptedStt {
    fn start(&self, options: &SttOptions) -> SttStream {
        let (audio_tx, mut audio_rx) = mpsc::channel::<Vec<i16>>(STREAM_CAPACITY);
        let (tx, rx) = mpsc::channel(STREAM_CAPACITY);
        let texts = self.texts.clone();
        let delay = self.delay;
        let partials = options.partials;
        tokio::spawn(async move {
            let mut samples = 0u64;
            while let Some(frame) = audio_rx.recv().await {
                samples += frame.len() as u64;
                if partials && samples % 16_000 < frame.len() as u64 {
                    let t = Transcript {
                        text: "…".into(),
                        start_ms: 0,
                        end_ms: samples / 16,
                    };
                    if tx.send(SttEvent::Partial(t)).await.is_err() {
                        return;
                    }
                }
            }
            let text = texts.lock().unwrap().pop_front().unwrap_or_default();
            tokio::select! {
                _ = tokio::time::sleep(delay) => {}
                _ = tx.closed() => return,
            }
            let _ = tx
                .send(SttEvent::Final(Transcript {
                    text,
                    start_ms: 0,
                    end_ms: samples / 16,
                }))
                .await;
        });
        SttStream {
            audio: audio_tx,
            events: rx,
        }
    }

    fn name(&self) -> &str {
        "scripted"
    }
}

/// A brain whose replies are scripted: reply *n* yields the events of
/// `replies[n]` (the last one repeats when they run out), `first_token`
/// after the request and `between` apart. A [`BrainEvent::Done`] is added
/// at the end unless the script ends in `Done` or an error.
///
/// A text event may quote the latest tool result of the conversation:
/// [`TOOL_RESULT`] in its text is replaced by that result's content, so a
/// test can script "call a tool, then speak its answer".
#[derive(Debug, Clone)]
pub struct ScriptedBrain {
    replies: Arc<Vec<Vec<BrainEvent>>>,
    first_token: Duration,
    between: Duration,
    /// Every conversation the brain was asked to answer, for assertions.
    pub seen: Arc<Mutex<Vec<Conversation>>>,
}

impl ScriptedBrain {
    /// A brain that says `replies` in turn.
    pub fn new(replies: Vec<Vec<BrainEvent>>, first_token: Duration, between: Duration) -> Self {
        ScriptedBrain {
            replies: Arc::new(replies),
            first_token,
            between,
            seen: Arc::default(),
        }
    }

    /// A brain whose every reply is one text event per word of `text`.
    pub fn saying(text: &str, first_token: Duration, between: Duration) -> Self {
        let words = text
            .split_inclusive(' ')
            .map(|w| BrainEvent::Text(w.to_owned()))
            .collect();
        Self::new(vec![words], first_token, between)
    }
}

/// Placeholder in a [`ScriptedBrain`] text for the latest tool result.
pub const TOOL_RESULT: &str = "{tool_result}";

struct ScriptedBrainSession {
    brain: ScriptedBrain,
    turn: usize,
}

impl Brain for ScriptedBrain {
    fn start_call(&self, _call: &CallInfo) -> Box<dyn BrainSession> {
        Box::new(ScriptedBrainSession {
            brain: self.clone(),
            turn: 0,
        })
    }

    fn name(&self) -> &str {
        "scripted"
    }
}

impl BrainSession for ScriptedBrainSession {
    fn respond(&mut self, conversation: &Conversation) -> mpsc::Receiver<BrainEvent> {
        self.brain.seen.lock().unwrap().push(conversation.clone());
        let replies = &self.brain.replies;
        let mut events = match replies.get(self.turn).or_else(|| replies.last()) {
            Some(r) => r.clone(),
            None => Vec::new(),
        };
        self.turn += 1;
        let last_result = conversation.messages.iter().rev().find_map(|m| match m {
            Message::Tool { content, .. } => Some(content.as_str()),
            _ => None,
        });
        for ev in &mut events {
            if let (BrainEvent::Text(t), Some(r)) = (ev, last_result) {
                *t = t.replace(TOOL_RESULT, r);
            }
        }
        if !matches!(events.last(), Some(BrainEvent::Done | BrainEvent::Error(_))) {
            events.push(BrainEvent::Done);
        }
        let (tx, rx) = mpsc::channel(STREAM_CAPACITY);
        let (first, between) = (self.brain.first_token, self.brain.between);
        tokio::spawn(async move {
            for (i, ev) in events.into_iter().enumerate() {
                let wait = if i == 0 { first } else { between };
                tokio::select! {
                    _ = tokio::time::sleep(wait) => {}
                    _ = tx.closed() => return,
                }
                if tx.send(ev).await.is_err() {
                    return;
                }
            }
        });
        rx
    }
}

/// TTS that speaks each segment as a tone: `per_char` of audio per
/// character, at `rate`, in 20 ms chunks, the first `first_audio` after
/// the segment arrives and the rest as fast as the consumer takes them.
/// The tone (a 440 Hz sine at about −12 dBFS) is loud enough to tell
/// speech from silence in a capture.
#[derive(Debug, Clone)]
pub struct ScriptedTts {
    /// Output rate.
    pub rate: u32,
    /// Audio per character of text.
    pub per_char: Duration,
    /// Delay before a segment's first chunk.
    pub first_audio: Duration,
}

impl Default for ScriptedTts {
    fn default() -> Self {
        ScriptedTts {
            rate: 16_000,
            per_char: Duration::from_millis(60),
            first_audio: Duration::ZERO,
        }
    }
}

impl Tts for ScriptedTts {
    fn start(&self, _options: &TtsOptions) -> TtsStream {
        let (text_tx, mut text_rx) = mpsc::channel::<String>(STREAM_CAPACITY);
        let (tx, rx) = mpsc::channel(STREAM_CAPACITY);
        let me = self.clone();
        tokio::spawn(async move {
            let mut segment = 0;
            let mut phase = 0u64;
            while let Some(text) = text_rx.recv().await {
                tokio::select! {
                    _ = tokio::time::sleep(me.first_audio) => {}
                    _ = tx.closed() => return,
                }
                let total = (me.per_char.as_secs_f64()
                    * text.chars().count() as f64
                    * f64::from(me.rate)) as usize;
                let chunk_len = (me.rate / 50).max(1) as usize;
                let mut left = total;
                while left > 0 {
                    let n = left.min(chunk_len);
                    let samples = (0..n)
                        .map(|i| {
                            let t = (phase + i as u64) as f64 / f64::from(me.rate);
                            (8000.0 * (2.0 * std::f64::consts::PI * 440.0 * t).sin()) as i16
                        })
                        .collect();
                    phase += n as u64;
                    left -= n;
                    let chunk = PcmChunk {
                        rate: me.rate,
                        samples,
                    };
                    if tx.send(TtsEvent::Audio { segment, chunk }).await.is_err() {
                        return;
                    }
                }
                if tx.send(TtsEvent::SegmentDone { segment }).await.is_err() {
                    return;
                }
                segment += 1;
            }
        });
        TtsStream {
            text: text_tx,
            audio: rx,
        }
    }

    fn name(&self) -> &str {
        "scripted"
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn stt_answers_each_utterance_in_turn_after_its_delay() {
        let stt = ScriptedStt::new(["hello", "bye"], Duration::from_millis(100));
        for want in ["hello", "bye", ""] {
            let SttStream { audio, mut events } = stt.start(&SttOptions::default());
            for _ in 0..50 {
                audio.send(vec![0; 320]).await.unwrap();
            }
            drop(audio);
            let start = tokio::time::Instant::now();
            match events.recv().await {
                Some(SttEvent::Final(t)) => {
                    assert_eq!(t.text, want);
                    assert_eq!(t.end_ms, 1000);
                }
                other => panic!("{other:?}"),
            }
            assert_eq!(start.elapsed(), Duration::from_millis(100));
            assert!(events.recv().await.is_none());
        }
    }

    #[tokio::test(start_paused = true)]
    async fn brain_streams_its_script_and_ends_with_done() {
        let brain = ScriptedBrain::saying("One two.", Duration::from_millis(200), Duration::ZERO);
        let mut session = brain.start_call(&CallInfo::default());
        let mut rx = session.respond(&Conversation::default());
        let start = tokio::time::Instant::now();
        assert_eq!(rx.recv().await, Some(BrainEvent::Text("One ".into())));
        assert_eq!(start.elapsed(), Duration::from_millis(200));
        assert_eq!(rx.recv().await, Some(BrainEvent::Text("two.".into())));
        assert_eq!(rx.recv().await, Some(BrainEvent::Done));
        assert_eq!(rx.recv().await, None);
        assert_eq!(brain.seen.lock().unwrap().len(), 1);
    }

    #[tokio::test(start_paused = true)]
    async fn tts_speaks_each_segment_in_order_for_its_length() {
        let tts = ScriptedTts::default();
        let TtsStream { text, mut audio } = tts.start(&TtsOptions::default());
        text.send("abcde".into()).await.unwrap();
        text.send("xy".into()).await.unwrap();
        drop(text);
        let mut per_segment = [0usize; 2];
        let mut done = vec![];
        while let Some(ev) = audio.recv().await {
            match ev {
                TtsEvent::Audio { segment, chunk } => {
                    assert!(!done.contains(&segment));
                    per_segment[segment] += chunk.samples.len();
                }
                TtsEvent::SegmentDone { segment } => done.push(segment),
                TtsEvent::Error(e) => panic!("{e}"),
            }
        }
        assert_eq!(done, [0, 1]);
        // 60 ms per character at 16 kHz.
        assert_eq!(per_segment, [5 * 960, 2 * 960]);
    }
}
