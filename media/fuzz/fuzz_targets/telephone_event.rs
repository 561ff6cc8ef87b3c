#![no_main]

use hotline_media::dtmf::rfc4733::{
    EventReceiver, EventReport, EventSender, SenderConfig, TelephoneEvent,
};
use hotline_media::rtp::RtpPacket;
use libfuzzer_sys::fuzz_target;

fn payload_round_trip(data: &[u8]) {
    match TelephoneEvent::decode(data) {
        Ok(e) => {
            assert!(data.len() >= 4 && e.volume <= 63);
            let enc = e.encode();
            assert_eq!(TelephoneEvent::decode(&enc), Ok(e));
            // Only the reserved R bit is not preserved.
            assert_eq!(enc[0], data[0]);
            assert_eq!(enc[1], data[1] & !0x40);
            assert_eq!(enc[2..], data[2..4]);
        }
        Err(_) => assert!(data.len() < 4),
    }
}

/// Drives a receiver with 10-byte records: SSRC selector, 2-byte timestamp
/// slot, flags (marker, poll), 2-byte arrival step, 4-byte payload.
fn receiver(data: &[u8]) {
    let mut r = EventReceiver::new(8000);
    let mut now = 0u32;
    let mut open = false;
    let check = |rep: EventReport, open: &mut bool| match rep {
        EventReport::Start { .. } => {
            assert!(!*open, "two starts without an end");
            *open = true;
        }
        EventReport::End { .. } => {
            assert!(*open, "end without a start");
            *open = false;
        }
    };
    for rec in data.chunks_exact(10) {
        let ssrc = u32::from(rec[0] & 3);
        let ts = u32::from(u16::from_be_bytes([rec[1], rec[2]])) * 160;
        let marker = rec[3] & 1 != 0;
        now = now.wrapping_add(u32::from(u16::from_be_bytes([rec[4], rec[5]])));
        for rep in r.on_packet(ssrc, ts, marker, &rec[6..10], now).unwrap() {
            check(rep, &mut open);
        }
        if rec[3] & 2 != 0
            && let Some(rep) = r.poll(now)
        {
            check(rep, &mut open);
        }
    }
    assert_eq!(open, r.in_event());
}

/// Runs the sender with pacing taken from the first 8 bytes and checks the
/// receiver reassembles exactly one event of the requested duration.
fn sender(data: &[u8]) {
    let Some(&[p, u, d0, d1, d2, s0, s1, ev]) =
        data.get(..8).map(|s| <&[u8; 8]>::try_from(s).unwrap())
    else {
        return;
    };
    let cfg = SenderConfig {
        packet_interval: 80 * (1 + u32::from(p % 12)),
        update_interval: 80 * (1 + u32::from(u % 30)),
        volume: 10,
        end_repeats: 3,
    };
    let duration = 1 + (u32::from(d0) | u32::from(d1) << 8 | u32::from(d2 & 3) << 16);
    let start = u32::from(u16::from_be_bytes([s0, s1])).wrapping_mul(0x9e37_79b9);
    let mut s = EventSender::new(cfg).unwrap();
    s.start(ev, start, duration).unwrap();
    let mut r = EventReceiver::new(u32::MAX);
    let mut reports = Vec::new();
    let mut k = 0u32;
    while !s.is_idle() {
        let now = start.wrapping_add(k * cfg.packet_interval);
        if let Some(pkt) = s.next_packet(now) {
            reports.extend(
                r.on_packet(1, pkt.timestamp, pkt.marker, &pkt.payload, now)
                    .unwrap(),
            );
        }
        k += 1;
        assert!(k < 100_000, "sender never finishes");
    }
    assert_eq!(reports.len(), 2);
    assert!(matches!(
        reports[1],
        EventReport::End { duration: d, timestamp: t, event: e, .. }
            if d == duration && t == start && e == ev
    ));
}

fuzz_target!(|data: &[u8]| {
    payload_round_trip(data);
    if let Ok(p) = RtpPacket::parse(data) {
        payload_round_trip(p.payload());
        let mut r = EventReceiver::new(8000);
        let _ = r.on_rtp(&p, 0);
    }
    receiver(data);
    sender(data);
});
