//! Sequence number extension and loss accounting of RFC 3550 Appendix A.1
//! and A.3, the counters an RTCP receiver report block is built from.

const SEQ_MOD: u64 = 1 << 16;
/// Largest forward jump still taken as in-order delivery with loss.
pub const MAX_DROPOUT: u16 = 3000;
/// Largest backward step still taken as a late (reordered) packet.
pub const MAX_MISORDER: u16 = 100;
/// Packets in sequence needed before a new source is believed (A.1's
/// MIN_SEQUENTIAL).
pub const DEFAULT_MIN_SEQUENTIAL: u8 = 2;

/// What one sequence number meant to the tracker.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SeqUpdate {
    /// The source is still on probation; the packet is not counted.
    Probation,
    /// The highest sequence number so far, `lost` packets after the
    /// previous highest (0 when consecutive). The first valid packet also
    /// reports this, with `lost` 0.
    InOrder {
        /// 64-bit extended sequence number.
        extended: u64,
        /// Sequence numbers skipped since the previous highest.
        lost: u16,
    },
    /// Arrived after a higher sequence number (within MAX_MISORDER).
    Reordered {
        /// 64-bit extended sequence number.
        extended: u64,
    },
    /// A sequence number already received within the last 128.
    Duplicate {
        /// 64-bit extended sequence number.
        extended: u64,
    },
    /// A late packet from before the first sequence number this tracker
    /// counted: it has no extended number and is not counted.
    Stale,
    /// A very large jump. Dropped unless the next packet follows it, in which
    /// case the tracker restarts (the sender probably restarted).
    Jump,
    /// The packet followed a [`SeqUpdate::Jump`]; counting restarted from it.
    Restarted {
        /// 64-bit extended sequence number (cycles are kept).
        extended: u64,
    },
}

impl SeqUpdate {
    /// Whether the packet should be passed on (everything but probation,
    /// duplicates, stale packets and unconfirmed jumps).
    pub fn is_accepted(&self) -> bool {
        matches!(
            self,
            Self::InOrder { .. } | Self::Reordered { .. } | Self::Restarted { .. }
        )
    }

    /// The extended sequence number, when the packet has one.
    pub fn extended(&self) -> Option<u64> {
        match *self {
            Self::InOrder { extended, .. }
            | Self::Reordered { extended }
            | Self::Duplicate { extended }
            | Self::Restarted { extended } => Some(extended),
            Self::Probation | Self::Stale | Self::Jump => None,
        }
    }
}

/// The loss fields of an RTCP report block (RFC 3550 §6.4.1, A.3).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LossReport {
    /// Fraction lost since the previous report, as a fixed-point number with
    /// the binary point at the left edge (lost × 256 / expected).
    pub fraction_lost: u8,
    /// Cumulative packets lost, clamped to the 24-bit signed field.
    pub cumulative_lost: i32,
    /// Extended highest sequence number received (low 32 bits).
    pub extended_highest: u32,
}

/// RFC 3550 Appendix A.1 sequence state for one source.
///
/// As in the RFC, `received` counts late and duplicated packets, so
/// [`lost`](Self::lost) may go negative; [`duplicates`](Self::duplicates) is
/// kept separately so callers can tell.
#[derive(Debug, Clone)]
pub struct SequenceTracker {
    min_sequential: u8,
    started: bool,
    probation: u8,
    max_seq: u16,
    /// Count of wraps times 65536, as in A.1.
    cycles: u64,
    base_seq: u64,
    /// A.1's bad_seq; `None` stands for RTP_SEQ_MOD + 1 ("no candidate").
    bad_seq: Option<u16>,
    received: u64,
    expected_prior: u64,
    received_prior: u64,
    duplicates: u64,
    reordered: u64,
    /// Bit i set: extended_max - i has been received.
    seen: u128,
}

impl Default for SequenceTracker {
    fn default() -> Self {
        Self::new()
    }
}

impl SequenceTracker {
    /// A tracker with the RFC's probation of two sequential packets.
    pub fn new() -> Self {
        Self::with_min_sequential(DEFAULT_MIN_SEQUENTIAL)
    }

    /// A tracker that needs `n` sequential packets before believing a source;
    /// `n` of 0 or 1 accepts the first packet at once (for trunks whose
    /// first packet must not be dropped).
    pub fn with_min_sequential(n: u8) -> Self {
        Self {
            min_sequential: n.max(1),
            started: false,
            probation: 0,
            max_seq: 0,
            cycles: 0,
            base_seq: 0,
            bad_seq: None,
            received: 0,
            expected_prior: 0,
            received_prior: 0,
            duplicates: 0,
            reordered: 0,
            seen: 0,
        }
    }

    /// Forgets everything, as for a new SSRC.
    pub fn reset(&mut self) {
        *self = Self::with_min_sequential(self.min_sequential);
    }

    fn init_seq(&mut self, seq: u16) {
        self.base_seq = self.cycles + u64::from(seq);
        self.max_seq = seq;
        self.bad_seq = None;
        self.received = 0;
        self.received_prior = 0;
        self.expected_prior = 0;
        self.seen = 1;
    }

    /// Feeds one sequence number (A.1's `update_seq`).
    pub fn update(&mut self, seq: u16) -> SeqUpdate {
        if !self.started {
            // A.1 source creation: init_seq, then max_seq = seq - 1 and
            // probation = MIN_SEQUENTIAL.
            self.started = true;
            self.init_seq(seq);
            self.max_seq = seq.wrapping_sub(1);
            self.probation = self.min_sequential;
        }
        let udelta = seq.wrapping_sub(self.max_seq);
        if self.probation > 0 {
            if seq == self.max_seq.wrapping_add(1) {
                self.probation -= 1;
                self.max_seq = seq;
                if self.probation == 0 {
                    self.init_seq(seq);
                    self.received += 1;
                    return SeqUpdate::InOrder {
                        extended: self.extended_max(),
                        lost: 0,
                    };
                }
            } else {
                self.probation = self.min_sequential - 1;
                self.max_seq = seq;
            }
            return SeqUpdate::Probation;
        }
        if udelta == 0 {
            self.duplicates += 1;
            self.received += 1;
            return SeqUpdate::Duplicate {
                extended: self.extended_max(),
            };
        }
        if udelta < MAX_DROPOUT {
            if seq < self.max_seq {
                self.cycles += SEQ_MOD;
            }
            self.max_seq = seq;
            self.seen = if udelta >= 128 {
                1
            } else {
                self.seen << udelta | 1
            };
            self.received += 1;
            return SeqUpdate::InOrder {
                extended: self.extended_max(),
                lost: udelta - 1,
            };
        }
        if u64::from(udelta) <= SEQ_MOD - u64::from(MAX_MISORDER) {
            if Some(seq) == self.bad_seq {
                // Two sequential packets after a jump: the sender restarted.
                self.init_seq(seq);
                self.received += 1;
                return SeqUpdate::Restarted {
                    extended: self.extended_max(),
                };
            }
            self.bad_seq = Some(seq.wrapping_add(1));
            return SeqUpdate::Jump;
        }
        // Late: `back` steps behind the highest.
        let back = self.max_seq.wrapping_sub(seq);
        let Some(extended) = self.extended_max().checked_sub(u64::from(back)) else {
            return SeqUpdate::Stale;
        };
        if extended < self.base_seq {
            return SeqUpdate::Stale;
        }
        let bit = 1u128 << back;
        self.received += 1;
        if self.seen & bit != 0 {
            self.duplicates += 1;
            return SeqUpdate::Duplicate { extended };
        }
        self.seen |= bit;
        self.reordered += 1;
        SeqUpdate::Reordered { extended }
    }

    /// Whether the source has passed probation.
    pub fn is_valid(&self) -> bool {
        self.started && self.probation == 0
    }

    /// Highest extended sequence number received (cycles + max_seq).
    pub fn extended_max(&self) -> u64 {
        self.cycles + u64::from(self.max_seq)
    }

    /// Extended sequence number counting started from.
    pub fn base(&self) -> u64 {
        self.base_seq
    }

    /// Wraps of the 16-bit sequence number since counting started.
    pub fn cycles(&self) -> u64 {
        self.cycles / SEQ_MOD
    }

    /// Packets counted, including late and duplicated ones (A.3).
    pub fn received(&self) -> u64 {
        if self.is_valid() { self.received } else { 0 }
    }

    /// Packets expected: highest minus base plus one (A.3).
    pub fn expected(&self) -> u64 {
        if self.is_valid() {
            self.extended_max() + 1 - self.base_seq
        } else {
            0
        }
    }

    /// Expected minus received; negative when duplicates outnumber losses.
    pub fn lost(&self) -> i64 {
        self.expected() as i64 - self.received() as i64
    }

    /// Duplicated packets seen (included in `received`).
    pub fn duplicates(&self) -> u64 {
        self.duplicates
    }

    /// Packets that arrived after a higher sequence number.
    pub fn reordered(&self) -> u64 {
        self.reordered
    }

    /// The report block loss fields; starts a new fraction-lost interval.
    pub fn report(&mut self) -> LossReport {
        let expected = self.expected();
        let received = self.received();
        let expected_interval = expected.saturating_sub(self.expected_prior);
        let received_interval = received.saturating_sub(self.received_prior);
        self.expected_prior = expected;
        self.received_prior = received;
        let lost_interval = expected_interval as i64 - received_interval as i64;
        let fraction_lost = if expected_interval == 0 || lost_interval <= 0 {
            0
        } else {
            // lost_interval <= expected_interval, so this is at most 256;
            // a whole interval lost is reported as 255/256.
            ((lost_interval << 8) / expected_interval as i64).min(255) as u8
        };
        LossReport {
            fraction_lost,
            cumulative_lost: self.lost().clamp(-0x80_0000, 0x7f_ffff) as i32,
            extended_highest: self.extended_max() as u32,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn valid_from(seq: u16) -> SequenceTracker {
        let mut t = SequenceTracker::new();
        assert_eq!(t.update(seq), SeqUpdate::Probation);
        assert_eq!(
            t.update(seq.wrapping_add(1)),
            SeqUpdate::InOrder {
                extended: u64::from(seq.wrapping_add(1)),
                lost: 0
            }
        );
        t
    }

    #[test]
    fn probation_needs_two_in_a_row() {
        let mut t = SequenceTracker::new();
        assert_eq!(t.update(10), SeqUpdate::Probation);
        assert!(!t.is_valid());
        assert_eq!(t.update(12), SeqUpdate::Probation);
        assert_eq!(t.received(), 0);
        assert_eq!(t.expected(), 0);
        assert_eq!(
            t.update(13),
            SeqUpdate::InOrder {
                extended: 13,
                lost: 0
            }
        );
        assert!(t.is_valid());
        assert_eq!((t.received(), t.expected(), t.base()), (1, 1, 13));
    }

    #[test]
    fn min_sequential_one_accepts_first_packet() {
        let mut t = SequenceTracker::with_min_sequential(1);
        assert_eq!(
            t.update(500),
            SeqUpdate::InOrder {
                extended: 500,
                lost: 0
            }
        );
        let mut z = SequenceTracker::with_min_sequential(0);
        assert!(z.update(0).is_accepted());
    }

    #[test]
    fn gap_reports_loss() {
        let mut t = valid_from(100);
        assert_eq!(
            t.update(105),
            SeqUpdate::InOrder {
                extended: 105,
                lost: 3
            }
        );
        assert_eq!((t.received(), t.expected(), t.lost()), (2, 5, 3));
    }

    #[test]
    fn rollover_extends_into_next_cycle() {
        let mut t = valid_from(65534);
        assert_eq!(
            t.update(0),
            SeqUpdate::InOrder {
                extended: 65536,
                lost: 0
            }
        );
        assert_eq!(t.cycles(), 1);
        assert_eq!(t.extended_max(), 65536);
        assert_eq!(t.report().extended_highest, 0x0001_0000);
    }

    #[test]
    fn late_and_duplicate_packets() {
        let mut t = valid_from(10);
        t.update(13);
        assert_eq!(t.update(12), SeqUpdate::Reordered { extended: 12 });
        assert_eq!(t.update(12), SeqUpdate::Duplicate { extended: 12 });
        assert_eq!(t.update(13), SeqUpdate::Duplicate { extended: 13 });
        assert_eq!(t.reordered(), 1);
        assert_eq!(t.duplicates(), 2);
        // RFC counting: 11, 13, 12, 12, 13 all received; expected 11..=13.
        assert_eq!((t.received(), t.expected(), t.lost()), (5, 3, -2));
    }

    #[test]
    fn late_packet_across_rollover_gets_previous_cycle() {
        let mut t = valid_from(65533);
        t.update(1); // skips 65535 and 0
        assert_eq!(t.update(65535), SeqUpdate::Reordered { extended: 65535 });
        assert_eq!(t.update(0), SeqUpdate::Reordered { extended: 65536 });
        assert_eq!(t.lost(), 0);
    }

    #[test]
    fn packet_before_base_is_stale() {
        let mut t = valid_from(5); // base 6
        assert_eq!(t.update(5), SeqUpdate::Stale);
        let mut u = valid_from(0); // base 1, cycles 0
        assert_eq!(u.update(65535), SeqUpdate::Stale);
        assert_eq!(u.received(), 1);
    }

    #[test]
    fn too_late_is_a_jump_not_a_reorder() {
        let mut t = valid_from(1000);
        assert_eq!(t.update(1001 - 101), SeqUpdate::Jump);
    }

    #[test]
    fn large_jump_needs_confirmation() {
        let mut t = valid_from(1);
        assert_eq!(t.update(40000), SeqUpdate::Jump);
        assert_eq!(t.received(), 1);
        // Stream continues normally: the jump was a stray packet.
        assert_eq!(
            t.update(3),
            SeqUpdate::InOrder {
                extended: 3,
                lost: 0
            }
        );
        assert_eq!(t.update(40000), SeqUpdate::Jump);
        assert_eq!(t.update(40001), SeqUpdate::Restarted { extended: 40001 });
        assert_eq!((t.received(), t.expected(), t.base()), (1, 1, 40001));
        assert_eq!(
            t.update(40002),
            SeqUpdate::InOrder {
                extended: 40002,
                lost: 0
            }
        );
    }

    #[test]
    fn dropout_boundary() {
        let mut t = valid_from(0);
        assert_eq!(
            t.update(1 + 2999),
            SeqUpdate::InOrder {
                extended: 3000,
                lost: 2998
            }
        );
        assert_eq!(t.update(3000 + 3000), SeqUpdate::Jump);
    }

    #[test]
    fn big_gap_clears_duplicate_window() {
        let mut t = valid_from(0);
        t.update(500);
        // 499 was never seen even though bits were shifted out.
        assert_eq!(t.update(499), SeqUpdate::Reordered { extended: 499 });
    }

    #[test]
    fn report_fraction_lost_per_interval() {
        let mut t = valid_from(0); // seq 1 counted
        for s in 2..=10 {
            if s % 2 == 0 {
                t.update(s);
            }
        }
        // Expected 1..=10 = 10, received 1,2,4,6,8,10 = 6.
        let r = t.report();
        assert_eq!(r.cumulative_lost, 4);
        assert_eq!(r.fraction_lost, (4 * 256 / 10) as u8);
        assert_eq!(r.extended_highest, 10);
        // No new packets: fraction 0, cumulative unchanged.
        let r = t.report();
        assert_eq!((r.fraction_lost, r.cumulative_lost), (0, 4));
        // Duplicates make the interval loss negative: fraction clamps to 0.
        t.update(11);
        t.update(11);
        t.update(11);
        let r = t.report();
        assert_eq!((r.fraction_lost, r.cumulative_lost), (0, 2));
    }

    #[test]
    fn report_before_valid_is_empty() {
        let mut t = SequenceTracker::new();
        t.update(7);
        assert_eq!(
            t.report(),
            LossReport {
                fraction_lost: 0,
                cumulative_lost: 0,
                extended_highest: 7
            }
        );
    }

    #[test]
    fn cumulative_lost_clamps_to_24_bits() {
        let mut t = SequenceTracker::with_min_sequential(1);
        t.update(0);
        // 3000 cycles of jumps of 2999 lose far more than 2^23 packets.
        let mut s: u16 = 0;
        for _ in 0..4000 {
            s = s.wrapping_add(2999);
            t.update(s);
        }
        assert!(t.lost() > 0x7f_ffff);
        assert_eq!(t.report().cumulative_lost, 0x7f_ffff);
    }

    #[test]
    fn reset_forgets_source() {
        let mut t = valid_from(9);
        t.reset();
        assert!(!t.is_valid());
        assert_eq!(t.update(100), SeqUpdate::Probation);
    }

    #[test]
    fn outcome_helpers() {
        assert!(!SeqUpdate::Probation.is_accepted());
        assert!(!SeqUpdate::Jump.is_accepted());
        assert!(!SeqUpdate::Stale.is_accepted());
        assert!(!SeqUpdate::Duplicate { extended: 1 }.is_accepted());
        assert!(SeqUpdate::Reordered { extended: 1 }.is_accepted());
        assert!(SeqUpdate::Restarted { extended: 1 }.is_accepted());
        assert_eq!(SeqUpdate::Duplicate { extended: 4 }.extended(), Some(4));
        assert_eq!(SeqUpdate::Jump.extended(), None);
    }
}
