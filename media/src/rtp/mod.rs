//! RTP (RFC 3550): packet parsing and serialization, RFC 8285 header
//! extension elements, sequence number extension with loss accounting, and
//! interarrival jitter.
//!
//! Everything here is sans-IO: packets come in as byte slices, arrival times
//! as RTP timestamp units computed by the caller, and nothing reads a clock.
//! Parsing never panics on any input; see the `rtp_packet` fuzz target.

mod extension;
mod interarrival;
mod packet;
mod sequence;
mod stats;

pub use extension::{
    ExtensionElement, ExtensionElements, ExtensionError, ExtensionForm, ONE_BYTE_PROFILE,
    TWO_BYTE_PROFILE, write_extension_elements,
};
pub use interarrival::{JitterEstimator, rtp_units, rtp_units_between, units_to_duration};
pub use packet::{
    BuildError, FIXED_HEADER_LEN, HeaderExtension, MAX_CSRCS, RTP_VERSION, RtpError, RtpPacket,
    RtpPacketBuilder, is_rtcp,
};
pub use sequence::{
    DEFAULT_MIN_SEQUENTIAL, LossReport, MAX_DROPOUT, MAX_MISORDER, SeqUpdate, SequenceTracker,
};
pub use stats::{PacketOutcome, ReceiveStats, ReportBlock};
