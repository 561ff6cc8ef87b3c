//! RTCP (RFC 3550 §6): compound packet parsing and building, the report
//! interval of §6.3, and the per-session report state that turns send
//! counters and [`crate::rtp::ReceiveStats`] into sender/receiver reports and
//! received reports into round-trip time and remote loss.
//!
//! Sans-IO like the rest of the crate: the caller passes the monotonic time
//! ([`std::time::Instant`]) for scheduling and a wall-clock value
//! ([`std::time::SystemTime`]) for NTP timestamps. Parsing never panics on any
//! input (see `media/tests/rtcp_proptest.rs`).

mod interval;
mod ntp;
mod packet;
mod session;

pub use interval::{IntervalConfig, ReportScheduler, rtcp_interval};
pub use ntp::NtpTime;
pub use packet::{
    Bye, CompoundIter, PT_APP, PT_BYE, PT_RR, PT_SDES, PT_SR, ReceiverReport, ReceptionReport,
    RtcpError, RtcpPacket, SDES_CNAME, SdesChunk, SdesItem, SenderInfo, SenderReport,
    parse_compound, write_compound,
};
pub use session::{RemoteReport, RtcpReceived, RtcpSession, SenderCounters};
