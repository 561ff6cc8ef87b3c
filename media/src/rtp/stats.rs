//! Per-source receive statistics: sequence tracking and jitter bound to one
//! SSRC, restarted when the SSRC changes.

use super::interarrival::JitterEstimator;
use super::packet::RtpPacket;
use super::sequence::{DEFAULT_MIN_SEQUENTIAL, LossReport, SeqUpdate, SequenceTracker};

/// The receive-side fields of one RTCP report block (RFC 3550 §6.4.1),
/// except LSR/DLSR which come from sender reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReportBlock {
    /// The source reported on.
    pub ssrc: u32,
    /// Loss fields.
    pub loss: LossReport,
    /// Interarrival jitter in timestamp units.
    pub jitter: u32,
}

/// What [`ReceiveStats::on_packet`] made of a packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PacketOutcome {
    /// True when this packet's SSRC replaced the one tracked so far and the
    /// statistics were restarted.
    pub new_source: bool,
    /// The sequence verdict. Packets from the SSRC that was replaced are
    /// reported as [`SeqUpdate::Stale`] and do not switch back.
    pub seq: SeqUpdate,
}

/// Statistics for the one source an RTP session receives from at a time.
#[derive(Debug, Clone)]
pub struct ReceiveStats {
    ssrc: Option<u32>,
    previous_ssrc: Option<u32>,
    seq: SequenceTracker,
    jitter: JitterEstimator,
    source_changes: u64,
}

impl Default for ReceiveStats {
    fn default() -> Self {
        Self::new()
    }
}

impl ReceiveStats {
    /// Statistics with the RFC 3550 probation of two packets.
    pub fn new() -> Self {
        Self::with_min_sequential(DEFAULT_MIN_SEQUENTIAL)
    }

    /// Statistics whose sequence tracker needs `n` packets in a row before
    /// believing a new source (see [`SequenceTracker::with_min_sequential`]).
    pub fn with_min_sequential(n: u8) -> Self {
        Self {
            ssrc: None,
            previous_ssrc: None,
            seq: SequenceTracker::with_min_sequential(n),
            jitter: JitterEstimator::new(),
            source_changes: 0,
        }
    }

    /// Feeds a parsed packet; `arrival` is in RTP units of its clock.
    pub fn on_rtp(&mut self, packet: &RtpPacket<'_>, arrival: u32) -> PacketOutcome {
        self.on_packet(
            packet.ssrc(),
            packet.sequence(),
            packet.timestamp(),
            arrival,
        )
    }

    /// Feeds one packet's header fields and its arrival time in RTP units.
    /// Jitter is only updated for accepted packets, so duplicates and
    /// unconfirmed jumps do not disturb it.
    pub fn on_packet(
        &mut self,
        ssrc: u32,
        seq: u16,
        timestamp: u32,
        arrival: u32,
    ) -> PacketOutcome {
        let mut new_source = false;
        if self.ssrc != Some(ssrc) {
            if self.ssrc.is_some() && self.previous_ssrc == Some(ssrc) {
                // A straggler from the source we left; switching back would
                // throw away the new source's statistics.
                return PacketOutcome {
                    new_source: false,
                    seq: SeqUpdate::Stale,
                };
            }
            if self.ssrc.is_some() {
                new_source = true;
                self.source_changes += 1;
            }
            self.previous_ssrc = self.ssrc;
            self.ssrc = Some(ssrc);
            self.seq.reset();
            self.jitter.reset();
        }
        let update = self.seq.update(seq);
        if update.is_accepted() {
            self.jitter.update(timestamp, arrival);
        }
        PacketOutcome {
            new_source,
            seq: update,
        }
    }

    /// The SSRC being tracked.
    pub fn ssrc(&self) -> Option<u32> {
        self.ssrc
    }

    /// How many times the SSRC changed.
    pub fn source_changes(&self) -> u64 {
        self.source_changes
    }

    /// The sequence tracker of the current source.
    pub fn sequence(&self) -> &SequenceTracker {
        &self.seq
    }

    /// The jitter estimator of the current source.
    pub fn jitter(&self) -> &JitterEstimator {
        &self.jitter
    }

    /// A report block for the current source, starting a new fraction-lost
    /// interval; `None` before any packet.
    pub fn report_block(&mut self) -> Option<ReportBlock> {
        let ssrc = self.ssrc?;
        Some(ReportBlock {
            ssrc,
            loss: self.seq.report(),
            jitter: self.jitter.report_value(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tracks_one_source() {
        let mut s = ReceiveStats::new();
        assert_eq!(s.report_block(), None);
        for i in 0..10u16 {
            let ts = u32::from(i) * 160;
            let jitter = if i % 2 == 0 { 0 } else { 16 };
            let o = s.on_packet(7, i, ts, ts + jitter);
            assert!(!o.new_source);
        }
        assert_eq!(s.ssrc(), Some(7));
        assert_eq!(s.sequence().received(), 9);
        assert!(s.jitter().jitter() > 0.0);
        let rb = s.report_block().unwrap();
        assert_eq!(rb.ssrc, 7);
        assert_eq!(rb.loss.cumulative_lost, 0);
        assert_eq!(rb.loss.extended_highest, 9);
        assert_eq!(rb.jitter, s.jitter().report_value());
    }

    #[test]
    fn ssrc_change_resets_and_stragglers_are_ignored() {
        let mut s = ReceiveStats::with_min_sequential(1);
        s.on_packet(1, 100, 0, 0);
        s.on_packet(1, 101, 160, 400);
        assert!(s.jitter().jitter() > 0.0);
        let o = s.on_packet(2, 5000, 99, 500);
        assert!(o.new_source);
        assert_eq!(
            o.seq,
            SeqUpdate::InOrder {
                extended: 5000,
                lost: 0
            }
        );
        assert_eq!(s.jitter().jitter(), 0.0);
        assert_eq!(s.sequence().received(), 1);
        assert_eq!(s.source_changes(), 1);
        let late = s.on_packet(1, 102, 320, 520);
        assert_eq!(
            late,
            PacketOutcome {
                new_source: false,
                seq: SeqUpdate::Stale
            }
        );
        assert_eq!(s.ssrc(), Some(2));
        // A third SSRC is a real change again.
        assert!(s.on_packet(3, 0, 0, 600).new_source);
        assert_eq!(s.source_changes(), 2);
    }

    #[test]
    fn duplicates_do_not_move_jitter() {
        let mut s = ReceiveStats::with_min_sequential(1);
        s.on_packet(1, 0, 0, 0);
        s.on_packet(1, 1, 160, 160);
        let o = s.on_packet(1, 1, 160, 9999);
        assert_eq!(o.seq, SeqUpdate::Duplicate { extended: 1 });
        assert_eq!(s.jitter().jitter(), 0.0);
    }

    #[test]
    fn on_rtp_reads_header() {
        let mut buf = Vec::new();
        super::super::RtpPacketBuilder {
            sequence: 9,
            timestamp: 1,
            ssrc: 44,
            ..Default::default()
        }
        .write_to(&mut buf)
        .unwrap();
        let p = RtpPacket::parse(&buf).unwrap();
        let mut s = ReceiveStats::new();
        assert_eq!(s.on_rtp(&p, 0).seq, SeqUpdate::Probation);
        assert_eq!(s.ssrc(), Some(44));
    }
}
