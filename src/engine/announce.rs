//! The `announce` application: a number that is closed (its inbound AI
//! turned off) or outside its business hours speaks a message and hangs
//! up, or takes a voicemail: the message, a beep, then the caller is
//! recorded until they hang up or the time runs out. The recording is
//! stored on the call (`recording_path`) and transcribed when the server
//! has speech-to-text (`structured_data.voicemail.transcript`).

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use hotline_media::wav::{WavSpec, encode_wav};
use tokio::sync::{broadcast, mpsc};
use tracing::{info, warn};

use super::Ctx;
use super::app::{AppIo, ended, load_prompt, wait_end};
use crate::agent::provider::{SttEvent, SttOptions};
use crate::agent::service::AgentResult;
use crate::call::{CallCommand, CallEvent, TranscriptLine};
use crate::rtp::{FRAME_SAMPLES, MediaHandle, PCM_RATE, PTIME};

/// Longest voicemail a number may take.
pub const MAX_VOICEMAIL_SECS: u32 = 300;
/// Time allowed to transcribe a voicemail beyond its own length (local
/// Whisper runs at about real time on a small machine). The control plane
/// waits for the call's conclusion for longer than this plus the
/// voicemail's longest length.
const TRANSCRIBE_SLACK: Duration = Duration::from_secs(30);

/// What an `announce` number does.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Announcement {
    /// Text spoken with the server's voice (or `voice`).
    pub text: Option<String>,
    /// A prompt file under the data directory, played instead of `text`.
    pub prompt: Option<PathBuf>,
    /// TTS voice for `text`.
    pub voice: Option<String>,
    /// TTS language for `text`.
    pub language: Option<String>,
    /// Record a voicemail of at most this long after the message; hang
    /// up right after it when unset.
    pub voicemail_secs: Option<u32>,
}

/// The message's audio: 20 ms frames at [`PCM_RATE`].
pub(crate) async fn message(ctx: &Ctx, a: &Announcement) -> Vec<Vec<i16>> {
    if a.prompt.is_some() {
        match load_prompt(ctx, a.prompt.as_deref()).await {
            Ok(p) => return p.chunks(FRAME_SAMPLES).map(<[i16]>::to_vec).collect(),
            Err(e) => warn!(error = %e, "announce: the prompt is unusable"),
        }
    }
    if let (Some(text), Some(service)) = (&a.text, ctx.agents.get()) {
        let (tts, cache) = service.voice().await;
        match cache
            .warm(
                tts.as_ref(),
                a.voice.as_deref(),
                a.language.as_deref(),
                text,
            )
            .await
        {
            Ok(frames) => return frames.to_vec(),
            Err(e) => warn!(error = %e, "announce: cannot synthesize the message"),
        }
    }
    // Nothing to say: a beep rather than silence, so the caller hears the
    // line is alive before it hangs up.
    load_prompt(ctx, None)
        .await
        .map(|p| p.chunks(FRAME_SAMPLES).map(<[i16]>::to_vec).collect())
        .unwrap_or_default()
}

/// Plays `frames` on `media` and waits until they have been heard; false
/// when the call ended meanwhile (seen on `events`).
pub(crate) async fn say(
    media: &MediaHandle,
    events: &mut broadcast::Receiver<CallEvent>,
    frames: &[Vec<i16>],
) -> bool {
    // The session queues up to a second ahead: the audio has played one
    // clip-length after its first frame was queued.
    let played_out = Instant::now() + PTIME * frames.len() as u32;
    for frame in frames {
        tokio::select! {
            biased;
            ev = events.recv() => if ended(&ev) { return false },
            sent = media.play(frame.clone()) => if sent.is_err() { return false },
        }
    }
    loop {
        tokio::select! {
            ev = events.recv() => if ended(&ev) { return false },
            () = tokio::time::sleep_until(played_out.into()) => return true,
        }
    }
}

/// Runs the announcement until it (and the voicemail) is over.
pub(crate) async fn run(ctx: Arc<Ctx>, a: Announcement, mut io: AppIo) {
    let id = io.handle.id.clone();
    // Subscribed first: the end may come while the message plays.
    let mut end = io.handle.subscribe();
    let mut pcm = std::mem::replace(&mut io.pcm, mpsc::channel(1).1);
    // Until the voicemail starts the caller's audio is not used, but it is
    // read so the session counts no drops.
    let (stop_draining, mut stop) = tokio::sync::oneshot::channel::<()>();
    let drain = tokio::spawn(async move {
        loop {
            tokio::select! {
                _ = &mut stop => break,
                frame = pcm.recv() => if frame.is_none() { break },
            }
        }
        pcm
    });
    let frames = message(&ctx, &a).await;
    let heard = say(&io.media, &mut io.events, &frames).await;
    if let Some(text) = a
        .text
        .as_ref()
        .filter(|_| a.prompt.is_none() && !frames.is_empty())
    {
        // What was said goes in the call's transcript, as an agent's words
        // would (a voicemail's report reads it).
        let line = CallEvent::Transcript(TranscriptLine {
            speaker: "agent",
            text: text.clone(),
            is_final: true,
            start_ms: 0,
            end_ms: frames.len() as u64 * 20,
            interrupted: !heard,
        });
        io.registry.publish(&id, line.clone());
        let _ = io.publish.send(line);
    }
    let _ = stop_draining.send(());
    let pcm = drain.await.ok();
    let Some(secs) = a.voicemail_secs.filter(|_| heard) else {
        info!(call = %id, "announce: message said; hanging up");
        let _ = io.handle.command(CallCommand::Hangup);
        return;
    };
    let Some(mut pcm) = pcm else {
        let _ = io.handle.command(CallCommand::Hangup);
        return;
    };
    let event = CallEvent::Voicemail { max_secs: secs };
    io.registry.publish(&id, event.clone());
    let _ = io.publish.send(event);
    let beep = load_prompt(&ctx, None).await.unwrap_or_default();
    let beep: Vec<Vec<i16>> = beep.chunks(FRAME_SAMPLES).map(<[i16]>::to_vec).collect();
    let mut recorded: Vec<i16> = Vec::new();
    if say(&io.media, &mut io.events, &beep).await {
        let limit = secs.min(MAX_VOICEMAIL_SECS) as usize * PCM_RATE as usize;
        // Frames queued while the beep played are the line's, not the
        // caller's message.
        while pcm.try_recv().is_ok() {}
        let deadline = tokio::time::Instant::now() + Duration::from_secs(u64::from(secs));
        loop {
            tokio::select! {
                frame = pcm.recv() => match frame {
                    Some(f) => {
                        recorded.extend_from_slice(&f);
                        if recorded.len() >= limit {
                            recorded.truncate(limit);
                            break;
                        }
                    }
                    None => break,
                },
                ev = io.events.recv() => if ended(&ev) { break },
                () = tokio::time::sleep_until(deadline) => break,
            }
        }
    }
    info!(call = %id, ms = recorded.len() as u64 * 1000 / u64::from(PCM_RATE), "announce: voicemail recorded; hanging up");
    let _ = io.handle.command(CallCommand::Hangup);
    let result = conclude(&ctx, &id.to_string(), recorded).await;
    // After the call's end, like an agent's conclusion: the bridge stores
    // it on the record and then announces `call.completed`.
    wait_end(&mut end, &id, "announce").await;
    io.registry
        .publish(&id, CallEvent::AgentResult(Box::new(result)));
}

/// Stores the voicemail and transcribes it: the call's conclusion.
async fn conclude(ctx: &Ctx, call_id: &str, recorded: Vec<i16>) -> AgentResult {
    let duration_ms = recorded.len() as u64 * 1000 / u64::from(PCM_RATE);
    let mut result = AgentResult::default();
    if recorded.is_empty() {
        result.structured_data = Some(serde_json::json!({
            "voicemail": {"duration_ms": 0, "transcript": null}
        }));
        return result;
    }
    let path = ctx
        .config
        .data_dir
        .join("recordings")
        .join(format!("{call_id}.wav"));
    let samples = recorded.clone();
    let target = path.clone();
    let written = tokio::task::spawn_blocking(move || -> Result<(), String> {
        if let Some(dir) = target.parent() {
            std::fs::create_dir_all(dir).map_err(|e| e.to_string())?;
        }
        let wav = encode_wav(WavSpec::mono(PCM_RATE), &samples).map_err(|e| e.to_string())?;
        std::fs::write(&target, wav).map_err(|e| e.to_string())
    })
    .await
    .map_err(|e| e.to_string())
    .and_then(|r| r);
    match written {
        Ok(()) => result.recording_path = Some(path.display().to_string()),
        Err(e) => {
            warn!(call = call_id, error = %e, "announce: cannot store the voicemail");
            result.error = Some(format!("the voicemail could not be stored: {e}"));
        }
    }
    let transcript = transcribe(ctx, recorded).await;
    result.structured_data = Some(serde_json::json!({
        "voicemail": {"duration_ms": duration_ms, "transcript": transcript}
    }));
    result
}

/// The voicemail's words, if the server has speech-to-text.
async fn transcribe(ctx: &Ctx, recorded: Vec<i16>) -> Option<String> {
    let length = Duration::from_millis(recorded.len() as u64 * 1000 / u64::from(PCM_RATE));
    let service = ctx.agents.get()?;
    let stt = match service.default_stt().await {
        Ok(s) => s,
        Err(e) => {
            info!(error = %e, "announce: no speech-to-text for the voicemail");
            return None;
        }
    };
    let mut stream = stt.start(&SttOptions::default());
    let audio = stream.audio;
    tokio::spawn(async move {
        for frame in recorded.chunks(FRAME_SAMPLES) {
            if audio.send(frame.to_vec()).await.is_err() {
                break;
            }
        }
    });
    let collect = async {
        let mut words = Vec::new();
        while let Some(ev) = stream.events.recv().await {
            match ev {
                SttEvent::Final(t) if !t.text.trim().is_empty() => {
                    words.push(t.text.trim().to_owned())
                }
                SttEvent::Error(e) => {
                    warn!(error = %e, "announce: the voicemail could not be transcribed");
                    return None;
                }
                _ => {}
            }
        }
        Some(words.join(" "))
    };
    tokio::time::timeout(TRANSCRIBE_SLACK + length, collect)
        .await
        .ok()
        .flatten()
}
