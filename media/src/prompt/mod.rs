//! Prompt files (WAV, MP3, OGG/Vorbis, FLAC) to mono 16-bit PCM at the rate a
//! call needs.
//!
//! Operators upload prompts in whatever format their tools produce: 44.1 kHz
//! stereo MP3 from a studio, 8 kHz μ-law WAV from an old IVR, FLAC, Vorbis. A
//! call only ever plays mono at its leg's rate, so every prompt goes through
//! the same three steps: decode with symphonia, downmix by averaging the
//! channels, convert the rate with rubato.
//!
//! The caller supplies the bytes or an open file; this module never opens
//! files itself. Decoding a whole prompt allocates freely: it runs once when a
//! prompt is loaded, not per frame.

mod demux;
mod rate;

use std::io::{Read, Seek};
use std::time::Duration;

use symphonia::core::io::MediaSource;

/// Target rates accepted: anything a call leg or a recogniser could want.
const TARGET_RATES: std::ops::RangeInclusive<u32> = 1_000..=384_000;

/// Why a prompt could not be decoded.
#[derive(Debug, thiserror::Error)]
pub enum PromptError {
    /// Not a WAV, MP3, OGG or FLAC stream (or too damaged to recognise).
    #[error("not a recognised audio file (WAV, MP3, OGG/Vorbis or FLAC): {0}")]
    UnknownFormat(String),
    /// The container holds no audio track.
    #[error("the file has no audio track")]
    NoAudioTrack,
    /// The container is fine but the codec or one of its features is not
    /// supported (e.g. Opus in OGG, ADPCM in WAV).
    #[error("unsupported codec or feature: {0}")]
    Unsupported(String),
    /// The file is malformed or truncated inside its headers or audio.
    #[error("corrupt audio file: {0}")]
    Corrupt(String),
    /// The file decoded to no audio at all.
    #[error("the file contains no audio samples")]
    Empty,
    /// The decoded audio would exceed [`PromptOptions::max_duration`].
    #[error("prompt is longer than the {0:?} limit")]
    TooLong(Duration),
    /// The requested output rate is outside 1–384 kHz.
    #[error("unsupported target rate {0} Hz")]
    UnsupportedTargetRate(u32),
    /// The file declares a sample rate of zero or changes rate mid-stream.
    #[error("invalid source sample rate: {0}")]
    InvalidSourceRate(String),
    /// Reading the caller's stream failed.
    #[error("read error: {0}")]
    Io(#[from] std::io::Error),
    /// The rate converter failed (not expected with validated rates).
    #[error("rate conversion failed: {0}")]
    Resample(String),
}

/// How to decode a prompt.
#[derive(Debug, Clone)]
pub struct PromptOptions {
    target_rate: u32,
    extension: Option<String>,
    max_duration: Duration,
}

impl PromptOptions {
    /// Decode to mono at `target_rate` Hz, at most 10 minutes long.
    pub fn new(target_rate: u32) -> Self {
        Self {
            target_rate,
            extension: None,
            max_duration: Duration::from_secs(600),
        }
    }

    /// The file's extension (`"mp3"`, `"wav"`, ...), as a hint for format
    /// detection. Optional: the content is probed either way, the hint only
    /// breaks ties (e.g. raw MP3 frames without an ID3 tag).
    pub fn extension(mut self, ext: &str) -> Self {
        self.extension = Some(ext.trim_start_matches('.').to_ascii_lowercase());
        self
    }

    /// Upper bound on the decoded length. A prompt bigger than this is
    /// refused rather than decoded into memory, so a bogus or hostile file
    /// cannot exhaust it.
    pub fn max_duration(mut self, limit: Duration) -> Self {
        self.max_duration = limit;
        self
    }

    /// The output rate.
    pub fn target_rate(&self) -> u32 {
        self.target_rate
    }
}

/// A decoded prompt: mono 16-bit PCM, ready to be cut into frames.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Prompt {
    /// The samples at [`rate`](Prompt::rate).
    pub samples: Vec<i16>,
    /// Rate of `samples`, the target rate asked for.
    pub rate: u32,
    /// Sample rate of the file.
    pub source_rate: u32,
    /// Channel count of the file (before the downmix).
    pub source_channels: usize,
}

impl Prompt {
    /// Length of the audio.
    pub fn duration(&self) -> Duration {
        Duration::from_secs_f64(self.samples.len() as f64 / f64::from(self.rate))
    }
}

/// Decodes a prompt held in memory.
pub fn decode_bytes(bytes: &[u8], opts: &PromptOptions) -> Result<Prompt, PromptError> {
    decode_source(Box::new(std::io::Cursor::new(bytes)), opts)
}

/// Decodes a prompt from a seekable stream the caller opened (a file, a
/// cursor over a download). The stream's length is taken by seeking to its
/// end once; reading starts from its current position.
pub fn decode_reader<R>(reader: R, opts: &PromptOptions) -> Result<Prompt, PromptError>
where
    R: Read + Seek + Send + Sync,
{
    decode_source(Box::new(demux::SeekableSource::new(reader)?), opts)
}

fn decode_source<'s>(
    source: Box<dyn MediaSource + 's>,
    opts: &PromptOptions,
) -> Result<Prompt, PromptError> {
    if !TARGET_RATES.contains(&opts.target_rate) {
        return Err(PromptError::UnsupportedTargetRate(opts.target_rate));
    }
    // symphonia 0.6.1 still has arithmetic on header fields that can
    // overflow (e.g. the WAV reader multiplies channels by bytes per sample
    // unchecked, and shifts by a channel count), which panics in builds with
    // overflow checks. A broken prompt must not take the call task down, so
    // a panic inside the decoder becomes a `Corrupt` error. Only our own
    // locals cross the boundary and they are dropped with it, so no state is
    // observed half-updated.
    let decoded = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        demux::decode_mono(source, opts.extension.as_deref(), opts.max_duration)
    }))
    .map_err(|payload| {
        PromptError::Corrupt(format!("decoder failed: {}", panic_text(&payload)))
    })??;
    if decoded.samples.is_empty() {
        return Err(PromptError::Empty);
    }
    let resampled = rate::convert(&decoded.samples, decoded.rate, opts.target_rate)?;
    Ok(Prompt {
        samples: resampled.iter().map(|&x| to_i16(x)).collect(),
        rate: opts.target_rate,
        source_rate: decoded.rate,
        source_channels: decoded.channels,
    })
}

fn panic_text(payload: &Box<dyn std::any::Any + Send>) -> &str {
    payload
        .downcast_ref::<&str>()
        .copied()
        .or_else(|| payload.downcast_ref::<String>().map(String::as_str))
        .unwrap_or("panic")
}

/// Saturating conversion: lossy codecs and band-limiting overshoot full
/// scale, and wrapping would turn that into a loud click. `as` saturates and
/// maps NaN (possible in float WAV files) to 0.
fn to_i16(x: f32) -> i16 {
    (x * 32_768.0).round() as i16
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn saturates() {
        assert_eq!(to_i16(1.5), i16::MAX);
        assert_eq!(to_i16(-1.5), i16::MIN);
        assert_eq!(to_i16(f32::NAN), 0);
        assert_eq!(to_i16(-1.0), i16::MIN);
        assert_eq!(to_i16(0.5), 16_384);
    }

    #[test]
    fn rejects_garbage_and_empty_input() {
        let opts = PromptOptions::new(8_000);
        assert!(matches!(
            decode_bytes(&[], &opts),
            Err(PromptError::UnknownFormat(_))
        ));
        assert!(matches!(
            decode_bytes(b"hello, this is not audio at all, just text", &opts),
            Err(PromptError::UnknownFormat(_))
        ));
    }

    #[test]
    fn rejects_bad_target_rates() {
        for r in [0, 999, 384_001] {
            assert!(matches!(
                decode_bytes(&[], &PromptOptions::new(r)),
                Err(PromptError::UnsupportedTargetRate(x)) if x == r
            ));
        }
    }

    #[test]
    fn extension_hint_is_normalised() {
        let o = PromptOptions::new(8_000).extension(".MP3");
        assert_eq!(o.extension.as_deref(), Some("mp3"));
    }
}
