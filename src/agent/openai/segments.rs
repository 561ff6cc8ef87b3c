//! Segment-by-segment synthesis, for TTS services that take one request
//! (or one connection) per text segment.
//!
//! Audio goes out in segment order, each chunk as soon as it arrives;
//! meanwhile the next `lookahead` segments are already being fetched, each
//! into a small bounded buffer, so the next sentence is ready when this one
//! ends without fetching the whole reply ahead (a barge-in would waste it).
//! Dropping the audio receiver drops every buffer, which ends every fetch.

use std::future::Future;

use tokio::sync::mpsc;

use crate::agent::provider::{PcmChunk, ProviderError, STREAM_CAPACITY, TtsEvent, TtsStream};

/// Chunks buffered per segment ahead of playback: with network chunks of
/// a few kilobytes, a couple of seconds of audio.
const SEGMENT_BUFFER: usize = 16;

/// Where a fetch sends its segment's samples, or the failure that ends it.
/// Closing it (returning) ends the segment.
pub(crate) type SegmentTx = mpsc::Sender<Result<Vec<i16>, ProviderError>>;

/// Starts a stream whose segments are each fetched by `fetch(text, tx)`.
/// Blank segments are done at once, without a fetch.
pub(crate) fn start<F, Fut>(rate: u32, lookahead: usize, fetch: F) -> TtsStream
where
    F: Fn(String, SegmentTx) -> Fut + Send + 'static,
    Fut: Future<Output = ()> + Send + 'static,
{
    let (text_tx, text_rx) = mpsc::channel::<String>(STREAM_CAPACITY);
    let (out_tx, out_rx) = mpsc::channel(STREAM_CAPACITY);
    // The queue's capacity is the lookahead: a segment's fetch starts only
    // once it has a place in the queue.
    let (queue_tx, queue_rx) = mpsc::channel(lookahead.max(1));
    tokio::spawn(fetch_segments(fetch, text_rx, queue_tx));
    tokio::spawn(play(rate, queue_rx, out_tx));
    TtsStream {
        text: text_tx,
        audio: out_rx,
    }
}

type SegmentAudio = mpsc::Receiver<Result<Vec<i16>, ProviderError>>;

/// Starts each segment's fetch as soon as the queue has room for it.
async fn fetch_segments<F, Fut>(
    fetch: F,
    mut text_rx: mpsc::Receiver<String>,
    queue_tx: mpsc::Sender<(usize, SegmentAudio)>,
) where
    F: Fn(String, SegmentTx) -> Fut,
    Fut: Future<Output = ()> + Send + 'static,
{
    let mut segment = 0;
    loop {
        let text = tokio::select! {
            _ = queue_tx.closed() => return,
            text = text_rx.recv() => match text {
                Some(t) => t,
                None => return,
            },
        };
        let Ok(permit) = queue_tx.reserve().await else {
            return;
        };
        let (seg_tx, seg_rx) = mpsc::channel(SEGMENT_BUFFER);
        // Nothing to say: the segment is done at once, with no request.
        if !text.trim().is_empty() {
            tokio::spawn(fetch(text, seg_tx));
        }
        permit.send((segment, seg_rx));
        segment += 1;
    }
}

/// Forwards the segments' audio in order.
async fn play(
    rate: u32,
    mut queue_rx: mpsc::Receiver<(usize, SegmentAudio)>,
    out: mpsc::Sender<TtsEvent>,
) {
    loop {
        let next = tokio::select! {
            _ = out.closed() => return,
            next = queue_rx.recv() => next,
        };
        let Some((segment, mut audio)) = next else {
            return;
        };
        loop {
            let item = tokio::select! {
                _ = out.closed() => return,
                item = audio.recv() => item,
            };
            let event = match item {
                Some(Ok(samples)) => TtsEvent::Audio {
                    segment,
                    chunk: PcmChunk { rate, samples },
                },
                Some(Err(e)) => {
                    let _ = out.send(TtsEvent::Error(e)).await;
                    return;
                }
                None => break,
            };
            if out.send(event).await.is_err() {
                return;
            }
        }
        if out.send(TtsEvent::SegmentDone { segment }).await.is_err() {
            return;
        }
    }
}

/// Little-endian 16-bit samples from a byte stream cut anywhere: an odd
/// byte waits for its partner in the next chunk.
#[derive(Debug, Default)]
pub(crate) struct PcmDecoder {
    carry: Option<u8>,
}

impl PcmDecoder {
    pub fn push(&mut self, bytes: &[u8]) -> Vec<i16> {
        let mut out = Vec::with_capacity(bytes.len() / 2 + 1);
        let mut rest = bytes;
        if let Some(low) = self.carry.take() {
            match rest.split_first() {
                Some((&high, tail)) => {
                    out.push(i16::from_le_bytes([low, high]));
                    rest = tail;
                }
                None => {
                    self.carry = Some(low);
                    return out;
                }
            }
        }
        let mut pairs = rest.chunks_exact(2);
        out.extend(pairs.by_ref().map(|p| i16::from_le_bytes([p[0], p[1]])));
        self.carry = pairs.remainder().first().copied();
        out
    }

    /// True when a byte is left over (the stream ended mid-sample).
    pub fn has_carry(&self) -> bool {
        self.carry.is_some()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn samples_survive_any_cut_of_the_byte_stream() {
        let samples: Vec<i16> = (0..500).map(|i| (i * 131 - 30_000) as i16).collect();
        let bytes: Vec<u8> = samples.iter().flat_map(|s| s.to_le_bytes()).collect();
        for cut in [1, 2, 3, 7, 333, 1000] {
            let mut d = PcmDecoder::default();
            let got: Vec<i16> = bytes.chunks(cut).flat_map(|c| d.push(c)).collect();
            assert_eq!(got, samples, "cut {cut}");
            assert!(!d.has_carry());
        }
        let mut d = PcmDecoder::default();
        assert!(d.push(&[1]).is_empty());
        assert!(d.push(&[]).is_empty());
        assert_eq!(d.push(&[2, 3]), vec![0x0201]);
        assert!(d.has_carry());
    }
}
