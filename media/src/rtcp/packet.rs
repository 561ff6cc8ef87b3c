//! RTCP packet formats (RFC 3550 §6.4–§6.6) and compound packets (§6.1).

/// Sender report (RFC 3550 §6.4.1).
pub const PT_SR: u8 = 200;
/// Receiver report (RFC 3550 §6.4.2).
pub const PT_RR: u8 = 201;
/// Source description (RFC 3550 §6.5).
pub const PT_SDES: u8 = 202;
/// Goodbye (RFC 3550 §6.6).
pub const PT_BYE: u8 = 203;
/// Application-defined (RFC 3550 §6.7); parsed as [`RtcpPacket::Unknown`].
pub const PT_APP: u8 = 204;
/// The SDES CNAME item type (RFC 3550 §6.5.1).
pub const SDES_CNAME: u8 = 1;

const HEADER_LEN: usize = 4;
const SENDER_INFO_LEN: usize = 20;
const REPORT_BLOCK_LEN: usize = 24;
/// The report count, source count and chunk count fields have 5 bits.
const MAX_COUNT: usize = 31;

/// Why a buffer is not a valid RTCP compound packet, or a packet cannot be
/// serialized.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum RtcpError {
    /// Fewer bytes than a 4-byte RTCP header where one should start.
    #[error("RTCP packet truncated at offset {offset}: {len} bytes left, a header needs 4")]
    TruncatedHeader {
        /// Where the header should start.
        offset: usize,
        /// Bytes left.
        len: usize,
    },
    /// The version field is not 2.
    #[error("unsupported RTCP version {0}, expected 2")]
    BadVersion(u8),
    /// The length field points past the end of the buffer.
    #[error("RTCP packet at offset {offset} claims {claimed} bytes, {available} available")]
    LengthOverflow {
        /// Where the packet starts.
        offset: usize,
        /// Bytes the length field claims.
        claimed: usize,
        /// Bytes left in the buffer.
        available: usize,
    },
    /// The padding count is zero or exceeds the packet body.
    #[error("bad RTCP padding count {0}")]
    BadPadding(u8),
    /// A packet body is shorter than its counts require.
    #[error("RTCP packet type {packet_type} body too short for its contents")]
    BodyTooShort {
        /// The packet type.
        packet_type: u8,
    },
    /// An empty buffer.
    #[error("empty RTCP packet")]
    Empty,
    /// More than 31 report blocks, sources or chunks in one packet.
    #[error("{0} entries given, a count field holds at most 31")]
    TooManyEntries(usize),
    /// An SDES item or BYE reason longer than 255 bytes.
    #[error("text of {0} bytes exceeds the 255-byte limit")]
    TextTooLong(usize),
    /// [`RtcpPacket::Unknown`] cannot be serialized.
    #[error("cannot serialize an unknown RTCP packet")]
    Unserializable,
}

/// One reception report block (RFC 3550 §6.4.1), as carried in SR and RR.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ReceptionReport {
    /// The source this block reports on.
    pub ssrc: u32,
    /// Fraction lost since the previous report, 8-bit fixed point.
    pub fraction_lost: u8,
    /// Cumulative packets lost, a 24-bit signed value.
    pub cumulative_lost: i32,
    /// Extended highest sequence number received.
    pub extended_highest: u32,
    /// Interarrival jitter in timestamp units.
    pub jitter: u32,
    /// Middle 32 bits of the NTP timestamp of the last SR from the source,
    /// 0 if none.
    pub last_sr: u32,
    /// Delay since that SR in 1/65536 s, 0 if none.
    pub delay_since_last_sr: u32,
}

/// The sender information of an SR (RFC 3550 §6.4.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct SenderInfo {
    /// Wall-clock time the report was sent, 64-bit NTP.
    pub ntp: u64,
    /// The same instant in the sender's RTP timestamp units.
    pub rtp_timestamp: u32,
    /// RTP data packets sent since the start.
    pub packet_count: u32,
    /// RTP payload octets sent since the start.
    pub octet_count: u32,
}

/// A sender report.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct SenderReport {
    /// The sender's SSRC.
    pub ssrc: u32,
    /// Its send counters and timestamps.
    pub info: SenderInfo,
    /// Reception reports, at most 31.
    pub reports: Vec<ReceptionReport>,
}

/// A receiver report.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ReceiverReport {
    /// The reporter's SSRC.
    pub ssrc: u32,
    /// Reception reports, at most 31.
    pub reports: Vec<ReceptionReport>,
}

/// One SDES item (RFC 3550 §6.5).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SdesItem {
    /// Item type (1 = CNAME).
    pub kind: u8,
    /// Item text, at most 255 bytes; UTF-8 by the RFC but kept as bytes.
    pub value: Vec<u8>,
}

/// The SDES items of one source.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SdesChunk {
    /// The source described.
    pub ssrc: u32,
    /// Its items, without the terminating null item.
    pub items: Vec<SdesItem>,
}

impl SdesChunk {
    /// A chunk holding only a CNAME.
    pub fn cname(ssrc: u32, cname: &str) -> Self {
        SdesChunk {
            ssrc,
            items: vec![SdesItem {
                kind: SDES_CNAME,
                value: cname.as_bytes().to_vec(),
            }],
        }
    }

    /// The CNAME item's text, if present.
    pub fn cname_value(&self) -> Option<&[u8]> {
        self.items
            .iter()
            .find(|i| i.kind == SDES_CNAME)
            .map(|i| i.value.as_slice())
    }
}

/// A BYE packet (RFC 3550 §6.6).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Bye {
    /// Sources leaving, at most 31.
    pub sources: Vec<u32>,
    /// Optional reason text, at most 255 bytes.
    pub reason: Option<Vec<u8>>,
}

/// One packet of a compound RTCP packet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RtcpPacket {
    /// SR.
    SenderReport(SenderReport),
    /// RR.
    ReceiverReport(ReceiverReport),
    /// SDES.
    SourceDescription(Vec<SdesChunk>),
    /// BYE.
    Bye(Bye),
    /// Any other type (APP, XR, RTPFB, PSFB…): framed and skipped.
    Unknown {
        /// The packet type byte.
        packet_type: u8,
        /// The 5-bit count/subtype field.
        count: u8,
    },
}

fn be32(b: &[u8], at: usize) -> u32 {
    u32::from_be_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
}

/// Iterates over the packets of a compound RTCP packet. Yields an error at
/// most once and then stops: after a framing error the rest is unreadable.
#[derive(Debug, Clone)]
pub struct CompoundIter<'a> {
    buf: &'a [u8],
    offset: usize,
    failed: bool,
}

impl Iterator for CompoundIter<'_> {
    type Item = Result<RtcpPacket, RtcpError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.failed || self.offset >= self.buf.len() {
            return None;
        }
        let r = self.next_packet();
        if r.is_err() {
            self.failed = true;
        }
        Some(r)
    }
}

impl CompoundIter<'_> {
    fn next_packet(&mut self) -> Result<RtcpPacket, RtcpError> {
        let offset = self.offset;
        let rest = &self.buf[offset..];
        if rest.len() < HEADER_LEN {
            return Err(RtcpError::TruncatedHeader {
                offset,
                len: rest.len(),
            });
        }
        let version = rest[0] >> 6;
        if version != 2 {
            return Err(RtcpError::BadVersion(version));
        }
        let padding = rest[0] & 0x20 != 0;
        let count = rest[0] & 0x1f;
        let packet_type = rest[1];
        let claimed = (usize::from(u16::from_be_bytes([rest[2], rest[3]])) + 1) * 4;
        if claimed > rest.len() {
            return Err(RtcpError::LengthOverflow {
                offset,
                claimed,
                available: rest.len(),
            });
        }
        self.offset += claimed;
        let mut body = &rest[HEADER_LEN..claimed];
        if padding {
            let pad = body.last().copied().unwrap_or(0);
            if pad == 0 || usize::from(pad) > body.len() {
                return Err(RtcpError::BadPadding(pad));
            }
            body = &body[..body.len() - usize::from(pad)];
        }
        parse_body(packet_type, count, body)
    }
}

fn parse_body(packet_type: u8, count: u8, body: &[u8]) -> Result<RtcpPacket, RtcpError> {
    let short = RtcpError::BodyTooShort { packet_type };
    let count = usize::from(count);
    Ok(match packet_type {
        PT_SR => {
            if body.len() < 4 + SENDER_INFO_LEN + count * REPORT_BLOCK_LEN {
                return Err(short);
            }
            let info = SenderInfo {
                ntp: (u64::from(be32(body, 4)) << 32) | u64::from(be32(body, 8)),
                rtp_timestamp: be32(body, 12),
                packet_count: be32(body, 16),
                octet_count: be32(body, 20),
            };
            RtcpPacket::SenderReport(SenderReport {
                ssrc: be32(body, 0),
                info,
                reports: parse_blocks(&body[4 + SENDER_INFO_LEN..], count),
            })
        }
        PT_RR => {
            if body.len() < 4 + count * REPORT_BLOCK_LEN {
                return Err(short);
            }
            RtcpPacket::ReceiverReport(ReceiverReport {
                ssrc: be32(body, 0),
                reports: parse_blocks(&body[4..], count),
            })
        }
        PT_SDES => RtcpPacket::SourceDescription(parse_sdes(body, count).ok_or(short)?),
        PT_BYE => {
            if body.len() < 4 * count {
                return Err(short);
            }
            let sources = (0..count).map(|i| be32(body, 4 * i)).collect();
            let rest = &body[4 * count..];
            let reason = match rest.first() {
                Some(&len) if len > 0 => {
                    let text = rest.get(1..1 + usize::from(len)).ok_or(short)?;
                    Some(text.to_vec())
                }
                _ => None,
            };
            RtcpPacket::Bye(Bye { sources, reason })
        }
        _ => RtcpPacket::Unknown {
            packet_type,
            count: count as u8,
        },
    })
}

/// `body` holds at least `count` blocks (checked by the caller).
fn parse_blocks(body: &[u8], count: usize) -> Vec<ReceptionReport> {
    (0..count)
        .map(|i| {
            let b = &body[i * REPORT_BLOCK_LEN..(i + 1) * REPORT_BLOCK_LEN];
            let lost = be32(b, 4);
            // Sign-extend the 24-bit cumulative loss.
            let cumulative_lost = ((lost << 8) as i32) >> 8;
            ReceptionReport {
                ssrc: be32(b, 0),
                fraction_lost: (lost >> 24) as u8,
                cumulative_lost,
                extended_highest: be32(b, 8),
                jitter: be32(b, 12),
                last_sr: be32(b, 16),
                delay_since_last_sr: be32(b, 20),
            }
        })
        .collect()
}

fn parse_sdes(body: &[u8], count: usize) -> Option<Vec<SdesChunk>> {
    let mut chunks = Vec::with_capacity(count);
    let mut pos = 0;
    for _ in 0..count {
        let ssrc = be32(body.get(pos..pos + 4)?, 0);
        pos += 4;
        let mut items = Vec::new();
        loop {
            let kind = *body.get(pos)?;
            if kind == 0 {
                // The null item, then padding to the next 32-bit boundary.
                pos = (pos + 4) & !3;
                break;
            }
            let len = usize::from(*body.get(pos + 1)?);
            let value = body.get(pos + 2..pos + 2 + len)?.to_vec();
            items.push(SdesItem { kind, value });
            pos += 2 + len;
        }
        chunks.push(SdesChunk { ssrc, items });
    }
    Some(chunks)
}

/// Iterates over the packets of the compound packet in `buf`. Unknown
/// packet types are yielded as [`RtcpPacket::Unknown`], so callers can skip
/// them; RFC 3550 §6.1's rule that a compound starts with SR/RR is not
/// enforced, to be liberal with peers that send lone BYEs or feedback.
pub fn parse_compound(buf: &[u8]) -> CompoundIter<'_> {
    CompoundIter {
        buf,
        offset: 0,
        failed: false,
    }
}

fn put_header(out: &mut Vec<u8>, count: usize, packet_type: u8, body_len: usize) {
    out.push(0x80 | count as u8);
    out.push(packet_type);
    // Bodies are built word-aligned; the length is in words minus one.
    out.extend_from_slice(&((body_len / 4) as u16).to_be_bytes());
}

fn put_blocks(out: &mut Vec<u8>, blocks: &[ReceptionReport]) {
    for b in blocks {
        out.extend_from_slice(&b.ssrc.to_be_bytes());
        let lost = (u32::from(b.fraction_lost) << 24) | (b.cumulative_lost as u32 & 0x00ff_ffff);
        out.extend_from_slice(&lost.to_be_bytes());
        out.extend_from_slice(&b.extended_highest.to_be_bytes());
        out.extend_from_slice(&b.jitter.to_be_bytes());
        out.extend_from_slice(&b.last_sr.to_be_bytes());
        out.extend_from_slice(&b.delay_since_last_sr.to_be_bytes());
    }
}

fn check_count(n: usize) -> Result<(), RtcpError> {
    if n > MAX_COUNT {
        return Err(RtcpError::TooManyEntries(n));
    }
    Ok(())
}

fn pad_to_word(out: &mut Vec<u8>) {
    while !out.len().is_multiple_of(4) {
        out.push(0);
    }
}

impl RtcpPacket {
    /// Appends this packet to `out`; returns its length. Nothing is written
    /// on error.
    pub fn write_to(&self, out: &mut Vec<u8>) -> Result<usize, RtcpError> {
        let start = out.len();
        match self {
            RtcpPacket::SenderReport(sr) => {
                check_count(sr.reports.len())?;
                let body = 4 + SENDER_INFO_LEN + sr.reports.len() * REPORT_BLOCK_LEN;
                put_header(out, sr.reports.len(), PT_SR, body);
                out.extend_from_slice(&sr.ssrc.to_be_bytes());
                out.extend_from_slice(&sr.info.ntp.to_be_bytes());
                out.extend_from_slice(&sr.info.rtp_timestamp.to_be_bytes());
                out.extend_from_slice(&sr.info.packet_count.to_be_bytes());
                out.extend_from_slice(&sr.info.octet_count.to_be_bytes());
                put_blocks(out, &sr.reports);
            }
            RtcpPacket::ReceiverReport(rr) => {
                check_count(rr.reports.len())?;
                let body = 4 + rr.reports.len() * REPORT_BLOCK_LEN;
                put_header(out, rr.reports.len(), PT_RR, body);
                out.extend_from_slice(&rr.ssrc.to_be_bytes());
                put_blocks(out, &rr.reports);
            }
            RtcpPacket::SourceDescription(chunks) => {
                check_count(chunks.len())?;
                for item in chunks.iter().flat_map(|c| &c.items) {
                    if item.value.len() > 255 {
                        return Err(RtcpError::TextTooLong(item.value.len()));
                    }
                }
                put_header(out, chunks.len(), PT_SDES, 0);
                for c in chunks {
                    out.extend_from_slice(&c.ssrc.to_be_bytes());
                    for item in &c.items {
                        out.push(item.kind);
                        out.push(item.value.len() as u8);
                        out.extend_from_slice(&item.value);
                    }
                    // At least one null octet ends the item list (§6.5).
                    out.push(0);
                    pad_to_word(out);
                }
            }
            RtcpPacket::Bye(bye) => {
                check_count(bye.sources.len())?;
                if let Some(r) = &bye.reason
                    && r.len() > 255
                {
                    return Err(RtcpError::TextTooLong(r.len()));
                }
                put_header(out, bye.sources.len(), PT_BYE, 0);
                for s in &bye.sources {
                    out.extend_from_slice(&s.to_be_bytes());
                }
                if let Some(r) = &bye.reason {
                    out.push(r.len() as u8);
                    out.extend_from_slice(r);
                    pad_to_word(out);
                }
            }
            RtcpPacket::Unknown { .. } => return Err(RtcpError::Unserializable),
        }
        let len = out.len() - start;
        let words = (len / 4 - 1) as u16;
        out[start + 2..start + 4].copy_from_slice(&words.to_be_bytes());
        Ok(len)
    }
}

/// Appends the packets as one compound packet to `out`; returns its
/// length. On error `out` is left as it was.
pub fn write_compound(packets: &[RtcpPacket], out: &mut Vec<u8>) -> Result<usize, RtcpError> {
    if packets.is_empty() {
        return Err(RtcpError::Empty);
    }
    let start = out.len();
    for p in packets {
        if let Err(e) = p.write_to(out) {
            out.truncate(start);
            return Err(e);
        }
    }
    Ok(out.len() - start)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse_all(buf: &[u8]) -> Result<Vec<RtcpPacket>, RtcpError> {
        parse_compound(buf).collect()
    }

    #[test]
    fn sr_sdes_bye_round_trip() {
        let packets = vec![
            RtcpPacket::SenderReport(SenderReport {
                ssrc: 0x1234_5678,
                info: SenderInfo {
                    ntp: 0xe000_0000_8000_0000,
                    rtp_timestamp: 160,
                    packet_count: 5,
                    octet_count: 800,
                },
                reports: vec![ReceptionReport {
                    ssrc: 9,
                    fraction_lost: 3,
                    cumulative_lost: -2,
                    extended_highest: 70_000,
                    jitter: 12,
                    last_sr: 0xabcd_0000,
                    delay_since_last_sr: 65_536,
                }],
            }),
            RtcpPacket::SourceDescription(vec![SdesChunk::cname(0x1234_5678, "hotline@host")]),
            RtcpPacket::Bye(Bye {
                sources: vec![0x1234_5678],
                reason: Some(b"hangup".to_vec()),
            }),
        ];
        let mut buf = Vec::new();
        let n = write_compound(&packets, &mut buf).unwrap();
        assert_eq!(n, buf.len());
        assert_eq!(buf.len() % 4, 0);
        assert_eq!(parse_all(&buf).unwrap(), packets);
    }

    #[test]
    fn known_sr_bytes() {
        // SR from a capture: SSRC 1, NTP 2.5 s, RTP ts 8000, 50 packets, 8000 octets.
        let buf = [
            0x80, 200, 0, 6, 0, 0, 0, 1, 0, 0, 0, 2, 0x80, 0, 0, 0, 0, 0, 0x1f, 0x40, 0, 0, 0, 50,
            0, 0, 0x1f, 0x40,
        ];
        let p = parse_all(&buf).unwrap();
        let RtcpPacket::SenderReport(sr) = &p[0] else {
            panic!("{p:?}")
        };
        assert_eq!(sr.ssrc, 1);
        assert_eq!(sr.info.ntp, 0x0000_0002_8000_0000);
        assert_eq!(sr.info.rtp_timestamp, 8000);
        assert_eq!(sr.info.packet_count, 50);
        assert!(sr.reports.is_empty());
    }

    #[test]
    fn unknown_types_are_skipped_and_padding_removed() {
        // APP packet (one word of name, no data), then an RR with padding.
        let mut buf = vec![0x80, PT_APP, 0, 2, 0, 0, 0, 7, b't', b'e', b's', b't'];
        buf.extend_from_slice(&[0xa0, PT_RR, 0, 2, 0, 0, 0, 5, 0, 0, 0, 4]);
        let p = parse_all(&buf).unwrap();
        assert_eq!(
            p,
            vec![
                RtcpPacket::Unknown {
                    packet_type: PT_APP,
                    count: 0
                },
                RtcpPacket::ReceiverReport(ReceiverReport {
                    ssrc: 5,
                    reports: vec![]
                })
            ]
        );
    }

    #[test]
    fn framing_errors() {
        assert_eq!(
            parse_all(&[0x80, 201]),
            Err(RtcpError::TruncatedHeader { offset: 0, len: 2 })
        );
        assert_eq!(parse_all(&[0x40, 201, 0, 0]), Err(RtcpError::BadVersion(1)));
        assert_eq!(
            parse_all(&[0x80, 201, 0, 5, 0, 0, 0, 0]),
            Err(RtcpError::LengthOverflow {
                offset: 0,
                claimed: 24,
                available: 8
            })
        );
        // RR claiming one report block without room for it.
        assert_eq!(
            parse_all(&[0x81, 201, 0, 1, 0, 0, 0, 0]),
            Err(RtcpError::BodyTooShort { packet_type: PT_RR })
        );
        assert_eq!(
            parse_all(&[0xa0, 201, 0, 1, 0, 0, 0, 0]),
            Err(RtcpError::BadPadding(0))
        );
    }

    #[test]
    fn write_rejects_unrepresentable() {
        let mut out = vec![1];
        let rr = RtcpPacket::ReceiverReport(ReceiverReport {
            ssrc: 1,
            reports: vec![ReceptionReport::default(); 32],
        });
        assert_eq!(
            write_compound(&[rr], &mut out),
            Err(RtcpError::TooManyEntries(32))
        );
        assert_eq!(out, vec![1]);
        let sdes = RtcpPacket::SourceDescription(vec![SdesChunk::cname(1, &"x".repeat(256))]);
        assert_eq!(
            write_compound(&[sdes], &mut out),
            Err(RtcpError::TextTooLong(256))
        );
        assert_eq!(write_compound(&[], &mut out), Err(RtcpError::Empty));
    }

    #[test]
    fn sdes_chunk_with_exact_word_fill_gets_null_word() {
        // "abcd" CNAME: 4 ssrc + 2 + 4 = 10, null at 10, padded to 12.
        let mut out = Vec::new();
        RtcpPacket::SourceDescription(vec![SdesChunk::cname(1, "abcd")])
            .write_to(&mut out)
            .unwrap();
        assert_eq!(out.len(), 4 + 12);
        // "ab": 4 + 2 + 2 = 8 fills a word exactly, so a whole null word follows.
        let mut out = Vec::new();
        RtcpPacket::SourceDescription(vec![SdesChunk::cname(1, "ab")])
            .write_to(&mut out)
            .unwrap();
        assert_eq!(out.len(), 4 + 12);
        let p = parse_all(&out).unwrap();
        let RtcpPacket::SourceDescription(c) = &p[0] else {
            panic!()
        };
        assert_eq!(c[0].cname_value(), Some(&b"ab"[..]));
    }
}
