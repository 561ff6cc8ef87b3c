//! Real speech for tests: espeak-ng synthesises it, sox converts it to the
//! rate a test needs. Results are cached under Cargo's per-target temp dir so
//! repeated runs are fast. Both tools are installed by `scripts/deps`; a test
//! that needs them fails loudly rather than skipping when they are missing.
#![allow(dead_code)]

pub mod alloc;
pub mod signal;

use std::collections::hash_map::DefaultHasher;
use std::hash::{Hash, Hasher};
use std::path::PathBuf;
use std::process::Command;
use std::sync::atomic::{AtomicU64, Ordering};

/// espeak-ng voices with different pitch, timbre and language, to vary the
/// speech a detector is exposed to.
pub const VOICES: &[&str] = &[
    "en-us",
    "en-gb",
    "en-us+f3",
    "en-us+m7",
    "en-gb-x-rp+f4",
    "de",
    "fr-fr",
    "es",
    "it",
    "pt-br",
];

/// Ordinary prose, numbers included, a little over a minute per voice at
/// the default speaking rate.
pub const CORPUS: &[&str] = &[
    "Hello, thank you for calling. How can I help you today? I would like to book an appointment for next Tuesday afternoon, if that is possible.",
    "The quick brown fox jumps over the lazy dog. She sells sea shells by the sea shore. Peter Piper picked a peck of pickled peppers.",
    "Your account number is four seven one nine two, and the balance due is three hundred and twelve dollars and sixty cents, payable by the fifteenth.",
    "We are open from nine in the morning until six in the evening, Monday through Friday, and from ten until two on Saturdays. We are closed on Sundays.",
    "Please hold while I transfer your call. If you know your party's extension, you may dial it at any time. Otherwise, stay on the line.",
    "The weather tomorrow will be mostly cloudy with a chance of rain in the afternoon, highs around eighteen degrees and light winds from the west.",
    "I'm calling about the delivery that was supposed to arrive yesterday. The tracking page says it was delivered, but nothing is at my door.",
    "Oh, really? That's wonderful news! I had no idea. Yes, yes, of course, I'll be there at eight o'clock sharp. Thank you so much, goodbye.",
    "Hmm, let me think about that for a second. Well, I suppose we could move the meeting to Thursday, but then the report would not be ready.",
    "Emergency maintenance is scheduled tonight between eleven p.m. and two a.m. Some services may be unavailable during this window.",
];

fn run(cmd: &mut Command) {
    let out = cmd
        .output()
        .unwrap_or_else(|e| panic!("cannot run {cmd:?}: {e}; run scripts/deps to install it"));
    assert!(
        out.status.success(),
        "{cmd:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Synthesises `text` with espeak-ng `voice` at `wpm` words per minute and
/// returns it as mono 16-bit PCM at `rate` Hz.
pub fn speech(voice: &str, wpm: u32, text: &str, rate: u32) -> Vec<i16> {
    let mut h = DefaultHasher::new();
    (voice, wpm, text, rate).hash(&mut h);
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("speech");
    std::fs::create_dir_all(&dir).unwrap();
    let raw = dir.join(format!("{:016x}.s16", h.finish()));
    if !raw.exists() {
        // Unique per call, not just per process: tests of one binary run on
        // several threads and may synthesise the same text at once; each
        // writes its own temporary files and the rename is atomic.
        static CALLS: AtomicU64 = AtomicU64::new(0);
        let call = CALLS.fetch_add(1, Ordering::Relaxed);
        let uniq = format!("{:016x}-{}-{call}", h.finish(), std::process::id());
        let wav = dir.join(format!("{uniq}.wav"));
        let tmp = dir.join(format!("{uniq}.s16"));
        run(Command::new("espeak-ng")
            .args(["-v", voice, "-s", &wpm.to_string(), "-w"])
            .arg(&wav)
            .arg(text));
        run(Command::new("sox")
            .arg(&wav)
            .args([
                "-r",
                &rate.to_string(),
                "-c",
                "1",
                "-b",
                "16",
                "-e",
                "signed-integer",
                "-t",
                "raw",
            ])
            .arg(&tmp));
        std::fs::rename(&tmp, &raw).unwrap();
        let _ = std::fs::remove_file(&wav);
    }
    let bytes = std::fs::read(&raw).unwrap();
    bytes
        .chunks_exact(2)
        .map(|b| i16::from_le_bytes([b[0], b[1]]))
        .collect()
}

/// The whole corpus spoken by `voice`, concatenated, at `rate` Hz.
pub fn corpus(voice: &str, rate: u32) -> Vec<i16> {
    CORPUS
        .iter()
        .flat_map(|t| speech(voice, 160, t, rate))
        .collect()
}

/// A deterministic xorshift generator, so noise is the same on every run.
pub struct Noise(u64);

impl Noise {
    /// A generator seeded with `seed` (any value but zero works).
    pub fn new(seed: u64) -> Self {
        Noise(seed.max(1))
    }
    /// The next raw 64-bit state (xorshift64).
    pub fn next_u64(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    /// Uniform in `0..n` (with the slight modulo bias tests can live with).
    pub fn below(&mut self, n: usize) -> usize {
        (self.next_u64() % n as u64) as usize
    }
    /// Uniform in [-1, 1).
    pub fn uniform(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 52) as f64 - 1.0
    }
    /// Approximately Gaussian (sum of uniforms), unit variance.
    pub fn gaussian(&mut self) -> f64 {
        (0..12).map(|_| self.uniform()).sum::<f64>() / 2.0
    }
}
