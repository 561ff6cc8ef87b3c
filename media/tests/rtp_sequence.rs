//! Sequence extension across the 16-bit wrap with loss and reordering, and
//! the interarrival jitter of a receive session, checked against hand
//! computation.

use std::time::{Duration, Instant};

use hotline_media::rtp::{
    ReceiveStats, RtpPacket, RtpPacketBuilder, SeqUpdate, SequenceTracker, rtp_units_between,
};

#[test]
fn rollover_with_loss_and_reorder() {
    let mut t = SequenceTracker::new();
    // Arrival order around the wrap: 65530 and 65531 validate the source,
    // 65533 overtakes 65532, 0 skips 65534 and 65535 (65535 is really lost),
    // 1 follows, 65534 arrives late (after the wrap), 1 and 65534 are
    // duplicated, 3 skips 2, and 2 arrives last.
    let arrivals: [(u16, SeqUpdate); 11] = [
        (65530, SeqUpdate::Probation),
        (
            65531,
            SeqUpdate::InOrder {
                extended: 65531,
                lost: 0,
            },
        ),
        (
            65533,
            SeqUpdate::InOrder {
                extended: 65533,
                lost: 1,
            },
        ),
        (65532, SeqUpdate::Reordered { extended: 65532 }),
        (
            0,
            SeqUpdate::InOrder {
                extended: 65536,
                lost: 2,
            },
        ),
        (
            1,
            SeqUpdate::InOrder {
                extended: 65537,
                lost: 0,
            },
        ),
        (65534, SeqUpdate::Reordered { extended: 65534 }),
        (1, SeqUpdate::Duplicate { extended: 65537 }),
        (65534, SeqUpdate::Duplicate { extended: 65534 }),
        (
            3,
            SeqUpdate::InOrder {
                extended: 65539,
                lost: 1,
            },
        ),
        (2, SeqUpdate::Reordered { extended: 65538 }),
    ];
    for (i, (seq, want)) in arrivals.into_iter().enumerate() {
        assert_eq!(t.update(seq), want, "arrival {i} (seq {seq})");
    }
    assert_eq!(t.cycles(), 1);
    assert_eq!(t.extended_max(), 65539);
    assert_eq!(t.base(), 65531);
    // Expected 65531..=65539 = 9. Received counts every counted arrival:
    // 10 (all but the probation packet), including 2 duplicates.
    assert_eq!(t.expected(), 9);
    assert_eq!(t.received(), 10);
    assert_eq!(t.duplicates(), 2);
    assert_eq!(t.reordered(), 3);
    // Only 65535 is really missing; duplicates push RFC 3550's count to -1.
    assert_eq!(t.lost(), -1);
    assert_eq!(t.lost() + t.duplicates() as i64, 1);
    let report = t.report();
    assert_eq!(report.cumulative_lost, -1);
    assert_eq!(report.fraction_lost, 0);
    assert_eq!(report.extended_highest, 65539);
}

#[test]
fn many_wraps_keep_counting() {
    let mut t = SequenceTracker::with_min_sequential(1);
    let mut seq: u16 = 40000;
    let mut sent = 0u64;
    // Five wraps, losing every 50th packet.
    for i in 0..(5 * 65536u64) {
        if i % 50 != 49 {
            assert!(t.update(seq).is_accepted());
        }
        sent += 1;
        seq = seq.wrapping_add(1);
    }
    // The last packet (i = 327679, i % 50 = 29) arrived, so everything
    // sent is expected.
    assert_eq!(t.cycles(), 5);
    assert_eq!(t.expected(), sent);
    assert_eq!(t.extended_max(), 40000 + sent - 1);
    let lost = (0..sent).filter(|i| i % 50 == 49).count() as i64;
    assert_eq!(t.lost(), lost);
    assert_eq!(t.received() as i64, sent as i64 - lost);
}

#[test]
fn loss_fraction_over_two_report_intervals() {
    let mut t = SequenceTracker::with_min_sequential(1);
    for s in 0..100u16 {
        t.update(s);
    }
    assert_eq!(t.report().fraction_lost, 0);
    // Next interval: 100..200 with a quarter lost.
    for s in 100..200u16 {
        if s % 4 != 0 {
            t.update(s);
        }
    }
    // 100, 104, ..., 196 are lost; the highest received is 199, so the
    // interval expected 100 and lost 25: 64/256.
    let r = t.report();
    assert_eq!(r.fraction_lost, 64);
    assert_eq!(r.cumulative_lost, 25);
}

#[test]
fn session_jitter_matches_hand_computation_and_resets_on_ssrc_change() {
    // 8 kHz PCMU, 20 ms packets. Arrival deviations from the nominal 20 ms
    // grid, in ms: 0, +4, -2, +6, +6, 0. In 8 kHz units: 0, 32, -16, 48, 48, 0.
    // |D| = 32, 48, 64, 0, 48.
    // J = 2, 4.875, 8.5703125, 8.03466796875, 10.5325012207031...
    let epoch = Instant::now();
    let deviations_us = [0i64, 4000, -2000, 6000, 6000, 0];
    let mut stats = ReceiveStats::with_min_sequential(1);
    let mut buf = Vec::new();
    let mut expected = 0.0f64;
    let mut prev_dev_units: Option<i64> = None;
    for (i, dev) in deviations_us.iter().enumerate() {
        buf.clear();
        RtpPacketBuilder {
            payload_type: 0,
            sequence: 7 + i as u16,
            timestamp: 1_000_000 + 160 * i as u32,
            ssrc: 0xabc,
            payload: &[0xff; 160],
            ..Default::default()
        }
        .write_to(&mut buf)
        .unwrap();
        let arrival_at = epoch
            + Duration::from_millis(100 + 20 * i as u64)
                .checked_add_signed(*dev)
                .unwrap();
        let arrival = rtp_units_between(epoch, arrival_at, 8000);
        let p = RtpPacket::parse(&buf).unwrap();
        assert!(stats.on_rtp(&p, arrival).seq.is_accepted());
        let dev_units = dev * 8 / 1000;
        if let Some(prev) = prev_dev_units {
            expected += ((dev_units - prev).abs() as f64 - expected) / 16.0;
        }
        prev_dev_units = Some(dev_units);
        assert_eq!(stats.jitter().jitter(), expected, "packet {i}");
    }
    assert_eq!(expected, 10.532501220703125);
    let rb = stats.report_block().unwrap();
    assert_eq!(rb.ssrc, 0xabc);
    assert_eq!(rb.jitter, 10);
    assert_eq!(rb.loss.cumulative_lost, 0);
    // New SSRC: jitter and counters start over.
    let out = stats.on_packet(0xdef, 500, 0, 9999);
    assert!(out.new_source);
    assert_eq!(stats.jitter().jitter(), 0.0);
    assert_eq!(stats.sequence().received(), 1);
    assert_eq!(stats.report_block().unwrap().ssrc, 0xdef);
}

/// Signed-offset helper for the test above.
trait AddSigned {
    fn checked_add_signed(self, us: i64) -> Option<Duration>;
}

impl AddSigned for Duration {
    fn checked_add_signed(self, us: i64) -> Option<Duration> {
        if us >= 0 {
            self.checked_add(Duration::from_micros(us as u64))
        } else {
            self.checked_sub(Duration::from_micros(us.unsigned_abs()))
        }
    }
}
