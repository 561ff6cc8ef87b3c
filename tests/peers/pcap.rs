//! RTP in classic pcap files: a writer for sipp's `play_pcap_audio` and a
//! reader to check what was written.
//!
//! sipp replays each packet's UDP payload at the pcap timestamps' pace,
//! rewriting addresses and ports from the SDP but keeping SSRC, sequence
//! numbers and timestamps, so the pcap holds one continuous RTP stream: G.711
//! 20 ms frames, then for each digit a silent gap and an RFC 4733 event
//! (§2.5.1: same timestamp, growing duration, the final packet sent 3 times).
//! Frames: Ethernet / IPv4 / UDP, pcap link type 1, microsecond timestamps.

use std::path::{Path, PathBuf};

use hotline_media::codec::g711::Law;
use hotline_media::dtmf::Digit;
use hotline_media::dtmf::rfc4733::TelephoneEvent;

/// How [`rtp_packets`] lays out the stream.
#[derive(Debug, Clone)]
pub struct StreamSpec {
    /// Audio payload type: 0 PCMU, 8 PCMA.
    pub pt: u8,
    /// Milliseconds of audio per packet.
    pub ptime_ms: u32,
    /// telephone-event payload type.
    pub dtmf_pt: u8,
    /// Length of each digit event.
    pub dtmf_ms: u32,
    /// Silence before each digit.
    pub gap_ms: u32,
    /// Silence after the last digit (or the audio).
    pub tail_ms: u32,
    /// Stream identity and starting points.
    pub ssrc: u32,
    /// First sequence number.
    pub seq: u16,
    /// First RTP timestamp.
    pub ts: u32,
}

impl Default for StreamSpec {
    fn default() -> Self {
        Self {
            pt: 0,
            ptime_ms: 20,
            dtmf_pt: 101,
            dtmf_ms: 160,
            gap_ms: 200,
            tail_ms: 500,
            ssrc: 0x4854_4c4e,
            seq: 1000,
            ts: 160_000,
        }
    }
}

/// One packet of a stream: when to send it (µs from the start) and the RTP bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TimedPacket {
    /// Send time in µs from the first packet.
    pub at_us: u64,
    /// The whole RTP packet.
    pub rtp: Vec<u8>,
}

/// A minimal RTP header (RFC 3550 §5.1: V=2, no padding/extension/CSRC).
pub fn rtp_header(pt: u8, marker: bool, seq: u16, ts: u32, ssrc: u32) -> [u8; 12] {
    let mut h = [0u8; 12];
    h[0] = 0x80;
    h[1] = (u8::from(marker) << 7) | (pt & 0x7f);
    h[2..4].copy_from_slice(&seq.to_be_bytes());
    h[4..8].copy_from_slice(&ts.to_be_bytes());
    h[8..12].copy_from_slice(&ssrc.to_be_bytes());
    h
}

/// The RTP stream for G.711 `audio` (already encoded, 8 kHz) followed by
/// `digits` as RFC 4733 events. Unknown digit characters are an error.
pub fn rtp_packets(
    audio: &[u8],
    digits: &str,
    spec: &StreamSpec,
) -> anyhow::Result<Vec<TimedPacket>> {
    let digits =
        Digit::parse_sequence(digits).map_err(|e| anyhow::anyhow!("digits {digits:?}: {e}"))?;
    let mut s = Stream {
        spec,
        out: Vec::new(),
        seq: spec.seq,
        ts: spec.ts,
        at_us: 0,
    };
    let silence = if spec.pt == 8 { 0xd5 } else { 0xff };
    let spp = s.samples_per_packet();
    s.audio(audio, true);
    let frames = (spec.dtmf_ms / spec.ptime_ms).max(1);
    for digit in digits {
        s.audio(&vec![silence; (8 * spec.gap_ms) as usize], false);
        for k in 1..=frames {
            let end = k == frames;
            let payload = TelephoneEvent {
                event: digit.event_code(),
                end,
                volume: 10,
                duration: (k * spp) as u16,
            }
            .encode();
            // RFC 4733 §2.5.1.4: the final packet is sent three times.
            for _ in 0..if end { 3 } else { 1 } {
                s.push(spec.dtmf_pt, k == 1, s.ts, &payload);
            }
        }
        s.ts = s.ts.wrapping_add(frames * spp);
    }
    s.audio(&vec![silence; (8 * spec.tail_ms) as usize], false);
    Ok(s.out)
}

struct Stream<'a> {
    spec: &'a StreamSpec,
    out: Vec<TimedPacket>,
    seq: u16,
    ts: u32,
    at_us: u64,
}

impl Stream<'_> {
    fn samples_per_packet(&self) -> u32 {
        8 * self.spec.ptime_ms
    }

    /// One packet now; the clock moves one packet time on.
    fn push(&mut self, pt: u8, marker: bool, ts: u32, payload: &[u8]) {
        let mut rtp = rtp_header(pt, marker, self.seq, ts, self.spec.ssrc).to_vec();
        rtp.extend_from_slice(payload);
        self.out.push(TimedPacket {
            at_us: self.at_us,
            rtp,
        });
        self.seq = self.seq.wrapping_add(1);
        self.at_us += u64::from(self.spec.ptime_ms) * 1000;
    }

    /// G.711 bytes in frames, the last one padded with silence.
    fn audio(&mut self, data: &[u8], first_marker: bool) {
        let spp = self.samples_per_packet() as usize;
        let silence = if self.spec.pt == 8 { 0xd5 } else { 0xff };
        for (i, chunk) in data.chunks(spp).enumerate() {
            let mut frame = chunk.to_vec();
            frame.resize(spp, silence);
            self.push(self.spec.pt, first_marker && i == 0, self.ts, &frame);
            self.ts = self.ts.wrapping_add(spp as u32);
        }
    }
}

const ETH_HEADER: [u8; 14] = [0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x08, 0x00];
/// Ports written into the frames; sipp replaces them from the SDP.
const PCAP_SRC_PORT: u16 = 40000;
const PCAP_DST_PORT: u16 = 40002;

fn ipv4_checksum(header: &[u8]) -> u16 {
    let mut sum: u32 = header
        .chunks(2)
        .map(|w| u32::from(u16::from_be_bytes([w[0], w[1]])))
        .sum();
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    !(sum as u16)
}

fn frame(udp_payload: &[u8]) -> Vec<u8> {
    let udp_len = 8 + udp_payload.len() as u16;
    let total = 20 + udp_len;
    let mut ip = vec![0x45, 0xb8];
    ip.extend_from_slice(&total.to_be_bytes());
    ip.extend_from_slice(&[0, 0, 0x40, 0, 64, 17, 0, 0, 127, 0, 0, 1, 127, 0, 0, 1]);
    let sum = ipv4_checksum(&ip);
    ip[10..12].copy_from_slice(&sum.to_be_bytes());
    let mut f = ETH_HEADER.to_vec();
    f.extend_from_slice(&ip);
    f.extend_from_slice(&PCAP_SRC_PORT.to_be_bytes());
    f.extend_from_slice(&PCAP_DST_PORT.to_be_bytes());
    f.extend_from_slice(&udp_len.to_be_bytes());
    f.extend_from_slice(&[0, 0]);
    f.extend_from_slice(udp_payload);
    f
}

/// Writes `packets` as a classic little-endian pcap (link type Ethernet).
pub fn write_pcap(path: &Path, packets: &[TimedPacket]) -> anyhow::Result<()> {
    let mut out = Vec::new();
    out.extend_from_slice(&0xa1b2_c3d4u32.to_le_bytes());
    out.extend_from_slice(&2u16.to_le_bytes());
    out.extend_from_slice(&4u16.to_le_bytes());
    out.extend_from_slice(&0i32.to_le_bytes());
    out.extend_from_slice(&0u32.to_le_bytes());
    out.extend_from_slice(&65535u32.to_le_bytes());
    out.extend_from_slice(&1u32.to_le_bytes());
    const BASE_SECS: u64 = 1_700_000_000;
    for p in packets {
        let f = frame(&p.rtp);
        out.extend_from_slice(&((BASE_SECS + p.at_us / 1_000_000) as u32).to_le_bytes());
        out.extend_from_slice(&((p.at_us % 1_000_000) as u32).to_le_bytes());
        out.extend_from_slice(&(f.len() as u32).to_le_bytes());
        out.extend_from_slice(&(f.len() as u32).to_le_bytes());
        out.extend_from_slice(&f);
    }
    std::fs::write(path, out)?;
    Ok(())
}

/// One UDP datagram read back from a pcap.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PcapUdp {
    /// Capture time in µs since the epoch.
    pub at_us: u64,
    /// UDP source port.
    pub src_port: u16,
    /// UDP destination port.
    pub dst_port: u16,
    /// The UDP payload.
    pub payload: Vec<u8>,
}

/// Reads the IPv4/UDP datagrams of a classic pcap (either byte order,
/// microsecond or nanosecond, link types Ethernet or Linux cooked); other
/// frames are skipped. Truncated files end the read without a panic.
pub fn read_pcap(path: &Path) -> anyhow::Result<Vec<PcapUdp>> {
    let data = std::fs::read(path)?;
    anyhow::ensure!(
        data.len() >= 24,
        "{}: not a pcap (too short)",
        path.display()
    );
    let magic = [data[0], data[1], data[2], data[3]];
    let (le, nanos) = match magic {
        [0xd4, 0xc3, 0xb2, 0xa1] => (true, false),
        [0xa1, 0xb2, 0xc3, 0xd4] => (false, false),
        [0x4d, 0x3c, 0xb2, 0xa1] => (true, true),
        [0xa1, 0xb2, 0x3c, 0x4d] => (false, true),
        _ => anyhow::bail!(
            "{}: not a classic pcap (magic {magic:02x?})",
            path.display()
        ),
    };
    let u32_at = |b: &[u8], i: usize| {
        let w = [b[i], b[i + 1], b[i + 2], b[i + 3]];
        if le {
            u32::from_le_bytes(w)
        } else {
            u32::from_be_bytes(w)
        }
    };
    let link = u32_at(&data, 20);
    let link_len = match link {
        1 => 14,
        113 => 16,
        _ => anyhow::bail!("{}: unsupported link type {link}", path.display()),
    };
    let mut out = Vec::new();
    let mut pos = 24;
    while pos + 16 <= data.len() {
        let (secs, frac, incl) = (
            u32_at(&data, pos),
            u32_at(&data, pos + 4),
            u32_at(&data, pos + 8) as usize,
        );
        pos += 16;
        let Some(f) = data.get(pos..pos + incl) else {
            break;
        };
        pos += incl;
        let Some(ip) = f.get(link_len..) else {
            continue;
        };
        if ip.len() < 20 || ip[0] >> 4 != 4 || ip[9] != 17 {
            continue;
        }
        let ihl = usize::from(ip[0] & 0x0f) * 4;
        let Some(udp) = ip.get(ihl..) else { continue };
        if udp.len() < 8 {
            continue;
        }
        let udp_len = usize::from(u16::from_be_bytes([udp[4], udp[5]])).clamp(8, udp.len());
        let at_us = u64::from(secs) * 1_000_000 + u64::from(if nanos { frac / 1000 } else { frac });
        out.push(PcapUdp {
            at_us,
            src_port: u16::from_be_bytes([udp[0], udp[1]]),
            dst_port: u16::from_be_bytes([udp[2], udp[3]]),
            payload: udp[8..udp_len].to_vec(),
        });
    }
    Ok(out)
}

/// A cached pcap of `text` spoken (PCMU or PCMA per `law`) then `digits`
/// as RFC 4733 events (PT 101), for sipp's `play_pcap_audio`.
pub fn speech_dtmf_pcap_law(text: &str, digits: &str, law: Law) -> anyhow::Result<PathBuf> {
    let wav = super::media::speech_wav(text, 8000)?;
    let audio = super::media::g711_bytes(&wav, law)?;
    let spec = StreamSpec {
        pt: if law == Law::Mu { 0 } else { 8 },
        ..StreamSpec::default()
    };
    let packets = rtp_packets(&audio, digits, &spec)?;
    let stem = wav
        .file_stem()
        .and_then(|s| s.to_str())
        .unwrap_or("speech")
        .to_owned();
    let path =
        wav.with_file_name(format!("{stem}-{}-{digits}.pcap", spec.pt).replace(['#', '*'], "_"));
    if !path.exists() {
        let tmp = path.with_extension(
            format!(
                "tmp{}-{:?}",
                std::process::id(),
                std::thread::current().id()
            )
            .replace(['(', ')'], ""),
        );
        write_pcap(&tmp, &packets)?;
        std::fs::rename(&tmp, &path)?;
    }
    Ok(path)
}

/// [`speech_dtmf_pcap_law`] in PCMU.
pub fn speech_dtmf_pcap(text: &str, digits: &str) -> anyhow::Result<PathBuf> {
    speech_dtmf_pcap_law(text, digits, Law::Mu)
}
