//! # hotline-media
//!
//! Everything a call does to audio, as plain synchronous Rust with no I/O and
//! no clock. Every stateful piece takes its input (samples, packets) and the
//! current time as arguments, so the call task drives it and tests can run it
//! faster than realtime.
//!
//! | module | job |
//! |---|---|
//! | [`rtp`] | RTP packets (RFC 3550), sequence extension, interarrival jitter |
//! | [`rtcp`] | RTCP sender and receiver reports, BYE, compound packets |
//! | [`codec`] | G.711 μ-law/A-law with Appendix I concealment, Opus |
//! | [`resample`] | streaming rate conversion of 20 ms frames: a shared-table half-band FIR for 8 ↔ 16 kHz, rubato for the other pairs |
//! | [`jitter`] | adaptive jitter buffer |
//! | [`dtmf`] | Goertzel detector (Q.24), tone generator, RFC 4733 events |
//! | [`vad`] | voice activity detection with start/stop hysteresis |
//! | [`amd`] | answering-machine detection (human, machine, the beep) on the VAD's frames |
//! | [`level`] | the dBm0 convention (0 dBm0 = sine of peak 22 706) and dB gains |
//! | [`tones`] | ringback and beep generators |
//! | [`wav`] | WAV reader/writer and the stereo call recorder |
//! | [`prompt`] | prompt files (WAV, MP3, OGG/Vorbis, FLAC) to mono PCM |
//! | [`mix`] | mixing, gain and click-free fades |
//! | [`receive`] | the receive chain: RTP → jitter buffer → decode → 16 kHz → DTMF + VAD |
#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod amd;
pub mod codec;
pub mod dtmf;
pub mod jitter;
pub mod level;
pub mod mix;
pub mod prompt;
pub mod receive;
pub mod resample;
pub mod rtcp;
pub mod rtp;
pub mod tones;
pub mod vad;
pub mod wav;
