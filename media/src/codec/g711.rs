//! G.711 μ-law and A-law (ITU-T G.711, bit-exact with the ITU-T G.191 STL).
//!
//! Both directions are single table lookups. The tables are computed by
//! `const fn` at compile time, so there is no runtime initialisation and no
//! branch per sample. The encoders follow G.191 in using the one's
//! complement of negative samples (so −1 encodes like −0, not like +1),
//! which is what makes them match the reference for every 16-bit input.

use super::plc::Plc;
use super::{AudioDecoder, AudioEncoder, CodecError, CodecKind};

/// Which G.711 companding law.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Law {
    /// μ-law (North America, Japan): RTP PCMU.
    Mu,
    /// A-law (rest of the world): RTP PCMA.
    A,
}

impl Law {
    /// The RTP codec this law is carried as.
    pub const fn kind(self) -> CodecKind {
        match self {
            Law::Mu => CodecKind::Pcmu,
            Law::A => CodecKind::Pcma,
        }
    }
}

/// μ-law code to linear, per G.711 table 2b. The magnitude is
/// `((2·mantissa + 33) << exponent) − 33` in 14-bit units, left-justified
/// to 16 bits here, so the 0x84 (4·33) bias appears.
const fn ulaw_to_linear(code: u8) -> i16 {
    let u = !code;
    let exponent = (u >> 4) & 0x07;
    let mantissa = (u & 0x0F) as i32;
    let magnitude = (((mantissa << 3) + 0x84) << exponent) - 0x84;
    if u & 0x80 != 0 {
        -magnitude as i16
    } else {
        magnitude as i16
    }
}

/// A-law code to linear, per G.711 table 1b, left-justified to 16 bits:
/// segment 0 is linear, later segments carry an implicit leading one.
const fn alaw_to_linear(code: u8) -> i16 {
    let a = code ^ 0x55;
    let segment = (a >> 4) & 0x07;
    let mantissa = (a & 0x0F) as i32;
    let magnitude = match segment {
        0 => (mantissa << 4) + 8,
        s => ((mantissa << 4) + 0x108) << (s - 1),
    };
    if a & 0x80 != 0 {
        magnitude as i16
    } else {
        -magnitude as i16
    }
}

/// Bit length of a positive value (position of its highest set bit + 1).
const fn bit_length(v: u16) -> u32 {
    16 - v.leading_zeros()
}

/// Encodes a 14-bit two's-complement sample (the 16-bit sample's top 14
/// bits) to μ-law.
const fn ulaw_from_14bit(x: i16) -> u8 {
    // Biasing by 33 makes every segment a power-of-two range
    // [32 << seg, 64 << seg), so the segment is just the bit length.
    let (sign, magnitude) = if x < 0 { (0x00, !x) } else { (0x80, x) };
    let mut biased = magnitude as u16 + 33;
    if biased > 0x1FFF {
        biased = 0x1FFF;
    }
    let segment = bit_length(biased) - 6;
    let mantissa = ((biased >> (segment + 1)) & 0x0F) as u8;
    sign | (0x7F ^ (((segment as u8) << 4) | mantissa))
}

/// Encodes a 12-bit two's-complement sample (the 16-bit sample's top 12
/// bits) to A-law.
const fn alaw_from_12bit(x: i16) -> u8 {
    let (sign, magnitude) = if x < 0 {
        (0x00, !x as u16)
    } else {
        (0x80, x as u16)
    };
    let code = if magnitude < 16 {
        magnitude as u8
    } else {
        // Segment s ≥ 1 covers [16 << (s-1), 32 << (s-1)).
        let segment = bit_length(magnitude) - 4;
        (segment as u8) << 4 | ((magnitude >> (segment - 1)) & 0x0F) as u8
    };
    (sign | code) ^ 0x55
}

const fn build_decode(law: Law) -> [i16; 256] {
    let mut t = [0i16; 256];
    let mut i = 0;
    while i < 256 {
        t[i] = match law {
            Law::Mu => ulaw_to_linear(i as u8),
            Law::A => alaw_to_linear(i as u8),
        };
        i += 1;
    }
    t
}

const fn build_ulaw_encode() -> [u8; 1 << 14] {
    let mut t = [0u8; 1 << 14];
    let mut i = 0;
    while i < 1 << 14 {
        // Index is the sample's top 14 bits as unsigned; sign-extend back.
        t[i] = ulaw_from_14bit(((i as u16) << 2) as i16 >> 2);
        i += 1;
    }
    t
}

const fn build_alaw_encode() -> [u8; 1 << 12] {
    let mut t = [0u8; 1 << 12];
    let mut i = 0;
    while i < 1 << 12 {
        t[i] = alaw_from_12bit(((i as u16) << 4) as i16 >> 4);
        i += 1;
    }
    t
}

/// μ-law code → 16-bit linear.
static ULAW_DECODE: [i16; 256] = build_decode(Law::Mu);
/// A-law code → 16-bit linear.
static ALAW_DECODE: [i16; 256] = build_decode(Law::A);
/// μ-law only looks at the top 14 bits of a sample (G.711 μ-law is a
/// 14-bit law), so this table is exact for all 65 536 inputs.
static ULAW_ENCODE: [u8; 1 << 14] = build_ulaw_encode();
/// A-law only looks at the top 12 bits (a 13-bit law with the sign
/// folded into the one's complement), so 4096 entries are exact.
static ALAW_ENCODE: [u8; 1 << 12] = build_alaw_encode();

/// Encodes one 16-bit linear sample to μ-law.
#[inline]
pub fn ulaw_encode(sample: i16) -> u8 {
    ULAW_ENCODE[(sample as u16 >> 2) as usize]
}

/// Decodes one μ-law code to 16-bit linear.
#[inline]
pub fn ulaw_decode(code: u8) -> i16 {
    ULAW_DECODE[code as usize]
}

/// Encodes one 16-bit linear sample to A-law.
#[inline]
pub fn alaw_encode(sample: i16) -> u8 {
    ALAW_ENCODE[(sample as u16 >> 4) as usize]
}

/// Decodes one A-law code to 16-bit linear.
#[inline]
pub fn alaw_decode(code: u8) -> i16 {
    ALAW_DECODE[code as usize]
}

/// Encodes `pcm` with `law`, appending one byte per sample to `out`.
pub fn encode_slice(law: Law, pcm: &[i16], out: &mut Vec<u8>) {
    match law {
        Law::Mu => out.extend(pcm.iter().map(|&s| ulaw_encode(s))),
        Law::A => out.extend(pcm.iter().map(|&s| alaw_encode(s))),
    }
}

/// Decodes `codes` with `law`, appending one sample per byte to `out`.
pub fn decode_slice(law: Law, codes: &[u8], out: &mut Vec<i16>) {
    let table = match law {
        Law::Mu => &ULAW_DECODE,
        Law::A => &ALAW_DECODE,
    };
    out.extend(codes.iter().map(|&c| table[c as usize]));
}

/// G.711 is defined at 8 kHz only.
const RATE: u32 = 8000;

fn check_rate(law: Law, rate: u32) -> Result<(), CodecError> {
    if rate == RATE {
        Ok(())
    } else {
        Err(CodecError::UnsupportedRate {
            kind: law.kind(),
            rate,
        })
    }
}

/// A G.711 decoder with Appendix I style packet-loss concealment.
#[derive(Debug, Clone)]
pub struct G711Decoder {
    law: Law,
    plc: Plc,
}

impl G711Decoder {
    /// A decoder for `law` at 8 kHz.
    pub fn new(law: Law) -> Self {
        G711Decoder {
            law,
            plc: Plc::new(RATE).expect("8 kHz is a PLC rate"),
        }
    }

    /// A decoder for `law` at `rate`, which must be 8000.
    pub fn with_rate(law: Law, rate: u32) -> Result<Self, CodecError> {
        check_rate(law, rate)?;
        Ok(Self::new(law))
    }

    /// The companding law.
    pub fn law(&self) -> Law {
        self.law
    }
}

impl AudioDecoder for G711Decoder {
    fn kind(&self) -> CodecKind {
        self.law.kind()
    }

    fn sample_rate(&self) -> u32 {
        RATE
    }

    fn payload_samples(&self, payload: &[u8]) -> Result<usize, CodecError> {
        Ok(payload.len())
    }

    fn decode(&mut self, payload: &[u8], out: &mut Vec<i16>) -> Result<usize, CodecError> {
        if payload.is_empty() {
            return Err(CodecError::EmptyPayload);
        }
        let start = out.len();
        decode_slice(self.law, payload, out);
        self.plc.good_frame(&mut out[start..]);
        Ok(payload.len())
    }

    fn conceal(&mut self, samples: usize, out: &mut Vec<i16>) -> Result<usize, CodecError> {
        let start = out.len();
        out.resize(start + samples, 0);
        self.plc.conceal(&mut out[start..]);
        Ok(samples)
    }

    fn reset(&mut self) {
        self.plc.reset();
    }
}

/// A G.711 encoder. Stateless: any number of samples makes one byte each.
#[derive(Debug, Clone, Copy)]
pub struct G711Encoder {
    law: Law,
}

impl G711Encoder {
    /// An encoder for `law` at 8 kHz.
    pub fn new(law: Law) -> Self {
        G711Encoder { law }
    }

    /// An encoder for `law` at `rate`, which must be 8000.
    pub fn with_rate(law: Law, rate: u32) -> Result<Self, CodecError> {
        check_rate(law, rate)?;
        Ok(Self::new(law))
    }

    /// The companding law.
    pub fn law(&self) -> Law {
        self.law
    }
}

impl AudioEncoder for G711Encoder {
    fn kind(&self) -> CodecKind {
        self.law.kind()
    }

    fn sample_rate(&self) -> u32 {
        RATE
    }

    fn encode(&mut self, pcm: &[i16], out: &mut Vec<u8>) -> Result<usize, CodecError> {
        encode_slice(self.law, pcm, out);
        Ok(pcm.len())
    }

    fn reset(&mut self) {}
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn silence_codes() {
        // The idle patterns a PBX sends for silence.
        assert_eq!(ulaw_encode(0), 0xFF);
        assert_eq!(alaw_encode(0), 0xD5);
    }

    #[test]
    fn decode_is_odd_symmetric() {
        for c in 0..128u8 {
            assert_eq!(ulaw_decode(c), -ulaw_decode(c | 0x80));
            assert_eq!(alaw_decode(c ^ 0x80), -alaw_decode(c));
        }
    }

    #[test]
    fn decode_is_monotonic_in_magnitude() {
        // μ-law codes 0xFF down to 0x80 and A-law segments rise steadily.
        let mu: Vec<i16> = (0x80..=0xFFu8).rev().map(ulaw_decode).collect();
        assert!(mu.windows(2).all(|w| w[0] < w[1]));
        let a: Vec<i16> = (0..128u8).map(|m| alaw_decode((m | 0x80) ^ 0x55)).collect();
        assert!(a.windows(2).all(|w| w[0] < w[1]));
    }

    #[test]
    fn decoder_appends_and_conceals() {
        let mut d = G711Decoder::new(Law::A);
        let mut out = vec![7];
        assert_eq!(d.decode(&[0xD5; 160], &mut out), Ok(160));
        assert_eq!(out.len(), 161);
        assert_eq!(out[0], 7);
        assert_eq!(d.conceal(160, &mut out), Ok(160));
        assert_eq!(out.len(), 321);
    }
}
