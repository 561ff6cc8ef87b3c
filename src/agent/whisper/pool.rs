//! The inference pool: the model loaded once per process, and a fixed set
//! of worker threads, each with a whisper.cpp state (its KV caches and
//! compute buffers) and a Silero context of its own.
//!
//! Admission is a semaphore with one permit per worker: a job is only
//! handed over with a permit, so the job channel never holds more jobs
//! than there are idle workers, and nothing queues inside the pool. A
//! final waits for a permit (and, while it waits, keeps new partials out);
//! a partial takes one only if it is free at once.

use std::cell::RefCell;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::mpsc::{Receiver, SyncSender, TrySendError, sync_channel};
use std::sync::{Arc, Mutex, Weak};

use tokio::sync::{OwnedSemaphorePermit, Semaphore, oneshot};
use whisper_rs::{
    FullParams, SamplingStrategy, WhisperContext, WhisperContextParameters, WhisperState,
    WhisperVadContext,
};

use super::text;
use crate::agent::provider::{ProviderError, STT_RATE};
use crate::agent::silero::{self, SpeechVerdict};

use super::NAME;

/// whisper.cpp returns no text for less than a second of audio; shorter
/// utterances ("yes") are padded with silence up to this.
const MIN_SAMPLES: usize = STT_RATE as usize * 11 / 10;

/// Audio samples per encoder position (whisper's 1500 positions are 30 s).
const SAMPLES_PER_FRAME: usize = 320;
const FRAMES_PER_SEC: usize = 50;
/// whisper's full window, in encoder positions.
const FULL_AUDIO_CTX: usize = 1500;
/// A fitted window is never shorter than this (about 5 s): below it tiny
/// misheard one-word answers ("Yes." as "S.").
const MIN_AUDIO_CTX: usize = 256;
/// Room after the audio in a fitted window (about 1.3 s).
const AUDIO_CTX_MARGIN: usize = 64;
const MIN_TOKENS: usize = 32;
const TOKENS_PER_SEC: usize = 10;

/// The encoder window for `frames` positions of audio.
fn fitted_audio_ctx(frames: usize) -> usize {
    (frames + AUDIO_CTX_MARGIN).clamp(MIN_AUDIO_CTX, FULL_AUDIO_CTX)
}

/// Which kind of inference a job is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Pass {
    /// A quick guess on the audio so far: one segment, no timestamps, no
    /// temperature fallback.
    Partial,
    /// The settled text, with segment timings.
    Final,
}

/// What an inference found.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Outcome {
    /// Silero found no speech: whisper was not run.
    NoSpeech,
    /// Whisper's text (possibly empty) and where it lies in the audio.
    Text {
        text: String,
        start_ms: u64,
        end_ms: u64,
    },
    /// The job was cancelled before or while it ran.
    Cancelled,
}

/// Silero's verdict on a whole utterance, for the speech gate. Lenient on
/// purpose: it only keeps whisper away from audio with no voice at all
/// (silence, hiss, hum, tones), where whisper invents text.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Gate {
    pub threshold: f32,
    pub min_speech_ms: u32,
}

struct Job {
    pass: Pass,
    samples: Vec<f32>,
    language: &'static str,
    /// Run Silero first and skip whisper when it hears no speech.
    gate: Option<Gate>,
    cancel: Arc<AtomicBool>,
    reply: oneshot::Sender<Result<Outcome, ProviderError>>,
    /// Held until the worker is done with the job.
    _permit: OwnedSemaphorePermit,
}

/// A job handed to a worker. Dropping it cancels the inference (a running
/// one stops at the next graph node through whisper.cpp's abort callback).
pub(crate) struct Pending {
    rx: oneshot::Receiver<Result<Outcome, ProviderError>>,
    cancel: Arc<AtomicBool>,
}

impl Pending {
    /// Waits for the result. Cancel-safe: dropping the future leaves the
    /// job running until `self` is dropped.
    pub async fn wait(&mut self) -> Result<Outcome, ProviderError> {
        match (&mut self.rx).await {
            Ok(r) => r,
            Err(_) => Err(ProviderError::new(NAME, "whisper worker stopped", true)),
        }
    }
}

impl Drop for Pending {
    fn drop(&mut self) {
        self.cancel.store(true, Ordering::Relaxed);
    }
}

/// Settings of the decoder that do not change per job.
#[derive(Debug, Clone, Copy)]
pub(crate) struct DecodeSettings {
    pub threads: usize,
    /// Size the encoder to the audio instead of whisper's 30 s.
    pub fit_audio_ctx: bool,
    pub no_speech_threshold: f32,
}

/// The workers and their admission control.
pub(crate) struct Pool {
    jobs: SyncSender<Job>,
    slots: Arc<Semaphore>,
    /// Finals waiting for a permit: while there are any, partials stay out
    /// so that a turn's end is never stuck behind someone's guess.
    finals_waiting: AtomicUsize,
    multilingual: bool,
    stats: Arc<Counters>,
}

/// What the workers did, for metrics and tests.
#[derive(Debug, Default)]
pub(crate) struct Counters {
    pub runs: AtomicU64,
    pub completed: AtomicU64,
    pub cancelled: AtomicU64,
    pub no_speech: AtomicU64,
    pub failed: AtomicU64,
    pub running: AtomicU64,
}

impl Pool {
    /// Loads (or shares) the model and starts `workers` threads.
    pub fn start(
        model_path: &Path,
        vad_path: Option<&Path>,
        workers: usize,
        settings: DecodeSettings,
    ) -> Result<Arc<Pool>, ProviderError> {
        let workers = workers.max(1);
        let ctx = load_model(model_path)?;
        let (tx, rx) = sync_channel::<Job>(workers);
        let rx = Arc::new(Mutex::new(rx));
        let stats = Arc::new(Counters::default());
        for i in 0..workers {
            let state = ctx.create_state().map_err(|e| {
                ProviderError::new(NAME, format!("cannot create a whisper state: {e}"), false)
            })?;
            let vad = vad_path.map(silero::load_context).transpose()?;
            let rx = rx.clone();
            let stats = stats.clone();
            std::thread::Builder::new()
                .name(format!("hl-whisper-{i}"))
                .spawn(move || worker(state, vad, rx, settings, &stats))
                .map_err(|e| {
                    ProviderError::new(NAME, format!("cannot start a whisper thread: {e}"), false)
                })?;
        }
        Ok(Arc::new(Pool {
            jobs: tx,
            slots: Arc::new(Semaphore::new(workers)),
            finals_waiting: AtomicUsize::new(0),
            multilingual: ctx.is_multilingual(),
            stats,
        }))
    }

    /// The workers' counters.
    pub fn stats(&self) -> &Counters {
        &self.stats
    }

    /// True when the model knows languages other than English.
    pub fn multilingual(&self) -> bool {
        self.multilingual
    }

    /// Starts a partial if a worker is idle and no final is waiting;
    /// `None` otherwise (the partial is skipped, not queued).
    pub fn try_partial(
        &self,
        samples: Vec<f32>,
        language: &'static str,
        gate: Option<Gate>,
    ) -> Option<Result<Pending, ProviderError>> {
        if self.finals_waiting.load(Ordering::Acquire) > 0 {
            return None;
        }
        let permit = self.slots.clone().try_acquire_owned().ok()?;
        Some(self.submit(permit, Pass::Partial, samples, language, gate))
    }

    /// Waits for a worker and starts a final. Cancel-safe: dropping the
    /// future gives up the place in line.
    pub async fn run_final(
        &self,
        samples: Vec<f32>,
        language: &'static str,
        gate: Option<Gate>,
    ) -> Result<Pending, ProviderError> {
        let permit = {
            let _waiting = WaitingFinal::new(&self.finals_waiting);
            self.slots
                .clone()
                .acquire_owned()
                .await
                .map_err(|_| ProviderError::new(NAME, "whisper pool closed", false))?
        };
        self.submit(permit, Pass::Final, samples, language, gate)
    }

    fn submit(
        &self,
        permit: OwnedSemaphorePermit,
        pass: Pass,
        samples: Vec<f32>,
        language: &'static str,
        gate: Option<Gate>,
    ) -> Result<Pending, ProviderError> {
        let (reply, rx) = oneshot::channel();
        let cancel = Arc::new(AtomicBool::new(false));
        let job = Job {
            pass,
            samples,
            language,
            gate,
            cancel: cancel.clone(),
            reply,
            _permit: permit,
        };
        match self.jobs.try_send(job) {
            Ok(()) => Ok(Pending { rx, cancel }),
            // Cannot happen while every job holds a permit; reported rather
            // than waited on so the runtime thread never blocks.
            Err(TrySendError::Full(_)) => {
                Err(ProviderError::new(NAME, "whisper job queue full", true))
            }
            Err(TrySendError::Disconnected(_)) => {
                Err(ProviderError::new(NAME, "whisper workers stopped", false))
            }
        }
    }
}

/// Counts a final as waiting for as long as it lives.
struct WaitingFinal<'a>(&'a AtomicUsize);

impl<'a> WaitingFinal<'a> {
    fn new(n: &'a AtomicUsize) -> Self {
        n.fetch_add(1, Ordering::AcqRel);
        WaitingFinal(n)
    }
}

impl Drop for WaitingFinal<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

/// Models loaded in this process, by path: every [`super::WhisperStt`]
/// on the same file shares one copy of the weights.
static MODELS: Mutex<Vec<(PathBuf, Weak<WhisperContext>)>> = Mutex::new(Vec::new());

fn load_model(path: &Path) -> Result<Arc<WhisperContext>, ProviderError> {
    if !path.is_file() {
        return Err(ProviderError::new(
            NAME,
            format!(
                "Whisper model not found at {}: run `scripts/models` to install it",
                path.display()
            ),
            false,
        ));
    }
    let key = path.canonicalize().unwrap_or_else(|_| path.to_owned());
    // Held while loading so two streams starting together load it once.
    let mut models = MODELS.lock().unwrap_or_else(|e| e.into_inner());
    models.retain(|(_, m)| m.strong_count() > 0);
    if let Some(ctx) = models
        .iter()
        .find(|(p, _)| *p == key)
        .and_then(|(_, m)| m.upgrade())
    {
        return Ok(ctx);
    }
    whisper_rs::install_logging_hooks();
    let mut params = WhisperContextParameters::default();
    params.use_gpu(false);
    let ctx = WhisperContext::new_with_params(&key, params).map_err(|e| {
        ProviderError::new(
            NAME,
            format!(
                "cannot load Whisper model {} ({e}): not a whisper.cpp ggml file? \
                 `scripts/models` installs a working one",
                path.display()
            ),
            false,
        )
    })?;
    let ctx = Arc::new(ctx);
    models.push((key, Arc::downgrade(&ctx)));
    Ok(ctx)
}

/// A worker thread: takes jobs until the pool is dropped.
fn worker(
    mut state: WhisperState,
    mut vad: Option<WhisperVadContext>,
    jobs: Arc<Mutex<Receiver<Job>>>,
    settings: DecodeSettings,
    stats: &Counters,
) {
    let mut final_params = decode_params(Pass::Final, settings.threads);
    let mut partial_params = decode_params(Pass::Partial, settings.threads);
    loop {
        let job = {
            let rx = jobs.lock().unwrap_or_else(|e| e.into_inner());
            match rx.recv() {
                Ok(job) => job,
                Err(_) => return,
            }
        };
        let params = match job.pass {
            Pass::Final => &mut final_params,
            Pass::Partial => &mut partial_params,
        };
        let run = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            run_job(&job, &mut state, vad.as_mut(), params, settings, stats)
        }));
        CURRENT_CANCEL.with(|c| c.borrow_mut().take());
        let result = run
            .unwrap_or_else(|_| Err(ProviderError::new(NAME, "whisper inference panicked", true)));
        let counter = match &result {
            Ok(Outcome::Text { .. }) => &stats.completed,
            Ok(Outcome::Cancelled) => &stats.cancelled,
            Ok(Outcome::NoSpeech) => &stats.no_speech,
            Err(_) => &stats.failed,
        };
        counter.fetch_add(1, Ordering::Relaxed);
        let _ = job.reply.send(result);
    }
}

thread_local! {
    /// The cancel flag of the job this worker thread is running.
    static CURRENT_CANCEL: RefCell<Option<Arc<AtomicBool>>> = const { RefCell::new(None) };
}

/// whisper.cpp's abort callback: polled between graph nodes on the thread
/// that called `whisper_full` (ggml's thread 0), so a thread-local finds
/// the running job's flag.
///
/// It captures nothing on purpose: whisper-rs 0.16's
/// `set_abort_callback_safe` hands whisper.cpp a pointer to its boxed
/// closure where the trampoline expects the closure itself, which only a
/// zero-sized closure survives (a capturing one crashed). Being built once
/// per worker also keeps the box whisper-rs leaks per parameter set to
/// two per worker, instead of one per inference.
fn aborted() -> bool {
    CURRENT_CANCEL.with(|c| {
        c.borrow()
            .as_ref()
            .is_some_and(|f| f.load(Ordering::Relaxed))
    })
}

fn decode_params(pass: Pass, threads: usize) -> FullParams<'static, 'static> {
    let mut p = FullParams::new(SamplingStrategy::Greedy { best_of: 1 });
    p.set_n_threads(i32::try_from(threads.max(1)).unwrap_or(1));
    p.set_translate(false);
    // Each utterance stands alone: text from another call must never
    // prompt this one.
    p.set_no_context(true);
    p.set_print_special(false);
    p.set_print_progress(false);
    p.set_print_realtime(false);
    p.set_print_timestamps(false);
    p.set_suppress_blank(true);
    // Non-speech tokens (brackets, music notes, …) are how whisper writes
    // "[BLANK_AUDIO]" and "(music)" over noise.
    p.set_suppress_nst(true);
    p.set_detect_language(false);
    match pass {
        Pass::Final => {
            p.set_single_segment(false);
            p.set_no_timestamps(false);
        }
        Pass::Partial => {
            p.set_single_segment(true);
            p.set_no_timestamps(true);
            // A guess is superseded a second later: no second tries at
            // higher temperatures.
            p.set_temperature_inc(0.0);
        }
    }
    p.set_abort_callback_safe(aborted);
    p
}

fn run_job(
    job: &Job,
    state: &mut WhisperState,
    vad: Option<&mut WhisperVadContext>,
    params: &mut FullParams<'static, 'static>,
    settings: DecodeSettings,
    stats: &Counters,
) -> Result<Outcome, ProviderError> {
    // Nobody will read the result: do not start.
    if job.cancel.load(Ordering::Relaxed) || job.reply.is_closed() {
        return Ok(Outcome::Cancelled);
    }
    if job.samples.is_empty() {
        return Ok(Outcome::NoSpeech);
    }
    if let (Some(gate), Some(vad)) = (job.gate, vad) {
        let probs = silero::probabilities(vad, &job.samples)?;
        let verdict = SpeechVerdict::from_probabilities(&probs, gate.threshold, gate.min_speech_ms);
        if !verdict.speech {
            return Ok(Outcome::NoSpeech);
        }
        if job.cancel.load(Ordering::Relaxed) {
            return Ok(Outcome::Cancelled);
        }
    }
    let audio_ms = job.samples.len() as u64 * 1000 / u64::from(STT_RATE);
    let padded;
    let samples: &[f32] = if job.samples.len() < MIN_SAMPLES {
        let mut p = job.samples.clone();
        p.resize(MIN_SAMPLES, 0.0);
        padded = p;
        &padded
    } else {
        &job.samples
    };
    params.set_language(Some(job.language));
    CURRENT_CANCEL.with(|c| *c.borrow_mut() = Some(job.cancel.clone()));
    stats.runs.fetch_add(1, Ordering::Relaxed);
    stats.running.fetch_add(1, Ordering::Relaxed);
    let mut p = params.clone();
    let frames = samples.len().div_ceil(SAMPLES_PER_FRAME);
    if settings.fit_audio_ctx {
        p.set_audio_ctx(i32::try_from(fitted_audio_ctx(frames)).unwrap_or(0));
    }
    // Bounds a repetition loop (whisper's failure mode on odd audio) to
    // what the utterance could hold; ample for speech at any rate.
    let max_tokens = MIN_TOKENS + TOKENS_PER_SEC * frames / FRAMES_PER_SEC;
    p.set_max_tokens(i32::try_from(max_tokens).unwrap_or(0));
    let result = state.full(p, samples);
    stats.running.fetch_sub(1, Ordering::Relaxed);
    CURRENT_CANCEL.with(|c| c.borrow_mut().take());
    if job.cancel.load(Ordering::Relaxed) {
        return Ok(Outcome::Cancelled);
    }
    result.map_err(|e| ProviderError::new(NAME, format!("whisper inference failed: {e}"), true))?;

    let mut segments = Vec::new();
    for seg in state.as_iter() {
        let Ok(raw) = seg.to_str_lossy() else {
            continue;
        };
        segments.push(text::Segment {
            text: raw.into_owned(),
            start_ms: u64::try_from(seg.start_timestamp()).unwrap_or(0) * 10,
            end_ms: u64::try_from(seg.end_timestamp()).unwrap_or(0) * 10,
            no_speech: seg.no_speech_probability(),
        });
    }
    let (text, start_ms, end_ms) =
        text::join(&segments, settings.no_speech_threshold, audio_ms, job.pass);
    Ok(Outcome::Text {
        text,
        start_ms,
        end_ms,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_fitted_window_covers_the_audio_within_whisper_limits() {
        assert_eq!(fitted_audio_ctx(0), MIN_AUDIO_CTX);
        // 4 s of audio: 200 positions and the margin.
        assert_eq!(fitted_audio_ctx(200), MIN_AUDIO_CTX.max(264));
        assert_eq!(fitted_audio_ctx(400), 464);
        assert_eq!(fitted_audio_ctx(1500), FULL_AUDIO_CTX);
    }
}
