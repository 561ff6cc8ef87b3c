//! DTMF (dual-tone multi-frequency) signalling in the audio path.
//!
//! * [`DtmfGenerator`] / [`render_sequence`]: in-band tone generation (for
//!   trunks that want in-band digits, and for tests).
//! * [`DtmfDetector`]: a Goertzel-bank detector meeting ITU-T Q.24, fed 16-bit
//!   PCM in chunks of any length, reporting [`DtmfEvent`]s at sample positions.
//!   The [`detector`] module documents its guards and why each threshold has
//!   the value it has.
//! * [`rfc4733`]: RTP telephone-events (RFC 4733): payloads, a paced sender
//!   and a de-duplicating receiver.
//!
//! Levels follow the telephony convention of the crate ([`crate::level`]):
//! 0 dBm0 is a sine of peak amplitude [`DBM0_PEAK`] in 16-bit linear PCM.

pub mod detector;
mod digit;
mod generator;
pub mod rfc4733;

pub use detector::{DtmfDetector, DtmfEvent};
pub use digit::{Digit, HIGH_GROUP_HZ, LOW_GROUP_HZ};
pub use generator::{DtmfGenerator, ToneParams, render_sequence};

pub use crate::level::{DBM0_PEAK, dbm0_to_peak};

/// Errors from building a generator or detector, or from parsing digits.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum DtmfError {
    /// The detector only supports rates from 8 kHz to 48 kHz.
    #[error("unsupported sample rate {0} Hz (the detector needs 8000..=48000)")]
    UnsupportedRate(u32),
    /// A character that is not one of `0-9 * # A-D`.
    #[error("{0:?} is not a DTMF digit (expected 0-9, *, #, A-D)")]
    InvalidDigit(char),
    /// A tone (after its frequency offset) at or above half the sample rate,
    /// which would alias.
    #[error("tone of {freq_hz:.1} Hz cannot be generated at {sample_rate} Hz")]
    AboveNyquist {
        /// Requested tone frequency after the offset.
        freq_hz: f64,
        /// The generator's sample rate.
        sample_rate: u32,
    },
    /// A level or offset that is not a finite number, or an offset of
    /// −100 % or less.
    #[error("invalid tone parameter: {0}")]
    InvalidParameter(&'static str),
}
