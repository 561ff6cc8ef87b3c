//! What a call does once it is answered. Each application is a task of
//! its own that reads the caller's audio and events and plays audio back,
//! so a slow application can never hold up the call's signalling or its
//! RTP clock.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use hotline_media::prompt::{PromptOptions, decode_reader};
use hotline_media::tones::{ToneGenerator, ToneSpec};
use tokio::sync::{broadcast, mpsc};
use tracing::{info, warn};

use super::Ctx;
use crate::agent::service::AgentRequest;
use crate::call::{CallCommand, CallEvent, CallHandle, DigitCollector};
use crate::config::{NumberConfig, NumberMode};
use crate::rtp::{FRAME_SAMPLES, MediaHandle, PCM_RATE};

/// A call's application.
#[derive(Debug, Clone)]
pub enum CallApp {
    /// Send the caller's audio back: the classic trunk test line.
    Echo,
    /// Play a prompt, then collect digits; `rounds` times, then hang up.
    Play(PlaySpec),
    /// Hand the call's audio to the code that placed or routed the call,
    /// once it is answered: the way in for anything that is not built in
    /// (a voice agent, a bridge, a recorder).
    Stream(mpsc::Sender<CallAudio>),
    /// Run the voice agent.
    Agent(Box<AgentRequest>),
    /// Speak an alert and take its acknowledgement or snooze by keypad.
    Alert(Arc<crate::alerts::call::AlertCall>),
    /// Speak a message, then hang up or take a voicemail.
    Announce(Box<super::announce::Announcement>),
}

/// An answered call's audio, for a [`CallApp::Stream`] consumer.
#[derive(Debug)]
pub struct CallAudio {
    /// The call.
    pub handle: CallHandle,
    /// The caller's audio: 20 ms frames of 16 kHz mono PCM. Read it
    /// promptly; the call drops frames (and counts them) rather than wait.
    pub frames: mpsc::Receiver<Vec<i16>>,
    /// Audio out: [`MediaHandle::play`] or its [`pcm_sink`](MediaHandle::pcm_sink)
    /// for frames, [`flush_with_fade`](MediaHandle::flush_with_fade) to
    /// stop, [`send_dtmf`](MediaHandle::send_dtmf) for digits.
    pub media: MediaHandle,
}

/// What a `play` application plays and collects.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlaySpec {
    /// The prompt file; relative paths are under the data directory. A
    /// beep when unset.
    pub prompt: Option<PathBuf>,
    /// Collection ends after this many digits (or `#`).
    pub max_digits: usize,
    /// Collection ends after this long without a digit.
    pub digit_timeout: Duration,
    /// Prompt-and-collect rounds before hanging up.
    pub rounds: u32,
}

impl CallApp {
    /// The application a configured number runs; none for `forward`,
    /// whose call is bridged to its target's rather than run by an
    /// application.
    pub fn for_number(n: &NumberConfig) -> Option<CallApp> {
        Some(match n.mode {
            NumberMode::Echo => CallApp::Echo,
            NumberMode::Play => CallApp::Play(PlaySpec {
                prompt: n.prompt.clone(),
                max_digits: n.max_digits,
                digit_timeout: Duration::from_secs(n.digit_timeout_secs),
                rounds: 3,
            }),
            NumberMode::Agent => CallApp::Agent(Box::new(match &n.agent {
                Some(a) => AgentRequest {
                    org_id: Some(a.org_id.clone()),
                    agent_id: a.agent_id.clone(),
                    system_prompt: a.system_prompt.clone(),
                    first_message: a.first_message.clone(),
                    voice: a.voice.clone(),
                    language: a.language.clone(),
                    max_duration: a.max_duration_secs.map(Duration::from_secs),
                    record: a.record,
                    transfer_number: a.transfer_number.clone(),
                    flow: a.flow.clone(),
                    instructions: a.instructions.clone(),
                    context: a.context.clone(),
                    ..AgentRequest::default()
                },
                None => AgentRequest::default(),
            })),
            NumberMode::Announce => {
                CallApp::Announce(Box::new(n.announce.clone().unwrap_or_default()))
            }
            NumberMode::Forward => return None,
        })
    }
}

/// What an application gets to work with.
pub(crate) struct AppIo {
    pub handle: CallHandle,
    pub media: MediaHandle,
    pub pcm: mpsc::Receiver<Vec<i16>>,
    pub events: broadcast::Receiver<CallEvent>,
    pub publish: broadcast::Sender<CallEvent>,
    pub registry: crate::call::CallRegistry,
    /// The call's trunk, if it has one.
    pub trunk: Option<String>,
}

/// Whether a call event (or the stream's closing) means the call is over.
pub(crate) fn ended(ev: &Result<CallEvent, broadcast::error::RecvError>) -> bool {
    matches!(
        ev,
        Ok(CallEvent::Ended(_)) | Err(broadcast::error::RecvError::Closed)
    )
}

/// Resolves when the call is over.
pub(crate) async fn until_ended(end: &mut broadcast::Receiver<CallEvent>) {
    while !ended(&end.recv().await) {}
}

/// Waits for the call's end after the application hung up, as long as a
/// BYE transaction may take (32 s); `who` names the application in the
/// warning when it does not come.
pub(crate) async fn wait_end(
    end: &mut broadcast::Receiver<CallEvent>,
    call: &crate::call::CallId,
    who: &str,
) {
    if tokio::time::timeout(Duration::from_secs(40), until_ended(end))
        .await
        .is_err()
    {
        warn!(%call, who, "the call did not end after its application finished");
    }
}

/// Runs `app` until the call ends.
pub(crate) async fn run(ctx: Arc<Ctx>, app: CallApp, io: AppIo) {
    match app {
        CallApp::Echo => echo(io).await,
        CallApp::Play(spec) => play(ctx, spec, io).await,
        CallApp::Agent(request) => super::agent_app::run(ctx, *request, io).await,
        CallApp::Alert(call) => super::alert_app::run(call, io).await,
        CallApp::Announce(a) => super::announce::run(ctx, *a, io).await,
        CallApp::Stream(to) => {
            let audio = CallAudio {
                handle: io.handle.clone(),
                frames: io.pcm,
                media: io.media,
            };
            if to.send(audio).await.is_err() {
                // Nobody takes the audio: the call has no purpose.
                let _ = io.handle.command(CallCommand::Hangup);
            }
        }
    }
}

async fn echo(mut io: AppIo) {
    let sink = io.media.pcm_sink();
    while let Some(frame) = io.pcm.recv().await {
        // The sink holds a second of audio; if it is ever full the call's
        // clock stalled and dropping is the right answer for an echo.
        if sink.try_send(frame).is_err() && sink.is_closed() {
            break;
        }
    }
}

async fn play(ctx: Arc<Ctx>, spec: PlaySpec, mut io: AppIo) {
    let prompt = match load_prompt(&ctx, spec.prompt.as_deref()).await {
        Ok(p) => p,
        Err(e) => {
            warn!(call = %io.handle.id, error = %e, "prompt unusable, playing a beep instead");
            beep()
        }
    };
    // The caller's audio is not used, but the channel must be drained so
    // the media task does not count drops.
    let mut pcm = std::mem::replace(&mut io.pcm, mpsc::channel(1).1);
    tokio::spawn(async move { while pcm.recv().await.is_some() {} });
    // The media session paces what it is given at the RTP clock and
    // queues up to a second ahead, so the prompt has played out one
    // prompt-length after its first frame was queued (the queue is empty
    // then: the previous round waited for its own playout).
    let prompt_length = Duration::from_secs_f64(prompt.len() as f64 / f64::from(PCM_RATE));
    for _ in 0..spec.rounds.max(1) {
        let played_out = Instant::now() + prompt_length;
        let mut collector: Option<DigitCollector> = None;
        // The prompt, interrupted by the first digit (barge-in).
        for chunk in prompt.chunks(FRAME_SAMPLES) {
            tokio::select! {
                biased;
                ev = io.events.recv() => match ev {
                    Ok(CallEvent::Dtmf { digit, .. }) => {
                        let _ = io.media.flush_with_fade().await;
                        let mut c = DigitCollector::new(spec.max_digits, spec.digit_timeout, Instant::now());
                        if let Some(done) = c.push(digit, Instant::now()) {
                            report(&io, &done.digits, done.end);
                            collector = None;
                            break;
                        }
                        collector = Some(c);
                        break;
                    }
                    Ok(CallEvent::Ended(_)) | Err(broadcast::error::RecvError::Closed) => return,
                    _ => {}
                },
                sent = io.media.play(chunk.to_vec()) => if sent.is_err() { return },
            }
        }
        let mut c = match collector {
            Some(c) => c,
            None => {
                // Wait for the queued prompt audio to play out before the
                // digit timeout starts: queuing ends up to a second early.
                tokio::time::sleep_until(played_out.into()).await;
                DigitCollector::new(spec.max_digits, spec.digit_timeout, Instant::now())
            }
        };
        loop {
            let deadline = c.deadline().unwrap_or_else(Instant::now);
            tokio::select! {
                ev = io.events.recv() => match ev {
                    Ok(CallEvent::Dtmf { digit, .. }) => {
                        if let Some(done) = c.push(digit, Instant::now()) {
                            report(&io, &done.digits, done.end);
                            break;
                        }
                    }
                    Ok(CallEvent::Ended(_)) | Err(broadcast::error::RecvError::Closed) => return,
                    _ => {}
                },
                () = tokio::time::sleep_until(deadline.into()) => {
                    if let Some(done) = c.poll(Instant::now()) {
                        report(&io, &done.digits, done.end);
                        break;
                    }
                }
            }
        }
    }
    // A short pause after the last collection rather than a BYE on the
    // heels of the caller's last key.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let _ = io.handle.command(CallCommand::Hangup);
}

fn report(io: &AppIo, digits: &str, end: crate::call::CollectEnd) {
    info!(call = %io.handle.id, digits, end = ?end, "digits collected");
    let event = CallEvent::DigitsCollected {
        digits: digits.to_owned(),
    };
    io.registry.publish(&io.handle.id, event.clone());
    let _ = io.publish.send(event);
}

/// A short beep, the prompt of a `play` number without a file.
fn beep() -> Arc<[i16]> {
    let mut generator = match ToneGenerator::new(&ToneSpec::beep(), PCM_RATE) {
        Ok(g) => g,
        Err(_) => return Arc::from(vec![0i16; FRAME_SAMPLES * 10]),
    };
    let mut out = vec![0i16; PCM_RATE as usize];
    let n = generator.fill(&mut out);
    out.truncate(n.max(FRAME_SAMPLES));
    Arc::from(out)
}

/// Decodes a prompt file once; later calls share the samples.
pub(crate) async fn load_prompt(ctx: &Ctx, path: Option<&Path>) -> anyhow::Result<Arc<[i16]>> {
    let Some(path) = path else {
        return Ok(beep());
    };
    let path = if path.is_absolute() {
        path.to_owned()
    } else {
        ctx.config.data_dir.join(path)
    };
    if let Some(p) = ctx.prompts.get(&path) {
        return Ok(p.clone());
    }
    let p2 = path.clone();
    let prompt = tokio::task::spawn_blocking(move || -> anyhow::Result<Arc<[i16]>> {
        let file = std::fs::File::open(&p2)
            .map_err(|e| anyhow::anyhow!("cannot open {}: {e}", p2.display()))?;
        let mut opts = PromptOptions::new(PCM_RATE);
        if let Some(ext) = p2.extension().and_then(|e| e.to_str()) {
            opts = opts.extension(ext);
        }
        let prompt = decode_reader(file, &opts)?;
        Ok(Arc::from(prompt.samples))
    })
    .await??;
    ctx.prompts.insert(path, prompt.clone());
    Ok(prompt)
}
