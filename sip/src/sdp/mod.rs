//! SDP (RFC 8866) parsing and serialization, and RFC 3264 offer/answer for
//! one audio stream with PCMU, PCMA, Opus and telephone-event.
//!
//! - [`SessionDescription::parse`] accepts what real user agents send (bare
//!   LF, trailing blanks, lines out of order, no `s=` or `t=`) and keeps
//!   every line it does not understand; `to_string()` writes strict CRLF in
//!   RFC 8866 §5 order.
//! - [`MediaSession`] holds one call's offer/answer state: it answers offers
//!   (choosing the caller's first codec we support, so nothing is
//!   transcoded), makes offers (initial, hold, resume) and reads answers,
//!   returning a [`NegotiatedMedia`] for the RTP task. The pure functions in
//!   [`negotiate`] do the work without state.
//! - A failed negotiation is a [`NegotiationError`] whose
//!   [`warning`](NegotiationError::warning) goes in the 488's `Warning`.

pub mod codec;
pub mod model;
pub mod negotiate;
mod parse;
mod session;
mod write;

pub use codec::{Codec, LocalCapabilities, TELEPHONE_EVENT};
pub use model::{
    Attribute, Bandwidth, Connection, Direction, MediaDescription, Origin, OtherLine,
    RtcpAttribute, RtpMap, SessionDescription, Timing,
};
pub use negotiate::{
    Answer, NegotiatedMedia, NegotiationError, WARNING_304_TEXT, answer_offer, create_offer,
    is_hold, process_answer, warning_304,
};
pub use parse::SdpParseError;
pub use session::{MediaChange, MediaSession};
