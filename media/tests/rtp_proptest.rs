//! Property tests: RTP serialization round-trips, and no parser in the RTP
//! and telephone-event code panics on arbitrary bytes.

use hotline_media::dtmf::rfc4733::{
    EventReceiver, EventReport, EventSender, SenderConfig, TelephoneEvent,
};
use hotline_media::rtp::{
    ExtensionElement, ExtensionElements, ExtensionForm, HeaderExtension, RtpPacket,
    RtpPacketBuilder, write_extension_elements,
};
use proptest::prelude::*;

#[derive(Debug, Clone)]
struct Header {
    marker: bool,
    payload_type: u8,
    sequence: u16,
    timestamp: u32,
    ssrc: u32,
    csrcs: Vec<u32>,
    extension: Option<(u16, Vec<u8>)>,
    padding: u8,
    payload: Vec<u8>,
}

fn header() -> impl Strategy<Value = Header> {
    (
        any::<bool>(),
        0u8..128,
        any::<u16>(),
        any::<u32>(),
        any::<u32>(),
        prop::collection::vec(any::<u32>(), 0..=15),
        prop::option::of((any::<u16>(), prop::collection::vec(any::<[u8; 4]>(), 0..20))),
        prop_oneof![Just(0u8), any::<u8>()],
        prop::collection::vec(any::<u8>(), 0..400),
    )
        .prop_map(
            |(marker, payload_type, sequence, timestamp, ssrc, csrcs, ext, padding, payload)| {
                Header {
                    marker,
                    payload_type,
                    sequence,
                    timestamp,
                    ssrc,
                    csrcs,
                    extension: ext.map(|(p, words)| (p, words.concat())),
                    padding,
                    payload,
                }
            },
        )
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn serialize_then_parse_round_trips(h in header()) {
        let builder = RtpPacketBuilder {
            marker: h.marker,
            payload_type: h.payload_type,
            sequence: h.sequence,
            timestamp: h.timestamp,
            ssrc: h.ssrc,
            csrcs: &h.csrcs,
            extension: h.extension.as_ref().map(|(profile, data)| HeaderExtension {
                profile: *profile,
                data,
            }),
            padding: h.padding,
            payload: &h.payload,
        };
        let mut buf = Vec::new();
        let n = builder.write_to(&mut buf).unwrap();
        prop_assert_eq!(n, buf.len());
        let p = RtpPacket::parse(&buf).unwrap();
        prop_assert_eq!(p.version(), 2);
        prop_assert_eq!(p.marker(), h.marker);
        prop_assert_eq!(p.payload_type(), h.payload_type);
        prop_assert_eq!(p.sequence(), h.sequence);
        prop_assert_eq!(p.timestamp(), h.timestamp);
        prop_assert_eq!(p.ssrc(), h.ssrc);
        prop_assert_eq!(p.csrcs().collect::<Vec<_>>(), h.csrcs.clone());
        prop_assert_eq!(
            p.extension().map(|e| (e.profile, e.data.to_vec())),
            h.extension.clone()
        );
        prop_assert_eq!(p.has_padding(), h.padding > 0);
        prop_assert_eq!(p.padding_len(), usize::from(h.padding));
        prop_assert_eq!(p.payload(), &h.payload[..]);
    }

    #[test]
    fn parse_never_panics(bytes in prop::collection::vec(any::<u8>(), 0..256)) {
        if let Ok(p) = RtpPacket::parse(&bytes) {
            // Every accessor stays in bounds, and the pieces add up.
            let ext_len = p.extension().map_or(0, |e| 4 + e.data.len());
            prop_assert_eq!(p.header_len(), 12 + 4 * p.csrc_count() + ext_len);
            prop_assert_eq!(p.header_len() + p.payload().len() + p.padding_len(), bytes.len());
            prop_assert_eq!(p.csrcs().len(), p.csrc_count());
            if let Some(e) = p.extension()
                && let Ok(it) = e.elements()
            {
                for el in it {
                    let _ = el;
                }
            }
        }
    }

    #[test]
    fn rtp_shaped_bytes_never_panic(
        first in prop_oneof![Just(0x80u8), Just(0x90), Just(0xa0), Just(0xb0), any::<u8>()],
        rest in prop::collection::vec(any::<u8>(), 0..64),
    ) {
        // Version-2 first bytes reach the CSRC/extension/padding checks far
        // more often than uniform bytes do.
        let mut bytes = vec![first];
        bytes.extend(rest);
        let _ = RtpPacket::parse(&bytes);
    }

    #[test]
    fn extension_elements_never_panic(
        profile in prop_oneof![Just(0xBEDEu16), Just(0x1000), 0x1000u16..0x1010],
        data in prop::collection::vec(any::<u8>(), 0..64),
    ) {
        let mut total = 0;
        for el in ExtensionElements::new(profile, &data).unwrap() {
            match el {
                Ok(e) => total += e.data.len(),
                Err(_) => break,
            }
        }
        prop_assert!(total <= data.len());
    }

    #[test]
    fn extension_elements_round_trip(
        two_byte in any::<bool>(),
        elems in prop::collection::vec((1u8..=14, prop::collection::vec(any::<u8>(), 1..=16)), 0..8),
    ) {
        let form = if two_byte { ExtensionForm::TwoByte } else { ExtensionForm::OneByte };
        let elements: Vec<_> = elems
            .iter()
            .map(|(id, data)| ExtensionElement { id: *id, data })
            .collect();
        let mut out = Vec::new();
        write_extension_elements(form, &elements, &mut out).unwrap();
        prop_assert_eq!(out.len() % 4, 0);
        let back: Vec<_> = ExtensionElements::new(form.profile(), &out)
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        prop_assert_eq!(back, elements);
    }

    #[test]
    fn telephone_event_decode_never_panics_and_round_trips(
        bytes in prop::collection::vec(any::<u8>(), 0..12),
    ) {
        match TelephoneEvent::decode(&bytes) {
            Ok(e) => {
                prop_assert!(bytes.len() >= 4);
                prop_assert!(e.volume <= 63);
                let again = TelephoneEvent::decode(&e.encode()).unwrap();
                prop_assert_eq!(again, e);
                // Only the R bit may differ from the input.
                let enc = e.encode();
                prop_assert_eq!(enc[0], bytes[0]);
                prop_assert_eq!(enc[1], bytes[1] & !0x40);
                prop_assert_eq!(&enc[2..], &bytes[2..4]);
            }
            Err(_) => prop_assert!(bytes.len() < 4),
        }
    }

    #[test]
    fn receiver_never_panics_and_pairs_reports(
        packets in prop::collection::vec(
            (0u32..3, 0u32..4, any::<bool>(), prop::collection::vec(any::<u8>(), 0..6), 0u32..2000),
            0..60,
        ),
    ) {
        let mut r = EventReceiver::new(8000);
        let mut now = 0u32;
        let mut open = 0i32;
        for (ssrc, ts_slot, marker, payload, step) in packets {
            now = now.wrapping_add(step);
            let reports = r.on_packet(ssrc, ts_slot * 1000, marker, &payload, now);
            for rep in reports.into_iter().flatten().chain(r.poll(now)) {
                match rep {
                    EventReport::Start { .. } => open += 1,
                    EventReport::End { .. } => open -= 1,
                }
                // Never two starts without an end between them, never an
                // end without a start.
                prop_assert!((0..=1).contains(&open));
            }
        }
        prop_assert_eq!(open == 1, r.in_event());
    }

    #[test]
    fn sender_output_reassembles_to_the_requested_duration(
        duration in 1u32..300_000,
        ptime in prop_oneof![Just(80u32), Just(160), Just(240), Just(960)],
        update in prop_oneof![Just(80u32), Just(160), Just(400), Just(2400)],
        start in any::<u32>(),
    ) {
        let cfg = SenderConfig { packet_interval: ptime, update_interval: update, volume: 10, end_repeats: 3 };
        let mut s = EventSender::new(cfg).unwrap();
        s.start(7, start, duration).unwrap();
        let mut r = EventReceiver::new(u32::MAX);
        let mut markers = 0;
        let mut ends = 0;
        let mut reports = Vec::new();
        let mut k = 0u32;
        while !s.is_idle() {
            let now = start.wrapping_add(k * ptime);
            if let Some(p) = s.next_packet(now) {
                markers += usize::from(p.marker);
                ends += usize::from(p.event.end);
                prop_assert!(p.event.duration > 0);
                reports.extend(r.on_packet(1, p.timestamp, p.marker, &p.payload, now).unwrap());
            }
            k += 1;
        }
        prop_assert_eq!(markers, 1);
        prop_assert_eq!(ends, 3);
        prop_assert_eq!(reports.len(), 2);
        let is_full_end = matches!(
            reports[1],
            EventReport::End { duration: d, timestamp: t, .. } if d == duration && t == start
        );
        prop_assert!(is_full_end, "{:?}", reports);
    }
}
