//! One RTP session's RTCP state: what to put in our reports and what the
//! peer's reports tell us.

use std::time::{Duration, Instant, SystemTime};

use super::interval::{IntervalConfig, ReportScheduler};
use super::ntp::{NtpTime, compact_to_duration, duration_to_compact};
use super::packet::{
    Bye, ReceiverReport, ReceptionReport, RtcpError, RtcpPacket, SdesChunk, SenderInfo,
    SenderReport, parse_compound, write_compound,
};
use crate::rtp::ReceiveStats;

/// What this participant has sent (the SR sender info counters, §6.4.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct SenderCounters {
    /// RTP packets sent; wraps like the SR field.
    pub packets: u32,
    /// RTP payload octets sent (headers and padding excluded); wraps.
    pub octets: u32,
}

/// The latest reception report the peer sent about our stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RemoteReport {
    /// The block as received.
    pub block: ReceptionReport,
    /// When it arrived.
    pub received_at: Instant,
}

/// What one received compound packet said.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct RtcpReceived {
    /// SSRC of the SR/RR sender, if the compound had a report.
    pub reporter: Option<u32>,
    /// True when it carried a sender report.
    pub sender_report: bool,
    /// The reception report about our SSRC, if any.
    pub about_us: Option<ReceptionReport>,
    /// Round-trip time computed from that report's LSR/DLSR.
    pub rtt: Option<Duration>,
    /// The peer's CNAME, if an SDES carried one.
    pub cname: Option<Vec<u8>>,
    /// True when a BYE arrived.
    pub bye: bool,
    /// Packets of types we do not interpret (APP, XR, feedback…).
    pub unknown: usize,
}

/// The longest prefix of `s` of at most `max` bytes ending on a char
/// boundary (SDES items are limited to 255 bytes).
fn truncate_utf8(s: &str, max: usize) -> &str {
    let mut end = s.len().min(max);
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}

/// RTCP for one RTP session with a single SSRC of our own.
#[derive(Debug, Clone)]
pub struct RtcpSession {
    ssrc: u32,
    cname: String,
    scheduler: ReportScheduler,
    sent: SenderCounters,
    /// Packet counts when the last and the previous report were built, to
    /// tell whether we sent "since the last report or the one before"
    /// (§6.4: send an SR then).
    at_last_report: u32,
    at_report_before: u32,
    last_sr: Option<(u32, u32, Instant)>,
    rtt: Option<Duration>,
    remote: Option<RemoteReport>,
    reports_sent: u64,
    reports_received: u64,
}

impl RtcpSession {
    /// RTCP state for our `ssrc` with the given CNAME (§6.5.1: e.g.
    /// `user@host`, or a random string), starting at `now`.
    pub fn new(ssrc: u32, cname: &str, config: IntervalConfig, now: Instant, seed: u64) -> Self {
        RtcpSession {
            ssrc,
            cname: truncate_utf8(cname, 255).to_owned(),
            scheduler: ReportScheduler::new(config, now, seed),
            sent: SenderCounters::default(),
            at_last_report: 0,
            at_report_before: 0,
            last_sr: None,
            rtt: None,
            remote: None,
            reports_sent: 0,
            reports_received: 0,
        }
    }

    /// Our SSRC.
    pub fn ssrc(&self) -> u32 {
        self.ssrc
    }

    /// Counts one RTP packet sent with `payload_len` payload octets.
    pub fn on_rtp_sent(&mut self, payload_len: usize) {
        self.sent.packets = self.sent.packets.wrapping_add(1);
        self.sent.octets = self.sent.octets.wrapping_add(payload_len as u32);
    }

    /// The send counters.
    pub fn sent(&self) -> SenderCounters {
        self.sent
    }

    /// When the next report is due.
    pub fn next_due(&self) -> Instant {
        self.scheduler.next_due()
    }

    /// The scheduler, e.g. to adjust member counts.
    pub fn scheduler_mut(&mut self) -> &mut ReportScheduler {
        &mut self.scheduler
    }

    fn is_sender(&self) -> bool {
        self.sent.packets != self.at_report_before
    }

    /// If a report is due at `now`, appends it to `out` and returns its
    /// length. `wall` is the wall clock at `now`; `rtp_timestamp` is our RTP
    /// clock at the same instant; `receive` supplies the report block about
    /// the peer's stream.
    pub fn poll_report(
        &mut self,
        now: Instant,
        wall: SystemTime,
        rtp_timestamp: u32,
        receive: &mut ReceiveStats,
        out: &mut Vec<u8>,
    ) -> Option<usize> {
        self.scheduler
            .set_we_sent(self.sent.packets != self.at_last_report);
        if !self.scheduler.poll(now) {
            return None;
        }
        let n = self.build_report(now, wall, rtp_timestamp, receive, out);
        self.scheduler.on_sent(now, n);
        Some(n)
    }

    /// Appends an SR (if we sent RTP since the report before last) or an RR,
    /// plus an SDES CNAME, to `out`, and returns its length. Starts a new
    /// fraction-lost interval in `receive`.
    pub fn build_report(
        &mut self,
        now: Instant,
        wall: SystemTime,
        rtp_timestamp: u32,
        receive: &mut ReceiveStats,
        out: &mut Vec<u8>,
    ) -> usize {
        let packets = self.report_packets(now, wall, rtp_timestamp, receive);
        self.at_report_before = self.at_last_report;
        self.at_last_report = self.sent.packets;
        self.reports_sent += 1;
        // One block, one chunk and a CNAME capped at 255 bytes by `new`
        // always serialize.
        write_compound(&packets, out).unwrap_or(0)
    }

    fn report_packets(
        &self,
        now: Instant,
        wall: SystemTime,
        rtp_timestamp: u32,
        receive: &mut ReceiveStats,
    ) -> Vec<RtcpPacket> {
        let block = receive.report_block().map(|b| {
            let (last_sr, delay) = match self.last_sr {
                Some((ssrc, lsr, at)) if ssrc == b.ssrc => {
                    (lsr, duration_to_compact(now.saturating_duration_since(at)))
                }
                _ => (0, 0),
            };
            ReceptionReport {
                ssrc: b.ssrc,
                fraction_lost: b.loss.fraction_lost,
                cumulative_lost: b.loss.cumulative_lost,
                extended_highest: b.loss.extended_highest,
                jitter: b.jitter,
                last_sr,
                delay_since_last_sr: delay,
            }
        });
        let reports: Vec<_> = block.into_iter().collect();
        let report = if self.is_sender() {
            RtcpPacket::SenderReport(SenderReport {
                ssrc: self.ssrc,
                info: SenderInfo {
                    ntp: NtpTime::from_system_time(wall).0,
                    rtp_timestamp,
                    packet_count: self.sent.packets,
                    octet_count: self.sent.octets,
                },
                reports,
            })
        } else {
            RtcpPacket::ReceiverReport(ReceiverReport {
                ssrc: self.ssrc,
                reports,
            })
        };
        vec![
            report,
            RtcpPacket::SourceDescription(vec![SdesChunk::cname(self.ssrc, &self.cname)]),
        ]
    }

    /// Appends a final report and a BYE (§6.6: a BYE goes in a compound
    /// that starts with a report) to `out`; returns its length.
    pub fn build_bye(
        &mut self,
        now: Instant,
        wall: SystemTime,
        rtp_timestamp: u32,
        receive: &mut ReceiveStats,
        out: &mut Vec<u8>,
    ) -> usize {
        let mut packets = self.report_packets(now, wall, rtp_timestamp, receive);
        packets.push(RtcpPacket::Bye(Bye {
            sources: vec![self.ssrc],
            reason: None,
        }));
        write_compound(&packets, out).unwrap_or(0)
    }

    /// Takes in a received compound packet: remembers the peer's last SR
    /// for our LSR/DLSR, computes the round-trip time from any report block
    /// about us (§6.4.1: RTT = A − LSR − DLSR), and keeps that block.
    /// `wall` is the wall clock at arrival.
    pub fn on_rtcp(
        &mut self,
        buf: &[u8],
        now: Instant,
        wall: SystemTime,
    ) -> Result<RtcpReceived, RtcpError> {
        let mut out = RtcpReceived::default();
        let arrival = NtpTime::from_system_time(wall).compact();
        for packet in parse_compound(buf) {
            match packet? {
                RtcpPacket::SenderReport(sr) => {
                    out.reporter = Some(sr.ssrc);
                    out.sender_report = true;
                    self.last_sr = Some((sr.ssrc, NtpTime(sr.info.ntp).compact(), now));
                    self.take_blocks(&sr.reports, arrival, now, &mut out);
                }
                RtcpPacket::ReceiverReport(rr) => {
                    out.reporter = Some(rr.ssrc);
                    self.take_blocks(&rr.reports, arrival, now, &mut out);
                }
                RtcpPacket::SourceDescription(chunks) => {
                    if let Some(c) = chunks.iter().find_map(|c| c.cname_value()) {
                        out.cname = Some(c.to_vec());
                    }
                }
                RtcpPacket::Bye(_) => out.bye = true,
                RtcpPacket::Unknown { .. } => out.unknown += 1,
            }
        }
        self.scheduler.on_received(buf.len());
        self.reports_received += 1;
        Ok(out)
    }

    fn take_blocks(
        &mut self,
        blocks: &[ReceptionReport],
        arrival: u32,
        now: Instant,
        out: &mut RtcpReceived,
    ) {
        let Some(block) = blocks.iter().find(|b| b.ssrc == self.ssrc) else {
            return;
        };
        out.about_us = Some(*block);
        self.remote = Some(RemoteReport {
            block: *block,
            received_at: now,
        });
        if block.last_sr != 0 {
            let rtt = arrival
                .wrapping_sub(block.last_sr)
                .wrapping_sub(block.delay_since_last_sr);
            // A "negative" RTT means clocks or the peer's DLSR are off.
            if rtt < 0x8000_0000 {
                let rtt = compact_to_duration(rtt);
                self.rtt = Some(rtt);
                out.rtt = Some(rtt);
            }
        }
    }

    /// The latest round-trip time estimate.
    pub fn rtt(&self) -> Option<Duration> {
        self.rtt
    }

    /// The latest report the peer sent about our stream.
    pub fn remote_report(&self) -> Option<RemoteReport> {
        self.remote
    }

    /// Compound packets built for sending (reports and BYEs).
    pub fn reports_sent(&self) -> u64 {
        self.reports_sent
    }

    /// Compound packets received and parsed.
    pub fn reports_received(&self) -> u64 {
        self.reports_received
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stats_with_packets(ssrc: u32, n: u16) -> ReceiveStats {
        let mut s = ReceiveStats::with_min_sequential(1);
        for i in 0..n {
            s.on_packet(ssrc, i, u32::from(i) * 160, u32::from(i) * 160);
        }
        s
    }

    #[test]
    fn sender_report_then_rtt_from_reply() {
        let base = Instant::now();
        let wall = SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000);
        let mut a = RtcpSession::new(0xa, "a@x", IntervalConfig::default(), base, 1);
        let mut b = RtcpSession::new(0xb, "b@x", IntervalConfig::default(), base, 2);
        for _ in 0..50 {
            a.on_rtp_sent(160);
        }
        let mut b_stats = stats_with_packets(0xa, 50);
        let mut a_stats = ReceiveStats::new();

        // A's SR travels 30 ms; B holds it 100 ms; the RR travels 30 ms.
        let mut buf = Vec::new();
        a.build_report(base, wall, 8000, &mut a_stats, &mut buf);
        let got = b
            .on_rtcp(
                &buf,
                base + Duration::from_millis(30),
                wall + Duration::from_millis(30),
            )
            .unwrap();
        assert!(got.sender_report);
        assert_eq!(got.reporter, Some(0xa));
        assert_eq!(got.cname.as_deref(), Some(&b"a@x"[..]));

        buf.clear();
        b.build_report(
            base + Duration::from_millis(130),
            wall,
            0,
            &mut b_stats,
            &mut buf,
        );
        let parsed: Vec<_> = parse_compound(&buf).collect::<Result<_, _>>().unwrap();
        assert!(matches!(&parsed[0], RtcpPacket::ReceiverReport(rr) if rr.ssrc == 0xb));
        let got = a
            .on_rtcp(
                &buf,
                base + Duration::from_millis(160),
                wall + Duration::from_millis(160),
            )
            .unwrap();
        let block = got.about_us.unwrap();
        assert_eq!(block.extended_highest, 49);
        assert_eq!(
            block.delay_since_last_sr,
            duration_to_compact(Duration::from_millis(100))
        );
        let rtt = got.rtt.unwrap();
        assert!(
            rtt.abs_diff(Duration::from_millis(60)) < Duration::from_millis(1),
            "{rtt:?}"
        );
        assert_eq!(a.rtt(), Some(rtt));
        assert_eq!(a.remote_report().unwrap().block, block);
    }

    #[test]
    fn sr_only_while_sending() {
        let base = Instant::now();
        let wall = SystemTime::now();
        let mut s = RtcpSession::new(1, "c", IntervalConfig::default(), base, 3);
        let mut stats = ReceiveStats::new();
        let is_sr = |buf: &[u8]| {
            matches!(
                parse_compound(buf).next(),
                Some(Ok(RtcpPacket::SenderReport(_)))
            )
        };
        let mut buf = Vec::new();
        s.build_report(base, wall, 0, &mut stats, &mut buf);
        assert!(!is_sr(&buf));
        s.on_rtp_sent(10);
        buf.clear();
        s.build_report(base, wall, 0, &mut stats, &mut buf);
        assert!(is_sr(&buf));
        // Sent in the interval before the previous report: still an SR.
        buf.clear();
        s.build_report(base, wall, 0, &mut stats, &mut buf);
        assert!(is_sr(&buf));
        buf.clear();
        s.build_report(base, wall, 0, &mut stats, &mut buf);
        assert!(!is_sr(&buf));
    }

    #[test]
    fn poll_report_follows_schedule_and_bye_has_report_first() {
        let base = Instant::now();
        let wall = SystemTime::now();
        let mut s = RtcpSession::new(1, "c", IntervalConfig::default(), base, 4);
        let mut stats = ReceiveStats::new();
        let mut buf = Vec::new();
        assert_eq!(s.poll_report(base, wall, 0, &mut stats, &mut buf), None);
        let due = s.next_due();
        let mut now = base;
        let mut sent = None;
        for _ in 0..1000 {
            now += Duration::from_millis(20);
            if let Some(n) = s.poll_report(now, wall, 0, &mut stats, &mut buf) {
                sent = Some((now, n));
                break;
            }
        }
        let (at, n) = sent.unwrap();
        assert!(at >= due);
        assert_eq!(n, buf.len());
        assert!(s.next_due() > at);
        buf.clear();
        s.build_bye(now, wall, 0, &mut stats, &mut buf);
        let p: Vec<_> = parse_compound(&buf).collect::<Result<_, _>>().unwrap();
        assert!(matches!(p[0], RtcpPacket::ReceiverReport(_)));
        assert!(matches!(p.last(), Some(RtcpPacket::Bye(b)) if b.sources == vec![1]));
    }
}
