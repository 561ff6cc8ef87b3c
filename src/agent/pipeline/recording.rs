//! Call recording: a stereo 16-bit WAV at 16 kHz, the caller on the left
//! and the agent on the right, as the caller heard it.
//!
//! Two parts:
//! * [`Mixer`], sans-IO, places frames on a timeline of 20 ms slots from
//!   the call's start. Caller frames go where they were received. Agent
//!   frames go where they play on the line, and are held until the line
//!   has taken them from its queue: a barge-in flushes the queue, and what
//!   was flushed was never heard, so it is never recorded.
//! * [`Recording`] feeds the placed frames through a bounded channel to a
//!   writer thread that owns the file. The call task never waits on the
//!   disk: if the writer falls behind, frames are dropped and counted.
//!
//! The WAV header carries placeholder sizes until the call ends, when
//! they are written (only then). A file left by a crash therefore reads as
//! "data to the end of the file" ([`hotline_media::wav::read_wav`] and
//! most players accept that), and holds everything up to the writer's
//! last flush: its buffer (about a second of audio) and the mixing window
//! (a second) are what a crash loses.

use std::collections::VecDeque;
use std::fs::File;
use std::io::BufWriter;
use std::path::{Path, PathBuf};
use std::sync::mpsc as std_mpsc;
use std::time::Duration;

use hotline_media::wav::{Side, StereoRecorder};
use serde::Serialize;
use tokio::sync::oneshot;
use tracing::warn;

use crate::rtp::{FRAME_SAMPLES, PCM_RATE, PTIME};

/// Frames (of either side) waiting for the writer: five seconds of a
/// call. Beyond that the disk is not keeping up and frames are dropped.
const WRITER_QUEUE: usize = 500;
/// How far apart the two sides may be written, in samples (one second).
const MAX_SKEW: usize = PCM_RATE as usize;
/// The writer's buffer: about a second of stereo audio reaches the file
/// at a time.
const WRITE_BUFFER: usize = 64 * 1024;

/// A frame placed on the recording's timeline.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Placed {
    /// Left (caller) or right (agent).
    pub side: Side,
    /// The 20 ms slot from the call's start where it begins.
    pub slot: u64,
    /// The samples (one frame at 16 kHz).
    pub samples: Vec<i16>,
}

/// Places both sides' frames on the call's timeline. Times are offsets
/// from the call's start.
#[derive(Debug, Default)]
pub struct Mixer {
    caller_next: u64,
    agent_next: u64,
    /// Agent frames handed to the line and not yet known to have played,
    /// oldest first.
    queued: VecDeque<(u64, Vec<i16>)>,
    /// Agent frames flushed from the line before playing.
    unheard: u64,
}

fn slot_of(at: Duration) -> u64 {
    (at.as_micros() / PTIME.as_micros()) as u64
}

impl Mixer {
    /// An empty timeline.
    pub fn new() -> Self {
        Self::default()
    }

    /// The caller's frame received at `at`. Frames that arrive in a burst
    /// take the next free slots rather than overwrite each other.
    pub fn caller(&mut self, at: Duration, samples: Vec<i16>) -> Placed {
        let slot = slot_of(at).max(self.caller_next);
        self.caller_next = slot + 1;
        Placed {
            side: Side::Caller,
            slot,
            samples,
        }
    }

    /// An agent frame queued on the line, which will play at `plays_at`.
    pub fn agent_queued(&mut self, plays_at: Duration, samples: Vec<i16>) {
        let slot = slot_of(plays_at).max(self.agent_next);
        self.agent_next = slot + 1;
        self.queued.push_back((slot, samples));
    }

    /// The line's queue holds `in_queue` frames: every agent frame queued
    /// before those has played, and is appended to `out`.
    pub fn played(&mut self, in_queue: usize, out: &mut Vec<Placed>) {
        while self.queued.len() > in_queue {
            let Some((slot, samples)) = self.queued.pop_front() else {
                break;
            };
            out.push(Placed {
                side: Side::Agent,
                slot,
                samples,
            });
        }
    }

    /// The line dropped the `in_queue` frames it still held (a barge-in):
    /// those before them played (appended to `out`), those never will.
    pub fn flushed(&mut self, in_queue: usize, out: &mut Vec<Placed>) {
        self.played(in_queue, out);
        self.unheard += self.queued.len() as u64;
        if let Some((first, _)) = self.queued.front() {
            // The dropped frames' slots are free for the next reply.
            self.agent_next = *first;
        }
        self.queued.clear();
    }

    /// Agent frames flushed before they played.
    pub fn unheard(&self) -> u64 {
        self.unheard
    }
}

/// What became of a call's recording.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RecordingReport {
    /// The WAV file.
    pub path: PathBuf,
    /// Its length.
    pub duration_ms: u64,
    /// Frames lost because the writer could not keep up.
    pub frames_dropped: u64,
    /// Why the file is incomplete or missing, if it is.
    pub error: Option<String>,
}

/// A call's recording in progress: the [`Mixer`] on the call task, the
/// file on a writer thread.
#[derive(Debug)]
pub struct Recording {
    path: PathBuf,
    mixer: Mixer,
    tx: Option<std_mpsc::SyncSender<Placed>>,
    done: Option<oneshot::Receiver<Result<u64, String>>>,
    out: Vec<Placed>,
    dropped: u64,
}

impl Recording {
    /// Starts writing `path` (its directory is created if need be). Opening
    /// the file happens on the writer thread; a failure shows in the
    /// report.
    pub fn start(path: PathBuf) -> Recording {
        let (tx, rx) = std_mpsc::sync_channel(WRITER_QUEUE);
        let (done_tx, done_rx) = oneshot::channel();
        let target = path.clone();
        let spawned = std::thread::Builder::new()
            .name("hotline-recording".into())
            .spawn(move || {
                let _ = done_tx.send(write_file(&target, rx));
            });
        let (tx, done) = match spawned {
            Ok(_) => (Some(tx), Some(done_rx)),
            Err(e) => {
                warn!(path = %path.display(), error = %e, "recording: cannot start the writer");
                (None, None)
            }
        };
        Recording {
            path,
            mixer: Mixer::new(),
            tx,
            done,
            out: Vec::new(),
            dropped: 0,
        }
    }

    /// The caller's frame received `at` after the call's start.
    pub fn caller(&mut self, at: Duration, frame: &[i16]) {
        let placed = self.mixer.caller(at, frame.to_vec());
        self.send(placed);
    }

    /// An agent frame queued on the line, playing `plays_at` after the
    /// call's start.
    pub fn agent_queued(&mut self, plays_at: Duration, frame: &[i16]) {
        self.mixer.agent_queued(plays_at, frame.to_vec());
    }

    /// The line's queue now holds `in_queue` frames.
    pub fn line_queue(&mut self, in_queue: usize) {
        let mut out = std::mem::take(&mut self.out);
        self.mixer.played(in_queue, &mut out);
        for p in out.drain(..) {
            self.send(p);
        }
        self.out = out;
    }

    /// The line dropped the `in_queue` frames it held.
    pub fn line_flushed(&mut self, in_queue: usize) {
        let mut out = std::mem::take(&mut self.out);
        self.mixer.flushed(in_queue, &mut out);
        for p in out.drain(..) {
            self.send(p);
        }
        self.out = out;
    }

    fn send(&mut self, placed: Placed) {
        let Some(tx) = &self.tx else {
            self.dropped += 1;
            return;
        };
        match tx.try_send(placed) {
            Ok(()) => {}
            Err(std_mpsc::TrySendError::Full(_)) => self.dropped += 1,
            Err(std_mpsc::TrySendError::Disconnected(_)) => {
                // The writer stopped (its error is in the report).
                self.dropped += 1;
                self.tx = None;
            }
        }
    }

    /// Ends the recording when the call ends, with `in_queue` frames still
    /// in the line's queue (never heard), and waits for the file to be
    /// finalized.
    pub async fn finish(mut self, in_queue: usize) -> RecordingReport {
        self.line_flushed(in_queue);
        drop(self.tx.take());
        let result = match self.done.take() {
            Some(done) => done
                .await
                .unwrap_or_else(|_| Err("the writer stopped".into())),
            None => Err("the writer did not start".into()),
        };
        let (samples, error) = match result {
            Ok(n) => (n, None),
            Err(e) => {
                warn!(path = %self.path.display(), error = %e, "recording failed");
                (0, Some(e))
            }
        };
        if self.dropped > 0 {
            warn!(path = %self.path.display(), frames = self.dropped, "recording: the writer fell behind; frames dropped");
        }
        RecordingReport {
            path: self.path,
            duration_ms: samples * 1000 / u64::from(PCM_RATE),
            frames_dropped: self.dropped,
            error,
        }
    }
}

/// The writer thread: places frames in the file until the channel closes,
/// then finalizes the header. Returns the length in samples per channel.
fn write_file(path: &Path, rx: std_mpsc::Receiver<Placed>) -> Result<u64, String> {
    let fail = |what: &str, e: &dyn std::fmt::Display| format!("{what} {}: {e}", path.display());
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(|e| fail("cannot create the directory of", &e))?;
    }
    let file = File::create(path).map_err(|e| fail("cannot create", &e))?;
    let out = BufWriter::with_capacity(WRITE_BUFFER, file);
    let mut recorder =
        StereoRecorder::new(out, PCM_RATE, MAX_SKEW).map_err(|e| fail("cannot write", &e))?;
    let mut end = 0u64;
    while let Ok(p) = rx.recv() {
        let position = p.slot * FRAME_SAMPLES as u64;
        recorder
            .push(p.side, position, &p.samples)
            .map_err(|e| fail("cannot write", &e))?;
        end = end.max(position + p.samples.len() as u64);
    }
    let late = recorder.late_samples(Side::Caller) + recorder.late_samples(Side::Agent);
    if late > 0 {
        warn!(path = %path.display(), samples = late, "recording: audio arrived too late to be placed");
    }
    let out = recorder.finish().map_err(|e| fail("cannot finish", &e))?;
    let file = out
        .into_inner()
        .map_err(|e| fail("cannot write", &e.error()))?;
    file.sync_data().map_err(|e| fail("cannot sync", &e))?;
    Ok(end)
}

#[cfg(test)]
mod tests {
    use super::*;
    use hotline_media::wav::read_wav;

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    #[test]
    fn caller_frames_take_their_slot_and_bursts_the_next_ones() {
        let mut m = Mixer::new();
        assert_eq!(m.caller(ms(40), vec![1]).slot, 2);
        assert_eq!(m.caller(ms(45), vec![1]).slot, 3);
        assert_eq!(m.caller(ms(100), vec![1]).slot, 5);
    }

    #[test]
    fn agent_frames_are_recorded_once_played_and_never_when_flushed() {
        let mut m = Mixer::new();
        let mut out = Vec::new();
        for i in 0..10 {
            m.agent_queued(ms(100 + 20 * i), vec![i as i16]);
        }
        // The line took three; seven are queued.
        m.played(7, &mut out);
        let slots: Vec<u64> = out.iter().map(|p| p.slot).collect();
        assert_eq!(slots, [5, 6, 7]);
        assert!(out.iter().all(|p| p.side == Side::Agent));
        // Barge-in: one more played, six are dropped from the line.
        out.clear();
        m.flushed(6, &mut out);
        assert_eq!(out.len(), 1);
        assert_eq!(out[0].slot, 8);
        assert_eq!(m.unheard(), 6);
        // The next reply may use the dropped slots.
        m.agent_queued(ms(180), vec![9]);
        m.played(0, &mut out);
        assert_eq!(out.last().unwrap().slot, 9);
    }

    #[tokio::test]
    async fn the_file_is_stereo_with_each_side_where_it_belongs() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("recordings").join("call.wav");
        let mut r = Recording::start(path.clone());
        for i in 0..50u64 {
            r.caller(ms(20 * i), &[1000; FRAME_SAMPLES]);
        }
        for i in 0..25u64 {
            r.agent_queued(ms(500 + 20 * i), &[-2000; FRAME_SAMPLES]);
        }
        r.line_queue(10);
        let report = r.finish(10).await;
        assert_eq!(report.error, None);
        assert_eq!(report.frames_dropped, 0);
        assert_eq!(report.duration_ms, 1000);
        let wav = read_wav(&std::fs::read(&path).unwrap()).unwrap();
        assert_eq!(wav.format.channels, 2);
        assert_eq!(wav.format.sample_rate, 16_000);
        assert!(!wav.truncated);
        let (left, right) = (wav.channel(0), wav.channel(1));
        assert_eq!(left.len(), 16_000);
        assert!(left.iter().all(|&s| s == 1000));
        // 15 agent frames played from 500 ms; the 10 still queued did not.
        let agent: Vec<usize> = (0..right.len()).filter(|&i| right[i] != 0).collect();
        assert_eq!(agent.first(), Some(&8_000));
        assert_eq!(agent.len(), 15 * FRAME_SAMPLES);
        assert!(
            right[8_000..8_000 + 15 * FRAME_SAMPLES]
                .iter()
                .all(|&s| s == -2000)
        );
    }

    #[test]
    fn a_file_left_by_a_crash_reads_up_to_its_last_flush() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("crash.wav");
        // A writer that never finishes: the header keeps its placeholders.
        let file = File::create(&path).unwrap();
        let mut rec = StereoRecorder::new(BufWriter::new(file), PCM_RATE, MAX_SKEW).unwrap();
        for i in 0..200u64 {
            rec.push(Side::Caller, i * 320, &[500; 320]).unwrap();
        }
        // Dropped, not finished: the buffer reaches the file, the sizes do not.
        drop(rec);
        let wav = read_wav(&std::fs::read(&path).unwrap()).unwrap();
        assert_eq!(wav.format.channels, 2);
        // Everything beyond the one-second mixing window was written.
        assert!(wav.frames() >= 200 * 320 - MAX_SKEW, "{}", wav.frames());
        assert!(wav.channel(0).iter().all(|&s| s == 500));
    }

    #[tokio::test]
    async fn an_unwritable_path_is_reported_not_fatal() {
        let dir = tempfile::tempdir().unwrap();
        let blocker = dir.path().join("file");
        std::fs::write(&blocker, b"x").unwrap();
        let mut r = Recording::start(blocker.join("call.wav"));
        r.caller(ms(0), &[1; FRAME_SAMPLES]);
        let report = r.finish(0).await;
        assert!(report.error.is_some());
        assert_eq!(report.duration_ms, 0);
    }
}
