//! Property tests: RTCP compound packets round-trip through the writer and
//! parser, and neither the parser nor the session's receive path panics on
//! arbitrary bytes.

use std::time::{Duration, Instant, SystemTime};

use hotline_media::rtcp::{
    Bye, IntervalConfig, ReceiverReport, ReceptionReport, RtcpPacket, RtcpSession, SdesChunk,
    SdesItem, SenderInfo, SenderReport, parse_compound, write_compound,
};
use proptest::prelude::*;

fn block() -> impl Strategy<Value = ReceptionReport> {
    (
        any::<u32>(),
        any::<u8>(),
        -(1i32 << 23)..(1i32 << 23),
        any::<u32>(),
        any::<u32>(),
        any::<u32>(),
        any::<u32>(),
    )
        .prop_map(|(ssrc, f, c, e, j, l, d)| ReceptionReport {
            ssrc,
            fraction_lost: f,
            cumulative_lost: c,
            extended_highest: e,
            jitter: j,
            last_sr: l,
            delay_since_last_sr: d,
        })
}

fn packet() -> impl Strategy<Value = RtcpPacket> {
    prop_oneof![
        (
            any::<u32>(),
            any::<(u64, u32, u32, u32)>(),
            prop::collection::vec(block(), 0..4)
        )
            .prop_map(|(ssrc, (ntp, ts, p, o), reports)| {
                RtcpPacket::SenderReport(SenderReport {
                    ssrc,
                    info: SenderInfo {
                        ntp,
                        rtp_timestamp: ts,
                        packet_count: p,
                        octet_count: o,
                    },
                    reports,
                })
            }),
        (any::<u32>(), prop::collection::vec(block(), 0..4)).prop_map(|(ssrc, reports)| {
            RtcpPacket::ReceiverReport(ReceiverReport { ssrc, reports })
        }),
        prop::collection::vec(
            (
                any::<u32>(),
                prop::collection::vec((1u8..=255, prop::collection::vec(any::<u8>(), 0..40)), 0..3)
            ),
            0..3
        )
        .prop_map(|chunks| RtcpPacket::SourceDescription(
            chunks
                .into_iter()
                .map(|(ssrc, items)| SdesChunk {
                    ssrc,
                    items: items
                        .into_iter()
                        .map(|(kind, value)| SdesItem { kind, value })
                        .collect()
                })
                .collect()
        )),
        (
            prop::collection::vec(any::<u32>(), 0..4),
            prop::option::of(prop::collection::vec(any::<u8>(), 1..30))
        )
            .prop_map(|(sources, reason)| RtcpPacket::Bye(Bye { sources, reason })),
    ]
}

proptest! {
    #[test]
    fn compound_round_trips(packets in prop::collection::vec(packet(), 1..5)) {
        let mut buf = Vec::new();
        let n = write_compound(&packets, &mut buf).unwrap();
        prop_assert_eq!(n, buf.len());
        prop_assert_eq!(buf.len() % 4, 0);
        let parsed: Vec<_> = parse_compound(&buf).collect::<Result<_, _>>().unwrap();
        prop_assert_eq!(parsed, packets);
    }

    #[test]
    fn parser_never_panics(bytes in prop::collection::vec(any::<u8>(), 0..300)) {
        for p in parse_compound(&bytes).take(100) {
            let _ = p;
        }
    }

    #[test]
    fn plausible_headers_never_panic(
        body in prop::collection::vec(any::<u8>(), 0..200),
        first in 0x80u8..0xc0,
        pt in 192u8..224,
    ) {
        // Valid version and RTCP type so the body parsers get exercised.
        let words = (body.len() / 4) as u16;
        let mut buf = vec![first, pt];
        buf.extend_from_slice(&words.to_be_bytes());
        buf.extend_from_slice(&body);
        for p in parse_compound(&buf) {
            let _ = p;
        }
        let base = Instant::now();
        let mut s = RtcpSession::new(7, "x", IntervalConfig::default(), base, 9);
        let _ = s.on_rtcp(&buf, base + Duration::from_millis(5), SystemTime::now());
    }
}
