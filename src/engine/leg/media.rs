//! Glue between the SDP negotiation and the RTP session.

use std::net::{IpAddr, SocketAddr};

use hotline_media::codec::CodecKind;
use hotline_sip::sdp::{Codec, LocalCapabilities, NegotiatedMedia, SessionDescription};

use crate::rtp::RemoteMedia;

/// The RTP session's view of a negotiation.
pub fn remote_media(m: &NegotiatedMedia) -> RemoteMedia {
    RemoteMedia {
        // On hold with the RFC 2543 address the session sends nothing, but
        // still needs an address of the right family.
        rtp: m
            .remote_addr
            .unwrap_or_else(|| SocketAddr::from(([0, 0, 0, 0], 9))),
        rtcp: m.remote_rtcp_addr,
        rtcp_mux: m.rtcp_mux,
        codec: codec_kind(m.codec),
        payload_type: m.payload_type,
        telephone_event_pt: m.telephone_event_pt,
    }
}

/// The media crate's codec for the SDP's.
pub fn codec_kind(c: Codec) -> CodecKind {
    match c {
        Codec::Pcmu => CodecKind::Pcmu,
        Codec::Pcma => CodecKind::Pcma,
        Codec::Opus => CodecKind::Opus,
    }
}

/// Codec names as configured for trunks (`PCMU`, `PCMA`, `opus`).
pub fn codecs_by_name(names: &[String]) -> Vec<Codec> {
    let mut out = Vec::new();
    for n in names {
        let c = match n.to_ascii_lowercase().as_str() {
            "pcmu" | "g711u" | "ulaw" => Codec::Pcmu,
            "pcma" | "g711a" | "alaw" => Codec::Pcma,
            "opus" => Codec::Opus,
            _ => continue,
        };
        if !out.contains(&c) {
            out.push(c);
        }
    }
    out
}

/// Our capabilities on `address:port`, with the trunk's codec order when
/// the call goes through one.
pub fn capabilities(address: IpAddr, port: u16, codecs: Option<&[String]>) -> LocalCapabilities {
    let mut local = LocalCapabilities::new(address, port);
    if let Some(names) = codecs {
        let list = codecs_by_name(names);
        if !list.is_empty() {
            local.codecs = list;
        }
    }
    local
}

/// Whether the offer's audio stream asks for rtcp-mux, so the RTCP port
/// need not be bound.
pub fn offer_wants_mux(offer: &SessionDescription) -> bool {
    offer
        .media
        .iter()
        .find(|m| m.media == "audio")
        .is_some_and(|m| m.rtcp_mux())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn trunk_codec_names_map_in_order_without_duplicates() {
        let names: Vec<String> = ["opus", "PCMA", "g711a", "speex", "PCMU"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        assert_eq!(
            codecs_by_name(&names),
            vec![Codec::Opus, Codec::Pcma, Codec::Pcmu]
        );
        let local = capabilities("127.0.0.1".parse().unwrap(), 10000, Some(&names[3..4]));
        // Nothing usable configured: keep the defaults rather than offer
        // no codec at all.
        assert_eq!(
            local.codecs,
            LocalCapabilities::new(local.address, 10000).codecs
        );
    }
}
