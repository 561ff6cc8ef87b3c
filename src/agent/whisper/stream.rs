//! One recognition stream: gathers an utterance's audio, asks the pool
//! for partials while it grows, and for the final when it ends.

use std::sync::Arc;

use tokio::sync::mpsc;
use tokio::sync::mpsc::error::TrySendError;

use super::pool::{Gate, Outcome, Pending, Pool};
use crate::agent::provider::{STT_RATE, SttEvent, Transcript};

/// How a stream behaves; fixed when it starts.
#[derive(Debug, Clone, Copy)]
pub(crate) struct StreamSettings {
    pub language: &'static str,
    pub partials: bool,
    /// New audio between two partials, in samples.
    pub partial_every: usize,
    /// Longest utterance kept, in samples.
    pub max_samples: usize,
    pub gate: Option<Gate>,
}

/// Runs a stream until its final is sent or its events receiver is
/// dropped.
pub(crate) async fn run(
    pool: Arc<Pool>,
    settings: StreamSettings,
    mut audio: mpsc::Receiver<Vec<i16>>,
    events: mpsc::Sender<SttEvent>,
) {
    let mut pcm: Vec<f32> = Vec::with_capacity(STT_RATE as usize * 5);
    let mut dropped = 0usize;
    let mut partial: Option<Pending> = None;
    let mut partial_from = 0usize;
    let mut last_partial = String::new();
    // Once Silero has heard speech in this utterance, later passes skip
    // the check: the audio only grows.
    let mut speech_heard = false;

    loop {
        tokio::select! {
            biased;
            () = events.closed() => return,
            result = async { partial.as_mut().expect("guarded").wait().await }, if partial.is_some() => {
                partial = None;
                match result {
                    Ok(Outcome::Text { text, end_ms, .. }) => {
                        speech_heard = true;
                        if !text.is_empty() && text != last_partial {
                            let t = Transcript { text: text.clone(), start_ms: 0, end_ms };
                            // A partial is superseded by the next one: when
                            // the consumer lags it is skipped, never queued.
                            match events.try_send(SttEvent::Partial(t)) {
                                Ok(()) => last_partial = text,
                                Err(TrySendError::Full(_)) => {}
                                Err(TrySendError::Closed(_)) => return,
                            }
                        }
                    }
                    Ok(Outcome::NoSpeech | Outcome::Cancelled) => {}
                    // The final will report a persistent failure.
                    Err(e) => tracing::debug!(error = %e, "whisper partial failed"),
                }
            }
            frame = audio.recv() => match frame {
                Some(frame) => {
                    let room = settings.max_samples.saturating_sub(pcm.len());
                    let take = frame.len().min(room);
                    pcm.extend(frame[..take].iter().map(|&s| f32::from(s) / 32768.0));
                    if take < frame.len() {
                        if dropped == 0 {
                            tracing::warn!(
                                max_secs = settings.max_samples / STT_RATE as usize,
                                "utterance longer than whisper.max_utterance_secs: the rest is not transcribed"
                            );
                        }
                        dropped += frame.len() - take;
                    }
                    if settings.partials
                        && partial.is_none()
                        && pcm.len() >= partial_from + settings.partial_every
                        && take > 0
                    {
                        let gate = if speech_heard { None } else { settings.gate };
                        match pool.try_partial(pcm.clone(), settings.language, gate) {
                            Some(Ok(job)) => {
                                partial = Some(job);
                                partial_from = pcm.len();
                            }
                            Some(Err(e)) => tracing::debug!(error = %e, "whisper partial not started"),
                            None => {}
                        }
                    }
                }
                None => break,
            },
        }
    }

    // The final supersedes any guess still running.
    drop(partial);
    let audio_ms = pcm.len() as u64 * 1000 / u64::from(STT_RATE);
    if pcm.is_empty() {
        let _ = events
            .send(SttEvent::Final(Transcript {
                text: String::new(),
                start_ms: 0,
                end_ms: 0,
            }))
            .await;
        return;
    }
    let gate = if speech_heard { None } else { settings.gate };
    let mut job = tokio::select! {
        () = events.closed() => return,
        job = pool.run_final(pcm, settings.language, gate) => match job {
            Ok(job) => job,
            Err(e) => {
                let _ = events.send(SttEvent::Error(e)).await;
                return;
            }
        },
    };
    let result = tokio::select! {
        () = events.closed() => return,
        r = job.wait() => r,
    };
    let event = match result {
        Ok(Outcome::Text {
            text,
            start_ms,
            end_ms,
        }) => SttEvent::Final(Transcript {
            text,
            start_ms,
            end_ms,
        }),
        Ok(Outcome::NoSpeech) => SttEvent::Final(Transcript {
            text: String::new(),
            start_ms: 0,
            end_ms: audio_ms,
        }),
        Ok(Outcome::Cancelled) => return,
        Err(e) => SttEvent::Error(e),
    };
    let _ = events.send(event).await;
}
