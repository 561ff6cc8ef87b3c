//! RIFF/WAVE parsing and conversion to 16-bit linear PCM.

use super::WavError;
use crate::codec::g711::{alaw_decode, ulaw_decode};
use std::io::Read;

const TAG_PCM: u16 = 0x0001;
const TAG_FLOAT: u16 = 0x0003;
const TAG_ALAW: u16 = 0x0006;
const TAG_MULAW: u16 = 0x0007;
const TAG_EXTENSIBLE: u16 = 0xFFFE;
/// Bytes 2..16 of every `KSDATAFORMAT_SUBTYPE_*` GUID that wraps a plain
/// format tag (`XXXXXXXX-0000-0010-8000-00AA00389B71`).
const GUID_SUFFIX: [u8; 14] = [
    0x00, 0x00, 0x00, 0x00, 0x10, 0x00, 0x80, 0x00, 0x00, 0xAA, 0x00, 0x38, 0x9B, 0x71,
];

/// How samples are stored in the file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Encoding {
    /// Linear PCM: unsigned 8-bit, or signed 16/24/32-bit little-endian.
    Pcm,
    /// IEEE float, 32 or 64 bits, nominal range ±1.0.
    Float,
    /// G.711 μ-law.
    MuLaw,
    /// G.711 A-law.
    ALaw,
}

/// The format of a WAV file as declared in its `fmt ` chunk.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct WavFormat {
    /// Sample encoding (after unwrapping `WAVE_FORMAT_EXTENSIBLE`).
    pub encoding: Encoding,
    /// Interleaved channel count.
    pub channels: u16,
    /// Frames per second.
    pub sample_rate: u32,
    /// Container size of one sample in bits (8, 16, 24, 32 or 64).
    pub bits_per_sample: u16,
    /// Significant bits per sample (differs from the container only in
    /// extensible files, e.g. 20 valid bits in 24).
    pub valid_bits: u16,
    /// Speaker mask from an extensible header.
    pub channel_mask: Option<u32>,
    /// Whether the file used a `WAVE_FORMAT_EXTENSIBLE` header.
    pub extensible: bool,
}

/// A decoded WAV file.
#[derive(Debug, Clone, PartialEq)]
pub struct Wav {
    /// The declared format.
    pub format: WavFormat,
    /// Samples as 16-bit linear PCM, interleaved by channel.
    pub samples: Vec<i16>,
    /// True when the data chunk claimed more bytes than the file holds, or
    /// ended in a partial frame: the file was cut short (e.g. a recording
    /// whose writer never finished). `samples` holds the whole frames present.
    pub truncated: bool,
}

impl Wav {
    /// Number of frames (samples per channel).
    pub fn frames(&self) -> usize {
        self.samples.len() / usize::from(self.format.channels.max(1))
    }

    /// Duration in seconds.
    pub fn duration_secs(&self) -> f64 {
        self.frames() as f64 / f64::from(self.format.sample_rate)
    }

    /// One channel, de-interleaved. Empty if `channel` does not exist.
    pub fn channel(&self, channel: u16) -> Vec<i16> {
        let ch = usize::from(self.format.channels);
        if channel >= self.format.channels {
            return Vec::new();
        }
        self.samples
            .iter()
            .skip(usize::from(channel))
            .step_by(ch)
            .copied()
            .collect()
    }

    /// The average of all channels (rounded to nearest), as mono.
    pub fn to_mono(&self) -> Vec<i16> {
        let ch = usize::from(self.format.channels.max(1));
        if ch == 1 {
            return self.samples.clone();
        }
        self.samples
            .chunks_exact(ch)
            .map(|f| {
                let sum: i64 = f.iter().map(|&s| i64::from(s)).sum();
                let n = ch as i64;
                // Round half away from zero, symmetric for ±.
                let q = (sum.abs() + n / 2) / n;
                (q * sum.signum()) as i16
            })
            .collect()
    }
}

/// Reads a whole WAV file from `r` and decodes it with [`read_wav`].
pub fn read_wav_from<R: Read>(mut r: R) -> Result<Wav, WavError> {
    let mut bytes = Vec::new();
    r.read_to_end(&mut bytes)?;
    read_wav(&bytes)
}

fn u16_at(b: &[u8], at: usize) -> u16 {
    u16::from_le_bytes([b[at], b[at + 1]])
}

fn u32_at(b: &[u8], at: usize) -> u32 {
    u32::from_le_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
}

/// Parses a WAV file held in memory.
///
/// Chunks other than `fmt ` and `data` (`LIST`, `fact`, `cue `, `bext`, …)
/// are skipped, honouring the pad byte after odd-sized chunks. A RIFF or
/// data size larger than the file (a streaming writer that never went back
/// to patch them, or a truncated download) is clamped to the bytes present
/// and reported through [`Wav::truncated`].
pub fn read_wav(bytes: &[u8]) -> Result<Wav, WavError> {
    if bytes.len() < 12 || &bytes[0..4] != b"RIFF" || &bytes[8..12] != b"WAVE" {
        return Err(WavError::NotWave);
    }
    let riff_size = u64::from(u32_at(bytes, 4));
    let len = bytes.len() as u64;
    // A RIFF size too small to hold even "WAVE" is a placeholder; trust the
    // file length instead.
    let end = if riff_size < 4 {
        len
    } else {
        (8 + riff_size).min(len)
    };

    let mut fmt: Option<&[u8]> = None;
    let mut data: Option<(&[u8], bool)> = None;
    let mut pos = 12u64;
    while pos + 8 <= end {
        let p = pos as usize;
        let id = &bytes[p..p + 4];
        let size = u64::from(u32_at(bytes, p + 4));
        let body = pos + 8;
        let body_end = body + size;
        match id {
            b"fmt " if fmt.is_none() => {
                if body_end > end {
                    return Err(WavError::MissingFmt);
                }
                fmt = Some(&bytes[body as usize..body_end as usize]);
            }
            b"data" if data.is_none() => {
                let stop = body_end.min(len);
                data = Some((&bytes[body as usize..stop as usize], body_end > len));
            }
            _ => {}
        }
        pos = body_end + (size & 1);
    }

    let format = parse_fmt(fmt.ok_or(WavError::MissingFmt)?)?;
    let (data, short) = data.ok_or(WavError::MissingData)?;
    let align = usize::from(format.channels) * usize::from(format.bits_per_sample / 8);
    let frames = data.len() / align;
    let body = &data[..frames * align];
    let samples = decode(body, &format);
    Ok(Wav {
        format,
        samples,
        truncated: short || data.len() % align != 0,
    })
}

fn parse_fmt(f: &[u8]) -> Result<WavFormat, WavError> {
    if f.len() < 16 {
        return Err(WavError::MissingFmt);
    }
    let mut tag = u16_at(f, 0);
    let channels = u16_at(f, 2);
    let sample_rate = u32_at(f, 4);
    let block_align = u16_at(f, 12);
    let bits = u16_at(f, 14);
    let mut valid_bits = bits;
    let mut channel_mask = None;
    let extensible = tag == TAG_EXTENSIBLE;
    if extensible {
        if f.len() < 40 || u16_at(f, 16) < 22 {
            return Err(WavError::BadFormat("short WAVE_FORMAT_EXTENSIBLE header"));
        }
        valid_bits = u16_at(f, 18);
        channel_mask = Some(u32_at(f, 20));
        if f[26..40] != GUID_SUFFIX {
            return Err(WavError::Unsupported {
                format_tag: TAG_EXTENSIBLE,
                bits,
            });
        }
        tag = u16_at(f, 24);
        if valid_bits == 0 {
            // Some writers leave it zero meaning "all bits valid".
            valid_bits = bits;
        }
    }
    if channels == 0 {
        return Err(WavError::BadFormat("zero channels"));
    }
    if sample_rate == 0 {
        return Err(WavError::BadFormat("zero sample rate"));
    }
    let encoding = match tag {
        TAG_PCM => Encoding::Pcm,
        TAG_FLOAT => Encoding::Float,
        TAG_MULAW => Encoding::MuLaw,
        TAG_ALAW => Encoding::ALaw,
        _ => {
            return Err(WavError::Unsupported {
                format_tag: tag,
                bits,
            });
        }
    };
    // Containers are whole bytes: a 12-bit PCM file declares 12 bits but
    // stores 16 (block_align tells), so derive the container from it.
    if block_align == 0 || !block_align.is_multiple_of(channels) {
        return Err(WavError::BadFormat(
            "block align is not a multiple of channels",
        ));
    }
    let container = block_align / channels;
    let ok = match encoding {
        Encoding::Pcm => (1..=4).contains(&container) && bits > 0 && bits <= container * 8,
        Encoding::Float => (container == 4 && bits == 32) || (container == 8 && bits == 64),
        Encoding::MuLaw | Encoding::ALaw => container == 1 && bits == 8,
    };
    if !ok {
        return Err(WavError::Unsupported {
            format_tag: tag,
            bits,
        });
    }
    if valid_bits > container * 8 {
        return Err(WavError::BadFormat("valid bits exceed the container"));
    }
    Ok(WavFormat {
        encoding,
        channels,
        sample_rate,
        bits_per_sample: container * 8,
        valid_bits: valid_bits.min(bits),
        channel_mask,
        extensible,
    })
}

fn round_shift(v: i64, shift: u32) -> i16 {
    // Round to nearest (half up), as sox does, then saturate: the top
    // positive code of a wider format rounds up past i16::MAX.
    ((v + (1 << (shift - 1))) >> shift).clamp(-32768, 32767) as i16
}

fn decode(body: &[u8], format: &WavFormat) -> Vec<i16> {
    let width = usize::from(format.bits_per_sample / 8);
    let it = body.chunks_exact(width);
    match (format.encoding, width) {
        (Encoding::Pcm, 1) => it.map(|b| (i16::from(b[0]) - 128) << 8).collect(),
        (Encoding::Pcm, 2) => it.map(|b| i16::from_le_bytes([b[0], b[1]])).collect(),
        (Encoding::Pcm, 3) => it
            .map(|b| {
                let v = i32::from_le_bytes([0, b[0], b[1], b[2]]) >> 8;
                round_shift(i64::from(v), 8)
            })
            .collect(),
        (Encoding::Pcm, _) => it
            .map(|b| round_shift(i64::from(i32::from_le_bytes([b[0], b[1], b[2], b[3]])), 16))
            .collect(),
        (Encoding::Float, 4) => it
            .map(|b| float_to_i16(f64::from(f32::from_le_bytes([b[0], b[1], b[2], b[3]]))))
            .collect(),
        (Encoding::Float, _) => it
            .map(|b| float_to_i16(f64::from_le_bytes(b.try_into().unwrap_or([0; 8]))))
            .collect(),
        (Encoding::MuLaw, _) => body.iter().map(|&b| ulaw_decode(b)).collect(),
        (Encoding::ALaw, _) => body.iter().map(|&b| alaw_decode(b)).collect(),
    }
}

fn float_to_i16(x: f64) -> i16 {
    if x.is_nan() {
        return 0;
    }
    // Same scale as sox (±1.0 ↔ ±32768), clipped.
    (x * 32768.0).round().clamp(-32768.0, 32767.0) as i16
}

#[cfg(test)]
mod tests {
    use super::*;

    fn chunk(id: &[u8; 4], body: &[u8]) -> Vec<u8> {
        let mut v = id.to_vec();
        v.extend_from_slice(&(body.len() as u32).to_le_bytes());
        v.extend_from_slice(body);
        if body.len() % 2 == 1 {
            v.push(0);
        }
        v
    }

    fn fmt_body(tag: u16, ch: u16, rate: u32, bits: u16) -> Vec<u8> {
        let align = ch * bits.div_ceil(8);
        let mut v = Vec::new();
        v.extend_from_slice(&tag.to_le_bytes());
        v.extend_from_slice(&ch.to_le_bytes());
        v.extend_from_slice(&rate.to_le_bytes());
        v.extend_from_slice(&(rate * u32::from(align)).to_le_bytes());
        v.extend_from_slice(&align.to_le_bytes());
        v.extend_from_slice(&bits.to_le_bytes());
        v
    }

    fn riff(chunks: &[Vec<u8>]) -> Vec<u8> {
        let body: Vec<u8> = chunks.concat();
        let mut v = b"RIFF".to_vec();
        v.extend_from_slice(&(body.len() as u32 + 4).to_le_bytes());
        v.extend_from_slice(b"WAVE");
        v.extend_from_slice(&body);
        v
    }

    #[test]
    fn skips_odd_and_unknown_chunks() {
        let data: Vec<u8> = [1i16, -2, 300]
            .iter()
            .flat_map(|s| s.to_le_bytes())
            .collect();
        let file = riff(&[
            chunk(b"JUNK", &[1, 2, 3]),
            chunk(b"fmt ", &fmt_body(1, 1, 8000, 16)),
            chunk(b"LIST", b"INFOISFT\x05\x00\x00\x00sox!\x00\x00"),
            chunk(b"odd!", &[9]),
            chunk(b"data", &data),
            chunk(b"LIST", b"xyz"),
        ]);
        let w = read_wav(&file).unwrap();
        assert_eq!(w.samples, vec![1, -2, 300]);
        assert_eq!(w.format.sample_rate, 8000);
        assert!(!w.truncated);
    }

    #[test]
    fn eight_bit_is_unsigned() {
        let file = riff(&[
            chunk(b"fmt ", &fmt_body(1, 1, 8000, 8)),
            chunk(b"data", &[0, 128, 255]),
        ]);
        assert_eq!(read_wav(&file).unwrap().samples, vec![-32768, 0, 32512]);
    }

    #[test]
    fn wide_pcm_rounds_and_saturates() {
        let s24: Vec<u8> = [0x7F_FFFFi32, -0x80_0000, 0x80, 0x7F, -0x81]
            .iter()
            .flat_map(|v| v.to_le_bytes()[..3].to_vec())
            .collect();
        let file = riff(&[
            chunk(b"fmt ", &fmt_body(1, 1, 8000, 24)),
            chunk(b"data", &s24),
        ]);
        assert_eq!(
            read_wav(&file).unwrap().samples,
            vec![32767, -32768, 1, 0, -1]
        );
        let s32: Vec<u8> = [i32::MAX, i32::MIN, 0x8000, 0x7FFF]
            .iter()
            .flat_map(|v| v.to_le_bytes())
            .collect();
        let file = riff(&[
            chunk(b"fmt ", &fmt_body(1, 1, 8000, 32)),
            chunk(b"data", &s32),
        ]);
        assert_eq!(read_wav(&file).unwrap().samples, vec![32767, -32768, 1, 0]);
    }

    #[test]
    fn float_clips_and_maps_nan_to_zero() {
        let f: Vec<u8> = [0.5f32, -1.0, 2.0, f32::NAN, -0.25]
            .iter()
            .flat_map(|v| v.to_le_bytes())
            .collect();
        let file = riff(&[
            chunk(b"fmt ", &fmt_body(3, 1, 8000, 32)),
            chunk(b"data", &f),
        ]);
        assert_eq!(
            read_wav(&file).unwrap().samples,
            vec![16384, -32768, 32767, 0, -8192]
        );
    }

    #[test]
    fn extensible_wraps_plain_tags() {
        let mut fmt = fmt_body(TAG_EXTENSIBLE, 2, 16000, 24);
        fmt.extend_from_slice(&22u16.to_le_bytes());
        fmt.extend_from_slice(&20u16.to_le_bytes());
        fmt.extend_from_slice(&3u32.to_le_bytes());
        fmt.extend_from_slice(&TAG_PCM.to_le_bytes());
        fmt.extend_from_slice(&GUID_SUFFIX);
        let data: Vec<u8> = [0x10_0000i32, -0x10_0000]
            .iter()
            .flat_map(|v| v.to_le_bytes()[..3].to_vec())
            .collect();
        let w = read_wav(&riff(&[chunk(b"fmt ", &fmt), chunk(b"data", &data)])).unwrap();
        assert_eq!(w.samples, vec![4096, -4096]);
        assert_eq!(w.format.valid_bits, 20);
        assert_eq!(w.format.channel_mask, Some(3));
        assert!(w.format.extensible);
        // A foreign sub-format GUID is refused, not misread.
        fmt[30] ^= 1;
        assert!(matches!(
            read_wav(&riff(&[chunk(b"fmt ", &fmt), chunk(b"data", &data)])),
            Err(WavError::Unsupported { .. })
        ));
    }

    #[test]
    fn unfinished_sizes_read_to_end_of_file() {
        let data: Vec<u8> = [5i16, 6, 7].iter().flat_map(|s| s.to_le_bytes()).collect();
        let mut file = riff(&[
            chunk(b"fmt ", &fmt_body(1, 1, 8000, 16)),
            chunk(b"data", &data),
        ]);
        file[4..8].copy_from_slice(&u32::MAX.to_le_bytes());
        let n = file.len();
        file[n - 10..n - 6].copy_from_slice(&u32::MAX.to_le_bytes());
        let w = read_wav(&file).unwrap();
        assert_eq!(w.samples, vec![5, 6, 7]);
        assert!(w.truncated);
        // Cut mid-sample: whole frames only.
        let w = read_wav(&file[..n - 1]).unwrap();
        assert_eq!(w.samples, vec![5, 6]);
    }

    #[test]
    fn clear_errors() {
        assert!(matches!(read_wav(b"RIFX"), Err(WavError::NotWave)));
        let no_fmt = riff(&[chunk(b"data", &[0, 0])]);
        assert!(matches!(read_wav(&no_fmt), Err(WavError::MissingFmt)));
        let no_data = riff(&[chunk(b"fmt ", &fmt_body(1, 1, 8000, 16))]);
        assert!(matches!(read_wav(&no_data), Err(WavError::MissingData)));
        let adpcm = riff(&[
            chunk(b"fmt ", &fmt_body(2, 1, 8000, 4)),
            chunk(b"data", &[0]),
        ]);
        assert!(matches!(
            read_wav(&adpcm),
            Err(WavError::Unsupported { format_tag: 2, .. })
        ));
        let zero_ch = riff(&[
            chunk(b"fmt ", &fmt_body(1, 0, 8000, 16)),
            chunk(b"data", &[0]),
        ]);
        assert!(matches!(read_wav(&zero_ch), Err(WavError::BadFormat(_))));
    }

    #[test]
    fn mono_downmix_and_channels() {
        let data: Vec<u8> = [100i16, 201, -100, -201, 32767, 32767]
            .iter()
            .flat_map(|s| s.to_le_bytes())
            .collect();
        let w = read_wav(&riff(&[
            chunk(b"fmt ", &fmt_body(1, 2, 8000, 16)),
            chunk(b"data", &data),
        ]))
        .unwrap();
        assert_eq!(w.frames(), 3);
        assert_eq!(w.to_mono(), vec![151, -151, 32767]);
        assert_eq!(w.channel(1), vec![201, -201, 32767]);
        assert!(w.channel(2).is_empty());
    }
}
