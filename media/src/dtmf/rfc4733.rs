//! RFC 4733 telephone-event payloads: the 4-byte event format (§2.3), a
//! sender that paces start, update, end and segment packets (§2.5.1), and a
//! receiver that turns a stream of such packets into one start and one end
//! report per event (§2.5.2).
//!
//! Time comes in as RTP timestamp units: the sender is told the media clock
//! position of each packet it may send, the receiver the arrival time of each
//! packet in units of the same clock.

use super::Digit;
use crate::rtp::RtpPacket;

/// Bytes of one event report.
pub const PAYLOAD_LEN: usize = 4;
/// The volume field has 6 bits (0 to −63 dBm0).
pub const MAX_VOLUME: u8 = 63;
/// Longest duration one packet (segment) can report.
pub const MAX_SEGMENT: u32 = 0xFFFF;

/// Errors of this module.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum EventError {
    /// A telephone-event payload is at least 4 bytes.
    #[error("telephone-event payload of {0} bytes, need 4")]
    TooShort(usize),
    /// DTMF events are not states, so RFC 4733 §2.3.5 forbids zero durations.
    #[error("event duration must be greater than zero")]
    ZeroDuration,
    /// The volume field has 6 bits.
    #[error("volume {0} exceeds 63")]
    VolumeOutOfRange(u8),
    /// A packet or update interval of zero would never advance.
    #[error("packet and update intervals must be greater than zero")]
    ZeroInterval,
    /// At least one final packet must be sent.
    #[error("end packet repeat count must be at least 1")]
    ZeroRepeats,
    /// The sender is still sending the previous event.
    #[error("an event is already being sent")]
    Busy,
}

/// One telephone-event report (RFC 4733 §2.3, Figure 1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TelephoneEvent {
    /// Event code; 0–15 are the DTMF digits.
    pub event: u8,
    /// The E bit: this packet reports the end of the event.
    pub end: bool,
    /// Power level as a positive number of −dBm0, 0–63.
    pub volume: u8,
    /// Duration so far in timestamp units, from the packet's RTP timestamp.
    pub duration: u16,
}

impl TelephoneEvent {
    /// Reads the first event report of a payload. The R bit is ignored as
    /// §2.3.3 requires. Further 4-byte blocks (§2.5.1.5 packing) are not
    /// interpreted.
    pub fn decode(payload: &[u8]) -> Result<Self, EventError> {
        let &[event, flags, d0, d1, ..] = payload else {
            return Err(EventError::TooShort(payload.len()));
        };
        Ok(Self {
            event,
            end: flags & 0x80 != 0,
            volume: flags & 0x3f,
            duration: u16::from_be_bytes([d0, d1]),
        })
    }

    /// The 4 payload bytes. The R bit is sent as zero; a volume above 63
    /// (which [`decode`](Self::decode) never produces) is clamped to 63.
    pub fn encode(&self) -> [u8; PAYLOAD_LEN] {
        let d = self.duration.to_be_bytes();
        [
            self.event,
            u8::from(self.end) << 7 | self.volume.min(MAX_VOLUME),
            d[0],
            d[1],
        ]
    }

    /// The DTMF digit, if the event is one (codes 0–15, RFC 4733 §3.2).
    pub fn digit(&self) -> Option<Digit> {
        Digit::from_event_code(self.event)
    }
}

/// How a [`EventSender`] paces its packets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SenderConfig {
    /// Timestamp units between calls to [`EventSender::next_packet`]: the
    /// audio packet interval (160 for 20 ms at 8 kHz).
    pub packet_interval: u32,
    /// Minimum timestamp units between updates and between repeats of a
    /// final packet (§2.5.1.2 suggests 50 ms).
    pub update_interval: u32,
    /// Volume field of every packet, 0–63 (−dBm0).
    pub volume: u8,
    /// Times each final packet is sent (§2.5.1.4: three).
    pub end_repeats: u8,
}

impl Default for SenderConfig {
    /// 8 kHz clock, 20 ms packets, 50 ms updates, −10 dBm0, three ends.
    fn default() -> Self {
        Self::for_clock(8000, 20)
    }
}

impl SenderConfig {
    /// A configuration for a `clock_rate` Hz telephone-event clock and
    /// `ptime_ms` packets, with 50 ms updates, −10 dBm0 and three ends.
    pub fn for_clock(clock_rate: u32, ptime_ms: u32) -> Self {
        Self {
            packet_interval: clock_rate / 1000 * ptime_ms,
            update_interval: clock_rate / 1000 * 50,
            volume: 10,
            end_repeats: 3,
        }
    }

    fn validate(&self) -> Result<(), EventError> {
        if self.packet_interval == 0 || self.update_interval == 0 {
            return Err(EventError::ZeroInterval);
        }
        if self.volume > MAX_VOLUME {
            return Err(EventError::VolumeOutOfRange(self.volume));
        }
        if self.end_repeats == 0 {
            return Err(EventError::ZeroRepeats);
        }
        Ok(())
    }
}

/// One packet the sender wants sent, in place of an audio packet, with the
/// telephone-event payload type and the next sequence number.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EventPacket {
    /// RTP payload bytes.
    pub payload: [u8; PAYLOAD_LEN],
    /// RTP timestamp: the start of the event, or of the segment.
    pub timestamp: u32,
    /// RTP marker bit: set only on the first packet of an event.
    pub marker: bool,
    /// The payload, decoded.
    pub event: TelephoneEvent,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    /// Sending start/updates of the current segment; `reported` is the last
    /// duration sent (None before the segment's first packet).
    Running { reported: Option<u32> },
    /// Repeating the final packet of a segment or of the event.
    Final { sent: u8, last_pos: u64 },
}

#[derive(Debug, Clone, Copy)]
struct Sending {
    event: u8,
    start: u32,
    total: u32,
    /// Offset of the current segment from `start`.
    segment_offset: u32,
    marker_sent: bool,
    phase: Phase,
}

/// Generates the packets of one event at a time (RFC 4733 §2.5.1).
///
/// Call [`next_packet`](Self::next_packet) once per packet interval with the
/// RTP timestamp the audio packet of that interval would carry; send what it
/// returns instead of audio. The first packet has the marker bit and the
/// packet interval as duration; updates follow at least `update_interval`
/// apart with the same timestamp and growing duration; the final packet (E
/// bit, exact total duration) is sent `end_repeats` times `update_interval`
/// apart. Events longer than 0xFFFF units are sent as segments of 0xFFFF
/// units, each with its own timestamp, its final packet repeated like the
/// event's but without the E bit, and no marker.
#[derive(Debug, Clone)]
pub struct EventSender {
    config: SenderConfig,
    sending: Option<Sending>,
}

impl EventSender {
    /// A sender with the given pacing.
    pub fn new(config: SenderConfig) -> Result<Self, EventError> {
        config.validate()?;
        Ok(Self {
            config,
            sending: None,
        })
    }

    /// The pacing in use.
    pub fn config(&self) -> &SenderConfig {
        &self.config
    }

    /// Starts sending `event` at RTP timestamp `start` for `duration` units.
    pub fn start(&mut self, event: u8, start: u32, duration: u32) -> Result<(), EventError> {
        if self.sending.is_some() {
            return Err(EventError::Busy);
        }
        if duration == 0 {
            return Err(EventError::ZeroDuration);
        }
        self.sending = Some(Sending {
            event,
            start,
            total: duration,
            segment_offset: 0,
            marker_sent: false,
            phase: Phase::Running { reported: None },
        });
        Ok(())
    }

    /// [`start`](Self::start) for a DTMF digit (its RFC 4733 §3.2 code).
    pub fn start_digit(
        &mut self,
        digit: Digit,
        start: u32,
        duration: u32,
    ) -> Result<(), EventError> {
        self.start(digit.event_code(), start, duration)
    }

    /// True when no event is being sent, so audio may resume.
    pub fn is_idle(&self) -> bool {
        self.sending.is_none()
    }

    /// Abandons the current event without sending its end.
    pub fn cancel(&mut self) {
        self.sending = None;
    }

    /// The packet to send for the packet interval starting at RTP timestamp
    /// `now`, if one is due. `None` before the event's start, between
    /// updates, and once idle.
    pub fn next_packet(&mut self, now: u32) -> Option<EventPacket> {
        let cfg = self.config;
        let s = self.sending.as_mut()?;
        let elapsed = now.wrapping_sub(s.start);
        if elapsed > i32::MAX as u32 {
            return None;
        }
        // Media covered once this interval's packet is due.
        let pos = u64::from(elapsed) + u64::from(cfg.packet_interval);
        let offset = u64::from(s.segment_offset);
        let remaining = u64::from(s.total) - offset;
        let last_segment = remaining <= u64::from(MAX_SEGMENT);
        let segment_len = remaining.min(u64::from(MAX_SEGMENT));
        let duration = match s.phase {
            Phase::Running { reported } => {
                let seg_pos = pos.saturating_sub(offset);
                if seg_pos >= segment_len {
                    s.phase = Phase::Final {
                        sent: 1,
                        last_pos: pos,
                    };
                    segment_len
                } else if seg_pos == 0 {
                    return None;
                } else {
                    let due = reported
                        .is_none_or(|r| seg_pos >= u64::from(r) + u64::from(cfg.update_interval));
                    if !due {
                        return None;
                    }
                    s.phase = Phase::Running {
                        reported: Some(seg_pos as u32),
                    };
                    seg_pos
                }
            }
            Phase::Final { sent, last_pos } => {
                if pos < last_pos + u64::from(cfg.update_interval) {
                    return None;
                }
                s.phase = Phase::Final {
                    sent: sent + 1,
                    last_pos: pos,
                };
                segment_len
            }
        };
        let end = last_segment && matches!(s.phase, Phase::Final { .. });
        let marker = !s.marker_sent;
        s.marker_sent = true;
        let event = TelephoneEvent {
            event: s.event,
            end,
            volume: cfg.volume,
            // Bounded by MAX_SEGMENT above.
            duration: duration as u16,
        };
        let packet = EventPacket {
            payload: event.encode(),
            timestamp: s.start.wrapping_add(s.segment_offset),
            marker,
            event,
        };
        if let Phase::Final { sent, .. } = s.phase
            && sent >= cfg.end_repeats
        {
            if last_segment {
                self.sending = None;
            } else {
                s.segment_offset += MAX_SEGMENT;
                s.phase = Phase::Running { reported: None };
            }
        }
        Some(packet)
    }
}

/// Why the receiver considers an event over.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EndReason {
    /// A packet with the E bit arrived.
    EndBit,
    /// A different event started before the end packet arrived.
    Superseded,
    /// No packet for the event within the receiver's timeout.
    Timeout,
}

/// What the receiver learned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EventReport {
    /// The first packet of an event was seen.
    Start {
        /// Sending source.
        ssrc: u32,
        /// RTP timestamp of the event start.
        timestamp: u32,
        /// Event code.
        event: u8,
    },
    /// The event ended.
    End {
        /// Sending source.
        ssrc: u32,
        /// RTP timestamp of the event start (first segment).
        timestamp: u32,
        /// Event code.
        event: u8,
        /// Total duration in timestamp units, across segments: the last
        /// reported value, so shorter than the truth if the end was lost.
        duration: u32,
        /// How the end was determined.
        reason: EndReason,
    },
}

impl EventReport {
    /// The event code.
    pub fn event(&self) -> u8 {
        match *self {
            Self::Start { event, .. } | Self::End { event, .. } => event,
        }
    }

    /// The DTMF digit, if the event is one.
    pub fn digit(&self) -> Option<Digit> {
        Digit::from_event_code(self.event())
    }
}

/// Up to three reports produced by one packet (the end of a previous event
/// whose end was lost, then the start and, for a lone end packet, the end of
/// a new one). Iterates without allocating.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Reports {
    items: [Option<EventReport>; 3],
    len: usize,
    next: usize,
}

impl Reports {
    fn push(&mut self, r: EventReport) {
        self.items[self.len] = Some(r);
        self.len += 1;
    }
}

impl Iterator for Reports {
    type Item = EventReport;

    fn next(&mut self) -> Option<EventReport> {
        let item = self.items.get_mut(self.next)?.take()?;
        self.next += 1;
        Some(item)
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        let n = self.len - self.next;
        (n, Some(n))
    }
}

impl ExactSizeIterator for Reports {}

#[derive(Debug, Clone, Copy)]
struct Receiving {
    ssrc: u32,
    start: u32,
    segment_ts: u32,
    /// Offset of the current segment from `start`.
    segment_base: u32,
    event: u8,
    duration: u16,
    ended: bool,
    last_arrival: u32,
}

impl Receiving {
    fn total(&self) -> u32 {
        self.segment_base.saturating_add(u32::from(self.duration))
    }

    fn end(&mut self, reason: EndReason) -> EventReport {
        self.ended = true;
        EventReport::End {
            ssrc: self.ssrc,
            timestamp: self.start,
            event: self.event,
            duration: self.total(),
            reason,
        }
    }
}

const RECENT: usize = 8;

/// Turns received telephone-event packets into one start and one end report
/// per event (RFC 4733 §2.5.2).
///
/// Packets are keyed by (SSRC, RTP timestamp): repeated updates and the
/// retransmitted end packets of an event report nothing new. Zero-duration
/// reports are ignored, since DTMF events are not states (§2.3.5).
#[derive(Debug, Clone)]
pub struct EventReceiver {
    timeout: u32,
    current: Option<Receiving>,
    recent: [Option<(u32, u32)>; RECENT],
    recent_next: usize,
}

impl EventReceiver {
    /// A receiver that ends an event when no packet for it arrived for
    /// `timeout` timestamp units (a lost end packet). It should exceed the
    /// sender's update interval several times over; 8000 (1 s at 8 kHz)
    /// suits the usual 50 ms updates.
    pub fn new(timeout: u32) -> Self {
        Self {
            timeout: timeout.clamp(1, i32::MAX as u32),
            current: None,
            recent: [None; RECENT],
            recent_next: 0,
        }
    }

    fn remember(&mut self, ssrc: u32, ts: u32) {
        self.recent[self.recent_next] = Some((ssrc, ts));
        self.recent_next = (self.recent_next + 1) % RECENT;
    }

    fn is_recent(&self, ssrc: u32, ts: u32) -> bool {
        self.recent.contains(&Some((ssrc, ts)))
    }

    /// Feeds a parsed RTP packet already known to carry telephone-event.
    pub fn on_rtp(&mut self, packet: &RtpPacket<'_>, arrival: u32) -> Result<Reports, EventError> {
        self.on_packet(
            packet.ssrc(),
            packet.timestamp(),
            packet.marker(),
            packet.payload(),
            arrival,
        )
    }

    /// Feeds one telephone-event packet: its SSRC, RTP timestamp, marker bit
    /// and payload, and its arrival time in units of the event clock.
    pub fn on_packet(
        &mut self,
        ssrc: u32,
        timestamp: u32,
        marker: bool,
        payload: &[u8],
        arrival: u32,
    ) -> Result<Reports, EventError> {
        let ev = TelephoneEvent::decode(payload)?;
        let mut out = Reports::default();
        if ev.duration == 0 || self.is_recent(ssrc, timestamp) {
            return Ok(out);
        }
        let timeout = self.timeout;
        if let Some(cur) = self.current.as_mut().filter(|c| c.ssrc == ssrc) {
            let delta = timestamp.wrapping_sub(cur.segment_ts);
            let active = arrival.wrapping_sub(cur.last_arrival) < timeout;
            if delta == 0 {
                if ev.event == cur.event && !cur.ended {
                    cur.last_arrival = arrival;
                    cur.duration = cur.duration.max(ev.duration);
                    if ev.end {
                        out.push(cur.end(EndReason::EndBit));
                        let key = (cur.ssrc, cur.segment_ts);
                        self.remember(key.0, key.1);
                    }
                }
                return Ok(out);
            }
            if delta > i32::MAX as u32 && active {
                // An older event than the current one, arriving late.
                return Ok(out);
            }
            let continues = !cur.ended
                && !marker
                && ev.event == cur.event
                && delta <= MAX_SEGMENT
                && delta >= u32::from(cur.duration)
                && MAX_SEGMENT - u32::from(cur.duration) <= timeout;
            if continues {
                let old = cur.segment_ts;
                cur.segment_base = cur.segment_base.saturating_add(delta);
                cur.segment_ts = timestamp;
                cur.duration = ev.duration;
                cur.last_arrival = arrival;
                let ended = ev.end.then(|| cur.end(EndReason::EndBit));
                self.remember(ssrc, old);
                if let Some(r) = ended {
                    out.push(r);
                    self.remember(ssrc, timestamp);
                }
                return Ok(out);
            }
        }
        if let Some(cur) = self.current.as_mut()
            && !cur.ended
        {
            out.push(cur.end(EndReason::Superseded));
            let key = (cur.ssrc, cur.segment_ts);
            self.remember(key.0, key.1);
        }
        let mut cur = Receiving {
            ssrc,
            start: timestamp,
            segment_ts: timestamp,
            segment_base: 0,
            event: ev.event,
            duration: ev.duration,
            ended: false,
            last_arrival: arrival,
        };
        out.push(EventReport::Start {
            ssrc,
            timestamp,
            event: ev.event,
        });
        if ev.end {
            out.push(cur.end(EndReason::EndBit));
            self.remember(ssrc, timestamp);
        }
        self.current = Some(cur);
        Ok(out)
    }

    /// Ends the current event if nothing arrived for it within the timeout
    /// before `now` (arrival clock units).
    pub fn poll(&mut self, now: u32) -> Option<EventReport> {
        let cur = self.current.as_mut().filter(|c| !c.ended)?;
        let silent = now.wrapping_sub(cur.last_arrival);
        if silent > i32::MAX as u32 || silent < self.timeout {
            return None;
        }
        let report = cur.end(EndReason::Timeout);
        let key = (cur.ssrc, cur.segment_ts);
        self.remember(key.0, key.1);
        Some(report)
    }

    /// True while an event has started and not ended.
    pub fn in_event(&self) -> bool {
        self.current.is_some_and(|c| !c.ended)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sender(packet_interval: u32, update_interval: u32) -> EventSender {
        EventSender::new(SenderConfig {
            packet_interval,
            update_interval,
            volume: 10,
            end_repeats: 3,
        })
        .unwrap()
    }

    /// (tick index, timestamp, marker, end, duration) of every packet sent
    /// when called once per `interval` from `start`.
    fn run(s: &mut EventSender, start: u32, interval: u32) -> Vec<(u32, u32, bool, bool, u16)> {
        let mut out = Vec::new();
        for k in 0..10_000u32 {
            if s.is_idle() {
                break;
            }
            if let Some(p) = s.next_packet(start.wrapping_add(k * interval)) {
                assert_eq!(TelephoneEvent::decode(&p.payload).unwrap(), p.event);
                out.push((k, p.timestamp, p.marker, p.event.end, p.event.duration));
            }
        }
        out
    }

    #[test]
    fn digit_mapping_covers_all_sixteen() {
        let digits = "0123456789*#ABCD";
        for (i, c) in digits.chars().enumerate() {
            let d = Digit::from_char(c).unwrap();
            assert_eq!(d.event_code(), i as u8);
            let e = TelephoneEvent {
                event: i as u8,
                end: false,
                volume: 0,
                duration: 1,
            };
            assert_eq!(e.digit(), Some(d));
            assert_eq!(e.digit().map(Digit::to_char), Some(c));
        }
        for event in [16, 255] {
            let e = TelephoneEvent {
                event,
                end: false,
                volume: 0,
                duration: 1,
            };
            assert_eq!(e.digit(), None);
        }
    }

    #[test]
    fn decode_and_encode_known_bytes() {
        let e = TelephoneEvent::decode(&[0x05, 0x8a, 0x03, 0x20]).unwrap();
        assert_eq!(
            e,
            TelephoneEvent {
                event: 5,
                end: true,
                volume: 10,
                duration: 800
            }
        );
        assert_eq!(e.digit(), Some(Digit::D5));
        assert_eq!(e.encode(), [0x05, 0x8a, 0x03, 0x20]);
        // R bit ignored on receipt, cleared on send.
        let r = TelephoneEvent::decode(&[11, 0x7f, 0xff, 0xff, 0xaa]).unwrap();
        assert_eq!(
            r,
            TelephoneEvent {
                event: 11,
                end: false,
                volume: 63,
                duration: 0xffff
            }
        );
        assert_eq!(r.encode(), [11, 0x3f, 0xff, 0xff]);
        for len in 0..4 {
            assert_eq!(
                TelephoneEvent::decode(&[0; 4][..len]),
                Err(EventError::TooShort(len))
            );
        }
    }

    #[test]
    fn encode_clamps_volume() {
        let e = TelephoneEvent {
            event: 1,
            end: false,
            volume: 200,
            duration: 1,
        };
        assert_eq!(e.encode()[1], 63);
    }

    #[test]
    fn config_and_start_validation() {
        let ok = SenderConfig::default();
        assert_eq!(ok.packet_interval, 160);
        assert_eq!(ok.update_interval, 400);
        assert_eq!(SenderConfig::for_clock(48000, 20).packet_interval, 960);
        let bad = [
            (
                SenderConfig {
                    packet_interval: 0,
                    ..ok
                },
                EventError::ZeroInterval,
            ),
            (
                SenderConfig {
                    update_interval: 0,
                    ..ok
                },
                EventError::ZeroInterval,
            ),
            (
                SenderConfig { volume: 64, ..ok },
                EventError::VolumeOutOfRange(64),
            ),
            (
                SenderConfig {
                    end_repeats: 0,
                    ..ok
                },
                EventError::ZeroRepeats,
            ),
        ];
        for (cfg, err) in bad {
            assert_eq!(EventSender::new(cfg).unwrap_err(), err);
        }
        let mut s = EventSender::new(ok).unwrap();
        assert_eq!(s.config(), &ok);
        assert_eq!(s.start(1, 0, 0), Err(EventError::ZeroDuration));
        s.start_digit(Digit::D7, 0, 800).unwrap();
        assert_eq!(s.start(1, 0, 800), Err(EventError::Busy));
        s.cancel();
        assert!(s.is_idle());
        assert_eq!(s.next_packet(0), None);
        s.start(1, 0, 800).unwrap();
    }

    #[test]
    fn hundred_ms_digit_with_50ms_updates_packet_by_packet() {
        let mut s = sender(160, 400);
        s.start_digit(Digit::D1, 1000, 800).unwrap();
        assert_eq!(
            run(&mut s, 1000, 160),
            vec![
                (0, 1000, true, false, 160),
                (3, 1000, false, false, 640),
                (4, 1000, false, true, 800),
                (7, 1000, false, true, 800),
                (10, 1000, false, true, 800),
            ]
        );
        assert!(s.is_idle());
    }

    #[test]
    fn updates_every_packet_when_intervals_match() {
        let mut s = sender(160, 160);
        s.start(11, 0, 800).unwrap();
        let durations: Vec<_> = run(&mut s, 0, 160)
            .into_iter()
            .map(|(k, _, m, e, d)| (k, m, e, d))
            .collect();
        assert_eq!(
            durations,
            vec![
                (0, true, false, 160),
                (1, false, false, 320),
                (2, false, false, 480),
                (3, false, false, 640),
                (4, false, true, 800),
                (5, false, true, 800),
                (6, false, true, 800),
            ]
        );
    }

    #[test]
    fn event_shorter_than_a_packet_is_marker_and_end_at_once() {
        let mut s = sender(160, 160);
        s.start(2, 0, 100).unwrap();
        assert_eq!(
            run(&mut s, 0, 160),
            vec![
                (0, 0, true, true, 100),
                (1, 0, false, true, 100),
                (2, 0, false, true, 100),
            ]
        );
    }

    #[test]
    fn nothing_before_start_and_timestamps_wrap() {
        let mut s = sender(160, 160);
        let start = u32::MAX - 100;
        s.start(3, start, 320).unwrap();
        assert_eq!(s.next_packet(start.wrapping_sub(160)), None);
        let p = s.next_packet(start).unwrap();
        assert_eq!(
            (p.timestamp, p.marker, p.event.duration),
            (start, true, 160)
        );
        let p = s.next_packet(start.wrapping_add(160)).unwrap();
        assert_eq!(
            (p.timestamp, p.event.end, p.event.duration),
            (start, true, 320)
        );
    }

    #[test]
    fn same_call_twice_sends_once() {
        let mut s = sender(160, 400);
        s.start(3, 0, 8000).unwrap();
        assert!(s.next_packet(0).is_some());
        assert!(s.next_packet(0).is_none());
    }

    #[test]
    fn long_event_is_segmented() {
        // 10 s at 8 kHz with updates every packet.
        let mut s = sender(160, 160);
        s.start(5, 0, 80_000).unwrap();
        let pkts = run(&mut s, 0, 160);
        let first: Vec<_> = pkts.iter().filter(|p| p.1 == 0).collect();
        let second: Vec<_> = pkts.iter().filter(|p| p.1 == 65_535).collect();
        assert_eq!(first.len() + second.len(), pkts.len());
        // Segment 1: 409 updates 160..=65440, then the segment end three
        // times, without E.
        assert_eq!(first.len(), 409 + 3);
        assert_eq!(*first[0], (0, 0, true, false, 160));
        assert_eq!(*first[408], (408, 0, false, false, 65_440));
        for (i, p) in first[409..].iter().enumerate() {
            assert_eq!(**p, (409 + i as u32, 0, false, false, 0xffff));
        }
        // Segment 2 starts on the next tick: pos 413*160 = 66080 covers 545
        // units of it. No marker; ends with three E packets of 14465.
        assert_eq!(*second[0], (412, 65_535, false, false, 545));
        let n = second.len();
        for p in &second[..n - 3] {
            assert!(!p.2 && !p.3);
        }
        for (i, p) in second[n - 3..].iter().enumerate() {
            assert_eq!(**p, (499 + i as u32, 65_535, false, true, 14_465));
        }
    }

    /// Runs `s` for `ticks` packet intervals from `start`, delivering each
    /// packet `copies` times to `r` at once (SSRC `ssrc`) and polling it
    /// every tick; returns all reports.
    fn transfer(
        s: &mut EventSender,
        r: &mut EventReceiver,
        ssrc: u32,
        start: u32,
        ticks: u32,
        copies: usize,
    ) -> Vec<EventReport> {
        let mut reports = Vec::new();
        for k in 0..ticks {
            let now = start + k * s.config().packet_interval;
            if let Some(p) = s.next_packet(now) {
                for _ in 0..copies {
                    reports.extend(
                        r.on_packet(ssrc, p.timestamp, p.marker, &p.payload, now)
                            .unwrap(),
                    );
                }
            }
            reports.extend(r.poll(now));
        }
        reports
    }

    #[test]
    fn every_digit_goes_through_sender_and_receiver() {
        for d in Digit::ALL {
            let mut s = sender(160, 400);
            let mut r = EventReceiver::new(8000);
            s.start_digit(d, 0, 800).unwrap();
            let reports = transfer(&mut s, &mut r, 1, 0, 20, 1);
            assert_eq!(reports.len(), 2, "{d}");
            for rep in &reports {
                assert_eq!(rep.event(), d.event_code(), "{d}");
                assert_eq!(rep.digit(), Some(d));
            }
        }
    }

    #[test]
    fn receiver_reports_one_digit_per_event() {
        let mut s = sender(160, 400);
        let mut r = EventReceiver::new(8000);
        s.start_digit(Digit::Hash, 500, 800).unwrap();
        // Every packet delivered twice, as a duplicating network would.
        let reports = transfer(&mut s, &mut r, 9, 500, 20, 2);
        assert_eq!(
            reports,
            vec![
                EventReport::Start {
                    ssrc: 9,
                    timestamp: 500,
                    event: 11
                },
                EventReport::End {
                    ssrc: 9,
                    timestamp: 500,
                    event: 11,
                    duration: 800,
                    reason: EndReason::EndBit
                }
            ]
        );
        assert_eq!(reports[0].digit(), Some(Digit::Hash));
        assert!(!r.in_event());
    }

    fn ev(event: u8, end: bool, duration: u16) -> [u8; 4] {
        TelephoneEvent {
            event,
            end,
            volume: 10,
            duration,
        }
        .encode()
    }

    fn feed(r: &mut EventReceiver, ts: u32, marker: bool, p: [u8; 4], at: u32) -> Vec<EventReport> {
        r.on_packet(1, ts, marker, &p, at).unwrap().collect()
    }

    #[test]
    fn lost_end_is_reported_when_next_event_starts() {
        let mut r = EventReceiver::new(8000);
        assert_eq!(feed(&mut r, 0, true, ev(1, false, 160), 160).len(), 1);
        assert!(feed(&mut r, 0, false, ev(1, false, 640), 640).is_empty());
        assert!(r.in_event());
        let out = feed(&mut r, 2000, true, ev(2, false, 160), 2160);
        assert_eq!(
            out,
            vec![
                EventReport::End {
                    ssrc: 1,
                    timestamp: 0,
                    event: 1,
                    duration: 640,
                    reason: EndReason::Superseded
                },
                EventReport::Start {
                    ssrc: 1,
                    timestamp: 2000,
                    event: 2
                }
            ]
        );
        // The late end of event 1 no longer reports anything.
        assert!(feed(&mut r, 0, false, ev(1, true, 800), 2200).is_empty());
    }

    #[test]
    fn lost_end_is_reported_by_poll_after_timeout() {
        let mut r = EventReceiver::new(8000);
        feed(&mut r, 0, true, ev(4, false, 160), 160);
        feed(&mut r, 0, false, ev(4, false, 560), 560);
        assert_eq!(r.poll(8559), None);
        assert_eq!(r.poll(100), None); // before the last arrival
        assert_eq!(
            r.poll(8560),
            Some(EventReport::End {
                ssrc: 1,
                timestamp: 0,
                event: 4,
                duration: 560,
                reason: EndReason::Timeout
            })
        );
        assert_eq!(r.poll(9000), None);
        assert!(feed(&mut r, 0, false, ev(4, true, 960), 9100).is_empty());
        assert!(feed(&mut r, 0, false, ev(4, false, 1200), 9100).is_empty());
    }

    #[test]
    fn lone_end_packet_is_start_and_end() {
        let mut r = EventReceiver::new(8000);
        let out = feed(&mut r, 77, false, ev(0, true, 400), 1000);
        assert_eq!(out.len(), 2);
        assert!(matches!(out[0], EventReport::Start { event: 0, .. }));
        assert!(matches!(
            out[1],
            EventReport::End {
                duration: 400,
                reason: EndReason::EndBit,
                ..
            }
        ));
        assert!(feed(&mut r, 77, false, ev(0, true, 400), 1100).is_empty());
    }

    #[test]
    fn superseded_by_lone_end_gives_three_reports() {
        let mut r = EventReceiver::new(8000);
        feed(&mut r, 0, true, ev(1, false, 160), 160);
        let reports = r.on_packet(1, 5000, true, &ev(2, true, 800), 5800).unwrap();
        assert_eq!(reports.len(), 3);
        let kinds: Vec<_> = reports
            .map(|r| (r.event(), matches!(r, EventReport::Start { .. })))
            .collect();
        assert_eq!(kinds, vec![(1, false), (2, true), (2, false)]);
    }

    #[test]
    fn updates_keep_the_longest_duration() {
        let mut r = EventReceiver::new(8000);
        feed(&mut r, 0, true, ev(1, false, 640), 640);
        feed(&mut r, 0, false, ev(1, false, 160), 700); // reordered older update
        let out = feed(&mut r, 0, false, ev(1, true, 800), 800);
        assert!(matches!(out[0], EventReport::End { duration: 800, .. }));
    }

    #[test]
    fn ignores_zero_duration_and_mismatched_code() {
        let mut r = EventReceiver::new(8000);
        assert!(feed(&mut r, 0, true, ev(1, false, 0), 0).is_empty());
        feed(&mut r, 0, true, ev(1, false, 160), 160);
        assert!(feed(&mut r, 0, false, ev(2, true, 800), 800).is_empty());
        assert!(r.in_event());
    }

    #[test]
    fn rejects_short_payload() {
        let mut r = EventReceiver::new(8000);
        assert_eq!(
            r.on_packet(1, 0, true, &[1, 2], 0).unwrap_err(),
            EventError::TooShort(2)
        );
    }

    #[test]
    fn older_event_arriving_late_is_ignored() {
        let mut r = EventReceiver::new(8000);
        feed(&mut r, 4000, true, ev(2, false, 160), 4160);
        // Event at ts 1000 was never seen; its lone late packet is older
        // than the current event, within the timeout.
        assert!(feed(&mut r, 1000, false, ev(1, true, 800), 4200).is_empty());
        // Long after, a timestamp that is numerically earlier is a new
        // event (the sender's timestamps jumped).
        let out = feed(&mut r, 1000, true, ev(3, false, 160), 4160 + 8000);
        assert_eq!(out.len(), 2);
    }

    #[test]
    fn ssrc_change_is_a_new_event_even_with_equal_timestamp() {
        let mut r = EventReceiver::new(8000);
        feed(&mut r, 0, true, ev(1, true, 800), 800);
        let out: Vec<_> = r
            .on_packet(2, 0, true, &ev(1, true, 800), 900)
            .unwrap()
            .collect();
        assert_eq!(out.len(), 2);
    }

    #[test]
    fn segments_merge_into_one_event() {
        let mut s = sender(160, 400);
        let mut r = EventReceiver::new(8000);
        s.start(5, 0, 80_000).unwrap();
        let reports = transfer(&mut s, &mut r, 3, 0, 1000, 1);
        assert_eq!(
            reports,
            vec![
                EventReport::Start {
                    ssrc: 3,
                    timestamp: 0,
                    event: 5
                },
                EventReport::End {
                    ssrc: 3,
                    timestamp: 0,
                    event: 5,
                    duration: 80_000,
                    reason: EndReason::EndBit
                }
            ]
        );
    }

    #[test]
    fn marker_prevents_continuation() {
        let mut r = EventReceiver::new(8000);
        feed(&mut r, 0, true, ev(5, false, 0xffff), 0);
        let out = feed(&mut r, 0xffff, true, ev(5, false, 160), 100);
        assert_eq!(out.len(), 2); // superseded + new start
    }

    #[test]
    fn on_rtp_uses_header_fields() {
        let payload = ev(9, true, 320);
        let mut buf = Vec::new();
        crate::rtp::RtpPacketBuilder {
            marker: true,
            payload_type: 101,
            timestamp: 42,
            ssrc: 5,
            payload: &payload,
            ..Default::default()
        }
        .write_to(&mut buf)
        .unwrap();
        let pkt = RtpPacket::parse(&buf).unwrap();
        let mut r = EventReceiver::new(8000);
        let out: Vec<_> = r.on_rtp(&pkt, 0).unwrap().collect();
        assert_eq!(
            out[0],
            EventReport::Start {
                ssrc: 5,
                timestamp: 42,
                event: 9
            }
        );
    }
}
