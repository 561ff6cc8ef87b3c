#![no_main]

use hotline_media::rtp::{RtpPacket, RtpPacketBuilder};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(p) = RtpPacket::parse(data) else {
        return;
    };
    if let Some(ext) = p.extension()
        && let Ok(elements) = ext.elements()
    {
        for e in elements {
            if let Ok(e) = e {
                assert!(e.data.len() <= ext.data.len());
            }
        }
    }
    let csrcs: Vec<u32> = p.csrcs().collect();
    let builder = RtpPacketBuilder {
        marker: p.marker(),
        payload_type: p.payload_type(),
        sequence: p.sequence(),
        timestamp: p.timestamp(),
        ssrc: p.ssrc(),
        csrcs: &csrcs,
        extension: p.extension(),
        padding: u8::try_from(p.padding_len()).expect("padding count is one byte"),
        payload: p.payload(),
    };
    let mut out = Vec::with_capacity(builder.encoded_len());
    let n = builder
        .write_to(&mut out)
        .expect("a parsed packet serializes");
    assert_eq!(n, data.len());
    let q = RtpPacket::parse(&out).expect("a serialized packet parses");
    assert_eq!(q.marker(), p.marker());
    assert_eq!(q.payload_type(), p.payload_type());
    assert_eq!(q.sequence(), p.sequence());
    assert_eq!(q.timestamp(), p.timestamp());
    assert_eq!(q.ssrc(), p.ssrc());
    assert!(q.csrcs().eq(p.csrcs()));
    assert_eq!(q.extension(), p.extension());
    assert_eq!(q.padding_len(), p.padding_len());
    assert_eq!(q.payload(), p.payload());
    // Only the padding filler may differ (the serializer writes zeros).
    let body = data.len() - p.padding_len();
    assert_eq!(&out[..body], &data[..body]);
    assert_eq!(out.last(), data.last());
});
