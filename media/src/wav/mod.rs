//! WAV files: a reader for the formats telephony and TTS systems produce, a
//! streaming 16-bit (or G.711) writer, and the stereo call recorder.
//!
//! * [`read_wav`] parses RIFF/WAVE from memory: PCM 8/16/24/32-bit, IEEE
//!   float 32/64, μ-law, A-law and `WAVE_FORMAT_EXTENSIBLE` wrappers of
//!   those, converting everything to 16-bit linear. Malformed input gives a
//!   [`WavError`], never a panic.
//! * [`WavWriter`] streams samples to any `Write + Seek` and patches the
//!   RIFF and data sizes in [`WavWriter::finish`].
//! * [`StereoRecorder`] lines the caller and agent sides of a call up on
//!   the call's sample timeline and writes them as left/right channels.

mod reader;
mod recorder;
mod writer;

pub use reader::{Encoding, Wav, WavFormat, read_wav, read_wav_from};
pub use recorder::{Side, StereoRecorder};
pub use writer::{SampleFormat, WavSpec, WavWriter, encode_wav};

use thiserror::Error;

/// Why a WAV file could not be read or written.
#[derive(Debug, Error)]
pub enum WavError {
    /// The file does not start with a `RIFF` header and `WAVE` form type.
    #[error("not a RIFF/WAVE file")]
    NotWave,
    /// There is no `fmt ` chunk, or it is shorter than 16 bytes.
    #[error("missing or short fmt chunk")]
    MissingFmt,
    /// There is no `data` chunk.
    #[error("missing data chunk")]
    MissingData,
    /// The `fmt ` chunk contradicts itself (e.g. block alignment does not
    /// match channels and sample size).
    #[error("invalid fmt chunk: {0}")]
    BadFormat(&'static str),
    /// A well-formed format this reader does not decode.
    #[error("unsupported WAV encoding: format tag {format_tag:#06x}, {bits} bits")]
    Unsupported {
        /// `wFormatTag` (or the sub-format of an extensible header).
        format_tag: u16,
        /// `wBitsPerSample`.
        bits: u16,
    },
    /// The writer was asked for an impossible layout.
    #[error("invalid writer spec: {0}")]
    BadSpec(&'static str),
    /// More audio than the 32-bit RIFF sizes can describe (4 GiB).
    #[error("WAV data would exceed the 4 GiB RIFF limit")]
    TooLarge,
    /// A recorder position plus frame length overflowed the timeline.
    #[error("sample position overflow")]
    PositionOverflow,
    /// The underlying reader or writer failed.
    #[error("I/O error: {0}")]
    Io(#[from] std::io::Error),
}
