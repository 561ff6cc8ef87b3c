//! The codecs Hotline can carry and our local media capabilities.

use std::net::IpAddr;

use super::model::{Direction, MediaDescription, RtpMap};

/// A voice codec the media pipeline encodes and decodes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Codec {
    /// G.711 µ-law, static payload type 0 (RFC 3551 §6).
    Pcmu,
    /// G.711 A-law, static payload type 8 (RFC 3551 §6).
    Pcma,
    /// Opus, dynamic payload type, always `opus/48000/2` in SDP (RFC 7587 §7).
    Opus,
}

impl Codec {
    /// The encoding name we write in `a=rtpmap`.
    pub fn encoding_name(self) -> &'static str {
        match self {
            Codec::Pcmu => "PCMU",
            Codec::Pcma => "PCMA",
            Codec::Opus => "opus",
        }
    }

    /// The RTP clock rate.
    pub fn clock_rate(self) -> u32 {
        match self {
            Codec::Pcmu | Codec::Pcma => 8000,
            Codec::Opus => 48000,
        }
    }

    /// The channel count SDP carries; Opus always says 2 even for mono
    /// streams (RFC 7587 §7).
    pub fn channels(self) -> u16 {
        match self {
            Codec::Pcmu | Codec::Pcma => 1,
            Codec::Opus => 2,
        }
    }

    /// The static payload type, for codecs that have one (RFC 3551 table 4).
    pub fn static_payload_type(self) -> Option<u8> {
        match self {
            Codec::Pcmu => Some(0),
            Codec::Pcma => Some(8),
            Codec::Opus => None,
        }
    }

    /// The `a=rtpmap` we write for this codec at `payload_type`.
    pub fn rtpmap(self, payload_type: u8) -> RtpMap {
        RtpMap {
            payload_type,
            encoding: self.encoding_name().to_owned(),
            clock_rate: self.clock_rate(),
            // RFC 3551 §4.1: the channel count may be omitted for one channel.
            channels: (self == Codec::Opus).then_some(2),
        }
    }

    /// The codec an `a=rtpmap` names, if we support it. Encoding names
    /// compare case-insensitively (RFC 4855 §3).
    pub fn from_rtpmap(map: &RtpMap) -> Option<Self> {
        let name = map.encoding.as_str();
        let codec = if name.eq_ignore_ascii_case("PCMU") {
            Codec::Pcmu
        } else if name.eq_ignore_ascii_case("PCMA") {
            Codec::Pcma
        } else if name.eq_ignore_ascii_case("opus") {
            Codec::Opus
        } else {
            return None;
        };
        // Opus with a channel count other than 2 (or none, which some
        // gateways write) is tolerated: the stream is the same.
        (map.clock_rate == codec.clock_rate() && map.channels.is_none_or(|c| c <= 2))
            .then_some(codec)
    }

    /// What payload type `pt` means in a media section: its `a=rtpmap` when
    /// present, otherwise the static assignment (RFC 3551 §6; many UAs omit
    /// the rtpmap for 0 and 8).
    pub fn identify(media: &MediaDescription, pt: u8) -> Option<Self> {
        match media.rtpmap(pt) {
            Some(map) => Codec::from_rtpmap(&map),
            None => match pt {
                0 => Some(Codec::Pcmu),
                8 => Some(Codec::Pcma),
                _ => None,
            },
        }
    }

    /// Whether a packet duration suits this codec: G.711 takes any multiple
    /// of 10 ms up to 60, Opus only its frame sizes of 10, 20, 40 and 60 ms
    /// (RFC 6716 §2.1.4; 2.5 and 5 ms frames are for low-delay music, not
    /// telephony).
    pub fn accepts_ptime(self, ptime: u32) -> bool {
        match self {
            Codec::Pcmu | Codec::Pcma => (10..=60).contains(&ptime) && ptime.is_multiple_of(10),
            Codec::Opus => matches!(ptime, 10 | 20 | 40 | 60),
        }
    }
}

/// The encoding name of RFC 4733 DTMF events.
pub const TELEPHONE_EVENT: &str = "telephone-event";

/// What we can do, for building offers and answers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LocalCapabilities {
    /// Supported codecs, most preferred first; offers list them in this order.
    pub codecs: Vec<Codec>,
    /// Whether we send and receive RFC 4733 telephone-events.
    pub telephone_event: bool,
    /// Our RTP address, written in `c=` and `o=`.
    pub address: IpAddr,
    /// Our RTP port.
    pub rtp_port: u16,
    /// Packet duration we want when the offer states none, in ms.
    pub ptime: u32,
    /// The direction we want: sendrecv normally, sendonly while we hold.
    pub direction: Direction,
    /// Whether we accept RTP and RTCP on one port (RFC 5761).
    pub rtcp_mux: bool,
    /// Dynamic payload type we offer Opus at.
    pub opus_payload_type: u8,
    /// Dynamic payload type we offer `telephone-event/8000` at.
    pub telephone_event_payload_type: u8,
    /// Dynamic payload type we offer `telephone-event/48000` at (with Opus).
    pub telephone_event_48k_payload_type: u8,
    /// The `a=fmtp` parameters we write for Opus: how we want to receive it
    /// (RFC 7587 §6.1).
    pub opus_fmtp: String,
    /// The `o=` username.
    pub username: String,
}

impl LocalCapabilities {
    /// Our usual capabilities on `address:rtp_port`: Opus, PCMU, PCMA and
    /// telephone-event, 20 ms packets, sendrecv, rtcp-mux.
    pub fn new(address: IpAddr, rtp_port: u16) -> Self {
        Self {
            codecs: vec![Codec::Opus, Codec::Pcmu, Codec::Pcma],
            telephone_event: true,
            address,
            rtp_port,
            ptime: 20,
            direction: Direction::SendRecv,
            rtcp_mux: true,
            opus_payload_type: 111,
            telephone_event_payload_type: 101,
            telephone_event_48k_payload_type: 110,
            opus_fmtp: "useinbandfec=1".to_owned(),
            username: "hotline".to_owned(),
        }
    }
}
