//! The RTP fixed header, CSRC list, header extension and padding of RFC 3550
//! §5.1 and §5.3.1: a zero-copy parsed view and a serializer.

use bytes::BufMut;

use super::extension::{ExtensionElements, ExtensionError};

/// Length of the fixed RTP header in bytes.
pub const FIXED_HEADER_LEN: usize = 12;
/// The only RTP version this crate speaks.
pub const RTP_VERSION: u8 = 2;
/// The CSRC count is a 4-bit field.
pub const MAX_CSRCS: usize = 15;

/// Why a buffer is not a valid RTP packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum RtpError {
    /// Fewer bytes than the 12-byte fixed header.
    #[error("RTP packet too short: {len} bytes, the fixed header needs 12")]
    TooShort {
        /// Bytes received.
        len: usize,
    },
    /// The version field is not 2.
    #[error("unsupported RTP version {0}, expected 2")]
    BadVersion(u8),
    /// The CSRC count points past the end of the buffer.
    #[error("CSRC list of {count} entries needs {needed} bytes, packet has {len}")]
    CsrcTruncated {
        /// The CC field.
        count: u8,
        /// Bytes needed for the fixed header and the CSRC list.
        needed: usize,
        /// Bytes received.
        len: usize,
    },
    /// The X bit is set but the header extension is cut short.
    #[error("header extension needs {needed} bytes, packet has {len}")]
    ExtensionTruncated {
        /// Bytes needed up to the end of the extension.
        needed: usize,
        /// Bytes received.
        len: usize,
    },
    /// The P bit is set with a padding count of zero, which RFC 3550 §5.1
    /// rules out (the count includes the count byte itself).
    #[error("padding bit set but the padding count is zero")]
    ZeroPadding,
    /// The padding count claims more bytes than follow the header.
    #[error("padding count {padding} exceeds the {available} bytes after the header")]
    PaddingOverflow {
        /// The last byte of the packet.
        padding: u8,
        /// Bytes between the end of the header and the end of the packet.
        available: usize,
    },
}

/// Why a packet could not be serialized.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum BuildError {
    /// The payload type field has 7 bits.
    #[error("payload type {0} does not fit in 7 bits")]
    PayloadType(u8),
    /// The CSRC count field has 4 bits.
    #[error("{0} CSRCs given, at most 15 fit")]
    TooManyCsrcs(usize),
    /// Header extension data is counted in 32-bit words.
    #[error("header extension data of {0} bytes is not a multiple of 4")]
    ExtensionNotAligned(usize),
    /// The extension length field has 16 bits (counting words).
    #[error("header extension data of {0} bytes exceeds 65535 words")]
    ExtensionTooLong(usize),
}

/// A header extension as RFC 3550 §5.3.1 frames it: a 16-bit profile-defined
/// value and data that is a whole number of 32-bit words.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HeaderExtension<'a> {
    /// The "defined by profile" field (0xBEDE / 0x100x for RFC 8285).
    pub profile: u16,
    /// The extension data, without the 4-byte extension header.
    pub data: &'a [u8],
}

impl<'a> HeaderExtension<'a> {
    /// The RFC 8285 elements inside this extension, or an error if the
    /// profile is neither the one-byte nor the two-byte form.
    pub fn elements(&self) -> Result<ExtensionElements<'a>, ExtensionError> {
        ExtensionElements::new(self.profile, self.data)
    }
}

/// A parsed, validated RTP packet borrowing the buffer it was read from.
///
/// Parsing checks every length once, so the accessors cannot fail.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RtpPacket<'a> {
    buf: &'a [u8],
    /// Start of the payload (end of CSRCs and extension).
    payload_start: usize,
    /// End of the payload (start of padding).
    payload_end: usize,
    /// Extension data range, when the X bit is set.
    extension: Option<(u16, usize, usize)>,
}

fn be16(b: &[u8], at: usize) -> u16 {
    u16::from_be_bytes([b[at], b[at + 1]])
}

fn be32(b: &[u8], at: usize) -> u32 {
    u32::from_be_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
}

impl<'a> RtpPacket<'a> {
    /// Validates `buf` as an RTP packet (RFC 3550 §5.1, and the checks of
    /// Appendix A.1 that need no per-source state).
    pub fn parse(buf: &'a [u8]) -> Result<Self, RtpError> {
        let len = buf.len();
        if len < FIXED_HEADER_LEN {
            return Err(RtpError::TooShort { len });
        }
        let version = buf[0] >> 6;
        if version != RTP_VERSION {
            return Err(RtpError::BadVersion(version));
        }
        let count = buf[0] & 0x0f;
        let mut pos = FIXED_HEADER_LEN + 4 * usize::from(count);
        if pos > len {
            return Err(RtpError::CsrcTruncated {
                count,
                needed: pos,
                len,
            });
        }
        let mut extension = None;
        if buf[0] & 0x10 != 0 {
            if pos + 4 > len {
                return Err(RtpError::ExtensionTruncated {
                    needed: pos + 4,
                    len,
                });
            }
            let profile = be16(buf, pos);
            let words = usize::from(be16(buf, pos + 2));
            let start = pos + 4;
            let end = start + 4 * words;
            if end > len {
                return Err(RtpError::ExtensionTruncated { needed: end, len });
            }
            extension = Some((profile, start, end));
            pos = end;
        }
        let mut payload_end = len;
        if buf[0] & 0x20 != 0 {
            // `pos <= len` was checked above, and with P set the padding is
            // carved out of what follows the header.
            let padding = buf[len - 1];
            let available = len - pos;
            if padding == 0 {
                return Err(RtpError::ZeroPadding);
            }
            if usize::from(padding) > available {
                return Err(RtpError::PaddingOverflow { padding, available });
            }
            payload_end = len - usize::from(padding);
        }
        Ok(Self {
            buf,
            payload_start: pos,
            payload_end,
            extension,
        })
    }

    /// The whole packet as received.
    pub fn as_bytes(&self) -> &'a [u8] {
        self.buf
    }

    /// Always 2: parsing rejects anything else.
    pub fn version(&self) -> u8 {
        self.buf[0] >> 6
    }

    /// The P bit.
    pub fn has_padding(&self) -> bool {
        self.buf[0] & 0x20 != 0
    }

    /// Padding bytes at the end, including the count byte (0 when P is clear).
    pub fn padding_len(&self) -> usize {
        self.buf.len() - self.payload_end
    }

    /// The X bit.
    pub fn has_extension(&self) -> bool {
        self.extension.is_some()
    }

    /// The M bit; for audio, the first packet of a talkspurt.
    pub fn marker(&self) -> bool {
        self.buf[1] & 0x80 != 0
    }

    /// The 7-bit payload type.
    pub fn payload_type(&self) -> u8 {
        self.buf[1] & 0x7f
    }

    /// The 16-bit sequence number.
    pub fn sequence(&self) -> u16 {
        be16(self.buf, 2)
    }

    /// The 32-bit RTP timestamp.
    pub fn timestamp(&self) -> u32 {
        be32(self.buf, 4)
    }

    /// The synchronization source.
    pub fn ssrc(&self) -> u32 {
        be32(self.buf, 8)
    }

    /// Number of contributing sources (the CC field).
    pub fn csrc_count(&self) -> usize {
        usize::from(self.buf[0] & 0x0f)
    }

    /// The contributing sources, in header order.
    pub fn csrcs(&self) -> impl ExactSizeIterator<Item = u32> + 'a {
        let end = FIXED_HEADER_LEN + 4 * self.csrc_count();
        self.buf[FIXED_HEADER_LEN..end]
            .chunks_exact(4)
            .map(|c| u32::from_be_bytes([c[0], c[1], c[2], c[3]]))
    }

    /// The header extension, when the X bit is set.
    pub fn extension(&self) -> Option<HeaderExtension<'a>> {
        self.extension.map(|(profile, start, end)| HeaderExtension {
            profile,
            data: &self.buf[start..end],
        })
    }

    /// Length of everything before the payload.
    pub fn header_len(&self) -> usize {
        self.payload_start
    }

    /// The payload with any padding removed.
    pub fn payload(&self) -> &'a [u8] {
        &self.buf[self.payload_start..self.payload_end]
    }
}

/// Everything needed to serialize one RTP packet. Borrowing keeps
/// serialization allocation-free: the caller owns the CSRC list, extension
/// data and payload, and the output buffer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct RtpPacketBuilder<'a> {
    /// The M bit.
    pub marker: bool,
    /// Payload type, 0–127.
    pub payload_type: u8,
    /// Sequence number.
    pub sequence: u16,
    /// RTP timestamp.
    pub timestamp: u32,
    /// Synchronization source.
    pub ssrc: u32,
    /// Contributing sources, at most 15.
    pub csrcs: &'a [u32],
    /// Header extension; its data must be a multiple of 4 bytes.
    pub extension: Option<HeaderExtension<'a>>,
    /// Padding bytes to append, including the final count byte; 0 for none.
    pub padding: u8,
    /// The payload.
    pub payload: &'a [u8],
}

impl RtpPacketBuilder<'_> {
    /// Checks the fields that cannot be represented on the wire.
    pub fn validate(&self) -> Result<(), BuildError> {
        if self.payload_type > 0x7f {
            return Err(BuildError::PayloadType(self.payload_type));
        }
        if self.csrcs.len() > MAX_CSRCS {
            return Err(BuildError::TooManyCsrcs(self.csrcs.len()));
        }
        if let Some(ext) = &self.extension {
            if ext.data.len() % 4 != 0 {
                return Err(BuildError::ExtensionNotAligned(ext.data.len()));
            }
            if ext.data.len() / 4 > usize::from(u16::MAX) {
                return Err(BuildError::ExtensionTooLong(ext.data.len()));
            }
        }
        Ok(())
    }

    /// Bytes the serialized packet will take.
    pub fn encoded_len(&self) -> usize {
        FIXED_HEADER_LEN
            + 4 * self.csrcs.len()
            + self.extension.map_or(0, |e| 4 + e.data.len())
            + self.payload.len()
            + usize::from(self.padding)
    }

    /// Appends the packet to `out` and returns its length. Nothing is
    /// written when validation fails.
    pub fn write_to<B: BufMut>(&self, out: &mut B) -> Result<usize, BuildError> {
        self.validate()?;
        let mut b0 = RTP_VERSION << 6;
        if self.padding > 0 {
            b0 |= 0x20;
        }
        if self.extension.is_some() {
            b0 |= 0x10;
        }
        // validate() bounds the count to 15.
        b0 |= self.csrcs.len() as u8;
        out.put_u8(b0);
        out.put_u8(u8::from(self.marker) << 7 | self.payload_type);
        out.put_u16(self.sequence);
        out.put_u32(self.timestamp);
        out.put_u32(self.ssrc);
        for csrc in self.csrcs {
            out.put_u32(*csrc);
        }
        if let Some(ext) = &self.extension {
            out.put_u16(ext.profile);
            // validate() bounds the word count to u16.
            out.put_u16((ext.data.len() / 4) as u16);
            out.put_slice(ext.data);
        }
        out.put_slice(self.payload);
        if self.padding > 0 {
            out.put_bytes(0, usize::from(self.padding) - 1);
            out.put_u8(self.padding);
        }
        Ok(self.encoded_len())
    }
}

/// Tells RTCP from RTP on a port shared by both (RFC 5761 §4): RTCP packet
/// types 192–223 occupy the byte where RTP has marker and payload type.
pub fn is_rtcp(buf: &[u8]) -> bool {
    buf.len() >= 2 && (192..=223).contains(&buf[1])
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pcmu_header() -> [u8; 12] {
        [
            0x80, 0x00, 0x12, 0x34, 0x00, 0x00, 0x01, 0x40, 0xde, 0xad, 0xbe, 0xef,
        ]
    }

    #[test]
    fn parses_minimal_packet_fields() {
        let mut buf = pcmu_header().to_vec();
        buf.extend_from_slice(&[1, 2, 3]);
        let p = RtpPacket::parse(&buf).unwrap();
        assert_eq!(p.version(), 2);
        assert!(!p.has_padding());
        assert!(!p.has_extension());
        assert!(!p.marker());
        assert_eq!(p.payload_type(), 0);
        assert_eq!(p.sequence(), 0x1234);
        assert_eq!(p.timestamp(), 320);
        assert_eq!(p.ssrc(), 0xdead_beef);
        assert_eq!(p.csrc_count(), 0);
        assert_eq!(p.csrcs().count(), 0);
        assert_eq!(p.extension(), None);
        assert_eq!(p.header_len(), 12);
        assert_eq!(p.padding_len(), 0);
        assert_eq!(p.payload(), &[1, 2, 3]);
        assert_eq!(p.as_bytes(), &buf[..]);
    }

    #[test]
    fn header_only_packet_has_empty_payload() {
        let buf = pcmu_header();
        assert_eq!(RtpPacket::parse(&buf).unwrap().payload(), &[] as &[u8]);
    }

    #[test]
    fn marker_and_payload_type_share_a_byte() {
        let mut buf = pcmu_header();
        buf[1] = 0x80 | 101;
        let p = RtpPacket::parse(&buf).unwrap();
        assert!(p.marker());
        assert_eq!(p.payload_type(), 101);
    }

    #[test]
    fn rejects_short_buffers() {
        for len in 0..12 {
            assert_eq!(
                RtpPacket::parse(&pcmu_header()[..len]),
                Err(RtpError::TooShort { len })
            );
        }
    }

    #[test]
    fn rejects_other_versions() {
        for v in [0u8, 1, 3] {
            let mut buf = pcmu_header();
            buf[0] = v << 6;
            assert_eq!(RtpPacket::parse(&buf), Err(RtpError::BadVersion(v)));
        }
    }

    #[test]
    fn reads_csrcs_and_rejects_truncated_list() {
        let mut buf = pcmu_header().to_vec();
        buf[0] |= 2;
        buf.extend_from_slice(&[0, 0, 0, 7, 0xff, 0xff, 0xff, 0xfe, 9]);
        let p = RtpPacket::parse(&buf).unwrap();
        assert_eq!(p.csrcs().collect::<Vec<_>>(), vec![7, 0xffff_fffe]);
        assert_eq!(p.payload(), &[9]);
        assert_eq!(
            RtpPacket::parse(&buf[..19]),
            Err(RtpError::CsrcTruncated {
                count: 2,
                needed: 20,
                len: 19
            })
        );
    }

    #[test]
    fn reads_extension_and_rejects_truncation() {
        let mut buf = pcmu_header().to_vec();
        buf[0] |= 0x10;
        buf.extend_from_slice(&[0xbe, 0xde, 0, 1, 0x10, 0xaa, 0, 0, 5, 6]);
        let p = RtpPacket::parse(&buf).unwrap();
        assert_eq!(
            p.extension(),
            Some(HeaderExtension {
                profile: 0xbede,
                data: &[0x10, 0xaa, 0, 0]
            })
        );
        assert_eq!(p.header_len(), 20);
        assert_eq!(p.payload(), &[5, 6]);
        // Missing extension header.
        assert_eq!(
            RtpPacket::parse(&buf[..15]),
            Err(RtpError::ExtensionTruncated {
                needed: 16,
                len: 15
            })
        );
        // Header present, data cut short.
        assert_eq!(
            RtpPacket::parse(&buf[..19]),
            Err(RtpError::ExtensionTruncated {
                needed: 20,
                len: 19
            })
        );
    }

    #[test]
    fn zero_length_extension_is_valid() {
        let mut buf = pcmu_header().to_vec();
        buf[0] |= 0x10;
        buf.extend_from_slice(&[0x12, 0x34, 0, 0]);
        let p = RtpPacket::parse(&buf).unwrap();
        assert_eq!(p.extension().unwrap().data, &[] as &[u8]);
        assert_eq!(p.extension().unwrap().profile, 0x1234);
        assert!(p.payload().is_empty());
    }

    #[test]
    fn strips_padding() {
        let mut buf = pcmu_header().to_vec();
        buf[0] |= 0x20;
        buf.extend_from_slice(&[1, 2, 0, 0, 3]);
        let p = RtpPacket::parse(&buf).unwrap();
        assert!(p.has_padding());
        assert_eq!(p.padding_len(), 3);
        assert_eq!(p.payload(), &[1, 2]);
    }

    #[test]
    fn padding_may_fill_the_whole_payload() {
        let mut buf = pcmu_header().to_vec();
        buf[0] |= 0x20;
        buf.extend_from_slice(&[0, 0, 3]);
        assert!(RtpPacket::parse(&buf).unwrap().payload().is_empty());
    }

    #[test]
    fn rejects_bad_padding() {
        let mut buf = pcmu_header().to_vec();
        buf[0] |= 0x20;
        buf.extend_from_slice(&[1, 0]);
        assert_eq!(RtpPacket::parse(&buf), Err(RtpError::ZeroPadding));
        *buf.last_mut().unwrap() = 3;
        assert_eq!(
            RtpPacket::parse(&buf),
            Err(RtpError::PaddingOverflow {
                padding: 3,
                available: 2
            })
        );
        // With P set and nothing after the header, the count byte is read
        // from the header itself and must not be allowed to eat into it.
        let mut bare = pcmu_header();
        bare[0] |= 0x20;
        assert_eq!(
            RtpPacket::parse(&bare),
            Err(RtpError::PaddingOverflow {
                padding: 0xef,
                available: 0
            })
        );
    }

    #[test]
    fn padding_cannot_reach_into_extension() {
        let mut buf = pcmu_header().to_vec();
        buf[0] |= 0x30;
        buf.extend_from_slice(&[0xbe, 0xde, 0, 1, 0x10, 0xaa, 0, 0, 2]);
        assert_eq!(
            RtpPacket::parse(&buf),
            Err(RtpError::PaddingOverflow {
                padding: 2,
                available: 1
            })
        );
    }

    #[test]
    fn builder_writes_every_field() {
        let ext = [0x10, 0x7f, 0, 0];
        let b = RtpPacketBuilder {
            marker: true,
            payload_type: 111,
            sequence: 0xfffe,
            timestamp: 0x0102_0304,
            ssrc: 0x0a0b_0c0d,
            csrcs: &[1, 2],
            extension: Some(HeaderExtension {
                profile: 0xbede,
                data: &ext,
            }),
            padding: 4,
            payload: &[0xaa, 0xbb],
        };
        let mut out = Vec::new();
        assert_eq!(b.write_to(&mut out).unwrap(), b.encoded_len());
        assert_eq!(
            out,
            vec![
                0xb2, 0xef, 0xff, 0xfe, 1, 2, 3, 4, 0x0a, 0x0b, 0x0c, 0x0d, 0, 0, 0, 1, 0, 0, 0, 2,
                0xbe, 0xde, 0, 1, 0x10, 0x7f, 0, 0, 0xaa, 0xbb, 0, 0, 0, 4
            ]
        );
        let p = RtpPacket::parse(&out).unwrap();
        assert_eq!(p.payload(), &[0xaa, 0xbb]);
        assert_eq!(p.csrcs().collect::<Vec<_>>(), vec![1, 2]);
        assert!(p.marker());
    }

    #[test]
    fn builder_writes_into_bytes_mut() {
        let mut out = bytes::BytesMut::new();
        let b = RtpPacketBuilder {
            payload_type: 8,
            payload: &[0xd5; 160],
            ..Default::default()
        };
        assert_eq!(b.write_to(&mut out).unwrap(), 172);
        assert_eq!(RtpPacket::parse(&out).unwrap().payload_type(), 8);
    }

    #[test]
    fn builder_rejects_unrepresentable_fields() {
        let csrcs = [0u32; 16];
        let odd = [0u8; 3];
        let cases = [
            (
                RtpPacketBuilder {
                    payload_type: 128,
                    ..Default::default()
                },
                BuildError::PayloadType(128),
            ),
            (
                RtpPacketBuilder {
                    csrcs: &csrcs,
                    ..Default::default()
                },
                BuildError::TooManyCsrcs(16),
            ),
            (
                RtpPacketBuilder {
                    extension: Some(HeaderExtension {
                        profile: 1,
                        data: &odd,
                    }),
                    ..Default::default()
                },
                BuildError::ExtensionNotAligned(3),
            ),
        ];
        for (b, err) in cases {
            let mut out = Vec::new();
            assert_eq!(b.write_to(&mut out), Err(err));
            assert!(out.is_empty());
        }
        let long = vec![0u8; 4 * 65536];
        let b = RtpPacketBuilder {
            extension: Some(HeaderExtension {
                profile: 1,
                data: &long,
            }),
            ..Default::default()
        };
        assert_eq!(b.validate(), Err(BuildError::ExtensionTooLong(4 * 65536)));
    }

    #[test]
    fn single_byte_padding_is_just_the_count() {
        let b = RtpPacketBuilder {
            padding: 1,
            payload: &[7],
            ..Default::default()
        };
        let mut out = Vec::new();
        b.write_to(&mut out).unwrap();
        assert_eq!(&out[12..], &[7, 1]);
        assert_eq!(RtpPacket::parse(&out).unwrap().payload(), &[7]);
    }

    #[test]
    fn rtcp_demux_follows_rfc5761() {
        assert!(is_rtcp(&[0x80, 200, 0, 6]));
        assert!(is_rtcp(&[0x80, 223]));
        assert!(!is_rtcp(&[0x80, 191]));
        assert!(!is_rtcp(&[0x80, 224]));
        assert!(!is_rtcp(&pcmu_header()));
        assert!(!is_rtcp(&[0x80]));
    }
}
