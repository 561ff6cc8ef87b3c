//! RTP media sessions: the thin tokio driver around `hotline_media`'s
//! sans-IO pieces for one call leg.
//!
//! * [`PortAllocator`] hands out an even UDP port per call from
//!   [`RtpConfig`](crate::config::RtpConfig)'s range, with RTCP on the odd
//!   port above or multiplexed (RFC 5761).
//! * [`MediaSession::start`] spawns one task per call leg that paces
//!   outgoing packets on an absolute 20 ms clock, latches onto the source
//!   of the first valid RTP packet (symmetric RTP), runs received packets
//!   through [`ReceiveChain`](hotline_media::receive::ReceiveChain), sends
//!   and reads RTCP, and watches for inactivity. The call engine drives it
//!   through a [`MediaHandle`] and reads [`MediaOutputs`].
//!   [`SessionConfig::from_rtp_config`] fills its settings from the
//!   `[rtp]` section; [`SessionConfig::dsp`] switches in-band DTMF and VAD
//!   off for calls that only relay audio.
//! * [`MediaRuntime`] runs sessions on worker threads of their own, with a
//!   raised scheduling priority (`rtp.priority`), so neither the control
//!   plane nor other processes delay a tick.

mod ports;
#[allow(unsafe_code)]
mod runtime;
mod session;

pub use ports::{MediaSockets, PortAllocator, PortError};
pub use runtime::{Applied, HIGH_NICE, MediaPriority, MediaRuntime};
pub use session::{
    FRAME_SAMPLES, MediaEvent, MediaHandle, MediaOutputs, MediaSession, MediaStats, PCM_RATE,
    PTIME, RemoteMedia, SessionConfig, SessionError, Stopped,
};
